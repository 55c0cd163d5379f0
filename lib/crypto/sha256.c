/* SPDX-License-Identifier: ISC */
/* SHA256_Init/Update/Final: deprecated in OpenSSL 3 but still exported. The
 * EVP interface fetches the algorithm on every one-shot call (0.9 us for
 * 300 bytes, where the hash itself takes 0.33). */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "crypto/sha256.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(((struct idb_sha256 *)0)->opaque), "SHA256_CTX does not fit");
_Static_assert(_Alignof(SHA256_CTX) <= 8, "SHA256_CTX needs more alignment");

void
idb_sha256_init(struct idb_sha256 *s)
{
	SHA256_Init((SHA256_CTX *)s->opaque);
}

void
idb_sha256_update(struct idb_sha256 *s, const void *p, size_t n)
{
	if (n)
		SHA256_Update((SHA256_CTX *)s->opaque, p, n);
}

void
idb_sha256_final(struct idb_sha256 *s, unsigned char out[IDB_SHA256_LEN])
{
	SHA256_Final(out, (SHA256_CTX *)s->opaque);
	OPENSSL_cleanse(s, sizeof(*s));
}

void
idb_sha256(const void *p, size_t n, unsigned char out[IDB_SHA256_LEN])
{
	struct idb_sha256 s;

	idb_sha256_init(&s);
	idb_sha256_update(&s, p, n);
	idb_sha256_final(&s, out);
}
