/* SPDX-License-Identifier: ISC */
/*
 * immidb-admin backup | backup verify | backup prune | restore (storage.md,
 * Backups). These commands only parse their words and print; the work is in
 * lib/store/backup.c, which migrate uses too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "store/backup.h"

#include "cli/cli.h"

/* One line per file of the manifest just written: name, size, SHA-256, key version. */
static void
print_manifest(const char *dir)
{
	struct idb_backup_manifest man;
	char err[IDB_BACKUP_ERR_MAX];
	size_t i;

	if (idb_backup_manifest_read(dir, &man, err, sizeof(err)) != IDB_OK)
		return;
	for (i = 0; i < man.n; i++) {
		if (man.files[i].org_id[0] != '\0')
			printf("%s\t%lld bytes\tsha256 %s\tschema %d\tdb key v%u\n", man.files[i].name, man.files[i].bytes,
			       man.files[i].sha256, man.files[i].schema_version, man.files[i].db_key_version);
		else
			printf("%s\t%lld bytes\tsha256 %s\tschema %d\n", man.files[i].name, man.files[i].bytes,
			       man.files[i].sha256, man.files[i].schema_version);
	}
	printf("backup of %s written to %s\n", man.created_at, dir);
	idb_backup_manifest_free(&man);
}

int
cmd_backup(struct cli *c)
{
	static const char *const vals[] = {"--out", NULL};
	const char *out = opt(c, "--out");
	char dir[IDB_PATH_MAX];
	enum idb_err e;

	if (check_opts(c, vals, NULL) != 0)
		return usage();
	if (out == NULL && idb_backup_default_dir(&c->conf, dir) != IDB_OK)
		return fail("backup", "the default folder's path is too long");
	if (out != NULL && snprintf(dir, sizeof(dir), "%s", out) >= (int)sizeof(dir))
		return fail("--out", "path too long");
	/* A registry that is behind is copied as it is: migrate backs up before it migrates. */
	if (open_registry(c, 1) != 0)
		return EXIT_FAILURE;
	/* Partial (an org that could not be copied): the manifest lists the others, and this says which. */
	if ((e = idb_backup_all(&c->conf, c->reg, c->master, dir, c->err, sizeof(c->err))) != IDB_OK)
		return fail("backup", c->err);
	print_manifest(dir);
	return 0;
}

static void
verified(const char *name, const char *why, void *arg)
{
	(void)arg;
	printf("%s: %s\n", name, why ? why : "ok");
}

int
cmd_backup_verify(struct cli *c)
{
	if (c->argc != 1 || strncmp(c->argv[0], "--", 2) == 0)
		return usage();
	if (open_registry(c, 1) != 0)
		return EXIT_FAILURE;
	if (idb_backup_verify(c->reg, c->master, c->argv[0], verified, NULL, c->err, sizeof(c->err)) != IDB_OK)
		return fail(c->argv[0], c->err);
	printf("%s: ok\n", c->argv[0]);
	return 0;
}

static void
pruned(const char *path, enum idb_prune_what what, const char *why, void *arg)
{
	(void)arg;
	if (what == IDB_PRUNE_DELETED)
		printf("deleted %s\n", path);
	else
		printf("left %s: %s\n", path, why);
}

int
cmd_backup_prune(struct cli *c)
{
	static const char *const vals[] = {"--keep-days", NULL};
	const char *days = opt(c, "--keep-days");
	long long n;

	if (check_opts(c, vals, NULL) != 0 || days == NULL || idb_parse_ll(days, 0, 36500, &n) != 0)
		return usage();
	if (n < IDB_BACKUP_KEEP_MIN) {
		fprintf(stderr, "immidb-admin: backup prune: --keep-days must be at least %d; nothing was deleted\n",
		        IDB_BACKUP_KEEP_MIN);
		return EXIT_USAGE;
	}
	if (idb_backup_prune(&c->conf, (int)n, time(NULL), pruned, NULL, c->err, sizeof(c->err)) != IDB_OK)
		return fail("backup prune", c->err);
	return 0;
}

int
cmd_restore(struct cli *c)
{
	static const char *const vals[] = {"--org", "--from", NULL};
	const char *slug = opt(c, "--org"), *from = opt(c, "--from");
	struct idb_restore_info info;
	struct idb_org o;
	enum idb_err e;

	if (check_opts(c, vals, NULL) != 0 || slug == NULL || from == NULL)
		return usage();
	if (open_registry(c, 0) != 0)
		return EXIT_FAILURE;
	if ((e = idb_reg_org_find(c->reg, slug, &o)) != IDB_OK)
		return fail(slug, e == IDB_E_NOT_FOUND ? "no such org" : idb_err_str(e));
	if (idb_backup_restore(&c->conf, c->reg, c->master, &o, from, &info, c->err, sizeof(c->err)) != IDB_OK)
		return fail("restore", c->err);
	printf("restored %s from the backup of %s in %s (schema %d, now %d)\n", o.slug, info.created_at, from,
	       info.schema_backup, info.schema_now);
	printf("replaced content kept as %s (database key version %u)\n", info.replaced, info.replaced_key_version);
	printf("access log: backup.restore at seq %lld\n", info.log_seq);
	return 0;
}
