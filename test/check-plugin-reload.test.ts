// check-plugin's reload-hook check on broken plugins: a hook that fails, a signal without a
// handler, a plugin that takes the signal but never shows the new config. Each fails with a
// reason an author can act on; the other checks are not affected.
import t from 'tap'
import { brokenPlugin, check, failures, withStatus } from './check-plugin-helper.js'
import { fixturePlugin } from './helper.js'

// Each check-plugin run is seconds of real processes: a bound against hangs only.
t.setTimeout(180_000)

t.test('a reload hook that answers non-2xx fails "reload-hook" with the plugin\'s answer', async (t) => {
  const r = await check(brokenPlugin('serve', { env: { RELOAD_STATUS: '500' }, config: { level: 1 }, hooks: { reload: { http: { path: '/config' } } } }))
  t.equal(r.by['reload-hook'].status, 'fail')
  t.match(r.by['reload-hook'].reason, /^PUT \/config: the hook failed: PUT \/config: HTTP 500: config refused; the old config is back in place/)
  t.same(withStatus(r, 'fail'), ['reload-hook'], failures(r))
})

t.test('a reload signal the plugin has no handler for fails "reload-hook": the process did not survive it', async (t) => {
  const r = await check(fixturePlugin('fixture', 'sleep', { hooks: { reload: { signal: 'SIGHUP' } } }))
  t.equal(r.by['reload-hook'].status, 'fail')
  t.match(r.by['reload-hook'].reason, /^process \d+ (ended after SIGHUP|did not survive the reload) \(the default action of SIGHUP ends a process: install a handler for it\)/)
  t.same(withStatus(r, 'fail'), ['reload-hook'], 'the checks after it take the restarted process: ' + failures(r))
})

t.test('a plugin that takes the signal but never shows the new config fails "reload-hook", saying how to report it', async (t) => {
  const r = await check({ name: 'quiet', command: process.execPath, args: ['-e', "process.on('SIGHUP', () => {}); setInterval(() => {}, 1e9)"], stop: { timeoutMs: 1000 }, hooks: { reload: { signal: 'SIGHUP' } } })
  t.equal(r.by['reload-hook'].status, 'fail')
  t.match(r.by['reload-hook'].reason, /^SIGHUP succeeded and process \d+ kept running, but within 5 s neither its output nor its health answer showed the new config \(plugvisorCheck: "reload-[^"]+"\): read PLUGVISOR_CONFIG_FILE when it arrives/)
  t.equal(r.by.stop.status, 'pass', 'the checks after it still run')
})

t.test('no reload hook: skipped, saying a config change restarts the plugin', async (t) => {
  const r = await check(brokenPlugin('serve'))
  t.match(r.by['reload-hook'], { status: 'skip', reason: 'no hooks.reload declared: a change of config restarts the plugin' })
})
