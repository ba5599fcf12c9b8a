// The fallback as a state, on real processes: auto mode switching to the fallback when the plugin
// becomes unavailable (killed, unhealthy, circuit open) and back when it recovers; an operator's
// activation overriding auto until deactivated; the SSE event, the gauge, the outcome, the audit.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { type Tap, bootListening, build, fixturePlugin, outputLine, served, tempDir, waitForEvent, writeConfig } from './helper.js'
import type { FallbackChange } from '../src/invoke/fallback.js'

const serve = (name: string, extra: Record<string, unknown> = {}) => fixturePlugin(name, 'serve', { port: 'auto', ...extra })
const never = { restart: { policy: 'never' } }

const fallbackChange = (app: FastifyInstance, plugin: string, to: FallbackChange['to']) =>
  waitForEvent(app.daemon.invoker, 'fallback', (e) => e.plugin === plugin && e.to === to)
const state = async (app: FastifyInstance, plugin: string, headers: Record<string, string> = {}) => (await app.inject({ url: `/plugins/${plugin}/fallback`, headers })).json()
/** Who answered a call: the fixture echoes its plugin name; a fixed fallback answers its body. */
const callOnce = async (app: FastifyInstance, plugin: string) => {
  const res = await app.inject({ url: `/plugins/${plugin}/invoke/who` })
  return { status: res.statusCode, via: res.headers['x-plugvisor-fallback'] ?? null, body: res.json() }
}
const metric = async (app: FastifyInstance, line: RegExp) => (await app.inject({ url: '/metrics' })).body.match(line)?.[1]

/** The daemon's real event stream, read through a sink that keeps every chunk. */
function sseEvents (t: Tap, app: FastifyInstance): () => { event: string, data: Record<string, unknown> }[] {
  const chunks: string[] = []
  const unsubscribe = app.daemon.events.subscribe({ write: (c) => { chunks.push(c); return true }, once: () => {}, end: () => {}, destroy: () => {} })
  t.teardown(unsubscribe)
  return () => chunks.join('').split('\n\n').map((block) => /^event: (\w+)\ndata: (.*)$/.exec(block)).filter((m) => m !== null).map((m) => ({ event: m[1], data: JSON.parse(m[2]) }))
}

t.test('auto: a killed plugin\'s calls go to the fallback plugin, and back to it once it runs again', async (t) => {
  const app = await build(t, writeConfig([
    serve('primary', { ...never, resilience: { fallback: { plugin: 'backup' } } }),
    serve('backup')
  ]), { boot: false })
  await bootListening(app)
  const sse = sseEvents(t, app)
  t.match(await state(app, 'primary'), { plugin: 'primary', configured: true, active: false, mode: 'auto', servedCalls: 0, target: { plugin: 'backup' } })
  t.match(await callOnce(app, 'primary'), { status: 200, via: null, body: { plugin: 'primary' } }, 'the plugin answers while it is available')
  t.equal(await metric(app, /plugvisor_fallback_active\{plugin="primary"\} (\d)/), '0')

  const sup = app.daemon.supervisor
  const switched = fallbackChange(app, 'primary', 'auto')
  process.kill(sup.summary('primary').pid!, 'SIGKILL')
  const on = await switched
  t.match(on, { from: 'inactive', to: 'auto', reason: 'plugin is stopped', target: { plugin: 'backup' }, actor: null })
  t.match(await state(app, 'primary'), { active: true, mode: 'auto', reason: 'plugin is stopped' })
  for (let i = 0; i < 3; i++) t.match(await callOnce(app, 'primary'), { status: 200, via: 'backup', body: { plugin: 'backup' } }, 'answered by the fallback plugin')
  t.equal((await state(app, 'primary')).servedCalls, 3)
  t.equal(await metric(app, /plugvisor_fallback_active\{plugin="primary"\} (\d)/), '1')
  t.equal(await metric(app, /plugvisor_invocations_total\{plugin="primary",outcome="fallback"\} (\d+)/), '3')
  t.equal(await metric(app, /plugvisor_invocations_total\{plugin="backup",outcome="success"\} (\d+)/), '3', 'the fallback plugin\'s own calls count for it')
  t.equal(await metric(app, /plugvisor_invocations_total\{plugin="primary",outcome="unavailable"\} (\d+)/), '0', 'one outcome per call: the plugin was not tried')
  t.equal((await app.inject({ url: '/plugins/primary/calls' })).json().total, 1, 'calls the fallback took are not the plugin\'s')

  // The switch back.
  const back = fallbackChange(app, 'primary', 'inactive')
  const listening = outputLine(sup, 'primary', /^listening/)
  await app.inject({ method: 'POST', url: '/plugins/primary/start' })
  t.match(await back, { from: 'auto', to: 'inactive', reason: 'plugin is running with a closed circuit', target: null, actor: null })
  await listening
  t.match(await callOnce(app, 'primary'), { status: 200, via: null, body: { plugin: 'primary' } }, 'calls go to the plugin again')
  t.equal(await metric(app, /plugvisor_fallback_active\{plugin="primary"\} (\d)/), '0')

  const events = sse().filter((e) => e.event === 'fallback')
  t.match(events, [{ data: { plugin: 'primary', from: 'inactive', to: 'auto', actor: null } }, { data: { plugin: 'primary', from: 'auto', to: 'inactive' } }], 'each change is an SSE event fallback')
  t.match(events[0].data.at, /^\d{4}-\d\d-\d\dT/)
  // Newest first; the oldest is the switch back at the first start (the plugin was stopped when loaded).
  const audit = (await app.inject({ url: '/audit?plugin=primary' })).json().entries.filter((e: { route: string }) => e.route === '(fallback)')
  t.match(audit.slice(0, 2), [
    { actor: 'supervisor', method: 'DEACTIVATE', url: 'auto -> inactive: plugin is running with a closed circuit' },
    { actor: 'supervisor', method: 'ACTIVATE', url: 'inactive -> auto: plugin is stopped' }
  ], 'automatic switches are audited')
})

