/* SPDX-License-Identifier: ISC */
/* Helpers shared by the integration tests (see checks.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "checks.h"

const char *
F(const char *fmt, ...)
{
	static char buf[F_SLOTS][F_LEN];
	static unsigned slot;
	char *p = buf[slot++ % F_SLOTS];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(p, F_LEN, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && n < F_LEN);
	return p;
}

/* Fails the test naming the field, the type wanted and the object it was looked for in. */
static const cJSON *
field(const cJSON *o, const char *k, cJSON_bool (*is)(const cJSON *), const char *type)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!is(v)) {
		char *s = cJSON_PrintUnformatted(o);

		fail_msg("\"%s\" is not %s in %.400s", k, type, s ? s : "?");
	}
	return v;
}

const char *
jstr(const cJSON *o, const char *k)
{
	return field(o, k, cJSON_IsString, "a string")->valuestring;
}

long long
jint(const cJSON *o, const char *k)
{
	return (long long)field(o, k, cJSON_IsNumber, "a number")->valuedouble;
}

int
jbool(const cJSON *o, const char *k)
{
	return cJSON_IsTrue(field(o, k, cJSON_IsBool, "a boolean"));
}

const cJSON *
jarr(const cJSON *o, const char *k)
{
	return field(o, k, cJSON_IsArray, "an array");
}
