/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/http/req: the JSON body checks (depth, UTF-8, NUL bytes,
 * root type, trailing bytes), query parameters, cookies, the client address
 * behind trusted proxies, and the error response shape of api.md.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "http/req.h"

struct fx {
	struct idb_arena arena;
	struct idb_req req;
	struct idb_resp resp;
	struct idb_cidr_list proxies;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	idb_arena_init(&f->arena, IDB_ARENA_MAX);
	f->req.arena = &f->arena;
	f->req.method = "GET";
	f->req.path = "/";
	f->req.query = "";
	idb_resp_init(&f->resp);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	idb_resp_free(&f->resp);
	idb_arena_free(&f->arena);
	free(f);
	return 0;
}

/* Parses len bytes; returns the error and frees any tree. */
static enum idb_err
parse_n(const char *s, size_t len)
{
	cJSON *j = (cJSON *)1;
	enum idb_err e = idb_json_parse(s, len, &j);

	if (e != IDB_OK)
		assert_null(j);
	else
		assert_non_null(j);
	cJSON_Delete(e == IDB_OK ? j : NULL);
	return e;
}

static enum idb_err
parse(const char *s)
{
	return parse_n(s, strlen(s));
}

/*
 * {"a": + (depth - 1) openers of kind + 0 + closers + }: an object root
 * nested `depth` levels deep in total. Caller frees.
 */
static char *
nested(int depth, char open)
{
	char close = open == '[' ? ']' : '}';
	size_t cap = (size_t)depth * 8 + 32, n = 0;
	char *s = malloc(cap);
	int i;

	assert_non_null(s);
	memcpy(s + n, "{\"a\":", 5);
	n += 5;
	for (i = 1; i < depth; i++) {
		if (open == '[')
			s[n++] = '[';
		else {
			memcpy(s + n, "{\"a\":", 5);
			n += 5;
		}
	}
	s[n++] = '0';
	for (i = 1; i < depth; i++)
		s[n++] = close;
	s[n++] = '}';
	s[n] = '\0';
	return s;
}

/* a followed by b, in malloc'd memory the caller frees. */
static char *
cat2(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	char *s = malloc(na + nb + 1);

	assert_non_null(s);
	memcpy(s, a, na);
	memcpy(s + na, b, nb + 1);
	return s;
}

/* ---- idb_json_parse ---- */

static void
json_object_of_depth_32_is_accepted(void **state)
{
	char *s = nested(IDB_JSON_DEPTH_MAX, '{');

	(void)state;
	assert_int_equal(parse(s), IDB_OK);
	free(s);
}

static void
json_object_of_depth_33_is_refused(void **state)
{
	char *s = nested(IDB_JSON_DEPTH_MAX + 1, '{');

	(void)state;
	assert_int_equal(parse(s), IDB_E_INVALID_JSON);
	free(s);
}

static void
json_arrays_count_toward_depth(void **state)
{
	char *ok = nested(IDB_JSON_DEPTH_MAX, '['), *bad = nested(IDB_JSON_DEPTH_MAX + 1, '[');

	(void)state;
	assert_int_equal(parse(ok), IDB_OK);
	assert_int_equal(parse(bad), IDB_E_INVALID_JSON);
	free(ok);
	free(bad);
}

static void
json_very_deep_nesting_is_refused(void **state)
{
	char *s = nested(100000, '[');

	(void)state;
	assert_int_equal(parse(s), IDB_E_INVALID_JSON);
	free(s);
}

static void
json_siblings_do_not_add_depth(void **state)
{
	char *deep = nested(IDB_JSON_DEPTH_MAX, '['), *s;

	(void)state;
	/* {"x":[[],...],"a":<depth 32>}: many brackets, never deeper than 32. */
	s = cat2("{\"x\":[[],[],[[]],{}],", deep + 1); /* deep without its '{' */
	assert_int_equal(parse(s), IDB_OK);
	free(s);
	free(deep);
}

static void
json_brackets_inside_strings_do_not_count(void **state)
{
	char s[512];
	int i, n = 0;

	(void)state;
	n += snprintf(s + n, sizeof(s) - (size_t)n, "{\"a\":\"");
	for (i = 0; i < 100; i++)
		s[n++] = (char)(i % 2 ? '[' : '{');
	n += snprintf(s + n, sizeof(s) - (size_t)n, "\"}");
	assert_int_equal(parse(s), IDB_OK);
}

