// Running one probe of a plugin, as Kubernetes defines the three kinds: http (GET, 2xx/3xx
// passes), tcp (connect), exec (exit code 0 passes). Every probe is bounded by its timeout and
// answers a result; it never throws.
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { Agent, request } from 'undici'
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

async function httpProbe (http: NonNullable<HealthCheck['http']>, port: number | undefined, timeoutMs: number, agent: Agent): Promise<ProbeOutcome> {
  if (port === undefined) return { result: 'failure', error: 'no port to probe' }
  const signal = AbortSignal.timeout(timeoutMs)
  let res: Awaited<ReturnType<typeof request>>
  try {
    res = await request(`http://${HOST}:${port}${http.path}`, {
      method: 'GET', headers: http.headers, dispatcher: agent, signal, headersTimeout: timeoutMs, bodyTimeout: timeoutMs
    })
  } catch (err) {
    if (signal.aborted) return { result: 'failure', error: `timed out after ${timeoutMs} ms` }
    throw err
  }
  const type = String(res.headers['content-type'] ?? '')
  const length = Number(res.headers['content-length'] ?? 0)
  if (res.statusCode < 200 || res.statusCode >= 400) {
    await res.body.dump()
    return { result: 'failure', error: `HTTP ${res.statusCode}` }
  }
  if (!type.startsWith('application/health+json') || length > MAX_HEALTH_BODY) {
    await res.body.dump()
    return { result: 'success' }
  }
  let status: unknown
  try {
    status = ((await res.body.json()) as { status?: unknown }).status
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
