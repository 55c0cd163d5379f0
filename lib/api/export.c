/* SPDX-License-Identifier: ISC */
/*
 * The organization export: the document immidb-export-v1 and its HTTP
 * handler, POST /api/v1/orgs/{org}/export (admin only by the route table;
 * re-authentication with the caller's own password, counted by the login
 * throttle). The document is written straight into one byte buffer, record
 * after record, from SQL assembled only from the fixed identifiers of the
 * resource tables (lib/api/resources.c). Decrypted values never pass
 * through cJSON, and the buffer grows by copy-then-wipe, so no stray copy
 * of one is left in freed memory.
 */
#include "api/export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "api/api.h"
#include "api/records.h"
#include "audit/changelog.h"
#include "auth/settings.h"
#include "auth/users.h"
#include "crypto/field.h"
#include "crypto/pw.h"
#include "outbox/outbox.h"
#include "store/db.h"

#define SQL_MAX 4096
#define NOTICE_MAX 8192

/* The writer: where the document goes, its first failure, and what decryption needs. */
struct out {
	struct idb_buf *b;
	enum idb_err e;
	const struct idb_org *org;
	const struct idb_org_keys *keys;
	unsigned char *plain; /* IDB_FIELD_MAX + 1 bytes, wiped after each value */
	long long n;          /* items written to the current array */
};

/* ---- writing ---------------------------------------------------------------- */

/*
 * Room for n more bytes and the NUL. Unlike idb_buf's realloc, a move
 * copies to a new block and wipes the old one: the buffer holds decrypted
 * values. The maximum of the buffer still applies (IDB_E_TOOBIG).
 */
static enum idb_err
room(struct idb_buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (n > b->max || b->len > b->max - n)
		return IDB_E_TOOBIG;
	if (b->data != NULL && b->len + n + 1 <= b->cap)
		return IDB_OK;
	cap = b->cap ? b->cap : 65536;
	while (cap < b->len + n + 1)
		cap *= 2;
	if ((p = malloc(cap)) == NULL)
		return IDB_E_NOMEM;
	p[0] = '\0';
	if (b->data != NULL) {
		memcpy(p, b->data, b->len + 1);
		sodium_memzero(b->data, b->cap);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	return IDB_OK;
}

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->e == IDB_OK && (o->e = room(o->b, n)) == IDB_OK)
		o->e = idb_buf_add(o->b, s, n);
}

static void
put_text(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* The length of the run at s that JSON takes as it is (no control character, quote or backslash). */
static size_t
plain_run(const unsigned char *s)
{
	const unsigned char *p = s;

	while (*p >= 0x20 && *p != '"' && *p != '\\')
		p++;
	return (size_t)(p - s);
}

/* The character after the backslash of a two-character JSON escape, or 0. */
static char
short_escape(unsigned char c)
{
	switch (c) {
	case '"':
	case '\\':
		return (char)c;
	case '\n':
		return 'n';
	case '\r':
		return 'r';
	case '\t':
		return 't';
	case '\b':
		return 'b';
	case '\f':
		return 'f';
	default:
		return 0;
	}
}

/*
 * A JSON string, or null for NULL. Room for the worst case is made first
 * (every byte a \u escape), so the appends below never move the buffer;
 * runs that need no escape go in whole.
 */
static void
put_str(struct out *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p;
	char esc[6] = {'\\', 'u', '0', '0', 0, 0};
	size_t n;

	if (s == NULL) {
		put_text(o, "null");
		return;
	}
	if (o->e != IDB_OK)
		return;
	if ((n = strlen(s)) > (o->b->max - 2) / 6) {
		o->e = IDB_E_TOOBIG;
		return;
	}
	if ((o->e = room(o->b, 6 * n + 2)) != IDB_OK)
		return;
	idb_buf_add(o->b, "\"", 1);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((n = plain_run(p)) > 0) {
			idb_buf_add(o->b, p, n);
			p += n - 1;
		} else if (short_escape(*p) != 0) {
			esc[1] = short_escape(*p);
			idb_buf_add(o->b, esc, 2);
			esc[1] = 'u';
		} else {
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			idb_buf_add(o->b, esc, 6);
		}
	}
	o->e = idb_buf_add(o->b, "\"", 1);
}

/* ,"name": (first: without the comma) */
static void
put_key(struct out *o, const char *name, int first)
{
	if (!first)
		put_text(o, ",");
	put_str(o, name);
	put_text(o, ":");
}

