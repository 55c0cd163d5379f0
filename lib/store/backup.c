/* SPDX-License-Identifier: ISC */
/*
 * Backups and restore (storage.md, Backups; the design is in backup.h).
 * The file is in four parts: copying one database with the online backup
 * API, a whole backup with its manifest, verify and prune, and restore.
 * Access-log entries (backup.create, backup.restore) are written here, next
 * to the copy they describe, so that the order "entry, then copy" cannot be
 * lost by a caller.
 */
#include "store/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "audit/accesslog.h"
#include "store/db.h"
#include "store/mig.h"

#define COPY_WAIT_MS 30000 /* how long a copy waits for a lock before it gives up */
#define COPY_STEP_MS 5
#define IO_CHUNK 65536
#define DAY_SECONDS 86400

static const char reg_name[] = "registry.db";

/* ---- small file helpers ---------------------------------------------- */

static enum idb_err
pjoin(char out[IDB_PATH_MAX], const char *dir, const char *name)
{
	int n = snprintf(out, IDB_PATH_MAX, "%s/%s", dir, name);

	return n > 0 && n < IDB_PATH_MAX ? IDB_OK : IDB_E_TOOBIG;
}

static enum idb_err
psuffix(char out[IDB_PATH_MAX], const char *path, const char *suffix)
{
	int n = snprintf(out, IDB_PATH_MAX, "%s%s", path, suffix);

	return n > 0 && n < IDB_PATH_MAX ? IDB_OK : IDB_E_TOOBIG;
}

/* The last component of a path (for messages and log details). */
static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/*
 * Formats a message for people into why (cut short if it must be: it is
 * only a message) and returns e, so that a failure is one line.
 */
static enum idb_err say(enum idb_err e, char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum idb_err
say(enum idb_err e, char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(why, whylen, fmt, ap) < 0 && whylen > 0)
		why[0] = '\0';
	va_end(ap);
	return e;
}

/* Removes a database file with whatever SQLite may have left beside it. */
static void
unlink_db(const char *path)
{
	static const char *const side[] = {"-wal", "-shm", "-journal"};
	char p[IDB_PATH_MAX];
	size_t i;

	unlink(path);
	for (i = 0; i < sizeof(side) / sizeof(side[0]); i++)
		if (psuffix(p, path, side[i]) == IDB_OK)
			unlink(p);
}

/* Makes a rename or an unlink in dir durable. */
static enum idb_err
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	enum idb_err e = IDB_OK;

	if (fd < 0)
		return IDB_E_IO;
	if (fsync(fd) != 0)
		e = IDB_E_IO;
	close(fd);
	return e;
}

static enum idb_err
dir_of(char out[IDB_PATH_MAX], const char *path)
{
	const char *s = strrchr(path, '/');
	size_t n;

	if (s == NULL)
		return psuffix(out, ".", "");
	n = s == path ? 1 : (size_t)(s - path);
	if (n >= IDB_PATH_MAX)
		return IDB_E_TOOBIG;
	memcpy(out, path, n);
	out[n] = '\0';
	return IDB_OK;
}

/*
 * Size and SHA-256 (hex) of the whole file fd; copies it to out_fd as it
 * reads when out_fd >= 0. Reads from the current offset to the end.
 */
static enum idb_err
digest_fd(int fd, int out_fd, long long *bytes, char hex[65])
{
	unsigned char buf[IO_CHUNK], h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state st;
	ssize_t n, w, done;

	*bytes = 0;
	crypto_hash_sha256_init(&st);
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return IDB_E_IO;
		if (n == 0)
			break;
		crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
		*bytes += n;
		for (done = 0; out_fd >= 0 && done < n;) {
			if ((w = write(out_fd, buf + done, (size_t)(n - done))) < 0 && errno != EINTR)
				return IDB_E_IO;
			if (w > 0)
				done += w;
		}
	}
	crypto_hash_sha256_final(&st, h);
	idb_hex(h, sizeof(h), hex);
	return IDB_OK;
}

/* Size and SHA-256 of a file; with sync, it is fsynced first (a copy we just wrote). */
static enum idb_err
digest_file(const char *path, int sync, long long *bytes, char hex[65])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	enum idb_err e;

	if (fd < 0)
		return errno == ENOENT ? IDB_E_NOT_FOUND : IDB_E_IO;
	e = sync && fsync(fd) != 0 ? IDB_E_IO : digest_fd(fd, -1, bytes, hex);
	close(fd);
	return e;
}

/* Writes n bytes and a newline to a new file (mode 0600), fsynced; it must not exist yet. */
static enum idb_err
write_new(const char *path, const char *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	enum idb_err e = IDB_OK;
	ssize_t w;
	size_t done = 0;

	if (fd < 0)
		return errno == EEXIST ? IDB_E_EXISTS : IDB_E_IO;
	while (done <= n && e == IDB_OK) {
		if ((w = done < n ? write(fd, p + done, n - done) : write(fd, "\n", 1)) >= 0)
			done += (size_t)w;
		else if (errno != EINTR)
			e = IDB_E_IO;
	}
	if (e == IDB_OK && fsync(fd) != 0)
		e = IDB_E_IO;
	if (close(fd) != 0 && e == IDB_OK)
		e = IDB_E_IO;
	if (e != IDB_OK)
		unlink(path);
	return e;
}

