// Both ways of spawning plugins against one contract, with real processes: plugvisor-spawner
// (the small C process the daemon spawns through) and Node's child_process in the daemon. Then
// what only the spawner has: its own death, and its end with the daemon.
import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { childProcessRunner, type ProcessCallbacks, type ProcessHandle, type ProcessIdentity, type ProcessRunner, type SpawnSpec } from '../src/process/runner.js'
import { createSpawnerRunner, FrameReader, spawnerAvailable, type SpawnerRunner } from '../src/process/spawner.js'
import { spawnerBinary } from '../src/paths.js'
import { findByEnviron, readEnviron, readProcStat } from '../src/process/proc.js'
import { INSTANCE_VAR } from '../src/process/instance-marker.js'
import { alive, build, fixturePlugin, tempDir, writeConfig } from './helper.js'

t.ok(spawnerAvailable(spawnerBinary), `${spawnerBinary} is built (npm run build)`)

interface Run {
  handle: ProcessHandle
  lines: { stream: string, line: string }[]
  spawned: Promise<ProcessIdentity>
  /** Resolves with the exit, or the spawn error. */
  ended: Promise<{ code: number | null, signal: string | null } | { error: NodeJS.ErrnoException }>
  /** How many lines had come when onExit was called. */
  linesAtExit?: number
}

function run (runner: ProcessRunner, spec: Partial<SpawnSpec> & { command: string }): Run {
  let spawned!: (id: ProcessIdentity) => void
  let ended!: (e: { code: number | null, signal: string | null } | { error: NodeJS.ErrnoException }) => void
  const r: Partial<Run> = { lines: [] }
  r.spawned = new Promise((resolve) => { spawned = resolve })
  r.ended = new Promise((resolve) => { ended = resolve })
  const cb: ProcessCallbacks = {
    onSpawn: (id) => spawned(id),
    onSpawnError: (error) => ended({ error }),
    onExit: (code, signal) => { r.linesAtExit = r.lines!.length; ended({ code, signal }) },
    onLine: (stream, line) => r.lines!.push({ stream, line })
  }
  r.handle = runner.spawn({ args: [], cwd: process.cwd(), env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, ...spec }, cb)
  return r as Run
}

const sh = (script: string): Partial<SpawnSpec> & { command: string } => ({ command: '/bin/sh', args: ['-c', script] })

t.test('frames out of the spawner\'s pipe are read whole wherever the reads cut them', async (t) => {
  const frame = (type: number, id: number, body: Buffer): Buffer => {
    const head = Buffer.alloc(9)
    head.writeUInt32LE(5 + body.length, 0)
    head[4] = type
    head.writeUInt32LE(id, 5)
    return Buffer.concat([head, body])
  }
  const sent = [frame(3, 1, Buffer.from('\x01hello\n')), frame(5, 2, Buffer.alloc(4, 7)), frame(3, 70000, Buffer.alloc(3000, 0x61)), frame(4, 3, Buffer.from([2]))]
  const stream = Buffer.concat(sent)
  const want = sent.map((f) => [f[4], f.readUInt32LE(5), f.subarray(9).toString('hex')])
  let bad = 0
  // Every place of one cut, then every second byte on its own.
  for (let cut = 0; cut <= stream.length; cut++) {
    const got: unknown[] = []
    const reader = new FrameReader((type, id, body) => got.push([type, id, body.toString('hex')]))
    reader.push(stream.subarray(0, cut))
    reader.push(stream.subarray(cut))
    if (JSON.stringify(got) !== JSON.stringify(want)) bad++
  }
  t.equal(bad, 0, `one cut anywhere in ${stream.length} bytes: the same frames`)
  const got: unknown[] = []
  const reader = new FrameReader((type, id, body) => got.push([type, id, body.toString('hex')]))
  for (let i = 0; i < stream.length; i += 2) reader.push(stream.subarray(i, i + 2))
  t.same(got, want, 'two bytes at a time: the same frames')
})

