/* SPDX-License-Identifier: ISC */
/*
 * Foundation, end to end through nginx: health, the error shape, limits,
 * encrypted storage, immidb-admin, the process model under load (SIGKILL of
 * a worker, SIGHUP, crash loops, SIGTERM) and a wrong master key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "client.h"
#include "harness.h"
#include "store/db.h"
#include "store/mig.h"
#include "store/registry.h"

#define WORKERS 3

struct h_env env;

static int
setup(void **state)
{
	(void)state;
	client_opts.error_type = 1;
	client_opts.error_message = 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (sodium_init() < 0)
		return -1;
	return h_start(&env, WORKERS);
}

static int
teardown(void **state)
{
	(void)state;
	int rc = h_stop(&env);

	curl_global_cleanup();
	return rc;
}

static void
get(const char *path, struct h_resp *r)
{
	assert_int_equal(h_http(&env, "GET", path, NULL, NULL, 0, r), 0);
}

static void
health_answers_status_version_schema(void **state)
{
	struct h_resp r;
	char v[128];
	cJSON *j;

	(void)state;
	get("/api/v1/health", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(h_header(&r, "Cache-Control", v, sizeof(v)), 0);
	assert_string_equal(v, "no-store");
	assert_int_equal(h_header(&r, "Content-Type", v, sizeof(v)), 0);
	assert_string_equal(v, "application/json; charset=utf-8");
	j = cJSON_Parse(r.body);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "ok");
	assert_string_equal(cJSON_GetObjectItem(j, "version")->valuestring, IMMIDB_VERSION);
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "schema")));
	assert_int_equal(cJSON_GetObjectItem(j, "schema")->valueint, idb_mig_latest(&idb_mig_registry));
	cJSON_Delete(j);
	h_resp_free(&r);
}

static void
health_bad_method_is_405(void **state)
{
	static const char *methods[] = {"POST", "PUT", "PATCH", "DELETE"};
	char allow[64];
	struct h_resp r;
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		assert_int_equal(h_http(&env, methods[i], "/api/v1/health", NULL, "{}", 2, &r), 0);
		assert_error(&r, 405, "method_not_allowed");
		assert_int_equal(h_header(&r, "Allow", allow, sizeof(allow)), 0);
		assert_string_equal(allow, "GET");
		h_resp_free(&r);
	}
}

static void
unknown_routes_bad_are_404_in_the_error_shape(void **state)
{
	static const char *paths[] = {
	    "/api/v1/nope", "/api/v1/health/", "/api/v1/health/x", "/api/v2/health", "/api/v1//health",
	    "/api/v1/orgs/acme/nope", "/api/v1/orgs/", "/api/v1/orgs/x/session",
	    "/api/v1/orgs/%27%20OR%201=1--/session",
	    "/api/v1/orgs/..%2f..%2fetc/session",
	};
	char longpath[3000];
	struct h_resp r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		get(paths[i], &r);
		assert_error(&r, 404, "not_found");
		h_resp_free(&r);
	}
	/* nginx itself refuses a NUL in the path: still the error shape. */
	get("/api/v1/orgs/acme%00/session", &r);
	assert_error(&r, 400, "bad_request");
	h_resp_free(&r);
	memcpy(longpath, "/api/v1/", 8);
	memset(longpath + 8, 'a', sizeof(longpath) - 9);
	longpath[sizeof(longpath) - 1] = '\0';
	get(longpath, &r);
	assert_error(&r, 404, "not_found");
	h_resp_free(&r);
}

static void
body_over_1_mib_bad_is_413(void **state)
{
	size_t n = 1024 * 1024 + 1;
	char *big = malloc(n + 1);
	struct h_resp r;

	(void)state;
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	assert_int_equal(h_http(&env, "POST", "/api/v1/health", NULL, big, n, &r), 0);
	assert_error(&r, 413, "payload_too_large");
	h_resp_free(&r);
	/* Exactly 1 MiB passes the limit and reaches the router (405 on health). */
	assert_int_equal(h_http(&env, "POST", "/api/v1/health", NULL, big, n - 1, &r), 0);
	assert_error(&r, 405, "method_not_allowed");
	h_resp_free(&r);
	free(big);
}

