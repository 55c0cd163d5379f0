/* SPDX-License-Identifier: ISC */
#include "auth/settings.h"

#include <string.h>

#include "core/util.h"
#include "store/db.h"
#include "store/memo.h"

static const char sql_load[] =
    "SELECT name, require_mfa, ip_allowlist, session_idle_minutes, notify_sysadmin_access, notify_updates,"
    " integration_google, integration_microsoft, version FROM settings WHERE id = 1";
static const char sql_save[] =
    "UPDATE settings SET name = ?, require_mfa = ?, ip_allowlist = ?, session_idle_minutes = ?,"
    " notify_sysadmin_access = ?, notify_updates = ?, integration_google = ?, integration_microsoft = ?,"
    " updated_at = ?, version = version + 1 WHERE id = 1 AND version = ?";

/* Copies the settings without the unused tails of the allow-list's text and ranges (most of the struct). */
static void
copy_used(struct idb_settings *dst, const struct idb_settings *src)
{
	size_t n = strlen(src->ip_allowlist);

	memcpy(dst->name, src->name, strlen(src->name) + 1);
	dst->require_mfa = src->require_mfa;
	memcpy(dst->ip_allowlist, src->ip_allowlist, n + 1);
	dst->ips.n = src->ips.n;
	if (src->ips.n > 0)
		memcpy(dst->ips.v, src->ips.v, src->ips.n * sizeof(src->ips.v[0]));
	dst->idle_minutes = src->idle_minutes;
	dst->notify_sysadmin_access = src->notify_sysadmin_access;
	memcpy(dst->notify_updates, src->notify_updates, sizeof(dst->notify_updates));
	dst->google = src->google;
	dst->microsoft = src->microsoft;
	dst->version = src->version;
}

enum idb_err
idb_settings_load(sqlite3 *db, struct idb_settings *s)
{
	sqlite3_stmt *st = NULL;
	enum idb_err e = IDB_OK;
	const void *m;
	size_t n;
	int rc;

	if ((m = idb_memo_get(db, IDB_MEMO_SETTINGS, NULL, 0, &n)) != NULL && n == sizeof(*s)) {
		copy_used(s, m);
		return IDB_OK;
	}
	if (idb_db_cached(db, sql_load, &st) != IDB_OK)
		return IDB_E_DB;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		idb_db_text(s->name, sizeof(s->name), st, 0);
		s->require_mfa = sqlite3_column_int(st, 1);
		idb_db_text(s->ip_allowlist, sizeof(s->ip_allowlist), st, 2);
		s->idle_minutes = sqlite3_column_int64(st, 3);
		s->notify_sysadmin_access = sqlite3_column_int(st, 4);
		idb_db_text(s->notify_updates, sizeof(s->notify_updates), st, 5);
		s->google = sqlite3_column_int(st, 6);
		s->microsoft = sqlite3_column_int(st, 7);
		s->version = sqlite3_column_int64(st, 8);
		/* Stored lists were validated when written; a bad one fails closed (nobody in). */
		if (idb_cidr_list_parse(s->ip_allowlist, &s->ips) != IDB_OK)
			e = IDB_E_INTERNAL;
	} else
		e = IDB_E_DB;
	idb_db_done(st);
	if (e == IDB_OK)
		idb_memo_put(db, IDB_MEMO_SETTINGS, NULL, 0, s, sizeof(*s));
	return e;
}

enum idb_err
idb_settings_save(sqlite3 *db, struct idb_settings *s)
{
	char now[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL;
	int rc;

	idb_time_now(now);
	if (sqlite3_prepare_v2(db, sql_save, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, s->require_mfa);
	sqlite3_bind_text(st, 3, s->ip_allowlist, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, s->idle_minutes);
	sqlite3_bind_int(st, 5, s->notify_sysadmin_access);
	sqlite3_bind_text(st, 6, s->notify_updates, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, s->google);
	sqlite3_bind_int(st, 8, s->microsoft);
	sqlite3_bind_text(st, 9, now, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, s->version);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return IDB_E_DB;
	if (sqlite3_changes(db) != 1)
		return IDB_E_CONFLICT;
	s->version++;
	return IDB_OK;
}

enum idb_err
idb_settings_set_allowlist(struct idb_settings *s, const char *text)
{
	struct idb_cidr_list l;
	char item[IDB_CIDR_TEXT_MAX];
	size_t n, used = 0;
	enum idb_err e;

	if ((e = idb_cidr_list_parse(text, &l)) != IDB_OK)
		return e == IDB_E_TOOBIG ? IDB_E_VALIDATION : e;
	/* Normalise the text: entries as given, separated by ", ". */
	s->ip_allowlist[0] = '\0';
	while (*text != '\0') {
		while (*text == ',' || *text == ' ' || *text == '\t')
			text++;
		if (*text == '\0')
			break;
		n = strcspn(text, ", \t");
		if (n >= sizeof(item) || used + n + 3 > sizeof(s->ip_allowlist))
			return IDB_E_VALIDATION;
		if (used > 0) {
			memcpy(s->ip_allowlist + used, ", ", 2);
			used += 2;
		}
		memcpy(s->ip_allowlist + used, text, n);
		used += n;
		s->ip_allowlist[used] = '\0';
		text += n;
	}
	s->ips = l;
	return IDB_OK;
}

int
idb_settings_ip_allowed(const struct idb_settings *s, const char *ip)
{
	return s->ips.n == 0 || idb_cidr_list_contains(&s->ips, ip);
}

cJSON *
idb_settings_json(const struct idb_settings *s)
{
	cJSON *j = cJSON_CreateObject(), *list, *integ;
	const char *p = s->ip_allowlist;
	char item[IDB_CIDR_TEXT_MAX];
	size_t n;

	if (j == NULL)
		return NULL;
	cJSON_AddStringToObject(j, "name", s->name);
	cJSON_AddBoolToObject(j, "require_mfa", s->require_mfa);
	list = cJSON_AddArrayToObject(j, "ip_allowlist");
	while (list != NULL && *p != '\0') {
		while (*p == ',' || *p == ' ')
			p++;
		if (*p == '\0')
			break;
		n = strcspn(p, ", ");
		if (n < sizeof(item)) {
			memcpy(item, p, n);
			item[n] = '\0';
			cJSON_AddItemToArray(list, cJSON_CreateString(item));
		}
		p += n;
	}
	cJSON_AddNumberToObject(j, "session_idle_minutes", (double)s->idle_minutes);
	cJSON_AddBoolToObject(j, "notify_sysadmin_access", s->notify_sysadmin_access);
	cJSON_AddStringToObject(j, "notify_updates", s->notify_updates);
	integ = cJSON_AddObjectToObject(j, "integrations");
	if (integ != NULL) {
		cJSON_AddBoolToObject(integ, "google", s->google);
		cJSON_AddBoolToObject(integ, "microsoft", s->microsoft);
	}
	cJSON_AddNumberToObject(j, "version", (double)s->version);
	if (list == NULL || integ == NULL) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}
