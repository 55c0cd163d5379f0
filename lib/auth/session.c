/* SPDX-License-Identifier: ISC */
/* Sessions, the login throttle, recovery codes and authentication events. */
#include "auth/auth.h"

#include "audit/accesslog.h"
#include "crypto/sha256.h"
#include "outbox/outbox.h"
#include "store/db.h"
#include "store/memo.h"

#include <string.h>
#include <sodium.h>

static const char sql_sess_insert[] =
    "INSERT INTO sessions (token_hash, user_id, csrf_token, mfa_pending, created_at, last_seen, expires_at, ip)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
static const char sql_sess_find[] =
    "SELECT user_id, csrf_token, mfa_pending, created_at, last_seen, expires_at FROM sessions WHERE token_hash = ?";
static const char sql_sess_touch[] = "UPDATE sessions SET last_seen = ? WHERE token_hash = ?";
static const char sql_sess_delete[] = "DELETE FROM sessions WHERE token_hash = ?";
static const char sql_sess_end_user[] = "DELETE FROM sessions WHERE user_id = ? AND token_hash IS NOT ?";
static const char sql_lock_find[] =
    "SELECT max(until) FROM lockouts WHERE ((kind = 'email' AND subject = ?) OR (kind = 'ip' AND subject = ?))"
    " AND until > ?";
static const char sql_attempt[] = "INSERT INTO login_attempts (at, email, ip, ok) VALUES (?, ?, ?, ?)";
/* Failures in the window after the email's last success (by insertion order: same-second safe). */
static const char sql_fail_email[] =
    "SELECT count(*) FROM login_attempts WHERE email = ?1 AND ok = 0 AND at > ?2"
    " AND id > coalesce((SELECT max(id) FROM login_attempts WHERE email = ?1 AND ok = 1), 0)";
static const char sql_fail_ip[] = "SELECT count(*) FROM login_attempts WHERE ip = ? AND ok = 0 AND at > ?";
static const char sql_lock_set[] = "INSERT OR REPLACE INTO lockouts (kind, subject, until) VALUES (?, ?, ?)";
static const char sql_event[] =
    "INSERT INTO auth_events (at, kind, email, ip, user_id, detail) VALUES (?, ?, ?, ?, ?, ?)";
static const char sql_rc_clear[] = "DELETE FROM recovery_codes WHERE user_id = ?";
static const char sql_rc_insert[] = "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)";
static const char sql_rc_use[] =
    "UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL";

void
idb_token_new(char out[IDB_TOKEN_LEN + 1])
{
	unsigned char r[32];

	randombytes_buf(r, sizeof(r));
	sodium_bin2base64(out, IDB_TOKEN_LEN + 1, r, sizeof(r), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(r, sizeof(r));
}

void
idb_token_hash(const char *token, unsigned char out[32])
{
	idb_sha256(token, strlen(token), out);
}

static enum idb_err
done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? IDB_OK : rc == SQLITE_CONSTRAINT ? IDB_E_CONFLICT : IDB_E_DB;
}

static int
prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : -1;
}

int
idb_session_token_org(const char *token, const char *org_id)
{
	if (token == NULL || strlen(token) != IDB_SESSION_TOKEN_LEN || token[IDB_ID_LEN] != '.' ||
	    token[0] != 'o' || token[1] != '_')
		return -1;
	return memcmp(token, org_id, IDB_ID_LEN) == 0 ? 1 : 0;
}

enum idb_err
idb_session_create(sqlite3 *db, const char *org_id, const char *user_id, const char *ip, int mfa_pending,
                   time_t now, char token[IDB_SESSION_TOKEN_LEN + 1], struct idb_session *s)
{
	sqlite3_stmt *st;

	memset(s, 0, sizeof(*s));
	if (strlen(org_id) != IDB_ID_LEN)
		return IDB_E_INTERNAL;
	memcpy(token, org_id, IDB_ID_LEN);
	token[IDB_ID_LEN] = '.';
	idb_token_new(token + IDB_ID_LEN + 1);
	idb_token_new(s->csrf);
	idb_token_hash(token, s->hash);
	memcpy(s->user_id, user_id, strlen(user_id) + 1);
	s->mfa_pending = mfa_pending;
	s->created_at = s->last_seen = (long long)now;
	s->expires_at = (long long)now + IDB_SESSION_ABSOLUTE;
	if (prep(db, sql_sess_insert, &st) != 0)
		return IDB_E_DB;
	sqlite3_bind_blob(st, 1, s->hash, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, user_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, s->csrf, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, mfa_pending ? 1 : 0);
	sqlite3_bind_int64(st, 5, s->created_at);
	sqlite3_bind_int64(st, 6, s->last_seen);
	sqlite3_bind_int64(st, 7, s->expires_at);
	sqlite3_bind_text(st, 8, ip ? ip : "", -1, SQLITE_STATIC);
	return done(st);
}

