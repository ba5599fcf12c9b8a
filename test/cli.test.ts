// The command line against a real daemon listening on loopback.
import t from 'tap'
import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { build, fixturePlugin, served, writeConfig } from './helper.js'
import { packageRoot } from '../src/paths.js'

const run = promisify(execFile)
const bin = path.join(packageRoot, 'dist/src/bin.js')

async function cli (url: string, ...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { env: { ...process.env, PLUGVISOR_URL: url }, timeout: 20000 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number, stdout: string, stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

t.test('status, start/stop/restart, logs, events and history through the API', async (t) => {
  const app = await build(t, writeConfig([
    served('web', {}, { startup: { failureThreshold: 200, intervalMs: 50 } }),
    fixturePlugin('worker', 'chatty', { args: ['3'] })
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
