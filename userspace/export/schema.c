#include "export/schema.h"
#include "base/utf8.h"
#include "base/util.h"
#include "base/version.h"
#include <cjson/cJSON.h>
#include <math.h>
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
#define STRN(k, v, n) (f->strn ? f->strn(f, k, v, n) : f->str(f, k, v))
#define I64(k, v) f->i64(f, k, (int64_t)(v))
#define F64(k, v) f->f64(f, k, v)
#define BOOL(k, v) f->boolean(f, k, v)
#define ECS (f->dialect == AGT_DIALECT_ECS)
#define OTEL (f->dialect == AGT_DIALECT_OTEL)

static void time_field(struct agt_fields *f, const char *key, uint64_t mono,
		       const struct agt_export_ctx *c)
{
	char ts[40];

	agt_format_time(mono + c->mono_to_real, ts, sizeof(ts));
	STR(key, ts);
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

static const char *base_name(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;

	return s ? s + 1 : path ? path : "";
}

/* The workload kinds that name a service (a bare ReplicaSet does not: it is a Deployment's
 * part, or an odd one). */
static int names_service(const char *kind)
{
	static const char *const kinds[] = {"Deployment", "StatefulSet", "DaemonSet", "Job",
					    "CronJob"};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(kind, kinds[i]))
			return 1;
	return 0;
}

/* Whose resource a span is in: the target's. */
static const struct agt_proc_info *workload_proc(const struct agt_span *sp)
{
	return sp->owner ? sp->owner : sp->proc;
}

const char *agt_schema_service_name(const struct agt_span *sp, const struct agt_export_ctx *c)
{
	const struct agt_proc_info *p = workload_proc(sp);

	if (c->service_name[0])
		return c->service_name;
	if (!p)
		return "unknown_service";
	if (p->id.service_name[0])
		return p->id.service_name;
	if (p->id.owner_name[0] && names_service(p->id.owner_kind))
		return p->id.owner_name;
	if (base_name(p->exe)[0])
		return base_name(p->exe);
	return p->comm[0] ? p->comm : "unknown_service";
}

/* The blocks of an ECS document that are the same for every span of one process, or of one
 * probe: written here, or copied by an encoder that keeps them (agt_schema_ecs_cached). What a
 * block says must come from the process (sp->proc and workload_proc(sp)), the probe's names or
 * c only: the cache compares those when it takes a block again (proc_deps, probe_slot). */
enum { B_SESSION, B_NAMES, B_RESOURCE, B_AGTRACE, B_PROBE, B_N };

static void identity_fields(struct agt_fields *f, const struct agt_identity *id);

static void block_fields(struct agt_fields *f, int which, const struct agt_span *sp,
			 const struct agt_export_ctx *c)
{
	switch (which) {
	case B_SESSION: STR("session_id", sp->proc->session_id); break;
	case B_NAMES: /* in process.* */
		STR("name", sp->proc->comm);
		STR("executable", sp->proc->exe);
		break;
	case B_RESOURCE:
		if (sp->proc)
			identity_fields(f, &sp->proc->id);
		OPEN("host");
		STR("name", c->host);
		CLOSE();
		break;
	case B_AGTRACE:
		OPEN("service");
		STR("name", agt_schema_service_name(sp, c));
		CLOSE();
		OPEN("ecs");
		STR("version", AGT_ECS_VERSION);
		CLOSE();
		OPEN("agent");
		STR("type", "agtrace");
		STR("version", agt_version);
		CLOSE();
		break;
	case B_PROBE: /* in probe.* */
		STR("spec", sp->probe.spec);
		STR("symbol", sp->probe.symbol);
		STR("object", sp->probe.object);
		break;
	default: break;
	}
}

static void block(struct agt_fields *f, int which, const struct agt_span *sp,
		  const struct agt_export_ctx *c)
{
	if (!f->block || !f->block(f, which, sp, c))
		block_fields(f, which, sp, c);
}

