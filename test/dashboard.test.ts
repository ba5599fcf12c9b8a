// The dashboard at /ui in real headless Chromium against a real daemon (real child processes,
// a real SQLite file, HTTP on loopback). The browser waits on what the page shows, never on
// sleeps; screenshots for the README are written with UPDATE_SCREENSHOTS=1.
import t from 'tap'
import { once } from 'node:events'
import { get, type IncomingMessage } from 'node:http'
import { openDatabase } from '../src/store/database.js'
import { createHealthStore } from '../src/store/health-store.js'
import { createHealthHistory } from '../src/health/health-history.js'
import { build, fixturePlugin, waitForEvent, writeConfig } from './helper.js'
import { browserTest, listen, openBrowser, screenshotPath } from './browser.js'

const ADMIN = 'dashboard-admin-token-0123456789'
const VIEWER = 'dashboard-viewer-token-0123456789'
// Five daemons and five browsers one after another: more than the default on a loaded machine.
t.setTimeout(150000)
/** An http probe every intervalMs, after a startup probe that gives a slow start (a loaded machine) time to bind. */
const probe = (intervalMs: number) => ({ http: { path: '/health' }, intervalMs, startup: { failureThreshold: 100, intervalMs: 100 } })

// What the functions handed to the page use: they run in Chromium, where these exist.
interface PageElement {
  textContent: string | null
  dataset: Record<string, string | undefined>
  getAttribute: (name: string) => string | null
  querySelector: (selector: string) => PageElement | null
  querySelectorAll: (selector: string) => { length: number }
}
declare const document: { querySelector: (selector: string) => PageElement | null, querySelectorAll: (selector: string) => { length: number }, cookie: string }
declare const sessionStorage: { getItem: (key: string) => string | null }
declare const localStorage: { length: number }
declare const requestAnimationFrame: (callback: () => void) => number

t.test('GET /ui serves the page and its modules without a token, with a strict CSP; unknown files are 404', async (t) => {
  const app = await build(t, writeConfig([], { auth: { mode: 'tokens', tokens: [{ name: 'ops', role: 'admin', tokenEnv: 'PV_DASH_ADMIN' }] } }), { boot: false, env: { PV_DASH_ADMIN: ADMIN } })
  const redirect = await app.inject({ method: 'GET', url: '/ui' })
  t.equal(redirect.statusCode, 301)
  t.equal(redirect.headers.location, '/ui/')
  const page = await app.inject({ method: 'GET', url: '/ui/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.body, /<script type="module" src="app.js">/)
  t.match(page.headers['content-security-policy'], /script-src 'self'/)
  t.match(page.headers['content-security-policy'], /frame-ancestors 'none'/)
  const js = await app.inject({ method: 'GET', url: '/ui/app.js' })
  t.equal(js.statusCode, 200)
  t.match(js.headers['content-type'], /javascript/)
  const missing = await app.inject({ method: 'GET', url: '/ui/nope.js' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'PLUGVISOR_NOT_FOUND')
  // Sent as is over a socket (inject and URL parsing would resolve the dots before routing).
  const port = Number(new URL(await listen(app)).port)
  for (const p of ['/ui/../package.json', '/ui/%2e%2e/package.json']) {
    const [res] = await once(get({ host: '127.0.0.1', port, path: p }), 'response') as [IncomingMessage]
    let body = ''
    for await (const chunk of res) body += chunk
    t.equal(res.statusCode, 404, `nothing outside the folder: ${p}`)
    t.equal(JSON.parse(body).code, 'PLUGVISOR_NOT_FOUND')
  }
  t.equal((await app.inject({ method: 'GET', url: '/plugins' })).statusCode, 401, 'the data still needs a token')
})

t.test('GET /plugins carries each plugin\'s latest resource sample', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('one', 'chatty', { args: ['1'] })]), { boot: false })
  t.same((await app.inject({ method: 'GET', url: '/plugins' })).json().plugins[0].resources, null, 'null before the first sample')
  // Sampled once the program runs (it printed), not while it is still being spawned.
  const printed = waitForEvent(app.daemon.supervisor, 'output', (e) => e.plugin === 'one')
  await app.daemon.boot()
  await printed
  app.daemon.resources.sample()
  const [one] = (await app.inject({ method: 'GET', url: '/plugins' })).json().plugins
  t.equal(one.state, 'running')
  t.ok(one.resources.residentMemoryBytes > 0, 'the running process group\'s memory')
  t.same(one.resources, (await app.inject({ method: 'GET', url: '/plugins/one' })).json().resources, 'the same sample as the detail')
})

