// The plugin table. Built once in one fragment; after that every change is written in place into
// the row's cells, and changes are coalesced per animation frame (a restart of 500 plugins is
// 2,000 events: each row is touched at most once a frame, with its latest summary). Rows are grid
// rows with content-visibility: auto rather than <tr>s: the browser skips style, layout and paint
// of the rows off screen, and a changed cell never re-measures the columns of 500 rows.
import { h, setText } from './dom.js'
import { bytes, duration, uptime } from './format.js'

const COLUMNS = [
  ['name', 'Name'], ['status', 'Status'], ['state', 'State'], ['health', 'Health'], ['restarts', 'Restarts'],
  ['uptime', 'Uptime'], ['circuit', 'Circuit'], ['memory', 'Memory'], ['pid', 'PID'], ['actions', '']
]

/** What the start/stop button offers: stop while the plugin is meant to run, start otherwise. */
const toggle = (s) => (s.desired === 'running' && s.state !== 'stopped' && s.state !== 'failed') ? 'stop' : 'start'

export class PluginTable {
  constructor ({ onAction }) {
    this.rows = new Map()
    this.pending = new Map()
    this.frame = 0
    this.filter = ''
    this.statusFilter = null
    this.onAction = onAction
    this.body = h('div', { class: 'body', role: 'rowgroup', onclick: (e) => this.#clicked(e) })
    this.count = h('span', { class: 'muted' })
    this.input = h('input', { type: 'search', placeholder: 'Filter by name', 'aria-label': 'Filter plugins by name', oninput: () => { this.filter = this.input.value.trim().toLowerCase(); this.#applyFilter() } })
    this.element = h('section', { class: 'card table-card' },
      h('div', { class: 'toolbar' }, h('h1', {}, 'Plugins'), this.count, h('span', { class: 'grow' }), this.input),
      h('div', { class: 'scroll' },
        h('div', { class: 'plugins', id: 'plugins', role: 'table', 'aria-label': 'Plugins' },
          h('div', { class: 'head', role: 'row' }, COLUMNS.map(([k, label]) => h('div', { class: `c-${k}`, role: 'columnheader' }, label))),
          this.body)))
  }

  /** The whole list: rebuilds the rows when the set of plugins changed, else updates in place. */
  setAll (list) {
    const same = list.length === this.rows.size && list.every((s) => this.rows.has(s.name))
    if (same) {
      for (const s of list) this.update(s)
      return
    }
    this.rows.clear()
    this.pending.clear()
    const fragment = document.createDocumentFragment()
    for (const s of list) {
      const row = this.#row(s)
      this.rows.set(s.name, row)
      this.#fill(row, s)
      fragment.append(row.el)
    }
    this.body.replaceChildren(fragment)
    this.#applyFilter()
  }

  /** One plugin changed: written at the next animation frame, latest summary wins. */
  update (summary) {
    if (!this.rows.has(summary.name)) return
    this.pending.set(summary.name, summary)
    if (this.frame === 0) this.frame = requestAnimationFrame(() => this.#flush())
  }

  /** The row's latest summary, including one not yet written (a pending update wins). */
  summary (name) { return this.pending.get(name) ?? this.rows.get(name)?.summary }
  has (name) { return this.rows.has(name) }
  names () { return [...this.rows.keys()] }

  /** Uptimes move on their own; once a second is enough for a clock with 1 s steps. */
  tick () {
    const now = Date.now()
    for (const row of this.rows.values()) setText(row.cells.uptime, uptime(row.summary, now))
  }

  setStatusFilter (status) {
    this.statusFilter = this.statusFilter === status ? null : status
    this.#applyFilter()
    return this.statusFilter
  }

  #flush () {
    this.frame = 0
    for (const [name, s] of this.pending) {
      const row = this.rows.get(name)
      if (row) { this.#fill(row, s); this.#filterRow(row) }
    }
    this.pending.clear()
  }

  #row (s) {
    const cells = {}
    const el = h('div', { class: 'row', role: 'row', dataset: { plugin: s.name } })
    for (const [k] of COLUMNS) {
      const td = h('div', { class: `c-${k}`, role: 'cell' })
      el.append(td)
      cells[k] = td
    }
    // Shown while calls go to the plugin's fallback (the `fallback` field, kept live by the event of that name).
    const fallbackMark = h('span', { class: 'fallback-mark', hidden: true }, 'fallback')
    cells.name.append(h('a', { href: `#/plugins/${encodeURIComponent(s.name)}` }, s.name), fallbackMark)
    const badge = h('span', { class: 'badge' })
    cells.status.append(badge)
    const toggleButton = h('button', { type: 'button', class: 'small', dataset: { action: 'start' } }, 'Start')
    const restartButton = h('button', { type: 'button', class: 'small', dataset: { action: 'restart' } }, 'Restart')
    cells.actions.append(toggleButton, restartButton)
    return { el, cells, badge, toggleButton, fallbackMark, summary: s }
  }

  #fill (row, s) {
    row.summary = s
    const { cells } = row
    setText(row.badge, s.status)
    if (row.badge.dataset.status !== s.status) row.badge.dataset.status = s.status
    setText(cells.state, s.state)
    setText(cells.health, s.health)
    if (cells.health.dataset.health !== s.health) cells.health.dataset.health = s.health
    setText(cells.restarts, String(s.restartCount))
    setText(cells.uptime, uptime(s))
    setText(cells.circuit, s.circuit ?? '–')
    if (cells.circuit.dataset.circuit !== (s.circuit ?? '')) cells.circuit.dataset.circuit = s.circuit ?? ''
    setText(cells.memory, s.resources && s.pid !== null ? bytes(s.resources.residentMemoryBytes) : '–')
    setText(cells.pid, s.pid === null ? '–' : String(s.pid))
    const fallback = s.fallback ?? 'inactive'
    if (row.fallbackMark.dataset.fallback !== fallback) {
      row.fallbackMark.dataset.fallback = fallback
      row.fallbackMark.hidden = fallback === 'inactive'
      row.fallbackMark.title = fallback === 'manual' ? 'calls go to the fallback: activated by an operator' : 'calls go to the fallback while the plugin is unavailable'
    }
    const action = toggle(s)
    if (row.toggleButton.dataset.action !== action) {
      row.toggleButton.dataset.action = action
      row.toggleButton.textContent = action === 'stop' ? 'Stop' : 'Start'
    }
    if (s.nextRestartAt) cells.state.title = `next restart in ${duration(Date.parse(s.nextRestartAt) - Date.now())}`
    else if (cells.state.title) cells.state.title = ''
  }

  #applyFilter () {
    let shown = 0
    for (const row of this.rows.values()) if (this.#filterRow(row)) shown++
    setText(this.count, shown === this.rows.size ? `${this.rows.size}` : `${shown} of ${this.rows.size}`)
  }

  #filterRow (row) {
    const visible = (this.filter === '' || row.summary.name.toLowerCase().includes(this.filter)) &&
      (this.statusFilter === null || row.summary.status === this.statusFilter)
    if (row.el.hidden === visible) row.el.hidden = !visible
    return visible
  }

  #clicked (e) {
    const button = e.target.closest('button[data-action]')
    if (!button) return
    const name = button.closest('.row').dataset.plugin
    this.onAction(name, button.dataset.action, button)
  }
}
