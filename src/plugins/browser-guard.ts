// What a web page in the operator's browser must not do: change anything from another site
// (cross-site request forgery: a simple POST needs no CORS grant to be sent), or reach the
// daemon under a name that is not its own (DNS rebinding: a page's own host name made to point
// at 127.0.0.1, so the browser treats the API as same-origin). No CORS header is ever sent, so
// no other origin is granted anything, OPTIONS included.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { isIP } from 'node:net'
import type { MainConfig } from '../config/schema.js'
import { errors } from '../errors.js'
import { isLoopback } from '../loopback.js'

export interface BrowserGuardOptions {
  server: Pick<MainConfig['server'], 'host' | 'allowedHosts'>
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** The host name of a Host header or URL authority, without port or IPv6 brackets, lower-cased. */
export function hostName (authority: string): string {
  const a = authority.trim().toLowerCase()
  if (a.startsWith('[')) return a.slice(1, a.indexOf(']') === -1 ? undefined : a.indexOf(']'))
  const colon = a.lastIndexOf(':')
  // An IPv6 address without brackets has several colons and no port.
  return colon !== -1 && a.indexOf(':') === colon ? a.slice(0, colon) : a
}

/** Names that always reach this machine: localhost and *.localhost (RFC 6761), loopback addresses. */
function loopbackName (name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost') || (isIP(name) !== 0 && isLoopback(name))
}

/** Why a change is refused as coming from another site, or undefined. */
function crossSite (req: FastifyRequest): string | undefined {
  // Sec-Fetch-Site: same-site too, as a site ignores the port: every other local web app
  // (http://localhost:3000) is same-site with http://localhost:7070.
  const site = req.headers['sec-fetch-site']
  if (site === 'cross-site' || site === 'same-site') return `Sec-Fetch-Site: ${site}`
  const origin = req.headers.origin
  if (origin === undefined) return undefined
  // "null": a sandboxed frame, a file: page, a redirect across origins.
  let authority: string
  try {
    const u = new URL(origin)
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return `Origin: ${origin}`
    authority = u.host
  } catch {
    return `Origin: ${origin}`
  }
  // The daemon's own origin is the one the request was sent to: Host, or X-Forwarded-Host from
  // a proxy in server.trustProxy (req.host); http://x and x:80 agree.
  const host = (req.host ?? '').toLowerCase()
  const defaultPort = origin.startsWith('https:') ? ':443' : ':80'
  return authority === host || `${authority}${defaultPort}` === host ? undefined : `Origin: ${origin}`
}

async function browserGuardPlugin (fastify: FastifyInstance, opts: BrowserGuardOptions): Promise<void> {
  const listen = hostName(opts.server.host)
  // The Host check holds while listening on loopback only: off loopback, names are the
  // operator's (and a browser cannot be rebound onto a public address it already reaches).
  const checkHost = isLoopback(listen)
  const allowed = new Set([listen, ...opts.server.allowedHosts.map(hostName)])
  // Callback style: it runs on every request (probes included), and an async hook costs a
  // promise and a microtask turn each.
  fastify.addHook('onRequest', (req, _reply, done) => {
    const host = req.headers.host
    // HTTP/1.0 without Host: no browser sends that.
    if (checkHost && host !== undefined) {
      const name = hostName(host)
      if (!loopbackName(name) && !allowed.has(name)) return done(new errors.HostNotAllowed(name))
    }
    if (!SAFE_METHODS.has(req.method)) {
      const why = crossSite(req)
      if (why !== undefined) return done(new errors.CrossOrigin(why))
    }
    done()
  })
}

export default fp(browserGuardPlugin, { name: 'browser-guard', fastify: '5.x' })
