// The pure rules: probe results to verdicts (thresholds, startup phase). The trend rule: trend.test.ts.
import t from 'tap'
import { initialCounters, nextVerdict, type ProbeCounters } from '../src/health/verdict.js'
import type { HealthCheck } from '../src/config/schema.js'
import type { ProbeResult } from '../src/health/probes.js'

const hc = (extra: Partial<HealthCheck> = {}): HealthCheck => ({ http: { path: '/health' }, intervalMs: 10, timeoutMs: 10, initialDelayMs: 0, failureThreshold: 3, successThreshold: 2, ...extra })

/** The verdicts (undefined: no change) after each result. */
function run (check: HealthCheck, results: ProbeResult[]): { verdicts: (string | undefined)[], counters: ProbeCounters } {
  let c = initialCounters(check)
  const verdicts: (string | undefined)[] = []
  for (const r of results) {
    const v = nextVerdict(c, r, check)
    c = v.counters
    verdicts.push(v.health)
  }
  return { verdicts, counters: c }
}

t.test('failureThreshold consecutive failures give unhealthy; a pass in between starts over', async (t) => {
  t.same(run(hc(), ['failure', 'failure', 'failure']).verdicts, [undefined, undefined, 'unhealthy'])
  t.same(run(hc(), ['failure', 'failure', 'success', 'failure', 'failure']).verdicts, [undefined, undefined, undefined, undefined, undefined])
})

t.test('successThreshold consecutive passes give healthy, or degraded when the last says warn', async (t) => {
  t.same(run(hc(), ['success', 'success']).verdicts, [undefined, 'healthy'])
  t.same(run(hc(), ['success', 'warn']).verdicts, [undefined, 'degraded'])
  t.same(run(hc({ successThreshold: 1 }), ['warn', 'success']).verdicts, ['degraded', 'healthy'])
  t.same(run(hc(), ['success', 'failure', 'success']).verdicts, [undefined, undefined, undefined], 'a failure resets the passes')
})

t.test('startup phase: only startup.failureThreshold counts; the first pass ends it and counts as a regular pass', async (t) => {
  const check = hc({ failureThreshold: 1, successThreshold: 1, startup: { failureThreshold: 3, intervalMs: 10 } })
  t.same(run(check, ['failure', 'failure']).verdicts, [undefined, undefined], 'the regular threshold of 1 does not apply')
  t.same(run(check, ['failure', 'failure', 'failure']).verdicts, [undefined, undefined, 'unhealthy'])
  const passed = run(check, ['failure', 'success'])
  t.same(passed.verdicts, [undefined, 'healthy'])
  t.equal(passed.counters.phase, 'regular')
  t.same(run(check, ['success', 'failure']).verdicts, ['healthy', 'unhealthy'], 'after startup, the regular threshold applies')
  t.equal(initialCounters(hc()).phase, 'regular', 'no startup probe: regular from the start')
})
