/* SPDX-License-Identifier: ISC */
/* The per-handle memo of what requests read: see memo.h. */
#include "store/memo.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "store/db.h"

struct entry {
	int kind;
	size_t klen, len;
	unsigned char key[IDB_MEMO_KEY_MAX];
	void *val; /* NULL: free */
};

struct idb_memo {
	unsigned long snap; /* the read transaction whose generation was checked (0: none yet) */
	long long gen;      /* valid once snap is not 0 */
	int changes; /* sqlite3_total_changes when the generation was read */
	unsigned next; /* the entry replaced next when all are taken */
	struct entry e[IDB_MEMO_ENTRIES];
};

static unsigned long hits;

static void
drop(struct entry *e)
{
	if (e->val != NULL) {
		sodium_memzero(e->val, e->len);
		free(e->val);
	}
	sodium_memzero(e, sizeof(*e));
}

static void
empty(struct idb_memo *m)
{
	size_t i;

	for (i = 0; i < IDB_MEMO_ENTRIES; i++)
		drop(&m->e[i]);
	m->next = 0;
}

void
idb_memo_free(struct idb_memo *m)
{
	if (m == NULL)
		return;
	empty(m);
	free(m);
}

unsigned long
idb_memo_hits(void)
{
	return hits;
}

/*
 * The handle's memo, usable in its current read transaction: the first
 * call of a transaction reads the generation (a memo of another one is
 * emptied). NULL if the handle is not tracked, not in a read transaction,
 * or the generation cannot be read.
 */
static struct idb_memo *
ready(sqlite3 *db)
{
	struct idb_memo **mp;
	struct idb_memo *m;
	unsigned long snap;
	long long gen;

	if ((mp = idb_db_memo(db, &snap)) == NULL)
		return NULL;
	if (*mp == NULL && (*mp = calloc(1, sizeof(**mp))) == NULL)
		return NULL;
	m = *mp;
	/* Not once this connection has written in the transaction (SQLite then made it a write one). */
	if (m->snap == snap)
		return sqlite3_total_changes(db) == m->changes ? m : NULL;
	if (idb_db_generation(db, &gen) != IDB_OK)
		return NULL;
	if (m->snap == 0 || m->gen != gen)
		empty(m);
	m->gen = gen;
	m->snap = snap;
	m->changes = sqlite3_total_changes(db);
	return m;
}

static struct entry *
find(struct idb_memo *m, int kind, const void *key, size_t klen)
{
	size_t i;

	for (i = 0; i < IDB_MEMO_ENTRIES; i++) {
		struct entry *e = &m->e[i];

		if (e->val != NULL && e->kind == kind && e->klen == klen && (klen == 0 || memcmp(e->key, key, klen) == 0))
			return e;
	}
	return NULL;
}

const void *
idb_memo_get(sqlite3 *db, int kind, const void *key, size_t klen, size_t *len)
{
	struct idb_memo *m;
	struct entry *e;

	*len = 0;
	if (klen > IDB_MEMO_KEY_MAX || (m = ready(db)) == NULL || (e = find(m, kind, key, klen)) == NULL)
		return NULL;
	hits++;
	*len = e->len;
	return e->val;
}

void
idb_memo_put(sqlite3 *db, int kind, const void *key, size_t klen, const void *val, size_t len)
{
	struct idb_memo *m;
	struct entry *e;
	void *copy;
	size_t i;

	if (klen > IDB_MEMO_KEY_MAX || len == 0 || (m = ready(db)) == NULL || (copy = malloc(len)) == NULL)
		return;
	memcpy(copy, val, len);
	if ((e = find(m, kind, key, klen)) == NULL) {
		for (i = 0; i < IDB_MEMO_ENTRIES && m->e[i].val != NULL; i++)
			;
		if (i == IDB_MEMO_ENTRIES) {
			i = m->next;
			m->next = (m->next + 1) % IDB_MEMO_ENTRIES;
		}
		e = &m->e[i];
	}
	drop(e);
	e->kind = kind;
	e->klen = klen;
	if (klen)
		memcpy(e->key, key, klen);
	e->len = len;
	e->val = copy;
}
