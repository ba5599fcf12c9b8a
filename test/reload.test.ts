// POST /config/reload, its dry run, the CLI and SIGHUP: only what changed is applied, an invalid
// manifest keeps the running version, main-config changes wait for a restart.
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { alive, build, fixturePlugin, followLog, tempDir, writeConfig } from './helper.js'
import { packageRoot } from '../src/paths.js'
import { openDatabase } from '../src/store/database.js'
import { createAuditStore } from '../src/store/audit-store.js'
import type { LoadedConfig } from '../src/config/load.js'

const bin = path.join(packageRoot, 'dist/src/bin.cjs')

/** A config folder with `files` (name -> manifest) in its plugins folder. */
function setup (files: Record<string, unknown>, extra: Record<string, unknown> = {}): LoadedConfig {
  const dir = tempDir()
  mkdirSync(path.join(dir, 'plugins.d'))
  for (const [name, doc] of Object.entries(files)) writeManifest(dir, name, doc)
  return writeConfig([], extra, dir)
}

function writeManifest (dir: string, file: string, doc: unknown): void {
  writeFileSync(path.join(dir, 'plugins.d', file), typeof doc === 'string' ? doc : JSON.stringify(doc))
}

type App = Awaited<ReturnType<typeof build>>
const pidOf = (app: App, name: string): number | null => app.daemon.supervisor.summary(name).pid

t.test('reload adds, removes and changes plugins; only the changed one restarts', async (t) => {
  const loaded = setup({ 'a.json': fixturePlugin('a', 'sleep'), 'b.json': fixturePlugin('b', 'sleep'), 'c.json': fixturePlugin('c', 'sleep') })
  const dir = path.dirname(loaded.file)
  const app = await build(t, loaded, { boot: false })
  await app.daemon.boot()
  const before = { a: pidOf(app, 'a')!, b: pidOf(app, 'b')!, c: pidOf(app, 'c')! }

  writeManifest(dir, 'd.yaml', `name: d\ncommand: ${JSON.stringify(process.execPath)}\nargs: ${JSON.stringify(fixturePlugin('d', 'sleep').args)}\n`)
  rmSync(path.join(dir, 'plugins.d', 'c.json'))
  writeManifest(dir, 'b.json', fixturePlugin('b', 'sleep', { env: { VERSION: '2' } }))
  // Same manifest, other key order: not a change.
  const a = fixturePlugin('a', 'sleep')
  writeManifest(dir, 'a.json', Object.fromEntries(Object.entries(a).reverse()))

  const res = await app.inject({ method: 'POST', url: '/config/reload' })
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), { dryRun: false, added: ['d'], removed: ['c'], changed: ['b'], reconfigured: [], unchanged: ['a'], kept: [], problems: [], restartRequired: [] })
  t.equal(pidOf(app, 'a'), before.a, 'a untouched')
  t.ok(alive(before.a))
  t.not(pidOf(app, 'b'), before.b, 'b restarted')
  t.notOk(alive(before.b))
  t.equal(app.daemon.supervisor.manifest('b').env.VERSION, '2')
  t.notOk(app.daemon.supervisor.has('c'))
  t.notOk(alive(before.c), 'c stopped')
  t.equal(app.daemon.supervisor.summary('d').state, 'running', 'd started (autostart)')
  const status = (await app.inject({ url: '/config/status' })).json()
  t.same(status.plugins.map((p: { name: string }) => p.name).sort(), ['a', 'b', 'd'])
  t.same(status.problems, [])

  const again = (await app.inject({ method: 'POST', url: '/config/reload' })).json()
  t.same([again.added, again.removed, again.changed, again.unchanged.sort()], [[], [], [], ['a', 'b', 'd']], 'a second reload changes nothing')
})

