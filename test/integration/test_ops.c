/* SPDX-License-Identifier: ISC */
/*
 * Operations, end to end with the real binaries: maintenance mode (every API
 * call but health answers 503 with Retry-After, in every worker, and writes
 * nothing; health says "maintenance"), announce-update (update_scheduled to
 * the orgs that asked to hear before), and migrate: a dry run that changes
 * nothing, a backup taken first, one transaction per file and a stop at the
 * first failure (with immidb-admin-migtest, whose org migrations are the real
 * ones plus test/migrations/org: 0013 applies, 0014 fails at its third
 * statement), schema.migrate entries, the server refusing an org that is
 * ahead, the refusal of a changed checksum, and update_done to the orgs that
 * asked to hear after.
 *
 * `migrate` works on the whole deployment, so each test runs in its own
 * deployment (its own folder, pool and nginx), and in its own orgs. As in
 * test_audit.c, the server trusts loopback as a proxy and each test speaks
 * for its own client addresses (198.18.9.N) through X-Forwarded-For.
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
#include "store/mig.h"
#include "store/registry.h"

#define WORKERS 2
#define ROUNDS (4 * WORKERS) /* requests of each kind, one after the other */
#define BURST 6              /* concurrent clients: every worker is kept busy */
#define BURST_READS 15
#define MIGTEST IDB_BUILD_DIR "/immidb-admin-migtest"
#define CLIENT_BODY "{\"family_name\":\"Maint\",\"given_name\":\"Mo\"}"

struct h_env env;

static char out[65536], err[65536];

/* The real immidb-admin, and the test-only one, on this test's deployment. */
#define ADMIN(...) h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), __VA_ARGS__, NULL)
#define MIGTEST_RUN(...)                                                                                    \
	h_run(NULL, out, sizeof(out), err, sizeof(err), MIGTEST, "--config", env.conf, __VA_ARGS__, NULL)

static int
group_setup(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return sodium_init() < 0 ? -1 : 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	curl_global_cleanup();
	return 0;
}

static int
start(void **state)
{
	(void)state;
	return h_start_with(&env, WORKERS, "127.0.0.1");
}

static int
stop(void **state)
{
	(void)state;
	return h_stop(&env);
}

/* --- helpers ------------------------------------------------------- */

/* The org migrations of the product: the test files must come right after them. */
static int
real_latest(void)
{
	int v = idb_mig_latest(&idb_mig_org);

	if (v != 12)
		fail_msg("the product's org migrations end at %d: renumber test/migrations/org (0013, 0014) to follow them",
		         v);
	return v;
}

/* 503 unavailable in the api.md shape, with a Retry-After of some seconds; frees r. */
static void
want503(struct h_resp *r)
{
	char ra[32], *end;
	long v;

	assert_error(r, 503, "unavailable");
	if (h_header(r, "Retry-After", ra, sizeof(ra)) != 0)
		fail_msg("503 without Retry-After: %.300s", r->headers);
	v = strtol(ra, &end, 10);
	assert_true(end != ra && *end == '\0' && v > 0);
	h_resp_free(r);
}

static void
s503(const struct sess *s, const char *method, const char *sub, const char *body)
{
	struct h_resp r;

	sreq(s, method, sub, body, &r);
	want503(&r);
}

/*
 * BURST clients at once, each making BURST_READS GET requests to sub as
 * session s: every answer must have this status (with Retry-After on 503).
 */
