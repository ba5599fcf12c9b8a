// GET /audit: who changed what, when, from where, with what result (admins only with tokens).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { AuditEntry } from '../src/store/audit-store.js'
import { timeOf } from '../src/shapes.js'
import { errorResponses } from './schemas.js'

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
    const since = req.query.since !== undefined ? timeOf(req.query.since) : undefined
    const entries = app.daemon.audit.list({ plugin: req.query.plugin, since, limit: req.query.limit })
      .map((e) => ({ ...e, at: new Date(e.at).toISOString() }))
    return { entries }
  })
}

export default audit
