/* SPDX-License-Identifier: ISC */
/*
 * immidb-admin: the operator's command. It only parses arguments and calls
 * the same lib/ functions the server uses. Exit status: 0 ok, 1 failure,
 * 2 usage error; errors on stderr in one line.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "api/api.h"
#include "api/records_impl.h"
#include "api/rotate.h"
#include "audit/accesslog.h"
#include "audit/changelog.h"
#include "audit/checkpoint.h"
#include "auth/auth.h"
#include "auth/settings.h"
#include "auth/sysadmin.h"
#include "outbox/outbox.h"
#include "auth/users.h"
#include "conf/conf.h"
#include "crypto/key.h"
#include "crypto/pw.h"
#include "store/backup.h"
#include "store/db.h"
#include "store/mig.h"
#include "store/registry.h"

#include "cli/cli.h"

int
fail(const char *what, const char *why)
{
	fprintf(stderr, "immidb-admin: %s%s%s\n", what, why ? ": " : "", why ? why : "");
	return EXIT_FAILURE;
}

int
usage(void)
{
	fprintf(stderr,
	        "usage: immidb-admin [--config FILE] [--data DIR] COMMAND ...\n"
	        "  init\n"
	        "  org create --slug S --name N\n"
	        "  org list [--json]\n"
	        "  org settings --org S [--require-mfa on|off] [--ip-allowlist CIDR,...] [--notify-sysadmin-access on|off]\n"
	        "  user add --org S --email E --name N --role admin|member|readonly [--password-stdin]\n"
	        "  user list --org S [--json]\n"
	        "  demo-data --org S                (sample clients, cases, events for make run)\n"
	        "  sysadmin add --email E --name N [--password-stdin]\n"
	        "  sysadmin assign --email E --org S [--expires YYYY-MM-DD]\n"
	        "  sysadmin unassign --email E --org S\n"
	        "  access --org S --sysadmin E --reason R -- sql \"<statement>\" | export [--out F]\n"
	        "  log verify --org S | --all\n"
	        "  log export --org S [--out F]\n"
	        "  log checkpoint --org S\n"
	        "  notify deliver [--once]\n"
	        "  migrate [--dry-run]\n"
	        "  export --org S [--out F]\n"
	        "  backup [--out DIR] | backup verify DIR | backup prune --keep-days N (N >= 30)\n"
	        "  restore --org S --from DIR\n"
	        "  maintenance on|off\n"
	        "  announce-update --at TIME --summary TEXT\n"
	        "  keys rotate --org S | keys rotate-master\n");
	return EXIT_USAGE;
}

/* The value of "--name VALUE" among the sub-command's words, or NULL. */
const char *
opt(const struct cli *c, const char *name)
{
	int i;

	for (i = 0; i + 1 < c->argc; i++)
		if (strcmp(c->argv[i], name) == 0)
			return c->argv[i + 1];
	return NULL;
}

int
flag(const struct cli *c, const char *name)
{
	int i;

	for (i = 0; i < c->argc; i++)
		if (strcmp(c->argv[i], name) == 0)
			return 1;
	return 0;
}

/* Every word must be a known option (with a value where it takes one). */
int
check_opts(const struct cli *c, const char *const *with_value, const char *const *flags)
{
	const char *const *p;
	int i, ok;

	for (i = 0; i < c->argc; i++) {
		ok = 0;
		for (p = with_value; p && *p; p++)
			if (strcmp(c->argv[i], *p) == 0 && i + 1 < c->argc) {
				ok = 1;
				i++;
				break;
			}
		for (p = flags; !ok && p && *p; p++)
			if (strcmp(c->argv[i], *p) == 0)
				ok = 1;
		if (!ok) {
			fprintf(stderr, "immidb-admin: unexpected argument '%s'\n", c->argv[i]);
			return -1;
		}
	}
	return 0;
}

/* Loads the master key and opens the registry; messages name the cause. */
int
open_registry(struct cli *c, int allow_behind)
{
	enum idb_err e;
	int did;

	/* A master-key rotation cut short is finished or undone first. */
	if ((e = idb_master_recover(&c->conf, &did)) != IDB_OK)
		return fail("master key", "a rotation was cut short and cannot be finished: see docs/operations.md");
	if (did)
		fprintf(stderr, "immidb-admin: master key: %s a rotation that was cut short\n",
		        did == 2 ? "finished" : "undid");
	if ((e = idb_key_master_load(c->conf.master_key_file, &c->master)) != IDB_OK)
		return fail(c->conf.master_key_file,
		            e == IDB_E_PERM ? "master key is readable by group or others (chmod 600)"
		            : e == IDB_E_IO ? "cannot read the master key (run immidb-admin init?)"
		                            : "not a master key (64 hex digits)");
	e = idb_reg_open(&c->conf, c->master, 0, &c->reg);
	if (e == IDB_E_SCHEMA_BEHIND && !allow_behind)
		return fail("registry", "schema is behind: run immidb-admin migrate");
	if (e != IDB_OK && e != IDB_E_SCHEMA_BEHIND)
		return fail("registry", e == IDB_E_BADKEY ? "wrong master key: the registry does not open with it"
		                        : e == IDB_E_NOT_FOUND ? "not found (run immidb-admin init?)"
		                                               : idb_err_str(e));
	return 0;
}

static int
cmd_init(struct cli *c)
{
	if (check_opts(c, NULL, NULL) != 0)
		return EXIT_USAGE;
	if (idb_reg_init(&c->conf, c->err, sizeof(c->err)) != IDB_OK)
		return fail("init", c->err);
	printf("initialised %s\n", c->conf.data_dir);
	return 0;
}

static int
cmd_org_create(struct cli *c)
{
	static const char *const vals[] = {"--slug", "--name", NULL};
	const char *slug = opt(c, "--slug"), *name = opt(c, "--name");
	struct idb_org o;
	enum idb_err e;

	if (check_opts(c, vals, NULL) != 0 || slug == NULL || name == NULL)
		return usage();
	if (open_registry(c, 0) != 0)
		return EXIT_FAILURE;
	if ((e = idb_reg_org_create(&c->conf, c->reg, c->master, slug, name, &o, c->err, sizeof(c->err))) != IDB_OK)
		return fail("org create", c->err);
	printf("%s\n", o.id);
	return 0;
}

static void
org_row(const struct idb_org *o, void *arg)
{
	cJSON *arr = arg, *j;

	if (arr == NULL) {
		printf("%s\t%s\t%s\t%s\n", o->slug, o->id, o->state, o->name);
		return;
	}
	if ((j = cJSON_CreateObject()) == NULL)
		return;
	cJSON_AddStringToObject(j, "id", o->id);
	cJSON_AddStringToObject(j, "slug", o->slug);
	cJSON_AddStringToObject(j, "name", o->name);
	cJSON_AddStringToObject(j, "state", o->state);
	cJSON_AddStringToObject(j, "created_at", o->created_at);
	cJSON_AddItemToArray(arr, j);
}

int
print_json(cJSON *j)
{
	char *s = cJSON_PrintUnformatted(j);

	if (s == NULL)
		return fail("out of memory", NULL);
	printf("%s\n", s);
	cJSON_free(s);
	return 0;
}