static void
security_headers_and_static_files(void **state)
{
	struct h_resp r;
	char v[1024];

	(void)state;
	get("/", &r);
	assert_int_equal(r.status, 200);
	assert_true(strstr(r.body, "ImmiDB") != NULL);
	assert_int_equal(h_header(&r, "Content-Security-Policy", v, sizeof(v)), 0);
	assert_non_null(strstr(v, "frame-ancestors 'none'"));
	assert_non_null(strstr(v, "default-src 'self'"));
	assert_int_equal(h_header(&r, "X-Content-Type-Options", v, sizeof(v)), 0);
	assert_string_equal(v, "nosniff");
	h_resp_free(&r);
	get("/api/v1/health", &r);
	assert_int_equal(h_header(&r, "Content-Security-Policy", v, sizeof(v)), 0);
	assert_int_equal(h_header(&r, "X-Content-Type-Options", v, sizeof(v)), 0);
	h_resp_free(&r);
}

static void
log_key_is_the_deployment_ed25519_key(void **state)
{
	unsigned char pk[32];
	struct h_resp r;
	size_t len;
	cJSON *j;
	const char *vk;
	char want[64];

	(void)state;
	get("/api/v1/log-key", &r);
	assert_int_equal(r.status, 200);
	j = cJSON_Parse(r.body);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "algorithm")->valuestring, "ed25519");
	assert_string_equal(cJSON_GetObjectItem(j, "name")->valuestring, "test.immidb.localhost");
	assert_int_equal(sodium_base642bin(pk, sizeof(pk), cJSON_GetObjectItem(j, "public_key")->valuestring,
	                                   strlen(cJSON_GetObjectItem(j, "public_key")->valuestring), NULL, &len,
	                                   NULL, sodium_base64_VARIANT_ORIGINAL),
	                 0);
	assert_int_equal(len, 32);
	vk = cJSON_GetObjectItem(j, "verifier_key")->valuestring;
	snprintf(want, sizeof(want), "test.immidb.localhost+");
	assert_int_equal(strncmp(vk, want, strlen(want)), 0);
	assert_int_equal(strlen(vk), strlen(want) + 8 + 1 + 44);
	cJSON_Delete(j);
	h_resp_free(&r);
}

static void
org_routes_unknown_org_404_known_org_401(void **state)
{
	char out[4096], err[4096];
	struct h_resp r;

	(void)state;
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "create", "--slug", "routes",
	                         "--name", "Routes LLP", NULL),
	                 0);
	get("/api/v1/orgs/routes/session", &r);
	assert_error(&r, 401, "unauthenticated");
	h_resp_free(&r);
	get("/api/v1/orgs/routes-x/session", &r);
	assert_error(&r, 404, "not_found");
	h_resp_free(&r);
	get("/api/v1/orgs/ROUTES/session", &r);
	assert_error(&r, 404, "not_found");
	h_resp_free(&r);
}

static void
scan_no_plaintext(const char *path, const char *const *needles)
{
	char p[IDB_PATH_MAX + 8];
	const char *const *n;
	const char *suffix[] = {"", "-wal"};
	size_t len, i;
	char *bytes;

	for (i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		if ((bytes = h_slurp(p, &len)) == NULL)
			continue;
		for (n = needles; *n != NULL; n++)
			if (h_contains(bytes, len, *n))
				fail_msg("%s contains '%s' in clear", p, *n);
		free(bytes);
	}
}

