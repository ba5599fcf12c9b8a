// Log files of plugin output (<dataDir>/logs/<name>.log, rotated by size), ?tail from them after
// a daemon restart, and GET /plugins/:name/logs?follow=true as server-sent events.
import t from 'tap'
import { EventEmitter, once } from 'node:events'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { request, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import path from 'node:path'
import { createLogFiles, parseFileLine } from '../src/process/log-files.js'
import { createLogFollow } from '../src/events/log-follow.js'
import type { SupervisorEvents } from '../src/supervisor/supervisor.js'
import { build, fixturePlugin, sink, tempDir, waitForEvent, writeConfig } from './helper.js'

const line = (i: number, text = `line ${i}`) => ({ at: Date.UTC(2026, 0, 1, 0, 0, 0, i), stream: 'stdout' as const, line: text })

t.test('lines go to <name>.log as "<time> <stream> <text>", one write per flush, and are read back', async (t) => {
  const dir = tempDir()
  const errors: Error[] = []
  const files = createLogFiles({ dir, maxFileBytes: 1024 * 1024, keepFiles: 2, onError: (e) => errors.push(e) })
  t.teardown(() => files.close())
  files.append('web', line(0))
  files.append('web', { at: line(1).at, stream: 'stderr', line: 'oops  with  spaces' })
  t.notOk(existsSync(path.join(dir, 'web.log')), 'nothing is written at append: it waits for the flush')
  await files.flush('web')
  t.equal(readFileSync(path.join(dir, 'web.log'), 'utf8'), '2026-01-01T00:00:00.000Z stdout line 0\n2026-01-01T00:00:00.001Z stderr oops  with  spaces\n')
  t.same(await files.tail('web', 10), [line(0), { at: line(1).at, stream: 'stderr', line: 'oops  with  spaces' }])
  t.same(await files.tail('web', 1), [{ at: line(1).at, stream: 'stderr', line: 'oops  with  spaces' }], 'the last n only')
  t.same(await files.tail('nobody', 5), [], 'a plugin that never printed has no file: no lines')
  t.same(parseFileLine('not a log line'), undefined)
  t.same(errors, [])
})

t.test('a file is rotated before it passes maxFileBytes; keepFiles rotated files are kept, the oldest deleted', async (t) => {
  const dir = tempDir()
  const files = createLogFiles({ dir, maxFileBytes: 200, keepFiles: 2, onError: (e) => { throw e } })
  t.teardown(() => files.close())
  // Each batch is 4 lines of 40 bytes (160 bytes): every batch after the first starts a new file.
  for (let b = 0; b < 5; b++) {
    for (let i = 0; i < 4; i++) files.append('w', line(b * 4 + i, `batch ${b} line ${i}`.padEnd(10, '.')))
    await files.flush('w')
  }
  t.same(readdirSync(dir).sort(), ['w.log', 'w.log.1', 'w.log.2'], 'the current file and two rotated ones')
  const current = readFileSync(path.join(dir, 'w.log'), 'utf8')
  t.match(current, /^\S+ stdout batch 4 line 0/, 'the newest batch is in the current file')
  t.ok(Buffer.byteLength(current) <= 200)
  t.match(readFileSync(path.join(dir, 'w.log.1'), 'utf8'), /batch 3 line 0/, '.1 is the newest rotated file')
  t.match(readFileSync(path.join(dir, 'w.log.2'), 'utf8'), /batch 2 line 0/)
  const tail = await files.tail('w', 10)
  t.same(tail.map((l) => l.line), [
    'batch 2 line 2', 'batch 2 line 3',
    'batch 3 line 0', 'batch 3 line 1', 'batch 3 line 2', 'batch 3 line 3',
    'batch 4 line 0', 'batch 4 line 1', 'batch 4 line 2', 'batch 4 line 3'
  ], 'a tail reaches back into the rotated files, oldest first')
})

t.test('keepFiles 0: the file starts over, nothing rotated is kept', async (t) => {
  const dir = tempDir()
  const files = createLogFiles({ dir, maxFileBytes: 50, keepFiles: 0, onError: (e) => { throw e } })
  t.teardown(() => files.close())
  for (let i = 0; i < 3; i++) {
    files.append('w', line(i, `a line of some length ${i}`))
    await files.flush('w')
  }
  t.same(readdirSync(dir), ['w.log'])
  t.match(readFileSync(path.join(dir, 'w.log'), 'utf8'), /^\S+ stdout a line of some length 2\n$/)
})

t.test('after a daemon restart, ?tail reads the lines an earlier daemon wrote to the file', async (t) => {
  const dir = tempDir()
  const loaded = writeConfig([fixturePlugin('talker', 'chatty', { args: ['5'] })], {}, dir)
  const first = await build(t, loaded, { boot: false })
  const printed = waitForEvent(first.daemon.supervisor, 'output', (o) => o.stream === 'stderr')
  await first.daemon.boot()
  await printed
  // The shutdown writes what is queued before the store closes.
  await first.close()
  const file = path.join(loaded.dataDir, 'logs', 'talker.log')
  t.match(readFileSync(file, 'utf8'), /stdout line 0\n(.*\n)*.*stderr err\n/, 'the file holds every line after the shutdown')

  const second = await build(t, writeConfig([fixturePlugin('talker', 'chatty', { args: ['5'], autostart: false })], {}, dir), { boot: false })
  t.same(second.daemon.supervisor.logs('talker', 10), [], 'the new daemon has nothing in memory')
  const res = await second.inject({ method: 'GET', url: '/plugins/talker/logs?tail=3' })
  t.equal(res.statusCode, 200)
  const lines = res.json().lines as { at: string, stream: string, line: string }[]
  t.equal(lines.length, 3)
  t.same(lines.slice(-1), [{ at: lines[2].at, stream: 'stderr', line: 'err' }], 'the last line the earlier daemon saw')
  t.ok(lines.every((l) => /^line \d|^err$/.test(l.line)))
})

/** Reads server-sent events of a response: `next()` resolves with the next event's name and data. */
function sseReader (res: IncomingMessage) {
  let buf = ''
  const events: { event: string, data: string }[] = []
  const waiters: (() => void)[] = []
  res.setEncoding('utf8')
  res.on('data', (chunk: string) => {
    buf += chunk
    let i
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i)
      buf = buf.slice(i + 2)
      const event = /^event: (.*)$/m.exec(block)?.[1]
      const data = /^data: (.*)$/m.exec(block)?.[1]
      if (event !== undefined && data !== undefined) events.push({ event, data })
    }
    for (const w of waiters.splice(0)) w()
  })
  return {
    events,
    async until (n: number): Promise<void> {
      while (events.length < n) await new Promise<void>((resolve) => waiters.push(resolve))
    }
  }
}

