#include "export/schema.h"
#include "base/utf8.h"
#include "base/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const agt_status_names[3] = {"ok", "error", "unfinished"};

void agt_schema_span_id(uint64_t id, char out[17])
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(id >> (56 - 8 * i));
	agt_hex(b, 8, out);
}

/* Shorthands for the walk. */
#define OPEN(k) f->open(f, k, 0)
#define ARRAY(k) f->open(f, k, 1)
#define CLOSE() f->close(f)
#define STR(k, v) f->str(f, k, v)
#define I64(k, v) f->i64(f, k, (int64_t)(v))
#define F64(k, v) f->f64(f, k, v)
#define BOOL(k, v) f->boolean(f, k, v)

static void time_field(struct agt_fields *f, const char *key, uint64_t mono,
		       const struct agt_export_ctx *c)
{
	char ts[40];

	agt_format_time(mono + c->mono_to_real, ts, sizeof(ts));
	STR(key, ts);
}

static void id_field(struct agt_fields *f, const char *key, uint64_t id)
{
	char hex[17];

	agt_schema_span_id(id, hex);
	STR(key, hex);
}

static void value_field(struct agt_fields *f, const char *key, const struct agt_value *v)
{
	char hex[24];

	switch (v->kind) {
	case AGT_VAL_INT: I64(key, (int64_t)v->u); break;
	case AGT_VAL_UINT: F64(key, (double)v->u); break;
	case AGT_VAL_PTR:
		snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)v->u);
		STR(key, hex);
		break;
	case AGT_VAL_STR: STR(key, v->str); break;
	default: break;
	}
}

/* process.*: who; for a command, also its command line and parent. */
static void process_fields(struct agt_fields *f, const struct agt_span *sp)
{
	OPEN("process");
	I64("pid", sp->pid);
	if (sp->proc) {
		STR("name", sp->proc->comm);
		STR("executable", sp->proc->exe);
	}
	if (sp->tid) {
		OPEN("thread");
		I64("id", sp->tid);
		CLOSE();
	}
	if (sp->has_exit) {
		I64("exit_code", sp->exit_code);
		if (sp->exit_signal)
			I64("exit_signal", sp->exit_signal);
	}
	if (sp->kind == AGT_SPAN_EXEC) {
		STR("command_line", sp->exec.command_line ? sp->exec.command_line : "");
		OPEN("parent");
		I64("pid", sp->exec.ppid);
		CLOSE();
	}
	CLOSE();
}

static void identity_fields(struct agt_fields *f, const struct agt_identity *id)
{
	if (id->container_id[0]) {
		OPEN("container");
		STR("id", id->container_id);
		if (id->runtime[0])
			STR("runtime", id->runtime);
		CLOSE();
	}
	if (id->pod_uid[0]) {
		OPEN("k8s");
		OPEN("pod");
		STR("uid", id->pod_uid);
		if (id->pod_name[0])
			STR("name", id->pod_name);
		CLOSE();
		if (id->pod_name[0]) {
			OPEN("namespace");
			STR("name", id->pod_namespace);
			CLOSE();
		}
		CLOSE();
	}
}

/* events: points in time inside a span (runtime events of a tool call, later execs of a
 * command). */
static void events_field(struct agt_fields *f, const struct agt_span_event *ev, int n,
			 const struct agt_export_ctx *c)
{
	if (!n)
		return;
	ARRAY("events");
	for (int i = 0; i < n; i++) {
		OPEN(NULL);
		STR("name", ev[i].name);
		time_field(f, "@timestamp", ev[i].ts_ns, c);
		CLOSE();
	}
	CLOSE();
}

