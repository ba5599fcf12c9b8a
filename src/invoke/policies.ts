// The policies around calls into one plugin, built from its manifest's `resilience` (defaults
// live in the schema): per attempt a timeout, retries for idempotent methods, a circuit breaker
// counting each call once (after its retries), and a bulkhead. The breaker is cockatiel's; the
// timeout, retry loop and bulkhead are written here because cockatiel's cost an AbortController,
// derived listeners and several promises per call on the hot path (measured: a quarter of the
// daemon's CPU per proxied call). Their rules are cockatiel's: a timeout per attempt, retries
// with its ExponentialBackoff after connection errors and 5xx answers, the last failure passed
// on. The breaker's state is reported in the operator's words (closed | open | half-open |
// isolated) with a reason on every change.
import { setTimeout as sleep } from 'node:timers/promises'
import {
  BrokenCircuitError, CircuitBreakerPolicy, CircuitState, ConsecutiveBreaker, ExponentialBackoff,
  SamplingBreaker, circuitBreaker, handleWhen, type IBackoff, type IBreaker
} from 'cockatiel'
import { Bulkhead } from './bulkhead.js'
import { Deadline } from './deadline.js'
import type { Manifest } from '../config/schema.js'
import type { CircuitChange, CircuitInfo, CircuitStateName } from './circuit.js'

export type Resilience = Manifest['resilience']

/** Methods whose calls are retried (and whose bodies are therefore buffered for a replay). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])

/** consecutiveFailures when neither it nor failureRate is set (the schema's description says so). */
export const DEFAULT_CONSECUTIVE_FAILURES = 5

