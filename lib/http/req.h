/* SPDX-License-Identifier: ISC */
/*
 * The request and response model, free of FastCGI types: fcgi/ fills a
 * struct idb_req and writes out a struct idb_resp. Everything a request
 * points to lives in its arena.
 */
#ifndef IDB_HTTP_REQ_H
#define IDB_HTTP_REQ_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/cidr.h"
#include "core/err.h"

#define IDB_BODY_MAX (1024 * 1024)           /* bigger bodies: 413 */
#define IDB_JSON_DEPTH_MAX 32                /* deeper JSON: 400 invalid_json */
#define IDB_PATH_LEN_MAX 2048                /* longer paths: 404 */
#define IDB_QUERY_LEN_MAX 4096               /* longer query strings: 400 */
#define IDB_PARAMS_MAX 4                     /* {captures} in one route */
#define IDB_RESP_HDR_MAX 8                   /* extra response headers */
#define IDB_RESP_BODY_MAX (512u * 1024 * 1024) /* exports are the largest answers */
#define IDB_ARENA_MAX (16u * 1024 * 1024)    /* per-request arena */

struct idb_req {
	struct idb_arena *arena;
	const char *method;        /* "GET", ... */
	const char *path;          /* without the query string, not decoded */
	const char *query;         /* raw, "" if none */
	const char *remote_addr;   /* the peer, from nginx's REMOTE_ADDR */
	const char *client_ip;     /* remote_addr, or X-Forwarded-For from a trusted proxy */
	const char *cookie;        /* raw Cookie header or NULL */
	const char *csrf_token;    /* X-CSRF-Token or NULL */
	const char *forwarded_for; /* X-Forwarded-For or NULL */
	const char *access_reason; /* X-Access-Reason or NULL */
	const char *content_type;  /* or NULL */
	const char *body;          /* NUL-terminated copy, body_len bytes */
	size_t body_len;
	const char *params[IDB_PARAMS_MAX]; /* the route's {captures}, in order */
	size_t nparams;
};

struct idb_resp_hdr {
	const char *name, *value;
};

struct idb_resp {
	int status;
	const char *content_type;
	struct idb_resp_hdr hdr[IDB_RESP_HDR_MAX];
	size_t nhdr;
	struct idb_buf body;
};

/* Sets req->client_ip from remote_addr, believing X-Forwarded-For only when
 * the peer is in proxies: then the right-most address not itself a proxy. */
void idb_req_client_ip(struct idb_req *, const struct idb_cidr_list *proxies);
/* The decoded value of a query parameter (arena memory), or NULL if absent.
 * IDB_E_BAD_REQUEST for malformed percent-encoding. */
enum idb_err idb_req_query(const struct idb_req *, const char *name, const char **out);
/* IDB_E_BAD_REQUEST if the query has a parameter not named in names (NULL-terminated). */
enum idb_err idb_req_only(const struct idb_req *, const char *const *names);
/* A cookie's value (arena memory) or NULL. */
const char *idb_req_cookie(const struct idb_req *, const char *name);
/*
 * Parses the body as a JSON object: UTF-8, no NUL bytes, nesting at most
 * IDB_JSON_DEPTH_MAX. The tree is freed with the request's arena.
 */
enum idb_err idb_req_json(const struct idb_req *, cJSON **out);
/* The same checks on any buffer; the caller owns the tree (cJSON_Delete). */
enum idb_err idb_json_parse(const char *buf, size_t len, cJSON **out);

void idb_resp_init(struct idb_resp *);
void idb_resp_free(struct idb_resp *);
/* Adds a header; the strings must outlive the response (arena or static). */
enum idb_err idb_resp_header(struct idb_resp *, const char *name, const char *value);
/* status + the JSON text of j (j is not freed). */
enum idb_err idb_resp_json(struct idb_resp *, int status, const cJSON *j);
/* The error shape of api.md; fields (may be NULL) only for validation_failed. */
void idb_resp_error(struct idb_resp *, enum idb_err, const cJSON *fields);

#endif
