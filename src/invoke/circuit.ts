// The circuit breaker of calls into a plugin, in the operator's words. The invoke proxy owns the
// breaker; the supervisor shows its state next to the plugin's health.
import { Type, type Static } from '@sinclair/typebox'
import { Nullable, Timestamp, oneOf, type InMs } from '../shapes.js'

export const CIRCUIT_STATE_NAMES = ['closed', 'open', 'half-open', 'isolated'] as const
export type CircuitStateName = typeof CIRCUIT_STATE_NAMES[number]

export const BREAKER_KINDS = ['consecutive', 'sampling', 'count'] as const
export type BreakerKind = typeof BREAKER_KINDS[number]

/** The breaker of one plugin as GET /plugins/:name/circuit answers it. */
export const CircuitInfo = Type.Object({
  plugin: Type.String(),
  state: oneOf(CIRCUIT_STATE_NAMES, 'closed: calls pass; open: refused until halfOpenAfterMs elapsed; half-open: the next call is a trial; isolated: held open by an operator until reset'),
  breaker: oneOf(BREAKER_KINDS, 'consecutive: consecutiveFailures in a row open it; sampling: failureRate within windowMs; count: failureRate of the last windowSize calls once minimumCalls are in the window'),
  failures: Type.Integer({ description: 'consecutive: failed calls in a row; sampling and count: failed calls in the window' }),
  consecutiveFailures: Type.Union([Type.Integer(), Type.Null()]),
  failureRate: Type.Union([Type.Number(), Type.Null()]),
  windowMs: Type.Union([Type.Integer(), Type.Null()]),
  minimumRps: Type.Union([Type.Number(), Type.Null()]),
  windowSize: Type.Union([Type.Integer(), Type.Null()]),
  minimumCalls: Type.Union([Type.Integer(), Type.Null()]),
  successThreshold: Type.Integer({ description: 'Trial calls that must succeed in a row before a half-open circuit closes' }),
  trialSuccesses: Type.Integer({ description: 'Trial calls that succeeded in a row so far (half-open)' }),
  allowsCalls: Type.Boolean({ description: 'What the breaker would do with a call now: false while open (not yet due for a trial), isolated, or a trial call is in flight' }),
  halfOpenAfterMs: Type.Integer(),
  openedAt: Nullable(Timestamp),
  halfOpenAt: Type.Union([Timestamp, Type.Null()], { description: 'When an open circuit lets a trial call through' }),
  lastFailure: Type.Union([Type.String(), Type.Null()], { description: 'Why the last failed call failed' }),
  inFlight: Type.Integer({ description: 'Calls holding a bulkhead slot' }),
  queued: Type.Integer({ description: 'Calls waiting for a bulkhead slot' })
}, { $id: 'CircuitResponse' })
/** The breaker of one plugin in memory: openedAt and halfOpenAt in ms since the epoch, no plugin name. */
export type CircuitInfo = InMs<Omit<Static<typeof CircuitInfo>, 'plugin'>, 'openedAt' | 'halfOpenAt'>

/** The answer of the circuit routes: the in-memory form with its times as ISO strings. */
export function circuitView (plugin: string, c: CircuitInfo): Static<typeof CircuitInfo> {
  const iso = (ms: number | null): string | null => ms === null ? null : new Date(ms).toISOString()
  return { plugin, ...c, openedAt: iso(c.openedAt), halfOpenAt: iso(c.halfOpenAt) }
}

export interface CircuitChange { from: CircuitStateName, to: CircuitStateName, reason: string }
