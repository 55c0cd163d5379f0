/* SPDX-License-Identifier: ISC */
/*
 * immidb-admin export: the organization's full export (api.md, Export;
 * docs/export-formats.md, immidb-export-v1), the same document as
 * POST .../export, built by idb_export_build. The file holds every secret of
 * the org in clear: it is created 0600 under a temporary name beside its
 * destination and renamed into place only after the access-log entry and
 * the notification have committed (fail closed: no entry, no export).
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/export.h"
#include "audit/accesslog.h"
#include "core/buf.h"
#include "core/util.h"
#include "store/db.h"

#define EXPORT_FILE_MAX ((size_t)1 << 31) /* as immidb-admin log export */

/* The entry to append: who's fields, or the system's, with the defaults filled in. */
static void
entry(struct idb_log_entry *le, const struct idb_log_entry *who, const char *detail)
{
	memset(le, 0, sizeof(*le));
	if (who != NULL) {
		*le = *who;
		le->seq = 0;
		memset(le->prev, 0, sizeof(le->prev));
		memset(le->hash, 0, sizeof(le->hash));
	} else {
		le->actor_kind = "system";
		le->actor_id = "immidb-admin";
	}
	if (le->via == NULL)
		le->via = "server";
	if (le->action == NULL)
		le->action = "org.export";
	if (le->target == NULL)
		le->target = "export";
	if (le->outcome == NULL)
		le->outcome = "ok";
	if (le->detail == NULL)
		le->detail = detail;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The document into a new file "<out>.XXXXXX" (0600, synced); its name into tmp. Non-zero after a message. */
static int
temp_file(const char *out, const struct idb_buf *b, char tmp[IDB_PATH_MAX])
{
	int fd, w = snprintf(tmp, IDB_PATH_MAX, "%s.XXXXXX", out);

	if (w < 0 || w >= IDB_PATH_MAX) {
		tmp[0] = '\0';
		return fail(out, "path too long");
	}
	if ((fd = mkstemp(tmp)) < 0) {
		tmp[0] = '\0';
		return fail(out, strerror(errno));
	}
	if (fchmod(fd, 0600) != 0 || write_all(fd, b->data ? b->data : "", b->len) != 0 || fsync(fd) != 0) {
		close(fd);
		return fail(out, "cannot write the export");
	}
	if (close(fd) != 0)
		return fail(out, "cannot write the export");
	return 0;
}

/* Syncs the folder of path, so that a rename survives a crash (best effort). */
static void
sync_dir(const char *path)
{
	char dir[IDB_PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
	int fd;

	if (n == 0 || n >= sizeof(dir))
		memcpy(dir, ".", 2);
	else {
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* The committed export gets its name (replacing a file of that name) or goes to stdout. */
static int
publish(const char *tmp, const char *out, const struct idb_buf *b)
{
	if (out == NULL) {
		if (fwrite(b->data ? b->data : "", 1, b->len, stdout) != b->len || fflush(stdout) != 0)
			return fail("stdout", "cannot write the export");
		return 0;
	}
	if (rename(tmp, out) != 0)
		return fail(out, strerror(errno));
	sync_dir(out);
	return 0;
}

int
export_run(struct cli *c, const struct idb_org *o, sqlite3 *db, const struct idb_org_keys *k, const char *out_path,
           const struct idb_log_entry *who)
{
	char at[IDB_TIME_LEN], detail[IDB_EXPORT_DETAIL_LEN], tmp[IDB_PATH_MAX];
	struct idb_log_entry le;
	struct idb_buf b;
	enum idb_err e;
	int rc = EXIT_FAILURE;

	(void)c;
	tmp[0] = '\0';
	idb_buf_init(&b, EXPORT_FILE_MAX);
	if (idb_db_begin(db) != IDB_OK) {
		fail("export", "the org's database is busy or not writable; nothing was exported");
		goto out;
	}
	idb_time_now(at);
	if ((e = idb_export_build(db, o, k, at, &b, detail)) != IDB_OK) {
		fail("export", idb_err_str(e));
		goto out;
	}
	entry(&le, who, detail);
	if (idb_log_append(db, &le) != IDB_OK || idb_export_notice(db, &le, NULL) != IDB_OK) {
		fail("access log", "cannot write the entry or the notification; nothing was exported");
		goto out;
	}
	if (out_path != NULL && temp_file(out_path, &b, tmp) != 0)
		goto out;
	if (idb_db_commit(db) != IDB_OK) {
		fail("access log", "cannot commit the entry; nothing was exported");
		goto out;
	}
	if (publish(tmp, out_path, &b) != 0)
		goto out;
	tmp[0] = '\0';
	rc = 0;
out:
	if (rc != 0)
		idb_db_rollback(db);
	if (tmp[0] != '\0')
		unlink(tmp);
	idb_buf_free(&b);
	return rc;
}

int
cmd_export(struct cli *c)
{
	static const char *const vals[] = {"--org", "--out", NULL};
	const char *slug = opt(c, "--org"), *out = opt(c, "--out");
	struct idb_org_keys k;
	struct idb_org o;
	sqlite3 *db = NULL;
	int rc;

	if (check_opts(c, vals, NULL) != 0 || slug == NULL || (out != NULL && *out == '\0'))
		return usage();
	memset(&k, 0, sizeof(k));
	if (open_registry(c, 0) != 0 || open_org(c, slug, &o, &db, &k) != 0)
		return EXIT_FAILURE;
	rc = export_run(c, &o, db, &k, out, NULL);
	idb_org_keys_wipe(&k);
	idb_db_close(db);
	return rc;
}
