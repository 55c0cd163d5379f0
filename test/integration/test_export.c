/* SPDX-License-Identifier: ISC */
/*
 * The organization export, end to end through nginx and immidb-admin:
 * POST /api/v1/orgs/{org}/export and `immidb-admin export` give the same
 * document immidb-export-v1 (docs/export-formats.md): every array, counts
 * equal to the tables, records as the API shows them with the sensitive
 * fields decrypted, deleted records with deleted_at, the change log as
 * GET .../changes shows it, and no password hash, TOTP secret, session or
 * CSRF token or recovery code anywhere in its bytes. The request is
 * re-authenticated by the admin's own password under the login throttle;
 * the guard's refusals (CSRF, roles, another org, a sysadmin) and bad
 * bodies change nothing; each export is one org.export entry and one
 * "export" notification in the same transaction, and neither can fail
 * alone (503, exit 1, no file). A large org (100 000 clients) exports too.
 *
 * As in test_audit.c, the server trusts loopback as a proxy and each test
 * speaks for its own client addresses (198.18.50.N) through
 * X-Forwarded-For, in its own organization made with the real immidb-admin.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
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

#include "client.h"
#include "core/util.h"
#include "crypto/field.h"
#include "crypto/totp.h"
#include "store/db.h"
#include "store/registry.h"

#define WORKERS 2
#define SA_NET "198.18.59.0/24"
#define SA_IP "198.18.59.7"
#define SA_PW "sysadmin passphrase for the export"
#define BIG 100000
#define OUT_MAX (256u * 1024 * 1024)

/* Client A: every field, with characters JSON must escape and text outside ASCII. */
#define CLIENT_FULL                                                                                              \
	"{\"family_name\":\"García Núñez\",\"given_name\":\"Ana \\\"Ani\\\"\",\"other_names\":\"Back\\\\slash\","  \
	"\"date_of_birth\":\"1985-03-14\",\"country_of_birth\":\"México\",\"citizenship\":\"Mexican\","            \
	"\"email\":\"ana@example.test\",\"phone\":\"+1 555 0100\",\"address\":\"1 Main St\\nApt 2\","             \
	"\"a_number\":\"A123456789\",\"passport_number\":\"X1234567\",\"ssn\":\"123-45-6789\","                    \
	"\"notes\":\"line one\\nline two\\ttabbed\"}"
#define CRED_PW "pässwörd \\\"quoted\\\" 123"

struct h_env env;

/* --- setup ---------------------------------------------------------- */

static int
setup(void **state)
{
	const char *line = "sysadmin_ip_allowlist = " SA_NET "\n";

	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (sodium_init() < 0)
		return -1;
	if (h_start_with(&env, WORKERS, "127.0.0.1") != 0)
		return -1;
	/* Sysadmin addresses for the one test that needs a sysadmin: appended, then a restart. */
	return h_conf_append(&env, line);
}

static int
teardown(void **state)
{
	int rc;

	(void)state;
	rc = h_stop(&env);
	curl_global_cleanup();
	return rc;
}

/* --- helpers -------------------------------------------------------- */

static const char *
pw_body(const char *pw)
{
	return F("{\"password\":\"%s\"}", pw);
}

static const cJSON *
by_id(const cJSON *arr, const char *id)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, arr) if (strcmp(jstr(it, "id"), id) == 0) return it;
	fail_msg("no item with id %s", id);
	return NULL;
}

/* The top level: exactly the ten members, the org with its settings, and every array. */
static void
check_shape(const cJSON *doc, const char *slug)
{
	static const char *const arrays[] = {"users", "clients", "cases", "events", "notes", "credentials", "changes"};
	const cJSON *org;
	size_t i;

	assert_string_equal(jstr(doc, "format"), "immidb-export-v1");
	assert_int_equal(cJSON_GetArraySize(doc), 10);
	org = jobj(doc, "org");
	assert_int_equal(cJSON_GetArraySize(org), 5);
	assert_true(idb_id_valid(jstr(org, "id"), 'o'));
	assert_string_equal(jstr(org, "slug"), slug);
	assert_string_equal(jstr(org, "name"), F("%s LLP", slug));
	assert_int_equal(strlen(jstr(org, "created_at")), 24);
	assert_string_equal(jstr(jobj(org, "settings"), "name"), F("%s LLP", slug));
	assert_true(jint(jobj(org, "settings"), "version") >= 1);
	assert_non_null(jarr(jobj(org, "settings"), "ip_allowlist"));
	assert_int_equal(strlen(jstr(doc, "exported_at")), 24);
	for (i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++)
		assert_non_null(jarr(doc, arrays[i]));
}

/* POST .../export with pw: 200, the headers of api.md, the parsed document; the raw bytes into raw (may be NULL). */
static cJSON *
export_ok(const struct sess *s, const char *pw, char **raw)
{
	char ct[128], cd[256], want_cd[256];
	struct h_resp r;
	const char *at;
	cJSON *doc;

	sreq(s, "POST", "/export", pw_body(pw), &r);
	want(&r, 200);
	assert_int_equal(h_header(&r, "Content-Type", ct, sizeof(ct)), 0);
	if (strncmp(ct, "application/json", 16) != 0)
		fail_msg("Content-Type %s", ct);
	assert_int_equal(strlen(r.body), r.len); /* no NUL bytes */
	doc = jparse_text(r.body, r.status);
	check_shape(doc, s->slug);
	at = jstr(doc, "exported_at");
	snprintf(want_cd, sizeof(want_cd), "attachment; filename=\"immidb-export-%s-%.4s%.2s%.2s.json\"", s->slug, at,
	         at + 5, at + 8);
	assert_int_equal(h_header(&r, "Content-Disposition", cd, sizeof(cd)), 0);
	assert_string_equal(cd, want_cd);
	if (raw != NULL) {
		*raw = r.body;
		r.body = NULL;
	}
	h_resp_free(&r);
	return doc;
}

/* The access-log entries of one action, newest first (the request's own record.list entry comes later). */
static cJSON *
log_of(const struct sess *s, const char *action)
{
	return sok(s, "GET", F("/access-log?action=%s&limit=200", action), NULL, 200);
}

static int
count_outcome(const cJSON *list, const char *outcome)
{
	const cJSON *it;
	int n = 0;

	cJSON_ArrayForEach(it, jarr(list, "items")) n += strcmp(jstr(it, "outcome"), outcome) == 0;
	return n;
}

