/* SPDX-License-Identifier: ISC */
/*
 * The route table: every endpoint, the roles allowed and its checks, in one
 * place. The guard (lib/api/app.c) enforces these columns; handlers do not
 * check roles themselves. The tenant isolation test walks this table.
 */
#include "api/api.h"

#define ADMIN IDB_ROLE_ADMIN
#define ANY IDB_ROLE_ANY
#define ORG IDB_RF_ORG

const struct idb_route idb_routes[] = {
	{"GET", "/api/v1/health", idb_api_health, 0, IDB_RF_PUBLIC},
	{"GET", "/api/v1/log-key", idb_api_log_key, 0, IDB_RF_PUBLIC},

	/* Sessions */
	{"POST", "/api/v1/orgs/{org}/session", idb_api_login, ANY, ORG | IDB_RF_NOSESSION},
	{"POST", "/api/v1/orgs/{org}/session/mfa", idb_api_login_mfa, ANY, ORG | IDB_RF_MFA_STEP},
	{"GET", "/api/v1/orgs/{org}/session", idb_api_session_get, ANY, ORG | IDB_RF_ENROLL},
	{"DELETE", "/api/v1/orgs/{org}/session", idb_api_logout, ANY, ORG | IDB_RF_ENROLL | IDB_RF_MFA_STEP},

	/* The user's own second factor and password */
	{"POST", "/api/v1/orgs/{org}/me/mfa/totp", idb_api_totp_enroll, ANY, ORG | IDB_RF_ENROLL},
	{"POST", "/api/v1/orgs/{org}/me/mfa/totp/confirm", idb_api_totp_confirm, ANY, ORG | IDB_RF_ENROLL},
	{"DELETE", "/api/v1/orgs/{org}/me/mfa/totp", idb_api_totp_disable, ANY, ORG | IDB_RF_ENROLL},
	{"POST", "/api/v1/orgs/{org}/me/password", idb_api_password, ANY, ORG},

	/* Users (admin) */
	{"GET", "/api/v1/orgs/{org}/users", idb_api_users_list, ADMIN, ORG},
	{"POST", "/api/v1/orgs/{org}/users", idb_api_users_create, ADMIN, ORG},
	{"PATCH", "/api/v1/orgs/{org}/users/{id}", idb_api_users_update, ADMIN, ORG},
	{"DELETE", "/api/v1/orgs/{org}/users/{id}/mfa", idb_api_users_mfa_reset, ADMIN, ORG},

	/* Organization settings (admin) */
	{"GET", "/api/v1/orgs/{org}/settings", idb_api_settings_get, ADMIN, ORG},
	{"PATCH", "/api/v1/orgs/{org}/settings", idb_api_settings_patch, ADMIN, ORG},
};

const size_t idb_routes_n = sizeof(idb_routes) / sizeof(idb_routes[0]);
