/* SPDX-License-Identifier: ISC */
/*
 * Authentication, end to end through nginx: log in and out, the session
 * cookie and what the server keeps of it, idle and absolute expiry, CSRF,
 * login throttling, TOTP (checked against oathtool, an independent
 * implementation of RFC 6238) with recovery codes, the org's require_mfa and
 * IP allow-list, users and settings administration, roles, and tenant
 * isolation over every route of the router's table.
 *
 * The server trusts loopback as a proxy, so each test speaks for its own
 * client address through X-Forwarded-For (198.18.0.N, one per test): the
 * per-IP throttle of one test never reaches another. Each test has its own
 * organization, made with the real immidb-admin.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "checks.h"
#include "client.h"
#include "harness.h"
#include "api/api.h"
#include "crypto/pw.h"
#include "store/db.h"
#include "store/registry.h"

#define WORKERS 2
#define PW2 "another quite long passphrase"
#define IDLE_DEFAULT_S (30 * 60)
#define ABSOLUTE_S (12 * 60 * 60)
#define THROTTLE_WINDOW_S (15 * 60)
#define NOW_SQL "CAST(strftime('%s', 'now') AS INTEGER)"

struct h_env env;

static int
setup(void **state)
{
	(void)state;
	client_opts.error_type = 1;
	client_opts.error_message = 1;
	client_opts.empty_204 = 1;
	client_opts.token_shape = 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (sodium_init() < 0)
		return -1;
	return h_start_with(&env, WORKERS, "127.0.0.1");
}

static int
teardown(void **state)
{
	(void)state;
	int rc = h_stop(&env);

	curl_global_cleanup();
	return rc;
}

/* --- small helpers ------------------------------------------------- */

/* n copies of c, NUL-terminated, in a ring buffer (n < F_LEN). */
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

/* --- requests ------------------------------------------------------ */

/* sreq with an explicit CSRF header (NULL: none). */
static void
sreq_csrf(const struct sess *s, const char *method, const char *sub, const char *csrf, const char *body,
          struct h_resp *r)
{
	raw(method, F("/api/v1/orgs/%s%s", s->slug, sub), s->ip, s->token, csrf, body, r);
}

/* A login that stops at the second factor. */
static void
login_pending(const char *slug, const char *ip, const char *email, const char *pw, struct sess *s)
{
	cJSON *j = login_body(slug, ip, email, pw, s);

	assert_true(jbool(j, "mfa_required"));
	assert_true(strlen(s->csrf) > 0);
	cJSON_Delete(j);
}

/* POST .../session/mfa on the pending session p with body; on 200 s becomes the new full session. */
static void
mfa_step(const struct sess *p, const char *body, struct sess *s, struct h_resp *r)
{
	cJSON *j;

	sreq(p, "POST", "/session/mfa", body, r);
	if (r->status != 200)
		return;
	*s = *p;
	if (take_cookie(r, s->token, sizeof(s->token)) != 0)
		fail_msg("session/mfa answered 200 without a new session cookie");
	assert_string_not_equal(s->token, p->token); /* a new token: no session fixation */
	j = jparse_text(r->body, r->status);
	snprintf(s->csrf, sizeof(s->csrf), "%s", jstr(j, "csrf_token"));
	snprintf(s->user_id, sizeof(s->user_id), "%s", jstr(jobj(j, "user"), "id"));
	assert_true(jbool(jobj(j, "user"), "mfa_enabled"));
	cJSON_Delete(j);
}

/* Password, then the code: a full session in s. */
static void
login_mfa(const char *slug, const char *ip, const char *email, const char *pw, const char *code, struct sess *s)
{
	struct h_resp r;
	struct sess p;

	login_pending(slug, ip, email, pw, &p);
	mfa_step(&p, F("{\"code\":\"%s\"}", code), s, &r);
	want(&r, 200);
	h_resp_free(&r);
}

/* Password, then a code that must be refused with 401 invalid_credentials. */
static void
login_mfa_bad(const char *slug, const char *ip, const char *email, const char *pw, const char *body)
{
	struct h_resp r;
	struct sess p, s;

	login_pending(slug, ip, email, pw, &p);
	mfa_step(&p, body, &s, &r);
	werr(&r, 401, "invalid_credentials");
}

/* --- organizations and users through immidb-admin ------------------ */

/* immidb-admin org settings --org slug <opt> <val>; its exit status. */
static int
org_set(const char *slug, const char *opt, const char *val)
{
	char out[4096], err[4096];

	return h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "settings", "--org", slug, opt, val,
	               NULL);
}

/* --- the org database, from the test's side ------------------------ */

/* One text value (copied into out, "" for NULL) from a fixed query with one text parameter. */
static void
q_text(sqlite3 *db, const char *sql, const char *a, char *out, size_t len)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *t;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
	sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW)
		fail_msg("no row for %s", sql);
	t = sqlite3_column_text(st, 0);
	snprintf(out, len, "%s", t ? (const char *)t : "");
	sqlite3_finalize(st);
}

/* Number of session rows whose token_hash is the given blob. */
static long long
sess_rows(sqlite3 *db, const void *blob, size_t n)
{
	sqlite3_stmt *st = NULL;
	long long v;

	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sessions WHERE token_hash = ?1", -1, &st, NULL),
	                 SQLITE_OK);
	sqlite3_bind_blob(st, 1, blob, (int)n, SQLITE_TRANSIENT);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The SHA-256 values a server may keep of a token: of the whole, of its random part, of its 32 bytes. */
static void
tok_hashes(const char *token, unsigned char h[3][crypto_hash_sha256_BYTES])
{
	const char *rnd = tok_rand(token);
	unsigned char raw32[64];
	size_t bin;

	crypto_hash_sha256(h[0], (const unsigned char *)token, strlen(token));
	crypto_hash_sha256(h[1], (const unsigned char *)rnd, strlen(rnd));
	assert_int_equal(sodium_base642bin(raw32, sizeof(raw32), rnd, strlen(rnd), NULL, &bin, NULL,
	                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
	                 0);
	crypto_hash_sha256(h[2], raw32, bin);
}

/* Number of session rows keyed by any SHA-256 of the token. */
static long long
sess_rows_of(sqlite3 *db, const char *token)
{
	unsigned char h[3][crypto_hash_sha256_BYTES];

	tok_hashes(token, h);
	return sess_rows(db, h[0], sizeof(h[0])) + sess_rows(db, h[1], sizeof(h[1])) + sess_rows(db, h[2], sizeof(h[2]));
}

/* The stored hash of a session token (one of tok_hashes). Fails if none is there. */
static void
sess_hash(sqlite3 *db, const char *token, unsigned char out[crypto_hash_sha256_BYTES])
{
	unsigned char h[3][crypto_hash_sha256_BYTES];
	int i;

	tok_hashes(token, h);
	for (i = 0; i < 3; i++)
		if (sess_rows(db, h[i], sizeof(h[i])) == 1) {
			memcpy(out, h[i], sizeof(h[i]));
			return;
		}
	fail_msg("no session row holds the SHA-256 of the token");
}

/* Runs a fixed UPDATE of one session row: ?1 its hash, ?2 and ?3 integers (?3 may be unused). */
static void
sess_update(const char *slug, const char *token, const char *sql, long long a, long long b)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	sqlite3 *db = org_db(slug);
	sqlite3_stmt *st = NULL;

	sess_hash(db, token, h);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_blob(st, 1, h, sizeof(h), SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, a);
	sqlite3_bind_int64(st, 3, b);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_finalize(st);
	idb_db_close(db);
}

/* --- TOTP through oathtool ----------------------------------------- */

/* Waits for the next 30-s step if fewer than need_s seconds remain of this one. */
static void
step_guard(int need_s)
{
	time_t now = time(NULL);
	int into = (int)(now % 30);

	if (30 - into < need_s)
		h_sleep_ms((30 - into) * 1000 + 300);
}

/* POST .../me/mfa/totp: the pending secret, with the otpauth URI checked. */
static void
totp_enroll(const struct sess *s, const char *email, char secret[64])
{
	const char *uri, *p;
	char label1[320], label2[320];
	cJSON *j = sok(s, "POST", "/me/mfa/totp", NULL, 200);

	snprintf(secret, 64, "%s", jstr(j, "secret"));
	/* 160 bits in base32: 32 characters of A-Z2-7. */
	assert_int_equal(strlen(secret), 32);
	for (p = secret; *p; p++)
		assert_true((*p >= 'A' && *p <= 'Z') || (*p >= '2' && *p <= '7'));
	uri = jstr(j, "otpauth_uri");
	snprintf(label1, sizeof(label1), "otpauth://totp/ImmiDB:%s?", email);
	snprintf(label2, sizeof(label2), "otpauth://totp/ImmiDB:%.*s%%40%s?", (int)strcspn(email, "@"), email,
	         strchr(email, '@') + 1);
	if (strncmp(uri, label1, strlen(label1)) != 0 && strncmp(uri, label2, strlen(label2)) != 0)
		fail_msg("otpauth_uri does not start with the label for %s: %s", email, uri);
	assert_non_null(strstr(uri, F("secret=%s", secret)));
	assert_non_null(strstr(uri, "issuer=ImmiDB"));
	assert_non_null(strstr(uri, "algorithm=SHA1"));
	assert_non_null(strstr(uri, "digits=6"));
	assert_non_null(strstr(uri, "period=30"));
	cJSON_Delete(j);
}

/* POST .../me/mfa/totp/confirm with code: the 10 recovery codes (codes may be NULL). */
static void
totp_confirm(const struct sess *s, const char *code, char codes[10][32])
{
	const cJSON *arr, *it;
	cJSON *j = sok(s, "POST", "/me/mfa/totp/confirm", F("{\"code\":\"%s\"}", code), 200);
	int n = 0, i;
	const char *c;

	arr = jarr(j, "recovery_codes");
	assert_int_equal(cJSON_GetArraySize(arr), 10);
	cJSON_ArrayForEach(it, arr)
	{
		assert_true(cJSON_IsString(it));
		c = it->valuestring;
		/* "xxxx-xxxx-xxxx" */
		assert_int_equal(strlen(c), 14);
		for (i = 0; i < 14; i++)
			assert_true(i == 4 || i == 9 ? c[i] == '-' : isalnum((unsigned char)c[i]));
		if (codes != NULL) {
			for (i = 0; i < n; i++)
				assert_string_not_equal(codes[i], c);
			snprintf(codes[n], 32, "%s", c);
		}
		n++;
	}
	cJSON_Delete(j);
}

/* --- tests: sessions ----------------------------------------------- */

