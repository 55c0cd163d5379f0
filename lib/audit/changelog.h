/* SPDX-License-Identifier: ISC */
/*
 * The change log (storage.md): one append-only row per changed record per
 * request, written in the transaction of the change, with the actor, the
 * time, the entity and {"field": {"from": ..., "to": ...}}. Sensitive values
 * never enter it: they are "[encrypted]" (or null where unset).
 */
#ifndef IDB_AUDIT_CHANGELOG_H
#define IDB_AUDIT_CHANGELOG_H

#include <sqlite3.h>
#include <cjson/cJSON.h>
#include "core/buf.h"
#include "core/err.h"
#include "store/plan.h"

#define IDB_CHG_ENCRYPTED "[encrypted]"

struct idb_actor {
	const char *kind;  /* user, sysadmin, system */
	const char *id;
	const char *email;
};

/* Appends one entry; changes is serialised as given (an object). Call inside the change's transaction. */
enum idb_err idb_chg_append(sqlite3 *, const struct idb_actor *, const char *action, const char *entity,
                            const char *entity_id, const cJSON *changes);
/* The same as the last statement of a plan (its time: when the plan runs). */
void idb_chg_plan(struct idb_plan *, const struct idb_actor *, const char *action, const char *entity,
                  const char *entity_id, const cJSON *changes);
/* Adds {"from": from, "to": to} under name to changes (from/to are copied; NULL means JSON null). */
enum idb_err idb_chg_field(cJSON *changes, const char *name, const cJSON *from, const cJSON *to);
/* The same for a sensitive field: "[encrypted]" where set, null where not. */
enum idb_err idb_chg_secret(cJSON *changes, const char *name, int from_set, int to_set);

struct idb_chg_filter {
	const char *entity;    /* or NULL */
	const char *entity_id; /* or NULL */
	const char *since;     /* RFC 3339, or NULL */
	long long after_seq;   /* cursor */
	int limit;             /* 0 = no limit */
};

/* Calls fn with each matching entry as a JSON object (owned by the callee's caller: freed after fn). */
enum idb_err idb_chg_each(sqlite3 *, const struct idb_chg_filter *, void (*fn)(cJSON *entry, long long seq, void *),
                          void *arg);

#endif
