/* SPDX-License-Identifier: ISC */
/*
 * Small helpers shared by the integration tests: a ring of printf buffers for
 * paths and bodies, and typed JSON accessors that fail the current test
 * (cmocka) when a field is missing or of another type.
 */
#ifndef IDB_TEST_CHECKS_H
#define IDB_TEST_CHECKS_H

#include <cjson/cJSON.h>

#define F_SLOTS 16
#define F_LEN 8192

/* printf into one of a ring of F_SLOTS static buffers: for strings that live
 * only for the call they are passed to. Fails the test if the text is too long. */
const char *F(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *jstr(const cJSON *o, const char *k);
long long jint(const cJSON *o, const char *k);
int jbool(const cJSON *o, const char *k);
const cJSON *jarr(const cJSON *o, const char *k);

#endif
