/* SPDX-License-Identifier: ISC */
#include "auth/users.h"

#include <string.h>

#include "crypto/pw.h"
#include "store/db.h"
#include "store/memo.h"
#include "store/registry.h"

static const char sql_insert[] =
    "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)";
#define USER_COLS "id, email, name, role, disabled, created_at, version, totp_enabled"
static const char sql_list[] = "SELECT " USER_COLS " FROM users ORDER BY email";
static const char sql_page[] = "SELECT " USER_COLS " FROM users WHERE id > ? ORDER BY id LIMIT ?";
static const char sql_get[] = "SELECT " USER_COLS " FROM users WHERE id = ?";
static const char sql_by_email[] = "SELECT " USER_COLS ", password_hash FROM users WHERE email = ?";
static const char sql_hash[] = "SELECT password_hash FROM users WHERE id = ?";
static const char sql_set_pw[] =
    "UPDATE users SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE id = ?";
static const char sql_active_admins[] =
    "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id != ?";
static const char sql_update[] =
    "UPDATE users SET name = ?, role = ?, disabled = ?, updated_at = ?, version = version + 1"
    " WHERE id = ? AND version = ?";
static const char sql_totp_get[] = "SELECT totp_secret, totp_enabled, totp_last_step FROM users WHERE id = ?";
static const char sql_totp_set[] =
    "UPDATE users SET totp_secret = ?, totp_enabled = ?, totp_last_step = ?, updated_at = ? WHERE id = ?";

int
idb_user_email_valid(const char *s)
{
	const char *at = strchr(s, '@');
	size_t n = strlen(s);

	if (n < 3 || n > IDB_EMAIL_MAX || !idb_utf8_valid(s) || at == NULL || at == s || strchr(at + 1, '@') != NULL ||
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
row(sqlite3_stmt *st, struct idb_user *u)
{
	idb_db_text(u->id, sizeof(u->id), st, 0);
	idb_db_text(u->email, sizeof(u->email), st, 1);
	idb_db_text(u->name, sizeof(u->name), st, 2);
	idb_db_text(u->role, sizeof(u->role), st, 3);
	u->disabled = sqlite3_column_int(st, 4);
	idb_db_text(u->created_at, sizeof(u->created_at), st, 5);
	u->version = sqlite3_column_int64(st, 6);
	u->mfa_enabled = sqlite3_column_int(st, 7);
}

static enum idb_err
each(sqlite3_stmt *st, void (*fn)(const struct idb_user *, void *), void *arg)
{
	struct idb_user u;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row(st, &u);
		fn(&u, arg);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? IDB_OK : IDB_E_DB;
}

enum idb_err
idb_user_list(sqlite3 *db, void (*fn)(const struct idb_user *, void *), void *arg)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql_list, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	return each(st, fn, arg);
}

enum idb_err
idb_user_page(sqlite3 *db, const char *after, int limit, void (*fn)(const struct idb_user *, void *), void *arg)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql_page, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, after ? after : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, limit);
	return each(st, fn, arg);
}

static enum idb_err
one(sqlite3 *db, const char *sql, const char *key, struct idb_user *u, char *hash, size_t hashlen)
{
	sqlite3_stmt *st = NULL;
	enum idb_err e;
	int rc;

	if (idb_db_cached(db, sql, &st) != IDB_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (u != NULL)
			row(st, u);
		if (hash != NULL)
			idb_db_text(hash, hashlen, st, u != NULL ? 8 : 0);
		e = IDB_OK;
	} else
		e = rc == SQLITE_DONE ? IDB_E_NOT_FOUND : IDB_E_DB;
	idb_db_done(st);
	return e;
}

enum idb_err
idb_user_get(sqlite3 *db, const char *id, struct idb_user *u)
{
	const void *m;
	size_t n;
	enum idb_err e;

	if ((m = idb_memo_get(db, IDB_MEMO_USER, id, strlen(id), &n)) != NULL && n == sizeof(*u)) {
		memcpy(u, m, n);
		return IDB_OK;
	}
	if ((e = one(db, sql_get, id, u, NULL, 0)) == IDB_OK)
		idb_memo_put(db, IDB_MEMO_USER, id, strlen(id), u, sizeof(*u));
	return e;
}

enum idb_err
idb_user_by_email(sqlite3 *db, const char *email, struct idb_user *u, char hash[128])
{
	return one(db, sql_by_email, email, u, hash, 128);
}

