/* SPDX-License-Identifier: ISC */
/* The application: worker-lifetime state, the guard and the request dispatch. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit/accesslog.h"
#include "audit/logq.h"
#include "auth/sysadmin.h"
#include "outbox/outbox.h"
#include "crypto/pw.h"
#include "store/db.h"
#include "store/mig.h"

static int
loopback_http(const char *url)
{
	static const char *dev[] = {"http://127.", "http://localhost:", "http://localhost/", "http://[::1]"};
	size_t i;

	for (i = 0; i < sizeof(dev) / sizeof(dev[0]); i++)
		if (strncmp(url, dev[i], strlen(dev[i])) == 0)
			return 1;
	return 0;
}

enum idb_err
idb_app_init(struct idb_app *a, const struct idb_conf *c, const struct idb_master *m)
{
	char pw[21];
	enum idb_err e;

	memset(a, 0, sizeof(*a));
	a->conf = c;
	a->master = m;
	/* Cookies lose Secure only when the deployment itself is plain HTTP on loopback. */
	a->cookie_secure = !loopback_http(c->public_url);
	a->reg_seen = -1; /* never a data_version: the first request reads the flags */
	if ((e = idb_reg_open(c, m, 0, &a->reg)) != IDB_OK)
		goto fail;
	if ((e = idb_reg_schema(a->reg, &a->reg_schema)) != IDB_OK)
		goto fail;
	if ((e = idb_cache_init(&a->cache, c->org_cache)) != IDB_OK)
		goto fail;
	idb_pw_generate(pw);
	e = idb_pw_hash(pw, a->dummy_hash);
	sodium_memzero(pw, sizeof(pw));
	if (e != IDB_OK)
		goto fail;
	return IDB_OK;
fail:
	idb_app_free(a);
	return e;
}

void
idb_app_free(struct idb_app *a)
{
	if (a == NULL)
		return;
	idb_cache_free(&a->cache);
	idb_db_close(a->reg);
	a->reg = NULL;
}

static unsigned
role_bit(const char *role)
{
	if (strcmp(role, "admin") == 0)
		return IDB_ROLE_ADMIN;
	if (strcmp(role, "member") == 0)
		return IDB_ROLE_MEMBER;
	if (strcmp(role, "readonly") == 0)
		return IDB_ROLE_READONLY;
	return 0;
}

/*
 * Under the write lock: the field key this handle holds is still the one
 * the data is under. A key rotation that committed after the handle was
 * checked (idb_cache_get) would otherwise let this request store a value
 * under the old key; it answers 503 instead and the next request reopens.
 */
static enum idb_err
field_key_current(struct idb_ctx *x)
{
	unsigned v;

	return idb_org_field_version(x->oh->db, &v) == IDB_OK && v == x->oh->keys->field_version ? IDB_OK
	                                                                                       : IDB_E_UNAVAILABLE;
}

/* The org and its open database, at the right schema; snapshot: in a read transaction. */
static enum idb_err
guard_db(struct idb_ctx *x, int snapshot)
{
	enum idb_err e;

	if ((e = idb_app_org(x->app, x->req->params[0], &x->org)) != IDB_OK)
		return e;
	if (strcmp(x->org.state, "active") != 0)
		return IDB_E_NOT_FOUND;
	/* A read (GET) runs its checks and reads in one read transaction. */
	e = snapshot
	        ? idb_cache_get_read(&x->app->cache, x->app->conf, x->app->reg, x->app->master, x->org.id, &x->oh)
	        : idb_cache_get(&x->app->cache, x->app->conf, x->app->reg, x->app->master, x->org.id, &x->oh);
	if (e == IDB_E_SCHEMA_BEHIND || e == IDB_E_SCHEMA_AHEAD || e == IDB_E_CHECKSUM)
		return IDB_E_UNAVAILABLE;
	/* The file cannot be opened or read just now (a key rotation rewriting
	 * it under its new key, a lock held past the busy timeout): 503, and
	 * the next request opens it again. */
	if (e == IDB_E_DB || e == IDB_E_BADKEY || e == IDB_E_BUSY || e == IDB_E_IO) {
		fprintf(stderr, "immidb-fcgi[%ld]: org %s: database not available: %s\n", (long)getpid(), x->org.id,
		        idb_err_str(e));
		return IDB_E_UNAVAILABLE;
	}
	return e;
}