static void
json_closing_brackets_inside_strings_do_not_reduce_depth(void **state)
{
	char *deep = nested(IDB_JSON_DEPTH_MAX + 1, '['), *s;

	(void)state;
	/* {"z":"]]]]}}}}...","a":<depth 33>}: the string's brackets must not cancel depth. */
	s = cat2("{\"z\":\"]]]]]]]]]]]]]]]]]]]]}}}}}}}}}}}}}}}}}}}}\",", deep + 1);
	assert_int_equal(parse(s), IDB_E_INVALID_JSON);
	free(s);
	free(deep);
}

static void
json_escaped_quotes_keep_the_string_open(void **state)
{
	(void)state;
	/* The brackets after \" are still inside the string. */
	assert_int_equal(parse("{\"a\":\"x\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\" y\"}"), IDB_OK);
	assert_int_equal(parse("{\"a\\\"b\":\"\\\\\\\"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\"}"), IDB_OK);
}

static void
json_escaped_backslash_closes_the_string(void **state)
{
	char *deep = nested(IDB_JSON_DEPTH_MAX + 1, '['), *s;

	(void)state;
	/* {"z":"\\",<depth 33>}: the quote after \\ ends the string; depth counts again. */
	s = cat2("{\"z\":\"\\\\\",", deep + 1);
	assert_int_equal(parse(s), IDB_E_INVALID_JSON);
	free(s);
	free(deep);
}

static void
json_valid_utf8_is_accepted(void **state)
{
	cJSON *j = NULL;
	const char *s = "{\"name\":\"Jos\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"}";

	(void)state;
	assert_int_equal(idb_json_parse(s, strlen(s), &j), IDB_OK);
	assert_string_equal(cJSON_GetObjectItem(j, "name")->valuestring,
	                    "Jos\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");
	cJSON_Delete(j);
}

static void
json_invalid_utf8_is_refused(void **state)
{
	static const char *const bad[] = {
		"{\"a\":\"\xc0\xaf\"}",             /* overlong '/' */
		"{\"a\":\"\xc1\xbf\"}",             /* overlong */
		"{\"a\":\"\xe0\x80\xaf\"}",         /* overlong, 3 bytes */
		"{\"a\":\"\xf0\x80\x80\xaf\"}",     /* overlong, 4 bytes */
		"{\"a\":\"\xed\xa0\x80\"}",         /* surrogate U+D800 */
		"{\"a\":\"\xed\xbf\xbf\"}",         /* surrogate U+DFFF */
		"{\"a\":\"\xf4\x90\x80\x80\"}",     /* above U+10FFFF */
		"{\"a\":\"\xe2\x82\"}",             /* truncated */
		"{\"a\":\"\xf0\x9f\x98\"}",         /* truncated */
		"{\"a\":\"\x80\"}",                 /* lone continuation byte */
		"{\"a\":\"\xff\"}",
		"{\"a\":\"\xfe\"}",
		"{\"\xc3\":1}",                     /* in a key */
		"{\"a\":1}\xc3",                    /* truncated at the very end */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i]) != IDB_E_INVALID_JSON)
			fail_msg("invalid UTF-8 #%zu was accepted", i);
}

static void
json_escaped_lone_surrogate_is_refused(void **state)
{
	(void)state;
	assert_int_equal(parse("{\"a\":\"\\ud800\"}"), IDB_E_INVALID_JSON);
	assert_int_equal(parse("{\"a\":\"\\udc00\"}"), IDB_E_INVALID_JSON);
	assert_int_equal(parse("{\"a\":\"\\ud83d\\ude00\"}"), IDB_OK);
}

static void
json_nul_byte_is_refused(void **state)
{
	static const char in_string[] = "{\"a\":\"x\0y\"}";
	static const char after[] = "{\"a\":1}\0";
	static const char in_key[] = "{\"a\0\":1}";
	static const char after_escape[] = "{\"a\":\"\\\0\"}"; /* a backslash, then NUL */

	(void)state;
	assert_int_equal(parse_n(in_string, sizeof(in_string) - 1), IDB_E_INVALID_JSON);
	assert_int_equal(parse_n(after, sizeof(after) - 1), IDB_E_INVALID_JSON);
	assert_int_equal(parse_n(in_key, sizeof(in_key) - 1), IDB_E_INVALID_JSON);
	assert_int_equal(parse_n(after_escape, sizeof(after_escape) - 1), IDB_E_INVALID_JSON);
}

