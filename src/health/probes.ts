// Running one probe of a plugin, as Kubernetes defines the three kinds: http (GET, 2xx/3xx
// passes), tcp (connect), exec (exit code 0 passes). Every probe is bounded by its timeout and
// answers a result; it never throws.
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import type { IncomingHttpHeaders } from 'node:http'
import { Agent, type Dispatcher } from 'undici'
import type { HealthCheck } from '../config/schema.js'

export const PROBE_KINDS = ['http', 'tcp', 'exec'] as const
export type ProbeKind = typeof PROBE_KINDS[number]
/** warn passes (the plugin is degraded), failure counts towards failureThreshold. */
export const PROBE_RESULTS = ['success', 'warn', 'failure'] as const
export type ProbeResult = typeof PROBE_RESULTS[number]
/** The startup probe runs until it passes once; then the regular probe. */
export const PROBE_PHASES = ['startup', 'regular'] as const
export type ProbePhase = typeof PROBE_PHASES[number]

/** One probe result, published by the health monitor (metrics and history subscribe). */
export interface ProbeEvent {
  plugin: string
  probe: ProbeKind
  phase: ProbePhase
  result: ProbeResult
  durationMs: number
  at: number
  error?: string
}

export interface ProbeOutcome {
  result: ProbeResult
  error?: string
}

/** Where and how to probe one plugin, resolved when a probe cycle starts. */
export interface ProbeTarget {
  port: number | undefined
  cwd: string
  env: Record<string, string>
}

const HOST = '127.0.0.1'
/** An application/health+json body bigger than this is not read (the status code decides). */
const MAX_HEALTH_BODY = 64 * 1024

export function probeKind (hc: HealthCheck): ProbeKind {
  if (hc.http) return 'http'
  if (hc.tcp) return 'tcp'
  return 'exec'
}

/** One pooled HTTP client for every http probe of the daemon (keep-alive between probes). */
export function createProbeAgent (): Agent {
  return new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, connections: 2, pipelining: 1 })
}

export async function runProbe (hc: HealthCheck, target: ProbeTarget, agent: Agent): Promise<ProbeOutcome> {
  try {
    if (hc.http) return await httpProbe(hc.http, hc.http.port ?? target.port, hc.timeoutMs, agent)
    if (hc.tcp) return await tcpProbe(hc.tcp.port ?? target.port, hc.timeoutMs)
    if (hc.exec) return await execProbe(hc.exec, target, hc.timeoutMs)
    return { result: 'failure', error: 'no probe configured' }
  } catch (err) {
    return { result: 'failure', error: (err as Error).message }
  }
}

function httpProbe (http: NonNullable<HealthCheck['http']>, port: number | undefined, timeoutMs: number, agent: Agent): Promise<ProbeOutcome> {
  if (port === undefined) return Promise.resolve({ result: 'failure', error: 'no port to probe' })
  return new Promise((resolve) => {
    agent.dispatch({ origin: `http://${HOST}:${port}`, path: http.path, method: 'GET', headers: http.headers }, new HttpProbeAnswer(timeoutMs, resolve))
  })
}

/** Why a probe's request is abandoned at its timeout (never shown: the outcome says "timed out"). */
const TIMED_OUT = new Error('probe timed out')

/**
 * Reads the answer to one http probe straight from the pooled connection: the outcome is known at
 * the status line unless an application/health+json body is to be read, and one timer bounds the
 * whole probe. Cheaper than undici's request(): no body stream, no AbortSignal with its timer
 * that fires after every probe. A body that is not read is still drained, so the connection
 * stays kept-alive, unless it is still arriving at the timeout.
 */
class HttpProbeAnswer implements Dispatcher.DispatchHandler {
  readonly #timeoutMs: number
  readonly #resolve: (o: ProbeOutcome) => void
  readonly #timer: NodeJS.Timeout
  #controller: Dispatcher.DispatchController | undefined
  #settled = false
  #ended = false
  /** The health+json body so far; undefined when it is not read. */
  #body: Buffer[] | undefined
  #bodyBytes = 0

  constructor (timeoutMs: number, resolve: (o: ProbeOutcome) => void) {
    this.#timeoutMs = timeoutMs
    this.#resolve = resolve
    this.#timer = setTimeout(this.#onTimeout, timeoutMs)
  }

  readonly #onTimeout = (): void => {
    this.#settle({ result: 'failure', error: `timed out after ${this.#timeoutMs} ms` })
    if (!this.#ended) this.#controller?.abort(TIMED_OUT)
  }

  #settle (o: ProbeOutcome): void {
    if (this.#settled) return
    this.#settled = true
    this.#resolve(o)
  }

  #end (): void {
    this.#ended = true
    clearTimeout(this.#timer)
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    // Timed out while waiting for a connection.
    if (this.#settled) controller.abort(TIMED_OUT)
  }

  onResponseStart (_c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200 || statusCode >= 400) return this.#settle({ result: 'failure', error: `HTTP ${statusCode}` })
    const type = headers['content-type']
    if (typeof type !== 'string' || !type.startsWith('application/health+json') || Number(headers['content-length'] ?? 0) > MAX_HEALTH_BODY) {
      return this.#settle({ result: 'success' })
    }
    this.#body = []
  }

  onResponseData (_c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#body === undefined) return
    this.#bodyBytes += chunk.length
    if (this.#bodyBytes > MAX_HEALTH_BODY) {
      this.#body = undefined
      this.#settle({ result: 'success' })
    } else {
      this.#body.push(chunk)
    }
  }

  onResponseEnd (): void {
    this.#end()
    if (this.#body !== undefined) this.#settle(healthJsonOutcome(this.#body))
  }

  onResponseError (_c: Dispatcher.DispatchController, err: Error): void {
    this.#end()
    this.#settle({ result: 'failure', error: err.message })
  }
}

function healthJsonOutcome (body: Buffer[]): ProbeOutcome {
  let status: unknown
  try {
    status = (JSON.parse(Buffer.concat(body).toString('utf8')) as { status?: unknown }).status
  } catch {
    return { result: 'failure', error: 'invalid application/health+json body' }
  }
  if (status === 'fail') return { result: 'failure', error: 'health+json status fail' }
  if (status === 'warn') return { result: 'warn', error: 'health+json status warn' }
  return { result: 'success' }
}

function tcpProbe (port: number | undefined, timeoutMs: number): Promise<ProbeOutcome> {
  if (port === undefined) return Promise.resolve({ result: 'failure', error: 'no port to probe' })
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port })
    const finish = (o: ProbeOutcome): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(o)
    }
    const timer = setTimeout(() => finish({ result: 'failure', error: `timed out after ${timeoutMs} ms` }), timeoutMs)
    socket.once('connect', () => finish({ result: 'success' }))
    socket.once('error', (err) => finish({ result: 'failure', error: err.message }))
  })
}

function execProbe (exec: NonNullable<HealthCheck['exec']>, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    // Its own process group, so a timeout kills whatever the probe command started too.
    const child = spawn(exec.command, exec.args, { cwd: target.cwd, env: target.env, stdio: 'ignore', detached: true, shell: false })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      try { process.kill(-child.pid!, 'SIGKILL') } catch { child.kill('SIGKILL') }
    }, timeoutMs)
    child.once('error', (err) => {
      clearTimeout(timer)
      resolve({ result: 'failure', error: err.message })
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (timedOut) resolve({ result: 'failure', error: `timed out after ${timeoutMs} ms` })
      else if (code === 0) resolve({ result: 'success' })
      else resolve({ result: 'failure', error: signal ? `killed by ${signal}` : `exit code ${code}` })
    })
  })
}
