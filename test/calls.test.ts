// Call statistics, calls hosts report, the count-window breaker, successThreshold and the
// time-sampled failureRate breaker: real plugin processes, the API through app.inject.
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { build, collectEvents, fixturePlugin, outputLine, waitForEvent, writeConfig } from './helper.js'

const serve = (name: string, extra: Record<string, unknown> = {}) => fixturePlugin(name, 'serve', { port: 'auto', ...extra })
type App = Awaited<ReturnType<typeof build>>

async function started (app: App): Promise<void> {
  const sup = app.daemon.supervisor
  const serving = sup.names().filter((n) => sup.snapshot(n).desired === 'running' && sup.manifest(n).args.includes('serve'))
  const listening = Promise.all(serving.map((n) => outputLine(sup, n, /^listening/)))
  await app.daemon.boot()
  await listening
}
const report = (app: App, name: string, payload: unknown) => app.inject({ method: 'POST', url: `/plugins/${name}/calls`, payload: payload as Record<string, unknown> })
const circuit = async (app: App, name: string) => (await app.inject({ method: 'GET', url: `/plugins/${name}/circuit` })).json()

t.test('statistics count proxied calls: succeeded, failed, rejected, rates, average time, last call, last failure, consecutive failures', async (t) => {
  const app = await build(t, writeConfig([serve('st', { resilience: { retry: { maxAttempts: 0 }, circuitBreaker: { consecutiveFailures: 100 } } })]), { boot: false })
  await started(app)
  const zero = (await app.inject({ method: 'GET', url: '/plugins/st/calls' })).json()
  t.same(zero, { plugin: 'st', total: 0, succeeded: 0, failed: 0, rejected: 0, successRate: 0, errorRate: 0, avgResponseTimeMs: null, lastCallAt: null, lastSuccessAt: null, lastFailure: null, consecutiveFailures: 0 })

  t.equal((await app.inject({ method: 'GET', url: '/plugins/st/invoke/x' })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/plugins/st/invoke/status/404' })).statusCode, 404, 'a 4xx is the plugin answering: a success')
  let s = (await app.inject({ method: 'GET', url: '/plugins/st/calls' })).json()
  t.equal(s.succeeded, 2)
  t.equal(s.consecutiveFailures, 0)
  t.ok(s.lastSuccessAt)
  t.equal(s.lastCallAt, s.lastSuccessAt)
  t.type(s.avgResponseTimeMs, 'number')

  t.equal((await app.inject({ method: 'POST', url: '/plugins/st/invoke/status/503' })).statusCode, 503)
  s = (await app.inject({ method: 'GET', url: '/plugins/st/calls' })).json()
  t.equal(s.failed, 1)
  t.equal(s.consecutiveFailures, 1)
  t.same({ message: s.lastFailure.message, statusCode: s.lastFailure.statusCode }, { message: 'answered 503', statusCode: 503 })

  app.daemon.invoker.isolate('st')
  t.equal((await app.inject({ method: 'GET', url: '/plugins/st/invoke/x' })).statusCode, 503)
  app.daemon.invoker.reset('st')
  s = (await app.inject({ method: 'GET', url: '/plugins/st/calls' })).json()
  t.equal(s.rejected, 1, 'a call refused by the open circuit is rejected')
  t.equal(s.total, 4)
  t.equal(s.consecutiveFailures, 2)
  t.equal(s.successRate, 0.5)
  t.equal(s.errorRate, 0.5)
  t.equal(s.lastFailure.statusCode, null)
  t.match(s.lastFailure.message, /circuit/)

  const detail = (await app.inject({ method: 'GET', url: '/plugins/st' })).json()
  t.same(detail.calls, s, 'the plugin detail carries the same statistics')

  // A restart of the process keeps them; a changed manifest starts them at zero.
  await app.daemon.supervisor.restart('st')
  t.equal((await app.inject({ method: 'GET', url: '/plugins/st/calls' })).json().total, 4, 'a restart keeps the statistics')
})

t.test('avgResponseTimeMs is a moving average in which the newest call weighs 0.2', async (t) => {
  const app = await build(t, writeConfig([serve('avg')]), { boot: false })
  await started(app)
  await report(app, 'avg', { calls: [{ success: true, durationMs: 100 }, { success: true, durationMs: 200 }] })
  t.equal((await app.inject({ method: 'GET', url: '/plugins/avg/calls' })).json().avgResponseTimeMs, 120)
})

t.test('reported calls: single and batch count like proxied calls, in statistics and metrics; bad bodies are 400 naming the field; unknown plugins 404', async (t) => {
  const app = await build(t, writeConfig([serve('host')]), { boot: false })
  await started(app)
  const one = await report(app, 'host', { success: false, durationMs: 12, error: 'rpc refused' })
  t.equal(one.statusCode, 200)
  t.same({ failed: one.json().failed, message: one.json().lastFailure.message }, { failed: 1, message: 'rpc refused' })
  const batch = await report(app, 'host', { calls: Array.from({ length: 1000 }, (_, i) => ({ success: i % 4 !== 0, durationMs: 5 })) })
  t.equal(batch.statusCode, 200)
  t.same({ total: batch.json().total, succeeded: batch.json().succeeded, failed: batch.json().failed }, { total: 1001, succeeded: 750, failed: 251 })
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(metrics, /plugvisor_invocations_total\{plugin="host",outcome="success"\} 750/)
  t.match(metrics, /plugvisor_invocations_total\{plugin="host",outcome="error"\} 251/)

  const tooMany = await report(app, 'host', { calls: Array.from({ length: 1001 }, () => ({ success: true, durationMs: 1 })) })
  t.equal(tooMany.statusCode, 400)
  t.equal(tooMany.json().code, 'PLUGVISOR_VALIDATION')
  const bad = await report(app, 'host', { success: true, durationMs: -1 })
  t.equal(bad.statusCode, 400)
  t.match(bad.json().message, /durationMs/)
  const missing = await report(app, 'host', { durationMs: 3 })
  t.equal(missing.statusCode, 400)
  t.match(missing.json().message, /success/)
  const unknown = await report(app, 'nope', { success: true, durationMs: 1 })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().code, 'PLUGVISOR_PLUGIN_NOT_FOUND')
})

t.test('count window: opens once minimumCalls are in the window and the failed share reaches failureRate; allowsCalls says so; proxied calls are refused', async (t) => {
  const app = await build(t, writeConfig([serve('cnt', { resilience: { retry: { maxAttempts: 0 }, circuitBreaker: { failureRate: 0.5, windowSize: 6, minimumCalls: 4, halfOpenAfterMs: 60000 } } })]), { boot: false })
  await started(app)
  let c = await circuit(app, 'cnt')
  t.same({ breaker: c.breaker, windowSize: c.windowSize, minimumCalls: c.minimumCalls, failureRate: c.failureRate, allowsCalls: c.allowsCalls }, { breaker: 'count', windowSize: 6, minimumCalls: 4, failureRate: 0.5, allowsCalls: true })
  await report(app, 'cnt', { calls: [{ success: false, durationMs: 1 }, { success: false, durationMs: 1 }, { success: true, durationMs: 1 }] })
  c = await circuit(app, 'cnt')
  t.equal(c.state, 'closed', 'two of three failed, but fewer than minimumCalls are in the window')
  t.equal(c.failures, 2)
  await report(app, 'cnt', { success: true, durationMs: 1 })
  t.equal((await circuit(app, 'cnt')).state, 'closed', 'the share is 2 of 4, but reached only on a failure')
  await report(app, 'cnt', { success: false, durationMs: 1 })
  c = await circuit(app, 'cnt')
  t.equal(c.state, 'open', '3 of 5 failed')
  t.equal(c.allowsCalls, false)
  t.equal((await app.inject({ method: 'GET', url: '/plugins/cnt/invoke/x' })).json().code, 'PLUGVISOR_CIRCUIT_OPEN')
})

t.test('a count window fed by proxied calls opens too', async (t) => {
  const app = await build(t, writeConfig([serve('cntp', { resilience: { retry: { maxAttempts: 0 }, circuitBreaker: { windowSize: 2, halfOpenAfterMs: 60000 } } })]), { boot: false })
  await started(app)
  const opened = waitForEvent(app.daemon.invoker, 'circuit', (e) => e.plugin === 'cntp' && e.to === 'open')
  await app.inject({ method: 'GET', url: '/plugins/cntp/invoke/x' })
  await app.inject({ method: 'POST', url: '/plugins/cntp/invoke/status/500' })
  t.match((await opened).reason, /failure rate of 0.5 reached over the last 2 calls/)
})

t.test('successThreshold: a half-open circuit closes after that many successful trials in a row; a failure among them opens it again', async (t) => {
  const app = await build(t, writeConfig([serve('ht', { resilience: { retry: { maxAttempts: 0 }, circuitBreaker: { consecutiveFailures: 1, halfOpenAfterMs: 300, successThreshold: 3 } } })]), { boot: false })
  await started(app)
  const inv = app.daemon.invoker
  const openAndWait = async (): Promise<void> => {
    const halfOpen = waitForEvent(inv, 'circuit', (e) => e.plugin === 'ht' && e.to === 'half-open')
    await report(app, 'ht', { success: false, durationMs: 1 })
    t.equal((await circuit(app, 'ht')).state, 'open')
    await halfOpen
  }
  await openAndWait()
  t.equal((await app.inject({ method: 'GET', url: '/plugins/ht/invoke/x' })).statusCode, 200, 'first trial')
  let c = await circuit(app, 'ht')
  t.same({ state: c.state, trialSuccesses: c.trialSuccesses, successThreshold: c.successThreshold }, { state: 'half-open', trialSuccesses: 1, successThreshold: 3 })
  await report(app, 'ht', { success: true, durationMs: 1 })
  t.equal((await circuit(app, 'ht')).state, 'half-open', 'two of three')
  const opened = waitForEvent(inv, 'circuit', (e) => e.plugin === 'ht' && e.to === 'open')
  await report(app, 'ht', { success: false, durationMs: 1 })
  t.match((await opened).reason, /trial call failed/)

  await waitForEvent(inv, 'circuit', (e) => e.plugin === 'ht' && e.to === 'half-open')
  const closed = waitForEvent(inv, 'circuit', (e) => e.plugin === 'ht' && e.to === 'closed')
  await report(app, 'ht', { calls: [{ success: true, durationMs: 1 }, { success: true, durationMs: 1 }, { success: true, durationMs: 1 }] })
  t.match((await closed).reason, /3 trial calls succeeded in a row/)
  c = await circuit(app, 'ht')
  t.same({ state: c.state, allowsCalls: c.allowsCalls }, { state: 'closed', allowsCalls: true })
})

t.test('the time-sampled failureRate breaker opens once enough calls in windowMs fail at the rate, not before', async (t) => {
  // minimumRps 0.5 over 10 s: at least 5 calls in the window before the rate counts.
  const app = await build(t, writeConfig([serve('smp', { resilience: { retry: { maxAttempts: 0 }, circuitBreaker: { failureRate: 0.5, windowMs: 10000, minimumRps: 0.5, halfOpenAfterMs: 60000 } } })]), { boot: false })
  await started(app)
  t.equal((await circuit(app, 'smp')).breaker, 'sampling')
  for (let i = 0; i < 4; i++) await app.inject({ method: 'POST', url: '/plugins/smp/invoke/status/500' })
  t.equal((await circuit(app, 'smp')).state, 'closed', 'four failures are fewer calls than minimumRps asks for')
  const opened = waitForEvent(app.daemon.invoker, 'circuit', (e) => e.plugin === 'smp' && e.to === 'open')
  await app.inject({ method: 'POST', url: '/plugins/smp/invoke/status/500' })
  t.match((await opened).reason, /failure rate over 0.5 within 10000 ms/)
})

t.test('a changed manifest starts the statistics at zero', async (t) => {
  const loaded = writeConfig([serve('ch')])
  const app = await build(t, loaded, { boot: false })
  await started(app)
  await report(app, 'ch', { success: true, durationMs: 3 })
  t.equal((await app.inject({ method: 'GET', url: '/plugins/ch/calls' })).json().total, 1)
  const config = JSON.parse(readFileSync(loaded.file, 'utf8'))
  config.plugins[0].env = { VERSION: '2' }
  writeFileSync(loaded.file, JSON.stringify(config))
  const res = await app.inject({ method: 'POST', url: '/config/reload' })
  t.same(res.json().changed, ['ch'], res.body)
  t.equal((await app.inject({ method: 'GET', url: '/plugins/ch/calls' })).json().total, 0)
})

t.test('a batch is recorded exactly as the same calls reported one by one: statistics, breaker (opening within the batch, the rest refused by it but counted), metrics', async (t) => {
  // Two plugins alike but for their names: one gets the batch, the other the same calls one at a time.
  const resilience = (circuitBreaker: Record<string, unknown>) => ({ resilience: { retry: { maxAttempts: 0 }, circuitBreaker: { halfOpenAfterMs: 60000, ...circuitBreaker } } })
  const breakers = { count: { failureRate: 0.5, windowSize: 10, minimumCalls: 6 }, consecutive: { consecutiveFailures: 3 }, sampling: { failureRate: 0.5, windowMs: 10000, minimumRps: 0.5 } }
  const app = await build(t, writeConfig(Object.entries(breakers).flatMap(([kind, cb]) => [serve(`${kind}-batch`, resilience(cb)), serve(`${kind}-single`, resilience(cb))])), { boot: false })
  // Successes and failures (with and without an error text) that open every breaker kind part-way.
  const calls = Array.from({ length: 40 }, (_, i) => {
    const success = i < 6 ? i % 2 === 0 : i < 12 ? i % 4 === 0 : i % 5 !== 0
    return { success, durationMs: (i * 7) % 13 + 0.25, ...(success || i % 3 === 0 ? {} : { error: `failure ${i}` }) }
  })
  const opened = collectEvents(t, app.daemon.invoker, 'circuit')
  for (const kind of Object.keys(breakers)) {
    t.equal((await report(app, `${kind}-batch`, { calls })).statusCode, 200)
    for (const c of calls) t.equal((await report(app, `${kind}-single`, c)).statusCode, 200)
  }
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  for (const kind of Object.keys(breakers)) {
    const of = async (name: string) => {
      const s = (await app.inject({ method: 'GET', url: `/plugins/${name}/calls` })).json()
      const c = await circuit(app, name)
      return {
        stats: { ...s, plugin: undefined, lastCallAt: undefined, lastSuccessAt: undefined, lastFailure: { ...s.lastFailure, at: undefined } },
        circuit: { ...c, plugin: undefined, openedAt: undefined, halfOpenAt: undefined },
        events: opened.filter((e) => e.plugin === name).map((e) => ({ from: e.from, to: e.to, reason: e.reason })),
        series: metrics.split('\n').filter((l) => l.includes(`plugin="${name}"`) && /^plugvisor_invocation/.test(l)).map((l) => l.replace(name, 'x'))
      }
    }
    const batch = await of(`${kind}-batch`)
    const single = await of(`${kind}-single`)
    t.equal(batch.circuit.state, 'open', `${kind}: the calls open the circuit`)
    t.ok(batch.events.length > 0, `${kind}: the opening is published`)
    t.equal(batch.stats.total, calls.length, `${kind}: every call is counted, also those after the opening`)
    t.ok(batch.series.length > 0, `${kind}: metrics of the calls`)
    t.same(batch, single, `${kind}: the batch is recorded as the calls one by one`)
  }
})
