// The lifecycle of one plugin as a pure function: (snapshot, event, policy, now, random) →
// next snapshot + the effects the driver must perform. No timers, no processes, no I/O here,
// so every rule can be tested exhaustively with an injected clock.
import type { RestartPolicy } from '../config/schema.js'
import { restartDelay } from './backoff.js'

export const STATE_NAMES = ['stopped', 'starting', 'running', 'stopping', 'backoff', 'failed'] as const
export type StateName = typeof STATE_NAMES[number]

/** What the operator asked for (persisted). */
export const DESIRED_NAMES = ['running', 'stopped'] as const
export type Desired = typeof DESIRED_NAMES[number]

/**
 * Why a plugin was restarted (the `reason` label of plugvisor_restarts_total): crash (an
 * unexpected exit, or a failed spawn), unhealthy (failed probes), memory (limits.maxMemoryMb),
 * manual (an operator restart), watch (one of its watched files changed), hook (its postStart
 * hook failed: a failed start). All but manual and watch go through the backoff.
 */
export const RESTART_REASONS = ['crash', 'unhealthy', 'memory', 'manual', 'watch', 'hook'] as const
export type RestartEventReason = typeof RESTART_REASONS[number]
/** The restart reasons that go through the backoff. */
export type RestartReason = Exclude<RestartEventReason, 'manual' | 'watch'>

/** Why a process could not be created: the system's error code (ENOENT, EACCES, ...) and message. */
export interface SpawnError { code: string, message: string }

/** How the last process ended; `error` when it never ran (a failed spawn). */
export interface ExitInfo { code: number | null, signal: string | null, at: number, error?: SpawnError }

/** Why the plugin is going down when it is stopping. */
export type StopIntent =
  | { then: 'stopped' } // operator stop
  | { then: 'start' } // operator restart: start again once down
  | { then: 'crash', reason: Exclude<RestartReason, 'crash'> } // the supervisor restarts it through the backoff

export type State =
  | { name: 'stopped' }
  | { name: 'starting', since: number }
  | { name: 'running', since: number }
  | { name: 'stopping', since: number, intent: StopIntent }
  | { name: 'backoff', since: number, until: number, reason: RestartReason, detail: string }
  | { name: 'failed', since: number, reason: string }

export interface Snapshot {
  state: State
  desired: Desired
  /** Automatic restarts since the last operator start/restart. */
  restartCount: number
  /** Consecutive automatic restarts that drive the backoff delay (reset by a stable period). */
  backoffAttempt: number
  /** Times of automatic restarts still inside restart.windowMs. */
  recentRestarts: number[]
  /** Since when the plugin has been running without a crash (and healthy, when probed); undefined when not. */
  stableSince?: number
  lastExit?: ExitInfo
}

export type LifecycleEvent =
  | { type: 'start', reason?: string } // operator (or boot) start
  | { type: 'stop', reason?: string }
  | { type: 'shutdown', reason?: string } // the daemon stops: like stop, but desired stays as it is
  | { type: 'restart', reason?: string }
  | { type: 'spawned' } // the process is running
  | { type: 'spawn-failed', error: SpawnError }
  | { type: 'exited', code: number | null, signal: string | null }
  | { type: 'nothing-to-kill' } // a kill found no process (the spawn was still picking a port): it is down at once
  | { type: 'backoff-elapsed' }
  | { type: 'unhealthy' } // failureThreshold reached
  | { type: 'healthy' } // verdict healthy (again): starts the stable period of a probed plugin
  | { type: 'memory-exceeded' }
  | { type: 'files-changed', detail: string } // a file of manifest watch.paths changed
  | { type: 'checksum-mismatch', detail: string } // the executable is not the one manifest sha256 pins
  | { type: 'post-start-failed', detail: string } // hooks.postStart failed or timed out: a failed start

export type Effect =
  | { type: 'spawn' }
  | { type: 'kill', reason: string } // stop signal to the group, SIGKILL after stop.timeoutMs
  | { type: 'schedule-restart', at: number }
  | { type: 'cancel-restart' }

