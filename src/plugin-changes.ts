// Changing the set of plugins while the daemon runs: register a manifest, unload one, change a
// plugin's config, reload the config files. What runs and what is on disk are kept in step:
// every change is written to the plugins folder (atomically) before it is applied, so a reload
// or a daemon restart finds exactly what runs now. One change at a time, daemon-wide.
import { existsSync } from 'node:fs'
import path from 'node:path'
import type { Logger } from './logger.js'
import { Type, type Static } from '@sinclair/typebox'
import { ConfigProblem, loadConfig, parseManifest, readStructuredFile, type LoadedConfig, type LoadedManifest } from './config/load.js'
import { manifestFileFor, manifestText, retireManifestFile, withConfig, writeFileAtomic } from './config/manifest-files.js'
import { planReload } from './config/reload-plan.js'
import { REDACTED, redactValue } from './config/redact.js'
import type { Supervisor } from './supervisor/supervisor.js'
import type { PluginSummary } from './supervisor/events.js'
import { errors, withProblems } from './errors.js'

/** What a reload found and did (POST /config/reload). */
export const ReloadResult = Type.Object({
  dryRun: Type.Boolean(),
  added: Type.Array(Type.String(), { description: 'New plugins: loaded, and started when autostart (or their stored desired state) says so' }),
  removed: Type.Array(Type.String(), { description: 'Plugins whose manifest is gone: stopped and unloaded' }),
  changed: Type.Array(Type.String(), { description: 'Plugins whose manifest differs: stopped, swapped, started again when they were meant to run' }),
  unchanged: Type.Array(Type.String()),
  kept: Type.Array(Type.String(), { description: 'Plugins whose manifest is invalid now (see problems): the running version stays' }),
  problems: Type.Array(Type.Ref(ConfigProblem), { description: 'Every manifest not applied, with file, JSON path and reason' }),
  restartRequired: Type.Array(Type.String(), { description: 'Main config keys that changed but take effect only at a daemon restart (everything but plugins and pluginsDir)' })
})
export type ReloadResult = Static<typeof ReloadResult>

/** What unloading a plugin did to its manifest file (DELETE /plugins/:name). */
export const UnloadResult = Type.Object({
  name: Type.String(),
  source: Type.String({ description: 'The manifest file the plugin came from' }),
  retiredTo: Type.Union([Type.String(), Type.Null()], { description: 'Where that file was renamed to (ignored by the loader); null when it was gone already' })
})
export type UnloadResult = Static<typeof UnloadResult>

export interface PluginChanges {
  /** Validates a manifest, writes it to `<pluginsDir>/<name>.json`, loads it and starts it when `start` (default: autostart). */
  register: (doc: unknown, opts?: { start?: boolean }) => Promise<PluginSummary>
  /** Stops and unloads a plugin; its file in the plugins folder is renamed to `<file>.deleted`. */
  unregister: (name: string) => Promise<UnloadResult>
  /** Replaces a plugin's config (validated by its configSchema), writes it to its file, restarts the plugin. */
  setConfig: (name: string, config: Record<string, unknown>) => Promise<PluginSummary>
  /** Re-reads the main config and the plugins folder and applies what changed (nothing with dryRun). */
  reload: (opts?: { dryRun?: boolean }) => Promise<ReloadResult>
}

export interface PluginChangesOptions {
  supervisor: Supervisor
  logger: Logger
  /** Read and replace the daemon's view of its config (GET /config/status). */
  getLoaded: () => LoadedConfig
  setLoaded: (loaded: LoadedConfig) => void
  env?: NodeJS.ProcessEnv
}

const REQUEST_BODY = 'request body'

