/* SPDX-License-Identifier: ISC */
/*
 * Backups (storage.md, Backups): a consistent online copy of the registry
 * and of every org database into one folder with MANIFEST.json, the check
 * of such a folder, the deletion of old ones, and the restore of one org
 * into the running server.
 *
 * Every copy goes through SQLite's online backup API, never through a file
 * copy of a live database: one sqlite3_backup_step(-1) reads one snapshot,
 * so workers keep writing meanwhile and the copy is consistent. A copy is
 * encrypted with the key of the database it came from (SQLCipher encrypts
 * the destination's pages with the destination's key), is written under a
 * temporary name, fsynced and renamed, and is left in rollback-journal mode
 * so that the file alone is the whole database (no -wal beside it).
 */
#ifndef IDB_STORE_BACKUP_H
#define IDB_STORE_BACKUP_H

#include <stddef.h>
#include <time.h>
#include <sqlite3.h>

#include "conf/conf.h"
#include "core/err.h"
#include "core/util.h"
#include "crypto/key.h"
#include "store/registry.h"

#define IDB_BACKUP_MANIFEST "MANIFEST.json"
#define IDB_BACKUP_MANIFEST_MAX (16 * 1024 * 1024) /* bytes of MANIFEST.json read at most */
#define IDB_BACKUP_FILES_MAX 100000                /* files one manifest may list */
#define IDB_BACKUP_NAME_MAX (IDB_ID_LEN + 4)       /* "<org-id>.db" */
#define IDB_BACKUP_KEEP_MIN 30                     /* prune never keeps fewer days */
#define IDB_BACKUP_ERR_MAX 512

/* One file of a backup, as MANIFEST.json lists it. */
struct idb_backup_file {
	char name[IDB_BACKUP_NAME_MAX + 1]; /* "registry.db" or "<org-id>.db" */
	char org_id[IDB_ID_LEN + 1];        /* "" for the registry */
	long long bytes;
	char sha256[65];                    /* lowercase hex */
	int schema_version;
	unsigned db_key_version;            /* org files: the database key version it opens with; 0 for the registry */
};

/* A parsed MANIFEST.json; files is owned (idb_backup_manifest_free). */
struct idb_backup_manifest {
	char created_at[IDB_TIME_LEN];
	time_t created;                     /* created_at as a time */
	size_t n;
	struct idb_backup_file *files;
	size_t failed;                      /* orgs the backup could not copy ("failed" in the manifest) */
	char first_failed[IDB_ID_LEN + 1];
};

/* <data>/backups/<YYYY-MM-DD> for today (UTC). IDB_E_TOOBIG if it does not fit. */
enum idb_err idb_backup_default_dir(const struct idb_conf *, char out[IDB_PATH_MAX]);

/*
 * Backs up the registry (from reg) and every org of the registry into dir,
 * then writes dir/MANIFEST.json. dir is created (0700, and its parent if
 * that is missing) and must be empty if it exists (IDB_E_EXISTS).
 * Each org gets a backup.create entry in its access log before its copy
 * (fail closed: no entry, no copy), unless its schema is behind. An org
 * that cannot be copied does not stop the others: the manifest lists it
 * under "failed", and the function returns its error with err naming the
 * first such org. Any other failure leaves no MANIFEST.json (so the folder
 * is not a backup: verify refuses it, prune leaves it alone).
 * reg must not be inside a write transaction.
 */
enum idb_err idb_backup_all(const struct idb_conf *, sqlite3 *reg, const struct idb_master *, const char *dir,
                            char *err, size_t errlen);

/*
 * Reads and checks dir/MANIFEST.json (fields, names, types). IDB_E_NOT_FOUND
 * if there is none, IDB_E_INVALID_JSON if it is not JSON, IDB_E_VALIDATION
 * if a field is missing or wrong; err says which.
 */
enum idb_err idb_backup_manifest_read(const char *dir, struct idb_backup_manifest *, char *err, size_t errlen);
void idb_backup_manifest_free(struct idb_backup_manifest *);

/*
 * Checks one file of a backup against its manifest entry: present, size,
 * SHA-256, opens with its key (registry: the derived registry key; org: the
 * manifest's db_key_version), PRAGMA integrity_check, and the schema version.
 * The file is opened read-only and not changed. IDB_OK or an error with why
 * ("missing", "wrong size: ...", "checksum mismatch", "does not open ...",
 * "integrity check failed: ...").
 */
enum idb_err idb_backup_verify_file(sqlite3 *reg, const struct idb_master *, const char *dir,
                                    const struct idb_backup_file *, char *why, size_t whylen);

/* Called once per file of a verified folder; why is NULL when the file is good. */
typedef void (*idb_backup_verify_cb)(const char *name, const char *why, void *arg);

/*
 * Verifies a backup folder: the manifest, then every file it lists, then the
 * folder's other files (each one "not in the manifest"), and orgs the backup
 * could not copy. IDB_OK if all is well; otherwise IDB_E_CHECKSUM (or the
 * manifest's error) with err naming the first bad file and why.
 */
enum idb_err idb_backup_verify(sqlite3 *reg, const struct idb_master *, const char *dir, idb_backup_verify_cb,
                               void *arg, char *err, size_t errlen);

enum idb_prune_what { IDB_PRUNE_DELETED, IDB_PRUNE_LEFT };
/* Called for each folder deleted, and each left alone for a reason (why). */
typedef void (*idb_backup_prune_cb)(const char *path, enum idb_prune_what, const char *why, void *arg);

/*
 * Deletes the backup folders under <data>/backups whose manifest's
 * created_at is more than keep_days days before now: the files the manifest
 * names, then the manifest, then the folder. Folders without a valid
 * manifest, and folders with other files in them, are left alone and
 * reported. keep_days below IDB_BACKUP_KEEP_MIN: IDB_E_VALIDATION, nothing
 * deleted.
 */
enum idb_err idb_backup_prune(const struct idb_conf *, int keep_days, time_t now, idb_backup_prune_cb, void *arg,
                              char *err, size_t errlen);

/* What a restore did. */
struct idb_restore_info {
	char created_at[IDB_TIME_LEN];  /* the backup's */
	char replaced[IDB_PATH_MAX];    /* where the replaced content was kept */
	unsigned replaced_key_version;  /* the database key version the replaced copy opens with */
	int schema_backup, schema_now;  /* the backup's schema version, and after migrating it */
	long long log_seq;              /* seq of the backup.restore entry */
};

/*
 * Restores org o from the backup folder dir into the running server. The
 * org's file is first copied to a temporary file in <data>/orgs (size and
 * SHA-256 checked against the manifest while copying), opened with the
 * manifest's key version, checked (integrity_check, schema not newer than
 * this binary), migrated if behind, and given its backup.restore entry.
 * Then, holding the live database's write lock: the live content is copied
 * aside to <data>/orgs/<id>.db.replaced-<time> (its current key), and the
 * temporary copy is copied into the live file with the backup API, in one
 * write transaction (never a rename over the live file: see
 * architecture.md). On any failure the live file is unchanged and the
 * temporary and aside files are removed; err says why.
 */
enum idb_err idb_backup_restore(const struct idb_conf *, sqlite3 *reg, const struct idb_master *,
                                const struct idb_org *o, const char *dir, struct idb_restore_info *,
                                char *err, size_t errlen);

#endif
