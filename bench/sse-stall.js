#!/usr/bin/env node
// Stalled GET /events clients (budget: liveness p99 <= 50 ms). The daemon (`dist/src/bin.cjs
// serve`, its own process) gets `clients` real TCP clients on loopback that read the response
// head and then never read again, one more that must be refused (events.maxClients), and a
// stream of events: the circuit of a running plugin isolated and reset back to back (a circuit
// and a health event each call). Meanwhile
// GET /health/liveness is called back to back on one kept-alive connection and timed, and the
// daemon's resident memory is sampled. Then the stalled clients hang up and a new client must be
// accepted again. (On loopback the kernel takes about 4 MB per socket before the daemon's
// socket says it is full, so these clients are not dropped within the run; the drop at the cap
// is tested with one client in test/events.test.ts.)
//   npm run build && node bench/sse-stall.js [clients]
// Also the harness of test/sse-stall.test.ts, which asserts on what it returns.
import { connect } from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Client, request } from 'undici'
import { cleanup, freePort, quantile, round, startDaemon, stopProcess, until, writeConfig, plugvisorCpuSeconds, plugvisorKb } from './lib.js'

const DISCONNECTED = 'GET /events client disconnected: it did not keep up with the event stream'

/** A client that sends GET /events, reads the first chunk (head and ': connected'), and never reads again. */
function stalledClient (port) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n'))
    socket.once('data', (chunk) => {
      socket.pause()
      const head = chunk.toString('latin1')
      if (!head.startsWith('HTTP/1.1 200')) reject(new Error(`GET /events: ${head.split('\r\n')[0]}`))
      else resolve(socket)
    })
    socket.once('error', reject)
  })
}

/** GET /events clients connected now, from the daemon's metrics. */
async function streamClients (base) {
  const text = await (await request(`${base}/metrics`)).body.text()
  return Number(/^plugvisor_event_stream_clients (\d+)/m.exec(text)?.[1] ?? NaN)
}

export async function sseStall ({ clients = 200, produceMs = 10000 } = {}) {
  const port = await freePort()
  const file = writeConfig([{ name: 'target', command: 'sleep', args: ['3600'] }], {
    server: { host: '127.0.0.1', port },
    events: { keepAliveMs: 1000, maxClients: clients },
    // 200 streams, the producer's circuit calls and the reconnect all come from 127.0.0.1: not what the limiter is measured on here.
    rateLimit: { max: 100000 }
  })
  // Its log (stdout) is read from the start: a pipe holds what comes before the reader.
  const { child: daemon, base } = await startDaemon(file, { port, stdio: ['ignore', 'pipe', 'inherit'] })
  let dropLines = 0
  createInterface({ input: daemon.stdout }).on('line', (line) => { if (line.includes(DISCONNECTED)) dropLines++ })
  const sockets = []
  const live = new Client(base, { pipelining: 1 })
  try {
    const rss = () => plugvisorKb(daemon.pid, 'VmRSS') / 1024
    const baselineRssMb = rss()

    for (let i = 0; i < clients; i += 50) {
      sockets.push(...await Promise.all(Array.from({ length: Math.min(50, clients - i) }, () => stalledClient(port))))
    }
    const over = await request(`${base}/events`)
    const refused = { status: over.statusCode, retryAfter: over.headers['retry-after'] ?? null, code: over.statusCode === 503 ? (await over.body.json()).code : null }
    if (over.statusCode !== 503) over.body.on('error', () => {}).destroy()

    // Events keep coming on their own connection until the run ends.
    const producer = new Client(base, { pipelining: 1 })
    let calls = 0
    const done = new AbortController()
    const produced = (async () => {
      while (!done.signal.aborted) {
        const res = await producer.request({ method: 'POST', path: `/plugins/target/circuit/${calls % 2 === 0 ? 'isolate' : 'reset'}` })
        await res.body.dump()
        calls++
      }
    })()
    const times = []
    let failed = 0
    let peakRssMb = rss()
    const sampler = setInterval(() => { peakRssMb = Math.max(peakRssMb, rss()) }, 100)
    const cpu0 = plugvisorCpuSeconds(daemon.pid)
    const t0 = performance.now()
    try {
      const going = () => performance.now() - t0 < produceMs
      while (going()) {
        const s = performance.now()
        try {
          const res = await live.request({ method: 'GET', path: '/health/liveness' })
          await res.body.dump()
          if (res.statusCode === 200) times.push(performance.now() - s)
          else failed++
        } catch {
          failed++
        }
      }
    } finally {
      clearInterval(sampler)
    }
    done.abort()
    await produced
    // The daemon's CPU for the window: the events to every client, the calls that made them, liveness.
    const cpuMs = (plugvisorCpuSeconds(daemon.pid) - cpu0) * 1000
    await producer.close()
    const connected = await streamClients(base)
    for (const c of sockets.splice(0)) c.destroy()
    await until(async () => await streamClients(base) === 0, 10000, 'the stalled clients gone')
    const again = await request(`${base}/events`)
    const reconnectStatus = again.statusCode
    again.body.on('error', () => {}).destroy()
    times.sort((a, b) => a - b)
    return {
      clients,
      eventsProduced: calls * 2,
      daemonCpuMs: Math.round(cpuMs),
      daemonCpuUsPerEvent: round(cpuMs * 1000 / (calls * 2), 1),
      baselineRssMb: round(baselineRssMb, 1),
      peakRssMb: round(peakRssMb, 1),
      vmHwmMb: round(plugvisorKb(daemon.pid, 'VmHWM') / 1024, 1),
      connectedAtEnd: connected,
      dropLines,
      refused,
      reconnectStatus,
      liveness: { n: times.length, failed, p50Ms: round(quantile(times, 0.5)), p99Ms: round(quantile(times, 0.99)), maxMs: round(times[times.length - 1] ?? 0) },
      budgetP99Ms: 50
    }
  } finally {
    for (const s of sockets) s.destroy()
    await live.close().catch(() => {})
    await stopProcess(daemon)
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  sseStall({ clients: Number(process.argv[2] ?? 200) }).then((r) => {
    process.stdout.write(JSON.stringify(r) + '\n')
    cleanup()
  }, (err) => {
    cleanup()
    process.stderr.write(`sse-stall failed: ${err.stack ?? err}\n`)
    process.exitCode = 2
  })
}
