/* SPDX-License-Identifier: ISC */
/* immidb-admin export: the org's full export (api.md, Export). */
#include "cli/cli.h"

int
cmd_export(struct cli *c)
{
	(void)c;
	return fail("export", "not built yet");
}
