/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/store/mig and lib/store/db: applying migration sets to a
 * real SQLCipher file (in order, once, each file in its own transaction),
 * refusing changed or unknown applied files, and the properties every
 * database must have when opened (wrong key refused, nothing in clear, WAL,
 * foreign keys, synchronous=FULL).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/db.h"
#include "store/mig.h"
#include "tmpdir.h"

#define MIG(v, name, sql) {v, name, sql, sizeof(sql) - 1}

static const char sql_a[] = "CREATE TABLE a (x INTEGER NOT NULL);\nINSERT INTO a (x) VALUES (1);\n";
static const char sql_b[] = "CREATE TABLE b (y TEXT);\nCREATE INDEX b_y ON b (y);\n";
static const char sql_a_edited[] = "CREATE TABLE a (x INTEGER NOT NULL);\nINSERT INTO a (x) VALUES (2);\n";
static const char sql_broken[] = "CREATE TABLE broken (z INTEGER);\nINSERT INTO broken VALUES (1);\nSELEC oops;\n";
static const char sql_c[] = "CREATE TABLE c (w INTEGER);\n";

static const struct idb_mig files_ab[] = {MIG(1, "0001_a.sql", sql_a), MIG(2, "0002_b.sql", sql_b)};
static const struct idb_mig files_a[] = {MIG(1, "0001_a.sql", sql_a)};
static const struct idb_mig files_a_edited[] = {MIG(1, "0001_a.sql", sql_a_edited), MIG(2, "0002_b.sql", sql_b)};
static const struct idb_mig files_a_broken[] = {MIG(1, "0001_a.sql", sql_a), MIG(2, "0002_broken.sql", sql_broken)};
static const struct idb_mig files_a_c[] = {MIG(1, "0001_a.sql", sql_a), MIG(3, "0003_c.sql", sql_c)};

static const struct idb_mig_set set_ab = {"test", files_ab, 2};
static const struct idb_mig_set set_a = {"test", files_a, 1};
static const struct idb_mig_set set_a_edited = {"test", files_a_edited, 2};
static const struct idb_mig_set set_a_broken = {"test", files_a_broken, 2};
static const struct idb_mig_set set_a_c = {"test", files_a_c, 2};
static const struct idb_mig_set set_empty = {"test", NULL, 0};