static void
storage_is_encrypted_and_needs_its_key(void **state)
{
	static const char *const needles[] = {"Plaintext Probe Immigration", "probe.admin@plaintext-probe.test",
	                                      "Probe Admin", "CREATE TABLE", "SQLite format 3", NULL};
	char out[4096], err[4096], path[IDB_PATH_MAX], reg[IDB_PATH_MAX], cmd[256];
	char spec[IDB_KEY_SPEC_LEN];
	struct idb_org_keys k;
	struct idb_conf conf;

	(void)state;
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "create", "--slug", "probe",
	                         "--name", "Plaintext Probe Immigration", NULL),
	                 0);
	assert_int_equal(h_admin(&env, "a long enough password\n", out, sizeof(out), err, sizeof(err), "user", "add",
	                         "--org", "probe", "--email", "probe.admin@plaintext-probe.test", "--name", "Probe Admin",
	                         "--role", "admin", "--password-stdin", NULL),
	                 0);
	org_keys("probe", &k, path);
	assert_int_equal(idb_conf_open(&conf, env.conf, NULL, err, sizeof(err)), IDB_OK);
	assert_int_equal(idb_reg_path(&conf, reg), IDB_OK);
	scan_no_plaintext(path, needles);
	scan_no_plaintext(reg, needles);
	{
		/* And the master key is nowhere in the data files. */
		size_t len;
		char *key = h_slurp(conf.master_key_file, &len), hexkey[65];
		const char *const mk[] = {hexkey, NULL};

		assert_non_null(key);
		assert_true(len >= 64);
		memcpy(hexkey, key, 64);
		hexkey[64] = '\0';
		scan_no_plaintext(path, mk);
		scan_no_plaintext(reg, mk);
		free(key);
	}
	/* Without the key, the sqlcipher shell cannot read either file. */
	assert_int_not_equal(h_run(NULL, out, sizeof(out), err, sizeof(err), "/usr/bin/sqlcipher", path,
	                           "SELECT count(*) FROM sqlite_master;", NULL),
	                     0);
	assert_non_null(strstr(err, "file is encrypted or is not a database"));
	assert_int_not_equal(h_run(NULL, out, sizeof(out), err, sizeof(err), "/usr/bin/sqlcipher", reg,
	                           "SELECT count(*) FROM sqlite_master;", NULL),
	                     0);
	assert_non_null(strstr(err, "file is encrypted or is not a database"));
	/* With the org's database key it opens, and the user is there. */
	idb_key_spec(k.db, spec);
	snprintf(cmd, sizeof(cmd), "PRAGMA key = \"%s\";", spec);
	assert_int_equal(h_run(NULL, out, sizeof(out), err, sizeof(err), "/usr/bin/sqlcipher", "-cmd", cmd, path,
	                       "SELECT email FROM users;", NULL),
	                 0);
	assert_non_null(strstr(out, "probe.admin@plaintext-probe.test"));
	/* The field key is another key: it does not open the database. */
	idb_key_spec(k.field, spec);
	snprintf(cmd, sizeof(cmd), "PRAGMA key = \"%s\";", spec);
	assert_int_not_equal(h_run(NULL, out, sizeof(out), err, sizeof(err), "/usr/bin/sqlcipher", "-cmd", cmd, path,
	                           "SELECT email FROM users;", NULL),
	                     0);
	sodium_memzero(spec, sizeof(spec));
	sodium_memzero(cmd, sizeof(cmd));
	idb_org_keys_wipe(&k);
	/* Files are private to the service user. */
	{
		struct stat st;

		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 077, 0);
		assert_int_equal(stat(reg, &st), 0);
		assert_int_equal(st.st_mode & 077, 0);
		assert_int_equal(stat(conf.master_key_file, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
}

static void
admin_cli_lists_and_refuses_bad_input(void **state)
{
	char out[8192], err[4096];
	cJSON *j, *it;
	int found = 0;

	(void)state;
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "create", "--slug", "cli-org",
	                         "--name", "CLI Org", NULL),
	                 0);
	assert_int_equal(strlen(out), 35); /* "o_" + 32 hex + newline */
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "list", "--json", NULL), 0);
	j = cJSON_Parse(out);
	assert_true(cJSON_IsArray(j));
	cJSON_ArrayForEach(it, j) if (strcmp(cJSON_GetObjectItem(it, "slug")->valuestring, "cli-org") == 0) found = 1;
	assert_true(found);
	cJSON_Delete(j);
	/* A generated password is printed once. */
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "user", "add", "--org", "cli-org",
	                         "--email", "m@cli.test", "--name", "Member", "--role", "member", NULL),
	                 0);
	assert_non_null(strstr(out, "password: "));
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "user", "list", "--org", "cli-org",
	                         "--json", NULL),
	                 0);
	assert_non_null(strstr(out, "\"email\":\"m@cli.test\""));
	assert_null(strstr(out, "argon2"));
	assert_null(strstr(out, "password"));

	/* -bad: each refused with exit 1 (or 2 for usage), one line on stderr, nothing created. */
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "create", "--slug", "cli-org",
	                         "--name", "Again", NULL),
	                 1);
	assert_non_null(strstr(err, "exists"));
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "create", "--slug", "Bad_Slug",
	                         "--name", "X", NULL),
	                 1);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "create", "--slug",
	                         "x'; DROP TABLE orgs;--", "--name", "X", NULL),
	                 1);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "create", "--slug", "ok-slug",
	                         "--name", "", NULL),
	                 1);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "create", "--slug", "ok-slug",
	                         NULL),
	                 2);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "create", "--slug", "ok-slug",
	                         "--name", "X", "--bogus", "1", NULL),
	                 2);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "frobnicate", NULL), 2);
	assert_int_equal(h_admin(&env, "short\n", out, sizeof(out), err, sizeof(err), "user", "add", "--org", "cli-org",
	                         "--email", "s@cli.test", "--name", "S", "--role", "member", "--password-stdin", NULL),
	                 1);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "user", "add", "--org", "cli-org",
	                         "--email", "r@cli.test", "--name", "R", "--role", "root", NULL),
	                 1);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "user", "add", "--org", "cli-org",
	                         "--email", "not-an-email", "--name", "R", "--role", "member", NULL),
	                 1);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "user", "add", "--org", "cli-org",
	                         "--email", "M@CLI.TEST", "--name", "Dup", "--role", "member", NULL),
	                 1);
	assert_non_null(strstr(err, "exists"));
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "user", "add", "--org", "no-such-org",
	                         "--email", "x@cli.test", "--name", "X", "--role", "member", NULL),
	                 1);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "list", "--json", NULL), 0);
	assert_null(strstr(out, "ok-slug"));
	assert_null(strstr(out, "Bad_Slug"));
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "user", "list", "--org", "cli-org",
	                         NULL),
	                 0);
	assert_null(strstr(out, "s@cli.test"));
	assert_null(strstr(out, "r@cli.test"));
	assert_null(strstr(out, "Dup"));
}

