// The pure transition table, exhaustively: every state × every event, with an injected clock.
import t from 'tap'
import { initialSnapshot, statusOf, transition, STATE_NAMES, type LifecycleContext, type LifecycleEvent, type Snapshot, type State, type StateName } from '../src/supervisor/lifecycle.js'
import { restartDelay, RestartBudget } from '../src/supervisor/backoff.js'
import type { RestartPolicy } from '../src/config/schema.js'

const policy: RestartPolicy = {
  policy: 'always', initialDelayMs: 1000, multiplier: 2, maxDelayMs: 300000, jitter: 0, resetAfterMs: 600000, maxRestarts: 10, windowMs: 600000
}
const ctx = (over: Partial<LifecycleContext> = {}): LifecycleContext => ({ policy, probed: false, now: 1_000_000, random: () => 0.5, ...over })

const states: Record<StateName, State> = {
  stopped: { name: 'stopped' },
  starting: { name: 'starting', since: 1 },
  running: { name: 'running', since: 1 },
  stopping: { name: 'stopping', since: 1, intent: { then: 'stopped' } },
  backoff: { name: 'backoff', since: 1, until: 2, reason: 'crash', detail: 'crash' },
  failed: { name: 'failed', since: 1, reason: 'limit' }
}
const events: Record<LifecycleEvent['type'], LifecycleEvent> = {
  start: { type: 'start' },
  stop: { type: 'stop' },
  shutdown: { type: 'shutdown' },
  restart: { type: 'restart' },
  spawned: { type: 'spawned' },
  'spawn-failed': { type: 'spawn-failed', error: { code: 'ENOENT', message: 'spawn x ENOENT' } },
  exited: { type: 'exited', code: 1, signal: null },
  'backoff-elapsed': { type: 'backoff-elapsed' },
  unhealthy: { type: 'unhealthy' },
  healthy: { type: 'healthy' },
  'memory-exceeded': { type: 'memory-exceeded' },
  'nothing-to-kill': { type: 'nothing-to-kill' },
  'files-changed': { type: 'files-changed', detail: 'app.js' },
  'checksum-mismatch': { type: 'checksum-mismatch', detail: 'sha256 differs' },
  'post-start-failed': { type: 'post-start-failed', detail: 'POST /ready: HTTP 500' }
}

// Expected next state for each (state, event); '-' = refused (ignored, nothing changes). The
// stopping state below is a shutdown's (intent stopped, desired running): an operator stop still records desired stopped.
const table: Record<StateName, Record<LifecycleEvent['type'], StateName | '-'>> = {
  stopped: { start: 'starting', stop: '-', shutdown: '-', restart: 'starting', spawned: '-', 'spawn-failed': '-', exited: '-', 'backoff-elapsed': '-', unhealthy: '-', healthy: '-', 'memory-exceeded': '-', 'nothing-to-kill': '-', 'files-changed': '-', 'checksum-mismatch': '-', 'post-start-failed': '-' },
  starting: { start: '-', stop: 'stopping', shutdown: 'stopping', restart: 'stopping', spawned: 'running', 'spawn-failed': 'backoff', exited: 'backoff', 'backoff-elapsed': '-', unhealthy: '-', healthy: '-', 'memory-exceeded': '-', 'nothing-to-kill': '-', 'files-changed': 'stopping', 'checksum-mismatch': 'failed', 'post-start-failed': '-' },
  running: { start: '-', stop: 'stopping', shutdown: 'stopping', restart: 'stopping', spawned: '-', 'spawn-failed': '-', exited: 'backoff', 'backoff-elapsed': '-', unhealthy: 'stopping', healthy: 'running', 'memory-exceeded': 'stopping', 'nothing-to-kill': '-', 'files-changed': 'stopping', 'checksum-mismatch': '-', 'post-start-failed': 'stopping' },
  stopping: { start: 'stopping', stop: 'stopping', shutdown: '-', restart: 'stopping', spawned: '-', 'spawn-failed': 'stopped', exited: 'stopped', 'backoff-elapsed': '-', unhealthy: '-', healthy: '-', 'memory-exceeded': '-', 'nothing-to-kill': 'stopped', 'files-changed': '-', 'checksum-mismatch': '-', 'post-start-failed': '-' },
  backoff: { start: 'starting', stop: 'stopped', shutdown: 'stopped', restart: 'starting', spawned: '-', 'spawn-failed': '-', exited: '-', 'backoff-elapsed': 'starting', unhealthy: '-', healthy: '-', 'memory-exceeded': '-', 'nothing-to-kill': '-', 'files-changed': '-', 'checksum-mismatch': '-', 'post-start-failed': '-' },
  failed: { start: 'starting', stop: 'stopped', shutdown: '-', restart: 'starting', spawned: '-', 'spawn-failed': '-', exited: '-', 'backoff-elapsed': '-', unhealthy: '-', healthy: '-', 'memory-exceeded': '-', 'nothing-to-kill': '-', 'files-changed': '-', 'checksum-mismatch': '-', 'post-start-failed': '-' }
}

