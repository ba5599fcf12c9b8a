// The mark every plugin process carries in its environment: which daemon started it, and for
// which data folder. Descendants inherit it (even those that leave the process group with
// setsid), so processes a record missed are still found by reading /proc/<pid>/environ.
import { createHash, randomUUID } from 'node:crypto'
import { realpathSync } from 'node:fs'
import path from 'node:path'

export const INSTANCE_VAR = 'PLUGVISOR_INSTANCE'

/** `<data folder key>.<random id>`: the key is the same for every daemon of one data folder. */
export function newInstanceMarker (dataDir: string): string {
  let dir = path.resolve(dataDir)
  try { dir = realpathSync(dir) } catch {}
  const key = createHash('sha256').update(dir).digest('hex').slice(0, 16)
  return `${key}.${randomUUID()}`
}

/** The marker a process environment carries, if any. */
export function markerOf (env: string[]): string | undefined {
  const prefix = INSTANCE_VAR + '='
  return env.find((e) => e.startsWith(prefix))?.slice(prefix.length)
}

/** Whether `marker` comes from another daemon of the same data folder than `ours`. */
export function isEarlierDaemon (marker: string | undefined, ours: string): boolean {
  if (marker === undefined || marker === ours) return false
  const key = ours.slice(0, ours.indexOf('.') + 1)
  return marker.startsWith(key)
}
