#define _GNU_SOURCE
#include "export/metrics.h"
#include "base/log.h"
#include "base/util.h"
#include "base/version.h"
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
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

/* HELP of the series agtrace sets itself (agt_metrics_set); a series not here gets its text
 * from agt_metrics_describe. */
static const struct {
	const char *name, *help;
} self_help[] = {
    {"agtrace_build_info", "agtrace's version, the commit it was built from and its libbpf; "
			   "always 1"},
    {"agtrace_events_total", "records read from the ring buffer, by event source"},
    {"agtrace_exec_stops_total",
     "processes the kernel stopped at exec of an executable agtrace had not looked at yet, "
     "until its probes were attached"},
    {"agtrace_exec_resumes_total",
     "processes stopped at exec that agtrace resumed, or found gone (killed while stopped)"},
    {"agtrace_dropped_events_total",
     "events lost, by reason (ring buffer full, depth exceeded, unknown process, ...); "
     "sampling is not counted here"},
    {"agtrace_sampled_events_total",
     "events the kernel did not keep on purpose, by source and reason: sampled_out (the "
     "session was not sampled) or rate_limited (over the token bucket); not losses"},
    {"agtrace_noted_total",
     "bytes not captured and values degraded, by reason (truncated calls, capture gaps, ...)"},
    {"agtrace_attached_processes", "processes traced now"},
    {"agtrace_runtime_probe_links",
     "probe links of the runtime metrics (GC, event loop) of traced processes now"},
    {"agtrace_runtime_descendants",
     "followed descendants of targets whose runtime metrics are counted now"},
    {"agtrace_runtime_probes_refused_total",
     "runtime metrics probe sets (one runtime in one file of one process) not attached, by "
     "reason: attach_failed (the kernel refused a probe) or limit (over agtrace's link or "
     "open-file limits); the process keeps its other probes and /proc figures"},
    {"agentic_active_workflows", "conversations open now"},
    {"agentic_trace_buffer_size",
     "spans held open now: open calls, conversations, and tool calls waiting for a result"},
    {"agtrace_discovered_processes_total", "processes found by --select and traced"},
    {"agtrace_discovery_skipped_total",
     "processes a selector matched that were not traced, by reason"},
    {"agtrace_k8s_pod_list_requests_total", "pod list requests to the Kubernetes API"},
    {"agtrace_k8s_pod_list_failures_total", "pod list requests that failed"},
    {"agtrace_k8s_pods_known", "pods in the cached pod list"},
    {"agtrace_audit_records_total", "records written to the audit trail"},
    {"agtrace_audit_write_failures_total", "audit records that could not be written"},
    {"agtrace_audit_checkpoints_total", "fsync'd checkpoints written to the audit trail"},
    {"agtrace_audit_last_checkpoint_seq", "sequence number of the last audit checkpoint"},
    {"agtrace_audit_last_checkpoint_timestamp_seconds",
     "when the last audit checkpoint was written (Unix time)"},
    {"agtrace_audit_anchor_info",
     "the audit trail's latest anchor (checkpoint, rotate or seal): records up to and "
     "including it and its mac (hash) as head, for `agtrace audit verify --anchor "
     "RECORDS:HEAD`; one series, replaced by each anchor"},
    {"agtrace_ringbuf_used_bytes", "bytes in the ring buffer not read yet"},
    {"agtrace_ringbuf_size_bytes", "size of the ring buffer"},
    {"agtrace_export_delivered_total", "spans the backend accepted, by exporter"},
    {"agtrace_export_retried_total", "spans sent again after a retryable failure, by exporter"},
    {"agtrace_export_failures_total", "batches that failed to send, by exporter"},
    {"agtrace_export_dead_lettered_total",
     "spans the backend rejected for good, written to the dead-letter file, by exporter"},
    {"agtrace_export_lost_total", "spans lost before delivery, by exporter and reason"},
    {"agtrace_export_replayed_total", "spans replayed from the spool of an earlier run"},
    {"agtrace_spool_torn_total", "torn spool records skipped at replay"},
    {"agtrace_output_spans_total",
     "spans written to the local output (output=\"file\" or \"stdout\")"},
    {"agtrace_output_lost_spans_total",
     "spans the local output could not write, by reason (disk_full, io_error, closed)"},
    {"agtrace_output_write_failures_total",
     "failed writes of the local output, of the audit trail (output=\"audit\") and of each "
     "exporter's spool (output=\"spool\",exporter=...): each makes the run exit 1"},
    {"agtrace_export_utf8_replaced_total",
     "invalid UTF-8 sequences replaced by U+FFFD in an exporter's documents, by exporter"},
    {"agtrace_output_rotations_total", "output or audit files rotated (by size or age)"},
    {"agtrace_output_files_removed_total",
     "rotated output or audit files removed to keep --*-keep-bytes"},
    {"agtrace_output_torn_total", "torn last lines cut from an output file when it was opened"},
    {"agtrace_spool_disk_bytes", "bytes of spool segments on disk, by exporter"},
    {"agtrace_spool_unsynced_documents", "spans handed over but not fsync'd to the spool yet"},
    {"agtrace_spool_sync_lag_max_seconds", "longest wait for a spool fsync so far"},
    {"agtrace_spool_bytes", "bytes of spans not delivered yet, by exporter"},
    {"agtrace_spool_oldest_age_seconds", "age of the oldest span not delivered yet"},
    {"agtrace_export_latency_seconds", "duration of the last successful send, by exporter"},
    {"agtrace_metrics_series_capped_total",
     "observations counted under label values \"other\" because the metric has "
     "200 label sets already, by metric"},
};