static void
org_behind_schema_answers_503_until_migrated(void **state)
{
	char out[4096], err[4096], path[IDB_PATH_MAX], ra[32];
	struct idb_org_keys k;
	struct idb_conf conf;
	struct h_resp r;
	sqlite3 *db;

	(void)state;
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "create", "--slug", "behind",
	                         "--name", "Behind LLP", NULL),
	                 0);
	/* Replace the org's database by one made with the first migration only,
	 * as a binary of an earlier version would have left it. */
	org_keys("behind", &k, path);
	assert_int_equal(idb_conf_open(&conf, env.conf, NULL, err, sizeof(err)), IDB_OK);
	{
		struct idb_mig_set first = {"org-v1", idb_mig_org.files, 1};
		char fresh[IDB_PATH_MAX + 8];
		int applied;

		assert_true(idb_mig_org.n >= 2);
		snprintf(fresh, sizeof(fresh), "%s.v1", path);
		assert_int_equal(idb_db_open(fresh, k.db, IDB_DB_CREATE, &db), IDB_OK);
		assert_int_equal(idb_mig_apply(db, &first, NULL, NULL, &applied, err, sizeof(err)), IDB_OK);
		assert_int_equal(applied, 1);
		assert_int_equal(idb_db_exec(db, "INSERT INTO settings (id, name, updated_at) VALUES (1, 'Behind LLP', '2026-01-01T00:00:00Z')"), IDB_OK);
		idb_db_close(db);
		assert_int_equal(rename(fresh, path), 0);
	}
	idb_org_keys_wipe(&k);

	get("/api/v1/orgs/behind/session", &r);
	assert_error(&r, 503, "unavailable");
	assert_int_equal(h_header(&r, "Retry-After", ra, sizeof(ra)), 0);
	h_resp_free(&r);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "migrate", "--dry-run", NULL), 0);
	assert_non_null(strstr(out, "behind: pending 0002_auth.sql"));
	assert_null(strstr(out, "behind: pending 0001"));
	get("/api/v1/orgs/behind/session", &r);
	assert_error(&r, 503, "unavailable");
	h_resp_free(&r);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "migrate", NULL), 0);
	assert_non_null(strstr(out, "behind: applying 0002_auth.sql"));
	get("/api/v1/orgs/behind/session", &r);
	assert_error(&r, 401, "unauthenticated");
	h_resp_free(&r);
	/* A second migrate has nothing to do. */
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "migrate", NULL), 0);
	assert_null(strstr(out, "applying"));
}


