// The resource sampler's reading of /proc: the processes of the plugins' groups, without reading
// every process on the machine at every tick. A stat file costs 15-20 µs of CPU to open, read and
// close, and the machine's other processes (hundreds to thousands) were most of what a tick read.
//
// A process is in a plugin's group at a tick when it was in it at the last tick (a known member),
// is the group's leader, or was created since the last tick: a new member is forked from a member
// (it inherits the group) and so has a pid handed out since then (pidsBetween). Those are the only
// pids read. What that cannot see: an older process of the plugin's session moved into the group
// with setpgid(). A full scan of /proc, at the first tick that watches a group without a reading of the tick before, whenever the pids handed out cannot be
// told (a reading missing, the pid space gone round) and at least every `fullScanEveryMs`, finds
// those too. While no group is watched only the pid cursor is read: every member of a group
// watched later is created after it.
import { pidMax, pidsBetween, readPidCursor, scanProcesses, type PidCursor, type PidRange, type ProcStat } from '../process/proc.js'

/** What a tick watches: the plugins' process groups and their leaders' pids. */
export interface WatchedGroups {
  groups: { has: (pgid: number) => boolean, readonly size: number }
  leaders: Iterable<number>
}

export interface GroupScanOptions {
  procRoot?: string
  /** The longest time between two full scans, ms. */
  fullScanEveryMs: number
  /** Monotonic ms (performance.now by default). */
  now?: () => number
}

/** Every process of the watched groups (and maybe others): one tick of the sampler. */
export type GroupScan = (watch: WatchedGroups) => ProcStat[]

export function createGroupScan (opts: GroupScanOptions): GroupScan {
  const procRoot = opts.procRoot ?? '/proc'
  const now = opts.now ?? (() => performance.now())
  let members = new Set<number>()
  let cursor: PidCursor | undefined
  let lastFull = now()

  return ({ groups, leaders }) => {
    // Read before the processes: one created while they are read is in the next tick's range.
    const next = readPidCursor(procRoot)
    const created = cursor !== undefined && next !== undefined ? pidsBetween(cursor, next, pidMax(procRoot)) : undefined
    cursor = next
    let seen: ProcStat[]
    const at = now()
    if (groups.size === 0) {
      seen = []
    } else if (created === undefined || at - lastFull >= opts.fullScanEveryMs) {
      lastFull = at
      seen = scanProcesses(procRoot)
    } else {
      const known = new Set(members)
      for (const pid of leaders) known.add(pid)
      seen = scanProcesses(procRoot, either(known, created))
    }
    members = new Set()
    for (const p of seen) if (groups.has(p.pgid)) members.add(p.pid)
    return seen
  }
}

/** The pids of `known` and those of `created`, as one range (each pid once). */
function either (known: ReadonlySet<number>, created: PidRange): PidRange {
  return {
    count: known.size + created.count,
    has: (pid) => known.has(pid) || created.has(pid),
    pids: function * () {
      yield * known
      for (const pid of created.pids()) if (!known.has(pid)) yield pid
    }
  }
}
