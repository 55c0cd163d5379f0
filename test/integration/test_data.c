/* SPDX-License-Identifier: ISC */
/*
 * Case data, end to end through nginx: clients, cases, events, notes and
 * portal credentials with every field of api.md's table (types, limits,
 * patterns, required markers), limit/cursor lists that stay stable while
 * others insert, the filters and ?q= search, optimistic concurrency (also
 * with processes racing for one version), soft delete, sensitive fields
 * (encrypted under the org's field key, shown as {"set": ...}, revealed one
 * at a time; a ciphertext moved to another row or column does not decrypt),
 * roles, tenant isolation, and the append-only change log with its export.
 *
 * As in test_auth.c, the server trusts loopback as a proxy and each test
 * speaks for its own client address (198.18.1.N) through X-Forwarded-For,
 * in its own organization made with the real immidb-admin. Storage checks
 * open the org database with its database key alone, as an operator holding
 * the master key could; the field key is used only to check the ciphertext
 * format of storage.md.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "checks.h"
#include "client.h"
#include "harness.h"
#include "crypto/field.h"
#include "store/db.h"
#include "store/registry.h"

#define WORKERS 4
#define PW2 "another quite long passphrase"
#define ID_LEN 128
#define CURSOR_LEN 1024
#define MAX_PAGES 400
#define RACERS 8
#define RACE_ROUNDS 3

struct h_env env;

/* A pause between the pages of list_all (for paging while another process inserts). */
static int g_page_delay_ms;

/* While set: values that no response other than a successful reveal may contain (raw bytes). */
static const char *const *g_secrets;
static int g_scanned;

static void scan(const char *method, const char *path, const struct h_resp *r);

static int
setup(void **state)
{
	(void)state;
	client_opts.error_type = 1;
	client_opts.error_message = 1;
	client_opts.empty_204 = 1;
	client_opts.seen = scan;
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

/* After every test, pass or fail: no response scan carries over. */
static int
reset(void **state)
{
	(void)state;
	g_secrets = NULL;
	g_scanned = 0;
	g_page_delay_ms = 0;
	return 0;
}

/* --- small helpers ------------------------------------------------- */

/* n copies of the string unit, malloc'd (caller frees). */
static char *
repeat(const char *unit, size_t n)
{
	size_t ul = strlen(unit), i;
	char *p = malloc(ul * n + 1);

	assert_non_null(p);
	for (i = 0; i < n; i++)
		memcpy(p + i * ul, unit, ul);
	p[ul * n] = '\0';
	return p;
}

/* s percent-encoded for a query string, in a ring buffer. */
static const char *
qenc(const char *s)
{
	static const char hx[] = "0123456789ABCDEF";
	static char buf[4][F_LEN];
	static unsigned slot;
	char *p = buf[slot++ % 4];
	size_t n = 0;
	unsigned char c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		assert_true(n + 4 < F_LEN);
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
			p[n++] = (char)c;
		else {
			p[n++] = '%';
			p[n++] = hx[c >> 4];
			p[n++] = hx[c & 15];
		}
	}
	p[n] = '\0';
	return p;
}

/* 1 if t is YYYY-MM-DDTHH:MM:SS, optionally .fraction, then Z. */
static int
is_time(const char *t)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd";
	size_t i;

	for (i = 0; pat[i] != '\0'; i++)
		if (pat[i] == 'd' ? !isdigit((unsigned char)t[i]) : t[i] != pat[i])
			return 0;
	t += i;
	if (*t == '.') {
		t++;
		if (!isdigit((unsigned char)*t))
			return 0;
		while (isdigit((unsigned char)*t))
			t++;
	}
	return strcmp(t, "Z") == 0;
}

/* A UTC time as YYYY-MM-DDTHH:MM:SSZ into out (21 bytes or more). */
static void
fmt_time(time_t t, char *out, size_t len)
{
	struct tm tm;

	assert_non_null(gmtime_r(&t, &tm));
	assert_int_equal(strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm), 20);
}

/* Asserts that k is absent or null in o (an optional field that is not set). */
static void
assert_unset(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (v != NULL && !cJSON_IsNull(v)) {
		char *p = cJSON_PrintUnformatted(v);

		fail_msg("\"%s\" should be unset (null or absent), is %s", k, p ? p : "?");
	}
}

/* Asserts that the sensitive field k is exactly {"set": set}. */
static void
assert_set(const cJSON *o, const char *k, int set)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!cJSON_IsObject(v) || cJSON_GetArraySize(v) != 1) {
		char *p = v ? cJSON_PrintUnformatted(v) : NULL;

		fail_msg("sensitive \"%s\" is not {\"set\": bool}: %s", k, p ? p : "(absent)");
	}
	if (jbool(v, "set") != set)
		fail_msg("sensitive \"%s\" should be {\"set\": %s}", k, set ? "true" : "false");
}

/*
 * 422 validation_failed whose "fields" names exactly the n given fields, each
 * with a non-empty message (one message per field); frees the response.
 */
static void
wfields(struct h_resp *r, const char *const *names, int n, const char *what)
{
	const cJSON *fields, *it;
	cJSON *j;
	int i;

	if (r->status != 422)
		fail_msg("%s: expected 422, got %ld: %.400s", what, r->status, r->body);
	assert_error(r, 422, "validation_failed");
	j = jparse_text(r->body, r->status);
	fields = jobj(jobj(j, "error"), "fields");
	for (i = 0; i < n; i++) {
		it = cJSON_GetObjectItemCaseSensitive(fields, names[i]);
		if (!cJSON_IsString(it) || it->valuestring[0] == '\0')
			fail_msg("%s: fields has no message for \"%s\": %.400s", what, names[i], r->body);
	}
	if (cJSON_GetArraySize(fields) != n)
		fail_msg("%s: expected %d field message(s), got: %.400s", what, n, r->body);
	cJSON_Delete(j);
	h_resp_free(r);
}

/* 422 naming exactly the one field; frees the response. */
static void
wfield_only(struct h_resp *r, const char *field, const char *what)
{
	wfields(r, &field, 1, what);
}

/* base (a JSON object) with field set to the JSON value frag, or left out (frag NULL); malloc'd. */
static char *
with(const char *base, const char *field, const char *frag)
{
	cJSON *o = cJSON_Parse(base), *v;
	char *out;

	if (o == NULL)
		fail_msg("bad base body: %.200s", base);
	cJSON_DeleteItemFromObjectCaseSensitive(o, field);
	if (frag != NULL) {
		if ((v = cJSON_Parse(frag)) == NULL)
			fail_msg("bad JSON fragment: %.200s", frag);
		cJSON_AddItemToObject(o, field, v);
	}
	out = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	assert_non_null(out);
	return out;
}

/* A JSON string literal of s (escaped), malloc'd. */
static char *
jq(const char *s)
{
	cJSON *v = cJSON_CreateString(s);
	char *out;

	assert_non_null(v);
	out = cJSON_PrintUnformatted(v);
	cJSON_Delete(v);
	assert_non_null(out);
	return out;
}

/* --- requests ------------------------------------------------------ */

/*
 * Fails if the response (body or headers) holds one of g_secrets; successful
 * reveals excepted. client_opts.seen: it sees every request's answer.
 */
static void
scan(const char *method, const char *path, const struct h_resp *r)
{
	size_t i;

	if (g_secrets == NULL || (strstr(path, "/reveal") != NULL && r->status == 200))
		return;
	for (i = 0; g_secrets[i] != NULL; i++)
		if (h_contains(r->body, r->len, g_secrets[i]) ||
		    h_contains(r->headers, strlen(r->headers), g_secrets[i]))
			fail_msg("%s %s (%ld) carries the sensitive value '%s': %.400s", method, path, r->status,
			         g_secrets[i], r->body);
	g_scanned++;
}

/* sreq expecting 422 with exactly the one field. */
static void
sfield(const struct sess *s, const char *method, const char *sub, const char *body, const char *field)
{
	struct h_resp r;

	sreq(s, method, sub, body, &r);
	wfield_only(&r, field, F("%s %s %.200s", method, sub, body ? body : ""));
}

/* --- organizations and users through immidb-admin ------------------ */

/* An org with an admin (a), a member (m) and a readonly user (ro), logged in from ip; any may be NULL. */
static void
org_with(const char *slug, const char *ip, struct sess *a, struct sess *m, struct sess *ro)
{
	org_new(slug);
	if (a != NULL) {
		user_new_pw(slug, F("ad@%s.test", slug), "admin", PW, NULL, 0);
		login_pw(slug, ip, F("ad@%s.test", slug), PW, a);
	}
	if (m != NULL) {
		user_new_pw(slug, F("mb@%s.test", slug), "member", PW, NULL, 0);
		login_pw(slug, ip, F("mb@%s.test", slug), PW, m);
	}
	if (ro != NULL) {
		user_new_pw(slug, F("ro@%s.test", slug), "readonly", PW, NULL, 0);
		login_pw(slug, ip, F("ro@%s.test", slug), PW, ro);
	}
}

/* --- the org database, from the test's side ------------------------ */

/* The org's id. */
static void
org_id_of(const char *slug, char *org_id)
{
	char path[IDB_PATH_MAX];
	struct idb_org_keys k;

	org_keys_id(slug, &k, path, org_id, ID_LEN);
	idb_org_keys_wipe(&k);
}

/* Runs a fixed statement with two text parameters; its sqlite3_step result; the message into err. */
static int
q_exec(sqlite3 *db, const char *sql, const char *a, const char *b, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
	if (a != NULL)
		sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
	if (b != NULL)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (err != NULL)
		snprintf(err, errlen, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

/* The blob of a fixed query with one text parameter, malloc'd into *out (NULL for SQL NULL). */
static size_t
q_blob(sqlite3 *db, const char *sql, const char *a, unsigned char **out)
{
	sqlite3_stmt *st = NULL;
	const void *b;
	size_t n;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
	sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW)
		fail_msg("no row for %s", sql);
	b = sqlite3_column_blob(st, 0);
	n = (size_t)sqlite3_column_bytes(st, 0);
	*out = NULL;
	if (b != NULL) {
		*out = malloc(n ? n : 1);
		assert_non_null(*out);
		memcpy(*out, b, n);
	}
	sqlite3_finalize(st);
	return n;
}

/* --- records ------------------------------------------------------- */

/* POST /<res> expecting 201; the record's id into id (ID_LEN). */
static void
create(const struct sess *s, const char *res, const char *body, char *id)
{
	cJSON *j = sok(s, "POST", F("/%s", res), body, 201);

	copy(id, ID_LEN, jstr(j, "id"));
	cJSON_Delete(j);
}

static cJSON *
get(const struct sess *s, const char *res, const char *id)
{
	return sok(s, "GET", F("/%s/%s", res, id), NULL, 200);
}

/* The current version of a record. */
static long long
version_of(const struct sess *s, const char *res, const char *id)
{
	cJSON *j = get(s, res, id);
	long long v = jint(j, "version");

	cJSON_Delete(j);
	return v;
}

/* The metadata every record carries. */
static void
assert_meta(const cJSON *rec, long long version, const char *created_by, const char *updated_by)
{
	const char *id = jstr(rec, "id"), *p;

	/* Opaque: not a sequential integer, long enough for 128 random bits. */
	assert_true(strlen(id) >= 16);
	for (p = id; *p != '\0' && isdigit((unsigned char)*p); p++)
		;
	assert_true(*p != '\0');
	assert_int_equal(jint(rec, "version"), version);
	if (!is_time(jstr(rec, "created_at")) || !is_time(jstr(rec, "updated_at")))
		fail_msg("created_at/updated_at not RFC 3339 UTC: %s %s", jstr(rec, "created_at"), jstr(rec, "updated_at"));
	assert_true(strcmp(jstr(rec, "updated_at"), jstr(rec, "created_at")) >= 0);
	assert_string_equal(jstr(rec, "created_by"), created_by);
	assert_string_equal(jstr(rec, "updated_by"), updated_by);
}

/* POST /<res>/<id>/reveal {"field"} expecting 200 with value (NULL: null). */
static void
reveal(const struct sess *s, const char *res, const char *id, const char *field, const char *value)
{
	cJSON *j = sok(s, "POST", F("/%s/%s/reveal", res, id), F("{\"field\":\"%s\"}", field), 200);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");

	assert_string_equal(jstr(j, "field"), field);
	if (value == NULL) {
		if (!cJSON_IsNull(v))
			fail_msg("reveal %s of %s: expected null", field, res);
	} else {
		if (!cJSON_IsString(v))
			fail_msg("reveal %s of %s: value is not a string", field, res);
		assert_string_equal(v->valuestring, value);
	}
	cJSON_Delete(j);
}

/*
 * Every id of a list, page by page with limit (0: no limit parameter), in
 * order, into ids (max entries); sub may hold a query already. Checks the
 * list shape and that no page is longer than limit. Returns the count.
 */
static int
list_all(const struct sess *s, const char *sub, int limit, char (*ids)[ID_LEN], int max)
{
	char cursor[CURSOR_LEN] = "", path[F_LEN];
	const char *sep = strchr(sub, '?') ? "&" : "?";
	const cJSON *items, *it, *nc;
	int n = 0, pages = 0, w;
	cJSON *j;

	for (;;) {
		if (limit > 0 && cursor[0] != '\0')
			w = snprintf(path, sizeof(path), "%s%slimit=%d&cursor=%s", sub, sep, limit, qenc(cursor));
		else if (limit > 0)
			w = snprintf(path, sizeof(path), "%s%slimit=%d", sub, sep, limit);
		else if (cursor[0] != '\0')
			w = snprintf(path, sizeof(path), "%s%scursor=%s", sub, sep, qenc(cursor));
		else
			w = snprintf(path, sizeof(path), "%s", sub);
		assert_true(w > 0 && (size_t)w < sizeof(path));
		j = sok(s, "GET", path, NULL, 200);
		items = jarr(j, "items");
		if (limit > 0 && cJSON_GetArraySize(items) > limit)
			fail_msg("GET %s: %d items for limit %d", path, cJSON_GetArraySize(items), limit);
		cJSON_ArrayForEach(it, items)
		{
			assert_true(n < max);
			copy(ids[n++], ID_LEN, jstr(it, "id"));
		}
		nc = cJSON_GetObjectItemCaseSensitive(j, "next_cursor");
		if (cJSON_IsNull(nc)) {
			cJSON_Delete(j);
			break;
		}
		if (!cJSON_IsString(nc) || nc->valuestring[0] == '\0')
			fail_msg("GET %s: next_cursor is neither null nor a string", path);
		copy(cursor, sizeof(cursor), nc->valuestring);
		cJSON_Delete(j);
		if (++pages > MAX_PAGES)
			fail_msg("GET %s: more than %d pages", sub, MAX_PAGES);
		if (g_page_delay_ms > 0)
			h_sleep_ms(g_page_delay_ms);
	}
	return n;
}

/* The number of items of a list over every page. */
static int
count_all(const struct sess *s, const char *sub)
{
	static char ids[2048][ID_LEN];

	return list_all(s, sub, 200, ids, 2048);
}

/* 1 if id is among the n ids. */
static int
has_id(char (*ids)[ID_LEN], int n, const char *id)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return 1;
	return 0;
}

/* The ids of a list (one page of up to 200) must be exactly the given ones, in any order. */
static void
list_is(const struct sess *s, const char *sub, const char *const *want_ids, int n)
{
	static char ids[256][ID_LEN];
	int got = list_all(s, sub, 200, ids, 256), i;

	if (got != n)
		fail_msg("GET %s: %d items, expected %d", sub, got, n);
	for (i = 0; i < n; i++)
		if (!has_id(ids, got, want_ids[i]))
			fail_msg("GET %s: item %d (%s) missing", sub, i, want_ids[i]);
}

#define LIST_IS(s, sub, ...)                                                                                       \
	do {                                                                                                       \
		const char *const w_[] = {__VA_ARGS__};                                                            \
		list_is((s), (sub), w_, (int)(sizeof(w_) / sizeof(w_[0])));                                        \
	} while (0)
#define LIST_EMPTY(s, sub) list_is((s), (sub), NULL, 0)

/* --- the change log, through the API -------------------------------- */

/* Every change-log entry matching query (without '?', may be ""), as one array (caller deletes). */
static cJSON *
changes(const struct sess *a, const char *query)
{
	char cursor[CURSOR_LEN] = "", path[F_LEN];
	cJSON *all = cJSON_CreateArray(), *j;
	const cJSON *it, *nc;
	int pages = 0, w;

	assert_non_null(all);
	for (;;) {
		w = snprintf(path, sizeof(path), "/changes?%s%slimit=200%s%s", query, query[0] ? "&" : "",
		             cursor[0] ? "&cursor=" : "", cursor[0] ? qenc(cursor) : "");
		assert_true(w > 0 && (size_t)w < sizeof(path));
		j = sok(a, "GET", path, NULL, 200);
		cJSON_ArrayForEach(it, jarr(j, "items")) cJSON_AddItemToArray(all, cJSON_Duplicate(it, 1));
		nc = cJSON_GetObjectItemCaseSensitive(j, "next_cursor");
		if (cJSON_IsNull(nc)) {
			cJSON_Delete(j);
			break;
		}
		copy(cursor, sizeof(cursor), jstr(j, "next_cursor"));
		cJSON_Delete(j);
		assert_true(++pages < MAX_PAGES);
	}
	return all;
}

static int
changes_n(const struct sess *a, const char *query)
{
	cJSON *c = changes(a, query);
	int n = cJSON_GetArraySize(c);

	cJSON_Delete(c);
	return n;
}

/* Asserts one change-log entry's envelope. */
static void
assert_entry(const cJSON *e, const char *action, const char *entity, const char *entity_id, const struct sess *actor)
{
	const cJSON *who = jobj(e, "actor");

	assert_true(jint(e, "seq") >= 1);
	if (!is_time(jstr(e, "at")))
		fail_msg("change at is not RFC 3339 UTC: %s", jstr(e, "at"));
	assert_string_equal(jstr(e, "action"), action);
	assert_string_equal(jstr(e, "entity"), entity);
	assert_string_equal(jstr(e, "entity_id"), entity_id);
	(void)jobj(e, "changes");
	if (actor != NULL) {
		assert_string_equal(jstr(who, "kind"), "user");
		assert_string_equal(jstr(who, "id"), actor->user_id);
		assert_string_equal(jstr(who, "email"), actor->email);
	}
}

/* Asserts changes[field] == {"from": from, "to": to}, each given as JSON text ("null", "\"x\"", "30"). */
static void
assert_change(const cJSON *e, const char *field, const char *from, const char *to)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(jobj(e, "changes"), field);
	cJSON *f = cJSON_Parse(from), *t = cJSON_Parse(to);
	char *got = c ? cJSON_PrintUnformatted(c) : NULL;

	assert_non_null(f);
	assert_non_null(t);
	if (!cJSON_IsObject(c) || cJSON_GetArraySize(c) != 2 ||
	    !cJSON_Compare(cJSON_GetObjectItemCaseSensitive(c, "from"), f, 1) ||
	    !cJSON_Compare(cJSON_GetObjectItemCaseSensitive(c, "to"), t, 1))
		fail_msg("changes.%s is %s, expected {\"from\":%s,\"to\":%s}", field, got ? got : "(absent)", from, to);
	free(got);
	cJSON_Delete(f);
	cJSON_Delete(t);
}

/* Asserts that changes has no entry for field (it did not change). */
static void
assert_no_change(const cJSON *e, const char *field)
{
	if (cJSON_GetObjectItemCaseSensitive(jobj(e, "changes"), field) != NULL)
		fail_msg("changes.%s present for a field that did not change", field);
}

/* --- bad-value tables ---------------------------------------------- */

/*
 * One bad value of one field: frag is its JSON text; with unit, the value is
 * a JSON string of prefix, n copies of unit (JSON-escaped text) and suffix; with
 * neither, the field is left out. err names the field the 422 must name
 * (NULL: field). "@name" as frag stands for the string of a reference set
 * at run time with ref_set.
 */
struct badv {
	const char *field, *frag, *unit;
	size_t n;
	const char *suffix, *err, *prefix;
};

#define MISSING(f) {f, NULL, NULL, 0, NULL, NULL, NULL}
#define V(f, frag) {f, frag, NULL, 0, NULL, NULL, NULL}
#define VE(f, frag, e) {f, frag, NULL, 0, NULL, e, NULL}
#define LONG(f, u, n) {f, NULL, u, n, NULL, NULL, NULL}
#define LONGS(f, u, n, sfx) {f, NULL, u, n, sfx, NULL, NULL}
#define LONGP(f, pfx, u, n) {f, NULL, u, n, NULL, NULL, pfx}

static struct {
	const char *name;
	char val[ID_LEN];
} g_ref[16];
static int g_nref;

static void
ref_set(const char *name, const char *val)
{
	int i;

	for (i = 0; i < g_nref; i++)
		if (strcmp(g_ref[i].name, name) == 0)
			break;
	if (i == g_nref) {
		assert_true(g_nref < 16);
		g_nref++;
	}
	g_ref[i].name = name;
	copy(g_ref[i].val, ID_LEN, val);
}

/* The JSON text of a bad value, malloc'd; NULL when the field is to be left out. */
static char *
badv_json(const struct badv *b)
{
	char *body, *out;
	size_t n;
	int i;

	if (b->unit != NULL) {
		body = repeat(b->unit, b->n);
		n = strlen(body) + (b->suffix ? strlen(b->suffix) : 0) + (b->prefix ? strlen(b->prefix) : 0) + 3;
		out = malloc(n);
		assert_non_null(out);
		snprintf(out, n, "\"%s%s%s\"", b->prefix ? b->prefix : "", body, b->suffix ? b->suffix : "");
		free(body);
		return out;
	}
	if (b->frag == NULL)
		return NULL;
	if (b->frag[0] == '@') {
		for (i = 0; i < g_nref; i++)
			if (strcmp(g_ref[i].name, b->frag + 1) == 0)
				return jq(g_ref[i].val);
		fail_msg("no reference %s", b->frag);
	}
	out = strdup(b->frag);
	assert_non_null(out);
	return out;
}

