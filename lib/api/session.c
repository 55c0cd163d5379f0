/* SPDX-License-Identifier: ISC */
/* Sessions: log in, the second factor, the current session, log out. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "crypto/field.h"
#include "crypto/pw.h"
#include "crypto/totp.h"
#include "store/db.h"

static const struct idb_vfield login_fields[] = {
	{"email", IDB_V_STRING, IDB_VF_REQUIRED, 1, 254, NULL, NULL, NULL},
	{"password", IDB_V_STRING, IDB_VF_REQUIRED, 1, 1024, NULL, NULL, NULL},
};

static const struct idb_vfield mfa_fields[] = {
	{"code", IDB_V_STRING, 0, 1, 16, NULL, NULL, NULL},
	{"recovery_code", IDB_V_STRING, 0, 1, 32, NULL, NULL, NULL},
};

enum idb_err
idb_api_retry_after(struct idb_ctx *x, long long seconds)
{
	char buf[24], *v;

	snprintf(buf, sizeof(buf), "%lld", seconds);
	if ((v = idb_arena_strdup(x->req->arena, buf)) == NULL)
		return IDB_E_NOMEM;
	idb_resp_header(x->resp, "Retry-After", v);
	return IDB_E_TOO_MANY_REQUESTS;
}

/* Records a failed attempt (its own transaction, or a level of the request's) and answers 401. */
enum idb_err
idb_api_auth_failed(struct idb_ctx *x, const char *email, const char *kind, const char *user_id, const char *detail)
{
	sqlite3 *db = x->oh->db;
	enum idb_err e;

	if ((e = idb_db_begin(db)) != IDB_OK)
		return e;
	if ((e = idb_throttle_fail(db, email, x->req->client_ip, x->now)) != IDB_OK ||
	    (e = idb_auth_event(db, x->now, kind, email, x->req->client_ip, user_id, detail)) != IDB_OK) {
		idb_db_rollback(db);
		return e;
	}
	if ((e = idb_db_commit(db)) != IDB_OK)
		return e;
	return IDB_E_INVALID_CREDENTIALS;
}

static enum idb_err
throttled(struct idb_ctx *x, const char *email)
{
	long long after;
	enum idb_err e = idb_throttle_check(x->oh->db, email, x->req->client_ip, x->now, &after);

	return e == IDB_E_TOO_MANY_REQUESTS ? idb_api_retry_after(x, after) : e;
}

/* {"user", "csrf_token", ...} for a full session. */
static cJSON *
session_json(const struct idb_ctx *x, const struct idb_user *u, const struct idb_session *s, int with_expiry)
{
	cJSON *j = cJSON_CreateObject(), *uj = idb_user_json(u);
	char at[IDB_TIME_LEN];
	struct timespec ts;
	long long exp;

	if (j == NULL || uj == NULL) {
		cJSON_Delete(j);
		cJSON_Delete(uj);
		return NULL;
	}
	cJSON_AddItemToObject(j, "user", uj);
	cJSON_AddStringToObject(j, "csrf_token", s->csrf);
	cJSON_AddBoolToObject(j, "mfa_required", 0);
	if (with_expiry) {
		exp = s->last_seen + x->settings->idle_minutes * 60;
		if (exp > s->expires_at)
			exp = s->expires_at;
		ts.tv_sec = (time_t)exp;
		ts.tv_nsec = 0;
		idb_time_format(&ts, at);
		cJSON_AddStringToObject(j, "expires_at", at);
	}
	return j;
}

enum idb_err
idb_api_login(struct idb_ctx *x)
{
	struct idb_vvalue v[2];
	char hash[128], token[IDB_SESSION_TOKEN_LEN + 1];
	struct idb_session s;
	struct idb_user u;
	sqlite3 *db = x->oh->db;
	const char *email, *pw;
	enum idb_err e;
	cJSON *j;
	int ok;

	memset(hash, 0, sizeof(hash));
	if ((e = idb_api_body(x, login_fields, 2, v)) != IDB_OK)
		return e;
	email = v[0].s;
	pw = v[1].s;
	if ((e = throttled(x, email)) != IDB_OK)
		return e;
	e = idb_user_by_email(db, email, &u, hash);
	if (e == IDB_E_NOT_FOUND) {
		/* Same work as for a real user: the answer's time does not tell. */
		idb_pw_verify(x->app->dummy_hash, pw);
		return idb_api_auth_failed(x, email, "login_failed", "", "");
	}
	if (e != IDB_OK)
		return e;
	ok = idb_pw_verify(hash, pw) == IDB_OK && !u.disabled;
	if (!ok) {
		sodium_memzero(hash, sizeof(hash));
		return idb_api_auth_failed(x, email, "login_failed", u.id, "");
	}
	if ((e = idb_db_begin(db)) != IDB_OK)
		goto out;
	if (idb_pw_needs_rehash(hash)) {
		char fresh[crypto_pwhash_STRBYTES];

		if ((e = idb_pw_hash(pw, fresh)) == IDB_OK)
			e = idb_user_set_password(db, u.id, fresh);
		sodium_memzero(fresh, sizeof(fresh));
		if (e != IDB_OK)
			goto out;
	}
	/* Only a complete login resets the failure count: with a second factor
	 * pending, the right password alone must not clear wrong codes. */
	if ((!u.mfa_enabled && (e = idb_throttle_ok(db, email, x->req->client_ip, x->now)) != IDB_OK) ||
	    (e = idb_session_create(db, x->org.id, u.id, x->req->client_ip, u.mfa_enabled, x->now, token, &s)) != IDB_OK ||
	    (e = idb_auth_event(db, x->now, u.mfa_enabled ? "login_password" : "login", u.email, x->req->client_ip,
	                        u.id, "")) != IDB_OK ||
	    (e = idb_db_commit(db)) != IDB_OK)
		goto out;
	if ((e = idb_api_cookie(x, token)) != IDB_OK)
		goto out;
	if (u.mfa_enabled) {
		if ((j = cJSON_CreateObject()) == NULL) {
			e = IDB_E_NOMEM;
			goto out;
		}
		cJSON_AddBoolToObject(j, "mfa_required", 1);
		cJSON_AddStringToObject(j, "csrf_token", s.csrf);
	} else
		j = session_json(x, &u, &s, 0);
	e = idb_api_reply(x, 200, j);
out:
	idb_db_rollback(db);
	sodium_memzero(hash, sizeof(hash));
	sodium_memzero(token, sizeof(token));
	sodium_memzero(&s, sizeof(s));
	return e;
}

