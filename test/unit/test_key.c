/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/crypto/key: the master key file (mode, format, refusals),
 * registry key derivation, wrapping of org keys with their associated data,
 * the SQLCipher raw key string, and the SHA-256 of crypto/sha256.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/key.h"
#include "crypto/sha256.h"
#include "tmpdir.h"

#define HEX64 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

struct fx {
	char dir[256];
	char path[320]; /* <dir>/master.key */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	memcpy(f->dir, "/tmp/idb-key.XXXXXX", sizeof("/tmp/idb-key.XXXXXX"));
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/master.key", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	rmtree(f->dir);
	free(f);
	return 0;
}

static void
write_file(const char *path, const void *data, size_t n, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static size_t
read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	n = read(fd, buf, len);
	assert_true(n >= 0);
	close(fd);
	return (size_t)n;
}

/* 1 if the n bytes of needle occur in the hlen bytes of hay. */
static int
contains(const unsigned char *hay, size_t hlen, const unsigned char *needle, size_t n)
{
	size_t i;

	for (i = 0; i + n <= hlen; i++)
		if (memcmp(hay + i, needle, n) == 0)
			return 1;
	return 0;
}

static void
fill_master(struct idb_master *m, unsigned char seed)
{
	size_t i;

	for (i = 0; i < IDB_KEY_LEN; i++)
		m->key[i] = (unsigned char)(seed + i * 7);
}

/* ---- the master key file ---- */

