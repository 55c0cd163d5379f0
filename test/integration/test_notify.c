/* SPDX-License-Identifier: ISC */
/*
 * Notifications, end to end: the outbox rows that sysadmin access (once an
 * hour per sysadmin and org, when the org asks, in the transaction of the
 * access-log entry), break-glass (always) and lockouts queue; their listing
 * for org admins; and their delivery by `immidb-admin notify deliver --once`
 * to a loopback SMTP server (test/mock/smtp_server.py): one mail per active
 * admin, the headers and body, the signed checkpoint (verified here with the
 * deployment's public key), retries with back-off, and at-least-once delivery
 * across a crash between the send and the mark.
 *
 * The server trusts loopback as a proxy; the sysadmin speaks from
 * 198.18.9.10 (in sysadmin_ip_allowlist), each test's users from their own
 * 198.18.N.x. Each test has its own organizations. `notify deliver` walks
 * every org, so the delivery tests first settle what earlier tests left
 * pending (settle_all), to count only their own mails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "checks.h"
#include "harness.h"
#include "api/api.h"
#include "store/db.h"
#include "store/registry.h"

#define WORKERS 2
#define OATHTOOL "/usr/bin/oathtool"
#define PW "correct horse battery staple"
#define SA_PW "sysadmin passphrase of some length"
#define SA_EMAIL "ops@platform.test"
#define SA_IP "198.18.9.10"
#define ORIGIN "test.immidb.localhost"
#define FROM_ADDR "notices@test.immidb.localhost"
#define FROM_HDR "ImmiDB Notices <" FROM_ADDR ">"
#define REASON "Ticket 4711: checking a reported import problem"
#define NOW_SQL "CAST(strftime('%s', 'now') AS INTEGER)"

static struct h_env env;
static char *orig_conf; /* the harness's configuration, before our lines */

/* The sysadmin, logged in once (a TOTP step cannot be used twice). */
struct sysadmin {
	char id[64], secret[64], token[128], csrf[256];
};
static struct sysadmin sa, sa2;
#define SA2_EMAIL "ops2@platform.test"

/* Mock SMTP servers started by the tests (killed in teardown). */
struct smtp {
	pid_t pid;
	int port;
	char dir[H_PATH];
};
#define SMTP_MAX 8
static struct smtp smtps[SMTP_MAX];
static int n_smtps;

/* The orgs made so far (for settle_all). */
#define ORGS_MAX 32
static char orgs[ORGS_MAX][48];
static int n_orgs;

struct sess {
	char slug[48];
	char ip[64];
	char token[128];
	char csrf[256];
};

/* --- small helpers ------------------------------------------------- */

static cJSON *
jparse(const char *text)
{
	cJSON *j = cJSON_Parse(text);

	if (j == NULL)
		fail_msg("not JSON: %.300s", text);
	return j;
}

static void
want(const struct h_resp *r, long status)
{
	if (r->status != status)
		fail_msg("expected %ld, got %ld: %.400s", status, r->status, r->body);
}

/* Asserts status and error code, frees the response. */
static void
werr(struct h_resp *r, long status, const char *code)
{
	cJSON *j;
	const cJSON *e;

	want(r, status);
	j = jparse(r->body);
	e = cJSON_GetObjectItemCaseSensitive(j, "error");
	if (!cJSON_IsObject(e) || strcmp(jstr(e, "code"), code) != 0)
		fail_msg("expected code %s: %.300s", code, r->body);
	cJSON_Delete(j);
	h_resp_free(r);
}

static cJSON *
wjson(struct h_resp *r, long status)
{
	cJSON *j;

	want(r, status);
	j = jparse(r->body);
	h_resp_free(r);
	return j;
}

static int
write_file(const char *path, const char *text, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, text, n) == (ssize_t)n;
	close(fd);
	return ok ? 0 : -1;
}

/* The value after `prefix` on one line of text (to the end of that line). */
static int
line_value(const char *text, const char *prefix, char *out, size_t len)
{
	const char *p = strstr(text, prefix);
	size_t n;

	if (p == NULL)
		return -1;
	p += strlen(prefix);
	n = strcspn(p, "\r\n");
	if (n >= len)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/* --- configuration and the mock SMTP server ------------------------ */

/* Rewrites the configuration: the harness's lines, the sysadmin addresses, the SMTP settings. */
static void
conf_write(int smtp_port)
{
	const char *extra = F("sysadmin_ip_allowlist = 198.18.9.0/24\n"
	                      "smtp_from = " FROM_HDR "\n"
	                      "smtp_url = smtp://127.0.0.1:%d\n",
	                      smtp_port);
	size_t a = strlen(orig_conf), b = strlen(extra);
	char *all = malloc(a + b + 2);

	assert_non_null(all);
	memcpy(all, orig_conf, a);
	if (a > 0 && orig_conf[a - 1] != '\n')
		all[a++] = '\n';
	memcpy(all + a, extra, b + 1);
	assert_int_equal(write_file(env.conf, all, a + b), 0);
	free(all);
}

static struct smtp *
smtp_start(int fail_first)
{
	struct smtp *s;
	char pf[H_PATH + 16], log[H_PATH + 32], ff[16], *txt;
	const char *p;
	long long t0;
	size_t len;
	int fd;

	assert_true(n_smtps < SMTP_MAX);
	s = &smtps[n_smtps];
	memset(s, 0, sizeof(*s));
	p = F("%s/mail%d", env.dir, n_smtps);
	assert_true(strlen(p) < sizeof(s->dir));
	memcpy(s->dir, p, strlen(p) + 1);
	assert_int_equal(mkdir(s->dir, 0700), 0);
	snprintf(pf, sizeof(pf), "%s/port", s->dir);
	snprintf(log, sizeof(log), "%s/smtp%d.log", env.dir, n_smtps);
	snprintf(ff, sizeof(ff), "%d", fail_first);
	n_smtps++;
	if ((s->pid = fork()) == 0) {
		if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		fd = open("/dev/null", O_RDONLY);
		dup2(fd, 0);
		setpgid(0, 0);
		execlp("python3", "python3", IDB_SOURCE_DIR "/test/mock/smtp_server.py", "--port-file", pf, "--dir", s->dir,
		       "--fail-first", ff, (char *)NULL);
		_exit(127);
	}
	assert_true(s->pid > 0);
	t0 = h_now_ms();
	while ((txt = h_slurp(pf, &len)) == NULL && h_now_ms() - t0 < 10000)
		h_sleep_ms(20);
	if (txt == NULL)
		fail_msg("the mock SMTP server did not start (see %s)", log);
	s->port = (int)strtol(txt, NULL, 10);
	free(txt);
	assert_true(s->port > 0 && s->port < 65536);
	return s;
}

static void
smtp_stop(struct smtp *s)
{
	int status;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	waitpid(s->pid, &status, 0);
	s->pid = 0;
}

/* The path of mail n (1-based) of server s, with the given suffix. */
static const char *
mail_path(const struct smtp *s, int n, const char *suffix)
{
	return F("%s/%04d.%s", s->dir, n, suffix);
}

/* The number of mails the server accepted. */
static int
mail_count(const struct smtp *s)
{
	struct stat st;
	int n = 0;

	while (stat(mail_path(s, n + 1, "eml"), &st) == 0)
		n++;
	return n;
}

/* A header of a mail (its header block only), value copied into out; -1 if absent. */
static int
mail_header(const char *eml, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name), n;
	const char *p = eml, *eol;

	while (*p != '\0' && *p != '\r' && *p != '\n') {
		eol = p + strcspn(p, "\r\n");
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			p += nl + 1;
			while (*p == ' ')
				p++;
			n = (size_t)(eol - p);
			if (n >= len)
				n = len - 1;
			memcpy(out, p, n);
			out[n] = '\0';
			return 0;
		}
		p = eol;
		if (*p == '\r')
			p++;
		if (*p == '\n')
			p++;
	}
	return -1;
}

