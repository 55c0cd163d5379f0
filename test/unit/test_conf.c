/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/conf: the example file, every value type with good and
 * bad values, comments, long lines, secret-file permissions, and the order
 * in which --config/--data, IMMIDB_CONFIG/IMMIDB_DATA and the defaults apply.
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

#include "conf/conf.h"
#include "tmpdir.h"

#define EXAMPLE IDB_SOURCE_DIR "/conf/immidb.conf.example"

struct fx {
	char dir[256];
	char cfg[320]; /* <dir>/test.conf */
	char err[IDB_CONF_ERR_MAX];
	struct idb_conf c;
};

/* Writes text to path with exactly the given mode. */
static void
write_file(const char *path, const char *text, mode_t mode)
{
	size_t n = strlen(text);
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static void
join(char *out, size_t len, const char *a, const char *b)
{
	int n = snprintf(out, len, "%s/%s", a, b);

	assert_true(n > 0 && (size_t)n < len);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	memcpy(f->dir, "/tmp/idb-conf.XXXXXX", sizeof("/tmp/idb-conf.XXXXXX"));
	assert_non_null(mkdtemp(f->dir));
	join(f->cfg, sizeof(f->cfg), f->dir, "test.conf");
	unsetenv("IMMIDB_CONFIG");
	unsetenv("IMMIDB_DATA");
	idb_conf_defaults(&f->c);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	unsetenv("IMMIDB_CONFIG");
	unsetenv("IMMIDB_DATA");
	rmtree(f->dir);
	free(f);
	return 0;
}

/* Loads text as a configuration file over the defaults. */
static enum idb_err
load_text(struct fx *f, const char *text)
{
	write_file(f->cfg, text, 0600);
	idb_conf_defaults(&f->c);
	f->err[0] = '\0';
	return idb_conf_load(&f->c, f->cfg, f->err, sizeof(f->err));
}

/*
 * A good line, then "key = value" on line 2: refused with IDB_E_CONFIG and
 * an error that starts with "<file>:2:" and names the key.
 */
static void
expect_bad(struct fx *f, const char *key, const char *value)
{
	char text[2048], where[400];

	assert_true(snprintf(text, sizeof(text), "workers = 2\n%s = %s\n", key, value) < (int)sizeof(text));
	assert_true(snprintf(where, sizeof(where), "%s:2:", f->cfg) < (int)sizeof(where));
	if (load_text(f, text) != IDB_E_CONFIG)
		fail_msg("'%s = %s' was accepted", key, value);
	if (strncmp(f->err, where, strlen(where)) != 0 || strstr(f->err, key) == NULL)
		fail_msg("'%s = %s': error '%s' does not start with '%s' or lacks the key", key, value, f->err, where);
}

static void
expect_good(struct fx *f, const char *key, const char *value)
{
	char text[2048];

	assert_true(snprintf(text, sizeof(text), "%s = %s\n", key, value) < (int)sizeof(text));
	if (load_text(f, text) != IDB_OK)
		fail_msg("'%s = %s' was refused: %s", key, value, f->err);
}

/* ---- the example file ---- */

static void
example_file_loads_with_documented_values(void **state)
{
	struct fx *f = *state;
	struct idb_conf *c = &f->c;

	assert_int_equal(idb_conf_load(c, EXAMPLE, f->err, sizeof(f->err)), IDB_OK);
	assert_string_equal(c->path, EXAMPLE);
	assert_string_equal(c->data_dir, "/var/lib/immidb");
	assert_string_equal(c->master_key_file, "/var/lib/immidb/master.key");
	assert_true(c->master_key_set);
	assert_string_equal(c->listen, "unix:/run/immidb/fcgi.sock");
	assert_int_equal(c->listen_mode, 0660);
	assert_string_equal(c->listen_group, "www-data");
	assert_int_equal(c->workers, 4);
	assert_int_equal(c->org_cache, 64);
	assert_string_equal(c->log_origin, "immidb.example.com");
	assert_int_equal(c->sysadmin_ips.n, 2);
	assert_true(idb_cidr_list_contains(&c->sysadmin_ips, "198.51.100.7"));
	assert_true(idb_cidr_list_contains(&c->sysadmin_ips, "2001:db8:100::1"));
	assert_string_equal(c->trusted_proxies, "");
	assert_int_equal(c->proxies.n, 0);
	assert_string_equal(c->smtp_url, "smtp://127.0.0.1:25");
	assert_string_equal(c->smtp_from, "ImmiDB <no-reply@immidb.example.com>");
	assert_string_equal(c->public_url, "https://immidb.example.com");
	assert_string_equal(c->google_client_id, "");
	assert_string_equal(c->google_client_secret_file, "");
	assert_string_equal(c->microsoft_client_id, "");
	assert_string_equal(c->microsoft_client_secret_file, "");
	assert_string_equal(c->microsoft_tenant, "organizations");
	assert_string_equal(c->google_token_url, "https://oauth2.googleapis.com/token");
	assert_string_equal(c->microsoft_graph_base, "https://graph.microsoft.com/v1.0");
}

static void
example_file_names_every_key(void **state)
{
	static const char *const keys[] = {
		"data_dir", "master_key_file", "listen", "listen_mode", "listen_group", "workers",
		"org_cache", "log_origin", "sysadmin_ip_allowlist", "trusted_proxies", "smtp_url",
		"smtp_from", "public_url", "google_client_id", "google_client_secret_file",
		"google_auth_url", "google_token_url", "google_revoke_url", "google_calendar_base",
		"google_gmail_base", "microsoft_client_id", "microsoft_client_secret_file",
		"microsoft_tenant", "microsoft_login_base", "microsoft_graph_base",
	};
	char line[IDB_CONF_LINE_MAX + 2];
	int seen[sizeof(keys) / sizeof(keys[0])] = {0};
	size_t i, n;
	FILE *fp;

	(void)state;
	assert_non_null(fp = fopen(EXAMPLE, "r"));
	while (fgets(line, sizeof(line), fp) != NULL)
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			n = strlen(keys[i]);
			if (strncmp(line, keys[i], n) == 0 && (line[n] == ' ' || line[n] == '='))
				seen[i]++;
		}
	fclose(fp);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (seen[i] != 1)
			fail_msg("key %s appears %d times in the example", keys[i], seen[i]);
}

