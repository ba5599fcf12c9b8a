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
  BrokenCircuitError, CircuitBreakerPolicy, CircuitState, ConsecutiveBreaker, CountBreaker, ExponentialBackoff,
  SamplingBreaker, circuitBreaker, handleWhen, type IBackoff, type IBreaker
} from 'cockatiel'
import { Bulkhead } from './bulkhead.js'
import { Deadline } from './deadline.js'
import { IDEMPOTENT_METHODS, type AnswerBody } from '../loopback-http.js'
import type { Manifest } from '../config/schema.js'
import type { BreakerKind, CircuitChange, CircuitInfo, CircuitStateName } from './circuit.js'

export type Resilience = Manifest['resilience']

/** consecutiveFailures when neither it nor failureRate is set (the schema's description says so). */
export const DEFAULT_CONSECUTIVE_FAILURES = 5

/** failureRate of a count window that names only windowSize (the schema's description says so). */
export const DEFAULT_COUNT_FAILURE_RATE = 0.5

/** What a reported successful call gives the breaker: an answer that is no 5xx. */
const REPORTED_SUCCESS = { statusCode: 200 } as unknown as Upstream

/** What one attempt yields: the plugin's answer, its body not yet read (or all of it, when it came with the head). */
export interface Upstream {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  body: AnswerBody | Buffer
}

// node:net's codes, and the loopback client's for a connection that closed before the answer was complete (ECONNRESET).
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH'])

/** The plugin could not be reached or hung up: worth another attempt. Timeouts are not retried. */
export function isConnectionError (err: unknown): boolean {
  const code = (err as { code?: string, cause?: { code?: string } })?.code ?? (err as { cause?: { code?: string } })?.cause?.code
  return code !== undefined && CONNECTION_CODES.has(code)
}

const ignore = (): void => {}

const isServerError = (r: unknown): boolean => (r as Upstream | undefined)?.statusCode !== undefined && (r as Upstream).statusCode >= 500

/** One attempt at the plugin, given the deadline its request must be aborted by. */
export type Attempt = (deadline: Deadline) => Promise<Upstream>

export interface PluginPolicies {
  readonly resilience: Resilience
  readonly bulkhead: Bulkhead
  /** breaker(retry(timeout(attempt))) for idempotent methods, breaker(timeout(attempt)) for the others. */
  call: (method: string, attempt: Attempt) => Promise<Upstream>
  /**
   * A call made elsewhere (a host reporting its own calls): counted by the breaker like a proxied
   * one. Done at once (undefined) while the circuit is closed and the call does not open it, the
   * common case; otherwise through the breaker, and the promise says when that is done.
   */
  record: (success: boolean, message: string) => Promise<void> | undefined
  /** Calls are refused at once (open, not yet due for a trial, isolated, or a trial of the probation in flight). */
  refusesCalls: () => boolean
  /** What the breaker would do with a call now: refusesCalls, and no trial call in flight. */
  allowsCalls: () => boolean
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
  /** What an attempt past resilience.timeoutMs fails with (default: an Error saying so). */
  timeoutError?: () => Error
  /** Date.now by default; cockatiel's breaker reads Date.now too. */
  now?: () => number
}

