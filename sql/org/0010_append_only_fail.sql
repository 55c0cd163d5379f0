-- The append-only triggers of 0006 refuse a bad insert with RAISE(FAIL)
-- instead of RAISE(ABORT); the same inserts are refused, for less work.
--
-- A statement that may abort (a RAISE(ABORT), or a constraint under the
-- default ABORT) and may write more than one row (to SQLite, any insert
-- into a table with a trigger) keeps a statement journal: a copy of every
-- page before its first change, so that ABORT can undo the rows the
-- statement wrote before it failed. That journal was most of an append's
-- cost, inside the write lock. The application's appends write one row,
-- and these BEFORE triggers run before it: under FAIL (which keeps what
-- the statement wrote before the failure) there is nothing to keep, so
-- they refuse exactly what ABORT refused. With FAIL here and INSERT OR
-- FAIL in the application's appends (lib/audit/accesslog.c, changelog.c),
-- no instruction of an append may abort, and SQLite keeps no journal.
-- (A multi-row INSERT ... SELECT, which only SQL run by hand can be, now
-- keeps the rows before the refused one: each passed the trigger, so each
-- is an append.) test/unit/test_accesslog.c checks both appends.
DROP TRIGGER access_log_append_only;
CREATE TRIGGER access_log_append_only BEFORE INSERT ON access_log
WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM access_log)
BEGIN SELECT RAISE(FAIL, 'access_log is append-only'); END;

DROP TRIGGER change_log_append_only;
CREATE TRIGGER change_log_append_only BEFORE INSERT ON change_log
WHEN NEW.seq > 0 AND NEW.seq <= (SELECT coalesce(max(seq), 0) FROM change_log)
BEGIN SELECT RAISE(FAIL, 'change_log is append-only'); END;
