/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/crypto/field: sensitive-field ciphertext as storage.md
 * defines it (0x01 || key version u32 BE || nonce || ciphertext || tag, with
 * associated data "<org-id>|<table>|<row-id>|<column>"). A value decrypts
 * only under its own key, key version, org, table, row and column, and any
 * change to the blob is detected.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/field.h"

#define VERSION 0x01020304u

static const struct idb_field_ad AD = {
    .org_id = "o_0123456789abcdef0123456789abcdef",
    .table = "clients",
    .row_id = "c_fedcba9876543210fedcba9876543210",
    .column = "a_number",
};

struct fx {
	unsigned char key[IDB_KEY_LEN];
	unsigned char *in, *blob, *out; /* IDB_FIELD_MAX (+ overhead) each */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	randombytes_buf(f->key, sizeof(f->key));
	f->in = malloc(IDB_FIELD_MAX + 1);
	f->blob = malloc(IDB_FIELD_MAX + 1 + IDB_FIELD_OVERHEAD);
	f->out = malloc(IDB_FIELD_MAX + 1);
	if (f->in == NULL || f->blob == NULL || f->out == NULL)
		return -1;
	randombytes_buf(f->in, IDB_FIELD_MAX + 1);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	sodium_memzero(f->key, sizeof(f->key));
	free(f->in);
	free(f->blob);
	free(f->out);
	free(f);
	return 0;
}

static int
group_setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

/* Encrypts n bytes of f->in under f->key, VERSION and AD into f->blob. */
static size_t
seal(struct fx *f, size_t n)
{
	assert_int_equal(idb_field_encrypt(f->key, VERSION, &AD, f->in, n, f->blob), IDB_OK);
	return n + IDB_FIELD_OVERHEAD;
}

/* ---- round trip ---- */

static void
round_trip(struct fx *f, size_t n)
{
	size_t len = seal(f, n), outlen = 999999;

	memset(f->out, 0, n + 1);
	assert_int_equal(idb_field_decrypt(f->key, VERSION, &AD, f->blob, len, f->out, &outlen), IDB_OK);
	assert_int_equal(outlen, n);
	if (n > 0)
		assert_memory_equal(f->out, f->in, n);
}

static void
empty_value_round_trips(void **state)
{
	round_trip(*state, 0);
}

static void
one_byte_round_trips(void **state)
{
	round_trip(*state, 1);
}

static void
largest_value_round_trips(void **state)
{
	round_trip(*state, IDB_FIELD_MAX);
}

static void
text_with_nul_and_utf8_round_trips(void **state)
{
	struct fx *f = *state;
	static const unsigned char v[] = "A-123 \xc3\xa9\xe2\x82\xac\0after the NUL";

	memcpy(f->in, v, sizeof(v));
	round_trip(f, sizeof(v));
}

/* ---- layout ---- */

static void
blob_starts_with_format_byte_and_big_endian_key_version(void **state)
{
	struct fx *f = *state;
	unsigned char blob[10 + IDB_FIELD_OVERHEAD];

	assert_int_equal(IDB_FIELD_OVERHEAD, 1 + 4 + 24 + 16);
	assert_int_equal(idb_field_encrypt(f->key, VERSION, &AD, f->in, 10, blob), IDB_OK);
	assert_int_equal(blob[0], 0x01);
	assert_int_equal(blob[1], 0x01);
	assert_int_equal(blob[2], 0x02);
	assert_int_equal(blob[3], 0x03);
	assert_int_equal(blob[4], 0x04);
	assert_int_equal(idb_field_encrypt(f->key, 7, &AD, f->in, 10, blob), IDB_OK);
	assert_memory_equal(blob, "\x01\x00\x00\x00\x07", 5);
	assert_int_equal(idb_field_encrypt(f->key, 0xffffffffu, &AD, f->in, 10, blob), IDB_OK);
	assert_memory_equal(blob, "\x01\xff\xff\xff\xff", 5);
}

