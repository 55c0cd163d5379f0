/* SPDX-License-Identifier: ISC */
/* Key rotation of one organization: see rotate.h for the steps. */
#include "api/rotate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/records_impl.h"
#include "audit/accesslog.h"
#include "auth/sysadmin.h"
#include "core/buf.h"
#include "crypto/field.h"
#include "store/db.h"

/* The sensitive columns: those of the record tables, and the users' TOTP secrets. */
#define MAX_COLS 16

struct scol {
	const char *table, *column;
	int last4;
};

static size_t
sensitive_columns(struct scol out[MAX_COLS])
{
	static const struct idb_resource *const res[] = {&idb_res_clients, &idb_res_cases, &idb_res_events,
	                                                   &idb_res_notes, &idb_res_credentials};
	size_t i, j, n = 0;

	for (i = 0; i < sizeof(res) / sizeof(res[0]); i++)
		for (j = 0; j < res[i]->ncols && n < MAX_COLS - 1; j++)
			if (res[i]->cols[j].kind == IDB_CK_SECRET) {
				out[n].table = res[i]->name;
				out[n].column = res[i]->cols[j].name;
				out[n++].last4 = (res[i]->cols[j].flags & IDB_CF_LAST4) != 0;
			}
	out[n].table = "users";
	out[n].column = "totp_secret";
	out[n++].last4 = 0;
	return n;
}

/* The test hook: exit right after the named step, as a crash there would. */
static void
crash_point(const char *step)
{
	const char *at = getenv("IMMIDB_TEST_CRASH_AT");

	if (at != NULL && strcmp(at, step) == 0)
		_exit(70);
}

static enum idb_err
entry(sqlite3 *db, const char *detail)
{
	struct idb_log_entry le;

	memset(&le, 0, sizeof(le));
	le.actor_kind = "system";
	le.actor_id = "immidb-admin";
	le.via = "server";
	le.action = "keys.rotate";
	le.target = "keys";
	le.outcome = "ok";
	le.detail = detail;
	return idb_log_append(db, &le);
}

/* Encrypts one stored value again: old -> new key, same associated data. */
static enum idb_err
reencrypt_value(const char *org_id, const struct scol *c, const char *row_id, const struct idb_org_keys *from,
                const struct idb_org_keys *to, const unsigned char *blob, size_t len, sqlite3_stmt *up)
{
	struct idb_field_ad ad = {org_id, c->table, row_id, c->column};
	unsigned char *plain, *out, h[16];
	size_t n = 0;
	enum idb_err e;

	if (len < IDB_FIELD_OVERHEAD || len - IDB_FIELD_OVERHEAD > IDB_FIELD_MAX)
		return IDB_E_CRYPTO;
	if ((plain = malloc(len)) == NULL)
		return IDB_E_NOMEM;
	if ((out = malloc(len)) == NULL) {
		free(plain);
		return IDB_E_NOMEM;
	}
	if ((e = idb_field_decrypt(from->field, from->field_version, &ad, blob, len, plain, &n)) == IDB_OK &&
	    (e = idb_field_encrypt(to->field, to->field_version, &ad, plain, n, out)) == IDB_OK) {
		sqlite3_bind_blob(up, 1, out, (int)(n + IDB_FIELD_OVERHEAD), SQLITE_TRANSIENT);
		/* Bindings outlive sqlite3_reset: a short value must not keep the row before's hash. */
		if (c->last4 && n >= 4) {
			idb_rec_last4(to, (const char *)plain + n - 4, h);
			sqlite3_bind_blob(up, 2, h, sizeof(h), SQLITE_TRANSIENT);
		} else if (c->last4)
			sqlite3_bind_null(up, 2);
		sqlite3_bind_text(up, c->last4 ? 3 : 2, row_id, -1, SQLITE_TRANSIENT);
		e = sqlite3_step(up) == SQLITE_DONE ? IDB_OK : IDB_E_DB;
		sqlite3_reset(up);
	}
	sodium_memzero(plain, len);
	free(plain);
	free(out);
	return e;
}