export function createPluginChanges (opts: PluginChangesOptions): PluginChanges {
  const { supervisor, logger, getLoaded, setLoaded } = opts
  const env = opts.env ?? process.env
  let tail: Promise<unknown> = Promise.resolve()
  /** One change at a time: a reload never sees a registration half done. */
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn)
    tail = run.catch(() => {})
    return run
  }

  /** The daemon's view follows what runs: manifests in supervision order, the latest problems. */
  const syncLoaded = (patch: Partial<LoadedConfig> = {}): void => {
    const names = supervisor.names()
    setLoaded({ ...getLoaded(), ...patch, manifests: names.map((n) => supervisor.manifest(n)) })
  }

  /** Inline manifests belong to the main config file, which the daemon never rewrites. */
  const fileOf = (name: string, what: string): string => {
    const m = supervisor.manifest(name)
    if ((m as LoadedManifest & { inlineIndex?: number }).inlineIndex !== undefined || m.source === getLoaded().file) {
      throw new errors.Conflict(`plugin '${name}' is defined inline in ${m.source}; ${what} by editing that file and POST /config/reload`)
    }
    return m.source
  }

  return {
    register (doc, { start } = {}) {
      return serial(async () => {
        const { pluginsDir } = getLoaded()
        const parsed = parseManifest(doc, { file: REQUEST_BODY, baseDir: pluginsDir, env })
        if (!parsed.manifest) throw withProblems(new errors.InvalidManifest(briefly(parsed.problems)), parsed.problems)
        const name = parsed.manifest.name
        if (supervisor.has(name)) throw new errors.Conflict(`plugin '${name}' is already loaded (from ${supervisor.manifest(name).source})`)
        const file = manifestFileFor(pluginsDir, name)
        if (existsSync(file)) throw new errors.Conflict(`${file} exists but is not loaded (GET /config/status says why); fix or remove it and POST /config/reload`)
        const manifest: LoadedManifest = { ...parsed.manifest, source: file }
        const desired = new Map([[name, (start ?? manifest.autostart) ? 'running' as const : 'stopped' as const]])
        supervisor.checkChanges({ add: [manifest] })
        // The document as sent (${VAR} not expanded): the file is what an operator would have written.
        writeFileAtomic(file, manifestText(doc))
        logger.info({ plugin: name, file }, `plugin ${name}: registered (${file})`)
        await supervisor.applyChanges({ add: [manifest], desired })
        syncLoaded()
        return supervisor.summary(name)
      })
    },

    unregister (name) {
      return serial(async () => {
        const source = fileOf(name, 'remove it')
        supervisor.checkChanges({ remove: [name] })
        const retiredTo = existsSync(source) ? retireManifestFile(source) : null
        logger.info({ plugin: name, file: source, retiredTo }, `plugin ${name}: unloading${retiredTo ? ` (manifest renamed to ${retiredTo})` : ''}`)
        await supervisor.applyChanges({ remove: [name] })
        syncLoaded()
        return { name, source, retiredTo }
      })
    },

    setConfig (name, config) {
      return serial(async () => {
        const source = fileOf(name, 'change its config')
        const raw = readStructuredFile(source)
        if (raw.problem || raw.value === null || typeof raw.value !== 'object' || Array.isArray(raw.value)) {
          throw new errors.Conflict(`the manifest file ${source} of plugin '${name}' cannot be used now (${raw.problem?.reason ?? 'not an object'}); fix it and POST /config/reload`)
        }
        const current = supervisor.manifest(name)
        const rawDoc = raw.value as Record<string, unknown>
        // A value sent back as "[redacted]" (as GET /plugins/:name shows it) keeps the value on file.
        const nextConfig = restoreRedacted(config, rawDoc.config, current.configSchema) as Record<string, unknown>
        const parsed = parseManifest({ ...rawDoc, config: nextConfig }, { file: source, baseDir: path.dirname(source), env })
        if (!parsed.manifest) throw withProblems(new errors.Validation(`invalid config: ${briefly(parsed.problems)}`), parsed.problems)
        if (parsed.manifest.name !== name) throw new errors.Conflict(`the manifest file ${source} now names plugin '${parsed.manifest.name}'; POST /config/reload to apply it`)
        supervisor.checkChanges({ replace: [parsed.manifest] })
        writeFileAtomic(source, withConfig(source, nextConfig))
        logger.info({ plugin: name, file: source }, `plugin ${name}: config changed, restarting`)
        await supervisor.applyChanges({ replace: [parsed.manifest] })
        syncLoaded()
        return supervisor.summary(name)
      })
    },

    reload ({ dryRun = false } = {}) {
      return serial(async () => {
        const before = getLoaded()
        // An invalid main config throws PLUGVISOR_INVALID_CONFIG: nothing is applied.
        const next = loadConfig(before.file, { env })
        const running = supervisor.names().map((n) => supervisor.manifest(n))
        const plan = planReload(running, before.config, next)
        const result: ReloadResult = {
          dryRun,
          added: plan.added.map((m) => m.name),
          removed: plan.removed,
          changed: plan.changed.map((m) => m.name),
          unchanged: plan.unchanged,
          kept: plan.kept,
          problems: plan.problems,
          restartRequired: plan.restartRequired
        }
        if (dryRun) return result
        for (const p of plan.problems) logger.error({ file: p.file, path: p.path, reason: p.reason }, `reload: manifest not applied: ${p.file}: ${p.path || '/'}: ${p.reason}`)
        await supervisor.applyChanges({ add: plan.added, remove: plan.removed, replace: plan.changed })
        // The plugins folder follows the file; the rest of the main config waits for a restart.
        syncLoaded({ pluginsDir: next.pluginsDir, problems: plan.problems, config: { ...before.config, pluginsDir: next.config.pluginsDir, plugins: next.config.plugins } })
        logger.info({ added: result.added, removed: result.removed, changed: result.changed, kept: result.kept, problems: result.problems.length, restartRequired: result.restartRequired },
          `config reloaded: ${result.added.length} added, ${result.removed.length} removed, ${result.changed.length} changed, ${result.unchanged.length} unchanged${result.restartRequired.length > 0 ? `; needs a restart for: ${result.restartRequired.join(', ')}` : ''}`)
        return result
      })
    }
  }
}

/** Problems of a request body, without the file name (it is always the body). */
const briefly = (problems: ConfigProblem[]): string => problems.map((p) => `${p.path || '/'}: ${p.reason}`).join('; ')

type JsonSchema = { sensitive?: boolean, properties?: Record<string, JsonSchema> }

/** Puts back the value on file wherever a sensitive property was sent as "[redacted]". */
function restoreRedacted (sent: unknown, onFile: unknown, schema: JsonSchema | undefined): unknown {
  if (schema === undefined) return sent
  if (schema.sensitive === true && sent === REDACTED) return onFile
  if (sent === null || typeof sent !== 'object' || Array.isArray(sent) || !schema.properties) return sent
  const old = (onFile !== null && typeof onFile === 'object' && !Array.isArray(onFile) ? onFile : {}) as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(sent)) out[k] = restoreRedacted(v, old[k], schema.properties[k])
  return out
}

/** The config of a plugin as answers show it. */
export function redactedConfig (m: LoadedManifest): unknown {
  return redactValue(m.config, m.configSchema as JsonSchema | undefined)
}