enum idb_err
idb_guard_org(struct idb_ctx *x)
{
	const struct idb_route *rt = x->route;
	const char *token, *csrf;
	sqlite3 *db;
	enum idb_err e;

	if (x->oh == NULL && (e = guard_db(x, strcmp(x->req->method, "GET") == 0)) != IDB_OK)
		return e;
	db = x->oh->db;

	/* A sysadmin (no user session, a sysadmin one): their own addresses, an
	 * active grant to this org (else it does not exist for them), a reason. */
	if (!(rt->flags & IDB_RF_NOSESSION) && idb_req_cookie(x->req, "immidb_session") == NULL &&
	    idb_req_cookie(x->req, "immidb_sysadmin") != NULL) {
		const char *kind;

		if ((e = idb_guard_sysadmin(x)) != IDB_OK)
			return e;
		x->have_session = 1; /* from here on, entries name the sysadmin */
		/* The user's own session and second-factor routes are not a sysadmin's. */
		if (rt->action == NULL || (rt->flags & (IDB_RF_ENROLL | IDB_RF_MFA_STEP)) || strstr(rt->pattern, "/me/"))
			return IDB_E_FORBIDDEN;
		if ((e = idb_sysadmin_may(x->app->reg, x->user.id, x->org.id, &kind)) != IDB_OK)
			return e == IDB_E_NOT_FOUND ? IDB_E_NOT_FOUND : e;
		if (!idb_reason_valid(x->req->access_reason))
			return IDB_E_REASON_REQUIRED;
		if (!(rt->roles & IDB_ROLE_ADMIN))
			return IDB_E_FORBIDDEN;
		if ((x->settings = idb_arena_alloc(x->req->arena, sizeof(*x->settings))) == NULL)
			return IDB_E_NOMEM;
		return idb_settings_load(db, x->settings);
	}

	/* The org's IP allow-list applies to everything, the login included. */
	if ((x->settings = idb_arena_alloc(x->req->arena, sizeof(*x->settings))) == NULL)
		return IDB_E_NOMEM;
	if ((e = idb_settings_load(db, x->settings)) != IDB_OK)
		return e;
	if (!idb_settings_ip_allowed(x->settings, x->req->client_ip))
		return IDB_E_IP_NOT_ALLOWED;
	if (rt->flags & IDB_RF_NOSESSION)
		return IDB_OK;

	/* The session, and its user, who must still be active. */
	token = idb_req_cookie(x->req, "immidb_session");
	if (idb_session_token_org(token, x->org.id) == 0)
		return IDB_E_NOT_FOUND; /* a session of another org: this one is not visible to it */
	if ((e = idb_session_find(db, token, x->now, x->settings->idle_minutes, &x->sess)) != IDB_OK)
		return e;
	if ((e = idb_user_get(db, x->sess.user_id, &x->user)) != IDB_OK || x->user.disabled) {
		idb_session_delete(db, x->sess.hash);
		return e == IDB_OK || e == IDB_E_NOT_FOUND ? IDB_E_UNAUTHENTICATED : e;
	}
	x->have_session = 1;

	/* The second factor: pending sessions reach only the MFA step (and log out). */
	if (x->sess.mfa_pending && !(rt->flags & IDB_RF_MFA_STEP))
		return IDB_E_MFA_REQUIRED;
	if (!x->sess.mfa_pending && (rt->flags & IDB_RF_MFA_STEP) && !(rt->flags & IDB_RF_ENROLL))
		return IDB_E_CONFLICT; /* the second factor was already given */
	if (x->settings->require_mfa && !x->user.mfa_enabled && !(rt->flags & IDB_RF_ENROLL))
		return IDB_E_MFA_ENROLLMENT_REQUIRED;

	/* The role, from the route table. */
	if (!(rt->roles & role_bit(x->user.role)))
		return IDB_E_FORBIDDEN;

	/* CSRF for every state-changing call, compared in constant time. */
	if (strcmp(x->req->method, "GET") != 0 && strcmp(x->req->method, "HEAD") != 0) {
		csrf = x->req->csrf_token;
		if (csrf == NULL || strlen(csrf) != strlen(x->sess.csrf) ||
		    sodium_memcmp(csrf, x->sess.csrf, strlen(x->sess.csrf)) != 0)
			return IDB_E_CSRF_FAILED;
	}
	return IDB_OK;
}