static void
example_file_opens_with_integrations_disabled(void **state)
{
	struct fx *f = *state;

	/* Empty secret-file values: no file is required, so opening succeeds. */
	assert_int_equal(idb_conf_open(&f->c, EXAMPLE, f->dir, f->err, sizeof(f->err)), IDB_OK);
	assert_string_equal(f->c.data_dir, f->dir);
	assert_string_equal(f->c.master_key_file, "/var/lib/immidb/master.key");
}

static void
defaults_match_the_documentation(void **state)
{
	struct fx *f = *state;

	idb_conf_defaults(&f->c);
	assert_string_equal(f->c.data_dir, "/var/lib/immidb");
	assert_int_equal(f->c.listen_mode, 0660);
	assert_int_equal(f->c.org_cache, 64);
	assert_true(f->c.workers >= 1 && f->c.workers <= IDB_CONF_WORKERS_MAX);
	assert_false(f->c.master_key_set);
}

/* ---- syntax ---- */

static void
unknown_key_is_refused_naming_file_line_and_key(void **state)
{
	struct fx *f = *state;
	char where[400];

	assert_int_equal(load_text(f, "# a comment\n\nworker = 4\n"), IDB_E_CONFIG);
	snprintf(where, sizeof(where), "%s:3:", f->cfg);
	assert_non_null(strstr(f->err, where));
	assert_non_null(strstr(f->err, "worker"));
}

static void
line_without_equals_sign_is_refused(void **state)
{
	struct fx *f = *state;
	char where[400];

	assert_int_equal(load_text(f, "workers 4\n"), IDB_E_CONFIG);
	snprintf(where, sizeof(where), "%s:1:", f->cfg);
	assert_non_null(strstr(f->err, where));
}

static void
inline_comments_are_stripped(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load_text(f, "workers = 3   # three workers\n"
	                              "   # an indented comment line\n"
	                              "listen = 127.0.0.1:9000\t# tab before the comment\n"
	                              "smtp_from = Ops#1 <ops@example.com>   # '#' inside a word stays\n"
	                              "trusted_proxies =        # empty value, then a comment\n"),
	                 IDB_OK);
	assert_int_equal(f->c.workers, 3);
	assert_string_equal(f->c.listen, "127.0.0.1:9000");
	assert_string_equal(f->c.smtp_from, "Ops#1 <ops@example.com>");
	assert_string_equal(f->c.trusted_proxies, "");
	assert_int_equal(f->c.proxies.n, 0);
}

