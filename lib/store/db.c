/* SPDX-License-Identifier: ISC */
#include "store/db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/cipher.h"
#include "store/memo.h"

/*
 * Waiting for the write lock. SQLite's own timeout sleeps in growing steps
 * (up to 100 ms), so under contention a request may sleep long after the lock
 * is free: a p99 of hundreds of milliseconds. Transactions here are short
 * (a log append is one commit), so wait in short steps instead, up to
 * IDB_DB_BUSY_MS in all.
 */
static int
busy(void *arg, int count)
{
	struct timespec ts = {0, count < 100 ? 100 * 1000 : 1000 * 1000};
	static const long long budget_us = (long long)IDB_DB_BUSY_MS * 1000;
	long long spent_us = count < 100 ? (long long)count * 100 : 100 * 100 + (long long)(count - 100) * 1000;

	(void)arg;
	if (spent_us >= budget_us)
		return 0;
	nanosleep(&ts, NULL);
	return 1;
}

static void queue_open(sqlite3 *, const char *path);

enum idb_err
idb_db_open(const char *path, const unsigned char key[IDB_KEY_LEN], int flags, sqlite3 **out)
{
	char spec[IDB_KEY_SPEC_LEN];
	enum idb_err e = IDB_OK;
	sqlite3 *db = NULL;
	struct stat st;
	int oflags, rc, created;

	*out = NULL;
	/* Before the first key is set: connections copy the provider then. */
	idb_cipher_install();
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
	sqlite3_busy_handler(db, busy, NULL);
	if (!(flags & IDB_DB_READONLY) &&
	    (e = idb_db_exec(db, "PRAGMA journal_mode = WAL")) != IDB_OK)
		goto out;
	if ((e = idb_db_exec(db, "PRAGMA synchronous = FULL")) != IDB_OK ||
	    (e = idb_db_exec(db, "PRAGMA foreign_keys = ON")) != IDB_OK)
		goto out;
	if (created)
		chmod(path, 0600);
	/* The workers' handles checkpoint ten times less often than SQLite's
	 * default: the checkpoint runs inside a commit, under the write lock,
	 * and its fsync of the database file (tens of milliseconds under load)
	 * holds up every writer queued behind it. Pages written many times
	 * between two checkpoints are copied once. */
	if (flags & IDB_DB_QUEUE) {
		queue_open(db, path);
		sqlite3_wal_autocheckpoint(db, IDB_DB_QUEUE_CHECKPOINT);
	}
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
	if (db != NULL) {
		idb_db_forget(db);
		sqlite3_close(db);
	}
}

/*
 * Nested transactions. The outermost level is BEGIN IMMEDIATE ... COMMIT;
 * inner levels are savepoints, so a handler's own begin/commit/rollback work
 * inside the request's transaction that the application opens around it (the
 * access-log entry commits with the action). A floor protects the levels of
 * the caller: commit and rollback never close a level at or below it, which
 * also makes a redundant rollback after a commit harmless. State per handle
 * lives in a small table (one thread per process).
 */
#define TX_HANDLES 4200 /* above org_cache's maximum of 4096 */

#define STMT_CACHE 64 /* hot statements kept prepared per handle */

static struct {
	sqlite3 *db;
	int depth, floor;
	int queue_fd, queued; /* IDB_DB_QUEUE: an fd of the file for flock, and whether it is held */
	int reading;          /* a read transaction (BEGIN DEFERRED) is open at depth 0 */
	int held;             /* the flock is held by idb_db_queue_try_hold, across transactions */
	unsigned long snap;   /* read transactions begun so far: names the current one */
	int tracked;          /* the database has the data generation (idb_db_track) */
	struct idb_memo *memo; /* lib/store/memo.c, for a tracked handle */
	struct {
		const char *sql; /* the caller's static string: compared by address */
		sqlite3_stmt *st;
	} cache[STMT_CACHE];
} tx[TX_HANDLES];
static int tx_used; /* slots below this index have been used */

static int
tx_slot(sqlite3 *db, int create)
{
	int i, free_slot = -1;

	for (i = 0; i < tx_used; i++) {
		if (tx[i].db == db)
			return i;
		if (tx[i].db == NULL && free_slot < 0)
			free_slot = i;
	}
	if (!create)
		return -1;
	if (free_slot < 0) {
		if (tx_used == TX_HANDLES)
			return -1;
		free_slot = tx_used++;
	}
	memset(&tx[free_slot], 0, sizeof(tx[free_slot]));
	tx[free_slot].db = db;
	tx[free_slot].queue_fd = -1;
	return free_slot;
}

void
idb_db_forget(sqlite3 *db)
{
	int i = tx_slot(db, 0), k;

	if (i < 0)
		return;
	for (k = 0; k < STMT_CACHE; k++)
		sqlite3_finalize(tx[i].cache[k].st);
	if (tx[i].queue_fd >= 0)
		close(tx[i].queue_fd); /* also drops the flock, if held */
	idb_memo_free(tx[i].memo);
	memset(&tx[i], 0, sizeof(tx[i]));
}