static void
login_sets_a_hardened_cookie_and_the_session_answers(void **state)
{
	char id[64], sc[512], attr[64];
	const char *p, *e;
	int path = 0, httponly = 0, samesite = 0, secure = 0;
	const cJSON *u;
	struct h_resp r;
	struct sess s;
	sqlite3 *db;
	cJSON *j;

	(void)state;
	org_new("au-login");
	user_new_pw("au-login", "ada@login.test", "admin", PW, id, sizeof(id));
	post_login("au-login", "198.18.0.1", "ada@login.test", PW, &s, &r);
	want(&r, 200);
	assert_int_equal(h_header(&r, "Set-Cookie", sc, sizeof(sc)), 0);
	for (p = strchr(sc, ';'); p != NULL; p = e) {
		p++;
		while (*p == ' ')
			p++;
		e = strchr(p, ';');
		snprintf(attr, sizeof(attr), "%.*s", (int)(e ? e - p : (ptrdiff_t)strlen(p)), p);
		path |= strcmp(attr, "Path=/api/") == 0;
		httponly |= strcasecmp(attr, "HttpOnly") == 0;
		samesite |= strcmp(attr, "SameSite=Strict") == 0;
		secure |= strcasecmp(attr, "Secure") == 0;
	}
	if (!path || !httponly || !samesite)
		fail_msg("Set-Cookie lacks Path=/api/, HttpOnly or SameSite=Strict: %s", sc);
	if (secure)
		fail_msg("Set-Cookie has Secure in the loopback development mode: %s", sc);
	j = jparse_text(r.body, r.status);
	assert_false(jbool(j, "mfa_required"));
	assert_true(strlen(jstr(j, "csrf_token")) >= 16);
	u = jobj(j, "user");
	assert_string_equal(jstr(u, "id"), id);
	assert_string_equal(jstr(u, "email"), "ada@login.test");
	assert_string_equal(jstr(u, "name"), "Name of ada@login.test");
	assert_string_equal(jstr(u, "role"), "admin");
	assert_false(jbool(u, "mfa_enabled"));
	assert_false(jbool(u, "disabled"));
	assert_int_equal(jint(u, "version"), 1);
	p = jstr(u, "created_at");
	assert_true(strlen(p) >= 20 && p[10] == 'T' && p[strlen(p) - 1] == 'Z');
	assert_null(strstr(r.body, "password"));
	assert_null(strstr(r.body, "argon2"));
	assert_null(strstr(r.body, PW));
	assert_null(strstr(r.body, s.token)); /* the token travels only in the cookie */
	cJSON_Delete(j);
	h_resp_free(&r);

	j = sok(&s, "GET", "/session", NULL, 200);
	assert_string_equal(jstr(jobj(j, "user"), "id"), id);
	assert_string_equal(jstr(j, "csrf_token"), s.csrf);
	assert_false(jbool(j, "mfa_required"));
	p = jstr(j, "expires_at");
	assert_true(strlen(p) >= 20 && p[10] == 'T' && p[strlen(p) - 1] == 'Z');
	cJSON_Delete(j);

	assert_null(sok(&s, "DELETE", "/session", NULL, 204));
	serr(&s, "GET", "/session", NULL, 401, "unauthenticated");
	serr(&s, "DELETE", "/session", NULL, 401, "unauthenticated");

	db = org_db("au-login");
	assert_true(q_ll_bind(db, "SELECT count(*) FROM auth_events WHERE kind = 'login' AND user_id = ?1", id, NULL) >= 1);
	assert_true(q_ll_bind(db, "SELECT count(*) FROM auth_events WHERE kind = 'logout' AND user_id = ?1", id, NULL) >= 1);
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM sessions WHERE user_id = ?1", id, NULL), 0);
	idb_db_close(db);
}

static void
session_bad_cookies_are_401_and_login_ignores_a_planted_one(void **state)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	struct sess s, bad;
	char hex[2 * sizeof(h) + 1], flipped[sizeof(s.token)], planted[128];
	struct h_resp r;
	const char *path = "/api/v1/orgs/au-cookie/session";
	sqlite3 *db;

	(void)state;
	org_new("au-cookie");
	user_new_pw("au-cookie", "cy@cookie.test", "member", PW, NULL, 0);
	login_pw("au-cookie", "198.18.0.2", "cy@cookie.test", PW, &s);

	raw("GET", path, s.ip, NULL, NULL, NULL, &r);
	werr(&r, 401, "unauthenticated");
	raw("GET", path, s.ip, "garbage", NULL, NULL, &r);
	werr(&r, 401, "unauthenticated");
	raw("GET", path, s.ip, "", NULL, NULL, &r);
	werr(&r, 401, "unauthenticated");
	raw("GET", path, s.ip, rep('A', 43), NULL, NULL, &r);
	werr(&r, 401, "unauthenticated");
	raw("GET", path, s.ip, rep('A', 4000), NULL, NULL, &r);
	werr(&r, 401, "unauthenticated");
	snprintf(flipped, sizeof(flipped), "%s", s.token);
	flipped[strlen(flipped) - 2] = flipped[strlen(flipped) - 2] == 'A' ? 'B' : 'A';
	raw("GET", path, s.ip, flipped, NULL, NULL, &r);
	werr(&r, 401, "unauthenticated");
	/* What the server stores is no key: presenting the stored hash gets nothing. */
	db = org_db("au-cookie");
	sess_hash(db, s.token, h);
	idb_db_close(db);
	idb_hex(h, sizeof(h), hex);
	raw("GET", path, s.ip, hex, NULL, NULL, &r);
	werr(&r, 401, "unauthenticated");
	raw("GET", path, s.ip, F("%.*s%s", (int)(tok_rand(s.token) - s.token), s.token, hex), NULL, NULL, &r);
	werr(&r, 401, "unauthenticated");
	/* The token under another cookie name is not a session. */
	{
		const char *hdr[] = {F("Cookie: other=%s", s.token), F("X-Forwarded-For: %s", s.ip), NULL};

		assert_int_equal(h_http(&env, "GET", path, hdr, NULL, 0, &r), 0);
		werr(&r, 401, "unauthenticated");
	}
	/* The real one still works. */
	cJSON_Delete(sok(&s, "GET", "/session", NULL, 200));

	/* No fixation: a login that arrives with a cookie gets a fresh token, and the planted one stays dead. */
	snprintf(planted, sizeof(planted), "%.*s%s", (int)(tok_rand(s.token) - s.token), s.token, rep('Q', 43));
	raw("POST", path, "198.18.0.2", planted, NULL, F("{\"email\":\"cy@cookie.test\",\"password\":\"%s\"}", PW),
	    &r);
	want(&r, 200);
	assert_int_equal(take_cookie(&r, bad.token, sizeof(bad.token)), 0);
	assert_string_not_equal(bad.token, planted);
	assert_string_not_equal(bad.token, s.token);
	h_resp_free(&r);
	raw("GET", path, "198.18.0.2", planted, NULL, NULL, &r);
	werr(&r, 401, "unauthenticated");
}

static void
server_keeps_only_the_sha256_of_the_token(void **state)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char id[64], buf[256];
	struct sess s;
	sqlite3 *db;

	(void)state;
	org_new("au-hash");
	user_new_pw("au-hash", "hu@hash.test", "member", PW, id, sizeof(id));
	login_pw("au-hash", "198.18.0.3", "hu@hash.test", PW, &s);
	db = org_db("au-hash");
	sess_hash(db, s.token, h);
	assert_int_equal(sess_rows(db, s.token, strlen(s.token)), 0);
	assert_int_equal(sess_rows(db, tok_rand(s.token), strlen(tok_rand(s.token))), 0);
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM sessions WHERE CAST(token_hash AS TEXT) = ?1", s.token, NULL),
	                 0);
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM sessions WHERE length(token_hash) <> 32", NULL, NULL), 0);
	db_has_no(db, tok_rand(s.token));
	db_has_no(db, PW);
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM sessions WHERE user_id = ?1", id, NULL), 1);
	q_text(db, "SELECT ip FROM sessions WHERE user_id = ?1", id, buf, sizeof(buf));
	assert_string_equal(buf, "198.18.0.3");
	q_text(db, "SELECT csrf_token FROM sessions WHERE user_id = ?1", id, buf, sizeof(buf));
	assert_string_equal(buf, s.csrf);
	assert_int_equal(q_ll_bind(db, "SELECT mfa_pending FROM sessions WHERE user_id = ?1", id, NULL), 0);
	assert_int_equal(q_ll_bind(db, "SELECT expires_at - created_at FROM sessions WHERE user_id = ?1", id, NULL),
	                 ABSOLUTE_S);
	assert_true(llabs(q_ll_bind(db, "SELECT created_at FROM sessions WHERE user_id = ?1", id, NULL) -
	                  (long long)time(NULL)) < 60);
	/* The password is stored as an Argon2id hash. */
	q_text(db, "SELECT password_hash FROM users WHERE id = ?1", id, buf, sizeof(buf));
	assert_int_equal(strncmp(buf, "$argon2id$", 10), 0);
	idb_db_close(db);
	file_has_no("au-hash", tok_rand(s.token));
	file_has_no("au-hash", PW);
}

static void
idle_sessions_expire_after_the_org_setting(void **state)
{
	struct sess s, a;
	long long now, v;
	cJSON *j;

	(void)state;
	org_new("au-idle");
	user_new_pw("au-idle", "id@idle.test", "admin", PW, NULL, 0);
	login_pw("au-idle", "198.18.0.4", "id@idle.test", PW, &s);
	/* 29 minutes idle: still alive (and the use refreshes it). */
	now = (long long)time(NULL);
	sess_update("au-idle", s.token, "UPDATE sessions SET last_seen = ?2 WHERE token_hash = ?1",
	            now - 29 * 60, 0);
	cJSON_Delete(sok(&s, "GET", "/session", NULL, 200));
	/* -bad: 31 minutes idle (default 30): gone, for reads and for writes. */
	now = (long long)time(NULL);
	sess_update("au-idle", s.token, "UPDATE sessions SET last_seen = ?2 WHERE token_hash = ?1",
	            now - IDLE_DEFAULT_S - 60, 0);
	serr(&s, "GET", "/session", NULL, 401, "unauthenticated");
	serr(&s, "GET", "/users", NULL, 401, "unauthenticated");

	/* The org's own idle limit applies: 5 minutes. */
	login_pw("au-idle", "198.18.0.4", "id@idle.test", PW, &a);
	j = sok(&a, "GET", "/settings", NULL, 200);
	assert_int_equal(jint(j, "session_idle_minutes"), 30);
	v = jint(j, "version");
	cJSON_Delete(j);
	j = sok(&a, "PATCH", "/settings", F("{\"version\":%lld,\"session_idle_minutes\":5}", v), 200);
	assert_int_equal(jint(j, "session_idle_minutes"), 5);
	cJSON_Delete(j);
	now = (long long)time(NULL);
	sess_update("au-idle", a.token, "UPDATE sessions SET last_seen = ?2 WHERE token_hash = ?1",
	            now - 4 * 60, 0);
	cJSON_Delete(sok(&a, "GET", "/session", NULL, 200));
	now = (long long)time(NULL);
	sess_update("au-idle", a.token, "UPDATE sessions SET last_seen = ?2 WHERE token_hash = ?1",
	            now - 6 * 60, 0);
	serr(&a, "GET", "/session", NULL, 401, "unauthenticated");
	serr(&a, "DELETE", "/session", NULL, 401, "unauthenticated");
}

static void
sessions_end_12_hours_after_login_however_busy(void **state)
{
	struct sess s, t;
	long long now;

	(void)state;
	org_new("au-abs");
	user_new_pw("au-abs", "ab@abs.test", "member", PW, NULL, 0);
	login_pw("au-abs", "198.18.0.5", "ab@abs.test", PW, &s);
	login_pw("au-abs", "198.18.0.5", "ab@abs.test", PW, &t);
	/* Logged in 12 h - 1 min ago, used just now: alive. */
	now = (long long)time(NULL);
	sess_update("au-abs", s.token,
	            "UPDATE sessions SET created_at = ?2, expires_at = ?3, last_seen = " NOW_SQL " WHERE token_hash = ?1",
	            now - ABSOLUTE_S + 60, now + 60);
	cJSON_Delete(sok(&s, "GET", "/session", NULL, 200));
	/* -bad: logged in 12 h + 1 min ago, used just now: gone. */
	now = (long long)time(NULL);
	sess_update("au-abs", s.token,
	            "UPDATE sessions SET created_at = ?2, expires_at = ?3, last_seen = " NOW_SQL " WHERE token_hash = ?1",
	            now - ABSOLUTE_S - 60, now - 60);
	serr(&s, "GET", "/session", NULL, 401, "unauthenticated");
	/* The other session of the same user is untouched. */
	cJSON_Delete(sok(&t, "GET", "/session", NULL, 200));
}

/* --- tests: CSRF --------------------------------------------------- */

