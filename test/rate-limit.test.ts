// Management routes are rate limited per client address (429 with Retry-After); probes are not.
import t from 'tap'
import { build, writeConfig } from './helper.js'

t.test('over the limit: 429 PLUGVISOR_RATE_LIMITED with Retry-After; probes and loopback exemption', async (t) => {
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

  const local = await build(t, writeConfig([], { rateLimit: { max: 1 } }), { boot: false })
  for (let i = 0; i < 3; i++) t.equal((await local.inject({ method: 'GET', url: '/plugins', remoteAddress: '127.0.0.1' })).statusCode, 200, 'loopback is exempt by default')
  t.equal((await local.inject({ method: 'GET', url: '/plugins', remoteAddress: '192.0.2.7' })).statusCode, 200)
  t.equal((await local.inject({ method: 'GET', url: '/plugins', remoteAddress: '192.0.2.7' })).statusCode, 429)
})

t.test('the limit is checked before the token: wrong tokens count, and the limit answers 429 before any 401', async (t) => {
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
  t.equal((await guess('a-long-enough-admin-token')).statusCode, 429, 'even the right token waits for the window')
  t.equal((await app.inject({ url: '/no-such-route', remoteAddress: '10.0.0.9' })).statusCode, 429, 'unknown routes count as management calls')
  t.equal((await app.inject({ url: '/health/liveness', remoteAddress: '10.0.0.9' })).statusCode, 200, 'probes stay open')
})