static void
burst(const struct sess *s, const char *sub, long status)
{
	pid_t pids[BURST];
	int i, st, ok = 0;

	for (i = 0; i < BURST; i++) {
		if ((pids[i] = fork()) == 0) {
			/* The child: no cmocka here, only an exit status. */
			char xff[96], cookie[256], path[256], ra[32];
			const char *hdr[3] = {xff, cookie, NULL};
			struct h_resp r;
			int k, good = 0;

			if (snprintf(xff, sizeof(xff), "X-Forwarded-For: %s", s->ip) >= (int)sizeof(xff) ||
			    snprintf(cookie, sizeof(cookie), "Cookie: immidb_session=%s", s->token) >= (int)sizeof(cookie) ||
			    snprintf(path, sizeof(path), "/api/v1/orgs/%s%s", s->slug, sub) >= (int)sizeof(path))
				_exit(2);
			for (k = 0; k < BURST_READS; k++) {
				memset(&r, 0, sizeof(r));
				if (h_http(&env, "GET", path, hdr, NULL, 0, &r) == 0 && r.status == status &&
				    (status != 503 || h_header(&r, "Retry-After", ra, sizeof(ra)) == 0))
					good++;
				h_resp_free(&r);
			}
			_exit(good == BURST_READS ? 0 : 1);
		}
		assert_true(pids[i] > 0);
	}
	for (i = 0; i < BURST; i++) {
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
	}
	assert_int_equal(ok, BURST);
}

/*
 * Every worker of the pool answered 503 to a GET of pattern: each 503 is a
 * line "immidb-fcgi[<pid>]: GET <pattern>: ..." of the server's log.
 */
static void
every_worker_answered_503(const char *pattern)
{
	pid_t w[16];
	size_t len;
	char *log;
	int i, n = h_children(env.fcgi, w, 16);

	assert_int_equal(n, WORKERS);
	log = h_slurp(env.fcgi_log, &len);
	assert_non_null(log);
	for (i = 0; i < n; i++)
		if (!h_contains(log, len, F("immidb-fcgi[%ld]: GET %s: ", (long)w[i], pattern))) {
			free(log);
			fail_msg("worker %ld answered no 503 to GET %s", (long)w[i], pattern);
		}
	free(log);
}

/* GET /api/v1/health: 200, and its status into status. */
static void
health(char *status, size_t len)
{
	struct h_resp r;
	cJSON *j;

	raw("GET", "/api/v1/health", NULL, NULL, NULL, NULL, &r);
	j = wjson(&r, 200);
	copy(status, len, jstr(j, "status"));
	assert_true(jint(j, "schema") > 0);
	cJSON_Delete(j);
}

static void
want_health(const char *status)
{
	char st[64];

	health(st, sizeof(st));
	if (strcmp(st, status) != 0)
		fail_msg("health says \"%s\", expected \"%s\"", st, status);
}

/* The settings' notify_updates, changed by the org's admin through the API. */
static void
set_notify_updates(const struct sess *a, const char *v)
{
	cJSON *j = sok(a, "GET", "/settings", NULL, 200);
	long long version = jint(j, "version");

	cJSON_Delete(j);
	j = sok(a, "PATCH", "/settings", F("{\"version\":%lld,\"notify_updates\":\"%s\"}", version, v), 200);
	assert_string_equal(jstr(j, "notify_updates"), v);
	assert_int_equal(jint(j, "version"), version + 1);
	cJSON_Delete(j);
}

/* GET .../notifications as an admin: how many of kind; the summary of the newest into summary. */
static int
notices(const struct sess *a, const char *kind, char *summary, size_t len)
{
	cJSON *j = sok(a, "GET", "/notifications?limit=200", NULL, 200);
	const cJSON *it;
	int n = 0;

	cJSON_ArrayForEach(it, jarr(j, "items"))
	{
		if (strcmp(jstr(it, "kind"), kind) != 0)
			continue;
		if (n++ == 0 && summary != NULL)
			copy(summary, len, jstr(it, "summary"));
	}
	cJSON_Delete(j);
	return n;
}

static long long
notices_in_db(const char *slug, const char *kind)
{
	return org_count(slug, F("SELECT count(*) FROM notifications WHERE kind = '%s'", kind));
}

static long long
org_version(const char *slug)
{
	return org_count(slug, "SELECT coalesce(max(version), 0) FROM schema_migrations");
}

static long long
has_table(const char *slug, const char *table)
{
	return org_count(slug, F("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", table));
}

