/* SPDX-License-Identifier: ISC */
/* Address and range parsing with inet_pton; matching by prefix bits. */
#include "core/cidr.h"

#include <arpa/inet.h>
#include <string.h>

static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int
idb_ip_parse(const char *s, unsigned char out[16])
{
	unsigned char v4[4];

	if (inet_pton(AF_INET, s, v4) == 1) {
		memcpy(out, v4mapped, 12);
		memcpy(out + 12, v4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1)
		return 0;
	return -1;
}

enum idb_err
idb_cidr_parse(const char *s, struct idb_cidr *c)
{
	char addr[IDB_CIDR_TEXT_MAX];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long len = 0, max;
	const char *p;
	unsigned i;
	int v4;

	if (alen == 0 || alen >= sizeof(addr))
		return IDB_E_VALIDATION;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (idb_ip_parse(addr, c->addr) != 0)
		return IDB_E_VALIDATION;
	v4 = strchr(addr, ':') == NULL;
	max = v4 ? 32 : 128;
	if (slash != NULL) {
		p = slash + 1;
		if (*p == '\0' || strlen(p) > 3)
			return IDB_E_VALIDATION;
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return IDB_E_VALIDATION;
			len = len * 10 + (unsigned long)(*p - '0');
		}
		if (len > max)
			return IDB_E_VALIDATION;
	} else
		len = max;
	c->prefix = (unsigned)(v4 ? len + 96 : len);
	/* Host bits must be zero: "10.0.0.1/8" is more likely a typo than a wish. */
	for (i = c->prefix; i < 128; i++)
		if (c->addr[i / 8] & (0x80 >> (i % 8)))
			return IDB_E_VALIDATION;
	return IDB_OK;
}

enum idb_err
idb_cidr_list_parse(const char *s, struct idb_cidr_list *l)
{
	char item[IDB_CIDR_TEXT_MAX];
	size_t n;

	l->n = 0;
	while (*s != '\0') {
		while (*s == ',' || *s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		n = strcspn(s, ", \t");
		if (n >= sizeof(item))
			return IDB_E_VALIDATION;
		if (l->n == IDB_CIDR_MAX)
			return IDB_E_TOOBIG;
		memcpy(item, s, n);
		item[n] = '\0';
		if (idb_cidr_parse(item, &l->v[l->n]) != IDB_OK)
			return IDB_E_VALIDATION;
		l->n++;
		s += n;
	}
	return IDB_OK;
}

int
idb_cidr_match(const struct idb_cidr *c, const unsigned char ip[16])
{
	unsigned full = c->prefix / 8, rest = c->prefix % 8;
	unsigned char mask;

	if (memcmp(c->addr, ip, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (c->addr[full] & mask) == (ip[full] & mask);
}

int
idb_cidr_list_contains(const struct idb_cidr_list *l, const char *ip)
{
	unsigned char a[16];
	size_t i;

	if (idb_ip_parse(ip, a) != 0)
		return 0;
	for (i = 0; i < l->n; i++)
		if (idb_cidr_match(&l->v[i], a))
			return 1;
	return 0;
}