struct fx {
	char dir[256];
	char path[320]; /* <dir>/t.db */
	unsigned char key[IDB_KEY_LEN];
	char err[512];
	sqlite3 *db;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	memcpy(f->dir, "/tmp/idb-mig.XXXXXX", sizeof("/tmp/idb-mig.XXXXXX"));
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
	randombytes_buf(f->key, sizeof(f->key));
	assert_int_equal(idb_db_open(f->path, f->key, IDB_DB_CREATE, &f->db), IDB_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	idb_db_close(f->db);
	rmtree(f->dir);
	free(f);
	return 0;
}

/* The first column of the first row of a fixed query, as an integer. */
static long long
int_of(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The same, as text copied into out. */
static void
text_of(sqlite3 *db, const char *sql, char *out, size_t len)
{
	sqlite3_stmt *st;
	const unsigned char *t;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	t = sqlite3_column_text(st, 0);
	assert_non_null(t);
	snprintf(out, len, "%s", (const char *)t);
	sqlite3_finalize(st);
}

static int
table_exists(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st;
	int rc;

	assert_int_equal(sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW;
}

static int
version_of(struct fx *f, const struct idb_mig_set *set)
{
	int v = -1;

	assert_int_equal(idb_mig_current(f->db, set, &v), IDB_OK);
	return v;
}

static void
apply_ok(struct fx *f, const struct idb_mig_set *set, int want_applied)
{
	int applied = -1;

	f->err[0] = '\0';
	if (idb_mig_apply(f->db, set, NULL, NULL, &applied, f->err, sizeof(f->err)) != IDB_OK)
		fail_msg("apply failed: %s", f->err);
	assert_int_equal(applied, want_applied);
}

/* ---- migrations ---- */

static void
fresh_database_has_version_0_and_is_behind(void **state)
{
	struct fx *f = *state;

	assert_int_equal(version_of(f, &set_ab), 0);
	assert_int_equal(idb_mig_check(f->db, &set_ab), IDB_E_SCHEMA_BEHIND);
	/* An empty set is never behind. */
	assert_int_equal(idb_mig_check(f->db, &set_empty), IDB_OK);
}

static void
latest_is_the_highest_version(void **state)
{
	(void)state;
	assert_int_equal(idb_mig_latest(&set_ab), 2);
	assert_int_equal(idb_mig_latest(&set_a_c), 3);
	assert_int_equal(idb_mig_latest(&set_empty), 0);
}

static void
apply_runs_every_file_in_order_and_records_it(void **state)
{
	struct fx *f = *state;
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[65], got[128];

	apply_ok(f, &set_ab, 2);
	assert_int_equal(version_of(f, &set_ab), 2);
	assert_int_equal(idb_mig_check(f->db, &set_ab), IDB_OK);
	assert_true(table_exists(f->db, "a"));
	assert_true(table_exists(f->db, "b"));
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM schema_migrations"), 2);
	text_of(f->db, "SELECT name FROM schema_migrations WHERE version = 2", got, sizeof(got));
	assert_string_equal(got, "0002_b.sql");
	/* The recorded checksum is the SHA-256 of the file's bytes, in hex. */
	crypto_hash_sha256(h, (const unsigned char *)sql_a, sizeof(sql_a) - 1);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	text_of(f->db, "SELECT sha256 FROM schema_migrations WHERE version = 1", got, sizeof(got));
	assert_string_equal(got, hex);
	/* applied_at is an RFC 3339 UTC time. */
	text_of(f->db, "SELECT applied_at FROM schema_migrations WHERE version = 1", got, sizeof(got));
	assert_int_equal(strlen(got), 24);
	assert_int_equal(got[10], 'T');
	assert_int_equal(got[23], 'Z');
}

static void
second_apply_is_a_no_op(void **state)
{
	struct fx *f = *state;

	apply_ok(f, &set_ab, 2);
	apply_ok(f, &set_ab, 0);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM schema_migrations"), 2);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM a"), 1); /* file 1 did not run again */
}

static void
apply_adds_only_the_pending_files(void **state)
{
	struct fx *f = *state;

	apply_ok(f, &set_a, 1);
	assert_int_equal(idb_mig_check(f->db, &set_ab), IDB_E_SCHEMA_BEHIND);
	apply_ok(f, &set_ab, 1);
	assert_int_equal(version_of(f, &set_ab), 2);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM a"), 1);
}

static void
apply_follows_gaps_in_version_numbers(void **state)
{
	struct fx *f = *state;

	apply_ok(f, &set_a_c, 2);
	assert_int_equal(version_of(f, &set_a_c), 3);
	assert_int_equal(idb_mig_check(f->db, &set_a_c), IDB_OK);
}

static int
count_and_skip(const struct idb_mig *m, void *arg)
{
	int *calls = arg;

	/* Called in order, once per pending file. */
	assert_int_equal(m->version, *calls + 1);
	(*calls)++;
	return 1;
}

static void
callback_can_skip_every_file_for_a_dry_run(void **state)
{
	struct fx *f = *state;
	int calls = 0, applied = -1;

	assert_int_equal(idb_mig_apply(f->db, &set_ab, count_and_skip, &calls, &applied, f->err, sizeof(f->err)),
	                 IDB_OK);
	assert_int_equal(calls, 2);
	assert_int_equal(applied, 0);
	assert_int_equal(version_of(f, &set_ab), 0);
	assert_false(table_exists(f->db, "a"));
}

static void
changed_applied_file_is_refused_with_checksum_error(void **state)
{
	struct fx *f = *state;
	int v, applied = -1;

	apply_ok(f, &set_ab, 2);
	assert_int_equal(idb_mig_current(f->db, &set_a_edited, &v), IDB_E_CHECKSUM);
	assert_int_equal(idb_mig_check(f->db, &set_a_edited), IDB_E_CHECKSUM);
	assert_int_equal(idb_mig_apply(f->db, &set_a_edited, NULL, NULL, &applied, f->err, sizeof(f->err)),
	                 IDB_E_CHECKSUM);
	assert_int_equal(applied, 0);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM a WHERE x = 2"), 0);
}

static void
changed_applied_file_is_refused_even_when_more_files_are_pending(void **state)
{
	struct fx *f = *state;
	static const struct idb_mig edited_only[] = {MIG(1, "0001_a.sql", sql_a_edited)};
	static const struct idb_mig_set set = {"test", edited_only, 1};
	int applied = -1;

	apply_ok(f, &set_a, 1);
	assert_int_equal(idb_mig_apply(f->db, &set_a_edited, NULL, NULL, &applied, f->err, sizeof(f->err)),
	                 IDB_E_CHECKSUM);
	assert_int_equal(applied, 0);
	assert_false(table_exists(f->db, "b"));
	assert_int_equal(idb_mig_check(f->db, &set), IDB_E_CHECKSUM);
}

static void
database_ahead_of_the_set_is_refused(void **state)
{
	struct fx *f = *state;
	int v, applied = -1;

	apply_ok(f, &set_ab, 2);
	assert_int_equal(idb_mig_current(f->db, &set_a, &v), IDB_E_SCHEMA_AHEAD);
	assert_int_equal(idb_mig_check(f->db, &set_a), IDB_E_SCHEMA_AHEAD);
	assert_int_equal(idb_mig_apply(f->db, &set_a, NULL, NULL, &applied, f->err, sizeof(f->err)),
	                 IDB_E_SCHEMA_AHEAD);
	assert_int_equal(applied, 0);
	assert_int_equal(idb_mig_check(f->db, &set_empty), IDB_E_SCHEMA_AHEAD);
}

static void
applied_version_missing_from_the_set_is_refused(void **state)
{
	struct fx *f = *state;
	int v;

	/* Version 2 applied, but the set now has 1 and 3: a file was removed or renumbered. */
	apply_ok(f, &set_ab, 2);
	assert_int_not_equal(idb_mig_current(f->db, &set_a_c, &v), IDB_OK);
	assert_int_not_equal(idb_mig_check(f->db, &set_a_c), IDB_OK);
}

static void
broken_file_is_rolled_back_and_named(void **state)
{
	struct fx *f = *state;
	int applied = -1;

	assert_int_not_equal(idb_mig_apply(f->db, &set_a_broken, NULL, NULL, &applied, f->err, sizeof(f->err)),
	                     IDB_OK);
	assert_int_equal(applied, 1);
	assert_non_null(strstr(f->err, "0002_broken.sql"));
	assert_int_equal(version_of(f, &set_a_broken), 1);
	assert_true(table_exists(f->db, "a"));
	/* The table made by the broken file's first statement is gone with it. */
	assert_false(table_exists(f->db, "broken"));
	assert_int_equal(idb_mig_check(f->db, &set_a_broken), IDB_E_SCHEMA_BEHIND);
	/* No transaction is left open. */
	assert_int_not_equal(sqlite3_get_autocommit(f->db), 0);
}

static void
broken_file_can_be_fixed_and_applied_later(void **state)
{
	struct fx *f = *state;
	int applied = -1;

	assert_int_not_equal(idb_mig_apply(f->db, &set_a_broken, NULL, NULL, &applied, f->err, sizeof(f->err)),
	                     IDB_OK);
	apply_ok(f, &set_ab, 1);
	assert_int_equal(version_of(f, &set_ab), 2);
}

static void
broken_first_file_leaves_version_0(void **state)
{
	struct fx *f = *state;
	static const struct idb_mig broken_first[] = {MIG(1, "0001_broken.sql", sql_broken)};
	static const struct idb_mig_set set = {"test", broken_first, 1};
	int applied = -1;

	assert_int_not_equal(idb_mig_apply(f->db, &set, NULL, NULL, &applied, f->err, sizeof(f->err)), IDB_OK);
	assert_int_equal(applied, 0);
	assert_non_null(strstr(f->err, "0001_broken.sql"));
	assert_int_equal(version_of(f, &set), 0);
	assert_false(table_exists(f->db, "broken"));
}

static void
embedded_sets_are_numbered_and_apply_to_fresh_databases(void **state)
{
	const struct idb_mig_set *sets[] = {&idb_mig_registry, &idb_mig_org};
	struct fx *f = *state;
	char path[400], err[512];
	sqlite3 *db;
	size_t i, k;
	int applied;

	for (k = 0; k < 2; k++) {
		const struct idb_mig_set *s = sets[k];

		assert_true(s->n >= 1);
		for (i = 0; i < s->n; i++) {
			assert_true(s->files[i].version >= 1);
			if (i > 0)
				assert_true(s->files[i].version > s->files[i - 1].version);
			assert_int_equal(strlen(s->files[i].sql), s->files[i].len);
			assert_true(strlen(s->files[i].name) > 9);
			assert_string_equal(s->files[i].name + strlen(s->files[i].name) - 4, ".sql");
			assert_int_equal(strtol(s->files[i].name, NULL, 10), s->files[i].version);
		}
		snprintf(path, sizeof(path), "%s/embedded%zu.db", f->dir, k);
		assert_int_equal(idb_db_open(path, f->key, IDB_DB_CREATE, &db), IDB_OK);
		if (idb_mig_apply(db, s, NULL, NULL, &applied, err, sizeof(err)) != IDB_OK)
			fail_msg("%s: %s", s->name, err);
		assert_int_equal((size_t)applied, s->n);
		assert_int_equal(idb_mig_check(db, s), IDB_OK);
		idb_db_close(db);
	}
}

/* ---- opening databases ---- */

static void
open_sets_wal_foreign_keys_and_synchronous_full(void **state)
{
	struct fx *f = *state;
	char mode[32];

	text_of(f->db, "PRAGMA journal_mode", mode, sizeof(mode));
	assert_string_equal(mode, "wal");
	assert_int_equal(int_of(f->db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(int_of(f->db, "PRAGMA synchronous"), 2);
	/* The same after reopening an existing file. */
	idb_db_close(f->db);
	assert_int_equal(idb_db_open(f->path, f->key, 0, &f->db), IDB_OK);
	text_of(f->db, "PRAGMA journal_mode", mode, sizeof(mode));
	assert_string_equal(mode, "wal");
	assert_int_equal(int_of(f->db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(int_of(f->db, "PRAGMA synchronous"), 2);
}

static void
created_file_is_private(void **state)
{
	struct fx *f = *state;
	struct stat st;

	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
}

static void
open_with_wrong_key_fails_with_badkey(void **state)
{
	struct fx *f = *state;
	unsigned char other[IDB_KEY_LEN];
	sqlite3 *db = (sqlite3 *)1;

	apply_ok(f, &set_a, 1);
	idb_db_close(f->db);
	f->db = NULL;
	memcpy(other, f->key, sizeof(other));
	other[0] ^= 1;
	assert_int_equal(idb_db_open(f->path, other, 0, &db), IDB_E_BADKEY);
	assert_null(db);
	/* With IDB_DB_CREATE too, and the existing file is left as it was. */
	assert_int_equal(idb_db_open(f->path, other, IDB_DB_CREATE, &db), IDB_E_BADKEY);
	assert_null(db);
	assert_int_equal(idb_db_open(f->path, f->key, 0, &f->db), IDB_OK);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM a"), 1);
}

static void
open_of_missing_file_without_create_fails_and_creates_nothing(void **state)
{
	struct fx *f = *state;
	char path[400];
	struct stat st;
	sqlite3 *db = (sqlite3 *)1;

	snprintf(path, sizeof(path), "%s/absent.db", f->dir);
	assert_int_not_equal(idb_db_open(path, f->key, 0, &db), IDB_OK);
	assert_null(db);
	assert_int_not_equal(stat(path, &st), 0);
}

static void
readonly_open_refuses_writes(void **state)
{
	struct fx *f = *state;
	sqlite3 *ro = NULL;

	apply_ok(f, &set_a, 1);
	assert_int_equal(idb_db_open(f->path, f->key, IDB_DB_READONLY, &ro), IDB_OK);
	assert_int_equal(int_of(ro, "SELECT count(*) FROM a"), 1);
	assert_int_equal(idb_db_exec(ro, "INSERT INTO a (x) VALUES (5)"), IDB_E_DB);
	idb_db_close(ro);
}

/* 1 if the file at path contains needle. */
static int
file_contains(const char *path, const char *needle)
{
	size_t n = strlen(needle), len = 0, cap = 0, i;
	char *buf = NULL, *p;
	ssize_t r;
	int fd, found = 0;

	if ((fd = open(path, O_RDONLY)) < 0)
		return 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			assert_non_null(p = realloc(buf, cap));
			buf = p;
		}
		if ((r = read(fd, buf + len, cap - len)) <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	for (i = 0; i + n <= len && !found; i++)
		found = memcmp(buf + i, needle, n) == 0;
	free(buf);
	return found;
}

static void
file_contents_hold_no_plaintext(void **state)
{
	static const char marker[] = "IMMIDB-PLAINTEXT-MARKER-5e1f0c";
	struct fx *f = *state;
	char wal[400];
	sqlite3_stmt *st;
	int i;

	assert_int_equal(idb_db_exec(f->db, "CREATE TABLE secrets (v TEXT)"), IDB_OK);
	assert_int_equal(sqlite3_prepare_v2(f->db, "INSERT INTO secrets (v) VALUES (?)", -1, &st, NULL), SQLITE_OK);
	for (i = 0; i < 50; i++) {
		sqlite3_bind_text(st, 1, marker, -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	/* While open the rows are in the WAL; scan it and the main file. */
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_false(file_contains(wal, marker));
	assert_false(file_contains(f->path, marker));
	/* After closing (checkpoint into the main file). */
	idb_db_close(f->db);
	f->db = NULL;
	assert_false(file_contains(f->path, marker));
	assert_false(file_contains(wal, marker));
	/* Not even the SQLite header is in clear. */
	assert_false(file_contains(f->path, "SQLite format 3"));
	/* The marker is really there when read with the key. */
	assert_int_equal(idb_db_open(f->path, f->key, 0, &f->db), IDB_OK);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM secrets WHERE v = 'IMMIDB-PLAINTEXT-MARKER-5e1f0c'"), 50);
}

static void
foreign_keys_are_enforced(void **state)
{
	struct fx *f = *state;

	assert_int_equal(idb_db_exec(f->db, "CREATE TABLE p (id INTEGER PRIMARY KEY)"), IDB_OK);
	assert_int_equal(idb_db_exec(f->db, "CREATE TABLE ch (p INTEGER REFERENCES p(id))"), IDB_OK);
	assert_int_equal(idb_db_exec(f->db, "INSERT INTO ch (p) VALUES (42)"), IDB_E_DB);
}

static void
close_accepts_null(void **state)
{
	(void)state;
	idb_db_close(NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(fresh_database_has_version_0_and_is_behind),
		T(latest_is_the_highest_version),
		T(apply_runs_every_file_in_order_and_records_it),
		T(second_apply_is_a_no_op),
		T(apply_adds_only_the_pending_files),
		T(apply_follows_gaps_in_version_numbers),
		T(callback_can_skip_every_file_for_a_dry_run),
		T(changed_applied_file_is_refused_with_checksum_error),
		T(changed_applied_file_is_refused_even_when_more_files_are_pending),
		T(database_ahead_of_the_set_is_refused),
		T(applied_version_missing_from_the_set_is_refused),
		T(broken_file_is_rolled_back_and_named),
		T(broken_file_can_be_fixed_and_applied_later),
		T(broken_first_file_leaves_version_0),
		T(embedded_sets_are_numbered_and_apply_to_fresh_databases),
		T(open_sets_wal_foreign_keys_and_synchronous_full),
		T(created_file_is_private),
		T(open_with_wrong_key_fails_with_badkey),
		T(open_of_missing_file_without_create_fails_and_creates_nothing),
		T(readonly_open_refuses_writes),
		T(file_contents_hold_no_plaintext),
		T(foreign_keys_are_enforced),
		T(close_accepts_null),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("mig", tests, NULL, NULL);
}
