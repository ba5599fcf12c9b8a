// The http probe against real servers on loopback: what passes and fails, the timeout at every
// stage of an answer, the request it sends, and the kept-alive connection between probes.
import t from 'tap'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import { createProbeClient, runProbe, type ProbeTarget } from '../src/health/probes.js'
import type { HealthCheck } from '../src/config/schema.js'
import type { Tap } from './helper.js'

interface Served { port: number, requests: IncomingMessage[], connections: number, server: Server, sockets: Set<Socket> }

/** Listens on 127.0.0.1 and returns the port; at teardown the server closes, its sockets destroyed. */
async function listen (t: Tap, server: NetServer, sockets: Set<Socket>): Promise<number> {
  server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return (server.address() as AddressInfo).port
}

/** A server answering every request with `answer`. */
async function serve (t: Tap, answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<Served> {
  const server = createServer((req, res) => { served.requests.push(req); answer(req, res) })
  const served: Served = { port: 0, requests: [], connections: 0, server, sockets: new Set() }
  server.on('connection', () => { served.connections++ })
  served.port = await listen(t, server, served.sockets)
  return served
}

function probeOf (http: NonNullable<HealthCheck['http']>, timeoutMs = 1000): HealthCheck {
  return { http, intervalMs: 1000, timeoutMs, initialDelayMs: 0, failureThreshold: 3, successThreshold: 1 }
}

function target (port: number): ProbeTarget {
  return { port, cwd: process.cwd(), env: {} }
}

function agentFor (t: Tap) {
  const agent = createProbeClient()
  t.teardown(() => agent.close())
  return agent
}

const healthJson = (body: string) => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/health+json' })
  res.end(body)
}

t.test('2xx and 3xx pass; 4xx and 5xx fail with the status', async (t) => {
  const agent = agentFor(t)
  for (const [status, outcome] of [
    [200, { result: 'success' }],
    [204, { result: 'success' }],
    [302, { result: 'success' }],
    [404, { result: 'failure', error: 'HTTP 404' }],
    [503, { result: 'failure', error: 'HTTP 503' }]
  ] as const) {
    const s = await serve(t, (_req, res) => { res.writeHead(status, status === 302 ? { location: '/elsewhere' } : {}); res.end(status === 204 ? undefined : 'body') })
    t.same(await runProbe(probeOf({ path: '/health' }), target(s.port), agent), outcome, `HTTP ${status}`)
  }
})

t.test('sends GET to the path with the extra headers', async (t) => {
  const s = await serve(t, (_req, res) => res.end('ok'))
  const outcome = await runProbe(probeOf({ path: '/ready?deep=1', headers: { 'x-probe': 'yes', authorization: 'Bearer abc' } }), target(s.port), agentFor(t))
  t.same(outcome, { result: 'success' })
  t.equal(s.requests.length, 1)
  t.equal(s.requests[0]!.method, 'GET')
  t.equal(s.requests[0]!.url, '/ready?deep=1')
  t.equal(s.requests[0]!.headers['x-probe'], 'yes')
  t.equal(s.requests[0]!.headers.authorization, 'Bearer abc')
  t.equal(s.requests[0]!.headers.host, `127.0.0.1:${s.port}`)
})

t.test('application/health+json: pass, warn and fail by its status, also chunked; an invalid body fails', async (t) => {
  const agent = agentFor(t)
  const cases = [
    ['{"status":"pass"}', { result: 'success' }],
    ['{"status":"warn","notes":["disk"]}', { result: 'warn', error: 'health+json status warn' }],
    ['{"status":"fail"}', { result: 'failure', error: 'health+json status fail' }],
    ['{"checks":{}}', { result: 'success' }],
    ['{"status":', { result: 'failure', error: 'invalid application/health+json body' }]
  ] as const
  for (const [body, outcome] of cases) {
    const s = await serve(t, healthJson(body))
    t.same(await runProbe(probeOf({ path: '/health' }), target(s.port), agent), outcome, body)
    // The same body in chunks, without a content-length.
    const c = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/health+json; charset=utf-8' })
      res.write(body.slice(0, 5))
      setImmediate(() => res.end(body.slice(5)))
    })
    t.same(await runProbe(probeOf({ path: '/health' }), target(c.port), agent), outcome, `${body} (chunked)`)
  }
})

t.test('a body of another type, or a health+json body over 64 KiB, is not judged: the status code decides', async (t) => {
  const agent = agentFor(t)
  const plain = await serve(t, (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"status":"fail"}') })
  t.same(await runProbe(probeOf({ path: '/health' }), target(plain.port), agent), { result: 'success' }, 'application/json is not read')
  const big = JSON.stringify({ status: 'fail', pad: 'x'.repeat(70 * 1024) })
  const large = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/health+json', 'content-length': String(Buffer.byteLength(big)) })
    res.end(big)
  })
  t.same(await runProbe(probeOf({ path: '/health' }), target(large.port), agent), { result: 'success' }, 'with a content-length over the limit')
  const chunked = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/health+json' })
    res.write(big.slice(0, 40 * 1024))
    setImmediate(() => res.end(big.slice(40 * 1024)))
  })
  t.same(await runProbe(probeOf({ path: '/health' }), target(chunked.port), agent), { result: 'success' }, 'chunked past the limit')
})