static void
csrf_bad_missing_wrong_or_foreign_token_is_403_and_changes_nothing(void **state)
{
	char id[64], longer[300], usub[96];
	struct sess s, other;
	struct h_resp r;
	cJSON *j;
	size_t i, k;
	const char *csrfs[6];
	struct {
		const char *method, *sub, *body;
	} calls[] = {
	    {"PATCH", "/settings", "{\"version\":1,\"name\":\"Hacked\"}"},
	    {"POST", "/users",
	     "{\"email\":\"x@csrf.test\",\"name\":\"X\",\"role\":\"admin\",\"password\":\"" PW "\"}"},
	    {"PATCH", NULL, "{\"version\":1,\"name\":\"Hacked\"}"},
	    {"POST", "/me/password", "{\"current_password\":\"" PW "\",\"new_password\":\"" PW2 "\"}"},
	    {"POST", "/me/mfa/totp", NULL},
	    {"DELETE", "/session", NULL},
	};

	(void)state;
	org_new("au-csrf");
	user_new_pw("au-csrf", "cs@csrf.test", "admin", PW, id, sizeof(id));
	login_pw("au-csrf", "198.18.0.6", "cs@csrf.test", PW, &s);
	login_pw("au-csrf", "198.18.0.6", "cs@csrf.test", PW, &other);
	assert_string_not_equal(s.csrf, other.csrf);
	snprintf(longer, sizeof(longer), "%sx", s.csrf);
	csrfs[0] = NULL;        /* missing */
	csrfs[1] = "";          /* empty */
	csrfs[2] = "wrong";     /* wrong */
	csrfs[3] = other.csrf;  /* another session's */
	csrfs[4] = longer;      /* the right one and more */
	csrfs[5] = s.token;     /* the session token itself */
	snprintf(usub, sizeof(usub), "/users/%s", id);
	calls[2].sub = usub; /* not F(): the ring would reuse it during the loop */
	for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
		for (k = 0; k < 6; k++) {
			sreq_csrf(&s, calls[i].method, calls[i].sub, csrfs[k], calls[i].body, &r);
			if (r.status != 403)
				fail_msg("%s %s with CSRF #%zu: %ld %s", calls[i].method, calls[i].sub, k, r.status, r.body);
			werr(&r, 403, "csrf_failed");
		}
	/* Nothing changed: still one user, settings at version 1, both sessions alive, old password good. */
	j = sok(&s, "GET", "/users", NULL, 200); /* a GET needs no token */
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 1);
	assert_int_equal(jint(cJSON_GetArrayItem(jarr(j, "items"), 0), "version"), 1);
	cJSON_Delete(j);
	j = sok(&s, "GET", "/settings", NULL, 200);
	assert_int_equal(jint(j, "version"), 1);
	assert_string_equal(jstr(j, "name"), "au-csrf LLP");
	cJSON_Delete(j);
	j = sok(&s, "GET", "/session", NULL, 200);
	assert_false(jbool(jobj(j, "user"), "mfa_enabled"));
	cJSON_Delete(j);
	cJSON_Delete(sok(&other, "GET", "/session", NULL, 200));

	/* The right token works, and each session's token works only for it. */
	j = sok(&s, "PATCH", "/settings", "{\"version\":1,\"name\":\"Renamed\"}", 200);
	assert_int_equal(jint(j, "version"), 2);
	cJSON_Delete(j);
	assert_null(sok(&other, "DELETE", "/session", NULL, 204));
	cJSON_Delete(sok(&s, "GET", "/session", NULL, 200));
}

/* --- tests: passwords and login bodies ----------------------------- */

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

static void
wrong_email_and_wrong_password_look_the_same(void **state)
{
	long long t_mail[4], t_pw[4], t0, m_mail, m_pw;
	char first[1024];
	struct h_resp r;
	struct sess s;
	int i;

	(void)state;
	org_new("au-same");
	user_new_pw("au-same", "sa@same.test", "member", PW, NULL, 0);
	/* Warm-up, so that the first Argon2id's allocation is not measured. */
	login_pw("au-same", "198.18.0.7", "sa@same.test", PW, &s);
	first[0] = '\0';
	for (i = 0; i < 4; i++) {
		t0 = h_now_ms();
		post_login("au-same", "198.18.0.7", F("nobody%d@same.test", i), PW, &s, &r);
		t_mail[i] = h_now_ms() - t0;
		assert_error(&r, 401, "invalid_credentials");
		if (first[0] == '\0')
			snprintf(first, sizeof(first), "%s", r.body);
		assert_string_equal(r.body, first);
		h_resp_free(&r);

		t0 = h_now_ms();
		post_login("au-same", "198.18.0.7", "sa@same.test", F("wrong password %d!", i), &s, &r);
		t_pw[i] = h_now_ms() - t0;
		assert_error(&r, 401, "invalid_credentials");
		assert_string_equal(r.body, first); /* byte-identical */
		h_resp_free(&r);
	}
	qsort(t_mail, 4, sizeof(t_mail[0]), cmp_ll);
	qsort(t_pw, 4, sizeof(t_pw[0]), cmp_ll);
	m_mail = (t_mail[1] + t_mail[2]) / 2 + 1;
	m_pw = (t_pw[1] + t_pw[2]) / 2 + 1;
	print_message("median wrong-email %lld ms, wrong-password %lld ms\n", m_mail, m_pw);
	if (m_mail * 2 < m_pw || m_pw * 2 < m_mail)
		fail_msg("wrong email (%lld ms) and wrong password (%lld ms) are distinguishable by time", m_mail, m_pw);
}

static void
login_bad_bodies_are_rejected_before_any_check(void **state)
{
	struct h_resp r;
	struct sess s;
	const char *path = "/api/v1/orgs/au-body/session", *ip = "198.18.0.8";
	char *body;

	(void)state;
	org_new("au-body");
	user_new_pw("au-body", "bo@body.test", "member", PW, NULL, 0);
	raw("POST", path, ip, NULL, NULL, "not json", &r);
	werr(&r, 400, "invalid_json");
	raw("POST", path, ip, NULL, NULL, "[\"bo@body.test\"]", &r);
	werr(&r, 400, "invalid_json");
	raw("POST", path, ip, NULL, NULL, "{\"email\":\"b1@body.test\"}", &r);
	wfield(&r, "password");
	raw("POST", path, ip, NULL, NULL, "{\"password\":\"" PW "\"}", &r);
	wfield(&r, "email");
	raw("POST", path, ip, NULL, NULL, "{\"email\":\"b2@body.test\",\"password\":\"" PW "\",\"remember\":true}", &r);
	wfield(&r, "remember");
	raw("POST", path, ip, NULL, NULL, "{\"email\":42,\"password\":\"" PW "\"}", &r);
	wfield(&r, "email");
	/* Over-long: an email of 255 characters, a password of 1025. */
	raw("POST", path, ip, NULL, NULL, F("{\"email\":\"%s@body.test\",\"password\":\"%s\"}", rep('e', 255 - 10), PW),
	    &r);
	wfield(&r, "email");
	body = malloc(2048);
	assert_non_null(body);
	snprintf(body, 2048, "{\"email\":\"b3@body.test\",\"password\":\"%s\"}", rep('p', 1025));
	raw("POST", path, ip, NULL, NULL, body, &r);
	free(body);
	wfield(&r, "password");
	/* None of that locked anything: the user logs in from the same address. */
	login_pw("au-body", ip, "bo@body.test", PW, &s);
}

static void
needs_rehash_upgrades_a_weak_hash_on_login(void **state)
{
	char id[64], weak[crypto_pwhash_STRBYTES], now_hash[256];
	struct sess s;
	sqlite3 *db;
	sqlite3_stmt *st = NULL;

	(void)state;
	org_new("au-rehash");
	user_new_pw("au-rehash", "re@rehash.test", "member", PW, id, sizeof(id));
	assert_int_equal(crypto_pwhash_str(weak, PW, strlen(PW), crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN),
	                 0);
	db = org_db("au-rehash");
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE users SET password_hash = ?1 WHERE id = ?2", -1, &st, NULL),
	                 SQLITE_OK);
	sqlite3_bind_text(st, 1, weak, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	idb_db_close(db);

	/* -bad: a wrong password does not touch the hash. */
	login_err("au-rehash", "198.18.0.9", "re@rehash.test", "not the password", 401, "invalid_credentials");
	db = org_db("au-rehash");
	q_text(db, "SELECT password_hash FROM users WHERE id = ?1", id, now_hash, sizeof(now_hash));
	idb_db_close(db);
	assert_string_equal(now_hash, weak);

	/* The right one logs in and leaves a hash at today's cost. */
	login_pw("au-rehash", "198.18.0.9", "re@rehash.test", PW, &s);
	db = org_db("au-rehash");
	q_text(db, "SELECT password_hash FROM users WHERE id = ?1", id, now_hash, sizeof(now_hash));
	idb_db_close(db);
	assert_string_not_equal(now_hash, weak);
	assert_int_equal(strncmp(now_hash, "$argon2id$", 10), 0);
	assert_int_equal(crypto_pwhash_str_verify(now_hash, PW, strlen(PW)), 0);
	assert_int_equal(crypto_pwhash_str_needs_rehash(now_hash, IDB_PW_OPSLIMIT, IDB_PW_MEMLIMIT), 0);
	login_pw("au-rehash", "198.18.0.9", "re@rehash.test", PW, &s);
}

static void
password_change_ends_the_other_sessions(void **state)
{
	struct sess s1, s2, s3;

	(void)state;
	org_new("au-pw");
	user_new_pw("au-pw", "pw@pw.test", "member", PW, NULL, 0);
	login_pw("au-pw", "198.18.0.28", "pw@pw.test", PW, &s1);
	login_pw("au-pw", "198.18.0.28", "pw@pw.test", PW, &s2);
	assert_null(sok(&s1, "POST", "/me/password",
	                "{\"current_password\":\"" PW "\",\"new_password\":\"" PW2 "\"}", 204));
	serr(&s2, "GET", "/session", NULL, 401, "unauthenticated");
	cJSON_Delete(sok(&s1, "GET", "/session", NULL, 200));
	login_err("au-pw", "198.18.0.28", "pw@pw.test", PW, 401, "invalid_credentials");
	login_pw("au-pw", "198.18.0.28", "pw@pw.test", PW2, &s3);
	cJSON_Delete(sok(&s1, "GET", "/session", NULL, 200));
}

static void
password_change_bad_changes_nothing(void **state)
{
	struct sess s1, s2;
	struct h_resp r;
	char *body;

	(void)state;
	org_new("au-pwbad");
	user_new_pw("au-pwbad", "pb@pwbad.test", "readonly", PW, NULL, 0);
	login_pw("au-pwbad", "198.18.0.29", "pb@pwbad.test", PW, &s1);
	login_pw("au-pwbad", "198.18.0.29", "pb@pwbad.test", PW, &s2);
	serr(&s1, "POST", "/me/password", "{\"current_password\":\"not the password\",\"new_password\":\"" PW2 "\"}",
	     401, "invalid_credentials");
	sreq(&s1, "POST", "/me/password", "{\"current_password\":\"" PW "\",\"new_password\":\"elevenchars\"}", &r);
	wfield(&r, "new_password");
	body = malloc(2048);
	assert_non_null(body);
	snprintf(body, 2048, "{\"current_password\":\"" PW "\",\"new_password\":\"%s\"}", rep('n', 1025));
	sreq(&s1, "POST", "/me/password", body, &r);
	free(body);
	wfield(&r, "new_password");
	sreq(&s1, "POST", "/me/password", "{\"new_password\":\"" PW2 "\"}", &r);
	wfield(&r, "current_password");
	sreq(&s1, "POST", "/me/password", "{\"current_password\":\"" PW "\"}", &r);
	wfield(&r, "new_password");
	sreq(&s1, "POST", "/me/password",
	     "{\"current_password\":\"" PW "\",\"new_password\":\"" PW2 "\",\"user_id\":\"x\"}", &r);
	wfield(&r, "user_id");
	sreq(&s1, "POST", "/me/password", "{\"current_password\":\"" PW "\",\"new_password\":12345678901234}", &r);
	wfield(&r, "new_password");
	/* Nothing happened: the other session lives and the old password still works. */
	cJSON_Delete(sok(&s2, "GET", "/session", NULL, 200));
	cJSON_Delete(sok(&s1, "GET", "/session", NULL, 200));
	login_pw("au-pwbad", "198.18.0.29", "pb@pwbad.test", PW, &s2);
}

