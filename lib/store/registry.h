/* SPDX-License-Identifier: ISC */
/*
 * The registry database and the organizations it knows: initialising a data
 * folder, creating orgs (keys, wrapped; their own database, migrated), and
 * finding an org and its keys. Shared by the server and immidb-admin.
 */
#ifndef IDB_STORE_REGISTRY_H
#define IDB_STORE_REGISTRY_H

#include <sqlite3.h>
#include "conf/conf.h"
#include "core/err.h"
#include "core/util.h"
#include "crypto/key.h"

#define IDB_SLUG_MAX 40
#define IDB_ORG_NAME_MAX 200
#define IDB_PATH_MAX 1024

struct idb_org {
	char id[IDB_ID_LEN + 1];
	char slug[IDB_SLUG_MAX + 1];
	char name[IDB_ORG_NAME_MAX * 4 + 1]; /* up to 200 characters of UTF-8 */
	char state[16];
	char created_at[IDB_TIME_LEN];
};

/* Org keys unwrapped for use; wipe with idb_org_keys_wipe. */
struct idb_org_keys {
	unsigned char db[IDB_KEY_LEN];
	unsigned char field[IDB_KEY_LEN];
	unsigned db_version, field_version;
};

/* 1 if s matches ^[a-z0-9][a-z0-9-]{1,39}$ */
int idb_slug_valid(const char *s);
/* 1 if s is 1..200 characters of UTF-8 without control characters. */
int idb_org_name_valid(const char *s);
/* <data>/registry.db and <data>/orgs/<id>.db; IDB_E_TOOBIG if they do not fit. */
enum idb_err idb_reg_path(const struct idb_conf *, char out[IDB_PATH_MAX]);
enum idb_err idb_org_path(const struct idb_conf *, const char *org_id, char out[IDB_PATH_MAX]);

/*
 * Creates the data folder (0700) with orgs/ and backups/, the master key,
 * the registry (migrated) and the log-signing key. IDB_E_EXISTS if the
 * master key or the registry is already there.
 */
enum idb_err idb_reg_init(const struct idb_conf *, char *err, size_t errlen);
/* Opens the registry with the key derived from the master key and checks its schema. */
enum idb_err idb_reg_open(const struct idb_conf *, const struct idb_master *, int flags, sqlite3 **out);
/* Finds an org by slug; IDB_E_NOT_FOUND if there is none. */
enum idb_err idb_reg_org_find(sqlite3 *reg, const char *slug, struct idb_org *out);
/* Calls fn for every org, by slug. */
enum idb_err idb_reg_org_list(sqlite3 *reg, void (*fn)(const struct idb_org *, void *), void *arg);
/* Unwraps an org's current keys. */
enum idb_err idb_reg_org_keys(sqlite3 *reg, const struct idb_master *, const char *org_id,
                              struct idb_org_keys *out);
void idb_org_keys_wipe(struct idb_org_keys *);
/*
 * Creates an org: new random keys wrapped under the master key, its
 * database created and migrated, the registry rows committed last (a failure
 * leaves neither rows nor file). IDB_E_EXISTS if the slug is taken.
 */
enum idb_err idb_reg_org_create(const struct idb_conf *, sqlite3 *reg, const struct idb_master *,
                                const char *slug, const char *name, struct idb_org *out,
                                char *err, size_t errlen);
/* Opens an org's database with its keys; checks the schema (IDB_E_SCHEMA_BEHIND ...). */
enum idb_err idb_org_open(const struct idb_conf *, const char *org_id, const struct idb_org_keys *,
                          int flags, sqlite3 **out);
/*
 * Opens an org's database the way every caller should: with whichever of
 * the org's database keys opens the file (newest first: a key rotation cut
 * short leaves the file under the previous one) and fills k with that
 * database key and the field key the database itself records as in use.
 * flags as idb_db_open; the schema is checked as idb_org_open does (the
 * handle is still returned with IDB_E_SCHEMA_BEHIND when IDB_DB_ANY_SCHEMA
 * is set, for migrate). k is wiped by the caller.
 */
#define IDB_DB_ANY_SCHEMA 0x100
enum idb_err idb_org_open_keys(const struct idb_conf *, sqlite3 *reg, const struct idb_master *, const char *org_id,
                               int flags, sqlite3 **out, struct idb_org_keys *k);
/* The field-key version an org database records (key_state); IDB_E_NOT_FOUND before migration 0007. */
enum idb_err idb_org_field_version(sqlite3 *db, unsigned *version);
/* Opens a copy of an org database at path (a backup) with the given database key version. */
enum idb_err idb_org_open_file(sqlite3 *reg, const struct idb_master *, const char *org_id, const char *path,
                               unsigned db_version, int flags, sqlite3 **out);
/* One of an org's keys at a given version ("db" or "field"); IDB_E_NOT_FOUND if there is none. */
enum idb_err idb_reg_org_key_at(sqlite3 *reg, const struct idb_master *, const char *org_id, const char *purpose,
                                unsigned version, unsigned char key[IDB_KEY_LEN]);
/* The newest version of one of an org's keys. */
enum idb_err idb_reg_org_key_latest(sqlite3 *reg, const char *org_id, const char *purpose, unsigned *version);
/* Makes a new random key (into key; wipe it) and stores it wrapped as the given version. */
enum idb_err idb_reg_org_key_add(sqlite3 *reg, const struct idb_master *, const char *org_id, const char *purpose,
                                 unsigned version, unsigned char key[IDB_KEY_LEN]);
/* A deployment flag ("maintenance": "on"/"off"); "" if never set. */
enum idb_err idb_reg_flag_get(sqlite3 *reg, const char *name, char *value, size_t size);
enum idb_err idb_reg_flag_set(sqlite3 *reg, const char *name, const char *value);
/* Every wrapped key (org keys, the log-signing key) unwrapped with one master key and wrapped with another
 * (inside the caller's transaction). */
enum idb_err idb_reg_rewrap(sqlite3 *reg, const struct idb_master *from, const struct idb_master *to);
/* The registry schema version applied (for health). */
enum idb_err idb_reg_schema(sqlite3 *reg, int *version);
/* The deployment's Ed25519 key pair, unwrapped (wipe sk after use). */
enum idb_err idb_reg_sign_key(sqlite3 *reg, const struct idb_master *, unsigned char pk[crypto_sign_PUBLICKEYBYTES],
                              unsigned char sk[crypto_sign_SECRETKEYBYTES]);
/* The deployment's Ed25519 public key (32 bytes). */
enum idb_err idb_reg_sign_public(sqlite3 *reg, unsigned char pk[crypto_sign_PUBLICKEYBYTES]);

#endif
