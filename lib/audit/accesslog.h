/* SPDX-License-Identifier: ISC */
/*
 * The access log (storage.md): one hash chain per organization. Each entry's
 * hash = SHA-256("immidb-access-log-v1\n" || prev || F(seq) || F(at) ||
 * F(actor.kind) || F(actor.id) || F(actor.email) || F(via) || F(ip) ||
 * F(action) || F(target) || F(reason) || F(outcome) || F(detail)), F(x) being
 * the 4-byte big-endian length of x followed by x, prev 32 zero bytes for
 * seq 1. Entries are appended inside the caller's transaction; seq has no
 * gaps because appends are serialised by the write lock.
 */
#ifndef IDB_AUDIT_ACCESSLOG_H
#define IDB_AUDIT_ACCESSLOG_H

#include <sqlite3.h>
#include <cjson/cJSON.h>
#include "core/err.h"
#include "core/util.h"

struct idb_log_entry {
	long long seq;               /* set by idb_log_append */
	char at[IDB_TIME_LEN];       /* set by idb_log_append if empty */
	const char *actor_kind;      /* user, sysadmin, system, anonymous */
	const char *actor_id, *actor_email;
	const char *via;             /* app, server, system */
	const char *ip, *action, *target, *reason;
	const char *outcome;         /* ok, denied, failed */
	const char *detail;
	unsigned char prev[32], hash[32];
};

/* The entry hash of storage.md. */
void idb_log_hash(const struct idb_log_entry *, unsigned char out[32]);
/* Appends e (absent strings count as ""); fills seq, at, prev and hash. Must run inside a write transaction. */
enum idb_err idb_log_append(sqlite3 *, struct idb_log_entry *e);
/*
 * The same, after last: the entry this transaction appended just before
 * (its seq and hash are the chain's head; no lookup). NULL: looked up.
 * A wrong last is refused by the append-only trigger (seq must be next).
 */
enum idb_err idb_log_append_after(sqlite3 *, struct idb_log_entry *e, const struct idb_log_entry *last);
/* Recomputes the chain: *ok, *size, head (when ok) or *first_bad. */
enum idb_err idb_log_verify(sqlite3 *, int *ok, long long *size, unsigned char head[32], long long *first_bad);
/* The current size and head hash (zeros for an empty log). */
enum idb_err idb_log_head(sqlite3 *, long long *size, unsigned char head[32]);

struct idb_log_filter {
	const char *actor_kind, *action, *since; /* or NULL */
	long long before_seq;                     /* newest-first cursor: seq < before_seq (0: none) */
	long long after_seq;                      /* oldest-first: seq > after_seq */
	int newest_first;
	int limit;                                /* 0: no limit */
};

/*
 * Calls fn with each entry that passes f as the JSON object of storage.md
 * (freed after fn), in seq order (newest first if asked), at most f->limit.
 * A filter on an actor kind other than user, or on an action other than
 * record.read and record.list, reads its partial index (sql/org/0008); any
 * other walks the table by seq from the cursor.
 */
enum idb_err idb_log_each(sqlite3 *, const struct idb_log_filter *, void (*fn)(cJSON *, long long seq, void *),
                          void *arg);

#endif
