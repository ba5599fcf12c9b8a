// Bad inputs at the edge: every number finite and in range, a body over the limit a 413 on every
// route and method over real HTTP, x-request-id bounded, Proxy-* headers not forwarded, leap
// seconds read.
import t from 'tap'
import { Readable } from 'node:stream'
import type { AddressInfo } from 'node:net'
import { Client } from 'undici'
import { BODY_LIMIT } from '../src/server.js'
import { build, fixturePlugin, outputLine, writeConfig } from './helper.js'

const serve = (name: string) => fixturePlugin(name, 'serve', { port: 'auto' })

async function served (t: Parameters<typeof build>[0]) {
  const app = await build(t, writeConfig([serve('echo')]), { boot: false })
  const listening = outputLine(app.daemon.supervisor, 'echo', /^listening/)
  await app.daemon.boot()
  await listening
  return app
}

t.test('a number that is not finite is a 400 on every route that takes one, never a 500', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('one', 'sleep', { autostart: false })]))
  const urls = [
    '/plugins/one/events?limit=', '/audit?limit=', '/plugins/one/health/history?limit=', '/plugins/one/logs?tail='
  ]
  for (const url of urls) {
    for (const bad of ['1e400', '-1e400', 'Infinity', '-Infinity', 'NaN', '1e309']) {
      const res = await app.inject({ method: 'GET', url: url + bad })
      t.equal(res.statusCode, 400, `${url}${bad}`)
      t.equal(res.json().code, 'PLUGVISOR_VALIDATION', `${url}${bad}: ${res.json().message}`)
    }
  }
  const wait = await app.inject({ method: 'POST', url: '/plugins/one/start?wait=healthy&timeoutMs=1e400' })
  t.equal(wait.statusCode, 400, 'timeoutMs=1e400')
  t.match(wait.json().message, /timeoutMs/)
  const inRange = await app.inject({ method: 'GET', url: '/plugins/one/events?limit=1e3' })
  t.equal(inRange.statusCode, 200, 'a finite number in exponent form is still a number')
})

t.test('a leap second in since/until reads as the second before it', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('one', 'sleep')]))
  await app.inject({ method: 'POST', url: '/plugins/one/restart' })
  const leap = '2016-12-31T23:59:60Z'
  const events = await app.inject({ method: 'GET', url: `/plugins/one/events?since=${leap}` })
  t.equal(events.statusCode, 200)
  t.ok(events.json().events.length > 0, 'events since a past leap second are every event')
  const audit = await app.inject({ method: 'GET', url: `/audit?since=${leap}` })
  t.equal(audit.statusCode, 200)
  t.ok(audit.json().entries.length > 0, 'the restart is in the audit log since then')
  const history = await app.inject({ method: 'GET', url: `/plugins/one/health/history?since=2016-12-31T23:59:59Z&until=${leap}` })
  t.equal(history.statusCode, 200, 'until may be a leap second')
  const offset = await app.inject({ method: 'GET', url: '/plugins/one/events?since=2016-12-31T18:59:60-05:00' })
  t.equal(offset.statusCode, 200)
  t.ok(offset.json().events.length > 0, 'a leap second in another zone as well')
})

t.test('x-request-id: a sane one is kept, an over-long or odd one is replaced by our own', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('one', 'sleep', { autostart: false })]))
  const ok = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8'
  const kept = await app.inject({ method: 'POST', url: '/plugins/one/stop', headers: { 'x-request-id': ok } })
  t.equal(kept.headers['x-request-id'], ok)
  for (const bad of ['x'.repeat(201), 'has space', '"quoted"', 'ünïcode', '<script>', '']) {
    const res = await app.inject({ method: 'POST', url: '/plugins/one/stop', headers: { 'x-request-id': bad } })
    const id = res.headers['x-request-id']
    t.not(id, bad, `${JSON.stringify(bad.slice(0, 20))} is not used`)
    t.match(id, /^req-[0-9a-z]+$/, 'a generated id instead')
  }
  const long = await app.inject({ method: 'POST', url: '/plugins/one/stop', headers: { 'x-request-id': 'y'.repeat(8000) } })
  t.equal(long.statusCode, 200, 'the request itself is served')
  const { entries } = (await app.inject({ method: 'GET', url: '/audit' })).json()
  t.ok(entries.length >= 8)
  for (const e of entries) t.ok(e.requestId.length <= 200, `audit requestId ${e.requestId.slice(0, 20)}… is at most 200 characters`)
  t.ok(entries.some((e: { requestId: string }) => e.requestId === ok), 'the sane id is in the audit log')
})

