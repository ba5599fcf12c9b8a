// Splits a byte stream into lines without ever holding more than `maxLine` bytes of one line:
// a plugin that prints megabytes without a newline cannot grow the daemon's memory.
export class LineSplitter {
  readonly #maxLine: number
  readonly #onLine: (line: string) => void
  #parts: Buffer[] = []
  #size = 0
  #skipping = false

  constructor (maxLine: number, onLine: (line: string) => void) {
    this.#maxLine = maxLine
    this.#onLine = onLine
  }

  push (chunk: Buffer): void {
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(10, start)
      if (nl < 0) {
        this.#append(chunk.subarray(start))
        return
      }
      this.#append(chunk.subarray(start, nl))
      this.#emit()
      this.#skipping = false
      start = nl + 1
    }
  }

  /** Emits what is left at end of stream. */
  end (): void {
    if (this.#size > 0) this.#emit()
    this.#skipping = false
  }

  #append (part: Buffer): void {
    if (this.#skipping || part.length === 0) return
    const room = this.#maxLine - this.#size
    if (part.length >= room) {
      this.#parts.push(part.subarray(0, room))
      this.#size += room
      this.#emit()
      this.#skipping = true // drop the rest of this line
      return
    }
    this.#parts.push(part)
    this.#size += part.length
  }

  #emit (): void {
    if (this.#skipping) return
    let line = (this.#parts.length === 1 ? this.#parts[0] : Buffer.concat(this.#parts)).toString('utf8')
    if (line.endsWith('\r')) line = line.slice(0, -1)
    this.#parts = []
    this.#size = 0
    this.#onLine(line)
  }
}

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
