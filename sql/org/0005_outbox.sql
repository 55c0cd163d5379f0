-- The notification outbox: rows written in the transaction of their cause,
-- delivered by mail outside the request path (immidb-admin notify deliver),
-- one delivery per org admin, retried with exponential back-off.
CREATE TABLE notifications (
  id          TEXT PRIMARY KEY,
  at          TEXT NOT NULL,
  kind        TEXT NOT NULL CHECK (kind IN ('sysadmin_access', 'break_glass', 'update_scheduled',
                                            'update_done', 'export', 'lockout')),
  subject_id  TEXT NOT NULL DEFAULT '',   -- e.g. the sysadmin, for "once per hour"
  summary     TEXT NOT NULL,
  body        TEXT NOT NULL
);
CREATE INDEX notifications_kind ON notifications(kind, subject_id, at);

CREATE TABLE deliveries (
  notification_id  TEXT NOT NULL REFERENCES notifications(id),
  recipient        TEXT NOT NULL,
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL,      -- unix seconds
  delivered_at     TEXT,
  last_error       TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (notification_id, recipient)
);
CREATE INDEX deliveries_due ON deliveries(delivered_at, next_attempt_at);
