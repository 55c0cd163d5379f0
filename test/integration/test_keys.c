/* SPDX-License-Identifier: ISC */
/*
 * Key rotation, end to end with the real binaries (storage.md, key
 * hierarchy; cli.md, keys rotate): `immidb-admin keys rotate --org S` while
 * the server runs and serves the org, and the same rotation cut short after
 * each of its steps (the test hook IMMIDB_TEST_CRASH_AT makes immidb-admin
 * exit with status 70 right after a step, as a crash there would); writes
 * racing a rotation; a rekey that cannot take the write lock (SQLCipher's
 * rekey then reports success without having rekeyed); `keys rotate-master`,
 * refused while the server holds the registry, and cut short after each of
 * its steps; and the usage errors.
 *
 * What is checked after a rotation: the registry's key versions; that the
 * org file opens with the new database key and no longer with the old one;
 * that every stored sensitive value (a client's a_number, passport_number and
 * ssn, a credential's password, a user's TOTP secret) carries the new field
 * key version in its ciphertext header; that the API reveals the same
 * plaintexts as before, finds clients by the last four digits of their
 * A-number, lets the TOTP user log in with a code, and creates new values;
 * the keys.rotate entries of the access log (via=server) and `immidb-admin
 * log verify`. Storage checks open the org database as an operator holding
 * the master key could (idb_reg_org_key_at + idb_db_open).
 *
 * As in test_data.c, the server trusts loopback as a proxy and each test
 * speaks for its own client addresses (198.18.7.N) through X-Forwarded-For,
 * in its own organizations made with the real immidb-admin. Sysadmins speak
 * from 198.18.9.N, the configured sysadmin addresses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
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
#include "crypto/field.h"
#include "crypto/totp.h"
#include "store/db.h"
#include "store/registry.h"

#define WORKERS 2
#define ORIGIN "test.immidb.localhost"
#define SA_NET "198.18.9.0/24"
#define SA_IP "198.18.9.7"
#define SA_PW "sysadmin passphrase of some length"
#define CRASHED 70
#define NCLIENTS 3
#define MAX_CLIENTS 8
#define MAX_ORGS 16
#define OUT_LEN 8192

struct h_env env;

/* --- TOTP codes, each step used once ------------------------------- */

struct totp {
	unsigned char key[IDB_TOTP_SECRET_LEN];
	size_t len;
	uint64_t last; /* the last step used (the server refuses it and any before) */
};

static void
totp_set(struct totp *t, const char *b32)
{
	memset(t, 0, sizeof(*t));
	if (idb_base32_decode(b32, t->key, sizeof(t->key), &t->len) != 0 || t->len != IDB_TOTP_SECRET_LEN)
		fail_msg("not a 160-bit base32 TOTP secret: %s", b32);
}

/*
 * The code of the first step after the last one used that the server takes
 * (the current step +-1; the one before only while 5 s or more of the
 * current step remain, so it is still valid on arrival), waiting for the
 * next step if all three are used.
 */
static void
totp_code(struct totp *t, char code[16])
{
	uint64_t now, step;
	time_t tnow;

	for (;;) {
		tnow = time(NULL);
		now = idb_totp_step(tnow);
		step = t->last + 1 > now - 1 ? t->last + 1 : now - 1;
		if (step == now - 1 && IDB_TOTP_PERIOD - tnow % IDB_TOTP_PERIOD < 5)
			step = now;
		if (step <= now + 1)
			break;
		h_sleep_ms(500);
	}
	t->last = step;
	assert_true(snprintf(code, 16, "%06u", (unsigned)idb_totp_code(t->key, t->len, step)) == 6);
}

/* --- one org with data in every sensitive column -------------------- */

struct client {
	char id[64];
	char a_number[16];
	char passport[24]; /* "" for none */
	char ssn[16];
};

struct dataset {
	char slug[48];
	char ip[32];
	struct sess admin;
	struct client c[MAX_CLIENTS];
	int n;
	char cred[64];
	char cred_pw[64];
	char totp_email[128];
	struct totp totp;
	int ok; /* set when its test passed: later tests check it still serves its data */
};

/* Every org made here, for the master-key tests ("all orgs serve their data"). */
static struct dataset *g_orgs[MAX_ORGS];
static int g_norgs;

static struct dataset *
dataset_new(void)
{
	struct dataset *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	assert_true(g_norgs < MAX_ORGS);
	g_orgs[g_norgs++] = d;
	return d;
}

/* n random decimal digits into out. */
static void
digits(char *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		out[i] = (char)('0' + randombytes_uniform(10));
	out[n] = '\0';
}

/* A new client with an A-number, a passport (unless no_passport) and an SSN, through the API. */
static void
add_client(struct dataset *d, int no_passport)
{
	struct client *c;
	char nine[10], seven[8], four[5];

	assert_true(d->n < MAX_CLIENTS);
	c = &d->c[d->n];
	digits(nine, 9);
	assert_true(snprintf(c->a_number, sizeof(c->a_number), "A%s", nine) == 10);
	digits(seven, 7);
	if (no_passport)
		c->passport[0] = '\0';
	else
		assert_true(snprintf(c->passport, sizeof(c->passport), "P%s", seven) == 8);
	digits(four, 4);
	assert_true(snprintf(c->ssn, sizeof(c->ssn), "%.3s-%.2s-%s", nine, seven, four) == 11);
	client_new(&d->admin,
	           no_passport
	               ? F("{\"family_name\":\"Rotation%d\",\"given_name\":\"Ana\",\"a_number\":\"%s\",\"ssn\":\"%s\"}",
	                   d->n, c->a_number, c->ssn)
	               : F("{\"family_name\":\"Rotation%d\",\"given_name\":\"Ana\",\"a_number\":\"%s\","
	                   "\"passport_number\":\"%s\",\"ssn\":\"%s\"}",
	                   d->n, c->a_number, c->passport, c->ssn),
	           c->id, sizeof(c->id));
	d->n++;
}

/* POST .../session with a password, answered with mfa_required: the pending session into p. */
static void
login_pending(const struct dataset *d, struct sess *p)
{
	struct h_resp r;
	cJSON *j;

	raw("POST", F("/api/v1/orgs/%s/session", d->slug), d->ip, NULL, NULL,
	    F("{\"email\":\"%s\",\"password\":\"%s\"}", d->totp_email, PW), &r);
	memset(p, 0, sizeof(*p));
	copy(p->slug, sizeof(p->slug), d->slug);
	copy(p->ip, sizeof(p->ip), d->ip);
	copy(p->email, sizeof(p->email), d->totp_email);
	want(&r, 200);
	if (take_cookie(&r, p->token, sizeof(p->token)) != 0)
		fail_msg("login answered 200 without a session cookie");
	j = jparse_text(r.body, r.status);
	assert_true(jbool(j, "mfa_required"));
	copy(p->csrf, sizeof(p->csrf), jstr(j, "csrf_token"));
	cJSON_Delete(j);
	h_resp_free(&r);
}

