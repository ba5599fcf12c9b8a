// npm pack, then npm install -g of the tarball into a temporary prefix: the installed `plugvisor`
// works from an unrelated folder, with defaults that do not depend on it.
//
// No download: dependencies come from npm's cache (--prefer-offline; what `npm ci` cached, plus the
// registry's package documents, which npm fetches once where they are not cached), and
// better-sqlite3's native binary from a loopback "binary mirror" this test serves with the one
// already built in node_modules (prebuild-install's npm_config_better_sqlite3_binary_host), so
// nothing is compiled again and nothing is fetched from GitHub.
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { createServer } from 'node:http'
import path from 'node:path'
import { promisify } from 'node:util'
import { followLog, tempDir } from './helper.js'
import { packageRoot } from '../src/paths.js'

const run = promisify(execFile)
const BOUND_MS = 200_000

t.test('npm pack + npm install -g --prefix gives a working plugvisor whose defaults do not depend on the current folder', { timeout: BOUND_MS + 30_000 }, async (t) => {
  const work = tempDir('plugvisor-install-')
  const { stdout: packed } = await run('npm', ['pack', '--pack-destination', work, '--silent'], { cwd: packageRoot, timeout: 60_000 })
  const tgz = path.join(work, packed.trim().split('\n').at(-1)!)
  t.ok(existsSync(tgz), `packed: ${path.basename(tgz)}`)

  const native = path.join(work, 'better-sqlite3-prebuilt.tar.gz')
  await run('tar', ['czf', native, '-C', path.join(packageRoot, 'node_modules/better-sqlite3'), 'build/Release/better_sqlite3.node'])
  const asked: string[] = []
  const mirror = createServer((req, res) => {
    asked.push(req.url ?? '')
    res.writeHead(200, { 'content-type': 'application/gzip' })
    res.end(readFileSync(native))
  })
  await new Promise<void>((resolve) => mirror.listen(0, '127.0.0.1', resolve))
  t.teardown(() => mirror.close())
  const mirrorUrl = `http://127.0.0.1:${(mirror.address() as { port: number }).port}`

  const prefix = path.join(work, 'prefix')
  await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel', 'error', tgz], {
    cwd: work,
    timeout: BOUND_MS,
    env: { ...process.env, npm_config_better_sqlite3_binary_host: mirrorUrl }
  })
  t.ok(asked.length > 0, `better-sqlite3's binary came from the loopback mirror (${asked[0]})`)
  const bin = path.join(prefix, 'bin', 'plugvisor')
  t.ok(statSync(bin).mode & 0o111, 'plugvisor is on the prefix\'s PATH and executable')

  // An unrelated folder and a home of its own: nothing of the checkout is in reach.
  const elsewhere = tempDir('plugvisor-elsewhere-')
  const home = tempDir('plugvisor-home-')
  const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: '', PLUGVISOR_CONFIG: '', PLUGVISOR_URL: '', PLUGVISOR_PORT: '0', PLUGVISOR_HOST: '127.0.0.1', PLUGVISOR_LOG_FORMAT: 'json' }
  const pkg = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }
  const version = await run(bin, ['--version'], { cwd: elsewhere, env })
  t.equal(version.stdout, `${pkg.version}\n`)
  const validate = await run(bin, ['validate'], { cwd: elsewhere, env })
  t.equal(validate.stdout, `${home}/.config/plugvisor/plugvisor.yaml: valid, 0 plugin(s): \n`, 'the default config is in the user\'s config folder')

  const daemon = spawn(bin, ['serve'], { cwd: elsewhere, env, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (daemon.exitCode === null) daemon.kill('SIGKILL') })
  const { entries, until } = followLog(daemon.stdout!)
  await until(() => entries.some((e) => /^daemon start: listening on /.test(e.msg)))
  const start = entries.find((e) => /^daemon start/.test(e.msg))!
  t.equal(start.dataDir, `${home}/.config/plugvisor/data`, 'the data folder is beside the default config, not in the current folder')
  const ui = await fetch(`${start.address as string}/ui/`)
  t.equal(ui.status, 200, 'the dashboard is served from the installed package')
  const exited = once(daemon, 'exit')
  daemon.kill('SIGTERM')
  const [code] = await exited
  t.equal(code, 0)
  t.ok(existsSync(path.join(home, '.config/plugvisor/data/plugvisor.db')), 'the database is where the log said')
  t.notOk(existsSync(path.join(elsewhere, 'data')), 'nothing was written to the current folder')
})
