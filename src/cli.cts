// plugvisor command line: `serve` runs the daemon, `validate` checks config offline, the rest
// talk to a running daemon's API at PLUGVISOR_URL (default http://127.0.0.1:7070).
import type { Static } from '@sinclair/typebox' with { 'resolution-mode': 'import' }
// The API's shapes, as the daemon declares them (types only: nothing of them loads at run time).
import type { HookEvent, PluginSummary } from './supervisor/events.js'
import type { StateEvent } from './store/state-store.js'
import type { RawCheck, RollupBucket } from './health/health-history.js'
import type { ReloadResult } from './plugin-changes.js'
import type { ErrorBody } from './plugins/error-handler.js'
import type { LogLineBody } from './process/log-ring.js'
// config/load.js compiles every JSON Schema with ajv when imported (~200 ms): only `serve` and
// `validate` need it, so it is imported there and `status` & co. start as fast as Node does.
type ConfigModule = typeof import('./config/load.js')
const configModule = (): Promise<ConfigModule> => import('./config/load.js')
// Node's own modules are taken with process.getBuiltinModule, not imported: an ES module import
// of a built-in builds a module facade of all its exports first (about 1.3 ms for node:util of a
// command that runs for tens of milliseconds in all).
const { parseArgs } = process.getBuiltinModule('node:util')

const USAGE = `usage: plugvisor <command> [options]

  serve [--config FILE]            run the daemon (FILE also from PLUGVISOR_CONFIG; default
                                   ~/.config/plugvisor/plugvisor.yaml, every default when it is missing)
  validate [FILE]                  check a config and its manifests offline; exit 1 with the errors
  status [--json]                  every plugin's state, health and restarts
  start|stop|restart NAME...|--all [--wait]
                                   act on plugins, answer once done (--wait: until each is healthy
                                   or degraded)
  add FILE|-                       load a plugin from a manifest file (YAML or JSON; - reads stdin)
  remove NAME                      unload a plugin (stop it, retire its manifest file)
  config NAME --set key=value...   change a plugin's config (values parsed as JSON when they parse)
  logs NAME [--tail N] [-f]        last lines of a plugin's output (from its log files when the
                                   daemon restarted since); -f/--follow: then every new line, until Ctrl-C
                                   (-f --tail 0: only the new lines)
  monit                            a live table of every plugin, updated from the event stream (q quits)
  events NAME [--limit N]          a plugin's state transitions and lifecycle hook runs
  history NAME [--resolution raw|minute|hour] [--limit N]
                                   a plugin's probe results or their rollups
  reload [--dry-run] [--json]      re-read the config and plugins folder, apply what changed
                                   (--dry-run: only show it); exit 1 when a manifest was not applied
  check-plugin MANIFEST [--cases FILE] [--bench N --concurrency C] [--min-success-rate R] [--max-p95-ms M] [--json]
                                   run one plugin alone through every check of the plugin contract;
                                   exit 0 only when all passed

  --version                        print the version

environment: PLUGVISOR_URL (API address; else http://PLUGVISOR_HOST:PLUGVISOR_PORT, default
             127.0.0.1:7070), PLUGVISOR_TOKEN (bearer token), PLUGVISOR_DATA_DIR
             (PLUGVISOR_HOST/PORT/DATA_DIR also override the config file for serve)`

/**
 * The config file when neither --config nor PLUGVISOR_CONFIG names one: in the user's config
 * folder, never relative to the current folder (a global install runs from anywhere). When it
 * does not exist, every default applies, relative to its folder (data in ~/.config/plugvisor/data).
 */
function defaultConfigFile (): string {
  const home = process.env.HOME || '/'
  return `${process.env.XDG_CONFIG_HOME || `${home}/.config`}/plugvisor/plugvisor.yaml`
}

export async function main (argv: string[]): Promise<number> {
  try {
    return await dispatch(argv)
  } catch (err) {
    // node:util parseArgs rejects unknown or malformed options: a usage error, no stack trace.
    if (typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code.startsWith('ERR_PARSE_ARGS_')) {
      return usageError((err as Error).message)
    }
    throw err
  }
}

export function usageError (message: string): number {
  process.stderr.write(`plugvisor: ${message}\n${USAGE}\n`)
  return 2
}

