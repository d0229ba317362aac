#include "trace/exchange.h"
#include "protocols/llm/llm.h"
#include "protocols/jsonrpc.h"
#include "trace/agent.h"
#include <stdio.h>
#include <string.h>

static void base(struct agt_pipeline *p, struct agt_span *s, const struct agt_proc *proc,
		 struct agt_http_msg *req, struct agt_http_msg *resp)
{
	memset(s, 0, sizeof(*s));
	s->proc = proc;
	s->pid = proc->pid;
	s->tid = req->tid;
	s->req = req;
	s->resp = resp;
	s->start_ns = req->start_ns;
	s->end_ns = resp ? resp->end_ns : req->end_ns;
	if (s->end_ns < s->start_ns)
		s->end_ns = s->start_ns;
	agt_nest_new_ids(p->nest, s);
}

static void child_of(struct agt_pipeline *p, struct agt_span *c, const struct agt_span *parent)
{
	memcpy(c->trace_id, parent->trace_id, sizeof(c->trace_id));
	c->parent_id = parent->span_id;
	c->span_id = agt_rng_next_id(p->nest);
	c->depth = parent->depth + 1;
	memcpy(c->workflow_id, parent->workflow_id, sizeof(c->workflow_id));
}

static void host_path(const struct agt_http_msg *req, char *out, size_t n)
{
	const char *host = agt_http_header(req, "Host");

	snprintf(out, n, "%s%.*s", host ? host : "", (int)strcspn(req->url, "?"), req->url);
}

void agt_exchange_emit(struct agt_pipeline *p, const struct agt_proc *proc,
		       struct agt_http_msg *req, struct agt_http_msg *resp)
{
	struct agt_span root, dec, err;
	struct agt_llm llm;
	int is_llm, failed;
	char where[200];

	if (resp)
		agt_http_decode_body(resp, 8 * p->msg_cap);
	agt_http_decode_body(req, 8 * p->msg_cap);
	is_llm = agt_llm_parse(req, resp ? resp : &(struct agt_http_msg){0}, &llm) == 0;
	base(p, &root, proc, req, resp);
	failed = resp && (resp->status >= 400 || (is_llm && llm.error_type[0]));
	root.status = !resp ? AGT_STATUS_UNFINISHED : failed ? AGT_STATUS_ERROR : AGT_STATUS_OK;
	if (is_llm) {
		root.kind = AGT_SPAN_LLM;
		root.llm = &llm;
		root.trace_type = "reasoning_step";
		snprintf(root.name, sizeof(root.name), "%s %s", llm.operation,
			 llm.req_model[0] ? llm.req_model : llm.resp_model);
		agt_agent_step(p->agent, proc, &root, &llm);
	} else {
		root.kind = AGT_SPAN_HTTP;
		root.trace_type = "tool_call";
		host_path(req, where, sizeof(where));
		snprintf(root.name, sizeof(root.name), "%s %.140s", req->method, where);
		/* Made while a tool ran: part of what that tool did. */
		agt_agent_tool_at(p->agent, proc->pid, req->tid, req->start_ns, &root);
	}
	/* Children first: exporters that hold spans until their root (the tree) see the root
	 * last, while everything they point at is still alive. */
	if (is_llm && llm.ncalls && resp) {
		size_t used;

		base(p, &dec, proc, req, resp);
		child_of(p, &dec, &root);
		dec.kind = AGT_SPAN_DECISION;
		dec.llm = &llm;
		dec.trace_type = "decision";
		dec.start_ns = dec.end_ns; /* the choice is made when the response is complete */
		used = snprintf(dec.name, sizeof(dec.name), "decision");
		for (int i = 0; i < llm.ncalls && used < sizeof(dec.name); i++)
			used += snprintf(dec.name + used, sizeof(dec.name) - used, "%s%s",
					 i ? ", " : " ", llm.calls[i].name);
		p->emitted++;
		p->sink->span(p->sink, &dec);
	}
	if (failed) {
		base(p, &err, proc, req, resp);
		child_of(p, &err, &root);
		err.kind = AGT_SPAN_ERROR;
		err.llm = is_llm ? &llm : NULL;
		err.trace_type = "error";
		err.status = AGT_STATUS_ERROR;
		err.start_ns = err.end_ns;
		snprintf(err.name, sizeof(err.name), "error %s",
			 is_llm && llm.error_type[0] ? llm.error_type : "http");
		p->emitted++;
		p->sink->span(p->sink, &err);
	}
	p->emitted++;
	p->sink->span(p->sink, &root);
	if (is_llm) {
		agt_agent_step_done(p->agent, &root, &llm);
		agt_llm_free(&llm);
	}
	agt_http_msg_free(req);
	agt_http_msg_free(resp);
}

void agt_mcp_emit(struct agt_pipeline *p, const struct agt_proc *proc, const struct agt_mcp_call *c)
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
	agt_nest_new_ids(p->nest, &s);
	agt_agent_tool_at(p->agent, proc->pid, c->tid, c->start_ns, &s);
	snprintf(s.name, sizeof(s.name), "tools/call %.120s", c->name);
	s.tool.name = c->name;
	s.tool.id = c->id;
	s.tool.input = c->arguments;
	s.tool.output = c->answered ? c->result : NULL;
	s.tool.success = c->answered && !c->is_error;
	s.tool.mcp = 1;
	s.status = !c->answered	 ? AGT_STATUS_UNFINISHED
		   : c->is_error ? AGT_STATUS_ERROR
				 : AGT_STATUS_OK;
	if (s.status == AGT_STATUS_ERROR)
		agt_agent_failure(p->agent, &s, "error tools/call",
				  "the MCP tool result is an error");
	p->emitted++;
	p->sink->span(p->sink, &s);
}

void agt_meta_error_emit(struct agt_pipeline *p, const struct agt_proc *proc,
			 const struct agt_data *e)
{
	struct agt_span s;
	char status[4] = {0};

	memcpy(status, e->data + 9, e->len >= 12 ? 3 : 0);
	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_ERROR;
	s.trace_type = "error";
	s.status = AGT_STATUS_ERROR;
	s.proc = proc;
	s.pid = e->h.pid;
	s.tid = e->h.tid;
	s.start_ns = s.end_ns = e->h.ts_ns;
	agt_nest_new_ids(p->nest, &s);
	snprintf(s.name, sizeof(s.name), "error http %s", status);
	snprintf(s.message, sizeof(s.message),
		 "HTTP status %s in a session sampling left out: metadata only", status);
	p->emitted++;
	p->sink->span(p->sink, &s);
}

void agt_exit_error_emit(struct agt_pipeline *p, uint32_t pid, uint32_t tid, uint64_t ts,
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
	agt_nest_new_ids(p->nest, &s);
	snprintf(s.name, sizeof(s.name), "error exit %d",
		 s.exit_signal ? 128 + s.exit_signal : s.exit_code);
	snprintf(s.message, sizeof(s.message),
		 "process %u failed in a session sampling left out: metadata only", pid);
	p->emitted++;
	p->sink->span(p->sink, &s);
}
