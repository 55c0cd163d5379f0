/* SPDX-License-Identifier: ISC */
/* The notification outbox and its SMTP delivery through libcurl. */
#include "outbox/outbox.h"

#include <stdio.h>
#include <string.h>
#include <curl/curl.h>
#include <sodium.h>

#include "core/buf.h"
#include "core/util.h"
#include "store/db.h"

static const char sql_note[] =
    "INSERT INTO notifications (id, at, kind, subject_id, summary, body) VALUES (?, ?, ?, ?, ?, ?)";
static const char sql_fanout[] =
    "INSERT INTO deliveries (notification_id, recipient, next_attempt_at)"
    " SELECT ?, email, 0 FROM users WHERE role = 'admin' AND disabled = 0";
static const char sql_recent[] =
    "SELECT 1 FROM notifications WHERE kind = ? AND subject_id = ? AND at >= ? LIMIT 1";
static const char sql_list[] =
    "SELECT n.id, n.at, n.kind, n.summary,"
    " (SELECT CASE WHEN count(*) = sum(d.delivered_at IS NOT NULL) AND count(*) > 0 THEN max(d.delivered_at) END"
    "  FROM deliveries d WHERE d.notification_id = n.id)"
    " FROM notifications n ORDER BY n.rowid DESC LIMIT ?";
static const char sql_due[] =
    "SELECT d.notification_id, d.recipient, d.attempts, n.summary, n.body, n.at FROM deliveries d"
    " JOIN notifications n ON n.id = d.notification_id"
    " WHERE d.delivered_at IS NULL AND d.next_attempt_at <= ? ORDER BY n.rowid LIMIT 100";
static const char sql_any_due[] =
    "SELECT 1 FROM deliveries WHERE delivered_at IS NULL AND next_attempt_at <= ? LIMIT 1";
static const char sql_done[] =
    "UPDATE deliveries SET delivered_at = ?, attempts = attempts + 1, last_error = ''"
    " WHERE notification_id = ? AND recipient = ?";
static const char sql_retry[] =
    "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
    " WHERE notification_id = ? AND recipient = ?";

