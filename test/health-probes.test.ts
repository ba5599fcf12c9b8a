// Probes against real fixture processes: each kind passing and failing, thresholds, the startup
// probe, warn => degraded, and what verdicts do to the lifecycle.
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { readEnviron } from '../src/process/proc.js'
import { FIXTURE, type Tap, build, collectEvents, fastProbe as fast, fixturePlugin, served, startupProbe as startup, tempDir, waitForEvent, writeConfig } from './helper.js'

/** For tests that count every failure from the first probe on. */
const noStartup = { startup: undefined }
const never = { policy: 'never' }

/** An app with the plugins, subscribed before boot so no event is missed. */
async function booted (t: Tap, plugins: unknown[], dir?: string) {
  const app = await build(t, writeConfig(plugins, {}, dir), { boot: false })
  return { app, sup: app.daemon.supervisor }
}

t.test('http probe: a 2xx answer makes the plugin healthy', async (t) => {
  const { app, sup } = await booted(t, [served('web', { HEALTH: 'pass' })])
  const probe = waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'web' && e.result === 'success')
  const healthy = waitForEvent(sup, 'health', (e) => e.plugin === 'web' && e.to === 'healthy')
  await app.daemon.boot()
  t.match(await probe, { probe: 'http', phase: 'startup' }, 'the startup probe passed')
  await healthy
  const res = await app.inject({ url: '/health/web' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /application\/health\+json/)
  t.match(res.json(), { name: 'web', status: 'healthy', healthy: true, probe: 'http', lastResult: 'success', failureCount: 0 })
  t.type(res.json().lastCheckTime, 'string')
})

t.test('http probe: failureThreshold consecutive failures make it unhealthy; restart policy never leaves it running', async (t) => {
  const { app, sup } = await booted(t, [served('web', { HEALTH: '500' }, { failureThreshold: 3, ...noStartup }, { restart: never })])
  const probes = collectEvents(t, app.daemon.healthMonitor, 'probe')
  const unhealthy = waitForEvent(sup, 'health', (e) => e.plugin === 'web' && e.to === 'unhealthy')
  await app.daemon.boot()
  await unhealthy
  // Unhealthy at the third counted failure; one refusal while the plugin still binds its port
  // is retried and does not count, so there may be a fourth before it.
  t.ok(probes.length === 3 || probes.length === 4, `three counted failures (${probes.length} probes)`)
  t.ok(probes.every((p) => p.result === 'failure'), 'every probe failed')
  t.match(probes[probes.length - 1].error, /HTTP 500|ECONNREFUSED/)
  // Probing goes on and the process stays up, unhealthy, for an operator to look at.
  await waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'web' && e.error === 'HTTP 500')
  t.match(sup.summary('web'), { state: 'running', health: 'unhealthy', status: 'unhealthy' })
  const res = await app.inject({ url: '/health/web' })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { status: 'unhealthy', healthy: false, lastResult: 'failure', lastError: 'HTTP 500' })
  t.ok(res.json().failureCount >= 3)
})

t.test('http probe: health+json status warn makes it degraded, status fail counts as a failure even with 200', async (t) => {
  const { app, sup } = await booted(t, [
    served('warned', { HEALTH: 'warn' }),
    served('failing', { HEALTH: 'fail', HEALTH_CODE: '200' }, noStartup, { restart: never })
  ])
  const degraded = waitForEvent(sup, 'health', (e) => e.plugin === 'warned' && e.to === 'degraded')
  const unhealthy = waitForEvent(sup, 'health', (e) => e.plugin === 'failing' && e.to === 'unhealthy')
  const warnProbe = waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'warned' && e.result !== 'failure')
  const failProbe = waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'failing' && e.error !== undefined && !e.error.includes('ECONNREFUSED'))
  await app.daemon.boot()
  t.equal((await warnProbe).result, 'warn')
  t.match(await failProbe, { result: 'failure', error: 'health+json status fail' })
  await degraded
  await unhealthy
  t.equal(sup.summary('warned').status, 'degraded')
  t.equal((await app.inject({ url: '/health/warned' })).statusCode, 200, 'degraded still serves')
  t.match(sup.summary('failing'), { state: 'running', health: 'unhealthy' })
})

