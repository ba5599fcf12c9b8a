// `npm run bench -- --peers`: PM2 (npm-installed into a temp folder now, not a dependency) and
// supervisord (Debian's `supervisor` package, when /usr/bin/supervisord exists) supervising the
// same children: a bash script that writes its pid into a file named after its program, then
// `exec sleep 3600` (so the pid stays). Each peer is measured as plugvisor is:
//   restart   SIGKILL the child of program 0 -> a new pid in its file (median)
//   start     N programs until all N pid files name live processes
//   stop      N programs until all those processes are gone
//   status    wall time of the peer's status command (pm2 jlist, supervisorctl status)
//   memory    peak RSS (VmHWM) of the peer's daemon process
//   idle CPU  of the daemon process over 20 s from 5 s after the start, N running
// Everything runs in temp folders; each daemon is stopped by its own command, then by pid.
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { alive, cpuSeconds, nowMs, procStatusKb, round, sleep, sleepSyncUs, startProcess, stats, stopProcess, tempDir, trackStray, until } from './lib.js'

const run = promisify(execFile)
export const SUPERVISORD = '/usr/bin/supervisord'
const PM2_VERSION = '7'

const CHILD = `#!/bin/bash
echo $$ > "$PIDDIR/$1.pid"
exec sleep 3600
`

function readPid (dir, name) {
  try { return Number(readFileSync(path.join(dir, `${name}.pid`), 'latin1').trim()) || undefined } catch { return undefined }
}

/** Polls (every 200 µs, blocking: the peer runs in other processes) until pred() or the deadline. */
function pollUntil (pred, timeoutMs) {
  const deadline = nowMs() + timeoutMs
  for (;;) {
    if (pred()) return nowMs()
    if (nowMs() > deadline) return NaN
    sleepSyncUs(200)
  }
}

/** The figures every peer gets, with its own commands to start, stop and list everything. */
async function measure (peer, { names, pidDir, restartRuns, idleSeconds, idleSettleSeconds }) {
  const out = { peer: peer.name }
  const timed = async (fn) => { const t0 = nowMs(); await fn(); return nowMs() - t0 }
  const pids = () => names.map((n) => readPid(pidDir, n))

  // start: the command, then until every program's current pid is a live process.
  const t0 = nowMs()
  await peer.startAll()
  await until(() => pids().every((p) => p !== undefined && alive(p)), 120000, `${peer.name}: all ${names.length} running`, 5)
  out.startMs = nowMs() - t0
  const started = pids()
  for (const p of started) trackStray(p)
  const daemonPid = peer.daemonPid()

  await sleep(idleSettleSeconds * 1000)
  const c0 = cpuSeconds(daemonPid)
  const w0 = nowMs()
  await sleep(idleSeconds * 1000)
  out.idleCpuPercent = (cpuSeconds(daemonPid) - c0) / ((nowMs() - w0) / 1000) * 100

  const statusMs = []
  for (let i = 0; i < 4; i++) statusMs.push(await timed(peer.status))
  out.statusMs = stats(statusMs.slice(1))

  // restart after SIGKILL of program 0's child.
  const restart = []
  for (let i = 0; i < restartRuns; i++) {
    const old = readPid(pidDir, names[0])
    const k0 = nowMs()
    process.kill(old, 'SIGKILL')
    const at = pollUntil(() => { const p = readPid(pidDir, names[0]); return p !== undefined && p !== old && alive(p) }, 5000)
    if (Number.isNaN(at)) throw new Error(`${peer.name}: no new process within 5 s of a SIGKILL`)
    trackStray(readPid(pidDir, names[0]))
    restart.push(at - k0)
    await sleep(100)
  }
  out.restartMs = stats(restart)

  const running = pids()
  const s0 = nowMs()
  await peer.stopAll()
  await until(() => running.every((p) => !alive(p)), 120000, `${peer.name}: all ${names.length} gone`, 5)
  out.stopMs = nowMs() - s0
  out.peakRssMb = round(procStatusKb(daemonPid, 'VmHWM') / 1024, 1)
  return out
}

async function pm2Peer (dir, env, names, script) {
  // Into a temp folder at run time: PM2 is an anchor, not a dependency of plugvisor.
  await run('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel=error', `pm2@${PM2_VERSION}`], { timeout: 300000 })
  const bin = path.join(dir, 'node_modules/.bin/pm2')
  const version = JSON.parse(readFileSync(path.join(dir, 'node_modules/pm2/package.json'), 'utf8')).version
  const eco = path.join(dir, 'ecosystem.config.cjs')
  writeFileSync(eco, `module.exports = { apps: ${JSON.stringify(names.map((n) => ({
    name: n, script, args: n, interpreter: 'bash', autorestart: true, restart_delay: 0, min_uptime: 0, max_restarts: 1000000, env: { PIDDIR: env.PIDDIR }
  })))} }\n`)
  const pm2 = (...a) => run(bin, a, { env, timeout: 180000, maxBuffer: 64 << 20 })
  await pm2('ping') // the PM2 daemon starts here, before the start is timed
  const daemonPid = Number(readFileSync(path.join(env.PM2_HOME, 'pm2.pid'), 'latin1'))
  trackStray(daemonPid)
  return {
    name: `PM2 ${version}`,
    daemonPid: () => daemonPid,
    startAll: () => pm2('start', eco),
    stopAll: () => pm2('stop', 'all'),
    status: () => pm2('jlist'),
    close: async () => {
      await pm2('kill').catch(() => {})
      if (alive(daemonPid)) { try { process.kill(daemonPid, 'SIGKILL') } catch {} }
    }
  }
}