t.test('plugvisor-spawner\'s EXITED frame says whether processes of the group were left when it reaped the leader', { skip: !spawnerAvailable(spawnerBinary) && 'no spawner binary' }, async (t) => {
  const child = spawn(spawnerBinary, [], { stdio: ['pipe', 'pipe', 'inherit'], env: {} })
  const leftovers: number[] = []
  t.teardown(() => {
    for (const pgid of leftovers) { try { process.kill(-pgid, 'SIGKILL') } catch {} }
    child.stdin.end()
  })
  const request = (id: number, script: string): Buffer => {
    const strings = ['/bin/sh', '', '/bin/sh', '-c', script, `PATH=${process.env.PATH}`].map((x) => Buffer.from(x + '\0'))
    const head = Buffer.alloc(17)
    head.writeUInt32LE(13 + strings.reduce((n, b) => n + b.length, 0), 0)
    head[4] = 1 // SPAWN
    head.writeUInt32LE(id, 5)
    head.writeUInt32LE(3, 9) // argc: sh -c script
    head.writeUInt32LE(1, 13) // envc
    return Buffer.concat([head, ...strings])
  }
  const exits = new Map<number, Buffer>()
  const reader = new FrameReader((type, id, body) => {
    if (type === 1) leftovers.push(body.readInt32LE(0)) // SPAWNED: the leader leads its group
    if (type === 5) exits.set(id, Buffer.from(body)) // EXITED
  })
  child.stdout.on('data', (chunk: Buffer) => reader.push(chunk))
  child.stdin.write(request(1, 'exit 0'))
  child.stdin.write(request(2, 'sleep 300 & exit 0'))
  await t.resolveMatch(until(() => exits.size === 2, 10000), true)
  t.same([exits.get(1)!.length, exits.get(1)!.readInt32LE(0), exits.get(1)!.readInt32LE(4)], [8, 0, 0], 'exit 0, nothing of its group left')
  t.same([exits.get(2)!.readInt32LE(0), exits.get(2)!.readInt32LE(4)], [0, 1], 'exit 0, its background sleep left in the group')
})

const runners: [string, () => ProcessRunner][] = [
  ['plugvisor-spawner', () => {
    const r = createSpawnerRunner({ binary: spawnerBinary, onProblem: () => {} })
    return r
  }],
  ['child_process', () => childProcessRunner]
]

