// The last lines a plugin printed, in memory, for GET /plugins/:name/logs.
import { Type, type Static } from '@sinclair/typebox'
import { Timestamp, oneOf, type InMs } from '../shapes.js'

export const OUTPUT_STREAMS = ['stdout', 'stderr'] as const

/** One line a plugin printed, as the API shows it: GET /plugins/:name/logs, and the data of each event of its ?follow=true stream. */
export const LogLineBody = Type.Object({
  at: Timestamp,
  stream: oneOf(OUTPUT_STREAMS),
  line: Type.String({ description: 'The line without its newline, cut at 8 KiB' })
}, { $id: 'LogLine' })

export type LogLine = InMs<Static<typeof LogLineBody>, 'at'>

export function logLineBody (l: LogLine): Static<typeof LogLineBody> {
  return { at: new Date(l.at).toISOString(), stream: l.stream, line: l.line }
}

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
