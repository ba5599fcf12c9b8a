// The one place errors become answers: { statusCode, code, error, message }, plus `problems`
// (file, JSON path, reason each) for a refused manifest or config, with a stable PLUGVISOR_*
// code from the catalogue. Unexpected errors are logged and answer 500 without their message.
import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { ConfigProblem } from '../config/load.js'
import { errors, problemsOf } from '../errors.js'

const VALIDATION = new errors.Validation('').code
/** Fastify's own client errors whose status has a code of its own here; any other one is PLUGVISOR_VALIDATION. */
const CODE_OF_STATUS: Partial<Record<number, string>> = {
  413: new errors.PayloadTooLarge().code,
  415: new errors.UnsupportedMediaType('').code
}

/** The body of every error answer; routes refer to it as ErrorResponse. */
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String({ description: 'Stable PLUGVISOR_* code' }),
  error: Type.String(),
  message: Type.String(),
  problems: Type.Optional(Type.Array(Type.Ref(ConfigProblem), { description: 'A refused manifest or config: every problem found' }))
}, { $id: 'ErrorResponse', description: 'Every error' })
export type ErrorBody = Static<typeof ErrorResponse>

/** The answer to an error; `error` is the status's reason phrase as Node knows it ("Not Found"). */
export function errorBody (statusCode: number, code: string, message: string, problems?: ErrorBody['problems']): ErrorBody {
  const body: ErrorBody = { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message }
  if (problems !== undefined) body.problems = problems
  return body
}

/** The answer to an error thrown while answering a request; undefined for an unexpected one. */
function answerFor (err: FastifyError): ErrorBody | undefined {
  // Fastify's message already names the part: "querystring/limit must be >= 1".
  if (err.validation) return errorBody(400, VALIDATION, err.message)
  const status = err.statusCode ?? 500
  const ours = err.code?.startsWith('PLUGVISOR_') === true
  // Fastify's own client errors (bad JSON, body too large, ...) keep their status under our codes.
  if (status < 500) return errorBody(status, ours ? err.code : CODE_OF_STATUS[status] ?? VALIDATION, err.message, problemsOf(err))
  // The catalogue's 503 and 504 say which plugin is unavailable or slow; anything else is hidden.
  if (ours && status !== 500) return errorBody(status, err.code, err.message)
  return undefined
}

async function errorHandlerPlugin (fastify: FastifyInstance): Promise<void> {
  fastify.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(new errors.NotFound(req.method, req.url.split('?')[0]))
  })

  fastify.setErrorHandler((err: FastifyError, req, reply) => {
    const body = answerFor(err)
    if (body !== undefined) return reply.code(body.statusCode).send(body)
    req.log.error({ err }, 'request failed')
    const internal = new errors.Internal()
    return reply.code(500).send(errorBody(500, internal.code, internal.message))
  })
}

export default fp(errorHandlerPlugin, { name: 'error-handler', fastify: '5.x' })
