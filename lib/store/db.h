/* SPDX-License-Identifier: ISC */
/*
 * Opening SQLCipher files: raw 256-bit key (no PBKDF2 on open), WAL,
 * synchronous=FULL, foreign keys on, a busy timeout. A wrong key fails here,
 * at open, with IDB_E_BADKEY.
 */
#ifndef IDB_STORE_DB_H
#define IDB_STORE_DB_H

#include <stddef.h>
#include <sqlite3.h>
#include "core/err.h"
#include "crypto/key.h"

#define IDB_DB_CREATE 0x1   /* create the file if it does not exist */
#define IDB_DB_READONLY 0x2 /* open read-only (SQLITE_OPEN_READONLY) */
#define IDB_DB_QUEUE 0x4    /* writers queue on a flock of the file before BEGIN IMMEDIATE (the workers) */
#define IDB_DB_BUSY_MS 10000
#define IDB_DB_QUEUE_CHECKPOINT 10000 /* WAL frames before a queued handle's commit checkpoints */

/* Opens path with key; *out is owned by the caller (sqlite3_close). */
enum idb_err idb_db_open(const char *path, const unsigned char key[IDB_KEY_LEN], int flags, sqlite3 **out);
/* Runs a fixed statement without parameters (BEGIN, COMMIT, ROLLBACK ...). */
enum idb_err idb_db_exec(sqlite3 *, const char *sql);
/*
 * Transactions that nest: the outermost level is BEGIN IMMEDIATE / COMMIT /
 * ROLLBACK, inner levels are savepoints. Commit and rollback never close a
 * level at or below the handle's floor (so a redundant rollback is harmless).
 */
enum idb_err idb_db_begin(sqlite3 *);
/*
 * Takes the handle's write queue (the flock of IDB_DB_QUEUE) without
 * waiting and keeps it across transactions until idb_db_queue_release: 1 if
 * now held, 0 if another process holds it (or the call failed), -1 if the
 * handle has no queue. Outside any transaction only.
 */
int idb_db_queue_try_hold(sqlite3 *);
void idb_db_queue_release(sqlite3 *);
/* Called after this process lets go of any handle's queue (NULL: nothing). */
extern void (*idb_db_queue_left)(void);
/* A read transaction at depth 0 (no-op inside another); idb_db_begin and idb_db_read_end end it. */
enum idb_err idb_db_read_begin(sqlite3 *);
void idb_db_read_end(sqlite3 *);
enum idb_err idb_db_commit(sqlite3 *);
void idb_db_rollback(sqlite3 *);
/* Sets the floor; returns the previous one. */
int idb_db_floor(sqlite3 *, int floor);
/* The number of open levels. */
int idb_db_depth(sqlite3 *);
/*
 * A prepared statement kept per handle for a static SQL string (compared by
 * address): the hot path's statements are prepared once. Give it back with
 * idb_db_done (reset, not finalized); statements not cached are finalized.
 */
enum idb_err idb_db_cached(sqlite3 *, const char *sql, sqlite3_stmt **out);
void idb_db_done(sqlite3_stmt *);
/* idb_db_cached for SQL text built at run time (equal text, one statement). */
enum idb_err idb_db_cached_text(sqlite3 *, const char *sql, sqlite3_stmt **out);
/*
 * Marks db as an org database with the data generation (sql/org/0011),
 * whose read transactions may use the memo (lib/store/memo.h);
 * IDB_E_SCHEMA_BEHIND without it.
 */
enum idb_err idb_db_track(sqlite3 *);
/* The data generation as the current transaction (or statement) sees it. */
enum idb_err idb_db_generation(sqlite3 *, long long *gen);
/* The memo of a tracked handle inside a read transaction (whose number goes in *snap); NULL otherwise. */
struct idb_memo;
struct idb_memo **idb_db_memo(sqlite3 *, unsigned long *snap);
/* Drops the transaction state (and cached statements) of a handle. */
void idb_db_forget(sqlite3 *);
/* Copies a text column into dst (at most size-1 bytes, NUL-terminated; "" for NULL). */
void idb_db_text(char *dst, size_t size, sqlite3_stmt *, int col);
/* Closes; NULL is fine. */
void idb_db_close(sqlite3 *);

#endif
