// GET /metrics: the Prometheus exposition of this daemon's registry.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'

const metrics: FastifyPluginAsyncTypebox = async (app) => {
  const { metrics } = app.daemon

  app.get('/metrics', {
    logLevel: 'warn',
    schema: {
      tags: ['observability'],
      summary: 'Prometheus metrics (text exposition format 0.0.4): plugin state, health, restarts, probes, resources, HTTP, event loop, process',
      response: {
        200: {
          description: 'Prometheus text format',
          content: { 'text/plain; version=0.0.4; charset=utf-8': { schema: Type.String() } }
        }
      }
    }
  }, async (_req, reply) => {
    const { contentType, body } = await metrics.render()
    return reply.type(contentType).send(body)
  })
}

export default metrics