static void
put_int(struct out *o, long long v)
{
	char t[24];
	int w = snprintf(t, sizeof(t), "%lld", v);

	if (w < 0 || (size_t)w >= sizeof(t))
		o->e = IDB_E_INTERNAL;
	else
		put(o, t, (size_t)w);
}

/* A cJSON object without secrets (a user, the settings, a change-log entry). */
static void
put_json(struct out *o, const cJSON *j)
{
	char *s;

	if (o->e != IDB_OK)
		return;
	if (j == NULL || (s = cJSON_PrintUnformatted(j)) == NULL) {
		o->e = IDB_E_NOMEM;
		return;
	}
	put_text(o, s);
	cJSON_free(s);
}

/* Arrays: one item a line, so that large files read well line by line too. */
static void
array_open(struct out *o, const char *name)
{
	put_text(o, ",\n");
	put_str(o, name);
	put_text(o, ":[");
	o->n = 0;
}

static void
array_item(struct out *o)
{
	put_text(o, o->n++ ? ",\n" : "\n");
}

static void
array_close(struct out *o)
{
	put_text(o, o->n ? "\n]" : "]");
}

static const char *
col_text(sqlite3_stmt *st, int c)
{
	return (const char *)sqlite3_column_text(st, c);
}

/* ---- records ------------------------------------------------------------------ */

/* "SELECT id, <every column>, version, ..., deleted_at FROM <table> ORDER BY rid": fixed identifiers only. */
static enum idb_err
records_sql(const struct idb_resource *r, struct idb_buf *sql)
{
	enum idb_err e;
	size_t i;

	idb_buf_init(sql, SQL_MAX);
	e = idb_buf_addstr(sql, "SELECT id");
	for (i = 0; i < r->ncols && e == IDB_OK; i++)
		if ((e = idb_buf_addstr(sql, ", ")) == IDB_OK)
			e = idb_buf_addstr(sql, r->cols[i].name);
	if (e == IDB_OK)
		e = idb_buf_addstr(sql, ", version, created_at, updated_at, created_by, updated_by, deleted_at FROM ");
	if (e == IDB_OK && (e = idb_buf_addstr(sql, r->name)) == IDB_OK)
		e = idb_buf_addstr(sql, " ORDER BY rid");
	return e;
}

/* A sensitive column, decrypted (the associated data binds it to this org, table, row and column). */
static void
put_secret(struct out *o, const struct idb_resource *r, const char *id, const char *column, sqlite3_stmt *st,
           int c)
{
	struct idb_field_ad ad;
	size_t len, n = 0;
	enum idb_err e;

	if (o->e != IDB_OK)
		return;
	if (sqlite3_column_type(st, c) == SQLITE_NULL) {
		put_text(o, "null");
		return;
	}
	len = (size_t)sqlite3_column_bytes(st, c);
	if (len < IDB_FIELD_OVERHEAD || len - IDB_FIELD_OVERHEAD > IDB_FIELD_MAX) {
		o->e = IDB_E_CRYPTO;
		return;
	}
	ad.org_id = o->org->id;
	ad.table = r->name;
	ad.row_id = id;
	ad.column = column;
	e = idb_field_decrypt(o->keys->field, o->keys->field_version, &ad, sqlite3_column_blob(st, c), len, o->plain,
	                      &n);
	if (e == IDB_OK) {
		o->plain[n] = '\0';
		put_str(o, (const char *)o->plain);
	} else
		o->e = e;
	sodium_memzero(o->plain, n + 1);
}

/* One record: the API's fields in table order, sensitive ones in clear, then the metadata and deleted_at. */
static void
put_record(struct out *o, const struct idb_resource *r, sqlite3_stmt *st)
{
	const char *id = col_text(st, 0);
	int c = 1;
	size_t i;

	put_text(o, "{");
	put_key(o, "id", 1);
	put_str(o, id);
	for (i = 0; i < r->ncols; i++, c++) {
		put_key(o, r->cols[i].name, 0);
		if (r->cols[i].kind == IDB_CK_SECRET)
			put_secret(o, r, id, r->cols[i].name, st, c);
		else if (r->cols[i].kind == IDB_CK_BOOL)
			put_text(o, sqlite3_column_int(st, c) ? "true" : "false");
		else
			put_str(o, col_text(st, c));
	}
	put_key(o, "version", 0);
	put_int(o, sqlite3_column_int64(st, c));
	put_key(o, "created_at", 0);
	put_str(o, col_text(st, c + 1));
	put_key(o, "updated_at", 0);
	put_str(o, col_text(st, c + 2));
	put_key(o, "created_by", 0);
	put_str(o, col_text(st, c + 3));
	put_key(o, "updated_by", 0);
	put_str(o, col_text(st, c + 4));
	put_key(o, "deleted_at", 0);
	put_str(o, col_text(st, c + 5));
	put_text(o, "}");
}

