// Lifecycle hooks on real processes and loopback HTTP: postStart and preStop (http and exec:
// success, failure, timeout), reload without a restart (signal and http), a failed reload hook
// (502, old config back on file and in PLUGVISOR_CONFIG_FILE), the hook events and audit rows.
import t from 'tap'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { alive, build, collectEvents, outputLine, served, tempDir, waitForEvent, writeConfig, type Tap } from './helper.js'
import type { FastifyInstance } from 'fastify'
import type { HookEvent } from '../src/supervisor/events.js'
import { pluginConfigDir } from '../src/daemon.js'
import { HookRunner } from '../src/hooks/hook-runner.js'

t.setTimeout(120_000)

/** A daemon with no plugins yet; plugins are registered over the API, so their manifests are files. */
async function daemon (t: Tap): Promise<{ app: FastifyInstance, hooks: HookEvent[] }> {
  const app = await build(t, writeConfig([]))
  return { app, hooks: collectEvents(t, app.daemon.supervisor, 'hook') }
}

async function register (app: FastifyInstance, manifest: Record<string, unknown>): Promise<{ pid: number, name: string }> {
  const res = await app.inject({ method: 'POST', url: '/plugins', payload: manifest })
  if (res.statusCode !== 201) throw new Error(`register: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** Registers and waits until its health check passed: its signal handlers are in place by then. */
async function registerUp (app: FastifyInstance, manifest: Record<string, unknown>): Promise<{ pid: number, name: string }> {
  const p = await register(app, manifest)
  await app.daemon.supervisor.waitFor(p.name, (s) => s.status === 'healthy', 10_000)
  return p
}

const hookRun = (app: FastifyInstance, plugin: string, hook: string): Promise<HookEvent> =>
  waitForEvent(app.daemon.supervisor, 'hook', (e) => e.plugin === plugin && e.hook === hook)

/** A node -e program as an exec hook. */
const nodeHook = (code: string, extra: Record<string, unknown> = {}) => ({ exec: { command: process.execPath, args: ['-e', code] }, ...extra })

t.test('manifest: each hook is exactly one kind, an http hook needs a port', async (t) => {
  const app = await build(t, writeConfig([]))
  const both = await app.inject({ method: 'POST', url: '/plugins', payload: served('both', {}, {}, { hooks: { postStart: { http: { path: '/x' }, exec: { command: 'true' } }, reload: {} } }) })
  t.equal(both.statusCode, 400)
  t.match(both.json().problems, [
    { path: '/hooks/postStart', reason: 'must have exactly one of http, exec (has http, exec)' },
    { path: '/hooks/reload', reason: 'must have exactly one of signal, http (has none)' }
  ])
  const portless = await app.inject({ method: 'POST', url: '/plugins', payload: { name: 'portless', command: 'sleep', args: ['60'], hooks: { preStop: { http: { path: '/drain' } } } } })
  t.match(portless.json().problems, [{ path: '/hooks/preStop/http', reason: 'needs a port: an http hook calls the plugin at its port' }])
  const signal = await app.inject({ method: 'POST', url: '/plugins', payload: { name: 'sig', command: 'sleep', args: ['60'], hooks: { reload: { signal: 'SIGKILL' } } } })
  t.match(signal.json().problems, [{ path: '/hooks/reload/signal' }])
})

t.test('every plugin gets PLUGVISOR_CONFIG_FILE: its config as JSON, written before the spawn, owner-only', async (t) => {
  const { app } = await daemon(t)
  const p = await registerUp(app, served('plain', {}, {}, { config: { level: 3 } }))
  const file = path.join(pluginConfigDir(app.daemon.loaded.dataDir), 'plain.json')
  const environ = readFileSync(`/proc/${p.pid}/environ`, 'utf8').split('\0')
  t.ok(environ.includes(`PLUGVISOR_CONFIG_FILE=${file}`), 'named in its environment')
  t.same(JSON.parse(readFileSync(file, 'utf8')), { level: 3 })
  t.equal(statSync(file).mode & 0o777, 0o600, 'it may hold secrets')
  t.same((await app.inject({ url: '/plugins/plain/invoke/config' })).json(), { level: 3 }, 'the plugin read it at its start')
})

t.test('postStart http runs once the startup probe passed; success keeps the plugin running', async (t) => {
  const { app } = await daemon(t)
  const probed = waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'ps' && e.result === 'success')
  const ran = hookRun(app, 'ps', 'postStart')
  const p = await register(app, served('ps', {}, {}, { hooks: { postStart: { http: { path: '/hook/post-start', method: 'POST' } } } }))
  const probe = await probed
  const e = await ran
  t.match(e, { hook: 'postStart', kind: 'http', target: 'POST /hook/post-start', outcome: 'success', reason: 'POST /hook/post-start: 200', actor: 'anonymous' })
  t.ok(e.at >= probe.at, 'after the startup probe passed')
  t.equal(app.daemon.supervisor.summary('ps').pid, p.pid, 'same process')
  t.equal(app.daemon.supervisor.summary('ps').state, 'running')
  const { hooks } = (await app.inject({ url: '/plugins/ps/events' })).json()
  t.match(hooks, [{ hook: 'postStart', outcome: 'success', kind: 'http' }], 'in the events table')
})

t.test('a failing postStart (non-2xx) is a failed start: stopped, restarted through the backoff, reason hook', async (t) => {
  const { app } = await daemon(t)
  const sup = app.daemon.supervisor
  const backoff = waitForEvent(sup, 'transition', (e) => e.plugin === 'bad-start' && e.to === 'backoff')
  const restarted = waitForEvent(sup, 'restart', (e) => e.plugin === 'bad-start')
  const p = await register(app, served('bad-start', { HOOK_STATUS: '503' }, {}, { hooks: { postStart: { http: { path: '/hook/ready' } } }, restart: { initialDelayMs: 100 } }))
  const down = await waitForEvent(sup, 'transition', (e) => e.plugin === 'bad-start' && e.from === 'running' && e.to === 'stopping')
  t.equal(down.reason, 'postStart hook failed: GET /hook/ready: HTTP 503: hook ready')
  t.match(await backoff, { reason: 'hook' })
  t.equal((await restarted).reason, 'hook')
  t.notOk(alive(p.pid), 'the process that failed its postStart is gone')
  await app.inject({ method: 'POST', url: '/plugins/bad-start/stop' })
})

t.test('a postStart that does not answer within its timeout is a failed start (outcome timeout); never restarts it', async (t) => {
  const { app } = await daemon(t)
  const ran = hookRun(app, 'slow-start', 'postStart')
  const stopped = waitForEvent(app.daemon.supervisor, 'transition', (e) => e.plugin === 'slow-start' && e.to === 'stopped')
  await register(app, served('slow-start', { HOOK_DELAY_MS: '10000' }, {}, { hooks: { postStart: { http: { path: '/hook/slow' }, timeoutMs: 300 } }, restart: { policy: 'never' } }))
  t.match(await ran, { outcome: 'timeout', reason: 'GET /hook/slow: no answer within 300 ms' })
  t.equal((await stopped).reason, 'postStart hook failed (restart policy never)')
  t.match(app.daemon.supervisor.summary('slow-start'), { state: 'stopped', desired: 'running' })
})

t.test('postStart exec: runs in the plugin environment with the instance marker; failure and timeout fail the start, the timeout kills its group', async (t) => {
  const { app } = await daemon(t)
  const dir = tempDir()
  const envFile = path.join(dir, 'env.json')
  const pidFile = path.join(dir, 'pid')
  // No health check: postStart runs right after the spawn.
  const ok = hookRun(app, 'exec-ok', 'postStart')
  const plugin = await register(app, { ...served('exec-ok', {}), healthCheck: undefined, hooks: { postStart: nodeHook(`require('fs').writeFileSync(${JSON.stringify(envFile)}, JSON.stringify(process.env))`) } })
  t.match(await ok, { kind: 'exec', outcome: 'success', reason: `${process.execPath} exited with code 0` })
  const env = JSON.parse(readFileSync(envFile, 'utf8'))
  const environ = readFileSync(`/proc/${plugin.pid}/environ`, 'utf8').split('\0')
  t.ok(environ.includes(`PLUGVISOR_INSTANCE=${env.PLUGVISOR_INSTANCE}`), 'the daemon\'s instance marker, as the plugin has it')
  t.equal(env.PLUGVISOR_PLUGIN, 'exec-ok')
  t.match(env.PLUGVISOR_CONFIG_FILE, /plugin-config\/exec-ok\.json$/)

  const failed = hookRun(app, 'exec-bad', 'postStart')
  await register(app, { ...served('exec-bad', {}), healthCheck: undefined, restart: { policy: 'never' }, hooks: { postStart: nodeHook("console.error('not ready: no database'); process.exit(4)") } })
  t.match(await failed, { outcome: 'failure', reason: `${process.execPath} exited with code 4; it printed: not ready: no database` })

  const timedOut = hookRun(app, 'exec-slow', 'postStart')
  // The hook starts a child in its group and waits forever: the timeout must take both.
  const code = `const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(()=>{},1e9)'], { stdio: 'ignore' }); require('fs').writeFileSync(${JSON.stringify(pidFile)}, process.pid + ' ' + c.pid); setInterval(()=>{},1e9)`
  await register(app, { ...served('exec-slow', {}), healthCheck: undefined, restart: { policy: 'never' }, hooks: { postStart: nodeHook(code, { timeoutMs: 2000 }) } })
  const e = await timedOut
  t.match(e, { outcome: 'timeout', reason: /did not finish within 2000 ms \(its process group was killed\)/ })
  const [hookPid, childPid] = readFileSync(pidFile, 'utf8').split(' ').map(Number)
  await waitForEvent(app.daemon.supervisor, 'transition', (ev) => ev.plugin === 'exec-slow' && ev.to === 'stopped').catch(() => {})
  t.notOk(alive(hookPid), 'the hook program was killed')
  t.notOk(alive(childPid), 'and what it started')
})

