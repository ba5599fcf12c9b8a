// Manifest metadata (author, homepage, capabilities, tags), requires.plugvisor, and the filters of GET /plugins.
import t from 'tap'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { build, fixturePlugin, tempDir, writeConfig } from './helper.js'
import { parseManifest } from '../src/config/load.js'
import { daemonVersion } from '../src/config/compatibility.js'

// A real folder: a manifest's cwd must exist.
const manifestDir = tempDir()
t.teardown(() => rmSync(manifestDir, { recursive: true, force: true }))
const manifestFile = path.join(manifestDir, 'p.yaml')
const parse = (doc: Record<string, unknown>) => parseManifest(doc, { file: manifestFile, baseDir: manifestDir, env: {} })

t.test('requires.plugvisor outside this version is a problem naming file, path and range', async (t) => {
  const r = parse({ name: 'p', command: 'true', requires: { plugvisor: '>=99.0.0' } })
  t.equal(r.manifest, undefined)
  t.same(r.problems, [{ file: manifestFile, path: '/requires/plugvisor', reason: `needs plugvisor >=99.0.0; this is plugvisor ${daemonVersion()}` }])
  const bad = parse({ name: 'p', command: 'true', requires: { plugvisor: 'soon' } })
  t.match(bad.problems, [{ path: '/requires/plugvisor', reason: /'soon' is not a semver range/ }])
  const ok = parse({ name: 'p', command: 'true', requires: { plugvisor: `^${daemonVersion()}` } })
  t.same(ok.problems, [])
  t.equal(ok.manifest?.requires?.plugvisor, `^${daemonVersion()}`)
})

t.test('a manifest file needing another plugvisor is skipped with its file named; the others load', async (t) => {
  const dir = tempDir()
  mkdirSync(path.join(dir, 'plugins.d'))
  writeFileSync(path.join(dir, 'plugins.d', 'future.yaml'), 'name: future\ncommand: "true"\nrequires: { plugvisor: ">=2 <3" }\n')
  const loaded = writeConfig([fixturePlugin('now', 'sleep')], {}, dir)
  t.same(loaded.manifests.map((m) => m.name), ['now'])
  t.same(loaded.problems, [{ file: path.join(dir, 'plugins.d', 'future.yaml'), path: '/requires/plugvisor', reason: `needs plugvisor >=2 <3; this is plugvisor ${daemonVersion()}` }])
})

t.test('capabilities and tags: lower-case words, no duplicates; homepage is http(s)', async (t) => {
  t.match(parse({ name: 'p', command: 'true', capabilities: ['Echo'] }).problems, [{ path: '/capabilities/0' }])
  t.match(parse({ name: 'p', command: 'true', tags: ['a', 'a'] }).problems, [{ path: '/tags' }])
  t.match(parse({ name: 'p', command: 'true', homepage: 'ftp://x' }).problems, [{ path: '/homepage' }])
  const m = parse({ name: 'p', command: 'true' }).manifest
  t.same([m?.capabilities, m?.tags], [[], []], 'both default to none')
})

const plugins = [
  fixturePlugin('echo', 'sleep', { description: 'Echoes requests', author: 'Ada <ada@example.com>', homepage: 'https://example.com/echo', capabilities: ['http', 'echo'], tags: ['demo'] }),
  fixturePlugin('store', 'sleep', { description: 'Keeps values', capabilities: ['kv'], tags: ['core', 'demo'] }),
  fixturePlugin('idle', 'sleep', { autostart: false, tags: ['core'] })
]

t.test('GET /plugins and GET /plugins/:name show the metadata', async (t) => {
  const app = await build(t, writeConfig(plugins), { boot: false })
  const list = (await app.inject({ method: 'GET', url: '/plugins' })).json().plugins
  t.match(list[0], { name: 'echo', author: 'Ada <ada@example.com>', homepage: 'https://example.com/echo', capabilities: ['http', 'echo'], tags: ['demo'] })
  t.match(list[2], { name: 'idle', author: null, homepage: null, capabilities: [], tags: ['core'] })
  const one = (await app.inject({ method: 'GET', url: '/plugins/store' })).json()
  t.match(one, { name: 'store', capabilities: ['kv'], tags: ['core', 'demo'], manifest: { capabilities: ['kv'] } })
})

t.test('GET /plugins filters: values of one filter OR, filters AND; a bad status is a 400', async (t) => {
  const app = await build(t, writeConfig(plugins), { boot: false })
  await app.daemon.boot()
  const names = async (query: string): Promise<string[]> => {
    const res = await app.inject({ method: 'GET', url: `/plugins?${query}` })
    t.equal(res.statusCode, 200, query)
    return res.json().plugins.map((p: { name: string }) => p.name)
  }
  t.same(await names('capability=echo'), ['echo'])
  t.same(await names('capability=echo&capability=kv'), ['echo', 'store'], 'repeated: any of them')
  t.same(await names('tag=core'), ['store', 'idle'])
  t.same(await names('tag=core&capability=kv'), ['store'], 'two filters: both')
  t.same(await names('status=stopped'), ['idle'])
  t.same(await names('status=healthy&status=stopped'), ['echo', 'store', 'idle'])
  t.same(await names('tag=demo&status=stopped'), [])
  t.same(await names('q=ECHOES'), ['echo'], 'q: description, ignoring case')
  t.same(await names('q=kv'), ['store'], 'q: a capability')
  t.same(await names('q=cor'), ['store', 'idle'], 'q: part of a tag')
  t.same(await names('q=idl&q=echo'), ['echo', 'idle'], 'q: a name; repeated: any')
  t.same(await names('capability=nothing'), [])
  const bad = await app.inject({ method: 'GET', url: '/plugins?status=sleepy' })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().code, 'PLUGVISOR_VALIDATION')
  const unknown = await app.inject({ method: 'GET', url: '/plugins?colour=red' })
  t.equal(unknown.statusCode, 400, 'an unknown filter is refused, not ignored')
})