/* A short description of a bad value for messages. */
static const char *
badv_what(const struct badv *b)
{
	if (b->unit != NULL)
		return F("%s = %s%zu x \"%.10s\"%s", b->field, b->prefix ? b->prefix : "", b->n, b->unit,
		         b->suffix ? b->suffix : "");
	if (b->frag == NULL)
		return F("%s left out", b->field);
	return F("%s = %.120s", b->field, b->frag);
}

/*
 * Each bad value in a POST of base (valid otherwise) to /<res>, and, if
 * patch_id is given, in a PATCH of that record at version: 422 naming
 * exactly that field, nothing written.
 */
static void
run_bad(const struct sess *s, const char *res, const char *base, const struct badv *bad, size_t n,
        const char *patch_id, long long version)
{
	struct h_resp r;
	char *v, *body;
	size_t i;

	for (i = 0; i < n; i++) {
		v = badv_json(&bad[i]);
		body = with(base, bad[i].field, v);
		sreq(s, "POST", F("/%s", res), body, &r);
		wfield_only(&r, bad[i].err ? bad[i].err : bad[i].field, F("POST %s with %s", res, badv_what(&bad[i])));
		free(body);
		if (patch_id != NULL && v != NULL) {
			body = with(F("{\"version\":%lld}", version), bad[i].field, v);
			sreq(s, "PATCH", F("/%s/%s", res, patch_id), body, &r);
			wfield_only(&r, bad[i].err ? bad[i].err : bad[i].field,
			            F("PATCH %s with %s", res, badv_what(&bad[i])));
			free(body);
		}
		free(v);
	}
}

/* Each good value (a table of the same shape) in a POST of base: 201 and the value stored as sent. */
static void
run_good(const struct sess *s, const char *res, const char *base, const struct badv *good, size_t n)
{
	const cJSON *got;
	cJSON *j, *sent;
	char *v, *body;
	size_t i;

	for (i = 0; i < n; i++) {
		v = badv_json(&good[i]);
		assert_non_null(v);
		body = with(base, good[i].field, v);
		j = sok(s, "POST", F("/%s", res), body, 201);
		sent = cJSON_Parse(v);
		got = cJSON_GetObjectItemCaseSensitive(j, good[i].field);
		if (!cJSON_Compare(got, sent, 1))
			fail_msg("POST %s with %s: not stored as sent", res, badv_what(&good[i]));
		cJSON_Delete(sent);
		/* And as read back. */
		{
			cJSON *g = get(s, res, jstr(j, "id"));

			assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(g, good[i].field), got, 1));
			cJSON_Delete(g);
		}
		cJSON_Delete(j);
		free(body);
		free(v);
	}
}

/* ==================================================================== */
/* --- tests: records ------------------------------------------------ */

static void
clients_round_trip_every_field_with_metadata(void **state)
{
	static const char *const text[][2] = {
	    {"family_name", "Kowalska"},       {"given_name", "Zofia"},
	    {"other_names", "Maria Anna"},     {"date_of_birth", "1988-07-14"},
	    {"country_of_birth", "Poland"},    {"citizenship", "Polish"},
	    {"email", "zofia@example.test"},   {"phone", "+1 555 0100"},
	    {"address", "12 Main St\nApt 4\nSpringfield"}, {"notes", "First line\nSecond line"},
	};
	char id[ID_LEN], id2[ID_LEN], created_at[64];
	struct sess a, m;
	cJSON *j, *body;
	size_t i;
	char *b;

	(void)state;
	org_with("dt-client", "198.18.1.1", &a, &m, NULL);
	body = cJSON_CreateObject();
	for (i = 0; i < sizeof(text) / sizeof(text[0]); i++)
		cJSON_AddStringToObject(body, text[i][0], text[i][1]);
	cJSON_AddStringToObject(body, "a_number", "A012345678");
	cJSON_AddStringToObject(body, "passport_number", "EK1234567");
	cJSON_AddStringToObject(body, "ssn", "123-45-6789");
	b = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	j = sok(&a, "POST", "/clients", b, 201);
	free(b);
	for (i = 0; i < sizeof(text) / sizeof(text[0]); i++)
		assert_string_equal(jstr(j, text[i][0]), text[i][1]);
	assert_set(j, "a_number", 1);
	assert_set(j, "passport_number", 1);
	assert_set(j, "ssn", 1);
	assert_meta(j, 1, a.user_id, a.user_id);
	copy(id, sizeof(id), jstr(j, "id"));
	copy(created_at, sizeof(created_at), jstr(j, "created_at"));
	cJSON_Delete(j);

	/* Read back, alone and in the list. */
	j = get(&m, "clients", id);
	for (i = 0; i < sizeof(text) / sizeof(text[0]); i++)
		assert_string_equal(jstr(j, text[i][0]), text[i][1]);
	assert_set(j, "a_number", 1);
	assert_set(j, "passport_number", 1);
	assert_set(j, "ssn", 1);
	assert_meta(j, 1, a.user_id, a.user_id);
	cJSON_Delete(j);
	j = sok(&m, "GET", "/clients", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 1);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "next_cursor")));
	{
		const cJSON *it = cJSON_GetArrayItem(jarr(j, "items"), 0);

		assert_string_equal(jstr(it, "id"), id);
		for (i = 0; i < sizeof(text) / sizeof(text[0]); i++)
			assert_string_equal(jstr(it, text[i][0]), text[i][1]);
		assert_set(it, "a_number", 1);
		assert_set(it, "ssn", 1);
	}
	cJSON_Delete(j);

	/* The smallest client: optional fields unset, sensitive ones {"set": false}; ids differ. */
	j = sok(&m, "POST", "/clients", "{\"family_name\":\"Li\",\"given_name\":\"Wei\"}", 201);
	copy(id2, sizeof(id2), jstr(j, "id"));
	assert_string_not_equal(id, id2);
	for (i = 2; i < sizeof(text) / sizeof(text[0]); i++)
		assert_unset(j, text[i][0]);
	assert_set(j, "a_number", 0);
	assert_set(j, "passport_number", 0);
	assert_set(j, "ssn", 0);
	assert_meta(j, 1, m.user_id, m.user_id);
	cJSON_Delete(j);

	/* PATCH by another user: version +1, updated_by changes, null clears (sensitive too). */
	j = sok(&m, "PATCH", F("/clients/%s", id),
	        "{\"version\":1,\"given_name\":\"Zosia\",\"other_names\":null,\"a_number\":null,\"ssn\":\"987654321\"}",
	        200);
	assert_meta(j, 2, a.user_id, m.user_id);
	assert_string_equal(jstr(j, "created_at"), created_at);
	assert_string_equal(jstr(j, "given_name"), "Zosia");
	assert_string_equal(jstr(j, "family_name"), "Kowalska");
	assert_unset(j, "other_names");
	assert_set(j, "a_number", 0);
	assert_set(j, "passport_number", 1);
	assert_set(j, "ssn", 1);
	cJSON_Delete(j);
	j = sok(&a, "PATCH", F("/clients/%s", id), "{\"version\":2,\"date_of_birth\":null,\"email\":null}", 200);
	assert_meta(j, 3, a.user_id, a.user_id);
	assert_unset(j, "date_of_birth");
	assert_unset(j, "email");
	assert_string_equal(jstr(j, "address"), "12 Main St\nApt 4\nSpringfield");
	cJSON_Delete(j);
	j = get(&a, "clients", id);
	assert_int_equal(jint(j, "version"), 3);
	assert_string_equal(jstr(j, "given_name"), "Zosia");
	assert_unset(j, "other_names");
	assert_unset(j, "email");
	assert_set(j, "a_number", 0);
	cJSON_Delete(j);
	/* The values themselves, verbatim. */
	reveal(&m, "clients", id, "ssn", "987654321");
	reveal(&m, "clients", id, "passport_number", "EK1234567");
	reveal(&a, "clients", id, "a_number", NULL);
	reveal(&a, "clients", id2, "ssn", NULL);
}

/* A fixed query: 1 if the record ?1 of res is in its table, marked deleted. */
static const char *
deleted_sql(const char *res)
{
	static const char *const q[][2] = {
	    {"clients", "SELECT count(*) FROM clients WHERE id = ?1 AND deleted_at IS NOT NULL"},
	    {"cases", "SELECT count(*) FROM cases WHERE id = ?1 AND deleted_at IS NOT NULL"},
	    {"events", "SELECT count(*) FROM events WHERE id = ?1 AND deleted_at IS NOT NULL"},
	    {"notes", "SELECT count(*) FROM notes WHERE id = ?1 AND deleted_at IS NOT NULL"},
	    {"credentials", "SELECT count(*) FROM credentials WHERE id = ?1 AND deleted_at IS NOT NULL"},
	};
	size_t i;

	for (i = 0; i < sizeof(q) / sizeof(q[0]); i++)
		if (strcmp(q[i][0], res) == 0)
			return q[i][1];
	fail_msg("no table for %s", res);
	return NULL;
}

/* Create, read, list, patch, stale patch, delete, and the three change-log entries, for one resource. */
static void
crud(const struct sess *a, const char *res, const char *body, const char *patch, const char *field,
     const char *from, const char *value)
{
	char id[ID_LEN];
	cJSON *j, *c;
	const cJSON *it;
	int n0 = count_all(a, F("/%s", res));

	j = sok(a, "POST", F("/%s", res), body, 201);
	assert_meta(j, 1, a->user_id, a->user_id);
	copy(id, sizeof(id), jstr(j, "id"));
	cJSON_Delete(j);
	assert_int_equal(count_all(a, F("/%s", res)), n0 + 1);
	j = sok(a, "PATCH", F("/%s/%s", res, id), F("{\"version\":1,%s}", patch), 200);
	assert_meta(j, 2, a->user_id, a->user_id);
	assert_string_equal(jstr(j, field), value);
	cJSON_Delete(j);
	j = get(a, res, id);
	assert_int_equal(jint(j, "version"), 2);
	assert_string_equal(jstr(j, field), value);
	cJSON_Delete(j);
	/* -bad: stale and future versions are 409 and change nothing. */
	serr(a, "PATCH", F("/%s/%s", res, id), F("{\"version\":1,%s}", patch), 409, "conflict");
	serr(a, "PATCH", F("/%s/%s", res, id), F("{\"version\":3,%s}", patch), 409, "conflict");
	assert_int_equal(version_of(a, res, id), 2);

	assert_null(sok(a, "DELETE", F("/%s/%s", res, id), NULL, 204));
	/* -bad: gone from every read and write. */
	serr(a, "GET", F("/%s/%s", res, id), NULL, 404, "not_found");
	serr(a, "PATCH", F("/%s/%s", res, id), F("{\"version\":2,%s}", patch), 404, "not_found");
	serr(a, "DELETE", F("/%s/%s", res, id), NULL, 404, "not_found");
	assert_int_equal(count_all(a, F("/%s", res)), n0);
	{
		static char ids[256][ID_LEN];
		int n = list_all(a, F("/%s", res), 200, ids, 256);

		assert_false(has_id(ids, n, id));
	}

	/* Kept for the change log: create, update, delete, in that order. */
	c = changes(a, F("entity=%s&entity_id=%s", res, qenc(id)));
	assert_int_equal(cJSON_GetArraySize(c), 3);
	assert_entry(cJSON_GetArrayItem(c, 0), "create", res, id, a);
	assert_entry(cJSON_GetArrayItem(c, 1), "update", res, id, a);
	assert_entry(cJSON_GetArrayItem(c, 2), "delete", res, id, a);
	assert_true(jint(cJSON_GetArrayItem(c, 0), "seq") < jint(cJSON_GetArrayItem(c, 1), "seq"));
	assert_true(jint(cJSON_GetArrayItem(c, 1), "seq") < jint(cJSON_GetArrayItem(c, 2), "seq"));
	assert_int_equal(cJSON_GetArraySize(jobj(cJSON_GetArrayItem(c, 2), "changes")), 0);
	it = cJSON_GetArrayItem(c, 1);
	{
		char *q = jq(value);

		assert_change(it, field, from, q);
		free(q);
	}
	cJSON_Delete(c);

	/* Still in storage, marked deleted. */
	{
		sqlite3 *db = org_db(a->slug);
		const char *sql = deleted_sql(res);

		assert_int_equal(q_ll_bind(db, sql, id, NULL), 1);
		idb_db_close(db);
	}
}

static void
every_resource_is_created_read_patched_and_soft_deleted(void **state)
{
	char client[ID_LEN], kase[ID_LEN];
	struct sess a;

	(void)state;
	org_with("dt-crud", "198.18.1.2", &a, NULL, NULL);
	create(&a, "clients", "{\"family_name\":\"Nguyen\",\"given_name\":\"An\"}", client);
	create(&a, "cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-130\"}", client), kase);
	crud(&a, "clients", "{\"family_name\":\"Okoye\",\"given_name\":\"Chidi\"}", "\"phone\":\"555-0101\"", "phone",
	     "null", "555-0101");
	crud(&a, "cases", F("{\"client_id\":\"%s\",\"case_type\":\"N-400\"}", client), "\"title\":\"Citizenship\"",
	     "title", "null", "Citizenship");
	crud(&a, "events", "{\"title\":\"Hearing\",\"kind\":\"hearing\",\"starts_at\":\"2026-11-27T09:30:00Z\"}",
	     "\"location\":\"Courtroom 4\"", "location", "null", "Courtroom 4");
	crud(&a, "notes", F("{\"body\":\"Called.\",\"case_id\":\"%s\"}", kase), "\"body\":\"Called twice.\"", "body",
	     "\"Called.\"", "Called twice.");
	crud(&a, "credentials", F("{\"client_id\":\"%s\",\"label\":\"USCIS online account\"}", client),
	     "\"username\":\"an.nguyen\"", "username", "null", "an.nguyen");
	/* The records that were not deleted are still there. */
	assert_int_equal(count_all(&a, "/clients"), 1);
	assert_int_equal(count_all(&a, "/cases"), 1);
}

/* --- tests: validation by table ------------------------------------ */

static const struct badv client_bad[] = {
    MISSING("family_name"), V("family_name", "\"\""), V("family_name", "null"), V("family_name", "5"),
    V("family_name", "true"), V("family_name", "[]"), V("family_name", "{}"), V("family_name", "[\"Smith\"]"),
    LONG("family_name", "a", 201), LONG("family_name", "\xc3\xa9", 201), V("family_name", "\"Smith\\nJones\""),
    MISSING("given_name"), V("given_name", "\"\""), V("given_name", "null"), V("given_name", "7"),
    LONG("given_name", "b", 201),
    LONG("other_names", "c", 501), V("other_names", "3"), V("other_names", "false"),
    V("date_of_birth", "\"2025-02-29\""), V("date_of_birth", "\"2025-04-31\""), V("date_of_birth", "\"2025-13-01\""),
    V("date_of_birth", "\"2025-00-10\""), V("date_of_birth", "\"2025-01-00\""), V("date_of_birth", "\"2025-1-01\""),
    V("date_of_birth", "\"25-01-01\""), V("date_of_birth", "\"2025/01/01\""), V("date_of_birth", "\"20250101\""),
    V("date_of_birth", "\"2025-01-01T00:00:00Z\""), V("date_of_birth", "\" 2025-01-01\""),
    V("date_of_birth", "\"2025-01-01 \""), V("date_of_birth", "\"\""), V("date_of_birth", "20250101"),
    V("date_of_birth", "\"yesterday\""),
    LONG("country_of_birth", "d", 101), V("country_of_birth", "1"),
    LONG("citizenship", "e", 101), V("citizenship", "[]"),
    V("email", "\"not-an-email\""), V("email", "\"a@\""), V("email", "\"@example.test\""),
    V("email", "\"a b@example.test\""), V("email", "\"\""), V("email", "42"),
    LONGS("email", "f", 242, "@example.test"),
    LONG("phone", "1", 51), V("phone", "5551234"),
    LONG("address", "g", 1001), V("address", "{}"),
    V("a_number", "\"A1234567\""), V("a_number", "\"1234567\""), V("a_number", "\"A1234567890\""),
    V("a_number", "\"1234567890\""), V("a_number", "\"B12345678\""), V("a_number", "\"a12345678\""),
    V("a_number", "\"A12345678X\""), V("a_number", "\"A-12345678\""), V("a_number", "\" A12345678\""),
    V("a_number", "\"\""), V("a_number", "12345678"), V("a_number", "{\"set\":true}"),
    V("passport_number", "\"AB12\""), LONG("passport_number", "P", 21), V("passport_number", "\"AB-12345\""),
    V("passport_number", "\"AB 12345\""), V("passport_number", "\"\xc3\x84" "B12345\""), V("passport_number", "\"\""),
    V("passport_number", "12345678"),
    V("ssn", "\"123-45-678\""), V("ssn", "\"12-345-6789\""), V("ssn", "\"1234-5-6789\""), V("ssn", "\"abc-de-fghi\""),
    V("ssn", "\"123 45 6789\""), V("ssn", "\"1234567890\""), V("ssn", "\"123-45-6789 \""), V("ssn", "\"\""),
    V("ssn", "123456789"),
    LONG("notes", "h", 100001), V("notes", "1"),
    V("colour", "\"blue\""), V("id", "\"c_123\""), V("created_by", "\"u_1\""), V("deleted_at", "null"),
    V("Family_Name", "\"Smith\""),
};

static const struct badv client_good[] = {
    LONG("family_name", "a", 200), LONG("family_name", "\xc3\xa9", 200), LONG("given_name", "\xe2\x82\xac", 200),
    LONG("other_names", "c", 500), V("date_of_birth", "\"2024-02-29\""), V("date_of_birth", "\"2000-12-31\""),
    LONG("country_of_birth", "d", 100), LONG("citizenship", "e", 100), LONGS("email", "f", 241, "@example.test"),
    V("email", "\"o'brien+tag@example.test\""), LONG("phone", "1", 50), LONG("address", "line\\n", 166),
    LONG("notes", "n\\n", 50000),
};

static void
clients_bad_values_are_422_per_field_and_write_nothing(void **state)
{
	static const char *const sens[][2] = {
	    {"a_number", "12345678"},        {"a_number", "A123456789"},  {"a_number", "123456789"},
	    {"passport_number", "AB123"},    {"passport_number", "ABCDEFGHIJ0123456789"},
	    {"ssn", "123-45-6789"},          {"ssn", "123456789"},        {"ssn", "123-456789"},
	};
	const char *base = "{\"family_name\":\"Base\",\"given_name\":\"Line\"}";
	char id[ID_LEN];
	struct sess a;
	size_t i;

	(void)state;
	org_with("dt-vclient", "198.18.1.3", &a, NULL, NULL);
	create(&a, "clients", base, id);
	run_bad(&a, "clients", base, client_bad, sizeof(client_bad) / sizeof(client_bad[0]), id, 1);
	/* Nothing written: one client at version 1, one change-log entry. */
	assert_int_equal(count_all(&a, "/clients"), 1);
	assert_int_equal(version_of(&a, "clients", id), 1);
	assert_int_equal(changes_n(&a, "entity=clients"), 1);
	/* -bad: PATCH without a version, with a version of the wrong type. */
	sfield(&a, "PATCH", F("/clients/%s", id), "{\"phone\":\"1\"}", "version");
	sfield(&a, "PATCH", F("/clients/%s", id), "{\"version\":\"1\",\"phone\":\"1\"}", "version");
	sfield(&a, "PATCH", F("/clients/%s", id), "{\"version\":1.5,\"phone\":\"1\"}", "version");
	assert_int_equal(version_of(&a, "clients", id), 1);

	/* The boundaries that are good, counted in characters; sensitive patterns at both ends. */
	run_good(&a, "clients", base, client_good, sizeof(client_good) / sizeof(client_good[0]));
	for (i = 0; i < sizeof(sens) / sizeof(sens[0]); i++) {
		char *body = with(base, sens[i][0], F("\"%s\"", sens[i][1])), nid[ID_LEN];

		create(&a, "clients", body, nid);
		reveal(&a, "clients", nid, sens[i][0], sens[i][1]);
		free(body);
	}
}

