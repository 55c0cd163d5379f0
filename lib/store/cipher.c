/* SPDX-License-Identifier: ISC */
/*
 * A faster page cipher for SQLCipher 3.4 (see cipher.h). SQLCipher calls its
 * provider's `cipher` and `hmac` once per page read or written; the stock
 * OpenSSL ones build an EVP_CIPHER_CTX and an HMAC_CTX from nothing every
 * time. Here each thread keeps one AES-256-CBC context per direction and the
 * two HMAC-SHA1 pad states, keyed once and reused while SQLCipher passes the
 * same key, so a page costs the cipher and the hash and nothing else.
 *
 * SQLCipher's header is not installed, so the provider's layout is declared
 * below and checked at run time: sqlcipher_openssl_setup fills an over-sized
 * zeroed table, the filled entries are counted, and the stock functions are
 * asked their name and sizes and compared with ours on a known answer. Any
 * mismatch leaves the stock provider alone; the fast path is an
 * optimisation, never a requirement.
 */
/* SHA1_Init/Update/Final: deprecated in OpenSSL 3 but still exported; see fast_hmac. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "store/cipher.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

/*
 * SQLCipher 3.4's provider, in the order of its sqlcipher.h. Every `ctx` is
 * the provider context SQLCipher made with ctx_init for one connection.
 */
struct sqlcipher_provider {
	int (*activate)(void *ctx);
	int (*deactivate)(void *ctx);
	const char *(*get_provider_name)(void *ctx);
	int (*add_random)(void *ctx, void *buf, int len);
	int (*random)(void *ctx, void *buf, int len);
	int (*hmac)(void *ctx, unsigned char *key, int key_sz, unsigned char *in, int in_sz,
	    unsigned char *in2, int in2_sz, unsigned char *out);
	int (*kdf)(void *ctx, const unsigned char *pass, int pass_sz, unsigned char *salt, int salt_sz,
	    int workfactor, int key_sz, unsigned char *key);
	int (*cipher)(void *ctx, int mode, unsigned char *key, int key_sz, unsigned char *iv,
	    unsigned char *in, int in_sz, unsigned char *out);
	int (*set_cipher)(void *ctx, const char *name);
	const char *(*get_cipher)(void *ctx);
	int (*get_key_sz)(void *ctx);
	int (*get_iv_sz)(void *ctx);
	int (*get_block_sz)(void *ctx);
	int (*get_hmac_sz)(void *ctx);
	int (*ctx_copy)(void *target, void *source);
	int (*ctx_cmp)(void *c1, void *c2);
	int (*ctx_init)(void **ctx);
	int (*ctx_free)(void **ctx);
	int (*fips_status)(void *ctx);
	const char *(*get_provider_version)(void *ctx);
};

/* Exported by libsqlcipher.so.0 without a header. */
int sqlcipher_register_provider(struct sqlcipher_provider *);
struct sqlcipher_provider *sqlcipher_get_provider(void);
int sqlcipher_openssl_setup(void *); /* fills a struct sqlcipher_provider */
void *sqlcipher_malloc(int);
void sqlcipher_free(void *, int);
void sqlcipher_activate(void);

/* Any function pointer, as stored in the probe table (casts to it are well defined). */
typedef void (*slot_fn)(void);

#define PROVIDER_SLOTS 20 /* members of struct sqlcipher_provider */
#define PROBE_SLOTS 64    /* the table handed to sqlcipher_openssl_setup, far larger */
/*
 * What we allocate for a provider: as large as the probe, so that a trailing
 * member that setup leaves NULL (which the count cannot see) reads as NULL
 * when SQLCipher copies the struct, as it would from the stock one.
 */
#define PROVIDER_ALLOC ((int)(PROBE_SLOTS * sizeof(slot_fn)))

_Static_assert(sizeof(struct sqlcipher_provider) == PROVIDER_SLOTS * sizeof(slot_fn),
    "struct sqlcipher_provider has no padding");