/* Reads a whole file of at most max bytes, NUL-terminated; *out is freed by the caller. */
static enum idb_err
read_small(const char *path, size_t max, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	enum idb_err e = IDB_OK;
	struct stat st;
	char *buf = NULL;
	size_t n = 0, size;
	ssize_t r;

	*out = NULL;
	if (fd < 0)
		return errno == ENOENT ? IDB_E_NOT_FOUND : IDB_E_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		e = IDB_E_IO;
	else if (st.st_size < 0 || (unsigned long long)st.st_size > max)
		e = IDB_E_TOOBIG;
	else if ((buf = malloc((size = (size_t)st.st_size) + 1)) == NULL)
		e = IDB_E_NOMEM;
	while (e == IDB_OK && n < size) {
		if ((r = read(fd, buf + n, size - n)) > 0)
			n += (size_t)r;
		else if (r == 0)
			break; /* shorter than it was: take what is there */
		else if (errno != EINTR)
			e = IDB_E_IO;
	}
	close(fd);
	if (e != IDB_OK) {
		free(buf);
		return e;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return IDB_OK;
}

/* ---- one database, copied with the online backup API ---------------- */

/*
 * Creates path (0600, O_EXCL, so nothing else is ever overwritten) and opens
 * it keyed with key, in rollback-journal mode. *out is the caller's.
 */
static enum idb_err
open_new(const char *path, const unsigned char key[IDB_KEY_LEN], sqlite3 **out)
{
	char spec[IDB_KEY_SPEC_LEN];
	int fd, rc;

	*out = NULL;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		return errno == EEXIST ? IDB_E_EXISTS : IDB_E_IO;
	close(fd);
	if (sqlite3_open_v2(path, out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		return IDB_E_IO;
	idb_key_spec(key, spec);
	rc = sqlite3_key(*out, spec, (int)strlen(spec));
	sodium_memzero(spec, sizeof(spec));
	return rc == SQLITE_OK ? IDB_OK : IDB_E_CRYPTO;
}

/*
 * Steps b until it is done, or for nPage pages (0: only takes the locks),
 * waiting while a lock is busy. Returns the last SQLite result code.
 */
static int
backup_step(sqlite3_backup *b, int pages)
{
	int rc, waited = 0;

	while ((rc = sqlite3_backup_step(b, pages)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
		if (waited >= COPY_WAIT_MS)
			break;
		sqlite3_sleep(COPY_STEP_MS);
		waited += COPY_STEP_MS;
	}
	return rc;
}

/* The whole of src into dst in one step: one snapshot of src, one transaction on dst. */
static enum idb_err
backup_run(sqlite3 *dst, sqlite3 *src)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	int rc;

	if (b == NULL)
		return IDB_E_DB;
	rc = backup_step(b, -1);
	if (sqlite3_backup_finish(b) != SQLITE_OK || rc != SQLITE_DONE)
		return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? IDB_E_UNAVAILABLE : IDB_E_DB;
	return IDB_OK;
}

/*
 * The copied page 1 says WAL (the source's mode); a copy must be one file
 * that opens alone, even read-only, so it leaves WAL mode here (SQLite folds
 * and removes the -wal it opened for it).
 */
static enum idb_err
journal_delete(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	enum idb_err e = IDB_E_DB;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = DELETE", -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	if (sqlite3_step(st) == SQLITE_ROW && (mode = sqlite3_column_text(st, 0)) != NULL &&
	    strcmp((const char *)mode, "delete") == 0)
		e = IDB_OK;
	sqlite3_finalize(st);
	return e;
}

/*
 * Copies the database of src (a consistent snapshot) to a new file final,
 * encrypted with key: written as final.tmp, closed cleanly, fsynced, then
 * renamed, so final is either absent or whole. Fills f's bytes, sha256 and
 * schema_version (read from the copy, with set's checksums). The caller
 * fsyncs final's folder. On failure nothing is left and why says what.
 */
static enum idb_err
copy_db(sqlite3 *src, const char *final, const unsigned char key[IDB_KEY_LEN], const struct idb_mig_set *set,
        struct idb_backup_file *f, char *why, size_t whylen)
{
	char tmp[IDB_PATH_MAX];
	sqlite3 *dst = NULL;
	enum idb_err e;

	if ((e = psuffix(tmp, final, ".tmp")) != IDB_OK) {
		snprintf(why, whylen, "path too long");
		return e;
	}
	if ((e = open_new(tmp, key, &dst)) != IDB_OK) {
		snprintf(why, whylen, "%s: cannot create the copy", tmp);
		if (e == IDB_E_EXISTS)
			return e; /* not ours: leave it */
		goto fail;
	}
	if ((e = backup_run(dst, src)) != IDB_OK) {
		snprintf(why, whylen, "copy failed: %s",
		         e == IDB_E_UNAVAILABLE ? "the database stayed locked" : sqlite3_errmsg(dst));
		goto fail;
	}
	if ((e = journal_delete(dst)) != IDB_OK || (e = idb_mig_current(dst, set, &f->schema_version)) != IDB_OK) {
		snprintf(why, whylen, "the copy does not read back: %s", idb_err_str(e));
		goto fail;
	}
	if (sqlite3_close(dst) != SQLITE_OK) {
		snprintf(why, whylen, "the copy does not close cleanly");
		e = IDB_E_DB;
		goto fail;
	}
	dst = NULL;
	if ((e = digest_file(tmp, 1, &f->bytes, f->sha256)) != IDB_OK || rename(tmp, final) != 0) {
		snprintf(why, whylen, "%s: cannot sync or rename the copy", tmp);
		e = IDB_E_IO;
		goto fail;
	}
	return IDB_OK;
fail:
	idb_db_close(dst);
	unlink_db(tmp);
	return e;
}

/*
 * An access-log entry of the system (actor system/immidb-admin) in its own
 * transaction on db. *seq (if not NULL) receives its seq.
 */
static enum idb_err
log_entry(sqlite3 *db, const char *via, const char *action, const char *detail, long long *seq)
{
	struct idb_log_entry le;
	enum idb_err e;

	memset(&le, 0, sizeof(le));
	le.actor_kind = "system";
	le.actor_id = "immidb-admin";
	le.via = via;
	le.action = action;
	le.target = "database";
	le.outcome = "ok";
	le.detail = detail;
	if ((e = idb_db_begin(db)) == IDB_OK && (e = idb_log_append(db, &le)) == IDB_OK)
		e = idb_db_commit(db);
	if (e != IDB_OK)
		idb_db_rollback(db);
	else if (seq != NULL)
		*seq = le.seq;
	return e;
}

/* Runs PRAGMA integrity_check; its first line into why unless it is "ok". */
static enum idb_err
integrity(sqlite3 *db, char *why, size_t whylen)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *t;
	enum idb_err e = IDB_E_DB;

	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
		snprintf(why, whylen, "integrity check failed: %s", sqlite3_errmsg(db));
		return IDB_E_DB;
	}
	if (sqlite3_step(st) == SQLITE_ROW && (t = sqlite3_column_text(st, 0)) != NULL) {
		if (strcmp((const char *)t, "ok") == 0)
			e = IDB_OK;
		else
			snprintf(why, whylen, "integrity check failed: %.200s", (const char *)t);
	} else
		snprintf(why, whylen, "integrity check failed: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return e;
}

/* ---- a whole backup ---------------------------------------------------- */

enum idb_err
idb_backup_default_dir(const struct idb_conf *c, char out[IDB_PATH_MAX])
{
	char now[IDB_TIME_LEN], day[11];
	int n;

	idb_time_now(now);
	memcpy(day, now, 10);
	day[10] = '\0';
	n = snprintf(out, IDB_PATH_MAX, "%s/backups/%s", c->data_dir, day);
	return n > 0 && n < IDB_PATH_MAX ? IDB_OK : IDB_E_TOOBIG;
}

/* dir without its trailing slashes (so that its last component names the backup). */
static enum idb_err
trim_dir(char out[IDB_PATH_MAX], const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 0 || n >= IDB_PATH_MAX)
		return IDB_E_TOOBIG;
	memcpy(out, dir, n);
	out[n] = '\0';
	return IDB_OK;
}

/* 1 if the folder has no entry but . and .. (0 if not, or unreadable). */
static int
dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int empty = 1;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

