// The Prometheus metrics of the daemon (prefix plugvisor_), in one Registry per daemon.
// Plugin gauges are computed at scrape time from supervisor.gauges(), so a scrape costs one pass
// over the plugins and nothing is kept in step on every change; counters and histograms are fed
// by supervisor events. Every series of an unloaded plugin is removed (the scrape-time ones
// vanish with the plugin from the list).
// The invoke proxy feeds invocations_total and invocation_duration_seconds through
// observeInvocation(); circuit_state is a state set computed at scrape time like plugin_state,
// fallback_active a gauge computed at scrape time from the invoker's fallback state.
import type { EventEmitter } from 'node:events'
import { readdirSync, statSync } from 'node:fs'
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client'

// Event-loop delay is sampled by one timer this often (ms). Each sample is the whole time between
// two timer runs, the resolution included, so every lag series subtracts it. Every sample wakes an
// idle daemon: at 10 ms, with prom-client's own monitor beside ours, that was 200 wakeups a second
// and most of the idle CPU; at 100 ms one monitor costs 10 a second and still sees any stall longer
// than the resolution (a stall shorter than it is seen when a sample falls inside it).
const LOOP_SAMPLE_MS = 100
// prom-client's event-loop series read their own monitor, which cannot subtract the resolution:
// that monitor is made to sample once a minute (its readings are dropped) and these series are
// computed from ours instead, under the names it gives them.
const PROM_CLIENT_LOOP_SAMPLE_MS = 60_000
const LOOP_STATS = ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'] as const
type LoopStat = typeof LOOP_STATS[number]
import { HEALTH_NAMES, STATE_NAMES, type StateName } from '../supervisor/lifecycle.js'
import type { SupervisorEvents } from '../supervisor/supervisor.js'
import type { PluginGauges, RestartEvent } from '../supervisor/events.js'
import { RESTART_REASONS } from '../supervisor/lifecycle.js'
import { CIRCUIT_STATE_NAMES } from '../invoke/circuit.js'
import { PROBE_KINDS, PROBE_RESULTS, type ProbeEvent, type ProbeKind, type ProbeResult } from '../health/probes.js'
import type { HealthMonitorEvents } from '../health/health-monitor.js'
import { INVOCATION_OUTCOMES, type InvocationOutcome } from '../invoke/invoker.js'
import type { PluginResources } from '../resources/resource-sampler.js'

/** The route label of requests that matched no route: raw URLs would make unbounded series. */
export const UNMATCHED_ROUTE = 'unmatched'

/** The part of the supervisor metrics read (the real one, or a fake). */
export interface MeteredSupervisor extends Pick<EventEmitter<SupervisorEvents>, 'on' | 'off'> {
  gauges: () => PluginGauges[]
  names: () => string[]
  manifest: (name: string) => { healthCheck?: { http?: unknown, tcp?: unknown, exec?: unknown } }
}

export interface PluginMetricsOptions {
  supervisor: MeteredSupervisor
  /** Where probe results are published (the health monitor). */
  probes: Pick<EventEmitter<HealthMonitorEvents>, 'on' | 'off'>
  /** Latest resource sample of a plugin. */
  resources: (name: string) => PluginResources | undefined
  /** GET /events clients connected now. */
  eventStreamClients?: () => number
  /** Whether calls into the plugin go to its fallback now (the invoker's fallback state). */
  fallbackActive?: (name: string) => boolean
  /** prom-client's default process and Node.js metrics (default true). */
  defaultMetrics?: boolean
}

export interface PluginMetrics {
  /** Event-fed and process families; render() adds the plugin gauges computed at scrape time. */
  readonly registry: Registry
  /** One served HTTP request; `route` is the route pattern, or undefined when none matched. */
  observeHttpRequest: (method: string, route: string | undefined, statusCode: number, seconds: number) => void
  /** One call into a plugin through the invoke proxy: its outcome and the time to its answer's headers. */
  observeInvocation: (plugin: string, outcome: InvocationOutcome, seconds: number) => void
  /**
   * Many calls into a plugin at once (a host's reported batch): how many had each outcome, and the
   * seconds of each call in their order; the same as one observeInvocation() per call.
   */
  observeInvocations: (plugin: string, outcomes: Partial<Record<InvocationOutcome, number>>, seconds: ArrayLike<number>) => void
  /** The whole exposition text (every family) and its content type. */
  render: () => Promise<{ contentType: string, body: string }>
  close: () => void
}

