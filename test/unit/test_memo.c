/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/store/memo (with the data generation of sql/org/0011):
 * what one connection read is given back to it only inside a read
 * transaction that shows the generation it was read at. Two connections to
 * one org database stand for two workers (or a worker and immidb-admin);
 * the other one's changes are made with plain SQL, in autocommit, as any
 * writer could, so that it is the triggers that move the generation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "api/records.h"
#include "audit/accesslog.h"
#include "auth/auth.h"
#include "auth/settings.h"
#include "auth/users.h"
#include "store/db.h"
#include "store/memo.h"
#include "store/registry.h"
#include "tmpdir.h"

#define PASSWORD "correct horse battery staple"

static struct {
	char dir[256];
	struct idb_conf conf;
	struct idb_master *master;
	sqlite3 *reg;
	struct idb_org org;
	sqlite3 *me, *other; /* this worker's handle, and another writer's */
} W;

static sqlite3 *
open_org(void)
{
	struct idb_org_keys k;
	sqlite3 *db = NULL;

	assert_int_equal(idb_org_open_keys(&W.conf, W.reg, W.master, W.org.id, 0, &db, &k), IDB_OK);
	idb_org_keys_wipe(&k);
	return db;
}

static int
group_setup(void **state)
{
	char err[512] = "";

	(void)state;
	if (sodium_init() < 0)
		return -1;
	if (data_dir_setup("/tmp/idb-memo.XXXXXX", W.dir, &W.conf, &W.master, &W.reg) != 0 ||
	    idb_reg_org_create(&W.conf, W.reg, W.master, "memo", "Memo Org", &W.org, err, sizeof(err)) != IDB_OK) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	W.me = open_org();
	W.other = open_org();
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	idb_db_close(W.me);
	idb_db_close(W.other);
	idb_db_close(W.reg);
	idb_key_master_free(W.master);
	rmtree(W.dir);
	return 0;
}

static void
exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
}

static long long
generation(sqlite3 *db)
{
	long long n = -1;

	assert_int_equal(idb_db_generation(db, &n), IDB_OK);
	return n;
}

/* The settings' name as W.me reads it in a read transaction of its own; *hit: it came from the memo. */
static void
name_read(char out[801], int *hit)
{
	struct idb_settings *s = calloc(1, sizeof(*s));
	unsigned long before = idb_memo_hits();

	assert_non_null(s);
	assert_int_equal(idb_db_read_begin(W.me), IDB_OK);
	assert_int_equal(idb_settings_load(W.me, s), IDB_OK);
	idb_db_read_end(W.me);
	*hit = idb_memo_hits() != before;
	memcpy(out, s->name, sizeof(s->name));
	free(s);
}

static void
a_value_comes_back_only_while_the_generation_is_unchanged(void **state)
{
	char name[801];
	int hit;

	(void)state;
	name_read(name, &hit); /* the first read keeps it */
	name_read(name, &hit);
	assert_true(hit);
	assert_string_equal(name, "Memo Org");

	/* Another writer renames the org: the next read sees the new name. */
	exec(W.other, "UPDATE settings SET name = 'Renamed Org' WHERE id = 1");
	name_read(name, &hit);
	assert_false(hit);
	assert_string_equal(name, "Renamed Org");
	name_read(name, &hit);
	assert_true(hit);
	assert_string_equal(name, "Renamed Org");
}