static int
cmd_org_list(struct cli *c)
{
	static const char *const flags[] = {"--json", NULL};
	cJSON *arr = NULL;
	int rc = 0;

	if (check_opts(c, NULL, flags) != 0)
		return EXIT_USAGE;
	if (open_registry(c, 0) != 0)
		return EXIT_FAILURE;
	if (flag(c, "--json") && (arr = cJSON_CreateArray()) == NULL)
		return fail("out of memory", NULL);
	if (idb_reg_org_list(c->reg, org_row, arr) != IDB_OK)
		rc = fail("org list", "registry read failed");
	else if (arr != NULL)
		rc = print_json(arr);
	cJSON_Delete(arr);
	return rc;
}

/*
 * An access-log entry for what this command did to an org (via=server). The
 * operator is not an application user: the actor is the system. Must run in
 * a transaction (the one of the change, or its own for a read).
 */
enum idb_err
server_entry(sqlite3 *db, const char *action, const char *target, const char *detail)
{
	struct idb_log_entry le;

	memset(&le, 0, sizeof(le));
	le.actor_kind = "system";
	le.actor_id = "immidb-admin";
	le.via = "server";
	le.action = action;
	le.target = target;
	le.outcome = "ok";
	le.detail = detail;
	return idb_log_append(db, &le);
}

/* A read by this command, logged in its own transaction; fails closed. */
int
server_read(sqlite3 *db, const char *action, const char *target, const char *detail)
{
	enum idb_err e;

	if ((e = idb_db_begin(db)) == IDB_OK && (e = server_entry(db, action, target, detail)) == IDB_OK)
		e = idb_db_commit(db);
	if (e != IDB_OK) {
		idb_db_rollback(db);
		return fail("access log", "cannot write the entry; nothing was read");
	}
	return 0;
}

/* Opens an org's database by slug; *keys is wiped by the caller. */
int
open_org(struct cli *c, const char *slug, struct idb_org *o, sqlite3 **db, struct idb_org_keys *keys)
{
	struct idb_org_keys k;
	enum idb_err e;

	if ((e = idb_reg_org_find(c->reg, slug, o)) != IDB_OK)
		return fail(slug, e == IDB_E_NOT_FOUND ? "no such org" : idb_err_str(e));
	e = idb_org_open_keys(&c->conf, c->reg, c->master, o->id, 0, db, &k);
	if (keys != NULL && e == IDB_OK)
		*keys = k;
	idb_org_keys_wipe(&k);
	if (e != IDB_OK)
		return fail(slug, e == IDB_E_SCHEMA_BEHIND ? "schema is behind: run immidb-admin migrate" : idb_err_str(e));
	return 0;
}

/* Reads one line of a password from stdin (at most IDB_PW_MAX characters of UTF-8). */
int
read_password(char *buf, size_t size)
{
	size_t n;

	if (fgets(buf, (int)size, stdin) == NULL)
		return -1;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (!feof(stdin))
		return -1; /* longer than the buffer */
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return 0;
}

static int
cmd_user_add(struct cli *c)
{
	static const char *const vals[] = {"--org", "--email", "--name", "--role", NULL};
	static const char *const flags[] = {"--password-stdin", NULL};
	const char *slug = opt(c, "--org"), *email = opt(c, "--email"), *name = opt(c, "--name"),
	           *role = opt(c, "--role"), *field = NULL;
	char pw[4 * IDB_PW_MAX + 2];
	int generated = 0, rc = 0;
	struct idb_user u;
	struct idb_org o;
	sqlite3 *db = NULL;
	enum idb_err e;

	if (check_opts(c, vals, flags) != 0 || !slug || !email || !name || !role)
		return usage();
	if (flag(c, "--password-stdin")) {
		if (read_password(pw, sizeof(pw)) != 0)
			return fail("user add", "cannot read the password from standard input");
	} else {
		idb_pw_generate(pw);
		generated = 1;
	}
	if (open_registry(c, 0) != 0 || open_org(c, slug, &o, &db, NULL) != 0) {
		rc = EXIT_FAILURE;
		goto out;
	}
	if ((e = idb_db_begin(db)) == IDB_OK && (e = idb_user_create(db, email, name, role, pw, &u, &field)) == IDB_OK &&
	    (e = idb_api_user_created(db, NULL, &u)) == IDB_OK &&
	    (e = server_entry(db, "user.create", "users", u.id)) == IDB_OK)
		e = idb_db_commit(db);
	if (e != IDB_OK) {
		idb_db_rollback(db);
		rc = fail("user add", e == IDB_E_CONFLICT ? "a user with this email exists"
		                      : e == IDB_E_VALIDATION
		                          ? (strcmp(field, "password") == 0 ? "password must be 12 to 1024 characters"
		                             : strcmp(field, "role") == 0   ? "role must be admin, member or readonly"
		                             : strcmp(field, "email") == 0  ? "not a valid email address"
		                                                            : "name must be 1 to 200 characters")
		                          : idb_err_str(e));
		goto out;
	}
	printf("%s\n", u.id);
	if (generated)
		printf("password: %s\n", pw);
out:
	sodium_memzero(pw, sizeof(pw));
	idb_db_close(db);
	return rc;
}

static void
user_row(const struct idb_user *u, void *arg)
{
	cJSON *arr = arg, *j;

	if (arr == NULL) {
		printf("%s\t%s\t%s\t%s\t%s\n", u->email, u->id, u->role, u->disabled ? "disabled" : "active", u->name);
		return;
	}
	if ((j = cJSON_CreateObject()) == NULL)
		return;
	cJSON_AddStringToObject(j, "id", u->id);
	cJSON_AddStringToObject(j, "email", u->email);
	cJSON_AddStringToObject(j, "name", u->name);
	cJSON_AddStringToObject(j, "role", u->role);
	cJSON_AddBoolToObject(j, "disabled", u->disabled);
	cJSON_AddStringToObject(j, "created_at", u->created_at);
	cJSON_AddNumberToObject(j, "version", (double)u->version);
	cJSON_AddItemToArray(arr, j);
}

static int
cmd_user_list(struct cli *c)
{
	static const char *const vals[] = {"--org", NULL};
	static const char *const flags[] = {"--json", NULL};
	const char *slug = opt(c, "--org");
	cJSON *arr = NULL;
	struct idb_org o;
	sqlite3 *db = NULL;
	int rc = 0;

	if (check_opts(c, vals, flags) != 0 || slug == NULL)
		return usage();
	if (open_registry(c, 0) != 0 || open_org(c, slug, &o, &db, NULL) != 0)
		return EXIT_FAILURE;
	if (server_read(db, "record.list", "users", "") != 0)
		rc = EXIT_FAILURE;
	else if (flag(c, "--json") && (arr = cJSON_CreateArray()) == NULL)
		rc = fail("out of memory", NULL);
	else if (idb_user_list(db, user_row, arr) != IDB_OK)
		rc = fail("user list", "read failed");
	else if (arr != NULL)
		rc = print_json(arr);
	cJSON_Delete(arr);
	idb_db_close(db);
	return rc;
}

