// Bearer tokens (auth.mode tokens): every route but the open ones needs a valid token, changes
// need the admin role. Two steps with the rate limit between them: `auth` finds the token's
// holder (`req.principal`, the rate-limit key and the audit log's actor), the limit counts the
// call (a wrong token too), then `authorize` refuses what the holder may not do.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { MainConfig } from '../config/schema.js'
import { configInvalid } from '../config/load.js'
import { errors } from '../errors.js'
import { requiredRole, resolveTokens, type Principal, type Role } from '../auth/tokens.js'
import { routeFacts } from './route-facts.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The holder of the request's valid bearer token, if any (auth.mode tokens). */
    principal: Principal | undefined
  }
  interface FastifyInstance {
    /** What a request needs: 'open', or the role its token must have. */
    authNeeds: (req: FastifyRequest) => Role | 'open'
    /** Whether requests can need a token at all (auth.mode tokens). */
    tokensRequired: boolean
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
  fastify.decorate('authNeeds', (req: FastifyRequest) => tokens === undefined ? 'open' : requiredRole(req.method, routeFacts(req).kind, opts.auth))
  fastify.decorate('tokensRequired', tokens !== undefined)
  if (tokens === undefined) return
  // Runs on every request (probes included): callback style, as an async hook costs a promise
  // and a microtask turn each.
  fastify.addHook('onRequest', (req, _reply, done) => {
    if (fastify.authNeeds(req) !== 'open') req.principal = tokens.authenticate(req.headers.authorization)
    done()
  })
}

async function authorizePlugin (fastify: FastifyInstance): Promise<void> {
  // auth.mode none: every request is open, nothing to refuse.
  if (!fastify.tokensRequired) return
  fastify.addHook('onRequest', (req, reply, done) => {
    const need = fastify.authNeeds(req)
    if (need === 'open') return done()
    const who = req.principal
    if (who === undefined) {
      reply.header('www-authenticate', 'Bearer realm="plugvisor"')
      return done(new errors.Unauthorized())
    }
    if (need === 'admin' && who.role !== 'admin') return done(new errors.Forbidden(who.role))
    done()
  })
}

export default fp(authPlugin, { name: 'auth', fastify: '5.x', dependencies: ['route-facts'] })
// After the rate limit, whose hook then runs first: guessing tokens is slowed down too.
export const authorize = fp(authorizePlugin, { name: 'authorize', fastify: '5.x', dependencies: ['auth', 'rate-limit'] })
