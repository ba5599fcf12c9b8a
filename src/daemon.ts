// The daemon's services wired together, without HTTP: store, supervisor, boot and shutdown.
// The Fastify layer (app.ts) publishes this object; the CLI and tests can use it directly.
import path from 'node:path'
import type { Logger } from './logger.js'
import { formatProblem, type LoadedConfig } from './config/load.js'
import { problemsOf } from './errors.js'
import { STORE_MAINTENANCE_INTERVAL_MS, openStore, type Store } from './store/store.js'
import { LOCK_FILE, lockDataDir } from './store/data-dir-lock.js'
import type { AuditStore } from './store/audit-store.js'
import { Supervisor } from './supervisor/supervisor.js'
import { systemClock, systemEvery, type Clock, type Every } from './clock.js'
import { childProcessRunner, type ProcessRunner } from './process/runner.js'
import { createSpawnerRunner, spawnerAvailable } from './process/spawner.js'
import { spawnerBinary } from './paths.js'
import { newInstanceMarker } from './process/instance-marker.js'
import { createResourceSampler, type ProcessSource, type ResourceSampler } from './resources/resource-sampler.js'
import { createPluginMetrics, type PluginMetrics } from './metrics/plugin-metrics.js'
import { createEventStream, type EventStream } from './events/event-stream.js'
import { HealthMonitor } from './health/health-monitor.js'
import { createHealthHistory, type HealthHistory } from './health/health-history.js'
import { createInvoker, type Invoker } from './invoke/invoker.js'
import { createLogFiles, type LogFiles } from './process/log-files.js'
import { createLogFollow, type LogFollow } from './events/log-follow.js'

/** Bodies the invoke proxy may send twice (retries, fallback plugin) are buffered up to this (bytes). */
export const DEFAULT_MAX_REPLAY_BODY_BYTES = 1024 * 1024
import { createPluginChanges, type PluginChanges } from './plugin-changes.js'
import { createConfigWatcher, createOwnWrites, type ConfigWatcher } from './watch/config-watcher.js'
import { createPluginWatcher } from './watch/plugin-watcher.js'
import type { AuditEntry } from './store/audit-store.js'

/**
 * Plugins are spawned by plugvisor-spawner when it was built (and PLUGVISOR_SPAWNER is not
 * `node`), otherwise by the daemon itself through Node's child_process.
 */
function defaultSpawner (logger: Logger): ReturnType<typeof createSpawnerRunner> | undefined {
  const choice = process.env.PLUGVISOR_SPAWNER
  if (choice === 'node') return undefined
  if (!spawnerAvailable(spawnerBinary)) {
    logger.warn({ spawner: spawnerBinary }, `${spawnerBinary} is not built (no C compiler at build time?): plugins are spawned by the daemon itself`)
    return undefined
  }
  return createSpawnerRunner({ binary: spawnerBinary, onProblem: (message) => logger.error(message) })
}

/** Where the files named by PLUGVISOR_CONFIG_FILE live: `<dataDir>/plugin-config/<plugin>.json`. */
export function pluginConfigDir (dataDir: string): string {
  return path.join(dataDir, 'plugin-config')
}

export interface DaemonOptions {
  loaded: LoadedConfig
  logger: Logger
  runner?: ProcessRunner
  clock?: Clock
  random?: () => number
  /** Where the resource sampler reads processes (default: a /proc scan). */
  processSource?: ProcessSource
  /** Largest request body the invoke proxy buffers for a replay (default 1 MiB; the app passes its body limit). */
  maxReplayBodyBytes?: number
  /** Runs the store maintenance (WAL checkpoint, writes again what failed) every STORE_MAINTENANCE_INTERVAL_MS; tests fire it by hand. */
  every?: Every
}

/** What readiness is made of, besides critical plugins. */
export interface StartupProgress {
  /** The database schema is as migrated (the daemon does not start otherwise). */
  readonly storeMigrated: boolean
  /** The last write went through and nothing a failed write missed is still waiting. */
  readonly storeWritable: boolean
  /** Why not, when storeWritable is false. */
  readonly storeProblem: string | undefined
  orphansReaped: boolean
  initialStartDone: boolean
}

