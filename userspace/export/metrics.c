#define _GNU_SOURCE
#include "export/metrics.h"
#include "base/log.h"
#include "base/util.h"
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { COUNTER, GAUGE, HISTOGRAM };

/* OTel GenAI semantic-convention bucket boundaries. */
static const double token_buckets[] = {1,     4,     16,     64,      256,     1024,	 4096,
				       16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
static const double duration_buckets[] = {0.01, 0.02, 0.04, 0.08,  0.16,  0.32,	 0.64,
					  1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
static const double tool_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
				      1,     2.5,  5,	  10,	30,  60};

struct series {
	char *labels;
	double value;	  /* counter, gauge; histogram: sum */
	uint64_t count;	  /* histogram */
	uint64_t *bucket; /* histogram: cumulative counts per boundary */
};

struct family {
	const char *name, *help;
	enum kind kind;
	const double *bounds;
	int nbounds;
	struct series *s;
	int n;
};

struct agt_metrics {
	pthread_mutex_t lock;
	struct MHD_Daemon *http;
	struct family *fam;
	int nfam;
	agt_metrics_collect_fn collect; /* more families, read at scrape time */
	void *collect_ctx;
};

static struct family *family(struct agt_metrics *m, const char *name, const char *help, enum kind k,
			     const double *b, int nb)
{
	struct family *f;

	for (int i = 0; i < m->nfam; i++)
		if (!strcmp(m->fam[i].name, name))
			return &m->fam[i];
	f = realloc(m->fam, (m->nfam + 1) * sizeof(*f));
	if (!f)
		return NULL;
	m->fam = f;
	f = &m->fam[m->nfam++];
	*f = (struct family){.name = name, .help = help, .kind = k, .bounds = b, .nbounds = nb};
	return f;
}

/* The series of f with these labels; over the cap, the one whose label values are all "other". */
static struct series *series(struct family *f, const char *labels)
{
	char other[512];
	struct series *s;

	for (int i = 0; i < f->n; i++)
		if (!strcmp(f->s[i].labels, labels))
			return &f->s[i];
	if (f->n >= AGT_METRICS_MAX_SERIES) {
		size_t o = 0;

		/* key="value",... -> key="other",... */
		for (const char *p = labels; *p && o + 16 < sizeof(other);) {
			const char *eq = strchr(p, '=');
			const char *end;

			if (!eq)
				break;
			o += snprintf(other + o, sizeof(other) - o, "%s%.*s=\"other\"",
				      o ? "," : "", (int)(eq - p), p);
			end = eq + 2;
			while (*end && !(*end == '"' && end[-1] != '\\'))
				end++;
			p = *end ? end + 1 : end;
			if (*p == ',')
				p++;
		}
		other[o] = 0;
		labels = other;
		for (int i = 0; i < f->n; i++)
			if (!strcmp(f->s[i].labels, labels))
				return &f->s[i];
	}
	s = realloc(f->s, (f->n + 1) * sizeof(*s));
	if (!s)
		return NULL;
	f->s = s;
	s = &f->s[f->n++];
	memset(s, 0, sizeof(*s));
	s->labels = strdup(labels);
	if (f->kind == HISTOGRAM)
		s->bucket = calloc(f->nbounds, sizeof(uint64_t));
	return s;
}

static void inc(struct agt_metrics *m, const char *name, const char *help, const char *labels,
		double by)
{
	struct family *f = family(m, name, help, COUNTER, NULL, 0);
	struct series *s = f ? series(f, labels) : NULL;

	if (s)
		s->value += by;
}

static void observe(struct agt_metrics *m, const char *name, const char *help, const double *b,
		    int nb, const char *labels, double v)
{
	struct family *f = family(m, name, help, HISTOGRAM, b, nb);
	struct series *s = f ? series(f, labels) : NULL;

	if (!s || !s->bucket)
		return;
	s->value += v;
	s->count++;
	for (int i = 0; i < nb; i++)
		if (v <= b[i])
			s->bucket[i]++;
}

void agt_metrics_set(struct agt_metrics *m, const char *name, const char *labels, double v)
{
	struct family *f;
	struct series *s;
	int counter = strlen(name) > 6 && !strcmp(name + strlen(name) - 6, "_total");

	pthread_mutex_lock(&m->lock);
	f = family(m, name, counter ? "agtrace's own count" : "agtrace's own gauge",
		   counter ? COUNTER : GAUGE, NULL, 0);
	if (f && (s = series(f, labels)))
		s->value = v;
	pthread_mutex_unlock(&m->lock);
}

/* name="value" with the value escaped as the text format wants. */
static size_t label(char *out, size_t n, const char *name, const char *v, int first)
{
	size_t o = snprintf(out, n, "%s%s=\"", first ? "" : ",", name);

	for (; v && *v && o + 3 < n; v++) {
		if (*v == '\\' || *v == '"')
			out[o++] = '\\', out[o++] = *v;
		else if (*v == '\n')
			out[o++] = '\\', out[o++] = 'n';
		else
			out[o++] = *v;
	}
	o += snprintf(out + o, o < n ? n - o : 0, "\"");
	return o < n ? o : n - 1;
}

static void count_span(struct agt_metrics *m, const struct agt_span *sp)
{
	const char *comp = sp->proc ? sp->proc->comm : "";
	double secs = (double)(sp->end_ns - sp->start_ns) / 1e9;
	char l[1024];
	size_t o;

	switch (sp->kind) {
	case AGT_SPAN_LLM: {
		const struct agt_span_llm *x = sp->llm;

		if (!x)
			break;
		const char *model = x->req_model[0] ? x->req_model : x->resp_model;

		o = label(l, sizeof(l), "model", model, 1);
		o += label(l + o, sizeof(l) - o, "provider", x->provider, 0);
		label(l + o, sizeof(l) - o, "component", comp, 0);
		inc(m, "agentic_reasoning_steps_total", "LLM API exchanges (reasoning steps)", l,
		    1);
		o = label(l, sizeof(l), "gen_ai_operation_name", x->operation, 1);
		o += label(l + o, sizeof(l) - o, "gen_ai_provider_name", x->provider, 0);
		o += label(l + o, sizeof(l) - o, "gen_ai_request_model", model, 0);
		if (sp->status != AGT_STATUS_UNFINISHED)
			observe(m, "gen_ai_client_operation_duration_seconds",
				"GenAI operation duration", duration_buckets, 14, l, secs);
		for (int t = 0; t < 2; t++) {
			int64_t v = t ? x->output_tokens : x->input_tokens;
			char lt[1100];

			if (v < 0)
				continue;
			snprintf(lt, sizeof(lt), "%s", l);
			label(lt + o, sizeof(lt) - o, "gen_ai_token_type", t ? "output" : "input",
			      0);
			observe(m, "gen_ai_client_token_usage", "GenAI tokens used", token_buckets,
				14, lt, (double)v);
		}
		if (x->ncalls && sp->status == AGT_STATUS_OK) {
			o = label(l, sizeof(l), "model", model, 1);
			label(l + o, sizeof(l) - o, "provider", x->provider, 0);
			observe(m, "agentic_decision_latency_seconds",
				"time from a request to the model's tool decision",
				duration_buckets, 14, l, secs);
		}
		break;
	}
	case AGT_SPAN_TOOL:
		o = label(l, sizeof(l), "tool_name", sp->tool.name, 1);
		o += label(l + o, sizeof(l) - o, "success",
			   sp->status == AGT_STATUS_UNFINISHED ? "unknown"
			   : sp->tool.success		       ? "true"
							       : "false",
			   0);
		label(l + o, sizeof(l) - o, "component", comp, 0);
		inc(m, "agentic_tool_calls_total", "tool calls (LLM tool calls and MCP tools/call)",
		    l, 1);
		label(l, sizeof(l), "tool_name", sp->tool.name, 1);
		if (sp->status != AGT_STATUS_UNFINISHED)
			observe(m, "agentic_tool_call_duration_seconds", "tool call duration",
				tool_buckets, 13, l, secs);
		break;
	case AGT_SPAN_COT:
		if (sp->status != AGT_STATUS_OK)
			break;
		o = label(l, sizeof(l), "model", sp->cot.model, 1);
		o += label(l + o, sizeof(l) - o, "provider", sp->cot.provider, 0);
		label(l + o, sizeof(l) - o, "component", comp, 0);
		inc(m, "agentic_cot_chains_completed_total",
		    "conversations ended by a final answer", l, 1);
		break;
	case AGT_SPAN_FILE:
		o = label(l, sizeof(l), "operation", sp->file.operation, 1);
		label(l + o, sizeof(l) - o, "component", comp, 0);
		inc(m, "agentic_file_operations_total",
		    "files changed (or read) by traced processes, by operation", l, 1);
		break;
	default: break;
	}
	label(l, sizeof(l), "trace_type", sp->trace_type, 1);
	inc(m, "agtrace_spans_emitted_total", "spans and events agtrace emitted", l, 1);
}

static void metrics_observe(void *ctx, const struct agt_span *sp)
{
	struct agt_metrics *m = ctx;

	pthread_mutex_lock(&m->lock);
	count_span(m, sp);
	pthread_mutex_unlock(&m->lock);
}

struct agt_sink *agt_metrics_tee(struct agt_sink *next, struct agt_metrics *m)
{
	return agt_tee_new(next, metrics_observe, m);
}

char *agt_metrics_render(struct agt_metrics *m)
{
	static const char *const kinds[] = {"counter", "gauge", "histogram"};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < m->nfam; i++) {
		const struct family *fm = &m->fam[i];

		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", fm->name, fm->help, fm->name,
			kinds[fm->kind]);
		for (int j = 0; j < fm->n; j++) {
			const struct series *s = &fm->s[j];
			const char *sep = s->labels[0] ? "," : "";

			if (fm->kind != HISTOGRAM) {
				fprintf(f, "%s%s%s%s %.17g\n", fm->name, s->labels[0] ? "{" : "",
					s->labels, s->labels[0] ? "}" : "", s->value);
				continue;
			}
			for (int b = 0; b < fm->nbounds; b++)
				fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", fm->name, s->labels,
					sep, fm->bounds[b], (unsigned long long)s->bucket[b]);
			fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", fm->name, s->labels, sep,
				(unsigned long long)s->count);
			fprintf(f, "%s_sum%s%s%s %.17g\n", fm->name, s->labels[0] ? "{" : "",
				s->labels, s->labels[0] ? "}" : "", s->value);
			fprintf(f, "%s_count%s%s%s %llu\n", fm->name, s->labels[0] ? "{" : "",
				s->labels, s->labels[0] ? "}" : "", (unsigned long long)s->count);
		}
	}
	pthread_mutex_unlock(&m->lock);
	if (m->collect)
		m->collect(m->collect_ctx, f);
	fclose(f);
	return buf;
}

