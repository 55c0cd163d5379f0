/* SPDX-License-Identifier: ISC */
/*
 * Sysadmins, end to end through nginx (product.md promises 2 and 4): accounts
 * made with the real immidb-admin (TOTP mandatory, checked against oathtool),
 * log in only from the sysadmin addresses, org access only with an active
 * grant and an X-Access-Reason (each request a sysadmin.access entry),
 * org admins listing and withdrawing sysadmins, break-glass, and server-side
 * access with `immidb-admin access -- sql` on a read-only connection.
 *
 * The server trusts loopback as a proxy, so each request speaks for a client
 * address through X-Forwarded-For. The configuration gets
 * sysadmin_ip_allowlist = 198.18.9.0/24, 2001:db8:9::/48: 198.18.9.N and
 * 2001:db8:9::N are sysadmin addresses, 198.18.10.N, 2001:db8:a::N and
 * loopback are not. nginx's own allow/deny for /api/v1/sysadmin/ admits
 * loopback in this development configuration, so the application's check is
 * what is tested. Each test has its own organization and its own sysadmins
 * (a TOTP step can be used once per sysadmin).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "checks.h"
#include "client.h"
#include "harness.h"
#include "api/api.h"
#include "store/db.h"
#include "store/registry.h"

#define WORKERS 2
#define SA_PW "sysadmin passphrase of some length"
#define SA_NET4 "198.18.9.0/24"
#define SA_NET6 "2001:db8:9::/48"
#define BREAK_GLASS_S (4 * 60 * 60)

struct h_env env;

/* A sysadmin: the account, and (after sa_login) its session. */
struct sa {
	char id[64];
	char email[128];
	char pw[128];
	char secret[64];
	char ip[64];     /* where it speaks from */
	char token[128]; /* immidb_sysadmin cookie */
	char csrf[256];
};

/* --- small helpers ------------------------------------------------- */

/* n copies of c in a ring buffer (n < F_LEN). */
static const char *
rep(char c, size_t n)
{
	static char buf[4][F_LEN];
	static unsigned slot;
	char *p = buf[slot++ % 4];

	assert_true(n < F_LEN);
	memset(p, c, n);
	p[n] = '\0';
	return p;
}

static int
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* RFC 3339 UTC with Z (optional fraction) to unix seconds; -1 if malformed. */
static time_t
rfc3339(const char *s)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0;
	const char *p;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
		return -1;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (strcmp(p, "Z") != 0)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	return timegm(&tm);
}

/* --- immidb-admin -------------------------------------------------- */

/* The value after "prefix" on a line of out (up to the end of the line), or -1. */
static int
line_value(const char *out, const char *prefix, char *val, size_t len)
{
	const char *p = out;
	size_t n;

	while (p != NULL && *p != '\0') {
		if (starts(p, prefix)) {
			p += strlen(prefix);
			n = strcspn(p, "\r\n");
			if (n >= len)
				return -1;
			memcpy(val, p, n);
			val[n] = '\0';
			return 0;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return -1;
}

/*
 * immidb-admin sysadmin add; with generated = 0 the password comes on stdin.
 * Checks the output: the id, the password (only if generated), the TOTP
 * secret (160 bits in base32) and the otpauth URI with it.
 */
static void
sa_new(const char *email, int generated, struct sa *a)
{
	char out[4096], err[4096], uri[1024];
	const char *p;
	int rc;

	memset(a, 0, sizeof(*a));
	if (generated)
		rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "sysadmin", "add", "--email", email, "--name",
		             F("Ops %s", email), NULL);
	else
		rc = h_admin(&env, SA_PW "\n", out, sizeof(out), err, sizeof(err), "sysadmin", "add", "--email", email,
		             "--name", F("Ops %s", email), "--password-stdin", NULL);
	if (rc != 0)
		fail_msg("sysadmin add %s: %d %s", email, rc, err);
	snprintf(a->email, sizeof(a->email), "%s", email);
	/* First line: the id. */
	p = out;
	assert_true(strcspn(p, "\r\n") > 0 && strcspn(p, "\r\n") < sizeof(a->id));
	memcpy(a->id, p, strcspn(p, "\r\n"));
	a->id[strcspn(p, "\r\n")] = '\0';
	assert_null(strchr(a->id, ' '));
	if (generated) {
		if (line_value(out, "password: ", a->pw, sizeof(a->pw)) != 0)
			fail_msg("no generated password in: %s", out);
		assert_true(strlen(a->pw) >= 12);
	} else {
		assert_null(strstr(out, "password:"));
		assert_null(strstr(out, SA_PW));
		snprintf(a->pw, sizeof(a->pw), "%s", SA_PW);
	}
	if (line_value(out, "totp secret: ", a->secret, sizeof(a->secret)) != 0)
		fail_msg("no totp secret in: %s", out);
	assert_int_equal(strlen(a->secret), 32);
	for (p = a->secret; *p; p++)
		assert_true((*p >= 'A' && *p <= 'Z') || (*p >= '2' && *p <= '7'));
	if (line_value(out, "otpauth://totp/", uri, sizeof(uri)) != 0)
		fail_msg("no otpauth URI in: %s", out);
	assert_non_null(strstr(uri, F("secret=%s", a->secret)));
	assert_non_null(strstr(uri, "issuer=ImmiDB"));
	assert_non_null(strstr(uri, "digits=6"));
	assert_non_null(strstr(uri, "period=30"));
	/* The secret is shown once, on stdout; nothing on stderr. */
	assert_null(strstr(err, a->secret));
}

/* immidb-admin sysadmin assign (expires may be NULL); the exit status. */
static int
sa_assign(const char *email, const char *slug, const char *expires)
{
	char out[4096], err[4096];

	if (expires != NULL)
		return h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "sysadmin", "assign", "--email", email, "--org",
		               slug, "--expires", expires, NULL);
	return h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "sysadmin", "assign", "--email", email, "--org",
	               slug, NULL);
}

static int
sa_unassign(const char *email, const char *slug)
{
	char out[4096], err[4096];

	return h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "sysadmin", "unassign", "--email", email, "--org",
	               slug, NULL);
}

/* A refusal of immidb-admin: exit 1 (failure) or 2 (usage), an error on stderr, no sanitizer report. */
static void
refused(int rc, const char *err)
{
	if (rc != 1 && rc != 2)
		fail_msg("expected exit 1 or 2, got %d: %s", rc, err);
	assert_true(strlen(err) > 0);
	assert_null(strstr(err, "Sanitizer"));
}

/* --- sysadmin sessions and requests -------------------------------- */

/* POST /api/v1/sysadmin/session from ip with the given body. */
static void
sa_post_login(const char *ip, const char *body, struct h_resp *r)
{
	raw_with("POST", "/api/v1/sysadmin/session", ip, NULL, NULL, NULL, body, r);
}

static const char *
sa_body(const char *email, const char *pw, const char *code)
{
	return F("{\"email\":\"%s\",\"password\":\"%s\",\"code\":\"%s\"}", email, pw, code);
}

/*
 * Takes the session from a 200 login answer: the cookie (with its
 * attributes checked), the CSRF token and the sysadmin object.
 */