static void
forwarded_for_is_not_believed_from_an_untrusted_peer(void **state)
{
	const char *xff[] = {"X-Forwarded-For: 203.0.113.5", NULL};
	char out[4096], err[4096];
	struct h_resp r;

	(void)state;
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "create", "--slug", "xff",
	                         "--name", "XFF LLP", NULL),
	                 0);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "settings", "--org", "xff",
	                         "--ip-allowlist", "203.0.113.0/24", NULL),
	                 0);
	/* trusted_proxies is empty here: the header is a client's claim, not an address. */
	assert_int_equal(h_http(&env, "POST", "/api/v1/orgs/xff/session", xff,
	                        "{\"email\":\"a@xff.test\",\"password\":\"whatever password\"}", 50, &r),
	                 0);
	assert_error(&r, 403, "ip_not_allowed");
	h_resp_free(&r);
	assert_int_equal(h_http(&env, "GET", "/api/v1/orgs/xff/session", xff, NULL, 0, &r), 0);
	assert_error(&r, 403, "ip_not_allowed");
	h_resp_free(&r);
	/* The way back in: the CLI clears the list. */
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "settings", "--org", "xff",
	                         "--ip-allowlist", "", NULL),
	                 0);
	assert_int_equal(h_http(&env, "GET", "/api/v1/orgs/xff/session", xff, NULL, 0, &r), 0);
	assert_error(&r, 401, "unauthenticated");
	h_resp_free(&r);
}

/* --- load ---------------------------------------------------------- */

#define LOAD_PROCS 4
#define FAILS_MAX 64

struct load_result {
	long long ok, failed;
	long long fail_at[FAILS_MAX]; /* start times of failed requests */
};

struct load {
	pid_t pid[LOAD_PROCS];
	int fd[LOAD_PROCS];
};

static void
load_start(struct load *l, int duration_ms)
{
	struct load_result res;
	struct h_resp r;
	long long end, t;
	int i, p[2];

	for (i = 0; i < LOAD_PROCS; i++) {
		assert_int_equal(pipe(p), 0);
		if ((l->pid[i] = fork()) == 0) {
			close(p[0]);
			memset(&res, 0, sizeof(res));
			end = h_now_ms() + duration_ms;
			while ((t = h_now_ms()) < end) {
				if (h_http(&env, "GET", "/api/v1/health", NULL, NULL, 0, &r) == 0 && r.status == 200)
					res.ok++;
				else {
					if (res.failed < FAILS_MAX)
						res.fail_at[res.failed] = t;
					res.failed++;
				}
				h_resp_free(&r);
			}
			if (write(p[1], &res, sizeof(res)) != (ssize_t)sizeof(res))
				_exit(1);
			_exit(0);
		}
		close(p[1]);
		l->fd[i] = p[0];
	}
}

static void
load_finish(struct load *l, struct load_result *total)
{
	struct load_result res;
	long long j;
	int i;

	memset(total, 0, sizeof(*total));
	for (i = 0; i < LOAD_PROCS; i++) {
		assert_int_equal(read(l->fd[i], &res, sizeof(res)), (ssize_t)sizeof(res));
		close(l->fd[i]);
		waitpid(l->pid[i], NULL, 0);
		total->ok += res.ok;
		for (j = 0; j < res.failed && j < FAILS_MAX && total->failed < FAILS_MAX; j++)
			total->fail_at[total->failed++] = res.fail_at[j];
	}
}

static int
has_pid(const pid_t *v, int n, pid_t p)
{
	int i;

	for (i = 0; i < n; i++)
		if (v[i] == p)
			return 1;
	return 0;
}

