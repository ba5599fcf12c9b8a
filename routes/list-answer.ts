// The JSON of GET /plugins, written from each plugin's JSON of the request before. With 500
// plugins, serializing 500 summaries, flattening the ~230 KB string this made, counting its
// bytes and encoding it for the socket took more of the daemon's time than anything else the
// request did; between two requests most summaries have not changed at all.
//
// Exact by construction: a plugin's JSON is written again by the route's own serializer whenever
// any field of its item differs (deep comparison of the values) from the item it was written
// from. The one field that moves on every request (uptimeMs, an integer) is kept out of the
// comparison and written between the two cached halves.

type Item = Record<string, unknown> & { name: string }

interface Entry {
  /** What the JSON was written from (its live field set to 0), and its number of fields. */
  item: Item
  keys: number
  /** The JSON up to the live field's value, or all of it when the item has no live field. */
  head: Buffer
  /** The JSON after the live field's value. */
  tail: Buffer | undefined
}

const OPEN = Buffer.from('{"plugins":[')
const CLOSE = Buffer.from(']}')
const COMMA = 0x2c

/** Deep equality of two JSON-like values (primitives, arrays, plain objects). */
function same (a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!same(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  for (const k of ka) if (!same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false
  return true
}

export class ListAnswer {
  readonly #entries = new Map<string, Entry>()
  readonly #marker: string

  /**
   * `serialize` writes one item exactly as the list's serializer writes it inside the array;
   * `live` names an integer field left out of the comparison (its value is written per request).
   */
  constructor (private readonly serialize: (item: Item) => string, private readonly live: string) {
    this.#marker = `"${live}":0`
  }

  /**
   * `{"plugins":[...]}` of these items. `complete`: the items are every plugin there is, so the
   * JSON of plugins no longer listed is dropped.
   */
  write (items: Item[], complete: boolean): Buffer {
    const parts: Buffer[] = [OPEN]
    let length = OPEN.length + CLOSE.length + Math.max(0, items.length - 1)
    const numbers: (string | undefined)[] = []
    for (const item of items) {
      const value = item[this.live]
      const entry = this.#entry(item, value)
      if (entry.tail === undefined) {
        parts.push(entry.head)
        numbers.push(undefined)
        length += entry.head.length
      } else {
        const digits = String(value)
        parts.push(entry.head, entry.tail)
        numbers.push(digits)
        length += entry.head.length + digits.length + entry.tail.length
      }
    }
    if (complete && this.#entries.size > items.length) {
      const listed = new Set(items.map((i) => i.name))
      for (const name of this.#entries.keys()) if (!listed.has(name)) this.#entries.delete(name)
    }
    const out = Buffer.allocUnsafe(length)
    let at = OPEN.copy(out, 0)
    let p = 1
    for (let i = 0; i < items.length; i++) {
      if (i > 0) out[at++] = COMMA
      at += parts[p++].copy(out, at)
      const digits = numbers[i]
      if (digits !== undefined) {
        at += out.write(digits, at, 'latin1')
        at += parts[p++].copy(out, at)
      }
    }
    CLOSE.copy(out, at)
    return out
  }

  #entry (item: Item, value: unknown): Entry {
    const live = this.live in item
    // A live value that is not a plain integer: the item is written whole, and not kept.
    if (live && !Number.isSafeInteger(value)) return { item, keys: 0, head: Buffer.from(this.serialize(item)), tail: undefined }
    const cached = this.#entries.get(item.name)
    if (cached !== undefined && (cached.tail !== undefined) === live && this.#sameApartFromLive(cached, item)) return cached
    let entry: Entry
    if (!live) {
      entry = { item, keys: Object.keys(item).length, head: Buffer.from(this.serialize(item)), tail: undefined }
    } else {
      const copy = { ...item, [this.live]: 0 }
      const json = this.serialize(copy)
      const at = json.indexOf(this.#marker)
      const end = at + this.#marker.length
      // The key can only appear once (a quote inside a string value is escaped): checked anyway.
      if (at < 0 || json.indexOf(this.#marker, end) >= 0 || (json[end] !== ',' && json[end] !== '}')) {
        return { item, keys: 0, head: Buffer.from(this.serialize(item)), tail: undefined }
      }
      entry = { item: copy, keys: Object.keys(copy).length, head: Buffer.from(json.slice(0, end - 1)), tail: Buffer.from(json.slice(end)) }
    }
    this.#entries.set(item.name, entry)
    return entry
  }

  #sameApartFromLive (cached: Entry, item: Item): boolean {
    let n = 0
    for (const k in item) {
      n++
      if (k !== this.live && !same(cached.item[k], item[k])) return false
    }
    return n === cached.keys
  }
}