#define MODE_DECRYPT 0 /* SQLCipher's CIPHER_DECRYPT */
#define MODE_ENCRYPT 1 /* SQLCipher's CIPHER_ENCRYPT */
#define AES_NAME "AES-256-CBC"
#define AES_KEY_LEN 32
#define AES_IV_LEN 16
#define AES_BLOCK 16

struct aes_slot {
	EVP_CIPHER_CTX *ctx; /* keyed with key when keyed is set; padding off */
	unsigned char key[AES_KEY_LEN];
	int keyed;
};

struct mac_slot {
	SHA_CTX inner, outer; /* SHA1 after absorbing key^ipad, key^opad */
	unsigned char key[SHA_CBLOCK];
	int key_len;
	int keyed;
};

/*
 * A memo of the page functions' results, per thread. In WAL mode SQLite
 * drops a connection's whole page cache whenever another connection has
 * committed, and every logged request commits, so the same unchanged pages
 * are read, authenticated and decrypted again by every request. HMAC and
 * AES-CBC are deterministic: under the same key, the same input bytes give
 * the same output. A slot keeps one page's input as it was read (ciphertext
 * and IV, and the page number hashed with it), its HMAC and, once
 * decrypted, its plaintext; a call whose input is byte for byte a slot's
 * takes the slot's output instead of computing it. Nothing is skipped: a
 * page whose bytes differ in any way (tampered, rewritten, another page,
 * another IV) finds no match and is computed, and SQLCipher still compares
 * the HMAC itself. A change of the thread's HMAC key makes every HMAC in
 * the memo stale, a change of its decryption key every plaintext (by
 * generation, so that switching databases stays cheap); the memory is
 * wiped by idb_cipher_wipe and at thread exit. It holds plaintext of pages
 * that SQLite's own page cache holds too.
 */
#define MEMO_SLOTS 128
#define MEMO_IN_MAX 1088 /* pages up to 1 KiB (SQLCipher's default), IV and all */

struct memo_slot {
	unsigned long mac_gen; /* mac is valid while equal to the memo's mac_gen */
	unsigned long aes_gen; /* plain is valid while equal to the memo's aes_gen */
	int in_len;            /* bytes of `in` given to hmac: ciphertext || IV */
	unsigned char pgno[4]; /* hmac's in2 */
	unsigned char in[MEMO_IN_MAX];
	unsigned char mac[SHA_DIGEST_LENGTH];
	unsigned char plain[MEMO_IN_MAX];
};

/* The generations move on at every change of the HMAC key and of the decryption key; 0 is never valid. */
struct memo {
	unsigned long mac_gen, aes_gen;
	struct memo_slot slot[MEMO_SLOTS];
};

/*
 * Per thread: a context per direction (an AES key schedule is either for
 * encryption or for decryption), the HMAC pads, and counters for the tests.
 * Key material lives here and in the EVP contexts; it is wiped when the key
 * changes, by idb_cipher_wipe, and when the thread exits.
 */
/* Random bytes drawn from OpenSSL this many at a time (see fast_random). */
#define RND_BUF 4096

static _Thread_local struct {
	struct aes_slot aes[2]; /* [MODE_DECRYPT], [MODE_ENCRYPT] */
	struct mac_slot mac;
	struct memo *memo; /* allocated at the first page; NULL if that failed */
	unsigned long fast, stock, memo_hits;
	int watched; /* the thread-exit destructor is armed */
	unsigned char rnd[RND_BUF];
	size_t rnd_left; /* unused bytes at the end of rnd */
} tl;

/* Set once by install_once, read-only afterwards. */
static struct sqlcipher_provider stock; /* the stock functions we delegate to */
static EVP_CIPHER *aes;                 /* fetched once: no implicit fetch per page */
static int usable;                      /* the fast provider passed every check */
static pthread_key_t tkey;
static int tkey_ok;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

/* Arms the destructor that wipes this thread's keys when it exits. */
static void
thread_watch(void)
{
	if (!tl.watched && tkey_ok && pthread_setspecific(tkey, &tl) == 0)
		tl.watched = 1;
}

static void
thread_gone(void *arg)
{
	(void)arg;
	idb_cipher_wipe();
}

