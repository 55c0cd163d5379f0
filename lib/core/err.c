/* SPDX-License-Identifier: ISC */
/* The table from enum idb_err to HTTP status, API code and messages. */
#include "core/err.h"

static const struct {
	int status;
	const char *code;
	const char *message;
	const char *internal;
} errtab[IDB_E__MAX] = {
	[IDB_OK] = {200, "ok", "ok", "ok"},
	[IDB_E_INVALID_JSON] = {400, "invalid_json", "The request body is not a valid JSON object.", "invalid JSON"},
	[IDB_E_BAD_REQUEST] = {400, "bad_request", "The request is malformed.", "bad request"},
	[IDB_E_UNAUTHENTICATED] = {401, "unauthenticated", "No valid session.", "unauthenticated"},
	[IDB_E_INVALID_CREDENTIALS] = {401, "invalid_credentials", "Invalid credentials.", "invalid credentials"},
	[IDB_E_MFA_REQUIRED] = {401, "mfa_required", "The second factor is required.", "second factor required"},
	[IDB_E_FORBIDDEN] = {403, "forbidden", "Not allowed.", "forbidden"},
	[IDB_E_CSRF_FAILED] = {403, "csrf_failed", "Missing or wrong CSRF token.", "CSRF check failed"},
	[IDB_E_IP_NOT_ALLOWED] = {403, "ip_not_allowed", "Your address is not allowed.", "address not allowed"},
	[IDB_E_MFA_ENROLLMENT_REQUIRED] = {403, "mfa_enrollment_required", "Two-factor enrollment is required.", "MFA enrollment required"},
	[IDB_E_REASON_REQUIRED] = {403, "reason_required", "An access reason is required.", "access reason required"},
	[IDB_E_NOT_FOUND] = {404, "not_found", "Not found.", "not found"},
	[IDB_E_METHOD_NOT_ALLOWED] = {405, "method_not_allowed", "Method not allowed.", "method not allowed"},
	[IDB_E_CONFLICT] = {409, "conflict", "The record changed or already exists.", "conflict"},
	[IDB_E_WOULD_LOCK_OUT] = {409, "would_lock_out", "The change would lock you out.", "would lock out"},
	[IDB_E_PAYLOAD_TOO_LARGE] = {413, "payload_too_large", "The request body is too large.", "payload too large"},
	[IDB_E_VALIDATION] = {422, "validation_failed", "The request body failed validation.", "validation failed"},
	[IDB_E_TOO_MANY_REQUESTS] = {429, "too_many_requests", "Too many attempts; try again later.", "too many requests"},
	[IDB_E_INTERNAL] = {500, "internal", "Internal error.", "internal error"},
	[IDB_E_UNAVAILABLE] = {503, "unavailable", "Service unavailable; try again later.", "unavailable"},
	[IDB_E_NOMEM] = {500, "internal", "Internal error.", "out of memory"},
	[IDB_E_IO] = {500, "internal", "Internal error.", "input/output error"},
	[IDB_E_CRYPTO] = {500, "internal", "Internal error.", "cryptographic operation failed"},
	[IDB_E_DB] = {500, "internal", "Internal error.", "database error"},
	[IDB_E_CONFIG] = {500, "internal", "Internal error.", "configuration error"},
	[IDB_E_BADKEY] = {500, "internal", "Internal error.", "wrong key: the file does not open with it"},
	[IDB_E_PERM] = {500, "internal", "Internal error.", "secret file is accessible by group or others"},
	[IDB_E_TOOBIG] = {500, "internal", "Internal error.", "limit exceeded"},
	[IDB_E_SCHEMA_BEHIND] = {503, "unavailable", "Service unavailable; try again later.", "database schema is behind: run immidb-admin migrate"},
	[IDB_E_SCHEMA_AHEAD] = {503, "unavailable", "Service unavailable; try again later.", "database schema is newer than this program"},
	[IDB_E_CHECKSUM] = {503, "unavailable", "Service unavailable; try again later.", "an applied migration file has changed (checksum mismatch)"},
	[IDB_E_EXISTS] = {409, "conflict", "The record changed or already exists.", "already exists"},
	[IDB_E_BUSY] = {503, "unavailable", "Service unavailable; try again later.", "in use by another process"},
};

static int
valid(enum idb_err e)
{
	return (int)e >= 0 && e < IDB_E__MAX;
}

int
idb_err_status(enum idb_err e)
{
	return valid(e) ? errtab[e].status : 500;
}

const char *
idb_err_code(enum idb_err e)
{
	return valid(e) ? errtab[e].code : "internal";
}

const char *
idb_err_message(enum idb_err e)
{
	return valid(e) ? errtab[e].message : "Internal error.";
}

const char *
idb_err_str(enum idb_err e)
{
	return valid(e) ? errtab[e].internal : "unknown error";
}
