// POST /plugins, DELETE /plugins/:name, PUT /plugins/:name/config against real processes and a
// real SQLite file: what runs and the manifest files in pluginsDir stay in step.
import t from 'tap'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { alive, build, collectEvents, fixturePlugin, waitForEvent, writeConfig } from './helper.js'

t.test('a registered manifest is written to pluginsDir, loaded and started; GET /config/status lists it', async (t) => {
  const loaded = writeConfig([])
  const app = await build(t, loaded)
  const res = await app.inject({ method: 'POST', url: '/plugins', payload: fixturePlugin('added', 'sleep', { description: 'at run time' }) })
  t.equal(res.statusCode, 201, res.body)
  const body = res.json()
  t.equal(res.headers.location, '/plugins/added')
  t.equal(body.state, 'running')
  t.equal(body.desired, 'running')
  t.ok(alive(body.pid), 'the process runs')
  const file = path.join(loaded.pluginsDir, 'added.json')
  t.equal(JSON.parse(readFileSync(file, 'utf8')).description, 'at run time', 'the manifest is on disk')
  const status = (await app.inject({ url: '/config/status' })).json()
  t.same(status.plugins, [{ name: 'added', source: file }])
  // What reload reads is what runs: nothing to do.
  const reload = (await app.inject({ method: 'POST', url: '/config/reload' })).json()
  t.same(reload.unchanged, ['added'])
  t.same([...reload.added, ...reload.removed, ...reload.changed], [])
})

t.test('?start=false loads without starting, and the choice is persisted over autostart', async (t) => {
  const app = await build(t, writeConfig([]))
  const res = await app.inject({ method: 'POST', url: '/plugins?start=false', payload: fixturePlugin('idle', 'sleep') })
  t.equal(res.statusCode, 201, res.body)
  t.match(res.json(), { state: 'stopped', desired: 'stopped', pid: null })
  t.equal(app.daemon.store.lifecycle.desiredStates().get('idle'), 'stopped')
})

t.test('an invalid manifest is 400 PLUGVISOR_INVALID_MANIFEST with every path and reason; nothing is written', async (t) => {
  const loaded = writeConfig([])
  const app = await build(t, loaded)
  const res = await app.inject({ method: 'POST', url: '/plugins', payload: { ...fixturePlugin('bad', 'sleep', { restart: { jitter: 2 } }), comand: 'x' } })
  t.equal(res.statusCode, 400)
  const body = res.json()
  t.equal(body.code, 'PLUGVISOR_INVALID_MANIFEST')
  t.match(body.message, /\/restart\/jitter: must be <= 1/)
  t.ok(body.problems.some((p: { path: string, reason: string }) => p.path === '/restart/jitter' && /must be <= 1/.test(p.reason)), JSON.stringify(body.problems))
  t.ok(body.problems.some((p: { reason: string }) => /unknown property 'comand'/.test(p.reason)))
  t.equal(body.problems[0].file, 'request body')
  t.notOk(existsSync(path.join(loaded.pluginsDir, 'bad.json')))
  t.notOk(app.daemon.supervisor.has('bad'))

  const unknownDep = await app.inject({ method: 'POST', url: '/plugins', payload: fixturePlugin('lonely', 'sleep', { dependsOn: ['nobody'] }) })
  t.equal(unknownDep.statusCode, 400)
  t.match(unknownDep.json(), { code: 'PLUGVISOR_INVALID_MANIFEST', problems: [{ path: '/dependsOn', reason: /unknown or invalid plugin\(s\): nobody/ }] })
  t.notOk(existsSync(path.join(loaded.pluginsDir, 'lonely.json')))

  const notObject = await app.inject({ method: 'POST', url: '/plugins', payload: [1, 2] })
  t.equal(notObject.statusCode, 400)
})

t.test('a name that exists is 409 PLUGVISOR_CONFLICT', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('taken', 'sleep')]))
  const res = await app.inject({ method: 'POST', url: '/plugins', payload: fixturePlugin('taken', 'sleep') })
  t.equal(res.statusCode, 409)
  t.match(res.json(), { code: 'PLUGVISOR_CONFLICT', message: /'taken' is already loaded/ })
})

