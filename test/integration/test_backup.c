/* SPDX-License-Identifier: ISC */
/*
 * Backups and restore end to end, through the real binaries while the real
 * server runs: `immidb-admin backup` under a write load (every copy a
 * consistent snapshot: integrity, its key, a prefix of each writer's
 * sequence, a manifest whose sizes and SHA-256 are recomputed here with
 * libsodium), `backup verify` on damaged folders (a flipped byte, a missing
 * file, a wrong size, a copy that does not open, a stray file, a manifest
 * that is not JSON), `backup prune` (the 30-day floor, backdated manifests,
 * folders left alone), and `restore` into the running pool (data from before
 * the backup back, data from after it gone, sessions, the replaced content
 * kept aside, the access log's backup.restore entry and its chain, workers
 * that had the org open serving the restored content), a restore of a
 * backup from before a sensitive field was set and from before a key
 * rotation (the live file keeps its current key, the values their field
 * key), and the refusals (a damaged backup, an unknown org, a missing file,
 * a schema from the future), each leaving the live database as it was.
 *
 * As in the other integration tests, loopback is a trusted proxy and each
 * test speaks for its own client addresses (198.18.5.N) in its own org.
 * Backup copies are opened here read-only with the key their manifest names,
 * as an operator holding the master key could.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "client.h"
#include "store/db.h"
#include "store/registry.h"

#define WORKERS 2
#define WRITERS 4
#define WRITES_MAX 400 /* per writer, a bound on the test's time */
#define OUT_LEN 16384

/* A path kept in buf: F()'s buffers are a ring, reused after a few calls. */
#define PATH(buf, ...) copy(buf, sizeof(buf), F(__VA_ARGS__))

struct h_env env;

static int
setup(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (sodium_init() < 0)
		return -1;
	return h_start_with(&env, WORKERS, "127.0.0.1");
}

static int
teardown(void **state)
{
	int rc = h_stop(&env);

	(void)state;
	curl_global_cleanup();
	return rc;
}

/* --- the operator's side: the registry, the master key, the copies --- */

struct op {
	struct idb_conf conf;
	struct idb_master *m;
	sqlite3 *reg;
};

static void
op_open(struct op *o)
{
	char err[512];

	memset(o, 0, sizeof(*o));
	assert_int_equal(idb_conf_open(&o->conf, env.conf, NULL, err, sizeof(err)), IDB_OK);
	assert_int_equal(idb_key_master_load(o->conf.master_key_file, &o->m), IDB_OK);
	assert_int_equal(idb_reg_open(&o->conf, o->m, 0, &o->reg), IDB_OK);
}

static void
op_close(struct op *o)
{
	idb_db_close(o->reg);
	idb_key_master_free(o->m);
}

static void
org_id_of(const char *slug, char id[IDB_ID_LEN + 1])
{
	struct idb_org o;
	struct op op;

	op_open(&op);
	assert_int_equal(idb_reg_org_find(op.reg, slug, &o), IDB_OK);
	memcpy(id, o.id, IDB_ID_LEN + 1);
	op_close(&op);
}

/* An org's copy in a backup, opened read-only (nothing in it changes) with the given key version. */
static sqlite3 *
open_copy(const char *path, const char *org_id, unsigned version)
{
	sqlite3 *db = NULL;
	struct op op;

	op_open(&op);
	if (idb_org_open_file(op.reg, op.m, org_id, path, version, IDB_DB_READONLY, &db) != IDB_OK)
		fail_msg("%s does not open with database key version %u", path, version);
	op_close(&op);
	return db;
}

static void
integrity_ok(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
}

/* --- files ---------------------------------------------------------- */

static void
sha256_hex(const void *p, size_t n, char hex[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, p, n);
	idb_hex(h, sizeof(h), hex);
}

static long long
file_sha256(const char *path, char hex[65])
{
	size_t n = 0;
	char *p = h_slurp(path, &n);

	if (p == NULL)
		fail_msg("%s: cannot be read", path);
	sha256_hex(p, n, hex);
	free(p);
	return (long long)n;
}

static void
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void
flip_byte(const char *path, long at)
{
	FILE *f = fopen(path, "r+b");
	int ch;

	assert_non_null(f);
	assert_int_equal(fseek(f, at, SEEK_SET), 0);
	ch = fgetc(f);
	assert_true(ch != EOF);
	assert_int_equal(fseek(f, at, SEEK_SET), 0);
	assert_int_equal(fputc(ch ^ 0x5a, f), ch ^ 0x5a);
	assert_int_equal(fclose(f), 0);
}

static void
cp_dir(const char *from, const char *to)
{
	char out[256], err[1024];

	if (h_run(NULL, out, sizeof(out), err, sizeof(err), "/bin/cp", "-a", from, to, NULL) != 0)
		fail_msg("cp -a %s %s: %s", from, to, err);
}

static cJSON *
manifest_load(const char *dir)
{
	size_t n = 0;
	char *p = h_slurp(F("%s/MANIFEST.json", dir), &n);
	cJSON *j;

	if (p == NULL)
		fail_msg("%s has no MANIFEST.json", dir);
	j = jparse_text(p, 0);
	free(p);
	return j;
}

static void
manifest_save(const char *dir, const cJSON *j)
{
	char *s = cJSON_Print(j);

	assert_non_null(s);
	write_text(F("%s/MANIFEST.json", dir), s);
	cJSON_free(s);
}

