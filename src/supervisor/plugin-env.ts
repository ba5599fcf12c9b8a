// What a plugin process is given: its environment and, for `port: auto`, a free loopback port.
// Exec health probes run with the same environment.
import { createServer } from 'node:net'
import type { LoadedManifest } from '../config/load.js'
import { INSTANCE_VAR } from '../process/instance-marker.js'

const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'TZ'] as const

/**
 * The manifest's env, PATH/HOME/LANG/TZ from the daemon, PLUGVISOR_PLUGIN, PLUGVISOR_CONFIG,
 * PLUGVISOR_CONFIG_FILE (the file holding the config now in effect: a reload hook rewrites it),
 * PORT and, for the plugin's own process and its exec hooks, PLUGVISOR_INSTANCE (the daemon's
 * instance marker).
 */
export function pluginEnv (m: LoadedManifest, port: number | undefined, instance?: string, configFile?: string): Record<string, string> {
  const env: Record<string, string> = {}
  // First, so a plain read of /proc/<pid>/environ meets it early.
  if (instance !== undefined) env[INSTANCE_VAR] = instance
  for (const k of INHERITED_ENV) { const v = process.env[k]; if (v !== undefined) env[k] = v }
  Object.assign(env, m.env)
  env.PLUGVISOR_PLUGIN = m.name
  env.PLUGVISOR_CONFIG = JSON.stringify(m.config)
  if (configFile !== undefined) env.PLUGVISOR_CONFIG_FILE = configFile
  else delete env.PLUGVISOR_CONFIG_FILE
  if (port !== undefined) env.PORT = String(port)
  // The manifest cannot set or overwrite the marker: it is the daemon's.
  if (instance !== undefined) env[INSTANCE_VAR] = instance
  else delete env[INSTANCE_VAR]
  return env
}

/** A port the kernel says is free on 127.0.0.1 now (it may be taken again before the plugin binds it). */
export function freeLoopbackPort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}
