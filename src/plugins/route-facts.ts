// The route a request matched, as the request hooks need it: its pattern and what kind of route
// it is (src/route-kind.ts). Worked out once per pattern and once per request: Fastify's
// req.routeOptions builds a new object of a dozen fields on every read, and the auth, rate-limit,
// audit and HTTP-metrics hooks each read it on every request, probes included.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { routeKind, type RouteKind } from '../route-kind.js'

export interface RouteFacts {
  /** The route pattern ('/plugins/:name'), undefined when no route matched. */
  readonly pattern: string | undefined
  readonly kind: RouteKind
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by routeFacts() on its first call for the request. */
    routeFacts: RouteFacts | undefined
  }
}

// One entry per route pattern (and one for "no route"): bounded by the routes there are.
const known = new Map<string | undefined, RouteFacts>()

/** The route facts of a request, computed on the first call and kept on the request. */
export function routeFacts (req: FastifyRequest): RouteFacts {
  let facts = req.routeFacts
  if (facts === undefined) {
    const pattern = req.routeOptions.url
    facts = known.get(pattern)
    if (facts === undefined) known.set(pattern, facts = { pattern, kind: routeKind(pattern) })
    req.routeFacts = facts
  }
  return facts
}

async function routeFactsPlugin (fastify: FastifyInstance): Promise<void> {
  // Declared on the request's shape up front, so setting it does not change the object's shape.
  fastify.decorateRequest('routeFacts', undefined)
}

export default fp(routeFactsPlugin, { name: 'route-facts', fastify: '5.x' })
