/* SPDX-License-Identifier: ISC */
/*
 * The route table: every endpoint, the roles allowed and its checks, in one
 * place. The guard (lib/api/app.c) enforces these columns; handlers do not
 * check roles themselves. The tenant isolation test walks this table.
 */
#include "api/api.h"
#include "api/records.h"

#define ADMIN IDB_ROLE_ADMIN
#define ANY IDB_ROLE_ANY
#define ORG IDB_RF_ORG
#define PLANNED IDB_RF_PLANNED

const struct idb_route idb_routes[] = {
	{"GET", "/api/v1/health", idb_api_health, 0, IDB_RF_PUBLIC, NULL, NULL},
	{"GET", "/api/v1/log-key", idb_api_log_key, 0, IDB_RF_PUBLIC, NULL, NULL},

	/* Sysadmins: log in (sysadmin addresses only) and break-glass */
	{"POST", "/api/v1/sysadmin/session", idb_api_sysadmin_login, 0, IDB_RF_PUBLIC, NULL, NULL},
	{"POST", "/api/v1/sysadmin/break-glass", idb_api_break_glass, ADMIN, IDB_RF_SYSADMIN, NULL, NULL},

	/* Sessions */
	{"POST", "/api/v1/orgs/{org}/session", idb_api_login, ANY, ORG | IDB_RF_NOSESSION, NULL, NULL},
	{"POST", "/api/v1/orgs/{org}/session/mfa", idb_api_login_mfa, ANY, ORG | IDB_RF_MFA_STEP, NULL, NULL},
	{"GET", "/api/v1/orgs/{org}/session", idb_api_session_get, ANY, ORG | IDB_RF_ENROLL, NULL, NULL},
	{"DELETE", "/api/v1/orgs/{org}/session", idb_api_logout, ANY, ORG | IDB_RF_ENROLL | IDB_RF_MFA_STEP, NULL, NULL},

	/* The user's own second factor and password */
	{"POST", "/api/v1/orgs/{org}/me/mfa/totp", idb_api_totp_enroll, ANY, ORG | IDB_RF_ENROLL, NULL, "user.update"},
	{"POST", "/api/v1/orgs/{org}/me/mfa/totp/confirm", idb_api_totp_confirm, ANY, ORG | IDB_RF_ENROLL, NULL, "user.update"},
	{"DELETE", "/api/v1/orgs/{org}/me/mfa/totp", idb_api_totp_disable, ANY, ORG | IDB_RF_ENROLL, NULL, "user.update"},
	{"POST", "/api/v1/orgs/{org}/me/password", idb_api_password, ANY, ORG, NULL, "user.update"},

	/* Users (admin) */
	{"GET", "/api/v1/orgs/{org}/users", idb_api_users_list, ADMIN, ORG, NULL, "record.list"},
	{"POST", "/api/v1/orgs/{org}/users", idb_api_users_create, ADMIN, ORG, NULL, "user.create"},
	{"PATCH", "/api/v1/orgs/{org}/users/{id}", idb_api_users_update, ADMIN, ORG, NULL, "user.update"},
	{"DELETE", "/api/v1/orgs/{org}/users/{id}/mfa", idb_api_users_mfa_reset, ADMIN, ORG, NULL, "user.mfa_reset"},

	/* Case data: one generic set of handlers, the resource in the last column */
#define WRITE (IDB_ROLE_ADMIN | IDB_ROLE_MEMBER)
#define RESOURCE(path, res)                                                                       \
	{"GET", "/api/v1/orgs/{org}/" path, idb_api_rec_list, ANY, ORG, &res, "record.list"},                       \
	{"POST", "/api/v1/orgs/{org}/" path, idb_api_rec_create, WRITE, ORG, &res, "record.create"},                  \
	{"GET", "/api/v1/orgs/{org}/" path "/{id}", idb_api_rec_get, ANY, ORG, &res, "record.read"},                \
	{"PATCH", "/api/v1/orgs/{org}/" path "/{id}", idb_api_rec_update, WRITE, ORG | PLANNED, &res, "record.update"},         \
	{"DELETE", "/api/v1/orgs/{org}/" path "/{id}", idb_api_rec_delete, WRITE, ORG, &res, "record.delete"},        \
	{"POST", "/api/v1/orgs/{org}/" path "/{id}/reveal", idb_api_rec_reveal, WRITE, ORG, &res, "record.reveal"}
	RESOURCE("clients", idb_res_clients),
	RESOURCE("cases", idb_res_cases),
	RESOURCE("events", idb_res_events),
	RESOURCE("notes", idb_res_notes),
	RESOURCE("credentials", idb_res_credentials),

	/* Change log (admin) */
	{"GET", "/api/v1/orgs/{org}/changes", idb_api_changes_list, ADMIN, ORG, NULL, "record.list"},
	{"GET", "/api/v1/orgs/{org}/changes/export", idb_api_changes_export, ADMIN, ORG, NULL, "changes.export"},

	/* The sysadmins that may reach the org (admin) */
	{"GET", "/api/v1/orgs/{org}/sysadmins", idb_api_org_sysadmins, ADMIN, ORG, NULL, "record.list"},
	{"DELETE", "/api/v1/orgs/{org}/sysadmins/{id}", idb_api_org_sysadmin_revoke, ADMIN, ORG, NULL, "sysadmin.revoked"},

	/* Notifications (admin) */
	{"GET", "/api/v1/orgs/{org}/notifications", idb_api_notifications, ADMIN, ORG, NULL, "record.list"},

	/* Access log (admin) */
	{"GET", "/api/v1/orgs/{org}/access-log", idb_api_log_list, ADMIN, ORG, NULL, "record.list"},
	{"GET", "/api/v1/orgs/{org}/access-log/export", idb_api_log_export, ADMIN, ORG, NULL, "log.export"},
	{"GET", "/api/v1/orgs/{org}/access-log/verify", idb_api_log_verify, ADMIN, ORG, NULL, "record.read"},
	{"GET", "/api/v1/orgs/{org}/access-log/checkpoint", idb_api_log_checkpoint, ADMIN, ORG, NULL, "record.read"},

	/* The organization export (admin; re-authenticated by the handler) */
	{"POST", "/api/v1/orgs/{org}/export", idb_api_org_export, ADMIN, ORG, NULL, "org.export"},

	/* Organization settings (admin) */
	{"GET", "/api/v1/orgs/{org}/settings", idb_api_settings_get, ADMIN, ORG, NULL, "record.read"},
	{"PATCH", "/api/v1/orgs/{org}/settings", idb_api_settings_patch, ADMIN, ORG, NULL, "settings.update"},
};

const size_t idb_routes_n = sizeof(idb_routes) / sizeof(idb_routes[0]);