/* "on" -> 1, "off" -> 0, else -1. */
static int
onoff(const char *v)
{
	if (v == NULL)
		return -1;
	return strcmp(v, "on") == 0 ? 1 : strcmp(v, "off") == 0 ? 0 : -1;
}

static int
cmd_org_settings(struct cli *c)
{
	static const char *const vals[] = {"--org", "--require-mfa", "--ip-allowlist", "--notify-sysadmin-access", NULL};
	const char *slug = opt(c, "--org"), *mfa = opt(c, "--require-mfa"), *ips = opt(c, "--ip-allowlist"),
	           *notify = opt(c, "--notify-sysadmin-access");
	static struct idb_settings old;
	struct idb_settings *s = NULL;
	struct idb_org o;
	sqlite3 *db = NULL;
	cJSON *j;
	enum idb_err e;
	int rc = 0;

	if (check_opts(c, vals, NULL) != 0 || slug == NULL || (mfa && onoff(mfa) < 0) || (notify && onoff(notify) < 0))
		return usage();
	if (open_registry(c, 0) != 0 || open_org(c, slug, &o, &db, NULL) != 0)
		return EXIT_FAILURE;
	if ((s = calloc(1, sizeof(*s))) == NULL || idb_settings_load(db, s) != IDB_OK) {
		rc = fail("org settings", "cannot read the settings");
		goto out;
	}
	old = *s;
	if (mfa != NULL)
		s->require_mfa = onoff(mfa);
	if (notify != NULL)
		s->notify_sysadmin_access = onoff(notify);
	if (ips != NULL && idb_settings_set_allowlist(s, ips) != IDB_OK) {
		rc = fail("--ip-allowlist", "expected IPv4/IPv6 addresses or CIDR ranges, separated by commas");
		goto out;
	}
	if (mfa != NULL || notify != NULL || ips != NULL) {
		struct idb_actor who = {"system", "immidb-admin", ""};
		cJSON *before = idb_settings_json(&old), *after = NULL, *chg = cJSON_CreateObject();
		const cJSON *t;

		if ((e = idb_db_begin(db)) == IDB_OK && (e = idb_settings_save(db, s)) == IDB_OK) {
			after = idb_settings_json(s);
			for (t = after ? after->child : NULL; t != NULL && e == IDB_OK && chg != NULL; t = t->next)
				if (strcmp(t->string, "version") != 0 &&
				    !cJSON_Compare(cJSON_GetObjectItemCaseSensitive(before, t->string), t, 1))
					e = idb_chg_field(chg, t->string, cJSON_GetObjectItemCaseSensitive(before, t->string), t);
			if (e == IDB_OK && chg != NULL && chg->child != NULL)
				e = idb_chg_append(db, &who, "update", "settings", o.id, chg);
		}
		cJSON_Delete(before);
		cJSON_Delete(after);
		cJSON_Delete(chg);
		if (e == IDB_OK &&
		    (e = idb_auth_event(db, time(NULL), "settings_updated", "", "", "", "via=server")) == IDB_OK &&
		    (e = server_entry(db, "settings.update", "settings", "")) == IDB_OK)
			e = idb_db_commit(db);
		if (e != IDB_OK) {
			idb_db_rollback(db);
			rc = fail("org settings", idb_err_str(e));
			goto out;
		}
	}
	if ((j = idb_settings_json(s)) != NULL) {
		rc = print_json(j);
		cJSON_Delete(j);
	}
out:
	free(s);
	idb_db_close(db);
	return rc;
}

static void
first_admin(const struct idb_user *u, void *arg)
{
	char *id = arg;

	if (id[0] == '\0' && strcmp(u->role, "admin") == 0 && !u->disabled)
		memcpy(id, u->id, IDB_ID_LEN + 1);
}

/* Creates one record from JSON text with %s slots filled from ids; prints nothing. */
static enum idb_err
demo_one(const struct idb_rec_env *env, const struct idb_resource *r, const char *json, char id[IDB_ID_LEN + 1])
{
	cJSON *body = cJSON_Parse(json), *fields = NULL;
	enum idb_err e;

	if (body == NULL)
		return IDB_E_INVALID_JSON;
	e = idb_rec_create(env, r, body, id, &fields);
	cJSON_Delete(body);
	cJSON_Delete(fields);
	return e;
}

/*
 * Sample records for the demo org of `make run`: three clients with cases,
 * deadlines and appointments, a note and a portal credential. They go through
 * the same record engine as the API (validation, encryption, change log).
 */
