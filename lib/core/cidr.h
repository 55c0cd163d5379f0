/* SPDX-License-Identifier: ISC */
/*
 * IPv4 and IPv6 addresses and CIDR ranges, for trusted proxies, the sysadmin
 * allow-list and the organizations' allow-lists. A bare address is a /32 or
 * /128. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match IPv4 ranges.
 */
#ifndef IDB_CORE_CIDR_H
#define IDB_CORE_CIDR_H

#include <stddef.h>
#include "core/err.h"

#define IDB_CIDR_MAX 256 /* entries in one list */
#define IDB_CIDR_TEXT_MAX 64

struct idb_cidr {
	unsigned char addr[16]; /* IPv4 kept as ::ffff:a.b.c.d */
	unsigned prefix;        /* 0..128 over the 16 bytes */
};

struct idb_cidr_list {
	size_t n;
	struct idb_cidr v[IDB_CIDR_MAX];
};

/* Parses one address (no prefix) into 16 bytes; -1 if malformed. */
int idb_ip_parse(const char *, unsigned char out[16]);
/* Parses "addr" or "addr/len"; host bits past the prefix must be zero. */
enum idb_err idb_cidr_parse(const char *, struct idb_cidr *);
/* Parses a comma- or space-separated list; empty text is an empty list. */
enum idb_err idb_cidr_list_parse(const char *, struct idb_cidr_list *);
int idb_cidr_match(const struct idb_cidr *, const unsigned char ip[16]);
/* 1 if the textual address is inside any range of the list. */
int idb_cidr_list_contains(const struct idb_cidr_list *, const char *ip);

#endif
