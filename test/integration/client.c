/* SPDX-License-Identifier: ISC */
/*
 * A client's side of the API for the integration tests: sessions (login
 * through X-Forwarded-For addresses, the cookie and the CSRF token kept in
 * struct sess), requests that assert the status and the api.md error shape,
 * orgs and users made with the real immidb-admin, and the org database
 * opened with its key as an operator holding the master key could.
 * The test program defines `struct h_env env` and starts it with
 * h_start_with(&env, n, "127.0.0.1").
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"

#define OATHTOOL "/usr/bin/oathtool"

struct client_opts client_opts;

/* Copies s into out (size len), failing the test if it does not fit. */
void
copy(char *out, size_t len, const char *s)
{
	size_t n = strlen(s);

	if (n >= len)
		fail_msg("value too long (%zu >= %zu): %.80s", n, len, s);
	memcpy(out, s, n + 1);
}

cJSON *
jparse_text(const char *text, long status)
{
	cJSON *j = cJSON_Parse(text);

	if (j == NULL)
		fail_msg("not JSON (status %ld): %.300s", status, text);
	return j;
}

const cJSON *
jobj(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!cJSON_IsObject(v))
		fail_msg("\"%s\" is not an object", k);
	return v;
}

/* Asserts the status (showing the body otherwise) and Cache-Control: no-store. */
void
want(const struct h_resp *r, long status)
{
	char cc[64];

	if (r->status != status)
		fail_msg("expected %ld, got %ld: %.400s", status, r->status, r->body);
	assert_int_equal(h_header(r, "Cache-Control", cc, sizeof(cc)), 0);
	assert_string_equal(cc, "no-store");
}

/* Asserts the api.md error shape with the given status and code. */
void
assert_error(const struct h_resp *r, long status, const char *code)
{
	const cJSON *err;
	cJSON *j;
	char ct[64];

	want(r, status);
	if (client_opts.error_type) {
		assert_int_equal(h_header(r, "Content-Type", ct, sizeof(ct)), 0);
		assert_string_equal(ct, "application/json; charset=utf-8");
	}
	j = jparse_text(r->body, r->status);
	err = jobj(j, "error");
	if (strcmp(jstr(err, "code"), code) != 0)
		fail_msg("expected code %s, got %s: %.300s", code, jstr(err, "code"), r->body);
	if (client_opts.error_message)
		(void)jstr(err, "message");
	cJSON_Delete(j);
}

void
werr(struct h_resp *r, long status, const char *code)
{
	assert_error(r, status, code);
	h_resp_free(r);
}

/* 422 validation_failed naming field in "fields"; frees the response. */
void
wfield(struct h_resp *r, const char *field)
{
	const cJSON *fields;
	cJSON *j;

	assert_error(r, 422, "validation_failed");
	j = jparse_text(r->body, r->status);
	fields = jobj(jobj(j, "error"), "fields");
	if (cJSON_GetObjectItemCaseSensitive(fields, field) == NULL)
		fail_msg("fields has no \"%s\": %.300s", field, r->body);
	cJSON_Delete(j);
	h_resp_free(r);
}

/* Asserts the status, returns the parsed body (NULL for 204) and frees the response. */
cJSON *
wjson(struct h_resp *r, long status)
{
	cJSON *j = NULL;

	want(r, status);
	if (status != 204)
		j = jparse_text(r->body, r->status);
	else if (client_opts.empty_204)
		assert_int_equal(r->len, 0);
	h_resp_free(r);
	return j;
}

/* --- requests ------------------------------------------------------ */

