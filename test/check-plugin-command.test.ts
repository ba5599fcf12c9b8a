// plugvisor check-plugin as a command: the report, --json, exit codes.
import t from 'tap'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { packageRoot } from '../src/paths.js'
import { fixturePlugin, tempDir } from './helper.js'
import { writeManifest } from './check-plugin-helper.js'
import { Ajv } from 'ajv'
import { CheckReport } from '../src/check-plugin/report.js'

// Each check-plugin run is seconds of real processes (start, stay up, stop, SIGKILL, restart):
// a loaded 2-core machine needs more than the default file timeout. A bound against hangs only.
t.setTimeout(180_000)

const examples = path.join(packageRoot, 'examples/plugins')
const bin = path.join(packageRoot, 'dist/src/bin.cjs')
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
  t.match(ok.stdout, /\n12 passed, 0 failed, 0 skipped: OK\n$/)
  t.match(ok.stdout, /\n {2}PASS {2}its reload hook works +SIGHUP: the same process \d+ printed the new config/)
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