static void
write_records(struct out *o, sqlite3 *db, const struct idb_resource *r)
{
	struct idb_buf sql;
	sqlite3_stmt *st = NULL;
	int rc;

	if ((o->e = records_sql(r, &sql)) == IDB_OK &&
	    sqlite3_prepare_v2(db, sql.data, -1, &st, NULL) != SQLITE_OK)
		o->e = IDB_E_DB;
	idb_buf_free(&sql);
	if (o->e != IDB_OK)
		return;
	while (o->e == IDB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		array_item(o);
		put_record(o, r, st);
	}
	if (o->e == IDB_OK && rc != SQLITE_DONE)
		o->e = IDB_E_DB;
	sqlite3_finalize(st);
}

/* ---- users and the change log ------------------------------------------------- */

/* A user as the API shows it: idb_user_json holds no hash, secret, code or token. */
static void
one_user(const struct idb_user *u, void *arg)
{
	struct out *o = arg;
	cJSON *j;

	if (o->e != IDB_OK)
		return;
	array_item(o);
	j = idb_user_json(u);
	put_json(o, j);
	cJSON_Delete(j);
}

static void
write_users(struct out *o, sqlite3 *db, const struct idb_resource *r)
{
	enum idb_err e;

	(void)r;
	if ((e = idb_user_list(db, one_user, o)) != IDB_OK && o->e == IDB_OK)
		o->e = e;
}

static void
one_change(cJSON *entry, long long seq, void *arg)
{
	struct out *o = arg;

	(void)seq;
	if (o->e != IDB_OK)
		return;
	array_item(o);
	put_json(o, entry);
}

static void
write_changes(struct out *o, sqlite3 *db, const struct idb_resource *r)
{
	struct idb_chg_filter f;
	enum idb_err e;

	(void)r;
	memset(&f, 0, sizeof(f)); /* every entry, oldest first */
	if ((e = idb_chg_each(db, &f, one_change, o)) != IDB_OK && o->e == IDB_OK)
		o->e = e;
}

/* ---- the document ------------------------------------------------------------- */

/* The arrays of the document, in order. */
static const struct section {
	const char *name;
	const struct idb_resource *res;
	void (*write)(struct out *, sqlite3 *, const struct idb_resource *);
} sections[] = {
	{"users", NULL, write_users},
	{"clients", &idb_res_clients, write_records},
	{"cases", &idb_res_cases, write_records},
	{"events", &idb_res_events, write_records},
	{"notes", &idb_res_notes, write_records},
	{"credentials", &idb_res_credentials, write_records},
	{"changes", NULL, write_changes},
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

/* {"format", "org": {id, slug, name, created_at, settings}, "exported_at" (the document's head). */
static void
write_head(struct out *o, sqlite3 *db, const char *exported_at)
{
	struct idb_settings *s;
	cJSON *j;

	put_text(o, "{");
	put_key(o, "format", 1);
	put_str(o, IDB_EXPORT_FORMAT);
	put_key(o, "org", 0);
	put_text(o, "{");
	put_key(o, "id", 1);
	put_str(o, o->org->id);
	put_key(o, "slug", 0);
	put_str(o, o->org->slug);
	put_key(o, "name", 0);
	put_str(o, o->org->name);
	put_key(o, "created_at", 0);
	put_str(o, o->org->created_at);
	put_key(o, "settings", 0);
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		o->e = IDB_E_NOMEM;
		return;
	}
	if (o->e == IDB_OK && (o->e = idb_settings_load(db, s)) == IDB_OK) {
		j = idb_settings_json(s);
		put_json(o, j);
		cJSON_Delete(j);
	}
	free(s);
	put_text(o, "}");
	put_key(o, "exported_at", 0);
	put_str(o, exported_at);
}

/* "users 2, clients 5, ..." */
static void
counts(const long long *n, char detail[IDB_EXPORT_DETAIL_LEN])
{
	size_t i, len = 0;
	int w;

	detail[0] = '\0';
	for (i = 0; i < NSECTIONS; i++) {
		w = snprintf(detail + len, IDB_EXPORT_DETAIL_LEN - len, "%s%s %lld", i ? ", " : "", sections[i].name,
		             n[i]);
		if (w < 0 || (size_t)w >= IDB_EXPORT_DETAIL_LEN - len)
			return; /* cannot happen with seven counts; a short detail is still true */
		len += (size_t)w;
	}
}