async function dispatch (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve': return serveCommand(rest)
    case 'validate': return validateCommand(rest)
    case 'status': return statusCommand(rest)
    case 'start':
    case 'stop':
    case 'restart': return actionCommand(command, rest)
    case 'logs': return logsCommand(rest)
    case 'monit': return withApi(async () => { await (await import('./cli/monit.js')).monit(rest) })
    case 'events': return eventsCommand(rest)
    case 'history': return historyCommand(rest)
    case 'reload': return reloadCommand(rest)
    case 'add': return addCommand(rest)
    case 'remove': return removeCommand(rest)
    case 'config': return configCommand(rest)
    case '--version':
    case '-v': {
      const { readFileSync } = await import('node:fs')
      const { packageRoot } = await import('./paths.js')
      const pkg = JSON.parse(readFileSync(`${packageRoot}/package.json`, 'utf8')) as { version: string }
      process.stdout.write(pkg.version + '\n')
      return 0
    }
    case 'check-plugin': return (await import('./check-plugin/command.js')).checkPluginCommand(rest)
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n')
      return command === undefined ? 2 : 0
    default:
      return usageError(`unknown command '${command}'`)
  }
}

async function serveCommand (args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } })
  const file = values.config ?? (process.env.PLUGVISOR_CONFIG || defaultConfigFile())
  const config = await configModule()
  let loaded
  try {
    loaded = config.loadConfig(file, { missingIsEmpty: file === defaultConfigFile() })
  } catch (err) {
    return reportConfigError(config, err)
  }
  const { serve } = await import('./server.js')
  try {
    await serve(loaded)
  } catch (err) {
    process.stderr.write(`plugvisor: cannot start: ${(err as Error).message}\n`)
    return 1
  }
  return -1 // keep running
}

async function reportConfigError ({ formatProblem }: ConfigModule, err: unknown): Promise<number> {
  // Loaded here, with the config module: the API commands need neither.
  const { problemsOf } = await import('./errors.js')
  const problems = problemsOf(err)
  if (problems !== undefined) {
    process.stderr.write(`plugvisor: invalid config\n${problems.map((p) => '  ' + formatProblem(p)).join('\n')}\n`)
    return 1
  }
  throw err
}

async function validateCommand (args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true })
  const file = positionals[0] ?? (process.env.PLUGVISOR_CONFIG || defaultConfigFile())
  const config = await configModule()
  const { formatProblem } = config
  let loaded
  try {
    loaded = config.loadConfig(file, { missingIsEmpty: file === defaultConfigFile() })
  } catch (err) {
    return reportConfigError(config, err)
  }
  // Offline as well: each pinned executable is hashed here, as the daemon does before a spawn.
  const { checksumProblems } = await import('./process/executable.js')
  const problems = [...loaded.problems, ...await checksumProblems(loaded.manifests)]
  if (problems.length > 0) {
    process.stderr.write(`${loaded.file}: ${problems.length} problem(s)\n${problems.map((p) => '  ' + formatProblem(p)).join('\n')}\n`)
    return 1
  }
  process.stdout.write(`${loaded.file}: valid, ${loaded.manifests.length} plugin(s): ${loaded.manifests.map((m) => m.name).join(', ')}\n`)
  return 0
}

/** One API call: the body as JSON (an error answer is a CliError with its status, code and message). */
export async function api (method: string, path: string, payload?: unknown): Promise<unknown> {
  const base = apiBase()
  const url = new URL(base + path)
  const token = process.env.PLUGVISOR_TOKEN
  // What a header line can carry: a token with a line break in it would end the header there.
  if (token && !/^[\x21-\x7e]+$/.test(token)) throw new CliError('PLUGVISOR_TOKEN holds characters a bearer token cannot have (spaces, line breaks, non-ASCII)')
  const headers: Record<string, string> = { accept: 'application/json' }
  const data = payload === undefined ? undefined : JSON.stringify(payload)
  if (data !== undefined) headers['content-type'] = 'application/json'
  if (token) headers.authorization = `Bearer ${token}`
  let answer: Answer
  if (url.protocol === 'https:') {
    answer = await overTls(url, method, headers, data).catch((err: Error) => { throw new CliError(`cannot reach plugvisor at ${base}: ${err.message}`) })
  } else if (url.protocol === 'http:') {
    answer = await overTcp(url, method, headers, data, base)
  } else {
    throw new CliError(`PLUGVISOR_URL must be an http:// or https:// address, not ${base}`)
  }
  const { status, text } = answer
  let body: Partial<ErrorBody> & Record<string, unknown> = {}
  try { body = JSON.parse(text) } catch {}
  if (status < 200 || status >= 300) throw new CliError(`${status} ${body.code ?? ''}: ${body.message ?? text.slice(0, 200)}`)
  return body
}

