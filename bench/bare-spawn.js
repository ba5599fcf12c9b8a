// The baseline of figure 2: a bare Node spawn loop of N `sleep 3600` processes, timed from the
// first spawn() until every child's 'spawn' event. Reports { ms, pids } over IPC, then kills
// its children (by pid) when told to, or when the harness goes away.
//   node bare-spawn.js N plain     spawn(cmd, args, { stdio: 'ignore' })
//   node bare-spawn.js N grouped   detached (own process group) with piped stdout/stderr, as plugvisor spawns
import { spawn } from 'node:child_process'

const n = Number(process.argv[2] ?? 500)
const variant = process.argv[3] ?? 'plain'
const opts = variant === 'grouped' ? { detached: true, stdio: ['ignore', 'pipe', 'pipe'] } : { stdio: 'ignore' }
const children = []
const killAll = () => { for (const c of children) { if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL') } }
process.on('disconnect', () => { killAll(); process.exit(0) })

const cpu0 = process.cpuUsage()
const t0 = process.hrtime.bigint()
let pending = n
await new Promise((resolve, reject) => {
  for (let i = 0; i < n; i++) {
    const c = spawn('sleep', ['3600'], opts)
    children.push(c)
    c.once('error', reject)
    c.once('spawn', () => { if (--pending === 0) resolve() })
    if (variant === 'grouped') { c.stdout.resume(); c.stderr.resume() }
  }
})
const ms = Number(process.hrtime.bigint() - t0) / 1e6
const cpu = process.cpuUsage(cpu0)
process.send({ type: 'started', ms, cpuMs: (cpu.user + cpu.system) / 1000, pids: children.map((c) => c.pid) })
process.on('message', async (m) => {
  if (m !== 'stop') return
  const gone = children.map((c) => c.exitCode === null && c.signalCode === null ? new Promise((resolve) => c.once('exit', resolve)) : null)
  killAll()
  await Promise.all(gone)
  process.exit(0)
})
