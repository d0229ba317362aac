#include "core/redact.h"
#include "base/util.h"
#include "protocols/llm/llm.h"
#include "export/sink.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void agt_export_ctx_init(struct agt_export_ctx *c)
{
	c->mono_to_real = agt_mono_to_real_offset();
	if (gethostname(c->host, sizeof(c->host)))
		snprintf(c->host, sizeof(c->host), "unknown");
	c->host[sizeof(c->host) - 1] = 0;
}

static void add_value(cJSON *obj, const char *key, const struct agt_value *v)
{
	char hex[24];

	switch (v->kind) {
	case AGT_VAL_INT: cJSON_AddNumberToObject(obj, key, (double)(int64_t)v->u); break;
	case AGT_VAL_UINT: cJSON_AddNumberToObject(obj, key, (double)v->u); break;
	case AGT_VAL_PTR:
		snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)v->u);
		cJSON_AddStringToObject(obj, key, hex);
		break;
	case AGT_VAL_STR: cJSON_AddStringToObject(obj, key, v->str); break;
	default: break;
	}
}

static void add_id(cJSON *o, const char *key, uint64_t id)
{
	char hex[17];
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(id >> (56 - 8 * i));
	agt_hex(b, 8, hex);
	cJSON_AddStringToObject(o, key, hex);
}

static void add_redacted(cJSON *o, const char *key, const char *text)
{
	char *r = agt_redact(text);

	cJSON_AddStringToObject(o, key, r ? r : "");
	free(r);
}

static cJSON *obj(cJSON *parent, const char *key)
{
	cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, key);

	return o ? o : cJSON_AddObjectToObject(parent, key);
}

static void add_http(cJSON *o, const struct agt_span *sp)
{
	const char *host = agt_http_header(sp->req, "Host");
	cJSON *http = obj(o, "http"), *url = obj(o, "url");
	size_t plen = strcspn(sp->req->url, "?");
	char *path = strndup(sp->req->url, plen);

	cJSON_AddStringToObject(obj(http, "request"), "method", sp->req->method);
	cJSON_AddNumberToObject(obj(obj(http, "request"), "body"), "size",
				(double)sp->req->body_seen);
	cJSON_AddBoolToObject(obj(obj(http, "request"), "body"), "truncated", sp->req->truncated);
	if (sp->resp) {
		cJSON *rb = obj(obj(http, "response"), "body");

		cJSON_AddNumberToObject(obj(http, "response"), "status_code", sp->resp->status);
		cJSON_AddNumberToObject(rb, "size", (double)sp->resp->body_seen);
		cJSON_AddBoolToObject(rb, "truncated", sp->resp->truncated);
	}
	add_redacted(url, "path", path ? path : "");
	if (sp->req->url[plen])
		add_redacted(url, "query", sp->req->url + plen + 1);
	if (host)
		cJSON_AddStringToObject(obj(o, "server"), "address", host);
	cJSON_AddStringToObject(obj(o, "network"), "transport", "tcp");
	cJSON_AddStringToObject(obj(o, "network"), "capture",
				sp->req->source == AGT_SRC_TCP ? "tcp" : "tls");
	if (sp->req->peer[0])
		cJSON_AddStringToObject(obj(obj(o, "network"), "peer"), "address", sp->req->peer);
	free(path);
}

