/* SPDX-License-Identifier: ISC */
/*
 * HTTP handlers of the case data: one set for all five resources (the
 * route's arg names the resource). Lists, filters and search are here; the
 * writes go through the record engine (records.c).
 */
#include "api/api.h"

#include <string.h>

#include "api/records_impl.h"
#include "core/buf.h"
#include "store/memo.h"

#define Q_MAX 200     /* characters of ?q= */
#define Q_TOKENS 16   /* words of ?q= */
#define Q_TOKEN 64    /* bytes of one word */

static const struct idb_resource *
res_of(const struct idb_ctx *x)
{
	return x->route->arg;
}

static void
env_of(struct idb_ctx *x, struct idb_rec_env *env)
{
	env->db = x->oh->db;
	env->org_id = x->org.id;
	env->keys = x->oh->keys;
	env->actor.kind = x->sysadmin ? "sysadmin" : "user";
	env->actor.id = x->user.id;
	env->actor.email = x->user.email;
	env->arena = x->req->arena;
}

static void
json_free(void *p)
{
	cJSON_Delete(p);
}

/* Hands the 422 messages to the request (freed with it). */
static enum idb_err
with_fields(struct idb_ctx *x, enum idb_err e, cJSON *fields)
{
	if (fields != NULL) {
		if (x->fields == NULL && idb_arena_defer(x->req->arena, json_free, fields) == 0)
			x->fields = fields;
		else if (x->fields != fields)
			cJSON_Delete(fields);
	}
	return e;
}

enum idb_err
idb_api_rec_create(struct idb_ctx *x)
{
	struct idb_rec_env env;
	char id[IDB_ID_LEN + 1];
	cJSON *body, *fields = NULL, *rec = NULL;
	enum idb_err e;

	if ((e = idb_req_json(x->req, &body)) != IDB_OK)
		return e;
	env_of(x, &env);
	if ((e = idb_rec_create(&env, res_of(x), body, id, &fields)) != IDB_OK)
		return with_fields(x, e, fields);
	if ((e = idb_rec_get(&env, res_of(x), id, &rec)) != IDB_OK)
		return e;
	{
		/* The entry names the new record: "<resource>/<id>". */
		size_t rn = strlen(res_of(x)->name);
		char *t = idb_arena_alloc(x->req->arena, rn + 1 + IDB_ID_LEN + 1);

		if (t != NULL) {
			memcpy(t, res_of(x)->name, rn);
			t[rn] = '/';
			memcpy(t + rn + 1, id, IDB_ID_LEN + 1);
			x->log_target = t;
		}
	}
	return idb_api_reply(x, 201, rec);
}

/*
 * The answer's bytes are kept in the org handle's memo (lib/store/memo.h)
 * under "<table>/<id>", and a later GET in a snapshot of the same data
 * generation answers with them: the same bytes the record would give.
 */
enum idb_err
idb_api_rec_get(struct idb_ctx *x)
{
	const struct idb_resource *r = res_of(x);
	const char *id = x->req->params[1];
	struct idb_rec_env env;
	char key[IDB_MEMO_KEY_MAX];
	size_t tn = strlen(r->name), kl = tn + 1 + strlen(id), n;
	const void *m = NULL;
	cJSON *rec = NULL;
	enum idb_err e;

	if (kl <= sizeof(key)) {
		memcpy(key, r->name, tn);
		key[tn] = '/';
		memcpy(key + tn + 1, id, kl - tn - 1);
		m = idb_memo_get(x->oh->db, IDB_MEMO_RECORD, key, kl, &n);
	}
	if (m != NULL) {
		idb_buf_reset(&x->resp->body);
		if ((e = idb_buf_add(&x->resp->body, m, n)) != IDB_OK)
			return e;
		x->resp->status = 200;
		return IDB_OK;
	}
	env_of(x, &env);
	if ((e = idb_rec_get(&env, r, id, &rec)) != IDB_OK)
		return e;
	if ((e = idb_api_reply(x, 200, rec)) == IDB_OK && kl <= sizeof(key))
		idb_memo_put(x->oh->db, IDB_MEMO_RECORD, key, kl, x->resp->body.data, x->resp->body.len);
	return e;
}

