-- Break-glass grants: the org's admins are told again when a grant ends
-- (by time or by withdrawal); end_notified records that the notice is queued.
ALTER TABLE sysadmin_grants ADD COLUMN end_notified INTEGER NOT NULL DEFAULT 0;
