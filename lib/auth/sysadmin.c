/* SPDX-License-Identifier: ISC */
/* Sysadmins in the registry: accounts, second factor, sessions, grants. */
#include "auth/sysadmin.h"

#include <string.h>
#include <sodium.h>

#include "auth/users.h"
#include "crypto/field.h"
#include "crypto/pw.h"
#include "crypto/totp.h"
#include "store/db.h"
#include "valid/valid.h"

static const char sql_insert[] =
    "INSERT INTO sysadmins (id, email, name, password_hash, totp_secret, created_at) VALUES (?, ?, ?, ?, ?, ?)";
static const char sql_by_email[] = "SELECT id, email, name, disabled, password_hash FROM sysadmins WHERE email = ?";
static const char sql_get[] = "SELECT id, email, name, disabled, password_hash FROM sysadmins WHERE id = ?";
static const char sql_totp[] = "SELECT totp_secret, totp_last_step FROM sysadmins WHERE id = ?";
static const char sql_totp_use[] = "UPDATE sysadmins SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?";
static const char sql_grant[] =
    "INSERT INTO sysadmin_grants (sysadmin_id, org_id, kind, assigned_at, expires_at, reason) VALUES (?, ?, ?, ?, ?, ?)";
static const char sql_revoke[] =
    "UPDATE sysadmin_grants SET revoked_at = ?1 WHERE sysadmin_id = ?2 AND org_id = ?3 AND revoked_at IS NULL"
    " AND (expires_at IS NULL OR expires_at > ?1)";
static const char sql_may[] =
    "SELECT kind FROM sysadmin_grants WHERE sysadmin_id = ?1 AND org_id = ?2 AND revoked_at IS NULL"
    " AND (expires_at IS NULL OR expires_at > ?3) ORDER BY kind = 'assigned' DESC LIMIT 1";
static const char sql_list[] =
    "SELECT s.id, s.email, s.name, g.assigned_at, g.expires_at, g.kind FROM sysadmin_grants g"
    " JOIN sysadmins s ON s.id = g.sysadmin_id WHERE g.org_id = ?1 AND g.revoked_at IS NULL"
    " AND (g.expires_at IS NULL OR g.expires_at > ?2) ORDER BY g.id";
static const char sql_sess_insert[] =
    "INSERT INTO sysadmin_sessions (token_hash, sysadmin_id, csrf_token, created_at, last_seen, expires_at, ip)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)";
static const char sql_sess_find[] =
    "SELECT sysadmin_id, csrf_token, last_seen, expires_at FROM sysadmin_sessions WHERE token_hash = ?";
static const char sql_sess_touch[] = "UPDATE sysadmin_sessions SET last_seen = ? WHERE token_hash = ?";
static const char sql_sess_delete[] = "DELETE FROM sysadmin_sessions WHERE token_hash = ?";

static const char sql_ended[] =
    "SELECT id, sysadmin_id, org_id, expires_at, reason FROM sysadmin_grants WHERE kind = 'break_glass'"
    " AND end_notified = 0 AND (expires_at <= ?1 OR revoked_at IS NOT NULL) ORDER BY id LIMIT 100";
static const char sql_end_told[] = "UPDATE sysadmin_grants SET end_notified = 1 WHERE id = ?";

#define SYSADMIN_IDLE (30 * 60)

int
idb_reason_valid(const char *s)
{
	size_t n;

	if (s == NULL || !idb_utf8_valid(s) || !idb_valid_text(s, 0))
		return 0;
	n = idb_utf8_chars(s);
	return n >= IDB_REASON_MIN && n <= IDB_REASON_MAX;
}

/* The key of sysadmins' TOTP secrets: derived from the master key, not stored. */
static void
totp_key(const struct idb_master *m, unsigned char k[IDB_KEY_LEN])
{
	crypto_kdf_derive_from_key(k, IDB_KEY_LEN, 2, "immidreg", m->key);
}

