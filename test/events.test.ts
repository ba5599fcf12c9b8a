import t from 'tap'
import { EventEmitter } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { InvokerEvents } from '../src/invoke/invoker.js'
import { createEventStream, KEEP_ALIVE, type EventSink } from '../src/events/event-stream.js'
import type { SupervisorEvents } from '../src/supervisor/supervisor.js'
import { build, fixturePlugin, writeConfig } from './helper.js'

interface SseEvent { event: string, data: Record<string, unknown> }

/** A GET /events client on a real socket: parsed events and comments as they arrive. */
function connect (port: number): Promise<{ res: http.IncomingMessage, next: (pred: (e: SseEvent) => boolean) => Promise<SseEvent>, comments: string[], closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/events' }, (res) => {
      res.setEncoding('utf8')
      let buffer = ''
      const events: SseEvent[] = []
      const comments: string[] = []
      const waiters: { pred: (e: SseEvent) => boolean, resolve: (e: SseEvent) => void }[] = []
      const closed = new Promise<void>((resolve) => res.on('close', () => resolve()))
      res.on('data', (chunk: string) => {
        buffer += chunk
        let i: number
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i)
          buffer = buffer.slice(i + 2)
          if (block.startsWith(':')) { comments.push(block); continue }
          const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message'
          const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null')
          const e = { event, data }
          events.push(e)
          for (const w of [...waiters]) if (w.pred(e)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(e) }
        }
      })
      const next = (pred: (e: SseEvent) => boolean): Promise<SseEvent> => {
        const seen = events.find(pred)
        if (seen) return Promise.resolve(seen)
        return new Promise((resolve) => waiters.push({ pred, resolve }))
      }
      // The opening comment means the client is subscribed.
      res.once('data', () => resolve({ res, next, comments, closed }))
    })
    req.on('error', reject)
  })
}

t.test('GET /events streams a restart, with its transitions and health changes', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('one', 'sleep')]), { boot: false })
  await app.daemon.boot()
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const client = await connect(port)
  t.equal(client.res.statusCode, 200)
  t.match(client.res.headers['content-type'], /^text\/event-stream/)
  t.equal(client.res.headers['cache-control'], 'no-cache, no-transform')

  await app.inject({ method: 'POST', url: '/plugins/one/restart' })
  const restart = await client.next((e) => e.event === 'restart')
  t.match(restart.data, { plugin: 'one', from: null, to: null, reason: 'manual' })
  t.match(restart.data.at, /^\d{4}-\d\d-\d\dT.*Z$/)
  const stopping = await client.next((e) => e.event === 'transition' && e.data.to === 'stopping')
  t.match(stopping.data, { plugin: 'one', from: 'running' })
  t.type(stopping.data.reason, 'string')
  t.same(Object.keys(stopping.data).sort(), ['at', 'from', 'plugin', 'reason', 'to'])
  await client.next((e) => e.event === 'transition' && e.data.to === 'running')
  const health = await client.next((e) => e.event === 'health' && e.data.to === 'healthy')
  t.match(health.data, { plugin: 'one', from: 'unknown' })

  // app.close() must not wait for the open stream.
  t.equal(app.daemon.events.clientCount(), 1)
  await app.close()
  await client.closed
  t.equal(app.daemon.events.clientCount(), 0)
})

t.test('a client that disconnects is unsubscribed', async (t) => {
  const app = await build(t, writeConfig([]), { boot: false })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const client = await connect(port)
  t.equal(app.daemon.events.clientCount(), 1)
  const gone = new Promise<void>((resolve) => {
    const check = (): void => { if (app.daemon.events.clientCount() === 0) resolve(); else setImmediate(check) }
    check()
  })
  client.res.destroy()
  await gone
  t.equal(app.daemon.events.clientCount(), 0)
})

/** An in-memory client whose socket takes nothing once `stalled` is set. */
function sink () {
  const chunks: string[] = []
  let onWrite: ((chunk: string) => void) | undefined
  const s = {
    chunks,
    stalled: false,
    writableLength: 0,
    ended: false,
    destroyed: false,
    write (chunk: string) {
      chunks.push(chunk)
      if (s.stalled) s.writableLength += chunk.length
      onWrite?.(chunk)
      return !s.stalled
    },
    end () { s.ended = true },
    destroy () { s.destroyed = true },
    nextWrite: () => new Promise<string>((resolve) => { onWrite = (c) => { onWrite = undefined; resolve(c) } })
  }
  return s satisfies EventSink & Record<string, unknown>
}

t.test('a slow client is disconnected once its unsent bytes pass the cap; the others keep receiving', async (t) => {
  const bus = new EventEmitter<SupervisorEvents>()
  const slowOnes: number[] = []
  const stream = createEventStream({ supervisor: bus, circuits: new EventEmitter<InvokerEvents>(), keepAliveMs: 600000, maxBufferedBytes: 1024, onSlowClient: (b) => slowOnes.push(b) })
  t.teardown(() => stream.close())
  const slow = sink()
  const fast = sink()
  stream.subscribe(slow)
  stream.subscribe(fast)
  slow.stalled = true
  for (let i = 0; i < 50; i++) bus.emit('health', { plugin: 'p', from: 'healthy', to: 'degraded', reason: `probe said warn ${i}`, at: 0 })
  t.ok(slow.destroyed, 'the slow client was disconnected')
  t.ok(slow.writableLength <= 1024 + 200, `its buffer stopped growing near the cap (${slow.writableLength} bytes)`)
  t.equal(slowOnes.length, 1, 'reported once')
  t.equal(stream.clientCount(), 1)
  t.equal(fast.chunks.length, 51, 'the fast client got the opening comment and every event')
  t.notOk(fast.destroyed)
})

t.test('keep-alive comments are sent on the configured interval', async (t) => {
  const bus = new EventEmitter<SupervisorEvents>()
  const stream = createEventStream({ supervisor: bus, circuits: new EventEmitter<InvokerEvents>(), keepAliveMs: 10, maxBufferedBytes: 1024 })
  t.teardown(() => stream.close())
  const s = sink()
  stream.subscribe(s)
  // The stream's timer is unref'd (it must not keep a daemon alive); hold the loop while waiting.
  const hold = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(hold))
  t.equal(await s.nextWrite(), KEEP_ALIVE)
})

t.test('close ends every stream and stops listening', async (t) => {
  const bus = new EventEmitter<SupervisorEvents>()
  const stream = createEventStream({ supervisor: bus, circuits: new EventEmitter<InvokerEvents>(), keepAliveMs: 600000, maxBufferedBytes: 1024 })
  const s = sink()
  stream.subscribe(s)
  stream.close()
  t.ok(s.ended)
  for (const e of ['transition', 'health', 'restart'] as const) t.equal(bus.listenerCount(e), 0, e)
  const late = sink()
  stream.subscribe(late)
  t.ok(late.ended, 'a client after close is ended at once')
})
