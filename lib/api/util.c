/* SPDX-License-Identifier: ISC */
/* Helpers shared by the handlers: bodies, replies, cookies, paging. */
#include "api/api.h"

#include <string.h>

#include "audit/changelog.h"
#include "core/util.h"

static void
json_free(void *p)
{
	cJSON_Delete(p);
}

static enum idb_err
own_fields(struct idb_ctx *x, cJSON *fields)
{
	if (x->fields != NULL) {
		cJSON_Delete(fields);
		return IDB_OK;
	}
	x->fields = fields;
	return idb_arena_defer(x->req->arena, json_free, fields) == 0 ? IDB_OK : IDB_E_NOMEM;
}

enum idb_err
idb_api_body(struct idb_ctx *x, const struct idb_vfield *tab, size_t n, struct idb_vvalue *vals)
{
	cJSON *body, *fields = NULL;
	enum idb_err e;

	if ((e = idb_req_json(x->req, &body)) != IDB_OK)
		return e;
	e = idb_valid_apply(tab, n, body, vals, &fields);
	if (fields != NULL && own_fields(x, fields) != IDB_OK)
		return IDB_E_NOMEM;
	return e;
}

enum idb_err
idb_api_invalid(struct idb_ctx *x, const char *field, const char *msg)
{
	cJSON *f = x->fields;

	if (f == NULL) {
		if ((f = cJSON_CreateObject()) == NULL || own_fields(x, f) != IDB_OK)
			return IDB_E_NOMEM;
	}
	if (cJSON_GetObjectItemCaseSensitive(f, field) == NULL)
		cJSON_AddStringToObject(f, field, msg);
	return IDB_E_VALIDATION;
}

enum idb_err
idb_api_reply(struct idb_ctx *x, int status, cJSON *j)
{
	enum idb_err e;

	if (j == NULL)
		return IDB_E_NOMEM;
	e = idb_resp_json(x->resp, status, j);
	cJSON_Delete(j);
	return e;
}

enum idb_err
idb_api_cookie(struct idb_ctx *x, const char *token)
{
	struct idb_buf b;
	char *v;
	enum idb_err e;

	idb_buf_init(&b, 256);
	if ((e = idb_buf_addstr(&b, "immidb_session=")) != IDB_OK ||
	    (e = idb_buf_addstr(&b, token ? token : "")) != IDB_OK ||
	    (e = idb_buf_addstr(&b, "; Path=/api/; HttpOnly; SameSite=Strict")) != IDB_OK ||
	    (x->app->cookie_secure && (e = idb_buf_addstr(&b, "; Secure")) != IDB_OK) ||
	    (token == NULL && (e = idb_buf_addstr(&b, "; Max-Age=0")) != IDB_OK))
		goto out;
	if ((v = idb_arena_strdup(x->req->arena, b.data)) == NULL)
		e = IDB_E_NOMEM;
	else
		e = idb_resp_header(x->resp, "Set-Cookie", v);
out:
	idb_buf_free(&b);
	return e;
}

enum idb_err
idb_api_limit(struct idb_ctx *x, int *limit)
{
	const char *v;
	long long n;
	enum idb_err e;

	*limit = 50;
	if ((e = idb_req_query(x->req, "limit", &v)) != IDB_OK)
		return e;
	if (v == NULL)
		return IDB_OK;
	if (idb_parse_ll(v, 1, 200, &n) != 0)
		return IDB_E_BAD_REQUEST;
	*limit = (int)n;
	return IDB_OK;
}

void
idb_api_actor(const struct idb_ctx *x, struct idb_actor *a)
{
	a->kind = x->sysadmin ? "sysadmin" : "user";
	a->id = x->user.id;
	a->email = x->user.email;
}