static void tool_fields(struct agt_fields *f, const struct agt_span *sp,
			const struct agt_export_ctx *c)
{
	const struct agt_span_tool *t = &sp->tool;

	OPEN("gen_ai");
	OPEN("operation");
	STR("name", "execute_tool");
	CLOSE();
	OPEN("tool");
	STR("name", t->name);
	OPEN("call");
	STR("id", t->id);
	CLOSE();
	CLOSE();
	CLOSE();
	OPEN("tool");
	STR("input", t->input ? t->input : "");
	if (t->output)
		STR("output", t->output);
	if (sp->status != AGT_STATUS_UNFINISHED)
		BOOL("success", t->success);
	CLOSE();
	if (t->mcp) {
		OPEN("mcp");
		OPEN("method");
		STR("name", "tools/call");
		CLOSE();
		if (t->mcp_session) { /* streamable HTTP: the Mcp-Session-Id */
			OPEN("session");
			STR("id", t->mcp_session);
			CLOSE();
		}
		CLOSE();
		OPEN("jsonrpc");
		OPEN("request");
		STR("id", t->id);
		CLOSE();
		CLOSE();
	}
	events_field(f, t->events, t->nevents, c);
}

static void cot_fields(struct agt_fields *f, const struct agt_span_cot *cot)
{
	OPEN("cot");
	I64("steps", cot->steps);
	I64("depth", cot->steps + cot->tool_calls);
	if (cot->nsequence) {
		ARRAY("sequence");
		for (int i = 0; i < cot->nsequence; i++)
			STR(NULL, cot->sequence[i]);
		CLOSE();
	}
	I64("tool_calls", cot->tool_calls);
	if (cot->final_answer)
		STR("final_answer", cot->final_answer);
	CLOSE();
	OPEN("gen_ai");
	if (cot->agent_name) { /* an agent invoked from a tool call */
		OPEN("operation");
		STR("name", "invoke_agent");
		CLOSE();
		OPEN("agent");
		STR("name", cot->agent_name);
		CLOSE();
	}
	if (cot->provider) {
		OPEN("provider");
		STR("name", cot->provider);
		CLOSE();
	}
	if (cot->model && cot->model[0]) {
		OPEN("request");
		STR("model", cot->model);
		CLOSE();
	}
	OPEN("usage");
	I64("input_tokens", cot->input_tokens);
	I64("output_tokens", cot->output_tokens);
	CLOSE();
	CLOSE();
}

static void body_fields(struct agt_fields *f, uint64_t size, int truncated)
{
	OPEN("body");
	I64("size", size);
	BOOL("truncated", truncated);
	CLOSE();
}

static void http_fields(struct agt_fields *f, const struct agt_span_http *h)
{
	OPEN("http");
	OPEN("request");
	STR("method", h->method);
	body_fields(f, h->req_body_size, h->req_truncated);
	CLOSE();
	if (h->answered) {
		OPEN("response");
		I64("status_code", h->status);
		body_fields(f, h->resp_body_size, h->resp_truncated);
		CLOSE();
	}
	CLOSE();
	OPEN("url");
	STR("path", h->path);
	if (h->query)
		STR("query", h->query);
	CLOSE();
	if (h->host) {
		OPEN("server");
		STR("address", h->host);
		CLOSE();
	}
	OPEN("network");
	STR("transport", "tcp");
	STR("capture", h->over_tcp ? "tcp" : "tls");
	if (h->peer && h->peer[0]) {
		OPEN("peer");
		STR("address", h->peer);
		CLOSE();
	}
	CLOSE();
}