t.test('an invalid manifest file keeps the running version and is reported with file, path and reason', async (t) => {
  const loaded = setup({ 'a.json': fixturePlugin('a', 'sleep'), 'b.json': fixturePlugin('b', 'sleep') })
  const dir = path.dirname(loaded.file)
  const app = await build(t, loaded, { boot: false })
  await app.daemon.boot()
  const pidA = pidOf(app, 'a')!
  writeManifest(dir, 'a.json', fixturePlugin('a', 'sleep', { restart: { jitter: 5 }, env: { NEW: '1' } }))
  writeManifest(dir, 'broken.yaml', 'name: [oops\n')
  const res = await app.inject({ method: 'POST', url: '/config/reload' })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.same(body.kept, ['a'])
  t.same(body.removed, [])
  t.same(body.unchanged, ['b'])
  const file = path.join(dir, 'plugins.d', 'a.json')
  t.ok(body.problems.some((p: { file: string, path: string, reason: string }) => p.file === file && p.path === '/restart/jitter' && /must be <= 1/.test(p.reason)), JSON.stringify(body.problems))
  t.ok(body.problems.some((p: { file: string, reason: string }) => p.file.endsWith('broken.yaml') && /cannot parse/.test(p.reason)))
  t.equal(pidOf(app, 'a'), pidA, 'the old process keeps running')
  t.same(app.daemon.supervisor.manifest('a').env, {}, 'with the old manifest')
  const status = (await app.inject({ url: '/config/status' })).json()
  t.ok(status.problems.some((p: { file: string }) => p.file === file), 'GET /config/status lists the problem')
  t.same(status.plugins.map((p: { name: string }) => p.name), ['a', 'b'])
})

t.test('a plugin kept at its running version keeps what it depends on', async (t) => {
  const loaded = setup({ 'base.json': fixturePlugin('base', 'sleep'), 'top.json': fixturePlugin('top', 'sleep', { dependsOn: ['base'] }) })
  const dir = path.dirname(loaded.file)
  const app = await build(t, loaded, { boot: false })
  await app.daemon.boot()
  rmSync(path.join(dir, 'plugins.d', 'base.json'))
  writeManifest(dir, 'top.json', { ...fixturePlugin('top', 'sleep', { dependsOn: ['base'] }), bogus: true })
  const body = (await app.inject({ method: 'POST', url: '/config/reload' })).json()
  t.same(body.kept.sort(), ['base', 'top'])
  t.same(body.removed, [])
  t.ok(body.problems.some((p: { reason: string }) => /'base' is kept running: 'top'/.test(p.reason)), JSON.stringify(body.problems))
  t.equal(app.daemon.supervisor.summary('base').state, 'running')
})

t.test('dryRun reports the diff and the problems and changes nothing', async (t) => {
  const loaded = setup({ 'a.json': fixturePlugin('a', 'sleep'), 'b.json': fixturePlugin('b', 'sleep') })
  const dir = path.dirname(loaded.file)
  const app = await build(t, loaded, { boot: false })
  await app.daemon.boot()
  const pids = { a: pidOf(app, 'a'), b: pidOf(app, 'b') }
  writeManifest(dir, 'a.json', fixturePlugin('a', 'sleep', { args: ['x'] }))
  rmSync(path.join(dir, 'plugins.d', 'b.json'))
  writeManifest(dir, 'c.json', fixturePlugin('c', 'sleep'))
  writeManifest(dir, 'bad.json', { name: 'bad' })
  const res = await app.inject({ method: 'POST', url: '/config/reload?dryRun=true' })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.match(body, { dryRun: true, added: ['c'], removed: ['b'], changed: ['a'], unchanged: [] })
  t.match(body.problems, [{ file: path.join(dir, 'plugins.d', 'bad.json'), path: '', reason: /required property 'command'/ }])
  t.same({ a: pidOf(app, 'a'), b: pidOf(app, 'b') }, pids, 'same processes')
  t.notOk(app.daemon.supervisor.has('c'))
  t.same(app.daemon.supervisor.manifest('a').args, fixturePlugin('a', 'sleep').args)
  t.same((await app.inject({ url: '/config/status' })).json().problems, [], 'status unchanged')
})

t.test('main-config changes other than plugins are reported as needing a restart, not applied', async (t) => {
  const loaded = setup({}, { restartBudget: { burst: 5, perSecond: 1 } })
  const app = await build(t, loaded)
  const doc = JSON.parse(readFileSync(loaded.file, 'utf8'))
  writeFileSync(loaded.file, JSON.stringify({ ...doc, server: { port: 7999 }, restartBudget: { perSecond: 1, burst: 5 }, plugins: [fixturePlugin('inl', 'sleep')] }))
  const body = (await app.inject({ method: 'POST', url: '/config/reload' })).json()
  t.same(body.restartRequired, ['server'], 'key order inside restartBudget is no change')
  t.same(body.added, ['inl'], 'inline plugins are applied')
  t.equal(app.daemon.loaded.config.server.port, 7070, 'the running config keeps its server')
  t.same((await app.inject({ url: '/config/status' })).statusCode, 200)
})

