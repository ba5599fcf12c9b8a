// Counts of plugins by status, as the health endpoints and /plugins/status report them.
import { Type, type Static } from '@sinclair/typebox'
import type { Status } from './supervisor/lifecycle.js'

export const StatusSummary = Type.Object({
  totalPlugins: Type.Integer(),
  healthyPlugins: Type.Integer(),
  degradedPlugins: Type.Integer(),
  unhealthyPlugins: Type.Integer(),
  unknownPlugins: Type.Integer(),
  restartingPlugins: Type.Integer(),
  failedPlugins: Type.Integer(),
  stoppedPlugins: Type.Integer()
}, { $id: 'StatusSummary' })
export type StatusCounts = Static<typeof StatusSummary>

export function summarize (list: { status: Status }[]): StatusCounts {
  const c: StatusCounts = { totalPlugins: list.length, healthyPlugins: 0, degradedPlugins: 0, unhealthyPlugins: 0, unknownPlugins: 0, restartingPlugins: 0, failedPlugins: 0, stoppedPlugins: 0 }
  for (const { status } of list) c[`${status}Plugins`]++
  return c
}
