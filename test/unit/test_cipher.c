/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/store/cipher: the fast SQLCipher provider. Its cipher
 * and hmac give the stock provider's bytes for random keys, IVs and pages
 * (with the key cache going back and forth), hand every other shape to the
 * stock functions, and real database files written with either provider
 * read back with the other, in WAL and after a checkpoint; a flipped byte
 * and a wrong key fail with both. The memo of pages answers only a page
 * seen before byte for byte, under the same key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "store/cipher.h"
#include "store/db.h"
#include "tmpdir.h"

/*
 * The few members of SQLCipher 3.4's provider the test calls, by position
 * (lib/store/cipher.c declares the whole struct and checks it at run time).
 */
typedef void (*slot_fn)(void);
typedef int (*cipher_fn)(void *, int, unsigned char *, int, unsigned char *, unsigned char *, int,
    unsigned char *);
typedef int (*hmac_fn)(void *, unsigned char *, int, unsigned char *, int, unsigned char *, int,
    unsigned char *);
typedef int (*random_fn)(void *, void *, int);
enum { S_RANDOM = 4, S_HMAC = 5, S_CIPHER = 7, S_SET_CIPHER = 8, S_CTX_INIT = 16, S_CTX_FREE = 17, SLOTS = 64 };

int sqlcipher_openssl_setup(void *);
void *sqlcipher_get_provider(void);

#define ENC 1
#define DEC 0
#define MAX_IN 4096

/* The stock functions, ours, and a provider context as SQLCipher makes one. */
static struct {
	slot_fn stock[SLOTS];
	cipher_fn our_cipher;
	hmac_fn our_hmac;
	random_fn our_random;
	void *pctx;
	char dir[64];
} W;

static cipher_fn
stock_cipher(void)
{
	return (cipher_fn)W.stock[S_CIPHER];
}

static hmac_fn
stock_hmac(void)
{
	return (hmac_fn)W.stock[S_HMAC];
}

static int
group_setup(void **state)
{
	slot_fn *ours;

	(void)state;
	if (sodium_init() < 0)
		return -1;
	idb_cipher_install();
	if (sqlcipher_openssl_setup(W.stock) != 0)
		return -1;
	/* Copied: registering another provider frees the struct. */
	if ((ours = sqlcipher_get_provider()) == NULL)
		return -1;
	W.our_cipher = (cipher_fn)ours[S_CIPHER];
	W.our_hmac = (hmac_fn)ours[S_HMAC];
	W.our_random = (random_fn)ours[S_RANDOM];
	if (((int (*)(void **))W.stock[S_CTX_INIT])(&W.pctx) != 0 ||
	    ((int (*)(void *, const char *))W.stock[S_SET_CIPHER])(W.pctx, "aes-256-cbc") != 0)
		return -1;
	memcpy(W.dir, "/tmp/idb-cipher.XXXXXX", sizeof("/tmp/idb-cipher.XXXXXX"));
	return mkdtemp(W.dir) == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	((int (*)(void **))W.stock[S_CTX_FREE])(&W.pctx);
	rmtree(W.dir);
	idb_cipher_wipe();
	return 0;
}

/* Each test leaves the fast provider registered, whatever it switched to. */
static int
teardown(void **state)
{
	(void)state;
	idb_cipher_use_stock(0);
	return 0;
}

static unsigned long
fast_count(void)
{
	unsigned long fast, to_stock;

	idb_cipher_counts(&fast, &to_stock);
	return fast;
}

static unsigned long
stock_count(void)
{
	unsigned long fast, to_stock;

	idb_cipher_counts(&fast, &to_stock);
	return to_stock;
}

/* Ours and stock on the same input, mode and key: the same bytes, on the fast path. */
static void
same_cipher(int mode, unsigned char *key, unsigned char *in, int n)
{
	unsigned char iv[16], a[MAX_IN], b[MAX_IN], back[MAX_IN];
	unsigned long fast = fast_count();

	randombytes_buf(iv, sizeof(iv));
	assert_int_equal(stock_cipher()(W.pctx, mode, key, 32, iv, in, n, a), 0);
	assert_int_equal(W.our_cipher(W.pctx, mode, key, 32, iv, in, n, b), 0);
	assert_memory_equal(a, b, (size_t)n);
	assert_int_equal(fast_count(), fast + 1);
	/* And back the other way. */
	assert_int_equal(W.our_cipher(W.pctx, !mode, key, 32, iv, b, n, back), 0);
	assert_memory_equal(back, in, (size_t)n);
}

