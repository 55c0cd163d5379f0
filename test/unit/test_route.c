/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/http/route: pattern matching and captures, route lookup
 * (404 versus 405), and the invariants of the real route table that keep
 * every org route behind the org guard and every private route role-checked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "http/route.h"

struct fx {
	struct idb_arena arena;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	idb_arena_init(&f->arena, 1024 * 1024);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	idb_arena_free(&f->arena);
	free(f);
	return 0;
}

static int
match(struct fx *f, const char *pattern, const char *path, const char **params, size_t *n)
{
	*n = 99;
	return idb_route_match(pattern, path, params, n, &f->arena);
}

/* ---- idb_route_match ---- */

static void
match_literal_path_without_captures(void **state)
{
	struct fx *f = *state;
	const char *p[IDB_PARAMS_MAX];
	size_t n;

	assert_true(match(f, "/api/v1/health", "/api/v1/health", p, &n));
	assert_int_equal(n, 0);
	assert_false(match(f, "/api/v1/health", "/api/v1/healthz", p, &n));
	assert_false(match(f, "/api/v1/health", "/api/v1/healt", p, &n));
	assert_false(match(f, "/api/v1/health", "/api/v1", p, &n));
	assert_false(match(f, "/api/v1/health", "/api/v1/health/x", p, &n));
	assert_false(match(f, "/api/v1/health", "api/v1/health", p, &n));
	assert_false(match(f, "/api/v1/health", "/API/v1/health", p, &n));
	assert_false(match(f, "/api/v1/health", "", p, &n));
}

static void
match_fills_captures_in_order(void **state)
{
	struct fx *f = *state;
	const char *p[IDB_PARAMS_MAX];
	size_t n;

	assert_true(match(f, "/api/v1/orgs/{org}/clients/{id}", "/api/v1/orgs/acme/clients/c_9a1e", p, &n));
	assert_int_equal(n, 2);
	assert_string_equal(p[0], "acme");
	assert_string_equal(p[1], "c_9a1e");
}

static void
match_keeps_captures_raw(void **state)
{
	struct fx *f = *state;
	const char *p[IDB_PARAMS_MAX];
	size_t n;

	/* The router does not decode: %2F stays three characters, not a slash. */
	assert_true(match(f, "/a/{x}", "/a/b%2Fc", p, &n));
	assert_int_equal(n, 1);
	assert_string_equal(p[0], "b%2Fc");
}

static void
match_without_params_array_only_answers(void **state)
{
	(void)state;
	assert_true(idb_route_match("/a/{x}/b", "/a/1/b", NULL, NULL, NULL));
	assert_false(idb_route_match("/a/{x}/b", "/a/1/c", NULL, NULL, NULL));
}

static void
match_refuses_trailing_slash(void **state)
{
	struct fx *f = *state;
	const char *p[IDB_PARAMS_MAX];
	size_t n;

	assert_false(match(f, "/api/v1/health", "/api/v1/health/", p, &n));
	assert_false(match(f, "/api/v1/orgs/{org}/session", "/api/v1/orgs/acme/session/", p, &n));
	/* A capture never matches the empty segment after a trailing slash. */
	assert_false(match(f, "/api/v1/orgs/{org}", "/api/v1/orgs/", p, &n));
	assert_false(match(f, "/api/v1/orgs/{org}/", "/api/v1/orgs/acme", p, &n));
}

static void
match_refuses_empty_segments(void **state)
{
	struct fx *f = *state;
	const char *p[IDB_PARAMS_MAX];
	size_t n;

	assert_false(match(f, "/api/v1/orgs/{org}/session", "/api/v1/orgs//session", p, &n));
	assert_false(match(f, "/api/v1/health", "/api//v1/health", p, &n));
	assert_false(match(f, "/api/v1/health", "//api/v1/health", p, &n));
	assert_false(match(f, "/a/{x}/{y}", "/a//", p, &n));
}

static void
match_accepts_segment_of_128_and_refuses_129(void **state)
{
	struct fx *f = *state;
	const char *p[IDB_PARAMS_MAX];
	char path[IDB_SEGMENT_MAX + 16];
	size_t n;

	memcpy(path, "/a/", 3);
	memset(path + 3, 's', IDB_SEGMENT_MAX);
	path[3 + IDB_SEGMENT_MAX] = '\0';
	assert_true(match(f, "/a/{x}", path, p, &n));
	assert_int_equal(n, 1);
	assert_int_equal(strlen(p[0]), IDB_SEGMENT_MAX);
	path[3 + IDB_SEGMENT_MAX] = 's';
	path[4 + IDB_SEGMENT_MAX] = '\0';
	assert_false(match(f, "/a/{x}", path, p, &n));
}