/* Notifications of a kind in GET .../notifications. */
static int
notices(const struct sess *s, const char *kind)
{
	cJSON *j = sok(s, "GET", "/notifications?limit=200", NULL, 200);
	const cJSON *it;
	int n = 0;

	cJSON_ArrayForEach(it, jarr(j, "items")) n += strcmp(jstr(it, "kind"), kind) == 0;
	cJSON_Delete(j);
	return n;
}

/* A POST of id under sub as s, answering 201: its id into id. */
static void
made(const struct sess *s, const char *sub, const char *body, char *id, size_t len)
{
	cJSON *j = sok(s, "POST", sub, body, 201);

	copy(id, len, jstr(j, "id"));
	cJSON_Delete(j);
}

/* Every member of sent is in rec with the same value. */
static void
has_all(const cJSON *rec, const char *sent_text)
{
	cJSON *sent = cJSON_Parse(sent_text);
	const cJSON *f, *v;

	assert_non_null(sent);
	cJSON_ArrayForEach(f, sent)
	{
		v = cJSON_GetObjectItemCaseSensitive(rec, f->string);
		if (v == NULL || !cJSON_Compare(v, f, 1))
			fail_msg("field %s differs from what was sent", f->string);
	}
	cJSON_Delete(sent);
}

/*
 * rec is the API's record (GET .../{id}) plus deleted_at, sensitive fields
 * as strings (or null) in place of {"set": bool}.
 */
static void
as_the_api_shows(const struct sess *s, const char *res, const cJSON *rec)
{
	cJSON *api = sok(s, "GET", F("/%s/%s", res, jstr(rec, "id")), NULL, 200);
	const cJSON *f, *v;

	assert_int_equal(cJSON_GetArraySize(rec), cJSON_GetArraySize(api) + 1);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rec, "deleted_at")));
	cJSON_ArrayForEach(f, api)
	{
		v = cJSON_GetObjectItemCaseSensitive(rec, f->string);
		if (v == NULL)
			fail_msg("%s: the export lacks %s", res, f->string);
		if (cJSON_IsObject(f) && cJSON_GetObjectItemCaseSensitive(f, "set") != NULL)
			assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "set")) ? cJSON_IsString(v)
			                                                                         : cJSON_IsNull(v));
		else if (!cJSON_Compare(v, f, 1))
			fail_msg("%s: %s differs from the API's", res, f->string);
	}
	cJSON_Delete(api);
}

/* Each array has as many items as its table has rows (fixed statements: no SQL is formatted). */
static void
counts_match(const cJSON *doc, const char *slug)
{
	static const struct {
		const char *member, *sql;
	} t[] = {
	    {"users", "SELECT count(*) FROM users"},
	    {"clients", "SELECT count(*) FROM clients"},
	    {"cases", "SELECT count(*) FROM cases"},
	    {"events", "SELECT count(*) FROM events"},
	    {"notes", "SELECT count(*) FROM notes"},
	    {"credentials", "SELECT count(*) FROM credentials"},
	    {"changes", "SELECT count(*) FROM change_log"},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_int_equal(cJSON_GetArraySize(jarr(doc, t[i].member)), org_count(slug, t[i].sql));
}

/* The code of the current TOTP step for a base32 secret. */
static void
totp_now(const char *b32, char code[8])
{
	unsigned char k[64];
	size_t n;

	assert_int_equal(idb_base32_decode(b32, k, sizeof(k), &n), 0);
	snprintf(code, 8, "%06u", (unsigned)idb_totp_code(k, n, idb_totp_step(time(NULL))));
}

static char *
bigbuf(void)
{
	char *p = malloc(OUT_MAX);

	assert_non_null(p);
	p[0] = '\0';
	return p;
}

/* immidb-admin export --org slug [--out path]: the exit status; stdout into out, stderr into err. */
static int
cli_export(const char *slug, const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	if (path == NULL)
		return h_admin(&env, NULL, out, outlen, err, errlen, "export", "--org", slug, NULL);
	return h_admin(&env, NULL, out, outlen, err, errlen, "export", "--org", slug, "--out", path, NULL);
}

/* Two documents are the same export: everything but exported_at is equal. */
static void
same_document(const cJSON *a, const cJSON *b)
{
	static const char *const m[] = {"format", "org", "users", "clients", "cases", "events", "notes", "credentials",
	                                "changes"};
	size_t i;

	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(a, m[i]), cJSON_GetObjectItemCaseSensitive(b, m[i]), 1))
			fail_msg("the two exports differ in %s", m[i]);
}

/* --- the document --------------------------------------------------- */

/*
 * One record of each kind linked together, a minimal client and a deleted
 * one: every array is there with as many items as the tables have rows,
 * each record is the API's with deleted_at, and the sensitive fields are
 * the values sent, in clear. The change log is GET .../changes's.
 */
