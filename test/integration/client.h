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

/*
 * What the response checks demand beyond the status and Cache-Control:
 * no-store; all off unless a test program turns them on (in its setup).
 */
struct client_opts {
	int error_type;    /* errors: Content-Type: application/json; charset=utf-8 */
	int error_message; /* errors: a string "message" beside the code */
	int empty_204;     /* 204: an empty body */
	int token_shape;   /* take_cookie: only immidb_session, 256 random bits in base64url */
	/* When set: sees every answer of raw_with (and so of every request helper). */
	void (*seen)(const char *method, const char *path, const struct h_resp *);
};
extern struct client_opts client_opts;

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
/* 422 validation_failed naming field in "fields"; frees the response. */
void wfield(struct h_resp *, const char *field);
/* Asserts the status, returns the parsed body (NULL for 204) and frees the response. */
cJSON *wjson(struct h_resp *, long status);

/* The request headers of raw_with: h, NULL-terminated, points into the rest. */
struct hdrs {
	char xff[128], cookie[512], reason[F_LEN + 32], xcsrf[512];
	const char *h[5];
};
void hdrs_with(struct hdrs *, const char *ip, const char *cookie, const char *reason, const char *csrf);
/*
 * One request as a client at ip (NULL: no X-Forwarded-For, i.e. loopback),
 * with a whole cookie "name=value", an X-Access-Reason and an X-CSRF-Token
 * (each NULL: none; csrf "": the header, empty). client_opts.seen sees the answer.
 */
void raw_with(const char *method, const char *path, const char *ip, const char *cookie, const char *reason,
              const char *csrf, const char *body, struct h_resp *);
/* raw_with, the cookie that of a session token (NULL: none), no reason. */
void raw(const char *method, const char *path, const char *ip, const char *token, const char *csrf,
         const char *body, struct h_resp *);
/* A request as session s to /api/v1/orgs/<slug><sub>, with its CSRF token on all but GET. */
void sreq(const struct sess *, const char *method, const char *sub, const char *body, struct h_resp *);
void serr(const struct sess *, const char *method, const char *sub, const char *body, long status, const char *code);
cJSON *sok(const struct sess *, const char *method, const char *sub, const char *body, long status);
/* The random part of a session token: what follows its non-secret "prefix.", if any. */
const char *tok_rand(const char *token);
/* The token of "Set-Cookie: immidb_session=<token>; ...", or -1. */
int take_cookie(const struct h_resp *, char *token, size_t len);
/* POST .../session from ip; fills s on 200 (no user id while the second factor is due). The response stays in r. */
void post_login(const char *slug, const char *ip, const char *email, const char *pw, struct sess *, struct h_resp *);
/* post_login that must answer 200; its body, for the caller to delete. */
cJSON *login_body(const char *slug, const char *ip, const char *email, const char *pw, struct sess *);
/* Logs in with pw; the test fails unless it answers 200 with no second factor due. */
void login_pw(const char *slug, const char *ip, const char *email, const char *pw, struct sess *);
/* Logs in with PW; the test fails unless it answers 200. */
void login(const char *slug, const char *ip, const char *email, struct sess *);
void login_err(const char *slug, const char *ip, const char *email, const char *pw, long status, const char *code);

/* immidb-admin org create --slug slug --name "<slug> LLP" */
void org_new(const char *slug);
/* immidb-admin user add ... with password pw; the new id into id (may be NULL). */
void user_new_pw(const char *slug, const char *email, const char *role, const char *pw, char *id, size_t idlen);
/* user_new_pw with PW. */
void user_new(const char *slug, const char *email, const char *role, char *id, size_t idlen);
/* An org with an admin (admin@<slug>.test) logged in from ip. */
void org_with_admin(const char *slug, const char *ip, struct sess *a);
/* POST /clients with body: the new id into id. */
void client_new(const struct sess *, const char *body, char *id, size_t idlen);

/* The org's current keys, database path and id (into org_id, may be NULL), read as an operator would. */
void org_keys_id(const char *slug, struct idb_org_keys *k, char path[IDB_PATH_MAX], char *org_id, size_t idlen);
/* The org's current keys and database path. */
void org_keys(const char *slug, struct idb_org_keys *k, char path[IDB_PATH_MAX]);
/* The org's database opened with its database key. */
sqlite3 *org_db(const char *slug);
/* The first column of the first row of sql, with up to two text parameters (NULL: not bound). */
long long q_ll_bind(sqlite3 *db, const char *sql, const char *a, const char *b);
/* The first column of the first row of sql. */
long long q_ll(sqlite3 *db, const char *sql);
long long org_count(const char *slug, const char *sql);
/* Runs sql on the org's database; its result code, the error message into msg. */
int org_exec(const char *slug, const char *sql, char *msg, size_t len);
void org_exec_ok(const char *slug, const char *sql);
/* Fails if any text or blob cell of any table of db contains needle. */
void db_has_no(sqlite3 *db, const char *needle);
/* Fails if any text or blob cell of any table of db is exactly value (or value followed by nothing else). */
void db_no_cell_is(sqlite3 *db, const char *value);
/* Fails if the org's database file (or its WAL) contains needle in its bytes. */
void file_has_no(const char *slug, const char *needle);

/* The TOTP code of the step `steps` away from now, computed by oathtool. */
void totp(const char *secret, int steps, char code[16]);
/* A 6-digit code that is none of the codes of steps -2..+2. */
void totp_wrong(const char *secret, char code[16]);

#endif
