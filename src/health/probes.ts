// Running one probe of a plugin, as Kubernetes defines the three kinds: http (GET, 2xx/3xx
// passes), tcp (connect), exec (exit code 0 passes). Every probe is bounded by its timeout and
// answers a result; it never throws.
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { HttpProbeClient, PROBE_HOST } from './http-probe.js'
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

export function probeKind (hc: HealthCheck): ProbeKind {
  if (hc.http) return 'http'
  if (hc.tcp) return 'tcp'
  return 'exec'
}

/** One client for every http probe of the daemon (kept-alive connections between probes). */
export function createProbeClient (): HttpProbeClient {
  return new HttpProbeClient()
}

export async function runProbe (hc: HealthCheck, target: ProbeTarget, client: HttpProbeClient): Promise<ProbeOutcome> {
  try {
    if (hc.http) {
      const port = hc.http.port ?? target.port
      if (port === undefined) return { result: 'failure', error: 'no port to probe' }
      return await client.probe(port, hc.http, hc.timeoutMs)
    }
    if (hc.tcp) return await tcpProbe(hc.tcp.port ?? target.port, hc.timeoutMs)
    if (hc.exec) return await execProbe(hc.exec, target, hc.timeoutMs)
    return { result: 'failure', error: 'no probe configured' }
  } catch (err) {
    return { result: 'failure', error: (err as Error).message }
  }
}

function tcpProbe (port: number | undefined, timeoutMs: number): Promise<ProbeOutcome> {
  if (port === undefined) return Promise.resolve({ result: 'failure', error: 'no port to probe' })
  return new Promise((resolve) => {
    const socket = connect({ host: PROBE_HOST, port })
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
