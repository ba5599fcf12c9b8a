// /plugins/:name/calls: the call statistics of a plugin, and calls a host made elsewhere (over its
// own protocol) reported so they count like proxied ones. Apart from the invoke routes, whose
// bodies are not parsed.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { CallStats } from '../src/invoke/call-stats.js'
import { PluginParams, errorResponses } from './schemas.js'

const ReportedCall = Type.Object({
  success: Type.Boolean({ description: 'The call succeeded' }),
  durationMs: Type.Number({ minimum: 0, maximum: 86400000, description: 'How long the call took (milliseconds)' }),
  error: Type.Optional(Type.String({ maxLength: 1024, description: 'Why a failed call failed' }))
}, { additionalProperties: false })

const calls: FastifyPluginAsyncTypebox = async (app) => {
  const { invoker } = app.daemon

  app.get('/plugins/:name/calls', {
    schema: { tags: ['invoke'], summary: 'Call statistics of the plugin since its manifest was loaded or changed: proxied calls and calls hosts reported', params: PluginParams, response: { 200: Type.Ref(CallStats), ...errorResponses } }
  }, async (req) => invoker.calls(req.params.name))

  app.post('/plugins/:name/calls', {
    schema: {
      tags: ['invoke'],
      summary: 'Record calls a host made to the plugin over its own protocol (one, or a batch of at most 1,000): counted in the statistics, the circuit breaker and the metrics like proxied calls; answers the statistics',
      params: PluginParams,
      body: Type.Union([ReportedCall, Type.Object({ calls: Type.Array(ReportedCall, { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false })]),
      response: { 200: Type.Ref(CallStats), ...errorResponses }
    }
  }, async (req) => {
    const { name } = req.params
    // 404 before anything is counted.
    app.daemon.supervisor.manifest(name)
    const body = req.body
    await invoker.recordCalls(name, 'calls' in body ? body.calls : [body])
    return invoker.calls(name)
  })
}

export default calls