/*
 * The statements of one column, assembled from the fixed identifiers of our
 * own tables (as the record engine does): no value ever enters the text.
 */
static enum idb_err
column_sql(const struct scol *c, struct idb_buf *sel, struct idb_buf *upd)
{
	idb_buf_addstr(sel, "SELECT id, ");
	idb_buf_addstr(sel, c->column);
	idb_buf_addstr(sel, " FROM ");
	idb_buf_addstr(sel, c->table);
	idb_buf_addstr(sel, " WHERE ");
	idb_buf_addstr(sel, c->column);
	idb_buf_addstr(sel, " IS NOT NULL");
	idb_buf_addstr(upd, "UPDATE ");
	idb_buf_addstr(upd, c->table);
	idb_buf_addstr(upd, " SET ");
	idb_buf_addstr(upd, c->column);
	idb_buf_addstr(upd, " = ?");
	if (c->last4) {
		idb_buf_addstr(upd, ", ");
		idb_buf_addstr(upd, c->column);
		idb_buf_addstr(upd, "_last4 = ?");
	}
	idb_buf_addstr(upd, " WHERE id = ?");
	return sel->data != NULL && upd->data != NULL ? IDB_OK : IDB_E_NOMEM;
}

/* Every value of one column. */
static enum idb_err
reencrypt_column(sqlite3 *db, const char *org_id, const struct scol *c, const struct idb_org_keys *from,
                 const struct idb_org_keys *to, long long *count)
{
	char row_id[IDB_ID_LEN + 1];
	struct idb_buf sel, upd;
	sqlite3_stmt *st = NULL, *up = NULL;
	enum idb_err e = IDB_OK;
	int rc = SQLITE_DONE;

	idb_buf_init(&sel, 256);
	idb_buf_init(&upd, 256);
	if ((e = column_sql(c, &sel, &upd)) != IDB_OK)
		goto out;
	if (sqlite3_prepare_v2(db, sel.data, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, upd.data, -1, &up, NULL) != SQLITE_OK) {
		e = IDB_E_DB;
		goto out;
	}
	while (e == IDB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		idb_db_text(row_id, sizeof(row_id), st, 0);
		e = reencrypt_value(org_id, c, row_id, from, to, sqlite3_column_blob(st, 1),
		                    (size_t)sqlite3_column_bytes(st, 1), up);
		if (e == IDB_OK)
			(*count)++;
	}
	if (e == IDB_OK && rc != SQLITE_DONE)
		e = IDB_E_DB;
out:
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	idb_buf_free(&sel);
	idb_buf_free(&upd);
	return e;
}

static const char sql_state_set[] = "UPDATE key_state SET version = ? WHERE purpose = 'field'";

/* Step 2: every value under the new field key, and key_state, in one transaction. */
static enum idb_err
rotate_fields(sqlite3 *db, const struct idb_org *o, const struct idb_org_keys *from, const struct idb_org_keys *to,
              long long *count, char *err, size_t errlen)
{
	struct scol cols[MAX_COLS];
	sqlite3_stmt *st = NULL;
	char detail[96];
	size_t i, n = sensitive_columns(cols);
	unsigned now;
	enum idb_err e;

	if ((e = idb_db_begin(db)) != IDB_OK)
		return e;
	/* Under the write lock: the version the values are under now. */
	if (idb_org_field_version(db, &now) != IDB_OK || now != from->field_version) {
		idb_db_rollback(db);
		snprintf(err, errlen, "the field key version changed underneath; run it again");
		return IDB_E_CONFLICT;
	}
	for (i = 0; i < n && e == IDB_OK; i++)
		if ((e = reencrypt_column(db, o->id, &cols[i], from, to, count)) != IDB_OK)
			snprintf(err, errlen, "%s.%s: %s", cols[i].table, cols[i].column, idb_err_str(e));
	if (e == IDB_OK && sqlite3_prepare_v2(db, sql_state_set, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, to->field_version);
		e = sqlite3_step(st) == SQLITE_DONE ? IDB_OK : IDB_E_DB;
	} else if (e == IDB_OK)
		e = IDB_E_DB;
	sqlite3_finalize(st);
	/* A schema change in the same transaction: open handles look again. */
	if (e == IDB_OK && ((e = idb_db_exec(db, "DROP INDEX key_state_version")) != IDB_OK ||
	                    (e = idb_db_exec(db, "CREATE INDEX key_state_version ON key_state(version)")) != IDB_OK))
		snprintf(err, errlen, "cannot mark the new field key version");
	snprintf(detail, sizeof(detail), "field key version %u to %u, %lld values", from->field_version,
	         to->field_version, *count);
	if (e == IDB_OK && (e = entry(db, detail)) != IDB_OK)
		snprintf(err, errlen, "cannot write the access-log entry");
	if (e == IDB_OK)
		e = idb_db_commit(db);
	if (e != IDB_OK)
		idb_db_rollback(db);
	return e;
}

