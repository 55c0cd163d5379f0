/* SPDX-License-Identifier: ISC */
/* The registry: data folder initialisation, orgs and their keys. */
#include "store/registry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/db.h"
#include "store/mig.h"

static const char sql_org_find[] = "SELECT id, slug, name, state, created_at FROM orgs WHERE slug = ?";
static const char sql_org_list[] = "SELECT id, slug, name, state, created_at FROM orgs ORDER BY slug";
static const char sql_org_insert[] = "INSERT INTO orgs (id, slug, name, state, created_at) VALUES (?, ?, ?, 'active', ?)";
static const char sql_key_insert[] = "INSERT INTO org_keys (org_id, purpose, version, wrapped, created_at) VALUES (?, ?, ?, ?, ?)";
static const char sql_key_current[] =
    "SELECT version, wrapped FROM org_keys WHERE org_id = ? AND purpose = ? ORDER BY version DESC LIMIT 1";
static const char sql_key_at[] =
    "SELECT wrapped FROM org_keys WHERE org_id = ? AND purpose = ? AND version = ?";
static const char sql_key_versions[] =
    "SELECT version FROM org_keys WHERE org_id = ? AND purpose = 'db' ORDER BY version DESC";
static const char sql_field_state[] = "SELECT version FROM key_state WHERE purpose = 'field'";
static const char sql_sign_insert[] =
    "INSERT INTO deployment_keys (purpose, version, public_key, wrapped, created_at) VALUES ('log-sign', 1, ?, ?, ?)";
static const char sql_sign_key[] =
    "SELECT version, public_key, wrapped FROM deployment_keys WHERE purpose = 'log-sign' ORDER BY version DESC LIMIT 1";
static const char sql_sign_public[] =
    "SELECT public_key FROM deployment_keys WHERE purpose = 'log-sign' ORDER BY version DESC LIMIT 1";
static const char sql_org_settings[] =
    "INSERT INTO settings (id, name, updated_at) VALUES (1, ?, ?)";

int
idb_slug_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 2 || n > IDB_SLUG_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'))
			continue;
		if (s[i] == '-' && i > 0)
			continue;
		return 0;
	}
	return 1;
}

int
idb_org_name_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t chars = 0;

	/* Well-formed UTF-8 (so 200 characters fit in 800 bytes), no control characters. */
	if (!idb_utf8_valid(s))
		return 0;
	for (; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return 0;
		if ((*p & 0xc0) != 0x80)
			chars++;
	}
	return chars >= 1 && chars <= IDB_ORG_NAME_MAX;
}

static enum idb_err
path_join(char out[IDB_PATH_MAX], const char *a, const char *b, const char *c)
{
	int n = snprintf(out, IDB_PATH_MAX, "%s%s%s", a, b, c);

	return n > 0 && n < IDB_PATH_MAX ? IDB_OK : IDB_E_TOOBIG;
}

enum idb_err
idb_reg_path(const struct idb_conf *c, char out[IDB_PATH_MAX])
{
	return path_join(out, c->data_dir, "/registry.db", "");
}

enum idb_err
idb_org_path(const struct idb_conf *c, const char *org_id, char out[IDB_PATH_MAX])
{
	char dir[IDB_PATH_MAX];
	enum idb_err e;

	if (!idb_id_valid(org_id, 'o'))
		return IDB_E_NOT_FOUND;
	if ((e = path_join(dir, c->data_dir, "/orgs/", org_id)) != IDB_OK)
		return e;
	return path_join(out, dir, ".db", "");
}

static enum idb_err
mkdir_private(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return IDB_OK;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return chmod(path, 0700) == 0 ? IDB_OK : IDB_E_IO;
	return IDB_E_IO;
}

static enum idb_err
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return IDB_OK;
	return rc == SQLITE_CONSTRAINT ? IDB_E_EXISTS : IDB_E_DB;
}