export function buildPolicies (r: Resilience, opts: PolicyOptions): PluginPolicies {
  const now = opts.now ?? Date.now
  const cb = r.circuitBreaker
  const kind: BreakerKind = cb.windowSize !== undefined ? 'count' : cb.failureRate !== undefined ? 'sampling' : 'consecutive'
  const rate = cb.failureRate ?? DEFAULT_COUNT_FAILURE_RATE
  const newBreaker = (): IBreaker => {
    switch (kind) {
      // cockatiel opens when the failed share exceeds its threshold; a hair below failureRate makes
      // it open when the share reaches failureRate, as the option says.
      case 'count': return new CountBreaker({ threshold: Math.min(rate - 1e-9, 0.999), size: cb.windowSize!, minimumNumberOfCalls: cb.minimumCalls ?? cb.windowSize! })
      case 'sampling': return new SamplingBreaker({ threshold: Math.min(cb.failureRate!, 0.999), duration: cb.windowMs, minimumRps: cb.minimumRps })
      case 'consecutive': return new ConsecutiveBreaker(cb.consecutiveFailures ?? DEFAULT_CONSECUTIVE_FAILURES)
      default: {
        const never: never = kind
        throw new Error(`unknown breaker ${String(never)}`)
      }
    }
  }
  const breakerCounts = newBreaker()
  // cockatiel closes a half-open circuit after one successful trial. With successThreshold > 1 the
  // circuit stays half-open for the operator ("probation") while cockatiel is closed: calls pass
  // one at a time, each success counts, and the first failure opens it again (the breaker below
  // answers true), so every kind of breaker gets the same half-open rule.
  let probation = false
  let trialSuccesses = 0
  let trialsInFlight = 0
  // A reported failure that opens a closed circuit was counted already (record() counts closed
  // calls itself); cockatiel then runs it only to open the circuit, and must not count it again.
  let countedOpening = false
  const counting: IBreaker = {
    get state () { return breakerCounts.state },
    set state (v) { breakerCounts.state = v },
    success (s) {
      breakerCounts.success(s)
      if (s === CircuitState.HalfOpen) {
        trialSuccesses = 1
        probation = trialSuccesses < cb.successThreshold
      } else if (probation) {
        trialSuccesses++
        if (trialSuccesses >= cb.successThreshold) {
          probation = false
          report('closed', `${trialSuccesses} trial calls succeeded in a row`)
        }
      }
    },
    failure (s) {
      if (countedOpening) {
        countedOpening = false
        return true
      }
      const opens = breakerCounts.failure(s)
      if (!probation) return opens
      probation = false
      return true
    }
  }

  const backoff = new ExponentialBackoff({ initialDelay: r.retry.initialDelayMs, maxDelay: Math.max(r.retry.initialDelayMs, r.timeoutMs) })
  // Every failure of the plugin counts: errors, timeouts, 5xx answers. A refusal of the breaker
  // itself never reaches it (it does not run the call).
  const breaker: CircuitBreakerPolicy = circuitBreaker(handleWhen((err) => !(err instanceof BrokenCircuitError)).orWhenResult(isServerError), {
    halfOpenAfter: cb.halfOpenAfterMs,
    breaker: counting
  })
  const bh = new Bulkhead(r.bulkhead.maxConcurrent, r.bulkhead.maxQueued)

  /** One attempt within resilience.timeoutMs: its request is aborted with opts.timeoutError. */
  const timed = (attempt: Attempt): Promise<Upstream> => {
    const deadline = new Deadline(r.timeoutMs, opts.timeoutError)
    return attempt(deadline).then(
      (answer) => { deadline.clear(); return answer },
      (err: unknown) => { deadline.clear(); throw err }
    )
  }
  /**
   * Attempts until one succeeds, fails in a way not worth repeating, or retry.maxAttempts retries
   * are spent. The first attempt without the loop's async frame (nearly every call ends there).
   */
  const retrying = (attempt: Attempt): Promise<Upstream> => timed(attempt).then(
    (answer) => isServerError(answer) ? retryLoop(attempt, answer, undefined) : answer,
    (err: unknown) => {
      if (!isConnectionError(err)) throw err
      return retryLoop(attempt, undefined, err)
    }
  )
  const retryLoop = async (attempt: Attempt, first: Upstream | undefined, firstError: unknown): Promise<Upstream> => {
    let delays: IBackoff<unknown> | undefined
    let previous = first
    let answer = first
    let error = firstError
    for (let retries = 1; ; retries++) {
      if (retries > r.retry.maxAttempts) {
        if (answer === undefined) throw error
        return answer
      }
      delays = delays ? delays.next(undefined) : backoff.next()
      await sleep(delays.duration)
      // A retry after a 5xx: the failed answer's body is not wanted.
      if (previous && !Buffer.isBuffer(previous.body)) void previous.body.dump().catch(() => {})
      answer = undefined
      error = undefined
      try {
        answer = await timed(attempt)
        if (!isServerError(answer)) return answer
      } catch (err) {
        if (!isConnectionError(err)) throw err
        error = err
      }
      previous = answer
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
            : kind === 'sampling'
              ? `failure rate over ${cb.failureRate} within ${cb.windowMs} ms (last: ${lastFailure ?? 'failure'})`
              : kind === 'count'
                ? `failure rate of ${rate} reached over the last ${cb.windowSize} calls (last: ${lastFailure ?? 'failure'})`
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
          if (probation) report('half-open', `trial call succeeded (1 of ${cb.successThreshold} in a row)`)
          else report('closed', 'trial call succeeded')
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

  /** A call started while the circuit was closed: counted as cockatiel counts it. */
  const closedCall = (running: Promise<Upstream>): Promise<Upstream> => running.then(
    (answer) => {
      if (!isServerError(answer)) {
        counting.success(CircuitState.Closed)
        return answer
      }
      return closedFailure(`answered ${answer.statusCode}`, () => Promise.resolve(answer), answer)
    },
    (err: unknown) => closedFailure((err as Error)?.message ?? String(err), () => Promise.reject(err), undefined, err)
  )
  const closedFailure = (message: string, replay: () => Promise<Upstream>, answer: Upstream | undefined, err?: unknown): Promise<Upstream> => {
    lastFailure = message
    // Not closed any more (another call opened it meanwhile): counted, nothing to open.
    if (!counting.failure(CircuitState.Closed) || breaker.state !== CircuitState.Closed) {
      if (answer !== undefined) return Promise.resolve(answer)
      return Promise.reject(err)
    }
    countedOpening = true
    return breaker.execute(replay)
  }
  const state = (): CircuitStateName => reported
  function refusesCalls (): boolean {
    const s = breaker.state
    if (s === CircuitState.Isolated) return true
    if (probation && trialsInFlight > 0) return true
    return s === CircuitState.Open && openedAt !== null && now() - openedAt < cb.halfOpenAfterMs
  }
  return {
    resilience: r,
    bulkhead: bh,
    call (method, attempt) {
      const retries = IDEMPOTENT_METHODS.has(method) && r.retry.maxAttempts > 0
      // While closed, cockatiel's execute() only passes the outcome to the breaker (and a failure to
      // onFailure), through two async frames, a stopwatch and an event object per call: done here
      // directly. A failure that opens the circuit still goes through cockatiel, which opens it.
      if (breaker.state === CircuitState.Closed && !probation) return closedCall(retries ? retrying(attempt) : timed(attempt))
      const run = retries ? () => retrying(attempt) : () => timed(attempt)
      if (!probation) return breaker.execute(run)
      trialsInFlight++
      return breaker.execute(run).finally(() => { trialsInFlight-- })
    },
    record (success, message) {
      if (refusesCalls()) return
      // While closed, cockatiel's execute() only passes the outcome to the breaker (and a failure to
      // onFailure): done here directly, without its promises, for each call of a batch of 1,000.
      if (breaker.state === CircuitState.Closed) {
        if (success) {
          counting.success(CircuitState.Closed)
          return
        }
        lastFailure = message
        if (!counting.failure(CircuitState.Closed)) return
        countedOpening = true
      }
      return breaker.execute(() => success ? Promise.resolve(REPORTED_SUCCESS) : Promise.reject(new Error(message))).then(ignore, ignore)
    },
    refusesCalls,
    allowsCalls: () => !refusesCalls() && breaker.state !== CircuitState.HalfOpen,
    state,
    circuit () {
      const counts = breakerCounts.state as number | { currentFailures: number } | { failures: number }
      const open = reported === 'open' || reported === 'half-open'
      return {
        state: reported,
        breaker: kind,
        failures: typeof counts === 'number' ? counts : 'failures' in counts ? counts.failures : counts.currentFailures,
        consecutiveFailures: kind === 'consecutive' ? cb.consecutiveFailures ?? DEFAULT_CONSECUTIVE_FAILURES : null,
        failureRate: kind === 'consecutive' ? null : rate,
        windowMs: kind === 'sampling' ? cb.windowMs : null,
        minimumRps: kind === 'sampling' ? cb.minimumRps : null,
        windowSize: kind === 'count' ? cb.windowSize! : null,
        minimumCalls: kind === 'count' ? cb.minimumCalls ?? cb.windowSize! : null,
        successThreshold: cb.successThreshold,
        trialSuccesses: reported === 'half-open' ? trialSuccesses : 0,
        allowsCalls: !refusesCalls() && breaker.state !== CircuitState.HalfOpen,
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
      probation = false
      trialSuccesses = 0
      if (from !== 'closed') report('closed', 'reset by an operator')
    },
    dispose () {
      clearTimer()
      for (const s of subscriptions) s.dispose()
    }
  }
}