static void
crlf_line_endings_and_blank_space_are_accepted(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load_text(f, "workers=5\r\n\t org_cache \t=\t 7 \r\n\r\n"), IDB_OK);
	assert_int_equal(f->c.workers, 5);
	assert_int_equal(f->c.org_cache, 7);
}

static void
later_line_overrides_earlier_one(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load_text(f, "workers = 3\nworkers = 9\n"), IDB_OK);
	assert_int_equal(f->c.workers, 9);
}

static void
line_of_maximum_length_is_accepted(void **state)
{
	struct fx *f = *state;
	char *text = malloc(IDB_CONF_LINE_MAX + 32);

	assert_non_null(text);
	/* IDB_CONF_LINE_MAX bytes including the newline: a long comment. */
	text[0] = '#';
	memset(text + 1, 'x', IDB_CONF_LINE_MAX - 2);
	text[IDB_CONF_LINE_MAX - 1] = '\n';
	memcpy(text + IDB_CONF_LINE_MAX, "workers = 6\n", sizeof("workers = 6\n"));
	assert_int_equal(load_text(f, text), IDB_OK);
	assert_int_equal(f->c.workers, 6);
	free(text);
}

static void
line_too_long_is_refused_naming_the_line(void **state)
{
	struct fx *f = *state;
	size_t n = IDB_CONF_LINE_MAX + 100;
	char *text = malloc(n + 64);
	char where[400];

	assert_non_null(text);
	memcpy(text, "workers = 2\n# ", 14);
	memset(text + 14, 'x', n);
	/* What follows the long line must not be read as a line of its own. */
	memcpy(text + 14 + n, "\nworkers = 7\n", sizeof("\nworkers = 7\n"));
	assert_int_equal(load_text(f, text), IDB_E_CONFIG);
	snprintf(where, sizeof(where), "%s:2:", f->cfg);
	assert_non_null(strstr(f->err, where));
	assert_non_null(strstr(f->err, "too long"));
	free(text);
}

static void
missing_file_is_an_io_error(void **state)
{
	struct fx *f = *state;
	char path[400];

	join(path, sizeof(path), f->dir, "absent.conf");
	assert_int_equal(idb_conf_load(&f->c, path, f->err, sizeof(f->err)), IDB_E_IO);
	assert_non_null(strstr(f->err, path));
}

static void
control_characters_in_values_are_refused(void **state)
{
	struct fx *f = *state;

	expect_bad(f, "smtp_from", "Immi\tDB <a@b.c>");
	expect_bad(f, "google_client_id", "abc\x01" "def");
	expect_bad(f, "microsoft_client_id", "abc\x7f");
}

static void
value_longer_than_its_field_is_refused(void **state)
{
	struct fx *f = *state;
	char v[IDB_CONF_STR + 8];

	v[0] = '/';
	memset(v + 1, 'a', IDB_CONF_STR);
	v[IDB_CONF_STR + 1] = '\0';
	expect_bad(f, "data_dir", v);
	v[IDB_CONF_STR - 1] = '\0'; /* 511 bytes fit in 512 */
	expect_good(f, "data_dir", v);
}

/* ---- one test per value type ---- */

static void
workers_accepts_1_to_256_only(void **state)
{
	struct fx *f = *state;

	expect_good(f, "workers", "1");
	assert_int_equal(f->c.workers, 1);
	expect_good(f, "workers", "256");
	assert_int_equal(f->c.workers, 256);
	expect_bad(f, "workers", "0");
	expect_bad(f, "workers", "257");
	expect_bad(f, "workers", "999");
	expect_bad(f, "workers", "abc");
	expect_bad(f, "workers", "-1");
	expect_bad(f, "workers", "4x");
	expect_bad(f, "workers", "4 5");
	expect_bad(f, "workers", "0x10");
	expect_bad(f, "workers", "");
	expect_bad(f, "workers", "99999999999999999999999");
}

static void
org_cache_refuses_zero_and_garbage(void **state)
{
	struct fx *f = *state;

	expect_good(f, "org_cache", "1");
	expect_bad(f, "org_cache", "0");
	expect_bad(f, "org_cache", "many");
	expect_bad(f, "org_cache", "");
}

