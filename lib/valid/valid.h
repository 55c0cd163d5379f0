/* SPDX-License-Identifier: ISC */
/*
 * Validation by table (style.md, habit 3). Each endpoint declares its body
 * fields once; idb_valid_apply checks a parsed JSON object against the table
 * and either hands back one typed value per field or a "fields" object with
 * one message per bad field (the 422 answer). Handlers never walk raw JSON.
 */
#ifndef IDB_VALID_VALID_H
#define IDB_VALID_VALID_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include "core/arena.h"
#include "core/err.h"

#define IDB_VALID_FIELDS_MAX 32
#define IDB_VALID_LIST_MAX 256

enum idb_vtype {
	IDB_V_STRING,  /* UTF-8 string, min..max characters */
	IDB_V_INT,     /* integer, min..max */
	IDB_V_BOOL,
	IDB_V_ENUM,    /* string, one of choices */
	IDB_V_STRLIST, /* array of strings, at most max items, each checked by check */
	IDB_V_BOOLMAP, /* object whose keys are among choices, values booleans */
};

#define IDB_VF_REQUIRED 0x1u
#define IDB_VF_NULLABLE 0x2u /* null is accepted (to clear a value) */
#define IDB_VF_MULTILINE 0x4u /* tabs and line breaks allowed in a string */

struct idb_vfield {
	const char *name;
	enum idb_vtype type;
	unsigned flags;
	long long min, max;
	const char *const *choices;       /* NULL-terminated, for ENUM and BOOLMAP */
	int (*check)(const char *);       /* extra check of a string (or each list item) */
	const char *check_msg;            /* message when check fails */
};

struct idb_vvalue {
	int present;     /* the field was in the body */
	int is_null;     /* it was null */
	const char *s;   /* STRING, ENUM */
	long long i;     /* INT, BOOL (0/1) */
	const cJSON *j;  /* the raw item (lists, maps) */
};

/*
 * Validates obj against tab[0..n). On success out[i] describes field i. On
 * IDB_E_VALIDATION, *fields (owned by the caller, cJSON_Delete) holds one
 * message per bad or unknown field. Unknown fields are errors.
 */
enum idb_err idb_valid_apply(const struct idb_vfield *tab, size_t n, const cJSON *obj,
                             struct idb_vvalue *out, cJSON **fields);
/* The number of UTF-8 characters of s (bytes that do not continue a sequence). */
size_t idb_utf8_chars(const char *s);
/* 1 if s has no control characters (tab, CR and LF allowed when multiline). */
int idb_valid_text(const char *s, int multiline);

#endif
