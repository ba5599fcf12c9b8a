import t from 'tap'
import { EventEmitter } from 'node:events'
import { IDLE_BACKOFF, createResourceSampler, type ProcessSource, type SampledSupervisor } from '../src/resources/resource-sampler.js'
import type { ProcessIdentity } from '../src/process/runner.js'
import type { SupervisorEvents } from '../src/supervisor/supervisor.js'
import type { RestartEvent, TransitionEvent } from '../src/supervisor/events.js'
import { build, fixturePlugin, writeConfig } from './helper.js'

type Proc = ReturnType<ProcessSource>[number]
const MiB = 1024 * 1024
const PAGE = 4096

/** A supervisor stand-in with settable processes, and a /proc stand-in with settable rows. */
function fixture (limits: Record<string, number | undefined>) {
  const bus = new EventEmitter<SupervisorEvents>()
  const identities = new Map<string, ProcessIdentity | undefined>()
  const exceeded: string[] = []
  const supervisor: SampledSupervisor = Object.assign(bus, {
    names: () => Object.keys(limits),
    processOf: (name: string) => identities.get(name),
    manifest: (name: string) => ({ limits: { maxMemoryMb: limits[name] } }),
    memoryExceeded: (name: string) => { exceeded.push(name) }
  })
  let rows: Proc[] = []
  let now = 1000
  const sampler = createResourceSampler({ supervisor, intervalMs: 1000, source: () => rows, clock: { now: () => now }, pageSize: PAGE, ticksPerSecond: 100 })
  const proc = (pid: number, pgid: number, rssMb: number, ticks = 0, state = 'S'): Proc =>
    ({ pid, pgid, state, startTicks: 1, rssPages: rssMb * MiB / PAGE, utimeTicks: ticks, stimeTicks: 0 })
  return {
    bus,
    sampler,
    exceeded,
    setProcess: (name: string, pid: number | undefined) => identities.set(name, pid === undefined ? undefined : { pid, pgid: pid, startTicks: pid, bootId: 'b' }),
    setRows: (r: Proc[]) => { rows = r },
    proc,
    tick: (ms = 1000) => { now += ms; sampler.sample() }
  }
}

t.test('memory and CPU are summed over the whole process group; zombies and other groups are left out', async (t) => {
  const f = fixture({ web: undefined })
  f.setProcess('web', 100)
  f.setRows([f.proc(100, 100, 10, 50), f.proc(101, 100, 5, 25), f.proc(102, 100, 7, 10, 'Z'), f.proc(200, 200, 99, 999)])
  f.tick()
  t.same(f.sampler.usage('web'), { residentMemoryBytes: 15 * MiB, cpuSeconds: 0.75, sampledAt: 2000 })
})

t.test('over the limit on two consecutive samples asks for a memory restart, once', async (t) => {
  const f = fixture({ big: 64 })
  f.setProcess('big', 100)
  f.setRows([f.proc(100, 100, 80)])
  f.tick()
  t.same(f.exceeded, [], 'one sample over is not enough')
  f.tick()
  t.same(f.exceeded, ['big'], 'the second one in a row is')
  f.tick()
  t.same(f.exceeded, ['big'], 'counted again from zero afterwards')
})

t.test('a sample under the limit, or a new process, starts the count over', async (t) => {
  const f = fixture({ big: 64 })
  f.setProcess('big', 100)
  f.setRows([f.proc(100, 100, 80)])
  f.tick()
  f.setRows([f.proc(100, 100, 30)])
  f.tick()
  f.setRows([f.proc(100, 100, 80)])
  f.tick()
  t.same(f.exceeded, [], 'over, under, over')
  f.setProcess('big', 300)
  f.setRows([f.proc(300, 300, 80)])
  f.tick()
  t.same(f.exceeded, [], 'over once for the new process')
  f.tick()
  t.same(f.exceeded, ['big'])
})

t.test('no limit, no restart; a limit exactly reached is not exceeded', async (t) => {
  const f = fixture({ free: undefined, edge: 64 })
  f.setProcess('free', 100)
  f.setProcess('edge', 200)
  f.setRows([f.proc(100, 100, 4096), f.proc(200, 200, 64)])
  f.tick()
  f.tick()
  t.same(f.exceeded, [])
})

t.test('CPU time is monotonic across exited members and plugin restarts', async (t) => {
  const f = fixture({ w: undefined })
  f.setProcess('w', 100)
  f.setRows([f.proc(100, 100, 1, 100), f.proc(101, 100, 1, 50)])
  f.tick()
  t.equal(f.sampler.usage('w')!.cpuSeconds, 1.5)
  f.setRows([f.proc(100, 100, 1, 120)])
  f.tick()
  t.equal(f.sampler.usage('w')!.cpuSeconds, 1.7, 'the exited member keeps its CPU time')
  f.setProcess('w', undefined)
  f.setRows([])
  f.tick()
  t.same(f.sampler.usage('w'), { residentMemoryBytes: 0, cpuSeconds: 1.7, sampledAt: 4000 }, 'not running: no memory, CPU kept')
  f.setProcess('w', 300)
  f.setRows([f.proc(300, 300, 1, 10)])
  f.tick()
  t.equal(f.sampler.usage('w')!.cpuSeconds, 1.8, 'a new process adds to it')
})

