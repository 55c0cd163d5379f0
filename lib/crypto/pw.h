/* SPDX-License-Identifier: ISC */
/*
 * Password hashing: Argon2id through libsodium's crypto_pwhash_str, with the
 * cost parameters chosen once here.
 */
#ifndef IDB_CRYPTO_PW_H
#define IDB_CRYPTO_PW_H

#include <sodium.h>
#include "core/err.h"

#define IDB_PW_MIN 12
#define IDB_PW_MAX 1024
#define IDB_PW_OPSLIMIT crypto_pwhash_OPSLIMIT_INTERACTIVE
#define IDB_PW_MEMLIMIT crypto_pwhash_MEMLIMIT_INTERACTIVE

/* 1 if the password's length (in characters of UTF-8) is in 12..1024. */
int idb_pw_acceptable(const char *);
enum idb_err idb_pw_hash(const char *pw, char out[crypto_pwhash_STRBYTES]);
/* IDB_OK if pw matches, IDB_E_INVALID_CREDENTIALS if not. */
enum idb_err idb_pw_verify(const char *hash, const char *pw);
int idb_pw_needs_rehash(const char *hash);
/* A new random password of 20 characters from an unambiguous alphabet. */
void idb_pw_generate(char out[21]);

#endif
