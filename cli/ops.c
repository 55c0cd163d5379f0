/* SPDX-License-Identifier: ISC */
/* immidb-admin maintenance on|off | announce-update. */
#include "cli/cli.h"

int cmd_maintenance(struct cli *c) { (void)c; return fail("maintenance", "not built yet"); }
int cmd_announce_update(struct cli *c) { (void)c; return fail("announce-update", "not built yet"); }
