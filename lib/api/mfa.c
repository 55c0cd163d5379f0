/* SPDX-License-Identifier: ISC */
/* The user's own TOTP second factor, and the admin's reset of someone's. */
#include "api/api.h"

#include <string.h>

#include "crypto/field.h"
#include "crypto/totp.h"
#include "store/db.h"

static const struct idb_vfield code_fields[] = {
	{"code", IDB_V_STRING, IDB_VF_REQUIRED, 1, 16, NULL, NULL, NULL},
};

static void
totp_ad(const struct idb_ctx *x, const char *user_id, struct idb_field_ad *ad)
{
	ad->org_id = x->org.id;
	ad->table = "users";
	ad->row_id = user_id;
	ad->column = "totp_secret";
}

enum idb_err idb_api_totp_secret(struct idb_ctx *, const char *user_id, struct idb_user_totp *t,
                                 unsigned char secret[IDB_TOTP_SECRET_LEN]);

/* The stored TOTP secret of a user, decrypted with the org's field key. */
enum idb_err
idb_api_totp_secret(struct idb_ctx *x, const char *user_id, struct idb_user_totp *t,
                    unsigned char secret[IDB_TOTP_SECRET_LEN])
{
	struct idb_field_ad ad;
	size_t n = 0;
	enum idb_err e;

	if ((e = idb_user_totp_get(x->oh->db, user_id, t)) != IDB_OK)
		return e;
	if (t->secret_len == 0)
		return IDB_E_NOT_FOUND;
	totp_ad(x, user_id, &ad);
	if (t->secret_len != IDB_TOTP_SECRET_LEN + IDB_FIELD_OVERHEAD)
		return IDB_E_CRYPTO;
	e = idb_field_decrypt(x->oh->keys->field, x->oh->keys->field_version, &ad, t->secret, t->secret_len, secret, &n);
	if (e == IDB_OK && n != IDB_TOTP_SECRET_LEN)
		e = IDB_E_CRYPTO;
	return e;
}

/* Checks a code of the user's (pending or enabled) secret; counts failures toward the throttle. */
static enum idb_err
check_code(struct idb_ctx *x, const char *code, struct idb_user_totp *t, uint64_t *step)
{
	unsigned char secret[IDB_TOTP_SECRET_LEN];
	enum idb_err e;
	long long after;

	if ((e = idb_throttle_check(x->oh->db, x->user.email, x->req->client_ip, x->now, &after)) != IDB_OK)
		return e == IDB_E_TOO_MANY_REQUESTS ? idb_api_retry_after(x, after) : e;
	if ((e = idb_api_totp_secret(x, x->user.id, t, secret)) != IDB_OK)
		return e == IDB_E_NOT_FOUND ? IDB_E_CONFLICT : e;
	e = idb_totp_verify(secret, sizeof(secret), code, x->now, (uint64_t)t->last_step, step);
	sodium_memzero(secret, sizeof(secret));
	if (e == IDB_E_INVALID_CREDENTIALS) {
		idb_throttle_fail(x->oh->db, x->user.email, x->req->client_ip, x->now);
		idb_auth_event(x->oh->db, x->now, "mfa_failed", x->user.email, x->req->client_ip, x->user.id, "");
	}
	return e;
}

static int
unreserved(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
	       c == '_' || c == '~' || c == '@';
}

enum idb_err
idb_api_totp_enroll(struct idb_ctx *x)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char secret[IDB_TOTP_SECRET_LEN], blob[IDB_TOTP_SECRET_LEN + IDB_FIELD_OVERHEAD];
	char b32[IDB_TOTP_B32_LEN + 1], pct[4];
	struct idb_field_ad ad;
	struct idb_buf uri;
	const char *p;
	enum idb_err e;
	cJSON *j = NULL;

	if (x->user.mfa_enabled)
		return IDB_E_CONFLICT;
	randombytes_buf(secret, sizeof(secret));
	totp_ad(x, x->user.id, &ad);
	e = idb_field_encrypt(x->oh->keys->field, x->oh->keys->field_version, &ad, secret, sizeof(secret), blob);
	idb_base32_encode(secret, sizeof(secret), b32);
	sodium_memzero(secret, sizeof(secret));
	if (e != IDB_OK || (e = idb_user_totp_set(x->oh->db, x->user.id, blob, sizeof(blob), 0, 0)) != IDB_OK)
		goto out;
	idb_buf_init(&uri, 2048);
	idb_buf_addstr(&uri, "otpauth://totp/ImmiDB:");
	for (p = x->user.email; *p != '\0'; p++) {
		if (unreserved(*p))
			idb_buf_add(&uri, p, 1);
		else {
			pct[0] = '%';
			pct[1] = hex[(unsigned char)*p >> 4];
			pct[2] = hex[(unsigned char)*p & 15];
			idb_buf_add(&uri, pct, 3);
		}
	}
	idb_buf_addstr(&uri, "?secret=");
	idb_buf_addstr(&uri, b32);
	e = idb_buf_addstr(&uri, "&issuer=ImmiDB&algorithm=SHA1&digits=6&period=30");
	if (e == IDB_OK && (j = cJSON_CreateObject()) != NULL) {
		cJSON_AddStringToObject(j, "secret", b32);
		cJSON_AddStringToObject(j, "otpauth_uri", uri.data);
	}
	idb_buf_free(&uri);
	if (e == IDB_OK)
		e = idb_api_reply(x, 200, j);
