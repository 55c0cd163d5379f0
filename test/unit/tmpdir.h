/* SPDX-License-Identifier: ISC */
/* Temporary folders of the unit tests. */
#ifndef IDB_TEST_UNIT_TMPDIR_H
#define IDB_TEST_UNIT_TMPDIR_H

#include <sqlite3.h>
#include "conf/conf.h"
#include "crypto/key.h"

/* Removes a temporary folder and everything in it (subfolders too). */
void rmtree(const char *dir);
/*
 * A new temporary folder from tmpl (".../name.XXXXXX", at most 255
 * characters) into dir, holding a data folder set up as immidb-admin init
 * does: conf gets the defaults with its data_dir and master_key_file, the
 * master key is loaded into *master and the registry opened into *reg.
 * 0, or -1 with the reason on stderr.
 */
int data_dir_setup(const char *tmpl, char dir[256], struct idb_conf *conf, struct idb_master **master,
                   sqlite3 **reg);

#endif
