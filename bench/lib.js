// Shared bench helpers: statistics, temp configs, free loopback ports, child processes that are
// always stopped (by pid) when the bench ends or fails, and what /proc says about a process.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'

export { sleep }
export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const BIN = path.join(ROOT, 'dist/src/bin.cjs')
// The daemon runs with the flags npm start and the Dockerfile give it; PLUGVISOR_BENCH_NODE_FLAGS
// (space-separated, '' for none) replaces them to compare flag sets across every figure.
export const DAEMON_NODE_FLAGS = process.env.PLUGVISOR_BENCH_NODE_FLAGS !== undefined
  ? process.env.PLUGVISOR_BENCH_NODE_FLAGS.split(' ').filter(Boolean)
  : ['--max-semi-space-size=4', '--no-allocation-site-pretenuring', '--no-memory-reducer', '--heap-growing-percent=15']
// ... and the environment they set for it (src/bin.cts's `env -S`); one set in the bench's own
// environment wins, to compare.
export const DAEMON_ENV = { MALLOC_ARENA_MAX: '2' }
export const SLEEP = 'sleep'
export const CLK_TCK = 100 // getconf CLK_TCK on Linux x86-64/arm64

export const nowMs = () => Number(process.hrtime.bigint()) / 1e6

export function quantile (sorted, q) {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i]
}

/** Median, p95, min, max and n of a list of numbers. */
export function stats (values) {
  const s = [...values].sort((a, b) => a - b)
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
  return { n: s.length, median, p95: quantile(s, 0.95), min: s[0], max: s[s.length - 1] }
}

export const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d

