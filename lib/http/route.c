/* SPDX-License-Identifier: ISC */
/* Segment-by-segment matching of paths against the route table. */
#include "http/route.h"

#include <string.h>

int
idb_route_match(const char *pat, const char *path, const char **params, size_t *nparams,
                struct idb_arena *arena)
{
	size_t np = 0, plen, slen;
	const char *pend, *send;

	for (;;) {
		if (*pat == '\0' || *path == '\0')
			break;
		if (*pat != '/' || *path != '/')
			return 0;
		pat++;
		path++;
		pend = strchr(pat, '/');
		if (pend == NULL)
			pend = pat + strlen(pat);
		send = strchr(path, '/');
		if (send == NULL)
			send = path + strlen(path);
		plen = (size_t)(pend - pat);
		slen = (size_t)(send - path);
		if (plen >= 2 && pat[0] == '{' && pat[plen - 1] == '}') {
			if (slen == 0 || slen > IDB_SEGMENT_MAX || np == IDB_PARAMS_MAX)
				return 0;
			if (params != NULL) {
				if ((params[np] = idb_arena_strndup(arena, path, slen)) == NULL)
					return 0;
			}
			np++;
		} else if (plen != slen || memcmp(pat, path, plen) != 0)
			return 0;
		pat = pend;
		path = send;
	}
	if (*pat != '\0' || *path != '\0')
		return 0;
	if (nparams != NULL)
		*nparams = np;
	return 1;
}

const struct idb_route *
idb_route_find(const struct idb_route *t, size_t n, struct idb_req *req, enum idb_err *e)
{
	size_t i;
	int path_seen = 0;

	*e = IDB_E_NOT_FOUND;
	if (req->path == NULL || strlen(req->path) > IDB_PATH_LEN_MAX)
		return NULL;
	for (i = 0; i < n; i++) {
		if (!idb_route_match(t[i].pattern, req->path, NULL, NULL, NULL))
			continue;
		path_seen = 1;
		if (strcmp(t[i].method, req->method) != 0)
			continue;
		if (!idb_route_match(t[i].pattern, req->path, req->params, &req->nparams, req->arena)) {
			*e = IDB_E_NOMEM;
			return NULL;
		}
		*e = IDB_OK;
		return &t[i];
	}
	if (path_seen)
		*e = IDB_E_METHOD_NOT_ALLOWED;
	return NULL;
}