/* --- tests: throttling --------------------------------------------- */

static void
assert_retry_after(const struct h_resp *r)
{
	char ra[32];
	long long v;

	assert_int_equal(h_header(r, "Retry-After", ra, sizeof(ra)), 0);
	if (idb_parse_ll(ra, 1, THROTTLE_WINDOW_S, &v) != 0)
		fail_msg("Retry-After is not 1..900 seconds: '%s'", ra);
}

static void
five_failures_lock_the_email_even_for_the_right_password(void **state)
{
	struct h_resp r;
	struct sess s;
	sqlite3 *db;
	long long now;
	int i;

	(void)state;
	org_new("au-lock");
	user_new_pw("au-lock", "vi@lock.test", "member", PW, NULL, 0);
	user_new_pw("au-lock", "by@lock.test", "member", PW, NULL, 0);
	for (i = 0; i < 5; i++)
		login_err("au-lock", "198.18.0.10", "vi@lock.test", F("wrong password %d", i), 401, "invalid_credentials");
	/* The sixth attempt, with the right password. */
	post_login("au-lock", "198.18.0.10", "vi@lock.test", PW, &s, &r);
	assert_error(&r, 429, "too_many_requests");
	assert_retry_after(&r);
	assert_int_equal(h_header(&r, "Set-Cookie", (char[8]){0}, 8), -1);
	h_resp_free(&r);
	/* The email is locked from everywhere, whatever its case. */
	post_login("au-lock", "198.18.0.11", "vi@lock.test", PW, &s, &r);
	assert_error(&r, 429, "too_many_requests");
	assert_retry_after(&r);
	h_resp_free(&r);
	login_err("au-lock", "198.18.0.11", "VI@Lock.Test", PW, 429, "too_many_requests");
	/* Another user from the same address is not. */
	login_pw("au-lock", "198.18.0.10", "by@lock.test", PW, &s);

	now = (long long)time(NULL);
	db = org_db("au-lock");
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM lockouts WHERE kind = 'email' AND subject = ?1", "vi@lock.test",
	                           NULL),
	                 1);
	assert_true(q_ll_bind(db, "SELECT until FROM lockouts WHERE kind = 'email' AND subject = ?1", "vi@lock.test",
	                      NULL) > now);
	assert_true(q_ll_bind(db, "SELECT until FROM lockouts WHERE kind = 'email' AND subject = ?1", "vi@lock.test",
	                      NULL) <= now + THROTTLE_WINDOW_S + 5);
	assert_true(q_ll_bind(db, "SELECT count(*) FROM auth_events WHERE kind = 'lockout'", NULL, NULL) >= 1);
	assert_true(q_ll_bind(db, "SELECT count(*) FROM auth_events WHERE kind = 'login_failed' AND email = ?1",
	                      "vi@lock.test", NULL) >= 5);
	assert_true(q_ll_bind(db, "SELECT count(*) FROM login_attempts WHERE ok = 0 AND email = ?1", "vi@lock.test", NULL) >=
	            5);
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM lockouts WHERE kind = 'ip'", NULL, NULL), 0);
	idb_db_close(db);
}

static void
twenty_failures_from_one_address_lock_the_address(void **state)
{
	struct h_resp r;
	struct sess s;
	sqlite3 *db;
	int i;

	(void)state;
	org_new("au-iplock");
	user_new_pw("au-iplock", "ip@iplock.test", "member", PW, NULL, 0);
	/* 20 failures spread over 20 emails: no email reaches its own limit. */
	for (i = 0; i < 20; i++)
		login_err("au-iplock", "198.18.0.12", F("nobody%02d@iplock.test", i), PW, 401, "invalid_credentials");
	post_login("au-iplock", "198.18.0.12", "ip@iplock.test", PW, &s, &r);
	assert_error(&r, 429, "too_many_requests");
	assert_retry_after(&r);
	h_resp_free(&r);
	/* The same user from another address gets in. */
	login_pw("au-iplock", "198.18.0.13", "ip@iplock.test", PW, &s);
	db = org_db("au-iplock");
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM lockouts WHERE kind = 'ip' AND subject = ?1", "198.18.0.12",
	                           NULL),
	                 1);
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM lockouts WHERE kind = 'email'", NULL, NULL), 0);
	assert_true(q_ll_bind(db, "SELECT count(*) FROM auth_events WHERE kind = 'lockout' AND ip = ?1", "198.18.0.12",
	                      NULL) >= 1);
	idb_db_close(db);
}

static void
wrong_mfa_codes_count_toward_the_email_throttle(void **state)
{
	char secret[64], code[16], bad[16];
	struct sess s, p, f;
	struct h_resp r;
	sqlite3 *db;
	int i;

	(void)state;
	org_new("au-mfalock");
	user_new_pw("au-mfalock", "ml@mfalock.test", "member", PW, NULL, 0);
	login_pw("au-mfalock", "198.18.0.14", "ml@mfalock.test", PW, &s);
	totp_enroll(&s, "ml@mfalock.test", secret);
	step_guard(10);
	totp(secret, -1, code);
	totp_confirm(&s, code, NULL);
	totp_wrong(secret, bad);
	/* Five wrong codes on one pending session ... */
	login_pending("au-mfalock", "198.18.0.14", "ml@mfalock.test", PW, &p);
	for (i = 0; i < 5; i++) {
		mfa_step(&p, F("{\"code\":\"%s\"}", bad), &f, &r);
		werr(&r, 401, "invalid_credentials");
	}
	/* ... and the pending session cannot go on guessing, even with the right code, */
	totp(secret, 0, code);
	mfa_step(&p, F("{\"code\":\"%s\"}", code), &f, &r);
	assert_error(&r, 429, "too_many_requests");
	assert_retry_after(&r);
	h_resp_free(&r);
	/* nor can a new login with the right password. */
	login_err("au-mfalock", "198.18.0.14", "ml@mfalock.test", PW, 429, "too_many_requests");
	db = org_db("au-mfalock");
	assert_true(q_ll_bind(db, "SELECT count(*) FROM auth_events WHERE kind = 'mfa_failed'", NULL, NULL) >= 5);
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM lockouts WHERE kind = 'email' AND subject = ?1",
	                           "ml@mfalock.test", NULL),
	                 1);
	idb_db_close(db);
}

/* --- tests: TOTP --------------------------------------------------- */

static void
totp_enroll_confirm_and_log_in_with_a_second_factor(void **state)
{
	char secret[64], code[16], next[16], bad[16], codes[10][32], plain[32];
	struct sess s, again, p, f;
	struct h_resp r;
	sqlite3 *db;
	cJSON *j;
	int i;

	(void)state;
	org_new("au-totp");
	user_new_pw("au-totp", "to@totp.test", "admin", PW, NULL, 0);
	login_pw("au-totp", "198.18.0.15", "to@totp.test", PW, &s);
	totp_enroll(&s, "to@totp.test", secret);
	/* Pending until confirmed: the user has no second factor yet. */
	j = sok(&s, "GET", "/session", NULL, 200);
	assert_false(jbool(jobj(j, "user"), "mfa_enabled"));
	cJSON_Delete(j);
	login_pw("au-totp", "198.18.0.15", "to@totp.test", PW, &again);
	/* -bad: a wrong code, or a malformed one, does not confirm. */
	totp_wrong(secret, bad);
	serr(&s, "POST", "/me/mfa/totp/confirm", F("{\"code\":\"%s\"}", bad), 401, "invalid_credentials");
	step_guard(8);
	totp(secret, 0, code);
	totp(secret, 1, next);
	totp_confirm(&s, code, codes);
	j = sok(&s, "GET", "/session", NULL, 200);
	assert_true(jbool(jobj(j, "user"), "mfa_enabled"));
	cJSON_Delete(j);
	/* Recovery codes are stored hashed: nowhere in the database in clear. */
	db = org_db("au-totp");
	for (i = 0; i < 10; i++) {
		db_has_no(db, codes[i]);
		snprintf(plain, sizeof(plain), "%.4s%.4s%.4s", codes[i], codes[i] + 5, codes[i] + 10);
		db_has_no(db, plain);
	}
	idb_db_close(db);

	/* Password alone now gives a pending session that can do nothing else. */
	login_pending("au-totp", "198.18.0.15", "to@totp.test", PW, &p);
	serr(&p, "GET", "/session", NULL, 401, "mfa_required");
	serr(&p, "GET", "/users", NULL, 401, "mfa_required");
	serr(&p, "GET", "/settings", NULL, 401, "mfa_required");
	serr(&p, "POST", "/me/mfa/totp", NULL, 401, "mfa_required");
	serr(&p, "POST", "/me/password", "{\"current_password\":\"" PW "\",\"new_password\":\"" PW2 "\"}", 401,
	     "mfa_required");
	/* -bad: the second step needs the pending session's CSRF token too. */
	sreq_csrf(&p, "POST", "/session/mfa", NULL, F("{\"code\":\"%s\"}", next), &r);
	werr(&r, 403, "csrf_failed");
	sreq_csrf(&p, "POST", "/session/mfa", s.csrf, F("{\"code\":\"%s\"}", next), &r);
	werr(&r, 403, "csrf_failed");
	/* -bad: without any session, the second step is not a login. */
	raw("POST", "/api/v1/orgs/au-totp/session/mfa", p.ip, NULL, p.csrf, F("{\"code\":\"%s\"}", next), &r);
	werr(&r, 401, "unauthenticated");

	mfa_step(&p, F("{\"code\":\"%s\"}", next), &f, &r);
	want(&r, 200);
	h_resp_free(&r);
	/* The pending token is dead; the new one is a full session. */
	serr(&p, "GET", "/session", NULL, 401, "unauthenticated");
	db = org_db("au-totp");
	assert_int_equal(sess_rows_of(db, p.token), 0);
	assert_int_equal(sess_rows_of(db, f.token), 1);
	idb_db_close(db);
	j = sok(&f, "GET", "/session", NULL, 200);
	assert_false(jbool(j, "mfa_required"));
	assert_true(jbool(jobj(j, "user"), "mfa_enabled"));
	cJSON_Delete(j);
	j = sok(&f, "GET", "/users", NULL, 200);
	cJSON_Delete(j);
	/* The sessions made before the second factor existed go on. */
	cJSON_Delete(sok(&s, "GET", "/session", NULL, 200));
}

static void
totp_codes_more_than_one_step_away_are_refused(void **state)
{
	char secret[64], prev[16], next[16], far_past[16], far_future[16];
	struct sess s, f;
	struct h_resp r;

	(void)state;
	org_new("au-window");
	user_new_pw("au-window", "wi@window.test", "member", PW, NULL, 0);
	login_pw("au-window", "198.18.0.16", "wi@window.test", PW, &s);
	totp_enroll(&s, "wi@window.test", secret);
	step_guard(10);
	totp(secret, -1, prev);
	totp(secret, 1, next);
	totp(secret, -3, far_past);
	totp(secret, 3, far_future);
	/* -bad: three steps away either side does not confirm. */
	if (strcmp(far_past, prev) != 0 && strcmp(far_past, next) != 0) {
		sreq(&s, "POST", "/me/mfa/totp/confirm", F("{\"code\":\"%s\"}", far_past), &r);
		werr(&r, 401, "invalid_credentials");
	}
	if (strcmp(far_future, prev) != 0 && strcmp(far_future, next) != 0) {
		sreq(&s, "POST", "/me/mfa/totp/confirm", F("{\"code\":\"%s\"}", far_future), &r);
		werr(&r, 401, "invalid_credentials");
	}
	/* One step back confirms. */
	totp_confirm(&s, prev, NULL);
	/* -bad: three steps ahead does not log in; one step ahead does. */
	if (strcmp(far_future, next) != 0)
		login_mfa_bad("au-window", "198.18.0.16", "wi@window.test", PW, F("{\"code\":\"%s\"}", far_future));
	login_mfa("au-window", "198.18.0.16", "wi@window.test", PW, next, &f);
	cJSON_Delete(sok(&f, "GET", "/session", NULL, 200));
}