static void
sa_take(struct sa *a, struct h_resp *r)
{
	char sc[512], attr[64];
	int path = 0, httponly = 0, samesite = 0;
	const char *p, *e;
	const cJSON *s;
	size_t n;
	cJSON *j;

	want(r, 200);
	if (h_header(r, "Set-Cookie", sc, sizeof(sc)) != 0)
		fail_msg("sysadmin login answered 200 without a cookie");
	if (!starts(sc, "immidb_sysadmin="))
		fail_msg("unexpected Set-Cookie: %s", sc);
	p = sc + strlen("immidb_sysadmin=");
	n = strcspn(p, ";");
	assert_true(n >= 43 && n < sizeof(a->token));
	memcpy(a->token, p, n);
	a->token[n] = '\0';
	for (p = a->token; *p; p++)
		assert_true(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.');
	/* The attributes, in any order. */
	for (p = strchr(sc, ';'); p != NULL; p = e) {
		p++;
		while (*p == ' ')
			p++;
		e = strchr(p, ';');
		n = e ? (size_t)(e - p) : strlen(p);
		if (n >= sizeof(attr))
			n = sizeof(attr) - 1;
		memcpy(attr, p, n);
		attr[n] = '\0';
		if (strcmp(attr, "Path=/api/") == 0)
			path = 1;
		else if (strcasecmp(attr, "HttpOnly") == 0)
			httponly = 1;
		else if (strcasecmp(attr, "SameSite=Strict") == 0)
			samesite = 1;
		else if (strcasecmp(attr, "Secure") != 0)
			fail_msg("unexpected cookie attribute '%s' in %s", attr, sc);
	}
	if (!path || !httponly || !samesite)
		fail_msg("cookie lacks Path=/api/, HttpOnly or SameSite=Strict: %s", sc);
	j = jparse_text(r->body, r->status);
	s = jobj(j, "sysadmin");
	assert_string_equal(jstr(s, "id"), a->id);
	assert_string_equal(jstr(s, "email"), a->email);
	assert_string_equal(jstr(s, "name"), F("Ops %s", a->email));
	assert_int_equal(cJSON_GetArraySize(s), 3); /* nothing else: no hash, no secret */
	snprintf(a->csrf, sizeof(a->csrf), "%s", jstr(j, "csrf_token"));
	assert_true(strlen(a->csrf) >= 20);
	assert_null(strstr(r->body, a->token));
	cJSON_Delete(j);
	h_resp_free(r);
}

/* A full sysadmin login from ip with the code of the current step. */
static void
sa_login(struct sa *a, const char *ip)
{
	char code[16];
	struct h_resp r;

	totp(a->secret, 0, code);
	snprintf(a->ip, sizeof(a->ip), "%s", ip);
	sa_post_login(ip, sa_body(a->email, a->pw, code), &r);
	sa_take(a, &r);
}

static const char *
sa_cookie(const struct sa *a)
{
	return F("immidb_sysadmin=%s", a->token);
}

/* A request of sysadmin a to /api/v1/orgs/<slug><sub> from a->ip with a reason (NULL: none) and, on all but GET, its CSRF token. */
static void
sa_req(const struct sa *a, const char *method, const char *slug, const char *sub, const char *reason, const char *body,
       struct h_resp *r)
{
	raw_with(method, F("/api/v1/orgs/%s%s", slug, sub), a->ip, sa_cookie(a), reason,
	         strcmp(method, "GET") ? a->csrf : NULL, body, r);
}

static cJSON *
sa_ok(const struct sa *a, const char *method, const char *slug, const char *sub, const char *reason, const char *body,
      long status)
{
	struct h_resp r;

	sa_req(a, method, slug, sub, reason, body, &r);
	return wjson(&r, status);
}

static void
sa_err(const struct sa *a, const char *method, const char *slug, const char *sub, const char *reason, const char *body,
       long status, const char *code)
{
	struct h_resp r;

	sa_req(a, method, slug, sub, reason, body, &r);
	werr(&r, status, code);
}

/* POST /api/v1/sysadmin/break-glass as a (csrf NULL: no header), from ip. */
static void
glass(const struct sa *a, const char *ip, const char *csrf, const char *body, struct h_resp *r)
{
	raw_with("POST", "/api/v1/sysadmin/break-glass", ip, a ? sa_cookie(a) : NULL, NULL, csrf, body, r);
}

/* --- the access log, as the org admin reads it ---------------------- */

/* The entries with this action, newest first (a parsed list body; delete it). */
static cJSON *
log_of(const struct sess *admin, const char *action)
{
	return sok(admin, "GET", F("/access-log?action=%s&limit=200", action), NULL, 200);
}

static int
log_count(const struct sess *admin, const char *action)
{
	cJSON *j = log_of(admin, action);
	int n = cJSON_GetArraySize(jarr(j, "items"));

	cJSON_Delete(j);
	return n;
}

/* The entry last returned by log_last / log_find: kept here (freed on the next call and at
 * teardown) so that a failing check leaks nothing. */
static cJSON *held;

static cJSON *
hold(cJSON *e)
{
	cJSON_Delete(held);
	held = e;
	return e;
}

/* The newest entry with this action (held; do not delete). Fails if there is none. */
static cJSON *
log_last(const struct sess *admin, const char *action)
{
	cJSON *j = log_of(admin, action), *e;
	const cJSON *items = jarr(j, "items");

	if (cJSON_GetArraySize(items) < 1)
		fail_msg("no %s entry in the access log", action);
	e = cJSON_Duplicate(cJSON_GetArrayItem(items, 0), 1);
	cJSON_Delete(j);
	return hold(e);
}

/* The newest entry with this action and outcome (held; do not delete). Fails if there is none. */
static cJSON *
log_find(const struct sess *admin, const char *action, const char *outcome)
{
	cJSON *j = log_of(admin, action), *e = NULL;
	const cJSON *it;

	cJSON_ArrayForEach(it, jarr(j, "items"))
	{
		if (e == NULL && strcmp(jstr(it, "outcome"), outcome) == 0)
			e = cJSON_Duplicate(it, 1);
	}
	cJSON_Delete(j);
	if (e == NULL)
		fail_msg("no %s entry with outcome %s in the access log", action, outcome);
	return hold(e);
}

/* Checks an entry: the actor (kind, id, email), via, reason, outcome, and that detail starts with detail_prefix. */
static void
entry_is(const cJSON *e, const char *kind, const char *id, const char *email, const char *via, const char *reason,
         const char *outcome, const char *detail_prefix)
{
	const cJSON *actor = jobj(e, "actor");
	char *s = cJSON_PrintUnformatted(e);

	static char shown[2048];

	snprintf(shown, sizeof(shown), "%s", s ? s : "?");
	free(s);
	if (strcmp(jstr(actor, "kind"), kind) != 0 || strcmp(jstr(actor, "id"), id) != 0 ||
	    strcmp(jstr(actor, "email"), email) != 0 || strcmp(jstr(e, "via"), via) != 0 ||
	    strcmp(jstr(e, "reason"), reason) != 0 || strcmp(jstr(e, "outcome"), outcome) != 0 ||
	    !starts(jstr(e, "detail"), detail_prefix))
		fail_msg("entry is not {%s %s %s via %s reason '%.40s' %s detail '%s...'}: %s", kind, id, email, via, reason,
		         outcome, detail_prefix, shown);
}

/* GET .../access-log/verify → ok: true. */
static void
verify_ok(const struct sess *admin)
{
	cJSON *j = sok(admin, "GET", "/access-log/verify", NULL, 200);

	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok")))
		fail_msg("the access log of %s does not verify", admin->slug);
	assert_true(jint(j, "size") > 0);
	cJSON_Delete(j);
}

/* The number of items of a list answer of the org admin. */
static int
count_items(const struct sess *admin, const char *sub)
{
	cJSON *j = sok(admin, "GET", sub, NULL, 200);
	int n = cJSON_GetArraySize(jarr(j, "items"));

	cJSON_Delete(j);
	return n;
}

/* --- the registry, from the test's side ---------------------------- */

static sqlite3 *
reg_open(struct idb_master **m)
{
	struct idb_conf conf;
	char err[512];
	sqlite3 *reg = NULL;

	assert_int_equal(idb_conf_open(&conf, env.conf, NULL, err, sizeof(err)), IDB_OK);
	assert_int_equal(idb_key_master_load(conf.master_key_file, m), IDB_OK);
	assert_int_equal(idb_reg_open(&conf, *m, 0, &reg), IDB_OK);
	return reg;
}

static void
reg_close(sqlite3 *reg, struct idb_master *m)
{
	idb_db_close(reg);
	idb_key_master_free(m);
}

/* base32 (RFC 4648, no padding) to bytes; the length. */
static size_t
b32_decode(const char *s, unsigned char *out, size_t max)
{
	unsigned long long acc = 0;
	size_t n = 0;
	int bits = 0, v;

	for (; *s; s++) {
		v = *s >= 'A' && *s <= 'Z' ? *s - 'A' : *s >= '2' && *s <= '7' ? *s - '2' + 26 : -1;
		assert_true(v >= 0);
		acc = (acc << 5) | (unsigned)v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			assert_true(n < max);
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	return n;
}

/* --- tests: log in ------------------------------------------------- */

static void
sysadmin_login_needs_a_sysadmin_address_password_and_a_fresh_code(void **state)
{
	char code[16], next[16], prev[16], wrong[16], body401[4][1024], ign[16];
	unsigned char raw20[32], h[crypto_hash_sha256_BYTES];
	struct idb_master *m = NULL;
	sqlite3_stmt *st = NULL;
	struct h_resp r;
	struct sa a, b;
	sqlite3 *reg;
	size_t n;
	int i;

	(void)state;
	sa_new("ops1@platform.test", 1, &a);
	/* A second account, to show the secrets differ. */
	sa_new("ops1b@platform.test", 0, &b);
	assert_string_not_equal(a.secret, b.secret);
	assert_string_not_equal(a.id, b.id);
	/* -bad: the same email again (any case) is refused. */
	{
		char out[2048], err[2048];

		assert_int_equal(h_admin(&env, SA_PW "\n", out, sizeof(out), err, sizeof(err), "sysadmin", "add", "--email",
		                             "OPS1@platform.test", "--name", "Dup", "--password-stdin", NULL),
		                     1);
		assert_int_equal(h_admin(&env, SA_PW "\n", out, sizeof(out), err, sizeof(err), "sysadmin", "add", "--email",
		                             "not-an-email", "--name", "Bad", "--password-stdin", NULL),
		                     1);
		assert_int_equal(h_admin(&env, "short\n", out, sizeof(out), err, sizeof(err), "sysadmin", "add", "--email",
		                             "ops1c@platform.test", "--name", "Short", "--password-stdin", NULL),
		                     1);
	}

	/* The registry keeps an Argon2id hash and the secret encrypted, never in clear. */
	reg = reg_open(&m);
	assert_int_equal(sqlite3_prepare_v2(reg, "SELECT password_hash, totp_secret FROM sysadmins WHERE id = ?1", -1, &st,
	                                    NULL),
	                 SQLITE_OK);
	sqlite3_bind_text(st, 1, a.id, -1, SQLITE_TRANSIENT);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_true(starts((const char *)sqlite3_column_text(st, 0), "$argon2id$"));
	n = b32_decode(a.secret, raw20, sizeof(raw20));
	assert_int_equal(n, 20);
	assert_true(sqlite3_column_bytes(st, 1) > 20);
	assert_false(h_contains(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), a.secret));
	for (i = 0; i + 20 <= sqlite3_column_bytes(st, 1); i++)
		assert_true(memcmp((const unsigned char *)sqlite3_column_blob(st, 1) + i, raw20, 20) != 0);
	sqlite3_finalize(st);
	reg_close(reg, m);

	/* -bad: from addresses outside the sysadmin allow-list, even with everything right: 403. */
	totp(a.secret, 0, code);
	sa_post_login("198.18.10.5", sa_body(a.email, a.pw, code), &r);
	assert_int_not_equal(h_header(&r, "Set-Cookie", ign, sizeof(ign)), 0);
	werr(&r, 403, "ip_not_allowed");
	sa_post_login("2001:db8:a::5", sa_body(a.email, a.pw, code), &r);
	werr(&r, 403, "ip_not_allowed");
	sa_post_login(NULL, sa_body(a.email, a.pw, code), &r); /* loopback itself */
	werr(&r, 403, "ip_not_allowed");
	/* ... and an org's login is not a way round: sysadmins are not org users. */

	/* -bad: unknown email, wrong password, wrong code: 401 invalid_credentials, the same body. */
	totp_wrong(a.secret, wrong);
	sa_post_login("198.18.9.5", sa_body("nobody@platform.test", a.pw, code), &r);
	assert_error(&r, 401, "invalid_credentials");
	snprintf(body401[0], sizeof(body401[0]), "%s", r.body);
	h_resp_free(&r);
	sa_post_login("198.18.9.5", sa_body(a.email, "wrong password entirely", code), &r);
	assert_error(&r, 401, "invalid_credentials");
	assert_int_not_equal(h_header(&r, "Set-Cookie", ign, sizeof(ign)), 0);
	snprintf(body401[1], sizeof(body401[1]), "%s", r.body);
	h_resp_free(&r);
	sa_post_login("198.18.9.5", sa_body(a.email, a.pw, wrong), &r);
	assert_error(&r, 401, "invalid_credentials");
	assert_int_not_equal(h_header(&r, "Set-Cookie", ign, sizeof(ign)), 0);
	snprintf(body401[2], sizeof(body401[2]), "%s", r.body);
	h_resp_free(&r);
	/* The password of another sysadmin with this one's code. */
	sa_post_login("198.18.9.5", sa_body(a.email, b.pw, code), &r);
	werr(&r, 401, "invalid_credentials");
	assert_string_equal(body401[0], body401[1]);
	assert_string_equal(body401[1], body401[2]);

	/* -bad bodies: missing code 422 (field code), wrong types, unknown fields, not JSON. */
	sa_post_login("198.18.9.5", F("{\"email\":\"%s\",\"password\":\"%s\"}", a.email, a.pw), &r);
	wfield(&r, "code");
	sa_post_login("198.18.9.5", F("{\"email\":\"%s\",\"password\":\"%s\",\"code\":\"\"}", a.email, a.pw), &r);
	wfield(&r, "code");
	sa_post_login("198.18.9.5", F("{\"email\":\"%s\",\"password\":\"%s\",\"code\":123456}", a.email, a.pw), &r);
	wfield(&r, "code");
	sa_post_login("198.18.9.5", F("{\"email\":\"%s\",\"code\":\"%s\"}", a.email, code), &r);
	wfield(&r, "password");
	sa_post_login("198.18.9.5", F("{\"email\":\"%s\",\"password\":\"%s\",\"code\":\"%s\",\"role\":\"x\"}", a.email,
	                             a.pw, code),
	              &r);
	wfield(&r, "role");
	sa_post_login("198.18.9.5", "{\"email\":", &r);
	werr(&r, 400, "invalid_json");

	/* The right three from a sysadmin address (IPv4): 200, the session, its cookie. */
	sa_post_login("198.18.9.5", sa_body(a.email, a.pw, code), &r);
	snprintf(a.ip, sizeof(a.ip), "198.18.9.5");
	sa_take(&a, &r);

	/* The server keeps only the SHA-256 of the token. */
	reg = reg_open(&m);
	crypto_hash_sha256(h, (const unsigned char *)a.token, strlen(a.token));
	assert_int_equal(sqlite3_prepare_v2(reg, "SELECT count(*) FROM sysadmin_sessions WHERE token_hash = ?1 AND sysadmin_id = ?2",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	sqlite3_bind_blob(st, 1, h, sizeof(h), SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, a.id, -1, SQLITE_TRANSIENT);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(reg, "SELECT count(*) FROM sysadmin_sessions WHERE CAST(token_hash AS TEXT) = ?1"
	                                         " OR csrf_token = ?1",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	sqlite3_bind_text(st, 1, a.token, -1, SQLITE_TRANSIENT);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	reg_close(reg, m);

	/* -bad: the same code again (the same step twice) is 401, the same body; so is the step before. */
	sa_post_login("198.18.9.5", sa_body(a.email, a.pw, code), &r);
	assert_error(&r, 401, "invalid_credentials");
	snprintf(body401[3], sizeof(body401[3]), "%s", r.body);
	assert_string_equal(body401[3], body401[0]);
	h_resp_free(&r);
	totp(a.secret, -1, prev);
	if (strcmp(prev, code) != 0) {
		sa_post_login("198.18.9.6", sa_body(a.email, a.pw, prev), &r);
		werr(&r, 401, "invalid_credentials");
	}
	/* A later step from a sysadmin IPv6 address logs in again. */
	totp(a.secret, 1, next);
	sa_post_login("2001:db8:9::5", sa_body(a.email, a.pw, next), &r);
	snprintf(a.ip, sizeof(a.ip), "2001:db8:9::5");
	sa_take(&a, &r);
	/* The password set on stdin works for the other account (its first code). */
	sa_login(&b, "198.18.9.7");
}

/* --- tests: org access --------------------------------------------- */

static void
assigned_sysadmin_works_like_an_admin_with_a_reason_and_every_request_is_logged(void **state)
{
	const char *why = "ticket 4711: client cannot log in";
	char cid[64], cid2[64], notfound_unassigned[1024];
	struct sess admin, other;
	const cJSON *it, *ch;
	struct h_resp r;
	struct sa a;
	cJSON *j, *e;
	int n0, found_create = 0, found_update = 0;

	(void)state;
	org_with_admin("sa-org", "198.18.20.1", &admin);
	org_with_admin("sa-other", "198.18.20.2", &other);
	sa_new("ops2@platform.test", 0, &a);
	assert_int_equal(sa_assign(a.email, "sa-org", NULL), 0);
	sa_login(&a, "198.18.9.21");

	/* Reads and lists like an admin, with a reason. */
	j = sa_ok(&a, "GET", "sa-org", "/clients", why, NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 0);
	cJSON_Delete(j);
	e = log_last(&admin, "sysadmin.access");
	entry_is(e, "sysadmin", a.id, a.email, "app", why, "ok", "record.list");
	assert_string_equal(jstr(e, "ip"), "198.18.9.21");
	assert_string_equal(jstr(e, "target"), "clients");
	cJSON_Delete(sa_ok(&a, "GET", "sa-org", "/users", why, NULL, 200));
	cJSON_Delete(sa_ok(&a, "GET", "sa-org", "/settings", why, NULL, 200));

	/* -bad: no reason, 4 characters, 501 characters: 403 reason_required. 5 and 500 are fine. */
	sa_err(&a, "GET", "sa-org", "/clients", NULL, NULL, 403, "reason_required");
	sa_err(&a, "GET", "sa-org", "/clients", "abcd", NULL, 403, "reason_required");
	sa_err(&a, "GET", "sa-org", "/clients", rep('r', 501), NULL, 403, "reason_required");
	sa_err(&a, "GET", "sa-org", "/clients", "", NULL, 403, "reason_required");
	/* Characters, not bytes: four two-byte characters are still too short. */
	sa_err(&a, "GET", "sa-org", "/clients", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", NULL, 403, "reason_required");
	cJSON_Delete(sa_ok(&a, "GET", "sa-org", "/clients", "abcde", NULL, 200));
	cJSON_Delete(sa_ok(&a, "GET", "sa-org", "/clients", rep('r', 500), NULL, 200));
	e = log_last(&admin, "sysadmin.access");
	entry_is(e, "sysadmin", a.id, a.email, "app", rep('r', 500), "ok", "record.list");
	/* A refused request is an entry too (its naming the sysadmin: the next test). */
	n0 = log_count(&admin, "sysadmin.access");
	sa_err(&a, "GET", "sa-org", "/clients", "abcd", NULL, 403, "reason_required");
	assert_int_equal(log_count(&admin, "sysadmin.access"), n0 + 1);
	e = log_last(&admin, "sysadmin.access");
	assert_string_equal(jstr(e, "outcome"), "denied");
	assert_string_equal(jstr(e, "reason"), "abcd");
	assert_string_equal(jstr(jobj(e, "actor"), "kind"), "sysadmin");
	assert_true(starts(jstr(e, "detail"), "record.list"));

	/* -bad: an org they are not assigned to does not exist for them: 404, with or without a reason,
	 * the same answer as an org that does not exist at all. */
	sa_req(&a, "GET", "sa-other", "/clients", why, NULL, &r);
	assert_error(&r, 404, "not_found");
	snprintf(notfound_unassigned, sizeof(notfound_unassigned), "%s", r.body);
	h_resp_free(&r);
	sa_err(&a, "GET", "sa-other", "/clients", NULL, NULL, 404, "not_found");
	sa_err(&a, "GET", "sa-other", "/access-log", why, NULL, 404, "not_found");
	sa_err(&a, "POST", "sa-other", "/clients", why, "{\"family_name\":\"X\",\"given_name\":\"Y\"}", 404, "not_found");
	sa_req(&a, "GET", "sa-nowhere", "/clients", why, NULL, &r);
	assert_error(&r, 404, "not_found");
	assert_string_equal(r.body, notfound_unassigned);
	h_resp_free(&r);
	assert_int_equal(count_items(&other, "/clients"), 0);
	/* Nothing of the other org was reached: no successful sysadmin entry there. */
	{
		cJSON *l = log_of(&other, "sysadmin.access");

		cJSON_ArrayForEach(it, jarr(l, "items"))
		{
			assert_string_not_equal(jstr(it, "outcome"), "ok");
		}
		cJSON_Delete(l);
	}

	/* -bad: from an address outside the sysadmin allow-list, the session is refused: 403 ip_not_allowed. */
	raw_with("GET", "/api/v1/orgs/sa-org/clients", "198.18.10.5", sa_cookie(&a), why, NULL, NULL, &r);
	werr(&r, 403, "ip_not_allowed");
	raw_with("GET", "/api/v1/orgs/sa-org/clients", NULL, sa_cookie(&a), why, NULL, NULL, &r);
	werr(&r, 403, "ip_not_allowed");
	raw_with("GET", "/api/v1/orgs/sa-org/clients", "2001:db8:a::5", sa_cookie(&a), why, NULL, NULL, &r);
	werr(&r, 403, "ip_not_allowed");
	/* -bad: a made-up sysadmin cookie is no session. */
	raw_with("GET", "/api/v1/orgs/sa-org/clients", a.ip, F("immidb_sysadmin=%s", rep('A', 43)), why, NULL, NULL, &r);
	werr(&r, 401, "unauthenticated");
	/* -bad: the sysadmin cookie is not a user session (and vice versa). */
	raw_with("GET", "/api/v1/orgs/sa-org/clients", a.ip, F("immidb_session=%s", a.token), why, NULL, NULL, &r);
	assert_true(r.status == 401 || r.status == 404);
	h_resp_free(&r);

	/* -bad: writes without the sysadmin's CSRF token (none, wrong, the org admin's): 403 csrf_failed, nothing written. */
	raw_with("POST", "/api/v1/orgs/sa-org/clients", a.ip, sa_cookie(&a), why, NULL,
	         "{\"family_name\":\"Nocsrf\",\"given_name\":\"A\"}", &r);
	werr(&r, 403, "csrf_failed");
	raw_with("POST", "/api/v1/orgs/sa-org/clients", a.ip, sa_cookie(&a), why, rep('x', 43),
	         "{\"family_name\":\"Nocsrf\",\"given_name\":\"A\"}", &r);
	werr(&r, 403, "csrf_failed");
	raw_with("POST", "/api/v1/orgs/sa-org/clients", a.ip, sa_cookie(&a), why, admin.csrf,
	         "{\"family_name\":\"Nocsrf\",\"given_name\":\"A\"}", &r);
	werr(&r, 403, "csrf_failed");
	/* -bad: a write with the token but without a reason. */
	raw_with("POST", "/api/v1/orgs/sa-org/clients", a.ip, sa_cookie(&a), NULL, a.csrf,
	         "{\"family_name\":\"Noreason\",\"given_name\":\"A\"}", &r);
	werr(&r, 403, "reason_required");
	assert_int_equal(count_items(&admin, "/clients"), 0);

	/* With the token and a reason: created, updated, revealed like an admin would. */
	j = sa_ok(&a, "POST", "sa-org", "/clients", why,
	          "{\"family_name\":\"Sysmade\",\"given_name\":\"Ana\",\"a_number\":\"A123456789\"}", 201);
	snprintf(cid, sizeof(cid), "%s", jstr(j, "id"));
	cJSON_Delete(j);
	e = log_last(&admin, "sysadmin.access");
	entry_is(e, "sysadmin", a.id, a.email, "app", why, "ok", "record.create");
	j = sa_ok(&a, "PATCH", "sa-org", F("/clients/%s", cid), why, "{\"version\":1,\"notes\":\"checked by ops\"}", 200);
	assert_int_equal(jint(j, "version"), 2);
	cJSON_Delete(j);
	j = sa_ok(&a, "POST", "sa-org", F("/clients/%s/reveal", cid), why, "{\"field\":\"a_number\"}", 200);
	assert_string_equal(jstr(j, "value"), "A123456789");
	cJSON_Delete(j);
	e = log_last(&admin, "sysadmin.access");
	entry_is(e, "sysadmin", a.id, a.email, "app", why, "ok", "record.reveal");
	/* The org admin sees the record and who made it: change-log actor kind sysadmin. */
	j = sok(&admin, "GET", F("/clients/%s", cid), NULL, 200);
	assert_string_equal(jstr(j, "notes"), "checked by ops");
	cJSON_Delete(j);
	j = sok(&admin, "GET", F("/changes?entity=clients&entity_id=%s", cid), NULL, 200);
	cJSON_ArrayForEach(it, jarr(j, "items"))
	{
		ch = jobj(it, "actor");
		assert_string_equal(jstr(ch, "kind"), "sysadmin");
		assert_string_equal(jstr(ch, "id"), a.id);
		assert_string_equal(jstr(ch, "email"), a.email);
		found_create |= strcmp(jstr(it, "action"), "create") == 0;
		found_update |= strcmp(jstr(it, "action"), "update") == 0;
	}
	assert_true(found_create && found_update);
	cJSON_Delete(j);
	/* A record the admin makes is still the admin's. */
	j = sok(&admin, "POST", "/clients", "{\"family_name\":\"Usermade\",\"given_name\":\"Bo\"}", 201);
	snprintf(cid2, sizeof(cid2), "%s", jstr(j, "id"));
	cJSON_Delete(j);
	j = sok(&admin, "GET", F("/changes?entity=clients&entity_id=%s", cid2), NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 1);
	assert_string_equal(jstr(jobj(cJSON_GetArrayItem(jarr(j, "items"), 0), "actor"), "kind"), "user");
	cJSON_Delete(j);
	/* The sysadmin reads the access log too (an admin right), and that is an entry as well. */
	n0 = log_count(&admin, "sysadmin.access");
	cJSON_Delete(sa_ok(&a, "GET", "sa-org", "/access-log?limit=5", why, NULL, 200));
	assert_int_equal(log_count(&admin, "sysadmin.access"), n0 + 1);
	/* Every sysadmin entry names the sysadmin, carries a reason field and starts its detail with the route's action. */
	j = log_of(&admin, "sysadmin.access");
	cJSON_ArrayForEach(it, jarr(j, "items"))
	{
		assert_string_equal(jstr(jobj(it, "actor"), "kind"), "sysadmin");
		(void)jstr(it, "reason");
		assert_true(starts(jstr(it, "detail"), "record.") || starts(jstr(it, "detail"), "log."));
	}
	cJSON_Delete(j);
	verify_ok(&admin);
	verify_ok(&other);
}

/*
 * A sysadmin request refused after the session was recognised (no reason, an
 * org without a grant) is still an entry of that org's log: it must say which
 * sysadmin it was (product.md promise 4: every access by a sysadmin is visible).
 */
static void
refused_sysadmin_requests_name_the_sysadmin_in_their_entry(void **state)
{
	const char *why = "looking for the wrong org";
	struct sess admin, other;
	struct sa a;
	cJSON *e;

	(void)state;
	org_with_admin("sa-deny", "198.18.20.7", &admin);
	org_with_admin("sa-deny2", "198.18.20.8", &other);
	sa_new("ops6@platform.test", 0, &a);
	assert_int_equal(sa_assign(a.email, "sa-deny", NULL), 0);
	sa_login(&a, "198.18.9.61");
	/* No reason, in the org they are assigned to. */
	sa_err(&a, "GET", "sa-deny", "/clients", "abcd", NULL, 403, "reason_required");
	e = log_last(&admin, "sysadmin.access");
	entry_is(e, "sysadmin", a.id, a.email, "app", "abcd", "denied", "record.list");
	/* An org they are not assigned to: 404 for them, and if the org's log records the attempt, it names them. */
	sa_err(&a, "GET", "sa-deny2", "/clients", why, NULL, 404, "not_found");
	if (log_count(&other, "sysadmin.access") > 0) {
		e = log_last(&other, "sysadmin.access");
		entry_is(e, "sysadmin", a.id, a.email, "app", why, "failed", "record.list");
	}
	verify_ok(&admin);
	verify_ok(&other);
}

/* --- tests: org admins see and withdraw sysadmins ------------------ */

static void
org_admins_list_and_withdraw_sysadmins_and_assignments_end(void **state)
{
	const char *why = "monthly integrity check";
	struct sess admin, member, ro, other;
	struct sa x, y, z, w;
	const cJSON *it;
	struct h_resp r;
	cJSON *j, *e;
	time_t t;

	(void)state;
	org_with_admin("sa-rev", "198.18.20.3", &admin);
	user_new("sa-rev", "member@sa-rev.test", "member", NULL, 0);
	user_new("sa-rev", "ro@sa-rev.test", "readonly", NULL, 0);
	login("sa-rev", "198.18.20.3", "member@sa-rev.test", &member);
	login("sa-rev", "198.18.20.3", "ro@sa-rev.test", &ro);
	org_with_admin("sa-rev2", "198.18.20.4", &other);
	sa_new("ops3x@platform.test", 0, &x);
	sa_new("ops3y@platform.test", 0, &y);
	sa_new("ops3z@platform.test", 0, &z);
	sa_new("ops3w@platform.test", 0, &w);

	/* Nobody yet. */
	j = sok(&admin, "GET", "/sysadmins", NULL, 200);
	assert_true(cJSON_IsArray(j));
	assert_int_equal(cJSON_GetArraySize(j), 0);
	cJSON_Delete(j);

	/* -bad CLI: unknown sysadmin, unknown org, a malformed date, unassigning what is not assigned. */
	assert_int_equal(sa_assign("nobody@platform.test", "sa-rev", NULL), 1);
	assert_int_equal(sa_assign(x.email, "sa-nowhere", NULL), 1);
	assert_int_equal(sa_assign(x.email, "sa-rev", "2099-13-40"), 1);
	assert_int_equal(sa_assign(x.email, "sa-rev", "tomorrow"), 1);
	assert_int_equal(sa_unassign(x.email, "sa-rev"), 1);

	assert_int_equal(sa_assign(x.email, "sa-rev", NULL), 0);
	assert_int_equal(sa_assign(y.email, "sa-rev", "2000-01-01"), 0); /* already over */
	assert_int_equal(sa_assign(z.email, "sa-rev", NULL), 0);
	assert_int_equal(sa_unassign(z.email, "sa-rev"), 0);
	assert_int_equal(sa_unassign(z.email, "sa-rev"), 1); /* nothing left to withdraw */
	assert_int_equal(sa_assign(w.email, "sa-rev", "2099-12-31"), 0);
	assert_int_equal(sa_assign(x.email, "sa-rev2", NULL), 0);

	/* The list: x (no end) and w (until 2099-12-31); not the expired y nor the withdrawn z. */
	j = sok(&admin, "GET", "/sysadmins", NULL, 200);
	assert_true(cJSON_IsArray(j));
	if (cJSON_GetArraySize(j) != 2) {
		char *s = cJSON_PrintUnformatted(j);

		fail_msg("expected x and w, got %s", s ? s : "?");
	}
	cJSON_ArrayForEach(it, j)
	{
		const cJSON *exp = cJSON_GetObjectItemCaseSensitive(it, "expires_at");

		assert_int_equal(cJSON_GetArraySize(it), 6);
		assert_string_equal(jstr(it, "kind"), "assigned");
		t = rfc3339(jstr(it, "assigned_at"));
		assert_true(t > 0 && llabs((long long)(t - time(NULL))) < 600);
		if (strcmp(jstr(it, "id"), x.id) == 0) {
			assert_string_equal(jstr(it, "email"), x.email);
			assert_string_equal(jstr(it, "name"), F("Ops %s", x.email));
			assert_true(cJSON_IsNull(exp));
		} else {
			assert_string_equal(jstr(it, "id"), w.id);
			assert_string_equal(jstr(it, "email"), w.email);
			assert_true(cJSON_IsString(exp));
			assert_true(starts(exp->valuestring, "2099-12-31T"));
			assert_true(rfc3339(exp->valuestring) > 0);
		}
	}
	cJSON_Delete(j);

	/* Who gets in: x and w; not y (expired) nor z (unassigned). */
	sa_login(&x, "198.18.9.31");
	sa_login(&y, "198.18.9.32");
	sa_login(&z, "198.18.9.33");
	sa_login(&w, "198.18.9.34");
	cJSON_Delete(sa_ok(&x, "GET", "sa-rev", "/clients", why, NULL, 200));
	cJSON_Delete(sa_ok(&w, "GET", "sa-rev", "/clients", why, NULL, 200));
	sa_err(&y, "GET", "sa-rev", "/clients", why, NULL, 404, "not_found");
	sa_err(&z, "GET", "sa-rev", "/clients", why, NULL, 404, "not_found");

	/* -bad: members and readonly users may neither list nor withdraw. */
	serr(&member, "GET", "/sysadmins", NULL, 403, "forbidden");
	serr(&ro, "GET", "/sysadmins", NULL, 403, "forbidden");
	serr(&member, "DELETE", F("/sysadmins/%s", x.id), NULL, 403, "forbidden");
	serr(&ro, "DELETE", F("/sysadmins/%s", x.id), NULL, 403, "forbidden");
	/* -bad: the admin without the CSRF token. */
	raw_with("DELETE", F("/api/v1/orgs/sa-rev/sysadmins/%s", x.id), admin.ip, F("immidb_session=%s", admin.token), NULL,
	         NULL, NULL, &r);
	werr(&r, 403, "csrf_failed");
	/* -bad: another org's admin cannot withdraw w, who is assigned here only. */
	serr(&other, "DELETE", F("/sysadmins/%s", w.id), NULL, 404, "not_found");
	/* -bad: ids that are no one's. */
	serr(&admin, "DELETE", "/sysadmins/nonsense", NULL, 404, "not_found");
	serr(&admin, "DELETE", F("/sysadmins/%s", admin.user_id), NULL, 404, "not_found");
	serr(&admin, "DELETE", F("/sysadmins/%s", y.id), NULL, 404, "not_found"); /* expired: nothing to withdraw */
	cJSON_Delete(sa_ok(&x, "GET", "sa-rev", "/clients", why, NULL, 200));
	cJSON_Delete(sa_ok(&w, "GET", "sa-rev", "/clients", why, NULL, 200));

	/* The admin withdraws x: 204, and x's very next request is 404. */
	assert_null(sok(&admin, "DELETE", F("/sysadmins/%s", x.id), NULL, 204));
	sa_err(&x, "GET", "sa-rev", "/clients", why, NULL, 404, "not_found");
	sa_err(&x, "POST", "sa-rev", "/clients", why, "{\"family_name\":\"Late\",\"given_name\":\"X\"}", 404, "not_found");
	/* -bad: a second withdrawal finds nothing. */
	serr(&admin, "DELETE", F("/sysadmins/%s", x.id), NULL, 404, "not_found");
	/* The withdrawal is in the log, naming x. */
	e = log_find(&admin, "sysadmin.revoked", "ok");
	entry_is(e, "user", admin.user_id, "admin@sa-rev.test", "app", "", "ok", "");
	assert_non_null(strstr(jstr(e, "detail"), x.id));
	/* x is gone from the list, w is still there; x still reaches the other org. */
	j = sok(&admin, "GET", "/sysadmins", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(j), 1);
	assert_string_equal(jstr(cJSON_GetArrayItem(j, 0), "id"), w.id);
	cJSON_Delete(j);
	cJSON_Delete(sa_ok(&x, "GET", "sa-rev2", "/clients", why, NULL, 200));
	cJSON_Delete(sa_ok(&w, "GET", "sa-rev", "/clients", why, NULL, 200));
	/* The operator can assign again; then x gets in again. */
	assert_int_equal(sa_assign(x.email, "sa-rev", NULL), 0);
	cJSON_Delete(sa_ok(&x, "GET", "sa-rev", "/clients", why, NULL, 200));
	/* unassign on the command line withdraws at once too. */
	assert_int_equal(sa_unassign(w.email, "sa-rev"), 0);
	sa_err(&w, "GET", "sa-rev", "/clients", why, NULL, 404, "not_found");
	verify_ok(&admin);
	verify_ok(&other);
}

/* --- tests: break-glass -------------------------------------------- */

static void
break_glass_grants_four_hours_logged_and_listed(void **state)
{
	const char *why = "P1 incident 2026-77: data repair";
	struct sess admin;
	struct h_resp r;
	struct sa g, h;
	const cJSON *it;
	cJSON *j, *e;
	char until[64];
	time_t t, now;

	(void)state;
	org_with_admin("sa-glass", "198.18.20.5", &admin);
	org_new("sa-glass2");
	sa_new("ops4g@platform.test", 0, &g);
	sa_new("ops4h@platform.test", 0, &h);
	sa_login(&g, "198.18.9.41");

	/* Not assigned: the org is not there for g. */
	sa_err(&g, "GET", "sa-glass", "/clients", why, NULL, 404, "not_found");

	/* -bad: without a sysadmin session: 401; with a made-up cookie: 401. */
	glass(NULL, "198.18.9.41", NULL, F("{\"org\":\"sa-glass\",\"reason\":\"%s\"}", why), &r);
	werr(&r, 401, "unauthenticated");
	raw_with("POST", "/api/v1/sysadmin/break-glass", "198.18.9.41", F("immidb_sysadmin=%s", rep('B', 43)), NULL, g.csrf,
	         F("{\"org\":\"sa-glass\",\"reason\":\"%s\"}", why), &r);
	werr(&r, 401, "unauthenticated");
	/* -bad: an org user's session is not a sysadmin session. */
	raw_with("POST", "/api/v1/sysadmin/break-glass", "198.18.9.41", F("immidb_session=%s", admin.token), NULL,
	         admin.csrf, F("{\"org\":\"sa-glass\",\"reason\":\"%s\"}", why), &r);
	werr(&r, 401, "unauthenticated");
	/* -bad: from a non-sysadmin address, with everything else right: 403. */
	glass(&g, "198.18.10.41", g.csrf, F("{\"org\":\"sa-glass\",\"reason\":\"%s\"}", why), &r);
	werr(&r, 403, "ip_not_allowed");
	glass(&g, NULL, g.csrf, F("{\"org\":\"sa-glass\",\"reason\":\"%s\"}", why), &r);
	werr(&r, 403, "ip_not_allowed");
	/* -bad: without or with a wrong CSRF token: 403 csrf_failed. */
	glass(&g, g.ip, NULL, F("{\"org\":\"sa-glass\",\"reason\":\"%s\"}", why), &r);
	werr(&r, 403, "csrf_failed");
	glass(&g, g.ip, rep('c', 43), F("{\"org\":\"sa-glass\",\"reason\":\"%s\"}", why), &r);
	werr(&r, 403, "csrf_failed");
	/* -bad bodies: unknown org, reason too short / too long / missing, unknown field, not JSON. */
	glass(&g, g.ip, g.csrf, F("{\"org\":\"sa-nowhere\",\"reason\":\"%s\"}", why), &r);
	wfield(&r, "org");
	glass(&g, g.ip, g.csrf, "{\"org\":\"sa-glass\",\"reason\":\"abcd\"}", &r);
	wfield(&r, "reason");
	glass(&g, g.ip, g.csrf, F("{\"org\":\"sa-glass\",\"reason\":\"%s\"}", rep('q', 501)), &r);
	wfield(&r, "reason");
	glass(&g, g.ip, g.csrf, "{\"org\":\"sa-glass\"}", &r);
	wfield(&r, "reason");
	glass(&g, g.ip, g.csrf, F("{\"reason\":\"%s\"}", why), &r);
	wfield(&r, "org");
	glass(&g, g.ip, g.csrf, F("{\"org\":\"sa-glass\",\"reason\":\"%s\",\"hours\":40}", why), &r);
	wfield(&r, "hours");
	glass(&g, g.ip, g.csrf, "[\"sa-glass\"]", &r);
	werr(&r, 400, "invalid_json");
	/* None of that opened anything, or wrote anything. */
	sa_err(&g, "GET", "sa-glass", "/clients", why, NULL, 404, "not_found");
	assert_int_equal(log_count(&admin, "sysadmin.break_glass"), 0);
	j = sok(&admin, "GET", "/sysadmins", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(j), 0);
	cJSON_Delete(j);

	/* The real thing: 200 {"expires_at"} four hours ahead. */
	glass(&g, g.ip, g.csrf, F("{\"org\":\"sa-glass\",\"reason\":\"%s\"}", why), &r);
	now = time(NULL);
	j = wjson(&r, 200);
	snprintf(until, sizeof(until), "%s", jstr(j, "expires_at"));
	cJSON_Delete(j);
	t = rfc3339(until);
	if (t < 0 || llabs((long long)(t - now - BREAK_GLASS_S)) > 120)
		fail_msg("expires_at %s is not 4 hours ahead", until);

	/* The org is reachable now, with a reason (and only with one). */
	cJSON_Delete(sa_ok(&g, "GET", "sa-glass", "/clients", why, NULL, 200));
	sa_err(&g, "GET", "sa-glass", "/clients", NULL, NULL, 403, "reason_required");
	cJSON_Delete(sa_ok(&g, "POST", "sa-glass", "/clients", why, "{\"family_name\":\"Glass\",\"given_name\":\"G\"}", 201));
	/* Only that org: the other is still not there. */
	sa_err(&g, "GET", "sa-glass2", "/clients", why, NULL, 404, "not_found");

	/* The org's log: one sysadmin.break_glass entry with the reason, naming g. */
	assert_int_equal(log_count(&admin, "sysadmin.break_glass"), 1);
	e = log_last(&admin, "sysadmin.break_glass");
	entry_is(e, "sysadmin", g.id, g.email, "app", why, "ok", "");
	assert_string_equal(jstr(e, "ip"), g.ip);
	e = log_last(&admin, "sysadmin.access");
	entry_is(e, "sysadmin", g.id, g.email, "app", why, "ok", "record.create");

	/* Another sysadmin gained nothing from it. */
	sa_login(&h, "198.18.9.42");
	sa_err(&h, "GET", "sa-glass", "/clients", why, NULL, 404, "not_found");

	/* The admins see it in the list: kind break_glass, its end. */
	j = sok(&admin, "GET", "/sysadmins", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(j), 1);
	it = cJSON_GetArrayItem(j, 0);
	assert_string_equal(jstr(it, "id"), g.id);
	assert_string_equal(jstr(it, "email"), g.email);
	assert_string_equal(jstr(it, "kind"), "break_glass");
	assert_string_equal(jstr(it, "expires_at"), until);
	cJSON_Delete(j);

	/* ... and can end it at once. */
	assert_null(sok(&admin, "DELETE", F("/sysadmins/%s", g.id), NULL, 204));
	sa_err(&g, "GET", "sa-glass", "/clients", why, NULL, 404, "not_found");
	j = sok(&admin, "GET", "/sysadmins", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(j), 0);
	cJSON_Delete(j);
	verify_ok(&admin);
}

/* --- tests: server-side access ------------------------------------- */

/* immidb-admin access ... with up to 5 more arguments after the fixed ones (NULL-terminated through `more`). */
static int
access_run(char *out, size_t outlen, char *err, size_t errlen, const char *a1, const char *a2, const char *a3,
           const char *a4, const char *a5, const char *a6, const char *a7, const char *a8, const char *a9,
           const char *a10)
{
	return h_admin(&env, NULL, out, outlen, err, errlen, "access", a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, NULL);
}

#define ACCESS(slug, who, reason, sql)                                                                             \
	access_run(out, sizeof(out), err, sizeof(err), "--org", slug, "--sysadmin", who, "--reason", reason, "--", "sql", \
	           sql, NULL)

static void
server_access_runs_read_only_sql_for_an_assigned_sysadmin_and_is_logged(void **state)
{
	const char *why = "ticket 1234 check";
	char out[8192], err[4096], plain[H_PATH + 32];
	struct sess admin;
	struct sa c, d, g;
	struct h_resp r;
	struct stat sb;
	cJSON *e, *j;
	int n0, rc;

	(void)state;
	org_with_admin("sa-cli", "198.18.20.6", &admin);
	org_new("sa-cli2");
	sa_new("ops5c@platform.test", 0, &c);
	sa_new("ops5d@platform.test", 0, &d);
	sa_new("ops5g@platform.test", 0, &g);
	assert_int_equal(sa_assign(c.email, "sa-cli", NULL), 0);
	assert_int_equal(sa_assign(d.email, "sa-cli2", NULL), 0);
	cJSON_Delete(sok(&admin, "POST", "/clients", "{\"family_name\":\"One\",\"given_name\":\"A\"}", 201));
	cJSON_Delete(sok(&admin, "POST", "/clients", "{\"family_name\":\"Two\",\"given_name\":\"B\"}", 201));
	assert_int_equal(log_count(&admin, "server.access"), 0);

	/* The count, and one server.access entry: via server, the sysadmin, the reason. */
	rc = ACCESS("sa-cli", c.email, why, "SELECT count(*) FROM clients");
	if (rc != 0)
		fail_msg("access: %d %s", rc, err);
	assert_string_equal(out, "2\n");
	assert_int_equal(log_count(&admin, "server.access"), 1);
	e = log_last(&admin, "server.access");
	entry_is(e, "sysadmin", c.id, c.email, "server", why, "ok", "");
	/* The CLI's export shows it the same way. */
	{
		char exp[65536], eerr[1024];

		assert_int_equal(h_admin(&env, NULL, exp, sizeof(exp), eerr, sizeof(eerr), "log", "export", "--org", "sa-cli",
		                         NULL),
		                 0);
		assert_non_null(strstr(exp, "\"server.access\""));
		assert_non_null(strstr(exp, F("\"reason\":\"%s\"", why)));
	}

	/* -bad: writes fail on the read-only connection (exit 1, "readonly") and change nothing. */
	rc = ACCESS("sa-cli", c.email, why, "UPDATE clients SET notes='x'");
	assert_int_equal(rc, 1);
	if (strstr(err, "readonly") == NULL)
		fail_msg("expected 'readonly' in: %s", err);
	rc = ACCESS("sa-cli", c.email, why, "PRAGMA query_only = 0; DELETE FROM clients");
	assert_int_equal(rc, 1);
	rc = ACCESS("sa-cli", c.email, why, "INSERT INTO clients (id) VALUES ('c_x')");
	assert_int_equal(rc, 1);
	rc = ACCESS("sa-cli", c.email, why, "DROP TABLE clients");
	assert_int_equal(rc, 1);
	snprintf(plain, sizeof(plain), "%s/plain-copy.db", env.dir);
	rc = ACCESS("sa-cli", c.email, why, F("VACUUM INTO '%s'", plain));
	assert_int_equal(rc, 1);
	assert_true(stat(plain, &sb) != 0 || sb.st_size == 0);
	rc = ACCESS("sa-cli", c.email, why,
	            F("ATTACH DATABASE '%s' AS plain KEY ''; SELECT sqlcipher_export('plain')", plain));
	refused(rc, err);
	assert_true(stat(plain, &sb) != 0 || sb.st_size == 0);
	rc = ACCESS("sa-cli", c.email, why, "SELECT count(*) FROM clients WHERE notes = 'x'");
	assert_int_equal(rc, 0);
	assert_string_equal(out, "0\n");
	rc = ACCESS("sa-cli", c.email, why, "SELECT count(*) FROM clients");
	assert_int_equal(rc, 0);
	assert_string_equal(out, "2\n");
	assert_int_equal(count_items(&admin, "/clients"), 2);
	n0 = log_count(&admin, "server.access");

	/* -bad: refused before anything runs, and without an entry: unknown sysadmin, a sysadmin not
	 * assigned here, an unknown org, a reason too short or too long, no `--`, no or another
	 * sub-command, sql without or with two statements' arguments. */
	rc = ACCESS("sa-cli", "nobody@platform.test", why, "SELECT 'RAN-MARKER'");
	refused(rc, err);
	assert_null(strstr(out, "RAN-MARKER"));
	rc = ACCESS("sa-cli", d.email, why, "SELECT 'RAN-MARKER'");
	refused(rc, err);
	assert_null(strstr(out, "RAN-MARKER"));
	rc = ACCESS("sa-nowhere", c.email, why, "SELECT 'RAN-MARKER'");
	refused(rc, err);
	assert_null(strstr(out, "RAN-MARKER"));
	rc = ACCESS("sa-cli2", c.email, why, "SELECT 'RAN-MARKER'"); /* c is not assigned there */
	refused(rc, err);
	assert_null(strstr(out, "RAN-MARKER"));
	rc = ACCESS("sa-cli", c.email, "abcd", "SELECT 'RAN-MARKER'");
	refused(rc, err);
	assert_null(strstr(out, "RAN-MARKER"));
	rc = ACCESS("sa-cli", c.email, rep('r', 501), "SELECT 'RAN-MARKER'");
	refused(rc, err);
	assert_null(strstr(out, "RAN-MARKER"));
	rc = ACCESS("sa-cli", c.email, "", "SELECT 'RAN-MARKER'");
	refused(rc, err);
	rc = access_run(out, sizeof(out), err, sizeof(err), "--org", "sa-cli", "--sysadmin", c.email, "--reason", why,
	                "sql", "SELECT 'RAN-MARKER'", NULL, NULL);
	refused(rc, err);
	assert_null(strstr(out, "RAN-MARKER"));
	rc = access_run(out, sizeof(out), err, sizeof(err), "--org", "sa-cli", "--sysadmin", c.email, "--reason", why,
	                "--", NULL, NULL, NULL);
	refused(rc, err);
	rc = access_run(out, sizeof(out), err, sizeof(err), "--org", "sa-cli", "--sysadmin", c.email, "--reason", why,
	                "--", "shell", "SELECT 'RAN-MARKER'", NULL);
	refused(rc, err);
	assert_null(strstr(out, "RAN-MARKER"));
	rc = access_run(out, sizeof(out), err, sizeof(err), "--org", "sa-cli", "--sysadmin", c.email, "--reason", why,
	                "--", "sql", NULL, NULL);
	refused(rc, err);
	rc = access_run(out, sizeof(out), err, sizeof(err), "--org", "sa-cli", "--sysadmin", c.email, "--reason", why,
	                "--", "sql", "SELECT 'RAN-MARKER'", "SELECT 2");
	refused(rc, err);
	assert_null(strstr(out, "RAN-MARKER"));
	rc = access_run(out, sizeof(out), err, sizeof(err), "--org", "sa-cli", "--reason", why, "--", "sql",
	                "SELECT 'RAN-MARKER'", NULL, NULL, NULL);
	refused(rc, err);
	assert_null(strstr(out, "RAN-MARKER"));
	/* An expired or withdrawn assignment is no assignment. */
	assert_int_equal(sa_assign(d.email, "sa-cli", "2000-01-01"), 0);
	rc = ACCESS("sa-cli", d.email, why, "SELECT 'RAN-MARKER'");
	refused(rc, err);
	assert_null(strstr(out, "RAN-MARKER"));
	assert_int_equal(log_count(&admin, "server.access"), n0);

	/* A break-glass grant counts: g takes one through the application, then runs sql on the server. */
	sa_login(&g, "198.18.9.51");
	rc = ACCESS("sa-cli", g.email, why, "SELECT 'RAN-MARKER'");
	refused(rc, err);
	glass(&g, g.ip, g.csrf, "{\"org\":\"sa-cli\",\"reason\":\"P1 incident: data check\"}", &r);
	j = wjson(&r, 200);
	cJSON_Delete(j);
	rc = ACCESS("sa-cli", g.email, why, "SELECT 'RAN-MARKER'");
	if (rc != 0)
		fail_msg("access with break-glass: %d %s", rc, err);
	assert_non_null(strstr(out, "RAN-MARKER"));
	assert_int_equal(log_count(&admin, "server.access"), n0 + 1);
	e = log_last(&admin, "server.access");
	entry_is(e, "sysadmin", g.id, g.email, "server", why, "ok", "");
	/* Withdrawn through the API: the server door closes too. */
	assert_null(sok(&admin, "DELETE", F("/sysadmins/%s", c.id), NULL, 204));
	rc = ACCESS("sa-cli", c.email, why, "SELECT 'RAN-MARKER'");
	refused(rc, err);
	assert_null(strstr(out, "RAN-MARKER"));
	assert_int_equal(log_count(&admin, "server.access"), n0 + 1);
	verify_ok(&admin);
}


/*
 * immidb-admin access ... -- export: the org's export on behalf of an
 * assigned sysadmin, logged twice (server.access, then org.export naming the
 * sysadmin and the reason, via server) and notified; refused without a grant.
 */
static void
server_access_export_is_the_orgs_export_logged_for_the_sysadmin(void **state)
{
	const char *why = "ticket 5678 export for the firm";
	char out[8192], err[4096], path[H_PATH + 32], bad[H_PATH + 32];
	struct sess admin;
	struct stat sb;
	struct sa c, d;
	size_t len;
	char *doc;
	cJSON *e, *j;
	int rc;

	(void)state;
	org_with_admin("sa-xport", "198.18.20.9", &admin);
	sa_new("ops9c@platform.test", 0, &c);
	sa_new("ops9d@platform.test", 0, &d);
	assert_int_equal(sa_assign(c.email, "sa-xport", NULL), 0);
	cJSON_Delete(sok(&admin, "POST", "/clients",
	                 "{\"family_name\":\"Exported\",\"given_name\":\"Ana\",\"a_number\":\"A123456789\"}", 201));
	snprintf(path, sizeof(path), "%s/sa-export.json", env.dir);
	snprintf(bad, sizeof(bad), "%s/sa-export-bad.json", env.dir);

	rc = access_run(out, sizeof(out), err, sizeof(err), "--org", "sa-xport", "--sysadmin", c.email, "--reason", why,
	                "--", "export", "--out", path);
	if (rc != 0)
		fail_msg("access -- export: %d %s", rc, err);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	doc = h_slurp(path, &len);
	assert_non_null(doc);
	j = cJSON_Parse(doc);
	assert_non_null(j);
	assert_string_equal(jstr(j, "format"), "immidb-export-v1");
	assert_int_equal(cJSON_GetArraySize(jarr(j, "clients")), 1);
	assert_string_equal(jstr(cJSON_GetArrayItem(jarr(j, "clients"), 0), "a_number"), "A123456789");
	cJSON_Delete(j);
	free(doc);
	e = log_last(&admin, "server.access");
	entry_is(e, "sysadmin", c.id, c.email, "server", why, "ok", "export");
	e = log_last(&admin, "org.export");
	entry_is(e, "sysadmin", c.id, c.email, "server", why, "ok", "");
	j = sok(&admin, "GET", "/notifications", NULL, 200);
	doc = cJSON_PrintUnformatted(j);
	assert_non_null(doc);
	assert_non_null(strstr(doc, "\"kind\":\"export\""));
	cJSON_free(doc);
	cJSON_Delete(j);

	/* -bad: a sysadmin without a grant here, and extra words: nothing written, no entry. */
	rc = access_run(out, sizeof(out), err, sizeof(err), "--org", "sa-xport", "--sysadmin", d.email, "--reason", why,
	                "--", "export", "--out", bad);
	refused(rc, err);
	assert_true(stat(bad, &sb) != 0);
	rc = access_run(out, sizeof(out), err, sizeof(err), "--org", "sa-xport", "--sysadmin", c.email, "--reason", why,
	                "--", "export", "--to", bad);
	refused(rc, err);
	assert_true(stat(bad, &sb) != 0);
	assert_int_equal(log_count(&admin, "org.export"), 1);
	verify_ok(&admin);
}

/* The path of a route pattern with {org} = slug and every other parameter = id. */
static void
route_path(const char *pattern, const char *slug, const char *id, char *out, size_t len)
{
	const char *p = pattern, *end;
	size_t n = 0;
	int w;

	while (*p != '\0') {
		if (*p == '{' && (end = strchr(p, '}')) != NULL) {
			w = snprintf(out + n, len - n, "%s", strncmp(p, "{org}", 5) == 0 ? slug : id);
			p = end + 1;
		} else {
			w = snprintf(out + n, len - n, "%c", *p);
			p++;
		}
		assert_true(w >= 0 && (size_t)w < len - n);
		n += (size_t)w;
	}
}

/*
 * Every org route of the router's table (present and future), called by an
 * assigned sysadmin with a reason: never a 5xx, and each call is exactly one
 * new sysadmin.access entry in the org's log (api.md: "Every such request is
 * an access-log entry"). Ids are unknown ones, so nothing is changed.
 */
static void
every_org_route_a_sysadmin_calls_is_one_sysadmin_access_entry(void **state)
{
	const char *why = "route walk for the audit";
	char path[512];
	struct sess admin;
	struct h_resp r;
	struct sa a;
	size_t i, walked = 0, bad = 0;
	int before, after;

	(void)state;
	org_with_admin("sa-walk", "198.18.20.10", &admin);
	sa_new("ops7@platform.test", 0, &a);
	assert_int_equal(sa_assign(a.email, "sa-walk", NULL), 0);
	sa_login(&a, "198.18.9.71");
	for (i = 0; i < idb_routes_n; i++) {
		const struct idb_route *rt = &idb_routes[i];

		if (!(rt->flags & IDB_RF_ORG) || (rt->flags & IDB_RF_NOSESSION))
			continue;
		route_path(rt->pattern, "sa-walk", "c_00000000000000000000000000000000", path, sizeof(path));
		before = log_count(&admin, "sysadmin.access");
		raw_with(rt->method, path, a.ip, sa_cookie(&a), why, strcmp(rt->method, "GET") ? a.csrf : NULL,
		         strcmp(rt->method, "GET") ? "{}" : NULL, &r);
		after = log_count(&admin, "sysadmin.access");
		if (r.status >= 500 || after != before + 1) {
			print_error("sysadmin on %s %s: %ld %.200s; sysadmin.access entries %d -> %d\n", rt->method, path,
			            r.status, r.body, before, after);
			bad++;
		}
		h_resp_free(&r);
		walked++;
	}
	/* Entries naming the sysadmin are sysadmin entries. */
	{
		cJSON *l = sok(&admin, "GET", "/access-log?limit=200", NULL, 200);
		const cJSON *it;

		cJSON_ArrayForEach(it, jarr(l, "items"))
		{
			char *t;

			if (strcmp(jstr(jobj(it, "actor"), "id"), a.id) != 0 ||
			    strcmp(jstr(jobj(it, "actor"), "kind"), "sysadmin") == 0)
				continue;
			t = cJSON_PrintUnformatted(it);
			print_error("an entry names sysadmin %s with another actor kind: %s\n", a.id, t ? t : "?");
			free(t);
			bad++;
		}
		cJSON_Delete(l);
	}
	print_message("org routes walked as a sysadmin: %zu, not logged or 5xx: %zu\n", walked, bad);
	assert_true(walked >= 10);
	assert_int_equal(bad, 0);
	/* The sysadmin still reaches the org, and the log verifies. */
	cJSON_Delete(sa_ok(&a, "GET", "sa-walk", "/clients", why, NULL, 200));
	verify_ok(&admin);
}

/* One fixed UPDATE of the registry with text parameters ?1 and ?2 (and ?3 integer); the rows changed. */
static int
reg_update(const char *sql, const char *p1, const char *p2, long long p3)
{
	struct idb_master *m = NULL;
	sqlite3_stmt *st = NULL;
	sqlite3 *reg = reg_open(&m);
	int n;

	if (sqlite3_prepare_v2(reg, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("prepare %s: %s", sql, sqlite3_errmsg(reg));
	sqlite3_bind_text(st, 1, p1, -1, SQLITE_TRANSIENT);
	if (p2 != NULL)
		sqlite3_bind_text(st, 2, p2, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, p3);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	n = sqlite3_changes(reg);
	sqlite3_finalize(st);
	reg_close(reg, m);
	return n;
}

/*
 * Time runs out: an idle sysadmin session (30 minutes) and one past its end
 * are no sessions; a break-glass grant past its 4 hours gives no access and
 * leaves the list; a disabled sysadmin can neither log in nor use a session
 * nor the server door. A user session with a sysadmin cookie beside it stays
 * that user's (a member is not raised to admin).
 */
static void
sysadmin_sessions_and_grants_end_when_their_time_is_up(void **state)
{
	const char *why = "checking expiry rules";
	char out[4096], err[4096], code[16];
	struct sess admin, member;
	struct sa a, b, g, d;
	struct h_resp r;
	unsigned char h[crypto_hash_sha256_BYTES];
	cJSON *j;
	time_t now = time(NULL);

	(void)state;
	org_with_admin("sa-time", "198.18.20.11", &admin);
	user_new("sa-time", "member@sa-time.test", "member", NULL, 0);
	login("sa-time", "198.18.20.11", "member@sa-time.test", &member);
	sa_new("ops8a@platform.test", 0, &a);
	sa_new("ops8b@platform.test", 0, &b);
	sa_new("ops8g@platform.test", 0, &g);
	sa_new("ops8d@platform.test", 0, &d);
	assert_int_equal(sa_assign(a.email, "sa-time", NULL), 0);
	assert_int_equal(sa_assign(b.email, "sa-time", NULL), 0);
	assert_int_equal(sa_assign(d.email, "sa-time", NULL), 0);
	sa_login(&a, "198.18.9.81");
	sa_login(&b, "198.18.9.82");
	sa_login(&g, "198.18.9.83");
	sa_login(&d, "198.18.9.84");
	cJSON_Delete(sa_ok(&a, "GET", "sa-time", "/clients", why, NULL, 200));
	cJSON_Delete(sa_ok(&b, "GET", "sa-time", "/clients", why, NULL, 200));

	/* A member's session with an assigned sysadmin's cookie beside it: still the member. */
	raw_with("GET", "/api/v1/orgs/sa-time/users", member.ip,
	         F("immidb_session=%s; immidb_sysadmin=%s", member.token, a.token), why, NULL, NULL, &r);
	werr(&r, 403, "forbidden");
	raw_with("GET", "/api/v1/orgs/sa-time/users", a.ip,
	         F("immidb_sysadmin=%s; immidb_session=%s", a.token, member.token), why, NULL, NULL, &r);
	werr(&r, 403, "forbidden");

	/* a: idle for 31 minutes. */
	crypto_hash_sha256(h, (const unsigned char *)a.token, strlen(a.token));
	{
		struct idb_master *m = NULL;
		sqlite3_stmt *st = NULL;
		sqlite3 *reg = reg_open(&m);

		assert_int_equal(sqlite3_prepare_v2(reg, "UPDATE sysadmin_sessions SET last_seen = ?2 WHERE token_hash = ?1",
		                                    -1, &st, NULL),
		                 SQLITE_OK);
		sqlite3_bind_blob(st, 1, h, sizeof(h), SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, (long long)now - 31 * 60);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		assert_int_equal(sqlite3_changes(reg), 1);
		sqlite3_finalize(st);
		/* b: past its absolute end. */
		crypto_hash_sha256(h, (const unsigned char *)b.token, strlen(b.token));
		st = NULL;
		assert_int_equal(sqlite3_prepare_v2(reg, "UPDATE sysadmin_sessions SET expires_at = ?2 WHERE token_hash = ?1",
		                                    -1, &st, NULL),
		                 SQLITE_OK);
		sqlite3_bind_blob(st, 1, h, sizeof(h), SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, (long long)now - 1);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		assert_int_equal(sqlite3_changes(reg), 1);
		sqlite3_finalize(st);
		reg_close(reg, m);
	}
	sa_err(&a, "GET", "sa-time", "/clients", why, NULL, 401, "unauthenticated");
	sa_err(&b, "GET", "sa-time", "/clients", why, NULL, 401, "unauthenticated");
	glass(&a, a.ip, a.csrf, "{\"org\":\"sa-time\",\"reason\":\"expired session try\"}", &r);
	werr(&r, 401, "unauthenticated");

	/* g: break-glass, then its 4 hours are over. */
	glass(&g, g.ip, g.csrf, "{\"org\":\"sa-time\",\"reason\":\"incident 88: check\"}", &r);
	cJSON_Delete(wjson(&r, 200));
	cJSON_Delete(sa_ok(&g, "GET", "sa-time", "/clients", why, NULL, 200));
	assert_int_equal(reg_update("UPDATE sysadmin_grants SET expires_at = '2001-01-01T00:00:00.000Z'"
	                            " WHERE sysadmin_id = ?1 AND kind = 'break_glass' AND ?3 = ?3",
	                            g.id, NULL, 0),
	                 1);
	sa_err(&g, "GET", "sa-time", "/clients", why, NULL, 404, "not_found");
	j = sok(&admin, "GET", "/sysadmins", NULL, 200);
	{
		const cJSON *it;

		cJSON_ArrayForEach(it, j)
		{
			assert_string_not_equal(jstr(it, "id"), g.id);
		}
	}
	cJSON_Delete(j);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "access", "--org", "sa-time",
	                             "--sysadmin", g.email, "--reason", why, "--", "sql", "SELECT 'RAN-MARKER'", NULL),
	                     1);
	assert_null(strstr(out, "RAN-MARKER"));

	/* d: disabled. Its session, a new log in and the server door all refuse. */
	cJSON_Delete(sa_ok(&d, "GET", "sa-time", "/clients", why, NULL, 200));
	assert_int_equal(reg_update("UPDATE sysadmins SET disabled = 1 WHERE id = ?1 AND ?3 = ?3", d.id, NULL, 0), 1);
	sa_err(&d, "GET", "sa-time", "/clients", why, NULL, 401, "unauthenticated");
	totp(d.secret, 1, code);
	sa_post_login(d.ip, sa_body(d.email, d.pw, code), &r);
	werr(&r, 401, "invalid_credentials");
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "access", "--org", "sa-time",
	                             "--sysadmin", d.email, "--reason", why, "--", "sql", "SELECT 'RAN-MARKER'", NULL),
	                     1);
	assert_null(strstr(out, "RAN-MARKER"));
	verify_ok(&admin);
}

/* --- tests: the log still verifies --------------------------------- */

static void
every_log_still_verifies_after_all_this(void **state)
{
	static const char *const slugs[] = {"sa-org", "sa-other", "sa-rev", "sa-rev2", "sa-glass", "sa-cli", "sa-deny", "sa-deny2", "sa-walk", "sa-time", NULL};
	char out[16384], err[4096];
	struct sess admin;
	int i, rc;

	(void)state;
	for (i = 0; slugs[i] != NULL; i++) {
		login(slugs[i], "198.18.20.9", F("admin@%s.test", slugs[i]), &admin);
		verify_ok(&admin);
	}
	rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "verify", "--all", NULL);
	if (rc != 0)
		fail_msg("log verify --all: %d %s %s", rc, out, err);
}

/* --- setup --------------------------------------------------------- */

static int
setup(void **state)
{
	const char *line = "sysadmin_ip_allowlist = " SA_NET4 ", " SA_NET6 "\n";

	(void)state;
	client_opts.error_message = 1;
	client_opts.empty_204 = 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (sodium_init() < 0)
		return -1;
	if (h_start_with(&env, WORKERS, "127.0.0.1") != 0)
		return -1;
	/* The sysadmin addresses: appended to the harness's configuration, then a restart. */
	return h_conf_append(&env, line);
}

static int
teardown(void **state)
{
	int rc;

	(void)state;
	rc = h_stop(&env);
	hold(NULL);
	curl_global_cleanup();
	return rc;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(sysadmin_login_needs_a_sysadmin_address_password_and_a_fresh_code),
	    cmocka_unit_test(assigned_sysadmin_works_like_an_admin_with_a_reason_and_every_request_is_logged),
	    cmocka_unit_test(refused_sysadmin_requests_name_the_sysadmin_in_their_entry),
	    cmocka_unit_test(org_admins_list_and_withdraw_sysadmins_and_assignments_end),
	    cmocka_unit_test(break_glass_grants_four_hours_logged_and_listed),
	    cmocka_unit_test(server_access_runs_read_only_sql_for_an_assigned_sysadmin_and_is_logged),
	    cmocka_unit_test(server_access_export_is_the_orgs_export_logged_for_the_sysadmin),
	    cmocka_unit_test(every_org_route_a_sysadmin_calls_is_one_sysadmin_access_entry),
	    cmocka_unit_test(sysadmin_sessions_and_grants_end_when_their_time_is_up),
	    cmocka_unit_test(every_log_still_verifies_after_all_this),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
