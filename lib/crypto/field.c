/* SPDX-License-Identifier: ISC */
#include "crypto/field.h"

#include <stdio.h>
#include <string.h>

#define AD_MAX 512

static enum idb_err
make_ad(const struct idb_field_ad *a, char ad[AD_MAX], size_t *len)
{
	int n = snprintf(ad, AD_MAX, "%s|%s|%s|%s", a->org_id, a->table, a->row_id, a->column);

	if (n <= 0 || n >= AD_MAX)
		return IDB_E_TOOBIG;
	*len = (size_t)n;
	return IDB_OK;
}

enum idb_err
idb_field_encrypt(const unsigned char key[IDB_KEY_LEN], unsigned version, const struct idb_field_ad *a,
                  const unsigned char *in, size_t n, unsigned char *out)
{
	char ad[AD_MAX];
	size_t adlen;
	enum idb_err e;

	if (n > IDB_FIELD_MAX)
		return IDB_E_TOOBIG;
	if ((e = make_ad(a, ad, &adlen)) != IDB_OK)
		return e;
	out[0] = 0x01;
	out[1] = (unsigned char)(version >> 24);
	out[2] = (unsigned char)(version >> 16);
	out[3] = (unsigned char)(version >> 8);
	out[4] = (unsigned char)version;
	randombytes_buf(out + 5, 24);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + 29, NULL, in, n, (const unsigned char *)ad, adlen,
	                                               NULL, out + 5, key) != 0)
		return IDB_E_CRYPTO;
	return IDB_OK;
}

enum idb_err
idb_field_decrypt(const unsigned char key[IDB_KEY_LEN], unsigned version, const struct idb_field_ad *a,
                  const unsigned char *blob, size_t bloblen, unsigned char *out, size_t *outlen)
{
	unsigned long long m = 0;
	char ad[AD_MAX];
	size_t adlen;
	unsigned v;
	enum idb_err e;

	if (bloblen < IDB_FIELD_OVERHEAD || blob[0] != 0x01)
		return IDB_E_CRYPTO;
	v = (unsigned)blob[1] << 24 | (unsigned)blob[2] << 16 | (unsigned)blob[3] << 8 | blob[4];
	if (v != version)
		return IDB_E_BADKEY;
	if ((e = make_ad(a, ad, &adlen)) != IDB_OK)
		return e;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &m, NULL, blob + 29, bloblen - 29,
	                                               (const unsigned char *)ad, adlen, blob + 5, key) != 0)
		return IDB_E_CRYPTO;
	*outlen = (size_t)m;
	return IDB_OK;
}
