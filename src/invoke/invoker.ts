// Calls into plugins: forwards one request to a plugin's loopback port through its policies
// (fast refusals first: not running, no port, circuit open; then bulkhead, breaker, retry,
// timeout), and answers through the fallback when the call fails or while the fallback is active
// (fallback.ts decides that). Knows nothing of HTTP frameworks: it takes a request description
// and returns an answer or a failure.
import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import type { IncomingHttpHeaders } from 'node:http'
import { IDEMPOTENT_METHODS, LoopbackClient, request } from '../loopback-http.js'
import { BrokenCircuitError } from 'cockatiel'
import type { Supervisor } from '../supervisor/supervisor.js'
import { buildPolicies, type PluginPolicies, type Upstream } from './policies.js'
import type { CircuitInfo, CircuitStateName } from './circuit.js'
import type { CircuitEvent } from '../supervisor/events.js'
import { systemClock, type Clock } from '../clock.js'
import { errors } from '../errors.js'
import { CallStatsRecord, type CallKind, type CallStatsView } from './call-stats.js'
import { requestHeaders, responseHeaders, type HeaderMap } from './headers.js'
import type { Deadline } from './deadline.js'
import { createFallbacks, type FallbackChange, type FallbackRecord, type FallbackStateName, type FallbackView } from './fallback.js'
import type { FallbackTarget } from '../config/schema.js'
import type { TrendWindows } from '../health/trend.js'

/** What became of a call into a plugin (the `outcome` label of plugvisor_invocations_total). */
export const INVOCATION_OUTCOMES = ['success', 'error', 'timeout', 'connection_error', 'unavailable', 'circuit_open', 'rejected', 'fallback'] as const
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
    outcome: InvocationOutcome
    /** Milliseconds until the answer's headers. */
    ms: number
  }
  | { type: 'failure', reason: FailureReason, plugin: string, message: string, timeoutMs?: number, outcome: InvocationOutcome, ms: number }

type Observe = (plugin: string, outcome: InvocationOutcome, seconds: number) => void
type ObserveMany = (plugin: string, outcomes: Partial<Record<InvocationOutcome, number>>, seconds: ArrayLike<number>) => void

export interface InvokerOptions {
  supervisor: Supervisor
  /** Every call: plugin, outcome, seconds until the answer's headers (or the failure). */
  observe?: Observe
  /** Many calls at once (a reported batch): how many had each outcome, and each call's seconds in order. */
  observeMany?: ObserveMany
  /** Bodies that may be replayed (retries, fallback plugin) are buffered up to this many bytes; a declared Content-Length over it is refused for every method. */
  maxReplayBodyBytes: number
  /** When the daemon authenticates callers, their Authorization header is not passed on. */
  dropAuthorization: boolean
  clock?: Clock
}

export interface InvokerEvents {
  /** The circuit breaker of calls into a plugin changed state. */
  circuit: [CircuitEvent]
  /** Calls into a plugin went to its fallback, or back to it. */
  fallback: [FallbackChange]
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
  /** The plugin's calls in the trend's two windows ending at `now` (ms since the epoch). */
  callWindows: (plugin: string, now: number) => TrendWindows
  /** The plugin's fallback state. */
  fallback: (plugin: string) => FallbackView
  /** Every call goes to the fallback (`override`, or the manifest's) until deactivated; `actor` is the operator. */
  activateFallback: (plugin: string, override: FallbackTarget | undefined, actor: string) => FallbackView
  /** Ends a manual activation: auto mode (or off) again. */
  deactivateFallback: (plugin: string, actor: string) => FallbackView
  /** Whether calls go to the plugin's fallback now (the plugvisor_fallback_active gauge). */
  fallbackActive: (plugin: string) => boolean
  /** Who answers the plugin's calls now: inactive, auto or manual (the `fallback` of the plugin summaries). */
  fallbackState: (plugin: string) => FallbackStateName
  close: () => Promise<void>
}

/** A call a host made to the plugin over its own protocol. */
export interface ReportedCall { success: boolean, durationMs: number, error?: string }