function get (port: number, url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: url }, resolve)
    req.on('error', reject)
    req.end()
  })
}

t.test('a stop writes what the plugin printed up to its exit to the file before it answers', async (t) => {
  // Lines printed in the last moment before the exit, more than a pipe holds (about 64 KiB).
  const GOODBYE = 5000
  const loaded = writeConfig([fixturePlugin('talker', 'chatty', { args: ['3'], env: { GOODBYE: String(GOODBYE) } })])
  const app = await build(t, loaded, { boot: false })
  const printed = waitForEvent(app.daemon.supervisor, 'output', (o) => o.line === 'err')
  await app.daemon.boot()
  await printed
  const file = path.join(loaded.dataDir, 'logs', 'talker.log')
  const stop = await app.inject({ method: 'POST', url: '/plugins/talker/stop' })
  t.equal(stop.statusCode, 200)
  t.equal(stop.json().state, 'stopped')
  // Read at once: the batch timer (1 s) has not run yet, so only the stop's flush can have written this.
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => parseFileLine(l)!)
  const of = (stream: string) => lines.filter((l) => l.stream === stream).map((l) => l.line)
  // stdout and stderr are two pipes: their lines interleave as they were read, each stream in order.
  t.same(of('stdout'), ['line 0', 'line 1', 'line 2', ...Array.from({ length: GOODBYE }, (_, i) => `goodbye ${i}`)], 'every stdout line: what it printed while running, and on SIGTERM right before its exit')
  t.same(of('stderr'), ['err', 'goodbye err'], 'and both stderr lines')
})

t.test('?follow=true streams the last lines, then every new one, without a gap or a repeat; the stream is dropped when the client leaves', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('ticker', 'ticker', { args: ['10'] })]), { boot: false })
  const sockets: Socket[] = []
  app.server.on('connection', (s: Socket) => sockets.push(s))
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  const ticked = waitForEvent(app.daemon.supervisor, 'output', (o) => o.line === 'tick 5')
  await app.daemon.boot()
  await ticked
  const res = await get(port, '/plugins/ticker/logs?follow=true&tail=3')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/event-stream/)
  const sse = sseReader(res)
  await sse.until(20)
  const ticks = sse.events.map((e) => {
    t.equal(e.event, 'line')
    const body = JSON.parse(e.data) as { at: string, stream: string, line: string }
    t.match(body, { at: /^\d{4}-\d\d-\d\dT/, stream: 'stdout', line: /^tick \d+$/ })
    return Number(body.line.slice(5))
  })
  t.ok(ticks[0] >= 3, `it began with the tail (${ticks[0]}...)`)
  t.same(ticks, ticks.map((_, i) => ticks[0] + i), 'consecutive: the tail and the live lines join without a gap or a repeat')
  t.equal(app.daemon.logFollow.clientCount(), 1)
  const serverSide = sockets.at(-1)!
  res.destroy()
  await once(serverSide, 'close')
  t.equal(app.daemon.logFollow.clientCount(), 0, 'the client left: it is forgotten')
})

