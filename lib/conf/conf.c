/* SPDX-License-Identifier: ISC */
/* Table-driven configuration parsing and validation. */
#include "conf/conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

enum ctype { C_PATH, C_STR, C_URL, C_LISTEN, C_UINT, C_MODE, C_CIDRS, C_SECRET, C_NAME, C_ORIGIN };

struct ckey {
	const char *name;
	enum ctype type;
	size_t off;  /* of the value in struct idb_conf */
	size_t size; /* of a string field */
	long long min, max;
};

#define S(name, type) {#name, type, offsetof(struct idb_conf, name), sizeof(((struct idb_conf *)0)->name), 0, 0}
#define U(name, lo, hi) {#name, C_UINT, offsetof(struct idb_conf, name), 0, lo, hi}

static const struct ckey keys[] = {
	S(data_dir, C_PATH),
	S(master_key_file, C_PATH),
	S(listen, C_LISTEN),
	{"listen_mode", C_MODE, offsetof(struct idb_conf, listen_mode), 0, 0, 0777},
	S(listen_group, C_NAME),
	U(workers, 1, IDB_CONF_WORKERS_MAX),
	U(org_cache, 1, 4096),
	S(log_origin, C_ORIGIN),
	S(sysadmin_ip_allowlist, C_CIDRS),
	S(trusted_proxies, C_CIDRS),
	S(smtp_url, C_URL),
	S(smtp_from, C_STR),
	S(public_url, C_URL),
	S(google_client_id, C_STR),
	S(google_client_secret_file, C_SECRET),
	S(google_auth_url, C_URL),
	S(google_token_url, C_URL),
	S(google_revoke_url, C_URL),
	S(google_calendar_base, C_URL),
	S(google_gmail_base, C_URL),
	S(microsoft_client_id, C_STR),
	S(microsoft_client_secret_file, C_SECRET),
	S(microsoft_tenant, C_NAME),
	S(microsoft_login_base, C_URL),
	S(microsoft_graph_base, C_URL),
};

static void
setstr(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void
idb_conf_defaults(struct idb_conf *c)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	memset(c, 0, sizeof(*c));
	setstr(c->data_dir, sizeof(c->data_dir), "/var/lib/immidb");
	setstr(c->listen, sizeof(c->listen), "unix:/run/immidb/fcgi.sock");
	c->listen_mode = 0660;
	c->workers = ncpu > 0 && ncpu <= IDB_CONF_WORKERS_MAX ? (unsigned)ncpu : 2;
	c->org_cache = 64;
	setstr(c->log_origin, sizeof(c->log_origin), "immidb.localhost");
	setstr(c->smtp_url, sizeof(c->smtp_url), "smtp://127.0.0.1:25");
	setstr(c->smtp_from, sizeof(c->smtp_from), "ImmiDB <no-reply@immidb.localhost>");
	setstr(c->public_url, sizeof(c->public_url), "https://immidb.localhost");
	setstr(c->google_auth_url, sizeof(c->google_auth_url), "https://accounts.google.com/o/oauth2/v2/auth");
	setstr(c->google_token_url, sizeof(c->google_token_url), "https://oauth2.googleapis.com/token");
	setstr(c->google_revoke_url, sizeof(c->google_revoke_url), "https://oauth2.googleapis.com/revoke");
	setstr(c->google_calendar_base, sizeof(c->google_calendar_base), "https://www.googleapis.com/calendar/v3");
	setstr(c->google_gmail_base, sizeof(c->google_gmail_base), "https://gmail.googleapis.com/gmail/v1");
	setstr(c->microsoft_tenant, sizeof(c->microsoft_tenant), "organizations");
	setstr(c->microsoft_login_base, sizeof(c->microsoft_login_base), "https://login.microsoftonline.com");
	setstr(c->microsoft_graph_base, sizeof(c->microsoft_graph_base), "https://graph.microsoft.com/v1.0");
}

static int
printable(const char *v)
{
	for (; *v != '\0'; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return 0;
	return 1;
}

static int
valid_url(const char *v)
{
	static const char *schemes[] = {"https://", "http://", "smtp://", "smtps://"};
	size_t i, n;

	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		n = strlen(schemes[i]);
		if (strncmp(v, schemes[i], n) == 0 && v[n] != '\0' && v[n] != '/' &&
		    strpbrk(v, " \"'<>\\") == NULL)
			return 1;
	}
	return 0;
}

