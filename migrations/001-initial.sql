-- What an operator asked for, per plugin: survives daemon restarts.
CREATE TABLE plugin_desired (
  plugin      TEXT PRIMARY KEY,
  desired     TEXT NOT NULL CHECK (desired IN ('running', 'stopped')),
  updated_at  INTEGER NOT NULL
) STRICT;

-- The process a plugin runs as, while it runs: lets the next daemon find what a hard-killed one left behind.
CREATE TABLE plugin_process (
  plugin          TEXT PRIMARY KEY,
  pid             INTEGER NOT NULL,
  pgid            INTEGER NOT NULL,
  start_ticks     INTEGER,
  boot_id         TEXT NOT NULL,
  stop_signal     TEXT NOT NULL,
  stop_timeout_ms INTEGER NOT NULL,
  started_at      INTEGER NOT NULL
) STRICT;

-- Every lifecycle transition.
CREATE TABLE state_events (
  id          INTEGER PRIMARY KEY,
  plugin      TEXT NOT NULL,
  at          INTEGER NOT NULL,
  from_state  TEXT NOT NULL,
  to_state    TEXT NOT NULL,
  reason      TEXT NOT NULL,
  exit_code   INTEGER,
  signal      TEXT,
  restart_count INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX state_events_plugin_at ON state_events (plugin, at);