t.test('a tick that finds nothing changed makes the next wait IDLE_BACKOFF times as long; a change, a transition or a memory limit keeps the configured pace', async (t) => {
  const f = fixture({ w: undefined })
  f.setProcess('w', 100)
  f.setRows([f.proc(100, 100, 10, 50)])
  f.tick()
  t.equal(f.sampler.nextDelayMs(), 1000, 'a first sample is a change')
  f.tick()
  t.equal(f.sampler.nextDelayMs(), 1000 * IDLE_BACKOFF, 'same memory, same CPU time: slower')
  f.setRows([f.proc(100, 100, 10, 51)])
  f.tick()
  t.equal(f.sampler.nextDelayMs(), 1000, 'CPU time moved')
  f.tick()
  t.equal(f.sampler.nextDelayMs(), 1000 * IDLE_BACKOFF)
  f.setRows([f.proc(100, 100, 11, 51)])
  f.tick()
  t.equal(f.sampler.nextDelayMs(), 1000, 'memory moved')
  f.tick()
  f.bus.emit('transition', { plugin: 'w' } as TransitionEvent)
  t.equal(f.sampler.nextDelayMs(), 1000, 'a plugin started or stopped')
  f.setProcess('w', 200)
  f.setRows([f.proc(200, 200, 11, 51)])
  f.tick()
  t.equal(f.sampler.nextDelayMs(), 1000, 'a new process')

  const limited = fixture({ big: 64 })
  limited.setProcess('big', 100)
  limited.setRows([limited.proc(100, 100, 10)])
  limited.tick()
  limited.tick()
  t.equal(limited.sampler.nextDelayMs(), 1000, 'memory limits are counted in samples: no slowing down')
})

t.test('an unloaded plugin is forgotten', async (t) => {
  const f = fixture({ w: undefined })
  f.setProcess('w', 100)
  f.setRows([f.proc(100, 100, 1, 100)])
  f.tick()
  t.ok(f.sampler.usage('w'))
  f.bus.emit('unloaded', 'w')
  t.equal(f.sampler.usage('w'), undefined)
  f.sampler.stop()
  t.equal(f.bus.listenerCount('unloaded'), 0, 'stop() stops listening')
  t.equal(f.bus.listenerCount('transition'), 0)
})

t.test('a plugin that grows past its memory limit is restarted with reason memory; one under it is not', async (t) => {
  // A bare Node process is ~30-45 MiB resident; grown by 160 MiB it is far over 120.
  const loaded = writeConfig([
    fixturePlugin('hungry', 'grow-memory', { args: ['160'], limits: { maxMemoryMb: 120 }, restart: { initialDelayMs: 60000 } }),
    fixturePlugin('lean', 'sleep', { limits: { maxMemoryMb: 120 } })
  ], { resources: { sampleIntervalMs: 25 } })
  const app = await build(t, loaded, { boot: false })
  const { supervisor } = app.daemon
  const restarts: RestartEvent[] = []
  supervisor.on('restart', (e) => restarts.push(e))
  const toBackoff = new Promise<TransitionEvent>((resolve) => {
    supervisor.on('transition', (e) => { if (e.plugin === 'hungry' && e.to === 'backoff') resolve(e) })
  })
  await app.daemon.boot()
  const backoff = await toBackoff
  t.equal(backoff.reason.includes('memory'), true, `backoff reason names the memory limit (${backoff.reason})`)
  // The long initial delay keeps it in backoff: the restart itself is the backoff timer's business.
  // A sample now, so the figures below do not depend on where the interval is.
  app.daemon.resources.sample()
  const res = await app.inject({ method: 'GET', url: '/plugins/hungry' })
  t.equal(res.json().state, 'backoff')
  t.equal(res.json().resources.residentMemoryBytes, 0, 'nothing resident once the group is gone')
  t.ok(res.json().resources.cpuSeconds > 0, 'the CPU time of the killed process is kept')
  const lean = (await app.inject({ method: 'GET', url: '/plugins/lean' })).json()
  t.equal(lean.state, 'running', 'the plugin under the limit keeps running')
  t.ok(lean.resources.residentMemoryBytes > 10 * MiB && lean.resources.residentMemoryBytes < 120 * MiB, `lean resident memory ${lean.resources.residentMemoryBytes}`)
  t.match(lean.resources.sampledAt, /^\d{4}-\d\d-\d\dT/)
  t.same(restarts, [], 'no restart has happened yet (the memory restart waits in backoff)')
})

t.test('the backoff after a memory kill ends in a restart with reason memory', async (t) => {
  const loaded = writeConfig([
    fixturePlugin('hungry', 'grow-memory', { args: ['160'], limits: { maxMemoryMb: 120 } })
  ], { resources: { sampleIntervalMs: 25 } })
  const app = await build(t, loaded, { boot: false })
  const { supervisor } = app.daemon
  const memoryRestart = new Promise<RestartEvent>((resolve) => supervisor.on('restart', (e) => { if (e.plugin === 'hungry') resolve(e) }))
  await app.daemon.boot()
  t.match(await memoryRestart, { plugin: 'hungry', reason: 'memory' })
})