enum idb_err
idb_session_find(sqlite3 *db, const char *token, time_t now, long long idle_minutes, struct idb_session *s)
{
	sqlite3_stmt *st;
	const unsigned char *t;
	const void *m;
	enum idb_err e = IDB_OK;
	size_t n;
	int rc;

	memset(s, 0, sizeof(*s));
	if (token == NULL || strlen(token) != IDB_SESSION_TOKEN_LEN)
		return IDB_E_UNAUTHENTICATED;
	idb_token_hash(token, s->hash);
	if ((m = idb_memo_get(db, IDB_MEMO_SESSION, s->hash, 32, &n)) != NULL && n == sizeof(*s)) {
		memcpy(s, m, n);
		goto check;
	}
	if (idb_db_cached(db, sql_sess_find, &st) != IDB_OK)
		return IDB_E_DB;
	sqlite3_bind_blob(st, 1, s->hash, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		t = sqlite3_column_text(st, 0);
		if (t != NULL && strlen((const char *)t) <= IDB_ID_LEN)
			memcpy(s->user_id, t, strlen((const char *)t) + 1);
		t = sqlite3_column_text(st, 1);
		if (t != NULL && strlen((const char *)t) <= IDB_TOKEN_LEN)
			memcpy(s->csrf, t, strlen((const char *)t) + 1);
		s->mfa_pending = sqlite3_column_int(st, 2);
		s->created_at = sqlite3_column_int64(st, 3);
		s->last_seen = sqlite3_column_int64(st, 4);
		s->expires_at = sqlite3_column_int64(st, 5);
	} else
		e = rc == SQLITE_DONE ? IDB_E_UNAUTHENTICATED : IDB_E_DB;
	idb_db_done(st);
	if (e != IDB_OK)
		return e;
	idb_memo_put(db, IDB_MEMO_SESSION, s->hash, 32, s, sizeof(*s));
check:
	if ((long long)now >= s->expires_at || (long long)now - s->last_seen > idle_minutes * 60) {
		idb_session_delete(db, s->hash);
		return IDB_E_UNAUTHENTICATED;
	}
	if ((long long)now - s->last_seen >= IDB_SESSION_TOUCH) {
		idb_db_read_end(db);
		if (prep(db, sql_sess_touch, &st) != 0)
			return IDB_E_DB;
		sqlite3_bind_int64(st, 1, (long long)now);
		sqlite3_bind_blob(st, 2, s->hash, 32, SQLITE_STATIC);
		if ((e = done(st)) != IDB_OK)
			return e;
		s->last_seen = (long long)now;
	}
	return IDB_OK;
}

enum idb_err
idb_session_delete(sqlite3 *db, const unsigned char hash[32])
{
	sqlite3_stmt *st;

	idb_db_read_end(db); /* a write: outside the request's read transaction */
	if (prep(db, sql_sess_delete, &st) != 0)
		return IDB_E_DB;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	return done(st);
}

enum idb_err
idb_session_end_user(sqlite3 *db, const char *user_id, const unsigned char *keep)
{
	sqlite3_stmt *st;

	if (prep(db, sql_sess_end_user, &st) != 0)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
	if (keep != NULL)
		sqlite3_bind_blob(st, 2, keep, 32, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	return done(st);
}

enum idb_err
idb_throttle_check(sqlite3 *db, const char *email, const char *ip, time_t now, long long *retry_after)
{
	sqlite3_stmt *st;
	enum idb_err e = IDB_OK;

	*retry_after = 0;
	if (prep(db, sql_lock_find, &st) != 0)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, email ? email : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ip ? ip : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (long long)now);
	if (sqlite3_step(st) != SQLITE_ROW)
		e = IDB_E_DB;
	else if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*retry_after = sqlite3_column_int64(st, 0) - (long long)now;
		if (*retry_after < 1)
			*retry_after = 1;
		e = IDB_E_TOO_MANY_REQUESTS;
	}
	sqlite3_finalize(st);
	return e;
}

