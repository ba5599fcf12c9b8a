// The audit log: every call that changes something, whatever its outcome, and every reload by
// SIGHUP, written through one `record()`. A failed write is logged and never fails the call.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { AuditEntry } from '../store/audit-store.js'
import type { RouteKind } from '../route-kind.js'
import { routeFacts } from './route-facts.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Appends one entry to the audit log; never throws. */
    recordAudit: (entry: AuditEntry) => void
  }
}

const UNMATCHED = '(no route)'

/** Calls that change something; the invoke proxy is data, not management. */
function audited (method: string, kind: RouteKind): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS' && kind !== 'invoke'
}

async function auditPlugin (fastify: FastifyInstance): Promise<void> {
  const { audit } = fastify.daemon
  const record = (entry: AuditEntry): void => {
    try {
      audit.append(entry)
    } catch (err) {
      fastify.log.error({ err }, 'writing the audit log failed')
    }
  }
  fastify.decorate('recordAudit', record)
  // Callback style: runs on every request, and an async hook costs a promise each.
  fastify.addHook('onResponse', (req, reply, done) => {
    const route = routeFacts(req)
    if (audited(req.method, route.kind)) {
      const params = req.params as { name?: unknown } | undefined
      record({
        at: Date.now(),
        actor: req.principal?.name ?? 'anonymous',
        role: req.principal?.role ?? null,
        remote: req.ip ?? null,
        method: req.method,
        route: route.pattern ?? UNMATCHED,
        url: req.url,
        plugin: typeof params?.name === 'string' ? params.name : null,
        status: reply.statusCode,
        requestId: String(req.id),
        durationMs: Math.round(reply.elapsedTime * 1000) / 1000
      })
    }
    done()
  })
}

// auth decorates req.principal, the actor of each entry.
export default fp(auditPlugin, { name: 'audit', fastify: '5.x', dependencies: ['daemon', 'auth', 'route-facts'] })