struct series {
	char *labels;
	double value;	  /* counter, gauge; histogram: sum */
	uint64_t count;	  /* histogram */
	uint64_t *bucket; /* histogram: cumulative counts per boundary */
};

struct family {
	char *name, *help;
	enum kind kind;
	const double *bounds;
	int nbounds;
	struct series *s;
	int n;
};

struct agt_metrics {
	pthread_mutex_t lock;
	struct MHD_Daemon *http;
	struct family **fam; /* pointers: a family stays where it is while others are added */
	int nfam;
	int ready; /* /readyz */
	agt_metrics_collect_fn collect; /* more families, read at scrape time */
	void *collect_ctx;
};

static const char *known_help(const char *name)
{
	for (size_t i = 0; i < AGT_ARRAY_SIZE(self_help); i++)
		if (!strcmp(self_help[i].name, name))
			return self_help[i].help;
	return NULL;
}

static struct family *family(struct agt_metrics *m, const char *name, const char *help, enum kind k,
			     const double *b, int nb)
{
	struct family **v, *f;

	for (int i = 0; i < m->nfam; i++)
		if (!strcmp(m->fam[i]->name, name))
			return m->fam[i];
	v = realloc(m->fam, (m->nfam + 1) * sizeof(*v));
	if (!v)
		return NULL;
	m->fam = v;
	if (!(f = calloc(1, sizeof(*f))))
		return NULL;
	*f = (struct family){.name = strdup(name),
			     .help = strdup(help ? help : "agtrace's own figure (not described)"),
			     .kind = k,
			     .bounds = b,
			     .nbounds = nb};
	if (!f->name || !f->help) {
		free(f->name);
		free(f->help);
		free(f);
		return NULL;
	}
	m->fam[m->nfam++] = f;
	return f;
}

static struct series *series(struct agt_metrics *m, struct family *f, const char *labels);

/* An observation went to "other": counted per metric. */
static void capped(struct agt_metrics *m, const struct family *f)
{
	static const char name[] = "agtrace_metrics_series_capped_total";
	char l[256];
	struct family *c;
	struct series *s;

	if (!strcmp(f->name, name))
		return;
	snprintf(l, sizeof(l), "metric=\"%s\"", f->name);
	c = family(m, name, known_help(name), COUNTER, NULL, 0);
	if (c && (s = series(m, c, l)))
		s->value++;
}

/* The series of f with these labels; over the cap, the one whose label values are all "other"
 * (and the observation is counted in agtrace_metrics_series_capped_total). */