/* Every HMAC (mac) or every plaintext (!mac) in the memo stale: the next key is another. */
static void
memo_forget(int mac)
{
	if (tl.memo != NULL && mac)
		tl.memo->mac_gen++;
	else if (tl.memo != NULL)
		tl.memo->aes_gen++;
}

/* Wipes and frees the memo (it holds plaintext). */
static void
memo_free(void)
{
	if (tl.memo != NULL) {
		OPENSSL_cleanse(tl.memo, sizeof(*tl.memo));
		free(tl.memo);
		tl.memo = NULL;
	}
}

/* The memo, allocated on first use; NULL if out of memory (nothing is memoised then). */
static struct memo *
memo_get(void)
{
	if (tl.memo == NULL && (tl.memo = calloc(1, sizeof(*tl.memo))) != NULL) {
		tl.memo->mac_gen = tl.memo->aes_gen = 1;
		thread_watch();
	}
	return tl.memo;
}

/* The slot for a page whose IV is iv: IVs are random, so any one of their bytes spreads the slots. */
static struct memo_slot *
memo_slot(struct memo *m, const unsigned char *iv)
{
	return &m->slot[iv[7] % MEMO_SLOTS];
}

/* Whether s is keyed with key. */
static int
aes_has_key(const struct aes_slot *s, const unsigned char *key)
{
	return s->keyed && CRYPTO_memcmp(s->key, key, AES_KEY_LEN) == 0;
}

static void
aes_forget(struct aes_slot *s)
{
	EVP_CIPHER_CTX_free(s->ctx); /* clears the provider's key schedule */
	s->ctx = NULL;
	OPENSSL_cleanse(s->key, sizeof(s->key));
	s->keyed = 0;
}

/*
 * The thread's context for mode, keyed with key and set to iv, ready for
 * EVP_CipherUpdate; NULL on a libcrypto failure (the slot is then empty).
 * With the cached key only the IV is set: the key schedule stays.
 */
static EVP_CIPHER_CTX *
aes_ready(int mode, const unsigned char *key, const unsigned char *iv)
{
	struct aes_slot *s = &tl.aes[mode];
	const unsigned char *k = key;

	if (aes_has_key(s, key))
		k = NULL;
	else {
		OPENSSL_cleanse(s->key, sizeof(s->key));
		s->keyed = 0;
		if (mode == MODE_DECRYPT)
			memo_forget(0);
	}
	if (s->ctx == NULL) {
		if ((s->ctx = EVP_CIPHER_CTX_new()) == NULL)
			goto fail;
		thread_watch();
		if (EVP_CipherInit_ex2(s->ctx, aes, NULL, NULL, mode, NULL) != 1 ||
		    EVP_CIPHER_CTX_set_padding(s->ctx, 0) != 1)
			goto fail;
	}
	if (EVP_CipherInit_ex2(s->ctx, NULL, k, iv, mode, NULL) != 1)
		goto fail;
	if (k != NULL) {
		memcpy(s->key, key, AES_KEY_LEN);
		s->keyed = 1;
	}
	return s->ctx;
fail:
	aes_forget(s);
	return NULL;
}

/*
 * The shape SQLCipher uses for its pages: AES-256-CBC (a connection can be
 * switched to another cipher with PRAGMA cipher; the name also fixes the
 * 16-byte IV), a 256-bit key, whole blocks. Anything else goes to the
 * stock function.
 */
static int
cipher_fits(void *ctx, int mode, const unsigned char *key, int key_sz, const unsigned char *iv,
    const unsigned char *in, int in_sz, const unsigned char *out)
{
	const char *name;

	if (aes == NULL || ctx == NULL || key == NULL || iv == NULL || in == NULL || out == NULL)
		return 0;
	if ((mode != MODE_DECRYPT && mode != MODE_ENCRYPT) || key_sz != AES_KEY_LEN ||
	    in_sz <= 0 || in_sz % AES_BLOCK != 0)
		return 0;
	name = stock.get_cipher(ctx);
	return name != NULL && strcmp(name, AES_NAME) == 0;
}

