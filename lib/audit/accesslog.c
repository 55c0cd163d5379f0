/* SPDX-License-Identifier: ISC */
#include "audit/accesslog.h"

#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "core/buf.h"
#include "crypto/sha256.h"
#include "store/db.h"

static const char domain[] = "immidb-access-log-v1\n";
static const char sql_last[] = "SELECT seq, hash FROM access_log ORDER BY seq DESC LIMIT 1";
static const char sql_insert[] =
    "INSERT OR FAIL INTO access_log (seq, at, actor_kind, actor_id, actor_email, via, ip, action, target, reason,"
    " outcome, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char sql_all[] =
    "SELECT seq, at, actor_kind, actor_id, actor_email, via, ip, action, target, reason, outcome, detail,"
    " prev_hash, hash FROM access_log ORDER BY seq";
/*
 * The list query, put together from fixed fragments: every value stays a bound
 * parameter (?1 before_seq, ?2 after_seq, ?3 actor_kind, ?4 action, ?5 since,
 * ?6 limit), and a condition is only there when its filter is. The partial
 * indexes of sql/org/0008_access_log_indexes.sql leave out users' entries and
 * reads; SQLite (3.15) uses one only if the query repeats its WHERE term
 * word for word, so a filter on a rare actor kind or action adds that term
 * (always true then, it changes no result). The texts must stay the
 * migration's; test/unit/test_accesslog.c checks the plans.
 */
#define LIST_SQL_MAX 1024
static const char sql_list_head[] =
    "SELECT seq, at, actor_kind, actor_id, actor_email, via, ip, action, target, reason, outcome, detail,"
    " prev_hash, hash FROM access_log WHERE seq > ?2";
static const char sql_list_before[] = " AND seq < ?1";
static const char sql_list_actor[] = " AND actor_kind = ?3";
static const char sql_list_actor_rare[] = " AND actor_kind <> 'user'";
static const char sql_list_action[] = " AND action = ?4";
static const char sql_list_action_rare[] = " AND action NOT IN ('record.read', 'record.list')";
static const char sql_list_since[] = " AND at >= ?5";
static const char sql_list_newest[] = " ORDER BY seq DESC LIMIT ?6";
static const char sql_list_oldest[] = " ORDER BY seq LIMIT ?6";
/* What the partial indexes leave out: the one frequent actor kind, the frequent actions. */
static const char common_actor[] = "user";
static const char *const common_actions[] = {"record.read", "record.list", NULL};

static const char *
z(const char *s)
{
	return s ? s : "";
}

static void
field(struct idb_sha256 *st, const char *s)
{
	unsigned char len[4];
	size_t n = strlen(z(s));

	len[0] = (unsigned char)(n >> 24);
	len[1] = (unsigned char)(n >> 16);
	len[2] = (unsigned char)(n >> 8);
	len[3] = (unsigned char)n;
	idb_sha256_update(st, len, 4);
	idb_sha256_update(st, z(s), n);
}

void
idb_log_hash(const struct idb_log_entry *e, unsigned char out[32])
{
	struct idb_sha256 st;
	char seq[24];

	snprintf(seq, sizeof(seq), "%lld", e->seq);
	idb_sha256_init(&st);
	idb_sha256_update(&st, domain, sizeof(domain) - 1);
	idb_sha256_update(&st, e->prev, 32);
	field(&st, seq);
	field(&st, e->at);
	field(&st, e->actor_kind);
	field(&st, e->actor_id);
	field(&st, e->actor_email);
	field(&st, e->via);
	field(&st, e->ip);
	field(&st, e->action);
	field(&st, e->target);
	field(&st, e->reason);
	field(&st, e->outcome);
	field(&st, e->detail);
	idb_sha256_final(&st, out);
}

enum idb_err
idb_log_head(sqlite3 *db, long long *size, unsigned char head[32])
{
	sqlite3_stmt *st = NULL;
	enum idb_err e = IDB_OK;
	int rc;

	*size = 0;
	memset(head, 0, 32);
	if (idb_db_cached(db, sql_last, &st) != IDB_OK)
		return IDB_E_DB;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 1) == 32) {
		*size = sqlite3_column_int64(st, 0);
		memcpy(head, sqlite3_column_blob(st, 1), 32);
	} else if (rc != SQLITE_DONE)
		e = IDB_E_DB;
	idb_db_done(st);
	return e;
}

