// The fleet figures on one daemon: `node dist/src/bin.cjs serve` in its own process (so memory and
// CPU are its own), 500 `sleep 3600` plugins (autostart off), driven over HTTP on 127.0.0.1.
//   - /health/liveness with no plugin running vs a bare Fastify route (autocannon, alternating
//     slices)
//   - start 500 until all running (POST /plugins/start?all=true answers once every start took
//     effect), rounds alternating with a bare Node spawn loop of 500 sleeps (piped, detached, as
//     plugvisor spawns; the plain loop is recorded too)
//   - stop 500 until all gone (POST /plugins/stop?all=true answers once every group is gone;
//     checked again in /proc)
//   - CPU over 20 s from 5 s after the last start, 500 running, no probes
//   - GET /plugins (sequential, keep-alive) and `plugvisor status` beside `node -e 0`
//   - /health/liveness with 500 running vs a bare Fastify route holding 500 piped children
//   - peak RSS (VmHWM) of the daemon after each of these phases
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { Pool } from 'undici'
import autocannon from 'autocannon'
import {
  BIN, ROOT, alive, cpuSeconds, exitedWithin, freePort, nowMs, round, sleep, sleepPlugin, startDaemon, startProcess,
  stats, stopProcess, trackStray, until, writeConfig, plugvisorCpuSeconds, plugvisorKb
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

/**
 * /health/liveness of the daemon vs a bare Fastify route (holding `children` piped sleeps):
 * both warmed up, then alternating slices (outside load spreads over both sides); the ratio is
 * the median of per-pair ratios, and requests per CPU-second of each server beside it.
 */
async function livenessVsBare (daemonPid, daemonUrl, children, { slices, seconds }) {
  const barePort = await freePort()
  const bare = startProcess(process.execPath, [BARE_FASTIFY, String(children)], { env: { ...process.env, PORT: String(barePort) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }, 'bare fastify')
  const targets = { plugvisor: daemonUrl, bareFastify: `http://127.0.0.1:${barePort}/health/liveness` }
  const pidOf = { plugvisor: daemonPid, bareFastify: bare.pid }
  const runs = { plugvisor: [], bareFastify: [] }
  try {
    const ready = await new Promise((resolve, reject) => {
      bare.once('message', resolve)
      bare.once('exit', (code) => reject(new Error(`bare fastify exited ${code}`)))
    })
    for (const pid of ready.pids) trackStray(pid)
    for (const url of Object.values(targets)) await autocannonRun(url, 1)
    for (let i = 0; i < slices; i++) {
      for (const k of i % 2 ? ['bareFastify', 'plugvisor'] : ['plugvisor', 'bareFastify']) {
        const cpu0 = cpuSeconds(pidOf[k])
        const r = await autocannonRun(targets[k], seconds)
        r.serverCpuSeconds = cpuSeconds(pidOf[k]) - cpu0
        if (r.errors || r.non2xx) throw new Error(`autocannon saw errors against ${targets[k]}`)
        runs[k].push(r)
      }
    }
  } finally {
    if (bare.connected) bare.disconnect()
    if (!await exitedWithin(bare, 5000)) await stopProcess(bare, 5000)
  }
  const perCpu = (rs) => rs.reduce((a, r) => a + r.requests.total, 0) / rs.reduce((a, r) => a + r.serverCpuSeconds, 0)
  return {
    children,
    plugvisorReqPerSec: Math.round(stats(runs.plugvisor.map((r) => r.requests.average)).median),
    bareReqPerSec: Math.round(stats(runs.bareFastify.map((r) => r.requests.average)).median),
    ratio: stats(runs.plugvisor.map((r, i) => r.requests.average / runs.bareFastify[i].requests.average)).median,
    perCpuSecondRatio: perCpu(runs.plugvisor) / perCpu(runs.bareFastify)
  }
}

const QUICK = { plugins: 50, rounds: 1, statusRequests: 30, cliRuns: 2, idleSeconds: 2, idleSettleSeconds: 1, cannonSeconds: 1, cannonSlices: 2 }

export async function lifecycle ({ quick = false, plugins = 500, rounds = 5, statusRequests = 200, cliRuns = 10, idleSeconds = 20, idleSettleSeconds = 5, cannonSeconds = 2, cannonSlices = 5 } = {}) {
  if (quick) ({ plugins, rounds, statusRequests, cliRuns, idleSeconds, idleSettleSeconds, cannonSeconds, cannonSlices } = QUICK)
  const names = Array.from({ length: plugins }, (_, i) => `p${String(i).padStart(3, '0')}`)
  const config = writeConfig(names.map((n) => sleepPlugin(n)))
  const { child: daemon, base } = await startDaemon(config, { name: 'plugvisor daemon' })
  const pool = new Pool(base, { connections: 4 })
  const api = async (method, url) => {
    const res = await pool.request({ method, path: url })
    const body = await res.body.json()
    if (res.statusCode !== 200) throw new Error(`${method} ${url}: ${res.statusCode} ${JSON.stringify(body)}`)
    return body
  }
  const out = { plugins, startCpuMs: [], bareSpawnCpuMs: [], bareSpawnGroupedCpuMs: [], startMs: [], bareSpawnMs: [], bareSpawnGroupedMs: [], stopMs: [] }
  const peakRssMb = {}
  const peak = (phase) => { peakRssMb[phase] = round(plugvisorKb(daemon.pid, 'VmHWM') / 1024, 1) }
  try {
    peak('listening')

    const livenessUrl = `${base}/health/liveness`
    out.liveness0 = await livenessVsBare(daemon.pid, livenessUrl, 0, { slices: cannonSlices, seconds: cannonSeconds })
    peak('liveness, none running')

    const startAll = async () => {
      const t0 = nowMs()
      const cpu0 = plugvisorCpuSeconds(daemon.pid)
      const { plugins: list } = await api('POST', '/plugins/start?all=true')
      const ms = nowMs() - t0
      out.startCpuMs.push((plugvisorCpuSeconds(daemon.pid) - cpu0) * 1000)
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
      const grouped = await bareSpawnLoop(plugins, 'grouped')
      out.bareSpawnGroupedMs.push(grouped.ms)
      out.bareSpawnGroupedCpuMs.push(grouped.cpuMs)
      const s = await startAll()
      out.startMs.push(s.ms)
      pids = s.pids
      if (r < rounds - 1) {
        await sleep(500)
        out.stopMs.push(await stopAll(pids))
        await sleep(500)
      }
    }

    peak('start and stop rounds')
    // 500 running, nothing else happening: CPU of the daemon over the idle window from 5 s after
    // the last start (what an operator sees; GCs after the burst count).
    await sleep(idleSettleSeconds * 1000)
    const cpu0 = plugvisorCpuSeconds(daemon.pid)
    const w0 = nowMs()
    await sleep(idleSeconds * 1000)
    out.idleCpuPercent = (plugvisorCpuSeconds(daemon.pid) - cpu0) / ((nowMs() - w0) / 1000) * 100
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

    // Status from the command line: wall time of a fresh `node dist/src/bin.cjs status`, runs
    // alternating with `node -e 0` (the floor: what starting Node costs).
    const cliMs = []
    const nodeMs = []
    for (let i = 0; i < 1 + cliRuns; i++) {
      let t0 = nowMs()
      const r = spawnSync(process.execPath, [BIN, 'status'], { env: { ...process.env, PLUGVISOR_URL: base }, encoding: 'utf8', timeout: 10000, maxBuffer: 16 << 20 })
      const ms = nowMs() - t0
      if (r.status !== 0) throw new Error(`plugvisor status exited ${r.status}: ${r.stderr}`)
      if (r.stdout.trim().split('\n').length !== plugins + 1) throw new Error('plugvisor status: wrong number of lines')
      t0 = nowMs()
      spawnSync(process.execPath, ['-e', '0'], { timeout: 10000 })
      const floor = nowMs() - t0
      if (i >= 1) { cliMs.push(ms); nodeMs.push(floor) }
    }
    out.statusCliMs = stats(cliMs)
    out.nodeStartMs = stats(nodeMs)
    peak('idle and status')

    out.liveness500 = await livenessVsBare(daemon.pid, livenessUrl, plugins, { slices: cannonSlices, seconds: cannonSeconds })
    peak('liveness, all running')
    out.rssMb = plugvisorKb(daemon.pid, 'VmRSS') / 1024
    await sleep(500)
    out.stopMs.push(await stopAll(pids))

    const startMs = stats(out.startMs)
    const grouped = stats(out.bareSpawnGroupedMs)
    return {
      plugins,
      rounds,
      start: {
        plugvisorMs: startMs,
        bareLoopMs: grouped,
        plainLoopMs: stats(out.bareSpawnMs),
        ratio: startMs.median / grouped.median,
        cpuMs: { plugvisor: stats(out.startCpuMs), bareLoop: stats(out.bareSpawnGroupedCpuMs), plainLoop: stats(out.bareSpawnCpuMs) },
        raw: { plugvisor: out.startMs.map((x) => round(x)), bare: out.bareSpawnGroupedMs.map((x) => round(x)), plain: out.bareSpawnMs.map((x) => round(x)) }
      },
      stop: { plugvisorMs: stats(out.stopMs), raw: out.stopMs.map((x) => round(x)) },
      statusApiMs: out.statusApiMs,
      statusCliMs: out.statusCliMs,
      nodeStartMs: out.nodeStartMs,
      peakRssMb,
      rssMb: round(out.rssMb, 1),
      idleCpu: { percentOfOneCore: out.idleCpuPercent, seconds: out.idleSeconds, fromSecondsAfterStart: idleSettleSeconds },
      liveness: { none: out.liveness0, all: out.liveness500 }
    }
  } finally {
    await pool.close().catch(() => {})
    // SIGTERM: the daemon stops every plugin (already stopped on success) and exits.
    await stopProcess(daemon, 20000)
  }
}