static void
cases_bad_values_are_422_per_field_and_write_nothing(void **state)
{
	static const struct badv bad[] = {
	    MISSING("client_id"), V("client_id", "null"), V("client_id", "\"\""), V("client_id", "\"nope\""),
	    V("client_id", "\"00000000000000000000000000000000\""), V("client_id", "@deleted_client"),
	    V("client_id", "@other_client"), V("client_id", "@user"), V("client_id", "5"),
	    MISSING("case_type"), V("case_type", "\"\""), LONG("case_type", "x", 41), V("case_type", "null"),
	    V("case_type", "130"),
	    LONG("title", "t", 201), V("title", "1"),
	    V("status", "\"OPEN\""), V("status", "\"archived\""), V("status", "\"\""), V("status", "3"),
	    V("status", "[\"open\"]"),
	    V("receipt_number", "\"eac1234567890\""), V("receipt_number", "\"EAC123456789\""),
	    V("receipt_number", "\"EAC12345678901\""), V("receipt_number", "\"EA12345678901\""),
	    V("receipt_number", "\"EAC 1234567890\""), V("receipt_number", "\"\""), V("receipt_number", "1234567890123"),
	    V("priority_date", "\"2025-02-29\""), V("priority_date", "\"2025/01/01\""), V("priority_date", "20250101"),
	    V("priority_date", "\"2025-01-01T00:00:00Z\""),
	    V("assigned_user_id", "\"nope\""), V("assigned_user_id", "@other_user"), V("assigned_user_id", "@client"),
	    V("assigned_user_id", "5"),
	    LONG("notes", "n", 100001), V("notes", "false"),
	    V("sync", "true"), V("client", "\"x\""), V("version", "\"1\""),
	};
	static const struct badv good[] = {
	    V("status", "\"open\""), V("status", "\"pending\""), V("status", "\"approved\""), V("status", "\"denied\""),
	    V("status", "\"closed\""), V("status", "\"withdrawn\""), V("receipt_number", "\"EAC1234567890\""),
	    V("priority_date", "\"2024-02-29\""), V("assigned_user_id", "@user"), LONG("case_type", "x", 40),
	    LONG("title", "\xc3\xa9", 200), LONG("notes", "n\\n", 50000),
	};
	char base[512], client[ID_LEN], gone[ID_LEN], other[ID_LEN], id[ID_LEN], uid[ID_LEN], ouid[ID_LEN];
	struct sess a, b;
	cJSON *j;

	(void)state;
	org_with("dt-vcase", "198.18.1.4", &a, NULL, NULL);
	org_with("dt-vcase-b", "198.18.1.4", &b, NULL, NULL);
	user_new_pw("dt-vcase", "mb@dt-vcase.test", "member", PW, uid, ID_LEN);
	user_new_pw("dt-vcase-b", "mb@dt-vcase-b.test", "member", PW, ouid, ID_LEN);
	create(&a, "clients", "{\"family_name\":\"Case\",\"given_name\":\"Client\"}", client);
	create(&a, "clients", "{\"family_name\":\"Gone\",\"given_name\":\"Client\"}", gone);
	assert_null(sok(&a, "DELETE", F("/clients/%s", gone), NULL, 204));
	create(&b, "clients", "{\"family_name\":\"Other\",\"given_name\":\"Org\"}", other);
	ref_set("deleted_client", gone);
	ref_set("other_client", other);
	ref_set("client", client);
	ref_set("user", uid);
	ref_set("other_user", ouid);
	copy(base, sizeof(base), F("{\"client_id\":\"%s\",\"case_type\":\"I-130\"}", client));

	/* Defaults. */
	j = sok(&a, "POST", "/cases", base, 201);
	copy(id, sizeof(id), jstr(j, "id"));
	assert_string_equal(jstr(j, "client_id"), client);
	assert_string_equal(jstr(j, "case_type"), "I-130");
	assert_string_equal(jstr(j, "status"), "open");
	assert_unset(j, "title");
	assert_unset(j, "receipt_number");
	assert_unset(j, "priority_date");
	assert_unset(j, "assigned_user_id");
	cJSON_Delete(j);

	run_bad(&a, "cases", base, bad, sizeof(bad) / sizeof(bad[0]), id, 1);
	assert_int_equal(count_all(&a, "/cases"), 1);
	assert_int_equal(version_of(&a, "cases", id), 1);
	assert_int_equal(changes_n(&a, "entity=cases"), 1);
	assert_int_equal(count_all(&b, "/cases"), 0);
	run_good(&a, "cases", base, good, sizeof(good) / sizeof(good[0]));
}

static void
events_bad_values_are_422_per_field_and_defaults_apply(void **state)
{
	static const struct badv bad[] = {
	    MISSING("title"), V("title", "\"\""), LONG("title", "t", 201), V("title", "null"), V("title", "1"),
	    MISSING("kind"), V("kind", "\"meeting\""), V("kind", "\"Deadline\""), V("kind", "\"\""), V("kind", "null"),
	    V("kind", "1"),
	    MISSING("starts_at"), V("starts_at", "null"), V("starts_at", "\"2026-11-27T09:30:00+01:00\""),
	    V("starts_at", "\"2026-11-27T09:30:00.5Z\""), V("starts_at", "\"2026-11-27T09:30:00.000Z\""),
	    V("starts_at", "\"2026-13-01T00:00:00Z\""), V("starts_at", "\"2026-02-29T10:00:00Z\""),
	    V("starts_at", "\"2026-11-31T10:00:00Z\""), V("starts_at", "\"2026-11-27T24:00:00Z\""),
	    V("starts_at", "\"2026-11-27T09:60:00Z\""), V("starts_at", "\"2026-11-27 09:30:00Z\""),
	    V("starts_at", "\"2026-11-27T09:30:00\""), V("starts_at", "\"2026-11-27T09:30:00z\""),
	    V("starts_at", "\"2026-11-27T09:30Z\""), V("starts_at", "\"2026-11-27\""),
	    V("starts_at", "\"2026-11-27T9:30:00Z\""), V("starts_at", "\"\""), V("starts_at", "1795771800"),
	    V("ends_at", "\"2026-11-27T09:29:59Z\""), V("ends_at", "\"2026-11-26T23:00:00Z\""),
	    V("ends_at", "\"2026-11-27T10:30:00+01:00\""), V("ends_at", "\"later\""), V("ends_at", "5"),
	    V("all_day", "\"true\""), V("all_day", "1"), V("all_day", "\"yes\""),
	    LONG("location", "l", 501), V("location", "2"),
	    V("case_id", "\"nope\""), V("case_id", "@deleted_case"), V("case_id", "@other_case"),
	    V("case_id", "@client"), V("case_id", "5"),
	    V("owner_user_id", "\"nope\""), V("owner_user_id", "@other_user"), V("owner_user_id", "@client"),
	    V("owner_user_id", "5"),
	    V("sync", "\"true\""), V("sync", "0"),
	    V("sync_status", "\"pending\""), V("sync_status", "\"none\""), V("sync_status", "null"),
	    V("attendees", "[]"), V("remote_id", "\"x\""),
	};
	static const struct badv good[] = {
	    V("ends_at", "\"2026-11-27T09:30:00Z\""), V("ends_at", "\"2026-11-28T09:30:00Z\""),
	    V("kind", "\"deadline\""), V("kind", "\"appointment\""), V("kind", "\"hearing\""),
	    V("kind", "\"biometrics\""), V("kind", "\"interview\""), V("kind", "\"other\""),
	    V("starts_at", "\"2028-02-29T23:59:59Z\""), V("starts_at", "\"2026-01-01T00:00:00Z\""),
	    LONG("location", "l", 500), LONG("title", "\xc3\xa9", 200), V("case_id", "@case"),
	    V("owner_user_id", "@user"), V("all_day", "true"),
	};
	const char *base = "{\"title\":\"Biometrics\",\"kind\":\"biometrics\",\"starts_at\":\"2026-11-27T09:30:00Z\"}";
	char client[ID_LEN], kase[ID_LEN], gone[ID_LEN], other[ID_LEN], ocl[ID_LEN], id[ID_LEN], uid[ID_LEN],
	    ouid[ID_LEN];
	struct sess a, b;
	cJSON *j;

	(void)state;
	org_with("dt-vevent", "198.18.1.5", &a, NULL, NULL);
	org_with("dt-vevent-b", "198.18.1.5", &b, NULL, NULL);
	user_new_pw("dt-vevent", "mb@dt-vevent.test", "member", PW, uid, ID_LEN);
	user_new_pw("dt-vevent-b", "mb@dt-vevent-b.test", "member", PW, ouid, ID_LEN);
	create(&a, "clients", "{\"family_name\":\"Event\",\"given_name\":\"Client\"}", client);
	create(&a, "cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-485\"}", client), kase);
	create(&a, "cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-765\"}", client), gone);
	assert_null(sok(&a, "DELETE", F("/cases/%s", gone), NULL, 204));
	create(&b, "clients", "{\"family_name\":\"Other\",\"given_name\":\"Org\"}", ocl);
	create(&b, "cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-485\"}", ocl), other);
	ref_set("deleted_case", gone);
	ref_set("other_case", other);
	ref_set("case", kase);
	ref_set("client", client);
	ref_set("user", uid);
	ref_set("other_user", ouid);

	/* Defaults: not all-day, no sync, the creator owns it. */
	j = sok(&a, "POST", "/events", base, 201);
	copy(id, sizeof(id), jstr(j, "id"));
	assert_string_equal(jstr(j, "title"), "Biometrics");
	assert_string_equal(jstr(j, "kind"), "biometrics");
	assert_string_equal(jstr(j, "starts_at"), "2026-11-27T09:30:00Z");
	assert_unset(j, "ends_at");
	assert_false(jbool(j, "all_day"));
	assert_false(jbool(j, "sync"));
	assert_string_equal(jstr(j, "sync_status"), "none");
	assert_string_equal(jstr(j, "owner_user_id"), a.user_id);
	assert_unset(j, "case_id");
	assert_unset(j, "location");
	cJSON_Delete(j);
	/* Sync asked for: pending (the sync itself comes later). */
	{
		char *body = with(base, "sync", "true");

		j = sok(&a, "POST", "/events", body, 201);
		free(body);
	}
	assert_true(jbool(j, "sync"));
	assert_string_equal(jstr(j, "sync_status"), "pending");
	cJSON_Delete(j);
	j = sok(&a, "PATCH", F("/events/%s", id), "{\"version\":1,\"sync\":true}", 200);
	assert_string_equal(jstr(j, "sync_status"), "pending");
	cJSON_Delete(j);
	j = sok(&a, "PATCH", F("/events/%s", id), "{\"version\":2,\"sync\":false}", 200);
	assert_int_equal(jint(j, "version"), 3);
	cJSON_Delete(j);

	run_bad(&a, "events", base, bad, sizeof(bad) / sizeof(bad[0]), id, 3);
	/* -bad: a PATCH of starts_at alone past the stored ends_at. */
	cJSON_Delete(sok(&a, "PATCH", F("/events/%s", id), "{\"version\":3,\"ends_at\":\"2026-11-27T10:30:00Z\"}", 200));
	{
		struct h_resp r;
		const cJSON *fields;
		cJSON *e;

		sreq(&a, "PATCH", F("/events/%s", id), "{\"version\":4,\"starts_at\":\"2026-11-27T11:00:00Z\"}", &r);
		assert_error(&r, 422, "validation_failed");
		e = jparse_text(r.body, r.status);
		fields = jobj(jobj(e, "error"), "fields");
		assert_true(cJSON_GetObjectItemCaseSensitive(fields, "ends_at") != NULL ||
		            cJSON_GetObjectItemCaseSensitive(fields, "starts_at") != NULL);
		cJSON_Delete(e);
		h_resp_free(&r);
	}
	assert_int_equal(count_all(&a, "/events"), 2);
	assert_int_equal(version_of(&a, "events", id), 4);
	assert_int_equal(changes_n(&a, "entity=events"), 5);
	run_good(&a, "events", base, good, sizeof(good) / sizeof(good[0]));
}

static void
notes_bad_values_are_422_per_field_and_need_a_client_or_case(void **state)
{
	static const struct badv bad[] = {
	    MISSING("body"), V("body", "\"\""), V("body", "null"), LONG("body", "b", 100001), V("body", "5"),
	    V("body", "[\"x\"]"),
	    MISSING("client_id"), V("client_id", "null"), V("client_id", "\"nope\""), V("client_id", "@deleted_client"),
	    V("client_id", "@other_client"), V("client_id", "@case"), V("client_id", "5"),
	    V("case_id", "\"nope\""), V("case_id", "@other_case"), V("case_id", "@client"), V("case_id", "5"),
	    V("title", "\"x\""), V("pinned", "true"),
	};
	char base[512], client[ID_LEN], kase[ID_LEN], gone[ID_LEN], ocl[ID_LEN], okase[ID_LEN], id[ID_LEN];
	struct sess a, b;
	cJSON *j;
	char *big, *body;

	(void)state;
	org_with("dt-vnote", "198.18.1.6", &a, NULL, NULL);
	org_with("dt-vnote-b", "198.18.1.6", &b, NULL, NULL);
	create(&a, "clients", "{\"family_name\":\"Note\",\"given_name\":\"Client\"}", client);
	create(&a, "clients", "{\"family_name\":\"Gone\",\"given_name\":\"Client\"}", gone);
	create(&a, "cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-130\"}", client), kase);
	assert_null(sok(&a, "DELETE", F("/clients/%s", gone), NULL, 204));
	create(&b, "clients", "{\"family_name\":\"Other\",\"given_name\":\"Org\"}", ocl);
	create(&b, "cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-130\"}", ocl), okase);
	ref_set("deleted_client", gone);
	ref_set("other_client", ocl);
	ref_set("other_case", okase);
	ref_set("client", client);
	ref_set("case", kase);
	copy(base, sizeof(base), F("{\"body\":\"Called the client.\",\"client_id\":\"%s\"}", client));
	create(&a, "notes", base, id);

	run_bad(&a, "notes", base, bad, sizeof(bad) / sizeof(bad[0]), id, 1);
	assert_int_equal(count_all(&a, "/notes"), 1);
	assert_int_equal(version_of(&a, "notes", id), 1);
	assert_int_equal(changes_n(&a, "entity=notes"), 1);

	/* A case alone, both, and the longest body (100 000 characters with line breaks). */
	j = sok(&a, "POST", "/notes", F("{\"body\":\"On the case.\",\"case_id\":\"%s\"}", kase), 201);
	assert_string_equal(jstr(j, "case_id"), kase);
	assert_unset(j, "client_id");
	cJSON_Delete(j);
	j = sok(&a, "POST", "/notes", F("{\"body\":\"Both.\",\"case_id\":\"%s\",\"client_id\":\"%s\"}", kase, client),
	        201);
	assert_string_equal(jstr(j, "case_id"), kase);
	assert_string_equal(jstr(j, "client_id"), client);
	/* -bad: clearing the one remaining link. */
	sfield(&a, "PATCH", F("/notes/%s", jstr(j, "id")), "{\"version\":1,\"client_id\":null,\"case_id\":null}",
	       "client_id");
	cJSON_Delete(j);
	big = repeat("x\\n", 50000);
	body = malloc(strlen(big) + 256);
	assert_non_null(body);
	snprintf(body, strlen(big) + 256, "{\"body\":\"%s\",\"client_id\":\"%s\"}", big, client);
	j = sok(&a, "POST", "/notes", body, 201);
	assert_int_equal(strlen(jstr(j, "body")), 100000);
	cJSON_Delete(j);
	free(big);
	free(body);
}

static void
credentials_bad_values_are_422_per_field_and_write_nothing(void **state)
{
	static const struct badv bad[] = {
	    MISSING("client_id"), V("client_id", "null"), V("client_id", "\"nope\""), V("client_id", "@deleted_client"),
	    V("client_id", "@other_client"), V("client_id", "5"),
	    MISSING("label"), V("label", "\"\""), LONG("label", "l", 201), V("label", "null"), V("label", "1"),
	    V("url", "\"ftp://files.example.test/\""), V("url", "\"javascript:alert(1)\""), V("url", "\"uscis.gov\""),
	    V("url", "\"//example.test/\""), LONGP("url", "https://x.test/", "u", 1986), V("url", "5"),
	    LONG("username", "n", 201), V("username", "5"),
	    V("password", "\"\""), LONG("password", "p", 1001), V("password", "5"), V("password", "true"),
	    V("password", "{\"set\":true}"),
	    V("totp_secret", "\"x\""), V("notes", "\"x\""),
	};
	static const struct badv good[] = {
	    V("url", "\"http://example.test\""), V("url", "\"https://my.uscis.gov/account\""),
	    LONGP("url", "https://x.test/", "u", 1985), LONG("username", "n", 200), LONG("label", "\xc3\xa9", 200),
	};
	char base[512], client[ID_LEN], gone[ID_LEN], ocl[ID_LEN], id[ID_LEN], pid[ID_LEN];
	struct sess a, b;
	cJSON *j;
	char *pw, *body;

	(void)state;
	org_with("dt-vcred", "198.18.1.7", &a, NULL, NULL);
	org_with("dt-vcred-b", "198.18.1.7", &b, NULL, NULL);
	create(&a, "clients", "{\"family_name\":\"Cred\",\"given_name\":\"Client\"}", client);
	create(&a, "clients", "{\"family_name\":\"Gone\",\"given_name\":\"Client\"}", gone);
	assert_null(sok(&a, "DELETE", F("/clients/%s", gone), NULL, 204));
	create(&b, "clients", "{\"family_name\":\"Other\",\"given_name\":\"Org\"}", ocl);
	ref_set("deleted_client", gone);
	ref_set("other_client", ocl);
	copy(base, sizeof(base), F("{\"client_id\":\"%s\",\"label\":\"USCIS online account\"}", client));
	j = sok(&a, "POST", "/credentials", base, 201);
	copy(id, sizeof(id), jstr(j, "id"));
	assert_set(j, "password", 0);
	assert_unset(j, "url");
	assert_unset(j, "username");
	cJSON_Delete(j);

	run_bad(&a, "credentials", base, bad, sizeof(bad) / sizeof(bad[0]), id, 1);
	assert_int_equal(count_all(&a, "/credentials"), 1);
	assert_int_equal(version_of(&a, "credentials", id), 1);
	assert_int_equal(changes_n(&a, "entity=credentials"), 1);
	run_good(&a, "credentials", base, good, sizeof(good) / sizeof(good[0]));

	/* Passwords of 1 and of 1000 characters. */
	body = with(base, "password", "\"p\"");
	create(&a, "credentials", body, pid);
	free(body);
	reveal(&a, "credentials", pid, "password", "p");
	pw = repeat("P", 1000);
	body = with(base, "password", F("\"%s\"", pw));
	create(&a, "credentials", body, pid);
	free(body);
	reveal(&a, "credentials", pid, "password", pw);
	free(pw);
}

static void
several_bad_fields_give_one_message_each_and_bad_bodies_are_400(void **state)
{
	static const char *const four[] = {"given_name", "family_name", "date_of_birth", "a_number"};
	static const char *const three[] = {"kind", "starts_at", "sync_status"};
	static const char *const two[] = {"colour", "flavour"};
	struct sess a;
	struct h_resp r;
	char *nest, *huge;
	size_t i;

	(void)state;
	org_with("dt-multi", "198.18.1.8", &a, NULL, NULL);
	sreq(&a, "POST", "/clients", "{\"family_name\":\"\",\"date_of_birth\":\"1990-02-30\",\"a_number\":\"1\"}", &r);
	wfields(&r, four, 4, "four bad client fields");
	sreq(&a, "POST", "/clients", "{}", &r);
	wfields(&r, four, 2, "empty client");
	sreq(&a, "POST", "/events", "{\"title\":\"T\",\"kind\":\"party\",\"sync_status\":\"synced\"}", &r);
	wfields(&r, three, 3, "three bad event fields");
	sreq(&a, "POST", "/clients", "{\"family_name\":\"A\",\"given_name\":\"B\",\"colour\":1,\"flavour\":2}", &r);
	wfields(&r, two, 2, "two unknown fields");

	/* -bad: bodies that are not a JSON object. */
	serr(&a, "POST", "/clients", "{\"family_name\":\"A\",", 400, "invalid_json");
	serr(&a, "POST", "/clients", "[{\"family_name\":\"A\",\"given_name\":\"B\"}]", 400, "invalid_json");
	serr(&a, "POST", "/clients", "\"family_name\"", 400, "invalid_json");
	serr(&a, "POST", "/clients", "null", 400, "invalid_json");
	serr(&a, "POST", "/clients", "", 400, "invalid_json");
	serr(&a, "POST", "/cases", "{'client_id': 'x'}", 400, "invalid_json");
	serr(&a, "POST", "/events", "{\"title\":\"A\"} trailing", 400, "invalid_json");
	nest = malloc(64 * 6 + 64);
	assert_non_null(nest);
	nest[0] = '\0';
	{
		size_t n = 0;

		const char *head = "{\"family_name\":\"A\",\"given_name\":\"B\",\"notes\":";

		n = strlen(head);
		memcpy(nest, head, n);
		for (i = 0; i < 40; i++)
			nest[n++] = '[';
		for (i = 0; i < 40; i++)
			nest[n++] = ']';
		nest[n++] = '}';
		nest[n] = '\0';
	}
	serr(&a, "POST", "/clients", nest, 400, "invalid_json");
	free(nest);
	/* Over 1 MiB. */
	huge = repeat("x", 1100000);
	{
		size_t n = strlen(huge) + 128;
		char *body = malloc(n);

		assert_non_null(body);
		snprintf(body, n, "{\"family_name\":\"A\",\"given_name\":\"B\",\"notes\":\"%s\"}", huge);
		serr(&a, "POST", "/clients", body, 413, "payload_too_large");
		free(body);
	}
	free(huge);
	assert_int_equal(count_all(&a, "/clients"), 0);
	assert_int_equal(count_all(&a, "/events"), 0);
	assert_int_equal(changes_n(&a, "entity=clients"), 0);
}

/* --- tests: optimistic concurrency --------------------------------- */

static void
patch_with_a_stale_version_is_409_and_writes_nothing(void **state)
{
	char id[ID_LEN];
	struct sess a, m;
	cJSON *j;

	(void)state;
	org_with("dt-stale", "198.18.1.9", &a, &m, NULL);
	create(&a, "clients", "{\"family_name\":\"Stale\",\"given_name\":\"Read\",\"a_number\":\"A111111111\"}", id);
	/* Both read version 1; the member writes first. */
	cJSON_Delete(sok(&m, "PATCH", F("/clients/%s", id), "{\"version\":1,\"given_name\":\"First\"}", 200));
	/* -bad: the admin's write with what it read is refused, sensitive value and all. */
	serr(&a, "PATCH", F("/clients/%s", id), "{\"version\":1,\"given_name\":\"Second\",\"a_number\":\"A222222222\"}",
	     409, "conflict");
	serr(&a, "PATCH", F("/clients/%s", id), "{\"version\":99,\"given_name\":\"Future\"}", 409, "conflict");
	/* A version that can never be current: 409, or 422 on version. */
	{
		struct h_resp r;

		sreq(&a, "PATCH", F("/clients/%s", id), "{\"version\":-1,\"given_name\":\"Negative\"}", &r);
		if (r.status == 409)
			werr(&r, 409, "conflict");
		else
			wfield_only(&r, "version", "PATCH with version -1");
	}
	j = get(&a, "clients", id);
	assert_int_equal(jint(j, "version"), 2);
	assert_string_equal(jstr(j, "given_name"), "First");
	assert_string_equal(jstr(j, "updated_by"), m.user_id);
	cJSON_Delete(j);
	reveal(&a, "clients", id, "a_number", "A111111111");
	assert_int_equal(changes_n(&a, F("entity_id=%s", qenc(id))), 2);
	/* With the version it now reads, the admin's write goes through. */
	j = sok(&a, "PATCH", F("/clients/%s", id), "{\"version\":2,\"given_name\":\"Second\",\"a_number\":\"A222222222\"}",
	        200);
	assert_int_equal(jint(j, "version"), 3);
	cJSON_Delete(j);
	reveal(&a, "clients", id, "a_number", "A222222222");
	assert_int_equal(changes_n(&a, F("entity_id=%s", qenc(id))), 3);
	/* +1 per PATCH, even one that sends the values it read. */
	j = sok(&m, "PATCH", F("/clients/%s", id), "{\"version\":3,\"given_name\":\"Second\"}", 200);
	assert_int_equal(jint(j, "version"), 4);
	assert_string_equal(jstr(j, "given_name"), "Second");
	cJSON_Delete(j);
	serr(&a, "PATCH", F("/clients/%s", id), "{\"version\":3,\"given_name\":\"Third\"}", 409, "conflict");
	assert_int_equal(version_of(&a, "clients", id), 4);
}

