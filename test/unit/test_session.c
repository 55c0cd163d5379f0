/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/auth (auth.h, settings.h, users.h) against real org
 * databases in a temporary data folder: sessions (only the token's SHA-256
 * stored, idle and absolute limits, last_seen written sparingly), the login
 * throttle, recovery codes, the org's settings and allow-list, and the
 * users' last-active-admin rule. Times are passed in, so nothing sleeps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/auth.h"
#include "auth/settings.h"
#include "auth/users.h"
#include "conf/conf.h"
#include "store/db.h"
#include "store/registry.h"
#include "tmpdir.h"

#define T0 ((time_t)1700000000) /* a fixed "now" for every test */
#define PASSWORD "correct horse battery"

/*
 * The data folder, made once for the program: one org shared by the
 * session, throttle, recovery and settings tests (its tables emptied before
 * each), with two users; the user tests get a fresh org each.
 */
struct world {
	char dir[256];
	struct idb_conf conf;
	struct idb_master *master;
	sqlite3 *reg;
	struct idb_org org;
	sqlite3 *db;
	struct idb_user ana, ben; /* admin, member */
	int orgs;                 /* fresh orgs made so far, for their slugs */
};

static struct world W;

/* 1 if needle (n bytes) occurs in hay (len bytes). */
static int
contains(const void *hay, size_t len, const void *needle, size_t n)
{
	const unsigned char *h = hay;
	size_t i;

	for (i = 0; n > 0 && i + n <= len; i++)
		if (memcmp(h + i, needle, n) == 0)
			return 1;
	return 0;
}

static void
exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
}

/* The single integer a query gives. */
static long long
int_of(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Creates an org and opens its database. */
static sqlite3 *
new_org(struct idb_org *o)
{
	struct idb_org_keys k;
	char slug[32], err[512] = "";
	sqlite3 *db = NULL;

	assert_in_range(snprintf(slug, sizeof(slug), "org-%d", ++W.orgs), 5, sizeof(slug) - 1);
	if (idb_reg_org_create(&W.conf, W.reg, W.master, slug, "Org S", o, err, sizeof(err)) != IDB_OK)
		fail_msg("org %s: %s", slug, err);
	assert_int_equal(idb_reg_org_keys(W.reg, W.master, o->id, &k), IDB_OK);
	assert_int_equal(idb_org_open(&W.conf, o->id, &k, 0, &db), IDB_OK);
	idb_org_keys_wipe(&k);
	return db;
}

static void
new_user(sqlite3 *db, const char *email, const char *role, struct idb_user *u)
{
	const char *field = NULL;
	enum idb_err e = idb_user_create(db, email, "Some One", role, PASSWORD, u, &field);

	if (e != IDB_OK)
		fail_msg("user %s: %s (%s)", email, idb_err_str(e), field ? field : "");
}

static int
group_setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	if (data_dir_setup("/tmp/idb-session.XXXXXX", W.dir, &W.conf, &W.master, &W.reg) != 0)
		return -1;
	W.db = new_org(&W.org);
	new_user(W.db, "ana@acme.test", "admin", &W.ana);
	new_user(W.db, "ben@acme.test", "member", &W.ben);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	idb_db_close(W.db);
	idb_db_close(W.reg);
	idb_key_master_free(W.master);
	rmtree(W.dir);
	return 0;
}

/* Before each test of the shared org: no sessions, attempts, lockouts, events or codes; default settings. */
static int
setup_shared(void **state)
{
	(void)state;
	exec(W.db, "DELETE FROM sessions; DELETE FROM login_attempts; DELETE FROM lockouts;"
	           " DELETE FROM auth_events; DELETE FROM recovery_codes;"
	           " UPDATE settings SET name = 'Org S', require_mfa = 0, ip_allowlist = '', session_idle_minutes = 30,"
	           " notify_sysadmin_access = 1, notify_updates = 'after', integration_google = 0,"
	           " integration_microsoft = 0, version = 1 WHERE id = 1");
	return 0;
}

/* A user test's own org. */
struct ufx {
	struct idb_org org;
	sqlite3 *db;
};

static int
setup_org(void **state)
{
	struct ufx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->db = new_org(&f->org);
	*state = f;
	return 0;
}

static int
teardown_org(void **state)
{
	struct ufx *f = *state;

	idb_db_close(f->db);
	free(f);
	return 0;
}

/* ---- sessions ---- */

static long long
sessions(void)
{
	return int_of(W.db, "SELECT count(*) FROM sessions");
}

static void
new_session(const struct idb_user *u, time_t now, char token[IDB_SESSION_TOKEN_LEN + 1], struct idb_session *s)
{
	assert_int_equal(idb_session_create(W.db, W.org.id, u->id, "203.0.113.7", 0, now, token, s), IDB_OK);
}

static int
is_base64url(const char *s)
{
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(s);
}

