// HTTP API shape: bulk operations, errors with stable codes, events, docs.
import t from 'tap'
import { build, fixturePlugin, writeConfig } from './helper.js'
import { ERROR_CODES } from '../src/errors.js'

t.test('bulk operations with ?plugin= (repeatable) and ?all=true; neither is a 400', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('a', 'sleep'), fixturePlugin('b', 'sleep'), fixturePlugin('c', 'sleep')]), { boot: false })
  await app.daemon.boot()
  const none = await app.inject({ method: 'POST', url: '/plugins/stop' })
  t.equal(none.statusCode, 400)
  t.equal(none.json().code, 'PLUGVISOR_VALIDATION')
  const two = await app.inject({ method: 'POST', url: '/plugins/stop?plugin=a&plugin=b' })
  t.equal(two.statusCode, 200)
  t.same(two.json().plugins.map((p: { name: string, state: string }) => [p.name, p.state]), [['a', 'stopped'], ['b', 'stopped']])
  t.equal(app.daemon.supervisor.summary('c').state, 'running', 'c untouched')
  const one = await app.inject({ method: 'POST', url: '/plugins/restart?plugin=c' })
  t.equal(one.statusCode, 200, 'the form existing plugin hosts use')
  t.equal(one.json().plugins[0].state, 'running')
  const all = await app.inject({ method: 'POST', url: '/plugins/start?all=true' })
  t.same(all.json().plugins.map((p: { state: string }) => p.state), ['running', 'running', 'running'])
  const bad = await app.inject({ method: 'POST', url: '/plugins/start?plugin=Not%20A%20Name' })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().code, 'PLUGVISOR_VALIDATION')
})

t.test('GET /plugins/:name/events lists transitions with reasons, newest first', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('e', 'sleep')]), { boot: false })
  await app.daemon.boot()
  await app.inject({ method: 'POST', url: '/plugins/e/stop' })
  const res = await app.inject({ method: 'GET', url: '/plugins/e/events?limit=10' })
  t.equal(res.statusCode, 200)
  const events = res.json().events as { from: string, to: string, reason: string, at: string }[]
  t.same(events.map((e) => `${e.from}>${e.to}`), ['stopping>stopped', 'running>stopping', 'starting>running', 'stopped>starting'])
  t.equal(events[1].reason, 'operator stop')
  t.ok(!Number.isNaN(Date.parse(events[0].at)))
  const bad = await app.inject({ method: 'GET', url: '/plugins/e/events?limit=abc' })
  t.equal(bad.statusCode, 400)
})

t.test('GET /plugins/:name redacts sensitive config; GET /plugins/status counts', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('s', 'sleep', {
    configSchema: { type: 'object', properties: { apiKey: { type: 'string', sensitive: true }, nested: { type: 'object', properties: { pw: { type: 'string', sensitive: true } } } } },
    config: { apiKey: 'secret-1', region: 'eu', nested: { pw: 'secret-2' } }
  })]), { boot: false })
  await app.daemon.boot()
  const res = await app.inject({ method: 'GET', url: '/plugins/s' })
  t.equal(res.statusCode, 200)
  t.same(res.json().manifest.config, { apiKey: '[redacted]', region: 'eu', nested: { pw: '[redacted]' } })
  t.notOk(res.body.includes('secret-'), 'no secret anywhere in the answer')
  const status = await app.inject({ method: 'GET', url: '/plugins/status' })
  t.match(status.json(), { enabled: true, initialized: true, total: 1, connected: 1, plugins: [{ name: 's', connected: true }] })
})

t.test('errors: unknown route 404, bad JSON 400, every code from the catalogue', async (t) => {
  const app = await build(t, writeConfig([]), { boot: false })
  const nf = await app.inject({ method: 'GET', url: '/nope' })
  t.same(nf.json(), { statusCode: 404, code: 'PLUGVISOR_NOT_FOUND', error: 'Not Found', message: 'no route GET /nope' })
  const badJson = await app.inject({ method: 'POST', url: '/plugins/start?all=true', headers: { 'content-type': 'application/json' }, payload: '{nope' })
  t.equal(badJson.statusCode, 400)
  t.equal(badJson.json().code, 'PLUGVISOR_VALIDATION')
  t.ok(ERROR_CODES.every((c) => c.startsWith('PLUGVISOR_')))
})

t.test('Swagger UI at /docs and the document at /docs/json', async (t) => {
  const app = await build(t, writeConfig([]), { boot: false })
  const doc = await app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(doc.statusCode, 200)
  t.ok(doc.json().paths['/plugins/{name}/start'])
  const ui = await app.inject({ method: 'GET', url: '/docs/' })
  t.equal(ui.statusCode, 200)
  t.match(ui.headers['content-type'], /text\/html/)
  const live = await app.inject({ method: 'GET', url: '/health/liveness' })
  t.equal(live.json().status, 'pass')
})

t.test('GET /config/status lists loaded plugins and skipped manifests with file, path, reason', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('fine', 'sleep'), { name: 'broken', command: 'x', restart: { policy: 'sometimes' } }]), { boot: false })
  const res = await app.inject({ method: 'GET', url: '/config/status' })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.same(body.plugins.map((p: { name: string }) => p.name), ['fine'])
  t.match(body.problems, [{ file: app.daemon.loaded.file, path: '/plugins/1/restart/policy', reason: /.+/ }])
})

t.test('router-level mistakes (bad %-encoding, over-long parameter) use the error shape too', async (t) => {
  const app = await build(t, writeConfig([]), { boot: false })
  const bad = await app.inject({ method: 'GET', url: '/plugins/%ZZ' })
  t.equal(bad.statusCode, 400)
  t.match(bad.json(), { statusCode: 400, code: 'PLUGVISOR_VALIDATION', error: 'Bad Request' })
  const long = await app.inject({ method: 'GET', url: `/plugins/${'a'.repeat(5000)}` })
  t.equal(long.statusCode, 414)
  t.match(long.json(), { statusCode: 414, code: 'PLUGVISOR_URI_TOO_LONG', error: 'URI Too Long' })
})