static int
cmd_demo_data(struct cli *c)
{
	static const char *const vals[] = {"--org", NULL};
	const char *slug = opt(c, "--org");
	char owner[IDB_ID_LEN + 1] = "", cl[3][IDB_ID_LEN + 1], ks[3][IDB_ID_LEN + 1], id[IDB_ID_LEN + 1];
	char json[1024], pw[21];
	struct idb_rec_env env;
	struct idb_org_keys k;
	struct idb_arena arena;
	struct idb_org o;
	sqlite3 *db = NULL;
	enum idb_err e = IDB_OK;
	int rc = 0;

	if (check_opts(c, vals, NULL) != 0 || slug == NULL)
		return usage();
	if (open_registry(c, 0) != 0 || open_org(c, slug, &o, &db, &k) != 0)
		return EXIT_FAILURE;
	if (idb_user_list(db, first_admin, owner) != IDB_OK ||
	    owner[0] == '\0') {
		idb_db_close(db);
		idb_org_keys_wipe(&k);
		return fail("demo-data", "the org needs an active admin first (immidb-admin user add)");
	}
	idb_arena_init(&arena, IDB_ARENA_MAX);
	env.db = db;
	env.org_id = o.id;
	env.keys = &k;
	env.actor.kind = "system";
	env.actor.id = "immidb-admin";
	env.actor.email = "";
	env.arena = &arena;
#define DEMO(res, out, ...)                                                                                    \
	do {                                                                                                   \
		if (e == IDB_OK && snprintf(json, sizeof(json), __VA_ARGS__) < (int)sizeof(json))                \
			e = demo_one(&env, &res, json, out);                                                   \
	} while (0)
	DEMO(idb_res_clients, cl[0],
	     "{\"family_name\":\"Garcia\",\"given_name\":\"Mar\u00eda Elena\",\"date_of_birth\":\"1985-04-12\","
	     "\"country_of_birth\":\"Mexico\",\"citizenship\":\"Mexico\",\"email\":\"maria.garcia@example.com\","
	     "\"phone\":\"+1 555 0100\",\"a_number\":\"A201234567\",\"passport_number\":\"G12345678\"}");
	DEMO(idb_res_clients, cl[1],
	     "{\"family_name\":\"Nguyen\",\"given_name\":\"Thanh\",\"date_of_birth\":\"1990-09-02\","
	     "\"country_of_birth\":\"Vietnam\",\"citizenship\":\"Vietnam\",\"email\":\"thanh.nguyen@example.com\","
	     "\"a_number\":\"098765432\"}");
	DEMO(idb_res_clients, cl[2],
	     "{\"family_name\":\"Okafor\",\"given_name\":\"Chinedu\",\"country_of_birth\":\"Nigeria\","
	     "\"citizenship\":\"Nigeria\",\"passport_number\":\"A09876543\",\"phone\":\"+1 555 0177\"}");
	DEMO(idb_res_cases, ks[0],
	     "{\"client_id\":\"%s\",\"case_type\":\"I-130\",\"title\":\"Spousal petition\",\"status\":\"pending\","
	     "\"receipt_number\":\"IOE0912345678\",\"priority_date\":\"2025-03-14\",\"assigned_user_id\":\"%s\"}",
	     cl[0], owner);
	DEMO(idb_res_cases, ks[1], "{\"client_id\":\"%s\",\"case_type\":\"N-400\",\"title\":\"Naturalization\"}", cl[1]);
	DEMO(idb_res_cases, ks[2],
	     "{\"client_id\":\"%s\",\"case_type\":\"H-1B\",\"title\":\"Cap petition\",\"status\":\"approved\","
	     "\"receipt_number\":\"WAC2590012345\"}",
	     cl[2]);
	DEMO(idb_res_events, id,
	     "{\"title\":\"Biometrics appointment\",\"kind\":\"biometrics\",\"starts_at\":\"2026-12-10T15:00:00Z\","
	     "\"ends_at\":\"2026-12-10T15:30:00Z\",\"location\":\"USCIS ASC, Los Angeles\",\"case_id\":\"%s\","
	     "\"owner_user_id\":\"%s\"}",
	     ks[0], owner);
	DEMO(idb_res_events, id,
	     "{\"title\":\"RFE response due\",\"kind\":\"deadline\",\"starts_at\":\"2027-01-15T23:59:00Z\","
	     "\"all_day\":true,\"case_id\":\"%s\",\"owner_user_id\":\"%s\"}",
	     ks[0], owner);
	DEMO(idb_res_events, id,
	     "{\"title\":\"Naturalization interview\",\"kind\":\"interview\",\"starts_at\":\"2027-02-03T14:30:00Z\","
	     "\"case_id\":\"%s\",\"owner_user_id\":\"%s\"}",
	     ks[1], owner);
	DEMO(idb_res_notes, id,
	     "{\"body\":\"Client confirmed the marriage certificate and joint lease are on the way.\","
	     "\"client_id\":\"%s\",\"case_id\":\"%s\"}",
	     cl[0], ks[0]);
	idb_pw_generate(pw);
	DEMO(idb_res_credentials, id,
	     "{\"client_id\":\"%s\",\"label\":\"USCIS online account\",\"url\":\"https://my.uscis.gov/\","
	     "\"username\":\"maria.garcia\",\"password\":\"%s\"}",
	     cl[0], pw);
#undef DEMO
	sodium_memzero(pw, sizeof(pw));
	sodium_memzero(json, sizeof(json));
	if (e == IDB_OK && server_read(db, "record.create", "demo-data", "3 clients, 3 cases, 3 events, 1 note, 1 credential") != 0)
		e = IDB_E_UNAVAILABLE;
	if (e != IDB_OK)
		rc = fail("demo-data", idb_err_str(e));
	else
		printf("demo data added to %s: 3 clients, 3 cases, 3 events, 1 note, 1 credential\n", slug);
	idb_arena_free(&arena);
	idb_org_keys_wipe(&k);
	idb_db_close(db);
	return rc;
}


struct mig_print {
	const char *db;
	int dry;
	int pending;      /* files listed (dry) or started */
	const char *last; /* the file last started: the one that failed, if one did */
};

static int
mig_note(const struct idb_mig *m, void *arg)
{
	struct mig_print *p = arg;

	printf("%s: %s%s\n", p->db, p->dry ? "pending " : "applying ", m->name);
	p->pending++;
	p->last = m->name;
	return p->dry;
}

void
collect(const struct idb_org *o, void *arg)
{
	struct org_ids *ids = arg;
	struct idb_org *nv;

	if (ids->n == ids->cap) {
		ids->cap = ids->cap ? 2 * ids->cap : 16;
		if ((nv = realloc(ids->v, ids->cap * sizeof(*nv))) == NULL)
			return;
		ids->v = nv;
	}
	ids->v[ids->n++] = *o;
}

/* Counts the pending files of one database (a dry pass, nothing printed). */
static int
mig_count(const struct idb_mig *m, void *arg)
{
	(void)m;
	(*(int *)arg)++;
	return 1;
}

/* One org's database, whatever its schema (migrate opens those that are behind). */
static enum idb_err
open_any_schema(struct cli *c, const struct idb_org *o, sqlite3 **db)
{
	struct idb_org_keys k;
	enum idb_err e = idb_org_open_keys(&c->conf, c->reg, c->master, o->id, IDB_DB_ANY_SCHEMA, db, &k);

	idb_org_keys_wipe(&k);
	return e == IDB_E_SCHEMA_BEHIND ? IDB_OK : e;
}

/*
 * The files pending in the registry and every org, or -1 if a database
 * cannot be migrated (a changed checksum, newer than this binary, does not
 * open): each such database is named on stderr, and nothing is done.
 */
static int
mig_pending(struct cli *c, const struct org_ids *ids)
{
	sqlite3 *db;
	enum idb_err e;
	size_t i;
	int n = 0, applied, bad = 0;

	if (idb_mig_apply(c->reg, &idb_mig_registry, mig_count, &n, &applied, c->err, sizeof(c->err)) != IDB_OK) {
		fprintf(stderr, "immidb-admin: migrate registry: %s\n", c->err);
		bad++;
	}
	for (i = 0; i < ids->n; i++) {
		db = NULL;
		if ((e = open_any_schema(c, &ids->v[i], &db)) != IDB_OK)
			snprintf(c->err, sizeof(c->err), "%s", idb_err_str(e));
		else
			e = idb_mig_apply(db, &idb_mig_org, mig_count, &n, &applied, c->err, sizeof(c->err));
		if (e != IDB_OK) {
			fprintf(stderr, "immidb-admin: migrate %s: %s\n", ids->v[i].slug, c->err);
			bad++;
		}
		idb_db_close(db);
	}
	return bad ? -1 : n;
}

/*
 * The schema.migrate entry of an org (via=system), once its access log
 * exists: outcome ok, or failed naming the file that failed (the versions
 * are those the database went through). 0, or EXIT_FAILURE after a message.
 */
