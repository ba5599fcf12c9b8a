// Watches the main config file and the plugins folder and runs the same reload as SIGHUP when
// one of them changes. Only manifest names count (*.yaml, *.yml, *.json, not editors' scratch
// files), and a file as the daemon itself last wrote it (POST /plugins, PUT .../config,
// DELETE) is no change: the API applied it already.
import { statSync } from 'node:fs'
import path from 'node:path'
import { MANIFEST_EXT } from '../config/load.js'
import { isScratchFile, watchFolder, type FolderWatch } from './file-watch.js'

/** Files as the daemon wrote them, so their own change events cause no reload. */
export interface OwnWrites {
  /** Call right after writing, renaming or removing `file`. */
  note: (file: string) => void
  /** Whether `file` is still exactly as the daemon left it (then forgotten once it is not). */
  isOwn: (file: string) => boolean
}

/** What identifies one version of a file: inode, size and times, or its absence. */
function signature (file: string): string {
  try {
    const s = statSync(file)
    return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`
  } catch {
    return 'absent'
  }
}

export function createOwnWrites (): OwnWrites {
  const written = new Map<string, string>()
  return {
    note (file) { written.set(file, signature(file)) },
    isOwn (file) {
      const sig = written.get(file)
      if (sig === undefined) return false
      if (sig === signature(file)) return true
      written.delete(file)
      return false
    }
  }
}

export interface ConfigWatcherOptions {
  configFile: string
  /** The plugins folder as it is now (a reload may move it). */
  pluginsDir: () => string
  debounceMs: number
  ownWrites: OwnWrites
  /** Runs the reload; the watcher calls it once per burst of changes. */
  reload: (files: string[]) => Promise<void>
  onError: (err: Error, dir: string) => void
}

export interface ConfigWatcher {
  /** Watches the plugins folder again if a reload moved it (or it was created). */
  refresh: () => void
  close: () => void
}

export function createConfigWatcher (opts: ConfigWatcherOptions): ConfigWatcher {
  const configDir = path.dirname(opts.configFile)
  const configName = path.basename(opts.configFile)
  const watches = new Map<string, FolderWatch>()
  let closed = false

  const onChanges = (dir: string, names: Set<string> | null): void => {
    const files = names === null ? [dir] : [...names].map((n) => path.join(dir, n)).filter((f) => !opts.ownWrites.isOwn(f))
    if (files.length > 0 && !closed) void opts.reload(files.sort()).finally(refresh)
  }
  // One watch per folder: the config file's folder (editors replace the file, so its own inode
  // is not watched) and the plugins folder, which may be the same folder.
  const accept = (dir: string) => (name: string): boolean => {
    if (isScratchFile(name)) return false
    if (dir === configDir && name === configName) return true
    return dir === opts.pluginsDir() && MANIFEST_EXT.test(name)
  }
  const refresh = (): void => {
    if (closed) return
    const wanted = new Set([configDir, opts.pluginsDir()])
    for (const [dir, w] of watches) if (!wanted.has(dir)) { w.close(); watches.delete(dir) }
    for (const dir of wanted) {
      if (watches.has(dir)) continue
      try {
        watches.set(dir, watchFolder(dir, { debounceMs: opts.debounceMs, accept: accept(dir), onChanges: (names) => onChanges(dir, names), onError: (err) => opts.onError(err, dir) }))
      } catch (err) {
        // A plugins folder that does not exist (yet) is watched from the next reload on.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') opts.onError(err as Error, dir)
      }
    }
  }
  refresh()
  return {
    refresh,
    close () {
      closed = true
      for (const w of watches.values()) w.close()
      watches.clear()
    }
  }
}
