/* SPDX-License-Identifier: ISC */
/* Users (admin) and the user's own password. */
#include "api/api.h"

#include <string.h>

#include "audit/changelog.h"
#include "crypto/pw.h"
#include "store/db.h"

static const char *const roles[] = {"admin", "member", "readonly", NULL};

static int
email_ok(const char *s)
{
	return idb_user_email_valid(s);
}

static const struct idb_vfield create_fields[] = {
	{"email", IDB_V_STRING, IDB_VF_REQUIRED, 3, IDB_EMAIL_MAX, NULL, email_ok, "is not a valid email address"},
	{"name", IDB_V_STRING, IDB_VF_REQUIRED, 1, IDB_USER_NAME_MAX, NULL, NULL, NULL},
	{"role", IDB_V_ENUM, IDB_VF_REQUIRED, 0, 0, roles, NULL, NULL},
	{"password", IDB_V_STRING, IDB_VF_REQUIRED, IDB_PW_MIN, IDB_PW_MAX, NULL, NULL, NULL},
};

static const struct idb_vfield update_fields[] = {
	{"version", IDB_V_INT, IDB_VF_REQUIRED, 1, (long long)1 << 53, NULL, NULL, NULL},
	{"name", IDB_V_STRING, 0, 1, IDB_USER_NAME_MAX, NULL, NULL, NULL},
	{"role", IDB_V_ENUM, 0, 0, 0, roles, NULL, NULL},
	{"disabled", IDB_V_BOOL, 0, 0, 0, NULL, NULL, NULL},
};

static const struct idb_vfield password_fields[] = {
	{"current_password", IDB_V_STRING, IDB_VF_REQUIRED, 1, IDB_PW_MAX, NULL, NULL, NULL},
	{"new_password", IDB_V_STRING, IDB_VF_REQUIRED, IDB_PW_MIN, IDB_PW_MAX, NULL, NULL, NULL},
};

/* The change-log row of a new user (inside the caller's transaction). */
enum idb_err
idb_api_user_created(sqlite3 *db, const struct idb_ctx *x, const struct idb_user *u)
{
	struct idb_actor a;
	cJSON *c = cJSON_CreateObject(), *v;
	enum idb_err e = IDB_OK;

	if (c == NULL)
		return IDB_E_NOMEM;
	if (x != NULL)
		idb_api_actor(x, &a);
	else {
		a.kind = "system";
		a.id = "immidb-admin";
		a.email = "";
	}
	v = cJSON_CreateString(u->email);
	e = idb_chg_field(c, "email", NULL, v);
	cJSON_Delete(v);
	v = cJSON_CreateString(u->name);
	if (e == IDB_OK)
		e = idb_chg_field(c, "name", NULL, v);
	cJSON_Delete(v);
	v = cJSON_CreateString(u->role);
	if (e == IDB_OK)
		e = idb_chg_field(c, "role", NULL, v);
	cJSON_Delete(v);
	if (e == IDB_OK)
		e = idb_chg_secret(c, "password", 0, 1);
	if (e == IDB_OK)
		e = idb_chg_append(db, &a, "create", "users", u->id, c);
	cJSON_Delete(c);
	return e;
}

/* A secret of a user changed (password): "[encrypted]" both sides. */
enum idb_err
idb_api_user_secret_changed(const struct idb_ctx *x, const char *user_id, const char *field)
{
	struct idb_actor a;
	cJSON *c = cJSON_CreateObject();
	enum idb_err e;

	if (c == NULL)
		return IDB_E_NOMEM;
	idb_api_actor(x, &a);
	if ((e = idb_chg_secret(c, field, 1, 1)) == IDB_OK)
		e = idb_chg_append(x->oh->db, &a, "update", "users", user_id, c);
	cJSON_Delete(c);
	return e;
}

/* The change-log row of a user update: the fields that differ. */
enum idb_err
idb_api_user_changed(const struct idb_ctx *x, const struct idb_user *a, const struct idb_user *b)
{
	cJSON *ja = idb_user_json(a), *jb = idb_user_json(b), *c = cJSON_CreateObject();
	static const char *const keys[] = {"name", "role", "disabled", "mfa_enabled"};
	struct idb_actor who;
	enum idb_err e = IDB_OK;
	size_t i;

	if (ja == NULL || jb == NULL || c == NULL)
		e = IDB_E_NOMEM;
	for (i = 0; i < 4 && e == IDB_OK; i++) {
		const cJSON *f = cJSON_GetObjectItem(ja, keys[i]), *t = cJSON_GetObjectItem(jb, keys[i]);

		if (!cJSON_Compare(f, t, 1))
			e = idb_chg_field(c, keys[i], f, t);
	}
	idb_api_actor(x, &who);
	if (e == IDB_OK && c->child != NULL)
		e = idb_chg_append(x->oh->db, &who, "update", "users", b->id, c);
	cJSON_Delete(ja);
	cJSON_Delete(jb);
	cJSON_Delete(c);
	return e;
}

static enum idb_err
user_changes(const struct idb_ctx *x, const struct idb_user *a, const struct idb_user *b)
{
	return idb_api_user_changed(x, a, b);
}

struct page {
	cJSON *items;
	int n;
	char last[IDB_ID_LEN + 1];
};

static void
add_user(const struct idb_user *u, void *arg)
{
	struct page *p = arg;

	cJSON_AddItemToArray(p->items, idb_user_json(u));
	memcpy(p->last, u->id, sizeof(p->last));
	p->n++;
}