t.test('preStop http runs before the stop signal on an operator stop and a restart; audited with the operator', async (t) => {
  const { app, hooks } = await daemon(t)
  const p = await registerUp(app, served('drain', {}, {}, { hooks: { preStop: { http: { path: '/hook/pre-stop', method: 'POST' } } } }))
  const said = outputLine(app.daemon.supervisor, 'drain', /^hook pre-stop$/)
  const stop = await app.inject({ method: 'POST', url: '/plugins/drain/stop' })
  t.equal(stop.statusCode, 200)
  await said
  t.match(hooks, [{ plugin: 'drain', hook: 'preStop', outcome: 'success', actor: 'anonymous' }])
  t.notOk(alive(p.pid))
  const lines = app.daemon.supervisor.logs('drain', 10).map((l) => l.line)
  t.ok(lines.indexOf('hook pre-stop') >= 0, 'the plugin got it while it still ran')
  const audit = app.daemon.audit.list({ plugin: 'drain', limit: 100 })
  t.ok(audit.some((a) => a.method === 'HOOK' && a.route === '(hook preStop)' && a.status === 200 && a.actor === 'anonymous'), JSON.stringify(audit))
  // A restart drains the old process too.
  await app.inject({ method: 'POST', url: '/plugins/drain/start' })
  await app.inject({ method: 'POST', url: '/plugins/drain/restart' })
  t.equal(hooks.filter((e) => e.hook === 'preStop').length, 2)
})

