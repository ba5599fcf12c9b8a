// The http probe against real servers on loopback: what passes and fails, the timeout at every
// stage of an answer, the request it sends, and the kept-alive connection between probes.
import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { createProbeAgent, runProbe, type ProbeTarget } from '../src/health/probes.js'
import type { HealthCheck } from '../src/config/schema.js'
import type { Tap } from './helper.js'

interface Served { port: number, requests: IncomingMessage[], connections: number }

/** A server on 127.0.0.1 answering every request with `answer`; closed (with its sockets) at teardown. */
async function serve (t: Tap, answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<Served> {
  const served: Served = { port: 0, requests: [], connections: 0 }
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => { served.requests.push(req); answer(req, res) })
  server.on('connection', (s) => { served.connections++; sockets.add(s); s.once('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  served.port = (server.address() as AddressInfo).port
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return served
}

function probeOf (http: NonNullable<HealthCheck['http']>, timeoutMs = 1000): HealthCheck {
  return { http, intervalMs: 1000, timeoutMs, initialDelayMs: 0, failureThreshold: 3, successThreshold: 1 }
}

function target (port: number): ProbeTarget {
  return { port, cwd: process.cwd(), env: {} }
}

function agentFor (t: Tap) {
  const agent = createProbeAgent()
  t.teardown(() => agent.destroy())
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
