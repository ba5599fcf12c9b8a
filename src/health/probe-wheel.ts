// One timer for every scheduled probe of the daemon. A probe due at some time runs at the next
// multiple of its grid (at most that many ms after it is due); the probes of one such time run from
// one timer callback, and the timer is armed only for the earliest time that holds probes. With a
// Node timer per probe, 500 plugins probed every second created, sorted and fired 500 timers a
// second, and their answers came back spread over as many event-loop wake-ups.
import { performance } from 'node:perf_hooks'

/** A slot whose start is at most this many ms in the future when the timer fires is run (the timer's own clock is in whole ms). */
const EARLY_MS = 1

export class ProbeWheel<T> {
  /** A slot's time (the clock's ms, a multiple of the grids of its items) → what runs then, in the order it was added. */
  readonly #slots = new Map<number, T[]>()
  /** The times of #slots, earliest first. */
  readonly #order: number[] = []
  #timer: NodeJS.Timeout | undefined
  #armed = Infinity

  /** `run(item)` runs each item in its slot; `clock` is monotonic, in ms (performance, unless a test moves time by hand). */
  constructor (readonly run: (item: T) => void, readonly clock: { now: () => number } = performance) {}

  /** Runs `item` at the first multiple of `gridMs` from `due` on (the clock's time; one already past: from now on). */
  add (due: number, gridMs: number, item: T): void {
    const slot = Math.ceil(Math.max(due, this.clock.now()) / gridMs) * gridMs
    const list = this.#slots.get(slot)
    if (list !== undefined) {
      list.push(item)
      return
    }
    this.#slots.set(slot, [item])
    this.#order.splice(this.#insertAt(slot), 0, slot)
    if (slot < this.#armed) this.#arm(slot)
  }

  /** Drops everything scheduled. */
  clear (): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#armed = Infinity
    this.#slots.clear()
    this.#order.length = 0
  }

  /** Items waiting (tests). */
  size (): number {
    let n = 0
    for (const list of this.#slots.values()) n += list.length
    return n
  }

  #insertAt (slot: number): number {
    let lo = 0
    let hi = this.#order.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.#order[mid]! < slot) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  #arm (slot: number): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#armed = slot
    this.#timer = setTimeout(this.#fire, Math.max(0, slot - this.clock.now()))
    // A probe never keeps the daemon alive on its own.
    this.#timer.unref()
  }

  readonly #fire = (): void => {
    this.#timer = undefined
    this.#armed = Infinity
    const now = this.clock.now() + EARLY_MS
    while (this.#order.length > 0 && this.#order[0]! <= now) {
      const slot = this.#order.shift()!
      const list = this.#slots.get(slot)!
      this.#slots.delete(slot)
      for (const item of list) this.run(item)
    }
    // run() may have added items (and armed the timer for their slot): the earliest slot decides.
    if (this.#order.length > 0 && this.#order[0] !== this.#armed) this.#arm(this.#order[0]!)
  }
}

/**
 * When the next probe of a cycle is due: an interval after the previous one was due, not after it
 * started (the grid's delay would add up from probe to probe); after one that took longer than the
 * interval, now.
 */
export function nextDue (due: number, intervalMs: number, now: number): number {
  return Math.max(due + intervalMs, now)
}
