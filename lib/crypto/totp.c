/* SPDX-License-Identifier: ISC */
#include "crypto/totp.h"

#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

uint32_t
idb_totp_code(const unsigned char *secret, size_t len, uint64_t step)
{
	unsigned char msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	uint32_t bin;
	int i, off;

	for (i = 7; i >= 0; i--) {
		msg[i] = (unsigned char)(step & 0xff);
		step >>= 8;
	}
	if (HMAC(EVP_sha1(), secret, (int)len, msg, sizeof(msg), mac, &maclen) == NULL || maclen < 20)
		return UINT32_MAX; /* never a valid 6-digit code */
	off = mac[maclen - 1] & 0x0f;
	bin = (uint32_t)(mac[off] & 0x7f) << 24 | (uint32_t)mac[off + 1] << 16 | (uint32_t)mac[off + 2] << 8 |
	      mac[off + 3];
	sodium_memzero(mac, sizeof(mac));
	return bin % 1000000;
}

uint64_t
idb_totp_step(time_t now)
{
	return now < 0 ? 0 : (uint64_t)now / IDB_TOTP_PERIOD;
}

enum idb_err
idb_totp_verify(const unsigned char *secret, size_t len, const char *code, time_t now, uint64_t last_step,
                uint64_t *matched)
{
	uint64_t step = idb_totp_step(now), s;
	uint32_t want = 0;
	int i, hit = 0;

	if (code == NULL || strlen(code) != IDB_TOTP_DIGITS)
		return IDB_E_INVALID_CREDENTIALS;
	for (i = 0; i < IDB_TOTP_DIGITS; i++) {
		if (code[i] < '0' || code[i] > '9')
			return IDB_E_INVALID_CREDENTIALS;
		want = want * 10 + (uint32_t)(code[i] - '0');
	}
	/* Look at every step of the window, so the time taken does not tell which matched. */
	for (s = step == 0 ? 0 : step - 1; s <= step + 1; s++) {
		uint32_t c = idb_totp_code(secret, len, s);

		if (c == want && s > last_step && !hit) {
			hit = 1;
			*matched = s;
		}
	}
	return hit ? IDB_OK : IDB_E_INVALID_CREDENTIALS;
}

void
idb_base32_encode(const unsigned char *in, size_t n, char *out)
{
	unsigned buf = 0;
	int bits = 0;
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		buf = (buf << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = b32[(buf >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = b32[(buf << (5 - bits)) & 31];
	out[o] = '\0';
}

int
idb_base32_decode(const char *in, unsigned char *out, size_t outmax, size_t *outlen)
{
	unsigned buf = 0;
	int bits = 0, v;
	size_t o = 0;
	const char *p;
	char c;

	for (; *in != '\0'; in++) {
		c = *in;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if ((p = strchr(b32, c)) == NULL || c == '\0')
			return -1;
		v = (int)(p - b32);
		buf = (buf << 5) | (unsigned)v;
		bits += 5;
		if (bits >= 8) {
			if (o == outmax)
				return -1;
			out[o++] = (unsigned char)(buf >> (bits - 8));
			bits -= 8;
		}
	}
	*outlen = o;
	return 0;
}
