/* SPDX-License-Identifier: ISC */
/* A bump allocator in linked chunks, with deferred cleanups. */
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK (64 * 1024)
#define ARENA_ALIGN 16

struct idb_arena_chunk {
	struct idb_arena_chunk *next;
	size_t size, off;
	_Alignas(16) unsigned char data[];
};

struct idb_arena_defer {
	struct idb_arena_defer *next;
	void (*fn)(void *);
	void *p;
};

void
idb_arena_init(struct idb_arena *a, size_t limit)
{
	memset(a, 0, sizeof(*a));
	a->limit = limit;
}

void *
idb_arena_alloc(struct idb_arena *a, size_t n)
{
	struct idb_arena_chunk *c;
	size_t need, size;

	if (n == 0)
		n = 1;
	if (n > SIZE_MAX - ARENA_ALIGN)
		return NULL;
	need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (need > a->limit || a->used > a->limit - need)
		return NULL;
	c = a->head;
	if (c == NULL || c->size - c->off < need) {
		size = need > ARENA_CHUNK ? need : ARENA_CHUNK;
		if ((c = malloc(sizeof(*c) + size)) == NULL)
			return NULL;
		c->size = size;
		c->off = 0;
		/* A big one-off chunk goes behind the head so the head keeps its room. */
		if (a->head != NULL && need > ARENA_CHUNK) {
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	c->off += need;
	a->used += need;
	return c->data + c->off - need;
}

void *
idb_arena_calloc(struct idb_arena *a, size_t n)
{
	void *p = idb_arena_alloc(a, n);

	if (p != NULL)
		memset(p, 0, n);
	return p;
}

char *
idb_arena_strndup(struct idb_arena *a, const char *s, size_t n)
{
	char *p;

	n = strnlen(s, n);
	if (n == SIZE_MAX || (p = idb_arena_alloc(a, n + 1)) == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
idb_arena_strdup(struct idb_arena *a, const char *s)
{
	return idb_arena_strndup(a, s, strlen(s));
}

int
idb_arena_defer(struct idb_arena *a, void (*fn)(void *), void *p)
{
	struct idb_arena_defer *d = idb_arena_alloc(a, sizeof(*d));

	if (d == NULL) {
		fn(p);
		return -1;
	}
	d->fn = fn;
	d->p = p;
	d->next = a->defers;
	a->defers = d;
	return 0;
}

static void
run_defers(struct idb_arena *a)
{
	struct idb_arena_defer *d;

	for (d = a->defers; d != NULL; d = d->next)
		d->fn(d->p);
	a->defers = NULL;
}

void
idb_arena_reset(struct idb_arena *a)
{
	struct idb_arena_chunk *c, *next;

	run_defers(a);
	if (a->head == NULL)
		return;
	for (c = a->head->next; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	a->head->next = NULL;
	a->head->off = 0;
	a->used = 0;
}

void
idb_arena_free(struct idb_arena *a)
{
	struct idb_arena_chunk *c, *next;

	if (a == NULL)
		return;
	run_defers(a);
	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
	a->used = 0;
}
