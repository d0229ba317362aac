/* HTTP exchanges become spans: an LLM API call is a reasoning_step, with a decision child when
 * the model chose tools and an error child when the API said no; an MCP tools/call over
 * streamable HTTP (a JSON-RPC POST answered with JSON or SSE) is an MCP tool call; anything else
 * is a plain HTTP span: the child of the tool call running then, else an http_call of its own
 * (a client's warm-up, telemetry: never a tool call). A response cut short (its process died
 * mid-stream) keeps what arrived: status, time to first chunk, partial text and tokens, its end
 * at the last byte, status unfinished. Also the trace stage's small events: MCP calls over
 * local IPC, state changes, metadata-only errors. */
#include "trace/trace.h"
#include "protocols/mcp.h"
#include "protocols/llm/llm.h"
#include "trace/agent.h"
#include "trace/nest.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The HTTP part of the record; *path_out is allocated (freed by the caller). */
static void fill_http(struct agt_span_http *h, const struct agt_http_msg *req,
		      const struct agt_http_msg *resp, char **path_out)
{
	size_t plen = strcspn(req->url, "?");

	memset(h, 0, sizeof(*h));
	*path_out = strndup(req->url, plen);
	h->method = req->method;
	h->path = *path_out ? *path_out : "";
	h->query = req->url[plen] ? req->url + plen + 1 : NULL;
	h->host = agt_http_header(req, "Host");
	h->peer = req->peer;
	h->over_tcp = req->source == AGT_SRC_TCP;
	h->req_body_size = req->body_seen;
	h->req_truncated = req->truncated;
	h->ttfc_us = -1;
	if (resp) {
		h->answered = 1;
		h->status = resp->status;
		h->resp_body_size = resp->body_seen;
		h->resp_truncated = resp->truncated;
		if (resp->first_body_ns && resp->first_body_ns >= req->end_ns)
			h->ttfc_us = (int64_t)((resp->first_body_ns - req->end_ns) / 1000);
	}
}

/* The LLM part of the record; *calls_out is allocated (freed by the caller). */
static void fill_llm(struct agt_span_llm *s, const struct agt_llm *l,
		     struct agt_tool_choice **calls_out, size_t content_cap)
{
	struct agt_tool_choice *c = l->ncalls ? calloc(l->ncalls, sizeof(*c)) : NULL;

	memset(s, 0, sizeof(*s));
	s->operation = l->operation;
	s->provider = l->provider;
	s->api = l->api;
	s->req_model = l->req_model;
	s->resp_model = l->resp_model;
	s->resp_id = l->resp_id;
	s->input_tokens = l->input_tokens;
	s->output_tokens = l->output_tokens;
	s->cached_tokens = l->cached_tokens;
	for (int i = 0; i < l->nfinish; i++)
		s->finish[s->nfinish++] = l->finish[i];
	s->stream = l->stream;
	s->parse_failed = l->parse_failed;
	s->offered = (const char *const *)l->offered;
	s->noffered = l->noffered;
	for (int i = 0; c && i < l->ncalls; i++)
		c[i] = (struct agt_tool_choice){l->calls[i].name, l->calls[i].id,
						l->calls[i].arguments};
	s->calls = c;
	s->ncalls = c ? l->ncalls : 0;
	s->text = l->text;
	s->has_confidence = l->has_confidence;
	s->confidence = l->confidence;
	s->error_type = l->error_type;
	s->error_message = l->error_message;
	s->incomplete = l->incomplete;
	s->max_tokens = l->max_tokens;
	s->seed = l->seed;
	s->choice_count = l->choice_count;
	s->temperature = l->temperature;
	s->top_p = l->top_p;
	s->top_k = l->top_k;
	s->frequency_penalty = l->frequency_penalty;
	s->presence_penalty = l->presence_penalty;
	s->stop = (const char *const *)l->stop;
	s->nstop = l->nstop;
	s->input_messages = l->input_messages;
	s->system_instructions = l->system_instructions;
	s->content = content_cap > 0;
	s->content_cap = content_cap;
	*calls_out = c;
}

static void base(struct agt_trace *t, struct agt_span *s, const struct agt_proc_info *proc,
		 const struct agt_http_msg *req, const struct agt_http_msg *resp)
{
	memset(s, 0, sizeof(*s));
	s->proc = proc;
	s->pid = proc->pid;
	s->tid = req->tid;
	s->start_ns = req->start_ns;
	s->end_ns = resp ? resp->end_ns : req->end_ns;
	if (s->end_ns < s->start_ns)
		s->end_ns = s->start_ns;
	agt_emit_root(&t->em, s);
}

