// Lifecycle persistence: desired state, the identity of running processes, and state events.
// These writes happen on transitions only (a handful per plugin start or crash), so they are
// done synchronously with prepared statements; the supervisor makes those of one turn of the
// event loop in one transaction (a start of 500 is 2,000 of them).
import { Type, type Static } from '@sinclair/typebox'
import type { Db } from './database.js'
import { createStoreStatus, type StoreStatus } from './store-status.js'
import type { LifecycleStore } from '../supervisor/lifecycle-store.js'
import { Timestamp, oneOf, type InMs } from '../shapes.js'
import { SpawnErrorField } from '../supervisor/events.js'
import { STATE_NAMES } from '../supervisor/lifecycle.js'
import type { RecordedGroup } from '../process/runner.js'
import type { HookEvent } from '../supervisor/events.js'

/** A stored hook run, with its id for paging. */
export type HookEventRow = HookEvent & { id: number }

/** One state transition of a plugin, as GET /plugins/:name/events lists it. */
export const StateEvent = Type.Object({
  id: Type.Integer(),
  at: Timestamp,
  from: oneOf(STATE_NAMES),
  to: oneOf(STATE_NAMES),
  reason: Type.String(),
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  signal: Type.Union([Type.String(), Type.Null()]),
  restartCount: Type.Integer(),
  error: SpawnErrorField
})
/** A stored state event: `at` in ms since the epoch, with its plugin. */
export type StateEventRow = InMs<Static<typeof StateEvent>, 'at'> & { plugin: string }

export interface RecordedProcess extends RecordedGroup {
  plugin: string
  startedAt: number
}

export type NewStateEvent = Omit<StateEventRow, 'id'>

/** The lifecycle store, plus pruning for the daemon's retention timer. */
export interface StateStore extends LifecycleStore {
  /** Deletes at most `chunk` events older than `before`; returns how many. */
  pruneEvents: (before: number, chunk?: number) => number
}

export function createStateStore (db: Db, status: StoreStatus = createStoreStatus()): StateStore {
  const setDesired = db.prepare('INSERT INTO plugin_desired (plugin, desired, updated_at) VALUES (?, ?, ?) ON CONFLICT (plugin) DO UPDATE SET desired = excluded.desired, updated_at = excluded.updated_at')
  const delDesired = db.prepare('DELETE FROM plugin_desired WHERE plugin = ?')
  const allDesired = db.prepare('SELECT plugin, desired FROM plugin_desired')
  const putProcess = db.prepare('INSERT OR REPLACE INTO plugin_process (plugin, pid, pgid, start_ticks, boot_id, stop_signal, stop_timeout_ms, started_at) VALUES (@plugin, @pid, @pgid, @startTicks, @bootId, @stopSignal, @stopTimeoutMs, @startedAt)')
  const delProcess = db.prepare('DELETE FROM plugin_process WHERE plugin = ?')
  const allProcesses = db.prepare('SELECT plugin, pid, pgid, start_ticks AS startTicks, boot_id AS bootId, stop_signal AS stopSignal, stop_timeout_ms AS stopTimeoutMs, started_at AS startedAt FROM plugin_process')
  const addEvent = db.prepare(`INSERT INTO state_events (plugin, at, from_state, to_state, reason, exit_code, signal, restart_count, error_code, error_message)
    VALUES (@plugin, @at, @from, @to, @reason, @exitCode, @signal, @restartCount, @errorCode, @errorMessage)`)
  const eventsOf = db.prepare(`SELECT id, plugin, at, from_state AS "from", to_state AS "to", reason, exit_code AS exitCode, signal, restart_count AS restartCount,
    error_code AS errorCode, error_message AS errorMessage FROM state_events WHERE plugin = ? AND at >= ? AND id < ? ORDER BY id DESC LIMIT ?`)
  const pruneEvents = db.prepare('DELETE FROM state_events WHERE id IN (SELECT id FROM state_events WHERE at < ? LIMIT ?)')
  const addHook = db.prepare('INSERT INTO hook_events (plugin, at, hook, kind, target, outcome, duration_ms, reason, actor) VALUES (@plugin, @at, @hook, @kind, @target, @outcome, @durationMs, @reason, @actor)')
  const hooksOf = db.prepare('SELECT id, plugin, at, hook, kind, target, outcome, duration_ms AS durationMs, reason, actor FROM hook_events WHERE plugin = ? AND at >= ? ORDER BY id DESC LIMIT ?')
  const pruneHooks = db.prepare('DELETE FROM hook_events WHERE id IN (SELECT id FROM hook_events WHERE at < ? LIMIT ?)')
  /** Inside transaction(): the transaction as a whole is what goes through or not. */
  let inTransaction = false
  const write = (fn: () => void): void => { if (inTransaction) fn(); else status.run(fn) }

  return {
    transaction (fn) {
      if (inTransaction) return fn()
      return status.run(() => {
        inTransaction = true
        try {
          return db.transaction(fn)()
        } finally {
          inTransaction = false
        }
      })
    },
    setDesired (plugin, desired, at) {
      write(() => setDesired.run(plugin, desired, at))
    },
    forgetDesired (plugin: string): void {
      write(() => delDesired.run(plugin))
    },
    desiredStates (): Map<string, 'running' | 'stopped'> {
      const rows = allDesired.all() as { plugin: string, desired: 'running' | 'stopped' }[]
      return new Map(rows.map((r) => [r.plugin, r.desired]))
    },
    recordProcess (p: RecordedProcess): void {
      write(() => putProcess.run(p))
    },
    forgetProcess (plugin: string): void {
      write(() => delProcess.run(plugin))
    },
    recordedProcesses (): RecordedProcess[] {
      return allProcesses.all() as RecordedProcess[]
    },
    addEvent ({ error, ...e }: NewStateEvent): void {
      write(() => addEvent.run({ ...e, errorCode: error?.code ?? null, errorMessage: error?.message ?? null }))
    },
    events (plugin: string, opts: { since?: number, limit?: number, before?: number } = {}): StateEventRow[] {
      const rows = eventsOf.all(plugin, opts.since ?? 0, opts.before ?? Number.MAX_SAFE_INTEGER, opts.limit ?? 100) as (Omit<StateEventRow, 'error'> & { errorCode: string | null, errorMessage: string | null })[]
      return rows.map(({ errorCode, errorMessage, ...r }) => ({ ...r, error: errorCode === null ? null : { code: errorCode, message: errorMessage ?? '' } }))
    },
    addHookEvent (e: HookEvent): void {
      write(() => addHook.run(e))
    },
    hookEvents (plugin: string, opts: { since?: number, limit?: number } = {}): HookEventRow[] {
      return hooksOf.all(plugin, opts.since ?? 0, opts.limit ?? 100) as HookEventRow[]
    },
    pruneEvents (before: number, chunk = 1000): number {
      return status.run(() => pruneEvents.run(before, chunk).changes + pruneHooks.run(before, chunk).changes)
    }
  }
}