enum idb_err
idb_user_hash(sqlite3 *db, const char *id, char hash[128])
{
	return one(db, sql_hash, id, NULL, hash, 128);
}

static enum idb_err
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? IDB_OK : rc == SQLITE_CONSTRAINT ? IDB_E_CONFLICT : IDB_E_DB;
}

enum idb_err
idb_user_set_password(sqlite3 *db, const char *id, const char *hash)
{
	char now[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL;

	idb_time_now(now);
	if (sqlite3_prepare_v2(db, sql_set_pw, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, id, -1, SQLITE_STATIC);
	return step_done(st);
}

enum idb_err
idb_user_update(sqlite3 *db, const char *id, long long version, const char *name, const char *role, int disabled,
                struct idb_user *out)
{
	char now[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL;
	struct idb_user cur;
	enum idb_err e;
	long long admins = 0;
	int will_admin;

	if ((e = idb_user_get(db, id, &cur)) != IDB_OK)
		return e;
	if (cur.version != version)
		return IDB_E_CONFLICT;
	if (name == NULL)
		name = cur.name;
	if (role == NULL)
		role = cur.role;
	if (disabled < 0)
		disabled = cur.disabled;
	will_admin = strcmp(role, "admin") == 0 && !disabled;
	if (strcmp(cur.role, "admin") == 0 && !cur.disabled && !will_admin) {
		if (sqlite3_prepare_v2(db, sql_active_admins, -1, &st, NULL) != SQLITE_OK)
			return IDB_E_DB;
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			admins = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		if (admins == 0)
			return IDB_E_WOULD_LOCK_OUT;
	}
	idb_time_now(now);
	if (sqlite3_prepare_v2(db, sql_update, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, role, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 3, disabled ? 1 : 0);
	sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, version);
	if ((e = step_done(st)) != IDB_OK)
		return e;
	if (sqlite3_changes(db) != 1)
		return IDB_E_CONFLICT;
	return idb_user_get(db, id, out);
}

enum idb_err
idb_user_totp_get(sqlite3 *db, const char *id, struct idb_user_totp *t)
{
	sqlite3_stmt *st = NULL;
	enum idb_err e = IDB_OK;
	int rc, n;

	memset(t, 0, sizeof(*t));
	if (sqlite3_prepare_v2(db, sql_totp_get, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		n = sqlite3_column_bytes(st, 0);
		if (sqlite3_column_type(st, 0) == SQLITE_BLOB && n > 0 && (size_t)n <= sizeof(t->secret)) {
			memcpy(t->secret, sqlite3_column_blob(st, 0), (size_t)n);
			t->secret_len = (size_t)n;
		}
		t->enabled = sqlite3_column_int(st, 1);
		t->last_step = sqlite3_column_int64(st, 2);
	} else
		e = rc == SQLITE_DONE ? IDB_E_NOT_FOUND : IDB_E_DB;
	sqlite3_finalize(st);
	return e;
}

enum idb_err
idb_user_totp_set(sqlite3 *db, const char *id, const unsigned char *secret, size_t len, int enabled,
                  long long last_step)
{
	char now[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL;

	idb_time_now(now);
	if (sqlite3_prepare_v2(db, sql_totp_set, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	if (secret != NULL)
		sqlite3_bind_blob(st, 1, secret, (int)len, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 1);
	sqlite3_bind_int(st, 2, enabled ? 1 : 0);
	sqlite3_bind_int64(st, 3, last_step);
	sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, id, -1, SQLITE_STATIC);
	return step_done(st);
}

cJSON *
idb_user_json(const struct idb_user *u)
{
	cJSON *j = cJSON_CreateObject();

	if (j == NULL)
		return NULL;
	if (!cJSON_AddStringToObject(j, "id", u->id) || !cJSON_AddStringToObject(j, "email", u->email) ||
	    !cJSON_AddStringToObject(j, "name", u->name) || !cJSON_AddStringToObject(j, "role", u->role) ||
	    !cJSON_AddBoolToObject(j, "mfa_enabled", u->mfa_enabled) ||
	    !cJSON_AddBoolToObject(j, "disabled", u->disabled) ||
	    !cJSON_AddStringToObject(j, "created_at", u->created_at) ||
	    !cJSON_AddNumberToObject(j, "version", (double)u->version)) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}