t.test('tcp probe: a listener passes, a closed port fails', async (t) => {
  const { app, sup } = await booted(t, [
    fixturePlugin('listener', 'tcp', { port: 'auto', healthCheck: { tcp: {}, ...fast, ...startup } }),
    // sleep never listens: the connection is refused.
    fixturePlugin('deaf', 'sleep', { port: 'auto', restart: never, healthCheck: { tcp: {}, ...fast } })
  ])
  const ok = waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'listener' && e.result === 'success')
  const bad = waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'deaf')
  const healthy = waitForEvent(sup, 'health', (e) => e.plugin === 'listener' && e.to === 'healthy')
  const unhealthy = waitForEvent(sup, 'health', (e) => e.plugin === 'deaf' && e.to === 'unhealthy')
  await app.daemon.boot()
  t.match(await ok, { probe: 'tcp', result: 'success' })
  t.match(await bad, { probe: 'tcp', result: 'failure', error: /ECONNREFUSED/ })
  await healthy
  await unhealthy
})

t.test('an exec probe carries the instance marker of its plugin, so the cleanup after a hard kill finds it too; it failed before', async (t) => {
  const dir = tempDir()
  const seen = path.join(dir, 'probe-env.json')
  const record = "require('fs').writeFileSync(process.argv[1], JSON.stringify(process.env))"
  const { app, sup } = await booted(t, [
    fixturePlugin('marked', 'sleep', { healthCheck: { exec: { command: process.execPath, args: ['-e', record, seen] }, ...fast, timeoutMs: 10000 } })
  ], dir)
  const probed = waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'marked')
  await app.daemon.boot()
  t.match(await probed, { result: 'success' })
  const own = readEnviron(sup.summary('marked').pid!)!.find((e) => e.startsWith('PLUGVISOR_INSTANCE='))
  t.ok(own, 'the plugin carries the marker')
  const env = JSON.parse(readFileSync(seen, 'utf8')) as Record<string, string>
  t.equal(`PLUGVISOR_INSTANCE=${env.PLUGVISOR_INSTANCE}`, own, 'and so does its probe, the same one')
  t.equal(env.PLUGVISOR_PLUGIN, 'marked')
})

t.test('exec probe: runs without a shell in the plugin cwd and env; exit 0 passes, non-zero fails, a hang is killed at the timeout', async (t) => {
  const dir = tempDir()
  writeFileSync(path.join(dir, 'marker'), 'x')
  // Starting node takes more than the 1 s of `fast` on a loaded machine; the hang is what times out here.
  const nodeStart = { ...fast, timeoutMs: 10000 }
  const check = "require('fs').accessSync('marker'); process.exit(process.env.PLUGVISOR_PLUGIN === 'good' && process.env.FLAVOUR === 'mint' ? 0 : 3)"
  const { app, sup } = await booted(t, [
    fixturePlugin('good', 'sleep', { env: { FLAVOUR: 'mint' }, healthCheck: { exec: { command: process.execPath, args: ['-e', check] }, ...nodeStart } }),
    fixturePlugin('bad', 'sleep', { env: { FLAVOUR: 'mint' }, restart: never, healthCheck: { exec: { command: process.execPath, args: ['-e', check] }, ...nodeStart } }),
    fixturePlugin('hung', 'sleep', { restart: never, healthCheck: { exec: { command: process.execPath, args: [FIXTURE, 'sleep'] }, ...fast, timeoutMs: 100 } })
  ], dir)
  const good = waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'good')
  const bad = waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'bad')
  const hung = waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'hung')
  const healthy = waitForEvent(sup, 'health', (e) => e.plugin === 'good' && e.to === 'healthy')
  const unhealthy = waitForEvent(sup, 'health', (e) => e.plugin === 'hung' && e.to === 'unhealthy')
  await app.daemon.boot()
  t.match(await good, { probe: 'exec', result: 'success' })
  t.match(await bad, { probe: 'exec', result: 'failure', error: 'exit code 3' }, 'same command, other plugin name: fails')
  t.match(await hung, { probe: 'exec', result: 'failure', error: /timed out after 100 ms/ })
  await healthy
  await unhealthy
})

