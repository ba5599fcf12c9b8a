// Changing the set of plugins while the daemon runs: register a manifest, unload one, change a
// plugin's config, reload the config files. What runs and what is on disk are kept in step:
// every change is written to the plugins folder (atomically) before it is applied, so a reload
// or a daemon restart finds exactly what runs now. One change at a time, daemon-wide.
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { Logger } from './logger.js'
import { Type, type Static } from '@sinclair/typebox'
import { ConfigProblem, expandEnv, loadConfig, parseManifest, readStructuredFile, type LoadedConfig, type LoadedManifest } from './config/load.js'
import { manifestFileFor, manifestText, retireManifestFile, withConfig, writeFileAtomic } from './config/manifest-files.js'
import { onlyConfigDiffers, planReload } from './config/reload-plan.js'
import { restoreRedacted } from './config/redact.js'
import type { Supervisor } from './supervisor/supervisor.js'
import type { PluginSummary } from './supervisor/events.js'
import { errors, problemsOf, withProblems } from './errors.js'
import type { OwnWrites } from './watch/config-watcher.js'

/** What a reload found and did (POST /config/reload). */
export const ReloadResult = Type.Object({
  dryRun: Type.Boolean(),
  added: Type.Array(Type.String(), { description: 'New plugins: loaded, and started when autostart (or their stored desired state) says so' }),
  removed: Type.Array(Type.String(), { description: 'Plugins whose manifest is gone: stopped and unloaded' }),
  changed: Type.Array(Type.String(), { description: 'Plugins whose manifest differs: stopped, swapped, started again when they were meant to run' }),
  reconfigured: Type.Array(Type.String(), { description: 'Running plugins whose config alone changed and that have a reload hook: the new config reached the same process, no restart (a failed hook puts the plugin in kept, with a problem)' }),
  unchanged: Type.Array(Type.String()),
  kept: Type.Array(Type.String(), { description: 'Plugins whose manifest is invalid now (see problems): the running version stays' }),
  problems: Type.Array(Type.Ref(ConfigProblem), { description: 'Every manifest not applied, with file, JSON path and reason' }),
  restartRequired: Type.Array(Type.String(), { description: 'Main config keys that changed but take effect only at a daemon restart (everything but plugins and pluginsDir)' })
})
export type ReloadResult = Static<typeof ReloadResult>

/** What started a reload: an API call or the CLI, SIGHUP, or a change the watcher saw on disk. */
export const RELOAD_TRIGGERS = ['api', 'signal', 'watch'] as const
export type ReloadTrigger = typeof RELOAD_TRIGGERS[number]

/** A reload that was applied, or refused (an invalid main config: `refused` with its problems, nothing changed). */
export interface ReloadOutcome {
  trigger: ReloadTrigger
  /** The files whose change started it (trigger watch). */
  files: string[]
  result?: ReloadResult
  refused?: ConfigProblem[]
  at: number
}

/** What unloading a plugin did to its manifest file (DELETE /plugins/:name). */
export const UnloadResult = Type.Object({
  name: Type.String(),
  source: Type.String({ description: 'The manifest file the plugin came from' }),
  retiredTo: Type.Union([Type.String(), Type.Null()], { description: 'Where that file was renamed to (ignored by the loader); null when it was gone already' })
})
export type UnloadResult = Static<typeof UnloadResult>

/**
 * Each change is done, or refused whole; one whose desired states the store could not take (a
 * full disk) is done and then throws PLUGVISOR_STATE_NOT_PERSISTED, like an operator's stop.
 */
export interface PluginChanges {
  /** Validates a manifest, writes it to `<pluginsDir>/<name>.json`, loads it and starts it when `start` (default: autostart). */
  register: (doc: unknown, opts?: { start?: boolean, actor?: string }) => Promise<PluginSummary>
  /** Stops and unloads a plugin; its file in the plugins folder is renamed to `<file>.deleted`. */
  unregister: (name: string, actor?: string) => Promise<UnloadResult>
  /**
   * Replaces a plugin's config (validated by its configSchema) and writes it to its file. A running
   * plugin with a reload hook gets it in place (same process); when that hook fails, the file is
   * restored and PLUGVISOR_HOOK_FAILED thrown. Any other plugin is restarted. `actor`: the operator.
   */
  setConfig: (name: string, config: Record<string, unknown>, actor?: string) => Promise<PluginSummary>
  /** Re-reads the main config and the plugins folder and applies what changed (nothing with dryRun). */
  reload: (opts?: { dryRun?: boolean, trigger?: ReloadTrigger, files?: string[], actor?: string }) => Promise<ReloadResult>
}