export function freePort () {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

const tempDirs = new Set()
export function tempDir (prefix = 'plugvisor-bench-') {
  const d = mkdtempSync(path.join(tmpdir(), prefix))
  tempDirs.add(d)
  return d
}

/** A plugin whose process is coreutils `sleep 3600`: the cheapest real child there is. */
export function sleepPlugin (name, extra = {}) {
  return { name, command: SLEEP, args: ['3600'], autostart: false, ...extra }
}

/** Writes a main config (JSON) into a fresh temp folder; returns its path. */
export function writeConfig (plugins, extra = {}) {
  const dir = tempDir()
  const file = path.join(dir, 'plugvisor.json')
  writeFileSync(file, JSON.stringify({ dataDir: './data', pluginsDir: './plugins.d', plugins, log: { level: 'warn' }, ...extra }))
  return file
}

// ---- processes we started, stopped by pid whatever happens -----------------------------

const started = new Map() // pid -> { child, name }

/** Spawns a helper process that is killed (by its pid) at cleanup if still alive. */
export function startProcess (command, args, opts = {}, name = command) {
  const child = spawn(command, args, opts)
  if (child.pid !== undefined) started.set(child.pid, { child, name })
  child.once('exit', () => started.delete(child.pid))
  return child
}

export function exited (child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/** Resolves true when the process exited within ms, else false. */
export function exitedWithin (child, ms) {
  return Promise.race([exited(child).then(() => true), sleep(ms).then(() => false)])
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the process exited. */
export async function stopProcess (child, graceMs = 15000) {
  if (child.exitCode !== null || child.signalCode !== null) return
  try { process.kill(child.pid, 'SIGTERM') } catch {}
  const timer = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL') } catch {} }, graceMs)
  await exited(child)
  clearTimeout(timer)
}

/**
 * The daemon as an operator runs it: `node <daemon flags> dist/src/bin.cjs serve --config FILE` in
 * its own process, on 127.0.0.1 and a free port (or `port`) through PLUGVISOR_HOST/PORT, log level
 * warn, stopped by pid at cleanup. Resolves once GET /health/liveness answers 200, with the child,
 * its port and base URL; rejects when it exits first (or after `timeoutMs`). `bin` and `flags`: another
 * build's bin.cjs and other V8 flags (bench/liveness-ab.js compares them).
 */
export async function startDaemon (config, { port, stdio = ['ignore', 'ignore', 'inherit'], name = 'plugvisor', timeoutMs = 20000, bin = BIN, flags = DAEMON_NODE_FLAGS } = {}) {
  port ??= await freePort()
  const base = `http://127.0.0.1:${port}`
  const child = startProcess(process.execPath, [...flags, bin, 'serve', '--config', config], {
    env: { ...DAEMON_ENV, ...process.env, PLUGVISOR_PORT: String(port), PLUGVISOR_HOST: '127.0.0.1', PLUGVISOR_LOG_LEVEL: 'warn' },
    stdio
  }, name)
  try {
    await until(async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it listened`)
      try {
        const res = await request(`${base}/health/liveness`)
        await res.body.dump()
        return res.statusCode === 200
      } catch { return undefined }
    }, timeoutMs, `${name} to listen on ${base}`)
  } catch (err) {
    await stopProcess(child, 5000)
    throw err
  }
  return { child, port, base }
}

const strays = new Map() // pid -> { pgid, comm } of processes we caused: killed at cleanup if left
/** Records a process we caused (a `sleep`, an nginx worker), with its group and name now: its identity at cleanup. */
export function trackStray (pid) {
  const st = procStat(pid)
  if (st) strays.set(pid, { pgid: st.pgid, comm: st.comm })
}

/** Kills every helper still alive and every recorded plugin pid that is still our `sleep`. */
export function cleanup () {
  for (const [pid] of started) {
    try { process.kill(pid, 'SIGKILL') } catch {}
  }
  for (const [pid, seen] of strays) {
    const st = procStat(pid)
    // Only a process of the name and group we saw is ours: a reused pid is someone else's.
    if (st && st.comm === seen.comm && st.pgid === seen.pgid && st.state !== 'Z') {
      try { process.kill(pid, 'SIGKILL') } catch {}
    }
  }
  strays.clear()
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true })
  tempDirs.clear()
}

// ---- /proc ----------------------------------------------------------------------------

export function procStat (pid) {
  let text
  try { text = readFileSync(`/proc/${pid}/stat`, 'latin1') } catch { return undefined }
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  const f = text.slice(close + 2).split(' ')
  return { pid, comm: text.slice(open + 1, close), state: f[0], ppid: Number(f[1]), pgid: Number(f[2]), utime: Number(f[11]), stime: Number(f[12]) }
}

/** Alive and not a zombie. */
export function alive (pid) {
  const st = procStat(pid)
  return st !== undefined && st.state !== 'Z' && st.state !== 'X'
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds (pid) {
  const st = procStat(pid)
  return st ? (st.utime + st.stime) / CLK_TCK : NaN
}

/** Field of /proc/<pid>/status in kB (VmHWM = peak RSS, VmRSS = current). */
export function procStatusKb (pid, field) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)
  return m ? Number(m[1]) : NaN
}

/** Direct children of a process's main thread (Node forks from its main thread). */
export function childrenOf (pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().split(' ').filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/**
 * The daemon and its plugvisor-spawner (a child of the daemon by that name, when plugins are
 * spawned through it): every process of plugvisor's own, whose CPU and memory count together.
 */
export function plugvisorPids (daemonPid) {
  return [daemonPid, ...childrenOf(daemonPid).filter((pid) => {
    try { return readFileSync(`/proc/${pid}/comm`, 'latin1').trim() === 'plugvisor-spawn' } catch { return false }
  })]
}

/** CPU seconds of plugvisor's own processes together (see plugvisorPids). */
export function plugvisorCpuSeconds (daemonPid) {
  return plugvisorPids(daemonPid).reduce((sum, pid) => sum + cpuSeconds(pid), 0)
}

/** A /proc/<pid>/status field summed over plugvisor's own processes: for VmHWM the sum of their peaks (never below the peak of the sum). */
export function plugvisorKb (daemonPid, field) {
  return plugvisorPids(daemonPid).reduce((sum, pid) => sum + procStatusKb(pid, field), 0)
}

/** Every process below pid (children of any of its threads, their children, ...), read now. */
export function descendantsOf (pid) {
  const found = []
  const queue = [pid]
  while (queue.length > 0) {
    const p = queue.shift()
    let tasks = []
    try { tasks = readdirSync(`/proc/${p}/task`) } catch {}
    for (const tid of tasks) {
      let kids = []
      try { kids = readFileSync(`/proc/${p}/task/${tid}/children`, 'latin1').trim().split(' ').filter(Boolean).map(Number) } catch {}
      for (const k of kids) { found.push(k); queue.push(k) }
    }
  }
  return found
}

const waitCell = new Int32Array(new SharedArrayBuffer(4))
/** Blocks this thread for `us` microseconds without spinning. */
export function sleepSyncUs (us) { Atomics.wait(waitCell, 0, 0, us / 1000) }

/** Polls `fn` until it returns something other than undefined, or rejects after timeoutMs. */
export async function until (fn, timeoutMs, what, intervalMs = 20) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(intervalMs)
  }
}

/**
 * A bound against hangs for a bench run on its own: after `ms`, says so on stderr, calls
 * `onOver` (stop what it started) and exits with 2. Does not keep the process alive.
 */
export function exitAfter (name, ms, onOver) {
  const limit = setTimeout(() => {
    process.stderr.write(`${name}: over the time limit of ${ms} ms\n`)
    onOver()
    process.exit(2)
  }, ms)
  limit.unref()
}