static void
master_create_writes_mode_0600_and_64_hex_digits_with_newline(void **state)
{
	struct fx *f = *state;
	char buf[128];
	struct stat st;
	size_t n, i;

	assert_int_equal(idb_key_master_create(f->path), IDB_OK);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	n = read_file(f->path, buf, sizeof(buf));
	assert_int_equal(n, 65);
	for (i = 0; i < 64; i++)
		if (!((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f')))
			fail_msg("byte %zu of the key file is '%c'", i, buf[i]);
	assert_int_equal(buf[64], '\n');
}

static void
master_create_refuses_to_overwrite_an_existing_file(void **state)
{
	struct fx *f = *state;
	char before[128], after[128];
	size_t n;

	assert_int_equal(idb_key_master_create(f->path), IDB_OK);
	n = read_file(f->path, before, sizeof(before));
	assert_int_equal(idb_key_master_create(f->path), IDB_E_EXISTS);
	assert_int_equal(read_file(f->path, after, sizeof(after)), n);
	assert_memory_equal(before, after, n);
}

static void
master_create_makes_a_different_key_each_time(void **state)
{
	struct fx *f = *state;
	char a[128], b[128], other[400];

	snprintf(other, sizeof(other), "%s/other.key", f->dir);
	assert_int_equal(idb_key_master_create(f->path), IDB_OK);
	assert_int_equal(idb_key_master_create(other), IDB_OK);
	assert_int_equal(read_file(f->path, a, sizeof(a)), 65);
	assert_int_equal(read_file(other, b, sizeof(b)), 65);
	assert_memory_not_equal(a, b, 64);
}

static void
master_load_returns_the_key_written_by_create(void **state)
{
	struct fx *f = *state;
	struct idb_master *m = NULL;
	unsigned char bin[IDB_KEY_LEN];
	char hex[128];

	assert_int_equal(idb_key_master_create(f->path), IDB_OK);
	assert_int_equal(read_file(f->path, hex, sizeof(hex)), 65);
	assert_int_equal(sodium_hex2bin(bin, sizeof(bin), hex, 64, NULL, NULL, NULL), 0);
	assert_int_equal(idb_key_master_load(f->path, &m), IDB_OK);
	assert_non_null(m);
	assert_memory_equal(m->key, bin, IDB_KEY_LEN);
	idb_key_master_free(m);
}

static void
master_load_accepts_a_key_without_final_newline(void **state)
{
	struct fx *f = *state;
	struct idb_master *m = NULL;

	write_file(f->path, HEX64, 64, 0600);
	assert_int_equal(idb_key_master_load(f->path, &m), IDB_OK);
	assert_int_equal(m->key[0], 0x00);
	assert_int_equal(m->key[1], 0x11);
	assert_int_equal(m->key[31], 0xff);
	idb_key_master_free(m);
}

static void
master_load_accepts_owner_read_only_mode(void **state)
{
	struct fx *f = *state;
	struct idb_master *m = NULL;

	write_file(f->path, HEX64 "\n", 65, 0400);
	assert_int_equal(idb_key_master_load(f->path, &m), IDB_OK);
	idb_key_master_free(m);
}

static void
master_load_refuses_group_readable_file(void **state)
{
	struct fx *f = *state;
	struct idb_master *m = (struct idb_master *)1;

	write_file(f->path, HEX64 "\n", 65, 0640);
	assert_int_equal(idb_key_master_load(f->path, &m), IDB_E_PERM);
	assert_null(m);
}

static void
master_load_refuses_world_readable_file(void **state)
{
	struct fx *f = *state;
	struct idb_master *m = (struct idb_master *)1;

	write_file(f->path, HEX64 "\n", 65, 0604);
	assert_int_equal(idb_key_master_load(f->path, &m), IDB_E_PERM);
	assert_null(m);
	write_file(f->path, HEX64 "\n", 65, 0620); /* group-writable is refused too */
	assert_int_equal(idb_key_master_load(f->path, &m), IDB_E_PERM);
	assert_null(m);
}

static void
master_load_refuses_bad_contents(void **state)
{
	static const char *const bad[] = {
		"",
		"\n",
		HEX64 "0\n",                 /* 65 digits */
		"0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", /* 63 */
		"zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", /* not hex */
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeef \n", /* space */
		HEX64 "\n\n",
		HEX64 "\r\n",
		" " HEX64,
	};
	struct fx *f = *state;
	struct idb_master *m;
	size_t i;
	enum idb_err e;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(f->path, bad[i], strlen(bad[i]), 0600);
		m = (struct idb_master *)1;
		if ((e = idb_key_master_load(f->path, &m)) != IDB_E_BADKEY)
			fail_msg("contents #%zu: expected IDB_E_BADKEY, got %d", i, (int)e);
		assert_null(m);
	}
}

static void
master_load_of_missing_file_is_an_io_error(void **state)
{
	struct fx *f = *state;
	struct idb_master *m = (struct idb_master *)1;

	assert_int_equal(idb_key_master_load(f->path, &m), IDB_E_IO);
	assert_null(m);
}

static void
master_load_refuses_a_directory_or_symlink(void **state)
{
	struct fx *f = *state;
	struct idb_master *m = NULL;
	char target[400];

	assert_int_equal(mkdir(f->path, 0700), 0);
	assert_int_not_equal(idb_key_master_load(f->path, &m), IDB_OK);
	assert_null(m);
	assert_int_equal(rmdir(f->path), 0);

	snprintf(target, sizeof(target), "%s/real.key", f->dir);
	write_file(target, HEX64 "\n", 65, 0600);
	assert_int_equal(symlink(target, f->path), 0);
	assert_int_not_equal(idb_key_master_load(f->path, &m), IDB_OK);
	assert_null(m);
}

static void
master_free_accepts_null(void **state)
{
	(void)state;
	idb_key_master_free(NULL);
}

/* ---- the registry key ---- */

static void
registry_key_is_deterministic(void **state)
{
	struct idb_master m;
	unsigned char a[IDB_KEY_LEN], b[IDB_KEY_LEN], want[IDB_KEY_LEN];

	(void)state;
	fill_master(&m, 1);
	assert_int_equal(idb_key_registry(&m, a), IDB_OK);
	assert_int_equal(idb_key_registry(&m, b), IDB_OK);
	assert_memory_equal(a, b, IDB_KEY_LEN);
	/* storage.md: crypto_kdf_derive_from_key(32, 1, "immidreg", master). */
	assert_int_equal(crypto_kdf_derive_from_key(want, sizeof(want), 1, "immidreg", m.key), 0);
	assert_memory_equal(a, want, IDB_KEY_LEN);
	/* Never the master key itself. */
	assert_memory_not_equal(a, m.key, IDB_KEY_LEN);
}

static void
registry_key_differs_across_master_keys(void **state)
{
	struct idb_master m1, m2;
	unsigned char a[IDB_KEY_LEN], b[IDB_KEY_LEN];

	(void)state;
	fill_master(&m1, 1);
	fill_master(&m2, 1);
	m2.key[31] ^= 1;
	assert_int_equal(idb_key_registry(&m1, a), IDB_OK);
	assert_int_equal(idb_key_registry(&m2, b), IDB_OK);
	assert_memory_not_equal(a, b, IDB_KEY_LEN);
}

/* ---- wrapping ---- */

static void
wrap_then_unwrap_returns_the_key(void **state)
{
	struct idb_master m;
	unsigned char key[IDB_KEY_LEN], blob[IDB_WRAP_LEN(IDB_KEY_LEN)], out[IDB_KEY_LEN];

	(void)state;
	fill_master(&m, 9);
	randombytes_buf(key, sizeof(key));
	assert_int_equal(IDB_WRAP_LEN(IDB_KEY_LEN), 24 + 32 + 16);
	assert_int_equal(idb_key_wrap(&m, "o_0123", "db", 1, key, sizeof(key), blob), IDB_OK);
	/* The blob does not contain the key in clear. */
	assert_false(contains(blob, sizeof(blob), key, 8));
	assert_int_equal(idb_key_unwrap(&m, "o_0123", "db", 1, blob, sizeof(blob), out, sizeof(out)), IDB_OK);
	assert_memory_equal(out, key, IDB_KEY_LEN);
}

static void
wrap_of_other_sizes_roundtrips(void **state)
{
	struct idb_master m;
	unsigned char seed[crypto_sign_SEEDBYTES], blob[IDB_WRAP_LEN(crypto_sign_SEEDBYTES)];
	unsigned char out[crypto_sign_SEEDBYTES];

	(void)state;
	fill_master(&m, 3);
	randombytes_buf(seed, sizeof(seed));
	assert_int_equal(idb_key_wrap(&m, "deployment", "log-sign", 1, seed, sizeof(seed), blob), IDB_OK);
	assert_int_equal(idb_key_unwrap(&m, "deployment", "log-sign", 1, blob, sizeof(blob), out, sizeof(out)),
	                 IDB_OK);
	assert_memory_equal(out, seed, sizeof(seed));
}

static void
wrapping_twice_gives_different_blobs(void **state)
{
	struct idb_master m;
	unsigned char key[IDB_KEY_LEN], a[IDB_WRAP_LEN(IDB_KEY_LEN)], b[IDB_WRAP_LEN(IDB_KEY_LEN)];

	(void)state;
	fill_master(&m, 9);
	memset(key, 0x42, sizeof(key));
	assert_int_equal(idb_key_wrap(&m, "o_1", "db", 1, key, sizeof(key), a), IDB_OK);
	assert_int_equal(idb_key_wrap(&m, "o_1", "db", 1, key, sizeof(key), b), IDB_OK);
	assert_memory_not_equal(a, b, sizeof(a)); /* a fresh nonce each time */
}

/* Unwraps and expects IDB_E_BADKEY and no trace of the key in out. */
static void
expect_unwrap_fails(const struct idb_master *m, const char *owner, const char *purpose, unsigned version,
                    const unsigned char *blob, size_t bloblen, const unsigned char *key)
{
	unsigned char out[IDB_KEY_LEN];

	memset(out, 0xee, sizeof(out));
	assert_int_equal(idb_key_unwrap(m, owner, purpose, version, blob, bloblen, out, sizeof(out)), IDB_E_BADKEY);
	assert_memory_not_equal(out, key, sizeof(out));
}

static void
unwrap_with_other_owner_purpose_or_version_fails(void **state)
{
	struct idb_master m;
	unsigned char key[IDB_KEY_LEN], blob[IDB_WRAP_LEN(IDB_KEY_LEN)];

	(void)state;
	fill_master(&m, 5);
	randombytes_buf(key, sizeof(key));
	assert_int_equal(idb_key_wrap(&m, "o_aaaa", "db", 1, key, sizeof(key), blob), IDB_OK);
	expect_unwrap_fails(&m, "o_bbbb", "db", 1, blob, sizeof(blob), key);
	expect_unwrap_fails(&m, "o_aaa", "db", 1, blob, sizeof(blob), key);
	expect_unwrap_fails(&m, "o_aaaa", "field", 1, blob, sizeof(blob), key);
	expect_unwrap_fails(&m, "o_aaaa", "db", 2, blob, sizeof(blob), key);
	expect_unwrap_fails(&m, "o_aaaa", "db", 0, blob, sizeof(blob), key);
}

static void
unwrap_with_another_master_key_fails(void **state)
{
	struct idb_master m1, m2;
	unsigned char key[IDB_KEY_LEN], blob[IDB_WRAP_LEN(IDB_KEY_LEN)];

	(void)state;
	fill_master(&m1, 5);
	fill_master(&m2, 5);
	m2.key[0] ^= 0x80;
	randombytes_buf(key, sizeof(key));
	assert_int_equal(idb_key_wrap(&m1, "o_aaaa", "db", 1, key, sizeof(key), blob), IDB_OK);
	expect_unwrap_fails(&m2, "o_aaaa", "db", 1, blob, sizeof(blob), key);
}

static void
unwrap_of_a_blob_with_any_flipped_byte_fails(void **state)
{
	struct idb_master m;
	unsigned char key[IDB_KEY_LEN], blob[IDB_WRAP_LEN(IDB_KEY_LEN)];
	size_t i;

	(void)state;
	fill_master(&m, 5);
	randombytes_buf(key, sizeof(key));
	assert_int_equal(idb_key_wrap(&m, "o_aaaa", "field", 3, key, sizeof(key), blob), IDB_OK);
	/* Nonce, ciphertext and tag: every byte is covered. */
	for (i = 0; i < sizeof(blob); i++) {
		blob[i] ^= 0x01;
		expect_unwrap_fails(&m, "o_aaaa", "field", 3, blob, sizeof(blob), key);
		blob[i] ^= 0x01;
	}
}

static void
unwrap_of_a_blob_of_the_wrong_length_fails(void **state)
{
	struct idb_master m;
	unsigned char key[IDB_KEY_LEN], blob[IDB_WRAP_LEN(IDB_KEY_LEN) + 1];

	(void)state;
	fill_master(&m, 5);
	randombytes_buf(key, sizeof(key));
	assert_int_equal(idb_key_wrap(&m, "o_aaaa", "db", 1, key, sizeof(key), blob), IDB_OK);
	blob[sizeof(blob) - 1] = 0;
	expect_unwrap_fails(&m, "o_aaaa", "db", 1, blob, sizeof(blob) - 2, key);
	expect_unwrap_fails(&m, "o_aaaa", "db", 1, blob, sizeof(blob), key);
	expect_unwrap_fails(&m, "o_aaaa", "db", 1, blob, 0, key);
}

/* ---- the SQLCipher key string ---- */

static void
key_spec_is_x_quote_64_lowercase_hex_quote(void **state)
{
	unsigned char key[IDB_KEY_LEN];
	char spec[IDB_KEY_SPEC_LEN];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(0xa0 + i);
	memset(spec, '#', sizeof(spec));
	idb_key_spec(key, spec);
	assert_int_equal(strlen(spec), IDB_KEY_SPEC_LEN - 1);
	assert_string_equal(spec, "x'a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf'");
}

static void
hex_is(const unsigned char d[IDB_SHA256_LEN], const char *want)
{
	char got[2 * IDB_SHA256_LEN + 1];
	size_t i;

	for (i = 0; i < IDB_SHA256_LEN; i++)
		snprintf(got + 2 * i, 3, "%02x", d[i]);
	assert_string_equal(got, want);
}

/* FIPS 180-4's examples (one block, two blocks) and the empty message. */
static void
sha256_gives_the_standard_digests(void **state)
{
	static const char two[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	unsigned char d[IDB_SHA256_LEN];

	(void)state;
	idb_sha256("abc", 3, d);
	hex_is(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	idb_sha256(two, sizeof(two) - 1, d);
	hex_is(d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	idb_sha256(NULL, 0, d);
	hex_is(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* Any length, fed in any pieces, gives libsodium's digest: what was stored
 * before (token hashes, the access log's chain) still matches. */
static void
sha256_in_pieces_equals_libsodium(void **state)
{
	unsigned char msg[700], a[IDB_SHA256_LEN], b[IDB_SHA256_LEN];
	struct idb_sha256 s;
	size_t n, at, step;

	(void)state;
	randombytes_buf(msg, sizeof(msg));
	for (n = 0; n <= sizeof(msg); n += 7) {
		crypto_hash_sha256(a, msg, n);
		idb_sha256(msg, n, b);
		assert_memory_equal(a, b, sizeof(a));
		step = 1 + n % 67;
		idb_sha256_init(&s);
		for (at = 0; at < n; at += step)
			idb_sha256_update(&s, msg + at, n - at < step ? n - at : step);
		idb_sha256_final(&s, b);
		assert_memory_equal(a, b, sizeof(a));
	}
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(master_create_writes_mode_0600_and_64_hex_digits_with_newline),
		T(master_create_refuses_to_overwrite_an_existing_file),
		T(master_create_makes_a_different_key_each_time),
		T(master_load_returns_the_key_written_by_create),
		T(master_load_accepts_a_key_without_final_newline),
		T(master_load_accepts_owner_read_only_mode),
		T(master_load_refuses_group_readable_file),
		T(master_load_refuses_world_readable_file),
		T(master_load_refuses_bad_contents),
		T(master_load_of_missing_file_is_an_io_error),
		T(master_load_refuses_a_directory_or_symlink),
		T(master_free_accepts_null),
		T(registry_key_is_deterministic),
		T(registry_key_differs_across_master_keys),
		T(wrap_then_unwrap_returns_the_key),
		T(wrap_of_other_sizes_roundtrips),
		T(wrapping_twice_gives_different_blobs),
		T(unwrap_with_other_owner_purpose_or_version_fails),
		T(unwrap_with_another_master_key_fails),
		T(unwrap_of_a_blob_with_any_flipped_byte_fails),
		T(unwrap_of_a_blob_of_the_wrong_length_fails),
		T(key_spec_is_x_quote_64_lowercase_hex_quote),
		T(sha256_gives_the_standard_digests),
		T(sha256_in_pieces_equals_libsodium),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("key", tests, NULL, NULL);
}
