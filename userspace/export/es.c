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

struct es {
	struct agt_http_client *http;
	char index_pattern[256];
};

static void es_encode(void *t, const struct agt_span *sp, const struct agt_export_ctx *c,
		      struct agt_jw *w)
{
	static const char a[] = "{\"create\":{\"_index\":\"", b[] = "\",\"_id\":\"", e[] = "\"}}\n";
	struct es *es = t;
	time_t secs = (time_t)((sp->start_ns + c->mono_to_real) / 1000000000ull);
	char index[256], id[17];
	struct tm tm;

	agt_schema_span_id(sp->span_id, id);
	gmtime_r(&secs, &tm);
	strftime(index, sizeof(index), es->index_pattern, &tm);
	agt_jw_raw(w, a, sizeof(a) - 1);
	agt_jw_escaped(w, index, strlen(index));
	agt_jw_raw(w, b, sizeof(b) - 1);
	agt_jw_raw(w, id, 16);
	agt_jw_raw(w, e, sizeof(e) - 1);
	agt_schema_ecs(sp, c, w);
	agt_jw_raw(w, "\n", 1);
}

static int es_send(void *t, const struct agt_doc *docs, size_t n, struct agt_send_result *r)
{
	struct es *es = t;
	size_t len = 0, gzn = 0;
	unsigned char *gz = NULL;
	char *body, *resp = NULL;
	const cJSON *items, *it;
	cJSON *o = NULL;
	long status;
	size_t i = 0;

	for (size_t k = 0; k < n; k++)
		len += docs[k].len;
	if (!(body = malloc(len + 1)))
		return -1;
	len = 0;
	for (size_t k = 0; k < n; k++) {
		memcpy(body + len, docs[k].bytes, docs[k].len);
		len += docs[k].len;
	}
	if (agt_http_gzip(body, len, &gz, &gzn)) {
		free(body);
		free(gz);
		return -1;
	}
	free(body);
	r->wire_bytes += gzn;
	status = agt_http_request(es->http, "POST", "/_bulk", "application/x-ndjson", "gzip", gz,
				  gzn, 15000, &resp);
	free(gz);
	if (status != 200 || !(o = cJSON_Parse(resp ? resp : "")) ||
	    !cJSON_IsArray(items = cJSON_GetObjectItem(o, "items")) ||
	    cJSON_GetArraySize(items) != (int)n) {
		cJSON_Delete(o);
		free(resp);
		return -1; /* no answer we can read: the whole batch again */
	}
	cJSON_ArrayForEach(it, items)
	{
		const cJSON *res = it->child;
		int st = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(res, "status"));

		if ((st >= 200 && st < 300) || st == 409) { /* 409: created by an earlier try */
			r->outcome[i] = AGT_DELIVERED;
		} else if (st == 429 || st >= 500) {
			r->outcome[i] = AGT_RETRY;
		} else {
			r->outcome[i] = AGT_REJECTED;
			r->reason[i] = cJSON_PrintUnformatted(cJSON_GetObjectItem(res, "error"));
		}
		i++;
	}
	cJSON_Delete(o);
	free(resp);
	return 0;
}

/* One line per rejection: {"reason": ..., "action": ..., "document": ...}. */
static void es_dead_letter(FILE *f, const struct agt_doc *d, const char *reason)
{
	const char *nl = memchr(d->bytes, '\n', d->len);
	size_t alen = nl ? (size_t)(nl - d->bytes) : d->len;

	fprintf(f, "{\"reason\":%s,\"action\":%.*s,\"document\":%.*s}", reason, (int)alen,
		d->bytes, nl ? (int)(d->len - alen - 2) : 2, nl ? nl + 1 : "{}");
}

static void es_free(void *t)
{
	struct es *es = t;

	if (!es)
		return;
	agt_http_client_free(es->http);
	free(es);
}

static const struct agt_transport_ops es_ops = {
    .name = "elasticsearch",
    .doc_lines = 2,
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