export interface Transition {
  snapshot: Snapshot
  effects: Effect[]
  /** Short reason recorded with the state event. */
  reason: string
  /** The event changed nothing (idempotent repeat, or not applicable in this state). */
  ignored: boolean
  /** Set when this transition restarts the plugin (a manual restart, or a backoff that elapsed). */
  restart?: { reason: RestartEventReason }
  /**
   * The health verdict the new state implies: unknown outside running, except that an unhealthy
   * plugin stays unhealthy while it is taken down and waits out its backoff (the operator sees
   * why it restarts); healthy on reaching running without a probe (with one, the probes decide).
   * Unset when the state did not change.
   */
  health?: { to: Health, reason: string }
}

export interface LifecycleContext {
  policy: RestartPolicy
  /** Plugins with a health probe become stable only once healthy. */
  probed: boolean
  now: number
  /** In [0, 1); injected so jitter is testable. */
  random: () => number
}

export function initialSnapshot (desired: Desired = 'stopped'): Snapshot {
  return { state: { name: 'stopped' }, desired, restartCount: 0, backoffAttempt: 0, recentRestarts: [] }
}

const ignore = (snapshot: Snapshot): Transition => ({ snapshot, effects: [], reason: 'ignored', ignored: true })

function go (s: Snapshot, state: State, reason: string, effects: Effect[] = [], patch: Partial<Snapshot> = {}): Transition {
  return { snapshot: { ...s, ...patch, state }, effects, reason, ignored: false }
}

/** An operator start or restart clears every counter (also out of failed). */
const freshCounters = { restartCount: 0, backoffAttempt: 0, recentRestarts: [] as number[] }

/** What a stop asks of desired: an operator stop persists it, a daemon shutdown keeps it. */
const desiredAfter = (s: Snapshot, type: 'stop' | 'shutdown'): Partial<Snapshot> => type === 'stop' ? { desired: 'stopped' } : { desired: s.desired }

/** Stop, shutdown or restart of a process that exists (starting or running): signal it, then act on its exit. */
function takeDown (s: Snapshot, ev: { type: 'stop' | 'shutdown' | 'restart', reason?: string }, now: number): Transition {
  return ev.type === 'restart'
    ? go(s, { name: 'stopping', since: now, intent: { then: 'start' } }, ev.reason ?? 'restart', [{ type: 'kill', reason: 'restart' }], { ...freshCounters, desired: 'running' })
    : go(s, { name: 'stopping', since: now, intent: { then: 'stopped' } }, ev.reason ?? ev.type, [{ type: 'kill', reason: ev.type }], desiredAfter(s, ev.type))
}

/**
 * Decides what follows an unplanned end of the process: restart through the backoff, give up
 * (failed), or stay stopped because the policy says so.
 */
function afterCrash (s: Snapshot, ctx: LifecycleContext, reason: RestartReason, exit?: ExitInfo, detail: string = reason): Transition {
  const { policy, now } = ctx
  const patch: Partial<Snapshot> = { stableSince: undefined }
  if (exit) patch.lastExit = exit
  const cleanExit = exit !== undefined && exit.code === 0 && exit.signal === null
  if (reason === 'crash' && (policy.policy === 'never' || (policy.policy === 'on-failure' && cleanExit))) {
    return go(s, { name: 'stopped' }, cleanExit ? 'exited' : 'exited (restart policy ' + policy.policy + ')', [], patch)
  }
  // A failed postStart is a failed start: restarted unless the policy is never (how the process
  // ended does not matter, it was stopped).
  if (reason === 'hook' && policy.policy === 'never') return go(s, { name: 'stopped' }, 'postStart hook failed (restart policy never)', [], patch)
  let attempt = s.backoffAttempt
  let recent = s.recentRestarts.filter((t) => now - t < policy.windowMs)
  if (s.stableSince !== undefined && now - s.stableSince >= policy.resetAfterMs) {
    attempt = 0
    recent = []
  }
  if (recent.length >= policy.maxRestarts) {
    return go(s, { name: 'failed', since: now, reason: `${recent.length} restarts within ${policy.windowMs} ms` }, `failed: ${detail}, restart limit reached`, [], { ...patch, backoffAttempt: attempt, recentRestarts: recent })
  }
  attempt += 1
  const delay = restartDelay(attempt, policy, ctx.random)
  const until = now + delay
  return go(s, { name: 'backoff', since: now, until, reason, detail }, detail, [{ type: 'schedule-restart', at: until }], {
    ...patch, backoffAttempt: attempt, recentRestarts: [...recent, now]
  })
}