static int
cmp_token(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
token_is_43_base64url_characters_of_32_random_bytes(void **state)
{
	enum { N = 2000 };
	char(*t)[IDB_TOKEN_LEN + 1] = calloc(N, sizeof(*t));
	unsigned char raw[33];
	size_t rawlen = 0;
	int i;

	(void)state;
	assert_non_null(t);
	for (i = 0; i < N; i++) {
		idb_token_new(t[i]);
		assert_int_equal(strlen(t[i]), IDB_TOKEN_LEN);
		assert_true(is_base64url(t[i]));
		assert_int_equal(sodium_base642bin(raw, sizeof(raw), t[i], IDB_TOKEN_LEN, NULL, &rawlen, NULL,
		                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
		                 0);
		assert_int_equal(rawlen, 32);
	}
	qsort(t, N, sizeof(*t), cmp_token);
	for (i = 1; i < N; i++)
		assert_string_not_equal(t[i - 1], t[i]);
	free(t);
}

static void
session_token_is_the_org_id_a_dot_and_43_random_characters(void **state)
{
	struct idb_session a, b;
	char ta[IDB_SESSION_TOKEN_LEN + 1], tb[IDB_SESSION_TOKEN_LEN + 1];

	(void)state;
	new_session(&W.ana, T0, ta, &a);
	new_session(&W.ana, T0, tb, &b);
	assert_int_equal(strlen(ta), IDB_SESSION_TOKEN_LEN);
	assert_memory_equal(ta, W.org.id, IDB_ID_LEN);
	assert_int_equal(ta[IDB_ID_LEN], '.');
	assert_int_equal(strlen(ta + IDB_ID_LEN + 1), IDB_TOKEN_LEN);
	assert_true(is_base64url(ta + IDB_ID_LEN + 1));
	assert_string_not_equal(ta + IDB_ID_LEN + 1, tb + IDB_ID_LEN + 1);
	/* The stored hash covers the whole token, org part included. */
	idb_token_hash(ta, b.hash);
	assert_memory_equal(a.hash, b.hash, 32);
}

static void
session_token_names_its_org(void **state)
{
	struct idb_session s;
	char token[IDB_SESSION_TOKEN_LEN + 1], other[IDB_SESSION_TOKEN_LEN + 2], id[IDB_ID_LEN + 1];

	(void)state;
	new_session(&W.ana, T0, token, &s);
	assert_int_equal(idb_session_token_org(token, W.org.id), 1);
	idb_id_new('o', id);
	assert_int_equal(idb_session_token_org(token, id), 0);
	/* Malformed: -1 whatever the org. */
	assert_int_equal(idb_session_token_org(NULL, W.org.id), -1);
	assert_int_equal(idb_session_token_org("", W.org.id), -1);
	assert_int_equal(idb_session_token_org(token + IDB_ID_LEN + 1, W.org.id), -1);
	memcpy(other, token, sizeof(token));
	other[IDB_ID_LEN] = '-';
	assert_int_equal(idb_session_token_org(other, W.org.id), -1);
	memcpy(other, token, sizeof(token));
	other[0] = 'u';
	assert_int_equal(idb_session_token_org(other, W.org.id), -1);
	memcpy(other, token, sizeof(token));
	other[IDB_SESSION_TOKEN_LEN] = 'A';
	other[IDB_SESSION_TOKEN_LEN + 1] = '\0';
	assert_int_equal(idb_session_token_org(other, W.org.id), -1);
	other[IDB_SESSION_TOKEN_LEN - 1] = '\0';
	assert_int_equal(idb_session_token_org(other, W.org.id), -1);
}

static void
session_of_a_malformed_org_id_is_not_created(void **state)
{
	struct idb_session s;
	char token[IDB_SESSION_TOKEN_LEN + 1];

	(void)state;
	assert_int_not_equal(idb_session_create(W.db, "o_123", W.ana.id, "", 0, T0, token, &s), IDB_OK);
	assert_int_not_equal(idb_session_create(W.db, "", W.ana.id, "", 0, T0, token, &s), IDB_OK);
	assert_int_equal(sessions(), 0);
}

static void
session_of_an_unknown_user_is_not_created(void **state)
{
	struct idb_session s;
	char token[IDB_SESSION_TOKEN_LEN + 1];

	(void)state;
	assert_int_not_equal(
	    idb_session_create(W.db, W.org.id, "u_00000000000000000000000000000000", "", 0, T0, token, &s), IDB_OK);
	assert_int_equal(sessions(), 0);
}

static void
token_hash_is_sha256_of_the_token_text(void **state)
{
	unsigned char h[32], want[32];
	char t[IDB_TOKEN_LEN + 1];

	(void)state;
	idb_token_new(t);
	idb_token_hash(t, h);
	crypto_hash_sha256(want, (const unsigned char *)t, strlen(t));
	assert_memory_equal(h, want, 32);
}

static void
created_session_is_found_by_its_token(void **state)
{
	struct idb_session s, g;
	char token[IDB_SESSION_TOKEN_LEN + 1];

	(void)state;
	assert_int_equal(idb_session_create(W.db, W.org.id, W.ana.id, "203.0.113.7", 0, T0, token, &s), IDB_OK);
	assert_int_equal(strlen(token), IDB_SESSION_TOKEN_LEN);
	assert_int_equal(strlen(s.csrf), IDB_TOKEN_LEN);
	assert_true(is_base64url(s.csrf));
	assert_string_not_equal(s.csrf, token);
	assert_string_equal(s.user_id, W.ana.id);
	assert_int_equal(s.created_at, T0);
	assert_int_equal(s.last_seen, T0);
	assert_int_equal(s.expires_at, T0 + IDB_SESSION_ABSOLUTE);

	assert_int_equal(idb_session_find(W.db, token, T0 + 5, 30, &g), IDB_OK);
	assert_memory_equal(g.hash, s.hash, 32);
	assert_string_equal(g.user_id, W.ana.id);
	assert_string_equal(g.csrf, s.csrf);
	assert_int_equal(g.mfa_pending, 0);
	assert_int_equal(g.created_at, T0);
	assert_int_equal(g.expires_at, T0 + IDB_SESSION_ABSOLUTE);
}

static void
pending_second_factor_is_kept_with_the_session(void **state)
{
	struct idb_session s, g;
	char token[IDB_SESSION_TOKEN_LEN + 1];

	(void)state;
	assert_int_equal(idb_session_create(W.db, W.org.id, W.ana.id, "", 1, T0, token, &s), IDB_OK);
	assert_int_equal(s.mfa_pending, 1);
	assert_int_equal(idb_session_find(W.db, token, T0, 30, &g), IDB_OK);
	assert_int_equal(g.mfa_pending, 1);
}

static void
two_sessions_have_different_tokens_and_csrf(void **state)
{
	struct idb_session a, b;
	char ta[IDB_SESSION_TOKEN_LEN + 1], tb[IDB_SESSION_TOKEN_LEN + 1];

	(void)state;
	new_session(&W.ana, T0, ta, &a);
	new_session(&W.ana, T0, tb, &b);
	assert_string_not_equal(ta, tb);
	assert_string_not_equal(a.csrf, b.csrf);
	assert_memory_not_equal(a.hash, b.hash, 32);
	assert_int_equal(sessions(), 2);
}

static void
session_table_stores_only_the_sha256_of_the_token(void **state)
{
	struct idb_session s;
	char token[IDB_SESSION_TOKEN_LEN + 1];
	unsigned char want[32];
	const char *secret;
	sqlite3_stmt *st;
	int i, n;

	(void)state;
	new_session(&W.ana, T0, token, &s);
	secret = token + IDB_ID_LEN + 1;
	crypto_hash_sha256(want, (const unsigned char *)token, strlen(token));
	assert_int_equal(sqlite3_prepare_v2(W.db, "SELECT * FROM sessions", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_count(st);
	for (i = 0; i < n; i++) {
		const char *col = sqlite3_column_name(st, i);
		const void *v = sqlite3_column_blob(st, i);
		size_t len = (size_t)sqlite3_column_bytes(st, i);

		if (strcmp(col, "token_hash") == 0) {
			assert_int_equal(sqlite3_column_type(st, i), SQLITE_BLOB);
			assert_int_equal(len, 32);
			assert_memory_equal(v, want, 32);
		}
		/* Neither the token nor any part of it worth guessing from. */
		if (v != NULL && (contains(v, len, token, IDB_SESSION_TOKEN_LEN) || contains(v, len, secret, 16)))
			fail_msg("column %s holds the token", col);
	}
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

static void
unknown_or_malformed_token_finds_nothing(void **state)
{
	struct idb_session s, g;
	char token[IDB_SESSION_TOKEN_LEN + 1], other[IDB_SESSION_TOKEN_LEN + 2], fresh[IDB_TOKEN_LEN + 1], hex[65];
	const char *bad[] = {"", "x", fresh, token + IDB_ID_LEN + 1, hex, NULL};
	int i;

	(void)state;
	new_session(&W.ana, T0, token, &s);
	/* One character of the random part changed. */
	memcpy(other, token, sizeof(token));
	other[IDB_SESSION_TOKEN_LEN - 1] = other[IDB_SESSION_TOKEN_LEN - 1] == 'A' ? 'B' : 'A';
	assert_int_equal(idb_session_find(W.db, other, T0, 30, &g), IDB_E_UNAUTHENTICATED);
	/* The same random part under another org's id. */
	memcpy(other, token, sizeof(token));
	other[IDB_ID_LEN - 1] = other[IDB_ID_LEN - 1] == '0' ? '1' : '0';
	assert_int_equal(idb_session_find(W.db, other, T0, 30, &g), IDB_E_UNAUTHENTICATED);
	/* One character too many, one too few. */
	memcpy(other, token, IDB_SESSION_TOKEN_LEN);
	other[IDB_SESSION_TOKEN_LEN] = 'A';
	other[IDB_SESSION_TOKEN_LEN + 1] = '\0';
	assert_int_equal(idb_session_find(W.db, other, T0, 30, &g), IDB_E_UNAUTHENTICATED);
	other[IDB_SESSION_TOKEN_LEN - 1] = '\0';
	assert_int_equal(idb_session_find(W.db, other, T0, 30, &g), IDB_E_UNAUTHENTICATED);
	/* A fresh random part alone, the real random part alone, the stored hash as text. */
	idb_token_new(fresh);
	idb_hex(s.hash, 32, hex);
	for (i = 0; bad[i] != NULL; i++)
		assert_int_equal(idb_session_find(W.db, bad[i], T0, 30, &g), IDB_E_UNAUTHENTICATED);
	assert_int_equal(idb_session_find(W.db, NULL, T0, 30, &g), IDB_E_UNAUTHENTICATED);
	/* The real one still works, and nothing was deleted. */
	assert_int_equal(idb_session_find(W.db, token, T0, 30, &g), IDB_OK);
	assert_int_equal(sessions(), 1);
}

static void
session_idle_up_to_the_limit_is_kept(void **state)
{
	struct idb_session s, g;
	char token[IDB_SESSION_TOKEN_LEN + 1];

	(void)state;
	new_session(&W.ana, T0, token, &s);
	assert_int_equal(idb_session_find(W.db, token, T0 + 30 * 60, 30, &g), IDB_OK);
	assert_int_equal(g.last_seen, T0 + 30 * 60);
	/* Each use pushes the limit on. */
	assert_int_equal(idb_session_find(W.db, token, T0 + 60 * 60, 30, &g), IDB_OK);
}

static void
session_idle_past_the_limit_ends_and_is_deleted(void **state)
{
	struct idb_session s, g;
	char token[IDB_SESSION_TOKEN_LEN + 1];

	(void)state;
	new_session(&W.ana, T0, token, &s);
	assert_int_equal(idb_session_find(W.db, token, T0 + 30 * 60 + 1, 30, &g), IDB_E_UNAUTHENTICATED);
	assert_int_equal(sessions(), 0);
	/* Gone for good: not even a lookup "in the past" finds it. */
	assert_int_equal(idb_session_find(W.db, token, T0, 30, &g), IDB_E_UNAUTHENTICATED);

	/* The org's idle setting is what counts: one minute here. */
	new_session(&W.ana, T0, token, &s);
	assert_int_equal(idb_session_find(W.db, token, T0 + 61, 1, &g), IDB_E_UNAUTHENTICATED);
	assert_int_equal(sessions(), 0);
	new_session(&W.ana, T0, token, &s);
	assert_int_equal(idb_session_find(W.db, token, T0 + 60, 1, &g), IDB_OK);
}

static void
session_ends_twelve_hours_after_login_however_used(void **state)
{
	struct idb_session s, g;
	char token[IDB_SESSION_TOKEN_LEN + 1];
	time_t t;

	(void)state;
	new_session(&W.ana, T0, token, &s);
	for (t = T0 + 20 * 60; t < T0 + IDB_SESSION_ABSOLUTE; t += 20 * 60)
		assert_int_equal(idb_session_find(W.db, token, t, 30, &g), IDB_OK);
	assert_int_equal(idb_session_find(W.db, token, T0 + IDB_SESSION_ABSOLUTE - 1, 30, &g), IDB_OK);
	assert_int_equal(idb_session_find(W.db, token, T0 + IDB_SESSION_ABSOLUTE, 30, &g), IDB_E_UNAUTHENTICATED);
	assert_int_equal(sessions(), 0);
	/* The longest idle setting does not stretch it either. */
	new_session(&W.ana, T0, token, &s);
	assert_int_equal(idb_session_find(W.db, token, T0 + IDB_SESSION_ABSOLUTE + 1, IDB_IDLE_MAX, &g),
	                 IDB_E_UNAUTHENTICATED);
	assert_int_equal(sessions(), 0);
}

static long long
stored_last_seen(void)
{
	return int_of(W.db, "SELECT last_seen FROM sessions");
}

static void
last_seen_is_written_only_after_the_touch_interval(void **state)
{
	struct idb_session s, g;
	char token[IDB_SESSION_TOKEN_LEN + 1];

	(void)state;
	new_session(&W.ana, T0, token, &s);
	assert_int_equal(idb_session_find(W.db, token, T0 + IDB_SESSION_TOUCH - 1, 30, &g), IDB_OK);
	assert_int_equal(g.last_seen, T0);
	assert_int_equal(stored_last_seen(), T0);
	assert_int_equal(idb_session_find(W.db, token, T0 + IDB_SESSION_TOUCH, 30, &g), IDB_OK);
	assert_int_equal(g.last_seen, T0 + IDB_SESSION_TOUCH);
	assert_int_equal(stored_last_seen(), T0 + IDB_SESSION_TOUCH);
	assert_int_equal(idb_session_find(W.db, token, T0 + IDB_SESSION_TOUCH + 30, 30, &g), IDB_OK);
	assert_int_equal(stored_last_seen(), T0 + IDB_SESSION_TOUCH);
	/* Idle time is measured from the stored last_seen. */
	assert_int_equal(idb_session_find(W.db, token, T0 + IDB_SESSION_TOUCH + 30 * 60, 30, &g), IDB_OK);
	assert_int_equal(stored_last_seen(), T0 + IDB_SESSION_TOUCH + 30 * 60);
}

static void
deleting_a_session_ends_only_that_one(void **state)
{
	struct idb_session a, b, g;
	char ta[IDB_SESSION_TOKEN_LEN + 1], tb[IDB_SESSION_TOKEN_LEN + 1];

	(void)state;
	new_session(&W.ana, T0, ta, &a);
	new_session(&W.ana, T0, tb, &b);
	assert_int_equal(idb_session_delete(W.db, a.hash), IDB_OK);
	assert_int_equal(idb_session_find(W.db, ta, T0, 30, &g), IDB_E_UNAUTHENTICATED);
	assert_int_equal(idb_session_find(W.db, tb, T0, 30, &g), IDB_OK);
	/* Deleting again, or an unknown hash, is no error. */
	assert_int_equal(idb_session_delete(W.db, a.hash), IDB_OK);
	assert_int_equal(sessions(), 1);
}

static void
ending_a_users_sessions_keeps_only_the_kept_one(void **state)
{
	struct idb_session a1, a2, a3, b1, g;
	char t1[IDB_SESSION_TOKEN_LEN + 1], t2[IDB_SESSION_TOKEN_LEN + 1], t3[IDB_SESSION_TOKEN_LEN + 1];
	char tb[IDB_SESSION_TOKEN_LEN + 1];

	(void)state;
	new_session(&W.ana, T0, t1, &a1);
	new_session(&W.ana, T0, t2, &a2);
	new_session(&W.ana, T0, t3, &a3);
	new_session(&W.ben, T0, tb, &b1);
	assert_int_equal(idb_session_end_user(W.db, W.ana.id, a2.hash), IDB_OK);
	assert_int_equal(idb_session_find(W.db, t1, T0, 30, &g), IDB_E_UNAUTHENTICATED);
	assert_int_equal(idb_session_find(W.db, t3, T0, 30, &g), IDB_E_UNAUTHENTICATED);
	assert_int_equal(idb_session_find(W.db, t2, T0, 30, &g), IDB_OK);
	/* Another user's sessions are untouched, even when keep is not theirs. */
	assert_int_equal(idb_session_find(W.db, tb, T0, 30, &g), IDB_OK);
	assert_int_equal(sessions(), 2);
	/* keep = NULL ends them all. */
	assert_int_equal(idb_session_end_user(W.db, W.ana.id, NULL), IDB_OK);
	assert_int_equal(idb_session_find(W.db, t2, T0, 30, &g), IDB_E_UNAUTHENTICATED);
	assert_int_equal(idb_session_find(W.db, tb, T0, 30, &g), IDB_OK);
	assert_int_equal(sessions(), 1);
}

/* ---- throttle ---- */

static enum idb_err
check(const char *email, const char *ip, time_t now, long long *retry)
{
	return idb_throttle_check(W.db, email, ip, now, retry);
}

static void
fail_n(const char *email, const char *ip, time_t now, int n)
{
	int i;

	for (i = 0; i < n; i++)
		assert_int_equal(idb_throttle_fail(W.db, email, ip, now), IDB_OK);
}

static long long
lockout_events(const char *detail)
{
	sqlite3_stmt *st;
	long long n;

	assert_int_equal(sqlite3_prepare_v2(W.db,
	                                    "SELECT count(*) FROM auth_events WHERE kind = 'lockout' AND detail = ?",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	sqlite3_bind_text(st, 1, detail, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void
four_failures_do_not_lock_the_email(void **state)
{
	long long retry = 77;
	int i;

	(void)state;
	for (i = 0; i < IDB_THROTTLE_EMAIL - 1; i++) {
		assert_int_equal(idb_throttle_fail(W.db, "ana@acme.test", "203.0.113.7", T0 + i), IDB_OK);
		assert_int_equal(check("ana@acme.test", "203.0.113.7", T0 + i, &retry), IDB_OK);
		assert_int_equal(retry, 0);
	}
	assert_int_equal(int_of(W.db, "SELECT count(*) FROM lockouts"), 0);
	assert_int_equal(lockout_events("email"), 0);
}

static void
fifth_failure_locks_the_email_for_fifteen_minutes(void **state)
{
	long long retry = 0;

	(void)state;
	fail_n("ana@acme.test", "203.0.113.7", T0, IDB_THROTTLE_EMAIL);
	assert_int_equal(check("ana@acme.test", "203.0.113.7", T0, &retry), IDB_E_TOO_MANY_REQUESTS);
	assert_in_range(retry, 1, 900);
	assert_int_equal(retry, IDB_LOCKOUT_SECONDS);
	/* The email is locked whatever the address; the address is not locked for others. */
	assert_int_equal(check("ana@acme.test", "198.51.100.1", T0 + 1, &retry), IDB_E_TOO_MANY_REQUESTS);
	assert_in_range(retry, 1, 900);
	assert_int_equal(check("ben@acme.test", "203.0.113.7", T0 + 1, &retry), IDB_OK);
	assert_int_equal(retry, 0);
	/* Emails compare without regard to case. */
	assert_int_equal(check("ANA@Acme.Test", "198.51.100.1", T0 + 1, &retry), IDB_E_TOO_MANY_REQUESTS);
	/* Retry-After counts down to the last second. */
	assert_int_equal(check("ana@acme.test", "203.0.113.7", T0 + 600, &retry), IDB_E_TOO_MANY_REQUESTS);
	assert_int_equal(retry, 300);
	assert_int_equal(check("ana@acme.test", "203.0.113.7", T0 + IDB_LOCKOUT_SECONDS - 1, &retry),
	                 IDB_E_TOO_MANY_REQUESTS);
	assert_int_equal(retry, 1);
	assert_int_equal(int_of(W.db, "SELECT count(*) FROM lockouts WHERE kind = 'email'"), 1);
}

static void
lockout_ends_after_fifteen_minutes(void **state)
{
	long long retry = 77;

	(void)state;
	fail_n("ana@acme.test", "203.0.113.7", T0, IDB_THROTTLE_EMAIL);
	assert_int_equal(check("ana@acme.test", "203.0.113.7", T0 + IDB_LOCKOUT_SECONDS, &retry), IDB_OK);
	assert_int_equal(retry, 0);
	/* The failures that caused it have left the window: one more does not lock again. */
	assert_int_equal(idb_throttle_fail(W.db, "ana@acme.test", "203.0.113.7", T0 + IDB_LOCKOUT_SECONDS), IDB_OK);
	assert_int_equal(check("ana@acme.test", "203.0.113.7", T0 + IDB_LOCKOUT_SECONDS, &retry), IDB_OK);
}

static void
failures_with_differently_cased_email_count_together(void **state)
{
	long long retry;

	(void)state;
	fail_n("ana@acme.test", "203.0.113.7", T0, 2);
	fail_n("Ana@Acme.Test", "203.0.113.7", T0, 2);
	assert_int_equal(check("ana@acme.test", "203.0.113.7", T0, &retry), IDB_OK);
	fail_n("ANA@ACME.TEST", "203.0.113.8", T0, 1);
	assert_int_equal(check("ana@acme.test", "203.0.113.7", T0, &retry), IDB_E_TOO_MANY_REQUESTS);
}

static void
success_resets_the_email_count(void **state)
{
	long long retry;

	(void)state;
	fail_n("ana@acme.test", "203.0.113.7", T0, IDB_THROTTLE_EMAIL - 1);
	assert_int_equal(idb_throttle_ok(W.db, "ana@acme.test", "203.0.113.7", T0 + 1), IDB_OK);
	fail_n("ana@acme.test", "203.0.113.7", T0 + 2, IDB_THROTTLE_EMAIL - 1);
	assert_int_equal(check("ana@acme.test", "203.0.113.7", T0 + 2, &retry), IDB_OK);
	/* The fifth since the success locks. */
	fail_n("ana@acme.test", "203.0.113.7", T0 + 3, 1);
	assert_int_equal(check("ana@acme.test", "203.0.113.7", T0 + 3, &retry), IDB_E_TOO_MANY_REQUESTS);
}

/*
 * "Records a successful attempt: earlier failures of the email stop
 * counting" - also those earlier in the same second. The count compares
 * whole seconds (at >= the success's at), so four failures, a success and
 * one more failure, all within one second, count as five and lock the
 * account that just logged in.
 */
static void
success_resets_failures_earlier_in_the_same_second(void **state)
{
	long long retry;

	(void)state;
	fail_n("ana@acme.test", "203.0.113.7", T0, IDB_THROTTLE_EMAIL - 1);
	assert_int_equal(idb_throttle_ok(W.db, "ana@acme.test", "203.0.113.7", T0), IDB_OK);
	fail_n("ana@acme.test", "203.0.113.7", T0, 1);
	assert_int_equal(check("ana@acme.test", "203.0.113.7", T0, &retry), IDB_OK);
	assert_int_equal(lockout_events("email"), 0);
}

static void
twenty_failures_from_one_address_lock_it_but_not_another(void **state)
{
	char email[64];
	long long retry = 0;
	int i;

	(void)state;
	for (i = 0; i < IDB_THROTTLE_IP; i++) {
		assert_in_range(snprintf(email, sizeof(email), "user%d@acme.test", i), 5, sizeof(email) - 1);
		assert_int_equal(check(email, "203.0.113.7", T0 + i, &retry), IDB_OK);
		assert_int_equal(idb_throttle_fail(W.db, email, "203.0.113.7", T0 + i), IDB_OK);
	}
	/* No single email reached five: the address is what is locked. */
	assert_int_equal(check("someone@acme.test", "203.0.113.7", T0 + 20, &retry), IDB_E_TOO_MANY_REQUESTS);
	assert_in_range(retry, 1, 900);
	assert_int_equal(check("ana@acme.test", "203.0.113.7", T0 + 20, &retry), IDB_E_TOO_MANY_REQUESTS);
	assert_int_equal(check("ana@acme.test", "203.0.113.8", T0 + 20, &retry), IDB_OK);
	assert_int_equal(check("user0@acme.test", "2001:db8::1", T0 + 20, &retry), IDB_OK);
	assert_int_equal(lockout_events("ip"), 1);
	assert_int_equal(lockout_events("email"), 0);
	assert_int_equal(int_of(W.db, "SELECT count(*) FROM lockouts WHERE kind = 'ip' AND subject = '203.0.113.7'"),
	                 1);
	/* And it ends 15 minutes after the 20th failure. */
	assert_int_equal(check("ana@acme.test", "203.0.113.7", T0 + 19 + IDB_LOCKOUT_SECONDS, &retry), IDB_OK);
}

static void
nineteen_failures_from_one_address_do_not_lock_it(void **state)
{
	char email[64];
	long long retry;
	int i;

	(void)state;
	for (i = 0; i < IDB_THROTTLE_IP - 1; i++) {
		assert_in_range(snprintf(email, sizeof(email), "user%d@acme.test", i), 5, sizeof(email) - 1);
		assert_int_equal(idb_throttle_fail(W.db, email, "203.0.113.7", T0), IDB_OK);
	}
	assert_int_equal(check("someone@acme.test", "203.0.113.7", T0, &retry), IDB_OK);
	assert_int_equal(lockout_events("ip"), 0);
}

static void
failures_older_than_the_window_do_not_count(void **state)
{
	char email[64];
	long long retry;
	int i;

	(void)state;
	/* Four at T0; at T0 + 15 min they are out of the window: four more are still fine. */
	fail_n("ana@acme.test", "203.0.113.7", T0, IDB_THROTTLE_EMAIL - 1);
	fail_n("ana@acme.test", "203.0.113.7", T0 + IDB_THROTTLE_WINDOW, IDB_THROTTLE_EMAIL - 1);
	assert_int_equal(check("ana@acme.test", "203.0.113.7", T0 + IDB_THROTTLE_WINDOW, &retry), IDB_OK);
	/* One second before the window closes they still counted. */
	setup_shared(NULL);
	fail_n("ana@acme.test", "203.0.113.7", T0, IDB_THROTTLE_EMAIL - 1);
	fail_n("ana@acme.test", "203.0.113.7", T0 + IDB_THROTTLE_WINDOW - 1, 1);
	assert_int_equal(check("ana@acme.test", "203.0.113.7", T0 + IDB_THROTTLE_WINDOW - 1, &retry),
	                 IDB_E_TOO_MANY_REQUESTS);
	/* The same for an address. */
	setup_shared(NULL);
	for (i = 0; i < IDB_THROTTLE_IP; i++) {
		assert_in_range(snprintf(email, sizeof(email), "user%d@acme.test", i), 5, sizeof(email) - 1);
		assert_int_equal(idb_throttle_fail(W.db, email, "203.0.113.7", i == 0 ? T0 : T0 + IDB_THROTTLE_WINDOW),
		                 IDB_OK);
	}
	assert_int_equal(check("someone@acme.test", "203.0.113.7", T0 + IDB_THROTTLE_WINDOW, &retry), IDB_OK);
	assert_int_equal(lockout_events("ip"), 0);
}

static void
lockout_is_recorded_in_auth_events(void **state)
{
	sqlite3_stmt *st;

	(void)state;
	fail_n("ana@acme.test", "203.0.113.7", T0 + 5, IDB_THROTTLE_EMAIL);
	assert_int_equal(sqlite3_prepare_v2(W.db,
	                                    "SELECT at, email, ip, detail FROM auth_events WHERE kind = 'lockout'",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(st, 0), T0 + 5);
	assert_string_equal((const char *)sqlite3_column_text(st, 1), "ana@acme.test");
	assert_string_equal((const char *)sqlite3_column_text(st, 2), "203.0.113.7");
	assert_string_equal((const char *)sqlite3_column_text(st, 3), "email");
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	/* Every attempt is kept for the window. */
	assert_int_equal(int_of(W.db, "SELECT count(*) FROM login_attempts WHERE ok = 0"), IDB_THROTTLE_EMAIL);
}

static void
auth_event_is_recorded_as_given(void **state)
{
	sqlite3_stmt *st;

	(void)state;
	assert_int_equal(idb_auth_event(W.db, T0, "login", "ana@acme.test", "203.0.113.7", W.ana.id, "d"), IDB_OK);
	assert_int_equal(idb_auth_event(W.db, T0 + 1, "logout", NULL, NULL, NULL, NULL), IDB_OK);
	assert_int_equal(sqlite3_prepare_v2(W.db,
	                                    "SELECT at, kind, email, ip, user_id, detail FROM auth_events ORDER BY id",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(st, 0), T0);
	assert_string_equal((const char *)sqlite3_column_text(st, 1), "login");
	assert_string_equal((const char *)sqlite3_column_text(st, 4), W.ana.id);
	assert_string_equal((const char *)sqlite3_column_text(st, 5), "d");
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	/* Absent values are empty strings, never null. */
	assert_string_equal((const char *)sqlite3_column_text(st, 2), "");
	assert_string_equal((const char *)sqlite3_column_text(st, 3), "");
	assert_string_equal((const char *)sqlite3_column_text(st, 4), "");
	assert_string_equal((const char *)sqlite3_column_text(st, 5), "");
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

/* ---- recovery codes ---- */

static void
recovery_gives_ten_distinct_codes_of_the_agreed_shape(void **state)
{
	char codes[IDB_RECOVERY_CODES][IDB_RECOVERY_LEN + 1];
	int i, j;

	(void)state;
	assert_int_equal(idb_recovery_new(W.db, W.ana.id, codes), IDB_OK);
	for (i = 0; i < IDB_RECOVERY_CODES; i++) {
		assert_int_equal(strlen(codes[i]), 14);
		for (j = 0; j < 14; j++) {
			if (j == 4 || j == 9)
				assert_int_equal(codes[i][j], '-');
			else
				assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz0123456789", codes[i][j]));
		}
		for (j = 0; j < i; j++)
			assert_string_not_equal(codes[i], codes[j]);
	}
	assert_int_equal(int_of(W.db, "SELECT count(*) FROM recovery_codes"), IDB_RECOVERY_CODES);
}

static void
each_recovery_code_works_once(void **state)
{
	char codes[IDB_RECOVERY_CODES][IDB_RECOVERY_LEN + 1];
	int i;

	(void)state;
	assert_int_equal(idb_recovery_new(W.db, W.ana.id, codes), IDB_OK);
	for (i = 0; i < IDB_RECOVERY_CODES; i++) {
		assert_int_equal(idb_recovery_use(W.db, W.ana.id, codes[i], T0 + i), IDB_OK);
		assert_int_equal(idb_recovery_use(W.db, W.ana.id, codes[i], T0 + i), IDB_E_INVALID_CREDENTIALS);
	}
	/* All used: none works again. */
	for (i = 0; i < IDB_RECOVERY_CODES; i++)
		assert_int_equal(idb_recovery_use(W.db, W.ana.id, codes[i], T0 + 100), IDB_E_INVALID_CREDENTIALS);
	assert_int_equal(int_of(W.db, "SELECT count(*) FROM recovery_codes WHERE used_at IS NULL"), 0);
}

static void
recovery_code_ignores_case_dashes_and_spaces(void **state)
{
	char codes[IDB_RECOVERY_CODES][IDB_RECOVERY_LEN + 1], v[40];
	size_t i, n;

	(void)state;
	assert_int_equal(idb_recovery_new(W.db, W.ana.id, codes), IDB_OK);
	/* Upper case. */
	for (i = 0; i < 14; i++)
		v[i] = (char)((codes[0][i] >= 'a' && codes[0][i] <= 'z') ? codes[0][i] - 'a' + 'A' : codes[0][i]);
	v[14] = '\0';
	assert_int_equal(idb_recovery_use(W.db, W.ana.id, v, T0), IDB_OK);
	/* No dashes. */
	for (i = 0, n = 0; i < 14; i++)
		if (codes[1][i] != '-')
			v[n++] = codes[1][i];
	v[n] = '\0';
	assert_int_equal(idb_recovery_use(W.db, W.ana.id, v, T0), IDB_OK);
	/* Spaces for dashes, and the other way round with a dash too many. */
	assert_in_range(snprintf(v, sizeof(v), "%.4s %.4s %.4s", codes[2], codes[2] + 5, codes[2] + 10), 14, 14);
	assert_int_equal(idb_recovery_use(W.db, W.ana.id, v, T0), IDB_OK);
	assert_in_range(snprintf(v, sizeof(v), "%.4s--%.4s-%.4s", codes[3], codes[3] + 5, codes[3] + 10), 15, 15);
	assert_int_equal(idb_recovery_use(W.db, W.ana.id, v, T0), IDB_OK);
	/* And each of those is now used, however written. */
	assert_int_equal(idb_recovery_use(W.db, W.ana.id, codes[0], T0), IDB_E_INVALID_CREDENTIALS);
	assert_int_equal(idb_recovery_use(W.db, W.ana.id, codes[1], T0), IDB_E_INVALID_CREDENTIALS);
}

static void
unknown_or_malformed_recovery_code_is_refused(void **state)
{
	char codes[IDB_RECOVERY_CODES][IDB_RECOVERY_LEN + 1], bens[IDB_RECOVERY_CODES][IDB_RECOVERY_LEN + 1];
	char v[40];
	int i;

	(void)state;
	assert_int_equal(idb_recovery_new(W.db, W.ana.id, codes), IDB_OK);
	assert_int_equal(idb_recovery_new(W.db, W.ben.id, bens), IDB_OK);
	assert_int_equal(idb_recovery_use(W.db, W.ana.id, "abcd-efgh-jkmn", T0), IDB_E_INVALID_CREDENTIALS);
	assert_int_equal(idb_recovery_use(W.db, W.ana.id, "", T0), IDB_E_INVALID_CREDENTIALS);
	assert_int_equal(idb_recovery_use(W.db, W.ana.id, "----", T0), IDB_E_INVALID_CREDENTIALS);
	assert_int_equal(idb_recovery_use(W.db, W.ana.id, NULL, T0), IDB_E_INVALID_CREDENTIALS);
	/* A character too few or too many. */
	assert_in_range(snprintf(v, sizeof(v), "%.13s", codes[0]), 13, 13);
	assert_int_equal(idb_recovery_use(W.db, W.ana.id, v, T0), IDB_E_INVALID_CREDENTIALS);
	assert_in_range(snprintf(v, sizeof(v), "%sa", codes[0]), 15, 15);
	assert_int_equal(idb_recovery_use(W.db, W.ana.id, v, T0), IDB_E_INVALID_CREDENTIALS);
	/* Another user's code is not this user's. */
	for (i = 0; i < IDB_RECOVERY_CODES; i++)
		assert_int_equal(idb_recovery_use(W.db, W.ana.id, bens[i], T0), IDB_E_INVALID_CREDENTIALS);
	/* None of those refusals used anything up. */
	assert_int_equal(int_of(W.db, "SELECT count(*) FROM recovery_codes WHERE used_at IS NOT NULL"), 0);
	assert_int_equal(idb_recovery_use(W.db, W.ana.id, codes[0], T0), IDB_OK);
	assert_int_equal(idb_recovery_use(W.db, W.ben.id, bens[0], T0), IDB_OK);
}

static void
recovery_codes_are_stored_hashed(void **state)
{
	char codes[IDB_RECOVERY_CODES][IDB_RECOVERY_LEN + 1], norm[13];
	unsigned char h[32];
	sqlite3_stmt *st;
	int i, j, n, found;

	(void)state;
	assert_int_equal(idb_recovery_new(W.db, W.ana.id, codes), IDB_OK);
	for (i = 0; i < IDB_RECOVERY_CODES; i++) {
		assert_in_range(snprintf(norm, sizeof(norm), "%.4s%.4s%.4s", codes[i], codes[i] + 5, codes[i] + 10), 12,
		                12);
		crypto_hash_sha256(h, (const unsigned char *)norm, 12);
		assert_int_equal(sqlite3_prepare_v2(W.db, "SELECT * FROM recovery_codes", -1, &st, NULL), SQLITE_OK);
		found = 0;
		while (sqlite3_step(st) == SQLITE_ROW) {
			n = sqlite3_column_count(st);
			for (j = 0; j < n; j++) {
				const void *v = sqlite3_column_blob(st, j);
				size_t len = (size_t)sqlite3_column_bytes(st, j);

				if (v == NULL)
					continue;
				if (contains(v, len, codes[i], 14) || contains(v, len, norm, 12) ||
				    contains(v, len, codes[i], 4))
					fail_msg("recovery_codes.%s holds the code", sqlite3_column_name(st, j));
				if (strcmp(sqlite3_column_name(st, j), "code_hash") == 0 && len == 32 &&
				    memcmp(v, h, 32) == 0)
					found++;
			}
		}
		sqlite3_finalize(st);
		assert_int_equal(found, 1);
	}
}

static void
new_recovery_codes_replace_the_old_ones(void **state)
{
	char old[IDB_RECOVERY_CODES][IDB_RECOVERY_LEN + 1], codes[IDB_RECOVERY_CODES][IDB_RECOVERY_LEN + 1];
	int i;

	(void)state;
	assert_int_equal(idb_recovery_new(W.db, W.ana.id, old), IDB_OK);
	assert_int_equal(idb_recovery_new(W.db, W.ana.id, codes), IDB_OK);
	for (i = 0; i < IDB_RECOVERY_CODES; i++)
		assert_int_equal(idb_recovery_use(W.db, W.ana.id, old[i], T0), IDB_E_INVALID_CREDENTIALS);
	assert_int_equal(int_of(W.db, "SELECT count(*) FROM recovery_codes"), IDB_RECOVERY_CODES);
	assert_int_equal(idb_recovery_clear(W.db, W.ana.id), IDB_OK);
	assert_int_equal(idb_recovery_use(W.db, W.ana.id, codes[0], T0), IDB_E_INVALID_CREDENTIALS);
	assert_int_equal(int_of(W.db, "SELECT count(*) FROM recovery_codes"), 0);
}

/* ---- settings ---- */

static struct idb_settings *
load_from(sqlite3 *db)
{
	struct idb_settings *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	assert_int_equal(idb_settings_load(db, s), IDB_OK);
	return s;
}

static struct idb_settings *
load(void)
{
	return load_from(W.db);
}

static void
settings_load_gives_the_defaults(void **state)
{
	struct idb_org o;
	struct idb_settings *s;
	sqlite3 *db;

	(void)state;
	/* A fresh org, not the reset shared one. */
	db = new_org(&o);
	s = load_from(db);
	assert_string_equal(s->name, "Org S");
	assert_int_equal(s->require_mfa, 0);
	assert_string_equal(s->ip_allowlist, "");
	assert_int_equal(s->ips.n, 0);
	assert_int_equal(s->idle_minutes, 30);
	assert_int_equal(s->notify_sysadmin_access, 1);
	assert_string_equal(s->notify_updates, "after");
	assert_int_equal(s->google, 0);
	assert_int_equal(s->microsoft, 0);
	assert_int_equal(s->version, 1);
	free(s);
	idb_db_close(db);
}

static void
settings_save_writes_and_bumps_the_version(void **state)
{
	struct idb_settings *s = load(), *t;

	(void)state;
	memcpy(s->name, "Acme Immigration LLP", sizeof("Acme Immigration LLP"));
	s->require_mfa = 1;
	s->idle_minutes = 45;
	s->notify_sysadmin_access = 0;
	memcpy(s->notify_updates, "before", sizeof("before"));
	s->google = 1;
	assert_int_equal(idb_settings_set_allowlist(s, "203.0.113.0/24"), IDB_OK);
	assert_int_equal(idb_settings_save(W.db, s), IDB_OK);
	assert_int_equal(s->version, 2);
	t = load();
	assert_string_equal(t->name, "Acme Immigration LLP");
	assert_int_equal(t->require_mfa, 1);
	assert_int_equal(t->idle_minutes, 45);
	assert_int_equal(t->notify_sysadmin_access, 0);
	assert_string_equal(t->notify_updates, "before");
	assert_int_equal(t->google, 1);
	assert_int_equal(t->microsoft, 0);
	assert_string_equal(t->ip_allowlist, "203.0.113.0/24");
	assert_int_equal(t->ips.n, 1);
	assert_int_equal(t->version, 2);
	/* And again from the new version. */
	assert_int_equal(idb_settings_save(W.db, t), IDB_OK);
	assert_int_equal(t->version, 3);
	free(s);
	free(t);
}

static void
settings_save_with_a_stale_version_is_a_conflict(void **state)
{
	struct idb_settings *a = load(), *b = load(), *c;

	(void)state;
	a->require_mfa = 1;
	assert_int_equal(idb_settings_save(W.db, a), IDB_OK);
	/* b was loaded before a's save. */
	b->idle_minutes = 5;
	assert_int_equal(idb_settings_save(W.db, b), IDB_E_CONFLICT);
	assert_int_equal(b->version, 1);
	b->version = 99;
	assert_int_equal(idb_settings_save(W.db, b), IDB_E_CONFLICT);
	assert_int_equal(b->version, 99);
	c = load();
	assert_int_equal(c->idle_minutes, 30);
	assert_int_equal(c->require_mfa, 1);
	assert_int_equal(c->version, 2);
	free(a);
	free(b);
	free(c);
}

static void
allowlist_is_normalised_to_comma_separated_entries(void **state)
{
	struct idb_settings *s = load(), *t;
	cJSON *j;
	const cJSON *list;

	(void)state;
	assert_int_equal(idb_settings_set_allowlist(s, "  203.0.113.0/24,2001:db8::/32 \t10.0.0.1 ,, "), IDB_OK);
	assert_string_equal(s->ip_allowlist, "203.0.113.0/24, 2001:db8::/32, 10.0.0.1");
	assert_int_equal(s->ips.n, 3);
	assert_int_equal(idb_settings_save(W.db, s), IDB_OK);
	t = load();
	assert_string_equal(t->ip_allowlist, "203.0.113.0/24, 2001:db8::/32, 10.0.0.1");
	assert_int_equal(t->ips.n, 3);
	j = idb_settings_json(t);
	assert_non_null(j);
	list = cJSON_GetObjectItemCaseSensitive(j, "ip_allowlist");
	assert_true(cJSON_IsArray(list));
	assert_int_equal(cJSON_GetArraySize(list), 3);
	assert_string_equal(cJSON_GetArrayItem(list, 0)->valuestring, "203.0.113.0/24");
	assert_string_equal(cJSON_GetArrayItem(list, 1)->valuestring, "2001:db8::/32");
	assert_string_equal(cJSON_GetArrayItem(list, 2)->valuestring, "10.0.0.1");
	cJSON_Delete(j);
	free(s);
	free(t);
}

static void
malformed_allowlist_is_refused_and_keeps_the_old_list(void **state)
{
	static const char *const bad[] = {
	    "300.0.0.1", "10.0.0.1/8", "10.0.0.0/33", "2001:db8::/129", "2001:db8::1/32", "abc", "10.0.0.0/",
	    "/24",       "10.0.0.0/-1", "10.0.0.0/2a", "10.0.0.0/1234", "203.0.113.0/24, nope", "1.2.3",
	    "2001:db8:::1", "10.0.0.0/24/24", "fe80::1%eth0",
	};
	struct idb_settings *s = load();
	char many[IDB_CIDR_MAX * 16 + 64];
	size_t i, used = 0;
	int n;

	(void)state;
	assert_int_equal(idb_settings_set_allowlist(s, "198.51.100.0/24"), IDB_OK);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (idb_settings_set_allowlist(s, bad[i]) != IDB_E_VALIDATION)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_string_equal(s->ip_allowlist, "198.51.100.0/24");
		assert_int_equal(s->ips.n, 1);
	}
	/* More entries than a list holds. */
	for (i = 0; i <= IDB_CIDR_MAX; i++) {
		n = snprintf(many + used, sizeof(many) - used, "10.%zu.%zu.1 ", i / 256, i % 256);
		assert_in_range(n, 1, sizeof(many) - used - 1);
		used += (size_t)n;
	}
	assert_int_equal(idb_settings_set_allowlist(s, many), IDB_E_VALIDATION);
	assert_int_equal(s->ips.n, 1);
	free(s);
}

static void
empty_allowlist_allows_every_address(void **state)
{
	struct idb_settings *s = load();

	(void)state;
	assert_int_equal(idb_settings_set_allowlist(s, "203.0.113.0/24"), IDB_OK);
	assert_int_equal(idb_settings_set_allowlist(s, ""), IDB_OK);
	assert_string_equal(s->ip_allowlist, "");
	assert_int_equal(s->ips.n, 0);
	assert_true(idb_settings_ip_allowed(s, "203.0.113.7"));
	assert_true(idb_settings_ip_allowed(s, "2001:db8::1"));
	assert_true(idb_settings_ip_allowed(s, "::ffff:198.51.100.1"));
	assert_int_equal(idb_settings_set_allowlist(s, " , \t,"), IDB_OK);
	assert_int_equal(s->ips.n, 0);
	assert_true(idb_settings_ip_allowed(s, "192.0.2.1"));
	free(s);
}

static void
allowlist_matches_ipv4_ipv6_and_ipv4_mapped_addresses(void **state)
{
	static const char *const in[] = {"203.0.113.7",  "203.0.113.0",      "203.0.113.255", "::ffff:203.0.113.7",
	                                 "2001:db8::1",  "2001:DB8:ffff::1", "2001:db8::",    "192.0.2.1",
	                                 "::ffff:192.0.2.1"};
	static const char *const out[] = {"203.0.114.1",      "203.0.112.255", "::ffff:203.0.114.1", "2001:db9::1",
	                                  "2001:db7:ffff::1", "::1",           "127.0.0.1",          "192.0.2.2",
	                                  "::203.0.113.7",    "",              "not an address",     "203.0.113.7/32"};
	struct idb_settings *s = load();
	size_t i;

	(void)state;
	/* A bare address is a /32 (or /128). */
	assert_int_equal(idb_settings_set_allowlist(s, "203.0.113.0/24, 2001:db8::/32, 192.0.2.1"), IDB_OK);
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		if (!idb_settings_ip_allowed(s, in[i]))
			fail_msg("%s refused", in[i]);
	for (i = 0; i < sizeof(out) / sizeof(out[0]); i++)
		if (idb_settings_ip_allowed(s, out[i]))
			fail_msg("%s allowed", out[i]);
	/* A range written as IPv4-mapped IPv6 matches plain IPv4 addresses. */
	assert_int_equal(idb_settings_set_allowlist(s, "::ffff:198.51.100.0/120, 2001:db8::5"), IDB_OK);
	assert_true(idb_settings_ip_allowed(s, "198.51.100.9"));
	assert_false(idb_settings_ip_allowed(s, "198.51.101.9"));
	assert_true(idb_settings_ip_allowed(s, "2001:db8::5"));
	assert_false(idb_settings_ip_allowed(s, "2001:db8::6"));
	free(s);
}

static void
settings_json_has_the_api_shape(void **state)
{
	static const char *const keys[] = {"name", "require_mfa", "ip_allowlist", "session_idle_minutes",
	                                   "notify_sysadmin_access", "notify_updates", "integrations", "version"};
	struct idb_settings *s = load();
	const cJSON *it, *integ;
	cJSON *j;
	size_t i;
	int n = 0;

	(void)state;
	s->microsoft = 1;
	j = idb_settings_json(s);
	assert_non_null(j);
	cJSON_ArrayForEach(it, j) n++;
	assert_int_equal(n, (int)(sizeof(keys) / sizeof(keys[0])));
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_non_null(cJSON_GetObjectItemCaseSensitive(j, keys[i]));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "name")->valuestring, "Org S");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "require_mfa")));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "ip_allowlist")), 0);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "session_idle_minutes")->valueint, 30);
	integ = cJSON_GetObjectItemCaseSensitive(j, "integrations");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(integ, "google")));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(integ, "microsoft")));
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "version")->valueint, 1);
	cJSON_Delete(j);
	free(s);
}