t.test('auto: an unhealthy plugin\'s calls go to the fallback until it is healthy again', async (t) => {
  const dir = tempDir()
  const file = path.join(dir, 'health')
  writeFileSync(file, 'pass')
  const app = await build(t, writeConfig([
    served('sick', { HEALTH_FILE: file }, { failureThreshold: 1 }, { ...never, resilience: { fallback: { status: 203, body: { cached: true } } } })
  ], {}, dir), { boot: false })
  const sup = app.daemon.supervisor
  const healthy = sup.waitFor('sick', (s) => s.status === 'healthy', 10000)
  await app.daemon.boot()
  await healthy
  t.equal((await state(app, 'sick')).active, false)

  const on = fallbackChange(app, 'sick', 'auto')
  writeFileSync(file, 'fail')
  t.match(await on, { reason: 'plugin is unhealthy', target: { status: 203, body: { cached: true } } })
  t.equal(sup.summary('sick').state, 'running', 'still running (restart policy never)')
  t.match(await callOnce(app, 'sick'), { status: 203, via: 'status', body: { cached: true } })

  const off = fallbackChange(app, 'sick', 'inactive')
  writeFileSync(file, 'pass')
  await off
  t.match(await callOnce(app, 'sick'), { status: 200, via: null, body: { plugin: 'sick' } }, 'back to the plugin once healthy')
})

t.test('auto: an open circuit sends calls to the fallback; a half-open circuit lets its trial through, and closing it switches back', async (t) => {
  const app = await build(t, writeConfig([serve('brk', {
    resilience: { retry: { maxAttempts: 0 }, circuitBreaker: { consecutiveFailures: 1, halfOpenAfterMs: 300 }, fallback: { status: 200, body: { cached: true } } }
  })]), { boot: false })
  await bootListening(app)
  const inv = app.daemon.invoker
  const on = fallbackChange(app, 'brk', 'auto')
  const halfOpen = waitForEvent(inv, 'circuit', (e) => e.plugin === 'brk' && e.to === 'half-open')
  const failed = await app.inject({ url: '/plugins/brk/invoke/status/500' })
  t.equal(failed.headers['x-plugvisor-fallback'], 'status', 'the failed call itself is answered by the fallback')
  t.match(await on, { reason: 'circuit open' })
  t.match(await callOnce(app, 'brk'), { status: 200, via: 'status' }, 'the open circuit: the fallback answers')
  t.equal((await app.inject({ url: '/plugins/brk/calls' })).json().rejected, 0, 'without the plugin being tried (no refusal counted)')
  await halfOpen
  t.match(await state(app, 'brk'), { active: true, reason: 'circuit half-open' })
  const off = fallbackChange(app, 'brk', 'inactive')
  t.match(await callOnce(app, 'brk'), { status: 200, via: null, body: { plugin: 'brk' } }, 'the trial call goes to the plugin')
  await off
  t.equal((await inv.circuit('brk')).state, 'closed')
  t.match(await callOnce(app, 'brk'), { via: null, body: { plugin: 'brk' } })
})

