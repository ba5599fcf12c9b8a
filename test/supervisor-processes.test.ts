// The driver with real child processes from the fixture program.
import t, { type Test } from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { childProcessRunner } from '../src/process/runner.js'
import { alive, build, collectEvents, fixturePlugin, outputLine, tempDir, writeConfig } from './helper.js'

t.test('a SIGKILLed plugin is restarted', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('victim', 'sleep')]), { boot: false })
  const sup = app.daemon.supervisor
  await app.daemon.boot()
  const pid = sup.summary('victim').pid!
  t.ok(alive(pid))
  process.kill(pid, 'SIGKILL')
  const after = await sup.waitFor('victim', (s) => s.state === 'running' && s.pid !== pid, 10000)
  t.not(after.pid, pid, 'a new process runs')
  t.equal(after.restartCount, 1)
  t.match(after.lastExit, { code: null, signal: 'SIGKILL' })
  const events = sup.events('victim')
  t.match(events.find((e) => e.to === 'backoff'), { from: 'running', reason: 'crash', signal: 'SIGKILL' }, 'the crash is an event with its signal')
})

t.test('a crash loop walks the configured delays and ends failed; start from failed works', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('loop', 'exit', {
    args: ['3'],
    restart: { initialDelayMs: 20, multiplier: 2, maxDelayMs: 1000, maxRestarts: 3, windowMs: 60000 }
  })]), { boot: false })
  const sup = app.daemon.supervisor
  const delays: number[] = []
  sup.on('transition', (e) => {
    const st = sup.snapshot('loop').state
    if (e.to === 'backoff' && st.name === 'backoff') delays.push(st.until - st.since)
  })
  const failed = sup.waitFor('loop', (s) => s.state === 'failed', 20000)
  await app.daemon.boot()
  const s = await failed
  t.same(delays, [20, 40, 80], 'delays double from initialDelayMs')
  t.equal(s.restartCount, 3, 'three automatic restarts, then failed')
  t.equal(s.status, 'failed')
  t.match(s.lastExit, { code: 3, signal: null })

  const res = await app.inject({ method: 'POST', url: '/plugins/loop/start' })
  t.equal(res.statusCode, 200)
  const events = sup.events('loop', { limit: 5 })
  t.ok(events.some((e) => e.from === 'failed' && e.to === 'starting'), 'failed -> starting on an operator start')
  t.ok(res.json().restartCount <= 1, 'counters were reset by the operator start')
})

/** A booted daemon with one plugin whose process started a grandchild and printed `<word> <pid>`; the grandchild is killed at teardown. */
async function withGrandchild (t: Test, name: string, mode: 'grandchild' | 'setsid-grandchild', extra: Record<string, unknown> = {}) {
  const app = await build(t, writeConfig([fixturePlugin(name, mode, extra)]), { boot: false })
  const sup = app.daemon.supervisor
  const line = outputLine(sup, name, /^(?:grandchild|escaped) (\d+)$/)
  await app.daemon.boot()
  const grandchild = Number((await line)[1])
  t.teardown(() => { try { process.kill(grandchild, 'SIGKILL') } catch {} })
  t.ok(alive(grandchild), 'the grandchild runs')
  return { app, sup, grandchild }
}

t.test('stop kills grandchildren in the process group', async (t) => {
  const { app, grandchild } = await withGrandchild(t, 'parent', 'grandchild')
  const res = await app.inject({ method: 'POST', url: '/plugins/parent/stop' })
  t.equal(res.json().state, 'stopped')
  t.notOk(alive(grandchild), 'the grandchild (which ignores SIGTERM) is gone when stop answers')
})

t.test('a plugin that ignores SIGTERM is SIGKILLed after stop.timeoutMs', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('stubborn', 'ignore-sigterm', { stop: { timeoutMs: 300 } })]), { boot: false })
  const sup = app.daemon.supervisor
  const ready = outputLine(sup, 'stubborn', /^ready$/)
  await app.daemon.boot()
  await ready
  const pid = sup.summary('stubborn').pid!
  const res = await app.inject({ method: 'POST', url: '/plugins/stubborn/stop' })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { state: 'stopped', desired: 'stopped', lastExit: { signal: 'SIGKILL' } })
  t.notOk(alive(pid))
  t.ok(sup.logs('stubborn', 10).some((l) => l.line === 'ignoring SIGTERM'), 'it was asked nicely first')
})

