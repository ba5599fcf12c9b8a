// Changes on disk, on a real folder: the main config and the plugins folder are watched (add,
// change, remove, invalid then fixed, editors' scratch files, bursts, the daemon's own writes),
// a plugin's watch paths restart it, and a pinned sha256 refuses another executable.
import t from 'tap'
import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { alive, build, fixturePlugin, tempDir, waitForEvent, writeConfig } from './helper.js'
import { packageRoot } from '../src/paths.js'
import type { ConfigEventData } from '../src/events/event-stream.js'
import type { LoadedConfig } from '../src/config/load.js'

const bin = path.join(packageRoot, 'dist/src/bin.cjs')
type App = Awaited<ReturnType<typeof build>>
const WATCH = { watch: { enabled: true, debounceMs: 150 } }

function setup (files: Record<string, unknown>, extra: Record<string, unknown> = WATCH): LoadedConfig {
  const dir = tempDir()
  mkdirSync(path.join(dir, 'plugins.d'))
  for (const [name, doc] of Object.entries(files)) put(dir, name, doc)
  return writeConfig([], extra, dir)
}
const put = (dir: string, file: string, doc: unknown): void => writeFileSync(path.join(dir, 'plugins.d', file), typeof doc === 'string' ? doc : JSON.stringify(doc))

/** The `config` events of GET /events as a queue: next() resolves with the next one (or one already in). */
function configEvents (t: { teardown: (fn: () => void) => void }, app: App): { next: () => Promise<ConfigEventData> } {
  const queue: ConfigEventData[] = []
  const waiting: ((e: ConfigEventData) => void)[] = []
  let text = ''
  const unsubscribe = app.daemon.events.subscribe({
    write (chunk) {
      text += chunk
      let end
      while ((end = text.indexOf('\n\n')) >= 0) {
        const block = text.slice(0, end)
        text = text.slice(end + 2)
        const m = /^event: config\ndata: (.*)$/s.exec(block)
        if (!m) continue
        const e = JSON.parse(m[1]) as ConfigEventData
        const w = waiting.shift()
        if (w) w(e)
        else queue.push(e)
      }
      return true
    },
    once () {},
    end () {},
    destroy () {}
  })
  t.teardown(unsubscribe)
  return { next: () => queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((resolve) => waiting.push(resolve)) }
}

const pidOf = (app: App, name: string): number | null => app.daemon.supervisor.summary(name).pid

/** A booted daemon over a fresh folder of manifests (setup), with its config events queued. */
async function watching (t: Parameters<typeof build>[0], files: Record<string, unknown>, extra?: Record<string, unknown>): Promise<{ loaded: LoadedConfig, dir: string, app: App, events: ReturnType<typeof configEvents> }> {
  const loaded = setup(files, extra)
  const app = await build(t, loaded, { boot: false })
  await app.daemon.boot()
  return { loaded, dir: path.dirname(loaded.file), app, events: configEvents(t, app) }
}

t.test('a dropped file starts, an edit applies only what changed, a removed file unloads', async (t) => {
  const { dir, app, events } = await watching(t, { 'a.json': fixturePlugin('a', 'sleep') })
  const pidA = pidOf(app, 'a')!

  put(dir, 'b.json', fixturePlugin('b', 'sleep'))
  const added = await events.next()
  t.match(added, { trigger: 'watch', files: [path.join(dir, 'plugins.d', 'b.json')], added: ['b'], removed: [], changed: [], problems: [] })
  t.equal(app.daemon.supervisor.summary('b').state, 'running', 'b started')
  const pidB = pidOf(app, 'b')!

  put(dir, 'b.json', fixturePlugin('b', 'sleep', { env: { VERSION: '2' } }))
  t.match(await events.next(), { changed: ['b'], added: [], removed: [] })
  t.not(pidOf(app, 'b'), pidB, 'b restarted with its new manifest')
  t.equal(app.daemon.supervisor.manifest('b').env.VERSION, '2')
  t.equal(pidOf(app, 'a'), pidA, 'a untouched')

  const pidB2 = pidOf(app, 'b')!
  rmSync(path.join(dir, 'plugins.d', 'b.json'))
  t.match(await events.next(), { removed: ['b'] })
  t.notOk(app.daemon.supervisor.has('b'))
  t.notOk(alive(pidB2), 'b stopped')
  const audit = (await app.inject({ url: '/audit?limit=10' })).json()
  t.ok(audit.entries.some((e: { actor: string, method: string }) => e.actor === 'watch' && e.method === 'WATCH'), 'a reload on a file change is audited')
})

