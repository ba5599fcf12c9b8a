// The JSON of GET /plugins, written from each plugin's JSON of the request before. With 500
// plugins, serializing 500 summaries, flattening the ~230 KB string this made, counting its
// bytes and encoding it for the socket took more of the daemon's time than anything else the
// request did; between two requests most summaries have not changed at all.
//
// Exact by construction: a plugin's JSON is written again by the route's own serializer whenever
// anything its item is made of is not the very value (===) it was made of the time before. The
// caller hands the same object only while it did not change (the supervisor's list view, the
// resource sampler's latest sample): comparing by identity costs a few pointer checks a plugin
// where comparing every value of 500 items cost a millisecond. The one field that moves on every
// request (uptimeMs, an integer) is kept out and written between the two cached halves.

export type Item = Record<string, unknown> & { name: string }

/** One plugin of the list, as the caller has it. */
export interface ListRow {
  /** The plugin's name: whose kept JSON this is. */
  name: string
  /**
   * What the item is made of, each compared with === to the row of the request before: the same
   * values must make the same JSON, apart from the live field. So none of them may be an object
   * changed in place, the live field aside.
   */
  from: readonly unknown[]
}

interface Entry {
  from: readonly unknown[]
  /** The JSON up to the live field's value, or all of it when the item has no live field. */
  head: Buffer
  /** The JSON after the live field's value. */
  tail: Buffer | undefined
}

const OPEN = Buffer.from('{"plugins":[')
const CLOSE = Buffer.from(']}')
const COMMA = 0x2c

function same (a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** How many characters String(v) has, for a safe integer v. */
function digitCount (v: number): number {
  let n = v < 0 ? 2 : 1
  for (let x = Math.abs(v); x >= 10; x = (x - x % 10) / 10) n++
  return n
}

/** Writes the safe integer v as String(v) would, at `at`; returns where it ends. */
function writeDigits (out: Buffer, at: number, v: number): number {
  const end = at + digitCount(v)
  if (v < 0) out[at] = 0x2d
  let x = Math.abs(v)
  let i = end
  do {
    const digit = x % 10
    out[--i] = 0x30 + digit
    x = (x - digit) / 10
  } while (x > 0)
  return end
}

export class ListAnswer<R extends ListRow> {
  readonly #entries = new Map<string, Entry>()
  readonly #marker: string
  /**
   * The memory of the last answer written, and that of an answer sent (release) that the next
   * one is written into: an answer of 500 is ~230 KB outside V8's heap, freed only when a GC
   * finds its Buffer dead, so 100 requests between two scavenges held ~20 MB of them.
   */
  #lent: Buffer | undefined
  #spare: Buffer | undefined

  /**
   * `make` builds a row's item; `serialize` writes one item exactly as the list's serializer
   * writes it inside the array; `live` names an integer field of the item left out of the
   * comparison, read off the row each time (`liveOf`) and written per request.
   */
  constructor (
    private readonly make: (row: R) => Item,
    private readonly serialize: (item: Item) => string,
    private readonly live: string,
    private readonly liveOf: (row: R) => unknown
  ) {
    this.#marker = `"${live}":0`
  }

  /**
   * `{"plugins":[...]}` of these rows. `complete`: the rows are every plugin there is, so the
   * JSON of plugins no longer listed is dropped.
   */
  write (rows: readonly R[], complete: boolean): Buffer {
    const entries: Entry[] = new Array(rows.length)
    const values: number[] = new Array(rows.length)
    let length = OPEN.length + CLOSE.length + Math.max(0, rows.length - 1)
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]
      const entry = this.#entry(row)
      entries[i] = entry
      length += entry.head.length
      if (entry.tail !== undefined) {
        // A kept entry with a tail exists only for a safe integer value (see #entry).
        const value = this.liveOf(row) as number
        values[i] = value
        length += digitCount(value) + entry.tail.length
      }
    }
    if (complete && this.#entries.size > rows.length) {
      const listed = new Set(rows.map((r) => r.name))
      for (const name of this.#entries.keys()) if (!listed.has(name)) this.#entries.delete(name)
    }
    // Uint8Array's set() and the digits written as bytes: Buffer's copy() and write() check their
    // arguments in JavaScript on each of the 1,000 calls an answer of 500 takes.
    const spare = this.#spare
    this.#spare = undefined
    // A quarter more than asked, so a list that grows a little still fits next time.
    const memory = spare !== undefined && spare.length >= length ? spare : Buffer.allocUnsafeSlow(length + (length >> 2))
    this.#lent = memory
    const out = memory.subarray(0, length)
    out.set(OPEN, 0)
    let at = OPEN.length
    for (let i = 0; i < rows.length; i++) {
      if (i > 0) out[at++] = COMMA
      const { head, tail } = entries[i]
      out.set(head, at)
      at += head.length
      if (tail !== undefined) {
        at = writeDigits(out, at, values[i])
        out.set(tail, at)
        at += tail.length
      }
    }
    out.set(CLOSE, at)
    return out
  }

  /**
   * The answer `sent` (one write() returned) was handed to the socket whole and is not read any
   * more: the next answer may be written into its memory. An answer not released is never
   * written over.
   */
  release (sent: Buffer): void {
    if (this.#lent === undefined || sent.buffer !== this.#lent.buffer) return
    this.#spare = this.#lent
    this.#lent = undefined
  }

  #entry (row: R): Entry {
    const cached = this.#entries.get(row.name)
    const value = this.liveOf(row)
    const integer = Number.isSafeInteger(value)
    if (cached !== undefined && (cached.tail === undefined || integer) && same(cached.from, row.from)) return cached
    const item = this.make(row)
    const whole = (): Entry => ({ from: row.from, head: Buffer.from(this.serialize(item)), tail: undefined })
    let entry: Entry
    if (!(this.live in item)) {
      entry = whole()
    } else if (!integer) {
      // A live value that is not a plain integer: the item is written whole, and not kept.
      return whole()
    } else {
      const json = this.serialize({ ...item, [this.live]: 0 })
      const at = json.indexOf(this.#marker)
      const end = at + this.#marker.length
      // The key can only appear once (a quote inside a string value is escaped): checked anyway.
      if (at < 0 || json.indexOf(this.#marker, end) >= 0 || (json[end] !== ',' && json[end] !== '}')) return whole()
      entry = { from: row.from, head: Buffer.from(json.slice(0, end - 1)), tail: Buffer.from(json.slice(end)) }
    }
    this.#entries.set(row.name, entry)
    return entry
  }
}