enum idb_err
idb_outbox_queue(sqlite3 *db, const char *kind, const char *subject_id, const char *summary, const char *body)
{
	char id[IDB_ID_LEN + 1], at[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL;
	int rc;

	idb_id_new('m', id);
	idb_time_now(at);
	if (sqlite3_prepare_v2(db, sql_note, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_UNAVAILABLE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, subject_id ? subject_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, summary, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, body, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || sqlite3_prepare_v2(db, sql_fanout, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_UNAVAILABLE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? IDB_OK : IDB_E_UNAVAILABLE;
}

int
idb_outbox_recent(sqlite3 *db, const char *kind, const char *subject_id, long long seconds)
{
	struct timespec ts;
	char since[IDB_TIME_LEN];
	sqlite3_stmt *st = NULL;
	int hit = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec -= (time_t)seconds;
	idb_time_format(&ts, since);
	if (sqlite3_prepare_v2(db, sql_recent, -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, subject_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, since, -1, SQLITE_STATIC);
	hit = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return hit;
}

enum idb_err
idb_outbox_list(sqlite3 *db, int limit, cJSON **out)
{
	sqlite3_stmt *st = NULL;
	cJSON *arr, *j;
	int rc;

	if ((arr = cJSON_CreateArray()) == NULL)
		return IDB_E_NOMEM;
	if (sqlite3_prepare_v2(db, sql_list, -1, &st, NULL) != SQLITE_OK) {
		cJSON_Delete(arr);
		return IDB_E_DB;
	}
	sqlite3_bind_int(st, 1, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((j = cJSON_CreateObject()) == NULL)
			break;
		cJSON_AddStringToObject(j, "id", (const char *)sqlite3_column_text(st, 0));
		cJSON_AddStringToObject(j, "at", (const char *)sqlite3_column_text(st, 1));
		cJSON_AddStringToObject(j, "kind", (const char *)sqlite3_column_text(st, 2));
		cJSON_AddStringToObject(j, "summary", (const char *)sqlite3_column_text(st, 3));
		if (sqlite3_column_type(st, 4) == SQLITE_NULL)
			cJSON_AddNullToObject(j, "delivered_at");
		else
			cJSON_AddStringToObject(j, "delivered_at", (const char *)sqlite3_column_text(st, 4));
		cJSON_AddItemToArray(arr, j);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(arr);
		return IDB_E_DB;
	}
	*out = arr;
	return IDB_OK;
}

int
idb_outbox_due(sqlite3 *db, time_t now)
{
	sqlite3_stmt *st = NULL;
	int due = 0;

	if (sqlite3_prepare_v2(db, sql_any_due, -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_int64(st, 1, (long long)now);
	due = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return due;
}

struct upload {
	const char *data;
	size_t len, off;
};

static size_t
read_cb(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nmemb;

	if (n > u->len - u->off)
		n = u->len - u->off;
	memcpy(buf, u->data + u->off, n);
	u->off += n;
	return n;
}

/* The address inside "Name <addr>" (or the whole string). */
static void
addr_of(const char *from, char *out, size_t outlen)
{
	const char *lt = strchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
	size_t n;

	if (lt != NULL && gt != NULL && gt > lt + 1) {
		n = (size_t)(gt - lt - 1);
		from = lt + 1;
	} else
		n = strlen(from);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, from, n);
	out[n] = '\0';
}

/* One mail through libcurl's SMTP; 0 when the server accepted it. */
static int
send_mail(const struct idb_smtp *s, const char *to, const char *text, char *err, size_t errlen)
{
	char from[320], rcpt[320];
	struct curl_slist *rcpts = NULL;
	struct upload u = {text, strlen(text), 0};
	CURLcode rc;
	CURL *c;

	if ((c = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "curl_easy_init failed");
		return -1;
	}
	addr_of(s->from, from, sizeof(from));
	snprintf(rcpt, sizeof(rcpt), "<%s>", to);
	rcpts = curl_slist_append(rcpts, rcpt);
	curl_easy_setopt(c, CURLOPT_URL, s->url);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(c, CURLOPT_READDATA, &u);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USE_SSL, strncmp(s->url, "smtps://", 8) == 0 ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_NONE);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		snprintf(err, errlen, "%s", curl_easy_strerror(rc));
	curl_slist_free_all(rcpts);
	curl_easy_cleanup(c);
	return rc == CURLE_OK ? 0 : -1;
}

static enum idb_err
mark(sqlite3 *db, const char *sql, const char *a, long long n, const char *b, const char *nid, const char *to)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	if (a != NULL) {
		sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, nid, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, to, -1, SQLITE_STATIC);
	} else {
		sqlite3_bind_int64(st, 1, n);
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, nid, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, to, -1, SQLITE_STATIC);
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? IDB_OK : IDB_E_DB;
}

/* Appends text with every line ending as CRLF (SMTP allows no bare LF). */
static enum idb_err
add_crlf(struct idb_buf *b, const char *text)
{
	enum idb_err e = IDB_OK;
	const char *p;

	for (p = text; *p != '\0' && e == IDB_OK; p++) {
		if (*p == '\n' && (p == text || p[-1] != '\r'))
			e = idb_buf_add(b, "\r\n", 2);
		else
			e = idb_buf_add(b, p, 1);
	}
	return e;
}

struct due {
	char *nid, *to, *summary, *body;
	int attempts;
};

static void
due_free(struct due *d, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		sqlite3_free(d[i].nid);
		sqlite3_free(d[i].to);
		sqlite3_free(d[i].summary);
		sqlite3_free(d[i].body);
	}
}

enum idb_err
idb_outbox_deliver(sqlite3 *db, const struct idb_smtp *s, const char *org_slug, const char *extra, time_t now,
                   int *sent, int *failed)
{
	struct due d[100];
	sqlite3_stmt *st = NULL;
	struct idb_buf mail;
	char date[64], err[256], at[IDB_TIME_LEN], hash[17];
	unsigned char h[8];
	struct tm tm;
	enum idb_err e = IDB_OK;
	long long backoff;
	int rc, n = 0, i;

	*sent = *failed = 0;
	/* Read the due deliveries first: the marks below change the rows the query walks. */
	if (sqlite3_prepare_v2(db, sql_due, -1, &st, NULL) != SQLITE_OK)
		return IDB_E_DB;
	sqlite3_bind_int64(st, 1, (long long)now);
	while (n < 100 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		d[n].nid = sqlite3_mprintf("%s", sqlite3_column_text(st, 0));
		d[n].to = sqlite3_mprintf("%s", sqlite3_column_text(st, 1));
		d[n].attempts = sqlite3_column_int(st, 2);
		d[n].summary = sqlite3_mprintf("%s", sqlite3_column_text(st, 3));
		d[n].body = sqlite3_mprintf("%s", sqlite3_column_text(st, 4));
		n++;
		if (d[n - 1].nid == NULL || d[n - 1].to == NULL || d[n - 1].summary == NULL || d[n - 1].body == NULL) {
			e = IDB_E_NOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	for (i = 0; i < n && e == IDB_OK; i++) {
		/* A stable Message-ID per (notification, recipient): a resend after a crash is recognisable. */
		crypto_generichash(h, sizeof(h), (const unsigned char *)d[i].to, strlen(d[i].to), NULL, 0);
		idb_hex(h, sizeof(h), hash);
		idb_buf_init(&mail, 1 << 20);
		idb_buf_addstr(&mail, "From: ");
		idb_buf_addstr(&mail, s->from);
		idb_buf_addstr(&mail, "\r\nTo: <");
		idb_buf_addstr(&mail, d[i].to);
		idb_buf_addstr(&mail, ">\r\nSubject: [ImmiDB ");
		idb_buf_addstr(&mail, org_slug);
		idb_buf_addstr(&mail, "] ");
		idb_buf_addstr(&mail, d[i].summary);
		idb_buf_addstr(&mail, "\r\nDate: ");
		idb_buf_addstr(&mail, date);
		idb_buf_addstr(&mail, "\r\nMessage-ID: <");
		idb_buf_addstr(&mail, d[i].nid);
		idb_buf_addstr(&mail, ".");
		idb_buf_addstr(&mail, hash);
		idb_buf_addstr(&mail, "@");
		idb_buf_addstr(&mail, s->domain);
		idb_buf_addstr(&mail, ">\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
		                      "Content-Transfer-Encoding: 8bit\r\n\r\n");
		add_crlf(&mail, d[i].body);
		if (extra != NULL) {
			idb_buf_addstr(&mail, "\r\n\r\nThe latest signed checkpoint of your access log:\r\n\r\n");
			add_crlf(&mail, extra);
		}
		e = idb_buf_addstr(&mail, "\r\n");
		/* Marked delivered only after the server accepted the mail. */
		if (e == IDB_OK && send_mail(s, d[i].to, mail.data, err, sizeof(err)) == 0) {
			idb_time_now(at);
			e = mark(db, sql_done, at, 0, NULL, d[i].nid, d[i].to);
			(*sent)++;
		} else {
			backoff = (long long)IDB_OUTBOX_BACKOFF_MIN << (d[i].attempts > 7 ? 7 : d[i].attempts);
			if (backoff > IDB_OUTBOX_BACKOFF_MAX)
				backoff = IDB_OUTBOX_BACKOFF_MAX;
			e = mark(db, sql_retry, NULL, (long long)now + backoff, e == IDB_OK ? err : "mail too large", d[i].nid,
			         d[i].to);
			(*failed)++;
		}
		idb_buf_free(&mail);
	}
	due_free(d, n);
	return e;
}
