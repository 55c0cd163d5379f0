/* SPDX-License-Identifier: ISC */
/*
 * Sysadmins (platform staff), kept in the registry: accounts with a
 * mandatory TOTP second factor, their sessions, and their grants to orgs
 * (assigned, or break-glass for 4 hours). Used by the server and by
 * immidb-admin.
 */
#ifndef IDB_AUTH_SYSADMIN_H
#define IDB_AUTH_SYSADMIN_H

#include <sqlite3.h>
#include <time.h>
#include <cjson/cJSON.h>
#include "auth/auth.h"
#include "core/err.h"
#include "core/util.h"
#include "crypto/key.h"

#define IDB_BREAK_GLASS_SECONDS (4 * 3600)
#define IDB_REASON_MIN 5
#define IDB_REASON_MAX 500

struct idb_sysadmin {
	char id[IDB_ID_LEN + 1];
	char email[255];
	char name[801];
	int disabled;
};

struct idb_sysadmin_session {
	unsigned char hash[32];
	char sysadmin_id[IDB_ID_LEN + 1];
	char csrf[IDB_TOKEN_LEN + 1];
	long long last_seen, expires_at;
};

/* Creates a sysadmin; secret_b32 receives the TOTP secret (base32) to give them once. */
enum idb_err idb_sysadmin_add(sqlite3 *reg, const struct idb_master *, const char *email, const char *name,
                              const char *password, struct idb_sysadmin *out, char secret_b32[33]);
enum idb_err idb_sysadmin_by_email(sqlite3 *reg, const char *email, struct idb_sysadmin *out, char hash[128]);
enum idb_err idb_sysadmin_get(sqlite3 *reg, const char *id, struct idb_sysadmin *out);
/* Checks a TOTP code and uses its step (under the registry's write lock). */
enum idb_err idb_sysadmin_totp(sqlite3 *reg, const struct idb_master *, const char *id, const char *code, time_t now);
/* Grants (kind "assigned" with an optional expiry date, or "break_glass" for 4 hours). */
enum idb_err idb_sysadmin_grant(sqlite3 *reg, const char *sysadmin_id, const char *org_id, const char *kind,
                                const char *expires_at, const char *reason, char expires_out[IDB_TIME_LEN]);
/* Withdraws every active grant of a sysadmin to an org; IDB_E_NOT_FOUND if there was none. */
enum idb_err idb_sysadmin_revoke(sqlite3 *reg, const char *sysadmin_id, const char *org_id);
/* IDB_OK if the sysadmin holds an active grant to the org (*kind: "assigned" or "break_glass"). */
enum idb_err idb_sysadmin_may(sqlite3 *reg, const char *sysadmin_id, const char *org_id, const char **kind);
/* The org's active grants, as api.md's list; caller frees. */
enum idb_err idb_sysadmin_list(sqlite3 *reg, const char *org_id, cJSON **out);

enum idb_err idb_sysadmin_session_create(sqlite3 *reg, const char *sysadmin_id, const char *ip, time_t now,
                                         char token[IDB_TOKEN_LEN + 1], struct idb_sysadmin_session *out);
enum idb_err idb_sysadmin_session_find(sqlite3 *reg, const char *token, time_t now,
                                       struct idb_sysadmin_session *out);
/* A break-glass grant that has ended (expired or withdrawn) and whose end is not yet told. */
struct idb_grant_end {
	long long id;
	char sysadmin_id[IDB_ID_LEN + 1], org_id[IDB_ID_LEN + 1];
	char expires_at[IDB_TIME_LEN];
	char reason[IDB_REASON_MAX * 4 + 1];
};
/* Calls fn for each ended break-glass grant not yet told; marks it told when fn returns IDB_OK. */
enum idb_err idb_sysadmin_ended(sqlite3 *reg, enum idb_err (*fn)(const struct idb_grant_end *, void *), void *arg);
/* 1 if s is 5..500 characters of text without control characters. */
int idb_reason_valid(const char *s);

/* Every sysadmin's TOTP secret re-encrypted for a new master key (inside the caller's transaction). */
enum idb_err idb_sysadmin_rewrap(sqlite3 *reg, const struct idb_master *from, const struct idb_master *to);

#endif