/* How a request's result is recorded: ok, denied (an access check said no), failed, or not at all. */
static const char *
outcome(enum idb_err e)
{
	switch (e) {
	case IDB_OK:
		return "ok";
	case IDB_E_UNAUTHENTICATED:
		return NULL; /* nobody to name: probes without a session are not entries */
	case IDB_E_FORBIDDEN:
	case IDB_E_CSRF_FAILED:
	case IDB_E_IP_NOT_ALLOWED:
	case IDB_E_MFA_REQUIRED:
	case IDB_E_MFA_ENROLLMENT_REQUIRED:
	case IDB_E_REASON_REQUIRED:
	case IDB_E_TOO_MANY_REQUESTS:
		return "denied";
	default:
		return "failed";
	}
}

/* The path after /api/v1/orgs/<slug>/, without a trailing /reveal; a handler may name it (a new record). */
static const char *
log_target(struct idb_ctx *x)
{
	const char *p = x->req->path + strlen("/api/v1/orgs/");
	char *t;
	size_t n;

	if (x->log_target != NULL)
		return x->log_target;
	p += strcspn(p, "/");
	if (*p == '/')
		p++;
	if ((t = idb_arena_strdup(x->req->arena, p)) == NULL)
		return "";
	n = strlen(t);
	if (n > 7 && strcmp(t + n - 7, "/reveal") == 0)
		t[n - 7] = '\0';
	return t;
}

/* The text of a sysadmin-access notice: what, who, when, why. */
static enum idb_err
sysadmin_notice(struct idb_ctx *x, const struct idb_log_entry *le)
{
	struct idb_buf b;
	enum idb_err e;

	idb_buf_init(&b, 8192);
	idb_buf_addstr(&b, "A platform system administrator accessed your organization's data in ImmiDB.\r\n\r\nWho: ");
	idb_buf_addstr(&b, x->user.name);
	idb_buf_addstr(&b, " <");
	idb_buf_addstr(&b, x->user.email);
	idb_buf_addstr(&b, ">\r\nWhen: ");
	idb_buf_addstr(&b, le->at);
	idb_buf_addstr(&b, "\r\nReason given: ");
	idb_buf_addstr(&b, le->reason);
	idb_buf_addstr(&b, "\r\nFirst request: ");
	idb_buf_addstr(&b, le->detail ? le->detail : "");
	idb_buf_addstr(&b, " ");
	idb_buf_addstr(&b, le->target);
	idb_buf_addstr(&b, "\r\n\r\nEvery request is an entry of your access log (action sysadmin.access); you are told "
	                   "at most once an hour per administrator. Org admins can withdraw the assignment at any time.");
	e = b.data ? idb_outbox_queue(x->oh->db, "sysadmin_access", x->user.id, "A sysadmin accessed your data", b.data)
	           : IDB_E_NOMEM;
	idb_buf_free(&b);
	return e == IDB_OK ? IDB_OK : IDB_E_UNAVAILABLE;
}

/*
 * The answer of a grouped request once its entry is settled: le_err, the
 * transaction's result (not IDB_OK: the entry is not written, 503, fail
 * closed); res, its plan's (not IDB_OK: the plan found the record changed,
 * or the key rotated, under it, and wrote nothing).
 */
static enum idb_err
settled_answer(struct idb_ctx *x, enum idb_err e, enum idb_err le_err, enum idb_err res)
{
	if (le_err == IDB_OK && res == IDB_OK)
		return e;
	idb_resp_free(x->resp);
	idb_resp_init(x->resp);
	if (le_err != IDB_OK) {
		fprintf(stderr, "immidb-fcgi[%ld]: access log not writable: %s\n", (long)getpid(), idb_err_str(le_err));
		return IDB_E_UNAVAILABLE;
	}
	return res;
}

