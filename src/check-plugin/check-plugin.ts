// plugvisor check-plugin: one plugin, alone, through every part of the plugin contract.
//
// The daemon runs in this process (temp data folder, API on a free loopback port, the plugin on
// another): the checks see the process through the same runner the supervisor uses (each
// spawn, and each stop up to its deadline, before the SIGKILL) and read the supervisor's
// transitions, probes and output directly, where a spawned daemon would show only what its API
// tells. Calls (--cases, --bench) still go over real HTTP through the invoke proxy.
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { Agent, request } from 'undici'
import type { FastifyInstance } from 'fastify'
import { formatProblem, loadConfig, parseManifest, readStructuredFile, type LoadedManifest } from '../config/load.js'
import { buildServer } from '../server.js'
import { childProcessRunner } from '../process/runner.js'
import { LOG_RING_LINES, type Supervisor } from '../supervisor/supervisor.js'
import type { TransitionEvent } from '../supervisor/events.js'
import type { HealthMonitor } from '../health/health-monitor.js'
import type { ProbeEvent } from '../health/probes.js'
import { bench, runCase, type BenchResult, type Case } from './cases.js'
import { observingRunner } from './observing-runner.js'
import { CHECK_TITLES, seconds, type CheckId, type CheckReport, type CheckResult, type CheckStatus } from './report.js'

/** Startup budget of a plugin without a health check (milliseconds). */
export const DEFAULT_STARTUP_BUDGET_MS = 30_000
/** A process must still run this long after it came up (listening, health check passed) to count as "stays up" (milliseconds). */
export const STAY_UP_MS = 1000
/** The config key the reload-hook check adds, with a new value each run, for the plugin to report back. */
export const RELOAD_CHECK_KEY = 'plugvisorCheck'
/** After a successful reload hook, how long the plugin has to show the new value (milliseconds). */
export const RELOAD_REPORT_MS = 5000

export interface BenchOptions {
  requests: number
  concurrency: number
  /** Fails the bench below this share of successful requests (0..1). */
  minSuccessRate?: number
  /** Fails the bench when the 95th percentile is slower (milliseconds). */
  maxP95Ms?: number
}

export interface CheckOptions {
  manifestFile: string
  cases?: Case[]
  bench?: BenchOptions
  /** Aborting stops every check; the report says interrupted and every process is gone. */
  signal?: AbortSignal
  /** Where ${VAR} in the manifest is looked up (default process.env). */
  env?: NodeJS.ProcessEnv
}

/**
 * How long a plugin may take to come up: its startup probe's allowance when it has one, else
 * the time its regular probe takes to call it unhealthy, else DEFAULT_STARTUP_BUDGET_MS.
 */
export function startupBudget (m: LoadedManifest): { ms: number, source: string } {
  const hc = m.healthCheck
  if (!hc) return { ms: DEFAULT_STARTUP_BUDGET_MS, source: 'the default without a healthCheck' }
  // The n-th failed probe starts (n - 1) intervals after the first and may take its timeout.
  if (hc.startup) {
    return { ms: hc.initialDelayMs + (hc.startup.failureThreshold - 1) * hc.startup.intervalMs + hc.timeoutMs, source: 'healthCheck.initialDelayMs + (startup.failureThreshold - 1) × startup.intervalMs + timeoutMs' }
  }
  return { ms: hc.initialDelayMs + (hc.failureThreshold - 1) * hc.intervalMs + hc.timeoutMs, source: 'healthCheck.initialDelayMs + (failureThreshold - 1) × intervalMs + timeoutMs' }
}

class Interrupted extends Error {}

