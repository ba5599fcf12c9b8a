// GET /events: server-sent events (transition, health, restart, circuit, fallback, config). The stream is the raw socket,
// so the reply is hijacked; the event stream service owns formatting, keep-alive and slow clients.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { FULL_RETRY_AFTER_S } from '../src/events/event-stream.js'
import { openEventStream } from './event-stream-response.js'
import { ErrorResponse } from './schemas.js'

const events: FastifyPluginAsyncTypebox = async (app) => {
  const stream = app.daemon.events

  app.get('/events', {
    schema: {
      tags: ['observability'],
      summary: 'Server-sent events: `event:` transition | health | restart | circuit, `data:` JSON { plugin, from, to, reason, at }; `event: fallback` when calls go to a plugin\'s fallback or back, `data:` { plugin, from, to: inactive | auto | manual, reason, at, target, actor }; `event: hook` after every run of a lifecycle hook, `data:` { plugin, hook, kind, target, outcome, durationMs, reason, actor, at }; `event: config` after every reload, `data:` { trigger, files, added, removed, changed, reconfigured, kept, problems, refused, at }; keep-alive comments every events.keepAliveMs',
      response: {
        200: {
          description: 'An endless text/event-stream',
          content: { 'text/event-stream': { schema: Type.String() } }
        },
        503: Type.Ref(ErrorResponse, { description: `events.maxClients clients are connected already: PLUGVISOR_EVENT_STREAM_FULL, with Retry-After: ${FULL_RETRY_AFTER_S}` })
      }
    }
  }, (req, reply) => {
    const res = openEventStream(req, reply, stream)
    const unsubscribe = stream.subscribe(res)
    res.on('close', unsubscribe)
    req.log.info({ clients: stream.clientCount() }, 'event stream client connected')
  })
}

export default events