static void add_gen_ai(cJSON *o, const struct agt_span *sp)
{
	const struct agt_llm *l = sp->llm;
	cJSON *g = obj(o, "gen_ai"), *resp, *usage, *fr, *x;

	cJSON_AddStringToObject(obj(g, "operation"), "name", l->operation);
	cJSON_AddStringToObject(obj(g, "provider"), "name", l->provider);
	if (l->req_model[0])
		cJSON_AddStringToObject(obj(g, "request"), "model", l->req_model);
	if (sp->kind != AGT_SPAN_LLM)
		return;
	resp = obj(g, "response");
	if (l->resp_model[0])
		cJSON_AddStringToObject(resp, "model", l->resp_model);
	if (l->resp_id[0])
		cJSON_AddStringToObject(resp, "id", l->resp_id);
	fr = cJSON_AddArrayToObject(resp, "finish_reasons");
	for (int i = 0; i < l->nfinish; i++)
		cJSON_AddItemToArray(fr, cJSON_CreateString(l->finish[i]));
	usage = obj(g, "usage");
	if (l->input_tokens >= 0)
		cJSON_AddNumberToObject(usage, "input_tokens", (double)l->input_tokens);
	if (l->output_tokens >= 0)
		cJSON_AddNumberToObject(usage, "output_tokens", (double)l->output_tokens);
	if (l->cached_tokens >= 0)
		cJSON_AddNumberToObject(obj(usage, "cache_read"), "input_tokens",
					(double)l->cached_tokens);
	x = obj(o, "llm");
	cJSON_AddStringToObject(x, "api", l->api);
	cJSON_AddBoolToObject(x, "stream", l->stream);
	cJSON_AddNumberToObject(x, "tools_offered", l->noffered);
	cJSON_AddNumberToObject(x, "tool_calls", l->ncalls);
	if (sp->resp && sp->resp->first_body_ns && sp->resp->first_body_ns >= sp->req->end_ns)
		cJSON_AddNumberToObject(
		    x, "time_to_first_chunk_ms",
		    (double)((sp->resp->first_body_ns - sp->req->end_ns) / 1000) / 1000.0);
	if (l->parse_failed)
		cJSON_AddBoolToObject(x, "parse_failed", 1);
}

static void add_decision(cJSON *o, const struct agt_span *sp)
{
	const struct agt_llm *l = sp->llm;
	cJSON *d = obj(o, "decision"), *opts = cJSON_AddArrayToObject(d, "options");
	cJSON *sel = cJSON_AddArrayToObject(d, "selected");

	for (int i = 0; i < l->noffered; i++)
		cJSON_AddItemToArray(opts, cJSON_CreateString(l->offered[i]));
	for (int i = 0; i < l->ncalls; i++) {
		cJSON *c = cJSON_CreateObject();

		cJSON_AddStringToObject(c, "name", l->calls[i].name);
		cJSON_AddStringToObject(c, "id", l->calls[i].id);
		add_redacted(c, "arguments", l->calls[i].arguments ? l->calls[i].arguments : "");
		cJSON_AddItemToArray(sel, c);
	}
	if (l->text && l->text[0])
		add_redacted(d, "reasoning", l->text);
	if (l->has_confidence)
		cJSON_AddNumberToObject(o, "confidence_score", l->confidence);
	if (l->ncalls) {
		cJSON_AddStringToObject(obj(obj(o, "gen_ai"), "tool"), "name", l->calls[0].name);
		cJSON_AddStringToObject(obj(obj(obj(o, "gen_ai"), "tool"), "call"), "id",
					l->calls[0].id);
	}
}

static void add_error(cJSON *o, const struct agt_span *sp)
{
	cJSON *e = obj(o, "error");
	char type[64];

	if (sp->llm && sp->llm->error_type[0])
		snprintf(type, sizeof(type), "%s", sp->llm->error_type);
	else
		snprintf(type, sizeof(type), "%d", sp->resp ? sp->resp->status : 0);
	cJSON_AddStringToObject(e, "type", type);
	if (sp->llm && sp->llm->error_message)
		add_redacted(e, "message", sp->llm->error_message);
	else if (sp->resp)
		cJSON_AddStringToObject(e, "message", "HTTP error status");
}

