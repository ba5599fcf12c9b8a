// The driver around the pure lifecycle table: it feeds events in, performs the effects (spawn,
// kill, timers), persists transitions and desired state, and publishes every change as an event.
import { EventEmitter } from 'node:events'
import path from 'node:path'
import { readFileSync } from 'node:fs'
import type { Logger } from '../logger.js'
import { systemClock, type Clock } from '../clock.js'
import { freeLoopbackPort, pluginEnv } from './plugin-env.js'
import { checkDependencies, formatProblem, type LoadedManifest } from '../config/load.js'
import { errors, withProblems } from '../errors.js'
import type { CircuitStateName } from '../invoke/circuit.js'
import type { HealthEvent, HookEvent, PluginGauges, PluginSummary, RestartEvent, TransitionEvent } from './events.js'
import { pluginMetadata } from '../config/metadata.js'
import {
  initialSnapshot, statusOf, transition,
  type Health, type LifecycleEvent, type Snapshot, type SpawnError, type StateName, type Status, type Transition
} from './lifecycle.js'
import { RestartBudget } from './backoff.js'
import { verifyExecutable } from '../process/executable.js'
import { LogRing, type LogLine } from '../process/log-ring.js'
import type { ProcessHandle, ProcessIdentity, ProcessRunner, ReapResult } from '../process/runner.js'
import type { LifecycleStore } from './lifecycle-store.js'
import type { RecordedProcess } from '../store/state-store.js'
import { shownField } from '../config/redact.js'
import { DEFAULT_STOP } from '../config/schema.js'
import { INSTANCE_VAR, isEarlierDaemon, markerOf } from '../process/instance-marker.js'
import { signalGroup } from '../process/proc.js'
import { writeFileAtomic } from '../config/manifest-files.js'
import { HookRunner, hookTarget, type HookName, type HookResult, type HookSpec } from '../hooks/hook-runner.js'

export const LOG_RING_LINES = 1000

export interface SupervisorEvents {
  transition: [TransitionEvent]
  restart: [RestartEvent]
  health: [HealthEvent]
  /** One line a plugin printed (also in its ring buffer and the log). */
  output: [{ plugin: string, stream: 'stdout' | 'stderr', line: string, at: number }]
  /** A plugin was added to or removed from supervision. */
  loaded: [string]
  unloaded: [string]
  /** A spawn was refused: the executable is not the one manifest sha256 pins. */
  checksum: [{ plugin: string, file: string | undefined, reason: string, at: number }]
  /** A lifecycle hook ran (postStart, preStop, reload). */
  hook: [HookEvent]
}

/** Plugins to add, remove and replace in one operation, checked as a whole before anything changes. */
export interface ChangeSet {
  add?: LoadedManifest[]
  remove?: string[]
  replace?: LoadedManifest[]
  /** Desired state of added plugins (persisted); default: the stored one, else autostart. */
  desired?: Map<string, 'running' | 'stopped'>
  /** The operator who asked (hooks the change runs are audited with it). */
  actor?: string
}

type Op = 'start' | 'stop' | 'restart'
/** A lifecycle store write waiting for the transaction of its turn of the event loop: see Supervisor#persist. */
interface StoreWrite {
  plugin: string
  what: KeptRecord | 'state event' | 'hook event'
  write: () => void
  /** Once it went through. */
  done?: () => void
  /** Once it was tried, whether it went through or not. */
  after?: () => void
}
/**
 * Records of new processes that wait at most for one transaction (with the other writes of the
 * turn): a daemon killed in a start burst leaves few processes only the instance marker names.
 * A start wrote about four records per process, and the cap was 64 writes; the other writes
 * (a stop of 500 makes 2,000) wait for the end of the turn whatever their number.
 */
const MAX_UNRECORDED_PROCESSES = 16
/** What the store keeps of a plugin and is written again until it went through (a full disk). */
export type KeptRecord = 'desired state' | 'process identity'
/** Queue tail kinds: the operator operations, and the registry changes that must not be joined. */
type TailOp = Op | 'unload' | 'replace' | 'shutdown' | 'watch'

class Plugin {
  snapshot: Snapshot
  /** What the operator sees: the verdict, made degraded while the circuit is not closed. */
  health: Health = 'unknown'
  /** The lifecycle's and the probes' verdict, kept apart so a closing circuit brings it back. */
  verdict: Health = 'unknown'
  /** null until the invoke proxy reports a breaker for this plugin. */
  circuit: CircuitStateName | null = null
  handle: ProcessHandle | undefined
  identity: ProcessIdentity | undefined
  port: number | undefined
  startedAt: number | undefined
  /** Cancels the pending automatic restart. */
  restartTimer: (() => void) | undefined
  /** Bumped at every spawn: a spawn that awaited a port and was overtaken gives up. */
  spawnSeq = 0
  nextRestartAt: number | undefined
  readonly logs = new LogRing(LOG_RING_LINES)
  /** pino children with plugin and stream bound, made at the first spawn. */
  outputLogs: { stdout: Logger, stderr: Logger } | undefined
  /** Serialized operator operations; the tail is joined by an identical request. */
  queue: Promise<unknown> = Promise.resolve()
  tail: { op: TailOp, promise: Promise<unknown> } | undefined
  /** Set once an unload began: start and restart are refused from then on. */
  unloading = false
  readonly settleWaiters = new Set<() => void>()
  /** Aborts a start that still waits for its dependencies (a stop came, or the daemon shuts down). */
  dependencyWait: AbortController | undefined
  /** The records (SQLite, log, events) of transitions on the way to a spawn, made after it: see #feed. */
  deferred: (() => void)[] = []
  /** The process that reached running (preStop runs only for it). */
  upHandle: ProcessHandle | undefined
  /** Set while postStart waits for the startup probe, or runs: aborted when the process leaves running. */
  postStart: AbortController | undefined
  /** The operator whose start brought the process up (its postStart is theirs). */
  postStartActor: string | undefined
  /** What PLUGVISOR_CONFIG_FILE holds now, as this daemon wrote it (a start with the same config writes nothing). */
  configText: string | undefined
  /** postStart waits for the startup probe to pass. */
  postStartWaiting = false
  /** The summary listView() handed out last, with what it was made of. */
  shown: ShownSummary | undefined
  /** The operator whose operation is in progress (hook runs are audited with it); undefined: the supervisor's own. */
  actor: string | undefined

  constructor (public manifest: LoadedManifest, desired: 'running' | 'stopped') {
    this.snapshot = initialSnapshot(desired)
    if (typeof manifest.port === 'number') this.port = manifest.port
  }

  get name (): string { return this.manifest.name }

  #isoOf: number | undefined
  #iso = ''
  /** startedAt as the API writes it: made once per start, not on every summary (GET /plugins makes 500). */
  startedAtIso (): string | null {
    if (this.startedAt === undefined) return null
    if (this.#isoOf !== this.startedAt) {
      this.#isoOf = this.startedAt
      this.#iso = new Date(this.startedAt).toISOString()
    }
    return this.#iso
  }
}