/* The manifest's entry for name (fails the test if there is none). */
static cJSON *
manifest_file(const cJSON *man, const char *name)
{
	cJSON *f;

	cJSON_ArrayForEach(f, jarr(man, "files")) if (strcmp(jstr(f, "name"), name) == 0) return f;
	fail_msg("the manifest has no %s", name);
	return NULL;
}

/* Names in a folder that contain needle. */
static int
names_with(const char *dir, const char *needle)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, needle) != NULL)
			n++;
	closedir(d);
	return n;
}

/* RFC 3339 UTC, with milliseconds, days_ago days before now. */
static const char *
days_ago(int days)
{
	time_t t = time(NULL) - (time_t)days * 86400;
	struct tm tm;
	char s[32];

	assert_non_null(gmtime_r(&t, &tm));
	assert_true(strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S.000Z", &tm) > 0);
	return F("%s", s);
}

static void
backdate(const char *dir, int days)
{
	cJSON *man = manifest_load(dir);

	assert_non_null(cJSON_ReplaceItemInObjectCaseSensitive(man, "created_at", cJSON_CreateString(days_ago(days))));
	manifest_save(dir, man);
	cJSON_Delete(man);
}

/* --- immidb-admin ----------------------------------------------------- */

static char out[OUT_LEN], err[OUT_LEN];

static void
backup_to(const char *dir)
{
	int rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "backup", "--out", dir, NULL);

	if (rc != 0)
		fail_msg("backup --out %s: exit %d: %s", dir, rc, err);
}

static int
verify(const char *dir)
{
	return h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "backup", "verify", dir, NULL);
}

/* backup verify must fail naming name and why. */
static void
verify_fails(const char *dir, const char *name, const char *why)
{
	int rc = verify(dir);

	if (rc != 1 || strstr(err, name) == NULL || strstr(err, why) == NULL)
		fail_msg("verify %s: want exit 1 naming %s (%s); got %d: %s / %s", dir, name, why, rc, err, out);
}

static int
restore(const char *slug, const char *dir)
{
	return h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "restore", "--org", slug, "--from", dir, NULL);
}

/* --- the API ---------------------------------------------------------- */

static long
status_of(const struct sess *s, const char *method, const char *sub, const char *body)
{
	struct h_resp r;
	long st;

	sreq(s, method, sub, body, &r);
	st = r.status;
	h_resp_free(&r);
	return st;
}

static void
client_with(const struct sess *s, const char *family, const char *given, const char *a_number, char *id, size_t len)
{
	if (a_number != NULL)
		client_new(s,
		           F("{\"family_name\":\"%s\",\"given_name\":\"%s\",\"a_number\":\"%s\"}", family, given, a_number),
		           id, len);
	else
		client_new(s, F("{\"family_name\":\"%s\",\"given_name\":\"%s\"}", family, given), id, len);
}

static const char *
reveal(const struct sess *s, const char *cid, const char *field)
{
	cJSON *j = sok(s, "POST", F("/clients/%s/reveal", cid), F("{\"field\":\"%s\"}", field), 200);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");
	const char *r = cJSON_IsString(v) ? F("%s", v->valuestring) : NULL;

	cJSON_Delete(j);
	return r;
}

/* "set" of a sensitive field in GET .../clients/{id}. */
static int
field_set(const struct sess *s, const char *cid, const char *field)
{
	cJSON *j = sok(s, "GET", F("/clients/%s", cid), NULL, 200);
	int set = jbool(jobj(j, field), "set");

	cJSON_Delete(j);
	return set;
}

/*
 * SHA-256 of the org's case data and users, read from its database: what a
 * refused restore must leave exactly as it was (the access log, which every
 * request grows, is left out).
 */
static void
stable_digest(const char *slug, char hex[65])
{
	static const char sql[] =
	    "SELECT 'c', id, family_name, given_name, version, hex(ifnull(a_number, '')), ifnull(deleted_at, '')"
	    " FROM clients UNION ALL SELECT 'u', id, email, role, version, '', '' FROM users ORDER BY 1, 2";
	crypto_hash_sha256_state h;
	unsigned char d[crypto_hash_sha256_BYTES];
	sqlite3 *db = org_db(slug);
	sqlite3_stmt *st = NULL;
	int i;

	crypto_hash_sha256_init(&h);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		for (i = 0; i < 7; i++) {
			const unsigned char *t = sqlite3_column_text(st, i);

			crypto_hash_sha256_update(&h, t ? t : (const unsigned char *)"", t ? strlen((const char *)t) : 0);
			crypto_hash_sha256_update(&h, (const unsigned char *)"\n", 1);
		}
	sqlite3_finalize(st);
	idb_db_close(db);
	crypto_hash_sha256_final(&h, d);
	idb_hex(d, sizeof(d), hex);
}

/* --- tests: backup under load ----------------------------------------- */

