/* SPDX-License-Identifier: ISC */
/*
 * The generic record engine behind the five case-data resources. SQL text is
 * assembled only from the fixed identifiers of the resource tables
 * (lib/api/resources.c); every value is bound.
 */
#include "api/records_impl.h"

#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "core/buf.h"
#include "crypto/field.h"
#include "store/db.h"
#include "store/plan.h"
#include "valid/valid.h"

#define SQL_MAX 8192
#define META ", version, created_at, updated_at, created_by, updated_by"

struct rv {
	int present, is_null;
	const char *s;
	long long i;
};

/* ---- SQL assembly from the resource tables ------------------------------ */

static const char *
sql_finish(struct idb_arena *a, struct idb_buf *b)
{
	const char *s = b->data ? idb_arena_strdup(a, b->data) : NULL;

	idb_buf_free(b);
	return s;
}

/* "rid, id, col..., meta": sensitive columns only as "is it set". */
static void
add_select_cols(struct idb_buf *b, const struct idb_resource *r)
{
	size_t i;

	idb_buf_addstr(b, "rid, id");
	for (i = 0; i < r->ncols; i++) {
		idb_buf_addstr(b, ", ");
		if (r->cols[i].kind == IDB_CK_SECRET) {
			idb_buf_addstr(b, "(");
			idb_buf_addstr(b, r->cols[i].name);
			idb_buf_addstr(b, " IS NOT NULL)");
		} else
			idb_buf_addstr(b, r->cols[i].name);
	}
	idb_buf_addstr(b, META);
}

static const char *
sql_get(struct idb_arena *a, const struct idb_resource *r)
{
	struct idb_buf b;

	idb_buf_init(&b, SQL_MAX);
	idb_buf_addstr(&b, "SELECT ");
	add_select_cols(&b, r);
	idb_buf_addstr(&b, " FROM ");
	idb_buf_addstr(&b, r->name);
	idb_buf_addstr(&b, " WHERE id = ? AND deleted_at IS NULL");
	return sql_finish(a, &b);
}

static int
has_last4(const struct idb_resource *r)
{
	size_t i;

	for (i = 0; i < r->ncols; i++)
		if (r->cols[i].flags & IDB_CF_LAST4)
			return 1;
	return 0;
}

/* INSERT of every column, then the last-4 index, then the metadata. */
static const char *
sql_insert(struct idb_arena *a, const struct idb_resource *r)
{
	struct idb_buf b;
	size_t i, n = r->ncols + 2 + 5 + (size_t)has_last4(r);

	idb_buf_init(&b, SQL_MAX);
	idb_buf_addstr(&b, "INSERT INTO ");
	idb_buf_addstr(&b, r->name);
	idb_buf_addstr(&b, " (id");
	/* The last-4 index follows its column, in the order plan_col gives them. */
	for (i = 0; i < r->ncols; i++) {
		idb_buf_addstr(&b, ", ");
		idb_buf_addstr(&b, r->cols[i].name);
		if (r->cols[i].flags & IDB_CF_LAST4)
			idb_buf_addstr(&b, ", a_number_last4");
	}
	idb_buf_addstr(&b, META ") VALUES (?");
	for (i = 1; i < n - 1; i++)
		idb_buf_addstr(&b, ", ?");
	idb_buf_addstr(&b, ")");
	return sql_finish(a, &b);
}

/*
 * UPDATE of the columns present in the body. OR FAIL: the statement changes
 * one row (by rowid), and its constraints are checked before the row is
 * written, so FAIL refuses exactly what ABORT would and leaves nothing to
 * undo; under ABORT, SQLite keeps a statement journal for a table with
 * triggers (0011's data generation), and SQLCipher encrypts every page the
 * UPDATE touches into it, inside the group commit's lock. A reference
 * column that changes still brings a foreign-key check, which may abort
 * whatever the clause says (cases, notes, credentials, events).
 */
static const char *
sql_update(struct idb_arena *a, const struct idb_resource *r, const struct rv *v)
{
	struct idb_buf b;
	size_t i;

	idb_buf_init(&b, SQL_MAX);
	idb_buf_addstr(&b, "UPDATE OR FAIL ");
	idb_buf_addstr(&b, r->name);
	idb_buf_addstr(&b, " SET version = version + 1, updated_at = ?, updated_by = ?");
	for (i = 0; i < r->ncols; i++) {
		if (!v[i].present)
			continue;
		idb_buf_addstr(&b, ", ");
		idb_buf_addstr(&b, r->cols[i].name);
		idb_buf_addstr(&b, " = ?");
		if (r->cols[i].flags & IDB_CF_LAST4)
			idb_buf_addstr(&b, ", a_number_last4 = ?");
	}
	/* By rowid (the loaded record's), which the leader of a group commit
	 * finds without the id index; the id must still match. */
	idb_buf_addstr(&b, " WHERE rid = ? AND id = ? AND version = ? AND deleted_at IS NULL");
	return sql_finish(a, &b);
}