t.test('a server that does not answer, or stops part-way through the body the probe reads, fails at the timeout', async (t) => {
  const agent = agentFor(t)
  const silent = await serve(t, () => {})
  t.same(await runProbe(probeOf({ path: '/health' }, 200), target(silent.port), agent), { result: 'failure', error: 'timed out after 200 ms' }, 'no headers')
  const stalled = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/health+json', 'content-length': '100' })
    res.write('{"status":')
  })
  t.same(await runProbe(probeOf({ path: '/health' }, 200), target(stalled.port), agent), { result: 'failure', error: 'timed out after 200 ms' }, 'headers, then part of the body')
  const plainStalled = await serve(t, (_req, res) => {
    res.writeHead(500, { 'content-length': '100' })
    res.write('oops')
  })
  t.same(await runProbe(probeOf({ path: '/health' }, 200), target(plainStalled.port), agent), { result: 'failure', error: 'HTTP 500' }, 'a failing status, then part of a body that is not read: the status decides')
  // A connection left part-way through an answer is not reused: the next probe of a healthy server passes.
  const ok = await serve(t, (_req, res) => res.end('ok'))
  t.same(await runProbe(probeOf({ path: '/health' }, 200), target(ok.port), agent), { result: 'success' })
})

t.test('a closed port fails with ECONNREFUSED in the error (the binding retry looks for it); no port fails', async (t) => {
  const agent = agentFor(t)
  const s = await serve(t, (_req, res) => res.end('ok'))
  const port = s.port
  // Free the port: close the server now (its teardown then finds it closed).
  const closed = await new Promise<number>((resolve) => {
    const probe = createServer()
    probe.listen(0, '127.0.0.1', () => { const p = (probe.address() as AddressInfo).port; probe.close(() => resolve(p)) })
  })
  const refused = await runProbe(probeOf({ path: '/health' }), target(closed), agent)
  t.equal(refused.result, 'failure')
  t.match(refused.error, /ECONNREFUSED/)
  t.same(await runProbe(probeOf({ path: '/health' }), { port: undefined, cwd: process.cwd(), env: {} }, agent), { result: 'failure', error: 'no port to probe' })
  t.same(await runProbe(probeOf({ path: '/health', port }), { port: undefined, cwd: process.cwd(), env: {} }, agent), { result: 'success' }, 'http.port is probed when the plugin has none')
})

t.test('probes of one plugin reuse kept-alive connections, not a new one each', async (t) => {
  const agent = agentFor(t)
  const s = await serve(t, healthJson('{"status":"pass"}'))
  for (let i = 0; i < 5; i++) t.same(await runProbe(probeOf({ path: '/health' }), target(s.port), agent), { result: 'success' })
  const plain = await serve(t, (_req, res) => { res.writeHead(503); res.end('down') })
  for (let i = 0; i < 5; i++) t.same(await runProbe(probeOf({ path: '/health' }), target(plain.port), agent), { result: 'failure', error: 'HTTP 503' })
  t.equal(s.requests.length, 5)
  // Back to back, a probe may find the first connection not yet released and open the pool's second.
  t.ok(s.connections <= 2, `five probes over ${s.connections} connections`)
  t.ok(plain.connections <= 2, `also when the body is not read: ${plain.connections} connections`)
})

/** A raw TCP server that writes its answer for every request it reads, in the pieces given. */
async function rawServe (t: Tap, pieces: string[], opts: { close?: boolean } = {}): Promise<{ port: number, requests: string[] }> {
  const out = { port: 0, requests: [] as string[] }
  const server = createNetServer((s) => {
    s.on('data', async (d) => {
      out.requests.push(d.toString('latin1'))
      for (const p of pieces) {
        s.write(p, 'latin1')
        await new Promise((resolve) => setImmediate(resolve))
      }
      if (opts.close) s.end()
    })
  })
  out.port = await listen(t, server, new Set())
  return out
}