static void
sigkill_of_a_worker_under_load_loses_nothing_after_restart(void **state)
{
	pid_t before[64], after[64];
	struct load_result res;
	struct load l;
	long long t_kill, t_back = 0;
	int n, m = 0, i;

	(void)state;
	n = h_children(env.fcgi, before, 64);
	assert_int_equal(n, env.workers);
	load_start(&l, 2500);
	h_sleep_ms(600);
	t_kill = h_now_ms();
	assert_int_equal(kill(before[0], SIGKILL), 0);
	while (h_now_ms() - t_kill < 5000) {
		m = h_children(env.fcgi, after, 64);
		if (m == env.workers && !has_pid(after, m, before[0])) {
			t_back = h_now_ms();
			break;
		}
		h_sleep_ms(10);
	}
	load_finish(&l, &res);
	assert_true(t_back > 0);                /* the master brought the count back */
	assert_true(res.ok > 100);              /* the load really ran */
	assert_true(res.failed <= 1);           /* at most the request the killed worker held */
	for (i = 0; i < res.failed; i++)
		assert_true(res.fail_at[i] < t_back); /* none after the restart */
	/* The survivors are the same processes. */
	for (i = 1; i < n; i++)
		assert_true(has_pid(after, m, before[i]));
}

static void
write_conf_workers(int workers)
{
	char *text, *p, *nl;
	size_t len;
	FILE *f;

	text = h_slurp(env.conf, &len);
	assert_non_null(text);
	f = fopen(env.conf, "w");
	assert_non_null(f);
	for (p = text; *p != '\0'; p = nl ? nl + 1 : p + strlen(p)) {
		nl = strchr(p, '\n');
		if (strncmp(p, "workers", 7) == 0)
			fprintf(f, "workers = %d\n", workers);
		else
			fprintf(f, "%.*s\n", (int)(nl ? nl - p : (ptrdiff_t)strlen(p)), p);
	}
	fclose(f);
	free(text);
}

static void
sighup_under_load_refuses_nothing_and_rereads_the_configuration(void **state)
{
	pid_t before[64], after[64];
	struct load_result res;
	struct load l;
	long long t0;
	int n, m = 0, i, replaced = 0;

	(void)state;
	n = h_children(env.fcgi, before, 64);
	assert_int_equal(n, env.workers);
	write_conf_workers(env.workers + 1);
	load_start(&l, 3000);
	h_sleep_ms(500);
	assert_int_equal(kill(env.fcgi, SIGHUP), 0);
	t0 = h_now_ms();
	while (h_now_ms() - t0 < 10000 && !replaced) {
		m = h_children(env.fcgi, after, 64);
		replaced = m == env.workers + 1;
		for (i = 0; i < n && replaced; i++)
			if (has_pid(after, m, before[i]))
				replaced = 0;
		h_sleep_ms(20);
	}
	load_finish(&l, &res);
	assert_true(replaced); /* every worker is new, and there is one more of them */
	assert_true(res.ok > 100);
	assert_int_equal(res.failed, 0);
	env.workers++;
}

static void
workers_dying_in_a_loop_are_restarted_with_back_off(void **state)
{
	char reg[H_PATH + 16], away[H_PATH + 32], line[64];
	pid_t pids[64];
	size_t len;
	char *log, *p;
	int n, i, starts = 0;

	(void)state;
	snprintf(reg, sizeof(reg), "%s/registry.db", env.data);
	snprintf(away, sizeof(away), "%s/registry.db.away", env.data);
	/* Workers cannot open the registry: each new one exits at once. */
	assert_int_equal(rename(reg, away), 0);
	n = h_children(env.fcgi, pids, 64);
	for (i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	h_sleep_ms(2500);
	log = h_slurp(env.fcgi_log, &len);
	assert_non_null(log);
	for (p = log; (p = strstr(p, "exited with status 3")) != NULL; p++)
		starts++;
	assert_non_null(strstr(log, "next start in"));
	free(log);
	/* Without back-off there would be hundreds of attempts in 2.5 s. */
	assert_true(starts >= 2);
	assert_true(starts <= 6 * env.workers);
	assert_int_equal(rename(away, reg), 0);
	assert_int_equal(h_wait_ready(&env, 15000), 0);
	for (i = 0; i < 200 && h_children(env.fcgi, pids, 64) != env.workers; i++)
		h_sleep_ms(100);
	assert_int_equal(h_children(env.fcgi, pids, 64), env.workers);
	(void)line;
}

static void
wrong_or_exposed_master_key_fails_loudly(void **state)
{
	char keyp[H_PATH + 16], out[4096], err[4096];
	char *good;
	size_t len;
	FILE *f;
	struct h_resp r;
	int rc;

	(void)state;
	assert_int_equal(h_fcgi_stop(&env, 12000), 0);
	snprintf(keyp, sizeof(keyp), "%s/master.key", env.data);
	good = h_slurp(keyp, &len);
	assert_non_null(good);
	/* Another valid-looking key: the registry must not open with it. */
	f = fopen(keyp, "w");
	assert_non_null(f);
	fputs("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", f);
	fclose(f);
	rc = h_run(NULL, out, sizeof(out), err, sizeof(err), IDB_BUILD_DIR "/immidb-fcgi", "--config", env.conf, NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(err, "wrong master key"));
	rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "list", NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(err, "wrong master key"));
	/* Not a key at all. */
	f = fopen(keyp, "w");
	fputs("not a key\n", f);
	fclose(f);
	rc = h_run(NULL, out, sizeof(out), err, sizeof(err), IDB_BUILD_DIR "/immidb-fcgi", "--config", env.conf, NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(err, "not a master key"));
	/* The right key, readable by the group: refused. */
	f = fopen(keyp, "w");
	fwrite(good, 1, len, f);
	fclose(f);
	assert_int_equal(chmod(keyp, 0640), 0);
	rc = h_run(NULL, out, sizeof(out), err, sizeof(err), IDB_BUILD_DIR "/immidb-fcgi", "--config", env.conf, NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(err, "readable by group or others"));
	rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "list", NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(err, "readable by group or others"));
	assert_int_equal(chmod(keyp, 0600), 0);
	free(good);
	/* Back to normal. */
	assert_int_equal(h_fcgi_start(&env), 0);
	assert_int_equal(h_wait_ready(&env, 15000), 0);
	get("/api/v1/orgs/probe/session", &r);
	assert_error(&r, 401, "unauthenticated");
	h_resp_free(&r);
}

