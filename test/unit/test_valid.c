/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/valid: the table-driven validator of request bodies. One
 * table exercises every field type and flag; each test feeds a JSON body and
 * checks either the typed values handed back or the "fields" object of the
 * 422 answer (exactly one message per bad field, nothing when all is well).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "valid/valid.h"

static const char *const colours[] = {"red", "green", "blue", NULL};
static const char *const integrations[] = {"google", "microsoft", NULL};

static int
no_x(const char *s)
{
	return strchr(s, 'x') == NULL;
}

enum {
	F_NAME,   /* required string of 2..5 characters */
	F_TITLE,  /* string of 1..10 characters */
	F_NOTE,   /* multiline string of 0..20 characters */
	F_CODE,   /* string checked by no_x, with a message */
	F_REF,    /* string checked by no_x, no message */
	F_AGE,    /* integer 0..150 */
	F_DELTA,  /* integer -5..5, nullable */
	F_FLAG,   /* boolean */
	F_COLOUR, /* enum */
	F_TAGS,   /* up to 3 strings, each checked by no_x */
	F_INTEG,  /* boolean map */
	F_NICK,   /* nullable string */
	F__MAX
};

static const struct idb_vfield tab[F__MAX] = {
    [F_NAME] = {"name", IDB_V_STRING, IDB_VF_REQUIRED, 2, 5, NULL, NULL, NULL},
    [F_TITLE] = {"title", IDB_V_STRING, 0, 1, 10, NULL, NULL, NULL},
    [F_NOTE] = {"note", IDB_V_STRING, IDB_VF_MULTILINE, 0, 20, NULL, NULL, NULL},
    [F_CODE] = {"code", IDB_V_STRING, 0, 0, 10, NULL, no_x, "must not contain an x"},
    [F_REF] = {"ref", IDB_V_STRING, 0, 0, 10, NULL, no_x, NULL},
    [F_AGE] = {"age", IDB_V_INT, 0, 0, 150, NULL, NULL, NULL},
    [F_DELTA] = {"delta", IDB_V_INT, IDB_VF_NULLABLE, -5, 5, NULL, NULL, NULL},
    [F_FLAG] = {"flag", IDB_V_BOOL, 0, 0, 0, NULL, NULL, NULL},
    [F_COLOUR] = {"colour", IDB_V_ENUM, 0, 0, 0, colours, NULL, NULL},
    [F_TAGS] = {"tags", IDB_V_STRLIST, 0, 0, 3, NULL, no_x, "tags must not contain an x"},
    [F_INTEG] = {"integrations", IDB_V_BOOLMAP, 0, 0, 0, integrations, NULL, NULL},
    [F_NICK] = {"nick", IDB_V_STRING, IDB_VF_NULLABLE, 1, 10, NULL, NULL, NULL},
};

/* One body at a time: its parsed JSON (which out[].s points into) and the answer. */
struct fx {
	cJSON *body, *fields;
	struct idb_vvalue out[F__MAX];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	*state = f;
	return 0;
}

static void
reset(struct fx *f)
{
	cJSON_Delete(f->body);
	cJSON_Delete(f->fields);
	f->body = f->fields = NULL;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	reset(f);
	free(f);
	return 0;
}

/* Parses json (it must parse) and applies the table; returns what idb_valid_apply said. */
static enum idb_err
apply(struct fx *f, const char *json)
{
	reset(f);
	f->body = cJSON_Parse(json);
	if (f->body == NULL)
		fail_msg("test body does not parse: %s", json);
	return idb_valid_apply(tab, F__MAX, f->body, f->out, &f->fields);
}

static void
ok(struct fx *f, const char *json)
{
	enum idb_err e = apply(f, json);

	if (e != IDB_OK) {
		char *s = f->fields ? cJSON_PrintUnformatted(f->fields) : NULL;

		fail_msg("%s: %d %s", json, (int)e, s ? s : "");
	}
	assert_null(f->fields);
}

static int
count_fields(const cJSON *fields)
{
	const cJSON *it;
	int n = 0;

	cJSON_ArrayForEach(it, fields) n++;
	return n;
}

