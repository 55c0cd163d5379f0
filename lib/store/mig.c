/* SPDX-License-Identifier: ISC */
/* Applying and checking embedded migrations. */
#include "store/mig.h"

#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "core/util.h"

static const char sql_table[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " sha256 TEXT NOT NULL, applied_at TEXT NOT NULL)";
static const char sql_applied[] = "SELECT version, sha256 FROM schema_migrations ORDER BY version";
static const char sql_record[] =
    "INSERT INTO schema_migrations (version, name, sha256, applied_at) VALUES (?, ?, ?, ?)";

static void
checksum(const struct idb_mig *m, char hex[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)m->sql, m->len);
	idb_hex(h, sizeof(h), hex);
}

int
idb_mig_latest(const struct idb_mig_set *set)
{
	return set->n ? set->files[set->n - 1].version : 0;
}

static const struct idb_mig *
find(const struct idb_mig_set *set, int version)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (set->files[i].version == version)
			return &set->files[i];
	return NULL;
}

enum idb_err
idb_mig_current(sqlite3 *db, const struct idb_mig_set *set, int *version)
{
	sqlite3_stmt *st = NULL;
	const struct idb_mig *m;
	enum idb_err e = IDB_OK;
	char hex[65];
	int rc, v;

	*version = 0;
	rc = sqlite3_prepare_v2(db, sql_applied, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		/* No table yet: nothing applied. */
		sqlite3_finalize(st);
		return strstr(sqlite3_errmsg(db), "no such table") ? IDB_OK : IDB_E_DB;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = sqlite3_column_int(st, 0);
		if ((m = find(set, v)) == NULL) {
			e = v > idb_mig_latest(set) ? IDB_E_SCHEMA_AHEAD : IDB_E_CHECKSUM;
			break;
		}
		checksum(m, hex);
		if (sqlite3_column_text(st, 1) == NULL ||
		    strcmp((const char *)sqlite3_column_text(st, 1), hex) != 0) {
			e = IDB_E_CHECKSUM;
			break;
		}
		*version = v;
	}
	if (e == IDB_OK && rc != SQLITE_DONE)
		e = IDB_E_DB;
	sqlite3_finalize(st);
	return e;
}

enum idb_err
idb_mig_check(sqlite3 *db, const struct idb_mig_set *set)
{
	enum idb_err e;
	int v;

	if ((e = idb_mig_current(db, set, &v)) != IDB_OK)
		return e;
	return v < idb_mig_latest(set) ? IDB_E_SCHEMA_BEHIND : IDB_OK;
}

static enum idb_err
apply_one(sqlite3 *db, const struct idb_mig *m, char *err, size_t errlen)
{
	char hex[65], now[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL;
	char *msg = NULL;
	int rc;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot begin: %s", m->name, sqlite3_errmsg(db));
		return IDB_E_DB;
	}
	if (sqlite3_exec(db, m->sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", m->name, msg ? msg : "failed");
		goto fail;
	}
	checksum(m, hex);
	idb_time_now(now);
	if (sqlite3_prepare_v2(db, sql_record, -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_int(st, 1, m->version);
	sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto dberr;
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	/* A migration may edit sqlite_master itself (0009 does, as SQLite
	 * documents for CHECK changes). Other connections see the schema cookie
	 * move and read the schema again; this one still holds what it parsed
	 * before, which a later ALTER TABLE of the same run would build on. A
	 * schema change rolled back makes SQLite drop its copy and read it anew. */
	sqlite3_exec(db, "BEGIN IMMEDIATE; CREATE TABLE idb_schema_reload (x); ROLLBACK", NULL, NULL, NULL);
	return IDB_OK;
dberr:
	snprintf(err, errlen, "%s: %s", m->name, sqlite3_errmsg(db));
fail:
	sqlite3_free(msg);
	sqlite3_finalize(st);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return IDB_E_DB;
}

enum idb_err
idb_mig_apply(sqlite3 *db, const struct idb_mig_set *set, idb_mig_cb cb, void *arg, int *applied,
              char *err, size_t errlen)
{
	enum idb_err e;
	size_t i;
	int v;

	*applied = 0;
	if (sqlite3_exec(db, sql_table, NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "schema_migrations: %s", sqlite3_errmsg(db));
		return IDB_E_DB;
	}
	if ((e = idb_mig_current(db, set, &v)) != IDB_OK) {
		snprintf(err, errlen, "%s", idb_err_str(e));
		return e;
	}
	for (i = 0; i < set->n; i++) {
		if (set->files[i].version <= v)
			continue;
		if (cb != NULL && cb(&set->files[i], arg) != 0)
			continue;
		if ((e = apply_one(db, &set->files[i], err, errlen)) != IDB_OK)
			return e;
		(*applied)++;
	}
	return IDB_OK;
}