static void
json_non_object_root_is_refused(void **state)
{
	static const char *const bad[] = {"[]", "[{}]", "\"s\"", "1", "null", "true", "false", "-0.5"};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i]) != IDB_E_INVALID_JSON)
			fail_msg("root %s was accepted", bad[i]);
	assert_int_equal(parse("{}"), IDB_OK);
	assert_int_equal(parse(" \n\t{ } \r\n"), IDB_OK);
}

static void
json_trailing_garbage_is_refused(void **state)
{
	static const char *const bad[] = {"{} x", "{}{}", "{\"a\":1},", "{\"a\":1}]", "{\"a\":1} // c", "{}}"};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i]) != IDB_E_INVALID_JSON)
			fail_msg("%s was accepted", bad[i]);
}

static void
json_empty_or_blank_or_malformed_body_is_refused(void **state)
{
	static const char *const bad[] = {"", " ", "\n", "{", "}", "{\"a\"}", "{\"a\":}", "{a:1}", "{'a':1}",
	                                  "{\"a\":1,}", "{\"a\":[1,]}", "{\"a\":+1}", "{\"a\":.5}", "{\"a\":0x10}",
	                                  "{\"a\":NaN}", "{\"a\":tru}", "{\"a\":\"\\x41\"}"};
	size_t i;

	(void)state;
	assert_int_equal(parse_n("{}", 0), IDB_E_INVALID_JSON);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i]) != IDB_E_INVALID_JSON)
			fail_msg("'%s' was accepted", bad[i]);
}

/*
 * RFC 8259 grammar that cJSON lets through: leading zeros, a number ending in
 * '.', raw control characters inside strings, \u escapes that are not four
 * hex digits. None of these is JSON, so each must be 400 invalid_json.
 */
static void
json_grammar_cjson_tolerates_is_still_refused(void **state)
{
	static const char *const bad[] = {
		"{\"a\":01}",        "{\"a\":-01}", "{\"a\":1.}",        "{\"a\":\"x\ny\"}",
		"{\"a\":\"x\ty\"}",   "{\"a\":\"\x01\"}", "{\"a\":\"\\u00zz\"}", "{\"a\":\"\\u12\"}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i]) != IDB_E_INVALID_JSON)
			fail_msg("not JSON, but accepted: %s", bad[i]);
}

static void
json_parse_reads_only_len_bytes(void **state)
{
	static const char buf[] = "{\"a\":1}garbage";

	(void)state;
	assert_int_equal(parse_n(buf, 7), IDB_OK);
}

static void
req_json_ties_the_tree_to_the_arena(void **state)
{
	struct fx *f = *state;
	cJSON *j = NULL;

	f->req.body = "{\"a\":[1,2,3]}";
	f->req.body_len = strlen(f->req.body);
	assert_int_equal(idb_req_json(&f->req, &j), IDB_OK);
	assert_non_null(j);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "a")), 3);
	/* No cJSON_Delete here: the arena frees it (ASan's leak check verifies). */
	idb_arena_reset(&f->arena);
}

static void
req_json_without_body_is_invalid_json(void **state)
{
	struct fx *f = *state;
	cJSON *j = (cJSON *)1;

	f->req.body = NULL;
	f->req.body_len = 0;
	assert_int_equal(idb_req_json(&f->req, &j), IDB_E_INVALID_JSON);
	assert_null(j);
}

/* ---- idb_req_query ---- */

static enum idb_err
q(struct fx *f, const char *query, const char *name, const char **out)
{
	f->req.query = query;
	*out = (const char *)1;
	return idb_req_query(&f->req, name, out);
}

