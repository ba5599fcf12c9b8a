import t from 'tap'
import { EventEmitter } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import type { InvokerEvents } from '../src/invoke/invoker.js'
import { createEventStream, KEEP_ALIVE } from '../src/events/event-stream.js'
import type { SupervisorEvents } from '../src/supervisor/supervisor.js'
import { build, fixturePlugin, sink, writeConfig } from './helper.js'

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

t.test('a real client that stops reading is disconnected once its socket and its queue are full, with one log line', async (t) => {
  const lines: string[] = []
  const app = await build(t, writeConfig([], { log: { level: 'warn' }, events: { keepAliveMs: 600000, maxBufferedBytes: 65536 } }), {
    boot: false, logger: undefined, logStream: { write: (l: string) => { lines.push(l) } }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const socket = net.connect({ host: '127.0.0.1', port })
  t.teardown(() => socket.destroy())
  socket.write('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  // Reads the response head, then never again.
  await new Promise<void>((resolve) => socket.once('data', () => { socket.pause(); resolve() }))
  t.equal(app.daemon.events.clientCount(), 1)
  const sup = app.daemon.supervisor as unknown as EventEmitter<SupervisorEvents>
  // The kernel takes a few MB on loopback before the daemon's socket says it is full.
  for (let i = 0; i < 400000 && app.daemon.events.clientCount() > 0; i++) {
    sup.emit('health', { plugin: 'p', from: 'healthy', to: 'degraded', reason: `probe said warn ${i}`, at: 0 })
    if (i % 2000 === 1999) await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(app.daemon.events.clientCount(), 0, 'the client was disconnected')
  const drops = lines.filter((l) => l.includes('did not keep up'))
  t.equal(drops.length, 1, 'one log line')
  t.ok(JSON.parse(drops[0]).bufferedBytes > 65536, 'saying how much waited')
  t.notOk(lines.some((l) => /ERR_STREAM_DESTROYED|write after/.test(l)), 'no error per waiting chunk')
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

const options = { circuits: new EventEmitter<InvokerEvents>(), keepAliveMs: 600000, maxBufferedBytes: 1024, maxClients: 10 }
const healthEvent = (i: number) => ({ plugin: 'p', from: 'healthy', to: 'degraded', reason: `probe said warn ${i}`, at: 0 }) as const

t.test('a full socket gets no more writes: its events wait, and go in one write at its drain', async (t) => {
  const bus = new EventEmitter<SupervisorEvents>()
  const stream = createEventStream({ ...options, supervisor: bus })
  t.teardown(() => stream.close())
  const s = sink()
  stream.subscribe(s)
  bus.emit('health', healthEvent(0))
  s.stalled = true
  bus.emit('health', healthEvent(1))
  t.equal(s.chunks.length, 3, 'the write that filled the socket went; nothing after it')
  for (let i = 2; i < 5; i++) bus.emit('health', healthEvent(i))
  t.equal(s.chunks.length, 3, 'events wait while the socket is full')
  s.drain()
  t.equal(s.chunks.length, 4, 'one write at the drain')
  t.same([...s.chunks[3].matchAll(/warn (\d)/g)].map((m) => m[1]), ['2', '3', '4'], 'every waiting event, in order')
  t.equal(s.destroyed, 0)
})

t.test('a slow client is disconnected once its waiting events pass the cap; the others keep receiving', async (t) => {
  const bus = new EventEmitter<SupervisorEvents>()
  const slowOnes: number[] = []
  const stream = createEventStream({ ...options, supervisor: bus, onSlowClient: (b) => slowOnes.push(b) })
  t.teardown(() => stream.close())
  const slow = sink()
  const fast = sink()
  stream.subscribe(slow)
  stream.subscribe(fast)
  slow.stalled = true
  for (let i = 0; i < 50; i++) bus.emit('health', healthEvent(i))
  t.equal(slow.destroyed, 1, 'the slow client was disconnected, once')
  t.ok(slow.chunks.length <= 2, `it got no write after its socket was full (${slow.chunks.length} writes)`)
  t.equal(slowOnes.length, 1, 'reported once')
  t.ok(slowOnes[0] > 1024 && slowOnes[0] < 1024 + 200, `with the bytes that waited (${slowOnes[0]})`)
  t.equal(stream.clientCount(), 1)
  t.equal(fast.chunks.length, 51, 'the fast client got the opening comment and every event')
  t.equal(fast.destroyed, 0)
})

t.test('a client whose socket took nothing for two keep-alive intervals is disconnected', async (t) => {
  const bus = new EventEmitter<SupervisorEvents>()
  const slowOnes: number[] = []
  const stream = createEventStream({ ...options, keepAliveMs: 10, supervisor: bus, onSlowClient: (b) => slowOnes.push(b) })
  t.teardown(() => stream.close())
  const hold = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(hold))
  const s = sink()
  s.stalled = true
  stream.subscribe(s)
  const gone = new Promise<void>((resolve) => { s.destroy = () => { s.destroyed++; resolve() } })
  await gone
  t.equal(s.destroyed, 1)
  t.equal(slowOnes.length, 1)
  t.equal(stream.clientCount(), 0)
})

t.test('full() once maxClients are connected', async (t) => {
  const bus = new EventEmitter<SupervisorEvents>()
  const stream = createEventStream({ ...options, maxClients: 2, supervisor: bus })
  t.teardown(() => stream.close())
  t.notOk(stream.full())
  stream.subscribe(sink())
  const unsubscribe = stream.subscribe(sink())
  t.ok(stream.full())
  unsubscribe()
  t.notOk(stream.full())
})

t.test('keep-alive comments are sent on the configured interval', async (t) => {
  const bus = new EventEmitter<SupervisorEvents>()
  const stream = createEventStream({ ...options, keepAliveMs: 10, supervisor: bus })
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
  const stream = createEventStream({ ...options, supervisor: bus })
  const s = sink()
  stream.subscribe(s)
  stream.close()
  t.ok(s.ended)
  for (const e of ['transition', 'health', 'restart'] as const) t.equal(bus.listenerCount(e), 0, e)
  const late = sink()
  stream.subscribe(late)
  t.ok(late.ended, 'a client after close is ended at once')
})