/* The body of a mail (after the blank line), or NULL. */
static const char *
mail_body(const char *eml)
{
	const char *p = strstr(eml, "\r\n\r\n");

	if (p != NULL)
		return p + 4;
	p = strstr(eml, "\n\n");
	return p ? p + 2 : NULL;
}

/* --- immidb-admin --------------------------------------------------- */

static void
org_new(const char *slug)
{
	char out[4096], err[4096];
	int rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "create", "--slug", slug, "--name",
	                 F("%s LLP", slug), NULL);

	if (rc != 0)
		fail_msg("org create %s: %d %s", slug, rc, err);
	assert_true(n_orgs < ORGS_MAX);
	snprintf(orgs[n_orgs++], sizeof(orgs[0]), "%s", slug);
}

static void
user_new(const char *slug, const char *email, const char *role, char *id, size_t idlen)
{
	char out[4096], err[4096];
	int rc = h_admin(&env, PW "\n", out, sizeof(out), err, sizeof(err), "user", "add", "--org", slug, "--email",
	                 email, "--name", F("Name of %s", email), "--role", role, "--password-stdin", NULL);

	if (rc != 0)
		fail_msg("user add %s: %d %s", email, rc, err);
	out[strcspn(out, "\r\n")] = '\0';
	assert_true(strlen(out) > 0);
	if (id != NULL) {
		assert_true(strlen(out) < idlen);
		memcpy(id, out, strlen(out) + 1);
	}
}

static void
notify_off(const char *slug)
{
	char out[4096], err[4096];
	int rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "settings", "--org", slug,
	                 "--notify-sysadmin-access", "off", NULL);

	if (rc != 0)
		fail_msg("org settings %s: %d %s", slug, rc, err);
}

static void
sa_assign_email(const char *email, const char *slug)
{
	char out[4096], err[4096];
	int rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "sysadmin", "assign", "--email", email, "--org",
	                 slug, NULL);

	if (rc != 0)
		fail_msg("sysadmin assign %s: %d %s", slug, rc, err);
}

static void
sa_assign(const char *slug)
{
	sa_assign_email(SA_EMAIL, slug);
}

/* `notify deliver --once`: its exit status; its stdout (first line) in out. */
static int
deliver_once(char *out, size_t len)
{
	char err[4096];
	int rc = h_admin(&env, NULL, out, len, err, sizeof(err), "notify", "deliver", "--once", NULL);

	out[strcspn(out, "\r\n")] = '\0';
	if (rc != 0)
		fprintf(stderr, "notify deliver --once: %d: %s\n", rc, err);
	return rc;
}

/* deliver_once expecting exit 0 and exactly `expect` on stdout. */
static void
deliver_expect(const char *expect)
{
	char out[4096];

	assert_int_equal(deliver_once(out, sizeof(out)), 0);
	if (strcmp(out, expect) != 0)
		fail_msg("notify deliver --once printed \"%s\", expected \"%s\"", out, expect);
}

/* --- the org database, from the test's side ------------------------ */

static sqlite3 *
org_db(const char *slug)
{
	struct idb_master *m = NULL;
	char path[IDB_PATH_MAX], err[512];
	struct idb_org_keys k;
	struct idb_conf conf;
	struct idb_org o;
	sqlite3 *reg = NULL, *db = NULL;

	assert_int_equal(idb_conf_open(&conf, env.conf, NULL, err, sizeof(err)), IDB_OK);
	assert_int_equal(idb_key_master_load(conf.master_key_file, &m), IDB_OK);
	assert_int_equal(idb_reg_open(&conf, m, 0, &reg), IDB_OK);
	assert_int_equal(idb_reg_org_find(reg, slug, &o), IDB_OK);
	assert_int_equal(idb_reg_org_keys(reg, m, o.id, &k), IDB_OK);
	assert_int_equal(idb_org_path(&conf, o.id, path), IDB_OK);
	idb_db_close(reg);
	idb_key_master_free(m);
	assert_int_equal(idb_db_open(path, k.db, 0, &db), IDB_OK);
	idb_org_keys_wipe(&k);
	return db;
}

static void
org_exec(const char *slug, const char *sql)
{
	sqlite3 *db = org_db(slug);
	char *em = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &em) != SQLITE_OK)
		fail_msg("%s: %s", sql, em ? em : "?");
	sqlite3_free(em);
	idb_db_close(db);
}

/* One integer from a fixed query with one optional text parameter. */
static long long
org_ll(const char *slug, const char *sql, const char *a)
{
	sqlite3 *db = org_db(slug);
	sqlite3_stmt *st = NULL;
	long long v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
	if (a != NULL)
		sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW)
		fail_msg("no row for %s", sql);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	idb_db_close(db);
	return v;
}

static void
org_text(const char *slug, const char *sql, const char *a, char *out, size_t len)
{
	sqlite3 *db = org_db(slug);
	sqlite3_stmt *st = NULL;
	const unsigned char *t;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
	if (a != NULL)
		sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW)
		fail_msg("no row for %s", sql);
	t = sqlite3_column_text(st, 0);
	snprintf(out, len, "%s", t ? (const char *)t : "");
	sqlite3_finalize(st);
	idb_db_close(db);
}

