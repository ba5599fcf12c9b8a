// The last lines a plugin printed, in memory, for GET /plugins/:name/logs.
export interface LogLine { at: number, stream: 'stdout' | 'stderr', line: string }

/** Ring of the last lines a plugin printed; grows to its capacity only as lines come (most plugins say little). */
export class LogRing {
  readonly #capacity: number
  readonly #lines: LogLine[] = []
  #next = 0

  constructor (capacity: number) {
    this.#capacity = capacity
  }

  push (entry: LogLine): void {
    if (this.#lines.length < this.#capacity) {
      this.#lines.push(entry)
      return
    }
    this.#lines[this.#next] = entry
    this.#next = (this.#next + 1) % this.#capacity
  }

  /** The last `n` lines, oldest first. */
  tail (n: number): LogLine[] {
    const len = this.#lines.length
    const k = Math.min(n, len)
    const out: LogLine[] = []
    // Before the ring is full #next is 0 and the oldest line is at index 0.
    for (let i = k; i > 0; i--) out.push(this.#lines[(this.#next - i + len) % len])
    return out
  }
}
