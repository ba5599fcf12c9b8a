// Figures 2-6 on one daemon: `node dist/src/bin.js serve` in its own process (so memory and CPU
// are its own), 500 `sleep 3600` plugins (autostart off), driven over HTTP on 127.0.0.1.
//   2. start 500 until all running (POST /plugins/start?all=true answers once every start took
//      effect), rounds alternating with a bare Node spawn loop of 500 sleeps
//   3. stop 500 until all gone (POST /plugins/stop?all=true answers once every group is gone;
//      checked again in /proc)
//   4. GET /plugins (sequential, keep-alive) and `plugvisor status` (wall time of the CLI)
//   5. peak RSS (VmHWM) of the daemon; its CPU over an idle window with 500 running, no probes
//   6. /health/liveness throughput vs a bare Fastify route (autocannon, alternating 2 s slices)
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { Pool } from 'undici'
import autocannon from 'autocannon'
import {
  BIN, DAEMON_NODE_FLAGS, ROOT, alive, cpuSeconds, exitedWithin, freePort, nowMs, procStatusKb, round, sleep, sleepPlugin, startProcess,
  stats, stopProcess, trackStray, until, writeConfig
} from './lib.js'

const BARE_SPAWN = path.join(ROOT, 'bench/bare-spawn.js')
const BARE_FASTIFY = path.join(ROOT, 'bench/bare-fastify.js')

async function bareSpawnLoop (n, variant) {
  const child = startProcess(process.execPath, [BARE_SPAWN, String(n), variant], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }, 'bare-spawn')
  try {
    const msg = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('bare spawn loop: no answer within 30 s')), 30000)
      child.once('message', (m) => { clearTimeout(timer); resolve(m) })
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`bare spawn loop exited with ${code}`)) })
    })
    for (const pid of msg.pids) trackStray(pid)
    child.send('stop')
    await until(() => child.exitCode !== null || child.signalCode !== null, 30000, 'bare spawn loop to stop its children')
    return msg
  } finally {
    await stopProcess(child, 5000)
  }
}

function autocannonRun (url, duration) {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections: 10, pipelining: 1, duration }, (err, res) => err ? reject(err) : resolve(res))
  })
}

