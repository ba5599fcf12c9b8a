// Config and manifests: every kind of mistake is reported with file, JSON path and reason,
// and a bad manifest never takes the good ones down with it.
/* eslint-disable no-template-curly-in-string -- ${VAR} is the config syntax under test */
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { loadConfig, type ConfigProblem } from '../src/config/load.js'
import { DEFAULT_STOP } from '../src/config/schema.js'
import type { ProblemsError } from '../src/errors.js'
import { packageRoot } from '../src/paths.js'
import { tempDir } from './helper.js'

function setup (files: Record<string, string>): string {
  const dir = tempDir()
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true })
    writeFileSync(path.join(dir, rel), text)
  }
  return dir
}

const good = 'name: good\ncommand: node\n'

const manifestMistakes: [string, string, string, RegExp][] = [
  // [what, manifest yaml, expected JSON path, expected reason]
  ['missing command', 'name: a\n', '', /must have required property 'command'/],
  ['bad name', 'name: Bad Name\ncommand: x\n', '/name', /must match pattern/],
  ['reserved name', 'name: status\ncommand: x\n', '/name', /reserved name/],
  ['reserved probe route name', 'name: readiness\ncommand: x\n', '/name', /reserved name/],
  ['unknown field', 'name: a\ncommand: x\ncomand: y\n', '', /unknown property 'comand'/],
  ['wrong type', 'name: a\ncommand: x\nargs: notalist\n', '/args', /must be array/],
  ['bad restart policy', 'name: a\ncommand: x\nrestart: { policy: sometimes }\n', '/restart/policy', /^must be one of "always", "on-failure", "never"$/],
  ['negative delay', 'name: a\ncommand: x\nrestart: { initialDelayMs: -1 }\n', '/restart/initialDelayMs', /must be >= 0/],
  ['jitter over 1', 'name: a\ncommand: x\nrestart: { jitter: 2 }\n', '/restart/jitter', /must be <= 1/],
  ['bad port', 'name: a\ncommand: x\nport: 70000\n', '/port', /.+/],
  ['two probe kinds', 'name: a\ncommand: x\nport: 1234\nhealthCheck: { http: {}, tcp: {} }\n', '/healthCheck', /exactly one of http, tcp, exec \(has http, tcp\)/],
  ['no probe kind', 'name: a\ncommand: x\nhealthCheck: { intervalMs: 5 }\n', '/healthCheck', /exactly one of http, tcp, exec \(has none\)/],
  ['http probe without a port', 'name: a\ncommand: x\nhealthCheck: { http: { path: /h } }\n', '/healthCheck/http', /needs a port/],
  ['bad stop signal', 'name: a\ncommand: x\nstop: { signal: SIGFOO }\n', '/stop/signal', /.+/],
  ['unset env var', 'name: a\ncommand: x\nconfig: { key: "${PLUGVISOR_TEST_UNSET_VAR}" }\n', '/config/key', /environment variable PLUGVISOR_TEST_UNSET_VAR is not set/],
  ['config against configSchema', 'name: a\ncommand: x\nconfigSchema: { type: object, required: [apiKey] }\nconfig: {}\n', '/config', /must have required property 'apiKey'/],
  ['invalid configSchema', 'name: a\ncommand: x\nconfigSchema: { type: nonsense }\n', '/configSchema', /is not a valid JSON Schema/],
  ['depends on itself', 'name: a\ncommand: x\ndependsOn: [a]\n', '/dependsOn', /cannot depend on itself/],
  ['both breaker kinds', 'name: a\ncommand: x\nresilience: { circuitBreaker: { consecutiveFailures: 3, failureRate: 0.5 } }\n', '/resilience/circuitBreaker', /either consecutiveFailures or failureRate/],
  ['YAML syntax', 'name: a\ncommand: [x\n', '', /cannot parse/]
]

for (const [what, yaml, wantPath, wantReason] of manifestMistakes) {
  t.test(`invalid manifest (${what}) is skipped with file, path and reason; valid ones load`, async (t) => {
    const dir = setup({ 'plugvisor.yaml': '{}\n', 'plugins.d/bad.yaml': yaml, 'plugins.d/good.yaml': good })
    const loaded = loadConfig(path.join(dir, 'plugvisor.yaml'))
    t.same(loaded.manifests.map((m) => m.name), ['good'], 'the valid plugin still loads')
    t.ok(loaded.problems.length > 0, 'a problem is reported')
    const p = loaded.problems.find((q) => q.path === wantPath && wantReason.test(q.reason))
    t.ok(p, `a problem at '${wantPath}' matching ${wantReason} (got ${JSON.stringify(loaded.problems)})`)
    t.equal(p?.file, path.join(dir, 'plugins.d/bad.yaml'), 'names the file')
  })
}