t.test('delete: the process is gone, its metrics series and events stop, the file is retired', async (t) => {
  const loaded = writeConfig([fixturePlugin('other', 'sleep')])
  const app = await build(t, loaded, { boot: false })
  const { supervisor } = app.daemon
  await app.daemon.boot()
  // A crash loop: it would go on making events if unloading did not stop it.
  const created = await app.inject({ method: 'POST', url: '/plugins', payload: fixturePlugin('doomed', 'crash-after', { args: ['30'], restart: { maxRestarts: 1000 } }) })
  t.equal(created.statusCode, 201, created.body)
  await waitForEvent(supervisor, 'restart', (e) => e.plugin === 'doomed')
  t.match((await app.inject({ url: '/metrics' })).body, /plugin="doomed"/, 'series exist before')

  const transitions = collectEvents(t, supervisor, 'transition')
  const unloaded = collectEvents(t, supervisor, 'unloaded')
  const res = await app.inject({ method: 'DELETE', url: '/plugins/doomed' })
  t.equal(res.statusCode, 200, res.body)
  const file = path.join(loaded.pluginsDir, 'doomed.json')
  t.same(res.json(), { name: 'doomed', source: file, retiredTo: `${file}.deleted` })
  t.notOk(existsSync(file), 'the manifest left the plugins folder')
  t.ok(existsSync(`${file}.deleted`), 'renamed, not destroyed')
  t.same(unloaded, ['doomed'])
  t.equal((await app.inject({ url: '/plugins/doomed' })).statusCode, 404)
  t.notMatch((await app.inject({ url: '/metrics' })).body, /plugin="doomed"/, 'no series left')
  t.notOk(supervisor.names().includes('doomed'))

  // Something else happens afterwards; nothing of doomed's comes with it.
  const seenAt = transitions.length
  await app.inject({ method: 'POST', url: '/plugins/other/restart' })
  t.ok(transitions.slice(seenAt).some((e) => e.plugin === 'other'))
  t.notOk(transitions.slice(transitions.findIndex((e) => e.plugin === 'doomed' && e.to === 'stopped') + 1).some((e) => e.plugin === 'doomed'), 'no event after it stopped')
  const { plugins } = (await app.inject({ url: '/config/status' })).json()
  t.same(plugins.map((p: { name: string }) => p.name), ['other'])
  t.equal(app.daemon.store.lifecycle.desiredStates().has('doomed'), false, 'desired state forgotten')
})

t.test('delete: the process of a running plugin is gone when the answer comes', async (t) => {
  const app = await build(t, writeConfig([]))
  const { pid } = (await app.inject({ method: 'POST', url: '/plugins', payload: fixturePlugin('gone', 'sleep') })).json()
  t.ok(alive(pid))
  t.equal((await app.inject({ method: 'DELETE', url: '/plugins/gone' })).statusCode, 200)
  t.notOk(alive(pid))
  t.equal((await app.inject({ method: 'DELETE', url: '/plugins/gone' })).statusCode, 404, 'unknown now')
})

t.test('delete of a plugin another one depends on is 409; both keep running', async (t) => {
  const app = await build(t, writeConfig([]))
  const base = (await app.inject({ method: 'POST', url: '/plugins', payload: fixturePlugin('base', 'sleep') })).json()
  const top = (await app.inject({ method: 'POST', url: '/plugins', payload: fixturePlugin('top', 'sleep', { dependsOn: ['base'] }) })).json()
  const res = await app.inject({ method: 'DELETE', url: '/plugins/base' })
  t.equal(res.statusCode, 409)
  t.match(res.json(), { code: 'PLUGVISOR_CONFLICT', message: /cannot unload 'base': plugin 'top' depends on it/ })
  t.ok(alive(base.pid) && alive(top.pid))
  t.ok(existsSync(path.join(app.daemon.loaded.pluginsDir, 'base.json')), 'file untouched')
  // Dependent first, then the dependency: fine.
  t.equal((await app.inject({ method: 'DELETE', url: '/plugins/top' })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: '/plugins/base' })).statusCode, 200)
})

t.test('inline manifests cannot be deleted or reconfigured at run time: 409 saying why', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('inline', 'sleep')]))
  const del = await app.inject({ method: 'DELETE', url: '/plugins/inline' })
  t.equal(del.statusCode, 409)
  t.match(del.json().message, /defined inline in .*plugvisor\.json; remove it by editing that file and POST \/config\/reload/)
  const put = await app.inject({ method: 'PUT', url: '/plugins/inline/config', payload: {} })
  t.equal(put.statusCode, 409)
  t.ok(app.daemon.supervisor.has('inline'))
  t.equal((await app.inject({ method: 'PUT', url: '/plugins/nope/config', payload: {} })).statusCode, 404)
})

const configSchema = {
  type: 'object',
  properties: { greeting: { type: 'string' }, apiKey: { type: 'string', sensitive: true } },
  required: ['greeting', 'apiKey']
}