enum idb_err
idb_log_append(sqlite3 *db, struct idb_log_entry *e)
{
	return idb_log_append_after(db, e, NULL);
}

enum idb_err
idb_log_append_after(sqlite3 *db, struct idb_log_entry *e, const struct idb_log_entry *last)
{
	sqlite3_stmt *st = NULL;
	long long size;
	enum idb_err err;
	int rc;

	if (sqlite3_get_autocommit(db))
		return IDB_E_INTERNAL; /* the entry must commit with its action */
	if (last != NULL) {
		size = last->seq;
		memcpy(e->prev, last->hash, 32);
	} else if ((err = idb_log_head(db, &size, e->prev)) != IDB_OK)
		return err;
	e->seq = size + 1;
	if (e->at[0] == '\0')
		idb_time_now(e->at);
	idb_log_hash(e, e->hash);
	if (idb_db_cached(db, sql_insert, &st) != IDB_OK)
		return IDB_E_UNAVAILABLE;
	sqlite3_bind_int64(st, 1, e->seq);
	sqlite3_bind_text(st, 2, e->at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, z(e->actor_kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, z(e->actor_id), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, z(e->actor_email), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, z(e->via), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, z(e->ip), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, z(e->action), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, z(e->target), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, z(e->reason), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, z(e->outcome), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, z(e->detail), -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 13, e->prev, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 14, e->hash, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	idb_db_done(st);
	/* Fail closed: the caller answers 503 and commits nothing. */
	return rc == SQLITE_DONE ? IDB_OK : IDB_E_UNAVAILABLE;
}

static const char *
col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? (const char *)t : "";
}

static void
row_entry(sqlite3_stmt *st, struct idb_log_entry *e)
{
	size_t n;

	e->seq = sqlite3_column_int64(st, 0);
	n = strlen(col(st, 1));
	if (n >= sizeof(e->at))
		n = sizeof(e->at) - 1;
	memcpy(e->at, col(st, 1), n);
	e->at[n] = '\0';
	e->actor_kind = col(st, 2);
	e->actor_id = col(st, 3);
	e->actor_email = col(st, 4);
	e->via = col(st, 5);
	e->ip = col(st, 6);
	e->action = col(st, 7);
	e->target = col(st, 8);
	e->reason = col(st, 9);
	e->outcome = col(st, 10);
	e->detail = col(st, 11);
	memset(e->prev, 0, 32);
	memset(e->hash, 0, 32);
	if (sqlite3_column_bytes(st, 12) == 32)
		memcpy(e->prev, sqlite3_column_blob(st, 12), 32);
	if (sqlite3_column_bytes(st, 13) == 32)
		memcpy(e->hash, sqlite3_column_blob(st, 13), 32);
}

enum idb_err
idb_log_verify(sqlite3 *db, int *ok, long long *size, unsigned char head[32], long long *first_bad)
{
	unsigned char prev[32] = {0}, h[32];
	struct idb_log_entry e;
	sqlite3_stmt *st = NULL;
	long long expect = 1;
	int rc;

	*ok = 1;
	*size = 0;
	*first_bad = 0;
	memset(head, 0, 32);
	if (sqlite3_prepare_v2(db, sql_all, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&e, 0, sizeof(e));
		row_entry(st, &e);
		*size = e.seq;
		if (e.seq != expect || memcmp(e.prev, prev, 32) != 0) {
			*ok = 0;
			*first_bad = expect;
			break;
		}
		idb_log_hash(&e, h);
		if (sodium_memcmp(h, e.hash, 32) != 0) {
			*ok = 0;
			*first_bad = e.seq;
			break;
		}
		memcpy(prev, h, 32);
		expect++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return IDB_E_DB;
	if (*ok)
		memcpy(head, prev, 32);
	else {
		/* The size reported is the log's length, not where the check stopped. */
		unsigned char last[32];

		if (idb_log_head(db, size, last) != IDB_OK)
			return IDB_E_DB;
	}
	return IDB_OK;
}

static void
bind_opt(sqlite3_stmt *st, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static int
listed(const char *const *list, const char *v)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, v) == 0)
			return 1;
	return 0;
}

