import t from 'tap'
import { spawnSync } from 'node:child_process'
import { build, fixturePlugin, needs, writeConfig } from './helper.js'

// promtool comes from Debian's prometheus package (.ci/run installs it). Missing in CI is a
// failure; on a developer machine without it the test says so and skips.
const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' })
const hasPromtool = promtool.error === undefined && promtool.status === 0

t.test('GET /metrics passes promtool check metrics', needs(hasPromtool, 'promtool', 'prometheus'), async (t) => {
  if (!hasPromtool) {
    t.fail('promtool is not installed: .ci/run installs Debian\'s prometheus package for this test')
    return
  }
  const app = await build(t, writeConfig([
    fixturePlugin('one', 'sleep'),
    fixturePlugin('two', 'serve', { port: 'auto', healthCheck: { http: {}, initialDelayMs: 600000 } })
  ]), { boot: false })
  await app.daemon.boot()
  app.daemon.resources.sample()
  app.daemon.healthMonitor.emit('probe', { plugin: 'two', probe: 'http', phase: 'regular', result: 'warn', durationMs: 3, at: Date.now() })
  await app.inject({ method: 'GET', url: '/plugins' })
  await app.inject({ method: 'GET', url: '/nope' })
  // A call through the invoke proxy (answered or refused, it is counted and timed).
  await app.inject({ method: 'GET', url: '/plugins/two/invoke/x' })
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.body, /plugvisor_plugin_health_check_duration_seconds_bucket/, 'the output holds every kind of family')
  t.match(res.body, /plugvisor_invocation_duration_seconds_bucket\{/, 'the invoke families too')
  t.match(res.body, /plugvisor_circuit_state\{/)
  const check = spawnSync('promtool', ['check', 'metrics'], { input: res.body, encoding: 'utf8' })
  t.equal(check.status, 0, `promtool exit status\n${check.stdout}${check.stderr}`)
  t.equal(`${check.stdout}${check.stderr}`.trim(), '', 'no lint findings')
})