interface Answer { status: number, text: string }

/** Through a TLS-terminating proxy in front of the daemon: node:https, with its certificate checks. */
async function overTls (url: URL, method: string, headers: Record<string, string>, data: string | undefined): Promise<Answer> {
  const { request } = process.getBuiltinModule('node:https')
  return new Promise<Answer>((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(data)
  })
}

/**
 * One call over a plain TCP connection (node:net): node:http's client, agent and parser took
 * about 10 ms of a `plugvisor status` that runs for 40 ms beyond Node's own start. The request is
 * HTTP/1.0, so the answer is never chunked: its body is framed by content-length, or by the
 * server closing the connection after it (it does after every answer to HTTP/1.0).
 */
function overTcp (url: URL, method: string, headers: Record<string, string>, data: string | undefined, base: string): Promise<Answer> {
  const { connect } = process.getBuiltinModule('node:net')
  let head = `${method} ${url.pathname}${url.search} HTTP/1.0\r\nhost: ${url.host}\r\n`
  for (const name in headers) head += `${name}: ${headers[name]}\r\n`
  if (data !== undefined) head += `content-length: ${Buffer.byteLength(data)}\r\n`
  return new Promise<Answer>((resolve, reject) => {
    // A bracketed IPv6 host ([::1]) is connected to without its brackets.
    const socket = connect({ host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port || 80) })
    const chunks: Buffer[] = []
    let received = 0
    let bodyAt = -1
    let status = 0
    let length = -1
    let settled = false
    const fail = (message: string): void => {
      if (settled) return
      settled = true
      socket.destroy()
      reject(new CliError(message))
    }
    const done = (): void => {
      if (settled) return
      settled = true
      socket.destroy()
      const all = Buffer.concat(chunks, received)
      resolve({ status, text: all.toString('utf8', bodyAt, length >= 0 ? bodyAt + length : all.length) })
    }
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      received += chunk.length
      if (bodyAt < 0) {
        const all = Buffer.concat(chunks, received)
        const end = all.indexOf('\r\n\r\n')
        if (end < 0) {
          if (received > 64 * 1024) fail(`plugvisor at ${base} did not answer in HTTP (no end of the head in 64 KiB)`)
          return
        }
        chunks.length = 0
        chunks.push(all)
        bodyAt = end + 4
        const lines = all.toString('latin1', 0, end).split('\r\n')
        const statusLine = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0])
        if (statusLine === null) return fail(`plugvisor at ${base} did not answer in HTTP: ${JSON.stringify(lines[0].slice(0, 80))}`)
        status = Number(statusLine[1])
        for (let i = 1; i < lines.length; i++) {
          const colon = lines[i].indexOf(':')
          const name = lines[i].slice(0, colon).trim().toLowerCase()
          const value = lines[i].slice(colon + 1).trim()
          if (name === 'content-length') {
            if (!/^\d+$/.test(value)) return fail(`plugvisor at ${base} answered with an invalid content-length: ${JSON.stringify(value)}`)
            length = Number(value)
          } else if (name === 'transfer-encoding' && value.toLowerCase() !== 'identity') {
            return fail(`plugvisor at ${base} answered an HTTP/1.0 request with transfer-encoding ${value}`)
          }
        }
      }
      if (length >= 0 && received - bodyAt >= length) done()
    })
    socket.on('end', () => {
      if (bodyAt < 0) fail(`plugvisor at ${base} closed the connection before its answer's head was complete`)
      else if (length >= 0 && received - bodyAt < length) fail(`plugvisor at ${base} closed the connection after ${received - bodyAt} of ${length} bytes of its answer`)
      else done()
    })
    socket.on('error', (err: Error) => fail(`cannot reach plugvisor at ${base}: ${err.message}`))
    socket.write(data === undefined ? head + '\r\n' : head + '\r\n' + data)
  })
}

