// What the supervisor publishes: the summary of a plugin as the API shows it, and its events.
import { Type, type Static } from '@sinclair/typebox'
import { Nullable, Timestamp, oneOf, type InMs } from '../shapes.js'
import { HOOK_KINDS, HOOK_NAMES, HOOK_OUTCOMES } from '../hooks/hook-runner.js'
import { pluginMetadataProperties } from '../config/metadata.js'
import { CIRCUIT_STATE_NAMES, type CircuitStateName } from '../invoke/circuit.js'
import { DESIRED_NAMES, HEALTH_NAMES, STATE_NAMES, STATUS_NAMES, type Health, type RestartEventReason, type SpawnError, type StateName } from './lifecycle.js'

/** Why a process could not be started, as the system said it. */
export const SpawnErrorField = Nullable(Type.Object({
  code: Type.String({ description: "The system's error code: ENOENT (no such program), EACCES (not executable), ..." }),
  message: Type.String()
}), { description: 'Why the process could not be started (a failed spawn); null when it ran' })

export const StatusField = oneOf(STATUS_NAMES, 'One-word summary of state and health')

export const pluginSummaryProperties = {
  name: Type.String(),
  version: Type.Union([Type.String(), Type.Null()]),
  description: Type.Union([Type.String(), Type.Null()]),
  ...pluginMetadataProperties,
  state: oneOf(STATE_NAMES, 'Process lifecycle state'),
  health: oneOf(HEALTH_NAMES, 'Health verdict'),
  status: StatusField,
  desired: oneOf(DESIRED_NAMES, 'What the operator asked for (persisted)'),
  critical: Type.Boolean(),
  pid: Type.Union([Type.Integer(), Type.Null()]),
  port: Type.Union([Type.Integer(), Type.Null()]),
  startedAt: Nullable(Timestamp),
  uptimeMs: Type.Integer(),
  restartCount: Type.Integer({ description: 'Automatic restarts since the last operator start/restart' }),
  lastExit: Type.Union([Type.Object({
    code: Type.Union([Type.Integer(), Type.Null()]),
    signal: Type.Union([Type.String(), Type.Null()]),
    at: Timestamp,
    error: SpawnErrorField
  }), Type.Null()]),
  nextRestartAt: Nullable(Timestamp),
  circuit: Type.Union([oneOf(CIRCUIT_STATE_NAMES), Type.Null()], { description: 'Circuit breaker of calls into the plugin (invoke proxy); every loaded plugin has one, null only before its policies are built' })
}
export const PluginSummary = Type.Object(pluginSummaryProperties, { $id: 'PluginSummary' })
export type PluginSummary = Static<typeof PluginSummary>
/** The fields of a summary the metrics show (Supervisor.gauges()). */
export type PluginGauges = Pick<PluginSummary, 'name' | 'state' | 'health' | 'circuit' | 'uptimeMs'>

export interface TransitionEvent {
  plugin: string
  from: StateName
  to: StateName
  reason: string
  at: number
  exitCode: number | null
  signal: string | null
  restartCount: number
  /** Set when the transition comes from a failed spawn. */
  error: SpawnError | null
}
export interface RestartEvent { plugin: string, reason: RestartEventReason, at: number }
export interface HealthEvent { plugin: string, from: Health, to: Health, reason: string, at: number }
export interface CircuitEvent { plugin: string, from: CircuitStateName, to: CircuitStateName, reason: string, at: number }

/** One run of a lifecycle hook: GET /plugins/:name/events (`hooks`), SSE `hook`, the hook_events table. */
export const HookEvent = Type.Object({
  plugin: Type.String(),
  hook: oneOf(HOOK_NAMES, 'Which hook ran'),
  kind: oneOf(HOOK_KINDS, 'How: a request to the plugin, a program, a signal'),
  target: Type.String({ description: "What it called: 'PUT /config', 'SIGHUP', a command line" }),
  outcome: oneOf(HOOK_OUTCOMES, 'success; failure (non-2xx, exit code not 0, signal not delivered); timeout (timeoutMs ran out); cancelled (the process ended first)'),
  durationMs: Type.Number({ description: 'How long it took (milliseconds)' }),
  reason: Type.String({ description: "What happened: the plugin's answer, the exit code, the timeout" }),
  actor: Nullable(Type.String(), { description: 'The operator (token name, or anonymous) whose call ran it; null when the supervisor did (a start after a crash, a daemon shutdown)' }),
  at: Timestamp
}, { $id: 'HookEvent' })
/** A hook run as the supervisor publishes it: `at` in ms since the epoch. */
export type HookEvent = InMs<Static<typeof HookEvent>, 'at'>
