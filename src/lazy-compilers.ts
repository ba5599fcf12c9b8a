// Route schemas compiled when a route is first hit, not all at start. Fastify compiles a
// validator (ajv) and a serializer (fast-json-stringify) for every route when it gets ready; a
// running daemon answers a handful of routes most of the time (probes, metrics, invoke), and the
// code generated for the others is resident memory (measured: about 7 MB of the ~100 MB of an
// idle daemon with 500 plugins configured). These factories wrap Fastify's own compilers: the
// real function is built on the first call, with the same options and shared schemas.
import type { FastifyServerOptions } from 'fastify'
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import { finiteNumbersValidator } from './finite-numbers.js'

type Compiled = ((this: unknown, data: unknown) => unknown) & { errors?: unknown }
type Factory = (...args: any[]) => (route: any) => Compiled

function lazy<F extends Factory> (factory: F): F {
  return ((...args: unknown[]) => {
    const compile = factory(...args)
    return (route: unknown) => {
      let fn: Compiled | undefined
      const first = function (this: unknown, data: unknown): unknown {
        fn ??= compile(route)
        return fn.call(this, data)
      }
      // Fastify reads a failed validation's details from the validator function itself.
      Object.defineProperty(first, 'errors', { get: () => fn?.errors })
      return first
    }
  }) as F
}

type Schema = Record<string, unknown>
const isSchema = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * The form of a response schema fast-json-stringify serialises with. A union (anyOf) is decided
 * per value by running ajv on each branch until one matches — with 500 plugins GET /plugins ran
 * ajv (date-time formats included) thousands of times per answer. The unions the API shapes use
 * need no such check: a union of string literals is written as a string, and "X or null" (X of
 * one plain type) as `type: [X, 'null']`, which fast-json-stringify decides with typeof. Every
 * other union is left as it is. Only what is written changes, never the document or validation.
 */
export function serializationSchema (schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(serializationSchema)
  if (!isSchema(schema)) return schema
  const out: Schema = {}
  for (const [k, v] of Object.entries(schema)) out[k] = serializationSchema(v)
  const branches = out.anyOf
  if (!Array.isArray(branches) || !branches.every(isSchema)) return out
  const { anyOf, ...rest } = out
  if (branches.every((b) => typeof b.const === 'string')) return { ...rest, type: 'string' }
  const others = branches.filter((b) => b.type !== 'null')
  const plain = others[0]
  if (branches.length === 2 && others.length === 1 && typeof plain.type === 'string' && plain.anyOf === undefined && plain.$ref === undefined) {
    return { ...rest, ...plain, type: [plain.type, 'null'] }
  }
  return out
}

/** fast-json-stringify's factory, given the serialisation form of every schema (serializationSchema). */
function simpleUnionSerializers (): Factory {
  const factory = SerializerSelector() as unknown as Factory
  return (externalSchemas: Record<string, unknown> | undefined, ...rest: unknown[]) => {
    const compile = factory(externalSchemas === undefined ? undefined : Object.fromEntries(Object.entries(externalSchemas).map(([id, s]) => [id, serializationSchema(s)])), ...rest)
    return (route: { schema: unknown }) => compile({ ...route, schema: serializationSchema(route.schema) })
  }
}

/** Fastify's schemaController.compilersFactory with lazy validators and serializers. */
type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>
export const lazyCompilers: CompilersFactory = {
  // Validators refuse non-finite numbers in the URL and headers (src/finite-numbers.ts).
  buildValidator: lazy(finiteNumbersValidator() as unknown as Factory) as unknown as CompilersFactory['buildValidator'],
  buildSerializer: lazy(simpleUnionSerializers()) as unknown as CompilersFactory['buildSerializer']
}
