// Management routes are rate limited per client address (429 with Retry-After); probes are not.
import t from 'tap'
import { request, createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { build, writeConfig, type Tap } from './helper.js'

t.test('over the limit: 429 PLUGVISOR_RATE_LIMITED with Retry-After; probes free; loopback counted unless exempted', async (t) => {
  const app = await build(t, writeConfig([], { rateLimit: { max: 3, windowMs: 60000, exemptLoopback: false } }), { boot: false })
  const from = (remoteAddress: string, url: string) => app.inject({ method: 'GET', url, remoteAddress })
  for (let i = 0; i < 3; i++) t.equal((await from('10.0.0.1', '/plugins')).statusCode, 200, `call ${i + 1} passes`)
  const limited = await from('10.0.0.1', '/plugins')
  t.equal(limited.statusCode, 429)
  t.match(limited.json(), { statusCode: 429, code: 'PLUGVISOR_RATE_LIMITED', error: 'Too Many Requests' })
  t.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After says when to come back')
  t.equal((await from('10.0.0.2', '/plugins')).statusCode, 200, 'another client has its own budget')
  for (let i = 0; i < 5; i++) t.equal((await from('10.0.0.1', '/health/liveness')).statusCode, 200, 'probes are not limited')
  t.equal((await from('10.0.0.1', '/metrics')).statusCode, 200, '/metrics is not limited')

  // Behind a same-host proxy every client is 127.0.0.1: an exemption by default would exempt everyone.
  const local = await build(t, writeConfig([], { rateLimit: { max: 1 } }), { boot: false })
  t.equal((await local.inject({ method: 'GET', url: '/plugins', remoteAddress: '127.0.0.1' })).statusCode, 200)
  t.equal((await local.inject({ method: 'GET', url: '/plugins', remoteAddress: '127.0.0.1' })).statusCode, 429, 'loopback is limited by default')
  const exempt = await build(t, writeConfig([], { rateLimit: { max: 1, exemptLoopback: true } }), { boot: false })
  for (let i = 0; i < 3; i++) t.equal((await exempt.inject({ method: 'GET', url: '/plugins', remoteAddress: '127.0.0.1' })).statusCode, 200, 'exemptLoopback: true exempts it')
  t.equal((await exempt.inject({ method: 'GET', url: '/plugins', remoteAddress: '192.0.2.7' })).statusCode, 200)
  t.equal((await exempt.inject({ method: 'GET', url: '/plugins', remoteAddress: '192.0.2.7' })).statusCode, 429)
})

t.test('the limit is checked before the token: wrong tokens count and get 429; a valid token has its own budget', async (t) => {
  const app = await build(t, writeConfig([], {
    rateLimit: { max: 2, windowMs: 60000, exemptLoopback: false },
    auth: { mode: 'tokens', tokens: [{ name: 'ops', role: 'admin', tokenEnv: 'PV_RATE_ADMIN' }] }
  }), { boot: false, env: { PV_RATE_ADMIN: 'a-long-enough-admin-token' } })
  const guess = (token: string) => app.inject({ method: 'GET', url: '/plugins', remoteAddress: '10.0.0.9', headers: { authorization: `Bearer ${token}` } })
  t.equal((await guess('wrong-guess-number-1')).statusCode, 401)
  t.equal((await guess('wrong-guess-number-2')).statusCode, 401)
  const third = await guess('wrong-guess-number-3')
  t.equal(third.statusCode, 429, 'a third guess within the window is refused by the limit')
  t.equal(third.json().code, 'PLUGVISOR_RATE_LIMITED')
  t.equal((await guess('wrong-guess-number-4')).statusCode, 429, 'guessing stays refused')
  t.equal((await guess('a-long-enough-admin-token')).statusCode, 200, 'the operator is not locked out by the noise from its address')
  t.equal((await guess('a-long-enough-admin-token')).statusCode, 200)
  t.equal((await guess('a-long-enough-admin-token')).statusCode, 429, 'the token holder has a budget of its own, whatever its address')
  t.equal((await app.inject({ method: 'GET', url: '/plugins', remoteAddress: '10.0.0.10', headers: { authorization: 'Bearer a-long-enough-admin-token' } })).statusCode, 429, 'and keeps it from another address')
  t.equal((await app.inject({ url: '/no-such-route', remoteAddress: '10.0.0.9' })).statusCode, 429, 'unknown routes count as management calls')
  t.equal((await app.inject({ url: '/health/liveness', remoteAddress: '10.0.0.9' })).statusCode, 200, 'probes stay open')
})

/** GET through the proxy from a local address of its own (127.0.0.0/8 is all this machine). */
function getFrom (localAddress: string, port: number, path: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, localAddress }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => resolve({ status: res.statusCode!, body }))
    }).on('error', reject).end()
  })
}

