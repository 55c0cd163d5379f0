/* SPDX-License-Identifier: ISC */
/* The access log for org admins: list, NDJSON export with a checkpoint, verify, checkpoint. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#include "api/records.h"
#include "audit/accesslog.h"
#include "audit/checkpoint.h"
#include "store/db.h"

static const char *const kinds[] = {"user", "sysadmin", "system", "anonymous", NULL};

static int
known(const char *const *list, const char *v)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, v) == 0)
			return 1;
	return 0;
}

struct page {
	cJSON *items;
	int n;
};

static void
collect(cJSON *e, long long seq, void *arg)
{
	struct page *p = arg;

	(void)seq;
	cJSON_AddItemToArray(p->items, cJSON_Duplicate(e, 1));
	p->n++;
}

enum idb_err
idb_api_log_list(struct idb_ctx *x)
{
	static const char *const params[] = {"actor_kind", "action", "since", "limit", "cursor", NULL};
	struct idb_log_filter f;
	const char *cursor;
	struct page p;
	cJSON *j;
	enum idb_err e;
	int limit;

	memset(&f, 0, sizeof(f));
	if ((e = idb_req_only(x->req, params)) != IDB_OK || (e = idb_api_limit(x, &limit)) != IDB_OK ||
	    (e = idb_req_query(x->req, "actor_kind", &f.actor_kind)) != IDB_OK ||
	    (e = idb_req_query(x->req, "action", &f.action)) != IDB_OK ||
	    (e = idb_req_query(x->req, "since", &f.since)) != IDB_OK ||
	    (e = idb_req_query(x->req, "cursor", &cursor)) != IDB_OK)
		return e;
	if ((f.actor_kind != NULL && !known(kinds, f.actor_kind)) || (f.since != NULL && !idb_valid_time(f.since)) ||
	    (f.action != NULL && (strlen(f.action) > 64 || strchr(f.action, '.') == NULL)))
		return IDB_E_BAD_REQUEST;
	if (f.since != NULL) {
		char *w = idb_arena_alloc(x->req->arena, IDB_TIME_LEN);

		if (w == NULL || idb_time_widen(f.since, w) != 0)
			return IDB_E_BAD_REQUEST;
		f.since = w; /* stored times carry milliseconds */
	}
	if (cursor != NULL && (cursor[0] != 'q' || idb_parse_ll(cursor + 1, 1, (long long)1 << 62, &f.before_seq) != 0))
		return IDB_E_BAD_REQUEST;
	f.newest_first = 1;
	f.limit = limit + 1;
	memset(&p, 0, sizeof(p));
	if ((j = cJSON_CreateObject()) == NULL || (p.items = cJSON_AddArrayToObject(j, "items")) == NULL) {
		cJSON_Delete(j);
		return IDB_E_NOMEM;
	}
	if ((e = idb_log_each(x->oh->db, &f, collect, &p)) != IDB_OK) {
		cJSON_Delete(j);
		return e;
	}
	if (p.n > limit) {
		char cur[24];

		cJSON_Delete(cJSON_DetachItemFromArray(p.items, limit));
		snprintf(cur, sizeof(cur), "q%lld",
		         (long long)cJSON_GetObjectItem(cJSON_GetArrayItem(p.items, limit - 1), "seq")->valuedouble);
		cJSON_AddStringToObject(j, "next_cursor", cur);
	} else
		cJSON_AddNullToObject(j, "next_cursor");
	return idb_api_reply(x, 200, j);
}

struct lines {
	struct idb_buf *b;
	enum idb_err e; /* the first failure: the export is refused, never cut short */
};

static void
line(cJSON *e, long long seq, void *arg)
{
	struct lines *l = arg;
	char *s;

	(void)seq;
	if (l->e != IDB_OK)
		return;
	if ((s = cJSON_PrintUnformatted(e)) == NULL) {
		l->e = IDB_E_NOMEM;
		return;
	}
	if ((l->e = idb_buf_addstr(l->b, s)) == IDB_OK)
		l->e = idb_buf_addstr(l->b, "\n");
	cJSON_free(s);
}