/* The headers of raw_with into x; x->h (NULL-terminated) points into x. */
void
hdrs_with(struct hdrs *x, const char *ip, const char *cookie, const char *reason, const char *csrf)
{
	int n = 0;

	if (ip != NULL) {
		snprintf(x->xff, sizeof(x->xff), "X-Forwarded-For: %s", ip);
		x->h[n++] = x->xff;
	}
	if (cookie != NULL) {
		snprintf(x->cookie, sizeof(x->cookie), "Cookie: %s", cookie);
		x->h[n++] = x->cookie;
	}
	if (reason != NULL) {
		assert_true(strlen(reason) < F_LEN);
		snprintf(x->reason, sizeof(x->reason), "X-Access-Reason: %s", reason);
		x->h[n++] = x->reason;
	}
	if (csrf != NULL) {
		if (*csrf == '\0')
			snprintf(x->xcsrf, sizeof(x->xcsrf), "X-CSRF-Token;"); /* curl: an empty header */
		else
			snprintf(x->xcsrf, sizeof(x->xcsrf), "X-CSRF-Token: %s", csrf);
		x->h[n++] = x->xcsrf;
	}
	x->h[n] = NULL;
}

/*
 * One request as a client at ip (NULL: no X-Forwarded-For, i.e. loopback),
 * with a whole cookie "name=value", an X-Access-Reason and an X-CSRF-Token
 * (each NULL: none; csrf "": the header, empty). client_opts.seen sees the answer.
 */
void
raw_with(const char *method, const char *path, const char *ip, const char *cookie, const char *reason,
         const char *csrf, const char *body, struct h_resp *r)
{
	struct hdrs x;

	hdrs_with(&x, ip, cookie, reason, csrf);
	assert_int_equal(h_http(&env, method, path, x.h, body, body ? strlen(body) : 0, r), 0);
	if (client_opts.seen != NULL)
		client_opts.seen(method, path, r);
}

/* raw_with, the cookie that of a session token (NULL: none), no reason. */
void
raw(const char *method, const char *path, const char *ip, const char *token, const char *csrf, const char *body,
    struct h_resp *r)
{
	char cookie[256 - sizeof("Cookie: ") + 1]; /* a header line of 256 bytes at the most */

	if (token != NULL)
		snprintf(cookie, sizeof(cookie), "immidb_session=%s", token);
	raw_with(method, path, ip, token ? cookie : NULL, NULL, csrf, body, r);
}

/* A request as session s to /api/v1/orgs/<slug><sub>, with its CSRF token on all but GET. */
void
sreq(const struct sess *s, const char *method, const char *sub, const char *body, struct h_resp *r)
{
	raw(method, F("/api/v1/orgs/%s%s", s->slug, sub), s->ip, s->token, strcmp(method, "GET") ? s->csrf : NULL,
	    body, r);
}

void
serr(const struct sess *s, const char *method, const char *sub, const char *body, long status, const char *code)
{
	struct h_resp r;

	sreq(s, method, sub, body, &r);
	if (r.status != status)
		fail_msg("%s %s: expected %ld %s, got %ld: %.400s", method, sub, status, code, r.status, r.body);
	werr(&r, status, code);
}

cJSON *
sok(const struct sess *s, const char *method, const char *sub, const char *body, long status)
{
	struct h_resp r;

	sreq(s, method, sub, body, &r);
	if (r.status != status)
		fail_msg("%s %s: expected %ld, got %ld: %.400s", method, sub, status, r.status, r.body);
	return wjson(&r, status);
}

/*
 * The random part of a session token: api.md fixes 256 random bits and
 * nothing else, so a token may carry a non-secret prefix ending in '.'
 * (the implementation names the org there: "o_<hex>.<43 characters>").
 */
const char *
tok_rand(const char *token)
{
	const char *dot = strrchr(token, '.');

	return dot ? dot + 1 : token;
}