/* In a child: PATCH path with body as s once the start pipe closes; exit 0 for 200, 1 for 409, 2 otherwise. */
static void
racer(const struct sess *s, int start_fd, const char *path, const char *body)
{
	struct hdrs x;
	struct h_resp r;
	char c;
	int code;

	while (read(start_fd, &c, 1) < 0 && errno == EINTR)
		;
	hdrs_with(&x, s->ip, F("immidb_session=%s", s->token), NULL, s->csrf);
	if (h_http(&env, "PATCH", path, x.h, body, strlen(body), &r) != 0)
		_exit(3);
	code = r.status == 200 ? 0 : r.status == 409 ? 1 : 2;
	h_resp_free(&r);
	_exit(code);
}

/*
 * 2 x WORKERS readers at once (so that every worker answers some), each
 * reading sub 5 times as s: 0 if every answer had status and, for 200, the
 * string field equal to want; else fails naming how many readers did not.
 */
static void
all_read(const struct sess *s, const char *sub, long status, const char *field, const char *want)
{
	pid_t pid[2 * WORKERS];
	int k, st, bad = 0;

	fflush(NULL);
	for (k = 0; k < 2 * WORKERS; k++) {
		if ((pid[k] = fork()) == 0) {
			struct hdrs x;
			struct h_resp r;
			const cJSON *v;
			cJSON *j;
			int i, ok = 1;

			hdrs_with(&x, s->ip, F("immidb_session=%s", s->token), NULL, NULL);
			for (i = 0; i < 5 && ok; i++) {
				if (h_http(&env, "GET", F("/api/v1/orgs/%s%s", s->slug, sub), x.h, NULL, 0, &r) != 0)
					_exit(3);
				ok = r.status == status;
				if (ok && status == 200 && field != NULL) {
					j = cJSON_Parse(r.body);
					v = j != NULL ? cJSON_GetObjectItemCaseSensitive(j, field) : NULL;
					ok = cJSON_IsString(v) && strcmp(v->valuestring, want) == 0;
					cJSON_Delete(j);
				}
				h_resp_free(&r);
			}
			_exit(ok ? 0 : 1);
		}
		assert_true(pid[k] > 0);
	}
	for (k = 0; k < 2 * WORKERS; k++) {
		assert_int_equal(waitpid(pid[k], &st, 0), pid[k]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad++;
	}
	if (bad)
		fail_msg("%d of %d readers of %s got another answer than %ld %s", bad, 2 * WORKERS, sub, status,
		         want ? want : "");
}

/*
 * Workers keep what requests read between requests (lib/store/memo.h):
 * every worker must see each change at once, whoever made it. Each step
 * first has every worker read (and keep) the current state.
 */
static void
every_worker_reads_each_change_at_once(void **state)
{
	char id[ID_LEN], sub[ID_LEN + 16];
	struct sess a, m;
	sqlite3 *db;

	(void)state;
	org_with("dt-memo", "198.18.1.30", &a, &m, NULL);
	create(&a, "clients", "{\"family_name\":\"Memo\",\"given_name\":\"First\"}", id);
	snprintf(sub, sizeof(sub), "/clients/%s", id);
	all_read(&m, sub, 200, "given_name", "First");
	/* Changed through the API (by whichever worker takes the PATCH). */
	cJSON_Delete(sok(&a, "PATCH", sub, "{\"version\":1,\"given_name\":\"Second\"}", 200));
	all_read(&m, sub, 200, "given_name", "Second");
	/* Changed outside the server altogether: SQL on the file. */
	db = org_db("dt-memo");
	assert_int_equal(q_exec(db, "UPDATE clients SET given_name = ?2 WHERE id = ?1", id, "Third", NULL, 0), SQLITE_DONE);
	all_read(&m, sub, 200, "given_name", "Third");
	/* Deleted: gone everywhere. */
	assert_null(sok(&a, "DELETE", sub, NULL, 204));
	all_read(&m, sub, 404, NULL, NULL);
	/* The member's role changed by hand to readonly: writes refused, reads fine. */
	all_read(&m, "/clients?limit=1", 200, NULL, NULL);
	assert_int_equal(q_exec(db, "UPDATE users SET role = 'readonly' WHERE email = ?1", m.email, NULL, NULL, 0),
	                 SQLITE_DONE);
	serr(&m, "POST", "/clients", "{\"family_name\":\"No\",\"given_name\":\"Way\"}", 403, "forbidden");
	/* Disabled by hand: no request of theirs goes through any more. */
	assert_int_equal(q_exec(db, "UPDATE users SET disabled = 1 WHERE email = ?1", m.email, NULL, NULL, 0),
	                 SQLITE_DONE);
	all_read(&m, "/clients?limit=1", 401, NULL, NULL);
	/* A logout ends the session on every worker. */
	all_read(&a, "/session", 200, NULL, NULL);
	assert_null(sok(&a, "DELETE", "/session", NULL, 204));
	all_read(&a, "/session", 401, NULL, NULL);
	sqlite3_close(db);
}

static void
concurrent_patches_of_one_record_never_both_succeed(void **state)
{
	char id[ID_LEN], path[256], winner[64], eid[ID_LEN];
	int pfd[2], k, round, status, ok, conflict, other;
	pid_t pid[RACERS];
	struct sess a, m;
	cJSON *j, *c;
	const cJSON *it;

	(void)state;
	org_with("dt-race", "198.18.1.10", &a, &m, NULL);
	create(&a, "clients", "{\"family_name\":\"Race\",\"given_name\":\"Start\"}", id);
	create(&a, "events", "{\"title\":\"Race\",\"kind\":\"other\",\"starts_at\":\"2026-11-27T09:30:00Z\"}", eid);
	for (round = 0; round < RACE_ROUNDS * 2; round++) {
		const char *res = round < RACE_ROUNDS ? "clients" : "events";
		const char *rid = round < RACE_ROUNDS ? id : eid;
		long long v = version_of(&a, res, rid);

		snprintf(path, sizeof(path), "/api/v1/orgs/%s/%s/%s", a.slug, res, rid);
		assert_int_equal(pipe(pfd), 0);
		fflush(NULL);
		for (k = 0; k < RACERS; k++) {
			if ((pid[k] = fork()) == 0) {
				close(pfd[1]);
				racer(k % 2 ? &m : &a, pfd[0], path,
				      /* a value new in every round: no racer's PATCH is a no-op */
				      round < RACE_ROUNDS ? F("{\"version\":%lld,\"given_name\":\"Racer %d.%d\"}", v, round, k)
				                          : F("{\"version\":%lld,\"location\":\"Racer %d.%d\"}", v, round, k));
			}
			assert_true(pid[k] > 0);
		}
		close(pfd[0]);
		close(pfd[1]); /* go */
		ok = conflict = other = 0;
		for (k = 0; k < RACERS; k++) {
			assert_int_equal(waitpid(pid[k], &status, 0), pid[k]);
			if (!WIFEXITED(status))
				other++;
			else if (WEXITSTATUS(status) == 0)
				ok++;
			else if (WEXITSTATUS(status) == 1)
				conflict++;
			else
				other++;
		}
		if (ok != 1 || conflict != RACERS - 1)
			fail_msg("round %d on %s: %d x 200, %d x 409, %d other (expected 1, %d, 0)", round, res, ok,
			         conflict, other, RACERS - 1);
		j = get(&a, res, rid);
		assert_int_equal(jint(j, "version"), v + 1);
		copy(winner, sizeof(winner), jstr(j, round < RACE_ROUNDS ? "given_name" : "location"));
		assert_int_equal(strncmp(winner, "Racer ", 6), 0);
		cJSON_Delete(j);
	}
	/* One update entry per round, each from the winner's value. */
	c = changes(&a, F("entity_id=%s", qenc(id)));
	assert_int_equal(cJSON_GetArraySize(c), 1 + RACE_ROUNDS);
	k = 0;
	cJSON_ArrayForEach(it, c) if (k++ > 0) assert_string_equal(jstr(it, "action"), "update");
	cJSON_Delete(c);
	assert_int_equal(changes_n(&a, F("entity_id=%s", qenc(eid))), 1 + RACE_ROUNDS);
}

/* --- tests: lists -------------------------------------------------- */

static void
lists_page_with_limit_and_cursor_and_refuse_bad_parameters(void **state)
{
	static const char *const bad_q[] = {
	    "limit=0",   "limit=201", "limit=x",      "limit=-1", "limit=",     "limit=1.5",
	    "limit=2x",  "limit=%20", "limit=99999999999999999999", "cursor=garbage%21%21", "cursor=%00",
	    "colour=blue", "q=x&bogus=1", "client_id=x&status=open", "offset=10", "page=2", "sort=family_name",
	};
	static char ids[64][ID_LEN], page[64][ID_LEN];
	char made[23][ID_LEN], cursor[CURSOR_LEN];
	struct sess a;
	cJSON *j;
	int i, n;
	size_t k;

	(void)state;
	org_with("dt-page", "198.18.1.11", &a, NULL, NULL);
	j = sok(&a, "GET", "/clients", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 0);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "next_cursor")));
	cJSON_Delete(j);
	for (i = 0; i < 23; i++)
		create(&a, "clients", F("{\"family_name\":\"Page\",\"given_name\":\"N%02d\"}", i), made[i]);
	/* Oldest first, whatever the page size; the default page holds all 23. */
	n = list_all(&a, "/clients", 0, ids, 64);
	assert_int_equal(n, 23);
	for (i = 0; i < 23; i++)
		assert_string_equal(ids[i], made[i]);
	{
		static const int limits[] = {1, 5, 22, 23, 200};

		for (k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
			n = list_all(&a, "/clients", limits[k], page, 64);
			assert_int_equal(n, 23);
			for (i = 0; i < 23; i++)
				assert_string_equal(page[i], made[i]);
		}
	}
	/* Exactly limit items and a cursor while more remain. */
	j = sok(&a, "GET", "/clients?limit=5", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 5);
	copy(cursor, sizeof(cursor), jstr(j, "next_cursor"));
	cJSON_Delete(j);
	j = sok(&a, "GET", F("/clients?limit=5&cursor=%s", qenc(cursor)), NULL, 200);
	assert_string_equal(jstr(cJSON_GetArrayItem(jarr(j, "items"), 0), "id"), made[5]);
	cJSON_Delete(j);
	/* A cursor stays valid when the record it points at is deleted. */
	assert_null(sok(&a, "DELETE", F("/clients/%s", made[4]), NULL, 204));
	j = sok(&a, "GET", F("/clients?limit=5&cursor=%s", qenc(cursor)), NULL, 200);
	assert_string_equal(jstr(cJSON_GetArrayItem(jarr(j, "items"), 0), "id"), made[5]);
	cJSON_Delete(j);
	/* -bad: limits, cursors and unknown parameters, on every list. */
	for (k = 0; k < sizeof(bad_q) / sizeof(bad_q[0]); k++) {
		static const char *const res[] = {"clients", "cases", "events", "notes", "credentials"};
		size_t r;

		for (r = 0; r < 5; r++) {
			if (strcmp(bad_q[k], "client_id=x&status=open") == 0 && strcmp(res[r], "cases") == 0)
				continue; /* both are filters of cases */
			serr(&a, "GET", F("/%s?%s", res[r], bad_q[k]), NULL, 400, "bad_request");
		}
	}
	assert_int_equal(count_all(&a, "/clients"), 22);
}

/* In a child: POSTs n clients as s, writing one byte to ready_fd after the first; exits with the failures. */
static void
inserter(const struct sess *s, int ready_fd, int n)
{
	struct hdrs x;
	struct h_resp r;
	int i, fails = 0;

	hdrs_with(&x, s->ip, F("immidb_session=%s", s->token), NULL, s->csrf);
	for (i = 0; i < n; i++) {
		const char *body = F("{\"family_name\":\"Inserted\",\"given_name\":\"I%02d\"}", i);

		if (h_http(&env, "POST", F("/api/v1/orgs/%s/clients", s->slug), x.h, body, strlen(body), &r) != 0 ||
		    r.status != 201)
			fails++;
		h_resp_free(&r);
		if (i == 0 && write(ready_fd, "x", 1) != 1)
			fails++;
		h_sleep_ms(5);
	}
	_exit(fails > 100 ? 100 : fails);
}

static void
pagination_is_stable_under_concurrent_inserts(void **state)
{
	static char before[30][ID_LEN], seen[256][ID_LEN], after[256][ID_LEN];
	int pfd[2], i, k, n, n2, last, status, fresh = 0;
	const int nb = 30, ni = 40;
	struct sess a;
	pid_t pid;
	char c;

	(void)state;
	org_with("dt-pconc", "198.18.1.12", &a, NULL, NULL);
	for (i = 0; i < nb; i++)
		create(&a, "clients", F("{\"family_name\":\"Before\",\"given_name\":\"B%02d\"}", i), before[i]);
	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		close(pfd[0]);
		inserter(&a, pfd[1], ni);
	}
	assert_true(pid > 0);
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	/* Page through 5 at a time while the child inserts. */
	g_page_delay_ms = 15;
	n = list_all(&a, "/clients", 5, seen, 256);
	g_page_delay_ms = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* No item twice; every record that existed before is there, in creation order. */
	for (i = 0; i < n; i++)
		for (k = 0; k < i; k++)
			if (strcmp(seen[i], seen[k]) == 0)
				fail_msg("item %s seen twice (positions %d and %d of %d)", seen[i], k, i, n);
	for (last = -1, i = 0; i < nb; i++) {
		for (k = 0; k < n && strcmp(seen[k], before[i]) != 0; k++)
			;
		if (k == n)
			fail_msg("record %d of those created before paging (%s) was skipped", i, before[i]);
		assert_true(k > last);
		last = k;
	}
	for (i = 0; i < n; i++)
		fresh += !has_id(before, nb, seen[i]);
	print_message("paged %d items while %d were inserted (%d of them seen)\n", n, ni, fresh);
	/* Afterwards, everything once, oldest first. */
	n2 = list_all(&a, "/clients", 7, after, 256);
	assert_int_equal(n2, nb + ni);
	for (i = 0; i < nb; i++)
		assert_string_equal(after[i], before[i]);
	for (i = 0; i < n2; i++)
		for (k = 0; k < i; k++)
			assert_string_not_equal(after[i], after[k]);
}

/* --- tests: filters and search ------------------------------------- */

static void
list_filters_select_by_reference_status_and_time(void **state)
{
	char c1[ID_LEN], c2[ID_LEN], k1[ID_LEN], k2[ID_LEN], k3[ID_LEN], e1[ID_LEN], e2[ID_LEN], e3[ID_LEN],
	    e4[ID_LEN], n1[ID_LEN], n2[ID_LEN], n3[ID_LEN], r1[ID_LEN], r2[ID_LEN], r3[ID_LEN];
	static char ids[16][ID_LEN];
	static const char *const bad[] = {
	    "/cases?status=archived",
	    "/cases?status=OPEN",
	    "/cases?status=",
	    "/events?from=2026-03-02",
	    "/events?from=garbage",
	    "/events?to=2026-03-02T10%3A00%3A00%2B01%3A00",
	    "/events?from=2026-13-01T00%3A00%3A00Z",
	    "/events?to=2026-03-02T10%3A00%3A00.5Z",
	    "/events?client_id=x",
	    "/events?status=open",
	    "/notes?status=open",
	    "/notes?q=called",
	    "/credentials?case_id=x",
	    "/credentials?q=uscis",
	    "/clients?status=open",
	    "/clients?client_id=x",
	    "/cases?case_id=x",
	    "/cases?from=2026-03-02T10%3A00%3A00Z",
	};
	struct sess a;
	size_t i;
	int n;

	(void)state;
	org_with("dt-filter", "198.18.1.13", &a, NULL, NULL);
	create(&a, "clients", "{\"family_name\":\"One\",\"given_name\":\"C\"}", c1);
	create(&a, "clients", "{\"family_name\":\"Two\",\"given_name\":\"C\"}", c2);
	create(&a, "cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-130\"}", c1), k1);
	create(&a, "cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-485\",\"status\":\"approved\"}", c1), k2);
	create(&a, "cases", F("{\"client_id\":\"%s\",\"case_type\":\"N-400\",\"status\":\"open\"}", c2), k3);
	create(&a, "events",
	       F("{\"title\":\"E1\",\"kind\":\"deadline\",\"starts_at\":\"2026-03-01T10:00:00Z\",\"case_id\":\"%s\"}", k1),
	       e1);
	create(&a, "events",
	       F("{\"title\":\"E2\",\"kind\":\"hearing\",\"starts_at\":\"2026-03-02T10:00:00Z\",\"case_id\":\"%s\"}", k1),
	       e2);
	create(&a, "events",
	       F("{\"title\":\"E3\",\"kind\":\"interview\",\"starts_at\":\"2026-03-03T10:00:00Z\",\"case_id\":\"%s\"}",
	         k2),
	       e3);
	create(&a, "events", "{\"title\":\"E4\",\"kind\":\"other\",\"starts_at\":\"2026-03-04T10:00:00Z\"}", e4);
	create(&a, "notes", F("{\"body\":\"N1\",\"client_id\":\"%s\"}", c1), n1);
	create(&a, "notes", F("{\"body\":\"N2\",\"case_id\":\"%s\"}", k1), n2);
	create(&a, "notes", F("{\"body\":\"N3\",\"client_id\":\"%s\",\"case_id\":\"%s\"}", c2, k3), n3);
	create(&a, "credentials", F("{\"client_id\":\"%s\",\"label\":\"R1\"}", c1), r1);
	create(&a, "credentials", F("{\"client_id\":\"%s\",\"label\":\"R2\"}", c1), r2);
	create(&a, "credentials", F("{\"client_id\":\"%s\",\"label\":\"R3\"}", c2), r3);

	LIST_IS(&a, F("/cases?client_id=%s", qenc(c1)), k1, k2);
	LIST_IS(&a, F("/cases?client_id=%s", qenc(c2)), k3);
	LIST_IS(&a, "/cases?status=open", k1, k3);
	LIST_IS(&a, "/cases?status=approved", k2);
	LIST_IS(&a, F("/cases?client_id=%s&status=open", qenc(c1)), k1);
	LIST_EMPTY(&a, "/cases?status=denied");
	LIST_EMPTY(&a, F("/cases?client_id=%s", qenc(e1))); /* an id, but not of a client */
	n = list_all(&a, F("/cases?client_id=%s", qenc(c1)), 1, ids, 16);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], k1);
	assert_string_equal(ids[1], k2);

	LIST_IS(&a, F("/events?case_id=%s", qenc(k1)), e1, e2);
	LIST_IS(&a, "/events?from=2026-03-02T10%3A00%3A00Z", e2, e3, e4);
	LIST_IS(&a, "/events?to=2026-03-02T10%3A00%3A00Z", e1);
	LIST_IS(&a, "/events?from=2026-03-02T10%3A00%3A00Z&to=2026-03-03T10%3A00%3A00Z", e2);
	LIST_IS(&a, "/events?from=2026-03-02T10%3A00%3A01Z", e3, e4);
	LIST_IS(&a, F("/events?case_id=%s&from=2026-03-02T00%%3A00%%3A00Z", qenc(k1)), e2);
	LIST_EMPTY(&a, "/events?from=2026-03-04T10%3A00%3A01Z");
	LIST_EMPTY(&a, "/events?from=2026-03-03T00%3A00%3A00Z&to=2026-03-02T00%3A00%3A00Z");
	n = list_all(&a, "/events?from=2026-03-01T00%3A00%3A00Z", 2, ids, 16);
	assert_int_equal(n, 4);

	LIST_IS(&a, F("/notes?client_id=%s", qenc(c1)), n1);
	LIST_IS(&a, F("/notes?case_id=%s", qenc(k1)), n2);
	LIST_IS(&a, F("/notes?client_id=%s", qenc(c2)), n3);
	LIST_IS(&a, F("/notes?case_id=%s", qenc(k3)), n3);
	LIST_IS(&a, F("/notes?client_id=%s&case_id=%s", qenc(c2), qenc(k3)), n3);
	LIST_EMPTY(&a, F("/notes?case_id=%s", qenc(k2)));

	LIST_IS(&a, F("/credentials?client_id=%s", qenc(c1)), r1, r2);
	LIST_IS(&a, F("/credentials?client_id=%s", qenc(c2)), r3);

	/* -bad: malformed filter values and parameters that are not filters of that list. */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		serr(&a, "GET", bad[i], NULL, 400, "bad_request");
}

