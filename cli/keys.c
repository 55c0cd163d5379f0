/* SPDX-License-Identifier: ISC */
/*
 * immidb-admin keys rotate --org S | keys rotate-master (storage.md, key
 * hierarchy). The work is in lib/api/rotate.c; both are crash-safe and
 * finish a rotation cut short when run again.
 */
#include <stdio.h>
#include <stdlib.h>

#include "api/rotate.h"
#include "cli/cli.h"

int
cmd_keys_rotate(struct cli *c)
{
	static const char *const vals[] = {"--org", NULL};
	const char *slug = opt(c, "--org");
	struct idb_rotation r;
	struct idb_org o;
	enum idb_err e;

	if (check_opts(c, vals, NULL) != 0 || slug == NULL)
		return usage();
	if (open_registry(c, 0) != 0)
		return EXIT_FAILURE;
	if ((e = idb_reg_org_find(c->reg, slug, &o)) != IDB_OK)
		return fail(slug, e == IDB_E_NOT_FOUND ? "no such org" : idb_err_str(e));
	if (idb_rotate_org(&c->conf, c->reg, c->master, &o, &r, c->err, sizeof(c->err)) != IDB_OK)
		return fail("keys rotate", c->err);
	printf("%s: %sdatabase key version %u -> %u, field key version %u -> %u, %lld values encrypted again\n",
	       o.slug, r.resumed ? "finished a rotation cut short: " : "", r.db_from, r.db_to, r.field_from,
	       r.field_to, r.values);
	return 0;
}

int
cmd_keys_rotate_master(struct cli *c)
{
	if (check_opts(c, NULL, NULL) != 0)
		return usage();
	if (idb_rotate_master(&c->conf, c->err, sizeof(c->err)) != IDB_OK)
		return fail("keys rotate-master", c->err);
	printf("master key rotated: every key rewrapped, the registry under the new key\n");
	return 0;
}