static int
valid_listen(const char *v)
{
	const char *colon;
	long long port;

	if (strncmp(v, "unix:/", 6) == 0)
		return strlen(v) < 6 + 100; /* sun_path is 108 bytes */
	/* host:port, host being an IPv4 address or [IPv6] */
	char host[64];
	unsigned char ip[16];
	size_t hl;

	if ((colon = strrchr(v, ':')) == NULL || colon == v)
		return 0;
	if (idb_parse_ll(colon + 1, 1, 65535, &port) != 0)
		return 0;
	/* An IPv4 address, or an IPv6 address in brackets. */
	hl = (size_t)(colon - v);
	if (v[0] == '[') {
		if (hl < 3 || v[hl - 1] != ']' || hl - 2 >= sizeof(host))
			return 0;
		memcpy(host, v + 1, hl - 2);
		host[hl - 2] = '\0';
		return strchr(host, ':') != NULL && idb_ip_parse(host, ip) == 0;
	}
	if (hl >= sizeof(host))
		return 0;
	memcpy(host, v, hl);
	host[hl] = '\0';
	return strchr(host, ':') == NULL && idb_ip_parse(host, ip) == 0;
}

static int
valid_name(const char *v)
{
	if (*v == '\0')
		return 1;
	for (; *v != '\0'; v++)
		if (!((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') || (*v >= '0' && *v <= '9') ||
		      *v == '-' || *v == '_' || *v == '.'))
			return 0;
	return 1;
}

enum idb_err
idb_conf_set(struct idb_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	const struct ckey *k = NULL;
	struct idb_cidr_list *list;
	char *dst;
	long long n;
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, key) == 0)
			k = &keys[i];
	if (k == NULL) {
		snprintf(why, whylen, "unknown key '%.64s'", key);
		return IDB_E_CONFIG;
	}
	if (!printable(v)) {
		snprintf(why, whylen, "%s: control characters in value", key);
		return IDB_E_CONFIG;
	}
	if (k->size != 0 && strlen(v) >= k->size) {
		snprintf(why, whylen, "%s: value longer than %zu bytes", key, k->size - 1);
		return IDB_E_CONFIG;
	}
	dst = (char *)c + k->off;
	switch (k->type) {
	case C_PATH:
		if (v[0] != '/') {
			snprintf(why, whylen, "%s: must be an absolute path", key);
			return IDB_E_CONFIG;
		}
		break;
	case C_SECRET:
		if (v[0] != '\0' && v[0] != '/') {
			snprintf(why, whylen, "%s: must be an absolute path", key);
			return IDB_E_CONFIG;
		}
		break;
	case C_URL:
		if (v[0] != '\0' && !valid_url(v)) {
			snprintf(why, whylen, "%s: not an http(s) or smtp(s) URL", key);
			return IDB_E_CONFIG;
		}
		break;
	case C_LISTEN:
		if (!valid_listen(v)) {
			snprintf(why, whylen, "%s: expected unix:/path or address:port", key);
			return IDB_E_CONFIG;
		}
		break;
	case C_UINT:
		if (idb_parse_ll(v, k->min, k->max, &n) != 0) {
			snprintf(why, whylen, "%s: expected an integer from %lld to %lld", key, k->min, k->max);
			return IDB_E_CONFIG;
		}
		*(unsigned *)(void *)dst = (unsigned)n;
		return IDB_OK;
	case C_MODE: {
		char *end;
		unsigned long m;

		if (v[0] != '0' || strlen(v) < 3 || strlen(v) > 4 ||
		    (m = strtoul(v, &end, 8), *end != '\0') || m > 0777 || (m & 0002)) {
			snprintf(why, whylen, "%s: expected an octal mode like 0660, not writable by others", key);
			return IDB_E_CONFIG;
		}
		*(unsigned *)(void *)dst = (unsigned)m;
		return IDB_OK;
	}
	case C_CIDRS:
		list = strcmp(key, "trusted_proxies") == 0 ? &c->proxies : &c->sysadmin_ips;
		if (idb_cidr_list_parse(v, list) != IDB_OK) {
			snprintf(why, whylen, "%s: expected IPv4/IPv6 addresses or CIDR ranges", key);
			return IDB_E_CONFIG;
		}
		break;
	case C_NAME:
		if (!valid_name(v)) {
			snprintf(why, whylen, "%s: letters, digits, '-', '_' and '.' only", key);
			return IDB_E_CONFIG;
		}
		break;
	case C_ORIGIN:
		if (v[0] == '\0' || strpbrk(v, " +\t") != NULL) {
			snprintf(why, whylen, "%s: a non-empty name without spaces or '+'", key);
			return IDB_E_CONFIG;
		}
		break;
	case C_STR:
		break;
	}
	setstr(dst, k->size, v);
	if (strcmp(key, "master_key_file") == 0)
		c->master_key_set = 1;
	return IDB_OK;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

