// How many calls into one plugin may be in flight and wait at once (resilience.bulkhead). A slot
// is taken before the call and given back when the answer's body is done; a call that finds
// every slot taken waits in a queue of bounded length, and is refused when that is full too.

export class Bulkhead {
  #inFlight = 0
  readonly #waiting: Array<() => void> = []

  constructor (readonly maxConcurrent: number, readonly maxQueued: number) {}

  /** Calls holding a slot. */
  get inFlight (): number { return this.#inFlight }
  /** Calls waiting for one. */
  get queued (): number { return this.#waiting.length }

  /**
   * Takes a slot: undefined when one was free, a promise that resolves when one is passed on,
   * or null when every slot is taken and the queue is full (the call is refused).
   */
  acquire (): Promise<void> | undefined | null {
    if (this.#inFlight < this.maxConcurrent) {
      this.#inFlight++
      return undefined
    }
    if (this.#waiting.length >= this.maxQueued) return null
    return new Promise((resolve) => { this.#waiting.push(resolve) })
  }

  /** Gives a slot back (to the first waiting call, if any). Bound once: a listener without a closure per call. */
  readonly release = (): void => {
    const next = this.#waiting.shift()
    if (next) next()
    else this.#inFlight--
  }
}