/* ---- users ---- */

static void
only_active_admin_cannot_be_demoted_or_disabled(void **state)
{
	struct ufx *f = *state;
	struct idb_user a, m, u;

	new_user(f->db, "ana@acme.test", "admin", &a);
	new_user(f->db, "max@acme.test", "member", &m);
	assert_int_equal(idb_user_update(f->db, a.id, a.version, NULL, "member", -1, &u), IDB_E_WOULD_LOCK_OUT);
	assert_int_equal(idb_user_update(f->db, a.id, a.version, NULL, "readonly", -1, &u), IDB_E_WOULD_LOCK_OUT);
	assert_int_equal(idb_user_update(f->db, a.id, a.version, NULL, NULL, 1, &u), IDB_E_WOULD_LOCK_OUT);
	assert_int_equal(idb_user_update(f->db, a.id, a.version, NULL, "member", 1, &u), IDB_E_WOULD_LOCK_OUT);
	/* Nothing changed. */
	assert_int_equal(idb_user_get(f->db, a.id, &u), IDB_OK);
	assert_string_equal(u.role, "admin");
	assert_int_equal(u.disabled, 0);
	assert_int_equal(u.version, 1);
	/* Changes that keep the admin active are fine, and so are other users'. */
	assert_int_equal(idb_user_update(f->db, a.id, 1, "Ana Admin", "admin", 0, &u), IDB_OK);
	assert_string_equal(u.name, "Ana Admin");
	assert_int_equal(u.version, 2);
	assert_int_equal(idb_user_update(f->db, m.id, 1, NULL, "readonly", 1, &u), IDB_OK);
	assert_string_equal(u.role, "readonly");
	assert_int_equal(u.disabled, 1);
}