/* Marks whatever earlier tests left pending as delivered, so that a delivery pass sends only this test's mails. */
static void
settle_all(void)
{
	int i;

	for (i = 0; i < n_orgs; i++)
		org_exec(orgs[i], "UPDATE deliveries SET delivered_at = '1970-01-01T00:00:00.000Z'"
		                  " WHERE delivered_at IS NULL");
}

/* --- requests ------------------------------------------------------ */

/* One request from ip with an optional Cookie value, CSRF token and X-Access-Reason. */
static void
raw(const char *method, const char *path, const char *ip, const char *cookie, const char *csrf, const char *reason,
    const char *body, struct h_resp *r)
{
	char xff[128], ck[512], xcsrf[512], why[700];
	const char *hdr[5];
	int n = 0;

	if (ip != NULL) {
		snprintf(xff, sizeof(xff), "X-Forwarded-For: %s", ip);
		hdr[n++] = xff;
	}
	if (cookie != NULL) {
		assert_true(snprintf(ck, sizeof(ck), "Cookie: %s", cookie) < (int)sizeof(ck));
		hdr[n++] = ck;
	}
	if (csrf != NULL) {
		assert_true(snprintf(xcsrf, sizeof(xcsrf), "X-CSRF-Token: %s", csrf) < (int)sizeof(xcsrf));
		hdr[n++] = xcsrf;
	}
	if (reason != NULL) {
		assert_true(snprintf(why, sizeof(why), "X-Access-Reason: %s", reason) < (int)sizeof(why));
		hdr[n++] = why;
	}
	hdr[n] = NULL;
	assert_int_equal(h_http(&env, method, path, hdr, body, body ? strlen(body) : 0, r), 0);
}

static void
login(const char *slug, const char *ip, const char *email, struct sess *s)
{
	char sc[512];
	struct h_resp r;
	size_t n;
	cJSON *j;

	memset(s, 0, sizeof(*s));
	snprintf(s->slug, sizeof(s->slug), "%s", slug);
	snprintf(s->ip, sizeof(s->ip), "%s", ip);
	raw("POST", F("/api/v1/orgs/%s/session", slug), ip, NULL, NULL, NULL,
	    F("{\"email\":\"%s\",\"password\":\"%s\"}", email, PW), &r);
	want(&r, 200);
	assert_int_equal(h_header(&r, "Set-Cookie", sc, sizeof(sc)), 0);
	assert_true(strncmp(sc, "immidb_session=", 15) == 0);
	n = strcspn(sc + 15, ";");
	assert_true(n < sizeof(s->token));
	memcpy(s->token, sc + 15, n);
	s->token[n] = '\0';
	j = wjson(&r, 200);
	snprintf(s->csrf, sizeof(s->csrf), "%s", jstr(j, "csrf_token"));
	cJSON_Delete(j);
}

/* A user request to /api/v1/orgs/<slug><sub> (CSRF on all but GET). */
static void
ureq(const struct sess *s, const char *method, const char *sub, const char *body, struct h_resp *r)
{
	raw(method, F("/api/v1/orgs/%s%s", s->slug, sub), s->ip, F("immidb_session=%s", s->token),
	    strcmp(method, "GET") ? s->csrf : NULL, NULL, body, r);
}

/* A request of sysadmin a to /api/v1/orgs/<slug><sub> with the reason. */
static void
sareq_as(const struct sysadmin *a, const char *slug, const char *method, const char *sub, const char *reason,
         struct h_resp *r)
{
	raw(method, F("/api/v1/orgs/%s%s", slug, sub), SA_IP, F("immidb_sysadmin=%s", a->token),
	    strcmp(method, "GET") ? a->csrf : NULL, reason, NULL, r);
}

static void
sareq(const char *slug, const char *method, const char *sub, const char *reason, struct h_resp *r)
{
	sareq_as(&sa, slug, method, sub, reason, r);
}

/* A sysadmin GET .../clients that must answer 200. */
static void
sa_read(const char *slug)
{
	struct h_resp r;

	sareq(slug, "GET", "/clients", REASON, &r);
	cJSON_Delete(wjson(&r, 200));
}