static struct series *series(struct agt_metrics *m, struct family *f, const char *labels)
{
	char other[1024];
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
		other[o < sizeof(other) ? o : sizeof(other) - 1] = 0;
		labels = other;
		capped(m, f);
		for (int i = 0; i < f->n; i++)
			if (!strcmp(f->s[i].labels, labels))
				return &f->s[i];
	}
	s = realloc(f->s, (f->n + 1) * sizeof(*s));
	if (!s)
		return NULL;
	f->s = s;
	s = &f->s[f->n];
	memset(s, 0, sizeof(*s));
	if (!(s->labels = strdup(labels)))
		return NULL;
	if (f->kind == HISTOGRAM && !(s->bucket = calloc(f->nbounds, sizeof(uint64_t)))) {
		free(s->labels);
		return NULL;
	}
	f->n++;
	return s;
}

static void inc(struct agt_metrics *m, const char *name, const char *help, const char *labels,
		double by)
{
	struct family *f = family(m, name, help, COUNTER, NULL, 0);
	struct series *s = f ? series(m, f, labels) : NULL;

	if (s)
		s->value += by;
}

static void observe(struct agt_metrics *m, const char *name, const char *help, const double *b,
		    int nb, const char *labels, double v)
{
	struct family *f = family(m, name, help, HISTOGRAM, b, nb);
	struct series *s = f ? series(m, f, labels) : NULL;

	if (!s || !s->bucket)
		return;
	s->value += v;
	s->count++;
	for (int i = 0; i < nb; i++)
		if (v <= b[i])
			s->bucket[i]++;
}

static int is_counter(const char *name)
{
	size_t l = strlen(name);

	return l > 6 && !strcmp(name + l - 6, "_total");
}

void agt_metrics_set(struct agt_metrics *m, const char *name, const char *labels, double v)
{
	struct family *f;
	struct series *s;

	pthread_mutex_lock(&m->lock);
	f = family(m, name, known_help(name), is_counter(name) ? COUNTER : GAUGE, NULL, 0);
	if (f && (s = series(m, f, labels)))
		s->value = v;
	pthread_mutex_unlock(&m->lock);
}

void agt_metrics_set_only(struct agt_metrics *m, const char *name, const char *labels, double v)
{
	struct family *f;
	struct series *s;

	pthread_mutex_lock(&m->lock);
	f = family(m, name, known_help(name), is_counter(name) ? COUNTER : GAUGE, NULL, 0);
	for (int i = 0; f && i < f->n;) /* every other label set goes */
		if (strcmp(f->s[i].labels, labels)) {
			free(f->s[i].labels);
			free(f->s[i].bucket);
			f->s[i] = f->s[--f->n];
		} else {
			i++;
		}
	if (f && (s = series(m, f, labels)))
		s->value = v;
	pthread_mutex_unlock(&m->lock);
}

void agt_metrics_describe(struct agt_metrics *m, const char *name, const char *help)
{
	struct family *f;
	char *h;

	pthread_mutex_lock(&m->lock);
	f = family(m, name, help, is_counter(name) ? COUNTER : GAUGE, NULL, 0);
	if (f && strcmp(f->help, help) && (h = strdup(help))) {
		free(f->help);
		f->help = h;
	}
	pthread_mutex_unlock(&m->lock);
}

void agt_metrics_set_ready(struct agt_metrics *m, int ready)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->ready = ready;
	pthread_mutex_unlock(&m->lock);
}

