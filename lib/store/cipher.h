/* SPDX-License-Identifier: ISC */
/*
 * A faster page cipher for SQLCipher 3.4. The stock OpenSSL provider builds
 * and frees an EVP cipher context and an HMAC context for every page it
 * encrypts or decrypts, and under OpenSSL 3 that setup (implicit fetches,
 * the AES key schedule, the HMAC pads) costs more than the cipher itself.
 * This module registers a copy of the stock provider whose `cipher` and
 * `hmac` keep per-thread contexts keyed once and reuse them while the key is
 * unchanged. The algorithms and the file format are the same (AES-256-CBC
 * without padding, HMAC-SHA1); any input of another shape goes to the stock
 * functions, and if the provider's layout is not the one this module knows,
 * the stock provider stays in place. Each thread also keeps a memo of the
 * pages it read, by their exact bytes, so that a page read again unchanged
 * (after another connection's commit dropped SQLite's page cache) is not
 * authenticated and decrypted again.
 */
#ifndef IDB_STORE_CIPHER_H
#define IDB_STORE_CIPHER_H

/*
 * Registers the fast provider, once per process (later calls do nothing).
 * Must run before the databases that should use it are opened: SQLCipher
 * copies the provider into each connection when the key is set. Takes an
 * activation of SQLCipher that is never given back, so the provider is
 * never freed or replaced behind our back. Never fails: on any mismatch the
 * stock provider is left as it was.
 */
void idb_cipher_install(void);

/*
 * Wipes and frees the calling thread's cached cipher and HMAC contexts.
 * Runs by itself when a thread that used them exits; the next page simply
 * keys new ones.
 */
void idb_cipher_wipe(void);

/* For the tests. */

/* 1 if the fast provider is the one SQLCipher gives to new connections. */
int idb_cipher_active(void);
/*
 * yes: registers a fresh stock provider, so that connections opened next
 * use SQLCipher's own functions; no: registers the fast provider again.
 * Connections already open keep the provider they were opened with.
 * Does nothing when the fast provider could not be installed.
 */
void idb_cipher_use_stock(int yes);
/* Pages the calling thread handled on the fast path, and handed to stock. */
void idb_cipher_counts(unsigned long *fast, unsigned long *to_stock);
/* Calls of the calling thread answered from the memo (an HMAC or a decryption each). */
unsigned long idb_cipher_memo_hits(void);

#endif
