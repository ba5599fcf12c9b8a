// What Linux's /proc tells about processes: identity (start time), process groups, resources.
// Everything degrades to "unknown" where /proc is missing, so callers can fall back.
import { closeSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

export interface ProcStat {
  pid: number
  /** One-letter state: R, S, D, Z (zombie), T, X ... */
  state: string
  ppid: number
  pgid: number
  /** Start time in clock ticks after boot: with the boot id, the identity of a process. */
  startTicks: number
  utimeTicks: number
  stimeTicks: number
  rssPages: number
}

/** Parses /proc/<pid>/stat; undefined when the process does not exist (or /proc is missing). */
export function readProcStat (pid: number, procRoot = '/proc'): ProcStat | undefined {
  let bytes: Buffer
  try {
    bytes = readFileSync(`${procRoot}/${pid}/stat`)
  } catch {
    return undefined
  }
  return parseProcStat(bytes)
}

/**
 * The command name (field 2) may hold spaces and parentheses: fields are counted after the last
 * ')'. Read in place from the bytes, without a string or a split: a scan of every process parses
 * a thousand lines of 52 fields, and the strings were most of what a /proc scan allocated.
 */
export function parseProcStat (bytes: Uint8Array, length = bytes.length): ProcStat | undefined {
  if (length <= 0) return undefined
  const close = bytes.lastIndexOf(CLOSE_PAREN, length - 1)
  if (close < 0 || close + 2 >= length) return undefined
  const pid = digits(bytes, 0, length)
  // Field n (1-based, as proc(5) counts) starts after the (n - 3)th space following ") ".
  const at = close + 2
  const state = String.fromCharCode(bytes[at])
  let field = 3
  let i = at
  const out = { pid, state, ppid: 0, pgid: 0, utimeTicks: 0, stimeTicks: 0, startTicks: 0, rssPages: 0 }
  while (field < 24) {
    i = bytes.indexOf(SPACE, i)
    if (i < 0 || i >= length) return undefined
    i++
    field++
    switch (field) {
      case 4: out.ppid = digits(bytes, i, length); break
      case 5: out.pgid = digits(bytes, i, length); break
      case 14: out.utimeTicks = digits(bytes, i, length); break
      case 15: out.stimeTicks = digits(bytes, i, length); break
      case 22: out.startTicks = digits(bytes, i, length); break
      case 24: out.rssPages = digits(bytes, i, length); break
    }
  }
  return out
}
const CLOSE_PAREN = 0x29
const SPACE = 0x20

/** The unsigned decimal number at `i` (these fields are never negative). */
function digits (bytes: Uint8Array, i: number, length: number): number {
  let n = 0
  for (let c = bytes[i]; i < length && c >= 48 && c <= 57; c = bytes[++i]) n = n * 10 + c - 48
  return n
}

let cachedBootId: string | undefined
/** Changes at every boot: start ticks from another boot mean nothing. */
export function bootId (): string {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    } catch {
      cachedBootId = 'unknown'
    }
  }
  return cachedBootId
}

/** Every live process whose process group is `pgid` (zombies included; callers filter). */
export function groupMembers (pgid: number, procRoot = '/proc'): ProcStat[] {
  return scanProcesses(procRoot).filter((st) => st.pgid === pgid)
}

/**
 * Whether any process of the group is still alive. Zombies count as gone: PID 1 of a container
 * may never reap them. The cheap signal-0 probe answers the common case without reading /proc.
 */
export function groupAlive (pgid: number): boolean {
  const failed = trySignal(-pgid, 0)
  if (failed !== undefined) return failed === 'EPERM'
  const members = groupMembers(pgid)
  // No /proc (not Linux): trust the signal probe.
  if (members.length === 0) return !procAvailable()
  return members.some((m) => m.state !== 'Z' && m.state !== 'X')
}

let procOk: boolean | undefined
function procAvailable (): boolean {
  procOk ??= readProcStat(process.pid) !== undefined
  return procOk
}

/** Sends a signal to a whole process group; false when no such group exists. */
export function signalGroup (pgid: number, signal: NodeJS.Signals): boolean {
  return trySignal(-pgid, signal) === undefined
}

/**
 * process.kill without the stack trace of its error: a stop of 500 asks each group "gone yet?"
 * and is answered ESRCH 500 times, and capturing the stack is most of what such an error costs.
 * Returns the error's code (ESRCH, EPERM) or undefined when the signal was sent.
 */
function trySignal (target: number, signal: NodeJS.Signals | 0): string | undefined {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    process.kill(target, signal)
    return undefined
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'UNKNOWN'
  } finally {
    Error.stackTraceLimit = limit
  }
}