/* The TOTP user logs in: password, then a code. */
static void
totp_login(struct dataset *d)
{
	char code[16];
	struct sess p;
	cJSON *j;

	login_pending(d, &p);
	totp_code(&d->totp, code);
	j = sok(&p, "POST", "/session/mfa", F("{\"code\":\"%s\"}", code), 200);
	assert_true(jbool(jobj(j, "user"), "mfa_enabled"));
	assert_string_equal(jstr(jobj(j, "user"), "email"), d->totp_email);
	cJSON_Delete(j);
}

/*
 * An org with an admin, NCLIENTS clients (the last without a passport), a
 * credential with a password, and a member with TOTP on (a stored secret).
 */
static struct dataset *
make_org(const char *slug, const char *ip)
{
	struct dataset *d = dataset_new();
	struct sess m;
	char code[16];
	cJSON *j;
	int i;

	copy(d->slug, sizeof(d->slug), slug);
	copy(d->ip, sizeof(d->ip), ip);
	org_with_admin(slug, ip, &d->admin);
	for (i = 0; i < NCLIENTS; i++)
		add_client(d, i == NCLIENTS - 1);
	copy(d->cred_pw, sizeof(d->cred_pw), F("portal-%u-%u", randombytes_random(), randombytes_random()));
	j = sok(&d->admin, "POST", "/credentials",
	        F("{\"client_id\":\"%s\",\"label\":\"USCIS online account\",\"username\":\"ana\",\"password\":\"%s\"}",
	          d->c[0].id, d->cred_pw),
	        201);
	copy(d->cred, sizeof(d->cred), jstr(j, "id"));
	cJSON_Delete(j);
	copy(d->totp_email, sizeof(d->totp_email), F("totp@%s.test", slug));
	user_new(slug, d->totp_email, "member", NULL, 0);
	login(slug, ip, d->totp_email, &m);
	j = sok(&m, "POST", "/me/mfa/totp", NULL, 200);
	totp_set(&d->totp, jstr(j, "secret"));
	cJSON_Delete(j);
	totp_code(&d->totp, code);
	cJSON_Delete(sok(&m, "POST", "/me/mfa/totp/confirm", F("{\"code\":\"%s\"}", code), 200));
	return d;
}

/* A few reads, so that every worker has the org open (and its keys cached). */
static void
warm(const struct dataset *d)
{
	int i;

	for (i = 0; i < 4 * WORKERS; i++)
		cJSON_Delete(sok(&d->admin, "GET", "/clients?limit=5", NULL, 200));
}

/* POST .../<resource>/<id>/reveal: the value, or "" for null, into out. */
static void
reveal(const struct dataset *d, const char *resource, const char *id, const char *field, char *out, size_t len)
{
	cJSON *j = sok(&d->admin, "POST", F("/%s/%s/reveal", resource, id), F("{\"field\":\"%s\"}", field), 200);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");

	assert_string_equal(jstr(j, "field"), field);
	if (cJSON_IsNull(v))
		out[0] = '\0';
	else if (cJSON_IsString(v))
		copy(out, len, v->valuestring);
	else
		fail_msg("reveal of %s.%s: value is neither a string nor null", resource, field);
	cJSON_Delete(j);
}

/* Appends text to out (len bytes, n used); fails the test if it does not fit. */
static void
append(char *out, size_t len, size_t *n, const char *text)
{
	int w = snprintf(out + *n, len - *n, "%s\n", text);

	if (w < 0 || (size_t)w >= len - *n)
		fail_msg("more than %zu bytes of plaintexts", len);
	*n += (size_t)w;
}

/* Every plaintext of the org, revealed through the API, one per line into out ("" for none). */
static void
plaintexts(const struct dataset *d, char *out, size_t len)
{
	static const char *const fields[] = {"a_number", "passport_number", "ssn"};
	char v[256];
	size_t n = 0;
	int i, k;

	out[0] = '\0';
	for (i = 0; i < d->n; i++)
		for (k = 0; k < 3; k++) {
			reveal(d, "clients", d->c[i].id, fields[k], v, sizeof(v));
			append(out, len, &n, v);
		}
	reveal(d, "credentials", d->cred, "password", v, sizeof(v));
	append(out, len, &n, v);
}

/* The plaintexts the org should hold, as plaintexts() lists them. */
static void
expected(const struct dataset *d, char *out, size_t len)
{
	size_t n = 0;
	int i;

	out[0] = '\0';
	for (i = 0; i < d->n; i++) {
		append(out, len, &n, d->c[i].a_number);
		append(out, len, &n, d->c[i].passport);
		append(out, len, &n, d->c[i].ssn);
	}
	append(out, len, &n, d->cred_pw);
}

/* GET /clients?q=<the last four digits of the A-number> finds the client. */
static void
search_last4(const struct dataset *d, const struct client *c)
{
	const char *a = c->a_number;
	const cJSON *it;
	cJSON *j = sok(&d->admin, "GET", F("/clients?q=%s", a + strlen(a) - 4), NULL, 200);
	int found = 0;

	cJSON_ArrayForEach(it, jarr(j, "items"))
	{
		found |= strcmp(jstr(it, "id"), c->id) == 0;
	}
	if (!found)
		fail_msg("%s: ?q=%s does not find client %s", d->slug, a + strlen(a) - 4, c->id);
	cJSON_Delete(j);
}

/* Every value reveals to what was stored, and every client is found by its last four digits. */
static void
check_data(const struct dataset *d)
{
	char got[OUT_LEN], want_[OUT_LEN];
	int i;

	plaintexts(d, got, sizeof(got));
	expected(d, want_, sizeof(want_));
	assert_string_equal(got, want_);
	for (i = 0; i < d->n; i++)
		search_last4(d, &d->c[i]);
}

/* --- the registry and the org file, from the operator's side -------- */

struct regh {
	struct idb_conf conf;
	struct idb_master *m;
	sqlite3 *reg;
	struct idb_org o;
};

/*
 * Handles a failed test leaves open (cmocka jumps out of the helper) are
 * closed after each test: a registry handle left open would make the next
 * rotate-master find the registry in use.
 */
#define MAX_OPEN 16
static struct regh *g_open[MAX_OPEN];

