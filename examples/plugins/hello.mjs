// A complete plugvisor plugin: HTTP on $PORT, health+json on /health, its config from
// PLUGVISOR_CONFIG_FILE, read again on SIGHUP (its reload hook), so a config change needs no restart.
import { createServer } from 'node:http'
import { readFileSync } from 'node:fs'

const readConfig = () => JSON.parse(readFileSync(process.env.PLUGVISOR_CONFIG_FILE, 'utf8'))
let config = readConfig()
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
process.on('SIGHUP', () => { config = readConfig(); console.log(`config reloaded: ${JSON.stringify(config)}`) })
process.on('SIGTERM', () => server.close(() => process.exit(0)))
