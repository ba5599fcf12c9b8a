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