static void
same_hmac(unsigned char *key, int key_sz, unsigned char *in, int n, unsigned char *in2, int n2)
{
	unsigned char a[20], b[20];

	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	assert_int_equal(stock_hmac()(W.pctx, key, key_sz, in, n, in2, n2, a), 0);
	assert_int_equal(W.our_hmac(W.pctx, key, key_sz, in, n, in2, n2, b), 0);
	assert_memory_equal(a, b, sizeof(a));
}

static void
provider_is_active_after_install(void **state)
{
	(void)state;
	assert_true(idb_cipher_active());
	assert_ptr_not_equal(W.our_cipher, stock_cipher());
	assert_ptr_not_equal(W.our_hmac, stock_hmac());
}

static void
use_stock_switches_the_registered_provider(void **state)
{
	(void)state;
	idb_cipher_use_stock(1);
	assert_false(idb_cipher_active());
	idb_cipher_use_stock(1);
	assert_false(idb_cipher_active());
	idb_cipher_use_stock(0);
	assert_true(idb_cipher_active());
	idb_cipher_install(); /* idempotent */
	assert_true(idb_cipher_active());
}

static void
cipher_matches_stock_for_random_keys_ivs_and_pages(void **state)
{
	static const int sizes[] = {16, 976, 4048, 32, 1008};
	unsigned char key[32], in[MAX_IN];
	size_t s;
	int i;

	(void)state;
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (i = 0; i < 40; i++) {
			randombytes_buf(key, sizeof(key));
			randombytes_buf(in, (size_t)sizes[s]);
			same_cipher(ENC, key, in, sizes[s]);
			same_cipher(DEC, key, in, sizes[s]);
		}
	}
}

static void
cipher_key_cache_follows_key_changes(void **state)
{
	unsigned char a[32], b[32], in[976];
	int i;

	(void)state;
	randombytes_buf(a, sizeof(a));
	memcpy(b, a, sizeof(b));
	b[31] ^= 0x01; /* differs in the last byte only */
	for (i = 0; i < 3; i++) {
		randombytes_buf(in, sizeof(in));
		/* Same key twice, A, B, A again, the directions interleaved. */
		same_cipher(ENC, a, in, sizeof(in));
		same_cipher(ENC, a, in, sizeof(in));
		same_cipher(DEC, a, in, sizeof(in));
		same_cipher(ENC, b, in, sizeof(in));
		same_cipher(DEC, a, in, sizeof(in));
		same_cipher(DEC, b, in, sizeof(in));
		same_cipher(ENC, a, in, sizeof(in));
		same_cipher(DEC, a, in, sizeof(in));
	}
	/* Wiped between pages: keyed afresh, same bytes. */
	idb_cipher_wipe();
	same_cipher(DEC, b, in, sizeof(in));
	idb_cipher_wipe();
	same_cipher(ENC, b, in, sizeof(in));
}

static void
cipher_hands_other_shapes_to_stock(void **state)
{
	unsigned char key[32], iv[16], in[64], a[64], b[64];
	unsigned long fast = fast_count(), to_stock = stock_count();
	void *ctx128 = NULL;

	(void)state;
	randombytes_buf(key, sizeof(key));
	randombytes_buf(iv, sizeof(iv));
	randombytes_buf(in, sizeof(in));
	/* Not whole blocks. */
	assert_int_equal(W.our_cipher(W.pctx, ENC, key, 32, iv, in, 40, b),
	    stock_cipher()(W.pctx, ENC, key, 32, iv, in, 40, a));
	assert_memory_equal(a, b, 32);
	/* A shorter key. */
	assert_int_equal(W.our_cipher(W.pctx, ENC, key, 16, iv, in, 64, b),
	    stock_cipher()(W.pctx, ENC, key, 16, iv, in, 64, a));
	assert_memory_equal(a, b, 64);
	/* Another cipher on the connection (PRAGMA cipher). */
	assert_int_equal(((int (*)(void **))W.stock[S_CTX_INIT])(&ctx128), 0);
	assert_int_equal(((int (*)(void *, const char *))W.stock[S_SET_CIPHER])(ctx128, "aes-128-cbc"), 0);
	assert_int_equal(W.our_cipher(ctx128, ENC, key, 32, iv, in, 64, b), 0);
	assert_int_equal(stock_cipher()(ctx128, ENC, key, 32, iv, in, 64, a), 0);
	assert_memory_equal(a, b, 64);
	((int (*)(void **))W.stock[S_CTX_FREE])(&ctx128);
	/* An unknown mode. */
	assert_int_equal(W.our_cipher(W.pctx, 2, key, 32, iv, in, 64, b),
	    stock_cipher()(W.pctx, 2, key, 32, iv, in, 64, a));
	assert_int_equal(fast_count(), fast);
	assert_int_equal(stock_count(), to_stock + 4);
}

