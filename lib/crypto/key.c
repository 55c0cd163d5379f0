/* SPDX-License-Identifier: ISC */
/* Master key file, registry key derivation, key wrapping. */
#include "crypto/key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

#define AD_MAX 256

enum idb_err
idb_key_master_create(const char *path)
{
	unsigned char key[IDB_KEY_LEN];
	char hex[2 * IDB_KEY_LEN + 2];
	enum idb_err e = IDB_OK;
	ssize_t w;
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		return errno == EEXIST ? IDB_E_EXISTS : IDB_E_IO;
	randombytes_buf(key, sizeof(key));
	idb_hex(key, sizeof(key), hex);
	hex[2 * IDB_KEY_LEN] = '\n';
	hex[2 * IDB_KEY_LEN + 1] = '\0';
	w = write(fd, hex, 2 * IDB_KEY_LEN + 1);
	if (w != 2 * IDB_KEY_LEN + 1 || fsync(fd) != 0)
		e = IDB_E_IO;
	if (close(fd) != 0)
		e = IDB_E_IO;
	if (e != IDB_OK)
		unlink(path);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(hex, sizeof(hex));
	return e;
}

enum idb_err
idb_key_master_load(const char *path, struct idb_master **out)
{
	char buf[2 * IDB_KEY_LEN + 8];
	struct idb_master *m = NULL;
	enum idb_err e = IDB_OK;
	struct stat st;
	size_t bin = 0;
	ssize_t n;
	int fd;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return IDB_E_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		e = IDB_E_IO;
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		e = IDB_E_PERM;
		goto out;
	}
	n = read(fd, buf, sizeof(buf));
	if (n == 2 * IDB_KEY_LEN + 1 && buf[2 * IDB_KEY_LEN] == '\n')
		n--;
	if (n != 2 * IDB_KEY_LEN) {
		e = IDB_E_BADKEY;
		goto out;
	}
	if ((m = sodium_malloc(sizeof(*m))) == NULL) {
		e = IDB_E_NOMEM;
		goto out;
	}
	if (sodium_hex2bin(m->key, sizeof(m->key), buf, (size_t)n, NULL, &bin, NULL) != 0 ||
	    bin != IDB_KEY_LEN) {
		e = IDB_E_BADKEY;
		goto out;
	}
	sodium_mprotect_readonly(m);
	*out = m;
	m = NULL;
out:
	sodium_memzero(buf, sizeof(buf));
	if (m != NULL)
		sodium_free(m);
	close(fd);
	return e;
}

void
idb_key_master_free(struct idb_master *m)
{
	if (m != NULL)
		sodium_free(m); /* sodium_free wipes the region */
}

enum idb_err
idb_key_registry(const struct idb_master *m, unsigned char out[IDB_KEY_LEN])
{
	if (crypto_kdf_derive_from_key(out, IDB_KEY_LEN, 1, "immidreg", m->key) != 0)
		return IDB_E_CRYPTO;
	return IDB_OK;
}

static enum idb_err
make_ad(char *ad, const char *owner, const char *purpose, unsigned version)
{
	int n = snprintf(ad, AD_MAX, "immidb-org-key-v1|%s|%s|%u", owner, purpose, version);

	return n > 0 && n < AD_MAX ? IDB_OK : IDB_E_TOOBIG;
}

enum idb_err
idb_key_wrap(const struct idb_master *m, const char *owner, const char *purpose, unsigned version,
             const unsigned char *key, size_t n, unsigned char *out)
{
	unsigned char *nonce = out, *ct = out + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
	char ad[AD_MAX];
	enum idb_err e;

	if ((e = make_ad(ad, owner, purpose, version)) != IDB_OK)
		return e;
	randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(ct, NULL, key, n, (const unsigned char *)ad,
	                                               strlen(ad), NULL, nonce, m->key) != 0)
		return IDB_E_CRYPTO;
	return IDB_OK;
}

enum idb_err
idb_key_unwrap(const struct idb_master *m, const char *owner, const char *purpose, unsigned version,
               const unsigned char *blob, size_t bloblen, unsigned char *key, size_t n)
{
	char ad[AD_MAX];
	enum idb_err e;

	if (bloblen != IDB_WRAP_LEN(n))
		return IDB_E_BADKEY;
	if ((e = make_ad(ad, owner, purpose, version)) != IDB_OK)
		return e;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	        key, NULL, NULL, blob + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	        bloblen - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, (const unsigned char *)ad,
	        strlen(ad), blob, m->key) != 0) {
		sodium_memzero(key, n);
		return IDB_E_BADKEY;
	}
	return IDB_OK;
}

void
idb_key_spec(const unsigned char key[IDB_KEY_LEN], char out[IDB_KEY_SPEC_LEN])
{
	out[0] = 'x';
	out[1] = '\'';
	idb_hex(key, IDB_KEY_LEN, out + 2);
	out[2 + 2 * IDB_KEY_LEN] = '\'';
	out[3 + 2 * IDB_KEY_LEN] = '\0';
}
