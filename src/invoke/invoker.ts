// Calls into plugins: forwards one request to a plugin's loopback port through its policies
// (fast refusals first: not running, no port, circuit open; then bulkhead, breaker, retry,
// timeout), and answers through the fallback when the call fails. Knows nothing of HTTP
// frameworks: it takes a request description and returns an answer or a failure.
import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'
import type { Readable } from 'node:stream'
import type { IncomingHttpHeaders } from 'node:http'
import { Agent, type Dispatcher } from 'undici'
import { BrokenCircuitError } from 'cockatiel'
import type { Supervisor } from '../supervisor/supervisor.js'
import { buildPolicies, IDEMPOTENT_METHODS, type PluginPolicies, type Upstream } from './policies.js'
import type { CircuitInfo, CircuitStateName } from './circuit.js'
import type { CircuitEvent } from '../supervisor/events.js'
import { systemClock, type Clock } from '../clock.js'
import { errors } from '../errors.js'
import { CallStatsRecord, type CallKind, type CallStatsView } from './call-stats.js'
import { requestHeaders, responseHeaders, type HeaderMap } from './headers.js'
import type { Deadline } from './deadline.js'

/** What became of a call into a plugin (the `outcome` label of plugvisor_invocations_total). */
export const INVOCATION_OUTCOMES = ['success', 'error', 'timeout', 'connection_error', 'unavailable', 'circuit_open', 'rejected'] as const
export type InvocationOutcome = typeof INVOCATION_OUTCOMES[number]

export type FailureReason = 'unavailable' | 'circuit-open' | 'timeout' | 'rejected' | 'connection'

export interface InvokeRequest {
  plugin: string
  method: string
  /** Path and query for the plugin, starting with '/'. */
  path: string
  headers: IncomingHttpHeaders
  /** The request body as it arrives, or undefined when there is none. */
  body: Readable | undefined
  clientIp: string
  requestId: string
}

export type InvokeResult =
  | {
    type: 'answer'
    statusCode: number
    headers: HeaderMap
    /** A stream from the plugin, a fallback body, or nothing. */
    body: Readable | Buffer | undefined
    /** The plugin that answered. */
    plugin: string
    /** Set when the fallback answered: 'status' or the fallback plugin's name. */
    fallback: string | null
  }
  | { type: 'failure', reason: FailureReason, plugin: string, message: string, timeoutMs?: number }

type Observe = (plugin: string, outcome: InvocationOutcome, seconds: number) => void

export interface InvokerOptions {
  supervisor: Supervisor
  /** Every call: plugin, outcome, seconds until the answer's headers (or the failure). */
  observe?: Observe
  /** Bodies that may be replayed (retries, fallback plugin) are buffered up to this many bytes; a declared Content-Length over it is refused for every method. */
  maxReplayBodyBytes: number
  /** When the daemon authenticates callers, their Authorization header is not passed on. */
  dropAuthorization: boolean
  agent?: Agent
  clock?: Clock
}

export interface InvokerEvents {
  /** The circuit breaker of calls into a plugin changed state. */
  circuit: [CircuitEvent]
}

export interface Invoker extends EventEmitter<InvokerEvents> {
  invoke: (req: InvokeRequest) => Promise<InvokeResult>
  circuit: (plugin: string) => CircuitInfo
  isolate: (plugin: string) => CircuitInfo
  reset: (plugin: string) => CircuitInfo
  /** The plugin's call statistics since its manifest was loaded. */
  calls: (plugin: string) => CallStatsView
  /** Calls a host made elsewhere: counted in the statistics, the breaker and the metrics like proxied ones. */
  recordCalls: (plugin: string, calls: readonly ReportedCall[]) => Promise<void>
  close: () => Promise<void>
}

/** A call a host made to the plugin over its own protocol. */
export interface ReportedCall { success: boolean, durationMs: number, error?: string }

/** How the statistics count each outcome. */
const CALL_KIND: Record<InvocationOutcome, CallKind> = {
  success: 'succeeded',
  error: 'failed',
  timeout: 'failed',
  connection_error: 'failed',
  unavailable: 'rejected',
  circuit_open: 'rejected',
  rejected: 'rejected'
}

type Body = Readable | Buffer | undefined

const ignore = (): void => {}

