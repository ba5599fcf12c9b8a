// The daemon's storage in one SQLite file: lifecycle state, health history, audit log. The rest
// of the daemon sees only the interfaces below, never the database handle.
import { openDatabase } from './database.js'
import { createStoreStatus, type StoreStatus } from './store-status.js'
import { createStateStore, type StateStore } from './state-store.js'
import { createAuditStore, type AuditStore } from './audit-store.js'
import { createHealthStore } from './health-store.js'
import type { HealthHistoryStore } from '../health/health-history.js'

export interface Store {
  readonly lifecycle: StateStore
  readonly healthHistory: HealthHistoryStore
  readonly audit: AuditStore
  /** Whether the last write went through. */
  readonly status: StoreStatus
  /**
   * Copies the write-ahead log into the database file and truncates it to zero bytes, so the
   * -wal file cannot grow without bound (SQLite's own checkpoint after 1000 pages never
   * truncates it). Throws when it cannot (a full disk).
   */
  checkpoint: () => void
  close: () => void
}

/** How often the daemon checkpoints the write-ahead log and writes again what a failed write missed (ms). */
export const STORE_MAINTENANCE_INTERVAL_MS = 60_000

/** Opens (creating and migrating) dataDir/plugvisor.db. */
export function openStore (dataDir: string): Store {
  const db = openDatabase(dataDir)
  const status = createStoreStatus()
  return {
    lifecycle: createStateStore(db, status),
    healthHistory: createHealthStore(db, status),
    audit: createAuditStore(db, status),
    status,
    checkpoint: () => { db.pragma('wal_checkpoint(TRUNCATE)') },
    close: () => db.close()
  }
}
