// Restart delays. cockatiel's ExponentialBackoff draws decorrelated jitter and has no ±fraction
// form, and the manifest promises exactly min(initial × multiplier^(n−1), max) ± jitter, so the
// formula is written out here as one pure function.
import type { RestartPolicy } from '../config/schema.js'

/**
 * Delay before the n-th consecutive automatic restart (n ≥ 1), in milliseconds:
 * `min(initialDelayMs × multiplier^(n−1), maxDelayMs)`, then ± `jitter` of that, never below 0.
 * `random` returns a number in [0, 1).
 */
export function restartDelay (attempt: number, policy: Pick<RestartPolicy, 'initialDelayMs' | 'multiplier' | 'maxDelayMs' | 'jitter'>, random: () => number): number {
  const n = Math.max(1, attempt)
  const base = Math.min(policy.initialDelayMs * Math.pow(policy.multiplier, n - 1), policy.maxDelayMs)
  if (policy.jitter === 0 || base === 0) return Math.round(base)
  const spread = base * policy.jitter * (2 * random() - 1)
  return Math.max(0, Math.round(base + spread))
}

/** Daemon-wide token bucket: how long an automatic restart must wait so many crashes at once cannot become a storm. */
export class RestartBudget {
  readonly #burst: number
  readonly #perMs: number
  #tokens: number
  #at: number

  constructor (opts: { burst: number, perSecond: number }, now: number) {
    this.#burst = opts.burst
    this.#perMs = opts.perSecond / 1000
    this.#tokens = opts.burst
    this.#at = now
  }

  #refill (now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#perMs)
      this.#at = now
    }
  }

  /** Takes a token if one is there (returns 0), else returns how many ms until one will be. */
  take (now: number): number {
    this.#refill(now)
    if (this.#tokens >= 1) {
      this.#tokens -= 1
      return 0
    }
    return Math.ceil((1 - this.#tokens) / this.#perMs)
  }
}