enum idb_err
idb_api_rec_update(struct idb_ctx *x)
{
	struct idb_rec_env env;
	cJSON *body, *fields = NULL, *rec = NULL;
	enum idb_err e;

	if (!idb_id_valid(x->req->params[1], res_of(x)->id_prefix))
		return IDB_E_NOT_FOUND;
	if ((e = idb_req_json(x->req, &body)) != IDB_OK)
		return e;
	env_of(x, &env);
	/* With x->plan, the write itself is left to the group commit (org_request). */
	if ((e = idb_rec_update(&env, res_of(x), x->req->params[1], body, &fields, x->plan, &rec)) != IDB_OK)
		return with_fields(x, e, fields);
	return idb_api_reply(x, 200, rec);
}

enum idb_err
idb_api_rec_delete(struct idb_ctx *x)
{
	struct idb_rec_env env;
	enum idb_err e;

	env_of(x, &env);
	if ((e = idb_rec_delete(&env, res_of(x), x->req->params[1])) != IDB_OK)
		return e;
	x->resp->status = 204;
	return IDB_OK;
}

enum idb_err
idb_api_rec_reveal(struct idb_ctx *x)
{
	const struct idb_resource *r = res_of(x);
	const char *choices[8], *value = NULL;
	struct idb_vfield f = {"field", IDB_V_ENUM, IDB_VF_REQUIRED, 0, 0, choices, NULL, NULL};
	struct idb_rec_env env;
	struct idb_vvalue v;
	size_t i, n = 0;
	enum idb_err e;
	cJSON *j;

	if (!idb_id_valid(x->req->params[1], r->id_prefix))
		return IDB_E_NOT_FOUND;
	for (i = 0; i < r->ncols && n < 7; i++)
		if (r->cols[i].kind == IDB_CK_SECRET)
			choices[n++] = r->cols[i].name;
	choices[n] = NULL;
	if ((e = idb_api_body(x, &f, 1, &v)) != IDB_OK)
		return e;
	{
		char *d = idb_arena_alloc(x->req->arena, 7 + strlen(v.s));

		if (d != NULL) {
			memcpy(d, "field=", 6);
			memcpy(d + 6, v.s, strlen(v.s) + 1);
			x->log_detail = d; /* "field=a_number": the name, never the value */
		}
	}
	env_of(x, &env);
	if ((e = idb_rec_reveal(&env, r, x->req->params[1], v.s, &value)) != IDB_OK)
		return e;
	if ((j = cJSON_CreateObject()) == NULL)
		return IDB_E_NOMEM;
	cJSON_AddStringToObject(j, "field", v.s);
	if (value != NULL)
		cJSON_AddStringToObject(j, "value", value);
	else
		cJSON_AddNullToObject(j, "value");
	e = idb_api_reply(x, 200, j);
	if (value != NULL)
		sodium_memzero((void *)value, strlen(value));
	return e;
}

/* ---- lists ---------------------------------------------------------------- */

/* Every query parameter must be one this list knows: limit, cursor, the filters. */
static enum idb_err
known_params(const struct idb_req *req, const struct idb_resource *r)
{
	const char *names[16];
	size_t i, n = 0;

	names[n++] = "limit";
	names[n++] = "cursor";
	for (i = 0; i < r->nfilters && n < 15; i++)
		names[n++] = r->filters[i].param;
	names[n] = NULL;
	return idb_req_only(req, names);
}

/* ?q= as an FTS4 query: each word (letters and digits) as a lowercase prefix
 * term; everything else is a separator, so no operator or quote gets through. */
