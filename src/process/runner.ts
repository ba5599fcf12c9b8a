// The OS process behind a small interface (spawn, stop, output, exit, and reaping what a
// previous daemon left), so the supervisor can be driven by a fake in tests and by real child
// processes in production.
import { spawn as spawnChild, type ChildProcess } from 'node:child_process'
import { bootId, findByEnviron, findTaggedThisTurn, groupAlive, groupMembers, readProcStat, recentPidCursor, signalGroup, type PidCursor } from './proc.js'
import { LineSplitter } from './line-splitter.js'

/**
 * The group leaders spawned here that have not exited (so their pids are not reused). Never an
 * escaped descendant of another plugin: each carries its own plugin's tag (the daemon sets it
 * last), and the search for its own plugin's descendants leaves its group out.
 */
const leaders = new Set<number>()
const isLeader = (pid: number): boolean => leaders.has(pid)

/**
 * The pid cursor read before each tagged plugin still supervised here was spawned: every
 * descendant of those plugins was created after the oldest of them, so a search for escaped
 * descendants reads only the processes created since (on a busy machine most processes are older).
 */
const liveCursors = new Set<PidCursor>()
function oldestLiveCursor (): PidCursor | undefined {
  let oldest: PidCursor | undefined
  for (const c of liveCursors) if (oldest === undefined || c.forks < oldest.forks) oldest = c
  return oldest
}

/** How long a process group gets to be gone after SIGKILL before the runner stops waiting (ms). */
export const KILL_GRACE_MS = 5000

export interface SpawnSpec {
  command: string
  args: string[]
  cwd: string
  env: Record<string, string>
  /**
   * KEY=VALUE entries of `env` that every descendant inherits and nothing else carries (the
   * daemon's instance marker and the plugin name; keys start with PLUGVISOR_): a stop also ends
   * descendants that left the process group (setsid), found by these in /proc/<pid>/environ.
   */
  tag?: string[]
}

export interface ProcessIdentity {
  pid: number
  /** Process group id: the plugin's process is its group's leader. */
  pgid: number
  startTicks: number | null
  bootId: string
}

export interface ProcessCallbacks {
  /** The program is executing. */
  onSpawn: (identity: ProcessIdentity) => void
  /** It could not be started (no such program, permission...). Terminal. */
  onSpawnError: (err: Error) => void
  /** The leader exited and every process of its group is gone. Terminal. */
  onExit: (code: number | null, signal: string | null) => void
  onLine: (stream: 'stdout' | 'stderr', line: string) => void
}

export interface ProcessHandle {
  readonly pid: number | undefined
  /** Known as soon as spawn() returns, when the process was created (undefined when it could not be). */
  readonly identity?: ProcessIdentity
  /**
   * Stop signal to the whole group, SIGKILL to the group after timeoutMs. Resolves once every
   * process of the group is gone (onExit has then been called).
   */
  stop: (signal: NodeJS.Signals, timeoutMs: number) => Promise<void>
}

/** A process group recorded by an earlier daemon, with how it is to be stopped. */
export interface RecordedGroup extends ProcessIdentity {
  stopSignal: string
  stopTimeoutMs: number
}

export interface StopSettings { stopSignal: string, stopTimeoutMs: number }

/** terminated: it was still running and is gone now; gone: nothing of it was left; reused: the pid is someone else's now. */
export type ReapResult = 'terminated' | 'gone' | 'reused'

export interface ProcessRunner {
  spawn: (spec: SpawnSpec, cb: ProcessCallbacks) => ProcessHandle
  /**
   * Terminates what is left of a process group an earlier daemon recorded: its stop signal, then
   * SIGKILL after its stop timeout. A pid whose start time differs is someone else's: left alone.
   */
  reap: (r: RecordedGroup) => Promise<ReapResult>
  /**
   * Terminates every process whose environment `leftOver` recognises (each with the stop signal
   * and timeout it answers, then SIGKILL); resolves once they are gone with their pids and
   * what `leftOver` answered for each.
   */
  reapMarked: <T extends StopSettings>(leftOver: (env: string[]) => T | undefined) => Promise<(T & { pid: number })[]>
}

export const MAX_LINE_BYTES = 8 * 1024

