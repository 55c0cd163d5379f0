-- The field-key version this database's sensitive values are encrypted
-- under. It changes in the same transaction that re-encrypts every value
-- (immidb-admin keys rotate --org), so whoever opens the database takes the
-- field key the data needs, even after a rotation cut short or a restore of
-- a backup made before one.
CREATE TABLE key_state (
  purpose  TEXT PRIMARY KEY CHECK (purpose IN ('field')),
  version  INTEGER NOT NULL CHECK (version >= 1)
);
INSERT INTO key_state (purpose, version) VALUES ('field', 1);
-- Rebuilt by a field-key rotation in the transaction that re-encrypts: the
-- schema change tells every open connection (the workers' cached handles) to
-- look again and take the new key before it reads or writes a value.
CREATE INDEX key_state_version ON key_state(version);

-- Signed checkpoints of the access log kept by the deployment: at least one
-- a day is signed and stored (by the notification deliverer), besides the
-- ones signed on request. Append-only, like the log they vouch for.
CREATE TABLE checkpoints (
  id         INTEGER PRIMARY KEY,
  size       INTEGER NOT NULL CHECK (size >= 1),
  head       BLOB NOT NULL,
  note       TEXT NOT NULL,
  signed_at  INTEGER NOT NULL   -- unix seconds
);
CREATE INDEX checkpoints_signed ON checkpoints(signed_at);
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
