// A web page in the operator's browser cannot change anything (cross-site forgery) nor reach
// the daemon under its own host name (DNS rebinding). The requests carry exactly the headers
// Chromium sends for them.
import t from 'tap'
import { build, fixturePlugin, writeConfig, type Tap } from './helper.js'

const DAEMON = '127.0.0.1:7070'

/** A simple (no preflight) cross-origin POST from a page on https://evil.example: fetch(url, { method: 'POST', mode: 'no-cors', body }). */
const crossSite = {
  host: DAEMON,
  origin: 'https://evil.example',
  'sec-fetch-site': 'cross-site',
  'sec-fetch-mode': 'no-cors',
  'sec-fetch-dest': 'empty',
  'content-type': 'text/plain;charset=UTF-8'
}
/** The same page after evil.example's DNS answered 127.0.0.1 (rebind): same-origin for the browser. */
const rebound = {
  host: 'rebind.evil.example:7070',
  origin: 'http://rebind.evil.example:7070',
  'sec-fetch-site': 'same-origin',
  'sec-fetch-mode': 'cors',
  'sec-fetch-dest': 'empty',
  'content-type': 'application/json'
}

async function daemonWithPlugin (t: Tap, extra: Record<string, unknown> = {}) {
  const app = await build(t, writeConfig([fixturePlugin('x', 'sleep')], extra))
  // Answers once it runs (at once when the boot started it already).
  await app.daemon.supervisor.start('x')
  return app
}

t.test('a cross-site page cannot stop a plugin, stop them all, or register one', async (t) => {
  const app = await daemonWithPlugin(t)
  const stop = await app.inject({ method: 'POST', url: '/plugins/x/stop', headers: crossSite, payload: 'x' })
  t.equal(stop.statusCode, 403)
  t.match(stop.json(), { statusCode: 403, code: 'PLUGVISOR_CROSS_ORIGIN', message: /Sec-Fetch-Site: cross-site/ })
  t.equal(stop.headers['access-control-allow-origin'], undefined, 'no CORS grant')
  const all = await app.inject({ method: 'POST', url: '/plugins/stop?all=true', headers: crossSite, payload: '' })
  t.equal(all.statusCode, 403)
  t.equal(all.json().code, 'PLUGVISOR_CROSS_ORIGIN')
  const register = await app.inject({ method: 'POST', url: '/plugins', headers: { ...crossSite, 'content-type': 'application/json' }, payload: fixturePlugin('evil', 'sleep') })
  t.equal(register.statusCode, 403)
  t.equal(app.daemon.supervisor.summary('x').state, 'running', 'x still runs')
  t.notOk(app.daemon.supervisor.has('evil'), 'nothing was registered')

  // An older browser without Sec-Fetch-*: Origin alone decides.
  const originOnly = await app.inject({ method: 'POST', url: '/plugins/x/stop', headers: { host: DAEMON, origin: 'http://localhost:3000' } })
  t.equal(originOnly.json().code, 'PLUGVISOR_CROSS_ORIGIN', 'another port is another origin')
  const nullOrigin = await app.inject({ method: 'POST', url: '/plugins/x/stop', headers: { host: DAEMON, origin: 'null' } })
  t.equal(nullOrigin.json().code, 'PLUGVISOR_CROSS_ORIGIN', 'a sandboxed frame (Origin: null) too')
  // Another app on localhost is the same site (a site ignores the port): refused as well.
  const sameSite = await app.inject({ method: 'POST', url: '/plugins/x/stop', headers: { ...crossSite, origin: 'http://127.0.0.1:3000', 'sec-fetch-site': 'same-site' } })
  t.equal(sameSite.json().code, 'PLUGVISOR_CROSS_ORIGIN')

  const audit = await app.inject({ url: '/audit?limit=10' })
  t.ok(audit.json().entries.some((e: { status: number, route: string }) => e.status === 403 && e.route === '/plugins/:name/stop'), 'refusals are audited')
})

