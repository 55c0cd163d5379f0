/* SPDX-License-Identifier: ISC */
/* Temporary folders of the unit tests. */
#ifndef IDB_TEST_UNIT_TMPDIR_H
#define IDB_TEST_UNIT_TMPDIR_H

/* Removes a temporary folder and everything in it (subfolders too). */
void rmtree(const char *dir);

#endif
