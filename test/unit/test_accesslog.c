/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/audit/accesslog's list query (idb_log_each) on a real
 * SQLCipher org database with the org migrations: a few thousand mixed
 * entries, half written before 0008_access_log_indexes.sql and half after.
 * Every filter gives exactly what a brute-force filter over the entries as
 * written gives, both orders, paged with cursors; a filter on a rare actor
 * kind or a rare action uses its partial index (EXPLAIN QUERY PLAN of the
 * statement idb_log_each actually ran, caught with sqlite3_trace_v2), the
 * others walk the table by seq; the head query and the append-only trigger
 * stay rowid lookups; and a user's read touches no index when appended.
 * After 0009_checks_without_in_lists.sql the CHECKs of the log tables (and of
 * users and notifications) compile to comparisons, for this handle and for
 * one that was open while the migration ran, and still refuse what they did.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "audit/accesslog.h"
#include "audit/changelog.h"
#include "audit/logq.h"
#include "store/db.h"
#include "store/mig.h"
#include "store/plan.h"
#include "tmpdir.h"

#define ENTRIES 3000
#define MIG_INDEXES 8 /* sql/org/0008_access_log_indexes.sql */
#define MIG_CHECKS 9  /* sql/org/0009_checks_without_in_lists.sql */

/* One entry as written: what the brute-force filter looks at. */
struct ent {
	const char *kind, *action;
	char at[IDB_TIME_LEN];
};

struct world {
	char dir[256];
	sqlite3 *db;
	sqlite3 *other; /* opened before 0009, kept open across it */
	struct ent e[ENTRIES + 1]; /* by seq; [0] unused */
	long long n;
	char sql[2048]; /* the last list query idb_log_each ran */
	char head_sql[512];
};

static struct world W;

static const char *const kinds[] = {NULL, "user", "sysadmin", "system", "anonymous"};
static const char *const actions[] = {NULL, "record.read", "record.list", "record.reveal", "session.login",
                                      "sysadmin.access", "no.such"};

/* Keeps the text of the list and head queries as SQLite starts them. */
static int
trace(unsigned type, void *ctx, void *p, void *x)
{
	const char *sql = sqlite3_sql(p);

	(void)ctx;
	(void)x;
	if (type != SQLITE_TRACE_STMT || sql == NULL)
		return 0;
	/* No assertion here, inside SQLite: a text cut short fails the plan check instead. */
	if (strncmp(sql, "SELECT seq, at,", 15) == 0)
		snprintf(W.sql, sizeof(W.sql), "%s", sql);
	else if (strncmp(sql, "SELECT seq, hash FROM access_log", 32) == 0)
		snprintf(W.head_sql, sizeof(W.head_sql), "%s", sql);
	return 0;
}