/* The message under name in the answer's fields, which must be a string (NULL if absent). */
static const char *
msg_of(const struct fx *f, const char *name)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(f->fields, name);

	if (m == NULL)
		return NULL;
	assert_true(cJSON_IsString(m));
	assert_true(strlen(m->valuestring) > 0);
	return m->valuestring;
}

/* json must fail with exactly one message, under name, equal to msg (when msg is not NULL). */
static void
bad(struct fx *f, const char *json, const char *name, const char *msg)
{
	enum idb_err e = apply(f, json);
	char *s;

	if (e != IDB_E_VALIDATION)
		fail_msg("%s: expected a validation error, got %d", json, (int)e);
	assert_non_null(f->fields);
	if (count_fields(f->fields) != 1 || msg_of(f, name) == NULL || (msg && strcmp(msg_of(f, name), msg) != 0)) {
		s = cJSON_PrintUnformatted(f->fields);
		fail_msg("%s: expected only %s: %s, got %s", json, name, msg ? msg : "(any)", s ? s : "?");
	}
}

/* ---- the whole table at once ---- */

static void
valid_body_gives_no_fields_and_every_value(void **state)
{
	struct fx *f = *state;

	ok(f, "{\"name\": \"Ana\", \"title\": \"T\", \"note\": \"l1\\nl2\", \"code\": \"A-1\", \"ref\": \"r\","
	      " \"age\": 42, \"delta\": -5, \"flag\": true, \"colour\": \"green\", \"tags\": [\"a\", \"b\"],"
	      " \"integrations\": {\"google\": true, \"microsoft\": false}, \"nick\": \"nn\"}");
	assert_string_equal(f->out[F_NAME].s, "Ana");
	assert_string_equal(f->out[F_TITLE].s, "T");
	assert_string_equal(f->out[F_NOTE].s, "l1\nl2");
	assert_string_equal(f->out[F_CODE].s, "A-1");
	assert_string_equal(f->out[F_REF].s, "r");
	assert_int_equal(f->out[F_AGE].i, 42);
	assert_int_equal(f->out[F_DELTA].i, -5);
	assert_int_equal(f->out[F_FLAG].i, 1);
	assert_string_equal(f->out[F_COLOUR].s, "green");
	assert_true(cJSON_IsArray(f->out[F_TAGS].j));
	assert_int_equal(cJSON_GetArraySize(f->out[F_TAGS].j), 2);
	assert_true(cJSON_IsObject(f->out[F_INTEG].j));
	assert_string_equal(f->out[F_NICK].s, "nn");
	for (int i = 0; i < F__MAX; i++) {
		assert_int_equal(f->out[i].present, 1);
		assert_int_equal(f->out[i].is_null, 0);
		assert_non_null(f->out[i].j);
	}
}

static void
absent_optional_fields_are_not_present(void **state)
{
	struct fx *f = *state;
	int i;

	ok(f, "{\"name\": \"Ana\"}");
	assert_int_equal(f->out[F_NAME].present, 1);
	for (i = 0; i < F__MAX; i++) {
		if (i == F_NAME)
			continue;
		assert_int_equal(f->out[i].present, 0);
		assert_int_equal(f->out[i].is_null, 0);
		assert_null(f->out[i].s);
		assert_int_equal(f->out[i].i, 0);
		assert_null(f->out[i].j);
	}
}

static void
out_is_cleared_before_use(void **state)
{
	struct fx *f = *state;
	int i;

	for (i = 0; i < F__MAX; i++) {
		f->out[i].present = f->out[i].is_null = 1;
		f->out[i].s = "stale";
		f->out[i].i = 99;
	}
	ok(f, "{\"name\": \"Ana\"}");
	assert_int_equal(f->out[F_AGE].present, 0);
	assert_null(f->out[F_TITLE].s);
	assert_int_equal(f->out[F_FLAG].i, 0);
	assert_int_equal(f->out[F_NICK].is_null, 0);
}

