// Whether a manifest's `requires.plugvisor` range admits this daemon. The range is npm's semver
// syntax, checked with the semver package (the one npm itself uses), so a plugin author's
// range means here what it means in their package.json.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import semver from 'semver'
import { packageRoot } from '../paths.js'
import type { Manifest } from './schema.js'
import type { ConfigProblem } from './load.js'

let cachedVersion: string | undefined
/** The version of this plugvisor, from its package.json. */
export function daemonVersion (): string {
  cachedVersion ??= (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version
  return cachedVersion
}

/** A problem when the manifest needs another plugvisor (or writes a range semver cannot read). */
export function compatibilityProblems (m: Pick<Manifest, 'requires'>, file: string, prefix: string, version = daemonVersion()): ConfigProblem[] {
  const range = m.requires?.plugvisor
  if (range === undefined) return []
  const at = `${prefix}/requires/plugvisor`
  if (semver.validRange(range) === null) return [{ file, path: at, reason: `'${range}' is not a semver range (e.g. '>=0.1 <2', '^1.2')` }]
  // Pre-releases of this daemon count as their version: a 1.0.0-rc.1 daemon satisfies '>=0.9'.
  if (!semver.satisfies(version, range, { includePrerelease: true })) {
    return [{ file, path: at, reason: `needs plugvisor ${range}; this is plugvisor ${version}` }]
  }
  return []
}
