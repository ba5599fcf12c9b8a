// Call statistics of one plugin, in memory: every proxied call and every call a host reports,
// and the calls of the last minutes by minute (the trend weighs them).
// They start at zero when the plugin's manifest is loaded or changed (the invoker builds a new
// record then), not at a restart of its process. Recording is a few number updates: it sits on
// the invoke hot path.
import { Type, type Static } from '@sinclair/typebox'
import { Nullable, Timestamp } from '../shapes.js'
import { MINUTE_MIDDLE_MS, TREND_WINDOW_MS, windowsOf, type TrendWindows } from '../health/trend.js'

const MINUTE_MS = 60_000
/** Minute buckets kept for the trend: its two windows, and the minute the older one starts in. */
const TREND_MINUTES = (2 * TREND_WINDOW_MS) / MINUTE_MS + 1

/** Weight of the newest call in avgResponseTimeMs (an exponentially weighted moving average). */
export const RESPONSE_TIME_WEIGHT = 0.2

export const CallStats = Type.Object({
  plugin: Type.String(),
  total: Type.Integer({ description: 'Calls counted: succeeded + failed + rejected' }),
  succeeded: Type.Integer({ description: 'Calls the plugin answered with a status below 500' }),
  failed: Type.Integer({ description: 'Calls that reached the plugin and failed: a 5xx answer, a timeout, a connection error' }),
  rejected: Type.Integer({ description: 'Calls refused before the plugin: not running, circuit open, bulkhead full' }),
  successRate: Type.Number({ description: 'succeeded / total (0 when total is 0)' }),
  errorRate: Type.Number({ description: '(failed + rejected) / total (0 when total is 0)' }),
  avgResponseTimeMs: Nullable(Type.Number(), { description: `Moving average of the time until the answer's headers, milliseconds; the newest call weighs ${RESPONSE_TIME_WEIGHT}` }),
  lastCallAt: Nullable(Timestamp),
  lastSuccessAt: Nullable(Timestamp),
  lastFailure: Nullable(Type.Object({
    at: Timestamp,
    message: Type.String(),
    statusCode: Nullable(Type.Integer({ description: 'The answer\'s status when the plugin answered 5xx' }))
  })),
  consecutiveFailures: Type.Integer({ description: 'Failed or rejected calls since the last success' })
}, { $id: 'CallStatsResponse' })
export type CallStatsView = Static<typeof CallStats>

/** What became of one call, as the statistics count it. */
export type CallKind = 'succeeded' | 'failed' | 'rejected'

export class CallStatsRecord {
  succeeded = 0
  failed = 0
  rejected = 0
  avgMs = -1
  lastCallAt = 0
  lastSuccessAt = 0
  lastFailureAt = 0
  lastFailureMessage = ''
  lastFailureStatus: number | null = null
  consecutiveFailures = 0
  // The calls of the last minutes for the trend, one slot per minute (a ring reused in place:
  // allocated once per record, never per call).
  readonly #minute = new Float64Array(TREND_MINUTES).fill(-1)
  readonly #count = new Float64Array(TREND_MINUTES)
  readonly #failures = new Float64Array(TREND_MINUTES)
  readonly #timed = new Float64Array(TREND_MINUTES)
  readonly #sumMs = new Float64Array(TREND_MINUTES)

  record (kind: CallKind, durationMs: number, at: number, message?: string, statusCode?: number): void {
    this.lastCallAt = at
    const minute = Math.floor(at / MINUTE_MS)
    const i = minute % TREND_MINUTES
    if (this.#minute[i] !== minute) {
      this.#minute[i] = minute
      this.#count[i] = this.#failures[i] = this.#timed[i] = this.#sumMs[i] = 0
    }
    this.#count[i]++
    if (kind !== 'succeeded') this.#failures[i]++
    if (kind !== 'rejected') { this.#timed[i]++; this.#sumMs[i] += durationMs }
    // Refusals never reached the plugin: their time says nothing of its answers.
    if (kind !== 'rejected') this.avgMs = this.avgMs < 0 ? durationMs : this.avgMs + RESPONSE_TIME_WEIGHT * (durationMs - this.avgMs)
    if (kind === 'succeeded') {
      this.succeeded++
      this.lastSuccessAt = at
      this.consecutiveFailures = 0
      return
    }
    if (kind === 'failed') this.failed++
    else this.rejected++
    this.consecutiveFailures++
    this.lastFailureAt = at
    this.lastFailureMessage = message ?? kind
    this.lastFailureStatus = statusCode ?? null
  }

  /** The calls of the trend's two windows ending at `now` (see health/trend.ts). */
  windows (now: number): TrendWindows {
    const entries = []
    for (let i = 0; i < TREND_MINUTES; i++) {
      if (this.#minute[i] < 0) continue
      entries.push({ at: this.#minute[i] * MINUTE_MS + MINUTE_MIDDLE_MS, count: this.#count[i], failures: this.#failures[i], timed: this.#timed[i], sumMs: this.#sumMs[i] })
    }
    return windowsOf(now, entries)
  }

  view (plugin: string): CallStatsView {
    const total = this.succeeded + this.failed + this.rejected
    const iso = (ms: number): string | null => ms === 0 ? null : new Date(ms).toISOString()
    return {
      plugin,
      total,
      succeeded: this.succeeded,
      failed: this.failed,
      rejected: this.rejected,
      successRate: total === 0 ? 0 : this.succeeded / total,
      errorRate: total === 0 ? 0 : (this.failed + this.rejected) / total,
      avgResponseTimeMs: this.avgMs < 0 ? null : Math.round(this.avgMs * 1000) / 1000,
      lastCallAt: iso(this.lastCallAt),
      lastSuccessAt: iso(this.lastSuccessAt),
      lastFailure: this.lastFailureAt === 0 ? null : { at: iso(this.lastFailureAt)!, message: this.lastFailureMessage, statusCode: this.lastFailureStatus },
      consecutiveFailures: this.consecutiveFailures
    }
  }
}