static void
export_holds_every_record_with_sensitive_fields_decrypted(void **state)
{
	char a[64], b[64], c[64], k[64], ev[64], nt[64], cr[64], mid[64];
	char case_body[1024], event_body[1024], note_body[1024], cred_body[1024];
	const cJSON *rec, *it;
	struct sess s;
	cJSON *doc, *ch;

	(void)state;
	org_with_admin("ex-shape", "198.18.50.1", &s);
	user_new("ex-shape", "member@ex-shape.test", "member", mid, sizeof(mid));
	client_new(&s, CLIENT_FULL, a, sizeof(a));
	client_new(&s, "{\"family_name\":\"Lee\",\"given_name\":\"Min\"}", b, sizeof(b));
	client_new(&s, "{\"family_name\":\"Gone\",\"given_name\":\"Soon\",\"ssn\":\"078-05-1120\"}", c, sizeof(c));
	cJSON_Delete(sok(&s, "DELETE", F("/clients/%s", c), NULL, 204));
	/* The bodies are kept (F's buffers are reused by every request). */
	copy(case_body, sizeof(case_body),
	     F("{\"client_id\":\"%s\",\"case_type\":\"I-130\",\"title\":\"Spousal petition\",\"status\":\"pending\","
	       "\"receipt_number\":\"IOE0123456789\",\"priority_date\":\"2024-01-02\",\"assigned_user_id\":\"%s\","
	       "\"notes\":\"filed\"}",
	       a, s.user_id));
	made(&s, "/cases", case_body, k, sizeof(k));
	copy(event_body, sizeof(event_body),
	     F("{\"title\":\"Biometrics\",\"kind\":\"biometrics\",\"starts_at\":\"2026-12-01T09:00:00Z\","
	       "\"ends_at\":\"2026-12-01T10:00:00Z\",\"all_day\":false,\"location\":\"ASC Dallas\","
	       "\"case_id\":\"%s\",\"owner_user_id\":\"%s\",\"sync\":false}",
	       k, mid));
	made(&s, "/events", event_body, ev, sizeof(ev));
	copy(note_body, sizeof(note_body),
	     F("{\"body\":\"Called the client.\\nShe will send the passport.\",\"client_id\":\"%s\",\"case_id\":\"%s\"}", a,
	       k));
	made(&s, "/notes", note_body, nt, sizeof(nt));
	copy(cred_body, sizeof(cred_body),
	     F("{\"client_id\":\"%s\",\"label\":\"USCIS online account\",\"url\":\"https://my.uscis.gov/\","
	       "\"username\":\"ana85\",\"password\":\"" CRED_PW "\"}",
	       a));
	made(&s, "/credentials", cred_body, cr, sizeof(cr));

	doc = export_ok(&s, PW, NULL);
	counts_match(doc, "ex-shape");
	assert_int_equal(cJSON_GetArraySize(jarr(doc, "users")), 2);
	assert_int_equal(cJSON_GetArraySize(jarr(doc, "clients")), 3);

	/* Client A: every field as sent, the three sensitive ones in clear. */
	rec = by_id(jarr(doc, "clients"), a);
	has_all(rec, CLIENT_FULL);
	assert_string_equal(jstr(rec, "a_number"), "A123456789");
	assert_string_equal(jstr(rec, "passport_number"), "X1234567");
	assert_string_equal(jstr(rec, "ssn"), "123-45-6789");
	assert_string_equal(jstr(rec, "family_name"), "García Núñez");
	as_the_api_shows(&s, "clients", rec);
	assert_int_equal(cJSON_GetArraySize(rec), 20); /* id, 13 fields, 6 of metadata */
	/* B: unset sensitive fields are null. */
	rec = by_id(jarr(doc, "clients"), b);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rec, "a_number")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rec, "ssn")));
	as_the_api_shows(&s, "clients", rec);
	/* C: deleted, still there with its time and its value. */
	rec = by_id(jarr(doc, "clients"), c);
	assert_int_equal(strlen(jstr(rec, "deleted_at")), 24);
	assert_string_equal(jstr(rec, "ssn"), "078-05-1120");
	assert_int_equal(jint(rec, "version"), 2);
	/* Creation order. */
	assert_string_equal(jstr(cJSON_GetArrayItem(jarr(doc, "clients"), 0), "id"), a);
	assert_string_equal(jstr(cJSON_GetArrayItem(jarr(doc, "clients"), 2), "id"), c);

	/* The case, the event, the note and the credential, linked to A. */
	rec = by_id(jarr(doc, "cases"), k);
	has_all(rec, case_body);
	as_the_api_shows(&s, "cases", rec);
	rec = by_id(jarr(doc, "events"), ev);
	has_all(rec, event_body);
	assert_string_equal(jstr(rec, "sync_status"), "none");
	as_the_api_shows(&s, "events", rec);
	rec = by_id(jarr(doc, "notes"), nt);
	has_all(rec, note_body);
	as_the_api_shows(&s, "notes", rec);
	rec = by_id(jarr(doc, "credentials"), cr);
	has_all(rec, cred_body);
	assert_string_equal(jstr(rec, "password"), "pässwörd \"quoted\" 123");
	assert_string_equal(jstr(rec, "client_id"), a);
	as_the_api_shows(&s, "credentials", rec);

	/* Users as GET .../users shows them. */
	{
		cJSON *u = sok(&s, "GET", "/users", NULL, 200);

		cJSON_ArrayForEach(it, jarr(u, "items"))
		{
			if (!cJSON_Compare(it, by_id(jarr(doc, "users"), jstr(it, "id")), 1))
				fail_msg("user %s differs from GET .../users", jstr(it, "id"));
		}
		cJSON_Delete(u);
	}
	/* The change log as GET .../changes shows it; sensitive values stay "[encrypted]" there. */
	ch = sok(&s, "GET", "/changes?limit=200", NULL, 200);
	assert_true(cJSON_Compare(jarr(ch, "items"), jarr(doc, "changes"), 1));
	cJSON_ArrayForEach(it, jarr(doc, "changes"))
	{
		if (strcmp(jstr(it, "entity_id"), a) == 0 && strcmp(jstr(it, "action"), "create") == 0)
			assert_string_equal(jstr(jobj(jobj(it, "changes"), "a_number"), "to"), "[encrypted]");
	}
	cJSON_Delete(ch);
	cJSON_Delete(doc);
}

/*
 * With TOTP enrolled and two sessions open, none of the secrets of "who gets
 * in" is anywhere in the bytes: no Argon2id hash, no TOTP secret, no
 * session or CSRF token, no recovery code, no column that holds them.
 */
