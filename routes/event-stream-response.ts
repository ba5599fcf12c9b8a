// The opening of a server-sent events answer, shared by GET /events and the log follow stream:
// a 503 with Retry-After while the stream is at its client cap, else the raw response with the
// event-stream headers written (Fastify no longer answers for it).
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ServerResponse } from 'node:http'
import { errors } from '../src/errors.js'
import { FULL_RETRY_AFTER_S } from '../src/events/event-stream.js'

export function openEventStream (req: FastifyRequest, reply: FastifyReply, stream: { full: () => boolean, clientCount: () => number }, what?: string): ServerResponse {
  if (stream.full()) {
    reply.header('retry-after', String(FULL_RETRY_AFTER_S))
    throw new errors.EventStreamFull(what === undefined ? stream.clientCount() : `${stream.clientCount()} ${what}`)
  }
  reply.hijack()
  const res = reply.raw
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-request-id': req.id
  })
  return res
}