/*
 * The provider's `cipher`: the same bytes as the stock one. SQLITE_ERROR
 * if libcrypto fails in the middle of a page (the stock function would
 * return SQLITE_OK with whatever was written); a failure before any output
 * hands the page to the stock function instead.
 */
static int
fast_cipher(void *ctx, int mode, unsigned char *key, int key_sz, unsigned char *iv,
    unsigned char *in, int in_sz, unsigned char *out)
{
	EVP_CIPHER_CTX *c;
	struct memo_slot *m = NULL;
	int n;

	if (!cipher_fits(ctx, mode, key, key_sz, iv, in, in_sz, out)) {
		tl.stock++;
		return stock.cipher(ctx, mode, key, key_sz, iv, in, in_sz, out);
	}
	/*
	 * The page that hmac has just seen (same ciphertext, same IV after it).
	 * Its plaintext is good while the decryption key is the one it was made
	 * with: checked here before aes_ready, which would set the IV for
	 * nothing on a hit.
	 */
	if (mode == MODE_DECRYPT && in_sz + AES_IV_LEN <= MEMO_IN_MAX && memo_get() != NULL) {
		m = memo_slot(tl.memo, iv);
		if (m->in_len != in_sz + AES_IV_LEN || memcmp(m->in, in, (size_t)in_sz) != 0 ||
		    memcmp(m->in + in_sz, iv, AES_IV_LEN) != 0)
			m = NULL;
		else if (m->aes_gen == tl.memo->aes_gen && aes_has_key(&tl.aes[MODE_DECRYPT], key)) {
			memcpy(out, m->plain, (size_t)in_sz);
			tl.memo_hits++;
			tl.fast++;
			return SQLITE_OK;
		}
	}
	if ((c = aes_ready(mode, key, iv)) == NULL) {
		tl.stock++;
		return stock.cipher(ctx, mode, key, key_sz, iv, in, in_sz, out);
	}
	/* No padding and whole blocks: Update writes everything, Final nothing. */
	if (EVP_CipherUpdate(c, out, &n, in, in_sz) != 1 || n != in_sz) {
		aes_forget(&tl.aes[mode]);
		return SQLITE_ERROR;
	}
	if (m != NULL) {
		memcpy(m->plain, out, (size_t)in_sz);
		m->aes_gen = tl.memo->aes_gen;
	}
	tl.fast++;
	return SQLITE_OK;
}

/*
 * Keys the thread's HMAC-SHA1 pads with key (at most one SHA1 block; longer
 * keys are hashed first by HMAC, and go to the stock function). 1 if ready.
 */
static int
mac_ready(const unsigned char *key, int key_sz)
{
	struct mac_slot *m = &tl.mac;
	unsigned char pad[SHA_CBLOCK];
	int i, ok;

	if (m->keyed && m->key_len == key_sz && CRYPTO_memcmp(m->key, key, (size_t)key_sz) == 0)
		return 1;
	OPENSSL_cleanse(m, sizeof(*m));
	memo_forget(1);
	thread_watch();
	memset(pad, 0, sizeof(pad));
	memcpy(pad, key, (size_t)key_sz);
	for (i = 0; i < SHA_CBLOCK; i++)
		pad[i] ^= 0x36;
	ok = SHA1_Init(&m->inner) && SHA1_Update(&m->inner, pad, sizeof(pad));
	for (i = 0; i < SHA_CBLOCK; i++)
		pad[i] ^= 0x36 ^ 0x5c;
	ok = ok && SHA1_Init(&m->outer) && SHA1_Update(&m->outer, pad, sizeof(pad));
	OPENSSL_cleanse(pad, sizeof(pad));
	if (!ok) {
		OPENSSL_cleanse(m, sizeof(*m));
		return 0;
	}
	memcpy(m->key, key, (size_t)key_sz);
	m->key_len = key_sz;
	m->keyed = 1;
	return 1;
}