/* GET .../notifications as s: the parsed body (checked for shape). */
static cJSON *
notes_get(const struct sess *s)
{
	static const char *const kinds[] = {"sysadmin_access", "break_glass", "update_scheduled",
	                                    "update_done",     "export",      "lockout"};
	const cJSON *it, *d, *next;
	struct h_resp r;
	size_t i;
	int ok;
	cJSON *j;

	ureq(s, "GET", "/notifications", NULL, &r);
	j = wjson(&r, 200);
	next = cJSON_GetObjectItemCaseSensitive(j, "next_cursor");
	assert_true(next != NULL && (cJSON_IsNull(next) || cJSON_IsString(next)));
	cJSON_ArrayForEach(it, jarr(j, "items"))
	{
		assert_true(strlen(jstr(it, "id")) > 0);
		assert_true(strlen(jstr(it, "at")) >= 20);
		assert_true(strlen(jstr(it, "summary")) > 0);
		for (ok = 0, i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			ok |= strcmp(jstr(it, "kind"), kinds[i]) == 0;
		if (!ok)
			fail_msg("unknown kind %s", jstr(it, "kind"));
		d = cJSON_GetObjectItemCaseSensitive(it, "delivered_at");
		assert_true(d != NULL && (cJSON_IsNull(d) || cJSON_IsString(d)));
	}
	return j;
}

static int
n_items(const cJSON *j)
{
	return cJSON_GetArraySize(jarr(j, "items"));
}

static int
n_kind(const cJSON *j, const char *kind)
{
	const cJSON *it;
	int n = 0;

	cJSON_ArrayForEach(it, jarr(j, "items")) n += strcmp(jstr(it, "kind"), kind) == 0;
	return n;
}

/* The first item of the list (newest first). */
static const cJSON *
item0(const cJSON *j)
{
	const cJSON *it = cJSON_GetArrayItem(jarr(j, "items"), 0);

	assert_non_null(it);
	return it;
}

/* GET .../access-log/verify as s: asserts ok, returns the size. */
static long long
verify_size(const struct sess *s)
{
	const cJSON *ok;
	struct h_resp r;
	long long n;
	cJSON *j;

	ureq(s, "GET", "/access-log/verify", NULL, &r);
	j = wjson(&r, 200);
	ok = cJSON_GetObjectItemCaseSensitive(j, "ok");
	if (!cJSON_IsTrue(ok))
		fail_msg("access log does not verify");
	n = jint(j, "size");
	cJSON_Delete(j);
	return n;
}

/* --- setup ---------------------------------------------------------- */

static void
totp_now(const char *secret, char code[16])
{
	char out[256], err[256];

	if (h_run(NULL, out, sizeof(out), err, sizeof(err), OATHTOOL, "--totp", "-b", secret, NULL) != 0)
		fail_msg("oathtool: %s", err);
	out[strcspn(out, "\r\n")] = '\0';
	assert_int_equal(strlen(out), 6);
	memcpy(code, out, 7);
}

/* sysadmin add and a log in from SA_IP: 0 on success. */
static int
sa_make(const char *email, const char *name, struct sysadmin *a)
{
	char out[4096], err[4096], code[16], sc[512];
	struct h_resp r;
	size_t n;
	cJSON *j;

	if (h_admin(&env, SA_PW "\n", out, sizeof(out), err, sizeof(err), "sysadmin", "add", "--email", email, "--name",
	            name, "--password-stdin", NULL) != 0) {
		fprintf(stderr, "sysadmin add: %s\n", err);
		return -1;
	}
	n = strcspn(out, "\r\n");
	if (n == 0 || n >= sizeof(a->id) || line_value(out, "totp secret: ", a->secret, sizeof(a->secret)) != 0)
		return -1;
	memcpy(a->id, out, n);
	a->id[n] = '\0';
	totp_now(a->secret, code);
	raw("POST", "/api/v1/sysadmin/session", SA_IP, NULL, NULL, NULL,
	    F("{\"email\":\"%s\",\"password\":\"%s\",\"code\":\"%s\"}", email, SA_PW, code), &r);
	if (r.status != 200 || h_header(&r, "Set-Cookie", sc, sizeof(sc)) != 0 ||
	    strncmp(sc, "immidb_sysadmin=", 16) != 0) {
		fprintf(stderr, "sysadmin login: %ld %s\n", r.status, r.body);
		h_resp_free(&r);
		return -1;
	}
	n = strcspn(sc + 16, ";");
	if (n >= sizeof(a->token)) {
		h_resp_free(&r);
		return -1;
	}
	memcpy(a->token, sc + 16, n);
	a->token[n] = '\0';
	j = cJSON_Parse(r.body);
	h_resp_free(&r);
	if (j == NULL || !cJSON_IsString(cJSON_GetObjectItem(j, "csrf_token"))) {
		cJSON_Delete(j);
		return -1;
	}
	snprintf(a->csrf, sizeof(a->csrf), "%s", cJSON_GetObjectItem(j, "csrf_token")->valuestring);
	cJSON_Delete(j);
	return 0;
}

static int
setup(void **state)
{
	size_t len;

	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (sodium_init() < 0)
		return -1;
	if (h_start_with(&env, WORKERS, "127.0.0.1") != 0)
		return -1;
	if ((orig_conf = h_slurp(env.conf, &len)) == NULL)
		return -1;
	/* The sysadmin addresses are read at start: restart the pool. A port that
	 * nothing listens on until a test starts its own SMTP server. */
	conf_write(1);
	h_fcgi_stop(&env, 12000);
	if (h_fcgi_start(&env) != 0 || h_wait_ready(&env, 15000) != 0) {
		fprintf(stderr, "immidb-fcgi did not restart\n");
		return -1;
	}
	return sa_make(SA_EMAIL, "Olive Ops", &sa) == 0 && sa_make(SA2_EMAIL, "Piet Ops", &sa2) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	int i, rc;

	(void)state;
	for (i = 0; i < n_smtps; i++)
		smtp_stop(&smtps[i]);
	rc = h_stop(&env);
	free(orig_conf);
	curl_global_cleanup();
	return rc;
}

/* --- 1. sysadmin access: once an hour, only when asked, in the log's transaction --- */

static void
sysadmin_access_queues_one_notice_an_hour_in_the_log_transaction(void **state)
{
	struct sess a, b, c;
	long long s1, s2;
	struct h_resp r;
	const cJSON *it;
	cJSON *j;

	(void)state;
	/* On (the default): the first request queues exactly one notice, the second none. */
	org_new("nt-access");
	user_new("nt-access", "a@nt-access.test", "admin", NULL, 0);
	sa_assign("nt-access");
	login("nt-access", "198.18.1.1", "a@nt-access.test", &a);
	j = notes_get(&a);
	assert_int_equal(n_items(j), 0);
	cJSON_Delete(j);
	sa_read("nt-access");
	j = notes_get(&a);
	assert_int_equal(n_items(j), 1);
	it = item0(j);
	assert_string_equal(jstr(it, "kind"), "sysadmin_access");
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(it, "delivered_at")));
	cJSON_Delete(j);
	/* One delivery per admin (one admin here). */
	assert_int_equal(org_ll("nt-access", "SELECT count(*) FROM deliveries", NULL), 1);
	sa_read("nt-access");
	sareq("nt-access", "GET", "/cases", REASON, &r);
	cJSON_Delete(wjson(&r, 200));
	j = notes_get(&a);
	assert_int_equal(n_items(j), 1);
	cJSON_Delete(j);
	assert_int_equal(org_ll("nt-access", "SELECT count(*) FROM access_log WHERE action = 'sysadmin.access'", NULL), 3);
	/* Per sysadmin: another one's first request in the hour is told too, once. */
	sa_assign_email(SA2_EMAIL, "nt-access");
	sareq_as(&sa2, "nt-access", "GET", "/clients", REASON, &r);
	cJSON_Delete(wjson(&r, 200));
	sareq_as(&sa2, "nt-access", "GET", "/clients", REASON, &r);
	cJSON_Delete(wjson(&r, 200));
	j = notes_get(&a);
	assert_int_equal(n_items(j), 2);
	assert_int_equal(n_kind(j, "sysadmin_access"), 2);
	cJSON_Delete(j);
	assert_int_equal(org_ll("nt-access", "SELECT count(*) FROM notifications WHERE subject_id = ?", sa2.id), 1);

	/* Off: logged, not notified. */
	org_new("nt-off");
	user_new("nt-off", "a@nt-off.test", "admin", NULL, 0);
	notify_off("nt-off");
	sa_assign("nt-off");
	login("nt-off", "198.18.1.2", "a@nt-off.test", &b);
	sa_read("nt-off");
	j = notes_get(&b);
	assert_int_equal(n_items(j), 0);
	cJSON_Delete(j);
	assert_int_equal(org_ll("nt-off", "SELECT count(*) FROM notifications", NULL), 0);
	assert_int_equal(org_ll("nt-off", "SELECT count(*) FROM access_log WHERE action = 'sysadmin.access'", NULL), 1);

	/* The same transaction: an outbox that refuses writes refuses the request, and leaves no log entry. */
	org_new("nt-tx");
	user_new("nt-tx", "a@nt-tx.test", "admin", NULL, 0);
	sa_assign("nt-tx");
	login("nt-tx", "198.18.1.3", "a@nt-tx.test", &c);
	org_exec("nt-tx", "CREATE TRIGGER t BEFORE INSERT ON notifications BEGIN SELECT RAISE(ABORT, 'x'); END");
	s1 = verify_size(&c);
	sareq("nt-tx", "GET", "/clients", REASON, &r);
	werr(&r, 503, "unavailable");
	/* The verify's own entry is the only one added since (it is logged after it counted). */
	s2 = verify_size(&c);
	assert_int_equal(s2, s1 + 1);
	assert_int_equal(org_ll("nt-tx", "SELECT count(*) FROM access_log WHERE action = 'sysadmin.access'", NULL), 0);
	assert_int_equal(org_ll("nt-tx", "SELECT count(*) FROM notifications", NULL), 0);
	assert_int_equal(org_ll("nt-tx", "SELECT count(*) FROM deliveries", NULL), 0);
	j = notes_get(&c);
	assert_int_equal(n_items(j), 0);
	cJSON_Delete(j);
	/* Writable again: the request goes through with its entry and its notice. */
	org_exec("nt-tx", "DROP TRIGGER t");
	sa_read("nt-tx");
	assert_int_equal(org_ll("nt-tx", "SELECT count(*) FROM access_log WHERE action = 'sysadmin.access'", NULL), 1);
	j = notes_get(&c);
	assert_int_equal(n_items(j), 1);
	assert_int_equal(n_kind(j, "sysadmin_access"), 1);
	cJSON_Delete(j);
	(void)verify_size(&c);
}

