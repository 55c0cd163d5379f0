/* SPDX-License-Identifier: ISC */
/*
 * A growable byte buffer with a maximum set when it is created. Growing past
 * the maximum is its own error (IDB_E_TOOBIG), never a silent truncation.
 * The contents are always NUL-terminated. The buffer owns its memory
 * (malloc); idb_buf_free releases it and accepts a zeroed buffer.
 */
#ifndef IDB_CORE_BUF_H
#define IDB_CORE_BUF_H

#include <stddef.h>
#include "core/err.h"

struct idb_buf {
	char *data;
	size_t len, cap, max;
};

void idb_buf_init(struct idb_buf *, size_t max);
enum idb_err idb_buf_add(struct idb_buf *, const void *, size_t);
enum idb_err idb_buf_addstr(struct idb_buf *, const char *);
enum idb_err idb_buf_addu(struct idb_buf *, unsigned long long);
/* Appends s as the body of a JSON string (quotes not included). */
enum idb_err idb_buf_addjson(struct idb_buf *, const char *s);
void idb_buf_reset(struct idb_buf *);
/* Wipes the contents (they may be secret) and releases the memory. */
void idb_buf_free(struct idb_buf *);

#endif