/* gen_ai.* (and llm.* for the exchange itself); a decision adds the first tool it chose. */
static void llm_fields(struct agt_fields *f, const struct agt_span *sp)
{
	const struct agt_span_llm *l = sp->llm;

	OPEN("gen_ai");
	OPEN("operation");
	STR("name", l->operation);
	CLOSE();
	OPEN("provider");
	STR("name", l->provider);
	CLOSE();
	if (l->req_model[0]) {
		OPEN("request");
		STR("model", l->req_model);
		CLOSE();
	}
	if (sp->kind == AGT_SPAN_LLM) {
		OPEN("response");
		if (l->resp_model[0])
			STR("model", l->resp_model);
		if (l->resp_id[0])
			STR("id", l->resp_id);
		ARRAY("finish_reasons");
		for (int i = 0; i < l->nfinish; i++)
			STR(NULL, l->finish[i]);
		CLOSE();
		CLOSE();
		OPEN("usage");
		if (l->input_tokens >= 0)
			I64("input_tokens", l->input_tokens);
		if (l->output_tokens >= 0)
			I64("output_tokens", l->output_tokens);
		if (l->cached_tokens >= 0) {
			OPEN("cache_read");
			I64("input_tokens", l->cached_tokens);
			CLOSE();
		}
		CLOSE();
	}
	if (sp->kind == AGT_SPAN_DECISION && l->ncalls) {
		OPEN("tool");
		STR("name", l->calls[0].name);
		OPEN("call");
		STR("id", l->calls[0].id);
		CLOSE();
		CLOSE();
	}
	CLOSE();
	if (sp->kind == AGT_SPAN_LLM) {
		OPEN("llm");
		STR("api", l->api);
		BOOL("stream", l->stream);
		I64("tools_offered", l->noffered);
		I64("tool_calls", l->ncalls);
		if (sp->http && sp->http->ttfc_us >= 0)
			F64("time_to_first_chunk_ms", (double)sp->http->ttfc_us / 1000.0);
		if (l->parse_failed)
			BOOL("parse_failed", 1);
		if (l->incomplete) { /* cut short: what arrived of the answer */
			BOOL("incomplete", 1);
			if (l->text && l->text[0])
				STR("partial_output", l->text);
		}
		CLOSE();
	}
}

static void decision_fields(struct agt_fields *f, const struct agt_span_llm *l)
{
	OPEN("decision");
	ARRAY("options");
	for (int i = 0; i < l->noffered; i++)
		STR(NULL, l->offered[i]);
	CLOSE();
	ARRAY("selected");
	for (int i = 0; i < l->ncalls; i++) {
		OPEN(NULL);
		STR("name", l->calls[i].name);
		STR("id", l->calls[i].id);
		STR("arguments", l->calls[i].arguments ? l->calls[i].arguments : "");
		CLOSE();
	}
	CLOSE();
	if (l->text && l->text[0])
		STR("reasoning", l->text);
	CLOSE();
	if (l->has_confidence)
		F64("confidence_score", l->confidence);
}

static void error_fields(struct agt_fields *f, const struct agt_span *sp)
{
	char type[64];

	if (sp->llm && sp->llm->error_type[0])
		snprintf(type, sizeof(type), "%s", sp->llm->error_type);
	else
		snprintf(type, sizeof(type), "%d",
			 sp->http && sp->http->answered ? sp->http->status : 0);
	OPEN("error");
	STR("type", type);
	if (sp->llm && sp->llm->error_message)
		STR("message", sp->llm->error_message);
	else if (sp->http && sp->http->answered)
		STR("message", "HTTP error status");
	CLOSE();
}

static void probe_fields(struct agt_fields *f, const struct agt_span *sp)
{
	const struct agt_span_probe *p = &sp->probe;

	OPEN("probe");
	STR("spec", p->spec);
	STR("symbol", p->symbol);
	STR("object", p->object);
	I64("depth", sp->depth);
	if (p->nargs) {
		OPEN("args");
		for (int i = 0; i < p->nargs; i++)
			value_field(f, p->arg_names[i], &p->args[i]);
		CLOSE();
	}
	if (p->ret.kind != AGT_VAL_NONE && sp->status == AGT_STATUS_OK)
		value_field(f, "return_value", &p->ret);
	CLOSE();
}

void agt_schema_walk(const struct agt_span *sp, const struct agt_export_ctx *c,
		     struct agt_fields *f)
{
	char hex[33];

