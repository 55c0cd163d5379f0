/* SPDX-License-Identifier: ISC */
/*
 * The case data, declared by table. Each resource (clients, cases, events,
 * notes, credentials) is one struct idb_resource: its columns with their
 * type, limits, pattern and sensitivity, its list filters and its search.
 * One generic implementation (lib/api/records.c) serves all five: it
 * validates by these tables, builds its SQL only from these fixed
 * identifiers (values are always bound), encrypts sensitive columns with the
 * org's field key, keeps the search index and writes the change log.
 */
#ifndef IDB_API_RECORDS_H
#define IDB_API_RECORDS_H

#include <stddef.h>

enum idb_ckind {
	IDB_CK_TEXT,   /* string */
	IDB_CK_DATE,   /* YYYY-MM-DD */
	IDB_CK_TIME,   /* YYYY-MM-DDTHH:MM:SSZ */
	IDB_CK_BOOL,
	IDB_CK_ENUM,
	IDB_CK_REF,    /* the id of a record of another table of the org */
	IDB_CK_SECRET, /* sensitive: encrypted, answered as {"set": bool} */
};

#define IDB_CF_REQUIRED 0x01u
#define IDB_CF_MULTILINE 0x02u
#define IDB_CF_READONLY 0x04u  /* computed, never written by a client */
#define IDB_CF_LAST4 0x08u     /* keep a keyed hash of the last four digits for search */
#define IDB_CF_SELF 0x10u      /* a user reference that defaults to the creator */

struct idb_rcol {
	const char *name; /* JSON field and column */
	enum idb_ckind kind;
	unsigned flags;
	long long max;               /* characters (strings) */
	const char *const *choices;  /* ENUM */
	const char *def;             /* ENUM default */
	int (*check)(const char *);  /* pattern of a TEXT or SECRET value */
	const char *check_msg;
	const char *ref;             /* REF: "clients", "cases" or "users" */
};

enum idb_fkind {
	IDB_FK_EQ,   /* column = value (ids, enums) */
	IDB_FK_FROM, /* column >= time */
	IDB_FK_TO,   /* column < time */
	IDB_FK_Q,    /* full-text search */
};

struct idb_rfilter {
	const char *param;
	enum idb_fkind kind;
	const char *column;
};

struct idb_resource {
	const char *name; /* path segment and table */
	char id_prefix;
	const struct idb_rcol *cols;
	size_t ncols;
	const struct idb_rfilter *filters;
	size_t nfilters;
	const char *fts; /* search table (docid = rid), or NULL */
	const char *const *fts_cols;
};

extern const struct idb_resource idb_res_clients, idb_res_cases, idb_res_events, idb_res_notes,
    idb_res_credentials;

/* 1 if s is a real date YYYY-MM-DD / a time YYYY-MM-DDTHH:MM:SSZ. */
int idb_valid_date(const char *s);
int idb_valid_time(const char *s);

#endif
