// Schedules the probes of every running plugin, turns their results into verdicts for the
// supervisor, publishes each result as a `probe` event, and keeps the last check of every
// plugin in memory so the probe endpoints never read the database.
import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'
import type { Logger } from '../logger.js'
import type { HealthCheck } from '../config/schema.js'
import type { Supervisor } from '../supervisor/supervisor.js'
import { pluginEnv } from '../supervisor/plugin-env.js'
import { systemClock, type Clock } from '../clock.js'
import type { TransitionEvent } from '../supervisor/events.js'
import { createProbeClient, probeKind, runProbe, type ProbeEvent, type ProbeKind, type ProbePhase, type ProbeResult, type ProbeTarget } from './probes.js'
import { initialCounters, nextVerdict, type ProbeCounters } from './verdict.js'
import { ProbeWheel, nextDue } from './probe-wheel.js'

/** The first probe of a cycle waits initialDelayMs plus a random share of min(interval, this). */
export const MAX_FIRST_PROBE_JITTER_MS = 1000

/**
 * Until a cycle's first probe passes, a refused connection (the plugin is still binding its port)
 * is retried after this many ms instead of a whole interval, for at most one interval, without
 * counting as a failure; after that window refusals count as usual.
 */
export const BINDING_RETRY_MS = 100

/**
 * Probes start on a grid of this many ms (less for short intervals, see probeGridMs), each at most
 * that much after it is due: the probes of hundreds of plugins then share the event loop's wake-ups
 * (about 1000 / PROBE_GRID_MS a second), and their answers come back together, instead of each
 * probe waking it on its own.
 */
export const PROBE_GRID_MS = 50

/** A probe is at most 1 / this of its interval late (its grid is shorter than PROBE_GRID_MS for intervals under 1 s). */
const GRID_PER_INTERVAL = 20

/** The grid of a probe with this interval: PROBE_GRID_MS, or a twentieth of a shorter interval (at least 1 ms). */
export function probeGridMs (intervalMs: number): number {
  return Math.max(1, Math.min(PROBE_GRID_MS, Math.floor(intervalMs / GRID_PER_INTERVAL)))
}

/** What the health endpoints show about the probes of one plugin. */
export interface LastCheck {
  probe: ProbeKind | null
  phase: ProbePhase | null
  lastCheckTime: number | null
  lastResult: ProbeResult | null
  lastError: string | null
  responseTimeMs: number | null
  lastHealthyTime: number | null
  /** Consecutive failures of the current probe cycle. */
  failureCount: number
}

interface Cycle {
  generation: number
  counters: ProbeCounters
  target: ProbeTarget | undefined
  /** performance.now() of the cycle's first refused connection; null once a probe passed. */
  refusedSince: number | undefined | null
}

interface Entry {
  cycle: Cycle
  last: LastCheck
}

/** A probe waiting in the wheel; stale once its cycle has ended (another generation). */
interface Due {
  name: string
  entry: Entry
  generation: number
  /** When it is due (performance.now() time); the next one of the cycle is due an interval later. */
  at: number
}

export interface HealthMonitorOptions {
  supervisor: Supervisor
  logger: Logger
  clock?: Clock
  /** In [0, 1); spreads the probes of plugins started together. */
  random?: () => number
}

export interface HealthMonitorEvents {
  /** One probe result (metrics and the history subscribe). */
  probe: [ProbeEvent]
}

export class HealthMonitor extends EventEmitter<HealthMonitorEvents> {
  readonly #supervisor: Supervisor
  readonly #log: Logger
  readonly #clock: Clock
  readonly #random: () => number
  readonly #http = createProbeClient()
  readonly #entries = new Map<string, Entry>()
  readonly #wheel = new ProbeWheel<Due>((d) => { void this.#probe(d) })
  #started = false

  constructor (opts: HealthMonitorOptions) {
    super()
    this.setMaxListeners(0)
    this.#supervisor = opts.supervisor
    this.#log = opts.logger
    this.#clock = opts.clock ?? systemClock
    this.#random = opts.random ?? Math.random
  }

  /** Follows state changes from now on and starts probing every plugin already running. */
  start (): void {
    if (this.#started) return
    this.#started = true
    this.#supervisor.on('transition', this.#onTransition)
    this.#supervisor.on('health', this.#onHealth)
    this.#supervisor.on('unloaded', this.#onUnloaded)
    for (const name of this.#supervisor.names()) {
      if (this.#supervisor.snapshot(name).state.name === 'running') this.#beginCycle(name)
    }
  }

  async stop (): Promise<void> {
    if (!this.#started) return
    this.#started = false
    this.#supervisor.off('transition', this.#onTransition)
    this.#supervisor.off('health', this.#onHealth)
    this.#supervisor.off('unloaded', this.#onUnloaded)
    for (const e of this.#entries.values()) this.#endCycle(e)
    this.#wheel.clear()
    this.#http.close()
  }

  /** The last probe of a plugin (in memory). */
  lastCheck (name: string): LastCheck {
    return this.#entries.get(name)?.last ?? emptyLastCheck(this.#healthCheck(name))
  }

  #healthCheck (name: string): HealthCheck | undefined {
    return this.#supervisor.has(name) ? this.#supervisor.manifest(name).healthCheck : undefined
  }

  #entry (name: string): Entry {
    let e = this.#entries.get(name)
    if (!e) {
      const hc = this.#healthCheck(name)
      e = { cycle: { generation: 0, counters: initialCounters(hc), target: undefined, refusedSince: undefined }, last: emptyLastCheck(hc) }
      this.#entries.set(name, e)
    }
    return e
  }

  readonly #onTransition = (ev: TransitionEvent): void => {
    if (ev.to === 'running') this.#beginCycle(ev.plugin)
    else if (ev.from === 'running') {
      const e = this.#entries.get(ev.plugin)
      if (e) this.#endCycle(e)
    }
  }

  readonly #onHealth = (ev: { plugin: string, to: string, at: number }): void => {
    if (ev.to === 'healthy' || ev.to === 'degraded') this.#entry(ev.plugin).last.lastHealthyTime = ev.at
  }