static void
listen_mode_accepts_octal_not_writable_by_others(void **state)
{
	struct fx *f = *state;

	expect_good(f, "listen_mode", "0660");
	assert_int_equal(f->c.listen_mode, 0660);
	expect_good(f, "listen_mode", "0600");
	assert_int_equal(f->c.listen_mode, 0600);
	expect_good(f, "listen_mode", "0640");
	assert_int_equal(f->c.listen_mode, 0640);
}

static void
listen_mode_refuses_world_writable_and_non_octal(void **state)
{
	struct fx *f = *state;

	expect_bad(f, "listen_mode", "0666"); /* world-writable */
	expect_bad(f, "listen_mode", "0777");
	expect_bad(f, "listen_mode", "0662");
	expect_bad(f, "listen_mode", "660"); /* no leading 0: decimal or octal? refused */
	expect_bad(f, "listen_mode", "0680");
	expect_bad(f, "listen_mode", "01660");
	expect_bad(f, "listen_mode", "rw-rw----");
	expect_bad(f, "listen_mode", "");
}

static void
listen_accepts_unix_socket_and_address_port(void **state)
{
	struct fx *f = *state;

	expect_good(f, "listen", "unix:/run/immidb/fcgi.sock");
	expect_good(f, "listen", "127.0.0.1:9000");
	expect_good(f, "listen", "[::1]:9000");
}

static void
listen_refuses_malformed_values(void **state)
{
	struct fx *f = *state;

	expect_bad(f, "listen", "tcp:foo");
	expect_bad(f, "listen", "");
	expect_bad(f, "listen", "unix:relative.sock");
	expect_bad(f, "listen", "127.0.0.1");
	expect_bad(f, "listen", "127.0.0.1:0");
	expect_bad(f, "listen", "127.0.0.1:65536");
	expect_bad(f, "listen", ":9000");
	expect_bad(f, "listen", "127.0.0.1:90ab");
}

/*
 * The host of "address:port" must be an IP address (conf.c's own comment:
 * "host being an IPv4 address or [IPv6]"; fcgi/master.c binds only those).
 * Anything else must be refused here, naming the line, not later at bind.
 */
static void
listen_refuses_host_that_is_not_an_ip_address(void **state)
{
	struct fx *f = *state;

	expect_bad(f, "listen", "tcp:9000");
	expect_bad(f, "listen", "localhost:9000");
	expect_bad(f, "listen", "::1:9000"); /* IPv6 without brackets */
	expect_bad(f, "listen", "300.0.0.1:9000");
}

static void
urls_must_be_http_or_smtp(void **state)
{
	struct fx *f = *state;

	expect_good(f, "public_url", "http://127.0.0.1:8080");
	expect_good(f, "smtp_url", "smtps://mail.example.com:465");
	expect_good(f, "google_auth_url", "https://accounts.google.com/o/oauth2/v2/auth");
	expect_bad(f, "smtp_url", "ftp://x");
	expect_bad(f, "public_url", "ftp://x");
	expect_bad(f, "public_url", "https://");
	expect_bad(f, "public_url", "https:///path");
	expect_bad(f, "public_url", "javascript:alert(1)");
	expect_bad(f, "public_url", "immidb.example.com");
	expect_bad(f, "google_token_url", "https://a.example/\"x");
	expect_bad(f, "microsoft_graph_base", "https://graph example.com");
}

static void
cidr_lists_accept_addresses_and_ranges(void **state)
{
	struct fx *f = *state;

	expect_good(f, "trusted_proxies", "127.0.0.1, ::1 10.0.0.0/8");
	assert_int_equal(f->c.proxies.n, 3);
	assert_true(idb_cidr_list_contains(&f->c.proxies, "10.1.2.3"));
	expect_good(f, "sysadmin_ip_allowlist", "198.51.100.0/24,2001:db8:100::/48");
	assert_int_equal(f->c.sysadmin_ips.n, 2);
	/* The two lists are kept apart. */
	assert_int_equal(f->c.proxies.n, 0);
}

static void
cidr_lists_refuse_host_bits_bad_addresses_and_prefixes(void **state)
{
	struct fx *f = *state;

	expect_bad(f, "sysadmin_ip_allowlist", "10.0.0.1/8");
	expect_bad(f, "sysadmin_ip_allowlist", "300.1.1.1");
	expect_bad(f, "sysadmin_ip_allowlist", "::1/129");
	expect_bad(f, "sysadmin_ip_allowlist", "10.0.0.0/33");
	expect_bad(f, "sysadmin_ip_allowlist", "192.168.0.0/16, nonsense");
	expect_bad(f, "trusted_proxies", "10.0.0.1/8");
	expect_bad(f, "trusted_proxies", "300.1.1.1");
	expect_bad(f, "trusted_proxies", "::1/129");
	expect_bad(f, "trusted_proxies", "localhost");
}