export interface SupervisorOptions {
  runner: ProcessRunner
  store: LifecycleStore
  logger: Logger
  clock?: Clock
  random?: () => number
  restartBudget: { burst: number, perSecond: number }
  /** Picks a free loopback port for `port: auto`. */
  allocatePort?: () => Promise<number>
  /**
   * This daemon's instance marker (PLUGVISOR_INSTANCE in every plugin's environment): stops find
   * a plugin's descendants that left its process group by it, and the start-up cleanup finds what
   * an earlier daemon of the same data folder left. Without one, neither looks.
   */
  instance?: string
  /**
   * Folder of the files named by PLUGVISOR_CONFIG_FILE (`<configDir>/<plugin>.json`, the config
   * in effect, rewritten by a reload hook). Without one, plugins get no such file.
   */
  configDir?: string
  /** Runs lifecycle hooks (default: a new one). */
  hooks?: HookRunner
  /** Writes what a plugin printed to where it is kept (its log files): an operator's stop answers once it is written. */
  flushOutput?: (plugin: string) => Promise<void>
}

const SETTLED: ReadonlySet<StateName> = new Set(['running', 'stopped', 'backoff', 'failed'])

export class Supervisor extends EventEmitter<SupervisorEvents> {
  readonly #plugins = new Map<string, Plugin>()
  readonly #runner: ProcessRunner
  readonly #store: LifecycleStore
  readonly #log: Logger
  readonly #clock: Clock
  readonly #random: () => number
  readonly #budget: RestartBudget
  readonly #allocatePort: () => Promise<number>
  readonly #instance: string | undefined
  /** Records a store write missed, per plugin name, with the reason: written again by persistPending(). */
  readonly #unsaved = new Map<string, Map<KeptRecord, string>>()
  /** The desired state a daemon restarted now would give each plugin (the stored one, else autostart). */
  readonly #savedDesired = new Map<string, 'running' | 'stopped'>()
  readonly #configDir: string | undefined
  readonly #flushOutput: (plugin: string) => Promise<void>
  readonly #hooks: HookRunner
  #closing = false
  /** Lifecycle store writes waiting for the transaction of this turn of the event loop (#persist). */
  #writes: StoreWrite[] = []
  /** How many of #writes record a new process. */
  #unrecordedProcesses = 0
  /** Automatic restarts waiting for the next turn of the loop (restart delay 0). */
  #restartsDue = 0

  constructor (opts: SupervisorOptions) {
    super()
    this.#runner = opts.runner
    this.#store = opts.store
    this.#log = opts.logger
    this.#clock = opts.clock ?? systemClock
    this.#random = opts.random ?? Math.random
    this.#budget = new RestartBudget(opts.restartBudget, this.#clock.now())
    this.#allocatePort = opts.allocatePort ?? freeLoopbackPort
    this.#instance = opts.instance
    this.#configDir = opts.configDir
    this.#hooks = opts.hooks ?? new HookRunner()
    this.#flushOutput = opts.flushOutput ?? (() => Promise.resolve())
    // Waiters (dependencies, ?wait=healthy, SSE, metrics) subscribe per request: no fixed cap.
    this.setMaxListeners(0)
  }

  // ---- registry -------------------------------------------------------------------------

  /** Adds plugins to supervision (not started). Desired state comes from the store, else autostart. */
  load (manifests: LoadedManifest[], desiredOverride: Map<string, 'running' | 'stopped'> = new Map()): void {
    this.#flushWrites()
    const persisted = this.#store.desiredStates()
    for (const m of manifests) {
      if (this.#plugins.has(m.name)) throw new errors.Conflict(`plugin '${m.name}' is already loaded`)
      const override = desiredOverride.get(m.name)
      // What a daemon restarted now would pick: the stored desired state, else autostart.
      const kept = persisted.get(m.name) ?? (m.autostart ? 'running' : 'stopped')
      this.#savedDesired.set(m.name, kept)
      if (override !== undefined) this.#persistDesired(m.name, override)
      const desired = override ?? kept
      this.#plugins.set(m.name, new Plugin(m, desired))
      this.emit('loaded', m.name)
    }
  }

  /**
   * Throws when the change set cannot be applied as a whole: a plugin to add is loaded already,
   * one to remove or replace is not, a remaining plugin would depend on a removed one
   * (PLUGVISOR_CONFLICT), or the resulting set has unknown dependencies or a cycle
   * (PLUGVISOR_INVALID_MANIFEST with the problems). Changes nothing.
   */
  checkChanges (cs: ChangeSet): void {
    const remove = new Set(cs.remove ?? [])
    for (const n of remove) this.#get(n)
    const next = new Map([...this.#plugins.values()].map((p) => [p.name, p.manifest]))
    for (const n of remove) next.delete(n)
    for (const m of cs.replace ?? []) {
      this.#get(m.name)
      if (remove.has(m.name)) throw new errors.Conflict(`plugin '${m.name}' cannot be removed and replaced at once`)
      next.set(m.name, m)
    }
    for (const m of cs.add ?? []) {
      if (next.has(m.name)) throw new errors.Conflict(`plugin '${m.name}' is already loaded`)
      next.set(m.name, m)
    }
    for (const m of next.values()) {
      const gone = m.dependsOn.filter((d) => remove.has(d) && !next.has(d))
      if (gone.length > 0) throw new errors.Conflict(`cannot unload ${gone.map((d) => `'${d}'`).join(', ')}: plugin '${m.name}' depends on it (unload or change '${m.name}' first, or in the same operation)`)
    }
    const { problems } = checkDependencies([...next.values()])
    if (problems.length > 0) throw withProblems(new errors.InvalidManifest(problems.map(formatProblem).join('\n')), problems)
  }

  /**
   * Applies a change set: removed plugins are stopped (dependents first) and unloaded, added
   * ones loaded and started when desired, replaced ones stopped with their old manifest, swapped
   * and started again when they were meant to run. Checked as a whole first (checkChanges):
   * on a problem nothing changes.
   */
  async applyChanges (cs: ChangeSet): Promise<void> {
    this.checkChanges(cs)
    const removing = (cs.remove ?? []).map((n) => this.#get(n))
    if (removing.length > 0) {
      for (const p of removing) p.unloading = true
      await this.#stopPlugins(removing, cs.actor)
      for (const p of removing) this.#unloadStopped(p)
    }
    const added = cs.add ?? []
    this.load(added, cs.desired)
    await Promise.all([
      ...(cs.replace ?? []).map((m) => this.#replace(this.#get(m.name), m, cs.actor)),
      ...added.filter((m) => this.#get(m.name).snapshot.desired === 'running').map((m) => this.#enqueue(this.#get(m.name), 'start', cs.actor))
    ])
    this.#flushWrites()
  }

  /** Stops and unloads one plugin (409 while another loaded plugin depends on it). */
  unload (name: string): Promise<void> { return this.applyChanges({ remove: [name] }) }

  /** Swaps a plugin's manifest: stop with the old one, start with the new one if it was meant to run. */
  replace (manifest: LoadedManifest): Promise<void> { return this.applyChanges({ replace: [manifest] }) }

  /** Stops plugins about to be unloaded, each after the ones of the set that depend on it, each in its queue. */
  #stopPlugins (plugins: Plugin[], actor?: string): Promise<unknown> {
    for (const p of plugins) p.dependencyWait?.abort()
    return dependentsFirst(plugins, (p) => this.#enqueueTask(p, 'unload', () => this.#withActor(p, actor, () => this.#perform(p, 'stop'))))
  }

  #unloadStopped (p: Plugin): void {
    p.restartTimer?.()
    p.restartTimer = undefined
    p.dependencyWait?.abort()
    this.#plugins.delete(p.name)
    // A plugin of that name registered later starts from its own autostart, not this one's history.
    this.#savedDesired.delete(p.name)
    this.#persist(p.name, 'desired state', () => this.#store.forgetDesired(p.name))
    this.#log.info({ plugin: p.name }, `plugin ${p.name}: unloaded`)
    this.emit('unloaded', p.name)
  }

  #replace (p: Plugin, next: LoadedManifest, actor?: string): Promise<void> {
    return this.#enqueueTask(p, 'replace', () => this.#withActor(p, actor, () => this.#replaceNow(p, next)))
  }

  /** Runs an operation with the operator who asked for it known to the hooks it runs. */
  async #withActor<T> (p: Plugin, actor: string | undefined, fn: () => Promise<T>): Promise<T> {
    p.actor = actor
    try {
      return await fn()
    } finally {
      p.actor = undefined
    }
  }

  async #replaceNow (p: Plugin, next: LoadedManifest): Promise<void> {
    const wanted = p.snapshot.desired === 'running'
    if (p.snapshot.state.name !== 'stopped') {
      this.#feed(p, { type: 'stop', reason: 'manifest changed' })
      await this.#settled(p)
    }
    const before = p.manifest
    p.manifest = next
    // A fixed port follows the manifest; an auto port already picked is kept while it stays auto.
    if (typeof next.port === 'number') p.port = next.port
    else if (next.port !== 'auto' || before.port !== 'auto') p.port = undefined
    // Listeners (metrics, probes, resource sampling) set themselves up again from the new manifest.
    this.emit('unloaded', p.name)
    this.emit('loaded', p.name)
    this.#log.info({ plugin: p.name }, `plugin ${p.name}: manifest replaced`)
    if (wanted && !this.#closing) await this.#perform(p, 'start')
  }

  /**
   * A change of `config` alone (the caller checked that nothing else differs). A running plugin
   * with a reload hook gets it in place: the new config is written to its PLUGVISOR_CONFIG_FILE,
   * then the hook runs; same process. When the hook fails, the old config is written back, the
   * manifest stays as it was and PLUGVISOR_HOOK_FAILED is thrown. Any other plugin is replaced
   * (stopped and started again when it was meant to run). Answers which of the two happened.
   */
  reconfigure (next: LoadedManifest, actor?: string): Promise<'reloaded' | 'restarted'> {
    const p = this.#get(next.name)
    this.checkChanges({ replace: [next] })
    return this.#enqueueTask(p, 'replace', () => this.#withActor(p, actor, async () => {
      const hook = p.manifest.hooks?.reload
      if (hook === undefined || p.snapshot.state.name !== 'running' || p.handle === undefined) {
        await this.#replaceNow(p, next)
        return 'restarted' as const
      }
      const before = p.manifest
      this.#writeConfigFile(p, next.config)
      const result = await this.#runHook(p, 'reload', { ...hook, body: hook.http ? JSON.stringify(next.config) : undefined })
      if (result.outcome !== 'success') {
        this.#writeConfigFile(p, before.config)
        throw new errors.HookFailed('reload', p.name, `${result.reason}; the old config is back in place`)
      }
      p.manifest = next
      this.#log.info({ plugin: p.name }, `plugin ${p.name}: config reloaded in place (${result.reason})`)
      return 'reloaded' as const
    }))
  }

