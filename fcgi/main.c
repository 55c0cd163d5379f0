/* SPDX-License-Identifier: ISC */
/*
 * immidb-fcgi: reads the configuration and the master key, checks that the
 * registry opens with it (a wrong key fails here, loudly, before any
 * worker starts), opens the listening socket and hands over to the master.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "api/api.h"
#include "fcgi.h"

static void
usage(void)
{
	fprintf(stderr, "usage: immidb-fcgi [--config FILE] [--data DIR]\n");
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"data", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *config_opt = NULL, *data_opt = NULL;
	static struct idb_conf conf;
	struct idb_master *m = NULL;
	struct idb_app probe;
	char err[IDB_CONF_ERR_MAX];
	enum idb_err e;
	int ch, fd, rc;

	umask(077);
	while ((ch = getopt_long(argc, argv, "c:d:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config_opt = optarg;
			break;
		case 'd':
			data_opt = optarg;
			break;
		default:
			usage();
			return ch == 'h' ? 0 : 2;
		}
	}
	if (optind != argc) {
		usage();
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "immidb-fcgi: libsodium failed to initialise\n");
		return 1;
	}
	if (idb_conf_open(&conf, config_opt, data_opt, err, sizeof(err)) != IDB_OK) {
		fprintf(stderr, "immidb-fcgi: %s\n", err);
		return 1;
	}
	/* A master-key rotation cut short: the operator's tool settles it (it may need root). */
	if (snprintf(err, sizeof(err), "%s.new", conf.master_key_file) < (int)sizeof(err) && access(err, F_OK) == 0) {
		fprintf(stderr, "immidb-fcgi: %s exists: a master-key rotation was cut short; run any immidb-admin "
		                "command (e.g. immidb-admin org list) to finish or undo it\n", err);
		return 1;
	}
	if ((e = idb_key_master_load(conf.master_key_file, &m)) != IDB_OK) {
		fprintf(stderr, "immidb-fcgi: %s: %s\n", conf.master_key_file,
		        e == IDB_E_PERM ? "master key is readable by group or others (chmod 600)"
		        : e == IDB_E_IO ? "cannot read the master key (run immidb-admin init?)"
		                        : "not a master key (64 hex digits)");
		return 1;
	}
	if ((e = idb_app_init(&probe, &conf, m)) != IDB_OK) {
		fprintf(stderr, "immidb-fcgi: registry: %s\n",
		        e == IDB_E_BADKEY ? "wrong master key: the registry does not open with it" : idb_err_str(e));
		idb_key_master_free(m);
		return 1;
	}
	idb_app_free(&probe);
	if ((fd = idb_listen_open(&conf)) < 0) {
		idb_key_master_free(m);
		return 1;
	}
	rc = idb_master_run(&conf, config_opt, data_opt, m, fd);
	idb_key_master_free(m);
	return rc;
}
