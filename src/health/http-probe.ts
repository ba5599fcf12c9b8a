// The http probe: a GET over the daemon's loopback client (src/loopback-http.ts, kept-alive
// connections per port), reading of the answer only what a probe judges — the status code, and an
// application/health+json body up to MAX_HEALTH_BODY; the rest of a body is read past (so the
// connection serves the next probe) but not kept.
import { ExchangeError, LOOPBACK_HOST, LoopbackClient, encodeHead, type AnswerSink, type Exchange } from '../loopback-http.js'
import type { ProbeOutcome } from './probes.js'

/** Every probe targets the plugin on the loopback interface. */
export const PROBE_HOST = LOOPBACK_HOST
/** An application/health+json body bigger than this is not read (the status code decides). */
export const MAX_HEALTH_BODY = 64 * 1024

/** A GET without a body frames itself; these would change how the connection or the answer is read. */
const RESERVED_HEADERS = new Set(['connection', 'content-length', 'expect', 'keep-alive', 'transfer-encoding', 'upgrade'])

export interface HttpProbeRequest {
  path: string
  headers?: Record<string, string>
}

/** One kept-alive connection per probed port, reused by each probe of that port in turn. */
export class HttpProbeClient {
  readonly #client = new LoopbackClient()
  readonly #requests = new WeakMap<HttpProbeRequest, { port: number, text: string | Error }>()

  /** Never rejects: every failure, the timeout included, is a failure outcome. */
  probe (port: number, req: HttpProbeRequest, timeoutMs: number): Promise<ProbeOutcome> {
    const text = this.#requestText(port, req)
    if (text instanceof Error) return Promise.resolve({ result: 'failure', error: text.message })
    return new Promise((resolve) => {
      const sink = new ProbeSink(resolve, timeoutMs)
      sink.exchange = this.#client.exchange(port, text, undefined, undefined, sink)
    })
  }

  /** Closes the idle connections; one still answering a probe closes when it is done (until the next probe). */
  close (): void { this.#client.close() }

  #requestText (port: number, req: HttpProbeRequest): string | Error {
    const cached = this.#requests.get(req)
    if (cached?.port === port) return cached.text
    const text = encodeRequest(port, req)
    this.#requests.set(req, { port, text })
    return text
  }
}

function encodeRequest (port: number, req: HttpProbeRequest): string | Error {
  const headers = req.headers ?? {}
  for (const name in headers) {
    if (RESERVED_HEADERS.has(name.toLowerCase())) return new Error(`invalid request header ${JSON.stringify(name)}`)
  }
  const head = encodeHead('GET', req.path, port, headers, '')
  return head instanceof ExchangeError ? new Error(head.message) : head
}

/** One probe's reading of the answer, and its timer. */
class ProbeSink implements AnswerSink {
  exchange: Exchange | undefined
  readonly #timer: NodeJS.Timeout
  #settled = false
  /** The health+json body so far; undefined when it is not read. */
  #body: Buffer[] | undefined
  #bodyBytes = 0

  constructor (readonly resolve: (o: ProbeOutcome) => void, timeoutMs: number) {
    this.#timer = setTimeout(() => this.exchange?.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)
    this.#timer.unref()
  }

  #settle (o: ProbeOutcome): void {
    if (this.#settled) return
    this.#settled = true
    this.resolve(o)
  }

  onHead (code: number, headers: Record<string, string | string[]>): void {
    const type = headers['content-type']
    const length = headers['content-length']
    if (code < 200 || code >= 400) this.#settle({ result: 'failure', error: `HTTP ${code}` })
    else if (typeof type !== 'string' || !type.toLowerCase().startsWith('application/health+json') || (typeof length === 'string' && Number(length) > MAX_HEALTH_BODY)) this.#settle({ result: 'success' })
    else this.#body = []
  }

  onData (chunk: Buffer): void {
    if (this.#body === undefined) return
    this.#bodyBytes += chunk.length
    if (this.#bodyBytes > MAX_HEALTH_BODY) {
      this.#body = undefined
      this.#settle({ result: 'success' })
    } else {
      this.#body.push(chunk)
    }
  }

  onEnd (): void {
    clearTimeout(this.#timer)
    if (this.#body !== undefined) this.#settle(healthJsonOutcome(this.#body))
    else this.#settle({ result: 'success' })
  }

  onError (err: Error): void {
    clearTimeout(this.#timer)
    this.#settle({ result: 'failure', error: err.message })
  }
}

function healthJsonOutcome (body: Buffer[]): ProbeOutcome {
  let status: unknown
  try {
    status = (JSON.parse(Buffer.concat(body).toString('utf8')) as { status?: unknown }).status
  } catch {
    return { result: 'failure', error: 'invalid application/health+json body' }
  }
  if (status === 'fail') return { result: 'failure', error: 'health+json status fail' }
  if (status === 'warn') return { result: 'warn', error: 'health+json status warn' }
  return { result: 'success' }
}