t.test('every state × event: allowed transitions go where the table says, refused ones change nothing', async (t) => {
  for (const stateName of STATE_NAMES) {
    for (const [evName, ev] of Object.entries(events) as [LifecycleEvent['type'], LifecycleEvent][]) {
      // A stopped plugin that is desired stopped; a running one with no stable period yet (so `healthy` applies).
      const snap: Snapshot = { ...initialSnapshot(stateName === 'stopped' ? 'stopped' : 'running'), state: states[stateName] }
      const r = transition(snap, ev, ctx())
      const want = table[stateName][evName]
      if (want === '-') {
        t.ok(r.ignored, `${stateName} + ${evName} is refused`)
        t.same(r.snapshot, snap, `${stateName} + ${evName} changes nothing`)
        t.same(r.effects, [], `${stateName} + ${evName} has no effect`)
      } else {
        t.notOk(r.ignored, `${stateName} + ${evName} is allowed`)
        t.equal(r.snapshot.state.name, want, `${stateName} + ${evName} -> ${want}`)
      }
    }
  }
})

t.test('effects: start spawns, stop kills, crash schedules, backoff-elapsed spawns, stop in backoff cancels', async (t) => {
  const s0 = initialSnapshot()
  t.same(transition(s0, { type: 'start' }, ctx()).effects, [{ type: 'spawn' }])
  const running: Snapshot = { ...s0, desired: 'running', state: { name: 'running', since: 0 } }
  t.same(transition(running, { type: 'stop' }, ctx()).effects, [{ type: 'kill', reason: 'stop' }])
  const crashed = transition(running, { type: 'exited', code: 1, signal: null }, ctx({ now: 5000 }))
  t.same(crashed.effects, [{ type: 'schedule-restart', at: 6000 }])
  t.same(crashed.snapshot.lastExit, { code: 1, signal: null, at: 5000 })
  t.same(transition(crashed.snapshot, { type: 'backoff-elapsed' }, ctx()).effects, [{ type: 'spawn' }])
  t.same(transition(crashed.snapshot, { type: 'stop' }, ctx()).effects, [{ type: 'cancel-restart' }])
  t.same(transition(crashed.snapshot, { type: 'start' }, ctx()).effects, [{ type: 'cancel-restart' }, { type: 'spawn' }])
})

t.test('operator start and stop set desired; stop while stopped and desired stopped is idempotent', async (t) => {
  const started = transition(initialSnapshot('stopped'), { type: 'start' }, ctx())
  t.equal(started.snapshot.desired, 'running')
  const stoppedAgain = transition({ ...initialSnapshot('running') }, { type: 'stop' }, ctx())
  t.equal(stoppedAgain.snapshot.desired, 'stopped', 'stop of a stopped plugin that was desired running records the wish')
  t.notOk(stoppedAgain.ignored)
  t.ok(transition(stoppedAgain.snapshot, { type: 'stop' }, ctx()).ignored, 'a second stop is ignored')
})

