/* Elasticsearch transport: the _bulk API (NDJSON, gzip) into a data stream (the index template
 * has "data_stream": {}, so its ILM policy can roll the backing indices over): documents are
 * written with op_type create and _id = span id, so a retry finds the span there already (409,
 * as good as delivered) instead of duplicating it; each item's own status decides: 2xx and 409
 * delivered, 429 and 5xx again later, anything else (a mapping error) rejected with
 * Elasticsearch's reason. The target's name may be a strftime pattern (UTC). */
#define _GNU_SOURCE
#include "base/log.h"
#include "export/exporters.h"
#include "export/http.h"
#include "export/schema.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bulk requests in flight at once: while the server indexes one, the next is compressed. */
#define ES_INFLIGHT 4

/* One bulk request's buffers, reused from request to request. */
struct es_req {
	char *body;
	size_t cap;
	unsigned char *gz;
	size_t gzcap;
};

struct es {
	struct agt_http_client *http;
	char index_pattern[256];
	time_t index_secs; /* the second index was formatted for (-1: none yet) */
	char index[256];
	struct es_req req[ES_INFLIGHT];
	struct agt_ecs_cache *cache; /* NULL (out of memory): every block written */
};

static void es_encode(void *t, const struct agt_span *sp, const struct agt_export_ctx *c,
		      struct agt_jw *w)
{
	static const char a[] = "{\"create\":{\"_index\":\"", b[] = "\",\"_id\":\"", e[] = "\"}}\n";
	struct es *es = t;
	time_t secs = (time_t)((sp->start_ns + c->mono_to_real) / 1000000000ull);
	char id[17];

	agt_schema_span_id(sp->span_id, id);
	if (secs != es->index_secs) { /* spans come in bursts of the same second */
		struct tm tm;

		gmtime_r(&secs, &tm);
		strftime(es->index, sizeof(es->index), es->index_pattern, &tm);
		es->index_secs = secs;
	}
	agt_jw_raw(w, a, sizeof(a) - 1);
	agt_jw_escaped(w, es->index, strlen(es->index));
	agt_jw_raw(w, b, sizeof(b) - 1);
	agt_jw_raw(w, id, 16);
	agt_jw_raw(w, e, sizeof(e) - 1);
	agt_schema_ecs_cached(sp, c, es->cache, w);
	agt_jw_raw(w, "\n", 1);
}

/* JSON value skipping for the answer's top level: the end of the value at p, or NULL. */
static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static const char *skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static const char *skip_value(const char *p, const char *end)
{
	int depth = 0;

	while (p < end) {
		char c = *p;

		if (c == '"') {
			if (!(p = skip_string(p, end)))
				return NULL;
			if (!depth)
				return p;
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (!depth)
				return p; /* a scalar ends at its object's end */
			if (!--depth)
				return p + 1;
		} else if (c == ',' && !depth) {
			return p;
		}
		p++;
	}
	return NULL;
}

/* Whether a bulk answer says "errors": false among its top-level members: then every item
 * succeeded and the items need not be read. */
static int answer_all_ok(const char *resp, size_t len)
{
	const char *p = resp, *end = resp + len;

	p = skip_ws(p, end);
	if (p >= end || *p++ != '{')
		return 0;
	for (;;) {
		const char *k;
		size_t klen;

		p = skip_ws(p, end);
		if (p >= end || *p != '"')
			return 0;
		k = p;
		if (!(p = skip_string(p, end)))
			return 0;
		klen = (size_t)(p - k);
		p = skip_ws(p, end);
		if (p >= end || *p++ != ':')
			return 0;
		p = skip_ws(p, end);
		if (klen == 8 && !memcmp(k, "\"errors\"", 8))
			return (size_t)(end - p) >= 5 && !memcmp(p, "false", 5) &&
			       (p + 5 == end || strchr(",} \t\r\n", p[5]));
		if (!(p = skip_value(p, end)))
			return 0;
		p = skip_ws(p, end);
		if (p >= end || *p++ != ',')
			return 0;
	}
}

/* The answer to docs[0..n): each item's own status decides. 0, or -1 when it cannot be read
 * (then the request's documents are sent again). */
static int read_answer(const char *resp, size_t n, uint8_t *outcome, char **reason)
{
	const cJSON *items, *it;
	cJSON *o;
	size_t i = 0;

	if (answer_all_ok(resp, strlen(resp))) {
		memset(outcome, AGT_DELIVERED, n);
		return 0;
	}
	if (!(o = cJSON_Parse(resp)) || !cJSON_IsArray(items = cJSON_GetObjectItem(o, "items")) ||
	    cJSON_GetArraySize(items) != (int)n) {
		cJSON_Delete(o);
		return -1;
	}
	cJSON_ArrayForEach(it, items)
	{
		const cJSON *res = it->child;
		int st = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(res, "status"));

		if ((st >= 200 && st < 300) || st == 409) { /* 409: created by an earlier try */
			outcome[i] = AGT_DELIVERED;
		} else if (st == 429 || st >= 500) {
			outcome[i] = AGT_RETRY;
		} else {
			outcome[i] = AGT_REJECTED;
			reason[i] = cJSON_PrintUnformatted(cJSON_GetObjectItem(res, "error"));
		}
		i++;
	}
	cJSON_Delete(o);
	return 0;
}

