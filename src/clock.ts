// Time is injected: the domain reads it through a Clock, so tests can move it by hand.
export interface Clock {
  /** Milliseconds since the epoch. */
  now: () => number
}

export const systemClock: Clock = { now: () => Date.now() }