static int
mig_entry(sqlite3 *db, const char *slug, int from, int to, const char *failed)
{
	struct idb_log_entry le;
	char detail[256];
	int version = 0, n;

	if (idb_mig_current(db, &idb_mig_org, &version) != IDB_OK || version < 4)
		return 0;
	if (failed != NULL)
		n = snprintf(detail, sizeof(detail), "schema version %d to %d; %s failed", from, to, failed);
	else
		n = snprintf(detail, sizeof(detail), "schema version %d to %d", from, to);
	if (n < 0 || (size_t)n >= sizeof(detail))
		n = snprintf(detail, sizeof(detail), "schema version %d to %d%s", from, to, failed ? "; a file failed" : "");
	if (n < 0)
		detail[0] = '\0';
	memset(&le, 0, sizeof(le));
	le.actor_kind = "system";
	le.actor_id = "immidb-admin";
	le.via = "system";
	le.action = "schema.migrate";
	le.target = "database";
	le.outcome = failed ? "failed" : "ok";
	le.detail = detail;
	if (idb_db_begin(db) != IDB_OK || idb_log_append(db, &le) != IDB_OK || idb_db_commit(db) != IDB_OK) {
		idb_db_rollback(db);
		fprintf(stderr, "immidb-admin: migrate %s: the schema.migrate entry could not be written\n", slug);
		return EXIT_FAILURE;
	}
	return 0;
}

/* Applies the pending files of one org; 0 or EXIT_FAILURE after a message. */
static int
mig_org(struct cli *c, const struct idb_org *o, struct mig_print *p, int *total)
{
	sqlite3 *db = NULL;
	enum idb_err e;
	int from = -1, applied = 0, rc = 0, started;

	p->db = o->slug;
	p->last = NULL;
	started = p->pending;
	if ((e = open_any_schema(c, o, &db)) == IDB_OK && (e = idb_mig_current(db, &idb_mig_org, &from)) == IDB_OK)
		e = idb_mig_apply(db, &idb_mig_org, mig_note, p, &applied, c->err, sizeof(c->err));
	else {
		snprintf(c->err, sizeof(c->err), "%s", idb_err_str(e));
		from = -1;
	}
	if (e != IDB_OK && from >= 0) {
		fprintf(stderr, "immidb-admin: migrate %s: %s (the database stays at schema version %d)\n", o->slug,
		        c->err, from + applied);
		rc = EXIT_FAILURE;
	} else if (e != IDB_OK) {
		fprintf(stderr, "immidb-admin: migrate %s: %s\n", o->slug, c->err);
		rc = EXIT_FAILURE;
	}
	/* Something was applied, or a file was started and failed: the org's log says so. */
	if (!p->dry && from >= 0 && (applied > 0 || (e != IDB_OK && p->pending > started && p->last != NULL)) &&
	    mig_entry(db, o->slug, from, from + applied, e != IDB_OK ? p->last : NULL) != 0)
		rc = EXIT_FAILURE;
	*total += applied;
	idb_db_close(db);
	return rc;
}

/*
 * migrate: the registry, then each org. Unless a dry run, every database is
 * checked first (a changed checksum or a database newer than this binary
 * refuses the whole run, naming each such database), then a backup of
 * everything is taken (<data>/backups/<date>-pre-migrate-<time>/) and
 * nothing is applied without it; each file is applied in its own
 * transaction and an org stops at its first failure (the other orgs are
 * still migrated). Each org that changed gets a schema.migrate entry. Once
 * every database is at the new schema, the orgs with notify_updates
 * "after" are told (update_done).
 */
static int
cmd_migrate(struct cli *c)
{
	static const char *const flags[] = {"--dry-run", NULL};
	struct mig_print p = {NULL, 0, 0, NULL};
	struct org_ids ids = {0, 0, NULL};
	char dir[IDB_PATH_MAX], now[IDB_TIME_LEN], what[128];
	int applied = 0, total = 0, pending, rc = 0;
	size_t i;

	if (check_opts(c, NULL, flags) != 0)
		return EXIT_USAGE;
	if (open_registry(c, 1) != 0)
		return EXIT_FAILURE;
	p.dry = flag(c, "--dry-run");
	if (idb_reg_org_list(c->reg, collect, &ids) != IDB_OK)
		return fail("migrate", "cannot list the orgs");
	if (!p.dry) {
		/* A database that cannot be migrated stops everything before the backup. */
		if ((pending = mig_pending(c, &ids)) < 0) {
			free(ids.v);
			return fail("migrate", "refused (see above): nothing was backed up or applied");
		}
		if (pending == 0) {
			free(ids.v);
			printf("nothing to migrate\n");
			return 0;
		}
		idb_time_now(now);
		if (snprintf(dir, sizeof(dir), "%s/backups/%.10s-pre-migrate-%.2s%.2s%.2s", c->conf.data_dir, now,
		             now + 11, now + 14, now + 17) >= (int)sizeof(dir) ||
		    idb_backup_all(&c->conf, c->reg, c->master, dir, c->err, sizeof(c->err)) != IDB_OK) {
			free(ids.v);
			return fail("migrate: the backup taken first failed, nothing was applied", c->err);
		}
		printf("backup: %s\n", dir);
	}
	p.db = "registry";
	if (idb_mig_apply(c->reg, &idb_mig_registry, mig_note, &p, &applied, c->err, sizeof(c->err)) != IDB_OK) {
		free(ids.v);
		return fail("migrate registry", c->err);
	}
	total += applied;
	for (i = 0; i < ids.n; i++)
		if (mig_org(c, &ids.v[i], &p, &total) != 0)
			rc = EXIT_FAILURE;
	free(ids.v);
	if (p.dry && p.pending == 0 && rc == 0)
		printf("nothing to migrate\n");
	/* The update is done only when every database is at the new schema. */
	if (!p.dry && total > 0 && rc == 0) {
		if (snprintf(what, sizeof(what), "ImmiDB %s, database schema version %d", IMMIDB_VERSION,
		             idb_mig_latest(&idb_mig_org)) >= (int)sizeof(what) ||
		    notify_update_done(c, what) != 0)
			rc = EXIT_FAILURE;
	}
	return rc;
}

static int
verify_one(struct cli *c, const struct idb_org *o, sqlite3 *db)
{
	unsigned char head[32];
	long long size, bad;
	char hex[65];
	int ok;

	if (idb_log_verify(db, &ok, &size, head, &bad) != IDB_OK)
		return fail(o->slug, "cannot read the access log");
	(void)c;
	if (!ok) {
		printf("%s: BROKEN at seq %lld (first bad seq %lld, %lld entries)\n", o->slug, bad, bad, size);
		return EXIT_FAILURE;
	}
	idb_hex(head, 32, hex);
	printf("%s: ok, %lld entries, head %s\n", o->slug, size, hex);
	return 0;
}

