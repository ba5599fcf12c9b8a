// Manifest `watch: { paths, debounceMs }`: a change to one of a plugin's files restarts it
// (reason watch) while it runs; a stopped, failed or backing-off plugin is left as it is.
// Follows the supervisor's loaded/unloaded events, so a replaced manifest is watched anew.
import path from 'node:path'
import type { Logger } from '../logger.js'
import type { Supervisor } from '../supervisor/supervisor.js'
import { globRegExp, isScratchFile, splitGlob, watchFolder, type FolderWatch } from './file-watch.js'

export interface PluginWatcher {
  close: () => void
}

export function createPluginWatcher (opts: { supervisor: Supervisor, logger: Logger }): PluginWatcher {
  const { supervisor, logger } = opts
  const watching = new Map<string, FolderWatch[]>()

  const unwatch = (name: string): void => {
    for (const w of watching.get(name) ?? []) w.close()
    watching.delete(name)
  }
  const watchPlugin = (name: string): void => {
    const m = supervisor.manifest(name)
    if (!m.watch) return
    // Globs sharing a folder share its watch.
    const byBase = new Map<string, { recursive: boolean, patterns: RegExp[] }>()
    for (const glob of m.watch.paths) {
      const { base, rest } = splitGlob(glob.replace(/^\.\//, ''))
      const dir = path.resolve(m.cwd, base)
      const entry = byBase.get(dir) ?? { recursive: false, patterns: [] }
      entry.recursive ||= rest.includes('/') || rest.includes('**')
      entry.patterns.push(globRegExp(rest))
      byBase.set(dir, entry)
    }
    const watches: FolderWatch[] = []
    for (const [dir, { recursive, patterns }] of byBase) {
      try {
        watches.push(watchFolder(dir, {
          recursive,
          debounceMs: m.watch.debounceMs,
          accept: (file) => !isScratchFile(file) && patterns.some((re) => re.test(file)),
          onChanges: (files) => {
            const which = files === null ? dir : [...files].slice(0, 3).map((f) => path.join(dir, f)).join(', ')
            supervisor.watchRestart(name, which).catch((err: Error) => logger.error({ plugin: name, err }, `plugin ${name}: restart after a file change failed: ${err.message}`))
          },
          onError: (err) => logger.error({ plugin: name, dir, err }, `plugin ${name}: watching ${dir} failed: ${err.message}`)
        }))
      } catch (err) {
        logger.warn({ plugin: name, dir }, `plugin ${name}: cannot watch ${dir} (${(err as Error).message}); its watch paths there are not watched`)
      }
    }
    watching.set(name, watches)
  }
  const onLoaded = (name: string): void => { unwatch(name); watchPlugin(name) }
  supervisor.on('loaded', onLoaded)
  supervisor.on('unloaded', unwatch)
  for (const name of supervisor.names()) watchPlugin(name)
  return {
    close () {
      supervisor.off('loaded', onLoaded)
      supervisor.off('unloaded', unwatch)
      for (const name of [...watching.keys()]) unwatch(name)
    }
  }
}