static void
totp_step_cannot_be_used_twice(void **state)
{
	char secret[64], prev[16], code[16], next[16];
	struct sess s, f;

	(void)state;
	org_new("au-reuse");
	user_new_pw("au-reuse", "ru@reuse.test", "member", PW, NULL, 0);
	login_pw("au-reuse", "198.18.0.17", "ru@reuse.test", PW, &s);
	totp_enroll(&s, "ru@reuse.test", secret);
	step_guard(10);
	totp(secret, -1, prev);
	totp(secret, 0, code);
	totp(secret, 1, next);
	totp_confirm(&s, prev, NULL);
	login_mfa("au-reuse", "198.18.0.17", "ru@reuse.test", PW, code, &f);
	/* -bad: the same code (the same step) on a new login. */
	login_mfa_bad("au-reuse", "198.18.0.17", "ru@reuse.test", PW, F("{\"code\":\"%s\"}", code));
	/* The next step is still good once ... */
	login_mfa("au-reuse", "198.18.0.17", "ru@reuse.test", PW, next, &f);
	/* ... and then it, and the steps before it, are spent. */
	login_mfa_bad("au-reuse", "198.18.0.17", "ru@reuse.test", PW, F("{\"code\":\"%s\"}", next));
	if (strcmp(code, next) != 0)
		login_mfa_bad("au-reuse", "198.18.0.17", "ru@reuse.test", PW, F("{\"code\":\"%s\"}", code));
	cJSON_Delete(sok(&f, "GET", "/session", NULL, 200));
}

static void
recovery_codes_work_once_each(void **state)
{
	char secret[64], code[16], codes[10][32];
	struct sess s, p, f;
	struct h_resp r;
	cJSON *j;

	(void)state;
	org_new("au-recover");
	user_new_pw("au-recover", "rc@recover.test", "member", PW, NULL, 0);
	login_pw("au-recover", "198.18.0.18", "rc@recover.test", PW, &s);
	totp_enroll(&s, "rc@recover.test", secret);
	totp(secret, 0, code);
	totp_confirm(&s, code, codes);

	login_pending("au-recover", "198.18.0.18", "rc@recover.test", PW, &p);
	mfa_step(&p, F("{\"recovery_code\":\"%s\"}", codes[0]), &f, &r);
	want(&r, 200);
	h_resp_free(&r);
	serr(&p, "GET", "/session", NULL, 401, "unauthenticated");
	j = sok(&f, "GET", "/session", NULL, 200);
	assert_false(jbool(j, "mfa_required"));
	cJSON_Delete(j);
	/* -bad: the used code again; a code that was never issued. */
	login_mfa_bad("au-recover", "198.18.0.18", "rc@recover.test", PW,
	              F("{\"recovery_code\":\"%s\"}", codes[0]));
	login_mfa_bad("au-recover", "198.18.0.18", "rc@recover.test", PW, "{\"recovery_code\":\"aaaa-bbbb-cccc\"}");
	/* Another one of the ten still works. */
	login_pending("au-recover", "198.18.0.18", "rc@recover.test", PW, &p);
	mfa_step(&p, F("{\"recovery_code\":\"%s\"}", codes[9]), &f, &r);
	want(&r, 200);
	h_resp_free(&r);
	cJSON_Delete(sok(&f, "GET", "/session", NULL, 200));
}

static void
totp_disable_needs_a_valid_code(void **state)
{
	char secret[64], prev[16], code[16], next[16], bad[16];
	struct sess s, f, g;
	struct h_resp r;
	cJSON *j;

	(void)state;
	org_new("au-disable");
	user_new_pw("au-disable", "di@disable.test", "member", PW, NULL, 0);
	login_pw("au-disable", "198.18.0.19", "di@disable.test", PW, &s);
	totp_enroll(&s, "di@disable.test", secret);
	step_guard(10);
	totp(secret, -1, prev);
	totp(secret, 0, code);
	totp(secret, 1, next);
	totp_wrong(secret, bad);
	totp_confirm(&s, prev, NULL);
	login_mfa("au-disable", "198.18.0.19", "di@disable.test", PW, code, &f);
	/* -bad: a wrong code, no code, no CSRF token. */
	serr(&f, "DELETE", "/me/mfa/totp", F("{\"code\":\"%s\"}", bad), 401, "invalid_credentials");
	sreq(&f, "DELETE", "/me/mfa/totp", "{}", &r);
	wfield(&r, "code");
	sreq_csrf(&f, "DELETE", "/me/mfa/totp", NULL, F("{\"code\":\"%s\"}", next), &r);
	werr(&r, 403, "csrf_failed");
	j = sok(&f, "GET", "/session", NULL, 200);
	assert_true(jbool(jobj(j, "user"), "mfa_enabled"));
	cJSON_Delete(j);
	/* A valid code turns it off; password alone is enough again. */
	assert_null(sok(&f, "DELETE", "/me/mfa/totp", F("{\"code\":\"%s\"}", next), 204));
	j = sok(&f, "GET", "/session", NULL, 200);
	assert_false(jbool(jobj(j, "user"), "mfa_enabled"));
	cJSON_Delete(j);
	login_pw("au-disable", "198.18.0.19", "di@disable.test", PW, &g);
}

static void
admin_resets_a_users_second_factor(void **state)
{
	char secret[64], code[16], mid[64], aid[64];
	struct sess a, m, m2;
	cJSON *j;

	(void)state;
	org_new("au-reset");
	user_new_pw("au-reset", "ad@reset.test", "admin", PW, aid, sizeof(aid));
	user_new_pw("au-reset", "me@reset.test", "member", PW, mid, sizeof(mid));
	login_pw("au-reset", "198.18.0.20", "ad@reset.test", PW, &a);
	login_pw("au-reset", "198.18.0.20", "me@reset.test", PW, &m);
	totp_enroll(&m, "me@reset.test", secret);
	totp(secret, 0, code);
	totp_confirm(&m, code, NULL);
	login_pending("au-reset", "198.18.0.20", "me@reset.test", PW, &m2);
	/* -bad: no CSRF token; an unknown user; a malformed id; a member may not. */
	{
		struct h_resp r;

		sreq_csrf(&a, "DELETE", F("/users/%s/mfa", mid), NULL, NULL, &r);
		werr(&r, 403, "csrf_failed");
	}
	serr(&a, "DELETE", F("/users/u_%s/mfa", rep('0', 32)), NULL, 404, "not_found");
	serr(&a, "DELETE", "/users/nope/mfa", NULL, 404, "not_found");
	serr(&m, "DELETE", F("/users/%s/mfa", mid), NULL, 403, "forbidden");
	j = sok(&a, "GET", "/users", NULL, 200);
	{
		const cJSON *it;
		int seen = 0;

		cJSON_ArrayForEach(it, jarr(j, "items")) if (strcmp(jstr(it, "id"), mid) == 0)
		{
			assert_true(jbool(it, "mfa_enabled"));
			seen = 1;
		}
		assert_true(seen);
	}
	cJSON_Delete(j);
	/* The reset: the member logs in with the password alone. */
	assert_null(sok(&a, "DELETE", F("/users/%s/mfa", mid), NULL, 204));
	login_pw("au-reset", "198.18.0.20", "me@reset.test", PW, &m2);
	j = sok(&m2, "GET", "/session", NULL, 200);
	assert_false(jbool(jobj(j, "user"), "mfa_enabled"));
	cJSON_Delete(j);
}

/* --- tests: require_mfa -------------------------------------------- */

static void
require_mfa_admits_only_enrollment_until_enrolled(void **state)
{
	char secret[64], prev[16], code[16], next[16];
	struct sess s, f;
	cJSON *j;

	(void)state;
	org_new("au-reqmfa");
	user_new_pw("au-reqmfa", "rq@reqmfa.test", "admin", PW, NULL, 0);
	assert_int_equal(org_set("au-reqmfa", "--require-mfa", "on"), 0);
	assert_int_not_equal(org_set("au-reqmfa", "--require-mfa", "maybe"), 0);
	login_pw("au-reqmfa", "198.18.0.21", "rq@reqmfa.test", PW, &s);
	j = sok(&s, "GET", "/session", NULL, 200);
	assert_false(jbool(j, "mfa_required"));
	cJSON_Delete(j);
	/* -bad: everything but the session and enrollment calls. */
	serr(&s, "GET", "/users", NULL, 403, "mfa_enrollment_required");
	serr(&s, "GET", "/settings", NULL, 403, "mfa_enrollment_required");
	serr(&s, "PATCH", "/settings", "{\"version\":1,\"require_mfa\":false}", 403, "mfa_enrollment_required");
	serr(&s, "POST", "/users", "{\"email\":\"n@reqmfa.test\",\"name\":\"N\",\"role\":\"admin\",\"password\":\"" PW "\"}",
	     403, "mfa_enrollment_required");
	serr(&s, "POST", "/me/password", "{\"current_password\":\"" PW "\",\"new_password\":\"" PW2 "\"}", 403,
	     "mfa_enrollment_required");
	/* Enrollment is allowed. */
	totp_enroll(&s, "rq@reqmfa.test", secret);
	step_guard(10);
	totp(secret, -1, prev);
	totp(secret, 0, code);
	totp(secret, 1, next);
	totp_confirm(&s, prev, NULL);
	login_mfa("au-reqmfa", "198.18.0.21", "rq@reqmfa.test", PW, code, &f);
	j = sok(&f, "GET", "/settings", NULL, 200);
	assert_true(jbool(j, "require_mfa"));
	cJSON_Delete(j);
	j = sok(&f, "GET", "/users", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 1);
	cJSON_Delete(j);
	/* -bad: the second factor cannot be switched off while the org requires it. */
	serr(&f, "DELETE", "/me/mfa/totp", F("{\"code\":\"%s\"}", next), 409, "conflict");
	j = sok(&f, "GET", "/session", NULL, 200);
	assert_true(jbool(jobj(j, "user"), "mfa_enabled"));
	cJSON_Delete(j);
	/* The old session may still log out. */
	assert_null(sok(&s, "DELETE", "/session", NULL, 204));
}

/* --- tests: IP allow-list ------------------------------------------ */

