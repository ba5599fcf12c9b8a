// Test helpers: a real daemon (real SQLite file in a temp folder, real child processes) built
// from a config written for the test, torn down (every child stopped) even when the test fails.
import type { EventSink } from '../src/events/sse-client.js'
import { closeSync, mkdtempSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { loadConfig, type LoadedConfig } from '../src/config/load.js'
import { buildServer, type ServerOptions } from '../src/server.js'
import type { EventEmitter } from 'node:events'
import type { Supervisor, SupervisorEvents } from '../src/supervisor/supervisor.js'
import type { HealthMonitor, HealthMonitorEvents } from '../src/health/health-monitor.js'
import type { Invoker, InvokerEvents } from '../src/invoke/invoker.js'

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
  // Watching is off unless a test turns it on: a test that writes files and then reloads must not race a watcher.
  writeFileSync(file, JSON.stringify({ dataDir: './data', pluginsDir: './plugins.d', plugins, log: { level: 'silent' }, watch: { enabled: false }, ...extra }))
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

/** Anything that publishes typed events: the supervisor, the health monitor, the invoker. */
type Publisher = Pick<EventEmitter, 'on' | 'off'>
type EventsOf<P> = P extends Supervisor ? SupervisorEvents : P extends HealthMonitor ? HealthMonitorEvents : P extends Invoker ? InvokerEvents : never
type Payload<P, K extends keyof EventsOf<P>> = EventsOf<P>[K] extends [infer V, ...unknown[]] ? V : never

/**
 * Resolves with the first `event` (of the supervisor, the health monitor or the invoker) whose
 * payload satisfies `pred`; rejects after
 * timeoutMs (a bound against hangs, not a timing assertion).
 */
export function waitForEvent<P extends Publisher, K extends keyof EventsOf<P> & string> (sup: P, event: K, pred: (v: Payload<P, K>) => boolean, timeoutMs = 10000): Promise<Payload<P, K>> {
  const em = sup as unknown as EventEmitter
  return new Promise((resolve, reject) => {
    const on = (v: Payload<P, K>): void => {
      if (!pred(v)) return
      clearTimeout(timer)
      em.off(event, on)
      resolve(v)
    }
    const timer = setTimeout(() => { em.off(event, on); reject(new Error(`no matching '${event}' event within ${timeoutMs} ms`)) }, timeoutMs)
    em.on(event, on)
  })
}

/** Collects every `event` payload (of the supervisor, the health monitor or the invoker) until the test ends. */
export function collectEvents<P extends Publisher, K extends keyof EventsOf<P> & string> (t: Tap, sup: P, event: K): Payload<P, K>[] {
  const em = sup as unknown as EventEmitter
  const seen: Payload<P, K>[] = []
  const on = (v: Payload<P, K>): void => { seen.push(v) }
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

/** Probe timing for tests: every 50 ms, two failures in a row make a plugin unhealthy. */
export const fastProbe = { intervalMs: 50, timeoutMs: 1000, failureThreshold: 2 }
/** The fixture takes a moment to listen: a startup probe covers that, as it would in production. */
export const startupProbe = { startup: { failureThreshold: 100, intervalMs: 50 } }

/**
 * The fixture in `serve` mode on an automatic port (`env` picks its health answer: HEALTH,
 * HEALTH_FILE, ...), probed over HTTP at /health with fastProbe and startupProbe. `healthCheck`
 * fields override those of the probe, `extra` those of the manifest.
 */
export function served (name: string, env: Record<string, string>, healthCheck: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return fixturePlugin(name, 'serve', { port: 'auto', env, healthCheck: { http: { path: '/health' }, ...fastProbe, ...startupProbe, ...healthCheck }, ...extra })
}

/** Resolves with the match of the first output line of `plugin` that matches `re`. */
export async function outputLine (sup: Supervisor, plugin: string, re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray> {
  const { line } = await waitForEvent(sup, 'output', (e) => e.plugin === plugin && re.test(e.line), timeoutMs)
  return re.exec(line)!
}

/** A disk of its own that a test can fill: a folder on a tmpfs of `bytes`, unmounted at teardown. */
export interface SmallDisk {
  dir: string
  /** Writes a file until the disk is full (ENOSPC): every write needing a new block fails from then on. */
  fill: () => void
  /** Deletes that file: room again. */
  free: () => void
}

/**
 * Mounts a tmpfs (a real full disk, real ENOSPC, real SQLITE_FULL); undefined with why when
 * mounting is not allowed here (it needs root, or CAP_SYS_ADMIN).
 */
export function smallDisk (t: Tap, bytes = 8 << 20): SmallDisk | string {
  const dir = tempDir('plugvisor-disk-')
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { encoding: 'utf8' })
  if (r.status !== 0) return `cannot mount a tmpfs to fill (needs root): ${(r.stderr || r.error?.message || '').trim()}`
  // Lazy: whatever still has a file open there (a daemon closing) keeps it until it lets go.
  t.teardown(() => { spawnSync('umount', ['-l', dir]) })
  const filler = path.join(dir, 'filler')
  return {
    dir,
    fill: () => {
      const fd = openSync(filler, 'a')
      try {
        for (const size of [1 << 20, 4096, 1]) {
          const chunk = Buffer.alloc(size)
          try { for (;;) writeSync(fd, chunk) } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err }
        }
      } finally { closeSync(fd) }
    },
    free: () => rmSync(filler, { force: true })
  }
}

/** Boots the daemon, then waits until every plugin running the fixture's `serve` mode listens (its "listening" line). */
export async function bootListening (app: FastifyInstance): Promise<void> {
  const sup = app.daemon.supervisor
  const serving = sup.names().filter((n) => sup.snapshot(n).desired === 'running' && sup.manifest(n).args.includes('serve'))
  const listening = Promise.all(serving.map((n) => outputLine(sup, n, /^listening/)))
  await app.daemon.boot()
  await listening
}

/** An event-stream client (GET /events, log follow) in memory whose socket says it is full once `stalled` is set, until drain(). */
export function sink () {
  const chunks: string[] = []
  let onWrite: ((chunk: string) => void) | undefined
  let onDrain: (() => void) | undefined
  const s = {
    chunks,
    stalled: false,
    ended: false,
    destroyed: 0,
    write (chunk: string) {
      chunks.push(chunk)
      onWrite?.(chunk)
      return !s.stalled
    },
    once (_event: 'drain', listener: () => void) { onDrain = listener },
    drain () { s.stalled = false; const d = onDrain; onDrain = undefined; d?.() },
    end () { s.ended = true },
    destroy () { s.destroyed++ },
    nextWrite: () => new Promise<string>((resolve) => { onWrite = (c) => { onWrite = undefined; resolve(c) } })
  }
  return s satisfies EventSink & Record<string, unknown>
}

/** The /proc/<pid>/stat files this process holds open now. */
export function openStatFiles (): string[] {
  const out: string[] = []
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`)
      if (/^\/proc\/\d+\/stat$/.test(target)) out.push(target)
    } catch {}
  }
  return out
}