export async function lifecycle ({ plugins = 500, rounds = 5, statusRequests = 200, cliRuns = 10, idleSeconds = 20, idleSettleSeconds = 20, cannonSeconds = 2, cannonSlices = 5 } = {}) {
  const names = Array.from({ length: plugins }, (_, i) => `p${String(i).padStart(3, '0')}`)
  const config = writeConfig(names.map((n) => sleepPlugin(n)))
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  let stderr = ''
  const daemon = startProcess(process.execPath, [...DAEMON_NODE_FLAGS, BIN, 'serve', '--config', config], {
    env: { ...process.env, PLUGVISOR_PORT: String(port), PLUGVISOR_HOST: '127.0.0.1', PLUGVISOR_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe']
  }, 'plugvisor daemon')
  daemon.stderr.on('data', (c) => { stderr += c })
  const pool = new Pool(base, { connections: 4 })
  const api = async (method, url) => {
    const res = await pool.request({ method, path: url })
    const body = await res.body.json()
    if (res.statusCode !== 200) throw new Error(`${method} ${url}: ${res.statusCode} ${JSON.stringify(body)}`)
    return body
  }
  const out = { plugins, startCpuMs: [], bareSpawnCpuMs: [], startMs: [], bareSpawnMs: [], bareSpawnGroupedMs: [], stopMs: [] }
  try {
    await until(async () => {
      if (daemon.exitCode !== null) throw new Error(`daemon exited with ${daemon.exitCode}: ${stderr}`)
      try { return (await api('GET', '/health/liveness')).status === 'pass' } catch { return false }
    }, 20000, 'the daemon to listen')

    const startAll = async () => {
      const t0 = nowMs()
      const cpu0 = cpuSeconds(daemon.pid)
      const { plugins: list } = await api('POST', '/plugins/start?all=true')
      const ms = nowMs() - t0
      out.startCpuMs.push((cpuSeconds(daemon.pid) - cpu0) * 1000)
      const notRunning = list.filter((p) => p.state !== 'running')
      if (list.length !== plugins || notRunning.length > 0) throw new Error(`start: ${notRunning.length} of ${list.length} not running`)
      for (const p of list) trackStray(p.pid)
      return { ms, pids: list.map((p) => p.pid) }
    }
    const stopAll = async (pids) => {
      const t0 = nowMs()
      const { plugins: list } = await api('POST', '/plugins/stop?all=true')
      const ms = nowMs() - t0
      const left = pids.filter(alive)
      if (left.length > 0 || list.some((p) => p.state !== 'stopped')) throw new Error(`stop: ${left.length} processes still alive`)
      return ms
    }

    let pids
    for (let r = 0; r < rounds; r++) {
      const plain = await bareSpawnLoop(plugins, 'plain')
      out.bareSpawnMs.push(plain.ms)
      out.bareSpawnCpuMs.push(plain.cpuMs)
      out.bareSpawnGroupedMs.push((await bareSpawnLoop(plugins, 'grouped')).ms)
      const s = await startAll()
      out.startMs.push(s.ms)
      pids = s.pids
      if (r < rounds - 1) {
        await sleep(500)
        out.stopMs.push(await stopAll(pids))
        await sleep(500)
      }
    }

    // 500 running, nothing else happening: CPU of the daemon over the idle window, once V8's
    // memory reducer has finished the GCs it runs in the first ~20 s after a burst of work.
    await sleep(idleSettleSeconds * 1000)
    const cpu0 = cpuSeconds(daemon.pid)
    const w0 = nowMs()
    await sleep(idleSeconds * 1000)
    out.idleCpuPercent = (cpuSeconds(daemon.pid) - cpu0) / ((nowMs() - w0) / 1000) * 100
    out.idleSeconds = idleSeconds

    // Status over the API: sequential requests on a kept-alive connection.
    const apiMs = []
    for (let i = 0; i < 20 + statusRequests; i++) {
      const t0 = nowMs()
      const body = await api('GET', '/plugins')
      const ms = nowMs() - t0
      if (body.plugins.length !== plugins) throw new Error('GET /plugins: wrong length')
      if (i >= 20) apiMs.push(ms)
    }
    out.statusApiMs = stats(apiMs)

    // Status from the command line: wall time of a fresh `node dist/src/bin.js status`.
    const cliMs = []
    for (let i = 0; i < 1 + cliRuns; i++) {
      const t0 = nowMs()
      const r = spawnSync(process.execPath, [BIN, 'status'], { env: { ...process.env, PLUGVISOR_URL: base }, encoding: 'utf8', timeout: 10000, maxBuffer: 16 << 20 })
      const ms = nowMs() - t0
      if (r.status !== 0) throw new Error(`plugvisor status exited ${r.status}: ${r.stderr}`)
      if (r.stdout.trim().split('\n').length !== plugins + 1) throw new Error('plugvisor status: wrong number of lines')
      if (i >= 1) cliMs.push(ms)
    }
    out.statusCliMs = stats(cliMs)

    // Peak so far: start/stop rounds, idle, status over the API and the CLI. The throughput test
    // below drives the heap much harder; its peak is reported on its own.
    out.peakRssBeforeLoadMb = procStatusKb(daemon.pid, 'VmHWM') / 1024

    // Liveness vs a bare Fastify route: both warmed up 1 s, then alternating slices (the machine
    // may be shared; alternating spreads any outside load over both sides).
    const barePort = await freePort()
    const bare = startProcess(process.execPath, [BARE_FASTIFY], { env: { ...process.env, PORT: String(barePort) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }, 'bare fastify')
    const targets = { plugvisor: `${base}/health/liveness`, bareFastify: `http://127.0.0.1:${barePort}/health/liveness` }
    const pidOf = { plugvisor: daemon.pid, bareFastify: bare.pid }
    const slices = { plugvisor: [], bareFastify: [] }
    try {
      await new Promise((resolve, reject) => {
        bare.once('message', resolve)
        bare.once('exit', (code) => reject(new Error(`bare fastify exited ${code}`)))
      })
      for (const url of Object.values(targets)) await autocannonRun(url, 1)
      for (let i = 0; i < cannonSlices; i++) {
        for (const [k, url] of Object.entries(targets)) {
          const cpu0 = cpuSeconds(pidOf[k])
          const r = await autocannonRun(url, cannonSeconds)
          r.serverCpuSeconds = cpuSeconds(pidOf[k]) - cpu0
          if (r.errors || r.non2xx) throw new Error(`autocannon saw errors against ${url}`)
          slices[k].push(r)
        }
      }
    } finally {
      if (bare.connected) bare.disconnect()
      if (!await exitedWithin(bare, 5000)) await stopProcess(bare, 5000)
    }
    const summarize = (rs) => ({
      reqPerSec: stats(rs.map((r) => r.requests.average)).median,
      slices: rs.map((r) => r.requests.average),
      latencyP50Ms: stats(rs.map((r) => r.latency.p50)).median,
      latencyP99Ms: stats(rs.map((r) => r.latency.p99)).median
    })
    out.liveness = summarize(slices.plugvisor)
    out.bareFastify = summarize(slices.bareFastify)
    // Neighbouring slices share the machine's outside load: the ratio is taken per pair.
    out.livenessRatio = stats(slices.plugvisor.map((r, i) => r.requests.average / slices.bareFastify[i].requests.average)).median
    // Requests per CPU-second of the server: insensitive to CPU taken by other processes.
    const perCpu = (rs) => rs.reduce((a, r) => a + r.requests.total, 0) / rs.reduce((a, r) => a + r.serverCpuSeconds, 0)
    out.livenessCpuRatio = perCpu(slices.plugvisor) / perCpu(slices.bareFastify)

    out.peakRssMb = procStatusKb(daemon.pid, 'VmHWM') / 1024
    out.rssMb = procStatusKb(daemon.pid, 'VmRSS') / 1024

    await sleep(500)
    out.stopMs.push(await stopAll(pids))

    return {
      plugins,
      rounds,
      start: { plugvisorMs: stats(out.startMs), bareLoopMs: stats(out.bareSpawnMs), bareLoopGroupedMs: stats(out.bareSpawnGroupedMs), ratio: stats(out.startMs).median / stats(out.bareSpawnMs).median, cpuMs: { plugvisor: stats(out.startCpuMs), bareLoop: stats(out.bareSpawnCpuMs) }, raw: { plugvisor: out.startMs.map((x) => round(x)), bare: out.bareSpawnMs.map((x) => round(x)), bareGrouped: out.bareSpawnGroupedMs.map((x) => round(x)) } },
      stop: { plugvisorMs: stats(out.stopMs), raw: out.stopMs.map((x) => round(x)) },
      statusApiMs: out.statusApiMs,
      statusCliMs: out.statusCliMs,
      peakRssMb: out.peakRssBeforeLoadMb,
      peakRssAfterLoadMb: out.peakRssMb,
      rssMb: out.rssMb,
      idleCpu: { percentOfOneCore: out.idleCpuPercent, seconds: out.idleSeconds },
      liveness: { plugvisor: out.liveness, bareFastify: out.bareFastify, ratio: out.livenessRatio, perCpuSecondRatio: out.livenessCpuRatio }
    }
  } finally {
    await pool.close().catch(() => {})
    // SIGTERM: the daemon stops every plugin (already stopped on success) and exits.
    await stopProcess(daemon, 20000)
  }
}