static void
admin_can_be_demoted_while_another_active_admin_exists(void **state)
{
	struct ufx *f = *state;
	struct idb_user a, b, u;

	new_user(f->db, "ana@acme.test", "admin", &a);
	new_user(f->db, "bo@acme.test", "admin", &b);
	assert_int_equal(idb_user_update(f->db, a.id, 1, NULL, "member", -1, &u), IDB_OK);
	assert_string_equal(u.role, "member");
	assert_int_equal(u.version, 2);
	/* Now bo is the last one. */
	assert_int_equal(idb_user_update(f->db, b.id, 1, NULL, "member", -1, &u), IDB_E_WOULD_LOCK_OUT);
	assert_int_equal(idb_user_update(f->db, b.id, 1, NULL, NULL, 1, &u), IDB_E_WOULD_LOCK_OUT);
	/* Promote ana again, then bo may be disabled. */
	assert_int_equal(idb_user_update(f->db, a.id, 2, NULL, "admin", -1, &u), IDB_OK);
	assert_int_equal(idb_user_update(f->db, b.id, 1, NULL, NULL, 1, &u), IDB_OK);
	assert_int_equal(u.disabled, 1);
	assert_string_equal(u.role, "admin");
}

static void
disabled_admin_does_not_count_as_active(void **state)
{
	struct ufx *f = *state;
	struct idb_user a, b, u;

	new_user(f->db, "ana@acme.test", "admin", &a);
	new_user(f->db, "bo@acme.test", "admin", &b);
	assert_int_equal(idb_user_update(f->db, b.id, 1, NULL, NULL, 1, &u), IDB_OK);
	assert_int_equal(idb_user_update(f->db, a.id, 1, NULL, "member", -1, &u), IDB_E_WOULD_LOCK_OUT);
	assert_int_equal(idb_user_update(f->db, a.id, 1, NULL, NULL, 1, &u), IDB_E_WOULD_LOCK_OUT);
	/* A disabled admin may be changed freely: it is not the one keeping the org open. */
	assert_int_equal(idb_user_update(f->db, b.id, 2, NULL, "member", -1, &u), IDB_OK);
	assert_int_equal(idb_user_update(f->db, b.id, 3, NULL, "admin", 0, &u), IDB_OK);
	/* Re-enabled, bo counts again. */
	assert_int_equal(idb_user_update(f->db, a.id, 1, NULL, "member", -1, &u), IDB_OK);
}

