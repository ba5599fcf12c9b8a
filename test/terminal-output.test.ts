// The daemon's own log: pretty lines on a terminal, JSON lines anywhere else; "daemon start" and
// "daemon shutdown" for what the daemon itself does.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fixturePlugin, followLog, needs, writeConfig } from './helper.js'
import { packageRoot } from '../src/paths.js'
import { logFormatFor, prettyLine } from '../src/pretty-log.js'

const bin = path.join(packageRoot, 'dist/src/bin.cjs')
const hasScript = spawnSync('script', ['--version']).status === 0

t.test('log.format: auto is pretty on a terminal and JSON elsewhere; json and pretty are what they say', async (t) => {
  t.equal(logFormatFor('auto', true), 'pretty')
  t.equal(logFormatFor('auto', false), 'json')
  t.equal(logFormatFor('json', true), 'json')
  t.equal(logFormatFor('pretty', false), 'pretty')
})

t.test('a pretty line: local time, level, message, the fields, an error\'s stack indented below', async (t) => {
  const at = new Date(2026, 0, 2, 3, 4, 5, 6).getTime()
  const line = prettyLine(JSON.stringify({ level: 40, time: at, pid: 1, hostname: 'h', plugin: 'echo', reason: 'two words', code: 3, msg: 'plugin echo: running -> backoff (crash)' }), false)
  t.equal(line, '03:04:05.006 WARN  plugin echo: running -> backoff (crash)  plugin=echo reason="two words" code=3\n')
  const withErr = prettyLine(JSON.stringify({ level: 50, time: at, msg: 'boom', err: { message: 'bad', stack: 'Error: bad\n    at x (y.js:1:1)' } }), false)
  t.equal(withErr, '03:04:05.006 ERROR boom\n    Error: bad\n        at x (y.js:1:1)\n')
  t.ok(prettyLine(JSON.stringify({ level: 30, time: at, msg: 'hi' }), true).includes('\x1b[32mINFO'), 'colored for a terminal')
  t.equal(prettyLine('not json', false), 'not json\n', 'anything else is passed through')
})

t.test('on a pseudo-terminal the daemon log is pretty and says daemon start / daemon shutdown', needs(hasScript, 'script', 'bsdutils'), async (t) => {
  const loaded = writeConfig([fixturePlugin('echo', 'sleep')], { log: { level: 'info' } })
  // script(1) runs the daemon on a pseudo-terminal of its own; its stdout is ours to read.
  const term = spawn('script', ['-qfec', `exec ${process.execPath} ${bin} serve --config ${loaded.file}`, '/dev/null'], {
    env: { ...process.env, PLUGVISOR_PORT: '0', NO_COLOR: '1' },
    stdio: ['pipe', 'pipe', 'inherit']
  })
  let daemonPid = 0
  t.teardown(() => {
    if (daemonPid) { try { process.kill(daemonPid, 'SIGKILL') } catch {} }
    if (term.exitCode === null) term.kill('SIGKILL')
  })
  let out = ''
  const waiters = new Set<() => void>()
  term.stdout!.on('data', (c: Buffer) => { out += c.toString('utf8'); for (const w of waiters) w() })
  const seen = (re: RegExp): Promise<void> => new Promise((resolve) => {
    const check = (): void => { if (re.test(out)) { waiters.delete(check); resolve() } }
    waiters.add(check)
    check()
  })
  await seen(/plugin echo: starting -> running/)
  await seen(/daemon start: listening/)
  t.match(out, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}daemon start: listening on http:\/\/127\.0\.0\.1:\d+/m, 'daemon start, in a line for people')
  t.match(out, /plugin echo: stopped -> starting \(daemon start\)/, 'the boot\'s starts say daemon start, not operator start')
  t.notMatch(out, /\{"level"/, 'no JSON lines')
  // The daemon is script's only child: it gets the SIGTERM (script would pass on only a hangup).
  daemonPid = Number(readFileSync(`/proc/${term.pid}/task/${term.pid}/children`, 'utf8').trim().split(' ')[0])
  t.ok(daemonPid > 0)
  const exited = once(term, 'exit')
  process.kill(daemonPid, 'SIGTERM')
  await exited
  t.match(out, /INFO {2}daemon shutdown \(SIGTERM\): stopping plugins/)
  t.match(out, /plugin echo: running -> stopping \(daemon shutdown\)/)
  t.match(out, /INFO {2}daemon shutdown: done/)
})

t.test('with stdout not a terminal the log is JSON lines, with the same words', async (t) => {
  const loaded = writeConfig([fixturePlugin('echo', 'sleep')], { log: { level: 'info' } })
  const daemon = spawn(process.execPath, [bin, 'serve', '--config', loaded.file], { env: { ...process.env, PLUGVISOR_PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (daemon.exitCode === null) daemon.kill('SIGKILL') })
  const { entries, until } = followLog(daemon.stdout!)
  await until(() => entries.some((e) => e.plugin === 'echo' && e.to === 'running') && entries.some((e) => /^daemon start/.test(e.msg)))
  t.ok(entries.some((e) => /^daemon start: listening on /.test(e.msg) && typeof e.address === 'string'), 'daemon start as a JSON object')
  t.ok(entries.some((e) => e.plugin === 'echo' && e.reason === 'daemon start'))
  const exited = once(daemon, 'exit')
  daemon.kill('SIGTERM')
  await exited
  t.ok(entries.some((e) => e.msg === 'daemon shutdown (SIGTERM): stopping plugins'))
})