t.test('?follow=true&tail=0 sends only the lines printed from then on (tail -n 0 -f)', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('ticker', 'ticker', { args: ['10'] })]), { boot: false })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  const ticked = waitForEvent(app.daemon.supervisor, 'output', (o) => o.line === 'tick 5')
  await app.daemon.boot()
  await ticked
  // The last line printed before the request: nothing up to it may come.
  const [last] = app.daemon.supervisor.logs('ticker', 1)
  const before = Number(last.line.slice(5))
  const res = await get(port, '/plugins/ticker/logs?follow=true&tail=0')
  t.teardown(() => res.destroy())
  t.equal(res.statusCode, 200)
  const sse = sseReader(res)
  await sse.until(5)
  const ticks = sse.events.map((e) => Number((JSON.parse(e.data) as { line: string }).line.slice(5)))
  t.ok(ticks[0] > before, `the first line (tick ${ticks[0]}) was printed after the request (the last before it: tick ${before})`)
  t.same(ticks, ticks.map((_, i) => ticks[0] + i), 'then every new line, none missed')
})

t.test('a follow stream ends when its plugin is unloaded and when the daemon shuts down', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('b', 'ticker', { args: ['50'] })]))
  // Registered over the API: an inline manifest cannot be unloaded.
  const added = await app.inject({ method: 'POST', url: '/plugins', payload: fixturePlugin('a', 'ticker', { args: ['50'] }) })
  t.equal(added.statusCode, 201, added.body)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  const a = await get(port, '/plugins/a/logs?follow=true&tail=1')
  const b = await get(port, '/plugins/b/logs?follow=true&tail=1')
  const aEnded = once(a, 'end')
  a.resume()
  const del = await app.inject({ method: 'DELETE', url: '/plugins/a' })
  t.equal(del.statusCode, 200)
  await aEnded
  t.pass('unloading a ended its stream')
  const bEnded = once(b, 'end')
  b.resume()
  await app.close()
  await bEnded
  t.pass('the shutdown ended the other')
})

t.test('?follow=true of an unknown plugin is a 404 JSON error, not a stream', async (t) => {
  const app = await build(t, writeConfig([]))
  const res = await app.inject({ method: 'GET', url: '/plugins/nope/logs?follow=true' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'PLUGVISOR_PLUGIN_NOT_FOUND')
})

t.test('follow backpressure: lines wait while the socket is full, go in one write at its drain, and a client past the cap is disconnected', async (t) => {
  const bus = Object.assign(new EventEmitter<SupervisorEvents>(), { has: () => true })
  const slow: number[] = []
  const follow = createLogFollow({ supervisor: bus, keepAliveMs: 600000, maxBufferedBytes: 1024, maxClients: 2, onSlowClient: (_p, b) => slow.push(b) })
  t.teardown(() => follow.close())
  const out = (i: number) => bus.emit('output', { plugin: 'p', stream: 'stdout', line: `printed ${i}`, at: 0 })
  const s = sink()
  follow.subscribe('p', s).start([])
  const other = sink()
  follow.subscribe('q', other).start([])
  t.ok(follow.full(), 'maxClients followers')
  out(0)
  s.stalled = true
  out(1)
  const before = s.chunks.length
  for (let i = 2; i < 5; i++) out(i)
  t.equal(s.chunks.length, before, 'nothing is written while the socket is full')
  s.drain()
  t.equal(s.chunks.length, before + 1, 'one write at the drain')
  t.same([...s.chunks.at(-1)!.matchAll(/printed (\d)/g)].map((m) => m[1]), ['2', '3', '4'])
  s.stalled = true
  for (let i = 0; i < 100; i++) out(i)
  t.equal(s.destroyed, 1, 'disconnected once past maxBufferedBytes')
  t.equal(slow.length, 1)
  t.equal(follow.clientCount(), 1)
  t.equal(other.chunks.length, 1, 'a follower of another plugin got none of these lines')
})
