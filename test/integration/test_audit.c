/* SPDX-License-Identifier: ISC */
/*
 * The access log, end to end through nginx: every logged action writes one
 * entry where it happens (actor, via, ip, action, target, outcome, detail),
 * failed logins and lockouts included; the hash chain (seq without gaps,
 * prev_hash links, every hash recomputed here with libsodium's SHA-256 over
 * the layout of storage.md), also under concurrent requests; append-only
 * triggers; tampering found by .../verify and `immidb-admin log verify`;
 * the signed checkpoint checked with tools that are not ours (openssl,
 * sha256sum); the verification script docs/verify-access-log.py on real and
 * damaged exports; fail closed (a log that cannot be written means 503 and
 * nothing committed); and who may read the log.
 *
 * As in test_auth.c, the server trusts loopback as a proxy and each test
 * speaks for its own client addresses (198.18.2.N) through X-Forwarded-For,
 * in its own organization made with the real immidb-admin. Storage checks
 * open the org database with its database key, as an operator holding the
 * master key could.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "client.h"
#include "store/db.h"
#include "store/registry.h"

#define WORKERS 2
#define ORIGIN "test.immidb.localhost"
#define OPENSSL "/usr/bin/openssl"
#define SHA256SUM "/usr/bin/sha256sum"
#define SCRIPT IDB_SOURCE_DIR "/docs/verify-access-log.py"
#define RACERS 6
#define RACE_READS 20
#define SECRET_A "A987650123"
#define SECRET_SSN "078-05-1120"
#define LOG_COLS                                                                                            \
	"seq, at, actor_kind, actor_id, actor_email, via, ip, action, target, reason, outcome, detail, prev_hash, hash"

struct h_env env;

static int
setup(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (sodium_init() < 0)
		return -1;
	return h_start_with(&env, WORKERS, "127.0.0.1");
}

static int
teardown(void **state)
{
	(void)state;
	int rc = h_stop(&env);

	curl_global_cleanup();
	return rc;
}

/* --- the access log from the API ----------------------------------- */

struct xport {
	char *raw;
	size_t len;
	cJSON *entries; /* array, oldest first */
	cJSON *ckwrap;  /* {"checkpoint": {...}} */
	const cJSON *ck;
};

static void
export_parse(struct xport *x)
{
	char *p = x->raw, *nl;
	cJSON *j;

	x->entries = cJSON_CreateArray();
	x->ckwrap = NULL;
	while (*p != '\0') {
		nl = strchr(p, '\n');
		if (nl == NULL)
			fail_msg("the export's last line has no newline: %.200s", p);
		*nl = '\0';
		if (x->ckwrap != NULL)
			fail_msg("a line after the checkpoint line: %.200s", p);
		if ((j = cJSON_Parse(p)) == NULL)
			fail_msg("an export line is not JSON: %.200s", p);
		if (cJSON_GetObjectItemCaseSensitive(j, "checkpoint") != NULL) {
			assert_int_equal(cJSON_GetArraySize(j), 1);
			x->ckwrap = j;
		} else
			cJSON_AddItemToArray(x->entries, j);
		*nl = '\n';
		p = nl + 1;
	}
	if (x->ckwrap == NULL)
		fail_msg("the export has no final checkpoint line");
	x->ck = jobj(x->ckwrap, "checkpoint");
}

static void
export_free(struct xport *x)
{
	free(x->raw);
	cJSON_Delete(x->entries);
	cJSON_Delete(x->ckwrap);
	memset(x, 0, sizeof(*x));
}

/* GET .../access-log/export as s, parsed. */
static void
export_get(const struct sess *s, struct xport *x)
{
	char ct[128], cd[256];
	struct h_resp r;

	memset(x, 0, sizeof(*x));
	sreq(s, "GET", "/access-log/export", NULL, &r);
	want(&r, 200);
	assert_int_equal(h_header(&r, "Content-Type", ct, sizeof(ct)), 0);
	if (strncmp(ct, "application/x-ndjson", 20) != 0)
		fail_msg("export Content-Type: %s", ct);
	if (h_header(&r, "Content-Disposition", cd, sizeof(cd)) == 0)
		assert_non_null(strstr(cd, "attachment"));
	x->raw = r.body;
	x->len = r.len;
	r.body = NULL;
	h_resp_free(&r);
	assert_int_equal(strlen(x->raw), x->len); /* no NUL bytes */
	export_parse(x);
}

static int
nentries(const struct xport *x)
{
	return cJSON_GetArraySize(x->entries);
}

static const cJSON *
entry_at(const struct xport *x, long long seq)
{
	const cJSON *e = cJSON_GetArrayItem(x->entries, (int)(seq - 1));

	if (e == NULL)
		fail_msg("the export has no entry %lld", seq);
	return e;
}

/* GET .../access-log/verify as s. */
static cJSON *
verify_get(const struct sess *s)
{
	return sok(s, "GET", "/access-log/verify", NULL, 200);
}

/* --- the hash chain, computed here --------------------------------- */

static void
put_field(crypto_hash_sha256_state *st, const char *s)
{
	size_t n = strlen(s);
	unsigned char len[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
	                        (unsigned char)n};

	crypto_hash_sha256_update(st, len, 4);
	crypto_hash_sha256_update(st, (const unsigned char *)s, n);
}

/* storage.md: SHA-256("immidb-access-log-v1\n" || prev || F(seq) || F(at) || ... || F(detail)). */
static void
entry_hash(const cJSON *e, const unsigned char prev[32], unsigned char out[32])
{
	static const char domain[] = "immidb-access-log-v1\n";
	const cJSON *a = jobj(e, "actor");
	crypto_hash_sha256_state st;
	char seq[32];

	snprintf(seq, sizeof(seq), "%lld", jint(e, "seq"));
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)domain, sizeof(domain) - 1);
	crypto_hash_sha256_update(&st, prev, 32);
	put_field(&st, seq);
	put_field(&st, jstr(e, "at"));
	put_field(&st, jstr(a, "kind"));
	put_field(&st, jstr(a, "id"));
	put_field(&st, jstr(a, "email"));
	put_field(&st, jstr(e, "via"));
	put_field(&st, jstr(e, "ip"));
	put_field(&st, jstr(e, "action"));
	put_field(&st, jstr(e, "target"));
	put_field(&st, jstr(e, "reason"));
	put_field(&st, jstr(e, "outcome"));
	put_field(&st, jstr(e, "detail"));
	crypto_hash_sha256_final(&st, out);
}

static void
unhex32(const char *hex, unsigned char out[32])
{
	size_t bin = 0;

	if (strlen(hex) != 64 || sodium_hex2bin(out, 32, hex, 64, NULL, &bin, NULL) != 0 || bin != 32)
		fail_msg("not 64 hex characters: %s", hex);
	for (; *hex; hex++)
		if (isupper((unsigned char)*hex))
			fail_msg("hex is not lowercase");
}

static int
one_of(const char *v, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(v, *set) == 0)
			return 1;
	return 0;
}

/* "YYYY-MM-DDTHH:MM:SS[.fff]Z" */
static int
rfc3339z(const char *t)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t i;

	for (i = 0; shape[i] != '\0'; i++)
		if (shape[i] == 'd' ? !isdigit((unsigned char)t[i]) : t[i] != shape[i])
			return 0;
	t += i;
	if (*t == '.') {
		t++;
		if (!isdigit((unsigned char)*t))
			return 0;
		while (isdigit((unsigned char)*t))
			t++;
	}
	return strcmp(t, "Z") == 0;
}

/* seq 1..N without gaps, prev_hash links, each hash recomputed; the last hash into head. */
static void
chain_check(const cJSON *entries, unsigned char head[32])
{
	static const char *const kinds[] = {"user", "sysadmin", "system", "anonymous", NULL};
	static const char *const vias[] = {"app", "server", "system", NULL};
	static const char *const outcomes[] = {"ok", "denied", "failed", NULL};
	unsigned char prev[32] = {0}, h[32], given[32], gprev[32];
	const char *last_at = "";
	const cJSON *e;
	long long expect = 1;

	cJSON_ArrayForEach(e, entries)
	{
		if (jint(e, "seq") != expect)
			fail_msg("seq %lld where %lld was expected (a gap or a repeat)", jint(e, "seq"), expect);
		unhex32(jstr(e, "prev_hash"), gprev);
		unhex32(jstr(e, "hash"), given);
		if (memcmp(gprev, prev, 32) != 0)
			fail_msg("entry %lld: prev_hash is not the hash of entry %lld", expect, expect - 1);
		entry_hash(e, prev, h);
		if (memcmp(h, given, 32) != 0)
			fail_msg("entry %lld: the stored hash differs from SHA-256 over storage.md's layout", expect);
		if (!rfc3339z(jstr(e, "at")))
			fail_msg("entry %lld: at is not RFC 3339 UTC: %s", expect, jstr(e, "at"));
		if (strcmp(jstr(e, "at"), last_at) < 0)
			fail_msg("entry %lld: at %s goes back before %s", expect, jstr(e, "at"), last_at);
		last_at = jstr(e, "at");
		if (!one_of(jstr(jobj(e, "actor"), "kind"), kinds) || !one_of(jstr(e, "via"), vias) ||
		    !one_of(jstr(e, "outcome"), outcomes))
			fail_msg("entry %lld: actor.kind, via or outcome outside storage.md's sets", expect);
		memcpy(prev, h, 32);
		expect++;
	}
	if (head != NULL)
		memcpy(head, prev, 32);
}

/* --- expected entries ---------------------------------------------- */

struct want_e {
	const char *action, *kind, *id, *email, *outcome, *target, *detail;
};

static void
entry_is(const cJSON *e, const struct want_e *w, const char *ip, int n)
{
	const cJSON *a = jobj(e, "actor");
	char *s = cJSON_PrintUnformatted(e);

	if (strcmp(jstr(e, "action"), w->action) != 0 || strcmp(jstr(a, "kind"), w->kind) != 0 ||
	    strcmp(jstr(a, "id"), w->id) != 0 || strcmp(jstr(a, "email"), w->email) != 0 ||
	    strcmp(jstr(e, "outcome"), w->outcome) != 0 || strcmp(jstr(e, "target"), w->target) != 0 ||
	    strcmp(jstr(e, "detail"), w->detail) != 0 || strcmp(jstr(e, "via"), "app") != 0 ||
	    strcmp(jstr(e, "ip"), ip) != 0 || strcmp(jstr(e, "reason"), "") != 0)
		fail_msg("entry #%d from %s:\n  expected action=%s actor=%s/%s/%s outcome=%s target=%s detail=%s via=app\n"
		         "  got      %s",
		         n, ip, w->action, w->kind, w->id, w->email, w->outcome, w->target, w->detail, s ? s : "?");
	free(s);
}

/* The entries from ip, in order, must be exactly want[0..n). */
static void
entries_from(const struct xport *x, const char *ip, const struct want_e *w, int n)
{
	const cJSON *e;
	int k = 0;

	cJSON_ArrayForEach(e, x->entries)
	{
		if (strcmp(jstr(e, "ip"), ip) != 0)
			continue;
		if (k >= n) {
			char *s = cJSON_PrintUnformatted(e);

			fail_msg("an unexpected entry from %s after the %d expected: %s", ip, n, s ? s : "?");
		}
		entry_is(e, &w[k], ip, k);
		k++;
	}
	if (k != n)
		fail_msg("%d entries from %s, expected %d (next expected: %s %s)", k, ip, n, w[k].action, w[k].target);
}

