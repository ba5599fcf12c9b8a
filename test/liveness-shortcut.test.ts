// GET /health/liveness over real HTTP is answered in front of the framework (src/liveness-shortcut.ts)
// with the answer the route gives; what the shortcut is not sure of goes to the framework.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { request } from 'undici'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { buildServer } from '../src/server.js'
import { LivenessShortcut } from '../src/liveness-shortcut.js'
import { writeConfig, type Tap } from './helper.js'

const ADMIN = 'an-admin-token-long-enough-0123456789'

/** The daemon listening on 127.0.0.1, and the requests that reached the framework's hooks. */
async function listening (t: Tap, extra: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): Promise<{ app: FastifyInstance, base: string, framework: string[] }> {
  const app = await buildServer({ loaded: writeConfig([], extra), logger: false, boot: false, env })
  t.teardown(() => app.close())
  const framework: string[] = []
  app.addHook('onRequest', (req, _reply, done) => { framework.push(`${req.method} ${req.url}`); done() })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, base, framework }
}

async function get (url: string, opts: Parameters<typeof request>[1] = {}) {
  const res = await request(url, opts)
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text }
}

const durationCount = async (app: FastifyInstance, status = 200): Promise<number> => {
  const text = (await app.inject({ url: '/metrics' })).body
  const m = new RegExp(`^plugvisor_http_request_duration_seconds_count\\{method="GET",route="/health/liveness",status_code="${status}"\\} (\\d+)$`, 'm').exec(text)
  return m ? Number(m[1]) : 0
}

t.test('the shortcut answers what the route answers, with the request id sequence and the duration metric', async (t) => {
  const { app, base, framework } = await listening(t)
  const fast = await get(`${base}/health/liveness`)
  t.same(framework, [], 'the framework did not see it')
  t.equal(fast.status, 200)
  // The same request through the framework (a query string is not the shortcut's).
  const routed = await get(`${base}/health/liveness?via=route`)
  t.same(framework, ['GET /health/liveness?via=route'])
  t.equal(routed.status, 200)
  for (const h of ['cache-control', 'content-type']) t.equal(fast.headers[h], routed.headers[h], h)
  t.equal(Number(fast.headers['content-length']), Buffer.byteLength(fast.text))
  t.match(JSON.parse(fast.text), { status: 'pass', uptimeMs: Number })
  t.same(Object.keys(JSON.parse(fast.text)), Object.keys(JSON.parse(routed.text)), 'same fields, same order')
  // One sequence of ids: the framework's next id follows the shortcut's.
  const n = (id: unknown): number => parseInt(String(id).replace(/^req-/, ''), 36)
  t.match(fast.headers['x-request-id'], /^req-[0-9a-z]+$/)
  t.equal(n(routed.headers['x-request-id']), n(fast.headers['x-request-id']) + 1)
  // A caller's sane id is echoed, another one replaced.
  t.equal((await get(`${base}/health/liveness`, { headers: { 'x-request-id': 'trace-abc.1' } })).headers['x-request-id'], 'trace-abc.1')
  t.match((await get(`${base}/health/liveness`, { headers: { 'x-request-id': 'bad id' } })).headers['x-request-id'], /^req-/)
  t.same(framework, ['GET /health/liveness?via=route'])
  t.equal(await durationCount(app), 4, 'every answer observed under the route pattern, shortcut or not')
})

t.test('the framework answers what the shortcut is not sure of', async (t) => {
  const { base, framework } = await listening(t)
  // Refused by the browser guard's hook (which runs before the test's): the shortcut would have answered 200.
  const rebound = await get(`${base}/health/liveness`, { headers: { host: 'rebind.evil.example:7070' } })
  t.equal(rebound.status, 403)
  t.equal(JSON.parse(rebound.text).code, 'PLUGVISOR_HOST_NOT_ALLOWED')
  const head = await get(`${base}/health/liveness`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.text, '')
  const withBody = await get(`${base}/health/liveness`, { method: 'GET', body: 'x' })
  t.equal(withBody.status, 200)
  t.same(framework, ['HEAD /health/liveness', 'GET /health/liveness'])
})

t.test('probes behind a token (auth.openProbes false) always go through the token check', async (t) => {
  const auth = { mode: 'tokens', openProbes: false, tokens: [{ name: 'ops', role: 'admin', tokenEnv: 'PV_SHORTCUT_ADMIN' }] }
  const { base, framework } = await listening(t, { auth }, { PV_SHORTCUT_ADMIN: ADMIN })
  const refused = await get(`${base}/health/liveness`)
  t.equal(refused.status, 401)
  t.equal(JSON.parse(refused.text).code, 'PLUGVISOR_UNAUTHORIZED')
  t.equal((await get(`${base}/health/liveness`, { headers: { authorization: `Bearer ${ADMIN}` } })).status, 200)
  // The refused one stopped at the token check, before the test's hook.
  t.same(framework, ['GET /health/liveness'])
})

t.test('with open probes and tokens, liveness needs no token', async (t) => {
  const auth = { mode: 'tokens', tokens: [{ name: 'ops', role: 'admin', tokenEnv: 'PV_SHORTCUT_ADMIN' }] }
  const { base, framework } = await listening(t, { auth }, { PV_SHORTCUT_ADMIN: ADMIN })
  t.equal((await get(`${base}/health/liveness`)).status, 200)
  t.same(framework, [])
  t.equal((await get(`${base}/plugins`)).status, 401, 'the rest of the API still needs one')
})

t.test('before it is enabled (start-up) and once disabled (shutdown) the shortcut answers nothing', async (t) => {
  const shortcut = new LivenessShortcut()
  const req = { url: '/health/liveness', method: 'GET', headers: {} } as IncomingMessage
  const res = { writeHead: () => t.fail('answered'), end: () => t.fail('answered') } as unknown as ServerResponse
  t.equal(shortcut.answer(req, res), false)
  let observed = 0
  shortcut.enable({ requestId: () => 'req-1', hostRefused: () => false, observe: () => { observed++ } })
  shortcut.disable()
  t.equal(shortcut.answer(req, res), false)
  t.equal(observed, 0)
})
