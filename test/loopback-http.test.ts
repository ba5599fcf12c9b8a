// The daemon's loopback HTTP/1.1 client (calls into plugins, http probes) against real servers on
// 127.0.0.1: bodies both ways by length and in chunks, connections kept and not kept, answers that
// end early, are too big, or stop; a plugin process that dies part-way through its answer.
import t from 'tap'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import { EXCHANGE_ERROR_CODES, LoopbackClient, MAX_HEAD_BYTES, request, type AnswerBody, type LoopbackAnswer } from '../src/loopback-http.js'
import { Deadline } from '../src/invoke/deadline.js'
import type { Tap } from './helper.js'

interface Served { port: number, connections: number, server: Server, sockets: Set<Socket> }

async function listenOn (t: Tap, server: Server | ReturnType<typeof createNetServer>): Promise<{ port: number, sockets: Set<Socket> }> {
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as AddressInfo).port, sockets }
}

async function serve (t: Tap, answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<Served> {
  const server = createServer(answer)
  const out: Served = { port: 0, connections: 0, server, sockets: new Set() }
  server.on('connection', () => { out.connections++ })
  const { port, sockets } = await listenOn(t, server)
  out.port = port
  out.sockets = sockets
  return out
}

/** A raw TCP server writing `answer` for every request it reads (then closing when asked). */
async function rawServe (t: Tap, answer: string | Buffer, opts: { close?: boolean } = {}): Promise<number> {
  const server = createNetServer((s) => {
    s.on('data', () => {
      s.write(answer)
      if (opts.close) s.end()
    })
  })
  return (await listenOn(t, server)).port
}

function clientFor (t: Tap): LoopbackClient {
  const c = new LoopbackClient()
  t.teardown(() => c.close())
  return c
}

/** A stream when the body did not come whole with the head. */
const streamed = (a: LoopbackAnswer): AnswerBody => {
  if (Buffer.isBuffer(a.body)) throw new Error('the whole body came with the head')
  return a.body
}

const text = async (a: LoopbackAnswer): Promise<string> => {
  if (Buffer.isBuffer(a.body)) return a.body.toString()
  const parts: Buffer[] = []
  for await (const c of a.body) parts.push(c as Buffer)
  return Buffer.concat(parts).toString()
}

const echo = (req: IncomingMessage, res: ServerResponse): void => {
  const parts: Buffer[] = []
  req.on('data', (c: Buffer) => parts.push(c))
  req.on('end', () => {
    const body = Buffer.concat(parts)
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, length: body.length, sha: createHash('sha256').update(body).digest('hex') }))
  })
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('a request without a body, with a buffer, with a stream of declared length, and a chunked stream', async (t) => {
  const s = await serve(t, echo)
  const client = clientFor(t)
  const get = JSON.parse(await text(await request(client, s.port, { method: 'GET', path: '/a?b=1', headers: { 'x-one': 'yes', 'x-list': ['1', '2'] }, body: undefined }, undefined, 0)))
  t.match(get, { method: 'GET', url: '/a?b=1', length: 0 })
  t.equal(get.headers['x-one'], 'yes')
  t.equal(get.headers['x-list'], '1, 2', 'a header given as a list is sent once per value')
  t.equal(get.headers.host, `127.0.0.1:${s.port}`)
  t.notOk('content-length' in get.headers, 'a GET without a body says nothing of one')
  const post = JSON.parse(await text(await request(client, s.port, { method: 'POST', path: '/', headers: {}, body: undefined }, undefined, 0)))
  t.equal(post.headers['content-length'], '0', 'a POST without a body says content-length: 0')

  const payload = Buffer.alloc(3 << 20, 7)
  payload.write('start')
  const buffered = JSON.parse(await text(await request(client, s.port, { method: 'PUT', path: '/', headers: { 'content-length': '1' }, body: payload }, undefined, 0)))
  t.match(buffered, { length: payload.length, sha: sha(payload) })
  t.equal(buffered.headers['content-length'], String(payload.length), 'a buffer\'s own length is sent, not a header given')

  const sized = JSON.parse(await text(await request(client, s.port, { method: 'POST', path: '/', headers: {}, body: Readable.from([payload.subarray(0, 1000), payload.subarray(1000)]), length: payload.length }, undefined, 0)))
  t.match(sized, { length: payload.length, sha: sha(payload) })
  t.equal(sized.headers['content-length'], String(payload.length))

  const chunked = JSON.parse(await text(await request(client, s.port, { method: 'POST', path: '/', headers: { 'transfer-encoding': 'gzip' }, body: Readable.from([Buffer.from('abc'), Buffer.alloc(0), Buffer.from('defg')]) }, undefined, 0)))
  t.match(chunked, { length: 7, sha: sha(Buffer.from('abcdefg')) })
  t.equal(chunked.headers['transfer-encoding'], 'chunked', 'a stream without a length goes in chunks (a given transfer-encoding is not sent)')
})