static void
blob_is_value_length_plus_overhead_and_writes_no_further(void **state)
{
	struct fx *f = *state;
	static const size_t ns[] = {0, 1, 2, 15, 16, 17, 1000, IDB_FIELD_MAX};
	unsigned char *b;
	size_t i, n, outlen;

	for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		n = ns[i];
		/* Exactly n + overhead bytes: ASan sees any write past them; a guard byte checks otherwise. */
		assert_non_null(b = malloc(n + IDB_FIELD_OVERHEAD + 1));
		b[n + IDB_FIELD_OVERHEAD] = 0x5a;
		assert_int_equal(idb_field_encrypt(f->key, VERSION, &AD, f->in, n, b), IDB_OK);
		assert_int_equal(b[n + IDB_FIELD_OVERHEAD], 0x5a);
		assert_int_equal(idb_field_decrypt(f->key, VERSION, &AD, b, n + IDB_FIELD_OVERHEAD, f->out, &outlen),
		                 IDB_OK);
		assert_int_equal(outlen, n);
		/* The value is not in the blob as it was given. */
		if (n >= 16)
			assert_memory_not_equal(b + 29, f->in, n);
		free(b);
	}
}

static void
two_encryptions_of_one_value_differ(void **state)
{
	struct fx *f = *state;
	unsigned char a[32 + IDB_FIELD_OVERHEAD], b[32 + IDB_FIELD_OVERHEAD], c[IDB_FIELD_OVERHEAD];
	unsigned char d[IDB_FIELD_OVERHEAD];

	assert_int_equal(idb_field_encrypt(f->key, VERSION, &AD, f->in, 32, a), IDB_OK);
	assert_int_equal(idb_field_encrypt(f->key, VERSION, &AD, f->in, 32, b), IDB_OK);
	assert_memory_equal(a, b, 5);
	/* Fresh nonce each time, hence a different ciphertext too. */
	assert_memory_not_equal(a + 5, b + 5, 24);
	assert_memory_not_equal(a + 29, b + 29, 32 + 16);
	/* Even an empty value: the tags differ with the nonce. */
	assert_int_equal(idb_field_encrypt(f->key, VERSION, &AD, f->in, 0, c), IDB_OK);
	assert_int_equal(idb_field_encrypt(f->key, VERSION, &AD, f->in, 0, d), IDB_OK);
	assert_memory_not_equal(c, d, IDB_FIELD_OVERHEAD);
}

/* ---- refusals ---- */

static void
expect_crypto(struct fx *f, const struct idb_field_ad *ad, size_t len)
{
	size_t outlen = 4242;

	assert_int_equal(idb_field_decrypt(f->key, VERSION, ad, f->blob, len, f->out, &outlen), IDB_E_CRYPTO);
	assert_int_equal(outlen, 4242);
}

static void
another_org_id_does_not_decrypt(void **state)
{
	struct fx *f = *state;
	struct idb_field_ad ad = AD;
	size_t len = seal(f, 40);

	ad.org_id = "o_0123456789abcdef0123456789abcdee";
	expect_crypto(f, &ad, len);
	ad.org_id = "";
	expect_crypto(f, &ad, len);
}

static void
another_table_does_not_decrypt(void **state)
{
	struct fx *f = *state;
	struct idb_field_ad ad = AD;
	size_t len = seal(f, 40);

	ad.table = "contacts";
	expect_crypto(f, &ad, len);
	ad.table = "Clients";
	expect_crypto(f, &ad, len);
}

static void
another_row_id_does_not_decrypt(void **state)
{
	struct fx *f = *state;
	struct idb_field_ad ad = AD;
	size_t len = seal(f, 40);

	ad.row_id = "c_fedcba9876543210fedcba9876543211";
	expect_crypto(f, &ad, len);
}

static void
another_column_does_not_decrypt(void **state)
{
	struct fx *f = *state;
	struct idb_field_ad ad = AD;
	size_t len = seal(f, 40);

	ad.column = "passport_number";
	expect_crypto(f, &ad, len);
	ad.column = "a_numbe";
	expect_crypto(f, &ad, len);
}

static void
another_key_does_not_decrypt(void **state)
{
	struct fx *f = *state;
	unsigned char other[IDB_KEY_LEN];
	size_t len = seal(f, 40), outlen = 4242;

	memcpy(other, f->key, sizeof(other));
	other[31] ^= 0x01;
	assert_int_equal(idb_field_decrypt(other, VERSION, &AD, f->blob, len, f->out, &outlen), IDB_E_CRYPTO);
	randombytes_buf(other, sizeof(other));
	assert_int_equal(idb_field_decrypt(other, VERSION, &AD, f->blob, len, f->out, &outlen), IDB_E_CRYPTO);
	assert_int_equal(outlen, 4242);
}

