/* SPDX-License-Identifier: ISC */
/*
 * What a worker's requests read from an org database, kept for the next
 * request: the settings, a session, a user, a record. SQLite forgets its
 * whole page cache whenever another connection commits, and every logged
 * request commits an access-log entry, so without this each request reads
 * and decrypts the same unchanged pages again.
 *
 * Exact, not a cache with a lifetime: values are kept per handle under the
 * org's data generation (sql/org/0011), which triggers move on with every
 * row written to a table the memo keeps values of, whoever writes it (the
 * access log is not one). A value is taken or kept only inside a read transaction
 * of a tracked handle, and only once that transaction has read the
 * generation: the first call in each read transaction reads it, and a
 * generation other than the one the memo holds empties the memo. So a
 * value given back is the one the same read would have returned in this
 * snapshot. A handle's memo goes with it (schema changes and replaced
 * files open a new handle: lib/store/cache.c), and emptied memory is
 * wiped: it holds session rows and record fields.
 */
#ifndef IDB_STORE_MEMO_H
#define IDB_STORE_MEMO_H

#include <stddef.h>
#include <sqlite3.h>

struct idb_memo;

enum idb_memo_kind { IDB_MEMO_SETTINGS = 1, IDB_MEMO_SESSION, IDB_MEMO_USER, IDB_MEMO_RECORD };

/* Values kept per handle, and the longest key. */
#define IDB_MEMO_ENTRIES 64
#define IDB_MEMO_KEY_MAX 96

/* The value of (kind, key) in db's current snapshot, its length in *len; NULL if not kept (or not usable now). */
const void *idb_memo_get(sqlite3 *db, int kind, const void *key, size_t klen, size_t *len);
/* Keeps a value read in db's current read transaction; does nothing outside one, or if it cannot. */
void idb_memo_put(sqlite3 *db, int kind, const void *key, size_t klen, const void *val, size_t len);
/* Wipes and frees a handle's memo (lib/store/db.c, when the handle goes). */
void idb_memo_free(struct idb_memo *);
/* Values taken from memos by this process so far (for tests). */
unsigned long idb_memo_hits(void);

#endif