t.test('a crashed leader\'s leftover group is killed before the restart', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('leaky', 'grandchild')]), { boot: false })
  const sup = app.daemon.supervisor
  const line = outputLine(sup, 'leaky', /^grandchild (\d+)$/)
  await app.daemon.boot()
  const grandchild = Number((await line)[1])
  t.teardown(() => { try { process.kill(grandchild, 'SIGKILL') } catch {} })
  const pid = sup.summary('leaky').pid!
  process.kill(pid, 'SIGKILL')
  await sup.waitFor('leaky', (s) => s.state === 'backoff' || (s.state === 'running' && s.pid !== pid), 10000)
  t.notOk(alive(grandchild), 'the orphaned grandchild went with its leader')
})

t.test('the environment is explicit: manifest env, PATH/HOME/LANG/TZ, PLUGVISOR_*, PORT', async (t) => {
  process.env.PLUGVISOR_TEST_SECRET = 'must-not-leak'
  t.teardown(() => { delete process.env.PLUGVISOR_TEST_SECRET })
  const app = await build(t, writeConfig([fixturePlugin('env', 'print-env', { port: 'auto', env: { GREETING: 'hi' }, config: { a: 1 } })]), { boot: false })
  const sup = app.daemon.supervisor
  const line = outputLine(sup, 'env', /^\{.*\}$/)
  await app.daemon.boot()
  const env = JSON.parse((await line)[0]) as Record<string, string>
  t.equal(env.GREETING, 'hi')
  t.equal(env.PLUGVISOR_PLUGIN, 'env')
  t.same(JSON.parse(env.PLUGVISOR_CONFIG), { a: 1 })
  t.equal(Number(env.PORT), sup.summary('env').port, 'PORT is the auto-assigned port')
  t.ok(Number(env.PORT) > 0)
  t.equal(env.PATH, process.env.PATH)
  t.notOk('PLUGVISOR_TEST_SECRET' in env, 'the daemon environment is not inherited')
  t.match(env.PLUGVISOR_INSTANCE, /^[0-9a-f]{16}\.[0-9a-f-]{36}$/, 'the instance marker: data folder key and this daemon\'s id')
  t.same(JSON.parse(readFileSync(env.PLUGVISOR_CONFIG_FILE, 'utf8')), { a: 1 }, 'PLUGVISOR_CONFIG_FILE holds the same config')
  const allowed = new Set(['GREETING', 'PLUGVISOR_PLUGIN', 'PLUGVISOR_CONFIG', 'PLUGVISOR_CONFIG_FILE', 'PLUGVISOR_INSTANCE', 'PORT', 'PATH', 'HOME', 'LANG', 'TZ'])
  // tap's process-info hook patches child_process to add its own coverage variables to every child.
  const tapAdded = (k: string): boolean => k.startsWith('_TAPJS_') || (k === 'NODE_OPTIONS' && process.env.TAP === '1')
  t.same(Object.keys(env).filter((k) => !allowed.has(k) && !tapAdded(k)), [], 'nothing else')
})

t.test('two concurrent restarts give one restart', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('once', 'sleep')]), { boot: false })
  const sup = app.daemon.supervisor
  await app.daemon.boot()
  const seen = collectEvents(t, sup, 'transition')
  const [a, b] = await Promise.all([
    app.inject({ method: 'POST', url: '/plugins/once/restart' }),
    app.inject({ method: 'POST', url: '/plugins/once/restart' })
  ])
  t.equal(a.statusCode, 200)
  t.equal(a.json().pid, b.json().pid, 'both answers describe the same new process')
  t.equal(seen.filter((e) => e.to === 'stopping').length, 1, 'one stop')
  t.equal(seen.filter((e) => e.to === 'running').length, 1, 'one start')
})