/** Something about the plugin changed: wakes whoever waits for a condition. */
class Changes {
  #waiters = new Set<() => void>()
  notify (): void { for (const w of [...this.#waiters]) w() }
  /** Resolves true once cond() holds, false at the deadline; rejects when the run is interrupted. */
  until (cond: () => boolean, deadline: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const finish = (v: boolean | Error): void => {
        this.#waiters.delete(check)
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        if (v instanceof Error) reject(v)
        else resolve(v)
      }
      const check = (): void => { if (cond()) finish(true) }
      const onAbort = (): void => finish(new Interrupted())
      const timer = setTimeout(() => finish(cond()), Math.max(0, deadline - Date.now()))
      if (signal?.aborted) return finish(new Interrupted())
      signal?.addEventListener('abort', onAbort)
      this.#waiters.add(check)
      check()
    })
  }
}

function guard<T> (p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Interrupted())
    const onAbort = (): void => reject(new Interrupted())
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/** Tries to connect to 127.0.0.1:port once. */
function connects (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { s.destroy(); resolve(false) })
  })
}

/** Reads a process's environment as it was exec'd; undefined when it cannot be read. */
function processEnv (pid: number): Record<string, string> | undefined {
  let raw: string
  try {
    raw = readFileSync(`/proc/${pid}/environ`, 'utf8')
  } catch {
    return undefined
  }
  const env: Record<string, string> = {}
  for (const entry of raw.split('\0')) {
    const eq = entry.indexOf('=')
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1)
  }
  return env
}

/** Why the manifest's command cannot be exec'd, as far as the file system tells. */
export function spawnProblem (m: Pick<LoadedManifest, 'command' | 'cwd' | 'env'>): string | undefined {
  if (!existsSync(m.cwd)) return `its cwd ${m.cwd} does not exist`
  const candidates = m.command.includes('/')
    ? [path.resolve(m.cwd, m.command)]
    : (m.env.PATH ?? process.env.PATH ?? '').split(':').filter(Boolean).map((dir) => path.join(dir, m.command))
  const found = candidates.find((c) => existsSync(c))
  if (found === undefined) return m.command.includes('/') ? `${candidates[0]} does not exist` : `command ${JSON.stringify(m.command)} is not on PATH`
  try {
    accessSync(found, constants.X_OK)
  } catch {
    return `${found} is not executable (chmod +x, or run it through its interpreter: command: bash, args: [script])`
  }
  return undefined
}

const HEALTH_JSON_STATUSES = ['pass', 'warn', 'fail']

/** What is wrong with an application/health+json body, or undefined when it is well-formed. */
export function healthJsonProblem (text: string): string | undefined {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return `the body is not JSON: ${JSON.stringify(text.slice(0, 80))}`
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'the body must be a JSON object with a status'
  const b = body as Record<string, unknown>
  if (b.status === undefined) return "the body has no 'status' (pass, warn or fail)"
  if (typeof b.status !== 'string' || !HEALTH_JSON_STATUSES.includes(b.status)) {
    return `status ${JSON.stringify(b.status)} is not one of pass, warn, fail (plugvisor reads any other value as pass)`
  }
  if (b.output !== undefined && typeof b.output !== 'string') return "'output' must be a string"
  if (b.checks !== undefined && (b.checks === null || typeof b.checks !== 'object' || Array.isArray(b.checks))) return "'checks' must be an object"
  if (b.notes !== undefined && !(Array.isArray(b.notes) && b.notes.every((n) => typeof n === 'string'))) return "'notes' must be a list of strings"
  return undefined
}

