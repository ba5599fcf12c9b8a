// No value expanded from ${VAR}, and no config value marked sensitive, leaves the daemon: every
// GET route, the daemon log, the audit log, the event stream and /metrics are searched for it.
/* eslint-disable no-template-curly-in-string -- ${VAR} is the manifest syntax under test */
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { get } from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { Writable } from 'node:stream'
import { redactValue, REDACTED } from '../src/config/redact.js'
import { build, served, tempDir, writeConfig } from './helper.js'

const SECRET = 'zq7-expanded-secret-41d9'
const LITERALS = ['lit-ref-1', 'lit-allof-2', 'lit-oneof-3', 'lit-additional-4', 'lit-pattern-5', 'lit-items-6', 'lit-prefix-7', 'lit-nested-8']

/** A configSchema that marks sensitive values in every place a JSON Schema can put them. */
const configSchema = {
  $defs: { password: { type: 'string', sensitive: true } },
  type: 'object',
  properties: {
    db: { type: 'object', properties: { password: { $ref: '#/$defs/password' } } },
    both: { allOf: [{ type: 'string' }, { sensitive: true }] },
    choice: { oneOf: [{ type: 'integer' }, { type: 'string', sensitive: true }] },
    extra: { type: 'object', additionalProperties: { type: 'string', sensitive: true } },
    byPattern: { type: 'object', patternProperties: { _secret$: { sensitive: true } } },
    list: { type: 'array', items: { sensitive: true } },
    tuple: { type: 'array', prefixItems: [{ type: 'string' }, { sensitive: true }] },
    deep: { anyOf: [{ $ref: '#/$defs/holder' }] }
  }
}
Object.assign(configSchema.$defs, { holder: { type: 'object', properties: { key: { $ref: '#/$defs/password' } } } })
const sensitiveConfig = {
  db: { password: LITERALS[0] },
  both: LITERALS[1],
  choice: LITERALS[2],
  extra: { any: LITERALS[3] },
  byPattern: { api_secret: LITERALS[4], shown: 'visible-value' },
  list: [LITERALS[5]],
  tuple: ['public-first', LITERALS[6]],
  deep: { key: LITERALS[7] }
}

/** A manifest that puts the secret in env, probe headers, config, args, description and version. */
const templated = (name: string, extra: Record<string, unknown> = {}) => served(name, { API_KEY: '${PV_SECRET_VALUE}', HEALTH: 'pass' }, { http: { path: '/health', headers: { authorization: 'Bearer ${PV_SECRET_VALUE}' } } }, {
  description: 'uses ${PV_SECRET_VALUE}',
  version: '${PV_SECRET_VALUE:-1}',
  args: ['--key=${PV_SECRET_VALUE}'],
  config: { token: '${PV_SECRET_VALUE}' },
  ...extra
})

t.test('redactValue honours sensitive through $ref, allOf, oneOf, anyOf, additionalProperties, patternProperties, items, prefixItems', async (t) => {
  const out = redactValue(sensitiveConfig, configSchema)
  t.same(out, {
    db: { password: REDACTED },
    both: REDACTED,
    choice: REDACTED,
    extra: { any: REDACTED },
    byPattern: { api_secret: REDACTED, shown: 'visible-value' },
    list: [REDACTED],
    tuple: ['public-first', REDACTED],
    deep: { key: REDACTED }
  })
})