/* The text of the first column of the first row of sql on the org's database, into buf. */
static void
org_text(const char *slug, const char *sql, char *buf, size_t len)
{
	sqlite3 *db = org_db(slug);
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_text(st, 0) == NULL)
		fail_msg("no text for %s", sql);
	copy(buf, len, (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	idb_db_close(db);
}

/* The folders under <data>/backups; the name of the last "*-pre-migrate-*" one into pre (may be NULL). */
static int
backup_dirs(char *pre, size_t len)
{
	struct dirent *d;
	DIR *dir = opendir(F("%s/backups", env.data));
	int n = 0;

	if (pre != NULL)
		pre[0] = '\0';
	if (dir == NULL)
		return 0;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		n++;
		if (pre != NULL && strstr(d->d_name, "-pre-migrate-") != NULL)
			copy(pre, len, d->d_name);
	}
	closedir(dir);
	return n;
}

/* The org's id, from the registry as an operator would read it. */
static void
org_id(const char *slug, char *id, size_t len)
{
	struct idb_org_keys k;
	char path[IDB_PATH_MAX];

	org_keys_id(slug, &k, path, id, len);
	sodium_memzero(&k, sizeof(k));
}

/*
 * Replaces a new org's database by one made with the first migration only,
 * as a binary of an earlier version would have left it (test_foundation.c
 * does the same); notify is its settings' notify_updates.
 */
static void
make_behind(const char *slug, const char *notify)
{
	struct idb_mig_set first = {"org-v1", idb_mig_org.files, 1};
	char path[IDB_PATH_MAX], fresh[IDB_PATH_MAX + 8], msg[512];
	struct idb_org_keys k;
	sqlite3 *db = NULL;
	int applied = 0, n;

	org_new(slug);
	org_keys(slug, &k, path);
	n = snprintf(fresh, sizeof(fresh), "%s.v1", path);
	assert_true(n > 0 && (size_t)n < sizeof(fresh));
	assert_int_equal(idb_db_open(fresh, k.db, IDB_DB_CREATE, &db), IDB_OK);
	idb_org_keys_wipe(&k);
	assert_int_equal(idb_mig_apply(db, &first, NULL, NULL, &applied, msg, sizeof(msg)), IDB_OK);
	assert_int_equal(applied, 1);
	assert_int_equal(idb_db_exec(db, F("INSERT INTO settings (id, name, notify_updates, updated_at) VALUES "
	                                   "(1, '%s LLP', '%s', '2026-01-01T00:00:00Z')",
	                                   slug, notify)),
	                 IDB_OK);
	idb_db_close(db);
	assert_int_equal(rename(fresh, path), 0);
	assert_int_equal(org_version(slug), 1);
}

/* A UTC time `days` days from now, as --at takes it. */
static void
utc_in_days(int days, char *buf, size_t len)
{
	time_t t = time(NULL) + (time_t)days * 86400;
	struct tm tm;

	assert_non_null(gmtime_r(&t, &tm));
	assert_int_equal(strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm), 20);
}

/* --- maintenance --------------------------------------------------- */

