-- Test only (built into immidb-admin-migtest, never into the product): a
-- migration that applies.
CREATE TABLE test_migration_applied (id INTEGER PRIMARY KEY, note TEXT NOT NULL);
INSERT INTO test_migration_applied (note) VALUES ('0013 applied');