export async function checkPlugin (opts: CheckOptions): Promise<CheckReport> {
  const file = path.resolve(opts.manifestFile)
  const results = new Map<string, CheckResult>()
  const set = (id: CheckId | `case:${string}`, status: CheckStatus, reason: string): void => {
    const title = id.startsWith('case:') ? `case ${id.slice(5)}` : CHECK_TITLES[id as CheckId]
    if (!results.has(id)) results.set(id, { id, title, status, reason })
  }
  const caseIds = (opts.cases ?? []).map((c) => `case:${c.name}` as const)
  const order: string[] = ['manifest', 'starts', 'listens', 'health', 'health-json', 'config', 'reload-hook', ...caseIds, ...(opts.bench ? ['bench'] : []), 'stop', 'sigkill']
  const skipRest = (reason: string): void => { for (const id of order) set(id as CheckId, 'skip', reason) }
  let benchResult: BenchResult | null = null
  let interrupted = false
  const report = (pluginName: string | null): CheckReport => {
    const checks = order.map((id) => results.get(id)!)
    return { manifest: opts.manifestFile, plugin: pluginName, ok: !interrupted && checks.every((c) => c.status !== 'fail'), interrupted, checks, bench: benchResult }
  }

  // ---- the manifest ----
  const read = readStructuredFile(file)
  const parsed = read.problem ? { problems: [read.problem] } : parseManifest(read.value, { file, baseDir: path.dirname(file), env: opts.env ?? process.env })
  if (!parsed.manifest) {
    set('manifest', 'fail', parsed.problems.map(formatProblem).join('; '))
    skipRest('the manifest is invalid')
    return report(null)
  }
  let m: LoadedManifest = parsed.manifest
  const notes: string[] = []
  if (m.dependsOn.length > 0) {
    notes.push(`dependsOn ${m.dependsOn.join(', ')} not started: checked alone`)
    m = { ...m, dependsOn: [] }
  }
  if (typeof m.port === 'number') {
    notes.push(`port ${m.port} replaced by a free loopback port`)
    m = { ...m, port: 'auto' }
  }
  const budget = startupBudget(m)
  const probe = m.healthCheck ? (m.healthCheck.http ? `http probe GET ${m.healthCheck.http.path}` : m.healthCheck.tcp ? 'tcp probe' : `exec probe ${m.healthCheck.exec?.command}`) : 'no health check'
  set('manifest', 'pass', [`${m.name}${m.version ? ` ${m.version}` : ''}, ${m.port === undefined ? 'no port' : 'port auto'}, ${probe}, startup budget ${seconds(budget.ms)}`, ...notes].join('; '))

  // ---- an isolated daemon ----
  const tmp = mkdtempSync(path.join(tmpdir(), 'plugvisor-check-'))
  const configFile = path.join(tmp, 'plugvisor.json')
  writeFileSync(configFile, JSON.stringify({ dataDir: './data', pluginsDir: './plugins.d', server: { host: '127.0.0.1', port: 0 }, log: { level: 'silent' } }))
  const runner = observingRunner(childProcessRunner)
  let app: FastifyInstance | undefined
  try {
    app = await buildServer({ loaded: { ...loadConfig(configFile), manifests: [m] }, logger: false, boot: false, runner })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const apiPort = (app.server.address() as { port: number }).port
    await runChecks({ app, sup: app.daemon.supervisor, probeSource: app.daemon.healthMonitor, m, doc: read.value, file, budget, set, skipRest, result: (id) => results.get(id), opts, runner, invokeBase: `http://127.0.0.1:${apiPort}/plugins/${m.name}/invoke`, setBench: (b) => { benchResult = b } })
  } catch (err) {
    if (!(err instanceof Interrupted)) throw err
    interrupted = true
    skipRest('interrupted')
  } finally {
    // Every process it started goes, whatever happened: the daemon stops the plugin, then
    // anything of any group it ever started that is still there is killed.
    await app?.close().catch(() => {})
    runner.killAll()
    rmSync(tmp, { recursive: true, force: true })
  }
  return report(m.name)
}

interface Run {
  app: FastifyInstance
  sup: Supervisor
  probeSource: HealthMonitor
  m: LoadedManifest
  /** The manifest as written, and its file: the reload-hook check validates a changed config with it. */
  doc: unknown
  file: string
  budget: { ms: number, source: string }
  set: (id: CheckId | `case:${string}`, status: CheckStatus, reason: string) => void
  skipRest: (reason: string) => void
  result: (id: CheckId) => CheckResult | undefined
  opts: CheckOptions
  runner: ReturnType<typeof observingRunner>
  invokeBase: string
  setBench: (b: BenchResult) => void
}

