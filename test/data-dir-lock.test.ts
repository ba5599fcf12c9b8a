// One daemon per data folder, and a daemon that cannot listen leaves nothing running: the daemon
// as a process (two real `serve` processes, a port held by the test), real signals.
import t from 'tap'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { lstatSync, mkdirSync, readlinkSync, symlinkSync } from 'node:fs'
import { createServer } from 'node:net'
import path from 'node:path'
import { build, fixturePlugin, followLog, writeConfig, type Tap } from './helper.js'
import { packageRoot } from '../src/paths.js'
import { bootId, findByEnviron, readProcStat } from '../src/process/proc.js'
import { LOCK_FILE, formatHolder, parseHolder } from '../src/store/data-dir-lock.js'
import { createDaemon } from '../src/daemon.js'

const bin = path.join(packageRoot, 'dist/src/bin.cjs')
const silent = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {}, child: () => silent }

/** Every process of this test run, by the variable only it sets. */
const processesOf = (run: string): number[] => findByEnviron((env) => env.includes(`TEST_RUN=${run}`)).map((st) => st.pid)

/** Runs `serve` on a config; its stdout as JSON lines, stderr as text, and its exit. */
function serve (t: Tap, file: string) {
  const daemon = spawn(process.execPath, [bin, 'serve', '--config', file], { env: { ...process.env, PLUGVISOR_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL') })
  let stderr = ''
  daemon.stderr!.on('data', (c: Buffer) => { stderr += c })
  const exited = once(daemon, 'exit') as Promise<[number | null, string | null]>
  return { daemon, log: followLog(daemon.stdout!), stderr: () => stderr, exited }
}

/** Resolves with the exit, or rejects after ms: a bound against a daemon that never exits, not a timing assertion. */
function exitWithin (exited: Promise<[number | null, string | null]>, ms: number): Promise<[number | null, string | null]> {
  return Promise.race([exited, new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`still running after ${ms} ms`)), ms).unref())])
}

t.test('a second daemon on the same data folder exits 1 naming the holder, and changes nothing; it failed before', async (t) => {
  const run = randomUUID()
  const loaded = writeConfig([fixturePlugin('solo', 'sleep', { env: { TEST_RUN: run } })], { log: { level: 'info' } })
  t.teardown(() => { for (const pid of processesOf(run)) { try { process.kill(pid, 'SIGKILL') } catch {} } })
  const first = serve(t, loaded.file)
  await first.log.until(() => first.log.entries.some((e) => e.msg === 'initial start pass done'))
  const before = processesOf(run)
  t.equal(before.length, 1, 'the first daemon runs the plugin')
  const lockFile = path.join(loaded.dataDir, LOCK_FILE)
  const lock = readlinkSync(lockFile)
  t.match(parseHolder(lock), { pid: first.daemon.pid, startTicks: readProcStat(first.daemon.pid!)!.startTicks, bootId: bootId() }, 'the lock file names the holder: pid, start time, boot')

  const second = serve(t, loaded.file)
  const [code] = await exitWithin(second.exited, 60000)
  t.equal(code, 1, 'the second daemon exits 1')
  t.match(second.stderr(), new RegExp(`in use by another plugvisor \\(pid ${first.daemon.pid}, lock file ${lockFile.replace(/[.]/g, '\\.')}\\)`), 'naming the pid that holds the folder')
  t.same(second.log.entries.filter((e) => /terminated|-> /.test(e.msg)).map((e) => e.msg), [], 'it reaped nothing and started nothing')
  t.same(processesOf(run), before, 'the plugin of the first daemon runs on, the same process')
  t.equal(first.daemon.exitCode, null, 'the first daemon runs on')
  t.equal(readlinkSync(lockFile), lock, 'its lock is untouched')

  first.daemon.kill('SIGTERM')
  t.equal((await first.exited)[0], 0)
  t.throws(() => lstatSync(lockFile), { code: 'ENOENT' }, 'a daemon that shuts down releases the folder')
})

t.test('a daemon that cannot listen (port in use) exits non-zero with no plugin left running; it failed before', async (t) => {
  const run = randomUUID()
  const holder = createServer()
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => holder.close(resolve)))
  const { port } = holder.address() as { port: number }
  t.teardown(() => { for (const pid of processesOf(run)) { try { process.kill(pid, 'SIGKILL') } catch {} } })
  const loaded = writeConfig([fixturePlugin('early', 'sleep', { env: { TEST_RUN: run } })], { log: { level: 'info' }, server: { host: '127.0.0.1', port } })
  const daemon = spawn(process.execPath, [bin, 'serve', '--config', loaded.file], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (daemon.exitCode === null) daemon.kill('SIGKILL') })
  let stderr = ''
  daemon.stderr!.on('data', (c: Buffer) => { stderr += c })
  daemon.stdout!.resume()
  const [code] = await exitWithin(once(daemon, 'exit') as Promise<[number | null, string | null]>, 60000)
  t.not(code, 0, 'it exits non-zero')
  t.match(stderr, /EADDRINUSE/, 'saying why')
  t.same(processesOf(run), [], 'no plugin process is left')
  t.throws(() => lstatSync(path.join(loaded.dataDir, LOCK_FILE)), { code: 'ENOENT' }, 'and the folder is released')
})

t.test('in one process too, a second daemon on a held folder is refused before it opens anything', async (t) => {
  const loaded = writeConfig([fixturePlugin('p', 'sleep', { autostart: false })])
  const app = await build(t, loaded, { boot: false })
  t.throws(() => createDaemon({ loaded, logger: silent }), { code: 'PLUGVISOR_DATA_DIR_LOCKED', message: new RegExp(`pid ${process.pid},`) })
  t.ok(app.daemon.store.status.ok, 'the holder is unaffected')
})

t.test('a stale lock (its pid gone, or reused by another process) is taken over with a log line', async (t) => {
  const gone = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await once(gone, 'exit')
  const own = readProcStat(process.pid)!.startTicks
  for (const [holder, why] of [
    [{ pid: gone.pid!, startTicks: 1, bootId: bootId() }, `pid ${gone.pid} is gone`],
    [{ pid: process.pid, startTicks: own - 1, bootId: bootId() }, `pid ${process.pid} now belongs to another process`]
  ] as const) {
    const loaded = writeConfig([], { log: { level: 'warn' } })
    const lockFile = path.join(loaded.dataDir, LOCK_FILE)
    mkdirSync(loaded.dataDir, { recursive: true })
    symlinkSync(formatHolder(holder), lockFile)
    const lines: string[] = []
    const app = await build(t, loaded, { boot: false, logger: undefined, logStream: { write: (l: string) => { lines.push(l) } } })
    const took = lines.map((l) => JSON.parse(l)).find((e) => /took over the stale lock/.test(e.msg))
    t.match(took, { level: 40, holderPid: holder.pid, msg: new RegExp(why) }, `logged: ${why}`)
    t.match(parseHolder(readlinkSync(lockFile)), { pid: process.pid, startTicks: own }, 'the lock is this daemon\'s now')
    await app.close()
    t.throws(() => lstatSync(lockFile), { code: 'ENOENT' }, 'and released at close')
  }
})
