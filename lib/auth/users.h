/* SPDX-License-Identifier: ISC */
/* An organization's users: validation, creation, listing. */
#ifndef IDB_AUTH_USERS_H
#define IDB_AUTH_USERS_H

#include <sqlite3.h>
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

#endif
