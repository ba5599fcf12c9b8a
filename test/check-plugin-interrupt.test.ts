// plugvisor check-plugin interrupted: exit 130, the report says so, every process it started is gone.
import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync, watch } from 'node:fs'
import path from 'node:path'
import { Ajv } from 'ajv'
import { packageRoot } from '../src/paths.js'
import { alive, fixturePlugin, tempDir } from './helper.js'
import { writeManifest } from './check-plugin-helper.js'
import { CheckReport } from '../src/check-plugin/report.js'

// Each check-plugin run is seconds of real processes (start, stay up, stop, SIGKILL, restart):
// a loaded 2-core machine needs more than the default file timeout. A bound against hangs only.
t.setTimeout(180_000)

const bin = path.join(packageRoot, 'dist/src/bin.cjs')
const isReport = new Ajv({ strict: false }).compile(CheckReport)

t.test('interrupted: exit 130, the --json report says so, and the plugin it started is gone', async (t) => {
  const dir = tempDir()
  const pidFile = path.join(dir, 'pid')
  // Never listens: the check waits out a long startup budget, so the interrupt comes mid-check.
  const file = writeManifest(fixturePlugin('slow', 'sleep', { port: 'auto', env: { PID_FILE: pidFile }, healthCheck: { tcp: {}, startup: { failureThreshold: 600, intervalMs: 100 } } }))
  // The fixture writes its pid first thing: wait for the file to hold it.
  const readPid = (): number => { try { return Number(readFileSync(pidFile, 'utf8')) } catch { return 0 } }
  const written = new Promise<void>((resolve) => {
    const w = watch(dir, () => { if (readPid() > 0) { w.close(); resolve() } })
  })
  const child = spawn(process.execPath, [bin, 'check-plugin', file, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let stdout = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c })
  await written
  const pid = readPid()
  t.teardown(() => { try { process.kill(-pid, 'SIGKILL') } catch {} })
  t.ok(alive(pid), 'the plugin runs')
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.kill('SIGINT')
  t.equal(await exited, 130)
  t.equal(alive(pid), false, 'its process is gone')
  const report = JSON.parse(stdout)
  t.ok(isReport(report), 'the --json shape')
  t.match(report, { plugin: 'slow', ok: false, interrupted: true })
  t.same(report.checks.map((c: { id: string }) => c.id), ['manifest', 'starts', 'listens', 'health', 'health-json', 'config', 'reload-hook', 'stop', 'sigkill'])
  t.equal(report.checks.find((c: { id: string }) => c.id === 'listens').reason, 'interrupted')
})