/* A writer (a child process): POSTs clients "w<i>-<n>" for n = 1, 2, ... until stop exists. */
static void
writer(const struct sess *a, int i, const char *stop)
{
	char xff[64], cookie[256], csrf[256], path[256], body[128];
	const char *hdr[4] = {xff, cookie, csrf, NULL};
	struct h_resp r;
	int n, bad = 0;

	snprintf(xff, sizeof(xff), "X-Forwarded-For: 198.18.5.%d", 10 + i);
	snprintf(cookie, sizeof(cookie), "Cookie: immidb_session=%s", a->token);
	snprintf(csrf, sizeof(csrf), "X-CSRF-Token: %s", a->csrf);
	snprintf(path, sizeof(path), "/api/v1/orgs/%s/clients", a->slug);
	for (n = 1; n <= WRITES_MAX && access(stop, F_OK) != 0; n++) {
		snprintf(body, sizeof(body), "{\"family_name\":\"Load\",\"given_name\":\"w%d-%d\"}", i, n);
		if (h_http(&env, "POST", path, hdr, body, strlen(body), &r) != 0 || r.status != 201)
			bad = 1;
		h_resp_free(&r);
		if (bad)
			break;
	}
	_exit(bad);
}

/* Waits (up to 30 s) until the org holds at least n clients of the writers. */
static void
wait_for_rows(const char *slug, long long n)
{
	long long have = 0, start = h_now_ms();

	while ((have = org_count(slug, "SELECT count(*) FROM clients WHERE family_name = 'Load'")) < n) {
		if (h_now_ms() - start > 30000)
			fail_msg("the writers made %lld clients in 30 s, want %lld", have, n);
		h_sleep_ms(20);
	}
}

/* Each writer's numbers in db are exactly 1..k; k per writer into ks. */
static void
prefixes(sqlite3 *db, int ks[WRITERS])
{
	static unsigned char seen[WRITERS][WRITES_MAX + 1];
	sqlite3_stmt *st = NULL;
	int i, n, count[WRITERS] = {0};

	memset(seen, 0, sizeof(seen));
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT given_name FROM clients WHERE family_name = 'Load'", -1, &st, NULL),
	                 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *g = (const char *)sqlite3_column_text(st, 0);

		if (sscanf(g, "w%d-%d", &i, &n) != 2 || i < 0 || i >= WRITERS || n < 1 || n > WRITES_MAX)
			fail_msg("unexpected client %s", g);
		if (seen[i][n]++)
			fail_msg("client %s twice", g);
		count[i]++;
	}
	sqlite3_finalize(st);
	for (i = 0; i < WRITERS; i++) {
		for (n = 1; n <= count[i]; n++)
			if (!seen[i][n])
				fail_msg("writer %d: %d rows but w%d-%d is missing: not a prefix", i, count[i], i, n);
		ks[i] = count[i];
	}
}

static void
manifest_matches_files(const char *dir, const cJSON *man)
{
	const cJSON *f;
	char hex[65];
	struct stat st;
	int orgs = 0, reg = 0;

	assert_true(strlen(jstr(man, "created_at")) == 24);
	assert_int_equal(jstr(man, "created_at")[23], 'Z');
	cJSON_ArrayForEach(f, jarr(man, "files"))
	{
		const char *name = jstr(f, "name"), *path = F("%s/%s", dir, name);

		assert_int_equal(file_sha256(path, hex), jint(f, "bytes"));
		assert_string_equal(hex, jstr(f, "sha256"));
		assert_true(jint(f, "schema_version") >= 1);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		if (strcmp(name, "registry.db") == 0) {
			assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(f, "org_id")));
			assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(f, "db_key_version")));
			reg++;
		} else {
			assert_string_equal(name, F("%s.db", jstr(f, "org_id")));
			assert_true(jint(f, "db_key_version") >= 1);
			orgs++;
		}
		/* One file, no -wal or -journal beside it. */
		assert_int_equal(access(F("%s-wal", path), F_OK), -1);
		assert_int_equal(access(F("%s-journal", path), F_OK), -1);
	}
	assert_int_equal(reg, 1);
	assert_true(orgs >= 1);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* Nothing but the manifest and its files. */
	assert_int_equal(names_with(dir, ".db") + names_with(dir, "MANIFEST.json"), orgs + reg + 1);
}

