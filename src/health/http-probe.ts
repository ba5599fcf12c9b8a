// The http probe's client: GET over a kept-alive HTTP/1.1 connection to 127.0.0.1, reading of the
// answer only what a probe judges — the status code, and an application/health+json body up to
// MAX_HEALTH_BODY. Why not undici, the daemon's client for calls into plugins: hundreds of plugins
// probed every second made its general dispatch path (agent, pool, client, request object, parser
// callbacks, handler wrappers) the daemon's largest cost at rest, about twice a bare socket write
// and read of the same request; a probe needs none of what that path is for (bodies to send,
// streaming, pipelining, redirects, TLS).
import { connect, type Socket } from 'node:net'
import type { ProbeOutcome } from './probes.js'

/** Every probe targets the plugin on the loopback interface. */
export const PROBE_HOST = '127.0.0.1'
/** An application/health+json body bigger than this is not read (the status code decides). */
export const MAX_HEALTH_BODY = 64 * 1024
/** A status line and headers longer than this are not a probe answer. */
const MAX_HEAD_BYTES = 16 * 1024
/** A chunk-size or trailer line longer than this is not a probe answer. */
const MAX_LINE_BYTES = 1024
/** A kept-alive connection unused this long is closed (ms). */
export const PROBE_IDLE_CLOSE_MS = 30_000

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/
const PATH = /^[\x21-\xff]+$/
/** A GET without a body frames itself; these would change how the connection or the answer is read. */
const RESERVED_HEADERS = new Set(['connection', 'content-length', 'expect', 'keep-alive', 'transfer-encoding', 'upgrade'])

export interface HttpProbeRequest {
  path: string
  headers?: Record<string, string>
}

/** One kept-alive connection per probed port, reused by each probe of that port in turn. */
export class HttpProbeClient {
  readonly #idle = new Map<number, Connection>()
  readonly #requests = new WeakMap<HttpProbeRequest, { port: number, text: string | Error }>()
  #sweep: NodeJS.Timeout | undefined
  #closed = false