/*
 * An org request: the org's database, then one transaction around the guard,
 * the handler and the access-log entry, so that the action and its entry
 * commit together. The handler's own transactions nest inside (savepoints)
 * and undo only their part on failure. If the entry cannot be written, the
 * whole request is undone and answered 503 (fail closed).
 */
static enum idb_err
org_request(struct idb_ctx *x)
{
	const struct idb_route *rt = x->route;
	struct idb_log_entry le;
	const char *oc;
	sqlite3 *db;
	enum idb_err e, le_err;
	/* Routes without an action (the session routes) write their own entries in
	 * their own transactions: a login must not hold the write lock while
	 * Argon2id runs. */
	/* A sysadmin's request is always an entry, on every route. */
	int by_sysadmin = idb_req_cookie(x->req, "immidb_session") == NULL &&
	                  idb_req_cookie(x->req, "immidb_sysadmin") != NULL && !(rt->flags & IDB_RF_NOSESSION);
	int logged = rt->action != NULL || by_sysadmin, tx = logged;
	const char *action = rt->action != NULL ? rt->action : "session";

	/* A read (GET) changes nothing: it runs outside the write lock, and only its
	 * entry is written afterwards, before the answer leaves (fail closed). A
	 * change runs with its entry in one transaction. */
	int read = strcmp(rt->method, "GET") == 0, grouped;
	/* A planned change (a record's PATCH) by a user runs like a read: its
	 * checks and its plan in a read snapshot, then the plan, conditioned on
	 * the version read, goes with its entry through the group commit. */
	int planned = (rt->flags & IDB_RF_PLANNED) && !by_sysadmin;
	struct idb_plan plan;

	if ((e = guard_db(x, read || planned)) != IDB_OK)
		return e;
	db = x->oh->db;
	if (planned) {
		idb_plan_init(&plan);
		x->plan = &plan;
	}
	if (tx && !read && !planned) {
		if ((e = idb_db_begin(db)) != IDB_OK)
			return e == IDB_E_DB ? IDB_E_UNAVAILABLE : e;
		if ((e = field_key_current(x)) != IDB_OK) {
			idb_db_rollback(db);
			return e;
		}
		idb_db_floor(db, 1);
	}
	if ((e = idb_guard_org(x)) == IDB_OK)
		e = rt->fn(x);
	if (!tx)
		goto out;
	/* A user's read: its entry goes through the group commit (lib/audit/logq.c),
	 * which opens its own transaction. A sysadmin's read may queue a notice
	 * with its entry: it keeps a transaction of its own. */
	grouped = (read || planned) && !x->sysadmin;
	if (read && !grouped) {
		enum idb_err be;

		if ((be = idb_db_begin(db)) != IDB_OK) {
			idb_resp_free(x->resp);
			idb_resp_init(x->resp);
			e = IDB_E_UNAVAILABLE;
			goto out;
		}
	}
	idb_db_floor(db, 0);
	while (idb_db_depth(db) > 1)
		idb_db_rollback(db); /* a handler level left open by mistake */
	/* Without a session only refusals by address are entries: anyone could
	 * otherwise grow an org's log with requests that name nobody. */
	if (logged && (oc = outcome(e)) != NULL && (x->have_session || e == IDB_E_IP_NOT_ALLOWED)) {
		memset(&le, 0, sizeof(le));
		le.actor_kind = x->sysadmin ? "sysadmin" : x->have_session ? "user" : "anonymous";
		le.actor_id = x->have_session ? x->user.id : "";
		le.actor_email = x->have_session ? x->user.email : "";
		le.via = "app";
		le.ip = x->req->client_ip;
		le.action = action;
		le.target = log_target(x);
		le.outcome = oc;
		le.detail = e == IDB_OK ? x->log_detail : idb_err_code(e);
		if (x->sysadmin) {
			/* Every sysadmin request is a sysadmin.access entry with its reason. */
			char *d = idb_arena_alloc(x->req->arena, strlen(action) + strlen(le.detail ? le.detail : "") + 2);

			le.action = "sysadmin.access";
			le.reason = x->req->access_reason ? x->req->access_reason : "";
			if (d != NULL) {
				size_t an = strlen(action), dn = le.detail ? strlen(le.detail) : 0;

				memcpy(d, action, an);
				d[an] = dn ? ' ' : '\0';
				if (dn)
					memcpy(d + an + 1, le.detail, dn + 1);
				le.detail = d;
			}
		}
		if (grouped) {
			/* Its answer waits for the commit: the worker may take other requests meanwhile. */
			int planned_now = x->plan != NULL && e == IDB_OK;

			if (!idb_logq_submit(db, x->org.id, &le, planned_now ? plan.b.data : NULL,
			                     planned_now ? plan.b.len : 0, &x->wait)) {
				x->waiting = 1;
				x->waiting_e = e;
				x->waiting_db = db;
				goto out;
			}
			e = settled_answer(x, e, x->wait.r, x->wait.res);
			goto out;
		}
		le_err = idb_log_append(db, &le);
		/* The org asked to be told: the first sysadmin request per hour queues a
		 * notice in this same transaction, or the request is refused. */
		if (le_err == IDB_OK && x->sysadmin && x->settings != NULL && x->settings->notify_sysadmin_access &&
		    !idb_outbox_recent(db, "sysadmin_access", x->user.id, IDB_SYSADMIN_NOTIFY_EVERY))
			le_err = sysadmin_notice(x, &le);
		if (le_err != IDB_OK) {
			idb_db_rollback(db);
			e = settled_answer(x, e, le_err, IDB_OK);
			goto out;
		}
	}
	if (idb_db_commit(db) != IDB_OK) {
		idb_resp_free(x->resp);
		idb_resp_init(x->resp);
		e = IDB_E_UNAVAILABLE;
	}
out:
	if (x->plan != NULL) {
		idb_plan_free(&plan);
		x->plan = NULL;
	}
	return e;
}

