// Log files under load: 500 plugins each printing 10 lines a second (5,000 lines/s into
// <dataDir>/logs/), and the daemon's event-loop lag meanwhile (p99 of each scrape interval of
// plugvisor_event_loop_lag_seconds, read every 2 s), beside the same daemon and plugins while they
// print nothing (the machine's own share of the lag). Each plugin is bash that, while a "go" file
// exists, prints a line, then waits 100 ms with `read -t` on a FIFO nobody writes (builtins only:
// no fork per line). The daemon logs at warn, so plugin lines go to the files only, not to stdout
// as well. Before the daemon, the files alone in this process (filesAlone). Prints one JSON object.
//   node bench/log-files.js [plugins=500] [seconds=20]
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { BIN, DAEMON_ENV, DAEMON_NODE_FLAGS, cleanup, exitAfter, freePort, nowMs, round, sleep, startProcess, stats, stopProcess, tempDir, until, writeConfig, plugvisorCpuSeconds } from './lib.js'

const plugins = Number(process.argv[2] ?? 500)
const windowSeconds = Number(process.argv[3] ?? 20)
const SCRAPE_MS = 2000
exitAfter('log-files', (windowSeconds + 180) * 1000, cleanup)

const PRINTER = 'exec 3<>"$0"; i=0; while :; do if [[ -e "$2" ]]; then echo "plugin $1 line $i: the quick brown fox jumps over the lazy dog"; i=$((i+1)); fi; read -t 0.1 -u 3; done'

/**
 * The files alone, in this process: `plugins` × 10 lines a second handed to the log files
 * (createLogFiles, as the daemon wires it) in 10 ms ticks, against the same ticks handing them
 * to nobody; event-loop delay p99 (resolution 10 ms, subtracted) and CPU of each half.
 */
async function filesAlone (seconds) {
  const { createLogFiles } = await import('../dist/src/process/log-files.js')
  const { monitorEventLoopDelay } = await import('node:perf_hooks')
  const half = async (on) => {
    const files = createLogFiles({ dir: path.join(tempDir(), 'logs'), maxFileBytes: 10 * 2 ** 20, keepFiles: 5, onError: (e) => { throw e } })
    const delay = monitorEventLoopDelay({ resolution: 10 })
    delay.enable()
    const cpu0 = process.cpuUsage()
    let n = 0
    const perTick = plugins / 10
    const tick = setInterval(() => {
      for (let i = 0; i < perTick; i++) {
        const entry = { at: Date.now(), stream: 'stdout', line: `plugin ${n % plugins} line ${n}: the quick brown fox jumps over the lazy dog` }
        if (on) files.append(`log${n % plugins}`, entry)
        n++
      }
    }, 10)
    await sleep(seconds * 1000)
    clearInterval(tick)
    delay.disable()
    const cpu = process.cpuUsage(cpu0)
    await files.close()
    return { lagP99Ms: round(Math.max(0, delay.percentile(99) / 1e6 - 10), 2), cpuPercentOfOneCore: round((cpu.user + cpu.system) / 1e4 / seconds, 1) }
  }
  return { withFiles: await half(true), without: await half(false) }
}
const alone = await filesAlone(Math.max(5, windowSeconds / 2))

const names = Array.from({ length: plugins }, (_, i) => `log${String(i).padStart(3, '0')}`)
const config = writeConfig([], { log: { level: 'warn' } })
const dir = path.dirname(config)
const fifo = path.join(dir, 'never-written')
execFileSync('mkfifo', [fifo])
const go = path.join(dir, 'go')
const manifests = names.map((name) => ({ name, command: 'bash', args: ['-c', PRINTER, fifo, name, go], stop: { timeoutMs: 2000 } }))
// Inline manifests, once the FIFO they read from exists in the config's folder.
writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), plugins: manifests }))

const port = await freePort()
const daemon = startProcess(process.execPath, [...DAEMON_NODE_FLAGS, BIN, 'serve', '--config', config], {
  env: { ...DAEMON_ENV, ...process.env, PLUGVISOR_PORT: String(port), PLUGVISOR_HOST: '127.0.0.1', PLUGVISOR_LOG_LEVEL: 'warn' },
  stdio: ['ignore', 'ignore', 'inherit']
}, 'plugvisor daemon')
const base = `http://127.0.0.1:${port}`
const lagSeconds = async () => {
  const text = await (await fetch(`${base}/metrics`)).text()
  return Number(/^plugvisor_event_loop_lag_seconds (\S+)$/m.exec(text)?.[1])
}
const logBytes = () => {
  let total = 0
  const logs = path.join(dir, 'data', 'logs')
  if (!existsSync(logs)) return 0
  for (const f of readdirSync(logs)) total += statSync(path.join(logs, f)).size
  return total
}
try {
  await until(async () => {
    const res = await fetch(`${base}/plugins`).catch(() => null)
    if (!res?.ok) return undefined
    const { plugins: list } = await res.json()
    return list.length === plugins && list.every((p) => p.state === 'running') ? true : undefined
  }, 150000, `${plugins} plugins running`, 250)
  // Settle: the start burst's lag is not the steady state's.
  await sleep(3000)
  const window = async () => {
    await lagSeconds()
    const bytes0 = logBytes()
    const cpu0 = plugvisorCpuSeconds(daemon.pid)
    const t0 = nowMs()
    const lags = []
    while (nowMs() - t0 < windowSeconds * 1000) {
      await sleep(SCRAPE_MS)
      lags.push((await lagSeconds()) * 1000)
    }
    const seconds = (nowMs() - t0) / 1000
    const s = stats(lags)
    return {
      windowSeconds: round(seconds, 1),
      logMbPerSecond: round((logBytes() - bytes0) / seconds / 2 ** 20, 2),
      lagP99Ms: { median: round(s.median, 2), max: round(s.max, 2), n: s.n },
      daemonCpuPercentOfOneCore: round((plugvisorCpuSeconds(daemon.pid) - cpu0) / seconds * 100, 1)
    }
  }
  const quiet = await window()
  writeFileSync(go, '')
  await sleep(1000)
  const printing = await window()
  process.stdout.write(JSON.stringify({ plugins, linesPerSecond: plugins * 10, ...printing, quiet, filesAlone: alone }) + '\n')
} finally {
  await stopProcess(daemon)
  cleanup()
}
