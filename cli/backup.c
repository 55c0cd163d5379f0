/* SPDX-License-Identifier: ISC */
/* immidb-admin backup | backup verify | backup prune | restore (storage.md, Backups). */
#include "cli/cli.h"

int cmd_backup(struct cli *c) { (void)c; return fail("backup", "not built yet"); }
int cmd_backup_verify(struct cli *c) { (void)c; return fail("backup verify", "not built yet"); }
int cmd_backup_prune(struct cli *c) { (void)c; return fail("backup prune", "not built yet"); }
int cmd_restore(struct cli *c) { (void)c; return fail("restore", "not built yet"); }