async function supervisordPeer (dir, env, names, script) {
  const conf = path.join(dir, 'supervisord.conf')
  const sock = path.join(dir, 'supervisor.sock')
  writeFileSync(conf, `[unix_http_server]
file=${sock}
[supervisord]
logfile=${path.join(dir, 'supervisord.log')}
pidfile=${path.join(dir, 'supervisord.pid')}
childlogdir=${dir}
nodaemon=true
minfds=${4 * names.length + 1024}
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://${sock}
${names.map((n) => `[program:${n}]
command=/bin/bash ${script} ${n}
environment=PIDDIR="${env.PIDDIR}"
autostart=false
autorestart=true
startsecs=0
startretries=1000000
stdout_logfile=NONE
stderr_logfile=NONE
`).join('')}`)
  const daemon = startProcess(SUPERVISORD, ['-c', conf], { env, stdio: ['ignore', 'ignore', 'inherit'] }, 'supervisord')
  const ctl = (...a) => run('supervisorctl', ['-c', conf, ...a], { env, timeout: 180000, maxBuffer: 64 << 20 })
  await until(async () => {
    if (daemon.exitCode !== null) throw new Error(`supervisord exited ${daemon.exitCode}`)
    try { await ctl('pid'); return true } catch { return false }
  }, 20000, 'supervisord to answer')
  const { stdout } = await run(SUPERVISORD, ['--version'])
  return {
    name: `supervisord ${stdout.trim()}`,
    daemonPid: () => daemon.pid,
    startAll: () => ctl('start', 'all'),
    stopAll: () => ctl('stop', 'all'),
    // supervisorctl status exits 3 when a program is not running: the wall time counts anyway.
    status: () => ctl('status').catch(() => {}),
    close: async () => {
      await ctl('shutdown').catch(() => {})
      await stopProcess(daemon, 10000)
    }
  }
}

export async function benchPeers ({ quick = false, plugvisor } = {}) {
  const n = plugvisor?.life?.plugins ?? (quick ? 50 : 500)
  const names = Array.from({ length: n }, (_, i) => `p${String(i).padStart(3, '0')}`)
  const opts = { names, idleSeconds: quick ? 3 : 20, idleSettleSeconds: quick ? 1 : 5 }
  const results = []
  const skipped = []
  for (const [label, make, restartRuns, available] of [
    ['PM2', pm2Peer, quick ? 5 : 20, true],
    ['supervisord', supervisordPeer, quick ? 2 : 5, existsSync(SUPERVISORD)]
  ]) {
    if (!available) { skipped.push(`${label}: skipped: Debian's supervisor package not installed`); continue }
    const dir = tempDir(`plugvisor-bench-${label.toLowerCase()}-`)
    const pidDir = path.join(dir, 'pids')
    mkdirSync(pidDir)
    const script = path.join(dir, 'child.sh')
    writeFileSync(script, CHILD, { mode: 0o755 })
    const env = { ...process.env, PIDDIR: pidDir, PM2_HOME: path.join(dir, 'pm2home') }
    let peer
    try {
      peer = await make(dir, env, names, script)
      results.push(await measure(peer, { ...opts, pidDir, restartRuns }))
    } catch (err) {
      skipped.push(`${label}: failed: ${err.message}`)
    } finally {
      await peer?.close()
    }
  }
  return { plugins: n, results, skipped, plugvisor: plugvisor && summary(plugvisor) }
}

/** plugvisor's figures of the same run, in the peers' terms. */
function summary ({ restart, life }) {
  return {
    peer: 'plugvisor',
    restartMs: restart.plugvisor.running,
    startMs: life.start.plugvisorMs.median,
    stopMs: life.stop.plugvisorMs.median,
    statusMs: life.statusCliMs,
    peakRssMb: Math.max(...Object.values(life.peakRssMb)),
    idleCpuPercent: life.idleCpu.percentOfOneCore
  }
}

export function peerTable (p, table) {
  const rows = [p.plugvisor, ...p.results].filter(Boolean).map((r) => [
    r.peer,
    `${round(r.restartMs.median, 1)} ms`,
    `${round(r.startMs / 1000, 3)} s`,
    `${round(r.stopMs / 1000, 3)} s`,
    `${round(r.statusMs.median, 0)} ms`,
    `${r.peakRssMb} MB`,
    `${round(r.idleCpuPercent, 2)} %`
  ])
  return [
    `peers, ${p.plugins} children each (bash writing its pid, then exec sleep; plugvisor's own children are sleep):`,
    table(['supervisor', 'restart after SIGKILL (median)', `start ${p.plugins}`, `stop ${p.plugins}`, 'status (CLI)', 'peak RSS', 'idle CPU'], rows),
    ...p.skipped
  ].join('\n')
}
