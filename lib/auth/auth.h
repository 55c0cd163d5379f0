/* SPDX-License-Identifier: ISC */
/*
 * Who gets in: sessions (only the SHA-256 of a token is stored), the login
 * throttle, recovery codes, and the record of authentication events. All
 * functions take the org's open database; times are unix seconds.
 */
#ifndef IDB_AUTH_AUTH_H
#define IDB_AUTH_AUTH_H

#include <sqlite3.h>
#include <time.h>
#include "core/err.h"
#include "core/util.h"

#define IDB_TOKEN_LEN 43                 /* base64url of 32 bytes */
/* A session token: "<org-id>.<43 characters>". The org part lets a session of
 * another org be told apart (404) from an unknown or expired one (401). */
#define IDB_SESSION_TOKEN_LEN (IDB_ID_LEN + 1 + IDB_TOKEN_LEN)
#define IDB_SESSION_ABSOLUTE (12 * 3600) /* seconds after login, whatever the use */
#define IDB_SESSION_TOUCH 60             /* last_seen is written at most this often */
#define IDB_THROTTLE_WINDOW (15 * 60)
#define IDB_THROTTLE_EMAIL 5
#define IDB_THROTTLE_IP 20
#define IDB_LOCKOUT_SECONDS (15 * 60)
#define IDB_RECOVERY_CODES 10
#define IDB_RECOVERY_LEN 14              /* "xxxx-xxxx-xxxx" */

struct idb_session {
	unsigned char hash[32];
	char user_id[IDB_ID_LEN + 1];
	char csrf[IDB_TOKEN_LEN + 1];
	int mfa_pending;
	long long created_at, last_seen, expires_at;
};

/* A new random token in base64url (no padding). */
void idb_token_new(char out[IDB_TOKEN_LEN + 1]);
void idb_token_hash(const char *token, unsigned char out[32]);

/* Creates a session of an org; token and csrf receive fresh random values. */
enum idb_err idb_session_create(sqlite3 *, const char *org_id, const char *user_id, const char *ip, int mfa_pending,
                                time_t now, char token[IDB_SESSION_TOKEN_LEN + 1], struct idb_session *out);
/* 1 if the token is shaped as one of org_id's, 0 if it names another org, -1 if malformed. */
int idb_session_token_org(const char *token, const char *org_id);
/*
 * Finds a live session by token: IDB_E_UNAUTHENTICATED if there is none, or
 * it is idle longer than idle_minutes, or past its absolute limit (such a
 * session is deleted). Refreshes last_seen at most every IDB_SESSION_TOUCH s.
 */
enum idb_err idb_session_find(sqlite3 *, const char *token, time_t now, long long idle_minutes,
                              struct idb_session *out);
enum idb_err idb_session_delete(sqlite3 *, const unsigned char hash[32]);
/* Ends every session of a user except the one with hash keep (may be NULL). */
enum idb_err idb_session_end_user(sqlite3 *, const char *user_id, const unsigned char *keep);

/* IDB_E_TOO_MANY_REQUESTS with *retry_after seconds if email or ip is locked out. */
enum idb_err idb_throttle_check(sqlite3 *, const char *email, const char *ip, time_t now, long long *retry_after);
/* Records a failed attempt; starts a lockout when a threshold is reached. */
enum idb_err idb_throttle_fail(sqlite3 *, const char *email, const char *ip, time_t now);
/* Records a successful attempt: earlier failures of the email stop counting. */
enum idb_err idb_throttle_ok(sqlite3 *, const char *email, const char *ip, time_t now);

/* Records an authentication event (kind: login, login_failed, lockout, logout, mfa_failed, ...). */
enum idb_err idb_auth_event(sqlite3 *, time_t now, const char *kind, const char *email, const char *ip,
                            const char *user_id, const char *detail);

/* New recovery codes: stores their hashes (replacing the old ones) and fills codes. */
enum idb_err idb_recovery_new(sqlite3 *, const char *user_id, char codes[IDB_RECOVERY_CODES][IDB_RECOVERY_LEN + 1]);
/* Uses one recovery code: IDB_E_INVALID_CREDENTIALS if unknown or used. */
enum idb_err idb_recovery_use(sqlite3 *, const char *user_id, const char *code, time_t now);
enum idb_err idb_recovery_clear(sqlite3 *, const char *user_id);

#endif