/* The user's TOTP secret, decrypted (wipe it after use). */
enum idb_err idb_api_totp_secret(struct idb_ctx *, const char *user_id, struct idb_user_totp *t,
                                 unsigned char secret[IDB_TOTP_SECRET_LEN]);

enum idb_err
idb_api_login_mfa(struct idb_ctx *x)
{
	unsigned char secret[IDB_TOTP_SECRET_LEN];
	char token[IDB_SESSION_TOKEN_LEN + 1];
	struct idb_vvalue v[2];
	struct idb_user_totp t;
	struct idb_session s;
	sqlite3 *db = x->oh->db;
	uint64_t step = 0;
	enum idb_err e;

	memset(&s, 0, sizeof(s));
	if ((e = idb_api_body(x, mfa_fields, 2, v)) != IDB_OK)
		return e;
	if (v[0].present == v[1].present)
		return idb_api_invalid(x, v[0].present ? "recovery_code" : "code",
		                       "give either a code or a recovery_code");
	if ((e = throttled(x, x->user.email)) != IDB_OK)
		return e;
	/* The last step is read and advanced under the write lock: the same code
	 * sent twice at once is accepted once. */
	if ((e = idb_db_begin(db)) != IDB_OK)
		return e;
	if ((e = idb_api_totp_secret(x, x->user.id, &t, secret)) != IDB_OK) {
		idb_db_rollback(db);
		return e == IDB_E_NOT_FOUND ? idb_api_auth_failed(x, x->user.email, "mfa_failed", x->user.id, "") : e;
	}
	if (v[0].present)
		e = idb_totp_verify(secret, sizeof(secret), v[0].s, x->now, (uint64_t)t.last_step, &step);
	sodium_memzero(secret, sizeof(secret));
	if (e != IDB_OK)
		goto fail;
	if (v[1].present && (e = idb_recovery_use(db, x->user.id, v[1].s, x->now)) != IDB_OK)
		goto fail;
	if (v[0].present && (e = idb_user_totp_set(db, x->user.id, t.secret, t.secret_len, 1, (long long)step)) != IDB_OK)
		goto fail;
	/* A new token for the full session: the pending one is gone (no fixation). */
	if ((e = idb_session_delete(db, x->sess.hash)) != IDB_OK ||
	    (e = idb_session_create(db, x->org.id, x->user.id, x->req->client_ip, 0, x->now, token, &s)) != IDB_OK ||
	    (e = idb_throttle_ok(db, x->user.email, x->req->client_ip, x->now)) != IDB_OK ||
	    (e = idb_auth_event(db, x->now, "login", x->user.email, x->req->client_ip, x->user.id,
	                        v[0].present ? "mfa=totp" : "mfa=recovery_code")) != IDB_OK ||
	    (e = idb_db_commit(db)) != IDB_OK)
		goto fail;
	if ((e = idb_api_cookie(x, token)) == IDB_OK)
		e = idb_api_reply(x, 200, session_json(x, &x->user, &s, 0));
	sodium_memzero(token, sizeof(token));
	sodium_memzero(&s, sizeof(s));
	return e;
fail:
	idb_db_rollback(db);
	sodium_memzero(token, sizeof(token));
	if (e == IDB_E_INVALID_CREDENTIALS)
		return idb_api_auth_failed(x, x->user.email, "mfa_failed", x->user.id, "");
	return e;
}

enum idb_err
idb_api_session_get(struct idb_ctx *x)
{
	return idb_api_reply(x, 200, session_json(x, &x->user, &x->sess, 1));
}

enum idb_err
idb_api_logout(struct idb_ctx *x)
{
	enum idb_err e;

	sqlite3 *db = x->oh->db;

	if ((e = idb_db_begin(db)) != IDB_OK)
		return e;
	if ((e = idb_session_delete(db, x->sess.hash)) != IDB_OK ||
	    (e = idb_auth_event(db, x->now, "logout", x->user.email, x->req->client_ip, x->user.id, "")) != IDB_OK ||
	    (e = idb_db_commit(db)) != IDB_OK) {
		idb_db_rollback(db);
		return e;
	}
	if ((e = idb_api_cookie(x, NULL)) != IDB_OK)
		return e;
	x->resp->status = 204;
	return IDB_OK;
}
