// The probes' shared timer: what is due in one grid slot runs together, slots in order, and a
// cycle's next probe is due an interval after the previous one was due.
import t from 'tap'
import { ProbeWheel, nextDue } from '../src/health/probe-wheel.js'
import { PROBE_GRID_MS, probeGridMs } from '../src/health/health-monitor.js'

/** A wheel on a clock moved by hand; `ran` resolves with what one timer callback ran. */
function wheel () {
  const clock = { at: 0, now () { return this.at } }
  let batch: string[] = []
  let waiting: ((ran: string[]) => void) | undefined
  const w = new ProbeWheel<string>((item) => {
    batch.push(item)
    // Everything of one callback runs synchronously: hand it over after them.
    if (batch.length === 1) {
      queueMicrotask(() => {
        const ran = batch
        batch = []
        waiting?.(ran)
      })
    }
  }, clock)
  // The wheel's timer is unref'd (a probe must not keep a daemon alive): hold the loop while a test waits.
  const ran = async (): Promise<string[]> => {
    const hold = setInterval(() => {}, 1000)
    try {
      return await new Promise((resolve) => { waiting = resolve })
    } finally {
      clearInterval(hold)
    }
  }
  return { w, clock, ran }
}

t.test('what is due in one slot runs from one timer callback, in the order added; the earliest slot first', async (t) => {
  const { w, clock, ran } = wheel()
  t.teardown(() => w.clear())
  w.add(30, 20, 'a') // slot 40
  w.add(35, 20, 'b') // slot 40
  w.add(10, 20, 'c') // slot 20
  w.add(100, 20, 'd') // slot 100
  t.equal(w.size(), 4)
  clock.at = 45
  t.same(await ran(), ['c', 'a', 'b'], 'both slots that are due, in one callback')
  t.equal(w.size(), 1, 'the later slot waits')
  clock.at = 100
  t.same(await ran(), ['d'])
  t.equal(w.size(), 0)
})

t.test('an item due in the past runs in the next slot; one added while a slot runs waits for its own', async (t) => {
  const { w, clock, ran } = wheel()
  t.teardown(() => w.clear())
  clock.at = 50
  w.add(5, 20, 'late')
  const first = ran()
  clock.at = 60
  t.same(await first, ['late'])
  w.add(75, 20, 'next')
  clock.at = 80
  t.same(await ran(), ['next'])
})

t.test('an earlier slot added after a later one re-arms the timer for it', async (t) => {
  const { w, clock, ran } = wheel()
  t.teardown(() => w.clear())
  w.add(1000, 20, 'later')
  w.add(15, 20, 'sooner')
  clock.at = 20
  t.same(await ran(), ['sooner'], 'not held back until the later slot')
  t.equal(w.size(), 1)
})

t.test('clear() drops everything scheduled', async (t) => {
  const { w } = wheel()
  w.add(10, 20, 'a')
  w.add(500, 20, 'b')
  w.clear()
  t.equal(w.size(), 0)
})

t.test('the next probe is due an interval after the previous one was due, whatever the grid delayed it by', async (t) => {
  t.equal(nextDue(1000, 1000, 1019), 2000, 'a probe that started 19 ms late does not push the next one back')
  t.equal(nextDue(1000, 1000, 1999), 2000)
  t.equal(nextDue(1000, 1000, 2600), 2600, 'one that ran longer than the interval is followed at once')
})

t.test('items of different grids: each at the first multiple of its own grid', async (t) => {
  const { w, clock, ran } = wheel()
  t.teardown(() => w.clear())
  w.add(12, 50, 'coarse') // 50
  w.add(12, 5, 'fine') // 15
  clock.at = 15
  t.same(await ran(), ['fine'])
  clock.at = 50
  t.same(await ran(), ['coarse'])
})

t.test('a probe is at most PROBE_GRID_MS late, and at most a twentieth of a shorter interval', async (t) => {
  t.equal(probeGridMs(10_000), PROBE_GRID_MS)
  t.equal(probeGridMs(1000), PROBE_GRID_MS)
  t.equal(probeGridMs(100), 5)
  t.equal(probeGridMs(10), 1, 'never under 1 ms')
})
