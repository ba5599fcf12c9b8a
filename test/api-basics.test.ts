import t from 'tap'
import { build, fixturePlugin, writeConfig } from './helper.js'

t.test('GET /plugins lists loaded plugins and their state', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('one', 'sleep')]), { boot: false })
  await app.daemon.boot()
  const res = await app.inject({ method: 'GET', url: '/plugins' })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.plugins.length, 1)
  t.match(body.plugins[0], { name: 'one', state: 'running', health: 'healthy', status: 'healthy', desired: 'running' })
  t.type(body.plugins[0].pid, 'number')
})

t.test('unknown plugin is a 404 with a stable code', async (t) => {
  const app = await build(t, writeConfig([]), { boot: false })
  for (const [method, url] of [['GET', '/plugins/nope'], ['POST', '/plugins/nope/start'], ['GET', '/plugins/nope/logs'], ['GET', '/plugins/nope/events'], ['POST', '/plugins/restart?plugin=nope']] as const) {
    const res = await app.inject({ method, url })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.equal(res.json().code, 'PLUGVISOR_PLUGIN_NOT_FOUND', `${method} ${url}`)
  }
})

t.test('GET /plugins follows every change of a plugin (its JSON is kept between requests)', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('one', 'sleep'), fixturePlugin('two', 'sleep')]), { boot: false })
  await app.daemon.boot()
  const list = async () => {
    const res = await app.inject({ method: 'GET', url: '/plugins' })
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
    return res.json().plugins as Array<{ name: string, state: string, pid: number | null, restartCount: number, lastExit: unknown, uptimeMs: number, resources: unknown }>
  }
  const before = await list()
  t.match(before, [{ name: 'one', state: 'running' }, { name: 'two', state: 'running' }])
  await app.inject({ method: 'POST', url: '/plugins/one/stop' })
  const stopped = await list()
  t.match(stopped[0], { name: 'one', state: 'stopped', pid: null, uptimeMs: 0 })
  t.not(stopped[0].lastExit, null, 'the exit is shown')
  t.same(stopped[1], { ...before[1], uptimeMs: stopped[1].uptimeMs, resources: stopped[1].resources }, 'the other plugin as it was, apart from its uptime and sample')
  await app.inject({ method: 'POST', url: '/plugins/one/start' })
  const again = await list()
  t.match(again[0], { name: 'one', state: 'running' })
  t.not(again[0].pid, before[0].pid, 'a new process')
  const filtered = await app.inject({ method: 'GET', url: '/plugins?q=two' })
  t.same(filtered.json().plugins.map((p: { name: string }) => p.name), ['two'])
})

t.test('GET /plugins?field= writes only the fields asked for, and refuses a field that does not exist', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('one', 'sleep'), fixturePlugin('two', 'sleep', { autostart: false })]), { boot: false })
  await app.daemon.boot()
  const res = await app.inject({ method: 'GET', url: '/plugins?field=status&field=pid&field=status' })
  t.equal(res.statusCode, 200)
  const plugins = res.json().plugins
  t.same(plugins.map((p: object) => Object.keys(p)), [['name', 'status', 'pid'], ['name', 'status', 'pid']], 'the name, then the fields in the order of the full answer, each once')
  t.match(plugins, [{ name: 'one', status: 'healthy' }, { name: 'two', status: 'stopped', pid: null }])
  t.type(plugins[0].pid, 'number')
  const both = await app.inject({ method: 'GET', url: '/plugins?field=uptimeMs&status=stopped' })
  t.same(both.json().plugins, [{ name: 'two', uptimeMs: 0 }], 'with a filter')
  const full = await app.inject({ method: 'GET', url: '/plugins' })
  t.ok(Object.keys(full.json().plugins[0]).length > 20, 'without ?field, every field')
  for (const bad of ['nope', '', 'manifest']) {
    const r = await app.inject({ method: 'GET', url: `/plugins?field=${bad}` })
    t.equal(r.statusCode, 400, `field=${bad}`)
    t.equal(r.json().code, 'PLUGVISOR_VALIDATION', `field=${bad}`)
  }
})
