// A daemon SIGKILLed while it writes health history: the file passes integrity_check, and what
// is lost is at most the one flush window that was being written (all of it or none of it).
import t from 'tap'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import path from 'node:path'
import { tempDir } from './helper.js'

const WRITER = fileURLToPath(new URL('./fixtures/history-writer.ts', import.meta.url))
// The child runs TypeScript with the same loader as this test.
const loader = process.execArgv.filter((a) => a.includes('typescript'))

t.test('SIGKILL during a flush leaves a consistent database that lost at most one flush window', async (t) => {
  const dir = tempDir()
  const child = spawn(process.execPath, [...loader, WRITER, dir, '100', '100'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let lastFlushed = 0
  let flushing = 0
  let flushes = 0
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
  for await (const line of createInterface({ input: child.stdout! })) {
    const [word, n] = line.split(' ')
    if (word === 'flushed') { lastFlushed = Number(n); flushes++ }
    if (word === 'flushing') {
      flushing = Number(n)
      // Kill it while it writes its fourth batch.
      if (flushes >= 3) { process.kill(child.pid!, 'SIGKILL'); break }
    }
  }
  t.equal(await exited, 'SIGKILL')
  t.ok(lastFlushed > 0)

  const db = new Database(path.join(dir, 'plugvisor.db'))
  t.teardown(() => db.close())
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok')
  const { n, max } = db.prepare('SELECT count(*) AS n, coalesce(max(at), 0) AS max FROM health_checks').get() as { n: number, max: number }
  t.equal(n, max, 'the rows are a gap-free prefix of what was recorded')
  t.ok(n === lastFlushed || n === flushing, `rows ${n}: either every flushed batch (${lastFlushed}) or also the one in flight (${flushing})`)
  const rolled = db.prepare("SELECT coalesce(sum(count), 0) AS c FROM health_rollups WHERE resolution = 'minute'").get() as { c: number }
  t.equal(rolled.c, n, 'rollups were written in the same transactions as the rows')
})
