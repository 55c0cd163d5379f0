/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/core (arena, buf, cidr, util, err) and of the small
 * validators and password functions built on them (auth/users, crypto/pw).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "auth/users.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/cidr.h"
#include "core/err.h"
#include "core/util.h"
#include "crypto/pw.h"

/* n copies of the UTF-8 character ch, in malloc'd memory. */
static char *
repeat(const char *ch, size_t n)
{
	size_t len = strlen(ch), i;
	char *s = malloc(len * n + 1);

	assert_non_null(s);
	for (i = 0; i < n; i++)
		memcpy(s + i * len, ch, len);
	s[len * n] = '\0';
	return s;
}

/* ---- arena ---- */

static void
arena_hands_out_memory_up_to_its_limit(void **state)
{
	struct idb_arena a;
	char *p;

	(void)state;
	idb_arena_init(&a, 4096);
	assert_non_null(p = idb_arena_alloc(&a, 4096));
	memset(p, 0x5a, 4096);
	assert_null(idb_arena_alloc(&a, 1));
	assert_true(a.used <= a.limit);
	idb_arena_free(&a);
}

static void
arena_refuses_a_single_allocation_over_the_limit(void **state)
{
	struct idb_arena a;

	(void)state;
	idb_arena_init(&a, 1000);
	assert_null(idb_arena_alloc(&a, 1001));
	assert_null(idb_arena_alloc(&a, SIZE_MAX));
	assert_null(idb_arena_alloc(&a, SIZE_MAX - 8));
	assert_int_equal(a.used, 0);
	assert_non_null(idb_arena_alloc(&a, 10));
	idb_arena_free(&a);
}

static void
arena_limit_counts_many_small_allocations(void **state)
{
	struct idb_arena a;
	size_t got = 0;

	(void)state;
	idb_arena_init(&a, 100000);
	while (idb_arena_alloc(&a, 128) != NULL)
		got += 128;
	assert_true(got > 90000);
	assert_true(got <= 100000);
	assert_true(a.used <= a.limit);
	idb_arena_free(&a);
}

static void
arena_reset_makes_room_again(void **state)
{
	struct idb_arena a;

	(void)state;
	idb_arena_init(&a, 4096);
	assert_non_null(idb_arena_alloc(&a, 4000));
	assert_null(idb_arena_alloc(&a, 200));
	idb_arena_reset(&a);
	assert_int_equal(a.used, 0);
	assert_non_null(idb_arena_alloc(&a, 4000));
	idb_arena_free(&a);
}

static void
arena_memory_is_aligned_and_does_not_overlap(void **state)
{
	struct idb_arena a;
	unsigned char *p[200];
	size_t i, j, size;

	(void)state;
	idb_arena_init(&a, 64 * 1024 * 1024);
	/* Sizes from 1 byte to past a chunk, so several chunks are used. */
	for (i = 0; i < 200; i++) {
		size = i == 100 ? 200000 : i * 37 + 1;
		assert_non_null(p[i] = idb_arena_alloc(&a, size));
		assert_int_equal((uintptr_t)p[i] % _Alignof(max_align_t), 0);
		memset(p[i], (int)i, size);
	}
	for (i = 0; i < 200; i++) {
		size = i == 100 ? 200000 : i * 37 + 1;
		for (j = 0; j < size; j++)
			if (p[i][j] != (unsigned char)i)
				fail_msg("allocation %zu was overwritten at byte %zu", i, j);
	}
	idb_arena_free(&a);
}

static void
arena_calloc_zeroes(void **state)
{
	struct idb_arena a;
	unsigned char *p;
	size_t i;

	(void)state;
	idb_arena_init(&a, 1 << 20);
	p = idb_arena_alloc(&a, 256);
	memset(p, 0xff, 256);
	idb_arena_reset(&a); /* the same memory comes back */
	assert_non_null(p = idb_arena_calloc(&a, 256));
	for (i = 0; i < 256; i++)
		assert_int_equal(p[i], 0);
	idb_arena_free(&a);
}

static int defer_runs;
static int defer_order[4];

static void
count_defer(void *p)
{
	defer_order[defer_runs++ % 4] = *(int *)p;
}

static void
arena_defer_runs_on_reset_once(void **state)
{
	static int one = 1, two = 2;
	struct idb_arena a;

	(void)state;
	defer_runs = 0;
	idb_arena_init(&a, 1 << 20);
	assert_int_equal(idb_arena_defer(&a, count_defer, &one), 0);
	assert_int_equal(idb_arena_defer(&a, count_defer, &two), 0);
	assert_int_equal(defer_runs, 0);
	idb_arena_reset(&a);
	assert_int_equal(defer_runs, 2);
	idb_arena_reset(&a);
	idb_arena_free(&a);
	assert_int_equal(defer_runs, 2);
}

static void
arena_defer_runs_on_free(void **state)
{
	static int three = 3;
	struct idb_arena a;

	(void)state;
	defer_runs = 0;
	idb_arena_init(&a, 1 << 20);
	assert_int_equal(idb_arena_defer(&a, count_defer, &three), 0);
	idb_arena_free(&a);
	assert_int_equal(defer_runs, 1);
	assert_int_equal(defer_order[0], 3);
}

static void
arena_defer_in_a_full_arena_runs_at_once(void **state)
{
	static int four = 4;
	struct idb_arena a;

	(void)state;
	defer_runs = 0;
	idb_arena_init(&a, 64);
	assert_non_null(idb_arena_alloc(&a, 64));
	assert_int_equal(idb_arena_defer(&a, count_defer, &four), -1);
	assert_int_equal(defer_runs, 1);
	idb_arena_free(&a);
	assert_int_equal(defer_runs, 1);
}