t.test('restart of a running plugin: stopping with intent start, then starting once the process is gone', async (t) => {
  const running: Snapshot = { ...initialSnapshot('running'), restartCount: 3, backoffAttempt: 2, recentRestarts: [1, 2], state: { name: 'running', since: 0 } }
  const r1 = transition(running, { type: 'restart' }, ctx())
  t.match(r1.snapshot.state, { name: 'stopping', intent: { then: 'start' } })
  t.equal(r1.snapshot.restartCount, 0, 'an operator restart resets the counters')
  t.same(r1.snapshot.recentRestarts, [])
  t.ok(transition(r1.snapshot, { type: 'restart' }, ctx()).ignored, 'a second restart joins the first')
  const r2 = transition(r1.snapshot, { type: 'exited', code: 0, signal: 'SIGTERM' }, ctx())
  t.equal(r2.snapshot.state.name, 'starting')
  t.same(r2.effects, [{ type: 'spawn' }])
  // stop during a restart wins
  const r3 = transition(r1.snapshot, { type: 'stop' }, ctx())
  t.match(r3.snapshot.state, { name: 'stopping', intent: { then: 'stopped' } })
  t.equal(transition(r3.snapshot, { type: 'exited', code: 0, signal: null }, ctx()).snapshot.state.name, 'stopped')
})

t.test('restart policies: never and on-failure with exit 0 stay stopped with lastExit; desired stays running', async (t) => {
  const running: Snapshot = { ...initialSnapshot('running'), state: { name: 'running', since: 0 } }
  const never = transition(running, { type: 'exited', code: 1, signal: null }, ctx({ policy: { ...policy, policy: 'never' } }))
  t.equal(never.snapshot.state.name, 'stopped')
  t.equal(never.snapshot.desired, 'running')
  t.same(never.snapshot.lastExit, { code: 1, signal: null, at: 1_000_000 })
  const clean = transition(running, { type: 'exited', code: 0, signal: null }, ctx({ policy: { ...policy, policy: 'on-failure' } }))
  t.equal(clean.snapshot.state.name, 'stopped')
  const dirty = transition(running, { type: 'exited', code: 2, signal: null }, ctx({ policy: { ...policy, policy: 'on-failure' } }))
  t.equal(dirty.snapshot.state.name, 'backoff')
  const killed = transition(running, { type: 'exited', code: null, signal: 'SIGKILL' }, ctx({ policy: { ...policy, policy: 'on-failure' } }))
  t.equal(killed.snapshot.state.name, 'backoff', 'death by signal is a failure')
  const always = transition(running, { type: 'exited', code: 0, signal: null }, ctx())
  t.equal(always.snapshot.state.name, 'backoff', 'always restarts even a clean exit')
})

t.test('unhealthy and memory restart through the backoff with their reason; policy never leaves it running', async (t) => {
  const running: Snapshot = { ...initialSnapshot('running'), state: { name: 'running', since: 0 }, stableSince: 0 }
  for (const [type, reason] of [['unhealthy', 'unhealthy'], ['memory-exceeded', 'memory']] as const) {
    const down = transition(running, { type }, ctx())
    t.match(down.snapshot.state, { name: 'stopping', intent: { then: 'crash', reason } })
    t.same(down.effects, [{ type: 'kill', reason }])
    const after = transition(down.snapshot, { type: 'exited', code: null, signal: 'SIGTERM' }, ctx())
    t.match(after.snapshot.state, { name: 'backoff', reason })
    const kept = transition(running, { type }, ctx({ policy: { ...policy, policy: 'never' } }))
    t.equal(kept.snapshot.state.name, 'running', `${type} with policy never keeps it running`)
    t.equal(kept.snapshot.stableSince, undefined, 'but it is no longer stable')
  }
})

