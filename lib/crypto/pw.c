/* SPDX-License-Identifier: ISC */
#include "crypto/pw.h"

#include <string.h>

int
idb_pw_acceptable(const char *pw)
{
	size_t chars = 0;

	for (; *pw != '\0'; pw++)
		if (((unsigned char)*pw & 0xc0) != 0x80)
			chars++;
	return chars >= IDB_PW_MIN && chars <= IDB_PW_MAX;
}

enum idb_err
idb_pw_hash(const char *pw, char out[crypto_pwhash_STRBYTES])
{
	if (crypto_pwhash_str(out, pw, strlen(pw), IDB_PW_OPSLIMIT, IDB_PW_MEMLIMIT) != 0)
		return IDB_E_NOMEM;
	return IDB_OK;
}

enum idb_err
idb_pw_verify(const char *hash, const char *pw)
{
	return crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0 ? IDB_OK : IDB_E_INVALID_CREDENTIALS;
}

int
idb_pw_needs_rehash(const char *hash)
{
	return crypto_pwhash_str_needs_rehash(hash, IDB_PW_OPSLIMIT, IDB_PW_MEMLIMIT) != 0;
}

void
idb_pw_generate(char out[21])
{
	static const char alphabet[] = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
	size_t i;

	for (i = 0; i < 20; i++)
		out[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
	out[20] = '\0';
}
