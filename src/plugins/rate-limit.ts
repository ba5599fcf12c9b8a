// Rate limits on management routes, per token holder once `auth` found one, else per client
// address (the forwarded one when the peer is in server.trustProxy): unauthenticated noise
// cannot lock operators out. Probes, metrics, the API description and the invoke proxy are not
// limited; loopback clients only with rateLimit.exemptLoopback. Its hook runs before
// `authorize`, so a call with a wrong token is counted too and guessing tokens is slowed down.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import type { MainConfig } from '../config/schema.js'
import { errors } from '../errors.js'
import { isLoopback } from '../loopback.js'
import type { RouteKind } from '../route-kind.js'
import { routeFacts } from './route-facts.js'

const limited = (kind: RouteKind): boolean => kind === 'management' || kind === 'audit'

async function rateLimitPlugin (fastify: FastifyInstance, limits: MainConfig['rateLimit']): Promise<void> {
  // global: false, because the library's own hooks are route hooks, which run after every
  // instance hook (the token check included); this instance hook runs in registration order.
  await fastify.register(rateLimit, {
    global: false,
    max: limits.max,
    timeWindow: limits.windowMs,
    // A token name cannot look like an address, so the two kinds of key never meet.
    keyGenerator: (req) => req.principal === undefined ? req.ip : `token:${req.principal.name}`,
    errorResponseBuilder: (_req, context) => new errors.RateLimited(`${Math.ceil(context.ttl / 1000)} s`)
  })
  const limit = fastify.rateLimit()
  // Callback style, deciding synchronously: it runs on every request (probes included), and an
  // async hook costs a promise and a microtask turn each.
  fastify.addHook('onRequest', (req, reply, done) => {
    if (!limited(routeFacts(req).kind) || (limits.exemptLoopback && isLoopback(req.ip))) return done()
    limit.call(fastify, req, reply).then(() => done(), done)
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit', fastify: '5.x', dependencies: ['auth', 'route-facts'] })
