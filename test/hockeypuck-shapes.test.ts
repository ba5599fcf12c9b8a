// GET /plugins/status and GET /plugins/health answer in the shapes of the Hockeypuck plugin host
// they stand in for: each real answer is compared field by field (names, nesting, types) with
// that host's example, on real fixture processes; GET /health keeps its own shape.
import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { build, fixturePlugin, served, tempDir, waitForEvent, writeConfig } from './helper.js'
import { goDuration } from '../src/hosts/hockeypuck.js'

// The host's answers as its management API documents them (one plugin each).
const STATUS_EXAMPLE = {
  enabled: true,
  initialized: true,
  total: 1,
  connected: 1,
  plugins: [{ name: 'echo', version: '1.2.0', description: 'Echoes requests', connected: true, executable: 'node' }]
}
const HEALTH_EXAMPLE = {
  status: 'healthy',
  timestamp: '2026-12-01T15:00:00.000Z',
  plugins: {
    echo: {
      status: 'healthy',
      lastCheckTime: '2026-12-01T14:59:59.000Z',
      lastHealthyTime: '2026-12-01T14:59:59.000Z',
      failureCount: 0,
      restartCount: 0,
      responseTime: '15ms',
      healthy: true
    }
  },
  summary: { totalPlugins: 1, healthyPlugins: 1, unhealthyPlugins: 0, restartingPlugins: 0, failedPlugins: 0 }
}

/**
 * Every field of `example` is in `actual` with the same JSON type, and `actual` has no other
 * field; arrays and the per-plugin maps are compared item by item with the example's first item.
 * `nullable` names paths (with * for a plugin or an index) that may also be null.
 */
function sameShape (t: Test, actual: unknown, example: unknown, where: string, nullable: Set<string>, records: Set<string>): void {
  const kind = (v: unknown): string => v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v
  if (nullable.has(where) && actual === null) return
  t.equal(kind(actual), kind(example), `${where} is ${kind(example)}`)
  if (kind(example) === 'array') {
    for (const item of actual as unknown[]) sameShape(t, item, (example as unknown[])[0], `${where}[*]`, nullable, records)
    t.ok((actual as unknown[]).length > 0 || (example as unknown[]).length === 0, `${where} has items`)
    return
  }
  if (kind(example) !== 'object') return
  const a = actual as Record<string, unknown>
  const e = example as Record<string, unknown>
  if (records.has(where)) {
    const first = Object.values(e)[0]
    for (const v of Object.values(a)) sameShape(t, v, first, `${where}.*`, nullable, records)
    return
  }
  t.same(Object.keys(a).sort(), Object.keys(e).sort(), `${where} has exactly the example's fields`)
  for (const k of Object.keys(e)) if (k in a) sameShape(t, a[k], e[k], `${where}.${k}`, nullable, records)
}

t.test('GET /plugins/status and GET /plugins/health have exactly the host\'s fields, types and meaning', async (t) => {
  const dir = tempDir()
  const sickFile = path.join(dir, 'sick')
  writeFileSync(sickFile, 'pass')
  const app = await build(t, writeConfig([
    served('echo', { HEALTH: 'pass' }, {}, { version: '1.2.0', description: 'Echoes requests' }),
    served('sick', { HEALTH_FILE: sickFile }, { failureThreshold: 1 }, { restart: { policy: 'never' } }),
    fixturePlugin('off', 'sleep', { autostart: false })
  ], {}, dir), { boot: false })
  const sup = app.daemon.supervisor

  const before = (await app.inject({ url: '/plugins/status' })).json()
  t.equal(before.initialized, false, 'not initialized before the initial start pass')

  const up = Promise.all(['echo', 'sick'].map((n) => sup.waitFor(n, (s) => s.status === 'healthy', 10000)))
  await app.daemon.boot()
  await up
  const down = waitForEvent(sup, 'health', (e) => e.plugin === 'sick' && e.to === 'unhealthy')
  writeFileSync(sickFile, 'fail')
  await down

  const statusRes = await app.inject({ url: '/plugins/status' })
  t.equal(statusRes.statusCode, 200)
  const status = statusRes.json()
  sameShape(t, status, STATUS_EXAMPLE, 'status', new Set(), new Set())
  t.match(status, { enabled: true, initialized: true, total: 3, connected: 1 })
  const byName = Object.fromEntries(status.plugins.map((p: { name: string }) => [p.name, p]))
  t.same(byName.echo, { name: 'echo', version: '1.2.0', description: 'Echoes requests', connected: true, executable: process.execPath })
  t.same(byName.off, { name: 'off', version: '', description: '', connected: false, executable: process.execPath })
  t.equal(byName.sick.connected, false, 'an unhealthy plugin is not connected')

  const healthRes = await app.inject({ url: '/plugins/health' })
  t.equal(healthRes.statusCode, 200, 'always 200: a report, not a probe target')
  t.match(healthRes.headers['content-type'], /^application\/json/)
  const health = healthRes.json()
  const nullable = new Set(['health.plugins.*.lastCheckTime', 'health.plugins.*.lastHealthyTime'])
  sameShape(t, health, HEALTH_EXAMPLE, 'health', nullable, new Set(['health.plugins']))
  t.equal(health.status, 'degraded', 'a plugin meant to run is unhealthy: degraded (warn in GET /health)')
  t.same(health.summary, { totalPlugins: 3, healthyPlugins: 1, unhealthyPlugins: 1, restartingPlugins: 0, failedPlugins: 0 })
  t.match(health.plugins.echo, { status: 'healthy', healthy: true, failureCount: 0, restartCount: 0 })
  t.match(health.plugins.echo.responseTime, /^\d+(\.\d+)?(ns|µs|ms|s)$/, 'responseTime is a Go duration string')
  t.ok(Date.parse(health.plugins.echo.lastCheckTime) > 0)
  t.match(health.plugins.sick, { status: 'unhealthy', healthy: false, failureCount: 1 })
  t.match(health.plugins.off, { status: 'stopped', healthy: false, lastCheckTime: null, responseTime: '0s' })

  const whole = await app.inject({ url: '/health' })
  t.match(whole.headers['content-type'], /^application\/health\+json/, 'GET /health keeps application/health+json')
  t.equal(whole.json().status, 'warn', 'GET /health keeps pass | warn | fail')
  t.match(whole.json().summary, { degradedPlugins: 0, stoppedPlugins: 1 }, 'and its own summary')
  t.equal(typeof whole.json().plugins.echo.responseTimeMs, 'number')

  const doc = (await app.inject({ url: '/docs/json' })).json()
  const schemaOf = (route: string) => doc.paths[route].get.responses['200'].content['application/json'].schema
  t.match(JSON.stringify(schemaOf('/plugins/status')), /HockeypuckStatus/)
  t.match(JSON.stringify(schemaOf('/plugins/health')), /HockeypuckHealth/)
})

t.test('responseTime is written the way Go prints a time.Duration', async (t) => {
  t.equal(goDuration(0), '0s')
  t.equal(goDuration(0.00085), '850ns')
  t.equal(goDuration(0.25), '250µs')
  t.equal(goDuration(15), '15ms')
  t.equal(goDuration(1.845), '1.845ms')
  t.equal(goDuration(1500), '1.5s')
  t.equal(goDuration(60_000), '1m0s')
  t.equal(goDuration(123_500), '2m3.5s')
  t.equal(goDuration(3_600_000), '1h0m0s')
})