for (const [name, make] of runners) {
  t.test(name, async (t) => {
    const runner = make()
    t.teardown(async () => { await (runner as Partial<SpawnerRunner>).close?.() })

    t.test('output of both streams in lines, in order, before the exit with its code', async (t) => {
      const r = run(runner, sh('i=0; while [ $i -lt 2000 ]; do echo "out $i"; i=$((i+1)); done; printf "err 1\\nerr 2 no newline" >&2; exit 3'))
      const id = await r.spawned
      t.equal(id.pgid, id.pid, 'the plugin leads its own process group')
      t.equal(id.startTicks, readProcStat(id.pid)?.startTicks ?? id.startTicks, 'its start time as /proc has it')
      t.same(await r.ended, { code: 3, signal: null })
      const out = r.lines.filter((l) => l.stream === 'stdout').map((l) => l.line)
      t.same(out, Array.from({ length: 2000 }, (_, i) => `out ${i}`), 'every stdout line, in order')
      await t.resolveMatch(until(() => r.lines.filter((l) => l.stream === 'stderr').length === 2), true)
      t.same(r.lines.filter((l) => l.stream === 'stderr').map((l) => l.line), ['err 1', 'err 2 no newline'], 'stderr, the unfinished last line at its end')
      // The spawner reads a plugin's pipes dry before it reports the exit; Node's 'exit' may come
      // before the last reads of its pipes (their lines follow).
      if (name === 'plugvisor-spawner') t.ok(r.linesAtExit! >= 2000, 'what it printed before it exited came before onExit')
    })

    t.test('megabytes of output from several plugins at once arrive whole, line by line', async (t) => {
      // Long lines of known content: frames of the spawner's pipe are cut by the ends of reads.
      const script = 'for i in $(seq 1 300); do printf "%s-%05d-%s\\n" "$1" "$i" "$(printf "%04990d" "$i")"; done'
      const runs = ['a', 'b', 'c'].map((name) => ({ name, r: run(runner, { command: '/bin/sh', args: ['-c', script, 'sh', name] }) }))
      for (const { name, r } of runs) {
        t.same(await r.ended, { code: 0, signal: null })
        await until(() => r.lines.length >= 300)
        const want = Array.from({ length: 300 }, (_, i) => `${name}-${String(i + 1).padStart(5, '0')}-${String(i + 1).padStart(4990, '0')}`)
        t.ok(r.lines.length === 300 && r.lines.every((l, i) => l.line === want[i]), `${name}: 300 lines of 5,002 bytes, each exact`)
      }
    })

    t.test('a signal that ends it is reported by name, the name Node gives it', async (t) => {
      const r = run(runner, sh('kill -KILL $$'))
      await r.spawned
      t.same(await r.ended, { code: null, signal: 'SIGKILL' })
      // Signal 6 has two names (SIGABRT, SIGIOT), 29 too (SIGIO, SIGPOLL): Node says the first.
      for (const [sig, name] of [['ABRT', 'SIGABRT'], ['IO', 'SIGIO']]) {
        const s = run(runner, sh(`kill -${sig} $$`))
        t.same(await s.ended, { code: null, signal: name }, name)
      }
    })

    t.test('its own session, stdin from /dev/null, exactly the given environment and folder, signals at their defaults', async (t) => {
      const dir = tempDir()
      const r = run(runner, {
        ...sh('echo "sid $(cut -d" " -f6 /proc/$$/stat)"; echo "stdin $(readlink /proc/$$/fd/0)"; echo "pwd $(pwd)"; env | sort'),
        cwd: dir,
        env: { PATH: '/usr/bin:/bin', ONLY: 'this' }
      })
      const id = await r.spawned
      await r.ended
      const lines = r.lines.map((l) => l.line)
      t.ok(lines.includes(`sid ${id.pid}`), 'its own session')
      t.ok(lines.includes('stdin /dev/null'))
      t.ok(lines.includes(`pwd ${dir}`))
      // sh adds PWD, SHLVL and _; tap's coverage adds its own to whatever Node's child_process spawns.
      const added = /^(PWD|SHLVL|_|_TAPJS_[A-Z_]+)=|^NODE_OPTIONS=.*@tapjs/
      t.same(lines.filter((l) => /^[A-Z_]+=/.test(l) && !added.test(l)), ['ONLY=this', 'PATH=/usr/bin:/bin'], 'nothing but the given environment')
      // The program itself reads its mask and what it ignores (a shell blocks signals while it forks).
      const sig = run(runner, { command: 'grep', args: ['-E', '^Sig(Ign|Blk)', '/proc/self/status'] })
      await sig.ended
      t.same(sig.lines.map((l) => l.line), ['SigBlk:\t0000000000000000', 'SigIgn:\t0000000000000000'], 'no signal blocked or ignored (the spawner ignores SIGPIPE, SIGTERM...)')
    })

    t.test('a program found on the given PATH; the spawn errors as Node names them', async (t) => {
      const dir = tempDir()
      const prog = path.join(dir, 'hello')
      writeFileSync(prog, '#!/bin/sh\necho hello from path\n')
      chmodSync(prog, 0o755)
      const notExec = path.join(dir, 'plain')
      writeFileSync(notExec, 'echo no\n')
      const found = run(runner, { command: 'hello', env: { PATH: `${dir}:/usr/bin:/bin` } })
      await found.spawned
      await found.ended
      t.same(found.lines.map((l) => l.line), ['hello from path'])
      const cases: [Partial<SpawnSpec> & { command: string }, string][] = [
        [{ command: 'no-such-program-here' }, 'ENOENT'],
        [{ command: notExec }, 'EACCES'],
        [{ command: '/bin/sh', cwd: path.join(dir, 'missing') }, 'ENOENT']
      ]
      for (const [spec, code] of cases) {
        const r = run(runner, spec)
        const e = await r.ended
        t.ok('error' in e, `${spec.command}: a spawn error`)
        if (!('error' in e)) continue
        t.equal(e.error.code, code)
        t.equal(e.error.message, `spawn ${spec.command} ${code}`)
        t.equal(r.handle.pid, undefined, 'no pid')
      }
    })

    t.test('stop: the group with its grandchild gone, SIGKILL after the timeout for what ignores the signal', async (t) => {
      const r = run(runner, sh('trap "" TERM; sleep 300 & echo "child $!"; while :; do sleep 1; done'))
      const id = await r.spawned
      await until(() => r.lines.length > 0)
      const grandchild = Number(r.lines[0].line.split(' ')[1])
      t.teardown(() => { try { process.kill(-id.pgid, 'SIGKILL') } catch {} })
      await r.handle.stop('SIGTERM', 300)
      t.same(await r.ended, { code: null, signal: 'SIGKILL' }, 'the leader ignored SIGTERM')
      t.notOk(alive(id.pid))
      t.notOk(alive(grandchild), 'the grandchild is gone too')
    })

    t.test('a stop right after spawn() returned waits for the process and stops it', async (t) => {
      const r = run(runner, { command: 'sleep', args: ['300'] })
      await r.handle.stop('SIGTERM', 2000)
      const id = await r.spawned
      t.same(await r.ended, { code: null, signal: 'SIGTERM' })
      t.notOk(alive(id.pid))
    })

    t.test('a leader that exits leaves no process of its group behind', async (t) => {
      const r = run(runner, sh('sleep 300 & echo "child $!"'))
      const id = await r.spawned
      t.teardown(() => { try { process.kill(-id.pgid, 'SIGKILL') } catch {} })
      t.same(await r.ended, { code: 0, signal: null })
      const grandchild = Number(r.lines.find((l) => l.line.startsWith('child '))!.line.split(' ')[1])
      t.notOk(alive(grandchild), 'the leftover was killed before onExit')
    })
  })
}