t.test('a preStop that hangs is cut at its timeout and the stop goes on; one that fails does not hold the stop either', async (t) => {
  const { app } = await daemon(t)
  const slow = await registerUp(app, served('hang', { HOOK_DELAY_MS: '30000' }, {}, { hooks: { preStop: { http: { path: '/hook/drain' }, timeoutMs: 300 } } }))
  const ran = hookRun(app, 'hang', 'preStop')
  const res = await app.inject({ method: 'POST', url: '/plugins/hang/stop' })
  t.equal(res.json().state, 'stopped')
  t.match(await ran, { outcome: 'timeout', reason: 'GET /hook/drain: no answer within 300 ms' })
  t.notOk(alive(slow.pid))

  const failing = await register(app, { ...served('fails', {}), hooks: { preStop: nodeHook('process.exit(2)') } })
  const ranExec = hookRun(app, 'fails', 'preStop')
  t.equal((await app.inject({ method: 'POST', url: '/plugins/fails/stop' })).json().state, 'stopped')
  t.match(await ranExec, { kind: 'exec', outcome: 'failure', reason: /exited with code 2/ })
  t.notOk(alive(failing.pid))
})

t.test('preStop exec: runs while the plugin still runs; at its timeout its group is killed and the stop goes on', async (t) => {
  const { app } = await daemon(t)
  const dir = tempDir()
  const seen = path.join(dir, 'seen')
  // The hook asks the plugin (its pid in PID_FILE is not needed: the port is in its environment) and records what it saw.
  const probe = `fetch('http://127.0.0.1:' + process.env.PORT + '/health').then((r) => require('fs').writeFileSync(${JSON.stringify(seen)}, String(r.status)))`
  await registerUp(app, { ...served('exec-drain', {}), hooks: { preStop: nodeHook(probe) } })
  const ran = hookRun(app, 'exec-drain', 'preStop')
  t.equal((await app.inject({ method: 'POST', url: '/plugins/exec-drain/stop' })).json().state, 'stopped')
  t.match(await ran, { kind: 'exec', outcome: 'success' })
  t.equal(readFileSync(seen, 'utf8'), '200', 'the plugin still answered when preStop ran')

  const pidFile = path.join(dir, 'pids')
  const hang = `const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(()=>{},1e9)'], { stdio: 'ignore' }); require('fs').writeFileSync(${JSON.stringify(pidFile)}, process.pid + ' ' + c.pid); setInterval(()=>{},1e9)`
  // Long enough for node to start and write its pids on a loaded machine.
  const p = await registerUp(app, { ...served('exec-hang', {}), stop: { timeoutMs: 5000 }, hooks: { preStop: nodeHook(hang, { timeoutMs: 2000 }) } })
  const cut = hookRun(app, 'exec-hang', 'preStop')
  t.equal((await app.inject({ method: 'POST', url: '/plugins/exec-hang/stop' })).json().state, 'stopped')
  t.match(await cut, { outcome: 'timeout', reason: /did not finish within 2000 ms \(its process group was killed\)/ })
  const [hookPid, childPid] = readFileSync(pidFile, 'utf8').split(' ').map(Number)
  t.notOk(alive(hookPid), 'the hook program is gone')
  t.notOk(alive(childPid), 'and what it started')
  t.notOk(alive(p.pid), 'the plugin stopped')
})