t.test('OPTIONS answers no CORS grant', async (t) => {
  const app = await build(t, writeConfig([]), { boot: false })
  const res = await app.inject({
    method: 'OPTIONS',
    url: '/plugins/x/stop',
    headers: { host: DAEMON, origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type', 'sec-fetch-mode': 'cors', 'sec-fetch-site': 'cross-site' }
  })
  t.equal(res.headers['access-control-allow-origin'], undefined)
  t.equal(res.headers['access-control-allow-methods'], undefined)
  t.ok(res.statusCode >= 400, `not a successful preflight (${res.statusCode})`)
})

t.test('DNS rebinding: a Host that is not this machine is refused on every route while on loopback', async (t) => {
  const app = await daemonWithPlugin(t)
  const register = await app.inject({ method: 'POST', url: '/plugins', headers: rebound, payload: fixturePlugin('evil', 'sleep') })
  t.equal(register.statusCode, 403)
  t.match(register.json(), { code: 'PLUGVISOR_HOST_NOT_ALLOWED', message: /rebind\.evil\.example/ })
  t.notOk(app.daemon.supervisor.has('evil'))
  for (const url of ['/plugins', '/plugins/x', '/health/liveness', '/metrics', '/events', '/docs/json', '/audit']) {
    const res = await app.inject({ url, headers: { ...rebound, 'sec-fetch-mode': 'cors' } })
    t.equal(res.statusCode, 403, `GET ${url}`)
    t.equal(res.json().code, 'PLUGVISOR_HOST_NOT_ALLOWED')
  }
  const stop = await app.inject({ method: 'POST', url: '/plugins/stop?all=true', headers: rebound })
  t.equal(stop.json().code, 'PLUGVISOR_HOST_NOT_ALLOWED')
  t.equal(app.daemon.supervisor.summary('x').state, 'running')
  for (const host of ['127.0.0.1:7070', 'localhost:7070', '[::1]:7070', 'localhost', '127.0.0.2', 'app.localhost:7070']) {
    t.equal((await app.inject({ url: '/plugins', headers: { host } })).statusCode, 200, `Host ${host} is this machine`)
  }
})

t.test('the verdict on a Host stays right after more different Host headers than the guard remembers', async (t) => {
  const app = await daemonWithPlugin(t)
  // 100 different names, more than the guard keeps its verdict on: half this machine, half not.
  for (let i = 0; i < 100; i++) {
    const host = i % 2 ? `n${i}.localhost:7070` : `n${i}.evil.example:7070`
    t.equal((await app.inject({ url: '/health/liveness', headers: { host } })).statusCode, i % 2 ? 200 : 403, `Host ${host}`)
  }
  for (const [host, status] of [['n0.evil.example:7070', 403], ['late.evil.example', 403], ['n1.localhost:7070', 200], ['late.localhost', 200]] as const) {
    t.equal((await app.inject({ url: '/health/liveness', headers: { host } })).statusCode, status, `Host ${host} again`)
  }
})

t.test('server.allowedHosts names real host names; off loopback, Host is not checked', async (t) => {
  const named = await build(t, writeConfig([], { server: { allowedHosts: ['plugvisor.internal'] } }), { boot: false })
  t.equal((await named.inject({ url: '/plugins', headers: { host: 'plugvisor.internal:7070' } })).statusCode, 200)
  t.equal((await named.inject({ url: '/plugins', headers: { host: 'other.internal:7070' } })).statusCode, 403)
  const open = await build(t, writeConfig([], { server: { host: '0.0.0.0' }, auth: { mode: 'none' } }), { boot: false })
  t.equal((await open.inject({ url: '/plugins', headers: { host: 'plugvisor.example.com' } })).statusCode, 200)
  const cross = await open.inject({ method: 'POST', url: '/plugins/x/stop', headers: { host: 'plugvisor.example.com', origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } })
  t.equal(cross.json().code, 'PLUGVISOR_CROSS_ORIGIN', 'the origin check holds everywhere')

  // Behind a TLS proxy in server.trustProxy: its X-Forwarded-Host is the daemon's own origin.
  const proxied = await build(t, writeConfig([], { server: { trustProxy: ['127.0.0.1'] } }), { boot: false })
  const viaProxy = (remoteAddress: string) => proxied.inject({
    method: 'POST',
    url: '/plugins/x/stop',
    remoteAddress,
    headers: { host: DAEMON, 'x-forwarded-host': 'plugvisor.example', 'x-forwarded-proto': 'https', origin: 'https://plugvisor.example', 'sec-fetch-site': 'same-origin' }
  })
  t.equal((await viaProxy('127.0.0.1')).json().code, 'PLUGVISOR_PLUGIN_NOT_FOUND', 'the dashboard behind the proxy passes the guard')
  t.equal((await viaProxy('192.0.2.9')).json().code, 'PLUGVISOR_CROSS_ORIGIN', 'X-Forwarded-Host from anyone else is not believed')
})

t.test('curl, the CLI and a same-origin dashboard keep working', async (t) => {
  const app = await daemonWithPlugin(t)
  // curl: Host and no Origin.
  t.equal((await app.inject({ method: 'POST', url: '/plugins/x/restart', headers: { host: DAEMON, 'user-agent': 'curl/8.5.0', accept: '*/*' } })).statusCode, 200)
  // The CLI (Node's fetch): Sec-Fetch-Mode cors, no Origin, no Sec-Fetch-Site.
  t.equal((await app.inject({ method: 'POST', url: '/plugins/x/restart', headers: { host: DAEMON, 'sec-fetch-mode': 'cors', 'user-agent': 'node', accept: '*/*' } })).statusCode, 200)
  // The dashboard at /ui, served by the daemon itself.
  const ui = await app.inject({
    method: 'POST',
    url: '/plugins/x/stop',
    headers: { host: DAEMON, origin: `http://${DAEMON}`, referer: `http://${DAEMON}/ui/`, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' }
  })
  t.equal(ui.statusCode, 200)
  t.equal(ui.json().state, 'stopped')
  // A browser typing the URL (Sec-Fetch-Site: none) may read.
  t.equal((await app.inject({ url: '/plugins', headers: { host: DAEMON, 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate' } })).statusCode, 200)
  // Reading from another site is not a change (and gets no CORS grant to read the answer).
  const read = await app.inject({ url: '/plugins', headers: { ...crossSite, 'sec-fetch-mode': 'cors' } })
  t.equal(read.statusCode, 200)
  t.equal(read.headers['access-control-allow-origin'], undefined)
})
