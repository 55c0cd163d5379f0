-- Platform staff (sysadmins): their accounts with a mandatory second factor,
-- their sessions, and their grants to organizations (assigned by an operator
-- or taken by break-glass). Times of sessions are unix seconds.
CREATE TABLE sysadmins (
  id              TEXT PRIMARY KEY,
  email           TEXT NOT NULL UNIQUE COLLATE NOCASE,
  name            TEXT NOT NULL,
  password_hash   TEXT NOT NULL,
  totp_secret     BLOB NOT NULL,   -- encrypted with a key derived from the master key
  totp_last_step  INTEGER NOT NULL DEFAULT 0,
  disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  created_at      TEXT NOT NULL
);

CREATE TABLE sysadmin_sessions (
  token_hash   BLOB PRIMARY KEY,
  sysadmin_id  TEXT NOT NULL REFERENCES sysadmins(id),
  csrf_token   TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  last_seen    INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  ip           TEXT NOT NULL DEFAULT ''
);

CREATE TABLE sysadmin_grants (
  id           INTEGER PRIMARY KEY,
  sysadmin_id  TEXT NOT NULL REFERENCES sysadmins(id),
  org_id       TEXT NOT NULL REFERENCES orgs(id),
  kind         TEXT NOT NULL CHECK (kind IN ('assigned', 'break_glass')),
  assigned_at  TEXT NOT NULL,
  expires_at   TEXT,            -- NULL: until withdrawn
  revoked_at   TEXT,
  reason       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sysadmin_grants_org ON sysadmin_grants(org_id, sysadmin_id);