t.test('manual: activate overrides auto until deactivated; an override body names another fallback; errors', async (t) => {
  const ADMIN = 'fallback-admin-token-0123456789'
  const auth = { authorization: `Bearer ${ADMIN}` }
  const app = await build(t, writeConfig([
    serve('web', { resilience: { fallback: { plugin: 'mirror' } } }),
    serve('mirror'),
    serve('plain')
  ], { auth: { mode: 'tokens', tokens: [{ name: 'ops', role: 'admin', tokenEnv: 'PV_FALLBACK_ADMIN' }] } }), { boot: false, env: { PV_FALLBACK_ADMIN: ADMIN } })
  await bootListening(app)
  const sse = sseEvents(t, app)
  const call = async (plugin: string) => {
    const res = await app.inject({ url: `/plugins/${plugin}/invoke/who`, headers: auth })
    return { status: res.statusCode, via: res.headers['x-plugvisor-fallback'] ?? null, body: res.json() }
  }
  const post = (url: string, payload?: unknown) => app.inject({ method: 'POST', url, headers: auth, ...(payload === undefined ? {} : { payload: payload as object }) })

  let res = await post('/plugins/web/fallback/activate')
  t.equal(res.statusCode, 200)
  t.match(res.json(), { active: true, mode: 'manual', reason: 'activated by ops', target: { plugin: 'mirror' } })
  t.match(await call('web'), { via: 'mirror', body: { plugin: 'mirror' } }, 'every call goes to the fallback although the plugin is healthy')

  res = await post('/plugins/web/fallback/activate', { status: 503, body: { maintenance: true } })
  t.match(res.json(), { mode: 'manual', target: { status: 503, body: { maintenance: true } } })
  t.match(await call('web'), { status: 503, via: 'status', body: { maintenance: true } }, 'the override answers')

  // The plugin dies and comes back while manual: manual stays.
  const sup = app.daemon.supervisor
  const running = waitForEvent(sup, 'transition', (e) => e.plugin === 'web' && e.to === 'running')
  await post('/plugins/web/restart')
  await running
  t.match(await state(app, 'web', auth), { active: true, mode: 'manual' }, 'auto does not end a manual activation')

  res = await post('/plugins/web/fallback/deactivate')
  t.equal(res.statusCode, 200)
  t.match(res.json(), { active: false, mode: 'auto', reason: 'deactivated by ops', target: { plugin: 'mirror' } }, 'back to auto with the manifest\'s fallback')
  t.match(await call('web'), { via: null, body: { plugin: 'web' } })
  t.match((await post('/plugins/web/fallback/deactivate')).json(), { active: false, mode: 'auto' }, 'deactivating twice is harmless')

  const events = sse().filter((e) => e.event === 'fallback').map((e) => e.data)
  t.match(events, [
    { plugin: 'web', from: 'inactive', to: 'manual', actor: 'ops', target: { plugin: 'mirror' } },
    { plugin: 'web', from: 'manual', to: 'manual', actor: 'ops', target: { status: 503 } },
    { plugin: 'web', from: 'manual', to: 'inactive', actor: 'ops', reason: 'deactivated by ops' }
  ])
  t.equal(await metric(app, /plugvisor_fallback_active\{plugin="web"\} (\d)/), '0')
  const audit = (await app.inject({ url: '/audit?plugin=web', headers: auth })).json().entries
  t.match(audit.filter((e: { route: string }) => e.route.startsWith('/plugins/:name/fallback')).map((e: { actor: string, route: string, status: number }) => [e.actor, e.route, e.status]), [
    ['ops', '/plugins/:name/fallback/deactivate', 200],
    ['ops', '/plugins/:name/fallback/deactivate', 200],
    ['ops', '/plugins/:name/fallback/activate', 200],
    ['ops', '/plugins/:name/fallback/activate', 200]
  ], 'operator changes are audited with the principal')

  // A plugin without a fallback: only with an override.
  t.match(await state(app, 'plain', auth), { configured: false, active: false, mode: 'off', target: null })
  res = await post('/plugins/plain/fallback/activate')
  t.equal(res.statusCode, 409)
  t.equal(res.json().code, 'PLUGVISOR_CONFLICT')
  res = await post('/plugins/plain/fallback/activate', { plugin: 'mirror' })
  t.match(res.json(), { configured: true, active: true, mode: 'manual' })
  t.match(await call('plain'), { via: 'mirror' })
  t.match((await post('/plugins/plain/fallback/deactivate')).json(), { configured: false, active: false, mode: 'off' })
  t.match(await call('plain'), { via: null, body: { plugin: 'plain' } })

  // Bad bodies name the field; unknown plugins are 404.
  for (const [body, field] of [[{ status: 42 }, /status/], [{ plugin: 'Not A Name' }, /plugin/], [{ colour: 'red' }, /required property 'plugin'.*required property 'status'/], [{ plugin: 'nope' }, /body\/plugin: plugin 'nope' is not loaded/], [{ plugin: 'plain' }, /body\/plugin must name another plugin/]] as const) {
    res = await post('/plugins/plain/fallback/activate', body)
    t.equal(res.statusCode, 400, JSON.stringify(body))
    t.equal(res.json().code, 'PLUGVISOR_VALIDATION')
    t.match(res.json().message, field)
  }
  t.equal((await state(app, 'plain', auth)).active, false, 'a refused activation changes nothing')
  for (const [method, url] of [['GET', '/plugins/nope/fallback'], ['POST', '/plugins/nope/fallback/activate'], ['POST', '/plugins/nope/fallback/deactivate']] as const) {
    res = await app.inject({ method, url, headers: auth })
    t.equal(res.statusCode, 404, url)
    t.equal(res.json().code, 'PLUGVISOR_PLUGIN_NOT_FOUND')
  }
})
