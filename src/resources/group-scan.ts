// The resource sampler's reading of /proc: the processes of the plugins' groups, without reading
// every process on the machine at every tick. A stat file costs 15-20 µs of CPU to open, read and
// close, and the machine's other processes (hundreds to thousands) were most of what a tick read;
// the members' files stay open between ticks and are read again with pread (about 5 µs: see
// StatReader), and a tick after which no pid was handed out reads only those, without listing /proc.
//
// A process is in a plugin's group at a tick when it was in it at the last tick (a known member),
// is the group's leader, or was created since the last tick: a new member is forked from a member
// (it inherits the group) and so has a pid handed out since then (pidsBetween). Those are the only
// pids read. What that cannot see: an older process of the plugin's session moved into the group
// with setpgid(). A full scan of /proc finds those too: at the first tick that watches a group
// without a reading of the tick before, whenever the pids handed out cannot be told (a reading
// missing, the pid space gone round), at the first quiet tick (the one before found nothing
// changed) once `fullScanEveryMs` went by since the last one, and at the latest FORCED_AFTER
// times that long after it. While no group is watched only the pid cursor is read: every member
// of a group watched later is created after it.
import { StatReader, pidMax, pidsBetween, readPidCursor, scanProcesses, type PidCursor, type ProcStat } from '../process/proc.js'

/** What a tick watches: the plugins' process groups and their leaders' pids. */
export interface WatchedGroups {
  groups: { has: (pgid: number) => boolean, readonly size: number }
  leaders: Iterable<number>
  /** The tick before found nothing changed: a good time for a full scan. */
  quiet?: boolean
}

/** A full scan comes at the latest this many times fullScanEveryMs after the last one, quiet or not. */
export const FORCED_AFTER = 5

export interface GroupScanOptions {
  procRoot?: string
  /** How long after a full scan the next one comes at a quiet tick, ms. */
  fullScanEveryMs: number
  /** Monotonic ms (performance.now by default). */
  now?: () => number
  /** How many members' stat files stay open between ticks at most (default: see StatReader). */
  maxOpenFiles?: number
}

/** Every process of the watched groups (and maybe others): one tick of the sampler. */
export interface GroupScan {
  (watch: WatchedGroups): ProcStat[]
  /** Closes the stat files kept open (the next tick opens them again). */
  close: () => void
}

export function createGroupScan (opts: GroupScanOptions): GroupScan {
  const procRoot = opts.procRoot ?? '/proc'
  const now = opts.now ?? (() => performance.now())
  let members = new Set<number>()
  let cursor: PidCursor | undefined
  let lastFull = now()
  const stats = new StatReader(procRoot, opts.maxOpenFiles)

  const scan = ({ groups, leaders, quiet = false }: WatchedGroups): ProcStat[] => {
    const inGroup = (st: ProcStat): boolean => groups.has(st.pgid)
    // Read before the processes: one created while they are read is in the next tick's range.
    const next = readPidCursor(procRoot)
    const created = cursor !== undefined && next !== undefined ? pidsBetween(cursor, next, pidMax(procRoot)) : undefined
    cursor = next
    let seen: ProcStat[]
    const at = now()
    if (groups.size === 0) {
      seen = []
    } else if (created === undefined || at - lastFull >= opts.fullScanEveryMs * (quiet ? 1 : FORCED_AFTER)) {
      lastFull = at
      seen = scanProcesses(procRoot, undefined, undefined, { read: (pid) => stats.read(pid, inGroup) })
    } else {
      const known = new Set(members)
      for (const pid of leaders) known.add(pid)
      if (created.count === 0) {
        // Known processes only, each from its open file.
        seen = []
        for (const pid of known) {
          const st = stats.read(pid, inGroup)
          if (st !== undefined) seen.push(st)
        }
      } else {
        // From the listing of /proc, never pid by pid: a thread's id is a pid too, and
        // /proc/<tid>/stat (not listed) reads as a process of its own with the whole process's rss.
        seen = scanProcesses(procRoot, undefined, (pid) => !known.has(pid) && !created.has(pid), { read: (pid) => stats.read(pid, inGroup) })
      }
    }
    members = new Set()
    for (const p of seen) if (groups.has(p.pgid)) members.add(p.pid)
    // A process that left the groups (or ended) needs no open file.
    stats.retain(members)
    return seen
  }
  return Object.assign(scan, { close: () => stats.close() })
}