	OPEN(NULL);
	time_field(f, "@timestamp", sp->start_ns, c);
	time_field(f, "end_time", sp->end_ns, c);
	agt_hex(sp->trace_id, 16, hex);
	STR("trace_id", hex);
	id_field(f, "span_id", sp->span_id);
	if (sp->parent_id)
		id_field(f, "parent_span_id", sp->parent_id);
	STR("trace_type", sp->trace_type);
	STR("name", sp->name);
	F64("duration_ms", (double)((sp->end_ns - sp->start_ns) / 1000) / 1000.0);
	STR("status", agt_status_names[sp->status]);
	if (sp->proc)
		STR("session_id", sp->proc->session_id);
	process_fields(f, sp);
	if (sp->proc)
		identity_fields(f, &sp->proc->id);
	OPEN("host");
	STR("name", c->host);
	CLOSE();
	if (sp->message[0])
		STR("message", sp->message);
	if (sp->workflow_id[0])
		STR("workflow_id", sp->workflow_id);
	if (sp->kind == AGT_SPAN_TOOL)
		tool_fields(f, sp, c);
	if (sp->kind == AGT_SPAN_COT)
		cot_fields(f, &sp->cot);
	if (sp->kind == AGT_SPAN_EXEC)
		events_field(f, sp->exec.events, sp->exec.nevents, c);
	if (sp->http)
		http_fields(f, sp->http);
	if (sp->llm)
		llm_fields(f, sp);
	if (sp->kind == AGT_SPAN_DECISION && sp->llm)
		decision_fields(f, sp->llm);
	if (sp->kind == AGT_SPAN_ERROR)
		error_fields(f, sp);
	if (sp->kind == AGT_SPAN_FUNC)
		probe_fields(f, sp);
	CLOSE();
}

/* ---- ECS JSON ---- */

struct ecs {
	struct agt_fields f;
	struct agt_jw *w;
	uint8_t array[AGT_JW_MAX_DEPTH]; /* whether the container at this depth is an array */
	int depth;
};

static void ecs_open(struct agt_fields *f, const char *key, int array)
{
	struct ecs *e = (struct ecs *)f;

	if (array)
		agt_jw_arr(e->w, key);
	else
		agt_jw_obj(e->w, key);
	if (e->depth + 1 < AGT_JW_MAX_DEPTH)
		e->array[++e->depth] = (uint8_t)array;
}
static void ecs_close(struct agt_fields *f)
{
	struct ecs *e = (struct ecs *)f;

	if (e->array[e->depth])
		agt_jw_end_arr(e->w);
	else
		agt_jw_end_obj(e->w);
	if (e->depth > 0)
		e->depth--;
}
static void ecs_str(struct agt_fields *f, const char *key, const char *v)
{
	agt_jw_str(((struct ecs *)f)->w, key, v);
}
static void ecs_i64(struct agt_fields *f, const char *key, int64_t v)
{
	agt_jw_i64(((struct ecs *)f)->w, key, v);
}
static void ecs_f64(struct agt_fields *f, const char *key, double v)
{
	agt_jw_f64(((struct ecs *)f)->w, key, v);
}
static void ecs_bool(struct agt_fields *f, const char *key, int v)
{
	agt_jw_bool(((struct ecs *)f)->w, key, v);
}

void agt_schema_ecs(const struct agt_span *sp, const struct agt_export_ctx *c, struct agt_jw *w)
{
	struct ecs e = {{ecs_open, ecs_close, ecs_str, ecs_i64, ecs_f64, ecs_bool}, w, {0}, 0};

	agt_schema_walk(sp, c, &e.f);
}

/* ---- OTLP JSON: attributes with dotted names ---- */

struct otlp {
	struct agt_fields f;
	struct agt_jw *w;
	char path[512];
	size_t plen[AGT_JW_MAX_DEPTH];	/* path length at each depth */
	uint8_t kind[AGT_JW_MAX_DEPTH]; /* 0 object, 1 array attribute, 2 skipped, 3 JSON text */
	int depth;
	struct agt_jw text; /* an object inside an array: kept as JSON text */
	int text_depth;	    /* containers open in it */
	uint8_t text_array[AGT_JW_MAX_DEPTH];
};

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

