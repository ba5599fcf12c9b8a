// Probe results in SQLite. Results are buffered in memory and written in one transaction per
// flush (history.flushIntervalMs), with the minute and hour rollups updated in the same
// transaction; retention prunes at most PRUNE_CHUNK rows per statement, one chunk per table per
// flush, so no single write holds the event loop for long. A hard kill loses at most the
// results buffered since the last flush; WAL keeps the file consistent.
import type { Db } from '../store/database.js'
import { Type, type Static } from '@sinclair/typebox'
import { systemClock, type Clock } from '../supervisor/supervisor.js'
import { oneOf, Timestamp, type InMs } from '../shapes.js'
import { PROBE_KINDS, PROBE_PHASES, type ProbeEvent } from './probes.js'
import { ProbeResultName } from './health-report.js'
import { TREND_WINDOW_MS, trendOf, type CheckCounts, type Trend } from './trend.js'

export const PRUNE_CHUNK = 1000
const MINUTE = 60_000
const HOUR = 3_600_000

export interface HistoryOptions {
  clock?: Clock
  flushIntervalMs: number
  rawRetentionHours: number
  rollupRetentionDays: number
  pruneChunk?: number
  /** Called when a flush fails (the results of that flush are dropped, not retried forever). */
  onError?: (err: Error) => void
}

const NullableNumber = Type.Union([Type.Number(), Type.Null()])

/** One stored probe result. */
export const RawCheck = Type.Object({
  at: Timestamp,
  probe: oneOf(PROBE_KINDS),
  phase: oneOf(PROBE_PHASES),
  result: ProbeResultName,
  durationMs: Type.Number(),
  error: Type.Union([Type.String(), Type.Null()])
})
/** In memory and in the store, `at` is in ms since the epoch. */
export type RawCheck = InMs<Static<typeof RawCheck>, 'at'>

/** Probe results of one minute or hour; `at` is the start of the bucket. */
export const RollupBucket = Type.Object({
  at: Timestamp,
  count: Type.Integer(),
  failures: Type.Integer(),
  warnings: Type.Integer(),
  minMs: NullableNumber,
  avgMs: NullableNumber,
  maxMs: NullableNumber
})
export type RollupBucket = InMs<Static<typeof RollupBucket>, 'at'>

export const HealthStats = Type.Object({
  totalChecks: Type.Integer({ description: 'Probe results retained (rollups of history.rollupRetentionDays, plus results not flushed yet)' }),
  successRate: Type.Number({ description: 'Share of those results that passed (success or warn); 0 without results' }),
  errorRate: Type.Number({ description: 'Share of those results that failed; 0 without results' }),
  avgResponseTimeMs: Type.Number({ description: 'Mean probe duration (milliseconds)' }),
  uptimeMs: Type.Integer({ description: 'Time the current process has been running (milliseconds)' })
}, { $id: 'HealthStats' })
/** What the history knows; uptimeMs comes from the supervisor. */
export type HealthStats = Omit<Static<typeof HealthStats>, 'uptimeMs'>

export const RESOLUTIONS = ['raw', 'minute', 'hour'] as const
export type Resolution = typeof RESOLUTIONS[number]

export interface HistoryQuery {
  since: number
  until: number
  limit: number
  resolution: Resolution
}

interface Agg { plugin: string, resolution: 'minute' | 'hour', bucket: number, count: number, failures: number, warnings: number, min: number, max: number, sum: number }

export function createHealthHistory (db: Db, opts: HistoryOptions) {
  const clock = opts.clock ?? systemClock
  const chunk = opts.pruneChunk ?? PRUNE_CHUNK
  let buffer: ProbeEvent[] = []
  let timer: NodeJS.Timeout | undefined

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
  const minuteSince = db.prepare("SELECT bucket, count, failures FROM health_rollups WHERE plugin = ? AND resolution = 'minute' AND bucket >= ?")

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

  const history = {
    /** Buffers one result; it reaches the database at the next flush. */
    record (ev: ProbeEvent): void {
      buffer.push(ev)
    },

    /** Writes the buffered results and their rollups in one transaction; returns how many. */
    flush (): number {
      if (buffer.length === 0) return 0
      const batch = buffer
      buffer = []
      try {
        write.immediate(batch)
      } catch (err) {
        opts.onError?.(err as Error)
        return 0
      }
      return batch.length
    },

    /** Deletes one chunk of expired raw results and one of each rollup resolution; returns how many rows. */
    prune (): number {
      const now = clock.now()
      const rawCutoff = now - opts.rawRetentionHours * HOUR
      const rollupCutoff = now - opts.rollupRetentionDays * 24 * HOUR
      return pruneRaw.run(rawCutoff, chunk).changes +
        pruneRollups.run('minute', rollupCutoff, chunk).changes +
        pruneRollups.run('hour', rollupCutoff, chunk).changes
    },

    /** Flushes (and prunes a chunk) every flushIntervalMs until stop(). */
    start (): void {
      if (timer) return
      timer = setInterval(() => {
        history.flush()
        try { history.prune() } catch (err) { opts.onError?.(err as Error) }
      }, opts.flushIntervalMs)
      timer.unref()
    },

    /** Stops the timer and writes what is buffered. */
    stop (): void {
      if (timer) clearInterval(timer)
      timer = undefined
      history.flush()
    },

    pending (): number { return buffer.length },

    /** Newest first. Results still buffered (at most one flush window) are not included. */
    query (plugin: string, q: HistoryQuery): { checks?: RawCheck[], buckets?: RollupBucket[] } {
      if (q.resolution === 'raw') return { checks: rawQuery.all(plugin, q.since, q.until, q.limit) as RawCheck[] }
      return { buckets: rollupQuery.all(plugin, q.resolution, q.since, q.until, q.limit) as RollupBucket[] }
    },

    /** Totals over the retained rollups plus the buffer, and the trend (see trend.ts). */
    stats (plugin: string): HealthStats & { trend: Trend } {
      const t = totals.get(plugin) as { count: number, failures: number, sum: number }
      let { count, failures, sum } = t
      const now = clock.now()
      const recentFrom = now - TREND_WINDOW_MS
      const previousFrom = now - 2 * TREND_WINDOW_MS
      const recent: CheckCounts = { count: 0, failures: 0 }
      const previous: CheckCounts = { count: 0, failures: 0 }
      const add = (at: number, n: number, f: number): void => {
        if (at >= recentFrom) { recent.count += n; recent.failures += f } else if (at >= previousFrom) { previous.count += n; previous.failures += f }
      }
      for (const r of minuteSince.all(plugin, previousFrom - MINUTE) as { bucket: number, count: number, failures: number }[]) {
        // A minute bucket belongs to the window that holds most of it.
        add(r.bucket + MINUTE / 2, r.count, r.failures)
      }
      for (const ev of buffer) {
        if (ev.plugin !== plugin) continue
        const failed = ev.result === 'failure' ? 1 : 0
        count++
        failures += failed
        sum += ev.durationMs
        add(ev.at, 1, failed)
      }
      return {
        totalChecks: count,
        successRate: count === 0 ? 0 : (count - failures) / count,
        errorRate: count === 0 ? 0 : failures / count,
        avgResponseTimeMs: count === 0 ? 0 : Math.round((sum / count) * 1000) / 1000,
        trend: trendOf(previous, recent)
      }
    }
  }
  return history
}

export type HealthHistory = ReturnType<typeof createHealthHistory>
