// The driver's races, with a fake runner (processes appear and exit when the test says) and a
// real SQLite store: what must win when operations overtake each other; and how the store
// writes of one turn are made together.
import t from 'tap'
import pino from 'pino'
import { Supervisor } from '../src/supervisor/supervisor.js'
import { openStore } from '../src/store/store.js'
import type { ProcessCallbacks, ProcessRunner, SpawnSpec } from '../src/process/runner.js'
import type { LifecycleStore } from '../src/supervisor/lifecycle-store.js'
import { fixturePlugin, writeConfig, tempDir, type Tap } from './helper.js'

interface Spawned { spec: SpawnSpec, cb: ProcessCallbacks, pid: number, exited: boolean, onStop?: () => void }

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
          s.onStop?.()
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

function supervisor (t: Tap, plugins: unknown[], allocatePort?: () => Promise<number>, wrapStore: (s: LifecycleStore) => LifecycleStore = (s) => s) {
  const loaded = writeConfig(plugins, {}, tempDir())
  const store = openStore(tempDir())
  const fake = fakeRunner()
  const sup = new Supervisor({ runner: fake.runner, store: wrapStore(store.lifecycle), logger: pino({ level: 'silent' }), restartBudget: { burst: 100, perSecond: 100 }, allocatePort })
  sup.load(loaded.manifests)
  t.teardown(async () => {
    fake.holdStops(false)
    for (const s of fake.spawned) fake.exit(s, null, 'SIGKILL')
    await sup.shutdown()
    store.close()
  })
  return { sup, store: store.lifecycle, ...fake }
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

/** The real store, with its transactions counted and (when told) failing at the commit. */
function countedStore (real: LifecycleStore, opts: { commitFails?: boolean, failDesiredOf?: string } = {}) {
  const counts = { transactions: 0, writes: 0 }
  const store: LifecycleStore = {
    ...real,
    transaction: (fn) => {
      counts.transactions++
      if (!opts.commitFails) return real.transaction(fn)
      // Everything the transaction wrote is rolled back, as after a failed COMMIT.
      return real.transaction(() => { fn(); throw new Error('disk I/O error') })
    },
    setDesired: (plugin, desired, at) => {
      counts.writes++
      if (plugin === opts.failDesiredOf) throw new Error('database or disk is full')
      real.setDesired(plugin, desired, at)
    },
    addEvent: (e) => { counts.writes++; real.addEvent(e) },
    recordProcess: (r) => { counts.writes++; real.recordProcess(r) }
  }
  return { store, counts }
}

const names = Array.from({ length: 20 }, (_, i) => `p${i}`)

t.test('the store writes of a start burst are made in a few transactions, and every one of them is kept; it failed before', async (t) => {
  let counted: ReturnType<typeof countedStore> | undefined
  const { sup, spawned, up, store } = supervisor(t, names.map((n) => fixturePlugin(n, 'sleep', { autostart: false })), undefined, (s) => (counted = countedStore(s)).store)
  const starting = sup.startMany(names)
  while (spawned.length < names.length) await nextTurn()
  for (const s of spawned) up(s)
  const out = await starting
  t.ok(out.every((s) => s.state === 'running'))
  const { transactions, writes } = counted!.counts
  t.ok(transactions > 0 && transactions * 10 <= writes, `${writes} writes in ${transactions} transactions`)
  t.same(names.map((n) => store.desiredStates().get(n)), names.map(() => 'running'), 'every desired state is stored')
  t.equal(store.recordedProcesses().length, names.length, 'every process identity is stored')
  t.same(names.map((n) => sup.events(n).map((e) => e.to)), names.map(() => ['running', 'starting']), 'every state event is stored')
  t.same(sup.unsaved(), [])
})

t.test('the writes of a stop of many in one turn are made in one transaction, however many there are; they took several before', async (t) => {
  const many = Array.from({ length: 40 }, (_, i) => `s${i}`)
  let counted: ReturnType<typeof countedStore> | undefined
  const { sup, spawned, up, exit, holdStops, store } = supervisor(t, many.map((n) => fixturePlugin(n, 'sleep', { autostart: false })), undefined, (s) => (counted = countedStore(s)).store)
  const starting = sup.startMany(many)
  while (spawned.length < many.length) await nextTurn()
  for (const s of spawned) up(s)
  await starting
  await nextTurn()
  holdStops(true)
  const before = { ...counted!.counts }
  const stopping = sup.stopMany(many)
  // The stop's turn and those its records and writes wait for.
  for (let i = 0; i < 10 && counted!.counts.writes - before.writes < 2 * many.length; i++) await nextTurn()
  await nextTurn()
  const { transactions, writes } = counted!.counts
  t.equal(writes - before.writes, 2 * many.length, 'a desired state and a state event each')
  t.equal(transactions - before.transactions, 1, 'in one transaction')
  for (const s of spawned) exit(s)
  const out = await stopping
  t.ok(out.every((s) => s.state === 'stopped'))
  t.same(many.map((n) => store.desiredStates().get(n)), many.map(() => 'stopped'), 'every desired state is stored')
  t.same(many.map((n) => sup.events(n).map((e) => e.to)), many.map(() => ['stopped', 'stopping', 'running', 'starting']), 'every state event is stored, in order')
  t.equal(store.recordedProcesses().length, 0, 'every process record is forgotten')
})

t.test('a stop signals its process before it makes its records, then makes them, in their order; it made them first before', async (t) => {
  const { sup, spawned, up, exit, holdStops, store } = supervisor(t, [fixturePlugin('web', 'sleep', { autostart: false })])
  const started = sup.start('web')
  await nextTurn()
  up(spawned[0])
  await started
  holdStops(true)
  const seen: string[] = []
  sup.on('transition', (e) => seen.push(`${e.from}->${e.to}`))
  let atSignal: string[] | undefined
  spawned[0].onStop = () => { atSignal = [...seen] }
  const stopping = sup.stop('web')
  await nextTurn()
  await nextTurn()
  t.same(atSignal, [], 'nothing published when the process is told to stop')
  t.same(seen, ['running->stopping'], 'published right after')
  t.equal(sup.summary('web').state, 'stopping', 'the state itself changed at once')
  exit(spawned[0])
  t.equal((await stopping).state, 'stopped')
  t.same(seen, ['running->stopping', 'stopping->stopped'])
  t.same(store.events('web').map((e) => e.to), ['stopped', 'stopping', 'running', 'starting'], 'stored in order')
})

t.test('a process that exits as soon as it is told to stop: stopping is published and stored before stopped', async (t) => {
  const { sup, spawned, up, store } = supervisor(t, [fixturePlugin('web', 'sleep', { autostart: false })])
  const started = sup.start('web')
  await nextTurn()
  up(spawned[0])
  await started
  const seen: string[] = []
  sup.on('transition', (e) => seen.push(`${e.from}->${e.to}`))
  // The fake's stop reports the exit before it returns.
  t.equal((await sup.stop('web')).state, 'stopped')
  t.same(seen, ['running->stopping', 'stopping->stopped'], 'published in order')
  t.same(store.events('web').map((e) => e.to), ['stopped', 'stopping', 'running', 'starting'], 'stored in order')
})

t.test('when the commit of a batch fails, each write is made again on its own: what goes through is kept, what fails is noted and answered as a single failed write', async (t) => {
  let counted: ReturnType<typeof countedStore> | undefined
  const { sup, spawned, up, store } = supervisor(t, names.map((n) => fixturePlugin(n, 'sleep', { autostart: false })), undefined, (s) => (counted = countedStore(s, { commitFails: true, failDesiredOf: 'p3' })).store)
  const starting = sup.startMany(names)
  while (spawned.length < names.length) await nextTurn()
  for (const s of spawned) up(s)
  await t.rejects(starting, { code: 'PLUGVISOR_STATE_NOT_PERSISTED', statusCode: 503, message: /plugin 'p3': start done, but its desired state could not be saved \(database or disk is full\)/ })
  t.ok(counted!.counts.transactions > 0, 'the writes were tried in transactions first')
  t.same(names.map((n) => sup.summary(n).state), names.map(() => 'running'), 'the start is done all the same')
  t.same(sup.unsaved(), [{ plugin: 'p3', what: 'desired state', reason: 'database or disk is full' }], 'only the write that failed on its own is noted')
  t.same(names.filter((n) => store.desiredStates().get(n) !== 'running'), ['p3'], 'the other desired states are stored')
  t.equal(store.recordedProcesses().length, names.length, 'every process identity is stored')
  t.same(names.map((n) => sup.events(n).length), names.map(() => 2), 'every state event is stored')
})

t.test('a crash restarted with delay 0: the new process is spawned before the writes of the exit are committed, and they are kept; it failed before', async (t) => {
  let counted: ReturnType<typeof countedStore> | undefined
  const { sup, spawned, up, exit, store } = supervisor(t, [fixturePlugin('web', 'sleep', { restart: { initialDelayMs: 0, jitter: 0 } })], undefined, (s) => (counted = countedStore(s)).store)
  const started = sup.start('web')
  await nextTurn()
  up(spawned[0])
  await started
  await nextTurn()
  const before = counted!.counts.transactions
  let atRestart = -1
  sup.on('transition', (e) => { if (e.to === 'starting') atRestart = counted!.counts.transactions })
  exit(spawned[0], 1, null)
  while (spawned.length < 2) await nextTurn()
  t.equal(atRestart, before, 'no commit between the exit and the spawn of the new process')
  up(spawned[1])
  await sup.waitFor('web', (s) => s.state === 'running', 1000)
  await nextTurn()
  await nextTurn()
  t.ok(counted!.counts.transactions > before, 'the writes are committed after it')
  t.match(store.recordedProcesses(), [{ plugin: 'web', pid: spawned[1].pid }], 'the new process is recorded, the old one forgotten')
  t.same(sup.events('web').map((e) => e.to), ['running', 'starting', 'backoff', 'running', 'starting'], 'every transition is stored, in order')
})