static int
cmd_log(struct cli *c, const char *what)
{
	static const char *const vals[] = {"--org", "--out", NULL};
	static const char *const flags[] = {"--all", NULL};
	const char *slug = opt(c, "--org"), *outp = opt(c, "--out");
	struct org_ids ids = {0, 0, NULL};
	struct idb_buf b;
	struct idb_org o;
	sqlite3 *db = NULL;
	cJSON *ck = NULL;
	size_t i;
	int rc = 0, all = flag(c, "--all");

	if (check_opts(c, vals, flags) != 0 || (slug == NULL) == !all || (all && strcmp(what, "verify") != 0) ||
	    (outp != NULL && strcmp(what, "export") != 0))
		return usage();
	if (open_registry(c, 0) != 0)
		return EXIT_FAILURE;
	if (all) {
		if (idb_reg_org_list(c->reg, collect, &ids) != IDB_OK)
			return fail("log verify", "cannot list the orgs");
		for (i = 0; i < ids.n; i++) {
			db = NULL;
			if (open_org(c, ids.v[i].slug, &o, &db, NULL) != 0 || verify_one(c, &o, db) != 0)
				rc = EXIT_FAILURE;
			idb_db_close(db);
		}
		free(ids.v);
		return rc;
	}
	if (open_org(c, slug, &o, &db, NULL) != 0)
		return EXIT_FAILURE;
	if (strcmp(what, "verify") == 0)
		rc = verify_one(c, &o, db);
	else if (strcmp(what, "checkpoint") == 0) {
		if (idb_ckpt_current(c->reg, c->master, c->conf.log_origin, o.slug, db, &ck) != IDB_OK)
			rc = fail("log checkpoint", "cannot sign a checkpoint");
		else
			fputs(cJSON_GetObjectItem(ck, "note")->valuestring, stdout);
		cJSON_Delete(ck);
	} else {
		/* One transaction: the entry (first, fail closed) and a consistent read
		 * that ends with it; the entry stays only if the export was written. */
		FILE *f = NULL;

		idb_buf_init(&b, (size_t)1 << 31);
		if (outp != NULL && (f = fopen(outp, "wx")) == NULL)
			rc = fail(outp, "cannot create the file (it must not exist yet)");
		else if (idb_db_begin(db) != IDB_OK || server_entry(db, "log.export", "access-log", "") != IDB_OK ||
		         idb_log_export_ndjson(c->reg, c->master, c->conf.log_origin, o.slug, db, &b) != IDB_OK)
			rc = fail("log export", "cannot write the entry or read the access log");
		else if (fwrite(b.data ? b.data : "", 1, b.len, f ? f : stdout) != b.len || (f != NULL && fclose(f) != 0))
			rc = fail(outp ? outp : "stdout", "cannot write the export");
		else if (idb_db_commit(db) != IDB_OK)
			rc = fail("log export", "cannot commit the entry");
		if (rc != 0) {
			idb_db_rollback(db);
			if (f != NULL && outp != NULL)
				unlink(outp);
		}
		idb_buf_free(&b);
	}
	idb_db_close(db);
	return rc;
}

static int cmd_log_verify(struct cli *c) { return cmd_log(c, "verify"); }
static int cmd_log_export(struct cli *c) { return cmd_log(c, "export"); }
static int cmd_log_checkpoint(struct cli *c) { return cmd_log(c, "checkpoint"); }

/* ---- sysadmins ------------------------------------------------------------ */

static int
cmd_sysadmin_add(struct cli *c)
{
	static const char *const vals[] = {"--email", "--name", NULL};
	static const char *const flags[] = {"--password-stdin", NULL};
	const char *email = opt(c, "--email"), *name = opt(c, "--name");
	char pw[4 * IDB_PW_MAX + 2], secret[33];
	struct idb_sysadmin a;
	enum idb_err e;
	int generated = 0, rc = 0;

	if (check_opts(c, vals, flags) != 0 || email == NULL || name == NULL)
		return usage();
	if (flag(c, "--password-stdin")) {
		if (read_password(pw, sizeof(pw)) != 0)
			return fail("sysadmin add", "cannot read the password from standard input");
	} else {
		idb_pw_generate(pw);
		generated = 1;
	}
	if (open_registry(c, 0) != 0) {
		rc = EXIT_FAILURE;
		goto out;
	}
	if ((e = idb_sysadmin_add(c->reg, c->master, email, name, pw, &a, secret)) != IDB_OK) {
		rc = fail("sysadmin add", e == IDB_E_CONFLICT     ? "a sysadmin with this email exists"
		                          : e == IDB_E_VALIDATION ? "check the email, the name and the password (12 to 1024 characters)"
		                                                  : idb_err_str(e));
		goto out;
	}
	printf("%s\n", a.id);
	if (generated)
		printf("password: %s\n", pw);
	/* The second factor is mandatory: the secret is shown once. */
	printf("totp secret: %s\n", secret);
	printf("otpauth://totp/ImmiDB%%20sysadmin:%s?secret=%s&issuer=ImmiDB&algorithm=SHA1&digits=6&period=30\n", a.email,
	       secret);
	sodium_memzero(secret, sizeof(secret));
out:
	sodium_memzero(pw, sizeof(pw));
	return rc;
}

static int
cmd_sysadmin_assign(struct cli *c)
{
	static const char *const vals[] = {"--email", "--org", "--expires", NULL};
	const char *email = opt(c, "--email"), *slug = opt(c, "--org"), *expires = opt(c, "--expires");
	char until[IDB_TIME_LEN];
	struct idb_sysadmin a;
	struct idb_org o;

	if (check_opts(c, vals, NULL) != 0 || email == NULL || slug == NULL)
		return usage();
	if (expires != NULL) {
		if (!idb_valid_date(expires))
			return fail("--expires", "expected a date YYYY-MM-DD");
		/* Until the end of that day, UTC. */
		memcpy(until, expires, 10);
		memcpy(until + 10, "T23:59:59.999Z", 15);
	}
	if (open_registry(c, 0) != 0)
		return EXIT_FAILURE;
	if (idb_sysadmin_by_email(c->reg, email, &a, NULL) != IDB_OK)
		return fail(email, "no such sysadmin");
	if (idb_reg_org_find(c->reg, slug, &o) != IDB_OK)
		return fail(slug, "no such org");
	if (idb_sysadmin_grant(c->reg, a.id, o.id, "assigned", expires ? until : NULL, "", NULL) != IDB_OK)
		return fail("sysadmin assign", "cannot write the grant");
	printf("%s assigned to %s%s%s\n", a.email, o.slug, expires ? " until " : "", expires ? expires : "");
	return 0;
}

static int
cmd_sysadmin_unassign(struct cli *c)
{
	static const char *const vals[] = {"--email", "--org", NULL};
	const char *email = opt(c, "--email"), *slug = opt(c, "--org");
	struct idb_sysadmin a;
	struct idb_org o;
	enum idb_err e;

	if (check_opts(c, vals, NULL) != 0 || email == NULL || slug == NULL)
		return usage();
	if (open_registry(c, 0) != 0)
		return EXIT_FAILURE;
	if (idb_sysadmin_by_email(c->reg, email, &a, NULL) != IDB_OK)
		return fail(email, "no such sysadmin");
	if (idb_reg_org_find(c->reg, slug, &o) != IDB_OK)
		return fail(slug, "no such org");
	if ((e = idb_sysadmin_revoke(c->reg, a.id, o.id)) != IDB_OK)
		return fail("sysadmin unassign", e == IDB_E_NOT_FOUND ? "no active assignment" : idb_err_str(e));
	printf("%s no longer assigned to %s\n", a.email, o.slug);
	return 0;
}

