import t from 'tap'
import { EventEmitter } from 'node:events'
import { readdirSync } from 'node:fs'
import { Counter, Histogram, Registry } from 'prom-client'
import { build, fixturePlugin, writeConfig } from './helper.js'
import { parseMetrics, valueOf } from './metrics-text.js'
import { createPluginMetrics, type MeteredSupervisor } from '../src/metrics/plugin-metrics.js'
import type { HealthMonitorEvents } from '../src/health/health-monitor.js'
import type { SupervisorEvents } from '../src/supervisor/supervisor.js'
import type { PluginGauges, PluginSummary, RestartEvent } from '../src/supervisor/events.js'
import type { Supervisor } from '../src/supervisor/supervisor.js'

const PLUGIN_FAMILIES: Record<string, string> = {
  plugvisor_plugin_up: 'gauge',
  plugvisor_plugin_state: 'gauge',
  plugvisor_plugin_health: 'gauge',
  plugvisor_plugin_restarts_total: 'counter',
  plugvisor_plugin_health_checks_total: 'counter',
  plugvisor_plugin_health_check_duration_seconds: 'histogram',
  plugvisor_plugin_uptime_seconds: 'gauge',
  plugvisor_plugin_resident_memory_bytes: 'gauge',
  plugvisor_plugin_cpu_seconds_total: 'counter'
}

/** Resolves at the first `restart` of `plugin` with `reason`. */
function restartOf (supervisor: Supervisor, plugin: string, reason: RestartEvent['reason']): Promise<void> {
  return new Promise((resolve) => {
    const on = (e: RestartEvent): void => {
      if (e.plugin === plugin && e.reason === reason) { supervisor.off('restart', on); resolve() }
    }
    supervisor.on('restart', on)
  })
}

