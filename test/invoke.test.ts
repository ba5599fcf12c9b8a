import t from 'tap'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { Agent, request } from 'undici'
import { build, fixturePlugin, outputLine, tempDir, waitForEvent, writeConfig } from './helper.js'

const serve = (name: string, extra: Record<string, unknown> = {}) => fixturePlugin(name, 'serve', { port: 'auto', ...extra })

/** Boots, then waits until every plugin started with `serve` listens (its "listening" line). */
async function started (app: Awaited<ReturnType<typeof build>>): Promise<void> {
  const sup = app.daemon.supervisor
  const serving = sup.names().filter((n) => sup.snapshot(n).desired === 'running' && sup.manifest(n).args.includes('serve'))
  const listening = Promise.all(serving.map((n) => outputLine(sup, n, /^listening/)))
  await app.daemon.boot()
  await listening
}

t.test('method, path, query, headers and body go to the plugin; its status, headers and body come back', async (t) => {
  const app = await build(t, writeConfig([serve('echo')]), { boot: false })
  await started(app)
  const res = await app.inject({
    method: 'POST',
    url: '/plugins/echo/invoke/some/path?x=1&y=a%20b',
    headers: { 'content-type': 'application/octet-stream', 'x-custom': 'yes', connection: 'keep-alive, x-hop', 'x-hop': 'gone', 'x-forwarded-for': '10.0.0.1' },
    payload: Buffer.from('hello body')
  })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-plugin'], 'echo', 'response headers of the plugin come back')
  const seen = res.json()
  t.equal(seen.method, 'POST')
  t.equal(seen.url, '/some/path?x=1&y=a%20b')
  t.equal(seen.body, 'hello body')
  t.equal(seen.headers['x-custom'], 'yes')
  t.equal(seen.headers['content-type'], 'application/octet-stream')
  t.notOk('x-hop' in seen.headers, 'a header named by Connection is hop-by-hop')
  t.equal(seen.headers['x-forwarded-for'], '10.0.0.1, 127.0.0.1')
  t.equal(seen.headers['x-request-id'], res.headers['x-request-id'])

  const put = await app.inject({ method: 'PUT', url: '/plugins/echo/invoke', headers: { 'content-type': 'application/json' }, payload: '{"a":1}' })
  t.equal(put.statusCode, 200)
  t.same({ method: put.json().method, url: put.json().url, body: put.json().body }, { method: 'PUT', url: '/', body: '{"a":1}' }, 'a replayable (buffered) body arrives too')

  const status = await app.inject({ method: 'GET', url: '/plugins/echo/invoke/status/404' })
  t.equal(status.statusCode, 404, 'the plugin\'s status passes as it is')
  t.equal(status.body, 'status 404')
  const plain = await app.inject({ method: 'GET', url: '/plugins/echo/invoke/plain' })
  t.equal(plain.body, 'plain')
  t.equal(plain.headers['content-type'], undefined, 'an answer without a content-type gets none on the way')
  const head = await app.inject({ method: 'HEAD', url: '/plugins/echo/invoke/x' })
  t.equal(head.statusCode, 200)
  t.equal(head.body, '')
})

t.test('an unknown plugin is 404; a plugin that is not running or has no port is a fast 503', async (t) => {
  const app = await build(t, writeConfig([serve('down', { autostart: false }), fixturePlugin('portless', 'sleep')]), { boot: false })
  await started(app)
  const unknown = await app.inject({ method: 'GET', url: '/plugins/nope/invoke/x' })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().code, 'PLUGVISOR_PLUGIN_NOT_FOUND')
  const down = await app.inject({ method: 'GET', url: '/plugins/down/invoke/x' })
  t.equal(down.statusCode, 503)
  t.equal(down.json().code, 'PLUGVISOR_PLUGIN_UNAVAILABLE')
  t.match(down.json().message, /stopped/)
  const portless = await app.inject({ method: 'GET', url: '/plugins/portless/invoke/x' })
  t.equal(portless.statusCode, 503)
  t.match(portless.json().message, /no port/)
})

t.test('a call past resilience.timeoutMs is 504 PLUGVISOR_PLUGIN_TIMEOUT', async (t) => {
  const app = await build(t, writeConfig([serve('slow', { resilience: { timeoutMs: 100 } })]), { boot: false })
  await started(app)
  const res = await app.inject({ method: 'GET', url: '/plugins/slow/invoke/slow?ms=3000' })
  t.equal(res.statusCode, 504)
  t.equal(res.json().code, 'PLUGVISOR_PLUGIN_TIMEOUT')
  t.match(res.json().message, /100 ms/)
})

