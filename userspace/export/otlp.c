#define _GNU_SOURCE
#include "export/otlp.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fields that are the span itself in OTLP, not attributes. */
static int core_field(const char *k)
{
	static const char *const core[] = {"@timestamp", "end_time",	   "trace_id",
					   "span_id",	 "parent_span_id", "name",
					   "status",	 "duration_ms",	   "events"};

	for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++)
		if (!strcmp(k, core[i]))
			return 1;
	return 0;
}

static cJSON *any_value(const cJSON *v)
{
	cJSON *a = cJSON_CreateObject();

	if (cJSON_IsString(v)) {
		cJSON_AddStringToObject(a, "stringValue", v->valuestring);
	} else if (cJSON_IsBool(v)) {
		cJSON_AddBoolToObject(a, "boolValue", cJSON_IsTrue(v));
	} else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;

		if (d == floor(d) && fabs(d) < 9e15) {
			char n[32];

			snprintf(n, sizeof(n), "%.0f",
				 d); /* int64 travels as a string in OTLP JSON */
			cJSON_AddStringToObject(a, "intValue", n);
		} else {
			cJSON_AddNumberToObject(a, "doubleValue", d);
		}
	} else if (cJSON_IsArray(v)) {
		cJSON *vals =
		    cJSON_AddArrayToObject(cJSON_AddObjectToObject(a, "arrayValue"), "values");
		const cJSON *e;

		cJSON_ArrayForEach(e, v)
		{
			if (cJSON_IsObject(e)) { /* e.g. decision.selected: keep it as JSON text */
				char *t = cJSON_PrintUnformatted(e);
				cJSON *s = cJSON_CreateObject();

				cJSON_AddStringToObject(s, "stringValue", t ? t : "");
				free(t);
				cJSON_AddItemToArray(vals, s);
			} else {
				cJSON_AddItemToArray(vals, any_value(e));
			}
		}
	} else {
		cJSON_AddStringToObject(a, "stringValue", "");
	}
	return a;
}

/* Nested objects flatten to dotted keys: {"gen_ai":{"usage":{"input_tokens":5}}} ->
 * gen_ai.usage.input_tokens. */
static void flatten(cJSON *attrs, const cJSON *o, const char *prefix)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, o)
	{
		char key[256];
		cJSON *kv;

		if (!prefix[0] && core_field(it->string))
			continue;
		snprintf(key, sizeof(key), "%s%s%s", prefix, prefix[0] ? "." : "", it->string);
		if (cJSON_IsObject(it)) {
			flatten(attrs, it, key);
			continue;
		}
		kv = cJSON_CreateObject();
		cJSON_AddStringToObject(kv, "key", key);
		cJSON_AddItemToObject(kv, "value", any_value(it));
		cJSON_AddItemToArray(attrs, kv);
	}
}

static void add_ns(cJSON *o, const char *key, uint64_t mono, const struct agt_export_ctx *c)
{
	char n[32];

	snprintf(n, sizeof(n), "%llu", (unsigned long long)(mono + c->mono_to_real));
	cJSON_AddStringToObject(o, key, n);
}

char *agt_otlp_span_json(const struct agt_span *sp, const struct agt_export_ctx *c)
{
	cJSON *src = agt_span_to_json(sp, c), *o = cJSON_CreateObject(), *st;
	const cJSON *v;
	char *out;

	cJSON_AddStringToObject(o, "traceId",
				cJSON_GetStringValue(cJSON_GetObjectItem(src, "trace_id")));
	cJSON_AddStringToObject(o, "spanId",
				cJSON_GetStringValue(cJSON_GetObjectItem(src, "span_id")));
	if ((v = cJSON_GetObjectItem(src, "parent_span_id")))
		cJSON_AddStringToObject(o, "parentSpanId", v->valuestring);
	cJSON_AddStringToObject(o, "name", sp->name);
	/* LLM and HTTP calls leave the process: CLIENT (3); the rest INTERNAL (1). */
	cJSON_AddNumberToObject(o, "kind",
				sp->kind == AGT_SPAN_LLM || sp->kind == AGT_SPAN_HTTP ? 3 : 1);
	add_ns(o, "startTimeUnixNano", sp->start_ns, c);
	add_ns(o, "endTimeUnixNano", sp->end_ns, c);
	flatten(cJSON_AddArrayToObject(o, "attributes"), src, "");
	st = cJSON_AddObjectToObject(o, "status");
	cJSON_AddNumberToObject(st, "code", sp->status == AGT_STATUS_ERROR ? 2 : 1);
	if (sp->status == AGT_STATUS_UNFINISHED)
		cJSON_AddStringToObject(st, "message", "unfinished");
	if ((v = cJSON_GetObjectItem(src, "events"))) {
		cJSON *evs = cJSON_AddArrayToObject(o, "events");

		for (int i = 0; i < sp->tool.nevents; i++) {
			cJSON *e = cJSON_CreateObject();

			add_ns(e, "timeUnixNano", sp->tool.events[i].ts_ns, c);
			cJSON_AddStringToObject(e, "name", sp->tool.events[i].name);
			cJSON_AddItemToArray(evs, e);
		}
	}
	out = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	cJSON_Delete(src);
	return out;
}

char *agt_otlp_request(const char *spans, size_t len, const struct agt_export_ctx *c)
{
	char *out = NULL;

	if (asprintf(&out,
		     "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
		     "\"value\":{\"stringValue\":\"agtrace\"}},{\"key\":\"host.name\",\"value\":{"
		     "\"stringValue\":\"%s\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"agtrace\"},"
		     "\"spans\":[%.*s]}]}]}",
		     c->host, (int)len, spans) < 0)
		return NULL;
	return out;
}
