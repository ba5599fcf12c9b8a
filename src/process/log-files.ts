// What plugins print, in files that outlive the daemon: <dir>/<name>.log, rotated by size to
// <name>.log.1 ... <name>.log.N. A line only costs the event loop a string and a push: lines are
// queued per plugin and appended in one write per plugin per flush, through the thread pool
// (fs/promises), never with a synchronous write. Writes of one plugin run one after the other.
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { LogLine } from './log-ring.js'

/** Queued lines are written this often (milliseconds). */
export const FLUSH_INTERVAL_MS = 500
/** A plugin with this many characters queued is written at once, not at the next interval. */
const EAGER_FLUSH_CHARS = 256 * 1024
/** Bytes read from the end of a file at a time when looking for its last lines. */
const TAIL_CHUNK_BYTES = 64 * 1024

export interface LogFilesOptions {
  /** The folder of the files (created at the first write). */
  dir: string
  /** A file is rotated before a write that would take it past this (bytes; config logs.maxFileMb). */
  maxFileBytes: number
  /** Rotated files kept per plugin (config logs.keepFiles). */
  keepFiles: number
  /** A write or rotation failed (reported once per plugin until a write succeeds again). */
  onError: (err: Error, plugin: string) => void
  flushIntervalMs?: number
}

export interface LogFiles {
  /** Queues one line of a plugin's output. */
  append: (plugin: string, entry: LogLine) => void
  /** Writes what is queued, for one plugin or for all; resolves once it is in the files. */
  flush: (plugin?: string) => Promise<void>
  /** The last `n` lines of the plugin's files (the current one, then the rotated ones), oldest first, after writing what is queued. */
  tail: (plugin: string, n: number) => Promise<LogLine[]>
  /** Writes what is queued and closes the plugin's file (it was unloaded). */
  release: (plugin: string) => Promise<void>
  /** The path of a plugin's current file. */
  fileOf: (plugin: string) => string
  /** Writes everything queued and closes every file. */
  close: () => Promise<void>
}

/** One line of a file: `<ISO time> <stdout|stderr> <text>`, readable with tail -f and parsed back by tail(). */
export function formatFileLine (entry: LogLine): string {
  return `${new Date(entry.at).toISOString()} ${entry.stream} ${entry.line}\n`
}

const FILE_LINE = /^(\S+) (stdout|stderr) (.*)$/s

export function parseFileLine (text: string): LogLine | undefined {
  const m = FILE_LINE.exec(text)
  if (!m) return undefined
  const at = Date.parse(m[1])
  if (Number.isNaN(at)) return undefined
  return { at, stream: m[2] as LogLine['stream'], line: m[3] }
}

interface PluginFile {
  readonly plugin: string
  readonly file: string
  queue: string[]
  queuedChars: number
  handle: FileHandle | undefined
  size: number
  /** The last write (or read) of this plugin's files; the next one runs after it. */
  chain: Promise<void>
  failing: boolean
}

