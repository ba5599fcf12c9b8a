// The deadline of one attempt at a plugin: a timer that aborts the attempt's request. The loopback
// client (src/loopback-http.ts) only reads `aborted` and `reason` and calls
// add/removeEventListener('abort') on a request's signal, so this object plays that part: no
// AbortController and no EventTarget (with its listener bookkeeping) per call.

export class Deadline {
  aborted = false
  reason: Error | undefined = undefined
  #listener: (() => void) | undefined
  readonly #timer: NodeJS.Timeout

  /** `timeoutError` makes the reason a request is aborted with (the caller's own error, so no mapping is needed). */
  constructor (readonly ms: number, readonly timeoutError?: () => Error) {
    this.#timer = setTimeout(fire, ms, this)
  }

  addEventListener (_type: 'abort', listener: () => void): void { this.#listener = listener }
  removeEventListener (_type: 'abort', listener: () => void): void {
    if (this.#listener === listener) this.#listener = undefined
  }

  /** Passed: the request is aborted. */
  expire (): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = this.timeoutError?.() ?? new Error(`no answer within ${this.ms} ms`)
    this.#listener?.()
  }

  /** The attempt is over (answered or failed): the timer is not needed any more. */
  clear (): void { clearTimeout(this.#timer) }
}

function fire (d: Deadline): void { d.expire() }
