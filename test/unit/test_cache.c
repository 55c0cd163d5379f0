/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/store/cache (with lib/store/registry underneath): a
 * worker's LRU cache of open org databases in a real data folder. Eviction,
 * reuse while the file is unchanged, reopening a file replaced by rename (as
 * a restore does), and an org whose schema is behind being refused until it
 * is migrated.
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
#include <sys/wait.h>
#include <unistd.h>

#include "store/cache.h"
#include "store/db.h"
#include "store/mig.h"
#include "store/registry.h"
#include "tmpdir.h"

/* The data folder and three orgs, made once for the whole program. */
struct world {
	char dir[256];
	struct idb_conf conf;
	struct idb_master *master;
	sqlite3 *reg;
	struct idb_org a, b, c;
};

static struct world W;

struct fx {
	struct idb_cache cache;
};

static void
make_org(const char *slug, const char *name, struct idb_org *o)
{
	char err[512] = "";

	if (idb_reg_org_create(&W.conf, W.reg, W.master, slug, name, o, err, sizeof(err)) != IDB_OK)
		fail_msg("org %s: %s", slug, err);
}

static int
group_setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	if (data_dir_setup("/tmp/idb-cache.XXXXXX", W.dir, &W.conf, &W.master, &W.reg) != 0)
		return -1;
	make_org("org-a", "Org A", &W.a);
	make_org("org-b", "Org B", &W.b);
	make_org("org-c", "Org C", &W.c);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	idb_db_close(W.reg);
	idb_key_master_free(W.master);
	rmtree(W.dir);
	return 0;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(idb_cache_init(&f->cache, 2), IDB_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	idb_cache_free(&f->cache);
	free(f);
	return 0;
}

static struct idb_org_handle *
get(struct fx *f, const struct idb_org *o)
{
	struct idb_org_handle *h = NULL;
	enum idb_err e = idb_cache_get(&f->cache, &W.conf, W.reg, W.master, o->id, &h);

	if (e != IDB_OK)
		fail_msg("idb_cache_get %s: %s", o->slug, idb_err_str(e));
	assert_non_null(h);
	assert_string_equal(h->org_id, o->id);
	return h;
}

static void
text_of(sqlite3 *db, const char *sql, char *out, size_t len)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static void
exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
}

/* Opens an org's database directly with its keys, without the schema check. */
static sqlite3 *
open_direct(const struct idb_org *o)
{
	struct idb_org_keys k;
	char path[IDB_PATH_MAX];
	sqlite3 *db = NULL;

	assert_int_equal(idb_reg_org_keys(W.reg, W.master, o->id, &k), IDB_OK);
	assert_int_equal(idb_org_path(&W.conf, o->id, path), IDB_OK);
	assert_int_equal(idb_db_open(path, k.db, 0, &db), IDB_OK);
	idb_org_keys_wipe(&k);
	return db;
}