t.test('a secret expanded from ${VAR} or marked sensitive reaches no output channel', async (t) => {
  process.env.PV_SECRET_VALUE = SECRET
  t.teardown(() => { delete process.env.PV_SECRET_VALUE })
  const dir = tempDir()
  mkdirSync(path.join(dir, 'plugins.d'))
  writeFileSync(path.join(dir, 'plugins.d', 'from-file.json'), JSON.stringify(templated('from-file')))
  const lines: string[] = []
  const logStream = new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } })
  const loaded = writeConfig([
    templated('inline'),
    { ...served('sensitive', { HEALTH: 'pass' }), configSchema, config: sensitiveConfig }
  ], { log: { level: 'trace' }, pluginPolicy: { allowEnv: ['PV_SECRET_*'] } }, dir)
  t.same(loaded.problems, [])
  const app = await build(t, loaded, { logger: undefined, logStream })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as AddressInfo).port

  // The event stream, read as a client would, from before the changes.
  let sse = ''
  const stream = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/events' }, resolve).on('error', reject)
  })
  stream.setEncoding('utf8').on('data', (c: string) => { sse += c })
  t.teardown(() => { stream.destroy() })

  const registered = await app.inject({ method: 'POST', url: '/plugins', payload: templated('over-api') })
  t.equal(registered.statusCode, 201, registered.body)
  const sup = app.daemon.supervisor
  for (const name of ['from-file', 'inline', 'sensitive', 'over-api']) {
    await sup.waitFor(name, (s) => s.status === 'healthy', 10000, 'healthy')
  }
  // The probe sent the expanded header (healthy above), and the plugin got the expanded env: they are used, not lost.
  t.equal(sup.manifest('over-api').env.API_KEY, SECRET)
  t.equal((await app.inject({ method: 'POST', url: '/plugins/inline/restart' })).statusCode, 200)
  t.equal((await app.inject({ method: 'PUT', url: '/plugins/over-api/config', payload: { token: '${PV_SECRET_VALUE}', more: 'x' } })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/plugins/nope/stop' })).statusCode, 404)

  // What the API shows is the manifest as written.
  for (const name of ['from-file', 'inline', 'over-api']) {
    const m = (await app.inject({ url: `/plugins/${name}` })).json()
    t.equal(m.manifest.env.API_KEY, '${PV_SECRET_VALUE}', `${name}: env as written`)
    t.equal(m.manifest.healthCheck.http.headers.authorization, 'Bearer ${PV_SECRET_VALUE}', `${name}: probe headers as written`)
    t.equal(m.manifest.config.token, '${PV_SECRET_VALUE}', `${name}: config as written`)
    t.equal(m.description, 'uses ${PV_SECRET_VALUE}', `${name}: summary as written`)
    t.equal(m.version, '${PV_SECRET_VALUE:-1}')
  }
  t.same((await app.inject({ url: '/plugins/sensitive' })).json().manifest.config.byPattern, { api_secret: REDACTED, shown: 'visible-value' })

  const gets = ['/plugins', '/plugins/status', '/plugins/health', '/health', '/health/liveness', '/health/readiness', '/config/status', '/audit', '/metrics', '/docs/json']
  for (const name of sup.names()) {
    gets.push(`/plugins/${name}`, `/plugins/${name}/events`, `/plugins/${name}/logs`, `/health/${name}`, `/plugins/${name}/health/history`)
  }
  const bodies: string[] = []
  for (const url of gets) {
    const res = await app.inject({ url })
    t.not(res.statusCode, 500, `GET ${url}: ${res.statusCode}`)
    bodies.push(`${url}\n${res.body}`)
  }
  const audit = JSON.stringify(app.daemon.audit.list({ limit: 1000 }))
  const log = lines.join('')
  t.ok(log.includes('over-api') && sse.includes('over-api') && audit.includes('/plugins/over-api/config'), 'the channels were written')
  for (const [channel, text] of [['GET answers', bodies.join('\n')], ['daemon log', log], ['audit log', audit], ['event stream', sse]] as const) {
    for (const secret of [SECRET, ...LITERALS]) t.notOk(text.includes(secret), `${channel} holds no ${secret}`)
  }
})

t.test('pluginPolicy.allowEnv limits what a manifest sent over the API may read', async (t) => {
  process.env.PV_SECRET_VALUE = SECRET
  t.teardown(() => { delete process.env.PV_SECRET_VALUE })
  const app = await build(t, writeConfig([served('on-disk', { HEALTH: 'pass', KEY: '${PV_SECRET_VALUE}' })]), { boot: false })
  const refused = await app.inject({ method: 'POST', url: '/plugins', payload: templated('api') })
  t.equal(refused.statusCode, 400)
  t.match(refused.json(), { code: 'PLUGVISOR_INVALID_MANIFEST', message: /PV_SECRET_VALUE is not in pluginPolicy\.allowEnv/ })
  t.ok(refused.json().problems.some((p: { file: string, path: string }) => p.file === 'request body' && p.path === '/env/API_KEY'), 'the problem names the field')
  t.equal(app.daemon.supervisor.manifest('on-disk').env.KEY, SECRET, 'manifests on disk and inline read any variable')

  const allowed = await build(t, writeConfig([], { pluginPolicy: { allowEnv: ['PLUGIN_*'] } }), { boot: false })
  process.env.PLUGIN_PORT_X = '1'
  t.teardown(() => { delete process.env.PLUGIN_PORT_X })
  const home = await allowed.inject({ method: 'POST', url: '/plugins?start=false', payload: served('home', { HEALTH: 'pass', WHERE: '${HOME}', OK: '${PLUGIN_PORT_X}' }) })
  t.equal(home.statusCode, 400)
  t.match(home.json().problems, [{ path: '/env/WHERE', reason: /HOME is not in pluginPolicy\.allowEnv/ }])
  t.equal(home.json().problems.length, 1, 'PLUGIN_PORT_X matches the glob')
  const ok = await allowed.inject({ method: 'POST', url: '/plugins?start=false', payload: served('ok', { HEALTH: 'pass', OK: '${PLUGIN_PORT_X}' }) })
  t.equal(ok.statusCode, 201, ok.body)
  const config = await allowed.inject({ method: 'PUT', url: '/plugins/ok/config', payload: { k: '${HOME}' } })
  t.equal(config.statusCode, 400)
  t.match(config.json(), { code: 'PLUGVISOR_VALIDATION', message: /HOME is not in pluginPolicy\.allowEnv/ })
})

t.test('a name cannot come from ${VAR}', async (t) => {
  const app = await build(t, writeConfig([{ ...served('x', {}), name: '${USER}' }]), { boot: false })
  t.match(app.daemon.loaded.problems, [{ path: '/plugins/0/name', reason: /written out/ }])
})