static enum idb_err
fts_query(const char *q, struct idb_buf *out, int *words)
{
	const unsigned char *p = (const unsigned char *)q;
	size_t n;

	*words = 0;
	while (*p != '\0') {
		while (*p != '\0' && !(*p >= 0x80 || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		                       (*p >= 'A' && *p <= 'Z')))
			p++;
		if (*p == '\0')
			break;
		if (++*words > Q_TOKENS)
			return IDB_E_BAD_REQUEST;
		if (out->len > 0)
			idb_buf_addstr(out, " ");
		for (n = 0; *p != '\0' && (*p >= 0x80 || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		                           (*p >= 'A' && *p <= 'Z'));
		     p++, n++) {
			char c = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);

			if (n < Q_TOKEN)
				idb_buf_add(out, &c, 1);
		}
		if (idb_buf_addstr(out, "*") != IDB_OK)
			return IDB_E_BAD_REQUEST;
	}
	return IDB_OK;
}

static int
four_digits(const char *q)
{
	return strlen(q) == 4 && q[0] >= '0' && q[0] <= '9' && q[1] >= '0' && q[1] <= '9' && q[2] >= '0' &&
	       q[2] <= '9' && q[3] >= '0' && q[3] <= '9';
}

struct bound {
	int kind; /* 0 text, 1 blob16 */
	const char *s;
	unsigned char h[16];
};

