// Time is injected: the domain reads it through a Clock, so tests can move it by hand.
export interface Clock {
  /** Milliseconds since the epoch. */
  now: () => number
}

export const systemClock: Clock = { now: () => Date.now() }

/** Runs fn every ms milliseconds until the returned function is called; injected so tests fire it by hand. */
export type Every = (ms: number, fn: () => void) => () => void

/** setInterval, not holding the process open. */
export const systemEvery: Every = (ms, fn) => {
  const timer = setInterval(fn, ms)
  timer.unref()
  return () => clearInterval(timer)
}
