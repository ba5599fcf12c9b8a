// The audit log: every mutating management call, whatever its outcome; read by admins.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { build, fixturePlugin, tempDir, writeConfig } from './helper.js'

const ADMIN = 'audit-admin-token-0123456789'
const VIEWER = 'audit-viewer-token-0123456789'

t.test('mutating calls are recorded with actor, route, plugin and status; reads are not', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('a', 'sleep', { autostart: false }), fixturePlugin('b', 'sleep', { autostart: false })]), { boot: false })
  await app.inject({ method: 'POST', url: '/plugins/a/start', headers: { 'x-request-id': 'req-audit-1' } })
  await app.inject({ method: 'POST', url: '/plugins/b/restart' })
  await app.inject({ method: 'POST', url: '/plugins/nope/stop' })
  await app.inject({ method: 'GET', url: '/plugins' })
  const res = await app.inject({ method: 'GET', url: '/audit' })
  t.equal(res.statusCode, 200)
  const entries = res.json().entries as { actor: string, method: string, route: string, url: string, plugin: string, status: number, requestId: string }[]
  t.same(entries.map((e) => [e.method, e.route, e.plugin, e.status]), [
    ['POST', '/plugins/:name/stop', 'nope', 404],
    ['POST', '/plugins/:name/restart', 'b', 200],
    ['POST', '/plugins/:name/start', 'a', 200]
  ], 'newest first, failed calls too, GETs not')
  t.equal(entries[2].actor, 'anonymous')
  t.equal(entries[2].requestId, 'req-audit-1')
  const onlyB = await app.inject({ method: 'GET', url: '/audit?plugin=b' })
  t.same(onlyB.json().entries.map((e: { plugin: string }) => e.plugin), ['b'])
  const none = await app.inject({ method: 'GET', url: `/audit?since=${new Date(Date.now() + 60000).toISOString()}` })
  t.same(none.json().entries, [])
})

t.test('with tokens: the actor is the token name, refused calls are recorded, only admins read it', async (t) => {
  const dir = tempDir()
  writeFileSync(path.join(dir, 'viewer.token'), VIEWER)
  const loaded = writeConfig([fixturePlugin('a', 'sleep', { autostart: false })], {
    auth: { mode: 'tokens', tokens: [{ name: 'ops', role: 'admin', tokenEnv: 'PV_AUDIT_ADMIN' }, { name: 'dash', role: 'viewer', tokenFile: 'viewer.token' }] }
  }, dir)
  const app = await build(t, loaded, { boot: false, env: { PV_AUDIT_ADMIN: ADMIN } })
  await app.inject({ method: 'POST', url: '/plugins/a/start', headers: { authorization: `Bearer ${ADMIN}` } })
  await app.inject({ method: 'POST', url: '/plugins/a/stop', headers: { authorization: `Bearer ${VIEWER}` } })
  await app.inject({ method: 'POST', url: '/plugins/a/stop' })
  t.equal((await app.inject({ method: 'GET', url: '/audit', headers: { authorization: `Bearer ${VIEWER}` } })).statusCode, 403, 'viewers may not read it')
  const res = await app.inject({ method: 'GET', url: '/audit', headers: { authorization: `Bearer ${ADMIN}` } })
  t.same(res.json().entries.map((e: { actor: string, role: string | null, status: number }) => [e.actor, e.role, e.status]), [
    ['anonymous', null, 401],
    ['dash', 'viewer', 403],
    ['ops', 'admin', 200]
  ])
})
