/* SPDX-License-Identifier: ISC */
/*
 * Schema migrations. The files of sql/registry and sql/org are embedded at
 * build time as two sets; each database records what it applied in
 * schema_migrations(version, name, sha256, applied_at). A changed applied
 * file is refused (IDB_E_CHECKSUM), a database newer than the set is refused
 * (IDB_E_SCHEMA_AHEAD), and each file is applied in its own transaction.
 */
#ifndef IDB_STORE_MIG_H
#define IDB_STORE_MIG_H

#include <stddef.h>
#include <sqlite3.h>
#include "core/err.h"

struct idb_mig {
	int version;
	const char *name;
	const char *sql;
	size_t len;
};

struct idb_mig_set {
	const char *name;
	const struct idb_mig *files;
	size_t n;
};

extern const struct idb_mig_set idb_mig_registry;
extern const struct idb_mig_set idb_mig_org;

/* The highest version of a set (0 if empty). */
int idb_mig_latest(const struct idb_mig_set *);
/*
 * The database's applied version; checks every applied file's checksum.
 * Returns IDB_OK (whether or not files are pending), IDB_E_CHECKSUM,
 * IDB_E_SCHEMA_AHEAD or IDB_E_DB.
 */
enum idb_err idb_mig_current(sqlite3 *, const struct idb_mig_set *, int *version);
/* IDB_OK if up to date, IDB_E_SCHEMA_BEHIND if files are pending, or an error of idb_mig_current. */
enum idb_err idb_mig_check(sqlite3 *, const struct idb_mig_set *);
/* Called before each pending file; non-zero skips applying it (dry runs). */
typedef int (*idb_mig_cb)(const struct idb_mig *, void *);
/*
 * Applies the pending files in order, each in its own transaction. Stops at
 * the first failure, leaving the database at the last version that applied;
 * err then names the file and SQLite's message. *applied counts the files.
 */
enum idb_err idb_mig_apply(sqlite3 *, const struct idb_mig_set *, idb_mig_cb, void *arg,
                           int *applied, char *err, size_t errlen);

#endif
