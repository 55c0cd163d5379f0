-- A CHECK of the form x IN ('a', 'b', 'c') is compiled by SQLite 3.15 into a
-- small temporary b-tree holding the list, built afresh each time the
-- statement runs (lists of one or two values become comparisons). Every
-- access-log append built three of them and every change-log append two:
-- about a third of the append's cost, inside the write lock. These CHECKs
-- now say the same thing with = and OR, which SQLite compiles to plain
-- comparisons. Same rows accepted, same refused (a NULL is refused by NOT
-- NULL before either form runs).
--
-- Only CHECK texts change, not what is stored, so this uses SQLite's
-- documented procedure for such changes (lang_altertable.html, "Making
-- Other Kinds Of Table Schema Changes") instead of copying the tables: edit
-- the text in sqlite_master inside the migration's transaction, then change
-- the schema (the check table below is created and dropped), which moves the
-- schema cookie on so that every open connection reads the new text.
-- test/unit/test_mig.c checks the result: the CHECKs still refuse, and no
-- append builds a temporary b-tree.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, 'CHECK (actor_kind IN (''user'', ''sysadmin'', ''system'', ''anonymous''))',
                     'CHECK (actor_kind = ''user'' OR actor_kind = ''sysadmin'' OR actor_kind = ''system'' OR actor_kind = ''anonymous'')')
 WHERE type = 'table' AND name = 'access_log';
UPDATE sqlite_master
   SET sql = replace(replace(sql, 'CHECK (via IN (''app'', ''server'', ''system''))',
                             'CHECK (via = ''app'' OR via = ''server'' OR via = ''system'')'),
                     'CHECK (outcome IN (''ok'', ''denied'', ''failed''))',
                     'CHECK (outcome = ''ok'' OR outcome = ''denied'' OR outcome = ''failed'')')
 WHERE type = 'table' AND name = 'access_log';
UPDATE sqlite_master
   SET sql = replace(replace(sql, 'CHECK (actor_kind IN (''user'', ''sysadmin'', ''system''))',
                             'CHECK (actor_kind = ''user'' OR actor_kind = ''sysadmin'' OR actor_kind = ''system'')'),
                     'CHECK (action IN (''create'', ''update'', ''delete''))',
                     'CHECK (action = ''create'' OR action = ''update'' OR action = ''delete'')')
 WHERE type = 'table' AND name = 'change_log';
UPDATE sqlite_master
   SET sql = replace(sql, 'CHECK (role IN (''admin'', ''member'', ''readonly''))',
                     'CHECK (role = ''admin'' OR role = ''member'' OR role = ''readonly'')')
 WHERE type = 'table' AND name = 'users';
UPDATE sqlite_master
   SET sql = replace(sql, 'CHECK (kind IN (''sysadmin_access'', ''break_glass'', ''update_scheduled'',
                                            ''update_done'', ''export'', ''lockout''))',
                     'CHECK (kind = ''sysadmin_access'' OR kind = ''break_glass'' OR kind = ''update_scheduled''
                                OR kind = ''update_done'' OR kind = ''export'' OR kind = ''lockout'')')
 WHERE type = 'table' AND name = 'notifications';
PRAGMA writable_schema = OFF;
-- Refuse to go on unless all four texts changed (a text that differs from
-- the one 0001-0005 wrote would be left as it was): the insert fails its
-- CHECK and the whole migration rolls back.
CREATE TABLE migration_0009_check (ok INTEGER NOT NULL CHECK (ok = 1));
INSERT INTO migration_0009_check (ok)
SELECT count(*) = 4 FROM sqlite_master
 WHERE type = 'table' AND name IN ('access_log', 'change_log', 'users', 'notifications')
   AND instr(sql, 'IN (''') = 0;
DROP TABLE migration_0009_check;
