// `GET /health/liveness` with no plugin running (500 loaded), several daemons side by side — of
// other builds (--bin, e.g. a copy of dist/ from the base commit) and other V8 flag sets (--flags,
// '' for none) — beside bare Fastify (bench/bare-fastify.js) and, with --alone, the shortcut alone
// in a plain node:http process with the daemon's flags (bench/liveness-alone.js). Every server
// warmed up for 1 s, then `--slices` rounds of one autocannon slice each (10 connections,
// `--seconds` long), the order reversed every other round so outside load spreads over all.
// Prints, for each: median throughput, CPU per request (all threads, and the main thread's user and
// kernel time apart, from /proc/<pid>/task/*/stat) and both as ratios to bare Fastify. Not part of
// `npm run bench`: a tool for comparing builds and flags (on a loaded machine, read the CPU columns).
//   node bench/liveness-ab.js [--slices 8] [--seconds 2] [--bin dist/src/bin.cjs]... [--flags='…']... [--alone]
import { readFileSync, readdirSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { BIN, CLK_TCK, DAEMON_NODE_FLAGS, ROOT, cleanup, freePort, round, sleepPlugin, startDaemon, startProcess, stats, stopProcess, trackStray, writeConfig } from './lib.js'

const { values: args } = parseArgs({
  options: {
    slices: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '2' },
    bin: { type: 'string', multiple: true },
    flags: { type: 'string', multiple: true },
    alone: { type: 'boolean', default: false }
  }
})
const bins = (args.bin ?? [BIN]).map((b) => path.resolve(b))
const flagSets = (args.flags ?? [DAEMON_NODE_FLAGS.join(' ')]).map((f) => f.split(' ').filter(Boolean))
const names = Array.from({ length: 500 }, (_, i) => `p${String(i).padStart(3, '0')}`)

const cannon = (url, duration) => new Promise((resolve, reject) => {
  autocannon({ url, connections: 10, pipelining: 1, duration }, (err, res) => err ? reject(err) : resolve(res))
})

/** CPU ticks of a process: the main thread's user and kernel time, and every other thread's. */
function ticks (pid) {
  const t = { mainUser: 0, mainKernel: 0, others: 0 }
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    if (tid === String(pid)) {
      t.mainUser = Number(f[11])
      t.mainKernel = Number(f[12])
    } else {
      t.others += Number(f[11]) + Number(f[12])
    }
  }
  return t
}

/** A helper server (bare Fastify, the shortcut alone) that reports 'ready' over IPC. */
async function helper (label, script, nodeFlags) {
  const port = await freePort()
  const child = startProcess(process.execPath, [...nodeFlags, script, '0'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }, label)
  const ready = await new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (code) => reject(new Error(`${label} exited ${code}`)))
  })
  for (const pid of ready.pids) trackStray(pid)
  return { label, child, url: `http://127.0.0.1:${port}/health/liveness` }
}

const targets = []
try {
  for (const [b, bin] of bins.entries()) {
    for (const [f, flags] of flagSets.entries()) {
      const label = `daemon${bins.length > 1 ? ` bin${b}` : ''}${flagSets.length > 1 ? ` flags${f}` : ''}`
      const { child, base } = await startDaemon(writeConfig(names.map((n) => sleepPlugin(n))), { name: label, bin, flags })
      targets.push({ label, child, url: `${base}/health/liveness` })
    }
  }
  if (args.alone) targets.push(await helper('shortcut alone', path.join(ROOT, 'bench/liveness-alone.js'), flagSets[0]))
  targets.push(await helper('bare Fastify', path.join(ROOT, 'bench/bare-fastify.js'), []))
  for (const t of targets) await cannon(t.url, 1)
  const loadAtStart = os.loadavg()
  const out = new Map(targets.map((t) => [t, { requests: 0, rps: [], mainUser: 0, mainKernel: 0, others: 0 }]))
  for (let i = 0; i < Number(args.slices); i++) {
    for (const t of i % 2 ? [...targets].reverse() : targets) {
      const t0 = ticks(t.child.pid)
      const r = await cannon(t.url, Number(args.seconds))
      const t1 = ticks(t.child.pid)
      if (r.errors || r.non2xx) throw new Error(`autocannon saw errors against ${t.label}`)
      const o = out.get(t)
      o.requests += r.requests.total
      o.rps.push(r.requests.average)
      for (const k of ['mainUser', 'mainKernel', 'others']) o[k] += t1[k] - t0[k]
    }
  }
  const us = (tickCount, requests) => round(tickCount / CLK_TCK / requests * 1e6, 1)
  const bare = out.get(targets.at(-1))
  const bareUs = (bare.mainUser + bare.mainKernel + bare.others) / bare.requests
  for (const [t, o] of out) {
    const cpu = o.mainUser + o.mainKernel + o.others
    console.log(`${t.label.padEnd(24)} ${String(Math.round(stats(o.rps).median)).padStart(6)} req/s (${round(stats(o.rps).median / stats(bare.rps).median * 100, 1)} % of bare)  ` +
      `${us(cpu, o.requests)} µs CPU a request (${round(bareUs / (cpu / o.requests) * 100, 1)} % of bare per CPU-second): main ${us(o.mainUser, o.requests)} user + ${us(o.mainKernel, o.requests)} kernel, other threads ${us(o.others, o.requests)}`)
  }
  console.log(`load average ${loadAtStart.map((x) => round(x)).join(' ')} -> ${os.loadavg().map((x) => round(x)).join(' ')}`)
} finally {
  for (const t of targets) {
    if (t.child.connected) t.child.disconnect()
    await stopProcess(t.child, 10000)
  }
  cleanup()
}