t.test('GET is retried after a 5xx, POST is not', async (t) => {
  const app = await build(t, writeConfig([serve('flaky', { resilience: { retry: { maxAttempts: 2, initialDelayMs: 1 } } })]), { boot: false })
  await started(app)
  const get = await app.inject({ method: 'GET', url: '/plugins/flaky/invoke/flaky?key=g&fails=2' })
  t.equal(get.statusCode, 200, 'two failures, then the third attempt answers')
  t.equal(get.json().calls, 3)
  const post = await app.inject({ method: 'POST', url: '/plugins/flaky/invoke/flaky?key=p&fails=1' })
  t.equal(post.statusCode, 500, 'the plugin\'s 500 passes through')
  const calls = await app.inject({ method: 'GET', url: '/plugins/flaky/invoke/calls?key=p' })
  t.equal(calls.json().calls, 1, 'POST went once')
  const exhausted = await app.inject({ method: 'GET', url: '/plugins/flaky/invoke/flaky?key=e&fails=5' })
  t.equal(exhausted.statusCode, 500, 'after maxAttempts retries the last answer passes')
  t.equal((await app.inject({ method: 'GET', url: '/plugins/flaky/invoke/calls?key=e' })).json().calls, 3)
})

t.test('the breaker opens after consecutiveFailures, makes the plugin degraded, goes half-open and closes on a success', async (t) => {
  const app = await build(t, writeConfig([serve('brk', {
    healthCheck: { http: {}, intervalMs: 20, initialDelayMs: 0, failureThreshold: 1000 },
    resilience: { retry: { maxAttempts: 0 }, circuitBreaker: { consecutiveFailures: 2, halfOpenAfterMs: 2000 } }
  })]), { boot: false })
  const sup = app.daemon.supervisor
  const healthy = waitForEvent(sup, 'health', (e) => e.plugin === 'brk' && e.to === 'healthy')
  await started(app)
  await healthy
  t.equal(sup.summary('brk').circuit, 'closed')
  const opened = waitForEvent(app.daemon.invoker, 'circuit', (e) => e.plugin === 'brk' && e.to === 'open')
  const degraded = waitForEvent(sup, 'health', (e) => e.plugin === 'brk' && e.to === 'degraded')
  const halfOpen = waitForEvent(app.daemon.invoker, 'circuit', (e) => e.plugin === 'brk' && e.to === 'half-open')
  t.equal((await app.inject({ method: 'POST', url: '/plugins/brk/invoke/status/500' })).statusCode, 500)
  t.equal((await app.inject({ method: 'POST', url: '/plugins/brk/invoke/status/502' })).statusCode, 502)
  const ev = await opened
  t.equal(ev.from, 'closed')
  t.match(ev.reason, /2 consecutive failures/)
  await degraded
  const refused = await app.inject({ method: 'GET', url: '/plugins/brk/invoke/x' })
  t.equal(refused.statusCode, 503)
  t.equal(refused.json().code, 'PLUGVISOR_CIRCUIT_OPEN')
  const summary = (await app.inject({ method: 'GET', url: '/plugins/brk' })).json()
  t.equal(summary.circuit, 'open')
  t.equal(summary.health, 'degraded')
  t.equal(summary.state, 'running', 'an open circuit does not restart the plugin')
  // Passing probes go on while the circuit is open: they must not lift degraded.
  let probes = 0
  await waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'brk' && e.result === 'success' && ++probes >= 3)
  t.equal(sup.health('brk'), 'degraded', 'passing probes do not overwrite degraded while the circuit is open')
  const circuit = (await app.inject({ method: 'GET', url: '/plugins/brk/circuit' })).json()
  t.equal(circuit.state, 'open')
  t.equal(circuit.failures, 2)
  t.equal(circuit.consecutiveFailures, 2)
  t.equal(circuit.halfOpenAfterMs, 2000)
  t.ok(circuit.openedAt)
  t.equal(circuit.lastFailure, 'answered 502')

  await halfOpen
  t.equal(sup.summary('brk').circuit, 'half-open')
  const closed = waitForEvent(app.daemon.invoker, 'circuit', (e) => e.plugin === 'brk' && e.to === 'closed')
  const back = waitForEvent(sup, 'health', (e) => e.plugin === 'brk' && e.to === 'healthy')
  const trial = await app.inject({ method: 'GET', url: '/plugins/brk/invoke/x' })
  t.equal(trial.statusCode, 200, 'the trial call goes through')
  t.equal((await closed).from, 'half-open')
  await back
  t.equal(sup.summary('brk').circuit, 'closed')
  t.equal(sup.health('brk'), 'healthy', 'health is the probes\' verdict again')
})

