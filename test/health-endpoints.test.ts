// The health endpoints: /health, /health/liveness, /health/readiness, /health/:plugin and the
// compatibility route /plugins/health, against real probed fixture processes.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { build, fixturePlugin, served, tempDir, waitForEvent, writeConfig } from './helper.js'

// One failed probe makes a plugin unhealthy, and it stays so.
const probe = { failureThreshold: 1 }
const never = { restart: { policy: 'never' } }

t.test('readiness: waits for the initial start pass and critical plugins only; ?verbose lists checks, ?exclude skips them', async (t) => {
  const dir = tempDir()
  const coreFile = path.join(dir, 'core2')
  writeFileSync(coreFile, 'pass')
  const app = await build(t, writeConfig([
    served('core', { HEALTH: 'pass' }, probe, { ...never, critical: true }),
    served('core2', { HEALTH_FILE: coreFile }, probe, { ...never, critical: true }),
    served('extra', { HEALTH: '500' }, { ...probe, startup: undefined }, never)
  ], {}, dir), { boot: false })
  const sup = app.daemon.supervisor

  let res = await app.inject({ url: '/health/readiness?verbose' })
  t.equal(res.statusCode, 503, 'not ready before the initial start pass')
  t.match(res.json().checks, [
    { name: 'daemon:store-migrated', status: 'pass' },
    { name: 'daemon:store-writable', status: 'pass' },
    { name: 'daemon:startup', status: 'fail' },
    { name: 'daemon:initial-start', status: 'fail' },
    { name: 'core', status: 'fail' },
    { name: 'core2', status: 'fail' }
  ])
  t.notOk(res.json().checks.some((c: { name: string }) => c.name === 'extra'), 'non-critical plugins are no check')

  const ready = Promise.all(['core', 'core2'].map((n) => sup.waitFor(n, (s) => s.status === 'healthy', 10000)))
  const extraDown = waitForEvent(sup, 'health', (e) => e.plugin === 'extra' && e.to === 'unhealthy')
  await app.daemon.boot()
  await ready
  await extraDown
  res = await app.inject({ url: '/health/readiness' })
  t.equal(res.statusCode, 200, 'ready although a non-critical plugin is unhealthy')
  t.same(res.json(), { status: 'pass' }, 'no check list without ?verbose')

  const down = waitForEvent(sup, 'health', (e) => e.plugin === 'core2' && e.to === 'unhealthy')
  writeFileSync(coreFile, '500')
  await down
  res = await app.inject({ url: '/health/readiness?verbose=1' })
  t.equal(res.statusCode, 503, 'a critical plugin unhealthy: not ready')
  t.match(res.json().checks.find((c: { name: string }) => c.name === 'core2'), { status: 'fail', detail: 'critical plugin unhealthy' })
  t.match(res.json().checks.find((c: { name: string }) => c.name === 'core'), { status: 'pass' })

  res = await app.inject({ url: '/health/readiness?verbose&exclude=core2' })
  t.equal(res.statusCode, 200, '?exclude skips the failing check')
  t.notOk(res.json().checks.some((c: { name: string }) => c.name === 'core2'))
  res = await app.inject({ url: '/health/readiness?verbose&exclude=core2&exclude=core' })
  t.equal(res.statusCode, 200)
  t.same(res.json().checks.map((c: { name: string }) => c.name), ['daemon:store-migrated', 'daemon:store-writable', 'daemon:startup', 'daemon:initial-start'], '?exclude is repeatable')
})

t.test('GET /health: 503 only when a critical plugin is failed or unhealthy; warn for the others; liveness never fails because of plugins', async (t) => {
  const dir = tempDir()
  const critFile = path.join(dir, 'crit')
  writeFileSync(critFile, 'pass')
  const app = await build(t, writeConfig([
    served('crit', { HEALTH_FILE: critFile }, probe, { ...never, critical: true }),
    served('side', { HEALTH: 'fail' }, { ...probe, startup: undefined }, never),
    fixturePlugin('quiet', 'sleep', { autostart: false })
  ], {}, dir), { boot: false })
  const sup = app.daemon.supervisor
  const critUp = sup.waitFor('crit', (s) => s.status === 'healthy', 10000)
  const sideDown = waitForEvent(sup, 'health', (e) => e.plugin === 'side' && e.to === 'unhealthy')
  await app.daemon.boot()
  await critUp
  await sideDown

  let res = await app.inject({ url: '/health' })
  t.equal(res.statusCode, 200, 'a non-critical plugin down does not fail the daemon')
  t.match(res.headers['content-type'], /^application\/health\+json/)
  const body = res.json()
  t.equal(body.status, 'warn')
  t.match(body.plugins.crit, { status: 'healthy', healthy: true, critical: true, probe: 'http', failureCount: 0, restartCount: 0 })
  t.type(body.plugins.crit.lastHealthyTime, 'string')
  t.type(body.plugins.crit.responseTimeMs, 'number')
  t.match(body.plugins.side, { status: 'unhealthy', healthy: false, lastResult: 'failure' })
  t.match(body.plugins.quiet, { status: 'stopped', probe: null, lastCheckTime: null })
  t.match(body.summary, { totalPlugins: 3, healthyPlugins: 1, unhealthyPlugins: 1, stoppedPlugins: 1 })

  const critDown = waitForEvent(sup, 'health', (e) => e.plugin === 'crit' && e.to === 'unhealthy')
  writeFileSync(critFile, '500')
  await critDown
  res = await app.inject({ url: '/health' })
  t.equal(res.statusCode, 503)
  t.equal(res.json().status, 'fail')

  // Every plugin is failing now; the daemon itself is alive.
  res = await app.inject({ url: '/health/liveness' })
  t.equal(res.statusCode, 200)
  t.equal(res.json().status, 'pass')

  res = await app.inject({ url: '/plugins/health' })
  t.equal(res.statusCode, 200, 'the compatibility route reports, it is no probe target')
  t.match(res.json(), { status: 'unhealthy', plugins: { crit: { status: 'unhealthy', healthy: false }, side: { status: 'unhealthy' } } })
})

t.test('GET /health/:plugin: 200 healthy or degraded, 503 otherwise, 404 unknown', async (t) => {
  const app = await build(t, writeConfig([
    served('up', { HEALTH: 'warn' }, probe, never),
    fixturePlugin('off', 'sleep', { autostart: false })
  ]), { boot: false })
  const degraded = waitForEvent(app.daemon.supervisor, 'health', (e) => e.plugin === 'up' && e.to === 'degraded')
  await app.daemon.boot()
  await degraded
  let res = await app.inject({ url: '/health/up' })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { name: 'up', status: 'degraded', healthy: true, lastResult: 'warn' })
  const whole = await app.inject({ url: '/health' })
  t.equal(whole.statusCode, 200)
  t.equal(whole.json().status, 'warn', 'a degraded plugin makes the daemon warn, not fail')
  res = await app.inject({ url: '/health/off' })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { name: 'off', status: 'stopped', healthy: false })
  res = await app.inject({ url: '/health/nope' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'PLUGVISOR_PLUGIN_NOT_FOUND')
})