/*
 * Step 3: the whole file under the new database key, one transaction (PRAGMA
 * rekey). SQLCipher's sqlite3_rekey answers SQLITE_OK even when it could not
 * rewrite the file (the write lock busy past the timeout, an I/O error), and
 * the handle then encrypts every page it writes under the new key while the
 * file stays under the old one: a write through it would leave a file that
 * neither key opens. So whether the rekey happened is asked of a new
 * connection with the new key, and nothing more is written through db: the
 * checkpoint and the access-log entry go through the new connection.
 */
static enum idb_err
rekey(const struct idb_conf *conf, const char *org_id, sqlite3 *db, const unsigned char key[IDB_KEY_LEN],
      unsigned from, unsigned to, char *err, size_t errlen)
{
	char spec[IDB_KEY_SPEC_LEN], detail[64], path[IDB_PATH_MAX];
	sqlite3 *check = NULL;
	enum idb_err e;
	int rc;

	if ((e = idb_org_path(conf, org_id, path)) != IDB_OK)
		return e;
	idb_key_spec(key, spec);
	rc = sqlite3_rekey(db, spec, (int)strlen(spec));
	sodium_memzero(spec, sizeof(spec));
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "rekey failed: %s", sqlite3_errmsg(db));
		return IDB_E_DB;
	}
	crash_point("rekey");
	if ((e = idb_db_open(path, key, 0, &check)) != IDB_OK) {
		snprintf(err, errlen, "%s",
		         e == IDB_E_BADKEY ? "the database was not rekeyed (busy?); nothing was lost: run it again"
		                           : "cannot open the database under the new key");
		return e == IDB_E_BADKEY ? IDB_E_BUSY : e;
	}
	/* Best effort: copy the rewritten pages into the file now, so the old
	 * key stops opening even a copy of the main file alone. */
	sqlite3_exec(check, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	snprintf(detail, sizeof(detail), "database key version %u to %u", from, to);
	if ((e = idb_db_begin(check)) == IDB_OK && (e = entry(check, detail)) == IDB_OK)
		e = idb_db_commit(check);
	if (e != IDB_OK) {
		idb_db_rollback(check);
		snprintf(err, errlen, "the database is under the new key, but the access-log entry was not written");
	}
	idb_db_close(check);
	return e;
}

/* Step 1: new key versions in the registry, both in one transaction. */
static enum idb_err
new_versions(sqlite3 *reg, const struct idb_master *m, const char *org_id, unsigned db_to, unsigned field_to)
{
	unsigned char k[IDB_KEY_LEN];
	enum idb_err e;

	if ((e = idb_db_begin(reg)) != IDB_OK)
		return e;
	if ((e = idb_reg_org_key_add(reg, m, org_id, "db", db_to, k)) == IDB_OK)
		e = idb_reg_org_key_add(reg, m, org_id, "field", field_to, k);
	sodium_memzero(k, sizeof(k));
	if (e == IDB_OK)
		e = idb_db_commit(reg);
	if (e != IDB_OK)
		idb_db_rollback(reg);
	return e;
}