static int
count_entries(const struct xport *x, const char *ip, const char *action)
{
	const cJSON *e;
	int n = 0;

	cJSON_ArrayForEach(e, x->entries)
	if ((ip == NULL || strcmp(jstr(e, "ip"), ip) == 0) && (action == NULL || strcmp(jstr(e, "action"), action) == 0))
		n++;
	return n;
}

/* --- files and tools ----------------------------------------------- */

#define TP_LEN (H_PATH + 64)

/* A file in the test's folder (removed by h_stop) into out[TP_LEN]; returns out. */
static const char *
tmp_path(char *out, const char *name)
{
	if (snprintf(out, TP_LEN, "%s/%s", env.dir, name) >= TP_LEN)
		fail_msg("path too long");
	return out;
}

static void
write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* base64 (original variant) of exactly n bytes into out; -1 if it is not. */
static int
unb64(const char *s, unsigned char *out, size_t n)
{
	size_t bin = 0;
	const char *end = NULL;

	if (sodium_base642bin(out, n, s, strlen(s), NULL, &bin, &end, sodium_base64_VARIANT_ORIGINAL) != 0 || bin != n ||
	    end == NULL || *end != '\0')
		return -1;
	return 0;
}

/* GET /api/v1/log-key: the 32-byte key and its base64. */
static void
log_key(unsigned char pk[32], char *b64, size_t b64len, char *verifier, size_t vlen)
{
	struct h_resp r;
	cJSON *j;

	raw("GET", "/api/v1/log-key", NULL, NULL, NULL, NULL, &r);
	j = wjson(&r, 200);
	assert_string_equal(jstr(j, "algorithm"), "ed25519");
	assert_string_equal(jstr(j, "name"), ORIGIN);
	if (unb64(jstr(j, "public_key"), pk, 32) != 0)
		fail_msg("public_key is not the base64 of 32 bytes: %s", jstr(j, "public_key"));
	copy(b64, b64len, jstr(j, "public_key"));
	if (verifier != NULL)
		copy(verifier, vlen, jstr(j, "verifier_key"));
	cJSON_Delete(j);
}

/* The signed note's parts. */
struct note {
	char origin[160];
	long long size;
	unsigned char head[32];
	char name[160];
	unsigned char keyhash[4];
	unsigned char sig[64];
	char msg[512]; /* the first three lines with their newlines */
};

static void
note_parse(const char *text, struct note *n)
{
	static const char dash[] = "\xe2\x80\x94 "; /* U+2014 and a space */
	const char *l[6], *p = text, *sp;
	char line[5][256];
	unsigned char both[68];
	size_t len;
	int i;

	memset(n, 0, sizeof(*n));
	for (i = 0; i < 5; i++) {
		l[i] = p;
		if ((p = strchr(p, '\n')) == NULL)
			fail_msg("note has fewer than 5 lines: %s", text);
		len = (size_t)(p - l[i]);
		if (len >= sizeof(line[i]))
			fail_msg("note line %d too long", i + 1);
		memcpy(line[i], l[i], len);
		line[i][len] = '\0';
		p++;
	}
	if (*p != '\0')
		fail_msg("note has text after its signature line: %s", p);
	assert_string_equal(line[3], "");
	copy(n->origin, sizeof(n->origin), line[0]);
	for (i = 0; line[1][i]; i++)
		assert_true(isdigit((unsigned char)line[1][i]));
	n->size = strtoll(line[1], NULL, 10);
	if (unb64(line[2], n->head, 32) != 0)
		fail_msg("note line 3 is not the base64 of 32 bytes: %s", line[2]);
	if (strncmp(line[4], dash, strlen(dash)) != 0)
		fail_msg("signature line does not start with an em dash and a space: %s", line[4]);
	sp = strchr(line[4] + strlen(dash), ' ');
	assert_non_null(sp);
	len = (size_t)(sp - (line[4] + strlen(dash)));
	assert_true(len < sizeof(n->name));
	memcpy(n->name, line[4] + strlen(dash), len);
	n->name[len] = '\0';
	if (unb64(sp + 1, both, 68) != 0)
		fail_msg("signature is not the base64 of 68 bytes: %s", sp + 1);
	memcpy(n->keyhash, both, 4);
	memcpy(n->sig, both + 4, 64);
	len = (size_t)(l[3] - l[0]);
	assert_true(len < sizeof(n->msg));
	memcpy(n->msg, l[0], len);
	n->msg[len] = '\0';
}

/* openssl pkeyutl -verify with pk over msg and sig: 1 if "Signature Verified Successfully" and exit 0. */
static int
openssl_verify(const unsigned char pk[32], const void *msg, size_t msglen, const unsigned char sig[64],
               const char *tag)
{
	static const unsigned char prefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
	unsigned char der[44];
	char b64[sodium_base64_ENCODED_LEN(44, sodium_base64_VARIANT_ORIGINAL)], out[1024], err[1024];
	char kp[TP_LEN], mp[TP_LEN], sp[TP_LEN];
	int rc;

	tmp_path(kp, F("%s.key.pem", tag));
	tmp_path(mp, F("%s.msg", tag));
	tmp_path(sp, F("%s.sig", tag));
	memcpy(der, prefix, 12);
	memcpy(der + 12, pk, 32);
	sodium_bin2base64(b64, sizeof(b64), der, sizeof(der), sodium_base64_VARIANT_ORIGINAL);
	{
		const char *pem = F("-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n", b64);

		write_bytes(kp, pem, strlen(pem));
	}
	write_bytes(mp, msg, msglen);
	write_bytes(sp, sig, 64);
	rc = h_run(NULL, out, sizeof(out), err, sizeof(err), OPENSSL, "pkeyutl", "-verify", "-pubin", "-inkey", kp,
	           "-rawin", "-in", mp, "-sigfile", sp, NULL);
	if (rc == 0 && strstr(out, "Signature Verified Successfully") == NULL)
		fail_msg("openssl exited 0 without saying so: %s %s", out, err);
	if (rc != 0 && strstr(out, "Signature Verified Successfully") != NULL)
		fail_msg("openssl said verified but exited %d", rc);
	return rc == 0;
}

/* sha256sum over name "\n" 0x01 pk: the first 8 hex characters into hex8. */
static void
sha256sum_keyhash(const char *name, const unsigned char pk[32], char hex8[9])
{
	unsigned char buf[256];
	size_t n = strlen(name);
	char out[256], err[256], p[TP_LEN];

	assert_true(n + 2 + 32 <= sizeof(buf));
	memcpy(buf, name, n);
	buf[n] = '\n';
	buf[n + 1] = 0x01;
	memcpy(buf + n + 2, pk, 32);
	tmp_path(p, "keyhash.in");
	write_bytes(p, buf, n + 34);
	if (h_run(NULL, out, sizeof(out), err, sizeof(err), SHA256SUM, p, NULL) != 0)
		fail_msg("sha256sum: %s", err);
	memcpy(hex8, out, 8);
	hex8[8] = '\0';
}

/* python3 docs/verify-access-log.py file pk [extra...]: exit status; stdout+stderr into out. */
static int
script(const char *file, const char *pk, const char *opt, const char *optv, char *out, size_t outlen)
{
	char err[4096];
	int rc;

	if (access(SCRIPT, R_OK) != 0)
		fail_msg("%s is not there (yet)", SCRIPT);
	if (opt != NULL)
		rc = h_run(NULL, out, outlen, err, sizeof(err), "/usr/bin/python3", SCRIPT, file, pk, opt, optv, NULL);
	else
		rc = h_run(NULL, out, outlen, err, sizeof(err), "/usr/bin/python3", SCRIPT, file, pk, NULL);
	if (strlen(out) + strlen(err) + 1 < outlen)
		memcpy(out + strlen(out), err, strlen(err) + 1);
	return rc;
}

/* The export's lines (entries and the checkpoint), split in place into lines[]; their count. */
static int
split_lines(char *text, char **lines, int max)
{
	int n = 0;
	char *p = text, *nl;

	while (*p != '\0' && n < max) {
		nl = strchr(p, '\n');
		assert_non_null(nl);
		*nl = '\0';
		lines[n++] = p;
		p = nl + 1;
	}
	assert_true(*p == '\0');
	return n;
}

