import { restartLatency } from './restart-latency.js'
import { cleanup } from './lib.js'
const r = await restartLatency({ runs: Number(process.argv[2] ?? 60), warmup: 5 })
console.log(JSON.stringify({ plugvisor: r.plugvisor.running, bare: r.bare.running, ratio: r.plugvisor.running.median / r.bare.running.median, inproc: r.plugvisor.inProc.median, bareInProc: r.bare.inProc.median }))
cleanup()