static void
backup_during_writes_is_a_consistent_snapshot(void **state)
{
	static const char *slug = "bk-load";
	char dir[H_PATH], stop[H_PATH], id[IDB_ID_LEN + 1], org_id[IDB_ID_LEN + 1];
	pid_t pids[WRITERS];
	int i, status, ks[WRITERS], live[WRITERS], total = 0;
	long long snapshot_rows;
	struct sess a;
	cJSON *man, *f;
	sqlite3 *db;

	(void)state;
	PATH(dir, "%s/bk-load", env.dir);
	PATH(stop, "%s/stop-writers", env.dir);
	org_with_admin(slug, "198.18.5.1", &a);
	org_id_of(slug, org_id);
	client_with(&a, "Steady", "Before", NULL, id, sizeof(id));
	for (i = 0; i < WRITERS; i++) {
		if ((pids[i] = fork()) == 0)
			writer(&a, i, stop);
		assert_true(pids[i] > 0);
	}
	/* The writers are under way (a few clients each), then the backup runs among them, and they go on after it. */
	wait_for_rows(slug, WRITERS * 3);
	backup_to(dir);
	db = open_copy(F("%s/%s.db", dir, org_id), org_id, 1);
	snapshot_rows = q_ll(db, "SELECT count(*) FROM clients WHERE family_name = 'Load'");
	idb_db_close(db);
	wait_for_rows(slug, snapshot_rows + WRITERS);
	write_text(stop, "");
	for (i = 0; i < WRITERS; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("writer %d failed", i);
	}
	man = manifest_load(dir);
	manifest_matches_files(dir, man);
	/* Every copy opens with its key and passes integrity_check. */
	cJSON_ArrayForEach(f, jarr(man, "files"))
	{
		if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(f, "org_id")))
			continue;
		db = open_copy(F("%s/%s", dir, jstr(f, "name")), jstr(f, "org_id"), (unsigned)jint(f, "db_key_version"));
		integrity_ok(db);
		idb_db_close(db);
	}
	/* The load org's copy: a prefix of each writer's sequence, and less than the live data now. */
	db = open_copy(F("%s/%s.db", dir, org_id), org_id, (unsigned)jint(manifest_file(man, F("%s.db", org_id)),
	                                                                        "db_key_version"));
	prefixes(db, ks);
	assert_int_equal(q_ll(db, "SELECT count(*) FROM clients WHERE family_name = 'Steady'"), 1);
	assert_int_equal(q_ll(db, "SELECT count(*) FROM access_log WHERE action = 'backup.create' AND via = 'system'"), 1);
	assert_int_equal(q_ll(db, "SELECT max(seq) - count(*) FROM access_log"), 0);
	idb_db_close(db);
	db = org_db(slug);
	prefixes(db, live);
	idb_db_close(db);
	for (i = 0; i < WRITERS; i++) {
		assert_true(live[i] >= ks[i]);
		total += ks[i];
	}
	assert_int_equal(total, snapshot_rows);
	assert_true(total >= WRITERS * 3); /* written before the snapshot */
	for (i = 0; i < WRITERS; i++)
		total += live[i] - ks[i];
	assert_true(total >= snapshot_rows + WRITERS); /* and after it */
	cJSON_Delete(man);
	/* The registry copy opens with the registry key and lists the org. */
	{
		unsigned char key[IDB_KEY_LEN];
		struct op op;

		op_open(&op);
		assert_int_equal(idb_key_registry(op.m, key), IDB_OK);
		assert_int_equal(idb_db_open(F("%s/registry.db", dir), key, IDB_DB_READONLY, &db), IDB_OK);
		sodium_memzero(key, sizeof(key));
		op_close(&op);
		integrity_ok(db);
		{
			sqlite3_stmt *st = NULL;

			assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM orgs WHERE id = ?", -1, &st, NULL),
			                 SQLITE_OK);
			sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
			assert_int_equal(sqlite3_step(st), SQLITE_ROW);
			assert_int_equal(sqlite3_column_int(st, 0), 1);
			sqlite3_finalize(st);
		}
		idb_db_close(db);
	}
	if (verify(dir) != 0)
		fail_msg("backup verify: %s %s", out, err);
	assert_non_null(strstr(out, "registry.db: ok"));
	assert_non_null(strstr(out, F("%s.db: ok", org_id)));
	/* verify reads only: the files are unchanged. */
	man = manifest_load(dir);
	manifest_matches_files(dir, man);
	cJSON_Delete(man);
}

static void
backup_refuses_a_folder_that_is_not_empty(void **state)
{
	char dir[H_PATH];
	int rc;

	(void)state;
	PATH(dir, "%s/bk-busy", env.dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	write_text(F("%s/something", dir), "x");
	rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "backup", "--out", dir, NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(err, "not empty"));
	assert_int_equal(access(F("%s/MANIFEST.json", dir), F_OK), -1);
	/* The default folder: <data>/backups/<UTC date>; a second run the same day is refused. */
	rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "backup", NULL);
	if (rc != 0)
		fail_msg("backup: %d %s", rc, err);
	{
		char day[16];
		time_t t = time(NULL);
		struct tm tm;

		assert_non_null(gmtime_r(&t, &tm));
		assert_true(strftime(day, sizeof(day), "%Y-%m-%d", &tm) > 0);
		assert_int_equal(access(F("%s/backups/%s/MANIFEST.json", env.data, day), F_OK), 0);
		assert_int_equal(verify(F("%s/backups/%s", env.data, day)), 0);
	}
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "backup", NULL), 1);
	assert_non_null(strstr(err, "not empty"));
}

/* --- tests: verify ------------------------------------------------------ */

