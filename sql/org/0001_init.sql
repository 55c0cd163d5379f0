-- One organization's database: its users and its settings. The case data,
-- sessions, logs and outbox come with the migrations that introduce them.
CREATE TABLE users (
  id             TEXT PRIMARY KEY,
  email          TEXT NOT NULL UNIQUE COLLATE NOCASE,
  name           TEXT NOT NULL,
  role           TEXT NOT NULL CHECK (role IN ('admin', 'member', 'readonly')),
  password_hash  TEXT NOT NULL,
  disabled       INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  created_at     TEXT NOT NULL,
  updated_at     TEXT NOT NULL,
  version        INTEGER NOT NULL DEFAULT 1
);

-- The organization's settings: exactly one row (id = 1).
CREATE TABLE settings (
  id                      INTEGER PRIMARY KEY CHECK (id = 1),
  name                    TEXT NOT NULL,
  require_mfa             INTEGER NOT NULL DEFAULT 0,
  ip_allowlist            TEXT NOT NULL DEFAULT '',
  session_idle_minutes    INTEGER NOT NULL DEFAULT 30,
  notify_sysadmin_access  INTEGER NOT NULL DEFAULT 1,
  notify_updates          TEXT NOT NULL DEFAULT 'after' CHECK (notify_updates IN ('after', 'before')),
  integration_google      INTEGER NOT NULL DEFAULT 0,
  integration_microsoft   INTEGER NOT NULL DEFAULT 0,
  updated_at              TEXT NOT NULL,
  version                 INTEGER NOT NULL DEFAULT 1
);