static void
search_matches_word_prefixes_case_insensitively_and_a_number_last_four(void **state)
{
	char c1[ID_LEN], c2[ID_LEN], c3[ID_LEN], c4[ID_LEN], c5[ID_LEN], k1[ID_LEN], k2[ID_LEN], k3[ID_LEN],
	    cursor[CURSOR_LEN];
	struct sess a;
	cJSON *j;
	const cJSON *it;

	(void)state;
	org_with("dt-search", "198.18.1.14", &a, NULL, NULL);
	create(&a, "clients",
	       "{\"family_name\":\"Smith\",\"given_name\":\"Alice\",\"email\":\"alice.smith@mail.test\","
	       "\"a_number\":\"A123454321\"}",
	       c1);
	create(&a, "clients", "{\"family_name\":\"Smithers\",\"given_name\":\"Bob\",\"other_names\":\"Waylon\"}", c2);
	create(&a, "clients",
	       "{\"family_name\":\"Jones\",\"given_name\":\"Alice\",\"email\":\"zorblatt@mail.test\","
	       "\"a_number\":\"987651234\"}",
	       c3);
	create(&a, "clients", "{\"family_name\":\"Brown\",\"given_name\":\"Carol\",\"a_number\":\"A000001234\"}", c4);
	create(&a, "clients", "{\"family_name\":\"Lice\",\"given_name\":\"Dan\",\"passport_number\":\"X4321Y\"}", c5);

	LIST_IS(&a, "/clients?q=smith", c1, c2);
	LIST_IS(&a, "/clients?q=SMITH", c1, c2);
	LIST_IS(&a, "/clients?q=sMiThErS", c2);
	LIST_IS(&a, "/clients?q=alice", c1, c3);
	LIST_IS(&a, "/clients?q=ali%20smi", c1);
	LIST_IS(&a, "/clients?q=smi%20ali", c1);
	LIST_IS(&a, "/clients?q=waylon", c2);
	LIST_IS(&a, "/clients?q=zorblatt", c3);
	LIST_IS(&a, "/clients?q=lice", c5); /* prefixes, not substrings: not Alice */
	LIST_EMPTY(&a, "/clients?q=alice%20brown");
	LIST_EMPTY(&a, "/clients?q=smithx");
	/* Four digits: the end of an A-number (not of a passport number). */
	LIST_IS(&a, "/clients?q=4321", c1);
	LIST_IS(&a, "/clients?q=1234", c3, c4);
	LIST_EMPTY(&a, "/clients?q=432");
	LIST_EMPTY(&a, "/clients?q=54321");
	LIST_EMPTY(&a, "/clients?q=0000");
	/* Classic injections find nothing here: no word of any record starts with them. */
	LIST_EMPTY(&a, F("/clients?q=%s", qenc("' OR '1'='1")));
	LIST_EMPTY(&a, F("/clients?q=%s", qenc("\" OR 1=1 --")));
	/* Search results carry sensitive fields as {"set"} too, and page like any list. */
	j = sok(&a, "GET", "/clients?q=alic&limit=1", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 1);
	it = cJSON_GetArrayItem(jarr(j, "items"), 0);
	assert_string_equal(jstr(it, "id"), c1);
	assert_set(it, "a_number", 1);
	assert_set(it, "ssn", 0);
	copy(cursor, sizeof(cursor), jstr(j, "next_cursor"));
	cJSON_Delete(j);
	j = sok(&a, "GET", F("/clients?q=alic&limit=1&cursor=%s", qenc(cursor)), NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 1);
	assert_string_equal(jstr(cJSON_GetArrayItem(jarr(j, "items"), 0), "id"), c3);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "next_cursor")));
	cJSON_Delete(j);

	/* The index follows changes: a new A-number, a cleared one, a renamed and a deleted client. */
	cJSON_Delete(sok(&a, "PATCH", F("/clients/%s", c1), "{\"version\":1,\"a_number\":\"A123459999\"}", 200));
	LIST_EMPTY(&a, "/clients?q=4321");
	LIST_IS(&a, "/clients?q=9999", c1);
	cJSON_Delete(sok(&a, "PATCH", F("/clients/%s", c4), "{\"version\":1,\"a_number\":null}", 200));
	LIST_IS(&a, "/clients?q=1234", c3);
	cJSON_Delete(sok(&a, "PATCH", F("/clients/%s", c2), "{\"version\":1,\"family_name\":\"Smithson\"}", 200));
	LIST_EMPTY(&a, "/clients?q=smithers");
	LIST_IS(&a, "/clients?q=smithso", c2);
	/* An edit of other fields leaves the index entry as it is, and the record findable. */
	cJSON_Delete(sok(&a, "PATCH", F("/clients/%s", c2), "{\"version\":2,\"phone\":\"+1 202 555 0100\"}", 200));
	LIST_IS(&a, "/clients?q=smithso", c2);
	LIST_IS(&a, "/clients?q=waylon", c2);
	cJSON_Delete(sok(&a, "PATCH", F("/clients/%s", c2), "{\"version\":3,\"other_names\":\"Wendell\"}", 200));
	LIST_EMPTY(&a, "/clients?q=waylon");
	LIST_IS(&a, "/clients?q=wendell%20smithson", c2);
	assert_null(sok(&a, "DELETE", F("/clients/%s", c3), NULL, 204));
	LIST_EMPTY(&a, "/clients?q=1234");
	LIST_EMPTY(&a, "/clients?q=zorblatt");
	LIST_IS(&a, "/clients?q=alice", c1);

	/* Cases: title, case type, receipt number; with the other filters. */
	create(&a, "cases",
	       F("{\"client_id\":\"%s\",\"case_type\":\"I-130\",\"title\":\"Marriage petition\","
	         "\"receipt_number\":\"EAC2190012345\"}",
	         c1),
	       k1);
	create(&a, "cases",
	       F("{\"client_id\":\"%s\",\"case_type\":\"N-400\",\"title\":\"Naturalization\",\"status\":\"pending\"}",
	         c2),
	       k2);
	create(&a, "cases",
	       F("{\"client_id\":\"%s\",\"case_type\":\"I-485\",\"title\":\"Adjustment of status\","
	         "\"receipt_number\":\"MSC2190054321\",\"status\":\"approved\"}",
	         c1),
	       k3);
	LIST_IS(&a, "/cases?q=marr", k1);
	LIST_IS(&a, "/cases?q=MARRIAGE%20PET", k1);
	LIST_IS(&a, "/cases?q=eac2190012345", k1);
	LIST_IS(&a, "/cases?q=EAC219", k1);
	LIST_IS(&a, "/cases?q=msc", k3);
	LIST_IS(&a, "/cases?q=naturali", k2);
	LIST_IS(&a, "/cases?q=adjust%20stat", k3);
	LIST_EMPTY(&a, "/cases?q=petition%20adjustment");
	LIST_EMPTY(&a, "/cases?q=rriage");
	LIST_IS(&a, "/cases?q=marr&status=open", k1);
	LIST_EMPTY(&a, "/cases?q=marr&status=approved");
	LIST_IS(&a, F("/cases?q=naturali&client_id=%s", qenc(c2)), k2);
	LIST_EMPTY(&a, F("/cases?q=naturali&client_id=%s", qenc(c1)));
	LIST_EMPTY(&a, F("/cases?q=%s", qenc("' OR '1'='1")));
	LIST_EMPTY(&a, F("/cases?q=%s", qenc("\" OR 1=1 --")));
	cJSON_Delete(sok(&a, "PATCH", F("/cases/%s", k1), "{\"version\":1,\"title\":\"Spousal petition\"}", 200));
	LIST_EMPTY(&a, "/cases?q=marr");
	LIST_IS(&a, "/cases?q=spous", k1);
	assert_null(sok(&a, "DELETE", F("/cases/%s", k3), NULL, 204));
	LIST_EMPTY(&a, "/cases?q=msc");
}

/* --- tests: SQL injection ------------------------------------------ */

static const char *const inj[] = {
    "Robert'); DROP TABLE clients;--",
    "\" OR 1=1 --",
    "' OR '1'='1",
    "1; DELETE FROM change_log; --",
    "x' UNION SELECT a_number FROM clients --",
    "NEAR(x y) OR * AND -z ^a \"q\"",
    "%_\\ [a-z] *? $1 :name @p ?1",
    "'; ATTACH DATABASE '/tmp/idb-pwn.db' AS pwn; --",
};

/* A JSON object with each of the given fields set to s, where s fits the field's limit. */
static char *
all_fields(const char *prefix, const char *s, const char *const *fields, const int *limits, size_t n)
{
	cJSON *o = cJSON_Parse(prefix);
	char *out;
	size_t i;

	assert_non_null(o);
	for (i = 0; i < n; i++)
		if (strlen(s) <= (size_t)limits[i]) {
			cJSON_DeleteItemFromObjectCaseSensitive(o, fields[i]);
			cJSON_AddStringToObject(o, fields[i], s);
		}
	out = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return out;
}

/* Each of the fields of record rec that were sent (and fit) holds s verbatim. */
static void
holds_verbatim(const cJSON *rec, const char *s, const char *const *fields, const int *limits, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(s) <= (size_t)limits[i] && strcmp(jstr(rec, fields[i]), s) != 0)
			fail_msg("%s is not stored verbatim: %s", fields[i], jstr(rec, fields[i]));
}

static void
sql_injection_strings_are_stored_verbatim_and_never_run(void **state)
{
	static const char *const cf[] = {"family_name", "given_name", "other_names", "country_of_birth",
	                                 "citizenship", "phone",      "address",     "notes"};
	static const int cl[] = {200, 200, 500, 100, 100, 50, 1000, 100000};
	static const char *const kf[] = {"case_type", "title", "notes"};
	static const int kl[] = {40, 200, 100000};
	static const char *const ef[] = {"title", "location"};
	static const int el[] = {200, 500};
	static const char *const crf[] = {"label", "username"};
	static const int crl[] = {200, 200};
	static const char *const qs[] = {
	    "NEAR(", "\"", "'", "*", "(", ")", "-", "^", "OR", "AND", "NOT", "NOT x", "x:y", "family_name:x",
	    "a NEAR b", "\\", "%", "_", "{}", "[]", "x\"y", "a*b", "''", "\"\"", "1=1", "--", "/*", "*/", ";",
	    "\xc3\xa9", "\xe2\x80\x8b", "x\ty",
	};
	char cid[ID_LEN], kid[ID_LEN], eid[ID_LEN], nid[ID_LEN], rid[ID_LEN], fst[ID_LEN];
	size_t i, k;
	struct sess a;
	cJSON *j;
	char *body, *pre;
	sqlite3 *db;
	int nclients;

	(void)state;
	org_with("dt-inject", "198.18.1.15", &a, NULL, NULL);
	create(&a, "clients", "{\"family_name\":\"Plain\",\"given_name\":\"Client\"}", fst);
	for (i = 0; i < sizeof(inj) / sizeof(inj[0]); i++) {
		body = all_fields("{\"email\":\"o'brien@example.test\"}", inj[i], cf, cl, 8);
		j = sok(&a, "POST", "/clients", body, 201);
		free(body);
		holds_verbatim(j, inj[i], cf, cl, 8);
		assert_string_equal(jstr(j, "email"), "o'brien@example.test");
		copy(cid, sizeof(cid), jstr(j, "id"));
		cJSON_Delete(j);
		j = get(&a, "clients", cid);
		holds_verbatim(j, inj[i], cf, cl, 8);
		cJSON_Delete(j);

		pre = with("{\"case_type\":\"I-130\"}", "client_id", F("\"%s\"", cid));
		body = all_fields(pre, inj[i], kf, kl, 3);
		free(pre);
		j = sok(&a, "POST", "/cases", body, 201);
		free(body);
		holds_verbatim(j, inj[i], kf, kl, 3);
		copy(kid, sizeof(kid), jstr(j, "id"));
		cJSON_Delete(j);

		pre = with("{\"kind\":\"other\",\"starts_at\":\"2026-11-27T09:30:00Z\"}", "case_id", F("\"%s\"", kid));
		body = all_fields(pre, inj[i], ef, el, 2);
		free(pre);
		j = sok(&a, "POST", "/events", body, 201);
		free(body);
		holds_verbatim(j, inj[i], ef, el, 2);
		copy(eid, sizeof(eid), jstr(j, "id"));
		cJSON_Delete(j);

		pre = with("{}", "client_id", F("\"%s\"", cid));
		{
			char *v = jq(inj[i]);

			body = with(pre, "body", v);
			free(v);
		}
		free(pre);
		j = sok(&a, "POST", "/notes", body, 201);
		free(body);
		assert_string_equal(jstr(j, "body"), inj[i]);
		copy(nid, sizeof(nid), jstr(j, "id"));
		cJSON_Delete(j);

		pre = with("{\"url\":\"https://example.test/?q=' OR 1=1--\"}", "client_id", F("\"%s\"", cid));
		body = all_fields(pre, inj[i], crf, crl, 2);
		free(pre);
		pre = body;
		{
			char *v = jq(inj[i]);

			body = with(pre, "password", v);
			free(v);
		}
		free(pre);
		j = sok(&a, "POST", "/credentials", body, 201);
		free(body);
		holds_verbatim(j, inj[i], crf, crl, 2);
		assert_string_equal(jstr(j, "url"), "https://example.test/?q=' OR 1=1--");
		copy(rid, sizeof(rid), jstr(j, "id"));
		cJSON_Delete(j);
		reveal(&a, "credentials", rid, "password", inj[i]);

		/* Patched too (to the string twice), and used as the search text and as ids. */
		{
			char *twice = malloc(2 * strlen(inj[i]) + 1), *v;

			assert_non_null(twice);
			memcpy(twice, inj[i], strlen(inj[i]));
			memcpy(twice + strlen(inj[i]), inj[i], strlen(inj[i]) + 1);
			v = jq(twice);
			body = with("{\"version\":1}", "given_name", v);
			free(v);
			j = sok(&a, "PATCH", F("/clients/%s", cid), body, 200);
			free(body);
			assert_string_equal(jstr(j, "given_name"), twice);
			cJSON_Delete(j);
			free(twice);
		}
		j = sok(&a, "GET", F("/clients?q=%s", qenc(inj[i])), NULL, 200);
		(void)jarr(j, "items");
		cJSON_Delete(j);
		j = sok(&a, "GET", F("/cases?q=%s", qenc(inj[i])), NULL, 200);
		(void)jarr(j, "items");
		cJSON_Delete(j);
		serr(&a, "GET", F("/clients/%s", qenc(inj[i])), NULL, 404, "not_found");
		/* As a filter value: malformed (400) or simply matching nothing (200, empty). */
		{
			struct h_resp r;

			sreq(&a, "GET", F("/cases?client_id=%s", qenc(inj[i])), NULL, &r);
			if (r.status == 400)
				werr(&r, 400, "bad_request");
			else {
				j = wjson(&r, 200);
				assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 0);
				cJSON_Delete(j);
			}
		}
	}
	(void)eid;
	(void)nid;
	/* FTS operators, quotes and LIKE wildcards in q are just text. */
	for (k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
		j = sok(&a, "GET", F("/clients?q=%s", qenc(qs[k])), NULL, 200);
		(void)jarr(j, "items");
		cJSON_Delete(j);
		j = sok(&a, "GET", F("/cases?q=%s", qenc(qs[k])), NULL, 200);
		(void)jarr(j, "items");
		cJSON_Delete(j);
	}
	/* Nothing ran: every record is there, the tables and the change log intact, no file attached. */
	nclients = 1 + (int)(sizeof(inj) / sizeof(inj[0]));
	assert_int_equal(count_all(&a, "/clients"), nclients);
	assert_int_equal(count_all(&a, "/cases"), nclients - 1);
	assert_int_equal(count_all(&a, "/events"), nclients - 1);
	assert_int_equal(count_all(&a, "/notes"), nclients - 1);
	assert_int_equal(count_all(&a, "/credentials"), nclients - 1);
	assert_int_equal(changes_n(&a, "entity=clients"), nclients + nclients - 1);
	assert_int_equal(access("/tmp/idb-pwn.db", F_OK), -1);
	db = org_db("dt-inject");
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM clients", NULL, NULL), nclients);
	assert_true(q_ll_bind(db, "SELECT count(*) FROM change_log", NULL, NULL) >= 5 * (nclients - 1) + 1);
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM clients WHERE family_name = ?1", inj[0], NULL), 1);
	idb_db_close(db);
}

/* --- tests: sensitive fields --------------------------------------- */

#define S_ANUM "A918273645"
#define S_ANUM2 "A564738291"
#define S_PASS "QZ7788991"
#define S_SSN "987-65-4329"
#define S_CPW "s3cr3t-Cred-Pw!x"

static void
sensitive_values_appear_in_no_response_but_a_reveal(void **state)
{
	static const char *const secrets[] = {S_ANUM, "918273645", S_ANUM2, "564738291", S_PASS, S_SSN, "987654329",
	                                      S_CPW,  NULL};
	char id[ID_LEN], cred[ID_LEN], kase[ID_LEN];
	struct sess a, m;
	struct h_resp r;
	cJSON *j;

	(void)state;
	org_with("dt-secret", "198.18.1.16", &a, &m, NULL);
	g_secrets = secrets; /* from here on, every response is scanned (raw) */
	j = sok(&m, "POST", "/clients",
	        "{\"family_name\":\"Kowalski\",\"given_name\":\"Jan\",\"a_number\":\"" S_ANUM "\",\"passport_number\":\"" S_PASS
	        "\",\"ssn\":\"" S_SSN "\"}",
	        201);
	copy(id, sizeof(id), jstr(j, "id"));
	assert_set(j, "a_number", 1);
	assert_set(j, "passport_number", 1);
	assert_set(j, "ssn", 1);
	cJSON_Delete(j);
	/* Errors do not echo them either. */
	sreq(&m, "POST", "/clients",
	     "{\"family_name\":\"Kowalski\",\"given_name\":\"Jan\",\"email\":\"bad\",\"a_number\":\"" S_ANUM
	     "\",\"ssn\":\"" S_SSN "\"}",
	     &r);
	wfield_only(&r, "email", "bad email beside sensitive values");
	sreq(&m, "POST", "/clients", "{\"family_name\":\"K\",\"given_name\":\"J\",\"passport_number\":\"" S_PASS "-\"}", &r);
	wfield_only(&r, "passport_number", "bad passport number");
	sreq(&m, "POST", "/clients", "{\"family_name\":\"K\",\"given_name\":\"J\",\"a_number\":\"" S_ANUM "0\"}", &r);
	wfield_only(&r, "a_number", "bad A-number");
	serr(&m, "POST", "/clients", "{\"family_name\":\"K\",\"a_number\":\"" S_ANUM "\"", 400, "invalid_json");
	/* Reads, lists, searches (by name and by the last four digits). */
	j = get(&m, "clients", id);
	assert_set(j, "a_number", 1);
	cJSON_Delete(j);
	cJSON_Delete(sok(&m, "GET", "/clients", NULL, 200));
	LIST_IS(&m, "/clients?q=kowal", id);
	LIST_IS(&m, "/clients?q=3645", id);
	/* Updates of other fields, of the value itself, and a stale one carrying a value. */
	j = sok(&m, "PATCH", F("/clients/%s", id), "{\"version\":1,\"phone\":\"555\"}", 200);
	assert_set(j, "a_number", 1);
	cJSON_Delete(j);
	j = sok(&a, "PATCH", F("/clients/%s", id), "{\"version\":2,\"a_number\":\"" S_ANUM2 "\"}", 200);
	assert_set(j, "a_number", 1);
	cJSON_Delete(j);
	serr(&m, "PATCH", F("/clients/%s", id), "{\"version\":1,\"a_number\":\"" S_ANUM "\"}", 409, "conflict");
	LIST_EMPTY(&m, "/clients?q=3645");
	LIST_IS(&m, "/clients?q=8291", id);
	/* Credentials. */
	create(&m, "cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-130\"}", id), kase);
	j = sok(&m, "POST", "/credentials",
	        F("{\"client_id\":\"%s\",\"label\":\"USCIS\",\"username\":\"jan\",\"password\":\"" S_CPW "\"}", id), 201);
	copy(cred, sizeof(cred), jstr(j, "id"));
	assert_set(j, "password", 1);
	cJSON_Delete(j);
	j = get(&m, "credentials", cred);
	assert_set(j, "password", 1);
	cJSON_Delete(j);
	cJSON_Delete(sok(&m, "GET", F("/credentials?client_id=%s", qenc(id)), NULL, 200));
	j = sok(&m, "PATCH", F("/credentials/%s", cred), "{\"version\":1,\"username\":\"jan.k\"}", 200);
	assert_set(j, "password", 1);
	cJSON_Delete(j);
	cJSON_Delete(sok(&m, "GET", "/cases", NULL, 200));
	/* The change log and its export, the admin's views. */
	cJSON_Delete(changes(&a, ""));
	cJSON_Delete(changes(&a, F("entity_id=%s", qenc(id))));
	sreq(&a, "GET", "/changes/export", NULL, &r);
	want(&r, 200);
	h_resp_free(&r);
	cJSON_Delete(sok(&a, "GET", "/users", NULL, 200));
	cJSON_Delete(sok(&a, "GET", "/session", NULL, 200));

	/* The reveals: one value each, to admin and member alike. */
	reveal(&m, "clients", id, "a_number", S_ANUM2);
	reveal(&a, "clients", id, "passport_number", S_PASS);
	reveal(&m, "clients", id, "ssn", S_SSN);
	reveal(&m, "credentials", cred, "password", S_CPW);
	sreq(&m, "POST", F("/clients/%s/reveal", id), "{\"field\":\"ssn\"}", &r);
	want(&r, 200);
	assert_null(strstr(r.body, S_ANUM2));
	assert_null(strstr(r.body, S_PASS));
	h_resp_free(&r);
	/* Cleared: {"set": false}, a null value, and the old one gone from the search. */
	j = sok(&m, "PATCH", F("/clients/%s", id), "{\"version\":3,\"a_number\":null,\"ssn\":null}", 200);
	assert_set(j, "a_number", 0);
	assert_set(j, "ssn", 0);
	assert_set(j, "passport_number", 1);
	cJSON_Delete(j);
	reveal(&m, "clients", id, "a_number", NULL);
	reveal(&m, "clients", id, "ssn", NULL);
	LIST_EMPTY(&m, "/clients?q=8291");
	j = sok(&m, "PATCH", F("/credentials/%s", cred), "{\"version\":2,\"password\":null}", 200);
	assert_set(j, "password", 0);
	cJSON_Delete(j);
	reveal(&m, "credentials", cred, "password", NULL);
	/* Deleted: a reveal finds nothing. */
	assert_null(sok(&m, "DELETE", F("/clients/%s", id), NULL, 204));
	serr(&m, "POST", F("/clients/%s/reveal", id), "{\"field\":\"passport_number\"}", 404, "not_found");
	cJSON_Delete(changes(&a, ""));
	print_message("responses scanned for sensitive values: %d\n", g_scanned);
	assert_true(g_scanned >= 25);
}

