// Every error answers { statusCode, code, error, message } (plus `problems` for a refused
// manifest or config) with a stable PLUGVISOR_* code from the catalogue; 5xx messages are hidden.
import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance } from 'fastify'
import { errors } from '../errors.js'
import { DependencyProblemsError, PluginConflictError, PluginNotFoundError } from '../supervisor/supervisor.js'
import { ChangeRejectedError } from '../plugin-changes.js'
import { ConfigInvalidError, formatProblem, type ConfigProblem as Problem } from '../config/load.js'

const VALIDATION = new errors.Validation('').code
type CatalogueError = typeof errors[keyof typeof errors]

/** The reason phrase of a status ("Not Found"), as Node knows it. */
export function httpReason (status: number): string {
  return STATUS_CODES[status] ?? 'Error'
}

async function errorHandlerPlugin (fastify: FastifyInstance): Promise<void> {
  fastify.setNotFoundHandler((req, reply) => {
    const err = new errors.NotFound(req.method, req.url.split('?')[0])
    void reply.code(404).send(err)
  })

  fastify.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof PluginNotFoundError) return reply.code(404).send(new errors.PluginNotFound(err.plugin))
    if (err instanceof PluginConflictError) return reply.code(409).send(new errors.Conflict(err.message))
    // Refused changes list every problem (file, JSON path, reason) besides the message; the
    // status and code come from the catalogue, the message from the refusal.
    const refused = (E: CatalogueError, message: string, problems: Problem[]) => {
      const { statusCode = 400, code } = new E()
      return reply.code(statusCode).send({ statusCode, code, error: httpReason(statusCode), message, problems })
    }
    if (err instanceof ChangeRejectedError) return refused(err.kind === 'invalid-config' ? errors.Validation : errors.InvalidManifest, err.message, err.problems)
    if (err instanceof DependencyProblemsError) return refused(errors.InvalidManifest, `invalid manifest: ${err.message}`, err.problems)
    if (err instanceof ConfigInvalidError) return refused(errors.InvalidConfig, `invalid config, nothing applied: ${err.problems.map(formatProblem).join('; ')}`, err.problems)
    if (err.validation) {
      // Fastify's message already names the part: "querystring/limit must be >= 1".
      return reply.code(400).send({ statusCode: 400, code: VALIDATION, error: 'Bad Request', message: err.message })
    }
    const status = err.statusCode ?? 500
    if (status < 500) {
      // Fastify's own client errors (bad JSON, body too large, ...) keep their status under our code scheme.
      const code = err.code?.startsWith('PLUGVISOR_') ? err.code : status === 413 ? new errors.PayloadTooLarge().code : VALIDATION
      return reply.code(status).send({ statusCode: status, code, error: httpReason(status), message: err.message })
    }
    if (err.code?.startsWith('PLUGVISOR_') && status !== 500) return reply.code(status).send(err)
    req.log.error({ err }, 'request failed')
    const internal = new errors.Internal()
    return reply.code(500).send({ statusCode: 500, code: internal.code, error: 'Internal Server Error', message: internal.message })
  })
}

export default fp(errorHandlerPlugin, { name: 'error-handler', fastify: '5.x' })
