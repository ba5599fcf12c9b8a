// GET /plugins' JSON kept per plugin between requests (routes/list-answer.ts): whatever changes
// between two answers, the answer is byte for byte what the schema's serializer writes of the
// whole list at that moment. As the route's sources do, an item that changed is a new object; one
// that did not is the same object, its live field (uptimeMs) moved in place.
import t from 'tap'
import fjs from 'fast-json-stringify'
import { Type } from '@sinclair/typebox'
import { serializationSchema } from '../src/lazy-compilers.js'
import { PluginListItem, PluginListWithResources } from '../routes/schemas.js'
import { ListAnswer, type Item } from '../routes/list-answer.js'

interface Row { name: string, from: [Item] }
const rowOf = (p: Item): Row => ({ name: p.name, from: [p] })
const liveOf = (r: Row): unknown => r.from[0].uptimeMs
const clone = (p: Item): Item => JSON.parse(JSON.stringify(p)) as Item
const plain = (s: unknown): object => JSON.parse(JSON.stringify(s))
const serializer = (schema: unknown) => fjs(serializationSchema(plain(schema)) as object) as (x: unknown) => string

/** A small seeded generator, so a failure repeats. */
function random (seed: number): () => number {
  let s = seed
  return () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648 }
}

function item (i: number): Item {
  const at = new Date(1_700_000_000_000 + i * 1000).toISOString()
  return {
    name: `p${i}`,
    version: '1.0.0',
    description: null,
    author: null,
    homepage: null,
    capabilities: ['search'],
    tags: [],
    state: 'running',
    health: 'healthy',
    status: 'healthy',
    desired: 'running',
    critical: false,
    pid: 1000 + i,
    port: 40000 + i,
    startedAt: at,
    uptimeMs: i * 10,
    restartCount: 0,
    lastExit: null,
    nextRestartAt: null,
    circuit: 'closed',
    resources: { residentMemoryBytes: 1 << 20, cpuSeconds: 0.25, sampledAt: at },
    fallback: 'inactive'
  }
}

/** One change of one field, to a value of the field's type (texts that look like the JSON around them included). */
function mutate (p: Item, rnd: () => number, n: number): void {
  const at = new Date(1_700_000_000_000 + n * 777).toISOString()
  const changes: Array<() => void> = [
    () => { p.state = rnd() < 0.5 ? 'backoff' : 'running'; p.status = p.state === 'backoff' ? 'restarting' : 'healthy' },
    () => { p.health = rnd() < 0.5 ? 'degraded' : 'healthy' },
    () => { p.pid = rnd() < 0.3 ? null : 2000 + n },
    () => { p.restartCount = (p.restartCount as number) + 1 },
    () => { p.lastExit = rnd() < 0.3 ? null : { code: rnd() < 0.5 ? 1 : null, signal: rnd() < 0.5 ? 'SIGKILL' : null, at, error: rnd() < 0.5 ? null : { code: 'ENOENT', message: `spawn ${n} ENOENT` } } },
    () => { p.description = rnd() < 0.5 ? null : `says "uptimeMs":0, and \\ "${n}"\n` },
    () => { p.capabilities = rnd() < 0.5 ? [] : ['search', `c${n}`] },
    () => { p.tags = [`"uptimeMs":${n}`] },
    () => { p.resources = rnd() < 0.2 ? null : { residentMemoryBytes: n * 4096, cpuSeconds: n / 7, sampledAt: at } },
    () => { p.circuit = rnd() < 0.5 ? 'open' : null },
    () => { p.fallback = rnd() < 0.5 ? 'auto' : 'inactive' },
    () => { p.nextRestartAt = rnd() < 0.5 ? null : at },
    () => { p.startedAt = at; p.uptimeMs = 0 },
    () => { p.uptimeMs = n + 0.5 } // not an integer: written by the serializer as it does
  ]
  changes[Math.floor(rnd() * changes.length)]()
}