static void
json_delete(void *p)
{
	cJSON_Delete(p);
}

static void
arena_defer_frees_cjson_trees(void **state)
{
	struct idb_arena a;
	int i;

	(void)state;
	idb_arena_init(&a, 1 << 20);
	for (i = 0; i < 10; i++)
		assert_int_equal(idb_arena_defer(&a, json_delete, cJSON_Parse("{\"a\":[1,2]}")), 0);
	idb_arena_free(&a); /* ASan's leak check would see a tree left behind */
}

static void
arena_strndup_copies_a_prefix(void **state)
{
	struct idb_arena a;
	char *p;

	(void)state;
	idb_arena_init(&a, 1 << 20);
	assert_non_null(p = idb_arena_strndup(&a, "session=abc; x", 7));
	assert_string_equal(p, "session");
	assert_non_null(p = idb_arena_strndup(&a, "abc", 0));
	assert_string_equal(p, "");
	assert_non_null(p = idb_arena_strdup(&a, "whole string"));
	assert_string_equal(p, "whole string");
	idb_arena_free(&a);
}

static void
arena_strndup_stops_at_the_end_of_a_shorter_string(void **state)
{
	struct idb_arena a;
	char *src = malloc(4), *p;

	(void)state;
	/* strndup semantics: at most n bytes, never past the string's NUL.
	 * src is exactly 4 bytes on the heap, so an over-read shows under ASan. */
	assert_non_null(src);
	memcpy(src, "abc", 4);
	idb_arena_init(&a, 1 << 20);
	assert_non_null(p = idb_arena_strndup(&a, src, 64));
	assert_string_equal(p, "abc");
	assert_non_null(p = idb_arena_strndup(&a, src, SIZE_MAX));
	assert_string_equal(p, "abc");
	idb_arena_free(&a);
	free(src);
}

static void
arena_free_accepts_null_and_twice(void **state)
{
	struct idb_arena a;

	(void)state;
	idb_arena_free(NULL);
	idb_arena_init(&a, 100);
	idb_arena_free(&a);
	idb_arena_free(&a);
}

/* ---- buf ---- */

static void
buf_grows_up_to_its_maximum(void **state)
{
	struct idb_buf b;
	char chunk[100];
	int i;

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	idb_buf_init(&b, 1000);
	for (i = 0; i < 10; i++)
		assert_int_equal(idb_buf_add(&b, chunk, sizeof(chunk)), IDB_OK);
	assert_int_equal(b.len, 1000);
	assert_int_equal(strlen(b.data), 1000);
	assert_int_equal(idb_buf_add(&b, "y", 1), IDB_E_TOOBIG);
	/* A refused append changes nothing. */
	assert_int_equal(b.len, 1000);
	assert_int_equal(b.data[999], 'x');
	assert_int_equal(b.data[1000], '\0');
	idb_buf_free(&b);
}

static void
buf_refuses_every_kind_of_append_past_the_maximum(void **state)
{
	struct idb_buf b;

	(void)state;
	idb_buf_init(&b, 8);
	assert_int_equal(idb_buf_addstr(&b, "12345678"), IDB_OK);
	assert_int_equal(idb_buf_addstr(&b, "9"), IDB_E_TOOBIG);
	assert_int_equal(idb_buf_addu(&b, 7), IDB_E_TOOBIG);
	assert_int_equal(idb_buf_addjson(&b, "z"), IDB_E_TOOBIG);
	assert_int_equal(idb_buf_add(&b, "", 0), IDB_OK);
	assert_string_equal(b.data, "12345678");
	idb_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(idb_buf_add(&b, "abc", 3), IDB_OK);
	assert_string_equal(b.data, "abc");
	assert_int_equal(idb_buf_add(&b, "x", SIZE_MAX), IDB_E_TOOBIG);
	idb_buf_free(&b);
}

static void
buf_is_always_nul_terminated(void **state)
{
	struct idb_buf b;

	(void)state;
	idb_buf_init(&b, 1 << 20);
	assert_int_equal(idb_buf_add(&b, "", 0), IDB_OK);
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	assert_int_equal(idb_buf_add(&b, "ab\0cd", 5), IDB_OK);
	assert_int_equal(b.len, 5);
	assert_int_equal(b.data[5], '\0');
	idb_buf_free(&b);
}

static void
buf_addu_writes_decimal(void **state)
{
	struct idb_buf b;

	(void)state;
	idb_buf_init(&b, 100);
	assert_int_equal(idb_buf_addu(&b, 0), IDB_OK);
	assert_int_equal(idb_buf_addstr(&b, ","), IDB_OK);
	assert_int_equal(idb_buf_addu(&b, 42), IDB_OK);
	assert_int_equal(idb_buf_addstr(&b, ","), IDB_OK);
	assert_int_equal(idb_buf_addu(&b, ULLONG_MAX), IDB_OK);
	assert_string_equal(b.data, "0,42,18446744073709551615");
	idb_buf_free(&b);
}