static void
ip_allowlist_admits_listed_v4_and_v6_and_refuses_the_rest(void **state)
{
	struct sess in, out, v6, t;
	struct h_resp r;
	const cJSON *list, *it;
	cJSON *j;
	int seen4 = 0, seen6 = 0;

	(void)state;
	org_new("au-ipallow");
	user_new_pw("au-ipallow", "ia@ipallow.test", "admin", PW, NULL, 0);
	login_pw("au-ipallow", "198.18.5.7", "ia@ipallow.test", PW, &in);
	login_pw("au-ipallow", "198.18.6.1", "ia@ipallow.test", PW, &out);
	assert_int_equal(org_set("au-ipallow", "--ip-allowlist", "198.18.5.0/24, 2001:db8:77::/48"), 0);

	/* -bad: outside, login included, and an existing session used from outside. */
	login_err("au-ipallow", "198.18.6.1", "ia@ipallow.test", PW, 403, "ip_not_allowed");
	login_err("au-ipallow", "198.18.6.1", "nobody@ipallow.test", "whatever it is", 403, "ip_not_allowed");
	login_err("au-ipallow", "2001:db8:78::1", "ia@ipallow.test", PW, 403, "ip_not_allowed");
	serr(&out, "GET", "/session", NULL, 403, "ip_not_allowed");
	serr(&out, "DELETE", "/session", NULL, 403, "ip_not_allowed");
	raw("GET", "/api/v1/orgs/au-ipallow/session", NULL, in.token, NULL, NULL, &r); /* loopback */
	werr(&r, 403, "ip_not_allowed");
	raw("GET", "/api/v1/orgs/au-ipallow/session", "198.18.6.1", in.token, NULL, NULL, &r);
	werr(&r, 403, "ip_not_allowed");

	/* Inside: IPv4 and IPv6. */
	cJSON_Delete(sok(&in, "GET", "/session", NULL, 200));
	login_pw("au-ipallow", "198.18.5.200", "ia@ipallow.test", PW, &t);
	login_pw("au-ipallow", "2001:db8:77::9", "ia@ipallow.test", PW, &v6);
	j = sok(&v6, "GET", "/settings", NULL, 200);
	list = jarr(j, "ip_allowlist");
	assert_int_equal(cJSON_GetArraySize(list), 2);
	cJSON_ArrayForEach(it, list)
	{
		assert_true(cJSON_IsString(it));
		seen4 |= strcmp(it->valuestring, "198.18.5.0/24") == 0;
		seen6 |= strcmp(it->valuestring, "2001:db8:77::/48") == 0;
	}
	assert_true(seen4 && seen6);
	cJSON_Delete(j);

	/* Bare addresses are single hosts. */
	assert_int_equal(org_set("au-ipallow", "--ip-allowlist", "2001:db8:99::5,198.18.5.7"), 0);
	login_pw("au-ipallow", "2001:db8:99::5", "ia@ipallow.test", PW, &t);
	cJSON_Delete(sok(&in, "GET", "/session", NULL, 200));
	login_err("au-ipallow", "2001:db8:99::6", "ia@ipallow.test", PW, 403, "ip_not_allowed");
	login_err("au-ipallow", "198.18.5.8", "ia@ipallow.test", PW, 403, "ip_not_allowed");
	serr(&v6, "GET", "/session", NULL, 403, "ip_not_allowed");

	/* Cleared: everyone is back in. */
	assert_int_equal(org_set("au-ipallow", "--ip-allowlist", ""), 0);
	login_pw("au-ipallow", "198.18.6.1", "ia@ipallow.test", PW, &t);
	cJSON_Delete(sok(&out, "GET", "/session", NULL, 200));
	cJSON_Delete(sok(&v6, "GET", "/session", NULL, 200));
}

static void
ip_allowlist_cli_bad_input_changes_nothing(void **state)
{
	static const char *const bad[] = {"10.0.0.1/33", "banana", "10.0.0.1/8", "::1/129", "198.18.7.0/24,banana",
	                                  "198.18.7.0/-1", "2001:db8::/48/1", "1.2.3", "2001:db8:::1"};
	char out[4096], err[4096];
	struct sess s;
	cJSON *j;
	size_t i;

	(void)state;
	org_new("au-ipcli");
	user_new_pw("au-ipcli", "ic@ipcli.test", "admin", PW, NULL, 0);
	assert_int_equal(org_set("au-ipcli", "--ip-allowlist", "198.18.7.0/24"), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (org_set("au-ipcli", "--ip-allowlist", bad[i]) != 1)
			fail_msg("org settings --ip-allowlist '%s' did not fail with 1", bad[i]);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "settings", "--org",
	                         "no-such-org", "--ip-allowlist", "", NULL),
	                 1);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "settings", "--org", "au-ipcli",
	                         "--ip-allowlist", NULL),
	                 2);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "settings", "--org", "au-ipcli",
	                         "--bogus", "1", NULL),
	                 2);
	/* Unchanged: the one good list. */
	login_pw("au-ipcli", "198.18.7.3", "ic@ipcli.test", PW, &s);
	j = sok(&s, "GET", "/settings", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "ip_allowlist")), 1);
	assert_string_equal(cJSON_GetArrayItem(jarr(j, "ip_allowlist"), 0)->valuestring, "198.18.7.0/24");
	cJSON_Delete(j);
	login_err("au-ipcli", "198.18.8.1", "ic@ipcli.test", PW, 403, "ip_not_allowed");
}

/* --- tests: settings ----------------------------------------------- */

static void
settings_read_and_patch_with_version(void **state)
{
	const cJSON *integ;
	struct sess s;
	struct h_resp r;
	cJSON *j;

	(void)state;
	org_new("au-settings");
	user_new_pw("au-settings", "se@settings.test", "admin", PW, NULL, 0);
	login_pw("au-settings", "198.18.0.22", "se@settings.test", PW, &s);
	j = sok(&s, "GET", "/settings", NULL, 200);
	assert_string_equal(jstr(j, "name"), "au-settings LLP");
	assert_false(jbool(j, "require_mfa"));
	assert_int_equal(cJSON_GetArraySize(jarr(j, "ip_allowlist")), 0);
	assert_int_equal(jint(j, "session_idle_minutes"), 30);
	assert_true(jbool(j, "notify_sysadmin_access"));
	assert_string_equal(jstr(j, "notify_updates"), "after");
	integ = jobj(j, "integrations");
	assert_false(jbool(integ, "google"));
	assert_false(jbool(integ, "microsoft"));
	assert_int_equal(jint(j, "version"), 1);
	cJSON_Delete(j);

	j = sok(&s, "PATCH", "/settings",
	        "{\"version\":1,\"name\":\"Renamed Immigration LLP\",\"session_idle_minutes\":45,"
	        "\"notify_updates\":\"before\",\"notify_sysadmin_access\":false,"
	        "\"ip_allowlist\":[\"198.18.0.0/24\",\"2001:db8::/32\"]}",
	        200);
	assert_string_equal(jstr(j, "name"), "Renamed Immigration LLP");
	assert_int_equal(jint(j, "session_idle_minutes"), 45);
	assert_string_equal(jstr(j, "notify_updates"), "before");
	assert_false(jbool(j, "notify_sysadmin_access"));
	assert_int_equal(cJSON_GetArraySize(jarr(j, "ip_allowlist")), 2);
	assert_int_equal(jint(j, "version"), 2);
	cJSON_Delete(j);

	/* -bad: a stale version, a missing one, not JSON: nothing changes. */
	serr(&s, "PATCH", "/settings", "{\"version\":1,\"name\":\"Stale\"}", 409, "conflict");
	sreq(&s, "PATCH", "/settings", "{\"name\":\"Versionless\"}", &r);
	wfield(&r, "version");
	serr(&s, "PATCH", "/settings", "{\"version\":2,", 400, "invalid_json");
	serr(&s, "PATCH", "/settings", "[2]", 400, "invalid_json");
	j = sok(&s, "GET", "/settings", NULL, 200);
	assert_string_equal(jstr(j, "name"), "Renamed Immigration LLP");
	assert_int_equal(jint(j, "version"), 2);
	cJSON_Delete(j);

	/* An empty list lifts the restriction. */
	j = sok(&s, "PATCH", "/settings", "{\"version\":2,\"ip_allowlist\":[]}", 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "ip_allowlist")), 0);
	assert_int_equal(jint(j, "version"), 3);
	assert_int_equal(jint(j, "session_idle_minutes"), 45);
	cJSON_Delete(j);
}

static void
settings_patch_bad_is_422_or_would_lock_out_and_changes_nothing(void **state)
{
	static const struct {
		const char *patch, *field;
	} bad[] = {
	    {"\"session_idle_minutes\":0", "session_idle_minutes"},
	    {"\"session_idle_minutes\":1441", "session_idle_minutes"},
	    {"\"session_idle_minutes\":\"30\"", "session_idle_minutes"},
	    {"\"session_idle_minutes\":30.5", "session_idle_minutes"},
	    {"\"notify_updates\":\"never\"", "notify_updates"},
	    {"\"notify_updates\":null", "notify_updates"},
	    {"\"colour\":\"blue\"", "colour"},
	    {"\"require_mfa\":\"yes\"", "require_mfa"},
	    {"\"require_mfa\":1", "require_mfa"},
	    {"\"notify_sysadmin_access\":\"no\"", "notify_sysadmin_access"},
	    {"\"name\":\"\"", "name"},
	    {"\"name\":7", "name"},
	    {"\"ip_allowlist\":[\"10.0.0.1/33\"]", "ip_allowlist"},
	    {"\"ip_allowlist\":[\"banana\"]", "ip_allowlist"},
	    {"\"ip_allowlist\":[\"10.0.0.1/8\"]", "ip_allowlist"},
	    {"\"ip_allowlist\":[\"::1/129\"]", "ip_allowlist"},
	    {"\"ip_allowlist\":[\"198.18.0.0/16\",\"\"]", "ip_allowlist"},
	    {"\"ip_allowlist\":[\"198.18.0.0/16\",42]", "ip_allowlist"},
	    {"\"ip_allowlist\":\"198.18.0.0/16\"", "ip_allowlist"},
	};
	struct sess s, v6;
	struct h_resp r;
	size_t i;
	cJSON *j;

	(void)state;
	org_new("au-setbad");
	user_new_pw("au-setbad", "sb@setbad.test", "admin", PW, NULL, 0);
	login_pw("au-setbad", "198.18.0.23", "sb@setbad.test", PW, &s);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sreq(&s, "PATCH", "/settings", F("{\"version\":1,%s}", bad[i].patch), &r);
		if (r.status != 422)
			fail_msg("PATCH settings {%s}: %ld %s", bad[i].patch, r.status, r.body);
		wfield(&r, bad[i].field);
	}
	sreq(&s, "PATCH", "/settings", F("{\"version\":1,\"name\":\"%s\"}", rep('n', 201)), &r);
	wfield(&r, "name");
	sreq(&s, "PATCH", "/settings", "{\"version\":\"1\",\"name\":\"Typed\"}", &r);
	wfield(&r, "version");

	/* -bad: lists that leave the caller outside (IPv4 caller). */
	serr(&s, "PATCH", "/settings", "{\"version\":1,\"ip_allowlist\":[\"198.18.99.0/24\"]}", 409, "would_lock_out");
	serr(&s, "PATCH", "/settings", "{\"version\":1,\"ip_allowlist\":[\"2001:db8::/32\"]}", 409, "would_lock_out");
	serr(&s, "PATCH", "/settings", "{\"version\":1,\"ip_allowlist\":[\"198.18.0.24\"]}", 409, "would_lock_out");
	/* ... and for an IPv6 caller. */
	login_pw("au-setbad", "2001:db8:23::5", "sb@setbad.test", PW, &v6);
	serr(&v6, "PATCH", "/settings", "{\"version\":1,\"ip_allowlist\":[\"198.18.0.0/16\"]}", 409, "would_lock_out");
	serr(&v6, "PATCH", "/settings", "{\"version\":1,\"ip_allowlist\":[\"2001:db8:24::/48\"]}", 409,
	     "would_lock_out");

	/* Nothing changed. */
	j = sok(&s, "GET", "/settings", NULL, 200);
	assert_int_equal(jint(j, "version"), 1);
	assert_string_equal(jstr(j, "name"), "au-setbad LLP");
	assert_int_equal(cJSON_GetArraySize(jarr(j, "ip_allowlist")), 0);
	assert_int_equal(jint(j, "session_idle_minutes"), 30);
	assert_string_equal(jstr(j, "notify_updates"), "after");
	cJSON_Delete(j);

	/* Boundaries that are good: 1 and 1440 minutes, a 200-character name, a list holding both callers. */
	j = sok(&s, "PATCH", "/settings", "{\"version\":1,\"session_idle_minutes\":1}", 200);
	cJSON_Delete(j);
	j = sok(&s, "PATCH", "/settings",
	        F("{\"version\":2,\"session_idle_minutes\":1440,\"name\":\"%s\"}", rep('n', 200)), 200);
	assert_int_equal(jint(j, "session_idle_minutes"), 1440);
	cJSON_Delete(j);
	j = sok(&v6, "PATCH", "/settings", "{\"version\":3,\"ip_allowlist\":[\"2001:db8:23::/64\",\"198.18.0.23\"]}",
	        200);
	assert_int_equal(jint(j, "version"), 4);
	cJSON_Delete(j);
	cJSON_Delete(sok(&s, "GET", "/session", NULL, 200));
	cJSON_Delete(sok(&v6, "GET", "/session", NULL, 200));
	login_err("au-setbad", "198.18.0.123", "sb@setbad.test", PW, 403, "ip_not_allowed");
	j = sok(&s, "PATCH", "/settings", "{\"version\":4,\"ip_allowlist\":[]}", 200);
	cJSON_Delete(j);
}

