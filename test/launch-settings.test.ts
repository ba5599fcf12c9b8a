// The daemon's launch settings (V8 flags and MALLOC_ARENA_MAX, see src/bin.cts) are written in four
// places an operator or the bench starts it from: the bin's `env -S` line, `npm start`, the
// Dockerfile and bench/lib.js. They must say the same, and the bin run as a program must give the
// daemon process exactly them (and no plugin the malloc setting).
import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { packageRoot } from '../src/paths.js'
import { fixturePlugin, followLog, writeConfig } from './helper.js'

const read = (f: string): string => readFileSync(path.join(packageRoot, f), 'utf8')
const bin = path.join(packageRoot, 'dist/src/bin.cjs')

/** The env assignments and node flags of the bin's first line. */
function shebang (): { env: Record<string, string>, flags: string[] } {
  const words = read('src/bin.cts').split('\n')[0].replace(/^#!\/usr\/bin\/env -S /, '').split(' ')
  const at = words.indexOf('node')
  return { env: Object.fromEntries(words.slice(0, at).map((w) => w.split('='))), flags: words.slice(at + 1) }
}

t.test('npm start, the Dockerfile and the bench launch the daemon with the bin\'s settings', async (t) => {
  const { env, flags } = shebang()
  t.same(env, { MALLOC_ARENA_MAX: '2' })
  t.ok(flags.length > 0 && flags.every((f) => f.startsWith('--')), `node flags: ${flags.join(' ')}`)

  const start = (JSON.parse(read('package.json')) as { scripts: { start: string } }).scripts.start
  t.match(start, `&& MALLOC_ARENA_MAX=2 node ${flags.join(' ')} dist/src/bin.cjs serve`, 'npm start')

  const docker = read('Dockerfile')
  t.match(docker, /^ENV MALLOC_ARENA_MAX=2$/m, 'Dockerfile: the malloc setting')
  const entry = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(docker)![1]) as string[]
  t.same(entry.slice(entry.indexOf('node') + 1, entry.indexOf('dist/src/bin.cjs')), flags, 'Dockerfile: the node flags')

  const lib = await import(path.join(packageRoot, 'bench/lib.js')) as { DAEMON_NODE_FLAGS: string[], DAEMON_ENV: Record<string, string> }
  t.same(lib.DAEMON_ENV, env, 'bench: the malloc setting')
  if (process.env.PLUGVISOR_BENCH_NODE_FLAGS === undefined) t.same(lib.DAEMON_NODE_FLAGS, flags, 'bench: the node flags')
})

t.test('the bin run as a program gives the daemon its settings; a plugin gets no MALLOC_ARENA_MAX', async (t) => {
  const { flags } = shebang()
  const loaded = writeConfig([fixturePlugin('env-dump', 'sleep', { autostart: false })])
  const env: Record<string, string | undefined> = { ...process.env, PLUGVISOR_PORT: '0', PLUGVISOR_HOST: '127.0.0.1', PLUGVISOR_LOG_FORMAT: 'json', PLUGVISOR_LOG_LEVEL: 'info' }
  delete env.MALLOC_ARENA_MAX
  const daemon = spawn(bin, ['serve', '--config', loaded.file], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL') })
  const { entries, until } = followLog(daemon.stdout!)
  await until(() => entries.some((e) => /^daemon start: listening on /.test(e.msg)))

  // `env -S` execs node in the same process: the pid spawned is the daemon's.
  const environ = readFileSync(`/proc/${daemon.pid}/environ`, 'latin1').split('\0')
  t.ok(environ.includes('MALLOC_ARENA_MAX=2'), 'the daemon runs with MALLOC_ARENA_MAX=2')
  const argv = readFileSync(`/proc/${daemon.pid}/cmdline`, 'latin1').split('\0')
  t.same(argv.slice(1, 1 + flags.length), flags, 'and with the node flags, before the script')

  const address = entries.find((e) => /^daemon start: listening on /.test(e.msg))!.address as string
  // The answer comes once the start took effect.
  const started = await fetch(`${address}/plugins/env-dump/start`, { method: 'POST' })
  t.equal(started.status, 200)
  const { state, pid } = await started.json() as { state: string, pid?: number }
  t.equal(state, 'running')
  t.ok(pid, 'the plugin runs')
  const pluginEnv = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0')
  t.notOk(pluginEnv.some((e) => e.startsWith('MALLOC_ARENA_MAX=')), 'the plugin does not inherit it')

  daemon.kill('SIGTERM')
  await new Promise((resolve) => daemon.once('exit', resolve))
  t.equal(daemon.exitCode, 0)
})
