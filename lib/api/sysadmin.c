/* SPDX-License-Identifier: ISC */
/*
 * Sysadmins through the application: their log in (from the sysadmin
 * addresses only, TOTP mandatory), break-glass, and the org admins' view and
 * withdrawal of the sysadmins that may reach their org.
 */
#include "api/api.h"

#include <string.h>

#include "audit/accesslog.h"
#include "auth/sysadmin.h"
#include "crypto/pw.h"
#include "outbox/outbox.h"
#include "store/db.h"

static const struct idb_vfield login_fields[] = {
	{"email", IDB_V_STRING, IDB_VF_REQUIRED, 1, 254, NULL, NULL, NULL},
	{"password", IDB_V_STRING, IDB_VF_REQUIRED, 1, 1024, NULL, NULL, NULL},
	{"code", IDB_V_STRING, IDB_VF_REQUIRED, 1, 16, NULL, NULL, NULL},
};

static int
reason_ok(const char *s)
{
	return idb_reason_valid(s);
}

static const struct idb_vfield glass_fields[] = {
	{"org", IDB_V_STRING, IDB_VF_REQUIRED, 1, 40, NULL, NULL, NULL},
	{"reason", IDB_V_STRING, IDB_VF_REQUIRED, IDB_REASON_MIN, IDB_REASON_MAX, NULL, reason_ok,
	 "must be 5 to 500 characters of text"},
};

static enum idb_err
sysadmin_cookie(struct idb_ctx *x, const char *token)
{
	struct idb_buf b;
	char *v;
	enum idb_err e;

	idb_buf_init(&b, 256);
	if ((e = idb_buf_addstr(&b, "immidb_sysadmin=")) != IDB_OK || (e = idb_buf_addstr(&b, token)) != IDB_OK ||
	    (e = idb_buf_addstr(&b, "; Path=/api/; HttpOnly; SameSite=Strict")) != IDB_OK ||
	    (x->app->cookie_secure && (e = idb_buf_addstr(&b, "; Secure")) != IDB_OK))
		goto out;
	e = (v = idb_arena_strdup(x->req->arena, b.data)) == NULL ? IDB_E_NOMEM : idb_resp_header(x->resp, "Set-Cookie", v);
out:
	idb_buf_free(&b);
	return e;
}

enum idb_err
idb_api_sysadmin_login(struct idb_ctx *x)
{
	char hash[128], token[IDB_TOKEN_LEN + 1];
	struct idb_sysadmin_session s;
	struct idb_vvalue v[3];
	struct idb_sysadmin a;
	enum idb_err e;
	cJSON *j, *sj;

	memset(hash, 0, sizeof(hash));
	if (!idb_cidr_list_contains(&x->app->conf->sysadmin_ips, x->req->client_ip))
		return IDB_E_IP_NOT_ALLOWED;
	if ((e = idb_api_body(x, login_fields, 3, v)) != IDB_OK)
		return e;
	e = idb_sysadmin_by_email(x->app->reg, v[0].s, &a, hash);
	if (e == IDB_E_NOT_FOUND) {
		idb_pw_verify(x->app->dummy_hash, v[1].s); /* the same work for an unknown email */
		return IDB_E_INVALID_CREDENTIALS;
	}
	if (e != IDB_OK)
		return e;
	e = idb_pw_verify(hash, v[1].s);
	sodium_memzero(hash, sizeof(hash));
	if (e != IDB_OK || a.disabled)
		return IDB_E_INVALID_CREDENTIALS;
	if ((e = idb_sysadmin_totp(x->app->reg, x->app->master, a.id, v[2].s, x->now)) != IDB_OK)
		return e == IDB_E_INVALID_CREDENTIALS ? e : IDB_E_UNAVAILABLE;
	if ((e = idb_sysadmin_session_create(x->app->reg, a.id, x->req->client_ip, x->now, token, &s)) != IDB_OK)
		return e;
	e = sysadmin_cookie(x, token);
	sodium_memzero(token, sizeof(token));
	if (e != IDB_OK)
		return e;
	if ((j = cJSON_CreateObject()) == NULL || (sj = cJSON_AddObjectToObject(j, "sysadmin")) == NULL) {
		cJSON_Delete(j);
		return IDB_E_NOMEM;
	}
	cJSON_AddStringToObject(sj, "id", a.id);
	cJSON_AddStringToObject(sj, "email", a.email);
	cJSON_AddStringToObject(sj, "name", a.name);
	cJSON_AddStringToObject(j, "csrf_token", s.csrf);
	return idb_api_reply(x, 200, j);
}

/* The guard of /api/v1/sysadmin/ routes other than the log in. */
enum idb_err
idb_guard_sysadmin(struct idb_ctx *x)
{
	struct idb_sysadmin_session s;
	struct idb_sysadmin a;
	const char *csrf;
	enum idb_err e;

	if (!idb_cidr_list_contains(&x->app->conf->sysadmin_ips, x->req->client_ip))
		return IDB_E_IP_NOT_ALLOWED;
	if ((e = idb_sysadmin_session_find(x->app->reg, idb_req_cookie(x->req, "immidb_sysadmin"), x->now, &s)) != IDB_OK)
		return e;
	if ((e = idb_sysadmin_get(x->app->reg, s.sysadmin_id, &a)) != IDB_OK || a.disabled)
		return IDB_E_UNAUTHENTICATED;
	csrf = x->req->csrf_token;
	if (strcmp(x->req->method, "GET") != 0 &&
	    (csrf == NULL || strlen(csrf) != strlen(s.csrf) || sodium_memcmp(csrf, s.csrf, strlen(s.csrf)) != 0))
		return IDB_E_CSRF_FAILED;
	x->sysadmin = 1;
	memcpy(x->user.id, a.id, sizeof(a.id));
	memcpy(x->user.email, a.email, strlen(a.email) + 1);
	memcpy(x->user.name, a.name, strlen(a.name) + 1);
	memcpy(x->user.role, "admin", 6);
	x->user.mfa_enabled = 1;
	memcpy(x->sess.csrf, s.csrf, sizeof(s.csrf));
	return IDB_OK;
}

