// The daemon as a process: `plugvisor serve` start-up errors and graceful shutdown.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { alive, fixturePlugin, followLog, tempDir, writeConfig } from './helper.js'
import { packageRoot } from '../src/paths.js'
import { findByEnviron } from '../src/process/proc.js'
import { randomUUID } from 'node:crypto'

const bin = path.join(packageRoot, 'dist/src/bin.cjs')

t.test('SIGTERM stops every plugin (grandchildren too) and the daemon exits 0', async (t) => {
  const loaded = writeConfig([
    fixturePlugin('front', 'grandchild', { dependsOn: ['back'] }),
    fixturePlugin('back', 'sleep')
  ], { log: { level: 'info' } })
  const daemon = spawn(process.execPath, [bin, 'serve', '--config', loaded.file], {
    env: { ...process.env, PLUGVISOR_PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const pids: number[] = []
  t.teardown(() => {
    if (daemon.exitCode === null) daemon.kill('SIGKILL')
    for (const pid of pids) { try { process.kill(pid, 'SIGKILL') } catch {} }
  })
  // Every log line, parsed; `until` resolves once a line satisfies a predicate.
  const { entries, until } = followLog(daemon.stdout!)
  await until(() => entries.some((e) => e.msg === 'initial start pass done') && entries.some((e) => /grandchild \d+/.test(e.msg)))
  for (const e of entries) {
    const m = /grandchild (\d+)/.exec(e.msg)
    if (m) pids.push(Number(m[1]))
  }
  const exited = once(daemon, 'exit')
  daemon.kill('SIGTERM')
  const [code] = await exited
  const stopOrder = entries.filter((e) => e.to === 'stopped').map((e) => e.plugin)
  t.equal(code, 0, 'clean exit')
  t.same(stopOrder, ['front', 'back'], 'reverse dependency order')
  t.notOk(alive(pids[0]), 'no grandchild left behind')
})

t.test('an invalid main config stops serve with exit 1 and every error', async (t) => {
  const dir = tempDir()
  const file = path.join(dir, 'plugvisor.yaml')
  writeFileSync(file, 'server: { port: -1 }\nextra: true\n')
  const r = spawnSync(process.execPath, [bin, 'serve', '--config', file], { encoding: 'utf8', timeout: 20000 })
  t.equal(r.status, 1)
  t.match(r.stderr, /invalid config/)
  t.match(r.stderr, /\/server\/port: must be >= 0/)
  t.match(r.stderr, /unknown property 'extra'/)
})

t.test('serve refuses an open API on a non-loopback address', async (t) => {
  const loaded = writeConfig([], { server: { host: '0.0.0.0', port: 0 } })
  const r = spawnSync(process.execPath, [bin, 'serve', '--config', loaded.file], { encoding: 'utf8', timeout: 20000 })
  t.equal(r.status, 1)
  t.match(r.stderr, /refusing to listen on 0\.0\.0\.0/)
})

t.test('a second SIGTERM during shutdown SIGKILLs every plugin before the daemon exits; SIGUSR2 does not shut down (both failed before)', async (t) => {
  const run = randomUUID()
  const loaded = writeConfig([fixturePlugin('slow', 'ignore-sigterm', { env: { TEST_RUN: run }, stop: { timeoutMs: 60000 } })], { log: { level: 'info' } })
  const daemon = spawn(process.execPath, [bin, 'serve', '--config', loaded.file], {
    env: { ...process.env, PLUGVISOR_PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let pid = 0
  t.teardown(() => {
    if (daemon.exitCode === null) daemon.kill('SIGKILL')
    if (pid) { try { process.kill(pid, 'SIGKILL') } catch {} }
  })
  const { entries, until } = followLog(daemon.stdout!)
  await until(() => entries.some((e) => e.msg === 'initial start pass done') && entries.some((e) => e.msg === 'ready'))
  pid = findByEnviron((env) => env.includes(`TEST_RUN=${run}`))[0]?.pid ?? 0
  daemon.kill('SIGUSR2')
  // SIGHUP is handled in order after SIGUSR2: its reload line shows the daemon still runs.
  daemon.kill('SIGHUP')
  await until(() => entries.some((e) => /SIGHUP/.test(e.msg)))
  t.equal(daemon.exitCode, null, 'SIGUSR2 did not shut the daemon down')
  t.notOk(entries.some((e) => /daemon shutdown/.test(e.msg)), 'no shutdown began')
  const exited = once(daemon, 'exit')
  daemon.kill('SIGTERM')
  await until(() => entries.some((e) => /daemon shutdown/.test(e.msg)) && entries.some((e) => e.plugin === 'slow' && e.to === 'stopping'))
  daemon.kill('SIGTERM')
  const [code] = await exited
  t.not(code, 0, 'the second signal exits non-zero')
  t.ok(entries.some((e) => /second SIGTERM/.test(e.msg)), 'it says why')
  t.ok(pid > 0, 'the plugin pid was found in /proc')
  t.notOk(alive(pid), 'the plugin (which ignores SIGTERM, stop timeout 60 s) is gone when the daemon has exited')
})

t.test('log lines about a plugin process name it pluginPid: each line has one pid key, the daemon\'s (pino\'s own); it failed before', async (t) => {
  const run = randomUUID()
  const loaded = writeConfig([fixturePlugin('counted', 'sleep', { env: { TEST_RUN: run }, stop: { timeoutMs: 500 } })], { log: { level: 'info' } })
  t.teardown(() => { for (const st of findByEnviron((env) => env.includes(`TEST_RUN=${run}`))) { try { process.kill(st.pid, 'SIGKILL') } catch {} } })
  /** Raw lines of a daemon's stdout: the JSON as written, so a duplicated key is seen (JSON.parse keeps the last). */
  const start = () => {
    const daemon = spawn(process.execPath, [bin, 'serve', '--config', loaded.file], { env: { ...process.env, PLUGVISOR_PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] })
    t.teardown(() => { if (daemon.exitCode === null) daemon.kill('SIGKILL') })
    const raw: string[] = []
    daemon.stdout!.on('data', (c: Buffer) => { raw.push(...c.toString().split('\n').filter((l) => l !== '')) })
    return { daemon, raw, log: followLog(daemon.stdout!) }
  }
  const pidKeys = (line: string): number => line.match(/"pid":/g)?.length ?? 0
  const first = start()
  await first.log.until(() => first.log.entries.some((e) => e.plugin === 'counted' && e.to === 'running'))
  const running = first.raw.find((l) => l.includes('"to":"running"'))!
  const pluginPid = findByEnviron((env) => env.includes(`TEST_RUN=${run}`))[0].pid
  t.equal(pidKeys(running), 1, 'the running line has one pid key')
  t.match(JSON.parse(running), { pid: first.daemon.pid, pluginPid }, 'the daemon\'s pid, and the plugin\'s as pluginPid')
  first.daemon.kill('SIGKILL')
  await once(first.daemon, 'exit')

  const second = start()
  await second.log.until(() => second.log.entries.some((e) => /left by a previous daemon/.test(e.msg)))
  const reaped = second.raw.filter((l) => l.includes('left by a previous daemon'))
  t.ok(reaped.length > 0)
  t.same(reaped.map(pidKeys), reaped.map(() => 1), 'so does every line about what a killed daemon left')
  t.match(JSON.parse(reaped[0]), { pid: second.daemon.pid, pluginPid })
  second.daemon.kill('SIGTERM')
  await once(second.daemon, 'exit')
})
