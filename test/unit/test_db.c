/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/store/db's statement cache for SQL text built at run
 * time (idb_db_cached_text): equal text, one prepared statement, kept and
 * reset between uses; a bounded number of texts kept; past the bound a
 * statement is prepared on each use and finalized when done.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "store/db.h"
#include "tmpdir.h"

struct fx {
	char dir[64];
	char path[128];
	unsigned char key[IDB_KEY_LEN];
	sqlite3 *db;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	memcpy(f->dir, "/tmp/idb-db.XXXXXX", sizeof("/tmp/idb-db.XXXXXX"));
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
	randombytes_buf(f->key, sizeof(f->key));
	assert_int_equal(idb_db_open(f->path, f->key, IDB_DB_CREATE, &f->db), IDB_OK);
	assert_int_equal(idb_db_exec(f->db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"), IDB_OK);
	assert_int_equal(idb_db_exec(f->db, "INSERT INTO t (v) VALUES ('one'), ('two')"), IDB_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	idb_db_close(f->db);
	rmtree(f->dir);
	sodium_memzero(f->key, sizeof(f->key));
	free(f);
	return 0;
}

/* The statements open on db. */
static int
live(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int n = 0;

	while ((st = sqlite3_next_stmt(db, st)) != NULL)
		n++;
	return n;
}

/* Whether st is one of db's open statements. */
static int
listed(sqlite3 *db, sqlite3_stmt *st)
{
	sqlite3_stmt *p = NULL;

	while ((p = sqlite3_next_stmt(db, p)) != NULL)
		if (p == st)
			return 1;
	return 0;
}

/* Runs text (one row, one integer column) through the cache; its value. */
static long long
value_of(sqlite3 *db, const char *text, sqlite3_stmt **used)
{
	sqlite3_stmt *st = NULL;
	long long v;

	assert_int_equal(idb_db_cached_text(db, text, &st), IDB_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	if (used != NULL)
		*used = st;
	idb_db_done(st);
	return v;
}

static void
equal_text_is_one_statement_kept_between_uses(void **state)
{
	struct fx *f = *state;
	const char sql[] = "SELECT count(*) FROM t WHERE v <> ?";
	char *a = strdup(sql), *b = strdup(sql);
	sqlite3_stmt *s1 = NULL, *s2 = NULL, *s3 = NULL;

	assert_non_null(a);
	assert_non_null(b);
	/* Two copies of the text in different memory: one statement. */
	assert_int_equal(idb_db_cached_text(f->db, a, &s1), IDB_OK);
	sqlite3_bind_text(s1, 1, "one", -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(s1), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s1, 0), 1);
	idb_db_done(s1);
	assert_false(sqlite3_stmt_busy(s1)); /* reset, not finalized: it is still listed */
	assert_true(listed(f->db, s1));
	/* The caller's buffer may go away: the cache has its own copy. */
	memset(a, 'x', strlen(a));
	free(a);
	assert_int_equal(idb_db_cached_text(f->db, b, &s2), IDB_OK);
	assert_ptr_equal(s2, s1);
	/* Bindings do not leak from one use into the next. */
	assert_int_equal(sqlite3_step(s2), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s2, 0), 0); /* v <> NULL is never true */
	idb_db_done(s2);
	free(b);
	/* Other text: another statement. */
	assert_int_equal(value_of(f->db, "SELECT count(*) FROM t", &s3), 2);
	assert_ptr_not_equal(s3, s1);
}

static void
past_the_bound_statements_are_prepared_each_time(void **state)
{
	struct fx *f = *state;
	char text[64];
	sqlite3_stmt *first = NULL, *again = NULL;
	int i, before;

	value_of(f->db, "SELECT 41 + 1", &first);
	before = live(f->db);
	/* Far more distinct texts than the cache keeps: every one still answers right. */
	for (i = 0; i < 1000; i++) {
		snprintf(text, sizeof(text), "SELECT %d + 1", i * 7);
		assert_int_equal(value_of(f->db, text, NULL), (long long)i * 7 + 1);
	}
	/* The handle holds a bounded number of statements, not one per text. */
	assert_true(live(f->db) - before <= 64);
	/* A text seen before the flood is still the same statement. */
	assert_int_equal(value_of(f->db, "SELECT 41 + 1", &again), 42);
	assert_ptr_equal(again, first);
}

/* Frames in the WAL: what a passive checkpoint reports as the log's size. */
static int
wal_frames(sqlite3 *db)
{
	int log = -1, done = -1;

	assert_int_equal(sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done), SQLITE_OK);
	return log;
}

/* Commits n transactions of one new row each, through idb_db_begin/commit. */
static void
commits(sqlite3 *db, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		assert_int_equal(idb_db_begin(db), IDB_OK);
		assert_int_equal(idb_db_exec(db, "INSERT INTO t (v) VALUES (hex(randomblob(300)))"), IDB_OK);
		assert_int_equal(idb_db_commit(db), IDB_OK);
	}
}

/*
 * The workers' handles (IDB_DB_QUEUE) checkpoint at 10000 frames, not at
 * SQLite's 1000: a checkpoint runs inside a commit, under the write lock,
 * and its fsync of the database file holds up every writer behind it.
 * Others keep the default.
 */
static void
queued_handles_checkpoint_ten_times_less_often(void **state)
{
	struct fx *f = *state;
	sqlite3 *q = NULL;

	/* ~3 frames a commit: 600 commits pass 1000 frames, not 10000. */
	assert_int_equal(idb_db_open(f->path, f->key, IDB_DB_QUEUE, &q), IDB_OK);
	commits(q, 600);
	assert_true(wal_frames(q) > 1000);
	idb_db_close(q);
	/* A plain handle checkpoints at 1000: its next writes start the log over. */
	assert_int_equal(idb_db_exec(f->db, "PRAGMA wal_checkpoint(TRUNCATE)"), IDB_OK);
	commits(f->db, 600);
	assert_true(wal_frames(f->db) < 1000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(equal_text_is_one_statement_kept_between_uses, setup, teardown),
		cmocka_unit_test_setup_teardown(past_the_bound_statements_are_prepared_each_time, setup, teardown),
		cmocka_unit_test_setup_teardown(queued_handles_checkpoint_ten_times_less_often, setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