t.test('a watched file change restarts a running plugin with reason watch, keeping counters and desired', async (t) => {
  const running: Snapshot = { ...initialSnapshot('running'), state: { name: 'running', since: 0 }, stableSince: 0, restartCount: 3, backoffAttempt: 2, recentRestarts: [5] }
  const down = transition(running, { type: 'files-changed', detail: 'app.js' }, ctx())
  t.same(down.restart, { reason: 'watch' }, 'counted as a restart with reason watch')
  t.match(down.snapshot.state, { name: 'stopping', intent: { then: 'start' } })
  t.same(down.effects, [{ type: 'kill', reason: 'watch' }])
  t.equal(down.reason, 'watch: app.js')
  t.same([down.snapshot.restartCount, down.snapshot.backoffAttempt, down.snapshot.recentRestarts, down.snapshot.desired], [3, 2, [5], 'running'])
  const up = transition(down.snapshot, { type: 'exited', code: null, signal: 'SIGTERM' }, ctx())
  t.equal(up.snapshot.state.name, 'starting')
  t.same(up.effects, [{ type: 'spawn' }])
  for (const state of [states.stopped, states.failed, states.backoff]) {
    const r = transition({ ...initialSnapshot('stopped'), state }, { type: 'files-changed', detail: 'app.js' }, ctx())
    t.ok(r.ignored, `a change while ${state.name} does not start it`)
    t.equal(r.restart, undefined)
  }
})

t.test('a failed postStart is a failed start: stopped, then the backoff (reason hook); never leaves it stopped', async (t) => {
  const running: Snapshot = { ...initialSnapshot('running'), state: { name: 'running', since: 0 } }
  const down = transition(running, { type: 'post-start-failed', detail: 'POST /ready: HTTP 500' }, ctx())
  t.match(down.snapshot.state, { name: 'stopping', intent: { then: 'crash', reason: 'hook' } })
  t.equal(down.reason, 'postStart hook failed: POST /ready: HTTP 500')
  t.same(down.effects, [{ type: 'kill', reason: 'hook' }])
  // The stop it caused ends with a clean exit: still a failed start, restarted (on-failure too).
  for (const p of ['always', 'on-failure'] as const) {
    const after = transition(down.snapshot, { type: 'exited', code: 0, signal: null }, ctx({ policy: { ...policy, policy: p } }))
    t.match(after.snapshot.state, { name: 'backoff', reason: 'hook' }, `restart.policy ${p}`)
    t.equal(transition(after.snapshot, { type: 'backoff-elapsed' }, ctx()).restart?.reason, 'hook')
  }
  const never = transition(down.snapshot, { type: 'exited', code: 0, signal: null }, ctx({ policy: { ...policy, policy: 'never' } }))
  t.equal(never.snapshot.state.name, 'stopped')
  t.equal(never.snapshot.desired, 'running', 'nobody asked for a stop')
  t.equal(never.reason, 'postStart hook failed (restart policy never)')
})

t.test('a checksum mismatch before the spawn leaves the plugin failed with reason checksum, no restart scheduled', async (t) => {
  const starting: Snapshot = { ...initialSnapshot('running'), state: { name: 'starting', since: 0 } }
  const r = transition(starting, { type: 'checksum-mismatch', detail: 'sha256 of /bin/x is ab, the manifest pins cd' }, ctx())
  t.match(r.snapshot.state, { name: 'failed', reason: 'checksum' })
  t.equal(r.reason, 'checksum')
  t.same(r.effects, [], 'nothing spawned, nothing scheduled')
  t.equal(r.restart, undefined)
  t.equal(r.snapshot.desired, 'running', 'desired stays: a fixed binary starts with the next operator start')
})

