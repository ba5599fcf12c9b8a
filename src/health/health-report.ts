// What the health endpoints answer, computed from memory only (supervisor state, the last
// checks of the monitor, start-up progress): probes must stay cheap.
import type { PluginSummary } from '../supervisor/supervisor.js'
import type { LastCheck } from './health-monitor.js'
import { summarize, type StatusCounts } from '../status-summary.js'

export interface PluginHealthEntry {
  status: PluginSummary['status']
  state: PluginSummary['state']
  health: PluginSummary['health']
  healthy: boolean
  critical: boolean
  probe: LastCheck['probe']
  lastCheckTime: string | null
  lastHealthyTime: string | null
  lastResult: LastCheck['lastResult']
  lastError: string | null
  failureCount: number
  restartCount: number
  responseTimeMs: number | null
}

export type HealthStatus = 'pass' | 'warn' | 'fail'

export interface HealthReport {
  status: HealthStatus
  timestamp: string
  plugins: Record<string, PluginHealthEntry>
  summary: StatusCounts
}

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
  let status: HealthStatus = daemonOk ? 'pass' : 'fail'
  for (const s of list) {
    plugins[s.name] = pluginHealthEntry(s, lastCheck(s.name))
    if (s.critical && (s.status === 'failed' || s.status === 'unhealthy')) status = 'fail'
    else if (status === 'pass' && s.desired === 'running' && s.status !== 'healthy' && s.status !== 'unknown') status = 'warn'
  }
  return { status, timestamp: new Date(now).toISOString(), plugins, summary: summarize(list) }
}

export interface ReadinessCheck { name: string, status: 'pass' | 'fail', detail: string }

export interface ReadinessInput {
  progress: { storeMigrated: boolean, orphansReaped: boolean, initialStartDone: boolean }
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
    check('daemon:startup', progress.orphansReaped, progress.orphansReaped ? 'leftovers of a previous daemon handled' : 'start-up in progress'),
    check('daemon:initial-start', progress.initialStartDone, progress.initialStartDone ? 'initial start pass done' : 'starting plugins'),
    ...plugins.filter((p) => p.critical && !skip.has(p.name)).map((p) => check(p.name, isUp(p), `critical plugin ${p.status}`))
  ].filter((c) => !skip.has(c.name))
  return { ready: checks.every((c) => c.status === 'pass'), checks }
}
