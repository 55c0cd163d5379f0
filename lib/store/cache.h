/* SPDX-License-Identifier: ISC */
/*
 * A worker's cache of open org databases, least recently used first out,
 * bounded by org_cache. The cache owns the handles and the unwrapped field
 * keys (in guarded memory). Each lookup compares the file's device and
 * inode with the ones it opened, so a file replaced by a restore is reopened.
 */
#ifndef IDB_STORE_CACHE_H
#define IDB_STORE_CACHE_H

#include <sys/types.h>
#include <sqlite3.h>
#include "conf/conf.h"
#include "crypto/key.h"
#include "store/registry.h"

struct idb_org_handle {
	char org_id[IDB_ID_LEN + 1];
	char path[IDB_PATH_MAX]; /* the database file, looked at on every use */
	sqlite3 *db;
	struct idb_org_keys *keys; /* sodium_malloc'd; field key for sensitive fields */
	dev_t dev;
	ino_t ino;
	unsigned long long used;
	int schema_cookie; /* PRAGMA schema_version when the schema was checked */
};

struct idb_cache {
	size_t max, n;
	unsigned long long tick;
	struct idb_org_handle *v;
	unsigned long long opens; /* how many times a file was opened (for tests) */
};

enum idb_err idb_cache_init(struct idb_cache *, size_t max);
/*
 * The open database of an org, opening it if needed (evicting the least
 * recently used one when full). The handle stays owned by the cache and is
 * valid until the next idb_cache_get or idb_cache_drop. Errors: those of
 * idb_org_open, e.g. IDB_E_SCHEMA_BEHIND (the handle is not kept, so the
 * next request looks again).
 */
enum idb_err idb_cache_get(struct idb_cache *, const struct idb_conf *, sqlite3 *reg,
                           const struct idb_master *, const char *org_id, struct idb_org_handle **out);
/* The same, with a read transaction opened on the handle (before its check): for a
 * request that reads; idb_db_read_end (or the first idb_db_begin) ends it. */
enum idb_err idb_cache_get_read(struct idb_cache *, const struct idb_conf *, sqlite3 *reg,
                                const struct idb_master *, const char *org_id, struct idb_org_handle **out);
/* Closes and forgets one org's handle (after an error on it, say). */
void idb_cache_drop(struct idb_cache *, const char *org_id);
void idb_cache_free(struct idb_cache *);

#endif
