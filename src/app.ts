// The application as one Fastify plugin: services published on the instance, schemas, the
// error catalogue's handler, the OpenAPI document, and the routes.
import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import rateLimit from '@fastify/rate-limit'
import { isLoopback } from './loopback.js'
import { routeKind } from './route-kind.js'
import { createDaemon, type Daemon, type DaemonOptions } from './daemon.js'
import { errors, problemsOf } from './errors.js'
import { requiredRole, resolveTokens, type Principal } from './auth/tokens.js'
import { configInvalid } from './config/load.js'
import { CircuitResponse, ConfigProblem, ErrorResponse, HealthReport, HealthStats, PluginHealth, PluginSummary, StatusSummary } from '../routes/schemas.js'
import { registerRoutes } from '../routes/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    daemon: Daemon
  }
  interface FastifyRequest {
    /** The holder of the request's valid bearer token, if any (auth.mode tokens). */
    principal: Principal | undefined
  }
}

/** Management routes are rate limited; probes, metrics, the API description and the invoke proxy are not. */
const rateLimited = (route: string | undefined): boolean => {
  const kind = routeKind(route)
  return kind === 'management' || kind === 'audit'
}

/** Calls that change something, audited whatever their outcome; the invoke proxy is data, not management. */
function audited (method: string, route: string | undefined): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS' && routeKind(route) !== 'invoke'
}

export interface AppOptions extends Omit<DaemonOptions, 'logger'> {
  /** Start plugins when the app is ready (tests may boot by hand). Default true. */
  boot?: boolean
  /** Where auth.tokens[].tokenEnv is looked up; default process.env. */
  env?: NodeJS.ProcessEnv
}

export const API_VERSION = '0.1.0'
const UNMATCHED = '(no route)'
const VALIDATION = new errors.Validation('').code

async function app (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  // Tokens first: a config that names a missing token must not start anything.
  const authConfig = opts.loaded.config.auth
  const { auth: tokens, problems } = resolveTokens(authConfig, { configFile: opts.loaded.file, env: opts.env ?? process.env })
  if (problems.length > 0) throw configInvalid(problems)
  const daemon = createDaemon({ ...opts, logger: fastify.log, maxReplayBodyBytes: fastify.initialConfig.bodyLimit })
  fastify.decorate('daemon', daemon)
  fastify.addHook('onClose', async () => { await daemon.close() })
  // Open GET /events streams would hold the server open: end them before it stops listening.
  fastify.addHook('preClose', async () => { daemon.events.close() })
  // Both hooks run on every request (probes included): callback style, as an async hook costs a
  // promise and a microtask turn each.
  // Before the token check, so guessing tokens is slowed down too.
  const limits = opts.loaded.config.rateLimit
  await fastify.register(rateLimit, {
    max: limits.max,
    timeWindow: limits.windowMs,
    allowList: (req) => !rateLimited(req.routeOptions.url) || (limits.exemptLoopback && isLoopback(req.ip)),
    errorResponseBuilder: (_req, context) => new errors.RateLimited(`${Math.ceil(context.ttl / 1000)} s`)
  })
  fastify.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id)
    if (tokens !== undefined) {
      const need = requiredRole(req.method, req.routeOptions.url, authConfig)
      if (need !== 'open') {
        const who = tokens.authenticate(req.headers.authorization)
        req.principal = who
        if (who === undefined) {
          reply.header('www-authenticate', 'Bearer realm="plugvisor"')
          return done(new errors.Unauthorized())
        }
        if (need === 'admin' && who.role !== 'admin') return done(new errors.Forbidden(who.role))
      }
    }
    done()
  })
  // Labelled by route pattern, never the raw URL (unbounded series). GET /events is hijacked and not counted.
  fastify.decorateRequest('principal', undefined)
  fastify.addHook('onResponse', (req, reply, done) => {
    if (audited(req.method, req.routeOptions.url)) {
      const params = req.params as { name?: unknown } | undefined
      try {
        daemon.audit.append({
          at: Date.now(),
          actor: req.principal?.name ?? 'anonymous',
          role: req.principal?.role ?? null,
          remote: req.ip ?? null,
          method: req.method,
          route: req.routeOptions.url ?? UNMATCHED,
          url: req.url,
          plugin: typeof params?.name === 'string' ? params.name : null,
          status: reply.statusCode,
          requestId: String(req.id),
          durationMs: Math.round(reply.elapsedTime * 1000) / 1000
        })
      } catch (err) {
        req.log.error({ err }, 'writing the audit log failed')
      }
    }
    daemon.metrics.observeHttpRequest({ method: req.method, route: req.routeOptions.url, statusCode: reply.statusCode }, reply.elapsedTime / 1000)
    done()
  })
  if (opts.boot !== false) {
    fastify.addHook('onReady', async () => {
      // Boot runs in the background: the API (and liveness) answer while plugins start.
      void daemon.boot().catch((err) => fastify.log.error({ err }, 'boot failed'))
    })
  }

  for (const s of [ConfigProblem, ErrorResponse, PluginSummary, StatusSummary, PluginHealth, HealthReport, HealthStats, CircuitResponse]) fastify.addSchema(s)

  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'plugvisor', description: 'Supervises plugins: starts, health-checks, restarts with backoff, and calls into them.', version: API_VERSION },
      tags: [
        { name: 'plugins', description: 'Plugin lifecycle' },
        { name: 'health', description: 'Daemon and plugin health, for people and for probes' },
        { name: 'config', description: 'Loaded configuration and its problems' },
        { name: 'invoke', description: 'Calls into plugins through their resilience policies, and their circuit breakers' },
        { name: 'compatibility', description: 'Routes shaped like existing plugin hosts\' management APIs' },
        { name: 'observability', description: 'Prometheus metrics and the event stream' }
      ]
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}` }
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: false } })

  fastify.setNotFoundHandler((req, reply) => {
    const err = new errors.NotFound(req.method, req.url.split('?')[0])
    void reply.code(404).send(err)
  })

  fastify.setErrorHandler((err: FastifyError, req, reply) => {
    // Refused changes list every problem (file, JSON path, reason) besides the message.
    const problems = problemsOf(err)
    if (problems !== undefined) {
      const statusCode = err.statusCode ?? 400
      return reply.code(statusCode).send({ statusCode, code: err.code, error: httpReason(statusCode), message: err.message, problems })
    }
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

  await registerRoutes(fastify)
}

/** The reason phrase of a status ("Not Found"), as Node knows it. */
function httpReason (status: number): string {
  return STATUS_CODES[status] ?? 'Error'
}

export default fp(app, { name: 'plugvisor', fastify: '5.x' })
