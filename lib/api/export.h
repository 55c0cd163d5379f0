/* SPDX-License-Identifier: ISC */
/*
 * The organization export (api.md, Export; docs/export-formats.md,
 * immidb-export-v1): one JSON document with the org and its settings, its
 * users (never a secret of theirs), every case-data record, deleted ones
 * included, with the sensitive fields decrypted, and the change log. The
 * same builder serves POST /api/v1/orgs/{org}/export and immidb-admin
 * export; the "export" notification both queue is written here too.
 */
#ifndef IDB_API_EXPORT_H
#define IDB_API_EXPORT_H

#include <stddef.h>
#include <sqlite3.h>
#include "audit/accesslog.h"
#include "core/buf.h"
#include "core/err.h"
#include "store/registry.h"

#define IDB_EXPORT_FORMAT "immidb-export-v1"
#define IDB_EXPORT_DETAIL_LEN 256               /* "users N, clients N, ..." */
#define IDB_EXPORT_NAME_LEN (IDB_SLUG_MAX + 32) /* immidb-export-<slug>-<YYYYMMDD>.json */

/*
 * Appends the whole document to out (which the caller owns and frees;
 * idb_buf_free wipes it). Run it inside a transaction of db, so that the
 * document is one consistent view. k is the org's field key, exported_at a
 * time of idb_time_now. detail receives the number of items of each array
 * for the access-log entry. On failure out may hold part of a document:
 * the caller discards it. Decrypted values exist only in out (grown
 * without leaving copies behind) and in a scratch buffer wiped before
 * return.
 */
enum idb_err idb_export_build(sqlite3 *db, const struct idb_org *o, const struct idb_org_keys *k,
                              const char *exported_at, struct idb_buf *out, char detail[IDB_EXPORT_DETAIL_LEN]);
/* "immidb-export-<slug>-<YYYYMMDD>.json", the date (UTC) of exported_at. */
enum idb_err idb_export_filename(const char *slug, const char *exported_at, char out[IDB_EXPORT_NAME_LEN]);
/*
 * Queues the "export" notification to the org's active admins, inside the
 * caller's transaction: who (the entry's actor, and name if not NULL), when
 * (who->at), from where (who->ip, or the server for via "server") and the
 * reason, if one was given. IDB_E_UNAVAILABLE if it cannot be written.
 */
enum idb_err idb_export_notice(sqlite3 *db, const struct idb_log_entry *who, const char *name);

#endif
