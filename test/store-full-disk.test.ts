// A store that cannot write must not stop supervision: a real full disk (a tmpfs filled to the
// last block, so SQLite fails with SQLITE_FULL), a daemon killed hard, real processes. And the
// write-ahead log is checkpointed on the store maintenance timer (fired by hand here).
import t from 'tap'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { alive, build, fixturePlugin, followLog, smallDisk, writeConfig, type SmallDisk } from './helper.js'
import { packageRoot } from '../src/paths.js'
import { findByEnviron } from '../src/process/proc.js'
import { loadConfig } from '../src/config/load.js'
import type { Every } from '../src/clock.js'

const bin = path.join(packageRoot, 'dist/src/bin.cjs')
// Mounting needs root (CAP_SYS_ADMIN): where it is not allowed the full-disk tests say so and skip.
const probe = smallDisk(t, 1 << 20)
const fullDisk = { skip: typeof probe === 'string' ? probe : false }

/** The store maintenance timer, fired by the test. */
function manualTimer (): { every: Every, fire: () => void } {
  let fn = (): void => { throw new Error('the daemon set no store maintenance timer') }
  return { every: (_ms, f) => { fn = f; return () => {} }, fire: () => fn() }
}

const walSize = (dataDir: string): number => statSync(path.join(dataDir, 'plugvisor.db-wal')).size