/* The dotted name of key at the current depth. */
static const char *otlp_name(struct otlp *o, const char *key)
{
	size_t n = o->plen[o->depth];

	snprintf(o->path + n, sizeof(o->path) - n, "%s%s", n ? "." : "", key);
	return o->path;
}

/* Start one attribute: {"key":NAME,"value":{ ... */
static void attr_begin(struct otlp *o, const char *key)
{
	agt_jw_obj(o->w, NULL);
	agt_jw_str(o->w, "key", otlp_name(o, key));
	o->path[o->plen[o->depth]] = 0;
	agt_jw_obj(o->w, "value");
}

static void attr_end(struct otlp *o)
{
	agt_jw_end_obj(o->w);
	agt_jw_end_obj(o->w);
}

static int otlp_skipping(struct otlp *o)
{
	return o->kind[o->depth] == 2;
}

/* A scalar inside an array attribute: one AnyValue of its values. */
static int in_array(struct otlp *o)
{
	return o->kind[o->depth] == 1;
}

static void otlp_open(struct agt_fields *f, const char *key, int array)
{
	struct otlp *o = (struct otlp *)f;
	uint8_t kind = 0;

	if (o->kind[o->depth] == 3) { /* inside an object kept as text */
		if (o->text_depth + 1 >= AGT_JW_MAX_DEPTH)
			return;
		if (array)
			agt_jw_arr(&o->text, key);
		else
			agt_jw_obj(&o->text, key);
		o->text_array[o->text_depth++] = (uint8_t)array;
		return;
	}
	if (o->depth + 1 >= AGT_JW_MAX_DEPTH)
		return;
	if (otlp_skipping(o) || (o->depth == 1 && key && core_field(key))) {
		kind = 2;
	} else if (in_array(o)) { /* an object inside an array: one string of JSON text */
		agt_jw_reset(&o->text);
		agt_jw_obj(&o->text, NULL);
		o->text_array[0] = 0;
		o->text_depth = 1;
		kind = 3;
	} else if (array && o->depth > 0) {
		attr_begin(o, key);
		agt_jw_obj(o->w, "arrayValue");
		agt_jw_arr(o->w, "values");
		kind = 1;
	}
	o->depth++;
	o->kind[o->depth] = kind;
	o->plen[o->depth] = o->plen[o->depth - 1];
	if (!kind && key && o->depth > 1) { /* a nested object: its members get key as prefix */
		size_t n = o->plen[o->depth - 1];

		snprintf(o->path + n, sizeof(o->path) - n, "%s%s", n ? "." : "", key);
		o->plen[o->depth] = strlen(o->path);
	}
}

static void otlp_close(struct agt_fields *f)
{
	struct otlp *o = (struct otlp *)f;

	if (o->kind[o->depth] == 3 && o->text_depth > 1) { /* a container inside the text */
		if (o->text_array[--o->text_depth])
			agt_jw_end_arr(&o->text);
		else
			agt_jw_end_obj(&o->text);
		return;
	}
	if (o->kind[o->depth] == 3) {
		agt_jw_end_obj(&o->text);
		agt_jw_obj(o->w, NULL);
		agt_jw_str(o->w, "stringValue", agt_jw_text(&o->text));
		agt_jw_end_obj(o->w);
	} else if (o->kind[o->depth] == 1) {
		agt_jw_end_arr(o->w);
		agt_jw_end_obj(o->w);
		attr_end(o);
	}
	if (o->depth > 0)
		o->depth--;
	o->path[o->plen[o->depth]] = 0;
}

