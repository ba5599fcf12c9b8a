// `npm run bench`: every figure of the performance budget table, each beside its anchor measured
// in the same run (bare spawn loop, 5-line respawner, bare Fastify with 0 and 500 piped children,
// Fastify + @fastify/reply-from, nginx when installed, `node -e 0`), as ratios; the machine's
// load average at the start and the end. Results go to bench/results/latest.json and a table on
// stdout; the exit code is 1 when a budget is missed.
//   npm run bench                 full sizes (about 6 minutes)
//   npm run bench -- --quick      every figure at small size (well under a minute; also
//                                 PLUGVISOR_BENCH_QUICK=1); its figures are not the budget's
//   npm run bench -- --peers      also PM2 and supervisord with the same children (bench/peers.js)
// Bounded: a watchdog ends the run after 10 minutes (15 with --peers); every process it started
// is stopped by pid.
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { DAEMON_NODE_FLAGS, cleanup, descendantsOf, round, ROOT } from './lib.js'
import { restartLatency } from './restart-latency.js'
import { lifecycle } from './lifecycle.js'
import { benchInvoke } from './invoke.js'
import { benchCalls } from './calls.js'
import { benchPeers, peerTable } from './peers.js'

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, peers: { type: 'boolean', default: false } } })
const quick = args.quick || process.env.PLUGVISOR_BENCH_QUICK === '1'

// PLUGVISOR_BENCH_WATCHDOG_MS: a shorter limit, for the test of the watchdog itself.
const WATCHDOG_MS = Number(process.env.PLUGVISOR_BENCH_WATCHDOG_MS) || (args.peers ? 15 : 10) * 60 * 1000
const watchdog = setTimeout(() => {
  process.stderr.write(`bench: watchdog: still running after ${WATCHDOG_MS / 60000} minutes, giving up\n`)
  // The bench scripts running now, their daemons and those daemons' plugins (in their own process
  // groups, but still below us): all read first, then SIGKILLed by pid, so nothing outlives the run.
  killDescendants()
  cleanup()
  process.exit(2)
}, WATCHDOG_MS)
watchdog.unref()
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => { killDescendants(); cleanup(); process.exit(130) })

function killDescendants () {
  for (const pid of descendantsOf(process.pid)) { try { process.kill(pid, 'SIGKILL') } catch {} }
}

const fmt = (x, unit, d = 2) => `${round(x, d)} ${unit}`.trim()
const pct = (x) => fmt(x * 100, '%', 1)
const load = () => os.loadavg().map((x) => round(x))