enum idb_err
idb_api_users_list(struct idb_ctx *x)
{
	const char *cursor;
	struct page p;
	cJSON *j;
	int limit;
	enum idb_err e;

	memset(&p, 0, sizeof(p));
	if ((e = idb_api_limit(x, &limit)) != IDB_OK || (e = idb_req_query(x->req, "cursor", &cursor)) != IDB_OK)
		return e;
	if (cursor != NULL && !idb_id_valid(cursor, 'u'))
		return IDB_E_BAD_REQUEST;
	if ((j = cJSON_CreateObject()) == NULL || (p.items = cJSON_AddArrayToObject(j, "items")) == NULL) {
		cJSON_Delete(j);
		return IDB_E_NOMEM;
	}
	if ((e = idb_user_page(x->oh->db, cursor, limit, add_user, &p)) != IDB_OK) {
		cJSON_Delete(j);
		return e;
	}
	if (p.n == limit)
		cJSON_AddStringToObject(j, "next_cursor", p.last);
	else
		cJSON_AddNullToObject(j, "next_cursor");
	return idb_api_reply(x, 200, j);
}

enum idb_err
idb_api_users_create(struct idb_ctx *x)
{
	struct idb_vvalue v[4];
	const char *field = NULL;
	struct idb_user u;
	enum idb_err e;

	if ((e = idb_api_body(x, create_fields, 4, v)) != IDB_OK)
		return e;
	if ((e = idb_db_begin(x->oh->db)) != IDB_OK)
		return e;
	e = idb_user_create(x->oh->db, v[0].s, v[1].s, v[2].s, v[3].s, &u, &field);
	if (e == IDB_OK)
		e = idb_api_user_created(x->oh->db, x, &u);
	if (e == IDB_OK)
		e = idb_db_commit(x->oh->db);
	if (e != IDB_OK) {
		idb_db_rollback(x->oh->db);
		return e == IDB_E_VALIDATION ? idb_api_invalid(x, field ? field : "body", "is not valid") : e;
	}
	idb_auth_event(x->oh->db, x->now, "user_created", u.email, x->req->client_ip, x->user.id, u.id);
	return idb_api_reply(x, 201, idb_user_json(&u));
}

enum idb_err
idb_api_users_update(struct idb_ctx *x)
{
	const char *id = x->req->params[1];
	struct idb_vvalue v[4];
	sqlite3 *db = x->oh->db;
	struct idb_user u, old;
	enum idb_err e;

	if (!idb_id_valid(id, 'u'))
		return IDB_E_NOT_FOUND;
	if ((e = idb_api_body(x, update_fields, 4, v)) != IDB_OK)
		return e;
	if ((e = idb_db_begin(db)) != IDB_OK)
		return e;
	if ((e = idb_user_get(db, id, &old)) == IDB_OK)
		e = idb_user_update(db, id, v[0].i, v[1].present ? v[1].s : NULL, v[2].present ? v[2].s : NULL,
		                    v[3].present ? (int)v[3].i : -1, &u);
	if (e == IDB_OK)
		e = user_changes(x, &old, &u);
	if (e == IDB_OK && u.disabled)
		e = idb_session_end_user(db, id, NULL);
	if (e == IDB_OK)
		e = idb_auth_event(db, x->now, "user_updated", u.email, x->req->client_ip, x->user.id, u.id);
	if (e != IDB_OK || (e = idb_db_commit(db)) != IDB_OK) {
		idb_db_rollback(db);
		return e;
	}
	return idb_api_reply(x, 200, idb_user_json(&u));
}

enum idb_err
idb_api_password(struct idb_ctx *x)
{
	char hash[128], fresh[crypto_pwhash_STRBYTES];
	struct idb_vvalue v[2];
	sqlite3 *db = x->oh->db;
	long long after;
	enum idb_err e;

	memset(hash, 0, sizeof(hash));
	memset(fresh, 0, sizeof(fresh));
	if ((e = idb_api_body(x, password_fields, 2, v)) != IDB_OK)
		return e;
	if ((e = idb_throttle_check(db, x->user.email, x->req->client_ip, x->now, &after)) != IDB_OK)
		return e == IDB_E_TOO_MANY_REQUESTS ? idb_api_retry_after(x, after) : e;
	if ((e = idb_user_hash(db, x->user.id, hash)) != IDB_OK)
		goto out;
	if (idb_pw_verify(hash, v[0].s) != IDB_OK) {
		idb_throttle_fail(db, x->user.email, x->req->client_ip, x->now);
		idb_auth_event(db, x->now, "password_failed", x->user.email, x->req->client_ip, x->user.id, "");
		e = IDB_E_INVALID_CREDENTIALS;
		goto out;
	}
	if ((e = idb_pw_hash(v[1].s, fresh)) != IDB_OK || (e = idb_db_begin(db)) != IDB_OK)
		goto out;
	/* The other sessions end; this one goes on. */
	if ((e = idb_user_set_password(db, x->user.id, fresh)) != IDB_OK ||
	    (e = idb_api_user_secret_changed(x, x->user.id, "password")) != IDB_OK ||
	    (e = idb_session_end_user(db, x->user.id, x->sess.hash)) != IDB_OK ||
	    (e = idb_auth_event(db, x->now, "password_changed", x->user.email, x->req->client_ip, x->user.id, "")) != IDB_OK ||
	    (e = idb_db_commit(db)) != IDB_OK)
		goto out;
	x->resp->status = 204;
out:
	idb_db_rollback(db);
	sodium_memzero(hash, sizeof(hash));
	sodium_memzero(fresh, sizeof(fresh));
	return e;
}