/**
 * Every process in one pass over /proc (the resource sampler groups them by pgid), read by
 * `reader` (by default each stat file opened, read and closed: see StatReader).
 */
export function scanProcesses (procRoot = '/proc', only?: PidRange, skip?: (pid: number) => boolean, reader: Pick<StatReader, 'read'> = new StatReader(procRoot, 0)): ProcStat[] {
  const out: ProcStat[] = []
  const readInto = (pid: number): void => {
    const st = reader.read(pid)
    if (st !== undefined) out.push(st)
  }
  // A short range is cheaper to try pid by pid than to list /proc (a few hundred entries).
  if (only !== undefined && only.count <= DIRECT_PROBE_MAX) {
    for (const pid of only.pids()) if (skip?.(pid) !== true) readInto(pid)
    return out
  }
  let entries: string[]
  try {
    entries = readdirSync(procRoot)
  } catch {
    return []
  }
  for (const e of entries) {
    const c = e.charCodeAt(0)
    if (c < 48 || c > 57) continue
    const pid = Number(e)
    if (only !== undefined && !only.has(pid)) continue
    if (skip !== undefined && skip(pid)) continue
    readInto(pid)
  }
  return out
}
const DIRECT_PROBE_MAX = 128
/** One buffer for every stat reading (the daemon reads them one at a time, synchronously). */
const statBuffer = Buffer.allocUnsafe(4096)

/** How many /proc/<pid>/stat files a StatReader keeps open by default: this share of the limit of open files. */
export const KEPT_STAT_FILES_SHARE = 1 / 4

/** The soft limit of open files of this process (Node raises it to the hard limit at start); 1024 when unreadable. */
export function openFilesLimit (): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'latin1'))
    if (m !== null) return Number(m[1])
  } catch {}
  return 1024
}

/**
 * Reads /proc/<pid>/stat, keeping the files of the processes read again at every tick open: a
 * reading of an open file (pread) costs about 5 µs of CPU, against 15-20 for open, read and
 * close. An open file stays bound to the process it was opened for: once that one is reaped,
 * reading it fails (ESRCH), even when its pid was handed out again, and the file is closed and
 * the pid read afresh. At most `maxOpen` files are kept (by default KEPT_STAT_FILES_SHARE of the
 * limit of open files), so that plugins' pipes, log files and sockets always have room; past it,
 * a reading opens and closes. When an open fails for want of descriptors, every kept file is closed.
 */
export class StatReader {
  readonly #root: string
  readonly #maxOpen: number
  readonly #open = new Map<number, number>()

  constructor (procRoot = '/proc', maxOpen = Math.floor(openFilesLimit() * KEPT_STAT_FILES_SHARE)) {
    this.#root = procRoot
    this.#maxOpen = maxOpen
  }