/* With client_opts.token_shape: fails unless token is 256 random bits in base64url (after a "prefix."). */
static void
token_shape(const char *token)
{
	unsigned char raw32[64];
	const char *p, *rnd = tok_rand(token);
	size_t bin;

	if (strlen(rnd) != 43)
		fail_msg("session token's random part is %zu characters, not 43: %s", strlen(rnd), token);
	for (p = token; *p; p++)
		assert_true(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || (*p == '.' && p + 1 == rnd));
	assert_int_equal(sodium_base642bin(raw32, sizeof(raw32), rnd, 43, NULL, &bin, NULL,
	                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
	                 0);
	assert_int_equal(bin, 32);
}

/*
 * The token of "Set-Cookie: immidb_session=<token>; ...", or -1. With
 * client_opts.token_shape another Set-Cookie fails the test, and so does a
 * token of another shape.
 */
int
take_cookie(const struct h_resp *r, char *token, size_t len)
{
	char sc[512];
	size_t n;

	if (h_header(r, "Set-Cookie", sc, sizeof(sc)) != 0)
		return -1;
	if (strncmp(sc, "immidb_session=", 15) != 0) {
		if (client_opts.token_shape)
			fail_msg("unexpected Set-Cookie: %s", sc);
		return -1;
	}
	n = strcspn(sc + 15, ";");
	assert_true(n < len);
	memcpy(token, sc + 15, n);
	token[n] = '\0';
	if (client_opts.token_shape)
		token_shape(token);
	return 0;
}

/* POST .../session from ip; fills s on 200 (no user id while the second factor is due). The response stays in r. */
void
post_login(const char *slug, const char *ip, const char *email, const char *pw, struct sess *s, struct h_resp *r)
{
	const cJSON *u;
	cJSON *j;

	raw("POST", F("/api/v1/orgs/%s/session", slug), ip, NULL, NULL,
	    F("{\"email\":\"%s\",\"password\":\"%s\"}", email, pw), r);
	memset(s, 0, sizeof(*s));
	copy(s->slug, sizeof(s->slug), slug);
	copy(s->ip, sizeof(s->ip), ip);
	copy(s->email, sizeof(s->email), email);
	if (r->status != 200)
		return;
	if (take_cookie(r, s->token, sizeof(s->token)) != 0)
		fail_msg("login answered 200 without a session cookie");
	j = jparse_text(r->body, r->status);
	copy(s->csrf, sizeof(s->csrf), jstr(j, "csrf_token"));
	u = cJSON_GetObjectItemCaseSensitive(j, "user");
	if (u != NULL || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "mfa_required")))
		copy(s->user_id, sizeof(s->user_id), jstr(jobj(j, "user"), "id"));
	cJSON_Delete(j);
}

void
login(const char *slug, const char *ip, const char *email, struct sess *s)
{
	struct h_resp r;

	post_login(slug, ip, email, PW, s, &r);
	cJSON_Delete(wjson(&r, 200));
}

/* post_login that must answer 200; its body, for the caller to delete. */
cJSON *
login_body(const char *slug, const char *ip, const char *email, const char *pw, struct sess *s)
{
	struct h_resp r;

	post_login(slug, ip, email, pw, s, &r);
	return wjson(&r, 200);
}

/* A complete login with pw (no second factor). */
void
login_pw(const char *slug, const char *ip, const char *email, const char *pw, struct sess *s)
{
	cJSON *j = login_body(slug, ip, email, pw, s);

	assert_false(jbool(j, "mfa_required"));
	cJSON_Delete(j);
}

void
login_err(const char *slug, const char *ip, const char *email, const char *pw, long status, const char *code)
{
	struct h_resp r;
	struct sess s;

	post_login(slug, ip, email, pw, &s, &r);
	werr(&r, status, code);
}

/* --- organizations and users through immidb-admin ------------------ */

void
org_new(const char *slug)
{
	char out[4096], err[4096];
	int rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "create", "--slug", slug, "--name",
	                 F("%s LLP", slug), NULL);

	if (rc != 0)
		fail_msg("org create %s: %d %s", slug, rc, err);
}

