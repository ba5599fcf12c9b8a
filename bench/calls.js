#!/usr/bin/env node
// Calls a host made elsewhere, reported to the daemon: a POST /plugins/:name/calls batch of 1,000
// (budget: recorded in <= 5 ms). The daemon (dist/src/bin.cjs serve) runs in its own process with
// one plugin; round trips on one keep-alive connection, median of each: the batch of 1,000 and a
// report of one call (the HTTP and JSON cost every report pays), so the difference is the
// recording of 999 more calls (statistics, breaker, metrics).
//   npm run build && node bench/calls.js [--quick]
// Loopback only, bounded in time; the daemon is stopped by pid.
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { cleanup, exitAfter, round, sleepPlugin, startDaemon, stats, stopProcess, writeConfig } from './lib.js'

async function timed (pool, body, n) {
  const times = []
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint()
    const res = await pool.request({ method: 'POST', path: '/plugins/host/calls', headers: { 'content-type': 'application/json' }, body })
    await res.body.dump()
    if (res.statusCode !== 200) throw new Error(`POST calls: ${res.statusCode}`)
    times.push(Number(process.hrtime.bigint() - s) / 1e6)
  }
  return times
}

export async function benchCalls ({ quick = false } = {}) {
  const rounds = quick ? 20 : 200
  // 410 reports from 127.0.0.1 in a few seconds: over the default management rate limit.
  const config = writeConfig([sleepPlugin('host', { resilience: { circuitBreaker: { failureRate: 0.9, windowSize: 100 } } })], { rateLimit: { max: 100000 } })
  const { child: daemon, base } = await startDaemon(config)
  try {
    const pool = new Pool(base, { connections: 1 })
    // Mostly successes with some failures, as a host reports them; the circuit stays closed.
    const batch = JSON.stringify({ calls: Array.from({ length: 1000 }, (_, i) => ({ success: i % 10 !== 0, durationMs: 3 + (i % 7), ...(i % 10 === 0 ? { error: 'rpc failed' } : {}) })) })
    const one = JSON.stringify({ success: true, durationMs: 4 })
    await timed(pool, batch, 5)
    await timed(pool, one, 5)
    const b = []
    const o = []
    for (let i = 0; i < 4; i++) {
      b.push(...await timed(pool, batch, rounds / 4))
      o.push(...await timed(pool, one, rounds / 4))
    }
    await pool.close()
    const batchMs = stats(b).median
    const oneMs = stats(o).median
    return { rounds, batchP50Ms: round(batchMs, 3), oneP50Ms: round(oneMs, 3), recordingMs: round(batchMs - oneMs, 3), batchBytes: batch.length }
  } finally {
    await stopProcess(daemon)
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, 'time-limit-ms': { type: 'string', default: '60000' } } })
  exitAfter('bench/calls', Number(values['time-limit-ms']), cleanup)
  try {
    const r = await benchCalls({ quick: values.quick })
    process.stdout.write(JSON.stringify(r) + '\n')
    process.stdout.write(`POST calls, batch of 1,000: ${r.batchP50Ms} ms round trip (p50), one call ${r.oneP50Ms} ms; ${r.recordingMs} ms for the batch beyond one (budget: batch <= 5 ms)\n`)
  } finally {
    cleanup()
  }
}
