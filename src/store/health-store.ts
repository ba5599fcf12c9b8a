// Probe results and their minute and hour rollups in SQLite, for the health history.
import type { Db } from './database.js'
import { createStoreStatus, type StoreStatus } from './store-status.js'
import type { ProbeEvent } from '../health/probes.js'
import { HOUR, MINUTE, type HealthHistoryStore, type RawCheck, type RollupBucket } from '../health/health-history.js'

interface Agg { plugin: string, resolution: 'minute' | 'hour', bucket: number, count: number, failures: number, warnings: number, min: number, max: number, sum: number }

export function createHealthStore (db: Db, status: StoreStatus = createStoreStatus()): HealthHistoryStore {
  const insert = db.prepare('INSERT INTO health_checks (plugin, at, probe, phase, result, duration_ms, error) VALUES (?, ?, ?, ?, ?, ?, ?)')
  const upsertRollup = db.prepare(`INSERT INTO health_rollups (plugin, resolution, bucket, count, failures, warnings, min_ms, max_ms, sum_ms)
    VALUES (@plugin, @resolution, @bucket, @count, @failures, @warnings, @min, @max, @sum)
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
    for (const ev of batch) {
      insert.run(ev.plugin, ev.at, ev.probe, ev.phase, ev.result, ev.durationMs, ev.error ?? null)
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
    for (const a of aggs.values()) upsertRollup.run(a)
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
