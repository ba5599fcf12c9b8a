// The only place that creates Fastify, listens, and handles signals.
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import closeWithGrace from 'close-with-grace'
import type { DestinationStream } from 'pino'
import app, { type AppOptions } from './app.js'
import type { LoadedConfig } from './config/load.js'

export const BODY_LIMIT = 1024 * 1024

export async function buildServer (opts: AppOptions & { logger?: boolean | object, logStream?: DestinationStream }): Promise<FastifyInstance> {
  const level = opts.loaded.config.log.level
  const fastify = Fastify({
    // logStream: the configured level, written somewhere else than stdout (tests capture it).
    logger: opts.logger ?? (opts.logStream ? { level, stream: opts.logStream } : { level }),
    bodyLimit: BODY_LIMIT,
    requestIdHeader: 'x-request-id',
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    forceCloseConnections: true,
    // Errors the router raises before any route runs (malformed %-encoding, over-long
    // parameters) get the same { statusCode, code, error, message } shape as every other error.
    frameworkErrors: (err, _req, reply) => {
      const status: 400 | 414 = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : 400
      void (reply as FastifyReply).code(status).send({ statusCode: status, code: 'PLUGVISOR_VALIDATION', error: status === 414 ? 'URI Too Long' : 'Bad Request', message: err.message })
    }
  }).withTypeProvider<TypeBoxTypeProvider>()
  await fastify.register(app, opts)
  return fastify
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/

/** Why the daemon must not listen as configured, if it must not (DESIGN §9). */
export function listenRefusal (loaded: LoadedConfig): string | undefined {
  const { host } = loaded.config.server
  const { mode } = loaded.config.auth
  if (mode === 'tokens') return 'auth.mode tokens is not supported by this version yet; use a loopback listen address with auth.mode none'
  if (!LOOPBACK.test(host) && !loaded.authModeExplicit) {
    return `refusing to listen on ${host} with an open API: set auth.mode: none explicitly to accept that, or listen on 127.0.0.1`
  }
  return undefined
}

/** Runs the daemon until SIGTERM/SIGINT: stop taking requests, stop plugins, flush, close. */
export async function serve (loaded: LoadedConfig): Promise<FastifyInstance> {
  const refusal = listenRefusal(loaded)
  if (refusal) throw new Error(refusal)
  const fastify = await buildServer({ loaded })
  const { host, port } = loaded.config.server
  closeWithGrace({ delay: 60000, logger: fastify.log }, async ({ signal, err }) => {
    if (err) fastify.log.error({ err }, 'shutting down after an error')
    else fastify.log.info({ signal }, 'shutting down: stopping plugins')
    await fastify.close()
  })
  await fastify.listen({ host, port })
  return fastify
}
