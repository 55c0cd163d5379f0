/* SPDX-License-Identifier: ISC */
/*
 * Group commit of the access-log entries of reads. A read changes nothing,
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
 */
#ifndef IDB_AUDIT_LOGQ_H
#define IDB_AUDIT_LOGQ_H

#include <sqlite3.h>
#include "audit/accesslog.h"
#include "core/err.h"

/* Maps the shared slots (nslots of them); in the master, before forking. */
enum idb_err idb_logq_init(unsigned nslots);
/* The slot this process owns (the worker's index); -1: none, entries go alone. */
void idb_logq_own(int slot);
/*
 * Appends e to the org's log: grouped with other workers' entries when it
 * can be, in a transaction of its own otherwise. db must be outside any
 * transaction. IDB_OK once the entry is committed.
 */
enum idb_err idb_logq_append(sqlite3 *db, const char *org_id, struct idb_log_entry *e);

#endif