static void
update_with_a_stale_version_is_a_conflict(void **state)
{
	struct ufx *f = *state;
	struct idb_user a, u;

	new_user(f->db, "ana@acme.test", "admin", &a);
	assert_int_equal(idb_user_update(f->db, a.id, 1, "First", NULL, -1, &u), IDB_OK);
	assert_int_equal(u.version, 2);
	assert_int_equal(idb_user_update(f->db, a.id, 1, "Second", NULL, -1, &u), IDB_E_CONFLICT);
	assert_int_equal(idb_user_update(f->db, a.id, 3, "Second", NULL, -1, &u), IDB_E_CONFLICT);
	assert_int_equal(idb_user_update(f->db, a.id, 0, "Second", NULL, -1, &u), IDB_E_CONFLICT);
	assert_int_equal(idb_user_get(f->db, a.id, &u), IDB_OK);
	assert_string_equal(u.name, "First");
	assert_int_equal(u.version, 2);
	assert_int_equal(idb_user_update(f->db, "u_00000000000000000000000000000000", 1, "X", NULL, -1, &u),
	                 IDB_E_NOT_FOUND);
}

static void
user_json_has_the_api_fields_and_no_secrets(void **state)
{
	static const char *const keys[] = {"id", "email", "name", "role", "mfa_enabled", "disabled", "created_at",
	                                   "version"};
	struct ufx *f = *state;
	struct idb_user a, u;
	char hash[128];
	const cJSON *it;
	cJSON *j;
	char *text;
	size_t i;
	int n = 0;

	new_user(f->db, "ana@acme.test", "admin", &a);
	assert_int_equal(idb_user_totp_set(f->db, a.id, (const unsigned char *)"SECRETSECRET", 12, 1, 4242), IDB_OK);
	assert_int_equal(idb_user_get(f->db, a.id, &u), IDB_OK);
	assert_int_equal(u.mfa_enabled, 1);
	assert_int_equal(idb_user_hash(f->db, a.id, hash), IDB_OK);
	assert_non_null(j = idb_user_json(&u));
	cJSON_ArrayForEach(it, j) n++;
	assert_int_equal(n, (int)(sizeof(keys) / sizeof(keys[0])));
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_non_null(cJSON_GetObjectItemCaseSensitive(j, keys[i]));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "id")->valuestring, a.id);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "email")->valuestring, "ana@acme.test");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "role")->valuestring, "admin");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "mfa_enabled")));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "disabled")));
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "version")->valueint, u.version);
	assert_non_null(text = cJSON_PrintUnformatted(j));
	assert_null(strstr(text, "argon2"));
	assert_null(strstr(text, hash));
	assert_null(strstr(text, "SECRET"));
	assert_null(strstr(text, "4242"));
	assert_null(strstr(text, "password"));
	assert_null(strstr(text, "totp"));
	cJSON_free(text);
	cJSON_Delete(j);
}

