// The fallback of a plugin as a state: the one place that decides whether calls into a plugin go
// to its fallback (another plugin, or a fixed answer). In `auto` (the manifest names a fallback)
// calls go there while the plugin is unavailable — not running, unhealthy, or its circuit not
// closed — and back to the plugin once it runs, is not unhealthy and its circuit is closed. An
// operator's activation (`manual`, optionally naming another fallback) sends every call there
// until it is deactivated; it overrides auto. Every change is published once.
//
// The invoke hot path reads one property (`active`) of the plugin's record; everything else is
// computed when the plugin's state, health or circuit changes, never per call.
import { Type, type Static } from '@sinclair/typebox'
import { FallbackTarget } from '../config/schema.js'
import { errors } from '../errors.js'
import { Nullable, Timestamp, oneOf, type InMs } from '../shapes.js'
import type { Health, StateName } from '../supervisor/lifecycle.js'
import type { CircuitStateName } from './circuit.js'

export const FALLBACK_MODES = ['off', 'auto', 'manual'] as const
export type FallbackMode = typeof FALLBACK_MODES[number]

/** Who answers: the plugin (inactive), or the fallback switched on automatically (auto) or by an operator (manual). */
export const FALLBACK_STATES = ['inactive', 'auto', 'manual'] as const
export type FallbackStateName = typeof FALLBACK_STATES[number]

/** The plugin lists' and detail's one-word fallback field (the full state is GET /plugins/:name/fallback). */
export const FallbackStateField = oneOf(FALLBACK_STATES, 'Who answers calls into the plugin now: inactive (the plugin itself), auto (its fallback, while it is unavailable), manual (its fallback, activated by an operator); GET /plugins/:name/fallback says why and what')

export const FallbackInfo = Type.Object({
  plugin: Type.String(),
  configured: Type.Boolean({ description: 'A fallback is named: by the manifest (resilience.fallback) or by an operator\'s activation' }),
  active: Type.Boolean({ description: 'Calls go to the fallback now' }),
  mode: oneOf(FALLBACK_MODES, 'off: no fallback named; auto: the manifest\'s fallback answers while the plugin is not running, unhealthy or its circuit is not closed; manual: an operator activated it, every call goes there until deactivated'),
  since: Timestamp,
  reason: Type.String({ description: 'Why the fallback is active or not' }),
  servedCalls: Type.Integer({ description: 'Calls the fallback answered since the plugin\'s manifest was loaded or changed' }),
  target: Nullable(FallbackTarget, { description: 'What answers when the fallback does: the override of a manual activation, else the manifest\'s fallback; null with none' })
}, { $id: 'FallbackResponse', description: 'since: when the fallback last became active or inactive (when the manifest was loaded, before any change)' })
export type FallbackView = Static<typeof FallbackInfo>

/** The `data:` of the SSE event `fallback`: one change of who answers the plugin's calls. */
export const FallbackEvent = Type.Object({
  plugin: Type.String(),
  from: oneOf(FALLBACK_STATES),
  to: oneOf(FALLBACK_STATES),
  reason: Type.String(),
  at: Timestamp,
  target: Nullable(FallbackTarget, { description: 'What answers now while active; null when inactive' }),
  actor: Nullable(Type.String(), { description: 'The operator (token name, anonymous without auth) who activated or deactivated it; null for an automatic switch' })
}, { $id: 'FallbackEvent' })
/** A fallback change in memory: `at` in ms since the epoch. */
export type FallbackChange = InMs<Static<typeof FallbackEvent>, 'at'>

/** Why auto mode sends calls to the fallback now; null when the plugin can take them. */
export function unavailableBecause (state: StateName, verdict: Health, circuit: CircuitStateName | null): string | null {
  if (state !== 'running') return `plugin is ${state}`
  if (verdict === 'unhealthy') return 'plugin is unhealthy'
  if (circuit !== null && circuit !== 'closed') return `circuit ${circuit}`
  return null
}

