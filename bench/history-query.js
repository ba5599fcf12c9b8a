#!/usr/bin/env node
// History query (budget: ≤ 20 ms): 24 h of one plugin probed every second
// (86,400 results written through the real history writer in flush-sized batches, with their
// rollups), then GET /plugins/:name/health/history over loopback HTTP at minute resolution for
// the whole day (1,440 buckets) and at raw resolution (the default limit of 1,000 results).
//   npm run build && node bench/history-query.js
// No plugin process is started; the database lives in a temp folder that is removed after.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { request } from 'undici'
import { buildServer } from '../dist/src/server.js'
import { loadConfig } from '../dist/src/config/load.js'

// --quick: 2 h instead of 24 (the harness's quick run checks the bench, not the budget).
const DAY = process.argv.includes('--quick') ? 7_200_000 : 86_400_000
const dir = mkdtempSync(path.join(tmpdir(), 'plugvisor-bench-history-'))
const file = path.join(dir, 'plugvisor.json')
writeFileSync(file, JSON.stringify({ dataDir: './data', pluginsDir: './none', log: { level: 'warn' }, plugins: [{ name: 'probed', command: 'sleep', args: ['3600'], autostart: false }] }))
const app = await buildServer({ loaded: loadConfig(file), boot: false, logger: false })
try {
  const { healthHistory } = app.daemon
  const end = Date.now()
  const start = end - DAY
  const t0 = performance.now()
  for (let at = start, i = 0; at < end; at += 1000, i++) {
    healthHistory.record({ plugin: 'probed', probe: 'http', phase: 'regular', result: i % 97 === 0 ? 'failure' : 'success', durationMs: 1 + (i % 13), at })
    if (i % 1000 === 999) healthHistory.flush() // one transaction per 1,000 results, as a 1 s flush of 1,000 plugins would be
  }
  healthHistory.flush()
  const writeMs = performance.now() - t0
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${app.server.address().port}/plugins/probed/health/history`
  const since = new Date(start).toISOString()
  const until = new Date(end).toISOString()
  const time = async (url, check) => {
    const times = []
    for (let i = 0; i < 110; i++) {
      const s = performance.now()
      const res = await request(url)
      const body = await res.body.json()
      const ms = performance.now() - s
      if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode}`)
      check(body)
      if (i >= 10) times.push(ms)
    }
    times.sort((a, b) => a - b)
    return { n: times.length, medianMs: +times[Math.floor(times.length / 2)].toFixed(2), p95Ms: +times[Math.floor(times.length * 0.95)].toFixed(2) }
  }
  const minute = await time(`${base}?resolution=minute&limit=10000&since=${since}&until=${until}`, (b) => {
    if (b.buckets.length < DAY / 60_000) throw new Error(`minute: ${b.buckets.length} buckets`)
  })
  const raw = await time(`${base}?resolution=raw&since=${since}&until=${until}`, (b) => {
    if (b.checks.length !== 1000) throw new Error(`raw: ${b.checks.length} checks`)
  })
  process.stdout.write(JSON.stringify({ results: DAY / 1000, writeMs: Math.round(writeMs), minute, raw, budgetMs: 20 }) + '\n')
} finally {
  await app.close()
  rmSync(dir, { recursive: true, force: true })
}
