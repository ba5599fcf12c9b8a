// The trend of a plugin's health, from its probe results of the last minutes.
//
// Rule: compare the failure rate of the last TREND_WINDOW_MS with that of the window before it.
// If either window holds fewer than TREND_MIN_CHECKS results, or the rates differ by at most
// TREND_THRESHOLD (absolute), the trend is stable; a higher recent rate is degrading, a lower
// one improving. Warn results count as passes (they make a plugin degraded, not failing).

export const TREND_WINDOW_MS = 5 * 60_000
export const TREND_MIN_CHECKS = 3
export const TREND_THRESHOLD = 0.1

export const TREND_NAMES = ['improving', 'stable', 'degrading'] as const
export type Trend = typeof TREND_NAMES[number]

export interface CheckCounts { count: number, failures: number }

export function trendOf (previous: CheckCounts, recent: CheckCounts): Trend {
  if (previous.count < TREND_MIN_CHECKS || recent.count < TREND_MIN_CHECKS) return 'stable'
  const delta = recent.failures / recent.count - previous.failures / previous.count
  if (delta > TREND_THRESHOLD) return 'degrading'
  if (delta < -TREND_THRESHOLD) return 'improving'
  return 'stable'
}
