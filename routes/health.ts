// Probe endpoints. Cheap by rule: no database read, warn-level logging only.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type, type TSchema } from '@sinclair/typebox'
import { HealthReport, healthReport, isUp, pluginHealthEntry, readiness } from '../src/health/health-report.js'
import { LIVENESS_PATH, liveness } from '../src/health/liveness.js'
import { ErrorResponse, PluginHealthResponse, PluginParams, ReadinessQuery, ReadinessResponse } from './schemas.js'

const HEALTH_JSON = 'application/health+json'
/** An answer in application/health+json (what /health and /health/:name send). */
const healthJson = <T extends TSchema>(schema: T, description: string) => ({ description, content: { [HEALTH_JSON]: { schema } } })

const health: FastifyPluginAsyncTypebox = async (app) => {
  const { supervisor, healthMonitor, progress } = app.daemon

  // Most of these requests are answered by the shortcut in front of the framework
  // (src/liveness-shortcut.ts), with the same answer; this route answers the rest (HEAD, a query
  // string, a probe behind a token, start-up and shutdown) and describes it in the API document.
  app.get(LIVENESS_PATH, {
    logLevel: 'warn',
    schema: {
      tags: ['health'],
      summary: 'The daemon alone: answers while its event loop does. Never fails because of a plugin',
      response: { 200: Type.Object({ status: Type.Literal('pass'), uptimeMs: Type.Integer() }) }
    }
  }, async (_req, reply) => {
    reply.header('cache-control', 'no-store')
    return liveness()
  })

  app.get('/health', {
    logLevel: 'warn',
    schema: {
      tags: ['health'],
      summary: 'The daemon and every plugin (application/health+json); 503 when the daemon fails or a critical plugin is failed or unhealthy',
      response: { 200: healthJson(Type.Ref(HealthReport), 'pass or warn'), 503: healthJson(Type.Ref(HealthReport), 'fail: the daemon, or a critical plugin failed or unhealthy') }
    }
  }, async (_req, reply) => {
    const report = healthReport(supervisor.list(), (n) => healthMonitor.lastCheck(n), progress.storeWritable, Date.now())
    reply.header('cache-control', 'no-store').type(HEALTH_JSON).code(report.status === 'fail' ? 503 : 200)
    return report
  })

  app.get('/health/readiness', {
    logLevel: 'warn',
    schema: {
      tags: ['health'],
      summary: 'Ready: start-up done, store migrated, initial start pass done, every critical plugin healthy or degraded; else 503',
      querystring: ReadinessQuery,
      response: { 200: ReadinessResponse, 503: ReadinessResponse }
    }
  }, async (req, reply) => {
    const verbose = req.query.verbose !== undefined && req.query.verbose !== 'false' && req.query.verbose !== '0'
    const { ready, checks } = readiness({ progress, plugins: supervisor.list(), exclude: req.query.exclude ?? [] })
    reply.header('cache-control', 'no-store').code(ready ? 200 : 503)
    const status = ready ? 'pass' as const : 'fail' as const
    return verbose ? { status, checks } : { status }
  })

  app.get('/health/:name', {
    logLevel: 'warn',
    schema: {
      tags: ['health'],
      summary: 'One plugin (application/health+json): 200 when healthy or degraded, 503 otherwise; usable as a probe target',
      params: PluginParams,
      response: { 200: healthJson(PluginHealthResponse, 'healthy or degraded'), 503: healthJson(PluginHealthResponse, 'any other status'), 404: Type.Ref(ErrorResponse) }
    }
  }, async (req, reply) => {
    const { name } = req.params
    const summary = supervisor.summary(name)
    reply.header('cache-control', 'no-store').type(HEALTH_JSON).code(isUp(summary) ? 200 : 503)
    return { name, ...pluginHealthEntry(summary, healthMonitor.lastCheck(name)) }
  })
}

export default health
