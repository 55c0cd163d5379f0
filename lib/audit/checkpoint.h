/* SPDX-License-Identifier: ISC */
/*
 * Signed checkpoints of an org's access log: a C2SP tlog-checkpoint signed
 * note (Go's golang.org/x/mod/sumdb/note verifies it unchanged):
 *
 *   <log_origin>/<org-slug>\n<size>\n<base64 head>\n\n— <log_origin> <base64(key_hash || sig)>\n
 *
 * signed by the deployment's Ed25519 key; key_hash is the first 4 bytes of
 * SHA-256(<log_origin> || "\n" || 0x01 || public_key).
 */
#ifndef IDB_AUDIT_CHECKPOINT_H
#define IDB_AUDIT_CHECKPOINT_H

#include <sqlite3.h>
#include <cjson/cJSON.h>
#include "core/err.h"
#include "crypto/key.h"

/* The first 4 bytes of SHA-256(name || "\n" || 0x01 || pk). */
void idb_ckpt_key_hash(const char *name, const unsigned char pk[32], unsigned char out[4]);
/* The verifier key string "<name>+<key_hash hex>+<base64(0x01 || pk)>" (out: 256 bytes). */
void idb_ckpt_verifier_key(const char *name, const unsigned char pk[32], char out[256]);
/*
 * Signs a checkpoint of org `slug` at (size, head): {"origin", "size",
 * "head", "note"}; caller frees. reg and m give the signing key.
 */
enum idb_err idb_ckpt_sign(sqlite3 *reg, const struct idb_master *m, const char *log_origin, const char *slug,
                           long long size, const unsigned char head[32], cJSON **out);
/* The same, for an org database's current head. */
enum idb_err idb_ckpt_current(sqlite3 *reg, const struct idb_master *m, const char *log_origin, const char *slug,
                              sqlite3 *org, cJSON **out);

#define IDB_CKPT_EVERY 86400 /* seconds: a checkpoint is signed and stored at least this often */

/*
 * Signs and stores a checkpoint of the org's current head in its table
 * checkpoints unless one was stored in the last IDB_CKPT_EVERY seconds (or
 * the log is empty); *made says whether it did. Run by the deliverer.
 */
enum idb_err idb_ckpt_daily(sqlite3 *reg, const struct idb_master *m, const char *log_origin, const char *slug,
                            sqlite3 *org, long long now, int *made);

#endif