/* process.* in ECS: who, and for a command, also its command line and parent. */
static void process_fields(struct agt_fields *f, const struct agt_span *sp,
			   const struct agt_export_ctx *c)
{
	OPEN("process");
	I64("pid", sp->pid);
	if (sp->proc)
		block(f, B_NAMES, sp, c);
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

/* What of process.* is the span's own in OTel (the rest is its resource): the thread, an exit,
 * and a command's own process. */
static void process_attrs(struct agt_fields *f, const struct agt_span *sp)
{
	if (sp->tid) {
		OPEN("thread");
		I64("id", sp->tid);
		CLOSE();
	}
	if (!sp->has_exit && sp->kind != AGT_SPAN_EXEC)
		return;
	OPEN("process");
	if (sp->kind == AGT_SPAN_EXEC || !workload_proc(sp) || (int)sp->pid != workload_proc(sp)->pid)
		I64("pid", sp->pid);
	if (sp->has_exit) {
		OPEN("exit");
		I64("code", sp->exit_code);
		if (sp->exit_signal)
			I64("signal", sp->exit_signal);
		CLOSE();
	}
	if (sp->kind == AGT_SPAN_EXEC) {
		STR("command_line", sp->exec.command_line ? sp->exec.command_line : "");
		I64("parent_pid", sp->exec.ppid);
	}
	CLOSE();
}

/* k8s.<kind>.name of the pod's owner (and the ReplicaSet between a Deployment and its pods). */
static void owner_fields(struct agt_fields *f, const struct agt_identity *id)
{
	char kind[32];
	size_t i;

	if (!id->owner_name[0])
		return;
	for (i = 0; id->owner_kind[i] && i + 1 < sizeof(kind); i++)
		kind[i] = (char)(id->owner_kind[i] >= 'A' && id->owner_kind[i] <= 'Z'
				     ? id->owner_kind[i] - 'A' + 'a'
				     : id->owner_kind[i]);
	kind[i] = 0;
	OPEN(kind);
	STR("name", id->owner_name);
	CLOSE();
	if (id->replicaset[0]) {
		OPEN("replicaset");
		STR("name", id->replicaset);
		CLOSE();
	}
}

static void identity_fields(struct agt_fields *f, const struct agt_identity *id)
{
	if (id->container_id[0]) {
		OPEN("container");
		STR("id", id->container_id);
		if (id->runtime[0]) {
			if (ECS) {
				STR("runtime", id->runtime);
			} else {
				OPEN("runtime");
				STR("name", id->runtime);
				CLOSE();
			}
		}
		if (ECS && id->container_name[0])
			STR("name", id->container_name);
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
		owner_fields(f, id);
		if (id->container_name[0]) {
			OPEN("container");
			STR("name", id->container_name);
			CLOSE();
		}
		if (id->node_name[0]) {
			OPEN("node");
			STR("name", id->node_name);
			CLOSE();
		}
		CLOSE();
	}
}

void agt_schema_resource(const struct agt_span *sp, const struct agt_export_ctx *c,
			 struct agt_fields *f)
{
	const struct agt_proc_info *p = workload_proc(sp);

	OPEN(NULL);
	OPEN("service");
	STR("name", agt_schema_service_name(sp, c));
	CLOSE();
	if (p) {
		OPEN("process");
		I64("pid", p->pid);
		OPEN("executable");
		STR("name", base_name(p->exe)[0] ? base_name(p->exe) : p->comm);
		if (p->exe[0])
			STR("path", p->exe);
		CLOSE();
		CLOSE();
		identity_fields(f, &p->id);
	}
	OPEN("host");
	STR("name", c->host);
	CLOSE();
	CLOSE();
}

/* ECS events: points in time inside a span (runtime events of a tool call, later execs of a
 * command), inline. OTel spans carry them as span events (see the OTLP encoders). */
static void events_field(struct agt_fields *f, const struct agt_span_event *ev, int n,
			 const struct agt_export_ctx *c)
{
	char name[64 + 1 + 192];

	if (!n || OTEL)
		return;
	ARRAY("events");
	for (int i = 0; i < n; i++) {
		OPEN(NULL);
		if (ev[i].detail[0]) {
			snprintf(name, sizeof(name), "%s %s", ev[i].name, ev[i].detail);
			STR("name", name);
		} else {
			STR("name", ev[i].name);
		}
		time_field(f, "@timestamp", ev[i].ts_ns, c);
		CLOSE();
	}
	CLOSE();
}

/* An OTel span event's attributes. */
static void event_attrs(struct agt_fields *f, const struct agt_span_event *ev)
{
	OPEN(NULL);
	if (ev->detail[0]) {
		OPEN("process");
		STR("command_line", ev->detail);
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
	if (OTEL) { /* what the model asked for, and what the tool answered */
		STR("arguments", t->input ? t->input : "");
		if (t->output)
			STR("result", t->output);
	}
	CLOSE();
	if (OTEL)
		STR("type", t->mcp ? "extension" : "function");
	CLOSE();
	CLOSE();
	if (ECS) {
		OPEN("tool");
		STR("input", t->input ? t->input : "");
		if (t->output)
			STR("output", t->output);
		if (sp->status != AGT_STATUS_UNFINISHED)
			BOOL("success", t->success);
		CLOSE();
	}
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

static void cot_fields(struct agt_fields *f, const struct agt_span *sp,
		       const struct agt_export_ctx *c)
{
	const struct agt_span_cot *cot = &sp->cot;

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
	/* OTel: every conversation is an agent's invocation (the root of its tree); ECS names
	 * the operation of the agents invoked from a tool call only, as it always has. */
	if (cot->agent_name || OTEL) {
		OPEN("operation");
		STR("name", "invoke_agent");
		CLOSE();
		OPEN("agent");
		STR("name", cot->agent_name ? cot->agent_name : agt_schema_service_name(sp, c));
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

/* host[:port] (or [v6]:port) apart: the host into out, the port (0: none) returned. */
static long split_hostport(const char *s, char *out, size_t n)
{
	const char *colon = NULL, *end;
	long port = 0;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end) {
			snprintf(out, n, "%s", s);
			return 0;
		}
		snprintf(out, n, "%.*s", (int)(end - s - 1), s + 1);
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon)
			colon = NULL; /* a bare IPv6 address */
		snprintf(out, n, "%.*s", colon ? (int)(colon - s) : (int)strlen(s), s);
	}
	if (colon && agt_parse_long(colon + 1, 1, 65535, &port))
		port = 0;
	return port;
}

static void http_fields(struct agt_fields *f, const struct agt_span_http *h)
{
	char host[256], peer[128];
	long port = 0, peer_port = 0;

	peer[0] = 0;
	if (h->peer && h->peer[0])
		peer_port = split_hostport(h->peer, peer, sizeof(peer));
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
		/* The Host header names the server (behind a proxy too); its port, else the one
		 * the connection went to, else the scheme's. */
		port = split_hostport(h->host, host, sizeof(host));
		if (!port)
			port = peer_port ? peer_port : h->over_tcp ? 80 : 443;
		OPEN("server");
		STR("address", host);
		I64("port", port);
		CLOSE();
	}
	OPEN("network");
	STR("transport", "tcp");
	STR("capture", h->over_tcp ? "tcp" : "tls");
	if (peer[0]) {
		OPEN("peer");
		if (ECS) {
			STR("address", h->peer);
		} else {
			STR("address", peer);
			if (peer_port)
				I64("port", peer_port);
		}
		CLOSE();
	}
	CLOSE();
}

/* gen_ai.output.messages: what the response said (its text and tool calls), each text capped. */
static char *output_messages(const struct agt_span_llm *l, uint64_t *replaced)
{
	struct agt_jw w;
	char *out;

	agt_jw_init(&w);
	agt_jw_arr(&w, NULL);
	agt_jw_obj(&w, NULL);
	agt_jw_str(&w, "role", "assistant");
	agt_jw_arr(&w, "parts");
	if (l->text && l->text[0]) {
		size_t n = strlen(l->text);

		agt_jw_obj(&w, NULL);
		agt_jw_str(&w, "type", "text");
		agt_jw_strn(&w, "content", l->text, n < l->content_cap ? n : l->content_cap);
		agt_jw_end_obj(&w);
	}
	for (int i = 0; i < l->ncalls; i++) {
		const char *a = l->calls[i].arguments ? l->calls[i].arguments : "";
		size_t n = strlen(a);
		cJSON *parsed = n <= l->content_cap ? cJSON_Parse(a) : NULL;

		agt_jw_obj(&w, NULL);
		agt_jw_str(&w, "type", "tool_call");
		agt_jw_str(&w, "id", l->calls[i].id);
		agt_jw_str(&w, "name", l->calls[i].name);
		if (parsed) { /* the arguments as the object they are */
			agt_jw_raw(&w, ",\"arguments\":", 13);
			agt_jw_raw(&w, a, n);
		} else {
			agt_jw_strn(&w, "arguments", a, n < l->content_cap ? n : l->content_cap);
		}
		cJSON_Delete(parsed);
		agt_jw_end_obj(&w);
	}
	agt_jw_end_arr(&w);
	if (l->nfinish)
		agt_jw_str(&w, "finish_reason", l->finish[0]);
	agt_jw_end_obj(&w);
	agt_jw_end_arr(&w);
	out = w.failed ? NULL : strdup(agt_jw_text(&w));
	*replaced += w.replaced; /* made valid here: the output's writer finds nothing more */
	agt_jw_free(&w);
	return out;
}

static void request_params(struct agt_fields *f, const struct agt_span_llm *l)
{
	if (l->max_tokens >= 0)
		I64("max_tokens", l->max_tokens);
	if (!isnan(l->temperature))
		F64("temperature", l->temperature);
	if (!isnan(l->top_p))
		F64("top_p", l->top_p);
	if (!isnan(l->top_k))
		F64("top_k", l->top_k);
	if (!isnan(l->frequency_penalty))
		F64("frequency_penalty", l->frequency_penalty);
	if (!isnan(l->presence_penalty))
		F64("presence_penalty", l->presence_penalty);
	if (l->seed >= 0)
		I64("seed", l->seed);
	if (l->choice_count > 1) {
		OPEN("choice");
		I64("count", l->choice_count);
		CLOSE();
	}
	if (l->nstop) {
		ARRAY("stop_sequences");
		for (int i = 0; i < l->nstop; i++)
			STR(NULL, l->stop[i]);
		CLOSE();
	}
}

/* gen_ai.* (and llm.* for the exchange itself); a decision adds the first tool it chose. */
static void llm_fields(struct agt_fields *f, const struct agt_span *sp)
{
	const struct agt_span_llm *l = sp->llm;
	int step = sp->kind == AGT_SPAN_LLM;

	OPEN("gen_ai");
	if (step || ECS) { /* OTel: only the exchange itself is a chat operation */
		OPEN("operation");
		STR("name", l->operation);
		CLOSE();
		OPEN("provider");
		STR("name", l->provider);
		CLOSE();
	}
	if (l->req_model[0] || step) {
		OPEN("request");
		if (l->req_model[0])
			STR("model", l->req_model);
		if (step) {
			BOOL("stream", l->stream);
			request_params(f, l);
		}
		CLOSE();
	}
	if (step) {
		OPEN("response");
		if (l->resp_model[0])
			STR("model", l->resp_model);
		if (l->resp_id[0])
			STR("id", l->resp_id);
		ARRAY("finish_reasons");
		for (int i = 0; i < l->nfinish; i++)
			STR(NULL, l->finish[i]);
		CLOSE();
		if (l->stream && sp->http && sp->http->ttfc_us >= 0)
			F64("time_to_first_chunk", (double)sp->http->ttfc_us / 1e6);
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
		if (l->input_messages) {
			OPEN("input");
			STR("messages", l->input_messages);
			CLOSE();
		}
		if (l->system_instructions)
			STR("system_instructions", l->system_instructions);
		if (l->content && (l->ncalls || (l->text && l->text[0]))) {
			char *out = output_messages(l, &f->replaced);

			if (out) {
				OPEN("output");
				STR("messages", out);
				CLOSE();
				free(out);
			}
		}
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
	if (step) {
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

/* error.type: the API's error type, an HTTP status, a failed tool, a command's exit; _OTHER
 * when nothing more tells. */
static void error_type(const struct agt_span *sp, char *type, size_t n)
{
	if (sp->llm && sp->llm->error_type[0])
		snprintf(type, n, "%s", sp->llm->error_type);
	else if (sp->http && sp->http->answered && sp->http->status >= 400)
		snprintf(type, n, "%d", sp->http->status);
	else if (sp->kind == AGT_SPAN_TOOL)
		snprintf(type, n, "tool_error");
	else if (sp->has_exit && sp->exit_signal)
		snprintf(type, n, "signal_%d", sp->exit_signal);
	else if (sp->has_exit)
		snprintf(type, n, "exit_%d", sp->exit_code);
	else if (sp->kind == AGT_SPAN_ERROR && sp->http)
		snprintf(type, n, "%d", sp->http->answered ? sp->http->status : 0);
	else
		snprintf(type, n, "_OTHER");
}

static void error_fields(struct agt_fields *f, const struct agt_span *sp)
{
	char type[64];

	if (ECS && sp->kind == AGT_SPAN_ERROR) { /* as the Kibana searches know it */
		if (sp->llm && sp->llm->error_type[0])
			snprintf(type, sizeof(type), "%s", sp->llm->error_type);
		else
			snprintf(type, sizeof(type), "%d",
				 sp->http && sp->http->answered ? sp->http->status : 0);
	} else if (OTEL && sp->status == AGT_STATUS_ERROR) {
		error_type(sp, type, sizeof(type));
	} else {
		return;
	}
	OPEN("error");
	STR("type", type);
	if (sp->kind == AGT_SPAN_ERROR) {
		if (sp->llm && sp->llm->error_message)
			STR("message", sp->llm->error_message);
		else if (sp->http && sp->http->answered)
			STR("message", "HTTP error status");
	}
	CLOSE();
}

static void probe_fields(struct agt_fields *f, const struct agt_span *sp,
			 const struct agt_export_ctx *c)
{
	const struct agt_span_probe *p = &sp->probe;

	OPEN("probe");
	block(f, B_PROBE, sp, c);
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

/* A span's ids and times as ECS documents write them (each twice: once in the trace model's
 * names, once in ECS's), made once per document. */
struct ecs_text {
	char trace_id[33], span_id[17], parent_id[17], start[40], end[40];
	size_t start_len, end_len;
};

static void ecs_text(const struct agt_span *sp, const struct agt_export_ctx *c,
		     struct ecs_text *t)
{
	agt_hex(sp->trace_id, 16, t->trace_id);
	agt_schema_span_id(sp->span_id, t->span_id);
	if (sp->parent_id)
		agt_schema_span_id(sp->parent_id, t->parent_id);
	agt_format_time(sp->start_ns + c->mono_to_real, t->start, sizeof(t->start));
	agt_format_time(sp->end_ns + c->mono_to_real, t->end, sizeof(t->end));
	t->start_len = strlen(t->start);
	t->end_len = strlen(t->end);
}

/* ECS's own names for what the trace model already says (trace.id beside trace_id, ...), and
 * who wrote the document. */
static void ecs_fields(struct agt_fields *f, const struct agt_span *sp,
		       const struct agt_export_ctx *c, const struct ecs_text *t)
{
	OPEN("trace");
	STRN("id", t->trace_id, 32);
	CLOSE();
	OPEN("span");
	STRN("id", t->span_id, 16);
	CLOSE();
	if (sp->parent_id) {
		OPEN("parent");
		STRN("id", t->parent_id, 16);
		CLOSE();
	}
	OPEN("event");
	I64("duration", sp->end_ns - sp->start_ns);
	STR("outcome", sp->status == AGT_STATUS_OK	   ? "success"
		       : sp->status == AGT_STATUS_ERROR ? "failure"
							: "unknown");
	STRN("start", t->start, t->start_len);
	STRN("end", t->end, t->end_len);
	CLOSE();
	block(f, B_AGTRACE, sp, c);
}

/* file.*: what a process did to a file (ECS file.path and file.hash.sha256; the rest ours). */
static void file_fields(struct agt_fields *f, const struct agt_span_file *x)
{
	OPEN("file");
	STR("path", x->path);
	STR("operation", x->operation);
	ARRAY("operations");
	for (int i = 0; i < x->noperations; i++)
		STR(NULL, x->operations[i]);
	CLOSE();
	if (x->previous_path)
		STR("previous_path", x->previous_path);
	if (x->bytes >= 0)
		I64("bytes", x->bytes);
	if (x->size >= 0)
		I64("size", x->size);
	if (x->sha256) {
		OPEN("hash");
		STR("sha256", x->sha256);
		CLOSE();
	}
	if (x->sha256_before) {
		OPEN("before");
		OPEN("hash");
		STR("sha256", x->sha256_before);
		CLOSE();
		CLOSE();
	}
	if (x->hash_note)
		STR("hash_note", x->hash_note);
	if (x->diff) {
		STR("diff", x->diff);
		if (x->diff_truncated)
			BOOL("diff_truncated", 1);
	}
	CLOSE();
}

void agt_schema_walk(const struct agt_span *sp, const struct agt_export_ctx *c,
		     struct agt_fields *f)
{
	struct ecs_text t;

	OPEN(NULL);
	if (ECS) {
		ecs_text(sp, c, &t);
		STRN("@timestamp", t.start, t.start_len);
		STRN("end_time", t.end, t.end_len);
		STRN("trace_id", t.trace_id, 32);
		STRN("span_id", t.span_id, 16);
		if (sp->parent_id)
			STRN("parent_span_id", t.parent_id, 16);
	}
	STR("trace_type", sp->trace_type);
	if (ECS) {
		STR("name", sp->name);
		F64("duration_ms", (double)((sp->end_ns - sp->start_ns) / 1000) / 1000.0);
		STR("status", agt_status_names[sp->status]);
	} else if (sp->status == AGT_STATUS_UNFINISHED) {
		BOOL("unfinished", 1); /* OTel has no status for it: the span's status is unset */
	}
	if (sp->proc) {
		if (ECS) {
			block(f, B_SESSION, sp, c);
		} else {
			OPEN("session");
			STR("id", sp->proc->session_id);
			CLOSE();
		}
	}
	if (ECS) {
		process_fields(f, sp, c);
		block(f, B_RESOURCE, sp, c);
	} else {
		process_attrs(f, sp);
	}
	if (sp->message[0])
		STR("message", sp->message);
	if (sp->workflow_id[0]) {
		if (ECS) {
			STR("workflow_id", sp->workflow_id);
		} else {
			OPEN("gen_ai");
			OPEN("conversation");
			STR("id", sp->workflow_id);
			CLOSE();
			CLOSE();
		}
	}
	if (sp->kind == AGT_SPAN_TOOL)
		tool_fields(f, sp, c);
	if (sp->kind == AGT_SPAN_COT)
		cot_fields(f, sp, c);
	if (sp->kind == AGT_SPAN_EXEC)
		events_field(f, sp->exec.events, sp->exec.nevents, c);
	if (sp->http)
		http_fields(f, sp->http);
	if (sp->llm)
		llm_fields(f, sp);
	if (sp->kind == AGT_SPAN_DECISION && sp->llm)
		decision_fields(f, sp->llm);
	error_fields(f, sp);
	if (sp->kind == AGT_SPAN_FUNC)
		probe_fields(f, sp, c);
	if (ECS)
		ecs_fields(f, sp, c, &t);
	if (sp->kind == AGT_SPAN_FILE)
		file_fields(f, &sp->file);
	CLOSE();
}

/* ---- ECS JSON ---- */

struct ecs_slot;

struct ecs {
	struct agt_fields f;
	struct agt_jw *w;
	struct ecs_slot *proc, *probe; /* agt_schema_ecs_cached: this span's blocks */
};

static void ecs_open(struct agt_fields *f, const char *key, int array)
{
	struct ecs *e = (struct ecs *)f;

	if (array)
		agt_jw_arr(e->w, key);
	else
		agt_jw_obj(e->w, key);
}
static void ecs_close(struct agt_fields *f)
{
	agt_jw_end(((struct ecs *)f)->w); /* the writer knows which */
}
static void ecs_str(struct agt_fields *f, const char *key, const char *v)
{
	agt_jw_str(((struct ecs *)f)->w, key, v);
}
static void ecs_strn(struct agt_fields *f, const char *key, const char *v, size_t n)
{
	agt_jw_plain(((struct ecs *)f)->w, key, v, n);
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
	struct ecs e = {{ecs_open, ecs_close, ecs_str, ecs_i64, ecs_f64, ecs_bool, AGT_DIALECT_ECS},
			w,
			NULL,
			NULL};

	e.f.strn = ecs_strn;
	agt_schema_walk(sp, c, &e.f);
	w->replaced += e.f.replaced;
}

/* ---- ECS JSON with the blocks of a process and of a probe kept as text ---- */

#define SLOTS 32 /* of each kind (a power of two) */
#define DEPS 24	 /* strings a slot's blocks are made of, at most */

/* The blocks made for one key: a process (proc, workload and context) or a probe (its three
 * names), with a copy of every string they were made of. */
struct ecs_slot {
	const void *key[3]; /* key[0] NULL and used 0: empty */
	int used;
	int ndeps;
	const char *dep[DEPS]; /* where each string is (inside the key's objects) */
	uint32_t copy[DEPS];   /* its copy in mem, NUL-terminated */
	uint32_t off[B_N], len[B_N];
	uint64_t replaced[B_N]; /* invalid UTF-8 sequences the writer replaced in the block */
	struct agt_jw mem;	/* the copies, then the blocks' text */
};

struct agt_ecs_cache {
	struct ecs_slot proc[SLOTS], probe[SLOTS];
	struct agt_jw scratch; /* a block is written here first */
};

struct agt_ecs_cache *agt_ecs_cache_new(void)
{
	struct agt_ecs_cache *k = calloc(1, sizeof(*k));

	if (k)
		agt_jw_init(&k->scratch);
	return k;
}

void agt_ecs_cache_free(struct agt_ecs_cache *k)
{
	if (!k)
		return;
	for (int i = 0; i < SLOTS; i++) {
		agt_jw_free(&k->proc[i].mem);
		agt_jw_free(&k->probe[i].mem);
	}
	agt_jw_free(&k->scratch);
	free(k);
}

/* Whether every string the slot's blocks were made of still says what it said. The strings
 * are where they were (the key is the objects they are in): compared with their copies, an
 * empty one by its first byte. */
static int slot_current(const struct ecs_slot *s)
{
	for (int i = 0; i < s->ndeps; i++) {
		const char *a = s->dep[i], *b = s->mem.buf + s->copy[i];

		if (a[0] != b[0] || (a[0] && strcmp(a + 1, b + 1)))
			return 0;
	}
	return 1;
}

static void slot_dep(struct ecs_slot *s, const char *str)
{
	if (!str)
		return; /* NULL stays NULL: where it is is part of the key */
	for (int i = 0; i < s->ndeps; i++)
		if (s->dep[i] == str)
			return;
	if (s->ndeps == DEPS) { /* never: DEPS covers proc_deps; a slot that cannot tell is unused */
		s->mem.failed = 1;
		return;
	}
	s->dep[s->ndeps] = str;
	s->copy[s->ndeps++] = (uint32_t)s->mem.len;
	agt_jw_raw(&s->mem, str, strlen(str) + 1);
}

/* Everything block_fields reads for the blocks of a process: sp->proc's names and identity,
 * the workload's (the service name), and c's host and service name. */
static void proc_deps(struct ecs_slot *s, const struct agt_proc_info *p,
		      const struct agt_proc_info *q, const struct agt_export_ctx *c)
{
	const struct agt_proc_info *who[2] = {p, q};

	for (int i = 0; i < 2; i++) {
		const struct agt_proc_info *x = who[i];

		if (!x)
			continue;
		slot_dep(s, x->session_id);
		slot_dep(s, x->comm);
		slot_dep(s, x->exe);
		slot_dep(s, x->id.container_id);
		slot_dep(s, x->id.runtime);
		slot_dep(s, x->id.container_name);
		slot_dep(s, x->id.pod_uid);
		slot_dep(s, x->id.pod_name);
		slot_dep(s, x->id.pod_namespace);
		slot_dep(s, x->id.owner_kind);
		slot_dep(s, x->id.owner_name);
		slot_dep(s, x->id.replicaset);
		slot_dep(s, x->id.node_name);
		slot_dep(s, x->id.service_name);
	}
	slot_dep(s, c->host);
	slot_dep(s, c->service_name);
}

/* Block which of sp, as the walk writes it, into s. */
static void slot_block(struct agt_ecs_cache *k, struct ecs_slot *s, int which,
		       const struct agt_span *sp, const struct agt_export_ctx *c)
{
	struct ecs e = {{ecs_open, ecs_close, ecs_str, ecs_i64, ecs_f64, ecs_bool, AGT_DIALECT_ECS},
			&k->scratch,
			NULL,
			NULL};

	e.f.strn = ecs_strn;
	agt_jw_reset(&k->scratch);
	k->scratch.replaced = 0;
	ecs_open(&e.f, NULL, 0);
	block_fields(&e.f, which, sp, c);
	if (k->scratch.failed) {
		s->mem.failed = 1;
		return;
	}
	s->off[which] = (uint32_t)s->mem.len;
	s->len[which] = (uint32_t)(k->scratch.len - 1); /* without the '{' */
	s->replaced[which] = k->scratch.replaced + e.f.replaced;
	agt_jw_raw(&s->mem, k->scratch.buf + 1, s->len[which]);
}

/* The slot for key, current: taken, or made again. NULL: out of memory. */
static struct ecs_slot *slot_get(struct ecs_slot *tab, const void *a, const void *b,
				 const void *c3)
{
	uintptr_t h = ((uintptr_t)a >> 4) ^ ((uintptr_t)b >> 7) ^ ((uintptr_t)c3 >> 10);
	struct ecs_slot *s = &tab[(h ^ (h >> 5)) & (SLOTS - 1)];

	if (s->used && s->key[0] == a && s->key[1] == b && s->key[2] == c3 && slot_current(s))
		return s;
	s->used = 0;
	s->key[0] = a;
	s->key[1] = b;
	s->key[2] = c3;
	s->ndeps = 0;
	memset(s->len, 0, sizeof(s->len));
	agt_jw_reset(&s->mem);
	return s;
}

static struct ecs_slot *proc_slot(struct agt_ecs_cache *k, const struct agt_span *sp,
				  const struct agt_export_ctx *c)
{
	const struct agt_proc_info *p = sp->proc, *q = workload_proc(sp);
	struct ecs_slot *s = slot_get(k->proc, p, q, c);

	if (s->used)
		return s;
	proc_deps(s, p, q, c);
	if (p) {
		slot_block(k, s, B_SESSION, sp, c);
		slot_block(k, s, B_NAMES, sp, c);
	}
	slot_block(k, s, B_RESOURCE, sp, c);
	slot_block(k, s, B_AGTRACE, sp, c);
	s->used = !s->mem.failed;
	return s->used ? s : NULL;
}

static struct ecs_slot *probe_slot(struct agt_ecs_cache *k, const struct agt_span *sp,
				   const struct agt_export_ctx *c)
{
	const struct agt_span_probe *p = &sp->probe;
	struct ecs_slot *s = slot_get(k->probe, p->spec, p->symbol, p->object);

	if (s->used)
		return s;
	slot_dep(s, p->spec);
	slot_dep(s, p->symbol);
	slot_dep(s, p->object);
	slot_block(k, s, B_PROBE, sp, c);
	s->used = !s->mem.failed;
	return s->used ? s : NULL;
}

static int ecs_block(struct agt_fields *f, int which, const struct agt_span *sp,
		     const struct agt_export_ctx *c)
{
	struct ecs *e = (struct ecs *)f;
	struct ecs_slot *s = which == B_PROBE ? e->probe : e->proc;

	(void)sp;
	(void)c;
	if (!s)
		return 0;
	agt_jw_members(e->w, s->mem.buf + s->off[which], s->len[which]);
	e->w->replaced += s->replaced[which];
	return 1;
}

void agt_schema_ecs_cached(const struct agt_span *sp, const struct agt_export_ctx *c,
			   struct agt_ecs_cache *k, struct agt_jw *w)
{
	struct ecs e = {{ecs_open, ecs_close, ecs_str, ecs_i64, ecs_f64, ecs_bool, AGT_DIALECT_ECS},
			w,
			NULL,
			NULL};

	if (!k) {
		agt_schema_ecs(sp, c, w);
		return;
	}
	e.f.strn = ecs_strn;
	e.f.block = ecs_block;
	e.proc = proc_slot(k, sp, c);
	if (sp->kind == AGT_SPAN_FUNC)
		e.probe = probe_slot(k, sp, c);
	agt_schema_walk(sp, c, &e.f);
	w->replaced += e.f.replaced;
}

/* ---- OTLP attributes: a walk flattened into KeyValues with dotted names, written as OTLP/JSON
 * or as protobuf ---- */

/* Where KeyValues go: an OTLP/JSON attributes array (w), or repeated KeyValue field kv of the
 * protobuf message being written (p). */
struct kv_out {
	struct agt_jw *w;
	struct agt_pb *p;
	uint32_t kv;
};

enum { V_STR, V_INT, V_DOUBLE, V_BOOL };

static void kv_begin(struct kv_out *o, const char *key)
{
	if (o->p) {
		agt_pb_begin(o->p, o->kv);
		agt_pb_str(o->p, 1, key);
		agt_pb_begin(o->p, 2); /* value: AnyValue */
	} else {
		agt_jw_obj(o->w, NULL);
		agt_jw_str(o->w, "key", key);
		agt_jw_obj(o->w, "value");
	}
}

static void kv_end(struct kv_out *o)
{
	if (o->p) {
		agt_pb_end(o->p);
		agt_pb_end(o->p);
	} else {
		agt_jw_end_obj(o->w);
		agt_jw_end_obj(o->w);
	}
}

/* The typed member of the AnyValue being written; int64 travels as a string in OTLP/JSON. */
static void any_value(struct kv_out *o, int type, const char *s, int64_t i, double d)
{
	char n[24];

	if (o->p) {
		switch (type) {
		case V_STR: agt_pb_str(o->p, 1, s); break;
		case V_INT: agt_pb_varint(o->p, 3, (uint64_t)i); break;
		case V_DOUBLE: agt_pb_double(o->p, 4, d); break;
		default: agt_pb_varint(o->p, 2, i ? 1 : 0);
		}
		return;
	}
	switch (type) {
	case V_STR: agt_jw_str(o->w, "stringValue", s); break;
	case V_INT:
		snprintf(n, sizeof(n), "%lld", (long long)i);
		agt_jw_str(o->w, "intValue", n);
		break;
	case V_DOUBLE: agt_jw_f64(o->w, "doubleValue", d); break;
	default: agt_jw_bool(o->w, "boolValue", (int)i);
	}
}

/* An array value: begin in the AnyValue being written, elements, end. */
static void array_begin(struct kv_out *o)
{
	if (o->p) {
		agt_pb_begin(o->p, 5); /* array_value: ArrayValue */
	} else {
		agt_jw_obj(o->w, "arrayValue");
		agt_jw_arr(o->w, "values");
	}
}

static void array_elem(struct kv_out *o, int type, const char *s, int64_t i, double d)
{
	if (o->p) {
		agt_pb_begin(o->p, 1); /* values: AnyValue */
		any_value(o, type, s, i, d);
		agt_pb_end(o->p);
	} else {
		agt_jw_obj(o->w, NULL);
		any_value(o, type, s, i, d);
		agt_jw_end_obj(o->w);
	}
}

static void array_end(struct kv_out *o)
{
	if (o->p) {
		agt_pb_end(o->p);
	} else {
		agt_jw_end_arr(o->w);
		agt_jw_end_obj(o->w);
	}
}

struct flat {
	struct agt_fields f;
	struct kv_out *o;
	char path[512];
	size_t plen[AGT_JW_MAX_DEPTH];	/* path length at each depth */
	uint8_t kind[AGT_JW_MAX_DEPTH]; /* 0 object, 1 array attribute, 2 skipped, 3 JSON text */
	int depth;
	struct agt_jw text; /* an object inside an array: kept as JSON text */
	int text_depth;	    /* containers open in it */
	uint8_t text_array[AGT_JW_MAX_DEPTH];
};

/* The dotted name of key at the current depth. */
static const char *flat_name(struct flat *o, const char *key)
{
	size_t n = o->plen[o->depth];

	snprintf(o->path + n, sizeof(o->path) - n, "%s%s", n ? "." : "", key);
	return o->path;
}

static void flat_open(struct agt_fields *f, const char *key, int array)
{
	struct flat *o = (struct flat *)f;
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
	if (o->kind[o->depth] == 2 || (o->kind[o->depth] == 1 && array)) {
		kind = 2;
	} else if (o->kind[o->depth] == 1) { /* an object inside an array: one string of JSON */
		agt_jw_reset(&o->text);
		agt_jw_obj(&o->text, NULL);
		o->text_array[0] = 0;
		o->text_depth = 1;
		kind = 3;
	} else if (array && o->depth > 0) {
		kv_begin(o->o, flat_name(o, key));
		o->path[o->plen[o->depth]] = 0;
		array_begin(o->o);
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

static void flat_close(struct agt_fields *f)
{
	struct flat *o = (struct flat *)f;

	if (o->kind[o->depth] == 3 && o->text_depth > 1) { /* a container inside the text */
		if (o->text_array[--o->text_depth])
			agt_jw_end_arr(&o->text);
		else
			agt_jw_end_obj(&o->text);
		return;
	}
	if (o->kind[o->depth] == 3) {
		agt_jw_end_obj(&o->text);
		array_elem(o->o, V_STR, agt_jw_text(&o->text), 0, 0);
	} else if (o->kind[o->depth] == 1) {
		array_end(o->o);
		kv_end(o->o);
	}
	if (o->depth > 0)
		o->depth--;
	o->path[o->plen[o->depth]] = 0;
}

static void flat_scalar(struct flat *o, const char *key, int type, const char *s, int64_t i,
			double d)
{
	if (o->kind[o->depth] == 3) {
		struct ecs e = {.w = &o->text};

		if (type == V_STR)
			ecs_str(&e.f, key, s);
		else if (type == V_INT)
			ecs_i64(&e.f, key, i);
		else if (type == V_DOUBLE)
			ecs_f64(&e.f, key, d);
		else
			ecs_bool(&e.f, key, (int)i);
		return;
	}
	if (o->kind[o->depth] == 2 || o->depth == 0)
		return;
	if (type == V_DOUBLE && !isfinite(d))
		return; /* OTLP/JSON has no number for it */
	if (o->kind[o->depth] == 1) {
		array_elem(o->o, type, s ? s : "", i, d);
		return;
	}
	kv_begin(o->o, flat_name(o, key));
	o->path[o->plen[o->depth]] = 0;
	any_value(o->o, type, s ? s : "", i, d);
	kv_end(o->o);
}

static void flat_str(struct agt_fields *f, const char *key, const char *v)
{
	flat_scalar((struct flat *)f, key, V_STR, v, 0, 0);
}
static void flat_i64(struct agt_fields *f, const char *key, int64_t v)
{
	flat_scalar((struct flat *)f, key, V_INT, NULL, v, 0);
}
static void flat_f64(struct agt_fields *f, const char *key, double v)
{
	flat_scalar((struct flat *)f, key, V_DOUBLE, NULL, 0, v);
}
static void flat_bool(struct agt_fields *f, const char *key, int v)
{
	flat_scalar((struct flat *)f, key, V_BOOL, NULL, v, 0);
}

static void flat_init(struct flat *fl, struct kv_out *o)
{
	memset(fl, 0, sizeof(*fl));
	fl->f = (struct agt_fields){flat_open, flat_close, flat_str, flat_i64,
				    flat_f64,  flat_bool,  AGT_DIALECT_OTEL};
	fl->o = o;
	agt_jw_init(&fl->text);
}

/* Account for what the text writer replaced, then free it. */
static void flat_done(struct flat *fl)
{
	if (fl->o->w)
		fl->o->w->replaced += fl->text.replaced + fl->f.replaced;
	else
		fl->o->p->replaced += fl->text.replaced + fl->f.replaced;
	agt_jw_free(&fl->text);
}

/* A span's attributes, or an event's, into o. */
static void span_attrs(const struct agt_span *sp, const struct agt_export_ctx *c,
		       struct kv_out *o)
{
	struct flat fl;

	flat_init(&fl, o);
	agt_schema_walk(sp, c, &fl.f);
	flat_done(&fl);
}

static void event_attrs_to(const struct agt_span_event *ev, struct kv_out *o)
{
	struct flat fl;

	flat_init(&fl, o);
	event_attrs(&fl.f, ev);
	flat_done(&fl);
}

/* The resource's attributes, then the extra ones it does not have. */
static void resource_attrs(const struct agt_span *sp, const struct agt_export_ctx *c,
			   const struct agt_otlp_attrs *extra, struct kv_out *o)
{
	struct flat fl;
	struct agt_export_ctx cc;
	const char *service = NULL;

	/* OTEL_RESOURCE_ATTRIBUTES's service.name: what the user says, when --service-name and
	 * OTEL_SERVICE_NAME do not. */
	for (int i = 0; extra && i < extra->n; i++)
		if (!strcmp(extra->keys[i], "service.name"))
			service = extra->values[i];
	if (service && !c->service_name[0]) {
		cc = *c;
		snprintf(cc.service_name, sizeof(cc.service_name), "%s", service);
		c = &cc;
	}
	flat_init(&fl, o);
	agt_schema_resource(sp, c, &fl.f);
	flat_done(&fl);
	for (int i = 0; extra && i < extra->n; i++) {
		const char *k = extra->keys[i];
		int have = !strcmp(k, "service.name") || !strcmp(k, "host.name");

		if (!strncmp(k, "process.", 8) || !strncmp(k, "container.", 10) ||
		    !strncmp(k, "k8s.", 4))
			have |= workload_proc(sp) != NULL; /* the workload's own say */
		if (have)
			continue;
		kv_begin(o, k);
		any_value(o, V_STR, extra->values[i], 0, 0);
		kv_end(o);
	}
}

static uint64_t real(uint64_t mono, const struct agt_export_ctx *c)
{
	return mono + (uint64_t)c->mono_to_real;
}

/* SpanKind: LLM and HTTP calls leave the process: CLIENT (3); the rest INTERNAL (1). */
static int span_kind(const struct agt_span *sp)
{
	return sp->kind == AGT_SPAN_LLM || sp->kind == AGT_SPAN_HTTP ? 3 : 1;
}

/* Status: ERROR with what went wrong; otherwise UNSET (the OTel way: only an error is said). */
static const char *status_message(const struct agt_span *sp)
{
	if (sp->llm && sp->llm->error_message)
		return sp->llm->error_message;
	return sp->message[0] ? sp->message : "";
}

/* The events of a span: a tool call's runtime events, a command's later execs. */
static const struct agt_span_event *span_events(const struct agt_span *sp, int *n)
{
	*n = sp->kind == AGT_SPAN_TOOL ? sp->tool.nevents
	     : sp->kind == AGT_SPAN_EXEC ? sp->exec.nevents
					 : 0;
	return sp->kind == AGT_SPAN_TOOL ? sp->tool.events : sp->exec.events;
}

/* W3C trace flags (sampled) and "the parent is not remote". */
#define SPAN_FLAGS 0x101

static void ns_field(struct agt_jw *w, const char *key, uint64_t ns)
{
	char n[24];

	snprintf(n, sizeof(n), "%llu", (unsigned long long)ns);
	agt_jw_str(w, key, n);
}

void agt_schema_otlp(const struct agt_span *sp, const struct agt_export_ctx *c, struct agt_jw *w)
{
	struct kv_out o = {.w = w};
	const struct agt_span_event *ev;
	char hex[33];
	int nev;

	agt_jw_obj(w, NULL);
	agt_hex(sp->trace_id, 16, hex);
	agt_jw_str(w, "traceId", hex);
	agt_schema_span_id(sp->span_id, hex);
	agt_jw_str(w, "spanId", hex);
	if (sp->parent_id) {
		agt_schema_span_id(sp->parent_id, hex);
		agt_jw_str(w, "parentSpanId", hex);
	}
	agt_jw_i64(w, "flags", SPAN_FLAGS);
	agt_jw_str(w, "name", sp->name);
	agt_jw_i64(w, "kind", span_kind(sp));
	ns_field(w, "startTimeUnixNano", real(sp->start_ns, c));
	ns_field(w, "endTimeUnixNano", real(sp->end_ns, c));
	agt_jw_arr(w, "attributes");
	span_attrs(sp, c, &o);
	agt_jw_end_arr(w);
	ev = span_events(sp, &nev);
	if (nev) {
		agt_jw_arr(w, "events");
		for (int i = 0; i < nev; i++) {
			agt_jw_obj(w, NULL);
			ns_field(w, "timeUnixNano", real(ev[i].ts_ns, c));
			agt_jw_str(w, "name", ev[i].name);
			agt_jw_arr(w, "attributes");
			event_attrs_to(&ev[i], &o);
			agt_jw_end_arr(w);
			agt_jw_end_obj(w);
		}
		agt_jw_end_arr(w);
	}
	agt_jw_obj(w, "status");
	if (sp->status == AGT_STATUS_ERROR) {
		agt_jw_str(w, "message", status_message(sp));
		agt_jw_i64(w, "code", 2);
	}
	agt_jw_end_obj(w);
	agt_jw_end_obj(w);
}

void agt_schema_otlp_resource(const struct agt_span *sp, const struct agt_export_ctx *c,
			      const struct agt_otlp_attrs *extra, struct agt_jw *w)
{
	struct kv_out o = {.w = w};

	agt_jw_obj(w, NULL);
	agt_jw_arr(w, "attributes");
	resource_attrs(sp, c, extra, &o);
	agt_jw_end_arr(w);
	agt_jw_end_obj(w);
}

void agt_schema_otlp_pb(const struct agt_span *sp, const struct agt_export_ctx *c,
			struct agt_pb *p)
{
	struct kv_out o = {.p = p, .kv = 9};
	const struct agt_span_event *ev;
	uint8_t id[8];
	int nev;

	agt_pb_bytes(p, 1, sp->trace_id, 16);
	for (int i = 0; i < 8; i++)
		id[i] = (uint8_t)(sp->span_id >> (56 - 8 * i));
	agt_pb_bytes(p, 2, id, 8);
	if (sp->parent_id) {
		for (int i = 0; i < 8; i++)
			id[i] = (uint8_t)(sp->parent_id >> (56 - 8 * i));
		agt_pb_bytes(p, 4, id, 8);
	}
	agt_pb_str(p, 5, sp->name);
	agt_pb_varint(p, 6, (uint64_t)span_kind(sp));
	agt_pb_fixed64(p, 7, real(sp->start_ns, c));
	agt_pb_fixed64(p, 8, real(sp->end_ns, c));
	span_attrs(sp, c, &o);
	ev = span_events(sp, &nev);
	o.kv = 3;
	for (int i = 0; i < nev; i++) {
		agt_pb_begin(p, 11);
		agt_pb_fixed64(p, 1, real(ev[i].ts_ns, c));
		agt_pb_str(p, 2, ev[i].name);
		event_attrs_to(&ev[i], &o);
		agt_pb_end(p);
	}
	agt_pb_begin(p, 15);
	if (sp->status == AGT_STATUS_ERROR) {
		agt_pb_str(p, 2, status_message(sp));
		agt_pb_varint(p, 3, 2);
	}
	agt_pb_end(p);
	agt_pb_fixed32(p, 16, SPAN_FLAGS);
}

void agt_schema_otlp_resource_pb(const struct agt_span *sp, const struct agt_export_ctx *c,
				 const struct agt_otlp_attrs *extra, struct agt_pb *p)
{
	struct kv_out o = {.p = p, .kv = 1};

	resource_attrs(sp, c, extra, &o);
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
	uint64_t replaced; /* invalid UTF-8 sequences replaced */
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
			m->replaced += agt_utf8_sanitize(v, n, fixed, &n);
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

uint64_t agt_schema_msgpack(const struct agt_span *sp, const struct agt_export_ctx *c,
			    msgpack_packer *pk)
{
	struct mp m = {{mp_open, mp_close, mp_str, mp_i64, mp_f64, mp_bool, AGT_DIALECT_ECS}, pk};

	for (m.pass = 0; m.pass < 2; m.pass++) {
		m.depth = 0;
		m.nopen = 0;
		agt_schema_walk(sp, c, &m.f);
		if (!m.pass)
			m.f.replaced = 0; /* counted once: in the pass that writes */
	}
	return m.replaced + m.f.replaced;
}
