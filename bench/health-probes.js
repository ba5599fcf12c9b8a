// Bench: 500 plugins probed every second over HTTP, history on (budget:
// ≤ 10 % of one core, event-loop lag p99 ≤ 20 ms).
//
//   npm run build && node bench/health-probes.js [plugins=500] [seconds=30]
//
// The daemon (Fastify app, supervisor, health monitor, history writer) runs in this process; its
// CPU time and event-loop delay are measured here over a steady window after every plugin is
// healthy. Each plugin is a `sleep` process (cheap) whose health endpoint is one of the ports of
// a single fixture process serving many ports on 127.0.0.1. Bounded to 60 s; stops only what it
// started (the app stops its plugins; the fixture server is killed by pid).
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { buildServer } from '../dist/src/server.js'
import { loadConfig } from '../dist/src/config/load.js'

const PLUGINS = Number(process.argv[2] ?? 500)
const SECONDS = Math.min(Number(process.argv[3] ?? 30), 40)
const HARD_LIMIT_MS = 60_000

const SERVER = `
const http = require('node:http')
const n = Number(process.argv[1])
const ports = []
let pending = n
for (let i = 0; i < n; i++) {
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/health+json' })
    res.end('{"status":"pass"}')
  })
  srv.listen(0, '127.0.0.1', () => {
    ports.push(srv.address().port)
    if (--pending === 0) console.log(JSON.stringify(ports))
  })
}
`

const started = []
let app = null
/** Kills the plugins' process groups (the daemon starts each in its own) and the fixture server. */
function killAll () {
  const sup = app?.daemon.supervisor
  for (const name of sup?.names() ?? []) {
    const pid = sup.summary(name).pid
    if (pid) { try { process.kill(-pid, 'SIGKILL') } catch {} }
  }
  for (const pid of started) { try { process.kill(pid, 'SIGKILL') } catch {} }
}
const hardStop = setTimeout(() => {
  console.error('bench: hard time limit reached, stopping')
  killAll()
  process.exit(1)
}, HARD_LIMIT_MS)

const server = spawn(process.execPath, ['-e', SERVER, String(PLUGINS)], { stdio: ['ignore', 'pipe', 'inherit'] })
started.push(server.pid)
const ports = await new Promise((resolve, reject) => {
  server.once('exit', (code) => reject(new Error(`fixture server exited ${code}`)))
  createInterface({ input: server.stdout }).once('line', (line) => resolve(JSON.parse(line)))
})

const dir = mkdtempSync(path.join(tmpdir(), 'plugvisor-bench-'))
const plugins = ports.map((port, i) => ({
  name: `p${i}`,
  command: 'sleep',
  args: ['3600'],
  port,
  healthCheck: { http: { path: '/health' }, intervalMs: 1000, timeoutMs: 1000 },
  stop: { timeoutMs: 2000 }
}))
writeFileSync(path.join(dir, 'plugvisor.json'), JSON.stringify({ dataDir: './data', pluginsDir: './none', plugins, log: { level: 'warn' }, history: { flushIntervalMs: 1000 } }))
app = await buildServer({ loaded: loadConfig(path.join(dir, 'plugvisor.json')), logger: false })
await app.ready()
const { supervisor, healthHistory } = app.daemon
// One waiter per plugin below.
supervisor.setMaxListeners(PLUGINS + 20)

const t0 = Date.now()
try {
  await Promise.all(supervisor.names().map((n) => supervisor.waitFor(n, (s) => s.status === 'healthy', 30_000)))
} catch (err) {
  console.error(`bench: ${err.message}`)
  killAll()
  process.exit(1)
}
console.log(`${PLUGINS} plugins healthy after ${Date.now() - t0} ms`)

let probes = 0
let failures = 0
app.daemon.healthMonitor.on('probe', (e) => { probes++; if (e.result !== 'success') failures++ })
// Let the start-up settle, then measure a steady window.
await new Promise((resolve) => setTimeout(resolve, 3000))
probes = 0
failures = 0
// Resolution 1 ms: every figure includes up to that 1 ms sampling period (conservative).
const lag = monitorEventLoopDelay({ resolution: 1 })
lag.enable()
const cpu0 = process.cpuUsage()
const wall0 = process.hrtime.bigint()
await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000))
const cpu = process.cpuUsage(cpu0)
const wallMs = Number(process.hrtime.bigint() - wall0) / 1e6
lag.disable()
// Results the history holds (written, plus the last flush window still buffered).
const rows = supervisor.names().reduce((n, name) => n + healthHistory.stats(name).totalChecks, 0)

const result = {
  plugins: PLUGINS,
  windowSeconds: Math.round(wallMs / 100) / 10,
  probesPerSecond: Math.round(probes / (wallMs / 1000)),
  probeFailures: failures,
  cpuPercentOfOneCore: Math.round(((cpu.user + cpu.system) / 1000 / wallMs) * 1000) / 10,
  eventLoopLagP50Ms: Math.round(lag.percentile(50) / 1e4) / 100,
  eventLoopLagP99Ms: Math.round(lag.percentile(99) / 1e4) / 100,
  eventLoopLagMaxMs: Math.round(lag.max / 1e4) / 100,
  historyRows: rows,
  historyPending: healthHistory.pending(),
  budget: { cpuPercentOfOneCore: 10, eventLoopLagP99Ms: 20 }
}
console.log(JSON.stringify(result, null, 2))

await app.close()
try { process.kill(server.pid, 'SIGTERM') } catch {}
rmSync(dir, { recursive: true, force: true })
clearTimeout(hardStop)
