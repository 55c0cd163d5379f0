-- The access log (storage.md): one hash chain per organization, appended in
-- the transaction of the action it describes. hash = SHA-256 of the domain
-- string, the previous hash and the length-prefixed fields; seq starts at 1
-- and has no gaps. Append-only: triggers refuse UPDATE and DELETE.
CREATE TABLE access_log (
  seq          INTEGER PRIMARY KEY,
  at           TEXT NOT NULL,
  actor_kind   TEXT NOT NULL CHECK (actor_kind IN ('user', 'sysadmin', 'system', 'anonymous')),
  actor_id     TEXT NOT NULL,
  actor_email  TEXT NOT NULL,
  via          TEXT NOT NULL CHECK (via IN ('app', 'server', 'system')),
  ip           TEXT NOT NULL,
  action       TEXT NOT NULL,
  target       TEXT NOT NULL,
  reason       TEXT NOT NULL,
  outcome      TEXT NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed')),
  detail       TEXT NOT NULL,
  prev_hash    BLOB NOT NULL,
  hash         BLOB NOT NULL
);
CREATE INDEX access_log_action ON access_log(action, seq);
CREATE INDEX access_log_actor ON access_log(actor_kind, seq);
CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END;
CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END;
