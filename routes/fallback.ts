// /plugins/:name/fallback: the fallback as a state (who answers the plugin's calls), and an
// operator's activation and deactivation. The invoker owns the state.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { FallbackTarget } from '../src/config/schema.js'
import { FallbackInfo } from '../src/invoke/fallback.js'
import { ErrorResponse, PluginParams, errorResponses } from './schemas.js'
import { OPTIONAL_BODY } from '../src/plugins/api-contract.js'

const fallback: FastifyPluginAsyncTypebox = async (app) => {
  const { invoker } = app.daemon
  const conflict = { 409: Type.Ref(ErrorResponse, { description: 'PLUGVISOR_CONFLICT: neither the body nor the manifest names a fallback' }) }

  app.get('/plugins/:name/fallback', {
    schema: { tags: ['invoke'], summary: 'The fallback of the plugin: whether calls go to it now, in which mode, since when and why, how many it answered', params: PluginParams, response: { 200: Type.Ref(FallbackInfo), ...errorResponses } }
  }, async (req) => invoker.fallback(req.params.name))

  app.post('/plugins/:name/fallback/activate', {
    schema: {
      tags: ['invoke'],
      summary: 'Send every call to the fallback (mode manual) until deactivated, overriding auto mode; an optional body { plugin } or { status, body } names the fallback to use instead of the manifest\'s',
      params: PluginParams,
      // Per content type, so that a request without a body (no content type) is not validated.
      body: { content: { 'application/json': { schema: FallbackTarget } } },
      [OPTIONAL_BODY]: true,
      response: { 200: Type.Ref(FallbackInfo), ...errorResponses, ...conflict }
    }
  }, async (req) => invoker.activateFallback(req.params.name, req.body as FallbackTarget | undefined ?? undefined, req.principal?.name ?? 'anonymous'))

  app.post('/plugins/:name/fallback/deactivate', {
    schema: { tags: ['invoke'], summary: 'End a manual activation (and its override): auto mode again when the manifest names a fallback, else off', params: PluginParams, response: { 200: Type.Ref(FallbackInfo), ...errorResponses } }
  }, async (req) => invoker.deactivateFallback(req.params.name, req.principal?.name ?? 'anonymous'))
}

export default fallback