static void
verify_names_the_bad_file_and_why(void **state)
{
	static const char *slug = "bk-verify";
	char good[H_PATH], dir[H_PATH], file[H_PATH], id[IDB_ID_LEN + 1], org_id[IDB_ID_LEN + 1], hex[65];
	struct sess a;
	long long n;
	cJSON *man;

	(void)state;
	PATH(good, "%s/bk-verify", env.dir);
	org_with_admin(slug, "198.18.5.30", &a);
	client_with(&a, "Verify", "Vera", "A123456780", id, sizeof(id));
	org_id_of(slug, org_id);
	backup_to(good);
	assert_int_equal(verify(good), 0);

	/* A flipped byte in an org file. */
	PATH(dir, "%s/bk-v-flip", env.dir);
	cp_dir(good, dir);
	PATH(file, "%s/%s.db", dir, org_id);
	flip_byte(file, 5000);
	verify_fails(dir, F("%s.db", org_id), "checksum mismatch");

	/* A missing file. */
	PATH(dir, "%s/bk-v-missing", env.dir);
	cp_dir(good, dir);
	assert_int_equal(unlink(F("%s/%s.db", dir, org_id)), 0);
	verify_fails(dir, F("%s.db", org_id), "missing");

	/* Cut short, and grown. */
	PATH(dir, "%s/bk-v-short", env.dir);
	cp_dir(good, dir);
	PATH(file, "%s/%s.db", dir, org_id);
	n = file_sha256(file, hex);
	assert_int_equal(truncate(file, (off_t)(n - 1024)), 0);
	verify_fails(dir, F("%s.db", org_id), "wrong size");
	PATH(dir, "%s/bk-v-long", env.dir);
	cp_dir(good, dir);
	{
		FILE *f = fopen(F("%s/registry.db", dir), "ab");

		assert_non_null(f);
		assert_int_equal(fputs("appended", f) >= 0, 1);
		assert_int_equal(fclose(f), 0);
	}
	verify_fails(dir, "registry.db", "wrong size");

	/* Damage the manifest agrees with (size and SHA-256 rewritten): the file no longer opens with its key. */
	PATH(dir, "%s/bk-v-open", env.dir);
	cp_dir(good, dir);
	PATH(file, "%s/%s.db", dir, org_id);
	flip_byte(file, 100); /* page 1: its authentication fails */
	man = manifest_load(dir);
	n = file_sha256(file, hex);
	assert_non_null(cJSON_ReplaceItemInObjectCaseSensitive(manifest_file(man, F("%s.db", org_id)), "sha256",
	                                                       cJSON_CreateString(hex)));
	manifest_save(dir, man);
	cJSON_Delete(man);
	(void)n;
	verify_fails(dir, F("%s.db", org_id), "does not open");

	/* A key version the org never had. */
	PATH(dir, "%s/bk-v-key", env.dir);
	cp_dir(good, dir);
	man = manifest_load(dir);
	assert_non_null(cJSON_ReplaceItemInObjectCaseSensitive(manifest_file(man, F("%s.db", org_id)), "db_key_version",
	                                                       cJSON_CreateNumber(7)));
	manifest_save(dir, man);
	cJSON_Delete(man);
	verify_fails(dir, F("%s.db", org_id), "does not open with database key version 7");

	/* A file the manifest does not list. */
	PATH(dir, "%s/bk-v-stray", env.dir);
	cp_dir(good, dir);
	write_text(F("%s/stray.db", dir), "not a backup");
	verify_fails(dir, "stray.db", "not in the manifest");

	/* A manifest that is not JSON, and none at all. */
	PATH(dir, "%s/bk-v-json", env.dir);
	cp_dir(good, dir);
	write_text(F("%s/MANIFEST.json", dir), "{\"created_at\": \"2026-11-27T00:00:00Z\", \"files\": [");
	verify_fails(dir, "MANIFEST.json", "not valid JSON");
	assert_int_equal(unlink(F("%s/MANIFEST.json", dir)), 0);
	verify_fails(dir, "MANIFEST.json", "missing");

	/* The good folder is still good. */
	assert_int_equal(verify(good), 0);
}

/* --- tests: prune --------------------------------------------------------- */

static void
prune_keeps_thirty_days_and_what_it_does_not_recognise(void **state)
{
	char root[H_PATH], old[H_PATH], older[H_PATH], edge[H_PATH], fresh[H_PATH], bad[H_PATH], junk[H_PATH],
	    extra[H_PATH];
	int rc;

	(void)state;
	PATH(root, "%s/backups", env.data);
	PATH(old, "%s/p-old", root);
	PATH(older, "%s/p-older", root);
	PATH(edge, "%s/p-29", root);
	PATH(fresh, "%s/p-fresh", root);
	PATH(bad, "%s/p-nomanifest", root);
	PATH(junk, "%s/p-junk", root);
	PATH(extra, "%s/p-extra", root);
	backup_to(old);
	cp_dir(old, older);
	cp_dir(old, edge);
	cp_dir(old, fresh);
	cp_dir(old, extra);
	backdate(old, 31);
	backdate(older, 400);
	backdate(edge, 29);
	backdate(extra, 45);
	write_text(F("%s/notes.txt", extra), "kept by hand");
	assert_int_equal(mkdir(bad, 0700), 0);
	write_text(F("%s/registry.db", bad), "a half-written backup");
	cp_dir(old, junk);
	write_text(F("%s/MANIFEST.json", junk), "garbage");

	/* Below 30 days: refused, nothing deleted. */
	rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "backup", "prune", "--keep-days", "29", NULL);
	assert_int_equal(rc, 2);
	assert_non_null(strstr(err, "30"));
	assert_int_equal(access(old, F_OK), 0);
	assert_int_equal(access(older, F_OK), 0);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "backup", "prune", "--keep-days", "x",
	                         NULL),
	                 2);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "backup", "prune", NULL), 2);

	rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "backup", "prune", "--keep-days", "30", NULL);
	if (rc != 0)
		fail_msg("prune: %d %s", rc, err);
	assert_non_null(strstr(out, F("deleted %s\n", old)));
	assert_non_null(strstr(out, F("deleted %s\n", older)));
	assert_int_equal(access(old, F_OK), -1);
	assert_int_equal(access(older, F_OK), -1);
	/* Younger than 30 days: kept, and not mentioned. */
	assert_int_equal(access(F("%s/MANIFEST.json", edge), F_OK), 0);
	assert_int_equal(access(F("%s/MANIFEST.json", fresh), F_OK), 0);
	assert_null(strstr(out, edge));
	assert_null(strstr(out, fresh));
	/* Left alone, and reported: no manifest, a manifest that is not one, files it does not name. */
	assert_non_null(strstr(out, F("left %s: no valid manifest", bad)));
	assert_non_null(strstr(out, F("left %s: no valid manifest", junk)));
	assert_non_null(strstr(out, F("left %s: holds files", extra)));
	assert_int_equal(access(F("%s/registry.db", bad), F_OK), 0);
	assert_int_equal(access(F("%s/MANIFEST.json", junk), F_OK), 0);
	assert_int_equal(access(F("%s/MANIFEST.json", extra), F_OK), 0);
	assert_int_equal(access(F("%s/registry.db", extra), F_OK), 0);
	assert_int_equal(verify(edge), 0);
}

