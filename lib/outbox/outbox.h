/* SPDX-License-Identifier: ISC */
/*
 * The notification outbox (storage.md): notifications are rows written in
 * the transaction of their cause, with one delivery per active org admin;
 * delivery (idb_outbox_deliver) runs outside any request, sends each by SMTP
 * through libcurl, marks it delivered only after the server accepted it, and
 * retries failures with exponential back-off. A crash between the send and
 * the mark sends that mail again on the next run (at least once, never
 * lost); each mail carries a stable Message-ID so a receiver can drop the
 * duplicate.
 */
#ifndef IDB_OUTBOX_OUTBOX_H
#define IDB_OUTBOX_OUTBOX_H

#include <sqlite3.h>
#include <time.h>
#include <cjson/cJSON.h>
#include "core/err.h"

#define IDB_OUTBOX_BACKOFF_MIN 30   /* seconds before the first retry */
#define IDB_OUTBOX_BACKOFF_MAX 3600
#define IDB_SYSADMIN_NOTIFY_EVERY 3600 /* one sysadmin-access notice per sysadmin, org and hour */

/*
 * Queues a notification to every active admin of the org (inside the
 * caller's transaction). IDB_E_UNAVAILABLE if it cannot be written (the
 * caller then refuses the request).
 */
enum idb_err idb_outbox_queue(sqlite3 *, const char *kind, const char *subject_id, const char *summary,
                              const char *body);
/* 1 if a notification of kind for subject_id was queued in the last `seconds`. */
int idb_outbox_recent(sqlite3 *, const char *kind, const char *subject_id, long long seconds);
/* GET .../notifications: newest first, at most limit; caller frees. */
enum idb_err idb_outbox_list(sqlite3 *, int limit, cJSON **out);

/* 1 if a delivery is due at now (so a deliverer signs a checkpoint only then). */
int idb_outbox_due(sqlite3 *, time_t now);

struct idb_smtp {
	const char *url;     /* smtp://host:port */
	const char *from;    /* "Name <addr>" */
	const char *domain;  /* for Message-IDs (log_origin) */
};

/* Sends the due deliveries of one org; extra (may be NULL) is appended to each mail (the checkpoint). */
enum idb_err idb_outbox_deliver(sqlite3 *, const struct idb_smtp *, const char *org_slug, const char *extra,
                                time_t now, int *sent, int *failed);

#endif