t.test('plugvisor-spawner killed: what it held is killed and reported, the next spawn gets a new spawner', async (t) => {
  const problems: string[] = []
  const runner = createSpawnerRunner({ binary: spawnerBinary, onProblem: (m) => problems.push(m) })
  t.teardown(() => runner.close())
  const r = run(runner, sh('sleep 300 & echo "child $!"; wait'))
  const id = await r.spawned
  t.teardown(() => { try { process.kill(-id.pgid, 'SIGKILL') } catch {} })
  await until(() => r.lines.length > 0)
  const grandchild = Number(r.lines[0].line.split(' ')[1])
  const first = runner.pid!
  t.equal(readFileSync(`/proc/${first}/comm`, 'latin1').trim(), 'plugvisor-spawn', 'the spawner runs')
  // tap's coverage adds its own variables to whatever Node's child_process spawns.
  const env = readFileSync(`/proc/${first}/environ`, 'latin1').split('\0').filter((e) => e !== '' && !/^(_TAPJS_[A-Z_]+|NODE_OPTIONS)=/.test(e))
  t.same(env, [], 'with an empty environment (no secret of the daemon\'s)')
  t.equal(readProcStat(id.pid)?.ppid, first, 'the plugin is the spawner\'s child')
  process.kill(first, 'SIGKILL')
  t.same(await r.ended, { code: null, signal: 'SIGKILL' })
  t.notOk(alive(id.pid), 'the plugin is gone')
  t.notOk(alive(grandchild), 'its grandchild too')
  t.match(problems, [/the process spawner \(pid \d+\) exited on SIGKILL; the 1 plugins it held were killed and restart/])
  const again = run(runner, { command: 'true' })
  await again.spawned
  t.same(await again.ended, { code: 0, signal: null }, 'a new spawner serves the next spawn')
  t.not(runner.pid, first)
})