/* Creates dir (0700), and its parent if that is missing; an existing dir must be empty. */
static enum idb_err
prepare_dir(const char *dir, char *err, size_t errlen)
{
	char parent[IDB_PATH_MAX];
	struct stat st;

	if (mkdir(dir, 0700) == 0)
		return IDB_OK;
	if (errno == ENOENT && dir_of(parent, dir) == IDB_OK && mkdir(parent, 0700) == 0 && mkdir(dir, 0700) == 0)
		return IDB_OK;
	if (errno != EEXIST || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: cannot create the folder", dir);
		return IDB_E_IO;
	}
	if (!dir_empty(dir)) {
		snprintf(err, errlen, "%s: exists and is not empty", dir);
		return IDB_E_EXISTS;
	}
	if (chmod(dir, 0700) != 0) {
		snprintf(err, errlen, "%s: cannot set mode 0700", dir);
		return IDB_E_IO;
	}
	return IDB_OK;
}

/* The manifest's object for one file (NULL if out of memory). */
static cJSON *
file_json(const struct idb_backup_file *f)
{
	cJSON *o = cJSON_CreateObject();
	int ok = o != NULL;

	ok = ok && cJSON_AddStringToObject(o, "name", f->name) != NULL;
	if (f->org_id[0] != '\0')
		ok = ok && cJSON_AddStringToObject(o, "org_id", f->org_id) != NULL;
	else
		ok = ok && cJSON_AddNullToObject(o, "org_id") != NULL;
	ok = ok && cJSON_AddNumberToObject(o, "bytes", (double)f->bytes) != NULL;
	ok = ok && cJSON_AddStringToObject(o, "sha256", f->sha256) != NULL;
	ok = ok && cJSON_AddNumberToObject(o, "schema_version", f->schema_version) != NULL;
	if (f->org_id[0] != '\0')
		ok = ok && cJSON_AddNumberToObject(o, "db_key_version", f->db_key_version) != NULL;
	else
		ok = ok && cJSON_AddNullToObject(o, "db_key_version") != NULL;
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static enum idb_err
add_file(cJSON *files, const struct idb_backup_file *f)
{
	cJSON *o = file_json(f);

	if (o == NULL || !cJSON_AddItemToArray(files, o)) {
		cJSON_Delete(o);
		return IDB_E_NOMEM;
	}
	return IDB_OK;
}

/* The registry, from the caller's handle, encrypted with the registry key. */
static enum idb_err
backup_registry(sqlite3 *reg, const struct idb_master *m, const char *dir, cJSON *files, char *err, size_t errlen)
{
	unsigned char key[IDB_KEY_LEN];
	struct idb_backup_file f;
	char path[IDB_PATH_MAX], why[IDB_BACKUP_ERR_MAX];
	enum idb_err e;

	memset(&f, 0, sizeof(f));
	memcpy(f.name, reg_name, sizeof(reg_name));
	if ((e = pjoin(path, dir, reg_name)) != IDB_OK || (e = idb_key_registry(m, key)) != IDB_OK) {
		snprintf(err, errlen, "registry: %s", idb_err_str(e));
		return e;
	}
	e = copy_db(reg, path, key, &idb_mig_registry, &f, why, sizeof(why));
	sodium_memzero(key, sizeof(key));
	if (e == IDB_OK)
		e = add_file(files, &f);
	if (e != IDB_OK)
		snprintf(err, errlen, "registry: %s", e == IDB_E_NOMEM ? "out of memory" : why);
	return e;
}

/*
 * One org: opened with whichever of its database keys opens it, logged
 * (unless its schema is behind: the log may not exist yet), then copied
 * under that same key, whose version goes into the manifest.
 */
static enum idb_err
backup_org(const struct idb_conf *c, sqlite3 *reg, const struct idb_master *m, const char *dir,
           const struct idb_org *o, struct idb_backup_file *f, char *why, size_t whylen)
{
	char path[IDB_PATH_MAX];
	struct idb_org_keys k;
	sqlite3 *db = NULL;
	enum idb_err e, opened;

	memset(f, 0, sizeof(*f));
	opened = idb_org_open_keys(c, reg, m, o->id, IDB_DB_ANY_SCHEMA, &db, &k);
	if (opened != IDB_OK && opened != IDB_E_SCHEMA_BEHIND) {
		snprintf(why, whylen, "does not open: %s", idb_err_str(opened));
		return opened;
	}
	memcpy(f->org_id, o->id, sizeof(f->org_id));
	f->db_key_version = k.db_version;
	if (snprintf(f->name, sizeof(f->name), "%s.db", o->id) >= (int)sizeof(f->name) ||
	    (e = pjoin(path, dir, f->name)) != IDB_OK) {
		snprintf(why, whylen, "path too long");
		e = IDB_E_TOOBIG;
		goto out;
	}
	/* Fail closed, as every read by a command: no entry, no copy. */
	if (opened == IDB_OK && (e = log_entry(db, "system", "backup.create", base_name(dir), NULL)) != IDB_OK) {
		snprintf(why, whylen, "cannot write the backup.create entry; not copied");
		goto out;
	}
	e = copy_db(db, path, k.db, &idb_mig_org, f, why, whylen);
out:
	idb_org_keys_wipe(&k);
	idb_db_close(db);
	return e;
}

struct org_vec {
	size_t n, cap;
	struct idb_org *v;
	int nomem;
};

static void
org_push(const struct idb_org *o, void *arg)
{
	struct org_vec *ov = arg;
	struct idb_org *nv;

	if (ov->n == ov->cap) {
		ov->cap = ov->cap ? 2 * ov->cap : 16;
		if ((nv = realloc(ov->v, ov->cap * sizeof(*nv))) == NULL) {
			ov->nomem = 1;
			ov->cap = ov->n;
			return;
		}
		ov->v = nv;
	}
	ov->v[ov->n++] = *o;
}

/* An org that could not be copied, for the manifest's "failed" list. */
static enum idb_err
add_failed(cJSON *man, const struct idb_org *o, const char *why)
{
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(man, "failed"), *x = cJSON_CreateObject();
	int ok = x != NULL;

	if (arr == NULL)
		arr = cJSON_AddArrayToObject(man, "failed");
	ok = ok && arr != NULL && cJSON_AddStringToObject(x, "org_id", o->id) != NULL &&
	     cJSON_AddStringToObject(x, "slug", o->slug) != NULL && cJSON_AddStringToObject(x, "error", why) != NULL;
	if (!ok || !cJSON_AddItemToArray(arr, x)) {
		cJSON_Delete(x);
		return IDB_E_NOMEM;
	}
	return IDB_OK;
}

/* MANIFEST.json written last: temporary name, fsync, rename, fsync of the folder. */
static enum idb_err
write_manifest(const char *dir, const cJSON *man, char *err, size_t errlen)
{
	char path[IDB_PATH_MAX], tmp[IDB_PATH_MAX], *text = NULL;
	enum idb_err e;

	if ((e = pjoin(path, dir, IDB_BACKUP_MANIFEST)) != IDB_OK || (e = psuffix(tmp, path, ".tmp")) != IDB_OK) {
		snprintf(err, errlen, "%.400s: path too long", dir);
		return e;
	}
	if ((text = cJSON_Print(man)) == NULL) {
		snprintf(err, errlen, "manifest: out of memory");
		return IDB_E_NOMEM;
	}
	/* The copies' renames must be durable before a manifest names them. */
	if ((e = sync_dir(dir)) != IDB_OK || (e = write_new(tmp, text, strlen(text))) != IDB_OK ||
	    (e = rename(tmp, path) == 0 ? IDB_OK : IDB_E_IO) != IDB_OK || (e = sync_dir(dir)) != IDB_OK) {
		snprintf(err, errlen, "%.400s: cannot write the manifest", path);
		unlink(tmp);
	}
	cJSON_free(text);
	return e;
}

enum idb_err
idb_backup_all(const struct idb_conf *c, sqlite3 *reg, const struct idb_master *m, const char *folder, char *err,
               size_t errlen)
{
	struct org_vec orgs = {0, 0, NULL, 0};
	struct idb_backup_file f;
	char dir[IDB_PATH_MAX], now[IDB_TIME_LEN], why[IDB_BACKUP_ERR_MAX];
	cJSON *man = NULL, *files;
	enum idb_err e, first = IDB_OK;
	size_t i;

	if ((e = trim_dir(dir, folder)) != IDB_OK)
		return say(e, err, errlen, "the backup folder's path is empty or too long");
	if ((e = prepare_dir(dir, err, errlen)) != IDB_OK)
		return e;
	idb_time_now(now);
	if ((man = cJSON_CreateObject()) == NULL || cJSON_AddStringToObject(man, "created_at", now) == NULL ||
	    (files = cJSON_AddArrayToObject(man, "files")) == NULL) {
		e = say(IDB_E_NOMEM, err, errlen, "out of memory");
		goto out;
	}
	if ((e = backup_registry(reg, m, dir, files, err, errlen)) != IDB_OK)
		goto out;
	if ((e = idb_reg_org_list(reg, org_push, &orgs)) != IDB_OK || orgs.nomem) {
		e = say(e != IDB_OK ? e : IDB_E_NOMEM, err, errlen, "registry: cannot list the orgs");
		goto out;
	}
	/* One org that cannot be copied does not cost the others their backup. */
	for (i = 0; i < orgs.n; i++) {
		if ((e = backup_org(c, reg, m, dir, &orgs.v[i], &f, why, sizeof(why))) == IDB_OK)
			e = add_file(files, &f);
		else if (add_failed(man, &orgs.v[i], why) != IDB_OK)
			e = IDB_E_NOMEM;
		if (e == IDB_E_NOMEM) {
			e = say(e, err, errlen, "out of memory");
			goto out;
		}
		if (e != IDB_OK && first == IDB_OK)
			first = say(e, err, errlen, "org %s (%s): %s", orgs.v[i].slug, orgs.v[i].id, why);
	}
	if ((e = write_manifest(dir, man, why, sizeof(why))) != IDB_OK)
		say(e, err, errlen, "%s", why);
	else
		e = first;
out:
	cJSON_Delete(man);
	free(orgs.v);
	return e;
}

/* ---- the manifest, read back ------------------------------------------ */

static int
digits(const char *s, int n)
{
	int v = 0;

	while (n-- > 0)
		v = v * 10 + (*s++ - '0');
	return v;
}

/* "YYYY-MM-DDTHH:MM:SS[.digits]Z" as a time; -1 if it is not that or not a real time. */
static int
parse_utc(const char *s, time_t *out)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	const char *p = s + sizeof(shape) - 1;
	struct tm tm, want;
	size_t i;
	time_t t;

	if (strlen(s) < sizeof(shape))
		return -1;
	for (i = 0; i < sizeof(shape) - 1; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return -1;
	if (*p == '.') {
		if (*++p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (strcmp(p, "Z") != 0)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = digits(s, 4) - 1900;
	tm.tm_mon = digits(s + 5, 2) - 1;
	tm.tm_mday = digits(s + 8, 2);
	tm.tm_hour = digits(s + 11, 2);
	tm.tm_min = digits(s + 14, 2);
	tm.tm_sec = digits(s + 17, 2);
	want = tm;
	/* timegm normalises 2026-02-30 and the like: such a time comes back different. */
	if ((t = timegm(&tm)) == (time_t)-1 || tm.tm_year != want.tm_year || tm.tm_mon != want.tm_mon ||
	    tm.tm_mday != want.tm_mday || tm.tm_hour != want.tm_hour || tm.tm_min != want.tm_min ||
	    tm.tm_sec != want.tm_sec)
		return -1;
	*out = t;
	return 0;
}

/* A JSON number that is a whole number in [min, max]. */
static int
whole(const cJSON *v, double min, double max, long long *out)
{
	double d;

	if (!cJSON_IsNumber(v))
		return -1;
	d = v->valuedouble;
	if (!(d >= min && d <= max) || d != (double)(long long)d)
		return -1;
	*out = (long long)d;
	return 0;
}

static int
is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

/* org_id and db_key_version of one entry: null and null for registry.db, an org's id and version otherwise. */
static enum idb_err
parse_owner(const cJSON *o, struct idb_backup_file *f, char *why, size_t whylen)
{
	const cJSON *org = cJSON_GetObjectItemCaseSensitive(o, "org_id"),
	            *kv = cJSON_GetObjectItemCaseSensitive(o, "db_key_version");
	char expect[IDB_BACKUP_NAME_MAX + 1];
	long long n;

	if (cJSON_IsNull(org)) {
		if (strcmp(f->name, reg_name) != 0 || !(kv == NULL || cJSON_IsNull(kv)))
			return say(IDB_E_VALIDATION, why, whylen, "%s: org_id is null but it is not registry.db",
			           f->name);
		return IDB_OK;
	}
	if (!cJSON_IsString(org) || !idb_id_valid(org->valuestring, 'o'))
		return say(IDB_E_VALIDATION, why, whylen, "%s: org_id is not an org id", f->name);
	memcpy(f->org_id, org->valuestring, IDB_ID_LEN + 1);
	if (snprintf(expect, sizeof(expect), "%s.db", f->org_id) >= (int)sizeof(expect) || strcmp(expect, f->name) != 0)
		return say(IDB_E_VALIDATION, why, whylen, "%s: the name is not <org_id>.db", f->name);
	if (whole(kv, 1, UINT_MAX, &n) != 0)
		return say(IDB_E_VALIDATION, why, whylen, "%s: db_key_version is not a key version", f->name);
	f->db_key_version = (unsigned)n;
	return IDB_OK;
}

/* One entry of "files"; why names the first wrong field. */
static enum idb_err
parse_file(const cJSON *o, struct idb_backup_file *f, char *why, size_t whylen)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name"),
	            *sha = cJSON_GetObjectItemCaseSensitive(o, "sha256");
	enum idb_err e;
	long long n;

	memset(f, 0, sizeof(*f));
	if (!cJSON_IsString(name) || strlen(name->valuestring) > IDB_BACKUP_NAME_MAX)
		return say(IDB_E_VALIDATION, why, whylen, "a file without a valid name");
	memcpy(f->name, name->valuestring, strlen(name->valuestring) + 1);
	if ((e = parse_owner(o, f, why, whylen)) != IDB_OK)
		return e;
	if (whole(cJSON_GetObjectItemCaseSensitive(o, "bytes"), 0, 9007199254740992.0, &f->bytes) != 0)
		return say(IDB_E_VALIDATION, why, whylen, "%s: bytes is not a size", f->name);
	if (!cJSON_IsString(sha) || strlen(sha->valuestring) != 64 || !is_hex64(sha->valuestring))
		return say(IDB_E_VALIDATION, why, whylen, "%s: sha256 is not 64 lowercase hex digits", f->name);
	memcpy(f->sha256, sha->valuestring, 65);
	if (whole(cJSON_GetObjectItemCaseSensitive(o, "schema_version"), 0, INT_MAX, &n) != 0)
		return say(IDB_E_VALIDATION, why, whylen, "%s: schema_version is not a version", f->name);
	f->schema_version = (int)n;
	return IDB_OK;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const struct idb_backup_file *)a)->name, ((const struct idb_backup_file *)b)->name);
}

