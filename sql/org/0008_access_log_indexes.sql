-- The access log's indexes of 0004 covered every entry, so each append wrote
-- a leaf of each besides the table's, and the list query (lib/audit/
-- accesslog.c) could not use them anyway. Most entries are users' reads
-- (record.read, record.list): these partial indexes leave them out, so such
-- an append writes only the table, and a filter on a rare actor kind or a
-- rare action finds its entries without scanning the log. A filter on
-- 'user' or on a read walks the table by seq, as does no filter.
--
-- SQLite uses a partial index only when the query repeats the index's WHERE
-- term word for word: lib/audit/accesslog.c has the same text in its list
-- query (sql_list_actor_rare, sql_list_action_rare); change both together.
DROP INDEX access_log_action;
DROP INDEX access_log_actor;
CREATE INDEX access_log_actor_rare ON access_log(actor_kind, seq) WHERE actor_kind <> 'user';
CREATE INDEX access_log_action_rare ON access_log(action, seq)
  WHERE action NOT IN ('record.read', 'record.list');