static void
maintenance_on_answers_503_but_health_writes_nothing_and_off_restores(void **state)
{
	struct sess a;
	struct h_resp r;
	cJSON *j;
	long long clients, entries, sver;
	int i;

	(void)state;
	org_with_admin("maint", "198.18.9.1", &a);
	j = sok(&a, "GET", "/settings", NULL, 200);
	sver = jint(j, "version");
	cJSON_Delete(j);
	cJSON_Delete(sok(&a, "GET", "/clients", NULL, 200));
	want_health("ok");
	clients = org_count("maint", "SELECT count(*) FROM clients");
	entries = org_count("maint", "SELECT count(*) FROM access_log");

	assert_int_equal(ADMIN("maintenance", "on"), 0);
	assert_non_null(strstr(out, "maintenance on"));
	for (i = 0; i < ROUNDS; i++) {
		s503(&a, "GET", "/session", NULL);
		raw("POST", "/api/v1/orgs/maint/session", "198.18.9.1", NULL, NULL,
		    "{\"email\":\"admin@maint.test\",\"password\":\"" PW "\"}", &r);
		want503(&r);
		s503(&a, "GET", "/clients", NULL);
		s503(&a, "PATCH", "/settings", F("{\"version\":%lld,\"name\":\"Changed in maintenance\"}", sver));
		s503(&a, "POST", "/clients", CLIENT_BODY);
		raw("GET", "/api/v1/log-key", NULL, NULL, NULL, NULL, &r);
		want503(&r);
		want_health("maintenance");
	}
	/* Both workers: many clients at once keep each of them busy. */
	burst(&a, "/clients", 503);
	every_worker_answered_503("/api/v1/orgs/{org}/clients");
	/* Nothing was written: no client, no settings change, no access-log entry. */
	assert_int_equal(org_count("maint", "SELECT count(*) FROM clients"), clients);
	assert_int_equal(org_count("maint", "SELECT version FROM settings"), sver);
	assert_int_equal(org_count("maint", "SELECT count(*) FROM settings WHERE name = 'Changed in maintenance'"), 0);
	assert_int_equal(org_count("maint", "SELECT count(*) FROM access_log"), entries);

	/* Bad usage changes nothing: still in maintenance. */
	assert_int_equal(ADMIN("maintenance", "maybe"), 2);
	assert_int_equal(ADMIN("maintenance"), 2);
	assert_int_equal(ADMIN("maintenance", "on", "off"), 2);
	for (i = 0; i < ROUNDS; i++) {
		want_health("maintenance");
		s503(&a, "GET", "/clients", NULL);
	}

	assert_int_equal(ADMIN("maintenance", "off"), 0);
	for (i = 0; i < ROUNDS; i++) {
		want_health("ok");
		j = sok(&a, "GET", "/session", NULL, 200);
		assert_string_equal(jstr(jobj(j, "user"), "email"), "admin@maint.test");
		cJSON_Delete(j);
		cJSON_Delete(sok(&a, "GET", "/clients", NULL, 200));
	}
	burst(&a, "/clients", 200);
	cJSON_Delete(sok(&a, "POST", "/clients", CLIENT_BODY, 201));
	cJSON_Delete(sok(&a, "PATCH", "/settings", F("{\"version\":%lld,\"name\":\"Maint After LLP\"}", sver), 200));
	assert_int_equal(org_count("maint", "SELECT count(*) FROM clients"), clients + 1);
	assert_int_equal(org_count("maint", "SELECT version FROM settings"), sver + 1);

	/* Bad usage again: still out of maintenance. */
	assert_int_equal(ADMIN("maintenance", "maybe"), 2);
	for (i = 0; i < ROUNDS; i++) {
		want_health("ok");
		cJSON_Delete(sok(&a, "GET", "/clients", NULL, 200));
	}
}

/* --- announce-update ----------------------------------------------- */