static void
hmac_matches_stock_with_and_without_in2(void **state)
{
	static const int sizes[] = {0, 1, 20, 63, 64, 65, 992, 4064};
	unsigned char key[32], in[MAX_IN], pgno[4];
	unsigned long fast = fast_count();
	size_t s;
	int i;

	(void)state;
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (i = 0; i < 20; i++) {
			randombytes_buf(key, sizeof(key));
			randombytes_buf(in, (size_t)sizes[s]);
			randombytes_buf(pgno, sizeof(pgno));
			same_hmac(key, 32, in, sizes[s], pgno, sizeof(pgno));
			same_hmac(key, 32, in, sizes[s], NULL, 0);
			same_hmac(key, 32, in, sizes[s], pgno, 0);
		}
	}
	assert_int_equal(fast_count(), fast + 3 * 20 * sizeof(sizes) / sizeof(sizes[0]));
}

static void
hmac_key_cache_follows_key_changes(void **state)
{
	unsigned char a[32], b[32], in[992], pgno[4] = {2, 0, 0, 0};
	int i;

	(void)state;
	randombytes_buf(a, sizeof(a));
	memcpy(b, a, sizeof(b));
	b[0] ^= 0x80;
	for (i = 0; i < 3; i++) {
		randombytes_buf(in, sizeof(in));
		same_hmac(a, 32, in, sizeof(in), pgno, 4);
		same_hmac(a, 32, in, sizeof(in), pgno, 4);
		same_hmac(b, 32, in, sizeof(in), pgno, 4);
		same_hmac(a, 32, in, sizeof(in), pgno, 4);
		/* A prefix of the cached key is another key. */
		same_hmac(a, 16, in, sizeof(in), pgno, 4);
		same_hmac(a, 32, in, sizeof(in), NULL, 0);
	}
	idb_cipher_wipe();
	same_hmac(b, 32, in, sizeof(in), pgno, 4);
}

static void
hmac_key_sizes_up_to_a_block_are_fast_longer_go_to_stock(void **state)
{
	static const int fast_sizes[] = {0, 1, 20, 32, 63, 64};
	static const int slow_sizes[] = {65, 100, 128};
	unsigned char key[128], in[992], pgno[4] = {3, 0, 0, 0};
	unsigned long fast = fast_count(), to_stock = stock_count();
	size_t s;

	(void)state;
	randombytes_buf(key, sizeof(key));
	randombytes_buf(in, sizeof(in));
	for (s = 0; s < sizeof(fast_sizes) / sizeof(fast_sizes[0]); s++)
		same_hmac(key, fast_sizes[s], in, sizeof(in), pgno, 4);
	assert_int_equal(fast_count(), fast + sizeof(fast_sizes) / sizeof(fast_sizes[0]));
	for (s = 0; s < sizeof(slow_sizes) / sizeof(slow_sizes[0]); s++)
		same_hmac(key, slow_sizes[s], in, sizeof(in), pgno, 4);
	assert_int_equal(stock_count(), to_stock + sizeof(slow_sizes) / sizeof(slow_sizes[0]));
}

/*
 * Another thread gets its own contexts, freed by the thread-exit destructor
 * (the ASan build's leak check sees them otherwise). No cmocka asserts off
 * the main thread: it returns the number of mismatches.
 */