static void
create_refuses_bad_input_naming_the_field(void **state)
{
	static const struct {
		const char *email, *name, *role, *pw, *field;
	} bad[] = {
	    {"not-an-email", "N", "member", PASSWORD, "email"},
	    {"a@b", "N", "member", PASSWORD, "email"},
	    {"a b@acme.test", "N", "member", PASSWORD, "email"},
	    {"a@b@acme.test", "N", "member", PASSWORD, "email"},
	    {"ok@acme.test", "", "member", PASSWORD, "name"},
	    {"ok@acme.test", "tab\there", "member", PASSWORD, "name"},
	    {"ok@acme.test", "N", "owner", PASSWORD, "role"},
	    {"ok@acme.test", "N", "Admin", PASSWORD, "role"},
	    {"ok@acme.test", "N", "member", "elevenchars", "password"},
	    {"ok@acme.test", "N", "member", "", "password"},
	};
	struct ufx *f = *state;
	struct idb_user u;
	const char *field;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		field = NULL;
		assert_int_equal(idb_user_create(f->db, bad[i].email, bad[i].name, bad[i].role, bad[i].pw, &u, &field),
		                 IDB_E_VALIDATION);
		assert_non_null(field);
		assert_string_equal(field, bad[i].field);
	}
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM users"), 0);
}

