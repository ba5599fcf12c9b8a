// Health history on a real SQLite file with an injected clock: batched rows, rollups, retention
// in chunks, stats and trend; then the HTTP routes on a real probed plugin.
import t from 'tap'
import { openDatabase } from '../src/store/database.js'
import { createHealthHistory } from '../src/health/health-history.js'
import { createHealthStore } from '../src/store/health-store.js'
import type { ProbeEvent } from '../src/health/probes.js'
import { type Tap, build, served, tempDir, waitForEvent, writeConfig } from './helper.js'

const MIN = 60_000
const HOUR = 60 * MIN
const T0 = Date.UTC(2025, 0, 1, 10, 0, 0)

function setup (t: Tap, pruneChunk = 1000) {
  const db = openDatabase(tempDir())
  t.teardown(() => db.close())
  const clock = { ms: T0, now () { return this.ms } }
  const history = createHealthHistory(createHealthStore(db), { clock, flushIntervalMs: 1000, rawRetentionHours: 1, rollupRetentionDays: 1, pruneChunk })
  const ev = (at: number, result: ProbeEvent['result'], durationMs: number, plugin = 'web'): ProbeEvent =>
    ({ plugin, probe: 'http', phase: 'regular', result, durationMs, at, ...(result === 'failure' ? { error: 'HTTP 500' } : {}) })
  return { db, clock, history, ev }
}

t.test('results are buffered and written at flush, in one transaction, with minute and hour rollups', async (t) => {
  const { db, history, ev } = setup(t)
  history.record(ev(T0 + 1000, 'success', 10))
  history.record(ev(T0 + 2000, 'failure', 30))
  history.record(ev(T0 + MIN + 5, 'warn', 20))
  history.record(ev(T0 + 3000, 'success', 5, 'other'))
  t.equal((db.prepare('SELECT count(*) AS n FROM health_checks').get() as { n: number }).n, 0, 'nothing written before the flush')
  t.equal(history.pending(), 4)
  t.equal(history.flush(), 4)
  t.equal(history.pending(), 0)
  t.equal(history.flush(), 0, 'an empty flush writes nothing')

  const raw = history.query('web', { since: T0, until: T0 + HOUR, limit: 10, resolution: 'raw' }).checks!
  t.same(raw.map((r) => [r.at - T0, r.result, r.durationMs, r.error]), [[MIN + 5, 'warn', 20, null], [2000, 'failure', 30, 'HTTP 500'], [1000, 'success', 10, null]], 'newest first')
  t.equal(history.query('web', { since: T0, until: T0 + HOUR, limit: 1, resolution: 'raw' }).checks!.length, 1, 'limit')

  const minutes = history.query('web', { since: T0, until: T0 + HOUR, limit: 10, resolution: 'minute' }).buckets!
  t.same(minutes, [
    { at: T0 + MIN, count: 1, failures: 0, warnings: 1, minMs: 20, avgMs: 20, maxMs: 20 },
    { at: T0, count: 2, failures: 1, warnings: 0, minMs: 10, avgMs: 20, maxMs: 30 }
  ])
  // A later flush into the same buckets adds to them.
  history.record(ev(T0 + 4000, 'success', 2))
  history.flush()
  const hours = history.query('web', { since: T0, until: T0 + HOUR, limit: 10, resolution: 'hour' }).buckets!
  t.same(hours, [{ at: T0, count: 4, failures: 1, warnings: 1, minMs: 2, avgMs: 15.5, maxMs: 30 }])
  t.equal(history.query('other', { since: T0, until: T0 + HOUR, limit: 10, resolution: 'hour' }).buckets!.length, 1, 'per plugin')
})

t.test('a flush is all or nothing: one bad row rolls the whole batch back', async (t) => {
  const db = openDatabase(tempDir())
  t.teardown(() => db.close())
  const errors: Error[] = []
  const history = createHealthHistory(createHealthStore(db), { flushIntervalMs: 1000, rawRetentionHours: 1, rollupRetentionDays: 1, onError: (e) => errors.push(e) })
  history.record({ plugin: 'web', probe: 'http', phase: 'regular', result: 'success', durationMs: 1, at: T0 })
  history.record({ plugin: 'web', probe: 'bogus' as 'http', phase: 'regular', result: 'success', durationMs: 1, at: T0 + 1 })
  t.equal(history.flush(), 0)
  t.equal(errors.length, 1)
  t.equal((db.prepare('SELECT count(*) AS n FROM health_checks').get() as { n: number }).n, 0, 'the good row was rolled back with the bad one')
  t.equal((db.prepare('SELECT count(*) AS n FROM health_rollups').get() as { n: number }).n, 0)
})

