import t from 'tap'
import { LineSplitter } from '../src/process/line-splitter.js'
import { LogRing } from '../src/process/log-ring.js'

t.test('lines are split across chunks, CRLF trimmed, the rest emitted at end', async (t) => {
  const lines: string[] = []
  const s = new LineSplitter(100, (l) => lines.push(l))
  s.push(Buffer.from('one\ntw'))
  s.push(Buffer.from('o\r\nthr'))
  s.push(Buffer.from('ee'))
  t.same(lines, ['one', 'two'])
  s.end()
  t.same(lines, ['one', 'two', 'three'])
})

t.test('a line longer than the limit is cut and the rest of it dropped', async (t) => {
  const lines: string[] = []
  const s = new LineSplitter(8, (l) => lines.push(l))
  s.push(Buffer.from('abcdefghijkl'))
  s.push(Buffer.from('mnop\nnext\n'))
  t.same(lines, ['abcdefgh', 'next'])
})

t.test('the ring keeps the last lines in order, before and after it wraps', async (t) => {
  const ring = new LogRing(3)
  const line = (n: number) => ({ at: n, stream: 'stdout' as const, line: String(n) })
  t.same(ring.tail(5), [])
  ring.push(line(1))
  ring.push(line(2))
  t.same(ring.tail(5).map((l) => l.line), ['1', '2'])
  t.same(ring.tail(1).map((l) => l.line), ['2'])
  for (const n of [3, 4, 5]) ring.push(line(n))
  t.same(ring.tail(5).map((l) => l.line), ['3', '4', '5'])
  t.same(ring.tail(2).map((l) => l.line), ['4', '5'])
})
