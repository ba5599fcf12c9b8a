#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=2 --no-allocation-site-pretenuring --no-memory-reducer --heap-growing-percent=15
// MALLOC_ARENA_MAX=2: glibc gives every thread that allocates its own malloc arena (V8's four
// helper threads, libuv's pool), each keeping the high-water mark of what that thread once
// allocated (compile zones of the startup's optimizing compiles are up to 9 MB). Two arenas
// share that slack. Set here by `env -S` for `plugvisor`/`dist/src/bin.js`; npm start, the
// Dockerfile and the bench set it too. Plugins do not inherit it (they get PATH, HOME, LANG,
// TZ and their manifest's env).
// --max-semi-space-size=2 (MiB): the young generation is two semi-spaces of this size, all of it
// resident once used. At 4 MiB (the choice before) 8 MB of it; at 1 MiB (the choice before that,
// with undici on the call path) objects of in-flight calls were promoted under invoke load. 2 and
// MALLOC_ARENA_MAX=2 together, measured beside 4 without it in the same runs (500 plugins, the
// lifecycle bench's phases, load 10-37): peak RSS at listening 95.7 / 97.2 -> 87.6 / 89.9 MB, after
// start/stop rounds and status 114.6 / 116.6 -> 104.0 / 105.2 MB; after invoke load 108.6 -> 90.9
// MB; daemon CPU per liveness request and invoke against reply-from within the noise of that load.
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
import { main } from './cli.js'

main(process.argv.slice(2)).then((code) => {
  // serve answers -1: the daemon keeps running until a signal.
  if (code >= 0) process.exitCode = code
}, (err: Error) => {
  process.stderr.write(`plugvisor: ${err.stack ?? String(err)}\n`)
  process.exitCode = 1
})