/* Writes lines[order[0..n)] each with a newline. */
static void
write_lines(const char *path, char **lines, const int *order, int n)
{
	FILE *f = fopen(path, "wb");
	int i;

	assert_non_null(f);
	for (i = 0; i < n; i++)
		assert_true(fprintf(f, "%s\n", lines[order[i]]) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* 1 if text names seq k as the first bad one ("first bad seq K"). */
static int
names_first_bad(const char *text, long long k)
{
	const char *p = text;
	char pat[48];

	snprintf(pat, sizeof(pat), "first bad seq %lld", k);
	while ((p = strstr(p, pat)) != NULL) {
		if (!isdigit((unsigned char)p[strlen(pat)]))
			return 1;
		p++;
	}
	return 0;
}

/* 1 if text contains the decimal number k as a whole token. */
static int
has_number(const char *text, long long k)
{
	char num[32];
	const char *p = text;
	size_t n;

	snprintf(num, sizeof(num), "%lld", k);
	n = strlen(num);
	while ((p = strstr(p, num)) != NULL) {
		if ((p == text || !isdigit((unsigned char)p[-1])) && !isdigit((unsigned char)p[n]))
			return 1;
		p++;
	}
	return 0;
}

/* --- tests: every action is logged where it happens ---------------- */

static void
every_action_writes_one_entry_with_actor_target_outcome_and_ip(void **state)
{
	static const char *slug = "al-actions";
	static const char *ip_a = "198.18.2.1", *ip_ro = "198.18.2.2", *ip_aud = "198.18.2.3", *ip_bad = "198.18.2.4";
	char cid[128], cid2[128], uid[128], roid[128], t_c[192], t_c2[192], t_u[192];
	char admin_email[64], ro_email[64], aid[64];
	struct sess a, ro, aud;
	struct xport x;
	struct h_resp r;
	long long ver;
	cJSON *j;

	(void)state;
	org_new(slug);
	copy(admin_email, sizeof(admin_email), "admin@al-actions.test");
	copy(ro_email, sizeof(ro_email), "ro@al-actions.test");
	user_new(slug, admin_email, "admin", aid, sizeof(aid));
	user_new(slug, ro_email, "readonly", roid, sizeof(roid));

	/* The admin at ip_a: every kind of data access. */
	login(slug, ip_a, admin_email, &a);
	assert_string_equal(a.user_id, aid);
	client_new(&a,
	           "{\"family_name\":\"Audit\",\"given_name\":\"Ana\",\"a_number\":\"" SECRET_A "\",\"ssn\":\"" SECRET_SSN
	           "\"}",
	           cid, sizeof(cid));
	client_new(&a, "{\"family_name\":\"Second\",\"given_name\":\"Bo\"}", cid2, sizeof(cid2));
	copy(t_c, sizeof(t_c), F("clients/%s", cid));
	copy(t_c2, sizeof(t_c2), F("clients/%s", cid2));
	cJSON_Delete(sok(&a, "GET", F("/clients/%s", cid), NULL, 200));
	cJSON_Delete(sok(&a, "GET", "/clients?q=Audit&limit=5", NULL, 200));
	cJSON_Delete(sok(&a, "PATCH", F("/clients/%s", cid), "{\"version\":1,\"given_name\":\"Anna\"}", 200));
	j = sok(&a, "POST", F("/clients/%s/reveal", cid), "{\"field\":\"a_number\"}", 200);
	assert_string_equal(jstr(j, "value"), SECRET_A);
	cJSON_Delete(j);
	j = sok(&a, "POST", F("/clients/%s/reveal", cid), "{\"field\":\"ssn\"}", 200);
	assert_string_equal(jstr(j, "value"), SECRET_SSN);
	cJSON_Delete(j);
	/* A 422 (failed) and a CSRF failure (denied). */
	serr(&a, "POST", "/clients", "{\"family_name\":\"\"}", 422, "validation_failed");
	raw("POST", F("/api/v1/orgs/%s/clients", slug), ip_a, a.token, NULL, "{\"family_name\":\"X\",\"given_name\":\"Y\"}",
	    &r);
	werr(&r, 403, "csrf_failed");
	raw("POST", F("/api/v1/orgs/%s/clients/%s/reveal", slug, cid), ip_a, a.token, "not-the-token",
	    "{\"field\":\"a_number\"}", &r);
	werr(&r, 403, "csrf_failed");
	/* Settings and users. */
	j = sok(&a, "GET", "/settings", NULL, 200);
	ver = jint(j, "version");
	cJSON_Delete(j);
	cJSON_Delete(sok(&a, "PATCH", "/settings", F("{\"version\":%lld,\"session_idle_minutes\":45}", ver), 200));
	j = sok(&a, "POST", "/users",
	        "{\"email\":\"new@al-actions.test\",\"name\":\"New\",\"role\":\"member\",\"password\":\"" PW "\"}", 201);
	copy(uid, sizeof(uid), jstr(j, "id"));
	cJSON_Delete(j);
	copy(t_u, sizeof(t_u), F("users/%s", uid));
	cJSON_Delete(sok(&a, "PATCH", F("/users/%s", uid), "{\"version\":1,\"name\":\"Renamed\"}", 200));
	cJSON_Delete(sok(&a, "GET", "/users", NULL, 200));
	/* The change-log export. */
	sreq(&a, "GET", "/changes/export", NULL, &r);
	want(&r, 200);
	h_resp_free(&r);
	/* Delete, then a read of the deleted record (404: failed). */
	assert_null(sok(&a, "DELETE", F("/clients/%s", cid2), NULL, 204));
	serr(&a, "GET", F("/clients/%s", cid2), NULL, 404, "not_found");
	/* Log out; the dead cookie afterwards names nobody and is not an entry. */
	assert_null(sok(&a, "DELETE", "/session", NULL, 204));
	serr(&a, "GET", "/clients", NULL, 401, "unauthenticated");

	/* The readonly user at ip_ro: a list (allowed), a reveal and a settings change (denied). */
	login(slug, ip_ro, ro_email, &ro);
	cJSON_Delete(sok(&ro, "GET", "/clients", NULL, 200));
	serr(&ro, "POST", F("/clients/%s/reveal", cid), "{\"field\":\"a_number\"}", 403, "forbidden");
	serr(&ro, "PATCH", "/settings", "{\"version\":2,\"require_mfa\":true}", 403, "forbidden");

	/* Failed logins at ip_bad: a known email with a wrong password, an unknown email. */
	login_err(slug, ip_bad, admin_email, "wrong password here", 401, "invalid_credentials");
	login_err(slug, ip_bad, "nobody@al-actions.test", PW, 401, "invalid_credentials");

	/* The auditor reads the log from its own address. */
	login(slug, ip_aud, admin_email, &aud);
	export_get(&aud, &x);
	chain_check(x.entries, NULL);
	{
		const struct want_e wa[] = {
		    {"session.login", "user", aid, admin_email, "ok", "session", ""},
		    /* A create names the new record; a refused one only the resource. */
		    {"record.create", "user", aid, admin_email, "ok", t_c, ""},
		    {"record.create", "user", aid, admin_email, "ok", t_c2, ""},
		    {"record.read", "user", aid, admin_email, "ok", t_c, ""},
		    {"record.list", "user", aid, admin_email, "ok", "clients", ""},
		    {"record.update", "user", aid, admin_email, "ok", t_c, ""},
		    {"record.reveal", "user", aid, admin_email, "ok", t_c, "field=a_number"},
		    {"record.reveal", "user", aid, admin_email, "ok", t_c, "field=ssn"},
		    {"record.create", "user", aid, admin_email, "failed", "clients", "validation_failed"},
		    {"record.create", "user", aid, admin_email, "denied", "clients", "csrf_failed"},
		    {"record.reveal", "user", aid, admin_email, "denied", t_c, "csrf_failed"},
		    {"record.read", "user", aid, admin_email, "ok", "settings", ""},
		    {"settings.update", "user", aid, admin_email, "ok", "settings", ""},
		    {"user.create", "user", aid, admin_email, "ok", "users", ""},
		    {"user.update", "user", aid, admin_email, "ok", t_u, ""},
		    {"record.list", "user", aid, admin_email, "ok", "users", ""},
		    {"changes.export", "user", aid, admin_email, "ok", "changes/export", ""},
		    {"record.delete", "user", aid, admin_email, "ok", t_c2, ""},
		    {"record.read", "user", aid, admin_email, "failed", t_c2, "not_found"},
		    {"session.logout", "user", aid, admin_email, "ok", "session", ""},
		};
		const struct want_e wro[] = {
		    {"session.login", "user", roid, ro_email, "ok", "session", ""},
		    {"record.list", "user", roid, ro_email, "ok", "clients", ""},
		    {"record.reveal", "user", roid, ro_email, "denied", t_c, "forbidden"},
		    {"settings.update", "user", roid, ro_email, "denied", "settings", "forbidden"},
		};
		const struct want_e wbad[] = {
		    {"session.login_failed", "anonymous", "", admin_email, "failed", "session", ""},
		    {"session.login_failed", "anonymous", "", "nobody@al-actions.test", "failed", "session", ""},
		};

		entries_from(&x, ip_a, wa, (int)(sizeof(wa) / sizeof(wa[0])));
		entries_from(&x, ip_ro, wro, (int)(sizeof(wro) / sizeof(wro[0])));
		entries_from(&x, ip_bad, wbad, (int)(sizeof(wbad) / sizeof(wbad[0])));
	}
	/* The auditor's own login is there; the export is logged as log.export (after this snapshot or in it). */
	assert_true(count_entries(&x, ip_aud, "session.login") == 1);
	/* No revealed value in the log, in any form. */
	if (h_contains(x.raw, x.len, SECRET_A) || h_contains(x.raw, x.len, "987650123") ||
	    h_contains(x.raw, x.len, SECRET_SSN) || h_contains(x.raw, x.len, "0780511"))
		fail_msg("the access-log export holds a revealed value");
	export_free(&x);
	/* Nor in the list answer or in the table's bytes. */
	sreq(&aud, "GET", "/access-log?limit=200", NULL, &r);
	want(&r, 200);
	assert_false(h_contains(r.body, r.len, SECRET_A) || h_contains(r.body, r.len, SECRET_SSN));
	h_resp_free(&r);
	{
		sqlite3 *db = org_db(slug);

		assert_int_equal(q_ll(db, "SELECT count(*) FROM access_log WHERE detail LIKE '%987650123%'"
		                          " OR detail LIKE '%0780511%' OR detail LIKE '%078-05%' OR target LIKE '%987650123%'"),
		                 0);
		idb_db_close(db);
	}
	/* The export itself is an entry (log.export by the auditor), seen in the next export. */
	export_get(&aud, &x);
	{
		const struct want_e wexp = {"log.export", "user", aid, admin_email, "ok", "access-log/export", ""};
		const cJSON *e, *last = NULL;

		cJSON_ArrayForEach(e, x.entries) if (strcmp(jstr(e, "ip"), ip_aud) == 0 &&
		                                     strcmp(jstr(e, "action"), "log.export") == 0) last = e;
		if (last == NULL)
			fail_msg("the first export was not logged as log.export");
		entry_is(last, &wexp, ip_aud, 0);
	}
	export_free(&x);
}

static void
five_failed_logins_write_a_lockout_entry(void **state)
{
	static const char *slug = "al-lock", *ip = "198.18.2.5", *email = "locked@al-lock.test";
	const struct want_e fail_e = {"session.login_failed", "anonymous", "", email, "failed", "session", ""};
	const struct want_e lock_e = {"session.lockout", "anonymous", "", email, "denied", "session", "email"};
	struct sess a;
	struct xport x;
	const cJSON *e;
	int i, k, fails = 0, locks = 0, lock_after = -1;

	(void)state;
	org_with_admin(slug, "198.18.2.6", &a);
	user_new(slug, email, "member", NULL, 0);
	for (i = 0; i < 5; i++)
		login_err(slug, ip, email, "not the password at all", 401, "invalid_credentials");
	export_get(&a, &x);
	chain_check(x.entries, NULL);
	k = 0;
	cJSON_ArrayForEach(e, x.entries)
	{
		if (strcmp(jstr(e, "ip"), ip) != 0)
			continue;
		if (strcmp(jstr(e, "action"), "session.lockout") == 0) {
			entry_is(e, &lock_e, ip, k);
			locks++;
			lock_after = fails;
		} else if (strcmp(jstr(e, "action"), "session.login_failed") == 0) {
			entry_is(e, &fail_e, ip, k);
			fails++;
		} else {
			char *s = cJSON_PrintUnformatted(e);

			fail_msg("unexpected entry from the locked-out address: %s", s ? s : "?");
		}
		k++;
	}
	assert_int_equal(fails, 5);
	assert_int_equal(locks, 1);
	/* The lockout comes with the fifth failure, not before the fourth. */
	assert_true(lock_after >= 4);
	export_free(&x);
	/* Locked: even the right password; whatever is logged of it, it is no login. */
	login_err(slug, ip, email, PW, 429, "too_many_requests");
	export_get(&a, &x);
	chain_check(x.entries, NULL);
	assert_int_equal(count_entries(&x, ip, "session.login"), 0);
	print_message("entries from the locked-out address after the refused attempt: %d (5 failures, 1 lockout "
	              "before it)\n",
	              count_entries(&x, ip, NULL));
	export_free(&x);
}

/* --- tests: the chain ---------------------------------------------- */

/* The seqs of GET .../access-log?since=<since>&limit=200: 1 if seq is among them; their count into n. */
static int
since_has(const struct sess *s, const char *since, long long seq, int *n)
{
	const cJSON *it;
	int found = 0;
	cJSON *j = sok(s, "GET", F("/access-log?since=%s&limit=200", since), NULL, 200);

	*n = cJSON_GetArraySize(jarr(j, "items"));
	cJSON_ArrayForEach(it, jarr(j, "items")) found |= jint(it, "seq") == seq;
	cJSON_Delete(j);
	return found;
}

/* An org with a few entries: their count and the "at" of entry 3. */
static void
since_org(const char *slug, const char *ip, struct sess *a, char *at, size_t atlen, int *total)
{
	struct xport x;
	int i;

	org_with_admin(slug, ip, a);
	for (i = 0; i < 4; i++)
		cJSON_Delete(sok(a, "GET", "/clients", NULL, 200));
	export_get(a, &x);
	*total = nentries(&x);
	copy(at, atlen, jstr(entry_at(&x, 3), "at"));
	export_free(&x);
}

static void
since_includes_the_whole_second(void **state)
{
	char sec[32], at[64];
	struct sess a;
	int n, total;

	(void)state;
	since_org("al-since", "198.18.2.12", &a, at, sizeof(at), &total);
	/* The whole second of entry 3 ("...:SSZ"): entry 3 and everything after it. */
	assert_true(strlen(at) >= 20);
	memcpy(sec, at, 19);
	sec[19] = 'Z';
	sec[20] = '\0';
	if (!since_has(&a, sec, 3, &n))
		fail_msg("since=%s leaves out entry 3 at %s (the text comparison puts \".fffZ\" before \"Z\")", sec, at);
	assert_true(n >= total - 2);
	/* A second later: not entry 3 (unless 3 is at the very end of its second, in which case skip). */
	sec[18] = (char)(sec[18] + 1);
	if (sec[18] <= '9') {
		assert_false(since_has(&a, sec, 3, &n));
	}
}

static void
chain_recomputes_links_and_matches_verify_and_the_list(void **state)
{
	static const char *slug = "al-chain", *ip = "198.18.2.10";
	unsigned char head[32], vhead[32];
	char cid[128], cursor[256];
	struct sess a;
	struct xport x;
	const cJSON *it;
	long long size, seq_prev, total;
	int i, pages = 0, seen = 0;
	cJSON *j;

	(void)state;
	org_with_admin(slug, ip, &a);
	client_new(&a, "{\"family_name\":\"Chain\",\"given_name\":\"Cy\",\"a_number\":\"A11112222\"}", cid, sizeof(cid));
	for (i = 0; i < 5; i++)
		cJSON_Delete(sok(&a, "GET", F("/clients/%s", cid), NULL, 200));
	cJSON_Delete(sok(&a, "POST", F("/clients/%s/reveal", cid), "{\"field\":\"a_number\"}", 200));
	login_err(slug, "198.18.2.11", "ghost@al-chain.test", PW, 401, "invalid_credentials");

	/* verify first, then the export: its entry <size> has verify's head. */
	j = verify_get(&a);
	assert_true(jbool(j, "ok"));
	size = jint(j, "size");
	unhex32(jstr(j, "head"), vhead);
	assert_null(cJSON_GetObjectItemCaseSensitive(j, "first_bad_seq"));
	cJSON_Delete(j);
	export_get(&a, &x);
	chain_check(x.entries, head);
	assert_true(size >= 10);
	assert_true(nentries(&x) >= size);
	{
		unsigned char h[32];

		unhex32(jstr(entry_at(&x, size), "hash"), h);
		assert_memory_equal(h, vhead, 32);
	}
	/* The database holds the same rows: count, max(seq) = count (no gaps), hashes as exported. */
	total = org_count(slug, "SELECT count(*) FROM access_log");
	assert_int_equal(org_count(slug, "SELECT max(seq) FROM access_log"), total);
	assert_int_equal(org_count(slug, "SELECT min(seq) FROM access_log"), 1);
	assert_true(total >= nentries(&x));
	assert_int_equal(org_count(slug, "SELECT length(hash) FROM access_log WHERE seq = 1"), 32);
	assert_int_equal(org_count(slug, "SELECT count(*) FROM access_log WHERE seq = 1 AND prev_hash = zeroblob(32)"), 1);

	/* The list: newest first, pages of 4 linked by next_cursor, the same entries as the export. */
	cursor[0] = '\0';
	seq_prev = -1;
	do {
		j = sok(&a, "GET", cursor[0] ? F("/access-log?limit=4&cursor=%s", cursor) : "/access-log?limit=4", NULL, 200);
		assert_true(cJSON_GetArraySize(jarr(j, "items")) <= 4);
		cJSON_ArrayForEach(it, jarr(j, "items"))
		{
			long long s = jint(it, "seq");

			if (seq_prev != -1 && s != seq_prev - 1)
				fail_msg("list: seq %lld after %lld (not newest first without gaps)", s, seq_prev);
			seq_prev = s;
			if (s <= nentries(&x)) {
				assert_string_equal(jstr(it, "hash"), jstr(entry_at(&x, s), "hash"));
				assert_string_equal(jstr(it, "prev_hash"), jstr(entry_at(&x, s), "prev_hash"));
				assert_string_equal(jstr(it, "action"), jstr(entry_at(&x, s), "action"));
			}
			seen++;
		}
		it = cJSON_GetObjectItemCaseSensitive(j, "next_cursor");
		if (cJSON_IsString(it)) {
			assert_true(cJSON_GetArraySize(jarr(j, "items")) == 4);
			copy(cursor, sizeof(cursor), it->valuestring);
		} else {
			assert_true(cJSON_IsNull(it));
			cursor[0] = '\0';
		}
		cJSON_Delete(j);
		assert_true(++pages < 100);
	} while (cursor[0] != '\0');
	assert_int_equal(seq_prev, 1);
	assert_true(seen >= nentries(&x));

	/* Filters. */
	j = sok(&a, "GET", "/access-log?action=record.read&limit=200", NULL, 200);
	assert_true(cJSON_GetArraySize(jarr(j, "items")) >= 5);
	cJSON_ArrayForEach(it, jarr(j, "items")) assert_string_equal(jstr(it, "action"), "record.read");
	cJSON_Delete(j);
	j = sok(&a, "GET", "/access-log?actor_kind=anonymous", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 1);
	it = cJSON_GetArrayItem(jarr(j, "items"), 0);
	assert_string_equal(jstr(it, "action"), "session.login_failed");
	assert_string_equal(jstr(jobj(it, "actor"), "email"), "ghost@al-chain.test");
	cJSON_Delete(j);
	j = sok(&a, "GET", "/access-log?actor_kind=user&action=record.reveal", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 1);
	assert_string_equal(jstr(cJSON_GetArrayItem(jarr(j, "items"), 0), "detail"), "field=a_number");
	cJSON_Delete(j);
	j = sok(&a, "GET", "/access-log?actor_kind=sysadmin", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 0);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "next_cursor")));
	cJSON_Delete(j);
	j = sok(&a, "GET", "/access-log?since=2999-01-01T00:00:00Z", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 0);
	cJSON_Delete(j);
	/* Bad filter values: 400. */
	serr(&a, "GET", "/access-log?actor_kind=robot", NULL, 400, "bad_request");
	serr(&a, "GET", "/access-log?actor_kind=", NULL, 400, "bad_request");
	serr(&a, "GET", "/access-log?limit=0", NULL, 400, "bad_request");
	serr(&a, "GET", "/access-log?limit=201", NULL, 400, "bad_request");
	serr(&a, "GET", "/access-log?limit=ten", NULL, 400, "bad_request");
	serr(&a, "GET", "/access-log?since=yesterday", NULL, 400, "bad_request");
	serr(&a, "GET", "/access-log?since=2026-13-01T00:00:00Z", NULL, 400, "bad_request");
	serr(&a, "GET", "/access-log?cursor=not-a-cursor", NULL, 400, "bad_request");
	serr(&a, "GET", "/access-log?action=notanaction", NULL, 400, "bad_request");
	serr(&a, "GET", "/access-log?colour=red", NULL, 400, "bad_request");
	export_free(&x);
}

