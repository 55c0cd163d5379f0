/* SPDX-License-Identifier: ISC */
/* An organization's users: validation, creation, listing. */
#ifndef IDB_AUTH_USERS_H
#define IDB_AUTH_USERS_H

#include <sqlite3.h>
#include <cjson/cJSON.h>
#include "core/err.h"
#include "core/util.h"

#define IDB_EMAIL_MAX 254
#define IDB_USER_NAME_MAX 200

struct idb_user {
	char id[IDB_ID_LEN + 1];
	char email[IDB_EMAIL_MAX + 1];
	char name[IDB_USER_NAME_MAX * 4 + 1];
	char role[16];
	int disabled;
	int mfa_enabled;
	char created_at[IDB_TIME_LEN];
	long long version;
};

int idb_user_email_valid(const char *);
int idb_user_name_valid(const char *);
int idb_user_role_valid(const char *);
/*
 * Creates a user with an Argon2id hash of password. IDB_E_VALIDATION with
 * *field naming the bad input, IDB_E_CONFLICT if the email is taken.
 */
enum idb_err idb_user_create(sqlite3 *, const char *email, const char *name, const char *role,
                             const char *password, struct idb_user *out, const char **field);
enum idb_err idb_user_list(sqlite3 *, void (*fn)(const struct idb_user *, void *), void *arg);
/* Users ordered by id after `after` (NULL: from the start), at most limit. */
enum idb_err idb_user_page(sqlite3 *, const char *after, int limit,
                           void (*fn)(const struct idb_user *, void *), void *arg);
/* IDB_E_NOT_FOUND if there is no such user. */
enum idb_err idb_user_get(sqlite3 *, const char *id, struct idb_user *out);
/* By email (case-insensitive); hash receives the password hash. */
enum idb_err idb_user_by_email(sqlite3 *, const char *email, struct idb_user *out,
                               char hash[128]);
/* The password hash of a user. */
enum idb_err idb_user_hash(sqlite3 *, const char *id, char hash[128]);
enum idb_err idb_user_set_password(sqlite3 *, const char *id, const char *hash);
/*
 * Updates name/role/disabled (NULL / -1 = unchanged) if the version matches
 * (IDB_E_CONFLICT otherwise). IDB_E_WOULD_LOCK_OUT if the last active admin
 * would be demoted or disabled. Call inside a transaction.
 */
enum idb_err idb_user_update(sqlite3 *, const char *id, long long version, const char *name, const char *role,
                             int disabled, struct idb_user *out);
/* TOTP state: the encrypted secret (NULL if none), whether enabled, the last step used. */
struct idb_user_totp {
	unsigned char secret[128];
	size_t secret_len;
	int enabled;
	long long last_step;
};
enum idb_err idb_user_totp_get(sqlite3 *, const char *id, struct idb_user_totp *out);
enum idb_err idb_user_totp_set(sqlite3 *, const char *id, const unsigned char *secret, size_t len, int enabled,
                               long long last_step);
/* The User object of api.md (never a hash or secret); caller owns it. */
cJSON *idb_user_json(const struct idb_user *);

#endif