static void
track(struct regh *h, int on)
{
	int i;

	for (i = 0; i < MAX_OPEN; i++)
		if (on ? g_open[i] == NULL : g_open[i] == h) {
			g_open[i] = on ? h : NULL;
			return;
		}
	assert_false(on); /* more than MAX_OPEN at once: a leak in the test */
}

static void
reg_open(const char *slug, struct regh *h)
{
	char err[512];

	memset(h, 0, sizeof(*h));
	track(h, 1);
	assert_int_equal(idb_conf_open(&h->conf, env.conf, NULL, err, sizeof(err)), IDB_OK);
	assert_int_equal(idb_key_master_load(h->conf.master_key_file, &h->m), IDB_OK);
	assert_int_equal(idb_reg_open(&h->conf, h->m, 0, &h->reg), IDB_OK);
	if (slug != NULL)
		assert_int_equal(idb_reg_org_find(h->reg, slug, &h->o), IDB_OK);
}

static void
reg_close(struct regh *h)
{
	track(h, 0);
	idb_db_close(h->reg);
	idb_key_master_free(h->m);
	h->reg = NULL;
	h->m = NULL;
}

static unsigned
latest(struct regh *h, const char *purpose)
{
	unsigned v = 0;

	assert_int_equal(idb_reg_org_key_latest(h->reg, h->o.id, purpose, &v), IDB_OK);
	return v;
}

/* idb_db_open of the org file with its database key of that version: IDB_OK or the error. */
static enum idb_err
open_at(struct regh *h, unsigned version, sqlite3 **out)
{
	unsigned char k[IDB_KEY_LEN];
	char path[IDB_PATH_MAX];
	enum idb_err e;

	*out = NULL;
	assert_int_equal(idb_org_path(&h->conf, h->o.id, path), IDB_OK);
	assert_int_equal(idb_reg_org_key_at(h->reg, h->m, h->o.id, "db", version, k), IDB_OK);
	e = idb_db_open(path, k, 0, out);
	sodium_memzero(k, sizeof(k));
	return e;
}

/* Every non-null value of table.column: byte 0 is 0x01, bytes 1..4 the version (big-endian); their count. */
static int
headers_are(sqlite3 *db, const char *table, const char *column, unsigned version)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *b;
	int n = 0, len;
	unsigned v;

	if (sqlite3_prepare_v2(db, F("SELECT %s FROM %s WHERE %s IS NOT NULL", column, table, column), -1, &st,
	                       NULL) != SQLITE_OK)
		fail_msg("%s.%s: %s", table, column, sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW) {
		b = sqlite3_column_blob(st, 0);
		len = sqlite3_column_bytes(st, 0);
		if (b == NULL || len < IDB_FIELD_OVERHEAD)
			fail_msg("%s.%s: a value of %d bytes is no field ciphertext", table, column, len);
		v = (unsigned)b[1] << 24 | (unsigned)b[2] << 16 | (unsigned)b[3] << 8 | b[4];
		if (b[0] != 0x01 || v != version)
			fail_msg("%s.%s: header %02x, key version %u; expected 01 and %u", table, column, b[0], v, version);
		n++;
	}
	sqlite3_finalize(st);
	return n;
}

/*
 * The org's file: the registry's newest key versions are (reg_db, reg_field);
 * the file opens with database key version db_v and with no other, its
 * key_state says field_v, and every sensitive value is under field_v.
 */
static void
check_storage(const struct dataset *d, unsigned reg_db, unsigned reg_field, unsigned db_v, unsigned field_v)
{
	struct regh h;
	sqlite3 *db = NULL, *other = NULL;
	unsigned v;
	int n, passports = 0, i;

	reg_open(d->slug, &h);
	assert_int_equal(latest(&h, "db"), reg_db);
	assert_int_equal(latest(&h, "field"), reg_field);
	for (v = 1; v <= reg_db; v++) {
		if (v == db_v)
			continue;
		if (open_at(&h, v, &other) != IDB_E_BADKEY)
			fail_msg("%s: the file opens with database key version %u (expected only %u)", d->slug, v, db_v);
		idb_db_close(other);
	}
	if (open_at(&h, db_v, &db) != IDB_OK)
		fail_msg("%s: the file does not open with database key version %u", d->slug, db_v);
	assert_int_equal(q_ll(db, "SELECT version FROM key_state WHERE purpose = 'field'"), field_v);
	for (i = 0; i < d->n; i++)
		passports += d->c[i].passport[0] != '\0';
	assert_int_equal(headers_are(db, "clients", "a_number", field_v), d->n);
	assert_int_equal(headers_are(db, "clients", "passport_number", field_v), passports);
	assert_int_equal(headers_are(db, "clients", "ssn", field_v), d->n);
	assert_int_equal(headers_are(db, "credentials", "password", field_v), 1);
	n = headers_are(db, "users", "totp_secret", field_v);
	assert_int_equal(n, 1);
	/* Every A-number still has its keyed last-four index entry. */
	assert_int_equal(q_ll(db, "SELECT count(*) FROM clients WHERE a_number IS NOT NULL AND a_number_last4 IS NULL"),
	                 0);
	idb_db_close(db);
	reg_close(&h);
}

/* --- immidb-admin ------------------------------------------------------ */

/* keys rotate --org slug with IMMIDB_TEST_CRASH_AT=crash_at (NULL: unset); the exit status. */
static int
rotate(const char *slug, const char *crash_at, char *out, size_t outlen, char *err, size_t errlen)
{
	int rc;

	if (crash_at != NULL)
		assert_int_equal(setenv("IMMIDB_TEST_CRASH_AT", crash_at, 1), 0);
	rc = h_admin(&env, NULL, out, outlen, err, errlen, "keys", "rotate", "--org", slug, NULL);
	unsetenv("IMMIDB_TEST_CRASH_AT");
	return rc;
}

static int
rotate_master(const char *crash_at, char *out, size_t outlen, char *err, size_t errlen)
{
	int rc;

	if (crash_at != NULL)
		assert_int_equal(setenv("IMMIDB_TEST_CRASH_AT", crash_at, 1), 0);
	rc = h_admin(&env, NULL, out, outlen, err, errlen, "keys", "rotate-master", NULL);
	unsetenv("IMMIDB_TEST_CRASH_AT");
	return rc;
}