static void
create_refuses_an_email_taken_in_any_case(void **state)
{
	struct ufx *f = *state;
	struct idb_user a, u;
	const char *field = NULL;

	new_user(f->db, "ana@acme.test", "admin", &a);
	assert_int_equal(idb_user_create(f->db, "ANA@Acme.Test", "Other", "member", PASSWORD, &u, &field),
	                 IDB_E_CONFLICT);
	assert_non_null(field);
	assert_string_equal(field, "email");
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM users"), 1);
}

/*
 * idb_user_name_valid counts characters as bytes that do not continue a
 * UTF-8 sequence and does not check the UTF-8 itself ("checked by the
 * JSON/CLI layer" - but immidb-admin user add passes --name unchecked). A
 * name of one lead byte followed by 1000 continuation bytes is "1
 * character", and idb_user_create copies its 1002 bytes into the 801-byte
 * struct idb_user.name. Done in a child with its own connection, so an
 * overflow cannot take this program down with it.
 */
static void
create_refuses_a_name_too_long_in_bytes_for_the_record(void **state)
{
	struct ufx *f = *state;
	struct idb_org_keys k;
	char name[1003];
	int status;
	pid_t pid;

	name[0] = 'a';
	memset(name + 1, 0x80, sizeof(name) - 2);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(idb_reg_org_keys(W.reg, W.master, f->org.id, &k), IDB_OK);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct idb_user *u = malloc(sizeof(*u));
		const char *field = NULL;
		sqlite3 *db = NULL;
		enum idb_err e = IDB_E_INTERNAL;

		if (u != NULL && idb_org_open(&W.conf, f->org.id, &k, 0, &db) == IDB_OK)
			e = idb_user_create(db, "long@acme.test", name, "member", PASSWORD, u, &field);
		if (e != IDB_E_VALIDATION || field == NULL || strcmp(field, "name") != 0)
			fprintf(stderr, "idb_user_create with a %zu-byte name: %s (field %s)\n", strlen(name),
			        idb_err_str(e), field ? field : "none");
		_exit(e == IDB_E_VALIDATION && field != NULL && strcmp(field, "name") == 0 ? 0 : 1);
	}
	idb_org_keys_wipe(&k);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