static void
each_bad_field_has_exactly_one_message(void **state)
{
	static const char *const names[] = {"title", "note", "code", "ref", "age", "delta", "flag",
	                                    "colour", "tags", "integrations", "nick", "zzz", "name"};
	struct fx *f = *state;
	size_t i;

	assert_int_equal(apply(f, "{\"title\": \"\", \"note\": \"\\u0001\", \"code\": \"x\", \"ref\": \"x\","
	                          " \"age\": 1.5, \"delta\": 6, \"flag\": 1, \"colour\": \"pink\", \"tags\": [1],"
	                          " \"integrations\": {\"slack\": true}, \"nick\": 3, \"zzz\": 0}"),
	                 IDB_E_VALIDATION);
	assert_int_equal(count_fields(f->fields), (int)(sizeof(names) / sizeof(names[0])));
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_non_null(msg_of(f, names[i]));
	assert_string_equal(msg_of(f, "name"), "is required");
	assert_string_equal(msg_of(f, "zzz"), "unknown field");
}

/* ---- STRING ---- */

static void
string_length_counts_utf8_characters_not_bytes(void **state)
{
	struct fx *f = *state;

	/* 2 and 5 characters of 2, 3 and 4 bytes each. */
	ok(f, "{\"name\": \"\xc3\xa9\xc3\xa9\"}");
	ok(f, "{\"name\": \"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\"}");
	ok(f, "{\"name\": \"a\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80z\"}");
	ok(f, "{\"name\": \"ab\\u00e9\\ud83d\\ude00\"}");
	assert_string_equal(f->out[F_NAME].s, "ab\xc3\xa9\xf0\x9f\x98\x80");
	/* One character of two bytes is still too short; six of one byte too long. */
	bad(f, "{\"name\": \"\xc3\xa9\"}", "name", "must be at least 2 characters");
	bad(f, "{\"name\": \"abcdef\"}", "name", "must be at most 5 characters");
	bad(f, "{\"name\": \"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\"}", "name",
	    "must be at most 5 characters");
	assert_int_equal(idb_utf8_chars(""), 0);
	assert_int_equal(idb_utf8_chars("abc"), 3);
	assert_int_equal(idb_utf8_chars("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), 3);
}

static void
string_of_minimum_one_refuses_empty(void **state)
{
	struct fx *f = *state;

	ok(f, "{\"name\": \"ab\", \"title\": \"t\"}");
	bad(f, "{\"name\": \"ab\", \"title\": \"\"}", "title", "must not be empty");
	bad(f, "{\"name\": \"\"}", "name", "must be at least 2 characters");
	ok(f, "{\"name\": \"ab\", \"note\": \"\"}");
	assert_string_equal(f->out[F_NOTE].s, "");
}

static void
string_refuses_control_characters_unless_multiline(void **state)
{
	static const char *const controls[] = {"\\t", "\\n", "\\r", "\\u0001", "\\u001f", "\\u007f", "\\u001b"};
	struct fx *f = *state;
	char json[128];
	size_t i;

	for (i = 0; i < sizeof(controls) / sizeof(controls[0]); i++) {
		assert_in_range(snprintf(json, sizeof(json), "{\"name\": \"a%sb\"}", controls[i]), 10,
		                sizeof(json) - 1);
		bad(f, json, "name", "must not contain control characters");
		assert_in_range(snprintf(json, sizeof(json), "{\"name\": \"ab\", \"title\": \"a%sb\"}",
		                         controls[i]),
		                10, sizeof(json) - 1);
		bad(f, json, "title", "must not contain control characters");
	}
	/* Multiline takes tab, CR and LF, and nothing else. */
	ok(f, "{\"name\": \"ab\", \"note\": \"a\\tb\\r\\nc\\nd\"}");
	assert_string_equal(f->out[F_NOTE].s, "a\tb\r\nc\nd");
	bad(f, "{\"name\": \"ab\", \"note\": \"a\\u0001b\"}", "note", "must not contain control characters");
	bad(f, "{\"name\": \"ab\", \"note\": \"a\\u007fb\"}", "note", "must not contain control characters");
	bad(f, "{\"name\": \"ab\", \"note\": \"a\\u000bb\"}", "note", "must not contain control characters");
	assert_int_equal(idb_valid_text("plain", 0), 1);
	assert_int_equal(idb_valid_text("a\nb", 0), 0);
	assert_int_equal(idb_valid_text("a\nb", 1), 1);
	assert_int_equal(idb_valid_text("a\x7f", 1), 0);
}

static void
string_check_function_refuses_with_its_message(void **state)
{
	struct fx *f = *state;

	ok(f, "{\"name\": \"ab\", \"code\": \"ABC\", \"ref\": \"r1\"}");
	bad(f, "{\"name\": \"ab\", \"code\": \"axb\"}", "code", "must not contain an x");
	bad(f, "{\"name\": \"ab\", \"ref\": \"x\"}", "ref", "has an invalid format");
}

static void
string_refuses_other_json_types(void **state)
{
	struct fx *f = *state;

	bad(f, "{\"name\": 12}", "name", "must be a string");
	bad(f, "{\"name\": true}", "name", "must be a string");
	bad(f, "{\"name\": [\"ab\"]}", "name", "must be a string");
	bad(f, "{\"name\": {\"a\": \"ab\"}}", "name", "must be a string");
}

/* ---- INT ---- */

static void
int_accepts_its_range_inclusive(void **state)
{
	struct fx *f = *state;

	ok(f, "{\"name\": \"ab\", \"age\": 0, \"delta\": -5}");
	assert_int_equal(f->out[F_AGE].i, 0);
	assert_int_equal(f->out[F_DELTA].i, -5);
	ok(f, "{\"name\": \"ab\", \"age\": 150, \"delta\": 5}");
	assert_int_equal(f->out[F_AGE].i, 150);
	assert_int_equal(f->out[F_DELTA].i, 5);
	bad(f, "{\"name\": \"ab\", \"age\": -1}", "age", "must be from 0 to 150");
	bad(f, "{\"name\": \"ab\", \"age\": 151}", "age", "must be from 0 to 150");
	bad(f, "{\"name\": \"ab\", \"delta\": -6}", "delta", "must be from -5 to 5");
}

static void
int_refuses_non_integers(void **state)
{
	static const char *const vals[] = {"1.5", "-0.5", "150.01", "\"1\"", "\"abc\"", "true", "false",
	                                   "[1]", "{\"v\": 1}", "1e-3"};
	struct fx *f = *state;
	char json[96];
	size_t i;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		assert_in_range(snprintf(json, sizeof(json), "{\"name\": \"ab\", \"age\": %s}", vals[i]), 10,
		                sizeof(json) - 1);
		bad(f, json, "age", "must be an integer");
	}
}

static void
int_refuses_huge_numbers(void **state)
{
	static const char *const vals[] = {"1e20", "-1e20", "9223372036854775807", "-9223372036854775808",
	                                   "18446744073709551616", "1e400", "-1e400", "9007199254740993"};
	struct fx *f = *state;
	char json[96];
	size_t i;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		assert_in_range(snprintf(json, sizeof(json), "{\"name\": \"ab\", \"age\": %s}", vals[i]), 10,
		                sizeof(json) - 1);
		bad(f, json, "age", NULL);
		assert_int_equal(f->out[F_AGE].i, 0);
	}
}