enum idb_err
idb_rotate_org(const struct idb_conf *conf, sqlite3 *reg, const struct idb_master *m, const struct idb_org *o,
               struct idb_rotation *r, char *err, size_t errlen)
{
	struct idb_org_keys *from = NULL, *to = NULL;
	unsigned db_max, field_max;
	sqlite3 *db = NULL;
	enum idb_err e;

	memset(r, 0, sizeof(*r));
	snprintf(err, errlen, "%s", "");
	if ((from = sodium_malloc(sizeof(*from))) == NULL || (to = sodium_malloc(sizeof(*to))) == NULL) {
		e = IDB_E_NOMEM;
		goto out;
	}
	if ((e = idb_org_open_keys(conf, reg, m, o->id, 0, &db, from)) != IDB_OK) {
		snprintf(err, errlen, "cannot open the org database: %s", idb_err_str(e));
		goto out;
	}
	if ((e = idb_reg_org_key_latest(reg, o->id, "db", &db_max)) != IDB_OK ||
	    (e = idb_reg_org_key_latest(reg, o->id, "field", &field_max)) != IDB_OK)
		goto out;
	r->db_from = from->db_version;
	r->field_from = from->field_version;
	if (from->db_version == db_max && from->field_version == field_max) {
		r->db_to = db_max + 1;
		r->field_to = field_max + 1;
		if ((e = new_versions(reg, m, o->id, r->db_to, r->field_to)) != IDB_OK) {
			snprintf(err, errlen, "cannot store the new keys in the registry");
			goto out;
		}
		crash_point("registry");
	} else {
		r->resumed = 1;
		r->db_to = db_max;
		r->field_to = field_max;
	}
	if (r->field_from < r->field_to) {
		*to = *from;
		to->field_version = r->field_to;
		if ((e = idb_reg_org_key_at(reg, m, o->id, "field", r->field_to, to->field)) != IDB_OK ||
		    (e = rotate_fields(db, o, from, to, &r->values, err, errlen)) != IDB_OK)
			goto out;
		crash_point("fields");
	}
	if (r->db_from < r->db_to) {
		if ((e = idb_reg_org_key_at(reg, m, o->id, "db", r->db_to, to->db)) != IDB_OK)
			snprintf(err, errlen, "cannot unwrap the new database key: %s", idb_err_str(e));
		else
			e = rekey(conf, o->id, db, to->db, r->db_from, r->db_to, err, errlen);
	}
out:
	if (e != IDB_OK && err[0] == '\0')
		snprintf(err, errlen, "%s", idb_err_str(e));
	idb_db_close(db);
	if (from != NULL)
		sodium_free(from);
	if (to != NULL)
		sodium_free(to);
	return e;
}

/* ---- the master key ------------------------------------------------------ */

/*
 * The master key wraps every other key and its derivation is the registry's
 * database key, so rotating it rewrites the registry. The steps, each
 * leaving a state that opens:
 *   1. the new key is written beside the old one (<master>.new);
 *   2. a complete copy of the registry under the new keys is built
 *      (registry.db.rotating), every wrapped key rewrapped in it;
 *   3. the copy is renamed over registry.db: the commit point;
 *   4. <master>.new is renamed over the master key file.
 * idb_master_recover, run before anything loads the master key, finishes
 * step 4 or undoes 1-2, whichever the registry on disk asks for. The
 * server must be stopped (the registry is held exclusively, or refused).
 * A rotation and every recovery hold <data>/keys.lock (flock, let go at exit
 * or crash): without it, an immidb-admin command started during a rotation
 * (the deliverer's restart, say) could take the rotation for one cut short
 * and delete <master>.new just as the registry is swapped to it.
 */

