// Figure 1: SIGKILL -> new process running, restart delay 0. plugvisor and a minimal Node
// respawner run side by side (each in its own process) and are measured the same way, kills
// alternating between them. The respawner spawns its child as plugvisor does (own process group,
// stdout and stderr piped and read: each costs the spawn and the exit about a millisecond on
// this machine); the plain respawner (stdio 'ignore', no group) is measured too and reported
// beside it. The harness SIGKILLs the current pid, then times
//   - until a new child of the supervising process (or of its plugvisor-spawner) shows in /proc
//     (polled every 50 us), and
//   - until the supervisor reports it running (plugvisor: its `transition` to running).
import path from 'node:path'
import { childrenOf, exitedWithin, plugvisorPids, nowMs, sleep, sleepPlugin, sleepSyncUs, startProcess, stats, stopProcess, trackStray, writeConfig, ROOT } from './lib.js'

const WORKER = path.join(ROOT, 'bench/restart-worker.js')

function startWorker (mode, config) {
  const child = startProcess(process.execPath, [WORKER, mode, ...(config ? [config] : [])], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }, `restart-worker ${mode}`)
  const w = { mode, child, pid: undefined, waiters: [] }
  child.on('message', (m) => {
    if (m.type !== 'running') return
    w.pid = m.pid
    trackStray(m.pid)
    const msg = { pid: m.pid, t: Number(BigInt(m.t)) / 1e6 }
    w.waiters = w.waiters.filter((fn) => !fn(msg))
  })
  return w
}

/** Resolves with the first 'running' report that satisfies pred. */
function nextRunning (w, pred, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${w.mode}: no new process running within ${timeoutMs} ms`)), timeoutMs)
    w.waiters.push((msg) => {
      if (!pred(msg)) return false
      clearTimeout(timer)
      resolve(msg)
      return true
    })
  })
}

/** One kill: returns { procMs, runningMs } measured from just before kill(2). */
async function killOnce (w) {
  const old = w.pid
  const running = nextRunning(w, (m) => m.pid !== old, 5000)
  const t0 = nowMs()
  process.kill(old, 'SIGKILL')
  // Blocking poll of /proc: the supervised side runs in other processes. plugvisor's plugins are
  // children of its plugvisor-spawner (a child of the daemon) when it spawns through one.
  const parents = plugvisorPids(w.child.pid)
  let procAt = NaN
  const deadline = t0 + 2000
  for (;;) {
    const kids = parents.flatMap(childrenOf).filter((k) => !parents.includes(k))
    if (kids.some((k) => k !== old)) { procAt = nowMs(); break }
    if (nowMs() > deadline) break
    sleepSyncUs(50)
  }
  const r = await running
  return { procMs: procAt - t0, runningMs: r.t - t0 }
}

export async function restartLatency ({ runs = 200, warmup = 10 } = {}) {
  const config = writeConfig([sleepPlugin('victim', {
    autostart: true,
    restart: { policy: 'always', initialDelayMs: 0, jitter: 0, maxRestarts: 1000000, windowMs: 600000 }
  })], { restartBudget: { burst: 1000000, perSecond: 1000000 } })
  const pv = startWorker('plugvisor', config)
  const bare = startWorker('bare')
  const plain = startWorker('bare-plain')
  const workers = [pv, bare, plain]
  try {
    await Promise.all(workers.map((w) => nextRunning(w, () => true, 10000)))
    const out = Object.fromEntries(workers.map((w) => [w.mode, { procMs: [], runningMs: [] }]))
    for (let i = 0; i < warmup + runs; i++) {
      // Each worker takes each place in the order in turn.
      for (const w of [...workers.slice(i % 3), ...workers.slice(0, i % 3)]) {
        const r = await killOnce(w)
        if (i >= warmup) {
          out[w.mode].procMs.push(r.procMs)
          out[w.mode].runningMs.push(r.runningMs)
        }
        await sleep(5)
      }
    }
    return {
      runs,
      plugvisor: { running: stats(out.plugvisor.runningMs), inProc: stats(out.plugvisor.procMs) },
      bare: { running: stats(out.bare.runningMs), inProc: stats(out.bare.procMs) },
      plain: { running: stats(out['bare-plain'].runningMs), inProc: stats(out['bare-plain'].procMs) }
    }
  } finally {
    // Disconnecting asks a worker to stop its child and exit; SIGTERM only if it does not.
    await Promise.all(workers.map(async (w) => {
      if (w.child.connected) w.child.disconnect()
      if (!await exitedWithin(w.child, 5000)) await stopProcess(w.child, 5000)
    }))
  }
}
