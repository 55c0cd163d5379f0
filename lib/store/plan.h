/* SPDX-License-Identifier: ISC */
/*
 * A write worked out in advance: its statements with their values, as
 * bytes that can be run later, in a transaction that may be another
 * worker's (the group commit of lib/audit/logq.c runs the writes of
 * several requests in one transaction, so they share one fsync).
 *
 * A statement may state what it expects: exactly one row changed, or a
 * row returned. If it does not get it, the plan stops and answers the
 * error the statement named (a stale version is IDB_E_CONFLICT). The SQL
 * text comes from this program's own tables; every value is bound.
 *
 * The bytes: for each statement 'S', a u32 length, the text with its NUL,
 * the expectation and the error (u8 each); then its values in bind order:
 * 'n' (NULL), 'i' (i64), 't' or 'b' (u32 length, bytes) and 'T' (the time
 * the statement runs, as text). Numbers are in host order: the bytes never
 * leave the machine.
 */
#ifndef IDB_STORE_PLAN_H
#define IDB_STORE_PLAN_H

#include <stddef.h>
#include <sqlite3.h>
#include "core/buf.h"
#include "core/err.h"

enum idb_plan_expect {
	IDB_PLAN_ANY,        /* whatever it does */
	IDB_PLAN_ONE_CHANGE, /* changes exactly one row */
	IDB_PLAN_ROW         /* returns a row */
};

/* Built by the calls below; an error in any of them (out of memory, too big) makes the plan unusable. */
struct idb_plan {
	struct idb_buf b;
	enum idb_err err;
};

void idb_plan_init(struct idb_plan *);
/* Wipes and releases (ciphertexts are in it, plaintexts never). */
void idb_plan_free(struct idb_plan *);
/* A statement; fail: the error answered when expect is not met. */
void idb_plan_stmt(struct idb_plan *, const char *sql, enum idb_plan_expect expect, enum idb_err fail);
void idb_plan_null(struct idb_plan *);
void idb_plan_int(struct idb_plan *, long long);
/* Text; NULL binds NULL. */
void idb_plan_text(struct idb_plan *, const char *);
void idb_plan_blob(struct idb_plan *, const void *, size_t);
/* The time the statement runs (text, as idb_time_now). */
void idb_plan_now(struct idb_plan *);

/*
 * Runs the plan's statements in order on db, inside the caller's
 * transaction. IDB_OK, the error of the first statement whose expectation
 * failed, IDB_E_CONFLICT if a constraint refused a statement, IDB_E_DB if
 * SQLite failed otherwise, or IDB_E_INTERNAL for bytes that are
 * not a plan. Undoing a partial run is the caller's (a savepoint).
 * *wrote (unless NULL) says whether the plan's own statements may have
 * changed a row: a write statement that changed one or was stopped midway.
 * (Not sqlite3_total_changes: SQLite also counts there what FTS4 flushes
 * of earlier statements' pending terms when a statement journal begins.)
 */
enum idb_err idb_plan_run(sqlite3 *, const void *plan, size_t len, int *wrote);

#endif