/* --- tests: restore ---------------------------------------------------------- */

/* The path in "replaced content kept as <path> (database key version N)". */
static const char *
replaced_path(void)
{
	const char *p = strstr(out, "replaced content kept as "), *end;

	if (p == NULL)
		fail_msg("restore did not name the replaced file: %s", out);
	p += strlen("replaced content kept as ");
	end = strstr(p, " (");
	assert_non_null(end);
	return F("%.*s", (int)(end - p), p);
}

/* n GETs of sub: every one answers want (a worker with stale content would not). */
static void
every_worker_answers(const struct sess *s, const char *sub, long want_status, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		long st = status_of(s, "GET", sub, NULL);

		if (st != want_status)
			fail_msg("GET %s: %ld, want %ld (request %d)", sub, st, want_status, i + 1);
	}
}

static void
restore_round_trip_while_the_server_runs(void **state)
{
	static const char *slug = "bk-rt", *ip = "198.18.5.40";
	char dir[H_PATH], before[IDB_ID_LEN + 1], after[IDB_ID_LEN + 1], org_id[IDB_ID_LEN + 1], created[32], aside[IDB_PATH_MAX];
	struct sess a, old_sess, new_sess, fresh;
	struct stat st;
	cJSON *man, *j, *e;
	sqlite3 *db;
	long long cookie;
	int found = 0;

	(void)state;
	PATH(dir, "%s/bk-rt", env.dir);
	org_with_admin(slug, ip, &a);
	org_id_of(slug, org_id);
	login(slug, "198.18.5.41", F("admin@%s.test", slug), &old_sess);
	client_with(&a, "Before", "Bea", NULL, before, sizeof(before));
	backup_to(dir);
	man = manifest_load(dir);
	copy(created, sizeof(created), jstr(man, "created_at"));
	cJSON_Delete(man);

	/* After the backup: a client, a change, a session. */
	client_with(&a, "After", "Abe", NULL, after, sizeof(after));
	cJSON_Delete(sok(&a, "PATCH", F("/clients/%s", before), "{\"version\":1,\"given_name\":\"Changed\"}", 200));
	login(slug, "198.18.5.42", F("admin@%s.test", slug), &new_sess);
	/* Both workers have the org open, and serve the new client. */
	every_worker_answers(&a, F("/clients/%s", after), 200, 12);
	cookie = org_count(slug, "PRAGMA schema_version");

	if (restore(slug, dir) != 0)
		fail_msg("restore: %s %s", out, err);
	copy(aside, sizeof(aside), replaced_path());
	/* The copy into the live file changes its schema cookie: what tells each worker's org cache to reopen it. */
	assert_true(org_count(slug, "PRAGMA schema_version") != cookie);

	/* The server keeps answering, and no worker serves what was replaced. */
	every_worker_answers(&a, F("/clients/%s", after), 404, 12);
	j = sok(&a, "GET", F("/clients/%s", before), NULL, 200);
	assert_string_equal(jstr(j, "given_name"), "Bea");
	assert_int_equal(jint(j, "version"), 1);
	cJSON_Delete(j);
	/* Sessions live in the org database: the one from before the backup is back, the later one is gone. */
	cJSON_Delete(sok(&old_sess, "GET", "/session", NULL, 200));
	serr(&new_sess, "GET", "/session", NULL, 401, "unauthenticated");
	serr(&new_sess, "GET", "/clients", NULL, 401, "unauthenticated");
	login(slug, "198.18.5.43", F("admin@%s.test", slug), &fresh);
	j = sok(&fresh, "GET", "/clients", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 1);
	assert_string_equal(jstr(cJSON_GetArrayItem(jarr(j, "items"), 0), "id"), before);
	cJSON_Delete(j);
	/* Writes go on, on the restored content. */
	client_with(&fresh, "Later", "Lou", NULL, after, sizeof(after));
	every_worker_answers(&a, F("/clients/%s", after), 200, 6);

	/* The replaced content, kept aside: 0600, opens with the org's key, holds what the restore removed. */
	{
		const char *prefix = F("%s/orgs/%s.db.replaced-", env.data, org_id);

		assert_int_equal(strncmp(aside, prefix, strlen(prefix)), 0);
	}
	assert_int_equal(stat(aside, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	{
		struct idb_org_keys k;
		char path[IDB_PATH_MAX];

		org_keys(slug, &k, path);
		assert_int_equal(idb_db_open(aside, k.db, IDB_DB_READONLY, &db), IDB_OK);
		idb_org_keys_wipe(&k);
	}
	integrity_ok(db);
	assert_int_equal(q_ll(db, "SELECT count(*) FROM clients WHERE family_name = 'After'"), 1);
	assert_int_equal(q_ll(db, "SELECT count(*) FROM clients WHERE given_name = 'Changed'"), 1);
	idb_db_close(db);
	assert_int_equal(names_with(F("%s/orgs", env.data), ".restore-"), 0);

	/* The log: the chain verifies, and the restore is in it. */
	if (h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "verify", "--org", slug, NULL) != 0)
		fail_msg("log verify: %s %s", out, err);
	j = sok(&a, "GET", "/access-log/verify", NULL, 200);
	assert_true(jbool(j, "ok"));
	cJSON_Delete(j);
	j = sok(&a, "GET", "/access-log?action=backup.restore", NULL, 200);
	cJSON_ArrayForEach(e, jarr(j, "items"))
	{
		assert_string_equal(jstr(jobj(e, "actor"), "kind"), "system");
		assert_string_equal(jstr(jobj(e, "actor"), "id"), "immidb-admin");
		assert_string_equal(jstr(e, "via"), "server");
		assert_string_equal(jstr(e, "target"), "database");
		assert_string_equal(jstr(e, "outcome"), "ok");
		assert_non_null(strstr(jstr(e, "detail"), created));
		assert_non_null(strstr(jstr(e, "detail"), strrchr(aside, '/') + 1));
		found++;
	}
	assert_int_equal(found, 1);
	cJSON_Delete(j);
	/* The backup's own entry came back with it (written before the copy). */
	j = sok(&a, "GET", "/access-log?action=backup.create", NULL, 200);
	assert_true(cJSON_GetArraySize(jarr(j, "items")) >= 1);
	assert_string_equal(jstr(cJSON_GetArrayItem(jarr(j, "items"), 0), "via"), "system");
	cJSON_Delete(j);
}

static void
restore_of_a_backup_from_before_a_sensitive_field_was_set(void **state)
{
	static const char *slug = "bk-field", *ip = "198.18.5.50";
	char dir[H_PATH], early[IDB_ID_LEN + 1], late[IDB_ID_LEN + 1];
	struct sess a;

	(void)state;
	PATH(dir, "%s/bk-field", env.dir);
	org_with_admin(slug, ip, &a);
	client_with(&a, "Early", "Eve", "A200000001", early, sizeof(early));
	client_with(&a, "Late", "Lea", NULL, late, sizeof(late));
	backup_to(dir);
	cJSON_Delete(sok(&a, "PATCH", F("/clients/%s", late), "{\"version\":1,\"a_number\":\"A200000002\"}", 200));
	assert_true(field_set(&a, late, "a_number"));
	assert_string_equal(reveal(&a, late, "a_number"), "A200000002");

	if (restore(slug, dir) != 0)
		fail_msg("restore: %s %s", out, err);
	assert_false(field_set(&a, late, "a_number"));
	assert_null(reveal(&a, late, "a_number"));
	assert_true(field_set(&a, early, "a_number"));
	assert_string_equal(reveal(&a, early, "a_number"), "A200000001");
	/* The A-number search index came back with the values. */
	{
		cJSON *j = sok(&a, "GET", "/clients?q=0001", NULL, 200);

		assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 1);
		cJSON_Delete(j);
		j = sok(&a, "GET", "/clients?q=0002", NULL, 200);
		assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 0);
		cJSON_Delete(j);
	}
	/* And a value set after the restore is stored and revealed as usual. */
	cJSON_Delete(sok(&a, "PATCH", F("/clients/%s", late), "{\"version\":1,\"a_number\":\"A200000003\"}", 200));
	assert_string_equal(reveal(&a, late, "a_number"), "A200000003");
}

