/* SPDX-License-Identifier: ISC */
/*
 * The key hierarchy of storage.md. The master key lives in guarded,
 * locked memory (sodium_malloc) and never leaves this module except as the
 * derived registry key or through wrap/unwrap. Every function that fills a
 * key buffer leaves it to the caller to wipe (sodium_memzero) after use.
 */
#ifndef IDB_CRYPTO_KEY_H
#define IDB_CRYPTO_KEY_H

#include <stddef.h>
#include <sodium.h>
#include "core/err.h"

#define IDB_KEY_LEN 32
#define IDB_WRAP_LEN(n) (crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + (n) + crypto_aead_xchacha20poly1305_ietf_ABYTES)
#define IDB_KEY_SPEC_LEN 68 /* "x'" + 64 hex + "'" + NUL */

struct idb_master {
	unsigned char key[IDB_KEY_LEN];
};

/* Creates the master key file (O_EXCL, mode 0600) with 32 random bytes as hex. */
enum idb_err idb_key_master_create(const char *path);
/*
 * Reads the master key into guarded memory owned by the caller (free with
 * idb_key_master_free). IDB_E_PERM if the file is accessible by group or
 * others, IDB_E_BADKEY if it is not 64 hex digits.
 */
enum idb_err idb_key_master_load(const char *path, struct idb_master **out);
/* Wipes and frees; NULL is fine. */
void idb_key_master_free(struct idb_master *);
/* The registry's database key: crypto_kdf(32, 1, "immidreg", master). */
enum idb_err idb_key_registry(const struct idb_master *, unsigned char out[IDB_KEY_LEN]);
/*
 * Wraps n bytes of key under the master key with associated data
 * "immidb-org-key-v1|<owner>|<purpose>|<version>"; out receives
 * IDB_WRAP_LEN(n) bytes.
 */
enum idb_err idb_key_wrap(const struct idb_master *, const char *owner, const char *purpose,
                          unsigned version, const unsigned char *key, size_t n, unsigned char *out);
/* The inverse; IDB_E_BADKEY if the blob was not made with these inputs. */
enum idb_err idb_key_unwrap(const struct idb_master *, const char *owner, const char *purpose,
                            unsigned version, const unsigned char *blob, size_t bloblen,
                            unsigned char *key, size_t n);
/* The SQLCipher raw key string x'<64 hex>' for a 32-byte key. Wipe it after use. */
void idb_key_spec(const unsigned char key[IDB_KEY_LEN], char out[IDB_KEY_SPEC_LEN]);

#endif