void agt_metrics_fmt(double v, char *out, size_t n)
{
	if (isnan(v)) {
		snprintf(out, n, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == floor(v) && fabs(v) < 9007199254740992.0) { /* 2^53: every integer exact */
		snprintf(out, n, "%.0f", v);
		return;
	}
	for (int p = 1; p <= 17; p++) { /* the shortest text that reads back as v */
		snprintf(out, n, "%.*g", p, v);
		if (strtod(out, NULL) == v)
			return;
	}
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

/* The workload labels every agentic_* and gen_ai_* series ends with: the pod's namespace and
 * its workload (Deployment, StatefulSet, DaemonSet, Job, ...); "" outside Kubernetes. Named
 * apart from the namespace/pod labels Prometheus' Kubernetes discovery puts on agtrace's own
 * target, so neither is renamed. */
static size_t workload(char *out, size_t n, const struct agt_span *sp)
{
	const struct agt_identity *id = sp->proc ? &sp->proc->id : NULL;
	size_t o = label(out, n, "k8s_namespace_name", id ? id->pod_namespace : "", 0);

	return o + label(out + o, n - o, "k8s_workload_name", id ? id->owner_name : "", 0);
}

/* error.type of a failed LLM exchange: the API's error type, else the HTTP status, else
 * _OTHER (the OTel convention); "" when it did not fail. */
static const char *llm_error_type(const struct agt_span *sp, char *buf, size_t n)
{
	const struct agt_span_llm *x = sp->llm;

	if (x->error_type && x->error_type[0])
		return x->error_type;
	if (sp->http && sp->http->answered && sp->http->status >= 400) {
		snprintf(buf, n, "%d", sp->http->status);
		return buf;
	}
	return sp->status == AGT_STATUS_ERROR ? "_OTHER" : "";
}

static void count_span(struct agt_metrics *m, const struct agt_span *sp)
{
	const char *comp = sp->proc ? sp->proc->comm : "";
	double secs = (double)(sp->end_ns - sp->start_ns) / 1e9;
	char l[2048], wl[700];

	workload(wl, sizeof(wl), sp);
	switch (sp->kind) {
	case AGT_SPAN_LLM: {
		const struct agt_span_llm *x = sp->llm;
		char ebuf[16];
		size_t o;

		if (!x)
			break;
		const char *model = x->req_model[0] ? x->req_model : x->resp_model;

		o = label(l, sizeof(l), "model", model, 1);
		o += label(l + o, sizeof(l) - o, "provider", x->provider, 0);
		o += label(l + o, sizeof(l) - o, "component", comp, 0);
		snprintf(l + o, sizeof(l) - o, "%s", wl);
		inc(m, "agentic_reasoning_steps_total",
		    "LLM API exchanges (reasoning steps), by model, provider, program and workload", l,
		    1);
		o = label(l, sizeof(l), "gen_ai_operation_name", x->operation, 1);
		o += label(l + o, sizeof(l) - o, "gen_ai_provider_name", x->provider, 0);
		o += label(l + o, sizeof(l) - o, "gen_ai_request_model", model, 0);
		if (sp->status != AGT_STATUS_UNFINISHED) {
			char ld[2200];
			size_t d = snprintf(ld, sizeof(ld), "%s", l);

			d += label(ld + d, sizeof(ld) - d, "error_type",
				   llm_error_type(sp, ebuf, sizeof(ebuf)), 0);
			snprintf(ld + d, sizeof(ld) - d, "%s", wl);
			observe(m, "gen_ai_client_operation_duration_seconds",
				"GenAI operation duration: request to the end of the response "
				"(OTel gen_ai.client.operation.duration); error_type set when it "
				"failed",
				duration_buckets, 14, ld, secs);
		}
		for (int t = 0; t < 2; t++) {
			int64_t v = t ? x->output_tokens : x->input_tokens;
			char lt[2200];
			size_t d;

			if (v < 0)
				continue;
			d = snprintf(lt, sizeof(lt), "%s", l);
			d += label(lt + d, sizeof(lt) - d, "gen_ai_token_type",
				   t ? "output" : "input", 0);
			snprintf(lt + d, sizeof(lt) - d, "%s", wl);
			observe(m, "gen_ai_client_token_usage",
				"tokens per LLM exchange, input and output (OTel "
				"gen_ai.client.token.usage)",
				token_buckets, 14, lt, (double)v);
		}
		if (x->ncalls && sp->status == AGT_STATUS_OK) {
			o = label(l, sizeof(l), "model", model, 1);
			o += label(l + o, sizeof(l) - o, "provider", x->provider, 0);
			snprintf(l + o, sizeof(l) - o, "%s", wl);
			observe(m, "agentic_decision_latency_seconds",
				"time from a request to the model's tool decision (exchanges "
				"that called tools)",
				duration_buckets, 14, l, secs);
		}
		break;
	}
	case AGT_SPAN_TOOL: {
		size_t o = label(l, sizeof(l), "tool_name", sp->tool.name, 1);

		o += label(l + o, sizeof(l) - o, "success",
			   sp->status == AGT_STATUS_UNFINISHED ? "unknown"
			   : sp->tool.success		       ? "true"
							       : "false",
			   0);
		o += label(l + o, sizeof(l) - o, "component", comp, 0);
		snprintf(l + o, sizeof(l) - o, "%s", wl);
		inc(m, "agentic_tool_calls_total",
		    "tool calls (LLM tool calls and MCP tools/call), by tool, outcome, program and "
		    "workload",
		    l, 1);
		o = label(l, sizeof(l), "tool_name", sp->tool.name, 1);
		snprintf(l + o, sizeof(l) - o, "%s", wl);
		if (sp->status != AGT_STATUS_UNFINISHED)
			observe(m, "agentic_tool_call_duration_seconds",
				"tool call duration: from the model's call to the result the "
				"agent sent back",
				tool_buckets, 13, l, secs);
		break;
	}
	case AGT_SPAN_COT: {
		size_t o;

		if (sp->status != AGT_STATUS_OK)
			break;
		o = label(l, sizeof(l), "model", sp->cot.model, 1);
		o += label(l + o, sizeof(l) - o, "provider", sp->cot.provider, 0);
		o += label(l + o, sizeof(l) - o, "component", comp, 0);
		snprintf(l + o, sizeof(l) - o, "%s", wl);
		inc(m, "agentic_cot_chains_completed_total",
		    "conversations (and invoked agents) ended by a final answer", l, 1);
		break;
	}
	case AGT_SPAN_FILE: {
		size_t o = label(l, sizeof(l), "operation", sp->file.operation, 1);

		label(l + o, sizeof(l) - o, "component", comp, 0);
		inc(m, "agentic_file_operations_total",
		    "files changed (or read) by traced processes, by operation", l, 1);
		break;
	}
	default: break;
	}
	label(l, sizeof(l), "trace_type", sp->trace_type, 1);
	inc(m, "agtrace_spans_emitted_total", "spans and events agtrace emitted, by trace_type", l,
	    1);
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

static void sample_line(FILE *f, const char *name, const char *suffix, const char *labels,
			const char *extra, double v)
{
	char num[40];
	int any = labels[0] || extra[0];

	agt_metrics_fmt(v, num, sizeof(num));
	fprintf(f, "%s%s%s%s%s%s%s %s\n", name, suffix, any ? "{" : "", labels,
		labels[0] && extra[0] ? "," : "", extra, any ? "}" : "", num);
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
		const struct family *fm = m->fam[i];

		if (!fm->n)
			continue;
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", fm->name, fm->help, fm->name,
			kinds[fm->kind]);
		for (int j = 0; j < fm->n; j++) {
			const struct series *s = &fm->s[j];
			char le[64], num[40];

			if (fm->kind != HISTOGRAM) {
				sample_line(f, fm->name, "", s->labels, "", s->value);
				continue;
			}
			for (int b = 0; b < fm->nbounds; b++) {
				agt_metrics_fmt(fm->bounds[b], num, sizeof(num));
				snprintf(le, sizeof(le), "le=\"%s\"", num);
				sample_line(f, fm->name, "_bucket", s->labels, le,
					    (double)s->bucket[b]);
			}
			sample_line(f, fm->name, "_bucket", s->labels, "le=\"+Inf\"",
				    (double)s->count);
			sample_line(f, fm->name, "_sum", s->labels, "", s->value);
			sample_line(f, fm->name, "_count", s->labels, "", (double)s->count);
		}
	}
	pthread_mutex_unlock(&m->lock);
	if (m->collect)
		m->collect(m->collect_ctx, f);
	fclose(f);
	return buf;
}

/* GET and HEAD on every path (libmicrohttpd leaves the body out for HEAD); other methods 405. */
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
	unsigned code = MHD_HTTP_OK;
	const char *type = "text/plain; charset=utf-8";
	char *body = NULL;
	int ready;

	(void)version;
	(void)data;
	(void)size;
	(void)state;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
		body = strdup("agtrace answers GET and HEAD only\n");
	} else if (!strcmp(url, "/metrics")) {
		body = agt_metrics_render(m);
		type = "text/plain; version=0.0.4; charset=utf-8";
	} else if (!strcmp(url, "/healthz")) {
		body = strdup("ok\n"); /* the process answers: alive */
	} else if (!strcmp(url, "/readyz")) {
		pthread_mutex_lock(&m->lock);
		ready = m->ready;
		pthread_mutex_unlock(&m->lock);
		code = ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
		body = strdup(ready ? "ready\n" : "not ready: not attached yet, or stopping\n");
	} else if (!strcmp(url, "/")) {
		if (asprintf(&body, "agtrace %s: /metrics (Prometheus), /healthz, /readyz\n",
			     agt_version) < 0)
			body = NULL;
	} else {
		code = MHD_HTTP_NOT_FOUND;
		body = strdup("not found; agtrace serves /metrics, /healthz and /readyz\n");
	}
	if (!body)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	rc = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return rc;
}

