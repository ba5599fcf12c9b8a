#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=4 --no-allocation-site-pretenuring --no-memory-reducer --heap-growing-percent=15
// MALLOC_ARENA_MAX=2: glibc gives every thread that allocates its own malloc arena (V8's four
// helper threads, libuv's pool), each keeping the high-water mark of what that thread once
// allocated (compile zones of the startup's optimizing compiles are up to 9 MB). Two arenas
// share that slack. Set here by `env -S` for `plugvisor`/`dist/src/bin.cjs`; npm start, the
// Dockerfile and the bench set it too. Plugins do not inherit it (they get PATH, HOME, LANG,
// TZ and their manifest's env).
// Measured beside no limit, the same build (500 plugins, the lifecycle bench's phases, load
// 17-23): peak RSS at listening the same within the noise, after start/stop rounds and status
// 108.4 / 108.2 -> 106.6 / 106.4 MB; daemon CPU per liveness request the same (72.0 against
// 71.3 / 76.5 us, five daemons side by side).
// --max-semi-space-size=4 (MiB): the young generation is two semi-spaces of this size, all of it
// resident once used (8 MB). 2 MiB takes 4-8 MB off every peak but costs liveness: daemon CPU per
// liveness request 79.6 / 76.2 against 71.3 / 76.5 us (same run), and the lifecycle bench's
// liveness with none running 0.61 / 0.96 of bare Fastify's requests per CPU-second against 0.84 /
// 1.11; at 1 MiB (an earlier choice, with undici on the call path) objects of in-flight calls were
// promoted under invoke load and the old generation grew instead. Measured side by side
// (500 plugins, then invoke load, npm run bench's phases): peak RSS 120 / 132 / 140 MB and after
// invoke load 135 / 175 / 153 MB for 4 MiB / 1 MiB / V8's default; daemon CPU per proxied call
// at 50 connections 80 % / 64 % / 97 % of reply-from's requests per CPU-second (10
// connections: 79 / 82 / 83 %); start of 500 CPU 1.40 / 1.34 / 1.52 s.
// --no-allocation-site-pretenuring: spawning plugins creates ~1,000 long-lived pipe streams and
// ChildProcess objects, so V8 learns to allocate stream/emitter objects straight in the old
// generation; every HTTP request's IncomingMessage/ServerResponse then went there too, the old
// generation grew ~60 MB/s under load with a mark-compact every ~1.3 s. Without it (a GC
// heuristic only, no change of semantics): liveness per CPU-second +37 %, RSS after a liveness
// load test 178 -> 103 MB (500 plugins running, --trace-gc and /proc VmHWM).
// --no-memory-reducer: after a burst of work V8's memory reducer runs a series of full GCs (on
// all of V8's worker threads) to give memory back; an idle daemon with the dashboard open (its
// list read every 15 s) kept it busy: 2.25 / 2.3 % of a core in 20 s windows with it, 0.55 %
// without (500 plugins running, per-thread CPU from /proc, same run). Peak RSS does not change;
// resident memory after a burst stays ~6 MB higher until the next GC.
// --heap-growing-percent=15: after each mark-compact V8 lets the old generation grow to a multiple
// of what survived before the next one, up to 4 x for a fast GC; the daemon's peak resident memory
// was that slack (no mark-compact ran during start/stop rounds of 500). A fixed 1.15 keeps it near
// the live size. Measured side by side, medians of 2-3 interleaved runs, 500 plugins, same run:
// peak RSS listening 115.4 -> 106.2 MB, after 3 start/stop rounds 149.8 -> 127.9 MB, start-500
// CPU the same within the noise (machine at load 6-9).
// npm start, the Dockerfile and the bench launch it the same way.
import { main } from './cli.cjs'

main(process.argv.slice(2)).then((code) => {
  // serve answers -1: the daemon keeps running until a signal.
  if (code >= 0) process.exitCode = code
}, (err: Error) => {
  process.stderr.write(`plugvisor: ${err.stack ?? String(err)}\n`)
  process.exitCode = 1
})