static void
match_never_captures_more_than_params_max(void **state)
{
	struct fx *f = *state;
	const char *p[IDB_PARAMS_MAX];
	size_t n;

	assert_true(match(f, "/{a}/{b}/{c}/{d}", "/1/2/3/4", p, &n));
	assert_int_equal(n, IDB_PARAMS_MAX);
	assert_false(match(f, "/{a}/{b}/{c}/{d}/{e}", "/1/2/3/4/5", p, &n));
}

static void
match_capture_takes_exactly_one_segment(void **state)
{
	struct fx *f = *state;
	const char *p[IDB_PARAMS_MAX];
	size_t n;

	assert_false(match(f, "/orgs/{org}/session", "/orgs/a/b/session", p, &n));
	assert_false(match(f, "/orgs/{org}", "/orgs/a/b", p, &n));
	assert_false(match(f, "/orgs/{org}/session", "/orgs/session", p, &n));
}

/* ---- idb_route_find ---- */

static enum idb_err
h_dummy(struct idb_ctx *x)
{
	(void)x;
	return IDB_OK;
}

static const struct idb_route table[] = {
	{"GET", "/a/{x}", h_dummy, IDB_ROLE_ANY, 0, NULL, NULL},
	{"POST", "/a/{x}", h_dummy, IDB_ROLE_ADMIN, 0, NULL, NULL},
	{"GET", "/b", h_dummy, 0, IDB_RF_PUBLIC, NULL, NULL},
	{"DELETE", "/a/{x}/c", h_dummy, IDB_ROLE_ADMIN, 0, NULL, NULL},
};

static const struct idb_route *
find(struct fx *f, struct idb_req *r, const char *method, const char *path, enum idb_err *e)
{
	memset(r, 0, sizeof(*r));
	r->arena = &f->arena;
	r->method = method;
	r->path = path;
	r->query = "";
	*e = (enum idb_err)-1;
	return idb_route_find(table, sizeof(table) / sizeof(table[0]), r, e);
}

static void
find_picks_the_row_of_method_and_path(void **state)
{
	struct fx *f = *state;
	struct idb_req r;
	enum idb_err e;

	assert_ptr_equal(find(f, &r, "GET", "/a/42", &e), &table[0]);
	assert_int_equal(e, IDB_OK);
	assert_int_equal(r.nparams, 1);
	assert_string_equal(r.params[0], "42");
	assert_ptr_equal(find(f, &r, "POST", "/a/43", &e), &table[1]);
	assert_string_equal(r.params[0], "43");
	assert_ptr_equal(find(f, &r, "GET", "/b", &e), &table[2]);
	assert_int_equal(r.nparams, 0);
	assert_ptr_equal(find(f, &r, "DELETE", "/a/1/c", &e), &table[3]);
}

static void
find_known_path_with_other_method_is_method_not_allowed(void **state)
{
	struct fx *f = *state;
	struct idb_req r;
	enum idb_err e;

	assert_null(find(f, &r, "DELETE", "/a/42", &e));
	assert_int_equal(e, IDB_E_METHOD_NOT_ALLOWED);
	assert_null(find(f, &r, "POST", "/b", &e));
	assert_int_equal(e, IDB_E_METHOD_NOT_ALLOWED);
	assert_null(find(f, &r, "get", "/b", &e)); /* methods are case-sensitive */
	assert_int_equal(e, IDB_E_METHOD_NOT_ALLOWED);
}

static void
find_unknown_path_is_not_found(void **state)
{
	struct fx *f = *state;
	struct idb_req r;
	enum idb_err e;

	assert_null(find(f, &r, "GET", "/c", &e));
	assert_int_equal(e, IDB_E_NOT_FOUND);
	assert_null(find(f, &r, "GET", "/b/", &e));
	assert_int_equal(e, IDB_E_NOT_FOUND);
	assert_null(find(f, &r, "GET", "/a//c", &e));
	assert_int_equal(e, IDB_E_NOT_FOUND);
	assert_null(find(f, &r, "GET", "", &e));
	assert_int_equal(e, IDB_E_NOT_FOUND);
	assert_null(find(f, &r, "GET", NULL, &e));
	assert_int_equal(e, IDB_E_NOT_FOUND);
}