/* A manifest's "failed" list: how many, and the first org. */
static enum idb_err
parse_failed(const cJSON *arr, struct idb_backup_manifest *m, char *why, size_t whylen)
{
	const cJSON *x, *id;

	if (arr == NULL)
		return IDB_OK;
	if (!cJSON_IsArray(arr))
		return say(IDB_E_VALIDATION, why, whylen, "failed is not a list");
	cJSON_ArrayForEach(x, arr)
	{
		id = cJSON_GetObjectItemCaseSensitive(x, "org_id");
		if (!cJSON_IsString(id) || !idb_id_valid(id->valuestring, 'o'))
			return say(IDB_E_VALIDATION, why, whylen, "failed lists something that is not an org");
		if (m->failed++ == 0)
			memcpy(m->first_failed, id->valuestring, IDB_ID_LEN + 1);
	}
	return IDB_OK;
}

static enum idb_err
parse_manifest(const cJSON *j, struct idb_backup_manifest *m, char *why, size_t whylen)
{
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(j, "created_at"),
	            *files = cJSON_GetObjectItemCaseSensitive(j, "files"), *x;
	enum idb_err e;
	size_t i;
	int n;

	if (!cJSON_IsObject(j))
		return say(IDB_E_VALIDATION, why, whylen, "not a JSON object");
	if (!cJSON_IsString(at) || strlen(at->valuestring) >= IDB_TIME_LEN ||
	    parse_utc(at->valuestring, &m->created) != 0)
		return say(IDB_E_VALIDATION, why, whylen, "created_at is not an RFC 3339 UTC time");
	memcpy(m->created_at, at->valuestring, strlen(at->valuestring) + 1);
	if (!cJSON_IsArray(files) || (n = cJSON_GetArraySize(files)) > IDB_BACKUP_FILES_MAX)
		return say(IDB_E_VALIDATION, why, whylen, "files is not a list (of at most %d)", IDB_BACKUP_FILES_MAX);
	if ((e = parse_failed(cJSON_GetObjectItemCaseSensitive(j, "failed"), m, why, whylen)) != IDB_OK)
		return e;
	if (n > 0 && (m->files = calloc((size_t)n, sizeof(*m->files))) == NULL)
		return say(IDB_E_NOMEM, why, whylen, "out of memory");
	cJSON_ArrayForEach(x, files)
	{
		if ((e = parse_file(x, &m->files[m->n], why, whylen)) != IDB_OK)
			return e;
		m->n++;
	}
	/* Sorted by name: duplicates show here, and lookups are a bsearch. */
	qsort(m->files, m->n, sizeof(*m->files), by_name);
	for (i = 1; i < m->n; i++)
		if (strcmp(m->files[i - 1].name, m->files[i].name) == 0)
			return say(IDB_E_VALIDATION, why, whylen, "%s is listed twice", m->files[i].name);
	return IDB_OK;
}

