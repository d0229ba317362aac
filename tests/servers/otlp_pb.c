/* otlp_pb: the protobuf side of the strict OTLP test receiver (otlp_server.py), built on code that
 * protoc-c generates from the official opentelemetry-proto definitions (tests/servers/proto).
 *
 *   otlp_pb decode < BODY     An ExportTraceServiceRequest in protobuf: unpacked by the generated
 *                             code (any wire-format error refuses it), then checked further: no
 *                             field the .proto files do not define (unknown fields), every
 *                             string valid UTF-8 (proto3 requires it), no profiling-only string
 *                             table references. Printed on stdout as OTLP/JSON (the protobuf
 *                             JSON mapping with OTLP's exceptions: ids as lowercase hex, 64-bit
 *                             integers as decimal strings), every field present, so that
 *                             otlp_server.py checks both encodings with the same rules. Exit 1
 *                             with the reason on stderr when the body is not a valid request.
 *   otlp_pb response N MSG    An ExportTraceServiceResponse saying partial_success
 *                             {rejected_spans: N, error_message: MSG}, in protobuf on stdout. */
#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Trace__V1__Span Span;

static const char *why;

static int utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i];
		size_t k;
		unsigned cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, cp = c & 0x07;
		else
			return 0;
		if (i + k >= n) /* truncated */
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}

/* Every message below m: no unknown fields, strings valid UTF-8. */
static int strict(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (m->n_unknown_fields) {
		why = "a field the OTLP definitions do not have";
		fprintf(stderr, "unknown field %u in %s\n", m->unknown_fields[0].tag, d->name);
		return -1;
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m + f->offset;
		size_t n = 1;
		const void *const *arr = NULL;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
			continue;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			if (*(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
				continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)((const char *)m + f->quantifier_offset);
			arr = *(const void *const *const *)base;
		}
		for (size_t k = 0; k < n; k++) {
			const void *v = arr ? arr[k] : *(const void *const *)base;

			if (!v)
				continue;
			if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
				if (strict(v))
					return -1;
			} else if (!utf8_valid(v, strlen(v))) {
				fprintf(stderr, "%s.%s is not valid UTF-8\n", d->name, f->name);
				why = "a string that is not valid UTF-8";
				return -1;
			}
		}
	}
	return 0;
}

/* ---- OTLP/JSON out ---- */