export class CliError extends Error {}

/** PLUGVISOR_URL, else http://PLUGVISOR_HOST:PLUGVISOR_PORT (defaults 127.0.0.1 and 7070). */
export function apiBase (): string {
  if (process.env.PLUGVISOR_URL) return process.env.PLUGVISOR_URL.replace(/\/$/, '')
  const host = process.env.PLUGVISOR_HOST || '127.0.0.1'
  return `http://${host.includes(':') ? `[${host}]` : host}:${process.env.PLUGVISOR_PORT || '7070'}`
}

/** The fields of a plugin the table shows: `status` asks the daemon for only these (GET /plugins?field=). */
const TABLE_FIELDS = ['status', 'state', 'health', 'pid', 'port', 'uptimeMs', 'restartCount', 'lastExit'] as const
type TableRow = Pick<PluginSummary, 'name' | typeof TABLE_FIELDS[number]>

export function table (plugins: TableRow[]): string {
  const rows = [['NAME', 'STATUS', 'STATE', 'HEALTH', 'PID', 'PORT', 'UPTIME', 'RESTARTS', 'LAST EXIT']]
  for (const p of plugins) {
    const exit = p.lastExit ? (p.lastExit.signal ?? `code ${p.lastExit.code}`) : '-'
    rows.push([p.name, p.status, p.state, p.health, String(p.pid ?? '-'), String(p.port ?? '-'), duration(p.uptimeMs), String(p.restartCount), exit])
  }
  return columns(rows)
}

export function columns (rows: string[][]): string {
  // Few allocations, in plain loops: a command runs this once, in V8's interpreter. Padding with
  // padEnd and concatenating line by line made about 1 KB of garbage a row, enough to set off two
  // scavenges (3-7 ms) in a `plugvisor status` of 500; here a row is one join of its cells and
  // ready-made runs of spaces, and the lines one join.
  const n = rows[0].length
  const widths: number[] = new Array(n).fill(0)
  let widest = 0
  for (const r of rows) {
    for (let i = 0; i < n; i++) {
      if (r[i].length > widths[i]) widths[i] = r[i].length
      if (widths[i] > widest) widest = widths[i]
    }
  }
  const spaces: string[] = ['']
  for (let k = 1; k <= widest + 2; k++) spaces.push(spaces[k - 1] + ' ')
  const pieces: string[] = []
  const lines: string[] = new Array(rows.length)
  for (let j = 0; j < rows.length; j++) {
    const r = rows[j]
    pieces.length = 0
    for (let i = 0; i < n - 1; i++) pieces.push(r[i], spaces[widths[i] - r[i].length + 2])
    pieces.push(r[n - 1])
    lines[j] = pieces.join('').trimEnd()
  }
  return lines.join('\n')
}

export function duration (ms: number): string {
  if (ms <= 0) return '-'
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
}

/**
 * A command's whole output, written to descriptor 1 directly: process.stdout, made on first use,
 * is a stream over a net.Socket when the output is a pipe (about 1.5 ms of a `plugvisor status`).
 * A non-blocking descriptor that is full (EAGAIN) hands the rest to process.stdout; when the
 * reader went away (EPIPE: `| head`), there is no one to write to.
 */
export function print (text: string): void {
  const { writeSync } = process.getBuiltinModule('node:fs')
  const data = Buffer.from(text)
  let at = 0
  try {
    while (at < data.length) at += writeSync(1, data, at)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EAGAIN') {
      process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code !== 'EPIPE') throw e })
      process.stdout.write(data.subarray(at))
    } else if (code !== 'EPIPE') {
      throw err
    }
  }
}

export async function withApi (fn: () => Promise<void>): Promise<number> {
  try {
    await fn()
    return 0
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`plugvisor: ${err.message}\n`)
      return 1
    }
    throw err
  }
}