t.test('dependsOn: started after the dependency is up, stopped before it', async (t) => {
  const app = await build(t, writeConfig([
    fixturePlugin('app', 'sleep', { dependsOn: ['db'] }),
    fixturePlugin('db', 'sleep')
  ]), { boot: false })
  const sup = app.daemon.supervisor
  const seen = collectEvents(t, sup, 'transition')
  await app.daemon.boot()
  const order = seen.map((e) => `${e.plugin}:${e.to}`)
  t.ok(order.indexOf('db:running') < order.indexOf('app:starting'), `db runs before app starts (${order.join(' ')})`)
  seen.length = 0
  const res = await app.inject({ method: 'POST', url: '/plugins/stop?all=true' })
  t.equal(res.statusCode, 200)
  const stops = seen.map((e) => `${e.plugin}:${e.to}`)
  t.ok(stops.indexOf('app:stopped') < stops.indexOf('db:stopping'), `app is down before db stops (${stops.join(' ')})`)
  t.same(res.json().plugins.map((p: { state: string }) => p.state), ['stopped', 'stopped'])
})

t.test('starting a plugin starts its stopped dependency first', async (t) => {
  const app = await build(t, writeConfig([
    fixturePlugin('web', 'sleep', { dependsOn: ['cache'], autostart: false }),
    fixturePlugin('cache', 'sleep', { autostart: false })
  ]), { boot: false })
  await app.daemon.boot()
  t.equal(app.daemon.supervisor.summary('cache').state, 'stopped')
  const res = await app.inject({ method: 'POST', url: '/plugins/web/start' })
  t.equal(res.json().state, 'running')
  t.equal(app.daemon.supervisor.summary('cache').state, 'running')
  const started = app.daemon.supervisor.events('cache').find((e) => e.to === 'starting')
  t.equal(started?.reason, 'dependency of web', 'the dependency\'s start says why it started')
})

t.test('logs: the ring buffer keeps the last lines of both streams', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('talker', 'chatty', { args: ['5'] })]), { boot: false })
  const sup = app.daemon.supervisor
  const done = Promise.all([outputLine(sup, 'talker', /^err$/), outputLine(sup, 'talker', /^line 4$/)])
  await app.daemon.boot()
  await done
  const res = await app.inject({ method: 'GET', url: '/plugins/talker/logs?tail=3' })
  t.equal(res.statusCode, 200)
  const lines = res.json().lines as { stream: string, line: string }[]
  t.equal(lines.length, 3)
  t.ok(lines.some((l) => l.stream === 'stderr' && l.line === 'err'), 'stderr is kept')
  t.ok(lines.some((l) => l.stream === 'stdout' && l.line === 'line 4'), 'the last stdout line is kept')
  const none = await app.inject({ method: 'GET', url: '/plugins/talker/logs?tail=0' })
  t.equal(none.statusCode, 200, '?tail=0 is no line, as tail -n 0 prints none')
  t.same(none.json().lines, [])
  for (const tail of ['-1', '1001', 'x']) {
    const bad = await app.inject({ method: 'GET', url: `/plugins/talker/logs?tail=${tail}` })
    t.equal(bad.statusCode, 400, `?tail=${tail}`)
    t.equal(bad.json().code, 'PLUGVISOR_VALIDATION')
  }
})

t.test('a missing program is a spawn error that backs off like a crash', async (t) => {
  const app = await build(t, writeConfig([{ name: 'ghost', command: '/nonexistent/program', restart: { initialDelayMs: 10, jitter: 0, maxRestarts: 1 } }]), { boot: false })
  const sup = app.daemon.supervisor
  const failed = sup.waitFor('ghost', (s) => s.state === 'failed', 10000)
  await app.daemon.boot()
  const s = await failed
  t.equal(s.restartCount, 1)
  t.ok(sup.events('ghost').some((e) => e.reason === 'spawn-error'))
})