t.test('an invalid or half-written file is reported and its running version keeps running; fixing it applies it', async (t) => {
  const { loaded, dir, app, events } = await watching(t, { 'a.json': fixturePlugin('a', 'sleep') })
  const file = path.join(dir, 'plugins.d', 'a.json')
  const pid = pidOf(app, 'a')!

  const whole = JSON.stringify(fixturePlugin('a', 'sleep', { env: { V: '2' } }))
  writeFileSync(file, whole.slice(0, 40)) // half written
  const bad = await events.next()
  t.same(bad.kept, ['a'])
  t.ok(bad.problems.some((p) => p.file === file && /cannot parse/.test(p.reason)), JSON.stringify(bad.problems))
  t.equal(pidOf(app, 'a'), pid, 'the running version stays')
  const status = (await app.inject({ url: '/config/status' })).json()
  t.ok(status.problems.some((p: { file: string }) => p.file === file), 'GET /config/status reports it')

  writeFileSync(file, whole)
  const fixed = await events.next()
  t.same([fixed.changed, fixed.problems], [['a'], []])
  t.not(pidOf(app, 'a'), pid)
  t.same((await app.inject({ url: '/config/status' })).json().problems, [], 'the problem is gone from the status')

  // An invalid main config: nothing applied, reported, then fixed.
  const main = readFileSync(loaded.file, 'utf8')
  writeFileSync(loaded.file, JSON.stringify({ ...JSON.parse(main), server: { port: 'many' } }))
  const refused = await events.next()
  t.match(refused, { trigger: 'watch', files: [loaded.file], refused: [{ file: loaded.file, path: '/server/port' }] })
  t.match((await app.inject({ url: '/config/status' })).json().problems, [{ path: '/server/port' }])
  writeFileSync(loaded.file, main)
  t.match(await events.next(), { refused: null, problems: [] })
})

t.test("editors' swap and temp files do not reload; a burst of writes is one reload", async (t) => {
  const { dir, app, events } = await watching(t, { 'a.json': fixturePlugin('a', 'sleep') })

  for (const scratch of ['.a.json.swp', 'a.json~', '4913', '.#a.json', '#a.json#', 'a.json.tmp', '.a.json.123.tmp', 'notes.txt']) put(dir, scratch, '{"name": "oops"')
  writeFileSync(path.join(dir, 'plugvisor.json.swp'), 'x')
  for (let v = 1; v <= 20; v++) put(dir, 'a.json', fixturePlugin('a', 'sleep', { env: { V: String(v) } }))
  const one = await events.next()
  t.same(one.files, [path.join(dir, 'plugins.d', 'a.json')], 'only the manifest counted')
  t.same(one.changed, ['a'])
  t.equal(app.daemon.supervisor.manifest('a').env.V, '20', 'the last version applied')
  put(dir, 'marker.json', fixturePlugin('marker', 'sleep', { autostart: false }))
  t.match(await events.next(), { added: ['marker'], files: [path.join(dir, 'plugins.d', 'marker.json')] }, 'the next reload is the marker: the burst was one')
})

t.test("the daemon's own writes (register, config change, unload) cause no reload", async (t) => {
  const { dir, app, events } = await watching(t, {})
  const doc = fixturePlugin('api', 'sleep', { configSchema: { type: 'object' }, config: { n: 1 } })
  t.equal((await app.inject({ method: 'POST', url: '/plugins', payload: doc })).statusCode, 201)
  t.equal((await app.inject({ method: 'PUT', url: '/plugins/api/config', payload: { n: 2 } })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: '/plugins/api' })).statusCode, 200)
  put(dir, 'marker.json', fixturePlugin('marker', 'sleep', { autostart: false }))
  t.match(await events.next(), { trigger: 'watch', files: [path.join(dir, 'plugins.d', 'marker.json')], added: ['marker'] }, 'the first reload is the marker')
})

t.test('watch.enabled false: nothing is watched', async (t) => {
  const { dir, app, events } = await watching(t, {}, { watch: { enabled: false } })
  put(dir, 'b.json', fixturePlugin('b', 'sleep'))
  // A reload by the API is the first config event: the file alone reloaded nothing.
  t.equal((await app.inject({ method: 'POST', url: '/config/reload' })).statusCode, 200)
  t.match(await events.next(), { trigger: 'api', added: ['b'] })
})