async function runChecks (r: Run): Promise<void> {
  const { sup, m, budget, set, skipRest, opts } = r
  const { signal } = opts
  const name = m.name
  const changes = new Changes()
  const transitions: TransitionEvent[] = []
  const probes: ProbeEvent[] = []
  sup.on('transition', (e) => { if (e.plugin === name) { transitions.push(e); changes.notify() } })
  r.probeSource.on('probe', (e) => { if (e.plugin === name) { probes.push(e); changes.notify() } })

  const lastOutput = (): string => {
    const lines = sup.logs(name, 3).map((l) => l.line.trim()).filter(Boolean)
    return lines.length > 0 ? `; last output: ${lines.map((l) => JSON.stringify(l.length > 160 ? `${l.slice(0, 160)}…` : l)).join(' ')}` : '; it printed nothing'
  }
  const describeExit = (e: TransitionEvent): string =>
    e.signal ? `was killed by ${e.signal}` : e.exitCode !== null ? `exited with code ${e.exitCode}` : `ended (${e.reason})`
  /** The first transition out of running at or after index `from` (the process ended, by itself or not). */
  const endedSince = (from: number): TransitionEvent | undefined => transitions.slice(from).find((e) => e.from === 'running')

  // ---- it starts ----
  const t0 = Date.now()
  const first = await guard(sup.start(name), signal)
  if (first.state !== 'running' || first.pid === null) {
    const why = transitions.find((e) => e.to === 'backoff' || e.to === 'failed')
    set('starts', 'fail', `could not be started: ${spawnProblem(m) ?? why?.reason ?? first.state}${lastOutput()}`)
    skipRest('it did not start')
    return
  }
  const pid = first.pid
  const port = sup.portOf(name)
  const deadline = t0 + budget.ms
  const ended = (): TransitionEvent | undefined => endedSince(0)
  const exitedReason = (what: string): string => {
    const e = ended()!
    return `the process ${describeExit(e)} ${seconds(e.at - t0)} after it started, before ${what}${lastOutput()}`
  }
  /** The probes ran out of the budget first: plugvisor restarted it as unhealthy. */
  const gaveUp = (): TransitionEvent | undefined => { const e = ended(); return e?.reason === 'unhealthy' ? e : undefined }

  /** When it came up: listening and its health check passed (each when it has one). */
  let upAt = t0
  // ---- it listens on PORT ----
  if (port === undefined) {
    set('listens', 'skip', 'the manifest has no port')
  } else {
    let listening = false
    let delay = 10
    while (!listening && ended() === undefined && Date.now() < deadline) {
      listening = await guard(connects(port), signal)
      if (!listening) {
        await changes.until(() => ended() !== undefined, Math.min(deadline, Date.now() + delay), signal)
        delay = Math.min(delay * 2, 200)
      }
    }
    const within = (ms: number, restarted: boolean): string =>
      `did not listen on PORT ${port} within ${seconds(ms)} (startup budget: ${budget.source}${restarted ? '; then plugvisor restarted it as unhealthy' : ''}); it must listen on 127.0.0.1 at the port in $PORT${lastOutput()}`
    const unhealthy = gaveUp()
    if (listening) upAt = Date.now()
    if (listening) set('listens', 'pass', `listening on PORT ${port} (127.0.0.1) after ${seconds(upAt - t0)}`)
    else if (unhealthy) set('listens', 'fail', within(unhealthy.at - t0, true))
    else if (ended()) set('listens', 'fail', exitedReason(`it listened on PORT ${port}`))
    else set('listens', 'fail', within(budget.ms, false))
  }

  // ---- its health check passes ----
  const passed = (p: ProbeEvent): boolean => p.result === 'success' || p.result === 'warn'
  if (!m.healthCheck) {
    set('health', 'skip', 'no healthCheck declared: plugvisor counts the running process as healthy')
  } else {
    await changes.until(() => probes.some(passed) || ended() !== undefined, deadline, signal)
    const ok = probes.find(passed)
    const failures = probes.filter((p) => p.result === 'failure')
    const last = failures.at(-1)
    const lastProbe = last ? `; ${failures.length} probe(s) failed, the last with: ${last.error ?? 'failure'}` : ''
    const unhealthy = gaveUp()
    const within = (ms: number): string => `did not pass within ${seconds(ms)} (startup budget: ${budget.source}${unhealthy ? '; then plugvisor restarted it as unhealthy' : ''})${lastProbe || '; no probe ran'}`
    if (ok) upAt = Math.max(upAt, ok.at)
    if (ok) set('health', 'pass', `${ok.probe} probe passed${ok.result === 'warn' ? ' with status warn (shown as degraded)' : ''} ${seconds(ok.at - t0)} after the start`)
    else if (unhealthy) set('health', 'fail', within(unhealthy.at - t0))
    else if (ended()) set('health', 'fail', exitedReason('its health check passed') + lastProbe)
    else set('health', 'fail', within(budget.ms))
  }

  // ---- it stays up ----
  await changes.until(() => ended() !== undefined, upAt + STAY_UP_MS, signal)
  const end = ended()
  const restarted = gaveUp()
  if (end && !restarted) {
    set('starts', 'fail', `the process (pid ${pid}) ${describeExit(end)} ${seconds(end.at - t0)} after it started${lastOutput()}`)
    skipRest('it did not stay up')
    return
  }
  set('starts', 'pass', restarted ? `pid ${pid} ran until plugvisor restarted it as unhealthy ${seconds(restarted.at - t0)} after the start` : `pid ${pid}, running for ${seconds(Date.now() - t0)}`)
  // What follows needs the plugin up: a plugin that never came up is checked no further.
  for (const id of ['listens', 'health'] as const) {
    const failed = r.result(id)
    if (failed?.status === 'fail') {
      skipRest(`it did not come up (check ${id} failed)`)
      return
    }
  }

  // ---- the health+json body ----
  const http = m.healthCheck?.http
  const healthPort = http?.port ?? port
  if (!http || healthPort === undefined) {
    set('health-json', 'skip', 'no http health check')
  } else {
    try {
      const res = await guard(request(`http://127.0.0.1:${healthPort}${http.path}`, { headers: http.headers, headersTimeout: m.healthCheck!.timeoutMs, bodyTimeout: m.healthCheck!.timeoutMs }), signal)
      const type = String(res.headers['content-type'] ?? '')
      const text = await res.body.text()
      if (!type.startsWith('application/health+json')) set('health-json', 'skip', `GET ${http.path} answers ${res.statusCode} ${type || 'without a content-type'}, not application/health+json: only its status code counts`)
      else {
        const problem = healthJsonProblem(text)
        if (problem) set('health-json', 'fail', `GET ${http.path}: ${problem}`)
        else set('health-json', 'pass', `GET ${http.path}: ${res.statusCode} ${text.length > 100 ? `${text.slice(0, 100)}…` : text}`)
      }
    } catch (err) {
      if (err instanceof Interrupted) throw err
      set('health-json', 'fail', `GET ${http.path} on port ${healthPort} failed: ${(err as Error).message}`)
    }
  }

  // ---- it received PLUGVISOR_CONFIG ----
  // Read now, once it is up: a wrapper that execs the real program has done so by then.
  const env = processEnv(pid)
  if (env === undefined) {
    set('config', 'skip', `cannot read /proc/${pid}/environ`)
  } else if (env.PLUGVISOR_CONFIG === undefined) {
    set('config', 'fail', `process ${pid} has no PLUGVISOR_CONFIG in its environment: a wrapper between plugvisor and the program dropped it (keep the environment, e.g. exec "$@" in a script, no env -i)`)
  } else {
    let got: unknown
    try { got = JSON.parse(env.PLUGVISOR_CONFIG) } catch {}
    if (!isDeepStrictEqual(got, m.config)) set('config', 'fail', `PLUGVISOR_CONFIG of process ${pid} is not the manifest's config: something in between changed it`)
    else if (port !== undefined && env.PORT !== String(port)) set('config', 'fail', `process ${pid} got PLUGVISOR_CONFIG but its PORT is ${env.PORT ?? 'missing'}, not ${port}`)
    else set('config', 'pass', `in the environment of process ${pid}: ${Object.keys(m.config).length} key(s)${Object.keys(m.config).length > 0 ? ` (${Object.keys(m.config).join(', ')})` : ''}, with PLUGVISOR_PLUGIN=${env.PLUGVISOR_PLUGIN}${port !== undefined ? ` and PORT=${env.PORT}` : ''}`)
  }

  // ---- its reload hook works ----
  await reloadHook(r, { pid, lastOutput })
  // A reload that ended the process (a signal without a handler): plugvisor restarts it, and the
  // checks that follow take the new process rather than failing for the same reason again.
  const runsAgain = (): boolean => { const s = sup.summary(name); return s.state === 'running' && s.pid !== null }
  if (sup.summary(name).pid !== pid) await changes.until(runsAgain, Date.now() + m.restart.initialDelayMs * (1 + m.restart.jitter) + budget.ms, signal)
  const stopPid = sup.summary(name).pid ?? pid

  // ---- requests through the invoke proxy ----
  const agent = new Agent({ connections: 4 })
  try {
    for (const c of opts.cases ?? []) {
      const out = await guard(runCase(c, r.invokeBase, agent), signal)
      set(`case:${c.name}`, out.ok ? 'pass' : 'fail', `${c.request.method} ${c.request.path}: ${out.reason}`)
    }
  } finally {
    await agent.close()
  }
  if (opts.bench) {
    const b = opts.bench
    const cases: Case[] = opts.cases && opts.cases.length > 0
      ? opts.cases
      : [{ name: 'GET /', request: { method: 'GET', path: '/', headers: {} }, expect: {} }]
    const res = await guard(bench(cases, r.invokeBase, b.requests, b.concurrency), signal)
    r.setBench(res)
    const summary = `${res.requests} requests, concurrency ${res.concurrency}: ${(res.successRate * 100).toFixed(1)} % succeeded, p50 ${res.p50Ms.toFixed(1)} ms, p95 ${res.p95Ms.toFixed(1)} ms, p99 ${res.p99Ms.toFixed(1)} ms, ${res.requestsPerSecond.toFixed(0)} requests/s`
    const misses: string[] = []
    if (b.minSuccessRate !== undefined && res.successRate < b.minSuccessRate) misses.push(`success rate below ${b.minSuccessRate}${res.firstFailure ? ` (first failure: ${res.firstFailure})` : ''}`)
    if (b.maxP95Ms !== undefined && res.p95Ms > b.maxP95Ms) misses.push(`p95 above ${b.maxP95Ms} ms`)
    set('bench', misses.length > 0 ? 'fail' : 'pass', misses.length > 0 ? `${misses.join(', ')}: ${summary}` : summary)
  }

  // ---- it stops on its stop signal ----
  const { signal: stopSignal, timeoutMs } = m.stop
  const before = r.runner.stops.length
  await guard(sup.stop(name), signal)
  const observed = r.runner.stops.slice(before).find((o) => o.pid === stopPid)
  const obs = observed && await guard(observed.outcome, signal)
  if (obs === undefined) {
    set('stop', 'fail', `process ${stopPid} had ended before it was asked to stop${lastOutput()}`)
  } else if (obs.goneAfterMs !== null) {
    set('stop', 'pass', `its group was gone ${seconds(obs.goneAfterMs)} after ${stopSignal} (stop.timeoutMs ${timeoutMs})`)
  } else {
    const [who, ...more] = obs.survivors
    const why = who === stopPid
      ? `its main process ignored ${stopSignal} or took too long to exit`
      : 'its main process had exited, a process it started had not: stop your children when you exit'
    set('stop', 'fail', `process ${who ?? '?'} of its group was still running ${seconds(timeoutMs)} after ${stopSignal}${more.length > 0 ? `, and ${more.length} more (${more.slice(0, 5).join(', ')})` : ''} (${why}); plugvisor then kills the group with SIGKILL`)
  }

  // ---- it comes back after a SIGKILL ----
  await comesBack(r, { changes, transitions, probes, lastOutput, describeExit })
}

