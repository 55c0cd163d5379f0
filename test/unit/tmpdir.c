/* SPDX-License-Identifier: ISC */
#include "tmpdir.h"

#include <dirent.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/registry.h"

void
rmtree(const char *dir)
{
	char p[1024];
	struct dirent *e;
	struct stat st;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= (int)sizeof(p))
			continue;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rmtree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

int
data_dir_setup(const char *tmpl, char dir[256], struct idb_conf *conf, struct idb_master **master, sqlite3 **reg)
{
	char err[512] = "";

	if (strlen(tmpl) >= 256)
		return -1;
	memcpy(dir, tmpl, strlen(tmpl) + 1);
	if (mkdtemp(dir) == NULL)
		return -1;
	idb_conf_defaults(conf);
	/* The data folder itself is created by idb_reg_init. */
	if (snprintf(conf->data_dir, sizeof(conf->data_dir), "%s/data", dir) >= (int)sizeof(conf->data_dir) ||
	    snprintf(conf->master_key_file, sizeof(conf->master_key_file), "%s/data/master.key", dir) >=
	        (int)sizeof(conf->master_key_file))
		return -1;
	if (idb_reg_init(conf, err, sizeof(err)) != IDB_OK) {
		fprintf(stderr, "idb_reg_init: %s\n", err);
		return -1;
	}
	if (idb_key_master_load(conf->master_key_file, master) != IDB_OK ||
	    idb_reg_open(conf, *master, 0, reg) != IDB_OK) {
		fprintf(stderr, "cannot load the master key or open the registry in %s\n", dir);
		return -1;
	}
	return 0;
}
