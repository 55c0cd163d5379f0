/* SPDX-License-Identifier: ISC */
/*
 * The one error convention of the library: every fallible function returns
 * an enum idb_err, 0 meaning success. The HTTP layer maps each value to the
 * status and code of the API contract through idb_err_status/idb_err_code,
 * the only place where that mapping lives.
 */
#ifndef IDB_CORE_ERR_H
#define IDB_CORE_ERR_H

enum idb_err {
	IDB_OK = 0,
	/* Errors the API shows as they are. */
	IDB_E_INVALID_JSON,
	IDB_E_BAD_REQUEST,
	IDB_E_UNAUTHENTICATED,
	IDB_E_INVALID_CREDENTIALS,
	IDB_E_MFA_REQUIRED,
	IDB_E_FORBIDDEN,
	IDB_E_CSRF_FAILED,
	IDB_E_IP_NOT_ALLOWED,
	IDB_E_MFA_ENROLLMENT_REQUIRED,
	IDB_E_REASON_REQUIRED,
	IDB_E_NOT_FOUND,
	IDB_E_METHOD_NOT_ALLOWED,
	IDB_E_CONFLICT,
	IDB_E_WOULD_LOCK_OUT,
	IDB_E_PAYLOAD_TOO_LARGE,
	IDB_E_VALIDATION,
	IDB_E_TOO_MANY_REQUESTS,
	IDB_E_INTERNAL,
	IDB_E_UNAVAILABLE,
	/* Internal causes; the API shows them as 500 internal or 503 unavailable. */
	IDB_E_NOMEM,
	IDB_E_IO,
	IDB_E_CRYPTO,
	IDB_E_DB,
	IDB_E_CONFIG,
	IDB_E_BADKEY,      /* a key does not open what it should */
	IDB_E_PERM,        /* a secret file is readable by group or others */
	IDB_E_TOOBIG,      /* a bounded buffer or list is full */
	IDB_E_SCHEMA_BEHIND,
	IDB_E_SCHEMA_AHEAD,
	IDB_E_CHECKSUM,    /* an applied migration's file changed */
	IDB_E_EXISTS,
	IDB_E_BUSY,        /* a file is in use by another process */
	IDB_E__MAX
};

/* HTTP status for an error (200 for IDB_OK). */
int idb_err_status(enum idb_err);
/* The API error code string, e.g. "not_found"; never NULL. */
const char *idb_err_code(enum idb_err);
/* A short human message safe to show to a client: no detail of internals. */
const char *idb_err_message(enum idb_err);
/* A message for operators (stderr of the CLI and the server). */
const char *idb_err_str(enum idb_err);

#endif