static void
query_returns_decoded_values(void **state)
{
	struct fx *f = *state;
	const char *v;
	const char *query = "a=1&q=hello%20world&p=x+y&amp=%26%3D%2B&utf=%C3%A9&empty=&bare";

	assert_int_equal(q(f, query, "a", &v), IDB_OK);
	assert_string_equal(v, "1");
	assert_int_equal(q(f, query, "q", &v), IDB_OK);
	assert_string_equal(v, "hello world");
	assert_int_equal(q(f, query, "p", &v), IDB_OK);
	assert_string_equal(v, "x y");
	assert_int_equal(q(f, query, "amp", &v), IDB_OK);
	assert_string_equal(v, "&=+");
	assert_int_equal(q(f, query, "utf", &v), IDB_OK);
	assert_string_equal(v, "\xc3\xa9");
	assert_int_equal(q(f, query, "empty", &v), IDB_OK);
	assert_string_equal(v, "");
	assert_int_equal(q(f, query, "bare", &v), IDB_OK);
	assert_string_equal(v, "");
	assert_int_equal(q(f, "x=%7e%7E", "x", &v), IDB_OK); /* hex digits in either case */
	assert_string_equal(v, "~~");
}

static void
query_absent_parameter_is_null(void **state)
{
	struct fx *f = *state;
	const char *v;

	assert_int_equal(q(f, "a=1&b=2", "c", &v), IDB_OK);
	assert_null(v);
	assert_int_equal(q(f, "", "c", &v), IDB_OK);
	assert_null(v);
	/* A name that is a prefix or suffix of another is not that one. */
	assert_int_equal(q(f, "ab=1&xa=2", "a", &v), IDB_OK);
	assert_null(v);
	assert_int_equal(q(f, "a=1&ab=2", "ab", &v), IDB_OK);
	assert_string_equal(v, "2");
	/* Only names are matched, never values. */
	assert_int_equal(q(f, "x=a", "a", &v), IDB_OK);
	assert_null(v);
	f->req.query = NULL;
	v = (const char *)1;
	assert_int_equal(idb_req_query(&f->req, "a", &v), IDB_OK);
	assert_null(v);
}

static void
query_bad_percent_escapes_are_bad_request(void **state)
{
	static const char *const bad[] = {"a=%", "a=%4", "a=%zz", "a=%4g", "a=%g4", "a=x%2", "a=%%41", "a=%00",
	                                  "a=x%00y", "a=%2&b=1"};
	struct fx *f = *state;
	const char *v;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (q(f, bad[i], "a", &v) != IDB_E_BAD_REQUEST)
			fail_msg("query '%s' was accepted", bad[i]);
}

static void
query_repeated_parameter_is_bad_request(void **state)
{
	struct fx *f = *state;
	const char *v;

	assert_int_equal(q(f, "a=1&a=2", "a", &v), IDB_E_BAD_REQUEST);
	assert_int_equal(q(f, "a=1&b=2&a=1", "a", &v), IDB_E_BAD_REQUEST);
	assert_int_equal(q(f, "a&a=1", "a", &v), IDB_E_BAD_REQUEST);
	assert_int_equal(q(f, "a=&a", "a", &v), IDB_E_BAD_REQUEST);
	/* Another parameter repeated does not matter to this one. */
	assert_int_equal(q(f, "b=1&b=2&a=3", "a", &v), IDB_OK);
	assert_string_equal(v, "3");
}

static void
query_over_length_limit_is_bad_request(void **state)
{
	struct fx *f = *state;
	char *s = malloc(IDB_QUERY_LEN_MAX + 2);
	const char *v;

	assert_non_null(s);
	memcpy(s, "a=", 2);
	memset(s + 2, 'x', IDB_QUERY_LEN_MAX - 2);
	s[IDB_QUERY_LEN_MAX] = '\0';
	assert_int_equal(q(f, s, "a", &v), IDB_OK);
	assert_int_equal(strlen(v), IDB_QUERY_LEN_MAX - 2);
	s[IDB_QUERY_LEN_MAX] = 'x';
	s[IDB_QUERY_LEN_MAX + 1] = '\0';
	assert_int_equal(q(f, s, "a", &v), IDB_E_BAD_REQUEST);
	free(s);
}

static void
query_tolerates_empty_pairs(void **state)
{
	struct fx *f = *state;
	const char *v;

	assert_int_equal(q(f, "&&a=1&", "a", &v), IDB_OK);
	assert_string_equal(v, "1");
	assert_int_equal(q(f, "=x&a=2", "a", &v), IDB_OK);
	assert_string_equal(v, "2");
}

/* ---- idb_req_cookie ---- */