export function createLogFiles (opts: LogFilesOptions): LogFiles {
  const { dir, maxFileBytes, keepFiles } = opts
  const files = new Map<string, PluginFile>()
  const dirty = new Set<PluginFile>()
  let madeDir: Promise<unknown> | undefined
  let closed = false

  const fileOf = (plugin: string): string => path.join(dir, `${plugin}.log`)
  const entryOf = (plugin: string): PluginFile => {
    let f = files.get(plugin)
    if (f === undefined) {
      f = { plugin, file: fileOf(plugin), queue: [], queuedChars: 0, handle: undefined, size: 0, chain: Promise.resolve(), failing: false }
      files.set(plugin, f)
    }
    return f
  }
  /** Runs `step` after every earlier write of the plugin; a failure is reported, never thrown. */
  const enqueue = (plugin: string, f: PluginFile, step: () => Promise<void>): Promise<void> => {
    f.chain = f.chain.then(step).then(() => { f.failing = false }, (err: Error) => {
      if (!f.failing) opts.onError(err, plugin)
      f.failing = true
      // A handle in an unknown state (a rotation half done) is opened afresh next time.
      const h = f.handle
      f.handle = undefined
      return h?.close().catch(() => {})
    })
    return f.chain
  }

  const rotate = async (f: PluginFile): Promise<void> => {
    await f.handle?.close()
    f.handle = undefined
    if (keepFiles === 0) {
      await rm(f.file, { force: true })
    } else {
      for (let i = keepFiles - 1; i >= 1; i--) await rename(`${f.file}.${i}`, `${f.file}.${i + 1}`).catch(ignoreMissing)
      await rename(f.file, `${f.file}.1`).catch(ignoreMissing)
    }
  }

  const write = async (f: PluginFile, text: string): Promise<void> => {
    const data = Buffer.from(text, 'utf8')
    if (f.handle === undefined) {
      madeDir ??= mkdir(dir, { recursive: true })
      await madeDir
      f.handle = await open(f.file, 'a')
      f.size = (await f.handle.stat()).size
    }
    if (f.size > 0 && f.size + data.length > maxFileBytes) {
      await rotate(f)
      f.handle = await open(f.file, 'a')
      f.size = 0
    }
    await f.handle.appendFile(data)
    f.size += data.length
  }

  const flushOne = (plugin: string, f: PluginFile): Promise<void> => {
    dirty.delete(f)
    if (f.queue.length === 0) return f.chain
    const text = f.queue.join('')
    f.queue = []
    f.queuedChars = 0
    return enqueue(plugin, f, () => write(f, text))
  }
  const flushAll = (): Promise<unknown> => Promise.all([...files].map(([plugin, f]) => flushOne(plugin, f)))

  const timer = setInterval(() => {
    for (const f of dirty) void flushOne(f.plugin, f)
  }, opts.flushIntervalMs ?? FLUSH_INTERVAL_MS)
  timer.unref()

  const readTail = async (f: PluginFile, n: number): Promise<LogLine[]> => {
    const found: LogLine[][] = []
    let count = 0
    for (let i = 0; i <= keepFiles && count < n; i++) {
      const lines = await lastLines(i === 0 ? f.file : `${f.file}.${i}`, n - count)
      found.unshift(lines)
      count += lines.length
    }
    return found.flat()
  }

  return {
    append (plugin, entry) {
      if (closed) return
      const f = entryOf(plugin)
      const text = formatFileLine(entry)
      f.queue.push(text)
      f.queuedChars += text.length
      dirty.add(f)
      if (f.queuedChars >= EAGER_FLUSH_CHARS) void flushOne(plugin, f)
    },
    flush (plugin) {
      if (plugin === undefined) return flushAll().then(() => {})
      const f = files.get(plugin)
      return f === undefined ? Promise.resolve() : flushOne(plugin, f)
    },
    async tail (plugin, n) {
      const f = entryOf(plugin)
      let lines: LogLine[] = []
      void flushOne(plugin, f)
      await enqueue(plugin, f, async () => { lines = await readTail(f, n) })
      return lines
    },
    async release (plugin) {
      const f = files.get(plugin)
      if (f === undefined) return
      void flushOne(plugin, f)
      await enqueue(plugin, f, async () => {
        await f.handle?.close()
        f.handle = undefined
      })
      if (f.queue.length === 0) files.delete(plugin)
    },
    fileOf,
    async close () {
      if (closed) return
      closed = true
      clearInterval(timer)
      await flushAll()
      await Promise.all([...files].map(([plugin, f]) => enqueue(plugin, f, async () => {
        await f.handle?.close()
        f.handle = undefined
      })))
    }
  }
}

function ignoreMissing (err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err
}

/** The last `n` lines of a file (none when it does not exist), read backwards a chunk at a time. */
async function lastLines (file: string, n: number): Promise<LogLine[]> {
  let handle: FileHandle
  try {
    handle = await open(file, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  try {
    let pos = (await handle.stat()).size
    const chunks: Buffer[] = []
    let newlines = 0
    // n lines need n + 1 newlines before the first of them (or the start of the file).
    while (pos > 0 && newlines <= n) {
      const size = Math.min(TAIL_CHUNK_BYTES, pos)
      pos -= size
      const buf = Buffer.alloc(size)
      await handle.read(buf, 0, size, pos)
      for (let i = 0; i < size; i++) if (buf[i] === 10) newlines++
      chunks.unshift(buf)
    }
    const text = Buffer.concat(chunks).toString('utf8')
    const rows = text.split('\n')
    if (rows.at(-1) === '') rows.pop()
    // Unless the file was read from its start, the first row is the end of an earlier line.
    if (pos > 0) rows.shift()
    const out: LogLine[] = []
    for (const row of rows.slice(-n)) {
      const entry = parseFileLine(row)
      if (entry !== undefined) out.push(entry)
    }
    return out
  } finally {
    await handle.close()
  }
}

/**
 * The last `n` lines a plugin printed: from its ring when that holds `n`, else from its files
 * (which also hold what earlier daemons saw), unless they hold fewer than the ring (a write failed).
 */
export async function recentLines (ring: LogLine[], n: number, files: LogFiles, plugin: string): Promise<LogLine[]> {
  if (ring.length >= n) return ring
  const fromFiles = await files.tail(plugin, n)
  return fromFiles.length >= ring.length ? fromFiles : ring
}
