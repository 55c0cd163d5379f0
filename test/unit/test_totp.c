/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/crypto/totp: the RFC 6238 appendix B vectors, agreement
 * with an independent implementation (oathtool from OATH Toolkit, run as a
 * child process) for random secrets and times, the verification window and
 * replay rule of api.md, and the base32 codec of RFC 4648 (no padding).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "core/util.h"
#include "crypto/totp.h"

#define OATHTOOL "/usr/bin/oathtool"

/* The RFC 6238 appendix B SHA-1 seed. */
static const unsigned char rfc_secret[] = "12345678901234567890";
#define RFC_LEN 20

/* Formats a code as the six digits a user types, leading zeros kept. */
static void
six(uint32_t code, char out[8])
{
	int n = snprintf(out, 8, "%06u", (unsigned)code);

	assert_int_equal(n, 6);
}

/*
 * Runs oathtool without a shell: argv as given, standard output read into
 * out (at most outlen - 1 bytes, trailing newline removed). Fails the test
 * if it cannot run or does not exit 0.
 */
static void
run_oathtool(const char *const argv[], char *out, size_t outlen)
{
	int fd[2], status;
	size_t used = 0;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(fd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fd[0]);
		if (dup2(fd[1], STDOUT_FILENO) < 0)
			_exit(127);
		close(fd[1]);
		execv(OATHTOOL, (char *const *)argv);
		_exit(127);
	}
	close(fd[1]);
	while (used + 1 < outlen && (n = read(fd[0], out + used, outlen - 1 - used)) > 0)
		used += (size_t)n;
	out[used] = '\0';
	close(fd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("%s exited with status %d", OATHTOOL, status);
	if (used > 0 && out[used - 1] == '\n')
		out[--used] = '\0';
}

static int
group_setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	if (access(OATHTOOL, X_OK) != 0) {
		fprintf(stderr, "%s is needed (Debian package oathtool)\n", OATHTOOL);
		return -1;
	}
	return 0;
}

/* ---- codes ---- */

static void
code_matches_rfc6238_sha1_vectors(void **state)
{
	static const struct {
		uint64_t t;
		uint32_t eight; /* the 8-digit value of appendix B */
	} v[] = {
	    {59, 94287082},         {1111111109, 7081804},  {1111111111, 14050471},
	    {1234567890, 89005924}, {2000000000, 69279037}, {20000000000ULL, 65353130},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(idb_totp_code(rfc_secret, RFC_LEN, v[i].t / 30), v[i].eight % 1000000);
	/* The same numbers spelled out, so a wrong modulus above cannot hide. */
	assert_int_equal(idb_totp_code(rfc_secret, RFC_LEN, 59 / 30), 287082);
	assert_int_equal(idb_totp_code(rfc_secret, RFC_LEN, 1111111109 / 30), 81804);
	assert_int_equal(idb_totp_code(rfc_secret, RFC_LEN, 1111111111 / 30), 50471);
	assert_int_equal(idb_totp_code(rfc_secret, RFC_LEN, 1234567890 / 30), 5924);
	assert_int_equal(idb_totp_code(rfc_secret, RFC_LEN, 2000000000 / 30), 279037);
	assert_int_equal(idb_totp_code(rfc_secret, RFC_LEN, 20000000000ULL / 30), 353130);
}

static void
step_is_unix_time_over_thirty_seconds(void **state)
{
	(void)state;
	assert_int_equal(idb_totp_step(0), 0);
	assert_int_equal(idb_totp_step(29), 0);
	assert_int_equal(idb_totp_step(30), 1);
	assert_int_equal(idb_totp_step(59), 1);
	assert_int_equal(idb_totp_step(1111111109), 37037036);
	assert_int_equal(idb_totp_step((time_t)20000000000LL), 666666666);
	/* Before 1970 there is no earlier step to go to. */
	assert_int_equal(idb_totp_step(-1), 0);
	assert_int_equal(idb_totp_step(-100000), 0);
}

static void
code_is_always_below_one_million(void **state)
{
	unsigned char secret[IDB_TOTP_SECRET_LEN];
	uint64_t step;
	int i;

	(void)state;
	for (i = 0; i < 2000; i++) {
		randombytes_buf(secret, sizeof(secret));
		randombytes_buf(&step, sizeof(step));
		assert_true(idb_totp_code(secret, sizeof(secret), step) < 1000000);
	}
}

static void
codes_match_oathtool_for_random_hex_secrets_and_times(void **state)
{
	/* Secret lengths around and beyond the HMAC block (64 bytes: longer keys are hashed first). */
	static const size_t lens[] = {1, 10, 16, 20, 20, 20, 20, 20, 20, 20, 32, 32, 33, 63, 64, 65, 80, 100, 20, 20};
	unsigned char secret[100];
	char hex[2 * sizeof(secret) + 1], at[32], got[32], want[8];
	uint32_t r;
	time_t t;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		const char *argv[] = {OATHTOOL, "--totp", "-N", at, hex, NULL};

		randombytes_buf(secret, lens[i]);
		idb_hex(secret, lens[i], hex);
		r = randombytes_uniform(UINT32_MAX);
		/* Times from 1970 to well after 2106 (past 32 bits). */
		t = (time_t)r * (i % 2 ? 1 : 3) + (time_t)randombytes_uniform(30);
		assert_in_range(snprintf(at, sizeof(at), "@%lld", (long long)t), 2, sizeof(at) - 1);
		run_oathtool(argv, got, sizeof(got));
		six(idb_totp_code(secret, lens[i], idb_totp_step(t)), want);
		if (strcmp(got, want) != 0)
			fail_msg("secret %s at %s: oathtool %s, idb_totp_code %s", hex, at, got, want);
	}
}