function statusCommand (args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' } } })
  return withApi(async () => {
    if (values.json) {
      const { plugins } = await api('GET', '/plugins') as { plugins: PluginSummary[] }
      print(JSON.stringify(plugins, null, 2) + '\n')
    } else {
      // Only what the table shows: a quarter of the answer's bytes to write, send and parse.
      const { plugins } = await api('GET', `/plugins?${TABLE_FIELDS.map((f) => `field=${f}`).join('&')}`) as { plugins: TableRow[] }
      print(table(plugins) + '\n')
    }
  })
}

function actionCommand (op: 'start' | 'stop' | 'restart', args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { all: { type: 'boolean' }, wait: { type: 'boolean' } } })
  if (!values.all && positionals.length === 0) return Promise.resolve(usageError(`${op} needs plugin names or --all`))
  const q = new URLSearchParams()
  if (values.all) q.set('all', 'true')
  for (const n of positionals) q.append('plugin', n)
  if (values.wait) q.set('wait', 'healthy')
  return withApi(async () => {
    const { plugins } = await api('POST', `/plugins/${op}?${q}`) as { plugins: PluginSummary[] }
    print(table(plugins) + '\n')
  })
}

function logsCommand (args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { tail: { type: 'string', default: '100' }, follow: { type: 'boolean', short: 'f' } } })
  if (positionals.length !== 1) return Promise.resolve(usageError('logs needs one plugin name'))
  const [name] = positionals
  if (values.follow) {
    let code = 1
    return withApi(async () => { code = await (await import('./cli/logs-follow.js')).followLogs(name, values.tail) }).then((c) => c === 0 ? code : c)
  }
  return withApi(async () => {
    const { formatLogLine } = await import('./cli/logs-follow.js')
    const { lines } = await api('GET', `/plugins/${encodeURIComponent(name)}/logs?tail=${encodeURIComponent(values.tail)}`) as { lines: Static<typeof LogLineBody>[] }
    process.stdout.write(lines.map(formatLogLine).join(''))
  })
}

function eventsCommand (args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { limit: { type: 'string', default: '20' } } })
  if (positionals.length !== 1) return Promise.resolve(usageError('events needs one plugin name'))
  return withApi(async () => {
    const { events, hooks } = await api('GET', `/plugins/${encodeURIComponent(positionals[0])}/events?limit=${encodeURIComponent(values.limit)}`) as { events: Static<typeof StateEvent>[], hooks: Static<typeof HookEvent>[] }
    const lines = [
      ...events.map((e) => {
        const exit = e.signal ?? (e.exitCode !== null ? `code ${e.exitCode}` : '')
        return { at: e.at, text: `${e.from} -> ${e.to} ${e.reason}${exit ? ` (${exit})` : ''}` }
      }),
      ...hooks.map((h) => ({ at: h.at, text: `hook ${h.hook} ${h.outcome}: ${h.reason} (${h.kind} ${h.target}, ${Math.round(h.durationMs)} ms${h.actor !== null ? `, by ${h.actor}` : ''})` }))
    ]
    // Both lists are newest first, each up to the limit: the newest `limit` of the two, oldest first.
    // (A stable sort keeps a transition before a hook run of the same millisecond.)
    lines.sort((a, b) => Date.parse(a.at) - Date.parse(b.at))
    for (const l of lines.slice(-Number(values.limit))) process.stdout.write(`${l.at} ${l.text}\n`)
  })
}

function historyCommand (args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { resolution: { type: 'string', default: 'raw' }, limit: { type: 'string', default: '20' } } })
  if (positionals.length !== 1) return Promise.resolve(usageError('history needs one plugin name'))
  const q = new URLSearchParams({ resolution: values.resolution, limit: values.limit })
  return withApi(async () => {
    const body = await api('GET', `/plugins/${encodeURIComponent(positionals[0])}/health/history?${q}`) as { checks?: Static<typeof RawCheck>[], buckets?: Static<typeof RollupBucket>[] }
    const rows: string[][] = body.checks
      ? [['AT', 'PROBE', 'PHASE', 'RESULT', 'MS', 'ERROR'], ...body.checks.reverse().map((c) => [c.at, c.probe, c.phase, c.result, c.durationMs.toFixed(1), c.error ?? ''])]
      : [['BUCKET', 'CHECKS', 'FAILURES', 'WARNINGS', 'MIN MS', 'AVG MS', 'MAX MS'], ...(body.buckets ?? []).reverse().map((b) => [b.at, String(b.count), String(b.failures), String(b.warnings), ms(b.minMs), ms(b.avgMs), ms(b.maxMs)])]
    process.stdout.write(columns(rows) + '\n')
  })
}