static void
paths_must_be_absolute(void **state)
{
	struct fx *f = *state;

	expect_bad(f, "data_dir", "var/lib/immidb");
	expect_bad(f, "data_dir", "./var");
	expect_bad(f, "data_dir", "");
	expect_bad(f, "master_key_file", "master.key");
	expect_bad(f, "google_client_secret_file", "google.secret");
	expect_bad(f, "microsoft_client_secret_file", "../microsoft.secret");
	expect_good(f, "google_client_secret_file", "");
}

static void
names_allow_letters_digits_dash_underscore_dot(void **state)
{
	struct fx *f = *state;

	expect_good(f, "listen_group", "www-data");
	expect_good(f, "microsoft_tenant", "contoso.onmicrosoft.com");
	expect_bad(f, "listen_group", "www data");
	expect_bad(f, "listen_group", "www;data");
	expect_bad(f, "microsoft_tenant", "a/b");
}

static void
log_origin_must_be_non_empty_without_spaces_or_plus(void **state)
{
	struct fx *f = *state;

	expect_good(f, "log_origin", "immidb.example.com");
	expect_bad(f, "log_origin", "");
	expect_bad(f, "log_origin", "immidb example");
	expect_bad(f, "log_origin", "immidb+example");
}

/* ---- secret files ---- */

static void
check_secret_file_refuses_group_or_other_access(void **state)
{
	struct fx *f = *state;
	char s[400];

	join(s, sizeof(s), f->dir, "x.secret");
	write_file(s, "s3cret\n", 0600);
	assert_int_equal(idb_conf_check_secret_file(s), IDB_OK);
	assert_int_equal(chmod(s, 0400), 0);
	assert_int_equal(idb_conf_check_secret_file(s), IDB_OK);
	assert_int_equal(chmod(s, 0640), 0);
	assert_int_equal(idb_conf_check_secret_file(s), IDB_E_PERM);
	assert_int_equal(chmod(s, 0604), 0);
	assert_int_equal(idb_conf_check_secret_file(s), IDB_E_PERM);
	assert_int_equal(chmod(s, 0610), 0);
	assert_int_equal(idb_conf_check_secret_file(s), IDB_E_PERM);
	join(s, sizeof(s), f->dir, "absent.secret");
	assert_int_equal(idb_conf_check_secret_file(s), IDB_E_IO);
}

static void
open_refuses_group_readable_secret_file_naming_file_line(void **state)
{
	struct fx *f = *state;
	char s[400], text[1024], where[400];

	join(s, sizeof(s), f->dir, "google.secret");
	write_file(s, "s3cret\n", 0640);
	snprintf(text, sizeof(text), "workers = 2\ngoogle_client_id = abc\ngoogle_client_secret_file = %s\n", s);
	write_file(f->cfg, text, 0600);
	assert_int_equal(idb_conf_open(&f->c, f->cfg, f->dir, f->err, sizeof(f->err)), IDB_E_PERM);
	snprintf(where, sizeof(where), "%s:3:", f->cfg);
	assert_non_null(strstr(f->err, where));
	assert_non_null(strstr(f->err, s));

	assert_int_equal(chmod(s, 0600), 0);
	f->err[0] = '\0';
	assert_int_equal(idb_conf_open(&f->c, f->cfg, f->dir, f->err, sizeof(f->err)), IDB_OK);
	assert_string_equal(f->c.google_client_secret_file, s);
}

static void
open_refuses_missing_secret_file_naming_file_line(void **state)
{
	struct fx *f = *state;
	char s[400], text[1024], where[400];

	join(s, sizeof(s), f->dir, "microsoft.secret");
	snprintf(text, sizeof(text), "microsoft_client_secret_file = %s\n", s);
	write_file(f->cfg, text, 0600);
	assert_int_not_equal(idb_conf_open(&f->c, f->cfg, f->dir, f->err, sizeof(f->err)), IDB_OK);
	snprintf(where, sizeof(where), "%s:1:", f->cfg);
	assert_non_null(strstr(f->err, where));
}

/* ---- where the configuration comes from ---- */