enum idb_err
idb_conf_load(struct idb_conf *c, const char *path, char *err, size_t errlen)
{
	char line[IDB_CONF_LINE_MAX + 2], why[256];
	char *p, *eq, *key, *val;
	enum idb_err e = IDB_OK;
	unsigned lineno = 0;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: cannot open", path);
		return IDB_E_IO;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strlen(line) > IDB_CONF_LINE_MAX) {
			snprintf(err, errlen, "%s:%u: line too long", path, lineno);
			e = IDB_E_CONFIG;
			break;
		}
		/* A '#' at the start or after blank space begins a comment. */
		for (p = line; *p != '\0'; p++)
			if (*p == '#' && (p == line || p[-1] == ' ' || p[-1] == '\t')) {
				*p = '\0';
				break;
			}
		p = trim(line);
		if (*p == '\0')
			continue;
		if ((eq = strchr(p, '=')) == NULL) {
			snprintf(err, errlen, "%s:%u: expected 'key = value'", path, lineno);
			e = IDB_E_CONFIG;
			break;
		}
		*eq = '\0';
		key = trim(p);
		val = trim(eq + 1);
		if (idb_conf_set(c, key, val, why, sizeof(why)) != IDB_OK) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
			e = IDB_E_CONFIG;
			break;
		}
		if (strcmp(key, "google_client_secret_file") == 0)
			c->secret_line[0] = lineno;
		else if (strcmp(key, "microsoft_client_secret_file") == 0)
			c->secret_line[1] = lineno;
	}
	if (e == IDB_OK && ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		e = IDB_E_IO;
	}
	fclose(f);
	if (e == IDB_OK)
		setstr(c->path, sizeof(c->path), path);
	return e;
}

enum idb_err
idb_conf_check_secret_file(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return IDB_E_IO;
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return IDB_E_PERM;
	return IDB_OK;
}

static int
exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

enum idb_err
idb_conf_open(struct idb_conf *c, const char *config_opt, const char *data_opt, char *err, size_t errlen)
{
	const char *secrets[2];
	char guess[IDB_CONF_STR + 32];
	static char abs_data[IDB_CONF_STR];
	const char *file = NULL;
	enum idb_err e;
	size_t i;

	idb_conf_defaults(c);
	if (config_opt == NULL || *config_opt == '\0')
		config_opt = getenv("IMMIDB_CONFIG");
	if (data_opt == NULL || *data_opt == '\0')
		data_opt = getenv("IMMIDB_DATA");
	if (data_opt != NULL && *data_opt != '\0' && data_opt[0] != '/') {
		/* A relative --data (make run's ./var) is taken from the current folder. */
		char cwd[IDB_CONF_STR];

		if (getcwd(cwd, sizeof(cwd)) == NULL ||
		    snprintf(abs_data, sizeof(abs_data), "%s/%s", cwd, data_opt) >= (int)sizeof(abs_data)) {
			snprintf(err, errlen, "--data: path too long");
			return IDB_E_CONFIG;
		}
		data_opt = abs_data;
	}
	if (config_opt != NULL && *config_opt != '\0')
		file = config_opt;
	else {
		if (data_opt != NULL && *data_opt != '\0') {
			snprintf(guess, sizeof(guess), "%s/immidb.conf", data_opt);
			if (exists(guess))
				file = guess;
		}
		if (file == NULL && exists(IDB_CONF_DEFAULT))
			file = IDB_CONF_DEFAULT;
	}
	if (file != NULL && (e = idb_conf_load(c, file, err, errlen)) != IDB_OK)
		return e;
	if (data_opt != NULL && *data_opt != '\0') {
		if (strlen(data_opt) >= sizeof(c->data_dir)) {
			snprintf(err, errlen, "--data: path too long");
			return IDB_E_CONFIG;
		}
		setstr(c->data_dir, sizeof(c->data_dir), data_opt);
	}
	if (!c->master_key_set &&
	    snprintf(c->master_key_file, sizeof(c->master_key_file), "%s/master.key", c->data_dir) >=
	        (int)sizeof(c->master_key_file)) {
		snprintf(err, errlen, "data_dir: path too long");
		return IDB_E_CONFIG;
	}
	secrets[0] = c->google_client_secret_file;
	secrets[1] = c->microsoft_client_secret_file;
	for (i = 0; i < 2; i++) {
		if (secrets[i][0] == '\0')
			continue;
		if ((e = idb_conf_check_secret_file(secrets[i])) != IDB_OK) {
			snprintf(err, errlen, "%s:%u: %s: %s", c->path, c->secret_line[i], secrets[i],
			         e == IDB_E_PERM ? "secret file is readable by group or others (chmod 600)"
			                         : "secret file cannot be read");
			return e;
		}
	}
	return IDB_OK;
}