static void
cookie_is_found_among_others(void **state)
{
	struct fx *f = *state;
	const char *v;

	f->req.cookie = "theme=dark; immidb_session=tok123; lang=en";
	assert_non_null(v = idb_req_cookie(&f->req, "immidb_session"));
	assert_string_equal(v, "tok123");
	assert_string_equal(idb_req_cookie(&f->req, "theme"), "dark");
	assert_string_equal(idb_req_cookie(&f->req, "lang"), "en");
	f->req.cookie = "a=1;immidb_session=t2";
	assert_string_equal(idb_req_cookie(&f->req, "immidb_session"), "t2");
	f->req.cookie = "s=a=b";
	assert_string_equal(idb_req_cookie(&f->req, "s"), "a=b");
	f->req.cookie = "s=";
	assert_string_equal(idb_req_cookie(&f->req, "s"), "");
}

static void
cookie_absent_or_only_similar_is_null(void **state)
{
	struct fx *f = *state;

	f->req.cookie = NULL;
	assert_null(idb_req_cookie(&f->req, "immidb_session"));
	f->req.cookie = "";
	assert_null(idb_req_cookie(&f->req, "immidb_session"));
	f->req.cookie = "ximmidb_session=1; immidb_session_old=2; immidb_sessio=3";
	assert_null(idb_req_cookie(&f->req, "immidb_session"));
	f->req.cookie = "a=immidb_session; immidb_session";
	assert_null(idb_req_cookie(&f->req, "immidb_session"));
	f->req.cookie = ";;; ;";
	assert_null(idb_req_cookie(&f->req, "immidb_session"));
}

/* ---- idb_req_client_ip ---- */

static const char *
client_ip(struct fx *f, const char *proxies, const char *remote, const char *xff)
{
	assert_int_equal(idb_cidr_list_parse(proxies, &f->proxies), IDB_OK);
	f->req.remote_addr = remote;
	f->req.forwarded_for = xff;
	f->req.client_ip = NULL;
	idb_req_client_ip(&f->req, &f->proxies);
	assert_non_null(f->req.client_ip);
	return f->req.client_ip;
}

static void
client_ip_is_the_peer_without_forwarded_for(void **state)
{
	struct fx *f = *state;

	assert_string_equal(client_ip(f, "127.0.0.1", "127.0.0.1", NULL), "127.0.0.1");
	assert_string_equal(client_ip(f, "", "203.0.113.5", NULL), "203.0.113.5");
	assert_string_equal(client_ip(f, "127.0.0.1", NULL, NULL), "");
}

static void
client_ip_ignores_forwarded_for_when_no_proxy_is_trusted(void **state)
{
	struct fx *f = *state;

	assert_string_equal(client_ip(f, "", "127.0.0.1", "203.0.113.7"), "127.0.0.1");
}

static void
client_ip_ignores_forwarded_for_from_an_untrusted_peer(void **state)
{
	struct fx *f = *state;

	assert_string_equal(client_ip(f, "127.0.0.1", "198.51.100.9", "203.0.113.7"), "198.51.100.9");
	assert_string_equal(client_ip(f, "10.0.0.0/8", "11.0.0.1", "10.0.0.5"), "11.0.0.1");
}

static void
client_ip_believes_forwarded_for_from_a_trusted_peer(void **state)
{
	struct fx *f = *state;

	assert_string_equal(client_ip(f, "127.0.0.1", "127.0.0.1", "203.0.113.7"), "203.0.113.7");
	assert_string_equal(client_ip(f, "::1", "::1", " 2001:db8::7 "), "2001:db8::7");
	/* An IPv4 proxy given as an IPv4-mapped peer address is still that proxy. */
	assert_string_equal(client_ip(f, "127.0.0.1", "::ffff:127.0.0.1", "203.0.113.7"), "203.0.113.7");
}

static void
client_ip_is_the_right_most_untrusted_hop(void **state)
{
	struct fx *f = *state;

	/* The client can write anything to the left; the first untrusted hop from the right counts. */
	assert_string_equal(client_ip(f, "127.0.0.1, 10.0.0.0/8", "127.0.0.1", "198.51.100.1, 203.0.113.7, 10.0.0.2"),
	                    "203.0.113.7");
	assert_string_equal(client_ip(f, "127.0.0.1", "127.0.0.1", "1.1.1.1,2.2.2.2,3.3.3.3"), "3.3.3.3");
	assert_string_equal(client_ip(f, "127.0.0.1", "127.0.0.1", "1.1.1.1, 127.0.0.1"), "1.1.1.1");
}