static void *
thread_pages(void *arg)
{
	unsigned char key[32], iv[16], in[976], a[976], b[976], ha[20], hb[20];
	uintptr_t bad = 0;
	int i, mode;

	(void)arg;
	for (i = 0; i < 40; i++) {
		if (i % 8 == 0)
			randombytes_buf(key, sizeof(key));
		randombytes_buf(iv, sizeof(iv));
		randombytes_buf(in, sizeof(in));
		mode = i % 2 ? ENC : DEC;
		if (stock_cipher()(W.pctx, mode, key, 32, iv, in, sizeof(in), a) != 0 ||
		    W.our_cipher(W.pctx, mode, key, 32, iv, in, sizeof(in), b) != 0 ||
		    memcmp(a, b, sizeof(a)) != 0)
			bad++;
		if (stock_hmac()(W.pctx, key, 32, in, sizeof(in), iv, sizeof(iv), ha) != 0 ||
		    W.our_hmac(W.pctx, key, 32, in, sizeof(in), iv, sizeof(iv), hb) != 0 ||
		    memcmp(ha, hb, sizeof(ha)) != 0)
			bad++;
	}
	/* Counted in this thread only. */
	if (fast_count() != 80 || stock_count() != 0)
		bad++;
	return (void *)bad;
}

static void
threads_have_their_own_contexts(void **state)
{
	pthread_t t[2];
	void *ret;
	int i;

	(void)state;
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_pages, NULL), 0);
	for (i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_int_equal((uintptr_t)ret, 0);
	}
}

/* Databases. */

static void
exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
}

static void
path_of(const char *name, char *out, size_t len)
{
	assert_true(snprintf(out, len, "%s/%s", W.dir, name) < (int)len);
}