t.test('why a spawn failed is in lastExit.error, the transition event and the stored events: a missing program and a file that is not executable (it failed before)', async (t) => {
  const dir = tempDir()
  const notExecutable = path.join(dir, 'plain.sh')
  writeFileSync(notExecutable, '#!/bin/sh\nexit 0\n', { mode: 0o644 })
  const once = { restart: { policy: 'never' } }
  const app = await build(t, writeConfig([
    { name: 'missing', command: '/nonexistent/program', ...once },
    { name: 'plain', command: notExecutable, ...once }
  ]), { boot: false })
  const transitions = collectEvents(t, app.daemon.supervisor, 'transition')
  await app.daemon.boot()
  for (const [name, code, file] of [['missing', 'ENOENT', '/nonexistent/program'], ['plain', 'EACCES', notExecutable]]) {
    const res = await app.inject({ method: 'GET', url: `/plugins/${name}` })
    t.match(res.json(), { state: 'stopped', lastExit: { code: null, signal: null, error: { code, message: new RegExp(`${code}`) } } }, `${name}: GET /plugins/${name} says ${code}`)
    t.match(res.json().lastExit.error.message, file, 'the message names the program')
    t.match(transitions.find((e) => e.plugin === name && e.from === 'starting'), { to: 'stopped', error: { code } }, `${name}: the transition event carries it`)
    const events = await app.inject({ method: 'GET', url: `/plugins/${name}/events` })
    t.match(events.json().events.find((e: { from: string }) => e.from === 'starting'), { to: 'stopped', error: { code } }, `${name}: so does the stored event`)
  }
})

t.test('the daemon-wide restart budget holds back restarts when many plugins crash at once', async (t) => {
  const crashing = ['c1', 'c2', 'c3'].map((n) => fixturePlugin(n, 'exit', { args: ['1'], restart: { initialDelayMs: 0, maxRestarts: 1 } }))
  const app = await build(t, writeConfig(crashing, { restartBudget: { burst: 1, perSecond: 0.5 } }), { boot: false })
  const sup = app.daemon.supervisor
  const held: string[] = []
  sup.on('transition', (e) => {
    if (e.to !== 'backoff') return
    // Delay 0 and jitter 0: the restart is due at the next loop turn, when the budget is asked;
    // one turn later, a nextRestartAt past the crash comes from the budget alone.
    setImmediate(() => setImmediate(() => {
      const s = sup.summary(e.plugin)
      if (s.state === 'backoff' && s.nextRestartAt !== null && Date.parse(s.nextRestartAt) - e.at >= 1000) held.push(e.plugin)
    }))
  })
  const allFailed = Promise.all(['c1', 'c2', 'c3'].map((n) => sup.waitFor(n, (s) => s.state === 'failed', 20000)))
  await app.daemon.boot()
  await allFailed
  t.ok(held.length >= 2, `with a burst of 1, at least two of three restarts waited for the budget (held: ${held.join(', ')})`)
  for (const n of ['c1', 'c2', 'c3']) t.equal(sup.summary(n).restartCount, 1, `${n} was restarted once, then failed`)
})

t.test('?wait=healthy that runs out of time is a 504 with its code', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('sick', 'serve', {
    port: 'auto', env: { HEALTH: 'fail' }, healthCheck: { http: { path: '/health' }, intervalMs: 50, failureThreshold: 100 }, restart: { policy: 'never' }
  })]), { boot: false })
  await app.daemon.boot()
  const res = await app.inject({ method: 'POST', url: '/plugins/sick/restart?wait=healthy&timeoutMs=300' })
  t.equal(res.statusCode, 504)
  t.match(res.json(), { code: 'PLUGVISOR_WAIT_TIMEOUT', message: /did not become healthy within 300 ms/ })
})