static void
export_never_holds_a_hash_a_totp_secret_a_token_or_a_recovery_code(void **state)
{
	static const char *const names[] = {"password_hash", "totp_secret", "totp_last_step", "csrf_token",
	                                    "token_hash",    "recovery",    "code_hash",      "a_number_last4"};
	char secret[64], cid[64], code[8], *raw;
	struct sess s, m;
	const cJSON *it, *u;
	cJSON *j, *doc;
	size_t i, n;

	(void)state;
	org_with_admin("ex-sec", "198.18.50.2", &s);
	user_new("ex-sec", "m@ex-sec.test", "member", NULL, 0);
	login("ex-sec", "198.18.50.2", "m@ex-sec.test", &m);
	client_new(&s, "{\"family_name\":\"Doe\",\"given_name\":\"J\",\"a_number\":\"A987654321\"}", cid, sizeof(cid));
	j = sok(&s, "POST", "/me/mfa/totp", NULL, 200);
	copy(secret, sizeof(secret), jstr(j, "secret"));
	cJSON_Delete(j);
	totp_now(secret, code);
	j = sok(&s, "POST", "/me/mfa/totp/confirm", F("{\"code\":\"%s\"}", code), 200);

	doc = export_ok(&s, PW, &raw);
	n = strlen(raw);
	assert_false(h_contains(raw, n, "$argon2"));
	assert_false(h_contains(raw, n, secret));
	assert_false(h_contains(raw, n, s.token));
	assert_false(h_contains(raw, n, strchr(s.token, '.') + 1));
	assert_false(h_contains(raw, n, m.token));
	assert_false(h_contains(raw, n, strchr(m.token, '.') + 1));
	assert_false(h_contains(raw, n, s.csrf));
	assert_false(h_contains(raw, n, m.csrf));
	cJSON_ArrayForEach(it, jarr(j, "recovery_codes"))
	{
		assert_false(h_contains(raw, n, it->valuestring));
		assert_false(h_contains(raw, n, F("%.4s%.4s%.4s", it->valuestring, it->valuestring + 5,
		                                  it->valuestring + 10)));
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_false(h_contains(raw, n, names[i]));
	/* The users: the API's eight fields, the admin with TOTP on. */
	cJSON_ArrayForEach(u, jarr(doc, "users"))
	{
		assert_int_equal(cJSON_GetArraySize(u), 8);
		assert_int_equal(jbool(u, "mfa_enabled"), strcmp(jstr(u, "id"), s.user_id) == 0);
	}
	/* The wanted secret is there: the client's A-number. */
	assert_true(h_contains(raw, n, "\"a_number\":\"A987654321\""));
	free(raw);
	cJSON_Delete(j);
	cJSON_Delete(doc);
}

/* --- re-authentication ---------------------------------------------- */

/*
 * A wrong password is 401 invalid_credentials, one failure of the login
 * throttle and no export (the entry says failed, nothing is queued). The
 * fifth locks the email: 429 with Retry-After even with the right password,
 * for the export and for a login, with its session.lockout entry and
 * lockout notification.
 */
static void
wrong_passwords_are_401_counted_and_five_lock_the_email(void **state)
{
	char ra[32];
	struct h_resp r;
	struct sess s;
	cJSON *l;
	int i;

	(void)state;
	org_with_admin("ex-pw", "198.18.50.3", &s);
	serr(&s, "POST", "/export", pw_body("not the password at all"), 401, "invalid_credentials");
	l = log_of(&s, "org.export");
	assert_int_equal(cJSON_GetArraySize(jarr(l, "items")), 1);
	assert_int_equal(count_outcome(l, "ok"), 0);
	assert_string_equal(jstr(cJSON_GetArrayItem(jarr(l, "items"), 0), "outcome"), "failed");
	assert_string_equal(jstr(cJSON_GetArrayItem(jarr(l, "items"), 0), "detail"), "invalid_credentials");
	cJSON_Delete(l);
	assert_int_equal(notices(&s, "export"), 0);
	assert_int_equal(org_count("ex-pw", "SELECT count(*) FROM login_attempts WHERE ok = 0"), 1);

	for (i = 0; i < 4; i++)
		serr(&s, "POST", "/export", pw_body(F("wrong password %d", i)), 401, "invalid_credentials");
	/* Locked: the right password no longer helps, here or at the login. */
	sreq(&s, "POST", "/export", pw_body(PW), &r);
	assert_error(&r, 429, "too_many_requests");
	assert_int_equal(h_header(&r, "Retry-After", ra, sizeof(ra)), 0);
	assert_true(strtol(ra, NULL, 10) > 800 && strtol(ra, NULL, 10) <= 900);
	h_resp_free(&r);
	login_err("ex-pw", "198.18.50.4", "admin@ex-pw.test", PW, 429, "too_many_requests");

	l = log_of(&s, "org.export");
	assert_int_equal(cJSON_GetArraySize(jarr(l, "items")), 6);
	assert_int_equal(count_outcome(l, "failed"), 5);
	assert_int_equal(count_outcome(l, "denied"), 1);
	assert_int_equal(count_outcome(l, "ok"), 0);
	cJSON_Delete(l);
	l = log_of(&s, "session.lockout");
	assert_true(cJSON_GetArraySize(jarr(l, "items")) >= 1);
	cJSON_Delete(l);
	assert_int_equal(org_count("ex-pw", "SELECT count(*) FROM lockouts WHERE kind = 'email'"), 1);
	assert_int_equal(notices(&s, "lockout"), 1);
	assert_int_equal(notices(&s, "export"), 0);
	/* The session itself is not touched. */
	cJSON_Delete(sok(&s, "GET", "/session", NULL, 200));
}

/* Bodies that fail their table are 422 (400 if not a JSON object) and are no attempt at a password. */
static void
bad_bodies_are_422_and_are_not_counted(void **state)
{
	char longpw[2001];
	struct h_resp r;
	struct sess s;
	cJSON *j;

	(void)state;
	org_with_admin("ex-body", "198.18.50.5", &s);
	memset(longpw, 'p', sizeof(longpw) - 1);
	longpw[sizeof(longpw) - 1] = '\0';
	serr(&s, "POST", "/export", "{}", 422, "validation_failed");
	serr(&s, "POST", "/export", "{\"password\":12345678901234}", 422, "validation_failed");
	serr(&s, "POST", "/export", "{\"password\":null}", 422, "validation_failed");
	serr(&s, "POST", "/export", "{\"password\":\"\"}", 422, "validation_failed");
	serr(&s, "POST", "/export", pw_body(longpw), 422, "validation_failed");
	sreq(&s, "POST", "/export", F("{\"password\":\"%s\",\"format\":\"csv\"}", PW), &r);
	assert_error(&r, 422, "validation_failed");
	j = jparse_text(r.body, r.status);
	assert_string_equal(jstr(jobj(jobj(j, "error"), "fields"), "format"), "unknown field");
	cJSON_Delete(j);
	h_resp_free(&r);
	sreq(&s, "POST", "/export", "{\"password\":5}", &r);
	j = jparse_text(r.body, r.status);
	assert_non_null(cJSON_GetObjectItemCaseSensitive(jobj(jobj(j, "error"), "fields"), "password"));
	cJSON_Delete(j);
	h_resp_free(&r);
	serr(&s, "POST", "/export", "not json", 400, "invalid_json");
	serr(&s, "POST", "/export", "[\"" PW "\"]", 400, "invalid_json");
	serr(&s, "POST", "/export", NULL, 400, "invalid_json");
	assert_int_equal(org_count("ex-body", "SELECT count(*) FROM login_attempts WHERE ok = 0"), 0);
	assert_int_equal(notices(&s, "export"), 0);
	cJSON_Delete(export_ok(&s, PW, NULL));
}

/* --- the guard ------------------------------------------------------ */

/*
 * Admin only, CSRF required, another org's session sees no such org, no
 * session is 401, GET is 405: none of them exports or queues anything.
 */
static void
csrf_roles_and_other_orgs_are_refused(void **state)
{
	char allow[64];
	struct sess a, m, ro, other;
	struct h_resp r;
	cJSON *l;

	(void)state;
	org_with_admin("ex-guard", "198.18.50.6", &a);
	org_with_admin("ex-guard-b", "198.18.50.6", &other);
	user_new("ex-guard", "m@ex-guard.test", "member", NULL, 0);
	user_new("ex-guard", "ro@ex-guard.test", "readonly", NULL, 0);
	login("ex-guard", "198.18.50.6", "m@ex-guard.test", &m);
	login("ex-guard", "198.18.50.6", "ro@ex-guard.test", &ro);

	raw("POST", "/api/v1/orgs/ex-guard/export", a.ip, a.token, NULL, pw_body(PW), &r);
	werr(&r, 403, "csrf_failed");
	raw("POST", "/api/v1/orgs/ex-guard/export", a.ip, a.token, m.csrf, pw_body(PW), &r);
	werr(&r, 403, "csrf_failed");
	serr(&m, "POST", "/export", pw_body(PW), 403, "forbidden");
	serr(&ro, "POST", "/export", pw_body(PW), 403, "forbidden");
	raw("POST", "/api/v1/orgs/ex-guard/export", other.ip, other.token, other.csrf, pw_body(PW), &r);
	werr(&r, 404, "not_found");
	raw("POST", "/api/v1/orgs/ex-guard/export", a.ip, NULL, a.csrf, pw_body(PW), &r);
	werr(&r, 401, "unauthenticated");
	raw("POST", "/api/v1/orgs/no-such-org/export", a.ip, a.token, a.csrf, pw_body(PW), &r);
	werr(&r, 404, "not_found");
	sreq(&a, "GET", "/export", NULL, &r);
	assert_error(&r, 405, "method_not_allowed");
	assert_int_equal(h_header(&r, "Allow", allow, sizeof(allow)), 0);
	assert_string_equal(allow, "POST");
	h_resp_free(&r);

	l = log_of(&a, "org.export");
	assert_int_equal(count_outcome(l, "ok"), 0);
	assert_int_equal(count_outcome(l, "denied"), 4); /* two CSRF, member, readonly */
	cJSON_Delete(l);
	assert_int_equal(notices(&a, "export"), 0);
	assert_int_equal(notices(&other, "export"), 0);
	assert_int_equal(org_count("ex-guard", "SELECT count(*) FROM login_attempts WHERE ok = 0"), 0);
}

/* A sysadmin with a grant and a reason is refused (403): their export is the server-side one. */
static void
a_sysadmin_cannot_export_through_the_api(void **state)
{
	char out[4096], err[4096], id[64], b32[64], code[8], tok[256], csrf[128], sc[512];
	char hc[300], hx[200], hr[100], hf[64];
	const char *hdr[5], *p;
	struct h_resp r;
	struct sess a;
	cJSON *j, *l;
	size_t n;

	(void)state;
	org_with_admin("ex-sa", "198.18.50.7", &a);
	assert_int_equal(h_admin(&env, SA_PW "\n", out, sizeof(out), err, sizeof(err), "sysadmin", "add", "--email",
	                         "ops@export.test", "--name", "Ops", "--password-stdin", NULL),
	                 0);
	n = strcspn(out, "\r\n");
	assert_true(n > 0 && n < sizeof(id));
	memcpy(id, out, n);
	id[n] = '\0';
	p = strstr(out, "totp secret: ");
	assert_non_null(p);
	p += strlen("totp secret: ");
	n = strcspn(p, "\r\n");
	assert_int_equal(n, 32);
	memcpy(b32, p, n);
	b32[n] = '\0';
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "sysadmin", "assign", "--email",
	                         "ops@export.test", "--org", "ex-sa", NULL),
	                 0);
	totp_now(b32, code);
	raw("POST", "/api/v1/sysadmin/session", SA_IP, NULL, NULL,
	    F("{\"email\":\"ops@export.test\",\"password\":\"%s\",\"code\":\"%s\"}", SA_PW, code), &r);
	want(&r, 200);
	assert_int_equal(h_header(&r, "Set-Cookie", sc, sizeof(sc)), 0);
	assert_int_equal(strncmp(sc, "immidb_sysadmin=", 16), 0);
	n = strcspn(sc + 16, ";");
	assert_true(n < sizeof(tok));
	memcpy(tok, sc + 16, n);
	tok[n] = '\0';
	j = jparse_text(r.body, r.status);
	copy(csrf, sizeof(csrf), jstr(j, "csrf_token"));
	cJSON_Delete(j);
	h_resp_free(&r);

	snprintf(hc, sizeof(hc), "Cookie: immidb_sysadmin=%s", tok);
	snprintf(hx, sizeof(hx), "X-CSRF-Token: %s", csrf);
	snprintf(hr, sizeof(hr), "X-Access-Reason: ticket 4711, data request");
	snprintf(hf, sizeof(hf), "X-Forwarded-For: %s", SA_IP);
	hdr[0] = hc;
	hdr[1] = hx;
	hdr[2] = hr;
	hdr[3] = hf;
	hdr[4] = NULL;
	assert_int_equal(h_http(&env, "POST", "/api/v1/orgs/ex-sa/export", hdr, pw_body(SA_PW), strlen(pw_body(SA_PW)),
	                        &r),
	                 0);
	werr(&r, 403, "forbidden");
	l = log_of(&a, "sysadmin.access");
	{
		const cJSON *it;
		int seen = 0;

		cJSON_ArrayForEach(it, jarr(l, "items")) if (strcmp(jstr(it, "detail"), "org.export forbidden") == 0)
		{
			assert_string_equal(jstr(jobj(it, "actor"), "id"), id);
			assert_string_equal(jstr(it, "outcome"), "denied");
			seen++;
		}
		assert_int_equal(seen, 1);
	}
	cJSON_Delete(l);
	assert_int_equal(notices(&a, "export"), 0);
}

