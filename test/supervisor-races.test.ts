// The driver's races, with a fake runner (processes appear and exit when the test says) and a
// real SQLite store: what must win when operations overtake each other.
import t from 'tap'
import pino from 'pino'
import { Supervisor } from '../src/supervisor/supervisor.js'
import { openStore } from '../src/store/store.js'
import type { ProcessCallbacks, ProcessRunner, SpawnSpec } from '../src/process/runner.js'
import { fixturePlugin, writeConfig, tempDir, type Tap } from './helper.js'

interface Spawned { spec: SpawnSpec, cb: ProcessCallbacks, pid: number, exited: boolean }

/** Processes that start when `up()` is called and exit when stopped, or when `exit()` is called while stops are held. */
function fakeRunner () {
  const spawned: Spawned[] = []
  const held = new Map<Spawned, () => void>()
  let holdStops = false
  const exit = (s: Spawned, code: number | null = null, signal: string | null = 'SIGTERM'): void => {
    if (s.exited) return
    s.exited = true
    s.cb.onExit(code, signal)
    held.get(s)?.()
  }
  const runner: ProcessRunner = {
    spawn (spec, cb) {
      const s: Spawned = { spec, cb, pid: 1000 + spawned.length, exited: false }
      spawned.push(s)
      return {
        pid: s.pid,
        stop: async () => {
          if (!holdStops) return exit(s)
          await new Promise<void>((resolve) => held.set(s, resolve))
        }
      }
    },
    reap: async () => 'gone',
    reapMarked: async () => []
  }
  const up = (s: Spawned): void => s.cb.onSpawn({ pid: s.pid, pgid: s.pid, startTicks: null, bootId: 'test' })
  return { runner, spawned, up, exit, holdStops: (on: boolean) => { holdStops = on } }
}

function supervisor (t: Tap, plugins: unknown[], allocatePort?: () => Promise<number>) {
  const loaded = writeConfig(plugins, {}, tempDir())
  const store = openStore(tempDir())
  const fake = fakeRunner()
  const sup = new Supervisor({ runner: fake.runner, store: store.lifecycle, logger: pino({ level: 'silent' }), restartBudget: { burst: 100, perSecond: 100 }, allocatePort })
  sup.load(loaded.manifests)
  t.teardown(async () => {
    fake.holdStops(false)
    for (const s of fake.spawned) fake.exit(s, null, 'SIGKILL')
    await sup.shutdown()
    store.close()
  })
  return { sup, ...fake }
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('a stop overtakes a start that waits for its dependency: the dependent is never spawned', async (t) => {
  const { sup, spawned, up } = supervisor(t, [fixturePlugin('db', 'sleep'), fixturePlugin('app', 'sleep', { dependsOn: ['db'] })])
  const starting = sup.start('app')
  await nextTurn()
  t.same(spawned.map((s) => s.spec.env.PLUGVISOR_PLUGIN), ['db'], 'the dependency is spawned first; app waits')
  t.equal(sup.summary('app').state, 'stopped')

  const stopped = await sup.stop('app')
  t.equal(stopped.state, 'stopped')
  t.equal(stopped.desired, 'stopped', 'the stop is what the operator asked for last')
  const afterStart = await starting
  t.equal(afterStart.state, 'stopped', 'the overtaken start gives up')

  up(spawned[0])
  await nextTurn()
  t.equal(sup.summary('db').state, 'running', 'the dependency still comes up')
  t.same(spawned.map((s) => s.spec.env.PLUGVISOR_PLUGIN), ['db'], 'app was never spawned')
  t.equal(sup.summary('app').state, 'stopped')
})

t.test('a process still starting is overtaken by an operator restart: its late start is ignored, the restart\'s process runs', async (t) => {
  const { sup, spawned, up, exit, holdStops } = supervisor(t, [fixturePlugin('web', 'sleep')])
  const started = sup.start('web')
  await nextTurn()
  up(spawned[0])
  t.equal((await started).state, 'running')
  // A crash: the automatic restart (delay 0) spawns a second process, which is not up yet.
  exit(spawned[0], 1, null)
  while (spawned.length < 2) await nextTurn()
  t.equal(sup.summary('web').state, 'starting')
  const events: string[] = []
  sup.on('transition', (e) => events.push(`${e.from}->${e.to} (${e.reason})`))

  holdStops(true)
  const restarting = sup.restart('web')
  await nextTurn()
  t.match(sup.snapshot('web').state, { name: 'stopping', intent: { then: 'start' } }, 'the restart takes the starting process down')
  up(spawned[1])
  t.equal(sup.summary('web').state, 'stopping', 'the overtaken process coming up late changes nothing')
  exit(spawned[1])
  t.equal(spawned.length, 3, 'once it is gone, the restart spawns its own process')
  up(spawned[2])
  const after = await restarting
  t.equal(after.state, 'running')
  t.equal(after.pid, spawned[2].pid)
  t.equal(after.restartCount, 0, 'an operator restart resets the count of automatic restarts')
  t.same(events, ['starting->stopping (manual restart)', 'stopping->starting (restart)', 'starting->running (spawned)'])
})