t.test('preStop runs when a config change restarts a plugin without a reload hook', async (t) => {
  const { app, hooks } = await daemon(t)
  const p = await registerUp(app, served('restarts', {}, {}, { config: { v: 1 }, hooks: { preStop: { http: { path: '/hook/pre-stop' } } } }))
  const res = await app.inject({ method: 'PUT', url: '/plugins/restarts/config', payload: { v: 2 } })
  t.equal(res.statusCode, 200, res.body)
  t.not(res.json().pid, p.pid, 'restarted')
  t.match(hooks, [{ plugin: 'restarts', hook: 'preStop', outcome: 'success', actor: 'anonymous' }])
})

t.test('preStop runs at daemon shutdown too, with no operator', async (t) => {
  const app = await build(t, writeConfig([]))
  const hooks = collectEvents(t, app.daemon.supervisor, 'hook')
  await registerUp(app, served('bye', {}, {}, { hooks: { preStop: { http: { path: '/hook/bye' } } } }))
  await app.close()
  t.match(hooks, [{ plugin: 'bye', hook: 'preStop', outcome: 'success', actor: null }])
})

t.test('a config change reaches a plugin with a reload signal hook without a restart: same pid, the plugin reads the new file', async (t) => {
  const { app } = await daemon(t)
  const p = await registerUp(app, served('sig', {}, {}, { config: { greeting: 'hi' }, hooks: { reload: { signal: 'SIGHUP' } } }))
  const reread = outputLine(app.daemon.supervisor, 'sig', /^config (.*)$/)
  const res = await app.inject({ method: 'PUT', url: '/plugins/sig/config', payload: { greeting: 'hello' } })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { pid: p.pid, state: 'running', config: { greeting: 'hello' } })
  t.same(JSON.parse((await reread)[1]), { greeting: 'hello' }, 'it re-read PLUGVISOR_CONFIG_FILE on SIGHUP')
  t.same((await app.inject({ url: '/plugins/sig/invoke/config' })).json(), { greeting: 'hello' })
  t.equal(app.daemon.supervisor.summary('sig').pid, p.pid, 'not restarted')
  t.same(JSON.parse(readFileSync(path.join(app.daemon.loaded.pluginsDir, 'sig.json'), 'utf8')).config, { greeting: 'hello' }, 'the manifest file has it')
  const { hooks } = (await app.inject({ url: '/plugins/sig/events' })).json()
  t.match(hooks[0], { hook: 'reload', kind: 'signal', target: 'SIGHUP', outcome: 'success', reason: `sent SIGHUP to process ${p.pid}`, actor: 'anonymous' })
})

