// Probe results and their minute and hour rollups in SQLite, for the health history.
import type { Statement } from 'better-sqlite3'
import type { Db } from './database.js'
import { createStoreStatus, type StoreStatus } from './store-status.js'
import type { ProbeEvent } from '../health/probes.js'
import { HOUR, MINUTE, type HealthHistoryStore, type RawCheck, type RollupBucket } from '../health/health-history.js'

interface Agg { plugin: string, resolution: 'minute' | 'hour', bucket: number, count: number, failures: number, warnings: number, min: number, max: number, sum: number }

/**
 * Rows per INSERT statement at a flush: one statement binding many rows costs a fraction of as
 * many one-row statements (500 results a second are 500 raw rows and 1,000 rollup upserts).
 */
export const ROWS_PER_STATEMENT = 50

// The INSERTs say OR FAIL: a statement that may stop half-way under the default (ABORT) keeps a
// statement journal of every page it changes, to undo itself alone. A flush never needs that:
// any failure rolls the whole transaction back (all or nothing, tested).

export function createHealthStore (db: Db, status: StoreStatus = createStoreStatus()): HealthHistoryStore {
  const insert = multiRow(db, 'INSERT OR FAIL INTO health_checks (plugin, at, probe, phase, result, duration_ms, error) VALUES', 7, '')
  const upsertRollup = multiRow(db, 'INSERT OR FAIL INTO health_rollups (plugin, resolution, bucket, count, failures, warnings, min_ms, max_ms, sum_ms) VALUES', 9, `
    ON CONFLICT (plugin, resolution, bucket) DO UPDATE SET
      count = count + excluded.count, failures = failures + excluded.failures, warnings = warnings + excluded.warnings,
      min_ms = min(min_ms, excluded.min_ms), max_ms = max(max_ms, excluded.max_ms), sum_ms = sum_ms + excluded.sum_ms`)
  const pruneRaw = db.prepare('DELETE FROM health_checks WHERE id IN (SELECT id FROM health_checks WHERE at < ? LIMIT ?)')
  const pruneRollups = db.prepare(`DELETE FROM health_rollups WHERE (plugin, resolution, bucket) IN
    (SELECT plugin, resolution, bucket FROM health_rollups WHERE resolution = ? AND bucket < ? LIMIT ?)`)
  const rawQuery = db.prepare(`SELECT at, probe, phase, result, duration_ms AS durationMs, error FROM health_checks
    WHERE plugin = ? AND at >= ? AND at < ? ORDER BY at DESC, id DESC LIMIT ?`)
  const rollupQuery = db.prepare(`SELECT bucket AS at, count, failures, warnings, min_ms AS minMs, round(sum_ms / count, 3) AS avgMs, max_ms AS maxMs
    FROM health_rollups WHERE plugin = ? AND resolution = ? AND bucket >= ? AND bucket < ? ORDER BY bucket DESC LIMIT ?`)
  const totals = db.prepare(`SELECT coalesce(sum(count), 0) AS count, coalesce(sum(failures), 0) AS failures, coalesce(sum(sum_ms), 0) AS sum
    FROM health_rollups WHERE plugin = ? AND resolution = 'hour'`)
  const minuteSince = db.prepare("SELECT bucket, count, failures, sum_ms AS sum FROM health_rollups WHERE plugin = ? AND resolution = 'minute' AND bucket >= ?")

  const write = db.transaction((batch: ProbeEvent[]) => {
    const aggs = new Map<string, Agg>()
    const raw: unknown[] = []
    for (const ev of batch) {
      raw.push(ev.plugin, ev.at, ev.probe, ev.phase, ev.result, ev.durationMs, ev.error ?? null)
      for (const [resolution, size] of [['minute', MINUTE], ['hour', HOUR]] as const) {
        const bucket = ev.at - (ev.at % size)
        const key = `${ev.plugin}\0${resolution}\0${bucket}`
        let a = aggs.get(key)
        if (!a) {
          a = { plugin: ev.plugin, resolution, bucket, count: 0, failures: 0, warnings: 0, min: ev.durationMs, max: ev.durationMs, sum: 0 }
          aggs.set(key, a)
        }
        a.count++
        if (ev.result === 'failure') a.failures++
        if (ev.result === 'warn') a.warnings++
        a.min = Math.min(a.min, ev.durationMs)
        a.max = Math.max(a.max, ev.durationMs)
        a.sum += ev.durationMs
      }
    }
    insert(raw)
    const rollups: unknown[] = []
    for (const a of aggs.values()) rollups.push(a.plugin, a.resolution, a.bucket, a.count, a.failures, a.warnings, a.min, a.max, a.sum)
    upsertRollup(rollups)
  })

  return {
    write (batch) {
      status.run(() => write.immediate(batch))
    },
    prune (rawBefore, rollupBefore, chunk) {
      return status.run(() => pruneRaw.run(rawBefore, chunk).changes +
        pruneRollups.run('minute', rollupBefore, chunk).changes +
        pruneRollups.run('hour', rollupBefore, chunk).changes)
    },
    checks: (plugin, q) => rawQuery.all(plugin, q.since, q.until, q.limit) as RawCheck[],
    buckets: (plugin, q) => rollupQuery.all(plugin, q.resolution, q.since, q.until, q.limit) as RollupBucket[],
    totals: (plugin) => totals.get(plugin) as { count: number, failures: number, sum: number },
    minutes: (plugin, since) => minuteSince.all(plugin, since) as { bucket: number, count: number, failures: number, sum: number }[]
  }
}

/**
 * Runs `INSERT … VALUES (…), (…) …tail` over a flat list of values, `columns` to a row, at most
 * ROWS_PER_STATEMENT rows per statement; a statement is prepared once for each row count used.
 */
function multiRow (db: Db, head: string, columns: number, tail: string): (values: unknown[]) => void {
  const statements = new Map<number, Statement>()
  const row = `(${Array(columns).fill('?').join(', ')})`
  const statement = (rows: number): Statement => {
    let st = statements.get(rows)
    if (!st) {
      st = db.prepare(`${head} ${Array(rows).fill(row).join(', ')}${tail}`)
      statements.set(rows, st)
    }
    return st
  }
  const full = columns * ROWS_PER_STATEMENT
  return (values) => {
    let i = 0
    for (; i + full <= values.length; i += full) statement(ROWS_PER_STATEMENT).run(values.slice(i, i + full))
    if (i < values.length) statement((values.length - i) / columns).run(values.slice(i))
  }
}
