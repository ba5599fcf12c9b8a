// The trend rule (src/health/trend.ts): probes and calls, failure share and latency, of the last
// 5 minutes against the 5 before. Pure functions and the call windows of the statistics, with
// times given (an injected clock), no sleeps; then the health history putting both together.
import t from 'tap'
import { TREND_MIN_CALLS, trendOf, windowsOf, type TrendWindows, type WindowCounts } from '../src/health/trend.js'
import { CallStatsRecord } from '../src/invoke/call-stats.js'
import { createHealthHistory } from '../src/health/health-history.js'
import { createHealthStore } from '../src/store/health-store.js'
import { openDatabase } from '../src/store/database.js'
import { tempDir } from './helper.js'

const MIN = 60_000
const T0 = Date.UTC(2026, 11, 1, 15, 0, 0)

/** n results (or calls), `failed` of them failures, every one timed at `ms`. */
const win = (n: number, failed: number, ms = 10): WindowCounts => ({ count: n, failures: failed, timed: n, sumMs: n * ms })
const windows = (previous: WindowCounts, recent: WindowCounts): TrendWindows => ({ previous, recent })
const none = windows(win(0, 0), win(0, 0))

t.test('probes alone: failure share moves by more than 10 points, or nothing to say', async (t) => {
  t.equal(trendOf(windows(win(10, 0), win(10, 5))), 'degrading')
  t.equal(trendOf(windows(win(10, 5), win(10, 0))), 'improving')
  t.equal(trendOf(windows(win(10, 1), win(10, 2))), 'stable', 'within 10 points')
  t.equal(trendOf(windows(win(2, 0), win(10, 10))), 'stable', 'too few results before')
  t.equal(trendOf(windows(win(10, 0), win(2, 2))), 'stable', 'too few results now')
  t.equal(trendOf(none, none), 'stable', 'nothing at all')
})

t.test('latency: at least 1.5 times and 5 ms slower is degrading, the reverse improving', async (t) => {
  t.equal(trendOf(windows(win(10, 0, 10), win(10, 0, 20))), 'degrading', '10 -> 20 ms')
  t.equal(trendOf(windows(win(10, 0, 20), win(10, 0, 10))), 'improving', '20 -> 10 ms')
  t.equal(trendOf(windows(win(10, 0, 2), win(10, 0, 4))), 'stable', 'twice as slow but only 2 ms more: noise on loopback')
  t.equal(trendOf(windows(win(10, 0, 100), win(10, 0, 140))), 'stable', '40 % slower is not 1.5 times')
  t.equal(trendOf(windows(win(10, 0, 100), win(10, 0, 150))), 'degrading', 'exactly 1.5 times')
  const untimed: WindowCounts = { count: 10, failures: 10, timed: 0, sumMs: 0 }
  t.equal(trendOf(windows(win(10, 10), win(10, 10)), windows(win(20, 0, 5), untimed)), 'degrading', 'refused calls carry no latency, but their failures count')
})

t.test('calls weigh like probes, with at least 10 calls in each window; any degrading signal wins', async (t) => {
  const steady = windows(win(10, 0), win(10, 0))
  t.equal(trendOf(steady, windows(win(20, 0), win(20, 10))), 'degrading', 'probes pass, half the calls fail')
  t.equal(trendOf(steady, windows(win(20, 10), win(20, 0))), 'improving', 'calls recovered')
  t.equal(trendOf(steady, windows(win(20, 0, 10), win(20, 0, 40))), 'degrading', 'calls slowed down')
  t.equal(trendOf(steady, windows(win(TREND_MIN_CALLS - 1, 0), win(20, 20))), 'stable', 'too few calls before')
  t.equal(trendOf(windows(win(10, 5), win(10, 0)), windows(win(20, 0, 10), win(20, 0, 40))), 'degrading', 'probes improve, calls slow down: degrading')
  t.equal(trendOf(windows(win(10, 5), win(10, 0)), windows(win(20, 0), win(20, 1))), 'improving', 'probes improve, calls steady')
})