/* --- the audit trail ------------------------------------------------ */

/*
 * A successful export is one org.export entry naming the admin, their
 * address and the counts, and one "export" notification to every active
 * admin saying who, when and from where. The log still verifies.
 */
static void
an_export_is_one_entry_and_one_notification(void **state)
{
	char cid[64], aid2[64];
	const cJSON *e;
	struct sess s;
	sqlite3 *db;
	sqlite3_stmt *st;
	cJSON *doc, *l, *v;
	const char *body;

	(void)state;
	org_with_admin("ex-log", "198.18.50.8", &s);
	user_new("ex-log", "second@ex-log.test", "admin", aid2, sizeof(aid2));
	client_new(&s, "{\"family_name\":\"Solo\",\"given_name\":\"Han\"}", cid, sizeof(cid));
	doc = export_ok(&s, PW, NULL);

	l = log_of(&s, "org.export");
	assert_int_equal(cJSON_GetArraySize(jarr(l, "items")), 1);
	e = cJSON_GetArrayItem(jarr(l, "items"), 0);
	assert_string_equal(jstr(jobj(e, "actor"), "kind"), "user");
	assert_string_equal(jstr(jobj(e, "actor"), "id"), s.user_id);
	assert_string_equal(jstr(jobj(e, "actor"), "email"), "admin@ex-log.test");
	assert_string_equal(jstr(e, "via"), "app");
	assert_string_equal(jstr(e, "ip"), "198.18.50.8");
	assert_string_equal(jstr(e, "target"), "export");
	assert_string_equal(jstr(e, "outcome"), "ok");
	assert_string_equal(jstr(e, "detail"),
	                    F("users 2, clients 1, cases 0, events 0, notes 0, credentials 0, changes %d",
	                      cJSON_GetArraySize(jarr(doc, "changes"))));
	assert_true(strcmp(jstr(e, "at"), jstr(doc, "exported_at")) >= 0);
	cJSON_Delete(l);
	assert_int_equal(notices(&s, "export"), 1);
	{
		cJSON *n = sok(&s, "GET", "/notifications", NULL, 200);

		assert_string_equal(jstr(cJSON_GetArrayItem(jarr(n, "items"), 0), "kind"), "export");
		assert_string_equal(jstr(cJSON_GetArrayItem(jarr(n, "items"), 0), "summary"),
		                    "Your organization's data was exported");
		cJSON_Delete(n);
	}
	/* The mail's text: who, when, from where; one delivery per active admin. */
	db = org_db("ex-log");
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT body, subject_id FROM notifications WHERE kind = 'export'", -1,
	                                    &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	body = (const char *)sqlite3_column_text(st, 0);
	assert_non_null(strstr(body, "Who: Name of admin@ex-log.test <admin@ex-log.test> (user "));
	assert_non_null(strstr(body, "From address: 198.18.50.8"));
	assert_non_null(strstr(body, F("When: %s", jstr(doc, "exported_at"))));
	assert_non_null(strstr(body, "org.export"));
	assert_string_equal((const char *)sqlite3_column_text(st, 1), s.user_id);
	sqlite3_finalize(st);
	assert_int_equal(q_ll(db, "SELECT count(*) FROM deliveries d JOIN notifications n ON n.id = d.notification_id"
	                          " WHERE n.kind = 'export'"),
	                 2);
	idb_db_close(db);
	v = sok(&s, "GET", "/access-log/verify", NULL, 200);
	assert_true(jbool(v, "ok"));
	cJSON_Delete(v);
	cJSON_Delete(doc);
}