/* --- 2. delivery: one mail per active admin, complete, once ------- */

/* check_note on a body whose lines end in LF. */
static void
check_note_lf(const char *body, const char *slug, long long *size)
{
	unsigned char pk[64], sig[128], kh[crypto_hash_sha256_BYTES], alg = 0x01;
	const char *first = strstr(body, F("%s/%s\n", ORIGIN, slug)), *p, *sl;
	const char *dash = "\n\xe2\x80\x94 " ORIGIN " ";
	crypto_hash_sha256_state hs;
	char sigb64[256];
	size_t pklen, siglen, msglen;
	struct h_resp r;
	int i;
	cJSON *j;

	if (first == NULL)
		fail_msg("no checkpoint for %s/%s in the mail: %.2000s", ORIGIN, slug, body);
	/* origin, size, head: three lines, the signed message. */
	for (p = first, i = 0; i < 3; i++) {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	msglen = (size_t)(p - first);
	sl = strchr(first, '\n') + 1;
	*size = strtoll(sl, NULL, 10);
	/* A blank line, then "— <origin> <base64(key hash || signature)>". */
	if (strncmp(p, dash, strlen(dash)) != 0)
		fail_msg("no signature line \"— %s \" after the checkpoint: %.600s", ORIGIN, first);
	p += strlen(dash);
	assert_int_equal(line_value(p, "", sigb64, sizeof(sigb64)), 0);
	assert_int_equal(sodium_base642bin(sig, sizeof(sig), sigb64, strlen(sigb64), NULL, &siglen, NULL,
	                                   sodium_base64_VARIANT_ORIGINAL),
	                 0);
	assert_int_equal(siglen, 4 + crypto_sign_BYTES);
	raw("GET", "/api/v1/log-key", NULL, NULL, NULL, NULL, NULL, &r);
	j = wjson(&r, 200);
	assert_string_equal(jstr(j, "name"), ORIGIN);
	assert_int_equal(sodium_base642bin(pk, sizeof(pk), jstr(j, "public_key"), strlen(jstr(j, "public_key")), NULL,
	                                   &pklen, NULL, sodium_base64_VARIANT_ORIGINAL),
	                 0);
	cJSON_Delete(j);
	assert_int_equal(pklen, crypto_sign_PUBLICKEYBYTES);
	/* The key hash of a signed note: SHA-256(name "\n" 0x01 public key)[:4]. */
	crypto_hash_sha256_init(&hs);
	crypto_hash_sha256_update(&hs, (const unsigned char *)ORIGIN "\n", strlen(ORIGIN) + 1);
	crypto_hash_sha256_update(&hs, &alg, 1);
	crypto_hash_sha256_update(&hs, pk, pklen);
	crypto_hash_sha256_final(&hs, kh);
	assert_memory_equal(sig, kh, 4);
	if (crypto_sign_verify_detached(sig + 4, (const unsigned char *)first, msglen, pk) != 0)
		fail_msg("the checkpoint's signature does not verify: %.*s", (int)msglen, first);
}

/* Checks the signed checkpoint note in body against the deployment's log key; its size into *size. */
static void
check_note(const char *crlf_body, const char *slug, long long *size)
{
	/* The note's lines end in LF; a mail's may end in CRLF: compare with CRs dropped. */
	char *body = malloc(strlen(crlf_body) + 1);
	size_t bi = 0, ci;

	assert_non_null(body);
	for (ci = 0; crlf_body[ci] != '\0'; ci++)
		if (!(crlf_body[ci] == '\r' && crlf_body[ci + 1] == '\n'))
			body[bi++] = crlf_body[ci];
	body[bi] = '\0';
	check_note_lf(body, slug, size);
	free(body);
}

static void
delivery_sends_one_complete_mail_per_active_admin_once(void **state)
{
	static const char *const admins[] = {"a1@nt-mail.test", "a2@nt-mail.test"};
	char id3[64], nid[64], when[64], v[512], mids[2][320];
	unsigned char h[8];
	char hex[17];
	int seen[2] = {0, 0}, i, k, ai;
	const char *body;
	long long logsize, cksize;
	struct smtp *s;
	struct h_resp r;
	struct sess a;
	size_t len;
	char *eml, *env_txt;
	cJSON *j, *e;

	(void)state;
	settle_all();
	s = smtp_start(0);
	conf_write(s->port);
	org_new("nt-mail");
	user_new("nt-mail", admins[0], "admin", NULL, 0);
	user_new("nt-mail", admins[1], "admin", NULL, 0);
	user_new("nt-mail", "a3@nt-mail.test", "admin", id3, sizeof(id3));
	user_new("nt-mail", "m@nt-mail.test", "member", NULL, 0);
	user_new("nt-mail", "r@nt-mail.test", "readonly", NULL, 0);
	login("nt-mail", "198.18.2.1", admins[0], &a);
	ureq(&a, "PATCH", F("/users/%s", id3), "{\"version\":1,\"disabled\":true}", &r);
	cJSON_Delete(wjson(&r, 200));
	sa_assign("nt-mail");
	sa_read("nt-mail");
	/* One delivery per active admin: not the disabled one, not the member or readonly user. */
	assert_int_equal(org_ll("nt-mail", "SELECT count(*) FROM deliveries", NULL), 2);
	assert_int_equal(org_ll("nt-mail", "SELECT count(*) FROM deliveries WHERE recipient = 'a3@nt-mail.test'", NULL),
	                 0);
	j = notes_get(&a);
	assert_int_equal(n_items(j), 1);
	snprintf(nid, sizeof(nid), "%s", jstr(item0(j), "id"));
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(item0(j), "delivered_at")));
	cJSON_Delete(j);
	org_text("nt-mail", "SELECT at FROM access_log WHERE action = 'sysadmin.access' ORDER BY seq LIMIT 1", NULL, when,
	         sizeof(when));
	logsize = org_ll("nt-mail", "SELECT count(*) FROM access_log", NULL);

	deliver_expect("sent 2, failed 0");
	assert_int_equal(mail_count(s), 2);
	for (i = 1; i <= 2; i++) {
		/* The envelope. */
		env_txt = h_slurp(mail_path(s, i, "json"), &len);
		assert_non_null(env_txt);
		e = jparse(env_txt);
		free(env_txt);
		assert_string_equal(jstr(e, "mail_from"), FROM_ADDR);
		assert_int_equal(cJSON_GetArraySize(jarr(e, "rcpt")), 1);
		const char *to = cJSON_GetArrayItem(jarr(e, "rcpt"), 0)->valuestring;
		for (k = -1, ai = 0; ai < 2; ai++)
			if (strcmp(to, admins[ai]) == 0)
				k = ai;
		if (k < 0)
			fail_msg("a mail to %s, who is no active admin", to);
		seen[k]++;
		/* The headers. */
		eml = h_slurp(mail_path(s, i, "eml"), &len);
		assert_non_null(eml);
		assert_int_equal(mail_header(eml, "From", v, sizeof(v)), 0);
		if (strstr(v, "<" FROM_ADDR ">") == NULL && strcmp(v, FROM_ADDR) != 0)
			fail_msg("From: %s", v);
		assert_int_equal(mail_header(eml, "To", v, sizeof(v)), 0);
		assert_non_null(strstr(v, to));
		assert_int_equal(mail_header(eml, "Subject", v, sizeof(v)), 0);
		if (strstr(v, "nt-mail") == NULL)
			fail_msg("the Subject does not name the org: %s", v);
		assert_int_equal(mail_header(eml, "Date", v, sizeof(v)), 0);
		assert_int_equal(mail_header(eml, "Message-ID", mids[k], sizeof(mids[k])), 0);
		/* "<notification id>.<hash of the recipient>@<log_origin>" */
		crypto_generichash(h, sizeof(h), (const unsigned char *)to, strlen(to), NULL, 0);
		sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
		assert_string_equal(mids[k], F("<%s.%s@%s>", nid, hex, ORIGIN));
		/* The body: who, when, why, and the signed checkpoint of the log. */
		body = mail_body(eml);
		assert_non_null(body);
		if (strstr(body, SA_EMAIL) == NULL || strstr(body, "Olive Ops") == NULL)
			fail_msg("the body does not name the sysadmin: %s", body);
		if (strstr(body, when) == NULL)
			fail_msg("the body does not say when (%s): %s", when, body);
		if (strstr(body, REASON) == NULL)
			fail_msg("the body does not give the reason: %s", body);
		check_note(body, "nt-mail", &cksize);
		assert_int_equal(cksize, logsize);
		free(eml);
		cJSON_Delete(e);
	}
	assert_int_equal(seen[0], 1);
	assert_int_equal(seen[1], 1);
	assert_string_not_equal(mids[0], mids[1]);

	/* Marked delivered: shown in the list, and nothing is sent twice. */
	j = notes_get(&a);
	assert_int_equal(n_items(j), 1);
	assert_true(strlen(jstr(item0(j), "delivered_at")) >= 20);
	cJSON_Delete(j);
	assert_int_equal(org_ll("nt-mail", "SELECT count(*) FROM deliveries WHERE delivered_at IS NULL", NULL), 0);
	deliver_expect("sent 0, failed 0");
	assert_int_equal(mail_count(s), 2);
	smtp_stop(s);
}

