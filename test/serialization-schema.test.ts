// The form of the response schemas the serializer is compiled from (src/lazy-compilers.ts):
// unions of string literals and "X or null" become plain types, and what is written stays the
// same as fast-json-stringify writes from the schema as declared.
import t from 'tap'
import fjs from 'fast-json-stringify'
import { Type } from '@sinclair/typebox'
import { serializationSchema } from '../src/lazy-compilers.js'
import { PluginListWithResources } from '../routes/schemas.js'

const plain = (s: unknown): Record<string, unknown> => JSON.parse(JSON.stringify(s))

function summary (i: number): Record<string, unknown> {
  const running = i % 3 !== 0
  const at = new Date(1_700_000_000_000 + i * 1000).toISOString()
  return {
    name: `p${i}`,
    version: i % 2 ? '1.2.3' : null,
    description: i % 4 ? null : 'says "hello"\n',
    author: null,
    homepage: i % 5 ? null : 'https://example.test/x',
    capabilities: i % 2 ? ['search'] : [],
    tags: [],
    state: running ? 'running' : 'backoff',
    health: running ? 'healthy' : 'unknown',
    status: running ? 'healthy' : 'restarting',
    desired: 'running',
    critical: i % 7 === 0,
    pid: running ? 1000 + i : null,
    port: i % 2 ? 40000 + i : null,
    startedAt: running ? at : null,
    uptimeMs: running ? i * 10 : 0,
    restartCount: i % 4,
    lastExit: running ? null : { code: i % 2 ? 1 : null, signal: i % 2 ? null : 'SIGKILL', at, error: i % 3 ? null : { code: 'ENOENT', message: 'spawn x ENOENT' } },
    nextRestartAt: running ? null : at,
    circuit: i % 6 ? 'closed' : null,
    resources: i % 2 ? { residentMemoryBytes: 1 << 20, cpuSeconds: 0.25, sampledAt: at } : null,
    fallback: i % 8 ? 'inactive' : 'auto'
  }
}

t.test('GET /plugins is written the same from the simplified schema, without its unions', async (t) => {
  const declared = plain(PluginListWithResources)
  const simple = serializationSchema(declared)
  const data = { plugins: Array.from({ length: 60 }, (_, i) => summary(i)) }
  t.equal(fjs(simple as object)(data), fjs(declared)(data), 'the same JSON')
  t.equal(fjs(simple as object)(data), JSON.stringify(data), 'and it is what JSON.stringify writes of the same fields')
  t.notMatch(JSON.stringify(simple), /anyOf/, 'no union is left to decide per value')
})

t.test('literal unions become strings, "X or null" a type list; other unions stay', async (t) => {
  const s = plain(Type.Object({
    state: Type.Union([Type.Literal('a'), Type.Literal('b')]),
    at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    n: Type.Union([Type.Integer(), Type.Null()]),
    either: Type.Union([Type.String(), Type.Integer()]),
    shape: Type.Union([Type.Object({ x: Type.Integer() }), Type.Object({ y: Type.String() })])
  }))
  const out = serializationSchema(s) as { properties: Record<string, unknown> }
  t.same(out.properties.state, { type: 'string' })
  t.same(out.properties.at, { type: ['string', 'null'], format: 'date-time' })
  t.same(out.properties.n, { type: ['integer', 'null'] })
  t.same(out.properties.either, (s.properties as Record<string, unknown>).either, 'a union of two types is kept')
  t.same(out.properties.shape, (s.properties as Record<string, unknown>).shape, 'a union of objects is kept')
})