static void
client_ip_ignores_garbage_in_forwarded_for(void **state)
{
	struct fx *f = *state;

	assert_string_equal(client_ip(f, "127.0.0.1", "127.0.0.1", "not-an-ip"), "127.0.0.1");
	assert_string_equal(client_ip(f, "127.0.0.1", "127.0.0.1", ""), "127.0.0.1");
	assert_string_equal(client_ip(f, "127.0.0.1", "127.0.0.1", "1.2.3.4, garbage"), "127.0.0.1");
	assert_string_equal(client_ip(f, "127.0.0.1", "127.0.0.1", "203.0.113.7:5555"), "127.0.0.1");
	assert_string_equal(client_ip(f, "127.0.0.1", "127.0.0.1", "300.1.1.1"), "127.0.0.1");
	assert_string_equal(client_ip(f, "127.0.0.1", "127.0.0.1", "1.2.3.4,,"), "127.0.0.1");
	assert_string_equal(client_ip(f, "127.0.0.1", "127.0.0.1",
	                              "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd:eeee"),
	                    "127.0.0.1");
	/* Garbage further left than the first untrusted hop does not matter. */
	assert_string_equal(client_ip(f, "127.0.0.1", "127.0.0.1", "garbage, 203.0.113.7"), "203.0.113.7");
	/* Garbage left of a trusted hop: keep the last address that hop vouched for. */
	assert_string_equal(client_ip(f, "127.0.0.1, 10.0.0.0/8", "127.0.0.1", "x, 10.0.0.2"), "10.0.0.2");
}

/* ---- idb_resp_error ---- */

static cJSON *
body_json(struct fx *f)
{
	cJSON *j;

	assert_non_null(f->resp.body.data);
	j = cJSON_ParseWithLength(f->resp.body.data, f->resp.body.len);
	if (j == NULL)
		fail_msg("error body is not JSON: %s", f->resp.body.data);
	return j;
}

static const char *
header(struct fx *f, const char *name, int *count)
{
	const char *v = NULL;
	size_t i;

	*count = 0;
	for (i = 0; i < f->resp.nhdr; i++)
		if (strcmp(f->resp.hdr[i].name, name) == 0) {
			v = f->resp.hdr[i].value;
			(*count)++;
		}
	return v;
}

static void
error_body_has_code_and_message_only(void **state)
{
	struct fx *f = *state;
	cJSON *j, *err;
	int n;

	idb_resp_error(&f->resp, IDB_E_NOT_FOUND, NULL);
	assert_int_equal(f->resp.status, 404);
	assert_string_equal(f->resp.content_type, "application/json; charset=utf-8");
	j = body_json(f);
	assert_int_equal(cJSON_GetArraySize(j), 1);
	err = cJSON_GetObjectItemCaseSensitive(j, "error");
	assert_true(cJSON_IsObject(err));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(err, "code")->valuestring, "not_found");
	assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(err, "message")));
	assert_true(strlen(cJSON_GetObjectItemCaseSensitive(err, "message")->valuestring) > 0);
	assert_null(cJSON_GetObjectItemCaseSensitive(err, "fields"));
	assert_null(header(f, "Retry-After", &n));
	cJSON_Delete(j);
}

static void
error_validation_lists_fields_with_escaping(void **state)
{
	struct fx *f = *state;
	cJSON *fields = cJSON_CreateObject(), *j, *got;

	cJSON_AddStringToObject(fields, "email", "must be an email address");
	cJSON_AddStringToObject(fields, "na\"me", "too \\ long\n");
	idb_resp_error(&f->resp, IDB_E_VALIDATION, fields);
	assert_int_equal(f->resp.status, 422);
	j = body_json(f);
	got = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "fields");
	assert_true(cJSON_IsObject(got));
	assert_int_equal(cJSON_GetArraySize(got), 2);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(got, "email")->valuestring, "must be an email address");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(got, "na\"me")->valuestring, "too \\ long\n");
	assert_string_equal(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "code")->valuestring,
	    "validation_failed");
	cJSON_Delete(j);
	cJSON_Delete(fields);
}