t.test('answers framed by length, in chunks (split anywhere), and until the close; HEAD and 204 have no body', async (t) => {
  const client = clientFor(t)
  const big = Buffer.alloc(2 << 20, 'x')
  const s = await serve(t, (req, res) => {
    if (req.url === '/chunked') {
      res.writeHead(200, { 'x-kind': 'chunked' })
      res.write('hello ')
      setImmediate(() => res.end('world'))
    } else if (req.url === '/empty') {
      res.writeHead(204)
      res.end()
    } else {
      res.writeHead(200, { 'content-length': big.length, 'set-cookie': ['a=1', 'b=2'] })
      res.end(req.method === 'HEAD' ? undefined : big)
    }
  })
  const chunked = await request(client, s.port, { method: 'GET', path: '/chunked', headers: {}, body: undefined }, undefined, 0)
  t.equal(chunked.statusCode, 200)
  t.equal(chunked.headers['x-kind'], 'chunked')
  t.equal(chunked.headers['transfer-encoding'], 'chunked')
  t.equal(await text(chunked), 'hello world')
  const sized = await request(client, s.port, { method: 'GET', path: '/big', headers: {}, body: undefined }, undefined, 0)
  t.same(sized.headers['set-cookie'], ['a=1', 'b=2'], 'a repeated header is a list')
  t.equal(sha(Buffer.from(await text(sized))), sha(big))
  const head = await request(client, s.port, { method: 'HEAD', path: '/big', headers: {}, body: undefined }, undefined, 0)
  t.equal(head.headers['content-length'], String(big.length))
  t.equal(await text(head), '', 'HEAD: no body whatever the length says')
  const empty = await request(client, s.port, { method: 'GET', path: '/empty', headers: {}, body: undefined }, undefined, 0)
  t.equal(empty.statusCode, 204)
  t.equal(await text(empty), '')
  t.equal(s.connections, 1, 'every answer above left the connection usable')

  const split = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nx-trailer: 1\r\n\r\n'
  const server = createNetServer((sock) => {
    sock.on('data', async () => {
      for (const ch of split) { sock.write(ch); await new Promise((resolve) => setImmediate(resolve)) }
    })
  })
  const raw = (await listenOn(t, server)).port
  t.equal(await text(await request(client, raw, { method: 'GET', path: '/', headers: {}, body: undefined }, undefined, 0)), 'abcdefg', 'one byte at a time')
  const old = await rawServe(t, 'HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end', { close: true })
  t.equal(await text(await request(client, old, { method: 'GET', path: '/', headers: {}, body: undefined }, undefined, 0)), 'until the end', 'no length: the body ends with the connection')
})

t.test('kept-alive connections are reused one exchange after the other; connection: close and the server\'s closes are not', async (t) => {
  const client = clientFor(t)
  const s = await serve(t, (_req, res) => res.end('ok'))
  const small = await request(client, s.port, { method: 'GET', path: '/', headers: {}, body: undefined }, undefined, 0)
  t.same(small.body, Buffer.from('ok'), 'a body that came whole with its head is a buffer')
  for (let i = 0; i < 4; i++) t.equal(await text(await request(client, s.port, { method: 'GET', path: '/', headers: {}, body: undefined }, undefined, 0)), 'ok')
  t.equal(s.connections, 1, 'five calls over one connection')
  t.equal(client.idleCount(s.port), 1)
  const answers = await Promise.all([1, 2, 3].map(() => request(client, s.port, { method: 'GET', path: '/', headers: {}, body: undefined }, undefined, 0)))
  for (const a of answers) t.equal(await text(a), 'ok')
  t.equal(s.connections, 3, 'calls at once: one connection each, the kept one among them')
  t.equal(client.idleCount(s.port), 3)
  // The server drops its idle connections (its keep-alive timeout): the next call does not fail for it.
  const closed = Promise.all([...s.sockets].map((sock) => once(sock, 'close')))
  s.server.closeIdleConnections()
  await closed
  t.equal(await text(await request(client, s.port, { method: 'GET', path: '/', headers: {}, body: undefined }, undefined, 0)), 'ok')
  const closing = await serve(t, (_req, res) => { res.setHeader('connection', 'close'); res.end('bye') })
  for (let i = 0; i < 3; i++) t.equal(await text(await request(client, closing.port, { method: 'GET', path: '/', headers: {}, body: undefined }, undefined, 0)), 'bye')
  t.equal(closing.connections, 3, 'one connection per answer that closes it')
  t.equal(client.idleCount(closing.port), 0)
})

