/* OTLP/HTTP JSON transport: spans as OTLP Span objects (export/schema.c), sent in one
 * ExportTraceServiceRequest per batch to URL/v1/traces. OTLP answers for the request as a
 * whole: 200 delivered (what partialSuccess says it rejected is counted), 429/502/503/504 again
 * later, any other status rejected. */
#define _GNU_SOURCE
#include "export/exporters.h"
#include "export/http.h"
#include "export/schema.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct otlp {
	struct agt_http_client *http;
	struct agt_export_ctx ctx;
};

static void otlp_encode(void *t, const struct agt_span *sp, const struct agt_export_ctx *c,
			struct agt_jw *w)
{
	(void)t;
	agt_schema_otlp(sp, c, w);
	agt_jw_raw(w, "\n", 1);
}

/* The request around the spans: one resource (this host), one scope. */
static int request(struct otlp *o, const struct agt_doc *docs, size_t n, struct agt_jw *w)
{
	agt_jw_obj(w, NULL);
	agt_jw_arr(w, "resourceSpans");
	agt_jw_obj(w, NULL);
	agt_jw_obj(w, "resource");
	agt_jw_arr(w, "attributes");
	agt_jw_obj(w, NULL);
	agt_jw_str(w, "key", "service.name");
	agt_jw_obj(w, "value");
	agt_jw_str(w, "stringValue", "agtrace");
	agt_jw_end_obj(w);
	agt_jw_end_obj(w);
	agt_jw_obj(w, NULL);
	agt_jw_str(w, "key", "host.name");
	agt_jw_obj(w, "value");
	agt_jw_str(w, "stringValue", o->ctx.host);
	agt_jw_end_obj(w);
	agt_jw_end_obj(w);
	agt_jw_end_arr(w);
	agt_jw_end_obj(w);
	agt_jw_arr(w, "scopeSpans");
	agt_jw_obj(w, NULL);
	agt_jw_obj(w, "scope");
	agt_jw_str(w, "name", "agtrace");
	agt_jw_end_obj(w);
	agt_jw_raw(w, ",\"spans\":[", 10);
	for (size_t i = 0; i < n; i++) { /* the documents are span objects already */
		if (i)
			agt_jw_raw(w, ",", 1);
		agt_jw_raw(w, docs[i].bytes, docs[i].len - 1);
	}
	agt_jw_raw(w, "]}]}]}", 6);
	return w->failed ? -1 : 0;
}

/* partialSuccess.rejectedSpans: an int64, which OTLP/JSON writes as a string. */
static uint64_t rejected_spans(const char *resp)
{
	cJSON *o = cJSON_Parse(resp ? resp : "{}");
	const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "partialSuccess"),
					     "rejectedSpans");
	uint64_t n = 0;

	if (cJSON_IsString(v))
		n = strtoull(v->valuestring, NULL, 10);
	else if (cJSON_IsNumber(v) && v->valuedouble > 0)
		n = (uint64_t)v->valuedouble;
	cJSON_Delete(o);
	return n;
}

static int otlp_send(void *t, const struct agt_doc *docs, size_t n, struct agt_send_result *r)
{
	struct otlp *o = t;
	struct agt_jw w;
	unsigned char *gz = NULL;
	size_t gzn = 0;
	char *resp = NULL;
	long status;

	agt_jw_init(&w);
	if (request(o, docs, n, &w) || agt_http_gzip(w.buf, w.len, &gz, &gzn)) {
		agt_jw_free(&w);
		free(gz);
		return -1;
	}
	agt_jw_free(&w);
	r->wire_bytes += gzn;
	status = agt_http_request(o->http, "POST", "/v1/traces", "application/json", "gzip", gz,
				  gzn, 15000, &resp);
	free(gz);
	if (!status || status == 429 || status == 502 || status == 503 || status == 504) {
		free(resp);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (status == 200) {
			r->outcome[i] = AGT_DELIVERED;
		} else {
			r->outcome[i] = AGT_REJECTED;
			if (asprintf(&r->reason[i], "{\"http_status\":%ld}", status) < 0)
				r->reason[i] = NULL;
		}
	}
	if (status == 200)
		r->rejected_uncounted = rejected_spans(resp);
	free(resp);
	return 0;
}

/* {"reason": ..., "span": ...} */
static void otlp_dead_letter(FILE *f, const struct agt_doc *d, const char *reason)
{
	fprintf(f, "{\"reason\":%s,\"span\":%.*s}", reason, (int)d->len - 1, d->bytes);
}

static void otlp_free(void *t)
{
	struct otlp *o = t;

	if (!o)
		return;
	agt_http_client_free(o->http);
	free(o);
}

static const struct agt_transport_ops otlp_ops = {
    .name = "otlp",
    .doc_lines = 1,
    .encode = otlp_encode,
    .send = otlp_send,
    .dead_letter = otlp_dead_letter,
    .free = otlp_free,
};

int agt_otlp_open(const struct agt_exporter_config *c, const struct agt_export_ctx *x,
		  const struct agt_transport_ops **ops, void **t, char *err, size_t errlen)
{
	struct agt_http_config hc = {.url = c->url};
	struct otlp *o = calloc(1, sizeof(*o));

	if (!o)
		return -ENOMEM;
	if (!(o->http = agt_http_client_new(&hc, "--otlp", err, errlen))) {
		free(o);
		return -EINVAL;
	}
	o->ctx = *x;
	*ops = &otlp_ops;
	*t = o;
	return 0;
}
