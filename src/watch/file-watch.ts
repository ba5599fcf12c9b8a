// Folders watched with fs.watch (one inotify watch per folder) and a debounce: a burst of writes
// (an editor saving, a tool copying a tree) becomes one call with every name that changed.
import { readdirSync, watch, type FSWatcher } from 'node:fs'
import path from 'node:path'

/**
 * Editors' swap, backup and lock files and temp files (the daemon's own included): never a
 * change worth acting on. vim: .x.swp/.swx/.swo, x~ and its write test file 4913; emacs: .#x
 * and #x#; everything else: *.tmp.
 */
export function isScratchFile (name: string): boolean {
  const base = path.basename(name)
  return /\.sw[a-p]$/.test(base) || base.endsWith('~') || base.endsWith('.tmp') || base.startsWith('.#') ||
    /^#.*#$/.test(base) || base === '4913'
}

/** Folders a recursive watch does not descend into. */
const SKIPPED_FOLDERS = new Set(['node_modules', '.git'])

export interface FolderWatchOptions {
  /** Also watch every folder below (but node_modules and .git), including folders created later. */
  recursive?: boolean
  /** Quiet time after the last change before onChanges runs (milliseconds). */
  debounceMs: number
  /** Whether a changed name (relative to the folder, with '/') counts. */
  accept: (name: string) => boolean
  /** The names that changed in the burst; null when the kernel did not say which. */
  onChanges: (names: Set<string> | null) => void
  onError: (err: Error) => void
}

export interface FolderWatch {
  close: () => void
}

/** Watches `dir`; throws when it cannot be watched (it does not exist). */
export function watchFolder (dir: string, opts: FolderWatchOptions): FolderWatch {
  const watchers = new Map<string, FSWatcher>()
  let pending: Set<string> | null = new Set()
  let timer: NodeJS.Timeout | undefined
  let closed = false

  const fire = (): void => {
    timer = undefined
    const names = pending
    pending = new Set()
    if (closed || (names !== null && names.size === 0)) return
    opts.onChanges(names)
  }
  const changed = (name: string | null): void => {
    if (name !== null && !opts.accept(name)) return
    if (name === null) pending = null
    else pending?.add(name)
    if (timer) clearTimeout(timer)
    timer = setTimeout(fire, opts.debounceMs)
  }
  const add = (rel: string): void => {
    if (closed || watchers.has(rel)) return
    const abs = path.join(dir, rel)
    const w = watch(abs, { persistent: false }, (_event, filename) => {
      if (filename === null) return changed(null)
      const name = rel === '' ? String(filename) : `${rel}/${String(filename)}`
      // A folder created below a recursive watch is watched from now on.
      if (opts.recursive) addTree(name, false, true)
      changed(name)
    })
    w.on('error', (err) => {
      // The folder itself went away: its watch ends, the parent reports the removal.
      w.close()
      watchers.delete(rel)
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && rel === '') opts.onError(err)
    })
    watchers.set(rel, w)
  }
  /** Watches `rel` and the folders below it; `announce`: files already in them (written before the watch began) count as changed. */
  const addTree = (rel: string, top: boolean, announce = false): void => {
    if (watchers.has(rel)) return
    let entries
    try {
      entries = readdirSync(path.join(dir, rel), { withFileTypes: true })
    } catch (err) {
      if (top) throw err
      return // a file, or gone already
    }
    add(rel)
    for (const e of entries) {
      const name = rel === '' ? e.name : `${rel}/${e.name}`
      if (e.isDirectory()) {
        if (!SKIPPED_FOLDERS.has(e.name)) addTree(name, false, announce)
      } else if (announce) changed(name)
    }
  }

  if (opts.recursive) addTree('', true)
  else add('')
  return {
    close () {
      closed = true
      if (timer) clearTimeout(timer)
      for (const w of watchers.values()) w.close()
      watchers.clear()
    }
  }
}

/**
 * A glob as a regular expression over '/'-separated relative paths: `*` and `?` stay within
 * one folder, `**` spans folders, `{a,b}` is either.
 */
export function globRegExp (glob: string): RegExp {
  let re = ''
  let braces = 0
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]
    if (c === '*' && glob[i + 1] === '*') {
      const slash = glob[i + 2] === '/'
      re += slash ? '(?:.*/)?' : '.*'
      i += slash ? 2 : 1
    } else if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else if (c === '{') { braces++; re += '(?:' } else if (c === '}' && braces > 0) { braces--; re += ')' } else if (c === ',' && braces > 0) re += '|'
    else re += c.replace(/[.+^$()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

/** The folder part of a glob before its first wildcard, and the rest. */
export function splitGlob (glob: string): { base: string, rest: string } {
  const parts = glob.split('/')
  const at = parts.findIndex((p) => /[*?{]/.test(p))
  if (at < 0) return { base: parts.slice(0, -1).join('/'), rest: parts[parts.length - 1] }
  return { base: parts.slice(0, at).join('/'), rest: parts.slice(at).join('/') }
}
