// The pure reload diff: what counts as a change, what is kept, what needs a restart.
import t from 'tap'
import { planReload, sameManifest } from '../src/config/reload-plan.js'
import { parseManifest, type LoadedConfig, type LoadedManifest, type ConfigProblem } from '../src/config/load.js'
import { MainConfig } from '../src/config/schema.js'
import { Value } from '@sinclair/typebox/value'

const m = (doc: Record<string, unknown>, file = `/p/${String(doc.name)}.json`): LoadedManifest => {
  const r = parseManifest({ command: 'x', ...doc }, { file, baseDir: '/', env: {} })
  if (!r.manifest) throw new Error(JSON.stringify(r.problems))
  return r.manifest
}
const config = (over: Record<string, unknown> = {}): MainConfig => Value.Default(MainConfig, structuredClone(over)) as MainConfig
const next = (manifests: LoadedManifest[], problems: ConfigProblem[] = [], cfg = config()): LoadedConfig =>
  ({ file: '/c.json', config: cfg, dataDir: '/d', pluginsDir: '/p', manifests, problems, authModeExplicit: false, policy: { allowEnv: [] } })

t.test('manifests are equal whatever the key order and dependsOn order; args order counts', async (t) => {
  t.ok(sameManifest(m({ name: 'a', env: { X: '1', Y: '2' }, dependsOn: ['b', 'c'] }), m({ dependsOn: ['c', 'b'], env: { Y: '2', X: '1' }, name: 'a' })))
  t.notOk(sameManifest(m({ name: 'a', args: ['1', '2'] }), m({ name: 'a', args: ['2', '1'] })))
  t.notOk(sameManifest(m({ name: 'a' }), m({ name: 'a' }, '/p/other.json')), 'a moved file is a change')
  t.notOk(sameManifest(m({ name: 'a', config: { k: 1 } }), m({ name: 'a', config: { k: 2 } })))
})

t.test('added, removed, changed, unchanged', async (t) => {
  const plan = planReload([m({ name: 'a' }), m({ name: 'b' }), m({ name: 'c' })], config(), next([m({ name: 'a' }), m({ name: 'b', args: ['2'] }), m({ name: 'd' })]))
  t.same(plan.added.map((x) => x.name), ['d'])
  t.same(plan.removed, ['c'])
  t.same(plan.changed.map((x) => x.name), ['b'])
  t.same(plan.unchanged, ['a'])
  t.same(plan.kept, [])
})

t.test('a plugin whose file is invalid now is kept, not removed; so is what it needs', async (t) => {
  const problems = [{ file: '/p/b.json', path: '/restart', reason: 'bad' }]
  const plan = planReload([m({ name: 'a' }), m({ name: 'b', dependsOn: ['a'] })], config(), next([], problems))
  t.same(plan.kept.sort(), ['a', 'b'])
  t.same(plan.removed, [])
  t.equal(plan.problems.length, 2)
})

t.test('a changed plugin that would close a cycle with a kept one is reverted to its running version', async (t) => {
  const running = [m({ name: 'a', dependsOn: ['b'] }), m({ name: 'b' })]
  const plan = planReload(running, config(), next([m({ name: 'b', dependsOn: ['a'] })], [{ file: '/p/a.json', path: '', reason: 'broken' }]))
  t.same(plan.changed, [])
  t.same(plan.kept.sort(), ['a', 'b'])
  t.ok(plan.problems.some((p) => /dependency cycle/.test(p.reason)))
})

t.test('inline problems are matched by the name at their index', async (t) => {
  const inlineA = m({ name: 'a' }, '/c.json')
  const cfg = config({ plugins: [{ name: 'zzz' }, { name: 'a', bogus: 1 }] })
  const plan = planReload([inlineA], config(), next([], [{ file: '/c.json', path: '/plugins/1', reason: "unknown property 'bogus'" }], cfg))
  t.same(plan.kept, ['a'])
  const other = planReload([inlineA], config(), next([], [{ file: '/c.json', path: '/plugins/0', reason: 'x' }], cfg))
  t.same(other.removed, ['a'], 'a problem of another entry does not keep it')
})

t.test('main config keys other than plugins and pluginsDir need a restart', async (t) => {
  const plan = planReload([], config({ server: { port: 1 } }), next([], [], config({ server: { port: 2 }, pluginsDir: './x', plugins: [{}], log: { level: 'debug' } })))
  t.same(plan.restartRequired, ['log', 'server'])
})
