// Bearer tokens: 401 without, 403 for the wrong role, probes and metrics open by default.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { build, fixturePlugin, tempDir, writeConfig } from './helper.js'
import type { ProblemsError } from '../src/errors.js'

const ADMIN = 'admin-token-0123456789abcdef'
const VIEWER = 'viewer-token-0123456789abcdef'

function tokenConfig (auth: Record<string, unknown> = {}) {
  const dir = tempDir()
  writeFileSync(path.join(dir, 'viewer.token'), VIEWER + '\n')
  return writeConfig([fixturePlugin('p', 'sleep', { autostart: false })], {
    auth: { mode: 'tokens', tokens: [{ name: 'ops', role: 'admin', tokenEnv: 'PV_TEST_ADMIN' }, { name: 'dash', role: 'viewer', tokenFile: 'viewer.token' }], ...auth }
  }, dir)
}
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

t.test('management routes need a token; viewers read, admins change', async (t) => {
  const app = await build(t, tokenConfig(), { boot: false, env: { PV_TEST_ADMIN: ADMIN } })
  const none = await app.inject({ method: 'GET', url: '/plugins' })
  t.equal(none.statusCode, 401)
  t.match(none.json(), { code: 'PLUGVISOR_UNAUTHORIZED' })
  t.equal(none.headers['www-authenticate'], 'Bearer realm="plugvisor"')
  const wrong = await app.inject({ method: 'GET', url: '/plugins', headers: bearer('not-a-valid-token-at-all') })
  t.equal(wrong.statusCode, 401)
  t.equal((await app.inject({ method: 'GET', url: '/plugins', headers: { authorization: `Basic ${VIEWER}` } })).statusCode, 401, 'only Bearer')

  const read = await app.inject({ method: 'GET', url: '/plugins', headers: bearer(VIEWER) })
  t.equal(read.statusCode, 200, 'a viewer token (from a file) reads')
  const change = await app.inject({ method: 'POST', url: '/plugins/p/start', headers: bearer(VIEWER) })
  t.equal(change.statusCode, 403)
  t.match(change.json(), { code: 'PLUGVISOR_FORBIDDEN', message: /viewer/ })
  t.equal(app.daemon.supervisor.summary('p').state, 'stopped', 'nothing happened')
  const admin = await app.inject({ method: 'POST', url: '/plugins/p/start', headers: bearer(ADMIN) })
  t.equal(admin.statusCode, 200, 'an admin token (from the environment) changes')
  t.equal(admin.json().state, 'running')
})

t.test('probes, metrics and the API description are open by default, and can be closed', async (t) => {
  const open = await build(t, tokenConfig(), { boot: false, env: { PV_TEST_ADMIN: ADMIN } })
  for (const url of ['/health', '/health/liveness', '/health/readiness', '/health/p', '/metrics', '/docs/json']) {
    const res = await open.inject({ method: 'GET', url })
    t.not(res.statusCode, 401, `${url} needs no token`)
  }
  const closed = await build(t, tokenConfig({ openProbes: false, openMetrics: false }), { boot: false, env: { PV_TEST_ADMIN: ADMIN } })
  for (const url of ['/health', '/health/liveness', '/metrics']) {
    t.equal((await closed.inject({ method: 'GET', url })).statusCode, 401, `${url} needs a token when closed`)
    t.equal((await closed.inject({ method: 'GET', url, headers: bearer(VIEWER) })).statusCode, 200)
  }
})

t.test('a token that cannot be read stops the start with file, path and reason', async (t) => {
  const loaded = tokenConfig()
  await t.rejects(build(t, loaded, { boot: false, env: {} }), { code: 'PLUGVISOR_INVALID_CONFIG' })
  try {
    await build(t, loaded, { boot: false, env: {} })
  } catch (err) {
    t.match((err as ProblemsError).problems, [{ file: loaded.file, path: '/auth/tokens/0/tokenEnv', reason: 'environment variable PV_TEST_ADMIN is not set' }])
  }
  const short = writeConfig([], { auth: { mode: 'tokens', tokens: [{ name: 'x', role: 'admin', tokenEnv: 'PV_SHORT' }] } })
  await t.rejects(build(t, short, { boot: false, env: { PV_SHORT: 'abc' } }), /shorter than 16 characters/)
  const empty = writeConfig([], { auth: { mode: 'tokens' } })
  await t.rejects(build(t, empty, { boot: false }), /needs at least one token/)
  const both = writeConfig([], { auth: { mode: 'tokens', tokens: [{ name: 'x', role: 'admin' }] } })
  await t.rejects(build(t, both, { boot: false }), /exactly one of tokenEnv, tokenFile/)
})

t.test('the CLI sends PLUGVISOR_TOKEN', async (t) => {
  const { execFile } = await import('node:child_process')
  const { promisify } = await import('node:util')
  const { packageRoot } = await import('../src/paths.js')
  const app = await build(t, tokenConfig(), { boot: false, env: { PV_TEST_ADMIN: ADMIN } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const cli = (token?: string) => promisify(execFile)(process.execPath, [path.join(packageRoot, 'dist/src/bin.cjs'), 'status'], {
    env: { ...process.env, PLUGVISOR_URL: url, PLUGVISOR_TOKEN: token ?? '' }
  }).then((r) => ({ code: 0, out: r.stdout }), (e: { code: number, stderr: string }) => ({ code: e.code, out: e.stderr }))
  const ok = await cli(VIEWER)
  t.equal(ok.code, 0)
  t.match(ok.out, /\np\s+stopped/)
  const denied = await cli()
  t.equal(denied.code, 1)
  t.match(denied.out, /401 PLUGVISOR_UNAUTHORIZED/)
})
