#!/usr/bin/env node
// The dashboard at /ui with 500 plugins, in Debian's headless Chromium (playwright-core, no
// browser download):
//   first paint   navigation start -> the table's 500 rows painted (the page's
//                 'plugvisor:table-painted' mark, a task after the frame they went in); 5 loads
//   live updates  POST /plugins/restart?all=true (2,000 events on GET /events) while the page
//                 records every animation frame and long task; until every row shows its new pid
//   daemon CPU    20 s of the daemon's CPU with no page, then 20 s with the table open (before the rest)
// The daemon is `node dist/src/bin.cjs serve` in its own process with 500 `sleep 3600` plugins.
//   npm run build && node bench/dashboard.js [--plugins 500] [--loads 5] [--idle-seconds 20]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { chromium } from 'playwright-core'
import { cleanup, nowMs, round, sleep, sleepPlugin, startDaemon, stats, stopProcess, trackStray, until, writeConfig, plugvisorCpuSeconds } from './lib.js'

const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync']

/* global requestAnimationFrame -- the functions handed to page.evaluate run in the browser */
export async function benchDashboard ({ plugins = 500, loads = 5, idleSeconds = 20 } = {}) {
  const names = Array.from({ length: plugins }, (_, i) => `p${String(i).padStart(3, '0')}`)
  const config = writeConfig(names.map((n) => sleepPlugin(n, { autostart: true })))
  const { child: daemon, base } = await startDaemon(config, { name: 'plugvisor daemon' })
  const pool = new Pool(base, { connections: 2 })
  const api = async (method, url) => {
    const res = await pool.request({ method, path: url })
    const body = await res.body.json()
    if (res.statusCode !== 200) throw new Error(`${method} ${url}: ${res.statusCode}`)
    return body
  }
  const profile = mkdtempSync(path.join(tmpdir(), 'plugvisor-bench-chromium-'))
  let context
  try {
    const list = await until(async () => {
      try {
        const { plugins: l } = await api('GET', '/plugins')
        return l.length === plugins && l.every((p) => p.state === 'running') ? l : undefined
      } catch { return undefined }
    }, 60000, `${plugins} plugins running`, 200)
    for (const p of list) trackStray(p.pid)

    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 } })
    const page = context.pages()[0] ?? await context.newPage()

    // Daemon CPU, first (a restart burst leaves work behind): 500 idle with no page, then with
    // the table open (its list refresh every 15 s, the event stream's keep-alives).
    const cpuOver = async () => {
      const c0 = plugvisorCpuSeconds(daemon.pid)
      const w0 = nowMs()
      await sleep(idleSeconds * 1000)
      return (plugvisorCpuSeconds(daemon.pid) - c0) / ((nowMs() - w0) / 1000) * 100
    }
    await sleep(3000)
    const cpuClosed = await cpuOver()
    await page.goto(`${base}/ui/`)
    await page.waitForSelector(`#plugins[data-ready="${plugins}"]`, { timeout: 30000 })
    await sleep(2000)
    const cpuOpen = await cpuOver()

    // First paint, `loads` fresh navigations.
    const paints = []
    for (let i = 0; i < loads; i++) {
      await page.goto('about:blank')
      await page.goto(`${base}/ui/`)
      await page.waitForSelector(`#plugins[data-ready="${plugins}"]`, { timeout: 30000 })
      paints.push(await page.evaluate(() => performance.getEntriesByName('plugvisor:table-painted')[0].startTime))
    }
    const rows = await page.$$eval('#plugins .row', (trs) => trs.length)
    if (rows !== plugins) throw new Error(`${rows} rows for ${plugins} plugins`)

    // Live updates: every frame and long task while 500 restarts stream in.
    await page.waitForSelector('#conn[data-state="live"]')
    await page.evaluate(() => {
      const rec = { frames: [], longTasks: [] }
      window.__bench = rec
      const frame = (t) => { rec.frames.push(t); if (!rec.stop) requestAnimationFrame(frame) }
      requestAnimationFrame(frame)
      rec.observer = new PerformanceObserver((l) => { for (const e of l.getEntries()) rec.longTasks.push(e.duration) })
      rec.observer.observe({ type: 'longtask', buffered: false })
    })
    const t0 = nowMs()
    const { plugins: restarted } = await api('POST', '/plugins/restart?all=true')
    const answeredMs = nowMs() - t0
    for (const p of restarted) trackStray(p.pid)
    const want = Object.fromEntries(restarted.map((p) => [p.name, String(p.pid)]))
    await page.waitForFunction((w) => {
      for (const tr of document.querySelectorAll('#plugins .row')) {
        if (tr.querySelector('.c-pid').textContent !== w[tr.dataset.plugin] || tr.querySelector('.c-state').textContent !== 'running') return false
      }
      return true
    }, want, { timeout: 60000, polling: 50 })
    const shownMs = nowMs() - t0
    const rec = await page.evaluate(() => {
      const r = window.__bench
      r.stop = true
      r.observer.disconnect()
      return { frames: r.frames, longTasks: r.longTasks }
    })
    const gaps = rec.frames.slice(1).map((t, i) => t - rec.frames[i])
    const gapStats = stats(gaps)

    return {
      plugins,
      firstPaint: { ...mapRound(stats(paints)), all: paints.map((p) => round(p, 1)) },
      liveUpdate: {
        events: plugins * 4,
        restartAnsweredMs: round(answeredMs, 1),
        allRowsShownMs: round(shownMs, 1),
        frames: rec.frames.length,
        frameGapMs: mapRound(gapStats),
        longTasks: rec.longTasks.length,
        longTaskMaxMs: round(Math.max(0, ...rec.longTasks), 1),
        longTaskTotalMs: round(rec.longTasks.reduce((a, b) => a + b, 0), 1)
      },
      daemonCpuPercent: { dashboardOpen: round(cpuOpen, 3), noDashboard: round(cpuClosed, 3), added: round(cpuOpen - cpuClosed, 3), windowSeconds: idleSeconds }
    }
  } finally {
    await context?.close().catch(() => {})
    rmSync(profile, { recursive: true, force: true })
    await pool.close()
    await stopProcess(daemon, 15000)
  }
}

function mapRound (s) {
  return { n: s.n, median: round(s.median, 1), p95: round(s.p95, 1), min: round(s.min, 1), max: round(s.max, 1) }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { plugins: { type: 'string', default: '500' }, loads: { type: 'string', default: '5' }, 'idle-seconds': { type: 'string', default: '20' } } })
  const limit = setTimeout(() => {
    process.stderr.write('bench/dashboard: over the time limit of 3 minutes\n')
    cleanup()
    process.exit(2)
  }, 180000)
  limit.unref()
  try {
    const r = await benchDashboard({ plugins: Number(values.plugins), loads: Number(values.loads), idleSeconds: Number(values['idle-seconds']) })
    process.stdout.write(JSON.stringify(r) + '\n')
    process.stdout.write(`dashboard, ${r.plugins} plugins: first paint median ${r.firstPaint.median} ms (max ${r.firstPaint.max}; budget <= 1000 ms); ` +
      `${r.liveUpdate.events} events: every row current ${r.liveUpdate.allRowsShownMs} ms after the restart was sent, frame gap p95 ${r.liveUpdate.frameGapMs.p95} ms, max ${r.liveUpdate.frameGapMs.max} ms, ` +
      `${r.liveUpdate.longTasks} long tasks (max ${r.liveUpdate.longTaskMaxMs} ms); daemon CPU ${r.daemonCpuPercent.dashboardOpen} % open vs ${r.daemonCpuPercent.noDashboard} % without\n`)
  } finally {
    cleanup()
  }
}