static void
sigterm_stops_the_pool_within_10_s(void **state)
{
	pid_t workers[64];
	long long t0;
	int n, status, i, exited = 0;
	char stat[64];
	struct stat st;

	(void)state;
	n = h_children(env.fcgi, workers, 64);
	assert_true(n > 0);
	t0 = h_now_ms();
	assert_int_equal(kill(env.fcgi, SIGTERM), 0);
	while (h_now_ms() - t0 < 10000) {
		if (waitpid(env.fcgi, &status, WNOHANG) == env.fcgi) {
			exited = 1;
			break;
		}
		h_sleep_ms(10);
	}
	assert_true(exited);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	env.fcgi = 0;
	for (i = 0; i < n; i++) {
		snprintf(stat, sizeof(stat), "/proc/%ld", (long)workers[i]);
		if (access(stat, F_OK) == 0) {
			/* Only a zombie waiting for init may remain. */
			char path[80], buf[256];
			FILE *f;

			snprintf(path, sizeof(path), "%s/stat", stat);
			f = fopen(path, "r");
			if (f != NULL) {
				if (fgets(buf, sizeof(buf), f) != NULL)
					assert_non_null(strstr(buf, ") Z"));
				fclose(f);
			}
		}
	}
	assert_int_not_equal(lstat(env.sock, &st), 0); /* the socket is gone */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(health_answers_status_version_schema),
	    cmocka_unit_test(health_bad_method_is_405),
	    cmocka_unit_test(unknown_routes_bad_are_404_in_the_error_shape),
	    cmocka_unit_test(body_over_1_mib_bad_is_413),
	    cmocka_unit_test(security_headers_and_static_files),
	    cmocka_unit_test(log_key_is_the_deployment_ed25519_key),
	    cmocka_unit_test(org_routes_unknown_org_404_known_org_401),
	    cmocka_unit_test(storage_is_encrypted_and_needs_its_key),
	    cmocka_unit_test(admin_cli_lists_and_refuses_bad_input),
	    cmocka_unit_test(org_behind_schema_answers_503_until_migrated),
	    cmocka_unit_test(forwarded_for_is_not_believed_from_an_untrusted_peer),
	    cmocka_unit_test(sigkill_of_a_worker_under_load_loses_nothing_after_restart),
	    cmocka_unit_test(sighup_under_load_refuses_nothing_and_rereads_the_configuration),
	    cmocka_unit_test(workers_dying_in_a_loop_are_restarted_with_back_off),
	    cmocka_unit_test(wrong_or_exposed_master_key_fails_loudly),
	    cmocka_unit_test(sigterm_stops_the_pool_within_10_s),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