t.test('after a hard kill on a full disk the next daemon still starts its plugins; readiness names the store until writes work again; it failed before', fullDisk, async (t) => {
  const disk = smallDisk(t) as SmallDisk
  const run = randomUUID()
  const dataDir = path.join(disk.dir, 'data')
  const loaded = writeConfig([fixturePlugin('steady', 'sleep', { env: { TEST_RUN: run } })], { log: { level: 'info' }, dataDir })
  const ours = (): number[] => findByEnviron((env) => env.includes(`TEST_RUN=${run}`)).map((st) => st.pid)
  t.teardown(() => { for (const pid of ours()) { try { process.kill(pid, 'SIGKILL') } catch {} } })
  const daemon = spawn(process.execPath, [bin, 'serve', '--config', loaded.file], { env: { ...process.env, PLUGVISOR_PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (daemon.exitCode === null) daemon.kill('SIGKILL') })
  const { entries, until } = followLog(daemon.stdout!)
  await until(() => entries.some((e) => e.msg === 'initial start pass done'))
  const [old] = ours()
  daemon.kill('SIGKILL')
  await once(daemon, 'exit')
  disk.fill()

  const timer = manualTimer()
  const lines: string[] = []
  const app = await build(t, loaded, { boot: false, every: timer.every, logger: undefined, logStream: { write: (l: string) => { lines.push(l) } } })
  await app.daemon.boot()
  const s = app.daemon.supervisor.summary('steady')
  t.equal(s.state, 'running', 'the plugin runs again')
  t.not(s.pid, old)
  t.notOk(alive(old), 'what the killed daemon left is gone')
  t.ok(lines.some((l) => /could not persist the process identity of plugin steady: database or disk is full/.test(l)), 'the failed writes are logged')
  const ready = await app.inject({ method: 'GET', url: '/health/readiness?verbose' })
  t.equal(ready.statusCode, 503)
  t.match(ready.json().checks, [
    { name: 'daemon:store-migrated', status: 'pass' },
    { name: 'daemon:store-writable', status: 'fail', detail: /^store writes fail: database or disk is full; .*the process identity of plugin steady is not saved yet/ },
    { name: 'daemon:startup', status: 'pass' },
    { name: 'daemon:initial-start', status: 'pass' }
  ], 'readiness names the store and why; start-up is done')
  t.equal((await app.inject({ method: 'GET', url: '/health/liveness' })).statusCode, 200, 'liveness stays 200')

  disk.free()
  // One write that goes through (the audit entry of an operator call) is enough for a checkpoint.
  t.ok(walSize(dataDir) > 0)
  t.equal((await app.inject({ method: 'POST', url: '/plugins/steady/start' })).statusCode, 200)
  await new Promise((resolve) => setImmediate(resolve))
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(walSize(dataDir), 0, 'the first write that goes through again is followed by a checkpoint')
  timer.fire()
  const again = await app.inject({ method: 'GET', url: '/health/readiness?verbose' })
  t.equal(again.statusCode, 200, 'ready once writes work again')
  t.match(again.json().checks, [{ name: 'daemon:store-migrated' }, { name: 'daemon:store-writable', status: 'pass' }])
  t.match(app.daemon.store.lifecycle.recordedProcesses(), [{ plugin: 'steady', pid: s.pid }], 'what the store missed is written: the running process is recorded')
})

t.test('an operator stop on a full disk answers 503 PLUGVISOR_STATE_NOT_PERSISTED with the plugin stopped; saved once there is room; it failed before', fullDisk, async (t) => {
  const disk = smallDisk(t) as SmallDisk
  const loaded = writeConfig([fixturePlugin('parked', 'sleep'), fixturePlugin('other', 'sleep')], { dataDir: path.join(disk.dir, 'data') })
  const timer = manualTimer()
  const app = await build(t, loaded, { boot: false, every: timer.every })
  await app.daemon.boot()
  const pid = app.daemon.supervisor.summary('parked').pid!
  const fresh = (): number => app.daemon.supervisor.summary('parked').pid!
  t.equal((await app.inject({ method: 'POST', url: '/plugins/other/stop' })).statusCode, 200)
  disk.fill()

  const restart = await app.inject({ method: 'POST', url: '/plugins/restart?plugin=parked&plugin=other' })
  t.equal(restart.statusCode, 503, 'a bulk restart that changes a desired state it cannot save')
  t.match(restart.json(), { code: 'PLUGVISOR_STATE_NOT_PERSISTED', message: /^plugin 'other': restart done/ }, 'names the plugin whose desired state changed (parked was meant to run already)')
  t.match(app.daemon.supervisor.list().map((s) => [s.name, s.state]), [['parked', 'running'], ['other', 'running']], 'is done all the same: both run again')
  t.notOk(alive(pid))
  const restarted = fresh()
  const res = await app.inject({ method: 'POST', url: '/plugins/parked/stop' })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { code: 'PLUGVISOR_STATE_NOT_PERSISTED', message: /^plugin 'parked': stop done, but its desired state could not be saved \(database or disk is full\)/ })
  t.match(app.daemon.supervisor.summary('parked'), { state: 'stopped', desired: 'stopped' }, 'the stop itself was done')
  t.notOk(alive(restarted))
  const back = await app.inject({ method: 'POST', url: '/plugins/other/stop' })
  t.equal(back.statusCode, 200, 'a stop back to the desired state the store holds loses nothing: 200')
  t.equal(app.daemon.supervisor.summary('other').state, 'stopped')
  const ready = await app.inject({ method: 'GET', url: '/health/readiness?verbose' })
  t.equal(ready.statusCode, 503)
  t.match(ready.json().checks.find((c: { name: string }) => c.name === 'daemon:store-writable'), { status: 'fail', detail: /the desired state of plugin parked is not saved yet/ }, 'readiness says so')

  disk.free()
  timer.fire()
  t.equal((await app.inject({ method: 'GET', url: '/health/readiness' })).statusCode, 200, 'ready once the desired states are written')
  await app.close()
  const next = await build(t, loaded, { boot: false })
  await next.daemon.boot()
  t.match(next.daemon.supervisor.list().map((s) => [s.name, s.state]), [['parked', 'stopped'], ['other', 'stopped']], 'the stops are kept across a daemon restart')
})