/* A rotation that completes, with its report line. */
static void
rotate_ok(const struct dataset *d, unsigned from, unsigned to, int resumed)
{
	char out[OUT_LEN], err[OUT_LEN];
	int rc = rotate(d->slug, NULL, out, sizeof(out), err, sizeof(err));

	if (rc != 0)
		fail_msg("keys rotate --org %s: exit %d: %s%s", d->slug, rc, out, err);
	if (strstr(out, F("database key version %u -> %u, field key version %u -> %u", from, to, from, to)) == NULL &&
	    !resumed)
		fail_msg("keys rotate --org %s: unexpected report: %s", d->slug, out);
	if ((strstr(out, "finished a rotation cut short") != NULL) != resumed)
		fail_msg("keys rotate --org %s: %s a resumed rotation: %s", d->slug, resumed ? "expected" : "not", out);
	assert_non_null(strstr(out, F("-> %u", to)));
}

static void
log_verify(const char *slug)
{
	char out[OUT_LEN], err[OUT_LEN];
	int rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "verify", "--org", slug, NULL);

	if (rc != 0)
		fail_msg("log verify --org %s: exit %d: %s%s", slug, rc, out, err);
}

/* The keys.rotate entries of the org's access log (system immidb-admin, via=server, ok); their count. */
static int
rotate_entries(const struct dataset *d)
{
	cJSON *j = sok(&d->admin, "GET", "/access-log?action=keys.rotate&limit=200", NULL, 200);
	const cJSON *it;
	int n = 0;

	cJSON_ArrayForEach(it, jarr(j, "items"))
	{
		assert_string_equal(jstr(it, "action"), "keys.rotate");
		assert_string_equal(jstr(it, "via"), "server");
		assert_string_equal(jstr(jobj(it, "actor"), "kind"), "system");
		assert_string_equal(jstr(it, "outcome"), "ok");
		n++;
	}
	cJSON_Delete(j);
	return n;
}

/* What a rotation must keep: the data and search (several rounds, so both workers answer), TOTP, the log. */
static void
check_serves(struct dataset *d, int rounds)
{
	int i;

	for (i = 0; i < rounds; i++)
		check_data(d);
	totp_login(d);
	log_verify(d->slug);
}

/* --- tests: rotating an org's keys ---------------------------------- */

static void
rotate_org_while_the_server_serves_it_reencrypts_every_value_and_rekeys_the_file(void **state)
{
	struct dataset *d;
	char before[OUT_LEN], after[OUT_LEN];

	(void)state;
	d = make_org("k-live", "198.18.7.1");
	warm(d);
	plaintexts(d, before, sizeof(before));
	check_data(d);
	check_storage(d, 1, 1, 1, 1);

	rotate_ok(d, 1, 2, 0);
	check_storage(d, 2, 2, 2, 2);
	/* Without a restart: the workers' cached handles take the new keys. */
	plaintexts(d, after, sizeof(after));
	assert_string_equal(after, before);
	check_serves(d, 3);
	/* New values go under the new field key. */
	add_client(d, 0);
	check_data(d);
	check_storage(d, 2, 2, 2, 2);
	/* One entry for the values, one for the file. */
	assert_int_equal(rotate_entries(d), 2);

	rotate_ok(d, 2, 3, 0);
	check_storage(d, 3, 3, 3, 3);
	check_serves(d, 3);
	add_client(d, 1);
	check_data(d);
	check_storage(d, 3, 3, 3, 3);
	assert_int_equal(rotate_entries(d), 4);
	log_verify(d->slug);
	d->ok = 1;
}

/*
 * A child process that creates clients with an A-number through the API
 * until `stop` becomes readable, writing "<status> <id> <a_number>" lines to
 * path. No cmocka in the child: only libcurl and its exit status.
 */
static pid_t
writer_start(const struct dataset *d, const char *path, int *stop_w)
{
	int fds[2];
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	if ((pid = fork()) == 0) {
		char xff[96], cookie[256], csrf[256], body[256], nine[10], url[256];
		const char *hdr[] = {xff, cookie, csrf, NULL};
		struct pollfd pf = {fds[0], POLLIN, 0};
		FILE *f = fopen(path, "w");
		struct h_resp r;
		cJSON *j;
		int i;

		close(fds[1]);
		if (f == NULL || snprintf(xff, sizeof(xff), "X-Forwarded-For: %s", d->ip) >= (int)sizeof(xff) ||
		    snprintf(cookie, sizeof(cookie), "Cookie: immidb_session=%s", d->admin.token) >= (int)sizeof(cookie) ||
		    snprintf(csrf, sizeof(csrf), "X-CSRF-Token: %s", d->admin.csrf) >= (int)sizeof(csrf) ||
		    snprintf(url, sizeof(url), "/api/v1/orgs/%s/clients", d->slug) >= (int)sizeof(url))
			_exit(1);
		for (i = 0; i < 2000 && poll(&pf, 1, 0) == 0; i++) {
			digits(nine, 9);
			if (snprintf(body, sizeof(body),
			             "{\"family_name\":\"Racer\",\"given_name\":\"R\",\"a_number\":\"A%s\"}",
			             nine) >= (int)sizeof(body) ||
			    h_http(&env, "POST", url, hdr, body, strlen(body), &r) != 0)
				_exit(2);
			j = r.status == 201 ? cJSON_Parse(r.body) : NULL;
			fprintf(f, "%ld %s A%s %.200s\n", r.status,
			        j != NULL && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "id"))
			            ? cJSON_GetObjectItemCaseSensitive(j, "id")->valuestring
			            : "-",
			        nine, r.status == 201 ? "" : r.body);
			cJSON_Delete(j);
			h_resp_free(&r);
		}
		_exit(fclose(f) == 0 ? 0 : 3);
	}
	close(fds[0]);
	assert_true(pid > 0);
	*stop_w = fds[1];
	return pid;
}

/*
 * Writes racing two rotations: each answers 201 (its value then reveals
 * and sits under the final field key like every other) or 503 (a write
 * that began with a field key that changed underneath); none is lost under
 * a key the data is not under.
 */