t.test('manifest watch paths restart a running plugin (reason watch, counted); a stopped one stays stopped', async (t) => {
  const work = tempDir()
  mkdirSync(path.join(work, 'src', 'lib'), { recursive: true })
  const watch = { paths: ['src/**/*.js', '*.conf'], debounceMs: 50 }
  const loaded = writeConfig([
    fixturePlugin('w', 'sleep', { cwd: work, watch }),
    fixturePlugin('idle', 'sleep', { cwd: work, watch, autostart: false })
  ])
  const app = await build(t, loaded, { boot: false })
  await app.daemon.boot()
  const sup = app.daemon.supervisor
  const pid = pidOf(app, 'w')!

  let restarted = waitForEvent(sup, 'restart', (e) => e.plugin === 'w')
  writeFileSync(path.join(work, 'src', 'lib', 'x.js'), '1')
  t.match(await restarted, { reason: 'watch' })
  let now = await sup.waitFor('w', (s) => s.state === 'running', 10000)
  t.not(now.pid, pid, 'a new process')
  t.notOk(alive(pid))
  t.equal(now.restartCount, 0, 'not an automatic restart after a crash')

  // Scratch files and unmatched names do nothing; a folder made later is watched too.
  mkdirSync(path.join(work, 'src', 'later'))
  writeFileSync(path.join(work, 'src', 'lib', '.x.js.swp'), '1')
  writeFileSync(path.join(work, 'readme.md'), '1')
  restarted = waitForEvent(sup, 'restart', (e) => e.plugin === 'w')
  writeFileSync(path.join(work, 'src', 'later', 'y.js'), '1')
  t.match(await restarted, { reason: 'watch' })
  now = await sup.waitFor('w', (s) => s.state === 'running', 10000)

  const metrics = (await app.inject({ url: '/metrics' })).body
  t.match(metrics, /plugvisor_plugin_restarts_total\{plugin="w",reason="watch"\} 2/)
  t.equal(sup.summary('idle').state, 'stopped', 'the stopped plugin with the same paths was not started')

  restarted = waitForEvent(sup, 'restart', (e) => e.plugin === 'w')
  writeFileSync(path.join(work, 'app.conf'), '1')
  await restarted
  await sup.waitFor('w', (s) => s.state === 'running', 10000)
  t.equal(sup.summary('idle').state, 'stopped')
})

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex')

t.test('a pinned sha256 that does not match: failed with reason checksum, never spawned, logged and audited', async (t) => {
  const wrong = '0'.repeat(64)
  const loaded = writeConfig([
    fixturePlugin('pinned', 'sleep', { sha256: sha256(process.execPath) }),
    fixturePlugin('tampered', 'sleep', { sha256: wrong })
  ])
  const app = await build(t, loaded, { boot: false })
  const spawned: string[] = []
  app.daemon.supervisor.on('transition', (e) => { if (e.to === 'running') spawned.push(e.plugin) })
  await app.daemon.boot()
  t.equal(app.daemon.supervisor.summary('pinned').state, 'running', 'the right digest starts')
  const s = app.daemon.supervisor.summary('tampered')
  t.match(s, { state: 'failed', pid: null })
  t.notOk(spawned.includes('tampered'), 'never running')
  const events = (await app.inject({ url: '/plugins/tampered/events' })).json().events
  t.match(events[0], { from: 'starting', to: 'failed', reason: 'checksum' })
  const audit = (await app.inject({ url: '/audit?plugin=tampered' })).json().entries
  t.match(audit, [{ actor: 'supervisor', method: 'SPAWN', route: '(checksum)', url: process.execPath, status: 409 }])
  // An operator start checks again: still refused.
  const again = await app.inject({ method: 'POST', url: '/plugins/tampered/start' })
  t.equal(again.json().state, 'failed')
  t.notOk(spawned.includes('tampered'))
})

t.test('plugvisor validate reports a wrong digest offline', async (t) => {
  const loaded = writeConfig([fixturePlugin('tampered', 'sleep', { sha256: 'ab'.repeat(32) }), fixturePlugin('fine', 'sleep', { sha256: sha256(process.execPath) })])
  const err = await promisify(execFile)(process.execPath, [bin, 'validate', loaded.file]).then(() => undefined, (e: { code: number, stderr: string }) => e)
  t.ok(err, 'exit 1')
  t.equal(err!.code, 1)
  t.match(err!.stderr, `${loaded.file}: /plugins/0/sha256: sha256 of ${process.execPath} is ${sha256(process.execPath)}, the manifest pins ${'ab'.repeat(32)}`)
  t.notMatch(err!.stderr, '/plugins/1/')
})
