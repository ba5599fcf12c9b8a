// What a reload changes: the manifests that run against the config just read. Pure (no files,
// no processes), so every rule is unit-tested. The driver is src/plugin-changes.ts.
import { checkDependencies, type ConfigProblem, type LoadedConfig, type LoadedManifest } from './load.js'
import type { MainConfig } from './schema.js'

export interface ReloadPlan {
  /** New plugins (loaded, started when desired). */
  added: LoadedManifest[]
  /** Plugins whose manifest is gone (stopped and unloaded). */
  removed: string[]
  /** Plugins whose manifest differs (stopped, swapped, started again when meant to run). */
  changed: LoadedManifest[]
  unchanged: string[]
  /** Plugins whose manifest is invalid now (or needed by one): the running version stays. */
  kept: string[]
  problems: ConfigProblem[]
  /** Top-level keys of the main config that differ and take effect only at a daemon restart. */
  restartRequired: string[]
}

/** Main config keys a reload applies; every other change needs a restart. */
const RELOADABLE_KEYS = new Set(['plugins', 'pluginsDir'])

export function planReload (running: LoadedManifest[], runningConfig: MainConfig, next: LoadedConfig): ReloadPlan {
  const problems = [...next.problems]
  const nextByName = new Map(next.manifests.map((m) => [m.name, m]))
  const runningByName = new Map(running.map((m) => [m.name, m]))
  const added: LoadedManifest[] = []
  const changed = new Map<string, LoadedManifest>()
  const unchanged: string[] = []
  const kept = new Set<string>()
  const removed = new Set<string>()

  for (const m of running) {
    const n = nextByName.get(m.name)
    if (n) {
      if (sameManifest(m, n)) unchanged.push(m.name)
      else changed.set(m.name, n)
    } else if (problems.some((p) => isAbout(p, m, next))) {
      kept.add(m.name)
    } else {
      removed.add(m.name)
    }
  }
  for (const m of next.manifests) if (!runningByName.has(m.name)) added.push(m)

  // Keeping old versions can break what the loader checked on the new files alone: a kept plugin
  // may need one that is gone, or form a cycle with a changed one. Fall back plugin by plugin
  // (a removal is cancelled, a change reverted, an addition dropped) until the set is consistent.
  for (;;) {
    const finalSet = [
      ...running.filter((m) => !removed.has(m.name) && !changed.has(m.name)),
      ...changed.values(),
      ...added
    ]
    const check = checkDependencies(finalSet)
    if (check.problems.length === 0) break
    const valid = new Set(check.valid.map((m) => m.name))
    let progress = false
    for (const m of finalSet) {
      if (valid.has(m.name)) continue
      const addedAt = added.indexOf(m)
      if (addedAt >= 0) {
        added.splice(addedAt, 1)
        problems.push(...check.problems.filter((p) => p.file === m.source))
        progress = true
      } else if (changed.has(m.name)) {
        changed.delete(m.name)
        kept.add(m.name)
        problems.push(...check.problems.filter((p) => p.file === m.source))
        progress = true
      } else {
        for (const d of m.dependsOn) {
          if (removed.delete(d)) {
            kept.add(d)
            problems.push({ file: runningByName.get(d)!.source, path: '', reason: `plugin '${d}' is kept running: '${m.name}' (kept at its running version) depends on it` })
            progress = true
          }
        }
      }
    }
    // The running set was consistent, so every round takes a step back toward it.
    if (!progress) throw new Error(`reload plan did not converge: ${JSON.stringify(check.problems)}`)
  }

  const restartRequired: string[] = []
  const keys = new Set([...Object.keys(runningConfig), ...Object.keys(next.config)])
  for (const k of keys) {
    if (RELOADABLE_KEYS.has(k)) continue
    if (canonical((runningConfig as Record<string, unknown>)[k]) !== canonical((next.config as Record<string, unknown>)[k])) restartRequired.push(k)
  }

  return {
    added,
    removed: [...removed],
    changed: [...changed.values()],
    unchanged: unchanged.filter((n) => !kept.has(n)),
    kept: [...kept],
    problems,
    restartRequired: restartRequired.sort()
  }
}

/** Whether a problem is about the running plugin `m`: its file, or its entry in the main config. */
function isAbout (p: ConfigProblem, m: LoadedManifest, next: LoadedConfig): boolean {
  if (p.file !== m.source) return false
  if (m.source !== next.file) return true
  // Inline: the problem's /plugins/N entry must carry this plugin's name.
  const at = /^\/plugins\/(\d+)(\/|$)/.exec(p.path)
  if (!at) return false
  const doc = next.config.plugins[Number(at[1])]
  return typeof doc === 'object' && doc !== null && (doc as { name?: unknown }).name === m.name
}

/** Deep equality of manifests, whatever the order of object keys; dependsOn is a set. */
export function sameManifest (a: LoadedManifest, b: LoadedManifest): boolean {
  return canonical(comparable(a)) === canonical(comparable(b))
}

function comparable (m: LoadedManifest): Record<string, unknown> {
  // Where an inline manifest sits in the list is not part of what it is, nor how its document
  // was laid out (written): what runs is the expanded manifest.
  const { inlineIndex, written, ...rest } = m as LoadedManifest & { inlineIndex?: number }
  return { ...rest, dependsOn: [...m.dependsOn].sort() }
}

/**
 * Whether two manifests of a plugin differ in `config` alone: what a reload hook can apply to the
 * running process without a restart.
 */
export function onlyConfigDiffers (a: LoadedManifest, b: LoadedManifest): boolean {
  return !sameManifest(a, b) && sameManifest({ ...a, config: {} }, { ...b, config: {} })
}

/** JSON with object keys sorted at every level. */
export function canonical (value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(v).sort()) out[k] = (v as Record<string, unknown>)[k]
    return out
  }) ?? 'undefined'
}