  /** Where the plugin's PLUGVISOR_CONFIG_FILE is, if plugins get one. */
  #configFile (p: Plugin): string | undefined {
    return this.#configDir === undefined ? undefined : path.join(this.#configDir, `${p.name}.json`)
  }

  /**
   * Writes the config (atomically: a reader sees the old file or the new one), readable by the
   * daemon's user only. A file that already holds it is left alone: a restart (or a daemon
   * restart on a full disk) needs no write. Not flushed to disk: it is checked again before every
   * start, so a crash loses nothing, and a start burst pays no fsync per plugin.
   */
  #writeConfigFile (p: Plugin, config: Record<string, unknown>): void {
    const file = this.#configFile(p)
    if (file === undefined) return
    const text = JSON.stringify(config, null, 2) + '\n'
    if (text === p.configText) return
    let current: string | undefined
    try { current = readFileSync(file, 'utf8') } catch {}
    p.configText = undefined
    if (current !== text) writeFileAtomic(file, text, { durable: false })
    p.configText = text
  }

  /** Runs one hook of the plugin's current process, publishes and persists the run. */
  async #runHook (p: Plugin, hook: HookName, spec: HookSpec, signal?: AbortSignal, actor = p.actor ?? null): Promise<HookResult> {
    const m = p.manifest
    const target = { pid: p.handle?.pid, port: p.port, cwd: m.cwd, env: pluginEnv(m, p.port, this.#instance, this.#configFile(p)) }
    const result = await this.#hooks.run(spec, target, signal)
    const event: HookEvent = { plugin: p.name, hook, kind: result.kind, target: hookTarget(spec), outcome: result.outcome, durationMs: result.durationMs, reason: result.reason, actor, at: this.#clock.now() }
    this.#persist(p.name, 'hook event', () => this.#store.addHookEvent(event))
    const level = result.outcome === 'success' || result.outcome === 'cancelled' ? 'info' : 'warn'
    this.#log[level]({ plugin: p.name, hook, outcome: result.outcome, durationMs: result.durationMs, actor }, `plugin ${p.name}: ${hook} hook ${result.outcome}: ${result.reason}`)
    this.emit('hook', event)
    return result
  }

  /** postStart of the process that just came up; its failure is a failed start. */
  async #postStart (p: Plugin, ac: AbortController): Promise<void> {
    const spec = p.manifest.hooks?.postStart
    const handle = p.handle
    if (spec === undefined || ac.signal.aborted) return
    const result = await this.#runHook(p, 'postStart', spec, ac.signal, p.postStartActor ?? null)
    if (p.postStart === ac) p.postStart = undefined
    if (result.outcome === 'success' || ac.signal.aborted || p.handle !== handle || p.snapshot.state.name !== 'running') return
    this.#feed(p, { type: 'post-start-failed', detail: result.reason })
  }

  /** Runs fn in the plugin's queue, after what is queued already; `op` names it for #enqueue's joining. */
  #enqueueTask<T> (p: Plugin, op: TailOp, fn: () => Promise<T>): Promise<T> {
    const promise = p.queue.then(fn)
    const entry = { op, promise }
    p.tail = entry
    p.queue = promise.catch(() => {}).finally(() => { if (p.tail === entry) p.tail = undefined })
    return promise
  }

  names (): string[] { return [...this.#plugins.keys()] }

  /** This daemon's instance marker (PLUGVISOR_INSTANCE), if it has one. */
  get instance (): string | undefined { return this.#instance }

  has (name: string): boolean { return this.#plugins.has(name) }

  manifest (name: string): LoadedManifest { return this.#get(name).manifest }

  #get (name: string): Plugin {
    const p = this.#plugins.get(name)
    if (!p) throw new errors.PluginNotFound(name)
    return p
  }

  // ---- read side --------------------------------------------------------------------------

  summary (name: string): PluginSummary {
    return this.#summary(this.#get(name))
  }

  list (): PluginSummary[] {
    return [...this.#plugins.values()].map((p) => this.#summary(p))
  }

  /**
   * Every plugin's summary for a list read often (GET /plugins of 500 plugins): a plugin's is the
   * object of the call before, its uptimeMs set anew, while nothing else it shows changed, so a
   * reader can keep what it made of it by identity; made again when something did. The objects
   * are shared between calls: read them, never change them.
   */
  listView (): PluginSummary[] {
    const out: PluginSummary[] = []
    for (const p of this.#plugins.values()) {
      const v = p.shown
      const pid = p.handle?.pid
      if (v !== undefined && v.snapshot === p.snapshot && v.manifest === p.manifest && v.health === p.health && v.circuit === p.circuit &&
        v.pid === pid && v.port === p.port && v.startedAt === p.startedAt && v.nextRestartAt === p.nextRestartAt) {
        v.summary.uptimeMs = this.#uptimeMs(p)
        out.push(v.summary)
      } else {
        const summary = this.#summary(p)
        p.shown = { snapshot: p.snapshot, manifest: p.manifest, health: p.health, circuit: p.circuit, pid, port: p.port, startedAt: p.startedAt, nextRestartAt: p.nextRestartAt, summary }
        out.push(summary)
      }
    }
    return out
  }

  /**
   * What a metrics scrape shows of every plugin, without making summaries (a scrape of 500
   * plugins read all their summaries for these five fields).
   */
  gauges (): PluginGauges[] {
    const out: PluginGauges[] = []
    for (const p of this.#plugins.values()) out.push({ name: p.manifest.name, state: p.snapshot.state.name, health: p.health, circuit: p.circuit, uptimeMs: this.#uptimeMs(p) })
    return out
  }

  #uptimeMs (p: Plugin): number {
    return p.snapshot.state.name === 'running' && p.startedAt !== undefined ? this.#clock.now() - p.startedAt : 0
  }

  // What a summary is made of: listView() reuses one while each of these is the same (===);
  // a summary that reads anything else must have it compared there too.
  #summary (p: Plugin): PluginSummary {
    const s = p.snapshot
    const running = s.state.name === 'running'
    // Named one by one, not spread: a literal of one fixed shape is built several times faster.
    const m = shownManifestFields(p.manifest)
    return {
      name: p.manifest.name,
      version: m.version,
      description: m.description,
      author: m.author,
      homepage: m.homepage,
      capabilities: m.capabilities,
      tags: m.tags,
      state: s.state.name,
      health: p.health,
      status: statusOf(s.state, p.health, s.restartCount),
      desired: s.desired,
      critical: p.manifest.critical,
      pid: p.handle?.pid ?? null,
      port: p.port ?? null,
      startedAt: running ? p.startedAtIso() : null,
      uptimeMs: this.#uptimeMs(p),
      restartCount: s.restartCount,
      lastExit: s.lastExit ? { code: s.lastExit.code, signal: s.lastExit.signal, at: new Date(s.lastExit.at).toISOString(), error: s.lastExit.error ?? null } : null,
      nextRestartAt: s.state.name === 'backoff' && p.nextRestartAt !== undefined ? new Date(p.nextRestartAt).toISOString() : null,
      circuit: p.circuit
    }
  }

  snapshot (name: string): Snapshot { return this.#get(name).snapshot }

  health (name: string): Health { return this.#get(name).health }

  /** The probes' (or the lifecycle's) verdict, before an open circuit makes it degraded. */
  verdict (name: string): Health { return this.#get(name).verdict }

  circuit (name: string): CircuitStateName | null { return this.#get(name).circuit }

  status (name: string): Status {
    const p = this.#get(name)
    return statusOf(p.snapshot.state, p.health, p.snapshot.restartCount)
  }

  /** The identity of the running process (pid, group, start time), if any. */
  processOf (name: string): ProcessIdentity | undefined { return this.#get(name).identity }

  /** The plugin's port, if it has one (cheap: the invoke proxy asks on every call). */
  portOf (name: string): number | undefined { return this.#get(name).port }

  logs (name: string, tail: number): LogLine[] { return this.#get(name).logs.tail(tail) }

  events (name: string, opts: { since?: number, limit?: number } = {}) {
    this.#get(name)
    this.#flushWrites()
    return this.#store.events(name, opts)
  }

  /** Runs of the plugin's lifecycle hooks, newest first. */
  hookEvents (name: string, opts: { since?: number, limit?: number } = {}) {
    this.#get(name)
    this.#flushWrites()
    return this.#store.hookEvents(name, opts)
  }

  // ---- operator operations ----------------------------------------------------------------

  // Each answers once the change took effect, and with PLUGVISOR_STATE_NOT_PERSISTED (the change
  // done all the same) when the store could not keep the desired state it leaves.
  /** `actor`: the operator who asked (hooks the operation runs are audited with it); `reason` is recorded with the transition (default: operator start). */
  start (name: string, actor?: string, reason?: string): Promise<PluginSummary> { return this.#operate([this.#get(name)], 'start', actor, reason).then(([s]) => s) }
  stop (name: string, actor?: string): Promise<PluginSummary> { return this.#operate([this.#get(name)], 'stop', actor).then(([s]) => s) }
  restart (name: string, actor?: string): Promise<PluginSummary> { return this.#operate([this.#get(name)], 'restart', actor).then(([s]) => s) }

  /** Runs an operator operation on plugins (bulk: stops dependents first, starts in dependency order), then checks that their desired states were saved. */
  async #operate (plugins: Plugin[], op: Op, actor?: string, reason?: string): Promise<PluginSummary[]> {
    let out: PluginSummary[]
    // Enqueued at once (synchronously) when they can be: requests keep the order they came in.
    if (op === 'start' || plugins.length === 1) {
      out = await Promise.all(plugins.map((p) => this.#enqueue(p, op, actor, reason)))
    } else if (op === 'stop') {
      out = await dependentsFirst(plugins, (p) => this.#enqueue(p, op, actor))
    } else {
      await dependentsFirst(plugins, (p) => this.#enqueue(p, 'stop', actor))
      out = await Promise.all(plugins.map((p) => this.#enqueue(p, 'start', actor)))
    }
    // What a stopped plugin printed up to its exit is in its log file when the stop answers.
    if (op === 'stop') await Promise.all(plugins.map((p) => this.#flushOutput(p.name).catch(() => {})))
    this.assertDesiredSaved(plugins.map((p) => p.name), op)
    return out
  }

  /**
   * The end of every operator operation (start/stop/restart, and the run-time changes: register,
   * unload, config change, reload): throws PLUGVISOR_STATE_NOT_PERSISTED, naming `what` was done,
   * when the desired state of one of these plugins (loaded, or just unloaded) is not in the store
   * after one more try to write it. The operation itself is done either way.
   */
  assertDesiredSaved (names: string[], what: string): void {
    this.#flushWrites()
    const unsaved = names.filter((n) => this.#unsaved.get(n)?.has('desired state') && !this.#persistNow(this.#keptWrite(n, 'desired state')))
    if (unsaved.length > 0 && !this.#closing) {
      throw new errors.StateNotPersisted(unsaved.join("', '"), what, this.#unsaved.get(unsaved[0])?.get('desired state'))
    }
  }

  /**
   * One of the plugin's watched files changed: restarts it (reason watch) if it runs or is
   * starting; anything else (stopped, failed, backoff, stopping) is left as it is. A second
   * change while the first restart is queued joins it.
   */
  watchRestart (name: string, detail: string): Promise<PluginSummary> {
    const p = this.#get(name)
    if (p.tail?.op === 'watch') return p.tail.promise as Promise<PluginSummary>
    return this.#enqueueTask(p, 'watch', async () => {
      if (this.#closing || p.unloading) return this.#summary(p)
      this.#feed(p, { type: 'files-changed', detail })
      await this.#settled(p)
      return this.#summary(p)
    })
  }

  /** Starts several plugins; each waits for its dependencies, so order is kept while the rest runs in parallel. */
  async startMany (names: string[], actor?: string, reason?: string): Promise<PluginSummary[]> {
    return this.#operate(names.map((n) => this.#get(n)), 'start', actor, reason)
  }

  /** Stops several plugins, every one after the plugins of the set that depend on it. */
  async stopMany (names: string[], actor?: string): Promise<PluginSummary[]> {
    return this.#operate(names.map((n) => this.#get(n)), 'stop', actor)
  }

  /** Restarts several: stops them in reverse dependency order, then starts them in order. */
  async restartMany (names: string[], actor?: string): Promise<PluginSummary[]> {
    return this.#operate(names.map((n) => this.#get(n)), 'restart', actor)
  }

  /** Boot: starts every plugin whose desired state is running. */
  async startDesired (): Promise<void> {
    await Promise.all([...this.#plugins.values()].filter((p) => p.snapshot.desired === 'running').map((p) => this.#enqueue(p, 'start', undefined, 'daemon start')))
    this.#flushWrites()
  }

  /** Shutdown: stops every plugin in reverse dependency order, keeping desired states as they are. */
  async shutdown (): Promise<void> {
    this.#closing = true
    const all = [...this.#plugins.values()]
    for (const p of all) p.dependencyWait?.abort()
    await dependentsFirst(all, (p) => this.#enqueueTask(p, 'shutdown', async () => {
      this.#feed(p, { type: 'shutdown', reason: 'daemon shutdown' })
      await this.#settled(p)
    }))
    this.#flushWrites()
  }

  /**
   * The last resort before the daemon exits in the middle of a shutdown (a second SIGTERM/SIGINT):
   * SIGKILL to every process group still running, synchronously, so no plugin outlives the daemon.
   */
  killAllNow (): void {
    this.#hooks.killAll()
    for (const p of this.#plugins.values()) {
      const pgid = p.identity?.pgid ?? p.handle?.pid
      if (pgid !== undefined) signalGroup(pgid, 'SIGKILL')
    }
  }

  /** Resolves when `pred` holds for the plugin (checked at every change), or rejects after timeoutMs (PLUGVISOR_WAIT_TIMEOUT). */
  waitFor (name: string, pred: (s: PluginSummary) => boolean, timeoutMs: number, what = 'as awaited'): Promise<PluginSummary> {
    const p = this.#get(name)
    const timeout = new AbortController()
    const timer = setTimeout(() => timeout.abort(), timeoutMs)
    let last = this.#summary(p)
    return this.#waitUntil(p, () => pred(last = this.#summary(p)), timeout.signal).then((held) => {
      clearTimeout(timer)
      if (!held) throw new errors.WaitTimeout(name, what, timeoutMs)
      return last
    })
  }

  /**
   * Resolves true once `holds()` is true, checked now and at every transition and health change
   * of the plugin; false when `signal` aborts first.
   */
  #waitUntil (p: Plugin, holds: () => boolean, signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      if (holds()) return resolve(true)
      if (signal.aborted) return resolve(false)
      const finish = (held: boolean): void => {
        this.off('transition', onChange)
        this.off('health', onChange)
        signal.removeEventListener('abort', onAbort)
        resolve(held)
      }
      const onChange = (e: { plugin: string }): void => { if (e.plugin === p.name && holds()) finish(true) }
      const onAbort = (): void => finish(false)
      this.on('transition', onChange)
      this.on('health', onChange)
      signal.addEventListener('abort', onAbort)
    })
  }

  #enqueue (p: Plugin, op: Op, actor?: string, reason?: string): Promise<PluginSummary> {
    if (p.unloading && op !== 'stop') return Promise.reject(new errors.Conflict(`plugin '${p.name}' is being unloaded`))
    if (op === 'stop') p.dependencyWait?.abort()
    // Two identical requests in a row are one: a second restart joins the first.
    if (p.tail?.op === op) return p.tail.promise as Promise<PluginSummary>
    return this.#enqueueTask(p, op, () => this.#withActor(p, actor, () => this.#perform(p, op, reason)))
  }

  async #perform (p: Plugin, op: Op, reason = op === 'restart' ? 'manual restart' : `operator ${op}`): Promise<PluginSummary> {
    if (op !== 'stop' && this.#closing) return this.#summary(p)
    // Without dependencies there is nothing to wait for, and no controller to make per start (a
    // start of 500 made 500, kept until the burst ended).
    if (op !== 'stop' && p.manifest.dependsOn.length > 0) {
      const ac = new AbortController()
      p.dependencyWait = ac
      try {
        await this.#awaitDependencies(p, ac.signal)
      } finally {
        p.dependencyWait = undefined
      }
      // A stop (or shutdown) overtook this start while it waited.
      if (ac.signal.aborted || this.#closing) return this.#summary(p)
    }
    this.#feed(p, { type: op, reason })
    await this.#settled(p)
    return this.#summary(p)
  }

  /** Starts missing dependencies and waits until each is healthy or degraded (or has given up). */
  async #awaitDependencies (p: Plugin, signal: AbortSignal): Promise<void> {
    await Promise.all(p.manifest.dependsOn.map(async (depName) => {
      const dep = this.#plugins.get(depName)
      if (!dep) return
      // A stop of the dependent does not wait for the dependency's start to settle.
      if (dep.snapshot.state.name !== 'running') await Promise.race([this.#enqueue(dep, 'start', p.actor, `dependency of ${p.name}`), aborted(signal)])
      if (signal.aborted) return
      // A dependency that is down for good (failed, stopped, unhealthy) does not hold the dependent back forever.
      const settled = (): boolean => {
        const st = statusOf(dep.snapshot.state, dep.health, dep.snapshot.restartCount)
        return st !== 'unknown' && st !== 'restarting'
      }
      await this.#waitUntil(dep, settled, signal)
    }))
  }

  #settled (p: Plugin): Promise<void> {
    if (SETTLED.has(p.snapshot.state.name)) return Promise.resolve()
    return new Promise((resolve) => p.settleWaiters.add(resolve))
  }

  // ---- inputs from probes and resource sampling ------------------------------------------

  /** Sets the health verdict of a running plugin (from the health module). */
  setHealth (name: string, health: Health, reason: string): void {
    const p = this.#get(name)
    if (p.snapshot.state.name !== 'running') return
    // With a startup probe, postStart waits until it passed.
    if (p.postStartWaiting && p.postStart !== undefined && (health === 'healthy' || health === 'degraded')) {
      p.postStartWaiting = false
      void this.#postStart(p, p.postStart)
    }
    this.#setHealth(p, health, reason)
    if (health === 'healthy' || health === 'degraded') this.#feed(p, { type: 'healthy' })
    if (health === 'unhealthy') this.#feed(p, { type: 'unhealthy' })
  }

  /** The memory limit was exceeded (from the resource sampler). */
  memoryExceeded (name: string): void {
    this.#feed(this.#get(name), { type: 'memory-exceeded' })
  }

  /**
   * The circuit breaker of calls into the plugin changed state (from the invoke proxy). While it
   * is not closed, a healthy plugin shows as degraded; the process is left alone (no restart).
   * When it closes, health is the verdict again.
   */
  setCircuit (name: string, circuit: CircuitStateName, reason: string): void {
    const p = this.#get(name)
    const from = p.circuit
    if (from === circuit) return
    p.circuit = circuit
    if (from !== null) this.#log[circuit === 'closed' ? 'info' : 'warn']({ plugin: p.name, from, to: circuit, reason }, `plugin ${p.name}: circuit ${from} -> ${circuit} (${reason})`)
    this.#applyHealth(p, `circuit ${circuit}: ${reason}`)
  }

  #setHealth (p: Plugin, health: Health, reason: string): void {
    p.verdict = health
    this.#applyHealth(p, reason)
  }

  #applyHealth (p: Plugin, reason: string): void {
    const circuitHolds = p.circuit !== null && p.circuit !== 'closed'
    // Only a passing verdict is lowered: unhealthy and unknown say more than the circuit does.
    const health: Health = circuitHolds && p.verdict === 'healthy' ? 'degraded' : p.verdict
    if (p.health === health) return
    const from = p.health
    p.health = health
    this.emit('health', { plugin: p.name, from, to: health, reason, at: this.#clock.now() })
  }

  // ---- the driver -------------------------------------------------------------------------

  #feed (p: Plugin, ev: LifecycleEvent): Transition {
    const now = this.#clock.now()
    const before = p.snapshot
    const t = transition(before, ev, { policy: p.manifest.restart, probed: p.manifest.healthCheck !== undefined, now, random: this.#random })
    if (t.ignored) {
      p.snapshot = t.snapshot
      return t
    }
    p.snapshot = t.snapshot
    const record = (): void => {
      if (t.snapshot.desired !== before.desired && !this.#closing) this.#persistDesired(p.name, t.snapshot.desired)
      if (t.health) this.#setHealth(p, t.health.to, t.health.reason)
      if (before.state.name !== t.snapshot.state.name) this.#onStateChange(p, before, ev, t, now)
      if (t.restart) this.emit('restart', { plugin: p.name, reason: t.restart.reason, at: now })
    }
    // An automatic restart with no delay goes exit -> backoff -> (next turn) starting + spawn.
    // The records of those transitions (SQLite writes, log lines, events) wait until the spawn
    // is under way, in their order, so the new process starts as soon after the exit as it can;
    // anything else first makes what is waiting, then its own, then its effects.
    // A stop's signals go out before its records: the runner sends the signals of a turn
    // together at its end (a stop of 500 in one frame to the spawner), and the records of 500
    // stops made before it held every signal back; they are made right after it, in their order.
    const spawns = t.effects.some((e) => e.type === 'spawn')
    const restartsNow = t.effects.some((e) => e.type === 'schedule-restart' && e.at <= now)
    const kills = t.effects.some((e) => e.type === 'kill')
    if (spawns) {
      for (const effect of t.effects) this.#performEffect(p, effect)
      this.#recordDeferred(p)
      record()
    } else if (kills) {
      // Waiting before the effects: what they feed at once (nothing to kill, an exit) comes after
      // it; queued after them, so after the runner's signals of the turn.
      this.#recordDeferred(p)
      p.deferred.push(record)
      for (const effect of t.effects) this.#performEffect(p, effect)
      if (p.deferred.length > 0) {
        if (this.#afterSignals.length === 0) setImmediate(this.#recordAfterSignals)
        this.#afterSignals.push(p)
      }
    } else if (restartsNow) {
      this.#recordDeferred(p)
      p.deferred.push(record)
      for (const effect of t.effects) this.#performEffect(p, effect)
      // After the restart's turn (it is queued first), if the budget held it back.
      setImmediate(() => this.#recordDeferred(p))
    } else {
      this.#recordDeferred(p)
      record()
      for (const effect of t.effects) this.#performEffect(p, effect)
    }
    if (SETTLED.has(p.snapshot.state.name) && p.settleWaiters.size > 0) {
      const waiters = [...p.settleWaiters]
      p.settleWaiters.clear()
      for (const w of waiters) w()
    }
    return t
  }

  /** Plugins whose records wait for the signals of this turn (#feed). */
  #afterSignals: Plugin[] = []
  readonly #recordAfterSignals = (): void => {
    const waiting = this.#afterSignals
    this.#afterSignals = []
    for (const p of waiting) this.#recordDeferred(p)
  }

  #recordDeferred (p: Plugin): void {
    if (p.deferred.length === 0) return
    const waiting = p.deferred
    p.deferred = []
    for (const record of waiting) record()
  }

  #onStateChange (p: Plugin, before: Snapshot, ev: LifecycleEvent, t: Transition, now: number): void {
    const from = before.state.name
    const to = t.snapshot.state.name
    const event: TransitionEvent = {
      plugin: p.name,
      from,
      to,
      reason: t.reason,
      at: now,
      exitCode: ev.type === 'exited' ? ev.code : null,
      signal: ev.type === 'exited' ? ev.signal : null,
      restartCount: t.snapshot.restartCount,
      error: ev.type === 'spawn-failed' ? ev.error : null
    }
    if (to === 'running') {
      p.startedAt = now
      p.upHandle = p.handle
      if (p.manifest.hooks?.postStart !== undefined) {
        const ac = new AbortController()
        p.postStart = ac
        p.postStartActor = p.actor
        p.postStartWaiting = p.manifest.healthCheck?.startup !== undefined
        if (!p.postStartWaiting) void this.#postStart(p, ac)
      }
    } else if (from === 'running') {
      p.postStart?.abort()
      p.postStart = undefined
      p.postStartWaiting = false
    }
    this.#persist(p.name, 'state event', () => this.#store.addEvent(event))
    const level = to === 'failed' || to === 'backoff' ? 'warn' : 'info'
    // pluginPid: pino writes the daemon's own `pid` on every line.
    this.#log[level]({ plugin: p.name, from, to, reason: t.reason, pluginPid: p.handle?.pid ?? null, exitCode: event.exitCode, signal: event.signal, restartCount: event.restartCount }, `plugin ${p.name}: ${from} -> ${to} (${t.reason})`)
    this.emit('transition', event)
  }

  #performEffect (p: Plugin, effect: Transition['effects'][number]): void {
    switch (effect.type) {
      case 'spawn':
        void this.#spawn(p)
        return
      case 'kill':
        void this.#kill(p)
        return
      case 'schedule-restart':
        this.#scheduleRestart(p, effect.at)
        return
      case 'cancel-restart':
        p.restartTimer?.()
        p.restartTimer = undefined
        p.nextRestartAt = undefined
        return
      default: {
        const never: never = effect
        throw new Error(`unknown effect ${JSON.stringify(never)}`)
      }
    }
  }

  /**
   * Store writes on the lifecycle path: a full disk or a locked file must not take the
   * supervisor down with it (the processes still need watching). The error is logged and the
   * in-memory state goes on; a desired state or process identity not written is noted, for
   * persistPending() and readiness; a state event not written is lost.
   *
   * The writes of one turn of the event loop are made together, in one transaction, after the
   * turn (a start or stop of 500 made 2,000 commits, each with its locks and write-ahead log
   * frames), or at once when MAX_UNRECORDED_PROCESSES records of new processes wait (see
   * #persistNewProcess); before the supervisor reads the store and
   * at the end of every operation (assertDesiredSaved). When the transaction fails (a write of
   * it, or the commit: a full disk), none of it was kept, and each write is made again on its
   * own: what fails then is logged and noted exactly as a single failed write. `done` runs once
   * the write went through, `after` once it was tried.
   */
  #persist (plugin: string, what: StoreWrite['what'], write: () => void, done?: () => void, after?: () => void): void {
    this.#writes.push({ plugin, what, write, done, after })
    if (this.#writes.length === 1) setImmediate(this.#flushSoon)
  }

  /** The record of a process just created (#persist), made at once when MAX_UNRECORDED_PROCESSES wait. */
  #persistNewProcess (plugin: string, write: () => void): void {
    this.#persist(plugin, 'process identity', write)
    if (++this.#unrecordedProcesses >= MAX_UNRECORDED_PROCESSES) this.#flushWrites()
  }

  /**
   * The end of the turn's writes: after the automatic restarts due at the same turn (an exit
   * with restart delay 0 writes its records first, and its new process need not wait for them).
   */
  readonly #flushSoon = (): void => {
    if (this.#restartsDue > 0) setImmediate(this.#flushSoon)
    else this.#flushWrites()
  }

  /** Makes the writes waiting for their turn's transaction now. */
  #flushWrites (): void {
    const batch = this.#writes
    if (batch.length === 0) return
    this.#writes = []
    this.#unrecordedProcesses = 0
    let kept = true
    try {
      this.#store.transaction(() => { for (const w of batch) w.write() })
    } catch {
      kept = false
    }
    for (const w of batch) {
      if (kept) this.#written(w)
      else this.#persistNow(w)
    }
  }

  /** One write on its own, now; answers whether it went through. */
  #persistNow (w: StoreWrite): boolean {
    try {
      w.write()
    } catch (err) {
      const reason = (err as Error).message
      this.#log.error({ plugin: w.plugin, err }, `could not persist the ${w.what} of plugin ${w.plugin}: ${reason}`)
      if (w.what === 'desired state' || w.what === 'process identity') {
        const unsaved = this.#unsaved.get(w.plugin) ?? new Map<KeptRecord, string>()
        unsaved.set(w.what, reason)
        this.#unsaved.set(w.plugin, unsaved)
      }
      w.after?.()
      return false
    }
    this.#written(w)
    return true
  }

  #written (w: StoreWrite): void {
    if (w.what === 'desired state' || w.what === 'process identity') this.#saved(w.plugin, w.what)
    w.done?.()
    w.after?.()
  }

  #saved (plugin: string, what: KeptRecord): void {
    const kept = this.#unsaved.get(plugin)
    kept?.delete(what)
    if (kept?.size === 0) this.#unsaved.delete(plugin)
  }

  #persistDesired (name: string, desired: 'running' | 'stopped'): void {
    this.#persist(name, 'desired state', () => this.#store.setDesired(name, desired, this.#clock.now()), () => this.#savedDesired.set(name, desired), () => {
      // A failed write of what the store holds already loses nothing (a restart: stop, then start).
      if (this.#savedDesired.get(name) === desired) this.#saved(name, 'desired state')
    })
  }

  /** The write of a plugin's desired state or process identity as the store should hold it now. */
  #keptWrite (name: string, what: KeptRecord): StoreWrite {
    const p = this.#plugins.get(name)
    if (what === 'desired state') {
      if (!p) return { plugin: name, what, write: () => this.#store.forgetDesired(name) }
      const desired = p.snapshot.desired
      return { plugin: name, what, write: () => this.#store.setDesired(name, desired, this.#clock.now()), done: () => this.#savedDesired.set(name, desired) }
    }
    if (!p?.identity) return { plugin: name, what, write: () => this.#store.forgetProcess(name) }
    const record = this.#processRecord(p, p.identity)
    return { plugin: name, what, write: () => this.#store.recordProcess(record) }
  }

  #processRecord (p: Plugin, identity: ProcessIdentity): RecordedProcess {
    const { stop } = p.manifest
    return { ...identity, plugin: p.name, stopSignal: stop.signal, stopTimeoutMs: stop.timeoutMs, startedAt: this.#clock.now() }
  }

  /**
   * Writes again what the store missed (desired states, process identities), as it is now; a
   * full disk that has room again gets them. Called by the daemon's store maintenance.
   */
  persistPending (): void {
    this.#flushWrites()
    for (const [name, kept] of [...this.#unsaved]) {
      for (const what of [...kept.keys()]) {
        const w = this.#keptWrite(name, what)
        this.#persist(w.plugin, w.what, w.write, w.done)
      }
    }
    this.#flushWrites()
  }

  /** What the store does not hold yet, with why the write failed (readiness reports it); the writes waiting for their turn's transaction are made first. */
  unsaved (): { plugin: string, what: KeptRecord, reason: string }[] {
    this.#flushWrites()
    return [...this.#unsaved].flatMap(([plugin, kept]) => [...kept].map(([what, reason]) => ({ plugin, what, reason })))
  }

  #scheduleRestart (p: Plugin, at: number): void {
    p.restartTimer?.()
    p.nextRestartAt = at
    const fire = (): void => {
      p.restartTimer = undefined
      if (p.snapshot.state.name !== 'backoff') return
      // The daemon-wide budget may hold the restart back a little longer.
      const wait = this.#budget.take(this.#clock.now())
      if (wait > 0) {
        p.nextRestartAt = this.#clock.now() + wait
        p.restartTimer = after(wait, fire)
        return
      }
      this.#feed(p, { type: 'backoff-elapsed' })
    }
    const delay = at - this.#clock.now()
    if (delay > 0) {
      p.restartTimer = after(delay, fire)
      return
    }
    // Due at the next turn: the writes waiting for their transaction wait for its spawn (#flushSoon).
    let due = true
    const done = (): void => {
      if (due) this.#restartsDue--
      due = false
    }
    this.#restartsDue++
    const cancel = after(0, () => { done(); fire() })
    p.restartTimer = () => { done(); cancel() }
  }

  async #spawn (p: Plugin): Promise<void> {
    const m = p.manifest
    const seq = ++p.spawnSeq
    if (m.port === 'auto' && p.port === undefined) {
      try {
        p.port = await this.#allocatePort()
      } catch (err) {
        if (seq === p.spawnSeq) this.#feed(p, { type: 'spawn-failed', error: spawnError(err, `no free port: ${(err as Error).message}`) })
        return
      }
    }
    // The state may have moved on (even to a newer start) while a port was picked.
    if (p.snapshot.state.name !== 'starting' || seq !== p.spawnSeq) return
    const configFile = this.#configFile(p)
    try {
      this.#writeConfigFile(p, m.config)
    } catch (err) {
      this.#log.error({ plugin: m.name, file: configFile, err }, `plugin ${m.name}: cannot write its config file ${configFile}: ${(err as Error).message}`)
      this.#feed(p, { type: 'spawn-failed', error: spawnError(err, `cannot write ${configFile}: ${(err as Error).message}`) })
      return
    }
    const env = pluginEnv(m, p.port, this.#instance, configFile)
    if (m.sha256 !== undefined) {
      const verdict = await verifyExecutable(m.command, m.cwd, env.PATH, m.sha256)
      if (p.snapshot.state.name !== 'starting' || seq !== p.spawnSeq) return
      if (!verdict.ok) {
        this.#log.error({ plugin: m.name, file: verdict.file, expected: m.sha256, actual: verdict.actual }, `plugin ${m.name}: not started: ${verdict.reason}`)
        this.emit('checksum', { plugin: m.name, file: verdict.file, reason: verdict.reason, at: this.#clock.now() })
        this.#feed(p, { type: 'checksum-mismatch', detail: verdict.reason })
        return
      }
    }
    const tag = this.#instance === undefined ? [] : [`${INSTANCE_VAR}=${this.#instance}`, `PLUGVISOR_PLUGIN=${m.name}`]
    const record = (identity: ProcessIdentity): void => {
      p.identity = identity
      this.#persistNewProcess(m.name, () => this.#store.recordProcess(this.#processRecord(p, identity)))
    }
    p.outputLogs ??= { stdout: this.#log.child({ plugin: m.name, stream: 'stdout' }), stderr: this.#log.child({ plugin: m.name, stream: 'stderr' }) }
    const logs = p.outputLogs
    const handle = this.#runner.spawn({ command: m.command, args: m.args, cwd: m.cwd, env, tag }, {
      onSpawn: (identity) => {
        if (p.handle !== handle) return
        if (p.identity === undefined) record(identity)
        this.#feed(p, { type: 'spawned' })
      },
      onSpawnError: (err) => {
        if (p.handle !== handle) return
        p.handle = undefined
        // Node's message names the program as expanded: say it as written.
        const command = String(shownField(m, 'command'))
        const error = err.message.replaceAll(m.command, command)
        this.#log.error({ plugin: m.name, err: error }, `plugin ${m.name}: cannot start ${command}: ${error}`)
        this.#feed(p, { type: 'spawn-failed', error: spawnError(err, error) })
      },
      onExit: (code, signal) => {
        if (p.handle !== handle) return
        p.handle = undefined
        p.upHandle = undefined
        p.identity = undefined
        this.#persist(m.name, 'process identity', () => this.#store.forgetProcess(m.name))
        this.#feed(p, { type: 'exited', code, signal })
      },
      onLine: (stream, line) => {
        const at = this.#clock.now()
        p.logs.push({ at, stream, line })
        logs[stream].info(line)
        if (this.listenerCount('output') > 0) this.emit('output', { plugin: m.name, stream, line, at })
      }
    })
    p.handle = handle
    // Recorded now, not when 'spawn' is emitted: that comes only after every other spawn of a
    // start burst, and a daemon killed in between would leave processes no record names.
    if (handle.identity !== undefined) record(handle.identity)
  }

  async #kill (p: Plugin): Promise<void> {
    const h = p.handle
    if (!h) {
      // Nothing runs yet (a spawn still picking a port).
      this.#feed(p, { type: 'nothing-to-kill' })
      return
    }
    const { stop, hooks } = p.manifest
    let timeoutMs = stop.timeoutMs
    // preStop drains a process that came up; its time is taken from stop.timeoutMs.
    if (hooks?.preStop !== undefined && p.upHandle === h) {
      const { durationMs } = await this.#runHook(p, 'preStop', { ...hooks.preStop, timeoutMs: Math.max(1, Math.min(hooks.preStop.timeoutMs, stop.timeoutMs)) })
      timeoutMs = Math.max(0, Math.round(stop.timeoutMs - durationMs))
    }
    await h.stop(stop.signal as NodeJS.Signals, timeoutMs)
  }

  // ---- leftovers of a daemon that was killed hard ------------------------------------------

  /**
   * Terminates process groups recorded by a previous daemon that are still alive (through the
   * runner) and forgets every record; then every process that carries the marker of an earlier
   * daemon of this data folder (what no record named: started just before a hard kill, or
   * escaped from its group). A record that cannot be forgotten (full disk) is logged and left:
   * the next start finds its pid gone or someone else's. Returns what was found, for the log.
   */
  async reapOrphans (): Promise<{ plugin: string, pid: number, action: ReapResult }[]> {
    let recorded: ReturnType<LifecycleStore['recordedProcesses']> = []
    this.#flushWrites()
    try {
      recorded = this.#store.recordedProcesses()
    } catch (err) {
      this.#log.error({ err }, `could not read the processes recorded by a previous daemon: ${(err as Error).message}`)
    }
    const report = await Promise.all(recorded.map(async (r) => {
      try {
        const action = await this.#runner.reap(r)
        if (action === 'terminated') this.#log.warn({ plugin: r.plugin, pluginPid: r.pid, pgid: r.pgid }, `terminated process group ${r.pgid} of plugin ${r.plugin} left by a previous daemon`)
        return { plugin: r.plugin, pid: r.pid, action }
      } finally {
        this.#persist(r.plugin, 'process identity', () => this.#store.forgetProcess(r.plugin))
      }
    }))
    this.#flushWrites()
    const instance = this.#instance
    if (instance === undefined) return report
    const marked = await this.#runner.reapMarked((env) => {
      if (!isEarlierDaemon(markerOf(env), instance)) return undefined
      const name = env.find((e) => e.startsWith('PLUGVISOR_PLUGIN='))?.slice('PLUGVISOR_PLUGIN='.length) ?? ''
      const stop = this.#plugins.get(name)?.manifest.stop ?? DEFAULT_STOP
      return { stopSignal: stop.signal, stopTimeoutMs: stop.timeoutMs, plugin: name }
    })
    for (const { pid, plugin } of marked) {
      this.#log.warn({ plugin, pluginPid: pid }, `terminated process ${pid} of plugin ${plugin} left by a previous daemon (found by its instance marker)`)
      report.push({ plugin, pid, action: 'terminated' })
    }
    return report
  }
}

/** The system's code of a failed spawn (ENOENT, EACCES, ...) with the message as the operator reads it. */
function spawnError (err: unknown, message: string): SpawnError {
  const code = (err as NodeJS.ErrnoException).code
  return { code: typeof code === 'string' ? code : 'UNKNOWN', message }
}

/** Runs fn after ms; a delay of 0 runs at the next turn of the loop, not after a 1 ms timer. */
function after (ms: number, fn: () => void): () => void {
  if (ms <= 0) {
    const im = setImmediate(fn)
    return () => clearImmediate(im)
  }
  const t = setTimeout(fn, ms)
  return () => clearTimeout(t)
}

/** Resolves when the signal aborts (at once when it has). */
function aborted (signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
}

/** Runs `each` for every plugin after it ran for the plugins of the same set that depend on it. */
function dependentsFirst<R> (plugins: Plugin[], each: (p: Plugin) => Promise<R>): Promise<R[]> {
  // Who depends on whom, made once: looking it up per plugin was a pass over the set each (a
  // stop of 500 went through 250,000 entries).
  const dependentsOf = new Map<string, Plugin[]>()
  for (const d of plugins) {
    for (const name of d.manifest.dependsOn) {
      const list = dependentsOf.get(name)
      if (list === undefined) dependentsOf.set(name, [d])
      else if (!list.includes(d)) list.push(d)
    }
  }
  const done = new Map<Plugin, Promise<R>>()
  const one = (p: Plugin): Promise<R> => {
    let pr = done.get(p)
    if (!pr) {
      pr = Promise.all((dependentsOf.get(p.name) ?? []).map(one)).then(() => each(p))
      done.set(p, pr)
    }
    return pr
  }
  return Promise.all(plugins.map(one))
}

/** A summary listView() handed out and what it was made of (see #summary). */
interface ShownSummary {
  snapshot: Snapshot
  manifest: LoadedManifest
  health: Health
  circuit: CircuitStateName | null
  pid: number | undefined
  port: number | undefined
  startedAt: number | undefined
  nextRestartAt: number | undefined
  summary: PluginSummary
}

type ManifestFields = Pick<PluginSummary, 'version' | 'description' | 'author' | 'homepage' | 'capabilities' | 'tags'>
/** The fields of a summary that come from its manifest alone: made once per manifest (GET /plugins makes 500 summaries). */
const manifestFields = new WeakMap<LoadedManifest, ManifestFields>()
function shownManifestFields (m: LoadedManifest): ManifestFields {
  let f = manifestFields.get(m)
  if (f === undefined) {
    f = {
      // As written: a version or description taken from ${VAR} shows the template, not the value.
      version: shownField(m, 'version') as string | undefined ?? null,
      description: shownField(m, 'description') as string | undefined ?? null,
      ...pluginMetadata({
        author: shownField(m, 'author') as string | undefined,
        homepage: shownField(m, 'homepage') as string | undefined,
        capabilities: shownField(m, 'capabilities') as string[],
        tags: shownField(m, 'tags') as string[]
      })
    }
    manifestFields.set(m, f)
  }
  return f
}