static void
immidb_config_env_names_the_file(void **state)
{
	struct fx *f = *state;
	char data[400], text[600];

	join(data, sizeof(data), f->dir, "from-file");
	snprintf(text, sizeof(text), "data_dir = %s\nworkers = 3\n", data);
	write_file(f->cfg, text, 0600);
	setenv("IMMIDB_CONFIG", f->cfg, 1);
	assert_int_equal(idb_conf_open(&f->c, NULL, NULL, f->err, sizeof(f->err)), IDB_OK);
	assert_string_equal(f->c.path, f->cfg);
	assert_int_equal(f->c.workers, 3);
	assert_string_equal(f->c.data_dir, data);
	/* No master_key_file in the file: <data>/master.key. */
	snprintf(text, sizeof(text), "%s/master.key", data);
	assert_string_equal(f->c.master_key_file, text);
}

static void
config_option_wins_over_immidb_config_env(void **state)
{
	struct fx *f = *state;
	char other[400];

	join(other, sizeof(other), f->dir, "other.conf");
	write_file(other, "workers = 7\n", 0600);
	write_file(f->cfg, "workers = 3\n", 0600);
	setenv("IMMIDB_CONFIG", other, 1);
	assert_int_equal(idb_conf_open(&f->c, f->cfg, f->dir, f->err, sizeof(f->err)), IDB_OK);
	assert_string_equal(f->c.path, f->cfg);
	assert_int_equal(f->c.workers, 3);
}

static void
immidb_config_env_wins_over_the_conf_in_the_data_folder(void **state)
{
	struct fx *f = *state;
	char inside[400];

	join(inside, sizeof(inside), f->dir, "immidb.conf");
	write_file(inside, "workers = 9\n", 0600);
	write_file(f->cfg, "workers = 3\n", 0600);
	setenv("IMMIDB_CONFIG", f->cfg, 1);
	assert_int_equal(idb_conf_open(&f->c, NULL, f->dir, f->err, sizeof(f->err)), IDB_OK);
	assert_string_equal(f->c.path, f->cfg);
	assert_int_equal(f->c.workers, 3);
}

static void
missing_file_named_by_immidb_config_is_an_error(void **state)
{
	struct fx *f = *state;
	char absent[400];

	join(absent, sizeof(absent), f->dir, "absent.conf");
	setenv("IMMIDB_CONFIG", absent, 1);
	assert_int_not_equal(idb_conf_open(&f->c, NULL, f->dir, f->err, sizeof(f->err)), IDB_OK);
	assert_non_null(strstr(f->err, absent));
}

static void
immidb_data_env_overrides_data_dir_and_sets_master_key_default(void **state)
{
	struct fx *f = *state;
	char want[400];

	write_file(f->cfg, "data_dir = /var/lib/elsewhere\n", 0600);
	setenv("IMMIDB_DATA", f->dir, 1);
	assert_int_equal(idb_conf_open(&f->c, f->cfg, NULL, f->err, sizeof(f->err)), IDB_OK);
	assert_string_equal(f->c.data_dir, f->dir);
	join(want, sizeof(want), f->dir, "master.key");
	assert_string_equal(f->c.master_key_file, want);
}

static void
data_option_wins_over_immidb_data_env(void **state)
{
	struct fx *f = *state;
	char opt[400];

	join(opt, sizeof(opt), f->dir, "opt");
	setenv("IMMIDB_DATA", "/var/lib/from-env", 1);
	write_file(f->cfg, "workers = 2\n", 0600);
	assert_int_equal(idb_conf_open(&f->c, f->cfg, opt, f->err, sizeof(f->err)), IDB_OK);
	assert_string_equal(f->c.data_dir, opt);
}

static void
immidb_data_env_finds_the_conf_inside_the_data_folder(void **state)
{
	struct fx *f = *state;
	char inside[400];

	join(inside, sizeof(inside), f->dir, "immidb.conf");
	write_file(inside, "workers = 5\n", 0600);
	setenv("IMMIDB_DATA", f->dir, 1);
	assert_int_equal(idb_conf_open(&f->c, NULL, NULL, f->err, sizeof(f->err)), IDB_OK);
	assert_string_equal(f->c.path, inside);
	assert_int_equal(f->c.workers, 5);
	assert_string_equal(f->c.data_dir, f->dir);
}

