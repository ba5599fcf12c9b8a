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
  listening = false // the shutdown at teardown stops every plugin after the test's end
})
