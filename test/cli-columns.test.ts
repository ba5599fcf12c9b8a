// The command line's tables (src/cli.cts columns(), table()): columns as wide as their widest cell,
// two spaces apart, no trailing whitespace.
import t from 'tap'
import cli from '../src/cli.cjs'
const { columns, table } = cli

t.test('columns: widths, gaps, nothing trailing', async (t) => {
  t.equal(columns([['A', 'BB', 'C'], ['long', 'x', 'yy'], ['q', 'wide cell', '']]), [
    'A     BB         C',
    'long  x          yy',
    'q     wide cell' // an empty last cell leaves no padding behind
  ].join('\n'))
  t.equal(columns([['reloaded:', ''], ['  added', 'a, b']]), 'reloaded:\n  added    a, b', 'an empty cell and leading spaces')
  t.equal(columns([['x', 'ends in spaces  ']]), 'x  ends in spaces', 'whitespace ending a line is dropped, as before')
  t.equal(columns([['ONLY']]), 'ONLY', 'one cell')
})

t.test('table: a plugin per row, what each column shows', async (t) => {
  const out = table([
    { name: 'web', status: 'healthy', state: 'running', health: 'healthy', pid: 4242, port: 8080, uptimeMs: 3_723_000, restartCount: 0, lastExit: null },
    { name: 'worker', status: 'restarting', state: 'backoff', health: 'unknown', pid: null, port: null, uptimeMs: 0, restartCount: 3, lastExit: { code: null, signal: 'SIGKILL', at: '2026-01-01T00:00:00.000Z', error: null } },
    { name: 'job', status: 'stopped', state: 'stopped', health: 'unknown', pid: null, port: null, uptimeMs: 0, restartCount: 0, lastExit: { code: 1, signal: null, at: '2026-01-01T00:00:00.000Z', error: null } }
  ])
  t.equal(out, [
    'NAME    STATUS      STATE    HEALTH   PID   PORT  UPTIME  RESTARTS  LAST EXIT',
    'web     healthy     running  healthy  4242  8080  1h2m    0         -',
    'worker  restarting  backoff  unknown  -     -     -       3         SIGKILL',
    'job     stopped     stopped  unknown  -     -     -       0         code 1'
  ].join('\n'))
})