enum idb_err
idb_backup_manifest_read(const char *dir, struct idb_backup_manifest *m, char *err, size_t errlen)
{
	char path[IDB_PATH_MAX], why[IDB_BACKUP_ERR_MAX], *text = NULL;
	cJSON *j = NULL;
	enum idb_err e;
	size_t len = 0;

	memset(m, 0, sizeof(*m));
	if ((e = pjoin(path, dir, IDB_BACKUP_MANIFEST)) != IDB_OK) {
		snprintf(err, errlen, "%s: path too long", dir);
		return e;
	}
	if ((e = read_small(path, IDB_BACKUP_MANIFEST_MAX, &text, &len)) != IDB_OK) {
		snprintf(err, errlen, "%s: %s", IDB_BACKUP_MANIFEST,
		         e == IDB_E_NOT_FOUND ? "missing" : e == IDB_E_TOOBIG ? "too large" : "cannot be read");
		return e;
	}
	if (strlen(text) != len || (j = cJSON_Parse(text)) == NULL) {
		snprintf(err, errlen, "%s: not valid JSON", IDB_BACKUP_MANIFEST);
		e = IDB_E_INVALID_JSON;
	} else if ((e = parse_manifest(j, m, why, sizeof(why))) != IDB_OK)
		snprintf(err, errlen, "%s: %s", IDB_BACKUP_MANIFEST, why);
	cJSON_Delete(j);
	free(text);
	if (e != IDB_OK)
		idb_backup_manifest_free(m);
	return e;
}

void
idb_backup_manifest_free(struct idb_backup_manifest *m)
{
	if (m == NULL)
		return;
	free(m->files);
	memset(m, 0, sizeof(*m));
}

static const struct idb_backup_file *
manifest_find(const struct idb_backup_manifest *m, const char *name)
{
	struct idb_backup_file key;
	size_t n = strlen(name);

	if (n > IDB_BACKUP_NAME_MAX || m->n == 0)
		return NULL;
	memcpy(key.name, name, n + 1);
	return bsearch(&key, m->files, m->n, sizeof(*m->files), by_name);
}

/* ---- verify ------------------------------------------------------------ */

/* Opens a backup copy read-only (nothing in it changes) with the key the manifest names. */
static enum idb_err
open_copy(sqlite3 *reg, const struct idb_master *m, const char *path, const struct idb_backup_file *f,
          sqlite3 **out)
{
	unsigned char key[IDB_KEY_LEN];
	enum idb_err e;

	if (f->org_id[0] != '\0')
		return idb_org_open_file(reg, m, f->org_id, path, f->db_key_version, IDB_DB_READONLY, out);
	if ((e = idb_key_registry(m, key)) == IDB_OK)
		e = idb_db_open(path, key, IDB_DB_READONLY, out);
	sodium_memzero(key, sizeof(key));
	return e;
}