/* --- tests: users -------------------------------------------------- */

/* Asserts the User shape, without any secret in it. */
static void
assert_user(const cJSON *u, const char *email, const char *role, long long version)
{
	const char *t;

	assert_true(strlen(jstr(u, "id")) > 0);
	assert_string_equal(jstr(u, "email"), email);
	(void)jstr(u, "name");
	assert_string_equal(jstr(u, "role"), role);
	(void)jbool(u, "mfa_enabled");
	(void)jbool(u, "disabled");
	t = jstr(u, "created_at");
	assert_true(strlen(t) >= 20 && t[strlen(t) - 1] == 'Z');
	assert_int_equal(jint(u, "version"), version);
	assert_null(cJSON_GetObjectItemCaseSensitive(u, "password"));
	assert_null(cJSON_GetObjectItemCaseSensitive(u, "password_hash"));
	assert_null(cJSON_GetObjectItemCaseSensitive(u, "totp_secret"));
}

static void
users_are_listed_created_and_updated_with_version(void **state)
{
	char id[64], bea[64], *body, *out;
	const cJSON *it;
	struct sess a, b;
	struct h_resp r;
	cJSON *j;

	(void)state;
	org_new("au-users");
	user_new_pw("au-users", "ad@users.test", "admin", PW, id, sizeof(id));
	login_pw("au-users", "198.18.0.24", "ad@users.test", PW, &a);
	j = sok(&a, "GET", "/users", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 1);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "next_cursor")));
	assert_user(cJSON_GetArrayItem(jarr(j, "items"), 0), "ad@users.test", "admin", 1);
	cJSON_Delete(j);

	/* A 12-character password is enough. */
	sreq(&a, "POST", "/users",
	     "{\"email\":\"bea@users.test\",\"name\":\"Bea\",\"role\":\"member\",\"password\":\"twelve-chars\"}", &r);
	want(&r, 201);
	assert_null(strstr(r.body, "twelve-chars"));
	assert_null(strstr(r.body, "argon2"));
	j = jparse_text(r.body, r.status);
	h_resp_free(&r);
	assert_user(j, "bea@users.test", "member", 1);
	assert_string_equal(jstr(j, "name"), "Bea");
	assert_false(jbool(j, "mfa_enabled"));
	assert_false(jbool(j, "disabled"));
	snprintf(bea, sizeof(bea), "%s", jstr(j, "id"));
	cJSON_Delete(j);
	/* And 1024 characters is not too many. */
	body = malloc(2048);
	out = malloc(2048);
	assert_non_null(body);
	assert_non_null(out);
	snprintf(out, 2048, "%s", rep('L', 1024));
	snprintf(body, 2048, "{\"email\":\"long@users.test\",\"name\":\"Long\",\"role\":\"readonly\",\"password\":\"%s\"}",
	         out);
	j = sok(&a, "POST", "/users", body, 201);
	assert_user(j, "long@users.test", "readonly", 1);
	cJSON_Delete(j);
	login_pw("au-users", "198.18.0.24", "long@users.test", out, &b);
	free(body);
	free(out);

	/* -bad: the same email in another case. */
	serr(&a, "POST", "/users",
	     "{\"email\":\"BEA@Users.Test\",\"name\":\"Twin\",\"role\":\"member\",\"password\":\"" PW "\"}", 409, "conflict");
	j = sok(&a, "GET", "/users", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 3);
	cJSON_ArrayForEach(it, jarr(j, "items")) assert_user(it, jstr(it, "email"), jstr(it, "role"), 1);
	cJSON_Delete(j);

	login_pw("au-users", "198.18.0.24", "bea@users.test", "twelve-chars", &b);
	j = sok(&a, "PATCH", F("/users/%s", bea), "{\"version\":1,\"name\":\"Bea B\",\"role\":\"readonly\"}", 200);
	assert_user(j, "bea@users.test", "readonly", 2);
	assert_string_equal(jstr(j, "name"), "Bea B");
	cJSON_Delete(j);
	/* -bad: stale version, unknown or malformed id, fields that cannot be patched or are wrong. */
	serr(&a, "PATCH", F("/users/%s", bea), "{\"version\":1,\"name\":\"Stale\"}", 409, "conflict");
	serr(&a, "PATCH", F("/users/u_%s", rep('0', 32)), "{\"version\":1,\"name\":\"Nobody\"}", 404, "not_found");
	serr(&a, "PATCH", "/users/nope", "{\"version\":1,\"name\":\"Nobody\"}", 404, "not_found");
	sreq(&a, "PATCH", F("/users/%s", bea), "{\"version\":2,\"email\":\"new@users.test\"}", &r);
	wfield(&r, "email");
	sreq(&a, "PATCH", F("/users/%s", bea), "{\"version\":2,\"role\":\"root\"}", &r);
	wfield(&r, "role");
	sreq(&a, "PATCH", F("/users/%s", bea), "{\"version\":2,\"disabled\":\"yes\"}", &r);
	wfield(&r, "disabled");
	sreq(&a, "PATCH", F("/users/%s", bea), "{\"name\":\"No version\"}", &r);
	wfield(&r, "version");
	sreq(&a, "PATCH", F("/users/%s", bea), "{\"version\":2,\"password\":\"" PW "\"}", &r);
	wfield(&r, "password");
	j = sok(&a, "GET", "/users", NULL, 200);
	cJSON_ArrayForEach(it, jarr(j, "items")) if (strcmp(jstr(it, "id"), bea) == 0)
	{
		assert_string_equal(jstr(it, "name"), "Bea B");
		assert_string_equal(jstr(it, "role"), "readonly");
		assert_int_equal(jint(it, "version"), 2);
	}
	cJSON_Delete(j);
	/* The new role applies to her session at once. */
	j = sok(&b, "GET", "/session", NULL, 200);
	assert_string_equal(jstr(jobj(j, "user"), "role"), "readonly");
	cJSON_Delete(j);
}

static void
users_create_bad_is_422_and_creates_nothing(void **state)
{
	char email255[300], *body;
	struct sess a;
	struct h_resp r;
	cJSON *j;
	size_t i;
	static const struct {
		const char *body, *field;
	} bad[] = {
	    {"{\"email\":\"not-an-email\",\"name\":\"C\",\"role\":\"member\",\"password\":\"" PW "\"}", "email"},
	    {"{\"email\":\"\",\"name\":\"C\",\"role\":\"member\",\"password\":\"" PW "\"}", "email"},
	    {"{\"email\":\"c@x.test\",\"name\":\"C\",\"role\":\"member\",\"password\":\"elevenchars\"}", "password"},
	    {"{\"email\":\"c@x.test\",\"name\":\"C\",\"role\":\"root\",\"password\":\"" PW "\"}", "role"},
	    {"{\"email\":\"c@x.test\",\"name\":\"C\",\"role\":1,\"password\":\"" PW "\"}", "role"},
	    {"{\"email\":\"c@x.test\",\"name\":\"C\",\"role\":\"member\",\"password\":\"" PW "\",\"admin\":true}",
	     "admin"},
	    {"{\"name\":\"C\",\"role\":\"member\",\"password\":\"" PW "\"}", "email"},
	    {"{\"email\":\"c@x.test\",\"role\":\"member\",\"password\":\"" PW "\"}", "name"},
	    {"{\"email\":\"c@x.test\",\"name\":\"C\",\"password\":\"" PW "\"}", "role"},
	    {"{\"email\":\"c@x.test\",\"name\":\"C\",\"role\":\"member\"}", "password"},
	    {"{\"email\":\"c@x.test\",\"name\":\"C\",\"role\":\"member\",\"password\":null}", "password"},
	    {"{\"email\":\"c@x.test\",\"name\":\"\",\"role\":\"member\",\"password\":\"" PW "\"}", "name"},
	    {"{\"email\":\"c@x.test\",\"name\":\"C\",\"role\":\"member\",\"password\":\"" PW "\",\"disabled\":\"x\"}",
	     "disabled"},
	};

	(void)state;
	org_new("au-userbad");
	user_new_pw("au-userbad", "ad@userbad.test", "admin", PW, NULL, 0);
	login_pw("au-userbad", "198.18.0.25", "ad@userbad.test", PW, &a);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sreq(&a, "POST", "/users", bad[i].body, &r);
		if (r.status != 422)
			fail_msg("POST users %s: %ld %s", bad[i].body, r.status, r.body);
		wfield(&r, bad[i].field);
	}
	/* 255 characters of email (labels and local part valid on their own). */
	snprintf(email255, sizeof(email255), "%s@%s.%s.%s.test", rep('l', 64), rep('a', 63), rep('b', 63),
	         rep('c', 57));
	assert_int_equal(strlen(email255), 255);
	sreq(&a, "POST", "/users", F("{\"email\":\"%s\",\"name\":\"C\",\"role\":\"member\",\"password\":\"" PW "\"}", email255),
	     &r);
	wfield(&r, "email");
	body = malloc(2048);
	assert_non_null(body);
	snprintf(body, 2048, "{\"email\":\"c@x.test\",\"name\":\"C\",\"role\":\"member\",\"password\":\"%s\"}",
	         rep('p', 1025));
	sreq(&a, "POST", "/users", body, &r);
	free(body);
	wfield(&r, "password");
	sreq(&a, "POST", "/users", F("{\"email\":\"c@x.test\",\"name\":\"%s\",\"role\":\"member\",\"password\":\"" PW "\"}",
	                             rep('n', 201)),
	     &r);
	wfield(&r, "name");
	serr(&a, "POST", "/users", "{\"email\":", 400, "invalid_json");
	serr(&a, "POST", "/users", "\"c@x.test\"", 400, "invalid_json");
	j = sok(&a, "GET", "/users", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 1);
	cJSON_Delete(j);
}

static void
the_last_active_admin_cannot_be_demoted_or_disabled(void **state)
{
	char aid[64], bid[64];
	struct sess a;
	cJSON *j;

	(void)state;
	org_new("au-lastadmin");
	user_new_pw("au-lastadmin", "aa@lastadmin.test", "admin", PW, aid, sizeof(aid));
	login_pw("au-lastadmin", "198.18.0.26", "aa@lastadmin.test", PW, &a);
	/* -bad: the only admin demotes or disables themselves. */
	serr(&a, "PATCH", F("/users/%s", aid), "{\"version\":1,\"role\":\"member\"}", 409, "would_lock_out");
	serr(&a, "PATCH", F("/users/%s", aid), "{\"version\":1,\"role\":\"readonly\"}", 409, "would_lock_out");
	serr(&a, "PATCH", F("/users/%s", aid), "{\"version\":1,\"disabled\":true}", 409, "would_lock_out");
	/* A second admin, disabled, does not count. */
	j = sok(&a, "POST", "/users",
	        "{\"email\":\"bb@lastadmin.test\",\"name\":\"B\",\"role\":\"admin\",\"password\":\"" PW "\"}", 201);
	snprintf(bid, sizeof(bid), "%s", jstr(j, "id"));
	cJSON_Delete(j);
	cJSON_Delete(sok(&a, "PATCH", F("/users/%s", bid), "{\"version\":1,\"disabled\":true}", 200));
	serr(&a, "PATCH", F("/users/%s", aid), "{\"version\":1,\"role\":\"member\"}", 409, "would_lock_out");
	j = sok(&a, "GET", "/users", NULL, 200);
	{
		const cJSON *it;

		cJSON_ArrayForEach(it, jarr(j, "items")) if (strcmp(jstr(it, "id"), aid) == 0)
		{
			assert_string_equal(jstr(it, "role"), "admin");
			assert_false(jbool(it, "disabled"));
			assert_int_equal(jint(it, "version"), 1);
		}
	}
	cJSON_Delete(j);
	/* With B active again, A may step down, and is then a member at once. */
	cJSON_Delete(sok(&a, "PATCH", F("/users/%s", bid), "{\"version\":2,\"disabled\":false}", 200));
	j = sok(&a, "PATCH", F("/users/%s", aid), "{\"version\":1,\"role\":\"member\"}", 200);
	assert_string_equal(jstr(j, "role"), "member");
	assert_int_equal(jint(j, "version"), 2);
	cJSON_Delete(j);
	serr(&a, "GET", "/users", NULL, 403, "forbidden");
}

