#!/usr/bin/env node
// Example plugin: an HTTP service on $PORT that echoes requests and answers GET /health
// with application/health+json. Its config arrives as JSON in PLUGVISOR_CONFIG.
import { createServer } from 'node:http'

const port = Number(process.env.PORT ?? 8080)
const config = JSON.parse(process.env.PLUGVISOR_CONFIG ?? '{}')
const name = process.env.PLUGVISOR_PLUGIN ?? 'echo'
let served = 0

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/health+json' })
    res.end(JSON.stringify({ status: 'pass', output: `${served} requests served` }))
    return
  }
  const chunks = []
  req.on('data', (c) => chunks.push(c))
  req.on('end', () => {
    served++
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ plugin: name, greeting: config.greeting ?? 'hello', method: req.method, url: req.url, body: Buffer.concat(chunks).toString('utf8') }))
  })
})

server.listen(port, '127.0.0.1', () => console.log(`${name} listening on 127.0.0.1:${port}`))
process.on('SIGTERM', () => {
  console.log(`${name} stopping`)
  server.close(() => process.exit(0))
})
