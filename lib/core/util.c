/* SPDX-License-Identifier: ISC */
#include "core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

int
idb_parse_ll(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0' || (*s != '-' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

void
idb_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void
idb_id_new(char prefix, char out[IDB_ID_LEN + 1])
{
	unsigned char r[16];

	randombytes_buf(r, sizeof(r));
	out[0] = prefix;
	out[1] = '_';
	idb_hex(r, sizeof(r), out + 2);
}

int
idb_id_valid(const char *s, char prefix)
{
	size_t i;

	if (s == NULL || strlen(s) != IDB_ID_LEN || s[0] != prefix || s[1] != '_')
		return 0;
	for (i = 2; i < IDB_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Writes v as n decimal digits at p (v < 10^n). */
static void
digits(char *p, int n, long v)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

void
idb_time_format(const struct timespec *ts, char out[IDB_TIME_LEN])
{
	struct tm tm;

	/* Digits by hand rather than strftime: this runs on every request. */
	if (gmtime_r(&ts->tv_sec, &tm) == NULL || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
		out[0] = '\0';
		return;
	}
	digits(out, 4, tm.tm_year + 1900L);
	out[4] = '-';
	digits(out + 5, 2, tm.tm_mon + 1);
	out[7] = '-';
	digits(out + 8, 2, tm.tm_mday);
	out[10] = 'T';
	digits(out + 11, 2, tm.tm_hour);
	out[13] = ':';
	digits(out + 14, 2, tm.tm_min);
	out[16] = ':';
	digits(out + 17, 2, tm.tm_sec);
	out[19] = '.';
	digits(out + 20, 3, ts->tv_nsec / 1000000);
	out[23] = 'Z';
	out[24] = '\0';
}

void
idb_time_now(char out[IDB_TIME_LEN])
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	idb_time_format(&ts, out);
}

int
idb_utf8_seq(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	unsigned long cp;
	int n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return -1;
	if ((size_t)n > left)
		return -1;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return -1;
	return n;
}

int
idb_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);
	int n;

	while (left > 0) {
		if ((n = idb_utf8_seq(p, left)) < 0)
			return 0;
		p += n;
		left -= (size_t)n;
	}
	return 1;
}

int
idb_time_widen(const char *in, char out[IDB_TIME_LEN])
{
	if (strlen(in) != 20 || in[19] != 'Z')
		return -1;
	memcpy(out, in, 19);
	memcpy(out + 19, ".000Z", 6);
	return 0;
}