t.test('an invalid main config is 400 PLUGVISOR_INVALID_CONFIG and nothing changes', async (t) => {
  const loaded = setup({ 'a.json': fixturePlugin('a', 'sleep') })
  const app = await build(t, loaded, { boot: false })
  await app.daemon.boot()
  const pid = pidOf(app, 'a')
  rmSync(path.join(path.dirname(loaded.file), 'plugins.d', 'a.json'))
  writeFileSync(loaded.file, JSON.stringify({ pluginsDir: './plugins.d', server: { port: 'many' } }))
  const res = await app.inject({ method: 'POST', url: '/config/reload' })
  t.equal(res.statusCode, 400)
  t.match(res.json(), { code: 'PLUGVISOR_INVALID_CONFIG', problems: [{ file: loaded.file, path: '/server/port' }] })
  t.equal(pidOf(app, 'a'), pid, 'a still runs')
})

t.test('plugvisor reload [--dry-run] against a real daemon', async (t) => {
  const loaded = setup({ 'a.json': fixturePlugin('a', 'sleep') })
  const app = await build(t, loaded)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  writeManifest(path.dirname(loaded.file), 'b.json', fixturePlugin('b', 'sleep'))
  const run = (...args: string[]) => promisify(execFile)(process.execPath, [bin, ...args], { env: { ...process.env, PLUGVISOR_URL: url }, timeout: 20000 })
  const dry = await run('reload', '--dry-run')
  t.match(dry.stdout, /^dry run, nothing changed:\n\s+would add\s+b\n/)
  t.notOk(app.daemon.supervisor.has('b'))
  const real = await run('reload', '--json')
  t.match(JSON.parse(real.stdout), { dryRun: false, added: ['b'], unchanged: ['a'] })
  t.ok(app.daemon.supervisor.has('b'))
  writeManifest(path.dirname(loaded.file), 'c.json', { name: 'c' })
  const failed = await run('reload').then(() => ({ code: 0, stderr: '' }), (err: { code: number, stderr: string }) => err)
  t.equal(failed.code, 1, 'a manifest not applied is exit 1')
  t.match(failed.stderr, /c\.json: \/: must have required property 'command'/)
})

t.test('SIGHUP makes a running `plugvisor serve` reload; it keeps serving', async (t) => {
  const loaded = setup({ 'a.json': fixturePlugin('a', 'sleep') }, { log: { level: 'info' } })
  const dir = path.dirname(loaded.file)
  const daemon = spawn(process.execPath, [bin, 'serve', '--config', loaded.file], {
    env: { ...process.env, PLUGVISOR_PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL') })
  const { entries, until } = followLog(daemon.stdout!)
  await until(() => entries.some((e) => e.msg === 'initial start pass done'))
  rmSync(path.join(dir, 'plugins.d', 'a.json'))
  writeManifest(dir, 'b.json', fixturePlugin('b', 'sleep'))
  daemon.kill('SIGHUP')
  await until(() => entries.some((e) => e.msg.startsWith('config reloaded')))
  const reloaded = entries.find((e) => e.msg.startsWith('config reloaded'))!
  t.same([reloaded.added, reloaded.removed], [['b'], ['a']])
  await until(() => entries.some((e) => e.plugin === 'b' && e.to === 'running'))
  t.ok(entries.some((e) => e.plugin === 'a' && e.to === 'stopped'), 'a was stopped')
  t.equal(daemon.exitCode, null, 'still running after SIGHUP')
  const exited = new Promise((resolve) => daemon.once('exit', resolve))
  daemon.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM still shuts down cleanly')
  // The reload by signal is in the audit log of the daemon's database.
  const db = openDatabase(loaded.dataDir)
  const [entry] = createAuditStore(db).list({ limit: 1 })
  db.close()
  t.match(entry, { actor: 'signal', method: 'SIGHUP', route: '/config/reload', status: 200 })
})