t.test('after start, crash, unhealthy, memory and manual restarts every family has its series and labels', async (t) => {
  const noProbe = { healthCheck: { exec: { command: process.execPath, args: ['-e', ''] }, initialDelayMs: 600000, intervalMs: 600000 } }
  const loaded = writeConfig([
    fixturePlugin('steady', 'sleep'),
    // Crashes twice: one automatic restart is allowed, the second crash leaves it failed.
    fixturePlugin('crashy', 'crash-after', { args: ['20'], restart: { maxRestarts: 1 } }),
    fixturePlugin('probed', 'sleep', noProbe),
    fixturePlugin('hungry', 'grow-memory', { args: ['128'], limits: { maxMemoryMb: 96 } })
  ], { resources: { sampleIntervalMs: 20 } })
  const app = await build(t, loaded, { boot: false })
  const { supervisor } = app.daemon
  const crashed = restartOf(supervisor, 'crashy', 'crash')
  const memory = restartOf(supervisor, 'hungry', 'memory')
  const failed = supervisor.waitFor('crashy', (s) => s.state === 'failed', 20000)
  await app.daemon.boot()
  await Promise.all([crashed, memory, failed])

  const unhealthy = restartOf(supervisor, 'probed', 'unhealthy')
  supervisor.setHealth('probed', 'unhealthy', 'test')
  await unhealthy
  await app.inject({ method: 'POST', url: '/plugins/steady/restart' })
  app.daemon.healthMonitor.emit('probe', { plugin: 'probed', probe: 'exec', phase: 'regular', result: 'failure', durationMs: 12, at: Date.now() })
  await app.inject({ method: 'GET', url: '/plugins/steady' })
  await app.inject({ method: 'GET', url: '/no/such/route?secret=1' })

  // steady's new process may not have met the interval yet: take a sample now.
  app.daemon.resources.sample()
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const { series, types } = parseMetrics(res.body)

  for (const [family, type] of Object.entries(PLUGIN_FAMILIES)) {
    t.equal(types.get(family), type, `${family} is a ${type}`)
    const own = series.filter((s) => s.name === family || s.name.startsWith(`${family}_`))
    t.ok(own.length > 0, `${family} has series`)
    t.ok(own.every((s) => typeof s.labels.plugin === 'string'), `every ${family} series has a plugin label`)
  }
  for (const plugin of ['steady', 'crashy', 'probed', 'hungry']) {
    t.equal(series.filter((s) => s.name === 'plugvisor_plugin_state' && s.labels.plugin === plugin).length, 6, `${plugin}: one state series per state`)
    t.equal(series.filter((s) => s.name === 'plugvisor_plugin_state' && s.labels.plugin === plugin && s.value === 1).length, 1, `${plugin}: exactly one current state`)
    t.equal(series.filter((s) => s.name === 'plugvisor_plugin_health' && s.labels.plugin === plugin).length, 4, `${plugin}: one health series per verdict`)
    for (const reason of ['crash', 'unhealthy', 'memory', 'manual']) {
      t.type(valueOf(series, 'plugvisor_plugin_restarts_total', { plugin, reason }), 'number', `${plugin} has restarts{reason=${reason}}`)
    }
  }
  t.equal(valueOf(series, 'plugvisor_plugin_state', { plugin: 'crashy', state: 'failed' }), 1, 'crashy is failed')
  t.equal(valueOf(series, 'plugvisor_plugin_up', { plugin: 'crashy' }), 0)
  t.equal(valueOf(series, 'plugvisor_plugin_up', { plugin: 'steady' }), 1)
  t.equal(valueOf(series, 'plugvisor_plugin_health', { plugin: 'steady', status: 'healthy' }), 1)
  t.equal(valueOf(series, 'plugvisor_plugin_restarts_total', { plugin: 'crashy', reason: 'crash' }), 1)
  t.equal(valueOf(series, 'plugvisor_plugin_restarts_total', { plugin: 'probed', reason: 'unhealthy' }), 1)
  t.ok(valueOf(series, 'plugvisor_plugin_restarts_total', { plugin: 'hungry', reason: 'memory' })! >= 1, 'hungry restarted for memory')
  t.equal(valueOf(series, 'plugvisor_plugin_restarts_total', { plugin: 'steady', reason: 'manual' }), 1)
  t.equal(valueOf(series, 'plugvisor_plugin_restarts_total', { plugin: 'steady', reason: 'crash' }), 0)
  t.equal(valueOf(series, 'plugvisor_plugin_health_checks_total', { plugin: 'probed', probe: 'exec', result: 'failure' }), 1)
  t.equal(valueOf(series, 'plugvisor_plugin_health_checks_total', { plugin: 'probed', probe: 'exec', result: 'success' }), 0)
  t.equal(valueOf(series, 'plugvisor_plugin_health_check_duration_seconds_count', { plugin: 'probed', probe: 'exec' }), 1)
  t.equal(valueOf(series, 'plugvisor_plugin_health_check_duration_seconds_sum', { plugin: 'probed', probe: 'exec' }), 0.012)
  t.ok(valueOf(series, 'plugvisor_plugin_resident_memory_bytes', { plugin: 'steady' })! > 0, 'resident memory sampled')
  t.type(valueOf(series, 'plugvisor_plugin_cpu_seconds_total', { plugin: 'steady' }), 'number')
  t.type(valueOf(series, 'plugvisor_plugin_uptime_seconds', { plugin: 'steady' }), 'number')

  t.equal(types.get('plugvisor_http_request_duration_seconds'), 'histogram')
  t.equal(valueOf(series, 'plugvisor_http_request_duration_seconds_count', { method: 'GET', route: '/plugins/:name', status_code: '200' }), 1, 'labelled by route pattern')
  t.equal(valueOf(series, 'plugvisor_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status_code: '404' }), 1, 'unknown routes share one label')
  t.notOk(series.some((s) => s.labels.route?.includes('/no/such')), 'never the raw URL')
  t.equal(types.get('plugvisor_event_loop_lag_seconds'), 'gauge')
  t.equal(types.get('process_cpu_seconds_total'), 'counter', "prom-client's default process metrics")
  // The invoke families exist before any call: the circuit state set and zeroed outcome counters.
  t.equal(types.get('plugvisor_circuit_state'), 'gauge')
  t.equal(valueOf(series, 'plugvisor_circuit_state', { plugin: 'steady', state: 'closed' }), 1)
  t.equal(valueOf(series, 'plugvisor_circuit_state', { plugin: 'steady', state: 'open' }), 0)
  t.equal(types.get('plugvisor_invocations_total'), 'counter')
  t.equal(valueOf(series, 'plugvisor_invocations_total', { plugin: 'steady', outcome: 'success' }), 0)
  t.equal(types.get('plugvisor_invocation_duration_seconds'), 'histogram')
})

t.test('each app has its own registry', async (t) => {
  const a = await build(t, writeConfig([fixturePlugin('only-a', 'sleep', { autostart: false })]), { boot: false })
  const b = await build(t, writeConfig([fixturePlugin('only-b', 'sleep', { autostart: false })]), { boot: false })
  t.not(a.daemon.metrics.registry, b.daemon.metrics.registry)
  const text = (await a.inject({ method: 'GET', url: '/metrics' })).body
  t.match(text, /plugin="only-a"/)
  t.notMatch(text, /plugin="only-b"/)
})

t.test('series of an unloaded plugin are removed', async (t) => {
  // No unload API yet: a supervisor stand-in that loads and unloads like the real one.
  const summaries = new Map<string, PluginSummary>()
  const bus = new EventEmitter<SupervisorEvents>()
  const fake: MeteredSupervisor = Object.assign(bus, {
    gauges: () => [...summaries.values()],
    names: () => [...summaries.keys()],
    manifest: () => ({ healthCheck: { http: {} } })
  })
  const probes = new EventEmitter<HealthMonitorEvents>()
  const metrics = createPluginMetrics({ supervisor: fake, probes, resources: () => ({ residentMemoryBytes: 1024, cpuSeconds: 1.5, sampledAt: 0 }), defaultMetrics: false })
  t.teardown(() => metrics.close())
  const summary = (name: string): PluginSummary => ({ name, version: null, description: null, author: null, homepage: null, capabilities: [], tags: [], state: 'running', health: 'healthy', status: 'healthy', desired: 'running', critical: false, pid: 1, port: null, startedAt: null, uptimeMs: 1000, restartCount: 0, lastExit: null, nextRestartAt: null, circuit: null })
  for (const name of ['gone', 'kept']) {
    summaries.set(name, summary(name))
    bus.emit('loaded', name)
    bus.emit('restart', { plugin: name, reason: 'crash', at: 0 })
    probes.emit('probe', { plugin: name, probe: 'http', phase: 'regular', result: 'success', durationMs: 1, at: 0 })
  }
  const before = parseMetrics((await metrics.render()).body).series
  t.ok(before.filter((s) => s.labels.plugin === 'gone').length >= 9 + 4 + 3 + 15, 'the plugin had series in every family')

  summaries.delete('gone')
  bus.emit('unloaded', 'gone')
  const after = parseMetrics((await metrics.render()).body).series
  t.same(after.filter((s) => s.labels.plugin === 'gone'), [], 'no series left for it')
  t.equal(valueOf(after, 'plugvisor_plugin_restarts_total', { plugin: 'kept', reason: 'crash' }), 1, 'the others keep theirs')
  t.equal(valueOf(after, 'plugvisor_plugin_cpu_seconds_total', { plugin: 'kept' }), 1.5)
})

t.test('every scrape shows the events since the one before (the text kept between scrapes is made again after a change)', async (t) => {
  const bus = new EventEmitter<SupervisorEvents>()
  const fake: MeteredSupervisor = Object.assign(bus, { gauges: () => [], names: () => ['p'], manifest: () => ({ healthCheck: { http: {} } }) })
  const probes = new EventEmitter<HealthMonitorEvents>()
  const metrics = createPluginMetrics({ supervisor: fake, probes, resources: () => undefined, defaultMetrics: false })
  t.teardown(() => metrics.close())
  const scrape = async () => parseMetrics((await metrics.render()).body).series
  const first = await scrape()
  t.equal(valueOf(first, 'plugvisor_plugin_restarts_total', { plugin: 'p', reason: 'crash' }), 0)
  t.equal(await scrape().then((s) => valueOf(s, 'plugvisor_plugin_restarts_total', { plugin: 'p', reason: 'crash' })), 0, 'unchanged, scraped again')
  bus.emit('restart', { plugin: 'p', reason: 'crash', at: 0 })
  probes.emit('probe', { plugin: 'p', probe: 'http', phase: 'regular', result: 'failure', durationMs: 3, at: 0 })
  metrics.observeInvocation('p', 'timeout', 0.2)
  const second = await scrape()
  t.equal(valueOf(second, 'plugvisor_plugin_restarts_total', { plugin: 'p', reason: 'crash' }), 1, 'a restart')
  t.equal(valueOf(second, 'plugvisor_plugin_health_checks_total', { plugin: 'p', probe: 'http', result: 'failure' }), 1, 'a probe result')
  t.equal(valueOf(second, 'plugvisor_plugin_health_check_duration_seconds_count', { plugin: 'p', probe: 'http' }), 1, 'its duration')
  t.equal(valueOf(second, 'plugvisor_invocations_total', { plugin: 'p', outcome: 'timeout' }), 1, 'a call')
  t.equal(valueOf(second, 'plugvisor_invocation_duration_seconds_count', { plugin: 'p' }), 1, 'its duration')
  bus.emit('loaded', 'q')
  t.equal(valueOf(await scrape(), 'plugvisor_invocations_total', { plugin: 'q', outcome: 'success' }), 0, 'a plugin loaded later has its series')
})

t.test('the invocation duration histogram reads as prom-client\'s Histogram fed the same calls, whether they came one by one or in a batch', async (t) => {
  const bus = new EventEmitter<SupervisorEvents>()
  const fake: MeteredSupervisor = Object.assign(bus, { gauges: () => [], names: () => ['a', 'b', 'c'], manifest: () => ({}) })
  const metrics = createPluginMetrics({ supervisor: fake, probes: new EventEmitter<HealthMonitorEvents>(), resources: () => undefined, defaultMetrics: false })
  t.teardown(() => metrics.close())
  // On a bound, between bounds, below the first, above the last; fractions whose sum rounds.
  const seconds = [0.0005, 0.0007, 0.3, 0.1 + 0.2, 0, 45, 10, 0.0123, 2.5000001]
  for (const s of seconds) metrics.observeInvocation('a', s > 1 ? 'timeout' : 'success', s)
  metrics.observeInvocations('b', { success: 6, timeout: 3 }, Float64Array.from(seconds))
  metrics.observeInvocations('c', {}, [])
  const family = (text: string, name: string): string => text.slice(text.indexOf(`# HELP ${name} `)).split('\n\n')[0].replace(/\n# HELP [\s\S]*/, '')
  const ours = family((await metrics.render()).body, 'plugvisor_invocation_duration_seconds')
  const buckets = [...ours.matchAll(/_bucket\{le="([^"+]+)",plugin="a"\}/g)].map((m) => Number(m[1]))
  t.ok(buckets.length > 5, 'the buckets')
  const help = /^# HELP \S+ (.*)$/m.exec(ours)![1]
  const registry = new Registry()
  const reference = new Histogram({ name: 'plugvisor_invocation_duration_seconds', help, labelNames: ['plugin'], buckets, registers: [registry] })
  for (const plugin of ['a', 'b']) for (const s of seconds) reference.observe({ plugin }, s)
  t.equal(ours, await registry.getSingleMetricAsString('plugvisor_invocation_duration_seconds'))
  const counts = parseMetrics((await metrics.render()).body).series
  for (const plugin of ['a', 'b']) {
    t.equal(valueOf(counts, 'plugvisor_invocations_total', { plugin, outcome: 'success' }), 6, `${plugin}: successes`)
    t.equal(valueOf(counts, 'plugvisor_invocations_total', { plugin, outcome: 'timeout' }), 3, `${plugin}: timeouts`)
  }
  t.notOk(ours.includes('plugin="c"'), 'an empty batch makes no series')
})

t.test('the probe families read as prom-client\'s Counter and Histogram fed the same probes, series order included', async (t) => {
  const bus = new EventEmitter<SupervisorEvents>()
  const kinds: Record<string, object> = { a: { healthCheck: { http: {} } }, b: { healthCheck: { exec: {} } }, c: {} }
  const fake: MeteredSupervisor = Object.assign(bus, { gauges: () => [], names: () => ['a', 'b', 'c'], manifest: (name: string) => kinds[name] })
  const probes = new EventEmitter<HealthMonitorEvents>()
  const metrics = createPluginMetrics({ supervisor: fake, probes, resources: () => undefined, defaultMetrics: false })
  t.teardown(() => metrics.close())
  const events = [
    ['b', 'exec', 'failure', 12.5], ['a', 'http', 'success', 0.4], ['a', 'http', 'warn', 5], ['a', 'http', 'success', 2500],
    ['c', 'tcp', 'success', 1], ['a', 'tcp', 'failure', 1000], ['b', 'exec', 'success', 0.0001]
  ] as const
  for (const [plugin, probe, result, durationMs] of events) probes.emit('probe', { plugin, probe, phase: 'regular', result, durationMs, at: 0 })
  const family = (text: string, name: string): string => text.slice(text.indexOf(`# HELP ${name} `)).split('\n\n')[0]!.replace(/\n# HELP [\s\S]*/, '')
  const text = (await metrics.render()).body
  const counts = family(text, 'plugvisor_plugin_health_checks_total')
  const durations = family(text, 'plugvisor_plugin_health_check_duration_seconds')
  const buckets = [...durations.matchAll(/_bucket\{le="([^"+]+)",plugin="a",probe="http"\}/g)].map((m) => Number(m[1]))
  t.ok(buckets.length > 5, 'the buckets')
  const registry = new Registry()
  const counter = new Counter({ name: 'plugvisor_plugin_health_checks_total', help: /^# HELP \S+ (.*)$/m.exec(counts)![1]!, labelNames: ['plugin', 'probe', 'result'], registers: [registry] })
  const histogram = new Histogram({ name: 'plugvisor_plugin_health_check_duration_seconds', help: /^# HELP \S+ (.*)$/m.exec(durations)![1]!, labelNames: ['plugin', 'probe'], buckets, registers: [registry] })
  // Every result starts at 0 for each plugin's configured probe, and for a kind first seen in a
  // probe (a manifest changed under a running probe) at that probe.
  const seen = new Set<string>()
  const zero = (plugin: string, probe: string): void => {
    if (seen.has(`${plugin} ${probe}`)) return
    seen.add(`${plugin} ${probe}`)
    for (const result of ['success', 'warn', 'failure']) counter.inc({ plugin, probe, result }, 0)
  }
  zero('a', 'http')
  zero('b', 'exec')
  for (const [plugin, probe, result, durationMs] of events) {
    zero(plugin, probe)
    counter.inc({ plugin, probe, result })
    histogram.observe({ plugin, probe }, durationMs / 1000)
  }
  t.equal(counts, await registry.getSingleMetricAsString('plugvisor_plugin_health_checks_total'))
  t.equal(durations, await registry.getSingleMetricAsString('plugvisor_plugin_health_check_duration_seconds'))
})

t.test('the scrape-time families show every change of a plugin from one scrape to the next (its lines are kept between scrapes)', async (t) => {
  const bus = new EventEmitter<SupervisorEvents>()
  const g: PluginGauges = { name: 'p', state: 'running', health: 'healthy', circuit: 'closed', uptimeMs: 1500 }
  let usage = { residentMemoryBytes: 2048, cpuSeconds: 0.5, sampledAt: 0 }
  let fallback = false
  const fake: MeteredSupervisor = Object.assign(bus, { gauges: () => [{ ...g }], names: () => ['p'], manifest: () => ({}) })
  const metrics = createPluginMetrics({ supervisor: fake, probes: new EventEmitter<HealthMonitorEvents>(), resources: () => usage, fallbackActive: () => fallback, defaultMetrics: false })
  t.teardown(() => metrics.close())
  const scrape = async () => {
    const s = parseMetrics((await metrics.render()).body).series
    const one = (name: string, labels: Record<string, string> = {}) => valueOf(s, name, { plugin: 'p', ...labels })
    return {
      up: one('plugvisor_plugin_up'),
      state: one('plugvisor_plugin_state', { state: g.state }),
      running: one('plugvisor_plugin_state', { state: 'running' }),
      health: one('plugvisor_plugin_health', { status: 'healthy' }),
      degraded: one('plugvisor_plugin_health', { status: 'degraded' }),
      circuitClosed: one('plugvisor_circuit_state', { state: 'closed' }),
      circuitOpen: one('plugvisor_circuit_state', { state: 'open' }),
      uptime: one('plugvisor_plugin_uptime_seconds'),
      memory: one('plugvisor_plugin_resident_memory_bytes'),
      cpu: one('plugvisor_plugin_cpu_seconds_total'),
      fallback: one('plugvisor_fallback_active')
    }
  }
  t.same(await scrape(), { up: 1, state: 1, running: 1, health: 1, degraded: 0, circuitClosed: 1, circuitOpen: 0, uptime: 1.5, memory: 2048, cpu: 0.5, fallback: 0 })
  t.same(await scrape(), { up: 1, state: 1, running: 1, health: 1, degraded: 0, circuitClosed: 1, circuitOpen: 0, uptime: 1.5, memory: 2048, cpu: 0.5, fallback: 0 }, 'unchanged')
  Object.assign(g, { state: 'backoff', health: 'degraded', circuit: 'open', uptimeMs: 0 })
  usage = { residentMemoryBytes: 0, cpuSeconds: 0.75, sampledAt: 1 }
  fallback = true
  t.same(await scrape(), { up: 0, state: 1, running: 0, health: 0, degraded: 1, circuitClosed: 0, circuitOpen: 1, uptime: 0, memory: 0, cpu: 0.75, fallback: 1 }, 'every value changed')
  g.circuit = null
  t.equal((await metrics.render()).body.includes('plugvisor_circuit_state{plugin="p"'), false, 'no circuit lines without a circuit')
})

t.test('process_open_fds counts this process\'s open descriptors, as prom-client does', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const bus = new EventEmitter<SupervisorEvents>()
  const fake: MeteredSupervisor = Object.assign(bus, { gauges: () => [], names: () => [], manifest: () => ({}) })
  const metrics = createPluginMetrics({ supervisor: fake, probes: new EventEmitter<HealthMonitorEvents>(), resources: () => undefined })
  t.teardown(() => metrics.close())
  const text = (await metrics.render()).body
  // The listing holds one descriptor of its own while it reads.
  const listed = readdirSync('/proc/self/fd').length - 1
  t.equal(valueOf(parseMetrics(text).series, 'process_open_fds', {}), listed)
  t.match(text, /# HELP process_open_fds Number of open file descriptors\.\n# TYPE process_open_fds gauge\n/)
})

t.test('closing the metrics stops listening to the supervisor', async (t) => {
  const bus = new EventEmitter<SupervisorEvents>()
  const fake: MeteredSupervisor = Object.assign(bus, { gauges: () => [], names: () => [], manifest: () => ({}) })
  const probes = new EventEmitter<HealthMonitorEvents>()
  const metrics = createPluginMetrics({ supervisor: fake, probes, resources: () => undefined, defaultMetrics: false })
  t.equal(bus.listenerCount('restart'), 1)
  t.equal(probes.listenerCount('probe'), 1)
  metrics.close()
  for (const e of ['loaded', 'unloaded', 'restart'] as const) t.equal(bus.listenerCount(e), 0, e)
  t.equal(probes.listenerCount('probe'), 0, 'probe')
})

t.test('a stalled event loop shows in the lag series, the monitor resolution taken off', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('stalled', 'sleep', { autostart: false })]))
  await app.inject({ method: 'GET', url: '/metrics' }) // starts a new window
  // A new window measures from its first sample on (a reset forgets the previous timer run), so
  // the stall comes after it: 300 ms of synchronous work, then time for the next samples.
  await new Promise((resolve) => setTimeout(resolve, 150))
  const until = performance.now() + 300
  while (performance.now() < until) { /* stall the loop */ }
  await new Promise((resolve) => setTimeout(resolve, 250))
  const { series } = parseMetrics((await app.inject({ method: 'GET', url: '/metrics' })).body)
  for (const name of ['plugvisor_event_loop_lag_seconds', 'nodejs_eventloop_lag_max_seconds']) {
    const v = valueOf(series, name, {}) as number
    // The timer due during the stall runs at its end, 200–300 ms late at a 100 ms resolution.
    t.ok(v >= 0.15 && v < 0.6, `${name} ${v} is the stall, not the resolution`)
  }
})

t.test('an idle daemon reports its real event-loop lag (ms), not the monitor resolution', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('idle', 'sleep', { autostart: false })]))
  await app.inject({ method: 'GET', url: '/metrics' }) // resets the window: startup is not idle
  // An idle window of several resolutions (waiting is the point here: nothing to await).
  await new Promise((resolve) => setTimeout(resolve, 500))
  const { series } = parseMetrics((await app.inject({ method: 'GET', url: '/metrics' })).body)
  // Without the subtraction every sample would read at least the 100 ms resolution. The p99 (one
  // late wakeup on a loaded machine is enough to lift it) is only held below the resolution; the
  // median and mean of an idle window are the real lag, a few ms.
  const lag = valueOf(series, 'plugvisor_event_loop_lag_seconds', {})
  t.type(lag, 'number')
  t.ok((lag as number) < 0.1, `plugvisor_event_loop_lag_seconds ${lag} < 0.1, the resolution`)
  for (const name of ['nodejs_eventloop_lag_mean_seconds', 'nodejs_eventloop_lag_p50_seconds']) {
    const v = valueOf(series, name, {})
    t.type(v, 'number', `${name} is reported`)
    t.ok((v as number) < 0.05, `${name} ${v} < 0.05`)
  }
  t.type(valueOf(series, 'nodejs_eventloop_lag_seconds', {}), 'number', 'nodejs_eventloop_lag_seconds is reported')
})