t.test('a failed trial call opens the circuit again', async (t) => {
  const app = await build(t, writeConfig([serve('again', { resilience: { retry: { maxAttempts: 0 }, circuitBreaker: { consecutiveFailures: 1, halfOpenAfterMs: 100 } } })]), { boot: false })
  const sup = app.daemon.supervisor
  await started(app)
  const opened = waitForEvent(app.daemon.invoker, 'circuit', (e) => e.to === 'open')
  await app.inject({ method: 'GET', url: '/plugins/again/invoke/status/500' })
  await opened
  await waitForEvent(app.daemon.invoker, 'circuit', (e) => e.to === 'half-open')
  const reopened = waitForEvent(app.daemon.invoker, 'circuit', (e) => e.to === 'open')
  t.equal((await app.inject({ method: 'GET', url: '/plugins/again/invoke/status/503' })).statusCode, 503)
  const ev = await reopened
  t.equal(ev.from, 'half-open')
  t.match(ev.reason, /trial call failed/)
  t.equal(sup.health('again'), 'degraded')
})

t.test('a full bulkhead is 503', async (t) => {
  const app = await build(t, writeConfig([serve('narrow', { resilience: { bulkhead: { maxConcurrent: 1, maxQueued: 0 } } })]), { boot: false })
  await started(app)
  const held = app.inject({ method: 'GET', url: '/plugins/narrow/invoke/hold' })
  // Bounded wait for the first call to take the slot (it has to reach the plugin first).
  for (let i = 0; i < 10000 && app.daemon.invoker.circuit('narrow').inFlight === 0; i++) await new Promise((resolve) => setImmediate(resolve))
  t.equal(app.daemon.invoker.circuit('narrow').inFlight, 1)
  const rejected = await app.inject({ method: 'GET', url: '/plugins/narrow/invoke/x' })
  t.equal(rejected.statusCode, 503)
  t.equal(rejected.json().code, 'PLUGVISOR_PLUGIN_UNAVAILABLE')
  t.match(rejected.json().message, /bulkhead full/)
  const port = app.daemon.supervisor.summary('narrow').port
  const release = await request(`http://127.0.0.1:${port}/release`)
  await release.body.dump()
  const first = await held
  t.equal(first.statusCode, 200)
  t.equal(first.body, 'released')
  t.equal(app.daemon.invoker.circuit('narrow').inFlight, 0, 'the slot is free once the body is done')
  t.equal((await app.inject({ method: 'GET', url: '/plugins/narrow/invoke/x' })).statusCode, 200)
})

t.test('fallback { status, body } answers when the plugin cannot', async (t) => {
  const app = await build(t, writeConfig([
    serve('fb-status', { autostart: false, resilience: { fallback: { status: 202, body: { cached: true } } } }),
    serve('fb-5xx', { resilience: { retry: { maxAttempts: 0 }, fallback: { status: 200, body: 'fine' } } })
  ]), { boot: false })
  await started(app)
  const res = await app.inject({ method: 'GET', url: '/plugins/fb-status/invoke/x' })
  t.equal(res.statusCode, 202)
  t.same(res.json(), { cached: true })
  t.equal(res.headers['x-plugvisor-fallback'], 'status')
  const fiveXX = await app.inject({ method: 'POST', url: '/plugins/fb-5xx/invoke/status/500' })
  t.equal(fiveXX.statusCode, 200, 'a 5xx answer is a failure the fallback covers')
  t.equal(fiveXX.json(), 'fine')
  const ok = await app.inject({ method: 'GET', url: '/plugins/fb-5xx/invoke/x' })
  t.equal(ok.headers['x-plugvisor-fallback'], undefined, 'no fallback when the call succeeds')
})