static void
error_fields_are_left_out_for_other_errors(void **state)
{
	struct fx *f = *state;
	cJSON *fields = cJSON_CreateObject(), *j;

	cJSON_AddStringToObject(fields, "email", "x");
	idb_resp_error(&f->resp, IDB_E_CONFLICT, fields);
	assert_int_equal(f->resp.status, 409);
	j = body_json(f);
	assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "fields"));
	cJSON_Delete(j);
	cJSON_Delete(fields);
}

static void
error_503_carries_retry_after_once(void **state)
{
	struct fx *f = *state;
	long long secs;
	const char *v;
	cJSON *j;
	int n;

	idb_resp_error(&f->resp, IDB_E_UNAVAILABLE, NULL);
	assert_int_equal(f->resp.status, 503);
	assert_non_null(v = header(f, "Retry-After", &n));
	assert_int_equal(n, 1);
	assert_int_equal(idb_parse_ll(v, 1, 86400, &secs), 0);
	j = body_json(f);
	assert_string_equal(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "code")->valuestring,
	    "unavailable");
	cJSON_Delete(j);
	/* A second error on the same response does not add a second header. */
	idb_resp_error(&f->resp, IDB_E_SCHEMA_BEHIND, NULL);
	assert_int_equal(f->resp.status, 503);
	header(f, "Retry-After", &n);
	assert_int_equal(n, 1);
}

static void
error_schema_behind_is_503_unavailable_with_retry_after(void **state)
{
	struct fx *f = *state;
	cJSON *j;
	int n;

	idb_resp_error(&f->resp, IDB_E_SCHEMA_BEHIND, NULL);
	assert_int_equal(f->resp.status, 503);
	assert_non_null(header(f, "Retry-After", &n));
	j = body_json(f);
	assert_string_equal(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "code")->valuestring,
	    "unavailable");
	cJSON_Delete(j);
}

static void
error_429_carries_retry_after(void **state)
{
	struct fx *f = *state;
	int n;

	idb_resp_error(&f->resp, IDB_E_TOO_MANY_REQUESTS, NULL);
	assert_int_equal(f->resp.status, 429);
	assert_non_null(header(f, "Retry-After", &n));
	assert_int_equal(n, 1);
}

static void
error_internal_causes_do_not_leak_details(void **state)
{
	static const enum idb_err internal[] = {IDB_E_DB, IDB_E_IO, IDB_E_CRYPTO, IDB_E_BADKEY, IDB_E_NOMEM,
	                                        IDB_E_CONFIG, IDB_E_PERM, IDB_E_TOOBIG};
	struct fx *f = *state;
	cJSON *j, *err;
	size_t i;

	for (i = 0; i < sizeof(internal) / sizeof(internal[0]); i++) {
		idb_resp_error(&f->resp, internal[i], NULL);
		assert_int_equal(f->resp.status, 500);
		j = body_json(f);
		err = cJSON_GetObjectItemCaseSensitive(j, "error");
		assert_string_equal(cJSON_GetObjectItemCaseSensitive(err, "code")->valuestring, "internal");
		assert_string_equal(cJSON_GetObjectItemCaseSensitive(err, "message")->valuestring,
		                    idb_err_message(IDB_E_INTERNAL));
		cJSON_Delete(j);
	}
}

static void
error_with_ok_becomes_internal(void **state)
{
	struct fx *f = *state;

	idb_resp_error(&f->resp, IDB_OK, NULL);
	assert_int_equal(f->resp.status, 500);
}

static void
error_replaces_an_earlier_body(void **state)
{
	struct fx *f = *state;
	cJSON *j;

	assert_int_equal(idb_buf_addstr(&f->resp.body, "{\"partial\":"), IDB_OK);
	f->resp.content_type = "application/x-ndjson";
	idb_resp_error(&f->resp, IDB_E_FORBIDDEN, NULL);
	assert_int_equal(f->resp.status, 403);
	assert_string_equal(f->resp.content_type, "application/json; charset=utf-8");
	j = body_json(f);
	assert_null(cJSON_GetObjectItemCaseSensitive(j, "partial"));
	cJSON_Delete(j);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)


