/* SPDX-License-Identifier: ISC */
/*
 * The application: what a worker holds for its life (configuration, master
 * key, registry handle, org cache) and the request context handlers see.
 * idb_app_start and idb_app_complete are the one entry point from fcgi/.
 */
#ifndef IDB_API_API_H
#define IDB_API_API_H

#include <time.h>
#include <sqlite3.h>
#include "auth/auth.h"
#include "auth/settings.h"
#include "auth/users.h"
#include "conf/conf.h"
#include "crypto/key.h"
#include "http/req.h"
#include "http/route.h"
#include "store/cache.h"
#include "store/plan.h"
#include "audit/logq.h"
#include "store/registry.h"
#include "valid/valid.h"

#define IDB_APP_ORGS 16         /* orgs a worker remembers between registry changes */
#define IDB_APP_REGISTRY_MS 100 /* how often a worker looks whether the registry changed */

struct idb_app {
	const struct idb_conf *conf;     /* borrowed; outlives the app */
	const struct idb_master *master; /* borrowed */
	sqlite3 *reg;                    /* owned */
	struct idb_cache cache;          /* owned */
	int reg_schema;                  /* registry schema version at open */
	char dummy_hash[128];            /* Argon2id of a random password: unknown emails cost the same */
	int cookie_secure;               /* 0 only for plain HTTP on loopback (make run, tests) */
	long long reg_seen;              /* the registry's data_version when the flags and orgs were read */
	long long reg_checked_ms;        /* when it was last looked at (monotonic ms) */
	int maintenance;                 /* the maintenance flag as last read */
	struct idb_org orgs[IDB_APP_ORGS]; /* orgs looked up since then, by slug */
	size_t norgs, next_org;
};

/* 1 while the deployment is in maintenance, 0 if not, -1 if the flag cannot be read (the registry flag,
 * read again when the registry changed). */
int idb_app_maintenance(struct idb_app *);
/* An org by slug, from the worker's memory while the registry has not changed. */
enum idb_err idb_app_org(struct idb_app *, const char *slug, struct idb_org *out);

struct idb_ctx {
	struct idb_app *app;
	struct idb_req *req;
	struct idb_resp *resp;
	const struct idb_route *route;
	time_t now;
	struct idb_org org;            /* for IDB_RF_ORG routes */
	struct idb_org_handle *oh;     /* the org's open database */
	struct idb_settings *settings; /* loaded by the guard (arena) */
	int have_session;
	struct idb_session sess;       /* when have_session */
	struct idb_user user;          /* the session's user */
	cJSON *fields;                 /* the 422 messages, freed with the request */
	const char *log_detail;        /* the access-log entry's detail, set by a handler */
	const char *log_target;        /* the access-log entry's target, if not the path (a new record) */
	int sysadmin;                  /* the caller is a sysadmin (user holds their id and email) */
	struct idb_plan *plan;         /* IDB_RF_PLANNED: the handler's write, for the group commit */
	int waiting;                   /* the entry waits for the group commit (idb_app_complete) */
	enum idb_err waiting_e;        /* the handler's result meanwhile */
	struct idb_logq_wait wait;
	sqlite3 *waiting_db;           /* the handle it was submitted on (x->oh may move on) */
};

extern const struct idb_route idb_routes[];
extern const size_t idb_routes_n;

/* Opens the registry; IDB_E_BADKEY for a wrong master key, IDB_E_SCHEMA_BEHIND
 * if the registry needs `immidb-admin migrate`. */
enum idb_err idb_app_init(struct idb_app *, const struct idb_conf *, const struct idb_master *);
void idb_app_free(struct idb_app *);
/*
 * Routes, guards and runs one request, in two steps, for a worker that
 * takes other requests while one waits for the group commit of its
 * access-log entry (lib/audit/logq.h). Start: 1 if resp holds the answer;
 * 0 if the request waits, *waiting then names it (in req's arena, which
 * must live until it is answered). Complete: 1 once resp holds the answer;
 * how says what it may do meanwhile: only look, lead the org's commit if
 * its queue is free, or sleep until answered (leading when it can).
 */
enum idb_complete { IDB_COMPLETE_LOOK, IDB_COMPLETE_LEAD, IDB_COMPLETE_WAIT };
int idb_app_start(struct idb_app *, struct idb_req *, struct idb_resp *, struct idb_ctx **waiting);
int idb_app_complete(struct idb_app *, struct idb_ctx *, enum idb_complete how);

/* The guard of org routes, in order: org -> open database -> IP allow-list ->
 * session -> second factor -> MFA enrollment -> role -> CSRF. */
enum idb_err idb_guard_org(struct idb_ctx *);