t.test('an answer read in small pieces: the head, chunk sizes and CRLFs split anywhere', async (t) => {
  const agent = agentFor(t)
  const answer = 'HTTP/1.1 200 OK\r\ncontent-type: application/health+json\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{"sta\r\nc;ext=1\r\ntus":"warn"}\r\n0\r\nx-trailer: 1\r\n\r\n'
  const s = await rawServe(t, [...answer])
  t.same(await runProbe(probeOf({ path: '/health' }), target(s.port), agent), { result: 'warn', error: 'health+json status warn' }, 'one byte at a time')
  t.same(await runProbe(probeOf({ path: '/health' }), target(s.port), agent), { result: 'warn', error: 'health+json status warn' }, 'and again over the same connection')
  t.equal(s.requests.length, 2)
  const length = await rawServe(t, ['HTTP/1.1 200 OK\r\ncontent-type: application/health+json\r\ncontent-length: 17\r', '\n\r\n{"status"', ':"fail"}'])
  t.same(await runProbe(probeOf({ path: '/health' }), target(length.port), agent), { result: 'failure', error: 'health+json status fail' }, 'a content-length body after a split blank line')
})

t.test('informational answers before the real one are skipped; HTTP/1.0 without a length is read until the close', async (t) => {
  const agent = agentFor(t)
  const early = await rawServe(t, ['HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n'])
  t.same(await runProbe(probeOf({ path: '/health' }), target(early.port), agent), { result: 'failure', error: 'HTTP 503' })
  const old = await rawServe(t, ['HTTP/1.0 200 OK\r\ncontent-type: application/health+json\r\n\r\n{"status":', '"fail"}'], { close: true })
  t.same(await runProbe(probeOf({ path: '/health' }), target(old.port), agent), { result: 'failure', error: 'health+json status fail' })
  t.same(await runProbe(probeOf({ path: '/health' }), target(old.port), agent), { result: 'failure', error: 'health+json status fail' }, 'again, over a new connection')
})

t.test('what is not an HTTP answer fails the probe', async (t) => {
  const agent = agentFor(t)
  const garbage = await rawServe(t, ['SSH-2.0-OpenSSH_9.2\r\n\r\n'])
  t.same(await runProbe(probeOf({ path: '/health' }), target(garbage.port), agent), { result: 'failure', error: 'invalid HTTP answer' })
  const badChunk = await rawServe(t, ['HTTP/1.1 200 OK\r\ncontent-type: application/health+json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n'])
  t.same(await runProbe(probeOf({ path: '/health' }), target(badChunk.port), agent), { result: 'failure', error: 'invalid chunked encoding in the answer' })
  const closed = await rawServe(t, ['HTTP/1.1 200 OK\r\ncontent-type: application/health+json\r\ncontent-length: 50\r\n\r\n{"st'], { close: true })
  t.same(await runProbe(probeOf({ path: '/health' }), target(closed.port), agent), { result: 'failure', error: 'the connection closed before the answer was complete' })
})

t.test('a header or path that would change the request is refused before anything is sent', async (t) => {
  const agent = agentFor(t)
  const s = await serve(t, (_req, res) => res.end('ok'))
  t.same(await runProbe(probeOf({ path: '/health', headers: { 'x-a': 'b\r\nx-evil: 1' } }), target(s.port), agent), { result: 'failure', error: 'invalid value of request header x-a' })
  t.same(await runProbe(probeOf({ path: '/health', headers: { 'bad name': 'x' } }), target(s.port), agent), { result: 'failure', error: 'invalid request header "bad name"' })
  t.same(await runProbe(probeOf({ path: '/health', headers: { 'Transfer-Encoding': 'chunked' } }), target(s.port), agent), { result: 'failure', error: 'invalid request header "Transfer-Encoding"' })
  t.same(await runProbe(probeOf({ path: '/health HTTP/1.1\r\nx: y' }), target(s.port), agent), { result: 'failure', error: 'invalid request path' })
  t.equal(s.requests.length, 0, 'the server saw no request')
  t.same(await runProbe(probeOf({ path: '/health', headers: { Host: 'plugin.local' } }), target(s.port), agent), { result: 'success' })
  t.equal(s.requests[0]!.headers.host, 'plugin.local', 'a host header replaces the default one')
})

t.test('a kept-alive connection the plugin closed between probes is replaced, not a failure', async (t) => {
  const agent = agentFor(t)
  const s = await serve(t, (_req, res) => res.end('ok'))
  t.same(await runProbe(probeOf({ path: '/health' }), target(s.port), agent), { result: 'success' })
  // The server drops its idle connection (as a keep-alive timeout does); the next probe does not fail for it.
  t.equal(s.sockets.size, 1)
  const closed = once([...s.sockets][0]!, 'close')
  s.server.closeIdleConnections()
  await closed
  t.same(await runProbe(probeOf({ path: '/health' }), target(s.port), agent), { result: 'success' })
  const closing = await serve(t, (_req, res) => { res.setHeader('connection', 'close'); res.end('ok') })
  for (let i = 0; i < 3; i++) t.same(await runProbe(probeOf({ path: '/health' }), target(closing.port), agent), { result: 'success' }, '`connection: close` answers')
  t.equal(closing.connections, 3, 'one connection per answer that closes it')
})
