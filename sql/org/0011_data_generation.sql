-- The org's data generation: a number that moves on with every row
-- written to a table whose rows the workers keep between requests
-- (settings, sessions, users and the five record tables; lib/store/memo.h),
-- by triggers, so that every writer moves it: the server, immidb-admin, a
-- restore, SQL run by hand. A worker keeps what its requests read under the
-- generation it read it at, and uses it again only inside a read snapshot
-- that shows the same generation. Access-log entries do not move it: every
-- logged request commits one, and no kept value comes from that table.
-- A table whose rows a new kind of kept value comes from needs the same
-- three triggers (test/unit/test_memo.c checks the list).
CREATE TABLE data_generation (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  n  INTEGER NOT NULL
);
INSERT INTO data_generation (id, n) VALUES (1, 0);
CREATE TRIGGER data_generation_settings_insert AFTER INSERT ON settings
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_settings_update AFTER UPDATE ON settings
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_settings_delete AFTER DELETE ON settings
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_sessions_insert AFTER INSERT ON sessions
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_sessions_update AFTER UPDATE ON sessions
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_sessions_delete AFTER DELETE ON sessions
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_users_insert AFTER INSERT ON users
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_users_update AFTER UPDATE ON users
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_users_delete AFTER DELETE ON users
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_clients_insert AFTER INSERT ON clients
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_clients_update AFTER UPDATE ON clients
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_clients_delete AFTER DELETE ON clients
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_cases_insert AFTER INSERT ON cases
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_cases_update AFTER UPDATE ON cases
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_cases_delete AFTER DELETE ON cases
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_events_insert AFTER INSERT ON events
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_events_update AFTER UPDATE ON events
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_events_delete AFTER DELETE ON events
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_notes_insert AFTER INSERT ON notes
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_notes_update AFTER UPDATE ON notes
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_notes_delete AFTER DELETE ON notes
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_credentials_insert AFTER INSERT ON credentials
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_credentials_update AFTER UPDATE ON credentials
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER data_generation_credentials_delete AFTER DELETE ON credentials
BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END;
