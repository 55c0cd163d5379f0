/* SPDX-License-Identifier: ISC */
/* The change log for org admins: a paged list and an NDJSON export. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#include "api/records.h"
#include "audit/changelog.h"

static enum idb_err
filters(struct idb_ctx *x, struct idb_chg_filter *f)
{
	static const char *const names[] = {"entity", "entity_id", "since", "limit", "cursor", NULL};
	const char *cursor;
	enum idb_err e;

	memset(f, 0, sizeof(*f));
	if ((e = idb_req_only(x->req, names)) != IDB_OK)
		return e;
	if ((e = idb_req_query(x->req, "entity", &f->entity)) != IDB_OK ||
	    (e = idb_req_query(x->req, "entity_id", &f->entity_id)) != IDB_OK ||
	    (e = idb_req_query(x->req, "since", &f->since)) != IDB_OK ||
	    (e = idb_req_query(x->req, "cursor", &cursor)) != IDB_OK)
		return e;
	if (f->since != NULL) {
		char *w = idb_arena_alloc(x->req->arena, IDB_TIME_LEN);

		if (!idb_valid_time(f->since) || w == NULL || idb_time_widen(f->since, w) != 0)
			return IDB_E_BAD_REQUEST;
		f->since = w; /* stored times carry milliseconds */
	}
	if ((f->entity != NULL && strlen(f->entity) > 32) || (f->entity_id != NULL && strlen(f->entity_id) > 64))
		return IDB_E_BAD_REQUEST;
	if (cursor != NULL && (cursor[0] != 's' || idb_parse_ll(cursor + 1, 0, (long long)1 << 62, &f->after_seq) != 0))
		return IDB_E_BAD_REQUEST;
	return IDB_OK;
}

struct collect {
	cJSON *items;
	int n;
	long long last;
};

static void
collect(cJSON *e, long long seq, void *arg)
{
	struct collect *c = arg;

	cJSON_AddItemToArray(c->items, cJSON_Duplicate(e, 1));
	c->last = seq;
	c->n++;
}

enum idb_err
idb_api_changes_list(struct idb_ctx *x)
{
	struct idb_chg_filter f;
	struct collect c;
	cJSON *j;
	enum idb_err e;
	int limit;

	if ((e = filters(x, &f)) != IDB_OK || (e = idb_api_limit(x, &limit)) != IDB_OK)
		return e;
	f.limit = limit + 1;
	memset(&c, 0, sizeof(c));
	if ((j = cJSON_CreateObject()) == NULL || (c.items = cJSON_AddArrayToObject(j, "items")) == NULL) {
		cJSON_Delete(j);
		return IDB_E_NOMEM;
	}
	if ((e = idb_chg_each(x->oh->db, &f, collect, &c)) != IDB_OK) {
		cJSON_Delete(j);
		return e;
	}
	if (c.n > limit) {
		char cur[24];
		cJSON *extra = cJSON_DetachItemFromArray(c.items, limit);
		cJSON *lastkept = cJSON_GetArrayItem(c.items, limit - 1);

		cJSON_Delete(extra);
		snprintf(cur, sizeof(cur), "s%lld", (long long)cJSON_GetObjectItem(lastkept, "seq")->valuedouble);
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

enum idb_err
idb_api_changes_export(struct idb_ctx *x)
{
	struct idb_chg_filter f;

	if (x->req->query != NULL && *x->req->query != '\0')
		return IDB_E_BAD_REQUEST;
	memset(&f, 0, sizeof(f));
	idb_buf_reset(&x->resp->body);
	x->resp->content_type = "application/x-ndjson";
	idb_resp_header(x->resp, "Content-Disposition", "attachment; filename=\"changes.ndjson\"");
	x->resp->status = 200;
	{
		struct lines l = {&x->resp->body, IDB_OK};
		enum idb_err e = idb_chg_each(x->oh->db, &f, line, &l);

		return e != IDB_OK ? e : l.e;
	}
}