/*
 * Writers of the request path queue for the write lock in the kernel: an
 * exclusive flock on the database file (flock and SQLite's fcntl locks do
 * not interact) is taken before BEGIN IMMEDIATE and dropped after COMMIT or
 * ROLLBACK. The next waiter is woken the moment the lock is free, instead
 * of polling in the busy handler's steps; with a commit costing one fsync,
 * that handover time is most of what separates the request rate from the
 * disk's commit rate. Others (immidb-admin) take SQLite's lock alone.
 */
static void
queue_open(sqlite3 *db, const char *path)
{
	int i = tx_slot(db, 1);

	if (i >= 0)
		tx[i].queue_fd = open(path, O_RDONLY | O_CLOEXEC);
}

static void
queue_enter(int i)
{
	if (tx[i].queue_fd < 0 || tx[i].queued)
		return;
	while (flock(tx[i].queue_fd, LOCK_EX) != 0)
		if (errno != EINTR)
			return; /* not queued: SQLite's lock still serializes */
	tx[i].queued = 1;
}

void (*idb_db_queue_left)(void);

static void
queue_leave(int i)
{
	if (tx[i].queued && !tx[i].held) {
		flock(tx[i].queue_fd, LOCK_UN);
		tx[i].queued = 0;
		if (idb_db_queue_left != NULL)
			idb_db_queue_left();
	}
}

enum idb_err
idb_db_cached(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
	int i = tx_slot(db, 1), k, free_k = -1;

	*out = NULL;
	if (i >= 0) {
		for (k = 0; k < STMT_CACHE; k++) {
			if (tx[i].cache[k].sql == sql) {
				sqlite3_reset(tx[i].cache[k].st);
				sqlite3_clear_bindings(tx[i].cache[k].st);
				*out = tx[i].cache[k].st;
				return IDB_OK;
			}
			if (tx[i].cache[k].sql == NULL && free_k < 0)
				free_k = k;
		}
	}
	if (sqlite3_prepare_v2(db, sql, -1, out, NULL) != SQLITE_OK) {
		sqlite3_finalize(*out);
		*out = NULL;
		return IDB_E_DB;
	}
	if (i >= 0 && free_k >= 0) {
		tx[i].cache[free_k].sql = sql;
		tx[i].cache[free_k].st = *out;
	}
	return IDB_OK;
}

/*
 * SQL assembled at run time (from the resource tables) is interned: equal
 * text gets one lasting pointer, so it is cached like a constant. Bounded:
 * past INTERN_MAX distinct texts a statement is prepared on each use.
 */
#define INTERN_SLOTS 512
#define INTERN_MAX 384
static char *interned[INTERN_SLOTS];
static size_t ninterned;

