import t from 'tap'
import { build, fixturePlugin, writeConfig } from './helper.js'

t.test('GET /plugins lists loaded plugins and their state', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('one', 'sleep')]), { boot: false })
  await app.daemon.boot()
  const res = await app.inject({ method: 'GET', url: '/plugins' })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.plugins.length, 1)
  t.match(body.plugins[0], { name: 'one', state: 'running', health: 'healthy', status: 'healthy', desired: 'running' })
  t.type(body.plugins[0].pid, 'number')
})

t.test('unknown plugin is a 404 with a stable code', async (t) => {
  const app = await build(t, writeConfig([]), { boot: false })
  for (const [method, url] of [['GET', '/plugins/nope'], ['POST', '/plugins/nope/start'], ['GET', '/plugins/nope/logs'], ['GET', '/plugins/nope/events'], ['POST', '/plugins/restart?plugin=nope']] as const) {
    const res = await app.inject({ method, url })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.equal(res.json().code, 'PLUGVISOR_PLUGIN_NOT_FOUND', `${method} ${url}`)
  }
})
