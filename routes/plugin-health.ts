// Plugin health for people: the compatibility overview and the stored history.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { errors } from '../src/errors.js'
import { timeOf } from '../src/shapes.js'
import { overallStatus } from '../src/health/health-report.js'
import { HockeypuckHealth, hockeypuckHealth } from '../src/hosts/hockeypuck.js'
import { HistoryQuery, HistoryResponse, PluginParams, errorResponses } from './schemas.js'

const DAY = 24 * 3_600_000

const pluginHealth: FastifyPluginAsyncTypebox = async (app) => {
  const { supervisor, healthMonitor, healthHistory, progress } = app.daemon

  app.get('/plugins/health', {
    logLevel: 'warn',
    schema: {
      tags: ['plugins', 'compatibility'],
      summary: "Detailed health of every plugin in the shape of the Hockeypuck plugin host's management API; always 200",
      response: { 200: Type.Ref(HockeypuckHealth) }
    }
  }, async () => {
    const list = supervisor.list()
    return hockeypuckHealth(list, (n) => healthMonitor.lastCheck(n), overallStatus(list, progress.storeWritable), Date.now())
  })

  app.get('/plugins/:name/health/history', {
    schema: {
      tags: ['plugins', 'health'],
      summary: 'Stored probe results (raw) or rollups (minute, hour), newest first; results of the last flush window may not be there yet',
      params: PluginParams,
      querystring: HistoryQuery,
      response: { 200: HistoryResponse, ...errorResponses }
    }
  }, async (req) => {
    const { name } = req.params
    if (!supervisor.has(name)) throw new errors.PluginNotFound(name)
    const until = req.query.until !== undefined ? timeOf(req.query.until) : Date.now()
    const since = req.query.since !== undefined ? timeOf(req.query.since) : until - DAY
    if (since > until) throw new errors.Validation('since must not be after until')
    const { resolution, limit } = req.query
    const out = healthHistory.query(name, { since, until, limit, resolution })
    const iso = <T extends { at: number }>(rows: T[] | undefined) => rows?.map((r) => ({ ...r, at: new Date(r.at).toISOString() }))
    return { plugin: name, resolution, ...(out.checks ? { checks: iso(out.checks) } : { buckets: iso(out.buckets) }) }
  })
}

export default pluginHealth