static void
restore_after_a_key_rotation_keeps_the_live_key(void **state)
{
	static const char *slug = "bk-rotate", *ip = "198.18.5.70";
	char dir[H_PATH], dir2[H_PATH], cid[IDB_ID_LEN + 1], org_id[IDB_ID_LEN + 1];
	struct sess a;
	cJSON *man;
	sqlite3 *db;
	int rc;

	(void)state;
	PATH(dir, "%s/bk-rotate", env.dir);
	PATH(dir2, "%s/bk-rotate-2", env.dir);
	org_with_admin(slug, ip, &a);
	org_id_of(slug, org_id);
	client_with(&a, "Rota", "Ray", "A400000001", cid, sizeof(cid));
	backup_to(dir);
	rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "keys", "rotate", "--org", slug, NULL);
	if (rc != 0)
		fail_msg("keys rotate: %d %s", rc, err);
	/* The backup still verifies: the manifest names the key version it was made with. */
	man = manifest_load(dir);
	assert_int_equal(jint(manifest_file(man, F("%s.db", org_id)), "db_key_version"), 1);
	cJSON_Delete(man);
	assert_int_equal(verify(dir), 0);

	if (restore(slug, dir) != 0)
		fail_msg("restore: %s %s", out, err);
	assert_non_null(strstr(out, "(database key version 2)"));
	/* The live file kept the current key (the copy re-encrypted every page with it). */
	db = org_db(slug);
	integrity_ok(db);
	assert_int_equal(q_ll(db, "SELECT count(*) FROM clients WHERE family_name = 'Rota'"), 1);
	assert_int_equal(q_ll(db, "SELECT version FROM key_state WHERE purpose = 'field'"), 1);
	idb_db_close(db);
	/* The values are under the field key the restored database records. */
	assert_string_equal(reveal(&a, cid, "a_number"), "A400000001");
	/* A backup made now names the current key version. */
	backup_to(dir2);
	man = manifest_load(dir2);
	assert_int_equal(jint(manifest_file(man, F("%s.db", org_id)), "db_key_version"), 2);
	cJSON_Delete(man);
	assert_int_equal(verify(dir2), 0);
	if (h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "verify", "--org", slug, NULL) != 0)
		fail_msg("log verify: %s %s", out, err);
}