/** The environment the print-env fixture printed in its `nth` process (1-based): one JSON line each. */
async function printedEnv (app: Awaited<ReturnType<typeof build>>, name: string, nth: number): Promise<Record<string, string>> {
  const { supervisor } = app.daemon
  const printed = () => supervisor.logs(name, 1000).map((l) => l.line).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, string>)
  while (printed().length < nth) await waitForEvent(supervisor, 'output', (e) => e.plugin === name && e.line.startsWith('{'))
  return printed()[nth - 1]
}

t.test('a config change restarts the plugin with the new PLUGVISOR_CONFIG, written to its file, secrets redacted', async (t) => {
  const loaded = writeConfig([])
  const app = await build(t, loaded)
  const { supervisor } = app.daemon
  const before = (await app.inject({ method: 'POST', url: '/plugins', payload: fixturePlugin('env', 'print-env', { configSchema, config: { greeting: 'hi', apiKey: 's3cret' } }) })).json()
  t.same(JSON.parse((await printedEnv(app, 'env', 1)).PLUGVISOR_CONFIG), { greeting: 'hi', apiKey: 's3cret' })

  // Sent back as GET shows it: the redacted key keeps its value.
  const res = await app.inject({ method: 'PUT', url: '/plugins/env/config', payload: { greeting: 'hello', apiKey: '[redacted]' } })
  t.equal(res.statusCode, 200, res.body)
  const after = res.json()
  t.same(after.config, { greeting: 'hello', apiKey: '[redacted]' })
  t.notMatch(res.body, /s3cret/, 'the secret never appears in the answer')
  t.equal(after.state, 'running')
  t.not(after.pid, before.pid, 'a new process')
  t.notOk(alive(before.pid), 'the old one is gone')
  t.same(JSON.parse((await printedEnv(app, 'env', 2)).PLUGVISOR_CONFIG), { greeting: 'hello', apiKey: 's3cret' })
  t.same(JSON.parse(readFileSync(path.join(loaded.pluginsDir, 'env.json'), 'utf8')).config, { greeting: 'hello', apiKey: 's3cret' }, 'persisted')
  t.match((await app.inject({ url: '/plugins/env' })).json().manifest.config, { apiKey: '[redacted]', greeting: 'hello' })
  t.equal(supervisor.summary('env').restartCount, 0)

  const put2 = await app.inject({ method: 'PUT', url: '/plugins/env/config', payload: { greeting: 'again', apiKey: 'n3w' } })
  t.equal(put2.statusCode, 200)
  t.notMatch(put2.body, /n3w/)
  t.same(JSON.parse((await printedEnv(app, 'env', 3)).PLUGVISOR_CONFIG), { greeting: 'again', apiKey: 'n3w' })
})

t.test('an invalid config is 400 with path and reason; the old process keeps running, the file is untouched', async (t) => {
  const loaded = writeConfig([])
  const app = await build(t, loaded)
  const before = (await app.inject({ method: 'POST', url: '/plugins', payload: fixturePlugin('strict', 'sleep', { configSchema, config: { greeting: 'hi', apiKey: 'k' } }) })).json()
  const file = path.join(loaded.pluginsDir, 'strict.json')
  const onDisk = readFileSync(file, 'utf8')
  const res = await app.inject({ method: 'PUT', url: '/plugins/strict/config', payload: { greeting: 42 } })
  t.equal(res.statusCode, 400)
  const body = res.json()
  t.equal(body.code, 'PLUGVISOR_VALIDATION')
  t.ok(body.problems.some((p: { path: string, reason: string }) => p.path === '/config/greeting' && /must be string/.test(p.reason)), JSON.stringify(body.problems))
  t.ok(body.problems.some((p: { path: string, reason: string }) => p.path === '/config' && /apiKey/.test(p.reason)))
  t.equal(app.daemon.supervisor.summary('strict').pid, before.pid)
  t.ok(alive(before.pid))
  t.equal(readFileSync(file, 'utf8'), onDisk)
  t.equal((await app.inject({ method: 'PUT', url: '/plugins/strict/config', payload: [1] })).statusCode, 400, 'not an object')
})

