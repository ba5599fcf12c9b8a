// The audit log: one row per mutating management call (and per reload by signal). Rare next to
// probes, so each is one synchronous insert; read newest first, pruned in chunks.
import type { Db } from './database.js'

export interface AuditEntry {
  at: number
  actor: string
  role: string | null
  remote: string | null
  method: string
  route: string
  url: string
  plugin: string | null
  status: number
  requestId: string
  durationMs: number
}

export function createAuditStore (db: Db) {
  const insert = db.prepare(`INSERT INTO audit_log (at, actor, role, remote, method, route, url, plugin, status, request_id, duration_ms)
    VALUES (@at, @actor, @role, @remote, @method, @route, @url, @plugin, @status, @requestId, @durationMs)`)
  const select = db.prepare(`SELECT id, at, actor, role, remote, method, route, url, plugin, status, request_id AS requestId, duration_ms AS durationMs
    FROM audit_log WHERE at >= @since AND (@plugin IS NULL OR plugin = @plugin) ORDER BY id DESC LIMIT @limit`)
  const prune = db.prepare('DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? LIMIT ?)')
  return {
    append (e: AuditEntry): void {
      insert.run(e)
    },
    /** Newest first. */
    list (q: { plugin?: string, since?: number, limit: number }): (AuditEntry & { id: number })[] {
      return select.all({ plugin: q.plugin ?? null, since: q.since ?? 0, limit: q.limit }) as (AuditEntry & { id: number })[]
    },
    /** Deletes at most `chunk` entries older than `before`; returns how many. */
    prune (before: number, chunk = 1000): number {
      return prune.run(before, chunk).changes
    }
  }
}

export type AuditStore = ReturnType<typeof createAuditStore>
