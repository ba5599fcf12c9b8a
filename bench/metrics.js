#!/usr/bin/env node
// GET /metrics with 500 plugins (budget: <= 15 ms median).
//   npm run build && node bench/metrics.js [--plugins 500] [--requests 200]
// A real daemon on a loopback port with N `sleep` fixture plugins (real processes), then
// sequential GET /metrics over HTTP; prints median and p95. Bounded in time; everything it
// started is stopped by process group id, also when it fails.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { exitAfter } from './lib.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { buildServer } = await import(path.join(root, 'dist/src/server.js'))
const { loadConfig } = await import(path.join(root, 'dist/src/config/load.js'))

const { values } = parseArgs({ options: { plugins: { type: 'string', default: '500' }, requests: { type: 'string', default: '200' }, 'time-limit-ms': { type: 'string', default: '180000' } } })
const N = Number(values.plugins)
const REQUESTS = Number(values.requests)
/** Process groups of the plugins this bench started: killed by id if anything is left. */
const started = new Set()
const killStarted = () => {
  for (const pgid of started) { try { process.kill(-pgid, 'SIGKILL') } catch {} }
}

export async function benchMetrics ({ plugins = N, requests = REQUESTS } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'plugvisor-bench-metrics-'))
  const file = path.join(dir, 'plugvisor.json')
  const manifests = Array.from({ length: plugins }, (_, i) => ({
    name: `p${String(i).padStart(3, '0')}`,
    command: 'sleep', // coreutils: cheap children, as in the lifecycle bench
    args: ['3600'],
    stop: { timeoutMs: 5000 }
  }))
  writeFileSync(file, JSON.stringify({ dataDir: './data', pluginsDir: './none', plugins: manifests, log: { level: 'warn' }, server: { host: '127.0.0.1', port: 0 } }))
  const app = await buildServer({ loaded: loadConfig(file), boot: false, logger: { level: 'warn' } })
  const track = (e) => { const id = app.daemon.supervisor.processOf(e.plugin); if (id) started.add(id.pgid) }
  app.daemon.supervisor.on('transition', track)
  const cleanup = async () => {
    try {
      await app.close()
    } catch (err) {
      // The daemon could not stop them: SIGKILL every group it started, by id.
      killStarted()
      throw err
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  try {
    const t0 = performance.now()
    await app.daemon.boot()
    const bootMs = performance.now() - t0
    const running = app.daemon.supervisor.list().filter((p) => p.state === 'running').length
    if (running !== plugins) throw new Error(`${running} of ${plugins} plugins running`)
    app.daemon.resources.sample()
    await app.listen({ host: '127.0.0.1', port: 0 })
    const url = `http://127.0.0.1:${app.server.address().port}/metrics`
    let bytes = 0
    const get = async () => {
      const res = await request(url)
      const text = await res.body.text()
      if (res.statusCode !== 200) throw new Error(`GET /metrics: ${res.statusCode}`)
      bytes = text.length
    }
    for (let i = 0; i < 10; i++) await get() // warm-up
    const times = []
    for (let i = 0; i < requests; i++) {
      const s = performance.now()
      await get()
      times.push(performance.now() - s)
    }
    times.sort((a, b) => a - b)
    const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))]
    return { plugins, requests, bootMs: Math.round(bootMs), bodyBytes: bytes, medianMs: +q(0.5).toFixed(2), p95Ms: +q(0.95).toFixed(2), maxMs: +times[times.length - 1].toFixed(2) }
  } finally {
    await cleanup()
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  exitAfter('bench/metrics', Number(values['time-limit-ms']), killStarted)
  const result = await benchMetrics()
  process.stdout.write(JSON.stringify(result) + '\n')
  process.stdout.write(`GET /metrics with ${result.plugins} plugins: median ${result.medianMs} ms, p95 ${result.p95Ms} ms (budget: median <= 15 ms)\n`)
}
