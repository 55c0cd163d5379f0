/* SPDX-License-Identifier: ISC */
/* Bounded growable buffers. */
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

void
idb_buf_init(struct idb_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

static enum idb_err
reserve(struct idb_buf *b, size_t n)
{
	size_t want, cap;
	char *p;

	if (n > b->max || b->len > b->max - n)
		return IDB_E_TOOBIG;
	want = b->len + n + 1;
	if (want <= b->cap)
		return IDB_OK;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap *= 2;
	/* Not realloc: a buffer may hold decrypted values, and the old block
	 * is wiped before it goes back to the allocator. */
	if ((p = malloc(cap)) == NULL)
		return IDB_E_NOMEM;
	if (b->data != NULL) {
		memcpy(p, b->data, b->len + 1 <= b->cap ? b->len + 1 : b->len);
		sodium_memzero(b->data, b->cap);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	return IDB_OK;
}

enum idb_err
idb_buf_add(struct idb_buf *b, const void *p, size_t n)
{
	enum idb_err e;

	if ((e = reserve(b, n)) != IDB_OK)
		return e;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return IDB_OK;
}

enum idb_err
idb_buf_addstr(struct idb_buf *b, const char *s)
{
	return idb_buf_add(b, s, strlen(s));
}

enum idb_err
idb_buf_addu(struct idb_buf *b, unsigned long long v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return idb_buf_add(b, tmp + i, sizeof(tmp) - i);
}

enum idb_err
idb_buf_addjson(struct idb_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	enum idb_err e = IDB_OK;
	const unsigned char *p;
	char esc[6];

	for (p = (const unsigned char *)s; *p != '\0' && e == IDB_OK; p++) {
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			e = idb_buf_add(b, esc, 2);
		} else if (*p < 0x20) {
			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			e = idb_buf_add(b, esc, 6);
		} else
			e = idb_buf_add(b, p, 1);
	}
	return e;
}

void
idb_buf_reset(struct idb_buf *b)
{
	if (b->data != NULL)
		sodium_memzero(b->data, b->cap);
	b->len = 0;
}

void
idb_buf_free(struct idb_buf *b)
{
	if (b == NULL)
		return;
	if (b->data != NULL) {
		sodium_memzero(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = b->cap = 0;
}