t.test('fallback { plugin } forwards once to the other plugin, without loops', async (t) => {
  const app = await build(t, writeConfig([
    serve('primary', { autostart: false, resilience: { fallback: { plugin: 'backup' } } }),
    serve('backup', { resilience: { fallback: { plugin: 'primary' } } }),
    serve('ping', { autostart: false, resilience: { fallback: { plugin: 'pong' } } }),
    serve('pong', { autostart: false, resilience: { fallback: { plugin: 'ping' } } })
  ]), { boot: false })
  await started(app)
  const res = await app.inject({ method: 'POST', url: '/plugins/primary/invoke/a/b?q=1', payload: 'data', headers: { 'content-type': 'text/plain' } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-plugvisor-fallback'], 'backup')
  const seen = res.json()
  t.equal(seen.plugin, 'backup')
  t.equal(seen.url, '/a/b?q=1')
  t.equal(seen.body, 'data', 'the body reaches the fallback plugin')
  const loop = await app.inject({ method: 'GET', url: '/plugins/ping/invoke/x' })
  t.equal(loop.statusCode, 503, 'two plugins that fall back on each other, both down: one hop, then the first one\'s error')
  t.equal(loop.json().code, 'PLUGVISOR_PLUGIN_UNAVAILABLE')
  t.match(loop.json().message, /'ping'/)
})

t.test('isolate holds the circuit open until reset', async (t) => {
  const app = await build(t, writeConfig([serve('iso')]), { boot: false })
  const sup = app.daemon.supervisor
  await started(app)
  const iso = await app.inject({ method: 'POST', url: '/plugins/iso/circuit/isolate' })
  t.equal(iso.statusCode, 200)
  t.equal(iso.json().state, 'isolated')
  t.equal(sup.health('iso'), 'degraded')
  const refused = await app.inject({ method: 'GET', url: '/plugins/iso/invoke/x' })
  t.equal(refused.statusCode, 503)
  t.equal(refused.json().code, 'PLUGVISOR_CIRCUIT_OPEN')
  t.equal((await app.inject({ method: 'GET', url: '/plugins/iso/circuit' })).json().state, 'isolated')
  const reset = await app.inject({ method: 'POST', url: '/plugins/iso/circuit/reset' })
  t.equal(reset.json().state, 'closed')
  t.equal(sup.health('iso'), 'healthy')
  t.equal((await app.inject({ method: 'GET', url: '/plugins/iso/invoke/x' })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/plugins/nope/circuit/reset' })).statusCode, 404)
})

t.test('reset closes an open circuit and forgets its failures', async (t) => {
  const app = await build(t, writeConfig([serve('rst', { resilience: { retry: { maxAttempts: 0 }, circuitBreaker: { consecutiveFailures: 2, halfOpenAfterMs: 600000 } } })]), { boot: false })
  const sup = app.daemon.supervisor
  await started(app)
  const opened = waitForEvent(app.daemon.invoker, 'circuit', (e) => e.to === 'open')
  for (let i = 0; i < 2; i++) await app.inject({ method: 'GET', url: '/plugins/rst/invoke/status/500' })
  await opened
  const closed = waitForEvent(app.daemon.invoker, 'circuit', (e) => e.to === 'closed')
  t.equal((await app.inject({ method: 'POST', url: '/plugins/rst/circuit/reset' })).json().failures, 0)
  t.match((await closed).reason, /reset by an operator/)
  await app.inject({ method: 'GET', url: '/plugins/rst/invoke/status/500' })
  t.equal(sup.circuit('rst'), 'closed', 'one failure after a reset does not open it again')
})

t.test('metrics: invocations by outcome, duration, circuit state set; GET /events sends circuit events', async (t) => {
  const app = await build(t, writeConfig([serve('m', { resilience: { retry: { maxAttempts: 0 } } }), serve('off', { autostart: false })]), { boot: false })
  await started(app)
  const chunks: string[] = []
  app.daemon.events.subscribe({ write: (c) => { chunks.push(c); return true }, once: () => {}, end: () => {}, destroy: () => {} })
  await app.inject({ method: 'GET', url: '/plugins/m/invoke/x' })
  await app.inject({ method: 'GET', url: '/plugins/m/invoke/status/500' })
  await app.inject({ method: 'GET', url: '/plugins/off/invoke/x' })
  await app.inject({ method: 'POST', url: '/plugins/m/circuit/isolate' })
  await app.inject({ method: 'GET', url: '/plugins/m/invoke/x' })
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(text, /plugvisor_invocations_total\{plugin="m",outcome="success"\} 1\n/)
  t.match(text, /plugvisor_invocations_total\{plugin="m",outcome="error"\} 1\n/)
  t.match(text, /plugvisor_invocations_total\{plugin="m",outcome="circuit_open"\} 1\n/)
  t.match(text, /plugvisor_invocations_total\{plugin="off",outcome="unavailable"\} 1\n/)
  t.match(text, /plugvisor_invocations_total\{plugin="off",outcome="timeout"\} 0\n/)
  t.match(text, /plugvisor_invocation_duration_seconds_count\{plugin="m"\} 3\n/)
  t.match(text, /plugvisor_circuit_state\{plugin="m",state="isolated"\} 1\n/)
  t.match(text, /plugvisor_circuit_state\{plugin="m",state="closed"\} 0\n/)
  t.match(text, /plugvisor_circuit_state\{plugin="off",state="closed"\} 1\n/)
  const sse = chunks.find((c) => c.startsWith('event: circuit'))
  t.ok(sse, 'a circuit event was sent')
  t.match(JSON.parse(sse!.split('data: ')[1]), { plugin: 'm', from: 'closed', to: 'isolated', reason: /operator/ })
})

// A plugin whose server closes each kept-alive connection as the next request on it arrives,
// unanswered (its keep-alive timeout firing just as the daemon reuses the connection, driven
// deterministically), and lists the requests it received at GET /seen.
const CLOSES_KEPT = `import { createServer } from 'node:net'
const seen = []
createServer((sock) => {
  let served = 0
  let buf = Buffer.alloc(0)
  sock.on('error', () => {})
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d])
    for (;;) {
      const end = buf.indexOf('\\r\\n\\r\\n')
      if (end === -1) return
      const head = buf.toString('latin1', 0, end)
      const length = Number(/\\r\\ncontent-length: (\\d+)/i.exec(head)?.[1] ?? 0)
      if (buf.length < end + 4 + length) return
      const line = head.slice(0, head.indexOf(' HTTP/'))
      buf = buf.subarray(end + 4 + length)
      if (!line.endsWith(' /seen')) seen.push((served > 0 ? 'dropped ' : '') + line)
      if (served++ > 0) { sock.resetAndDestroy(); return }
      const body = line === 'GET /seen' ? JSON.stringify(seen) : 'ok'
      sock.write('HTTP/1.1 200 OK\\r\\ncontent-length: ' + body.length + '\\r\\nkeep-alive: timeout=5\\r\\n\\r\\n' + body)
    }
  })
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'))
`

t.test('a plugin that closes a kept connection as the next call arrives: an idempotent call is answered, any other is a 503 and reaches the plugin once; the client\'s connection is never dropped', async (t) => {
  const dir = tempDir()
  const file = path.join(dir, 'closes-kept.mjs')
  writeFileSync(file, CLOSES_KEPT)
  const app = await build(t, writeConfig([{ name: 'ck', command: process.execPath, args: [file], port: 'auto', stop: { timeoutMs: 2000 }, resilience: { retry: { maxAttempts: 0 } } }], {}, dir), { boot: false })
  const listening = outputLine(app.daemon.supervisor, 'ck', /^listening/)
  await app.daemon.boot()
  await listening
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  let connections = 0
  app.server.on('connection', () => { connections++ })
  // One kept connection to the daemon for every call: a dropped one fails the request here.
  const agent = new Agent({ connections: 1, pipelining: 1 })
  t.teardown(() => agent.close())
  const call = async (method: string, p: string, body?: string): Promise<{ status: number, text: string }> => {
    const res = await request(`${base}/plugins/ck/invoke${p}`, { method, body, dispatcher: agent })
    return { status: res.statusCode, text: await res.body.text() }
  }
  t.same(await call('GET', '/a'), { status: 200, text: 'ok' }, 'the first call keeps its connection to the plugin')
  t.same(await call('GET', '/b'), { status: 200, text: 'ok' }, 'a GET on the connection the plugin closes goes again on a new one (not a retry of the policy: maxAttempts is 0)')
  t.same(await call('PUT', '/c', 'put'), { status: 200, text: 'ok' }, 'so does a PUT')
  for (const [method, p, body] of [['POST', '/d', 'once'], ['POST', '/e', undefined], ['PATCH', '/f', 'once']] as const) {
    const a = await call(method, p, body)
    t.equal(a.status, 503, `${method} ${p}: 503`)
    t.equal(JSON.parse(a.text).code, 'PLUGVISOR_PLUGIN_UNAVAILABLE')
    t.same(await call('GET', '/g'), { status: 200, text: 'ok' }, 'the next call on a new connection')
  }
  t.same(JSON.parse((await call('GET', '/seen')).text), [
    'GET /a', 'dropped GET /b', 'GET /b', 'dropped PUT /c', 'PUT /c',
    'dropped POST /d', 'GET /g', 'dropped POST /e', 'GET /g', 'dropped PATCH /f', 'GET /g'
  ], 'the plugin received each POST and PATCH once, and the GET and PUT it dropped once more')
  t.equal(connections, 1, 'every call went over the one connection to the daemon')
})