enum idb_err
idb_export_build(sqlite3 *db, const struct idb_org *org, const struct idb_org_keys *k, const char *exported_at,
                 struct idb_buf *out, char detail[IDB_EXPORT_DETAIL_LEN])
{
	long long n[NSECTIONS];
	struct out o;
	size_t i;

	memset(&o, 0, sizeof(o));
	memset(n, 0, sizeof(n));
	detail[0] = '\0';
	o.b = out;
	o.org = org;
	o.keys = k;
	if ((o.plain = malloc(IDB_FIELD_MAX + 1)) == NULL)
		return IDB_E_NOMEM;
	write_head(&o, db, exported_at);
	for (i = 0; i < NSECTIONS && o.e == IDB_OK; i++) {
		array_open(&o, sections[i].name);
		sections[i].write(&o, db, sections[i].res);
		array_close(&o);
		n[i] = o.n;
	}
	put_text(&o, "}\n");
	sodium_memzero(o.plain, IDB_FIELD_MAX + 1);
	free(o.plain);
	if (o.e == IDB_OK)
		counts(n, detail);
	return o.e;
}

enum idb_err
idb_export_filename(const char *slug, const char *exported_at, char out[IDB_EXPORT_NAME_LEN])
{
	int w;

	if (strlen(exported_at) < 10)
		return IDB_E_INTERNAL;
	w = snprintf(out, IDB_EXPORT_NAME_LEN, "immidb-export-%s-%.4s%.2s%.2s.json", slug, exported_at,
	             exported_at + 5, exported_at + 8);
	return w < 0 || (size_t)w >= IDB_EXPORT_NAME_LEN ? IDB_E_TOOBIG : IDB_OK;
}

/* ---- the notification --------------------------------------------------------- */

/* The notice's text, piece by piece; the first failure is kept (a notice is never sent cut short). */
struct text {
	struct idb_buf b;
	enum idb_err e;
};

static void
say(struct text *t, const char *s)
{
	if (t->e == IDB_OK)
		t->e = idb_buf_addstr(&t->b, s != NULL ? s : "");
}

static void
say_who(struct text *t, const struct idb_log_entry *who, const char *name)
{
	if (strcmp(who->actor_kind, "system") == 0) {
		say(t, "immidb-admin, the operator's command on the server");
		return;
	}
	if (name != NULL && *name != '\0') {
		say(t, name);
		say(t, " ");
	}
	say(t, "<");
	say(t, who->actor_email);
	say(t, "> (");
	say(t, who->actor_kind);
	say(t, " ");
	say(t, who->actor_id);
	say(t, ")");
}

enum idb_err
idb_export_notice(sqlite3 *db, const struct idb_log_entry *who, const char *name)
{
	int server = who->via != NULL && strcmp(who->via, "server") == 0;
	struct text t;
	enum idb_err e;

	idb_buf_init(&t.b, NOTICE_MAX);
	t.e = IDB_OK;
	say(&t, "A full export of your organization's data was made in ImmiDB (format " IDB_EXPORT_FORMAT "). It "
	        "holds every record, deleted ones too, with A-numbers, passport numbers, SSNs and portal passwords in "
	        "clear.\r\n\r\nWho: ");
	say_who(&t, who, name);
	say(&t, "\r\nWhen: ");
	say(&t, who->at);
	say(&t, server ? "\r\nFrom: the server itself (immidb-admin)" : "\r\nFrom address: ");
	if (!server)
		say(&t, who->ip);
	if (who->reason != NULL && *who->reason != '\0') {
		say(&t, "\r\nReason given: ");
		say(&t, who->reason);
	}
	say(&t, "\r\n\r\nEvery export is an entry of your access log (action org.export). If you did not expect "
	        "this one, check who holds an admin account and change its password.");
	e = t.e == IDB_OK ? idb_outbox_queue(db, "export", who->actor_id ? who->actor_id : "",
	                                     "Your organization's data was exported", t.b.data)
	                  : t.e;
	idb_buf_free(&t.b);
	return e == IDB_OK ? IDB_OK : IDB_E_UNAVAILABLE;
}

/* ---- POST /api/v1/orgs/{org}/export ------------------------------------------- */

static const struct idb_vfield export_fields[] = {
	{"password", IDB_V_STRING, IDB_VF_REQUIRED, 1, IDB_PW_MAX, NULL, NULL, NULL},
};