export interface Daemon {
  /** The config as it runs: replaced by run-time changes and reloads (GET /config/status). */
  readonly loaded: LoadedConfig
  /** Lifecycle state, health history and audit log in one SQLite file. */
  readonly store: Store
  /** Who changed what: every mutating management call and every reload by signal. */
  readonly audit: AuditStore
  readonly supervisor: Supervisor
  /** Runs the probes of running plugins; keeps the last check of each in memory. */
  readonly healthMonitor: HealthMonitor
  /** Probe results in SQLite (batched), rollups, retention, stats. */
  readonly healthHistory: HealthHistory
  readonly progress: StartupProgress
  /** Memory and CPU of every plugin's process group, and the memory limit. */
  readonly resources: ResourceSampler
  /** The Prometheus registry of this daemon. */
  readonly metrics: PluginMetrics
  /** GET /events clients. */
  readonly events: EventStream
  /** What plugins print, in <dataDir>/logs/<name>.log (rotated), written in batches. */
  readonly logFiles: LogFiles
  /** GET /plugins/:name/logs?follow=true clients. */
  readonly logFollow: LogFollow
  /** Calls into plugins through their resilience policies; owns the circuit breakers. */
  readonly invoker: Invoker
  /** Register, unload, change config, reload: what runs and the plugins folder kept in step. */
  readonly changes: PluginChanges
  /** Reaps what a hard-killed daemon left, then starts every plugin meant to run. */
  boot: () => Promise<void>
  /** Stops plugins in reverse dependency order, stops probing, flushes history, then closes the store. */
  close: () => Promise<void>
}