static void
reveal_bad_field_role_or_id_is_refused(void **state)
{
	static const char *const not_sensitive[] = {"family_name", "given_name", "email", "notes", "id", "version",
	                                            "password",    "A_NUMBER",   "a_number ", "",  "a_number_last4"};
	static const char *const secrets[] = {S_ANUM, S_CPW, NULL};
	char id[ID_LEN], cred[ID_LEN], kase[ID_LEN], ev[ID_LEN], note[ID_LEN], other[ID_LEN];
	struct sess a, m, ro, b;
	struct h_resp r;
	size_t i;

	(void)state;
	org_with("dt-reveal", "198.18.1.17", &a, &m, &ro);
	org_with("dt-reveal-b", "198.18.1.17", &b, NULL, NULL);
	g_secrets = secrets;
	create(&a, "clients", "{\"family_name\":\"Rev\",\"given_name\":\"Eal\",\"a_number\":\"" S_ANUM "\"}", id);
	create(&a, "credentials", F("{\"client_id\":\"%s\",\"label\":\"L\",\"password\":\"" S_CPW "\"}", id), cred);
	create(&a, "cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-130\"}", id), kase);
	create(&a, "events", "{\"title\":\"T\",\"kind\":\"other\",\"starts_at\":\"2026-11-27T09:30:00Z\"}", ev);
	create(&a, "notes", F("{\"body\":\"B\",\"client_id\":\"%s\"}", id), note);
	create(&b, "clients", "{\"family_name\":\"Other\",\"given_name\":\"Org\",\"a_number\":\"A999999999\"}", other);

	/* -bad: fields that are not sensitive fields of the resource. */
	for (i = 0; i < sizeof(not_sensitive) / sizeof(not_sensitive[0]); i++)
		sfield(&m, "POST", F("/clients/%s/reveal", id), F("{\"field\":\"%s\"}", not_sensitive[i]), "field");
	sfield(&m, "POST", F("/credentials/%s/reveal", cred), "{\"field\":\"a_number\"}", "field");
	sfield(&m, "POST", F("/credentials/%s/reveal", cred), "{\"field\":\"username\"}", "field");
	sfield(&m, "POST", F("/clients/%s/reveal", id), "{}", "field");
	sfield(&m, "POST", F("/clients/%s/reveal", id), "{\"field\":null}", "field");
	sfield(&m, "POST", F("/clients/%s/reveal", id), "{\"field\":5}", "field");
	sfield(&m, "POST", F("/clients/%s/reveal", id), "{\"field\":[\"a_number\"]}", "field");
	sfield(&m, "POST", F("/clients/%s/reveal", id), "{\"field\":\"a_number\",\"why\":\"x\"}", "why");
	serr(&m, "POST", F("/clients/%s/reveal", id), "a_number", 400, "invalid_json");
	serr(&m, "POST", F("/clients/%s/reveal", id), "[\"a_number\"]", 400, "invalid_json");
	/* Resources without sensitive fields have nothing to reveal. */
	{
		static const char *const res[] = {"cases", "events", "notes"};
		const char *rid[] = {kase, ev, note};
		size_t k;

		for (k = 0; k < 3; k++) {
			sreq(&m, "POST", F("/%s/%s/reveal", res[k], rid[k]), "{\"field\":\"title\"}", &r);
			if (r.status == 404)
				werr(&r, 404, "not_found");
			else
				wfield_only(&r, "field", F("reveal on %s", res[k]));
		}
	}
	/* -bad: readonly may not reveal; no CSRF token; no session. */
	serr(&ro, "POST", F("/clients/%s/reveal", id), "{\"field\":\"a_number\"}", 403, "forbidden");
	serr(&ro, "POST", F("/credentials/%s/reveal", cred), "{\"field\":\"password\"}", 403, "forbidden");
	raw("POST", F("/api/v1/orgs/dt-reveal/clients/%s/reveal", id), m.ip, m.token, NULL, "{\"field\":\"a_number\"}",
	    &r);
	werr(&r, 403, "csrf_failed");
	raw("POST", F("/api/v1/orgs/dt-reveal/clients/%s/reveal", id), m.ip, NULL, NULL, "{\"field\":\"a_number\"}", &r);
	werr(&r, 401, "unauthenticated");
	raw("GET", F("/api/v1/orgs/dt-reveal/clients/%s/reveal", id), m.ip, m.token, NULL, NULL, &r);
	assert_true(r.status == 405 || r.status == 404);
	h_resp_free(&r);
	/* -bad: ids that are not records of this org, of this resource. */
	serr(&m, "POST", F("/clients/%s/reveal", other), "{\"field\":\"a_number\"}", 404, "not_found");
	serr(&m, "POST", F("/clients/%s/reveal", cred), "{\"field\":\"a_number\"}", 404, "not_found");
	serr(&m, "POST", F("/credentials/%s/reveal", id), "{\"field\":\"password\"}", 404, "not_found");
	serr(&m, "POST", "/clients/nope/reveal", "{\"field\":\"a_number\"}", 404, "not_found");
	serr(&m, "POST", F("/clients/%s/reveal", qenc("' OR '1'='1")), "{\"field\":\"a_number\"}", 404, "not_found");
	serr(&b, "POST", F("/clients/%s/reveal", id), "{\"field\":\"a_number\"}", 404, "not_found");
	raw("POST", F("/api/v1/orgs/dt-reveal-b/clients/%s/reveal", other), m.ip, m.token, m.csrf,
	    "{\"field\":\"a_number\"}", &r);
	werr(&r, 404, "not_found");
	/* And the good ones, after all that. */
	g_secrets = NULL;
	reveal(&m, "clients", id, "a_number", S_ANUM);
	reveal(&a, "credentials", cred, "password", S_CPW);
	reveal(&b, "clients", other, "a_number", "A999999999");
}

static void
stored_sensitive_fields_are_ciphertext_under_the_field_key(void **state)
{
	static const char *const clear[] = {S_ANUM, "918273645", S_PASS, S_SSN, "987654329", S_CPW, S_ANUM2,
	                                    "564738291", "A192837465", NULL};
	char id[ID_LEN], gone[ID_LEN], cred[ID_LEN], org_id[ID_LEN], path[IDB_PATH_MAX], ad_row[ID_LEN], twin[ID_LEN];
	unsigned char *blob, plain[256];
	struct idb_org_keys k;
	struct idb_field_ad ad;
	size_t n, plen;
	unsigned ver;
	struct sess a;
	sqlite3 *db;
	int i;

	(void)state;
	org_with("dt-store", "198.18.1.18", &a, NULL, NULL);
	create(&a, "clients",
	       "{\"family_name\":\"Stored\",\"given_name\":\"Clear\",\"a_number\":\"" S_ANUM "\",\"passport_number\":\"" S_PASS
	       "\",\"ssn\":\"" S_SSN "\"}",
	       id);
	create(&a, "credentials", F("{\"client_id\":\"%s\",\"label\":\"L\",\"password\":\"" S_CPW "\"}", id), cred);
	/* A value replaced, and a deleted client's value: neither is kept in clear either. */
	create(&a, "clients", "{\"family_name\":\"Gone\",\"given_name\":\"Soon\",\"a_number\":\"A192837465\"}", gone);
	assert_null(sok(&a, "DELETE", F("/clients/%s", gone), NULL, 204));
	create(&a, "clients", "{\"family_name\":\"Old\",\"given_name\":\"Value\",\"a_number\":\"" S_ANUM2 "\"}", ad_row);
	cJSON_Delete(sok(&a, "PATCH", F("/clients/%s", ad_row), "{\"version\":1,\"a_number\":\"A000000001\"}", 200));
	/* The same value twice. */
	create(&a, "clients", "{\"family_name\":\"Twin\",\"given_name\":\"T\",\"a_number\":\"" S_ANUM "\"}", twin);

	db = org_db("dt-store");
	for (i = 0; clear[i] != NULL; i++)
		db_has_no(db, clear[i]);
	/* The search by the last four digits keeps no clear copy of them either. */
	db_no_cell_is(db, "3645");
	db_no_cell_is(db, "7465");
	/* The scan is not vacuous: clear fields are there as text. */
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM clients WHERE family_name = 'Stored' AND given_name = ?1",
	                           "Clear", NULL),
	                 1);
	/* BLOBs of 0x01 || version || nonce || ciphertext || tag. */
	assert_int_equal(q_ll_bind(db, "SELECT typeof(a_number) = 'blob' FROM clients WHERE id = ?1", id, NULL), 1);
	assert_int_equal(q_ll_bind(db, "SELECT length(a_number) FROM clients WHERE id = ?1", id, NULL),
	                 IDB_FIELD_OVERHEAD + strlen(S_ANUM));
	assert_int_equal(q_ll_bind(db, "SELECT length(passport_number) FROM clients WHERE id = ?1", id, NULL),
	                 IDB_FIELD_OVERHEAD + strlen(S_PASS));
	assert_int_equal(q_ll_bind(db, "SELECT length(ssn) FROM clients WHERE id = ?1", id, NULL),
	                 IDB_FIELD_OVERHEAD + strlen(S_SSN));
	assert_int_equal(q_ll_bind(db, "SELECT typeof(password) = 'blob' FROM credentials WHERE id = ?1", cred, NULL), 1);
	assert_int_equal(q_ll_bind(db, "SELECT length(password) FROM credentials WHERE id = ?1", cred, NULL),
	                 IDB_FIELD_OVERHEAD + strlen(S_CPW));
	/* Two encryptions of one value differ (random nonces). */
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM clients a, clients b WHERE a.id = ?1 AND b.id = ?2 "
	                               "AND a.a_number = b.a_number",
	                           id, twin),
	                 0);

	/* They open with the field key and storage.md's associated data, not with the database key. */
	n = q_blob(db, "SELECT a_number FROM clients WHERE id = ?1", id, &blob);
	idb_db_close(db);
	org_keys_id("dt-store", &k, path, org_id, ID_LEN);
	assert_non_null(blob);
	assert_int_equal(blob[0], 0x01);
	ver = (unsigned)blob[1] << 24 | (unsigned)blob[2] << 16 | (unsigned)blob[3] << 8 | blob[4];
	assert_int_equal(ver, k.field_version);
	ad.org_id = org_id;
	ad.table = "clients";
	ad.row_id = id;
	ad.column = "a_number";
	assert_int_equal(idb_field_decrypt(k.field, ver, &ad, blob, n, plain, &plen), IDB_OK);
	assert_int_equal(plen, strlen(S_ANUM));
	assert_memory_equal(plain, S_ANUM, plen);
	assert_int_not_equal(idb_field_decrypt(k.db, ver, &ad, blob, n, plain, &plen), IDB_OK);
	ad.column = "ssn";
	assert_int_not_equal(idb_field_decrypt(k.field, ver, &ad, blob, n, plain, &plen), IDB_OK);
	ad.column = "a_number";
	ad.row_id = gone;
	assert_int_not_equal(idb_field_decrypt(k.field, ver, &ad, blob, n, plain, &plen), IDB_OK);
	idb_org_keys_wipe(&k);
	sodium_memzero(plain, sizeof(plain));
	free(blob);
	/* And the file holds no clear value in its bytes. */
	for (i = 0; clear[i] != NULL; i++)
		file_has_no("dt-store", clear[i]);
}

/* Runs a fixed UPDATE that copies one ciphertext (?1: source id) into another place (?2: target id). */
static void
move_blob(const char *slug, const char *sql, const char *from, const char *to)
{
	sqlite3 *db = org_db(slug);
	char err[256];

	if (q_exec(db, sql, from, to, err, sizeof(err)) != SQLITE_DONE)
		fail_msg("%s: %s", sql, err);
	assert_int_equal(sqlite3_changes(db), 1);
	idb_db_close(db);
}

/* A reveal that must not succeed (the stored value does not decrypt) nor show value. */
static void
reveal_fails(const struct sess *s, const char *res, const char *id, const char *field, const char *value)
{
	struct h_resp r;

	sreq(s, "POST", F("/%s/%s/reveal", res, id), F("{\"field\":\"%s\"}", field), &r);
	if (r.status == 200)
		fail_msg("reveal of %s on %s %s answered 200 for a moved ciphertext: %.300s", field, res, id, r.body);
	if (h_contains(r.body, r.len, value))
		fail_msg("reveal of %s on %s %s shows the moved value: %.300s", field, res, id, r.body);
	assert_true(r.status >= 400);
	h_resp_free(&r);
}

static void
a_ciphertext_moved_to_another_row_or_column_does_not_decrypt(void **state)
{
	char x[ID_LEN], y[ID_LEN], c1[ID_LEN], c2[ID_LEN];
	struct sess a;
	cJSON *j;

	(void)state;
	org_with("dt-move", "198.18.1.19", &a, NULL, NULL);
	create(&a, "clients",
	       "{\"family_name\":\"Ex\",\"given_name\":\"X\",\"a_number\":\"A246813579\",\"passport_number\":\"PX12345\","
	       "\"ssn\":\"111-22-3333\"}",
	       x);
	create(&a, "clients",
	       "{\"family_name\":\"Why\",\"given_name\":\"Y\",\"a_number\":\"A135792468\",\"passport_number\":\"PY54321\"}",
	       y);
	create(&a, "credentials", F("{\"client_id\":\"%s\",\"label\":\"One\",\"password\":\"pw-of-one\"}", x), c1);
	create(&a, "credentials", F("{\"client_id\":\"%s\",\"label\":\"Two\",\"password\":\"pw-of-two\"}", y), c2);
	reveal(&a, "clients", y, "a_number", "A135792468");

	/* X's A-number into Y's A-number: same table and column, another row. */
	move_blob("dt-move", "UPDATE clients SET a_number = (SELECT a_number FROM clients WHERE id = ?1) WHERE id = ?2",
	          x, y);
	reveal_fails(&a, "clients", y, "a_number", "A246813579");
	/* X's A-number into Y's passport number: another row and column. */
	move_blob("dt-move",
	          "UPDATE clients SET passport_number = (SELECT a_number FROM clients WHERE id = ?1) WHERE id = ?2", x, y);
	reveal_fails(&a, "clients", y, "passport_number", "A246813579");
	/* Within one row, another column. */
	move_blob("dt-move", "UPDATE clients SET ssn = (SELECT a_number FROM clients WHERE id = ?1) WHERE id = ?2", x, x);
	reveal_fails(&a, "clients", x, "ssn", "A246813579");
	/* Another table. */
	move_blob("dt-move",
	          "UPDATE credentials SET password = (SELECT passport_number FROM clients WHERE id = ?1) WHERE id = ?2", x,
	          c2);
	reveal_fails(&a, "credentials", c2, "password", "PX12345");
	move_blob("dt-move",
	          "UPDATE clients SET passport_number = (SELECT password FROM credentials WHERE id = ?1) WHERE id = ?2", c1,
	          x);
	reveal_fails(&a, "clients", x, "passport_number", "pw-of-one");
	/* One byte of the tag changed in place. */
	{
		sqlite3 *db = org_db("dt-move");
		sqlite3_stmt *st = NULL;
		unsigned char *blob;
		size_t n = q_blob(db, "SELECT password FROM credentials WHERE id = ?1", c1, &blob);

		assert_non_null(blob);
		assert_true(n > IDB_FIELD_OVERHEAD);
		blob[n - 1] ^= 0x01;
		assert_int_equal(sqlite3_prepare_v2(db, "UPDATE credentials SET password = ?1 WHERE id = ?2", -1, &st, NULL),
		                 SQLITE_OK);
		sqlite3_bind_blob(st, 1, blob, (int)n, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, c1, -1, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		assert_int_equal(sqlite3_changes(db), 1);
		sqlite3_finalize(st);
		free(blob);
		idb_db_close(db);
	}
	reveal_fails(&a, "credentials", c1, "password", "pw-of-one");
	/* What was not touched still reveals, and reads never decrypt. */
	reveal(&a, "clients", x, "a_number", "A246813579");
	j = get(&a, "clients", y);
	assert_set(j, "a_number", 1);
	cJSON_Delete(j);
	cJSON_Delete(sok(&a, "GET", "/clients", NULL, 200));
	/* Writing a new value repairs it. */
	cJSON_Delete(sok(&a, "PATCH", F("/clients/%s", y), "{\"version\":1,\"a_number\":\"A135792468\"}", 200));
	reveal(&a, "clients", y, "a_number", "A135792468");
}

/* --- tests: roles and tenants -------------------------------------- */

/* One record of each resource, made by s; ids into the five buffers (clients, cases, events, notes, credentials). */
static void
one_of_each(const struct sess *s, char ids[5][ID_LEN])
{
	create(s, "clients", "{\"family_name\":\"Each\",\"given_name\":\"One\",\"a_number\":\"A102030405\"}", ids[0]);
	create(s, "cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-130\"}", ids[0]), ids[1]);
	create(s, "events",
	       F("{\"title\":\"T\",\"kind\":\"other\",\"starts_at\":\"2026-11-27T09:30:00Z\",\"case_id\":\"%s\"}", ids[1]),
	       ids[2]);
	create(s, "notes", F("{\"body\":\"B\",\"client_id\":\"%s\"}", ids[0]), ids[3]);
	create(s, "credentials", F("{\"client_id\":\"%s\",\"label\":\"L\",\"password\":\"cred-pw-each\"}", ids[0]),
	       ids[4]);
}

static const char *const RES[5] = {"clients", "cases", "events", "notes", "credentials"};
static const char *const PATCH1[5] = {"{\"version\":1,\"phone\":\"1\"}", "{\"version\":1,\"title\":\"T\"}",
                                      "{\"version\":1,\"location\":\"L\"}", "{\"version\":1,\"body\":\"B2\"}",
                                      "{\"version\":1,\"username\":\"u\"}"};

/* A valid POST body for resource k, referring to the records of ids. */
static const char *
post_body(int k, char ids[5][ID_LEN])
{
	switch (k) {
	case 0:
		return "{\"family_name\":\"New\",\"given_name\":\"One\"}";
	case 1:
		return F("{\"client_id\":\"%s\",\"case_type\":\"I-130\"}", ids[0]);
	case 2:
		return "{\"title\":\"T\",\"kind\":\"other\",\"starts_at\":\"2026-11-27T09:30:00Z\"}";
	case 3:
		return F("{\"body\":\"B\",\"client_id\":\"%s\"}", ids[0]);
	default:
		return F("{\"client_id\":\"%s\",\"label\":\"L\"}", ids[0]);
	}
}

static void
readonly_reads_everything_and_writes_nothing(void **state)
{
	static const char *const secrets[] = {"A102030405", "cred-pw-each", NULL};
	char ids[5][ID_LEN];
	struct sess a, ro;
	cJSON *j;
	int k;

	(void)state;
	org_with("dt-ro", "198.18.1.20", &a, NULL, &ro);
	one_of_each(&a, ids);
	g_secrets = secrets;
	for (k = 0; k < 5; k++) {
		assert_int_equal(count_all(&ro, F("/%s", RES[k])), 1);
		j = get(&ro, RES[k], ids[k]);
		assert_int_equal(jint(j, "version"), 1);
		cJSON_Delete(j);
		/* -bad: every write, with bodies that would succeed for a member. */
		serr(&ro, "POST", F("/%s", RES[k]), post_body(k, ids), 403, "forbidden");
		serr(&ro, "PATCH", F("/%s/%s", RES[k], ids[k]), PATCH1[k], 403, "forbidden");
		serr(&ro, "DELETE", F("/%s/%s", RES[k], ids[k]), NULL, 403, "forbidden");
	}
	LIST_IS(&ro, "/clients?q=each", ids[0]);
	LIST_IS(&ro, F("/cases?client_id=%s", qenc(ids[0])), ids[1]);
	serr(&ro, "POST", F("/clients/%s/reveal", ids[0]), "{\"field\":\"a_number\"}", 403, "forbidden");
	serr(&ro, "POST", F("/credentials/%s/reveal", ids[4]), "{\"field\":\"password\"}", 403, "forbidden");
	serr(&ro, "GET", "/changes", NULL, 403, "forbidden");
	serr(&ro, "GET", "/changes/export", NULL, 403, "forbidden");
	/* Nothing changed: one record each at version 1, five entries in the change log. */
	g_secrets = NULL;
	for (k = 0; k < 5; k++) {
		assert_int_equal(count_all(&a, F("/%s", RES[k])), 1);
		assert_int_equal(version_of(&a, RES[k], ids[k]), 1);
	}
	assert_int_equal(changes_n(&a, ""), 5 + changes_n(&a, "entity=users") + changes_n(&a, "entity=settings"));
}

static void
members_write_and_reveal_but_cannot_read_the_change_log(void **state)
{
	char ids[5][ID_LEN], more[5][ID_LEN];
	struct sess a, m;
	cJSON *j;
	int k;

	(void)state;
	org_with("dt-member", "198.18.1.21", &a, &m, NULL);
	one_of_each(&m, ids);
	for (k = 0; k < 5; k++) {
		j = get(&a, RES[k], ids[k]);
		assert_string_equal(jstr(j, "created_by"), m.user_id);
		cJSON_Delete(j);
		create(&m, RES[k], post_body(k, ids), more[k]);
		j = sok(&m, "PATCH", F("/%s/%s", RES[k], ids[k]), PATCH1[k], 200);
		assert_int_equal(jint(j, "version"), 2);
		cJSON_Delete(j);
	}
	reveal(&m, "clients", ids[0], "a_number", "A102030405");
	reveal(&m, "credentials", ids[4], "password", "cred-pw-each");
	for (k = 4; k >= 0; k--)
		assert_null(sok(&m, "DELETE", F("/%s/%s", RES[k], more[k]), NULL, 204));
	/* -bad: the change log is the admin's. */
	serr(&m, "GET", "/changes", NULL, 403, "forbidden");
	serr(&m, "GET", F("/changes?entity_id=%s", qenc(ids[0])), NULL, 403, "forbidden");
	serr(&m, "GET", "/changes/export", NULL, 403, "forbidden");
	/* The admin sees the member's work. */
	j = changes(&a, F("entity_id=%s", qenc(ids[0])));
	assert_int_equal(cJSON_GetArraySize(j), 2);
	assert_entry(cJSON_GetArrayItem(j, 0), "create", "clients", ids[0], &m);
	assert_entry(cJSON_GetArrayItem(j, 1), "update", "clients", ids[0], &m);
	cJSON_Delete(j);
}

