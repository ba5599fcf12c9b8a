// `npm run bench`: every performance figure against its budget (the table in README.md, Performance). Results go to
// bench/results/latest.json and a table on stdout; the exit code is 1 when a budget is missed.
// Bounded: a watchdog ends the run after 5 minutes; every process it started is stopped by pid.
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { cleanup, round, ROOT } from './lib.js'
import { restartLatency } from './restart-latency.js'
import { lifecycle } from './lifecycle.js'

const WATCHDOG_MS = 5 * 60 * 1000
const watchdog = setTimeout(() => {
  process.stderr.write('bench: watchdog: still running after 5 minutes, giving up\n')
  cleanup()
  process.exit(2)
}, WATCHDOG_MS)
watchdog.unref()
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => { cleanup(); process.exit(130) })

const fmt = (x, unit, d = 2) => `${round(x, d)} ${unit}`.trim()

async function main () {
  const machine = {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model,
    memGb: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    kernel: os.release(),
    // Other work on the machine skews every figure: recorded so a reader can tell.
    loadavg: os.loadavg().map((x) => round(x)),
    at: new Date().toISOString()
  }
  process.stdout.write(`machine: ${machine.nproc} cores (${machine.cpu}), Node ${machine.node}, Linux ${machine.kernel}, load average ${machine.loadavg.join(' ')}\n`)
  process.stdout.write('bench: restart after SIGKILL ...\n')
  const restart = await restartLatency()
  process.stdout.write('bench: 500 plugins: start, stop, status, memory, CPU, liveness ...\n')
  const life = await lifecycle()
  process.stdout.write('bench: GET /metrics with 500 plugins ...\n')
  const metrics = await jsonChild(['bench/metrics.js'])
  process.stdout.write('bench: 500 plugins probed every second over HTTP, history on ...\n')
  const probes = await jsonChild(['bench/health-probes.js', '500', '20'])
  process.stdout.write('bench: history query, 24 h of one plugin probed every second ...\n')
  const history = await jsonChild(['bench/history-query.js'])
  process.stdout.write('bench: invoke through the proxy vs straight to the plugin ...\n')
  const invoke = await jsonChild(['bench/invoke.js'])
  process.stdout.write('bench: liveness with 200 stalled GET /events clients ...\n')
  const sse = await jsonChild(['bench/sse-stall.js', '200'])

  const rows = [
    {
      figure: 'SIGKILL -> new process running, delay 0 (median)',
      measured: `${fmt(restart.plugvisor.running.median, 'ms')} (p95 ${fmt(restart.plugvisor.running.p95, 'ms')}; in /proc ${fmt(restart.plugvisor.inProc.median, 'ms')}; bare respawner ${fmt(restart.bare.running.median, 'ms')}, n=${restart.runs})`,
      budget: '<= 5 ms',
      pass: restart.plugvisor.running.median <= 5
    },
    {
      figure: `start ${life.plugins} plugins until all running (median)`,
      measured: `${fmt(life.start.plugvisorMs.median / 1000, 's', 3)} = ${fmt(life.start.ratio, 'x')} bare loop (${fmt(life.start.bareLoopMs.median / 1000, 's', 3)}), n=${life.rounds}; CPU ${fmt(life.start.cpuMs.plugvisor.median, 'ms', 0)} vs ${fmt(life.start.cpuMs.bareLoop.median, 'ms', 0)}`,
      budget: '<= 1.5 x bare loop',
      pass: life.start.ratio <= 1.5
    },
    {
      figure: `stop ${life.plugins} plugins until all gone (median)`,
      measured: `${fmt(life.stop.plugvisorMs.median / 1000, 's', 3)} (max ${fmt(life.stop.plugvisorMs.max / 1000, 's', 3)}, n=${life.stop.plugvisorMs.n})`,
      budget: '<= 0.3 s',
      pass: life.stop.plugvisorMs.median <= 300
    },
    {
      figure: `status of ${life.plugins}, API GET /plugins (median)`,
      measured: `${fmt(life.statusApiMs.median, 'ms')} (p95 ${fmt(life.statusApiMs.p95, 'ms')}, n=${life.statusApiMs.n})`,
      budget: '<= 20 ms',
      pass: life.statusApiMs.median <= 20
    },
    {
      figure: `status of ${life.plugins}, plugvisor status (median wall)`,
      measured: `${fmt(life.statusCliMs.median, 'ms', 1)} (p95 ${fmt(life.statusCliMs.p95, 'ms', 1)}, n=${life.statusCliMs.n})`,
      budget: '<= 150 ms',
      pass: life.statusCliMs.median <= 150
    },
    {
      figure: `daemon peak RSS, ${life.plugins} running (start/stop/status)`,
      measured: `${fmt(life.peakRssMb, 'MB', 1)} (after the liveness throughput test: peak ${fmt(life.peakRssAfterLoadMb, 'MB', 1)}, now ${fmt(life.rssMb, 'MB', 1)})`,
      budget: '<= 80 MB',
      pass: life.peakRssMb <= 80
    },
    {
      figure: `daemon CPU, ${life.plugins} idle, no probes`,
      measured: `${fmt(life.idleCpu.percentOfOneCore, '%')} of one core over ${life.idleCpu.seconds} s`,
      budget: '<= 0.3 %',
      pass: life.idleCpu.percentOfOneCore <= 0.3
    },
    {
      figure: 'GET /health/liveness vs bare Fastify',
      measured: `${fmt(life.liveness.ratio * 100, '%', 1)} (median of ${life.liveness.plugvisor.slices.length} pairs; ${Math.round(life.liveness.plugvisor.reqPerSec)} vs ${Math.round(life.liveness.bareFastify.reqPerSec)} req/s; per server CPU-second ${fmt(life.liveness.perCpuSecondRatio * 100, '%', 1)})`,
      budget: '>= 80 %',
      pass: life.liveness.ratio >= 0.8
    },
    {
      figure: `GET /metrics with ${metrics.plugins} plugins (median)`,
      measured: `${fmt(metrics.medianMs, 'ms')} (p95 ${fmt(metrics.p95Ms, 'ms')}, ${Math.round(metrics.bodyBytes / 1024)} KiB, n=${metrics.requests})`,
      budget: '<= 25 ms',
      pass: metrics.medianMs <= 25
    },
    {
      figure: `${probes.plugins} plugins probed every second over HTTP, history on`,
      measured: `CPU ${fmt(probes.cpuPercentOfOneCore, '%', 1)} of one core; event-loop lag p99 ${fmt(probes.eventLoopLagP99Ms, 'ms')} (${probes.probesPerSecond} probes/s, ${probes.probeFailures} failures, ${probes.windowSeconds} s)`,
      budget: '<= 15 % of a core; lag p99 <= 20 ms',
      pass: probes.cpuPercentOfOneCore <= 15 && probes.eventLoopLagP99Ms <= 20
    },
    {
      figure: 'history query: 24 h of one plugin probed every second, minute resolution (median)',
      measured: `${fmt(history.minute.medianMs, 'ms')} (p95 ${fmt(history.minute.p95Ms, 'ms')}; raw, 1,000 results: ${fmt(history.raw.medianMs, 'ms')}; n=${history.minute.n})`,
      budget: '<= 20 ms',
      pass: history.minute.medianMs <= 20
    },
    {
      figure: 'invoke through the policies vs straight to the plugin',
      measured: `${fmt(invoke.throughput.ratio * 100, '%', 1)} of the throughput (${invoke.throughput.proxyReqPerSec} vs ${invoke.throughput.directReqPerSec} req/s, median of ${invoke.slices} alternating slices); p50 added ${fmt(invoke.latency.addedP50Ms, 'ms', 3)} (${fmt(invoke.latency.proxyP50Ms, 'ms', 3)} vs ${fmt(invoke.latency.directP50Ms, 'ms', 3)}, n=${invoke.latency.requests})`,
      budget: '>= 70 %; <= 0.5 ms added at p50',
      pass: invoke.throughput.ratio >= 0.7 && invoke.latency.addedP50Ms <= 0.5
    },
    {
      figure: `GET /health/liveness with ${sse.clients} stalled GET /events clients (p99)`,
      measured: `${fmt(sse.liveness.p99Ms, 'ms')} (p50 ${fmt(sse.liveness.p50Ms, 'ms')}, n=${sse.liveness.n}, ${sse.liveness.failed} failed; ${sse.eventsProduced} events; RSS ${fmt(sse.baselineRssMb, 'MB', 1)} -> peak ${fmt(sse.peakRssMb, 'MB', 1)})`,
      budget: '<= 50 ms',
      pass: sse.liveness.p99Ms <= 50 && sse.liveness.failed === 0
    }
  ]

  const dir = path.join(ROOT, 'bench/results')
  mkdirSync(dir, { recursive: true })
  writeFileSync(path.join(dir, 'latest.json'), JSON.stringify({ machine, figures: rows, restart, lifecycle: life, metrics, probes, history, invoke, sse }, null, 2) + '\n')

  const head = ['figure', 'measured', 'budget', 'result']
  const cells = rows.map((r) => [r.figure, r.measured, r.budget, r.pass ? 'pass' : 'FAIL'])
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)))
  const line = (c) => c.map((x, i) => x.padEnd(widths[i])).join('  ')
  process.stdout.write(`\n${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${cells.map(line).join('\n')}\n\nresults: bench/results/latest.json\n`)
  return rows.every((r) => r.pass) ? 0 : 1
}

/** Runs a bench script in its own Node process and returns the JSON object it prints last. */
function jsonChild (args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (c) => { out += c })
    child.once('error', reject)
    child.once('exit', (code) => {
      const start = out.search(/^\{/m)
      const end = out.lastIndexOf('}')
      if (code !== 0 || start < 0) return reject(new Error(`${args.join(' ')} exited ${code}: ${out.slice(-500)}`))
      try { resolve(JSON.parse(out.slice(start, end + 1).split(/\n(?=[^\s}])/)[0])) } catch (err) { reject(err) }
    })
  })
}

main().then((code) => {
  cleanup()
  process.exitCode = code
}, (err) => {
  cleanup()
  process.stderr.write(`bench failed: ${err.stack ?? err}\n`)
  process.exitCode = 2
})