/* ---- BOOL ---- */

static void
bool_accepts_only_true_and_false(void **state)
{
	struct fx *f = *state;

	ok(f, "{\"name\": \"ab\", \"flag\": true}");
	assert_int_equal(f->out[F_FLAG].i, 1);
	ok(f, "{\"name\": \"ab\", \"flag\": false}");
	assert_int_equal(f->out[F_FLAG].present, 1);
	assert_int_equal(f->out[F_FLAG].i, 0);
	bad(f, "{\"name\": \"ab\", \"flag\": 1}", "flag", "must be true or false");
	bad(f, "{\"name\": \"ab\", \"flag\": 0}", "flag", "must be true or false");
	bad(f, "{\"name\": \"ab\", \"flag\": \"true\"}", "flag", "must be true or false");
	bad(f, "{\"name\": \"ab\", \"flag\": \"false\"}", "flag", "must be true or false");
	bad(f, "{\"name\": \"ab\", \"flag\": [true]}", "flag", "must be true or false");
}

/* ---- ENUM ---- */

static void
enum_accepts_only_its_choices_exactly(void **state)
{
	static const char *const vals[] = {"\"pink\"", "\"Red\"", "\"red \"", "\"\"", "1", "true", "[\"red\"]"};
	struct fx *f = *state;
	char json[96];
	size_t i;

	ok(f, "{\"name\": \"ab\", \"colour\": \"red\"}");
	assert_string_equal(f->out[F_COLOUR].s, "red");
	ok(f, "{\"name\": \"ab\", \"colour\": \"blue\"}");
	assert_string_equal(f->out[F_COLOUR].s, "blue");
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		assert_in_range(snprintf(json, sizeof(json), "{\"name\": \"ab\", \"colour\": %s}", vals[i]), 10,
		                sizeof(json) - 1);
		bad(f, json, "colour", "is not one of the allowed values");
		assert_null(f->out[F_COLOUR].s);
	}
}

