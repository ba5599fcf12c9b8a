// A complete plugvisor plugin: HTTP on $PORT, health+json on /health, config from PLUGVISOR_CONFIG.
import { createServer } from 'node:http'

const config = JSON.parse(process.env.PLUGVISOR_CONFIG ?? '{}')
let served = 0

const server = createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/health+json' })
    return res.end(JSON.stringify({ status: 'pass', output: `${served} greetings` }))
  }
  served++
  const who = new URL(req.url, 'http://localhost').searchParams.get('name') ?? 'world'
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ greeting: `${config.greeting ?? 'Hello'}, ${who}!` }))
})

server.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGTERM', () => server.close(() => process.exit(0)))
