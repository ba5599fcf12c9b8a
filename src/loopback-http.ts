// The daemon's HTTP/1.1 client for plugins' loopback ports: the http probes
// (src/health/http-probe.ts) and the calls into plugins (src/invoke/invoker.ts) both go through
// it. Kept-alive connections per port, a request with no body, a buffered one or a streamed one
// (content-length or chunked), and the answer read as it comes: its head, then its body framed by
// length, by chunks or by the end of the connection. Why not undici: its general dispatch path
// (agent, pool, client, request object, wasm parser callbacks, handler wrappers, an immediate
// before each reuse of a socket) cost the daemon more than a bare socket write and read of the
// same request, for probes and calls alike; a loopback plugin needs none of what that path is for
// (TLS, proxies, redirects, pipelining, HTTP/2). See the Decisions in README.
import { connect, type Socket } from 'node:net'
import { Readable } from 'node:stream'

/** Every plugin is called on the loopback interface. */
export const LOOPBACK_HOST = '127.0.0.1'
/** A status line and headers longer than this are not an answer (Node's own default limit). */
export const MAX_HEAD_BYTES = 16 * 1024
/** A chunk-size or trailer line longer than this is not an answer. */
const MAX_LINE_BYTES = 1024
/** A kept-alive connection unused this long is closed (ms), sooner when the server says it keeps it less. */
export const IDLE_CLOSE_MS = 30_000
/** Kept-alive connections kept per port; more (after a burst of calls) are closed. */
const MAX_IDLE_PER_PORT = 256
/**
 * A request that is not sent again when the server closes its connection just as the request goes
 * out (a streamed body, which is spent; a method that is not idempotent, which the plugin may have
 * acted on) only takes a connection idle for less than this (ms; servers keep idle connections for
 * seconds, e.g. Node 5 s, uvicorn 5 s, gunicorn 2 s); else a new one.
 */
export const ONE_SHOT_REUSE_MS = 1000
/**
 * The methods whose request may be sent twice (RFC 9110 section 9.2.2): the only ones sent again
 * on a new connection when a reused one closes before any byte of the answer, and the only calls
 * into plugins the retry policy repeats (src/invoke/policies.ts).
 */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/
const PATH = /^[\x21-\xff]+$/
/** Methods whose request carries a body: without one they say so (content-length: 0). */
const BODY_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH'])
/** Request headers the client writes itself (framing, connection). */
const FRAMING: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'expect', 'te', 'trailer'])

/** The header names of an answer in lower case; a repeated header is a list. */
export type AnswerHeaders = Record<string, string | string[]>

/** Why an exchange failed, with a code the callers tell apart (node:net's own, e.g. ECONNREFUSED, pass as they are). */
export class ExchangeError extends Error {
  constructor (message: string, readonly code: ExchangeErrorCode) { super(message) }
}
export const EXCHANGE_ERROR_CODES = {
  /** The connection closed before the answer was complete. */
  closed: 'ECONNRESET',
  /** What came back is not an HTTP/1.x answer (or one this client does not take: 101). */
  invalid: 'ERR_INVALID_ANSWER',
  /** The status line and headers are longer than MAX_HEAD_BYTES. */
  headTooLarge: 'ERR_ANSWER_HEAD_TOO_LARGE',
  /** The request cannot be written as given (a path or header that would change it). */
  request: 'ERR_INVALID_REQUEST',
  /** The request's own body failed or ended before its declared length. */
  requestBody: 'ERR_REQUEST_BODY',
  /** No byte of the body came within the body timeout. */
  bodyTimeout: 'ERR_BODY_TIMEOUT'
} as const
export type ExchangeErrorCode = typeof EXCHANGE_ERROR_CODES[keyof typeof EXCHANGE_ERROR_CODES]

/** Who reads an answer: called in this order, each at most once except onData; onError instead of the rest at any point. */
export interface AnswerSink {
  /** The final answer's status and headers (informational answers are skipped). */
  onHead: (statusCode: number, headers: AnswerHeaders) => void
  /** Bytes of the body, in order (views of the socket's buffers, safe to keep). */
  onData: (chunk: Buffer) => void
  /** The body is complete. */
  onEnd: () => void
  /** The exchange failed; its connection is gone. */
  onError: (err: Error) => void
}

