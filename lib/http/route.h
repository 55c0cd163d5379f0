/* SPDX-License-Identifier: ISC */
/*
 * The router: a table of method + path pattern -> handler, with the roles
 * allowed and the checks each route needs. One row per endpoint; the table
 * is the single place where access rules are declared, and the tenant
 * isolation test walks it.
 */
#ifndef IDB_HTTP_ROUTE_H
#define IDB_HTTP_ROUTE_H

#include <stddef.h>
#include "core/err.h"
#include "http/req.h"

struct idb_ctx;
typedef enum idb_err (*idb_handler)(struct idb_ctx *);

/* Roles allowed on a route. */
#define IDB_ROLE_ADMIN 0x1u
#define IDB_ROLE_MEMBER 0x2u
#define IDB_ROLE_READONLY 0x4u
#define IDB_ROLE_ANY (IDB_ROLE_ADMIN | IDB_ROLE_MEMBER | IDB_ROLE_READONLY)

/* Route flags. */
#define IDB_RF_PUBLIC 0x1u    /* no organization, no session (health, log-key) */
#define IDB_RF_ORG 0x2u       /* under /orgs/{org}: the first capture is the org slug */
#define IDB_RF_NOSESSION 0x4u /* org route reachable without a session (log in) */
#define IDB_RF_MFA_STEP 0x8u  /* allowed while the second factor is pending */
#define IDB_RF_ENROLL 0x10u   /* allowed while the org requires MFA and the user has none */
#define IDB_RF_SYSADMIN 0x20u /* under /api/v1/sysadmin/: a sysadmin session */
#define IDB_RF_PLANNED 0x40u  /* a write the handler plans in a read snapshot; the group commit runs it */

#define IDB_SEGMENT_MAX 128 /* a captured path segment */

struct idb_route {
	const char *method;
	const char *pattern; /* "/api/v1/orgs/{org}/session": {name} captures one segment */
	idb_handler fn;
	unsigned roles;
	unsigned flags;
	const void *arg;    /* handler's data, e.g. the resource of a generic handler */
	const char *action; /* the access-log action of the route, or NULL if it logs itself */
};

/*
 * Finds the route for the request's method and path and fills req->params.
 * NULL with *e = IDB_E_NOT_FOUND if no pattern matches the path, or
 * IDB_E_METHOD_NOT_ALLOWED if one matches with another method.
 */
const struct idb_route *idb_route_find(const struct idb_route *table, size_t n, struct idb_req *req,
                                       enum idb_err *e);
/* 1 if path matches pattern; captures go to params (may be NULL). */
int idb_route_match(const char *pattern, const char *path, const char **params, size_t *nparams,
                    struct idb_arena *arena);

#endif