t.test('the table shows every plugin; a restart clicked on the page restarts the plugin', browserTest, async (t) => {
  const loaded = writeConfig([
    fixturePlugin('echo', 'serve', { port: 'auto', critical: true, healthCheck: probe(500) }),
    fixturePlugin('worker', 'chatty', { args: ['3'] }),
    fixturePlugin('sleeper', 'sleep'),
    fixturePlugin('idle', 'sleep', { autostart: false })
  ])
  const app = await build(t, loaded, { boot: false })
  const base = await listen(app)
  await app.daemon.boot()
  await app.daemon.supervisor.waitFor('echo', (s) => s.status === 'healthy', 10000)

  const { page } = await openBrowser(t)
  await page.goto(`${base}/ui/`)
  await page.waitForSelector('#plugins[data-ready]')
  const api = (await app.inject({ method: 'GET', url: '/plugins' })).json().plugins as { name: string, status: string, pid: number | null }[]
  const rows = await page.$$eval('#plugins .row', (trs) => trs.map((tr) => ({
    name: (tr as unknown as PageElement).dataset.plugin,
    status: (tr as unknown as PageElement).querySelector('.c-status')!.textContent,
    pid: (tr as unknown as PageElement).querySelector('.c-pid')!.textContent
  })))
  t.same(rows.map((r) => r.name), api.map((p) => p.name), 'one row per plugin, in the API\'s order')
  t.same(rows.map((r) => r.status), api.map((p) => p.status))
  t.same(rows.map((r) => r.pid), api.map((p) => p.pid === null ? '–' : String(p.pid)))
  await page.waitForSelector('#conn[data-state="live"]')

  const before = app.daemon.supervisor.summary('echo').pid!
  const restarted = waitForEvent(app.daemon.supervisor, 'transition', (e) => e.plugin === 'echo' && e.to === 'running')
  await page.click('#plugins .row[data-plugin="echo"] button[data-action="restart"]')
  await restarted
  const after = (await app.inject({ method: 'GET', url: '/plugins/echo' })).json().pid
  t.ok(after !== null && after !== before, `a new process (${before} -> ${after})`)
  // The row follows from the event stream, without a reload.
  await page.waitForFunction((pid) => document.querySelector('#plugins .row[data-plugin="echo"] .c-pid')?.textContent === pid, String(after))
  t.pass('the row shows the new pid')
})

t.test('the table: an event applied before the next frame builds on the summary not yet written', browserTest, async (t) => {
  const app = await build(t, writeConfig([]), { boot: false })
  const base = await listen(app)
  const { page } = await openBrowser(t)
  await page.goto(`${base}/ui/`)
  // The table's own module in the page: one row, a re-read summary with a new pid waiting for
  // its frame, then an event's update made from summary() in the same task, as app.js does.
  const shown = await page.evaluate(async () => {
    const module = '/ui/table.js'
    const { PluginTable } = await import(module)
    const table = new PluginTable({ onAction: () => {} })
    const row = { name: 'a', status: 'healthy', state: 'running', health: 'healthy', restartCount: 0, pid: 100, desired: 'running', circuit: 'closed', resources: null, fallback: 'inactive', startedAt: null, nextRestartAt: null }
    table.setAll([row])
    table.update({ ...row, pid: 200, restartCount: 1 })
    table.update({ ...table.summary('a'), state: 'stopping' })
    await new Promise((resolve) => requestAnimationFrame(() => resolve(null)))
    const s = table.summary('a')
    return { pid: s.pid, restartCount: s.restartCount, state: s.state, cell: table.element.querySelector('.row .c-pid').textContent }
  }) as { pid: number, restartCount: number, state: string, cell: string }
  t.same(shown, { pid: 200, restartCount: 1, state: 'stopping', cell: '200' }, 'the event keeps the re-read\'s pid and restarts')
})

