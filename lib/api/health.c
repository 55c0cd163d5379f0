/* SPDX-License-Identifier: ISC */
/* Public endpoints: health and the log-signing key. */
#include "api/api.h"

#include <string.h>
#include <sodium.h>

#include "core/util.h"

enum idb_err
idb_api_health(struct idb_ctx *x)
{
	struct idb_buf *b = &x->resp->body;
	enum idb_err e;

	/* Built by hand: this is the hottest path and has no user data. */
	idb_buf_reset(b);
	if ((e = idb_buf_addstr(b, "{\"status\":\"ok\",\"version\":\"" IMMIDB_VERSION "\",\"schema\":")) != IDB_OK ||
	    (e = idb_buf_addu(b, (unsigned long long)x->app->reg_schema)) != IDB_OK ||
	    (e = idb_buf_addstr(b, "}")) != IDB_OK)
		return e;
	x->resp->status = 200;
	return IDB_OK;
}

enum idb_err
idb_api_log_key(struct idb_ctx *x)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], kin[1 + crypto_sign_PUBLICKEYBYTES];
	unsigned char h[crypto_hash_sha256_BYTES];
	char pk64[sodium_base64_ENCODED_LEN(sizeof(pk), sodium_base64_VARIANT_ORIGINAL)];
	char kin64[sodium_base64_ENCODED_LEN(sizeof(kin), sodium_base64_VARIANT_ORIGINAL)];
	char hashhex[9];
	const char *origin = x->app->conf->log_origin;
	crypto_hash_sha256_state s;
	cJSON *j;
	struct idb_buf vk;
	enum idb_err e;

	if ((e = idb_reg_sign_public(x->app->reg, pk)) != IDB_OK)
		return e;
	kin[0] = 0x01; /* Ed25519 in the note format */
	memcpy(kin + 1, pk, sizeof(pk));
	crypto_hash_sha256_init(&s);
	crypto_hash_sha256_update(&s, (const unsigned char *)origin, strlen(origin));
	crypto_hash_sha256_update(&s, (const unsigned char *)"\n", 1);
	crypto_hash_sha256_update(&s, kin, sizeof(kin));
	crypto_hash_sha256_final(&s, h);
	idb_hex(h, 4, hashhex);
	sodium_bin2base64(pk64, sizeof(pk64), pk, sizeof(pk), sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(kin64, sizeof(kin64), kin, sizeof(kin), sodium_base64_VARIANT_ORIGINAL);
	idb_buf_init(&vk, 1024);
	if (idb_buf_addstr(&vk, origin) || idb_buf_addstr(&vk, "+") || idb_buf_addstr(&vk, hashhex) ||
	    idb_buf_addstr(&vk, "+") || idb_buf_addstr(&vk, kin64)) {
		idb_buf_free(&vk);
		return IDB_E_TOOBIG;
	}
	if ((j = cJSON_CreateObject()) == NULL) {
		idb_buf_free(&vk);
		return IDB_E_NOMEM;
	}
	cJSON_AddStringToObject(j, "algorithm", "ed25519");
	cJSON_AddStringToObject(j, "name", origin);
	cJSON_AddStringToObject(j, "public_key", pk64);
	cJSON_AddStringToObject(j, "verifier_key", vk.data);
	e = idb_resp_json(x->resp, 200, j);
	cJSON_Delete(j);
	idb_buf_free(&vk);
	return e;
}
