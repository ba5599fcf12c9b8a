// The dashboard: the plugin table (#/) and one plugin's page (#/plugins/NAME), kept live from
// GET /events. An event updates the row at once from its `to`, then that plugin's summary is
// re-read (one request per plugin at a time); GET /plugins is read at start, after every
// reconnect of the stream (it has no replay), when very many plugins changed at once, and every
// LIST_REFRESH_MS for memory, which no event carries.
import { ApiError, api, followEvents, plugin, token, whenUnauthorized } from './api.js'
import { h, setText, toast } from './dom.js'
import { PluginTable } from './table.js'
import { PluginPage } from './plugin-page.js'

const LIST_REFRESH_MS = 15_000
// More plugins than this waiting for a re-read: one GET /plugins instead of one request each.
const BULK_REFRESH_AT = 50
const BULK_INTERVAL_MS = 1000
const STORM_QUIET_MS = 250
const STORM_MAX_WAIT_MS = 2000
const READ_DELAY_MS = 50
const PARALLEL_READS = 4
const STATUS_ORDER = ['healthy', 'degraded', 'unknown', 'unhealthy', 'restarting', 'failed', 'stopped']

const view = document.getElementById('view')
const conn = document.getElementById('conn')
const counts = document.getElementById('counts')
const table = new PluginTable({ onAction: act })
let page = null
let loaded = false

// ---- token ----

const dialog = document.getElementById('token-dialog')
const tokenInput = document.getElementById('token-input')
const tokenError = document.getElementById('token-error')
const forget = document.getElementById('forget-token')
let stopEvents = null

function askToken (message) {
  tokenError.hidden = !message
  tokenError.textContent = message ?? ''
  if (!dialog.open) dialog.showModal()
  tokenInput.focus()
}

whenUnauthorized(() => {
  const had = token.get() !== null
  token.clear()
  forget.hidden = true
  stopEvents?.()
  stopEvents = null
  setConn('unauthorized')
  askToken(had ? 'That token was refused (401). Paste a valid one.' : null)
})

document.getElementById('token-form').addEventListener('submit', (e) => {
  const value = tokenInput.value.trim()
  if (value === '') { e.preventDefault(); return }
  token.set(value)
  tokenInput.value = ''
  forget.hidden = false
  void connect()
})
dialog.addEventListener('cancel', (e) => e.preventDefault())
forget.addEventListener('click', () => {
  token.clear()
  location.reload()
})

// ---- live data ----

function setConn (state) {
  conn.dataset.state = state
  setText(conn, state === 'live' ? 'live' : state === 'reconnecting' ? 'reconnecting…' : state === 'unauthorized' ? 'no token' : 'connecting')
}

async function loadList () {
  const { plugins } = await api('/plugins')
  const first = !loaded
  table.setAll(plugins)
  loaded = true
  renderCounts()
  if (first) {
    // First paint of the table: a task after the next frame (rAF runs before that frame's paint).
    requestAnimationFrame(() => setTimeout(() => {
      performance.mark('plugvisor:table-painted')
      table.element.querySelector('.plugins').dataset.ready = String(plugins.length)
    }, 0))
  }
}

const dirty = new Set()
let reading = 0
let readTimer = 0
let lastEventAt = 0
let stormSince = 0
let lastBulk = 0

function markDirty (name) {
  dirty.add(name)
  lastEventAt = performance.now()
  // Re-reads wait a moment: the first events of a storm gather before any request goes out.
  if (readTimer === 0 && reading < PARALLEL_READS) readTimer = setTimeout(pump, READ_DELAY_MS)
}

function pump () {
  readTimer = 0
  const now = performance.now()
  if (dirty.size > BULK_REFRESH_AT) {
    // A storm (a restart of everything): the rows follow the events at once; the whole list is
    // re-read once the events pause for STORM_QUIET_MS, or every STORM_MAX_WAIT_MS while they
    // do not, and never more often than once every BULK_INTERVAL_MS, so neither the page nor the
    // daemon does the same work several times over while hundreds of plugins change.
    if (reading > 0) return
    if (stormSince === 0) stormSince = now
    const due = Math.max(Math.min(lastEventAt + STORM_QUIET_MS, stormSince + STORM_MAX_WAIT_MS), lastBulk + BULK_INTERVAL_MS)
    if (now < due) { readTimer = setTimeout(pump, due - now); return }
    stormSince = 0
    lastBulk = now
    dirty.clear()
    reading++
    loadList().catch(report).finally(() => { reading--; if (dirty.size > 0 && readTimer === 0) pump() })
    return
  }
  stormSince = 0
  while (reading < PARALLEL_READS && dirty.size > 0) {
    const [name] = dirty
    dirty.delete(name)
    reading++
    api(plugin(name))
      .then((d) => { table.update(d); scheduleCounts() })
      .catch((err) => { if (!(err instanceof ApiError && err.status === 404)) report(err); else void loadList() })
      .finally(() => { reading--; if (dirty.size > 0 && readTimer === 0) pump() })
  }
}

