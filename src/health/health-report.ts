// What the health endpoints answer, computed from memory only (supervisor state, the last
// checks of the monitor, start-up progress): probes must stay cheap.
import { Type, type Static } from '@sinclair/typebox'
import { StatusField, type PluginSummary } from '../supervisor/events.js'
import { HEALTH_NAMES, STATE_NAMES } from '../supervisor/lifecycle.js'
import { Nullable, Timestamp, oneOf } from '../shapes.js'
import { PROBE_KINDS, PROBE_RESULTS } from './probes.js'
import type { LastCheck } from './health-monitor.js'
import { StatusSummary, summarize } from '../status-summary.js'

export const ProbeResultName = oneOf(PROBE_RESULTS)

export const PluginHealth = Type.Object({
  status: StatusField,
  state: oneOf(STATE_NAMES),
  health: oneOf(HEALTH_NAMES),
  healthy: Type.Boolean({ description: 'status is healthy or degraded' }),
  critical: Type.Boolean(),
  probe: Type.Union([oneOf(PROBE_KINDS), Type.Null()], { description: 'Kind of health check; null without one' }),
  lastCheckTime: Nullable(Timestamp),
  lastHealthyTime: Nullable(Timestamp),
  lastResult: Type.Union([ProbeResultName, Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]),
  failureCount: Type.Integer({ description: 'Consecutive probe failures of the current process' }),
  restartCount: Type.Integer(),
  responseTimeMs: Type.Union([Type.Number(), Type.Null()], { description: 'Duration of the last probe (milliseconds)' })
}, { $id: 'PluginHealth' })
export type PluginHealthEntry = Static<typeof PluginHealth>

export const HEALTH_STATUSES = ['pass', 'warn', 'fail'] as const
export type HealthStatus = typeof HEALTH_STATUSES[number]

export const HealthReport = Type.Object({
  status: oneOf(HEALTH_STATUSES, 'fail when the daemon fails or a critical plugin is failed or unhealthy; warn when a plugin meant to run is degraded, unhealthy, restarting, failed or stopped'),
  timestamp: Timestamp,
  plugins: Type.Record(Type.String(), Type.Ref(PluginHealth)),
  summary: Type.Ref(StatusSummary)
}, { $id: 'HealthReport' })
export type HealthReport = Static<typeof HealthReport>

const iso = (ms: number | null): string | null => ms === null ? null : new Date(ms).toISOString()

/** Healthy or degraded: the plugin serves. */
export const isUp = (s: { status: PluginSummary['status'] }): boolean => s.status === 'healthy' || s.status === 'degraded'

export function pluginHealthEntry (s: PluginSummary, last: LastCheck): PluginHealthEntry {
  return {
    status: s.status,
    state: s.state,
    health: s.health,
    healthy: isUp(s),
    critical: s.critical,
    probe: last.probe,
    lastCheckTime: iso(last.lastCheckTime),
    lastHealthyTime: iso(last.lastHealthyTime),
    lastResult: last.lastResult,
    lastError: last.lastError,
    failureCount: last.failureCount,
    restartCount: s.restartCount,
    responseTimeMs: last.responseTimeMs
  }
}

/**
 * The daemon and every plugin. fail (503) when the daemon itself fails or a critical plugin is
 * failed or unhealthy; warn when any plugin meant to run is degraded, unhealthy, restarting, failed or
 * stopped (unknown, a verdict still pending, does not warn); pass otherwise.
 */
export function healthReport (list: PluginSummary[], lastCheck: (name: string) => LastCheck, daemonOk: boolean, now: number): HealthReport {
  const plugins: Record<string, PluginHealthEntry> = {}
  for (const s of list) plugins[s.name] = pluginHealthEntry(s, lastCheck(s.name))
  return { status: overallStatus(list, daemonOk), timestamp: new Date(now).toISOString(), plugins, summary: summarize(list) }
}

/** The rule of healthReport's status (also the compatibility routes'). */
export function overallStatus (list: PluginSummary[], daemonOk: boolean): HealthStatus {
  let status: HealthStatus = daemonOk ? 'pass' : 'fail'
  for (const s of list) {
    if (s.critical && (s.status === 'failed' || s.status === 'unhealthy')) return 'fail'
    if (status === 'pass' && s.desired === 'running' && s.status !== 'healthy' && s.status !== 'unknown') status = 'warn'
  }
  return status
}

export const ReadinessCheck = Type.Object({
  name: Type.String({ description: 'daemon:store-migrated, daemon:store-writable, daemon:startup, daemon:initial-start, or a critical plugin' }),
  status: oneOf(['pass', 'fail']),
  detail: Type.String()
})
export type ReadinessCheck = Static<typeof ReadinessCheck>

export interface ReadinessInput {
  progress: { storeMigrated: boolean, storeWritable: boolean, storeProblem?: string, orphansReaped: boolean, initialStartDone: boolean }
  plugins: PluginSummary[]
  exclude: string[]
}

/**
 * Start-up done, store migrated, initial start pass done, every critical plugin (not excluded) up.
 * Daemon checks are named daemon:*, which no plugin name can be; plugin checks by the plugin's name.
 */
export function readiness ({ progress, plugins, exclude }: ReadinessInput): { ready: boolean, checks: ReadinessCheck[] } {
  const check = (name: string, ok: boolean, detail: string): ReadinessCheck => ({ name, status: ok ? 'pass' : 'fail', detail })
  const skip = new Set(exclude)
  const checks = [
    check('daemon:store-migrated', progress.storeMigrated, progress.storeMigrated ? 'database schema is current' : 'database not migrated'),
    check('daemon:store-writable', progress.storeWritable, progress.storeWritable ? 'the store takes writes' : `store writes fail: ${progress.storeProblem ?? 'unknown'}`),
    check('daemon:startup', progress.orphansReaped, progress.orphansReaped ? 'leftovers of a previous daemon handled' : 'start-up in progress'),
    check('daemon:initial-start', progress.initialStartDone, progress.initialStartDone ? 'initial start pass done' : 'starting plugins'),
    ...plugins.filter((p) => p.critical && !skip.has(p.name)).map((p) => check(p.name, isUp(p), `critical plugin ${p.status}`))
  ].filter((c) => !skip.has(c.name))
  return { ready: checks.every((c) => c.status === 'pass'), checks }
}
