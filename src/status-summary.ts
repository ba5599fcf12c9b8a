// Counts of plugins by status, as the health endpoints and /plugins/status report them.
import type { Status } from './supervisor/lifecycle.js'

export interface StatusCounts {
  totalPlugins: number
  healthyPlugins: number
  degradedPlugins: number
  unhealthyPlugins: number
  unknownPlugins: number
  restartingPlugins: number
  failedPlugins: number
  stoppedPlugins: number
}

export function summarize (list: { status: Status }[]): StatusCounts {
  const c: StatusCounts = { totalPlugins: list.length, healthyPlugins: 0, degradedPlugins: 0, unhealthyPlugins: 0, unknownPlugins: 0, restartingPlugins: 0, failedPlugins: 0, stoppedPlugins: 0 }
  for (const { status } of list) c[`${status}Plugins`]++
  return c
}