static void
announce_update_tells_the_orgs_that_asked_before_and_refuses_bad_input(void **state)
{
	char at[32], past[32], sum[512], body[2048], longsum[256];
	struct sess a, b;

	(void)state;
	org_with_admin("ann-before", "198.18.9.11", &a);
	org_with_admin("ann-after", "198.18.9.12", &b);
	set_notify_updates(&a, "before");
	utc_in_days(8, at, sizeof(at));
	utc_in_days(-1, past, sizeof(past));
	memset(longsum, 'x', 201);
	longsum[201] = '\0';

	/* Bad input: refused, nothing queued. */
	assert_int_equal(ADMIN("announce-update", "--at", "tomorrow", "--summary", "Database upgrade"), 1);
	assert_non_null(strstr(err, "--at"));
	assert_int_equal(ADMIN("announce-update", "--at", past, "--summary", "Database upgrade"), 1);
	assert_non_null(strstr(err, "--at"));
	assert_int_equal(ADMIN("announce-update", "--at", at, "--summary", ""), 1);
	assert_non_null(strstr(err, "--summary"));
	assert_int_equal(ADMIN("announce-update", "--at", at, "--summary", "Two\nlines"), 1);
	assert_int_equal(ADMIN("announce-update", "--at", at, "--summary", longsum), 1);
	assert_int_equal(ADMIN("announce-update", "--at", at), 2);
	assert_int_equal(ADMIN("announce-update", "--summary", "Database upgrade"), 2);
	assert_int_equal(ADMIN("announce-update", "--at", at, "--summary", "Database upgrade", "--now"), 2);
	assert_int_equal(notices(&a, "update_scheduled", NULL, 0), 0);
	assert_int_equal(notices_in_db("ann-before", "update_scheduled"), 0);
	assert_int_equal(notices_in_db("ann-after", "update_scheduled"), 0);

	assert_int_equal(ADMIN("announce-update", "--at", at, "--summary", "Database upgrade"), 0);
	assert_non_null(strstr(out, "ann-before: notified"));
	assert_null(strstr(out, "ann-after"));
	/* A: one notice that says when and what, to its admin. */
	assert_int_equal(notices(&a, "update_scheduled", sum, sizeof(sum)), 1);
	assert_non_null(strstr(sum, at));
	assert_non_null(strstr(sum, "Database upgrade"));
	org_text("ann-before", "SELECT body FROM notifications WHERE kind = 'update_scheduled'", body, sizeof(body));
	assert_non_null(strstr(body, at));
	assert_non_null(strstr(body, "Database upgrade"));
	assert_int_equal(org_count("ann-before", "SELECT count(*) FROM deliveries d JOIN notifications n ON "
	                                         "n.id = d.notification_id WHERE n.kind = 'update_scheduled' AND "
	                                         "d.recipient = 'admin@ann-before.test'"),
	                 1);
	/* B (notify_updates "after", the default) hears nothing now. */
	assert_int_equal(notices(&b, "update_scheduled", NULL, 0), 0);
	assert_int_equal(notices(&b, "update_done", NULL, 0), 0);
	assert_int_equal(notices_in_db("ann-after", "update_scheduled"), 0);

	/* An org that cannot be opened is named and the exit status says so; the others are still told. */
	make_behind("ann-behind", "before");
	assert_int_equal(ADMIN("announce-update", "--at", at, "--summary", "Second notice"), 1);
	assert_non_null(strstr(err, "ann-behind"));
	assert_non_null(strstr(out, "ann-before: notified"));
	assert_int_equal(notices(&a, "update_scheduled", sum, sizeof(sum)), 2);
	assert_non_null(strstr(sum, "Second notice"));
	assert_int_equal(notices(&b, "update_scheduled", NULL, 0), 0);
}

/* --- migrate ------------------------------------------------------- */

static void
migrate_dry_run_lists_pending_files_and_applies_nothing(void **state)
{
	struct sess a;
	long long rows;
	int latest = real_latest();

	(void)state;
	org_with_admin("dry", "198.18.9.21", &a);
	assert_int_equal(org_version("dry"), latest);
	rows = org_count("dry", "SELECT count(*) FROM schema_migrations");

	assert_int_equal(MIGTEST_RUN("migrate", "--dry-run"), 0);
	assert_non_null(strstr(out, "dry: pending 0013_test_applies.sql"));
	assert_non_null(strstr(out, "dry: pending 0014_test_fails.sql"));
	assert_null(strstr(out, "applying"));
	assert_null(strstr(out, "registry: pending"));
	assert_null(strstr(out, "backup"));

	assert_int_equal(org_version("dry"), latest);
	assert_int_equal(org_count("dry", "SELECT count(*) FROM schema_migrations"), rows);
	assert_int_equal(has_table("dry", "test_migration_applied"), 0);
	assert_int_equal(has_table("dry", "test_migration_half"), 0);
	assert_int_equal(backup_dirs(NULL, 0), 0);
	assert_int_equal(org_count("dry", "SELECT count(*) FROM access_log WHERE action = 'schema.migrate'"), 0);
	/* The real server still serves it. */
	cJSON_Delete(sok(&a, "GET", "/session", NULL, 200));
}