static enum idb_err
attempt(sqlite3 *db, const char *email, const char *ip, time_t now, int ok)
{
	sqlite3_stmt *st;

	if (prep(db, sql_attempt, &st) != 0)
		return IDB_E_DB;
	sqlite3_bind_int64(st, 1, (long long)now);
	sqlite3_bind_text(st, 2, email ? email : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, ip ? ip : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, ok);
	return done(st);
}

static long long
count(sqlite3 *db, const char *sql, const char *subject, time_t since)
{
	sqlite3_stmt *st;
	long long n = -1;

	if (prep(db, sql, &st) != 0)
		return -1;
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (long long)since);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static enum idb_err
lock(sqlite3 *db, const char *kind, const char *subject, const char *email, const char *ip, time_t now)
{
	sqlite3_stmt *st;
	enum idb_err e;

	if (prep(db, sql_lock_set, &st) != 0)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, subject, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (long long)now + IDB_LOCKOUT_SECONDS);
	if ((e = done(st)) != IDB_OK)
		return e;
	if (!sqlite3_get_autocommit(db)) {
		char body[1024];

		(void)snprintf(body, sizeof(body),
		         "Log in to ImmiDB was locked for 15 minutes after repeated failures.\r\n\r\nLocked: %s %.300s\r\n"
		         "Email tried: %.254s\r\nFrom address: %.64s",
		         kind, subject, email ? email : "", ip ? ip : "");
		if ((e = idb_outbox_queue(db, "lockout", subject, "A login was locked out", body)) != IDB_OK)
			return e;
	}
	return idb_auth_event(db, now, "lockout", email, ip, "", kind);
}

enum idb_err
idb_throttle_fail(sqlite3 *db, const char *email, const char *ip, time_t now)
{
	long long n;
	enum idb_err e;

	if ((e = attempt(db, email, ip, now, 0)) != IDB_OK)
		return e;
	if (email != NULL && *email != '\0') {
		n = count(db, sql_fail_email, email, now - IDB_THROTTLE_WINDOW);
		if (n < 0)
			return IDB_E_DB;
		if (n >= IDB_THROTTLE_EMAIL && (e = lock(db, "email", email, email, ip, now)) != IDB_OK)
			return e;
	}
	n = count(db, sql_fail_ip, ip ? ip : "", now - IDB_THROTTLE_WINDOW);
	if (n < 0)
		return IDB_E_DB;
	if (n >= IDB_THROTTLE_IP && (e = lock(db, "ip", ip ? ip : "", email, ip, now)) != IDB_OK)
		return e;
	return IDB_OK;
}

enum idb_err
idb_throttle_ok(sqlite3 *db, const char *email, const char *ip, time_t now)
{
	return attempt(db, email, ip, now, 1);
}

/*
 * Authentication events that belong in the access log, and how: the one
 * place where they are routed there (the route-level entries of the
 * application cover user and settings changes, so those are not repeated).
 */
static const struct {
	const char *kind, *action, *outcome;
	int anonymous;
} to_log[] = {
	{"login", "session.login", "ok", 0},
	{"login_password", "session.login", "ok", 0},
	{"login_failed", "session.login_failed", "failed", 1},
	{"lockout", "session.lockout", "denied", 1},
	{"logout", "session.logout", "ok", 0},
	{"mfa_failed", "session.mfa", "failed", 0},
};

