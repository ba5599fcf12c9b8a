-- Who changed what, when, from where, with what result: every mutating management call,
-- whatever its outcome (refused ones included), and reloads by signal.
CREATE TABLE audit_log (
  id          INTEGER PRIMARY KEY,
  at          INTEGER NOT NULL,
  actor       TEXT NOT NULL,      -- token name; 'anonymous' with auth.mode none or no valid token; 'signal' for SIGHUP
  role        TEXT,               -- viewer | admin, when a valid token was sent
  remote      TEXT,               -- client address
  method      TEXT NOT NULL,
  route       TEXT NOT NULL,      -- route pattern, e.g. /plugins/:name/restart
  url         TEXT NOT NULL,      -- path and query as sent (bodies are never stored)
  plugin      TEXT,               -- the :name of the route, when it has one
  status      INTEGER NOT NULL,
  request_id  TEXT NOT NULL,
  duration_ms REAL NOT NULL
) STRICT;
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_plugin_at ON audit_log (plugin, at);