/** Resolves true once `gone()` holds, polling with a growing interval (at most 50 ms); false at the deadline. */
function pollUntil (gone: () => boolean, deadline: number): Promise<boolean> {
  return new Promise((resolve) => {
    let delay = 1
    const check = (): void => {
      if (gone()) return resolve(true)
      const left = deadline - Date.now()
      if (left <= 0) return resolve(false)
      delay = Math.min(delay * 2, 50)
      setTimeout(check, Math.min(delay, left))
    }
    check()
  })
}

/** Resolves when every process of the group is gone; false at the deadline. */
export function waitGroupGone (pgid: number, deadline: number): Promise<boolean> {
  return pollUntil(() => !groupAlive(pgid), deadline)
}

/**
 * What every way of spawning shares once the leader exists: its identity, its output split in
 * lines, the descendants that left its group, the stop, and the wait until the whole group is
 * gone before onExit. Subclasses create the leader and report what happens to it.
 */
export abstract class GroupHandle implements ProcessHandle {
  readonly #cb: ProcessCallbacks
  #exited = false
  #stopping: Promise<void> | undefined
  readonly #done: Promise<void>
  #resolveDone!: () => void
  /** Resolves once the leader exists (or never: #done covers a failed spawn). */
  readonly #created: Promise<void>
  #resolveCreated!: () => void
  /** Set once the leader exited; the group may still be draining. */
  #leaderExit: { code: number | null, signal: string | null } | undefined
  #stopDeadline: number | undefined
  #identity: ProcessIdentity | undefined
  readonly #tag: string[]
  /** Descendants outside the group (setsid) found at the last look, with their start times. */
  #escaped: { pid: number, startTicks: number }[] = []
  /** Where pid allocation stood before the spawn: the descendants' pids come after it. */
  readonly #cursor: PidCursor | undefined
  readonly #splitters: Record<'stdout' | 'stderr', LineSplitter>

  constructor (spec: SpawnSpec, cb: ProcessCallbacks) {
    this.#cb = cb
    this.#tag = spec.tag ?? []
    this.#done = new Promise((resolve) => { this.#resolveDone = resolve })
    this.#created = new Promise((resolve) => { this.#resolveCreated = resolve })
    if (this.#tag.length > 0) {
      this.#cursor = recentPidCursor()
      if (this.#cursor !== undefined) liveCursors.add(this.#cursor)
      void this.#done.then(() => { if (this.#cursor !== undefined) liveCursors.delete(this.#cursor) })
    }
    this.#splitters = {
      stdout: new LineSplitter(MAX_LINE_BYTES, (line) => cb.onLine('stdout', line)),
      stderr: new LineSplitter(MAX_LINE_BYTES, (line) => cb.onLine('stderr', line))
    }
  }