static void
base32_secret_is_the_key_oathtool_reads(void **state)
{
	unsigned char secret[IDB_TOTP_SECRET_LEN];
	char b32[IDB_TOTP_B32_LEN + 1], at[32], got[32], want[8];
	int i;

	(void)state;
	for (i = 0; i < 5; i++) {
		const char *argv[] = {OATHTOOL, "--totp", "-b", "-N", at, b32, NULL};
		time_t t = (time_t)1700000000 + (time_t)randombytes_uniform(100000000);

		randombytes_buf(secret, sizeof(secret));
		idb_base32_encode(secret, sizeof(secret), b32);
		assert_int_equal(strlen(b32), IDB_TOTP_B32_LEN);
		assert_in_range(snprintf(at, sizeof(at), "@%lld", (long long)t), 2, sizeof(at) - 1);
		run_oathtool(argv, got, sizeof(got));
		six(idb_totp_code(secret, sizeof(secret), idb_totp_step(t)), want);
		assert_string_equal(got, want);
	}
}

/* ---- verification ---- */

/* A fixed moment in the middle of a step, and the RFC secret's codes around it. */
#define NOW ((time_t)1111111111)

static void
code_of(uint64_t step, char out[8])
{
	six(idb_totp_code(rfc_secret, RFC_LEN, step), out);
}

/* The window's codes differ from those just outside it, or the tests below would prove nothing. */
static void
window_codes_are_distinct(void)
{
	uint64_t s = idb_totp_step(NOW), a, b;

	for (a = s - 3; a <= s + 3; a++)
		for (b = a + 1; b <= s + 3; b++)
			assert_int_not_equal(idb_totp_code(rfc_secret, RFC_LEN, a),
			                     idb_totp_code(rfc_secret, RFC_LEN, b));
}

static void
verify_accepts_previous_current_and_next_step(void **state)
{
	uint64_t s = idb_totp_step(NOW), matched;
	char code[8];
	int d;

	(void)state;
	window_codes_are_distinct();
	for (d = -1; d <= 1; d++) {
		code_of(s + (uint64_t)(int64_t)d, code);
		matched = 0;
		assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, code, NOW, 0, &matched), IDB_OK);
		assert_int_equal(matched, s + (uint64_t)(int64_t)d);
	}
	/* At the first and last second of the step as well. */
	code_of(s + 1, code);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, code, (time_t)(s * 30), 0, &matched), IDB_OK);
	code_of(s - 1, code);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, code, (time_t)(s * 30 + 29), 0, &matched), IDB_OK);
}

static void
verify_accepts_a_code_with_leading_zero(void **state)
{
	uint64_t matched = 0;

	(void)state;
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, "081804", 1111111109, 0, &matched), IDB_OK);
	assert_int_equal(matched, 1111111109 / 30);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, "050471", 1111111111, 0, &matched), IDB_OK);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, "005924", 1234567890, 0, &matched), IDB_OK);
}

static void
verify_refuses_two_steps_away_and_more(void **state)
{
	uint64_t s = idb_totp_step(NOW), matched = 12345;
	char code[8];

	(void)state;
	window_codes_are_distinct();
	code_of(s - 2, code);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, code, NOW, 0, &matched), IDB_E_INVALID_CREDENTIALS);
	code_of(s + 2, code);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, code, NOW, 0, &matched), IDB_E_INVALID_CREDENTIALS);
	code_of(s - 3, code);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, code, NOW, 0, &matched), IDB_E_INVALID_CREDENTIALS);
	code_of(s + 3, code);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, code, NOW, 0, &matched), IDB_E_INVALID_CREDENTIALS);
	/* A refusal leaves matched alone. */
	assert_int_equal(matched, 12345);
}