/*
 * SMTP carries lines ended by CRLF (RFC 5321 section 2.3.8: a bare LF must
 * not be sent; RFC 5322 section 2.3 for the message): every line of the mail
 * as it went over the wire, the signed checkpoint's included.
 */
static void
mails_end_every_line_with_crlf(void **state)
{
	char bad[256] = "";
	struct smtp *s;
	size_t len, i, n;
	char *eml;
	int line = 1;

	(void)state;
	settle_all();
	s = smtp_start(0);
	conf_write(s->port);
	org_new("nt-crlf");
	user_new("nt-crlf", "a@nt-crlf.test", "admin", NULL, 0);
	sa_assign("nt-crlf");
	sa_read("nt-crlf");
	deliver_expect("sent 1, failed 0");
	eml = h_slurp(mail_path(s, 1, "eml"), &len);
	assert_non_null(eml);
	smtp_stop(s);
	for (i = 0; i < len; i++) {
		if (eml[i] != '\n')
			continue;
		if (i == 0 || eml[i - 1] != '\r') {
			size_t start = i;

			while (start > 0 && eml[start - 1] != '\n')
				start--;
			n = i - start < sizeof(bad) - 1 ? i - start : sizeof(bad) - 1;
			memcpy(bad, eml + start, n);
			bad[n] = '\0';
			break;
		}
		line++;
	}
	free(eml);
	if (bad[0] != '\0')
		fail_msg("line %d of the mail ends with a bare LF: \"%s\"", line, bad);
}

/* --- 3. retries ------------------------------------------------------ */