static void
buf_addjson_escapes_quotes_backslashes_and_controls(void **state)
{
	struct idb_buf b;

	(void)state;
	idb_buf_init(&b, 1000);
	assert_int_equal(idb_buf_addjson(&b, "say \"hi\" \\ back"), IDB_OK);
	assert_string_equal(b.data, "say \\\"hi\\\" \\\\ back");
	idb_buf_reset(&b);
	assert_int_equal(idb_buf_addjson(&b, "\n\t\r\x01\x1f"), IDB_OK);
	assert_string_equal(b.data, "\\u000a\\u0009\\u000d\\u0001\\u001f");
	idb_buf_reset(&b);
	assert_int_equal(idb_buf_addjson(&b, "Jos\xc3\xa9 </script>"), IDB_OK);
	assert_string_equal(b.data, "Jos\xc3\xa9 </script>");
	idb_buf_free(&b);
}

static void
buf_addjson_output_parses_back_to_the_input(void **state)
{
	struct idb_buf b;
	char in[128];
	cJSON *j;
	int i;

	(void)state;
	for (i = 1; i < 128; i++)
		in[i - 1] = (char)i; /* every ASCII byte but NUL */
	in[127] = '\0';
	idb_buf_init(&b, 4096);
	assert_int_equal(idb_buf_addstr(&b, "\""), IDB_OK);
	assert_int_equal(idb_buf_addjson(&b, in), IDB_OK);
	assert_int_equal(idb_buf_addstr(&b, "\""), IDB_OK);
	assert_non_null(j = cJSON_Parse(b.data));
	assert_true(cJSON_IsString(j));
	assert_string_equal(j->valuestring, in);
	cJSON_Delete(j);
	idb_buf_free(&b);
}

static void
buf_free_accepts_zeroed_and_null(void **state)
{
	struct idb_buf b;

	(void)state;
	memset(&b, 0, sizeof(b));
	idb_buf_free(&b);
	idb_buf_free(NULL);
	idb_buf_init(&b, 10);
	idb_buf_free(&b);
	idb_buf_free(&b);
}

/* ---- cidr ---- */

static int
in_range(const char *cidr, const char *ip)
{
	struct idb_cidr c;
	unsigned char a[16];

	if (idb_cidr_parse(cidr, &c) != IDB_OK)
		fail_msg("%s refused", cidr);
	if (idb_ip_parse(ip, a) != 0)
		fail_msg("%s refused", ip);
	return idb_cidr_match(&c, a);
}

static void
cidr_v4_ranges_match_their_addresses_only(void **state)
{
	(void)state;
	assert_true(in_range("192.0.2.0/24", "192.0.2.0"));
	assert_true(in_range("192.0.2.0/24", "192.0.2.255"));
	assert_false(in_range("192.0.2.0/24", "192.0.3.0"));
	assert_false(in_range("192.0.2.0/24", "192.0.1.255"));
	assert_true(in_range("10.0.0.0/8", "10.255.255.255"));
	assert_false(in_range("10.0.0.0/8", "11.0.0.0"));
	assert_true(in_range("172.16.0.0/12", "172.31.1.1"));
	assert_false(in_range("172.16.0.0/12", "172.32.0.0"));
	assert_true(in_range("192.0.2.128/25", "192.0.2.200"));
	assert_false(in_range("192.0.2.128/25", "192.0.2.127"));
}

