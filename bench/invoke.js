#!/usr/bin/env node
// Calls into a plugin through the invoke proxy beside its anchors, all in one run and on the same
// backend (one minimal Node HTTP server answering 2 bytes, started by the daemon as its plugin):
//   direct      straight to the plugin
//   plugvisor   /plugins/target/invoke/x through the default policies (dist/src/bin.cjs serve)
//   reply-from  a minimal Fastify 5 + @fastify/reply-from proxy (bench/reply-from.js)
//   nginx       1 worker, keep-alive upstream, when /usr/sbin/nginx exists
// Throughput: autocannon at 10 and 50 connections, slices alternating between the targets; the
// ratio to reply-from is the median of per-round ratios. Requests per CPU-second of each proxy
// process (user + system from /proc, every thread): less sensitive to other load on the machine.
// Added p50: sequential requests on one keep-alive connection, alternating batches.
//   npm run build && node bench/invoke.js [--quick]
// Loopback only, bounded in time; everything started is stopped by pid.
import { existsSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool, request } from 'undici'
import autocannon from 'autocannon'
import {
  ROOT, childrenOf, cleanup, cpuSeconds, exitAfter, exitedWithin, freePort, round, startDaemon, startProcess, stats,
  stopProcess, tempDir, trackStray, until, plugvisorKb, plugvisorPids
} from './lib.js'

export const NGINX = '/usr/sbin/nginx'
/**
 * Requests nginx serves on one connection before it closes it: its default (1000) closes each of
 * autocannon's connections every thousand answers, and autocannon writes its next request on a
 * connection whatever the answer's `Connection: close` says, so now and then that request meets
 * the closed socket and autocannon counts an ECONNRESET against nginx. The other targets keep a
 * connection for any number of requests (Node's and Fastify's default), so nginx does too here;
 * the same for its connections to the plugin (plugvisor's are not closed after a count either).
 */
const KEEPALIVE_REQUESTS = 100_000_000
const PREFIX = '/plugins/target/invoke'

const PLUGIN_SOURCE = `import { createServer } from 'node:http'
createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok') })
  .listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'))
`

/** autocannon's result, with `failed`: each failed request (a connection error, a timeout) by its code. */
function cannon (url, connections, duration) {
  return new Promise((resolve, reject) => {
    const failed = {}
    const run = autocannon({ url, connections, pipelining: 1, duration }, (err, res) => err ? reject(err) : resolve({ ...res, failed }))
    run.on('reqError', (err) => { const code = err.code ?? err.message; failed[code] = (failed[code] ?? 0) + 1 })
  })
}

/** Per-request times (ms) of n sequential GETs on one keep-alive connection. */
async function sequential (pool, pathname, n) {
  const times = []
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint()
    const res = await pool.request({ method: 'GET', path: pathname })
    await res.body.text()
    if (res.statusCode !== 200) throw new Error(`GET ${pathname}: ${res.statusCode}`)
    times.push(Number(process.hrtime.bigint() - s) / 1e6)
  }
  return times
}

function ipcReady (child, what) {
  return new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (code) => reject(new Error(`${what} exited ${code}`)))
  })
}

async function startNginx (dir, upstreamPort) {
  const port = await freePort()
  const conf = path.join(dir, 'nginx.conf')
  const tmp = (n) => `${n}_temp_path ${path.join(dir, n)};`
  writeFileSync(conf, `worker_processes 1;
daemon off;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests ${KEEPALIVE_REQUESTS};
  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(tmp).join('\n  ')}
  upstream plugin { server 127.0.0.1:${upstreamPort}; keepalive 64; keepalive_requests ${KEEPALIVE_REQUESTS}; }
  server {
    listen 127.0.0.1:${port};
    location ${PREFIX}/ { proxy_pass http://plugin/; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`)
  const master = startProcess(NGINX, ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] }, 'nginx')
  await until(async () => {
    if (master.exitCode !== null) throw new Error(`nginx exited ${master.exitCode}`)
    try { const r = await request(`http://127.0.0.1:${port}${PREFIX}/x`); await r.body.dump(); return r.statusCode === 200 } catch { return undefined }
  }, 10000, 'nginx to listen')
  // The worker is the master's child: killed by pid at cleanup if the master could not stop it.
  for (const pid of childrenOf(master.pid)) trackStray(pid)
  return { child: master, url: `http://127.0.0.1:${port}`, pids: () => [master.pid, ...childrenOf(master.pid)] }
}