void
user_new_pw(const char *slug, const char *email, const char *role, const char *pw, char *id, size_t idlen)
{
	char out[4096], err[4096];
	int rc = h_admin(&env, F("%s\n", pw), out, sizeof(out), err, sizeof(err), "user", "add", "--org", slug,
	                 "--email", email, "--name", F("Name of %s", email), "--role", role, "--password-stdin", NULL);

	if (rc != 0)
		fail_msg("user add %s: %d %s", email, rc, err);
	out[strcspn(out, "\r\n")] = '\0';
	assert_true(strlen(out) > 0);
	if (id != NULL)
		copy(id, idlen, out);
}

void
user_new(const char *slug, const char *email, const char *role, char *id, size_t idlen)
{
	user_new_pw(slug, email, role, PW, id, idlen);
}

/* An org with an admin (admin@<slug>.test) logged in from ip. */
void
org_with_admin(const char *slug, const char *ip, struct sess *a)
{
	org_new(slug);
	user_new(slug, F("admin@%s.test", slug), "admin", NULL, 0);
	login(slug, ip, F("admin@%s.test", slug), a);
}

/* POST /clients with body: the new id into id. */
void
client_new(const struct sess *s, const char *body, char *id, size_t idlen)
{
	cJSON *j = sok(s, "POST", "/clients", body, 201);

	copy(id, idlen, jstr(j, "id"));
	cJSON_Delete(j);
}

/* --- the org database, from the test's side ------------------------ */

void
org_keys_id(const char *slug, struct idb_org_keys *k, char path[IDB_PATH_MAX], char *org_id, size_t idlen)
{
	struct idb_master *m = NULL;
	struct idb_conf conf;
	struct idb_org o;
	char err[512];
	sqlite3 *reg = NULL;

	assert_int_equal(idb_conf_open(&conf, env.conf, NULL, err, sizeof(err)), IDB_OK);
	assert_int_equal(idb_key_master_load(conf.master_key_file, &m), IDB_OK);
	assert_int_equal(idb_reg_open(&conf, m, 0, &reg), IDB_OK);
	assert_int_equal(idb_reg_org_find(reg, slug, &o), IDB_OK);
	assert_int_equal(idb_reg_org_keys(reg, m, o.id, k), IDB_OK);
	assert_int_equal(idb_org_path(&conf, o.id, path), IDB_OK);
	if (org_id != NULL)
		copy(org_id, idlen, o.id);
	idb_db_close(reg);
	idb_key_master_free(m);
}

void
org_keys(const char *slug, struct idb_org_keys *k, char path[IDB_PATH_MAX])
{
	org_keys_id(slug, k, path, NULL, 0);
}

sqlite3 *
org_db(const char *slug)
{
	char path[IDB_PATH_MAX];
	struct idb_org_keys k;
	sqlite3 *db = NULL;

	org_keys(slug, &k, path);
	assert_int_equal(idb_db_open(path, k.db, 0, &db), IDB_OK);
	idb_org_keys_wipe(&k);
	return db;
}

/* The first column of the first row of sql, with up to two text parameters (NULL: not bound). */
long long
q_ll_bind(sqlite3 *db, const char *sql, const char *a, const char *b)
{
	sqlite3_stmt *st = NULL;
	long long v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
	if (a != NULL)
		sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
	if (b != NULL)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW)
		fail_msg("no row for %s", sql);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

long long
q_ll(sqlite3 *db, const char *sql)
{
	return q_ll_bind(db, sql, NULL, NULL);
}

long long
org_count(const char *slug, const char *sql)
{
	sqlite3 *db = org_db(slug);
	long long v = q_ll(db, sql);

	idb_db_close(db);
	return v;
}

/* Runs sql on the org's database; its result code, the error message into msg. */
int
org_exec(const char *slug, const char *sql, char *msg, size_t len)
{
	sqlite3 *db = org_db(slug);
	char *em = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &em);

	if (msg != NULL)
		snprintf(msg, len, "%s", em ? em : "");
	sqlite3_free(em);
	idb_db_close(db);
	return rc;
}

