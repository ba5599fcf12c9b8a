// Probe results kept over time. Results are buffered in memory and handed to the store in one
// batch per flush (history.flushIntervalMs), which writes them and updates the minute and hour
// rollups in one transaction; retention prunes at most PRUNE_CHUNK rows per table at a time, so
// no single write holds the event loop for long: after a flush while it has a backlog, else once
// a minute. A hard kill loses at most the results buffered since the last flush.
import { Type, type Static } from '@sinclair/typebox'
import { systemClock, type Clock } from '../clock.js'
import { oneOf, Timestamp, type InMs } from '../shapes.js'
import { PROBE_KINDS, PROBE_PHASES, type ProbeEvent } from './probes.js'
import { ProbeResultName } from './health-report.js'
import { MINUTE_MIDDLE_MS, TREND_WINDOW_MS, trendOf, windowsOf, type Trend, type TrendWindows } from './trend.js'

export const PRUNE_CHUNK = 1000
/** How often retention runs once it has caught up (while it has not, every flush). */
export const PRUNE_EVERY_MS = 60_000
export const MINUTE = 60_000
export const HOUR = 3_600_000

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

/** Where the history keeps its results: the SQLite store implements it (store/health-store.ts). */
export interface HealthHistoryStore {
  /** Writes the results and adds them to their minute and hour rollups, all or nothing. */
  write: (batch: ProbeEvent[]) => void
  /** Deletes at most `chunk` raw results before rawBefore, and as many rollups of each resolution before rollupBefore; returns how many rows. */
  prune: (rawBefore: number, rollupBefore: number, chunk: number) => number
  /** Newest first. */
  checks: (plugin: string, q: HistoryQuery) => RawCheck[]
  /** Newest first; q.resolution is minute or hour. */
  buckets: (plugin: string, q: HistoryQuery) => RollupBucket[]
  /** Sums over the hour rollups. */
  totals: (plugin: string) => { count: number, failures: number, sum: number }
  /** Minute rollups from `since` on, with the sum of their durations. */
  minutes: (plugin: string, since: number) => { bucket: number, count: number, failures: number, sum: number }[]
}

export function createHealthHistory (store: HealthHistoryStore, opts: HistoryOptions) {
  const clock = opts.clock ?? systemClock
  const chunk = opts.pruneChunk ?? PRUNE_CHUNK
  let buffer: ProbeEvent[] = []
  let timer: NodeJS.Timeout | undefined
  let lastPruneAt = -Infinity
  let backlog = true

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
        store.write(batch)
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
      return store.prune(rawCutoff, rollupCutoff, chunk)
    },

    /**
     * One flush, then a prune when one is due: right away while the last one removed a whole
     * chunk (a backlog), else once every PRUNE_EVERY_MS. An idle daemon deletes nothing most
     * seconds; a busy one still removes a chunk a flush until it has caught up.
     */
    tick (): void {
      history.flush()
      const now = clock.now()
      if (!backlog && now - lastPruneAt < PRUNE_EVERY_MS) return
      lastPruneAt = now
      try { backlog = history.prune() >= chunk } catch (err) { opts.onError?.(err as Error) }
    },

    /** Ticks every flushIntervalMs until stop(). */
    start (): void {
      if (timer) return
      timer = setInterval(() => history.tick(), opts.flushIntervalMs)
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
      if (q.resolution === 'raw') return { checks: store.checks(plugin, q) }
      return { buckets: store.buckets(plugin, q) }
    },

    /**
     * Totals over the retained rollups plus the buffer, and the trend (see trend.ts) of the
     * probes and of the calls `calls` gives for the same moment.
     */
    stats (plugin: string, calls?: (now: number) => TrendWindows): HealthStats & { trend: Trend } {
      let { count, failures, sum } = store.totals(plugin)
      const now = clock.now()
      const entries: { at: number, count: number, failures: number, timed: number, sumMs: number }[] = []
      for (const r of store.minutes(plugin, now - 2 * TREND_WINDOW_MS - MINUTE)) {
        entries.push({ at: r.bucket + MINUTE_MIDDLE_MS, count: r.count, failures: r.failures, timed: r.count, sumMs: r.sum })
      }
      for (const ev of buffer) {
        if (ev.plugin !== plugin) continue
        const failed = ev.result === 'failure' ? 1 : 0
        count++
        failures += failed
        sum += ev.durationMs
        entries.push({ at: ev.at, count: 1, failures: failed, timed: 1, sumMs: ev.durationMs })
      }
      return {
        totalChecks: count,
        successRate: count === 0 ? 0 : (count - failures) / count,
        errorRate: count === 0 ? 0 : failures / count,
        avgResponseTimeMs: count === 0 ? 0 : Math.round((sum / count) * 1000) / 1000,
        trend: trendOf(windowsOf(now, entries), calls?.(now))
      }
    }
  }
  return history
}

export type HealthHistory = ReturnType<typeof createHealthHistory>