/** A reverse proxy as nginx would be: it adds the peer's address to X-Forwarded-For. */
async function startProxy (t: Tap, target: number): Promise<number> {
  const proxy = createServer((req, res) => {
    const forwarded = [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', ')
    const up = request({ host: '127.0.0.1', port: target, path: req.url, method: req.method, localAddress: '127.0.0.1', headers: { ...req.headers, 'x-forwarded-for': forwarded } }, (r: IncomingMessage) => {
      res.writeHead(r.statusCode!, r.headers)
      r.pipe(res)
    })
    up.on('error', () => { res.writeHead(502).end() })
    req.pipe(up)
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { proxy.closeAllConnections(); proxy.close(() => resolve()) }))
  return (proxy.address() as AddressInfo).port
}

async function daemonBehindProxy (t: Tap, trustProxy: string[]): Promise<{ proxy: number, app: Awaited<ReturnType<typeof build>> }> {
  const app = await build(t, writeConfig([], { server: { trustProxy }, rateLimit: { max: 2, windowMs: 60000 } }), { boot: false })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, proxy: await startProxy(t, (app.server.address() as AddressInfo).port) }
}

t.test('behind a proxy in server.trustProxy, each forwarded client has its own budget', async (t) => {
  const { proxy, app } = await daemonBehindProxy(t, ['127.0.0.1'])
  t.equal((await getFrom('127.0.0.2', proxy, '/plugins')).status, 200)
  t.equal((await getFrom('127.0.0.2', proxy, '/plugins')).status, 200)
  const limited = await getFrom('127.0.0.2', proxy, '/plugins')
  t.equal(limited.status, 429, 'the noisy client is limited')
  t.equal(JSON.parse(limited.body).code, 'PLUGVISOR_RATE_LIMITED')
  t.equal((await getFrom('127.0.0.3', proxy, '/plugins')).status, 200, 'another client behind the same proxy is not')
  t.equal((await getFrom('127.0.0.3', proxy, '/plugins/nope/stop')).status, 404)
  const reach = await new Promise<{ status: number, body: string }>((resolve, reject) => {
    request({ host: '127.0.0.1', port: proxy, path: '/plugins/nope/stop', method: 'POST', localAddress: '127.0.0.4' }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => resolve({ status: res.statusCode!, body }))
    }).on('error', reject).end()
  })
  t.equal(reach.status, 404)
  const rows = app.daemon.audit.list({ limit: 1 }) as { remote: string | null }[]
  t.equal(rows[0].remote, '127.0.0.4', 'the audit log names the forwarded client')
})

t.test('without trustProxy, the proxy is the client: X-Forwarded-For is not believed', async (t) => {
  const { proxy } = await daemonBehindProxy(t, [])
  t.equal((await getFrom('127.0.0.2', proxy, '/plugins')).status, 200)
  t.equal((await getFrom('127.0.0.2', proxy, '/plugins')).status, 200)
  t.equal((await getFrom('127.0.0.3', proxy, '/plugins')).status, 429, 'every client behind it shares one budget')
})

t.test('a trustProxy entry that is no address or CIDR stops the start with file, path and reason', async (t) => {
  t.throws(() => writeConfig([], { server: { trustProxy: ['127.0.0.1', 'proxy.example'] } }), { code: 'PLUGVISOR_INVALID_CONFIG', problems: [{ path: '/server/trustProxy/1', reason: /not an address/ }] })
})