static enum idb_err
log_event(sqlite3 *db, const char *kind, const char *email, const char *ip, const char *user_id, const char *detail)
{
	struct idb_log_entry le;
	size_t i;

	for (i = 0; i < sizeof(to_log) / sizeof(to_log[0]); i++) {
		if (strcmp(to_log[i].kind, kind) != 0)
			continue;
		memset(&le, 0, sizeof(le));
		le.actor_kind = to_log[i].anonymous || user_id == NULL || *user_id == '\0' ? "anonymous" : "user";
		le.actor_id = to_log[i].anonymous ? "" : user_id;
		le.actor_email = email;
		le.via = "app";
		le.ip = ip;
		/* A login completed by the second factor is the "session.mfa" entry. */
		le.action = strcmp(kind, "login") == 0 && detail != NULL && strncmp(detail, "mfa=", 4) == 0
		                ? "session.mfa"
		                : to_log[i].action;
		le.target = "session";
		le.outcome = to_log[i].outcome;
		le.detail = strcmp(kind, "login_password") == 0 ? "second factor pending" : detail;
		return idb_log_append(db, &le);
	}
	return IDB_OK;
}

enum idb_err
idb_auth_event(sqlite3 *db, time_t now, const char *kind, const char *email, const char *ip, const char *user_id,
               const char *detail)
{
	sqlite3_stmt *st;
	enum idb_err e;

	/* Outside a transaction (immidb-admin) there is no action to chain the entry to. */
	if (!sqlite3_get_autocommit(db) && (e = log_event(db, kind, email, ip, user_id, detail)) != IDB_OK)
		return e;

	if (prep(db, sql_event, &st) != 0)
		return IDB_E_DB;
	sqlite3_bind_int64(st, 1, (long long)now);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, email ? email : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, ip ? ip : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, user_id ? user_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, detail ? detail : "", -1, SQLITE_STATIC);
	return done(st);
}

/* Recovery codes are compared as 12 lowercase characters, dashes and case ignored. */
static int
normalise(const char *code, char out[13])
{
	size_t n = 0;

	for (; *code != '\0'; code++) {
		if (*code == '-' || *code == ' ')
			continue;
		if (n == 12)
			return -1;
		out[n++] = (char)((*code >= 'A' && *code <= 'Z') ? *code - 'A' + 'a' : *code);
	}
	out[n] = '\0';
	return n == 12 ? 0 : -1;
}

enum idb_err
idb_recovery_clear(sqlite3 *db, const char *user_id)
{
	sqlite3_stmt *st;

	if (prep(db, sql_rc_clear, &st) != 0)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
	return done(st);
}

enum idb_err
idb_recovery_new(sqlite3 *db, const char *user_id, char codes[IDB_RECOVERY_CODES][IDB_RECOVERY_LEN + 1])
{
	static const char alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789";
	unsigned char h[32];
	char norm[13];
	sqlite3_stmt *st;
	enum idb_err e;
	int i, j, k;

	if ((e = idb_recovery_clear(db, user_id)) != IDB_OK)
		return e;
	for (i = 0; i < IDB_RECOVERY_CODES; i++) {
		for (j = 0, k = 0; j < IDB_RECOVERY_LEN; j++)
			codes[i][j] = (j == 4 || j == 9) ? '-' : alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
		codes[i][IDB_RECOVERY_LEN] = '\0';
		(void)k;
		normalise(codes[i], norm);
		crypto_hash_sha256(h, (const unsigned char *)norm, 12);
		if (prep(db, sql_rc_insert, &st) != 0)
			return IDB_E_DB;
		sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, h, 32, SQLITE_TRANSIENT);
		if ((e = done(st)) != IDB_OK)
			return e;
	}
	return IDB_OK;
}

enum idb_err
idb_recovery_use(sqlite3 *db, const char *user_id, const char *code, time_t now)
{
	unsigned char h[32];
	char norm[13];
	sqlite3_stmt *st;
	enum idb_err e;

	if (code == NULL || normalise(code, norm) != 0)
		return IDB_E_INVALID_CREDENTIALS;
	crypto_hash_sha256(h, (const unsigned char *)norm, 12);
	if (prep(db, sql_rc_use, &st) != 0)
		return IDB_E_DB;
	sqlite3_bind_int64(st, 1, (long long)now);
	sqlite3_bind_text(st, 2, user_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, h, 32, SQLITE_TRANSIENT);
	if ((e = done(st)) != IDB_OK)
		return e;
	return sqlite3_changes(db) == 1 ? IDB_OK : IDB_E_INVALID_CREDENTIALS;
}
