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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

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
	cJSON *j;

	want(r, status);
	j = jparse_text(r->body, r->status);
	if (strcmp(jstr(jobj(j, "error"), "code"), code) != 0)
		fail_msg("expected code %s, got: %.300s", code, r->body);
	cJSON_Delete(j);
}

void
werr(struct h_resp *r, long status, const char *code)
{
	assert_error(r, status, code);
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
	h_resp_free(r);
	return j;
}

/* --- requests ------------------------------------------------------ */

/* One request as a client at ip, with a session token and a CSRF header (NULL: none). */
void
raw(const char *method, const char *path, const char *ip, const char *token, const char *csrf, const char *body,
    struct h_resp *r)
{
	char xff[128], cookie[256], xcsrf[256];
	const char *hdr[4];
	int n = 0;

	if (ip != NULL) {
		snprintf(xff, sizeof(xff), "X-Forwarded-For: %s", ip);
		hdr[n++] = xff;
	}
	if (token != NULL) {
		snprintf(cookie, sizeof(cookie), "Cookie: immidb_session=%s", token);
		hdr[n++] = cookie;
	}
	if (csrf != NULL) {
		snprintf(xcsrf, sizeof(xcsrf), "X-CSRF-Token: %s", csrf);
		hdr[n++] = xcsrf;
	}
	hdr[n] = NULL;
	assert_int_equal(h_http(&env, method, path, hdr, body, body ? strlen(body) : 0, r), 0);
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
	werr(&r, status, code);
}

cJSON *
sok(const struct sess *s, const char *method, const char *sub, const char *body, long status)
{
	struct h_resp r;

	sreq(s, method, sub, body, &r);
	return wjson(&r, status);
}

/* The token of "Set-Cookie: immidb_session=<token>; ...", or -1. */
int
take_cookie(const struct h_resp *r, char *token, size_t len)
{
	char sc[512];
	size_t n;

	if (h_header(r, "Set-Cookie", sc, sizeof(sc)) != 0 || strncmp(sc, "immidb_session=", 15) != 0)
		return -1;
	n = strcspn(sc + 15, ";");
	assert_true(n < len);
	memcpy(token, sc + 15, n);
	token[n] = '\0';
	return 0;
}

/* POST .../session from ip; fills s on 200. The response stays in r. */
void
post_login(const char *slug, const char *ip, const char *email, const char *pw, struct sess *s, struct h_resp *r)
{
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
user_new(const char *slug, const char *email, const char *role, char *id, size_t idlen)
{
	char out[4096], err[4096];
	int rc = h_admin(&env, PW "\n", out, sizeof(out), err, sizeof(err), "user", "add", "--org", slug, "--email",
	                 email, "--name", F("Name of %s", email), "--role", role, "--password-stdin", NULL);

	if (rc != 0)
		fail_msg("user add %s: %d %s", email, rc, err);
	out[strcspn(out, "\r\n")] = '\0';
	assert_true(strlen(out) > 0);
	if (id != NULL)
		copy(id, idlen, out);
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
org_keys(const char *slug, struct idb_org_keys *k, char path[IDB_PATH_MAX])
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
	idb_db_close(reg);
	idb_key_master_free(m);
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

long long
q_ll(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) != SQLITE_ROW)
		fail_msg("no row for %s", sql);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
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