static void
another_orgs_ids_are_404_and_unusable_as_references(void **state)
{
	char ia[5][ID_LEN], ib[5][ID_LEN], ua[ID_LEN];
	static const char *const bad_ids[] = {"nope", "0", "-1", "%27%20OR%20%271%27%3D%271", "c_%2500", "%20"};
	struct sess a, b;
	struct h_resp r;
	cJSON *j;
	size_t i;
	int k;

	(void)state;
	org_with("dt-xa", "198.18.1.22", &a, NULL, NULL);
	org_with("dt-xb", "198.18.1.22", &b, NULL, NULL);
	user_new_pw("dt-xa", "mb@dt-xa.test", "member", PW, ua, ID_LEN);
	one_of_each(&a, ia);
	one_of_each(&b, ib);
	for (k = 0; k < 5; k++) {
		/* -bad: B's session, B's org, A's ids. */
		serr(&b, "GET", F("/%s/%s", RES[k], ia[k]), NULL, 404, "not_found");
		serr(&b, "PATCH", F("/%s/%s", RES[k], ia[k]), PATCH1[k], 404, "not_found");
		serr(&b, "DELETE", F("/%s/%s", RES[k], ia[k]), NULL, 404, "not_found");
		if (k == 0 || k == 4)
			serr(&b, "POST", F("/%s/%s/reveal", RES[k], ia[k]),
			     k == 0 ? "{\"field\":\"a_number\"}" : "{\"field\":\"password\"}", 404, "not_found");
		/* -bad: A's session on B's org, with B's ids. */
		raw("GET", F("/api/v1/orgs/dt-xb/%s/%s", RES[k], ib[k]), a.ip, a.token, NULL, NULL, &r);
		werr(&r, 404, "not_found");
		raw("GET", F("/api/v1/orgs/dt-xb/%s", RES[k]), a.ip, a.token, NULL, NULL, &r);
		werr(&r, 404, "not_found");
		raw("POST", F("/api/v1/orgs/dt-xb/%s", RES[k]), a.ip, a.token, a.csrf, post_body(k, ib), &r);
		werr(&r, 404, "not_found");
		/* -bad: malformed or unknown ids. */
		for (i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
			serr(&a, "GET", F("/%s/%s", RES[k], bad_ids[i]), NULL, 404, "not_found");
			serr(&a, "PATCH", F("/%s/%s", RES[k], bad_ids[i]), PATCH1[k], 404, "not_found");
			serr(&a, "DELETE", F("/%s/%s", RES[k], bad_ids[i]), NULL, 404, "not_found");
		}
		/* An id of another resource of the same org. */
		serr(&a, "GET", F("/%s/%s", RES[k], ia[(k + 1) % 5]), NULL, 404, "not_found");
		serr(&a, "GET", F("/%s/%s", RES[k], ua), NULL, 404, "not_found");
	}
	{
		char *x = repeat("a", 300);

		serr(&a, "GET", F("/clients/%s", x), NULL, 404, "not_found");
		free(x);
	}
	/* -bad: A's records as references in B's bodies. */
	sfield(&b, "POST", "/cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-130\"}", ia[0]), "client_id");
	sfield(&b, "POST", "/cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-130\",\"assigned_user_id\":\"%s\"}", ib[0], ua),
	       "assigned_user_id");
	sfield(&b, "POST", "/events",
	       F("{\"title\":\"T\",\"kind\":\"other\",\"starts_at\":\"2026-11-27T09:30:00Z\",\"case_id\":\"%s\"}", ia[1]),
	       "case_id");
	sfield(&b, "POST", "/events",
	       F("{\"title\":\"T\",\"kind\":\"other\",\"starts_at\":\"2026-11-27T09:30:00Z\",\"owner_user_id\":\"%s\"}", ua),
	       "owner_user_id");
	sfield(&b, "POST", "/notes", F("{\"body\":\"B\",\"client_id\":\"%s\"}", ia[0]), "client_id");
	sfield(&b, "POST", "/notes", F("{\"body\":\"B\",\"case_id\":\"%s\"}", ia[1]), "case_id");
	sfield(&b, "POST", "/credentials", F("{\"client_id\":\"%s\",\"label\":\"L\"}", ia[0]), "client_id");
	sfield(&b, "PATCH", F("/cases/%s", ib[1]), F("{\"version\":1,\"assigned_user_id\":\"%s\"}", ua), "assigned_user_id");
	sfield(&b, "PATCH", F("/events/%s", ib[2]), F("{\"version\":1,\"case_id\":\"%s\"}", ia[1]), "case_id");
	sfield(&b, "PATCH", F("/notes/%s", ib[3]), F("{\"version\":1,\"client_id\":\"%s\"}", ia[0]), "client_id");
	/* Filters by A's ids find nothing in B. */
	LIST_EMPTY(&b, F("/cases?client_id=%s", qenc(ia[0])));
	LIST_EMPTY(&b, F("/events?case_id=%s", qenc(ia[1])));
	LIST_EMPTY(&b, F("/notes?client_id=%s", qenc(ia[0])));
	LIST_EMPTY(&b, F("/credentials?client_id=%s", qenc(ia[0])));
	/* Nothing changed anywhere. */
	for (k = 0; k < 5; k++) {
		assert_int_equal(version_of(&a, RES[k], ia[k]), 1);
		assert_int_equal(version_of(&b, RES[k], ib[k]), 1);
		assert_int_equal(count_all(&a, F("/%s", RES[k])), 1);
		assert_int_equal(count_all(&b, F("/%s", RES[k])), 1);
	}
	j = changes(&b, "entity=cases");
	assert_int_equal(cJSON_GetArraySize(j), 1);
	cJSON_Delete(j);
	assert_int_equal(changes_n(&b, F("entity_id=%s", qenc(ia[0]))), 0);
}

static void
data_routes_need_a_session_and_the_csrf_token(void **state)
{
	char ids[5][ID_LEN];
	struct sess a;
	struct h_resp r;
	int k;

	(void)state;
	org_with("dt-csrf", "198.18.1.23", &a, NULL, NULL);
	one_of_each(&a, ids);
	for (k = 0; k < 5; k++) {
		const char *list = F("/api/v1/orgs/dt-csrf/%s", RES[k]);
		const char *one = F("/api/v1/orgs/dt-csrf/%s/%s", RES[k], ids[k]);

		/* -bad: no session. */
		raw("GET", list, a.ip, NULL, NULL, NULL, &r);
		werr(&r, 401, "unauthenticated");
		raw("GET", one, a.ip, NULL, NULL, NULL, &r);
		werr(&r, 401, "unauthenticated");
		raw("POST", list, a.ip, NULL, a.csrf, post_body(k, ids), &r);
		werr(&r, 401, "unauthenticated");
		/* -bad: no, empty or wrong CSRF token. */
		raw("POST", list, a.ip, a.token, NULL, post_body(k, ids), &r);
		werr(&r, 403, "csrf_failed");
		raw("POST", list, a.ip, a.token, "", post_body(k, ids), &r);
		werr(&r, 403, "csrf_failed");
		raw("PATCH", one, a.ip, a.token, "wrong", PATCH1[k], &r);
		werr(&r, 403, "csrf_failed");
		raw("DELETE", one, a.ip, a.token, NULL, NULL, &r);
		werr(&r, 403, "csrf_failed");
		/* -bad: methods the resource does not have. */
		raw("PUT", one, a.ip, a.token, a.csrf, PATCH1[k], &r);
		werr(&r, 405, "method_not_allowed");
		raw("DELETE", list, a.ip, a.token, a.csrf, NULL, &r);
		werr(&r, 405, "method_not_allowed");
	}
	for (k = 0; k < 5; k++) {
		assert_int_equal(count_all(&a, F("/%s", RES[k])), 1);
		assert_int_equal(version_of(&a, RES[k], ids[k]), 1);
	}
}

/* --- tests: soft delete -------------------------------------------- */

static void
deleted_records_vanish_from_reads_but_stay_in_storage_and_the_log(void **state)
{
	char ids[5][ID_LEN], keep[ID_LEN];
	struct sess a;
	sqlite3 *db;
	cJSON *c;
	int k;

	(void)state;
	org_with("dt-soft", "198.18.1.24", &a, NULL, NULL);
	one_of_each(&a, ids);
	create(&a, "clients", "{\"family_name\":\"Keep\",\"given_name\":\"Me\"}", keep);
	for (k = 4; k >= 0; k--)
		assert_null(sok(&a, "DELETE", F("/%s/%s", RES[k], ids[k]), NULL, 204));
	for (k = 0; k < 5; k++) {
		serr(&a, "GET", F("/%s/%s", RES[k], ids[k]), NULL, 404, "not_found");
		serr(&a, "PATCH", F("/%s/%s", RES[k], ids[k]), PATCH1[k], 404, "not_found");
		serr(&a, "DELETE", F("/%s/%s", RES[k], ids[k]), NULL, 404, "not_found");
	}
	serr(&a, "POST", F("/clients/%s/reveal", ids[0]), "{\"field\":\"a_number\"}", 404, "not_found");
	serr(&a, "POST", F("/credentials/%s/reveal", ids[4]), "{\"field\":\"password\"}", 404, "not_found");
	LIST_IS(&a, "/clients", keep);
	LIST_EMPTY(&a, "/cases");
	LIST_EMPTY(&a, "/events");
	LIST_EMPTY(&a, "/notes");
	LIST_EMPTY(&a, "/credentials");
	LIST_EMPTY(&a, "/clients?q=each");
	LIST_EMPTY(&a, "/clients?q=0405");
	LIST_EMPTY(&a, F("/cases?client_id=%s", qenc(ids[0])));
	LIST_EMPTY(&a, F("/notes?client_id=%s", qenc(ids[0])));
	LIST_EMPTY(&a, F("/credentials?client_id=%s", qenc(ids[0])));
	LIST_EMPTY(&a, F("/events?case_id=%s", qenc(ids[1])));
	/* -bad: a deleted record cannot be referred to. */
	sfield(&a, "POST", "/cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-130\"}", ids[0]), "client_id");
	sfield(&a, "POST", "/notes", F("{\"body\":\"B\",\"case_id\":\"%s\"}", ids[1]), "case_id");
	sfield(&a, "POST", "/credentials", F("{\"client_id\":\"%s\",\"label\":\"L\"}", ids[0]), "client_id");
	/* Kept: in storage, marked, and in the change log with create and delete. */
	db = org_db("dt-soft");
	for (k = 0; k < 5; k++)
		assert_int_equal(q_ll_bind(db, deleted_sql(RES[k]), ids[k], NULL), 1);
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM clients WHERE id = ?1 AND deleted_at IS NULL", keep, NULL), 1);
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM clients WHERE id = ?1 AND family_name = 'Each'", ids[0], NULL),
	                 1);
	idb_db_close(db);
	for (k = 0; k < 5; k++) {
		c = changes(&a, F("entity=%s&entity_id=%s", RES[k], qenc(ids[k])));
		assert_int_equal(cJSON_GetArraySize(c), 2);
		assert_entry(cJSON_GetArrayItem(c, 0), "create", RES[k], ids[k], &a);
		assert_entry(cJSON_GetArrayItem(c, 1), "delete", RES[k], ids[k], &a);
		assert_int_equal(cJSON_GetArraySize(jobj(cJSON_GetArrayItem(c, 1), "changes")), 0);
		cJSON_Delete(c);
	}
}

/* --- tests: the change log ----------------------------------------- */

static void
change_log_records_each_write_with_its_field_diffs(void **state)
{
	static const char *const secrets[] = {"A111222333", "A444555666", "X12345", NULL};
	char id[ID_LEN], kid[ID_LEN];
	struct sess a, m;
	struct h_resp r;
	const cJSON *e;
	cJSON *c;
	int n0;

	(void)state;
	org_with("dt-changes", "198.18.1.25", &a, &m, NULL);
	g_secrets = secrets;
	n0 = changes_n(&a, "");
	create(&m, "clients",
	       "{\"family_name\":\"Okafor\",\"given_name\":\"Ada\",\"email\":\"ada@example.test\",\"a_number\":\"A111222333\","
	       "\"date_of_birth\":\"1990-05-06\"}",
	       id);
	c = changes(&a, F("entity=clients&entity_id=%s", qenc(id)));
	assert_int_equal(cJSON_GetArraySize(c), 1);
	e = cJSON_GetArrayItem(c, 0);
	assert_entry(e, "create", "clients", id, &m);
	/* Every field set, from null; sensitive ones as "[encrypted]". */
	assert_change(e, "family_name", "null", "\"Okafor\"");
	assert_change(e, "given_name", "null", "\"Ada\"");
	assert_change(e, "email", "null", "\"ada@example.test\"");
	assert_change(e, "date_of_birth", "null", "\"1990-05-06\"");
	assert_change(e, "a_number", "null", "\"[encrypted]\"");
	{
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(jobj(e, "changes"), "passport_number");

		/* Not set: absent, or null to null. */
		if (p != NULL)
			assert_change(e, "passport_number", "null", "null");
	}
	cJSON_Delete(c);

	/* An update lists only what changed. */
	cJSON_Delete(sok(&a, "PATCH", F("/clients/%s", id),
	                 "{\"version\":1,\"given_name\":\"Adaeze\",\"a_number\":\"A444555666\",\"phone\":\"555\"}", 200));
	cJSON_Delete(sok(&m, "PATCH", F("/clients/%s", id), "{\"version\":2,\"a_number\":null,\"phone\":null}", 200));
	cJSON_Delete(sok(&m, "PATCH", F("/clients/%s", id), "{\"version\":3,\"passport_number\":\"X12345\"}", 200));
	/* -bad: refused writes write nothing. */
	serr(&m, "PATCH", F("/clients/%s", id), "{\"version\":1,\"given_name\":\"Stale\"}", 409, "conflict");
	sreq(&m, "PATCH", F("/clients/%s", id), "{\"version\":4,\"email\":\"bad\"}", &r);
	wfield_only(&r, "email", "bad email");
	serr(&m, "PATCH", F("/clients/%s", id), "{\"version\":4,", 400, "invalid_json");
	sreq(&m, "POST", "/clients", "{\"family_name\":\"\",\"given_name\":\"X\"}", &r);
	wfield_only(&r, "family_name", "empty family name");
	assert_null(sok(&m, "DELETE", F("/clients/%s", id), NULL, 204));

	c = changes(&a, F("entity_id=%s", qenc(id)));
	assert_int_equal(cJSON_GetArraySize(c), 5);
	e = cJSON_GetArrayItem(c, 1);
	assert_entry(e, "update", "clients", id, &a);
	assert_change(e, "given_name", "\"Ada\"", "\"Adaeze\"");
	assert_change(e, "a_number", "\"[encrypted]\"", "\"[encrypted]\"");
	assert_change(e, "phone", "null", "\"555\"");
	assert_no_change(e, "family_name");
	assert_no_change(e, "email");
	assert_no_change(e, "passport_number");
	assert_int_equal(cJSON_GetArraySize(jobj(e, "changes")), 3);
	e = cJSON_GetArrayItem(c, 2);
	assert_entry(e, "update", "clients", id, &m);
	assert_change(e, "a_number", "\"[encrypted]\"", "null");
	assert_change(e, "phone", "\"555\"", "null");
	assert_int_equal(cJSON_GetArraySize(jobj(e, "changes")), 2);
	e = cJSON_GetArrayItem(c, 3);
	assert_change(e, "passport_number", "null", "\"[encrypted]\"");
	assert_int_equal(cJSON_GetArraySize(jobj(e, "changes")), 1);
	e = cJSON_GetArrayItem(c, 4);
	assert_entry(e, "delete", "clients", id, &m);
	assert_int_equal(cJSON_GetArraySize(jobj(e, "changes")), 0);
	cJSON_Delete(c);

	/* Other resources, by entity. */
	assert_int_equal(changes_n(&a, "entity=cases"), 0);
	create(&m, "clients", "{\"family_name\":\"B\",\"given_name\":\"C\"}", kid);
	create(&m, "cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-130\",\"status\":\"pending\"}", kid), kid);
	c = changes(&a, "entity=cases");
	assert_int_equal(cJSON_GetArraySize(c), 1);
	e = cJSON_GetArrayItem(c, 0);
	assert_entry(e, "create", "cases", kid, &m);
	assert_change(e, "case_type", "null", "\"I-130\"");
	assert_change(e, "status", "null", "\"pending\"");
	cJSON_Delete(c);
	cJSON_Delete(sok(&m, "PATCH", F("/cases/%s", kid), "{\"version\":1,\"status\":\"approved\"}", 200));
	c = changes(&a, F("entity=cases&entity_id=%s", qenc(kid)));
	assert_int_equal(cJSON_GetArraySize(c), 2);
	assert_change(cJSON_GetArrayItem(c, 1), "status", "\"pending\"", "\"approved\"");
	cJSON_Delete(c);
	/* One row per write, in the table too. */
	{
		sqlite3 *db = org_db("dt-changes");

		assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM change_log", NULL, NULL), changes_n(&a, ""));
		assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM change_log WHERE entity_id = ?1", id, NULL), 5);
		idb_db_close(db);
	}
	assert_int_equal(changes_n(&a, ""), n0 + 5 + 1 + 2);
}

static void
change_log_records_user_and_settings_changes(void **state)
{
	static const char *const secrets[] = {PW2, "twelve-chars-pw", NULL};
	char uid[ID_LEN], org_id[ID_LEN];
	struct sess a, nu;
	const cJSON *e;
	cJSON *c, *j;

	(void)state;
	org_with("dt-chusers", "198.18.1.26", &a, NULL, NULL);
	org_id_of("dt-chusers", org_id);
	g_secrets = secrets;
	j = sok(&a, "POST", "/users",
	        "{\"email\":\"nu@dt-chusers.test\",\"name\":\"New User\",\"role\":\"member\",\"password\":\"twelve-chars-pw\"}",
	        201);
	copy(uid, sizeof(uid), jstr(j, "id"));
	cJSON_Delete(j);
	c = changes(&a, F("entity=users&entity_id=%s", qenc(uid)));
	assert_int_equal(cJSON_GetArraySize(c), 1);
	e = cJSON_GetArrayItem(c, 0);
	assert_entry(e, "create", "users", uid, &a);
	assert_change(e, "email", "null", "\"nu@dt-chusers.test\"");
	assert_change(e, "role", "null", "\"member\"");
	assert_change(e, "name", "null", "\"New User\"");
	if (cJSON_GetObjectItemCaseSensitive(jobj(e, "changes"), "password") != NULL)
		assert_change(e, "password", "null", "\"[encrypted]\"");
	cJSON_Delete(c);

	cJSON_Delete(sok(&a, "PATCH", F("/users/%s", uid), "{\"version\":1,\"role\":\"readonly\"}", 200));
	serr(&a, "PATCH", F("/users/%s", uid), "{\"version\":1,\"role\":\"admin\"}", 409, "conflict");
	g_secrets = NULL; /* the login itself sends the password */
	login_pw("dt-chusers", "198.18.1.26", "nu@dt-chusers.test", "twelve-chars-pw", &nu);
	g_secrets = secrets;
	assert_null(sok(&nu, "POST", "/me/password",
	                "{\"current_password\":\"twelve-chars-pw\",\"new_password\":\"" PW2 "\"}", 204));
	c = changes(&a, F("entity=users&entity_id=%s", qenc(uid)));
	assert_int_equal(cJSON_GetArraySize(c), 3);
	e = cJSON_GetArrayItem(c, 1);
	assert_entry(e, "update", "users", uid, &a);
	assert_change(e, "role", "\"member\"", "\"readonly\"");
	assert_no_change(e, "name");
	assert_no_change(e, "email");
	e = cJSON_GetArrayItem(c, 2);
	assert_entry(e, "update", "users", uid, &nu);
	assert_change(e, "password", "\"[encrypted]\"", "\"[encrypted]\"");
	cJSON_Delete(c);

	/* Settings: entity_id is the org's id. */
	cJSON_Delete(sok(&a, "PATCH", "/settings", "{\"version\":1,\"session_idle_minutes\":45,\"notify_updates\":\"before\"}",
	                 200));
	serr(&a, "PATCH", "/settings", "{\"version\":1,\"session_idle_minutes\":50}", 409, "conflict");
	{
		struct h_resp r;

		sreq(&a, "PATCH", "/settings", "{\"version\":2,\"session_idle_minutes\":0}", &r);
		wfield_only(&r, "session_idle_minutes", "settings 0 minutes");
	}
	c = changes(&a, "entity=settings");
	assert_int_equal(cJSON_GetArraySize(c), 1);
	e = cJSON_GetArrayItem(c, 0);
	assert_entry(e, "update", "settings", org_id, &a);
	assert_change(e, "session_idle_minutes", "30", "45");
	assert_change(e, "notify_updates", "\"after\"", "\"before\"");
	assert_no_change(e, "require_mfa");
	cJSON_Delete(c);
	assert_int_equal(changes_n(&a, F("entity_id=%s", qenc(org_id))), 1);
	/* -bad: the new user (readonly now) may not read it. */
	serr(&nu, "GET", "/changes", NULL, 403, "forbidden");
}