const ms = (v: number | null): string => v === null ? '-' : v.toFixed(1)

async function reloadCommand (args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } } })
  let answer: ReloadResult | undefined
  const code = await withApi(async () => {
    answer = await api('POST', `/config/reload${values['dry-run'] ? '?dryRun=true' : ''}`) as ReloadResult
  })
  if (answer === undefined) return code
  const r = answer
  if (values.json) {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n')
  } else {
    const list = (names: string[]): string => names.length > 0 ? names.join(', ') : '-'
    const rows = r.dryRun
      ? [['would add', r.added], ['would remove', r.removed], ['would restart (changed)', r.changed]] as const
      : [['added', r.added], ['removed', r.removed], ['restarted (changed)', r.changed]] as const
    process.stdout.write(columns([
      [r.dryRun ? 'dry run, nothing changed:' : 'reloaded:', ''],
      ...rows.map(([label, names]) => [`  ${label}`, list(names)]),
      ['  unchanged', list(r.unchanged)],
      ...(r.reconfigured.length > 0 ? [[r.dryRun ? '  would reload config in place' : '  config reloaded in place', list(r.reconfigured)]] : []),
      ...(r.kept.length > 0 ? [['  kept as running (manifest invalid)', list(r.kept)]] : []),
      ...(r.restartRequired.length > 0 ? [['  needs a daemon restart', r.restartRequired.join(', ')]] : [])
    ]) + '\n')
    for (const p of r.problems) process.stderr.write(`  ${p.file}: ${p.path || '/'}: ${p.reason}\n`)
  }
  return r.problems.length > 0 ? 1 : 0
}

async function addCommand (args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true })
  if (positionals.length !== 1) return usageError('add needs one manifest file (or - for stdin)')
  const { readFileSync } = await import('node:fs')
  let text: string
  try {
    text = readFileSync(positionals[0] === '-' ? 0 : positionals[0], 'utf8')
  } catch (err) {
    process.stderr.write(`plugvisor: cannot read ${positionals[0]}: ${(err as Error).message}\n`)
    return 1
  }
  let manifest: unknown
  try {
    // YAML is a superset of JSON: one parser reads both.
    manifest = (await import('yaml')).parse(text)
  } catch (err) {
    process.stderr.write(`plugvisor: ${positionals[0]} is not YAML or JSON: ${(err as Error).message}\n`)
    return 1
  }
  return withApi(async () => {
    const p = await api('POST', '/plugins', manifest) as PluginSummary
    process.stdout.write(table([p]) + '\n')
  })
}

function removeCommand (args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true })
  if (positionals.length !== 1) return Promise.resolve(usageError('remove needs one plugin name'))
  return withApi(async () => {
    await api('DELETE', `/plugins/${encodeURIComponent(positionals[0])}`)
    process.stdout.write(`removed ${positionals[0]}\n`)
  })
}

function configCommand (args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { set: { type: 'string', multiple: true } } })
  const sets = values.set ?? []
  if (positionals.length !== 1 || sets.length === 0) return Promise.resolve(usageError('config needs one plugin name and --set key=value'))
  const changes: Record<string, unknown> = {}
  for (const kv of sets) {
    const eq = kv.indexOf('=')
    if (eq <= 0) return Promise.resolve(usageError(`--set wants key=value, got '${kv}'`))
    const raw = kv.slice(eq + 1)
    let value: unknown = raw
    try { value = JSON.parse(raw) } catch {}
    changes[kv.slice(0, eq)] = value
  }
  const path = `/plugins/${encodeURIComponent(positionals[0])}`
  return withApi(async () => {
    // Sensitive values come back as "[redacted]", which the daemon reads as "keep the current one".
    const { manifest } = await api('GET', path) as { manifest: { config?: Record<string, unknown> } }
    const { config } = await api('PUT', `${path}/config`, { ...(manifest.config ?? {}), ...changes }) as { config: unknown }
    process.stdout.write(JSON.stringify(config, null, 2) + '\n')
  })
}
