// The browser guard against a real browser: Chromium loads a page from another origin
// (http://localhost:PAGE, another site than http://127.0.0.1:DAEMON) whose script sends the
// simple cross-origin POSTs a hostile page would. The daemon refuses them; nothing stops.
import t from 'tap'
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { build, fixturePlugin, tempDir, writeConfig } from './helper.js'

const CHROMIUM = '/usr/bin/chromium'

t.test('a page on another site cannot stop plugins through Chromium', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('x', 'sleep')]))
  await app.daemon.supervisor.start('x')
  await app.listen({ host: '127.0.0.1', port: 0 })
  const daemon = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  let reportDone: (r: string) => void = () => {}
  const done = new Promise<string>((resolve) => { reportDone = resolve })
  const page = createServer((req, res) => {
    if (req.url?.startsWith('/done')) { reportDone(decodeURIComponent(req.url.slice('/done?'.length))); res.end(); return }
    res.setHeader('content-type', 'text/html')
    res.end(`<!doctype html><script>
      const post = (path, body) => fetch(${JSON.stringify(daemon)} + path, { method: 'POST', mode: 'no-cors', body }).then(() => 'sent', (e) => 'error ' + e)
      Promise.all([post('/plugins/x/stop', 'x'), post('/plugins/stop?all=true', ''), post('/plugins', JSON.stringify({ name: 'evil', command: '/bin/sh', args: ['-c', 'id'] }))])
        .then((r) => fetch('/done?' + encodeURIComponent(r.join(','))))
    </script>`)
  })
  await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { page.closeAllConnections(); page.close(() => resolve()) }))
  const pageUrl = `http://localhost:${(page.address() as AddressInfo).port}/`

  const browser = spawn(CHROMIUM, ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', `--user-data-dir=${tempDir('plugvisor-chromium-')}`, pageUrl], { stdio: 'ignore' })
  t.teardown(() => { if (browser.exitCode === null) browser.kill('SIGKILL') })
  const result = await Promise.race([done, new Promise<string>((_resolve, reject) => { browser.once('exit', (code) => reject(new Error(`chromium exited (${code}) before the page reported`))) })])
  t.equal(result, 'sent,sent,sent', 'the browser sent all three (no-cors: the page cannot read the answers)')

  t.equal(app.daemon.supervisor.summary('x').state, 'running', 'x still runs')
  t.notOk(app.daemon.supervisor.has('evil'), 'nothing was registered')
  const rows = app.daemon.audit.list({ limit: 10 }).filter((r) => r.method === 'POST')
  t.same(rows.map((r) => r.status).sort(), [403, 403, 403], 'each was answered 403')
})