t.test('the plugin page charts recorded probe results and shows events, hook runs, circuit and logs', browserTest, async (t) => {
  const loaded = writeConfig([
    fixturePlugin('echo', 'serve', { port: 'auto', healthCheck: probe(100), hooks: { postStart: { http: { path: '/hook/post-start', method: 'POST' } } } })
  ], { history: { flushIntervalMs: 50 } })
  const app = await build(t, loaded, { boot: false })
  const base = await listen(app)
  await app.daemon.boot()
  // Real probes, flushed to SQLite: wait for the rollup the chart will read.
  const minuteBuckets = async () => (await app.inject({ method: 'GET', url: '/plugins/echo/health/history?resolution=minute' })).json().buckets as unknown[]
  await new Promise<void>((resolve) => {
    const check = async () => { if ((await minuteBuckets()).length > 0) resolve(); else app.daemon.healthMonitor.once('probe', () => { setImmediate(check) }) }
    void check()
  })

  const { page } = await openBrowser(t)
  await page.goto(`${base}/ui/#/plugins/echo`)
  await page.waitForSelector('#charts svg.chart[data-points]')
  const points = await page.$$eval('#charts svg.chart', (svgs) => svgs.map((svg) => {
    const s = svg as unknown as PageElement
    return { points: Number(s.dataset.points), dots: s.querySelectorAll('.dots circle').length, bars: s.querySelectorAll('.bars rect').length }
  }))
  t.ok(points[0].points > 0, `the response-time chart has data points (${points[0].points})`)
  t.equal(points[0].dots, points[0].points, 'each one drawn')
  t.ok(points[1].bars > 0, 'the failures chart has bars')
  await page.waitForSelector('#timeline li[data-to="running"]')
  t.pass('the events timeline shows the start')
  await page.waitForSelector('#timeline li.hook[data-hook="postStart"][data-outcome="success"]')
  t.match(await page.textContent('#timeline li.hook'), /hook postStart: success.*POST \/hook\/post-start: 200/, 'and the run of its postStart hook')
  // A run while the page is open comes in live (the SSE event hook).
  const hookRuns = '#timeline li.hook[data-hook="postStart"]'
  t.equal((await page.$$(hookRuns)).length, 1)
  t.equal((await app.inject({ method: 'POST', url: '/plugins/echo/restart' })).statusCode, 200)
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 2, hookRuns)
  t.pass('the restart\'s hook run is added without a reload')
  await page.waitForFunction(() => document.querySelector('#circuit .badge')?.textContent === 'closed')
  t.pass('the circuit is shown')
  await page.waitForFunction(() => /listening \d+/.test(document.querySelector('#logs')?.textContent ?? ''))
  t.pass('the log lines are shown')
  t.ok(await page.$('#calls:not([hidden])') !== null, 'the call statistics section is shown (the detail carries calls)')
  await page.click('.segmented button:text("24h")')
  await page.waitForFunction(() => document.querySelector('#charts svg.chart')?.getAttribute('aria-label') === 'Probe response time, 24h')
  t.pass('the range switches')
})