/* Shared by handlers (lib/api/util.c). */
/* Parses and validates the body against a field table; on 422 the messages go to x->fields. */
enum idb_err idb_api_body(struct idb_ctx *, const struct idb_vfield *, size_t, struct idb_vvalue *);
/* Answers status with j (which is freed). */
enum idb_err idb_api_reply(struct idb_ctx *, int status, cJSON *j);
/* Set-Cookie for a new session token, or to clear it (token NULL). */
enum idb_err idb_api_cookie(struct idb_ctx *, const char *token);
/* Adds a field message for a 422 found after the table check. */
enum idb_err idb_api_invalid(struct idb_ctx *, const char *field, const char *msg);
/* Retry-After: seconds, and IDB_E_TOO_MANY_REQUESTS to return. */
enum idb_err idb_api_retry_after(struct idb_ctx *, long long seconds);
/* A failed password or second factor: one failure of the login throttle for
 * email and the caller's address, and an auth event (kind, detail); 401. */
enum idb_err idb_api_auth_failed(struct idb_ctx *, const char *email, const char *kind, const char *user_id,
                                 const char *detail);
/* Parses ?limit= (1..200, default 50); IDB_E_BAD_REQUEST when malformed. */
enum idb_err idb_api_limit(struct idb_ctx *, int *limit);

/* Handlers. */
enum idb_err idb_api_health(struct idb_ctx *);
enum idb_err idb_api_log_key(struct idb_ctx *);
enum idb_err idb_api_login(struct idb_ctx *);
enum idb_err idb_api_login_mfa(struct idb_ctx *);
enum idb_err idb_api_session_get(struct idb_ctx *);
enum idb_err idb_api_logout(struct idb_ctx *);
enum idb_err idb_api_totp_enroll(struct idb_ctx *);
enum idb_err idb_api_totp_confirm(struct idb_ctx *);
enum idb_err idb_api_totp_disable(struct idb_ctx *);
enum idb_err idb_api_password(struct idb_ctx *);
enum idb_err idb_api_users_list(struct idb_ctx *);
enum idb_err idb_api_users_create(struct idb_ctx *);
enum idb_err idb_api_users_update(struct idb_ctx *);
enum idb_err idb_api_users_mfa_reset(struct idb_ctx *);
enum idb_err idb_api_settings_get(struct idb_ctx *);
enum idb_err idb_api_settings_patch(struct idb_ctx *);
enum idb_err idb_api_rec_list(struct idb_ctx *);
enum idb_err idb_api_rec_create(struct idb_ctx *);
enum idb_err idb_api_rec_get(struct idb_ctx *);
enum idb_err idb_api_rec_update(struct idb_ctx *);
enum idb_err idb_api_rec_delete(struct idb_ctx *);
enum idb_err idb_api_rec_reveal(struct idb_ctx *);
enum idb_err idb_api_changes_list(struct idb_ctx *);
enum idb_err idb_api_changes_export(struct idb_ctx *);
enum idb_err idb_api_sysadmin_login(struct idb_ctx *);
enum idb_err idb_api_break_glass(struct idb_ctx *);
enum idb_err idb_api_org_sysadmins(struct idb_ctx *);
enum idb_err idb_api_notifications(struct idb_ctx *);
enum idb_err idb_api_org_sysadmin_revoke(struct idb_ctx *);
/* POST .../export: the whole org as immidb-export-v1 (lib/api/export.c). */
enum idb_err idb_api_org_export(struct idb_ctx *);
/* The guard of sysadmin routes: sysadmin address, session, CSRF. */
enum idb_err idb_guard_sysadmin(struct idb_ctx *);
enum idb_err idb_api_log_list(struct idb_ctx *);
enum idb_err idb_api_log_export(struct idb_ctx *);
enum idb_err idb_api_log_verify(struct idb_ctx *);
enum idb_err idb_api_log_checkpoint(struct idb_ctx *);
/* The access log as NDJSON, oldest first, and a final {"checkpoint": ...} line (shared with immidb-admin). */
enum idb_err idb_log_export_ndjson(sqlite3 *reg, const struct idb_master *, const char *log_origin, const char *slug,
                                   sqlite3 *org, struct idb_buf *out);
/* The change log's actor for the request's user. */
struct idb_actor;
void idb_api_actor(const struct idb_ctx *, struct idb_actor *);
/* Change-log rows for users (x NULL: the actor is immidb-admin). */
enum idb_err idb_api_user_created(sqlite3 *, const struct idb_ctx *x, const struct idb_user *);
enum idb_err idb_api_user_changed(const struct idb_ctx *, const struct idb_user *before, const struct idb_user *after);
enum idb_err idb_api_user_secret_changed(const struct idb_ctx *, const char *user_id, const char *field);

#endif
