// What /proc tells: the pid cursor and the pids handed out between two readings of it.
import t from 'tap'
import { openStatFiles, type Tap } from './helper.js'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { StatReader, findTaggedThisTurn, parseProcStat, pidsBetween, readPidCursor, readProcStat, scanProcesses } from '../src/process/proc.js'

const at = (forks: number, lastPid: number, tasks = 100) => ({ forks, lastPid, tasks })

t.test('pidsBetween: the pids after the first reading up to the second one', async (t) => {
  const r = pidsBetween(at(1000, 5000), at(1003, 5004), 4194304)!
  t.equal(r.count, 4)
  t.same([...r.pids()], [5001, 5002, 5003, 5004])
  t.ok(r.has(5001))
  t.ok(r.has(5004))
  t.notOk(r.has(5000), 'the pid handed out before the first reading is not in it')
  t.notOk(r.has(5005))
})

t.test('pidsBetween: across the wrap at pid_max', async (t) => {
  const r = pidsBetween(at(1000, 32760), at(1010, 305), 32768)!
  t.ok(r.has(32767))
  t.ok(r.has(300))
  t.ok(r.has(305))
  t.notOk(r.has(32760))
  t.notOk(r.has(306))
  t.notOk(r.has(20000))
  t.equal(r.count, [...r.pids()].length)
})

t.test('pidsBetween: nothing handed out, and cannot tell once the cursor may have gone a whole round', async (t) => {
  t.equal(pidsBetween(at(1000, 5000), at(1000, 5000), 32768)!.count, 0)
  t.equal(pidsBetween(at(1000, 5000), at(1000 + 32768, 5001), 32768), undefined, 'a whole round of clones')
  t.equal(pidsBetween(at(1000, 5000, 16000), at(2000, 6000, 16000), 32768), undefined, 'few clones, but so many pids in use that the skipped ones may have made the round')
  t.equal(pidsBetween(at(1000, 5000), at(999, 5001), 32768), undefined, 'a counter that went back (another boot, another /proc)')
})