t.test('Proxy-* and hop-by-hop headers do not reach the plugin', async (t) => {
  const app = await served(t)
  const res = await app.inject({
    method: 'GET',
    url: '/plugins/echo/invoke/x',
    headers: {
      'proxy-authorization': 'Basic c2VjcmV0',
      'proxy-foo': 'bar',
      'proxy-connection': 'keep-alive',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      trailer: 'x-t',
      upgrade: 'h2c',
      connection: 'keep-alive, x-named',
      'x-named': 'gone',
      'x-kept': 'yes'
    }
  })
  t.equal(res.statusCode, 200)
  const seen = res.json().headers as Record<string, string>
  for (const h of ['proxy-authorization', 'proxy-foo', 'proxy-connection', 'keep-alive', 'te', 'trailer', 'upgrade', 'x-named']) t.notOk(h in seen, `${h} is not forwarded`)
  t.equal(seen['x-kept'], 'yes')
})

t.test('a body over the limit is a 413 on every route and method that takes one, over real HTTP, on a connection that stays usable', async (t) => {
  const app = await served(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const client = new Client(`http://127.0.0.1:${port}`)
  t.teardown(() => client.close())
  const doc = app.swagger() as { paths: Record<string, Record<string, unknown>> }
  const big = Buffer.alloc(BODY_LIMIT + 1, 'a')
  let tried = 0
  for (const [template, ops] of Object.entries(doc.paths)) {
    const path = template.replace('{name}', 'echo').replace('{plugin}', 'echo').replace('{*}', 'deep/path')
    for (const method of Object.keys(ops).map((m) => m.toUpperCase())) {
      if (method === 'GET' || method === 'HEAD') continue
      for (const form of ['declared', 'chunked']) {
        const body = form === 'declared' ? big : Readable.from([big.subarray(0, BODY_LIMIT), big.subarray(BODY_LIMIT)])
        const res = await client.request({ method, path, body, headers: { 'content-type': 'application/json' } })
        const text = await res.body.text()
        t.equal(res.statusCode, 413, `${method} ${path} (${form} length)`)
        t.match(text, /"code":"PLUGVISOR_PAYLOAD_TOO_LARGE"/, `${method} ${path} (${form}): ${text.slice(0, 120)}`)
        tried++
      }
    }
  }
  t.ok(tried >= 20, `every body route and method tried (${tried} requests)`)
  const after = await client.request({ method: 'GET', path: '/health/liveness' })
  await after.body.dump()
  t.equal(after.statusCode, 200, 'the same client connection still answers')
  t.equal(app.daemon.supervisor.snapshot('echo').state.name, 'running', 'no refused request changed anything')
})

t.test('invoke: a chunked body far over the limit is a 413 before the plugin sees it, and one within it arrives whole', async (t) => {
  const app = await served(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const client = new Client(`http://127.0.0.1:${port}`)
  t.teardown(() => client.close())
  const chunk = Buffer.alloc(64 * 1024, 'b')
  for (const method of ['POST', 'PATCH', 'PUT']) {
    // 16 MiB in 64 KiB chunks, no Content-Length.
    const res = await client.request({ method, path: '/plugins/echo/invoke/upload', body: Readable.from(Array.from({ length: 256 }, () => chunk)) })
    const text = await res.body.text()
    t.equal(res.statusCode, 413, `${method}: ${text.slice(0, 120)}`)
    t.match(text, /"code":"PLUGVISOR_PAYLOAD_TOO_LARGE"/)
  }
  t.match(app.daemon.invoker.calls('echo'), { total: 0 }, 'no call reached the plugin')
  t.equal(app.daemon.invoker.circuit('echo').state, 'closed', 'and none counted against its circuit')
  const within = await client.request({ method: 'POST', path: '/plugins/echo/invoke/upload', body: Readable.from([chunk, chunk]) })
  const echoed = await within.body.json() as { body: string, headers: Record<string, string> }
  t.equal(within.statusCode, 200, 'the same connection still answers')
  t.equal(echoed.body.length, 2 * chunk.length, 'the whole chunked body reached the plugin')
  t.equal(echoed.headers['content-length'], String(2 * chunk.length), 'with its length')
})
