// 200 GET /events clients on real loopback sockets that never read, while the daemon (its own
// process) produces events: its memory stays bounded, liveness keeps answering, one client too
// many is refused, and a place frees up when they hang up. (The drop of one stalled client at
// its cap, over a real socket, is in events.test.ts.) The harness is
// bench/sse-stall.js, which also times liveness for `npm run bench`; nothing here is timed.
import t from 'tap'
import { sseStall } from '../bench/sse-stall.js'

t.setTimeout(120000)

t.test('200 stalled event-stream clients do not freeze the daemon', async (t) => {
  const r = await sseStall({ clients: 200, produceMs: 10000 })
  t.comment(JSON.stringify(r))
  t.ok(r.eventsProduced > 100, `events were produced (${r.eventsProduced})`)
  t.equal(r.refused.status, 503, 'client 201 is refused')
  t.equal(r.refused.code, 'PLUGVISOR_EVENT_STREAM_FULL')
  t.equal(r.refused.retryAfter, '10', 'with Retry-After')
  t.equal(r.connectedAtEnd, 200, 'the stalled clients held their places while events flowed')
  // 200 clients x events.maxBufferedBytes (256 KiB) is 50 MiB at most; before, each could hold 1 MiB in 4 writes per event.
  t.ok(r.peakRssMb - r.baselineRssMb < 100, `resident memory grew ${Math.round(r.peakRssMb - r.baselineRssMb)} MiB (${r.baselineRssMb} -> peak ${r.peakRssMb})`)
  t.ok(r.liveness.n > 0, `liveness answered ${r.liveness.n} times`)
  t.equal(r.liveness.failed, 0, 'and never failed')
  t.equal(r.reconnectStatus, 200, 'once they are gone, a new client is accepted')
})