static void
cidr_v6_ranges_match_their_addresses_only(void **state)
{
	(void)state;
	assert_true(in_range("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(in_range("2001:db8::/32", "2001:db9::1"));
	assert_true(in_range("2001:db8:100::/48", "2001:db8:100:ffff::1"));
	assert_false(in_range("2001:db8:100::/48", "2001:db8:101::1"));
	assert_true(in_range("2001:db8::/127", "2001:db8::1"));
	assert_false(in_range("2001:db8::/127", "2001:db8::2"));
	assert_false(in_range("2001:db8::/32", "192.0.2.1"));
}

static void
cidr_bare_address_is_a_single_host(void **state)
{
	struct idb_cidr c;

	(void)state;
	assert_int_equal(idb_cidr_parse("192.0.2.7", &c), IDB_OK);
	assert_int_equal(c.prefix, 128); /* /32 over the mapped 16 bytes */
	assert_true(in_range("192.0.2.7", "192.0.2.7"));
	assert_false(in_range("192.0.2.7", "192.0.2.6"));
	assert_int_equal(idb_cidr_parse("2001:db8::1", &c), IDB_OK);
	assert_int_equal(c.prefix, 128);
	assert_true(in_range("2001:db8::1", "2001:db8::1"));
	assert_false(in_range("2001:db8::1", "2001:db8::2"));
}

static void
cidr_v4_ranges_match_ipv4_mapped_ipv6_addresses(void **state)
{
	(void)state;
	assert_true(in_range("192.0.2.0/24", "::ffff:192.0.2.7"));
	assert_true(in_range("192.0.2.0/24", "::ffff:c000:207"));
	assert_false(in_range("192.0.2.0/24", "::ffff:192.0.3.7"));
	/* IPv4-compatible (not mapped) addresses are other addresses. */
	assert_false(in_range("192.0.2.0/24", "::192.0.2.7"));
	assert_true(in_range("::ffff:192.0.2.0/120", "192.0.2.9"));
}

static void
cidr_prefix_zero_matches_its_whole_family(void **state)
{
	(void)state;
	assert_true(in_range("0.0.0.0/0", "8.8.8.8"));
	assert_true(in_range("0.0.0.0/0", "255.255.255.255"));
	assert_false(in_range("0.0.0.0/0", "2001:db8::1"));
	assert_true(in_range("::/0", "2001:db8::1"));
	assert_true(in_range("::/0", "8.8.8.8"));
}

static void
cidr_refuses_host_bits_past_the_prefix(void **state)
{
	static const char *const bad[] = {"10.0.0.1/8", "192.0.2.1/24", "1.0.0.0/0", "2001:db8::1/32",
	                                  "::1/0", "192.0.2.129/25"};
	struct idb_cidr c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (idb_cidr_parse(bad[i], &c) == IDB_OK)
			fail_msg("%s was accepted", bad[i]);
}

static void
cidr_refuses_malformed_text(void **state)
{
	static const char *const bad[] = {"", "/8", "300.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "::1/129",
	                                  "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8/8",
	                                  "10.0.0.0/1a", "10.0.0.0/0008", "10.0.0.0/ 8", " 10.0.0.0/8",
	                                  "10.0.0.0/8 ", "localhost", "2001:db8::/3x", "2001:db8:::1",
	                                  "10.0.0.0 /8"};
	struct idb_cidr c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (idb_cidr_parse(bad[i], &c) == IDB_OK)
			fail_msg("'%s' was accepted", bad[i]);
}

static void
cidr_refuses_text_longer_than_an_address(void **state)
{
	char *s = repeat("0", IDB_CIDR_TEXT_MAX + 10);
	struct idb_cidr c;

	(void)state;
	assert_int_not_equal(idb_cidr_parse(s, &c), IDB_OK);
	free(s);
}

static void
cidr_list_accepts_commas_and_spaces(void **state)
{
	struct idb_cidr_list *l = malloc(sizeof(*l));

	(void)state;
	assert_non_null(l);
	assert_int_equal(idb_cidr_list_parse("10.0.0.0/8, 192.168.0.0/16  2001:db8::/32,,\t::1 ,", l), IDB_OK);
	assert_int_equal(l->n, 4);
	assert_true(idb_cidr_list_contains(l, "10.1.2.3"));
	assert_true(idb_cidr_list_contains(l, "192.168.5.5"));
	assert_true(idb_cidr_list_contains(l, "2001:db8::42"));
	assert_true(idb_cidr_list_contains(l, "::1"));
	assert_false(idb_cidr_list_contains(l, "172.16.0.1"));
	assert_false(idb_cidr_list_contains(l, "::2"));
	assert_false(idb_cidr_list_contains(l, "not an ip"));
	assert_false(idb_cidr_list_contains(l, ""));
	free(l);
}

static void
cidr_list_of_empty_text_is_empty(void **state)
{
	struct idb_cidr_list *l = malloc(sizeof(*l));

	(void)state;
	assert_non_null(l);
	l->n = 99;
	assert_int_equal(idb_cidr_list_parse("", l), IDB_OK);
	assert_int_equal(l->n, 0);
	assert_int_equal(idb_cidr_list_parse(" , ,\t", l), IDB_OK);
	assert_int_equal(l->n, 0);
	assert_false(idb_cidr_list_contains(l, "127.0.0.1"));
	free(l);
}

static void
cidr_list_refuses_one_bad_entry(void **state)
{
	struct idb_cidr_list *l = malloc(sizeof(*l));

	(void)state;
	assert_non_null(l);
	assert_int_not_equal(idb_cidr_list_parse("10.0.0.0/8, 10.0.0.1/8", l), IDB_OK);
	assert_int_not_equal(idb_cidr_list_parse("10.0.0.0/8; 192.0.2.0/24", l), IDB_OK);
	assert_int_not_equal(idb_cidr_list_parse("192.0.2.0/24, 300.1.1.1", l), IDB_OK);
	free(l);
}

static void
cidr_list_holds_256_entries_and_refuses_257(void **state)
{
	struct idb_cidr_list *l = malloc(sizeof(*l));
	char *text = malloc(IDB_CIDR_MAX * 20 + 64);
	size_t n = 0;
	int i;

	(void)state;
	assert_non_null(l);
	assert_non_null(text);
	for (i = 0; i < IDB_CIDR_MAX; i++)
		n += (size_t)snprintf(text + n, 20, "10.%d.%d.0/24,", i / 256, i % 256);
	text[n] = '\0';
	assert_int_equal(idb_cidr_list_parse(text, l), IDB_OK);
	assert_int_equal(l->n, IDB_CIDR_MAX);
	assert_true(idb_cidr_list_contains(l, "10.0.255.9"));
	snprintf(text + n, 20, "10.1.0.0/24");
	assert_int_equal(idb_cidr_list_parse(text, l), IDB_E_TOOBIG);
	free(text);
	free(l);
}

static void
ip_parse_accepts_v4_and_v6_only(void **state)
{
	unsigned char a[16];
	static const unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};

	(void)state;
	assert_int_equal(idb_ip_parse("192.0.2.1", a), 0);
	assert_memory_equal(a, mapped, 16);
	assert_int_equal(idb_ip_parse("::ffff:192.0.2.1", a), 0);
	assert_memory_equal(a, mapped, 16);
	assert_int_equal(idb_ip_parse("::", a), 0);
	assert_int_equal(idb_ip_parse("", a), -1);
	assert_int_equal(idb_ip_parse("192.0.2.1/32", a), -1);
	assert_int_equal(idb_ip_parse("[::1]", a), -1);
	assert_int_equal(idb_ip_parse("fe80::1%eth0", a), -1);
}

/* ---- util ---- */

static void
parse_ll_accepts_whole_decimal_numbers_in_range(void **state)
{
	long long v;

	(void)state;
	assert_int_equal(idb_parse_ll("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(idb_parse_ll("10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(idb_parse_ll("-5", -10, 10, &v), 0);
	assert_int_equal(v, -5);
	assert_int_equal(idb_parse_ll("9223372036854775807", LLONG_MIN, LLONG_MAX, &v), 0);
	assert_true(v == LLONG_MAX);
	assert_int_equal(idb_parse_ll("-9223372036854775808", LLONG_MIN, LLONG_MAX, &v), 0);
	assert_true(v == LLONG_MIN);
}

static void
parse_ll_refuses_everything_else(void **state)
{
	static const char *const bad[] = {"", " 5", "5 ", "+5", "5x", "x5", "0x10", "1e3", "1.0", "-", "--5",
	                                  "9223372036854775808", "-9223372036854775809", "99999999999999999999",
	                                  "\t5", "5\n"};
	long long v = 12345;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (idb_parse_ll(bad[i], LLONG_MIN, LLONG_MAX, &v) != -1)
			fail_msg("'%s' was accepted", bad[i]);
	assert_int_equal(idb_parse_ll(NULL, 0, 10, &v), -1);
	/* Out of range: refused, and *out untouched. */
	assert_int_equal(idb_parse_ll("11", 0, 10, &v), -1);
	assert_int_equal(idb_parse_ll("-1", 0, 10, &v), -1);
	assert_int_equal(idb_parse_ll("0", 1, 10, &v), -1);
	assert_int_equal(v, 12345);
}

static void
id_new_makes_valid_distinct_ids(void **state)
{
	char a[IDB_ID_LEN + 1], b[IDB_ID_LEN + 1];
	size_t i;

	(void)state;
	idb_id_new('o', a);
	idb_id_new('o', b);
	assert_int_equal(strlen(a), IDB_ID_LEN);
	assert_int_equal(a[0], 'o');
	assert_int_equal(a[1], '_');
	for (i = 2; i < IDB_ID_LEN; i++)
		assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));
	assert_true(idb_id_valid(a, 'o'));
	assert_false(idb_id_valid(a, 'u'));
	assert_string_not_equal(a, b);
}

static void
id_valid_refuses_malformed_ids(void **state)
{
	char id[IDB_ID_LEN + 2];

	(void)state;
	idb_id_new('u', id);
	assert_true(idb_id_valid(id, 'u'));
	id[5] = 'A'; /* uppercase hex */
	assert_false(idb_id_valid(id, 'u'));
	id[5] = 'g';
	assert_false(idb_id_valid(id, 'u'));
	id[5] = '0';
	id[1] = '-';
	assert_false(idb_id_valid(id, 'u'));
	id[1] = '_';
	assert_true(idb_id_valid(id, 'u'));
	id[IDB_ID_LEN - 1] = '\0'; /* one short */
	assert_false(idb_id_valid(id, 'u'));
	id[IDB_ID_LEN - 1] = '0';
	id[IDB_ID_LEN] = '0'; /* one long */
	id[IDB_ID_LEN + 1] = '\0';
	assert_false(idb_id_valid(id, 'u'));
	assert_false(idb_id_valid(NULL, 'u'));
	assert_false(idb_id_valid("", 'u'));
	assert_false(idb_id_valid("u_../../../../../../etc/passwd0000", 'u'));
}

static void
time_format_is_rfc3339_utc_with_milliseconds(void **state)
{
	struct timespec ts;
	char out[IDB_TIME_LEN];

	(void)state;
	ts.tv_sec = 1795771800; /* 2026-11-27T09:30:00Z */
	ts.tv_nsec = 123456789;
	idb_time_format(&ts, out);
	assert_string_equal(out, "2026-11-27T09:30:00.123Z");
	ts.tv_sec = 0;
	ts.tv_nsec = 999999999;
	idb_time_format(&ts, out);
	assert_string_equal(out, "1970-01-01T00:00:00.999Z");
	ts.tv_nsec = 1000000;
	idb_time_format(&ts, out);
	assert_string_equal(out, "1970-01-01T00:00:00.001Z");
	ts.tv_sec = 951782400; /* a leap day */
	ts.tv_nsec = 0;
	idb_time_format(&ts, out);
	assert_string_equal(out, "2000-02-29T00:00:00.000Z");
	ts.tv_sec = 253402300799; /* the last second with four year digits */
	idb_time_format(&ts, out);
	assert_string_equal(out, "9999-12-31T23:59:59.000Z");
	ts.tv_sec = 253402300800;
	idb_time_format(&ts, out);
	assert_string_equal(out, "");
}

/* The digits written by hand agree with strftime over many instants. */
static void
time_format_agrees_with_strftime(void **state)
{
	struct timespec ts;
	struct tm tm;
	char out[IDB_TIME_LEN], want[40];
	uint64_t x = 88172645463325252ULL;
	int i;

	(void)state;
	for (i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		ts.tv_sec = (time_t)(x % 253402300800ULL);
		ts.tv_nsec = (long)(x % 1000000000ULL);
		idb_time_format(&ts, out);
		assert_non_null(gmtime_r(&ts.tv_sec, &tm));
		assert_int_equal(strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm), 19);
		assert_int_equal(strlen(out), 24);
		assert_memory_equal(out, want, 19);
		assert_int_equal(out[20] - '0', (int)(ts.tv_nsec / 100000000));
		assert_int_equal(out[22] - '0', (int)(ts.tv_nsec / 1000000 % 10));
	}
}