/* The AnyValue of a scalar: {"stringValue":...} and so on; int64 travels as a string. */
static void otlp_scalar(struct otlp *o, const char *key, int type, const char *s, int64_t i,
			double d)
{
	char n[24];

	if (o->kind[o->depth] == 3) {
		struct ecs e = {.w = &o->text};

		if (type == 0)
			ecs_str(&e.f, key, s);
		else if (type == 1)
			ecs_i64(&e.f, key, i);
		else if (type == 2)
			ecs_f64(&e.f, key, d);
		else
			ecs_bool(&e.f, key, (int)i);
		return;
	}
	if (otlp_skipping(o) || o->depth == 0 || (o->depth == 1 && core_field(key)))
		return;
	if (in_array(o))
		agt_jw_obj(o->w, NULL);
	else
		attr_begin(o, key);
	switch (type) {
	case 0: agt_jw_str(o->w, "stringValue", s); break;
	case 1:
		snprintf(n, sizeof(n), "%lld", (long long)i);
		agt_jw_str(o->w, "intValue", n);
		break;
	case 2: agt_jw_f64(o->w, "doubleValue", d); break;
	default: agt_jw_bool(o->w, "boolValue", (int)i);
	}
	if (in_array(o))
		agt_jw_end_obj(o->w);
	else
		attr_end(o);
}

static void otlp_str(struct agt_fields *f, const char *key, const char *v)
{
	otlp_scalar((struct otlp *)f, key, 0, v, 0, 0);
}
static void otlp_i64(struct agt_fields *f, const char *key, int64_t v)
{
	otlp_scalar((struct otlp *)f, key, 1, NULL, v, 0);
}
static void otlp_f64(struct agt_fields *f, const char *key, double v)
{
	otlp_scalar((struct otlp *)f, key, 2, NULL, 0, v);
}
static void otlp_bool(struct agt_fields *f, const char *key, int v)
{
	otlp_scalar((struct otlp *)f, key, 3, NULL, v, 0);
}

static void ns_field(struct agt_jw *w, const char *key, uint64_t mono,
		     const struct agt_export_ctx *c)
{
	char n[24];

	snprintf(n, sizeof(n), "%llu", (unsigned long long)(mono + c->mono_to_real));
	agt_jw_str(w, key, n);
}

void agt_schema_otlp(const struct agt_span *sp, const struct agt_export_ctx *c, struct agt_jw *w)
{
	struct otlp o = {{otlp_open, otlp_close, otlp_str, otlp_i64, otlp_f64, otlp_bool}, w};
	char hex[33];

	agt_jw_init(&o.text);
	agt_jw_obj(w, NULL);
	agt_hex(sp->trace_id, 16, hex);
	agt_jw_str(w, "traceId", hex);
	agt_schema_span_id(sp->span_id, hex);
	agt_jw_str(w, "spanId", hex);
	if (sp->parent_id) {
		agt_schema_span_id(sp->parent_id, hex);
		agt_jw_str(w, "parentSpanId", hex);
	}
	agt_jw_str(w, "name", sp->name);
	/* LLM and HTTP calls leave the process: CLIENT (3); the rest INTERNAL (1). */
	agt_jw_i64(w, "kind", sp->kind == AGT_SPAN_LLM || sp->kind == AGT_SPAN_HTTP ? 3 : 1);
	ns_field(w, "startTimeUnixNano", sp->start_ns, c);
	ns_field(w, "endTimeUnixNano", sp->end_ns, c);
	agt_jw_arr(w, "attributes");
	agt_schema_walk(sp, c, &o.f);
	agt_jw_end_arr(w);
	agt_jw_obj(w, "status");
	agt_jw_i64(w, "code", sp->status == AGT_STATUS_ERROR ? 2 : 1);
	if (sp->status == AGT_STATUS_UNFINISHED)
		agt_jw_str(w, "message", "unfinished");
	agt_jw_end_obj(w);
	if (sp->kind == AGT_SPAN_TOOL && sp->tool.nevents) {
		agt_jw_arr(w, "events");
		for (int i = 0; i < sp->tool.nevents; i++) {
			agt_jw_obj(w, NULL);
			ns_field(w, "timeUnixNano", sp->tool.events[i].ts_ns, c);
			agt_jw_str(w, "name", sp->tool.events[i].name);
			agt_jw_end_obj(w);
		}
		agt_jw_end_arr(w);
	}
	agt_jw_end_obj(w);
	w->replaced += o.text.replaced;
	agt_jw_free(&o.text);
}

