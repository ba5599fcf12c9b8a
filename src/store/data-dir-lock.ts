// One daemon per data folder. <dataDir>/plugvisor.lock names the daemon holding the folder: a
// symbolic link whose target is `<pid>:<start time of that pid>:<boot id>` (`ls -l` shows it).
// symlink(2) creates it whole and at once, and fails if the name exists, so a second daemon
// either gets the folder or reads a complete lock; and a short link needs no data block, so it
// is taken on a full disk too (a daemon restarted there must still start its plugins). A lock
// whose pid is gone, or now belongs to another process (another start time or boot), is stale
// and taken over.
import { mkdirSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs'
import path from 'node:path'
import { bootId, readProcStat } from '../process/proc.js'
import { errors } from '../errors.js'

export const LOCK_FILE = 'plugvisor.lock'

/** Who holds a data folder. */
export interface LockHolder { pid: number, startTicks: number | null, bootId: string }

export interface DataDirLock {
  readonly file: string
  /** Removes the lock if it is still this daemon's. */
  release: () => void
}

export interface LockOptions {
  /** Called when a stale lock is taken over: who held it (undefined: not a lock plugvisor made) and why it is stale. */
  onStale?: (holder: LockHolder | undefined, why: string) => void
}

/** The lock's text: what the link points to. */
export function formatHolder (h: LockHolder): string {
  return `${h.pid}:${h.startTicks ?? ''}:${h.bootId}`
}

/** Takes the data folder (creating it) or throws PLUGVISOR_DATA_DIR_LOCKED naming the holder's pid. */
export function lockDataDir (dataDir: string, opts: LockOptions = {}): DataDirLock {
  mkdirSync(dataDir, { recursive: true })
  const file = path.join(dataDir, LOCK_FILE)
  const text = formatHolder({ pid: process.pid, startTicks: readProcStat(process.pid)?.startTicks ?? null, bootId: bootId() })
  // Each round either takes the lock, or finds a live holder, or removes one stale lock. Two
  // daemons taking over the same stale lock race on symlink(2) and one loses there; only if one
  // removes the stale lock and takes its own between the other's last look and its unlink (a
  // window of microseconds, both started within it) could the second remove the first's lock.
  for (let round = 0; round < 5; round++) {
    try {
      symlinkSync(text, file)
      return {
        file,
        release: () => {
          if (readLock(file) === text) {
            try { unlinkSync(file) } catch {}
          }
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const held = readLock(file)
    if (held === undefined) continue // released in between
    const holder = parseHolder(held)
    const why = holder === undefined ? `${file} is not a lock plugvisor made` : staleness(holder)
    if (why === undefined) throw new errors.DataDirLocked(path.resolve(dataDir), holder!.pid, file)
    // Removed only if it is still the stale lock just judged (not one taken meanwhile).
    if (readLock(file) !== held) continue
    try { unlinkSync(file) } catch {}
    opts.onStale?.(holder, why)
  }
  throw new errors.DataDirLocked(path.resolve(dataDir), parseHolder(readLock(file) ?? '')?.pid ?? 'unknown', file)
}

/** Why the holder no longer holds the folder; undefined while it does. */
function staleness (h: LockHolder): string | undefined {
  if (h.bootId !== bootId()) return `pid ${h.pid} ran before the last boot`
  const st = readProcStat(h.pid)
  if (st === undefined || st.state === 'Z' || st.state === 'X') return `pid ${h.pid} is gone`
  if (h.startTicks !== null && st.startTicks !== h.startTicks) return `pid ${h.pid} now belongs to another process (another start time)`
  return undefined
}

/** The link's target; '' for something else than a link (a file left there by hand); undefined when there is none. */
function readLock (file: string): string | undefined {
  try {
    return readlinkSync(file)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : ''
  }
}

export function parseHolder (text: string): LockHolder | undefined {
  const m = /^(\d+):(\d*):(\S+)$/.exec(text)
  if (!m) return undefined
  return { pid: Number(m[1]), startTicks: m[2] === '' ? null : Number(m[2]), bootId: m[3] }
}
