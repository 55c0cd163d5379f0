/* SPDX-License-Identifier: ISC */
/* immidb-admin keys rotate --org S | keys rotate-master (storage.md, key hierarchy). */
#include "cli/cli.h"

int cmd_keys_rotate(struct cli *c) { (void)c; return fail("keys rotate", "not built yet"); }
int cmd_keys_rotate_master(struct cli *c) { (void)c; return fail("keys rotate-master", "not built yet"); }
