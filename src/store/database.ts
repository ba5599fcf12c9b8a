// Opening the SQLite file and bringing its schema up to date. Each migration and its
// user_version bump run in one transaction; a database newer than this code is refused.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { migrationsDir as defaultMigrationsDir } from '../paths.js'
import { errors } from '../errors.js'

export type Db = Database.Database

/** SQLite checkpoints the write-ahead log into the database when it holds this many pages (4 KiB each). */
export const WAL_AUTOCHECKPOINT_PAGES = 4000

export interface Migration { version: number, name: string, sql: string }

export function readMigrations (dir = defaultMigrationsDir): Migration[] {
  const out: Migration[] = []
  for (const f of readdirSync(dir).sort()) {
    const m = /^(\d{3})-[\w-]+\.sql$/.exec(f)
    if (!m) continue
    out.push({ version: Number(m[1]), name: f, sql: readFileSync(path.join(dir, f), 'utf8') })
  }
  out.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations: expected version ${i + 1}, found ${m.name}`)
  })
  return out
}

export function migrate (db: Db, migrations: Migration[], file = db.name): number {
  const current = db.pragma('user_version', { simple: true }) as number
  const latest = migrations.length
  if (current > latest) throw new errors.DatabaseTooNew(file, current, latest)
  for (const m of migrations.slice(current)) {
    db.transaction(() => {
      db.exec(m.sql)
      db.pragma(`user_version = ${m.version}`)
    }).immediate()
  }
  return latest
}

/** Opens (creating) dataDir/plugvisor.db in WAL mode and migrates it. */
export function openDatabase (dataDir: string, opts: { migrations?: Migration[] } = {}): Db {
  mkdirSync(dataDir, { recursive: true })
  const file = path.join(dataDir, 'plugvisor.db')
  const db = new Database(file)
  try {
    db.pragma('journal_mode = WAL')
    // NORMAL in WAL mode: a killed daemon loses nothing it committed; a power cut may lose the last
    // commits; neither corrupts the file.
    db.pragma('synchronous = NORMAL')
    db.pragma('busy_timeout = 5000')
    // Statement journals and sorts in memory instead of temp files (a history flush wrote its
    // journal to one), and SQLite's own checkpoint after WAL_AUTOCHECKPOINT_PAGES instead of 1000:
    // a flush of 500 probe results dirties about 1,000 pages, so the default checkpointed after
    // nearly every flush and wrote each page twice a second. The WAL file then grows to about 16 MB between the
    // store's checkpoints (store.ts); a power cut may lose the commits since the last checkpoint
    // (a few seconds of probe results), a killed daemon still loses nothing it committed.
    db.pragma('temp_store = MEMORY')
    db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`)
    db.pragma('foreign_keys = ON')
    migrate(db, opts.migrations ?? readMigrations(), file)
  } catch (err) {
    db.close()
    throw err
  }
  return db
}
