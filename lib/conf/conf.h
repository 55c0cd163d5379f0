/* SPDX-License-Identifier: ISC */
/*
 * The configuration file (cli.md): "key = value" lines, '#' comments. Every
 * key is declared once in a table with its type; an unknown key or a bad
 * value is an error naming the file and line. Secret files named by the
 * configuration must not be accessible by group or others.
 */
#ifndef IDB_CONF_CONF_H
#define IDB_CONF_CONF_H

#include <stddef.h>
#include "core/cidr.h"
#include "core/err.h"

#define IDB_CONF_STR 512
#define IDB_CONF_LINE_MAX 4096
#define IDB_CONF_ERR_MAX 512
#define IDB_CONF_WORKERS_MAX 256
#define IDB_CONF_DEFAULT "/etc/immidb/immidb.conf"

struct idb_conf {
	char path[IDB_CONF_STR]; /* the file read, "" for built-in defaults */
	char data_dir[IDB_CONF_STR];
	char master_key_file[IDB_CONF_STR];
	char listen[IDB_CONF_STR];
	unsigned listen_mode;
	char listen_group[64];
	unsigned workers;
	unsigned org_cache;
	char log_origin[256];
	char sysadmin_ip_allowlist[IDB_CONF_STR];
	struct idb_cidr_list sysadmin_ips;
	char trusted_proxies[IDB_CONF_STR];
	struct idb_cidr_list proxies;
	char smtp_url[IDB_CONF_STR];
	char smtp_from[IDB_CONF_STR];
	char public_url[IDB_CONF_STR];
	char google_client_id[IDB_CONF_STR];
	char google_client_secret_file[IDB_CONF_STR];
	char google_auth_url[IDB_CONF_STR];
	char google_token_url[IDB_CONF_STR];
	char google_revoke_url[IDB_CONF_STR];
	char google_calendar_base[IDB_CONF_STR];
	char google_gmail_base[IDB_CONF_STR];
	char microsoft_client_id[IDB_CONF_STR];
	char microsoft_client_secret_file[IDB_CONF_STR];
	char microsoft_tenant[128];
	char microsoft_login_base[IDB_CONF_STR];
	char microsoft_graph_base[IDB_CONF_STR];
	int master_key_set; /* master_key_file came from the file */
	unsigned secret_line[2]; /* lines of the two *_client_secret_file keys */
};

/* Fills the built-in defaults. */
void idb_conf_defaults(struct idb_conf *);
/* Reads a file over the current values; on error err holds "file:line: why". */
enum idb_err idb_conf_load(struct idb_conf *, const char *path, char *err, size_t errlen);
/* Parses one "key = value" line (no comment handling); for tests and load. */
enum idb_err idb_conf_set(struct idb_conf *, const char *key, const char *value, char *why, size_t whylen);
/*
 * The whole start-up sequence shared by immidb-fcgi and immidb-admin:
 * picks the file (--config, IMMIDB_CONFIG, <data>/immidb.conf, /etc default),
 * loads it if present (a --config or IMMIDB_CONFIG that is missing is an
 * error), applies --data / IMMIDB_DATA, resolves master_key_file, and checks
 * secret files' permissions. Either option may be NULL.
 */
enum idb_err idb_conf_open(struct idb_conf *, const char *config_opt, const char *data_opt,
                           char *err, size_t errlen);
/* IDB_E_PERM if the file is accessible by group or others, IDB_E_IO if absent. */
enum idb_err idb_conf_check_secret_file(const char *path);

#endif
