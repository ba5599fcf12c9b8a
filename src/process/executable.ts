// Manifest `sha256`: which file a command runs (as spawn resolves it: a path against cwd, a bare
// name on PATH) and whether its digest is the pinned one. Used before every spawn and by
// `plugvisor validate`.
import { createHash } from 'node:crypto'
import { accessSync, constants, createReadStream } from 'node:fs'
import path from 'node:path'
import type { ConfigProblem, LoadedManifest } from '../config/load.js'

/** The absolute path `command` runs, or undefined when there is no such executable. */
export function resolveExecutable (command: string, cwd: string, searchPath: string | undefined): string | undefined {
  const candidates = command.includes('/')
    ? [path.resolve(cwd, command)]
    : (searchPath ?? '').split(':').filter((d) => d !== '').map((d) => path.resolve(cwd, d, command))
  return candidates.find((f) => {
    try { accessSync(f, constants.X_OK); return true } catch { return false }
  })
}

export function sha256OfFile (file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    createReadStream(file).on('error', reject).on('data', (c) => hash.update(c)).on('end', () => resolve(hash.digest('hex')))
  })
}

export type ChecksumVerdict = { ok: true, file: string } | { ok: false, file: string | undefined, actual: string | undefined, reason: string }

/** Compares the executable of `command` with the pinned hex digest (case does not matter). */
export async function verifyExecutable (command: string, cwd: string, searchPath: string | undefined, expected: string): Promise<ChecksumVerdict> {
  const file = resolveExecutable(command, cwd, searchPath)
  if (file === undefined) return { ok: false, file, actual: undefined, reason: `cannot verify sha256: no executable ${command} (cwd ${cwd})` }
  let actual: string
  try {
    actual = await sha256OfFile(file)
  } catch (err) {
    return { ok: false, file, actual: undefined, reason: `cannot verify sha256 of ${file}: ${(err as Error).message}` }
  }
  if (actual === expected.toLowerCase()) return { ok: true, file }
  return { ok: false, file, actual, reason: `sha256 of ${file} is ${actual}, the manifest pins ${expected.toLowerCase()}` }
}

/** `plugvisor validate`: every manifest whose executable is not the one its sha256 pins, as problems. */
export async function checksumProblems (manifests: (LoadedManifest & { inlineIndex?: number })[]): Promise<ConfigProblem[]> {
  const problems: ConfigProblem[] = []
  for (const m of manifests) {
    if (m.sha256 === undefined) continue
    const v = await verifyExecutable(m.command, m.cwd, m.env.PATH ?? process.env.PATH, m.sha256)
    if (!v.ok) problems.push({ file: m.source, path: `${m.inlineIndex !== undefined ? `/plugins/${m.inlineIndex}` : ''}/sha256`, reason: v.reason })
  }
  return problems
}
