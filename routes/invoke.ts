// /plugins/:name/invoke/*: the request goes to the plugin through its policies, the answer
// (status, headers, body) streams back. /plugins/:name/circuit: the breaker, and manual control.
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Readable } from 'node:stream'
import type { FastifyReply } from 'fastify'
import { Type } from '@sinclair/typebox'
import { errors } from '../src/errors.js'
import type { InvokeResult } from '../src/invoke/invoker.js'
import { CircuitInfo, circuitView } from '../src/invoke/circuit.js'
import { ErrorResponse, InvokeParams, PluginParams, errorResponses } from './schemas.js'

const INVOKE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
// The plugin's path: everything after /plugins/<name>/invoke in the raw URL, query included.
const PREFIX = /^\/plugins\/[^/?]+\/invoke/

const invoke: FastifyPluginAsyncTypebox = async (app) => {
  const { invoker } = app.daemon

  const failure = (r: Extract<InvokeResult, { type: 'failure' }>): Error => {
    switch (r.reason) {
      case 'circuit-open': return new errors.CircuitOpen(r.plugin)
      case 'timeout': return new errors.PluginTimeout(r.plugin, r.timeoutMs)
      case 'unavailable':
      case 'rejected':
      case 'connection':
        return new errors.PluginUnavailable(r.plugin, r.message)
      default: {
        const never: never = r.reason
        throw new Error(`unknown failure ${String(never)}`)
      }
    }
  }

  // Its own scope: the proxy's bodies pass through as they are, of any content type (no parsing,
  // no 415); the circuit routes below parse JSON (and its limit) like every other route.
  await app.register(async (scope) => {
    const proxy = scope.withTypeProvider<TypeBoxTypeProvider>()
    proxy.removeAllContentTypeParsers()
    proxy.addContentTypeParser('*', (_req, payload, done) => { done(null, payload) })
    for (const url of ['/plugins/:name/invoke', '/plugins/:name/invoke/*']) {
      proxy.route({
        method: INVOKE_METHODS,
        url,
        schema: {
          tags: ['invoke'],
          summary: 'Forward the request (method, path after /invoke, query, headers, body) to the plugin through its resilience policies; the plugin\'s answer comes back as it is',
          params: InvokeParams,
          response: {
            404: Type.Ref(ErrorResponse),
            413: Type.Ref(ErrorResponse),
            503: Type.Ref(ErrorResponse),
            504: Type.Ref(ErrorResponse)
          }
        },
        handler: async (req, reply) => {
          const { name } = req.params
          const raw = req.raw.url ?? req.url
          const path = raw.replace(PREFIX, '')
          const result = await invoker.invoke({
            plugin: name,
            method: req.method,
            path: path.startsWith('/') ? path : `/${path}`,
            headers: req.headers,
            body: req.body as Readable | undefined,
            clientIp: req.ip,
            requestId: req.id
          })
          if (result.type === 'failure') throw failure(result)
          // The plugin's status and body pass as they are, outside the error schemas above.
          const passThrough = reply as unknown as FastifyReply
          return passThrough.code(result.statusCode).headers(result.headers).send(result.body)
        }
      })
    }
  })

  // The breaker, and manual control: each answers the circuit as it is afterwards.
  const circuitRoutes = [
    { method: 'GET', url: '/plugins/:name/circuit', act: (n: string) => invoker.circuit(n), summary: 'The circuit breaker of calls into the plugin: state, failures counted, when it opened and lets a trial through, bulkhead use' },
    { method: 'POST', url: '/plugins/:name/circuit/reset', act: (n: string) => invoker.reset(n), summary: 'Close the circuit (also an isolated one) and forget the failures counted' },
    { method: 'POST', url: '/plugins/:name/circuit/isolate', act: (n: string) => invoker.isolate(n), summary: 'Hold the circuit open (calls refused with 503 PLUGVISOR_CIRCUIT_OPEN, or the fallback) until a reset' }
  ] as const
  for (const { method, url, act, summary } of circuitRoutes) {
    app.route({
      method,
      url,
      schema: { tags: ['invoke'], summary, params: PluginParams, response: { 200: Type.Ref(CircuitInfo), ...errorResponses } },
      handler: async (req) => circuitView(req.params.name, act(req.params.name))
    })
  }
}

export default invoke