static enum idb_err
make_sign_key(sqlite3 *reg, const struct idb_master *m)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], seed[crypto_sign_SEEDBYTES];
	unsigned char sk[crypto_sign_SECRETKEYBYTES], wrapped[IDB_WRAP_LEN(crypto_sign_SEEDBYTES)];
	char now[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL;
	enum idb_err e = IDB_E_DB;

	randombytes_buf(seed, sizeof(seed));
	if (crypto_sign_seed_keypair(pk, sk, seed) != 0) {
		e = IDB_E_CRYPTO;
		goto out;
	}
	if ((e = idb_key_wrap(m, "deployment", "log-sign", 1, seed, sizeof(seed), wrapped)) != IDB_OK)
		goto out;
	idb_time_now(now);
	if (sqlite3_prepare_v2(reg, sql_sign_insert, -1, &st, NULL) != SQLITE_OK) {
		e = IDB_E_DB;
		goto out;
	}
	sqlite3_bind_blob(st, 1, pk, sizeof(pk), SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, wrapped, sizeof(wrapped), SQLITE_STATIC);
	sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
	e = step_done(st);
out:
	sqlite3_finalize(st);
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk, sizeof(sk));
	return e;
}

enum idb_err
idb_reg_init(const struct idb_conf *c, char *err, size_t errlen)
{
	char path[IDB_PATH_MAX], sub[IDB_PATH_MAX];
	unsigned char rkey[IDB_KEY_LEN];
	struct idb_master *m = NULL;
	sqlite3 *reg = NULL;
	struct stat st;
	enum idb_err e;
	int applied;

	if ((e = mkdir_private(c->data_dir)) != IDB_OK) {
		snprintf(err, errlen, "%s: cannot create the data folder", c->data_dir);
		return e;
	}
	if ((e = path_join(sub, c->data_dir, "/orgs", "")) != IDB_OK || (e = mkdir_private(sub)) != IDB_OK ||
	    (e = path_join(sub, c->data_dir, "/backups", "")) != IDB_OK || (e = mkdir_private(sub)) != IDB_OK) {
		snprintf(err, errlen, "%s: cannot create orgs/ or backups/", c->data_dir);
		return e;
	}
	if ((e = idb_reg_path(c, path)) != IDB_OK)
		return e;
	if (stat(path, &st) == 0) {
		snprintf(err, errlen, "%s: already initialised", path);
		return IDB_E_EXISTS;
	}
	if ((e = idb_key_master_create(c->master_key_file)) != IDB_OK) {
		snprintf(err, errlen, "%s: %s", c->master_key_file,
		         e == IDB_E_EXISTS ? "a master key is already there" : "cannot write the master key");
		return e;
	}
	if ((e = idb_key_master_load(c->master_key_file, &m)) != IDB_OK ||
	    (e = idb_key_registry(m, rkey)) != IDB_OK) {
		snprintf(err, errlen, "%s: %s", c->master_key_file, idb_err_str(e));
		goto out;
	}
	if ((e = idb_db_open(path, rkey, IDB_DB_CREATE, &reg)) != IDB_OK) {
		snprintf(err, errlen, "%s: %s", path, idb_err_str(e));
		goto out;
	}
	if ((e = idb_mig_apply(reg, &idb_mig_registry, NULL, NULL, &applied, err, errlen)) != IDB_OK)
		goto out;
	if ((e = make_sign_key(reg, m)) != IDB_OK)
		snprintf(err, errlen, "log-signing key: %s", idb_err_str(e));
out:
	sodium_memzero(rkey, sizeof(rkey));
	idb_db_close(reg);
	idb_key_master_free(m);
	return e;
}

enum idb_err
idb_reg_open(const struct idb_conf *c, const struct idb_master *m, int flags, sqlite3 **out)
{
	unsigned char rkey[IDB_KEY_LEN];
	char path[IDB_PATH_MAX];
	enum idb_err e;

	*out = NULL;
	if ((e = idb_reg_path(c, path)) != IDB_OK || (e = idb_key_registry(m, rkey)) != IDB_OK)
		return e;
	e = idb_db_open(path, rkey, flags & ~IDB_DB_CREATE, out);
	sodium_memzero(rkey, sizeof(rkey));
	if (e == IDB_OK && (e = idb_mig_check(*out, &idb_mig_registry)) != IDB_OK &&
	    e != IDB_E_SCHEMA_BEHIND) {
		idb_db_close(*out);
		*out = NULL;
	}
	/* A registry that is behind is opened anyway: only migrate may use it (the caller checks). */
	return e;
}

