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
  /** Whether the schema is as migrated and the last write went through. */
  readonly status: StoreStatus
  close: () => void
}

/** Opens (creating and migrating) dataDir/plugvisor.db. */
export function openStore (dataDir: string): Store {
  const db = openDatabase(dataDir)
  const status = createStoreStatus()
  return {
    lifecycle: createStateStore(db, status),
    healthHistory: createHealthStore(db, status),
    audit: createAuditStore(db, status),
    status,
    close: () => db.close()
  }
}