/*
 * Fail closed: when the notification cannot be queued, 503 and no
 * document; when the entry cannot be written, 503, no document and no
 * notification; the same for immidb-admin (exit 1, no file).
 */
static void
no_entry_or_no_notification_means_no_export(void **state)
{
	char path[600], cid[64], out[4096], err[4096], cd[128];
	struct h_resp r;
	struct stat sb;
	struct sess s;
	cJSON *l;

	(void)state;
	org_with_admin("ex-fail", "198.18.50.9", &s);
	client_new(&s, "{\"family_name\":\"Kept\",\"given_name\":\"Safe\",\"ssn\":\"078-05-1120\"}", cid, sizeof(cid));

	org_exec_ok("ex-fail", "CREATE TRIGGER no_note BEFORE INSERT ON notifications BEGIN SELECT RAISE(ABORT, 'x'); END");
	sreq(&s, "POST", "/export", pw_body(PW), &r);
	assert_error(&r, 503, "unavailable");
	assert_false(h_contains(r.body, r.len, "immidb-export-v1"));
	assert_false(h_contains(r.body, r.len, "078-05-1120"));
	assert_int_not_equal(h_header(&r, "Content-Disposition", cd, sizeof(cd)), 0);
	h_resp_free(&r);
	snprintf(path, sizeof(path), "%s/ex-fail.json", env.dir);
	assert_int_equal(cli_export("ex-fail", path, out, sizeof(out), err, sizeof(err)), 1);
	assert_int_not_equal(stat(path, &sb), 0);
	org_exec_ok("ex-fail", "DROP TRIGGER no_note");

	org_exec_ok("ex-fail", "CREATE TRIGGER no_entry BEFORE INSERT ON access_log WHEN NEW.action = 'org.export'"
	                       " BEGIN SELECT RAISE(ABORT, 'x'); END");
	sreq(&s, "POST", "/export", pw_body(PW), &r);
	assert_error(&r, 503, "unavailable");
	assert_false(h_contains(r.body, r.len, "078-05-1120"));
	h_resp_free(&r);
	assert_int_equal(cli_export("ex-fail", path, out, sizeof(out), err, sizeof(err)), 1);
	assert_non_null(strstr(err, "nothing was exported"));
	assert_int_not_equal(stat(path, &sb), 0);
	assert_int_equal(cli_export("ex-fail", NULL, out, sizeof(out), err, sizeof(err)), 1);
	assert_int_equal(strlen(out), 0);
	org_exec_ok("ex-fail", "DROP TRIGGER no_entry");

	assert_int_equal(org_count("ex-fail", "SELECT count(*) FROM notifications WHERE kind = 'export'"), 0);
	l = log_of(&s, "org.export");
	assert_int_equal(count_outcome(l, "ok"), 0);
	cJSON_Delete(l);
	/* Working again. */
	cJSON_Delete(export_ok(&s, PW, NULL));
	assert_int_equal(notices(&s, "export"), 1);
}