export interface ExchangeOptions {
  /** No body follows the head whatever it says (the request was a HEAD). */
  noBody?: boolean
  /** A body that stops for this long after the head fails the exchange (ms, 0: never). */
  bodyTimeoutMs?: number
}

/** The request head for a port: the request line, host (unless given) and the headers, each checked. */
export function encodeHead (method: string, path: string, port: number, headers: Record<string, string | string[]>, framing: string): string | ExchangeError {
  if (!PATH.test(path)) return new ExchangeError('invalid request path', EXCHANGE_ERROR_CODES.request)
  let text = `${method} ${path} HTTP/1.1\r\n`
  let host = true
  for (const name in headers) {
    const value = headers[name]!
    if (!TOKEN.test(name)) return new ExchangeError(`invalid request header ${JSON.stringify(name)}`, EXCHANGE_ERROR_CODES.request)
    const lower = name.toLowerCase()
    if (FRAMING.has(lower)) continue
    if (lower === 'host') host = false
    if (typeof value === 'string') {
      if (!HEADER_VALUE.test(value)) return new ExchangeError(`invalid value of request header ${name}`, EXCHANGE_ERROR_CODES.request)
      text += `${name}: ${value}\r\n`
    } else {
      for (const v of value) {
        if (!HEADER_VALUE.test(v)) return new ExchangeError(`invalid value of request header ${name}`, EXCHANGE_ERROR_CODES.request)
        text += `${name}: ${v}\r\n`
      }
    }
  }
  if (host) text += `host: ${LOOPBACK_HOST}:${port}\r\n`
  return `${text}${framing}\r\n`
}

/** Kept-alive connections per port, reused by each exchange with that port in turn (the most recent first). */
export class LoopbackClient {
  readonly #idle = new Map<number, Connection[]>()
  #sweep: NodeJS.Timeout | undefined
  #closed = false

  /** `oneShotReuseMs`: how long a connection may have been idle to carry a request that is not sent twice (default ONE_SHOT_REUSE_MS). */
  constructor (readonly opts: { oneShotReuseMs?: number } = {}) {}

