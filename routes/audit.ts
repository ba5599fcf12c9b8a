// GET /audit: who changed what, when, from where, with what result (admins only with tokens).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { errorResponses } from './schemas.js'

const AuditEntry = Type.Object({
  id: Type.Integer(),
  at: Type.String({ format: 'date-time' }),
  actor: Type.String({ description: "Token name; 'anonymous' without a valid token (or with auth.mode none); 'signal' for a reload by SIGHUP" }),
  role: Type.Union([Type.Literal('viewer'), Type.Literal('admin'), Type.Null()]),
  remote: Type.Union([Type.String(), Type.Null()], { description: 'Client address' }),
  method: Type.String(),
  route: Type.String({ description: 'Route pattern' }),
  url: Type.String({ description: 'Path and query as sent; bodies are never stored' }),
  plugin: Type.Union([Type.String(), Type.Null()]),
  status: Type.Integer({ description: 'HTTP status of the answer (401/403 for refused calls)' }),
  requestId: Type.String(),
  durationMs: Type.Number()
})

const audit: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/audit', {
    schema: {
      tags: ['config'],
      summary: 'The audit log, newest first: every mutating management call whatever its outcome, and reloads by SIGHUP',
      querystring: Type.Object({
        plugin: Type.Optional(Type.String({ description: 'Only calls about this plugin' })),
        since: Type.Optional(Type.String({ format: 'date-time' })),
        limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 })
      }),
      response: { 200: Type.Object({ entries: Type.Array(AuditEntry) }), ...errorResponses }
    }
  }, async (req) => {
    const since = req.query.since ? Date.parse(req.query.since) : undefined
    const entries = app.daemon.audit.list({ plugin: req.query.plugin, since, limit: req.query.limit })
      .map((e) => ({ ...e, at: new Date(e.at).toISOString(), role: e.role as 'viewer' | 'admin' | null }))
    return { entries }
  })
}

export default audit