t.test('a reload http hook gets the new config as its JSON body; same pid; the SSE stream carries the hook event', async (t) => {
  const { app } = await daemon(t)
  const sse: string[] = []
  const unsubscribe = app.daemon.events.subscribe({ write: (c) => { sse.push(c); return true }, once: () => {}, end: () => {}, destroy: () => {} })
  t.teardown(unsubscribe)
  const p = await register(app, served('web', {}, {}, { config: { level: 1 }, hooks: { reload: { http: { path: '/config' } } } }))
  const res = await app.inject({ method: 'PUT', url: '/plugins/web/config', payload: { level: 2 } })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().pid, p.pid)
  t.same((await app.inject({ url: '/plugins/web/invoke/config' })).json(), { level: 2 }, 'the plugin took it from the body')
  const event = sse.find((c) => c.startsWith('event: hook\n'))
  t.ok(event, 'an SSE hook event')
  t.match(JSON.parse(event!.split('data: ')[1]), { plugin: 'web', hook: 'reload', kind: 'http', target: 'PUT /config', outcome: 'success', reason: 'PUT /config: 204', actor: 'anonymous', at: /^\d{4}-/ })
})

t.test('a failed reload hook answers 502 PLUGVISOR_HOOK_FAILED and restores the old config, on file and in PLUGVISOR_CONFIG_FILE', async (t) => {
  const { app } = await daemon(t)
  const p = await register(app, served('refuses', { RELOAD_STATUS: '422' }, {}, { config: { level: 1 }, hooks: { reload: { http: { path: '/config' } } } }))
  const manifestFile = path.join(app.daemon.loaded.pluginsDir, 'refuses.json')
  const before = readFileSync(manifestFile, 'utf8')
  const res = await app.inject({ method: 'PUT', url: '/plugins/refuses/config', payload: { level: 2 } })
  t.equal(res.statusCode, 502, res.body)
  t.match(res.json(), { code: 'PLUGVISOR_HOOK_FAILED', message: "the reload hook of plugin 'refuses' failed: PUT /config: HTTP 422: config refused; the old config is back in place" })
  t.equal(readFileSync(manifestFile, 'utf8'), before, 'the manifest file is as it was')
  t.same(JSON.parse(readFileSync(path.join(pluginConfigDir(app.daemon.loaded.dataDir), 'refuses.json'), 'utf8')), { level: 1 }, 'PLUGVISOR_CONFIG_FILE has the old config')
  t.same(app.daemon.supervisor.manifest('refuses').config, { level: 1 })
  t.match(app.daemon.supervisor.summary('refuses'), { pid: p.pid, state: 'running', desired: 'running' })
  const rows = (await app.inject({ url: '/audit?plugin=refuses' })).json().entries as { method: string, route: string, status: number }[]
  t.ok(rows.some((a) => a.method === 'PUT' && a.route === '/plugins/:name/config' && a.status === 502), JSON.stringify(rows))
  t.ok(rows.some((a) => a.method === 'HOOK' && a.route === '(hook reload)' && a.status === 502), 'the hook run is audited')
  const { hooks } = (await app.inject({ url: '/plugins/refuses/events' })).json()
  t.match(hooks[0], { hook: 'reload', outcome: 'failure', reason: 'PUT /config: HTTP 422: config refused' })
})

t.test('POST /config/reload: a change of config alone is reconfigured in place; a failed hook keeps the plugin; without a hook it restarts', async (t) => {
  const { app } = await daemon(t)
  const hooked = await registerUp(app, served('hooked', {}, {}, { config: { v: 1 }, hooks: { reload: { signal: 'SIGHUP' } } }))
  const refusing = await registerUp(app, served('refusing', { RELOAD_STATUS: '500' }, {}, { config: { v: 1 }, hooks: { reload: { http: { path: '/config' } } } }))
  const plain = await registerUp(app, served('plain', {}, {}, { config: { v: 1 } }))
  for (const name of ['hooked', 'refusing', 'plain']) {
    const file = path.join(app.daemon.loaded.pluginsDir, `${name}.json`)
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), config: { v: 2 } }))
  }
  const dry = (await app.inject({ method: 'POST', url: '/config/reload?dryRun=true' })).json()
  t.same({ changed: dry.changed, reconfigured: dry.reconfigured.sort() }, { changed: ['plain'], reconfigured: ['hooked', 'refusing'] })
  const reread = outputLine(app.daemon.supervisor, 'hooked', /^config (.*)$/)
  const r = (await app.inject({ method: 'POST', url: '/config/reload' })).json()
  t.same(r.reconfigured, ['hooked'])
  t.same(r.changed, ['plain'])
  t.same(r.kept, ['refusing'])
  t.match(r.problems, [{ path: '/config', reason: /^the reload hook of plugin 'refusing' failed: PUT \/config: HTTP 500/ }])
  t.same(JSON.parse((await reread)[1]), { v: 2 })
  const sup = app.daemon.supervisor
  t.equal(sup.summary('hooked').pid, hooked.pid, 'reconfigured in place')
  t.equal(sup.summary('refusing').pid, refusing.pid, 'kept as it runs')
  t.same(sup.manifest('refusing').config, { v: 1 })
  t.not(sup.summary('plain').pid, plain.pid, 'no reload hook: restarted as before')
  await sup.waitFor('plain', (s) => s.status === 'healthy', 10_000)
  t.same((await app.inject({ url: '/plugins/plain/invoke/config' })).json(), { v: 2 })
})

