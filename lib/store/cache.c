/* SPDX-License-Identifier: ISC */
/* The LRU cache of open org databases. */
#include "store/cache.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/db.h"
#include "store/mig.h"

/* The database's schema cookie: it changes with every schema change (a migration). */
static const char sql_cookie[] = "PRAGMA schema_version";

static int
schema_cookie(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int v = -1;

	if (idb_db_cached(db, sql_cookie, &st) == IDB_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	idb_db_done(st);
	return v;
}

enum idb_err
idb_cache_init(struct idb_cache *c, size_t max)
{
	memset(c, 0, sizeof(*c));
	if (max == 0 || (c->v = calloc(max, sizeof(*c->v))) == NULL)
		return IDB_E_NOMEM;
	c->max = max;
	return IDB_OK;
}

static void
close_slot(struct idb_org_handle *h)
{
	idb_db_close(h->db);
	if (h->keys != NULL)
		sodium_free(h->keys);
	memset(h, 0, sizeof(*h));
}

/*
 * Handles whose file was replaced underneath them are never closed. Closing
 * one would run SQLite's close-time checkpoint through the -wal and -shm
 * files, which are found by path and so now belong to the new file: it
 * would copy the new file's committed frames into the old, unlinked inode
 * and delete the WAL, losing them. A stale handle is parked here instead,
 * reachable until the worker exits (workers are replaced on SIGHUP); the
 * kernel then closes its descriptors without any SQLite close logic.
 */
struct stale {
	struct stale *next;
	sqlite3 *db;
};
static struct stale *graveyard;

static void
park_slot(struct idb_org_handle *h)
{
	struct stale *s = malloc(sizeof(*s));

	if (s != NULL) {
		idb_db_forget(h->db);
		s->db = h->db;
		s->next = graveyard;
		graveyard = s;
		h->db = NULL;
	}
	/* Out of memory: the handle is closed after all (the lesser evil than failing the request). */
	close_slot(h);
}

static void
remove_at(struct idb_cache *c, size_t i)
{
	close_slot(&c->v[i]);
	c->v[i] = c->v[c->n - 1];
	memset(&c->v[c->n - 1], 0, sizeof(c->v[0]));
	c->n--;
}

static void
park_at(struct idb_cache *c, size_t i)
{
	park_slot(&c->v[i]);
	c->v[i] = c->v[c->n - 1];
	memset(&c->v[c->n - 1], 0, sizeof(c->v[0]));
	c->n--;
}

static enum idb_err
open_slot(struct idb_cache *c, const struct idb_conf *conf, sqlite3 *reg, const struct idb_master *m,
          const char *org_id, struct idb_org_handle *h)
{
	struct stat before, after;
	const char *path = h->path;
	unsigned fv;
	enum idb_err e;

	memset(h, 0, sizeof(*h));
	if ((e = idb_org_path(conf, org_id, h->path)) != IDB_OK)
		return e;
	if ((h->keys = sodium_malloc(sizeof(*h->keys))) == NULL)
		return IDB_E_NOMEM;
	if (stat(path, &before) != 0) {
		e = IDB_E_NOT_FOUND;
		goto fail;
	}
	if ((e = idb_org_open_keys(conf, reg, m, org_id, IDB_DB_QUEUE, &h->db, h->keys)) != IDB_OK)
		goto fail;
	/* Replaced while opening: take the file as it is now next time. */
	if (stat(path, &after) != 0 || after.st_ino != before.st_ino || after.st_dev != before.st_dev)
		before.st_ino = 0;
	h->dev = before.st_dev;
	h->ino = before.st_ino;
	h->schema_cookie = schema_cookie(h->db);
	/* A field-key rotation that committed between reading key_state and the
	 * cookie would leave this handle with the old key and no way to notice:
	 * confirm the version now that the cookie is taken. */
	if (idb_org_field_version(h->db, &fv) != IDB_OK || fv != h->keys->field_version) {
		e = IDB_E_UNAVAILABLE;
		goto fail;
	}
	memcpy(h->org_id, org_id, strlen(org_id) + 1);
	c->opens++;
	return IDB_OK;
fail:
	close_slot(h);
	return e;
}

static enum idb_err cache_get(struct idb_cache *, const struct idb_conf *, sqlite3 *, const struct idb_master *,
                              const char *, int, struct idb_org_handle **);

enum idb_err
idb_cache_get(struct idb_cache *c, const struct idb_conf *conf, sqlite3 *reg, const struct idb_master *m,
              const char *org_id, struct idb_org_handle **out)
{
	return cache_get(c, conf, reg, m, org_id, 0, out);
}

enum idb_err
idb_cache_get_read(struct idb_cache *c, const struct idb_conf *conf, sqlite3 *reg, const struct idb_master *m,
                   const char *org_id, struct idb_org_handle **out)
{
	return cache_get(c, conf, reg, m, org_id, 1, out);
}

static enum idb_err
cache_get(struct idb_cache *c, const struct idb_conf *conf, sqlite3 *reg, const struct idb_master *m,
          const char *org_id, int read, struct idb_org_handle **out)
{
	struct stat st;
	size_t i, lru = 0;
	enum idb_err e;

	*out = NULL;
	for (i = 0; i < c->n; i++) {
		if (strcmp(c->v[i].org_id, org_id) != 0)
			continue;
		if (stat(c->v[i].path, &st) == 0 &&
		    st.st_ino == c->v[i].ino && st.st_dev == c->v[i].dev &&
		    (!read || idb_db_read_begin(c->v[i].db) == IDB_OK) &&
		    schema_cookie(c->v[i].db) == c->v[i].schema_cookie) {
			c->v[i].used = ++c->tick;
			*out = &c->v[i];
			return IDB_OK;
		}
		idb_db_read_end(c->v[i].db);
		/* The file was replaced or removed: park the old handle. Migrated
		 * underneath (same file): close it normally and look again. */
		if (stat(c->v[i].path, &st) == 0 && st.st_ino == c->v[i].ino && st.st_dev == c->v[i].dev)
			remove_at(c, i);
		else
			park_at(c, i);
		break;
	}
	if (c->n == c->max) {
		for (i = 1; i < c->n; i++)
			if (c->v[i].used < c->v[lru].used)
				lru = i;
		remove_at(c, lru);
	}
	if ((e = open_slot(c, conf, reg, m, org_id, &c->v[c->n])) != IDB_OK)
		return e;
	if (read)
		idb_db_read_begin(c->v[c->n].db);
	c->v[c->n].used = ++c->tick;
	*out = &c->v[c->n++];
	return IDB_OK;
}

void
idb_cache_drop(struct idb_cache *c, const char *org_id)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->v[i].org_id, org_id) == 0) {
			remove_at(c, i);
			return;
		}
}

void
idb_cache_free(struct idb_cache *c)
{
	if (c == NULL)
		return;
	while (c->n > 0)
		remove_at(c, c->n - 1);
	free(c->v);
	c->v = NULL;
	c->max = 0;
}
