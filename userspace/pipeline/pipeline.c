#include "pipeline/pipeline.h"
#include <errno.h>
#include <string.h>

static void on_exchange(void *ctx, const struct agt_proc_info *proc, struct agt_http_msg *req,
			struct agt_http_msg *resp)
{
	agt_trace_exchange(ctx, proc, req, resp);
}

static void on_mcp_call(void *ctx, const struct agt_proc_info *proc, const struct agt_mcp_call *c)
{
	agt_trace_mcp(ctx, proc, c);
}

/* The trace stage asks about processes what the decoder's environment knows. */
static const struct agt_proc_info *target_fact(void *ctx, uint32_t pid)
{
	const struct agt_decoder_env *env = ctx;

	return env->target(env->ctx, pid);
}

int agt_pipeline_init(struct agt_pipeline *p, const struct agt_pipeline_config *c,
		      const struct agt_decoder_env *env, struct agt_sink *sink)
{
	struct agt_streams_out out = {on_exchange, on_mcp_call, &p->trace};
	struct agt_proc_facts facts = {target_fact, &p->dec.env};

	memset(p, 0, sizeof(*p));
	p->dec.env = *env;
	if (agt_trace_init(&p->trace, sink, c->redact, c->redact_ctx, facts, c->max_depth,
			   c->max_threads, c->msg_cap) ||
	    !(p->streams = agt_streams_new(c->msg_cap, c->max_conns ? c->max_conns : 4096,
					   &out))) {
		agt_pipeline_fini(p);
		return -ENOMEM;
	}
	p->trace.content_cap = c->content_cap;
	if (c->files && agt_trace_files(&p->trace, c->files)) {
		agt_pipeline_fini(p);
		return -ENOMEM;
	}
	p->dec.streams = p->streams;
	p->dec.trace = &p->trace;
	p->stages[p->nstages].ops = &agt_decoder_stage;
	p->stages[p->nstages++].self = &p->dec;
	p->stages[p->nstages].ops = &agt_streams_stage;
	p->stages[p->nstages++].self = p->streams;
	p->stages[p->nstages].ops = &agt_trace_stage;
	p->stages[p->nstages++].self = &p->trace;
	return 0;
}

void agt_pipeline_fini(struct agt_pipeline *p)
{
	agt_streams_free(p->streams);
	p->streams = NULL;
	agt_trace_fini(&p->trace);
	agt_decoder_fini(&p->dec);
	p->nstages = 0;
}

void agt_pipeline_proc_gone(struct agt_pipeline *p, uint32_t pid, uint64_t ts)
{
	for (int i = 0; i < p->nstages; i++)
		if (p->stages[i].ops->proc_gone)
			p->stages[i].ops->proc_gone(p->stages[i].self, pid, ts);
}

void agt_pipeline_proc_forget(struct agt_pipeline *p, const struct agt_proc_info *proc,
			      uint64_t ts)
{
	for (int i = 0; i < p->nstages; i++)
		if (p->stages[i].ops->proc_forget)
			p->stages[i].ops->proc_forget(p->stages[i].self, proc, ts);
}

void agt_pipeline_flush(struct agt_pipeline *p, uint64_t ts)
{
	for (int i = 0; i < p->nstages; i++)
		if (p->stages[i].ops->flush)
			p->stages[i].ops->flush(p->stages[i].self, ts);
}

void agt_pipeline_drops(const struct agt_pipeline *p, agt_drop_fn fn, void *ctx)
{
	for (int i = 0; i < p->nstages; i++)
		if (p->stages[i].ops->drops)
			p->stages[i].ops->drops(p->stages[i].self, fn, ctx);
}