static void
explicit_master_key_file_is_kept_when_data_is_overridden(void **state)
{
	struct fx *f = *state;

	write_file(f->cfg, "master_key_file = /etc/immidb/master.key\n", 0600);
	assert_int_equal(idb_conf_open(&f->c, f->cfg, f->dir, f->err, sizeof(f->err)), IDB_OK);
	assert_string_equal(f->c.master_key_file, "/etc/immidb/master.key");
}

/* make run uses IMMIDB_DATA=./var: a relative folder is taken from the current one. */
static void
relative_data_option_or_env_is_taken_from_the_current_folder(void **state)
{
	struct fx *f = *state;
	char old[1024], cwd[1024], want[1200];

	assert_non_null(getcwd(old, sizeof(old)));
	assert_int_equal(chdir(f->dir), 0);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	write_file(f->cfg, "workers = 2\n", 0600);

	assert_int_equal(idb_conf_open(&f->c, f->cfg, "var", f->err, sizeof(f->err)), IDB_OK);
	snprintf(want, sizeof(want), "%s/var", cwd);
	assert_string_equal(f->c.data_dir, want);
	snprintf(want, sizeof(want), "%s/var/master.key", cwd);
	assert_string_equal(f->c.master_key_file, want);

	setenv("IMMIDB_DATA", "./var", 1);
	assert_int_equal(idb_conf_open(&f->c, f->cfg, NULL, f->err, sizeof(f->err)), IDB_OK);
	assert_int_equal(f->c.data_dir[0], '/');
	assert_int_equal(strncmp(f->c.data_dir, cwd, strlen(cwd)), 0);
	assert_int_equal(chdir(old), 0);
}

static void
empty_environment_values_count_as_unset(void **state)
{
	struct fx *f = *state;

	write_file(f->cfg, "workers = 3\n", 0600);
	setenv("IMMIDB_CONFIG", "", 1);
	setenv("IMMIDB_DATA", "", 1);
	assert_int_equal(idb_conf_open(&f->c, f->cfg, f->dir, f->err, sizeof(f->err)), IDB_OK);
	assert_int_equal(f->c.workers, 3);
	assert_string_equal(f->c.data_dir, f->dir);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(example_file_loads_with_documented_values),
		T(example_file_names_every_key),
		T(example_file_opens_with_integrations_disabled),
		T(defaults_match_the_documentation),
		T(unknown_key_is_refused_naming_file_line_and_key),
		T(line_without_equals_sign_is_refused),
		T(inline_comments_are_stripped),
		T(crlf_line_endings_and_blank_space_are_accepted),
		T(later_line_overrides_earlier_one),
		T(line_of_maximum_length_is_accepted),
		T(line_too_long_is_refused_naming_the_line),
		T(missing_file_is_an_io_error),
		T(control_characters_in_values_are_refused),
		T(value_longer_than_its_field_is_refused),
		T(workers_accepts_1_to_256_only),
		T(org_cache_refuses_zero_and_garbage),
		T(listen_mode_accepts_octal_not_writable_by_others),
		T(listen_mode_refuses_world_writable_and_non_octal),
		T(listen_accepts_unix_socket_and_address_port),
		T(listen_refuses_malformed_values),
		T(listen_refuses_host_that_is_not_an_ip_address),
		T(urls_must_be_http_or_smtp),
		T(cidr_lists_accept_addresses_and_ranges),
		T(cidr_lists_refuse_host_bits_bad_addresses_and_prefixes),
		T(paths_must_be_absolute),
		T(names_allow_letters_digits_dash_underscore_dot),
		T(log_origin_must_be_non_empty_without_spaces_or_plus),
		T(check_secret_file_refuses_group_or_other_access),
		T(open_refuses_group_readable_secret_file_naming_file_line),
		T(open_refuses_missing_secret_file_naming_file_line),
		T(immidb_config_env_names_the_file),
		T(config_option_wins_over_immidb_config_env),
		T(immidb_config_env_wins_over_the_conf_in_the_data_folder),
		T(missing_file_named_by_immidb_config_is_an_error),
		T(immidb_data_env_overrides_data_dir_and_sets_master_key_default),
		T(data_option_wins_over_immidb_data_env),
		T(immidb_data_env_finds_the_conf_inside_the_data_folder),
		T(explicit_master_key_file_is_kept_when_data_is_overridden),
		T(relative_data_option_or_env_is_taken_from_the_current_folder),
		T(empty_environment_values_count_as_unset),
	};

	return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}