/* ---- values --------------------------------------------------------------- */

static int never(const char *s) { (void)s; return 0; }
static int ref_client(const char *s) { return idb_id_valid(s, 'c'); }
static int ref_case(const char *s) { return idb_id_valid(s, 'k'); }
static int ref_user(const char *s) { return idb_id_valid(s, 'u'); }

static int (*ref_check(const char *table))(const char *)
{
	if (strcmp(table, "clients") == 0)
		return ref_client;
	if (strcmp(table, "cases") == 0)
		return ref_case;
	return ref_user;
}

/* The validator table of a resource: for POST (required marks) or PATCH (+ version). */
static struct idb_vfield *
vtable(struct idb_arena *a, const struct idb_resource *r, int patch, size_t *n)
{
	struct idb_vfield *t = idb_arena_calloc(a, (r->ncols + 1) * sizeof(*t));
	const struct idb_rcol *c;
	size_t i;

	if (t == NULL)
		return NULL;
	for (i = 0; i < r->ncols; i++) {
		c = &r->cols[i];
		t[i].name = c->name;
		/* Optional fields may be cleared with null, except enums with a default (status). */
		t[i].flags = (c->flags & IDB_CF_REQUIRED) ? (patch ? 0 : IDB_VF_REQUIRED)
		             : (c->kind == IDB_CK_ENUM && c->def != NULL) ? 0
		                                                          : IDB_VF_NULLABLE;
		if (c->flags & IDB_CF_MULTILINE)
			t[i].flags |= IDB_VF_MULTILINE;
		t[i].min = (c->flags & IDB_CF_REQUIRED) || c->kind == IDB_CK_SECRET ? 1 : 0;
		t[i].max = c->max;
		t[i].check = c->check;
		t[i].check_msg = c->check_msg;
		switch (c->kind) {
		case IDB_CK_TEXT:
		case IDB_CK_SECRET:
			t[i].type = IDB_V_STRING;
			break;
		case IDB_CK_DATE:
			t[i].type = IDB_V_STRING;
			t[i].check = idb_valid_date;
			t[i].check_msg = "must be a date YYYY-MM-DD";
			break;
		case IDB_CK_TIME:
			t[i].type = IDB_V_STRING;
			t[i].check = idb_valid_time;
			t[i].check_msg = "must be a time YYYY-MM-DDTHH:MM:SSZ";
			break;
		case IDB_CK_BOOL:
			t[i].type = IDB_V_BOOL;
			break;
		case IDB_CK_ENUM:
			t[i].type = IDB_V_ENUM;
			t[i].choices = c->choices;
			break;
		case IDB_CK_REF:
			t[i].type = IDB_V_STRING;
			t[i].check = ref_check(c->ref);
			t[i].check_msg = "is not an id of this organization";
			break;
		}
		if (c->flags & IDB_CF_READONLY) {
			t[i].flags = 0; /* not even null */
			t[i].min = 0;
			t[i].max = (long long)1 << 30;
			t[i].type = IDB_V_STRING;
			t[i].check = never;
			t[i].check_msg = "is read-only";
		}
	}
	*n = r->ncols;
	if (patch) {
		t[i].name = "version";
		t[i].type = IDB_V_INT;
		t[i].flags = IDB_VF_REQUIRED;
		t[i].min = 1;
		t[i].max = (long long)1 << 53;
		(*n)++;
	}
	return t;
}

static void
copy_vals(const struct idb_vvalue *in, struct rv *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		out[i].present = in[i].present;
		out[i].is_null = in[i].is_null;
		out[i].s = in[i].s;
		out[i].i = in[i].i;
	}
}

static enum idb_err
invalid(cJSON **fields, const char *name, const char *msg)
{
	if (*fields == NULL && (*fields = cJSON_CreateObject()) == NULL)
		return IDB_E_NOMEM;
	if (cJSON_GetObjectItemCaseSensitive(*fields, name) == NULL)
		cJSON_AddStringToObject(*fields, name, msg);
	return IDB_E_VALIDATION;
}

/* The query that finds a referenced record of this org (not deleted): one row or none. */
static const char *
ref_sql(const char *table)
{
	static const char q_clients[] = "SELECT 1 FROM clients WHERE id = ? AND deleted_at IS NULL";
	static const char q_cases[] = "SELECT 1 FROM cases WHERE id = ? AND deleted_at IS NULL";
	static const char q_users[] = "SELECT 1 FROM users WHERE id = ?";

	return strcmp(table, "clients") == 0 ? q_clients : strcmp(table, "cases") == 0 ? q_cases : q_users;
}