static int
hmac_fits(const unsigned char *key, int key_sz, const unsigned char *in, int in_sz,
    const unsigned char *in2, int in2_sz, const unsigned char *out)
{
	if (key == NULL || key_sz < 0 || key_sz > SHA_CBLOCK || in == NULL || in_sz < 0 || out == NULL)
		return 0;
	/* The stock function hashes in2 unconditionally: NULL is fine only when empty. */
	return in2_sz == 0 || (in2 != NULL && in2_sz > 0);
}

/*
 * The provider's `hmac`: HMAC-SHA1 of in || in2, as the stock one (which
 * ignores ctx). The pads are hashed once per key; a page then costs a
 * copy of each state and the hash of the page. The low-level SHA1 calls
 * are used because a SHA_CTX copies by value: measured on a 1 KiB page,
 * about 700 ns against 860 ns for EVP_MAC re-initialised with its cached
 * key, and 1400 ns for an EVP_MAC_CTX_dup per page.
 */
static int
fast_hmac(void *ctx, unsigned char *key, int key_sz, unsigned char *in, int in_sz,
    unsigned char *in2, int in2_sz, unsigned char *out)
{
	unsigned char inner[SHA_DIGEST_LENGTH];
	struct memo_slot *m = NULL;
	SHA_CTX c;
	int ok;

	if (!hmac_fits(key, key_sz, in, in_sz, in2, in2_sz, out) || !mac_ready(key, key_sz)) {
		tl.stock++;
		return stock.hmac(ctx, key, key_sz, in, in_sz, in2, in2_sz, out);
	}
	/* A page: its bytes end with the IV, and in2 is its number. */
	if (in2_sz == 4 && in_sz >= AES_IV_LEN && in_sz <= MEMO_IN_MAX && memo_get() != NULL) {
		m = memo_slot(tl.memo, in + in_sz - AES_IV_LEN);
		if (m->mac_gen == tl.memo->mac_gen && m->in_len == in_sz && memcmp(m->pgno, in2, 4) == 0 &&
		    memcmp(m->in, in, (size_t)in_sz) == 0) {
			memcpy(out, m->mac, SHA_DIGEST_LENGTH);
			tl.memo_hits++;
			tl.fast++;
			return SQLITE_OK;
		}
	}
	c = tl.mac.inner;
	ok = SHA1_Update(&c, in, (size_t)in_sz) &&
	    (in2_sz == 0 || SHA1_Update(&c, in2, (size_t)in2_sz)) && SHA1_Final(inner, &c);
	c = tl.mac.outer;
	ok = ok && SHA1_Update(&c, inner, sizeof(inner)) && SHA1_Final(out, &c);
	/* The copies started from the keyed pads. */
	OPENSSL_cleanse(&c, sizeof(c));
	OPENSSL_cleanse(inner, sizeof(inner));
	if (!ok)
		return SQLITE_ERROR;
	if (m != NULL) {
		m->mac_gen = tl.memo->mac_gen;
		m->aes_gen = 0; /* the plaintext, if any, was of the bytes replaced here */
		m->in_len = in_sz;
		memcpy(m->pgno, in2, 4);
		memcpy(m->in, in, (size_t)in_sz);
		memcpy(m->mac, out, SHA_DIGEST_LENGTH);
	}
	tl.fast++;
	return SQLITE_OK;
}

/* The number of filled entries if they are the first ones, else -1. */
static int
count_slots(const slot_fn probe[PROBE_SLOTS])
{
	int i, n = 0;

	for (i = 0; i < PROBE_SLOTS; i++) {
		if (probe[i] == NULL)
			continue;
		if (i != n)
			return -1;
		n++;
	}
	return n;
}

/* The stock functions answer as SQLCipher 3.4's OpenSSL provider does. */
static int
stock_is_openssl(void)
{
	const char *name;

	/* Both ignore ctx in every 3.x release. */
	name = stock.get_provider_name(NULL);
	return name != NULL && strcmp(name, "openssl") == 0 &&
	    stock.get_hmac_sz(NULL) == SHA_DIGEST_LENGTH;
}

