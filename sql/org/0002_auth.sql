-- Who gets in: sessions, second factors, login throttling and the record of
-- authentication events (the access log picks these up when it arrives).

ALTER TABLE users ADD COLUMN totp_secret BLOB;          -- field-key ciphertext, NULL if none
ALTER TABLE users ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN password_changed_at TEXT;

-- Only the SHA-256 of a session token is kept. Times are unix seconds.
CREATE TABLE sessions (
  token_hash   BLOB PRIMARY KEY,
  user_id      TEXT NOT NULL REFERENCES users(id),
  csrf_token   TEXT NOT NULL,
  mfa_pending  INTEGER NOT NULL DEFAULT 0 CHECK (mfa_pending IN (0, 1)),
  created_at   INTEGER NOT NULL,
  last_seen    INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  ip           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Single-use recovery codes, stored as SHA-256 of the normalised code.
CREATE TABLE recovery_codes (
  user_id    TEXT NOT NULL REFERENCES users(id),
  code_hash  BLOB NOT NULL,
  used_at    INTEGER,
  PRIMARY KEY (user_id, code_hash)
);

-- Every login attempt (ok or not), for the throttle's sliding window.
CREATE TABLE login_attempts (
  id     INTEGER PRIMARY KEY,
  at     INTEGER NOT NULL,
  email  TEXT NOT NULL COLLATE NOCASE,
  ip     TEXT NOT NULL,
  ok     INTEGER NOT NULL CHECK (ok IN (0, 1))
);
CREATE INDEX login_attempts_email ON login_attempts(email, at);
CREATE INDEX login_attempts_ip ON login_attempts(ip, at);

-- Active lockouts: an email or an address refused until a time.
CREATE TABLE lockouts (
  kind     TEXT NOT NULL CHECK (kind IN ('email', 'ip')),
  subject  TEXT NOT NULL COLLATE NOCASE,
  until    INTEGER NOT NULL,
  PRIMARY KEY (kind, subject)
);

-- Authentication events in one place, for the access log to take over.
CREATE TABLE auth_events (
  id       INTEGER PRIMARY KEY,
  at       INTEGER NOT NULL,
  kind     TEXT NOT NULL,
  email    TEXT NOT NULL DEFAULT '',
  ip       TEXT NOT NULL DEFAULT '',
  user_id  TEXT NOT NULL DEFAULT '',
  detail   TEXT NOT NULL DEFAULT ''
);