static void
find_refuses_paths_longer_than_path_len_max(void **state)
{
	struct fx *f = *state;
	struct idb_route t[1];
	struct idb_req r;
	enum idb_err e;
	char *s = malloc(IDB_PATH_LEN_MAX + 2);

	/* One literal segment, so that only the length check can refuse it. */
	assert_non_null(s);
	s[0] = '/';
	memset(s + 1, 'x', IDB_PATH_LEN_MAX);
	s[IDB_PATH_LEN_MAX] = '\0'; /* IDB_PATH_LEN_MAX bytes: allowed */
	t[0] = (struct idb_route){"GET", s, h_dummy, IDB_ROLE_ANY, 0, NULL, NULL};
	memset(&r, 0, sizeof(r));
	r.arena = &f->arena;
	r.method = "GET";
	r.path = s;
	assert_ptr_equal(idb_route_find(t, 1, &r, &e), &t[0]);
	assert_int_equal(e, IDB_OK);
	s[IDB_PATH_LEN_MAX] = 'x';
	s[IDB_PATH_LEN_MAX + 1] = '\0'; /* one byte more */
	assert_null(idb_route_find(t, 1, &r, &e));
	assert_int_equal(e, IDB_E_NOT_FOUND);
	free(s);
}

static void
find_with_over_long_capture_is_not_found(void **state)
{
	struct fx *f = *state;
	struct idb_req r;
	enum idb_err e;
	char path[IDB_SEGMENT_MAX + 16];

	memcpy(path, "/a/", 3);
	memset(path + 3, 'x', IDB_SEGMENT_MAX + 1);
	path[4 + IDB_SEGMENT_MAX] = '\0';
	assert_null(find(f, &r, "GET", path, &e));
	assert_int_equal(e, IDB_E_NOT_FOUND);
}

/* ---- the real table ---- */

static size_t
count_captures(const char *pattern)
{
	size_t n = 0;

	for (; *pattern != '\0'; pattern++)
		if (*pattern == '{')
			n++;
	return n;
}

static void
every_org_route_is_under_orgs_org(void **state)
{
	static const char prefix[] = "/api/v1/orgs/{org}/";
	size_t i;

	(void)state;
	assert_true(idb_routes_n > 0);
	for (i = 0; i < idb_routes_n; i++) {
		const struct idb_route *r = &idb_routes[i];

		if ((r->flags & IDB_RF_ORG) && strncmp(r->pattern, prefix, sizeof(prefix) - 1) != 0)
			fail_msg("org route %s %s is not under %s", r->method, r->pattern, prefix);
		/* And the other way round: nothing under /orgs/ escapes the org guard. */
		if (strncmp(r->pattern, "/api/v1/orgs/", 13) == 0 && !(r->flags & IDB_RF_ORG))
			fail_msg("route %s %s is under /orgs/ without IDB_RF_ORG", r->method, r->pattern);
	}
}

static void
every_private_route_names_its_roles(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < idb_routes_n; i++) {
		const struct idb_route *r = &idb_routes[i];

		if (!(r->flags & IDB_RF_PUBLIC) && r->roles == 0)
			fail_msg("route %s %s is not public and allows no role", r->method, r->pattern);
		if ((r->roles & ~IDB_ROLE_ANY) != 0)
			fail_msg("route %s %s has unknown role bits", r->method, r->pattern);
		if ((r->flags & IDB_RF_PUBLIC) && (r->flags & IDB_RF_ORG))
			fail_msg("route %s %s is both public and an org route", r->method, r->pattern);
	}
}

static void
every_route_is_well_formed_and_unique(void **state)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
	size_t i, j, k;
	int ok;

	(void)state;
	for (i = 0; i < idb_routes_n; i++) {
		const struct idb_route *r = &idb_routes[i];

		assert_non_null(r->fn);
		assert_non_null(r->pattern);
		if (strncmp(r->pattern, "/api/v1/", 8) != 0)
			fail_msg("route %s is outside /api/v1/", r->pattern);
		for (ok = 0, k = 0; k < sizeof(methods) / sizeof(methods[0]); k++)
			ok |= strcmp(r->method, methods[k]) == 0;
		if (!ok)
			fail_msg("route %s has method %s", r->pattern, r->method);
		if (count_captures(r->pattern) > IDB_PARAMS_MAX)
			fail_msg("route %s has more captures than IDB_PARAMS_MAX", r->pattern);
		if (r->pattern[strlen(r->pattern) - 1] == '/')
			fail_msg("route %s ends with a slash", r->pattern);
		for (j = i + 1; j < idb_routes_n; j++)
			if (strcmp(r->method, idb_routes[j].method) == 0 &&
			    strcmp(r->pattern, idb_routes[j].pattern) == 0)
				fail_msg("route %s %s is declared twice", r->method, r->pattern);
	}
}

