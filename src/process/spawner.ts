// Plugins spawned through plugvisor-spawner (native/spawner.c), a small C process the daemon
// starts once: it forks and execs each plugin, reads their output and reaps them, and tells the
// daemon over one pipe. Forking from it does not copy the daemon's page tables on every spawn,
// and the daemon's event loop carries one pipe instead of two per plugin. Stops, process groups,
// escaped descendants and leftovers work as with Node's own spawn (GroupHandle, reap).
import { spawn as spawnChild, type ChildProcess } from 'node:child_process'
import { accessSync, constants as fsConstants } from 'node:fs'
import { constants as osConstants } from 'node:os'
import { findByEnviron, signalGroup } from './proc.js'
import { childProcessRunner, GroupHandle, type ProcessCallbacks, type ProcessRunner, type SpawnSpec } from './runner.js'

/** Frame types, as native/spawner.c numbers them. */
const SPAWN = 1
const SIGNAL = 2
const SPAWNED = 1
const FAILED = 2
const OUTPUT = 3
const CLOSED = 4
const EXITED = 5
/** u32 length, u8 type, u32 id. */
const HEAD = 9

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]))
/** Number to name; of two names for one number (SIGABRT and SIGIOT, SIGIO and SIGPOLL) the first, as Node reports it. */
const signalNames = new Map<number, string>()
for (const [name, n] of Object.entries(osConstants.signals)) if (!signalNames.has(n)) signalNames.set(n, name)

/** Node's own spawn error for the same failure: `spawn <command> ENOENT`, with code and errno. */
function spawnFailure (spec: SpawnSpec, errno: number): NodeJS.ErrnoException {
  const code = errnoNames.get(errno) ?? `E${errno}`
  const err: NodeJS.ErrnoException = new Error(`spawn ${spec.command} ${code}`)
  err.code = code
  err.errno = -errno
  err.syscall = `spawn ${spec.command}`
  err.path = spec.command
  return err
}

/** A raw wait status as Node reports an exit: the code, or the signal's name. */
function decodeStatus (status: number): { code: number | null, signal: string | null } {
  const sig = status & 0x7f
  if (sig === 0) return { code: (status >> 8) & 0xff, signal: null }
  return { code: null, signal: signalNames.get(sig) ?? `SIG${sig}` }
}

function spawnRequest (id: number, spec: SpawnSpec): Buffer {
  const env = Object.entries(spec.env).map(([k, v]) => `${k}=${v}`)
  const strings = [spec.command, spec.cwd, spec.command, ...spec.args, ...env]
  let size = HEAD + 8
  for (const s of strings) size += Buffer.byteLength(s) + 1
  const buf = Buffer.allocUnsafe(size)
  buf.writeUInt32LE(size - 4, 0)
  buf.writeUInt8(SPAWN, 4)
  buf.writeUInt32LE(id, 5)
  buf.writeUInt32LE(1 + spec.args.length, 9)
  buf.writeUInt32LE(env.length, 13)
  let at = 17
  for (const s of strings) {
    at += buf.write(s, at)
    buf[at++] = 0
  }
  return buf
}

class SpawnedHandle extends GroupHandle {
  readonly #spec: SpawnSpec
  readonly #signal: (pgid: number, signal: NodeJS.Signals) => void
  constructor (spec: SpawnSpec, cb: ProcessCallbacks, signal: (pgid: number, signal: NodeJS.Signals) => void) {
    super(spec, cb)
    this.#spec = spec
    this.#signal = signal
  }

