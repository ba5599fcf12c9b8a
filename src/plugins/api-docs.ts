// The OpenAPI document (built from the route schemas; openapi.yaml is generated from it) and
// Swagger UI at /docs. Registered before the routes, whose schemas it collects as they are added.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { completeContract } from './api-contract.js'

export const API_VERSION = '0.1.0'

async function apiDocsPlugin (fastify: FastifyInstance): Promise<void> {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'plugvisor',
        description: 'Supervises plugins: starts, health-checks, restarts with backoff, and calls into them.',
        version: API_VERSION,
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' }
      },
      servers: [{ url: 'http://127.0.0.1:7070', description: 'The default listen address (server.host, server.port)' }],
      tags: [
        { name: 'plugins', description: 'Plugin lifecycle' },
        { name: 'health', description: 'Daemon and plugin health, for people and for probes' },
        { name: 'config', description: 'Loaded configuration and its problems' },
        { name: 'invoke', description: 'Calls into plugins through their resilience policies, and their circuit breakers' },
        { name: 'compatibility', description: 'Routes shaped like existing plugin hosts\' management APIs' },
        { name: 'observability', description: 'Prometheus metrics and the event stream' }
      ]
    },
    // Shared schemas appear under their $id (#/components/schemas/PluginSummary), not def-N.
    transformObject: (documents) => completeContract(documents as Parameters<typeof completeContract>[0]) as never,
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}` }
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: false } })
}

export default fp(apiDocsPlugin, { name: 'api-docs', fastify: '5.x' })