t.test('the fallback state: a marker in the table and the plugin page follow the API, the page\'s buttons change it', browserTest, async (t) => {
  const loaded = writeConfig([
    fixturePlugin('primary', 'sleep', { resilience: { fallback: { status: 503, body: { maintenance: true } } } }),
    fixturePlugin('plain', 'sleep')
  ])
  const app = await build(t, loaded, { boot: false })
  const base = await listen(app)
  await app.daemon.boot()
  const fallbackOf = async (name: string) => (await app.inject({ method: 'GET', url: `/plugins/${name}/fallback` })).json() as { active: boolean, mode: string }
  t.match(await fallbackOf('primary'), { active: false, mode: 'auto' }, 'running: calls go to the plugin')
  t.equal((await app.inject({ method: 'GET', url: '/plugins' })).json().plugins[0].fallback, 'inactive', 'GET /plugins carries the fallback state')

  const { page } = await openBrowser(t)
  await page.goto(`${base}/ui/`)
  await page.waitForSelector('#plugins[data-ready]')
  await page.waitForSelector('#conn[data-state="live"]')
  t.ok(await page.$('#plugins .row[data-plugin="primary"] .fallback-mark[hidden]') !== null, 'no marker while the plugin answers its calls')

  // An activation through the API reaches the table through the event stream.
  t.equal((await app.inject({ method: 'POST', url: '/plugins/primary/fallback/activate' })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/plugins' })).json().plugins[0].fallback, 'manual', 'GET /plugins says so')
  t.equal((await app.inject({ method: 'GET', url: '/plugins/primary' })).json().fallback, 'manual', 'and so does the detail, which the table re-reads after an event')
  await page.waitForSelector('#plugins .row[data-plugin="primary"] .fallback-mark[data-fallback="manual"]:not([hidden])')
  t.pass('the row is marked')
  t.ok(await page.$('#plugins .row[data-plugin="plain"] .fallback-mark[hidden]') !== null, 'the other row is not')

  await page.click('#plugins .row[data-plugin="primary"] .c-name a')
  await page.waitForSelector('#fallback[data-state="manual"]')
  t.match(await page.textContent('#fallback'), /activated by anonymous/, 'the page says why')
  await page.click('button[data-fallback-action="deactivate"]')
  await page.waitForSelector('#fallback[data-state="inactive"]')
  t.match(await fallbackOf('primary'), { active: false, mode: 'auto' }, 'Deactivate on the page ended the manual activation')
  t.ok(await page.$('button[data-fallback-action="deactivate"]:disabled') !== null, 'nothing left to deactivate')

  await page.click('button[data-fallback-action="activate"]')
  await page.waitForSelector('#fallback[data-state="manual"]')
  t.match(await fallbackOf('primary'), { active: true, mode: 'manual' }, 'Activate on the page activated it')

  // An automatic switch shows up live on the page: deactivate, then stop the plugin.
  await app.inject({ method: 'POST', url: '/plugins/primary/fallback/deactivate' })
  await page.waitForSelector('#fallback[data-state="inactive"]')
  await app.inject({ method: 'POST', url: '/plugins/primary/stop' })
  await page.waitForSelector('#fallback[data-state="auto"]')
  // The reason follows the state (stopping, then stopped) without a fallback event.
  await page.waitForFunction(() => /plugin is stopped/.test(document.querySelector('#fallback')?.textContent ?? ''))
  t.pass('auto mode while the plugin is stopped, live on the page')
  await page.click('.back')
  await page.waitForSelector('#plugins .row[data-plugin="primary"] .fallback-mark[data-fallback="auto"]:not([hidden])')
  t.pass('the table marks an automatic switch too')

  await page.goto(`${base}/ui/#/plugins/plain`)
  await page.waitForSelector('#fallback[data-state="inactive"]')
  t.ok(await page.$('button[data-fallback-action="activate"]:disabled') !== null, 'no fallback named: nothing to activate')
})

t.test('with tokens: the page asks for a token, keeps it in session storage only, and works with it', browserTest, async (t) => {
  const loaded = writeConfig([fixturePlugin('one', 'sleep')], { auth: { mode: 'tokens', tokens: [{ name: 'ops', role: 'admin', tokenEnv: 'PV_DASH_ADMIN' }] } })
  const app = await build(t, loaded, { boot: false, env: { PV_DASH_ADMIN: ADMIN } })
  const base = await listen(app)
  await app.daemon.boot()

  const { page } = await openBrowser(t)
  await page.goto(`${base}/ui/`)
  await page.waitForSelector('#token-dialog[open]')
  await page.screenshot({ path: screenshotPath('token.png') })
  await page.fill('#token-input', 'not-the-token-at-all')
  await page.click('#token-submit')
  await page.waitForFunction(() => document.querySelector('#token-error')?.textContent?.includes('refused'))
  t.pass('a wrong token is refused and asked again')
  await page.fill('#token-input', ADMIN)
  await page.click('#token-submit')
  await page.waitForSelector('#plugins .row[data-plugin="one"]')
  await page.waitForSelector('#conn[data-state="live"]')
  t.pass('the table and the event stream work with the token')
  const storage = await page.evaluate(() => ({ session: sessionStorage.getItem('plugvisor.token'), local: localStorage.length, cookies: document.cookie }))
  t.same(storage, { session: ADMIN, local: 0, cookies: '' }, 'the token is in this tab\'s session storage only')
  const stopped = waitForEvent(app.daemon.supervisor, 'transition', (e) => e.plugin === 'one' && e.to === 'stopped')
  await page.click('#plugins .row[data-plugin="one"] button[data-action="stop"]')
  await stopped
  t.equal(app.daemon.supervisor.summary('one').state, 'stopped', 'an admin action from the page went through with the bearer token')
})

t.test('with a viewer token the page shows everything and says an action needs an admin token', browserTest, async (t) => {
  const loaded = writeConfig([fixturePlugin('one', 'sleep')], { auth: { mode: 'tokens', tokens: [{ name: 'ops', role: 'admin', tokenEnv: 'PV_DASH_ADMIN' }, { name: 'dash', role: 'viewer', tokenEnv: 'PV_DASH_VIEWER' }] } })
  const app = await build(t, loaded, { boot: false, env: { PV_DASH_ADMIN: ADMIN, PV_DASH_VIEWER: VIEWER } })
  const base = await listen(app)
  await app.daemon.boot()
  const pid = app.daemon.supervisor.summary('one').pid

  const { page } = await openBrowser(t)
  await page.goto(`${base}/ui/`)
  await page.waitForSelector('#token-dialog[open]')
  await page.fill('#token-input', VIEWER)
  await page.click('#token-submit')
  await page.waitForSelector('#plugins .row[data-plugin="one"]')
  await page.click('#plugins .row[data-plugin="one"] button[data-action="restart"]')
  await page.waitForFunction(() => document.querySelector('#toasts .toast.error')?.textContent?.includes('needs an admin token'))
  t.pass('the refusal (403) is shown')
  t.equal(app.daemon.supervisor.summary('one').pid, pid, 'nothing was restarted')
  await page.click('#forget-token')
  await page.waitForSelector('#token-dialog[open]')
  t.equal(await page.evaluate(() => sessionStorage.getItem('plugvisor.token')), null, '"Forget token" forgets it and asks again')
})

// A set of plugins in every status, with three hours of probe history written to the store
// beforehand, so the README's pictures show what an operator would see on a working day.
t.test('README screenshots', browserTest, async (t) => {
  const loaded = writeConfig([
    fixturePlugin('api-gateway', 'serve', { port: 'auto', critical: true, version: '2.4.1', description: 'public HTTP entry point', healthCheck: probe(1000), hooks: { postStart: { http: { path: '/hook/warm-up', method: 'POST' } } } }),
    fixturePlugin('search', 'serve', { port: 'auto', version: '1.9.0', healthCheck: probe(1000) }),
    fixturePlugin('cache', 'serve', { port: 'auto', env: { HEALTH: 'warn' }, healthCheck: probe(1000) }),
    fixturePlugin('thumbnailer', 'chatty', { args: ['4'] }),
    fixturePlugin('mailer', 'sleep'),
    // Failed, with a fixed answer as its fallback: the table marks it.
    fixturePlugin('importer', 'exit', { args: ['3'], restart: { maxRestarts: 2 }, resilience: { fallback: { status: 503, body: { retryLater: true } } } }),
    fixturePlugin('reports', 'sleep', { autostart: false })
  ], { history: { flushIntervalMs: 100 } })
  const seeded = seedHistory(loaded.dataDir, 'api-gateway', 3)
  const app = await build(t, loaded, { boot: false })
  const base = await listen(app)
  await app.daemon.boot()
  await app.daemon.supervisor.waitFor('importer', (s) => s.state === 'failed', 10000)
  await app.daemon.supervisor.waitFor('cache', (s) => s.status === 'degraded', 10000)
  app.daemon.resources.sample()

  const { page } = await openBrowser(t, { width: 1280, height: 560 })
  await page.goto(`${base}/ui/`)
  await page.waitForSelector('#plugins[data-ready]')
  await page.waitForFunction(() => document.querySelector('#plugins .row[data-plugin="cache"] .c-status')?.textContent === 'degraded')
  await page.waitForSelector('#plugins .row[data-plugin="importer"] .fallback-mark:not([hidden])')
  await page.screenshot({ path: screenshotPath('dashboard.png') })
  // An operator restart, so the timeline has a story to tell.
  await app.inject({ method: 'POST', url: '/plugins/api-gateway/restart?wait=healthy' })
  await page.setViewportSize({ width: 1280, height: 1180 })
  await page.goto(`${base}/ui/#/plugins/api-gateway`)
  await page.waitForFunction((n) => Number(document.querySelector('#charts svg.chart')?.getAttribute('data-points')) >= n, seeded)
  await page.waitForSelector('#timeline li.hook')
  await page.waitForSelector('#fallback[data-state]')
  await page.screenshot({ path: screenshotPath('plugin.png'), fullPage: true })
  t.pass(`screenshots written (${process.env.UPDATE_SCREENSHOTS === '1' ? 'docs/screenshots' : 'a temp folder'})`)
})

/** Probe results of the last `hours`, one every 20 s, written to the store; returns the minute buckets of the last hour. */
function seedHistory (dataDir: string, plugin: string, hours: number): number {
  const db = openDatabase(dataDir)
  const history = createHealthHistory(createHealthStore(db), { flushIntervalMs: 1000, rawRetentionHours: 24, rollupRetentionDays: 30 })
  const now = Date.now()
  const start = now - hours * 3_600_000
  let i = 0
  for (let at = start; at < now - 60_000; at += 20_000, i++) {
    // A slow spell half an hour ago, and a short outage a quarter of an hour ago.
    const minutesAgo = (now - at) / 60_000
    const slow = minutesAgo > 28 && minutesAgo < 37 ? 14 : 0
    const failure = minutesAgo > 14 && minutesAgo < 17
    history.record({ plugin, probe: 'http', phase: 'regular', result: failure ? 'failure' : 'success', durationMs: 3 + slow + (i % 7) * 0.6 + Math.sin(i / 9) * 1.5, at })
  }
  history.flush()
  db.close()
  return 55
}
