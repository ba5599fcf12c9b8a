#!/usr/bin/env node
// Example plugin: a worker that does some "work" every second and crashes now and then,
// so the restart backoff can be watched live (GET /plugins/flaky, GET /plugins/flaky/events).
const crashChance = Number(process.env.CRASH_CHANCE ?? 0.15)
let ticks = 0

console.log(`flaky worker started (crash chance ${crashChance} per tick)`)
setInterval(() => {
  ticks++
  if (Math.random() < crashChance) {
    console.error(`flaky worker crashing after ${ticks} ticks`)
    process.exit(3)
  }
  console.log(`tick ${ticks}`)
}, 1000)
process.on('SIGTERM', () => process.exit(0))
