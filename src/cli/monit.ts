// plugvisor monit: a live table of every plugin in the terminal, like pm2 monit. Each GET /events
// event updates its row at once; GET /plugins is re-read soon after (uptime, pid, memory, which
// events do not carry) and every few seconds. q or Ctrl-C quits and gives the terminal back as it was.
import type { Static } from '@sinclair/typebox'
import type { PluginListWithResources } from '../../routes/schemas.js'
import cli from '../cli.cjs'
// The command line is CommonJS (a `plugvisor status` starts without the ES module loader): its
// exports are taken from the module object.
const { api, apiBase, CliError, columns, duration } = cli
import { openEventStream, type StreamEvent } from './event-stream-client.js'

export type MonitRow = Static<typeof PluginListWithResources>['plugins'][number]

export interface MonitView {
  plugins: MonitRow[]
  url: string
  /** The event stream is open. */
  connected: boolean
  /** The latest events, newest last, as shown under the table. */
  recent: string[]
  /** Terminal size. */
  width: number
  height: number
}

/** How often the list is re-read anyway, and at the soonest after an event (milliseconds). */
const REFRESH_MS = 3000
const AFTER_EVENT_MS = 300
const RECONNECT_MS = 1000
const RECENT_EVENTS = 5

const ENTER = '\x1b[?1049h\x1b[?25l' // the alternate screen, cursor hidden
const LEAVE = '\x1b[?25h\x1b[?1049l'
const HOME = '\x1b[H'
const CLEAR_LINE = '\x1b[K'
const CLEAR_BELOW = '\x1b[J'

function memory (bytes: number | undefined): string {
  if (bytes === undefined || bytes === 0) return '-'
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)}G` : `${Math.round(bytes / 1024 ** 2)}M`
}

/** The whole screen, one string per line, cut to the terminal's size. */
export function renderMonit (v: MonitView): string[] {
  const counts = new Map<string, number>()
  for (const p of v.plugins) counts.set(p.status, (counts.get(p.status) ?? 0) + 1)
  const summary = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([s, n]) => `${n} ${s}`).join(', ')
  const header = [
    `plugvisor monit  ${v.connected ? 'live' : 'disconnected, reconnecting'}  ${v.plugins.length} plugin(s)${summary ? `: ${summary}` : ''}  ${v.url}`,
    'q quits'
  ]
  const rows = [['NAME', 'STATUS', 'STATE', 'HEALTH', 'PID', 'UPTIME', 'RESTARTS', 'MEM', 'CIRCUIT']]
  for (const p of [...v.plugins].sort((a, b) => a.name.localeCompare(b.name))) {
    rows.push([p.name, p.status, p.state, p.health, String(p.pid ?? '-'), duration(p.uptimeMs), String(p.restartCount), memory(p.resources?.residentMemoryBytes), p.circuit ?? '-'])
  }
  const table = columns(rows).split('\n')
  const recent = v.recent.length > 0 ? ['', 'recent events:', ...v.recent.map((e) => `  ${e}`)] : []
  const room = Math.max(v.height - header.length - 1 - recent.length, 2)
  let body = table
  if (table.length > room) body = [...table.slice(0, room - 1), `  ... ${table.length - room + 1} more (a taller terminal shows them)`]
  return [...header, '', ...body, ...recent].map((l) => l.length > v.width ? l.slice(0, v.width) : l)
}

/** What an event says about its plugin's row, applied at once (the next list read fills in the rest). */
export function applyEvent (rows: Map<string, MonitRow>, e: StreamEvent): string | undefined {
  if (!['transition', 'health', 'restart', 'circuit'].includes(e.event)) return undefined
  const d = JSON.parse(e.data) as { plugin: string, from: string | null, to: string | null, reason: string, at: string }
  const row = rows.get(d.plugin)
  if (row !== undefined && d.to !== null) {
    if (e.event === 'transition') row.state = d.to as MonitRow['state']
    if (e.event === 'health') row.health = d.to as MonitRow['health']
    if (e.event === 'circuit') row.circuit = d.to as MonitRow['circuit']
  }
  const time = d.at.slice(11, 19)
  return e.event === 'restart' ? `${time} ${d.plugin}: restart (${d.reason})` : `${time} ${d.plugin}: ${e.event} ${d.from} -> ${d.to} (${d.reason})`
}

export async function monit (_args: string[]): Promise<void> {
  const out = process.stdout
  const input = process.stdin
  if (!out.isTTY || !input.isTTY) {
    throw new CliError('monit needs a terminal (for a one-off table: plugvisor status)')
  }
  const rows = new Map<string, MonitRow>()
  const recent: string[] = []
  let connected = false
  let quit: () => void = () => {}
  const quitting = new Promise<void>((resolve) => { quit = resolve })
  const state = { stopped: false }

  const draw = (): void => {
    const lines = renderMonit({ plugins: [...rows.values()], url: apiBase(), connected, recent, width: out.columns || 100, height: out.rows || 30 })
    out.write(HOME + lines.map((l) => l + CLEAR_LINE).join('\n') + CLEAR_BELOW)
  }
  const readList = async (): Promise<void> => {
    const { plugins } = await api('GET', '/plugins') as Static<typeof PluginListWithResources>
    rows.clear()
    for (const p of plugins) rows.set(p.name, p)
  }
  // One list read at a time; an event asks for one soon, the timer every REFRESH_MS.
  let reading: Promise<void> | undefined
  let soon: NodeJS.Timeout | undefined
  const refresh = (): void => {
    if (state.stopped || reading) return
    reading = readList().then(draw, () => {}).finally(() => { reading = undefined })
  }
  const refreshSoon = (): void => {
    soon ??= setTimeout(() => { soon = undefined; refresh() }, AFTER_EVENT_MS)
  }
  const ticker = setInterval(() => { refresh(); draw() }, REFRESH_MS)

  const onKey = (key: Buffer): void => {
    const k = key.toString('utf8')
    if (k === 'q' || k === 'Q' || k === '\x03') quit()
  }
  const onResize = (): void => draw()
  input.setRawMode(true)
  input.on('data', onKey)
  input.resume()
  out.on('resize', onResize)
  process.once('SIGTERM', quit)
  process.once('SIGINT', quit)
  out.write(ENTER)
  let stream: { close: () => void } | undefined
  try {
    await readList()
    draw()
    // The stream, reopened while monit runs (the daemon restarted, or the connection broke).
    void (async () => {
      while (!state.stopped) {
        try {
          const s = await openEventStream('/events', (e) => {
            const line = applyEvent(rows, e)
            if (line === undefined) return
            recent.push(line)
            if (recent.length > RECENT_EVENTS) recent.shift()
            draw()
            refreshSoon()
          })
          stream = s
          connected = true
          // Events were missed while it was closed: read the list again.
          refresh()
          draw()
          await s.done
        } catch {}
        connected = false
        if (state.stopped) break
        draw()
        await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS))
      }
    })()
    await quitting
  } finally {
    state.stopped = true
    stream?.close()
    clearInterval(ticker)
    clearTimeout(soon)
    out.off('resize', onResize)
    process.off('SIGTERM', quit)
    process.off('SIGINT', quit)
    input.off('data', onKey)
    input.setRawMode(false)
    input.pause()
    out.write(LEAVE)
  }
}
