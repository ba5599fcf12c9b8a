// Every number a request carries is finite. ajv coerces a query string such as "1e400" to
// Infinity and then skips minimum/maximum for it (its range keywords only look at finite
// numbers), so without this `?limit=1e400` reached the store as Infinity. Wrapping the
// validator compiler is the one place that covers every route's querystring, params and headers
// whatever its schema says; bodies are JSON, where ajv's type check already refuses 1e400.
import AjvCompiler from '@fastify/ajv-compiler'
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify'

type ValidationResult = ReturnType<FastifySchemaCompiler<unknown>>

/** The JSON pointer of the first non-finite number among the values of `data` (and their array items), if any. */
function nonFinite (data: unknown): string | undefined {
  if (data === null || typeof data !== 'object') return undefined
  const values = data as Record<string, unknown>
  for (const key in values) {
    const value = values[key]
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) return `/${key}`
    } else if (Array.isArray(value)) {
      for (const v of value) if (typeof v === 'number' && !Number.isFinite(v)) return `/${key}`
    }
  }
  return undefined
}

/**
 * Whether validating against `schema` can leave a number in the data: it names a number or
 * integer type, or refers to another schema (which might). The parameters of most routes are
 * strings only; their validators skip the check.
 */
function mayHoldNumbers (schema: unknown): boolean {
  if (Array.isArray(schema)) return schema.some(mayHoldNumbers)
  if (schema === null || typeof schema !== 'object') return false
  const s = schema as Record<string, unknown>
  if (s.$ref !== undefined) return true
  const type = s.type
  if (type === 'number' || type === 'integer' || (Array.isArray(type) && (type.includes('number') || type.includes('integer')))) return true
  for (const key in s) if (mayHoldNumbers(s[key])) return true
  return false
}

const finiteError = (instancePath: string): FastifySchemaValidationError =>
  ({ instancePath, schemaPath: '#', keyword: 'finite', params: {}, message: 'must be a finite number' })

/** Fastify's ajv validator factory, refusing ±Infinity after coercion in the URL and headers. */
export function finiteNumbersValidator (): ReturnType<typeof AjvCompiler> {
  const build = AjvCompiler()
  return (externalSchemas, options) => {
    const compile = build(externalSchemas, options) as unknown as FastifySchemaCompiler<unknown>
    const wrapped: FastifySchemaCompiler<unknown> = (route) => {
      const validate = compile(route)
      if (route.httpPart === 'body' || !mayHoldNumbers(route.schema)) return validate
      const checked: ValidationResult = (data: unknown) => {
        const ok = validate(data)
        checked.errors = validate.errors
        if (ok !== true) return ok
        const at = nonFinite(data)
        if (at === undefined) return true
        checked.errors = [finiteError(at)]
        return false
      }
      return checked
    }
    return wrapped as unknown as ReturnType<ReturnType<typeof AjvCompiler>>
  }
}
