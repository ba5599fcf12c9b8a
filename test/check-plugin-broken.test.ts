// check-plugin on one broken plugin per check, the startup checks: the failing check, and a reason an author can act on.
import t from 'tap'
import { fixturePlugin } from './helper.js'
import { brokenPlugin, check, failures, withStatus } from './check-plugin-helper.js'

// Each check-plugin run is seconds of real processes (start, stay up, stop, SIGKILL, restart):
// a loaded 2-core machine needs more than the default file timeout. A bound against hangs only.
t.setTimeout(180_000)

// For a check that waits the startup budget out and never needs the plugin up: 1.1 s of it.
const quickBudget = { http: { path: '/health' }, intervalMs: 100, timeoutMs: 200, startup: { failureThreshold: 10, intervalMs: 100 } }

t.test('an invalid manifest: every problem with its path, the rest skipped, nothing started', async (t) => {
  const r = await check(fixturePlugin('bad', 'serve', { restart: { policy: 'sometimes' }, requires: { plugvisor: '>=42' } }))
  t.equal(r.ok, false)
  t.equal(r.by.manifest.status, 'fail')
  t.match(r.by.manifest.reason, /\/restart\/policy: must be one of "always", "on-failure", "never"/)
  const future = await check(fixturePlugin('future', 'serve', { requires: { plugvisor: '>=42' } }))
  t.match(future.by.manifest.reason, /bad|future\.json: \/requires\/plugvisor: needs plugvisor >=42; this is plugvisor \d/)
  t.same(withStatus(future, 'skip').length, future.checks.length - 1, 'nothing else ran')
})

t.test('a plugin that exits once up fails "starts", with its exit code and last output', async (t) => {
  const r = await check(brokenPlugin('serve', { env: { EXIT_AFTER_HEALTH: '3' }, restart: { policy: 'never' } }))
  t.equal(r.by.starts.status, 'fail')
  t.match(r.by.starts.reason, /^the process \(pid \d+\) exited with code 3 [\d.]+ m?s after it started; last output: "listening \d+"/)
  t.same(withStatus(r, 'fail').includes('stop'), false, 'later checks are skipped, not failed')
  const missing = await check({ name: 'missing', command: '/nonexistent/program' })
  t.equal(missing.by.starts.status, 'fail')
  t.equal(missing.by.starts.reason, 'could not be started: /nonexistent/program does not exist; it printed nothing')
})

t.test('a plugin that never listens fails "listens" with the port and the budget', async (t) => {
  const r = await check(brokenPlugin('sleep', { healthCheck: quickBudget }))
  t.equal(r.by.listens.status, 'fail')
  t.match(r.by.listens.reason, /^did not listen on PORT \d+ within [\d.]+ m?s \(startup budget: healthCheck.initialDelayMs \+ \(startup.failureThreshold - 1\) × startup.intervalMs \+ timeoutMs/)
  t.equal(r.by.health.status, 'fail')
  t.equal(r.by.starts.status, 'pass', 'it does stay up')
  t.equal(r.ok, false)
})

t.test('a failing health check fails "health" with the last probe error', async (t) => {
  const r = await check(brokenPlugin('serve', { env: { HEALTH: 'fail' } }))
  t.equal(r.by.listens.status, 'pass')
  t.equal(r.by.health.status, 'fail')
  t.match(r.by.health.reason, /^did not pass within [\d.]+ m?s .*probe\(s\) failed, the last with: HTTP 503/)
})

t.test('a health+json body without a status fails "health-json"', async (t) => {
  const r = await check(brokenPlugin('serve', { env: { HEALTH_BODY: '{"state":"fine"}' } }))
  t.equal(r.by.health.status, 'pass', 'plugvisor itself reads it as a pass')
  t.equal(r.by['health-json'].status, 'fail')
  t.equal(r.by['health-json'].reason, "GET /health: the body has no 'status' (pass, warn or fail)")
  t.same(withStatus(r, 'fail'), ['health-json'], failures(r))
})

t.test('a wrapper that drops PLUGVISOR_CONFIG fails "config"', async (t) => {
  const m = brokenPlugin('serve', { config: { greeting: 'hi' } })
  const r = await check({ ...m, command: 'env', args: ['-u', 'PLUGVISOR_CONFIG', ...[m.command as string, ...(m.args as string[])]] })
  t.equal(r.by.config.status, 'fail')
  t.match(r.by.config.reason, /^process \d+ has no PLUGVISOR_CONFIG in its environment/)
  t.same(withStatus(r, 'fail'), ['config'], failures(r))
})