/**
 * A watched file changed: down and up again like an operator restart, but the counters and the
 * desired state stay (nobody asked for it). Only a process that exists is restarted.
 */
function watchRestart (s: Snapshot, detail: string, now: number): Transition {
  return go(s, { name: 'stopping', since: now, intent: { then: 'start' } }, `watch: ${detail}`, [{ type: 'kill', reason: 'watch' }], { stableSince: undefined })
}

/** Stopping, or waiting out the backoff, because the probes said unhealthy. */
function downForBeingUnhealthy (st: State): boolean {
  return (st.name === 'stopping' && st.intent.then === 'crash' && st.intent.reason === 'unhealthy') ||
    (st.name === 'backoff' && st.reason === 'unhealthy')
}

export function transition (s: Snapshot, ev: LifecycleEvent, ctx: LifecycleContext): Transition {
  const t = decide(s, ev, ctx)
  if (t.ignored) return t
  const out: Transition = { ...t }
  if (ev.type === 'restart') out.restart = { reason: 'manual' }
  else if (ev.type === 'files-changed') out.restart = { reason: 'watch' }
  else if (ev.type === 'backoff-elapsed' && s.state.name === 'backoff') out.restart = { reason: s.state.reason }
  const to = t.snapshot.state.name
  if (to !== s.state.name) {
    // The verdict that brought the restart stays until the next process starts.
    if (downForBeingUnhealthy(t.snapshot.state)) return out
    if (to !== 'running') out.health = { to: 'unknown', reason: `state ${to}` }
    else if (!ctx.probed) out.health = { to: 'healthy', reason: 'running, no health check' }
  }
  return out
}