static void
migrate_backs_up_first_and_stops_at_the_failing_file(void **state)
{
	char pre[256], id[64], dir[H_PATH + 300], det[256];
	struct sess a;
	struct h_resp r;
	cJSON *man;
	const cJSON *f;
	char *txt;
	size_t len;
	int latest = real_latest(), orgs = 0, mine = 0;

	(void)state;
	org_with_admin("mig", "198.18.9.31", &a);
	org_id("mig", id, sizeof(id));
	cJSON_Delete(sok(&a, "GET", "/session", NULL, 200)); /* a worker has the org open */

	assert_int_equal(MIGTEST_RUN("migrate"), 1);
	assert_non_null(strstr(err, "0014_test_fails.sql"));
	assert_non_null(strstr(err, "migrate mig"));
	assert_non_null(strstr(out, "mig: applying 0013_test_applies.sql"));

	/* 0013 applied and stays; 0014's first statements were undone with it. */
	assert_int_equal(org_version("mig"), latest + 1);
	assert_int_equal(org_count("mig", "SELECT count(*) FROM schema_migrations WHERE version = 14"), 0);
	assert_int_equal(has_table("mig", "test_migration_applied"), 1);
	assert_int_equal(org_count("mig", "SELECT count(*) FROM test_migration_applied WHERE note = '0013 applied'"), 1);
	assert_int_equal(has_table("mig", "test_migration_half"), 0);

	/* The backup taken first: at the version before, and it verifies. */
	assert_int_equal(backup_dirs(pre, sizeof(pre)), 1);
	assert_true(strlen(pre) == strlen("YYYY-MM-DD-pre-migrate-hhmmss"));
	assert_non_null(strstr(out, F("backup: %s/backups/%s", env.data, pre)));
	assert_true(snprintf(dir, sizeof(dir), "%s/backups/%s", env.data, pre) < (int)sizeof(dir));
	txt = h_slurp(F("%s/MANIFEST.json", dir), &len);
	assert_non_null(txt);
	man = jparse_text(txt, 0);
	free(txt);
	cJSON_ArrayForEach(f, jarr(man, "files"))
	{
		const cJSON *oid = cJSON_GetObjectItemCaseSensitive(f, "org_id");

		if (!cJSON_IsString(oid))
			continue;
		orgs++;
		assert_int_equal(jint(f, "schema_version"), latest);
		if (strcmp(oid->valuestring, id) == 0)
			mine++;
	}
	cJSON_Delete(man);
	assert_int_equal(orgs, 1);
	assert_int_equal(mine, 1);
	if (ADMIN("backup", "verify", dir) != 0)
		fail_msg("backup verify %s: %s%s", dir, out, err);

	/* The org's access log says what happened. */
	assert_int_equal(org_count("mig", "SELECT count(*) FROM access_log WHERE action = 'schema.migrate' AND "
	                                  "via = 'system' AND actor_kind = 'system'"),
	                 1);
	org_text("mig", "SELECT detail FROM access_log WHERE action = 'schema.migrate'", det, sizeof(det));
	assert_non_null(strstr(det, F("%d to %d", latest, latest + 1)));
	assert_non_null(strstr(det, "0014_test_fails.sql"));

	/* The update is not done: nobody is told so. */
	assert_int_equal(notices_in_db("mig", "update_done"), 0);

	/* The real server knows version 8: the org is ahead of it and refused. */
	s503(&a, "GET", "/session", NULL);
	s503(&a, "GET", "/clients", NULL);
	raw("POST", "/api/v1/orgs/mig/session", "198.18.9.31", NULL, NULL,
	    "{\"email\":\"admin@mig.test\",\"password\":\"" PW "\"}", &r);
	want503(&r);
	want_health("ok");
	/* And the real immidb-admin refuses to migrate it, naming it. */
	assert_int_equal(ADMIN("migrate"), 1);
	assert_non_null(strstr(err, "migrate mig: database schema is newer"));
	assert_int_equal(backup_dirs(NULL, 0), 1);
}