t.test('an answer that ends early, is not HTTP, or whose head is too large fails with its code', async (t) => {
  const client = clientFor(t)
  const call = (port: number) => request(client, port, { method: 'GET', path: '/', headers: {}, body: undefined }, undefined, 0)
  const beforeHead = await rawServe(t, 'HTTP/1.1 200 OK\r\ncontent-le', { close: true })
  await t.rejects(call(beforeHead), { code: EXCHANGE_ERROR_CODES.closed, message: 'the connection closed before the answer was complete' })
  const midBody = await rawServe(t, 'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart', { close: true })
  const a = await call(midBody)
  t.equal(a.statusCode, 200, 'the head came')
  await t.rejects(text(a), { code: EXCHANGE_ERROR_CODES.closed }, 'then the body fails')
  const garbage = await rawServe(t, 'SSH-2.0-OpenSSH_9.2\r\n\r\n')
  await t.rejects(call(garbage), { code: EXCHANGE_ERROR_CODES.invalid, message: 'invalid HTTP answer' })
  const huge = await rawServe(t, `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(MAX_HEAD_BYTES)}\r\ncontent-length: 0\r\n\r\n`)
  await t.rejects(call(huge), { code: EXCHANGE_ERROR_CODES.headTooLarge })
  const badChunk = await rawServe(t, 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n')
  await t.rejects(call(badChunk).then(text), { code: EXCHANGE_ERROR_CODES.invalid, message: 'invalid chunked encoding in the answer' }, 'a head and a broken body in one read: the call fails')
  // The broken chunk is written only once the head has been handed over (the call resolved), so
  // it cannot come in the same read as the head.
  let answering: Socket | undefined
  const badLater = createNetServer((sock) => {
    sock.on('data', () => {
      answering = sock
      sock.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n')
    })
  })
  const later = await call((await listenOn(t, badLater)).port)
  answering!.write('zz\r\n')
  await t.rejects(text(later), { code: EXCHANGE_ERROR_CODES.invalid }, 'a broken body after the head was handed over: the body fails')
  const upgrade = await rawServe(t, 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n')
  await t.rejects(call(upgrade), { code: EXCHANGE_ERROR_CODES.invalid })
  const refusedPort = await new Promise<number>((resolve) => {
    const srv = createNetServer()
    srv.listen(0, '127.0.0.1', () => { const p = (srv.address() as AddressInfo).port; srv.close(() => resolve(p)) })
  })
  await t.rejects(call(refusedPort), { code: 'ECONNREFUSED' })
  await t.rejects(request(client, midBody, { method: 'GET', path: '/x y', headers: {}, body: undefined }, undefined, 0), { code: EXCHANGE_ERROR_CODES.request })
  await t.rejects(request(client, midBody, { method: 'GET', path: '/', headers: { 'x-a': 'b\r\nx-evil: 1' }, body: undefined }, undefined, 0), { code: EXCHANGE_ERROR_CODES.request })
})

t.test('a deadline aborts the wait for the head; a body that stops fails after the body timeout', async (t) => {
  const client = clientFor(t)
  const s = await serve(t, (req, res) => {
    if (req.url === '/stall') { res.writeHead(200, { 'content-length': '10' }); res.write('12345') }
    // /silent: never answers
  })
  const deadline = new Deadline(50)
  t.teardown(() => deadline.clear())
  await t.rejects(request(client, s.port, { method: 'GET', path: '/silent', headers: {}, body: undefined }, deadline, 0), { message: 'no answer within 50 ms' })
  const a = await request(client, s.port, { method: 'GET', path: '/stall', headers: {}, body: undefined }, undefined, 50)
  await t.rejects(text(a), { code: EXCHANGE_ERROR_CODES.bodyTimeout })
  t.equal(client.idleCount(s.port), 0, 'no connection left part-way through an answer is kept')
})

t.test('a body read slowly arrives whole (backpressure); a body destroyed unread closes its connection', async (t) => {
  const client = clientFor(t)
  const big = Buffer.alloc(8 << 20)
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i)
  const s = await serve(t, (_req, res) => { res.writeHead(200, { 'content-length': big.length }); res.end(big) })
  const a = await request(client, s.port, { method: 'GET', path: '/', headers: {}, body: undefined }, undefined, 0)
  const parts: Buffer[] = []
  for await (const c of streamed(a)) {
    parts.push(c as Buffer)
    if (parts.length % 16 === 0) await new Promise((resolve) => setTimeout(resolve, 1))
  }
  t.equal(sha(Buffer.concat(parts)), sha(big))
  const b = await request(client, s.port, { method: 'GET', path: '/', headers: {}, body: undefined }, undefined, 0)
  // The server's socket sees the reset (an error) and then its close.
  const sock = [...s.sockets][0]!
  sock.on('error', () => {})
  const gone = new Promise((resolve) => sock.once('close', resolve))
  streamed(b).destroy()
  await gone
  t.equal(client.idleCount(s.port), 0)
  t.equal((await request(client, s.port, { method: 'HEAD', path: '/', headers: {}, body: undefined }, undefined, 0)).statusCode, 200, 'the next call opens a new one')
})

t.test('a plugin process that dies part-way through its answer fails the body of its answer; the next call is refused, not hung', async (t) => {
  const client = clientFor(t)
  const src = `require('node:http').createServer((req, res) => {
    res.writeHead(200, { 'content-length': '1000' }); res.write('partial'); setImmediate(() => process.exit(1))
  }).listen(0, '127.0.0.1', function () { console.log(this.address().port) })`
  const child = spawn(process.execPath, ['-e', src], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const [line] = await once(child.stdout, 'data') as [Buffer]
  const port = Number(line.toString().trim())
  const a = await request(client, port, { method: 'GET', path: '/', headers: {}, body: undefined }, undefined, 0)
  t.equal(a.statusCode, 200)
  await t.rejects(text(a), { code: EXCHANGE_ERROR_CODES.closed })
  await once(child, 'exit')
  await t.rejects(request(client, port, { method: 'GET', path: '/', headers: {}, body: undefined }, undefined, 0), { code: 'ECONNREFUSED' }, 'nobody listens there any more')
})

t.test('a streamed request body that fails or ends short fails the exchange and closes its connection', async (t) => {
  const client = clientFor(t)
  const s = await serve(t, echo)
  const short = Readable.from([Buffer.from('abc')])
  await t.rejects(request(client, s.port, { method: 'POST', path: '/', headers: {}, body: short, length: 10 }, undefined, 0), { code: EXCHANGE_ERROR_CODES.requestBody })
  const failing = new Readable({ read () {} })
  const p = request(client, s.port, { method: 'POST', path: '/', headers: {}, body: failing }, undefined, 0)
  failing.push('abc')
  failing.destroy(new Error('client went away'))
  await t.rejects(p, { code: EXCHANGE_ERROR_CODES.requestBody, message: /client went away/ })
  t.equal(client.idleCount(s.port), 0)
})

t.test('a streamed request body takes only a connection idle for less than streamReuseMs (it could not be sent again); others reuse it', async (t) => {
  const client = new LoopbackClient({ oneShotReuseMs: 0 })
  t.teardown(() => client.close())
  const s = await serve(t, echo)
  t.match(JSON.parse(await text(await request(client, s.port, { method: 'PUT', path: '/', headers: {}, body: Buffer.from('abc') }, undefined, 0))), { length: 3 })
  t.match(JSON.parse(await text(await request(client, s.port, { method: 'PUT', path: '/', headers: {}, body: Buffer.from('abc') }, undefined, 0))), { length: 3 })
  t.equal(s.connections, 1, 'buffered bodies go over the kept connection')
  t.match(JSON.parse(await text(await request(client, s.port, { method: 'POST', path: '/', headers: {}, body: Readable.from([Buffer.from('abcd')]), length: 4 }, undefined, 0))), { length: 4 })
  t.equal(s.connections, 2, 'a streamed body opens a new one')
  t.equal(client.idleCount(s.port), 2, 'and the kept one stays for later calls')
})

/**
 * A raw server that answers the first request on each connection (kept alive) and closes the
 * connection as the next one arrives, unanswered: the server's keep-alive timeout firing just as
 * the client reuses the connection, driven deterministically. `close`: a FIN, or a reset (RST).
 * Records each request as it arrived: its connection, method and body.
 */
async function closesKept (t: Tap, close: 'fin' | 'rst'): Promise<{ port: number, seen: Array<{ conn: number, method: string, body: string }> }> {
  const seen: Array<{ conn: number, method: string, body: string }> = []
  let conns = 0
  const server = createNetServer((sock) => {
    const conn = ++conns
    let served = 0
    let buf = Buffer.alloc(0)
    sock.on('error', () => {})
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      for (;;) {
        const end = buf.indexOf('\r\n\r\n')
        if (end === -1) return
        const head = buf.toString('latin1', 0, end)
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0)
        if (buf.length < end + 4 + length) return
        const method = head.slice(0, head.indexOf(' '))
        seen.push({ conn, method, body: buf.toString('latin1', end + 4, end + 4 + length) })
        buf = buf.subarray(end + 4 + length)
        if (served++ === 0) sock.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=5\r\n\r\n${method === 'HEAD' ? '' : 'ok'}`)
        else if (close === 'fin') { sock.end(); return } else { sock.resetAndDestroy(); return }
      }
    })
  })
  return { port: (await listenOn(t, server)).port, seen }
}

t.test('a kept connection the server closes as the next request arrives: an idempotent request goes again on a new one, any other is never sent twice', async (t) => {
  for (const close of ['fin', 'rst'] as const) {
    const client = clientFor(t)
    const s = await closesKept(t, close)
    const call = (method: string, body?: Buffer): Promise<LoopbackAnswer> => request(client, s.port, { method, path: '/', headers: {}, body }, undefined, 0)
    t.equal(await text(await call('GET')), 'ok', `${close}: the first call keeps its connection`)
    for (const method of ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']) {
      // The previous answer left one kept connection: the server drops this request on it.
      const before = s.seen.length
      t.equal((await call(method, method === 'PUT' ? Buffer.from('put') : undefined)).statusCode, 200, `${close}: ${method} is answered`)
      t.same(s.seen.slice(before).map((r) => r.method), [method, method], `${close}: ${method} went once more, on a new connection`)
      t.not(s.seen.at(-1)!.conn, s.seen.at(-2)!.conn)
    }
    // A kept connection idle for less than a second: a POST and a PATCH take it, and fail with it.
    for (const method of ['POST', 'PATCH']) {
      const before = s.seen.length
      await t.rejects(call(method, Buffer.from('once')), { code: 'ECONNRESET' }, `${close}: ${method} fails with its connection`)
      t.same(s.seen.slice(before), [{ conn: s.seen[before]!.conn, method, body: 'once' }], `${close}: ${method} reached the server once and was not sent again`)
      t.equal(await text(await call('GET')), 'ok', `${close}: a new connection for the next call`)
    }
  }
})

t.test('a request that is not sent twice (a method that is not idempotent) takes only a connection idle for less than oneShotReuseMs', async (t) => {
  const client = new LoopbackClient({ oneShotReuseMs: 0 })
  t.teardown(() => client.close())
  const s = await serve(t, echo)
  t.match(JSON.parse(await text(await request(client, s.port, { method: 'GET', path: '/', headers: {}, body: undefined }, undefined, 0))), { method: 'GET' })
  t.match(JSON.parse(await text(await request(client, s.port, { method: 'POST', path: '/', headers: {}, body: Buffer.from('abc') }, undefined, 0))), { length: 3 })
  t.equal(s.connections, 2, 'a buffered POST opens a new connection')
  t.match(JSON.parse(await text(await request(client, s.port, { method: 'DELETE', path: '/', headers: {}, body: undefined }, undefined, 0))), { method: 'DELETE' })
  t.equal(s.connections, 2, 'an idempotent call takes a kept one')
  t.equal(client.idleCount(s.port), 2)
})
