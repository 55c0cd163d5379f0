/* SPDX-License-Identifier: ISC */
/* Writes worked out in advance: see plan.h. */
#include "store/plan.h"

#include <stdint.h>
#include <string.h>

#include "core/util.h"
#include "store/db.h"

/* A plan as big as a PATCH of the longest note fits; bigger is a mistake. */
#define PLAN_MAX (4u * 1024 * 1024)

void
idb_plan_init(struct idb_plan *p)
{
	idb_buf_init(&p->b, PLAN_MAX);
	p->err = IDB_OK;
}

void
idb_plan_free(struct idb_plan *p)
{
	idb_buf_free(&p->b);
}

static void
add(struct idb_plan *p, const void *v, size_t n)
{
	enum idb_err e;

	if (p->err == IDB_OK && (e = idb_buf_add(&p->b, v, n)) != IDB_OK)
		p->err = e;
}

static void
add_sized(struct idb_plan *p, char kind, const void *v, size_t n)
{
	uint32_t len = (uint32_t)n;

	if (n > PLAN_MAX) {
		p->err = IDB_E_TOOBIG;
		return;
	}
	add(p, &kind, 1);
	add(p, &len, sizeof(len));
	add(p, v, n);
}

void
idb_plan_stmt(struct idb_plan *p, const char *sql, enum idb_plan_expect expect, enum idb_err fail)
{
	unsigned char tail[2] = {(unsigned char)expect, (unsigned char)fail};

	add_sized(p, 'S', sql, strlen(sql) + 1);
	add(p, tail, sizeof(tail));
}

void
idb_plan_null(struct idb_plan *p)
{
	add(p, "n", 1);
}

void
idb_plan_int(struct idb_plan *p, long long i)
{
	int64_t v = (int64_t)i;

	add(p, "i", 1);
	add(p, &v, sizeof(v));
}

void
idb_plan_text(struct idb_plan *p, const char *s)
{
	if (s == NULL)
		idb_plan_null(p);
	else
		add_sized(p, 't', s, strlen(s));
}

void
idb_plan_blob(struct idb_plan *p, const void *v, size_t n)
{
	add_sized(p, 'b', v, n);
}

void
idb_plan_now(struct idb_plan *p)
{
	add(p, "T", 1);
}

/* A reader over the bytes: every read checks what is left. */
struct rd {
	const unsigned char *p, *end;
};

static int
get(struct rd *r, void *v, size_t n)
{
	if ((size_t)(r->end - r->p) < n)
		return -1;
	memcpy(v, r->p, n);
	r->p += n;
	return 0;
}

/* A sized value: its bytes stay in the plan. */
static int
get_sized(struct rd *r, const unsigned char **v, uint32_t *n)
{
	if (get(r, n, sizeof(*n)) != 0 || (size_t)(r->end - r->p) < *n)
		return -1;
	*v = r->p;
	r->p += *n;
	return 0;
}

/* Binds the values that follow a statement, up to the next one. */
static enum idb_err
bind_values(struct rd *r, sqlite3_stmt *st, char now[IDB_TIME_LEN])
{
	const unsigned char *v;
	uint32_t n;
	int64_t i;
	int pos = 1, rc;
	char kind;

	while (r->p < r->end && *r->p != 'S') {
		kind = (char)*r->p++;
		switch (kind) {
		case 'n':
			rc = sqlite3_bind_null(st, pos);
			break;
		case 'i':
			if (get(r, &i, sizeof(i)) != 0)
				return IDB_E_INTERNAL;
			rc = sqlite3_bind_int64(st, pos, (sqlite3_int64)i);
			break;
		case 't':
		case 'b':
			if (get_sized(r, &v, &n) != 0 || n > INT32_MAX)
				return IDB_E_INTERNAL;
			rc = kind == 't' ? sqlite3_bind_text(st, pos, (const char *)v, (int)n, SQLITE_STATIC)
			                 : sqlite3_bind_blob(st, pos, v, (int)n, SQLITE_STATIC);
			break;
		case 'T':
			if (now[0] == '\0')
				idb_time_now(now);
			rc = sqlite3_bind_text(st, pos, now, -1, SQLITE_STATIC);
			break;
		default:
			return IDB_E_INTERNAL;
		}
		if (rc != SQLITE_OK)
			return rc == SQLITE_RANGE ? IDB_E_INTERNAL : IDB_E_DB;
		pos++;
	}
	return pos - 1 == sqlite3_bind_parameter_count(st) ? IDB_OK : IDB_E_INTERNAL;
}

/*
 * Steps one bound statement to its end and checks what it expected. *wrote
 * is set if the statement may have changed a row: a write that ran to its
 * end and changed one, or one that SQLite stopped midway.
 */
static enum idb_err
step(sqlite3 *db, sqlite3_stmt *st, unsigned expect, enum idb_err fail, int *wrote)
{
	int rc, rows = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		rows++;
	if (!sqlite3_stmt_readonly(st) && (rc != SQLITE_DONE || sqlite3_changes(db) > 0))
		*wrote = 1;
	if (rc != SQLITE_DONE)
		return rc == SQLITE_CONSTRAINT ? IDB_E_CONFLICT : IDB_E_DB;
	if (expect == IDB_PLAN_ONE_CHANGE && sqlite3_changes(db) != 1)
		return fail;
	if (expect == IDB_PLAN_ROW && rows == 0)
		return fail;
	return IDB_OK;
}

enum idb_err
idb_plan_run(sqlite3 *db, const void *plan, size_t len, int *wrote)
{
	struct rd r = {plan, (const unsigned char *)plan + len};
	char now[IDB_TIME_LEN] = "";
	const unsigned char *sql;
	unsigned char tail[2];
	sqlite3_stmt *st;
	uint32_t n;
	enum idb_err e = IDB_OK;
	int scratch;

	if (wrote == NULL)
		wrote = &scratch;
	*wrote = 0;
	while (e == IDB_OK && r.p < r.end) {
		if (*r.p++ != 'S' || get_sized(&r, &sql, &n) != 0 || n == 0 || sql[n - 1] != '\0' ||
		    get(&r, tail, sizeof(tail)) != 0 || tail[0] > IDB_PLAN_ROW || tail[1] >= IDB_E__MAX)
			return IDB_E_INTERNAL;
		if (idb_db_cached_text(db, (const char *)sql, &st) != IDB_OK)
			return IDB_E_DB;
		if ((e = bind_values(&r, st, now)) == IDB_OK)
			e = step(db, st, tail[0], (enum idb_err)tail[1], wrote);
		idb_db_done(st);
	}
	return e;
}