/* Server-side access notifies like application access: once an hour, if the org asks. */
static enum idb_err
server_access_notice(sqlite3 *db, const struct idb_sysadmin *a, const char *reason, const char *at)
{
	static struct idb_settings s;
	struct idb_buf b;
	enum idb_err e;

	if (idb_settings_load(db, &s) != IDB_OK)
		return IDB_E_UNAVAILABLE;
	if (!s.notify_sysadmin_access || idb_outbox_recent(db, "sysadmin_access", a->id, IDB_SYSADMIN_NOTIFY_EVERY))
		return IDB_OK;
	idb_buf_init(&b, 4096);
	idb_buf_addstr(&b, "A platform system administrator accessed your organization's data on the server "
	                   "(immidb-admin access).\r\n\r\nWho: ");
	idb_buf_addstr(&b, a->name);
	idb_buf_addstr(&b, " <");
	idb_buf_addstr(&b, a->email);
	idb_buf_addstr(&b, ">\r\nWhen: ");
	idb_buf_addstr(&b, at);
	idb_buf_addstr(&b, "\r\nReason given: ");
	idb_buf_addstr(&b, reason);
	idb_buf_addstr(&b, "\r\n\r\nIt is an entry of your access log (action server.access).");
	e = b.data ? idb_outbox_queue(db, "sysadmin_access", a->id, "A sysadmin accessed your data on the server", b.data)
	           : IDB_E_NOMEM;
	idb_buf_free(&b);
	return e;
}

static int
print_row(void *arg, int n, char **vals, char **names)
{
	int i;

	(void)arg;
	(void)names;
	for (i = 0; i < n; i++)
		printf("%s%s", i ? "\t" : "", vals[i] ? vals[i] : "NULL");
	printf("\n");
	return 0;
}

/* access ... -- export: the org's export on behalf of the sysadmin, its own org.export entry naming them. */
static int
access_export(struct cli *c, const struct idb_org *o, const struct idb_sysadmin *a, const char *reason,
              const char *out)
{
	struct idb_log_entry who;
	struct idb_org_keys k;
	struct idb_org again;
	sqlite3 *db = NULL;
	int rc;

	if (open_org(c, o->slug, &again, &db, &k) != 0)
		return EXIT_FAILURE;
	memset(&who, 0, sizeof(who));
	who.actor_kind = "sysadmin";
	who.actor_id = a->id;
	who.actor_email = a->email;
	who.via = "server";
	who.reason = reason;
	rc = export_run(c, &again, db, &k, out, &who);
	idb_org_keys_wipe(&k);
	idb_db_close(db);
	return rc;
}

/*
 * Server-side access to one org by a named sysadmin with a reason: the
 * entry (server.access, via=server) is written first; without a valid
 * sysadmin, an active grant to the org and a reason, nothing runs.
 * Sub-commands: sql "<statement>" (on a connection opened read-only).
 */
static int
cmd_access(struct cli *c)
{
	const char *slug = NULL, *email = NULL, *reason = NULL, *kind;
	struct idb_log_entry le;
	struct idb_org_keys k;
	struct idb_sysadmin a;
	struct idb_org o;
	char detail[64];
	sqlite3 *db = NULL, *ro = NULL;
	char *msg = NULL;
	enum idb_err e;
	int i, sub = -1, rc = 0, is_export;

	for (i = 0; i < c->argc; i++) {
		if (strcmp(c->argv[i], "--") == 0) {
			sub = i + 1;
			break;
		}
		if (i + 1 >= c->argc)
			return usage();
		if (strcmp(c->argv[i], "--org") == 0)
			slug = c->argv[++i];
		else if (strcmp(c->argv[i], "--sysadmin") == 0)
			email = c->argv[++i];
		else if (strcmp(c->argv[i], "--reason") == 0)
			reason = c->argv[++i];
		else
			return usage();
	}
	if (slug == NULL || email == NULL || reason == NULL || sub < 0 || sub >= c->argc)
		return usage();
	if (!idb_reason_valid(reason))
		return fail("--reason", "must be 5 to 500 characters of text");
	is_export = strcmp(c->argv[sub], "export") == 0;
	if (is_export && sub + 1 != c->argc && !(sub + 3 == c->argc && strcmp(c->argv[sub + 1], "--out") == 0))
		return usage();
	if (!is_export && (strcmp(c->argv[sub], "sql") != 0 || sub + 2 != c->argc))
		return fail("access", "sub-command must be: sql \"<statement>\" | export [--out F]");
	if (open_registry(c, 0) != 0)
		return EXIT_FAILURE;
	if (idb_sysadmin_by_email(c->reg, email, &a, NULL) != IDB_OK || a.disabled)
		return fail(email, "no such sysadmin");
	if (open_org(c, slug, &o, &db, NULL) != 0)
		return EXIT_FAILURE;
	if (idb_sysadmin_may(c->reg, a.id, o.id, &kind) != IDB_OK) {
		idb_db_close(db);
		return fail(email, "is not assigned to this org (and holds no break-glass grant)");
	}
	memset(&le, 0, sizeof(le));
	le.actor_kind = "sysadmin";
	le.actor_id = a.id;
	le.actor_email = a.email;
	le.via = "server";
	le.action = "server.access";
	le.target = "database";
	le.reason = reason;
	le.outcome = "ok";
	snprintf(detail, sizeof(detail), "%s (%s)", is_export ? "export" : "sql", kind);
	le.detail = detail;
	if ((e = idb_db_begin(db)) == IDB_OK && (e = idb_log_append(db, &le)) == IDB_OK)
		e = server_access_notice(db, &a, reason, le.at);
	if (e != IDB_OK || (e = idb_db_commit(db)) != IDB_OK) {
		idb_db_rollback(db);
		idb_db_close(db);
		return fail("access log", "cannot write the entry; nothing was run");
	}
	idb_db_close(db);
	if (is_export)
		return access_export(c, &o, &a, reason, sub + 3 == c->argc ? c->argv[sub + 2] : NULL);
	/* A second connection, read-only at open and by pragma: it cannot write. */
	e = idb_org_open_keys(&c->conf, c->reg, c->master, o.id, IDB_DB_READONLY, &ro, &k);
	idb_org_keys_wipe(&k);
	if (e != IDB_OK)
		return fail(slug, idb_err_str(e));
	idb_db_exec(ro, "PRAGMA query_only = 1");
	if (sqlite3_exec(ro, c->argv[sub + 1], print_row, NULL, &msg) != SQLITE_OK) {
		rc = fail("sql", msg ? msg : "failed");
		sqlite3_free(msg);
	}
	idb_db_close(ro);
	return rc;
}

/* ---- notifications -------------------------------------------------------- */

static volatile sig_atomic_t notify_stop;

static void
on_notify_stop(int sig)
{
	(void)sig;
	notify_stop = 1;
}