static void
disabling_a_user_ends_their_sessions_and_their_logins(void **state)
{
	char mid[64], body_unknown[1024];
	struct sess a, m, m2;
	struct h_resp r;
	cJSON *j;

	(void)state;
	org_new("au-disabled");
	user_new_pw("au-disabled", "ad@disabled.test", "admin", PW, NULL, 0);
	user_new_pw("au-disabled", "mm@disabled.test", "member", PW, mid, sizeof(mid));
	login_pw("au-disabled", "198.18.0.27", "ad@disabled.test", PW, &a);
	login_pw("au-disabled", "198.18.0.27", "mm@disabled.test", PW, &m);
	j = sok(&a, "PATCH", F("/users/%s", mid), "{\"version\":1,\"disabled\":true}", 200);
	assert_true(jbool(j, "disabled"));
	assert_int_equal(jint(j, "version"), 2);
	cJSON_Delete(j);
	/* -bad: the disabled user's session is gone, and the right password looks like a wrong one. */
	serr(&m, "GET", "/session", NULL, 401, "unauthenticated");
	post_login("au-disabled", "198.18.0.27", "nobody@disabled.test", PW, &m2, &r);
	assert_error(&r, 401, "invalid_credentials");
	snprintf(body_unknown, sizeof(body_unknown), "%s", r.body);
	h_resp_free(&r);
	post_login("au-disabled", "198.18.0.27", "mm@disabled.test", PW, &m2, &r);
	assert_error(&r, 401, "invalid_credentials");
	assert_string_equal(r.body, body_unknown);
	assert_int_equal(h_header(&r, "Set-Cookie", (char[8]){0}, 8), -1);
	h_resp_free(&r);
	/* Enabled again: in. */
	cJSON_Delete(sok(&a, "PATCH", F("/users/%s", mid), "{\"version\":2,\"disabled\":false}", 200));
	login_pw("au-disabled", "198.18.0.27", "mm@disabled.test", PW, &m2);
	cJSON_Delete(sok(&a, "GET", "/session", NULL, 200));
}

/* --- tests: roles -------------------------------------------------- */

/* Fills out with pattern, {org} replaced by slug and every other {capture} by id. */
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

static void
members_and_readonly_are_forbidden_on_every_admin_route(void **state)
{
	char aid[64], path[512];
	struct sess a, m, ro;
	const struct sess *who[2];
	const unsigned role[2] = {IDB_ROLE_MEMBER, IDB_ROLE_READONLY};
	struct h_resp r;
	size_t i, walked[2] = {0, 0};
	int k;
	cJSON *j;

	(void)state;
	org_new("au-roles");
	user_new_pw("au-roles", "ad@roles.test", "admin", PW, aid, sizeof(aid));
	user_new_pw("au-roles", "mb@roles.test", "member", PW, NULL, 0);
	user_new_pw("au-roles", "ro@roles.test", "readonly", PW, NULL, 0);
	login_pw("au-roles", "198.18.0.30", "ad@roles.test", PW, &a);
	login_pw("au-roles", "198.18.0.30", "mb@roles.test", PW, &m);
	login_pw("au-roles", "198.18.0.30", "ro@roles.test", PW, &ro);
	who[0] = &m;
	who[1] = &ro;
	for (k = 0; k < 2; k++) {
		/* The admin routes by name, with bodies that would succeed for an admin. */
		serr(who[k], "GET", "/users", NULL, 403, "forbidden");
		serr(who[k], "POST", "/users",
		     "{\"email\":\"new@roles.test\",\"name\":\"N\",\"role\":\"admin\",\"password\":\"" PW "\"}", 403,
		     "forbidden");
		serr(who[k], "PATCH", F("/users/%s", aid), "{\"version\":1,\"name\":\"Taken over\"}", 403, "forbidden");
		serr(who[k], "DELETE", F("/users/%s/mfa", aid), NULL, 403, "forbidden");
		serr(who[k], "GET", "/settings", NULL, 403, "forbidden");
		serr(who[k], "PATCH", "/settings", "{\"version\":1,\"require_mfa\":true}", 403, "forbidden");
		/* And every route of the table that the role may not use, present and future. */
		for (i = 0; i < idb_routes_n; i++) {
			const struct idb_route *rt = &idb_routes[i];

			if (!(rt->flags & IDB_RF_ORG) || (rt->flags & IDB_RF_NOSESSION) || (rt->roles & role[k]))
				continue;
			route_path(rt->pattern, "au-roles", aid, path, sizeof(path));
			raw(rt->method, path, who[k]->ip, who[k]->token, who[k]->csrf,
			    strcmp(rt->method, "GET") ? "{}" : NULL, &r);
			if (r.status != 403)
				fail_msg("%s %s as role %u: %ld %s", rt->method, path, role[k], r.status, r.body);
			werr(&r, 403, "forbidden");
			walked[k]++;
		}
		/* What every role may do. */
		cJSON_Delete(sok(who[k], "GET", "/session", NULL, 200));
		cJSON_Delete(sok(who[k], "POST", "/me/mfa/totp", NULL, 200));
	}
	print_message("admin-only routes walked: member %zu, readonly %zu\n", walked[0], walked[1]);
	assert_true(walked[0] >= 6);
	assert_true(walked[1] >= 6);
	assert_null(sok(&m, "POST", "/me/password", "{\"current_password\":\"" PW "\",\"new_password\":\"" PW2 "\"}",
	                204));
	assert_null(sok(&ro, "POST", "/me/password", "{\"current_password\":\"" PW "\",\"new_password\":\"" PW2 "\"}",
	                204));
	/* Nothing changed. */
	j = sok(&a, "GET", "/users", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 3);
	{
		const cJSON *it;

		cJSON_ArrayForEach(it, jarr(j, "items")) if (strcmp(jstr(it, "id"), aid) == 0)
		{
			assert_int_equal(jint(it, "version"), 1);
			assert_false(jbool(it, "mfa_enabled"));
		}
	}
	cJSON_Delete(j);
	j = sok(&a, "GET", "/settings", NULL, 200);
	assert_int_equal(jint(j, "version"), 1);
	assert_false(jbool(j, "require_mfa"));
	cJSON_Delete(j);
}

/* --- tests: tenant isolation --------------------------------------- */

static void
a_session_of_one_org_finds_nothing_in_another_on_any_route(void **state)
{
	char aid[64], bid[64], path[512];
	struct sess a, b;
	struct h_resp r;
	size_t i, walked = 0, bad = 0;
	int k;
	cJSON *j;

	(void)state;
	org_new("au-ten-a");
	org_new("au-ten-b");
	user_new_pw("au-ten-a", "ad@ten-a.test", "admin", PW, aid, sizeof(aid));
	user_new_pw("au-ten-b", "ad@ten-b.test", "admin", PW, bid, sizeof(bid));
	login_pw("au-ten-a", "198.18.0.31", "ad@ten-a.test", PW, &a);
	login_pw("au-ten-b", "198.18.0.31", "ad@ten-b.test", PW, &b);
	for (i = 0; i < idb_routes_n; i++) {
		const struct idb_route *rt = &idb_routes[i];

		if (!(rt->flags & IDB_RF_ORG) || (rt->flags & IDB_RF_NOSESSION))
			continue;
		/* A's cookie and CSRF token, B's slug, ids from A (and, a second time, B's own ids). */
		for (k = 0; k < 2; k++) {
			route_path(rt->pattern, "au-ten-b", k == 0 ? aid : bid, path, sizeof(path));
			raw(rt->method, path, a.ip, a.token, a.csrf, strcmp(rt->method, "GET") ? "{}" : NULL, &r);
			if (r.status != 404 || strstr(r.body, "\"not_found\"") == NULL) {
				print_error("A's session on %s %s: %ld %s\n", rt->method, path, r.status, r.body);
				bad++;
			} else
				assert_error(&r, 404, "not_found");
			h_resp_free(&r);
		}
		walked++;
	}
	print_message("org routes walked with another org's session: %zu, answers other than 404: %zu\n", walked,
	              bad);
	assert_int_equal(bad, 0);
	assert_true(walked >= 10);
	/* Logging in to B with A's credentials is just a wrong login. */
	login_err("au-ten-b", "198.18.0.31", "ad@ten-a.test", PW, 401, "invalid_credentials");
	/* B's session on A, the other way round. */
	raw("GET", "/api/v1/orgs/au-ten-a/session", b.ip, b.token, NULL, NULL, &r);
	werr(&r, 404, "not_found");
	/* Nothing was done to either org, and both sessions are alive. */
	j = sok(&a, "GET", "/session", NULL, 200);
	assert_false(jbool(jobj(j, "user"), "mfa_enabled"));
	cJSON_Delete(j);
	j = sok(&b, "GET", "/users", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 1);
	assert_int_equal(jint(cJSON_GetArrayItem(jarr(j, "items"), 0), "version"), 1);
	assert_false(jbool(cJSON_GetArrayItem(jarr(j, "items"), 0), "mfa_enabled"));
	cJSON_Delete(j);
	j = sok(&b, "GET", "/settings", NULL, 200);
	assert_int_equal(jint(j, "version"), 1);
	cJSON_Delete(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(login_sets_a_hardened_cookie_and_the_session_answers),
	    cmocka_unit_test(session_bad_cookies_are_401_and_login_ignores_a_planted_one),
	    cmocka_unit_test(server_keeps_only_the_sha256_of_the_token),
	    cmocka_unit_test(idle_sessions_expire_after_the_org_setting),
	    cmocka_unit_test(sessions_end_12_hours_after_login_however_busy),
	    cmocka_unit_test(csrf_bad_missing_wrong_or_foreign_token_is_403_and_changes_nothing),
	    cmocka_unit_test(wrong_email_and_wrong_password_look_the_same),
	    cmocka_unit_test(login_bad_bodies_are_rejected_before_any_check),
	    cmocka_unit_test(needs_rehash_upgrades_a_weak_hash_on_login),
	    cmocka_unit_test(password_change_ends_the_other_sessions),
	    cmocka_unit_test(password_change_bad_changes_nothing),
	    cmocka_unit_test(five_failures_lock_the_email_even_for_the_right_password),
	    cmocka_unit_test(twenty_failures_from_one_address_lock_the_address),
	    cmocka_unit_test(wrong_mfa_codes_count_toward_the_email_throttle),
	    cmocka_unit_test(totp_enroll_confirm_and_log_in_with_a_second_factor),
	    cmocka_unit_test(totp_codes_more_than_one_step_away_are_refused),
	    cmocka_unit_test(totp_step_cannot_be_used_twice),
	    cmocka_unit_test(recovery_codes_work_once_each),
	    cmocka_unit_test(totp_disable_needs_a_valid_code),
	    cmocka_unit_test(admin_resets_a_users_second_factor),
	    cmocka_unit_test(require_mfa_admits_only_enrollment_until_enrolled),
	    cmocka_unit_test(ip_allowlist_admits_listed_v4_and_v6_and_refuses_the_rest),
	    cmocka_unit_test(ip_allowlist_cli_bad_input_changes_nothing),
	    cmocka_unit_test(settings_read_and_patch_with_version),
	    cmocka_unit_test(settings_patch_bad_is_422_or_would_lock_out_and_changes_nothing),
	    cmocka_unit_test(users_are_listed_created_and_updated_with_version),
	    cmocka_unit_test(users_create_bad_is_422_and_creates_nothing),
	    cmocka_unit_test(the_last_active_admin_cannot_be_demoted_or_disabled),
	    cmocka_unit_test(disabling_a_user_ends_their_sessions_and_their_logins),
	    cmocka_unit_test(members_and_readonly_are_forbidden_on_every_admin_route),
	    cmocka_unit_test(a_session_of_one_org_finds_nothing_in_another_on_any_route),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