/*
 * Our functions against the stock ones on a fixed page, through a provider
 * context made as SQLCipher makes it: the same bytes both ways, and every
 * call taken on the fast path (else installing would gain nothing). 1 if so.
 */
static int
self_test(void)
{
	unsigned char key[AES_KEY_LEN], iv[AES_IV_LEN], pt[4 * AES_BLOCK], pgno[4] = {1, 0, 0, 0};
	unsigned char a[sizeof(pt)], b[sizeof(pt)], ha[SHA_DIGEST_LENGTH], hb[SHA_DIGEST_LENGTH];
	unsigned long fast = tl.fast;
	const char *name;
	void *pctx = NULL;
	size_t i;
	int ok = 0;

	for (i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(0x11 * i + 3);
	for (i = 0; i < sizeof(iv); i++)
		iv[i] = (unsigned char)(0xa0 + i);
	for (i = 0; i < sizeof(pt); i++)
		pt[i] = (unsigned char)(7 * i);
	if (stock.ctx_init(&pctx) != SQLITE_OK || pctx == NULL)
		goto out;
	if (stock.set_cipher(pctx, "aes-256-cbc") != SQLITE_OK ||
	    (name = stock.get_cipher(pctx)) == NULL || strcmp(name, AES_NAME) != 0 ||
	    stock.get_key_sz(pctx) != AES_KEY_LEN || stock.get_iv_sz(pctx) != AES_IV_LEN ||
	    stock.get_block_sz(pctx) != AES_BLOCK)
		goto out;
	if (stock.cipher(pctx, MODE_ENCRYPT, key, AES_KEY_LEN, iv, pt, sizeof(pt), a) != SQLITE_OK ||
	    fast_cipher(pctx, MODE_ENCRYPT, key, AES_KEY_LEN, iv, pt, sizeof(pt), b) != SQLITE_OK ||
	    memcmp(a, b, sizeof(a)) != 0 || memcmp(a, pt, sizeof(pt)) == 0)
		goto out;
	if (fast_cipher(pctx, MODE_DECRYPT, key, AES_KEY_LEN, iv, a, sizeof(a), b) != SQLITE_OK ||
	    memcmp(b, pt, sizeof(pt)) != 0 ||
	    stock.cipher(pctx, MODE_DECRYPT, key, AES_KEY_LEN, iv, a, sizeof(a), b) != SQLITE_OK ||
	    memcmp(b, pt, sizeof(pt)) != 0)
		goto out;
	if (stock.hmac(pctx, key, AES_KEY_LEN, pt, sizeof(pt), pgno, sizeof(pgno), ha) != SQLITE_OK ||
	    fast_hmac(pctx, key, AES_KEY_LEN, pt, sizeof(pt), pgno, sizeof(pgno), hb) != SQLITE_OK ||
	    memcmp(ha, hb, sizeof(ha)) != 0)
		goto out;
	if (stock.hmac(pctx, key, AES_KEY_LEN, pt, sizeof(pt), NULL, 0, ha) != SQLITE_OK ||
	    fast_hmac(pctx, key, AES_KEY_LEN, pt, sizeof(pt), NULL, 0, hb) != SQLITE_OK ||
	    memcmp(ha, hb, sizeof(ha)) != 0)
		goto out;
	ok = tl.fast - fast == 4;
out:
	if (pctx != NULL)
		stock.ctx_free(&pctx);
	idb_cipher_wipe();
	return ok;
}

/*
 * The IV of every page written: SQLCipher asks for 16 random bytes per page,
 * and each RAND_bytes call costs far more than the bytes (a lookup of the
 * DRBG, its lock, parameter parsing): a few microseconds a page. Here a
 * thread draws RND_BUF bytes at once and hands them out in order, each byte
 * once. IVs are written in clear next to their page, so nothing secret is
 * held. A forked child must not hand out its parent's bytes again (two
 * processes writing the same IVs): forget_random runs in the child.
 */
static int
fast_random(void *ctx, void *buf, int len)
{
	unsigned char *out = buf;
	size_t n, want;

	(void)ctx;
	if (len < 0)
		return SQLITE_ERROR;
	for (want = (size_t)len; want > 0; want -= n, out += n) {
		if (tl.rnd_left == 0) {
			if (RAND_bytes(tl.rnd, RND_BUF) != 1)
				return SQLITE_ERROR;
			tl.rnd_left = RND_BUF;
		}
		n = want < tl.rnd_left ? want : tl.rnd_left;
		memcpy(out, tl.rnd + RND_BUF - tl.rnd_left, n);
		tl.rnd_left -= n;
	}
	return SQLITE_OK;
}

/* In a forked child (its one thread is the forking one): the parent's bytes are not ours. */
static void
forget_random(void)
{
	OPENSSL_cleanse(tl.rnd, sizeof(tl.rnd));
	tl.rnd_left = 0;
}

/*
 * A provider in SQLCipher's memory (sqlcipher_register_provider frees the
 * one it replaces with sqlcipher_free): the stock functions, with ours for
 * hmac and cipher if fast. NULL if out of memory.
 */
static struct sqlcipher_provider *
provider_new(int fast)
{
	struct sqlcipher_provider *p;

	if ((p = sqlcipher_malloc(PROVIDER_ALLOC)) == NULL)
		return NULL;
	memset(p, 0, (size_t)PROVIDER_ALLOC);
	memcpy(p, &stock, sizeof(stock));
	if (fast) {
		p->hmac = fast_hmac;
		p->cipher = fast_cipher;
		p->random = fast_random;
	}
	return p;
}

static void
install_once(void)
{
	slot_fn probe[PROBE_SLOTS];
	struct sqlcipher_provider *p;

	/* sqlcipher_malloc and SQLCipher's mutexes need SQLite initialised. */
	if (sqlite3_initialize() != SQLITE_OK)
		return;
	memset(probe, 0, sizeof(probe));
	if (sqlcipher_openssl_setup(probe) != SQLITE_OK || count_slots(probe) != PROVIDER_SLOTS)
		return;
	memcpy(&stock, probe, sizeof(stock));
	if (!stock_is_openssl())
		return;
	if ((aes = EVP_CIPHER_fetch(NULL, AES_NAME, NULL)) == NULL)
		return;
	tkey_ok = pthread_key_create(&tkey, thread_gone) == 0;
	if (pthread_atfork(NULL, NULL, forget_random) != 0) {
		EVP_CIPHER_free(aes);
		aes = NULL;
		return;
	}
	if (!self_test() || (p = provider_new(1)) == NULL) {
		EVP_CIPHER_free(aes);
		aes = NULL;
		return;
	}
	/*
	 * An activation held for the life of the process: when the last
	 * connection closes SQLCipher frees its default provider and, at the
	 * next open, installs a new stock one. This one installs the stock
	 * provider now (when none is there), which register then replaces.
	 */
	sqlcipher_activate();
	sqlcipher_register_provider(p);
	usable = 1;
}

void
idb_cipher_install(void)
{
	pthread_once(&once, install_once);
}

void
idb_cipher_wipe(void)
{
	aes_forget(&tl.aes[MODE_DECRYPT]);
	aes_forget(&tl.aes[MODE_ENCRYPT]);
	OPENSSL_cleanse(&tl.mac, sizeof(tl.mac));
	memo_free();
}

int
idb_cipher_active(void)
{
	struct sqlcipher_provider *p = sqlcipher_get_provider();

	return usable && p != NULL && p->cipher == fast_cipher && p->hmac == fast_hmac;
}

void
idb_cipher_use_stock(int yes)
{
	struct sqlcipher_provider *p;

	idb_cipher_install();
	if (!usable)
		return;
	pthread_mutex_lock(&reg_lock);
	if ((p = provider_new(!yes)) != NULL)
		sqlcipher_register_provider(p);
	pthread_mutex_unlock(&reg_lock);
}

void
idb_cipher_counts(unsigned long *fast, unsigned long *to_stock)
{
	*fast = tl.fast;
	*to_stock = tl.stock;
}

unsigned long
idb_cipher_memo_hits(void)
{
	return tl.memo_hits;
}