static void
time_now_has_the_same_shape(void **state)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	char out[IDB_TIME_LEN];
	size_t i;

	(void)state;
	idb_time_now(out);
	assert_int_equal(strlen(out), IDB_TIME_LEN - 1);
	for (i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == 'd')
			assert_true(out[i] >= '0' && out[i] <= '9');
		else
			assert_int_equal(out[i], shape[i]);
	}
	assert_true(strncmp(out, "2025", 4) >= 0);
}

static void
hex_writes_lowercase_pairs(void **state)
{
	static const unsigned char in[] = {0x00, 0x0f, 0xa5, 0xff};
	char out[9];

	(void)state;
	idb_hex(in, sizeof(in), out);
	assert_string_equal(out, "000fa5ff");
	idb_hex(in, 0, out);
	assert_string_equal(out, "");
}

/* ---- err ---- */

static void
every_error_has_a_code_status_and_messages(void **state)
{
	int e, status;
	const char *code, *p;

	(void)state;
	for (e = 0; e < IDB_E__MAX; e++) {
		status = idb_err_status((enum idb_err)e);
		code = idb_err_code((enum idb_err)e);
		if (status < 200 || status > 503)
			fail_msg("error %d has status %d", e, status);
		if (e != IDB_OK && status < 400)
			fail_msg("error %d has a success status %d", e, status);
		assert_non_null(code);
		if (*code == '\0')
			fail_msg("error %d has no code", e);
		for (p = code; *p != '\0'; p++)
			if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
				fail_msg("error %d has code '%s'", e, code);
		assert_non_null(idb_err_message((enum idb_err)e));
		assert_true(strlen(idb_err_message((enum idb_err)e)) > 0);
		assert_non_null(idb_err_str((enum idb_err)e));
		assert_true(strlen(idb_err_str((enum idb_err)e)) > 0);
	}
	assert_int_equal(idb_err_status(IDB_OK), 200);
}

