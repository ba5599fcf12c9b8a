// One daemon per data folder. <dataDir>/plugvisor.lock names the daemon holding the folder: its
// pid, the start time of that pid (/proc/<pid>/stat) and the boot id. It is created whole and at
// once (written to a private file, then link(2)ed to its name, which fails if the name exists),
// so a second daemon either gets the folder or reads a complete lock. A lock whose pid is gone,
// or now belongs to another process (another start time, another boot), is stale and taken over.
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { bootId, readProcStat } from '../process/proc.js'
import { errors } from '../errors.js'

export const LOCK_FILE = 'plugvisor.lock'

/** Who holds a data folder. */
export interface LockHolder { pid: number, startTicks: number | null, bootId: string }

export interface DataDirLock {
  readonly file: string
  /** Removes the lock file if it is still this daemon's. */
  release: () => void
}

export interface LockOptions {
  /** Called when a stale lock is taken over: who held it and why it is stale. */
  onStale?: (holder: LockHolder | undefined, why: string) => void
}

/** Takes the data folder (creating it) or throws PLUGVISOR_DATA_DIR_LOCKED naming the holder's pid. */
export function lockDataDir (dataDir: string, opts: LockOptions = {}): DataDirLock {
  mkdirSync(dataDir, { recursive: true })
  const file = path.join(dataDir, LOCK_FILE)
  const me: LockHolder = { pid: process.pid, startTicks: readProcStat(process.pid)?.startTicks ?? null, bootId: bootId() }
  const text = JSON.stringify(me) + '\n'
  const mine = `${file}.${process.pid}.${Date.now()}.tmp`
  writeFileSync(mine, text, { flag: 'wx' })
  try {
    // Each round either takes the lock, or finds a live holder, or removes one stale lock; two
    // daemons taking over the same stale lock race on link(2), and one of them loses it there.
    for (let round = 0; round < 5; round++) {
      try {
        linkSync(mine, file)
        return {
          file,
          release: () => {
            if (readText(file) === text) {
              try { unlinkSync(file) } catch {}
            }
          }
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const held = readText(file)
      if (held === undefined) continue // released in between
      const holder = parseHolder(held)
      const why = holder === undefined ? 'the lock file is not one plugvisor wrote' : staleness(holder)
      if (why === undefined) throw new errors.DataDirLocked(path.resolve(dataDir), holder!.pid, file)
      // Removed only if it is still the stale lock just judged (not a lock taken meanwhile).
      if (readText(file) !== held) continue
      try { unlinkSync(file) } catch {}
      opts.onStale?.(holder, why)
    }
    throw new errors.DataDirLocked(path.resolve(dataDir), parseHolder(readText(file) ?? '')?.pid ?? 'unknown', file)
  } finally {
    try { unlinkSync(mine) } catch {}
  }
}

/** Why the holder no longer holds the folder; undefined while it does. */
function staleness (h: LockHolder): string | undefined {
  if (h.bootId !== bootId()) return `pid ${h.pid} ran before the last boot`
  const st = readProcStat(h.pid)
  if (st === undefined || st.state === 'Z' || st.state === 'X') return `pid ${h.pid} is gone`
  if (h.startTicks !== null && st.startTicks !== h.startTicks) return `pid ${h.pid} now belongs to another process (another start time)`
  return undefined
}

function readText (file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}

function parseHolder (text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text) as Partial<LockHolder>
    if (Number.isInteger(h.pid) && typeof h.bootId === 'string') return { pid: h.pid!, startTicks: typeof h.startTicks === 'number' ? h.startTicks : null, bootId: h.bootId }
  } catch {}
  return undefined
}