/* ---- msgpack: two passes, the first counting each container's members (msgpack wants the
 * count before the members) ---- */

#define MP_MAX_CONTAINERS 256

struct mp {
	struct agt_fields f;
	msgpack_packer *pk;
	int pass; /* 0 count, 1 write */
	uint16_t count[MP_MAX_CONTAINERS];
	uint8_t is_array[MP_MAX_CONTAINERS];
	int stack[AGT_JW_MAX_DEPTH];
	int depth, nopen;
};

static void mp_key(struct mp *m, const char *key)
{
	if (m->pass == 0) {
		if (m->depth > 0 && m->stack[m->depth] < MP_MAX_CONTAINERS)
			m->count[m->stack[m->depth]]++;
		return;
	}
	if (key)
		msgpack_pack_str_with_body(m->pk, key, strlen(key));
}

static void mp_open(struct agt_fields *f, const char *key, int array)
{
	struct mp *m = (struct mp *)f;
	int idx = m->nopen++;

	mp_key(m, key);
	if (m->depth + 1 >= AGT_JW_MAX_DEPTH)
		return;
	m->stack[++m->depth] = idx;
	if (idx >= MP_MAX_CONTAINERS)
		return;
	if (m->pass == 0) {
		m->count[idx] = 0;
		m->is_array[idx] = (uint8_t)array;
	} else if (array) {
		msgpack_pack_array(m->pk, m->count[idx]);
	} else {
		msgpack_pack_map(m->pk, m->count[idx]);
	}
}

static void mp_close(struct agt_fields *f)
{
	struct mp *m = (struct mp *)f;

	if (m->depth > 0)
		m->depth--;
}

static void mp_str(struct agt_fields *f, const char *key, const char *v)
{
	struct mp *m = (struct mp *)f;

	size_t n = v ? strlen(v) : 0;

	mp_key(m, key);
	if (!m->pass)
		return;
	if (n && !agt_utf8_valid(v, n)) { /* captured bytes: valid UTF-8 only, as in JSON */
		char *fixed = malloc(AGT_UTF8_SANITIZED_MAX(n));

		if (fixed) {
			agt_utf8_sanitize(v, n, fixed, &n);
			msgpack_pack_str_with_body(m->pk, fixed, n);
			free(fixed);
			return;
		}
		n = 0;
	}
	msgpack_pack_str_with_body(m->pk, v ? v : "", n);
}
static void mp_i64(struct agt_fields *f, const char *key, int64_t v)
{
	struct mp *m = (struct mp *)f;

	mp_key(m, key);
	if (m->pass)
		msgpack_pack_int64(m->pk, v);
}
static void mp_f64(struct agt_fields *f, const char *key, double v)
{
	struct mp *m = (struct mp *)f;

	mp_key(m, key);
	if (!m->pass)
		return;
	if (v == (double)(int64_t)v)
		msgpack_pack_int64(m->pk, (int64_t)v);
	else
		msgpack_pack_double(m->pk, v);
}
static void mp_bool(struct agt_fields *f, const char *key, int v)
{
	struct mp *m = (struct mp *)f;

	mp_key(m, key);
	if (!m->pass)
		return;
	if (v)
		msgpack_pack_true(m->pk);
	else
		msgpack_pack_false(m->pk);
}

void agt_schema_msgpack(const struct agt_span *sp, const struct agt_export_ctx *c,
			msgpack_packer *pk)
{
	struct mp m = {{mp_open, mp_close, mp_str, mp_i64, mp_f64, mp_bool}, pk};

	for (m.pass = 0; m.pass < 2; m.pass++) {
		m.depth = 0;
		m.nopen = 0;
		agt_schema_walk(sp, c, &m.f);
	}
}