int agt_metrics_listen_addr(const char *listen, struct sockaddr_storage *sa, char *err,
			    size_t errlen)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
	const char *colon = strrchr(listen, ':'), *port_text = listen;
	char host[64] = "0.0.0.0";
	int ok = 1;
	long port;

	memset(sa, 0, sizeof(*sa));
	if (listen[0] == '[') { /* [IPV6]:PORT */
		const char *close = strchr(listen, ']');

		ok = close && close[1] == ':' && close - listen - 1 < (long)sizeof(host);
		if (ok) {
			snprintf(host, sizeof(host), "%.*s", (int)(close - listen - 1), listen + 1);
			port_text = close + 2;
			v6->sin6_family = AF_INET6;
			ok = inet_pton(AF_INET6, host, &v6->sin6_addr) == 1;
		}
	} else {
		if (colon) {
			ok = colon - listen < (long)sizeof(host);
			snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
			port_text = colon + 1;
		}
		v4->sin_family = AF_INET;
		ok = ok && inet_pton(AF_INET, host, &v4->sin_addr) == 1;
	}
	if (!ok || agt_parse_long(port_text, 1, 65535, &port))
		return agt_seterr(err, errlen, -EINVAL,
				  "--metrics \"%s\" is not [ADDRESS:]PORT, e.g. 9464, "
				  "127.0.0.1:9464 or [::1]:9464",
				  listen);
	if (sa->ss_family == AF_INET6)
		v6->sin6_port = htons((uint16_t)port);
	else
		v4->sin_port = htons((uint16_t)port);
	return 0;
}