static void
writes_racing_a_rotation_are_stored_under_the_key_the_data_is_under(void **state)
{
	char path[H_PATH + 32], line[512], id[64], a[32], v[64];
	int stop, status, created = 0, refused = 0, before;
	struct dataset *d;
	long code;
	pid_t pid;
	FILE *f;

	(void)state;
	d = make_org("k-race", "198.18.7.9");
	warm(d);
	assert_true(snprintf(path, sizeof(path), "%s/k-race-writes.txt", env.dir) < (int)sizeof(path));
	pid = writer_start(d, path, &stop);
	h_sleep_ms(300);
	rotate_ok(d, 1, 2, 0);
	rotate_ok(d, 2, 3, 0);
	h_sleep_ms(300);
	close(stop);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the writer process failed: status %d", status);

	before = d->n;
	assert_non_null(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		assert_int_equal(sscanf(line, "%ld %63s %31s", &code, id, a), 3);
		if (code == 503) {
			refused++;
			continue;
		}
		if (code != 201)
			fail_msg("a write during the rotation answered %ld: %s", code, line);
		reveal(d, "clients", id, "a_number", v, sizeof(v));
		assert_string_equal(v, a);
		/* Kept in the data set (no passport, no SSN) while there is room: check_data looks at them again. */
		if (d->n < MAX_CLIENTS) {
			struct client *c = &d->c[d->n++];

			copy(c->id, sizeof(c->id), id);
			copy(c->a_number, sizeof(c->a_number), a);
			c->passport[0] = c->ssn[0] = '\0';
		}
		created++;
	}
	fclose(f);
	print_message("%d writes created, %d answered 503 during two rotations\n", created, refused);
	assert_true(created > 0);
	/* Every stored value, the racers' included, is under the final field key. */
	{
		struct regh h;
		sqlite3 *db = NULL;

		reg_open(d->slug, &h);
		assert_int_equal(open_at(&h, 3, &db), IDB_OK);
		assert_int_equal(headers_are(db, "clients", "a_number", 3), before + created);
		assert_int_equal(q_ll(db, "SELECT count(*) FROM clients WHERE a_number_last4 IS NULL"), 0);
		idb_db_close(db);
		reg_close(&h);
	}
	check_data(d);
	log_verify(d->slug);
	d->ok = 1;
}

/*
 * A rotation cut short after step `step`: the server keeps serving the
 * right plaintexts (and takes new values), and the next run finishes it.
 */
static void
cut_short(const char *slug, const char *ip, const char *step)
{
	char out[OUT_LEN], err[OUT_LEN], before[OUT_LEN], after[OUT_LEN];
	int registry = strcmp(step, "registry") == 0, fields = strcmp(step, "fields") == 0;
	unsigned field_v = registry ? 1 : 2, db_v = registry || fields ? 1 : 2, final;
	struct dataset *d;
	int rc;

	d = make_org(slug, ip);
	warm(d);
	plaintexts(d, before, sizeof(before));
	check_data(d);

	rc = rotate(slug, step, out, sizeof(out), err, sizeof(err));
	if (rc != CRASHED)
		fail_msg("keys rotate with IMMIDB_TEST_CRASH_AT=%s: exit %d (expected %d): %s%s", step, rc, CRASHED, out,
		         err);
	/* What the crash left: both new versions in the registry; the file and its values as far as they got. */
	check_storage(d, 2, 2, db_v, field_v);

	/* The server, still running, answers with the right plaintexts and takes new ones. */
	plaintexts(d, after, sizeof(after));
	assert_string_equal(after, before);
	check_data(d);
	add_client(d, 0);
	check_data(d);
	check_storage(d, 2, 2, db_v, field_v);
	totp_login(d);

	/* Run again: the same rotation finished (registry, fields), or a new one after a complete rekey. */
	final = registry || fields ? 2 : 3;
	rotate_ok(d, final - 1, final, registry || fields);
	check_storage(d, final, final, final, final);
	plaintexts(d, after, sizeof(after));
	expected(d, before, sizeof(before));
	assert_string_equal(after, before);
	check_serves(d, 2);
	add_client(d, 0);
	check_data(d);
	check_storage(d, final, final, final, final);
	d->ok = 1;
}

static void
rotation_cut_short_after_the_registry_step_is_finished_by_the_next_run(void **state)
{
	(void)state;
	cut_short("k-cut-registry", "198.18.7.2", "registry");
}

static void
rotation_cut_short_after_the_fields_step_is_finished_by_the_next_run(void **state)
{
	(void)state;
	cut_short("k-cut-fields", "198.18.7.3", "fields");
}

static void
rotation_cut_short_after_the_rekey_step_leaves_a_complete_rotation(void **state)
{
	(void)state;
	cut_short("k-cut-rekey", "198.18.7.4", "rekey");
}

/*
 * A process that holds the org database's write lock for hold_ms (another
 * writer that takes long); returns once it holds it. Its pid.
 */
static pid_t
hold_write_lock(const struct dataset *d, int hold_ms)
{
	struct regh h;
	sqlite3 *db = NULL;
	int fds[2];
	char ok = 0;
	pid_t pid;

	reg_open(d->slug, &h);
	assert_int_equal(pipe(fds), 0);
	if ((pid = fork()) == 0) {
		close(fds[0]);
		/* The child: no cmocka here, only its exit status. */
		if (open_at(&h, 1, &db) == IDB_OK && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
		    write(fds[1], "1", 1) == 1) {
			h_sleep_ms(hold_ms);
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			_exit(0);
		}
		_exit(1);
	}
	close(fds[1]);
	assert_true(pid > 0);
	assert_int_equal(read(fds[0], &ok, 1), 1);
	close(fds[0]);
	reg_close(&h);
	return pid;
}

/*
 * SQLCipher's rekey reports success even when it could not take the write
 * lock, and the handle then writes under the new key into a file under the
 * old one. Here the lock is held past the rekey's 10-s wait and let go
 * while the rotation would write its access-log entry: the rotation must
 * fail and leave the file whole, and the next run finishes it.
 */
static void
rekey_that_cannot_take_the_write_lock_fails_and_loses_nothing(void **state)
{
	char out[OUT_LEN], err[OUT_LEN], before[OUT_LEN], after[OUT_LEN];
	struct dataset *d;
	int rc, status;
	pid_t holder;

	(void)state;
	d = make_org("k-busy", "198.18.7.8");
	plaintexts(d, before, sizeof(before));
	rc = rotate(d->slug, "fields", out, sizeof(out), err, sizeof(err));
	assert_int_equal(rc, CRASHED);
	check_storage(d, 2, 2, 1, 2);

	holder = hold_write_lock(d, (IDB_DB_BUSY_MS * 3) / 2);
	rc = rotate(d->slug, NULL, out, sizeof(out), err, sizeof(err));
	assert_int_equal(waitpid(holder, &status, 0), holder);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (rc != 1 || strstr(err, "not rekeyed") == NULL)
		fail_msg("keys rotate while the write lock is held: exit %d (expected 1, \"not rekeyed\"): %s%s", rc, out,
		         err);
	/* Still whole under the old database key, and served. */
	check_storage(d, 2, 2, 1, 2);
	plaintexts(d, after, sizeof(after));
	assert_string_equal(after, before);
	log_verify(d->slug);

	rotate_ok(d, 1, 2, 1);
	check_storage(d, 2, 2, 2, 2);
	check_serves(d, 1);
	d->ok = 1;
}

/* --- the master key ------------------------------------------------------ */

