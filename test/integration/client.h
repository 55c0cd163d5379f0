/* SPDX-License-Identifier: ISC */
/*
 * A client's side of the API for the integration tests (see client.c).
 * Every helper fails the current cmocka test on an unexpected answer.
 */
#ifndef IDB_TEST_CLIENT_H
#define IDB_TEST_CLIENT_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "checks.h"
#include "harness.h"
#include "store/db.h"
#include "store/registry.h"

/* The password every user made by user_new has. */
#define PW "correct horse battery staple"

/* Defined by the test program. */
extern struct h_env env;

/* A client's view of one session: where it speaks from and what it holds. */
struct sess {
	char slug[48];
	char ip[64];
	char token[160];
	char csrf[160];
	char user_id[64];
	char email[128];
};

/* Copies s into out (size len), failing the test if it does not fit. */
void copy(char *out, size_t len, const char *s);
cJSON *jparse_text(const char *text, long status);
const cJSON *jobj(const cJSON *o, const char *k);
/* Asserts the status (showing the body otherwise) and Cache-Control: no-store. */
void want(const struct h_resp *, long status);
/* Asserts the api.md error shape with the given status and code. */
void assert_error(const struct h_resp *, long status, const char *code);
/* assert_error, then frees the response. */
void werr(struct h_resp *, long status, const char *code);
/* Asserts the status, returns the parsed body (NULL for 204) and frees the response. */
cJSON *wjson(struct h_resp *, long status);

/* One request as a client at ip, with a session token and a CSRF header (NULL: none). */
void raw(const char *method, const char *path, const char *ip, const char *token, const char *csrf,
         const char *body, struct h_resp *);
/* A request as session s to /api/v1/orgs/<slug><sub>, with its CSRF token on all but GET. */
void sreq(const struct sess *, const char *method, const char *sub, const char *body, struct h_resp *);
void serr(const struct sess *, const char *method, const char *sub, const char *body, long status, const char *code);
cJSON *sok(const struct sess *, const char *method, const char *sub, const char *body, long status);
/* The token of "Set-Cookie: immidb_session=<token>; ...", or -1. */
int take_cookie(const struct h_resp *, char *token, size_t len);
/* POST .../session from ip; fills s on 200. The response stays in r. */
void post_login(const char *slug, const char *ip, const char *email, const char *pw, struct sess *, struct h_resp *);
/* Logs in with PW; the test fails unless it answers 200. */
void login(const char *slug, const char *ip, const char *email, struct sess *);
void login_err(const char *slug, const char *ip, const char *email, const char *pw, long status, const char *code);

/* immidb-admin org create --slug slug --name "<slug> LLP" */
void org_new(const char *slug);
/* immidb-admin user add ... with PW; the new id into id (may be NULL). */
void user_new(const char *slug, const char *email, const char *role, char *id, size_t idlen);
/* An org with an admin (admin@<slug>.test) logged in from ip. */
void org_with_admin(const char *slug, const char *ip, struct sess *a);
/* POST /clients with body: the new id into id. */
void client_new(const struct sess *, const char *body, char *id, size_t idlen);

/* The org's current keys and database path, read as an operator would. */
void org_keys(const char *slug, struct idb_org_keys *k, char path[IDB_PATH_MAX]);
/* The org's database opened with its database key. */
sqlite3 *org_db(const char *slug);
/* The first column of the first row of sql. */
long long q_ll(sqlite3 *db, const char *sql);
long long org_count(const char *slug, const char *sql);
/* Runs sql on the org's database; its result code, the error message into msg. */
int org_exec(const char *slug, const char *sql, char *msg, size_t len);
void org_exec_ok(const char *slug, const char *sql);

#endif