/* The Allow header of a 405: the methods the table has for this path. */
static void
allow_header(struct idb_req *req, struct idb_resp *resp)
{
	struct idb_buf b;
	char *v;
	size_t i;

	idb_buf_init(&b, 128);
	for (i = 0; i < idb_routes_n; i++) {
		if (!idb_route_match(idb_routes[i].pattern, req->path, NULL, NULL, NULL))
			continue;
		if (b.len > 0)
			idb_buf_addstr(&b, ", ");
		idb_buf_addstr(&b, idb_routes[i].method);
	}
	if (b.data != NULL && (v = idb_arena_strdup(req->arena, b.data)) != NULL)
		idb_resp_header(resp, "Allow", v);
	idb_buf_free(&b);
}

/*
 * What a worker remembers of the registry (the maintenance flag, the orgs
 * it looked up) is kept while the registry is unchanged: PRAGMA
 * data_version changes when another connection commits to it (immidb-admin
 * creating an org, changing settings of the deployment, rotating keys). It
 * is looked at no more than every IDB_APP_REGISTRY_MS, so a change is seen
 * within that time (`immidb-admin maintenance` waits that long before it
 * returns); an org that is not remembered is always read from the registry.
 */
static int
registry_fresh(struct idb_app *a)
{
	static const char sql_dv[] = "PRAGMA data_version";
	sqlite3_stmt *st = NULL;
	struct timespec now;
	long long dv = -1, ms;
	char v[8];

	/* Looked at most every IDB_APP_REGISTRY_MS: health is the hottest path. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	if (a->reg_seen >= 0 && ms - a->reg_checked_ms < IDB_APP_REGISTRY_MS && ms >= a->reg_checked_ms)
		return 0;
	a->reg_checked_ms = ms;
	if (idb_db_cached(a->reg, sql_dv, &st) == IDB_OK && sqlite3_step(st) == SQLITE_ROW)
		dv = sqlite3_column_int64(st, 0);
	idb_db_done(st);
	if (dv >= 0 && dv == a->reg_seen)
		return 0;
	a->norgs = a->next_org = 0;
	if (idb_reg_flag_get(a->reg, "maintenance", v, sizeof(v)) != IDB_OK) {
		a->maintenance = 1; /* cannot tell: the registry is in trouble, answer 503 */
		a->reg_seen = -1;
		return -1;
	}
	a->maintenance = strcmp(v, "on") == 0;
	a->reg_seen = dv;
	return 1;
}