static const char *
intern(const char *sql)
{
	unsigned long h = 2166136261UL;
	size_t i, len = strlen(sql);

	for (i = 0; i < len; i++)
		h = ((h ^ (unsigned char)sql[i]) * 16777619UL) & 0xffffffffUL;
	for (i = h % INTERN_SLOTS; interned[i] != NULL; i = (i + 1) % INTERN_SLOTS)
		if (strcmp(interned[i], sql) == 0)
			return interned[i];
	if (ninterned >= INTERN_MAX || (interned[i] = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(interned[i], sql, len + 1);
	ninterned++;
	return interned[i];
}

enum idb_err
idb_db_cached_text(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
	const char *k = intern(sql);

	if (k != NULL)
		return idb_db_cached(db, k, out);
	if (sqlite3_prepare_v2(db, sql, -1, out, NULL) != SQLITE_OK) {
		sqlite3_finalize(*out);
		*out = NULL;
		return IDB_E_DB;
	}
	return IDB_OK;
}

void
idb_db_done(sqlite3_stmt *st)
{
	sqlite3 *db;
	int i, k;

	if (st == NULL)
		return;
	db = sqlite3_db_handle(st);
	if ((i = tx_slot(db, 0)) >= 0)
		for (k = 0; k < STMT_CACHE; k++)
			if (tx[i].cache[k].st == st) {
				sqlite3_reset(st); /* kept for the next use; releases its read */
				return;
			}
	sqlite3_finalize(st);
}

/* The transaction statements, prepared once per handle (they run on every request). */
static const char sql_begin[] = "BEGIN", sql_begin_imm[] = "BEGIN IMMEDIATE", sql_commit[] = "COMMIT",
                  sql_savepoint[] = "SAVEPOINT idb_tx", sql_release[] = "RELEASE idb_tx";

static enum idb_err
run(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (idb_db_cached(db, sql, &st) != IDB_OK)
		return IDB_E_DB;
	rc = sqlite3_step(st);
	idb_db_done(st);
	return rc == SQLITE_DONE ? IDB_OK : IDB_E_DB;
}

/*
 * A tracked handle: its database has the data generation (sql/org/0011),
 * which triggers move on with every change to a table the memo holds
 * values of (lib/store/memo.h).
 */
static const char sql_generation[] = "SELECT n FROM data_generation WHERE id = 1";

enum idb_err
idb_db_track(sqlite3 *db)
{
	int i = tx_slot(db, 1);
	sqlite3_stmt *st = NULL;

	if (i < 0)
		return IDB_E_TOOBIG;
	/* A database without the table (not yet migrated) is not tracked. */
	if (idb_db_cached(db, sql_generation, &st) != IDB_OK)
		return IDB_E_SCHEMA_BEHIND;
	idb_db_done(st);
	tx[i].tracked = 1;
	return IDB_OK;
}

enum idb_err
idb_db_generation(sqlite3 *db, long long *gen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*gen = 0;
	if (idb_db_cached(db, sql_generation, &st) != IDB_OK)
		return IDB_E_DB;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*gen = sqlite3_column_int64(st, 0);
	idb_db_done(st);
	return rc == SQLITE_ROW ? IDB_OK : IDB_E_DB;
}

struct idb_memo **
idb_db_memo(sqlite3 *db, unsigned long *snap)
{
	int i = tx_slot(db, 0);

	if (i < 0 || !tx[i].tracked || !tx[i].reading || tx[i].depth > 0 || sqlite3_get_autocommit(db))
		return NULL;
	*snap = tx[i].snap;
	return &tx[i].memo;
}

int
idb_db_queue_try_hold(sqlite3 *db)
{
	int i = tx_slot(db, 0);

	if (i < 0 || tx[i].queue_fd < 0 || tx[i].depth > 0)
		return -1;
	idb_db_read_end(db);
	if (!tx[i].queued) {
		if (flock(tx[i].queue_fd, LOCK_EX | LOCK_NB) != 0)
			return 0;
		tx[i].queued = 1;
	}
	tx[i].held = 1;
	return 1;
}

void
idb_db_queue_release(sqlite3 *db)
{
	int i = tx_slot(db, 0);

	if (i < 0 || !tx[i].held)
		return;
	tx[i].held = 0;
	if (tx[i].depth == 0)
		queue_leave(i);
}

/*
 * A read transaction: the reads of one request see one snapshot and take
 * the WAL read lock once instead of once per statement (each costs a pair
 * of fcntl calls). It ends before any write: idb_db_begin ends it first.
 */
enum idb_err
idb_db_read_begin(sqlite3 *db)
{
	int i = tx_slot(db, 1);

	if (i < 0 || tx[i].depth > 0 || tx[i].reading || !sqlite3_get_autocommit(db))
		return IDB_OK;
	if (run(db, sql_begin) != IDB_OK)
		return IDB_E_DB;
	tx[i].reading = 1;
	tx[i].snap++;
	return IDB_OK;
}

void
idb_db_read_end(sqlite3 *db)
{
	int i = db == NULL ? -1 : tx_slot(db, 0);

	if (i < 0 || !tx[i].reading)
		return;
	tx[i].reading = 0;
	if (!sqlite3_get_autocommit(db))
		run(db, sql_commit);
}

enum idb_err
idb_db_begin(sqlite3 *db)
{
	int i = tx_slot(db, 1);
	enum idb_err e;

	if (i < 0)
		return IDB_E_TOOBIG;
	if (tx[i].depth == 0)
		idb_db_read_end(db);
	if (tx[i].depth == 0 && !sqlite3_get_autocommit(db))
		return IDB_E_DB; /* a transaction this table does not know of */
	if (tx[i].depth == 0)
		queue_enter(i);
	e = run(db, tx[i].depth == 0 ? sql_begin_imm : sql_savepoint);
	if (e == IDB_OK)
		tx[i].depth++;
	else if (tx[i].depth == 0)
		queue_leave(i);
	return e;
}

enum idb_err
idb_db_commit(sqlite3 *db)
{
	int i = tx_slot(db, 0);

	if (i < 0 || tx[i].depth <= tx[i].floor)
		return IDB_OK;
	if (tx[i].depth == 1) {
		if (run(db, sql_commit) != IDB_OK) {
			idb_db_rollback(db);
			return IDB_E_DB;
		}
		queue_leave(i);
	} else if (run(db, sql_release) != IDB_OK) {
		idb_db_rollback(db);
		return IDB_E_DB;
	}
	tx[i].depth--;
	return IDB_OK;
}

void
idb_db_rollback(sqlite3 *db)
{
	int i = tx_slot(db, 0);

	if (i < 0 || tx[i].depth <= tx[i].floor)
		return;
	if (tx[i].depth == 1) {
		if (!sqlite3_get_autocommit(db))
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		queue_leave(i);
	} else {
		sqlite3_exec(db, "ROLLBACK TO idb_tx", NULL, NULL, NULL);
		sqlite3_exec(db, "RELEASE idb_tx", NULL, NULL, NULL);
	}
	tx[i].depth--;
}

int
idb_db_floor(sqlite3 *db, int floor)
{
	int i = tx_slot(db, 1), old;

	if (i < 0)
		return 0;
	old = tx[i].floor;
	tx[i].floor = floor;
	return old;
}

int
idb_db_depth(sqlite3 *db)
{
	int i = tx_slot(db, 0);

	return i < 0 ? 0 : tx[i].depth;
}

void
idb_db_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	size_t n = t ? strlen((const char *)t) : 0;

	if (n >= size)
		n = size - 1;
	if (n)
		memcpy(dst, t, n);
	dst[n] = '\0';
}