static void
concurrent_requests_leave_no_gap_in_seq(void **state)
{
	static const char *slug = "al-race", *ip = "198.18.2.20";
	pid_t pids[RACERS];
	char cid[128];
	struct sess a;
	struct xport x;
	int i, status, ok_children = 0;
	long long before;
	cJSON *j;

	(void)state;
	org_with_admin(slug, ip, &a);
	client_new(&a, "{\"family_name\":\"Race\",\"given_name\":\"Ray\"}", cid, sizeof(cid));
	before = org_count(slug, "SELECT count(*) FROM access_log");
	for (i = 0; i < RACERS; i++) {
		if ((pids[i] = fork()) == 0) {
			/* The child: no cmocka here, only an exit status. */
			char xff[64], cookie[256], path[256];
			const char *hdr[3] = {xff, cookie, NULL};
			struct h_resp r;
			int k, good = 0;

			snprintf(xff, sizeof(xff), "X-Forwarded-For: 198.18.2.%d", 21 + i);
			snprintf(cookie, sizeof(cookie), "Cookie: immidb_session=%s", a.token);
			for (k = 0; k < RACE_READS; k++) {
				if (k % 4 == 3)
					snprintf(path, sizeof(path), "/api/v1/orgs/%s/clients", slug);
				else
					snprintf(path, sizeof(path), "/api/v1/orgs/%s/clients/%s", slug, cid);
				if (h_http(&env, "GET", path, hdr, NULL, 0, &r) == 0 && r.status == 200)
					good++;
				h_resp_free(&r);
			}
			_exit(good == RACE_READS ? 0 : 1);
		}
		assert_true(pids[i] > 0);
	}
	for (i = 0; i < RACERS; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			ok_children++;
	}
	assert_int_equal(ok_children, RACERS);
	j = verify_get(&a);
	assert_true(jbool(j, "ok"));
	assert_true(jint(j, "size") >= before + RACERS * RACE_READS);
	cJSON_Delete(j);
	export_get(&a, &x);
	chain_check(x.entries, NULL);
	for (i = 0; i < RACERS; i++) {
		const char *cip = F("198.18.2.%d", 21 + i);

		assert_int_equal(count_entries(&x, cip, "record.read"), RACE_READS - RACE_READS / 4);
		assert_int_equal(count_entries(&x, cip, "record.list"), RACE_READS / 4);
		assert_int_equal(count_entries(&x, cip, NULL), RACE_READS);
	}
	assert_int_equal(org_count(slug, "SELECT max(seq) - count(*) FROM access_log"), 0);
	export_free(&x);
}

/* Milliseconds since an arbitrary point. */
static long long
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A GET of the client in a child while this process holds the org's write
 * queue (the flock the workers take), as a process outside the pool would:
 * the child's exit status says whether the answer had the status wanted and
 * came no sooner than min_ms.
 */