/* The caller's own password, under the login throttle: 429 while the email or address is locked out
 * (before the password is looked at, so a right one is refused too). */
static enum idb_err
reauth(struct idb_ctx *x, const char *pw)
{
	sqlite3 *db = x->oh->db;
	char hash[128];
	long long after;
	enum idb_err e;

	e = idb_throttle_check(db, x->user.email, x->req->client_ip, x->now, &after);
	if (e == IDB_E_TOO_MANY_REQUESTS)
		return idb_api_retry_after(x, after);
	if (e != IDB_OK)
		return e;
	memset(hash, 0, sizeof(hash));
	if ((e = idb_user_hash(db, x->user.id, hash)) == IDB_OK)
		e = idb_pw_verify(hash, pw);
	sodium_memzero(hash, sizeof(hash));
	/* Like the password change, a right password does not reset the count: only a complete login does. */
	/* A wrong password: one failure of the login throttle (the fifth starts a
	 * lockout, with its own entry and notice), in a level of the request's
	 * transaction, committed with the org.export entry. */
	return e == IDB_E_INVALID_CREDENTIALS
	           ? idb_api_auth_failed(x, x->user.email, "password_failed", x->user.id, "org.export")
	           : e;
}

/* The entry's detail and Content-Disposition (the header last: nothing is added on failure). */
static enum idb_err
export_headers(struct idb_ctx *x, const char *at, const char *detail)
{
	char name[IDB_EXPORT_NAME_LEN], cd[IDB_EXPORT_NAME_LEN + 32], *v;
	enum idb_err e;
	int w;

	if ((e = idb_export_filename(x->org.slug, at, name)) != IDB_OK)
		return e;
	w = snprintf(cd, sizeof(cd), "attachment; filename=\"%s\"", name);
	if (w < 0 || (size_t)w >= sizeof(cd))
		return IDB_E_TOOBIG;
	if ((v = idb_arena_strdup(x->req->arena, cd)) == NULL ||
	    (x->log_detail = idb_arena_strdup(x->req->arena, detail)) == NULL)
		return IDB_E_NOMEM;
	return idb_resp_header(x->resp, "Content-Disposition", v);
}

/* The "export" notification and the headers, in a level of their own: both, or neither. */
static enum idb_err
export_finish(struct idb_ctx *x, const char *at, const char *detail)
{
	struct idb_log_entry who;
	sqlite3 *db = x->oh->db;
	enum idb_err e;

	memset(&who, 0, sizeof(who));
	memcpy(who.at, at, sizeof(who.at));
	who.actor_kind = "user";
	who.actor_id = x->user.id;
	who.actor_email = x->user.email;
	who.via = "app";
	who.ip = x->req->client_ip;
	if ((e = idb_db_begin(db)) != IDB_OK)
		return e == IDB_E_DB ? IDB_E_UNAVAILABLE : e;
	if ((e = idb_export_notice(db, &who, x->user.name)) != IDB_OK || (e = export_headers(x, at, detail)) != IDB_OK) {
		idb_db_rollback(db);
		return e;
	}
	return idb_db_commit(db) == IDB_OK ? IDB_OK : IDB_E_UNAVAILABLE;
}

/*
 * The export. A sysadmin is refused (403): the document holds every secret
 * in clear, and they have no password in this org to confirm it with; the
 * server-side `immidb-admin access ... -- export` is their way. The
 * notification is queued only once the document is built, so a failed
 * build queues none; if it cannot be queued, the answer is 503 and nothing
 * is sent. The org.export entry is the guard's (the route's action),
 * written in the same transaction: if it cannot be written, the guard
 * undoes everything and answers 503.
 */
enum idb_err
idb_api_org_export(struct idb_ctx *x)
{
	char at[IDB_TIME_LEN], detail[IDB_EXPORT_DETAIL_LEN];
	struct idb_buf *body = &x->resp->body;
	struct idb_vvalue v[1];
	enum idb_err e;

	if (x->sysadmin)
		return IDB_E_FORBIDDEN;
	if ((e = idb_api_body(x, export_fields, 1, v)) != IDB_OK || (e = reauth(x, v[0].s)) != IDB_OK)
		return e;
	idb_time_now(at);
	idb_buf_reset(body);
	if ((e = idb_export_build(x->oh->db, &x->org, x->oh->keys, at, body, detail)) != IDB_OK ||
	    (e = export_finish(x, at, detail)) != IDB_OK) {
		idb_buf_reset(body);
		return e;
	}
	x->resp->status = 200;
	x->resp->content_type = "application/json; charset=utf-8";
	return IDB_OK;
}