static void
totp_ad(const char *id, struct idb_field_ad *ad)
{
	ad->org_id = "registry";
	ad->table = "sysadmins";
	ad->row_id = id;
	ad->column = "totp_secret";
}

enum idb_err
idb_sysadmin_add(sqlite3 *reg, const struct idb_master *m, const char *email, const char *name, const char *password,
                 struct idb_sysadmin *out, char secret_b32[33])
{
	unsigned char secret[IDB_TOTP_SECRET_LEN], blob[IDB_TOTP_SECRET_LEN + IDB_FIELD_OVERHEAD], k[IDB_KEY_LEN];
	char hash[crypto_pwhash_STRBYTES], now[IDB_TIME_LEN];
	struct idb_field_ad ad;
	sqlite3_stmt *st = NULL;
	enum idb_err e;
	int rc;

	if (!idb_user_email_valid(email) || !idb_user_name_valid(name) || !idb_pw_acceptable(password))
		return IDB_E_VALIDATION;
	memset(out, 0, sizeof(*out));
	idb_id_new('s', out->id);
	memcpy(out->email, email, strlen(email) + 1);
	memcpy(out->name, name, strlen(name) + 1);
	if ((e = idb_pw_hash(password, hash)) != IDB_OK)
		return e;
	randombytes_buf(secret, sizeof(secret));
	totp_key(m, k);
	totp_ad(out->id, &ad);
	e = idb_field_encrypt(k, 1, &ad, secret, sizeof(secret), blob);
	idb_base32_encode(secret, sizeof(secret), secret_b32);
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(k, sizeof(k));
	if (e != IDB_OK)
		goto out;
	idb_time_now(now);
	if (sqlite3_prepare_v2(reg, sql_insert, -1, &st, NULL) != SQLITE_OK) {
		e = IDB_E_DB;
		goto out;
	}
	sqlite3_bind_text(st, 1, out->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, email, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, blob, sizeof(blob), SQLITE_STATIC);
	sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	e = rc == SQLITE_DONE ? IDB_OK : rc == SQLITE_CONSTRAINT ? IDB_E_CONFLICT : IDB_E_DB;
out:
	sqlite3_finalize(st);
	sodium_memzero(hash, sizeof(hash));
	if (e != IDB_OK)
		sodium_memzero(secret_b32, 33);
	return e;
}

static enum idb_err
one(sqlite3 *reg, const char *sql, const char *key, struct idb_sysadmin *out, char hash[128])
{
	sqlite3_stmt *st = NULL;
	enum idb_err e;
	int rc;

	if (sqlite3_prepare_v2(reg, sql, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		idb_db_text(out->id, sizeof(out->id), st, 0);
		idb_db_text(out->email, sizeof(out->email), st, 1);
		idb_db_text(out->name, sizeof(out->name), st, 2);
		out->disabled = sqlite3_column_int(st, 3);
		if (hash != NULL)
			idb_db_text(hash, 128, st, 4);
		e = IDB_OK;
	} else
		e = rc == SQLITE_DONE ? IDB_E_NOT_FOUND : IDB_E_DB;
	sqlite3_finalize(st);
	return e;
}

enum idb_err
idb_sysadmin_by_email(sqlite3 *reg, const char *email, struct idb_sysadmin *out, char hash[128])
{
	return one(reg, sql_by_email, email, out, hash);
}

enum idb_err
idb_sysadmin_get(sqlite3 *reg, const char *id, struct idb_sysadmin *out)
{
	return one(reg, sql_get, id, out, NULL);
}

enum idb_err
idb_sysadmin_totp(sqlite3 *reg, const struct idb_master *m, const char *id, const char *code, time_t now)
{
	unsigned char secret[IDB_TOTP_SECRET_LEN], k[IDB_KEY_LEN];
	struct idb_field_ad ad;
	sqlite3_stmt *st = NULL;
	uint64_t step = 0;
	size_t n = 0;
	long long last = 0;
	enum idb_err e = IDB_E_INVALID_CREDENTIALS;

	if ((e = idb_db_exec(reg, "BEGIN IMMEDIATE")) != IDB_OK)
		return e;
	e = IDB_E_INVALID_CREDENTIALS;
	if (sqlite3_prepare_v2(reg, sql_totp, -1, &st, NULL) != SQLITE_OK) {
		e = IDB_E_DB;
		goto out;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 0) == (int)(IDB_TOTP_SECRET_LEN + IDB_FIELD_OVERHEAD)) {
		totp_key(m, k);
		totp_ad(id, &ad);
		if (idb_field_decrypt(k, 1, &ad, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), secret,
		                      &n) == IDB_OK &&
		    n == IDB_TOTP_SECRET_LEN) {
			last = sqlite3_column_int64(st, 1);
			e = idb_totp_verify(secret, n, code, now, (uint64_t)last, &step);
		}
		sodium_memzero(k, sizeof(k));
		sodium_memzero(secret, sizeof(secret));
	}
	sqlite3_finalize(st);
	st = NULL;
	if (e != IDB_OK)
		goto out;
	if (sqlite3_prepare_v2(reg, sql_totp_use, -1, &st, NULL) != SQLITE_OK) {
		e = IDB_E_DB;
		goto out;
	}
	sqlite3_bind_int64(st, 1, (long long)step);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (long long)step);
	if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(reg) != 1)
		e = IDB_E_INVALID_CREDENTIALS;