static enum idb_err
side_paths(const struct idb_conf *c, char newkey[IDB_PATH_MAX], char rotating[IDB_PATH_MAX], char reg[IDB_PATH_MAX])
{
	int n1 = snprintf(newkey, IDB_PATH_MAX, "%s.new", c->master_key_file);
	int n2 = snprintf(rotating, IDB_PATH_MAX, "%s/registry.db.rotating", c->data_dir);

	if (n1 <= 0 || n1 >= IDB_PATH_MAX || n2 <= 0 || n2 >= IDB_PATH_MAX)
		return IDB_E_TOOBIG;
	return idb_reg_path(c, reg);
}

/* 1 if the file at path opens with the registry key of the master key in keyfile. */
static int
opens_with(const char *path, const char *keyfile)
{
	unsigned char k[IDB_KEY_LEN];
	struct idb_master *m = NULL;
	sqlite3 *db = NULL;
	enum idb_err e;

	if (idb_key_master_load(keyfile, &m) != IDB_OK)
		return 0;
	e = idb_key_registry(m, k);
	idb_key_master_free(m);
	if (e == IDB_OK)
		e = idb_db_open(path, k, IDB_DB_READONLY, &db);
	sodium_memzero(k, sizeof(k));
	idb_db_close(db);
	return e == IDB_OK;
}

static enum idb_err
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return IDB_E_IO;
	rc = fsync(fd);
	close(fd);
	return rc == 0 ? IDB_OK : IDB_E_IO;
}

/* The folder of a path (for fsync after a rename). */
static void
dir_of(const char *path, char out[IDB_PATH_MAX])
{
	const char *slash = strrchr(path, '/');
	size_t n = slash == NULL ? 0 : (size_t)(slash - path);

	if (n == 0) {
		memcpy(out, slash == NULL ? "." : "/", 2);
		return;
	}
	memcpy(out, path, n);
	out[n] = '\0';
}

/* A database file with its -wal and -shm (a copy that never became the registry). */
static void
unlink_db(const char *path)
{
	char side[IDB_PATH_MAX + 8];

	if (snprintf(side, sizeof(side), "%s-wal", path) < (int)sizeof(side))
		unlink(side);
	if (snprintf(side, sizeof(side), "%s-shm", path) < (int)sizeof(side))
		unlink(side);
	unlink(path);
}