  /**
   * Sends `head` (from encodeHead) and the body: none, a buffer (its length is framed here), or a
   * stream, framed by `length` (its declared length) or, without one, in chunks; the answer goes
   * to `sink`. The exchange returned can be aborted (a deadline) and paused (backpressure).
   */
  exchange (port: number, head: string, body: Buffer | Readable | undefined, length: number | undefined, sink: AnswerSink, opts: ExchangeOptions = {}): Exchange {
    this.#closed = false
    const ex = new Exchange(this, port, head, body, length, sink, opts)
    ex.send(this.#take(port, ex.replayable ? Infinity : this.opts.oneShotReuseMs ?? ONE_SHOT_REUSE_MS))
    return ex
  }

  /** Closes the idle connections; one still in an exchange closes when it is done (until the next exchange). */
  close (): void {
    this.#closed = true
    if (this.#sweep) clearInterval(this.#sweep)
    this.#sweep = undefined
    for (const list of this.#idle.values()) for (const c of list) c.socket.destroy()
    this.#idle.clear()
  }

  /** Connections kept idle for a port now (tests). */
  idleCount (port: number): number { return this.#idle.get(port)?.length ?? 0 }

  /** A kept-alive connection to the port that is still fresh (and idle for less than `maxIdleMs`), or undefined. */
  #take (port: number, maxIdleMs: number): Connection | undefined {
    const list = this.#idle.get(port)
    if (list === undefined || list.length === 0) return undefined
    const now = Date.now()
    // The most recent one: when it is too old for this request, so are the others (they stay for later ones).
    if (now - list[list.length - 1]!.idleSince >= maxIdleMs) return undefined
    for (let c = list.pop(); c !== undefined; c = list.pop()) {
      // One the server may be closing right now is not worth the race.
      if (now - c.idleSince >= c.idleLimit || c.socket.destroyed) { c.socket.destroy(); continue }
      c.socket.ref()
      return c
    }
    return undefined
  }

  /** @internal A new connection for an exchange. */
  connect (port: number): Connection {
    return new Connection(this, port)
  }

  /** @internal Keeps a connection whose answer ended cleanly for the next exchange with its port. */
  release (c: Connection): void {
    let list = this.#idle.get(c.port)
    if (this.#closed || c.socket.destroyed || (list !== undefined && list.length >= MAX_IDLE_PER_PORT)) {
      c.socket.destroy()
      return
    }
    if (list === undefined) this.#idle.set(c.port, list = [])
    c.idleSince = Date.now()
    // An idle connection does not keep the process alive.
    c.socket.unref()
    list.push(c)
    if (!this.#sweep) {
      this.#sweep = setInterval(() => this.#closeIdle(), IDLE_CLOSE_MS)
      this.#sweep.unref()
    }
  }

  /** @internal A connection closed, failed or sent bytes while idle. */
  forget (c: Connection): void {
    const list = this.#idle.get(c.port)
    const i = list === undefined ? -1 : list.indexOf(c)
    if (i >= 0) list!.splice(i, 1)
    c.socket.destroy()
  }

  #closeIdle (): void {
    const now = Date.now()
    for (const [port, list] of this.#idle) {
      for (const c of [...list]) if (now - c.idleSince >= c.idleLimit) this.forget(c)
      if (list.length === 0) this.#idle.delete(port)
    }
    if (this.#idle.size === 0 && this.#sweep) {
      clearInterval(this.#sweep)
      this.#sweep = undefined
    }
  }
}

/** A socket to one port; between exchanges it waits in the client's idle list. */
class Connection {
  readonly socket: Socket
  exchange: Exchange | undefined
  /** Whether an exchange already went through it (a server may close such a one at any time). */
  used = false
  idleSince = 0
  /** How long it may stay idle: IDLE_CLOSE_MS, or less than the server's keep-alive timeout. */
  idleLimit = IDLE_CLOSE_MS

  constructor (readonly client: LoopbackClient, readonly port: number) {
    this.socket = connect({ host: LOOPBACK_HOST, port, noDelay: true })
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

/** One request and the reading of its answer. */
export class Exchange {
  #conn: Connection | undefined
  #stage: Stage = 'head'
  /** Bytes of the head, or of a chunk-size or trailer line, not complete yet. */
  #pending: Buffer | undefined
  #remaining = 0
  #keepAlive = true
  #received = false
  #paused = false
  /** The request's streamed body has been written to its end (always true for the other kinds). */
  #sent: boolean
  #bodyTimer: NodeJS.Timeout | undefined
  #stopBody: (() => void) | undefined
  /**
   * The request may be sent again on a new connection when a reused one closes before any byte of
   * the answer: its method (from its request line) is idempotent and its body is not a stream,
   * which is spent once sent. Any other request takes only a connection idle for less than
   * ONE_SHOT_REUSE_MS and is never sent twice.
   */
  readonly replayable: boolean

  constructor (
    readonly client: LoopbackClient,
    readonly port: number,
    readonly head: string,
    readonly body: Buffer | Readable | undefined,
    readonly length: number | undefined,
    readonly sink: AnswerSink,
    readonly opts: ExchangeOptions
  ) {
    this.#sent = !(body instanceof Readable)
    this.replayable = this.#sent && IDEMPOTENT_METHODS.has(head.slice(0, head.indexOf(' ')))
  }

  /** Whether the answer is complete or the exchange failed. */
  get done (): boolean { return this.#stage === 'done' }

  /** @internal Writes the request on a kept connection or a new one. */
  send (kept: Connection | undefined): void {
    const conn = kept ?? this.client.connect(this.port)
    this.#conn = conn
    conn.exchange = this
    const { socket } = conn
    const body = this.body
    if (body === undefined) socket.write(this.head, 'latin1')
    else if (Buffer.isBuffer(body)) {
      socket.cork()
      socket.write(this.head, 'latin1')
      if (body.length > 0) socket.write(body)
      socket.uncork()
    } else {
      socket.write(this.head, 'latin1')
      this.#stream(body, socket)
    }
  }

  /** Fails the exchange now (a deadline, the reader gone): its connection is closed, the sink hears `err`. */
  abort (err: Error): void {
    if (this.#stage === 'done') return
    this.#fail(err)
  }

  /** Stops reading the answer until resume() (the reader's buffer is full). */
  pause (): void {
    if (this.#paused || this.#stage === 'done') return
    this.#paused = true
    this.#conn?.socket.pause()
  }

  resume (): void {
    if (!this.#paused) return
    this.#paused = false
    if (this.#stage !== 'done') this.#conn?.socket.resume()
  }

  /** Writes a streamed request body, framed by its declared length or in chunks. */
  #stream (body: Readable, socket: Socket): void {
    const chunked = this.length === undefined
    let written = 0
    const onData = (chunk: Buffer | string): void => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
      if (b.length === 0) return
      written += b.length
      let ok: boolean
      if (chunked) {
        socket.cork()
        socket.write(`${b.length.toString(16)}\r\n`, 'latin1')
        socket.write(b)
        ok = socket.write('\r\n', 'latin1')
        socket.uncork()
      } else ok = socket.write(b)
      if (!ok) {
        body.pause()
        socket.once('drain', onDrain)
      }
    }
    const onDrain = (): void => { body.resume() }
    const onEnd = (): void => {
      stop()
      if (this.length !== undefined && written !== this.length) return this.abort(new ExchangeError(`the request body ended after ${written} of ${this.length} bytes`, EXCHANGE_ERROR_CODES.requestBody))
      if (chunked) socket.write('0\r\n\r\n', 'latin1')
      this.#sent = true
    }
    const onError = (err: Error): void => {
      stop()
      this.abort(new ExchangeError(`the request body failed: ${err.message}`, EXCHANGE_ERROR_CODES.requestBody))
    }
    const onClose = (): void => {
      if (this.#sent) return
      stop()
      this.abort(new ExchangeError('the request body ended early', EXCHANGE_ERROR_CODES.requestBody))
    }
    const stop = (): void => {
      body.off('data', onData)
      body.off('end', onEnd)
      body.off('error', onError)
      body.off('close', onClose)
      socket.off('drain', onDrain)
      this.#stopBody = undefined
    }
    this.#stopBody = stop
    body.on('data', onData)
    body.once('end', onEnd)
    body.once('error', onError)
    body.once('close', onClose)
  }

  /** Ends the exchange and drops its connection. */
  #fail (err: Error): void {
    this.#stage = 'done'
    this.#stopBody?.()
    if (this.#bodyTimer) clearTimeout(this.#bodyTimer)
    const conn = this.#conn
    if (conn && conn.exchange === this) {
      conn.exchange = undefined
      conn.socket.destroy()
    }
    this.sink.onError(err)
  }

  /** The answer ended: keep the connection if the answer allows (and the request was all sent), then tell the sink. */
  #complete (): void {
    this.#stage = 'done'
    if (this.#bodyTimer) clearTimeout(this.#bodyTimer)
    const conn = this.#conn!
    conn.exchange = undefined
    conn.used = true
    if (this.#paused) conn.socket.resume()
    if (this.#keepAlive && this.#sent) this.client.release(conn)
    else {
      this.#stopBody?.()
      conn.socket.destroy()
    }
    this.sink.onEnd()
  }

  /** @internal The connection closed (err: how, when it failed). */
  onClose (err: Error | undefined): void {
    if (this.#stage === 'done') return
    if (this.#stage === 'until-close' && err === undefined) return this.#complete()
    // A kept-alive connection the server closed just as the request went out (its keep-alive
    // timeout): once more on a new one, when the request may be sent twice.
    if (!this.#received && this.#conn?.used === true && this.replayable) {
      this.#conn = undefined
      return this.send(undefined)
    }
    this.#fail(err ?? new ExchangeError('the connection closed before the answer was complete', EXCHANGE_ERROR_CODES.closed))
  }

  /** @internal Bytes from the connection. */
  onData (chunk: Buffer): void {
    this.#received = true
    let at = 0
    while (at < chunk.length && this.#stage !== 'done') {
      switch (this.#stage) {
        case 'head': at = this.#until(chunk, at, '\r\n\r\n', MAX_HEAD_BYTES, (head) => this.#head(head)); break
        case 'length': {
          const n = Math.min(this.#remaining, chunk.length - at)
          if (n > 0) this.sink.onData(chunk.subarray(at, at + n))
          at += n
          this.#remaining -= n
          if (this.#remaining === 0) this.#complete()
          break
        }
        case 'chunk-size': at = this.#until(chunk, at, '\r\n', MAX_LINE_BYTES, (line) => {
          const size = parseInt(line.split(';', 1)[0]!.trim(), 16)
          if (!Number.isSafeInteger(size) || size < 0) return this.#fail(new ExchangeError('invalid chunked encoding in the answer', EXCHANGE_ERROR_CODES.invalid))
          if (size === 0) this.#stage = 'trailer'
          else { this.#remaining = size; this.#stage = 'chunk-data' }
        }); break
        case 'chunk-data': {
          const n = Math.min(this.#remaining, chunk.length - at)
          this.sink.onData(chunk.subarray(at, at + n))
          at += n
          this.#remaining -= n
          if (this.#remaining === 0) this.#stage = 'chunk-end'
          break
        }
        case 'chunk-end': at = this.#until(chunk, at, '\r\n', MAX_LINE_BYTES, (line) => {
          if (line !== '') return this.#fail(new ExchangeError('invalid chunked encoding in the answer', EXCHANGE_ERROR_CODES.invalid))
          this.#stage = 'chunk-size'
        }); break
        case 'trailer': at = this.#until(chunk, at, '\r\n', MAX_LINE_BYTES, (line) => { if (line === '') this.#complete() }); break
        case 'until-close':
          this.sink.onData(chunk.subarray(at))
          at = chunk.length
          break
        default: throw new Error(`unknown stage ${this.#stage satisfies 'done'}`)
      }
    }
    // Bytes after the end of the answer: the connection cannot be trusted for the next exchange.
    if (at < chunk.length && this.#conn?.exchange === undefined) this.#conn?.socket.destroy()
    const bodyTimeoutMs = this.opts.bodyTimeoutMs ?? 0
    if (bodyTimeoutMs > 0 && this.#stage !== 'done' && this.#stage !== 'head') {
      if (this.#bodyTimer) this.#bodyTimer.refresh()
      else this.#bodyTimer = setTimeout(bodyTimedOut, bodyTimeoutMs, this, bodyTimeoutMs)
    }
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
      if (this.#pending.length > max) {
        this.#fail(max === MAX_HEAD_BYTES
          ? new ExchangeError(`invalid HTTP answer: status line and headers over ${MAX_HEAD_BYTES} bytes`, EXCHANGE_ERROR_CODES.headTooLarge)
          : new ExchangeError('invalid HTTP answer: a line too long', EXCHANGE_ERROR_CODES.invalid))
      }
      return chunk.length
    }
    this.#pending = undefined
    if (end - from > max) {
      this.#fail(max === MAX_HEAD_BYTES
        ? new ExchangeError(`invalid HTTP answer: status line and headers over ${MAX_HEAD_BYTES} bytes`, EXCHANGE_ERROR_CODES.headTooLarge)
        : new ExchangeError('invalid HTTP answer: a line too long', EXCHANGE_ERROR_CODES.invalid))
      return chunk.length
    }
    done(buf.toString('latin1', from, end))
    // The separator ends in this chunk (the earlier bytes did not hold it), so what follows it is here.
    return chunk.length - (buf.length - end - separator.length)
  }

  #head (head: string): void {
    const invalid = (what = ''): void => this.#fail(new ExchangeError(`invalid HTTP answer${what}`, EXCHANGE_ERROR_CODES.invalid))
    const lineEnd = head.indexOf('\r\n')
    const statusLine = lineEnd === -1 ? head : head.slice(0, lineEnd)
    const status = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(statusLine)
    if (!status) return invalid()
    const code = Number(status[2])
    // Informational answers (100 Continue, 103 Early Hints) come before the real one.
    if (code >= 100 && code < 200 && code !== 101) return
    if (code === 101) return invalid(': 101 Switching Protocols')
    const headers: AnswerHeaders = {}
    let length: number | undefined
    let chunked = false
    let connection = ''
    let keepAliveHint = ''
    let at = lineEnd === -1 ? head.length : lineEnd + 2
    while (at < head.length) {
      let end = head.indexOf('\r\n', at)
      if (end === -1) end = head.length
      const colon = head.indexOf(':', at)
      if (colon <= at || colon >= end) return invalid()
      const name = head.slice(at, colon).toLowerCase()
      if (!TOKEN.test(name)) return invalid()
      const value = head.slice(colon + 1, end).trim()
      at = end + 2
      const prev = headers[name]
      if (prev === undefined) headers[name] = value
      else if (typeof prev === 'string') headers[name] = [prev, value]
      else prev.push(value)
      switch (name) {
        case 'content-length': {
          const n = /^\d+$/.test(value) ? Number(value) : NaN
          if (!Number.isSafeInteger(n) || (length !== undefined && length !== n)) return invalid(': content-length')
          length = n
          break
        }
        case 'transfer-encoding': chunked = /(?:^|,)\s*chunked\s*$/i.test(value); break
        case 'connection': connection += `${value.toLowerCase()},`; break
        case 'keep-alive': keepAliveHint = value; break
      }
    }
    this.#keepAlive = status[1] === '1' ? !/(?:^|,)\s*close\s*,/.test(connection) : /(?:^|,)\s*keep-alive\s*,/.test(connection)
    const hint = /(?:^|,)\s*timeout=(\d+)/i.exec(keepAliveHint)
    // Closed a second before the server would close it (a request sent into its close is lost).
    if (hint && this.#conn) this.#conn.idleLimit = Math.min(IDLE_CLOSE_MS, Math.max(0, Number(hint[1]) * 1000 - 1000))
    this.sink.onHead(code, headers)
    if (this.#stage === 'done') return // the sink aborted
    if (this.opts.noBody === true || code === 204 || code === 304 || (length === 0 && !chunked)) return this.#complete()
    if (chunked) {
      this.#stage = 'chunk-size'
      // A length beside chunked framing is ignored, and the connection not trusted afterwards.
      if (length !== undefined) this.#keepAlive = false
    } else if (length !== undefined) {
      this.#stage = 'length'
      this.#remaining = length
    } else {
      this.#stage = 'until-close'
      this.#keepAlive = false
    }
  }
}

function bodyTimedOut (ex: Exchange, ms: number): void {
  ex.abort(new ExchangeError(`no byte of the answer's body within ${ms} ms`, EXCHANGE_ERROR_CODES.bodyTimeout))
}

/** A request of the calls into plugins: its body streamed (with its declared length, or in chunks) or buffered. */
export interface LoopbackRequest {
  method: string
  /** Path and query, starting with '/'. */
  path: string
  headers: Record<string, string | string[]>
  body: Buffer | Readable | undefined
  /** The streamed body's declared length; without it a streamed body is sent in chunks. */
  length?: number
}

/**
 * What `request` resolves with once the head came: the body, still streaming, or a buffer when
 * the whole of it came in the same read as the head (a small answer: no stream to pipe).
 */
export interface LoopbackAnswer {
  statusCode: number
  headers: AnswerHeaders
  body: AnswerBody | Buffer
}

/** The abort side of a deadline: `aborted`, `reason`, and one 'abort' listener (an AbortSignal or src/invoke/deadline.ts). */
export interface AbortLike {
  readonly aborted: boolean
  readonly reason: unknown
  addEventListener: (type: 'abort', listener: () => void) => void
  removeEventListener: (type: 'abort', listener: () => void) => void
}

/** The body of an answer as a stream, read with backpressure; destroying it closes the connection. */
export class AnswerBody extends Readable {
  #exchange: Exchange | undefined

  /** @internal */
  attach (ex: Exchange): void { this.#exchange = ex }

  override _read (): void { this.#exchange?.resume() }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    // After its end (autoDestroy) there is nothing to stop; before it, the connection goes.
    const ex = this.#exchange
    if (ex !== undefined && !ex.done) ex.abort(err ?? new ExchangeError('the answer\'s body was not read to its end', EXCHANGE_ERROR_CODES.closed))
    cb(err)
  }

  /** @internal */
  deliver (chunk: Buffer): void {
    if (!this.push(chunk)) this.#exchange?.pause()
  }

  /** Reads the rest of the body and throws it away. */
  dump (): Promise<void> {
    if (this.readableEnded || this.destroyed) return Promise.resolve()
    return new Promise((resolve) => {
      this.once('close', resolve)
      this.on('error', ignore)
      this.resume()
    })
  }
}

const ignore = (): void => {}

/**
 * A call: resolves with the answer's head once it came (the body streams on), rejects with the
 * exchange's error or, when `signal` aborts before the head, its reason.
 */
export function request (client: LoopbackClient, port: number, req: LoopbackRequest, signal: AbortLike | undefined, bodyTimeoutMs: number): Promise<LoopbackAnswer> {
  const framing = req.body === undefined
    ? BODY_METHODS.has(req.method) ? 'content-length: 0\r\n' : ''
    : Buffer.isBuffer(req.body)
      ? `content-length: ${req.body.length}\r\n`
      : req.length !== undefined ? `content-length: ${req.length}\r\n` : 'transfer-encoding: chunked\r\n'
  const head = encodeHead(req.method, req.path, port, req.headers, framing)
  if (head instanceof ExchangeError) return Promise.reject(head)
  if (signal?.aborted === true) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    let body: AnswerBody | undefined
    let statusCode = 0
    let headers: AnswerHeaders | undefined
    // Body bytes and the end that came in the same read as the head, before the answer is handed over.
    let early: Buffer[] | undefined
    let ended = false
    let failed: Error | undefined
    const onAbort = (): void => { ex.abort(signal!.reason as Error) }
    /** After the read that brought the head: the whole answer as a buffer, or a stream of the rest. */
    const handOver = (): void => {
      if (failed !== undefined) return reject(failed)
      if (ended) {
        const whole = early === undefined ? EMPTY : early.length === 1 ? early[0]! : Buffer.concat(early)
        return resolve({ statusCode, headers: headers!, body: whole })
      }
      body = new AnswerBody()
      body.attach(ex)
      if (early !== undefined) for (const c of early) body.deliver(c)
      early = undefined
      resolve({ statusCode, headers: headers!, body })
    }
    const sink: AnswerSink = {
      onHead (code, h) {
        signal?.removeEventListener('abort', onAbort)
        statusCode = code
        headers = h
        queueMicrotask(handOver)
      },
      onData (chunk) {
        if (body !== undefined) body.deliver(chunk)
        else (early ??= []).push(chunk)
      },
      onEnd () {
        if (body !== undefined) body.push(null)
        else ended = true
      },
      onError (err) {
        signal?.removeEventListener('abort', onAbort)
        if (headers === undefined) return reject(err)
        if (body === undefined) { failed = err; return }
        if (body.destroyed) return
        // The reader may not listen yet: the error is kept on the stream for it, never thrown as an
        // unhandled 'error' event.
        const b = body.on('error', ignore)
        queueMicrotask(() => b.destroy(err))
      }
    }
    const ex = client.exchange(port, head, req.body, req.length, sink, { noBody: req.method === 'HEAD', bodyTimeoutMs })
    signal?.addEventListener('abort', onAbort)
  })
}

const EMPTY = Buffer.alloc(0)