function onEvent (type, e) {
  if (!table.has(e.plugin)) { void loadList().catch(report); return }
  const s = table.summary(e.plugin)
  // The event says enough for the row now; the re-read brings pid, restarts, status.
  if (type === 'transition') table.update({ ...s, state: e.to })
  else if (type === 'health') table.update({ ...s, health: e.to })
  else if (type === 'circuit') table.update({ ...s, circuit: e.to })
  else if (type === 'fallback') table.update({ ...s, fallback: e.to })
  markDirty(e.plugin)
  if (page?.name === e.plugin) page.onEvent(type)
}

async function connect () {
  stopEvents?.()
  try {
    await loadList()
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) report(err)
    return
  }
  let opened = false
  stopEvents = followEvents({
    onEvent,
    onState: setConn,
    // The first open follows the list just read; a reopen may have missed events.
    onOpen: () => { if (opened) void loadList().catch(report); opened = true }
  })
  route()
}

setInterval(() => {
  table.tick()
  page?.tick()
}, 1000)
setInterval(() => {
  if (loaded && stopEvents && document.visibilityState === 'visible' && page === null) void loadList().catch(report)
}, LIST_REFRESH_MS)

// ---- header counts ----

let countsFrame = 0
function scheduleCounts () {
  if (countsFrame === 0) countsFrame = requestAnimationFrame(() => { countsFrame = 0; renderCounts() })
}

function renderCounts () {
  const by = {}
  for (const name of table.names()) {
    const st = table.summary(name).status
    by[st] = (by[st] ?? 0) + 1
  }
  counts.replaceChildren(...STATUS_ORDER.filter((st) => by[st]).map((st) =>
    h('button', { type: 'button', class: 'count', dataset: { status: st }, 'aria-pressed': String(table.statusFilter === st), onclick: () => { table.setStatusFilter(st); location.hash = '#/'; renderCounts() } },
      h('b', {}, String(by[st])), ` ${st}`)))
}

// ---- actions ----

/** One POST of an operator's action (`path` below the plugin's); done(answer) on success, a toast on failure. */
async function post (name, path, label, button, done) {
  if (button) button.disabled = true
  let answer
  try {
    answer = await api(`${plugin(name)}/${path}`, { method: 'POST' })
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) toast(`${name}: ${label} needs an admin token`, 'error')
    else if (!(err instanceof ApiError && err.status === 401)) toast(`${name}: ${label} failed: ${err.message}`, 'error')
    return
  } finally {
    if (button) button.disabled = false
  }
  // After the button is enabled again: done() may decide what the button offers now.
  done(answer)
}

/** start, stop, restart: the answer is the plugin's summary. */
function act (name, op, button) {
  return post(name, op, op, button, (s) => {
    table.update({ ...table.summary(name), ...s })
    toast(`${name}: ${op} done (${s.state})`)
  })
}

/** activate, deactivate: the answer is the fallback state (the `fallback` event updates the row). */
function actFallback (name, op, button) {
  return post(name, `fallback/${op}`, `fallback ${op}`, button, (f) => {
    if (page?.name === name) page.showFallback(f)
    toast(`${name}: fallback ${f.active ? `active (${f.mode})` : 'inactive'}: ${f.reason}`)
  })
}

function report (err) {
  if (err instanceof ApiError && err.status === 401) return
  console.error(err)
  toast(err.message, 'error')
}

// ---- routing ----

function route () {
  if (!loaded) return
  const m = /^#\/plugins\/(.+)$/.exec(location.hash)
  const name = m ? decodeURIComponent(m[1]) : null
  if (page && page.name === name) return
  page?.close()
  page = null
  if (name === null) {
    view.replaceChildren(table.element)
    document.title = 'plugvisor'
    return
  }
  if (!table.has(name)) {
    view.replaceChildren(h('section', { class: 'card' }, h('h1', {}, 'Not found'), h('p', {}, `No plugin named ${name} is loaded. `, h('a', { href: '#/' }, 'Back to the plugins'))))
    return
  }
  page = new PluginPage(name, { act, actFallback })
  view.replaceChildren(page.element)
  document.title = `${name} · plugvisor`
  page.start()
}

window.addEventListener('hashchange', route)
forget.hidden = token.get() === null
void connect()
