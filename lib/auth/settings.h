/* SPDX-License-Identifier: ISC */
/* The organization's settings (one row of its database). */
#ifndef IDB_AUTH_SETTINGS_H
#define IDB_AUTH_SETTINGS_H

#include <sqlite3.h>
#include <cjson/cJSON.h>
#include "core/cidr.h"
#include "core/err.h"

#define IDB_IDLE_MIN 1
#define IDB_IDLE_MAX 1440
#define IDB_ALLOWLIST_TEXT_MAX (IDB_CIDR_MAX * (IDB_CIDR_TEXT_MAX + 2))

/* A field added here must also be copied by copy_used in settings.c (the memo's copy). */
struct idb_settings {
	char name[801];
	int require_mfa;
	char ip_allowlist[IDB_ALLOWLIST_TEXT_MAX]; /* entries separated by ", " */
	struct idb_cidr_list ips;
	long long idle_minutes;
	int notify_sysadmin_access;
	char notify_updates[8];
	int google, microsoft;
	long long version;
};

enum idb_err idb_settings_load(sqlite3 *, struct idb_settings *);
/* Writes s if the stored version is s->version (then version + 1), else IDB_E_CONFLICT. */
enum idb_err idb_settings_save(sqlite3 *, struct idb_settings *);
/* Sets the allow-list from text (comma/space separated); IDB_E_VALIDATION if an entry is malformed. */
enum idb_err idb_settings_set_allowlist(struct idb_settings *, const char *text);
/* 1 if ip may reach the org (an empty list allows everyone). */
int idb_settings_ip_allowed(const struct idb_settings *, const char *ip);
/* The settings object of api.md; caller owns it. */
cJSON *idb_settings_json(const struct idb_settings *);

#endif