static void mcp_span(struct agt_trace *t, const struct agt_proc_info *proc,
		     const struct agt_mcp_call *c, const struct agt_span_http *http);

/* An MCP tools/call over streamable HTTP: a POST of a JSON-RPC request, answered with the JSON-RPC
 * response (application/json) or with an SSE stream whose events carry it. 1 when req is one
 * (its span is emitted), 0 otherwise. */
static int mcp_over_http(struct agt_trace *t, const struct agt_proc_info *proc,
			 const struct agt_http_msg *req, const struct agt_http_msg *resp,
			 const struct agt_span_http *http)
{
	struct agt_mcp_call c;

	if (!agt_mcp_from_http(req, resp, &c))
		return 0;
	mcp_span(t, proc, &c, http);
	agt_mcp_call_free(&c);
	return 1;
}

void agt_trace_exchange(struct agt_trace *t, const struct agt_proc_info *proc,
			struct agt_http_msg *req, struct agt_http_msg *resp)
{
	struct agt_span root, dec, err;
	struct agt_span_http http;
	struct agt_span_llm sl;
	struct agt_tool_choice *calls = NULL;
	struct agt_llm llm;
	int is_llm, failed;
	char *path = NULL;

	if (resp)
		agt_http_decode_body(resp, 8 * t->msg_cap);
	agt_http_decode_body(req, 8 * t->msg_cap);
	struct agt_llm_content_cfg cc = {t->content_cap, t->em.redact, t->em.redact_ctx};

	is_llm = agt_llm_parse_content(req, resp ? resp : &(struct agt_http_msg){0}, &llm,
				       t->content_cap ? &cc : NULL) == 0;
	fill_http(&http, req, resp, &path);
	if (!is_llm && mcp_over_http(t, proc, req, resp, &http)) {
		free(path);
		agt_http_msg_free(req);
		agt_http_msg_free(resp);
		return;
	}
	base(t, &root, proc, req, resp);
	root.http = &http;
	failed = resp && (resp->status >= 400 || (is_llm && llm.error_type[0]));
	root.status = !resp || resp->incomplete ? AGT_STATUS_UNFINISHED
		      : failed			? AGT_STATUS_ERROR
						: AGT_STATUS_OK;
	if (is_llm) {
		fill_llm(&sl, &llm, &calls, t->content_cap);
		root.kind = AGT_SPAN_LLM;
		root.llm = &sl;
		root.trace_type = "reasoning_step";
		snprintf(root.name, sizeof(root.name), "%s %s", llm.operation,
			 llm.req_model[0] ? llm.req_model : llm.resp_model);
		agt_agent_step(t->agent, proc, &root, &llm, req->pid);
	} else {
		const char *host = http.host ? http.host : "";
		size_t n = strlen(host) + strlen(http.path) + 1;
		char *where = malloc(n), *red, *full = malloc(strlen(host) + strlen(req->url) + 1);

		if (where)
			snprintf(where, n, "%s%s", host, http.path);
		if (full)
			sprintf(full, "%s%s", host, req->url);
		red = agt_emit_redact(&t->em, where ? where : "");
		root.kind = AGT_SPAN_HTTP;
		snprintf(root.name, sizeof(root.name), "%s %.140s", req->method, red ? red : "");
		/* Made while a tool ran: part of what that tool did. Otherwise HTTP of its own (a
		 * warm-up, telemetry, an update check): never a tool call. */
		root.trace_type = agt_agent_tool_at(t->agent, proc->pid, req->tid, req->start_ns,
						    &root, NULL, full ? full : "")
				      ? "tool_call"
				      : "http_call";
		free(red);
		free(where);
		free(full);
	}
	/* Children first: exporters that hold spans until their root (the tree) see the root
	 * last. A response cut short has no decision: its calls never completed. */
	if (is_llm && llm.ncalls && resp && !resp->incomplete) {
		size_t used;

		base(t, &dec, proc, req, resp);
		agt_emit_child_of(&t->em, &dec, &root);
		dec.kind = AGT_SPAN_DECISION;
		dec.http = &http;
		dec.llm = &sl;
		dec.trace_type = "decision";
		dec.start_ns = dec.end_ns; /* the choice is made when the response is complete */
		used = snprintf(dec.name, sizeof(dec.name), "decision");
		for (int i = 0; i < llm.ncalls && used < sizeof(dec.name); i++)
			used += snprintf(dec.name + used, sizeof(dec.name) - used, "%s%s",
					 i ? ", " : " ", llm.calls[i].name);
		agt_emit(&t->em, &dec);
	}
	if (failed && !resp->incomplete) {
		base(t, &err, proc, req, resp);
		agt_emit_child_of(&t->em, &err, &root);
		err.kind = AGT_SPAN_ERROR;
		err.http = &http;
		err.llm = is_llm ? &sl : NULL;
		err.trace_type = "error";
		err.status = AGT_STATUS_ERROR;
		err.start_ns = err.end_ns;
		snprintf(err.name, sizeof(err.name), "error %s",
			 is_llm && llm.error_type[0] ? llm.error_type : "http");
		agt_emit(&t->em, &err);
	}
	agt_emit(&t->em, &root);
	if (is_llm) {
		agt_agent_step_done(t->agent, &root, &llm);
		agt_llm_free(&llm);
	}
	free(calls);
	free(path);
	agt_http_msg_free(req);
	agt_http_msg_free(resp);
}