t.test('successThreshold: an unhealthy plugin needs that many consecutive passes to be healthy again', async (t) => {
  const dir = tempDir()
  const file = path.join(dir, 'health')
  writeFileSync(file, '500')
  const { app, sup } = await booted(t, [served('web', { HEALTH_FILE: file }, { failureThreshold: 1, successThreshold: 3, ...noStartup }, { restart: never })], dir)
  const unhealthy = waitForEvent(sup, 'health', (e) => e.plugin === 'web' && e.to === 'unhealthy')
  await app.daemon.boot()
  await unhealthy
  const probes = collectEvents(t, app.daemon.healthMonitor, 'probe')
  const healthy = waitForEvent(sup, 'health', (e) => e.plugin === 'web' && e.to === 'healthy')
  writeFileSync(file, 'pass')
  await healthy
  const passes = probes.filter((p) => p.result === 'success')
  t.equal(passes.length, 3, 'healthy at the third consecutive pass, not before')
})

t.test('startup probe: holds the regular probe back until it passes, then the plugin is judged by the regular thresholds', async (t) => {
  const dir = tempDir()
  const file = path.join(dir, 'health')
  writeFileSync(file, '500')
  const { app, sup } = await booted(t, [served('slow', { HEALTH_FILE: file }, { failureThreshold: 1, startup: { failureThreshold: 1000, intervalMs: 50 } })], dir)
  const probes = collectEvents(t, app.daemon.healthMonitor, 'probe')
  const startupFailures = waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'slow' && e.phase === 'startup' && probes.filter((p) => p.result === 'failure').length >= 3)
  await app.daemon.boot()
  await startupFailures
  t.equal(sup.health('slow'), 'unknown', 'failures below the startup threshold give no verdict (the regular threshold of 1 does not apply)')
  t.ok(probes.every((p) => p.phase === 'startup'))
  const healthy = waitForEvent(sup, 'health', (e) => e.plugin === 'slow' && e.to === 'healthy')
  writeFileSync(file, 'pass')
  await healthy
  const regular = await waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'slow')
  t.equal(regular.phase, 'regular', 'after the startup probe passed once, the regular probe runs')
})

t.test('startup probe: startup.failureThreshold failures make the plugin unhealthy', async (t) => {
  const { app, sup } = await booted(t, [served('never-up', { HEALTH: '500' }, { failureThreshold: 100, startup: { failureThreshold: 3, intervalMs: 50 } }, { restart: never })])
  const probes = collectEvents(t, app.daemon.healthMonitor, 'probe')
  const unhealthy = waitForEvent(sup, 'health', (e) => e.plugin === 'never-up' && e.to === 'unhealthy')
  await app.daemon.boot()
  t.match(await unhealthy, { reason: 'startup probe failed 3 times' })
  // One refusal while the plugin still binds its port is retried and does not count.
  t.ok(probes.length === 3 || probes.length === 4, `three counted failures (${probes.length} probes)`)
  t.ok(probes.every((p) => p.phase === 'startup' && p.result === 'failure'), 'every startup probe failed')
})

t.test('unhealthy restarts the plugin through the backoff, with reason unhealthy in its events; a new process starts a fresh probe cycle', async (t) => {
  const { app, sup } = await booted(t, [served('web', { HEALTH: '500' }, { failureThreshold: 2, ...noStartup }, { restart: { initialDelayMs: 0, jitter: 0, maxRestarts: 5 } })])
  const restarts = collectEvents(t, sup, 'restart')
  const healthAtRunning: string[] = []
  sup.on('transition', (e) => { if (e.to === 'running') healthAtRunning.push(sup.health(e.plugin)) })
  const rerun = waitForEvent(sup, 'transition', (e) => e.plugin === 'web' && e.to === 'running' && e.restartCount === 1)
  await app.daemon.boot()
  await rerun
  t.equal(restarts[0].reason, 'unhealthy')
  t.same(healthAtRunning.slice(0, 2), ['unknown', 'unknown'], 'the new process has no verdict yet: a fresh probe cycle')
  const res = await app.inject({ url: '/plugins/web/events' })
  const reasons = res.json().events.map((e: { reason: string }) => e.reason)
  t.ok(reasons.includes('unhealthy'), `events name the reason: ${reasons.join(', ')}`)
  const first = res.json().events.filter((e: { reason: string }) => e.reason === 'unhealthy').reverse()
  t.match(first[0], { from: 'running', to: 'stopping' })
  t.match(first[1], { from: 'stopping', to: 'backoff' })
})