t.test('plugvisor-spawner ends when the daemon closes it, and on its own when its daemon dies (the plugins stay for the next daemon)', async (t) => {
  const runner = createSpawnerRunner({ binary: spawnerBinary, onProblem: () => {} })
  const r = run(runner, { command: 'true' })
  await r.ended
  const pid = runner.pid!
  await runner.close()
  t.notOk(alive(pid), 'closed: exited')
  // SIGTERM and SIGINT (a Ctrl-C in the daemon's terminal) are the daemon's to answer: ignored.
  const other = createSpawnerRunner({ binary: spawnerBinary, onProblem: () => {} })
  t.teardown(() => other.close())
  const s = run(other, { command: 'sleep', args: ['300'] })
  const id = await s.spawned
  t.teardown(() => { try { process.kill(-id.pgid, 'SIGKILL') } catch {} })
  const spawnerPid = other.pid!
  process.kill(spawnerPid, 'SIGTERM')
  process.kill(spawnerPid, 'SIGINT')
  const after = run(other, { command: 'true' })
  t.same(await after.ended, { code: 0, signal: null }, 'it still spawns after SIGTERM and SIGINT')
  t.equal(other.pid, spawnerPid, 'the same spawner')
  t.equal(readlinkSync(`/proc/${id.pid}/fd/0`), '/dev/null')
  await other.close()
  t.ok(alive(id.pid), 'a plugin still running when the spawner ends stays (the next daemon stops it by its record)')
})

/** Polls a condition every few ms (the processes are real; nothing to await). */
async function until (fn: () => boolean, ms = 10000): Promise<true> {
  const deadline = Date.now() + ms
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return true
}

t.test('the daemon with its spawner killed: each plugin is restarted once, none runs twice, the old ones are gone', async (t) => {
  const app = await build(t, writeConfig([fixturePlugin('one', 'sleep'), fixturePlugin('two', 'sleep')]), { boot: false })
  const sup = app.daemon.supervisor
  await app.daemon.boot()
  const before = ['one', 'two'].map((n) => sup.summary(n).pid!)
  const spawner = readProcStat(before[0])!.ppid
  t.equal(readFileSync(`/proc/${spawner}/comm`, 'latin1').trim(), 'plugvisor-spawn', 'the plugins are the spawner\'s children')
  t.equal(readProcStat(spawner)!.ppid, process.pid, 'and the spawner is the daemon\'s')
  const restarted = ['one', 'two'].map((n, i) => sup.waitFor(n, (s) => s.state === 'running' && s.pid !== before[i], 10000))
  process.kill(spawner, 'SIGKILL')
  const after = await Promise.all(restarted)
  for (const [i, s] of after.entries()) {
    t.match(s.lastExit, { code: null, signal: 'SIGKILL' }, `${s.name}: reported killed`)
    t.equal(s.restartCount, 1)
    t.notOk(alive(before[i]), `${s.name}: the old process is gone`)
    const marker = readEnviron(s.pid!)!.find((e) => e.startsWith(`${INSTANCE_VAR}=`))!
    const running = findByEnviron((env) => env.includes(`PLUGVISOR_PLUGIN=${s.name}`) && env.includes(marker))
    t.same(running.map((st) => st.pid), [s.pid], `${s.name}: exactly one process runs, the new one`)
    t.not(readProcStat(s.pid!)!.ppid, spawner, 'under a new spawner')
  }
})

t.test('a spawner that cannot be started: each spawn fails with ESPAWNER, one problem is reported per attempt', async (t) => {
  const problems: string[] = []
  const runner = createSpawnerRunner({ binary: path.join(tempDir(), 'no-such-spawner'), onProblem: (m) => problems.push(m) })
  t.teardown(() => runner.close())
  const e = await run(runner, { command: 'true' }).ended
  t.ok('error' in e && e.error.code === 'ESPAWNER', 'the spawn fails')
  t.equal(problems.length, 1, 'one problem (Node emits error and close for it)')
  t.match(problems[0], /^the process spawner .*no-such-spawner could not be started: spawn .* ENOENT$/)
})
