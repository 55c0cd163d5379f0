/* SPDX-License-Identifier: ISC */
/*
 * Sensitive-field encryption (storage.md): XChaCha20-Poly1305 under the
 * org's field key. Ciphertext: 0x01 || key_version (u32 big-endian) ||
 * nonce (24) || ciphertext || tag, with associated data
 * "<org-id>|<table>|<row-id>|<column>", so a value moved to another row or
 * column does not decrypt.
 */
#ifndef IDB_CRYPTO_FIELD_H
#define IDB_CRYPTO_FIELD_H

#include <stddef.h>
#include "core/err.h"
#include "crypto/key.h"

#define IDB_FIELD_OVERHEAD (1 + 4 + 24 + 16)
#define IDB_FIELD_MAX (64 * 1024) /* largest plaintext */

struct idb_field_ad {
	const char *org_id, *table, *row_id, *column;
};

/* out must hold n + IDB_FIELD_OVERHEAD bytes. */
enum idb_err idb_field_encrypt(const unsigned char key[IDB_KEY_LEN], unsigned version,
                               const struct idb_field_ad *, const unsigned char *in, size_t n,
                               unsigned char *out);
/* out must hold bloblen - IDB_FIELD_OVERHEAD bytes; IDB_E_CRYPTO if it does not verify,
 * IDB_E_BADKEY if it was made under another key version than `version`. */
enum idb_err idb_field_decrypt(const unsigned char key[IDB_KEY_LEN], unsigned version,
                               const struct idb_field_ad *, const unsigned char *blob, size_t bloblen,
                               unsigned char *out, size_t *outlen);

#endif