t.test('a configSchema is checked again on every load, an $id included, and nothing of it is kept', async (t) => {
  // Two plugins sharing one schema file's $id, loaded, then loaded again (a reload): each load
  // checks each plugin's config against its own schema, and none is refused as a duplicate.
  const schema = 'configSchema: { $id: "https://example.com/plugin-config.json", type: object, required: [apiKey] }'
  const dir = setup({
    'plugvisor.yaml': '{}\n',
    'plugins.d/a.yaml': `name: a\ncommand: x\n${schema}\nconfig: { apiKey: k }\n`,
    'plugins.d/b.yaml': `name: b\ncommand: x\n${schema}\nconfig: {}\n`
  })
  for (const round of ['first load', 'reload']) {
    const loaded = loadConfig(path.join(dir, 'plugvisor.yaml'))
    t.same(loaded.manifests.map((m) => m.name), ['a'], `${round}: a loads`)
    t.same(loaded.problems.map((p) => [path.basename(p.file), p.path, p.reason]), [['b.yaml', '/config', "must have required property 'apiKey'"]], `${round}: only b's missing key is reported`)
  }
})

t.test('defaults are filled in from the schema', async (t) => {
  const dir = setup({ 'plugvisor.yaml': '{}\n', 'plugins.d/good.yaml': good })
  const loaded = loadConfig(path.join(dir, 'plugvisor.yaml'))
  const m = loaded.manifests[0]
  t.match(m, { args: [], autostart: true, critical: false, dependsOn: [], env: {}, config: {} })
  t.same(m.restart, { policy: 'always', initialDelayMs: 1000, multiplier: 2, maxDelayMs: 300000, jitter: 0.1, resetAfterMs: 600000, maxRestarts: 10, windowMs: 600000 })
  t.same(m.stop, { signal: 'SIGTERM', timeoutMs: 10000 })
  t.same(DEFAULT_STOP, m.stop, 'the stop policy of processes no manifest names is the one a manifest without stop gets')
  t.equal(m.cwd, path.join(dir, 'plugins.d'), 'cwd is relative to the manifest folder')
  t.match(loaded.config, { server: { host: '127.0.0.1', port: 7070 }, restartBudget: { burst: 20, perSecond: 2 }, history: { rawRetentionHours: 24, rollupRetentionDays: 30, flushIntervalMs: 1000 }, log: { level: 'info' } })
  t.equal(loaded.dataDir, path.join(dir, 'data'), 'dataDir is relative to the config file')
})

t.test('inline manifests: path names the index; cwd is relative to the main config', async (t) => {
  const dir = setup({ 'plugvisor.json': JSON.stringify({ pluginsDir: './none', plugins: [{ name: 'ok', command: 'x', cwd: 'sub' }, { name: 'broken' }] }), 'sub/.keep': '' })
  const loaded = loadConfig(path.join(dir, 'plugvisor.json'))
  t.same(loaded.manifests.map((m) => m.name), ['ok'])
  t.equal(loaded.manifests[0].cwd, path.join(dir, 'sub'))
  t.match(loaded.problems, [{ file: path.join(dir, 'plugvisor.json'), path: '/plugins/1', reason: /command/ }])
})

t.test('dependency cycles and unknown dependencies are rejected, naming the cycle', async (t) => {
  const dir = setup({
    'plugvisor.yaml': '{}\n',
    'plugins.d/a.yaml': 'name: a\ncommand: x\ndependsOn: [b]\n',
    'plugins.d/b.yaml': 'name: b\ncommand: x\ndependsOn: [c]\n',
    'plugins.d/c.yaml': 'name: c\ncommand: x\ndependsOn: [a]\n',
    'plugins.d/d.yaml': 'name: d\ncommand: x\ndependsOn: [nowhere]\n',
    'plugins.d/e.yaml': 'name: e\ncommand: x\ndependsOn: [d]\n',
    'plugins.d/f.yaml': good.replace('good', 'f')
  })
  const loaded = loadConfig(path.join(dir, 'plugvisor.yaml'))
  t.same(loaded.manifests.map((m) => m.name), ['f'])
  const reasons = Object.fromEntries(loaded.problems.map((p: ConfigProblem) => [path.basename(p.file), p.reason]))
  t.match(reasons['a.yaml'], /dependency cycle: a -> b -> c -> a/)
  t.match(reasons['d.yaml'], /unknown or invalid plugin\(s\): nowhere/)
  t.match(reasons['e.yaml'], /unknown or invalid plugin\(s\): d/, 'a plugin depending on a dropped one is dropped too')
})

