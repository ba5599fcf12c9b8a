// The audit log: one row per mutating management call (and per reload by signal). Rare next to
// probes, so each is one synchronous insert; read newest first, pruned in chunks.
import { Type, type Static } from '@sinclair/typebox'
import type { Db } from './database.js'
import { createStoreStatus, type StoreStatus } from './store-status.js'
import { Timestamp, type InMs } from '../shapes.js'
import { ROLES } from '../config/schema.js'

/** One audited call, as GET /audit lists it. */
export const AuditEntry = Type.Object({
  id: Type.Integer(),
  at: Timestamp,
  actor: Type.String({ description: "Token name; 'anonymous' without a valid token (or with auth.mode none); 'signal' for a reload by SIGHUP; 'watch' for a reload after a file change; 'supervisor' for a spawn it refused (method SPAWN, route (checksum)) and for an automatic switch of a plugin's fallback (method ACTIVATE or DEACTIVATE, route (fallback), url: from -> to: reason)" }),
  role: Type.Union([...ROLES.map((r) => Type.Literal(r)), Type.Null()]),
  remote: Type.Union([Type.String(), Type.Null()], { description: 'Client address' }),
  method: Type.String(),
  route: Type.String({ description: 'Route pattern' }),
  url: Type.String({ description: 'Path and query as sent; bodies are never stored' }),
  plugin: Type.Union([Type.String(), Type.Null()]),
  status: Type.Integer({ description: 'HTTP status of the answer (401/403 for refused calls)' }),
  requestId: Type.String(),
  durationMs: Type.Number()
})
/** An entry to append: `at` in ms since the epoch, no id yet. */
export type AuditEntry = Omit<InMs<Static<typeof AuditEntry>, 'at'>, 'id'>

export function createAuditStore (db: Db, status: StoreStatus = createStoreStatus()) {
  const insert = db.prepare(`INSERT INTO audit_log (at, actor, role, remote, method, route, url, plugin, status, request_id, duration_ms)
    VALUES (@at, @actor, @role, @remote, @method, @route, @url, @plugin, @status, @requestId, @durationMs)`)
  const select = db.prepare(`SELECT id, at, actor, role, remote, method, route, url, plugin, status, request_id AS requestId, duration_ms AS durationMs
    FROM audit_log WHERE at >= @since AND (@plugin IS NULL OR plugin = @plugin) ORDER BY id DESC LIMIT @limit`)
  const prune = db.prepare('DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? LIMIT ?)')
  return {
    append (e: AuditEntry): void {
      status.run(() => insert.run(e))
    },
    /** Newest first. */
    list (q: { plugin?: string, since?: number, limit: number }): (AuditEntry & { id: number })[] {
      return select.all({ plugin: q.plugin ?? null, since: q.since ?? 0, limit: q.limit }) as (AuditEntry & { id: number })[]
    },
    /** Deletes at most `chunk` entries older than `before`; returns how many. */
    prune (before: number, chunk = 1000): number {
      return status.run(() => prune.run(before, chunk).changes)
    }
  }
}

export type AuditStore = ReturnType<typeof createAuditStore>
