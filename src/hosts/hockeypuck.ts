// The management API of the Hockeypuck plugin host, which plugvisor stands in for: its status
// overview (GET /plugins/status) and its detailed health (GET /plugins/health), in that host's
// shapes, so its clients and dashboards keep working. Computed from memory only (the supervisor's
// summaries and the monitor's last checks), like every probe route.
import { Type, type Static } from '@sinclair/typebox'
import { Nullable, Timestamp, oneOf } from '../shapes.js'
import { StatusField, type PluginSummary } from '../supervisor/events.js'
import { isUp } from '../health/health-report.js'
import type { LastCheck } from '../health/health-monitor.js'

const HOST = 'the Hockeypuck plugin host\'s management API'

export const HockeypuckStatus = Type.Object({
  enabled: Type.Boolean({ description: 'The plugin system is on (always true: supervising plugins is what the daemon does)' }),
  initialized: Type.Boolean({ description: 'The initial start pass is done (every plugin meant to run was started once)' }),
  total: Type.Integer({ description: 'Plugins loaded' }),
  connected: Type.Integer({ description: 'Plugins that serve: running and healthy or degraded' }),
  plugins: Type.Array(Type.Object({
    name: Type.String(),
    version: Type.String({ description: 'As in the manifest; empty when it names none' }),
    description: Type.String({ description: 'As in the manifest; empty when it names none' }),
    connected: Type.Boolean({ description: 'Running and healthy or degraded' }),
    executable: Type.String({ description: 'The program the plugin runs (manifest command, as written)' })
  }))
}, { $id: 'HockeypuckStatus', description: `Status overview in the shape of ${HOST} (GET /plugins/status there)` })
export type HockeypuckStatus = Static<typeof HockeypuckStatus>

export const HOCKEYPUCK_HEALTH_STATUSES = ['healthy', 'degraded', 'unhealthy'] as const

export const HockeypuckHealth = Type.Object({
  status: oneOf(HOCKEYPUCK_HEALTH_STATUSES, 'unhealthy when the daemon fails or a critical plugin is failed or unhealthy; degraded when a plugin meant to run is degraded, unhealthy, restarting, failed or stopped; healthy otherwise (the pass/warn/fail of GET /health in that host\'s words)'),
  timestamp: Timestamp,
  plugins: Type.Record(Type.String(), Type.Object({
    status: StatusField,
    lastCheckTime: Nullable(Timestamp, { description: 'Time of the last probe; null before the first' }),
    lastHealthyTime: Nullable(Timestamp, { description: 'Time of the last passing probe; null before the first' }),
    failureCount: Type.Integer({ description: 'Consecutive probe failures of the current process' }),
    restartCount: Type.Integer({ description: 'Automatic restarts since the last operator start/restart' }),
    responseTime: Type.String({ description: 'Duration of the last probe as a Go duration string ("15ms", "1.845ms", "250µs", "1.2s"); "0s" before the first' }),
    healthy: Type.Boolean({ description: 'status is healthy or degraded' })
  })),
  summary: Type.Object({
    totalPlugins: Type.Integer(),
    healthyPlugins: Type.Integer({ description: 'Plugins whose healthy is true (healthy or degraded)' }),
    unhealthyPlugins: Type.Integer({ description: 'Plugins whose status is unhealthy' }),
    restartingPlugins: Type.Integer({ description: 'Plugins waiting for an automatic restart (backoff)' }),
    failedPlugins: Type.Integer({ description: 'Plugins that used up their restarts (failed)' })
  })
}, { $id: 'HockeypuckHealth', description: `Detailed health in the shape of ${HOST} (GET /plugins/health there)` })
export type HockeypuckHealth = Static<typeof HockeypuckHealth>

/** The status overview. `command` gives each plugin's program as written in its manifest. */
export function hockeypuckStatus (list: PluginSummary[], command: (name: string) => string, initialized: boolean): HockeypuckStatus {
  let connected = 0
  const plugins = list.map((s) => {
    const up = isUp(s)
    if (up) connected++
    return { name: s.name, version: s.version ?? '', description: s.description ?? '', connected: up, executable: command(s.name) }
  })
  return { enabled: true, initialized, total: list.length, connected, plugins }
}

/**
 * The detailed health. The overall status is the one GET /health computes (`health`: pass, warn
 * or fail) in that host's words.
 */
export function hockeypuckHealth (list: PluginSummary[], lastCheck: (name: string) => LastCheck, health: 'pass' | 'warn' | 'fail', now: number): HockeypuckHealth {
  const iso = (ms: number | null): string | null => ms === null ? null : new Date(ms).toISOString()
  const plugins: HockeypuckHealth['plugins'] = {}
  const summary = { totalPlugins: list.length, healthyPlugins: 0, unhealthyPlugins: 0, restartingPlugins: 0, failedPlugins: 0 }
  for (const s of list) {
    const last = lastCheck(s.name)
    const healthy = isUp(s)
    if (healthy) summary.healthyPlugins++
    else if (s.status === 'unhealthy') summary.unhealthyPlugins++
    else if (s.status === 'restarting') summary.restartingPlugins++
    else if (s.status === 'failed') summary.failedPlugins++
    plugins[s.name] = {
      status: s.status,
      lastCheckTime: iso(last.lastCheckTime),
      lastHealthyTime: iso(last.lastHealthyTime),
      failureCount: last.failureCount,
      restartCount: s.restartCount,
      responseTime: goDuration(last.responseTimeMs ?? 0),
      healthy
    }
  }
  const status = health === 'pass' ? 'healthy' : health === 'warn' ? 'degraded' : 'unhealthy'
  return { status, timestamp: new Date(now).toISOString(), plugins, summary }
}

/**
 * Milliseconds as Go's time.Duration prints them (what that host sends): "0s", "850ns", "250µs",
 * "15ms", "1.845ms", "1.5s", "2m3.5s". Precision: the nanosecond, trailing zeros dropped.
 */
export function goDuration (ms: number): string {
  const ns = Math.round(ms * 1e6)
  if (ns === 0) return '0s'
  const sign = ns < 0 ? '-' : ''
  const n = Math.abs(ns)
  const fixed = (v: number, unit: number): string => (v / unit).toFixed(String(unit).length - 1).replace(/\.?0+$/, '')
  if (n < 1e3) return `${sign}${n}ns`
  if (n < 1e6) return `${sign}${fixed(n, 1e3)}µs`
  if (n < 1e9) return `${sign}${fixed(n, 1e6)}ms`
  const h = Math.floor(n / 3.6e12)
  const m = Math.floor((n % 3.6e12) / 6e10)
  const s = fixed(n % 6e10, 1e9)
  return `${sign}${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${s}s`
}