export interface PluginChangesOptions {
  supervisor: Supervisor
  logger: Logger
  /** Read and replace the daemon's view of its config (GET /config/status). */
  getLoaded: () => LoadedConfig
  setLoaded: (loaded: LoadedConfig) => void
  env?: NodeJS.ProcessEnv
  /** Told of every file the daemon writes, renames or removes (the watcher ignores those). */
  ownWrites?: OwnWrites
  /** Every reload that was not a dry run, applied or refused. */
  onReload?: (outcome: ReloadOutcome) => void
}

const REQUEST_BODY = 'request body'
const HOOK_FAILED = new errors.HookFailed('', '', '').code

export function createPluginChanges (opts: PluginChangesOptions): PluginChanges {
  const { supervisor, logger, getLoaded, setLoaded } = opts
  const env = opts.env ?? process.env
  const written = (file: string): void => opts.ownWrites?.note(file)
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
    register (doc, { start, actor } = {}) {
      return serial(async () => {
        const { pluginsDir, policy } = getLoaded()
        // The folder the manifest will be written to is its default cwd, which must exist.
        mkdirSync(pluginsDir, { recursive: true })
        const parsed = parseManifest(doc, { file: REQUEST_BODY, baseDir: pluginsDir, env, policy, fromApi: true })
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
        written(file)
        logger.info({ plugin: name, file }, `plugin ${name}: registered (${file})`)
        await supervisor.applyChanges({ add: [manifest], desired, actor })
        syncLoaded()
        supervisor.assertDesiredSaved([name], 'registration')
        return supervisor.summary(name)
      })
    },

    unregister (name, actor) {
      return serial(async () => {
        const source = fileOf(name, 'remove it')
        supervisor.checkChanges({ remove: [name] })
        const retiredTo = existsSync(source) ? retireManifestFile(source) : null
        written(source)
        logger.info({ plugin: name, file: source, retiredTo }, `plugin ${name}: unloading${retiredTo ? ` (manifest renamed to ${retiredTo})` : ''}`)
        await supervisor.applyChanges({ remove: [name], actor })
        syncLoaded()
        // The store must forget its desired state: a plugin of that name registered later starts from its own autostart.
        supervisor.assertDesiredSaved([name], 'unload')
        return { name, source, retiredTo }
      })
    },

    setConfig (name, config, actor) {
      return serial(async () => {
        const source = fileOf(name, 'change its config')
        const raw = readStructuredFile(source)
        if (raw.problem || raw.value === null || typeof raw.value !== 'object' || Array.isArray(raw.value)) {
          throw new errors.Conflict(`the manifest file ${source} of plugin '${name}' cannot be used now (${raw.problem?.reason ?? 'not an object'}); fix it and POST /config/reload`)
        }
        const current = supervisor.manifest(name)
        const { policy } = getLoaded()
        // The config sent may read only the variables an API-registered manifest may read.
        const refused: ConfigProblem[] = []
        expandEnv(config, env, REQUEST_BODY, '/config', refused, policy.allowEnv)
        if (refused.length > 0) throw withProblems(new errors.Validation(`invalid config: ${briefly(refused)}`), refused)
        const rawDoc = raw.value as Record<string, unknown>
        // A value sent back as "[redacted]" (as GET /plugins/:name shows it) keeps the value on file.
        const nextConfig = restoreRedacted(config, rawDoc.config, current.configSchema) as Record<string, unknown>
        const parsed = parseManifest({ ...rawDoc, config: nextConfig }, { file: source, baseDir: path.dirname(source), env, policy })
        if (!parsed.manifest) throw withProblems(new errors.Validation(`invalid config: ${briefly(parsed.problems)}`), parsed.problems)
        if (parsed.manifest.name !== name) throw new errors.Conflict(`the manifest file ${source} now names plugin '${parsed.manifest.name}'; POST /config/reload to apply it`)
        supervisor.checkChanges({ replace: [parsed.manifest] })
        const previousText = readFileSync(source, 'utf8')
        writeFileAtomic(source, withConfig(source, nextConfig))
        written(source)
        if (onlyConfigDiffers(current, parsed.manifest)) {
          try {
            const how = await supervisor.reconfigure(parsed.manifest, actor)
            logger.info({ plugin: name, file: source }, `plugin ${name}: config changed, ${how === 'reloaded' ? 'reloaded in place by its reload hook' : 'restarted'}`)
          } catch (err) {
            // The reload hook failed: the running config stays, and so does the file that says it.
            if ((err as { code?: string }).code === HOOK_FAILED) {
              writeFileAtomic(source, previousText)
              written(source)
            }
            throw err
          }
        } else {
          logger.info({ plugin: name, file: source }, `plugin ${name}: config changed, restarting`)
          await supervisor.applyChanges({ replace: [parsed.manifest], actor })
        }
        syncLoaded()
        supervisor.assertDesiredSaved([name], 'config change')
        return supervisor.summary(name)
      })
    },

    reload ({ dryRun = false, trigger = 'api', files = [], actor } = {}) {
      return serial(async () => {
        const before = getLoaded()
        // An invalid main config throws PLUGVISOR_INVALID_CONFIG: nothing is applied.
        let next: LoadedConfig
        try {
          next = loadConfig(before.file, { env })
        } catch (err) {
          const refused = problemsOf(err)
          if (!dryRun && refused) {
            // GET /config/status shows what is wrong until a reload goes through.
            syncLoaded({ problems: refused })
            opts.onReload?.({ trigger, files, refused, at: Date.now() })
          }
          throw err
        }
        const running = supervisor.names().map((n) => supervisor.manifest(n))
        const plan = planReload(running, before.config, next)
        // A running plugin with a reload hook whose config alone changed gets it in place.
        const inPlace = (m: LoadedManifest): boolean => {
          const now = supervisor.manifest(m.name)
          return now.hooks?.reload !== undefined && supervisor.snapshot(m.name).state.name === 'running' && onlyConfigDiffers(now, m)
        }
        const reconfigure = plan.changed.filter(inPlace)
        const restart = plan.changed.filter((m) => !reconfigure.includes(m))
        const result: ReloadResult = {
          dryRun,
          added: plan.added.map((m) => m.name),
          removed: plan.removed,
          changed: restart.map((m) => m.name),
          reconfigured: reconfigure.map((m) => m.name),
          unchanged: plan.unchanged,
          kept: plan.kept,
          problems: plan.problems,
          restartRequired: plan.restartRequired
        }
        if (dryRun) return result
        for (const p of plan.problems) logger.error({ file: p.file, path: p.path, reason: p.reason }, `reload: manifest not applied: ${p.file}: ${p.path || '/'}: ${p.reason}`)
        await supervisor.applyChanges({ add: plan.added, remove: plan.removed, replace: restart, actor })
        const refused = new Set<string>()
        await Promise.all(reconfigure.map(async (m) => {
          try {
            if (await supervisor.reconfigure(m, actor) === 'restarted') result.changed.push(m.name)
          } catch (err) {
            if ((err as { code?: string }).code !== HOOK_FAILED) throw err
            // Like an invalid file: the running version stays, the problem says why.
            refused.add(m.name)
            result.kept.push(m.name)
            result.problems.push({ file: m.source, path: '/config', reason: (err as Error).message })
            logger.error({ plugin: m.name, file: m.source }, `reload: config of plugin ${m.name} not applied: ${(err as Error).message}`)
          }
        }))
        result.reconfigured = result.reconfigured.filter((n) => !refused.has(n) && !result.changed.includes(n))
        // The plugins folder follows the file; the rest of the main config waits for a restart.
        syncLoaded({ pluginsDir: next.pluginsDir, problems: plan.problems, config: { ...before.config, pluginsDir: next.config.pluginsDir, plugins: next.config.plugins } })
        logger.info({ added: result.added, removed: result.removed, changed: result.changed, kept: result.kept, problems: result.problems.length, restartRequired: result.restartRequired },
          `config reloaded${trigger === 'watch' ? ' (files changed)' : ''}: ${result.added.length} added, ${result.removed.length} removed, ${result.changed.length} changed, ${result.unchanged.length} unchanged${result.restartRequired.length > 0 ? `; needs a restart for: ${result.restartRequired.join(', ')}` : ''}`)
        opts.onReload?.({ trigger, files, result, at: Date.now() })
        // Only an API call has an answer to say it in; after SIGHUP or a file change, the log and readiness say it.
        if (trigger === 'api') supervisor.assertDesiredSaved([...result.added, ...result.removed, ...result.changed, ...result.reconfigured], 'reload')
        return result
      })
    }
  }
}

/** Problems of a request body, without the file name (it is always the body). */
const briefly = (problems: ConfigProblem[]): string => problems.map((p) => `${p.path || '/'}: ${p.reason}`).join('; ')
