// The command line against a real daemon listening on loopback.
import t from 'tap'
import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { stringify } from 'yaml'
import { build, fixturePlugin, served, tempDir, writeConfig } from './helper.js'
import { packageRoot } from '../src/paths.js'

const run = promisify(execFile)
const bin = path.join(packageRoot, 'dist/src/bin.cjs')

async function cli (url: string | Record<string, string>, ...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  const env: Record<string, string | undefined> = { ...process.env, PLUGVISOR_URL: undefined, PLUGVISOR_HOST: undefined, PLUGVISOR_PORT: undefined }
  Object.assign(env, typeof url === 'string' ? { PLUGVISOR_URL: url } : url)
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { env, timeout: 20000 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number, stdout: string, stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

t.test('status, start/stop/restart, logs, events and history through the API', async (t) => {
  const app = await build(t, writeConfig([
    served('web', {}, { startup: { failureThreshold: 200, intervalMs: 50 } }),
    fixturePlugin('worker', 'chatty', { args: ['3'], hooks: { postStart: { exec: { command: process.execPath, args: ['-e', 'console.log("warm")'] } } } })
  ], { history: { flushIntervalMs: 50 } }), { boot: false })
  await app.daemon.boot()
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  await app.daemon.supervisor.waitFor('web', (s) => s.status === 'healthy', 10000)

  const status = await cli(url, 'status')
  t.equal(status.code, 0, status.stderr)
  t.match(status.stdout, /^NAME\s+STATUS\s+STATE\s+HEALTH/)
  t.match(status.stdout, /\nweb\s+healthy\s+running\s+healthy/)
  t.match(status.stdout, /\nworker\s+healthy\s+running/)
  const json = JSON.parse((await cli(url, 'status', '--json')).stdout)
  t.same(json.map((p: { name: string }) => p.name), ['web', 'worker'])

  const stop = await cli(url, 'stop', 'worker')
  t.equal(stop.code, 0)
  t.match(stop.stdout, /\nworker\s+stopped\s+stopped/)
  t.equal(app.daemon.supervisor.summary('worker').state, 'stopped')
  const start = await cli(url, 'start', '--all', '--wait')
  t.match(start.stdout, /\nweb\s+healthy/)
  t.match(start.stdout, /\nworker\s+healthy\s+running/)

  const logs = await cli(url, 'logs', 'worker', '--tail', '50')
  t.match(logs.stdout, /OUT line 0/)
  const events = await cli(url, 'events', 'worker')
  t.match(events.stdout, /running -> stopping operator stop/)
  const rows = events.stdout.trimEnd().split('\n')
  const hookRuns = rows.filter((r) => / hook postStart /.test(r))
  t.equal(hookRuns.length, 2, 'the hook runs are shown beside the transitions (daemon start, operator start)')
  t.match(hookRuns[1], /^\S+ hook postStart success: .* \(exec .*node.*, \d+ ms, by anonymous\)$/, 'what ran, how it ended, who caused it')
  t.match(hookRuns[0], /\d+ ms\)$/, 'the boot\'s run has no operator')
  const at = rows.map((r) => Date.parse(r.split(' ')[0]))
  t.same(at, [...at].sort((a, b) => a - b), 'oldest first, one timeline')
  t.ok(rows.indexOf(hookRuns[1]) > rows.findIndex((r) => / stopped -> starting operator start/.test(r)), 'the operator start\'s hook run after its transition')
  const last = await cli(url, 'events', 'worker', '--limit', '2')
  t.equal(last.stdout.trimEnd().split('\n').length, 2, '--limit counts both kinds')

  await app.daemon.healthHistory.flush()
  const history = await cli(url, 'history', 'web', '--limit', '3')
  t.equal(history.code, 0, history.stderr)
  t.match(history.stdout, /^AT\s+PROBE\s+PHASE\s+RESULT/)
  t.match(history.stdout, /http\s+regular\s+success/)
  const minutes = await cli(url, 'history', 'web', '--resolution', 'minute')
  t.match(minutes.stdout, /^BUCKET\s+CHECKS/)

  const missing = await cli(url, 'restart', 'nope')
  t.equal(missing.code, 1)
  t.match(missing.stderr, /404 PLUGVISOR_PLUGIN_NOT_FOUND/)
  const usage = await cli(url, 'start')
  t.equal(usage.code, 2)
})

t.test('an unreachable daemon is a clear error, exit 1', async (t) => {
  const r = await cli('http://127.0.0.1:1', 'status')
  t.equal(r.code, 1)
  t.match(r.stderr, /cannot reach plugvisor at http:\/\/127\.0\.0\.1:1/)
})

t.test('--version, usage errors, PLUGVISOR_HOST/PORT, add, config --set and remove', async (t) => {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }
  const version = await cli('http://127.0.0.1:1', '--version')
  t.equal(version.code, 0)
  t.equal(version.stdout.trim(), pkg.version)
  for (const args of [['frobnicate'], ['logs'], ['status', '--bogus'], ['remove'], ['config', 'x']]) {
    const r = await cli('http://127.0.0.1:1', ...args)
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`)
    t.match(r.stderr, /usage: plugvisor <command>/, `${args.join(' ')}: usage line`)
    t.notMatch(r.stderr, /\n\s+at /, `${args.join(' ')}: no stack trace`)
  }
  t.match((await cli('http://127.0.0.1:1', 'help')).stdout, /--wait/)
  t.ok((statSync(bin).mode & 0o111) !== 0, 'the bin file is executable')

  const app = await build(t, writeConfig([fixturePlugin('base', 'sleep', { autostart: false })]))
  await app.listen({ host: '127.0.0.1', port: 0 })
  const env = { PLUGVISOR_HOST: '127.0.0.1', PLUGVISOR_PORT: String((app.server.address() as { port: number }).port) }
  const status = await cli(env, 'status')
  t.equal(status.code, 0, status.stderr)
  t.match(status.stdout, /\nbase\s+/)

  const file = path.join(tempDir(), 'added.yaml')
  writeFileSync(file, stringify(fixturePlugin('added', 'sleep', { config: { level: 1, name: 'a' } })))
  const add = await cli(env, 'add', file)
  t.equal(add.code, 0, add.stderr)
  t.ok(app.daemon.supervisor.has('added'), 'added is loaded')
  const config = await cli(env, 'config', 'added', '--set', 'level=5', '--set', 'tag=blue', '--set', 'flags={"x":true}')
  t.equal(config.code, 0, config.stderr)
  t.same(app.daemon.supervisor.manifest('added').config, { level: 5, name: 'a', tag: 'blue', flags: { x: true } })
  const remove = await cli(env, 'remove', 'added')
  t.equal(remove.code, 0, remove.stderr)
  t.notOk(app.daemon.supervisor.has('added'), 'added is unloaded')
})
