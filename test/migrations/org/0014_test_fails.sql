-- Test only: a migration that fails halfway. Its first statement must not
-- survive: the file runs in one transaction and the database stays at 0013.
CREATE TABLE test_migration_half (id INTEGER PRIMARY KEY);
INSERT INTO test_migration_half (id) VALUES (1);
INSERT INTO no_such_table (id) VALUES (1);
