// A plugin that binds its port late: refused connections before the first passing probe are
// retried soon (BINDING_RETRY_MS), not after a whole interval.
import t from 'tap'
import { build, collectEvents, served, writeConfig } from './helper.js'

t.test('a refused first probe while the plugin is binding is retried sooner than the interval', async (t) => {
  // The first probe comes within 1 s (jitter), before the plugin listens at 1.2 s; the interval is 20 s.
  const app = await build(t, writeConfig([
    served('late', { LISTEN_DELAY_MS: '1200' }, { intervalMs: 20000, initialDelayMs: 0, startup: undefined })
  ]), { boot: false })
  const probes = collectEvents(t, app.daemon.healthMonitor, 'probe')
  const healthy = app.daemon.supervisor.waitFor('late', (s) => s.status === 'healthy', 10000)
  await app.daemon.boot()
  await healthy
  t.ok(probes.some((p) => p.result === 'failure' && /ECONNREFUSED/.test(p.error ?? '')), 'a probe was refused first')
  t.equal(probes.filter((p) => p.result === 'success').length, 1, 'healthy on the first passing probe')
  t.equal(app.daemon.supervisor.summary('late').restartCount, 0, 'the refusals did not count as failures')
})