async function main () {
  const machine = {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model,
    memGb: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    kernel: os.release(),
    daemonNodeFlags: DAEMON_NODE_FLAGS,
    quick,
    // Other work on the machine skews every figure: recorded so a reader can tell.
    loadavgAtStart: load(),
    at: new Date().toISOString()
  }
  const t0 = Date.now()
  const step = (what) => process.stdout.write(`bench: ${Math.round((Date.now() - t0) / 1000)} s: ${what} (load average ${load().join(' ')}) ...\n`)
  process.stdout.write(`machine: ${machine.nproc} cores (${machine.cpu}), Node ${machine.node}, Linux ${machine.kernel}; daemon flags: ${DAEMON_NODE_FLAGS.join(' ') || 'none'}${quick ? '; QUICK sizes' : ''}\n`)
  step('restart after SIGKILL, beside a 5-line respawner')
  const restart = await restartLatency(quick ? { runs: 20, warmup: 3 } : {})
  step('plugins: liveness, start, stop, idle CPU, status, memory')
  const life = await lifecycle({ quick })
  step('GET /metrics with many plugins')
  const metrics = await jsonChild(['bench/metrics.js', '--plugins', quick ? '50' : '500', '--requests', quick ? '30' : '200'])
  step('plugins probed every second over HTTP, history on')
  const probes = await jsonChild(['bench/health-probes.js', quick ? '50' : '500', quick ? '3' : '20'])
  step('history query, one plugin probed every second for hours')
  const history = await jsonChild(['bench/history-query.js', ...(quick ? ['--quick'] : [])])
  step('invoke beside direct, reply-from and nginx')
  const invoke = await benchInvoke({ quick })
  step('the dashboard with 500 plugins in headless Chromium')
  const dashboard = await jsonChild(['bench/dashboard.js'])
  step('calls: POST /plugins/:name/calls, a batch of 1,000')
  const calls = await benchCalls({ quick })
  step('liveness with 200 stalled GET /events clients')
  const sse = await jsonChild(['bench/sse-stall.js', quick ? '50' : '200'])
  step('log files: plugins printing 10 lines a second each')
  const logFiles = await jsonChild(['bench/log-files.js', quick ? '50' : '500', quick ? '6' : '20'])
  step('daemon CPU with 500 manifests watched, idle')
  const watchIdle = await jsonChild(['bench/watch-idle.js', quick ? '50' : '500', '5', quick ? '5' : '20'])
  let peers
  if (args.peers) {
    step('peers: PM2 and supervisord with the same children')
    peers = await benchPeers({ quick, plugvisor: { restart, life } })
  }
  machine.loadavgAtEnd = load()
  machine.seconds = Math.round((Date.now() - t0) / 1000)

  const n = life.plugins
  const peakValues = [...Object.values(life.peakRssMb), invoke.daemonPeakRssMb]
  const rows = [
    {
      figure: 'SIGKILL -> replacement running, restart delay 0 (median)',
      measured: `${fmt(restart.plugvisor.running.median, 'ms')} = ${fmt(restart.plugvisor.running.median / restart.bare.running.median, 'x')} the respawner (${fmt(restart.bare.running.median, 'ms')}; p95 ${fmt(restart.plugvisor.running.p95, 'ms')}, n=${restart.runs})`,
      budget: '<= 1.3 x the respawner',
      pass: restart.plugvisor.running.median <= 1.3 * restart.bare.running.median
    },
    {
      figure: `start ${n} until all running (median)`,
      measured: `${fmt(life.start.plugvisorMs.median / 1000, 's', 3)} = ${fmt(life.start.ratio, 'x')} the bare loop, piped and detached (${fmt(life.start.bareLoopMs.median / 1000, 's', 3)}; plain ${fmt(life.start.plainLoopMs.median / 1000, 's', 3)}); CPU ${fmt(life.start.cpuMs.plugvisor.median, 'ms', 0)} vs ${fmt(life.start.cpuMs.bareLoop.median, 'ms', 0)}, n=${life.rounds}`,
      budget: '<= 1.2 x the bare loop',
      pass: life.start.ratio <= 1.2
    },
    {
      figure: `stop ${n} until all gone (median)`,
      measured: `${fmt(life.stop.plugvisorMs.median / 1000, 's', 3)} (max ${fmt(life.stop.plugvisorMs.max / 1000, 's', 3)}, n=${life.stop.plugvisorMs.n})`,
      budget: '<= 0.15 s',
      pass: life.stop.plugvisorMs.median <= 150
    },
    {
      figure: `status of ${n} from the command line (median wall)`,
      measured: `${fmt(life.statusCliMs.median, 'ms', 1)} = node -e 0 (${fmt(life.nodeStartMs.median, 'ms', 1)}) + ${fmt(life.statusCliMs.median - life.nodeStartMs.median, 'ms', 1)} (n=${life.statusCliMs.n})`,
      budget: '<= node -e 0 + 40 ms',
      pass: life.statusCliMs.median <= life.nodeStartMs.median + 40
    },
    {
      figure: `status of ${n} over the API, GET /plugins (median)`,
      measured: `${fmt(life.statusApiMs.median, 'ms')} (p95 ${fmt(life.statusApiMs.p95, 'ms')}, n=${life.statusApiMs.n})`,
      budget: '<= 10 ms',
      pass: life.statusApiMs.median <= 10
    },
    {
      figure: `peak RSS of plugvisor (daemon + spawner), ${n} running, after every phase`,
      measured: `${Object.entries(life.peakRssMb).map(([k, v]) => `${k} ${fmt(v, 'MB', 1)}`).join('; ')}; invoke load (1 plugin) ${fmt(invoke.daemonPeakRssMb, 'MB', 1)}`,
      budget: '<= 80 MB',
      pass: peakValues.every((v) => v <= 80)
    },
    {
      figure: `plugvisor CPU (daemon + spawner), ${n} idle, ${life.idleCpu.seconds} s from ${life.idleCpu.fromSecondsAfterStart} s after the start`,
      measured: `${fmt(life.idleCpu.percentOfOneCore, '%')} of one core`,
      budget: '<= 0.3 %',
      pass: life.idleCpu.percentOfOneCore <= 0.3
    },
    ...[10, 50].map((c) => {
      const o = invoke.concurrency[c]
      return {
        figure: `invoke through the default policies, c=${c}, vs Fastify + reply-from`,
        measured: `${pct(o.vsReplyFrom.throughput)} of its throughput, ${pct(o.vsReplyFrom.perCpuSecond)} of its requests per CPU-second (share of direct: plugvisor ${pct(o.plugvisor.ofDirect)}, reply-from ${pct(o.replyFrom.ofDirect)}${o.nginx ? `, nginx ${pct(o.nginx.ofDirect)}` : `, nginx ${invoke.nginx}`}; CPU per call ${o.plugvisor.cpuUsPerRequest} vs ${o.replyFrom.cpuUsPerRequest} µs)`,
        budget: '>= 100 % of both',
        pass: o.vsReplyFrom.throughput >= 1 && o.vsReplyFrom.perCpuSecond >= 1
      }
    }),
    {
      figure: 'invoke: added p50 (one connection, sequential)',
      measured: `${fmt(invoke.latency.addedP50Ms, 'ms', 3)} (reply-from ${fmt(invoke.latency.replyFromAddedP50Ms, 'ms', 3)}; direct ${fmt(invoke.latency.directP50Ms, 'ms', 3)}, n=${invoke.latency.requests})`,
      budget: '<= 0.5 ms',
      pass: invoke.latency.addedP50Ms <= 0.5
    },
    {
      figure: 'POST /plugins/:name/calls, a batch of 1,000 (round trip, median)',
      measured: `${fmt(calls.batchP50Ms, 'ms', 3)} (one call ${fmt(calls.oneP50Ms, 'ms', 3)}; the 999 more ${fmt(calls.recordingMs, 'ms', 3)}, n=${calls.rounds})`,
      budget: '<= 5 ms',
      pass: calls.batchP50Ms <= 5
    },
    {
      figure: 'GET /health/liveness, no plugin running, vs bare Fastify',
      measured: `${pct(life.liveness.none.ratio)} of its throughput (${life.liveness.none.plugvisorReqPerSec} vs ${life.liveness.none.bareReqPerSec} req/s); per server CPU-second ${pct(life.liveness.none.perCpuSecondRatio)}`,
      budget: '>= 95 %',
      pass: life.liveness.none.ratio >= 0.95
    },
    {
      figure: `GET /health/liveness, ${n} running, vs bare Fastify holding ${n} piped children`,
      measured: `${pct(life.liveness.all.ratio)} of its throughput (${life.liveness.all.plugvisorReqPerSec} vs ${life.liveness.all.bareReqPerSec} req/s); per server CPU-second ${pct(life.liveness.all.perCpuSecondRatio)}`,
      budget: '>= 90 %',
      pass: life.liveness.all.ratio >= 0.9
    },
    {
      figure: `GET /metrics with ${metrics.plugins} plugins (median)`,
      measured: `${fmt(metrics.medianMs, 'ms')} (p95 ${fmt(metrics.p95Ms, 'ms')}, ${Math.round(metrics.bodyBytes / 1024)} KiB, n=${metrics.requests})`,
      budget: '<= 15 ms',
      pass: metrics.medianMs <= 15
    },
    {
      figure: `${probes.plugins} plugins probed every second over HTTP, history on`,
      measured: `CPU ${fmt(probes.cpuPercentOfOneCore, '%', 1)} of one core; event-loop lag p99 ${fmt(probes.eventLoopLagP99Ms, 'ms')} (${probes.probesPerSecond} probes/s, ${probes.probeFailures} failures, ${probes.windowSeconds} s)`,
      budget: '<= 10 % of a core; lag p99 <= 20 ms',
      pass: probes.cpuPercentOfOneCore <= 10 && probes.eventLoopLagP99Ms <= 20
    },
    {
      figure: `history query: ${history.results / 3600} h at 1 s, minute resolution (median)`,
      measured: `${fmt(history.minute.medianMs, 'ms')} (p95 ${fmt(history.minute.p95Ms, 'ms')}; raw, 1,000 results: ${fmt(history.raw.medianMs, 'ms')}; n=${history.minute.n})`,
      budget: '<= 20 ms',
      pass: history.minute.medianMs <= 20
    },
    {
      figure: `dashboard: first paint of the table with ${dashboard.plugins} plugins (median of ${dashboard.firstPaint.n} loads)`,
      measured: `${fmt(dashboard.firstPaint.median, 'ms', 0)} (max ${fmt(dashboard.firstPaint.max, 'ms', 0)})`,
      budget: '<= 1000 ms',
      pass: dashboard.firstPaint.median <= 1000
    },
    {
      figure: `dashboard: live updates while ${dashboard.liveUpdate.events} events stream in (restart of all)`,
      measured: `frame gap p95 ${fmt(dashboard.liveUpdate.frameGapMs.p95, 'ms', 1)}, max ${fmt(dashboard.liveUpdate.frameGapMs.max, 'ms', 0)}; ${dashboard.liveUpdate.longTasks} long tasks (max ${fmt(dashboard.liveUpdate.longTaskMaxMs, 'ms', 0)}); every row current ${fmt(dashboard.liveUpdate.allRowsShownMs - dashboard.liveUpdate.restartAnsweredMs, 'ms', 0)} after the restart answered`,
      budget: 'frame gap p95 <= 50 ms; no long task over 200 ms',
      pass: dashboard.liveUpdate.frameGapMs.p95 <= 50 && dashboard.liveUpdate.longTaskMaxMs <= 200
    },
    {
      figure: `daemon CPU, ${dashboard.plugins} idle, with the dashboard open`,
      measured: `${fmt(dashboard.daemonCpuPercent.dashboardOpen, '%', 2)} (without: ${fmt(dashboard.daemonCpuPercent.noDashboard, '%', 2)}; ${dashboard.daemonCpuPercent.windowSeconds} s each)`,
      budget: '<= idle + 0.2 %',
      pass: dashboard.daemonCpuPercent.added <= 0.2
    },
    {
      figure: `daemon CPU, ${watchIdle.plugins} manifests watched (${watchIdle.watchedFolders} folders), idle, not started`,
      measured: `${fmt(watchIdle.cpuPercentOfOneCore, '%', 3)} of one core over ${watchIdle.windowSeconds} s`,
      budget: '<= 0.3 % of a core',
      pass: watchIdle.cpuPercentOfOneCore <= 0.3
    },
    {
      figure: `event-loop lag p99 with ${logFiles.plugins} plugins printing 10 lines/s each into log files (median of ${logFiles.lagP99Ms.n} scrapes)`,
      measured: `${fmt(logFiles.lagP99Ms.median, 'ms')} (max ${fmt(logFiles.lagP99Ms.max, 'ms')}; ${logFiles.linesPerSecond} lines/s, ${fmt(logFiles.logMbPerSecond, 'MB/s')} written; daemon CPU ${fmt(logFiles.daemonCpuPercentOfOneCore, '%', 1)} of one core; the same plugins printing nothing: ${fmt(logFiles.quiet.lagP99Ms.median, 'ms')}, max ${fmt(logFiles.quiet.lagP99Ms.max, 'ms')}; the files alone, in-process: p99 ${fmt(logFiles.filesAlone.withFiles.lagP99Ms, 'ms')} vs ${fmt(logFiles.filesAlone.without.lagP99Ms, 'ms')} without, CPU ${fmt(logFiles.filesAlone.withFiles.cpuPercentOfOneCore, '%', 1)} vs ${fmt(logFiles.filesAlone.without.cpuPercentOfOneCore, '%', 1)})`,
      budget: '<= 20 ms',
      pass: logFiles.lagP99Ms.median <= 20
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
  writeFileSync(path.join(dir, quick ? 'latest-quick.json' : 'latest.json'), JSON.stringify({ machine, figures: rows, restart, lifecycle: life, metrics, probes, history, invoke, dashboard, calls, watchIdle, logFiles, sse, peers }, null, 2) + '\n')

  process.stdout.write(`\n${table(['figure', 'measured', 'budget', 'result'], rows.map((r) => [r.figure, r.measured, r.budget, r.pass ? 'pass' : 'FAIL']))}\n`)
  if (peers) process.stdout.write(`\n${peerTable(peers, table)}\n`)
  process.stdout.write(`\nload average: ${machine.loadavgAtStart.join(' ')} at the start, ${machine.loadavgAtEnd.join(' ')} at the end (${machine.nproc} cores); ${machine.seconds} s\n`)
  process.stdout.write(`results: bench/results/${quick ? 'latest-quick.json' : 'latest.json'}${quick ? ' (quick sizes: not the budget\'s figures)' : ''}\n`)
  return rows.every((r) => r.pass) ? 0 : 1
}

function table (head, cells) {
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)))
  const line = (c) => c.map((x, i) => x.padEnd(widths[i])).join('  ').trimEnd()
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n')
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