/* Concatenate and compress docs[0..n) into q: the request body, ready. 0 or -1. */
static int build(struct es_req *q, const struct agt_doc *docs, size_t n, size_t *gzn)
{
	size_t len = 0;

	for (size_t k = 0; k < n; k++)
		len += docs[k].len;
	if (len + 1 > q->cap) {
		char *b = realloc(q->body, len + 1);

		if (!b)
			return -1;
		q->body = b;
		q->cap = len + 1;
	}
	len = 0;
	for (size_t k = 0; k < n; k++) {
		memcpy(q->body + len, docs[k].bytes, docs[k].len);
		len += docs[k].len;
	}
	return agt_http_gzip_into(q->body, len, &q->gz, &q->gzcap, gzn);
}

/* The window as up to ES_INFLIGHT bulk requests of at most r->request_docs documents, all in
 * flight at once (each compressed while the ones before it travel). A request without a readable
 * answer has its documents retried; when none has one, the whole window is (-1). */
static int es_send(void *t, const struct agt_doc *docs, size_t n, struct agt_send_result *r)
{
	struct es *es = t;
	size_t per = r->request_docs ? r->request_docs : n, parts, lo[ES_INFLIGHT + 1];
	int started[ES_INFLIGHT] = {0}, failed = 0;

	if (!n)
		return 0;
	parts = (n + per - 1) / per;
	if (parts > ES_INFLIGHT)
		parts = ES_INFLIGHT;
	for (size_t p = 0; p <= parts; p++) /* even parts, in order */
		lo[p] = n * p / parts;
	for (size_t p = 0; p < parts; p++) {
		size_t gzn = 0;

		if (build(&es->req[p], docs + lo[p], lo[p + 1] - lo[p], &gzn))
			continue;
		r->wire_bytes += gzn;
		started[p] =
		    !agt_http_start(es->http, (int)p, "POST", "/_bulk", "application/x-ndjson",
				    "gzip", es->req[p].gz, gzn, 15000);
	}
	for (size_t p = 0; p < parts; p++) {
		char *resp = NULL;
		long status = started[p] ? agt_http_wait(es->http, (int)p, &resp) : 0;

		if (status != 200 || !resp ||
		    read_answer(resp, lo[p + 1] - lo[p], r->outcome + lo[p], r->reason + lo[p])) {
			memset(r->outcome + lo[p], AGT_RETRY, lo[p + 1] - lo[p]);
			failed++;
		}
		free(resp);
	}
	return failed == (int)parts ? -1 : 0; /* no answer we can read: the whole window again */
}

/* One line per rejection: {"reason": ..., "action": ..., "document": ...}. */
static void es_dead_letter(FILE *f, const struct agt_doc *d, const char *reason)
{
	const char *nl = memchr(d->bytes, '\n', d->len);
	size_t alen = nl ? (size_t)(nl - d->bytes) : d->len;

	fprintf(f, "{\"reason\":%s,\"action\":%.*s,\"document\":%.*s}", reason, (int)alen, d->bytes,
		nl ? (int)(d->len - alen - 2) : 2, nl ? nl + 1 : "{}");
}

static void es_free(void *t)
{
	struct es *es = t;

	if (!es)
		return;
	agt_http_client_free(es->http);
	for (int i = 0; i < ES_INFLIGHT; i++) {
		free(es->req[i].body);
		free(es->req[i].gz);
	}
	agt_ecs_cache_free(es->cache);
	free(es);
}

static const struct agt_transport_ops es_ops = {
    .name = "elasticsearch",
    .doc_lines = 2,
    .inflight = ES_INFLIGHT,
    .encode = es_encode,
    .send = es_send,
    .dead_letter = es_dead_letter,
    .free = es_free,
};

/* The trace model's field mappings (a data stream) and the retention policy (rolled over daily,
 * warm at 7 days, cold at 30, deleted at 90):
 * deploy/elasticsearch/{index-template,ilm-policy}.json, embedded at build time. */
#include "es_assets.h"

static void put_json(struct es *es, const char *path, const char *body)
{
	long status = agt_http_request(es->http, "PUT", path, "application/json", NULL, body,
				       strlen(body), 5000, NULL);

	if (status < 200 || status >= 300)
		agt_warn("could not install %s in Elasticsearch (HTTP %ld); spans are still sent",
			 path, status);
}

int agt_es_open(const struct agt_exporter_config *c, const struct agt_export_ctx *x,
		const struct agt_transport_ops **ops, void **t, char *err, size_t errlen)
{
	struct agt_http_config hc = {.url = c->url,
				     .api_key_file = c->api_key_file,
				     .api_key_env = "AGTRACE_ES_API_KEY",
				     .user = c->user,
				     .password_file = c->password_file,
				     .password_env = "AGTRACE_ES_PASSWORD",
				     .ca_file = c->ca_file,
				     .insecure = c->insecure};
	struct es *es = calloc(1, sizeof(*es));

	(void)x;
	if (!es)
		return -ENOMEM;
	if (!(es->http = agt_http_client_new(&hc, "--es", err, errlen))) {
		free(es);
		return -EINVAL;
	}
	es->index_secs = (time_t)-1;
	es->cache = agt_ecs_cache_new();
	snprintf(es->index_pattern, sizeof(es->index_pattern), "%s",
		 c->index_pattern ? c->index_pattern : "agentic-traces");
	if (c->install_template) {
		put_json(es, "/_ilm/policy/agentic-traces", ilm_json);
		put_json(es, "/_index_template/agentic-traces", template_json);
	}
	*ops = &es_ops;
	*t = es;
	return 0;
}
