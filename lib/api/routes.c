/* SPDX-License-Identifier: ISC */
/* The route table: every endpoint, its roles and its checks, in one place. */
#include "api/api.h"

const struct idb_route idb_routes[] = {
	{"GET", "/api/v1/health", idb_api_health, 0, IDB_RF_PUBLIC},
	{"GET", "/api/v1/log-key", idb_api_log_key, 0, IDB_RF_PUBLIC},
	{"GET", "/api/v1/orgs/{org}/session", idb_api_session_get, IDB_ROLE_ANY, IDB_RF_ORG},
};

const size_t idb_routes_n = sizeof(idb_routes) / sizeof(idb_routes[0]);