/** One plugin's fallback. The invoker reads `active`, `canAnswer`, `target`, `buffersBody` and `trialsPass` per call. */
export class FallbackRecord {
  active = false
  target: FallbackTarget | undefined
  /** The target is another plugin: a body must be read first, since it may be sent twice. */
  buffersBody = false
  /** A target is named that can answer (a fallback plugin that is this one or not loaded cannot). */
  canAnswer = false
  /** Auto mode held only by a half-open circuit: trial calls go to the plugin (else it never closes). */
  trialsPass = false
  served = 0
  since: number
  reason = 'no fallback configured'
  manual: { target: FallbackTarget | undefined, actor: string } | undefined
  /** Why the plugin is unavailable now (auto mode's input); null when it is not. */
  unavailable: string | null = null
  /** The circuit is the only reason (and it is half-open). */
  halfOpenOnly = false
  /** What the last change published (or the starting point): changes are told against it. */
  shown: FallbackStateName = 'inactive'
  shownTarget: FallbackTarget | undefined

  constructor (readonly plugin: string, readonly manifestTarget: FallbackTarget | undefined, now: number) {
    this.since = now
    this.target = manifestTarget
  }

  get mode (): FallbackMode {
    if (this.manual) return 'manual'
    return this.manifestTarget === undefined ? 'off' : 'auto'
  }

  get state (): FallbackStateName { return this.active ? (this.manual ? 'manual' : 'auto') : 'inactive' }

  view (): FallbackView {
    return {
      plugin: this.plugin,
      configured: this.target !== undefined,
      active: this.active,
      mode: this.mode,
      since: new Date(this.since).toISOString(),
      reason: this.reason,
      servedCalls: this.served,
      target: this.target ?? null
    }
  }
}

/** What the fallback state reads of the supervisor. */
export interface FallbackInputs {
  has: (name: string) => boolean
  names: () => string[]
  fallbackOf: (name: string) => FallbackTarget | undefined
  state: (name: string) => StateName
  verdict: (name: string) => Health
  circuit: (name: string) => CircuitStateName | null
}

export interface FallbackOptions {
  inputs: FallbackInputs
  now: () => number
  publish: (change: FallbackChange) => void
}

