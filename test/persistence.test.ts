// What survives a daemon: desired state, and the cleanup of what a hard-killed daemon left behind.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { alive, build, fixturePlugin, writeConfig } from './helper.js'
import { packageRoot } from '../src/paths.js'
import { openDatabase } from '../src/store/database.js'
import { createStateStore } from '../src/store/state-store.js'
import { bootId, readProcStat } from '../src/process/proc.js'
import { waitGroupGone } from '../src/process/runner.js'

t.test('desired state survives a daemon restart', async (t) => {
  const loaded = writeConfig([fixturePlugin('keep', 'sleep'), fixturePlugin('parked', 'sleep'), fixturePlugin('lazy', 'sleep', { autostart: false })])
  const first = await build(t, loaded, { boot: false })
  await first.daemon.boot()
  await first.inject({ method: 'POST', url: '/plugins/parked/stop' })
  await first.inject({ method: 'POST', url: '/plugins/lazy/start' })
  await first.close()

  const second = await build(t, loaded, { boot: false })
  await second.daemon.boot()
  const states = Object.fromEntries(second.daemon.supervisor.list().map((s) => [s.name, [s.state, s.desired]]))
  t.same(states, {
    keep: ['running', 'running'],
    parked: ['stopped', 'stopped'],
    lazy: ['running', 'running']
  }, 'exactly the plugins meant to run run again; a daemon shutdown does not count as an operator stop')
})

t.test('process groups left by a SIGKILLed daemon are terminated at the next start', async (t) => {
  const loaded = writeConfig([fixturePlugin('orphan', 'grandchild')], { log: { level: 'info' } })
  const daemon = spawn(process.execPath, [path.join(packageRoot, 'dist/src/bin.cjs'), 'serve', '--config', loaded.file], {
    env: { ...process.env, PLUGVISOR_PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { if (daemon.exitCode === null) daemon.kill('SIGKILL') })
  let grandchild = 0
  let started = false
  for await (const line of createInterface({ input: daemon.stdout! })) {
    const m = /grandchild (\d+)/.exec(line)
    if (m) grandchild = Number(m[1])
    if (line.includes('initial start pass done')) started = true
    if (started && grandchild) break
  }
  t.ok(grandchild > 0, 'the old daemon started the plugin')
  t.teardown(() => { try { process.kill(grandchild, 'SIGKILL') } catch {} })
  daemon.kill('SIGKILL')
  await once(daemon, 'exit')

  const db = openDatabase(loaded.dataDir)
  const [recorded] = createStateStore(db).recordedProcesses()
  db.close()
  t.ok(recorded, 'the process identity was persisted')
  t.ok(alive(recorded.pid), 'the plugin outlived its daemon (own process group)')
  t.ok(alive(grandchild), 'and so did its grandchild')

  const app = await build(t, loaded, { boot: false })
  await app.daemon.boot()
  t.notOk(alive(recorded.pid), 'the old leader is gone')
  t.notOk(alive(grandchild), 'the old grandchild is gone (it ignores SIGTERM: SIGKILL after the stop timeout)')
  const now = app.daemon.supervisor.summary('orphan')
  t.equal(now.state, 'running', 'the plugin runs again')
  t.not(now.pid, recorded.pid)
})

t.test('a recorded pid that now belongs to another process is left alone', async (t) => {
  const loaded = writeConfig([fixturePlugin('p', 'sleep', { autostart: false })])
  // Someone else's process, with the pid our records name but a different start time.
  const stranger = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' })
  await once(stranger, 'spawn')
  t.teardown(async () => {
    try { process.kill(-stranger.pid!, 'SIGKILL') } catch {}
    await waitGroupGone(stranger.pid!, Date.now() + 5000)
  })
  const stat = readProcStat(stranger.pid!)!
  const db = openDatabase(loaded.dataDir)
  createStateStore(db).recordProcess({
    plugin: 'p',
    pid: stranger.pid!,
    pgid: stranger.pid!,
    startTicks: stat.startTicks - 1,
    bootId: bootId(),
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 100,
    startedAt: Date.now()
  })
  db.close()
  const app = await build(t, loaded, { boot: false })
  const report = await app.daemon.supervisor.reapOrphans()
  t.match(report, [{ plugin: 'p', pid: stranger.pid, action: 'reused' }])
  t.ok(alive(stranger.pid!), 'the unrelated process still runs')
  const db2 = app.daemon.store.lifecycle.recordedProcesses()
  t.same(db2, [], 'the stale record is forgotten')
})
