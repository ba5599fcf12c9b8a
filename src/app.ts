// The application as one Fastify plugin: the plugins under plugins/ (browser guard, auth, rate
// limit, services, audit log, HTTP metrics, API docs, error handler), then the routes.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import authPlugin, { authorize } from './plugins/auth.js'
import browserGuardPlugin from './plugins/browser-guard.js'
import auditPlugin from './plugins/audit.js'
import daemonPlugin, { type DaemonPluginOptions } from './plugins/daemon.js'
import apiDocsPlugin from './plugins/api-docs.js'
import errorHandlerPlugin from './plugins/error-handler.js'
import httpMetricsPlugin from './plugins/http-metrics.js'
import rateLimitPlugin from './plugins/rate-limit.js'
import routeFactsPlugin from './plugins/route-facts.js'
import { registerRoutes } from '../routes/index.js'

export interface AppOptions extends DaemonPluginOptions {
  /** Where auth.tokens[].tokenEnv is looked up; default process.env. */
  env?: NodeJS.ProcessEnv
}

async function app (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  const { env, ...daemonOptions } = opts
  const { config, file } = opts.loaded
  // Every response names its request, whatever answers it. Callback style: it runs on every
  // request (probes included), and an async hook costs a promise and a microtask turn each.
  fastify.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id)
    done()
  })
  await fastify.register(routeFactsPlugin)
  // First: a rebound or cross-site request is refused before it costs anything.
  await fastify.register(browserGuardPlugin, { server: config.server })
  // Before the daemon: a config that names a missing token must not start anything.
  await fastify.register(authPlugin, { auth: config.auth, configFile: file, env: env ?? process.env })
  await fastify.register(rateLimitPlugin, config.rateLimit)
  await fastify.register(authorize)
  await fastify.register(daemonPlugin, daemonOptions)
  await fastify.register(auditPlugin)
  await fastify.register(httpMetricsPlugin)
  await fastify.register(errorHandlerPlugin)
  await fastify.register(apiDocsPlugin)
  await registerRoutes(fastify)
}

export default fp(app, { name: 'plugvisor', fastify: '5.x' })