  readonly #onUnloaded = (name: string): void => {
    const e = this.#entries.get(name)
    if (e) this.#endCycle(e)
    this.#entries.delete(name)
  }

  /** A new process: fresh counters, first probe after initialDelayMs and a per-plugin jitter. */
  #beginCycle (name: string): void {
    const hc = this.#healthCheck(name)
    if (!hc) return
    const e = this.#entry(name)
    this.#endCycle(e)
    const m = this.#supervisor.manifest(name)
    const port = this.#supervisor.summary(name).port ?? undefined
    e.cycle.counters = initialCounters(hc)
    e.cycle.refusedSince = undefined
    // The daemon's instance marker too: a probe still running when the daemon is killed hard is found and ended by the next one.
    e.cycle.target = { port, cwd: m.cwd, env: hc.exec ? pluginEnv(m, port, this.#supervisor.instance) : {} }
    e.last.failureCount = 0
    e.last.phase = e.cycle.counters.phase
    const interval = this.#intervalOf(hc, e.cycle.counters)
    const delay = hc.initialDelayMs + Math.floor(this.#random() * Math.min(interval, MAX_FIRST_PROBE_JITTER_MS))
    const at = performance.now() + delay
    this.#wheel.add(at, probeGridMs(interval), { name, entry: e, generation: e.cycle.generation, at })
  }

  /** Its probe still in the wheel is skipped when its slot comes (another generation). */
  #endCycle (e: Entry): void {
    e.cycle.generation++
  }

  #intervalOf (hc: HealthCheck, c: ProbeCounters): number {
    return c.phase === 'startup' && hc.startup ? hc.startup.intervalMs : hc.intervalMs
  }

  async #probe (due: Due): Promise<void> {
    const { name, entry: e, generation } = due
    const hc = this.#healthCheck(name)
    if (!hc || generation !== e.cycle.generation || !this.#supervisor.has(name)) return
    if (this.#supervisor.snapshot(name).state.name !== 'running') return
    const phase = e.cycle.counters.phase
    const started = performance.now()
    const outcome = await runProbe(hc, e.cycle.target!, this.#http)
    const durationMs = Math.round((performance.now() - started) * 1000) / 1000
    // The process may have gone (or been replaced) while the probe ran: its result is stale.
    if (generation !== e.cycle.generation) return
    const at = this.#clock.now()
    const kind = probeKind(hc)
    // In place: every reader of a last check (the health endpoints) reads it at once.
    const last = e.last
    last.probe = kind
    last.lastCheckTime = at
    last.lastResult = outcome.result
    last.lastError = outcome.error ?? null
    last.responseTimeMs = durationMs
    if (outcome.result !== 'failure') last.lastHealthyTime = at
    const ev: ProbeEvent = { plugin: name, probe: kind, phase, result: outcome.result, durationMs, at }
    if (outcome.error !== undefined) ev.error = outcome.error
    this.emit('probe', ev)
    if (outcome.result !== 'failure') {
      e.cycle.refusedSince = null
    } else if (e.cycle.refusedSince !== null && outcome.error?.includes('ECONNREFUSED') === true) {
      e.cycle.refusedSince ??= started
      if (performance.now() - e.cycle.refusedSince < this.#intervalOf(hc, e.cycle.counters)) {
        due.at = performance.now() + BINDING_RETRY_MS
        this.#wheel.add(due.at, probeGridMs(BINDING_RETRY_MS), due)
        return
      }
    }
    const verdict = nextVerdict(e.cycle.counters, outcome.result, hc)
    e.cycle.counters = verdict.counters
    e.last.failureCount = verdict.counters.phase === 'startup' ? verdict.counters.startupFailures : verdict.counters.failures
    e.last.phase = verdict.counters.phase
    if (outcome.result === 'failure') this.#log.debug({ plugin: name, probe: kind, phase, error: outcome.error }, `probe of ${name} failed: ${outcome.error}`)
    // Compared with the verdict, not the shown health: an open circuit shows a healthy plugin as
    // degraded, and the probes must neither fight that nor be lost when the circuit closes.
    if (verdict.health !== undefined && verdict.health !== this.#supervisor.verdict(name)) {
      this.#supervisor.setHealth(name, verdict.health, verdict.reason)
    }
    // setHealth(unhealthy) may have stopped the process, which ended this cycle.
    if (generation !== e.cycle.generation || !this.#started) return
    const interval = this.#intervalOf(hc, e.cycle.counters)
    due.at = nextDue(due.at, interval, performance.now())
    this.#wheel.add(due.at, probeGridMs(interval), due)
  }
}

function emptyLastCheck (hc: HealthCheck | undefined): LastCheck {
  return {
    probe: hc ? probeKind(hc) : null,
    phase: null,
    lastCheckTime: null,
    lastResult: null,
    lastError: null,
    responseTimeMs: null,
    lastHealthyTime: null,
    failureCount: 0
  }
}