t.test('a store that cannot be written does not stop supervision', async (t) => {
  const lines: string[] = []
  const app = await build(t, writeConfig([fixturePlugin('sturdy', 'sleep')], { log: { level: 'error' } }), {
    boot: false,
    logger: undefined, // log through logStream at the configured level
    logStream: { write: (l: string) => { lines.push(l) } }
  })
  const sup = app.daemon.supervisor
  await app.daemon.boot()
  // The real database, closed under the supervisor's feet: every write now throws.
  app.daemon.store.close()
  const pid = sup.summary('sturdy').pid!
  process.kill(pid, 'SIGKILL')
  const after = await sup.waitFor('sturdy', (s) => s.state === 'running' && s.pid !== pid, 10000)
  t.equal(after.restartCount, 1, 'the crash was still handled and the plugin restarted')
  // The writes of a turn are made after it (one transaction): this turn's, then the failure's log line.
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(lines.some((l) => l.includes('could not persist the state event of plugin sturdy')), 'the failed write is logged')
})

t.test('a cleanup of a previous daemon that fails does not hold the plugins back; it failed before', async (t) => {
  // The one part that cannot be made to fail for real: the /proc scan of the cleanup.
  const runner = { ...childProcessRunner, reapMarked: () => Promise.reject(new Error('scan failed')) }
  const app = await build(t, writeConfig([fixturePlugin('after', 'sleep')], { log: { level: 'fatal' } }), { boot: false, runner })
  await app.daemon.boot()
  t.equal(app.daemon.supervisor.summary('after').state, 'running', 'the plugin started')
  t.equal((await app.inject({ method: 'GET', url: '/health/readiness' })).statusCode, 200, 'start-up is over')
})

t.test('a store whose writes fail makes readiness (daemon:store-writable) and /health fail', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('sturdy', 'sleep')], { log: { level: 'fatal' } }), { boot: false })
  const sup = app.daemon.supervisor
  await app.daemon.boot()
  const before = await app.inject({ method: 'GET', url: '/health/readiness?verbose' })
  t.equal(before.statusCode, 200)
  t.match(before.json().checks, [{ name: 'daemon:store-migrated', status: 'pass' }, { name: 'daemon:store-writable', status: 'pass' }])
  t.equal((await app.inject({ method: 'GET', url: '/health' })).json().status, 'pass')

  app.daemon.store.close()
  const pid = sup.summary('sturdy').pid!
  process.kill(pid, 'SIGKILL')
  await sup.waitFor('sturdy', (s) => s.state === 'running' && s.pid !== pid, 10000)

  const ready = await app.inject({ method: 'GET', url: '/health/readiness?verbose' })
  t.equal(ready.statusCode, 503)
  t.match(ready.json().checks, [{ name: 'daemon:store-migrated', status: 'pass' }, { name: 'daemon:store-writable', status: 'fail', detail: /store writes fail: .*not open/ }])
  const health = await app.inject({ method: 'GET', url: '/health' })
  t.equal(health.statusCode, 503)
  t.equal(health.json().status, 'fail', 'the daemon-fail branch: every plugin is fine, the daemon is not')
  t.equal(health.json().plugins.sturdy.status, 'healthy')
})

t.test('a plugin process that dies on its own takes the grandchild that left its group with it (found among the processes created since its spawn)', async (t) => {
  const { sup, grandchild: escaped } = await withGrandchild(t, 'runaway', 'setsid-grandchild', { restart: { policy: 'never' } })
  const pid = sup.summary('runaway').pid!
  process.kill(pid, 'SIGKILL')
  const s = await sup.waitFor('runaway', (s) => s.state === 'stopped', 10000)
  t.match(s.lastExit, { signal: 'SIGKILL' })
  t.notOk(alive(escaped), 'the escaped grandchild is gone once the exit is reported')
})

t.test('stop ends a grandchild that left the process group with setsid (found by the instance marker); it failed before', async (t) => {
  const { app, grandchild: escaped } = await withGrandchild(t, 'runaway', 'setsid-grandchild', { stop: { timeoutMs: 300 } })
  const res = await app.inject({ method: 'POST', url: '/plugins/runaway/stop' })
  t.equal(res.json().state, 'stopped')
  t.notOk(alive(escaped), 'the escaped grandchild (own session, ignores SIGTERM) is gone when stop answers')
})
