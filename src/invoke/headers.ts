// Which headers cross the proxy. Hop-by-hop headers (RFC 9110 section 7.6.1) describe one
// connection and are never forwarded, nor is any header the Connection header names, nor any
// Proxy-* header (credentials and settings meant for a proxy, not for the plugin).
import type { IncomingHttpHeaders } from 'node:http'

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

/** Node gives header names in lower case. */
const hopByHop = (name: string): boolean => HOP_BY_HOP.has(name) || name.startsWith('proxy-')

export type HeaderMap = Record<string, string | string[]>

// What nearly every client and plugin sends: answered without building a set per call.
const KEEP_ALIVE: ReadonlySet<string> = new Set(['keep-alive'])
const CLOSE: ReadonlySet<string> = new Set(['close'])

function connectionListed (value: string | string[] | undefined): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined
  if (value === 'keep-alive' || value === 'Keep-Alive') return KEEP_ALIVE
  if (value === 'close' || value === 'Close') return CLOSE
  const v = Array.isArray(value) ? value.join(',') : value
  return new Set(v.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean))
}

export interface ForwardOptions {
  clientIp: string
  requestId: string
  /** The Authorization header was the daemon's bearer token: it stays here. */
  dropAuthorization: boolean
}

/**
 * Request headers for the plugin: the client's, minus hop-by-hop ones, `host` (the plugin's own
 * address is sent), `expect` (no 100-continue is awaited), and the daemon's bearer token when auth is
 * on; plus `x-forwarded-for` (appended to) and `x-request-id` (the daemon's request id).
 */
export function requestHeaders (incoming: IncomingHttpHeaders, opts: ForwardOptions): HeaderMap {
  const listed = connectionListed(incoming.connection)
  const out: HeaderMap = {}
  for (const name in incoming) {
    const value = incoming[name]
    if (value === undefined || hopByHop(name) || name === 'host' || name === 'expect') continue
    if (listed?.has(name)) continue
    if (opts.dropAuthorization && name === 'authorization') continue
    out[name] = value
  }
  const xff = incoming['x-forwarded-for']
  out['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${opts.clientIp}` : opts.clientIp
  out['x-request-id'] = opts.requestId
  return out
}

/** Response headers for the client: the plugin's, minus hop-by-hop ones. */
export function responseHeaders (incoming: Record<string, string | string[] | undefined>): HeaderMap {
  const listed = connectionListed(incoming.connection)
  const out: HeaderMap = {}
  for (const name in incoming) {
    const value = incoming[name]
    if (value === undefined || hopByHop(name) || listed?.has(name)) continue
    out[name] = value
  }
  return out
}
