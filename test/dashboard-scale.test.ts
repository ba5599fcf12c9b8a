// The dashboard with 500 plugins (real `sleep` processes) in headless Chromium: every row is
// there, and after a restart of all of them every row shows its new process, from the event
// stream alone. The figures (first paint, time until every row is current) are printed, not
// asserted: budgets are bench/dashboard.js's business (npm run bench).
import t from 'tap'
import { build, writeConfig } from './helper.js'
import { browserTest, listen, openBrowser } from './browser.js'

const PLUGINS = 500
// 500 starts and restarts and a browser: on a loaded 2-core machine this file needs more than the default.
t.setTimeout(180000)

declare const document: { querySelectorAll: (selector: string) => Iterable<{ dataset: Record<string, string>, querySelector: (s: string) => { textContent: string | null } | null }> }

t.test(`${PLUGINS} plugins: every row, then every restart, live`, browserTest, async (t) => {
  const names = Array.from({ length: PLUGINS }, (_, i) => `p${String(i).padStart(3, '0')}`)
  const app = await build(t, writeConfig(names.map((name) => ({ name, command: 'sleep', args: ['3600'], stop: { timeoutMs: 5000 } }))), { boot: false })
  const base = await listen(app)
  await app.daemon.boot()
  t.equal(app.daemon.supervisor.list().filter((p) => p.state === 'running').length, PLUGINS, 'all running')

  const { page } = await openBrowser(t)
  await page.goto(`${base}/ui/`)
  await page.waitForSelector(`#plugins[data-ready="${PLUGINS}"]`)
  const firstPaintMs = await page.evaluate(() => performance.getEntriesByName('plugvisor:table-painted')[0].startTime)
  t.same(await page.$$eval('#plugins .row', (rows) => rows.map((r) => (r as unknown as { dataset: Record<string, string> }).dataset.plugin)), names, 'one row per plugin')
  await page.waitForSelector('#conn[data-state="live"]')

  // What the page asks the daemon while the 2,000 events of the restart stream in.
  const reads: string[] = []
  page.on('request', (r) => { const u = new URL(r.url()); if (r.method() === 'GET' && u.pathname.startsWith('/plugins')) reads.push(u.pathname) })
  const t0 = performance.now()
  const restarted = (await app.inject({ method: 'POST', url: '/plugins/restart?all=true' })).json().plugins as { name: string, pid: number }[]
  const want = Object.fromEntries(restarted.map((p) => [p.name, String(p.pid)]))
  await page.waitForFunction((w) => {
    for (const row of document.querySelectorAll('#plugins .row')) {
      if (row.querySelector('.c-pid')?.textContent !== w[row.dataset.plugin] || row.querySelector('.c-state')?.textContent !== 'running') return false
    }
    return true
  }, want, { timeout: 90000, polling: 100 })
  const currentMs = performance.now() - t0
  t.pass('every row shows its new pid and running')
  // A storm is answered with whole-list reads, each after the events pause (or every 2 s while
  // they do not): the first events gather before any request goes out, so no single plugin is
  // read before the first list.
  const firstList = reads.indexOf('/plugins')
  t.ok(firstList >= 0, 'the list is re-read after the storm')
  t.same(reads.slice(0, firstList), [], 'no single plugin is re-read before the storm\'s list')
  t.comment(`reads while the rows caught up: ${reads.filter((r) => r === '/plugins').length} of the list, ${reads.filter((r) => r !== '/plugins').length} of one plugin`)
  t.comment(`first paint of ${PLUGINS} rows: ${firstPaintMs.toFixed(0)} ms after navigation start (budget 1 s, measured by npm run bench)`)
  t.comment(`restart of ${PLUGINS}: every row current ${currentMs.toFixed(0)} ms after the request was sent`)
})