/*
 * api.md allows exactly these exceptions to "a full session is needed":
 * logging in needs none; while the second factor is pending only
 * POST .../session/mfa (and logging out); while enrollment is required only
 * GET/DELETE .../session and .../me/mfa/totp*. A new exemption must be a
 * deliberate change here, not a flag slipped into the table.
 */
static void
session_exemptions_are_only_where_api_md_allows_them(void **state)
{
	static const char totp[] = "/api/v1/orgs/{org}/me/mfa/totp";
	size_t i;

	(void)state;
	for (i = 0; i < idb_routes_n; i++) {
		const struct idb_route *r = &idb_routes[i];
		int login = strcmp(r->method, "POST") == 0 && strcmp(r->pattern, "/api/v1/orgs/{org}/session") == 0;
		int mfa = strcmp(r->method, "POST") == 0 && strcmp(r->pattern, "/api/v1/orgs/{org}/session/mfa") == 0;
		int session = strcmp(r->pattern, "/api/v1/orgs/{org}/session") == 0 &&
		              (strcmp(r->method, "GET") == 0 || strcmp(r->method, "DELETE") == 0);
		int logout = session && strcmp(r->method, "DELETE") == 0;
		int enroll = session || strncmp(r->pattern, totp, sizeof(totp) - 1) == 0;

		if ((r->flags & IDB_RF_NOSESSION) && !login)
			fail_msg("%s %s is reachable without a session", r->method, r->pattern);
		if ((r->flags & IDB_RF_MFA_STEP) && !mfa && !logout)
			fail_msg("%s %s is reachable before the second factor", r->method, r->pattern);
		if ((r->flags & IDB_RF_ENROLL) && !enroll)
			fail_msg("%s %s is reachable while MFA enrollment is required", r->method, r->pattern);
		if ((r->flags & (IDB_RF_NOSESSION | IDB_RF_MFA_STEP | IDB_RF_ENROLL)) && !(r->flags & IDB_RF_ORG))
			fail_msg("%s %s has a session exemption but is not an org route", r->method, r->pattern);
	}
}

static void
real_table_answers_org_paths_with_the_slug_first(void **state)
{
	struct fx *f = *state;
	const struct idb_route *r;
	struct idb_req req;
	enum idb_err e;

	memset(&req, 0, sizeof(req));
	req.arena = &f->arena;
	req.method = "GET";
	req.path = "/api/v1/orgs/acme/session";
	r = idb_route_find(idb_routes, idb_routes_n, &req, &e);
	assert_non_null(r);
	assert_int_equal(e, IDB_OK);
	assert_true(r->flags & IDB_RF_ORG);
	assert_true(req.nparams >= 1);
	assert_string_equal(req.params[0], "acme");

	req.path = "/api/v1/nope";
	assert_null(idb_route_find(idb_routes, idb_routes_n, &req, &e));
	assert_int_equal(e, IDB_E_NOT_FOUND);
	req.method = "TRACE";
	req.path = "/api/v1/health";
	assert_null(idb_route_find(idb_routes, idb_routes_n, &req, &e));
	assert_int_equal(e, IDB_E_METHOD_NOT_ALLOWED);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(match_literal_path_without_captures),
		T(match_fills_captures_in_order),
		T(match_keeps_captures_raw),
		T(match_without_params_array_only_answers),
		T(match_refuses_trailing_slash),
		T(match_refuses_empty_segments),
		T(match_accepts_segment_of_128_and_refuses_129),
		T(match_never_captures_more_than_params_max),
		T(match_capture_takes_exactly_one_segment),
		T(find_picks_the_row_of_method_and_path),
		T(find_known_path_with_other_method_is_method_not_allowed),
		T(find_unknown_path_is_not_found),
		T(find_refuses_paths_longer_than_path_len_max),
		T(find_with_over_long_capture_is_not_found),
		T(every_org_route_is_under_orgs_org),
		T(every_private_route_names_its_roles),
		T(every_route_is_well_formed_and_unique),
		T(session_exemptions_are_only_where_api_md_allows_them),
		T(real_table_answers_org_paths_with_the_slug_first),
	};

	return cmocka_run_group_tests_name("route", tests, NULL, NULL);
}
