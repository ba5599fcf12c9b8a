// One server-sent events client with backpressure, shared by GET /events and the log follow
// streams. Once the client's socket says it is full (write() returned false), chunks wait in
// its own queue, joined into one write at the next 'drain', instead of piling up in the socket
// one small write each. A client whose queue passes maxBufferedBytes, or that took nothing for
// two keep-alive ticks, is disconnected once rather than having chunks dropped: a dropped chunk
// would leave it with a wrong picture and no way to know; a disconnect is visible.

/** What a client connection must offer (http.ServerResponse does). */
export interface EventSink {
  /** false: the socket is full, wait for 'drain' before writing more. */
  write: (chunk: string) => boolean
  once: (event: 'drain', listener: () => void) => unknown
  end: () => void
  destroy: () => void
  /** Hold writes in memory until uncork(), then send them as one (http.ServerResponse has both). */
  cork?: () => void
  uncork?: () => void
}

export const KEEP_ALIVE = ': keep-alive\n\n'
export const CONNECTED = ': connected\n\n'

export interface SseClientOptions {
  /** Bytes not yet taken by the socket allowed before the client is disconnected. */
  maxBufferedBytes: number
  /** Called once when the client is disconnected for being too slow (after its sink is destroyed). */
  onSlow: (client: SseClient, bufferedBytes: number) => void
}

export class SseClient {
  readonly sink: EventSink
  readonly #opts: SseClientOptions
  #queue: string[] = []
  #queuedBytes = 0
  /** The socket said it is full; chunks queue until its 'drain'. */
  #waiting = false
  /** Keep-alive ticks seen while waiting: two in a row without a 'drain' is a stalled client. */
  #stalledTicks = 0
  #gone = false

  constructor (sink: EventSink, opts: SseClientOptions) {
    this.sink = sink
    this.#opts = opts
    this.#write(CONNECTED)
  }

  /** Sends a chunk (queued while the socket is full); `tick` marks a keep-alive. */
  send (chunk: string, tick = false): void {
    if (this.#gone) return
    if (!this.#waiting) return this.#write(chunk)
    this.#queue.push(chunk)
    this.#queuedBytes += chunk.length
    if (tick) this.#stalledTicks++
    // It has not kept up, or took nothing for a whole keep-alive interval: disconnect it
    // (once), not buffer more or hold its place among the clients.
    if (this.#queuedBytes > this.#opts.maxBufferedBytes || this.#stalledTicks >= 2) {
      const buffered = this.#queuedBytes
      this.drop()
      this.sink.destroy()
      this.#opts.onSlow(this, buffered)
    }
  }

  /** Forgets what is queued and sends nothing more (the client left, or is being disconnected). */
  drop (): void {
    this.#gone = true
    this.#queue = []
    this.#queuedBytes = 0
  }

  /** Ends the stream (daemon shutdown, or what it follows is gone). */
  end (): void {
    this.drop()
    this.sink.end()
  }

  #write (chunk: string): void {
    if (this.sink.write(chunk)) return
    this.#waiting = true
    this.sink.once('drain', () => this.#flush())
  }

  #flush (): void {
    this.#waiting = false
    this.#stalledTicks = 0
    if (this.#gone || this.#queue.length === 0) return
    const text = this.#queue.join('')
    this.#queue = []
    this.#queuedBytes = 0
    this.#write(text)
  }
}
