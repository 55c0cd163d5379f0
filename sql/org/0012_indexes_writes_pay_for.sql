-- Two indexes that every record PATCH paid for on every write.
--
-- change_log_entity (0003): no query reads through it. The change-log list
-- (lib/audit/changelog.c) filters with (?3 IS NULL OR entity_id = ?3),
-- which SQLite 3.15 cannot match to an index, and walks the log by seq.
-- Yet each change inserted an entry at a random place in it (the entries
-- of one record sit together), and SQLite rebalances full index leaves
-- three at a time: under PATCH load it wrote about 2.7 of the 4.9 pages
-- each change added to the WAL, each encrypted and authenticated.
--
-- clients_last4 (0003) was partial (WHERE a_number_last4 IS NOT NULL), and
-- SQLite 3.15 rewrites a partial index on every UPDATE of the table, whatever
-- the columns set: an entry deleted and inserted again, one more page, for
-- a phone number changed. Without the WHERE it is rewritten only when the
-- A-number is; clients without one add an entry for NULL, which no search
-- asks for (a_number_last4 = ? is never true of NULL). The search plan is
-- the same (docs/security.md).
DROP INDEX change_log_entity;
DROP INDEX clients_last4;
CREATE INDEX clients_last4 ON clients(a_number_last4);
