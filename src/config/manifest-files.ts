// Manifest files written at run time (POST /plugins, PUT /plugins/:name/config, DELETE): always
// a temp file in the same folder, flushed, then renamed over the target, so a reload, a restart
// or a crash sees the old file or the new one, never half of one. The temp and retired names
// do not end in .yaml/.yml/.json, so the loader never picks them up.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { parseDocument } from 'yaml'

/** Where POST /plugins writes a manifest: `<pluginsDir>/<name>.json`. */
export function manifestFileFor (pluginsDir: string, name: string): string {
  return path.join(pluginsDir, `${name}.json`)
}

/**
 * Replaces (or creates) `file` with `text` atomically; a new file is readable by its owner only
 * (it may hold secrets). `durable: false` skips the flushes to disk: readers still see the old
 * file or the new one, but a crash may leave the old one (for files rewritten at every start).
 */
export function writeFileAtomic (file: string, text: string, { durable = true }: { durable?: boolean } = {}): void {
  const dir = path.dirname(file)
  mkdirSync(dir, { recursive: true })
  let mode = 0o600
  try { mode = statSync(file).mode & 0o777 } catch {}
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  const fd = openSync(temp, 'wx', mode)
  try {
    writeSync(fd, text)
    if (durable) fsyncSync(fd)
  } catch (err) {
    closeSync(fd)
    try { unlinkSync(temp) } catch {}
    throw err
  }
  closeSync(fd)
  try {
    renameSync(temp, file)
  } catch (err) {
    try { unlinkSync(temp) } catch {}
    throw err
  }
  // The rename itself reaches the disk with the folder's metadata.
  if (!durable) return
  try {
    const dirFd = openSync(dir, 'r')
    try { fsyncSync(dirFd) } finally { closeSync(dirFd) }
  } catch {}
}

/** A new manifest file's text (JSON, two-space indent). */
export function manifestText (doc: unknown): string {
  return JSON.stringify(doc, null, 2) + '\n'
}

/**
 * The text of a manifest file with its `config` replaced. YAML files are edited as a document,
 * so comments and the order of the other keys stay as the operator wrote them.
 */
export function withConfig (file: string, config: unknown): string {
  const text = readFileSync(file, 'utf8')
  if (file.endsWith('.json')) {
    const doc = JSON.parse(text) as Record<string, unknown>
    return manifestText({ ...doc, config })
  }
  const doc = parseDocument(text)
  doc.set('config', config)
  return String(doc)
}

/**
 * Takes a manifest file out of the plugins folder by renaming it to `<file>.deleted` (replacing
 * an older one): the loader ignores it, and renaming it back restores the plugin at the next reload.
 */
export function retireManifestFile (file: string): string {
  const retired = `${file}.deleted`
  renameSync(file, retired)
  return retired
}