/* A small deterministic generator, so a failure can be repeated. */
static unsigned
next(unsigned *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* The mix of a busy org: mostly users' reads, a few of everything else. */
static void
pick(unsigned *s, const char **kind, const char **action)
{
	static const char *const user_other[] = {"record.create", "record.update", "record.reveal", "session.login",
	                                         "session.logout"};
	static const char *const sysadmin[] = {"sysadmin.access", "record.read", "record.list"};
	static const char *const sys[] = {"backup.create", "schema.migrate", "email.send"};
	unsigned r = next(s) % 100;

	if (r < 84) {
		*kind = "user";
		*action = next(s) % 3 ? "record.read" : "record.list";
	} else if (r < 92) {
		*kind = "user";
		*action = user_other[next(s) % 5];
	} else if (r < 95) {
		*kind = "anonymous";
		*action = "session.login_failed";
	} else if (r < 98) {
		*kind = "sysadmin";
		*action = sysadmin[next(s) % 3];
	} else {
		*kind = "system";
		*action = sys[next(s) % 3];
	}
}

static void
exec(const char *sql)
{
	if (idb_db_exec(W.db, sql) != IDB_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(W.db));
}

/* Appends one entry (inside the caller's transaction) and remembers it. */
static void
add(const char *kind, const char *action, const char *at)
{
	struct idb_log_entry e;

	assert_true(W.n < ENTRIES);
	memset(&e, 0, sizeof(e));
	e.actor_kind = kind;
	e.actor_id = "u_1";
	e.actor_email = "ana@acme.test";
	e.via = "app";
	e.ip = "203.0.113.7";
	e.action = action;
	e.target = "clients/c_1";
	e.outcome = "ok";
	memcpy(e.at, at, IDB_TIME_LEN);
	assert_int_equal(idb_log_append(W.db, &e), IDB_OK);
	assert_int_equal(e.seq, W.n + 1);
	W.n = e.seq;
	W.e[e.seq].kind = kind;
	W.e[e.seq].action = action;
	memcpy(W.e[e.seq].at, at, IDB_TIME_LEN);
}

/* The time t seconds after 08:00 on the test's day. */
static void
stamp(long long t, char at[IDB_TIME_LEN])
{
	char b[64];

	snprintf(b, sizeof(b), "2026-11-27T%02lld:%02lld:%02lld.000Z", 8 + t / 3600, t / 60 % 60, t % 60);
	assert_int_equal(strlen(b), IDB_TIME_LEN - 1);
	memcpy(at, b, IDB_TIME_LEN);
}

/*
 * Entries until the log has `upto`, in one transaction; every fifth one's
 * time is a little early (a clock that stepped back).
 */
static void
fill(unsigned *s, long long upto)
{
	const char *kind, *action;
	char at[IDB_TIME_LEN];
	long long t;

	exec("BEGIN IMMEDIATE");
	while (W.n < upto) {
		pick(s, &kind, &action);
		t = W.n + 1 - ((W.n + 1) % 5 == 0 ? 3 : 0);
		stamp(t, at);
		add(kind, action, at);
	}
	exec("COMMIT");
}

static int
before_indexes(const struct idb_mig *m, void *arg)
{
	(void)arg;
	return m->version >= MIG_INDEXES;
}

static void
migrate(idb_mig_cb cb)
{
	char err[512] = "";
	int applied;

	if (idb_mig_apply(W.db, &idb_mig_org, cb, NULL, &applied, err, sizeof(err)) != IDB_OK)
		fail_msg("migrate: %s", err);
}

static int
group_setup(void **state)
{
	unsigned char key[IDB_KEY_LEN];
	char path[300];
	unsigned s = 20261127;

	(void)state;
	if (sodium_init() < 0)
		return -1;
	memcpy(W.dir, "/tmp/idb-alog.XXXXXX", sizeof("/tmp/idb-alog.XXXXXX"));
	if (mkdtemp(W.dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/org.db", W.dir);
	randombytes_buf(key, sizeof(key));
	if (idb_db_open(path, key, IDB_DB_CREATE, &W.db) != IDB_OK)
		return -1;
	/* Half the log under the indexes of 0004, half after 0008 replaced them. */
	migrate(before_indexes);
	fill(&s, ENTRIES / 2);
	if (idb_db_open(path, key, 0, &W.other) != IDB_OK || idb_db_exec(W.other, "SELECT count(*) FROM users") != IDB_OK)
		return -1;
	migrate(NULL);
	if (idb_mig_check(W.db, &idb_mig_org) != IDB_OK)
		return -1;
	fill(&s, ENTRIES - 40);
	sqlite3_trace_v2(W.db, SQLITE_TRACE_STMT, trace, NULL);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	idb_db_close(W.other);
	idb_db_close(W.db);
	rmtree(W.dir);
	return 0;
}

/* The EXPLAIN QUERY PLAN details of sql, joined by "; ". */
static void
plan(const char *sql, char *out, size_t len)
{
	char q[2100];
	sqlite3_stmt *st;
	size_t n = 0;
	int rc;

	assert_true(snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql) < (int)sizeof(q));
	if (sqlite3_prepare_v2(W.db, q, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", q, sqlite3_errmsg(W.db));
	out[0] = '\0';
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int k = snprintf(out + n, len - n, "%s%s", n ? "; " : "", (const char *)sqlite3_column_text(st, 3));

		assert_true(k >= 0 && (size_t)k < len - n);
		n += (size_t)k;
	}
	assert_int_equal(rc, SQLITE_DONE);
	sqlite3_finalize(st);
}

static long long
count(const char *sql)
{
	sqlite3_stmt *st;
	long long v;

	if (sqlite3_prepare_v2(W.db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(W.db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int
is_read(const char *action)
{
	return strcmp(action, "record.read") == 0 || strcmp(action, "record.list") == 0;
}

static int
matches(long long seq, const struct idb_log_filter *f)
{
	const struct ent *e = &W.e[seq];

	return (f->actor_kind == NULL || strcmp(e->kind, f->actor_kind) == 0) &&
	       (f->action == NULL || strcmp(e->action, f->action) == 0) &&
	       (f->since == NULL || strcmp(e->at, f->since) >= 0);
}

/* What idb_log_each handed over: the seqs, each entry checked against what was written. */
struct got {
	long long seq[ENTRIES];
	int n;
};

static void
collect(cJSON *j, long long seq, void *arg)
{
	struct got *g = arg;
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "actor");

	assert_true(seq >= 1 && seq <= W.n);
	assert_true(g->n < ENTRIES);
	assert_int_equal((long long)cJSON_GetObjectItemCaseSensitive(j, "seq")->valuedouble, seq);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(a, "kind")->valuestring, W.e[seq].kind);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "action")->valuestring, W.e[seq].action);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "at")->valuestring, W.e[seq].at);
	assert_int_equal(strlen(cJSON_GetObjectItemCaseSensitive(j, "hash")->valuestring), 64);
	g->seq[g->n++] = seq;
}

/*
 * The plan of the list query idb_log_each just ran, for f: a rare actor kind
 * or action on its partial index, anything else on the table by seq; the
 * order never sorted apart, a newest-first cursor a range of the search.
 */
static void
check_plan(const struct idb_log_filter *f)
{
	int rare_kind = f->actor_kind != NULL && strcmp(f->actor_kind, "user") != 0;
	int rare_action = f->action != NULL && !is_read(f->action);
	char p[1024];

	plan(W.sql, p, sizeof(p));
	if (rare_kind && rare_action) {
		if (strstr(p, "USING INDEX access_log_actor_rare (actor_kind=? AND seq>?") == NULL &&
		    strstr(p, "USING INDEX access_log_action_rare (action=? AND seq>?") == NULL)
			fail_msg("no partial index: %s\n%s", p, W.sql);
	} else if (rare_kind) {
		if (strstr(p, "USING INDEX access_log_actor_rare (actor_kind=? AND seq>?") == NULL)
			fail_msg("not on access_log_actor_rare: %s\n%s", p, W.sql);
	} else if (rare_action) {
		if (strstr(p, "USING INDEX access_log_action_rare (action=? AND seq>?") == NULL)
			fail_msg("not on access_log_action_rare: %s\n%s", p, W.sql);
	} else if (strstr(p, "SEARCH TABLE access_log USING INTEGER PRIMARY KEY (rowid>?") == NULL ||
	           strstr(p, "INDEX") != NULL)
		fail_msg("not by seq: %s\n%s", p, W.sql);
	if (strstr(p, "TEMP B-TREE") != NULL || strstr(p, "SCAN") != NULL)
		fail_msg("sorts or scans: %s\n%s", p, W.sql);
	if (f->before_seq != 0 && strstr(p, "<?)") == NULL)
		fail_msg("the cursor is not part of the search: %s\n%s", p, W.sql);
}

/*
 * Pages through the log with f (limit per page, 0: one call for all) and
 * compares with the brute-force filter, the cursor being the last seq of a
 * page as GET .../access-log makes it.
 */
static void
walk(const char *kind, const char *action, const char *since, int newest, int limit)
{
	static struct got g;
	struct idb_log_filter f;
	long long want[ENTRIES], seq;
	int nwant = 0, pos = 0, pages = 0;

	for (seq = newest ? W.n : 1; seq >= 1 && seq <= W.n; seq += newest ? -1 : 1) {
		memset(&f, 0, sizeof(f));
		f.actor_kind = kind;
		f.action = action;
		f.since = since;
		if (matches(seq, &f))
			want[nwant++] = seq;
	}
	memset(&f, 0, sizeof(f));
	f.actor_kind = kind;
	f.action = action;
	f.since = since;
	f.newest_first = newest;
	f.limit = limit;
	for (;;) {
		g.n = 0;
		W.sql[0] = '\0';
		assert_int_equal(idb_log_each(W.db, &f, collect, &g), IDB_OK);
		assert_true(W.sql[0] != '\0');
		check_plan(&f);
		pages++;
		assert_true(g.n <= nwant - pos);
		if (limit > 0)
			assert_true(g.n <= limit);
		if (g.n > 0 && memcmp(g.seq, want + pos, (size_t)g.n * sizeof(g.seq[0])) != 0)
			fail_msg("kind %s action %s since %s %s limit %d: page %d differs", kind ? kind : "-",
			         action ? action : "-", since ? since : "-", newest ? "newest" : "oldest", limit,
			         pages);
		pos += g.n;
		if (limit == 0 || g.n < limit)
			break;
		if (newest)
			f.before_seq = g.seq[g.n - 1];
		else
			f.after_seq = g.seq[g.n - 1];
	}
	if (pos != nwant)
		fail_msg("kind %s action %s since %s %s limit %d: %d of %d entries", kind ? kind : "-",
		         action ? action : "-", since ? since : "-", newest ? "newest" : "oldest", limit, pos, nwant);
}

/* ---- tests ---- */

static void
every_filter_gives_what_a_brute_force_filter_gives(void **state)
{
	static const char *const sinces[] = {NULL, "2026-11-27T08:25:00.000Z"};
	size_t k, a, s;
	int newest;

	(void)state;
	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		for (a = 0; a < sizeof(actions) / sizeof(actions[0]); a++)
			for (s = 0; s < 2; s++)
				for (newest = 0; newest < 2; newest++) {
					walk(kinds[k], actions[a], sinces[s], newest, 37);
					walk(kinds[k], actions[a], sinces[s], newest, 0);
				}
	/* Pages of one, and pages that end exactly where the entries do. */
	walk("sysadmin", NULL, NULL, 1, 1);
	walk(NULL, "session.login_failed", NULL, 0, 1);
	walk("system", NULL, NULL, 1, (int)count("SELECT count(*) FROM access_log WHERE actor_kind = 'system'"));
}

static void
cursors_start_and_end_where_they_say(void **state)
{
	static struct got g;
	struct idb_log_filter f;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.newest_first = 1;
	f.actor_kind = "anonymous";
	f.before_seq = 1;
	g.n = 0;
	assert_int_equal(idb_log_each(W.db, &f, collect, &g), IDB_OK);
	assert_int_equal(g.n, 0);
	/* A cursor past the end, and one in the middle, with the rare and the common kind. */
	f.before_seq = W.n + 100;
	f.limit = 3;
	assert_int_equal(idb_log_each(W.db, &f, collect, &g), IDB_OK);
	assert_int_equal(g.n, 3);
	assert_true(g.seq[0] > g.seq[1] && g.seq[1] > g.seq[2]);
	assert_string_equal(W.e[g.seq[0]].kind, "anonymous");
	check_plan(&f);
	f.actor_kind = "user";
	f.before_seq = 1000;
	g.n = 0;
	assert_int_equal(idb_log_each(W.db, &f, collect, &g), IDB_OK);
	assert_int_equal(g.n, 3);
	assert_true(g.seq[0] < 1000 && g.seq[2] < g.seq[1]);
	check_plan(&f);
	/* Oldest first from the middle, on the action index. */
	memset(&f, 0, sizeof(f));
	f.action = "session.login_failed";
	f.after_seq = W.n / 2;
	f.limit = 2;
	g.n = 0;
	assert_int_equal(idb_log_each(W.db, &f, collect, &g), IDB_OK);
	assert_int_equal(g.n, 2);
	assert_true(g.seq[0] > W.n / 2 && g.seq[1] > g.seq[0]);
	check_plan(&f);
}

static void
only_the_partial_indexes_remain_and_they_hold_the_rare_entries(void **state)
{
	sqlite3_stmt *st;
	long long seq, kinds_rare = 0, actions_rare = 0;
	int n = 0;

	(void)state;
	assert_int_equal(sqlite3_prepare_v2(W.db, "PRAGMA index_list(access_log)", -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);

		assert_true(strcmp(name, "access_log_actor_rare") == 0 || strcmp(name, "access_log_action_rare") == 0);
		assert_int_equal(sqlite3_column_int(st, 4), 1); /* partial */
		n++;
	}
	sqlite3_finalize(st);
	assert_int_equal(n, 2);
	for (seq = 1; seq <= W.n; seq++) {
		kinds_rare += strcmp(W.e[seq].kind, "user") != 0;
		actions_rare += !is_read(W.e[seq].action);
	}
	/* Both halves of the log are in them: the one before 0008 was indexed by it. */
	assert_int_equal(count("SELECT count(*) FROM access_log INDEXED BY access_log_actor_rare"
	                       " WHERE actor_kind <> 'user'"),
	                 kinds_rare);
	assert_int_equal(count("SELECT count(*) FROM access_log INDEXED BY access_log_action_rare"
	                       " WHERE action NOT IN ('record.read', 'record.list')"),
	                 actions_rare);
	assert_true(kinds_rare > 50 && kinds_rare < W.n / 4);
	assert_true(actions_rare > kinds_rare && actions_rare < W.n / 4);
}

static void
head_and_append_only_trigger_stay_rowid_lookups(void **state)
{
	static const char next_seq[] = "SELECT coalesce(max(seq), 0) + 1 FROM access_log";
	unsigned char head[32];
	long long size;
	char p[512];

	(void)state;
	W.head_sql[0] = '\0';
	assert_int_equal(idb_log_head(W.db, &size, head), IDB_OK);
	assert_int_equal(size, W.n);
	assert_true(W.head_sql[0] != '\0');
	/* The last row of the table's b-tree: no index, no sort. */
	plan(W.head_sql, p, sizeof(p));
	assert_string_equal(p, "SCAN TABLE access_log");
	assert_non_null(strstr(W.head_sql, "ORDER BY seq DESC LIMIT 1"));
	/* The trigger's subquery (as 0006 wrote it): the max of the rowid, one seek. */
	assert_int_equal(count("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND "
	                       "name = 'access_log_append_only' AND instr(sql, '(SELECT coalesce(max(seq), 0) + 1 "
	                       "FROM access_log)') > 0"),
	                 1);
	plan(next_seq, p, sizeof(p));
	assert_string_equal(p, "SEARCH TABLE access_log");
}

/* Pages written by 20 appends of this kind, each its own commit. */
static int
pages_written(const char *kind, const char *action)
{
	int cur, hi, before, after, i;
	char at[IDB_TIME_LEN];

	sqlite3_db_status(W.db, SQLITE_DBSTATUS_CACHE_WRITE, &cur, &hi, 0);
	before = cur;
	for (i = 0; i < 20; i++) {
		stamp(7200 + i, at);
		exec("BEGIN IMMEDIATE");
		add(kind, action, at);
		exec("COMMIT");
	}
	sqlite3_db_status(W.db, SQLITE_DBSTATUS_CACHE_WRITE, &cur, &hi, 0);
	after = cur;
	return after - before;
}

static void
a_users_read_writes_only_the_table(void **state)
{
	int reads, rare;

	(void)state;
	reads = pages_written("user", "record.read");
	rare = pages_written("sysadmin", "sysadmin.access");
	print_message("pages written by 20 appends: user reads %d, sysadmin entries %d\n", reads, rare);
	/*
	 * A table leaf each (a new leaf and its parent now and then: 28 here),
	 * where the indexes of 0004 made it 80; the rare ones add two index leaves.
	 */
	assert_true(reads < 2 * 20);
	assert_true(rare >= reads + 2 * 20);
}

/* The statements that write each table with a CHECK list, as the code writes them. */
static const char *const writes[] = {
    "INSERT OR FAIL INTO access_log (seq, at, actor_kind, actor_id, actor_email, via, ip, action, target, reason,"
    " outcome, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "INSERT OR FAIL INTO change_log (seq, at, actor_kind, actor_id, actor_email, action, entity, entity_id, changes)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "UPDATE users SET role = ? WHERE id = ?",
    "INSERT INTO notifications (id, at, kind, summary, body) VALUES (?, ?, ?, ?, ?)",
};

/* How many temporary b-trees (OpenEphemeral) one run of sql builds on db. */
static int
ephemeral(sqlite3 *db, const char *sql)
{
	char q[1024];
	sqlite3_stmt *st;
	int n = 0;

	snprintf(q, sizeof(q), "EXPLAIN %s", sql);
	if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", q, sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW)
		n += strcmp((const char *)sqlite3_column_text(st, 1), "OpenEphemeral") == 0;
	sqlite3_finalize(st);
	return n;
}

static void
checks_build_no_temporary_btree_in_either_handle(void **state)
{
	size_t i;

	(void)state;
	/* Open while 0009 ran: its next statement finds the schema cookie moved
	 * and reads the schema again (a prepare alone does not look). */
	assert_int_equal(idb_db_exec(W.other, "SELECT count(*) FROM users"), IDB_OK);
	for (i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		assert_int_equal(ephemeral(W.db, writes[i]), 0);
		assert_int_equal(ephemeral(W.other, writes[i]), 0);
	}
	assert_int_equal(count("SELECT count(*) FROM sqlite_master WHERE instr(sql, 'IN (''') > 0 AND name IN "
	                       "('access_log', 'change_log', 'users', 'notifications')"),
	                 0);
	assert_int_equal(count("SELECT count(*) FROM sqlite_master WHERE name = 'migration_0009_check'"), 0);
	{
		sqlite3_stmt *st;

		assert_int_equal(sqlite3_prepare_v2(W.db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
		sqlite3_finalize(st);
	}
}

/* Runs one row of a write on the other handle; the SQLite result code. */
static int
try_write(const char *sql, const char *const *v, int n)
{
	sqlite3_stmt *st;
	int i, rc;

	if (sqlite3_prepare_v2(W.other, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(W.other));
	for (i = 0; i < n; i++)
		sqlite3_bind_text(st, i + 1, v[i], -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc;
}

/* v[at] = bad is refused by a CHECK; v[at] is then left at ok for what follows. */
static void
refused(const char *sql, const char **v, int n, int at, const char *bad, const char *ok)
{
	v[at] = bad;
	assert_int_equal(try_write(sql, v, n), SQLITE_CONSTRAINT);
	v[at] = ok;
}

static void
checks_still_accept_and_refuse_the_same_values(void **state)
{
	static const char *const kinds_ok[] = {"user", "sysadmin", "system", "anonymous"};
	static const char *const kinds_bad[] = {"robot", "User", "user ", "", "' OR 1=1 --"};
	const char *al[14] = {NULL, "2026-11-27T09:00:00.000Z", NULL, "", "", "app", "", "x", "", "", "ok", "", "h", "h"};
	const char *cl[9] = {"-1", "2026-11-27T09:00:00.000Z", "user", "u_1", "a@b.test", "update", "client", "c_1", "{}"};
	const char *us[7] = {"u_chk", "chk@acme.test", "Chk", "member", "x", "t", "t"};
	const char *no[5] = {"n_chk", "t", "export", "s", "b"};
	char seq[24];
	size_t i;

	(void)state;
	assert_int_equal(sqlite3_exec(W.other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	snprintf(seq, sizeof(seq), "%lld", W.n + 1);
	al[0] = seq;
	for (i = 0; i < sizeof(kinds_bad) / sizeof(kinds_bad[0]); i++)
		refused(writes[0], al, 14, 2, kinds_bad[i], "user");
	refused(writes[0], al, 14, 5, "web", "server");
	refused(writes[0], al, 14, 10, "maybe", "denied");
	for (i = 0; i < sizeof(kinds_ok) / sizeof(kinds_ok[0]); i++) {
		snprintf(seq, sizeof(seq), "%lld", W.n + 1 + (long long)i);
		al[2] = kinds_ok[i];
		assert_int_equal(try_write(writes[0], al, 14), SQLITE_DONE);
	}
	refused(writes[1], cl, 9, 2, "anonymous", "system"); /* the change log has no anonymous actor */
	refused(writes[1], cl, 9, 5, "upsert", "delete");
	assert_int_equal(try_write(writes[1], cl, 9), SQLITE_DONE);
	refused(writes[2], us, 7, 3, "owner", "readonly");
	assert_int_equal(try_write(writes[2], us, 7), SQLITE_DONE);
	us[1] = "u_chk"; /* UPDATE users SET role = ?1 WHERE id = ?2 */
	refused(writes[3], us, 2, 0, "superuser", "admin");
	assert_int_equal(try_write(writes[3], us, 2), SQLITE_DONE);
	refused(writes[4], no, 5, 2, "spam", "lockout");
	assert_int_equal(try_write(writes[4], no, 5), SQLITE_DONE);
	/* Nothing of this stays: the other tests count the log. */
	assert_int_equal(sqlite3_exec(W.other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
}

static int
before_checks(const struct idb_mig *m, void *arg)
{
	(void)arg;
	return m->version >= MIG_CHECKS;
}

/* 0009 on a schema whose text is not the one 0001-0005 wrote: refused whole. */
static void
checks_migration_refuses_an_unexpected_text_and_changes_nothing(void **state)
{
	unsigned char key[IDB_KEY_LEN];
	char path[300], err[512] = "";
	sqlite3 *db, *keep = W.db;
	int applied = 0, v = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/odd.db", W.dir);
	randombytes_buf(key, sizeof(key));
	assert_int_equal(idb_db_open(path, key, IDB_DB_CREATE, &db), IDB_OK);
	assert_int_equal(idb_mig_apply(db, &idb_mig_org, before_checks, NULL, &applied, err, sizeof(err)), IDB_OK);
	/* The same CHECK, written by hand with other spacing. */
	assert_int_equal(idb_db_exec(db, "PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = replace(sql, "
	                                 "'CHECK (role IN (', 'CHECK(role IN (') WHERE name = 'users'; "
	                                 "PRAGMA writable_schema = OFF"),
	                 IDB_OK);
	sqlite3_close(db);
	assert_int_equal(idb_db_open(path, key, 0, &db), IDB_OK);
	assert_int_not_equal(idb_mig_apply(db, &idb_mig_org, NULL, NULL, &applied, err, sizeof(err)), IDB_OK);
	assert_non_null(strstr(err, "0009_checks_without_in_lists.sql"));
	assert_int_equal(idb_mig_current(db, &idb_mig_org, &v), IDB_OK);
	assert_int_equal(v, MIG_CHECKS - 1);
	W.db = db; /* count() reads W.db */
	assert_int_equal(count("SELECT count(*) FROM sqlite_master WHERE name = 'access_log' AND "
	                       "instr(sql, 'actor_kind IN (''user''') > 0"),
	                 1);
	assert_int_equal(count("SELECT count(*) FROM sqlite_master WHERE name = 'migration_0009_check'"), 0);
	W.db = keep;
	idb_db_close(db);
}

/* One entry of org o_q in the group commit, with plan p (or none): pending (0) or settled at once (1). */
static int
submit_plan(sqlite3 *db, struct idb_logq_wait *w, const struct idb_plan *p)
{
	struct idb_log_entry e;

	memset(&e, 0, sizeof(e));
	e.actor_kind = "user";
	e.actor_id = "u_1";
	e.actor_email = "ana@acme.test";
	e.via = "app";
	e.ip = "203.0.113.7";
	e.action = p != NULL ? "record.update" : "record.read";
	e.target = "clients/c_1";
	e.outcome = "ok";
	return idb_logq_submit(db, "o_q", &e, p != NULL ? p->b.data : NULL, p != NULL ? p->b.len : 0, w);
}

/* One read entry of org o_q in the group commit: pending (0) or settled at once (1). */
static int
submit(sqlite3 *db, struct idb_logq_wait *w)
{
	return submit_plan(db, w, NULL);
}

/*
 * A new org database (name, in the test's folder), migrated and opened as the
 * workers open it (with the write queue); this process owns the first
 * worker's slots of the group commit. path gets its path, key its key.
 */
static sqlite3 *
queued_org(const char *name, char *path, size_t size, unsigned char key[IDB_KEY_LEN])
{
	char err[512] = "";
	sqlite3 *db = NULL;
	int applied = 0;

	snprintf(path, size, "%s/%s", W.dir, name);
	randombytes_buf(key, IDB_KEY_LEN);
	assert_int_equal(idb_db_open(path, key, IDB_DB_CREATE, &db), IDB_OK);
	assert_int_equal(idb_mig_apply(db, &idb_mig_org, NULL, NULL, &applied, err, sizeof(err)), IDB_OK);
	idb_db_close(db);
	assert_int_equal(idb_db_open(path, key, IDB_DB_QUEUE, &db), IDB_OK);
	assert_int_equal(idb_logq_init(1), IDB_OK);
	idb_logq_own(0);
	return db;
}

/*
 * Lets go of a queue held as by a process outside the pool (immidb-admin):
 * that moves no epoch, so the workers try it again only once
 * IDB_LOGQ_RETRY_NS has passed since their last failed try.
 */
static void
outside_lets_go(int fd)
{
	struct timespec t = {0, 2 * IDB_LOGQ_RETRY_NS};

	assert_int_equal(flock(fd, LOCK_UN), 0);
	close(fd);
	nanosleep(&t, NULL);
}

/*
 * A worker's requests in hand each wait on a slot of their own. One that
 * a leader has settled keeps its slot until the request has read its
 * result: a request submitted meanwhile takes another slot, so the first
 * still finds its own result (before, it found the new ticket there and
 * answered 503).
 */
static void
a_settled_slot_is_not_taken_again_before_its_request_read_it(void **state)
{
	struct idb_logq_wait w1, w2, w3;
	unsigned char key[IDB_KEY_LEN], head[32];
	char path[300];
	sqlite3 *db, *keep = W.db;
	long long size = 0, bad = 0;
	int fd, ok = 0;

	(void)state;
	db = queued_org("q.db", path, sizeof(path), key);

	/* The queue held as by another process: both wait. */
	assert_true((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	assert_int_equal(submit(db, &w1), 0);
	assert_int_equal(submit(db, &w2), 0);
	assert_int_not_equal(w1.slot, w2.slot);
	assert_int_equal(idb_logq_poll(db, "o_q", &w1) + idb_logq_poll(db, "o_q", &w2), 0);
	outside_lets_go(fd);
	/* The second leads both; the first has not looked yet. */
	assert_int_equal(idb_logq_poll(db, "o_q", &w2), 1);
	assert_int_equal(w2.r, IDB_OK);
	/* A third, with the queue free, goes through at once, in a slot of its own. */
	assert_int_equal(submit(db, &w3), 1);
	assert_int_equal(w3.r, IDB_OK);
	assert_int_equal(idb_logq_poll(db, "o_q", &w1), 1);
	assert_int_equal(w1.r, IDB_OK);
	assert_int_equal(w1.res, IDB_OK);
	W.db = db; /* count() reads W.db */
	assert_int_equal(count("SELECT count(*) FROM access_log WHERE action = 'record.read'"), 3);
	W.db = keep;
	/* The two of one batch chain on to each other (the second without a head lookup). */
	assert_int_equal(idb_log_verify(db, &ok, &size, head, &bad), IDB_OK);
	assert_true(ok);
	assert_int_equal(size, 3);
	idb_db_close(db);
}

static long long
mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/*
 * A look at a queue that failed is not made again (no flock call) while no
 * worker has let go of a queue since and IDB_LOGQ_RETRY_NS has not passed;
 * a queue let go by a worker (here, another org's handle in this process)
 * brings the next look at once, and one let go outside the pool is found
 * after that time. The entry is then carried as before.
 */
static void
a_failed_look_at_a_queue_waits_for_a_release_or_the_retry_time(void **state)
{
	struct idb_logq_wait w;
	unsigned char key[IDB_KEY_LEN];
	char path[300], path2[300];
	sqlite3 *db, *db2, *keep = W.db;
	unsigned long t0, t1;
	long long start, spent;
	int fd, i, polls = 50;

	(void)state;
	db = queued_org("q5.db", path, sizeof(path), key);
	db2 = queued_org("q6.db", path2, sizeof(path2), key);
	assert_true((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	t0 = idb_logq_tries();
	assert_int_equal(submit(db, &w), 0);
	assert_int_equal(idb_logq_tries(), t0 + 1);
	start = mono_ns();
	for (i = 0; i < polls; i++) {
		/* A look not made still ends the handle's read transaction, as a try does:
		 * a request in hand must not keep a snapshot that the next one would read in. */
		assert_int_equal(idb_db_read_begin(db), IDB_OK);
		assert_int_equal(sqlite3_get_autocommit(db), 0);
		assert_int_equal(idb_logq_poll(db, "o_q", &w), 0);
		assert_int_equal(sqlite3_get_autocommit(db), 1);
	}
	spent = mono_ns() - start;
	t1 = idb_logq_tries();
	/* One more try per retry time the loop took (none, unless this machine stalled). */
	assert_true(t1 - (t0 + 1) <= (unsigned long)(spent / IDB_LOGQ_RETRY_NS));
	/* A worker lets go of a queue: the next look tries again (and fails: fd still holds it). */
	assert_int_equal(idb_db_queue_try_hold(db2), 1);
	idb_db_queue_release(db2);
	assert_int_equal(idb_logq_poll(db, "o_q", &w), 0);
	assert_int_equal(idb_logq_tries(), t1 + 1);
	/* Let go outside the pool: found after the retry time, and the entry goes through. */
	outside_lets_go(fd);
	assert_int_equal(idb_logq_poll(db, "o_q", &w), 1);
	assert_int_equal(w.r, IDB_OK);
	W.db = db; /* count() reads W.db */
	assert_int_equal(count("SELECT count(*) FROM access_log"), 1);
	W.db = keep;
	idb_db_close(db2);
	idb_db_close(db);
}

/*
 * A leader whose transaction does not begin (SQLite's write lock held
 * elsewhere past the busy timeout) carries nothing, and its own request
 * answers 503. Its entry must not stay pending: the next leader took it
 * and wrote it (with its plan, for a PATCH) after the answer had said
 * nothing was done. It is withdrawn before the queue is let go.
 */
static void
an_entry_whose_leader_could_not_begin_is_never_written_later(void **state)
{
	struct idb_logq_wait w1, w2;
	unsigned char key[IDB_KEY_LEN];
	char path[300];
	sqlite3 *db, *other, *keep = W.db;

	(void)state;
	db = queued_org("q2.db", path, sizeof(path), key);
	assert_int_equal(idb_db_open(path, key, 0, &other), IDB_OK);
	sqlite3_busy_timeout(db, 50); /* not the 10 s of the real handler */

	/* SQLite's write lock taken without the queue: the leader cannot begin. */
	assert_int_equal(idb_db_exec(other, "BEGIN IMMEDIATE"), IDB_OK);
	assert_int_equal(submit(db, &w1), 1);
	assert_int_equal(w1.r, IDB_E_UNAVAILABLE);
	assert_int_equal(idb_db_exec(other, "ROLLBACK"), IDB_OK);
	/* The next leader carries its own entry only. */
	assert_int_equal(submit(db, &w2), 1);
	assert_int_equal(w2.r, IDB_OK);
	W.db = db; /* count() reads W.db */
	assert_int_equal(count("SELECT count(*) FROM access_log"), 1);
	W.db = keep;
	idb_db_close(other);
	idb_db_close(db);
}

/*
 * Whether one run of sql on db may abort the statement: an instruction
 * that stops it with ABORT (p2 of Halt and HaltIfNull; the triggers'
 * programs are listed too). Such a statement, when it may also write more
 * than one row (a trigger makes any insert so, to SQLite), keeps a
 * statement journal: a copy of each page before its first change.
 */
static int
may_abort(sqlite3 *db, const char *sql)
{
	char q[1024];
	sqlite3_stmt *st;
	const char *op;
	int n = 0;

	snprintf(q, sizeof(q), "EXPLAIN %s", sql);
	if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", q, sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW) {
		op = (const char *)sqlite3_column_text(st, 1);
		if ((strcmp(op, "Halt") == 0 || strcmp(op, "HaltIfNull") == 0) && sqlite3_column_int(st, 2) != 0 &&
		    sqlite3_column_int(st, 3) == 2 /* OE_Abort */)
			n++;
	}
	sqlite3_finalize(st);
	return n;
}

/*
 * The appends of both logs, as the code prepares them, may not abort (0010
 * and INSERT OR FAIL): no statement journal inside the write lock. The
 * triggers still refuse what they refused (test/integration/test_audit.c
 * runs INSERT OR REPLACE and a gap as sysadmin SQL).
 */
static void
appends_keep_no_statement_journal(void **state)
{
	struct idb_actor a = {"user", "u_1", "ana@acme.test"};
	cJSON *changes = cJSON_CreateObject();
	sqlite3_stmt *st = NULL;
	const char *sql;
	int logs = 0;

	(void)state;
	assert_non_null(changes);
	assert_int_equal(idb_db_begin(W.db), IDB_OK);
	assert_int_equal(idb_chg_append(W.db, &a, "update", "clients", "c_1", changes), IDB_OK);
	idb_db_rollback(W.db);
	cJSON_Delete(changes);
	/* Every statement prepared on the handle: the log's append is among them (group_setup appended). */
	while ((st = sqlite3_next_stmt(W.db, st)) != NULL) {
		sql = sqlite3_sql(st);
		if (sql == NULL || strncmp(sql, "INSERT", 6) != 0 ||
		    (strstr(sql, "INTO access_log") == NULL && strstr(sql, "INTO change_log") == NULL))
			continue;
		logs++;
		if (may_abort(W.db, sql) != 0)
			fail_msg("may abort, so keeps a statement journal: %s", sql);
	}
	assert_int_equal(logs, 2);
	/* The check sees an abort where there is one. */
	assert_true(may_abort(W.db, writes[2]) > 0);
}

/*
 * Two planned writes in one batch: the first writes the search index (FTS4
 * keeps the terms pending), the second finds its version gone (its UPDATE
 * changes no row). The second's UPDATE begins a statement journal, and
 * FTS4 flushes the first's pending terms then, which SQLite counts in
 * sqlite3_total_changes: the leader, which looked there, took the second
 * plan for one that failed after a change and failed the whole batch (503
 * for both; concurrent_patches_of_one_record_never_both_succeed caught it
 * under ASan). The first commits, the second is a conflict.
 */
static void
a_plan_that_changed_nothing_does_not_fail_the_batch_for_what_fts_flushed(void **state)
{
	struct idb_logq_wait wa, wb;
	struct idb_plan pa, pb;
	unsigned char key[IDB_KEY_LEN];
	char path[300];
	sqlite3 *db, *keep = W.db;
	int fd;

	(void)state;
	db = queued_org("q3.db", path, sizeof(path), key);
	assert_int_equal(idb_db_exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL CHECK (v > 0));"
	                                 "INSERT INTO t VALUES (1, 1)"),
	                 IDB_OK);
	idb_plan_init(&pa);
	idb_plan_stmt(&pa, "INSERT INTO clients_fts (docid, family_name, given_name, other_names, email)"
	                   " VALUES (?, ?, '', '', '')",
	              IDB_PLAN_ANY, IDB_E_DB);
	idb_plan_int(&pa, 7);
	idb_plan_text(&pa, "Garcia");
	idb_plan_init(&pb);
	idb_plan_stmt(&pb, "UPDATE t SET v = v + 1 WHERE id = 1 AND v = ?", IDB_PLAN_ONE_CHANGE, IDB_E_CONFLICT);
	idb_plan_int(&pb, 99); /* a version that is not the row's */
	assert_int_equal(pa.err, IDB_OK);
	assert_int_equal(pb.err, IDB_OK);

	/* Both wait while the queue is held, then one leader carries both. */
	assert_true((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	assert_int_equal(submit_plan(db, &wa, &pa), 0);
	assert_int_equal(submit_plan(db, &wb, &pb), 0);
	outside_lets_go(fd);
	assert_int_equal(idb_logq_poll(db, "o_q", &wa), 1);
	assert_int_equal(idb_logq_poll(db, "o_q", &wb), 1);
	assert_int_equal(wa.r, IDB_OK);
	assert_int_equal(wa.res, IDB_OK);
	assert_int_equal(wb.r, IDB_OK);
	assert_int_equal(wb.res, IDB_E_CONFLICT);
	W.db = db; /* count() reads W.db */
	assert_int_equal(count("SELECT count(*) FROM clients_fts WHERE clients_fts MATCH 'garcia'"), 1);
	assert_int_equal(count("SELECT count(*) FROM t WHERE v = 1"), 1);
	assert_int_equal(count("SELECT count(*) FROM access_log WHERE outcome = 'ok'"), 1);
	assert_int_equal(count("SELECT count(*) FROM access_log WHERE outcome = 'failed' AND detail = 'conflict'"), 1);
	W.db = keep;
	idb_plan_free(&pa);
	idb_plan_free(&pb);
	idb_db_close(db);
}

/*
 * What idb_plan_run says of a failed plan, which the leader trusts to
 * fail a batch or not: a plan stopped by its first write (an UPDATE of no
 * row) wrote nothing; one stopped after a write that changed a row did.
 */
static void
a_failed_plan_says_whether_it_wrote(void **state)
{
	struct idb_plan first, after;
	unsigned char key[IDB_KEY_LEN];
	char path[300];
	sqlite3 *db;
	int wrote = -1;

	(void)state;
	snprintf(path, sizeof(path), "%s/q4.db", W.dir);
	randombytes_buf(key, sizeof(key));
	assert_int_equal(idb_db_open(path, key, IDB_DB_CREATE, &db), IDB_OK);
	assert_int_equal(idb_db_exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);"
	                                 "INSERT INTO t VALUES (1, 1)"),
	                 IDB_OK);
	idb_plan_init(&first);
	idb_plan_stmt(&first, "UPDATE t SET v = v + 1 WHERE id = 1 AND v = ?", IDB_PLAN_ONE_CHANGE, IDB_E_CONFLICT);
	idb_plan_int(&first, 99);
	idb_plan_init(&after);
	idb_plan_stmt(&after, "INSERT INTO t (v) VALUES (?)", IDB_PLAN_ANY, IDB_E_DB);
	idb_plan_int(&after, 5);
	idb_plan_stmt(&after, "UPDATE t SET v = v + 1 WHERE id = 1 AND v = ?", IDB_PLAN_ONE_CHANGE, IDB_E_CONFLICT);
	idb_plan_int(&after, 99);
	assert_int_equal(idb_db_begin(db), IDB_OK);
	assert_int_equal(idb_plan_run(db, first.b.data, first.b.len, &wrote), IDB_E_CONFLICT);
	assert_int_equal(wrote, 0);
	assert_int_equal(idb_plan_run(db, after.b.data, after.b.len, &wrote), IDB_E_CONFLICT);
	assert_int_equal(wrote, 1);
	idb_db_rollback(db);
	idb_plan_free(&first);
	idb_plan_free(&after);
	idb_db_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_filter_gives_what_a_brute_force_filter_gives),
		cmocka_unit_test(cursors_start_and_end_where_they_say),
		cmocka_unit_test(only_the_partial_indexes_remain_and_they_hold_the_rare_entries),
		cmocka_unit_test(head_and_append_only_trigger_stay_rowid_lookups),
		cmocka_unit_test(a_users_read_writes_only_the_table),
		cmocka_unit_test(checks_build_no_temporary_btree_in_either_handle),
		cmocka_unit_test(appends_keep_no_statement_journal),
		cmocka_unit_test(checks_still_accept_and_refuse_the_same_values),
		cmocka_unit_test(checks_migration_refuses_an_unexpected_text_and_changes_nothing),
		cmocka_unit_test(a_settled_slot_is_not_taken_again_before_its_request_read_it),
		cmocka_unit_test(an_entry_whose_leader_could_not_begin_is_never_written_later),
		cmocka_unit_test(a_failed_look_at_a_queue_waits_for_a_release_or_the_retry_time),
		cmocka_unit_test(a_plan_that_changed_nothing_does_not_fail_the_batch_for_what_fts_flushed),
		cmocka_unit_test(a_failed_plan_says_whether_it_wrote),
	};

	return cmocka_run_group_tests_name("accesslog", tests, group_setup, group_teardown);
}