/* ---- STRLIST ---- */

static void
strlist_accepts_up_to_max_strings(void **state)
{
	struct fx *f = *state;

	ok(f, "{\"name\": \"ab\", \"tags\": []}");
	assert_int_equal(cJSON_GetArraySize(f->out[F_TAGS].j), 0);
	ok(f, "{\"name\": \"ab\", \"tags\": [\"a\", \"b\", \"c\"]}");
	assert_int_equal(cJSON_GetArraySize(f->out[F_TAGS].j), 3);
	assert_string_equal(cJSON_GetArrayItem(f->out[F_TAGS].j, 2)->valuestring, "c");
	bad(f, "{\"name\": \"ab\", \"tags\": [\"a\", \"b\", \"c\", \"d\"]}", "tags", "must have at most 3 items");
}

static void
strlist_refuses_items_that_are_not_strings(void **state)
{
	struct fx *f = *state;

	bad(f, "{\"name\": \"ab\", \"tags\": [\"a\", 1]}", "tags", "must be an array of strings");
	bad(f, "{\"name\": \"ab\", \"tags\": [null]}", "tags", "must be an array of strings");
	bad(f, "{\"name\": \"ab\", \"tags\": [[\"a\"]]}", "tags", "must be an array of strings");
	bad(f, "{\"name\": \"ab\", \"tags\": [true]}", "tags", "must be an array of strings");
	bad(f, "{\"name\": \"ab\", \"tags\": \"a\"}", "tags", "must be an array of strings");
	bad(f, "{\"name\": \"ab\", \"tags\": {\"a\": \"b\"}}", "tags", "must be an array of strings");
}

static void
strlist_checks_every_item(void **state)
{
	struct fx *f = *state;
	char json[512];

	bad(f, "{\"name\": \"ab\", \"tags\": [\"x\"]}", "tags", "tags must not contain an x");
	bad(f, "{\"name\": \"ab\", \"tags\": [\"a\", \"b\", \"xx\"]}", "tags", "tags must not contain an x");
	/* An item longer than 256 bytes is refused whatever the check says. */
	{
		char item[258];

		memset(item, 'a', 257);
		item[257] = '\0';
		assert_in_range(snprintf(json, sizeof(json), "{\"name\": \"ab\", \"tags\": [\"%s\"]}", item), 257,
		                sizeof(json) - 1);
	}
	bad(f, json, "tags", "tags must not contain an x");
}

/* ---- BOOLMAP ---- */

static void
boolmap_accepts_known_keys_with_booleans(void **state)
{
	struct fx *f = *state;

	ok(f, "{\"name\": \"ab\", \"integrations\": {}}");
	ok(f, "{\"name\": \"ab\", \"integrations\": {\"microsoft\": true}}");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f->out[F_INTEG].j, "microsoft")));
}

static void
boolmap_refuses_unknown_keys_and_values_that_are_not_booleans(void **state)
{
	static const char *const msg = "has an unknown key or a value that is not true or false";
	struct fx *f = *state;

	bad(f, "{\"name\": \"ab\", \"integrations\": {\"slack\": true}}", "integrations", msg);
	bad(f, "{\"name\": \"ab\", \"integrations\": {\"Google\": true}}", "integrations", msg);
	bad(f, "{\"name\": \"ab\", \"integrations\": {\"google\": 1}}", "integrations", msg);
	bad(f, "{\"name\": \"ab\", \"integrations\": {\"google\": \"true\"}}", "integrations", msg);
	bad(f, "{\"name\": \"ab\", \"integrations\": {\"google\": null}}", "integrations", msg);
	bad(f, "{\"name\": \"ab\", \"integrations\": {\"google\": true, \"x\": false}}", "integrations", msg);
	bad(f, "{\"name\": \"ab\", \"integrations\": [true]}", "integrations", "must be an object");
	bad(f, "{\"name\": \"ab\", \"integrations\": true}", "integrations", "must be an object");
}

