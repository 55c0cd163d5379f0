/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/api/records.c's writes on a real org database (the
 * registry, the master key, an org made by idb_reg_org_create, its
 * migrations): a PATCH's planned UPDATE, run as the group commit's leader
 * runs it, keeps no statement journal (SQLCipher would encrypt into it
 * every page the UPDATE touches, under the write lock), and still writes
 * what it says and refuses a stale version; and a PATCH of a field no index
 * holds writes no index entry (0012_indexes_writes_pay_for.sql), while a
 * new A-number still reaches the last-four search, whose plan reads the
 * indexes and not the table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <cjson/cJSON.h>

#include "api/records_impl.h"
#include "store/cipher.h"
#include "store/db.h"
#include "store/registry.h"
#include "tmpdir.h"

static struct {
	char dir[256];
	struct idb_conf conf;
	struct idb_master *master;
	sqlite3 *reg;
	struct idb_org org;
	struct idb_org_keys keys;
	sqlite3 *db;
	struct idb_arena arena;
	struct idb_rec_env env;
} W;

static int
group_setup(void **state)
{
	char err[512] = "";

	(void)state;
	if (sodium_init() < 0)
		return -1;
	if (data_dir_setup("/tmp/idb-rec.XXXXXX", W.dir, &W.conf, &W.master, &W.reg) != 0 ||
	    idb_reg_org_create(&W.conf, W.reg, W.master, "rec", "Records Org", &W.org, err, sizeof(err)) != IDB_OK ||
	    idb_org_open_keys(&W.conf, W.reg, W.master, W.org.id, 0, &W.db, &W.keys) != IDB_OK) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	idb_arena_init(&W.arena, 16u * 1024 * 1024);
	W.env.db = W.db;
	W.env.org_id = W.org.id;
	W.env.keys = &W.keys;
	W.env.actor.kind = "user";
	W.env.actor.id = "u_test";
	W.env.actor.email = "ana@rec.test";
	W.env.arena = &W.arena;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	idb_arena_free(&W.arena);
	idb_org_keys_wipe(&W.keys);
	idb_db_close(W.db);
	idb_db_close(W.reg);
	idb_key_master_free(W.master);
	rmtree(W.dir);
	return 0;
}

static cJSON *
json(const char *text)
{
	cJSON *j = cJSON_Parse(text);

	assert_non_null(j);
	return j;
}

/* Page functions (HMACs and ciphers) the page cipher ran on this thread so far. */
static unsigned long
page_calls(void)
{
	unsigned long fast, stock;

	idb_cipher_counts(&fast, &stock);
	return fast + stock;
}

/* The PATCH of phone to `phone` at `version` as a planned write: what a worker hands to the group commit. */
static void
plan_patch(const char *id, long long version, const char *phone, struct idb_plan *p)
{
	char body[256];
	cJSON *b, *fields = NULL, *rec = NULL;

	snprintf(body, sizeof(body), "{\"version\":%lld,\"phone\":\"%s\"}", version, phone);
	b = json(body);
	idb_plan_init(p);
	assert_int_equal(idb_rec_update(&W.env, &idb_res_clients, id, b, &fields, p, &rec), IDB_OK);
	assert_null(fields);
	assert_int_equal(p->err, IDB_OK);
	cJSON_Delete(rec);
	cJSON_Delete(b);
	idb_arena_reset(&W.arena);
}

/* The statements the last plan run ran, as prepared (sqlite3_trace_v2). */
static struct {
	char sql[16][1024];
	int n;
} ran;

static int
on_stmt(unsigned type, void *ctx, void *p, void *x)
{
	const char *sql = sqlite3_sql(p);

	(void)type;
	(void)ctx;
	/* A trigger's program reports itself as "-- TRIGGER name" on its statement. */
	if (sql != NULL && strncmp((const char *)x, "--", 2) != 0 && ran.n < 16)
		snprintf(ran.sql[ran.n++], sizeof(ran.sql[0]), "%s", sql);
	return 0;
}