out:
	sodium_memzero(b32, sizeof(b32));
	return e;
}

enum idb_err
idb_api_totp_confirm(struct idb_ctx *x)
{
	char codes[IDB_RECOVERY_CODES][IDB_RECOVERY_LEN + 1];
	struct idb_user after;
	struct idb_vvalue v[1];
	struct idb_user_totp t;
	sqlite3 *db = x->oh->db;
	uint64_t step = 0;
	enum idb_err e;
	cJSON *j, *arr;
	int i;

	if ((e = idb_api_body(x, code_fields, 1, v)) != IDB_OK)
		return e;
	if (x->user.mfa_enabled)
		return IDB_E_CONFLICT;
	if ((e = check_code(x, v[0].s, &t, &step)) != IDB_OK)
		return e;
	if ((e = idb_db_begin(db)) != IDB_OK)
		return e;
	after = x->user;
	after.mfa_enabled = 1;
	if ((e = idb_user_totp_set(db, x->user.id, t.secret, t.secret_len, 1, (long long)step)) != IDB_OK ||
	    (e = idb_recovery_new(db, x->user.id, codes)) != IDB_OK ||
	    (e = idb_api_user_changed(x, &x->user, &after)) != IDB_OK ||
	    (e = idb_auth_event(db, x->now, "mfa_enabled", x->user.email, x->req->client_ip, x->user.id, "")) != IDB_OK ||
	    (e = idb_db_commit(db)) != IDB_OK)
		goto out;
	if ((j = cJSON_CreateObject()) == NULL || (arr = cJSON_AddArrayToObject(j, "recovery_codes")) == NULL) {
		cJSON_Delete(j);
		e = IDB_E_NOMEM;
		goto out;
	}
	for (i = 0; i < IDB_RECOVERY_CODES; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(codes[i]));
	e = idb_api_reply(x, 200, j);
out:
	idb_db_rollback(db);
	sodium_memzero(codes, sizeof(codes));
	return e;
}

enum idb_err
idb_api_totp_disable(struct idb_ctx *x)
{
	struct idb_vvalue v[1];
	struct idb_user_totp t;
	struct idb_user after;
	sqlite3 *db = x->oh->db;
	uint64_t step = 0;
	enum idb_err e;

	if ((e = idb_api_body(x, code_fields, 1, v)) != IDB_OK)
		return e;
	if (x->settings->require_mfa || !x->user.mfa_enabled)
		return IDB_E_CONFLICT;
	if ((e = check_code(x, v[0].s, &t, &step)) != IDB_OK)
		return e;
	if ((e = idb_db_begin(db)) != IDB_OK)
		return e;
	after = x->user;
	after.mfa_enabled = 0;
	if ((e = idb_user_totp_set(db, x->user.id, NULL, 0, 0, 0)) != IDB_OK ||
	    (e = idb_recovery_clear(db, x->user.id)) != IDB_OK ||
	    (e = idb_api_user_changed(x, &x->user, &after)) != IDB_OK ||
	    (e = idb_auth_event(db, x->now, "mfa_disabled", x->user.email, x->req->client_ip, x->user.id, "")) != IDB_OK ||
	    (e = idb_db_commit(db)) != IDB_OK) {
		idb_db_rollback(db);
		return e;
	}
	x->resp->status = 204;
	return IDB_OK;
}

enum idb_err
idb_api_users_mfa_reset(struct idb_ctx *x)
{
	const char *id = x->req->params[1];
	sqlite3 *db = x->oh->db;
	struct idb_user u, after;
	enum idb_err e;

	if (!idb_id_valid(id, 'u') || (e = idb_user_get(db, id, &u)) == IDB_E_NOT_FOUND)
		return IDB_E_NOT_FOUND;
	if (e != IDB_OK)
		return e;
	if ((e = idb_db_begin(db)) != IDB_OK)
		return e;
	after = u;
	after.mfa_enabled = 0;
	if ((e = idb_user_totp_set(db, id, NULL, 0, 0, 0)) != IDB_OK || (e = idb_recovery_clear(db, id)) != IDB_OK ||
	    (u.mfa_enabled && (e = idb_api_user_changed(x, &u, &after)) != IDB_OK) ||
	    (e = idb_auth_event(db, x->now, "mfa_reset", u.email, x->req->client_ip, x->user.id, "")) != IDB_OK ||
	    (e = idb_db_commit(db)) != IDB_OK) {
		idb_db_rollback(db);
		return e;
	}
	x->resp->status = 204;
	return IDB_OK;
}