/* A hit gives every field a read from the table gives (the memo copies only the parts in use). */
static void
a_settings_hit_equals_a_read_from_the_table(void **state)
{
	struct idb_settings *set = calloc(1, sizeof(*set)), *db = calloc(1, sizeof(*db)), *hit = calloc(1, sizeof(*hit));
	unsigned long before;

	(void)state;
	assert_true(set != NULL && db != NULL && hit != NULL);
	assert_int_equal(idb_settings_load(W.other, set), IDB_OK);
	assert_int_equal(idb_settings_set_allowlist(set, "198.51.100.0/24, 2001:db8::/32, 203.0.113.9"), IDB_OK);
	set->require_mfa = 1;
	set->idle_minutes = 45;
	set->notify_sysadmin_access = 1;
	set->google = 1;
	assert_int_equal(idb_settings_save(W.other, set), IDB_OK);

	assert_int_equal(idb_settings_load(W.me, db), IDB_OK); /* outside a read transaction: from the table */
	assert_int_equal(idb_db_read_begin(W.me), IDB_OK);
	assert_int_equal(idb_settings_load(W.me, hit), IDB_OK); /* kept */
	idb_db_read_end(W.me);
	assert_int_equal(idb_db_read_begin(W.me), IDB_OK);
	before = idb_memo_hits();
	memset(hit, 0x5a, sizeof(*hit));
	assert_int_equal(idb_settings_load(W.me, hit), IDB_OK);
	assert_int_equal(idb_memo_hits(), before + 1);
	idb_db_read_end(W.me);

	assert_string_equal(hit->name, db->name);
	assert_int_equal(hit->require_mfa, 1);
	assert_string_equal(hit->ip_allowlist, db->ip_allowlist);
	assert_int_equal(hit->ips.n, 3);
	assert_int_equal(hit->ips.n, db->ips.n);
	assert_memory_equal(hit->ips.v, db->ips.v, db->ips.n * sizeof(db->ips.v[0]));
	assert_int_equal(hit->idle_minutes, 45);
	assert_int_equal(hit->notify_sysadmin_access, db->notify_sysadmin_access);
	assert_string_equal(hit->notify_updates, db->notify_updates);
	assert_int_equal(hit->google, 1);
	assert_int_equal(hit->microsoft, db->microsoft);
	assert_int_equal(hit->version, db->version);
	free(set);
	free(db);
	free(hit);
}

static void
a_snapshot_begun_before_a_change_keeps_seeing_its_own_generation(void **state)
{
	struct idb_settings *s = calloc(1, sizeof(*s));
	char name[801];
	int hit;

	(void)state;
	assert_non_null(s);
	exec(W.other, "UPDATE settings SET name = 'Before' WHERE id = 1");
	name_read(name, &hit);
	assert_string_equal(name, "Before");
	/* A read transaction under way when the change commits: still the old
	 * snapshot, and the memo answers it as SQLite would. */
	assert_int_equal(idb_db_read_begin(W.me), IDB_OK);
	assert_int_equal(idb_settings_load(W.me, s), IDB_OK);
	exec(W.other, "UPDATE settings SET name = 'After' WHERE id = 1");
	assert_int_equal(idb_settings_load(W.me, s), IDB_OK);
	assert_string_equal(s->name, "Before");
	idb_db_read_end(W.me);
	/* The next one sees the change. */
	name_read(name, &hit);
	assert_false(hit);
	assert_string_equal(name, "After");
	free(s);
}

static void
a_revoked_session_and_a_disabled_user_are_read_again(void **state)
{
	char token[IDB_SESSION_TOKEN_LEN + 1];
	struct idb_session s;
	struct idb_user u, got;
	const char *field = NULL;
	time_t now = time(NULL);
	unsigned long before;

	(void)state;
	assert_int_equal(idb_user_create(W.other, "ana@memo.test", "Ana", "member", PASSWORD, &u, &field), IDB_OK);
	assert_int_equal(idb_session_create(W.other, W.org.id, u.id, "198.51.100.7", 0, now, token, &s), IDB_OK);

	/* Read twice: the second time from the memo. */
	assert_int_equal(idb_db_read_begin(W.me), IDB_OK);
	assert_int_equal(idb_session_find(W.me, token, now, 60, &s), IDB_OK);
	assert_int_equal(idb_user_get(W.me, u.id, &got), IDB_OK);
	idb_db_read_end(W.me);
	before = idb_memo_hits();
	assert_int_equal(idb_db_read_begin(W.me), IDB_OK);
	assert_int_equal(idb_session_find(W.me, token, now, 60, &s), IDB_OK);
	assert_int_equal(idb_user_get(W.me, u.id, &got), IDB_OK);
	idb_db_read_end(W.me);
	assert_int_equal(idb_memo_hits() - before, 2);
	assert_false(got.disabled);

	/* Disabled by another writer: the user is read again. */
	exec(W.other, "UPDATE users SET disabled = 1");
	assert_int_equal(idb_db_read_begin(W.me), IDB_OK);
	assert_int_equal(idb_user_get(W.me, u.id, &got), IDB_OK);
	idb_db_read_end(W.me);
	assert_true(got.disabled);

	/* Every session ended (a DELETE without WHERE, which SQLite may run
	 * without visiting rows, unless a trigger watches the table). */
	exec(W.other, "DELETE FROM sessions");
	assert_int_equal(idb_db_read_begin(W.me), IDB_OK);
	assert_int_equal(idb_session_find(W.me, token, now, 60, &s), IDB_E_UNAUTHENTICATED);
	idb_db_read_end(W.me);
}