int
idb_app_maintenance(struct idb_app *a)
{
	return registry_fresh(a) < 0 ? -1 : a->maintenance;
}

enum idb_err
idb_app_org(struct idb_app *a, const char *slug, struct idb_org *out)
{
	enum idb_err e;
	size_t i;

	if (registry_fresh(a) == 0)
		for (i = 0; i < a->norgs; i++)
			if (strcmp(a->orgs[i].slug, slug) == 0) {
				*out = a->orgs[i];
				return IDB_OK;
			}
	if ((e = idb_reg_org_find(a->reg, slug, out)) != IDB_OK || a->reg_seen < 0)
		return e;
	a->orgs[a->next_org] = *out;
	a->next_org = (a->next_org + 1) % IDB_APP_ORGS;
	if (a->norgs < IDB_APP_ORGS)
		a->norgs++;
	return IDB_OK;
}

/* The end of every request: the error's answer, and the session's secrets wiped. */
static void
answer(struct idb_ctx *x, enum idb_err e)
{
	if (e != IDB_OK) {
		if (idb_err_status(e) >= 500)
			fprintf(stderr, "immidb-fcgi[%ld]: %s %s: %s\n", (long)getpid(), x->req->method,
			        x->route ? x->route->pattern : "(no route)", idb_err_str(e));
		idb_resp_error(x->resp, e, x->fields);
	}
	sodium_memzero(&x->sess, sizeof(x->sess));
}

int
idb_app_start(struct idb_app *a, struct idb_req *req, struct idb_resp *resp, struct idb_ctx **waiting)
{
	struct idb_ctx *x;
	enum idb_err e;

	*waiting = NULL;
	if ((x = idb_arena_calloc(req->arena, sizeof(*x))) == NULL) {
		idb_resp_error(resp, IDB_E_UNAVAILABLE, NULL);
		return 1;
	}
	x->app = a;
	x->req = req;
	x->resp = resp;
	x->now = time(NULL);
	idb_req_client_ip(req, &a->conf->proxies);
	if ((x->route = idb_route_find(idb_routes, idb_routes_n, req, &e)) == NULL) {
		if (e == IDB_E_METHOD_NOT_ALLOWED)
			allow_header(req, resp);
		goto out;
	}
	/* Maintenance: every call but health answers 503 (with Retry-After). */
	if (x->route->fn != idb_api_health && idb_app_maintenance(a) != 0) {
		e = IDB_E_UNAVAILABLE;
		goto out;
	}
	if (x->route->flags & IDB_RF_ORG) {
		e = org_request(x);
		if (x->waiting) {
			*waiting = x;
			return 0;
		}
		if (x->oh != NULL)
			idb_db_read_end(x->oh->db);
		goto out;
	}
	if ((x->route->flags & IDB_RF_SYSADMIN) && (e = idb_guard_sysadmin(x)) != IDB_OK)
		goto out;
	e = x->route->fn(x);
out:
	answer(x, e);
	return 1;
}

int
idb_app_complete(struct idb_app *a, struct idb_ctx *x, enum idb_complete how)
{
	struct idb_org_handle *oh = x->oh;
	sqlite3 *db = NULL;

	/* A handle of the org to lead with (none: only look): the one the
	 * request used, if the cache still holds it for this org, else the
	 * cache's current one. */
	if (how != IDB_COMPLETE_LOOK) {
		if (oh != NULL && oh->db == x->waiting_db && strcmp(oh->org_id, x->org.id) == 0)
			db = oh->db;
		else if (idb_cache_get(&a->cache, a->conf, a->reg, a->master, x->org.id, &oh) == IDB_OK)
			db = oh->db;
	}
	if (how == IDB_COMPLETE_WAIT)
		idb_logq_wait(db, x->org.id, &x->wait);
	else if (!idb_logq_poll(db, x->org.id, &x->wait))
		return 0;
	x->waiting = 0;
	answer(x, settled_answer(x, x->waiting_e, x->wait.r, x->wait.res));
	return 1;
}
