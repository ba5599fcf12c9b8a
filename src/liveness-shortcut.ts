// GET /health/liveness answered in front of the framework. Probes call it every few seconds and a
// load balancer may call it far more often; through Fastify every call built a request, a reply,
// a child logger and ran every request hook to find that none of them applies to it. The
// shortcut answers exactly what the route answers (same body, the same x-request-id,
// cache-control and content-type headers, the same request id sequence, one observation in
// plugvisor_http_request_duration_seconds under the route's pattern) and leaves every other
// request, and every case it is not sure of, to the framework: another method (HEAD), a query
// string, a request body, a Host header the browser guard refuses, probes behind a token, and a
// daemon that is shutting down (the framework answers 503 then).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { LIVENESS_PATH, liveness } from './health/liveness.js'

export interface LivenessShortcutOptions {
  /** The request id of a request (the framework's genReqId: same sequence, same rules). */
  requestId: (req: IncomingMessage) => string
  /** Whether the browser guard refuses this Host header. */
  hostRefused: (host: string) => boolean
  /** One answered liveness request and its duration. */
  observe: (seconds: number) => void
}

export class LivenessShortcut {
  #opts: LivenessShortcutOptions | undefined

  /** Answers from now on, with these. Until then (start-up) the framework answers everything. */
  enable (opts: LivenessShortcutOptions): void { this.#opts = opts }

  /** The framework answers everything from now on (shutdown). */
  disable (): void { this.#opts = undefined }

  /** Answers a plain GET /health/liveness and returns true; false leaves the request to the framework. */
  answer (req: IncomingMessage, res: ServerResponse): boolean {
    const opts = this.#opts
    if (opts === undefined || req.url !== LIVENESS_PATH || req.method !== 'GET') return false
    const { headers } = req
    if (headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined) return false
    if (headers.host !== undefined && opts.hostRefused(headers.host)) return false
    const started = performance.now()
    const body = JSON.stringify(liveness())
    res.writeHead(200, {
      'x-request-id': opts.requestId(req),
      'cache-control': 'no-store',
      'content-type': 'application/json; charset=utf-8',
      'content-length': body.length
    })
    res.end(body)
    opts.observe((performance.now() - started) / 1000)
    return true
  }
}