static long long
next_in(const char *slug)
{
	return org_ll(slug, "SELECT next_attempt_at - " NOW_SQL " FROM deliveries WHERE delivered_at IS NULL", NULL);
}

static void
failures_are_retried_with_back_off_and_never_lost(void **state)
{
	char err[512];
	struct smtp *s;
	struct sess a, b;
	long long dt;
	cJSON *j;

	(void)state;
	settle_all();
	/* A temporary failure (451 to the first DATA). */
	s = smtp_start(1);
	conf_write(s->port);
	org_new("nt-retry");
	user_new("nt-retry", "a@nt-retry.test", "admin", NULL, 0);
	sa_assign("nt-retry");
	login("nt-retry", "198.18.3.1", "a@nt-retry.test", &a);
	sa_read("nt-retry");
	deliver_expect("sent 0, failed 1");
	assert_int_equal(mail_count(s), 0);
	j = notes_get(&a);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(item0(j), "delivered_at")));
	cJSON_Delete(j);
	assert_int_equal(org_ll("nt-retry", "SELECT attempts FROM deliveries", NULL), 1);
	org_text("nt-retry", "SELECT last_error FROM deliveries", NULL, err, sizeof(err));
	assert_true(strlen(err) > 0);
	/* Back-off: 30 s after the first failure; not due before. */
	dt = next_in("nt-retry");
	if (dt < 25 || dt > 31)
		fail_msg("next attempt in %lld s after the first failure, expected 30", dt);
	deliver_expect("sent 0, failed 0");
	/* Due now: sent. */
	org_exec("nt-retry", "UPDATE deliveries SET next_attempt_at = 0");
	deliver_expect("sent 1, failed 0");
	assert_int_equal(mail_count(s), 1);
	j = notes_get(&a);
	assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(item0(j), "delivered_at")));
	cJSON_Delete(j);
	assert_int_equal(org_ll("nt-retry", "SELECT attempts FROM deliveries", NULL), 2);

	/* The server down entirely: failed, kept, retried later with a doubled wait; sent once it is back. */
	smtp_stop(s);
	org_new("nt-down");
	user_new("nt-down", "a@nt-down.test", "admin", NULL, 0);
	sa_assign("nt-down");
	login("nt-down", "198.18.3.2", "a@nt-down.test", &b);
	sa_read("nt-down");
	deliver_expect("sent 0, failed 1");
	dt = next_in("nt-down");
	if (dt < 25 || dt > 31)
		fail_msg("next attempt in %lld s after the first failure, expected 30", dt);
	org_exec("nt-down", "UPDATE deliveries SET next_attempt_at = 0");
	deliver_expect("sent 0, failed 1");
	dt = next_in("nt-down");
	if (dt < 55 || dt > 61)
		fail_msg("next attempt in %lld s after the second failure, expected 60 (doubling)", dt);
	/* Far along, the wait is capped at an hour. */
	org_exec("nt-down", "UPDATE deliveries SET next_attempt_at = 0, attempts = 10");
	deliver_expect("sent 0, failed 1");
	dt = next_in("nt-down");
	if (dt < 3595 || dt > 3601)
		fail_msg("next attempt in %lld s after many failures, expected the 1 h cap", dt);
	assert_int_equal(org_ll("nt-down", "SELECT count(*) FROM deliveries WHERE delivered_at IS NULL", NULL), 1);
	j = notes_get(&b);
	assert_int_equal(n_items(j), 1);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(item0(j), "delivered_at")));
	cJSON_Delete(j);
	/* Back up (another server): the pending mail goes out. */
	s = smtp_start(0);
	conf_write(s->port);
	org_exec("nt-down", "UPDATE deliveries SET next_attempt_at = 0");
	deliver_expect("sent 1, failed 0");
	assert_int_equal(mail_count(s), 1);
	j = notes_get(&b);
	assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(item0(j), "delivered_at")));
	cJSON_Delete(j);
	smtp_stop(s);
}

/* --- 4. a crash between the send and the mark ------------------------ */

/*
 * The chosen behaviour (outbox.h): at least once, never lost. A crash after
 * the server accepted a mail but before the delivery was marked leaves the
 * row as it was (delivered_at NULL, due); the next pass sends the mail again
 * with the SAME Message-ID, so a receiver (or the admin's mail client) can
 * drop the duplicate. The crash is simulated by putting the row back into
 * that state after a successful pass.
 */
static void
a_crash_before_the_mark_resends_with_the_same_message_id(void **state)
{
	char mid1[320], mid2[320];
	struct smtp *s;
	size_t len;
	char *eml, *e1, *e2;

	(void)state;
	settle_all();
	s = smtp_start(0);
	conf_write(s->port);
	org_new("nt-crash");
	user_new("nt-crash", "a@nt-crash.test", "admin", NULL, 0);
	sa_assign("nt-crash");
	sa_read("nt-crash");
	deliver_expect("sent 1, failed 0");
	assert_int_equal(mail_count(s), 1);
	org_exec("nt-crash", "UPDATE deliveries SET delivered_at = NULL, next_attempt_at = 0");
	deliver_expect("sent 1, failed 0");
	assert_int_equal(mail_count(s), 2);
	eml = h_slurp(mail_path(s, 1, "eml"), &len);
	assert_non_null(eml);
	assert_int_equal(mail_header(eml, "Message-ID", mid1, sizeof(mid1)), 0);
	free(eml);
	eml = h_slurp(mail_path(s, 2, "eml"), &len);
	assert_non_null(eml);
	assert_int_equal(mail_header(eml, "Message-ID", mid2, sizeof(mid2)), 0);
	free(eml);
	assert_string_equal(mid1, mid2);
	e1 = h_slurp(mail_path(s, 1, "json"), &len);
	e2 = h_slurp(mail_path(s, 2, "json"), &len);
	assert_non_null(e1);
	assert_non_null(e2);
	assert_string_equal(e1, e2); /* the same envelope */
	free(e1);
	free(e2);
	/* Marked now: not a third time. */
	deliver_expect("sent 0, failed 0");
	assert_int_equal(mail_count(s), 2);
	smtp_stop(s);
}

/* --- 5. break-glass and lockouts ---------------------------------- */