/* The response writer writes exactly what cJSON_PrintUnformatted would. */
static void
resp_json_matches_cjson_print(void **state)
{
	static const char *const docs[] = {
	    "{}", "[]", "{\"a\":1,\"b\":-2,\"c\":0,\"d\":2147483647,\"e\":-2147483648}",
	    "{\"f\":0.1,\"g\":1.5e300,\"h\":-3.25,\"i\":123456789012345678901234567890}",
	    "{\"s\":\"quote \\\" backslash \\\\ slash / tab \\t nl \\n cr \\r bs \\b ff \\f nul-ish \\u0001 \\u001f\"}",
	    "{\"u\":\"\\u00e9t\\u00e9 \\u2014 \\ud83d\\ude00\",\"t\":true,\"f\":false,\"n\":null}",
	    "[[1,[2,[3,{\"x\":[]}]]],{\"\\\"k\":\"v\"}]",
	    "{\"items\":[{\"id\":\"c_1\",\"version\":3,\"a_number\":{\"set\":true}}],\"next_cursor\":null}",
	};
	struct idb_resp r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		cJSON *j = cJSON_Parse(docs[i]);
		char *want;

		assert_non_null(j);
		want = cJSON_PrintUnformatted(j);
		assert_non_null(want);
		idb_resp_init(&r);
		assert_int_equal(idb_resp_json(&r, 200, j), IDB_OK);
		assert_int_equal(r.status, 200);
		assert_non_null(r.body.data);
		assert_string_equal(r.body.data, want);
		idb_resp_free(&r);
		cJSON_free(want);
		cJSON_Delete(j);
	}
	/* Past int, cJSON rounds integers to 15 digits; the writer keeps them exact. */
	{
		cJSON *j = cJSON_Parse("[9007199254740991,-9007199254740991,4294967296]");

		assert_non_null(j);
		idb_resp_init(&r);
		assert_int_equal(idb_resp_json(&r, 200, j), IDB_OK);
		assert_string_equal(r.body.data, "[9007199254740991,-9007199254740991,4294967296]");
		idb_resp_free(&r);
		cJSON_Delete(j);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(json_object_of_depth_32_is_accepted),
		T(json_object_of_depth_33_is_refused),
		T(json_arrays_count_toward_depth),
		T(json_very_deep_nesting_is_refused),
		T(json_siblings_do_not_add_depth),
		T(json_brackets_inside_strings_do_not_count),
		T(json_closing_brackets_inside_strings_do_not_reduce_depth),
		T(json_escaped_quotes_keep_the_string_open),
		T(json_escaped_backslash_closes_the_string),
		T(json_valid_utf8_is_accepted),
		T(json_invalid_utf8_is_refused),
		T(json_escaped_lone_surrogate_is_refused),
		T(json_nul_byte_is_refused),
		T(json_non_object_root_is_refused),
		T(json_trailing_garbage_is_refused),
		T(json_empty_or_blank_or_malformed_body_is_refused),
		T(json_grammar_cjson_tolerates_is_still_refused),
		T(json_parse_reads_only_len_bytes),
		T(req_json_ties_the_tree_to_the_arena),
		T(req_json_without_body_is_invalid_json),
		T(query_returns_decoded_values),
		T(query_absent_parameter_is_null),
		T(query_bad_percent_escapes_are_bad_request),
		T(query_repeated_parameter_is_bad_request),
		T(query_over_length_limit_is_bad_request),
		T(query_tolerates_empty_pairs),
		T(cookie_is_found_among_others),
		T(cookie_absent_or_only_similar_is_null),
		T(client_ip_is_the_peer_without_forwarded_for),
		T(client_ip_ignores_forwarded_for_when_no_proxy_is_trusted),
		T(client_ip_ignores_forwarded_for_from_an_untrusted_peer),
		T(client_ip_believes_forwarded_for_from_a_trusted_peer),
		T(client_ip_is_the_right_most_untrusted_hop),
		T(client_ip_ignores_garbage_in_forwarded_for),
		T(error_body_has_code_and_message_only),
		T(error_validation_lists_fields_with_escaping),
		T(error_fields_are_left_out_for_other_errors),
		T(error_503_carries_retry_after_once),
		T(error_schema_behind_is_503_unavailable_with_retry_after),
		T(error_429_carries_retry_after),
		T(error_internal_causes_do_not_leak_details),
		T(error_with_ok_becomes_internal),
		T(error_replaces_an_earlier_body),
		T(resp_json_matches_cjson_print),
	};

	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
