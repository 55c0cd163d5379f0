/* SPDX-License-Identifier: ISC */
/*
 * Per-request memory. Everything a request allocates comes from its arena
 * and is released at once when the request ends; objects from other
 * allocators (cJSON trees) are tied to the arena with idb_arena_defer so
 * that they end with it too. Arenas are bounded: an allocation past the
 * limit fails (NULL) instead of growing without end.
 */
#ifndef IDB_CORE_ARENA_H
#define IDB_CORE_ARENA_H

#include <stddef.h>

struct idb_arena_chunk;
struct idb_arena_defer;

struct idb_arena {
	struct idb_arena_chunk *head;
	struct idb_arena_defer *defers;
	size_t used;  /* bytes handed out since the last reset */
	size_t limit; /* upper bound of used */
};

/* Initialise an empty arena that hands out at most limit bytes. */
void idb_arena_init(struct idb_arena *, size_t limit);
/* Memory aligned for any type, or NULL when out of memory or over the limit. */
void *idb_arena_alloc(struct idb_arena *, size_t);
void *idb_arena_calloc(struct idb_arena *, size_t);
char *idb_arena_strdup(struct idb_arena *, const char *);
/* At most n bytes of s, stopping at its end; always NUL-terminated. */
char *idb_arena_strndup(struct idb_arena *, const char *, size_t);
/* Run fn(p) when the arena is reset or freed; returns -1 if it cannot be
 * recorded, in which case fn(p) has already been run. */
int idb_arena_defer(struct idb_arena *, void (*fn)(void *), void *p);
/* Run the deferred functions and release every chunk but the first. */
void idb_arena_reset(struct idb_arena *);
/* Release everything; the arena may be initialised again. NULL is fine. */
void idb_arena_free(struct idb_arena *);

#endif