static pid_t
read_in_child(const struct sess *a, const char *slug, const char *cid, int want_status, long long min_ms)
{
	pid_t pid = fork();

	if (pid == 0) {
		char cookie[256], path[256];
		const char *hdr[2] = {cookie, NULL};
		struct h_resp r;
		long long t0 = ms_now();
		int ok;

		snprintf(cookie, sizeof(cookie), "Cookie: immidb_session=%s", a->token);
		snprintf(path, sizeof(path), "/api/v1/orgs/%s/clients/%s", slug, cid);
		ok = h_http(&env, "GET", path, hdr, NULL, 0, &r) == 0 && r.status == want_status &&
		     ms_now() - t0 >= min_ms;
		h_resp_free(&r);
		_exit(ok ? 0 : 1);
	}
	assert_true(pid > 0);
	return pid;
}

static void
a_read_waits_out_a_queue_held_outside_the_pool_and_gives_up_after_10_s(void **state)
{
	static const char *slug = "al-held";
	char path[IDB_PATH_MAX], cid[128];
	struct idb_org_keys k;
	struct sess a;
	long long before;
	int fd, status;
	pid_t pid;
	cJSON *j;

	(void)state;
	org_with_admin(slug, "198.18.2.90", &a);
	client_new(&a, "{\"family_name\":\"Held\",\"given_name\":\"Hana\"}", cid, sizeof(cid));
	org_keys(slug, &k, path);
	idb_org_keys_wipe(&k);
	assert_true((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);

	/* Held for 0.5 s: the read answers once it is let go (nobody wakes it: it looks again). */
	before = org_count(slug, "SELECT count(*) FROM access_log");
	assert_int_equal(flock(fd, LOCK_EX), 0);
	pid = read_in_child(&a, slug, cid, 200, 450);
	usleep(500 * 1000);
	assert_int_equal(flock(fd, LOCK_UN), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(org_count(slug, "SELECT count(*) FROM access_log WHERE action = 'record.read'"), 1);
	assert_int_equal(org_count(slug, "SELECT count(*) FROM access_log"), before + 1);

	/* Held for 11 s: after 10 s the read gives up with 503, and its entry is withdrawn. */
	before = org_count(slug, "SELECT count(*) FROM access_log");
	assert_int_equal(flock(fd, LOCK_EX), 0);
	pid = read_in_child(&a, slug, cid, 503, 9900);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(flock(fd, LOCK_UN), 0);
	close(fd);
	/* The next read goes in, alone: the withdrawn entry is not carried with it. */
	cJSON_Delete(sok(&a, "GET", F("/clients/%s", cid), NULL, 200));
	assert_int_equal(org_count(slug, "SELECT count(*) FROM access_log"), before + 1);
	j = verify_get(&a);
	assert_true(jbool(j, "ok"));
	cJSON_Delete(j);
}

/* --- tests: append-only -------------------------------------------- */

static void
update_and_delete_on_the_log_are_refused_by_the_database(void **state)
{
	static const char *slug = "al-append";
	static const char *const bad[] = {
	    "UPDATE access_log SET detail = 'x' WHERE seq = 1",
	    "UPDATE access_log SET outcome = 'ok'",
	    "UPDATE access_log SET hash = prev_hash WHERE seq = (SELECT max(seq) FROM access_log)",
	    "DELETE FROM access_log WHERE seq = 1",
	    "DELETE FROM access_log WHERE seq = (SELECT max(seq) FROM access_log)",
	    "DELETE FROM access_log",
	};
	char msg[512], before[65], after[65];
	struct sess a;
	long long n, vsize;
	size_t i;
	cJSON *j;

	(void)state;
	org_with_admin(slug, "198.18.2.30", &a);
	cJSON_Delete(sok(&a, "GET", "/clients", NULL, 200));
	j = verify_get(&a);
	assert_true(jbool(j, "ok"));
	copy(before, sizeof(before), jstr(j, "head"));
	vsize = jint(j, "size");
	cJSON_Delete(j);
	n = org_count(slug, "SELECT count(*) FROM access_log");
	assert_true(n >= 3);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = org_exec(slug, bad[i], msg, sizeof(msg));

		if (rc == SQLITE_OK)
			fail_msg("%s succeeded", bad[i]);
		if (strstr(msg, "append-only") == NULL)
			fail_msg("%s: refused, but not as append-only: %s", bad[i], msg);
	}
	assert_int_equal(org_count(slug, "SELECT count(*) FROM access_log"), n);
	assert_int_equal(org_count(slug, "SELECT count(*) FROM access_log WHERE detail = 'x'"), 0);
	/* The same in one transaction with other work: all of it is undone. */
	assert_int_not_equal(org_exec(slug, "BEGIN; DELETE FROM sessions; DELETE FROM access_log WHERE seq = 1; COMMIT;",
	                              msg, sizeof(msg)),
	                     SQLITE_OK);
	assert_non_null(strstr(msg, "append-only"));
	/* The chain is untouched. */
	j = verify_get(&a);
	assert_true(jbool(j, "ok"));
	cJSON_Delete(j);
	/* verify was itself logged: the head moved on, but entry <size> still has the old head. */
	{
		struct xport x;

		export_get(&a, &x);
		copy(after, sizeof(after), jstr(entry_at(&x, vsize), "hash"));
		assert_string_equal(after, before);
		export_free(&x);
	}
}

/* Runs sql inside a transaction that is rolled back whatever happens: its result code. */
static int
org_try(const char *slug, const char *sql, char *msg, size_t len)
{
	sqlite3 *db = org_db(slug);
	char *em = NULL;
	int rc;

	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, &em);
	snprintf(msg, len, "%s", em ? em : "");
	sqlite3_free(em);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	idb_db_close(db);
	return rc;
}

static void
insert_or_replace_cannot_overwrite_an_entry(void **state)
{
	static const char *slug = "al-replace";
	char msg[512];
	struct sess a;
	cJSON *j;
	int rc_replace, rc_gap, rc_replace_kw;

	(void)state;
	org_with_admin(slug, "198.18.2.31", &a);
	cJSON_Delete(sok(&a, "GET", "/clients", NULL, 200));
	/*
	 * REPLACE deletes the old row without firing DELETE triggers (recursive_triggers
	 * is off), so UPDATE/DELETE triggers alone do not make the table append-only:
	 * an insert at an existing seq, or out of sequence, must be refused too.
	 * Each attempt runs in a transaction that is rolled back, so the log stays whole.
	 */
	rc_replace = org_try(slug,
	                     "INSERT OR REPLACE INTO access_log (" LOG_COLS ") SELECT seq, at, actor_kind, actor_id,"
	                     " actor_email, via, ip, action, target, reason, outcome, 'forged', prev_hash, hash"
	                     " FROM access_log WHERE seq = 1",
	                     msg, sizeof(msg));
	rc_replace_kw = org_try(slug,
	                        "REPLACE INTO access_log (" LOG_COLS ") SELECT seq, at, actor_kind, actor_id, actor_email,"
	                        " via, ip, action, target, reason, outcome, 'forged', prev_hash, hash FROM access_log"
	                        " WHERE seq = 1",
	                        msg, sizeof(msg));
	rc_gap = org_try(slug,
	                 "INSERT INTO access_log (" LOG_COLS ") SELECT max(seq) + 5, at, actor_kind, actor_id, actor_email,"
	                 " via, ip, action, target, reason, outcome, detail, prev_hash, hash FROM access_log",
	                 msg, sizeof(msg));
	j = verify_get(&a);
	assert_true(jbool(j, "ok"));
	cJSON_Delete(j);
	if (rc_replace == SQLITE_OK || rc_replace_kw == SQLITE_OK || rc_gap == SQLITE_OK)
		fail_msg("the database accepted: %s%s%s (the append-only triggers cover UPDATE and DELETE only; a BEFORE "
		         "INSERT trigger refusing NEW.seq <> max(seq)+1 would close this)",
		         rc_replace == SQLITE_OK ? "INSERT OR REPLACE over entry 1; " : "",
		         rc_replace_kw == SQLITE_OK ? "REPLACE over entry 1; " : "",
		         rc_gap == SQLITE_OK ? "an insert leaving a gap in seq" : "");
}

/* --- tests: tampering ---------------------------------------------- */

static void
tampering_is_found_by_verify_the_cli_and_the_script(void **state)
{
	static const char *slug = "al-tamper", *ip = "198.18.2.40";
	char out[8192], err[4096], orig[256], pk64[64], verifier[256], file[TP_LEN];
	unsigned char pk[32];
	struct sess a;
	struct xport x;
	long long total, K = 5, M = 8;
	int i, rc;
	cJSON *j;

	(void)state;
	log_key(pk, pk64, sizeof(pk64), verifier, sizeof(verifier));
	org_with_admin(slug, ip, &a);
	for (i = 0; i < 8; i++)
		cJSON_Delete(sok(&a, "GET", "/clients", NULL, 200));
	/* Untouched: everything says ok. */
	rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "verify", "--org", slug, NULL);
	if (rc != 0)
		fail_msg("log verify --org %s on an intact log: %d %s %s", slug, rc, out, err);
	rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "verify", "--all", NULL);
	if (rc != 0)
		fail_msg("log verify --all with intact logs: %d %s %s", rc, out, err);
	assert_non_null(strstr(out, slug));

	/* One detail changed behind the triggers' back. */
	{
		sqlite3 *db = org_db(slug);
		sqlite3_stmt *st = NULL;

		assert_int_equal(sqlite3_prepare_v2(db, "SELECT detail FROM access_log WHERE seq = 5", -1, &st, NULL),
		                 SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		copy(orig, sizeof(orig), (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		idb_db_close(db);
	}
	org_exec_ok(slug, "DROP TRIGGER access_log_no_update; UPDATE access_log SET detail = 'x' WHERE seq = 5");
	total = org_count(slug, "SELECT count(*) FROM access_log");
	j = verify_get(&a);
	if (jbool(j, "ok"))
		fail_msg("verify says ok after entry %lld was changed", K);
	assert_int_equal(jint(j, "first_bad_seq"), K);
	assert_true(jint(j, "size") >= K);
	/* size is the log's length, not where the check stopped. */
	assert_int_equal(jint(j, "size"), total);
	assert_null(cJSON_GetObjectItemCaseSensitive(j, "head"));
	cJSON_Delete(j);
	rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "verify", "--org", slug, NULL);
	if (rc != 1)
		fail_msg("log verify --org on a tampered log: exit %d (expected 1): %s %s", rc, out, err);
	strncat(out, err, sizeof(out) - strlen(out) - 1);
	if (!has_number(out, K))
		fail_msg("log verify does not name seq %lld: %s", K, out);
	rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "verify", "--all", NULL);
	if (rc == 0)
		fail_msg("log verify --all exits 0 with a tampered org: %s", out);
	strncat(out, err, sizeof(out) - strlen(out) - 1);
	assert_non_null(strstr(out, slug));
	/* The export of the tampered log fails the script at K. */
	export_get(&a, &x);
	tmp_path(file, "tampered.ndjson");
	write_bytes(file, x.raw, x.len);
	rc = script(file, pk64, NULL, NULL, out, sizeof(out));
	if (rc != 1 || !names_first_bad(out, K))
		fail_msg("script on the tampered export: exit %d: %s", rc, out);
	export_free(&x);

	/* Put the value back: the chain is whole again (verify checks contents, not a flag). */
	{
		sqlite3 *db = org_db(slug);
		sqlite3_stmt *st = NULL;

		assert_int_equal(sqlite3_prepare_v2(db, "UPDATE access_log SET detail = ?1 WHERE seq = 5", -1, &st, NULL),
		                 SQLITE_OK);
		sqlite3_bind_text(st, 1, orig, -1, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_finalize(st);
		idb_db_close(db);
	}
	j = verify_get(&a);
	assert_true(jbool(j, "ok"));
	cJSON_Delete(j);
	assert_int_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "verify", "--org", slug, NULL),
	                 0);

	/* A changed prev_hash at M, then a changed time at K (each found, each put back). */
	org_exec_ok(slug, "UPDATE access_log SET prev_hash = zeroblob(32) WHERE seq = 8");
	j = verify_get(&a);
	assert_false(jbool(j, "ok"));
	assert_int_equal(jint(j, "first_bad_seq"), M);
	cJSON_Delete(j);
	org_exec_ok(slug, "UPDATE access_log SET prev_hash = (SELECT hash FROM access_log WHERE seq = 7) WHERE seq = 8");
	org_exec_ok(slug, "UPDATE access_log SET at = '2000-01-01T00:00:00.000Z' WHERE seq = 5");
	j = verify_get(&a);
	assert_false(jbool(j, "ok"));
	assert_int_equal(jint(j, "first_bad_seq"), K);
	cJSON_Delete(j);

	/* A deleted row: the gap is found where it starts. */
	org_exec_ok(slug, "DROP TRIGGER access_log_no_delete; DELETE FROM access_log WHERE seq = 3");
	j = verify_get(&a);
	assert_false(jbool(j, "ok"));
	assert_int_equal(jint(j, "first_bad_seq"), 3);
	cJSON_Delete(j);
	rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "verify", "--org", slug, NULL);
	strncat(out, err, sizeof(out) - strlen(out) - 1);
	if (rc != 1 || !has_number(out, 3))
		fail_msg("log verify after a deleted row: exit %d: %s", rc, out);
}

