-- Every run of a plugin's lifecycle hook (postStart, preStop, reload).
CREATE TABLE hook_events (
  id          INTEGER PRIMARY KEY,
  plugin      TEXT NOT NULL,
  at          INTEGER NOT NULL,
  hook        TEXT NOT NULL,      -- postStart | preStop | reload
  kind        TEXT NOT NULL,      -- http | exec | signal
  target      TEXT NOT NULL,      -- 'PUT /config', 'SIGHUP', a command line
  outcome     TEXT NOT NULL,      -- success | failure | timeout | cancelled
  duration_ms REAL NOT NULL,
  reason      TEXT NOT NULL,
  actor       TEXT                -- the operator whose call ran it; NULL when the supervisor did
) STRICT;
CREATE INDEX hook_events_plugin_at ON hook_events (plugin, at);
