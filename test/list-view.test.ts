// Supervisor.listView(): the summaries GET /plugins reads, each the same object as the call
// before while nothing it shows changed. Whatever happens to the plugins (starts, crashes and
// backoff, health, the circuit, a config change, loading and unloading), every summary it gives
// is what a fresh one says (uptimeMs aside), and an unchanged plugin's is the same object.
import t from 'tap'
import { build, fixturePlugin, served, waitForEvent, writeConfig } from './helper.js'
import type { PluginSummary } from '../src/supervisor/events.js'

const apartFromUptime = (list: PluginSummary[]) => list.map(({ uptimeMs, ...rest }) => rest)

t.test('listView() says what list() says, through every kind of change', async (t) => {
  const app = await build(t, writeConfig([
    served('web', {}),
    fixturePlugin('crashy', 'crash-after', { args: ['30'], restart: { maxRestarts: 1000, initialDelayMs: 20 } }),
    fixturePlugin('idle', 'sleep', { autostart: false })
  ]), { boot: false })
  const sup = app.daemon.supervisor
  let checks = 0
  const check = (when: string): void => {
    checks++
    const view = sup.listView()
    t.same(apartFromUptime(view), apartFromUptime(sup.list()), when)
    for (const s of view) t.ok(Number.isInteger(s.uptimeMs), `${when}: ${s.name}'s uptimeMs is set`)
  }
  // At every event, as it is emitted (a change half made included) and once it is done.
  let listening = true
  for (const event of ['transition', 'health', 'restart'] as const) {
    sup.on(event, () => {
      if (!listening) return
      check(`at ${event}`)
      queueMicrotask(() => { if (listening) check(`after ${event}`) })
    })
  }

  check('before boot')
  await app.daemon.boot()
  await sup.waitFor('web', (s) => s.status === 'healthy', 10000)
  await waitForEvent(sup, 'restart', (e) => e.plugin === 'crashy')

  const before = sup.listView()
  const again = sup.listView()
  const web = before.findIndex((s) => s.name === 'web')
  t.equal(again[web], before[web], 'a plugin where nothing changed: the same object')

  sup.setCircuit('web', 'open', 'test')
  check('circuit open')
  t.not(sup.listView()[web], before[web], 'a new object once its circuit opened')
  t.equal(sup.listView()[web].health, 'degraded')
  sup.setCircuit('web', 'closed', 'test')
  check('circuit closed')

  await sup.start('idle', 'test')
  await sup.stop('crashy', 'test')
  await sup.restart('web', 'test')
  check('after operations')

  const added = await app.daemon.changes.register(fixturePlugin('added', 'sleep', { config: { level: 1 } }), { start: true, actor: 'test' })
  t.equal(added.state, 'running')
  check('added')
  const viewBefore = sup.listView().find((s) => s.name === 'added')
  await app.daemon.changes.setConfig('added', { level: 2 }, 'test')
  check('config changed')
  t.not(sup.listView().find((s) => s.name === 'added'), viewBefore, 'a new object for the changed plugin')
  await app.daemon.changes.unregister('added', 'test')
  check('unloaded')
  t.notOk(sup.listView().some((s) => s.name === 'added'), 'gone from the view')
  t.ok(checks > 20, `checked at ${checks} moments`)

  // The route's kept JSON follows: every field, a selection with the resources, one without.
  const route = async (query: string) => (await app.inject({ method: 'GET', url: `/plugins${query}` })).json().plugins as Array<Record<string, unknown>>
  const fresh = () => sup.list().map(({ uptimeMs, ...s }) => ({ ...s, resources: app.daemon.resources.usage(s.name) ?? null, fallback: app.daemon.invoker.fallbackState(s.name) }))
  const shown = (list: Array<Record<string, unknown>>) => list.map(({ uptimeMs, resources, ...s }) => ({ ...s, resources: resources === null ? null : { ...(resources as object), sampledAt: Date.parse((resources as { sampledAt: string }).sampledAt) } }))
  for (let round = 0; round < 3; round++) {
    await route('') // kept from here on
    await route('?field=resources&field=state')
    await route('?field=state&field=pid')
    app.daemon.resources.sample()
    sup.setCircuit('web', round % 2 === 0 ? 'open' : 'closed', 'test')
    t.same(shown(await route('')), fresh(), `round ${round}: every field, after a sample and a circuit change`)
    const withResources = await route('?field=resources&field=state')
    t.same(withResources, fresh().map((p) => ({ name: p.name, state: p.state, resources: p.resources === null ? null : { ...p.resources, sampledAt: new Date(p.resources.sampledAt).toISOString() } })), `round ${round}: a selection with the resources`)
    t.same(await route('?field=state&field=pid'), sup.list().map((p) => ({ name: p.name, state: p.state, pid: p.pid })), `round ${round}: one without`)
  }
  listening = false // the shutdown at teardown stops every plugin after the test's end
})