/* The live org as the API and its file show it: unchanged by a refused restore. */
struct live_state {
	char digest[65];
	int clients;
};

static void
live_state(const struct sess *a, struct live_state *s)
{
	cJSON *j = sok(a, "GET", "/clients", NULL, 200);

	s->clients = cJSON_GetArraySize(jarr(j, "items"));
	cJSON_Delete(j);
	stable_digest(a->slug, s->digest);
}

static void
refused(const struct sess *a, const char *org_id, const struct live_state *was, const char *why)
{
	struct live_state now;

	if (strstr(err, why) == NULL)
		fail_msg("restore refused, but not because of \"%s\": %s", why, err);
	live_state(a, &now);
	assert_int_equal(now.clients, was->clients);
	assert_string_equal(now.digest, was->digest);
	assert_int_equal(names_with(F("%s/orgs", env.data), F("%s.db.replaced-", org_id)), 0);
	assert_int_equal(names_with(F("%s/orgs", env.data), F("%s.db.restore-", org_id)), 0);
}

static void
restore_refuses_and_changes_nothing(void **state)
{
	static const char *slug = "bk-refuse", *ip = "198.18.5.60";
	char good[H_PATH], dir[H_PATH], cid[IDB_ID_LEN + 1], org_id[IDB_ID_LEN + 1];
	struct live_state was;
	struct sess a, b;
	cJSON *man;

	(void)state;
	PATH(good, "%s/bk-refuse", env.dir);
	org_with_admin(slug, ip, &a);
	org_id_of(slug, org_id);
	client_with(&a, "Kept", "Kim", NULL, cid, sizeof(cid));
	backup_to(good);
	client_with(&a, "Live", "Liv", "A300000001", cid, sizeof(cid));
	live_state(&a, &was);
	assert_int_equal(was.clients, 2);

	/* A flipped byte. */
	PATH(dir, "%s/bk-r-flip", env.dir);
	cp_dir(good, dir);
	flip_byte(F("%s/%s.db", dir, org_id), 3000);
	assert_int_not_equal(restore(slug, dir), 0);
	refused(&a, org_id, &was, "checksum mismatch");

	/* An org this deployment does not know. */
	assert_int_not_equal(restore("no-such-org", good), 0);
	assert_non_null(strstr(err, "no such org"));

	/* The org's file missing from the folder. */
	PATH(dir, "%s/bk-r-missing", env.dir);
	cp_dir(good, dir);
	assert_int_equal(unlink(F("%s/%s.db", dir, org_id)), 0);
	assert_int_not_equal(restore(slug, dir), 0);
	refused(&a, org_id, &was, "missing");

	/* A backup made before the org existed. */
	org_with_admin("bk-refuse-new", "198.18.5.61", &b);
	assert_int_not_equal(restore("bk-refuse-new", good), 0);
	assert_non_null(strstr(err, "holds no file of org bk-refuse-new"));
	cJSON_Delete(sok(&b, "GET", "/session", NULL, 200));

	/* A schema from a newer binary. */
	PATH(dir, "%s/bk-r-future", env.dir);
	cp_dir(good, dir);
	man = manifest_load(dir);
	assert_non_null(cJSON_ReplaceItemInObjectCaseSensitive(manifest_file(man, F("%s.db", org_id)), "schema_version",
	                                                       cJSON_CreateNumber(9999)));
	manifest_save(dir, man);
	cJSON_Delete(man);
	assert_int_not_equal(restore(slug, dir), 0);
	refused(&a, org_id, &was, "newer than this binary knows");

	/* A manifest that is not JSON. */
	PATH(dir, "%s/bk-r-json", env.dir);
	cp_dir(good, dir);
	write_text(F("%s/MANIFEST.json", dir), "[1, 2");
	assert_int_not_equal(restore(slug, dir), 0);
	refused(&a, org_id, &was, "not valid JSON");

	/* The good folder still restores. */
	if (restore(slug, good) != 0)
		fail_msg("restore: %s %s", out, err);
	serr(&a, "GET", F("/clients/%s", cid), NULL, 404, "not_found");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(backup_during_writes_is_a_consistent_snapshot),
	    cmocka_unit_test(backup_refuses_a_folder_that_is_not_empty),
	    cmocka_unit_test(verify_names_the_bad_file_and_why),
	    cmocka_unit_test(prune_keeps_thirty_days_and_what_it_does_not_recognise),
	    cmocka_unit_test(restore_round_trip_while_the_server_runs),
	    cmocka_unit_test(restore_of_a_backup_from_before_a_sensitive_field_was_set),
	    cmocka_unit_test(restore_refuses_and_changes_nothing),
	    cmocka_unit_test(restore_after_a_key_rotation_keeps_the_live_key),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
