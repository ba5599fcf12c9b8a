// plugvisor check-plugin as a command: the report, --json, exit codes, cleanup when interrupted.
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { readFileSync, watch, writeFileSync } from 'node:fs'
import path from 'node:path'
import { packageRoot } from '../src/paths.js'
import { alive, fixturePlugin, tempDir } from './helper.js'
import { writeManifest } from './check-plugin-helper.js'
import { Ajv } from 'ajv'
import { CheckReport } from '../src/check-plugin/report.js'

const examples = path.join(packageRoot, 'examples/plugins')
const bin = path.join(packageRoot, 'dist/src/bin.js')
const isReport = new Ajv({ strict: false }).compile(CheckReport)

t.test('the command: a readable report and exit 0; exit 1 with --json on a failed check; 2 on bad usage', async (t) => {
  const run = (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> => new Promise((resolve) => {
    execFile(process.execPath, [bin, 'check-plugin', ...args], { timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err as { code: number }).code : 0, stdout, stderr })
    })
  })
  const ok = await run([path.join(examples, 'hello.yaml'), '--cases', path.join(examples, 'hello.cases.yaml'), '--bench', '20', '--concurrency', '2', '--min-success-rate', '1'])
  t.equal(ok.code, 0, ok.stdout + ok.stderr)
  t.match(ok.stdout, /^check-plugin .*hello\.yaml \(plugin hello\)\n {2}PASS {2}the manifest is valid/)
  t.match(ok.stdout, /\n {2}PASS {2}benchmark +20 requests, concurrency 2: 100\.0 % succeeded, p50 /)
  t.match(ok.stdout, /\n11 passed, 0 failed, 1 skipped: OK\n$/)
  const bad = await run([writeManifest(fixturePlugin('bad', 'serve', { port: 'sometimes' })), '--json'])
  t.equal(bad.code, 1)
  t.ok(isReport(JSON.parse(bad.stdout)), 'the --json shape')
  t.match(JSON.parse(bad.stdout), { plugin: null, ok: false, interrupted: false, bench: null, checks: [{ id: 'manifest', status: 'fail', reason: /\/port/ }] })
  t.equal((await run([])).code, 2)
  t.equal((await run([path.join(examples, 'hello.yaml'), '--concurrency', '3'])).code, 2, '--concurrency without --bench')
  const cases = await run([path.join(examples, 'hello.yaml'), '--cases', path.join(examples, 'hello.yaml')])
  t.equal(cases.code, 2, 'a manifest is not a cases file')
  t.match(cases.stderr, /invalid cases file\n {2}.*hello\.yaml: \/: must be array/)
  const twice = path.join(tempDir(), 'twice.json')
  writeFileSync(twice, JSON.stringify([{ name: 'a', request: { path: '/' } }, { name: 'a', request: { path: '/x' } }]))
  const dup = await run([path.join(examples, 'hello.yaml'), '--cases', twice])
  t.equal(dup.code, 2)
  t.match(dup.stderr, /twice\.json: \/1\/name: 'a' names an earlier case too/)
})

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