/**
 * A change of config through the same path PUT /plugins/NAME/config takes (the manifest file is
 * left alone): the config gets RELOAD_CHECK_KEY with a new value, the hook runs, and the plugin
 * must still be the same process and show the value — in its health answer or its output —
 * within RELOAD_REPORT_MS. The old config is put back afterwards.
 */
async function reloadHook (r: Run, w: { pid: number, lastOutput: () => string }): Promise<void> {
  const { sup, m, set, opts: { signal } } = r
  const hook = m.hooks?.reload
  if (hook === undefined) {
    set('reload-hook', 'skip', 'no hooks.reload declared: a change of config restarts the plugin')
    return
  }
  const how = hook.signal ?? `${hook.http!.method} ${hook.http!.path}`
  const value = `reload-${process.pid}-${Date.now().toString(36)}`
  const doc = r.doc as Record<string, unknown>
  const changed = parseManifest({ ...doc, config: { ...(doc.config as object | undefined), [RELOAD_CHECK_KEY]: value } }, { file: r.file, baseDir: path.dirname(r.file), env: r.opts.env ?? process.env })
  if (!changed.manifest) {
    set('reload-hook', 'skip', `its configSchema refuses the key the check adds (${RELOAD_CHECK_KEY}: ${changed.problems.map((p) => p.reason).join('; ')}); allow extra keys to have the reload hook checked`)
    return
  }
  const next: LoadedManifest = { ...m, config: changed.manifest.config }
  const outputFrom = sup.logs(m.name, LOG_RING_LINES).length
  const t0 = Date.now()
  let applied: 'reloaded' | 'restarted'
  try {
    applied = await guard(sup.reconfigure(next), signal)
  } catch (err) {
    if (err instanceof Interrupted) throw err
    set('reload-hook', 'fail', `${how}: ${(err as Error).message.replace(/^the reload hook of plugin '[^']*' failed: /, 'the hook failed: ')}${w.lastOutput()}`)
    return
  }
  const now = sup.summary(m.name)
  if (applied !== 'reloaded' || now.pid !== w.pid) {
    const why = hook.signal ? ` (the default action of ${hook.signal} ends a process: install a handler for it)` : ''
    set('reload-hook', 'fail', `process ${w.pid} did not survive the reload${why}: ${now.pid === null ? `state ${now.state}` : `it runs as process ${now.pid} now`}${w.lastOutput()}`)
    return
  }
  const http = m.healthCheck?.http
  const healthPort = http?.port ?? sup.portOf(m.name)
  const inOutput = (): boolean => sup.logs(m.name, LOG_RING_LINES).slice(outputFrom).some((l) => l.line.includes(value))
  const inHealth = async (): Promise<boolean> => {
    if (!http || healthPort === undefined) return false
    try {
      const res = await request(`http://127.0.0.1:${healthPort}${http.path}`, { headers: http.headers, headersTimeout: 1000, bodyTimeout: 1000 })
      return (await res.body.text()).includes(value)
    } catch {
      return false
    }
  }
  let seen: 'output' | 'health' | undefined
  let delay = 20
  while (seen === undefined && Date.now() - t0 < RELOAD_REPORT_MS && sup.summary(m.name).pid === w.pid) {
    if (inOutput()) seen = 'output'
    else if (await guard(inHealth(), signal)) seen = 'health'
    else {
      await guard(new Promise((resolve) => setTimeout(resolve, delay)), signal)
      delay = Math.min(delay * 2, 250)
    }
  }
  if (sup.summary(m.name).pid !== w.pid) {
    set('reload-hook', 'fail', `process ${w.pid} ended after ${how}${hook.signal ? ` (the default action of ${hook.signal} ends a process: install a handler for it)` : ''}${w.lastOutput()}`)
    return
  }
  if (seen === undefined) {
    set('reload-hook', 'fail', `${how} succeeded and process ${w.pid} kept running, but within ${seconds(RELOAD_REPORT_MS)} neither its output nor its health answer showed the new config (${RELOAD_CHECK_KEY}: ${JSON.stringify(value)}): read PLUGVISOR_CONFIG_FILE${hook.http ? ' (or the request body)' : ''} when it arrives, and print the config you now run with or put it in your health+json body${w.lastOutput()}`)
    return
  }
  set('reload-hook', 'pass', `${how}: the same process ${w.pid} ${seen === 'output' ? 'printed' : 'reported in its health answer'} the new config ${seconds(Date.now() - t0)} after the change, no restart`)
  // Back to the manifest's config for the checks that follow (a failure here is not the check's).
  await guard(sup.reconfigure(m).catch(() => {}), signal)
}