/* Does the referenced record exist in this org (and is it not deleted)? */
static enum idb_err
ref_exists(sqlite3 *db, const char *table, const char *id)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (idb_db_cached(db, ref_sql(table), &st) != IDB_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	idb_db_done(st);
	if (rc == SQLITE_ROW)
		return IDB_OK;
	return rc == SQLITE_DONE ? IDB_E_NOT_FOUND : IDB_E_DB;
}

static int
col_index(const struct idb_resource *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->ncols; i++)
		if (strcmp(r->cols[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* The value a column will have: the body's if present, else the current row's (cur may be NULL). */
static const char *
merged_text(const struct idb_resource *r, const struct rv *v, const cJSON *cur, const char *name)
{
	int i = col_index(r, name);
	const cJSON *c;

	if (i < 0)
		return NULL;
	if (v[i].present)
		return v[i].is_null ? NULL : v[i].s;
	c = cur ? cJSON_GetObjectItemCaseSensitive(cur, name) : NULL;
	return cJSON_IsString(c) ? c->valuestring : NULL;
}

/* References and the rules that span fields; cur is the current record on PATCH. */
static enum idb_err
cross_check(const struct idb_rec_env *env, const struct idb_resource *r, const struct rv *v, const cJSON *cur,
            cJSON **fields)
{
	enum idb_err e = IDB_OK, e2;
	const char *s, *t;
	size_t i;

	for (i = 0; i < r->ncols; i++) {
		if (r->cols[i].kind != IDB_CK_REF || !v[i].present || v[i].is_null)
			continue;
		if ((e2 = ref_exists(env->db, r->cols[i].ref, v[i].s)) == IDB_E_NOT_FOUND)
			e = invalid(fields, r->cols[i].name, "is not an id of this organization");
		else if (e2 != IDB_OK)
			return e2;
	}
	if (r == &idb_res_events) {
		s = merged_text(r, v, cur, "starts_at");
		t = merged_text(r, v, cur, "ends_at");
		if (s != NULL && t != NULL && strcmp(t, s) < 0)
			e = invalid(fields, "ends_at", "must not be before starts_at");
	}
	if (r == &idb_res_notes && merged_text(r, v, cur, "client_id") == NULL &&
	    merged_text(r, v, cur, "case_id") == NULL)
		e = invalid(fields, "client_id", "a note needs a client_id or a case_id");
	return e;
}

/* ---- encryption ------------------------------------------------------------ */

static void
field_ad(const struct idb_rec_env *env, const struct idb_resource *r, const char *id, const char *col,
         struct idb_field_ad *ad)
{
	ad->org_id = env->org_id;
	ad->table = r->name;
	ad->row_id = id;
	ad->column = col;
}

/* The ciphertext of s (or NULL) as the plan's next value. */
static enum idb_err
plan_secret(const struct idb_rec_env *env, const struct idb_resource *r, const char *id, const char *col,
            struct idb_plan *p, const char *s)
{
	struct idb_field_ad ad;
	unsigned char *blob;
	size_t n;
	enum idb_err e;

	if (s == NULL) {
		idb_plan_null(p);
		return IDB_OK;
	}
	n = strlen(s);
	if ((blob = idb_arena_alloc(env->arena, n + IDB_FIELD_OVERHEAD)) == NULL)
		return IDB_E_NOMEM;
	field_ad(env, r, id, col, &ad);
	if ((e = idb_field_encrypt(env->keys->field, env->keys->field_version, &ad, (const unsigned char *)s, n,
	                           blob)) != IDB_OK)
		return e;
	idb_plan_blob(p, blob, n + IDB_FIELD_OVERHEAD);
	return IDB_OK;
}

/*
 * The search key of an A-number's last four digits: BLAKE2b keyed with a
 * key derived from the org's field key, so the table holds no digits in
 * clear and another org's index says nothing about this one's.
 */
void
idb_rec_last4(const struct idb_org_keys *k, const char digits[4], unsigned char out[16])
{
	unsigned char sub[crypto_generichash_KEYBYTES];

	crypto_kdf_derive_from_key(sub, sizeof(sub), 1, "idblast4", k->field);
	crypto_generichash(out, 16, (const unsigned char *)digits, 4, sub, sizeof(sub));
	sodium_memzero(sub, sizeof(sub));
}

static void
plan_last4(const struct idb_rec_env *env, struct idb_plan *p, const char *a_number)
{
	unsigned char h[16];
	size_t n;

	if (a_number == NULL || (n = strlen(a_number)) < 4) {
		idb_plan_null(p);
		return;
	}
	idb_rec_last4(env->keys, a_number + n - 4, h);
	idb_plan_blob(p, h, sizeof(h));
}

/* Column c's new value as the plan's next value (two for the A-number: its last-4 key follows). */
static enum idb_err
plan_col(const struct idb_rec_env *env, const struct idb_resource *r, const char *id, struct idb_plan *p, size_t c,
         const struct rv *v)
{
	const struct idb_rcol *col = &r->cols[c];
	const char *s = v->is_null ? NULL : v->s;
	enum idb_err e;

	if (col->kind == IDB_CK_SECRET) {
		if ((e = plan_secret(env, r, id, col->name, p, s)) != IDB_OK)
			return e;
		if (col->flags & IDB_CF_LAST4)
			plan_last4(env, p, s);
		return IDB_OK;
	}
	if (col->kind == IDB_CK_BOOL)
		idb_plan_int(p, v->is_null ? 0 : v->i);
	else
		idb_plan_text(p, s);
	return IDB_OK;
}

/* Runs a plan on the request's own handle, now. */
static enum idb_err
run_plan(const struct idb_rec_env *env, struct idb_plan *p)
{
	return p->err != IDB_OK ? p->err : idb_plan_run(env->db, p->b.data, p->b.len, NULL);
}

/* ---- reading -------------------------------------------------------------- */

/* The API's JSON of the row at the statement (columns as add_select_cols). */
cJSON *
idb_rec_row_json(const struct idb_resource *r, sqlite3_stmt *st)
{
	cJSON *j = cJSON_CreateObject(), *s;
	const unsigned char *t;
	int i, c = 2;

	if (j == NULL)
		return NULL;
	cJSON_AddStringToObject(j, "id", (const char *)sqlite3_column_text(st, 1));
	for (i = 0; i < (int)r->ncols; i++, c++) {
		const struct idb_rcol *col = &r->cols[i];

		if (col->kind == IDB_CK_SECRET) {
			s = cJSON_AddObjectToObject(j, col->name);
			if (s != NULL)
				cJSON_AddBoolToObject(s, "set", sqlite3_column_int(st, c));
		} else if (col->kind == IDB_CK_BOOL)
			cJSON_AddBoolToObject(j, col->name, sqlite3_column_int(st, c));
		else if ((t = sqlite3_column_text(st, c)) == NULL)
			cJSON_AddNullToObject(j, col->name);
		else
			cJSON_AddStringToObject(j, col->name, (const char *)t);
	}
	cJSON_AddNumberToObject(j, "version", (double)sqlite3_column_int64(st, c));
	cJSON_AddStringToObject(j, "created_at", (const char *)sqlite3_column_text(st, c + 1));
	cJSON_AddStringToObject(j, "updated_at", (const char *)sqlite3_column_text(st, c + 2));
	cJSON_AddStringToObject(j, "created_by", (const char *)sqlite3_column_text(st, c + 3));
	cJSON_AddStringToObject(j, "updated_by", (const char *)sqlite3_column_text(st, c + 4));
	return j;
}

static enum idb_err
load(const struct idb_rec_env *env, const struct idb_resource *r, const char *id, cJSON **out, long long *rid)
{
	const char *sql = sql_get(env->arena, r);
	sqlite3_stmt *st = NULL;
	enum idb_err e;
	int rc;

	*out = NULL;
	if (sql == NULL)
		return IDB_E_NOMEM;
	if (!idb_id_valid(id, r->id_prefix))
		return IDB_E_NOT_FOUND;
	if (idb_db_cached_text(env->db, sql, &st) != IDB_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (rid != NULL)
			*rid = sqlite3_column_int64(st, 0);
		e = (*out = idb_rec_row_json(r, st)) != NULL ? IDB_OK : IDB_E_NOMEM;
	} else
		e = rc == SQLITE_DONE ? IDB_E_NOT_FOUND : IDB_E_DB;
	idb_db_done(st);
	return e;
}

enum idb_err
idb_rec_get(const struct idb_rec_env *env, const struct idb_resource *r, const char *id, cJSON **out)
{
	return load(env, r, id, out, NULL);
}

/* ---- the search index ----------------------------------------------------- */

/* The statements that take row rid out of the search index and, if reinsert, put it back as it is then. */
static void
fts_plan(struct idb_arena *a, const struct idb_resource *r, long long rid, int reinsert, struct idb_plan *p)
{
	struct idb_buf b;
	const char *const *c;
	const char *sql;

	if (r->fts == NULL)
		return;
	idb_buf_init(&b, SQL_MAX);
	idb_buf_addstr(&b, "DELETE FROM ");
	idb_buf_addstr(&b, r->fts);
	idb_buf_addstr(&b, " WHERE docid = ?");
	if ((sql = sql_finish(a, &b)) == NULL) {
		p->err = IDB_E_NOMEM;
		return;
	}
	idb_plan_stmt(p, sql, IDB_PLAN_ANY, IDB_E_DB);
	idb_plan_int(p, rid);
	if (!reinsert)
		return;
	idb_buf_init(&b, SQL_MAX);
	idb_buf_addstr(&b, "INSERT INTO ");
	idb_buf_addstr(&b, r->fts);
	idb_buf_addstr(&b, " (docid");
	for (c = r->fts_cols; *c != NULL; c++) {
		idb_buf_addstr(&b, ", ");
		idb_buf_addstr(&b, *c);
	}
	idb_buf_addstr(&b, ") SELECT rid");
	for (c = r->fts_cols; *c != NULL; c++) {
		idb_buf_addstr(&b, ", coalesce(");
		idb_buf_addstr(&b, *c);
		idb_buf_addstr(&b, ", '')");
	}
	idb_buf_addstr(&b, " FROM ");
	idb_buf_addstr(&b, r->name);
	idb_buf_addstr(&b, " WHERE rid = ?");
	if ((sql = sql_finish(a, &b)) == NULL) {
		p->err = IDB_E_NOMEM;
		return;
	}
	idb_plan_stmt(p, sql, IDB_PLAN_ANY, IDB_E_DB);
	idb_plan_int(p, rid);
}

/* Whether a change set names a column of the search index: an update that
 * changes none of them leaves the index as it is (an FTS4 delete and insert
 * touch many pages, and most edits are to other fields). */
static int
fts_touched(const struct idb_resource *r, const cJSON *changes)
{
	const char *const *c;

	if (r->fts == NULL)
		return 0;
	for (c = r->fts_cols; *c != NULL; c++)
		if (cJSON_GetObjectItemCaseSensitive(changes, *c) != NULL)
			return 1;
	return 0;
}

/* ---- create, update, delete ------------------------------------------------ */

static enum idb_err
validate(const struct idb_rec_env *env, const struct idb_resource *r, const cJSON *body, int patch, struct rv *v,
         long long *version, cJSON **fields)
{
	struct idb_vvalue *vv;
	struct idb_vfield *t;
	size_t n;
	enum idb_err e;

	if ((t = vtable(env->arena, r, patch, &n)) == NULL ||
	    (vv = idb_arena_calloc(env->arena, n * sizeof(*vv))) == NULL)
		return IDB_E_NOMEM;
	if ((e = idb_valid_apply(t, n, body, vv, fields)) != IDB_OK)
		return e;
	copy_vals(vv, v, r->ncols);
	if (patch)
		*version = vv[r->ncols].i;
	return IDB_OK;
}

enum idb_err
idb_rec_create(const struct idb_rec_env *env, const struct idb_resource *r, const cJSON *body,
               char id[IDB_ID_LEN + 1], cJSON **fields)
{
	char now[IDB_TIME_LEN];
	struct idb_plan p;
	struct rv *v;
	cJSON *rec = NULL, *changes = NULL;
	const char *sql;
	enum idb_err e;
	long long rid;
	size_t i;

	*fields = NULL;
	if ((v = idb_arena_calloc(env->arena, r->ncols * sizeof(*v))) == NULL)
		return IDB_E_NOMEM;
	if ((e = validate(env, r, body, 0, v, NULL, fields)) != IDB_OK)
		return e;
	/* Defaults: enums, the owner, the sync state. */
	for (i = 0; i < r->ncols; i++) {
		if (r->cols[i].kind == IDB_CK_ENUM && r->cols[i].def != NULL && (!v[i].present || v[i].is_null)) {
			v[i].present = 1;
			v[i].is_null = 0;
			v[i].s = r->cols[i].def;
		}
		/* The creator owns it by default, if the creator is one of the org's users. */
		if ((r->cols[i].flags & IDB_CF_SELF) && !v[i].present && strcmp(env->actor.kind, "user") == 0) {
			v[i].present = 1;
			v[i].s = env->actor.id;
		}
	}
	if (r == &idb_res_events) {
		int sync = col_index(r, "sync"), status = col_index(r, "sync_status");

		v[status].s = v[sync].present && !v[sync].is_null && v[sync].i ? "pending" : "none";
	}
	if ((e = idb_db_begin(env->db)) != IDB_OK)
		return e;
	idb_plan_init(&p);
	if ((e = cross_check(env, r, v, NULL, fields)) != IDB_OK)
		goto out;
	idb_id_new(r->id_prefix, id);
	idb_time_now(now);
	if ((sql = sql_insert(env->arena, r)) == NULL) {
		e = IDB_E_NOMEM;
		goto out;
	}
	idb_plan_stmt(&p, sql, IDB_PLAN_ANY, IDB_E_DB);
	idb_plan_text(&p, id);
	for (i = 0; i < r->ncols; i++) {
		struct rv one = v[i];

		if (!one.present)
			one.is_null = 1;
		if ((e = plan_col(env, r, id, &p, i, &one)) != IDB_OK)
			goto out;
	}
	idb_plan_int(&p, 1);
	idb_plan_text(&p, now);
	idb_plan_text(&p, now);
	idb_plan_text(&p, env->actor.id);
	idb_plan_text(&p, env->actor.id);
	if ((e = run_plan(env, &p)) != IDB_OK)
		goto out;
	rid = sqlite3_last_insert_rowid(env->db);
	idb_plan_free(&p);
	idb_plan_init(&p);
	fts_plan(env->arena, r, rid, 1, &p);
	if ((e = run_plan(env, &p)) != IDB_OK || (e = load(env, r, id, &rec, NULL)) != IDB_OK)
		goto out;
	/* The change log: every field that has a value, from null. */
	if ((changes = cJSON_CreateObject()) == NULL) {
		e = IDB_E_NOMEM;
		goto out;
	}
	for (i = 0; i < r->ncols && e == IDB_OK; i++) {
		const cJSON *val = cJSON_GetObjectItemCaseSensitive(rec, r->cols[i].name);

		if (r->cols[i].kind == IDB_CK_SECRET) {
			if (v[i].present && !v[i].is_null)
				e = idb_chg_secret(changes, r->cols[i].name, 0, 1);
		} else if (val != NULL && !cJSON_IsNull(val))
			e = idb_chg_field(changes, r->cols[i].name, NULL, val);
	}
	if (e == IDB_OK && (e = idb_chg_append(env->db, &env->actor, "create", r->name, id, changes)) == IDB_OK)
		e = idb_db_commit(env->db);
out:
	idb_plan_free(&p);
	cJSON_Delete(rec);
	cJSON_Delete(changes);
	if (e != IDB_OK)
		idb_db_rollback(env->db);
	return e;
}

/*
 * The record as it will be after the update: the current one with the
 * body's values, as load() would read it back (sensitive fields as
 * {"set": bool}, booleans as booleans), a new version and its stamps.
 */
static cJSON *
next_of(const struct idb_rec_env *env, const struct idb_resource *r, const cJSON *cur, const struct rv *v,
        long long version, const char *now)
{
	cJSON *j = cJSON_Duplicate(cur, 1), *n;
	size_t i;

	if (j == NULL)
		return NULL;
	for (i = 0; i < r->ncols; i++) {
		if (!v[i].present)
			continue;
		if (r->cols[i].kind == IDB_CK_SECRET) {
			if ((n = cJSON_CreateObject()) != NULL && cJSON_AddBoolToObject(n, "set", !v[i].is_null) == NULL) {
				cJSON_Delete(n);
				n = NULL;
			}
		} else if (r->cols[i].kind == IDB_CK_BOOL)
			n = cJSON_CreateBool(!v[i].is_null && v[i].i);
		else
			n = v[i].is_null ? cJSON_CreateNull() : cJSON_CreateString(v[i].s);
		if (n == NULL || !cJSON_ReplaceItemInObjectCaseSensitive(j, r->cols[i].name, n)) {
			cJSON_Delete(n);
			cJSON_Delete(j);
			return NULL;
		}
	}
	if (!cJSON_ReplaceItemInObjectCaseSensitive(j, "version", cJSON_CreateNumber((double)version)) ||
	    !cJSON_ReplaceItemInObjectCaseSensitive(j, "updated_at", cJSON_CreateString(now)) ||
	    !cJSON_ReplaceItemInObjectCaseSensitive(j, "updated_by", cJSON_CreateString(env->actor.id))) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

/*
 * The statements of an update that runs later, in another transaction
 * (the group commit), first: the field key it was encrypted under is still
 * the org's (else 503, as for a rotation seen under the lock), and the
 * records it refers to are still there (else 409: they changed meanwhile).
 */
static void
plan_later_checks(const struct idb_rec_env *env, const struct idb_resource *r, const struct rv *v,
                  struct idb_plan *p)
{
	static const char sql_key[] = "SELECT 1 FROM key_state WHERE purpose = 'field' AND version = ?";
	size_t i;

	idb_plan_stmt(p, sql_key, IDB_PLAN_ROW, IDB_E_UNAVAILABLE);
	idb_plan_int(p, (long long)env->keys->field_version);
	for (i = 0; i < r->ncols; i++)
		if (r->cols[i].kind == IDB_CK_REF && v[i].present && !v[i].is_null) {
			idb_plan_stmt(p, ref_sql(r->cols[i].ref), IDB_PLAN_ROW, IDB_E_CONFLICT);
			idb_plan_text(p, v[i].s);
		}
}

enum idb_err
idb_rec_update(const struct idb_rec_env *env, const struct idb_resource *r, const char *id, const cJSON *body,
               cJSON **fields, struct idb_plan *later, cJSON **rec)
{
	char now[IDB_TIME_LEN];
	cJSON *cur = NULL, *next = NULL, *changes = NULL;
	struct idb_plan own, *p = later != NULL ? later : &own;
	struct rv *v;
	const char *sql;
	long long version = 0, rid = 0;
	enum idb_err e;
	size_t i;

	*fields = NULL;
	*rec = NULL;
	if (!idb_id_valid(id, r->id_prefix))
		return IDB_E_NOT_FOUND;
	if ((v = idb_arena_calloc(env->arena, r->ncols * sizeof(*v))) == NULL)
		return IDB_E_NOMEM;
	if ((e = validate(env, r, body, 1, v, &version, fields)) != IDB_OK)
		return e;
	for (i = 0; i < r->ncols; i++)
		if ((r->cols[i].flags & IDB_CF_REQUIRED) && v[i].present && v[i].is_null)
			e = invalid(fields, r->cols[i].name, "is required and cannot be null");
	if (e != IDB_OK)
		return e;
	if (later == NULL && (e = idb_db_begin(env->db)) != IDB_OK)
		return e;
	idb_plan_init(&own);
	if ((e = load(env, r, id, &cur, &rid)) != IDB_OK)
		goto out;
	if ((long long)cJSON_GetObjectItemCaseSensitive(cur, "version")->valuedouble != version) {
		e = IDB_E_CONFLICT;
		goto out;
	}
	if (r == &idb_res_events) {
		int sync = col_index(r, "sync"), status = col_index(r, "sync_status");

		if (v[sync].present) {
			v[status].present = 1;
			v[status].s = !v[sync].is_null && v[sync].i ? "pending" : "none";
		}
	}
	if ((e = cross_check(env, r, v, cur, fields)) != IDB_OK)
		goto out;
	idb_time_now(now);
	if ((sql = sql_update(env->arena, r, v)) == NULL) {
		e = IDB_E_NOMEM;
		goto out;
	}
	if (later != NULL)
		plan_later_checks(env, r, v, p);
	/* Conditioned on the version read: a change that came in between makes it change nothing (409). */
	idb_plan_stmt(p, sql, IDB_PLAN_ONE_CHANGE, IDB_E_CONFLICT);
	idb_plan_text(p, now);
	idb_plan_text(p, env->actor.id);
	for (i = 0; i < r->ncols; i++)
		if (v[i].present && (e = plan_col(env, r, id, p, i, &v[i])) != IDB_OK)
			goto out;
	idb_plan_int(p, rid);
	idb_plan_text(p, id);
	idb_plan_int(p, version);
	if ((next = next_of(env, r, cur, v, version + 1, now)) == NULL || (changes = cJSON_CreateObject()) == NULL) {
		e = IDB_E_NOMEM;
		goto out;
	}
	for (i = 0; i < r->ncols && e == IDB_OK; i++) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(cur, r->cols[i].name);
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(next, r->cols[i].name);

		if (r->cols[i].kind == IDB_CK_SECRET) {
			/* A value sent is a change, even if equal: the old one is not decrypted to compare. */
			if (v[i].present && !(v[i].is_null && !cJSON_IsTrue(cJSON_GetObjectItem(a, "set"))))
				e = idb_chg_secret(changes, r->cols[i].name, cJSON_IsTrue(cJSON_GetObjectItem(a, "set")),
				                   cJSON_IsTrue(cJSON_GetObjectItem(b, "set")));
		} else if (!cJSON_Compare(a, b, 1))
			e = idb_chg_field(changes, r->cols[i].name, a, b);
	}
	if (e != IDB_OK)
		goto out;
	/* A PATCH that changes no field still takes a new version (the version it
	 * sent is used up, so two concurrent PATCHes never both succeed), but
	 * writes no change-log row: nothing changed. */
	if (changes->child != NULL) {
		if (fts_touched(r, changes))
			fts_plan(env->arena, r, rid, 1, p);
		idb_chg_plan(p, &env->actor, "update", r->name, id, changes);
	}
	if ((e = p->err) != IDB_OK || later != NULL)
		goto out;
	if ((e = run_plan(env, p)) == IDB_OK)
		e = idb_db_commit(env->db);
out:
	idb_plan_free(&own);
	cJSON_Delete(cur);
	cJSON_Delete(changes);
	if (e == IDB_OK)
		*rec = next;
	else {
		cJSON_Delete(next);
		if (later == NULL)
			idb_db_rollback(env->db);
	}
	return e;
}

enum idb_err
idb_rec_delete(const struct idb_rec_env *env, const struct idb_resource *r, const char *id)
{
	char now[IDB_TIME_LEN];
	struct idb_buf b;
	struct idb_plan p;
	sqlite3_stmt *st = NULL;
	cJSON *cur = NULL, *changes = NULL;
	const char *sql;
	long long rid = 0;
	enum idb_err e;
	int rc;

	if (!idb_id_valid(id, r->id_prefix))
		return IDB_E_NOT_FOUND;
	if ((e = idb_db_begin(env->db)) != IDB_OK)
		return e;
	idb_plan_init(&p);
	if ((e = load(env, r, id, &cur, &rid)) != IDB_OK)
		goto out;
	idb_buf_init(&b, SQL_MAX);
	idb_buf_addstr(&b, "UPDATE ");
	idb_buf_addstr(&b, r->name);
	idb_buf_addstr(&b, " SET deleted_at = ?, updated_at = ?, updated_by = ?, version = version + 1"
	                   " WHERE id = ? AND deleted_at IS NULL");
	if ((sql = sql_finish(env->arena, &b)) == NULL ||
	    idb_db_cached_text(env->db, sql, &st) != IDB_OK) {
		e = IDB_E_DB;
		goto out;
	}
	idb_time_now(now);
	sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, env->actor.id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE || sqlite3_changes(env->db) != 1) {
		e = rc == SQLITE_DONE ? IDB_E_NOT_FOUND : IDB_E_DB;
		goto out;
	}
	if ((changes = cJSON_CreateObject()) == NULL) {
		e = IDB_E_NOMEM;
		goto out;
	}
	fts_plan(env->arena, r, rid, 0, &p);
	if ((e = run_plan(env, &p)) != IDB_OK ||
	    (e = idb_chg_append(env->db, &env->actor, "delete", r->name, id, changes)) != IDB_OK)
		goto out;
	e = idb_db_commit(env->db);
out:
	idb_plan_free(&p);
	idb_db_done(st);
	cJSON_Delete(cur);
	cJSON_Delete(changes);
	if (e != IDB_OK)
		idb_db_rollback(env->db);
	return e;
}

enum idb_err
idb_rec_reveal(const struct idb_rec_env *env, const struct idb_resource *r, const char *id, const char *column,
               const char **value)
{
	struct idb_field_ad ad;
	struct idb_buf b;
	sqlite3_stmt *st = NULL;
	const char *sql;
	unsigned char *out;
	size_t n = 0, len;
	enum idb_err e = IDB_OK;
	int c = col_index(r, column), rc;

	*value = NULL;
	if (c < 0 || r->cols[c].kind != IDB_CK_SECRET)
		return IDB_E_VALIDATION;
	if (!idb_id_valid(id, r->id_prefix))
		return IDB_E_NOT_FOUND;
	idb_buf_init(&b, SQL_MAX);
	idb_buf_addstr(&b, "SELECT ");
	idb_buf_addstr(&b, r->cols[c].name);
	idb_buf_addstr(&b, " FROM ");
	idb_buf_addstr(&b, r->name);
	idb_buf_addstr(&b, " WHERE id = ? AND deleted_at IS NULL");
	if ((sql = sql_finish(env->arena, &b)) == NULL || sqlite3_prepare_v2(env->db, sql, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		e = IDB_E_NOT_FOUND;
	else if (rc != SQLITE_ROW)
		e = IDB_E_DB;
	else if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
		len = (size_t)sqlite3_column_bytes(st, 0);
		if (len < IDB_FIELD_OVERHEAD || (out = idb_arena_alloc(env->arena, len - IDB_FIELD_OVERHEAD + 1)) == NULL)
			e = len < IDB_FIELD_OVERHEAD ? IDB_E_CRYPTO : IDB_E_NOMEM;
		else {
			field_ad(env, r, id, r->cols[c].name, &ad);
			e = idb_field_decrypt(env->keys->field, env->keys->field_version, &ad, sqlite3_column_blob(st, 0),
			                      len, out, &n);
			if (e == IDB_OK) {
				out[n] = '\0';
				*value = (const char *)out;
			}
		}
	}
	sqlite3_finalize(st);
	return e;
}