static void
row_org(sqlite3_stmt *st, struct idb_org *o)
{
	idb_db_text(o->id, sizeof(o->id), st, 0);
	idb_db_text(o->slug, sizeof(o->slug), st, 1);
	idb_db_text(o->name, sizeof(o->name), st, 2);
	idb_db_text(o->state, sizeof(o->state), st, 3);
	idb_db_text(o->created_at, sizeof(o->created_at), st, 4);
}

enum idb_err
idb_reg_org_find(sqlite3 *reg, const char *slug, struct idb_org *out)
{
	sqlite3_stmt *st = NULL;
	enum idb_err e;
	int rc;

	if (!idb_slug_valid(slug))
		return IDB_E_NOT_FOUND;
	if (idb_db_cached(reg, sql_org_find, &st) != IDB_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, slug, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row_org(st, out);
		e = IDB_OK;
	} else
		e = rc == SQLITE_DONE ? IDB_E_NOT_FOUND : IDB_E_DB;
	idb_db_done(st);
	return e;
}

enum idb_err
idb_reg_org_list(sqlite3 *reg, void (*fn)(const struct idb_org *, void *), void *arg)
{
	sqlite3_stmt *st = NULL;
	struct idb_org o;
	int rc;

	if (sqlite3_prepare_v2(reg, sql_org_list, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_org(st, &o);
		fn(&o, arg);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? IDB_OK : IDB_E_DB;
}

static enum idb_err
load_key(sqlite3 *reg, const struct idb_master *m, const char *org_id, const char *purpose,
         unsigned char key[IDB_KEY_LEN], unsigned *version)
{
	sqlite3_stmt *st = NULL;
	enum idb_err e = IDB_E_DB;
	int rc;

	if (sqlite3_prepare_v2(reg, sql_key_current, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, purpose, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*version = (unsigned)sqlite3_column_int(st, 0);
		e = idb_key_unwrap(m, org_id, purpose, *version, sqlite3_column_blob(st, 1),
		                   (size_t)sqlite3_column_bytes(st, 1), key, IDB_KEY_LEN);
	} else if (rc == SQLITE_DONE)
		e = IDB_E_NOT_FOUND;
	sqlite3_finalize(st);
	return e;
}

enum idb_err
idb_reg_org_keys(sqlite3 *reg, const struct idb_master *m, const char *org_id, struct idb_org_keys *k)
{
	enum idb_err e;

	if ((e = load_key(reg, m, org_id, "db", k->db, &k->db_version)) != IDB_OK ||
	    (e = load_key(reg, m, org_id, "field", k->field, &k->field_version)) != IDB_OK)
		idb_org_keys_wipe(k);
	return e;
}

void
idb_org_keys_wipe(struct idb_org_keys *k)
{
	sodium_memzero(k, sizeof(*k));
}

enum idb_err
idb_org_open(const struct idb_conf *c, const char *org_id, const struct idb_org_keys *k, int flags,
             sqlite3 **out)
{
	char path[IDB_PATH_MAX];
	enum idb_err e;

	if ((e = idb_org_path(c, org_id, path)) != IDB_OK)
		return e;
	if ((e = idb_db_open(path, k->db, flags, out)) != IDB_OK)
		return e;
	if ((e = idb_mig_check(*out, &idb_mig_org)) != IDB_OK && !(flags & IDB_DB_CREATE)) {
		idb_db_close(*out);
		*out = NULL;
	}
	/* At the latest schema, every handle keeps the data generation (lib/store/memo.h). */
	if (e == IDB_OK && (e = idb_db_track(*out)) != IDB_OK) {
		idb_db_close(*out);
		*out = NULL;
	}
	return (flags & IDB_DB_CREATE) ? IDB_OK : e;
}

enum idb_err
idb_reg_org_key_at(sqlite3 *reg, const struct idb_master *m, const char *org_id, const char *purpose,
                   unsigned version, unsigned char key[IDB_KEY_LEN])
{
	sqlite3_stmt *st = NULL;
	enum idb_err e = IDB_E_DB;
	int rc;

	if (sqlite3_prepare_v2(reg, sql_key_at, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, purpose, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, version);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		e = idb_key_unwrap(m, org_id, purpose, version, sqlite3_column_blob(st, 0),
		                   (size_t)sqlite3_column_bytes(st, 0), key, IDB_KEY_LEN);
	else if (rc == SQLITE_DONE)
		e = IDB_E_NOT_FOUND;
	sqlite3_finalize(st);
	return e;
}

enum idb_err
idb_org_open_file(sqlite3 *reg, const struct idb_master *m, const char *org_id, const char *path,
                  unsigned db_version, int flags, sqlite3 **out)
{
	unsigned char key[IDB_KEY_LEN];
	enum idb_err e;

	*out = NULL;
	if ((e = idb_reg_org_key_at(reg, m, org_id, "db", db_version, key)) == IDB_OK)
		e = idb_db_open(path, key, flags & ~IDB_DB_ANY_SCHEMA, out);
	sodium_memzero(key, sizeof(key));
	return e;
}

enum idb_err
idb_org_field_version(sqlite3 *db, unsigned *version)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*version = 0;
	if (idb_db_cached(db, sql_field_state, &st) != IDB_OK)
		return IDB_E_NOT_FOUND; /* no key_state: a schema before org migration 0007 */
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = (unsigned)sqlite3_column_int64(st, 0);
	idb_db_done(st);
	return rc == SQLITE_ROW ? IDB_OK : IDB_E_DB;
}

enum idb_err
idb_org_open_keys(const struct idb_conf *c, sqlite3 *reg, const struct idb_master *m, const char *org_id,
                  int flags, sqlite3 **out, struct idb_org_keys *k)
{
	char path[IDB_PATH_MAX];
	sqlite3_stmt *st = NULL;
	enum idb_err e, check;
	int rc = SQLITE_DONE, pass;

	*out = NULL;
	memset(k, 0, sizeof(*k));
	if ((e = idb_org_path(c, org_id, path)) != IDB_OK)
		return e;
	if (sqlite3_prepare_v2(reg, sql_key_versions, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
	/*
	 * A rekey (keys rotate) may commit between two tries: the newest key
	 * tried just before it, the older one just after. No key opened the file
	 * then, though one does now; another pass over the keys finds it.
	 */
	e = IDB_E_BADKEY;
	for (pass = 0; pass < 3 && e == IDB_E_BADKEY; pass++) {
		sqlite3_reset(st);
		e = IDB_E_NOT_FOUND;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			k->db_version = (unsigned)sqlite3_column_int64(st, 0);
			if ((e = idb_reg_org_key_at(reg, m, org_id, "db", k->db_version, k->db)) != IDB_OK)
				break;
			e = idb_db_open(path, k->db, flags & ~IDB_DB_ANY_SCHEMA, out);
			if (e != IDB_E_BADKEY)
				break;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE && e == IDB_OK)
		e = IDB_E_DB;
	if (e != IDB_OK)
		goto fail;
	check = idb_mig_check(*out, &idb_mig_org);
	if (check != IDB_OK && !(check == IDB_E_SCHEMA_BEHIND && (flags & IDB_DB_ANY_SCHEMA))) {
		e = check;
		goto fail;
	}
	/* Before key_state existed nothing was rotated: the field key is version 1. */
	if ((e = idb_org_field_version(*out, &k->field_version)) == IDB_E_NOT_FOUND) {
		k->field_version = 1;
		e = IDB_OK;
	}
	if (e != IDB_OK ||
	    (e = idb_reg_org_key_at(reg, m, org_id, "field", k->field_version, k->field)) != IDB_OK)
		goto fail;
	/* At the latest schema, every handle keeps the data generation (lib/store/memo.h). */
	if (check == IDB_OK && (e = idb_db_track(*out)) != IDB_OK)
		goto fail;
	return check;
fail:
	idb_db_close(*out);
	*out = NULL;
	idb_org_keys_wipe(k);
	return e;
}

static enum idb_err
insert_key(sqlite3_stmt *st, const struct idb_master *m, const char *org_id, const char *purpose,
           unsigned version, const unsigned char key[IDB_KEY_LEN], const char *now)
{
	unsigned char wrapped[IDB_WRAP_LEN(IDB_KEY_LEN)];
	enum idb_err e;

	if ((e = idb_key_wrap(m, org_id, purpose, version, key, IDB_KEY_LEN, wrapped)) != IDB_OK)
		return e;
	sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, purpose, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, version);
	sqlite3_bind_blob(st, 4, wrapped, sizeof(wrapped), SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
	return step_done(st);
}

enum idb_err
idb_reg_org_create(const struct idb_conf *c, sqlite3 *reg, const struct idb_master *m, const char *slug,
                   const char *name, struct idb_org *out, char *err, size_t errlen)
{
	struct idb_org_keys k;
	char path[IDB_PATH_MAX], now[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL, *sk = NULL;
	sqlite3 *odb = NULL;
	enum idb_err e;
	int applied, in_tx = 0, made_file = 0;

	memset(&k, 0, sizeof(k));
	if (!idb_slug_valid(slug)) {
		snprintf(err, errlen, "slug must match ^[a-z0-9][a-z0-9-]{1,39}$");
		return IDB_E_VALIDATION;
	}
	if (!idb_org_name_valid(name)) {
		snprintf(err, errlen, "name must be 1 to %d characters without control characters", IDB_ORG_NAME_MAX);
		return IDB_E_VALIDATION;
	}
	memset(out, 0, sizeof(*out));
	idb_id_new('o', out->id);
	memcpy(out->slug, slug, strlen(slug) + 1);
	memcpy(out->name, name, strlen(name) + 1);
	memcpy(out->state, "active", 7);
	idb_time_now(now);
	memcpy(out->created_at, now, sizeof(now));
	randombytes_buf(k.db, sizeof(k.db));
	randombytes_buf(k.field, sizeof(k.field));

	if ((e = idb_db_exec(reg, "BEGIN IMMEDIATE")) != IDB_OK)
		goto dberr;
	in_tx = 1;
	if (sqlite3_prepare_v2(reg, sql_org_insert, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(reg, sql_key_insert, -1, &sk, NULL) != SQLITE_OK) {
		e = IDB_E_DB;
		goto dberr;
	}
	sqlite3_bind_text(st, 1, out->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, slug, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
	if ((e = step_done(st)) != IDB_OK) {
		snprintf(err, errlen, e == IDB_E_EXISTS ? "an org with slug '%s' exists" : "registry: cannot add '%s'", slug);
		goto out;
	}
	if ((e = insert_key(sk, m, out->id, "db", 1, k.db, now)) != IDB_OK ||
	    (e = insert_key(sk, m, out->id, "field", 1, k.field, now)) != IDB_OK)
		goto dberr;

	/* The org's own database, created and migrated before the registry commits. */
	if ((e = idb_org_path(c, out->id, path)) != IDB_OK)
		goto dberr;
	if ((e = idb_db_open(path, k.db, IDB_DB_CREATE, &odb)) != IDB_OK) {
		snprintf(err, errlen, "%s: %s", path, idb_err_str(e));
		goto out;
	}
	made_file = 1;
	if ((e = idb_mig_apply(odb, &idb_mig_org, NULL, NULL, &applied, err, errlen)) != IDB_OK)
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(odb, sql_org_settings, -1, &st, NULL) != SQLITE_OK) {
		e = IDB_E_DB;
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(odb));
		goto out;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
	if ((e = step_done(st)) != IDB_OK) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(odb));
		goto out;
	}
	if ((e = idb_db_exec(reg, "COMMIT")) != IDB_OK)
		goto dberr;
	in_tx = 0;
	goto out;
dberr:
	snprintf(err, errlen, "registry: %s", sqlite3_errmsg(reg));
out:
	sqlite3_finalize(st);
	sqlite3_finalize(sk);
	if (in_tx)
		idb_db_exec(reg, "ROLLBACK");
	idb_db_close(odb);
	if (e != IDB_OK && made_file) {
		char extra[IDB_PATH_MAX + 8];

		unlink(path);
		if (snprintf(extra, sizeof(extra), "%s-wal", path) < (int)sizeof(extra))
			unlink(extra);
		if (snprintf(extra, sizeof(extra), "%s-shm", path) < (int)sizeof(extra))
			unlink(extra);
	}
	idb_org_keys_wipe(&k);
	return e;
}

enum idb_err
idb_reg_schema(sqlite3 *reg, int *version)
{
	return idb_mig_current(reg, &idb_mig_registry, version);
}

enum idb_err
idb_reg_sign_public(sqlite3 *reg, unsigned char pk[crypto_sign_PUBLICKEYBYTES])
{
	sqlite3_stmt *st = NULL;
	enum idb_err e = IDB_E_NOT_FOUND;

	if (sqlite3_prepare_v2(reg, sql_sign_public, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == crypto_sign_PUBLICKEYBYTES) {
		memcpy(pk, sqlite3_column_blob(st, 0), crypto_sign_PUBLICKEYBYTES);
		e = IDB_OK;
	}
	sqlite3_finalize(st);
	return e;
}

enum idb_err
idb_reg_sign_key(sqlite3 *reg, const struct idb_master *m, unsigned char pk[crypto_sign_PUBLICKEYBYTES],
                 unsigned char sk[crypto_sign_SECRETKEYBYTES])
{
	unsigned char seed[crypto_sign_SEEDBYTES], check[crypto_sign_PUBLICKEYBYTES];
	sqlite3_stmt *st = NULL;
	enum idb_err e = IDB_E_NOT_FOUND;

	if (sqlite3_prepare_v2(reg, sql_sign_key, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 1) == crypto_sign_PUBLICKEYBYTES) {
		e = idb_key_unwrap(m, "deployment", "log-sign", (unsigned)sqlite3_column_int(st, 0),
		                   sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2), seed, sizeof(seed));
		if (e == IDB_OK && crypto_sign_seed_keypair(check, sk, seed) != 0)
			e = IDB_E_CRYPTO;
		/* The stored public key must be the one the seed makes. */
		if (e == IDB_OK && sodium_memcmp(check, sqlite3_column_blob(st, 1), sizeof(check)) != 0)
			e = IDB_E_BADKEY;
		if (e == IDB_OK)
			memcpy(pk, check, sizeof(check));
	}
	sqlite3_finalize(st);
	sodium_memzero(seed, sizeof(seed));
	if (e != IDB_OK)
		sodium_memzero(sk, crypto_sign_SECRETKEYBYTES);
	return e;
}

enum idb_err
idb_reg_org_key_latest(sqlite3 *reg, const char *org_id, const char *purpose, unsigned *version)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*version = 0;
	if (sqlite3_prepare_v2(reg, sql_key_current, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, org_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, purpose, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = (unsigned)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? IDB_OK : rc == SQLITE_DONE ? IDB_E_NOT_FOUND : IDB_E_DB;
}

enum idb_err
idb_reg_org_key_add(sqlite3 *reg, const struct idb_master *m, const char *org_id, const char *purpose,
                    unsigned version, unsigned char key[IDB_KEY_LEN])
{
	char now[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL;
	enum idb_err e;

	randombytes_buf(key, IDB_KEY_LEN);
	if (sqlite3_prepare_v2(reg, sql_key_insert, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	idb_time_now(now);
	e = insert_key(st, m, org_id, purpose, version, key, now);
	sqlite3_finalize(st);
	return e;
}

static const char sql_flag_get[] = "SELECT value FROM flags WHERE name = ?";
static const char sql_flag_set[] = "INSERT OR REPLACE INTO flags (name, value, updated_at) VALUES (?, ?, ?)";

enum idb_err
idb_reg_flag_get(sqlite3 *reg, const char *name, char *value, size_t size)
{
	sqlite3_stmt *st = NULL;
	enum idb_err e;
	int rc;

	value[0] = '\0';
	if ((e = idb_db_cached(reg, sql_flag_get, &st)) != IDB_OK)
		return e;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		idb_db_text(value, size, st, 0);
	idb_db_done(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? IDB_OK : IDB_E_DB;
}

enum idb_err
idb_reg_flag_set(sqlite3 *reg, const char *name, const char *value)
{
	char now[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL;
	enum idb_err e;

	if (sqlite3_prepare_v2(reg, sql_flag_set, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	idb_time_now(now);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
	e = step_done(st);
	sqlite3_finalize(st);
	return e;
}

/* Unwraps one stored key with one master key and wraps it with the other. */
static enum idb_err
rewrap_row(sqlite3_stmt *up, const struct idb_master *from, const struct idb_master *to, const char *owner,
           const char *purpose, unsigned version, const unsigned char *blob, size_t len, size_t keylen)
{
	unsigned char key[64], wrapped[IDB_WRAP_LEN(64)];
	enum idb_err e;

	if (keylen > sizeof(key) || len != IDB_WRAP_LEN(keylen))
		return IDB_E_CRYPTO;
	if ((e = idb_key_unwrap(from, owner, purpose, version, blob, len, key, keylen)) == IDB_OK &&
	    (e = idb_key_wrap(to, owner, purpose, version, key, keylen, wrapped)) == IDB_OK) {
		sqlite3_bind_blob(up, 1, wrapped, (int)IDB_WRAP_LEN(keylen), SQLITE_TRANSIENT);
		e = sqlite3_step(up) == SQLITE_DONE ? IDB_OK : IDB_E_DB;
		sqlite3_reset(up);
	}
	sodium_memzero(key, sizeof(key));
	return e;
}

enum idb_err
idb_reg_rewrap(sqlite3 *reg, const struct idb_master *from, const struct idb_master *to)
{
	static const char sql_org[] = "SELECT org_id, purpose, version, wrapped FROM org_keys";
	static const char sql_org_set[] = "UPDATE org_keys SET wrapped = ? WHERE org_id = ? AND purpose = ? AND version = ?";
	static const char sql_dep[] = "SELECT purpose, version, wrapped FROM deployment_keys";
	static const char sql_dep_set[] = "UPDATE deployment_keys SET wrapped = ? WHERE purpose = ? AND version = ?";
	char owner[IDB_ID_LEN + 1], purpose[32];
	sqlite3_stmt *st = NULL, *up = NULL;
	enum idb_err e = IDB_OK;
	unsigned v;
	int rc = SQLITE_DONE;

	if (sqlite3_prepare_v2(reg, sql_org, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(reg, sql_org_set, -1, &up, NULL) != SQLITE_OK)
		e = IDB_E_DB;
	while (e == IDB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		idb_db_text(owner, sizeof(owner), st, 0);
		idb_db_text(purpose, sizeof(purpose), st, 1);
		v = (unsigned)sqlite3_column_int64(st, 2);
		sqlite3_bind_text(up, 2, owner, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(up, 3, purpose, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(up, 4, v);
		e = rewrap_row(up, from, to, owner, purpose, v, sqlite3_column_blob(st, 3),
		               (size_t)sqlite3_column_bytes(st, 3), IDB_KEY_LEN);
	}
	if (e == IDB_OK && rc != SQLITE_DONE)
		e = IDB_E_DB;
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	st = up = NULL;
	if (e != IDB_OK)
		return e;
	if (sqlite3_prepare_v2(reg, sql_dep, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(reg, sql_dep_set, -1, &up, NULL) != SQLITE_OK)
		e = IDB_E_DB;
	while (e == IDB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		idb_db_text(purpose, sizeof(purpose), st, 0);
		v = (unsigned)sqlite3_column_int64(st, 1);
		sqlite3_bind_text(up, 2, purpose, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(up, 3, v);
		e = rewrap_row(up, from, to, "deployment", purpose, v, sqlite3_column_blob(st, 2),
		               (size_t)sqlite3_column_bytes(st, 2), crypto_sign_SEEDBYTES);
	}
	if (e == IDB_OK && rc != SQLITE_DONE)
		e = IDB_E_DB;
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	return e;
}