t.test('backoff sequence with jitter 0: initial × multiplier^(n−1), capped', async (t) => {
  const p = { initialDelayMs: 1000, multiplier: 2, maxDelayMs: 10000, jitter: 0 }
  t.same([1, 2, 3, 4, 5, 6].map((n) => restartDelay(n, p, () => 0.99)), [1000, 2000, 4000, 8000, 10000, 10000])
  t.equal(restartDelay(1, { ...p, initialDelayMs: 0 }, () => 0.3), 0, 'delay 0 stays 0')
})

t.test('backoff with jitter stays within ± jitter of the base, reaching both bounds', async (t) => {
  const p = { initialDelayMs: 1000, multiplier: 2, maxDelayMs: 300000, jitter: 0.1 }
  t.equal(restartDelay(3, p, () => 0), 3600, 'random 0 gives the lower bound')
  t.equal(restartDelay(3, p, () => 0.999999), 4400, 'random → 1 gives the upper bound')
  t.equal(restartDelay(3, p, () => 0.5), 4000, 'random 0.5 gives the base')
  let seed = 7
  const rnd = (): number => { seed = (seed * 16807) % 2147483647; return (seed - 1) / 2147483646 }
  const delays = Array.from({ length: 200 }, () => restartDelay(5, p, rnd))
  t.same(delays.filter((d) => d < 14400 || d > 17600), [], '200 jittered delays stay within 16000 ± 10 %')
  t.ok(delays.some((d) => d < 16000) && delays.some((d) => d > 16000), 'and spread to both sides of the base')
})

/** Drives crash after crash through the table, as the driver would, with a fake clock. */
function crashLoop (p: RestartPolicy, crashes: number, opts: { runFor?: number, start?: number } = {}) {
  let now = opts.start ?? 0
  let s = transition(initialSnapshot(), { type: 'start' }, ctx({ policy: p, now })).snapshot
  const delays: number[] = []
  for (let i = 0; i < crashes; i++) {
    s = transition(s, { type: 'spawned' }, ctx({ policy: p, now })).snapshot
    now += opts.runFor ?? 10
    s = transition(s, { type: 'exited', code: 1, signal: null }, ctx({ policy: p, now })).snapshot
    if (s.state.name !== 'backoff') break
    delays.push(s.state.until - now)
    now = s.state.until
    s = transition(s, { type: 'backoff-elapsed' }, ctx({ policy: p, now })).snapshot
  }
  return { s, delays, now }
}

t.test('crash loop walks the delays and ends failed after maxRestarts, with the restart count', async (t) => {
  const p = { ...policy, initialDelayMs: 100, maxRestarts: 4 }
  const { s, delays } = crashLoop(p, 10)
  t.same(delays, [100, 200, 400, 800])
  t.equal(s.state.name, 'failed')
  t.equal(s.restartCount, 4)
  const again = transition(s, { type: 'start' }, ctx({ policy: p }))
  t.equal(again.snapshot.state.name, 'starting', 'start from failed works')
  t.equal(again.snapshot.restartCount, 0, 'and resets the counters')
  t.same(again.snapshot.recentRestarts, [])
  t.equal(again.snapshot.backoffAttempt, 0)
})

t.test('window counting: every crash counts, restarts older than windowMs drop out', async (t) => {
  // Each process runs 1000 ms (not "early" crashes: PM2 would not count them; we do).
  const p = { ...policy, initialDelayMs: 0, multiplier: 1, maxRestarts: 3, windowMs: 10_000, resetAfterMs: 1e9 }
  t.equal(crashLoop(p, 10, { runFor: 1000 }).s.state.name, 'failed', '4 crashes within 10 s fail')
  const spaced = crashLoop(p, 10, { runFor: 6000 })
  t.equal(spaced.s.state.name, 'starting', 'crashes 6 s apart never fill a 10 s window of 3')
  t.equal(spaced.s.restartCount, 10)
})