/* --- tests: checkpoints with tools that are not ours --------------- */

static void
checkpoint_signature_verifies_with_openssl_and_key_hash_with_sha256sum(void **state)
{
	static const char *slug = "al-ckpt", *ip = "198.18.2.50";
	unsigned char pk[32], head[32], kin[33];
	char pk64[64], verifier[256], hex8[9], keyhex[9], headhex[65], vk_expect[256];
	char kin64[sodium_base64_ENCODED_LEN(33, sodium_base64_VARIANT_ORIGINAL)];
	char out[4096], err[4096];
	struct note n, n2;
	struct sess a, b;
	struct xport x;
	cJSON *ck;

	(void)state;
	log_key(pk, pk64, sizeof(pk64), verifier, sizeof(verifier));
	org_with_admin(slug, ip, &a);
	cJSON_Delete(sok(&a, "GET", "/clients", NULL, 200));
	cJSON_Delete(sok(&a, "GET", "/settings", NULL, 200));

	ck = sok(&a, "GET", "/access-log/checkpoint", NULL, 200);
	assert_string_equal(jstr(ck, "origin"), ORIGIN "/al-ckpt");
	assert_true(jint(ck, "size") >= 3);
	unhex32(jstr(ck, "head"), head);
	note_parse(jstr(ck, "note"), &n);
	assert_string_equal(n.origin, ORIGIN "/al-ckpt");
	assert_int_equal(n.size, jint(ck, "size"));
	assert_memory_equal(n.head, head, 32);
	assert_string_equal(n.name, ORIGIN);

	/* openssl, from the PEM built out of the log-key. */
	if (!openssl_verify(pk, n.msg, strlen(n.msg), n.sig, "ck"))
		fail_msg("openssl does not verify the checkpoint signature over:\n%s", n.msg);
	/* One byte changed in the message, in the signature, or another key: refused. */
	{
		char bad[512];
		unsigned char sig[64], other_pk[32], other_sk[64];

		copy(bad, sizeof(bad), n.msg);
		bad[strlen(ORIGIN) + 1 + 0] ^= 0x01; /* the org slug's first letter */
		assert_false(openssl_verify(pk, bad, strlen(bad), n.sig, "ck-msg"));
		copy(bad, sizeof(bad), n.msg);
		bad[strcspn(bad, "\n") + 1] ^= 0x01; /* the size's first digit */
		assert_false(openssl_verify(pk, bad, strlen(bad), n.sig, "ck-size"));
		assert_false(openssl_verify(pk, n.msg, strlen(n.msg) - 1, n.sig, "ck-nl")); /* without the last newline */
		memcpy(sig, n.sig, 64);
		sig[10] ^= 0x80;
		assert_false(openssl_verify(pk, n.msg, strlen(n.msg), sig, "ck-sig"));
		crypto_sign_keypair(other_pk, other_sk);
		assert_false(openssl_verify(other_pk, n.msg, strlen(n.msg), n.sig, "ck-key"));
		/* libsodium agrees with openssl. */
		assert_int_equal(crypto_sign_verify_detached(n.sig, (const unsigned char *)n.msg, strlen(n.msg), pk), 0);
	}

	/* The key hash: sha256sum over origin "\n" 0x01 pk = the note's first 4 bytes = the verifier key's hex. */
	sha256sum_keyhash(ORIGIN, pk, hex8);
	sodium_bin2hex(keyhex, sizeof(keyhex), n.keyhash, 4);
	assert_string_equal(hex8, keyhex);
	kin[0] = 0x01;
	memcpy(kin + 1, pk, 32);
	sodium_bin2base64(kin64, sizeof(kin64), kin, sizeof(kin), sodium_base64_VARIANT_ORIGINAL);
	snprintf(vk_expect, sizeof(vk_expect), "%s+%s+%s", ORIGIN, hex8, kin64);
	assert_string_equal(verifier, vk_expect);
	/* And not the hash of something else (another name). */
	sha256sum_keyhash("other.example", pk, hex8);
	assert_string_not_equal(hex8, keyhex);

	/* The head is the hash of entry <size> of a later export, whose own checkpoint verifies too. */
	export_get(&a, &x);
	assert_true(nentries(&x) >= n.size);
	{
		unsigned char h[32];

		unhex32(jstr(entry_at(&x, n.size), "hash"), h);
		assert_memory_equal(h, n.head, 32);
	}
	note_parse(jstr(x.ck, "note"), &n2);
	assert_int_equal(n2.size, jint(x.ck, "size"));
	assert_int_equal(n2.size, nentries(&x));
	assert_string_equal(jstr(x.ck, "origin"), ORIGIN "/al-ckpt");
	sodium_bin2hex(headhex, sizeof(headhex), n2.head, 32);
	assert_string_equal(jstr(x.ck, "head"), headhex);
	assert_string_equal(jstr(entry_at(&x, n2.size), "hash"), headhex);
	assert_true(openssl_verify(pk, n2.msg, strlen(n2.msg), n2.sig, "ck-export"));
	export_free(&x);

	/* immidb-admin log checkpoint prints a note that verifies the same way. */
	if (h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "checkpoint", "--org", slug, NULL) != 0)
		fail_msg("log checkpoint: %s %s", out, err);
	note_parse(out, &n2);
	assert_string_equal(n2.origin, ORIGIN "/al-ckpt");
	assert_true(n2.size >= n.size);
	assert_true(openssl_verify(pk, n2.msg, strlen(n2.msg), n2.sig, "ck-cli"));
	assert_memory_equal(n2.keyhash, n.keyhash, 4);

	/* Another org's checkpoint names that org: a note cannot be passed off as this org's. */
	org_with_admin("al-ckpt2", ip, &b);
	cJSON_Delete(ck);
	ck = sok(&b, "GET", "/access-log/checkpoint", NULL, 200);
	note_parse(jstr(ck, "note"), &n2);
	assert_string_equal(n2.origin, ORIGIN "/al-ckpt2");
	assert_true(openssl_verify(pk, n2.msg, strlen(n2.msg), n2.sig, "ck-other"));
	cJSON_Delete(ck);
	/* Query parameters are refused on the fixed routes. */
	serr(&a, "GET", "/access-log/checkpoint?size=1", NULL, 400, "bad_request");
	serr(&a, "GET", "/access-log/verify?from=1", NULL, 400, "bad_request");
}

/* --- tests: the verification script -------------------------------- */

