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
/** How many different Host headers the guard remembers its verdict on. */
const HOST_VERDICTS = 64

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

/**
 * The Host check: the name a Host header is refused under (DNS rebinding), or null when the
 * daemon answers to it. Also used by the liveness shortcut (src/liveness-shortcut.ts).
 */
export function hostCheck (server: BrowserGuardOptions['server']): (host: string) => string | null {
  const listen = hostName(server.host)
  // The Host check holds while listening on loopback only: off loopback, names are the
  // operator's (and a browser cannot be rebound onto a public address it already reaches).
  if (!isLoopback(listen)) return () => null
  const allowed = new Set([listen, ...server.allowedHosts.map(hostName)])
  // The verdict on each Host header seen: clients send the same one request after request, and
  // working it out (lower-casing, slicing, an address check) was a few strings per request.
  // Bounded: past HOST_VERDICTS different values, the others are worked out each time.
  const verdicts = new Map<string, string | null>()
  return (host) => {
    let v = verdicts.get(host)
    if (v === undefined) {
      const name = hostName(host)
      v = loopbackName(name) || allowed.has(name) ? null : name
      if (verdicts.size < HOST_VERDICTS) verdicts.set(host, v)
    }
    return v
  }
}

async function browserGuardPlugin (fastify: FastifyInstance, opts: BrowserGuardOptions): Promise<void> {
  const refusedName = hostCheck(opts.server)
  // Callback style: it runs on every request (probes included), and an async hook costs a
  // promise and a microtask turn each.
  fastify.addHook('onRequest', (req, _reply, done) => {
    const host = req.headers.host
    // HTTP/1.0 without Host: no browser sends that.
    if (host !== undefined) {
      const refused = refusedName(host)
      if (refused !== null) return done(new errors.HostNotAllowed(refused))
    }
    if (!SAFE_METHODS.has(req.method)) {
      const why = crossSite(req)
      if (why !== undefined) return done(new errors.CrossOrigin(why))
    }
    done()
  })
}

export default fp(browserGuardPlugin, { name: 'browser-guard', fastify: '5.x' })