static void
migrate_refuses_a_changed_checksum_and_applies_nothing(void **state)
{
	char sha[80], pre[256];
	struct sess a;
	struct h_resp r;
	long long rows;
	int latest = real_latest();

	(void)state;
	org_with_admin("sum", "198.18.9.41", &a);
	make_behind("sum-behind", "after");
	rows = org_count("sum", "SELECT count(*) FROM schema_migrations");
	org_text("sum", "SELECT sha256 FROM schema_migrations WHERE version = 3", sha, sizeof(sha));
	assert_int_equal(strlen(sha), 64);
	org_exec_ok("sum", "UPDATE schema_migrations SET sha256 = '"
	                   "0000000000000000000000000000000000000000000000000000000000000000' WHERE version = 3");

	/* The behind org answers 503 until it is migrated. */
	raw("GET", "/api/v1/orgs/sum-behind/session", "198.18.9.42", NULL, NULL, NULL, &r);
	want503(&r);

	assert_int_equal(ADMIN("migrate"), 1);
	assert_non_null(strstr(err, "migrate sum: "));
	assert_non_null(strstr(err, "checksum"));
	assert_int_equal(ADMIN("migrate", "--dry-run"), 1);
	assert_non_null(strstr(err, "checksum"));
	assert_non_null(strstr(out, "sum-behind: pending 0002_auth.sql"));
	/* Nothing applied to it (nor anywhere: the run was refused before its backup). */
	assert_int_equal(org_count("sum", "SELECT count(*) FROM schema_migrations"), rows);
	assert_int_equal(org_version("sum"), latest);
	assert_int_equal(org_count("sum", "SELECT count(*) FROM schema_migrations WHERE version = 3 AND sha256 = "
	                                  "'0000000000000000000000000000000000000000000000000000000000000000'"),
	                 1);
	assert_int_equal(org_count("sum", "SELECT count(*) FROM access_log WHERE action = 'schema.migrate'"), 0);
	assert_int_equal(org_version("sum-behind"), 1);
	assert_int_equal(backup_dirs(NULL, 0), 0);
	raw("GET", "/api/v1/orgs/sum-behind/session", "198.18.9.42", NULL, NULL, NULL, &r);
	want503(&r);

	/* Put back, the run goes through. */
	org_exec_ok("sum", F("UPDATE schema_migrations SET sha256 = '%s' WHERE version = 3", sha));
	if (ADMIN("migrate") != 0)
		fail_msg("migrate: %s%s", out, err);
	assert_non_null(strstr(out, "sum-behind: applying 0002_auth.sql"));
	assert_null(strstr(out, "sum: applying"));
	assert_int_equal(org_version("sum-behind"), latest);
	assert_int_equal(org_version("sum"), latest);
	assert_int_equal(backup_dirs(pre, sizeof(pre)), 1);
	assert_true(pre[0] != '\0');
	raw("GET", "/api/v1/orgs/sum-behind/session", "198.18.9.42", NULL, NULL, NULL, &r);
	werr(&r, 401, "unauthenticated");
}

