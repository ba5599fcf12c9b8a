// One plugin: its facts, health-history charts, events timeline (with hook runs), circuit, fallback, call
// statistics (when the API has them) and live log lines. Re-reads what an event may have changed, one request per
// kind at a time (a burst of events costs one re-read, not one each).
import { api, plugin } from './api.js'
import { h, setText } from './dom.js'
import { bytes, duration, lastExit, ms, percent, time, uptime } from './format.js'
import { RANGES, renderCharts } from './chart.js'
import { followLogs, TAIL } from './log-source.js'

const CHART_REFRESH_MS = 30_000
/** Entries of the events timeline (transitions and hook runs together). */
const TIMELINE = 50

/** Runs `fn` now, or once more after the run in flight: never two at once, never a lost request. */
function coalesced (fn) {
  let running = null
  let again = false
  const run = async () => {
    if (running) { again = true; return running }
    running = (async () => {
      do {
        again = false
        try { await fn() } catch (err) { console.warn(err) }
      } while (again)
    })()
    try { await running } finally { running = null }
  }
  return run
}

/** A state transition in the events timeline. */
const transitionItem = (e) => h('li', { dataset: { to: e.to } },
  h('time', { datetime: e.at }, time(e.at)),
  h('span', { class: 'transition' }, e.from ? `${e.from} → ${e.to}` : e.to),
  h('span', { class: 'reason' }, e.reason),
  (e.exitCode !== null || e.signal) ? h('span', { class: 'muted' }, e.signal ?? `exit ${e.exitCode}`) : null)

/** A run of a lifecycle hook in the events timeline. */
const hookItem = (r) => h('li', { class: 'hook', dataset: { hook: r.hook, outcome: r.outcome }, title: `${r.kind} ${r.target}${r.actor !== null ? `, run for ${r.actor}` : ''}` },
  h('time', { datetime: r.at }, time(r.at)),
  h('span', { class: 'transition' }, `hook ${r.hook}: ${r.outcome}`),
  h('span', { class: 'reason' }, r.reason),
  h('span', { class: 'muted' }, ms(r.durationMs)))

