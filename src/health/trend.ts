// The trend of a plugin's health, from its probe results and the calls into it of the last
// minutes. Pure: the health history counts the probes, the call statistics the calls.
//
// Rule: the last TREND_WINDOW_MS (recent) against the window before it (previous), for probes
// and for calls alike, two signals each:
// - failure share: recent minus previous; more than TREND_THRESHOLD (absolute) is degrading,
//   less than −TREND_THRESHOLD improving, else stable;
// - average latency: recent at least TREND_LATENCY_RATIO times previous and at least
//   TREND_LATENCY_MIN_MS more is degrading; the reverse improving; else stable.
// A source counts only when both windows hold at least its minimum (TREND_MIN_CHECKS probe
// results, TREND_MIN_CALLS calls; for latency, timed ones). Any degrading signal makes the trend
// degrading; otherwise any improving signal makes it improving; otherwise (or with no signal)
// stable. Probe warn results count as passes; calls count failed and refused ones as failures,
// and only calls that reached the plugin in the latency.

export const TREND_WINDOW_MS = 5 * 60_000
export const TREND_MIN_CHECKS = 3
export const TREND_MIN_CALLS = 10
export const TREND_THRESHOLD = 0.1
export const TREND_LATENCY_RATIO = 1.5
export const TREND_LATENCY_MIN_MS = 5

export const TREND_NAMES = ['improving', 'stable', 'degrading'] as const
export type Trend = typeof TREND_NAMES[number]

/** What one window holds: results (or calls), failures among them, and the timed ones with their total time. */
export interface WindowCounts { count: number, failures: number, timed: number, sumMs: number }
export interface TrendWindows { previous: WindowCounts, recent: WindowCounts }

export const emptyWindow = (): WindowCounts => ({ count: 0, failures: 0, timed: 0, sumMs: 0 })

/** The middle of a minute bucket: the point that says which window the bucket belongs to. */
export const MINUTE_MIDDLE_MS = 30_000

/**
 * Sorts counts into the two windows ending at `now` by their time `at`: a result's or call's own
 * time, or the middle of its minute bucket (a bucket belongs to the window that holds its middle).
 */
export function windowsOf (now: number, entries: Iterable<{ at: number, count: number, failures: number, timed: number, sumMs: number }>): TrendWindows {
  const recentFrom = now - TREND_WINDOW_MS
  const previousFrom = now - 2 * TREND_WINDOW_MS
  const w: TrendWindows = { previous: emptyWindow(), recent: emptyWindow() }
  for (const e of entries) {
    const into = e.at >= recentFrom ? w.recent : e.at >= previousFrom ? w.previous : null
    if (into === null) continue
    into.count += e.count
    into.failures += e.failures
    into.timed += e.timed
    into.sumMs += e.sumMs
  }
  return w
}

function failureSignal ({ previous, recent }: TrendWindows, min: number): Trend | null {
  if (previous.count < min || recent.count < min) return null
  const delta = recent.failures / recent.count - previous.failures / previous.count
  return delta > TREND_THRESHOLD ? 'degrading' : delta < -TREND_THRESHOLD ? 'improving' : 'stable'
}

function latencySignal ({ previous, recent }: TrendWindows, min: number): Trend | null {
  if (previous.timed < min || recent.timed < min) return null
  const before = previous.sumMs / previous.timed
  const now = recent.sumMs / recent.timed
  if (now >= before * TREND_LATENCY_RATIO && now - before >= TREND_LATENCY_MIN_MS) return 'degrading'
  if (before >= now * TREND_LATENCY_RATIO && before - now >= TREND_LATENCY_MIN_MS) return 'improving'
  return 'stable'
}

export function trendOf (probes: TrendWindows, calls?: TrendWindows): Trend {
  const signals = [failureSignal(probes, TREND_MIN_CHECKS), latencySignal(probes, TREND_MIN_CHECKS)]
  if (calls) signals.push(failureSignal(calls, TREND_MIN_CALLS), latencySignal(calls, TREND_MIN_CALLS))
  if (signals.includes('degrading')) return 'degrading'
  if (signals.includes('improving')) return 'improving'
  return 'stable'
}