/* Blocks until this process holds <data>/keys.lock; its descriptor, or -1. */
static int
lock_keys(const struct idb_conf *c)
{
	char path[IDB_PATH_MAX];
	int fd, n = snprintf(path, sizeof(path), "%s/keys.lock", c->data_dir);

	if (n <= 0 || n >= (int)sizeof(path))
		return -1;
	if ((fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return -1;
	/* Readable by the service user even when root made it (flock needs only an open file). */
	(void)fchmod(fd, 0644);
	while (flock(fd, LOCK_EX) != 0)
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	return fd;
}

static void
unlock_keys(int fd)
{
	if (fd >= 0)
		close(fd); /* the lock goes with the last descriptor */
}

/* idb_master_recover with keys.lock held. */
static enum idb_err
recover_locked(const struct idb_conf *c, int *did)
{
	char newkey[IDB_PATH_MAX], rotating[IDB_PATH_MAX], reg[IDB_PATH_MAX], dir[IDB_PATH_MAX];
	enum idb_err e;

	*did = 0;
	if ((e = side_paths(c, newkey, rotating, reg)) != IDB_OK)
		return e;
	if (access(newkey, F_OK) != 0) {
		unlink_db(rotating); /* a copy never committed: the old key still rules */
		return IDB_OK;
	}
	if (opens_with(reg, c->master_key_file)) {
		/* Cut short before the registry was swapped: undo. */
		unlink_db(rotating);
		unlink(newkey);
		*did = 1;
	} else if (opens_with(reg, newkey)) {
		/* Swapped, but the key file not yet renamed: finish. */
		if (rename(newkey, c->master_key_file) != 0)
			return IDB_E_IO;
		*did = 2;
	} else
		return IDB_E_BADKEY;
	dir_of(c->master_key_file, dir);
	return sync_dir(dir);
}

enum idb_err
idb_master_recover(const struct idb_conf *c, int *did)
{
	char newkey[IDB_PATH_MAX], rotating[IDB_PATH_MAX], reg[IDB_PATH_MAX];
	enum idb_err e;
	int fd;

	*did = 0;
	if ((e = side_paths(c, newkey, rotating, reg)) != IDB_OK)
		return e;
	/* The usual case, without touching the lock file: no rotation was ever cut short. */
	if (access(newkey, F_OK) != 0 && access(rotating, F_OK) != 0)
		return IDB_OK;
	if ((fd = lock_keys(c)) < 0)
		return IDB_E_IO;
	e = recover_locked(c, did);
	unlock_keys(fd);
	return e;
}

/* When root runs the rotation, the new files keep the owner of the ones they replace (the service user). */
static enum idb_err
same_owner(const char *path, const char *like)
{
	struct stat st;

	if (geteuid() != 0)
		return IDB_OK;
	if (stat(like, &st) != 0 || chown(path, st.st_uid, st.st_gid) != 0)
		return IDB_E_IO;
	return IDB_OK;
}

/* Step 2: the registry copied under the new master key, every wrapped key rewrapped. */
static enum idb_err
build_copy(sqlite3 *live, const char *rotating, const struct idb_master *m1, const struct idb_master *m2)
{
	unsigned char k2[IDB_KEY_LEN];
	sqlite3_backup *b;
	sqlite3 *dst = NULL;
	enum idb_err e;

	unlink_db(rotating);
	if ((e = idb_key_registry(m2, k2)) == IDB_OK)
		e = idb_db_open(rotating, k2, IDB_DB_CREATE, &dst);
	sodium_memzero(k2, sizeof(k2));
	if (e != IDB_OK)
		return e;
	if ((b = sqlite3_backup_init(dst, "main", live, "main")) == NULL)
		e = IDB_E_DB;
	else {
		if (sqlite3_backup_step(b, -1) != SQLITE_DONE)
			e = IDB_E_DB;
		if (sqlite3_backup_finish(b) != SQLITE_OK)
			e = IDB_E_DB;
	}
	if (e == IDB_OK && (e = idb_db_begin(dst)) == IDB_OK) {
		if ((e = idb_reg_rewrap(dst, m1, m2)) == IDB_OK && (e = idb_sysadmin_rewrap(dst, m1, m2)) == IDB_OK)
			e = idb_db_commit(dst);
		if (e != IDB_OK)
			idb_db_rollback(dst);
	}
	/* One self-contained file, whatever journal the copy took from the source. */
	if (e == IDB_OK)
		e = idb_db_exec(dst, "PRAGMA journal_mode = DELETE");
	idb_db_close(dst);
	if (e != IDB_OK)
		unlink_db(rotating);
	return e;
}

/* The live registry, held exclusively: refused while anything else has it open. */
static enum idb_err
hold_registry(const struct idb_conf *c, const struct idb_master *m, sqlite3 **out)
{
	enum idb_err e;

	if ((e = idb_reg_open(c, m, 0, out)) != IDB_OK)
		return e;
	sqlite3_busy_handler(*out, NULL, NULL);
	if ((e = idb_db_exec(*out, "PRAGMA locking_mode = EXCLUSIVE")) == IDB_OK &&
	    (e = idb_db_exec(*out, "BEGIN EXCLUSIVE")) == IDB_OK)
		e = idb_db_exec(*out, "COMMIT");
	if (e != IDB_OK) {
		idb_db_close(*out);
		*out = NULL;
		return IDB_E_BUSY;
	}
	return IDB_OK;
}

enum idb_err
idb_rotate_master(const struct idb_conf *c, char *err, size_t errlen)
{
	char newkey[IDB_PATH_MAX], rotating[IDB_PATH_MAX], reg[IDB_PATH_MAX], side[IDB_PATH_MAX + 8];
	char dir[IDB_PATH_MAX];
	struct idb_master *m1 = NULL, *m2 = NULL;
	sqlite3 *live = NULL;
	enum idb_err e;
	int did, lock = -1;

	snprintf(err, errlen, "%s", "");
	if ((e = side_paths(c, newkey, rotating, reg)) != IDB_OK) {
		snprintf(err, errlen, "a path is too long");
		return e;
	}
	if ((lock = lock_keys(c)) < 0) {
		snprintf(err, errlen, "cannot lock %s/keys.lock", c->data_dir);
		return IDB_E_IO;
	}
	if ((e = recover_locked(c, &did)) != IDB_OK) {
		snprintf(err, errlen, "cannot finish an earlier rotation: %s", idb_err_str(e));
		goto out;
	}
	if ((e = idb_key_master_load(c->master_key_file, &m1)) != IDB_OK) {
		snprintf(err, errlen, "cannot load the master key");
		goto out;
	}
	if ((e = hold_registry(c, m1, &live)) != IDB_OK) {
		snprintf(err, errlen, e == IDB_E_BUSY ? "the registry is in use: stop immidb-fcgi and the deliverer first"
		                                      : "cannot open the registry");
		goto out;
	}
	if ((e = idb_key_master_create(newkey)) != IDB_OK) {
		snprintf(err, errlen, "cannot write the new master key beside the old one");
		goto out;
	}
	if ((e = same_owner(newkey, c->master_key_file)) != IDB_OK || (e = idb_key_master_load(newkey, &m2)) != IDB_OK) {
		snprintf(err, errlen, "cannot write the new master key beside the old one");
		goto undo;
	}
	dir_of(newkey, dir);
	if ((e = sync_dir(dir)) != IDB_OK) {
		snprintf(err, errlen, "cannot write the new master key beside the old one");
		goto undo;
	}
	crash_point("master-new");
	if ((e = build_copy(live, rotating, m1, m2)) != IDB_OK || (e = same_owner(rotating, reg)) != IDB_OK) {
		snprintf(err, errlen, "cannot build the registry under the new key");
		goto undo;
	}
	crash_point("copy");
	/* Step 3: the old registry closed cleanly (its WAL folded in), then swapped. */
	sqlite3_exec(live, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	idb_db_close(live);
	live = NULL;
	if (snprintf(side, sizeof(side), "%s-wal", reg) > 0 && access(side, F_OK) == 0) {
		struct stat st;

		if (stat(side, &st) != 0 || st.st_size > 0) {
			e = IDB_E_BUSY;
			snprintf(err, errlen, "the registry's WAL is not empty: is the server running?");
			goto undo;
		}
		unlink(side);
	}
	if (snprintf(side, sizeof(side), "%s-shm", reg) > 0)
		unlink(side);
	if (rename(rotating, reg) != 0) {
		e = IDB_E_IO;
		snprintf(err, errlen, "cannot put the new registry in place");
		goto undo;
	}
	/* The commit point. From here on nothing is undone: the old key no longer
	 * opens the registry. The swap must be on disk before the key file moves. */
	dir_of(reg, dir);
	if (sync_dir(dir) != IDB_OK) {
		e = IDB_E_IO;
		snprintf(err, errlen, "the registry is under the new key but its folder could not be synced; any "
		                      "immidb-admin command finishes the rotation");
		goto out;
	}
	crash_point("swap");
	/* Step 4. */
	dir_of(c->master_key_file, dir);
	if (rename(newkey, c->master_key_file) != 0) {
		e = IDB_E_IO;
		snprintf(err, errlen, "the registry is under the new key, in %s; any immidb-admin command finishes the "
		                      "rotation (it renames that file to %s)", newkey, c->master_key_file);
	} else if (sync_dir(dir) != IDB_OK) {
		e = IDB_E_IO;
		snprintf(err, errlen, "rotated, but the folder of %s could not be synced", c->master_key_file);
	}
	goto out;
undo:
	unlink_db(rotating);
	unlink(newkey);
out:
	idb_db_close(live);
	idb_key_master_free(m1);
	idb_key_master_free(m2);
	unlock_keys(lock);
	return e;
}