export class PluginPage {
  constructor (name, { act, actFallback }) {
    this.name = name
    this.act = act
    this.range = sessionStorage.getItem('plugvisor.range') ?? '1h'
    this.summary = null
    this.facts = {}
    this.badge = h('span', { class: 'badge' })
    this.subtitle = h('span', { class: 'muted' })
    this.buttons = ['start', 'stop', 'restart'].map((op) => h('button', { type: 'button', dataset: { action: op }, class: op === 'restart' ? 'primary' : '', onclick: (e) => this.act(name, op, e.currentTarget) }, op[0].toUpperCase() + op.slice(1)))
    const factGrid = h('dl', { class: 'facts' })
    for (const [k, label] of [['state', 'State'], ['health', 'Health'], ['pid', 'PID'], ['port', 'Port'], ['uptime', 'Uptime'], ['restarts', 'Restarts'],
      ['lastExit', 'Last exit'], ['nextRestart', 'Next restart'], ['memory', 'Memory'], ['cpu', 'CPU time'], ['desired', 'Desired'], ['critical', 'Critical'],
      ['checks', 'Checks'], ['success', 'Success rate'], ['avg', 'Mean response'], ['trend', 'Trend']]) {
      this.facts[k] = h('dd', { dataset: { fact: k } }, '–')
      factGrid.append(h('div', {}, h('dt', {}, label), this.facts[k]))
    }
    this.rangeButtons = Object.keys(RANGES).map((r) => h('button', { type: 'button', class: 'seg', 'aria-pressed': String(r === this.range), onclick: () => this.#setRange(r) }, r))
    this.charts = h('div', { class: 'charts', id: 'charts' }, h('p', { class: 'muted' }, 'loading…'))
    this.timeline = h('ol', { class: 'timeline', id: 'timeline' })
    this.circuit = h('dl', { class: 'kv', id: 'circuit' })
    this.fallback = h('dl', { class: 'kv', id: 'fallback' })
    // Like start/stop: each button is one POST; what they may do follows the state shown.
    this.fallbackButtons = ['activate', 'deactivate'].map((op) => h('button', { type: 'button', class: 'small', dataset: { fallbackAction: op }, disabled: true, onclick: (e) => actFallback(name, op, e.currentTarget) }, op[0].toUpperCase() + op.slice(1)))
    this.calls = h('section', { class: 'card', id: 'calls', hidden: true })
    this.logs = h('pre', { class: 'logs', id: 'logs', tabindex: '0' })
    this.logNote = h('span', { class: 'muted' })
    this.element = h('div', { class: 'plugin-page' },
      h('div', { class: 'page-head' },
        h('a', { href: '#/', class: 'back' }, '← Plugins'),
        h('h1', {}, name), this.badge, this.subtitle, h('span', { class: 'grow' }), this.buttons),
      h('section', { class: 'card' }, factGrid),
      h('section', { class: 'card' },
        h('div', { class: 'toolbar' }, h('h2', {}, 'Health history'), h('span', { class: 'grow' }), h('div', { class: 'segmented', role: 'group', 'aria-label': 'Range' }, this.rangeButtons)),
        this.charts),
      h('div', { class: 'columns' },
        h('section', { class: 'card' }, h('h2', {}, 'Events'), this.timeline),
        h('div', { class: 'stack' },
          h('section', { class: 'card' }, h('h2', {}, 'Circuit'), this.circuit),
          h('section', { class: 'card' }, h('div', { class: 'toolbar' }, h('h2', {}, 'Fallback'), h('span', { class: 'grow' }), this.fallbackButtons), this.fallback),
          this.calls)),
      h('section', { class: 'card' }, h('div', { class: 'toolbar' }, h('h2', {}, 'Logs'), this.logNote), this.logs))

    this.refreshDetail = coalesced(() => this.#loadDetail())
    this.refreshEvents = coalesced(() => this.#loadEvents())
    this.refreshCircuit = coalesced(() => this.#loadCircuit())
    this.refreshFallback = coalesced(async () => this.showFallback(await api(`${plugin(this.name)}/fallback`)))
    this.refreshCharts = coalesced(() => this.#loadCharts())
  }

  start () {
    void this.refreshDetail()
    void this.refreshEvents()
    void this.refreshCircuit()
    void this.refreshFallback()
    void this.refreshCharts()
    this.onResize = () => {
      clearTimeout(this.resizeTimer)
      this.resizeTimer = setTimeout(() => { if (this.chartData) renderCharts(this.charts, this.chartData) }, 150)
    }
    window.addEventListener('resize', this.onResize)
    this.chartTimer = setInterval(() => { if (document.visibilityState === 'visible') void this.refreshCharts() }, CHART_REFRESH_MS)
    this.stopLogs = followLogs(this.name, {
      onLines: (lines, { replace }) => this.#showLines(lines, replace),
      onError: (err) => setText(this.logNote, `cannot read logs: ${err.message}`)
    })
  }

  close () {
    clearInterval(this.chartTimer)
    clearTimeout(this.resizeTimer)
    window.removeEventListener('resize', this.onResize)
    this.stopLogs?.()
  }

  /** An event of the stream about this plugin. */
  onEvent (type) {
    void this.refreshDetail()
    if (type === 'transition' || type === 'restart' || type === 'hook') void this.refreshEvents()
    if (type === 'circuit') void this.refreshCircuit()
    // Its reason follows the plugin's state, health and circuit, also when who answers stays the same (no fallback event).
    if (type === 'fallback' || type === 'transition' || type === 'health' || type === 'circuit') void this.refreshFallback()
  }

  tick () {
    if (this.summary) setText(this.facts.uptime, uptime(this.summary))
  }

  async #loadDetail () {
    const d = await api(plugin(this.name))
    this.summary = d
    setText(this.badge, d.status)
    this.badge.dataset.status = d.status
    setText(this.subtitle, [d.version && `v${d.version}`, d.description].filter(Boolean).join(' · '))
    const f = this.facts
    setText(f.state, d.state)
    setText(f.health, d.health)
    f.health.dataset.health = d.health
    setText(f.pid, d.pid === null ? '–' : String(d.pid))
    setText(f.port, d.port === null ? '–' : String(d.port))
    setText(f.uptime, uptime(d))
    setText(f.restarts, String(d.restartCount))
    setText(f.lastExit, d.lastExit ? `${lastExit(d.lastExit)} at ${time(d.lastExit.at)}` : '–')
    setText(f.nextRestart, d.nextRestartAt ? `in ${duration(Date.parse(d.nextRestartAt) - Date.now())}` : '–')
    setText(f.memory, d.resources && d.pid !== null ? bytes(d.resources.residentMemoryBytes) : '–')
    setText(f.cpu, d.resources ? `${d.resources.cpuSeconds.toFixed(2)} s` : '–')
    setText(f.desired, d.desired)
    setText(f.critical, d.critical ? 'yes' : 'no')
    setText(f.checks, String(d.stats.totalChecks))
    setText(f.success, d.stats.totalChecks > 0 ? percent(d.stats.successRate) : '–')
    setText(f.avg, d.stats.totalChecks > 0 ? ms(d.stats.avgResponseTimeMs) : '–')
    setText(f.trend, d.trend)
    this.#showCalls(d.calls)
  }

  /** Transitions and lifecycle hook runs in one timeline, newest first (the newest 50 of both). */
  async #loadEvents () {
    const { events, hooks } = await api(`${plugin(this.name)}/events?limit=${TIMELINE}`)
    const items = [...events.map((e) => ({ at: e.at, el: transitionItem(e) })), ...hooks.map((r) => ({ at: r.at, el: hookItem(r) }))]
    // Newest first; a stable sort keeps the API's order within each kind.
    items.sort((a, b) => Date.parse(b.at) - Date.parse(a.at))
    this.timeline.replaceChildren(...items.slice(0, TIMELINE).map((i) => i.el))
    if (items.length === 0) this.timeline.append(h('li', { class: 'muted' }, 'no events yet'))
  }

  async #loadCircuit () {
    const c = await api(`${plugin(this.name)}/circuit`)
    const rows = [['State', h('span', { class: 'badge', dataset: { circuit: c.state } }, c.state)], ['Breaker', c.breaker], ['Failures counted', c.failures],
      c.consecutiveFailures !== null ? ['Opens after', `${c.consecutiveFailures} failures in a row`] : ['Opens at', `${percent(c.failureRate)} failed in ${duration(c.windowMs)}`],
      ['Half-open after', duration(c.halfOpenAfterMs)], ['Opened', time(c.openedAt)], ['Trial call at', time(c.halfOpenAt)],
      ['Last failure', c.lastFailure ?? '–'], ['Calls in flight', c.inFlight], ['Queued', c.queued]]
    this.circuit.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))
  }

  /** The fallback state (GET /plugins/:name/fallback, or an activation's answer). */
  showFallback (f) {
    const state = f.active ? f.mode : 'inactive'
    const target = f.target === null ? '–' : 'plugin' in f.target ? `plugin ${f.target.plugin}` : `answer ${f.target.status}`
    const rows = [['State', h('span', { class: 'badge', dataset: { fallback: state } }, f.active ? `active (${f.mode})` : 'inactive')], ['Mode', f.mode], ['Why', f.reason],
      ['Since', time(f.since)], ['Answered by', target], ['Calls it answered', f.servedCalls]]
    this.fallback.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))
    this.fallback.dataset.state = state
    const [activate, deactivate] = this.fallbackButtons
    // Activating without a body needs the manifest's fallback (else 409); only a manual activation can be deactivated.
    activate.disabled = f.mode === 'off'
    activate.title = f.mode === 'off' ? 'the manifest names no fallback (resilience.fallback)' : 'send every call to the fallback until deactivated'
    deactivate.disabled = f.mode !== 'manual'
    deactivate.title = f.mode === 'manual' ? 'end the manual activation' : 'only a manual activation can be deactivated'
  }