/* The NDJSON export: every entry oldest first, then {"checkpoint": ...} for that size. */
enum idb_err
idb_log_export_ndjson(sqlite3 *reg, const struct idb_master *m, const char *origin, const char *slug, sqlite3 *db,
                      struct idb_buf *out)
{
	struct idb_log_filter f;
	cJSON *ck = NULL, *wrap;
	char *s;
	enum idb_err e;
	struct lines l = {out, IDB_OK};
	int own = sqlite3_get_autocommit(db);

	/* The entries and the checkpoint from one snapshot, so that they agree. */
	memset(&f, 0, sizeof(f));
	if (own && idb_db_exec(db, "BEGIN") != IDB_OK)
		return IDB_E_DB;
	if ((e = idb_log_each(db, &f, line, &l)) == IDB_OK && (e = l.e) == IDB_OK)
		e = idb_ckpt_current(reg, m, origin, slug, db, &ck);
	if (own)
		idb_db_exec(db, e == IDB_OK ? "COMMIT" : "ROLLBACK");
	if (e != IDB_OK)
		return e;
	if ((wrap = cJSON_CreateObject()) == NULL) {
		cJSON_Delete(ck);
		return IDB_E_NOMEM;
	}
	cJSON_AddItemToObject(wrap, "checkpoint", ck);
	s = cJSON_PrintUnformatted(wrap);
	cJSON_Delete(wrap);
	if (s == NULL)
		return IDB_E_NOMEM;
	if ((e = idb_buf_addstr(out, s)) == IDB_OK)
		e = idb_buf_addstr(out, "\n");
	cJSON_free(s);
	return e;
}

enum idb_err
idb_api_log_export(struct idb_ctx *x)
{
	static const char *const none[] = {NULL};
	enum idb_err e;

	if ((e = idb_req_only(x->req, none)) != IDB_OK)
		return e;
	idb_buf_reset(&x->resp->body);
	if ((e = idb_log_export_ndjson(x->app->reg, x->app->master, x->app->conf->log_origin, x->org.slug, x->oh->db,
	                               &x->resp->body)) != IDB_OK)
		return e;
	x->resp->content_type = "application/x-ndjson";
	idb_resp_header(x->resp, "Content-Disposition", "attachment; filename=\"access-log.ndjson\"");
	x->resp->status = 200;
	return IDB_OK;
}

enum idb_err
idb_api_log_verify(struct idb_ctx *x)
{
	static const char *const none[] = {NULL};
	unsigned char head[32];
	long long size, bad;
	char hex[65];
	cJSON *j;
	enum idb_err e;
	int ok;

	if ((e = idb_req_only(x->req, none)) != IDB_OK || (e = idb_log_verify(x->oh->db, &ok, &size, head, &bad)) != IDB_OK)
		return e;
	if ((j = cJSON_CreateObject()) == NULL)
		return IDB_E_NOMEM;
	cJSON_AddBoolToObject(j, "ok", ok);
	cJSON_AddNumberToObject(j, "size", (double)size);
	if (ok) {
		idb_hex(head, 32, hex);
		cJSON_AddStringToObject(j, "head", hex);
	} else
		cJSON_AddNumberToObject(j, "first_bad_seq", (double)bad);
	return idb_api_reply(x, 200, j);
}

enum idb_err
idb_api_log_checkpoint(struct idb_ctx *x)
{
	static const char *const none[] = {NULL};
	cJSON *ck = NULL;
	enum idb_err e;

	if ((e = idb_req_only(x->req, none)) != IDB_OK ||
	    (e = idb_ckpt_current(x->app->reg, x->app->master, x->app->conf->log_origin, x->org.slug, x->oh->db, &ck)) !=
	        IDB_OK)
		return e;
	return idb_api_reply(x, 200, ck);
}
