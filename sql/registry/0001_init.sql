-- The registry: organizations, their wrapped keys, the deployment's keys
-- and flags. Sysadmins and their assignments come with their own migration.
CREATE TABLE orgs (
  id          TEXT PRIMARY KEY,
  slug        TEXT NOT NULL UNIQUE,
  name        TEXT NOT NULL,
  state       TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled')),
  created_at  TEXT NOT NULL
);

-- Per-org keys, random, wrapped under the master key with associated data
-- "immidb-org-key-v1|<org-id>|<purpose>|<version>".
CREATE TABLE org_keys (
  org_id      TEXT NOT NULL REFERENCES orgs(id),
  purpose     TEXT NOT NULL CHECK (purpose IN ('db', 'field')),
  version     INTEGER NOT NULL CHECK (version >= 1),
  wrapped     BLOB NOT NULL,
  created_at  TEXT NOT NULL,
  PRIMARY KEY (org_id, purpose, version)
);

-- Deployment-wide keys: the Ed25519 log-signing key (public key in clear,
-- the 32-byte seed wrapped with owner "deployment", purpose "log-sign").
CREATE TABLE deployment_keys (
  purpose     TEXT NOT NULL,
  version     INTEGER NOT NULL CHECK (version >= 1),
  public_key  BLOB NOT NULL,
  wrapped     BLOB NOT NULL,
  created_at  TEXT NOT NULL,
  PRIMARY KEY (purpose, version)
);

-- Deployment flags (maintenance mode and the like), one row per name.
CREATE TABLE flags (
  name        TEXT PRIMARY KEY,
  value       TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);
