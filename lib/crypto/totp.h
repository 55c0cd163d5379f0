/* SPDX-License-Identifier: ISC */
/*
 * TOTP (RFC 6238 over RFC 4226): HMAC-SHA1 from OpenSSL's libcrypto,
 * 6 digits, 30-second steps, accepted for the current step +-1, never for a
 * step at or before the last one used. Base32 (RFC 4648) for the secret.
 */
#ifndef IDB_CRYPTO_TOTP_H
#define IDB_CRYPTO_TOTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "core/err.h"

#define IDB_TOTP_SECRET_LEN 20 /* 160 bits */
#define IDB_TOTP_B32_LEN 32    /* base32 of 20 bytes, no padding */
#define IDB_TOTP_PERIOD 30
#define IDB_TOTP_DIGITS 6

/* The code for a time step (counter). */
uint32_t idb_totp_code(const unsigned char *secret, size_t len, uint64_t step);
/* The step of a unix time. */
uint64_t idb_totp_step(time_t now);
/*
 * Checks a 6-digit code for steps now-1..now+1 that are after last_step;
 * on success *matched is the step (store it as the new last step).
 * IDB_E_INVALID_CREDENTIALS otherwise.
 */
enum idb_err idb_totp_verify(const unsigned char *secret, size_t len, const char *code, time_t now,
                             uint64_t last_step, uint64_t *matched);
/* Base32 without padding; out holds 8*ceil(n/5)/... at least (n*8+4)/5+1 bytes. */
void idb_base32_encode(const unsigned char *in, size_t n, char *out);
/* Decodes base32 (case-insensitive, no padding); -1 if malformed or too long. */
int idb_base32_decode(const char *in, unsigned char *out, size_t outmax, size_t *outlen);

#endif
