/* SPDX-License-Identifier: ISC */
/*
 * Group commit of access-log entries, and of the writes planned in advance
 * that come with them (lib/store/plan.h). A read changes nothing,
 * but its entry must be durable before the answer leaves: one commit, and
 * so one fsync, per read would bound reads by the disk's commit rate. The
 * workers share a table of slots (memory mapped by the master before it
 * forks them); a worker puts its entry in its own slot and queues for the
 * org's write lock (the flock of lib/store/db.c). Whoever gets the lock
 * first appends every pending entry of that org in one transaction and
 * marks them done before letting go; a worker that finds its entry done
 * when its turn comes leaves at once. Entries are appended in the order
 * the chain needs (idb_log_append, under the lock), and a failed commit
 * marks every entry it carried failed (their requests answer 503).
 *
 * A write (a record's PATCH) comes as a plan worked out by its worker
 * outside the lock, conditioned on the version it read. The leader runs
 * each plan before its entry: a plan that finds its condition gone (a
 * concurrent change) stops before its first change, and its entry says
 * "failed"; the others commit with it, under one fsync. A plan that fails
 * after a change (which only a broken database does) fails the whole
 * transaction: every request it carried answers 503.
 */
#ifndef IDB_AUDIT_LOGQ_H
#define IDB_AUDIT_LOGQ_H

#include <stddef.h>
#include <sqlite3.h>
#include "audit/accesslog.h"
#include "core/err.h"

/* The largest plan that travels in a slot; a bigger one runs in its own transaction. */
#define IDB_LOGQ_PLAN_MAX 16384

/* Slots per worker: one for each request it may have waiting for its commit (fcgi/worker.c). */
#define IDB_LOGQ_PER_WORKER 8

/* Maps the shared slots (IDB_LOGQ_PER_WORKER for each of workers); in the master, before forking. */
enum idb_err idb_logq_init(unsigned workers);
/* The slots this process owns (by the worker's index); -1: none, entries go alone. */
void idb_logq_own(int worker);
/*
 * Appends e to the org's log, and runs plan (plan_len bytes, or none)
 * first in the same transaction: grouped with other workers' entries when
 * it can be, in a transaction of its own otherwise. db must be outside any
 * transaction. Submit puts the entry (and plan) in a free slot of the
 * worker's; 1 if it is settled already, 0 if it waits, so that the worker
 * can take other requests meanwhile. Poll never sleeps: 1 once settled,
 * after leading the org's pending entries itself if the org's queue is
 * free (db: a handle of the same org, or NULL to only look). Wait sleeps
 * until settled, leading when it can. Once settled, r is the transaction's
 * result (IDB_OK: committed) and res the plan's (not IDB_OK: the plan
 * changed nothing, and e was written as failed with that error). After
 * 10 s an entry no leader has claimed is withdrawn: 503.
 */
struct idb_logq_wait {
	int slot; /* -1 once settled */
	unsigned long ticket;
	long long deadline;
	enum idb_err r, res;
};
int idb_logq_submit(sqlite3 *db, const char *org_id, struct idb_log_entry *e, const void *plan, size_t plan_len,
                    struct idb_logq_wait *w);
int idb_logq_poll(sqlite3 *db, const char *org_id, struct idb_logq_wait *w);
void idb_logq_wait(sqlite3 *db, const char *org_id, struct idb_logq_wait *w);
/*
 * A try of an org's queue that failed is not made again while no worker
 * has let go of a queue since (the epoch) and IDB_LOGQ_RETRY_NS has not
 * passed: it would fail the same way. A queue held by a process outside the
 * pool (immidb-admin), or let go by a killed worker, moves no epoch, so the
 * try is made again after that time.
 */
#define IDB_LOGQ_RETRY_NS (1000 * 1000)
/* For the tests: the tries of a queue made by this process's logq calls. */
unsigned long idb_logq_tries(void);

#endif