t.test('register, unload, config change and reload on a full disk answer 503 PLUGVISOR_STATE_NOT_PERSISTED, done all the same; kept across a daemon restart once there is room; it failed before', fullDisk, async (t) => {
  const disk = smallDisk(t) as SmallDisk
  // The data folder (the store) on the full disk; the plugins folder beside the config, elsewhere.
  const loaded = writeConfig([], { dataDir: path.join(disk.dir, 'data') })
  const timer = manualTimer()
  const app = await build(t, loaded, { boot: false, every: timer.every })
  await app.daemon.boot()
  const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object) => {
    const res = await app.inject({ method, url, payload })
    return { status: res.statusCode, body: res.json() }
  }
  for (const name of ['gone', 'tuned', 'dropped']) t.equal((await call('POST', '/plugins', fixturePlugin(name, 'sleep', { config: { level: 1 } }))).status, 201)
  // Stopped: the store holds their desired state (an unload must make it forget it).
  for (const name of ['gone', 'dropped']) t.equal((await call('POST', `/plugins/${name}/stop`)).status, 200)
  disk.fill()
  const notPersisted = (what: string, name: string) => ({ status: 503, body: { code: 'PLUGVISOR_STATE_NOT_PERSISTED', message: new RegExp(`^plugin '${name}': ${what} done, but its desired state could not be saved \\(database or disk is full\\)`) } })
  const sup = app.daemon.supervisor

  t.match(await call('POST', '/plugins?start=false', fixturePlugin('fresh', 'sleep')), notPersisted('registration', 'fresh'), 'a registration not to start an autostart plugin')
  t.match(sup.summary('fresh'), { state: 'stopped', desired: 'stopped' }, 'is loaded, not started')
  t.match(await call('POST', '/plugins?start=false', fixturePlugin('idle', 'sleep', { autostart: false })), { status: 201 }, 'one whose manifest says the same as the answer needs no write: 201')

  const unload = await call('DELETE', '/plugins/gone')
  t.match(unload, notPersisted('unload', 'gone'), 'an unload whose desired state the store cannot forget')
  t.notOk(sup.has('gone'), 'is unloaded')
  t.notOk(existsSync(path.join(loaded.pluginsDir, 'gone.json')), 'its manifest file is retired')

  t.match(await call('POST', '/plugins/tuned/stop'), notPersisted('stop', 'tuned'))
  t.match(await call('PUT', '/plugins/tuned/config', { level: 2 }), notPersisted('config change', 'tuned'), 'a config change of a plugin whose desired state is not saved')
  t.same(sup.manifest('tuned').config, { level: 2 }, 'the config is changed')
  t.equal(sup.summary('tuned').state, 'stopped')

  rmSync(path.join(loaded.pluginsDir, 'dropped.json'))
  t.match(await call('POST', '/config/reload'), notPersisted('reload', 'dropped'), 'a reload that removes a plugin whose desired state the store holds')
  t.notOk(sup.has('dropped'), 'is applied')
  const checks = (await call('GET', '/health/readiness?verbose')).body.checks as { name: string, status: string, detail?: string }[]
  t.match(checks.find((c) => c.name === 'daemon:store-writable'), { status: 'fail', detail: /fresh.*gone.*tuned.*dropped/s }, 'readiness names every one')

  disk.free()
  timer.fire()
  t.equal((await call('GET', '/health/readiness')).status, 200, 'ready once written')
  await app.close()
  // As a daemon started now reads them: the plugins folder as the changes left it.
  const next = await build(t, loadConfig(loaded.file), { boot: false })
  await next.daemon.boot()
  t.same(next.daemon.supervisor.list().map((s) => [s.name, s.state]).sort(), [['fresh', 'stopped'], ['idle', 'stopped'], ['tuned', 'stopped']], 'a daemon restarted after that keeps every change')
  t.same(next.daemon.supervisor.manifest('tuned').config, { level: 2 })
  const again = await next.inject({ method: 'POST', url: '/plugins', payload: fixturePlugin('gone', 'sleep') })
  t.match(again.json(), { state: 'running', desired: 'running' }, 'a plugin registered again under an unloaded name starts from its own autostart, not the old stop')
})

t.test('the store maintenance timer checkpoints and truncates the write-ahead log; it failed before', async (t) => {
  const loaded = writeConfig([fixturePlugin('busy', 'sleep')])
  const timer = manualTimer()
  const app = await build(t, loaded, { boot: false, every: timer.every })
  await app.daemon.boot()
  for (const op of ['stop', 'start', 'restart']) await app.inject({ method: 'POST', url: `/plugins/busy/${op}` })
  t.ok(walSize(loaded.dataDir) > 0, 'writes went to the write-ahead log')
  timer.fire()
  t.equal(walSize(loaded.dataDir), 0, 'truncated when the timer fired')
})
