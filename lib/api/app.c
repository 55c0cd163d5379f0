/* SPDX-License-Identifier: ISC */
/* The application: worker-lifetime state and the request dispatch. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store/db.h"
#include "store/mig.h"

enum idb_err
idb_app_init(struct idb_app *a, const struct idb_conf *c, const struct idb_master *m)
{
	enum idb_err e;

	memset(a, 0, sizeof(*a));
	a->conf = c;
	a->master = m;
	if ((e = idb_reg_open(c, m, 0, &a->reg)) != IDB_OK)
		goto fail;
	if ((e = idb_reg_schema(a->reg, &a->reg_schema)) != IDB_OK)
		goto fail;
	if ((e = idb_cache_init(&a->cache, c->org_cache)) != IDB_OK)
		goto fail;
	return IDB_OK;
fail:
	idb_app_free(a);
	return e;
}

void
idb_app_free(struct idb_app *a)
{
	if (a == NULL)
		return;
	idb_cache_free(&a->cache);
	idb_db_close(a->reg);
	a->reg = NULL;
}

enum idb_err
idb_guard_org(struct idb_ctx *x)
{
	enum idb_err e;

	if ((e = idb_reg_org_find(x->app->reg, x->req->params[0], &x->org)) != IDB_OK)
		return e;
	if (strcmp(x->org.state, "active") != 0)
		return IDB_E_NOT_FOUND;
	e = idb_cache_get(&x->app->cache, x->app->conf, x->app->reg, x->app->master, x->org.id, &x->oh);
	if (e == IDB_E_SCHEMA_BEHIND || e == IDB_E_SCHEMA_AHEAD || e == IDB_E_CHECKSUM)
		return IDB_E_UNAVAILABLE;
	if (e != IDB_OK)
		return e;
	if (x->route->flags & IDB_RF_NOSESSION)
		return IDB_OK;
	/* Sessions (issue 3) are not implemented yet: no request carries a valid
	 * one, so every session-bound route fails closed here. */
	return IDB_E_UNAUTHENTICATED;
}

void
idb_app_handle(struct idb_app *a, struct idb_req *req, struct idb_resp *resp)
{
	struct idb_ctx x;
	enum idb_err e;

	memset(&x, 0, sizeof(x));
	x.app = a;
	x.req = req;
	x.resp = resp;
	idb_req_client_ip(req, &a->conf->proxies);
	if ((x.route = idb_route_find(idb_routes, idb_routes_n, req, &e)) == NULL)
		goto out;
	if ((x.route->flags & IDB_RF_ORG) && (e = idb_guard_org(&x)) != IDB_OK)
		goto out;
	e = x.route->fn(&x);
out:
	if (e != IDB_OK) {
		if (idb_err_status(e) >= 500)
			fprintf(stderr, "immidb-fcgi[%ld]: %s %s: %s\n", (long)getpid(), req->method,
			        x.route ? x.route->pattern : "(no route)", idb_err_str(e));
		idb_resp_error(resp, e, NULL);
	}
}
