// check-plugin on one broken plugin per check, the checks after startup: stop, SIGKILL, cases, bench.
import t from 'tap'
import path from 'node:path'
import { tempDir, alive } from './helper.js'
import { brokenPlugin, check, failures, withStatus } from './check-plugin-helper.js'

// Each check-plugin run is seconds of real processes (start, stay up, stop, SIGKILL, restart):
// a loaded 2-core machine needs more than the default file timeout. A bound against hangs only.
t.setTimeout(180_000)

t.test('a process of its group that outlives stop.timeoutMs fails "stop", naming the pid', async (t) => {
  const r = await check(brokenPlugin('serve', { env: { STUBBORN_CHILD: '1' }, stop: { timeoutMs: 300 } }))
  t.equal(r.by.stop.status, 'fail')
  const m = /^process (\d+) of its group was still running 300 ms after SIGTERM \(its main process had exited, a process it started had not: stop your children when you exit\)/.exec(r.by.stop.reason)
  t.ok(m, r.by.stop.reason)
  t.equal(alive(Number(m?.[1])), false, 'and it is gone now')
  const main = await check(brokenPlugin('serve', { env: { IGNORE_SIGTERM: '1' }, stop: { timeoutMs: 300 } }))
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