t.test('a stable period (resetAfterMs) resets the delay and the window, not restartCount', async (t) => {
  const p = { ...policy, initialDelayMs: 100, maxRestarts: 3, resetAfterMs: 5000 }
  const { s: afterThree, now } = crashLoop(p, 3)
  t.equal(afterThree.backoffAttempt, 3)
  // It now runs 5 s without a crash, then crashes: the first delay again, window cleared.
  const running = transition(afterThree, { type: 'spawned' }, ctx({ policy: p, now })).snapshot
  const crashed = transition(running, { type: 'exited', code: 1, signal: null }, ctx({ policy: p, now: now + 5000 })).snapshot
  t.match(crashed.state, { name: 'backoff' })
  t.equal((crashed.state as { until: number }).until - (now + 5000), 100, 'delay back to initialDelayMs')
  t.same(crashed.recentRestarts, [now + 5000], 'window holds only this crash')
  t.equal(crashed.restartCount, 3, 'restartCount keeps counting')
  // 4999 ms is not enough
  const early = transition(running, { type: 'exited', code: 1, signal: null }, ctx({ policy: p, now: now + 4999 })).snapshot
  t.equal(early.state.name, 'failed', 'crashing before the stable period fills the window')
})

t.test('a probed plugin is stable only from its first healthy verdict', async (t) => {
  const p = { ...policy, resetAfterMs: 1000 }
  let s = transition(initialSnapshot(), { type: 'start' }, ctx({ policy: p, probed: true, now: 0 })).snapshot
  s = transition(s, { type: 'spawned' }, ctx({ policy: p, probed: true, now: 0 })).snapshot
  t.equal(s.stableSince, undefined, 'not stable while health is unknown')
  s = transition(s, { type: 'healthy' }, ctx({ policy: p, probed: true, now: 500 })).snapshot
  t.equal(s.stableSince, 500)
  t.ok(transition(s, { type: 'healthy' }, ctx({ policy: p, probed: true, now: 900 })).ignored, 'a second healthy verdict keeps the start')
})

t.test('status summarizes state and health', async (t) => {
  t.equal(statusOf({ name: 'running', since: 0 }, 'healthy', 0), 'healthy')
  t.equal(statusOf({ name: 'running', since: 0 }, 'degraded', 0), 'degraded')
  t.equal(statusOf({ name: 'running', since: 0 }, 'unhealthy', 0), 'unhealthy')
  t.equal(statusOf({ name: 'running', since: 0 }, 'unknown', 0), 'unknown')
  t.equal(statusOf({ name: 'backoff', since: 0, until: 1, reason: 'crash', detail: 'crash' }, 'unknown', 1), 'restarting')
  t.equal(statusOf({ name: 'starting', since: 0 }, 'unknown', 2), 'restarting')
  t.equal(statusOf({ name: 'starting', since: 0 }, 'unknown', 0), 'unknown')
  t.equal(statusOf({ name: 'stopping', since: 0, intent: { then: 'start' } }, 'unknown', 0), 'restarting')
  t.equal(statusOf({ name: 'stopping', since: 0, intent: { then: 'stopped' } }, 'unknown', 0), 'stopped')
  t.equal(statusOf({ name: 'failed', since: 0, reason: 'x' }, 'unknown', 5), 'failed')
  t.equal(statusOf({ name: 'stopped' }, 'unknown', 0), 'stopped')
})

t.test('restart budget: a burst passes, then restarts wait for the refill', async (t) => {
  const b = new RestartBudget({ burst: 3, perSecond: 2 }, 0)
  t.same([b.take(0), b.take(0), b.take(0)], [0, 0, 0])
  t.equal(b.take(0), 500, 'the 4th waits for half a second (2 per second)')
  t.equal(b.take(500), 0, 'and passes then')
  t.equal(b.take(500), 500)
  t.equal(b.take(10_000), 0, 'the bucket refills')
})

