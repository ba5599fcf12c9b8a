// Test helpers: a real daemon (real SQLite file in a temp folder, real child processes) built
// from a config written for the test, torn down (every child stopped) even when the test fails.
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { loadConfig, type LoadedConfig } from '../src/config/load.js'
import { buildServer, type ServerOptions } from '../src/server.js'
import type { EventEmitter } from 'node:events'
import type { Supervisor, SupervisorEvents } from '../src/supervisor/supervisor.js'

export const FIXTURE = fileURLToPath(new URL('./fixtures/plugin.mjs', import.meta.url))

export type Tap = { teardown: (fn: () => unknown) => void }

export function tempDir (prefix = 'plugvisor-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix))
}

/** A manifest that runs the fixture program in `mode`, with fast stop and restart defaults for tests. */
export function fixturePlugin (name: string, mode: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const { args, restart, stop, ...rest } = extra as { args?: string[], restart?: object, stop?: object }
  return {
    name,
    command: process.execPath,
    args: [FIXTURE, mode, ...(args ?? [])],
    restart: { initialDelayMs: 0, jitter: 0, ...restart },
    stop: { timeoutMs: 2000, ...stop },
    ...rest
  }
}

/**
 * tap options for a test that needs a program from Debian (.ci/run installs it): skipped where it
 * is missing on a developer machine, a failure in CI (CI=true).
 */
export function needs (available: boolean, program: string, debianPackage: string): { skip: string | false } {
  return { skip: !available && process.env.CI !== 'true' ? `${program} is not installed (apt-get install ${debianPackage}); CI=true makes this a failure` : false }
}

/** Writes a main config (JSON) with inline plugins into a temp folder and loads it. */
export function writeConfig (plugins: unknown[], extra: Record<string, unknown> = {}, dir = tempDir()): LoadedConfig {
  mkdirSync(dir, { recursive: true })
  const file = path.join(dir, 'plugvisor.json')
  writeFileSync(file, JSON.stringify({ dataDir: './data', pluginsDir: './plugins.d', plugins, log: { level: 'silent' }, ...extra }))
  return loadConfig(file)
}

/** Builds the app on a config and closes it (stopping every plugin) at teardown. */
export async function build (t: Tap, loaded: LoadedConfig, opts: Partial<ServerOptions> = {}): Promise<FastifyInstance> {
  const app = await buildServer({ loaded, logger: false, ...opts })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/** Whether a pid is alive (zombies count as gone). */
export function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    return !/^\d+ \(.*\) [ZX]/.test(stat)
  } catch {
    return false
  }
}

type Events = SupervisorEvents
type Payload<K extends keyof Events> = Events[K][0]

/**
 * Resolves with the first supervisor `event` whose payload satisfies `pred`; rejects after
 * timeoutMs (a bound against hangs, not a timing assertion).
 */
export function waitForEvent<K extends keyof Events> (sup: Supervisor, event: K, pred: (v: Payload<K>) => boolean, timeoutMs = 10000): Promise<Payload<K>> {
  const em = sup as unknown as EventEmitter
  return new Promise((resolve, reject) => {
    const on = (v: Payload<K>): void => {
      if (!pred(v)) return
      clearTimeout(timer)
      em.off(event, on)
      resolve(v)
    }
    const timer = setTimeout(() => { em.off(event, on); reject(new Error(`no matching '${event}' event within ${timeoutMs} ms`)) }, timeoutMs)
    em.on(event, on)
  })
}

/** Collects every supervisor `event` payload until the test ends. */
export function collectEvents<K extends keyof Events> (t: Tap, sup: Supervisor, event: K): Payload<K>[] {
  const em = sup as unknown as EventEmitter
  const seen: Payload<K>[] = []
  const on = (v: Payload<K>): void => { seen.push(v) }
  em.on(event, on)
  t.teardown(() => { em.off(event, on) })
  return seen
}

export interface LogEntry { msg: string, plugin?: string, to?: string, [k: string]: unknown }

/**
 * Follows the JSON log lines of a daemon's stdout: `entries` grows as lines come, `until`
 * resolves once a predicate over them holds (no polling, no sleeps).
 */
export function followLog (stdout: NodeJS.ReadableStream): { entries: LogEntry[], until: (pred: () => boolean) => Promise<void> } {
  const entries: LogEntry[] = []
  const waiters: (() => void)[] = []
  createInterface({ input: stdout }).on('line', (line) => {
    entries.push(JSON.parse(line))
    for (const w of waiters.splice(0)) w()
  })
  const until = (pred: () => boolean): Promise<void> => new Promise((resolve) => {
    const check = (): void => { if (pred()) resolve(); else waiters.push(check) }
    check()
  })
  return { entries, until }
}
