// plugvisor_http_* metrics of every answered request, labelled by route pattern, never the raw
// URL (unbounded series). GET /events is hijacked and not counted.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { routeFacts } from './route-facts.js'

async function httpMetricsPlugin (fastify: FastifyInstance): Promise<void> {
  const { metrics } = fastify.daemon
  // Callback style: runs on every request, and an async hook costs a promise each.
  fastify.addHook('onResponse', (req, reply, done) => {
    metrics.observeHttpRequest(req.method, routeFacts(req).pattern, reply.statusCode, reply.elapsedTime / 1000)
    done()
  })
}

export default fp(httpMetricsPlugin, { name: 'http-metrics', fastify: '5.x', dependencies: ['daemon', 'route-facts'] })
