// The resource sampler's /proc reading: members, leaders and new pids at each tick, all of /proc
// at the first one and then at least every fullScanEveryMs.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { FORCED_AFTER, createGroupScan } from '../src/resources/group-scan.js'
import { openStatFiles as openStatFilesNow, tempDir } from './helper.js'

/** A /proc stand-in: a stat line per process, and the pid cursor (/proc/stat, /proc/loadavg). */
function fakeProc () {
  const root = tempDir()
  mkdirSync(path.join(root, 'sys/kernel'), { recursive: true })
  writeFileSync(path.join(root, 'sys/kernel/pid_max'), '4194304\n')
  let forks = 1000
  let lastPid = 10
  const cursor = (): void => {
    writeFileSync(path.join(root, 'stat'), `cpu  1 2 3 4\nctxt 5\nprocesses ${forks}\nprocs_running 1\n`)
    writeFileSync(path.join(root, 'loadavg'), `0.00 0.00 0.00 1/200 ${lastPid}\n`)
  }
  cursor()
  const put = (pid: number, pgid: number, rssPages = 10): void => {
    mkdirSync(path.join(root, String(pid)), { recursive: true })
    // Fields 1-24 of proc(5): pid (comm) state ppid pgrp session ... utime(14) stime(15) ... starttime(22) vsize rss(24)
    writeFileSync(path.join(root, String(pid), 'stat'), `${pid} (p) S 1 ${pgid} ${pgid} 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 ${pid} 1000 ${rssPages} 0\n`)
  }
  return {
    root,
    put,
    /** A process created now: its pid is the next the cursor hands out. */
    fork: (pid: number, pgid: number, rssPages = 10): void => { forks++; lastPid = pid; cursor(); put(pid, pgid, rssPages) },
    // An open stat file of a process that ended reads nothing (the real /proc's read fails).
    exit: (pid: number): void => {
      try { writeFileSync(path.join(root, String(pid), 'stat'), '') } catch {}
      rmSync(path.join(root, String(pid)), { recursive: true, force: true })
    },
    noCursor: (): void => { rmSync(path.join(root, 'loadavg')) }
  }
}

const pids = (rows: { pid: number }[]): number[] => rows.map((r) => r.pid).sort((a, b) => a - b)

t.test('after the first tick only members, leaders and processes created since are read', async (t) => {
  const proc = fakeProc()
  let now = 0
  const scan = createGroupScan({ procRoot: proc.root, fullScanEveryMs: 60_000, now: () => now })
  proc.put(5, 5) // some older process of no plugin
  t.same(scan({ groups: new Set(), leaders: [] }), [], 'no group watched: nothing read')
  proc.fork(20, 20) // a plugin's leader
  proc.fork(21, 21) // another process of the machine, started after it
  now += 5000
  t.same(pids(scan({ groups: new Set([20]), leaders: [20] })), [20, 21], 'the leader and what was created since')
  proc.fork(22, 20) // the plugin forks a worker
  proc.put(5, 5, 99)
  now += 5000
  const rows = scan({ groups: new Set([20]), leaders: [20] })
  t.same(pids(rows), [20, 22], 'the member of the last tick and the new one; not the machine\'s older processes')
  proc.exit(22)
  now += 5000
  t.same(pids(scan({ groups: new Set([20]), leaders: [20] })), [20], 'a member that ended is gone')
})

t.test('a tick after which no pid was handed out reads the members again, changed, and no other process', async (t) => {
  const proc = fakeProc()
  let now = 0
  const scan = createGroupScan({ procRoot: proc.root, fullScanEveryMs: 60_000, now: () => now })
  t.teardown(() => scan.close())
  scan({ groups: new Set(), leaders: [] })
  proc.fork(60, 60)
  proc.fork(61, 60)
  now += 5000
  t.same(pids(scan({ groups: new Set([60]), leaders: [60] })), [60, 61])
  proc.put(61, 60, 77) // the member's memory grew
  proc.put(62, 60) // not created since (no fork): not read
  now += 5000
  const rows = scan({ groups: new Set([60]), leaders: [60] })
  t.same(pids(rows), [60, 61], 'the members only')
  t.equal(rows.find((p) => p.pid === 61)?.rssPages, 77, 'read as it is now')
  proc.exit(61)
  now += 5000
  t.same(pids(scan({ groups: new Set([60]), leaders: [60] })), [60], 'a member that ended is gone')
})

t.test('an older process moved into a watched group is found by the next full scan', async (t) => {
  const proc = fakeProc()
  let now = 0
  const scan = createGroupScan({ procRoot: proc.root, fullScanEveryMs: 60_000, now: () => now })
  scan({ groups: new Set(), leaders: [] })
  proc.fork(30, 30)
  proc.fork(31, 31) // a descendant in a group of its own
  now += 5000
  scan({ groups: new Set([30]), leaders: [30] })
  proc.put(31, 30) // setpgid(31, 30)
  now += 5000
  t.notOk(scan({ groups: new Set([30]), leaders: [30] }).some((p) => p.pid === 31), 'not seen between full scans')
  now += 60_000
  t.notOk(scan({ groups: new Set([30]), leaders: [30] }).some((p) => p.pid === 31), 'not at a busy tick a minute later')
  const found = scan({ groups: new Set([30]), leaders: [30], quiet: true }).find((p) => p.pid === 31)
  t.equal(found?.pgid, 30, 'seen in the group at the next quiet tick')
})