/* How many instructions of sql's program are op (not those of trigger programs). */
static int
ops(const char *sql, const char *op)
{
	char q[1100];
	sqlite3_stmt *st;
	int n = 0;

	snprintf(q, sizeof(q), "EXPLAIN %s", sql);
	if (sqlite3_prepare_v2(W.db, q, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", q, sqlite3_errmsg(W.db));
	while (sqlite3_step(st) == SQLITE_ROW)
		if (strcmp((const char *)sqlite3_column_text(st, 1), op) == 0)
			n++;
	sqlite3_finalize(st);
	return n;
}

/*
 * Runs a plan in a transaction of its own, as the leader does, and frees
 * it; *calls: the page functions run by the plan, before the commit. The
 * plan's own result.
 */
static enum idb_err
run_plan(struct idb_plan *p, unsigned long *calls)
{
	unsigned long before;
	enum idb_err e;
	int wrote = 0;

	assert_int_equal(idb_db_begin(W.db), IDB_OK);
	ran.n = 0;
	sqlite3_trace_v2(W.db, SQLITE_TRACE_STMT, on_stmt, NULL);
	before = page_calls();
	e = idb_plan_run(W.db, p->b.data, p->b.len, &wrote);
	*calls = page_calls() - before;
	sqlite3_trace_v2(W.db, 0, NULL, NULL);
	if (e == IDB_OK)
		assert_int_equal(idb_db_commit(W.db), IDB_OK);
	else
		idb_db_rollback(W.db);
	idb_plan_free(p);
	return e;
}

static long long
version_of(const char *id, char phone[64])
{
	cJSON *rec = NULL, *ph;
	long long v;

	assert_int_equal(idb_rec_get(&W.env, &idb_res_clients, id, &rec), IDB_OK);
	v = (long long)cJSON_GetObjectItemCaseSensitive(rec, "version")->valuedouble;
	ph = cJSON_GetObjectItemCaseSensitive(rec, "phone");
	snprintf(phone, 64, "%s", cJSON_IsString(ph) ? ph->valuestring : "");
	cJSON_Delete(rec);
	idb_arena_reset(&W.arena);
	return v;
}

/*
 * Every page the UPDATE and the change-log append touch is in this
 * handle's cache (the same records, written by it just before), so a plan
 * that keeps no statement journal runs no page function before the commit;
 * under ABORT the UPDATE copied (and SQLCipher encrypted) each page it
 * changed first. The write still lands, and a stale version still changes
 * nothing.
 */
static void
a_planned_patch_keeps_no_statement_journal(void **state)
{
	char id[IDB_ID_LEN + 1], phone[64];
	cJSON *body = json("{\"family_name\":\"Garcia\",\"given_name\":\"Maria\",\"phone\":\"+1 202 555 0100\","
	                   "\"a_number\":\"A201000001\",\"notes\":\"Family petition.\"}");
	cJSON *fields = NULL;
	struct idb_plan a, b;
	unsigned long calls;

	(void)state;
	assert_int_equal(idb_rec_create(&W.env, &idb_res_clients, body, id, &fields), IDB_OK);
	assert_null(fields);
	cJSON_Delete(body);
	idb_arena_reset(&W.arena);
	assert_true(idb_cipher_active());
	/* The first brings every page the plan uses into the cache. */
	plan_patch(id, 1, "+1 202 555 0101", &a);
	assert_int_equal(run_plan(&a, &calls), IDB_OK);
	/* Both read version 2; the first to run wins. */
	plan_patch(id, 2, "+1 202 555 0102", &a);
	plan_patch(id, 2, "+1 202 555 0199", &b);
	assert_int_equal(run_plan(&a, &calls), IDB_OK);
	assert_int_equal(calls, 0);
	assert_int_equal(version_of(id, phone), 3);
	assert_string_equal(phone, "+1 202 555 0102");
	assert_int_equal(run_plan(&b, &calls), IDB_E_CONFLICT);
	assert_int_equal(version_of(id, phone), 3);
	assert_string_equal(phone, "+1 202 555 0102");
}

/*
 * A phone number changed: neither the UPDATE nor the change-log append
 * inserts or deletes an index entry (0003's partial clients_last4 was
 * rewritten by every UPDATE, and change_log_entity took an entry at a
 * random place for every change). A new A-number still updates the
 * last-four index: the search finds the client by its new digits only.
 */
static void
a_patch_writes_only_the_indexes_of_what_it_changes(void **state)
{
	static const char q[] = "SELECT count(*) FROM clients INDEXED BY clients_last4 WHERE a_number_last4 = ?";
	char id[IDB_ID_LEN + 1];
	cJSON *body = json("{\"family_name\":\"Nguyen\",\"given_name\":\"Thanh\",\"a_number\":\"A201000042\"}");
	cJSON *fields = NULL, *rec = NULL;
	struct idb_plan a;
	unsigned long calls;
	int i, updates = 0, inserts = 0;

	(void)state;
	assert_int_equal(idb_rec_create(&W.env, &idb_res_clients, body, id, &fields), IDB_OK);
	cJSON_Delete(body);
	idb_arena_reset(&W.arena);
	plan_patch(id, 1, "+1 202 555 0142", &a);
	assert_int_equal(run_plan(&a, &calls), IDB_OK);
	for (i = 0; i < ran.n; i++) {
		if (strncmp(ran.sql[i], "UPDATE", 6) == 0)
			updates++;
		else if (strncmp(ran.sql[i], "INSERT", 6) == 0)
			inserts++;
		else
			continue;
		if (ops(ran.sql[i], "IdxInsert") + ops(ran.sql[i], "IdxDelete") != 0)
			fail_msg("writes an index entry: %s", ran.sql[i]);
	}
	assert_int_equal(updates, 1);
	assert_int_equal(inserts, 1);

	/* A new A-number: found by its last four, not by the old ones. */
	body = json("{\"version\":2,\"a_number\":\"A201007777\"}");
	idb_plan_init(&a);
	assert_int_equal(idb_rec_update(&W.env, &idb_res_clients, id, body, &fields, &a, &rec), IDB_OK);
	cJSON_Delete(rec);
	cJSON_Delete(body);
	assert_int_equal(run_plan(&a, &calls), IDB_OK);
	for (i = 0; i < 2; i++) {
		unsigned char k[16];
		sqlite3_stmt *st;

		idb_rec_last4(&W.keys, i == 0 ? "7777" : "0042", k);
		assert_int_equal(sqlite3_prepare_v2(W.db, q, -1, &st, NULL), SQLITE_OK);
		sqlite3_bind_blob(st, 1, k, sizeof(k), SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int64(st, 0), i == 0 ? 1 : 0);
		sqlite3_finalize(st);
	}
	idb_arena_reset(&W.arena);
}

/*
 * The plan of a four-digit search (docs/security.md, "Search and the query
 * plan", the shape lib/api/data.c builds): the FTS4 index and
 * clients_last4, never a scan of the clients.
 */
static void
a_last_four_search_reads_the_indexes_not_the_table(void **state)
{
	static const char q[] = "EXPLAIN QUERY PLAN SELECT rid, id FROM clients WHERE deleted_at IS NULL AND rid > ?"
	                        " AND (rid IN (SELECT docid FROM clients_fts WHERE clients_fts MATCH ?)"
	                        " OR a_number_last4 = ?) ORDER BY rid LIMIT ?";
	sqlite3_stmt *st;
	const char *d;
	int last4 = 0, fts = 0;

	(void)state;
	assert_int_equal(sqlite3_prepare_v2(W.db, q, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		d = (const char *)sqlite3_column_text(st, 3);
		if (strstr(d, "SCAN TABLE clients") == d && strstr(d, "clients_fts") == NULL)
			fail_msg("scans the clients: %s", d);
		last4 += strstr(d, "USING INDEX clients_last4 (a_number_last4=?") != NULL;
		fts += strstr(d, "SCAN TABLE clients_fts VIRTUAL TABLE INDEX") != NULL;
	}
	sqlite3_finalize(st);
	assert_int_equal(last4, 1);
	assert_int_equal(fts, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_planned_patch_keeps_no_statement_journal),
		cmocka_unit_test(a_patch_writes_only_the_indexes_of_what_it_changes),
		cmocka_unit_test(a_last_four_search_reads_the_indexes_not_the_table),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
