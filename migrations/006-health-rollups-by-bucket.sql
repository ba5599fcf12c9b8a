-- The rollups keyed by bucket first. Every flush adds to the current minute and hour of every
-- probed plugin: keyed (plugin, resolution, bucket), those rows lay on a page of their own for
-- each plugin (500 plugins: about 500 pages written to the journal and the file every second);
-- keyed (resolution, bucket, plugin), they are neighbours on a few pages. The history of one
-- plugin is read through the index on (plugin, resolution, bucket), which a flush only changes
-- when a new minute or hour begins.
CREATE TABLE health_rollups_by_bucket (
  plugin      TEXT NOT NULL,
  resolution  TEXT NOT NULL CHECK (resolution IN ('minute', 'hour')),
  bucket      INTEGER NOT NULL,
  count       INTEGER NOT NULL,
  failures    INTEGER NOT NULL,
  warnings    INTEGER NOT NULL,
  min_ms      REAL NOT NULL,
  max_ms      REAL NOT NULL,
  sum_ms      REAL NOT NULL,
  PRIMARY KEY (resolution, bucket, plugin)
) STRICT, WITHOUT ROWID;
INSERT INTO health_rollups_by_bucket (plugin, resolution, bucket, count, failures, warnings, min_ms, max_ms, sum_ms)
  SELECT plugin, resolution, bucket, count, failures, warnings, min_ms, max_ms, sum_ms FROM health_rollups;
DROP TABLE health_rollups;
ALTER TABLE health_rollups_by_bucket RENAME TO health_rollups;
CREATE INDEX health_rollups_plugin ON health_rollups (plugin, resolution, bucket);