t.test('a process created after a reading of the cursor is among the pids handed out since; one from before is not', async (t) => {
  const before = spawn('sleep', ['30'], { stdio: 'ignore' })
  t.teardown(() => { before.kill('SIGKILL') })
  await once(before, 'spawn')
  const cursor = readPidCursor()
  t.ok(cursor, '/proc/stat and /proc/loadavg are read')
  const child = spawn('sleep', ['30'], { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  await once(child, 'spawn')
  const range = pidsBetween(cursor!, readPidCursor()!, 4194304)
  t.ok(range, 'a handful of clones: the range is known')
  t.ok(range!.has(child.pid!), 'the new process is in the range')
  t.notOk(range!.has(before.pid!), 'the earlier one is not')
  const seen = scanProcesses('/proc', range).map((st) => st.pid)
  t.ok(seen.includes(child.pid!), 'a scan of the range reads it')
  t.notOk(seen.includes(before.pid!), 'and not the earlier one')
})

/** A `sleep` with the one PLUGVISOR_TEST=... entry of `tag` in its environment, killed at teardown. */
async function spawnWithTag (t: Tap, tag: string[]): Promise<number> {
  const c = spawn('sleep', ['30'], { stdio: 'ignore', env: { PATH: process.env.PATH, PLUGVISOR_TEST: tag[0].slice(tag[0].indexOf('=') + 1) } })
  t.teardown(() => { c.kill('SIGKILL') })
  await once(c, 'spawn')
  return c.pid!
}

t.test('a search of tagged processes leaves out the pids it is told to skip, without reading them; the others are found', async (t) => {
  const tag = [`PLUGVISOR_TEST=${process.pid}.${Date.now()}`]
  const spawnTagged = () => spawnWithTag(t, tag)
  const skipped = await spawnTagged()
  const found = await spawnTagged()
  const asked: number[] = []
  const pids = findTaggedThisTurn(tag, () => true, undefined, (pid) => { asked.push(pid); return pid === skipped }).map((st) => st.pid)
  t.same(pids.sort(), [found], 'the skipped pid is not among those found')
  t.ok(asked.includes(skipped) && asked.includes(found), 'every pid of the machine was offered to skip')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(findTaggedThisTurn(tag).map((st) => st.pid).sort((a, b) => a - b), [skipped, found].sort((a, b) => a - b), 'without it, both are found (a new turn reads again)')
})

t.test('the shared search of a turn reads only the processes created since the cursor it is given (the oldest spawn still supervised)', async (t) => {
  const tag = [`PLUGVISOR_TEST=${process.pid}.${Date.now()}.since`]
  const spawnTagged = () => spawnWithTag(t, tag)
  const older = await spawnTagged()
  const cursor = readPidCursor()!
  const newer = await spawnTagged()
  await new Promise((resolve) => setImmediate(resolve))
  t.same(findTaggedThisTurn(tag, () => true, undefined, undefined, cursor).map((st) => st.pid), [newer], 'only the one created since the cursor')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(findTaggedThisTurn(tag).map((st) => st.pid).sort((a, b) => a - b), [older, newer].sort((a, b) => a - b), 'without it, both')
})

t.test('parseProcStat reads the fields after the last parenthesis, whatever the command name holds', async (t) => {
  const line = '4321 (a (b) c) d) S 1 4300 4300 0 -1 4194560 10 0 0 0 17 23 0 0 20 0 1 0 98765 12345678 321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n'
  t.same(parseProcStat(Buffer.from(line)), { pid: 4321, state: 'S', ppid: 1, pgid: 4300, utimeTicks: 17, stimeTicks: 23, startTicks: 98765, rssPages: 321 })
  t.equal(parseProcStat(Buffer.from('4321 (x) S 1 4300')), undefined, 'a cut line')
  t.equal(parseProcStat(Buffer.from('no parenthesis')), undefined)
  t.equal(parseProcStat(Buffer.from(line), 0), undefined, 'nothing read')
  t.equal(parseProcStat(Buffer.from(line + line), line.indexOf(' 12345678')), undefined, 'only the bytes read count, not what follows them in the buffer')
  const self = readProcStat(process.pid)!
  t.equal(self.pid, process.pid)
  t.equal(self.ppid, process.ppid)
  t.ok(self.startTicks > 0 && self.rssPages > 0)
})

t.test('a StatReader keeps the file of a process open and reads it again; once the process is reaped the file is closed', async (t) => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  await once(child, 'spawn')
  const pid = child.pid!
  const reader = new StatReader('/proc', 10)
  t.teardown(() => reader.close())
  t.equal(reader.read(pid)?.pid, pid, 'read')
  t.equal(reader.openFiles, 1, 'its file stays open')
  t.same(openStatFiles(), [`/proc/${pid}/stat`], 'one descriptor, on that process\'s stat file')
  t.equal(reader.read(pid)?.pid, pid, 'read again from the open file')
  t.equal(openStatFiles().length, 1, 'no second descriptor')
  child.kill('SIGKILL')
  await once(child, 'exit')
  t.equal(reader.read(pid), undefined, 'reaped: no such process')
  t.equal(reader.openFiles, 0, 'its file is closed')
  t.same(openStatFiles(), [], 'nothing left open')
})

t.test('a StatReader keeps no more files than it is allowed, nor those it is told not to keep; retain and close close them', async (t) => {
  const kids = await Promise.all([0, 1, 2].map(async () => {
    const c = spawn('sleep', ['30'], { stdio: 'ignore' })
    t.teardown(() => { c.kill('SIGKILL') })
    await once(c, 'spawn')
    return c.pid!
  }))
  const reader = new StatReader('/proc', 2)
  t.teardown(() => reader.close())
  for (const pid of kids) t.equal(reader.read(pid)?.pid, pid)
  t.equal(reader.openFiles, 2, 'two kept, the third read and closed')
  t.equal(reader.read(kids[2])?.pid, kids[2], 'the third still reads')
  t.equal(openStatFiles().length, 2)
  reader.retain(new Set([kids[0]]))
  t.same(openStatFiles(), [`/proc/${kids[0]}/stat`], 'retain closes the others')
  t.equal(reader.read(kids[1], () => false)?.pid, kids[1], 'read, not to be kept')
  t.equal(reader.openFiles, 1)
  reader.close()
  t.same(openStatFiles(), [], 'close closes every one')
  t.equal(new StatReader('/proc', 0).read(process.pid)?.pid, process.pid, 'a reader that keeps none reads all the same')
  t.same(openStatFiles(), [])
})