static void mcp_span(struct agt_trace *t, const struct agt_proc_info *proc,
		     const struct agt_mcp_call *c, const struct agt_span_http *http)
{
	struct agt_span s;

	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_TOOL;
	s.trace_type = "tool_call";
	s.proc = proc;
	s.pid = proc->pid;
	s.tid = c->tid;
	s.start_ns = c->start_ns;
	s.end_ns = c->end_ns > c->start_ns ? c->end_ns : c->start_ns;
	s.http = http;
	agt_emit_root(&t->em, &s);
	agt_agent_tool_at(t->agent, proc->pid, c->tid, c->start_ns, &s, c->name, c->arguments);
	snprintf(s.name, sizeof(s.name), "tools/call %.120s", c->name);
	s.tool.name = c->name;
	s.tool.id = c->id;
	s.tool.input = c->arguments;
	s.tool.output = c->answered ? c->result : NULL;
	s.tool.success = c->answered && !c->is_error;
	s.tool.mcp = 1;
	s.tool.mcp_session = c->session;
	s.status = !c->answered	 ? AGT_STATUS_UNFINISHED
		   : c->is_error ? AGT_STATUS_ERROR
				 : AGT_STATUS_OK;
	if (s.status == AGT_STATUS_ERROR)
		agt_agent_failure(t->agent, &s, "error tools/call",
				  "the MCP tool result is an error");
	agt_emit(&t->em, &s);
}

void agt_trace_mcp(struct agt_trace *t, const struct agt_proc_info *proc,
		   const struct agt_mcp_call *c)
{
	mcp_span(t, proc, c, NULL);
}

void agt_trace_meta_error(struct agt_trace *t, const struct agt_proc_info *proc, uint32_t pid,
			  uint32_t tid, uint64_t ts, const char *status)
{
	struct agt_span s;

	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_ERROR;
	s.trace_type = "error";
	s.status = AGT_STATUS_ERROR;
	s.proc = proc;
	s.pid = pid;
	s.tid = tid;
	s.start_ns = s.end_ns = ts;
	agt_emit_root(&t->em, &s);
	snprintf(s.name, sizeof(s.name), "error http %s", status);
	snprintf(s.message, sizeof(s.message),
		 "HTTP status %s in a session sampling left out: metadata only", status);
	agt_emit(&t->em, &s);
}

void agt_trace_exit_error(struct agt_trace *t, uint32_t pid, uint32_t tid, uint64_t ts,
			  uint32_t wait_status)
{
	struct agt_span s;

	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_ERROR;
	s.trace_type = "error";
	s.status = AGT_STATUS_ERROR;
	s.pid = pid;
	s.tid = tid;
	s.start_ns = s.end_ns = ts;
	s.has_exit = 1;
	s.exit_code = (wait_status >> 8) & 0xff;
	s.exit_signal = wait_status & 0x7f;
	agt_emit_root(&t->em, &s);
	snprintf(s.name, sizeof(s.name), "error exit %d",
		 s.exit_signal ? 128 + s.exit_signal : s.exit_code);
	snprintf(s.message, sizeof(s.message),
		 "process %u failed in a session sampling left out: metadata only", pid);
	agt_emit(&t->em, &s);
}
