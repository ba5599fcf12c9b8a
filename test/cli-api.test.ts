// The command line's API client (src/cli.cts api()): one HTTP/1.0 request over node:net for an
// http:// address. Against a real daemon for the token and the daemon's answers; against a
// scripted TCP server for the answers a daemon never gives (cut short, not HTTP, chunked).
import t from 'tap'
import { createServer, type Socket } from 'node:net'
import cli from '../src/cli.cjs'
const { api, CliError } = cli
import { build, fixturePlugin, tempDir, writeConfig, type Tap } from './helper.js'

const ADMIN = 'cli-admin-token-0123456789abcdef'

/** Sets PLUGVISOR_URL (and PLUGVISOR_TOKEN) for the calls of this test. */
function target (t: Tap, url: string, token?: string): void {
  const before = { url: process.env.PLUGVISOR_URL, token: process.env.PLUGVISOR_TOKEN }
  process.env.PLUGVISOR_URL = url
  if (token === undefined) delete process.env.PLUGVISOR_TOKEN
  else process.env.PLUGVISOR_TOKEN = token
  t.teardown(() => {
    for (const [k, v] of [['PLUGVISOR_URL', before.url], ['PLUGVISOR_TOKEN', before.token]] as const) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  })
}

/**
 * A TCP server on 127.0.0.1 that hands each connection's request text (once its head is in) to
 * `answer`, which writes what it likes; resolves to its base URL and the requests it saw.
 */
async function scripted (t: Tap, answer: (socket: Socket, request: string) => void): Promise<{ url: string, requests: string[] }> {
  const requests: string[] = []
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    let text = ''
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      if (end < 0) return
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(text)?.[1] ?? 0)
      if (text.length < end + 4 + length) return
      requests.push(text)
      answer(socket, text)
    })
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, requests }
}

async function rejection (p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('resolved')
}

t.test('against the daemon: the token as a bearer token, error answers with their status and code, a body sent with its length', async (t) => {
  const dir = tempDir()
  const app = await build(t, writeConfig([fixturePlugin('p', 'sleep', { autostart: false })], {
    auth: { mode: 'tokens', tokens: [{ name: 'ops', role: 'admin', tokenEnv: 'PV_CLI_ADMIN' }] }
  }, dir), { boot: false, env: { PV_CLI_ADMIN: ADMIN } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

  target(t, url)
  const none = await rejection(api('GET', '/plugins'))
  t.ok(none instanceof CliError, 'a CliError (printed without a stack)')
  t.match(none.message, /^401 PLUGVISOR_UNAUTHORIZED: /)

  target(t, url, ADMIN)
  const list = await api('GET', '/plugins?field=state') as { plugins: unknown[] }
  t.same(list, { plugins: [{ name: 'p', state: 'stopped' }] }, 'with the token')
  const missing = await rejection(api('POST', '/plugins/nope/start'))
  t.match(missing.message, /^404 PLUGVISOR_PLUGIN_NOT_FOUND: plugin 'nope'/)
  // A body with non-ASCII text: its length is counted in bytes.
  const added = await api('POST', '/plugins?start=false', fixturePlugin('q', 'sleep', { description: 'grüße ☃' })) as { name: string, description: string }
  t.match(added, { name: 'q', description: 'grüße ☃' })
  t.equal(app.daemon.supervisor.summary('q').description, 'grüße ☃')

  target(t, url, `${ADMIN}\r\nx-injected: 1`)
  const broken = await rejection(api('GET', '/plugins'))
  t.ok(broken instanceof CliError)
  t.match(broken.message, /PLUGVISOR_TOKEN/, 'a token that would end the header line is refused before sending')
})

t.test('the request: HTTP/1.0, the host as in the address, the headers, a body with its length', async (t) => {
  const { url, requests } = await scripted(t, (socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}'))
  target(t, url, 'tok-0123456789abcdef')
  await api('POST', '/plugins/start?all=true&plugin=a%20b', { x: 'é' })
  const [head, body] = requests[0].split('\r\n\r\n')
  const lines = head.split('\r\n')
  t.equal(lines[0], 'POST /plugins/start?all=true&plugin=a%20b HTTP/1.0')
  t.same(new Set(lines.slice(1)), new Set([
    `host: ${new URL(url).host}`, 'accept: application/json', 'content-type: application/json', 'authorization: Bearer tok-0123456789abcdef', 'content-length: 10'
  ]))
  t.equal(Buffer.from(body, 'latin1').toString('utf8'), '{"x":"é"}')
})

t.test('an answer in many pieces: framed by its length (the connection kept open), or by the end of the connection', async (t) => {
  const big = JSON.stringify({ plugins: Array.from({ length: 3000 }, (_, i) => ({ name: `p${i}`, note: 'ü'.repeat(20) })) })
  const bytes = Buffer.from(big)
  const pieces = (socket: Socket, data: Buffer, end: boolean): void => {
    let at = 0
    const next = (): void => {
      if (at >= data.length) { if (end) socket.end(); return }
      // Cut anywhere, inside a UTF-8 sequence too.
      socket.write(data.subarray(at, at += 7777), next)
    }
    next()
  }
  const framed = await scripted(t, (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: ${bytes.length}\r\n\r\n`)
    pieces(socket, bytes, false) // stays open: the length ends the answer
  })
  target(t, framed.url)
  t.same(await api('GET', '/plugins'), JSON.parse(big), 'by its length')

  const closed = await scripted(t, (socket) => {
    socket.write('HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n')
    pieces(socket, bytes, true)
  })
  target(t, closed.url)
  t.same(await api('GET', '/plugins'), JSON.parse(big), 'by the end of the connection')
})

t.test('answers a daemon never gives are clear errors, not a hang or a stack trace', async (t) => {
  const cases: Array<[string, (socket: Socket) => void, RegExp]> = [
    ['cut short', (s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"plug'), /closed the connection after 6 of 100 bytes/],
    ['no head', (s) => s.end('HTTP/1.1 200 OK\r\ncontent-'), /closed the connection before its answer's head was complete/],
    ['not HTTP', (s) => s.end('SSH-2.0-OpenSSH_9.2\r\n\r\n'), /did not answer in HTTP: "SSH-2.0-OpenSSH_9.2"/],
    ['chunked', (s) => s.end('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n'), /transfer-encoding chunked/],
    ['bad length', (s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n{}'), /invalid content-length: "-1"/],
    ['closed at once', (s) => s.destroy(), /closed the connection before its answer's head was complete|cannot reach plugvisor/],
    ['not JSON', (s) => s.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 11\r\n\r\nbad gateway'), /^502 : bad gateway$/]
  ]
  for (const [what, answer, message] of cases) {
    const { url } = await scripted(t, answer)
    target(t, url)
    const err = await rejection(api('GET', '/plugins'))
    t.ok(err instanceof CliError, `${what}: a CliError`)
    t.match(err.message, message, what)
  }
  target(t, 'ftp://127.0.0.1:21')
  t.match((await rejection(api('GET', '/plugins'))).message, /http:\/\/ or https:\/\//, 'another scheme')
})
