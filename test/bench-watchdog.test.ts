// `npm run bench` ends itself after its time limit: what it started (the bench scripts, their
// daemons, the daemons' plugins in their own process groups) must go with it. Before, the
// watchdog killed only the helpers it had started itself, and a bench script's daemon with its
// 500 `sleep` plugins kept running.
import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
// @ts-expect-error plain JavaScript module of the bench harness
import { descendantsOf } from '../bench/lib.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** The start time of a process (field 22 of its stat), to tell it from a later one with its pid. */
function startTicks (pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch { return undefined }
}

function isZombie (pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z'
  } catch { return true }
}

t.test('the bench watchdog leaves no process of the run behind', { timeout: 120000 }, async (t) => {
  const run = spawn(process.execPath, [path.join(ROOT, 'bench/run.js'), '--quick'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PLUGVISOR_BENCH_WATCHDOG_MS: '12000' }
  })
  let stderr = ''
  run.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const seen = new Map<number, string>()
  // If the test fails, nothing it saw outlives it either.
  t.teardown(() => {
    if (run.exitCode === null) run.kill('SIGKILL')
    for (const [pid, ticks] of seen) if (startTicks(pid) === ticks) { try { process.kill(pid, 'SIGKILL') } catch {} }
  })
  const exited = new Promise<number | null>((resolve) => run.once('exit', (code) => resolve(code)))
  // What runs below the bench, read every 100 ms until it exits.
  while (run.exitCode === null && run.signalCode === null) {
    for (const pid of descendantsOf(run.pid) as number[]) {
      const ticks = startTicks(pid)
      if (ticks !== undefined && !seen.has(pid)) seen.set(pid, ticks)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const code = await exited
  t.equal(code, 2, 'the watchdog ended the run')
  t.match(stderr, /watchdog/, 'and said so')
  t.ok(seen.size >= 3, `it had started a bench script, a daemon and plugins (${seen.size} processes seen)`)
  // SIGKILLed processes take a moment to be gone from /proc (no event to await from here).
  const alive = (): number[] => [...seen].filter(([pid, ticks]) => startTicks(pid) === ticks && !isZombie(pid)).map(([pid]) => pid)
  for (let i = 0; i < 50 && alive().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(alive(), [], 'none of them is still running')
})