static void
change_log_filters_pages_and_exports_ndjson(void **state)
{
	static const char *const bad[] = {
	    "/changes?since=yesterday",        "/changes?since=2026-01-01",   "/changes?since=2026-13-01T00%3A00%3A00Z",
	    "/changes?limit=0",                "/changes?limit=201",          "/changes?limit=x",
	    "/changes?cursor=garbage%21",      "/changes?colour=blue",        "/changes?action=create",
	    "/changes?since=2026-01-01T00%3A00%3A00%2B01%3A00",
	};
	char ids[6][ID_LEN], since[32], ct[128], cursor[CURSOR_LEN];
	struct sess a, m;
	struct h_resp r;
	cJSON *all, *j, *line;
	const cJSON *e;
	long long prev;
	int i, n, total;
	size_t k;
	char *p, *nl;

	(void)state;
	org_with("dt-chexp", "198.18.1.27", &a, &m, NULL);
	for (i = 0; i < 3; i++)
		create(&m, "clients", F("{\"family_name\":\"Early\",\"given_name\":\"E%d\"}", i), ids[i]);
	/* A second boundary: entries from `since` on are later than every one so far. */
	fmt_time(time(NULL) + 1, since, sizeof(since));
	{
		char now[32];

		for (;;) {
			fmt_time(time(NULL), now, sizeof(now));
			if (strcmp(now, since) >= 0)
				break;
			h_sleep_ms(50);
		}
	}
	for (i = 3; i < 6; i++)
		create(&m, "clients", F("{\"family_name\":\"Late\",\"given_name\":\"L%d\"}", i), ids[i]);
	cJSON_Delete(sok(&m, "PATCH", F("/clients/%s", ids[0]), "{\"version\":1,\"phone\":\"1\"}", 200));

	all = changes(&a, "");
	total = cJSON_GetArraySize(all);
	assert_true(total >= 7);
	/* Oldest first, seq strictly increasing. */
	prev = 0;
	cJSON_ArrayForEach(e, all)
	{
		assert_true(jint(e, "seq") > prev);
		prev = jint(e, "seq");
	}
	/* since: the four later writes only. */
	j = changes(&a, F("since=%s", qenc(since)));
	if (cJSON_GetArraySize(j) != 4)
		fail_msg("since=%s: %d entries, expected the 4 written at or after it (the last was at %s)", since,
		         cJSON_GetArraySize(j), jstr(cJSON_GetArrayItem(all, total - 1), "at"));
	assert_string_equal(jstr(cJSON_GetArrayItem(j, 0), "entity_id"), ids[3]);
	assert_string_equal(jstr(cJSON_GetArrayItem(j, 3), "entity_id"), ids[0]);
	cJSON_Delete(j);
	assert_int_equal(changes_n(&a, F("since=%s&entity=clients", qenc(since))), 4);
	assert_int_equal(changes_n(&a, F("since=%s&entity_id=%s", qenc(since), qenc(ids[0]))), 1);
	assert_int_equal(changes_n(&a, "since=2000-01-01T00%3A00%3A00Z"), total);
	assert_int_equal(changes_n(&a, "since=2999-01-01T00%3A00%3A00Z"), 0);
	assert_int_equal(changes_n(&a, F("entity_id=%s", qenc(ids[0]))), 2);
	assert_int_equal(changes_n(&a, "entity=events"), 0);
	/* Pages of 2: the same entries in the same order. */
	n = 0;
	cursor[0] = '\0';
	for (;;) {
		const cJSON *nc;

		j = sok(&a, "GET",
		        cursor[0] ? F("/changes?limit=2&cursor=%s", qenc(cursor)) : "/changes?limit=2", NULL, 200);
		assert_true(cJSON_GetArraySize(jarr(j, "items")) <= 2);
		cJSON_ArrayForEach(e, jarr(j, "items"))
		{
			assert_true(n < total);
			assert_int_equal(jint(e, "seq"), jint(cJSON_GetArrayItem(all, n), "seq"));
			n++;
		}
		nc = cJSON_GetObjectItemCaseSensitive(j, "next_cursor");
		if (cJSON_IsNull(nc)) {
			cJSON_Delete(j);
			break;
		}
		copy(cursor, sizeof(cursor), jstr(j, "next_cursor"));
		cJSON_Delete(j);
	}
	assert_int_equal(n, total);
	/* -bad: malformed filters and parameters. */
	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		serr(&a, "GET", bad[k], NULL, 400, "bad_request");

	/* The export: every entry, oldest first, one JSON object per line. */
	sreq(&a, "GET", "/changes/export", NULL, &r);
	want(&r, 200);
	assert_int_equal(h_header(&r, "Content-Type", ct, sizeof(ct)), 0);
	assert_int_equal(strncmp(ct, "application/x-ndjson", 20), 0);
	n = 0;
	for (p = r.body; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			fail_msg("export: last line without a newline: %.200s", p);
		*nl = '\0';
		if (*p == '\0')
			fail_msg("export: empty line after %d entries", n);
		line = cJSON_Parse(p);
		if (line == NULL || !cJSON_IsObject(line))
			fail_msg("export line %d is not a JSON object: %.200s", n, p);
		assert_true(n < total);
		assert_true(cJSON_Compare(line, cJSON_GetArrayItem(all, n), 1));
		cJSON_Delete(line);
		n++;
	}
	assert_int_equal(n, total);
	h_resp_free(&r);
	cJSON_Delete(all);
	/* -bad: not for members, and no writes on it. */
	serr(&m, "GET", "/changes/export", NULL, 403, "forbidden");
	sreq(&a, "POST", "/changes", "{}", &r);
	assert_true(r.status == 405 || r.status == 404);
	h_resp_free(&r);
	sreq(&a, "DELETE", "/changes", NULL, &r);
	assert_true(r.status == 405 || r.status == 404);
	h_resp_free(&r);
}

static void
change_log_is_append_only_by_trigger(void **state)
{
	static const char *const refused[] = {
	    "UPDATE change_log SET action = 'create'",
	    "UPDATE change_log SET changes = '{}' WHERE seq = (SELECT max(seq) FROM change_log)",
	    "UPDATE change_log SET actor_email = 'someone@else.test'",
	    "DELETE FROM change_log",
	    "DELETE FROM change_log WHERE seq = (SELECT min(seq) FROM change_log)",
	};
	char id[ID_LEN], err[512], before[64];
	struct sess a;
	sqlite3 *db;
	long long n;
	size_t i;
	int rc;

	(void)state;
	org_with("dt-append", "198.18.1.28", &a, NULL, NULL);
	create(&a, "clients", "{\"family_name\":\"Append\",\"given_name\":\"Only\"}", id);
	cJSON_Delete(sok(&a, "PATCH", F("/clients/%s", id), "{\"version\":1,\"phone\":\"1\"}", 200));
	assert_null(sok(&a, "DELETE", F("/clients/%s", id), NULL, 204));
	db = org_db("dt-append");
	n = q_ll_bind(db, "SELECT count(*) FROM change_log", NULL, NULL);
	assert_true(n >= 3);
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM change_log WHERE entity_id = ?1", id, NULL), 3);
	snprintf(before, sizeof(before), "%lld", q_ll_bind(db, "SELECT sum(length(changes)) FROM change_log", NULL, NULL));
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		rc = q_exec(db, refused[i], NULL, NULL, err, sizeof(err));
		if (rc == SQLITE_DONE)
			fail_msg("%s went through", refused[i]);
		if (strstr(err, "append-only") == NULL)
			fail_msg("%s: refused, but not by the append-only trigger: %s", refused[i], err);
	}
	/* Also inside a transaction, and with the triggers' table still there. */
	assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	assert_int_not_equal(q_exec(db, "DELETE FROM change_log", NULL, NULL, err, sizeof(err)), SQLITE_DONE);
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM change_log", NULL, NULL), n);
	assert_int_equal(q_ll_bind(db, "SELECT count(*) FROM change_log WHERE action = 'create'", NULL, NULL) > 0, 1);
	{
		char after[64];

		snprintf(after, sizeof(after), "%lld", q_ll_bind(db, "SELECT sum(length(changes)) FROM change_log", NULL, NULL));
		assert_string_equal(before, after);
	}
	assert_true(q_ll_bind(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'change_log'",
	                      NULL, NULL) >= 2);
	/* The columns of the decision, with the actor. */
	assert_int_equal(q_ll_bind(db,
	                           "SELECT count(*) FROM change_log WHERE entity_id = ?1 AND entity = 'clients' AND "
	                           "actor_kind = 'user' AND actor_id = ?2 AND at IS NOT NULL AND changes IS NOT NULL",
	                           id, a.user_id),
	                 3);
	idb_db_close(db);
	/* The API still reads it all. */
	assert_int_equal(changes_n(&a, F("entity_id=%s", qenc(id))), 3);
}

/*
 * A PATCH in a child while this process holds the org's write queue (the
 * flock the workers take), as a process outside the pool would: the
 * worker checks and plans it in a read snapshot, then waits for the queue
 * with its plan pending. The child's exit status says whether the answer
 * had the status wanted (and, for 409/503, the error code).
 */
static pid_t
patch_in_child(const struct sess *s, const char *sub, const char *body, long want, const char *code)
{
	pid_t pid;

	fflush(NULL);
	if ((pid = fork()) == 0) {
		struct h_resp r;
		int ok;

		sreq(s, "PATCH", sub, body, &r);
		ok = r.status == want && (code == NULL || (r.body != NULL && strstr(r.body, code) != NULL));
		h_resp_free(&r);
		_exit(ok ? 0 : 1);
	}
	assert_true(pid > 0);
	return pid;
}

/*
 * The PATCH while this process holds the org's queue (fd): the worker plans
 * it and waits; sql, if any, changes the database under SQLite's own lock
 * meanwhile; then the queue goes and the answer must be want (with code).
 */
static void
patch_held(int fd, const char *slug, const struct sess *s, const char *sub, const char *body, long want,
           const char *code, const char *sql)
{
	int status;
	pid_t pid;

	assert_int_equal(flock(fd, LOCK_EX), 0);
	pid = patch_in_child(s, sub, body, want, code);
	usleep(300 * 1000);
	if (sql != NULL)
		org_exec_ok(slug, sql);
	assert_int_equal(flock(fd, LOCK_UN), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* The outcome and detail of the last record.update entry for target, as "outcome/detail". */
static const char *
last_entry(const char *slug, const char *target)
{
	static char out[128];
	char sql[512];
	long long ok, conflict, unavailable;

	snprintf(sql, sizeof(sql), "SELECT max(seq) FROM access_log WHERE action = 'record.update' AND target = '%s'",
	         target);
	ok = org_count(slug, F("SELECT count(*) FROM access_log WHERE seq = (%s) AND outcome = 'ok'", sql));
	conflict = org_count(slug, F("SELECT count(*) FROM access_log WHERE seq = (%s) AND outcome = 'failed' AND "
	                             "detail = 'conflict'", sql));
	unavailable = org_count(slug, F("SELECT count(*) FROM access_log WHERE seq = (%s) AND outcome = 'failed' AND "
	                                "detail = 'unavailable'", sql));
	snprintf(out, sizeof(out), "%s", ok ? "ok" : conflict ? "failed/conflict" : unavailable ? "failed/unavailable" : "?");
	return out;
}

/*
 * A user's PATCH is checked and worked out in a read snapshot, and written
 * later by the group commit, conditioned on what it read. Whatever changes
 * in between (the record, a record it refers to, the field key) makes it
 * write nothing: 409 (or 503 for the key), with a failed entry. Held here by
 * taking the org's write queue, changing the database under SQLite's own
 * lock, then letting the queue go.
 */
static void
a_planned_patch_writes_nothing_if_its_snapshot_changed_before_the_commit(void **state)
{
	static const char *slug = "dt-planned";
	char cid[ID_LEN], cid2[ID_LEN], kid[ID_LEN], path[IDB_PATH_MAX];
	struct idb_org_keys k;
	struct sess a, m;
	long long chg;
	int fd;
	cJSON *j;

	(void)state;
	org_with(slug, "198.18.1.40", &a, &m, NULL);
	create(&a, "clients", "{\"family_name\":\"Plan\",\"given_name\":\"Ahead\"}", cid);
	create(&a, "clients", "{\"family_name\":\"Other\",\"given_name\":\"Client\"}", cid2);
	create(&a, "cases", F("{\"client_id\":\"%s\",\"case_type\":\"I-130\",\"title\":\"Planned\"}", cid), kid);
	org_keys(slug, &k, path);
	idb_org_keys_wipe(&k);
	assert_true((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);

	/* Held: the PATCH waits with its plan; meanwhile the record moves on to version 2. */
	chg = changes_n(&a, F("entity_id=%s", qenc(cid)));
	patch_held(fd, slug, &m, F("/clients/%s", cid), "{\"version\":1,\"given_name\":\"Planned\"}", 409, "conflict",
	           F("UPDATE clients SET version = 2, given_name = 'Elsewhere' WHERE id = '%s'", cid));
	j = get(&a, "clients", cid);
	assert_int_equal(jint(j, "version"), 2);
	assert_string_equal(jstr(j, "given_name"), "Elsewhere");
	cJSON_Delete(j);
	assert_int_equal(changes_n(&a, F("entity_id=%s", qenc(cid))), chg);
	assert_string_equal(last_entry(slug, F("clients/%s", cid)), "failed/conflict");

	/* Without the change in between, the same wait ends in 200 and the write. */
	patch_held(fd, slug, &m, F("/clients/%s", cid), "{\"version\":2,\"given_name\":\"Planned\"}", 200, NULL,
	           NULL);
	j = get(&a, "clients", cid);
	assert_int_equal(jint(j, "version"), 3);
	assert_string_equal(jstr(j, "given_name"), "Planned");
	assert_string_equal(jstr(j, "updated_by"), m.user_id);
	cJSON_Delete(j);
	assert_int_equal(changes_n(&a, F("entity_id=%s", qenc(cid))), chg + 1);
	assert_string_equal(last_entry(slug, F("clients/%s", cid)), "ok");

	/* -bad: the client a case is moved to is deleted in between: 409, the case stays. */
	patch_held(fd, slug, &m, F("/cases/%s", kid), F("{\"version\":1,\"client_id\":\"%s\"}", cid2), 409, "conflict",
	           F("UPDATE clients SET deleted_at = '2026-11-27T09:30:00.000Z' WHERE id = '%s'", cid2));
	j = get(&a, "cases", kid);
	assert_int_equal(jint(j, "version"), 1);
	assert_string_equal(jstr(j, "client_id"), cid);
	cJSON_Delete(j);
	assert_string_equal(last_entry(slug, F("cases/%s", kid)), "failed/conflict");

	/* -bad: the field key moves on in between (as a rotation would): 503, nothing written. */
	patch_held(fd, slug, &m, F("/clients/%s", cid), "{\"version\":3,\"a_number\":\"A123456789\"}", 503, "unavailable",
	           "UPDATE key_state SET version = version + 100 WHERE purpose = 'field'");
	org_exec_ok(slug, "UPDATE key_state SET version = version - 100 WHERE purpose = 'field'");
	close(fd);
	assert_string_equal(last_entry(slug, F("clients/%s", cid)), "failed/unavailable");
	assert_int_equal(org_count(slug, F("SELECT count(*) FROM clients WHERE id = '%s' AND version = 3 AND "
	                                   "a_number IS NULL", cid)),
	                 1);
	/* The org serves again with its key back, and the log's chain holds. */
	j = sok(&a, "PATCH", F("/clients/%s", cid), "{\"version\":3,\"a_number\":\"A123456789\"}", 200);
	assert_int_equal(jint(j, "version"), 4);
	cJSON_Delete(j);
	reveal(&a, "clients", cid, "a_number", "A123456789");
	j = sok(&a, "GET", "/access-log/verify", NULL, 200);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
	cJSON_Delete(j);
}

/* Renames a database file with its -wal and -shm (those that exist). */
static void
move3(const char *from, const char *to)
{
	static const char *const sfx[] = {"", "-wal", "-shm"};
	char a[IDB_PATH_MAX + 16], b[IDB_PATH_MAX + 16];
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(a, sizeof(a), "%s%s", from, sfx[i]);
		snprintf(b, sizeof(b), "%s%s", to, sfx[i]);
		if (rename(a, b) != 0)
			assert_true(i > 0 && errno == ENOENT);
	}
}

/*
 * An org database that cannot be opened just now (here a file of the wrong
 * key put in its place; in life a key rotation rewriting it, or a lock held
 * past the timeout) answers 503, not 500, and serves again once it opens.
 */
static void
an_org_database_that_does_not_open_answers_503_until_it_does(void **state)
{
	static const char *slug = "dt-noopen";
	char cid[ID_LEN], path[IDB_PATH_MAX], aside[IDB_PATH_MAX + 8], other[IDB_PATH_MAX + 8];
	unsigned char key[IDB_KEY_LEN];
	struct idb_org_keys k;
	struct sess a, m;
	sqlite3 *db;

	(void)state;
	org_with(slug, "198.18.1.42", &a, &m, NULL);
	create(&a, "clients", "{\"family_name\":\"Closed\",\"given_name\":\"Door\"}", cid);
	org_keys(slug, &k, path);
	idb_org_keys_wipe(&k);
	snprintf(aside, sizeof(aside), "%s.aside", path);
	snprintf(other, sizeof(other), "%s.other", path);
	randombytes_buf(key, sizeof(key));
	assert_int_equal(idb_db_open(other, key, IDB_DB_CREATE, &db), IDB_OK);
	assert_int_equal(idb_db_exec(db, "CREATE TABLE t (x)"), IDB_OK);
	idb_db_close(db);
	/* The database goes aside with its -wal and -shm, as operations.md says files must move. */
	move3(path, aside);
	assert_int_equal(rename(other, path), 0);
	serr(&a, "GET", F("/clients/%s", cid), NULL, 503, "unavailable");
	serr(&m, "PATCH", F("/clients/%s", cid), "{\"version\":1,\"given_name\":\"Open\"}", 503, "unavailable");
	unlink(path);
	unlink(F("%s-wal", path));
	unlink(F("%s-shm", path));
	move3(aside, path);
	cJSON_Delete(sok(&a, "GET", F("/clients/%s", cid), NULL, 200));
	cJSON_Delete(sok(&m, "PATCH", F("/clients/%s", cid), "{\"version\":1,\"given_name\":\"Open\"}", 200));
}

/* A PATCH whose plan is bigger than a slot (a long note) is written in a transaction of its own. */
static void
a_patch_too_big_for_a_slot_goes_alone(void **state)
{
	char cid[ID_LEN], nid[ID_LEN], *body, *text;
	struct sess a, m;
	size_t n = 40000;
	cJSON *j;

	(void)state;
	org_with("dt-bigplan", "198.18.1.41", &a, &m, NULL);
	create(&a, "clients", "{\"family_name\":\"Long\",\"given_name\":\"Note\"}", cid);
	create(&a, "notes", F("{\"client_id\":\"%s\",\"body\":\"short\"}", cid), nid);
	assert_non_null(text = malloc(n + 1));
	memset(text, 'x', n);
	text[n] = '\0';
	assert_non_null(body = malloc(n + 64));
	snprintf(body, n + 64, "{\"version\":1,\"body\":\"%s\"}", text);
	j = sok(&m, "PATCH", F("/notes/%s", nid), body, 200);
	assert_int_equal(jint(j, "version"), 2);
	assert_int_equal((long long)strlen(jstr(j, "body")), (long long)n);
	cJSON_Delete(j);
	j = get(&a, "notes", nid);
	assert_string_equal(jstr(j, "body"), text);
	cJSON_Delete(j);
	assert_int_equal(changes_n(&a, F("entity_id=%s", qenc(nid))), 2);
	assert_string_equal(last_entry(a.slug, F("notes/%s", nid)), "ok");
	free(body);
	free(text);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, NULL, reset)
	const struct CMUnitTest tests[] = {
	    T(clients_round_trip_every_field_with_metadata),
	    T(every_resource_is_created_read_patched_and_soft_deleted),
	    T(clients_bad_values_are_422_per_field_and_write_nothing),
	    T(cases_bad_values_are_422_per_field_and_write_nothing),
	    T(events_bad_values_are_422_per_field_and_defaults_apply),
	    T(notes_bad_values_are_422_per_field_and_need_a_client_or_case),
	    T(credentials_bad_values_are_422_per_field_and_write_nothing),
	    T(several_bad_fields_give_one_message_each_and_bad_bodies_are_400),
	    T(patch_with_a_stale_version_is_409_and_writes_nothing),
	    T(concurrent_patches_of_one_record_never_both_succeed),
	    T(every_worker_reads_each_change_at_once),
	    T(a_planned_patch_writes_nothing_if_its_snapshot_changed_before_the_commit),
	    T(a_patch_too_big_for_a_slot_goes_alone),
	    T(an_org_database_that_does_not_open_answers_503_until_it_does),
	    T(lists_page_with_limit_and_cursor_and_refuse_bad_parameters),
	    T(pagination_is_stable_under_concurrent_inserts),
	    T(list_filters_select_by_reference_status_and_time),
	    T(search_matches_word_prefixes_case_insensitively_and_a_number_last_four),
	    T(sql_injection_strings_are_stored_verbatim_and_never_run),
	    T(sensitive_values_appear_in_no_response_but_a_reveal),
	    T(reveal_bad_field_role_or_id_is_refused),
	    T(stored_sensitive_fields_are_ciphertext_under_the_field_key),
	    T(a_ciphertext_moved_to_another_row_or_column_does_not_decrypt),
	    T(readonly_reads_everything_and_writes_nothing),
	    T(members_write_and_reveal_but_cannot_read_the_change_log),
	    T(another_orgs_ids_are_404_and_unusable_as_references),
	    T(data_routes_need_a_session_and_the_csrf_token),
	    T(deleted_records_vanish_from_reads_but_stay_in_storage_and_the_log),
	    T(change_log_records_each_write_with_its_field_diffs),
	    T(change_log_records_user_and_settings_changes),
	    T(change_log_filters_pages_and_exports_ndjson),
	    T(change_log_is_append_only_by_trigger),
	};
#undef T

	/* IDB_TEST_FILTER=<glob> runs only the matching tests, IDB_TEST_SKIP=<glob> all but those. */
	if (getenv("IDB_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("IDB_TEST_FILTER"));
	if (getenv("IDB_TEST_SKIP") != NULL)
		cmocka_set_skip_filter(getenv("IDB_TEST_SKIP"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