/* The list query for f into b (from the fragments above only). */
static enum idb_err
list_sql(const struct idb_log_filter *f, struct idb_buf *b)
{
	enum idb_err e = idb_buf_addstr(b, sql_list_head);

	if (e == IDB_OK && f->before_seq != 0)
		e = idb_buf_addstr(b, sql_list_before);
	if (e == IDB_OK && f->actor_kind != NULL) {
		e = idb_buf_addstr(b, sql_list_actor);
		if (e == IDB_OK && strcmp(f->actor_kind, common_actor) != 0)
			e = idb_buf_addstr(b, sql_list_actor_rare);
	}
	if (e == IDB_OK && f->action != NULL) {
		e = idb_buf_addstr(b, sql_list_action);
		if (e == IDB_OK && !listed(common_actions, f->action))
			e = idb_buf_addstr(b, sql_list_action_rare);
	}
	if (e == IDB_OK && f->since != NULL)
		e = idb_buf_addstr(b, sql_list_since);
	if (e == IDB_OK)
		e = idb_buf_addstr(b, f->newest_first ? sql_list_newest : sql_list_oldest);
	return e;
}

enum idb_err
idb_log_each(sqlite3 *db, const struct idb_log_filter *f, void (*fn)(cJSON *, long long, void *), void *arg)
{
	struct idb_log_entry e;
	struct idb_buf sql;
	sqlite3_stmt *st = NULL;
	char hex[65];
	cJSON *j, *a;
	enum idb_err err;
	int rc;

	idb_buf_init(&sql, LIST_SQL_MAX);
	if ((err = list_sql(f, &sql)) != IDB_OK) {
		idb_buf_free(&sql);
		/* TOOBIG would mean LIST_SQL_MAX is too small for the fixed fragments. */
		return err == IDB_E_NOMEM ? err : IDB_E_INTERNAL;
	}
	rc = sqlite3_prepare_v2(db, sql.data, (int)sql.len, &st, NULL);
	idb_buf_free(&sql);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		return IDB_E_DB;
	}
	/* Parameters the query leaves out are still numbered below ?6: binding them is harmless. */
	sqlite3_bind_int64(st, 1, f->before_seq);
	sqlite3_bind_int64(st, 2, f->after_seq);
	bind_opt(st, 3, f->actor_kind);
	bind_opt(st, 4, f->action);
	bind_opt(st, 5, f->since);
	sqlite3_bind_int64(st, 6, f->limit > 0 ? f->limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&e, 0, sizeof(e));
		row_entry(st, &e);
		if ((j = cJSON_CreateObject()) == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		cJSON_AddNumberToObject(j, "seq", (double)e.seq);
		cJSON_AddStringToObject(j, "at", e.at);
		a = cJSON_AddObjectToObject(j, "actor");
		if (a != NULL) {
			cJSON_AddStringToObject(a, "kind", e.actor_kind);
			cJSON_AddStringToObject(a, "id", e.actor_id);
			cJSON_AddStringToObject(a, "email", e.actor_email);
		}
		cJSON_AddStringToObject(j, "via", e.via);
		cJSON_AddStringToObject(j, "ip", e.ip);
		cJSON_AddStringToObject(j, "action", e.action);
		cJSON_AddStringToObject(j, "target", e.target);
		cJSON_AddStringToObject(j, "reason", e.reason);
		cJSON_AddStringToObject(j, "outcome", e.outcome);
		cJSON_AddStringToObject(j, "detail", e.detail);
		idb_hex(e.prev, 32, hex);
		cJSON_AddStringToObject(j, "prev_hash", hex);
		idb_hex(e.hash, 32, hex);
		cJSON_AddStringToObject(j, "hash", hex);
		fn(j, e.seq, arg);
		cJSON_Delete(j);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? IDB_OK : IDB_E_DB;
}
