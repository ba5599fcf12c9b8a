// The real process runner with eyes: it remembers every process group it started (so the
// checker can kill whatever is left, whatever happened) and watches each stop, so a group that
// outlives stop.timeoutMs is caught alive, with its pids, before the SIGKILL.
import type { ProcessHandle, ProcessIdentity, ProcessRunner } from '../process/runner.js'
import { waitGroupGone } from '../process/runner.js'
import { groupMembers, signalGroup } from '../process/proc.js'

/** The SIGKILL comes this much later than stop.timeoutMs says, so survivors can be seen at the deadline. */
export const OBSERVED_STOP_GRACE_MS = 1000

export interface StopOutcome {
  /** The whole group was gone this long after the stop signal; null when it outlived timeoutMs. */
  goneAfterMs: number | null
  /** Pids of the group still running at timeoutMs (leader first when it is among them). */
  survivors: number[]
}

export interface StopObservation {
  pid: number
  signal: NodeJS.Signals
  timeoutMs: number
  /** Known once the group is gone or the deadline passed (the supervisor may hear of the exit first). */
  outcome: Promise<StopOutcome>
}

export interface ObservingRunner extends ProcessRunner {
  readonly started: ProcessIdentity[]
  readonly stops: StopObservation[]
  /** SIGKILL to every group it started that has a process left. */
  killAll: () => void
}

export function observingRunner (inner: ProcessRunner): ObservingRunner {
  const started: ProcessIdentity[] = []
  const stops: StopObservation[] = []
  return {
    started,
    stops,
    killAll () {
      for (const { pgid } of started) signalGroup(pgid, 'SIGKILL')
    },
    // Its own data folder is new: nothing of an earlier daemon to reap, but the interface asks.
    reap: (r) => inner.reap(r),
    reapMarked: (leftOver) => inner.reapMarked(leftOver),
    spawn (spec, cb) {
      let identity: ProcessIdentity | undefined
      const handle = inner.spawn(spec, {
        ...cb,
        onSpawn: (id) => {
          identity = id
          started.push(id)
          cb.onSpawn(id)
        }
      })
      const observed: ProcessHandle = {
        get pid () { return handle.pid },
        async stop (signal, timeoutMs) {
          if (identity === undefined) return handle.stop(signal, timeoutMs)
          const { pid, pgid } = identity
          const t0 = Date.now()
          const done = handle.stop(signal, timeoutMs + OBSERVED_STOP_GRACE_MS)
          const outcome = waitGroupGone(pgid, t0 + timeoutMs).then((gone): StopOutcome => gone
            ? { goneAfterMs: Date.now() - t0, survivors: [] }
            : {
                goneAfterMs: null,
                survivors: groupMembers(pgid).filter((m) => m.state !== 'Z' && m.state !== 'X').map((m) => m.pid).sort((a, b) => Number(b === pid) - Number(a === pid))
              })
          stops.push({ pid, signal, timeoutMs, outcome })
          await Promise.all([done, outcome])
        }
      }
      return observed
    }
  }
}