out:
	sqlite3_finalize(st);
	if (e == IDB_OK)
		e = idb_db_exec(reg, "COMMIT");
	if (e != IDB_OK)
		sqlite3_exec(reg, "ROLLBACK", NULL, NULL, NULL);
	return e;
}

enum idb_err
idb_sysadmin_grant(sqlite3 *reg, const char *sysadmin_id, const char *org_id, const char *kind,
                   const char *expires_at, const char *reason, char expires_out[IDB_TIME_LEN])
{
	char now[IDB_TIME_LEN], until[IDB_TIME_LEN];
	struct timespec ts;
	sqlite3_stmt *st = NULL;
	int rc;

	idb_time_now(now);
	until[0] = '\0';
	if (strcmp(kind, "break_glass") == 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += IDB_BREAK_GLASS_SECONDS;
		idb_time_format(&ts, until);
		expires_at = until;
	}
	if (sqlite3_prepare_v2(reg, sql_grant, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, sysadmin_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, org_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
	if (expires_at != NULL)
		sqlite3_bind_text(st, 5, expires_at, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_text(st, 6, reason ? reason : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (expires_out != NULL) {
		size_t n = expires_at ? strlen(expires_at) : 0;

		if (n >= IDB_TIME_LEN)
			n = IDB_TIME_LEN - 1;
		memcpy(expires_out, expires_at ? expires_at : "", n);
		expires_out[n] = '\0';
	}
	return rc == SQLITE_DONE ? IDB_OK : IDB_E_DB;
}

enum idb_err
idb_sysadmin_revoke(sqlite3 *reg, const char *sysadmin_id, const char *org_id)
{
	char now[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL;
	int rc;

	idb_time_now(now);
	if (sqlite3_prepare_v2(reg, sql_revoke, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sysadmin_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, org_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return IDB_E_DB;
	return sqlite3_changes(reg) > 0 ? IDB_OK : IDB_E_NOT_FOUND;
}

enum idb_err
idb_sysadmin_may(sqlite3 *reg, const char *sysadmin_id, const char *org_id, const char **kind)
{
	char now[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL;
	enum idb_err e;
	int rc;

	idb_time_now(now);
	if (sqlite3_prepare_v2(reg, sql_may, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, sysadmin_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, org_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*kind = strcmp((const char *)sqlite3_column_text(st, 0), "assigned") == 0 ? "assigned" : "break_glass";
		e = IDB_OK;
	} else
		e = rc == SQLITE_DONE ? IDB_E_NOT_FOUND : IDB_E_DB;
	sqlite3_finalize(st);
	return e;
}

enum idb_err
idb_sysadmin_list(sqlite3 *reg, const char *org_id, cJSON **out)
{
	char now[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL;
	cJSON *arr, *j;
	int rc;

	idb_time_now(now);
	if ((arr = cJSON_CreateArray()) == NULL)
		return IDB_E_NOMEM;
	if (sqlite3_prepare_v2(reg, sql_list, -1, &st, NULL) != SQLITE_OK) {
		cJSON_Delete(arr);
		return IDB_E_DB;
	}
	sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((j = cJSON_CreateObject()) == NULL)
			break;
		cJSON_AddStringToObject(j, "id", (const char *)sqlite3_column_text(st, 0));
		cJSON_AddStringToObject(j, "email", (const char *)sqlite3_column_text(st, 1));
		cJSON_AddStringToObject(j, "name", (const char *)sqlite3_column_text(st, 2));
		cJSON_AddStringToObject(j, "assigned_at", (const char *)sqlite3_column_text(st, 3));
		if (sqlite3_column_type(st, 4) == SQLITE_NULL)
			cJSON_AddNullToObject(j, "expires_at");
		else
			cJSON_AddStringToObject(j, "expires_at", (const char *)sqlite3_column_text(st, 4));
		cJSON_AddStringToObject(j, "kind", (const char *)sqlite3_column_text(st, 5));
		cJSON_AddItemToArray(arr, j);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(arr);
		return IDB_E_DB;
	}
	*out = arr;
	return IDB_OK;
}

enum idb_err
idb_sysadmin_session_create(sqlite3 *reg, const char *sysadmin_id, const char *ip, time_t now,
                            char token[IDB_TOKEN_LEN + 1], struct idb_sysadmin_session *s)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(s, 0, sizeof(*s));
	idb_token_new(token);
	idb_token_new(s->csrf);
	idb_token_hash(token, s->hash);
	memcpy(s->sysadmin_id, sysadmin_id, strlen(sysadmin_id) + 1);
	s->last_seen = (long long)now;
	s->expires_at = (long long)now + IDB_SESSION_ABSOLUTE;
	if (sqlite3_prepare_v2(reg, sql_sess_insert, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_blob(st, 1, s->hash, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sysadmin_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, s->csrf, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (long long)now);
	sqlite3_bind_int64(st, 5, (long long)now);
	sqlite3_bind_int64(st, 6, s->expires_at);
	sqlite3_bind_text(st, 7, ip ? ip : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? IDB_OK : IDB_E_DB;
}

enum idb_err
idb_sysadmin_session_find(sqlite3 *reg, const char *token, time_t now, struct idb_sysadmin_session *s)
{
	sqlite3_stmt *st = NULL;
	enum idb_err e = IDB_E_UNAUTHENTICATED;

	memset(s, 0, sizeof(*s));
	if (token == NULL || strlen(token) != IDB_TOKEN_LEN)
		return IDB_E_UNAUTHENTICATED;
	idb_token_hash(token, s->hash);
	if (sqlite3_prepare_v2(reg, sql_sess_find, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_blob(st, 1, s->hash, 32, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		idb_db_text(s->sysadmin_id, sizeof(s->sysadmin_id), st, 0);
		idb_db_text(s->csrf, sizeof(s->csrf), st, 1);
		s->last_seen = sqlite3_column_int64(st, 2);
		s->expires_at = sqlite3_column_int64(st, 3);
		e = IDB_OK;
	}
	sqlite3_finalize(st);
	if (e != IDB_OK)
		return e;
	if ((long long)now >= s->expires_at || (long long)now - s->last_seen > SYSADMIN_IDLE) {
		if (sqlite3_prepare_v2(reg, sql_sess_delete, -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_blob(st, 1, s->hash, 32, SQLITE_STATIC);
			sqlite3_step(st);
			sqlite3_finalize(st);
		}
		return IDB_E_UNAUTHENTICATED;
	}
	if ((long long)now - s->last_seen >= IDB_SESSION_TOUCH &&
	    sqlite3_prepare_v2(reg, sql_sess_touch, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (long long)now);
		sqlite3_bind_blob(st, 2, s->hash, 32, SQLITE_STATIC);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	return IDB_OK;
}

enum idb_err
idb_sysadmin_ended(sqlite3 *reg, enum idb_err (*fn)(const struct idb_grant_end *, void *), void *arg)
{
	struct idb_grant_end g[100];
	char now[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL;
	enum idb_err e = IDB_OK;
	int n = 0, i, rc;

	idb_time_now(now);
	if (sqlite3_prepare_v2(reg, sql_ended, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
	while (n < 100 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		g[n].id = sqlite3_column_int64(st, 0);
		idb_db_text(g[n].sysadmin_id, sizeof(g[n].sysadmin_id), st, 1);
		idb_db_text(g[n].org_id, sizeof(g[n].org_id), st, 2);
		idb_db_text(g[n].expires_at, sizeof(g[n].expires_at), st, 3);
		idb_db_text(g[n].reason, sizeof(g[n].reason), st, 4);
		n++;
	}
	sqlite3_finalize(st);
	/* Told first, marked after: a crash between the two tells twice, never never. */
	for (i = 0; i < n && e == IDB_OK; i++) {
		if ((e = fn(&g[i], arg)) != IDB_OK)
			break;
		if (sqlite3_prepare_v2(reg, sql_end_told, -1, &st, NULL) != SQLITE_OK)
			return IDB_E_DB;
		sqlite3_bind_int64(st, 1, g[i].id);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			e = IDB_E_DB;
	}
	return e;
}

/* Every sysadmin's TOTP secret from the key of one master key to another's (one caller transaction). */
enum idb_err
idb_sysadmin_rewrap(sqlite3 *reg, const struct idb_master *from, const struct idb_master *to)
{
	static const char sql_all[] = "SELECT id, totp_secret FROM sysadmins";
	static const char sql_set[] = "UPDATE sysadmins SET totp_secret = ? WHERE id = ?";
	unsigned char kf[IDB_KEY_LEN], kt[IDB_KEY_LEN], secret[IDB_TOTP_SECRET_LEN];
	unsigned char blob[IDB_TOTP_SECRET_LEN + IDB_FIELD_OVERHEAD];
	char id[IDB_ID_LEN + 1];
	struct idb_field_ad ad;
	sqlite3_stmt *st = NULL, *up = NULL;
	enum idb_err e = IDB_OK;
	size_t n;
	int rc = SQLITE_DONE;

	totp_key(from, kf);
	totp_key(to, kt);
	if (sqlite3_prepare_v2(reg, sql_all, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(reg, sql_set, -1, &up, NULL) != SQLITE_OK)
		e = IDB_E_DB;
	while (e == IDB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		idb_db_text(id, sizeof(id), st, 0);
		totp_ad(id, &ad);
		n = 0;
		/* The length first: decrypt writes bloblen - IDB_FIELD_OVERHEAD bytes into secret. */
		if (sqlite3_column_bytes(st, 1) != (int)sizeof(blob))
			e = IDB_E_CRYPTO;
		else if ((e = idb_field_decrypt(kf, 1, &ad, sqlite3_column_blob(st, 1), sizeof(blob), secret, &n)) !=
		             IDB_OK ||
		         n != sizeof(secret))
			e = e != IDB_OK ? e : IDB_E_CRYPTO;
		else if ((e = idb_field_encrypt(kt, 1, &ad, secret, n, blob)) == IDB_OK) {
			sqlite3_bind_blob(up, 1, blob, sizeof(blob), SQLITE_TRANSIENT);
			sqlite3_bind_text(up, 2, id, -1, SQLITE_TRANSIENT);
			e = sqlite3_step(up) == SQLITE_DONE ? IDB_OK : IDB_E_DB;
			sqlite3_reset(up);
		}
	}
	if (e == IDB_OK && rc != SQLITE_DONE)
		e = IDB_E_DB;
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	sodium_memzero(kf, sizeof(kf));
	sodium_memzero(kt, sizeof(kt));
	sodium_memzero(secret, sizeof(secret));
	return e;
}
