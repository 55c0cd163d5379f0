/* SPDX-License-Identifier: ISC */
/* Request helpers (client address, query, cookies, JSON) and responses. */
#include "http/req.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

void
idb_req_client_ip(struct idb_req *r, const struct idb_cidr_list *proxies)
{
	const char *xff = r->forwarded_for, *end, *start;
	char item[IDB_CIDR_TEXT_MAX];
	unsigned char tmp[16];
	char *ip;
	size_t n;

	r->client_ip = r->remote_addr ? r->remote_addr : "";
	if (xff == NULL || proxies->n == 0 || !idb_cidr_list_contains(proxies, r->client_ip))
		return;
	/* Walk from the right: each hop we trust may vouch for the one before it. */
	end = xff + strlen(xff);
	while (end > xff) {
		start = end;
		while (start > xff && start[-1] != ',')
			start--;
		while (start < end && (*start == ' ' || *start == '\t'))
			start++;
		n = (size_t)(end - start);
		while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
			n--;
		if (n == 0 || n >= sizeof(item))
			return;
		memcpy(item, start, n);
		item[n] = '\0';
		if (idb_ip_parse(item, tmp) != 0)
			return; /* garbage: keep the last address we could vouch for */
		if ((ip = idb_arena_strdup(r->arena, item)) == NULL)
			return;
		r->client_ip = ip;
		if (!idb_cidr_list_contains(proxies, item))
			return;
		end = start;
		while (end > xff && (end[-1] == ',' || end[-1] == ' '))
			end--;
	}
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes n bytes of application/x-www-form-urlencoded text into the arena. */
static enum idb_err
decode(struct idb_arena *a, const char *s, size_t n, const char **out)
{
	char *d = idb_arena_alloc(a, n + 1);
	size_t i, j = 0;
	int hi, lo;

	if (d == NULL)
		return IDB_E_NOMEM;
	for (i = 0; i < n; i++) {
		if (s[i] == '+')
			d[j++] = ' ';
		else if (s[i] == '%') {
			if (i + 2 >= n)
				return IDB_E_BAD_REQUEST;
			if ((hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
				return IDB_E_BAD_REQUEST;
			d[j] = (char)(hi << 4 | lo);
			if (d[j] == '\0')
				return IDB_E_BAD_REQUEST;
			j++;
			i += 2;
		} else
			d[j++] = s[i];
	}
	d[j] = '\0';
	*out = d;
	return IDB_OK;
}

enum idb_err
idb_req_query(const struct idb_req *r, const char *name, const char **out)
{
	const char *p = r->query, *amp, *eq;
	size_t nlen = strlen(name), klen;

	*out = NULL;
	if (p == NULL)
		return IDB_OK;
	if (strlen(p) > IDB_QUERY_LEN_MAX)
		return IDB_E_BAD_REQUEST;
	while (*p != '\0') {
		amp = strchr(p, '&');
		if (amp == NULL)
			amp = p + strlen(p);
		eq = memchr(p, '=', (size_t)(amp - p));
		klen = (size_t)((eq ? eq : amp) - p);
		if (klen == nlen && memcmp(p, name, nlen) == 0) {
			if (*out != NULL)
				return IDB_E_BAD_REQUEST; /* a repeated parameter is ambiguous */
			if (eq == NULL)
				*out = "";
			else {
				enum idb_err e = decode(r->arena, eq + 1, (size_t)(amp - eq - 1), out);

				if (e != IDB_OK)
					return e;
			}
		}
		p = *amp ? amp + 1 : amp;
	}
	return IDB_OK;
}

enum idb_err
idb_req_only(const struct idb_req *r, const char *const *names)
{
	const char *p = r->query, *end;
	const char *const *n;
	size_t klen;
	int ok;

	while (p != NULL && *p != '\0') {
		end = strchr(p, '&');
		if (end == NULL)
			end = p + strlen(p);
		klen = strcspn(p, "=&");
		for (ok = 0, n = names; *n != NULL && !ok; n++)
			ok = strlen(*n) == klen && memcmp(p, *n, klen) == 0;
		if (!ok)
			return IDB_E_BAD_REQUEST;
		p = *end ? end + 1 : end;
	}
	return IDB_OK;
}

const char *
idb_req_cookie(const struct idb_req *r, const char *name)
{
	const char *p = r->cookie, *end, *eq;
	size_t nlen = strlen(name);

	if (p == NULL)
		return NULL;
	while (*p != '\0') {
		while (*p == ' ' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq != NULL && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0)
			return idb_arena_strndup(r->arena, eq + 1, (size_t)(end - eq - 1));
		p = end;
	}
	return NULL;
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Length of a JSON number token (RFC 8259 grammar), or -1: cJSON alone would take 01, 1. and +1. */
static int
number_len(const unsigned char *s, size_t left)
{
	size_t j = 0;

	if (j < left && s[j] == '-')
		j++;
	if (j < left && s[j] == '0')
		j++;
	else if (j < left && s[j] >= '1' && s[j] <= '9')
		while (j < left && is_digit(s[j]))
			j++;
	else
		return -1;
	if (j < left && s[j] == '.') {
		if (++j >= left || !is_digit(s[j]))
			return -1;
		while (j < left && is_digit(s[j]))
			j++;
	}
	if (j < left && (s[j] == 'e' || s[j] == 'E')) {
		j++;
		if (j < left && (s[j] == '+' || s[j] == '-'))
			j++;
		if (j >= left || !is_digit(s[j]))
			return -1;
		while (j < left && is_digit(s[j]))
			j++;
	}
	if (j < left && (is_digit(s[j]) || s[j] == '.' || s[j] == 'e' || s[j] == 'E' || s[j] == '+' || s[j] == '-'))
		return -1;
	return (int)j;
}

/* Length of an escape sequence in a string, or -1 if it is not one of JSON's. */
static int
escape_len(const unsigned char *s, size_t left)
{
	size_t k;

	if (left < 2)
		return -1;
	if (strchr("\"\\/bfnrt", s[1]) != NULL && s[1] != '\0')
		return 2;
	if (s[1] != 'u' || left < 6)
		return -1;
	for (k = 2; k < 6; k++)
		if (!is_digit(s[k]) && !((s[k] >= 'a' && s[k] <= 'f') || (s[k] >= 'A' && s[k] <= 'F')))
			return -1;
	/* \u0000 would silently cut the string short in cJSON. */
	if (memcmp(s + 2, "0000", 4) == 0)
		return -1;
	return 6;
}

enum idb_err
idb_json_parse(const char *buf, size_t len, cJSON **out)
{
	const unsigned char *s = (const unsigned char *)buf;
	int depth = 0, instr = 0, n;
	const char *end = NULL;
	size_t i;
	cJSON *j;

	*out = NULL;
	if (len == 0)
		return IDB_E_INVALID_JSON;
	for (i = 0; i < len; i += (size_t)n) {
		n = 1;
		if (s[i] == 0)
			return IDB_E_INVALID_JSON;
		if (s[i] >= 0x80) {
			if ((n = idb_utf8_seq(s + i, len - i)) < 0)
				return IDB_E_INVALID_JSON;
			continue;
		}
		if (instr) {
			if (s[i] < 0x20)
				return IDB_E_INVALID_JSON; /* raw control characters must be escaped */
			if (s[i] == '\\') {
				if ((n = escape_len(s + i, len - i)) < 0)
					return IDB_E_INVALID_JSON;
			} else if (s[i] == '"')
				instr = 0;
		} else if (s[i] == '"')
			instr = 1;
		else if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) {
			if ((n = number_len(s + i, len - i)) < 0)
				return IDB_E_INVALID_JSON;
		} else if (s[i] == '+' || s[i] == '.')
			return IDB_E_INVALID_JSON;
		else if (s[i] == '{' || s[i] == '[') {
			if (++depth > IDB_JSON_DEPTH_MAX)
				return IDB_E_INVALID_JSON;
		} else if (s[i] == '}' || s[i] == ']')
			depth--;
	}
	j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if (j == NULL)
		return IDB_E_INVALID_JSON;
	/* Only white space may follow the value. */
	while (end < buf + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
		end++;
	if (end != buf + len) {
		cJSON_Delete(j);
		return IDB_E_INVALID_JSON;
	}
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return IDB_E_INVALID_JSON;
	}
	*out = j;
	return IDB_OK;
}

static void
json_free(void *p)
{
	cJSON_Delete(p);
}

enum idb_err
idb_req_json(const struct idb_req *r, cJSON **out)
{
	enum idb_err e = idb_json_parse(r->body ? r->body : "", r->body_len, out);

	if (e == IDB_OK && idb_arena_defer(r->arena, json_free, *out) != 0) {
		*out = NULL;
		return IDB_E_NOMEM;
	}
	return e;
}

void
idb_resp_init(struct idb_resp *r)
{
	memset(r, 0, sizeof(*r));
	r->status = 200;
	r->content_type = "application/json; charset=utf-8";
	idb_buf_init(&r->body, IDB_RESP_BODY_MAX);
}

void
idb_resp_free(struct idb_resp *r)
{
	if (r != NULL)
		idb_buf_free(&r->body);
}

enum idb_err
idb_resp_header(struct idb_resp *r, const char *name, const char *value)
{
	if (r->nhdr == IDB_RESP_HDR_MAX)
		return IDB_E_TOOBIG;
	r->hdr[r->nhdr].name = name;
	r->hdr[r->nhdr].value = value;
	r->nhdr++;
	return IDB_OK;
}

/*
 * The response body straight from the cJSON tree into the body buffer, as
 * cJSON_PrintUnformatted would write it, without its intermediate string
 * and without printf/scanf for the integers every record carries.
 */
static enum idb_err
json_string(struct idb_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *run = p;
	enum idb_err e = idb_buf_add(b, "\"", 1);
	char esc[6] = {'\\', 'u', '0', '0', 0, 0};

	for (; e == IDB_OK && *p != '\0'; p++) {
		if (*p >= 0x20 && *p != '"' && *p != '\\')
			continue;
		if (p > run && (e = idb_buf_add(b, run, (size_t)(p - run))) != IDB_OK)
			break;
		run = p + 1;
		switch (*p) {
		case '"': e = idb_buf_add(b, "\\\"", 2); break;
		case '\\': e = idb_buf_add(b, "\\\\", 2); break;
		case '\b': e = idb_buf_add(b, "\\b", 2); break;
		case '\f': e = idb_buf_add(b, "\\f", 2); break;
		case '\n': e = idb_buf_add(b, "\\n", 2); break;
		case '\r': e = idb_buf_add(b, "\\r", 2); break;
		case '\t': e = idb_buf_add(b, "\\t", 2); break;
		default:
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			e = idb_buf_add(b, esc, 6);
		}
	}
	if (e == IDB_OK && p > run)
		e = idb_buf_add(b, run, (size_t)(p - run));
	return e == IDB_OK ? idb_buf_add(b, "\"", 1) : e;
}

static enum idb_err
json_number(struct idb_buf *b, double d)
{
	char tmp[32];
	int n;

	if (d != d || d > 1e308 || d < -1e308)
		return idb_buf_addstr(b, "null"); /* NaN and infinities, as cJSON writes them */
	if (d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(long long)d) {
		if (d < 0) {
			if (idb_buf_add(b, "-", 1) != IDB_OK)
				return IDB_E_TOOBIG;
			return idb_buf_addu(b, (unsigned long long)(-(long long)d));
		}
		return idb_buf_addu(b, (unsigned long long)(long long)d);
	}
	n = snprintf(tmp, sizeof(tmp), "%1.15g", d);
	if (n > 0 && (size_t)n < sizeof(tmp) && strtod(tmp, NULL) != d)
		n = snprintf(tmp, sizeof(tmp), "%1.17g", d);
	if (n <= 0 || (size_t)n >= sizeof(tmp))
		return IDB_E_TOOBIG;
	return idb_buf_add(b, tmp, (size_t)n);
}

static enum idb_err
json_write(struct idb_buf *b, const cJSON *j, int depth)
{
	const cJSON *c;
	enum idb_err e;
	int first = 1;

	if (depth > 64)
		return IDB_E_TOOBIG;
	if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
		int obj = cJSON_IsObject(j);

		if ((e = idb_buf_add(b, obj ? "{" : "[", 1)) != IDB_OK)
			return e;
		for (c = j->child; c != NULL; c = c->next) {
			if (!first && (e = idb_buf_add(b, ",", 1)) != IDB_OK)
				return e;
			first = 0;
			if (obj && ((e = json_string(b, c->string ? c->string : "")) != IDB_OK ||
			            (e = idb_buf_add(b, ":", 1)) != IDB_OK))
				return e;
			if ((e = json_write(b, c, depth + 1)) != IDB_OK)
				return e;
		}
		return idb_buf_add(b, obj ? "}" : "]", 1);
	}
	if (cJSON_IsString(j))
		return json_string(b, j->valuestring ? j->valuestring : "");
	if (cJSON_IsNumber(j))
		return json_number(b, j->valuedouble);
	if (cJSON_IsTrue(j))
		return idb_buf_addstr(b, "true");
	if (cJSON_IsFalse(j))
		return idb_buf_addstr(b, "false");
	if (cJSON_IsRaw(j))
		return idb_buf_addstr(b, j->valuestring ? j->valuestring : "");
	return idb_buf_addstr(b, "null");
}

enum idb_err
idb_resp_json(struct idb_resp *r, int status, const cJSON *j)
{
	enum idb_err e;

	if (j == NULL)
		return IDB_E_NOMEM;
	idb_buf_reset(&r->body);
	if ((e = json_write(&r->body, j, 0)) != IDB_OK) {
		idb_buf_reset(&r->body);
		return e;
	}
	r->status = status;
	return IDB_OK;
}

void
idb_resp_error(struct idb_resp *r, enum idb_err e, const cJSON *fields)
{
	const cJSON *f;

	if (e == IDB_OK)
		e = IDB_E_INTERNAL;
	idb_buf_reset(&r->body);
	r->status = idb_err_status(e);
	r->content_type = "application/json; charset=utf-8";
	idb_buf_addstr(&r->body, "{\"error\":{\"code\":\"");
	idb_buf_addstr(&r->body, idb_err_code(e));
	idb_buf_addstr(&r->body, "\",\"message\":\"");
	idb_buf_addjson(&r->body, idb_err_message(e));
	idb_buf_addstr(&r->body, "\"");
	if (e == IDB_E_VALIDATION && fields != NULL) {
		idb_buf_addstr(&r->body, ",\"fields\":{");
		for (f = fields->child; f != NULL; f = f->next) {
			if (f != fields->child)
				idb_buf_addstr(&r->body, ",");
			idb_buf_addstr(&r->body, "\"");
			idb_buf_addjson(&r->body, f->string ? f->string : "");
			idb_buf_addstr(&r->body, "\":\"");
			idb_buf_addjson(&r->body, cJSON_IsString(f) ? f->valuestring : "invalid");
			idb_buf_addstr(&r->body, "\"");
		}
		idb_buf_addstr(&r->body, "}");
	}
	idb_buf_addstr(&r->body, "}}");
	if (r->status == 503 || r->status == 429) {
		size_t i;
		int have = 0;

		for (i = 0; i < r->nhdr; i++)
			if (strcmp(r->hdr[i].name, "Retry-After") == 0)
				have = 1;
		if (!have)
			idb_resp_header(r, "Retry-After", r->status == 503 ? "30" : "900");
	}
}