void agt_metrics_collector(struct agt_metrics *m, agt_metrics_collect_fn fn, void *ctx)
{
	pthread_mutex_lock(&m->lock);
	m->collect = fn;
	m->collect_ctx = ctx;
	pthread_mutex_unlock(&m->lock);
}

static enum MHD_Result serve(void *cls, struct MHD_Connection *c, const char *url,
			     const char *method, const char *version, const char *data,
			     size_t *size, void **state)
{
	struct agt_metrics *m = cls;
	struct MHD_Response *r;
	enum MHD_Result rc;
	char *body;
	int ok = !strcmp(method, "GET") && !strcmp(url, "/metrics");

	(void)version;
	(void)data;
	(void)size;
	(void)state;
	body = ok ? agt_metrics_render(m) : strdup("agtrace serves GET /metrics\n");
	if (!body)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	rc = MHD_queue_response(c, ok ? MHD_HTTP_OK : MHD_HTTP_NOT_FOUND, r);
	MHD_destroy_response(r);
	return rc;
}

int agt_metrics_listen_addr(const char *listen, struct sockaddr_in *sa, char *err, size_t errlen)
{
	const char *colon = strrchr(listen, ':');
	char host[64] = "0.0.0.0";
	long port;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (colon)
		snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
	if (agt_parse_long(colon ? colon + 1 : listen, 1, 65535, &port) ||
	    inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return agt_seterr(err, errlen, -EINVAL,
				  "--metrics \"%s\" is not [IPv4-ADDRESS:]PORT, e.g. 9464 or "
				  "127.0.0.1:9464",
				  listen);
	sa->sin_port = htons((uint16_t)port);
	return 0;
}

struct agt_metrics *agt_metrics_start(const char *listen, char *err, size_t errlen)
{
	struct agt_metrics *m = calloc(1, sizeof(*m));
	struct sockaddr_in sa;
	uint16_t port;

	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	if (agt_metrics_listen_addr(listen, &sa, err, errlen)) {
		free(m);
		return NULL;
	}
	port = ntohs(sa.sin_port);
	m->http = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, port, NULL, NULL, serve, m,
				   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
	if (!m->http) {
		agt_seterr(
		    err, errlen, -EADDRINUSE,
		    "cannot serve metrics on %s (address in use, or not this host's); choose "
		    "another --metrics address",
		    listen);
		free(m);
		return NULL;
	}
	return m;
}

void agt_metrics_stop(struct agt_metrics *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->http);
	for (int i = 0; i < m->nfam; i++) {
		for (int j = 0; j < m->fam[i].n; j++) {
			free(m->fam[i].s[j].labels);
			free(m->fam[i].s[j].bucket);
		}
		free(m->fam[i].s);
	}
	free(m->fam);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