static void
copy_file(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in, out;

	assert_true((in = open(from, O_RDONLY)) >= 0);
	assert_true((out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	assert_int_equal(fsync(out), 0);
	close(in);
	assert_int_equal(close(out), 0);
}

/* ---- the cache ---- */

static void
init_refuses_a_cache_of_size_zero(void **state)
{
	struct idb_cache c;

	(void)state;
	assert_int_not_equal(idb_cache_init(&c, 0), IDB_OK);
	idb_cache_free(&c);
}

static void
free_of_a_zeroed_or_freed_cache_is_harmless(void **state)
{
	struct idb_cache c;

	(void)state;
	memset(&c, 0, sizeof(c));
	idb_cache_free(&c);
	idb_cache_free(NULL);
	assert_int_equal(idb_cache_init(&c, 3), IDB_OK);
	idb_cache_free(&c);
	idb_cache_free(&c);
}

static void
get_opens_the_org_database(void **state)
{
	struct fx *f = *state;
	struct idb_org_handle *h = get(f, &W.a);
	struct idb_org_keys k;
	char name[64];

	assert_int_equal(f->cache.opens, 1);
	assert_int_equal(f->cache.n, 1);
	assert_non_null(h->db);
	text_of(h->db, "SELECT name FROM settings WHERE id = 1", name, sizeof(name));
	assert_string_equal(name, "Org A");
	/* The handle carries the org's current field key. */
	assert_non_null(h->keys);
	assert_int_equal(idb_reg_org_keys(W.reg, W.master, W.a.id, &k), IDB_OK);
	assert_memory_equal(h->keys->field, k.field, IDB_KEY_LEN);
	assert_int_equal(h->keys->field_version, k.field_version);
	idb_org_keys_wipe(&k);
}

static void
handles_of_different_orgs_are_different_databases(void **state)
{
	struct fx *f = *state;
	char name[64];
	sqlite3 *da, *db;

	da = get(f, &W.a)->db;
	db = get(f, &W.b)->db;
	assert_ptr_not_equal(da, db);
	text_of(da, "SELECT name FROM settings WHERE id = 1", name, sizeof(name));
	assert_string_equal(name, "Org A");
	text_of(db, "SELECT name FROM settings WHERE id = 1", name, sizeof(name));
	assert_string_equal(name, "Org B");
}

static void
handle_is_reused_while_the_file_is_unchanged(void **state)
{
	struct fx *f = *state;
	struct idb_org_handle *h1, *h2;
	sqlite3 *db;
	int i;

	h1 = get(f, &W.a);
	db = h1->db;
	for (i = 0; i < 5; i++) {
		h2 = get(f, &W.a);
		assert_ptr_equal(h2, h1);
		assert_ptr_equal(h2->db, db);
	}
	assert_int_equal(f->cache.opens, 1);
	assert_int_equal(f->cache.n, 1);
}

static void
least_recently_used_org_is_evicted_when_full(void **state)
{
	struct fx *f = *state;

	get(f, &W.a);
	get(f, &W.b);
	get(f, &W.c); /* cache of 2: A goes */
	assert_int_equal(f->cache.opens, 3);
	assert_int_equal(f->cache.n, 2);
	/* B and C are still open. */
	get(f, &W.b);
	get(f, &W.c);
	assert_int_equal(f->cache.opens, 3);
	/* A is opened again. */
	get(f, &W.a);
	assert_int_equal(f->cache.opens, 4);
	assert_int_equal(f->cache.n, 2);
}

static void
recently_used_org_survives_eviction(void **state)
{
	struct fx *f = *state;

	get(f, &W.a);
	get(f, &W.b);
	get(f, &W.a); /* A is now the most recently used */
	get(f, &W.c); /* so B goes */
	assert_int_equal(f->cache.opens, 3);
	get(f, &W.a);
	get(f, &W.c);
	assert_int_equal(f->cache.opens, 3);
	get(f, &W.b);
	assert_int_equal(f->cache.opens, 4);
}

static void
cache_of_one_alternates_without_leaking(void **state)
{
	struct idb_cache c;
	struct idb_org_handle *h;
	int i;

	(void)state;
	assert_int_equal(idb_cache_init(&c, 1), IDB_OK);
	for (i = 0; i < 6; i++) {
		assert_int_equal(idb_cache_get(&c, &W.conf, W.reg, W.master, i % 2 ? W.b.id : W.a.id, &h), IDB_OK);
		assert_int_equal(c.n, 1);
	}
	assert_int_equal(c.opens, 6);
	idb_cache_free(&c);
}

static void
drop_closes_the_handle(void **state)
{
	struct fx *f = *state;

	get(f, &W.a);
	get(f, &W.b);
	idb_cache_drop(&f->cache, W.a.id);
	assert_int_equal(f->cache.n, 1);
	idb_cache_drop(&f->cache, "o_00000000000000000000000000000000"); /* unknown: nothing happens */
	assert_int_equal(f->cache.n, 1);
	get(f, &W.b);
	assert_int_equal(f->cache.opens, 2);
	get(f, &W.a);
	assert_int_equal(f->cache.opens, 3);
}

static void
unknown_or_malformed_org_id_is_not_found(void **state)
{
	static const char *const ids[] = {"o_00000000000000000000000000000000", "../registry", "", "o_1",
	                                  "u_00000000000000000000000000000000"};
	struct fx *f = *state;
	struct idb_org_handle *h;
	size_t i;

	get(f, &W.a);
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		h = (struct idb_org_handle *)1;
		assert_int_equal(idb_cache_get(&f->cache, &W.conf, W.reg, W.master, ids[i], &h), IDB_E_NOT_FOUND);
		assert_null(h);
	}
	assert_int_equal(f->cache.n, 1);
	assert_int_equal(f->cache.opens, 1);
	/* The cached handle is untouched by the failures. */
	get(f, &W.a);
	assert_int_equal(f->cache.opens, 1);
}

static void
another_master_key_cannot_open_an_org(void **state)
{
	struct fx *f = *state;
	struct idb_org_handle *h = (struct idb_org_handle *)1;
	struct idb_master other;

	randombytes_buf(other.key, sizeof(other.key));
	assert_int_equal(idb_cache_get(&f->cache, &W.conf, W.reg, &other, W.a.id, &h), IDB_E_BADKEY);
	assert_null(h);
	assert_int_equal(f->cache.n, 0);
	sodium_memzero(&other, sizeof(other));
}

static void
replaced_file_is_reopened_with_its_new_content(void **state)
{
	struct fx *f = *state;
	struct idb_org_handle *h;
	struct idb_org d;
	char path[IDB_PATH_MAX], copy[IDB_PATH_MAX + 16], name[64];
	unsigned long long opens;

	make_org("org-replace", "Replace", &d);
	assert_int_equal(idb_org_path(&W.conf, d.id, path), IDB_OK);
	snprintf(copy, sizeof(copy), "%s.copy", path);

	h = get(f, &d);
	exec(h->db, "UPDATE settings SET name = 'content of the copy' WHERE id = 1");
	exec(h->db, "PRAGMA wal_checkpoint(TRUNCATE)");
	copy_file(path, copy);
	exec(h->db, "UPDATE settings SET name = 'later content' WHERE id = 1");
	exec(h->db, "PRAGMA wal_checkpoint(TRUNCATE)");
	opens = f->cache.opens;
	/* Unchanged file: the same handle, the later content. */
	h = get(f, &d);
	assert_int_equal(f->cache.opens, opens);
	text_of(h->db, "SELECT name FROM settings WHERE id = 1", name, sizeof(name));
	assert_string_equal(name, "later content");

	/* A restore swaps the file atomically: the next lookup must see the new file. */
	assert_int_equal(rename(copy, path), 0);
	h = get(f, &d);
	assert_int_equal(f->cache.opens, opens + 1);
	text_of(h->db, "SELECT name FROM settings WHERE id = 1", name, sizeof(name));
	assert_string_equal(name, "content of the copy");
	/* And it is kept from then on. */
	get(f, &d);
	assert_int_equal(f->cache.opens, opens + 1);
}

/*
 * Two workers and a restore. Worker 1 (this process) holds org D open; the
 * file is replaced by rename; worker 2 (a child process) opens the new file,
 * commits a change and keeps its handle open, as a worker's cache does; then
 * worker 1's next lookup sees the new inode and drops its stale handle.
 * Dropping it must not take worker 2's commit away. If the stale connection
 * is closed, SQLite's close-time checkpoint (it holds the only lock on the
 * old inode, so it thinks it is the last user) copies the shared "-wal" into
 * the old, unlinked inode and deletes it: the commit is gone for good.
 * The cache therefore parks stale handles instead of closing them. (A
 * rename over a live WAL database is still not a safe restore: frames left
 * in the old file's -wal would be read as the new file's. The restore copies
 * into the live file through sqlite3_backup instead; see docs/operations.md.)
 */
static void
commit_by_another_worker_after_a_replace_survives_the_stale_handle(void **state)
{
	struct fx *f = *state;
	struct idb_org_handle *h;
	struct idb_org_keys k;
	struct idb_org d;
	char path[IDB_PATH_MAX], copy[IDB_PATH_MAX + 16], name[64], c = 'x';
	int status, up[2], down[2];
	pid_t pid;

	make_org("org-two-workers", "Two workers", &d);
	assert_int_equal(idb_org_path(&W.conf, d.id, path), IDB_OK);
	snprintf(copy, sizeof(copy), "%s.copy", path);
	assert_int_equal(idb_reg_org_keys(W.reg, W.master, d.id, &k), IDB_OK);

	h = get(f, &d);
	exec(h->db, "PRAGMA wal_checkpoint(TRUNCATE)");
	copy_file(path, copy);
	assert_int_equal(rename(copy, path), 0); /* the restore's atomic swap */

	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Worker 2: its own connection to the restored file; nothing inherited is used. */
		sqlite3 *db = NULL;
		int ok;

		close(up[0]);
		close(down[1]); /* so that read() ends if worker 1 dies */
		ok = idb_org_open(&W.conf, d.id, &k, 0, &db) == IDB_OK &&
		         sqlite3_exec(db, "UPDATE settings SET name = 'written by worker 2' WHERE id = 1", NULL,
		                      NULL, NULL) == SQLITE_OK;

		c = ok ? 'y' : 'n';
		if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1)
			ok = 0;
		idb_db_close(db);
		_exit(ok ? 0 : 1);
	}
	idb_org_keys_wipe(&k);
	close(up[1]);
	close(down[0]);
	assert_int_equal(read(up[0], &c, 1), 1);
	assert_int_equal(c, 'y');

	/* Worker 1's next request: the stale handle is closed and the new file opened. */
	h = get(f, &d);
	text_of(h->db, "SELECT name FROM settings WHERE id = 1", name, sizeof(name));

	assert_int_equal(write(down[1], &c, 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(up[0]);
	close(down[1]);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_string_equal(name, "written by worker 2");
}

/*
 * A restore while a worker has committed changes still in the WAL (the
 * normal state of a live pool): after the swap, the reopened handle must
 * show the restored file, not the old file's WAL frames replayed onto it.
 * "-wal" and "-shm" are found by path, so unless the old handle checkpoints
 * and removes them first, the new file inherits the old file's frames.
 */
static void
removed_file_is_not_served_from_the_cache(void **state)
{
	struct fx *f = *state;
	struct idb_org_handle *h;
	struct idb_org d;
	char path[IDB_PATH_MAX];

	make_org("org-removed", "Removed", &d);
	assert_int_equal(idb_org_path(&W.conf, d.id, path), IDB_OK);
	get(f, &d);
	exec(get(f, &d)->db, "PRAGMA wal_checkpoint(TRUNCATE)");
	assert_int_equal(unlink(path), 0);
	h = (struct idb_org_handle *)1;
	assert_int_not_equal(idb_cache_get(&f->cache, &W.conf, W.reg, W.master, d.id, &h), IDB_OK);
	assert_null(h);
	assert_int_equal(f->cache.n, 0);
}

/*
 * Puts an org database back to "nothing applied": every row of
 * schema_migrations deleted and every object the migrations made dropped,
 * so that idb_mig_org applies cleanly again afterwards.
 */
static void
reset_schema(sqlite3 *db)
{
	static const char next[] =
	    "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view')"
	    " AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations'"
	    " ORDER BY (sql LIKE 'CREATE VIRTUAL%') DESC, type = 'view' DESC LIMIT 1";
	char drop[512];
	sqlite3_stmt *st;
	int i;

	exec(db, "PRAGMA foreign_keys = OFF");
	for (i = 0; i < 1000; i++) {
		assert_int_equal(sqlite3_prepare_v2(db, next, -1, &st, NULL), SQLITE_OK);
		if (sqlite3_step(st) != SQLITE_ROW) {
			sqlite3_finalize(st);
			break;
		}
		snprintf(drop, sizeof(drop), "DROP %s \"%s\"",
		         strcmp((const char *)sqlite3_column_text(st, 0), "view") == 0 ? "VIEW" : "TABLE",
		         (const char *)sqlite3_column_text(st, 1));
		sqlite3_finalize(st);
		exec(db, drop);
	}
	exec(db, "PRAGMA foreign_keys = ON");
}

static void
org_behind_schema_is_refused_until_migrated(void **state)
{
	struct fx *f = *state;
	struct idb_org_handle *h;
	struct idb_org d;
	char err[512] = "";
	sqlite3 *db;
	int applied = -1;

	make_org("org-behind", "Behind", &d);
	db = open_direct(&d);
	exec(db, "DELETE FROM schema_migrations");
	idb_db_close(db);

	h = (struct idb_org_handle *)1;
	assert_int_equal(idb_cache_get(&f->cache, &W.conf, W.reg, W.master, d.id, &h), IDB_E_SCHEMA_BEHIND);
	assert_null(h);
	assert_int_equal(f->cache.n, 0);
	/* Not kept: the next lookup checks again, and says the same. */
	assert_int_equal(idb_cache_get(&f->cache, &W.conf, W.reg, W.master, d.id, &h), IDB_E_SCHEMA_BEHIND);
	assert_int_equal(f->cache.n, 0);

	/* Migrate (after removing what the migrations made, so they apply again). */
	db = open_direct(&d);
	reset_schema(db);
	if (idb_mig_apply(db, &idb_mig_org, NULL, NULL, &applied, err, sizeof(err)) != IDB_OK)
		fail_msg("migrate: %s", err);
	assert_int_equal((size_t)applied, idb_mig_org.n);
	idb_db_close(db);

	assert_int_equal(idb_cache_get(&f->cache, &W.conf, W.reg, W.master, d.id, &h), IDB_OK);
	assert_non_null(h);
	assert_int_equal(f->cache.n, 1);
}

static void
cached_handle_is_reopened_after_a_schema_change_underneath(void **state)
{
	struct fx *f = *state;
	struct idb_org_handle *h;
	struct idb_org d;
	unsigned long long opens;
	sqlite3 *db;

	make_org("org-ddl", "DDL", &d);
	get(f, &d);
	opens = f->cache.opens;
	get(f, &d);
	assert_int_equal(f->cache.opens, opens);

	/* Another process migrates: any schema change makes the next lookup reopen and recheck. */
	db = open_direct(&d);
	exec(db, "CREATE TABLE added_by_a_migration (x INTEGER)");
	idb_db_close(db);
	get(f, &d);
	assert_int_equal(f->cache.opens, opens + 1);

	/* A change that leaves it behind: refused at the next lookup, not served from the cache. */
	db = open_direct(&d);
	exec(db, "DELETE FROM schema_migrations");
	reset_schema(db);
	idb_db_close(db);
	h = (struct idb_org_handle *)1;
	assert_int_equal(idb_cache_get(&f->cache, &W.conf, W.reg, W.master, d.id, &h), IDB_E_SCHEMA_BEHIND);
	assert_null(h);
	assert_int_equal(f->cache.n, 0);
}

static void
org_ahead_of_the_program_is_refused(void **state)
{
	struct fx *f = *state;
	struct idb_org_handle *h = (struct idb_org_handle *)1;
	struct idb_org d;
	sqlite3 *db;

	make_org("org-ahead", "Ahead", &d);
	db = open_direct(&d);
	exec(db, "INSERT INTO schema_migrations (version, name, sha256, applied_at)"
	         " VALUES (9999, '9999_future.sql', 'x', '2030-01-01T00:00:00.000Z')");
	idb_db_close(db);
	assert_int_equal(idb_cache_get(&f->cache, &W.conf, W.reg, W.master, d.id, &h), IDB_E_SCHEMA_AHEAD);
	assert_null(h);
	assert_int_equal(f->cache.n, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(init_refuses_a_cache_of_size_zero),
		T(free_of_a_zeroed_or_freed_cache_is_harmless),
		T(get_opens_the_org_database),
		T(handles_of_different_orgs_are_different_databases),
		T(handle_is_reused_while_the_file_is_unchanged),
		T(least_recently_used_org_is_evicted_when_full),
		T(recently_used_org_survives_eviction),
		T(cache_of_one_alternates_without_leaking),
		T(drop_closes_the_handle),
		T(unknown_or_malformed_org_id_is_not_found),
		T(another_master_key_cannot_open_an_org),
		T(replaced_file_is_reopened_with_its_new_content),
		T(commit_by_another_worker_after_a_replace_survives_the_stale_handle),
		T(removed_file_is_not_served_from_the_cache),
		T(org_behind_schema_is_refused_until_migrated),
		T(cached_handle_is_reopened_after_a_schema_change_underneath),
		T(org_ahead_of_the_program_is_refused),
	};

	return cmocka_run_group_tests_name("cache", tests, group_setup, group_teardown);
}