t.test('the summary says unhealthy from the failing probes until the restart (stopping and backoff), then unknown for the new process', async (t) => {
  const { app, sup } = await booted(t, [served('web', { HEALTH: '500' }, { failureThreshold: 2, ...noStartup }, { restart: { initialDelayMs: 500, jitter: 0, maxRestarts: 5 } })])
  const seen: { to: string, health: string, status: string }[] = []
  const onTransition = (e: { plugin: string, to: string }): void => {
    if (e.plugin !== 'web') return
    const s = sup.summary('web')
    seen.push({ to: e.to, health: s.health, status: s.status })
  }
  sup.on('transition', onTransition)
  t.teardown(() => { sup.off('transition', onTransition) })
  const unhealthy = waitForEvent(sup, 'health', (e) => e.plugin === 'web' && e.to === 'unhealthy')
  const backoff = waitForEvent(sup, 'transition', (e) => e.plugin === 'web' && e.to === 'backoff')
  const restarted = waitForEvent(sup, 'transition', (e) => e.plugin === 'web' && e.to === 'starting' && e.restartCount === 1)
  await app.daemon.boot()
  await unhealthy
  await backoff
  const during = await app.inject({ url: '/plugins/web' })
  t.match(during.json(), { state: 'backoff', health: 'unhealthy', status: 'restarting' }, 'GET /plugins/:name during the backoff shows why it restarts')
  const listed = await app.inject({ url: '/plugins' })
  t.match(listed.json().plugins[0], { name: 'web', health: 'unhealthy' }, 'and so does the list')
  await restarted
  const restartIndex = seen.findIndex((x) => x.to === 'stopping')
  t.same(seen.slice(restartIndex, restartIndex + 3), [
    { to: 'stopping', health: 'unhealthy', status: 'restarting' },
    { to: 'backoff', health: 'unhealthy', status: 'restarting' },
    { to: 'starting', health: 'unknown', status: 'restarting' }
  ], 'unhealthy through stopping and backoff; the new process starts without a verdict')
})

t.test('?wait=healthy on start answers once the probe says healthy', async (t) => {
  const { app } = await booted(t, [served('web', { HEALTH: 'pass' }, {}, { autostart: false })])
  await app.daemon.boot()
  const probes = collectEvents(t, app.daemon.healthMonitor, 'probe')
  const res = await app.inject({ method: 'POST', url: '/plugins/web/start?wait=healthy&timeoutMs=10000' })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { state: 'running', health: 'healthy', status: 'healthy' })
  t.ok(probes.length >= 1, 'a probe ran before the answer')
})

t.test('dependsOn: a dependent starts only once its probed dependency is healthy', async (t) => {
  const dir = tempDir()
  const file = path.join(dir, 'health')
  writeFileSync(file, '500')
  const { app, sup } = await booted(t, [
    served('db', { HEALTH_FILE: file }, { failureThreshold: 1000 }),
    fixturePlugin('api', 'sleep', { dependsOn: ['db'] })
  ], dir)
  const order: string[] = []
  sup.on('health', (e) => { if (e.plugin === 'db') order.push(`db:${e.to}`) })
  sup.on('transition', (e) => { if (e.plugin === 'api') order.push(`api:${e.to}`) })
  const boot = app.daemon.boot()
  await waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'db' && e.result === 'failure')
  await waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'db' && e.result === 'failure')
  t.equal(sup.summary('api').state, 'stopped', 'api waits while db has no healthy verdict')
  writeFileSync(file, 'pass')
  await boot
  t.same(order, ['db:healthy', 'api:starting', 'api:running'])
})