t.test('retention: raw results after rawRetentionHours, rollups after rollupRetentionDays, pruned in chunks', async (t) => {
  const { db, clock, history, ev } = setup(t, 2)
  for (let i = 0; i < 5; i++) history.record(ev(T0 + i * 1000, 'success', 1))
  history.flush()
  const count = (sql: string): number => (db.prepare(sql).get() as { n: number }).n
  clock.ms = T0 + 30 * MIN
  t.equal(history.prune(), 0, 'nothing expired yet')
  clock.ms = T0 + HOUR + 10_000
  t.equal(history.prune(), 2, 'at most one chunk per statement')
  t.equal(count('SELECT count(*) AS n FROM health_checks'), 3)
  t.equal(history.prune(), 2)
  t.equal(history.prune(), 1)
  t.equal(history.prune(), 0)
  t.equal(count('SELECT count(*) AS n FROM health_checks'), 0, 'raw results gone')
  t.equal(count('SELECT count(*) AS n FROM health_rollups'), 2, 'rollups are kept longer')
  clock.ms = T0 + 24 * HOUR + MIN
  t.equal(history.prune(), 2, 'the minute and the hour rollup expire')
  t.equal(count('SELECT count(*) AS n FROM health_rollups'), 0)
})

t.test('the flush timer prunes after every flush while there is a backlog, else once a minute', async (t) => {
  const { db, clock, history, ev } = setup(t, 2)
  const count = (): number => (db.prepare('SELECT count(*) AS n FROM health_checks').get() as { n: number }).n
  for (let i = 0; i < 5; i++) history.record(ev(T0 + i * 1000, 'success', 1))
  clock.ms = T0 + HOUR + 10_000
  history.tick()
  t.equal(count(), 3, 'the first tick flushes, then prunes a chunk')
  history.tick()
  t.equal(count(), 1, 'a whole chunk went: the next tick prunes again')
  history.tick()
  t.equal(count(), 0, 'and again, until less than a chunk is left')
  for (let i = 0; i < 3; i++) history.record(ev(T0 + 10 * 1000 + i, 'success', 1))
  clock.ms += 1000
  history.tick()
  t.equal(count(), 3, 'caught up: expired rows wait')
  clock.ms += 58_000
  history.tick()
  t.equal(count(), 3, 'still within the minute')
  clock.ms += 1000
  history.tick()
  t.equal(count(), 1, 'a minute after the last prune, the next one')
  history.tick()
  t.equal(count(), 0, 'a whole chunk again: right after it, the rest')
})

t.test('stats over the retained rollups plus the buffer, and the trend rule', async (t) => {
  const { clock, history, ev } = setup(t)
  t.match(history.stats('web'), { totalChecks: 0, successRate: 0, errorRate: 0, avgResponseTimeMs: 0, trend: 'stable' })
  // 10 minutes ago to 5 minutes ago: all pass. Last 5 minutes: all fail.
  clock.ms = T0 + 60 * MIN
  for (let i = 0; i < 4; i++) history.record(ev(clock.ms - 9 * MIN + i * MIN, 'success', 10))
  history.flush()
  for (let i = 0; i < 4; i++) history.record(ev(clock.ms - 4 * MIN + i * MIN, 'failure', 30))
  const s = history.stats('web')
  t.match(s, { totalChecks: 8, successRate: 0.5, errorRate: 0.5, avgResponseTimeMs: 20, trend: 'degrading' }, 'buffered results count too')
  history.flush()
  // Ten minutes later the failing window is the previous one and everything passes again.
  clock.ms += 5 * MIN
  for (let i = 0; i < 4; i++) history.record(ev(clock.ms - 4 * MIN + i * MIN, 'success', 10))
  t.equal(history.stats('web').trend, 'improving')
  clock.ms += 30 * MIN
  t.equal(history.stats('web').trend, 'stable', 'too few results in the windows')
})

t.test('GET /plugins/:name/health/history and stats on GET /plugins/:name, from a real probed plugin', async (t) => {
  const app = await build(t, writeConfig([
    served('web', { HEALTH: 'pass' })
  ], { history: { flushIntervalMs: 60000 } }), { boot: false })
  let seen = 0
  const three = waitForEvent(app.daemon.healthMonitor, 'probe', (e) => e.plugin === 'web' && e.result === 'success' && ++seen >= 3)
  await app.daemon.boot()
  await three
  let res = await app.inject({ url: '/plugins/web' })
  t.equal(res.statusCode, 200)
  t.ok(res.json().stats.totalChecks >= 3, 'stats include results not flushed yet')
  t.type(res.json().stats.uptimeMs, 'number')
  t.equal(res.json().trend, 'stable')

  app.daemon.healthHistory.flush()
  res = await app.inject({ url: '/plugins/web/health/history?limit=2' })
  t.equal(res.statusCode, 200)
  t.equal(res.json().resolution, 'raw')
  t.equal(res.json().checks.length, 2)
  t.match(res.json().checks[0], { probe: 'http', result: 'success', error: null })
  t.ok(Date.parse(res.json().checks[0].at) >= Date.parse(res.json().checks[1].at), 'newest first')

  res = await app.inject({ url: '/plugins/web/health/history?resolution=minute' })
  t.equal(res.statusCode, 200)
  t.ok(res.json().buckets[0].count >= 3)
  res = await app.inject({ url: `/plugins/web/health/history?until=${new Date(Date.now() - 3_600_000).toISOString()}` })
  t.same(res.json().checks, [], 'until bounds the range')
  res = await app.inject({ url: '/plugins/web/health/history?resolution=day' })
  t.equal(res.statusCode, 400)
  res = await app.inject({ url: '/plugins/nope/health/history' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'PLUGVISOR_PLUGIN_NOT_FOUND')
})