enum idb_err
idb_api_rec_list(struct idb_ctx *x)
{
	const struct idb_resource *r = res_of(x);
	struct bound binds[12];
	struct idb_buf sql, match;
	const char *cursor, *val;
	sqlite3_stmt *st = NULL;
	long long after = 0;
	cJSON *j = NULL, *items, *rec;
	enum idb_err e;
	int limit, nb = 0, words, count = 0, rc, i;
	size_t f;
	long long last = 0;

	idb_buf_init(&sql, 8192);
	idb_buf_init(&match, 4096);
	if ((e = known_params(x->req, r)) != IDB_OK || (e = idb_api_limit(x, &limit)) != IDB_OK ||
	    (e = idb_req_query(x->req, "cursor", &cursor)) != IDB_OK)
		goto out;
	if (cursor != NULL && (cursor[0] != 'r' || idb_parse_ll(cursor + 1, 0, (long long)1 << 62, &after) != 0)) {
		e = IDB_E_BAD_REQUEST;
		goto out;
	}
	idb_buf_addstr(&sql, "SELECT rid, id");
	for (f = 0; f < r->ncols; f++) {
		idb_buf_addstr(&sql, ", ");
		if (r->cols[f].kind == IDB_CK_SECRET) {
			idb_buf_addstr(&sql, "(");
			idb_buf_addstr(&sql, r->cols[f].name);
			idb_buf_addstr(&sql, " IS NOT NULL)");
		} else
			idb_buf_addstr(&sql, r->cols[f].name);
	}
	idb_buf_addstr(&sql, ", version, created_at, updated_at, created_by, updated_by FROM ");
	idb_buf_addstr(&sql, r->name);
	idb_buf_addstr(&sql, " WHERE deleted_at IS NULL AND rid > ?");
	for (f = 0; f < r->nfilters; f++) {
		const struct idb_rfilter *flt = &r->filters[f];

		if ((e = idb_req_query(x->req, flt->param, &val)) != IDB_OK)
			goto out;
		if (val == NULL)
			continue;
		switch (flt->kind) {
		case IDB_FK_EQ: {
			int c;
			int ok = 0;

			for (c = 0; c < (int)r->ncols; c++)
				if (strcmp(r->cols[c].name, flt->column) == 0) {
					if (r->cols[c].kind == IDB_CK_REF)
						ok = strlen(val) == IDB_ID_LEN && val[1] == '_';
					else if (r->cols[c].kind == IDB_CK_ENUM) {
						const char *const *ch;

						for (ch = r->cols[c].choices; *ch != NULL; ch++)
							ok |= strcmp(*ch, val) == 0;
					}
				}
			if (!ok) {
				e = IDB_E_BAD_REQUEST;
				goto out;
			}
			idb_buf_addstr(&sql, " AND ");
			idb_buf_addstr(&sql, flt->column);
			idb_buf_addstr(&sql, " = ?");
			binds[nb].kind = 0;
			binds[nb++].s = val;
			break;
		}
		case IDB_FK_FROM:
		case IDB_FK_TO:
			if (!idb_valid_time(val)) {
				e = IDB_E_BAD_REQUEST;
				goto out;
			}
			idb_buf_addstr(&sql, " AND ");
			idb_buf_addstr(&sql, flt->column);
			idb_buf_addstr(&sql, flt->kind == IDB_FK_FROM ? " >= ?" : " < ?");
			binds[nb].kind = 0;
			binds[nb++].s = val;
			break;
		case IDB_FK_Q:
			if (idb_utf8_chars(val) > Q_MAX || (e = fts_query(val, &match, &words)) != IDB_OK) {
				e = IDB_E_BAD_REQUEST;
				goto out;
			}
			if (words == 0) {
				idb_buf_addstr(&sql, " AND 0");
				break;
			}
			idb_buf_addstr(&sql, " AND (rid IN (SELECT docid FROM ");
			idb_buf_addstr(&sql, r->fts);
			idb_buf_addstr(&sql, " WHERE ");
			idb_buf_addstr(&sql, r->fts);
			idb_buf_addstr(&sql, " MATCH ?)");
			binds[nb].kind = 0;
			binds[nb++].s = match.data;
			if (r == &idb_res_clients && four_digits(val)) {
				unsigned char sub[crypto_generichash_KEYBYTES];

				crypto_kdf_derive_from_key(sub, sizeof(sub), 1, "idblast4", x->oh->keys->field);
				crypto_generichash(binds[nb].h, 16, (const unsigned char *)val, 4, sub, sizeof(sub));
				sodium_memzero(sub, sizeof(sub));
				binds[nb++].kind = 1;
				idb_buf_addstr(&sql, " OR a_number_last4 = ?");
			}
			idb_buf_addstr(&sql, ")");
			break;
		}
	}
	if ((e = idb_buf_addstr(&sql, " ORDER BY rid LIMIT ?")) != IDB_OK)
		goto out;
	if (sqlite3_prepare_v2(x->oh->db, sql.data, -1, &st, NULL) != SQLITE_OK) {
		e = IDB_E_DB;
		goto out;
	}
	sqlite3_bind_int64(st, 1, after);
	for (i = 0; i < nb; i++) {
		if (binds[i].kind == 0)
			sqlite3_bind_text(st, i + 2, binds[i].s, -1, SQLITE_STATIC);
		else
			sqlite3_bind_blob(st, i + 2, binds[i].h, 16, SQLITE_STATIC);
	}
	sqlite3_bind_int(st, nb + 2, limit + 1);
	if ((j = cJSON_CreateObject()) == NULL || (items = cJSON_AddArrayToObject(j, "items")) == NULL) {
		e = IDB_E_NOMEM;
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == limit)
			break;
		/* row_json reads the same column layout: rid, id, columns, meta. */
		if ((rec = idb_rec_row_json(r, st)) == NULL) {
			e = IDB_E_NOMEM;
			goto out;
		}
		cJSON_AddItemToArray(items, rec);
		last = sqlite3_column_int64(st, 0);
		count++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		e = IDB_E_DB;
		goto out;
	}
	if (rc == SQLITE_ROW) {
		char cur[24];

		snprintf(cur, sizeof(cur), "r%lld", last);
		cJSON_AddStringToObject(j, "next_cursor", cur);
	} else
		cJSON_AddNullToObject(j, "next_cursor");
	e = idb_api_reply(x, 200, j);
	j = NULL;
out:
	sqlite3_finalize(st);
	cJSON_Delete(j);
	idb_buf_free(&sql);
	idb_buf_free(&match);
	return e;
}