t.test('a plugin with a reload hook that is not running gets its new config at the next start', async (t) => {
  const { app } = await daemon(t)
  await register(app, { ...served('idle', {}, {}, { config: { v: 1 }, hooks: { reload: { signal: 'SIGHUP' } } }), autostart: false })
  const res = await app.inject({ method: 'PUT', url: '/plugins/idle/config', payload: { v: 2 } })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { state: 'stopped', pid: null })
  await app.inject({ method: 'POST', url: '/plugins/idle/start?wait=healthy' })
  t.same((await app.inject({ url: '/plugins/idle/invoke/config' })).json(), { v: 2 })
})

t.test('killAll (the daemon must exit at once) SIGKILLs every exec hook still running, with its group', async (t) => {
  const runner = new HookRunner()
  const pidFile = path.join(tempDir(), 'pids')
  const code = `const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(()=>{},1e9)'], { stdio: 'ignore' }); require('fs').writeFileSync(${JSON.stringify(pidFile)}, process.pid + ' ' + c.pid); setInterval(()=>{},1e9)`
  const run = runner.run({ ...nodeHook(code), timeoutMs: 60_000 }, { pid: undefined, port: undefined, cwd: process.cwd(), env: { PATH: process.env.PATH ?? '' } })
  const started = Date.now()
  while (!existsSync(pidFile) || readFileSync(pidFile, 'utf8').split(' ').length < 2) {
    if (Date.now() - started > 20_000) throw new Error('the hook never started')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const [hookPid, childPid] = readFileSync(pidFile, 'utf8').split(' ').map(Number)
  t.teardown(() => { for (const pid of [hookPid, childPid]) try { process.kill(pid, 'SIGKILL') } catch {} })
  runner.killAll()
  t.match(await run, { kind: 'exec', outcome: 'failure', reason: /was killed by SIGKILL/ })
  t.notOk(alive(hookPid))
  // SIGKILL to the group is immediate; the orphaned child is reaped by init a moment later.
  const deadline = Date.now() + 5000
  while (alive(childPid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  t.notOk(alive(childPid), 'its group went with it')
})

t.test('an http hook reads the whole answer; one whose body stalls after the head times out and its connection goes', async (t) => {
  const { createServer } = await import('node:http')
  const runner = new HookRunner()
  let stalled: import('node:http').ServerResponse | undefined
  let stalledClosed: () => void = () => {}
  const closed = new Promise<void>((resolve) => { stalledClosed = resolve })
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => {
      if (req.url === '/stall') {
        stalled = res
        req.socket.once('close', () => stalledClosed())
        res.writeHead(200, { 'content-length': '10' })
        res.write('12345')
        return
      }
      // Chunked, in pieces: the text is read to its end, not taken from the first read.
      res.writeHead(500, { 'content-type': 'text/plain' })
      res.write(`refused ${req.method} `)
      setImmediate(() => res.end(`with ${body}`))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { stalled?.destroy(); server.closeAllConnections(); server.close() })
  const port = (server.address() as import('node:net').AddressInfo).port
  const target = { pid: undefined, port, cwd: process.cwd(), env: {} }
  const failed = await runner.run({ http: { method: 'PUT', path: '/config', headers: {} }, timeoutMs: 5000, body: '{"v":2}' }, target)
  t.match(failed, { kind: 'http', outcome: 'failure', reason: 'PUT /config: HTTP 500: refused PUT with {"v":2}' })
  const timedOut = await runner.run({ http: { method: 'POST', path: '/stall', headers: {} }, timeoutMs: 300 }, target)
  t.match(timedOut, { kind: 'http', outcome: 'timeout', reason: 'POST /stall: no answer within 300 ms' })
  await closed
  t.pass('the stalled connection was closed')
})