/* Opens, checks integrity and the schema version of a copy whose bytes matched. */
static enum idb_err
check_content(sqlite3 *reg, const struct idb_master *m, const char *path, const struct idb_backup_file *f,
              char *why, size_t whylen)
{
	sqlite3 *db = NULL;
	enum idb_err e;
	int v = 0;

	if ((e = open_copy(reg, m, path, f, &db)) != IDB_OK) {
		if (f->org_id[0] != '\0')
			snprintf(why, whylen, "does not open with database key version %u: %s", f->db_key_version,
			         idb_err_str(e));
		else
			snprintf(why, whylen, "does not open with the registry key: %s", idb_err_str(e));
		return e;
	}
	if ((e = integrity(db, why, whylen)) == IDB_OK &&
	    (e = idb_mig_current(db, f->org_id[0] ? &idb_mig_org : &idb_mig_registry, &v)) != IDB_OK)
		snprintf(why, whylen, "schema: %s", idb_err_str(e));
	else if (e == IDB_OK && v != f->schema_version) {
		snprintf(why, whylen, "schema version %d, the manifest says %d", v, f->schema_version);
		e = IDB_E_CHECKSUM;
	}
	idb_db_close(db);
	return e;
}

enum idb_err
idb_backup_verify_file(sqlite3 *reg, const struct idb_master *m, const char *dir, const struct idb_backup_file *f,
                       char *why, size_t whylen)
{
	char path[IDB_PATH_MAX], hex[65];
	long long bytes;
	struct stat st;
	enum idb_err e;

	if ((e = pjoin(path, dir, f->name)) != IDB_OK)
		return say(e, why, whylen, "path too long");
	if (lstat(path, &st) != 0)
		return say(IDB_E_NOT_FOUND, why, whylen, errno == ENOENT ? "missing" : "cannot be read");
	if (!S_ISREG(st.st_mode))
		return say(IDB_E_IO, why, whylen, "not a regular file");
	if ((long long)st.st_size != f->bytes)
		return say(IDB_E_CHECKSUM, why, whylen, "wrong size: %lld bytes, the manifest says %lld",
		           (long long)st.st_size, f->bytes);
	if ((e = digest_file(path, 0, &bytes, hex)) != IDB_OK)
		return say(e, why, whylen, "cannot be read");
	if (bytes != f->bytes || strcmp(hex, f->sha256) != 0)
		return say(IDB_E_CHECKSUM, why, whylen, "checksum mismatch (SHA-256 %s, the manifest says %s)", hex,
		           f->sha256);
	return check_content(reg, m, path, f, why, whylen);
}

struct verdict {
	idb_backup_verify_cb cb;
	void *arg;
	char *err;
	size_t errlen;
	int bad;
};

static void
report(struct verdict *v, const char *name, const char *why)
{
	if (v->cb != NULL)
		v->cb(name, why, v->arg);
	if (why != NULL && v->bad++ == 0)
		snprintf(v->err, v->errlen, "%s: %s", name, why);
}

/* Files in the folder that the manifest does not list (the manifest itself aside). */
static enum idb_err
extra_files(const char *dir, const struct idb_backup_manifest *man, struct verdict *v)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return IDB_E_IO;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    strcmp(de->d_name, IDB_BACKUP_MANIFEST) == 0 || manifest_find(man, de->d_name) != NULL)
			continue;
		report(v, de->d_name, "not in the manifest");
	}
	closedir(d);
	return IDB_OK;
}

enum idb_err
idb_backup_verify(sqlite3 *reg, const struct idb_master *m, const char *dir, idb_backup_verify_cb cb, void *arg,
                  char *err, size_t errlen)
{
	struct idb_backup_manifest man;
	const struct idb_backup_file *f;
	struct verdict v = {cb, arg, err, errlen, 0};
	char why[IDB_BACKUP_ERR_MAX], name[IDB_BACKUP_NAME_MAX + 1];
	enum idb_err e;
	size_t i;

	if ((e = idb_backup_manifest_read(dir, &man, err, errlen)) != IDB_OK)
		return e;
	/* The registry first, then the orgs. */
	if ((f = manifest_find(&man, reg_name)) == NULL)
		report(&v, reg_name, "not in the manifest: this backup has no registry");
	else
		report(&v, reg_name, idb_backup_verify_file(reg, m, dir, f, why, sizeof(why)) ? why : NULL);
	for (i = 0; i < man.n; i++)
		if (&man.files[i] != f)
			report(&v, man.files[i].name,
			       idb_backup_verify_file(reg, m, dir, &man.files[i], why, sizeof(why)) ? why : NULL);
	if (man.failed > 0 && snprintf(name, sizeof(name), "%s.db", man.first_failed) < (int)sizeof(name))
		report(&v, name, "not in the backup: the org could not be copied (see \"failed\" in the manifest)");
	if (extra_files(dir, &man, &v) != IDB_OK)
		report(&v, ".", "the folder cannot be listed");
	idb_backup_manifest_free(&man);
	return v.bad ? IDB_E_CHECKSUM : IDB_OK;
}

/* ---- prune ------------------------------------------------------------- */

/* 1 if the folder holds nothing but the manifest and the files it names. */
static int
only_backup_files(const char *dir, const struct idb_backup_manifest *man)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int only = 1;

	if (d == NULL)
		return 0;
	while (only && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
		    strcmp(de->d_name, IDB_BACKUP_MANIFEST) != 0 && manifest_find(man, de->d_name) == NULL)
			only = 0;
	closedir(d);
	return only;
}

/*
 * Deletes one backup folder: its files, then the manifest (last, so that an
 * interrupted prune leaves a folder the next prune still recognises), then
 * the folder.
 */
static enum idb_err
delete_backup(const char *dir, const struct idb_backup_manifest *man, char *why, size_t whylen)
{
	char path[IDB_PATH_MAX];
	size_t i;

	if (!only_backup_files(dir, man))
		return say(IDB_E_EXISTS, why, whylen, "holds files its manifest does not name: left alone");
	for (i = 0; i < man->n; i++)
		if (pjoin(path, dir, man->files[i].name) != IDB_OK || (unlink(path) != 0 && errno != ENOENT))
			return say(IDB_E_IO, why, whylen, "cannot delete %s", man->files[i].name);
	if (pjoin(path, dir, IDB_BACKUP_MANIFEST) != IDB_OK || unlink(path) != 0 || rmdir(dir) != 0)
		return say(IDB_E_IO, why, whylen, "cannot delete the manifest or the folder");
	return IDB_OK;
}

struct names {
	size_t n, cap;
	char (*v)[256];
};

