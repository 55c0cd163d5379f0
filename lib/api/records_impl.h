/* SPDX-License-Identifier: ISC */
/*
 * The record engine's entry points, shared by the HTTP handlers and
 * immidb-admin (demo data): the same validation, encryption, search index
 * and change log on both paths.
 */
#ifndef IDB_API_RECORDS_IMPL_H
#define IDB_API_RECORDS_IMPL_H

#include <sqlite3.h>
#include <cjson/cJSON.h>
#include "api/records.h"
#include "audit/changelog.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/util.h"
#include "store/plan.h"
#include "store/registry.h"

struct idb_rec_env {
	sqlite3 *db;
	const char *org_id;
	const struct idb_org_keys *keys;
	struct idb_actor actor;
	struct idb_arena *arena;
};

/*
 * Each of these runs its own transaction (BEGIN IMMEDIATE ... COMMIT): the
 * record, its search index and its change-log row commit together or not at
 * all. On IDB_E_VALIDATION, *fields (caller frees) holds one message per field.
 */
enum idb_err idb_rec_create(const struct idb_rec_env *, const struct idb_resource *, const cJSON *body,
                            char id[IDB_ID_LEN + 1], cJSON **fields);
/*
 * The update, and the record as it is after it into *rec (caller frees).
 * With later, nothing is written: the update's statements go into later,
 * conditioned on the version read, for the group commit to run
 * (lib/audit/logq.h); *rec is then the record as it will be if they do.
 */
enum idb_err idb_rec_update(const struct idb_rec_env *, const struct idb_resource *, const char *id,
                            const cJSON *body, cJSON **fields, struct idb_plan *later, cJSON **rec);
enum idb_err idb_rec_delete(const struct idb_rec_env *, const struct idb_resource *, const char *id);
/* The record as the API shows it (sensitive fields as {"set": bool}); caller frees. */
enum idb_err idb_rec_get(const struct idb_rec_env *, const struct idb_resource *, const char *id, cJSON **out);
/* The JSON of a row selected as "rid, id, <columns, sensitive ones as IS NOT NULL>, version,
 * created_at, updated_at, created_by, updated_by"; caller frees. */
cJSON *idb_rec_row_json(const struct idb_resource *, sqlite3_stmt *);
/* One sensitive value, decrypted into arena memory (NULL if unset). */
enum idb_err idb_rec_reveal(const struct idb_rec_env *, const struct idb_resource *, const char *id,
                            const char *column, const char **value);

/* The search key of an A-number's last four digits under the org's field key (16 bytes). */
void idb_rec_last4(const struct idb_org_keys *, const char digits[4], unsigned char out[16]);

#endif