t.test('without a quiet tick the full scan comes FORCED_AFTER times fullScanEveryMs after the last one', async (t) => {
  const proc = fakeProc()
  let now = 0
  const scan = createGroupScan({ procRoot: proc.root, fullScanEveryMs: 60_000, now: () => now })
  scan({ groups: new Set(), leaders: [] })
  proc.fork(50, 50)
  proc.put(7, 50) // an older process in the group, never created since a tick
  now += 5000
  const busy = { groups: new Set([50]), leaders: [50] }
  t.same(pids(scan(busy)), [50])
  now = FORCED_AFTER * 60_000 - 1
  t.same(pids(scan(busy)), [50], 'not yet')
  now += 1
  t.same(pids(scan(busy)), [7, 50], 'then all of /proc')
})

t.test('when the pids handed out cannot be told, a tick reads all of /proc', async (t) => {
  const proc = fakeProc()
  const scan = createGroupScan({ procRoot: proc.root, fullScanEveryMs: 60_000, now: () => 0 })
  proc.put(5, 5)
  proc.fork(40, 40)
  t.same(pids(scan({ groups: new Set([40]), leaders: [40] })), [5, 40], 'no reading before: all of it')
  proc.noCursor()
  t.same(pids(scan({ groups: new Set([40]), leaders: [40] })), [5, 40], 'no reading now: all of it')
})

t.test('on the real /proc: a member forked between two ticks is in the second one', async (t) => {
  const child = spawn('sh', ['-c', 'read x; sleep 30 & echo $!; wait'], { detached: true, stdio: ['pipe', 'pipe', 'ignore'] })
  t.teardown(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch {} })
  await once(child, 'spawn')
  const pgid = child.pid!
  const scan = createGroupScan({ fullScanEveryMs: 3_600_000 })
  t.teardown(() => scan.close())
  const watch = { groups: new Set([pgid]), leaders: [pgid] }
  t.same(scan(watch).filter((p) => p.pgid === pgid).map((p) => p.pid), [pgid], 'the leader alone')
  child.stdin.write('go\n')
  const [line] = await once(child.stdout, 'data') as [Buffer]
  const worker = Number.parseInt(line.toString(), 10)
  t.same(pids(scan(watch).filter((p) => p.pgid === pgid)), [pgid, worker].sort((a, b) => a - b), 'the leader and its new child')
})

t.test('on the real /proc: the threads of a process created since the tick before are not read as processes', async (t) => {
  const scan = createGroupScan({ fullScanEveryMs: 3_600_000 })
  t.teardown(() => scan.close())
  scan({ groups: new Set(), leaders: [] })
  // Node starts its worker threads before it runs the script: their ids are handed out after the reading above.
  const child = spawn(process.execPath, ['-e', 'process.stdout.write("up\\n"); setInterval(() => {}, 1000)'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch {} })
  await once(child.stdout, 'data')
  const pgid = child.pid!
  const rows = scan({ groups: new Set([pgid]), leaders: [pgid] }).filter((p) => p.pgid === pgid)
  t.same(rows.map((p) => p.pid), [pgid], 'the process once, not once per thread')
})

t.test('on the real /proc: the members\' stat files stay open between ticks and are closed once they leave, end or nothing is watched', async (t) => {
  // A leader that reaps its worker when it ends (Node does at once).
  const child = spawn(process.execPath, ['-e', 'const c = require("child_process").spawn("sleep", ["30"], { stdio: "ignore" }); console.log(c.pid); setInterval(() => {}, 1000)'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch {} })
  const [line] = await once(child.stdout, 'data') as [Buffer]
  const worker = Number.parseInt(line.toString(), 10)
  const pgid = child.pid!
  // Files opened by this test only: another test of this file may still hold some.
  const before = new Set(openStatFilesNow())
  const openStatFiles = (): string[] => openStatFilesNow().filter((f) => !before.has(f))
  const scan = createGroupScan({ fullScanEveryMs: 3_600_000 })
  t.teardown(() => scan.close())
  const watch = { groups: new Set([pgid]), leaders: [pgid] }
  t.same(pids(scan(watch).filter((p) => p.pgid === pgid)), [pgid, worker].sort((a, b) => a - b), 'the first tick (all of /proc) finds both')
  t.same(openStatFiles().sort(), [`/proc/${pgid}/stat`, `/proc/${worker}/stat`].sort(), 'their files stay open, no other process\'s')
  scan(watch)
  t.equal(openStatFiles().length, 2, 'a second tick opens none more')
  process.kill(worker, 'SIGKILL')
  // Until its leader reaped it (a zombie is still read).
  for (let i = 0; i < 500 && scan(watch).some((p) => p.pid === worker); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.same(openStatFiles(), [`/proc/${pgid}/stat`], 'the ended member\'s file is closed')
  scan({ groups: new Set(), leaders: [] })
  t.same(openStatFiles(), [], 'nothing watched: nothing open')
  scan(watch)
  t.equal(openStatFiles().length, 1, 'open again')
  scan.close()
  t.same(openStatFiles(), [], 'close closes them')
})