  async #loadCharts () {
    const { span, resolution } = RANGES[this.range]
    const until = Date.now()
    const since = new Date(until - span).toISOString()
    const { buckets } = await api(`${plugin(this.name)}/health/history?resolution=${resolution}&since=${encodeURIComponent(since)}&limit=10000`)
    this.chartData = { buckets, range: this.range, until }
    renderCharts(this.charts, this.chartData)
  }

  #setRange (range) {
    this.range = range
    sessionStorage.setItem('plugvisor.range', range)
    for (const b of this.rangeButtons) b.setAttribute('aria-pressed', String(b.textContent === range))
    void this.refreshCharts()
  }

  /** Call statistics, when the API reports them (`calls` in the detail); nothing otherwise. */
  #showCalls (calls) {
    if (!calls || typeof calls !== 'object') { this.calls.hidden = true; return }
    this.calls.hidden = false
    // One level of nesting is shown as dotted keys (outcomes.success), deeper values as JSON.
    const entries = Object.entries(calls).flatMap(([k, v]) => v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.entries(v).map(([k2, v2]) => [`${k}.${k2}`, v2 !== null && typeof v2 === 'object' ? JSON.stringify(v2) : v2])
      : [[k, Array.isArray(v) ? JSON.stringify(v) : v]])
    this.calls.replaceChildren(h('h2', {}, 'Calls'), h('dl', { class: 'kv' }, entries.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v === null ? '–' : String(v))])))
  }

  #showLines (lines, replace) {
    const atBottom = this.logs.scrollTop + this.logs.clientHeight >= this.logs.scrollHeight - 4
    const els = lines.map((l) => h('div', { class: `line ${l.stream}` }, h('time', { datetime: l.at }, time(l.at)), ' ', l.line))
    if (replace) this.logs.replaceChildren(...els)
    else if (els.length > 0) {
      this.logs.querySelector(':scope > .muted')?.remove()
      this.logs.append(...els)
      while (this.logs.childElementCount > TAIL) this.logs.firstElementChild.remove()
    }
    if (this.logs.childElementCount === 0) this.logs.append(h('div', { class: 'muted' }, 'no output yet'))
    setText(this.logNote, `last ${this.logs.childElementCount} lines`)
    if (atBottom) this.logs.scrollTop = this.logs.scrollHeight
  }
}