const OPEN_FDS = 'process_open_fds'
const NON_COUNTER_TOTALS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']
const PROBE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const INVOKE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export function createPluginMetrics (opts: PluginMetricsOptions): PluginMetrics {
  const { supervisor, probes, resources } = opts
  const fallbackActive = opts.fallbackActive ?? (() => false)
  const registry = new Registry()
  const registers = [registry]
  // The families computed from supervisor.list() at scrape time are written as text here rather
  // than through prom-client Gauges: with 500 plugins the state sets alone are 5,000 series, and
  // prom-client's per-series label hashing and formatting made a scrape ~4x slower than this
  // (see bench/metrics.js). The format is checked by promtool in the tests.
  // Each plugin's lines are kept and made again only when their value changed: most are state
  // sets (5,000 series with 500 plugins) that stay as they are from one scrape to the next.
  const pluginLines = new Map<string, PluginLines>()
  const renderPluginFamilies = (): string => {
    const list = supervisor.gauges()
    const up: string[] = []
    const state: string[] = []
    const health: string[] = []
    const uptime: string[] = []
    const memory: string[] = []
    const cpu: string[] = []
    const circuit: string[] = []
    const fallback: string[] = []
    for (const p of list) {
      let l = pluginLines.get(p.name)
      if (l === undefined) pluginLines.set(p.name, l = new PluginLines(p.name))
      const usage = resources(p.name)
      const label = l.label
      up.push(l.up.of(label, p.state))
      state.push(l.state.of(label, p.state))
      health.push(l.health.of(label, p.health))
      uptime.push(`plugvisor_plugin_uptime_seconds{${label}} ${p.uptimeMs / 1000}`)
      memory.push(l.memory.of(label, usage?.residentMemoryBytes ?? 0))
      cpu.push(l.cpu.of(label, usage?.cpuSeconds ?? 0))
      if (p.circuit !== null) circuit.push(l.circuit.of(label, p.circuit))
      fallback.push(l.fallback.of(label, fallbackActive(p.name)))
    }
    const family = (name: string, type: string, help: string, lines: string[]): string =>
      `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${lines.length > 0 ? lines.join('\n') + '\n' : ''}`
    return family('plugvisor_plugin_up', 'gauge', 'Whether the plugin process is running (1) or not (0)', up) +
      family('plugvisor_plugin_state', 'gauge', `Process lifecycle state as a state set: 1 for the current state, 0 for the others (${STATE_NAMES.join(', ')})`, state) +
      family('plugvisor_plugin_health', 'gauge', `Health verdict as a state set: 1 for the current verdict, 0 for the others (${HEALTH_NAMES.join(', ')})`, health) +
      family('plugvisor_plugin_uptime_seconds', 'gauge', 'Time since the plugin process started running; 0 when not running', uptime) +
      family('plugvisor_plugin_resident_memory_bytes', 'gauge', 'Resident memory of the plugin\'s whole process group at the last sample; 0 when not running', memory) +
      family('plugvisor_plugin_cpu_seconds_total', 'counter', 'User and system CPU time of every process the plugin has run since the daemon started, at the last sample', cpu) +
      family('plugvisor_circuit_state', 'gauge', `Circuit breaker of calls into the plugin as a state set: 1 for the current state, 0 for the others (${CIRCUIT_STATE_NAMES.join(', ')})`, circuit) +
      family('plugvisor_fallback_active', 'gauge', 'Whether calls into the plugin go to its fallback now (1), automatically or by an operator, or to the plugin (0)', fallback)
  }

  const restarts = new Counter({
    name: 'plugvisor_plugin_restarts_total',
    help: 'Restarts by reason: crash (unexpected exit), unhealthy (failed probes), memory (limits.maxMemoryMb), manual (operator), watch (a watched file changed)',
    labelNames: ['plugin', 'reason'],
    registers
  })
  // Observed on every probe (hundreds a second): kept per plugin and probe kind, like the invocations.
  const checks = new SeriesCounter('plugvisor_plugin_health_checks_total', 'Health probe results by probe type and result')
  registry.registerMetric(checks as unknown as Metric)
  const checkDuration = new SeriesHistogram('plugvisor_plugin_health_check_duration_seconds', 'Duration of health probes', PROBE_BUCKETS)
  registry.registerMetric(checkDuration as unknown as Metric)
  /** A plugin's probe series of one kind: one counter per result (in PROBE_RESULTS order), its duration once observed. */
  interface CheckSeries { results: CounterSeries[], duration: HistogramSeries | undefined }
  const checkSeries = new Map<string, Map<ProbeKind, CheckSeries>>()
  const checksOf = (plugin: string, probe: ProbeKind): CheckSeries => {
    let byKind = checkSeries.get(plugin)
    if (byKind === undefined) checkSeries.set(plugin, byKind = new Map())
    let rec = byKind.get(probe)
    if (rec === undefined) {
      rec = { results: PROBE_RESULTS.map((result) => checks.series({ plugin, probe, result })), duration: undefined }
      byKind.set(probe, rec)
    }
    return rec
  }
  // Observed on every proxied call: kept per plugin (below), not through prom-client's label hashing.
  const invocations = new SeriesCounter(
    'plugvisor_invocations_total',
    `Calls into plugins through /plugins/:name/invoke/* by outcome (${INVOCATION_OUTCOMES.join(', ')}; fallback: the fallback answered), one per call, counted for the plugin called (a fallback plugin's own call counts for it too)`
  )
  registry.registerMetric(invocations as unknown as Metric)
  const invocationDuration = new SeriesHistogram(
    'plugvisor_invocation_duration_seconds',
    'Time from the call into a plugin to its answer\'s headers (or the failure), retries included',
    INVOKE_BUCKETS
  )
  registry.registerMetric(invocationDuration as unknown as Metric)
  /** Each plugin's invocation series: one counter per outcome (in INVOCATION_OUTCOMES order), its duration once observed. */
  interface InvocationSeries { outcomes: CounterSeries[], duration: HistogramSeries | undefined }
  const invocationSeries = new Map<string, InvocationSeries>()
  const invocationsOf = (plugin: string): InvocationSeries => {
    let rec = invocationSeries.get(plugin)
    if (rec === undefined) {
      rec = { outcomes: INVOCATION_OUTCOMES.map((outcome) => invocations.series({ plugin, outcome })), duration: undefined }
      invocationSeries.set(plugin, rec)
    }
    return rec
  }
  const http = new RequestHistogram(
    'plugvisor_http_request_duration_seconds',
    `Duration of HTTP API requests by method, route pattern (${UNMATCHED_ROUTE} when no route matched) and status code`,
    HTTP_BUCKETS
  )
  registry.registerMetric(http as unknown as Metric)

  let loopDelay: IntervalHistogram | undefined = monitorEventLoopDelay({ resolution: LOOP_SAMPLE_MS })
  loopDelay.enable()
  // One reading per scrape serves every lag series, then the window starts again.
  let reading: Record<LoopStat, number> | undefined
  const readLoop = (): Record<LoopStat, number> => {
    if (reading) return reading
    const h = loopDelay
    // Before the first full resolution interval the histogram is empty (percentile 0, min huge).
    // A sample is resolution + delay: only the delay is lag. Seconds.
    const lag = (ns: number): number => Math.max(0, ns / 1e6 - LOOP_SAMPLE_MS) / 1e3
    reading = h === undefined || h.count === 0
      ? { min: 0, max: 0, mean: 0, stddev: 0, p50: 0, p90: 0, p99: 0 }
      : { min: lag(h.min), max: lag(h.max), mean: lag(h.mean), stddev: h.stddev / 1e9, p50: lag(h.percentile(50)), p90: lag(h.percentile(90)), p99: lag(h.percentile(99)) }
    h?.reset()
    setImmediate(() => { reading = undefined })
    return reading
  }
  const loopGauge = (name: string, help: string, stat: LoopStat): Gauge => new Gauge({
    name,
    help,
    registers: [],
    collect () { this.set(readLoop()[stat]) }
  })
  registry.registerMetric(loopGauge('plugvisor_event_loop_lag_seconds', 'p99 of the event-loop delay since the previous scrape', 'p99'))

  const { eventStreamClients } = opts
  if (eventStreamClients !== undefined) {
    registry.registerMetric(new Gauge({
      name: 'plugvisor_event_stream_clients',
      help: 'GET /events clients connected (at most events.maxClients)',
      registers: [],
      collect () { this.set(eventStreamClients()) }
    }))
  }

  if (opts.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: PROM_CLIENT_LOOP_SAMPLE_MS })
    // Gauges named *_total fail `promtool check metrics`; the per-type gauges without the
    // suffix (nodejs_active_handles{type} ...) carry the same numbers, sum() gives the total.
    for (const name of NON_COUNTER_TOTALS) registry.removeSingleMetric(name)
    for (const stat of LOOP_STATS) {
      const name = `nodejs_eventloop_lag_${stat}_seconds`
      registry.removeSingleMetric(name)
      registry.registerMetric(loopGauge(name, `The ${stat} of the event-loop delay since the previous scrape, in seconds.`, stat))
    }
    // prom-client lists /proc/self/fd for process_open_fds: a name per descriptor, ~1,500 with 500
    // plugins' pipes, an eighth of a scrape. Linux (6.2 on) gives the count as the folder's size;
    // the listing stays for older kernels (size 0).
    if (registry.getSingleMetric(OPEN_FDS) !== undefined) {
      registry.removeSingleMetric(OPEN_FDS)
      registry.registerMetric(new Gauge({
        name: OPEN_FDS,
        help: 'Number of open file descriptors.',
        registers: [],
        collect () {
          const n = openFds()
          if (n !== undefined) this.set(n)
        }
      }))
    }
  }

  // The event-fed families (restarts, probe results and durations, invocations) change only on
  // their events, yet with 500 plugins they are thousands of series that prom-client labelled
  // and formatted again on every scrape (most of its time). Their text is kept between scrapes
  // and made again after a change; the process, HTTP and event-loop families are made every time.
  // (prom-client's typings leave out the name every metric object has.)
  const nameOf = (m: Counter | Histogram | SeriesCounter | SeriesHistogram): string => (m as unknown as { name: string }).name
  const kept = new Map<string, string>()
  const eventFed = new Set([restarts, checks, checkDuration, invocations, invocationDuration].map(nameOf))
  const changed = (m: Counter | Histogram | SeriesCounter | SeriesHistogram): void => { kept.delete(nameOf(m)) }
  const exposition = async (): Promise<string> => {
    const texts = await Promise.all(registry.getMetricsAsArray().map(async ({ name }) => {
      let text = kept.get(name)
      if (text === undefined) {
        text = await registry.getSingleMetricAsString(name)
        if (eventFed.has(name)) kept.set(name, text)
      }
      return text
    }))
    // As Registry.metrics() joins them (text format 0.0.4).
    return `${texts.join('\n\n')}\n`
  }

  // Counters start at 0 for every reason and result, so rate() and increase() see the first event.
  const initPlugin = (name: string): void => {
    for (const reason of RESTART_REASONS) restarts.inc({ plugin: name, reason }, 0)
    const hc = supervisor.manifest(name).healthCheck
    const probe = hc === undefined ? undefined : PROBE_KINDS.find((t) => hc[t] !== undefined)
    if (probe) checksOf(name, probe)
    invocationsOf(name)
    kept.clear()
  }
  const onLoaded = (name: string): void => initPlugin(name)
  const onUnloaded = (name: string): void => {
    pluginLines.delete(name)
    for (const reason of RESTART_REASONS) restarts.remove({ plugin: name, reason })
    for (const rec of checkSeries.get(name)?.values() ?? []) {
      for (const c of rec.results) checks.drop(c)
      if (rec.duration !== undefined) checkDuration.drop(rec.duration)
    }
    checkSeries.delete(name)
    const inv = invocationSeries.get(name)
    if (inv !== undefined) {
      for (const c of inv.outcomes) invocations.drop(c)
      if (inv.duration !== undefined) invocationDuration.drop(inv.duration)
      invocationSeries.delete(name)
    }
    kept.clear()
  }
  const onRestart = (e: RestartEvent): void => {
    restarts.inc({ plugin: e.plugin, reason: e.reason })
    changed(restarts)
  }
  const onProbe = (e: ProbeEvent): void => {
    const rec = checksOf(e.plugin, e.probe)
    rec.results[RESULT_INDEX[e.result]]!.value++
    rec.duration ??= checkDuration.series({ plugin: e.plugin, probe: e.probe })
    checkDuration.observe(rec.duration, e.durationMs / 1000)
    changed(checks)
    changed(checkDuration)
  }
  for (const name of supervisor.names()) initPlugin(name)
  supervisor.on('loaded', onLoaded)
  supervisor.on('unloaded', onUnloaded)
  supervisor.on('restart', onRestart)
  probes.on('probe', onProbe)

  return {
    registry,
    observeHttpRequest (method, route, statusCode, seconds) {
      http.observeRequest(method, route ?? UNMATCHED_ROUTE, statusCode, seconds)
    },
    observeInvocation (plugin, outcome, seconds) {
      const inv = invocationsOf(plugin)
      inv.outcomes[OUTCOME_INDEX[outcome]].value++
      inv.duration ??= invocationDuration.series({ plugin })
      invocationDuration.observe(inv.duration, seconds)
      changed(invocations)
      changed(invocationDuration)
    },
    observeInvocations (plugin, outcomes, seconds) {
      const inv = invocationsOf(plugin)
      for (const outcome of INVOCATION_OUTCOMES) {
        const n = outcomes[outcome]
        if (n !== undefined && n > 0) inv.outcomes[OUTCOME_INDEX[outcome]].value += n
      }
      if (seconds.length > 0) {
        const d = inv.duration ??= invocationDuration.series({ plugin })
        for (let i = 0; i < seconds.length; i++) invocationDuration.observe(d, seconds[i])
      }
      changed(invocations)
      changed(invocationDuration)
    },
    async render () {
      const rest = await exposition()
      return { contentType: registry.contentType, body: renderPluginFamilies() + rest }
    },
    close () {
      supervisor.off('loaded', onLoaded)
      supervisor.off('unloaded', onUnloaded)
      supervisor.off('restart', onRestart)
      probes.off('probe', onProbe)
      loopDelay?.disable()
      loopDelay = undefined
      registry.clear()
      invocationSeries.clear()
      checkSeries.clear()
      kept.clear()
      pluginLines.clear()
    }
  }
}