/*
 * A key twice in the map is as ambiguous as a key twice in the body (which
 * is refused): parsers disagree on which copy counts, and the settings
 * handler takes the last while a reader taking the first sees another value.
 */
static void
boolmap_refuses_a_key_given_twice(void **state)
{
	struct fx *f = *state;

	bad(f, "{\"name\": \"ab\", \"integrations\": {\"google\": true, \"google\": false}}", "integrations",
	    NULL);
	bad(f, "{\"name\": \"ab\", \"integrations\": {\"google\": false, \"microsoft\": true, \"google\": true}}",
	    "integrations", NULL);
}

/* ---- NULLABLE ---- */

static void
null_is_accepted_only_when_nullable(void **state)
{
	struct fx *f = *state;

	ok(f, "{\"name\": \"ab\", \"nick\": null, \"delta\": null}");
	assert_int_equal(f->out[F_NICK].present, 1);
	assert_int_equal(f->out[F_NICK].is_null, 1);
	assert_null(f->out[F_NICK].s);
	assert_int_equal(f->out[F_DELTA].present, 1);
	assert_int_equal(f->out[F_DELTA].is_null, 1);
	bad(f, "{\"name\": null}", "name", "must not be null");
	bad(f, "{\"name\": \"ab\", \"title\": null}", "title", "must not be null");
	bad(f, "{\"name\": \"ab\", \"age\": null}", "age", "must not be null");
	bad(f, "{\"name\": \"ab\", \"flag\": null}", "flag", "must not be null");
	bad(f, "{\"name\": \"ab\", \"colour\": null}", "colour", "must not be null");
	bad(f, "{\"name\": \"ab\", \"tags\": null}", "tags", "must not be null");
	bad(f, "{\"name\": \"ab\", \"integrations\": null}", "integrations", "must not be null");
	/* A nullable field that is not null is still checked. */
	bad(f, "{\"name\": \"ab\", \"nick\": \"\"}", "nick", "must not be empty");
}

/* ---- the object itself ---- */

static void
unknown_field_is_reported_under_its_name(void **state)
{
	struct fx *f = *state;

	bad(f, "{\"name\": \"ab\", \"admin\": true}", "admin", "unknown field");
	bad(f, "{\"name\": \"ab\", \"Name\": \"ab\"}", "Name", "unknown field");
	bad(f, "{\"name\": \"ab\", \"\": 1}", "", "unknown field");
	assert_int_equal(apply(f, "{\"name\": \"ab\", \"a\": 1, \"b\": 2}"), IDB_E_VALIDATION);
	assert_int_equal(count_fields(f->fields), 2);
	assert_string_equal(msg_of(f, "a"), "unknown field");
	assert_string_equal(msg_of(f, "b"), "unknown field");
}

/*
 * The name of an unknown field is echoed in the 422 answer, cut to a bound.
 * Whatever the cut, the key must stay a prefix of the name that ends on a
 * character boundary: the answer is JSON, which must be UTF-8. A cut in the
 * middle of a multi-byte character leaves a lone lead byte.
 */
static void
unknown_long_field_name_is_reported_as_valid_utf8(void **state)
{
	struct fx *f = *state;
	char name[80], json[160];
	const cJSON *it;
	size_t klen;
	int i;

	for (i = 60; i < 66; i++) {
		/* i ASCII letters, then "\xc3\xa9" straddling byte 64 for some i, then more. */
		memset(name, 'a', (size_t)i);
		memcpy(name + i, "\xc3\xa9" "bcd", 6);
		assert_in_range(snprintf(json, sizeof(json), "{\"name\": \"ab\", \"%s\": 1}", name), 10,
		                sizeof(json) - 1);
		assert_int_equal(apply(f, json), IDB_E_VALIDATION);
		assert_int_equal(count_fields(f->fields), 1);
		it = f->fields->child;
		assert_string_equal(it->valuestring, "unknown field");
		klen = strlen(it->string);
		assert_true(klen > 0 && klen <= strlen(name));
		assert_memory_equal(it->string, name, klen);
		if (klen < strlen(name) && ((unsigned char)name[klen] & 0xc0) == 0x80)
			fail_msg("key of %zu bytes ends inside a character (%d letters before it)", klen, i);
	}
}