  /** How many files are open now. */
  get openFiles (): number { return this.#open.size }

  /**
   * The process's stat now; undefined when there is no such process. `keep` says whether its
   * file stays open for the next reading (default: yes, within maxOpen).
   */
  read (pid: number, keep: (st: ProcStat) => boolean = () => true): ProcStat | undefined {
    const kept = this.#open.get(pid)
    if (kept !== undefined) {
      const st = readStat(kept)
      if (st !== undefined && st.pid === pid) return st
      // That process is gone; the pid may be another one's now.
      this.#closeOne(pid, kept)
    }
    let fd: number
    try {
      fd = openSync(`${this.#root}/${pid}/stat`, 'r')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EMFILE' || code === 'ENFILE') this.close()
      return undefined
    }
    const st = readStat(fd)
    if (st !== undefined && this.#open.size < this.#maxOpen && keep(st)) this.#open.set(pid, fd)
    else closeSync(fd)
    return st
  }

  /** Closes the files of the pids `keep` does not hold. */
  retain (keep: { has: (pid: number) => boolean }): void {
    for (const [pid, fd] of this.#open) if (!keep.has(pid)) this.#closeOne(pid, fd)
  }

  /** Closes every file it keeps. */
  close (): void {
    for (const [pid, fd] of this.#open) this.#closeOne(pid, fd)
  }

  #closeOne (pid: number, fd: number): void {
    this.#open.delete(pid)
    try { closeSync(fd) } catch {}
  }
}

/** The stat an open stat file reads now; undefined once its process is gone. */
function readStat (fd: number): ProcStat | undefined {
  try {
    return parseProcStat(statBuffer, readSync(fd, statBuffer, 0, statBuffer.length, 0))
  } catch {
    return undefined
  }
}

/** Where the kernel's pid allocation stands: clones since boot, the last pid handed out, tasks (threads included) alive. */
export interface PidCursor { forks: number, lastPid: number, tasks: number }

/** The pid cursor now, from /proc/stat and /proc/loadavg; undefined without them. */
export function readPidCursor (procRoot = '/proc'): PidCursor | undefined {
  try {
    const stat = readFileSync(`${procRoot}/stat`, 'latin1')
    const at = stat.indexOf('\nprocesses ')
    const load = readFileSync(`${procRoot}/loadavg`, 'latin1').split(' ')
    const forks = Number.parseInt(stat.slice(at + 11), 10)
    const tasks = Number.parseInt(load[3]?.slice(load[3].indexOf('/') + 1) ?? '', 10)
    const lastPid = Number.parseInt(load[4] ?? '', 10)
    if (at < 0 || !Number.isInteger(forks) || !Number.isInteger(tasks) || !Number.isInteger(lastPid)) return undefined
    const cursor = { forks, lastPid, tasks }
    if (procRoot === '/proc') lastCursor = { cursor, at: performance.now() }
    return cursor
  } catch {
    return undefined
  }
}

let lastCursor: { cursor: PidCursor, at: number } | undefined
/**
 * A reading of the pid cursor taken at most `maxAgeMs` ago (read now when there is none): any
 * earlier reading is as good a bound for "created since", only wider, and a restart right after
 * an exit (which read it) or a start burst pays no reading before its spawns.
 */
export function recentPidCursor (maxAgeMs = 1000): PidCursor | undefined {
  if (lastCursor !== undefined && performance.now() - lastCursor.at <= maxAgeMs) return lastCursor.cursor
  return readPidCursor()
}

let cachedPidMax: number | undefined
/** /proc/sys/kernel/pid_max; 32768 (the smallest usual value, so the most careful) when unreadable. */
export function pidMax (procRoot = '/proc'): number {
  if (cachedPidMax === undefined) {
    let v = Number.NaN
    try { v = Number.parseInt(readFileSync(`${procRoot}/sys/kernel/pid_max`, 'latin1'), 10) } catch {}
    cachedPidMax = Number.isInteger(v) && v > 0 ? v : 32768
  }
  return cachedPidMax
}

/** A set of pids as a cyclic interval of the pid space. */
export interface PidRange {
  readonly count: number
  has: (pid: number) => boolean
  pids: () => Iterable<number>
}

/**
 * The pids handed out between two readings of the cursor, or undefined when that cannot be told.
 * Linux hands out pids in increasing order, skipping those in use and wrapping around at
 * pid_max, so they lie after `then.lastPid` up to `now.lastPid` (cyclically) unless the cursor
 * went a whole round in between: it moves by one per clone (counted in `forks`) plus one per pid
 * in use that it skips (at most the tasks alive); doubled tasks and a slack keep that bound safe.
 */
export function pidsBetween (then: PidCursor, now: PidCursor, max: number): PidRange | undefined {
  const moved = now.forks - then.forks
  if (moved < 0 || moved + 2 * Math.max(then.tasks, now.tasks) + 1024 >= max - RESERVED_PIDS) return undefined
  const a = then.lastPid
  const b = now.lastPid
  if (moved === 0 || a === b) return { count: 0, has: () => false, pids: () => [] }
  if (a < b) {
    return {
      count: b - a,
      has: (pid) => pid > a && pid <= b,
      pids: function * () { for (let p = a + 1; p <= b; p++) yield p }
    }
  }
  // Wrapped: after a up to pid_max - 1, then from the bottom up to b.
  return {
    count: max - 1 - a + b,
    has: (pid) => pid > a || pid <= b,
    pids: function * () {
      for (let p = a + 1; p < max; p++) yield p
      for (let p = 1; p <= b; p++) yield p
    }
  }
}
/** The kernel wraps around to this pid (lower pids are left to early system processes). */
const RESERVED_PIDS = 300
let cachedSysconf: { pageSize: number, ticksPerSecond: number } | undefined
/** Page size (rss is in pages) and clock ticks per second (CPU times are in ticks), from getconf once. */
export function sysconf (): { pageSize: number, ticksPerSecond: number } {
  if (cachedSysconf === undefined) {
    const ask = (name: string, fallback: number): number => {
      try {
        const v = Number(execFileSync('getconf', [name], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }).trim())
        return Number.isInteger(v) && v > 0 ? v : fallback
      } catch {
        return fallback
      }
    }
    cachedSysconf = { pageSize: ask('PAGESIZE', 4096), ticksPerSecond: ask('CLK_TCK', 100) }
  }
  return cachedSysconf
}

/** The environment a process was started with (NUL-separated KEY=VALUE); undefined when unreadable. */
export function readEnviron (pid: number, procRoot = '/proc'): string[] | undefined {
  try {
    return readFileSync(`${procRoot}/${pid}/environ`, 'latin1').split('\0')
  } catch {
    return undefined
  }
}

/**
 * Every live process (zombies and the daemon itself left out) that `pre` lets through (checked
 * on /proc/<pid>/stat, so the environment is read only for candidates) and whose environment
 * `match` accepts. The environment is inherited by every descendant, including those that left
 * the process group with setsid, which is how they are found again.
 */
export function findByEnviron (match: (env: string[], st: ProcStat) => boolean, pre: (st: ProcStat) => boolean = () => true, procRoot = '/proc', only?: PidRange): ProcStat[] {
  return scanProcesses(procRoot, only).filter((st) => {
    if (st.state === 'Z' || st.state === 'X' || st.pid === process.pid || !pre(st)) return false
    const env = readEnviron(st.pid, procRoot)
    return env !== undefined && match(env, st)
  })
}

/**
 * One reading of /proc, kept until the next turn of the event loop: every live process (zombies
 * and the daemon itself left out) under each `KEY=VALUE` entry of its environment whose key
 * starts with TAG_PREFIX, and those entries of each process.
 */
let thisTurn: { byEntry: Map<string, ProcStat[]>, entriesOf: Map<number, Set<string>> } | undefined
const TAG_PREFIX = 'PLUGVISOR_'
/** A search of this turn read only the processes created since a cursor: the next one reads everything. */
let narrowedThisTurn = false

/**
 * The live processes whose environment holds every entry of `tag` (each `KEY=VALUE` with a key
 * starting with PLUGVISOR_) and that `pre` lets through, over one reading of /proc shared by
 * every caller in the same turn of the event loop. A stop of 500 plugins at once searches for
 * escaped descendants 500 times: each search read the stat and environment files of every
 * process (500 × ~1,000 reads, about 10 s), and then matched every environment against its tag
 * (500 × ~1,000, a quarter of a second); now the reading is indexed by tag entry once a turn.
 * A process forked later in the same turn is not seen; callers that must see one use findByEnviron.
 * `skip` leaves out pids that are never to be found (the caller's own plugin processes, each
 * tagged with its own plugin, alive and so not reused: a stop of 500 read them all, half of the
 * machine's processes, to find none). Every caller of a turn must pass the same one.
 * `everyoneSince`: a cursor read before every process any caller of the turn looks for was
 * created (the oldest spawn of the plugins still supervised): the shared reading covers only
 * the processes created since, when that can be told.
 * With `createdSince` (a cursor read before the processes looked for were created), the first
 * search of a turn reads only the processes created since, when that can be told (pidsBetween):
 * the one plugin process that exited on its own is followed by a handful of reads, not one per
 * process of the machine, before its restart.
 */
export function findTaggedThisTurn (tag: string[], pre: (st: ProcStat) => boolean = () => true, createdSince?: PidCursor, skip?: (pid: number) => boolean, everyoneSince?: PidCursor): ProcStat[] {
  if (tag.length === 0) return []
  if (thisTurn === undefined && createdSince !== undefined && !narrowedThisTurn) {
    const now = readPidCursor()
    const range = now === undefined ? undefined : pidsBetween(createdSince, now, pidMax())
    if (range !== undefined) {
      narrowedThisTurn = true
      setImmediate(() => { narrowedThisTurn = false })
      return findByEnviron((env) => tag.every((e) => env.includes(e)), pre, '/proc', range)
    }
  }
  if (thisTurn === undefined) {
    const byEntry = new Map<string, ProcStat[]>()
    const entriesOf = new Map<number, Set<string>>()
    const now = everyoneSince === undefined ? undefined : readPidCursor()
    const range = now === undefined ? undefined : pidsBetween(everyoneSince!, now, pidMax())
    for (const st of scanProcesses('/proc', range, skip)) {
      if (st.state === 'Z' || st.state === 'X' || st.pid === process.pid) continue
      const tagged = new Set<string>()
      for (const entry of readEnviron(st.pid) ?? []) {
        if (!entry.startsWith(TAG_PREFIX)) continue
        tagged.add(entry)
        const list = byEntry.get(entry)
        if (list === undefined) byEntry.set(entry, [st])
        else list.push(st)
      }
      if (tagged.size > 0) entriesOf.set(st.pid, tagged)
    }
    thisTurn = { byEntry, entriesOf }
    setImmediate(() => { thisTurn = undefined })
  }
  const { byEntry, entriesOf } = thisTurn
  // The processes under the rarest entry that have every other one too.
  const shortest = tag.map((e) => byEntry.get(e) ?? []).reduce((a, b) => (b.length < a.length ? b : a))
  return shortest.filter((st) => pre(st) && tag.every((e) => entriesOf.get(st.pid)?.has(e) === true))
}