  protected override signalGroup (pgid: number, signal: NodeJS.Signals): void { this.#signal(pgid, signal) }

  /** One frame of the spawner about this plugin. */
  frame (type: number, body: Buffer): void {
    switch (type) {
      case SPAWNED: {
        const startTicks = Number(body.readBigUInt64LE(4))
        this.created(body.readInt32LE(0), startTicks === 0 ? null : startTicks)
        this.announce()
        break
      }
      case FAILED:
        this.failed(spawnFailure(this.#spec, body.readInt32LE(0)))
        break
      case OUTPUT: {
        // The line splitter keeps an unfinished line's bytes until its newline comes: a copy,
        // so that they do not hold on to the whole read the frame came in (other plugins' too).
        const data = body.subarray(1)
        this.output(body[0] === 1 ? 'stdout' : 'stderr', data[data.length - 1] === 10 ? data : Buffer.from(data))
        break
      }
      case CLOSED:
        this.outputEnd(body[0] === 1 ? 'stdout' : 'stderr')
        break
      case EXITED: {
        const { code, signal } = decodeStatus(body.readInt32LE(0))
        this.leaderExited(code, signal, false, body.length >= 8 && body.readInt32LE(4) === 0)
        break
      }
    }
  }

  /**
   * The spawner is gone and nothing reaps this plugin or reads its output any more: what is left
   * of its group is killed, as after a crash (the supervisor restarts it through a new spawner).
   * A spawn not yet answered (the caller killed what its tag finds) fails.
   */
  lost (): void {
    if (this.exited) return
    if (this.identity === undefined) {
      const err: NodeJS.ErrnoException = new Error(`spawn ${this.#spec.command}: the process spawner exited before it answered`)
      err.code = 'ESPAWNER'
      this.failed(err)
      return
    }
    this.leaderExited(null, 'SIGKILL', true)
  }
}

export interface SpawnerRunner extends ProcessRunner {
  /** Ends the spawner (the plugins should be stopped by then) and resolves once it exited. */
  close: () => Promise<void>
  /** The spawner's pid while it runs. */
  readonly pid: number | undefined
}

export interface SpawnerOptions {
  binary: string
  /** The spawner exited on its own or wrote a complaint to stderr. */
  onProblem: (message: string) => void
}

/**
 * Frames out of the spawner's pipe: u32 length, u8 type, u32 id, body. A frame cut by the end of
 * a read is completed in a buffer of its own size (the bytes of a read are never copied as a
 * whole); a read that ends inside a frame's length keeps those few bytes.
 */
export class FrameReader {
  readonly #onFrame: (type: number, id: number, body: Buffer) => void
  /** A frame cut by the end of a read, and how many of its bytes came. */
  #pending: Buffer | undefined
  #filled = 0

  constructor (onFrame: (type: number, id: number, body: Buffer) => void) {
    this.#onFrame = onFrame
  }

  push (chunk: Buffer): void {
    let at = 0
    if (this.#pending !== undefined) {
      at = this.#fillPending(chunk)
      if (this.#pending !== undefined) return
    }
    while (chunk.length - at >= HEAD) {
      const len = chunk.readUInt32LE(at)
      if (chunk.length - at < 4 + len) break
      this.#dispatch(chunk, at, len)
      at += 4 + len
    }
    if (at < chunk.length) {
      this.#pending = Buffer.from(chunk.subarray(at))
      this.#filled = this.#pending.length
      if (this.#pending.length >= 4) this.#grow()
    }
  }

  /** Once the length of the pending frame is known: a buffer of the whole frame's size. */
  #grow (): void {
    const p = this.#pending!
    const whole = Buffer.allocUnsafe(4 + p.readUInt32LE(0))
    p.copy(whole, 0, 0, this.#filled)
    this.#pending = whole
  }

  /** Completes the pending frame from the front of `chunk`; returns where the rest begins. */
  #fillPending (chunk: Buffer): number {
    let at = 0
    if (this.#filled < 4) {
      // Its length was cut: take its remaining bytes first.
      const take = Math.min(4 - this.#filled, chunk.length)
      const head = Buffer.concat([this.#pending!.subarray(0, this.#filled), chunk.subarray(0, take)])
      this.#pending = head
      this.#filled = head.length
      at = take
      if (this.#filled < 4) return at
      this.#grow()
    }
    const p = this.#pending!
    const take = Math.min(p.length - this.#filled, chunk.length - at)
    chunk.copy(p, this.#filled, at, at + take)
    this.#filled += take
    at += take
    if (this.#filled < p.length) return at
    this.#pending = undefined
    this.#dispatch(p, 0, p.length - 4)
    return at
  }

  #dispatch (buf: Buffer, at: number, len: number): void {
    if (len < 5) return
    this.#onFrame(buf[at + 4], buf.readUInt32LE(at + 5), buf.subarray(at + HEAD, at + 4 + len))
  }
}

/** One running spawner and the plugins it holds. */
class Connection {
  readonly #child: ChildProcess
  readonly #handles = new Map<number, SpawnedHandle>()
  #nextId = 1
  readonly #frames = new FrameReader((type, id, body) => this.#handles.get(id)?.frame(type, body))
  #closing = false
  readonly exited: Promise<void>

  constructor (binary: string, onProblem: (message: string) => void, onGone: () => void) {
    // An empty environment: it needs none, and so carries neither the daemon's secrets nor
    // anything a search of /proc by environment could take for a plugin.
    this.#child = spawnChild(binary, [], { stdio: ['pipe', 'pipe', 'pipe'], env: {} })
    const child = this.#child
    child.stdout!.on('data', (chunk: Buffer) => this.#frames.push(chunk))
    let complaint = ''
    child.stderr!.setEncoding('utf8').on('data', (text: string) => { if (complaint.length < 4096) complaint += text })
    child.stdin!.on('error', () => {})
    this.exited = new Promise((resolve) => {
      child.once('error', (err) => {
        this.#gone = true
        onProblem(`the process spawner ${binary} could not be started: ${err.message}`)
        this.#lost(onGone)
        resolve()
      })
      child.once('close', (code, signal) => {
        // A spawner that could not be started at all was reported by 'error'.
        if (this.#gone) return resolve()
        this.#gone = true
        if (!this.#closing || code !== 0 || complaint !== '') {
          const how = signal === null ? `with code ${code}` : `on ${signal}`
          onProblem(`the process spawner (pid ${child.pid}) exited ${how}${complaint === '' ? '' : `: ${complaint.trim()}`}; the ${this.#handles.size} plugins it held were killed and restart`)
        }
        // Closed by the daemon on its way out: what still runs stays, as when a daemon exits
        // (the next one stops it by its record).
        if (this.#closing) onGone()
        else this.#lost(onGone)
        resolve()
      })
    })
  }

  get pid (): number | undefined { return this.#child.pid }

  /**
   * The signals of one turn of the event loop go to the spawner in one frame, which sends them:
   * a stop of 500 made 500 kill(2) calls in the daemon, each of which handed the CPU to the
   * process it woke (40 % of a stop's profile). Once the spawner is gone, the daemon sends them.
   */
  readonly #signalGroup = (pgid: number, signal: NodeJS.Signals): void => {
    const n = osConstants.signals[signal]
    if (this.#gone || n === undefined) {
      signalGroup(pgid, signal)
      return
    }
    if (this.#signals.length === 0) setImmediate(this.#sendSignals)
    this.#signals.push({ pgid, signal, n })
  }

  #signals: { pgid: number, signal: NodeJS.Signals, n: number }[] = []
  #gone = false
  readonly #sendSignals = (): void => {
    const list = this.#signals
    this.#signals = []
    if (this.#gone) {
      for (const s of list) signalGroup(s.pgid, s.signal)
      return
    }
    const buf = Buffer.allocUnsafe(HEAD + 8 * list.length)
    buf.writeUInt32LE(buf.length - 4, 0)
    buf.writeUInt8(SIGNAL, 4)
    buf.writeUInt32LE(0, 5)
    list.forEach((s, i) => {
      buf.writeInt32LE(-s.pgid, HEAD + 8 * i)
      buf.writeInt32LE(s.n, HEAD + 8 * i + 4)
    })
    this.#child.stdin!.write(buf)
  }

  spawn (spec: SpawnSpec, cb: ProcessCallbacks): SpawnedHandle {
    const id = this.#nextId++
    const handle = new SpawnedHandle(spec, {
      ...cb,
      onSpawnError: (err) => { this.#handles.delete(id); cb.onSpawnError(err) },
      onExit: (code, signal) => { this.#handles.delete(id); cb.onExit(code, signal) }
    }, this.#signalGroup)
    this.#handles.set(id, handle)
    this.#child.stdin!.write(spawnRequest(id, spec))
    return handle
  }

  #lost (onGone: () => void): void {
    this.#gone = true
    onGone()
    const handles = [...this.#handles.values()]
    this.#handles.clear()
    // A spawn not yet answered may have created its process: one look at every process finds
    // those that carry the tag of such a plugin.
    const unanswered = handles.filter((h) => h.identity === undefined && h.tag.length > 0).map((h) => h.tag)
    if (unanswered.length > 0) {
      for (const st of findByEnviron((env) => unanswered.some((tag) => tag.every((t) => env.includes(t))))) {
        signalGroup(st.pid, 'SIGKILL')
        try { process.kill(st.pid, 'SIGKILL') } catch {}
      }
    }
    for (const h of handles) h.lost()
  }

  close (): Promise<void> {
    this.#closing = true
    this.#child.stdin!.end()
    return this.exited
  }
}

/** The runner that spawns through plugvisor-spawner, started at the first spawn (and again after it died). */
export function createSpawnerRunner (opts: SpawnerOptions): SpawnerRunner {
  let conn: Connection | undefined
  const connection = (): Connection => {
    if (conn !== undefined) return conn
    const c = new Connection(opts.binary, opts.onProblem, () => { if (conn === c) conn = undefined })
    conn = c
    return c
  }
  return {
    spawn: (spec, cb) => connection().spawn(spec, cb),
    reap: childProcessRunner.reap,
    reapMarked: childProcessRunner.reapMarked,
    get pid () { return conn?.pid },
    close: async () => { await conn?.close() }
  }
}

/** Whether the spawner binary is there and executable (it is built with the package when a C compiler is). */
export function spawnerAvailable (binary: string): boolean {
  try {
    accessSync(binary, fsConstants.X_OK)
    return true
  } catch {
    return false
  }
}