struct sa {
	char email[128];
	struct totp totp;
};

/* immidb-admin sysadmin add, its TOTP secret kept. */
static void
sa_new(const char *email, struct sa *a)
{
	char out[OUT_LEN], err[OUT_LEN], *p, *eol;
	int rc;

	memset(a, 0, sizeof(*a));
	copy(a->email, sizeof(a->email), email);
	rc = h_admin(&env, SA_PW "\n", out, sizeof(out), err, sizeof(err), "sysadmin", "add", "--email", email, "--name",
	             "Ops", "--password-stdin", NULL);
	if (rc != 0)
		fail_msg("sysadmin add %s: %d %s", email, rc, err);
	if ((p = strstr(out, "totp secret: ")) == NULL)
		fail_msg("no totp secret in: %s", out);
	p += strlen("totp secret: ");
	if ((eol = strchr(p, '\n')) != NULL)
		*eol = '\0';
	totp_set(&a->totp, p);
}

/* A sysadmin log-in from a sysadmin address: password and a fresh code. */
static void
sa_login(struct sa *a)
{
	char code[16], cookie[512];
	struct h_resp r;
	cJSON *j;

	totp_code(&a->totp, code);
	raw("POST", "/api/v1/sysadmin/session", SA_IP, NULL, NULL,
	    F("{\"email\":\"%s\",\"password\":\"%s\",\"code\":\"%s\"}", a->email, SA_PW, code), &r);
	want(&r, 200);
	assert_int_equal(h_header(&r, "Set-Cookie", cookie, sizeof(cookie)), 0);
	assert_true(strncmp(cookie, "immidb_sysadmin=", 16) == 0);
	j = jparse_text(r.body, r.status);
	assert_string_equal(jstr(jobj(j, "sysadmin"), "email"), a->email);
	cJSON_Delete(j);
	h_resp_free(&r);
}

/* GET /api/v1/log-key: the base64 public key into b64. */
static void
log_key(char *b64, size_t len)
{
	struct h_resp r;
	cJSON *j;

	raw("GET", "/api/v1/log-key", NULL, NULL, NULL, NULL, &r);
	j = wjson(&r, 200);
	assert_string_equal(jstr(j, "name"), ORIGIN);
	copy(b64, len, jstr(j, "public_key"));
	cJSON_Delete(j);
}

/* The org's signed checkpoint verifies with the public key pk64 (storage.md, checkpoint). */
static void
checkpoint_verifies(const struct dataset *d, const char *pk64)
{
	static const char dash[] = "\xe2\x80\x94 " ORIGIN " ";
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], both[68], h[32], kh_in[64];
	const char *note, *sigline, *end;
	size_t n = 0, msglen;
	cJSON *j;

	assert_int_equal(sodium_base642bin(pk, sizeof(pk), pk64, strlen(pk64), NULL, &n, NULL,
	                                   sodium_base64_VARIANT_ORIGINAL),
	                 0);
	assert_int_equal(n, sizeof(pk));
	j = sok(&d->admin, "GET", "/access-log/checkpoint", NULL, 200);
	note = jstr(j, "note");
	/* The signed message: the first three lines with their newlines; then an empty line and the signature. */
	if ((sigline = strstr(note, "\n\n")) == NULL)
		fail_msg("no signature line in: %s", note);
	msglen = (size_t)(sigline - note) + 1;
	sigline += 2;
	if (strncmp(sigline, dash, strlen(dash)) != 0)
		fail_msg("signature line does not name %s: %s", ORIGIN, sigline);
	sigline += strlen(dash);
	end = sigline + strcspn(sigline, "\n");
	assert_int_equal(sodium_base642bin(both, sizeof(both), sigline, (size_t)(end - sigline), NULL, &n, NULL,
	                                   sodium_base64_VARIANT_ORIGINAL),
	                 0);
	assert_int_equal(n, sizeof(both));
	/* key_hash = SHA-256(origin || "\n" || 0x01 || pk)[:4] */
	n = strlen(ORIGIN);
	memcpy(kh_in, ORIGIN, n);
	kh_in[n++] = '\n';
	kh_in[n++] = 0x01;
	memcpy(kh_in + n, pk, sizeof(pk));
	crypto_hash_sha256(h, kh_in, n + sizeof(pk));
	assert_memory_equal(both, h, 4);
	if (crypto_sign_verify_detached(both + 4, (const unsigned char *)note, msglen, pk) != 0)
		fail_msg("%s: the checkpoint does not verify with the log key:\n%s", d->slug, note);
	cJSON_Delete(j);
}

/* The master key file's 64 hex digits as 32 bytes. */
static void
master_bytes(const char *text, unsigned char m[32])
{
	size_t n = 0;

	assert_int_equal(sodium_hex2bin(m, 32, text, strlen(text), "\n", &n, NULL), 0);
	assert_int_equal(n, 32);
}

/* The registry opened with the registry key of the master key written as text: IDB_OK or the error. */
static enum idb_err
registry_opens_with(const char *master_text)
{
	unsigned char m[32], k[IDB_KEY_LEN];
	char path[IDB_PATH_MAX], err[512];
	struct idb_conf conf;
	sqlite3 *db = NULL;
	enum idb_err e;

	assert_int_equal(idb_conf_open(&conf, env.conf, NULL, err, sizeof(err)), IDB_OK);
	assert_int_equal(idb_reg_path(&conf, path), IDB_OK);
	master_bytes(master_text, m);
	assert_int_equal(crypto_kdf_derive_from_key(k, sizeof(k), 1, "immidreg", m), 0);
	e = idb_db_open(path, k, IDB_DB_READONLY, &db);
	idb_db_close(db);
	sodium_memzero(m, sizeof(m));
	sodium_memzero(k, sizeof(k));
	return e;
}

struct mpaths {
	char key[IDB_PATH_MAX], newkey[IDB_PATH_MAX + 8], rotating[IDB_PATH_MAX + 32], dir[IDB_PATH_MAX],
	    base[256];
};

static void
master_paths(struct mpaths *p)
{
	struct idb_conf conf;
	char err[512];
	const char *slash;

	assert_int_equal(idb_conf_open(&conf, env.conf, NULL, err, sizeof(err)), IDB_OK);
	copy(p->key, sizeof(p->key), conf.master_key_file);
	assert_true(snprintf(p->newkey, sizeof(p->newkey), "%s.new", p->key) < (int)sizeof(p->newkey));
	assert_true(snprintf(p->rotating, sizeof(p->rotating), "%s/registry.db.rotating", conf.data_dir) <
	            (int)sizeof(p->rotating));
	slash = strrchr(p->key, '/');
	assert_non_null(slash);
	assert_true((size_t)(slash - p->key) < sizeof(p->dir));
	memcpy(p->dir, p->key, (size_t)(slash - p->key));
	p->dir[slash - p->key] = '\0';
	copy(p->base, sizeof(p->base), slash + 1);
}