t.test('a YAML manifest keeps its comments when its config changes', async (t) => {
  const loaded = writeConfig([])
  mkdirSync(loaded.pluginsDir, { recursive: true })
  writeFileSync(path.join(loaded.pluginsDir, 'commented.yaml'), [
    '# written by hand',
    'name: commented',
    `command: ${JSON.stringify(process.execPath)}`,
    `args: [${JSON.stringify(fixturePlugin('x', 'sleep').args as string[]).slice(1, -1)}]`,
    'config: { level: 1 }   # the level',
    ''
  ].join('\n'))
  const app = await build(t, writeConfig([], {}, path.dirname(loaded.file)))
  t.ok(app.daemon.supervisor.has('commented'))
  const res = await app.inject({ method: 'PUT', url: '/plugins/commented/config', payload: { level: 2 } })
  t.equal(res.statusCode, 200, res.body)
  const text = readFileSync(path.join(loaded.pluginsDir, 'commented.yaml'), 'utf8')
  t.match(text, /^# written by hand/)
  t.match(text, /level: 2/)
  t.same(app.daemon.supervisor.manifest('commented').config, { level: 2 })
})

t.test('every change needs an admin token', async (t) => {
  const dir = path.dirname(writeConfig([]).file)
  const loaded = writeConfig([fixturePlugin('p', 'sleep')], { auth: { mode: 'tokens', tokens: [{ name: 'v', role: 'viewer', tokenEnv: 'V_TOKEN' }, { name: 'a', role: 'admin', tokenEnv: 'A_TOKEN' }] } }, dir)
  const app = await build(t, loaded, { env: { V_TOKEN: 'viewer-token-0123456789', A_TOKEN: 'admin-token-0123456789' } })
  const viewer = { authorization: 'Bearer viewer-token-0123456789' }
  for (const [method, url, payload] of [['POST', '/plugins', fixturePlugin('q', 'sleep')], ['DELETE', '/plugins/p', undefined], ['PUT', '/plugins/p/config', {}], ['POST', '/config/reload', undefined]] as const) {
    t.equal((await app.inject({ method, url, payload })).statusCode, 401, `${method} ${url} without a token`)
    t.equal((await app.inject({ method, url, payload, headers: viewer })).statusCode, 403, `${method} ${url} as viewer`)
  }
  t.equal((await app.inject({ method: 'POST', url: '/config/reload?dryRun=true', headers: { authorization: 'Bearer admin-token-0123456789' } })).statusCode, 200)
})

t.test('replace is serialized with restarts: restart, replace, restart run one after the other, none joined across it', async (t) => {
  const app = await build(t, writeConfig([]))
  const { supervisor } = app.daemon
  const first = (await app.inject({ method: 'POST', url: '/plugins', payload: fixturePlugin('serial', 'print-env', { config: { v: 1 } }) })).json()
  const transitions = collectEvents(t, supervisor, 'transition')
  const next = { ...supervisor.manifest('serial'), config: { v: 2 } }
  const [, , last] = await Promise.all([supervisor.restart('serial'), supervisor.replace(next), supervisor.restart('serial')])
  const starts = transitions.filter((e) => e.plugin === 'serial' && e.to === 'running')
  t.equal(starts.length, 3, 'three starts: the second restart did not join the first')
  t.same(transitions.filter((e) => e.plugin === 'serial').map((e) => e.to), ['stopping', 'starting', 'running', 'stopping', 'stopped', 'starting', 'running', 'stopping', 'starting', 'running'])
  t.notOk(alive(first.pid))
  t.equal(last.pid, supervisor.summary('serial').pid)
  // A process stopped right after its start may not have printed: look for the new config, then check nothing older follows.
  const configs = () => supervisor.logs('serial', 1000).filter((l) => l.line.startsWith('{')).map((l) => JSON.parse(JSON.parse(l.line).PLUGVISOR_CONFIG).v as number)
  if (!configs().includes(2)) await waitForEvent(supervisor, 'output', (e) => e.plugin === 'serial' && e.line.includes('{\\"v\\":2}'))
  const seen = configs()
  t.same(seen.slice(seen.indexOf(2)), seen.slice(seen.indexOf(2)).map(() => 2), 'after the replace only the new config runs')
  t.equal(supervisor.summary('serial').state, 'running')
})

t.test('while a plugin is being unloaded, start and restart are refused with a conflict', async (t) => {
  const app = await build(t, writeConfig([]))
  const { supervisor } = app.daemon
  await app.inject({ method: 'POST', url: '/plugins', payload: fixturePlugin('leaving', 'ignore-sigterm', { stop: { timeoutMs: 300 } }) })
  const unloading = supervisor.unload('leaving')
  await t.rejects(supervisor.start('leaving'), { code: 'PLUGVISOR_CONFLICT', message: /being unloaded/ })
  await unloading
  t.notOk(supervisor.has('leaving'))
  t.throws(() => supervisor.restart('leaving'), { code: 'PLUGVISOR_PLUGIN_NOT_FOUND' })
})