export function createDaemon (opts: DaemonOptions): Daemon {
  const { logger } = opts
  let loaded = opts.loaded
  // Before anything touches the folder (migrations, the cleanup of a previous daemon, plugins): a
  // second daemon on it stops here and changes nothing.
  const lock = lockDataDir(loaded.dataDir, {
    onStale: (holder, why) => logger.warn({ lockFile: LOCK_FILE, holderPid: holder?.pid ?? null }, `took over the stale lock of data folder ${loaded.dataDir}: ${why}`)
  })
  let store: Store
  try {
    store = openStore(loaded.dataDir)
  } catch (err) {
    lock.release()
    throw err
  }
  const progress: StartupProgress = {
    storeMigrated: true,
    get storeWritable () { return store.status.ok && supervisor.unsaved().length === 0 },
    get storeProblem () {
      const unsaved = supervisor.unsaved()
      const parts = [store.status.problem ?? unsaved[0]?.reason, ...unsaved.map((u) => `the ${u.what} of plugin ${u.plugin} is not saved yet`)]
      return parts[0] === undefined ? undefined : parts.join('; ')
    },
    orphansReaped: false,
    initialStartDone: false
  }
  const logFiles = createLogFiles({
    dir: path.join(loaded.dataDir, 'logs'),
    maxFileBytes: loaded.config.logs.maxFileMb * 1024 * 1024,
    keepFiles: loaded.config.logs.keepFiles,
    onError: (err, plugin) => logger.error({ err, plugin }, `plugin ${plugin}: writing its log file failed: ${err.message}`)
  })
  const spawner = opts.runner === undefined ? defaultSpawner(logger) : undefined
  const supervisor = new Supervisor({
    runner: opts.runner ?? spawner ?? childProcessRunner,
    store: store.lifecycle,
    logger,
    clock: opts.clock,
    random: opts.random,
    restartBudget: loaded.config.restartBudget,
    instance: newInstanceMarker(loaded.dataDir),
    configDir: pluginConfigDir(loaded.dataDir),
    flushOutput: (name) => logFiles.flush(name)
  })
  const healthHistory = createHealthHistory(store.healthHistory, {
    ...loaded.config.history,
    clock: opts.clock,
    onError: (err) => logger.error({ err }, 'writing health history failed')
  })
  healthHistory.start()
  const healthMonitor = new HealthMonitor({ supervisor, logger, clock: opts.clock, random: opts.random })
  healthMonitor.on('probe', (ev) => healthHistory.record(ev))
  // Probes follow transitions from the first start on (boot, or an operator start before boot).
  healthMonitor.start()
  for (const p of loaded.problems) logger.error({ file: p.file, path: p.path, reason: p.reason }, `plugin manifest skipped: ${formatProblem(p)}`)
  // Created before load() so they see every plugin's `loaded` event.
  const resources = createResourceSampler({
    supervisor,
    intervalMs: loaded.config.resources.sampleIntervalMs,
    source: opts.processSource,
    clock: opts.clock,
    onError: (err) => logger.error({ err }, 'resource sampling failed')
  })
  const metrics = createPluginMetrics({
    supervisor,
    probes: healthMonitor,
    resources: (name) => resources.usage(name),
    eventStreamClients: () => events.clientCount(),
    fallbackActive: (name) => invoker.fallbackActive(name)
  })
  // Created before load() so every plugin gets its policies (and circuit: closed) on `loaded`.
  const invoker = createInvoker({
    supervisor,
    observe: (plugin, outcome, seconds) => metrics.observeInvocation(plugin, outcome, seconds),
    observeMany: (plugin, outcomes, seconds) => metrics.observeInvocations(plugin, outcomes, seconds),
    maxReplayBodyBytes: opts.maxReplayBodyBytes ?? DEFAULT_MAX_REPLAY_BODY_BYTES,
    // With tokens on, the caller's Authorization header is the daemon's token, not the plugin's.
    dropAuthorization: loaded.config.auth.mode === 'tokens',
    clock: opts.clock
  })
  const events = createEventStream({
    supervisor,
    circuits: invoker,
    keepAliveMs: loaded.config.events.keepAliveMs,
    maxBufferedBytes: loaded.config.events.maxBufferedBytes,
    maxClients: loaded.config.events.maxClients,
    onSlowClient: (bufferedBytes) => logger.warn({ bufferedBytes }, 'GET /events client disconnected: it did not keep up with the event stream')
  })
  supervisor.on('output', (o) => logFiles.append(o.plugin, o))
  // What a plugin printed before it stopped, failed or backed off is written at once (an
  // operator's stop also waits for it: flushOutput).
  supervisor.on('transition', (e) => { if (e.to === 'stopped' || e.to === 'failed' || e.to === 'backoff') void logFiles.flush(e.plugin) })
  supervisor.on('unloaded', (name) => { if (!supervisor.has(name)) void logFiles.release(name) })
  const logFollow = createLogFollow({
    supervisor,
    keepAliveMs: loaded.config.events.keepAliveMs,
    maxBufferedBytes: loaded.config.events.maxBufferedBytes,
    maxClients: loaded.config.events.maxClients,
    onSlowClient: (plugin, bufferedBytes) => logger.warn({ plugin, bufferedBytes }, `a client following the log of plugin ${plugin} was disconnected: it did not keep up`)
  })
  const { audit } = store
  /** Entries the daemon itself causes (a reload on a file change, a refused executable); never throws. */
  const recordAudit = (entry: Omit<AuditEntry, 'role' | 'remote' | 'requestId'>): void => {
    try {
      audit.append({ role: null, remote: null, requestId: entry.actor, ...entry })
    } catch (err) { logger.error({ err }, 'writing the audit log failed') }
  }
  // Created before load() so plugins with watch paths are watched from their `loaded` event on.
  const pluginWatcher = createPluginWatcher({ supervisor, logger })
  // A hook an operator's call ran is theirs: audited with their name (the call itself is audited too).
  supervisor.on('hook', (e) => {
    if (e.actor !== null) recordAudit({ at: e.at, actor: e.actor, method: 'HOOK', route: `(hook ${e.hook})`, url: e.target, plugin: e.plugin, status: e.outcome === 'success' ? 200 : 502, durationMs: e.durationMs })
  })
  supervisor.on('checksum', (e) => recordAudit({ at: e.at, actor: 'supervisor', method: 'SPAWN', route: '(checksum)', url: e.file ?? e.reason, plugin: e.plugin, status: 409, durationMs: 0 }))
  // An automatic switch of a fallback is audited here; an operator's is audited with its request.
  invoker.on('fallback', (e) => {
    if (e.actor === null) recordAudit({ at: e.at, actor: 'supervisor', method: e.to === 'inactive' ? 'DEACTIVATE' : 'ACTIVATE', route: '(fallback)', url: `${e.from} -> ${e.to}: ${e.reason}`, plugin: e.plugin, status: 200, durationMs: 0 })
  })
  supervisor.load(loaded.manifests)
  resources.start()
  const ownWrites = createOwnWrites()
  const changes = createPluginChanges({
    supervisor,
    logger,
    getLoaded: () => loaded,
    setLoaded: (l) => { loaded = l },
    ownWrites,
    onReload: (o) => {
      events.config(o)
      if (o.trigger === 'watch') recordAudit({ at: o.at, actor: 'watch', method: 'WATCH', route: '/config/reload', url: '/config/reload', plugin: null, status: o.refused ? 400 : 200, durationMs: 0 })
    }
  })
  let configWatcher: ConfigWatcher | undefined
  // State events and the audit log are kept as long as the health rollups, pruned a chunk a minute.
  const eventRetentionMs = loaded.config.history.rollupRetentionDays * 86_400_000
  const clock = opts.clock ?? systemClock
  const pruneEvents = setInterval(() => {
    try {
      store.lifecycle.pruneEvents(clock.now() - eventRetentionMs)
      audit.prune(clock.now() - eventRetentionMs)
    } catch (err) { logger.error({ err }, 'pruning state events failed') }
  }, 60_000)
  pruneEvents.unref()
  // The write-ahead log is copied into the database and truncated on a timer, and once writes work
  // again after a failure (a full disk with room again); what a failed write missed is written again.
  const checkpoint = (): void => {
    try {
      store.checkpoint()
    } catch (err) { logger.error({ err }, `checkpointing the database's write-ahead log failed: ${(err as Error).message}`) }
  }
  const stopMaintenance = (opts.every ?? systemEvery)(STORE_MAINTENANCE_INTERVAL_MS, () => {
    supervisor.persistPending()
    checkpoint()
  })
  store.status.onRecovered(() => setImmediate(() => { if (!closing) checkpoint() }))

  let booting: Promise<void> | undefined
  let closing: Promise<void> | undefined
  return {
    get loaded () { return loaded },
    store,
    audit,
    supervisor,
    healthMonitor,
    healthHistory,
    progress,
    resources,
    metrics,
    events,
    logFiles,
    logFollow,
    invoker,
    changes,
    boot () {
      booting ??= (async () => {
        // Whatever goes wrong there, the plugins meant to run must still start.
        await supervisor.reapOrphans().catch((err: Error) => logger.error({ err }, `cleaning up after a previous daemon failed: ${err.message}`))
        progress.orphansReaped = true
        await supervisor.startDesired()
        progress.initialStartDone = true
        const { watch } = loaded.config
        if (watch.enabled && !closing) {
          configWatcher = createConfigWatcher({
            configFile: loaded.file,
            pluginsDir: () => loaded.pluginsDir,
            debounceMs: watch.debounceMs,
            ownWrites,
            reload: async (files) => {
              logger.info({ files }, `config files changed (${files.join(', ')}): reloading`)
              // A refused reload (invalid main config) was logged, published and audited already.
              await changes.reload({ trigger: 'watch', files }).catch((err: Error) => logger.error({ err, problems: problemsOf(err) }, `reload after a file change failed, nothing applied: ${err.message}`))
            },
            onError: (err, dir) => logger.error({ err, dir }, `watching ${dir} failed: ${err.message}`)
          })
        }
        logger.info({ plugins: supervisor.names().length }, 'initial start pass done')
      })()
      return booting
    },
    close () {
      closing ??= (async () => {
        configWatcher?.close()
        pluginWatcher.close()
        events.close()
        logFollow.close()
        resources.stop()
        clearInterval(pruneEvents)
        stopMaintenance()
        // shutdown() cuts a boot short (starts still waiting for dependencies give up), then stops all.
        await supervisor.shutdown()
        await spawner?.close()
        metrics.close()
        await booting?.catch(() => {})
        await healthMonitor.stop()
        await invoker.close()
        await logFiles.close()
        healthHistory.stop()
        store.close()
        lock.release()
      })()
      return closing
    }
  }
}
