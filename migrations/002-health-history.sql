-- Every probe result (raw), kept history.rawRetentionHours. Written in batches, one transaction per flush.
CREATE TABLE health_checks (
  id          INTEGER PRIMARY KEY,
  plugin      TEXT NOT NULL,
  at          INTEGER NOT NULL,
  probe       TEXT NOT NULL CHECK (probe IN ('http', 'tcp', 'exec')),
  phase       TEXT NOT NULL CHECK (phase IN ('startup', 'regular')),
  result      TEXT NOT NULL CHECK (result IN ('success', 'warn', 'failure')),
  duration_ms REAL NOT NULL,
  error       TEXT
) STRICT;
CREATE INDEX health_checks_plugin_at ON health_checks (plugin, at);
CREATE INDEX health_checks_at ON health_checks (at);

-- Minute and hour rollups of the raw results, maintained at flush time, kept history.rollupRetentionDays.
-- bucket is the start of the minute or hour (ms since the epoch); avg latency = sum_ms / count.
CREATE TABLE health_rollups (
  plugin      TEXT NOT NULL,
  resolution  TEXT NOT NULL CHECK (resolution IN ('minute', 'hour')),
  bucket      INTEGER NOT NULL,
  count       INTEGER NOT NULL,
  failures    INTEGER NOT NULL,
  warnings    INTEGER NOT NULL,
  min_ms      REAL NOT NULL,
  max_ms      REAL NOT NULL,
  sum_ms      REAL NOT NULL,
  PRIMARY KEY (plugin, resolution, bucket)
) STRICT, WITHOUT ROWID;
CREATE INDEX health_rollups_bucket ON health_rollups (resolution, bucket);