struct agt_metrics *agt_metrics_start(const char *listen, char *err, size_t errlen)
{
	struct agt_metrics *m = calloc(1, sizeof(*m));
	struct sockaddr_storage sa;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
	uint16_t port;
	char labels[256];

	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	if (agt_metrics_listen_addr(listen, &sa, err, errlen)) {
		free(m);
		return NULL;
	}
	if (sa.ss_family == AF_INET6) {
		flags |= MHD_USE_IPv6;
		port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
	} else {
		port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
	}
	m->http = MHD_start_daemon(flags, port, NULL, NULL, serve, m, MHD_OPTION_SOCK_ADDR,
				   (struct sockaddr *)&sa, MHD_OPTION_END);
	if (!m->http) {
		agt_seterr(
		    err, errlen, -EADDRINUSE,
		    "cannot serve metrics on %s (address in use, or not this host's); choose "
		    "another --metrics address",
		    listen);
		free(m);
		return NULL;
	}
	snprintf(labels, sizeof(labels), "version=\"%s\",revision=\"%s\",libbpf_version=\"%s\"",
		 agt_version, agt_revision, libbpf_version_string());
	agt_metrics_set(m, "agtrace_build_info", labels, 1);
	return m;
}

void agt_metrics_stop(struct agt_metrics *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->http);
	for (int i = 0; i < m->nfam; i++) {
		for (int j = 0; j < m->fam[i]->n; j++) {
			free(m->fam[i]->s[j].labels);
			free(m->fam[i]->s[j].bucket);
		}
		free(m->fam[i]->s);
		free(m->fam[i]->name);
		free(m->fam[i]->help);
		free(m->fam[i]);
	}
	free(m->fam);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
