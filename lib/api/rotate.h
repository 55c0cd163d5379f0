/* SPDX-License-Identifier: ISC */
/*
 * Key rotation of one organization (storage.md, key hierarchy): a new
 * database key (PRAGMA rekey) and a new field key under which every
 * sensitive value is encrypted again. Crash-safe in three steps, each
 * atomic on its own, and resumable: the new key versions are stored in the
 * registry first; the re-encryption of every value and the new version in
 * key_state commit together; the rekey is one transaction of its own.
 * Whoever opens the database meanwhile finds the key that opens it and the
 * field key its data needs (idb_org_open_keys).
 */
#ifndef IDB_API_ROTATE_H
#define IDB_API_ROTATE_H

#include <sqlite3.h>
#include "conf/conf.h"
#include "core/err.h"
#include "crypto/key.h"
#include "store/registry.h"

struct idb_rotation {
	unsigned db_from, db_to;       /* database key versions */
	unsigned field_from, field_to; /* field key versions */
	long long values;              /* sensitive values encrypted again */
	int resumed;                   /* 1 if it finished a rotation cut short */
};

/*
 * Rotates the org's keys, or finishes a rotation cut short (then no new keys
 * are made). The test hook IMMIDB_TEST_CRASH_AT=registry|fields|rekey makes
 * the process exit at once after that step, as a crash would.
 */
enum idb_err idb_rotate_org(const struct idb_conf *, sqlite3 *reg, const struct idb_master *, const struct idb_org *,
                            struct idb_rotation *out, char *err, size_t errlen);

/*
 * Rotates the master key: every wrapped key rewrapped and the registry
 * under its new derived key (see rotate.c for the steps). Refused with
 * IDB_E_BUSY while the registry is open elsewhere (the server runs).
 * IMMIDB_TEST_CRASH_AT=master-new|copy|swap exits after that step.
 */
enum idb_err idb_rotate_master(const struct idb_conf *, char *err, size_t errlen);
/*
 * Finishes or undoes a master-key rotation cut short; *did is 0 (nothing
 * to do), 1 (undone) or 2 (finished). Run before loading the master key.
 */
enum idb_err idb_master_recover(const struct idb_conf *, int *did);

#endif