/* Break-glass always tells the org's admins, whatever their setting. */
static enum idb_err
glass_notice(struct idb_ctx *x, sqlite3 *db, const char *reason, const char *at)
{
	struct idb_buf b;
	enum idb_err e;

	idb_buf_init(&b, 8192);
	idb_buf_addstr(&b, "A platform system administrator used break-glass access to your organization in ImmiDB: "
	                   "access for 4 hours without an assignment.\r\n\r\nWho: ");
	idb_buf_addstr(&b, x->user.name);
	idb_buf_addstr(&b, " <");
	idb_buf_addstr(&b, x->user.email);
	idb_buf_addstr(&b, ">\r\nWhen: ");
	idb_buf_addstr(&b, at);
	idb_buf_addstr(&b, "\r\nReason given: ");
	idb_buf_addstr(&b, reason);
	idb_buf_addstr(&b, "\r\n\r\nEvery request is an entry of your access log (sysadmin.access). Org admins can "
	                   "withdraw the grant at once (DELETE .../sysadmins/<id>).");
	e = b.data ? idb_outbox_queue(db, "break_glass", x->user.id, "Break-glass access to your data", b.data) : IDB_E_NOMEM;
	idb_buf_free(&b);
	return e;
}

enum idb_err
idb_api_break_glass(struct idb_ctx *x)
{
	char until[IDB_TIME_LEN];
	struct idb_log_entry le;
	struct idb_vvalue v[2];
	struct idb_org_handle *oh;
	enum idb_err e;
	cJSON *j;

	if ((e = idb_api_body(x, glass_fields, 2, v)) != IDB_OK)
		return e;
	if ((e = idb_reg_org_find(x->app->reg, v[0].s, &x->org)) != IDB_OK)
		return e == IDB_E_NOT_FOUND ? idb_api_invalid(x, "org", "no such organization") : e;
	if ((e = idb_cache_get(&x->app->cache, x->app->conf, x->app->reg, x->app->master, x->org.id, &oh)) != IDB_OK)
		return IDB_E_UNAVAILABLE;
	/* The org's log first: no grant without its entry (fail closed). */
	if ((e = idb_db_begin(oh->db)) != IDB_OK)
		return IDB_E_UNAVAILABLE;
	memset(&le, 0, sizeof(le));
	le.actor_kind = "sysadmin";
	le.actor_id = x->user.id;
	le.actor_email = x->user.email;
	le.via = "app";
	le.ip = x->req->client_ip;
	le.action = "sysadmin.break_glass";
	le.target = "org";
	le.reason = v[1].s;
	le.outcome = "ok";
	le.detail = "4 hours";
	/* The entry and the notice commit first: a grant never exists unrecorded.
	 * (If the grant then cannot be written, the log shows an attempt.) */
	if ((e = idb_log_append(oh->db, &le)) != IDB_OK || (e = glass_notice(x, oh->db, v[1].s, le.at)) != IDB_OK ||
	    (e = idb_db_commit(oh->db)) != IDB_OK) {
		idb_db_rollback(oh->db);
		return IDB_E_UNAVAILABLE;
	}
	if (idb_sysadmin_grant(x->app->reg, x->user.id, x->org.id, "break_glass", NULL, v[1].s, until) != IDB_OK)
		return IDB_E_UNAVAILABLE;
	if ((j = cJSON_CreateObject()) == NULL)
		return IDB_E_NOMEM;
	cJSON_AddStringToObject(j, "expires_at", until);
	return idb_api_reply(x, 200, j);
}

enum idb_err
idb_api_notifications(struct idb_ctx *x)
{
	cJSON *list = NULL, *j;
	enum idb_err e;
	int limit;

	if ((e = idb_api_limit(x, &limit)) != IDB_OK || (e = idb_outbox_list(x->oh->db, limit, &list)) != IDB_OK)
		return e;
	if ((j = cJSON_CreateObject()) == NULL) {
		cJSON_Delete(list);
		return IDB_E_NOMEM;
	}
	cJSON_AddItemToObject(j, "items", list);
	cJSON_AddNullToObject(j, "next_cursor");
	return idb_api_reply(x, 200, j);
}

enum idb_err
idb_api_org_sysadmins(struct idb_ctx *x)
{
	cJSON *list = NULL;
	enum idb_err e;

	if ((e = idb_sysadmin_list(x->app->reg, x->org.id, &list)) != IDB_OK)
		return e;
	return idb_api_reply(x, 200, list);
}

enum idb_err
idb_api_org_sysadmin_revoke(struct idb_ctx *x)
{
	enum idb_err e;

	if (!idb_id_valid(x->req->params[1], 's'))
		return IDB_E_NOT_FOUND;
	if ((e = idb_sysadmin_revoke(x->app->reg, x->req->params[1], x->org.id)) != IDB_OK)
		return e;
	x->log_detail = x->req->params[1];
	x->resp->status = 204;
	return IDB_OK;
}