function decide (s: Snapshot, ev: LifecycleEvent, ctx: LifecycleContext): Transition {
  const { now } = ctx
  const st = s.state
  switch (st.name) {
    case 'stopped':
    case 'failed':
      switch (ev.type) {
        case 'start':
        case 'restart':
          return go(s, { name: 'starting', since: now }, ev.reason ?? ev.type, [{ type: 'spawn' }], { ...freshCounters, desired: 'running' })
        case 'stop':
          if (st.name === 'stopped' && s.desired === 'stopped') return ignore(s)
          return go(s, { name: 'stopped' }, ev.reason ?? 'stop', [], { desired: 'stopped' })
        case 'shutdown':
          // Failed stays failed (the daemon's next start does not retry it either unless desired).
          return ignore(s)
        default:
          return ignore(s)
      }
    case 'starting':
      switch (ev.type) {
        case 'start':
          return ignore(s)
        case 'stop':
        case 'shutdown':
        case 'restart':
          return takeDown(s, ev, now)
        case 'spawned':
          return go(s, { name: 'running', since: now }, 'spawned', [], { stableSince: ctx.probed ? undefined : now })
        case 'spawn-failed':
          return afterCrash(s, ctx, 'crash', { code: null, signal: null, at: now, error: ev.error }, 'spawn-error')
        case 'exited':
          return afterCrash(s, ctx, 'crash', { code: ev.code, signal: ev.signal, at: now })
        case 'checksum-mismatch':
          // Never spawned, never retried: another binary than the pinned one needs an operator.
          return go(s, { name: 'failed', since: now, reason: 'checksum' }, 'checksum', [], { stableSince: undefined })
        case 'files-changed':
          return watchRestart(s, ev.detail, now)
        default:
          return ignore(s)
      }
    case 'running':
      switch (ev.type) {
        case 'start':
          return ignore(s)
        case 'stop':
        case 'shutdown':
        case 'restart':
          return takeDown(s, ev, now)
        case 'exited':
          return afterCrash(s, ctx, 'crash', { code: ev.code, signal: ev.signal, at: now })
        case 'unhealthy':
        case 'memory-exceeded': {
          const reason = ev.type === 'unhealthy' ? 'unhealthy' : 'memory'
          // restart.policy never: leave it running, unhealthy, for the operator to look at.
          if (ctx.policy.policy === 'never') return { ...ignore({ ...s, stableSince: undefined }), reason }
          return go(s, { name: 'stopping', since: now, intent: { then: 'crash', reason } }, reason, [{ type: 'kill', reason }], { stableSince: undefined })
        }
        case 'files-changed':
          return watchRestart(s, ev.detail, now)
        case 'post-start-failed':
          return go(s, { name: 'stopping', since: now, intent: { then: 'crash', reason: 'hook' } }, `postStart hook failed: ${ev.detail}`, [{ type: 'kill', reason: 'hook' }], { stableSince: undefined })
        case 'healthy':
          if (s.stableSince !== undefined) return ignore(s)
          return { snapshot: { ...s, stableSince: now }, effects: [], reason: 'healthy', ignored: false }
        default:
          return ignore(s)
      }
    case 'stopping':
      switch (ev.type) {
        case 'start':
        case 'restart':
          if (st.intent.then === 'start') return ignore(s)
          return go(s, { ...st, intent: { then: 'start' } }, ev.reason ?? ev.type, [], { ...freshCounters, desired: 'running' })
        case 'stop':
        case 'shutdown':
          if (st.intent.then === 'stopped' && (ev.type === 'shutdown' || s.desired === 'stopped')) return ignore(s)
          return go(s, { ...st, intent: { then: 'stopped' } }, ev.reason ?? ev.type, [], desiredAfter(s, ev.type))
        case 'exited':
        case 'spawn-failed':
        case 'nothing-to-kill': {
          const exit: ExitInfo = ev.type === 'exited'
            ? { code: ev.code, signal: ev.signal, at: now }
            : ev.type === 'spawn-failed' ? { code: null, signal: null, at: now, error: ev.error } : { code: null, signal: null, at: now }
          switch (st.intent.then) {
            case 'stopped':
              return go(s, { name: 'stopped' }, 'stopped', [], { lastExit: exit, stableSince: undefined })
            case 'start':
              return go(s, { name: 'starting', since: now }, 'restart', [{ type: 'spawn' }], { lastExit: exit, stableSince: undefined })
            case 'crash':
              return afterCrash(s, ctx, st.intent.reason, exit)
            default:
              throw new Error(`unknown stop intent ${JSON.stringify(st.intent)}`)
          }
        }
        default:
          return ignore(s)
      }
    case 'backoff':
      switch (ev.type) {
        case 'start':
        case 'restart':
          return go(s, { name: 'starting', since: now }, ev.reason ?? ev.type, [{ type: 'cancel-restart' }, { type: 'spawn' }], { ...freshCounters, desired: 'running' })
        case 'stop':
        case 'shutdown':
          return go(s, { name: 'stopped' }, ev.reason ?? ev.type, [{ type: 'cancel-restart' }], desiredAfter(s, ev.type))
        case 'backoff-elapsed':
          return go(s, { name: 'starting', since: now }, `restart after ${st.detail}`, [{ type: 'spawn' }], { restartCount: s.restartCount + 1 })
        default:
          return ignore(s)
      }
    default: {
      const never: never = st
      throw new Error(`unknown state ${JSON.stringify(never)}`)
    }
  }
}

export const STATUS_NAMES = ['healthy', 'degraded', 'unhealthy', 'unknown', 'restarting', 'failed', 'stopped'] as const
export type Status = typeof STATUS_NAMES[number]

export const HEALTH_NAMES = ['unknown', 'healthy', 'degraded', 'unhealthy'] as const
export type Health = typeof HEALTH_NAMES[number]

/** The one-word summary of state and health that the health endpoints report. */
export function statusOf (state: State, health: Health, restartCount: number): Status {
  switch (state.name) {
    case 'failed': return 'failed'
    case 'stopped': return 'stopped'
    case 'backoff': return 'restarting'
    case 'stopping': return state.intent.then === 'stopped' ? 'stopped' : 'restarting'
    case 'starting': return restartCount > 0 ? 'restarting' : 'unknown'
    case 'running': return health
    default: {
      const never: never = state
      throw new Error(`unknown state ${JSON.stringify(never)}`)
    }
  }
}