t.test('shutdown takes every plugin down like a stop but keeps desired as it is', async (t) => {
  const running: Snapshot = { ...initialSnapshot('running'), state: { name: 'running', since: 0 } }
  const down = transition(running, { type: 'shutdown', reason: 'daemon shutdown' }, ctx())
  t.match(down.snapshot.state, { name: 'stopping', intent: { then: 'stopped' } })
  t.equal(down.snapshot.desired, 'running', 'desired stays running: the next daemon start runs it again')
  t.same(down.effects, [{ type: 'kill', reason: 'shutdown' }])
  t.equal(down.reason, 'daemon shutdown')
  t.equal(transition(down.snapshot, { type: 'exited', code: 0, signal: 'SIGTERM' }, ctx()).snapshot.state.name, 'stopped')
  t.ok(transition(down.snapshot, { type: 'shutdown' }, ctx()).ignored, 'a second shutdown changes nothing')
  const stop = transition(down.snapshot, { type: 'stop' }, ctx())
  t.equal(stop.snapshot.desired, 'stopped', 'an operator stop during a shutdown is still recorded')

  const backoff = transition(running, { type: 'exited', code: 1, signal: null }, ctx()).snapshot
  const cancelled = transition(backoff, { type: 'shutdown' }, ctx())
  t.equal(cancelled.snapshot.state.name, 'stopped')
  t.equal(cancelled.snapshot.desired, 'running')
  t.same(cancelled.effects, [{ type: 'cancel-restart' }])

  const restarting = transition(running, { type: 'restart' }, ctx()).snapshot
  const overtaken = transition(restarting, { type: 'shutdown' }, ctx())
  t.match(overtaken.snapshot.state, { name: 'stopping', intent: { then: 'stopped' } }, 'a restart under way ends stopped')
  t.equal(overtaken.snapshot.desired, 'running')

  const stoppedByOperator = initialSnapshot('stopped')
  t.ok(transition(stoppedByOperator, { type: 'shutdown' }, ctx()).ignored, 'a stopped plugin stays as it is')
  const failed: Snapshot = { ...initialSnapshot('running'), state: { name: 'failed', since: 0, reason: 'limit' } }
  t.ok(transition(failed, { type: 'shutdown' }, ctx()).ignored, 'a failed plugin stays failed')
})

t.test('the restart reason is an output of the transition, in one vocabulary', async (t) => {
  const running: Snapshot = { ...initialSnapshot('running'), state: { name: 'running', since: 0 }, stableSince: 0 }
  t.same(transition(running, { type: 'restart' }, ctx()).restart, { reason: 'manual' })
  t.equal(transition(running, { type: 'stop' }, ctx()).restart, undefined)
  t.equal(transition(running, { type: 'exited', code: 1, signal: null }, ctx()).restart, undefined, 'a crash only schedules the restart')
  const cases: [LifecycleEvent[], string][] = [
    [[{ type: 'exited', code: 1, signal: null }], 'crash'],
    [[{ type: 'unhealthy' }, { type: 'exited', code: null, signal: 'SIGTERM' }], 'unhealthy'],
    [[{ type: 'memory-exceeded' }, { type: 'exited', code: null, signal: 'SIGTERM' }], 'memory']
  ]
  for (const [evs, reason] of cases) {
    let s = running
    for (const ev of evs) s = transition(s, ev, ctx()).snapshot
    const restarted = transition(s, { type: 'backoff-elapsed' }, ctx())
    t.same(restarted.restart, { reason }, `${reason}: the restart after the backoff says why`)
    t.equal(restarted.reason, `restart after ${reason}`)
  }
  const starting: Snapshot = { ...initialSnapshot('running'), state: { name: 'starting', since: 0 } }
  const spawnFailed = transition(starting, { type: 'spawn-failed', error: { code: 'ENOENT', message: 'spawn x ENOENT' } }, ctx())
  t.match(spawnFailed.snapshot.state, { name: 'backoff', reason: 'crash', detail: 'spawn-error' }, 'a failed spawn restarts as a crash')
  t.equal(spawnFailed.reason, 'spawn-error', 'and says so in the state event')
  t.same(transition(spawnFailed.snapshot, { type: 'backoff-elapsed' }, ctx()).restart, { reason: 'crash' })
  t.equal(transition(initialSnapshot('stopped'), { type: 'backoff-elapsed' }, ctx()).restart, undefined, 'an ignored event restarts nothing')
})

