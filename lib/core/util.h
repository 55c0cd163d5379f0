/* SPDX-License-Identifier: ISC */
/* Small helpers shared by every module: numbers, ids and times. */
#ifndef IDB_CORE_UTIL_H
#define IDB_CORE_UTIL_H

#include <stddef.h>
#include <time.h>

#define IDB_ID_LEN 34 /* "x_" + 32 hex digits */
#define IDB_TIME_LEN 25 /* "2026-11-27T09:30:00.123Z" + NUL */

/* Parses a decimal integer in [min, max], the whole string; -1 otherwise. */
int idb_parse_ll(const char *, long long min, long long max, long long *out);
/* A new random 128-bit id: prefix char, '_', 32 lowercase hex digits. */
void idb_id_new(char prefix, char out[IDB_ID_LEN + 1]);
/* 1 if s looks like an id made by idb_id_new with that prefix. */
int idb_id_valid(const char *s, char prefix);
/* RFC 3339 UTC with milliseconds and "Z". */
void idb_time_now(char out[IDB_TIME_LEN]);
void idb_time_format(const struct timespec *, char out[IDB_TIME_LEN]);
/* Length of the well-formed UTF-8 sequence at s (no overlongs, surrogates or
 * code points past U+10FFFF), or -1. left is the number of bytes available. */
int idb_utf8_seq(const unsigned char *s, size_t left);
/* 1 if the NUL-terminated s is well-formed UTF-8. */
int idb_utf8_valid(const char *s);
/* "YYYY-MM-DDTHH:MM:SSZ" as the stored form "YYYY-MM-DDTHH:MM:SS.000Z", so that
 * text comparison with stored times is time order. -1 if in is not 20 bytes. */
int idb_time_widen(const char *in, char out[IDB_TIME_LEN]);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void idb_hex(const unsigned char *in, size_t n, char *out);

#endif
