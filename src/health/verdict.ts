// From consecutive probe results to a health verdict, by the thresholds of the manifest. Pure:
// the monitor keeps the counters and applies the verdict.
import type { HealthCheck } from '../config/schema.js'
import type { Health } from '../supervisor/lifecycle.js'
import type { ProbePhase, ProbeResult } from './probes.js'

export interface ProbeCounters {
  /** The startup probe runs until it passes once; then the regular probe. */
  phase: ProbePhase
  /** Consecutive passes (success or warn) of the regular probe. */
  passes: number
  /** Consecutive failures of the regular probe. */
  failures: number
  /** Failures of the startup probe so far. */
  startupFailures: number
}

export function initialCounters (hc: Pick<HealthCheck, 'startup'> | undefined): ProbeCounters {
  return { phase: hc?.startup ? 'startup' : 'regular', passes: 0, failures: 0, startupFailures: 0 }
}

export interface Verdict {
  counters: ProbeCounters
  /** The health to set; undefined leaves it as it is (a threshold is not reached yet). */
  health: Health | undefined
  reason: string
}

/**
 * Applies one probe result. A startup probe that passes ends the startup phase and counts as
 * the first pass of the regular probe (it is the same check).
 */
export function nextVerdict (c: ProbeCounters, result: ProbeResult, hc: HealthCheck): Verdict {
  if (c.phase === 'startup') {
    if (result === 'failure') {
      const startupFailures = c.startupFailures + 1
      const limit = hc.startup?.failureThreshold ?? 1
      if (startupFailures >= limit) {
        return { counters: { ...c, startupFailures }, health: 'unhealthy', reason: `startup probe failed ${startupFailures} times` }
      }
      return { counters: { ...c, startupFailures }, health: undefined, reason: 'startup probe failed' }
    }
    return nextVerdict({ ...c, phase: 'regular', passes: 0, failures: 0 }, result, hc)
  }
  if (result === 'failure') {
    const failures = c.failures + 1
    const counters = { ...c, failures, passes: 0 }
    if (failures >= hc.failureThreshold) return { counters, health: 'unhealthy', reason: `${failures} consecutive probe failures` }
    return { counters, health: undefined, reason: 'probe failed' }
  }
  const passes = c.passes + 1
  const counters = { ...c, passes, failures: 0 }
  if (passes >= hc.successThreshold) {
    return result === 'warn'
      ? { counters, health: 'degraded', reason: 'probe says warn' }
      : { counters, health: 'healthy', reason: `${passes} consecutive probe successes` }
  }
  return { counters, health: undefined, reason: 'probe passed' }
}
