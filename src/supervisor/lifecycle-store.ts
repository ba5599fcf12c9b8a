// What the supervisor keeps across daemon restarts, as it needs it: the store implements this
// (store/state-store.ts). Writes happen on transitions only, a handful per start or crash.
import type { Desired } from './lifecycle.js'
import type { HookEventRow, NewStateEvent, RecordedProcess, StateEventRow } from '../store/state-store.js'
import type { HookEvent } from './events.js'

export interface LifecycleStore {
  /**
   * Runs fn (writes of this store) as one transaction: all of them are kept, or none when one
   * fails or the commit does (its error is thrown).
   */
  transaction: <T>(fn: () => T) => T
  setDesired: (plugin: string, desired: Desired, at: number) => void
  forgetDesired: (plugin: string) => void
  desiredStates: () => Map<string, Desired>
  /** The identity of a running process, so a daemon killed hard can reap it at the next start. */
  recordProcess: (p: RecordedProcess) => void
  forgetProcess: (plugin: string) => void
  recordedProcesses: () => RecordedProcess[]
  addEvent: (e: NewStateEvent) => void
  /** Newest first; `before` is an event id for paging. */
  events: (plugin: string, opts?: { since?: number, limit?: number, before?: number }) => StateEventRow[]
  /** Every run of a lifecycle hook. */
  addHookEvent: (e: HookEvent) => void
  /** Newest first. */
  hookEvents: (plugin: string, opts?: { since?: number, limit?: number }) => HookEventRow[]
}