static void
the_script_accepts_a_real_export_and_names_the_first_bad_seq(void **state)
{
	static const char *slug = "al-script", *ip = "198.18.2.60";
	char out[8192], err[4096], pk64[64], other64[64], headhex[65], *lines[512] = {NULL}, *copy_raw;
	char file[TP_LEN], f2[TP_LEN], bad[TP_LEN];
	unsigned char pk[32], opk[32], osk[64];
	struct sess a;
	struct xport x;
	int order[512], n, i, nl, rc, K = 4;
	char saved_note[1024];
	cJSON *ck;

	(void)state;
	log_key(pk, pk64, sizeof(pk64), NULL, 0);
	org_with_admin(slug, ip, &a);
	for (i = 0; i < 6; i++)
		cJSON_Delete(sok(&a, "GET", "/clients", NULL, 200));
	login_err(slug, "198.18.2.61", "ünïcödé@al-script.test", PW, 401, "invalid_credentials");
	/* A checkpoint kept from before. */
	ck = sok(&a, "GET", "/access-log/checkpoint", NULL, 200);
	copy(saved_note, sizeof(saved_note), jstr(ck, "note"));
	cJSON_Delete(ck);
	cJSON_Delete(sok(&a, "GET", "/clients", NULL, 200));

	export_get(&a, &x);
	n = nentries(&x);
	assert_true(n >= 10);
	tmp_path(file, "real.ndjson");
	write_bytes(file, x.raw, x.len);
	rc = script(file, pk64, NULL, NULL, out, sizeof(out));
	copy(headhex, sizeof(headhex), jstr(entry_at(&x, n), "hash"));
	if (rc != 0 || strstr(out, F("ok: %d entries, head %s", n, headhex)) == NULL)
		fail_msg("script on a real export: exit %d: %s", rc, out);
	/* With the checkpoint saved before: consistent. */
	tmp_path(f2, "saved.note");
	write_bytes(f2, saved_note, strlen(saved_note));
	rc = script(file, pk64, "--checkpoint", f2, out, sizeof(out));
	if (rc != 0)
		fail_msg("script with a saved earlier checkpoint: exit %d: %s", rc, out);
	/* The wrong public key: refused. */
	crypto_sign_keypair(opk, osk);
	sodium_bin2base64(other64, sizeof(other64), opk, 32, sodium_base64_VARIANT_ORIGINAL);
	rc = script(file, other64, NULL, NULL, out, sizeof(out));
	if (rc != 1)
		fail_msg("script with another key: exit %d: %s", rc, out);

	copy_raw = malloc(x.len + 1);
	assert_non_null(copy_raw);
	memcpy(copy_raw, x.raw, x.len + 1);
	nl = split_lines(copy_raw, lines, 512);
	assert_int_equal(nl, n + 1);

	/* One byte changed in entry K (its ip's last digit). */
	{
		char *line = lines[K - 1], *p = strstr(line, "\"ip\":\"198.18.2.60\"");

		assert_non_null(p);
		p[strlen("\"ip\":\"198.18.2.6")] = '1';
		for (i = 0; i < nl; i++)
			order[i] = i;
		write_lines(tmp_path(bad, "bad.ndjson"), lines, order, nl);
		p[strlen("\"ip\":\"198.18.2.6")] = '0';
		rc = script(bad, pk64, NULL, NULL, out, sizeof(out));
		if (rc != 1 || !names_first_bad(out, K))
			fail_msg("one changed byte in entry %d: exit %d: %s", K, rc, out);
	}
	/* One byte changed in entry K's hash. */
	{
		char *line = lines[K - 1], *p = strstr(line, "\"hash\":\"");
		char was;

		assert_non_null(p);
		p += strlen("\"hash\":\"");
		was = *p;
		*p = was == '0' ? '1' : '0';
		for (i = 0; i < nl; i++)
			order[i] = i;
		write_lines(tmp_path(bad, "bad.ndjson"), lines, order, nl);
		*p = was;
		rc = script(bad, pk64, NULL, NULL, out, sizeof(out));
		if (rc != 1 || !names_first_bad(out, K))
			fail_msg("entry %d's hash changed: exit %d: %s", K, rc, out);
	}
	/* Entry K removed. */
	{
		int m = 0;

		for (i = 0; i < nl; i++)
			if (i != K - 1)
				order[m++] = i;
		write_lines(tmp_path(bad, "bad.ndjson"), lines, order, m);
		rc = script(bad, pk64, NULL, NULL, out, sizeof(out));
		if (rc != 1 || !names_first_bad(out, K))
			fail_msg("entry %d removed: exit %d: %s", K, rc, out);
	}
	/* Entries K and K+1 swapped. */
	{

		for (i = 0; i < nl; i++)
			order[i] = i;
		order[K - 1] = K;
		order[K] = K - 1;
		write_lines(tmp_path(bad, "bad.ndjson"), lines, order, nl);
		rc = script(bad, pk64, NULL, NULL, out, sizeof(out));
		if (rc != 1 || !names_first_bad(out, K))
			fail_msg("entries %d and %d swapped: exit %d: %s", K, K + 1, rc, out);
	}
	/* The last entry removed (the chain alone cannot tell; the checkpoint can). */
	{
		int m = 0;

		for (i = 0; i < nl; i++)
			if (i != n - 1)
				order[m++] = i;
		write_lines(tmp_path(bad, "bad.ndjson"), lines, order, m);
		rc = script(bad, pk64, NULL, NULL, out, sizeof(out));
		if (rc != 1)
			fail_msg("the last entry removed, checkpoint kept: exit %d: %s", rc, out);
	}
	/* The checkpoint line's signature changed by one character. */
	{
		char *p = strstr(lines[nl - 1], "\\u2014 "), *q;
		char was;

		if (p == NULL)
			p = strstr(lines[nl - 1], "\xe2\x80\x94 ");
		assert_non_null(p);
		q = strchr(p + 7, ' ');
		assert_non_null(q);
		q += 10;
		was = *q;
		*q = was == 'A' ? 'B' : 'A';
		for (i = 0; i < nl; i++)
			order[i] = i;
		write_lines(tmp_path(bad, "bad.ndjson"), lines, order, nl);
		*q = was;
		rc = script(bad, pk64, NULL, NULL, out, sizeof(out));
		if (rc != 1)
			fail_msg("a changed checkpoint signature: exit %d: %s", rc, out);
	}
	/* A saved checkpoint of another org does not match this export. */
	{
		struct sess b;
		char other[TP_LEN];

		org_with_admin("al-script2", ip, &b);
		cJSON_Delete(sok(&b, "GET", "/clients", NULL, 200));
		ck = sok(&b, "GET", "/access-log/checkpoint", NULL, 200);
		write_bytes(tmp_path(other, "other.note"), jstr(ck, "note"), strlen(jstr(ck, "note")));
		cJSON_Delete(ck);
		rc = script(file, pk64, "--checkpoint", other, out, sizeof(out));
		if (rc != 1)
			fail_msg("another org's checkpoint accepted for this export: exit %d: %s", rc, out);
	}
	free(copy_raw);
	export_free(&x);

	/* immidb-admin log export --out: the same format, verified by the script; it refuses to overwrite. */
	{
		char cli[TP_LEN];
		struct xport y;
		size_t len;

		tmp_path(cli, "cli.ndjson");
		rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "export", "--org", slug, "--out", cli,
		             NULL);
		if (rc != 0)
			fail_msg("log export --out: %d %s", rc, err);
		memset(&y, 0, sizeof(y));
		y.raw = h_slurp(cli, &len);
		assert_non_null(y.raw);
		y.len = len;
		export_parse(&y);
		chain_check(y.entries, NULL);
		assert_true(nentries(&y) > n);
		/* The CLI export is itself an entry, by the server. */
		assert_string_equal(jstr(entry_at(&y, nentries(&y)), "via"), "server");
		assert_string_equal(jstr(entry_at(&y, nentries(&y)), "action"), "log.export");
		export_free(&y);
		rc = script(cli, pk64, NULL, NULL, out, sizeof(out));
		if (rc != 0)
			fail_msg("script on the CLI export: exit %d: %s", rc, out);
		rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "export", "--org", slug, "--out", cli,
		             NULL);
		assert_int_not_equal(rc, 0);
		rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "export", "--org", "no-such-org", NULL);
		assert_int_not_equal(rc, 0);
		rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "verify", "--org", "no-such-org", NULL);
		assert_int_not_equal(rc, 0);
		rc = h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "checkpoint", "--org", "no-such-org",
		             NULL);
		assert_int_not_equal(rc, 0);
		/* Usage errors: neither --org nor --all, both, --all for export. */
		assert_int_not_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "verify", NULL), 0);
		assert_int_not_equal(
		    h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "verify", "--org", slug, "--all", NULL), 0);
		assert_int_not_equal(h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "log", "export", "--all", NULL),
		                     0);
	}
}

/* --- tests: fail closed -------------------------------------------- */

static void
an_unwritable_log_means_503_and_nothing_committed(void **state)
{
	static const char *slug = "al-closed", *ip = "198.18.2.70";
	char cid[128], ra[32];
	struct sess a, other;
	struct h_resp r;
	long long clients, entries, sessions, changes;
	cJSON *j;

	(void)state;
	org_with_admin(slug, ip, &a);
	user_new(slug, "second@al-closed.test", "member", NULL, 0);
	client_new(&a, "{\"family_name\":\"Closed\",\"given_name\":\"Cat\",\"a_number\":\"A55554444\"}", cid, sizeof(cid));
	clients = org_count(slug, "SELECT count(*) FROM clients");
	changes = org_count(slug, "SELECT count(*) FROM change_log");
	entries = org_count(slug, "SELECT count(*) FROM access_log");
	sessions = org_count(slug, "SELECT count(*) FROM sessions");

	org_exec_ok(slug, "CREATE TRIGGER block BEFORE INSERT ON access_log BEGIN SELECT RAISE(ABORT, 'blocked'); END;");
	/* A create: 503, with Retry-After, and no client, no change-log row. */
	sreq(&a, "POST", "/clients", "{\"family_name\":\"Lost\",\"given_name\":\"Lu\"}", &r);
	assert_error(&r, 503, "unavailable");
	assert_int_equal(h_header(&r, "Retry-After", ra, sizeof(ra)), 0);
	assert_true(strtol(ra, NULL, 10) > 0);
	assert_false(h_contains(r.body, r.len, "Lost"));
	h_resp_free(&r);
	/* A read and a reveal: 503, and the data is not in the answer. */
	sreq(&a, "GET", F("/clients/%s", cid), NULL, &r);
	assert_error(&r, 503, "unavailable");
	assert_false(h_contains(r.body, r.len, "Closed"));
	h_resp_free(&r);
	sreq(&a, "POST", F("/clients/%s/reveal", cid), "{\"field\":\"a_number\"}", &r);
	assert_error(&r, 503, "unavailable");
	assert_false(h_contains(r.body, r.len, "55554444"));
	h_resp_free(&r);
	sreq(&a, "GET", "/clients", NULL, &r);
	assert_error(&r, 503, "unavailable");
	h_resp_free(&r);
	/* An update and a delete: refused, nothing changed. */
	serr(&a, "PATCH", F("/clients/%s", cid), "{\"version\":1,\"given_name\":\"Changed\"}", 503, "unavailable");
	serr(&a, "DELETE", F("/clients/%s", cid), NULL, 503, "unavailable");
	/* A login: no session is made when its entry cannot be written; a failed one is not silently dropped. */
	login_err(slug, ip, "second@al-closed.test", PW, 503, "unavailable");
	login_err(slug, ip, "second@al-closed.test", "wrong wrong wrong", 503, "unavailable");
	/* Log out: the session stays (its end would go unlogged). */
	serr(&a, "DELETE", "/session", NULL, 503, "unavailable");

	assert_int_equal(org_count(slug, "SELECT count(*) FROM clients"), clients);
	assert_int_equal(org_count(slug, "SELECT count(*) FROM change_log"), changes);
	assert_int_equal(org_count(slug, "SELECT count(*) FROM access_log"), entries);
	assert_int_equal(org_count(slug, "SELECT count(*) FROM sessions"), sessions);
	assert_int_equal(org_count(slug, "SELECT count(*) FROM clients WHERE deleted_at IS NOT NULL"), 0);
	assert_int_equal(org_count(slug, "SELECT version FROM clients"), 1);
	assert_int_equal(org_count(slug, "SELECT count(*) FROM login_attempts WHERE ok = 0"), 0);

	/* Writable again: everything works, and the chain has no gap. */
	org_exec_ok(slug, "DROP TRIGGER block");
	j = sok(&a, "POST", "/clients", "{\"family_name\":\"Back\",\"given_name\":\"Bea\"}", 201);
	cJSON_Delete(j);
	assert_int_equal(org_count(slug, "SELECT count(*) FROM clients"), clients + 1);
	cJSON_Delete(sok(&a, "GET", F("/clients/%s", cid), NULL, 200));
	login(slug, ip, "second@al-closed.test", &other);
	j = verify_get(&a);
	assert_true(jbool(j, "ok"));
	assert_int_equal(jint(j, "size"), entries + 3);
	cJSON_Delete(j);
	assert_int_equal(org_count(slug, "SELECT max(seq) - count(*) FROM access_log"), 0);
}

