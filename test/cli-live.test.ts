// The live CLI commands against a real daemon on loopback: logs -f, and monit on a pseudo-terminal.
import t from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { build, fixturePlugin, needs, tempDir, waitForEvent, writeConfig, type Tap } from './helper.js'
import { packageRoot } from '../src/paths.js'
import { applyEvent, renderMonit, type MonitRow } from '../src/cli/monit.js'
import { openEventStream } from '../src/cli/event-stream-client.js'

const bin = path.join(packageRoot, 'dist/src/bin.cjs')
const hasScript = spawnSync('script', ['--version']).status === 0

/** Collects a child's stdout; `seen(re)` resolves once it matches. */
function output (child: ChildProcess) {
  let text = ''
  const waiters = new Set<() => void>()
  child.stdout!.on('data', (c: Buffer) => { text += c.toString('utf8'); for (const w of waiters) w() })
  return {
    get text () { return text },
    seen: (re: RegExp): Promise<void> => new Promise((resolve) => {
      const check = (): void => { if (re.test(text)) { waiters.delete(check); resolve() } }
      waiters.add(check)
      check()
    })
  }
}

async function daemon (t: Tap, plugins: unknown[]) {
  const app = await build(t, writeConfig(plugins))
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  return { app, url }
}

function cliEnv (url: string): NodeJS.ProcessEnv {
  return { ...process.env, PLUGVISOR_URL: url, PLUGVISOR_HOST: undefined, PLUGVISOR_PORT: undefined }
}

