#!/usr/bin/env -S node --max-semi-space-size=1 --no-allocation-site-pretenuring
// --max-semi-space-size=1 (MiB): a small young generation keeps the daemon's resident memory
// and its GC pauses down (measured: peak RSS with 500 plugins under load 178 MB instead of 217,
// liveness throughput up ~15 %).
// --no-allocation-site-pretenuring: spawning plugins creates ~1,000 long-lived pipe streams and
// ChildProcess objects, so V8 learns to allocate stream/emitter objects straight in the old
// generation; every HTTP request's IncomingMessage/ServerResponse then went there too, the old
// generation grew ~60 MB/s under load with a mark-compact every ~1.3 s. Without it (a GC
// heuristic only, no change of semantics): liveness per CPU-second +37 %, RSS after a liveness
// load test 178 -> 103 MB (500 plugins running, --trace-gc and /proc VmHWM).
// npm start, the Dockerfile and the bench launch it the same way.
import { main } from './cli.js'

main(process.argv.slice(2)).then((code) => {
  // serve answers -1: the daemon keeps running until a signal.
  if (code >= 0) process.exitCode = code
}, (err: Error) => {
  process.stderr.write(`plugvisor: ${err.stack ?? String(err)}\n`)
  process.exitCode = 1
})