/** Where each result's counter is in a plugin's CheckSeries. */
const RESULT_INDEX = Object.fromEntries(PROBE_RESULTS.map((r, i) => [r, i])) as Record<ProbeResult, number>

/** Where each outcome's counter is in a plugin's InvocationSeries. */
const OUTCOME_INDEX = Object.fromEntries(INVOCATION_OUTCOMES.map((o, i) => [o, i])) as Record<InvocationOutcome, number>

type Labels = Record<string, string>
interface CounterSeries { readonly labels: Labels, value: number }
interface HistogramSeries {
  readonly labels: Labels
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly counts: number[]
  sum: number
  count: number
}

/**
 * A counter whose callers keep the series they add to. prom-client's Counter.inc validates and
 * hashes a label object on every call (its labels() children too); here a series is found once
 * and then incremented in place. The registry gets the exposition prom-client's Counter gives
 * (same series in the same order, same label order) through get().
 */
class SeriesCounter {
  readonly type = 'counter'
  readonly aggregator = 'sum'
  readonly #series = new Set<CounterSeries>()

  constructor (readonly name: string, readonly help: string) {}

  /** A new series at 0, exposed from now on (in the order series were added). */
  series (labels: Labels): CounterSeries {
    const s = { labels, value: 0 }
    this.#series.add(s)
    return s
  }

