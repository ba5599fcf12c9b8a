// The id of each request: the caller's x-request-id when it is a sane one (so a proxy's id
// follows the request into the log, the audit log and the plugin), otherwise one of ours.
// "Sane" bounds what a caller can make the daemon store and echo: 1 to 200 characters (Heroku's
// bound) of letters, digits and - _ . : ; = / + (UUIDs, AWS trace ids, base64). Anything else
// is ignored, not refused: a request should not fail over a tracing header.
import type { IncomingMessage } from 'node:http'

export const REQUEST_ID_HEADER = 'x-request-id'
export const REQUEST_ID = /^[A-Za-z0-9._:;=/+-]{1,200}$/

/** Fastify's genReqId: the caller's id when it is sane, else req-1, req-2, ... (base 36). */
export function requestIds (): (req: IncomingMessage) => string {
  let next = 0
  return (req) => {
    const given = req.headers[REQUEST_ID_HEADER]
    if (typeof given === 'string' && REQUEST_ID.test(given)) return given
    next = (next + 1) % Number.MAX_SAFE_INTEGER
    return `req-${next.toString(36)}`
  }
}
