/* SPDX-License-Identifier: ISC */
/* Organization settings (admin). */
#include "api/api.h"

#include <string.h>

#include "audit/changelog.h"
#include "store/db.h"

static int
cidr_ok(const char *s)
{
	struct idb_cidr c;

	return idb_cidr_parse(s, &c) == IDB_OK;
}

static const char *const updates[] = {"after", "before", NULL};
static const char *const providers[] = {"google", "microsoft", NULL};

static const struct idb_vfield patch_fields[] = {
	{"version", IDB_V_INT, IDB_VF_REQUIRED, 1, (long long)1 << 53, NULL, NULL, NULL},
	{"name", IDB_V_STRING, 0, 1, 200, NULL, NULL, NULL},
	{"require_mfa", IDB_V_BOOL, 0, 0, 0, NULL, NULL, NULL},
	{"ip_allowlist", IDB_V_STRLIST, 0, 0, IDB_CIDR_MAX, NULL, cidr_ok,
	 "must be IPv4/IPv6 addresses or CIDR ranges (no host bits past the prefix)"},
	{"session_idle_minutes", IDB_V_INT, 0, IDB_IDLE_MIN, IDB_IDLE_MAX, NULL, NULL, NULL},
	{"notify_sysadmin_access", IDB_V_BOOL, 0, 0, 0, NULL, NULL, NULL},
	{"notify_updates", IDB_V_ENUM, 0, 0, 0, updates, NULL, NULL},
	{"integrations", IDB_V_BOOLMAP, 0, 0, 0, providers, NULL, NULL},
};
#define NFIELDS (sizeof(patch_fields) / sizeof(patch_fields[0]))

/* The change-log row of a settings change: the keys whose value differs. */
static enum idb_err
settings_changed(const struct idb_ctx *x, const struct idb_settings *a, const struct idb_settings *b)
{
	cJSON *ja = idb_settings_json(a), *jb = idb_settings_json(b), *c = cJSON_CreateObject();
	const cJSON *f, *t;
	struct idb_actor who;
	enum idb_err e = IDB_OK;

	if (ja == NULL || jb == NULL || c == NULL)
		e = IDB_E_NOMEM;
	for (t = jb ? jb->child : NULL; t != NULL && e == IDB_OK; t = t->next) {
		if (strcmp(t->string, "version") == 0)
			continue;
		f = cJSON_GetObjectItemCaseSensitive(ja, t->string);
		if (!cJSON_Compare(f, t, 1))
			e = idb_chg_field(c, t->string, f, t);
	}
	idb_api_actor(x, &who);
	if (e == IDB_OK && c->child != NULL)
		e = idb_chg_append(x->oh->db, &who, "update", "settings", x->org.id, c);
	cJSON_Delete(ja);
	cJSON_Delete(jb);
	cJSON_Delete(c);
	return e;
}

enum idb_err
idb_api_settings_get(struct idb_ctx *x)
{
	return idb_api_reply(x, 200, idb_settings_json(x->settings));
}

enum idb_err
idb_api_settings_patch(struct idb_ctx *x)
{
	struct idb_vvalue v[NFIELDS];
	struct idb_settings *s;
	struct idb_buf list;
	const cJSON *it;
	sqlite3 *db = x->oh->db;
	enum idb_err e;

	if ((e = idb_api_body(x, patch_fields, NFIELDS, v)) != IDB_OK)
		return e;
	if (v[0].i != x->settings->version)
		return IDB_E_CONFLICT;
	if ((s = idb_arena_alloc(x->req->arena, sizeof(*s))) == NULL)
		return IDB_E_NOMEM;
	*s = *x->settings;
	if (v[1].present)
		memcpy(s->name, v[1].s, strlen(v[1].s) + 1);
	if (v[2].present)
		s->require_mfa = (int)v[2].i;
	if (v[3].present) {
		idb_buf_init(&list, IDB_ALLOWLIST_TEXT_MAX);
		cJSON_ArrayForEach(it, v[3].j)
		{
			if (list.len > 0)
				idb_buf_addstr(&list, ", ");
			e = idb_buf_addstr(&list, it->valuestring);
		}
		if (e == IDB_OK)
			e = idb_settings_set_allowlist(s, list.data ? list.data : "");
		idb_buf_free(&list);
		if (e != IDB_OK)
			return idb_api_invalid(x, "ip_allowlist", "is not a valid list of addresses");
		/* The caller must still get in afterwards. */
		if (!idb_settings_ip_allowed(s, x->req->client_ip))
			return IDB_E_WOULD_LOCK_OUT;
	}
	if (v[4].present)
		s->idle_minutes = v[4].i;
	if (v[5].present)
		s->notify_sysadmin_access = (int)v[5].i;
	if (v[6].present)
		memcpy(s->notify_updates, v[6].s, strlen(v[6].s) + 1);
	if (v[7].present) {
		cJSON_ArrayForEach(it, v[7].j)
		{
			if (strcmp(it->string, "google") == 0)
				s->google = cJSON_IsTrue(it);
			else
				s->microsoft = cJSON_IsTrue(it);
		}
	}
	if ((e = idb_db_begin(db)) != IDB_OK)
		return e;
	if ((e = idb_settings_save(db, s)) != IDB_OK || (e = settings_changed(x, x->settings, s)) != IDB_OK ||
	    (e = idb_auth_event(db, x->now, "settings_updated", x->user.email, x->req->client_ip, x->user.id, "")) != IDB_OK ||
	    (e = idb_db_commit(db)) != IDB_OK) {
		idb_db_rollback(db);
		return e;
	}
	return idb_api_reply(x, 200, idb_settings_json(s));
}