/* The entries of a folder (but . and ..), read before anything in it is deleted. */
static enum idb_err
list_dir(const char *dir, struct names *ns)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char (*nv)[256];
	size_t len;

	memset(ns, 0, sizeof(*ns));
	if (d == NULL)
		return errno == ENOENT ? IDB_OK : IDB_E_IO;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || (len = strlen(de->d_name)) > 255)
			continue;
		if (ns->n == ns->cap) {
			ns->cap = ns->cap ? 2 * ns->cap : 32;
			if ((nv = realloc(ns->v, ns->cap * sizeof(*nv))) == NULL) {
				closedir(d);
				return IDB_E_NOMEM;
			}
			ns->v = nv;
		}
		memcpy(ns->v[ns->n++], de->d_name, len + 1);
	}
	closedir(d);
	return IDB_OK;
}

enum idb_err
idb_backup_prune(const struct idb_conf *c, int keep_days, time_t now, idb_backup_prune_cb cb, void *arg, char *err,
                 size_t errlen)
{
	struct idb_backup_manifest man;
	char root[IDB_PATH_MAX], path[IDB_PATH_MAX], why[IDB_BACKUP_ERR_MAX], what[IDB_BACKUP_ERR_MAX];
	struct names ns;
	struct stat st;
	enum idb_err e;
	size_t i;
	int deleted = 0;

	if (keep_days < IDB_BACKUP_KEEP_MIN)
		return say(IDB_E_VALIDATION, err, errlen, "--keep-days must be at least %d", IDB_BACKUP_KEEP_MIN);
	if ((e = pjoin(root, c->data_dir, "backups")) != IDB_OK || (e = list_dir(root, &ns)) != IDB_OK)
		return say(e, err, errlen, "%s/backups: cannot be listed", c->data_dir);
	for (i = 0; i < ns.n; i++) {
		if (pjoin(path, root, ns.v[i]) != IDB_OK || lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
			continue;
		if (idb_backup_manifest_read(path, &man, why, sizeof(why)) != IDB_OK) {
			/* A backup still being written has no manifest yet either. */
			say(IDB_OK, what, sizeof(what), "no valid manifest (%s): left alone", why);
			if (cb != NULL)
				cb(path, IDB_PRUNE_LEFT, what, arg);
			continue;
		}
		if (man.created < now - (time_t)keep_days * DAY_SECONDS) {
			if ((e = delete_backup(path, &man, why, sizeof(why))) == IDB_OK)
				deleted++;
			if (cb != NULL)
				cb(path, e == IDB_OK ? IDB_PRUNE_DELETED : IDB_PRUNE_LEFT, e == IDB_OK ? NULL : why,
				   arg);
		}
		idb_backup_manifest_free(&man);
	}
	free(ns.v);
	if (deleted > 0 && sync_dir(root) != IDB_OK)
		return say(IDB_E_IO, err, errlen, "%s: cannot sync the deletions", root);
	return IDB_OK;
}

/* ---- restore ----------------------------------------------------------- */

/* "20261127T093000.123Z" from an RFC 3339 time with milliseconds: for file names. */
static void
compact_time(const char *at, char out[IDB_TIME_LEN])
{
	size_t i, n = 0;

	for (i = 0; at[i] != '\0' && n + 1 < IDB_TIME_LEN; i++)
		if (at[i] != '-' && at[i] != ':')
			out[n++] = at[i];
	out[n] = '\0';
}

/*
 * Copies the backup's file to tmp (0600, must not exist) and checks, on the
 * bytes copied, the manifest's size and SHA-256: what is checked is what is
 * used afterwards. *made is set once tmp exists (the caller removes it).
 */
static enum idb_err
stage_bytes(const char *dir, const struct idb_backup_file *f, const char *tmp, int *made, char *why, size_t whylen)
{
	char src[IDB_PATH_MAX], hex[65];
	long long bytes = 0;
	int in, out;
	enum idb_err e = IDB_OK;

	if ((e = pjoin(src, dir, f->name)) != IDB_OK)
		return say(e, why, whylen, "path too long");
	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return say(IDB_E_NOT_FOUND, why, whylen, "%s: %s", f->name,
		           errno == ENOENT ? "missing" : "cannot be read");
	if ((out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		close(in);
		return say(IDB_E_IO, why, whylen, "%s: cannot create the temporary copy", tmp);
	}
	*made = 1;
	if (digest_fd(in, out, &bytes, hex) != IDB_OK || fsync(out) != 0)
		e = say(IDB_E_IO, why, whylen, "%s: cannot copy", f->name);
	else if (bytes != f->bytes)
		e = say(IDB_E_CHECKSUM, why, whylen, "%s: wrong size: %lld bytes, the manifest says %lld", f->name, bytes,
		        f->bytes);
	else if (strcmp(hex, f->sha256) != 0)
		e = say(IDB_E_CHECKSUM, why, whylen, "%s: checksum mismatch", f->name);
	close(in);
	if (close(out) != 0 && e == IDB_OK)
		e = say(IDB_E_IO, why, whylen, "%s: cannot copy", f->name);
	return e;
}

/*
 * Makes the staged copy ready to go in: opens it with the manifest's key
 * version, checks it, migrates it if it is behind, and appends the
 * backup.restore entry, so that the entry goes in with the content, in the
 * same write transaction, or not at all.
 */
static enum idb_err
stage_db(sqlite3 *reg, const struct idb_master *m, const struct idb_org *o, const struct idb_backup_file *f,
         const char *tmp, const char *detail, sqlite3 **out, struct idb_restore_info *info, char *why, size_t whylen)
{
	sqlite3 *db = NULL;
	enum idb_err e;
	int applied;

	if ((e = idb_org_open_file(reg, m, o->id, tmp, f->db_key_version, 0, &db)) != IDB_OK) {
		snprintf(why, whylen, "%s: does not open with database key version %u: %s", f->name, f->db_key_version,
		         idb_err_str(e));
		return e;
	}
	if ((e = integrity(db, why, whylen)) != IDB_OK)
		goto out;
	if ((e = idb_mig_current(db, &idb_mig_org, &info->schema_backup)) != IDB_OK) {
		snprintf(why, whylen, "%s: schema: %s", f->name,
		         e == IDB_E_SCHEMA_AHEAD ? "newer than this binary knows" : idb_err_str(e));
		goto out;
	}
	if (info->schema_backup < idb_mig_latest(&idb_mig_org) &&
	    (e = idb_mig_apply(db, &idb_mig_org, NULL, NULL, &applied, why, whylen)) != IDB_OK)
		goto out;
	info->schema_now = idb_mig_latest(&idb_mig_org);
	if ((e = log_entry(db, "server", "backup.restore", detail, &info->log_seq)) != IDB_OK)
		snprintf(why, whylen, "cannot write the backup.restore entry into the restored copy");
out:
	if (e != IDB_OK) {
		idb_db_close(db);
		db = NULL;
	}
	*out = db;
	return e;
}

/*
 * Copies the staged database src into the live file. The backup object
 * first takes the live database's write lock (a step of 0 pages); while it
 * holds it, nobody can commit, so the copy kept aside (read through a second
 * connection) is exactly the content being replaced. The remaining step
 * writes every page through SQLite's WAL as one transaction: the workers'
 * connections see the new content at their next read (the schema cookie
 * changes too, so their org cache opens the file again), and a crash leaves
 * either the old or the new content.
 */
static enum idb_err
swap_in(const struct idb_conf *c, sqlite3 *reg, const struct idb_master *m, const struct idb_org *o, sqlite3 *src,
        const char *aside, struct idb_restore_info *info, char *why, size_t whylen)
{
	struct idb_org_keys k, k2;
	struct idb_backup_file af;
	sqlite3 *live = NULL, *reader = NULL;
	sqlite3_backup *b = NULL;
	enum idb_err e;
	int rc, kept = 0;

	/* Two connections to the live file: the copy's destination, and the reader of the content it replaces. */
	memset(&k2, 0, sizeof(k2));
	if (((e = idb_org_open_keys(c, reg, m, o->id, IDB_DB_ANY_SCHEMA, &live, &k)) != IDB_OK &&
	     e != IDB_E_SCHEMA_BEHIND) ||
	    ((e = idb_org_open_keys(c, reg, m, o->id, IDB_DB_ANY_SCHEMA, &reader, &k2)) != IDB_OK &&
	     e != IDB_E_SCHEMA_BEHIND)) {
		snprintf(why, whylen, "the live database does not open: %s", idb_err_str(e));
		goto out;
	}
	e = IDB_OK;
	if ((b = sqlite3_backup_init(live, "main", src, "main")) == NULL) {
		snprintf(why, whylen, "cannot start the copy: %s", sqlite3_errmsg(live));
		e = IDB_E_DB;
		goto out;
	}
	if ((rc = backup_step(b, 0)) != SQLITE_OK) {
		snprintf(why, whylen, "cannot lock the live database: %s", sqlite3_errstr(rc));
		e = rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? IDB_E_UNAVAILABLE : IDB_E_DB;
		goto out;
	}
	memset(&af, 0, sizeof(af));
	if ((e = copy_db(reader, aside, k.db, &idb_mig_org, &af, why, whylen)) != IDB_OK)
		goto out;
	kept = 1;
	info->replaced_key_version = k.db_version;
	if ((rc = backup_step(b, -1)) != SQLITE_DONE) {
		snprintf(why, whylen, "the copy into the live database failed: %s", sqlite3_errstr(rc));
		e = IDB_E_DB;
		goto out;
	}
	rc = sqlite3_backup_finish(b);
	b = NULL;
	if (rc != SQLITE_OK) {
		snprintf(why, whylen, "the copy into the live database failed: %s", sqlite3_errstr(rc));
		e = IDB_E_DB;
	}
out:
	if (b != NULL)
		sqlite3_backup_finish(b); /* rolls the live database back and releases its lock */
	if (e != IDB_OK && kept)
		unlink(aside);
	idb_org_keys_wipe(&k);
	idb_org_keys_wipe(&k2);
	idb_db_close(reader);
	idb_db_close(live);
	return e;
}

/* The manifest's file of org o, checked against what this binary can open. */
static enum idb_err
restore_file(const struct idb_backup_manifest *man, const struct idb_org *o, const struct idb_backup_file **out,
             char *why, size_t whylen)
{
	char name[IDB_BACKUP_NAME_MAX + 1];

	if (snprintf(name, sizeof(name), "%s.db", o->id) >= (int)sizeof(name) ||
	    (*out = manifest_find(man, name)) == NULL)
		return say(IDB_E_NOT_FOUND, why, whylen, "the backup holds no file of org %s (%s)", o->slug, o->id);
	if ((*out)->schema_version > idb_mig_latest(&idb_mig_org))
		return say(IDB_E_SCHEMA_AHEAD, why, whylen, "%s: schema version %d is newer than this binary knows (%d)",
		           name, (*out)->schema_version, idb_mig_latest(&idb_mig_org));
	return IDB_OK;
}

/* The names of a restore: the live file, the temporary copy, the replaced content; and the entry's detail. */
static enum idb_err
restore_names(const struct idb_conf *c, const struct idb_org *o, const struct idb_backup_manifest *man,
              char live[IDB_PATH_MAX], char tmp[IDB_PATH_MAX], char aside[IDB_PATH_MAX], char *detail, size_t dlen)
{
	char now[IDB_TIME_LEN], stamp[IDB_TIME_LEN];

	idb_time_now(now);
	compact_time(now, stamp);
	if (idb_org_path(c, o->id, live) != IDB_OK ||
	    snprintf(tmp, IDB_PATH_MAX, "%s.restore-%s", live, stamp) >= IDB_PATH_MAX ||
	    snprintf(aside, IDB_PATH_MAX, "%s.replaced-%s", live, stamp) >= IDB_PATH_MAX ||
	    snprintf(detail, dlen, "from the backup created_at %s; replaced content kept as %s", man->created_at,
	             base_name(aside)) >= (int)dlen)
		return IDB_E_TOOBIG;
	return IDB_OK;
}

enum idb_err
idb_backup_restore(const struct idb_conf *c, sqlite3 *reg, const struct idb_master *m, const struct idb_org *o,
                   const char *dir, struct idb_restore_info *info, char *err, size_t errlen)
{
	struct idb_backup_manifest man;
	const struct idb_backup_file *f = NULL;
	char live[IDB_PATH_MAX], tmp[IDB_PATH_MAX], orgs[IDB_PATH_MAX], detail[256];
	sqlite3 *src = NULL;
	enum idb_err e;
	int made = 0;

	memset(info, 0, sizeof(*info));
	if ((e = idb_backup_manifest_read(dir, &man, err, errlen)) != IDB_OK)
		return e;
	if ((e = restore_file(&man, o, &f, err, errlen)) != IDB_OK)
		goto out;
	memcpy(info->created_at, man.created_at, sizeof(info->created_at));
	if ((e = restore_names(c, o, &man, live, tmp, info->replaced, detail, sizeof(detail))) != IDB_OK) {
		say(e, err, errlen, "%s: path too long", c->data_dir);
		goto out;
	}
	if ((e = stage_bytes(dir, f, tmp, &made, err, errlen)) != IDB_OK ||
	    (e = stage_db(reg, m, o, f, tmp, detail, &src, info, err, errlen)) != IDB_OK ||
	    (e = swap_in(c, reg, m, o, src, info->replaced, info, err, errlen)) != IDB_OK)
		goto out;
	/* The restore itself is durable through SQLite; this makes the aside file's name durable too. */
	if (dir_of(orgs, live) == IDB_OK)
		(void)sync_dir(orgs);
out:
	idb_db_close(src);
	if (made)
		unlink_db(tmp);
	idb_backup_manifest_free(&man);
	return e;
}