static void
migrate_tells_the_orgs_that_asked_after_and_nothing_pending_changes_nothing(void **state)
{
	char sum[512], body[2048], det[256], pre[256];
	struct sess a, b;
	struct h_resp r;
	int latest = real_latest();

	(void)state;
	org_with_admin("upd-after", "198.18.9.51", &a);
	org_with_admin("upd-before", "198.18.9.52", &b);
	set_notify_updates(&b, "before");
	make_behind("upd-behind", "after");
	make_behind("upd-behind-b", "before");
	raw("GET", "/api/v1/orgs/upd-behind/session", "198.18.9.53", NULL, NULL, NULL, &r);
	want503(&r);

	if (ADMIN("migrate") != 0)
		fail_msg("migrate: %s%s", out, err);
	assert_non_null(strstr(out, "upd-behind: applying 0002_auth.sql"));
	assert_non_null(strstr(out, "backup: "));
	assert_int_equal(backup_dirs(pre, sizeof(pre)), 1);
	assert_true(pre[0] != '\0');
	assert_int_equal(org_version("upd-behind"), latest);
	assert_int_equal(org_version("upd-behind-b"), latest);
	raw("GET", "/api/v1/orgs/upd-behind/session", "198.18.9.53", NULL, NULL, NULL, &r);
	werr(&r, 401, "unauthenticated");

	/* "after" orgs are told, "before" orgs are not. */
	assert_int_equal(notices(&a, "update_done", sum, sizeof(sum)), 1);
	assert_true(strlen(sum) > 0);
	org_text("upd-after", "SELECT body FROM notifications WHERE kind = 'update_done'", body, sizeof(body));
	assert_non_null(strstr(body, F("schema version %d", latest)));
	assert_int_equal(org_count("upd-after", "SELECT count(*) FROM deliveries d JOIN notifications n ON "
	                                        "n.id = d.notification_id WHERE n.kind = 'update_done' AND "
	                                        "d.recipient = 'admin@upd-after.test'"),
	                 1);
	assert_int_equal(notices_in_db("upd-behind", "update_done"), 1);
	assert_int_equal(notices(&b, "update_done", NULL, 0), 0);
	assert_int_equal(notices_in_db("upd-before", "update_done"), 0);
	assert_int_equal(notices_in_db("upd-behind-b", "update_done"), 0);

	/* The migrated org's log has its schema.migrate entry, in a chain that verifies; the others have none. */
	assert_int_equal(org_count("upd-behind", "SELECT count(*) FROM access_log WHERE action = 'schema.migrate' AND "
	                                         "via = 'system' AND outcome = 'ok'"),
	                 1);
	org_text("upd-behind", "SELECT detail FROM access_log WHERE action = 'schema.migrate'", det, sizeof(det));
	assert_non_null(strstr(det, F("1 to %d", latest)));
	if (ADMIN("log", "verify", "--org", "upd-behind") != 0)
		fail_msg("log verify: %s%s", out, err);
	assert_int_equal(org_count("upd-after", "SELECT count(*) FROM access_log WHERE action = 'schema.migrate'"), 0);

	/* Nothing pending: said so, no backup, nobody told again. */
	if (ADMIN("migrate") != 0)
		fail_msg("migrate: %s%s", out, err);
	assert_non_null(strstr(out, "nothing to migrate"));
	assert_null(strstr(out, "applying"));
	assert_null(strstr(out, "backup"));
	assert_int_equal(backup_dirs(NULL, 0), 1);
	assert_int_equal(notices(&a, "update_done", NULL, 0), 1);
	assert_int_equal(notices_in_db("upd-behind", "update_done"), 1);
	assert_int_equal(ADMIN("migrate", "--dry-run"), 0);
	assert_non_null(strstr(out, "nothing to migrate"));
	assert_int_equal(backup_dirs(NULL, 0), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(maintenance_on_answers_503_but_health_writes_nothing_and_off_restores, start,
	                                    stop),
	    cmocka_unit_test_setup_teardown(announce_update_tells_the_orgs_that_asked_before_and_refuses_bad_input, start,
	                                    stop),
	    cmocka_unit_test_setup_teardown(migrate_dry_run_lists_pending_files_and_applies_nothing, start, stop),
	    cmocka_unit_test_setup_teardown(migrate_backs_up_first_and_stops_at_the_failing_file, start, stop),
	    cmocka_unit_test_setup_teardown(migrate_refuses_a_changed_checksum_and_applies_nothing, start, stop),
	    cmocka_unit_test_setup_teardown(migrate_tells_the_orgs_that_asked_after_and_nothing_pending_changes_nothing,
	                                    start, stop),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