  get pid (): number | undefined { return this.#identity?.pid }
  get identity (): ProcessIdentity | undefined { return this.#identity }
  /** The plugin's tag (KEY=VALUE entries of its environment), empty without an instance marker. */
  get tag (): string[] { return this.#tag }
  protected get exited (): boolean { return this.#exited }

  /** The leader exists (its pid is not reused until it is reaped). */
  protected created (pid: number, startTicks: number | null): ProcessIdentity {
    this.#identity = { pid, pgid: pid, startTicks, bootId: bootId() }
    leaders.add(pid)
    this.#resolveCreated()
    return this.#identity
  }

  /** Sends a signal to the plugin's process group (the spawner sends it in a batch, see SpawnedHandle). */
  protected signalGroup (pgid: number, signal: NodeJS.Signals): void { signalGroup(pgid, signal) }

  /** The program is executing: onSpawn. */
  protected announce (): void { this.#cb.onSpawn(this.#identity!) }

  protected output (stream: 'stdout' | 'stderr', chunk: Buffer): void { this.#splitters[stream].push(chunk) }
  protected outputEnd (stream: 'stdout' | 'stderr'): void { this.#splitters[stream].end() }

  /** It could not be started. Terminal. */
  protected failed (err: Error): void {
    if (this.#exited) return
    this.#exited = true
    this.#cb.onSpawnError(err)
    this.#resolveDone()
  }

  /**
   * Descendants that left the process group, found by the tag in their environment. `created`:
   * only processes created since the spawn need to be read (the leader exited on its own; a stop
   * of many shares one reading of every process instead).
   */
  #findEscaped (created = false): void {
    const startTicks = this.#identity?.startTicks
    if (this.#tag.length === 0 || startTicks == null) return
    const pgid = this.#identity!.pgid
    const found = findTaggedThisTurn(this.#tag, (st) => st.pgid !== pgid && st.startTicks >= startTicks, created ? this.#cursor : undefined, isLeader, oldestLiveCursor())
    const known = new Set(this.#escaped.map((e) => e.pid))
    for (const st of found) if (!known.has(st.pid)) this.#escaped.push({ pid: st.pid, startTicks: st.startTicks })
  }

  #signalEscaped (signal: NodeJS.Signals): void {
    for (const e of this.#escaped) {
      try { process.kill(e.pid, signal) } catch {}
    }
  }

  /** The group and every escaped descendant are gone (zombies count as gone); `groupGone`: the group is known to be. */
  #allGone (groupGone = false): boolean {
    if (!groupGone && groupAlive(this.#identity!.pgid)) return false
    this.#escaped = this.#escaped.filter((e) => {
      const st = readProcStat(e.pid)
      return st !== undefined && st.startTicks === e.startTicks && st.state !== 'Z' && st.state !== 'X'
    })
    return this.#escaped.length === 0
  }

  /**
   * The leader is gone (reaped, or lost with the process that held it: `killGroup` then ends
   * what is left of its group at once, as after a crash). `groupGone`: whoever reaped it saw no
   * process of its group left (a group with none never gets one again), so it need not be asked.
   */
  protected leaderExited (code: number | null, signal: string | null, killGroup = false, groupGone = false): void {
    if (this.#leaderExit !== undefined) return
    this.#leaderExit = { code, signal }
    const pgid = this.#identity!.pgid
    // Reaped: its pid may be someone else's from now on.
    leaders.delete(pgid)
    if (this.#stopDeadline === undefined) this.#findEscaped(true)
    if (!killGroup && this.#allGone(groupGone)) return this.#finish()
    if (this.#stopDeadline === undefined || killGroup) {
      // The leader died on its own and left processes behind: they would hold its port and
      // double its work after a restart, so they go at once.
      this.signalGroup(pgid, 'SIGKILL')
      this.#signalEscaped('SIGKILL')
      this.#stopDeadline = Date.now() + KILL_GRACE_MS
    }
    void pollUntil(() => this.#allGone(), this.#stopDeadline).then((gone) => {
      if (!gone) {
        this.signalGroup(pgid, 'SIGKILL')
        this.#signalEscaped('SIGKILL')
        return pollUntil(() => this.#allGone(), Date.now() + KILL_GRACE_MS)
      }
      return true
    }).then(() => this.#finish())
  }

  #finish (): void {
    if (this.#exited) return
    this.#exited = true
    const e = this.#leaderExit!
    this.#cb.onExit(e.code, e.signal)
    this.#resolveDone()
  }

  stop (signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    if (this.#exited) return Promise.resolve()
    this.#stopping ??= this.#stop(signal, timeoutMs)
    return this.#stopping
  }

  async #stop (signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    if (this.#identity === undefined) {
      // Not created yet: the spawn either fails (terminal) or succeeds, after which we stop it.
      await Promise.race([this.#created, this.#done])
      if (this.#exited) return
    }
    const pid = this.#identity!.pgid
    this.#stopDeadline = Date.now() + timeoutMs
    this.#findEscaped()
    this.signalGroup(pid, signal)
    this.#signalEscaped(signal)
    const timer = setTimeout(() => {
      if (this.#exited) return
      this.signalGroup(pid, 'SIGKILL')
      this.#findEscaped()
      this.#signalEscaped('SIGKILL')
    }, timeoutMs)
    // If the leader already exited, its group may be draining: make sure the drain uses our deadline.
    if (this.#leaderExit !== undefined) void pollUntil(() => this.#allGone(), this.#stopDeadline).then(() => this.#finish())
    await this.#done
    clearTimeout(timer)
  }
}

/** A plugin spawned by the daemon itself, through Node's child_process. */
class ChildHandle extends GroupHandle {
  constructor (spec: SpawnSpec, cb: ProcessCallbacks) {
    super(spec, cb)
    const child: ChildProcess = spawnChild(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      detached: true, // own session and process group: the group can be signalled as a whole
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true
    })
    // libuv returns from spawn once the program is executing (or failed to): the pid and its
    // start time are known now, before any other plugin of a start burst is spawned.
    if (child.pid !== undefined) this.created(child.pid, readProcStat(child.pid)?.startTicks ?? null)
    for (const stream of ['stdout', 'stderr'] as const) {
      child[stream]!.on('data', (chunk: Buffer) => this.output(stream, chunk))
      child[stream]!.on('end', () => this.outputEnd(stream))
      child[stream]!.on('error', () => {})
    }
    child.once('spawn', () => this.announce())
    child.once('error', (err) => {
      // 'error' without a pid is a failed spawn; with one it is a failed kill, which the group logic covers.
      if (child.pid === undefined) this.failed(err)
    })
    child.once('exit', (code, signal) => { this.leaderExited(code, signal) })
  }
}

async function reap (r: RecordedGroup): Promise<ReapResult> {
  if (r.bootId !== bootId() || r.startTicks === null) return 'gone'
  const startTicks = r.startTicks
  const leader = readProcStat(r.pid)
  let targets: number[]
  if (leader && leader.startTicks === startTicks) {
    targets = [-r.pgid]
  } else if (leader) {
    // The pid now belongs to another process. Linux does not hand out a pid that is still
    // a process group id, so the old group is empty too: nothing of ours is left.
    return 'reused'
  } else {
    // The leader is gone: members of its group started no earlier than it are ours.
    targets = groupMembers(r.pgid)
      .filter((m) => m.startTicks >= startTicks && m.state !== 'Z' && m.pid !== process.pid)
      .map((m) => m.pid)
    if (targets.length === 0) return 'gone'
  }
  const sendAll = (sig: NodeJS.Signals): void => {
    for (const t of targets) {
      try { process.kill(t, sig) } catch {}
    }
  }
  // The whole group, or (its leader gone) the members that are ours: alive with a start time from that group.
  const gone = targets[0] < 0
    ? () => !groupAlive(r.pgid)
    : () => !targets.some((pid) => {
        const st = readProcStat(pid)
        return st !== undefined && st.state !== 'Z' && st.pgid === r.pgid && st.startTicks >= startTicks
      })
  sendAll(r.stopSignal as NodeJS.Signals)
  if (!await pollUntil(gone, Date.now() + r.stopTimeoutMs)) {
    if (targets[0] < 0) signalGroup(r.pgid, 'SIGKILL')
    else sendAll('SIGKILL')
    await pollUntil(gone, Date.now() + KILL_GRACE_MS)
  }
  return 'terminated'
}

async function reapMarked<T extends StopSettings> (leftOver: (env: string[]) => T | undefined): Promise<(T & { pid: number })[]> {
  const targets: (T & { pid: number, startTicks: number })[] = []
  findByEnviron((env, st) => {
    const stop = leftOver(env)
    if (stop) targets.push({ pid: st.pid, startTicks: st.startTicks, ...stop })
    return stop !== undefined
  })
  if (targets.length === 0) return []
  const isAlive = (x: { pid: number, startTicks: number }): boolean => {
    const st = readProcStat(x.pid)
    return st !== undefined && st.startTicks === x.startTicks && st.state !== 'Z' && st.state !== 'X'
  }
  const kill = (x: { pid: number }, sig: NodeJS.Signals): void => { try { process.kill(x.pid, sig) } catch {} }
  for (const x of targets) kill(x, x.stopSignal as NodeJS.Signals)
  const start = Date.now()
  await pollUntil(() => targets.every((x) => !isAlive(x) || Date.now() - start >= x.stopTimeoutMs), start + Math.max(...targets.map((x) => x.stopTimeoutMs)))
  const left = targets.filter(isAlive)
  for (const x of left) kill(x, 'SIGKILL')
  await pollUntil(() => !left.some(isAlive), Date.now() + KILL_GRACE_MS)
  return targets.map(({ startTicks, ...x }) => x as unknown as T & { pid: number })
}

export const childProcessRunner: ProcessRunner = {
  spawn: (spec, cb) => new ChildHandle(spec, cb),
  reap,
  reapMarked
}
