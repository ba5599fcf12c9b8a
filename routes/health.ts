// Probe endpoints. Cheap by rule: no database read, warn-level logging only.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'

const health: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health/liveness', {
    logLevel: 'warn',
    schema: {
      tags: ['health'],
      summary: 'The daemon alone: answers while its event loop does. Never fails because of a plugin',
      response: { 200: Type.Object({ status: Type.Literal('pass'), uptimeMs: Type.Integer() }) }
    }
  }, async (_req, reply) => {
    reply.header('cache-control', 'no-store')
    return { status: 'pass' as const, uptimeMs: Math.round(process.uptime() * 1000) }
  })
}

export default health
