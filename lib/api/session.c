/* SPDX-License-Identifier: ISC */
/*
 * Sessions. Only the route exists so far: the guard refuses every request
 * (no session store yet, issue 3), so this handler is reached by none.
 */
#include "api/api.h"

enum idb_err
idb_api_session_get(struct idb_ctx *x)
{
	(void)x;
	return IDB_E_UNAUTHENTICATED;
}
