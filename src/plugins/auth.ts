// Bearer tokens (auth.mode tokens): every route but the open ones needs a valid token, changes
// need the admin role. The token's holder is `req.principal`, for the audit log.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { MainConfig } from '../config/schema.js'
import { configInvalid } from '../config/load.js'
import { errors } from '../errors.js'
import { requiredRole, resolveTokens, type Principal } from '../auth/tokens.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The holder of the request's valid bearer token, if any (auth.mode tokens). */
    principal: Principal | undefined
  }
}

export interface AuthOptions {
  auth: MainConfig['auth']
  /** The main config file: tokenFile paths are relative to it, and problems name it. */
  configFile: string
  /** Where auth.tokens[].tokenEnv is looked up. */
  env: NodeJS.ProcessEnv
}

async function authPlugin (fastify: FastifyInstance, opts: AuthOptions): Promise<void> {
  // Resolved at registration: a config that names a missing token fails the start.
  const { auth: tokens, problems } = resolveTokens(opts.auth, { configFile: opts.configFile, env: opts.env })
  if (problems.length > 0) throw configInvalid(problems)
  fastify.decorateRequest('principal', undefined)
  if (tokens === undefined) return
  // Runs on every request (probes included): callback style, as an async hook costs a promise
  // and a microtask turn each.
  fastify.addHook('onRequest', (req, reply, done) => {
    const need = requiredRole(req.method, req.routeOptions.url, opts.auth)
    if (need === 'open') return done()
    const who = tokens.authenticate(req.headers.authorization)
    req.principal = who
    if (who === undefined) {
      reply.header('www-authenticate', 'Bearer realm="plugvisor"')
      return done(new errors.Unauthorized())
    }
    if (need === 'admin' && who.role !== 'admin') return done(new errors.Forbidden(who.role))
    done()
  })
}

// After the rate limit, whose hook then runs first: guessing tokens is slowed down too.
export default fp(authPlugin, { name: 'auth', fastify: '5.x', dependencies: ['rate-limit'] })