export function createFallbacks ({ inputs, now, publish }: FallbackOptions) {
  const records = new Map<string, FallbackRecord>()

  /** A plugin fallback that names itself or a plugin not loaded cannot answer (and is ignored). */
  const usable = (name: string, t: FallbackTarget | undefined): boolean =>
    t !== undefined && (!('plugin' in t) || (t.plugin !== name && inputs.has(t.plugin)))

  /** Recomputes who answers; publishes when that (or the target) changed, unless `silent`. */
  const apply = (r: FallbackRecord, actor: string | null, why?: string, silent = false): void => {
    r.target = r.manual?.target ?? r.manifestTarget
    r.buffersBody = r.target !== undefined && 'plugin' in r.target
    const wanted = r.manual !== undefined || (r.manifestTarget !== undefined && r.unavailable !== null)
    r.canAnswer = usable(r.plugin, r.target)
    r.active = wanted && r.canAnswer
    r.trialsPass = r.active && r.manual === undefined && r.halfOpenOnly
    r.reason = why ?? (r.active
      ? r.manual ? `activated by ${r.manual.actor}` : r.unavailable!
      : r.target === undefined
        ? 'no fallback configured'
        : wanted
          ? `the fallback plugin '${(r.target as { plugin: string }).plugin}' cannot answer (it is this plugin or not loaded)`
          : 'plugin is running with a closed circuit')
    const from = r.shown
    const to = r.state
    if (from === to && r.shownTarget === r.target) return
    r.shown = to
    r.shownTarget = r.target
    if (silent) return
    r.since = now()
    publish({ plugin: r.plugin, from, to, reason: r.reason, at: r.since, target: r.active ? r.target ?? null : null, actor })
  }

  const refreshInputs = (r: FallbackRecord): void => {
    const circuit = inputs.circuit(r.plugin)
    r.unavailable = unavailableBecause(inputs.state(r.plugin), inputs.verdict(r.plugin), circuit)
    r.halfOpenOnly = circuit === 'half-open' && r.unavailable === 'circuit half-open'
  }

  const create = (name: string, carried?: FallbackRecord): FallbackRecord => {
    const r = new FallbackRecord(name, inputs.fallbackOf(name), now())
    // A manual activation outlives a change of the manifest: only its operator ends it.
    r.manual = carried?.manual
    records.set(name, r)
    refreshInputs(r)
    // The first computation is the starting point, not a change.
    apply(r, null, undefined, true)
    return r
  }

  const of = (name: string): FallbackRecord => {
    const r = records.get(name)
    if (r !== undefined) return r
    if (!inputs.has(name)) throw new errors.PluginNotFound(name)
    return create(name)
  }

  /** Records whose fallback is the plugin `name`: its loading or unloading changes whether they can use it. */
  const dependents = (name: string): void => {
    for (const r of records.values()) if (r.target !== undefined && 'plugin' in r.target && r.target.plugin === name) apply(r, null)
  }

  return {
    /** The record of a plugin (404 for one not loaded). */
    of,
    view: (name: string): FallbackView => of(name).view(),
    /** The plugin's state, health or circuit changed. */
    refresh (name: string): void {
      const r = records.get(name)
      if (r === undefined) return
      refreshInputs(r)
      apply(r, null)
    },
    /** The plugin was loaded, or its manifest changed: a fresh record (a manual activation carried over). */
    loaded (name: string): void {
      const previous = records.get(name)
      const r = create(name, previous)
      // Told when who answers changed with the manifest (a target of the same content is no change).
      if (previous !== undefined && (previous.shown !== r.shown || (r.active && JSON.stringify(previous.shownTarget) !== JSON.stringify(r.shownTarget)))) {
        r.since = now()
        publish({ plugin: name, from: previous.shown, to: r.shown, reason: `manifest changed: ${r.reason}`, at: r.since, target: r.active ? r.target ?? null : null, actor: null })
      }
      dependents(name)
    },
    unloaded (name: string): void {
      // A changed manifest is unloaded and loaded again while the plugin stays: keep the record for loaded().
      if (inputs.has(name)) return
      records.delete(name)
      dependents(name)
    },
    /**
     * An operator sends every call to the fallback: `override` names another one until the
     * deactivation. 409 when neither it nor the manifest names one; 400 for an override plugin
     * that is this plugin or not loaded.
     */
    activate (name: string, override: FallbackTarget | undefined, actor: string): FallbackView {
      const r = of(name)
      const target = override ?? r.manual?.target ?? r.manifestTarget
      if (target === undefined) throw new errors.Conflict(`plugin '${name}' has no fallback: name one in the body ({ plugin } or { status, body }) or in its manifest (resilience.fallback)`)
      if (override !== undefined && 'plugin' in override) {
        if (override.plugin === name) throw new errors.Validation(`body/plugin must name another plugin than '${name}'`)
        if (!inputs.has(override.plugin)) throw new errors.Validation(`body/plugin: plugin '${override.plugin}' is not loaded`)
      }
      r.manual = { target: override ?? r.manual?.target, actor }
      apply(r, actor)
      return r.view()
    },
    /** Ends a manual activation (and its override): auto mode again, or off. Idempotent. */
    deactivate (name: string, actor: string): FallbackView {
      const r = of(name)
      if (r.manual === undefined) return r.view()
      r.manual = undefined
      refreshInputs(r)
      const auto = r.manifestTarget !== undefined && r.unavailable !== null
      apply(r, actor, auto ? `deactivated by ${actor}; auto mode: ${r.unavailable!}` : `deactivated by ${actor}`)
      return r.view()
    },
    names: () => [...records.keys()]
  }
}

export type Fallbacks = ReturnType<typeof createFallbacks>
