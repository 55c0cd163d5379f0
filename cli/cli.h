/* SPDX-License-Identifier: ISC */
/*
 * What the parts of immidb-admin share: the parsed command line, option
 * lookup, opening the registry and an org, and the access-log entry of a
 * command that touches an org (via=server). Each file under cli/ holds the
 * commands of one area; admin.c holds the table that dispatches to them.
 */
#ifndef IDB_CLI_H
#define IDB_CLI_H

#include <stddef.h>
#include <sqlite3.h>
#include <cjson/cJSON.h>

#include "conf/conf.h"
#include "core/err.h"
#include "crypto/key.h"
#include "store/registry.h"

#define EXIT_USAGE 2

struct cli {
	int argc;
	char **argv; /* the sub-command's words after the command name(s) */
	struct idb_conf conf;
	struct idb_master *master;
	sqlite3 *reg;
	char err[IDB_CONF_ERR_MAX];
};

/* "immidb-admin: what: why" on stderr; returns EXIT_FAILURE. */
int fail(const char *what, const char *why);
/* The usage text on stderr; returns EXIT_USAGE. */
int usage(void);
/* The value of "--name VALUE" among the sub-command's words, or NULL. */
const char *opt(const struct cli *, const char *name);
int flag(const struct cli *, const char *name);
/* Every word must be a known option (with a value where it takes one); -1 otherwise (message printed). */
int check_opts(const struct cli *, const char *const *with_value, const char *const *flags);
/* Loads the master key and opens the registry (c->master, c->reg); non-zero after a message. */
int open_registry(struct cli *, int allow_behind);
/* Opens an org's database by slug (idb_org_open_keys); its keys into *keys
 * if not NULL (the caller wipes them); non-zero after a message. */
int open_org(struct cli *, const char *slug, struct idb_org *o, sqlite3 **db, struct idb_org_keys *keys);
int print_json(cJSON *);
/* Reads one line from stdin into buf (the newline removed); -1 if longer or none. */
int read_password(char *buf, size_t size);
/* An access-log entry (actor system/immidb-admin, via=server); inside the caller's transaction. */
enum idb_err server_entry(sqlite3 *db, const char *action, const char *target, const char *detail);
/* A read by a command, logged in its own transaction; fails closed (non-zero after a message). */
int server_read(sqlite3 *db, const char *action, const char *target, const char *detail);

/* Every org of the registry, collected by idb_reg_org_list(reg, collect, &ids). */
struct org_ids {
	size_t n, cap;
	struct idb_org *v;
};
void collect(const struct idb_org *, void *arg);

/* Commands of the other files. */
int cmd_export(struct cli *);          /* cli/export.c */
/*
 * The org export (immidb-export-v1) of an open org database with its keys,
 * written to out_path (mode 0600, a temporary file renamed into place) or,
 * for NULL, to stdout. One transaction: the document is read, the
 * access-log entry `who` is appended (NULL: org.export by system
 * immidb-admin via=server; NULL fields of who default to action
 * org.export, target export, via server, outcome ok, detail the counts)
 * and an "export" notification queued; only after the commit does the file
 * get its name (or stdout its bytes). If the entry or the notification
 * cannot be written, nothing is exported. Call it outside a transaction
 * of db (its commit is the point of no return). Returns 0, or
 * EXIT_FAILURE after a message.
 */
struct idb_log_entry;
int export_run(struct cli *, const struct idb_org *o, sqlite3 *db, const struct idb_org_keys *k, const char *out_path,
               const struct idb_log_entry *who);
int cmd_backup(struct cli *);          /* cli/backup.c */
int cmd_backup_verify(struct cli *);
int cmd_backup_prune(struct cli *);
int cmd_restore(struct cli *);
int cmd_keys_rotate(struct cli *);     /* cli/keys.c */
int cmd_keys_rotate_master(struct cli *);
int cmd_maintenance(struct cli *);     /* cli/ops.c */
int cmd_announce_update(struct cli *);
/* Queues update_done to the orgs with notify_updates "after"; what: the applied migrations. */
int notify_update_done(struct cli *, const char *what);

#endif