static void
api_errors_have_the_status_and_code_of_the_contract(void **state)
{
	static const struct {
		enum idb_err e;
		int status;
		const char *code;
	} want[] = {
		{IDB_E_INVALID_JSON, 400, "invalid_json"},
		{IDB_E_BAD_REQUEST, 400, "bad_request"},
		{IDB_E_UNAUTHENTICATED, 401, "unauthenticated"},
		{IDB_E_INVALID_CREDENTIALS, 401, "invalid_credentials"},
		{IDB_E_MFA_REQUIRED, 401, "mfa_required"},
		{IDB_E_FORBIDDEN, 403, "forbidden"},
		{IDB_E_CSRF_FAILED, 403, "csrf_failed"},
		{IDB_E_IP_NOT_ALLOWED, 403, "ip_not_allowed"},
		{IDB_E_MFA_ENROLLMENT_REQUIRED, 403, "mfa_enrollment_required"},
		{IDB_E_REASON_REQUIRED, 403, "reason_required"},
		{IDB_E_NOT_FOUND, 404, "not_found"},
		{IDB_E_METHOD_NOT_ALLOWED, 405, "method_not_allowed"},
		{IDB_E_CONFLICT, 409, "conflict"},
		{IDB_E_WOULD_LOCK_OUT, 409, "would_lock_out"},
		{IDB_E_PAYLOAD_TOO_LARGE, 413, "payload_too_large"},
		{IDB_E_VALIDATION, 422, "validation_failed"},
		{IDB_E_TOO_MANY_REQUESTS, 429, "too_many_requests"},
		{IDB_E_INTERNAL, 500, "internal"},
		{IDB_E_UNAVAILABLE, 503, "unavailable"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (idb_err_status(want[i].e) != want[i].status || strcmp(idb_err_code(want[i].e), want[i].code) != 0)
			fail_msg("error %d: %d %s, want %d %s", (int)want[i].e, idb_err_status(want[i].e),
			         idb_err_code(want[i].e), want[i].status, want[i].code);
	}
}

static void
internal_causes_show_only_internal_or_unavailable(void **state)
{
	int e;

	(void)state;
	for (e = IDB_E_NOMEM; e < IDB_E__MAX; e++) {
		const char *code = idb_err_code((enum idb_err)e);

		if (e == IDB_E_EXISTS)
			continue; /* a duplicate: 409 conflict, like IDB_E_CONFLICT */
		if (strcmp(code, "internal") != 0 && strcmp(code, "unavailable") != 0)
			fail_msg("internal cause %d is shown as %s", e, code);
		if (strcmp(idb_err_message((enum idb_err)e), idb_err_message(IDB_E_INTERNAL)) != 0 &&
		    strcmp(idb_err_message((enum idb_err)e), idb_err_message(IDB_E_UNAVAILABLE)) != 0)
			fail_msg("internal cause %d has its own client message", e);
	}
	assert_int_equal(idb_err_status(IDB_E_SCHEMA_BEHIND), 503);
	assert_int_equal(idb_err_status(IDB_E_EXISTS), 409);
}

static void
out_of_range_errors_are_internal(void **state)
{
	(void)state;
	assert_int_equal(idb_err_status(IDB_E__MAX), 500);
	assert_string_equal(idb_err_code(IDB_E__MAX), "internal");
	assert_int_equal(idb_err_status((enum idb_err)-1), 500);
	assert_non_null(idb_err_message((enum idb_err)1000));
	assert_non_null(idb_err_str((enum idb_err)1000));
}

/* ---- users ---- */

static void
email_validator_accepts_ordinary_addresses(void **state)
{
	char *local = repeat("a", 64), email[300];
	char *long_ok;

	(void)state;
	assert_true(idb_user_email_valid("ana@acme.test"));
	assert_true(idb_user_email_valid("a.b+tag@sub.example.org"));
	assert_true(idb_user_email_valid("x@y.z"));
	snprintf(email, sizeof(email), "%s@example.com", local);
	assert_true(idb_user_email_valid(email));
	/* 254 characters: the maximum. */
	long_ok = repeat("b", IDB_EMAIL_MAX);
	memcpy(long_ok, "u@", 2);
	memcpy(long_ok + IDB_EMAIL_MAX - 5, ".test", 5);
	assert_true(idb_user_email_valid(long_ok));
	free(long_ok);
	free(local);
}

static void
email_validator_refuses_malformed_addresses(void **state)
{
	static const char *const bad[] = {"", "a", "@", "ana", "@acme.test", "ana@", "ana@acme", "ana@@acme.test",
	                                  "a@b@c.test", "ana @acme.test", "ana@acme.test ", " ana@acme.test",
	                                  "ana@acme.test\n", "ana\t@acme.test", "<ana>@acme.test",
	                                  "ana@acme.test>", "\"ana\"@acme.test", "ana,bob@acme.test",
	                                  "ana;@acme.test", "ana@[127.0.0.1]", "an\\a@acme.test",
	                                  "ana@acme.test\x7f", "ana:x@acme.test", "ana(x)@acme.test"};
	char *too_long;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (idb_user_email_valid(bad[i]))
			fail_msg("'%s' was accepted", bad[i]);
	too_long = repeat("b", IDB_EMAIL_MAX + 1);
	memcpy(too_long, "u@", 2);
	memcpy(too_long + IDB_EMAIL_MAX - 4, ".test", 5);
	assert_false(idb_user_email_valid(too_long));
	free(too_long);
}

static void
name_validator_accepts_1_to_200_characters(void **state)
{
	char *s;

	(void)state;
	assert_true(idb_user_name_valid("A"));
	assert_true(idb_user_name_valid("Ana Mar\xc3\xad" "a O'Neil-Smith"));
	s = repeat("\xc3\xa9", IDB_USER_NAME_MAX); /* 200 characters, 400 bytes */
	assert_true(idb_user_name_valid(s));
	free(s);
	s = repeat("\xf0\x9f\x98\x80", IDB_USER_NAME_MAX); /* 200 characters, 800 bytes */
	assert_true(idb_user_name_valid(s));
	free(s);
}

static void
name_validator_refuses_empty_long_and_control_characters(void **state)
{
	char *s;

	(void)state;
	assert_false(idb_user_name_valid(""));
	assert_false(idb_user_name_valid("Ana\nBob"));
	assert_false(idb_user_name_valid("Ana\tBob"));
	assert_false(idb_user_name_valid("Ana\x01"));
	assert_false(idb_user_name_valid("Ana\x7f"));
	s = repeat("a", IDB_USER_NAME_MAX + 1);
	assert_false(idb_user_name_valid(s));
	free(s);
	s = repeat("\xc3\xa9", IDB_USER_NAME_MAX + 1);
	assert_false(idb_user_name_valid(s));
	free(s);
}

static void
role_validator_accepts_exactly_three_roles(void **state)
{
	static const char *const bad[] = {"", "Admin", "ADMIN", "admin ", " admin", "owner", "sysadmin",
	                                  "read-only", "readonly\n", "adminx"};
	size_t i;

	(void)state;
	assert_true(idb_user_role_valid("admin"));
	assert_true(idb_user_role_valid("member"));
	assert_true(idb_user_role_valid("readonly"));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (idb_user_role_valid(bad[i]))
			fail_msg("role '%s' was accepted", bad[i]);
}

/* ---- pw ---- */

static void
password_length_counts_characters_not_bytes(void **state)
{
	char *s;

	(void)state;
	s = repeat("a", 11);
	assert_false(idb_pw_acceptable(s));
	free(s);
	s = repeat("a", 12);
	assert_true(idb_pw_acceptable(s));
	free(s);
	s = repeat("a", 1024);
	assert_true(idb_pw_acceptable(s));
	free(s);
	s = repeat("a", 1025);
	assert_false(idb_pw_acceptable(s));
	free(s);
	/* Multibyte: 11 characters are too few however many bytes they take. */
	s = repeat("\xe2\x82\xac", 11); /* 33 bytes */
	assert_false(idb_pw_acceptable(s));
	free(s);
	s = repeat("\xc3\xa9", 12);
	assert_true(idb_pw_acceptable(s));
	free(s);
	s = repeat("\xf0\x9f\x98\x80", 1024); /* 4096 bytes */
	assert_true(idb_pw_acceptable(s));
	free(s);
	s = repeat("\xc3\xa9", 1025);
	assert_false(idb_pw_acceptable(s));
	free(s);
	assert_false(idb_pw_acceptable(""));
}

static void
password_hash_verifies_only_the_same_password(void **state)
{
	char hash[crypto_pwhash_STRBYTES];
	const char *pw = "correct horse battery staple \xc3\xa9";

	(void)state;
	assert_int_equal(idb_pw_hash(pw, hash), IDB_OK);
	assert_int_equal(strncmp(hash, "$argon2id$", 10), 0);
	assert_null(strstr(hash, "correct"));
	assert_int_equal(idb_pw_verify(hash, pw), IDB_OK);
	assert_int_equal(idb_pw_verify(hash, "correct horse battery staple"), IDB_E_INVALID_CREDENTIALS);
	assert_int_equal(idb_pw_verify(hash, "Correct horse battery staple \xc3\xa9"), IDB_E_INVALID_CREDENTIALS);
	assert_int_equal(idb_pw_verify(hash, ""), IDB_E_INVALID_CREDENTIALS);
	assert_false(idb_pw_needs_rehash(hash));
}

static void
password_verify_refuses_a_malformed_hash(void **state)
{
	(void)state;
	assert_int_equal(idb_pw_verify("", "whatever password"), IDB_E_INVALID_CREDENTIALS);
	assert_int_equal(idb_pw_verify("$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA", "whatever password"),
	                 IDB_E_INVALID_CREDENTIALS);
	assert_int_equal(idb_pw_verify("plaintext password", "plaintext password"), IDB_E_INVALID_CREDENTIALS);
}

static void
password_generate_makes_acceptable_distinct_passwords(void **state)
{
	char a[21], b[21];
	size_t i;

	(void)state;
	idb_pw_generate(a);
	idb_pw_generate(b);
	assert_int_equal(strlen(a), 20);
	assert_true(idb_pw_acceptable(a));
	assert_string_not_equal(a, b);
	for (i = 0; i < 20; i++)
		assert_null(strchr("0O1lI", a[i])); /* unambiguous alphabet */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(arena_hands_out_memory_up_to_its_limit),
		cmocka_unit_test(arena_refuses_a_single_allocation_over_the_limit),
		cmocka_unit_test(arena_limit_counts_many_small_allocations),
		cmocka_unit_test(arena_reset_makes_room_again),
		cmocka_unit_test(arena_memory_is_aligned_and_does_not_overlap),
		cmocka_unit_test(arena_calloc_zeroes),
		cmocka_unit_test(arena_defer_runs_on_reset_once),
		cmocka_unit_test(arena_defer_runs_on_free),
		cmocka_unit_test(arena_defer_in_a_full_arena_runs_at_once),
		cmocka_unit_test(arena_defer_frees_cjson_trees),
		cmocka_unit_test(arena_strndup_copies_a_prefix),
		cmocka_unit_test(arena_free_accepts_null_and_twice),
		cmocka_unit_test(buf_grows_up_to_its_maximum),
		cmocka_unit_test(buf_refuses_every_kind_of_append_past_the_maximum),
		cmocka_unit_test(buf_is_always_nul_terminated),
		cmocka_unit_test(buf_addu_writes_decimal),
		cmocka_unit_test(buf_addjson_escapes_quotes_backslashes_and_controls),
		cmocka_unit_test(buf_addjson_output_parses_back_to_the_input),
		cmocka_unit_test(buf_free_accepts_zeroed_and_null),
		cmocka_unit_test(cidr_v4_ranges_match_their_addresses_only),
		cmocka_unit_test(cidr_v6_ranges_match_their_addresses_only),
		cmocka_unit_test(cidr_bare_address_is_a_single_host),
		cmocka_unit_test(cidr_v4_ranges_match_ipv4_mapped_ipv6_addresses),
		cmocka_unit_test(cidr_prefix_zero_matches_its_whole_family),
		cmocka_unit_test(cidr_refuses_host_bits_past_the_prefix),
		cmocka_unit_test(cidr_refuses_malformed_text),
		cmocka_unit_test(cidr_refuses_text_longer_than_an_address),
		cmocka_unit_test(cidr_list_accepts_commas_and_spaces),
		cmocka_unit_test(cidr_list_of_empty_text_is_empty),
		cmocka_unit_test(cidr_list_refuses_one_bad_entry),
		cmocka_unit_test(cidr_list_holds_256_entries_and_refuses_257),
		cmocka_unit_test(ip_parse_accepts_v4_and_v6_only),
		cmocka_unit_test(parse_ll_accepts_whole_decimal_numbers_in_range),
		cmocka_unit_test(parse_ll_refuses_everything_else),
		cmocka_unit_test(id_new_makes_valid_distinct_ids),
		cmocka_unit_test(id_valid_refuses_malformed_ids),
		cmocka_unit_test(time_format_is_rfc3339_utc_with_milliseconds),
		cmocka_unit_test(time_format_agrees_with_strftime),
		cmocka_unit_test(time_now_has_the_same_shape),
		cmocka_unit_test(hex_writes_lowercase_pairs),
		cmocka_unit_test(every_error_has_a_code_status_and_messages),
		cmocka_unit_test(api_errors_have_the_status_and_code_of_the_contract),
		cmocka_unit_test(internal_causes_show_only_internal_or_unavailable),
		cmocka_unit_test(out_of_range_errors_are_internal),
		cmocka_unit_test(email_validator_accepts_ordinary_addresses),
		cmocka_unit_test(email_validator_refuses_malformed_addresses),
		cmocka_unit_test(name_validator_accepts_1_to_200_characters),
		cmocka_unit_test(name_validator_refuses_empty_long_and_control_characters),
		cmocka_unit_test(role_validator_accepts_exactly_three_roles),
		cmocka_unit_test(password_length_counts_characters_not_bytes),
		cmocka_unit_test(password_hash_verifies_only_the_same_password),
		cmocka_unit_test(password_verify_refuses_a_malformed_hash),
		cmocka_unit_test(password_generate_makes_acceptable_distinct_passwords),
		/* Last: under ASan an over-read here ends the program, so it must not hide the others. */
		cmocka_unit_test(arena_strndup_stops_at_the_end_of_a_shorter_string),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