t.test('the health a new state implies: unknown outside running, healthy on running without a probe', async (t) => {
  const starting: Snapshot = { ...initialSnapshot('running'), state: { name: 'starting', since: 0 } }
  t.same(transition(starting, { type: 'spawned' }, ctx({ probed: false })).health, { to: 'healthy', reason: 'running, no health check' })
  t.equal(transition(starting, { type: 'spawned' }, ctx({ probed: true })).health, undefined, 'with a probe, the probes decide')
  const running: Snapshot = { ...initialSnapshot('running'), state: { name: 'running', since: 0 } }
  t.same(transition(running, { type: 'stop' }, ctx()).health, { to: 'unknown', reason: 'state stopping' })
  t.same(transition(running, { type: 'exited', code: 1, signal: null }, ctx()).health, { to: 'unknown', reason: 'state backoff' })
  t.equal(transition(running, { type: 'healthy' }, ctx()).health, undefined, 'no state change, no verdict')
})

t.test('an unhealthy plugin stays unhealthy while it is taken down and waits out its backoff; the next start clears it', async (t) => {
  const running: Snapshot = { ...initialSnapshot('running'), state: { name: 'running', since: 0 } }
  const down = transition(running, { type: 'unhealthy' }, ctx({ probed: true }))
  t.equal(down.snapshot.state.name, 'stopping')
  t.equal(down.health, undefined, 'stopping for being unhealthy keeps the verdict')
  const waiting = transition(down.snapshot, { type: 'exited', code: null, signal: 'SIGTERM' }, ctx({ probed: true }))
  t.equal(waiting.snapshot.state.name, 'backoff')
  t.equal(waiting.health, undefined, 'so does its backoff')
  const again = transition(waiting.snapshot, { type: 'backoff-elapsed' }, ctx({ probed: true }))
  t.same(again.health, { to: 'unknown', reason: 'state starting' }, 'the new process has no verdict yet')
  const memory = transition(running, { type: 'memory-exceeded' }, ctx({ probed: true }))
  t.same(memory.health, { to: 'unknown', reason: 'state stopping' }, 'other restarts are not about health')
  const stopped = transition(down.snapshot, { type: 'stop' }, ctx({ probed: true }))
  const gone = transition(stopped.snapshot, { type: 'exited', code: null, signal: 'SIGTERM' }, ctx({ probed: true }))
  t.same(gone.health, { to: 'unknown', reason: 'state stopped' }, 'an operator stop meanwhile ends it as any stop')
})

t.test('a kill that finds no process ends the stop at once, as its intent says', async (t) => {
  const starting: Snapshot = { ...initialSnapshot('running'), state: { name: 'starting', since: 0 } }
  const stopping = transition(starting, { type: 'stop' }, ctx()).snapshot
  const stopped = transition(stopping, { type: 'nothing-to-kill' }, ctx())
  t.equal(stopped.snapshot.state.name, 'stopped')
  const restarting = transition(starting, { type: 'restart' }, ctx()).snapshot
  const again = transition(restarting, { type: 'nothing-to-kill' }, ctx())
  t.equal(again.snapshot.state.name, 'starting')
  t.same(again.effects, [{ type: 'spawn' }])
  t.ok(transition(starting, { type: 'nothing-to-kill' }, ctx()).ignored, 'outside stopping it means nothing')
})