/* The master key file's text (caller frees). */
static char *
slurp_text(const char *path)
{
	size_t n = 0;
	char *s = h_slurp(path, &n);

	if (s == NULL)
		fail_msg("cannot read %s", path);
	return s;
}

static int
exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Exactly one master key file: <master> and nothing else whose name begins with it; no registry copy. */
static void
one_master_key(const struct mpaths *p)
{
	struct dirent *e;
	DIR *dir = opendir(p->dir);
	int n = 0;

	assert_non_null(dir);
	while ((e = readdir(dir)) != NULL)
		if (strncmp(e->d_name, p->base, strlen(p->base)) == 0) {
			if (strcmp(e->d_name, p->base) != 0)
				fail_msg("a second master key file is left: %s/%s", p->dir, e->d_name);
			n++;
		}
	closedir(dir);
	assert_int_equal(n, 1);
	assert_false(exists(p->newkey));
	assert_false(exists(p->rotating));
	assert_false(exists(F("%s-wal", p->rotating)));
}

/* Every org made so far whose test passed: its data (reveals, search) and its log. */
static void
all_orgs_serve(void)
{
	int i, n = 0;

	for (i = 0; i < g_norgs; i++)
		if (g_orgs[i]->ok) {
			check_data(g_orgs[i]);
			log_verify(g_orgs[i]->slug);
			n++;
		}
	assert_true(n >= 2);
}

static void
server_restart_ok(void)
{
	assert_int_equal(h_fcgi_start(&env), 0);
	if (h_wait_ready(&env, 15000) != 0)
		fail_msg("the server did not start again");
}

static void
rotate_master_needs_the_server_stopped_and_rewraps_every_key(void **state)
{
	char out[OUT_LEN], err[OUT_LEN], pk_before[128], pk_after[128];
	char *old_key, *new_key;
	struct dataset *a, *b;
	struct mpaths p;
	struct regh h;
	struct sa s;
	unsigned char k[IDB_KEY_LEN];
	unsigned v;
	int rc;

	(void)state;
	master_paths(&p);
	/* Two orgs, one with a rotation behind it (keys of versions 1 and 2 to rewrap). */
	a = make_org("k-master-a", "198.18.7.5");
	rotate_ok(a, 1, 2, 0);
	b = make_org("k-master-b", "198.18.7.6");
	check_data(a);
	check_data(b);
	sa_new("ops@keys.test", &s);
	sa_login(&s);
	log_key(pk_before, sizeof(pk_before));
	checkpoint_verifies(a, pk_before);
	old_key = slurp_text(p.key);

	/* Refused while the server holds the registry; nothing changes. */
	rc = rotate_master(NULL, out, sizeof(out), err, sizeof(err));
	if (rc != 1 || strstr(err, "registry is in use") == NULL)
		fail_msg("keys rotate-master with the server running: exit %d (expected 1, \"in use\"): %s%s", rc, out,
		         err);
	one_master_key(&p);
	new_key = slurp_text(p.key);
	assert_string_equal(new_key, old_key);
	free(new_key);
	check_data(a);

	/* Stopped: it works. */
	assert_int_equal(h_fcgi_stop(&env, 12000), 0);
	rc = rotate_master(NULL, out, sizeof(out), err, sizeof(err));
	if (rc != 0)
		fail_msg("keys rotate-master: exit %d: %s%s", rc, out, err);
	one_master_key(&p);
	new_key = slurp_text(p.key);
	assert_string_not_equal(new_key, old_key);
	assert_int_equal(registry_opens_with(old_key), IDB_E_BADKEY);
	assert_int_equal(registry_opens_with(new_key), IDB_OK);
	/* Every key version of every org unwraps under the new master key (older backups still open). */
	reg_open(a->slug, &h);
	for (v = 1; v <= 2; v++) {
		assert_int_equal(idb_reg_org_key_at(h.reg, h.m, h.o.id, "db", v, k), IDB_OK);
		assert_int_equal(idb_reg_org_key_at(h.reg, h.m, h.o.id, "field", v, k), IDB_OK);
	}
	assert_int_equal(idb_reg_org_find(h.reg, b->slug, &h.o), IDB_OK);
	assert_int_equal(idb_reg_org_key_at(h.reg, h.m, h.o.id, "db", 1, k), IDB_OK);
	assert_int_equal(idb_reg_org_key_at(h.reg, h.m, h.o.id, "field", 1, k), IDB_OK);
	sodium_memzero(k, sizeof(k));
	reg_close(&h);
	check_storage(a, 2, 2, 2, 2);
	check_storage(b, 1, 1, 1, 1);

	server_restart_ok();
	a->ok = b->ok = 1;
	all_orgs_serve();
	/* The sysadmin's TOTP secret was re-encrypted: the same secret, a new code. */
	sa_login(&s);
	/* The same log-signing key: unchanged public key, checkpoints that verify with it. */
	log_key(pk_after, sizeof(pk_after));
	assert_string_equal(pk_after, pk_before);
	checkpoint_verifies(a, pk_before);
	checkpoint_verifies(b, pk_before);
	free(old_key);
	free(new_key);
}

