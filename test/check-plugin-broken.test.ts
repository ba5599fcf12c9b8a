// check-plugin on one broken plugin per check: the failing check, and a reason an author can act on.
import t from 'tap'
import path from 'node:path'
import { tempDir, fixturePlugin, alive } from './helper.js'
import { brokenPlugin, check, failures, withStatus } from './check-plugin-helper.js'

// Checks that wait the startup budget out: 1.1 s of it.
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
  const r = await check(brokenPlugin('serve', { env: { HEALTH: 'fail' }, healthCheck: quickBudget }))
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

t.test('a process of its group that outlives stop.timeoutMs fails "stop", naming the pid', async (t) => {
  const r = await check(brokenPlugin('grandchild', { port: undefined, healthCheck: undefined, stop: { timeoutMs: 300 } }))
  t.equal(r.by.stop.status, 'fail')
  const m = /^process (\d+) of its group was still running 300 ms after SIGTERM \(its main process had exited, a process it started had not: stop your children when you exit\)/.exec(r.by.stop.reason)
  t.ok(m, r.by.stop.reason)
  t.equal(alive(Number(m?.[1])), false, 'and it is gone now')
  const main = await check(brokenPlugin('ignore-sigterm', { port: undefined, healthCheck: undefined, stop: { timeoutMs: 300 } }))
  t.match(main.by.stop.reason, /^process \d+ of its group was still running 300 ms after SIGTERM \(its main process ignored SIGTERM or took too long to exit\)/)
})

t.test('a stale lock file after a SIGKILL fails "sigkill" with what happened after the restart', async (t) => {
  const lock = path.join(tempDir(), 'lock')
  const r = await check(brokenPlugin('serve', { env: { LOCK_FILE: lock }, restart: { initialDelayMs: 0, maxRestarts: 1 } }))
  t.equal(r.by.stop.status, 'pass', 'a stop removes the lock')
  t.equal(r.by.sigkill.status, 'fail')
  t.match(r.by.sigkill.reason, /^did not come back within .* after SIGKILL of pid \d+ \(restarted by plugvisor\): after the restart it exited with code 1.*lock file .* exists/)
  t.same(withStatus(r, 'fail'), ['sigkill'], failures(r))
})

t.test('cases and bench thresholds fail with the answer they got', async (t) => {
  const r = await check(brokenPlugin('serve'), {
    cases: [
      { name: 'echoes', request: { method: 'POST', path: '/echo?x=1', headers: {}, body: { a: 1 } }, expect: { status: 200, body: { method: 'POST', url: '/echo?x=1', body: '{"a":1}' } } },
      { name: 'wrong status', request: { method: 'GET', path: '/status/500', headers: {} }, expect: { status: 200 } },
      { name: 'wrong body', request: { method: 'GET', path: '/anything', headers: {} }, expect: { body: { method: 'PUT' } } }
    ],
    bench: { requests: 30, concurrency: 3, minSuccessRate: 0.9 }
  })
  t.equal(r.by['case:echoes'].status, 'pass', r.by['case:echoes'].reason)
  t.match(r.by['case:wrong status'].reason, /^GET \/status\/500: answered 500, expected 200/)
  t.match(r.by['case:wrong body'].reason, /^GET \/anything: body .* does not contain \{"method":"PUT"\}/)
  t.equal(r.by.bench.status, 'fail')
  t.match(r.by.bench.reason, /^success rate below 0.9 \(first failure: .*\): 30 requests, concurrency 3: /)
  t.equal(r.bench?.requests, 30)
})