t.test('a minute bucket belongs to the window that holds its middle', async (t) => {
  const now = T0
  const at = (minutesAgo: number) => ({ at: now - minutesAgo * MIN + 30_000, count: 1, failures: 0, timed: 1, sumMs: 1 })
  const w = windowsOf(now, [at(1), at(5), at(6), at(10), at(11)])
  t.equal(w.recent.count, 2, 'the buckets starting 1 and 5 minutes ago (middles 30 s and 4.5 min ago)')
  t.equal(w.previous.count, 2, 'those starting 6 and 10 minutes ago')
  const exact = windowsOf(now, [{ at: now, count: 1, failures: 1, timed: 0, sumMs: 0 }, { at: now - 5 * MIN, count: 1, failures: 0, timed: 1, sumMs: 3 }])
  t.same(exact.recent, { count: 2, failures: 1, timed: 1, sumMs: 3 }, 'exact times: the window start belongs to the recent window')
})

t.test('the call statistics keep the calls of the last minutes by minute, in place', async (t) => {
  const rec = new CallStatsRecord()
  // 10 to 6 minutes before T0: 4 fast successes a minute; the last 5 minutes: half fail, slower.
  for (let m = 10; m > 5; m--) for (let i = 0; i < 4; i++) rec.record('succeeded', 10, T0 - m * MIN + i * 1000)
  for (let m = 5; m > 0; m--) {
    rec.record('succeeded', 30, T0 - m * MIN)
    rec.record('failed', 30, T0 - m * MIN + 1000, 'answered 500', 500)
    rec.record('rejected', 0, T0 - m * MIN + 2000, 'circuit open')
    rec.record('rejected', 0, T0 - m * MIN + 3000, 'circuit open')
  }
  const w = rec.windows(T0)
  t.same(w.previous, { count: 20, failures: 0, timed: 20, sumMs: 200 })
  t.same(w.recent, { count: 20, failures: 15, timed: 10, sumMs: 300 }, 'refusals count as failures, not in the latency')
  t.equal(trendOf(windows(win(0, 0), win(0, 0)), w), 'degrading')
  t.equal(trendOf(none, rec.windows(T0 + 10 * MIN)), 'stable', 'ten minutes later the bad window is the previous one, the recent is empty')
  // A slot of the ring is reused for the same minute of the next round, starting from zero.
  rec.record('succeeded', 5, T0 + 11 * MIN)
  t.same(rec.windows(T0 + 11 * MIN + 1).recent, { count: 1, failures: 0, timed: 1, sumMs: 5 })
  t.equal(rec.view('p').total, 41, 'the totals keep counting')
})

t.test('GET /plugins/:name\'s trend: the health history puts probes and calls together', async (t) => {
  const db = openDatabase(tempDir())
  t.teardown(() => db.close())
  const clock = { ms: T0, now () { return this.ms } }
  const history = createHealthHistory(createHealthStore(db), { clock, flushIntervalMs: 1000, rawRetentionHours: 1, rollupRetentionDays: 1 })
  for (let m = 10; m > 0; m--) history.record({ plugin: 'web', probe: 'http', phase: 'regular', result: 'success', durationMs: 2, at: T0 - m * MIN })
  history.flush()
  const calls = new CallStatsRecord()
  for (let m = 10; m > 0; m--) for (let i = 0; i < 5; i++) calls.record(m > 5 ? 'succeeded' : 'failed', 4, T0 - m * MIN + i)
  t.equal(history.stats('web').trend, 'stable', 'the probes alone say nothing changed')
  let asked = 0
  t.equal(history.stats('web', (now) => { asked = now; return calls.windows(now) }).trend, 'degrading', 'the calls do')
  t.equal(asked, T0, 'the calls are taken at the clock\'s moment')
})