/* Waits for the server started last to exit; its exit status (-1 if it still runs after timeout_ms). */
static int
server_exit_status(int timeout_ms)
{
	long long t0 = h_now_ms();
	int status;

	while (h_now_ms() - t0 < timeout_ms) {
		if (waitpid(env.fcgi, &status, WNOHANG) == env.fcgi) {
			env.fcgi = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		h_sleep_ms(20);
	}
	return -1;
}

static void
master_rotation_cut_short_keeps_the_server_down_until_a_command_finishes_or_undoes_it(void **state)
{
	static const char *const steps[] = {"master-new", "copy", "swap"};
	char out[OUT_LEN], err[OUT_LEN], pk_before[128], pk_after[128];
	char *old_key, *pending, *now_key, *log;
	size_t log_at = 0, log_len = 0;
	struct dataset *d;
	struct mpaths p;
	size_t i;
	int rc;

	(void)state;
	master_paths(&p);
	d = make_org("k-master-cut", "198.18.7.7");
	check_data(d);
	log_key(pk_before, sizeof(pk_before));
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int finish = strcmp(steps[i], "swap") == 0;

		assert_int_equal(h_fcgi_stop(&env, 12000), 0);
		old_key = slurp_text(p.key);
		rc = rotate_master(steps[i], out, sizeof(out), err, sizeof(err));
		if (rc != CRASHED)
			fail_msg("rotate-master with IMMIDB_TEST_CRASH_AT=%s: exit %d: %s%s", steps[i], rc, out, err);
		/* Cut short: the new key waits beside the old one; the copy exists only after the copy step. */
		assert_true(exists(p.newkey));
		assert_int_equal(exists(p.rotating), strcmp(steps[i], "copy") == 0);
		pending = slurp_text(p.newkey);
		assert_int_equal(registry_opens_with(finish ? pending : old_key), IDB_OK);
		assert_int_equal(registry_opens_with(finish ? old_key : pending), IDB_E_BADKEY);

		/* The server refuses to start on it, naming the file. */
		free(h_slurp(env.fcgi_log, &log_at));
		assert_int_equal(h_fcgi_start(&env), 0);
		rc = server_exit_status(10000);
		if (rc != 1)
			fail_msg("immidb-fcgi with %s present: exit status %d (expected 1)", p.newkey, rc);
		log = h_slurp(env.fcgi_log, &log_len);
		assert_non_null(log);
		assert_true(log_len > log_at);
		if (!h_contains(log + log_at, log_len - log_at, F("%s exists", p.newkey)))
			fail_msg("immidb-fcgi's message does not name %s: %.*s", p.newkey, (int)(log_len - log_at),
			         log + log_at);
		free(log);

		/* Any immidb-admin command settles it: undone before the swap, finished after it. */
		rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "list", NULL);
		if (rc != 0)
			fail_msg("org list after a rotation cut short at %s: exit %d: %s", steps[i], rc, err);
		assert_non_null(strstr(out, d->slug));
		if (strstr(err, finish ? "finished a rotation" : "undid a rotation") == NULL)
			fail_msg("org list after %s: expected it to %s the rotation: %s", steps[i], finish ? "finish" : "undo",
			         err);
		one_master_key(&p);
		now_key = slurp_text(p.key);
		assert_string_equal(now_key, finish ? pending : old_key);
		assert_int_equal(registry_opens_with(now_key), IDB_OK);
		/* A second command has nothing left to do. */
		assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "list", NULL), 0);
		assert_null(strstr(err, "rotation"));

		server_restart_ok();
		check_data(d);
		if (finish)
			totp_login(d); /* the org's own secrets never depended on the master key */
		log_verify(d->slug);
		log_key(pk_after, sizeof(pk_after));
		assert_string_equal(pk_after, pk_before);
		checkpoint_verifies(d, pk_before);
		free(old_key);
		free(pending);
		free(now_key);
	}
	/* And a full rotation still works after all that. */
	assert_int_equal(h_fcgi_stop(&env, 12000), 0);
	rc = rotate_master(NULL, out, sizeof(out), err, sizeof(err));
	if (rc != 0)
		fail_msg("keys rotate-master: exit %d: %s%s", rc, out, err);
	one_master_key(&p);
	server_restart_ok();
	d->ok = 1;
	all_orgs_serve();
}

/* --- tests: usage ---------------------------------------------------- */

static void
keys_commands_refuse_unknown_orgs_and_bad_usage(void **state)
{
	char out[OUT_LEN], err[OUT_LEN];
	struct mpaths p;
	char *before, *after;

	(void)state;
	master_paths(&p);
	before = slurp_text(p.key);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "keys", "rotate", "--org",
	                         "no-such-org", NULL),
	                 1);
	assert_non_null(strstr(err, "no such org"));
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "keys", "rotate", NULL), 2);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "keys", "rotate", "--org", NULL), 2);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "keys", "rotate", "--org", "k-live",
	                         "--force", NULL),
	                 2);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "keys", "rotate-master", "now", NULL),
	                 2);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "keys", "rotate-master", "--org",
	                         "k-live", NULL),
	                 2);
	/* Nothing was touched. */
	one_master_key(&p);
	after = slurp_text(p.key);
	assert_string_equal(after, before);
	free(before);
	free(after);
}

/* --- setup ----------------------------------------------------------- */

static int
setup(void **state)
{
	const char *line = "sysadmin_ip_allowlist = " SA_NET "\n";

	(void)state;
	unsetenv("IMMIDB_TEST_CRASH_AT");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (sodium_init() < 0)
		return -1;
	if (h_start_with(&env, WORKERS, "127.0.0.1") != 0)
		return -1;
	/* The sysadmin addresses: appended to the harness's configuration, then a restart. */
	return h_conf_append(&env, line);
}

/* After each test, passed or not: no crash hook, no handle left open, the server running. */
static int
after_each(void **state)
{
	char out[OUT_LEN], err[OUT_LEN];
	int i;

	(void)state;
	unsetenv("IMMIDB_TEST_CRASH_AT");
	for (i = 0; i < MAX_OPEN; i++)
		if (g_open[i] != NULL) {
			idb_db_close(g_open[i]->reg);
			idb_key_master_free(g_open[i]->m);
			g_open[i] = NULL;
		}
	if (env.fcgi <= 0) {
		/* A master rotation cut short (a failed test): settled first, or the server refuses to start. */
		h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "list", NULL);
		if (h_fcgi_start(&env) != 0 || h_wait_ready(&env, 15000) != 0)
			return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	int rc, i;

	(void)state;
	rc = h_stop(&env);
	for (i = 0; i < g_norgs; i++)
		free(g_orgs[i]);
	curl_global_cleanup();
	return rc;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(rotate_org_while_the_server_serves_it_reencrypts_every_value_and_rekeys_the_file,
	                              after_each),
	    cmocka_unit_test_teardown(writes_racing_a_rotation_are_stored_under_the_key_the_data_is_under, after_each),
	    cmocka_unit_test_teardown(rotation_cut_short_after_the_registry_step_is_finished_by_the_next_run, after_each),
	    cmocka_unit_test_teardown(rotation_cut_short_after_the_fields_step_is_finished_by_the_next_run, after_each),
	    cmocka_unit_test_teardown(rotation_cut_short_after_the_rekey_step_leaves_a_complete_rotation, after_each),
	    cmocka_unit_test_teardown(rekey_that_cannot_take_the_write_lock_fails_and_loses_nothing, after_each),
	    cmocka_unit_test_teardown(rotate_master_needs_the_server_stopped_and_rewraps_every_key, after_each),
	    cmocka_unit_test_teardown(master_rotation_cut_short_keeps_the_server_down_until_a_command_finishes_or_undoes_it,
	                              after_each),
	    cmocka_unit_test_teardown(keys_commands_refuse_unknown_orgs_and_bad_usage, after_each),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
