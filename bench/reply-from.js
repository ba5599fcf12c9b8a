// The invoke anchor: a minimal Fastify 5 + @fastify/reply-from proxy to the same plugin the
// daemon calls, with the same URL shape (/plugins/target/invoke/<path> -> <path>). No logger,
// no schema, reply-from's default undici pool. Listens on 127.0.0.1:$PORT, reports over IPC.
import Fastify from 'fastify'
import replyFrom from '@fastify/reply-from'

const PREFIX = '/plugins/target/invoke'
const app = Fastify({ logger: false })
await app.register(replyFrom, { base: `http://127.0.0.1:${process.env.UPSTREAM_PORT}` })
app.all(`${PREFIX}/*`, (req, reply) => reply.from(req.url.slice(PREFIX.length)))
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
process.send('ready')
process.on('disconnect', () => { void app.close().then(() => process.exit(0)) })