void
org_exec_ok(const char *slug, const char *sql)
{
	char msg[512];

	if (org_exec(slug, sql, msg, sizeof(msg)) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
}

/* Fails if a text or blob cell of a table of db contains needle (whole: is needle, and nothing more). */
static void
db_cells_without(sqlite3 *db, const char *needle, int whole)
{
	sqlite3_stmt *tables = NULL, *st;
	size_t nl = strlen(needle);
	const void *cell;
	char *sql;
	int i, n;

	assert_int_equal(sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &tables,
	                                    NULL),
	                 SQLITE_OK);
	while (sqlite3_step(tables) == SQLITE_ROW) {
		sql = sqlite3_mprintf("SELECT * FROM \"%w\"", (const char *)sqlite3_column_text(tables, 0));
		assert_non_null(sql);
		st = NULL;
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW)
			for (i = 0; i < sqlite3_column_count(st); i++) {
				if (sqlite3_column_type(st, i) != SQLITE_TEXT && sqlite3_column_type(st, i) != SQLITE_BLOB)
					continue;
				cell = sqlite3_column_blob(st, i);
				n = sqlite3_column_bytes(st, i);
				if (cell == NULL)
					continue;
				if (whole && (size_t)n == nl && memcmp(cell, needle, nl) == 0)
					fail_msg("table %s holds a cell that is '%s'", sqlite3_column_text(tables, 0), needle);
				if (!whole && h_contains(cell, (size_t)n, needle))
					fail_msg("table %s holds '%s' in clear", sqlite3_column_text(tables, 0), needle);
			}
		sqlite3_finalize(st);
		sqlite3_free(sql);
	}
	sqlite3_finalize(tables);
}

void
db_has_no(sqlite3 *db, const char *needle)
{
	db_cells_without(db, needle, 0);
}

void
db_no_cell_is(sqlite3 *db, const char *value)
{
	db_cells_without(db, value, 1);
}

/* Fails if the org's database file (or its WAL) contains needle in its bytes. */
void
file_has_no(const char *slug, const char *needle)
{
	static const char *suffix[] = {"", "-wal"};
	char path[IDB_PATH_MAX], p[IDB_PATH_MAX + 8];
	struct idb_org_keys k;
	size_t len, i;
	char *bytes;

	org_keys(slug, &k, path);
	idb_org_keys_wipe(&k);
	for (i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		if ((bytes = h_slurp(p, &len)) == NULL)
			continue;
		if (h_contains(bytes, len, needle))
			fail_msg("%s contains '%s'", p, needle);
		free(bytes);
	}
}

/* --- TOTP through oathtool (an independent RFC 6238) -------------- */

/* The code of the step `steps` away from now, computed by oathtool. */
void
totp(const char *secret, int steps, char code[16])
{
	char when[64], out[256], err[256];
	int rc;

	if (steps == 0)
		rc = h_run(NULL, out, sizeof(out), err, sizeof(err), OATHTOOL, "--totp", "-b", secret, NULL);
	else {
		snprintf(when, sizeof(when), "now %c %d seconds", steps < 0 ? '-' : '+', abs(steps) * 30);
		rc = h_run(NULL, out, sizeof(out), err, sizeof(err), OATHTOOL, "--totp", "-b", "-N", when, secret, NULL);
	}
	if (rc != 0)
		fail_msg("oathtool: %d %s", rc, err);
	out[strcspn(out, "\r\n")] = '\0';
	assert_int_equal(strlen(out), 6);
	memcpy(code, out, 7);
}

/* A 6-digit code that is none of the codes of steps -2..+2. */
void
totp_wrong(const char *secret, char code[16])
{
	char near[5][16];
	int i, v = 123456, clash;

	for (i = 0; i < 5; i++)
		totp(secret, i - 2, near[i]);
	do {
		snprintf(code, 16, "%06d", v);
		v = (v + 111111) % 1000000;
		for (clash = 0, i = 0; i < 5; i++)
			clash |= strcmp(code, near[i]) == 0;
	} while (clash);
}