static void
break_glass_and_lockouts_always_notify(void **state)
{
	struct sess a, l;
	struct h_resp r;
	const cJSON *it;
	cJSON *j;
	int i;

	(void)state;
	/* Break-glass to an org that is not assigned and asked not to be told of access. */
	org_new("nt-glass");
	user_new("nt-glass", "a@nt-glass.test", "admin", NULL, 0);
	notify_off("nt-glass");
	login("nt-glass", "198.18.5.1", "a@nt-glass.test", &a);
	raw("POST", "/api/v1/sysadmin/break-glass", SA_IP, F("immidb_sysadmin=%s", sa.token), sa.csrf, NULL,
	    "{\"org\":\"nt-glass\",\"reason\":\"Incident 99: the org's admins cannot log in\"}", &r);
	j = wjson(&r, 200);
	(void)jstr(j, "expires_at");
	cJSON_Delete(j);
	j = notes_get(&a);
	assert_int_equal(n_items(j), 1);
	it = item0(j);
	assert_string_equal(jstr(it, "kind"), "break_glass");
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(it, "delivered_at")));
	cJSON_Delete(j);
	assert_int_equal(org_ll("nt-glass", "SELECT count(*) FROM deliveries", NULL), 1);
	/* The access under the grant: logged, no sysadmin_access notice (the org said off). */
	sa_read("nt-glass");
	j = notes_get(&a);
	assert_int_equal(n_items(j), 1);
	assert_int_equal(n_kind(j, "break_glass"), 1);
	cJSON_Delete(j);

	/* The grant ends (here: its time is moved into the past in the registry):
	 * the deliverer queues a second notice, once. */
	{
		struct idb_master *mk = NULL;
		struct idb_conf conf;
		char err[512], out[4096];
		sqlite3 *reg = NULL;

		assert_int_equal(idb_conf_open(&conf, env.conf, NULL, err, sizeof(err)), IDB_OK);
		assert_int_equal(idb_key_master_load(conf.master_key_file, &mk), IDB_OK);
		assert_int_equal(idb_reg_open(&conf, mk, 0, &reg), IDB_OK);
		assert_int_equal(idb_db_exec(reg, "UPDATE sysadmin_grants SET expires_at = '2000-01-01T00:00:00.000Z'"
		                                  " WHERE kind = 'break_glass'"),
		                 IDB_OK);
		idb_db_close(reg);
		idb_key_master_free(mk);
		assert_int_equal(deliver_once(out, sizeof(out)), 0);
		assert_int_equal(deliver_once(out, sizeof(out)), 0);
	}
	j = notes_get(&a);
	assert_int_equal(n_kind(j, "break_glass"), 2);
	{
		const cJSON *n;
		int ended = 0;

		cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(j, "items")) if (
		    strcmp(jstr(n, "summary"), "Break-glass access ended") == 0) ended++;
		assert_int_equal(ended, 1);
	}
	cJSON_Delete(j);

	/* Five failed logins for one email: a lockout, and its notice. */
	org_new("nt-lock");
	user_new("nt-lock", "a@nt-lock.test", "admin", NULL, 0);
	user_new("nt-lock", "u@nt-lock.test", "member", NULL, 0);
	login("nt-lock", "198.18.5.2", "a@nt-lock.test", &l);
	for (i = 0; i < 4; i++) {
		raw("POST", "/api/v1/orgs/nt-lock/session", F("198.18.5.%d", 10 + i), NULL, NULL, NULL,
		    "{\"email\":\"u@nt-lock.test\",\"password\":\"wrong password of length\"}", &r);
		werr(&r, 401, "invalid_credentials");
	}
	j = notes_get(&l);
	assert_int_equal(n_items(j), 0);
	cJSON_Delete(j);
	raw("POST", "/api/v1/orgs/nt-lock/session", "198.18.5.14", NULL, NULL, NULL,
	    "{\"email\":\"u@nt-lock.test\",\"password\":\"wrong password of length\"}", &r);
	if (r.status != 401 && r.status != 429)
		fail_msg("the fifth failure answered %ld: %s", r.status, r.body);
	h_resp_free(&r);
	j = notes_get(&l);
	assert_int_equal(n_items(j), 1);
	assert_int_equal(n_kind(j, "lockout"), 1);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(item0(j), "delivered_at")));
	cJSON_Delete(j);
	assert_int_equal(org_ll("nt-lock", "SELECT count(*) FROM deliveries WHERE recipient = 'a@nt-lock.test'", NULL), 1);
	assert_int_equal(org_ll("nt-lock", "SELECT count(*) FROM deliveries", NULL), 1);
}

/* --- 6. who may read them ------------------------------------------- */

static void
only_the_orgs_admins_read_its_notifications(void **state)
{
	struct sess a, m, ro, other;
	struct h_resp r;
	cJSON *j;

	(void)state;
	org_new("nt-roles");
	org_new("nt-other");
	user_new("nt-roles", "a@nt-roles.test", "admin", NULL, 0);
	user_new("nt-roles", "m@nt-roles.test", "member", NULL, 0);
	user_new("nt-roles", "r@nt-roles.test", "readonly", NULL, 0);
	user_new("nt-other", "a@nt-other.test", "admin", NULL, 0);
	login("nt-roles", "198.18.6.1", "a@nt-roles.test", &a);
	login("nt-roles", "198.18.6.2", "m@nt-roles.test", &m);
	login("nt-roles", "198.18.6.3", "r@nt-roles.test", &ro);
	login("nt-other", "198.18.6.4", "a@nt-other.test", &other);
	j = notes_get(&a);
	cJSON_Delete(j);
	ureq(&m, "GET", "/notifications", NULL, &r);
	werr(&r, 403, "forbidden");
	ureq(&ro, "GET", "/notifications", NULL, &r);
	werr(&r, 403, "forbidden");
	/* Another org's admin session, on this org's path. */
	snprintf(other.slug, sizeof(other.slug), "%s", "nt-roles");
	ureq(&other, "GET", "/notifications", NULL, &r);
	werr(&r, 404, "not_found");
	/* No session at all. */
	raw("GET", "/api/v1/orgs/nt-roles/notifications", "198.18.6.5", NULL, NULL, NULL, NULL, &r);
	werr(&r, 401, "unauthenticated");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(sysadmin_access_queues_one_notice_an_hour_in_the_log_transaction),
	    cmocka_unit_test(delivery_sends_one_complete_mail_per_active_admin_once),
	    cmocka_unit_test(mails_end_every_line_with_crlf),
	    cmocka_unit_test(failures_are_retried_with_back_off_and_never_lost),
	    cmocka_unit_test(a_crash_before_the_mark_resends_with_the_same_message_id),
	    cmocka_unit_test(break_glass_and_lockouts_always_notify),
	    cmocka_unit_test(only_the_orgs_admins_read_its_notifications),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