  drop (s: CounterSeries): void { this.#series.delete(s) }

  get (): { name: string, help: string, type: string, aggregator: string, values: { labels: object, value: number }[] } {
    const values = []
    for (const s of this.#series) values.push({ labels: s.labels, value: s.value })
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset (): void { for (const s of this.#series) s.value = 0 }
}

/** The same for a histogram: prom-client's Histogram.observe hashes its labels on every call too. */
class SeriesHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #series = new Set<HistogramSeries>()

  constructor (readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}

  /** A new, empty series, exposed from now on. */
  series (labels: Labels): HistogramSeries {
    const s = { labels, counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 }
    this.#series.add(s)
    return s
  }

  drop (s: HistogramSeries): void { this.#series.delete(s) }

  observe (s: HistogramSeries, seconds: number): void {
    let i = 0
    while (i < this.buckets.length && seconds > this.buckets[i]) i++
    s.counts[i]++
    s.sum += seconds
    s.count++
  }

  get (): { name: string, help: string, type: string, aggregator: string, values: { labels: object, sharedLabels: object, value: number, metricName: string }[] } {
    const values = []
    const bucket = `${this.name}_bucket`
    for (const s of this.#series) {
      let acc = 0
      for (let i = 0; i < this.buckets.length; i++) {
        acc += s.counts[i]
        values.push({ labels: { le: this.buckets[i] }, sharedLabels: s.labels, value: acc, metricName: bucket })
      }
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` }
      )
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset (): void { this.#series.clear() }
}

/**
 * The HTTP request duration histogram, observed on every request: one series per method +
 * route + status, found through maps keyed by the route and method strings, which are the same
 * instances request after request (so each lookup hashes nothing new; a joined key did).
 */
class RequestHistogram extends SeriesHistogram {
  readonly #byRoute = new Map<string, Map<string, Map<number, HistogramSeries>>>()

  observeRequest (method: string, route: string, statusCode: number, seconds: number): void {
    let byMethod = this.#byRoute.get(route)
    if (byMethod === undefined) this.#byRoute.set(route, byMethod = new Map())
    let byStatus = byMethod.get(method)
    if (byStatus === undefined) byMethod.set(method, byStatus = new Map())
    let s = byStatus.get(statusCode)
    if (s === undefined) byStatus.set(statusCode, s = this.series({ method, route, status_code: String(statusCode) }))
    this.observe(s, seconds)
  }

  override reset (): void {
    super.reset()
    this.#byRoute.clear()
  }
}

/** The lines of a state set: 1 for the plugin's value, 0 for the others. */
const stateSet = <V extends string>(name: string, labelName: string, values: readonly V[]) =>
  (label: string, value: V): string => values.map((x) => `${name}{${label},${labelName}="${x}"} ${x === value ? 1 : 0}`).join('\n')

/** A plugin's line(s) in one scrape-time family, kept until the value they show changes. */
class KeptLines<V> {
  #value: V | undefined
  #text = ''
  constructor (readonly make: (label: string, value: V) => string) {}
  of (label: string, value: V): string {
    if (value !== this.#value || this.#text === '') {
      this.#value = value
      this.#text = this.make(label, value)
    }
    return this.#text
  }
}

/** One plugin's lines in the scrape-time families (uptime, which changes every time, is made at the scrape). */
class PluginLines {
  readonly label: string
  readonly up = new KeptLines((l, s: StateName) => `plugvisor_plugin_up{${l}} ${s === 'running' ? 1 : 0}`)
  readonly state = new KeptLines(stateSet('plugvisor_plugin_state', 'state', STATE_NAMES))
  readonly health = new KeptLines(stateSet('plugvisor_plugin_health', 'status', HEALTH_NAMES))
  readonly memory = new KeptLines((l, bytes: number) => `plugvisor_plugin_resident_memory_bytes{${l}} ${bytes}`)
  readonly cpu = new KeptLines((l, seconds: number) => `plugvisor_plugin_cpu_seconds_total{${l}} ${seconds}`)
  readonly circuit = new KeptLines(stateSet('plugvisor_circuit_state', 'state', CIRCUIT_STATE_NAMES))
  readonly fallback = new KeptLines((l, active: boolean) => `plugvisor_fallback_active{${l}} ${active ? 1 : 0}`)
  constructor (name: string) { this.label = `plugin="${escapeLabelValue(name)}"` }
}

/** Open file descriptors of this process (Linux), as prom-client counts them; undefined when /proc cannot say. */
function openFds (): number | undefined {
  try {
    const size = statSync('/proc/self/fd').size
    // The listing opens one more descriptor while it reads: not counted.
    return size > 0 ? size : readdirSync('/proc/self/fd').length - 1
  } catch {
    return undefined
  }
}

/** Label values in the text format: backslash, double quote and line feed escaped. */
function escapeLabelValue (v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v
}