cJSON *agt_span_to_json(const struct agt_span *sp, const struct agt_export_ctx *c)
{
	cJSON *o = cJSON_CreateObject(), *proc, *th, *host;
	char ts[40], hex[33];

	agt_format_time(sp->start_ns + c->mono_to_real, ts, sizeof(ts));
	cJSON_AddStringToObject(o, "@timestamp", ts);
	agt_format_time(sp->end_ns + c->mono_to_real, ts, sizeof(ts));
	cJSON_AddStringToObject(o, "end_time", ts);
	agt_hex(sp->trace_id, 16, hex);
	cJSON_AddStringToObject(o, "trace_id", hex);
	add_id(o, "span_id", sp->span_id);
	if (sp->parent_id)
		add_id(o, "parent_span_id", sp->parent_id);
	cJSON_AddStringToObject(o, "trace_type", sp->trace_type);
	cJSON_AddStringToObject(o, "name", sp->name);
	cJSON_AddNumberToObject(o, "duration_ms",
				(double)((sp->end_ns - sp->start_ns) / 1000) / 1000.0);
	cJSON_AddStringToObject(o, "status", agt_status_names[sp->status]);
	if (sp->proc)
		cJSON_AddStringToObject(o, "session_id", sp->proc->session_id);
	proc = cJSON_AddObjectToObject(o, "process");
	cJSON_AddNumberToObject(proc, "pid", sp->pid);
	if (sp->proc) {
		cJSON_AddStringToObject(proc, "name", sp->proc->comm);
		cJSON_AddStringToObject(proc, "executable", sp->proc->exe);
	}
	if (sp->tid) {
		th = cJSON_AddObjectToObject(proc, "thread");
		cJSON_AddNumberToObject(th, "id", sp->tid);
	}
	if (sp->has_exit) {
		cJSON_AddNumberToObject(proc, "exit_code", sp->exit_code);
		if (sp->exit_signal)
			cJSON_AddNumberToObject(proc, "exit_signal", sp->exit_signal);
	}
	if (sp->proc && sp->proc->id.container_id[0]) {
		cJSON *ct = cJSON_AddObjectToObject(o, "container");

		cJSON_AddStringToObject(ct, "id", sp->proc->id.container_id);
		if (sp->proc->id.runtime[0])
			cJSON_AddStringToObject(ct, "runtime", sp->proc->id.runtime);
	}
	if (sp->proc && sp->proc->id.pod_uid[0]) {
		cJSON *k8s = cJSON_AddObjectToObject(o, "k8s"),
		      *pod = cJSON_AddObjectToObject(k8s, "pod");

		cJSON_AddStringToObject(pod, "uid", sp->proc->id.pod_uid);
		if (sp->proc->id.pod_name[0]) {
			cJSON_AddStringToObject(pod, "name", sp->proc->id.pod_name);
			cJSON_AddStringToObject(cJSON_AddObjectToObject(k8s, "namespace"), "name",
						sp->proc->id.pod_namespace);
		}
	}
	host = cJSON_AddObjectToObject(o, "host");
	cJSON_AddStringToObject(host, "name", c->host);
	if (sp->message[0])
		cJSON_AddStringToObject(o, "message", sp->message);
	if (sp->workflow_id[0])
		cJSON_AddStringToObject(o, "workflow_id", sp->workflow_id);
	if (sp->kind == AGT_SPAN_TOOL) {
		cJSON *g = obj(o, "gen_ai"), *t = obj(o, "tool");

		cJSON_AddStringToObject(obj(g, "operation"), "name", "execute_tool");
		if (sp->tool.mcp) {
			cJSON_AddStringToObject(obj(obj(o, "mcp"), "method"), "name", "tools/call");
			cJSON_AddStringToObject(obj(obj(o, "jsonrpc"), "request"), "id",
						sp->tool.id);
		}
		cJSON_AddStringToObject(obj(g, "tool"), "name", sp->tool.name);
		cJSON_AddStringToObject(obj(obj(g, "tool"), "call"), "id", sp->tool.id);
		add_redacted(t, "input", sp->tool.input ? sp->tool.input : "");
		if (sp->tool.output)
			add_redacted(t, "output", sp->tool.output);
		if (sp->status != AGT_STATUS_UNFINISHED)
			cJSON_AddBoolToObject(t, "success", sp->tool.success);
		if (sp->tool.nevents) {
			cJSON *evs = cJSON_AddArrayToObject(o, "events");

			for (int i = 0; i < sp->tool.nevents; i++) {
				cJSON *e = cJSON_CreateObject();
				char ts[40];

				agt_format_time(sp->tool.events[i].ts_ns + c->mono_to_real, ts,
						sizeof(ts));
				cJSON_AddStringToObject(e, "name", sp->tool.events[i].name);
				cJSON_AddStringToObject(e, "@timestamp", ts);
				cJSON_AddItemToArray(evs, e);
			}
		}
	}
	if (sp->kind == AGT_SPAN_COT) {
		cJSON *cot = obj(o, "cot"), *g = obj(o, "gen_ai");

		cJSON_AddNumberToObject(cot, "steps", sp->cot.steps);
		cJSON_AddNumberToObject(cot, "depth", sp->cot.steps + sp->cot.tool_calls);
		if (sp->cot.sequence) {
			cJSON *seq = cJSON_AddArrayToObject(cot, "sequence");
			const char *q = sp->cot.sequence;

			while (*q) {
				size_t n = strcspn(q, "|");
				char *one = strndup(q, n);

				cJSON_AddItemToArray(seq, cJSON_CreateString(one ? one : ""));
				free(one);
				q += n + (q[n] == '|');
			}
		}
		cJSON_AddNumberToObject(cot, "tool_calls", sp->cot.tool_calls);
		if (sp->cot.final_answer)
			add_redacted(cot, "final_answer", sp->cot.final_answer);
		if (sp->cot.provider)
			cJSON_AddStringToObject(obj(g, "provider"), "name", sp->cot.provider);
		if (sp->cot.model && sp->cot.model[0])
			cJSON_AddStringToObject(obj(g, "request"), "model", sp->cot.model);
		cJSON_AddNumberToObject(obj(g, "usage"), "input_tokens",
					(double)sp->cot.input_tokens);
		cJSON_AddNumberToObject(obj(g, "usage"), "output_tokens",
					(double)sp->cot.output_tokens);
	}
	if (sp->kind == AGT_SPAN_EXEC) {
		add_redacted(proc, "command_line",
			     sp->exec.command_line ? sp->exec.command_line : "");
		cJSON_AddNumberToObject(obj(proc, "parent"), "pid", sp->exec.ppid);
	}
	if (sp->req)
		add_http(o, sp);
	if (sp->llm)
		add_gen_ai(o, sp);
	if (sp->kind == AGT_SPAN_DECISION)
		add_decision(o, sp);
	if (sp->kind == AGT_SPAN_ERROR)
		add_error(o, sp);
	if (sp->probe) {
		const struct agt_probe_spec *ps = sp->probe->ps;
		cJSON *pr = cJSON_AddObjectToObject(o, "probe"), *args;

		cJSON_AddStringToObject(pr, "spec", sp->probe->spec->name);
		cJSON_AddStringToObject(pr, "symbol", sp->probe->symbol);
		cJSON_AddStringToObject(pr, "object", sp->probe->object);
		cJSON_AddNumberToObject(pr, "depth", sp->depth);
		if (sp->nargs) {
			args = cJSON_AddObjectToObject(pr, "args");
			for (int i = 0; i < sp->nargs; i++)
				add_value(args, ps->args[i].name, &sp->args[i]);
		}
		if (sp->ret.kind != AGT_VAL_NONE && sp->status == AGT_STATUS_OK)
			add_value(pr, "return_value", &sp->ret);
	}
	return o;
}

struct jsonl {
	struct agt_sink base;
	FILE *out;
	struct agt_export_ctx ctx;
};

static void jsonl_span(struct agt_sink *s, const struct agt_span *sp)
{
	struct jsonl *j = (struct jsonl *)s;
	cJSON *o = agt_span_to_json(sp, &j->ctx);
	char *text = cJSON_PrintUnformatted(o);

	if (text) {
		fputs(text, j->out);
		fputc('\n', j->out);
	}
	free(text);
	cJSON_Delete(o);
}

static void jsonl_flush(struct agt_sink *s)
{
	fflush(((struct jsonl *)s)->out);
}
static void jsonl_destroy(struct agt_sink *s)
{
	free(s);
}

struct agt_sink *agt_jsonl_new(FILE *out, const struct agt_export_ctx *c)
{
	struct jsonl *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->base =
	    (struct agt_sink){.span = jsonl_span, .flush = jsonl_flush, .destroy = jsonl_destroy};
	j->out = out;
	j->ctx = *c;
	return &j->base;
}
