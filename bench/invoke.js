#!/usr/bin/env node
// Calls into a plugin through the invoke proxy vs straight to the plugin
// (budget: >= 70 % of the throughput, <= 0.5 ms added at p50).
//   npm run build && node bench/invoke.js [--slices 5] [--seconds 2] [--latency-requests 2000]
// The daemon (dist/src/bin.js serve, the flags npm start gives it) runs in its own process with
// one plugin: a minimal Node HTTP server answering 2 bytes. Throughput: autocannon, 10
// connections, alternating slices (proxy, direct, proxy, ...) in the same run, median of each.
// Latency: sequential requests on one keep-alive connection, alternating batches, median of
// each; the difference of the medians is the added latency. Loopback only, bounded in time; the
// daemon is stopped by pid (it stops the plugin), and SIGKILLed with the plugin's group if not.
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool, request } from 'undici'
import autocannon from 'autocannon'
import { BIN, DAEMON_NODE_FLAGS, cleanup, exitAfter, freePort, round, startProcess, stats, stopProcess, tempDir, until } from './lib.js'

const { values } = parseArgs({
  options: {
    slices: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '2' },
    'latency-requests': { type: 'string', default: '2000' },
    'time-limit-ms': { type: 'string', default: '120000' }
  }
})

const PLUGIN_SOURCE = `import { createServer } from 'node:http'
createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok') })
  .listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'))
`

function cannon (url, duration) {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections: 10, pipelining: 1, duration }, (err, res) => err ? reject(err) : resolve(res))
  })
}

/** Median per-request time of n sequential GETs on one keep-alive connection (ms). */
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

export async function benchInvoke ({ slices = Number(values.slices), seconds = Number(values.seconds), latencyRequests = Number(values['latency-requests']) } = {}) {
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
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const daemon = startProcess(process.execPath, [...DAEMON_NODE_FLAGS, BIN, 'serve', '--config', config], {
    env: { ...process.env, PLUGVISOR_PORT: String(port), PLUGVISOR_HOST: '127.0.0.1', PLUGVISOR_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit']
  }, 'plugvisor')
  let pluginPid
  try {
    const plugin = await until(async () => {
      try {
        const res = await request(`${base}/plugins/target`)
        const s = await res.body.json()
        return s.state === 'running' && s.port ? s : undefined
      } catch { return undefined }
    }, 20000, 'the plugin running')
    pluginPid = plugin.pid
    const direct = `http://127.0.0.1:${plugin.port}/x`
    const proxied = `${base}/plugins/target/invoke/x`
    await until(async () => {
      try { const r = await request(direct); await r.body.dump(); return r.statusCode === 200 } catch { return undefined }
    }, 10000, 'the plugin listening')

    // Throughput: warm both up, then alternate.
    await cannon(proxied, 1)
    await cannon(direct, 1)
    const rps = { proxy: [], direct: [] }
    const p50 = { proxy: [], direct: [] }
    for (let i = 0; i < slices; i++) {
      for (const [k, url] of [['proxy', proxied], ['direct', direct]]) {
        const r = await cannon(url, seconds)
        if (r.errors || r.non2xx) throw new Error(`autocannon saw errors against ${url}`)
        rps[k].push(r.requests.average)
        p50[k].push(r.latency.p50)
      }
    }

    // Latency: one connection, sequential, alternating batches.
    const daemonPool = new Pool(base, { connections: 1 })
    const pluginPool = new Pool(`http://127.0.0.1:${plugin.port}`, { connections: 1 })
    const lat = { proxy: [], direct: [] }
    try {
      await sequential(daemonPool, '/plugins/target/invoke/x', 200)
      await sequential(pluginPool, '/x', 200)
      const batch = Math.max(1, Math.floor(latencyRequests / 10))
      for (let i = 0; i < 10; i++) {
        lat.proxy.push(...await sequential(daemonPool, '/plugins/target/invoke/x', batch))
        lat.direct.push(...await sequential(pluginPool, '/x', batch))
      }
    } finally {
      await daemonPool.close()
      await pluginPool.close()
    }
    const proxyRps = stats(rps.proxy).median
    const directRps = stats(rps.direct).median
    const proxyLat = stats(lat.proxy)
    const directLat = stats(lat.direct)
    return {
      slices,
      sliceSeconds: seconds,
      throughput: { proxyReqPerSec: Math.round(proxyRps), directReqPerSec: Math.round(directRps), ratio: round(proxyRps / directRps, 3), proxySlices: rps.proxy.map(Math.round), directSlices: rps.direct.map(Math.round) },
      autocannonP50Ms: { proxy: stats(p50.proxy).median, direct: stats(p50.direct).median },
      latency: {
        requests: lat.proxy.length,
        proxyP50Ms: round(proxyLat.median, 3),
        directP50Ms: round(directLat.median, 3),
        addedP50Ms: round(proxyLat.median - directLat.median, 3),
        proxyP95Ms: round(proxyLat.p95, 3),
        directP95Ms: round(directLat.p95, 3)
      }
    }
  } finally {
    await stopProcess(daemon, 10000)
    // The daemon stops its plugin; only when it had to be killed is the plugin's group killed by its id.
    if (pluginPid && daemon.signalCode === 'SIGKILL') { try { process.kill(-pluginPid, 'SIGKILL') } catch {} }
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  exitAfter('bench/invoke', Number(values['time-limit-ms']), cleanup)
  try {
    const r = await benchInvoke()
    process.stdout.write(JSON.stringify(r) + '\n')
    process.stdout.write(`invoke: ${r.throughput.proxyReqPerSec} vs ${r.throughput.directReqPerSec} req/s direct = ${round(r.throughput.ratio * 100, 1)} % (budget >= 70 %); p50 ${r.latency.proxyP50Ms} vs ${r.latency.directP50Ms} ms, added ${r.latency.addedP50Ms} ms (budget <= 0.5 ms)\n`)
  } finally {
    cleanup()
  }
}
