/* SPDX-License-Identifier: ISC */
/*
 * immidb-admin maintenance on|off and announce-update: the deployment's
 * maintenance flag (the API answers 503 while it is on), and the notice of a
 * coming update to the orgs that asked to hear of one before it happens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/records.h"
#include "auth/settings.h"
#include "cli/cli.h"
#include "core/buf.h"
#include "core/util.h"
#include "outbox/outbox.h"
#include "store/db.h"
#include "valid/valid.h"

int
cmd_maintenance(struct cli *c)
{
	const char *v = c->argc == 1 ? c->argv[0] : NULL;

	if (v == NULL || (strcmp(v, "on") != 0 && strcmp(v, "off") != 0))
		return usage();
	/* Also with a registry that is behind: the flags table is in its first
	 * migration, and the flag is wanted at any point of an update. */
	if (open_registry(c, 1) != 0)
		return EXIT_FAILURE;
	if (idb_reg_flag_set(c->reg, "maintenance", v) != IDB_OK)
		return fail("maintenance", "cannot write the flag to the registry");
	/* Workers look at the registry every IDB_APP_REGISTRY_MS: once this
	 * returns, every one of them has seen the flag. */
	nanosleep(&(struct timespec){0, (IDB_APP_REGISTRY_MS * 2 + 50) * 1000000L}, NULL);
	printf("maintenance %s%s\n", v, strcmp(v, "on") == 0 ? ": the API answers 503 unavailable" : "");
	return 0;
}

/* The notice of one org, in its own transaction with nothing else. */
static enum idb_err
queue_notice(sqlite3 *db, const char *kind, const char *summary, const char *body)
{
	enum idb_err e;

	if ((e = idb_db_begin(db)) != IDB_OK)
		return e;
	if ((e = idb_outbox_queue(db, kind, "", summary, body)) == IDB_OK)
		e = idb_db_commit(db);
	if (e != IDB_OK)
		idb_db_rollback(db);
	return e;
}

/* The summary of an update_scheduled notice: one line, also the mail's Subject. */
#define ANNOUNCE_SUMMARY_MAX 200

int
cmd_announce_update(struct cli *c)
{
	static const char *const vals[] = {"--at", "--summary", NULL};
	static struct idb_settings s;
	const char *at = opt(c, "--at"), *summary = opt(c, "--summary");
	struct org_ids ids = {0, 0, NULL};
	char now[IDB_TIME_LEN], head[512];
	struct idb_buf body;
	struct idb_org o;
	size_t i, told = 0, active = 0;
	sqlite3 *db;
	int rc = 0, n;

	if (check_opts(c, vals, NULL) != 0 || at == NULL || summary == NULL)
		return usage();
	if (!idb_valid_time(at))
		return fail("--at", "must be a UTC time like 2026-12-05T02:00:00Z");
	idb_time_now(now);
	if (strncmp(at, now, 19) <= 0)
		return fail("--at", "must be in the future");
	/* One line: it is the notice's summary, and so the Subject of its mail. */
	if (!idb_utf8_valid(summary) || idb_utf8_chars(summary) < 1 || idb_utf8_chars(summary) > ANNOUNCE_SUMMARY_MAX ||
	    !idb_valid_text(summary, 0))
		return fail("--summary", "must be 1 to 200 characters of text on one line");
	n = snprintf(head, sizeof(head), "Update scheduled for %s: %s", at, summary);
	if (n < 0 || (size_t)n >= sizeof(head))
		return fail("--summary", "too long");
	if (open_registry(c, 0) != 0)
		return EXIT_FAILURE;
	if (idb_reg_org_list(c->reg, collect, &ids) != IDB_OK)
		return fail("announce-update", "cannot list the orgs");
	idb_buf_init(&body, 2048);
	idb_buf_addstr(&body, "An update of ImmiDB is scheduled.\r\n\r\nWhen: ");
	idb_buf_addstr(&body, at);
	idb_buf_addstr(&body, " (UTC)\r\nWhat: ");
	idb_buf_addstr(&body, summary);
	idb_buf_addstr(&body, "\r\n\r\nThe service may answer \"unavailable\" for a short while during the update. "
	                      "You receive this notice because your organization's setting notify_updates is \"before\".");
	for (i = 0; i < ids.n && body.data != NULL; i++) {
		if (strcmp(ids.v[i].state, "active") != 0)
			continue;
		active++;
		if (open_org(c, ids.v[i].slug, &o, &db, NULL) != 0) {
			rc = EXIT_FAILURE; /* open_org said why; the other orgs are still told */
			continue;
		}
		if (idb_settings_load(db, &s) != IDB_OK)
			rc = fail(o.slug, "cannot read the settings");
		else if (strcmp(s.notify_updates, "before") == 0) {
			if (queue_notice(db, "update_scheduled", head, body.data) != IDB_OK)
				rc = fail(o.slug, "cannot queue the notice");
			else {
				printf("%s: notified\n", o.slug);
				told++;
			}
		}
		idb_db_close(db);
	}
	if (body.data == NULL)
		rc = fail("announce-update", "out of memory");
	printf("%zu of %zu active orgs notified (the others hear after the update)\n", told, active);
	idb_buf_free(&body);
	free(ids.v);
	return rc;
}

/*
 * After a migration: the orgs that asked to hear afterwards (notify_updates
 * "after", the default). what: one line on what changed. 0, or EXIT_FAILURE
 * after a message if an org could not be told (the others still are).
 */
int
notify_update_done(struct cli *c, const char *what)
{
	static struct idb_settings s;
	struct org_ids ids = {0, 0, NULL};
	struct idb_buf body;
	struct idb_org o;
	size_t i, told = 0;
	sqlite3 *db;
	int rc = 0;

	if (idb_reg_org_list(c->reg, collect, &ids) != IDB_OK)
		return fail("update notice", "cannot list the orgs");
	idb_buf_init(&body, 2048);
	idb_buf_addstr(&body, "ImmiDB was updated.\r\n\r\nWhat changed: ");
	idb_buf_addstr(&body, what);
	idb_buf_addstr(&body, "\r\n\r\nYou receive this notice because your organization's setting notify_updates is "
	                      "\"after\".");
	for (i = 0; i < ids.n && body.data != NULL; i++) {
		if (strcmp(ids.v[i].state, "active") != 0)
			continue;
		if (open_org(c, ids.v[i].slug, &o, &db, NULL) != 0) {
			rc = EXIT_FAILURE;
			continue;
		}
		if (idb_settings_load(db, &s) != IDB_OK)
			rc = fail(o.slug, "cannot read the settings for the update notice");
		else if (strcmp(s.notify_updates, "before") != 0) {
			if (queue_notice(db, "update_done", "ImmiDB was updated", body.data) != IDB_OK)
				rc = fail(o.slug, "cannot queue the update notice");
			else
				told++;
		}
		idb_db_close(db);
	}
	if (body.data == NULL)
		rc = fail("update notice", "out of memory");
	else
		printf("update notice: %zu org%s told\n", told, told == 1 ? "" : "s");
	idb_buf_free(&body);
	free(ids.v);
	return rc;
}