/** How the statistics count each outcome of a call that was tried (a call the fallback took without trying the plugin is not the plugin's). */
const CALL_KIND: Record<Exclude<InvocationOutcome, 'fallback'>, CallKind> = {
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
  // One client for every plugin: kept-alive connections per loopback port.
  const client = new LoopbackClient()
  const policies = new Map<string, PluginPolicies>()
  const stats = new Map<string, CallStatsRecord>()
  const observe = opts.observe ?? (() => {})
  const observeMany: ObserveMany = opts.observeMany ?? (() => {})
  const clock = opts.clock ?? systemClock
  const emitter = new EventEmitter<InvokerEvents>()
  emitter.setMaxListeners(0)
  const fallbacks = createFallbacks({
    inputs: {
      has: (n) => supervisor.has(n),
      names: () => supervisor.names(),
      fallbackOf: (n) => supervisor.manifest(n).resilience.fallback,
      state: (n) => supervisor.snapshot(n).state.name,
      verdict: (n) => supervisor.verdict(n),
      circuit: (n) => supervisor.circuit(n)
    },
    now: () => clock.now(),
    publish: (change) => emitter.emit('fallback', change)
  })

  /** The supervisor shows the circuit with the plugin's health; every change is published here. */
  const report = (name: string, to: CircuitStateName, reason: string): void => {
    if (!supervisor.has(name)) return
    const from = supervisor.circuit(name)
    supervisor.setCircuit(name, to, reason)
    if (from !== null && from !== to) emitter.emit('circuit', { plugin: name, from, to, reason, at: clock.now() })
    fallbacks.refresh(name)
  }

  // The policies themselves are built at a plugin's first call (500 plugins of which few are
  // called kept 2 MB of breakers and retry policies): until then its circuit is closed.
  const build = (name: string): void => {
    policies.get(name)?.dispose()
    policies.delete(name)
    stats.set(name, new CallStatsRecord())
    fallbacks.loaded(name)
    report(name, 'closed', 'policies built')
  }
  // A changed manifest is unloaded and loaded again: its policies are rebuilt from scratch.
  const onLoaded = (name: string): void => build(name)
  const onUnloaded = (name: string): void => {
    policies.get(name)?.dispose()
    policies.delete(name)
    stats.delete(name)
    fallbacks.unloaded(name)
  }
  // Who answers follows the plugin's state and health (and its circuit, in report()).
  const onChange = (e: { plugin: string }): void => fallbacks.refresh(e.plugin)
  for (const name of supervisor.names()) build(name)
  supervisor.on('loaded', onLoaded)
  supervisor.on('unloaded', onUnloaded)
  supervisor.on('transition', onChange)
  supervisor.on('health', onChange)

  const policiesOf = (name: string): PluginPolicies => {
    let p = policies.get(name)
    if (p === undefined) {
      if (!stats.has(name)) build(name)
      const resilience = supervisor.manifest(name).resilience
      p = buildPolicies(resilience, {
        onCircuitChange: ({ to, reason }) => report(name, to, reason),
        timeoutError: () => new errors.PluginTimeout(name, resilience.timeoutMs)
      })
      policies.set(name, p)
    }
    return p
  }
  const statsOf = (name: string): CallStatsRecord => {
    let st = stats.get(name)
    if (!st) { build(name); st = stats.get(name)! }
    return st
  }
  /** A call that did not reach an answer: counted, and described for the route (invoke() observes it). */
  const failure = (name: string, started: number, outcome: Exclude<InvocationOutcome, 'fallback'>, reason: FailureReason, message: string, timeoutMs?: number): InvokeResult => {
    const ms = performance.now() - started
    statsOf(name).record(CALL_KIND[outcome], ms, Date.now(), message)
    return timeoutMs === undefined ? { type: 'failure', reason, plugin: name, message, outcome, ms } : { type: 'failure', reason, plugin: name, message, timeoutMs, outcome, ms }
  }

  /** One attempt: the request to the plugin, resolved when its answer's headers came. */
  const attempt = (port: number, req: InvokeRequest, headers: HeaderMap, body: Body, deadline: Deadline): Promise<Upstream> => {
    // A streamed body keeps its declared length (bodies without one are buffered before this).
    const declared = body !== undefined && !Buffer.isBuffer(body) ? Number(req.headers['content-length']) : NaN
    const length = Number.isSafeInteger(declared) ? declared : undefined
    // The deadline covers the wait for the answer's headers (it aborts with PluginTimeout, see
    // build()); the same time is allowed between chunks of its body.
    return request(client, port, { method: req.method, path: req.path, headers, body, length }, deadline, deadline.ms) as unknown as Promise<Upstream>
  }

  /** The call into one plugin through its policies, without the fallback; not observed yet. */
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
      upstream = await p.call(req.method, (deadline) => attempt(port, req, headers, body, deadline))
    } catch (err) {
      p.bulkhead.release()
      if (err instanceof BrokenCircuitError) return failure(name, started, 'circuit_open', 'circuit-open', `circuit ${p.state()}`)
      if (err instanceof errors.PluginTimeout) return failure(name, started, 'timeout', 'timeout', err.message, timeoutMs)
      // Anything else the call threw (a refused or reset connection, a broken answer) is a connection failure.
      return failure(name, started, 'connection_error', 'connection', (err as Error).message || String(err))
    }
    let answerBody: Body
    if (Buffer.isBuffer(upstream.body)) {
      // The whole answer came with its head: nothing more to read, the slot is free.
      p.bulkhead.release()
      // Without a content-type of the plugin's the framework would name one for a buffer: a stream
      // passes the answer as it is.
      answerBody = upstream.headers['content-type'] === undefined && upstream.body.length > 0 ? Readable.from([upstream.body], { objectMode: false }) : upstream.body
    } else {
      // A body destroyed unread (the fallback answered instead) errors: that is no news here.
      upstream.body.once('close', p.bulkhead.release).on('error', ignore)
      answerBody = upstream.body
    }
    // No body may follow (HEAD, 204, 304): read the (empty) stream to its end here, which also
    // frees the bulkhead slot.
    if (req.method === 'HEAD' || upstream.statusCode === 204 || upstream.statusCode === 304) {
      if (!Buffer.isBuffer(upstream.body)) await upstream.body.dump().catch(() => {})
      answerBody = undefined
    }
    const ms = performance.now() - started
    const failed = upstream.statusCode >= 500
    if (failed) statsOf(name).record('failed', ms, Date.now(), `answered ${upstream.statusCode}`, upstream.statusCode)
    else statsOf(name).record('succeeded', ms, Date.now())
    return { type: 'answer', statusCode: upstream.statusCode, headers: responseHeaders(upstream.headers), body: answerBody, plugin: name, fallback: null, outcome: failed ? 'error' : 'success', ms }
  }

  /** A call into a plugin, observed (the metrics) with its own outcome. */
  const observed = async (name: string, req: InvokeRequest, body: Body): Promise<InvokeResult> => {
    const r = await call(name, req, body)
    observe(name, r.outcome, r.ms / 1000)
    return r
  }

  /**
   * The fallback's answer to a call into `name`: its fixed answer, or the same request to the
   * fallback plugin through that plugin's own policies but never its fallback (one hop, no
   * loops). A failure of the fallback plugin is returned as it is.
   */
  const fromFallback = async (name: string, fb: FallbackRecord, req: InvokeRequest, body: Body, started: number): Promise<InvokeResult> => {
    const target = fb.target!
    if ('status' in target) {
      const json = target.body === undefined ? undefined : Buffer.from(JSON.stringify(target.body))
      return {
        type: 'answer',
        statusCode: target.status,
        headers: { 'x-plugvisor-fallback': 'status', ...(json ? { 'content-type': 'application/json; charset=utf-8' } : {}) },
        body: json,
        plugin: name,
        fallback: 'status',
        outcome: 'fallback',
        ms: performance.now() - started
      }
    }
    const second = await observed(target.plugin, req, body)
    if (second.type === 'failure') return second
    return { ...second, headers: { ...second.headers, 'x-plugvisor-fallback': target.plugin }, fallback: target.plugin, outcome: 'fallback', ms: performance.now() - started }
  }

  /** The plugin's fallback record (404 for a plugin not loaded): read on every call. */
  const fallbackOf = (name: string): FallbackRecord => fallbacks.of(name)

  return Object.assign(emitter, {
    async invoke (req: InvokeRequest): Promise<InvokeResult> {
      const name = req.plugin
      const fb = fallbackOf(name)
      // A declared length over the limit is refused before anything is read or sent, whatever the method.
      if (Number(req.headers['content-length']) > opts.maxReplayBodyBytes) throw new errors.PayloadTooLarge()
      // Read first, up to the limit: a body that may be sent twice (retries, a fallback plugin),
      // and one of no declared length (chunked), whose size is known only at its end — past the
      // limit it is a 413 before anything reaches the plugin (nginx buffers such bodies too).
      // Others (a declared length within the limit) stream.
      const replay = IDEMPOTENT_METHODS.has(req.method) || fb.buffersBody
      const unsized = req.headers['content-length'] === undefined
      const body: Body = req.body !== undefined && (replay || unsized) ? await readBounded(req.body, opts.maxReplayBodyBytes) : req.body
      // Active: the fallback answers without the plugin being tried, except a trial call of a
      // half-open circuit in auto mode (without trials it would never close).
      if (fb.active && !(fb.trialsPass && policiesOf(name).allowsCalls())) {
        const answer = await fromFallback(name, fb, req, body, performance.now())
        if (answer.type === 'answer') {
          fb.served++
          observe(name, 'fallback', answer.ms / 1000)
          return answer
        }
        // The fallback plugin failed: the error is the called plugin's, saying both reasons.
        observe(name, 'unavailable', answer.ms / 1000)
        return { type: 'failure', reason: 'unavailable', plugin: name, message: `its calls go to its fallback (${fb.reason}), and the fallback plugin '${answer.plugin}' failed: ${answer.message}`, outcome: 'unavailable', ms: answer.ms }
      }
      const first = await call(name, req, body)
      // A failed call (a refusal, a failure, a 5xx answer) is answered by the fallback when one is named.
      if (fb.canAnswer && (first.type === 'failure' || first.statusCode >= 500)) {
        const started = performance.now() - first.ms
        // A streamed body was spent on the first call (bodies are buffered when a fallback plugin is set).
        if (body === undefined || Buffer.isBuffer(body)) {
          const answer = await fromFallback(name, fb, req, body, started)
          if (answer.type === 'answer') {
            if (first.type === 'answer' && first.body !== undefined && !Buffer.isBuffer(first.body)) first.body.destroy()
            fb.served++
            observe(name, 'fallback', answer.ms / 1000)
            return answer
          }
        }
      }
      observe(name, first.outcome, first.ms / 1000)
      return first
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
    callWindows: (name: string, now: number) => statsOf(name).windows(now),
    fallback: (name: string) => fallbacks.view(name),
    activateFallback: (name: string, override: FallbackTarget | undefined, actor: string) => fallbacks.activate(name, override, actor),
    deactivateFallback: (name: string, actor: string) => fallbacks.deactivate(name, actor),
    fallbackActive: (name: string) => fallbackOf(name).active,
    fallbackState: (name: string) => fallbackOf(name).state,
    async recordCalls (name: string, calls: readonly ReportedCall[]) {
      const p = policiesOf(name)
      const st = statsOf(name)
      const at = Date.now()
      // The metrics of the whole batch in one step, after its calls (nothing reads them in between).
      const seconds = new Float64Array(calls.length)
      let succeeded = 0
      for (let i = 0; i < calls.length; i++) {
        const c = calls[i]
        const message = c.error ?? 'failed (reported)'
        st.record(c.success ? 'succeeded' : 'failed', c.durationMs, at, message)
        if (c.success) succeeded++
        seconds[i] = c.durationMs / 1000
        const pending = p.record(c.success, message)
        if (pending !== undefined) await pending
      }
      observeMany(name, { success: succeeded, error: calls.length - succeeded }, seconds)
    },
    async close () {
      supervisor.off('loaded', onLoaded)
      supervisor.off('unloaded', onUnloaded)
      supervisor.off('transition', onChange)
      supervisor.off('health', onChange)
      for (const p of policies.values()) p.dispose()
      policies.clear()
      client.close()
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
