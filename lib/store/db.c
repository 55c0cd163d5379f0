/* SPDX-License-Identifier: ISC */
#include "store/db.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum idb_err
idb_db_open(const char *path, const unsigned char key[IDB_KEY_LEN], int flags, sqlite3 **out)
{
	char spec[IDB_KEY_SPEC_LEN];
	enum idb_err e = IDB_OK;
	sqlite3 *db = NULL;
	struct stat st;
	int oflags, rc, created;

	*out = NULL;
	created = stat(path, &st) != 0;
	if (created && !(flags & IDB_DB_CREATE))
		return IDB_E_NOT_FOUND;
	oflags = SQLITE_OPEN_NOMUTEX | ((flags & IDB_DB_READONLY) ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
	if (flags & IDB_DB_CREATE)
		oflags |= SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &db, oflags, NULL) != SQLITE_OK) {
		e = IDB_E_IO;
		goto out;
	}
	idb_key_spec(key, spec);
	rc = sqlite3_key(db, spec, (int)strlen(spec));
	sodium_memzero(spec, sizeof(spec));
	if (rc != SQLITE_OK) {
		e = IDB_E_CRYPTO;
		goto out;
	}
	/* The first read decrypts page 1: a wrong key fails here. */
	rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
	if (rc == SQLITE_NOTADB) {
		e = IDB_E_BADKEY;
		goto out;
	} else if (rc != SQLITE_OK) {
		e = IDB_E_DB;
		goto out;
	}
	sqlite3_busy_timeout(db, IDB_DB_BUSY_MS);
	if (!(flags & IDB_DB_READONLY) &&
	    (e = idb_db_exec(db, "PRAGMA journal_mode = WAL")) != IDB_OK)
		goto out;
	if ((e = idb_db_exec(db, "PRAGMA synchronous = FULL")) != IDB_OK ||
	    (e = idb_db_exec(db, "PRAGMA foreign_keys = ON")) != IDB_OK)
		goto out;
	if (created)
		chmod(path, 0600);
	*out = db;
	db = NULL;
out:
	if (db != NULL)
		sqlite3_close(db);
	if (e != IDB_OK && created)
		unlink(path);
	return e;
}

enum idb_err
idb_db_exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? IDB_OK : IDB_E_DB;
}

void
idb_db_close(sqlite3 *db)
{
	if (db != NULL)
		sqlite3_close(db);
}

enum idb_err
idb_db_begin(sqlite3 *db)
{
	return idb_db_exec(db, "BEGIN IMMEDIATE");
}

enum idb_err
idb_db_commit(sqlite3 *db)
{
	if (idb_db_exec(db, "COMMIT") == IDB_OK)
		return IDB_OK;
	idb_db_rollback(db);
	return IDB_E_DB;
}

void
idb_db_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}
