-- The case data: clients, cases, events, notes, portal credentials, and the
-- change log. Every record has a public id and an internal rowid (rid) that
-- orders lists by creation, so a cursor never skips or repeats a record
-- while others are inserted. Sensitive columns hold field-key ciphertext
-- (storage.md); deleted records keep deleted_at and stay for the change log.

CREATE TABLE clients (
  rid               INTEGER PRIMARY KEY,
  id                TEXT NOT NULL UNIQUE,
  family_name       TEXT NOT NULL,
  given_name        TEXT NOT NULL,
  other_names       TEXT,
  date_of_birth     TEXT,
  country_of_birth  TEXT,
  citizenship       TEXT,
  email             TEXT,
  phone             TEXT,
  address           TEXT,
  a_number          BLOB,
  a_number_last4    BLOB,   -- keyed BLAKE2b of the last four digits, for search
  passport_number   BLOB,
  ssn               BLOB,
  notes             TEXT,
  version           INTEGER NOT NULL DEFAULT 1,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  created_by        TEXT NOT NULL,
  updated_by        TEXT NOT NULL,
  deleted_at        TEXT
);
CREATE INDEX clients_last4 ON clients(a_number_last4) WHERE a_number_last4 IS NOT NULL;

CREATE TABLE cases (
  rid               INTEGER PRIMARY KEY,
  id                TEXT NOT NULL UNIQUE,
  client_id         TEXT NOT NULL REFERENCES clients(id),
  case_type         TEXT NOT NULL,
  title             TEXT,
  status            TEXT NOT NULL DEFAULT 'open',
  receipt_number    TEXT,
  priority_date     TEXT,
  assigned_user_id  TEXT REFERENCES users(id),
  notes             TEXT,
  version           INTEGER NOT NULL DEFAULT 1,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  created_by        TEXT NOT NULL,
  updated_by        TEXT NOT NULL,
  deleted_at        TEXT
);
CREATE INDEX cases_client ON cases(client_id, rid);
CREATE INDEX cases_status ON cases(status, rid);

CREATE TABLE events (
  rid               INTEGER PRIMARY KEY,
  id                TEXT NOT NULL UNIQUE,
  title             TEXT NOT NULL,
  kind              TEXT NOT NULL,
  starts_at         TEXT NOT NULL,
  ends_at           TEXT,
  all_day           INTEGER NOT NULL DEFAULT 0,
  location          TEXT,
  case_id           TEXT REFERENCES cases(id),
  owner_user_id     TEXT REFERENCES users(id),
  sync              INTEGER NOT NULL DEFAULT 0,
  sync_status       TEXT NOT NULL DEFAULT 'none',
  version           INTEGER NOT NULL DEFAULT 1,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  created_by        TEXT NOT NULL,
  updated_by        TEXT NOT NULL,
  deleted_at        TEXT
);
CREATE INDEX events_case ON events(case_id, rid);
CREATE INDEX events_starts ON events(starts_at);

CREATE TABLE notes (
  rid               INTEGER PRIMARY KEY,
  id                TEXT NOT NULL UNIQUE,
  body              TEXT NOT NULL,
  client_id         TEXT REFERENCES clients(id),
  case_id           TEXT REFERENCES cases(id),
  version           INTEGER NOT NULL DEFAULT 1,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  created_by        TEXT NOT NULL,
  updated_by        TEXT NOT NULL,
  deleted_at        TEXT
);
CREATE INDEX notes_client ON notes(client_id, rid);
CREATE INDEX notes_case ON notes(case_id, rid);

CREATE TABLE credentials (
  rid               INTEGER PRIMARY KEY,
  id                TEXT NOT NULL UNIQUE,
  client_id         TEXT NOT NULL REFERENCES clients(id),
  label             TEXT NOT NULL,
  url               TEXT,
  username          TEXT,
  password          BLOB,
  version           INTEGER NOT NULL DEFAULT 1,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  created_by        TEXT NOT NULL,
  updated_by        TEXT NOT NULL,
  deleted_at        TEXT
);
CREATE INDEX credentials_client ON credentials(client_id, rid);

-- Full-text search (FTS4; docid = the record's rid), kept by the
-- application in the transaction that changes the record.
CREATE VIRTUAL TABLE clients_fts USING fts4(family_name, given_name, other_names, email, tokenize=unicode61);
CREATE VIRTUAL TABLE cases_fts USING fts4(title, case_type, receipt_number, tokenize=unicode61);

-- The change log: append-only.
CREATE TABLE change_log (
  seq          INTEGER PRIMARY KEY,
  at           TEXT NOT NULL,
  actor_kind   TEXT NOT NULL CHECK (actor_kind IN ('user', 'sysadmin', 'system')),
  actor_id     TEXT NOT NULL,
  actor_email  TEXT NOT NULL,
  action       TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),
  entity       TEXT NOT NULL,
  entity_id    TEXT NOT NULL,
  changes      TEXT NOT NULL
);
CREATE INDEX change_log_entity ON change_log(entity, entity_id, seq);
CREATE TRIGGER change_log_no_update BEFORE UPDATE ON change_log
BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;
CREATE TRIGGER change_log_no_delete BEFORE DELETE ON change_log
BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;