static void
blob_of_another_key_version_is_badkey(void **state)
{
	struct fx *f = *state;
	size_t len = seal(f, 40), outlen = 4242;

	assert_int_equal(idb_field_decrypt(f->key, VERSION + 1, &AD, f->blob, len, f->out, &outlen), IDB_E_BADKEY);
	assert_int_equal(idb_field_decrypt(f->key, VERSION - 1, &AD, f->blob, len, f->out, &outlen), IDB_E_BADKEY);
	assert_int_equal(idb_field_decrypt(f->key, 4, &AD, f->blob, len, f->out, &outlen), IDB_E_BADKEY);
	assert_int_equal(outlen, 4242);
}

static void
every_flipped_byte_is_detected(void **state)
{
	struct fx *f = *state;
	size_t len = seal(f, 24), i, outlen;
	int bit;
	enum idb_err e;

	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			f->blob[i] ^= (unsigned char)(1u << bit);
			outlen = 4242;
			e = idb_field_decrypt(f->key, VERSION, &AD, f->blob, len, f->out, &outlen);
			/* Bytes 1..4 are the key version: another version is a key problem, the rest is forgery. */
			if (e != (i >= 1 && i <= 4 ? IDB_E_BADKEY : IDB_E_CRYPTO))
				fail_msg("byte %zu bit %d: %d", i, bit, (int)e);
			assert_int_equal(outlen, 4242);
			f->blob[i] ^= (unsigned char)(1u << bit);
		}
	}
	/* And unflipped it still decrypts. */
	assert_int_equal(idb_field_decrypt(f->key, VERSION, &AD, f->blob, len, f->out, &outlen), IDB_OK);
	assert_int_equal(outlen, 24);
}

static void
truncated_or_extended_blob_is_refused(void **state)
{
	struct fx *f = *state;
	size_t len = seal(f, 24), cut;

	for (cut = 0; cut < len; cut++)
		expect_crypto(f, &AD, cut);
	f->blob[len] = 0;
	expect_crypto(f, &AD, len + 1);
}

static void
blob_of_another_format_is_refused(void **state)
{
	struct fx *f = *state;
	size_t len = seal(f, 24);

	f->blob[0] = 0x02;
	expect_crypto(f, &AD, len);
	f->blob[0] = 0x00;
	expect_crypto(f, &AD, len);
}

static void
value_longer_than_the_maximum_is_refused(void **state)
{
	struct fx *f = *state;

	f->blob[0] = 0x77;
	assert_int_equal(idb_field_encrypt(f->key, VERSION, &AD, f->in, IDB_FIELD_MAX + 1, f->blob), IDB_E_TOOBIG);
	assert_int_equal(idb_field_encrypt(f->key, VERSION, &AD, f->in, (size_t)-1, f->blob), IDB_E_TOOBIG);
	/* Nothing was written. */
	assert_int_equal(f->blob[0], 0x77);
}

static void
associated_data_too_long_is_refused(void **state)
{
	struct fx *f = *state;
	struct idb_field_ad ad = AD;
	char table[600];
	size_t outlen;

	memset(table, 't', sizeof(table) - 1);
	table[sizeof(table) - 1] = '\0';
	ad.table = table;
	assert_int_equal(idb_field_encrypt(f->key, VERSION, &ad, f->in, 8, f->blob), IDB_E_TOOBIG);
	seal(f, 8);
	assert_int_equal(idb_field_decrypt(f->key, VERSION, &ad, f->blob, 8 + IDB_FIELD_OVERHEAD, f->out, &outlen),
	                 IDB_E_TOOBIG);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(empty_value_round_trips),
	    T(one_byte_round_trips),
	    T(largest_value_round_trips),
	    T(text_with_nul_and_utf8_round_trips),
	    T(blob_starts_with_format_byte_and_big_endian_key_version),
	    T(blob_is_value_length_plus_overhead_and_writes_no_further),
	    T(two_encryptions_of_one_value_differ),
	    T(another_org_id_does_not_decrypt),
	    T(another_table_does_not_decrypt),
	    T(another_row_id_does_not_decrypt),
	    T(another_column_does_not_decrypt),
	    T(another_key_does_not_decrypt),
	    T(blob_of_another_key_version_is_badkey),
	    T(every_flipped_byte_is_detected),
	    T(truncated_or_extended_blob_is_refused),
	    T(blob_of_another_format_is_refused),
	    T(value_longer_than_the_maximum_is_refused),
	    T(associated_data_too_long_is_refused),
	};

	return cmocka_run_group_tests_name("field", tests, group_setup, NULL);
}
