// The baseline of figure 6: the barest Fastify 5 route (no logger, no schema, no plugins),
// answering what /health/liveness answers. Listens on 127.0.0.1:$PORT, reports 'ready' over IPC.
import Fastify from 'fastify'

const app = Fastify({ logger: false })
app.get('/health/liveness', async () => ({ status: 'pass', uptimeMs: Math.round(process.uptime() * 1000) }))
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
process.send('ready')
process.on('disconnect', () => { void app.close().then(() => process.exit(0)) })
