// The SQLite file: migrations in one transaction with user_version, WAL, newer schema refused.
import t from 'tap'
import path from 'node:path'
import Database from 'better-sqlite3'
import { migrate, openDatabase, readMigrations } from '../src/store/database.js'
import { createStateStore } from '../src/store/state-store.js'
import { tempDir } from './helper.js'

t.test('a new database is migrated to the latest version, in WAL mode', async (t) => {
  const dir = tempDir()
  const db = openDatabase(dir)
  t.teardown(() => db.close())
  t.equal(db.pragma('user_version', { simple: true }), readMigrations().length)
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal')
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name)
  t.ok(tables.includes('state_events') && tables.includes('plugin_desired') && tables.includes('plugin_process'))
})

t.test('opening again applies nothing twice', async (t) => {
  const dir = tempDir()
  openDatabase(dir).close()
  const db = openDatabase(dir)
  t.teardown(() => db.close())
  t.equal(db.pragma('user_version', { simple: true }), readMigrations().length)
})

t.test('a failing migration leaves the database at the previous version', async (t) => {
  const db = new Database(path.join(tempDir(), 'x.db'))
  t.teardown(() => db.close())
  const migrations = [
    { version: 1, name: '001-a.sql', sql: 'CREATE TABLE a (x INTEGER);' },
    { version: 2, name: '002-b.sql', sql: 'CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);' }
  ]
  t.throws(() => migrate(db, migrations), /no such table: nowhere/)
  t.equal(db.pragma('user_version', { simple: true }), 1, 'version 1 applied, version 2 rolled back')
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name)
  t.same(tables, ['a'], 'no half-applied migration')
})

t.test('a database newer than the code is refused with a clear message', async (t) => {
  const dir = tempDir()
  const db = new Database(path.join(dir, 'plugvisor.db'))
  db.pragma('user_version = 999')
  db.close()
  t.throws(() => openDatabase(dir), { code: 'PLUGVISOR_DATABASE_TOO_NEW' })
  t.throws(() => openDatabase(dir), /schema version 999 is newer than this plugvisor knows/)
})

t.test('state events are stored newest first and pruned in chunks', async (t) => {
  const db = openDatabase(tempDir())
  t.teardown(() => db.close())
  const store = createStateStore(db)
  for (let i = 0; i < 5; i++) store.addEvent({ plugin: 'p', at: i * 1000, from: 'running', to: 'backoff', reason: 'crash', exitCode: i, signal: null, restartCount: i, error: null })
  t.same(store.events('p', { limit: 2 }).map((e) => e.exitCode), [4, 3])
  t.same(store.events('p', { since: 3000 }).map((e) => e.exitCode), [4, 3])
  t.equal(store.pruneEvents(3000, 2), 2, 'at most one chunk per call')
  t.equal(store.pruneEvents(3000, 2), 1)
  t.same(store.events('p').map((e) => e.exitCode), [4, 3])
})