/* --- immidb-admin export -------------------------------------------- */

/*
 * The same document from the server: a 0600 file (also in place of an
 * existing one, without a temporary left behind) or stdout, its own
 * org.export entry (system immidb-admin, via=server) and notification.
 * Unknown orgs and bad usage fail.
 */
static void
cli_export_writes_the_same_document_to_a_0600_file(void **state)
{
	char path[600], path2[600], err[4096], cid[64], *out = bigbuf(), *text;
	struct dirent *de;
	struct stat sb;
	struct sess s;
	cJSON *web, *file, *std, *l;
	const cJSON *e;
	size_t len;
	DIR *d;
	int fd, leftovers = 0;

	(void)state;
	org_with_admin("ex-cli", "198.18.50.10", &s);
	client_new(&s, CLIENT_FULL, cid, sizeof(cid));
	cJSON_Delete(sok(&s, "POST", "/credentials",
	                 F("{\"client_id\":\"%s\",\"label\":\"Portal\",\"password\":\"" CRED_PW "\"}", cid), 201));
	web = export_ok(&s, PW, NULL);

	snprintf(path, sizeof(path), "%s/ex-cli.json", env.dir);
	assert_int_equal(cli_export("ex-cli", path, out, OUT_MAX, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	text = h_slurp(path, &len);
	assert_non_null(text);
	file = jparse_text(text, 0);
	free(text);
	check_shape(file, "ex-cli");
	same_document(web, file);
	assert_string_equal(jstr(by_id(jarr(file, "clients"), cid), "a_number"), "A123456789");
	assert_string_equal(jstr(cJSON_GetArrayItem(jarr(file, "credentials"), 0), "password"), "pässwörd \"quoted\" 123");

	/* In place of an existing file (0644): replaced whole, 0600, nothing left beside it. */
	snprintf(path2, sizeof(path2), "%s/ex-cli-old.json", env.dir);
	fd = open(path2, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "old", 3), 3);
	close(fd);
	assert_int_equal(cli_export("ex-cli", path2, out, OUT_MAX, err, sizeof(err)), 0);
	assert_int_equal(stat(path2, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	text = h_slurp(path2, &len);
	cJSON_Delete(jparse_text(text, 0));
	free(text);
	assert_non_null(d = opendir(env.dir));
	while ((de = readdir(d)) != NULL)
		leftovers += strncmp(de->d_name, "ex-cli.json.", 12) == 0 || strncmp(de->d_name, "ex-cli-old.json.", 16) == 0;
	closedir(d);
	assert_int_equal(leftovers, 0);

	/* To stdout. */
	assert_int_equal(cli_export("ex-cli", NULL, out, OUT_MAX, err, sizeof(err)), 0);
	std = jparse_text(out, 0);
	same_document(web, std);

	/* Three entries of the server's kind... */
	l = log_of(&s, "org.export");
	assert_int_equal(cJSON_GetArraySize(jarr(l, "items")), 4);
	e = cJSON_GetArrayItem(jarr(l, "items"), 0);
	assert_string_equal(jstr(jobj(e, "actor"), "kind"), "system");
	assert_string_equal(jstr(jobj(e, "actor"), "id"), "immidb-admin");
	assert_string_equal(jstr(jobj(e, "actor"), "email"), "");
	assert_string_equal(jstr(e, "via"), "server");
	assert_string_equal(jstr(e, "ip"), "");
	assert_string_equal(jstr(e, "target"), "export");
	assert_string_equal(jstr(e, "outcome"), "ok");
	assert_non_null(strstr(jstr(e, "detail"), "clients 1, cases 0, events 0, notes 0, credentials 1"));
	assert_string_equal(jstr(jobj(cJSON_GetArrayItem(jarr(l, "items"), 3), "actor"), "kind"), "user");
	cJSON_Delete(l);
	/* ... and a notification each. */
	assert_int_equal(notices(&s, "export"), 4);
	assert_int_equal(org_count("ex-cli", "SELECT count(*) FROM notifications WHERE kind = 'export' AND body LIKE"
	                                     " '%immidb-admin, the operator''s command on the server%'"),
	                 3);

	/* Refusals. */
	snprintf(path2, sizeof(path2), "%s/nowhere.json", env.dir);
	assert_int_equal(cli_export("no-such-org", path2, out, OUT_MAX, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "no such org"));
	assert_int_not_equal(stat(path2, &sb), 0);
	assert_int_equal(h_admin(&env, NULL, out, OUT_MAX, err, sizeof(err), "export", NULL), 2);
	assert_int_equal(h_admin(&env, NULL, out, OUT_MAX, err, sizeof(err), "export", "--org", "ex-cli", "--bogus", "x",
	                         NULL),
	                 2);
	snprintf(path2, sizeof(path2), "%s/no/such/folder/x.json", env.dir);
	assert_int_equal(cli_export("ex-cli", path2, out, OUT_MAX, err, sizeof(err)), 1);
	assert_int_equal(notices(&s, "export"), 4); /* a file that cannot be made: no entry, no notice */

	cJSON_Delete(web);
	cJSON_Delete(file);
	cJSON_Delete(std);
	free(out);
}

/* --- a large org ---------------------------------------------------- */

/* BIG clients, each with an A-number encrypted under the org's field key, written straight to the database. */
static void
big_org(const char *slug, const char *owner)
{
	char path[IDB_PATH_MAX], id[IDB_ID_LEN + 1], an[16], now[IDB_TIME_LEN];
	unsigned char blob[64];
	struct idb_org_keys k;
	struct idb_field_ad ad;
	struct idb_org o;
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int i;

	org_keys(slug, &k, path);
	db = org_db(slug);
	{
		/* The org's id: the associated data of every ciphertext names it. */
		struct idb_master *m = NULL;
		struct idb_conf conf;
		char cerr[512];
		sqlite3 *reg = NULL;

		assert_int_equal(idb_conf_open(&conf, env.conf, NULL, cerr, sizeof(cerr)), IDB_OK);
		assert_int_equal(idb_key_master_load(conf.master_key_file, &m), IDB_OK);
		assert_int_equal(idb_reg_open(&conf, m, 0, &reg), IDB_OK);
		assert_int_equal(idb_reg_org_find(reg, slug, &o), IDB_OK);
		idb_db_close(reg);
		idb_key_master_free(m);
	}
	idb_time_now(now);
	assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "INSERT INTO clients (id, family_name, given_name, notes, a_number, version,"
	                                    " created_at, updated_at, created_by, updated_by) VALUES (?, ?, 'Bulk', ?, ?, 1,"
	                                    " ?, ?, ?, ?)",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	for (i = 0; i < BIG; i++) {
		idb_id_new('c', id);
		snprintf(an, sizeof(an), "A%09d", i);
		ad.org_id = o.id;
		ad.table = "clients";
		ad.row_id = id;
		ad.column = "a_number";
		assert_int_equal(idb_field_encrypt(k.field, k.field_version, &ad, (const unsigned char *)an, strlen(an), blob),
		                 IDB_OK);
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, F("Family %d", i), -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, "A note of some length, as case notes are, with \"quotes\" and a\nline break.", -1,
		                  SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, blob, (int)(strlen(an) + IDB_FIELD_OVERHEAD), SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, owner, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 8, owner, -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	idb_db_close(db);
	idb_org_keys_wipe(&k);
}

/*
 * A growing buffer that doubles: the harness's h_http and h_slurp grow by
 * each chunk, which is quadratic under AddressSanitizer (its realloc always
 * copies) and too slow for a 60 MB answer.
 */
struct grow {
	char *p;
	size_t n, cap;
};

static size_t
grow_add(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct grow *g = arg;
	size_t add = size * nmemb;
	char *np;

	if (g->n + add + 1 > g->cap) {
		size_t cap = g->cap ? g->cap : 65536;

		while (cap < g->n + add + 1)
			cap *= 2;
		if ((np = realloc(g->p, cap)) == NULL)
			return 0;
		g->p = np;
		g->cap = cap;
	}
	memcpy(g->p + g->n, ptr, add);
	g->n += add;
	g->p[g->n] = '\0';
	return add;
}

/* POST .../export as s with the right password, the body into g; the status. */
static long
big_export(const struct sess *s, struct grow *g)
{
	char url[256], xff[128], cookie[256], csrf[256];
	struct curl_slist *list = NULL;
	long status = 0;
	CURL *c = curl_easy_init();

	assert_non_null(c);
	snprintf(url, sizeof(url), "%s/api/v1/orgs/%s/export", env.base, s->slug);
	snprintf(xff, sizeof(xff), "X-Forwarded-For: %s", s->ip);
	snprintf(cookie, sizeof(cookie), "Cookie: immidb_session=%s", s->token);
	snprintf(csrf, sizeof(csrf), "X-CSRF-Token: %s", s->csrf);
	list = curl_slist_append(list, xff);
	list = curl_slist_append(list, cookie);
	list = curl_slist_append(list, csrf);
	list = curl_slist_append(list, "Content-Type: application/json");
	list = curl_slist_append(list, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"password\":\"" PW "\"}");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, grow_add);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, g);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(list);
	curl_easy_cleanup(c);
	assert_non_null(g->p);
	return status;
}

/* A whole file, read at its size; caller frees. */
static char *
slurp(const char *path, size_t *len)
{
	struct stat sb;
	char *p;
	ssize_t r;
	size_t n = 0;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	p = malloc((size_t)sb.st_size + 1);
	assert_non_null(p);
	while (n < (size_t)sb.st_size && (r = read(fd, p + n, (size_t)sb.st_size - n)) > 0)
		n += (size_t)r;
	close(fd);
	assert_int_equal(n, (size_t)sb.st_size);
	p[n] = '\0';
	*len = n;
	return p;
}

/* The clients of a large export: all there, in creation order, every A-number decrypted. */
static void
big_clients(const char *text)
{
	const cJSON *arr;
	cJSON *doc = jparse_text(text, 0);

	check_shape(doc, "ex-big");
	arr = jarr(doc, "clients");
	assert_int_equal(cJSON_GetArraySize(arr), BIG);
	assert_string_equal(jstr(cJSON_GetArrayItem(arr, 0), "a_number"), "A000000000");
	assert_string_equal(jstr(cJSON_GetArrayItem(arr, BIG / 2), "a_number"), F("A%09d", BIG / 2));
	assert_string_equal(jstr(cJSON_GetArrayItem(arr, BIG - 1), "a_number"), F("A%09d", BIG - 1));
	assert_string_equal(jstr(cJSON_GetArrayItem(arr, BIG - 1), "notes"),
	                    "A note of some length, as case notes are, with \"quotes\" and a\nline break.");
	cJSON_Delete(doc);
}

/* 100 000 clients: both exports complete. */
static void
a_large_org_exports_whole(void **state)
{
	char path[600], err[4096], *out = bigbuf(), *text;
	struct grow g = {NULL, 0, 0};
	long long t0, t_api, t_cli;
	struct sess s;
	size_t len;

	(void)state;
	org_with_admin("ex-big", "198.18.50.11", &s);
	big_org("ex-big", s.user_id);
	t0 = h_now_ms();
	assert_int_equal(big_export(&s, &g), 200);
	t_api = h_now_ms() - t0;
	big_clients(g.p);
	free(g.p);

	snprintf(path, sizeof(path), "%s/ex-big.json", env.dir);
	t0 = h_now_ms();
	assert_int_equal(cli_export("ex-big", path, out, OUT_MAX, err, sizeof(err)), 0);
	t_cli = h_now_ms() - t0;
	text = slurp(path, &len);
	big_clients(text);
	print_message("export of %d clients: %zu bytes; API %lld ms, immidb-admin %lld ms\n", BIG, len, t_api, t_cli);
	free(text);
	unlink(path);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(export_holds_every_record_with_sensitive_fields_decrypted),
	    cmocka_unit_test(export_never_holds_a_hash_a_totp_secret_a_token_or_a_recovery_code),
	    cmocka_unit_test(wrong_passwords_are_401_counted_and_five_lock_the_email),
	    cmocka_unit_test(bad_bodies_are_422_and_are_not_counted),
	    cmocka_unit_test(csrf_roles_and_other_orgs_are_refused),
	    cmocka_unit_test(a_sysadmin_cannot_export_through_the_api),
	    cmocka_unit_test(an_export_is_one_entry_and_one_notification),
	    cmocka_unit_test(no_entry_or_no_notification_means_no_export),
	    cmocka_unit_test(cli_export_writes_the_same_document_to_a_0600_file),
	    cmocka_unit_test(a_large_org_exports_whole),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
