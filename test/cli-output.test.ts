// A command's output written to descriptor 1 (src/cli.cts print()): whole through a pipe read
// slowly, and a reader that went away ends the command quietly.
import t from 'tap'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { packageRoot } from '../src/paths.js'

const cli = pathToFileURL(path.join(packageRoot, 'dist/src/cli.cjs')).href
const LINE = 'abcdefghijklmnopqrstuvwxyz0123456789\n'
const COUNT = 100_000 // 3.7 MB: far more than a pipe holds, so writes find it full

/** Runs print() in a node process; `touchStdout` first makes process.stdout (a pipe's descriptor turns non-blocking). */
function printer (t: { teardown: (fn: () => void) => void }, touchStdout: boolean) {
  const code = `${touchStdout ? 'process.stdout;' : ''} import(${JSON.stringify(cli)}).then((m) => m.print(${JSON.stringify(LINE)}.repeat(${COUNT})))`
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = new Promise<{ code: number | null, stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })))
  return { child, exited }
}

t.test('a non-blocking pipe that fills up: the rest goes through process.stdout, nothing lost', async (t) => {
  const { child, exited } = printer(t, true)
  const chunks: Buffer[] = []
  child.stdout.on('data', (c: Buffer) => chunks.push(c))
  const { code, stderr } = await exited
  t.equal(code, 0, stderr)
  const out = Buffer.concat(chunks).toString()
  t.equal(out.length, LINE.length * COUNT)
  t.ok(out === LINE.repeat(COUNT), 'every byte, in order')
})

t.test('the reader went away: exit 0, nothing on stderr', async (t) => {
  for (const touchStdout of [false, true]) {
    const { child, exited } = printer(t, touchStdout)
    child.stdout.destroy()
    const { code, stderr } = await exited
    t.equal(code, 0, `exit 0 (process.stdout made before: ${touchStdout})`)
    t.equal(stderr, '', 'no error printed')
  }
})
