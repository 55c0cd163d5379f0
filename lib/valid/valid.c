/* SPDX-License-Identifier: ISC */
/* The generic validator of request bodies. */
#include "valid/valid.h"

#include <stdio.h>
#include <string.h>

size_t
idb_utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

int
idb_valid_text(const char *s, int multiline)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p != '\0'; p++) {
		if (*p == 0x7f)
			return 0;
		if (*p < 0x20 && !(multiline && (*p == '\t' || *p == '\n' || *p == '\r')))
			return 0;
	}
	return 1;
}

static int
in_choices(const char *const *c, const char *s)
{
	for (; c != NULL && *c != NULL; c++)
		if (strcmp(*c, s) == 0)
			return 1;
	return 0;
}

static void
add(cJSON *fields, const char *name, const char *msg)
{
	if (cJSON_GetObjectItemCaseSensitive(fields, name) == NULL)
		cJSON_AddStringToObject(fields, name, msg);
}

static int
check_string(const struct idb_vfield *f, const char *s, char *msg, size_t msglen)
{
	size_t chars = idb_utf8_chars(s);

	if ((long long)chars < f->min) {
		snprintf(msg, msglen, f->min == 1 ? "must not be empty" : "must be at least %lld characters", f->min);
		return 0;
	}
	if ((long long)chars > f->max) {
		snprintf(msg, msglen, "must be at most %lld characters", f->max);
		return 0;
	}
	if (!idb_valid_text(s, (f->flags & IDB_VF_MULTILINE) != 0)) {
		snprintf(msg, msglen, "must not contain control characters");
		return 0;
	}
	if (f->check != NULL && !f->check(s)) {
		snprintf(msg, msglen, "%s", f->check_msg ? f->check_msg : "has an invalid format");
		return 0;
	}
	return 1;
}

static void
one(const struct idb_vfield *f, const cJSON *it, struct idb_vvalue *v, cJSON *fields)
{
	char msg[128];
	const cJSON *e;
	long long count;

	v->present = 1;
	v->j = it;
	if (cJSON_IsNull(it)) {
		if (f->flags & IDB_VF_NULLABLE)
			v->is_null = 1;
		else
			add(fields, f->name, "must not be null");
		return;
	}
	switch (f->type) {
	case IDB_V_STRING:
		if (!cJSON_IsString(it) || it->valuestring == NULL)
			add(fields, f->name, "must be a string");
		else if (!check_string(f, it->valuestring, msg, sizeof(msg)))
			add(fields, f->name, msg);
		else
			v->s = it->valuestring;
		break;
	case IDB_V_ENUM:
		if (!cJSON_IsString(it) || !in_choices(f->choices, it->valuestring))
			add(fields, f->name, "is not one of the allowed values");
		else
			v->s = it->valuestring;
		break;
	case IDB_V_INT:
		if (!cJSON_IsNumber(it) || it->valuedouble < -9e15 || it->valuedouble > 9e15 ||
		    it->valuedouble != (double)(long long)it->valuedouble)
			add(fields, f->name, "must be an integer");
		else if ((long long)it->valuedouble < f->min || (long long)it->valuedouble > f->max) {
			snprintf(msg, sizeof(msg), "must be from %lld to %lld", f->min, f->max);
			add(fields, f->name, msg);
		} else
			v->i = (long long)it->valuedouble;
		break;
	case IDB_V_BOOL:
		if (!cJSON_IsBool(it))
			add(fields, f->name, "must be true or false");
		else
			v->i = cJSON_IsTrue(it);
		break;
	case IDB_V_STRLIST:
		if (!cJSON_IsArray(it)) {
			add(fields, f->name, "must be an array of strings");
			break;
		}
		count = 0;
		cJSON_ArrayForEach(e, it)
		{
			if (++count > f->max) {
				snprintf(msg, sizeof(msg), "must have at most %lld items", f->max);
				add(fields, f->name, msg);
				return;
			}
			if (!cJSON_IsString(e) || e->valuestring == NULL) {
				add(fields, f->name, "must be an array of strings");
				return;
			}
			if (strlen(e->valuestring) > 256 || (f->check != NULL && !f->check(e->valuestring))) {
				snprintf(msg, sizeof(msg), "%s", f->check_msg ? f->check_msg : "has an invalid item");
				add(fields, f->name, msg);
				return;
			}
		}
		break;
	case IDB_V_BOOLMAP:
		if (!cJSON_IsObject(it)) {
			add(fields, f->name, "must be an object");
			break;
		}
		cJSON_ArrayForEach(e, it)
		{
			const cJSON *d;

			if (e->string == NULL || !in_choices(f->choices, e->string) || !cJSON_IsBool(e)) {
				add(fields, f->name, "has an unknown key or a value that is not true or false");
				return;
			}
			for (d = it->child; d != e; d = d->next)
				if (strcmp(d->string, e->string) == 0) {
					add(fields, f->name, "has a key given more than once");
					return;
				}
		}
		break;
	}
}

enum idb_err
idb_valid_apply(const struct idb_vfield *tab, size_t n, const cJSON *obj, struct idb_vvalue *out, cJSON **fields)
{
	const cJSON *it;
	cJSON *errs;
	size_t i;
	int known;

	*fields = NULL;
	if (n > IDB_VALID_FIELDS_MAX || !cJSON_IsObject(obj))
		return IDB_E_INVALID_JSON;
	if ((errs = cJSON_CreateObject()) == NULL)
		return IDB_E_NOMEM;
	memset(out, 0, n * sizeof(*out));
	cJSON_ArrayForEach(it, obj)
	{
		known = 0;
		for (i = 0; i < n && !known; i++) {
			if (it->string == NULL || strcmp(it->string, tab[i].name) != 0)
				continue;
			known = 1;
			if (out[i].present)
				add(errs, tab[i].name, "appears more than once");
			else
				one(&tab[i], it, &out[i], errs);
		}
		if (!known) {
			char name[72];
			size_t nl = it->string ? strlen(it->string) : 0;

			/* At most 64 bytes of the name, cut at a character boundary. */
			if (nl > 64) {
				nl = 64;
				while (nl > 0 && ((unsigned char)it->string[nl] & 0xc0) == 0x80)
					nl--;
			}
			memcpy(name, it->string ? it->string : "", nl);
			name[nl] = '\0';
			add(errs, name, "unknown field");
		}
	}
	for (i = 0; i < n; i++)
		if ((tab[i].flags & IDB_VF_REQUIRED) && !out[i].present)
			add(errs, tab[i].name, "is required");
	if (errs->child == NULL) {
		cJSON_Delete(errs);
		return IDB_OK;
	}
	*fields = errs;
	return IDB_E_VALIDATION;
}
