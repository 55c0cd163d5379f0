/* SPDX-License-Identifier: ISC */
#include "audit/changelog.h"

#include <string.h>

#include "core/util.h"
#include "store/db.h"

static const char sql_append[] =
    "INSERT OR FAIL INTO change_log (at, actor_kind, actor_id, actor_email, action, entity, entity_id, changes)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
static const char sql_each[] =
    "SELECT seq, at, actor_kind, actor_id, actor_email, action, entity, entity_id, changes FROM change_log"
    " WHERE seq > ?1 AND (?2 IS NULL OR entity = ?2) AND (?3 IS NULL OR entity_id = ?3)"
    " AND (?4 IS NULL OR at >= ?4) ORDER BY seq LIMIT ?5";

void
idb_chg_plan(struct idb_plan *p, const struct idb_actor *a, const char *action, const char *entity,
             const char *entity_id, const cJSON *changes)
{
	char *text;

	if ((text = cJSON_PrintUnformatted(changes)) == NULL) {
		p->err = IDB_E_NOMEM;
		return;
	}
	idb_plan_stmt(p, sql_append, IDB_PLAN_ANY, IDB_E_DB);
	idb_plan_now(p);
	idb_plan_text(p, a->kind);
	idb_plan_text(p, a->id ? a->id : "");
	idb_plan_text(p, a->email ? a->email : "");
	idb_plan_text(p, action);
	idb_plan_text(p, entity);
	idb_plan_text(p, entity_id);
	idb_plan_text(p, text);
	cJSON_free(text);
}

enum idb_err
idb_chg_append(sqlite3 *db, const struct idb_actor *a, const char *action, const char *entity,
               const char *entity_id, const cJSON *changes)
{
	struct idb_plan p;
	enum idb_err e;

	idb_plan_init(&p);
	idb_chg_plan(&p, a, action, entity, entity_id, changes);
	e = p.err == IDB_OK ? idb_plan_run(db, p.b.data, p.b.len, NULL) : p.err;
	idb_plan_free(&p);
	return e;
}

enum idb_err
idb_chg_field(cJSON *changes, const char *name, const cJSON *from, const cJSON *to)
{
	cJSON *f = cJSON_CreateObject(), *a, *b;

	a = from ? cJSON_Duplicate(from, 1) : cJSON_CreateNull();
	b = to ? cJSON_Duplicate(to, 1) : cJSON_CreateNull();
	if (f == NULL || a == NULL || b == NULL) {
		cJSON_Delete(f);
		cJSON_Delete(a);
		cJSON_Delete(b);
		return IDB_E_NOMEM;
	}
	cJSON_AddItemToObject(f, "from", a);
	cJSON_AddItemToObject(f, "to", b);
	cJSON_AddItemToObject(changes, name, f);
	return IDB_OK;
}

enum idb_err
idb_chg_secret(cJSON *changes, const char *name, int from_set, int to_set)
{
	cJSON *a = from_set ? cJSON_CreateString(IDB_CHG_ENCRYPTED) : cJSON_CreateNull();
	cJSON *b = to_set ? cJSON_CreateString(IDB_CHG_ENCRYPTED) : cJSON_CreateNull();
	enum idb_err e = idb_chg_field(changes, name, a, b);

	cJSON_Delete(a);
	cJSON_Delete(b);
	return e;
}

static void
bind_opt(sqlite3_stmt *st, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static const char *
txt(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? (const char *)t : "";
}

enum idb_err
idb_chg_each(sqlite3 *db, const struct idb_chg_filter *f, void (*fn)(cJSON *, long long, void *), void *arg)
{
	sqlite3_stmt *st = NULL;
	cJSON *e, *actor, *changes;
	long long seq;
	int rc;

	if (sqlite3_prepare_v2(db, sql_each, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_int64(st, 1, f->after_seq);
	bind_opt(st, 2, f->entity);
	bind_opt(st, 3, f->entity_id);
	bind_opt(st, 4, f->since);
	sqlite3_bind_int64(st, 5, f->limit > 0 ? f->limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		seq = sqlite3_column_int64(st, 0);
		if ((e = cJSON_CreateObject()) == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		cJSON_AddNumberToObject(e, "seq", (double)seq);
		cJSON_AddStringToObject(e, "at", txt(st, 1));
		actor = cJSON_AddObjectToObject(e, "actor");
		if (actor != NULL) {
			cJSON_AddStringToObject(actor, "kind", txt(st, 2));
			cJSON_AddStringToObject(actor, "id", txt(st, 3));
			cJSON_AddStringToObject(actor, "email", txt(st, 4));
		}
		cJSON_AddStringToObject(e, "action", txt(st, 5));
		cJSON_AddStringToObject(e, "entity", txt(st, 6));
		cJSON_AddStringToObject(e, "entity_id", txt(st, 7));
		changes = cJSON_Parse(txt(st, 8));
		cJSON_AddItemToObject(e, "changes", changes ? changes : cJSON_CreateObject());
		fn(e, seq, arg);
		cJSON_Delete(e);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? IDB_OK : IDB_E_DB;
}