static void
the_memo_is_not_used_outside_a_read_transaction_nor_after_a_write_in_one(void **state)
{
	struct idb_settings *s = calloc(1, sizeof(*s));
	unsigned long before;

	(void)state;
	assert_non_null(s);
	assert_int_equal(idb_settings_load(W.me, s), IDB_OK);
	before = idb_memo_hits();
	assert_int_equal(idb_settings_load(W.me, s), IDB_OK);
	assert_int_equal(idb_memo_hits(), before);

	/* This connection writes inside its read transaction: what it read
	 * before may no longer hold, and the memo stays out of it. */
	assert_int_equal(idb_db_read_begin(W.me), IDB_OK);
	assert_int_equal(idb_settings_load(W.me, s), IDB_OK);
	exec(W.me, "UPDATE settings SET name = 'Own write' WHERE id = 1");
	before = idb_memo_hits();
	assert_int_equal(idb_settings_load(W.me, s), IDB_OK);
	assert_int_equal(idb_memo_hits(), before);
	assert_string_equal(s->name, "Own write");
	idb_db_read_end(W.me);
	free(s);
}

static void
access_log_entries_leave_the_generation_alone(void **state)
{
	struct idb_log_entry e;
	long long g0;

	(void)state;
	g0 = generation(W.other);
	memset(&e, 0, sizeof(e));
	e.actor_kind = "user";
	e.via = "app";
	e.action = "record.read";
	e.target = "clients/c_00000000000000000000000000000000";
	e.outcome = "ok";
	assert_int_equal(idb_db_begin(W.other), IDB_OK);
	assert_int_equal(idb_log_append(W.other, &e), IDB_OK);
	assert_int_equal(idb_db_commit(W.other), IDB_OK);
	assert_int_equal(generation(W.other), g0);
	/* A change to a kept table moves it, once per row. */
	exec(W.other, "UPDATE settings SET name = name WHERE id = 1");
	assert_int_equal(generation(W.other), g0 + 1);
}

/* The tables whose rows the memo keeps: settings, sessions, users and every record table. */
static void
every_table_the_memo_keeps_rows_of_moves_the_generation(void **state)
{
	const struct idb_resource *res[] = {&idb_res_clients, &idb_res_cases, &idb_res_events, &idb_res_notes,
	                                    &idb_res_credentials};
	const char *tables[3 + sizeof(res) / sizeof(res[0])] = {"settings", "sessions", "users"};
	const char *ops[] = {"INSERT", "UPDATE", "DELETE"};
	sqlite3_stmt *st;
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(res) / sizeof(res[0]); i++)
		tables[3 + i] = res[i]->name;
	assert_int_equal(sqlite3_prepare_v2(W.other,
	                                    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?1 "
	                                    "AND sql LIKE '%AFTER ' || ?2 || ' ON ' || ?1 || '%' "
	                                    "AND sql LIKE '%UPDATE data_generation SET n = n + 1%'",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		for (k = 0; k < 3; k++) {
			sqlite3_reset(st);
			sqlite3_bind_text(st, 1, tables[i], -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, ops[k], -1, SQLITE_STATIC);
			assert_int_equal(sqlite3_step(st), SQLITE_ROW);
			if (sqlite3_column_int(st, 0) != 1)
				fail_msg("no AFTER %s trigger on %s moves the data generation", ops[k], tables[i]);
		}
	sqlite3_finalize(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_value_comes_back_only_while_the_generation_is_unchanged),
		cmocka_unit_test(a_settings_hit_equals_a_read_from_the_table),
		cmocka_unit_test(a_snapshot_begun_before_a_change_keeps_seeing_its_own_generation),
		cmocka_unit_test(a_revoked_session_and_a_disabled_user_are_read_again),
		cmocka_unit_test(the_memo_is_not_used_outside_a_read_transaction_nor_after_a_write_in_one),
		cmocka_unit_test(access_log_entries_leave_the_generation_alone),
		cmocka_unit_test(every_table_the_memo_keeps_rows_of_moves_the_generation),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
