/* SPDX-License-Identifier: ISC */
/*
 * The application: what a worker holds for its life (configuration, master
 * key, registry handle, org cache) and the request context handlers see.
 * idb_app_handle is the one entry point from fcgi/ (and from tests).
 */
#ifndef IDB_API_API_H
#define IDB_API_API_H

#include <sqlite3.h>
#include "conf/conf.h"
#include "crypto/key.h"
#include "http/req.h"
#include "http/route.h"
#include "store/cache.h"
#include "store/registry.h"

struct idb_app {
	const struct idb_conf *conf;    /* borrowed; outlives the app */
	const struct idb_master *master; /* borrowed */
	sqlite3 *reg;                   /* owned */
	struct idb_cache cache;         /* owned */
	int reg_schema;                 /* registry schema version at open */
};

struct idb_ctx {
	struct idb_app *app;
	struct idb_req *req;
	struct idb_resp *resp;
	const struct idb_route *route;
	struct idb_org org;            /* for IDB_RF_ORG routes */
	struct idb_org_handle *oh;     /* the org's open database */
};

extern const struct idb_route idb_routes[];
extern const size_t idb_routes_n;

/* Opens the registry; IDB_E_BADKEY for a wrong master key, IDB_E_SCHEMA_BEHIND
 * if the registry needs `immidb-admin migrate`. */
enum idb_err idb_app_init(struct idb_app *, const struct idb_conf *, const struct idb_master *);
void idb_app_free(struct idb_app *);
/* Routes, guards and runs one request; resp always holds an answer after it. */
void idb_app_handle(struct idb_app *, struct idb_req *, struct idb_resp *);

/* The guard of org routes: org -> open database (-> session, MFA, role, CSRF). */
enum idb_err idb_guard_org(struct idb_ctx *);

/* Handlers. */
enum idb_err idb_api_health(struct idb_ctx *);
enum idb_err idb_api_log_key(struct idb_ctx *);
enum idb_err idb_api_session_get(struct idb_ctx *);

#endif