  /** Never rejects: every failure, the timeout included, is a failure outcome. */
  probe (port: number, req: HttpProbeRequest, timeoutMs: number): Promise<ProbeOutcome> {
    this.#closed = false
    const text = this.#requestText(port, req)
    if (text instanceof Error) return Promise.resolve({ result: 'failure', error: text.message })
    return new Promise((resolve) => {
      const exchange = new Exchange(this, port, text, timeoutMs, resolve)
      exchange.send(this.#take(port))
    })
  }

  /** Closes the idle connections; one still answering a probe closes when it is done (until the next probe). */
  close (): void {
    this.#closed = true
    if (this.#sweep) clearInterval(this.#sweep)
    this.#sweep = undefined
    for (const c of this.#idle.values()) c.socket.destroy()
    this.#idle.clear()
  }

  #requestText (port: number, req: HttpProbeRequest): string | Error {
    const cached = this.#requests.get(req)
    if (cached?.port === port) return cached.text
    const text = encodeRequest(port, req)
    this.#requests.set(req, { port, text })
    return text
  }

  /** A kept-alive connection to the port, or undefined. */
  #take (port: number): Connection | undefined {
    const c = this.#idle.get(port)
    if (c) {
      this.#idle.delete(port)
      c.socket.ref()
    }
    return c
  }

  /** @internal A new connection for an exchange. */
  connect (port: number): Connection {
    return new Connection(this, port)
  }

  /** @internal Keeps a connection whose answer ended cleanly for the next probe of its port. */
  release (c: Connection): void {
    if (this.#closed || this.#idle.has(c.port) || c.socket.destroyed) {
      c.socket.destroy()
      return
    }
    c.idleSince = Date.now()
    // An idle connection does not keep the process alive.
    c.socket.unref()
    this.#idle.set(c.port, c)
    if (!this.#sweep) {
      this.#sweep = setInterval(() => this.#closeIdle(), PROBE_IDLE_CLOSE_MS)
      this.#sweep.unref()
    }
  }

  /** @internal A connection closed or failed while idle. */
  forget (c: Connection): void {
    if (this.#idle.get(c.port) === c) this.#idle.delete(c.port)
    c.socket.destroy()
  }

  #closeIdle (): void {
    const before = Date.now() - PROBE_IDLE_CLOSE_MS
    for (const c of this.#idle.values()) if (c.idleSince <= before) this.forget(c)
    if (this.#idle.size === 0 && this.#sweep) {
      clearInterval(this.#sweep)
      this.#sweep = undefined
    }
  }
}

function encodeRequest (port: number, req: HttpProbeRequest): string | Error {
  if (!PATH.test(req.path)) return new Error('invalid request path')
  let host = `host: ${PROBE_HOST}:${port}\r\n`
  let extra = ''
  for (const [name, value] of Object.entries(req.headers ?? {})) {
    const lower = name.toLowerCase()
    if (!TOKEN.test(name) || RESERVED_HEADERS.has(lower)) return new Error(`invalid request header ${JSON.stringify(name)}`)
    if (!HEADER_VALUE.test(value)) return new Error(`invalid value of request header ${name}`)
    if (lower === 'host') host = ''
    extra += `${name}: ${value}\r\n`
  }
  return `GET ${req.path} HTTP/1.1\r\n${host}${extra}\r\n`
}

/** A socket to one port; between exchanges it waits in the client's idle map. */
class Connection {
  readonly socket: Socket
  exchange: Exchange | undefined
  /** Whether an exchange already went through it (a server may close such a one at any time). */
  used = false
  idleSince = 0

  constructor (readonly client: HttpProbeClient, readonly port: number) {
    this.socket = connect({ host: PROBE_HOST, port, noDelay: true })
    this.socket.on('data', (chunk: Buffer) => {
      if (this.exchange) this.exchange.onData(chunk)
      else client.forget(this) // bytes nobody asked for
    })
    this.socket.on('end', () => this.#closed(undefined))
    this.socket.on('error', (err) => this.#closed(err))
    this.socket.on('close', () => this.#closed(undefined))
  }

  #closed (err: Error | undefined): void {
    const ex = this.exchange
    this.exchange = undefined
    if (ex) ex.onClose(err)
    else this.client.forget(this)
  }
}

/** Where the reading of an answer is: its head, a body framed by length, by chunks, or by the end of the connection. */
type Stage = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailer' | 'until-close' | 'done'

/** One probe: its request, the reading of its answer, its timer. */
class Exchange {
  readonly #timer: NodeJS.Timeout
  #conn: Connection | undefined
  #settled = false
  #stage: Stage = 'head'
  /** Bytes of the head, or of a chunk-size or trailer line, not complete yet. */
  #pending: Buffer | undefined
  #remaining = 0
  #keepAlive = true
  #received = false
  /** The health+json body so far; undefined when it is not read. */
  #body: Buffer[] | undefined
  #bodyBytes = 0

  constructor (
    readonly client: HttpProbeClient,
    readonly port: number,
    readonly request: string,
    readonly timeoutMs: number,
    readonly resolve: (o: ProbeOutcome) => void
  ) {
    this.#timer = setTimeout(() => this.#fail(`timed out after ${timeoutMs} ms`), timeoutMs)
    this.#timer.unref()
  }

  send (kept: Connection | undefined): void {
    const conn = kept ?? this.client.connect(this.port)
    this.#conn = conn
    conn.exchange = this
    conn.socket.write(this.request, 'latin1')
  }

  #settle (o: ProbeOutcome): void {
    if (this.#settled) return
    this.#settled = true
    this.resolve(o)
  }

  /** Ends the exchange and drops its connection. */
  #fail (error: string): void {
    clearTimeout(this.#timer)
    this.#stage = 'done'
    this.#settle({ result: 'failure', error })
    const conn = this.#conn
    if (conn && conn.exchange === this) {
      conn.exchange = undefined
      conn.socket.destroy()
    }
  }

  /** The answer ended: judge a read body, keep the connection if the answer allows. */
  #complete (): void {
    clearTimeout(this.#timer)
    this.#stage = 'done'
    if (this.#body !== undefined) this.#settle(healthJsonOutcome(this.#body))
    else this.#settle({ result: 'success' })
    const conn = this.#conn!
    conn.exchange = undefined
    conn.used = true
    if (this.#keepAlive) this.client.release(conn)
    else conn.socket.destroy()
  }

  onClose (err: Error | undefined): void {
    if (this.#stage === 'done') return
    if (this.#stage === 'until-close' && err === undefined) return this.#complete()
    // A kept-alive connection the server closed just as the request went out: once more on a new one.
    if (!this.#received && this.#conn?.used === true) {
      this.#conn = undefined
      return this.send(undefined)
    }
    this.#fail(err?.message ?? 'the connection closed before the answer was complete')
  }

  onData (chunk: Buffer): void {
    this.#received = true
    let at = 0
    while (at < chunk.length && this.#stage !== 'done') {
      switch (this.#stage) {
        case 'head': at = this.#until(chunk, at, '\r\n\r\n', MAX_HEAD_BYTES, (head) => this.#head(head)); break
        case 'length': {
          const n = Math.min(this.#remaining, chunk.length - at)
          this.#bodyData(chunk, at, at + n)
          at += n
          this.#remaining -= n
          if (this.#remaining === 0) this.#complete()
          break
        }
        case 'chunk-size': at = this.#until(chunk, at, '\r\n', MAX_LINE_BYTES, (line) => {
          const size = parseInt(line.split(';', 1)[0]!.trim(), 16)
          if (!Number.isSafeInteger(size) || size < 0) return this.#fail('invalid chunked encoding in the answer')
          if (size === 0) this.#stage = 'trailer'
          else { this.#remaining = size; this.#stage = 'chunk-data' }
        }); break
        case 'chunk-data': {
          const n = Math.min(this.#remaining, chunk.length - at)
          this.#bodyData(chunk, at, at + n)
          at += n
          this.#remaining -= n
          if (this.#remaining === 0) this.#stage = 'chunk-end'
          break
        }
        case 'chunk-end': at = this.#until(chunk, at, '\r\n', MAX_LINE_BYTES, (line) => {
          if (line !== '') return this.#fail('invalid chunked encoding in the answer')
          this.#stage = 'chunk-size'
        }); break
        case 'trailer': at = this.#until(chunk, at, '\r\n', MAX_LINE_BYTES, (line) => { if (line === '') this.#complete() }); break
        case 'until-close':
          this.#bodyData(chunk, at, chunk.length)
          at = chunk.length
          break
        default: throw new Error(`unknown stage ${this.#stage satisfies 'done'}`)
      }
    }
    // Bytes after the end of the answer: the connection cannot be trusted for the next probe.
    if (at < chunk.length && this.#conn?.exchange === undefined) this.#conn?.socket.destroy()
  }

  /**
   * Reads up to `separator` (possibly across chunks), hands what came before it to `done`, and
   * returns where reading stopped in `chunk`: its end when the separator has not come yet.
   */
  #until (chunk: Buffer, at: number, separator: string, max: number, done: (text: string) => void): number {
    let buf = chunk
    let from = at
    if (this.#pending !== undefined) {
      buf = Buffer.concat([this.#pending, chunk.subarray(at)])
      from = 0
    }
    const end = buf.indexOf(separator, from, 'latin1')
    if (end === -1) {
      this.#pending = buf.subarray(from)
      if (this.#pending.length > max) this.#fail('invalid HTTP answer: a line too long')
      return chunk.length
    }
    this.#pending = undefined
    done(buf.toString('latin1', from, end))
    // The separator ends in this chunk (the earlier bytes did not hold it), so what follows it is here.
    return chunk.length - (buf.length - end - separator.length)
  }

  #head (head: string): void {
    const lines = head.split('\r\n')
    const status = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0]!)
    if (!status) return this.#fail('invalid HTTP answer')
    const code = Number(status[2])
    // Informational answers (100 Continue, 103 Early Hints) come before the real one.
    if (code >= 100 && code < 200 && code !== 101) return
    let type = ''
    let length: number | undefined
    let chunked = false
    let connection = ''
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!
      const colon = line.indexOf(':')
      if (colon <= 0) return this.#fail('invalid HTTP answer')
      const name = line.slice(0, colon).trim().toLowerCase()
      const value = line.slice(colon + 1).trim()
      if (name === 'content-type') type = value.toLowerCase()
      else if (name === 'content-length') {
        const n = /^\d+$/.test(value) ? Number(value) : NaN
        if (!Number.isSafeInteger(n) || (length !== undefined && length !== n)) return this.#fail('invalid HTTP answer: content-length')
        length = n
      } else if (name === 'transfer-encoding') chunked = /(?:^|,)\s*chunked\s*$/i.test(value)
      else if (name === 'connection') connection += `${value.toLowerCase()},`
    }
    this.#keepAlive = status[1] === '1' ? !/(?:^|,)\s*close\s*,/.test(connection) : /(?:^|,)\s*keep-alive\s*,/.test(connection)
    if (code === 101) {
      this.#fail('HTTP 101')
      return
    }
    if (code < 200 || code >= 400) this.#settle({ result: 'failure', error: `HTTP ${code}` })
    else if (!type.startsWith('application/health+json') || (length !== undefined && length > MAX_HEALTH_BODY)) this.#settle({ result: 'success' })
    else this.#body = []
    if (code === 204 || code === 304 || (length === 0 && !chunked)) return this.#complete()
    if (chunked) this.#stage = 'chunk-size'
    else if (length !== undefined) {
      this.#stage = 'length'
      this.#remaining = length
    } else {
      this.#stage = 'until-close'
      this.#keepAlive = false
    }
  }

  #bodyData (chunk: Buffer, from: number, to: number): void {
    if (this.#body === undefined || from === to) return
    this.#bodyBytes += to - from
    if (this.#bodyBytes > MAX_HEALTH_BODY) {
      this.#body = undefined
      this.#settle({ result: 'success' })
    } else {
      this.#body.push(chunk.subarray(from, to))
    }
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
