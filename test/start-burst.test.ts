// A daemon killed hard in the middle of starting many plugins: the next daemon on the same data
// folder must leave every plugin running exactly once (a daemon as a process, real SIGKILL).
import t from 'tap'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { build, fixturePlugin, writeConfig } from './helper.js'
import { packageRoot } from '../src/paths.js'
import { findByEnviron, readEnviron } from '../src/process/proc.js'

// 100 plugins started twice and stopped once on 2 shared cores: more than the default minute.
t.setTimeout(240000)

t.test('a daemon SIGKILLed during a start burst of 100 plugins: the next one leaves each plugin running once; it failed before', { timeout: 200000 }, async (t) => {
  const run = randomUUID()
  const names = Array.from({ length: 100 }, (_, i) => `burst${i}`)
  const loaded = writeConfig(names.map((n) => fixturePlugin(n, i0(n) % 10 === 0 ? 'setsid-grandchild' : 'sleep', { env: { TEST_RUN: run }, stop: { timeoutMs: 500 } })), { log: { level: 'info' } })
  // Every process of this test, of every daemon generation, by the variable only this test sets.
  const ours = (): { pid: number, ppid: number, plugin: string }[] => findByEnviron((env) => env.includes(`TEST_RUN=${run}`))
    .map((st) => ({ pid: st.pid, ppid: st.ppid, plugin: (readEnviron(st.pid) ?? []).find((e) => e.startsWith('PLUGVISOR_PLUGIN='))?.slice(17) ?? '' }))
  t.teardown(() => { for (const { pid } of ours()) { try { process.kill(pid, 'SIGKILL') } catch {} } })
  const daemon = spawn(process.execPath, [path.join(packageRoot, 'dist/src/bin.cjs'), 'serve', '--config', loaded.file], {
    env: { ...process.env, PLUGVISOR_PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { if (daemon.exitCode === null) daemon.kill('SIGKILL') })
  // Killed when half of the plugins are reported starting: the burst is still under way.
  let starting = 0
  for await (const line of createInterface({ input: daemon.stdout! })) {
    if (line.includes('-> starting') && ++starting === 50) break
  }
  daemon.kill('SIGKILL')
  await once(daemon, 'exit')
  const left = ours()
  t.ok(left.length > 0, `the killed daemon left processes behind (${left.length})`)

  const app = await build(t, loaded, { boot: false })
  await app.daemon.boot()
  const now = ours()
  const sup = app.daemon.supervisor
  // A plugin's own grandchild has a parent among these processes; a leader, of any generation, has not.
  const pids = new Set(now.map((p) => p.pid))
  const leaders = now.filter((p) => !pids.has(p.ppid))
  const leadersOf = (n: string): number[] => leaders.filter((p) => p.plugin === n).map((p) => p.pid)
  t.same(names.filter((n) => leadersOf(n).length !== 1 || leadersOf(n)[0] !== sup.summary(n).pid), [], 'each plugin runs once: the process the new daemon started')
  t.same(left.filter((p) => pids.has(p.pid)).map((p) => p.pid), [], 'no process of the killed daemon survived')
})

function i0 (name: string): number { return Number(name.replace(/\D/g, '')) }