#define S(fn) cmocka_unit_test_setup(fn, setup_shared)
#define U(fn) cmocka_unit_test_setup_teardown(fn, setup_org, teardown_org)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    /* sessions */
	    S(token_is_43_base64url_characters_of_32_random_bytes),
	    S(session_token_is_the_org_id_a_dot_and_43_random_characters),
	    S(session_token_names_its_org),
	    S(session_of_a_malformed_org_id_is_not_created),
	    S(session_of_an_unknown_user_is_not_created),
	    S(token_hash_is_sha256_of_the_token_text),
	    S(created_session_is_found_by_its_token),
	    S(pending_second_factor_is_kept_with_the_session),
	    S(two_sessions_have_different_tokens_and_csrf),
	    S(session_table_stores_only_the_sha256_of_the_token),
	    S(unknown_or_malformed_token_finds_nothing),
	    S(session_idle_up_to_the_limit_is_kept),
	    S(session_idle_past_the_limit_ends_and_is_deleted),
	    S(session_ends_twelve_hours_after_login_however_used),
	    S(last_seen_is_written_only_after_the_touch_interval),
	    S(deleting_a_session_ends_only_that_one),
	    S(ending_a_users_sessions_keeps_only_the_kept_one),
	    /* throttle */
	    S(four_failures_do_not_lock_the_email),
	    S(fifth_failure_locks_the_email_for_fifteen_minutes),
	    S(lockout_ends_after_fifteen_minutes),
	    S(failures_with_differently_cased_email_count_together),
	    S(success_resets_the_email_count),
	    S(success_resets_failures_earlier_in_the_same_second),
	    S(twenty_failures_from_one_address_lock_it_but_not_another),
	    S(nineteen_failures_from_one_address_do_not_lock_it),
	    S(failures_older_than_the_window_do_not_count),
	    S(lockout_is_recorded_in_auth_events),
	    S(auth_event_is_recorded_as_given),
	    /* recovery codes */
	    S(recovery_gives_ten_distinct_codes_of_the_agreed_shape),
	    S(each_recovery_code_works_once),
	    S(recovery_code_ignores_case_dashes_and_spaces),
	    S(unknown_or_malformed_recovery_code_is_refused),
	    S(recovery_codes_are_stored_hashed),
	    S(new_recovery_codes_replace_the_old_ones),
	    /* settings */
	    S(settings_load_gives_the_defaults),
	    S(settings_save_writes_and_bumps_the_version),
	    S(settings_save_with_a_stale_version_is_a_conflict),
	    S(allowlist_is_normalised_to_comma_separated_entries),
	    S(malformed_allowlist_is_refused_and_keeps_the_old_list),
	    S(empty_allowlist_allows_every_address),
	    S(allowlist_matches_ipv4_ipv6_and_ipv4_mapped_addresses),
	    S(settings_json_has_the_api_shape),
	    /* users */
	    U(only_active_admin_cannot_be_demoted_or_disabled),
	    U(admin_can_be_demoted_while_another_active_admin_exists),
	    U(disabled_admin_does_not_count_as_active),
	    U(update_with_a_stale_version_is_a_conflict),
	    U(user_json_has_the_api_fields_and_no_secrets),
	    U(create_refuses_bad_input_naming_the_field),
	    U(create_refuses_an_email_taken_in_any_case),
	    U(create_refuses_a_name_too_long_in_bytes_for_the_record),
	};

	return cmocka_run_group_tests_name("auth", tests, group_setup, group_teardown);
}