export async function benchInvoke ({ quick = false } = {}) {
  const slices = quick ? 1 : 4
  const seconds = quick ? 1 : 2
  const latencyRequests = quick ? 100 : 2000
  const concurrency = [10, 50]
  const dir = tempDir('plugvisor-bench-invoke-')
  const pluginFile = path.join(dir, 'plugin.mjs')
  writeFileSync(pluginFile, PLUGIN_SOURCE)
  const config = path.join(dir, 'plugvisor.json')
  writeFileSync(config, JSON.stringify({
    dataDir: './data',
    pluginsDir: './none',
    log: { level: 'warn' },
    plugins: [{ name: 'target', command: process.execPath, args: [pluginFile], port: 'auto', stop: { timeoutMs: 2000 } }]
  }))
  const { child: daemon, base } = await startDaemon(config)
  let pluginPid
  let replyFrom
  let nginx
  try {
    const plugin = await until(async () => {
      try {
        const res = await request(`${base}/plugins/target`)
        const s = await res.body.json()
        return s.state === 'running' && s.port ? s : undefined
      } catch { return undefined }
    }, 20000, 'the plugin running')
    pluginPid = plugin.pid
    const pluginBase = `http://127.0.0.1:${plugin.port}`
    await until(async () => {
      try { const r = await request(`${pluginBase}/x`); await r.body.dump(); return r.statusCode === 200 } catch { return undefined }
    }, 10000, 'the plugin listening')

    const rfPort = await freePort()
    replyFrom = startProcess(process.execPath, [path.join(ROOT, 'bench/reply-from.js')], {
      env: { ...process.env, PORT: String(rfPort), UPSTREAM_PORT: String(plugin.port) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    }, 'reply-from')
    await ipcReady(replyFrom, 'reply-from proxy')
    if (existsSync(NGINX)) nginx = await startNginx(dir, plugin.port)

    const targets = [
      { key: 'direct', url: `${pluginBase}/x`, pids: () => [pluginPid] },
      { key: 'plugvisor', url: `${base}${PREFIX}/x`, pids: () => plugvisorPids(daemon.pid) },
      { key: 'replyFrom', url: `http://127.0.0.1:${rfPort}${PREFIX}/x`, pids: () => [replyFrom.pid] },
      ...(nginx ? [{ key: 'nginx', url: `${nginx.url}${PREFIX}/x`, pids: nginx.pids }] : [])
    ]
    const cpuOf = (t) => t.pids().reduce((a, pid) => a + cpuSeconds(pid), 0)

    const byConcurrency = {}
    // Every request that did not get a 2xx, by target, concurrency and code (ECONNRESET: a dropped
    // connection): counted over the whole run, then the run fails if there is any.
    const failures = []
    for (const c of concurrency) {
      if (!quick || c === concurrency[0]) {
        for (const t of targets) {
          const r = await cannon(t.url, c, 1) // warm-up
          if (r.errors || r.non2xx) failures.push({ target: t.key, c, slice: 'warm-up', answers: r.requests.total, non2xx: r.non2xx, ...r.failed })
        }
      }
      const runs = Object.fromEntries(targets.map((t) => [t.key, []]))
      for (let i = 0; i < slices; i++) {
        // Rotate the order each round so no target always follows the same neighbour.
        for (let j = 0; j < targets.length; j++) {
          const t = targets[(i + j) % targets.length]
          const cpu0 = cpuOf(t)
          const r = await cannon(t.url, c, seconds)
          const cpu = cpuOf(t) - cpu0
          if (r.errors || r.non2xx) failures.push({ target: t.key, c, slice: i, answers: r.requests.total, non2xx: r.non2xx, ...r.failed })
          runs[t.key].push({ rps: r.requests.average, total: r.requests.total, cpu, p50: r.latency.p50 })
        }
      }
      const out = {}
      for (const t of targets) {
        const rs = runs[t.key]
        const cpu = rs.reduce((a, r) => a + r.cpu, 0)
        const total = rs.reduce((a, r) => a + r.total, 0)
        out[t.key] = {
          reqPerSec: Math.round(stats(rs.map((r) => r.rps)).median),
          reqPerCpuSecond: Math.round(total / cpu),
          cpuUsPerRequest: round(cpu / total * 1e6, 1),
          ofDirect: round(stats(rs.map((r, i) => r.rps / runs.direct[i].rps)).median, 3)
        }
      }
      const pv = runs.plugvisor
      out.vsReplyFrom = {
        throughput: round(stats(pv.map((r, i) => r.rps / runs.replyFrom[i].rps)).median, 3),
        perCpuSecond: round(out.plugvisor.reqPerCpuSecond / out.replyFrom.reqPerCpuSecond, 3)
      }
      byConcurrency[c] = out
    }

    // Added latency: one connection each, sequential, alternating batches.
    const pools = {
      plugvisor: [new Pool(base, { connections: 1 }), `${PREFIX}/x`],
      direct: [new Pool(pluginBase, { connections: 1 }), '/x'],
      replyFrom: [new Pool(`http://127.0.0.1:${rfPort}`, { connections: 1 }), `${PREFIX}/x`]
    }
    const lat = { plugvisor: [], direct: [], replyFrom: [] }
    try {
      for (const [pool, p] of Object.values(pools)) await sequential(pool, p, quick ? 50 : 200)
      const batch = Math.max(1, Math.floor(latencyRequests / 10))
      for (let i = 0; i < 10; i++) {
        for (const [k, [pool, p]] of Object.entries(pools)) lat[k].push(...await sequential(pool, p, batch))
      }
    } finally {
      for (const [pool] of Object.values(pools)) await pool.close()
    }
    const p50 = Object.fromEntries(Object.entries(lat).map(([k, v]) => [k, stats(v).median]))
    const result = {
      slices,
      sliceSeconds: seconds,
      nginx: nginx ? 'measured' : 'skipped: nginx not installed',
      concurrency: byConcurrency,
      latency: {
        requests: lat.plugvisor.length,
        directP50Ms: round(p50.direct, 3),
        plugvisorP50Ms: round(p50.plugvisor, 3),
        replyFromP50Ms: round(p50.replyFrom, 3),
        addedP50Ms: round(p50.plugvisor - p50.direct, 3),
        replyFromAddedP50Ms: round(p50.replyFrom - p50.direct, 3)
      },
      daemonPeakRssMb: round(plugvisorKb(daemon.pid, 'VmHWM') / 1024, 1),
      failures
    }
    if (failures.length > 0) {
      throw Object.assign(new Error(`autocannon saw requests without a 2xx answer: ${failures.map((f) => JSON.stringify(f)).join(', ')}`), { result })
    }
    return result
  } finally {
    if (nginx) {
      // SIGQUIT: graceful shutdown of master and worker.
      try { process.kill(nginx.child.pid, 'SIGQUIT') } catch {}
      if (!await exitedWithin(nginx.child, 5000)) await stopProcess(nginx.child, 2000)
    }
    if (replyFrom) {
      if (replyFrom.connected) replyFrom.disconnect()
      if (!await exitedWithin(replyFrom, 5000)) await stopProcess(replyFrom, 2000)
    }
    await stopProcess(daemon, 10000)
    // The daemon stops its plugin; only when it had to be killed is the plugin's group killed by its id.
    if (pluginPid && daemon.signalCode === 'SIGKILL') { try { process.kill(-pluginPid, 'SIGKILL') } catch {} }
  }
}

/** One line per concurrency: each target's throughput, share of direct, requests per CPU-second. */
export function invokeSummary (r) {
  const lines = []
  for (const [c, o] of Object.entries(r.concurrency)) {
    const cell = (k) => o[k] ? `${k} ${o[k].reqPerSec} req/s (${round(o[k].ofDirect * 100, 1)} % of direct, ${o[k].reqPerCpuSecond} req/CPU-s, ${o[k].cpuUsPerRequest} µs CPU/req)` : `${k} ${r.nginx}`
    lines.push(`c=${c}: ${['direct', 'plugvisor', 'replyFrom', 'nginx'].map(cell).join('; ')}; plugvisor/reply-from ${round(o.vsReplyFrom.throughput * 100, 1)} % throughput, ${round(o.vsReplyFrom.perCpuSecond * 100, 1)} % per CPU-second`)
  }
  lines.push(`p50 added: plugvisor ${r.latency.addedP50Ms} ms, reply-from ${r.latency.replyFromAddedP50Ms} ms (direct ${r.latency.directP50Ms} ms, n=${r.latency.requests}); daemon peak RSS ${r.daemonPeakRssMb} MB`)
  lines.push(`requests without a 2xx answer: ${r.failures.length === 0 ? 'none' : r.failures.map((f) => JSON.stringify(f)).join(', ')}`)
  return lines.join('\n')
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, 'time-limit-ms': { type: 'string', default: '180000' } } })
  exitAfter('bench/invoke', Number(values['time-limit-ms']), cleanup)
  try {
    const r = await benchInvoke({ quick: values.quick }).catch((err) => {
      if (err.result === undefined) throw err
      process.exitCode = 1
      process.stderr.write(`${err.message}\n`)
      return err.result
    })
    process.stdout.write(JSON.stringify(r) + '\n')
    process.stdout.write(invokeSummary(r) + '\n')
  } finally {
    cleanup()
  }
}
