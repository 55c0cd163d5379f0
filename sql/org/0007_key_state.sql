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