export function createInvoker (opts: InvokerOptions): Invoker {
  const { supervisor } = opts
  // One pooled agent for every plugin: keep-alive connections per loopback origin.
  const agent = opts.agent ?? new Agent({ keepAliveTimeout: 10_000, keepAliveMaxTimeout: 60_000, connect: { timeout: 5_000 } })
  const policies = new Map<string, PluginPolicies>()
  const stats = new Map<string, CallStatsRecord>()
  const observe = opts.observe ?? (() => {})
  const clock = opts.clock ?? systemClock
  const emitter = new EventEmitter<InvokerEvents>()
  emitter.setMaxListeners(0)

  /** The supervisor shows the circuit with the plugin's health; every change is published here. */
  const report = (name: string, to: CircuitStateName, reason: string): void => {
    if (!supervisor.has(name)) return
    const from = supervisor.circuit(name)
    supervisor.setCircuit(name, to, reason)
    if (from !== null && from !== to) emitter.emit('circuit', { plugin: name, from, to, reason, at: clock.now() })
  }

  const build = (name: string): void => {
    policies.get(name)?.dispose()
    const p = buildPolicies(supervisor.manifest(name).resilience, {
      onCircuitChange: ({ to, reason }) => report(name, to, reason)
    })
    policies.set(name, p)
    stats.set(name, new CallStatsRecord())
    report(name, 'closed', 'policies built')
  }
  // A changed manifest is unloaded and loaded again: its policies are rebuilt from scratch.
  const onLoaded = (name: string): void => build(name)
  const onUnloaded = (name: string): void => {
    policies.get(name)?.dispose()
    policies.delete(name)
    stats.delete(name)
  }
  for (const name of supervisor.names()) build(name)
  supervisor.on('loaded', onLoaded)
  supervisor.on('unloaded', onUnloaded)

  const policiesOf = (name: string): PluginPolicies => {
    let p = policies.get(name)
    if (!p) { build(name); p = policies.get(name)! }
    return p
  }
  const statsOf = (name: string): CallStatsRecord => {
    let st = stats.get(name)
    if (!st) { build(name); st = stats.get(name)! }
    return st
  }
  /** A call that did not reach an answer: counted, observed, and described for the route. */
  const failure = (name: string, started: number, outcome: InvocationOutcome, reason: FailureReason, message: string, timeoutMs?: number): InvokeResult => {
    const ms = performance.now() - started
    statsOf(name).record(CALL_KIND[outcome], ms, Date.now(), message)
    observe(name, outcome, ms / 1000)
    return timeoutMs === undefined ? { type: 'failure', reason, plugin: name, message } : { type: 'failure', reason, plugin: name, message, timeoutMs }
  }

  /** One attempt: the request to the plugin, resolved when its answer's headers came. */
  const attempt = (name: string, port: number, req: InvokeRequest, headers: HeaderMap, body: Body, deadline: Deadline): Promise<Upstream> => {
    const options: Dispatcher.RequestOptions = {
      origin: `http://127.0.0.1:${port}`,
      path: req.path,
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body: body ?? null,
      // undici reads aborted/reason and adds an 'abort' listener, all a Deadline provides.
      signal: deadline as unknown as AbortSignal,
      // Between chunks of the answer's body; the deadline covers the wait for its headers.
      bodyTimeout: deadline.ms,
      headersTimeout: 0
    }
    return agent.request(options).then(
      (res) => res as unknown as Upstream,
      (err: unknown) => { throw deadline.aborted ? new errors.PluginTimeout(name, deadline.ms) : err }
    )
  }

  /** The call into one plugin through its policies, without the fallback. */
  const call = async (name: string, req: InvokeRequest, body: Body): Promise<InvokeResult> => {
    const started = performance.now()

    // Not summary(): that builds the whole API object on every call.
    const state = supervisor.snapshot(name).state.name
    if (state !== 'running') return failure(name, started, 'unavailable', 'unavailable', `it is ${state}`)
    const port = supervisor.portOf(name)
    if (port === undefined) return failure(name, started, 'unavailable', 'unavailable', 'it has no port (set port in its manifest to call into it)')
    const p = policiesOf(name)
    if (p.refusesCalls()) return failure(name, started, 'circuit_open', 'circuit-open', `circuit ${p.state()}`)
    const { timeoutMs, bulkhead } = p.resilience
    // The slot is held until the answer's body is done (its 'close'), not only until its headers.
    const slot = p.bulkhead.acquire()
    if (slot === null) return failure(name, started, 'rejected', 'rejected', `${bulkhead.maxConcurrent} calls in flight and ${bulkhead.maxQueued} queued (bulkhead full)`)
    if (slot !== undefined) await slot
    const headers = requestHeaders(req.headers, { clientIp: req.clientIp, requestId: req.requestId, dropAuthorization: opts.dropAuthorization })

    let upstream: Upstream
    try {
      upstream = await p.call(req.method, (deadline) => attempt(name, port, req, headers, body, deadline))
    } catch (err) {
      p.bulkhead.release()
      if (err instanceof BrokenCircuitError) return failure(name, started, 'circuit_open', 'circuit-open', `circuit ${p.state()}`)
      if (err instanceof errors.PluginTimeout) return failure(name, started, 'timeout', 'timeout', err.message, timeoutMs)
      // Anything else the call threw (a refused or reset connection, a broken answer) is a connection failure.
      return failure(name, started, 'connection_error', 'connection', (err as Error).message || String(err))
    }
    // A body destroyed unread (the fallback answered instead) errors: that is no news here.
    upstream.body.once('close', p.bulkhead.release).on('error', ignore)
    let answerBody: Body = upstream.body as unknown as Readable
    // No body may follow (HEAD, 204, 304): read the (empty) stream to its end here, which also
    // frees the bulkhead slot.
    if (req.method === 'HEAD' || upstream.statusCode === 204 || upstream.statusCode === 304) {
      await upstream.body.dump().catch(() => {})
      answerBody = undefined
    }
    const ms = performance.now() - started
    if (upstream.statusCode >= 500) {
      statsOf(name).record('failed', ms, Date.now(), `answered ${upstream.statusCode}`, upstream.statusCode)
      observe(name, 'error', ms / 1000)
    } else {
      statsOf(name).record('succeeded', ms, Date.now())
      observe(name, 'success', ms / 1000)
    }
    return { type: 'answer', statusCode: upstream.statusCode, headers: responseHeaders(upstream.headers), body: answerBody, plugin: name, fallback: null }
  }

  const fallbackFor = async (name: string, req: InvokeRequest, body: Body, first: InvokeResult): Promise<InvokeResult> => {
    const fb = supervisor.manifest(name).resilience.fallback
    if (fb === undefined) return first
    const failed = first.type === 'failure' || first.statusCode >= 500
    if (!failed) return first
    const discard = (): void => {
      if (first.type === 'answer' && first.body !== undefined && !Buffer.isBuffer(first.body)) first.body.destroy()
    }
    if ('status' in fb) {
      discard()
      const json = fb.body === undefined ? undefined : Buffer.from(JSON.stringify(fb.body))
      return {
        type: 'answer',
        statusCode: fb.status,
        headers: { 'x-plugvisor-fallback': 'status', ...(json ? { 'content-type': 'application/json; charset=utf-8' } : {}) },
        body: json,
        plugin: name,
        fallback: 'status'
      }
    }
    // The other plugin through its own policies but never its fallback: one hop, no loops.
    if (fb.plugin === name || !supervisor.has(fb.plugin)) return first
    // A streamed body was spent on the first call (bodies are buffered when a fallback plugin is set).
    if (body !== undefined && !Buffer.isBuffer(body)) return first
    const second = await call(fb.plugin, req, body)
    if (second.type === 'failure') return first
    discard()
    return { ...second, headers: { ...second.headers, 'x-plugvisor-fallback': fb.plugin }, fallback: fb.plugin }
  }

  return Object.assign(emitter, {
    async invoke (req: InvokeRequest) {
      const r = supervisor.manifest(req.plugin).resilience
      // A declared length over the limit is refused before anything is read or sent, whatever the method.
      if (Number(req.headers['content-length']) > opts.maxReplayBodyBytes) throw new errors.PayloadTooLarge()
      // Read first, up to the limit: a body that may be sent twice (retries, a fallback plugin),
      // and one of no declared length (chunked), whose size is known only at its end — past the
      // limit it is a 413 before anything reaches the plugin (nginx buffers such bodies too).
      // Others (a declared length within the limit) stream.
      const replay = IDEMPOTENT_METHODS.has(req.method) || (r.fallback !== undefined && 'plugin' in r.fallback)
      const unsized = req.headers['content-length'] === undefined
      const body: Body = req.body !== undefined && (replay || unsized) ? await readBounded(req.body, opts.maxReplayBodyBytes) : req.body
      const first = await call(req.plugin, req, body)
      return fallbackFor(req.plugin, req, body, first)
    },
    circuit: (name: string) => policiesOf(name).circuit(),
    isolate (name: string) {
      const p = policiesOf(name)
      p.isolate()
      return p.circuit()
    },
    reset (name: string) {
      const p = policiesOf(name)
      p.reset()
      return p.circuit()
    },
    calls: (name: string) => statsOf(name).view(name),
    async recordCalls (name: string, calls: readonly ReportedCall[]) {
      const p = policiesOf(name)
      const st = statsOf(name)
      const at = Date.now()
      for (const c of calls) {
        const message = c.error ?? 'failed (reported)'
        st.record(c.success ? 'succeeded' : 'failed', c.durationMs, at, message)
        observe(name, c.success ? 'success' : 'error', c.durationMs / 1000)
        await p.record(c.success, message)
      }
    },
    async close () {
      supervisor.off('loaded', onLoaded)
      supervisor.off('unloaded', onUnloaded)
      for (const p of policies.values()) p.dispose()
      policies.clear()
      if (opts.agent === undefined) await agent.close()
    }
  })
}

/**
 * Reads a body up to `limit` bytes. Past it: 413, and the rest of the body is read and thrown
 * away, so the answer reaches the client and the connection stays usable (destroying the request
 * would close the socket under the client before it saw the 413).
 */
function readBounded (stream: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const stop = (): void => {
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.off('error', onError)
    }
    const onData = (chunk: Buffer | string): void => {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)
      size += b.length
      if (size <= limit) { chunks.push(b); return }
      stop()
      stream.on('error', () => {})
      stream.resume()
      reject(new errors.PayloadTooLarge())
    }
    const onEnd = (): void => { stop(); resolve(Buffer.concat(chunks)) }
    const onError = (err: Error): void => { stop(); reject(err) }
    stream.on('data', onData)
    stream.on('end', onEnd)
    stream.on('error', onError)
  })
}
