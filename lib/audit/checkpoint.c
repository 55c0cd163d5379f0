/* SPDX-License-Identifier: ISC */
#include "audit/checkpoint.h"

#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "audit/accesslog.h"
#include "core/buf.h"
#include "core/util.h"
#include "store/db.h"
#include "store/registry.h"

#define B64(n) sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL)

void
idb_ckpt_key_hash(const char *name, const unsigned char pk[32], unsigned char out[4])
{
	unsigned char h[crypto_hash_sha256_BYTES], alg = 0x01;
	crypto_hash_sha256_state st;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)name, strlen(name));
	crypto_hash_sha256_update(&st, (const unsigned char *)"\n", 1);
	crypto_hash_sha256_update(&st, &alg, 1);
	crypto_hash_sha256_update(&st, pk, 32);
	crypto_hash_sha256_final(&st, h);
	memcpy(out, h, 4);
}

void
idb_ckpt_verifier_key(const char *name, const unsigned char pk[32], char out[256])
{
	unsigned char kh[4], kin[33];
	char hex[9], b64[B64(33)];

	idb_ckpt_key_hash(name, pk, kh);
	idb_hex(kh, 4, hex);
	kin[0] = 0x01;
	memcpy(kin + 1, pk, 32);
	sodium_bin2base64(b64, sizeof(b64), kin, sizeof(kin), sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, 256, "%s+%s+%s", name, hex, b64);
}

enum idb_err
idb_ckpt_sign(sqlite3 *reg, const struct idb_master *m, const char *log_origin, const char *slug, long long size,
              const unsigned char head[32], cJSON **out)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], sig[4 + crypto_sign_BYTES];
	char headb64[B64(32)], sigb64[B64(sizeof(sig))], hex[65], num[24];
	struct idb_buf msg, note;
	enum idb_err e;
	cJSON *j = NULL;

	*out = NULL;
	idb_buf_init(&msg, 1024);
	idb_buf_init(&note, 2048);
	if ((e = idb_reg_sign_key(reg, m, pk, sk)) != IDB_OK)
		goto out;
	sodium_bin2base64(headb64, sizeof(headb64), head, 32, sodium_base64_VARIANT_ORIGINAL);
	snprintf(num, sizeof(num), "%lld", size);
	/* The signed message: origin, size and head, each with its newline. */
	if ((e = idb_buf_addstr(&msg, log_origin)) || (e = idb_buf_addstr(&msg, "/")) || (e = idb_buf_addstr(&msg, slug)) ||
	    (e = idb_buf_addstr(&msg, "\n")) || (e = idb_buf_addstr(&msg, num)) || (e = idb_buf_addstr(&msg, "\n")) ||
	    (e = idb_buf_addstr(&msg, headb64)) || (e = idb_buf_addstr(&msg, "\n")))
		goto out;
	idb_ckpt_key_hash(log_origin, pk, sig);
	crypto_sign_detached(sig + 4, NULL, (const unsigned char *)msg.data, msg.len, sk);
	sodium_bin2base64(sigb64, sizeof(sigb64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
	/* A blank line, then the signature line: an em dash (U+2014), the key name, the signature. */
	if ((e = idb_buf_add(&note, msg.data, msg.len)) || (e = idb_buf_addstr(&note, "\n\xe2\x80\x94 ")) ||
	    (e = idb_buf_addstr(&note, log_origin)) || (e = idb_buf_addstr(&note, " ")) ||
	    (e = idb_buf_addstr(&note, sigb64)) || (e = idb_buf_addstr(&note, "\n")))
		goto out;
	if ((j = cJSON_CreateObject()) == NULL) {
		e = IDB_E_NOMEM;
		goto out;
	}
	msg.data[strcspn(msg.data, "\n")] = '\0';
	cJSON_AddStringToObject(j, "origin", msg.data);
	cJSON_AddNumberToObject(j, "size", (double)size);
	idb_hex(head, 32, hex);
	cJSON_AddStringToObject(j, "head", hex);
	cJSON_AddStringToObject(j, "note", note.data);
	*out = j;
out:
	sodium_memzero(sk, sizeof(sk));
	idb_buf_free(&msg);
	idb_buf_free(&note);
	return e;
}

enum idb_err
idb_ckpt_current(sqlite3 *reg, const struct idb_master *m, const char *log_origin, const char *slug, sqlite3 *org,
                 cJSON **out)
{
	unsigned char head[32];
	long long size;
	enum idb_err e;

	*out = NULL;
	if ((e = idb_log_head(org, &size, head)) != IDB_OK)
		return e;
	return idb_ckpt_sign(reg, m, log_origin, slug, size, head, out);
}

enum idb_err
idb_ckpt_daily(sqlite3 *reg, const struct idb_master *m, const char *log_origin, const char *slug, sqlite3 *org,
               long long now, int *made)
{
	static const char sql_recent[] = "SELECT count(*) FROM checkpoints WHERE signed_at > ?";
	static const char sql_insert[] = "INSERT INTO checkpoints (size, head, note, signed_at) VALUES (?, ?, ?, ?)";
	unsigned char head[32];
	sqlite3_stmt *st = NULL;
	long long size, recent = -1;
	cJSON *ck = NULL;
	enum idb_err e;

	*made = 0;
	if (sqlite3_prepare_v2(org, sql_recent, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_int64(st, 1, now - IDB_CKPT_EVERY);
	if (sqlite3_step(st) == SQLITE_ROW)
		recent = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (recent != 0)
		return recent < 0 ? IDB_E_DB : IDB_OK;
	/* Under the write lock, so the head signed is the head stored. */
	if ((e = idb_db_begin(org)) != IDB_OK)
		return e;
	if ((e = idb_log_head(org, &size, head)) != IDB_OK || size == 0 ||
	    (e = idb_ckpt_sign(reg, m, log_origin, slug, size, head, &ck)) != IDB_OK)
		goto out;
	if (sqlite3_prepare_v2(org, sql_insert, -1, &st, NULL) != SQLITE_OK) {
		e = IDB_E_DB;
		goto out;
	}
	sqlite3_bind_int64(st, 1, size);
	sqlite3_bind_blob(st, 2, head, sizeof(head), SQLITE_STATIC);
	sqlite3_bind_text(st, 3, cJSON_GetStringValue(cJSON_GetObjectItem(ck, "note")), -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, now);
	e = sqlite3_step(st) == SQLITE_DONE ? IDB_OK : IDB_E_DB;
	if (e == IDB_OK && (e = idb_db_commit(org)) == IDB_OK)
		*made = 1;
out:
	sqlite3_finalize(st);
	cJSON_Delete(ck);
	if (e != IDB_OK || !*made)
		idb_db_rollback(org);
	return e;
}