t.test('every answer is what the serializer writes of the whole list, across changes', async (t) => {
  const whole = serializer(PluginListWithResources)
  const answer = new ListAnswer<Row>((r) => r.from[0], serializer(PluginListItem), 'uptimeMs', liveOf)
  const rnd = random(7)
  const items = Array.from({ length: 40 }, (_, i) => item(i))
  let next = 40
  for (let round = 0; round < 300; round++) {
    for (const p of items) if (Number.isInteger(p.uptimeMs) && p.state === 'running') p.uptimeMs = (p.uptimeMs as number) + Math.floor(rnd() * 5000)
    for (let k = Math.floor(rnd() * 4); k > 0; k--) {
      const i = Math.floor(rnd() * items.length)
      items[i] = clone(items[i])
      mutate(items[i], rnd, round)
    }
    if (rnd() < 0.1) items.splice(Math.floor(rnd() * items.length), 1)
    if (rnd() < 0.1) items.push(item(next++))
    if (rnd() < 0.2) {
      const some = items.filter(() => rnd() < 0.5)
      t.equal(answer.write(some.map(rowOf), false).toString(), whole({ plugins: some }), `round ${round}, a filtered list`)
    }
    const got = answer.write(items.map(rowOf), true).toString()
    if (got !== whole({ plugins: items })) {
      t.equal(got, whole({ plugins: items }), `round ${round}`)
      return
    }
  }
  t.pass('300 rounds the same')
  t.equal(answer.write([], true).toString(), '{"plugins":[]}', 'an empty list')
})

t.test('a selection of fields without the live one, and with it', async (t) => {
  const selections: Array<Array<keyof typeof PluginListItem.properties>> = [['name', 'status', 'restartCount'], ['name', 'state', 'uptimeMs', 'lastExit']]
  for (const fields of selections) {
    const schema = Type.Object({ plugins: Type.Array(Type.Pick(PluginListItem, fields)) })
    const whole = serializer(schema)
    const pick = (p: Item): Item => Object.fromEntries(fields.map((f) => [f, p[f]])) as Item
    const answer = new ListAnswer<Row>((r) => pick(r.from[0]), serializer(Type.Pick(PluginListItem, fields)), 'uptimeMs', liveOf)
    const rnd = random(11)
    const items = Array.from({ length: 20 }, (_, i) => item(i))
    for (let round = 0; round < 100; round++) {
      for (const p of items) p.uptimeMs = Math.floor(rnd() * 1e9)
      const i = Math.floor(rnd() * items.length)
      items[i] = clone(items[i])
      mutate(items[i], rnd, round)
      t.equal(answer.write(items.map(rowOf), true).toString(), whole({ plugins: items.map(pick) }), `${fields.join(',')}: round ${round}`)
    }
  }
})

t.test('live values at the edges of a safe integer, written as the serializer writes them', async (t) => {
  const whole = serializer(PluginListWithResources)
  const answer = new ListAnswer<Row>((r) => r.from[0], serializer(PluginListItem), 'uptimeMs', liveOf)
  const items = Array.from({ length: 4 }, (_, i) => item(i))
  for (const value of [0, -0, 7, 10, -1, -10, 99, 100, 1e15, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53 - 2]) {
    for (const p of items) p.uptimeMs = value
    t.equal(answer.write(items.map(rowOf), true).toString(), whole({ plugins: items }), String(value))
  }
})

t.test('an answer released is written over by the next one; an answer not released never is', async (t) => {
  const whole = serializer(PluginListWithResources)
  const answer = new ListAnswer<Row>((r) => r.from[0], serializer(PluginListItem), 'uptimeMs', liveOf)
  const items = Array.from({ length: 30 }, (_, i) => item(i))
  const first = answer.write(items.map(rowOf), true)
  const firstText = whole({ plugins: items })
  items[3] = { ...items[3], state: 'backoff', uptimeMs: 12345 }
  const second = answer.write(items.map(rowOf), true)
  t.not(second.buffer, first.buffer, 'not released: the next answer has memory of its own')
  t.equal(first.toString(), firstText, 'and the first answer is as it was written')
  const secondText = whole({ plugins: items })
  t.equal(second.toString(), secondText)

  answer.release(first) // an answer older than the last one written: not taken back
  const third = answer.write(items.map(rowOf), true)
  t.not(third.buffer, first.buffer)
  t.not(third.buffer, second.buffer)

  answer.release(third)
  items.pop()
  items[0] = { ...items[0], uptimeMs: 9 }
  const fourth = answer.write(items.map(rowOf), true)
  t.equal(fourth.buffer, third.buffer, 'released: the next answer is written into its memory')
  t.equal(fourth.toString(), whole({ plugins: items }), 'shorter than the one before, and exact')
  t.equal(second.toString(), secondText, 'an answer never released is still intact')

  answer.release(fourth)
  for (let i = 30; i < 90; i++) items.push(item(i))
  const fifth = answer.write(items.map(rowOf), true)
  t.not(fifth.buffer, fourth.buffer, 'a longer list than the memory holds gets new memory')
  t.equal(fifth.toString(), whole({ plugins: items }))
})
