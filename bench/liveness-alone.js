// The daemon's liveness shortcut (dist/src/liveness-shortcut.js) alone in a plain node:http
// server: what `GET /health/liveness` costs without the daemon around it, the third side of
// bench/liveness-ab.js. Server settings as Fastify sets its own (keepAliveTimeout 72 s, no
// request or connection timeout). Listens on 127.0.0.1:$PORT, reports 'ready' over IPC, exits
// when the harness goes away.
//   PORT=… node bench/liveness-alone.js
import { createServer } from 'node:http'
import { LivenessShortcut } from '../dist/src/liveness-shortcut.js'

const shortcut = new LivenessShortcut()
let next = 0
shortcut.enable({ requestId: () => `req-${(++next).toString(36)}`, hostRefused: () => false, observe: () => {} })
const server = createServer((req, res) => {
  if (shortcut.answer(req, res)) return
  res.statusCode = 404
  res.end()
})
server.keepAliveTimeout = 72000
server.requestTimeout = 0
server.setTimeout(0)
server.listen(Number(process.env.PORT), '127.0.0.1', () => process.send({ type: 'ready', pids: [] }))
process.on('disconnect', () => server.close(() => process.exit(0)))