async function comesBack (r: Run, w: {
  changes: Changes
  transitions: TransitionEvent[]
  probes: ProbeEvent[]
  lastOutput: () => string
  describeExit: (e: TransitionEvent) => string
}): Promise<void> {
  const { sup, m, budget, set, opts: { signal } } = r
  const name = m.name
  const again = await guard(sup.start(name), signal)
  if (again.state !== 'running' || again.pid === null) {
    set('sigkill', 'fail', `could not be started again after the stop: ${again.state}${w.lastOutput()}`)
    return
  }
  // Up first (health passed or the port listens), so the kill hits a running plugin, not a starting one.
  const upFrom = w.probes.length
  const up = (since: number): boolean => m.healthCheck ? w.probes.slice(since).some((p) => p.result !== 'failure') : true
  await w.changes.until(() => up(upFrom), Date.now() + budget.ms, signal)
  const killed = again.pid
  const from = w.transitions.length
  const probesFrom = w.probes.length
  const t0 = Date.now()
  try { process.kill(killed, 'SIGKILL') } catch {}
  const byHand = m.restart.policy === 'never' || m.restart.maxRestarts === 0
  if (byHand) {
    await w.changes.until(() => w.transitions.slice(from).some((e) => e.from === 'running'), Date.now() + 5000, signal)
    await guard(sup.start(name), signal)
  }
  const delay = byHand ? 0 : m.restart.initialDelayMs * (1 + m.restart.jitter)
  const deadline = t0 + delay + budget.ms
  const runningAgain = (): boolean => { const s = sup.summary(name); return s.state === 'running' && s.pid !== null && s.pid !== killed }
  const back = await w.changes.until(() => runningAgain() && up(probesFrom), deadline, signal)
  const how = byHand ? `started by hand: restart.policy ${m.restart.policy}${m.restart.maxRestarts === 0 ? ', maxRestarts 0' : ''}` : 'restarted by plugvisor'
  if (back) {
    set('sigkill', 'pass', `back ${seconds(Date.now() - t0)} after SIGKILL of pid ${killed}: pid ${sup.summary(name).pid}, ${m.healthCheck ? 'health check passed, ' : ''}${how}`)
    return
  }
  const ends = w.transitions.slice(from).filter((e) => e.from === 'running')
  const last = ends.at(-1)
  const failedProbe = w.probes.slice(probesFrom).filter((p) => p.result === 'failure').at(-1)
  const what = runningAgain()
    ? `it runs again (pid ${sup.summary(name).pid}) but its health check did not pass${failedProbe ? `: ${failedProbe.error ?? 'failure'}` : ''}`
    : ends.length > 1 && last
      ? `after the restart it ${w.describeExit(last)}${ends.length > 2 ? ` (${ends.length - 1} times)` : ''}: state ${sup.summary(name).state}`
      : `state ${sup.summary(name).state}`
  set('sigkill', 'fail', `did not come back within ${seconds(deadline - t0)} after SIGKILL of pid ${killed} (${how}): ${what}${w.lastOutput()}`)
}