t.test('two manifests with one name: the first wins, the second is reported', async (t) => {
  const dir = setup({ 'plugvisor.yaml': '{}\n', 'plugins.d/1.yaml': good, 'plugins.d/2.yaml': good })
  const loaded = loadConfig(path.join(dir, 'plugvisor.yaml'))
  t.equal(loaded.manifests.length, 1)
  t.match(loaded.problems, [{ file: path.join(dir, 'plugins.d/2.yaml'), path: '/name', reason: /already defined/ }])
})

t.test('an invalid main config throws with file, path and reason', async (t) => {
  const dir = setup({ 'plugvisor.yaml': 'server: { port: nope }\nbogus: 1\n' })
  const err = t.throws(() => loadConfig(path.join(dir, 'plugvisor.yaml'))) as unknown as ProblemsError
  t.equal(err.code, 'PLUGVISOR_INVALID_CONFIG')
  t.match(err.problems, [
    { file: path.join(dir, 'plugvisor.yaml'), path: '', reason: "unknown property 'bogus'" },
    { path: '/server/port', reason: /must be integer/ }
  ])
})

t.test('${VAR} expansion with defaults, and env overrides of host, port, data dir', async (t) => {
  const dir = setup({ 'plugvisor.yaml': 'server: { port: "${PV_TEST_PORT:-7171}" }\nplugins: [{ name: a, command: x, env: { TOKEN: "${PV_TEST_TOKEN}" } }]\n' })
  const file = path.join(dir, 'plugvisor.yaml')
  const a = loadConfig(file, { env: { PV_TEST_TOKEN: 's3cret' } })
  t.equal(a.config.server.port, 7171, 'default used when unset')
  t.equal(a.manifests[0].env.TOKEN, 's3cret')
  const b = loadConfig(file, { env: { PV_TEST_PORT: '8080', PV_TEST_TOKEN: 'x', PLUGVISOR_HOST: '::1', PLUGVISOR_PORT: '9090', PLUGVISOR_DATA_DIR: '/tmp/pv-data' } })
  t.same([b.config.server.host, b.config.server.port, b.dataDir], ['::1', 9090, '/tmp/pv-data'])
  t.throws(() => loadConfig(file, { env: { PLUGVISOR_PORT: 'abc' } }), /PLUGVISOR_PORT.*must be an integer/)
})

t.test('plugvisor validate exits 0 on the shipped config and non-zero with the errors', async (t) => {
  const bin = path.join(packageRoot, 'dist/src/bin.cjs')
  const ok = spawnSync(process.execPath, [bin, 'validate', path.join(packageRoot, 'config/plugvisor.yaml')], { encoding: 'utf8' })
  t.equal(ok.status, 0, ok.stderr)
  t.match(ok.stdout, /valid, 2 plugin\(s\): echo, flaky/)
  const dir = setup({ 'plugvisor.yaml': '{}\n', 'plugins.d/bad.yaml': 'name: bad\ncommand: x\nrestart: { policy: sometimes }\n' })
  const bad = spawnSync(process.execPath, [bin, 'validate', path.join(dir, 'plugvisor.yaml')], { encoding: 'utf8' })
  t.equal(bad.status, 1)
  t.match(bad.stderr, /bad\.yaml: \/restart\/policy: /)
  const broken = spawnSync(process.execPath, [bin, 'validate', path.join(dir, 'missing.yaml')], { encoding: 'utf8' })
  t.equal(broken.status, 1)
  t.match(broken.stderr, /missing\.yaml: \/: cannot read/)
})

t.test('listening off loopback with an open API needs auth.mode none written out', async (t) => {
  const { listenRefusal } = await import('../src/server.js')
  const load = (yaml: string) => loadConfig(path.join(setup({ 'plugvisor.yaml': yaml }), 'plugvisor.yaml'))
  t.equal(listenRefusal(load('server: { host: 127.0.0.1 }\n')), undefined)
  t.equal(listenRefusal(load('server: { host: "::1" }\n')), undefined)
  t.match(listenRefusal(load('server: { host: 0.0.0.0 }\n')), /refusing to listen on 0\.0\.0\.0/)
  t.equal(listenRefusal(load('server: { host: 0.0.0.0 }\nauth: { mode: none }\n')), undefined)
  t.equal(listenRefusal(load('server: { host: 0.0.0.0 }\nauth: { mode: tokens }\n')), undefined, 'tokens make a non-loopback address fine')
})