static void
remove_db(const char *path)
{
	char p[256];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

static sqlite3 *
open_db(const char *path, const unsigned char key[32], int flags)
{
	sqlite3 *db = NULL;
	enum idb_err e = idb_db_open(path, key, flags, &db);

	if (e != IDB_OK)
		fail_msg("idb_db_open %s: %s", path, idb_err_str(e));
	return db;
}

/* Adds n rows to each of three tables; seed tells the batches apart. */
static void
fill(sqlite3 *db, int n, int seed)
{
	static const char *const ins[] = {
		"INSERT INTO a (name, n) VALUES (?1, ?2)",
		"INSERT INTO b (data) VALUES (?1)",
		"INSERT INTO c (k, v, note) VALUES (?1, ?2, ?1)",
	};
	sqlite3_stmt *st[3];
	unsigned char blob[300];
	char text[64];
	int i, t;

	exec(db, "CREATE TABLE IF NOT EXISTS a (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)");
	exec(db, "CREATE TABLE IF NOT EXISTS b (id INTEGER PRIMARY KEY, data BLOB)");
	exec(db, "CREATE TABLE IF NOT EXISTS c (k TEXT, v REAL, note TEXT)");
	for (t = 0; t < 3; t++)
		assert_int_equal(sqlite3_prepare_v2(db, ins[t], -1, &st[t], NULL), SQLITE_OK);
	exec(db, "BEGIN");
	for (i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "row %d of batch %d", i, seed);
		randombytes_buf(blob, sizeof(blob));
		sqlite3_bind_text(st[0], 1, text, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(st[0], 2, i * seed);
		sqlite3_bind_blob(st[1], 1, blob, 1 + (int)(blob[0] % sizeof(blob)), SQLITE_TRANSIENT);
		sqlite3_bind_text(st[2], 1, text, -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(st[2], 2, i / 7.0);
		for (t = 0; t < 3; t++) {
			assert_int_equal(sqlite3_step(st[t]), SQLITE_DONE);
			sqlite3_reset(st[t]);
		}
	}
	exec(db, "COMMIT");
	for (t = 0; t < 3; t++)
		sqlite3_finalize(st[t]);
}

/*
 * A hash of every row of the three tables (full scans read every page of
 * them); SQLite's result code of the first failure, or SQLITE_OK.
 */
static int
digest(sqlite3 *db, unsigned char out[32])
{
	static const char *const sql[] = {
		"SELECT id, name, n FROM a ORDER BY id",
		"SELECT id, data FROM b ORDER BY id",
		"SELECT rowid, k, v, note FROM c ORDER BY rowid",
	};
	crypto_generichash_state h;
	sqlite3_stmt *st;
	size_t i;
	int c, rc = SQLITE_OK;

	crypto_generichash_init(&h, NULL, 0, 32);
	for (i = 0; i < sizeof(sql) / sizeof(sql[0]) && rc == SQLITE_OK; i++) {
		if ((rc = sqlite3_prepare_v2(db, sql[i], -1, &st, NULL)) != SQLITE_OK)
			break;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			for (c = 0; c < sqlite3_column_count(st); c++) {
				const void *v = sqlite3_column_blob(st, c);
				int n = sqlite3_column_bytes(st, c);

				crypto_generichash_update(&h, (const unsigned char *)&n, sizeof(n));
				if (n > 0)
					crypto_generichash_update(&h, v, (size_t)n);
			}
		sqlite3_finalize(st);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	crypto_generichash_final(&h, out, 32);
	return rc;
}

static void
digest_ok(sqlite3 *db, unsigned char out[32])
{
	int rc = digest(db, out);

	if (rc != SQLITE_OK)
		fail_msg("reading the tables: %d %s", rc, sqlite3_errmsg(db));
}

/* Opens path with the fast provider (fast) or the stock one, and checks which one worked. */
static sqlite3 *
open_with(int fast, const char *path, const unsigned char key[32], int flags)
{
	unsigned long before = fast_count();
	sqlite3 *db;

	idb_cipher_use_stock(!fast);
	assert_int_equal(idb_cipher_active(), fast);
	db = open_db(path, key, flags);
	/* Page 1 was read: by our functions only if they are the connection's. */
	if (fast)
		assert_true(fast_count() > before);
	else
		assert_int_equal(fast_count(), before);
	return db;
}

static void
written_by_one_provider_reads_back_with_the_other(int writer_fast)
{
	unsigned char key[32], d1[32], d2[32], d3[32];
	char path[128];
	sqlite3 *w, *r;
	unsigned long before;

	path_of(writer_fast ? "fast.db" : "stock.db", path, sizeof(path));
	remove_db(path);
	randombytes_buf(key, sizeof(key));
	w = open_with(writer_fast, path, key, IDB_DB_CREATE);
	before = fast_count();
	fill(w, 300, 1);
	if (writer_fast)
		assert_true(fast_count() > before + 50);
	digest_ok(w, d1);

	/* While the writer is open, the pages are in its WAL. */
	r = open_with(!writer_fast, path, key, 0);
	before = fast_count();
	digest_ok(r, d2);
	assert_memory_equal(d1, d2, 32);
	if (!writer_fast)
		assert_true(fast_count() > before + 50); /* pages decrypted by us */

	/* The reader writes more; the writer sees it. */
	fill(r, 200, 2);
	digest_ok(r, d2);
	digest_ok(w, d3);
	assert_memory_equal(d2, d3, 32);
	idb_db_close(r);
	idb_db_close(w); /* the last connection checkpoints into the main file */

	/* From the main file, with each provider. */
	r = open_with(!writer_fast, path, key, IDB_DB_READONLY);
	digest_ok(r, d3);
	assert_memory_equal(d2, d3, 32);
	idb_db_close(r);
	r = open_with(writer_fast, path, key, IDB_DB_READONLY);
	digest_ok(r, d3);
	assert_memory_equal(d2, d3, 32);
	idb_db_close(r);
}

static void
written_with_fast_reads_with_stock(void **state)
{
	(void)state;
	written_by_one_provider_reads_back_with_the_other(1);
}

static void
written_with_stock_reads_with_fast(void **state)
{
	(void)state;
	written_by_one_provider_reads_back_with_the_other(0);
}

static void
flip_byte(const char *path, off_t at)
{
	unsigned char c;
	int fd;

	assert_true((fd = open(path, O_RDWR)) >= 0);
	assert_int_equal(pread(fd, &c, 1, at), 1);
	c ^= 0x04;
	assert_int_equal(pwrite(fd, &c, 1, at), 1);
	assert_int_equal(close(fd), 0);
}

/* A database of several pages with every WAL frame checkpointed into the file. */
static void
make_db(const char *path, const unsigned char key[32], off_t *size)
{
	struct stat st;
	char wal[160];
	sqlite3 *db;

	remove_db(path);
	db = open_with(1, path, key, IDB_DB_CREATE);
	fill(db, 300, 3);
	idb_db_close(db);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	assert_int_not_equal(access(wal, F_OK), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size >= 20 * 1024);
	assert_int_equal(st.st_size % 1024, 0); /* SQLCipher 3's 1024-byte pages */
	*size = st.st_size;
}

/*
 * A page is 976 bytes of data, a 16-byte IV, a 20-byte HMAC of data and IV
 * (with the page number), and 12 bytes that round the reserve up to 48 and
 * that no HMAC covers. Flips byte `at` of a page of table data past the
 * first (which differs with i) and reads every table with each provider:
 * 1 if both failed, 0 if both read back, and a test failure if they differ.
 */
static int
flip_fails(int i, int at)
{
	unsigned char key[32], d[32];
	char path[128];
	sqlite3 *db;
	off_t size, page;
	int fast, rc[2];

	path_of("flip.db", path, sizeof(path));
	randombytes_buf(key, sizeof(key));
	make_db(path, key, &size);
	page = 1 + (off_t)i % (size / 1024 - 3);
	flip_byte(path, page * 1024 + at);
	for (fast = 0; fast <= 1; fast++) {
		db = open_with(fast, path, key, IDB_DB_READONLY);
		rc[fast] = digest(db, d);
		idb_db_close(db);
	}
	if ((rc[0] == SQLITE_OK) != (rc[1] == SQLITE_OK))
		fail_msg("byte %d of page %lld: stock %d, fast %d", at, (long long)page + 1, rc[0], rc[1]);
	return rc[0] != SQLITE_OK;
}

static void
flipped_byte_in_a_page_fails_with_both(void **state)
{
	static const int where[] = {0, 5, 500, 975, 976, 991, 992, 1011}; /* data, IV, HMAC */
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(where) / sizeof(where[0]); i++)
		if (!flip_fails((int)i, where[i]))
			fail_msg("a flipped byte %d of a page read back", where[i]);
}

static void
reserve_padding_is_not_authenticated_by_either(void **state)
{
	(void)state;
	assert_false(flip_fails(1, 1012));
	assert_false(flip_fails(2, 1023));
}

static void
flipped_byte_in_page_1_fails_at_open_with_both(void **state)
{
	unsigned char key[32];
	char path[128];
	sqlite3 *db = NULL;
	off_t size;
	int fast;

	(void)state;
	path_of("flip1.db", path, sizeof(path));
	randombytes_buf(key, sizeof(key));
	make_db(path, key, &size);
	flip_byte(path, 100);
	for (fast = 0; fast <= 1; fast++) {
		idb_cipher_use_stock(!fast);
		assert_int_equal(idb_db_open(path, key, IDB_DB_READONLY, &db), IDB_E_BADKEY);
		assert_null(db);
	}
}

static void
wrong_key_fails_with_both(void **state)
{
	unsigned char key[32], other[32];
	char path[128];
	sqlite3 *db = NULL;
	int fast, writer;

	(void)state;
	path_of("key.db", path, sizeof(path));
	for (writer = 0; writer <= 1; writer++) {
		randombytes_buf(key, sizeof(key));
		memcpy(other, key, sizeof(other));
		other[17] ^= 0x01;
		remove_db(path);
		db = open_with(writer, path, key, IDB_DB_CREATE);
		fill(db, 50, 4);
		idb_db_close(db);
		for (fast = 0; fast <= 1; fast++) {
			idb_cipher_use_stock(!fast);
			db = NULL;
			assert_int_equal(idb_db_open(path, other, 0, &db), IDB_E_BADKEY);
			assert_null(db);
			/* The right key still opens it afterwards. */
			assert_int_equal(idb_db_open(path, key, 0, &db), IDB_OK);
			idb_db_close(db);
		}
	}
}

/*
 * The page IVs: ours, not stock's; never the same bytes twice, across the
 * refills of the thread's buffer; and a forked child draws bytes of its own,
 * not the ones its parent holds and will hand out next.
 */
static void
random_ivs_are_ours_distinct_and_not_shared_with_a_child(void **state)
{
	enum { IV = 16, N = 1200 }; /* N x IV spans several refills */
	static unsigned char ivs[N][IV];
	unsigned char parent_next[IV], child_first[IV];
	int fds[2], status;
	size_t i, j;
	pid_t pid;

	(void)state;
	assert_ptr_not_equal((void *)W.our_random, (void *)W.stock[S_RANDOM]);
	for (i = 0; i < N; i++)
		assert_int_equal(W.our_random(NULL, ivs[i], IV), 0);
	for (i = 0; i < N; i++)
		for (j = i + 1; j < N; j++)
			assert_memory_not_equal(ivs[i], ivs[j], IV);
	/* An odd size first, so the buffer is mid-way at the fork. */
	assert_int_equal(W.our_random(NULL, ivs[0], 5), 0);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ssize_t w;

		close(fds[0]);
		w = W.our_random(NULL, child_first, IV) == 0 ? write(fds[1], child_first, IV) : -1;
		_exit(w == IV ? 0 : 1);
	}
	close(fds[1]);
	assert_int_equal(W.our_random(NULL, parent_next, IV), 0);
	assert_int_equal(read(fds[0], child_first, IV), IV);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_memory_not_equal(parent_next, child_first, IV);
}

/*
 * The memo (lib/store/cipher.c): a page whose bytes, number and key are
 * those of a page seen before gets the same HMAC and plaintext without
 * computing them; any other input is computed. Driven through the
 * provider's functions as SQLCipher calls them for a page read: the HMAC
 * of data || IV with the page number, then the decryption of the data.
 */
static void
read_page(unsigned char *mac_key, unsigned char *key, unsigned char *page, unsigned char pgno[4],
    unsigned char mac[20], unsigned char plain[976])
{
	unsigned char want_mac[20], want_plain[976];

	assert_int_equal(stock_hmac()(W.pctx, mac_key, 32, page, 992, pgno, 4, want_mac), 0);
	assert_int_equal(W.our_hmac(W.pctx, mac_key, 32, page, 992, pgno, 4, mac), 0);
	assert_memory_equal(mac, want_mac, 20);
	assert_int_equal(stock_cipher()(W.pctx, DEC, key, 32, page + 976, page, 976, want_plain), 0);
	assert_int_equal(W.our_cipher(W.pctx, DEC, key, 32, page + 976, page, 976, plain), 0);
	assert_memory_equal(plain, want_plain, 976);
}

static void
memo_answers_only_a_page_seen_before_byte_for_byte(void **state)
{
	unsigned char mac_key[32], key[32], other[32], page[992], pgno[4] = {9, 0, 0, 0}, pgno2[4] = {10, 0, 0, 0};
	unsigned char mac[20], plain[976], mac2[20], plain2[976];
	unsigned long hits;
	int i;

	(void)state;
	randombytes_buf(mac_key, sizeof(mac_key));
	randombytes_buf(key, sizeof(key));
	randombytes_buf(other, sizeof(other));
	randombytes_buf(page, sizeof(page)); /* 976 bytes of data, then the IV */
	read_page(mac_key, key, page, pgno, mac, plain);
	/* The same page again: both answers from the memo, the same bytes. */
	hits = idb_cipher_memo_hits();
	read_page(mac_key, key, page, pgno, mac2, plain2);
	assert_int_equal(idb_cipher_memo_hits(), hits + 2);
	assert_memory_equal(mac, mac2, 20);
	assert_memory_equal(plain, plain2, 976);
	/* Another page number with the same bytes (a page copied elsewhere): computed. */
	hits = idb_cipher_memo_hits();
	read_page(mac_key, key, page, pgno2, mac2, plain2);
	assert_int_equal(idb_cipher_memo_hits(), hits);
	assert_memory_not_equal(mac, mac2, 20);
	/* Any byte changed, in the data or in the IV: computed, never the memo's answer. */
	for (i = 0; i < 992; i += 31) {
		page[i] ^= 0x01;
		hits = idb_cipher_memo_hits();
		read_page(mac_key, key, page, pgno, mac2, plain2);
		assert_int_equal(idb_cipher_memo_hits(), hits);
		assert_memory_not_equal(mac, mac2, 20);
		page[i] ^= 0x01;
	}
	/* Another key: computed; and once the key has changed, the earlier pages are forgotten. */
	read_page(mac_key, key, page, pgno, mac, plain);
	hits = idb_cipher_memo_hits();
	read_page(other, other, page, pgno, mac2, plain2);
	assert_int_equal(idb_cipher_memo_hits(), hits);
	read_page(mac_key, key, page, pgno, mac2, plain2);
	assert_int_equal(idb_cipher_memo_hits(), hits);
	assert_memory_equal(mac, mac2, 20);
	assert_memory_equal(plain, plain2, 976);
	/* Wiped: nothing is answered from before. */
	idb_cipher_wipe();
	hits = idb_cipher_memo_hits();
	read_page(mac_key, key, page, pgno, mac2, plain2);
	assert_int_equal(idb_cipher_memo_hits(), hits);
}

/*
 * A page of the file at path (past page 1) that no other page shares a
 * memo slot with: after a full read it is certainly in the memo. The slot
 * is chosen by byte 7 of the page's IV (the IV is at byte 976), as
 * lib/store/cipher.c does; 0 if there is none.
 */
static off_t
page_alone_in_its_slot(const char *path, off_t size)
{
	unsigned char slot_of[4096], count[128];
	off_t p, n = size / 1024;
	int fd;

	assert_true(n <= (off_t)sizeof(slot_of));
	memset(count, 0, sizeof(count));
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	for (p = 1; p < n; p++) {
		unsigned char iv[16];

		assert_int_equal(pread(fd, iv, sizeof(iv), p * 1024 + 976), (ssize_t)sizeof(iv));
		slot_of[p] = (unsigned char)(iv[7] % 128);
		count[slot_of[p]]++;
	}
	close(fd);
	for (p = n - 1; p >= 1; p--)
		if (count[slot_of[p]] == 1)
			return p;
	return 0;
}

/*
 * Through SQLite: a reader whose page cache another connection's commit
 * has dropped reads its pages again, and the unchanged ones come from the
 * memo. A page changed in the file since (a flipped byte of one that is
 * certainly in the memo) is not: the read fails as it would without it.
 */
static void
memo_serves_unchanged_pages_after_a_commit_and_never_a_changed_one(void **state)
{
	unsigned char key[32], d1[32], d2[32];
	char path[128];
	sqlite3 *r, *w;
	off_t size, page;
	unsigned long hits;

	(void)state;
	path_of("memo.db", path, sizeof(path));
	randombytes_buf(key, sizeof(key));
	make_db(path, key, &size);
	assert_true((page = page_alone_in_its_slot(path, size)) > 0);
	r = open_with(1, path, key, 0);
	w = open_db(path, key, 0);
	digest_ok(r, d1);
	exec(w, "CREATE TABLE z (x)");
	hits = idb_cipher_memo_hits();
	digest_ok(r, d2);
	assert_memory_equal(d1, d2, 32);
	assert_true(idb_cipher_memo_hits() > hits + 2 * 15); /* an HMAC and a decryption for each page */
	/* A byte of that page changes in the file; a commit drops the reader's cache. */
	flip_byte(path, page * 1024 + 5);
	exec(w, "INSERT INTO z VALUES (1)");
	assert_int_not_equal(digest(r, d2), SQLITE_OK);
	idb_db_close(w);
	idb_db_close(r);
}

#define T(fn) cmocka_unit_test_teardown(fn, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(provider_is_active_after_install),
		T(use_stock_switches_the_registered_provider),
		T(cipher_matches_stock_for_random_keys_ivs_and_pages),
		T(cipher_key_cache_follows_key_changes),
		T(cipher_hands_other_shapes_to_stock),
		T(hmac_matches_stock_with_and_without_in2),
		T(hmac_key_cache_follows_key_changes),
		T(hmac_key_sizes_up_to_a_block_are_fast_longer_go_to_stock),
		T(threads_have_their_own_contexts),
		T(written_with_fast_reads_with_stock),
		T(written_with_stock_reads_with_fast),
		T(flipped_byte_in_a_page_fails_with_both),
		T(reserve_padding_is_not_authenticated_by_either),
		T(flipped_byte_in_page_1_fails_at_open_with_both),
		T(wrong_key_fails_with_both),
		T(random_ivs_are_ours_distinct_and_not_shared_with_a_child),
		T(memo_answers_only_a_page_seen_before_byte_for_byte),
		T(memo_serves_unchanged_pages_after_a_commit_and_never_a_changed_one),
	};

	return cmocka_run_group_tests_name("cipher", tests, group_setup, group_teardown);
}
