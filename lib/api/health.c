/* SPDX-License-Identifier: ISC */
/* Public endpoints: health and the log-signing key. */
#include "api/api.h"

#include <string.h>
#include <sodium.h>

#include "audit/checkpoint.h"
#include "core/util.h"

enum idb_err
idb_api_health(struct idb_ctx *x)
{
	struct idb_buf *b = &x->resp->body;
	int maint = idb_app_maintenance(x->app);
	enum idb_err e;

	/* The flag cannot be read: the registry is in trouble, not in planned maintenance. */
	if (maint < 0)
		return IDB_E_UNAVAILABLE;
	/* Built by hand: this is the hottest path and has no user data. */
	idb_buf_reset(b);
	if ((e = idb_buf_addstr(b, maint ? "{\"status\":\"maintenance\"" : "{\"status\":\"ok\"")) != IDB_OK ||
	    (e = idb_buf_addstr(b, ",\"version\":\"" IMMIDB_VERSION "\",\"schema\":")) != IDB_OK ||
	    (e = idb_buf_addu(b, (unsigned long long)x->app->reg_schema)) != IDB_OK ||
	    (e = idb_buf_addstr(b, "}")) != IDB_OK)
		return e;
	x->resp->status = 200;
	return IDB_OK;
}

enum idb_err
idb_api_log_key(struct idb_ctx *x)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	char pk64[sodium_base64_ENCODED_LEN(sizeof(pk), sodium_base64_VARIANT_ORIGINAL)], vk[256];
	const char *origin = x->app->conf->log_origin;
	enum idb_err e;
	cJSON *j;

	if ((e = idb_reg_sign_public(x->app->reg, pk)) != IDB_OK)
		return e;
	sodium_bin2base64(pk64, sizeof(pk64), pk, sizeof(pk), sodium_base64_VARIANT_ORIGINAL);
	idb_ckpt_verifier_key(origin, pk, vk);
	if ((j = cJSON_CreateObject()) == NULL)
		return IDB_E_NOMEM;
	cJSON_AddStringToObject(j, "algorithm", "ed25519");
	cJSON_AddStringToObject(j, "name", origin);
	cJSON_AddStringToObject(j, "public_key", pk64);
	cJSON_AddStringToObject(j, "verifier_key", vk);
	return idb_api_reply(x, 200, j);
}