static void jstr(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void jhex(ProtobufCBinaryData b)
{
	putchar('"');
	for (size_t i = 0; i < b.len; i++)
		printf("%02x", b.data[i]);
	putchar('"');
}

static void jdouble(double d)
{
	char buf[40];

	snprintf(buf, sizeof(buf), "%.17g", d);
	if (strtod(buf, NULL) == d) {
		for (int p = 1; p < 17; p++) { /* the shortest that reads back */
			char t[40];

			snprintf(t, sizeof(t), "%.*g", p, d);
			if (strtod(t, NULL) == d) {
				fputs(t, stdout);
				return;
			}
		}
	}
	fputs(buf, stdout);
}

static void any_value(const AnyValue *v);

static void attributes(KeyValue **kv, size_t n)
{
	printf("[");
	for (size_t i = 0; i < n; i++) {
		printf("%s{\"key\":", i ? "," : "");
		jstr(kv[i]->key);
		printf(",\"value\":");
		if (kv[i]->value)
			any_value(kv[i]->value);
		else
			printf("{}");
		printf("}");
	}
	printf("]");
}

static void any_value(const AnyValue *v)
{
	switch (v->value_case) {
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
		printf("{\"stringValue\":");
		jstr(v->string_value);
		printf("}");
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
		printf("{\"boolValue\":%s}", v->bool_value ? "true" : "false");
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
		printf("{\"intValue\":\"%lld\"}", (long long)v->int_value);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
		printf("{\"doubleValue\":");
		jdouble(v->double_value);
		printf("}");
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
		printf("{\"arrayValue\":{\"values\":[");
		for (size_t i = 0; v->array_value && i < v->array_value->n_values; i++) {
			if (i)
				printf(",");
			any_value(v->array_value->values[i]);
		}
		printf("]}}");
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
		printf("{\"kvlistValue\":{\"values\":");
		attributes(v->kvlist_value ? v->kvlist_value->values : NULL,
			   v->kvlist_value ? v->kvlist_value->n_values : 0);
		printf("}}");
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
		printf("{\"bytesValue\":");
		jhex(v->bytes_value);
		printf("}");
		break;
	default: printf("{}"); /* no value: the JSON check refuses it */
	}
}

/* Fields only the profiling signal may use. */
static int strindex_used(KeyValue **kv, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (kv[i]->key_strindex ||
		    (kv[i]->value &&
		     kv[i]->value->value_case ==
			 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX))
			return 1;
	return 0;
}

static int span(const Span *s)
{
	if (strindex_used(s->attributes, s->n_attributes)) {
		why = "key_strindex or string_value_strindex (profiling only) in a span";
		return -1;
	}
	printf("{\"traceId\":");
	jhex(s->trace_id);
	printf(",\"spanId\":");
	jhex(s->span_id);
	if (s->parent_span_id.len) {
		printf(",\"parentSpanId\":");
		jhex(s->parent_span_id);
	}
	printf(",\"traceState\":");
	jstr(s->trace_state);
	printf(",\"flags\":%u,\"name\":", s->flags);
	jstr(s->name);
	printf(",\"kind\":%d,\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":\"%llu\","
	       "\"attributes\":",
	       (int)s->kind, (unsigned long long)s->start_time_unix_nano,
	       (unsigned long long)s->end_time_unix_nano);
	attributes(s->attributes, s->n_attributes);
	printf(",\"droppedAttributesCount\":%u,\"events\":[", s->dropped_attributes_count);
	for (size_t i = 0; i < s->n_events; i++) {
		printf("%s{\"timeUnixNano\":\"%llu\",\"name\":", i ? "," : "",
		       (unsigned long long)s->events[i]->time_unix_nano);
		jstr(s->events[i]->name);
		printf(",\"attributes\":");
		attributes(s->events[i]->attributes, s->events[i]->n_attributes);
		printf("}");
	}
	printf("],\"links\":[");
	for (size_t i = 0; i < s->n_links; i++) {
		printf("%s{\"traceId\":", i ? "," : "");
		jhex(s->links[i]->trace_id);
		printf(",\"spanId\":");
		jhex(s->links[i]->span_id);
		printf(",\"attributes\":");
		attributes(s->links[i]->attributes, s->links[i]->n_attributes);
		printf("}");
	}
	printf("],\"status\":{\"code\":%d,\"message\":", s->status ? (int)s->status->code : 0);
	jstr(s->status ? s->status->message : "");
	printf("}}");
	return 0;
}

static int decode(void)
{
	size_t cap = 1 << 20, n = 0, k;
	uint8_t *buf = malloc(cap);
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req;

	while (buf && (k = fread(buf + n, 1, cap - n, stdin)) > 0) {
		n += k;
		if (n == cap && !(buf = realloc(buf, cap *= 2)))
			break;
	}
	if (!buf)
		return 2;
	req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
	    NULL, n, buf);
	free(buf);
	if (!req) {
		fprintf(stderr, "not an ExportTraceServiceRequest: the protobuf wire format is "
				"broken\n");
		return 1;
	}
	if (strict(&req->base)) {
		fprintf(stderr, "invalid ExportTraceServiceRequest: %s\n", why);
		return 1;
	}
	printf("{\"resourceSpans\":[");
	for (size_t i = 0; i < req->n_resource_spans; i++) {
		const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[i];

		if (!rs->resource) {
			fprintf(stderr, "invalid ExportTraceServiceRequest: a ResourceSpans without "
					"its resource\n");
			return 1;
		}
		if (strindex_used(rs->resource->attributes, rs->resource->n_attributes)) {
			fprintf(stderr, "invalid: key_strindex in a resource\n");
			return 1;
		}
		printf("%s{\"resource\":{\"attributes\":", i ? "," : "");
		attributes(rs->resource->attributes, rs->resource->n_attributes);
		printf("},\"schemaUrl\":");
		jstr(rs->schema_url);
		printf(",\"scopeSpans\":[");
		for (size_t j = 0; j < rs->n_scope_spans; j++) {
			const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];

			printf("%s{\"scope\":{\"name\":", j ? "," : "");
			jstr(ss->scope ? ss->scope->name : "");
			printf(",\"version\":");
			jstr(ss->scope ? ss->scope->version : "");
			printf("},\"spans\":[");
			for (size_t k2 = 0; k2 < ss->n_spans; k2++) {
				if (k2)
					printf(",");
				if (span(ss->spans[k2])) {
					fprintf(stderr, "invalid ExportTraceServiceRequest: %s\n", why);
					return 1;
				}
			}
			printf("]}");
		}
		printf("]}");
	}
	printf("]}\n");
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
	    req, NULL);
	return 0;
}

static int response(const char *n, const char *msg)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse r =
	    OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
	Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
	    OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
	size_t len;
	uint8_t *out;

	ps.rejected_spans = strtoll(n, NULL, 10);
	ps.error_message = (char *)msg;
	if (ps.rejected_spans || msg[0])
		r.partial_success = &ps;
	len = opentelemetry__proto__collector__trace__v1__export_trace_service_response__get_packed_size(
	    &r);
	out = malloc(len ? len : 1);
	opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(&r, out);
	fwrite(out, 1, len, stdout);
	free(out);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "decode"))
		return decode();
	if (argc == 4 && !strcmp(argv[1], "response"))
		return response(argv[2], argv[3]);
	fprintf(stderr, "usage: otlp_pb decode < BODY | otlp_pb response REJECTED MESSAGE\n");
	return 2;
}
