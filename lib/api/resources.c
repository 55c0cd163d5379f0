/* SPDX-License-Identifier: ISC */
/* The five case-data resources of api.md, one table each. */
#include "api/records.h"

#include <string.h>

#include "auth/users.h"

static int
digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

int
idb_valid_date(const char *s)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, d, max;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4) || !digits(s + 5, 2) ||
	    !digits(s + 8, 2))
		return 0;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1 || m < 1 || m > 12 || d < 1)
		return 0;
	max = mdays[m - 1];
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		max = 29;
	return d <= max;
}

int
idb_valid_time(const char *s)
{
	char date[11];
	int h, mi, se;

	if (strlen(s) != 20 || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' || !digits(s + 11, 2) ||
	    !digits(s + 14, 2) || !digits(s + 17, 2))
		return 0;
	memcpy(date, s, 10);
	date[10] = '\0';
	h = (s[11] - '0') * 10 + (s[12] - '0');
	mi = (s[14] - '0') * 10 + (s[15] - '0');
	se = (s[17] - '0') * 10 + (s[18] - '0');
	return idb_valid_date(date) && h < 24 && mi < 60 && se < 60;
}

static int
a_number(const char *s)
{
	size_t n;

	if (*s == 'A')
		s++;
	n = strlen(s);
	return (n == 8 || n == 9) && digits(s, n);
}

static int
passport(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 5 || n > 20)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			return 0;
	return 1;
}

static int
ssn(const char *s)
{
	/* ^[0-9]{3}-?[0-9]{2}-?[0-9]{4}$ */
	if (!digits(s, 3))
		return 0;
	s += 3;
	if (*s == '-')
		s++;
	if (!digits(s, 2))
		return 0;
	s += 2;
	if (*s == '-')
		s++;
	return strlen(s) == 4 && digits(s, 4);
}

