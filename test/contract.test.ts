// The published contract (openapi.yaml) against linting and against the daemon's real answers:
// Redocly's recommended ruleset, and Prism as a validating proxy in front of a real daemon
// replaying every request of the README's "A tour with curl".
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { request } from 'undici'
import { packageRoot } from '../src/paths.js'
import { startupProbe, tempDir } from './helper.js'

t.setTimeout(120000)

const bin = (name: string): string => path.join(packageRoot, 'node_modules/.bin', name)
const OPENAPI = path.join(packageRoot, 'openapi.yaml')

/** n distinct free loopback ports (each held until all are found, so none repeats). */
async function freePorts (n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => resolve(srv))
  })))
  const ports = servers.map((s) => (s.address() as { port: number }).port)
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  return ports
}

/** Every request of the README's tour: method and path with query, in order. */
function tourRequests (): { method: string, url: string }[] {
  const readme = readFileSync(path.join(packageRoot, 'README.md'), 'utf8')
  const tour = readme.slice(readme.indexOf('## A tour with curl'), readme.indexOf('## Command line'))
  return [...tour.matchAll(/curl -s (?:-X ([A-Z]+) )?'?localhost:7070([^' |)\n]*)'?/g)].map((m) => ({ method: m[1] ?? 'GET', url: m[2] }))
}

t.test("Redocly's recommended ruleset finds nothing in openapi.yaml", async (t) => {
  const r = spawnSync(bin('redocly'), ['lint', OPENAPI, '--format=json'], { encoding: 'utf8', cwd: packageRoot, timeout: 60000, env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } })
  const report = JSON.parse(r.stdout) as { totals: { errors: number, warnings: number }, problems: { ruleId: string, message: string }[] }
  t.same(report.problems.map((p) => `${p.ruleId}: ${p.message}`), [], 'no problem')
  t.same(report.totals, { errors: 0, warnings: 0, ignored: 0 })
  t.equal(r.status, 0)
})

t.test("Prism, validating requests and answers against openapi.yaml, finds nothing in the README's tour", async (t) => {
  const requests = tourRequests()
  t.ok(requests.length >= 14, `the tour's ${requests.length} requests`)
  const dir = tempDir()
  const [daemonPort, prismPort] = await freePorts(2)
  const example = (file: string) => path.join(packageRoot, 'examples/plugins', file)
  const config = path.join(dir, 'plugvisor.json')
  // The shipped plugins, probed more often so the tour's waits are short (a startup probe covers
  // a slow start on a busy machine); flaky does not crash here.
  writeFileSync(config, JSON.stringify({
    server: { host: '127.0.0.1', port: daemonPort },
    dataDir: './data',
    pluginsDir: './none',
    log: { level: 'warn' },
    plugins: [
      { name: 'echo', version: '1.0.0', command: process.execPath, args: [example('echo.mjs')], critical: true, port: 'auto', healthCheck: { http: { path: '/health' }, intervalMs: 200, timeoutMs: 1000, ...startupProbe }, configSchema: { type: 'object', properties: { apiKey: { type: 'string', sensitive: true } } }, config: { apiKey: 'not-a-real-key' } },
      { name: 'flaky', version: '1.0.0', command: process.execPath, args: [example('flaky.mjs')], dependsOn: ['echo'], env: { CRASH_CHANCE: '0' } }
    ]
  }))
  // The daemon from dist/, with a plain environment (not the test runner's loaders and coverage hooks).
  const env = { PATH: process.env.PATH, HOME: process.env.HOME }
  const daemon = spawn(process.execPath, [path.join(packageRoot, 'dist/src/bin.cjs'), 'serve', '--config', config], { stdio: ['ignore', 'ignore', 'inherit'], env })
  const daemonExit = new Promise((resolve) => daemon.once('exit', resolve))
  // A SIGKILL would leave its plugins running (they live in process groups of their own, and only
  // a next daemon on this data folder reaps them): SIGTERM, which stops them, and SIGKILL only if
  // it does not exit in time.
  t.teardown(async () => {
    if (daemon.exitCode !== null || daemon.signalCode !== null) return
    daemon.kill('SIGTERM')
    const timer = setTimeout(() => daemon.kill('SIGKILL'), 20000)
    await daemonExit
    clearTimeout(timer)
  })
  const prism = spawn(bin('prism'), ['proxy', OPENAPI, `http://127.0.0.1:${daemonPort}`, '--errors', '--host', '127.0.0.1', '--port', String(prismPort)], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env })
  // prism is a shell script starting node: its whole group goes.
  t.teardown(() => { try { process.kill(-prism.pid!, 'SIGKILL') } catch {} })
  const prismLog: string[] = []
  await new Promise<void>((resolve, reject) => {
    prism.once('exit', (code) => reject(new Error(`prism exited ${code}: ${prismLog.join('\n')}`)))
    for (const s of [prism.stdout!, prism.stderr!]) {
      createInterface({ input: s }).on('line', (line) => {
        prismLog.push(line)
        if (/Prism is listening/.test(line)) resolve()
      })
    }
  })
  // Ready: the initial start pass is done and echo is healthy.
  for (let i = 0; ; i++) {
    const r = await request(`http://127.0.0.1:${daemonPort}/health/readiness?verbose`).catch((err: Error) => err)
    const text = r instanceof Error ? r.message : await r.body.text()
    if (!(r instanceof Error) && r.statusCode === 200) break
    if (i > 600) throw new Error(`daemon not ready: ${text}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }

  for (const { method, url } of requests) {
    const res = await request(`http://127.0.0.1:${prismPort}${url}`, { method: method as 'GET' | 'POST' })
    const body = await res.body.text()
    const violations = res.headers['sl-violations']
    t.notOk(violations, `${method} ${url}: no violation${violations ? `: ${String(violations)}` : ''}`)
    t.notMatch(String(res.headers['content-type']), /problem\+json/, `${method} ${url}: the daemon's answer, not Prism's (${res.statusCode} ${body.slice(0, 300)})`)
  }

  // Nothing of the tour outlives the daemon.
  const listed = await request(`http://127.0.0.1:${daemonPort}/plugins`).then(async (r) => await r.body.json() as { plugins: Array<{ pid: number | null }> })
  const pids = listed.plugins.map((p) => p.pid).filter((pid): pid is number => pid !== null)
  daemon.kill('SIGTERM')
  await daemonExit
  t.same(pids.filter((pid) => { try { process.kill(pid, 0); return true } catch { return false } }), [], 'the plugins stopped with the daemon')
})