static void
verify_refuses_the_code_of_another_secret(void **state)
{
	static const unsigned char other[] = "12345678901234567891";
	uint64_t s = idb_totp_step(NOW), matched;
	char code[8];

	(void)state;
	six(idb_totp_code(other, RFC_LEN, s), code);
	/* (Would be a one-in-a-million coincidence; the vectors fix both codes.) */
	assert_int_not_equal(idb_totp_code(other, RFC_LEN, s), idb_totp_code(rfc_secret, RFC_LEN, s));
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, code, NOW, 0, &matched), IDB_E_INVALID_CREDENTIALS);
}

static void
verify_refuses_a_step_already_used(void **state)
{
	uint64_t s = idb_totp_step(NOW), matched = 0;
	char code[8];

	(void)state;
	window_codes_are_distinct();
	/* Replay of the very code that was just accepted. */
	code_of(s, code);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, code, NOW, 0, &matched), IDB_OK);
	assert_int_equal(matched, s);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, code, NOW, matched, &matched), IDB_E_INVALID_CREDENTIALS);
	/* Replayed 30 s later, when it is the previous step: still refused. */
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, code, NOW + 30, s, &matched), IDB_E_INVALID_CREDENTIALS);
	/* An earlier step of the window after a later one was used. */
	code_of(s - 1, code);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, code, NOW, s, &matched), IDB_E_INVALID_CREDENTIALS);
	code_of(s, code);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, code, NOW, s + 1, &matched), IDB_E_INVALID_CREDENTIALS);
}

static void
verify_accepts_a_step_after_the_last_one_used(void **state)
{
	uint64_t s = idb_totp_step(NOW), matched = 0;
	char code[8];

	(void)state;
	code_of(s + 1, code);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, code, NOW, s, &matched), IDB_OK);
	assert_int_equal(matched, s + 1);
	code_of(s, code);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, code, NOW, s - 1, &matched), IDB_OK);
	assert_int_equal(matched, s);
}

static void
verify_refuses_malformed_codes(void **state)
{
	uint64_t s = idb_totp_step(NOW), matched = 777;
	char code[8], longer[16], shorter[8], spaced[16];
	const char *bad[] = {"", "12345a", "a12345", "12 345", " 12345", "12345 ", "+12345", "-12345", "12.345",
	                     "1e5000", "abcdef", "١٢٣٤٥٦" /* Arabic-Indic digits */, "\t12345", NULL};
	size_t i;

	(void)state;
	code_of(s, code);
	/* The right code with one digit too many or too few. */
	assert_in_range(snprintf(longer, sizeof(longer), "%s0", code), 7, 7);
	assert_in_range(snprintf(shorter, sizeof(shorter), "%.5s", code), 5, 5);
	assert_in_range(snprintf(spaced, sizeof(spaced), "%.3s %s", code, code + 3), 7, 7);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, longer, NOW, 0, &matched), IDB_E_INVALID_CREDENTIALS);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, shorter, NOW, 0, &matched), IDB_E_INVALID_CREDENTIALS);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, spaced, NOW, 0, &matched), IDB_E_INVALID_CREDENTIALS);
	for (i = 0; bad[i] != NULL; i++)
		assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, bad[i], NOW, 0, &matched),
		                 IDB_E_INVALID_CREDENTIALS);
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, NULL, NOW, 0, &matched), IDB_E_INVALID_CREDENTIALS);
	/* "081804" without its leading zero is not the code. */
	assert_int_equal(idb_totp_verify(rfc_secret, RFC_LEN, "81804", 1111111109, 0, &matched),
	                 IDB_E_INVALID_CREDENTIALS);
	assert_int_equal(matched, 777);
}

/* ---- base32 ---- */

static void
base32_matches_rfc4648_vectors(void **state)
{
	static const struct {
		const char *in, *out;
	} v[] = {
	    {"", ""},           {"f", "MY"},           {"fo", "MZXQ"},      {"foo", "MZXW6"},
	    {"foob", "MZXW6YQ"}, {"fooba", "MZXW6YTB"}, {"foobar", "MZXW6YTBOI"},
	    {"12345678901234567890", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"},
	};
	unsigned char dec[32];
	char enc[64];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		idb_base32_encode((const unsigned char *)v[i].in, strlen(v[i].in), enc);
		assert_string_equal(enc, v[i].out);
		n = 999;
		assert_int_equal(idb_base32_decode(v[i].out, dec, sizeof(dec), &n), 0);
		assert_int_equal(n, strlen(v[i].in));
		if (n > 0)
			assert_memory_equal(dec, v[i].in, n);
	}
}

