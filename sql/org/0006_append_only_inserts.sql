-- UPDATE and DELETE triggers do not cover INSERT OR REPLACE: SQLite removes
-- the old row without firing DELETE triggers. So an insert must also be an
-- append: the access log's next seq exactly (no overwrite, no gap), and a
-- change-log row never over an existing seq (its seq is assigned: -1 here).
CREATE TRIGGER access_log_append_only BEFORE INSERT ON access_log
WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM access_log)
BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END;

CREATE TRIGGER change_log_append_only BEFORE INSERT ON change_log
WHEN NEW.seq > 0 AND NEW.seq <= (SELECT coalesce(max(seq), 0) FROM change_log)
BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;
