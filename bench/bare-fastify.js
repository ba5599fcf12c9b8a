// The baseline of the liveness figures: the barest Fastify 5 route (no logger, no schema, no
// plugins), answering what /health/liveness answers. With N > 0 it first spawns N `sleep 3600`
// children as plugvisor does (own process group, stdout and stderr piped and read), so the
// figure at 500 plugins compares like with like. Listens on 127.0.0.1:$PORT, reports 'ready'
// (and the children's pids) over IPC; kills its children when the harness goes away.
//   node bare-fastify.js [N]
import { spawn } from 'node:child_process'
import Fastify from 'fastify'

const n = Number(process.argv[2] ?? 0)
const children = []
await new Promise((resolve, reject) => {
  let pending = n
  if (pending === 0) return resolve()
  for (let i = 0; i < n; i++) {
    const c = spawn('sleep', ['3600'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(c)
    c.stdout.resume()
    c.stderr.resume()
    c.once('error', reject)
    c.once('spawn', () => { if (--pending === 0) resolve() })
  }
})
const app = Fastify({ logger: false })
app.get('/health/liveness', async () => ({ status: 'pass', uptimeMs: Math.round(process.uptime() * 1000) }))
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
process.send({ type: 'ready', pids: children.map((c) => c.pid) })
process.on('disconnect', () => {
  for (const c of children) { if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL') }
  void app.close().then(() => process.exit(0))
})