static void
base32_round_trips_every_length_up_to_forty(void **state)
{
	unsigned char in[40], dec[40];
	char enc[(40 * 8 + 4) / 5 + 1];
	size_t n, len;
	int rep;

	(void)state;
	for (rep = 0; rep < 20; rep++) {
		for (n = 0; n <= sizeof(in); n++) {
			randombytes_buf(in, sizeof(in));
			memset(enc, '#', sizeof(enc));
			idb_base32_encode(in, n, enc);
			assert_int_equal(strlen(enc), (n * 8 + 4) / 5);
			assert_int_equal(strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), strlen(enc));
			len = 999;
			assert_int_equal(idb_base32_decode(enc, dec, n, &len), 0);
			assert_int_equal(len, n);
			if (n > 0)
				assert_memory_equal(dec, in, n);
		}
	}
}

static void
base32_decodes_lowercase_and_mixed_case(void **state)
{
	unsigned char dec[32];
	size_t n = 0;

	(void)state;
	assert_int_equal(idb_base32_decode("mzxw6ytboi", dec, sizeof(dec), &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(dec, "foobar", 6);
	assert_int_equal(idb_base32_decode("MzXw6YtBoI", dec, sizeof(dec), &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(dec, "foobar", 6);
	assert_int_equal(idb_base32_decode("gezdgnbvgy3tqojqgezdgnbvgy3tqojq", dec, sizeof(dec), &n), 0);
	assert_int_equal(n, IDB_TOTP_SECRET_LEN);
	assert_memory_equal(dec, rfc_secret, IDB_TOTP_SECRET_LEN);
}

static void
base32_refuses_characters_outside_the_alphabet(void **state)
{
	static const char *const bad[] = {
	    "MZXW6YT1", "MZXW6YT0", "MZXW6YT8", "MZXW6YT9", "MY======", "MY=", "=", "MZXW 6YTB", "MZXW-6YTB",
	    "MZXW6YTB\n", "MZXW6YT\xc3\xa9", "MZXW6YT_", "MZXW6YT+", "MZXW6YT/", "MZXW6YT@", "MZXW6YT[",
	    "MZXW6YT{", "mzxw6yt!",
	};
	unsigned char dec[32];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = 999;
		if (idb_base32_decode(bad[i], dec, sizeof(dec), &n) != -1)
			fail_msg("decoded \"%s\"", bad[i]);
	}
}

static void
base32_refuses_output_longer_than_the_buffer(void **state)
{
	unsigned char dec[64];
	char enc[IDB_TOTP_B32_LEN + 16];
	size_t n = 0;

	(void)state;
	assert_int_equal(idb_base32_decode("MZXW6YTBOI", dec, 5, &n), -1);
	assert_int_equal(idb_base32_decode("MZXW6YTBOI", dec, 0, &n), -1);
	assert_int_equal(idb_base32_decode("MZXW6YTBOI", dec, 6, &n), 0);
	assert_int_equal(n, 6);
	/* A secret field of 20 bytes does not take 25. */
	randombytes_buf(dec, 25);
	idb_base32_encode(dec, 25, enc);
	assert_int_equal(idb_base32_decode(enc, dec, IDB_TOTP_SECRET_LEN, &n), -1);
	/* Nothing is written past outmax: a guard byte stays. */
	memset(dec, 0xa5, sizeof(dec));
	assert_int_equal(idb_base32_decode("MZXW6YTBOI", dec, 3, &n), -1);
	assert_int_equal(dec[3], 0xa5);
	/* The empty string is zero bytes, even into no room at all. */
	assert_int_equal(idb_base32_decode("", dec, 0, &n), 0);
	assert_int_equal(n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(code_matches_rfc6238_sha1_vectors),
	    cmocka_unit_test(step_is_unix_time_over_thirty_seconds),
	    cmocka_unit_test(code_is_always_below_one_million),
	    cmocka_unit_test(codes_match_oathtool_for_random_hex_secrets_and_times),
	    cmocka_unit_test(base32_secret_is_the_key_oathtool_reads),
	    cmocka_unit_test(verify_accepts_previous_current_and_next_step),
	    cmocka_unit_test(verify_accepts_a_code_with_leading_zero),
	    cmocka_unit_test(verify_refuses_two_steps_away_and_more),
	    cmocka_unit_test(verify_refuses_the_code_of_another_secret),
	    cmocka_unit_test(verify_refuses_a_step_already_used),
	    cmocka_unit_test(verify_accepts_a_step_after_the_last_one_used),
	    cmocka_unit_test(verify_refuses_malformed_codes),
	    cmocka_unit_test(base32_matches_rfc4648_vectors),
	    cmocka_unit_test(base32_round_trips_every_length_up_to_forty),
	    cmocka_unit_test(base32_decodes_lowercase_and_mixed_case),
	    cmocka_unit_test(base32_refuses_characters_outside_the_alphabet),
	    cmocka_unit_test(base32_refuses_output_longer_than_the_buffer),
	};

	return cmocka_run_group_tests_name("totp", tests, group_setup, NULL);
}