t.test('logs NAME -f prints the last lines, then each new one, until Ctrl-C (exit 0)', async (t) => {
  const { url } = await daemon(t, [fixturePlugin('ticker', 'ticker', { args: ['20'] })])
  const child = spawn(process.execPath, [bin, 'logs', 'ticker', '-f', '--tail', '2'], { env: cliEnv(url), stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const out = output(child)
  await out.seen(/(OUT tick \d+\n(.|\n)*){12}/)
  const ticks = [...out.text.matchAll(/^\S+ OUT tick (\d+)$/gm)].map((m) => Number(m[1]))
  t.ok(ticks.length >= 12)
  t.same(ticks, ticks.map((_, i) => ticks[0] + i), 'every line once, in order')
  const exited = once(child, 'exit')
  child.kill('SIGINT')
  const [code] = await exited
  t.equal(code, 0, 'Ctrl-C ends it cleanly')
})

t.test('logs NAME -f --tail 0 prints only the lines printed from then on', async (t) => {
  const { app, url } = await daemon(t, [fixturePlugin('ticker', 'ticker', { args: ['20'] })])
  // It prints every 20 ms: wait for any line (it may have printed some already).
  await waitForEvent(app.daemon.supervisor, 'output', (o) => o.plugin === 'ticker')
  const before = Number(app.daemon.supervisor.logs('ticker', 1)[0].line.slice(5))
  const child = spawn(process.execPath, [bin, 'logs', 'ticker', '-f', '--tail', '0'], { env: cliEnv(url), stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const out = output(child)
  await out.seen(/(OUT tick \d+\n(.|\n)*){5}/)
  const ticks = [...out.text.matchAll(/^\S+ OUT tick (\d+)$/gm)].map((m) => Number(m[1]))
  t.ok(ticks[0] > before, `no old line: the first is tick ${ticks[0]}, the last before the command tick ${before}`)
  t.same(ticks, ticks.map((_, i) => ticks[0] + i), 'then every new line once, in order')
  const exited = once(child, 'exit')
  child.kill('SIGINT')
  t.equal((await exited)[0], 0)
})

t.test('logs NAME -f ends with exit 1 when the daemon ends the stream; an unknown plugin is exit 1 with the API error', async (t) => {
  const { app, url } = await daemon(t, [fixturePlugin('ticker', 'ticker', { args: ['50'] })])
  const child = spawn(process.execPath, [bin, 'logs', 'ticker', '--follow'], { env: cliEnv(url), stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
  await output(child).seen(/OUT tick/)
  const exited = once(child, 'exit')
  await app.close()
  const [code] = await exited
  t.equal(code, 1)
  t.match(stderr, /the daemon ended the log stream of ticker/)

  const { url: url2 } = await daemon(t, [])
  const nope = spawn(process.execPath, [bin, 'logs', 'nope', '-f'], { env: cliEnv(url2), stdio: ['ignore', 'pipe', 'pipe'] })
  let err2 = ''
  nope.stderr!.on('data', (c: Buffer) => { err2 += c.toString() })
  const [code2] = await once(nope, 'exit')
  t.equal(code2, 1)
  t.match(err2, /404 PLUGVISOR_PLUGIN_NOT_FOUND/)
})

t.test('monit renders real summaries and real events: rows, counts, recent events, cut to the terminal', async (t) => {
  const { app, url } = await daemon(t, [fixturePlugin('alpha', 'sleep'), fixturePlugin('beta', 'sleep')])
  // The rows are read once both run: the stream opened after that read updates them from then on.
  for (const name of ['alpha', 'beta']) await app.daemon.supervisor.waitFor(name, (s) => s.state === 'running', 10000)
  const rows = new Map<string, MonitRow>()
  for (const p of (await app.inject({ url: '/plugins' })).json().plugins as MonitRow[]) rows.set(p.name, p)
  process.env.PLUGVISOR_URL = url
  t.teardown(() => { delete process.env.PLUGVISOR_URL })
  const recent: string[] = []
  const stopping = waitForEvent(app.daemon.supervisor, 'transition', (e) => e.plugin === 'beta' && e.to === 'stopped')
  let sawStopped: () => void = () => {}
  const stoppedRow = new Promise<void>((resolve) => { sawStopped = resolve })
  const stream = await openEventStream('/events', (e) => {
    const line = applyEvent(rows, e)
    if (line) recent.push(line)
    if (rows.get('beta')?.state === 'stopped') sawStopped()
  })
  t.teardown(() => stream.close())
  await app.inject({ method: 'POST', url: '/plugins/beta/stop' })
  await stopping
  await stoppedRow
  const screen = renderMonit({ plugins: [...rows.values()], url, connected: true, recent, width: 200, height: 40 })
  t.match(screen[0], /^plugvisor monit {2}live {2}2 plugin\(s\): \d healthy.* {2}http:\/\/127\.0\.0\.1:\d+$/, 'the state of the stream, the counts by status (as last read), the address')
  t.match(screen.find((l) => l.startsWith('alpha')), /^alpha\s+healthy\s+running\s+healthy\s+\d+/)
  t.match(screen.find((l) => l.startsWith('beta')), /^beta\s+\S+\s+stopped\s/, 'the event updated the row')
  t.ok(screen.some((l) => /beta: transition running -> stopping \(operator stop\)/.test(l)), 'the recent events list it')
  const short = renderMonit({ plugins: [...rows.values()], url, connected: false, recent: [], width: 30, height: 5 })
  t.ok(short.every((l) => l.length <= 30), 'no line wider than the terminal')
  t.match(short.join('\n'), /disconnected/)
  t.match(short.at(-1), /\.\.\. 2 more/, 'rows that do not fit are counted')
})

t.test('monit on a pseudo-terminal: the table, live updates from /events, q quits and restores the terminal', needs(hasScript, 'script', 'bsdutils'), async (t) => {
  const { app, url } = await daemon(t, [fixturePlugin('alpha', 'sleep')])
  const term = spawn('script', ['-qfec', `exec ${process.execPath} ${bin} monit`, '/dev/null'], { env: cliEnv(url), stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { if (term.exitCode === null) term.kill('SIGKILL') })
  const out = output(term)
  const first = (await app.daemon.supervisor.waitFor('alpha', (s) => s.state === 'running', 10000)).pid
  await out.seen(new RegExp(`alpha\\s+healthy\\s+running\\s+healthy\\s+${first}`))
  t.ok(out.text.includes('\x1b[?1049h'), 'it switched to the alternate screen')
  // Connected to /events (drawn after the first table): from now on no event is missed.
  await out.seen(/plugvisor monit {2}live/)
  const restarted = waitForEvent(app.daemon.supervisor, 'transition', (e) => e.plugin === 'alpha' && e.to === 'running')
  await app.inject({ method: 'POST', url: '/plugins/alpha/restart' })
  await restarted
  const second = app.daemon.supervisor.summary('alpha').pid
  t.not(second, first)
  await out.seen(new RegExp(`alpha\\s+healthy\\s+running\\s+healthy\\s+${second}`))
  t.match(out.text, /alpha: restart \(manual\)/, 'the restart is among the recent events')
  const exited = once(term, 'exit')
  term.stdin!.write('q')
  const [code] = await exited
  t.equal(code, 0, 'q quits with exit 0')
  t.ok(out.text.includes('\x1b[?25h\x1b[?1049l'), 'the cursor is back and the screen is the one before')
})

t.test('monit without a terminal says so and exits 1', async (t) => {
  const { url } = await daemon(t, [])
  const child = spawn(process.execPath, [bin, 'monit'], { env: cliEnv(url), stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (c: Buffer) => { err += c.toString() })
  const [code] = await once(child, 'exit')
  t.equal(code, 1)
  t.match(err, /monit needs a terminal/)
})

t.test('without --config the config is ~/.config/plugvisor/plugvisor.yaml (XDG_CONFIG_HOME honoured), whatever the current folder; missing, every default applies', async (t) => {
  const home = tempDir()
  const elsewhere = tempDir()
  const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: '', PLUGVISOR_CONFIG: '' }
  const run = (cwd: string, e: NodeJS.ProcessEnv) => spawnSync(process.execPath, [bin, 'validate'], { cwd, env: e, encoding: 'utf8', timeout: 60000 })
  const a = run(elsewhere, env)
  t.equal(a.status, 0, a.stderr)
  t.equal(a.stdout, `${home}/.config/plugvisor/plugvisor.yaml: valid, 0 plugin(s): \n`)
  t.same(readdirSync(home), [], 'nothing was written')
  const xdg = tempDir()
  writeFileSync(path.join(xdg, 'plugvisor.yaml'), 'this is: [not valid')
  mkdirSync(path.join(xdg, 'plugvisor'))
  writeFileSync(path.join(xdg, 'plugvisor', 'plugvisor.yaml'), `plugins:\n  - ${JSON.stringify(fixturePlugin('one', 'sleep'))}\n`)
  const b = run(packageRoot, { ...env, XDG_CONFIG_HOME: xdg })
  t.equal(b.status, 0, b.stderr)
  t.match(b.stdout, `${xdg}/plugvisor/plugvisor.yaml: valid, 1 plugin(s): one`, 'not the package\'s config/plugvisor.yaml, though the current folder has one')
})