static int
receipt(const char *s)
{
	size_t i;

	if (strlen(s) != 13)
		return 0;
	for (i = 0; i < 3; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return 0;
	return digits(s + 3, 10);
}

static int
email(const char *s)
{
	return idb_user_email_valid(s);
}

static int
url(const char *s)
{
	return (strncmp(s, "https://", 8) == 0 && s[8] != '\0') || (strncmp(s, "http://", 7) == 0 && s[7] != '\0');
}

#define TEXT(n, max, fl) {n, IDB_CK_TEXT, fl, max, NULL, NULL, NULL, NULL, NULL}
#define PATTERN(n, kind, max, fl, fn, msg) {n, kind, fl, max, NULL, NULL, fn, msg, NULL}
#define DATE(n, fl) {n, IDB_CK_DATE, fl, 10, NULL, NULL, NULL, NULL, NULL}
#define TIME(n, fl) {n, IDB_CK_TIME, fl, 20, NULL, NULL, NULL, NULL, NULL}
#define BOOL(n) {n, IDB_CK_BOOL, 0, 0, NULL, NULL, NULL, NULL, NULL}
#define ENUM(n, fl, ch, def) {n, IDB_CK_ENUM, fl, 0, ch, def, NULL, NULL, NULL}
#define REF(n, fl, table) {n, IDB_CK_REF, fl, 34, NULL, NULL, NULL, NULL, table}
#define ROWS(a) a, sizeof(a) / sizeof(a[0])

static const struct idb_rcol client_cols[] = {
	TEXT("family_name", 200, IDB_CF_REQUIRED),
	TEXT("given_name", 200, IDB_CF_REQUIRED),
	TEXT("other_names", 500, 0),
	DATE("date_of_birth", 0),
	TEXT("country_of_birth", 100, 0),
	TEXT("citizenship", 100, 0),
	PATTERN("email", IDB_CK_TEXT, 254, 0, email, "is not a valid email address"),
	TEXT("phone", 50, 0),
	TEXT("address", 1000, IDB_CF_MULTILINE),
	PATTERN("a_number", IDB_CK_SECRET, 10, IDB_CF_LAST4, a_number, "must match ^A?[0-9]{8,9}$"),
	PATTERN("passport_number", IDB_CK_SECRET, 20, 0, passport, "must be 5 to 20 letters and digits"),
	PATTERN("ssn", IDB_CK_SECRET, 11, 0, ssn, "must match ^[0-9]{3}-?[0-9]{2}-?[0-9]{4}$"),
	TEXT("notes", 100000, IDB_CF_MULTILINE),
};
static const struct idb_rfilter client_filters[] = {{"q", IDB_FK_Q, NULL}};
static const char *const client_fts[] = {"family_name", "given_name", "other_names", "email", NULL};

const struct idb_resource idb_res_clients = {"clients", 'c', ROWS(client_cols), ROWS(client_filters),
                                             "clients_fts", client_fts};

static const char *const case_status[] = {"open", "pending", "approved", "denied", "closed", "withdrawn", NULL};
static const struct idb_rcol case_cols[] = {
	REF("client_id", IDB_CF_REQUIRED, "clients"),
	TEXT("case_type", 40, IDB_CF_REQUIRED),
	TEXT("title", 200, 0),
	ENUM("status", 0, case_status, "open"),
	PATTERN("receipt_number", IDB_CK_TEXT, 13, 0, receipt, "must match ^[A-Z]{3}[0-9]{10}$"),
	DATE("priority_date", 0),
	REF("assigned_user_id", 0, "users"),
	TEXT("notes", 100000, IDB_CF_MULTILINE),
};
static const struct idb_rfilter case_filters[] = {
	{"client_id", IDB_FK_EQ, "client_id"},
	{"status", IDB_FK_EQ, "status"},
	{"q", IDB_FK_Q, NULL},
};
static const char *const case_fts[] = {"title", "case_type", "receipt_number", NULL};

const struct idb_resource idb_res_cases = {"cases", 'k', ROWS(case_cols), ROWS(case_filters), "cases_fts", case_fts};

static const char *const event_kinds[] = {"deadline", "appointment", "hearing", "biometrics", "interview", "other",
                                          NULL};
static const char *const sync_states[] = {"none", "pending", "synced", "failed", NULL};
static const struct idb_rcol event_cols[] = {
	TEXT("title", 200, IDB_CF_REQUIRED),
	ENUM("kind", IDB_CF_REQUIRED, event_kinds, NULL),
	TIME("starts_at", IDB_CF_REQUIRED),
	TIME("ends_at", 0),
	BOOL("all_day"),
	TEXT("location", 500, 0),
	REF("case_id", 0, "cases"),
	REF("owner_user_id", IDB_CF_SELF, "users"),
	BOOL("sync"),
	ENUM("sync_status", IDB_CF_READONLY, sync_states, "none"),
};
static const struct idb_rfilter event_filters[] = {
	{"case_id", IDB_FK_EQ, "case_id"},
	{"from", IDB_FK_FROM, "starts_at"},
	{"to", IDB_FK_TO, "starts_at"},
};

const struct idb_resource idb_res_events = {"events", 'e', ROWS(event_cols), ROWS(event_filters), NULL, NULL};

static const struct idb_rcol note_cols[] = {
	TEXT("body", 100000, IDB_CF_REQUIRED | IDB_CF_MULTILINE),
	REF("client_id", 0, "clients"),
	REF("case_id", 0, "cases"),
};
static const struct idb_rfilter note_filters[] = {
	{"client_id", IDB_FK_EQ, "client_id"},
	{"case_id", IDB_FK_EQ, "case_id"},
};

const struct idb_resource idb_res_notes = {"notes", 'n', ROWS(note_cols), ROWS(note_filters), NULL, NULL};

static const struct idb_rcol credential_cols[] = {
	REF("client_id", IDB_CF_REQUIRED, "clients"),
	TEXT("label", 200, IDB_CF_REQUIRED),
	PATTERN("url", IDB_CK_TEXT, 2000, 0, url, "must be an http:// or https:// URL"),
	TEXT("username", 200, 0),
	PATTERN("password", IDB_CK_SECRET, 1000, 0, NULL, NULL),
};
static const struct idb_rfilter credential_filters[] = {{"client_id", IDB_FK_EQ, "client_id"}};

const struct idb_resource idb_res_credentials = {"credentials", 'r', ROWS(credential_cols), ROWS(credential_filters),
                                                 NULL, NULL};
