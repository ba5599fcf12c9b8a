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

/** Fastify's schemaController.compilersFactory with lazy validators and serializers. */
type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>
export const lazyCompilers: CompilersFactory = {
  // Validators refuse non-finite numbers in the URL and headers (src/finite-numbers.ts).
  buildValidator: lazy(finiteNumbersValidator() as unknown as Factory) as unknown as CompilersFactory['buildValidator'],
  buildSerializer: lazy(SerializerSelector() as unknown as Factory) as unknown as CompilersFactory['buildSerializer']
}