/* The org's admins are told when a break-glass grant ends: a notice queued in the org's outbox. */
static enum idb_err
grant_ended(const struct idb_grant_end *g, void *arg)
{
	struct cli *c = arg;
	struct idb_sysadmin a;
	struct idb_org_keys k;
	struct idb_buf b;
	sqlite3 *db = NULL;
	enum idb_err e;

	if ((e = idb_sysadmin_get(c->reg, g->sysadmin_id, &a)) != IDB_OK)
		return e;
	e = idb_org_open_keys(&c->conf, c->reg, c->master, g->org_id, 0, &db, &k);
	idb_org_keys_wipe(&k);
	if (e != IDB_OK)
		return e;
	idb_buf_init(&b, 8192);
	idb_buf_addstr(&b, "The break-glass access of a platform system administrator to your organization has ended.\r\n\r\nWho: ");
	idb_buf_addstr(&b, a.name);
	idb_buf_addstr(&b, " <");
	idb_buf_addstr(&b, a.email);
	idb_buf_addstr(&b, ">\r\nGranted until: ");
	idb_buf_addstr(&b, g->expires_at);
	idb_buf_addstr(&b, "\r\nReason given: ");
	idb_buf_addstr(&b, g->reason);
	idb_buf_addstr(&b, "\r\n\r\nEvery request made under it is in your access log (sysadmin.access).");
	if (b.data == NULL)
		e = IDB_E_NOMEM;
	else if ((e = idb_db_begin(db)) == IDB_OK &&
	         (e = idb_outbox_queue(db, "break_glass", a.id, "Break-glass access ended", b.data)) == IDB_OK)
		e = idb_db_commit(db);
	if (e != IDB_OK)
		idb_db_rollback(db);
	idb_buf_free(&b);
	idb_db_close(db);
	return e;
}

/* One pass over every org's due deliveries; the latest signed checkpoint goes with each mail. */
static int
notify_pass(struct cli *c, int *sent_all, int *failed_all)
{
	struct org_ids ids = {0, 0, NULL};
	struct idb_smtp smtp;
	struct idb_org o;
	sqlite3 *db;
	cJSON *ck;
	size_t i;
	int sent, failed, made, rc = 0;

	smtp.url = c->conf.smtp_url;
	smtp.from = c->conf.smtp_from;
	smtp.domain = c->conf.log_origin;
	*sent_all = *failed_all = 0;
	if (idb_sysadmin_ended(c->reg, grant_ended, c) != IDB_OK)
		rc = fail("notify", "cannot queue the notice of an ended break-glass grant");
	if (idb_reg_org_list(c->reg, collect, &ids) != IDB_OK)
		return fail("notify", "cannot list the orgs");
	for (i = 0; i < ids.n; i++) {
		db = NULL;
		ck = NULL;
		if (open_org(c, ids.v[i].slug, &o, &db, NULL) != 0) {
			rc = EXIT_FAILURE;
			continue;
		}
		if (idb_ckpt_daily(c->reg, c->master, c->conf.log_origin, o.slug, db, (long long)time(NULL), &made) != IDB_OK) {
			fprintf(stderr, "immidb-admin: notify %s: cannot sign or store the daily checkpoint\n", o.slug);
			rc = EXIT_FAILURE;
		}
		if (!idb_outbox_due(db, time(NULL))) {
			idb_db_close(db);
			continue; /* nothing due: no checkpoint to sign */
		}
		if (idb_ckpt_current(c->reg, c->master, c->conf.log_origin, o.slug, db, &ck) != IDB_OK ||
		    idb_outbox_deliver(db, &smtp, o.slug, cJSON_GetStringValue(cJSON_GetObjectItem(ck, "note")), time(NULL),
		                       &sent, &failed) != IDB_OK) {
			fprintf(stderr, "immidb-admin: notify %s: cannot read or mark the outbox\n", o.slug);
			rc = EXIT_FAILURE;
		} else {
			*sent_all += sent;
			*failed_all += failed;
		}
		cJSON_Delete(ck);
		idb_db_close(db);
	}
	free(ids.v);
	return rc;
}

static int
cmd_notify_deliver(struct cli *c)
{
	static const char *const flags[] = {"--once", NULL};
	struct sigaction sa;
	int sent, failed, rc;

	if (check_opts(c, NULL, flags) != 0)
		return usage();
	if (open_registry(c, 0) != 0)
		return EXIT_FAILURE;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (flag(c, "--once")) {
		rc = notify_pass(c, &sent, &failed);
		printf("sent %d, failed %d\n", sent, failed);
		curl_global_cleanup();
		return rc;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_notify_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	while (!notify_stop) {
		notify_pass(c, &sent, &failed);
		if (sent || failed) {
			printf("sent %d, failed %d\n", sent, failed);
			fflush(stdout);
		}
		sleep(5);
	}
	curl_global_cleanup();
	return 0;
}

struct command {
	const char *w1, *w2;
	int (*fn)(struct cli *);
};

static const struct command commands[] = {
	{"init", NULL, cmd_init},
	{"org", "create", cmd_org_create},
	{"org", "list", cmd_org_list},
	{"org", "settings", cmd_org_settings},
	{"user", "add", cmd_user_add},
	{"user", "list", cmd_user_list},
	{"demo-data", NULL, cmd_demo_data},
	{"sysadmin", "add", cmd_sysadmin_add},
	{"sysadmin", "assign", cmd_sysadmin_assign},
	{"sysadmin", "unassign", cmd_sysadmin_unassign},
	{"access", NULL, cmd_access},
	{"notify", "deliver", cmd_notify_deliver},
	{"log", "verify", cmd_log_verify},
	{"log", "export", cmd_log_export},
	{"log", "checkpoint", cmd_log_checkpoint},
	{"migrate", NULL, cmd_migrate},
	{"export", NULL, cmd_export},
	{"backup", "verify", cmd_backup_verify},
	{"backup", "prune", cmd_backup_prune},
	{"backup", NULL, cmd_backup},
	{"restore", NULL, cmd_restore},
	{"keys", "rotate", cmd_keys_rotate},
	{"keys", "rotate-master", cmd_keys_rotate_master},
	{"maintenance", NULL, cmd_maintenance},
	{"announce-update", NULL, cmd_announce_update},
};

int
main(int argc, char *argv[])
{
	static struct cli c;
	const char *config_opt = NULL, *data_opt = NULL;
	const struct command *cmd = NULL;
	size_t i;
	int a = 1, rc;

	umask(077);
	if (sodium_init() < 0)
		return fail("libsodium failed to initialise", NULL);
	while (a < argc && strncmp(argv[a], "--", 2) == 0) {
		if (strcmp(argv[a], "--config") == 0 && a + 1 < argc)
			config_opt = argv[a + 1];
		else if (strcmp(argv[a], "--data") == 0 && a + 1 < argc)
			data_opt = argv[a + 1];
		else
			return usage();
		a += 2;
	}
	if (a >= argc)
		return usage();
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].w1, argv[a]) != 0)
			continue;
		if (commands[i].w2 == NULL || (a + 1 < argc && strcmp(commands[i].w2, argv[a + 1]) == 0)) {
			cmd = &commands[i];
			break;
		}
	}
	if (cmd == NULL)
		return usage();
	a += cmd->w2 ? 2 : 1;
	c.argc = argc - a;
	c.argv = argv + a;
	if (idb_conf_open(&c.conf, config_opt, data_opt, c.err, sizeof(c.err)) != IDB_OK)
		return fail("configuration", c.err);
	rc = cmd->fn(&c);
	idb_db_close(c.reg);
	idb_key_master_free(c.master);
	return rc;
}
