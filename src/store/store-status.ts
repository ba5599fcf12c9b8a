// Whether the database takes writes: readiness (daemon:store-writable) and /health report it.
// Known from the writes themselves, so the probes read memory, not the database.
export interface StoreStatus {
  /** The schema is the one the migrations made and the last write went through. */
  readonly ok: boolean
  /** Why not, when not ok. */
  readonly problem: string | undefined
  /** Runs a write, noting whether it went through; a failure is rethrown. */
  run: <T>(write: () => T) => T
  /** Calls fn whenever a write goes through after one failed. */
  onRecovered: (fn: () => void) => void
}

export function createStoreStatus (): StoreStatus {
  let problem: string | undefined
  const recovered: (() => void)[] = []
  return {
    get ok () { return problem === undefined },
    get problem () { return problem },
    run (write) {
      try {
        const out = write()
        if (problem !== undefined) {
          problem = undefined
          for (const fn of recovered) fn()
        }
        return out
      } catch (err) {
        problem = (err as Error).message
        throw err
      }
    },
    onRecovered (fn) { recovered.push(fn) }
  }
}
