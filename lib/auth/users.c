/* SPDX-License-Identifier: ISC */
#include "auth/users.h"

#include <string.h>

#include "crypto/pw.h"
#include "store/registry.h"

static const char sql_insert[] =
    "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)";
static const char sql_list[] =
    "SELECT id, email, name, role, disabled, created_at, version FROM users ORDER BY email";

int
idb_user_email_valid(const char *s)
{
	const char *at = strchr(s, '@');
	size_t n = strlen(s);

	if (n < 3 || n > IDB_EMAIL_MAX || at == NULL || at == s || strchr(at + 1, '@') != NULL ||
	    at[1] == '\0' || strchr(at + 1, '.') == NULL)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f || strchr("<>()[]\\,;:\"", *s) != NULL)
			return 0;
	return 1;
}

int
idb_user_name_valid(const char *s)
{
	return idb_org_name_valid(s); /* same rule: 1..200 characters, no controls */
}

int
idb_user_role_valid(const char *s)
{
	return strcmp(s, "admin") == 0 || strcmp(s, "member") == 0 || strcmp(s, "readonly") == 0;
}

enum idb_err
idb_user_create(sqlite3 *db, const char *email, const char *name, const char *role, const char *pw,
                struct idb_user *u, const char **field)
{
	char hash[crypto_pwhash_STRBYTES], now[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL;
	enum idb_err e;
	int rc;

	*field = NULL;
	if (!idb_user_email_valid(email))
		*field = "email";
	else if (!idb_user_name_valid(name))
		*field = "name";
	else if (!idb_user_role_valid(role))
		*field = "role";
	else if (!idb_pw_acceptable(pw))
		*field = "password";
	if (*field != NULL)
		return IDB_E_VALIDATION;
	if ((e = idb_pw_hash(pw, hash)) != IDB_OK)
		return e;
	memset(u, 0, sizeof(*u));
	idb_id_new('u', u->id);
	memcpy(u->email, email, strlen(email) + 1);
	memcpy(u->name, name, strlen(name) + 1);
	memcpy(u->role, role, strlen(role) + 1);
	idb_time_now(now);
	memcpy(u->created_at, now, sizeof(now));
	u->version = 1;
	if (sqlite3_prepare_v2(db, sql_insert, -1, &st, NULL) != SQLITE_OK) {
		e = IDB_E_DB;
		goto out;
	}
	sqlite3_bind_text(st, 1, u->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, email, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, role, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, now, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	e = rc == SQLITE_DONE ? IDB_OK : rc == SQLITE_CONSTRAINT ? IDB_E_CONFLICT : IDB_E_DB;
	if (e == IDB_E_CONFLICT)
		*field = "email";
out:
	sqlite3_finalize(st);
	sodium_memzero(hash, sizeof(hash));
	return e;
}

static void
col(char *dst, size_t size, sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	size_t n = t ? strlen((const char *)t) : 0;

	if (n >= size)
		n = size - 1;
	if (n)
		memcpy(dst, t, n);
	dst[n] = '\0';
}

enum idb_err
idb_user_list(sqlite3 *db, void (*fn)(const struct idb_user *, void *), void *arg)
{
	sqlite3_stmt *st = NULL;
	struct idb_user u;
	int rc;

	if (sqlite3_prepare_v2(db, sql_list, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		col(u.id, sizeof(u.id), st, 0);
		col(u.email, sizeof(u.email), st, 1);
		col(u.name, sizeof(u.name), st, 2);
		col(u.role, sizeof(u.role), st, 3);
		u.disabled = sqlite3_column_int(st, 4);
		col(u.created_at, sizeof(u.created_at), st, 5);
		u.version = sqlite3_column_int64(st, 6);
		fn(&u, arg);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? IDB_OK : IDB_E_DB;
}