static void
a_log_that_refuses_some_entries_refuses_just_those_requests(void **state)
{
	static const char *slug = "al-closed2", *ip = "198.18.2.71";
	struct h_resp r;
	struct sess a;
	long long clients;

	(void)state;
	org_with_admin(slug, ip, &a);
	clients = org_count(slug, "SELECT count(*) FROM clients");
	/* RAISE(FAIL) this time, and only for record.* entries. */
	org_exec_ok(slug, "CREATE TRIGGER block2 BEFORE INSERT ON access_log WHEN NEW.action LIKE 'record.%'"
	                  " BEGIN SELECT RAISE(FAIL, 'blocked'); END;");
	serr(&a, "POST", "/clients", "{\"family_name\":\"Lost\",\"given_name\":\"Lu\"}", 503, "unavailable");
	serr(&a, "GET", "/clients", NULL, 503, "unavailable");
	assert_int_equal(org_count(slug, "SELECT count(*) FROM clients"), clients);
	/* A route whose entry still goes in is served. */
	sreq(&a, "GET", "/changes/export", NULL, &r);
	want(&r, 200);
	h_resp_free(&r);
	org_exec_ok(slug, "DROP TRIGGER block2");
	cJSON_Delete(sok(&a, "POST", "/clients", "{\"family_name\":\"Back\",\"given_name\":\"Bea\"}", 201));
	assert_int_equal(org_count(slug, "SELECT count(*) FROM clients"), clients + 1);
	assert_int_equal(org_count(slug, "SELECT max(seq) - count(*) FROM access_log"), 0);
}

static void
refusals_by_address_are_anonymous_entries_and_cli_changes_are_server_entries(void **state)
{
	static const char *slug = "al-ipallow", *in = "198.18.2.90", *out_ip = "198.18.2.91";
	char out[4096], err[4096];
	struct h_resp r;
	struct sess a;
	struct xport x;
	const cJSON *e;
	int server = 0;

	(void)state;
	org_with_admin(slug, in, &a);
	if (h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "org", "settings", "--org", slug, "--ip-allowlist",
	            "198.18.2.90/32", NULL) != 0)
		fail_msg("org settings --ip-allowlist: %s", err);
	/* From outside: with the admin's cookie, without one, and a login. */
	raw("GET", F("/api/v1/orgs/%s/clients", slug), out_ip, a.token, NULL, NULL, &r);
	werr(&r, 403, "ip_not_allowed");
	raw("GET", F("/api/v1/orgs/%s/access-log", slug), out_ip, NULL, NULL, NULL, &r);
	werr(&r, 403, "ip_not_allowed");
	login_err(slug, out_ip, F("admin@%s.test", slug), PW, 403, "ip_not_allowed");
	/* From inside, as before. */
	cJSON_Delete(sok(&a, "GET", "/clients", NULL, 200));
	export_get(&a, &x);
	chain_check(x.entries, NULL);
	{
		const struct want_e w[] = {
		    {"record.list", "anonymous", "", "", "denied", "clients", "ip_not_allowed"},
		    {"record.list", "anonymous", "", "", "denied", "access-log", "ip_not_allowed"},
		};

		/* The refused login writes no entry (api.md); the cookie's user is not named either. */
		entries_from(&x, out_ip, w, 2);
	}
	/* immidb-admin's change is an entry by the server: actor system/immidb-admin, no address. */
	cJSON_ArrayForEach(e, x.entries)
	{
		if (strcmp(jstr(e, "via"), "server") != 0)
			continue;
		assert_string_equal(jstr(jobj(e, "actor"), "kind"), "system");
		assert_string_equal(jstr(jobj(e, "actor"), "id"), "immidb-admin");
		assert_string_equal(jstr(e, "ip"), "");
		assert_string_equal(jstr(e, "outcome"), "ok");
		if (strcmp(jstr(e, "action"), "settings.update") == 0)
			server++;
	}
	if (server != 1)
		fail_msg("%d settings.update entries by the server for one immidb-admin org settings", server);
	export_free(&x);
}

/* --- tests: who may read the log ----------------------------------- */

static void
only_the_orgs_admins_read_the_log(void **state)
{
	static const char *slug = "al-roles", *ip = "198.18.2.80";
	static const char *const routes[] = {"/access-log", "/access-log/export", "/access-log/verify",
	                                     "/access-log/checkpoint"};
	struct sess a, m, ro, other;
	struct h_resp r;
	struct xport x;
	size_t i;
	int denied = 0;
	const cJSON *e;

	(void)state;
	org_with_admin(slug, ip, &a);
	user_new(slug, "mb@al-roles.test", "member", NULL, 0);
	user_new(slug, "ro@al-roles.test", "readonly", NULL, 0);
	login(slug, "198.18.2.81", "mb@al-roles.test", &m);
	login(slug, "198.18.2.82", "ro@al-roles.test", &ro);
	org_with_admin("al-roles-b", "198.18.2.83", &other);
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const char *path = F("/api/v1/orgs/%s%s", slug, routes[i]);

		serr(&m, "GET", routes[i], NULL, 403, "forbidden");
		serr(&ro, "GET", routes[i], NULL, 403, "forbidden");
		/* Another org's admin session: this org is not visible to it. */
		raw("GET", path, other.ip, other.token, NULL, NULL, &r);
		werr(&r, 404, "not_found");
		/* No session. */
		raw("GET", path, ip, NULL, NULL, NULL, &r);
		werr(&r, 401, "unauthenticated");
		/* No method changes the log. */
		raw("DELETE", path, ip, a.token, a.csrf, NULL, &r);
		werr(&r, 405, "method_not_allowed");
		raw("POST", path, ip, a.token, a.csrf, "{}", &r);
		werr(&r, 405, "method_not_allowed");
		/* The admin may. */
		sreq(&a, "GET", routes[i], NULL, &r);
		want(&r, 200);
		h_resp_free(&r);
	}
	raw("PATCH", F("/api/v1/orgs/%s/access-log/1", slug), ip, a.token, a.csrf, "{\"detail\":\"x\"}", &r);
	assert_true(r.status == 404 || r.status == 405);
	h_resp_free(&r);
	/* The other org's admin reads only its own log, and ours has none of its entries. */
	export_get(&other, &x);
	cJSON_ArrayForEach(e, x.entries) assert_string_not_equal(jstr(e, "ip"), ip);
	export_free(&x);
	/* The denied attempts are entries too. */
	export_get(&a, &x);
	cJSON_ArrayForEach(e, x.entries)
	{
		const char *who = jstr(jobj(e, "actor"), "email");

		if (strcmp(who, "mb@al-roles.test") != 0 && strcmp(who, "ro@al-roles.test") != 0)
			continue;
		if (strcmp(jstr(e, "action"), "session.login") == 0)
			continue;
		assert_string_equal(jstr(e, "outcome"), "denied");
		assert_string_equal(jstr(e, "detail"), "forbidden");
		assert_int_equal(strncmp(jstr(e, "target"), "access-log", 10), 0);
		denied++;
	}
	assert_int_equal(denied, 8);
	assert_int_equal(count_entries(&x, "198.18.2.81", "log.export"), 1);
	/* Another org's session names nobody here: without a session only refusals by address are entries
	 * (commit 936b604), so the other org's requests leave nothing in this log. */
	assert_int_equal(count_entries(&x, "198.18.2.83", NULL), 0);
	export_free(&x);
	/* The public key needs no session. */
	{
		unsigned char pk[32];
		char pk64[64];

		log_key(pk, pk64, sizeof(pk64), NULL, 0);
	}
}


/*
 * At least one checkpoint a day is signed and stored without anyone asking:
 * the deliverer (immidb-admin notify deliver) signs the current head into
 * the org's checkpoints table once per day, append-only.
 */
static void
the_deliverer_signs_and_stores_a_checkpoint_a_day(void **state)
{
	static const char *slug = "al-daily", *ip = "198.18.2.60";
	unsigned char pk[32];
	char pk64[64], verifier[256], out[4096], err[4096], msg[512];
	sqlite3_stmt *st = NULL;
	struct note n;
	struct sess a;
	sqlite3 *db;
	long long size;

	(void)state;
	log_key(pk, pk64, sizeof(pk64), verifier, sizeof(verifier));
	org_with_admin(slug, ip, &a);
	cJSON_Delete(sok(&a, "GET", "/clients", NULL, 200));
	assert_int_equal(org_count(slug, "SELECT count(*) FROM checkpoints"), 0);
	if (h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "notify", "deliver", "--once", NULL) != 0)
		fail_msg("notify deliver --once: %s", err);
	db = org_db(slug);
	assert_int_equal(q_ll(db, "SELECT count(*) FROM checkpoints"), 1);
	size = q_ll(db, "SELECT max(seq) FROM access_log");
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT size, head, note FROM checkpoints", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(st, 0), size);
	assert_int_equal(sqlite3_column_bytes(st, 1), 32);
	note_parse((const char *)sqlite3_column_text(st, 2), &n);
	assert_memory_equal(n.head, sqlite3_column_blob(st, 1), 32);
	assert_int_equal(n.size, size);
	assert_string_equal(n.origin, ORIGIN "/al-daily");
	copy(msg, sizeof(msg), n.msg);
	sqlite3_finalize(st);
	/* The stored head is the entry's hash at that size. */
	assert_int_equal(q_ll(db, F("SELECT count(*) FROM access_log a, checkpoints c WHERE a.seq = %lld AND a.hash = c.head",
	                            size)),
	                 1);
	assert_int_not_equal(sqlite3_exec(db, "UPDATE checkpoints SET size = 1", NULL, NULL, NULL), SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "DELETE FROM checkpoints", NULL, NULL, NULL), SQLITE_OK);
	idb_db_close(db);
	if (!openssl_verify(pk, msg, strlen(msg), n.sig, "daily"))
		fail_msg("openssl does not verify the stored checkpoint:\n%s", msg);
	/* A second pass within the day stores none. */
	cJSON_Delete(sok(&a, "GET", "/clients", NULL, 200));
	if (h_admin(&env, NULL, out, sizeof(out), err, sizeof(err), "notify", "deliver", "--once", NULL) != 0)
		fail_msg("notify deliver --once: %s", err);
	assert_int_equal(org_count(slug, "SELECT count(*) FROM checkpoints"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_action_writes_one_entry_with_actor_target_outcome_and_ip),
	    cmocka_unit_test(five_failed_logins_write_a_lockout_entry),
	    cmocka_unit_test(chain_recomputes_links_and_matches_verify_and_the_list),
	    cmocka_unit_test(since_includes_the_whole_second),
	    cmocka_unit_test(concurrent_requests_leave_no_gap_in_seq),
	    cmocka_unit_test(a_read_waits_out_a_queue_held_outside_the_pool_and_gives_up_after_10_s),
	    cmocka_unit_test(update_and_delete_on_the_log_are_refused_by_the_database),
	    cmocka_unit_test(insert_or_replace_cannot_overwrite_an_entry),
	    cmocka_unit_test(checkpoint_signature_verifies_with_openssl_and_key_hash_with_sha256sum),
	    cmocka_unit_test(the_deliverer_signs_and_stores_a_checkpoint_a_day),
	    cmocka_unit_test(the_script_accepts_a_real_export_and_names_the_first_bad_seq),
	    cmocka_unit_test(an_unwritable_log_means_503_and_nothing_committed),
	    cmocka_unit_test(a_log_that_refuses_some_entries_refuses_just_those_requests),
	    cmocka_unit_test(refusals_by_address_are_anonymous_entries_and_cli_changes_are_server_entries),
	    cmocka_unit_test(only_the_orgs_admins_read_the_log),
	    /* Last: it leaves its org's log broken on purpose (log verify --all fails after it). */
	    cmocka_unit_test(tampering_is_found_by_verify_the_cli_and_the_script),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