static void
missing_required_field_is_reported(void **state)
{
	struct fx *f = *state;

	bad(f, "{}", "name", "is required");
	bad(f, "{\"title\": \"t\"}", "name", "is required");
}

static void
duplicate_key_is_refused_with_one_message(void **state)
{
	struct fx *f = *state;

	bad(f, "{\"name\": \"ab\", \"name\": \"cd\"}", "name", "appears more than once");
	bad(f, "{\"name\": \"ab\", \"age\": 1, \"age\": 1}", "age", "appears more than once");
	bad(f, "{\"name\": \"ab\", \"age\": 1, \"age\": 2, \"age\": 3}", "age", "appears more than once");
	/* The first copy bad and the second good: still one message. */
	bad(f, "{\"name\": \"a\", \"name\": \"abc\"}", "name", NULL);
	/* An unknown field twice: one message too. */
	bad(f, "{\"name\": \"ab\", \"zz\": 1, \"zz\": 2}", "zz", "unknown field");
}

static void
body_that_is_not_an_object_is_invalid_json(void **state)
{
	static const char *const bodies[] = {"[]", "[{\"name\": \"ab\"}]", "\"name\"", "1", "true", "null"};
	struct fx *f = *state;
	cJSON *fields;
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		reset(f);
		assert_non_null(f->body = cJSON_Parse(bodies[i]));
		fields = (cJSON *)f; /* anything but NULL: it must be cleared */
		assert_int_equal(idb_valid_apply(tab, F__MAX, f->body, f->out, &fields), IDB_E_INVALID_JSON);
		assert_null(fields);
	}
	fields = (cJSON *)f;
	assert_int_equal(idb_valid_apply(tab, F__MAX, NULL, f->out, &fields), IDB_E_INVALID_JSON);
	assert_null(fields);
}

static void
valid_body_leaves_fields_null(void **state)
{
	struct fx *f = *state;
	cJSON *fields = (cJSON *)f;

	reset(f);
	assert_non_null(f->body = cJSON_Parse("{\"name\": \"ab\"}"));
	assert_int_equal(idb_valid_apply(tab, F__MAX, f->body, f->out, &fields), IDB_OK);
	assert_null(fields);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(valid_body_gives_no_fields_and_every_value),
	    T(absent_optional_fields_are_not_present),
	    T(out_is_cleared_before_use),
	    T(each_bad_field_has_exactly_one_message),
	    T(string_length_counts_utf8_characters_not_bytes),
	    T(string_of_minimum_one_refuses_empty),
	    T(string_refuses_control_characters_unless_multiline),
	    T(string_check_function_refuses_with_its_message),
	    T(string_refuses_other_json_types),
	    T(int_accepts_its_range_inclusive),
	    T(int_refuses_non_integers),
	    T(int_refuses_huge_numbers),
	    T(bool_accepts_only_true_and_false),
	    T(enum_accepts_only_its_choices_exactly),
	    T(strlist_accepts_up_to_max_strings),
	    T(strlist_refuses_items_that_are_not_strings),
	    T(strlist_checks_every_item),
	    T(boolmap_accepts_known_keys_with_booleans),
	    T(boolmap_refuses_unknown_keys_and_values_that_are_not_booleans),
	    T(boolmap_refuses_a_key_given_twice),
	    T(null_is_accepted_only_when_nullable),
	    T(unknown_field_is_reported_under_its_name),
	    T(unknown_long_field_name_is_reported_as_valid_utf8),
	    T(missing_required_field_is_reported),
	    T(duplicate_key_is_refused_with_one_message),
	    T(body_that_is_not_an_object_is_invalid_json),
	    T(valid_body_leaves_fields_null),
	};

	return cmocka_run_group_tests_name("valid", tests, NULL, NULL);
}
