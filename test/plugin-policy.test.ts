// pluginPolicy: which programs manifests may run and where; a cwd that does not exist is a
// manifest problem (over the API a 400), not a plugin restarting in backoff.
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { build, FIXTURE, fixturePlugin, tempDir, writeConfig } from './helper.js'

t.test('a cwd that does not exist: a manifest problem on file and inline, a 400 over the API', async (t) => {
  const dir = tempDir()
  mkdirSync(path.join(dir, 'plugins.d'))
  writeFileSync(path.join(dir, 'plugins.d', 'file.json'), JSON.stringify(fixturePlugin('file', 'sleep', { cwd: './gone' })))
  const loaded = writeConfig([fixturePlugin('inline', 'sleep', { cwd: 'nowhere' })], {}, dir)
  t.same(loaded.manifests.map((m) => m.name), [])
  t.match(loaded.problems, [
    { file: path.join(dir, 'plugvisor.json'), path: '/plugins/0/cwd', reason: `folder ${path.join(dir, 'nowhere')} does not exist` },
    { file: path.join(dir, 'plugins.d', 'file.json'), path: '/cwd', reason: /gone does not exist/ }
  ])
  const app = await build(t, loaded, { boot: false })
  const res = await app.inject({ method: 'POST', url: '/plugins', payload: fixturePlugin('api', 'sleep', { cwd: '/no/such/folder' }) })
  t.equal(res.statusCode, 400)
  t.match(res.json(), { code: 'PLUGVISOR_INVALID_MANIFEST', problems: [{ file: 'request body', path: '/cwd', reason: 'folder /no/such/folder does not exist' }] })
  t.notOk(app.daemon.supervisor.has('api'))
})

t.test('allowedCommands: absolute paths or globs; a bare command is looked up on PATH; exec probes too', async (t) => {
  const dir = tempDir()
  const loaded = writeConfig([
    fixturePlugin('node-ok', 'sleep'),
    { ...fixturePlugin('sh-refused', 'sleep'), command: 'sh', args: ['-c', 'sleep 100'] },
    { ...fixturePlugin('probe-refused', 'sleep'), healthCheck: { exec: { command: '/bin/true' } } },
    { ...fixturePlugin('missing', 'sleep'), command: 'no-such-program-here' }
  ], { pluginPolicy: { allowedCommands: [process.execPath, '/opt/plugvisor/**'] } }, dir)
  t.same(loaded.manifests.map((m) => m.name), ['node-ok'])
  const byPlugin = Object.fromEntries(loaded.problems.map((p) => [p.path.split('/')[2], p]))
  t.match(byPlugin['1'], { path: '/plugins/1/command', reason: /\/sh is not allowed by pluginPolicy\.allowedCommands/ })
  t.match(byPlugin['2'], { path: '/plugins/2/healthCheck/exec/command', reason: /\/bin\/true is not allowed/ })
  t.match(byPlugin['3'], { path: '/plugins/3/command', reason: /not found on PATH/ })

  const app = await build(t, loaded, { boot: false })
  const refused = await app.inject({ method: 'POST', url: '/plugins?start=false', payload: { name: 'api', command: '/bin/sh', args: ['-c', 'id'] } })
  t.equal(refused.statusCode, 400)
  t.match(refused.json(), { code: 'PLUGVISOR_INVALID_MANIFEST', problems: [{ file: 'request body', path: '/command', reason: /\/bin\/sh is not allowed/ }] })
  const ok = await app.inject({ method: 'POST', url: '/plugins?start=false', payload: fixturePlugin('api-ok', 'sleep') })
  t.equal(ok.statusCode, 201, ok.body)
})

t.test('allowedCwd: the cwd must be one of the folders or below one (symlinks followed)', async (t) => {
  const dir = tempDir()
  mkdirSync(path.join(dir, 'apps', 'one'), { recursive: true })
  mkdirSync(path.join(dir, 'elsewhere'))
  const loaded = writeConfig([
    fixturePlugin('inside', 'sleep', { cwd: 'apps/one' }),
    fixturePlugin('outside', 'sleep', { cwd: 'elsewhere' }),
    fixturePlugin('sibling', 'sleep', { cwd: '.' })
  ], { pluginPolicy: { allowedCwd: ['./apps'] } }, dir)
  t.same(loaded.manifests.map((m) => m.name), ['inside'])
  t.match(loaded.problems, [
    { path: '/plugins/1/cwd', reason: /elsewhere is not in a folder of pluginPolicy\.allowedCwd/ },
    { path: '/plugins/2/cwd', reason: /is not in a folder of pluginPolicy\.allowedCwd/ }
  ])
  const app = await build(t, loaded, { boot: false })
  const res = await app.inject({ method: 'POST', url: '/plugins?start=false', payload: { name: 'api', command: process.execPath, args: [FIXTURE, 'sleep'], cwd: '/tmp' } })
  t.equal(res.statusCode, 400)
  t.match(res.json().problems, [{ path: '/cwd', reason: /not in a folder of pluginPolicy\.allowedCwd/ }])
})
