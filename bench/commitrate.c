/* SPDX-License-Identifier: ISC */
/*
 * immidb-bench-commit: this machine's commit rate under ImmiDB's own storage
 * settings, the yardstick for the write figures of bench/run.sh.
 *
 *   immidb-bench-commit DIR SECONDS
 *
 * Creates DIR/commit.db through idb_db_open with a random 32-byte key and
 * IDB_DB_CREATE, i.e. exactly as the server opens its files (SQLCipher with a
 * raw key, WAL, synchronous=FULL, foreign keys, busy timeout), creates one
 * table, and then for SECONDS commits one row per transaction
 * (BEGIN IMMEDIATE; INSERT with bound parameters; COMMIT), one process, one
 * connection. Prints "commits/s <float>" (and "commits <n>", "seconds <s>")
 * on stdout. The file and its -wal/-shm are removed at the end; DIR is not.
 * Exit 0 on success, 1 on any failure (said on stderr), 2 on bad usage.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "core/err.h"
#include "core/util.h"
#include "crypto/key.h"
#include "store/db.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Removes path and its WAL companions; quiet if they are gone already. */
static void
remove_db(const char *path)
{
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char p[PATH_MAX];
	size_t i;
	int n;

	for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		n = snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		if (n > 0 && (size_t)n < sizeof(p))
			unlink(p);
	}
}

int
main(int argc, char **argv)
{
	unsigned char key[IDB_KEY_LEN];
	char path[PATH_MAX], rowid[IDB_ID_LEN + 1], at[IDB_TIME_LEN];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long seconds, commits = 0;
	double start, stop, elapsed;
	enum idb_err e;
	int n, rc = 1;

	if (argc != 3 || idb_parse_ll(argv[2], 1, 3600, &seconds) != 0) {
		fprintf(stderr, "usage: immidb-bench-commit DIR SECONDS (1..3600)\n");
		return 2;
	}
	n = snprintf(path, sizeof(path), "%s/commit.db", argv[1]);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		fprintf(stderr, "immidb-bench-commit: path too long\n");
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "immidb-bench-commit: sodium_init failed\n");
		return 1;
	}
	remove_db(path); /* a leftover of an interrupted run */
	randombytes_buf(key, sizeof(key));
	e = idb_db_open(path, key, IDB_DB_CREATE, &db);
	sodium_memzero(key, sizeof(key));
	if (e != IDB_OK) {
		fprintf(stderr, "immidb-bench-commit: cannot open %s: %s\n", path, idb_err_str(e));
		return 1;
	}
	if (idb_db_exec(db, "CREATE TABLE t (id TEXT PRIMARY KEY, at TEXT NOT NULL, n INTEGER NOT NULL,"
	                    " body TEXT NOT NULL)") != IDB_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO t (id, at, n, body) VALUES (?, ?, ?, ?)", -1, &st, NULL) !=
	        SQLITE_OK) {
		fprintf(stderr, "immidb-bench-commit: schema: %s\n", sqlite3_errmsg(db));
		goto out;
	}

	start = now_s();
	stop = start + (double)seconds;
	do {
		if (idb_db_begin(db) != IDB_OK) {
			fprintf(stderr, "immidb-bench-commit: BEGIN: %s\n", sqlite3_errmsg(db));
			goto out;
		}
		idb_id_new('t', rowid);
		idb_time_now(at);
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, rowid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, at, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, commits);
		sqlite3_bind_text(st, 4, "+1 555 0100 a row about the size of a small record", -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			fprintf(stderr, "immidb-bench-commit: INSERT: %s\n", sqlite3_errmsg(db));
			idb_db_rollback(db);
			goto out;
		}
		if (idb_db_commit(db) != IDB_OK) {
			fprintf(stderr, "immidb-bench-commit: COMMIT: %s\n", sqlite3_errmsg(db));
			goto out;
		}
		commits++;
	} while (now_s() < stop);
	elapsed = now_s() - start;

	printf("commits %lld\nseconds %.3f\ncommits/s %.1f\n", commits, elapsed,
	       elapsed > 0 ? (double)commits / elapsed : 0.0);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "immidb-bench-commit: stdout: %s\n", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	idb_db_close(db);
	remove_db(path);
	return rc;
}