/** What one attempt yields: the plugin's answer, its body not yet read. */
export interface Upstream {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  body: { dump: () => Promise<void> } & NodeJS.ReadableStream
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CLOSED'])

/** The plugin could not be reached or hung up: worth another attempt. Timeouts are not retried. */
export function isConnectionError (err: unknown): boolean {
  const code = (err as { code?: string, cause?: { code?: string } })?.code ?? (err as { cause?: { code?: string } })?.cause?.code
  return code !== undefined && CONNECTION_CODES.has(code)
}

const isServerError = (r: unknown): boolean => (r as Upstream | undefined)?.statusCode !== undefined && (r as Upstream).statusCode >= 500

/** One attempt at the plugin, given the deadline its request must be aborted by. */
export type Attempt = (deadline: Deadline) => Promise<Upstream>

export interface PluginPolicies {
  readonly resilience: Resilience
  readonly bulkhead: Bulkhead
  /** breaker(retry(timeout(attempt))) for idempotent methods, breaker(timeout(attempt)) for the others. */
  call: (method: string, attempt: Attempt) => Promise<Upstream>
  /** Calls are refused at once (open, not yet due for a trial, or isolated). */
  refusesCalls: () => boolean
  circuit: () => CircuitInfo
  state: () => CircuitStateName
  /** Holds the circuit open until reset (cockatiel's isolate). */
  isolate: () => void
  /** Closes the circuit and forgets the failures counted so far. */
  reset: () => void
  dispose: () => void
}

export interface PolicyOptions {
  /** Every change of the reported circuit state. */
  onCircuitChange: (change: CircuitChange) => void
  /** Date.now by default; cockatiel's breaker reads Date.now too. */
  now?: () => number
}

export function buildPolicies (r: Resilience, opts: PolicyOptions): PluginPolicies {
  const now = opts.now ?? Date.now
  const cb = r.circuitBreaker
  const sampling = cb.failureRate !== undefined
  const newBreaker = (): IBreaker => sampling
    ? new SamplingBreaker({ threshold: Math.min(cb.failureRate!, 0.999), duration: cb.windowMs, minimumRps: cb.minimumRps })
    : new ConsecutiveBreaker(cb.consecutiveFailures ?? DEFAULT_CONSECUTIVE_FAILURES)
  const breakerCounts = newBreaker()

  const backoff = new ExponentialBackoff({ initialDelay: r.retry.initialDelayMs, maxDelay: Math.max(r.retry.initialDelayMs, r.timeoutMs) })
  // Every failure of the plugin counts: errors, timeouts, 5xx answers. A refusal of the breaker
  // itself never reaches it (it does not run the call).
  const breaker: CircuitBreakerPolicy = circuitBreaker(handleWhen((err) => !(err instanceof BrokenCircuitError)).orWhenResult(isServerError), {
    halfOpenAfter: cb.halfOpenAfterMs,
    breaker: breakerCounts
  })
  const bh = new Bulkhead(r.bulkhead.maxConcurrent, r.bulkhead.maxQueued)

  /** One attempt within resilience.timeoutMs (the attempt tells a timeout by its deadline). */
  const timed = async (attempt: Attempt): Promise<Upstream> => {
    const deadline = new Deadline(r.timeoutMs)
    try {
      return await attempt(deadline)
    } finally {
      deadline.clear()
    }
  }
  /** Attempts until one succeeds, fails in a way not worth repeating, or retry.maxAttempts retries are spent. */
  const retrying = async (attempt: Attempt): Promise<Upstream> => {
    let delays: IBackoff<unknown> | undefined
    let previous: Upstream | undefined
    for (let retries = 0; ; retries++) {
      // A retry after a 5xx: the failed answer's body is not wanted.
      if (previous) void previous.body.dump().catch(() => {})
      let answer: Upstream | undefined
      let error: unknown
      try {
        answer = await timed(attempt)
        if (!isServerError(answer)) return answer
      } catch (err) {
        if (!isConnectionError(err)) throw err
        error = err
      }
      if (retries >= r.retry.maxAttempts) {
        if (answer === undefined) throw error
        return answer
      }
      delays = delays ? delays.next(undefined) : backoff.next()
      previous = answer
      await sleep(delays.duration)
    }
  }

  let reported: CircuitStateName = 'closed'
  let openedAt: number | null = null
  let lastFailure: string | null = null
  let halfOpenTimer: NodeJS.Timeout | undefined
  let isolation: { dispose: () => void } | undefined
  /** Set while reset() walks the breaker through isolated to closed: those steps are not news. */
  let resetting = false

  const report = (to: CircuitStateName, reason: string): void => {
    if (to === reported) return
    const from = reported
    reported = to
    opts.onCircuitChange({ from, to, reason })
  }
  const clearTimer = (): void => {
    if (halfOpenTimer) clearTimeout(halfOpenTimer)
    halfOpenTimer = undefined
  }
  // cockatiel moves an open breaker to half-open only when the next call comes; the timer makes
  // the moment visible (state, event) so an operator sees the next call will be a trial.
  const armHalfOpen = (): void => {
    clearTimer()
    const due = (openedAt ?? now()) + cb.halfOpenAfterMs
    halfOpenTimer = setTimeout(function fire () {
      if (breaker.state !== CircuitState.Open) return
      const left = due - now()
      if (left > 0) { halfOpenTimer = setTimeout(fire, left); halfOpenTimer.unref(); return }
      halfOpenTimer = undefined
      report('half-open', `halfOpenAfterMs (${cb.halfOpenAfterMs} ms) elapsed: the next call is a trial`)
    }, cb.halfOpenAfterMs)
    halfOpenTimer.unref()
  }

  const failureText = (reason: unknown): string => {
    const f = reason as { error?: Error, value?: unknown } | undefined
    if (f?.error) return f.error.message
    if (f?.value !== undefined) return `answered ${(f.value as Upstream).statusCode}`
    return 'unknown failure'
  }
  const subscriptions = [
    breaker.onFailure(({ reason }) => { lastFailure = failureText(reason) }),
    breaker.onStateChange((s) => {
      if (resetting) return
      switch (s) {
        case CircuitState.Open: {
          const wasTrial = reported === 'half-open'
          openedAt = now()
          armHalfOpen()
          const why = wasTrial
            ? `trial call failed: ${lastFailure ?? 'failure'}`
            : sampling
              ? `failure rate over ${cb.failureRate} within ${cb.windowMs} ms (last: ${lastFailure ?? 'failure'})`
              : `${cb.consecutiveFailures ?? DEFAULT_CONSECUTIVE_FAILURES} consecutive failures (last: ${lastFailure ?? 'failure'})`
          report('open', why)
          return
        }
        case CircuitState.HalfOpen:
          clearTimer()
          report('half-open', 'trial call')
          return
        case CircuitState.Closed:
          clearTimer()
          openedAt = null
          report('closed', 'trial call succeeded')
          return
        case CircuitState.Isolated:
          clearTimer()
          report('isolated', 'isolated by an operator')
          return
        default: {
          const never: never = s
          throw new Error(`unknown circuit state ${String(never)}`)
        }
      }
    })
  ]

  const state = (): CircuitStateName => reported
  return {
    resilience: r,
    bulkhead: bh,
    call: (method, attempt) => breaker.execute(IDEMPOTENT_METHODS.has(method) && r.retry.maxAttempts > 0 ? () => retrying(attempt) : () => timed(attempt)),
    refusesCalls () {
      const s = breaker.state
      if (s === CircuitState.Isolated) return true
      return s === CircuitState.Open && openedAt !== null && now() - openedAt < cb.halfOpenAfterMs
    },
    state,
    circuit () {
      const counts = breakerCounts.state as number | { currentFailures: number }
      const open = reported === 'open' || reported === 'half-open'
      return {
        state: reported,
        breaker: sampling ? 'sampling' : 'consecutive',
        failures: typeof counts === 'number' ? counts : counts.currentFailures,
        consecutiveFailures: sampling ? null : cb.consecutiveFailures ?? DEFAULT_CONSECUTIVE_FAILURES,
        failureRate: sampling ? cb.failureRate! : null,
        windowMs: sampling ? cb.windowMs : null,
        minimumRps: sampling ? cb.minimumRps : null,
        halfOpenAfterMs: cb.halfOpenAfterMs,
        openedAt: open ? openedAt : null,
        halfOpenAt: open && openedAt !== null ? openedAt + cb.halfOpenAfterMs : null,
        lastFailure,
        inFlight: bh.inFlight,
        queued: bh.queued
      }
    },
    isolate () {
      if (isolation) return
      isolation = breaker.isolate()
    },
    reset () {
      clearTimer()
      const from = reported
      resetting = true
      try {
        // cockatiel has no reset: isolating then releasing closes the breaker from any state.
        const handle = isolation ?? breaker.isolate()
        isolation = undefined
        handle.dispose()
        breakerCounts.state = newBreaker().state
      } finally {
        resetting = false
      }
      openedAt = null
      lastFailure = null
      if (from !== 'closed') report('closed', 'reset by an operator')
    },
    dispose () {
      clearTimer()
      for (const s of subscriptions) s.dispose()
    }
  }
}
