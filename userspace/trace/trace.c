/* The trace stage as a whole: built from an emitter, the nesting of function calls and the agent
 * model; the events every stage gets (a process gone, the end of the run); its drop counters;
 * and the state_change events of targets. */
#include "trace/trace.h"
#include "trace/agent.h"
#include "trace/files.h"
#include <errno.h>
#include "trace/nest.h"
#include <stdio.h>
#include <string.h>

int agt_trace_init(struct agt_trace *t, struct agt_sink *sink, agt_redact_fn redact,
		   void *redact_ctx, struct agt_proc_facts facts, unsigned max_depth,
		   unsigned max_threads, size_t msg_cap)
{
	memset(t, 0, sizeof(*t));
	agt_emitter_init(&t->em, sink, redact, redact_ctx);
	t->facts = facts;
	t->msg_cap = msg_cap;
	t->nest = agt_nest_new(max_depth, max_threads, &t->em);
	t->agent = agt_agent_new(&t->em, facts);
	return t->nest && t->agent ? 0 : -1;
}

void agt_trace_fini(struct agt_trace *t)
{
	agt_agent_free(t->agent);
	agt_nest_free(t->nest);
	t->agent = NULL;
	t->nest = NULL;
}

void agt_trace_state(struct agt_trace *t, const struct agt_proc_info *proc, uint64_t ts,
		     const char *what, const char *message, int has_exit, uint32_t wait_status)
{
	struct agt_span s;

	memset(&s, 0, sizeof(s));
	agt_emit_root(&t->em, &s);
	s.start_ns = s.end_ns = ts;
	s.pid = proc ? proc->pid : 0;
	s.proc = proc;
	s.kind = AGT_SPAN_STATE;
	s.trace_type = "state_change";
	if (proc)
		snprintf(s.name, sizeof(s.name), "%s %s", what, proc->comm);
	else
		snprintf(s.name, sizeof(s.name), "%s", what);
	snprintf(s.message, sizeof(s.message), "%s", message ? message : "");
	if (has_exit) {
		s.has_exit = 1;
		s.exit_code = (wait_status >> 8) & 0xff;
		s.exit_signal = wait_status & 0x7f;
		if (s.exit_code || s.exit_signal)
			s.status = AGT_STATUS_ERROR;
	}
	agt_emit(&t->em, &s);
}

void agt_trace_proc_gone(struct agt_trace *t, uint32_t pid, uint64_t ts)
{
	agt_agent_close(t->agent, pid, ts);
	agt_nest_process_exit(t->nest, pid, ts);
}

void agt_trace_proc_forget(struct agt_trace *t, const struct agt_proc_info *proc, uint64_t ts)
{
	agt_agent_close_proc(t->agent, proc, ts);
}

int agt_trace_files(struct agt_trace *t, const struct agt_files_cfg *cfg)
{
	return agt_agent_set_files(t->agent, cfg) ? -ENOMEM : 0;
}

void agt_trace_file(struct agt_trace *t, uint32_t pid, uint32_t tid, uint64_t ts,
		    const struct agt_file_call *fc)
{
	agt_agent_file(t->agent, pid, tid, ts, fc);
}

void agt_trace_settle(struct agt_trace *t)
{
	agt_agent_settle(t->agent);
}

void agt_trace_flush(struct agt_trace *t, uint64_t ts)
{
	agt_agent_close(t->agent, 0, ts);
	agt_nest_flush(t->nest, ts);
}

static void stage_gone(void *self, uint32_t pid, uint64_t ts)
{
	agt_trace_proc_gone(self, pid, ts);
}

static void stage_forget(void *self, const struct agt_proc_info *proc, uint64_t ts)
{
	agt_trace_proc_forget(self, proc, ts);
}

static void stage_flush(void *self, uint64_t ts)
{
	agt_trace_flush(self, ts);
}

static void stage_drops(const void *self, agt_drop_fn fn, void *ctx)
{
	const struct agt_trace *t = self;
	const struct agt_nest_stats *ns = agt_nest_stats(t->nest);
	const struct agt_agent_stats *as = agt_agent_stats(t->agent);

	fn(ctx, "conversations_evicted", as->convs_evicted, 1);
	fn(ctx, "conversations_idle_closed", as->convs_idle, 0);
	fn(ctx, "tool_events_over_cap", as->events_over_cap, 1);
	fn(ctx, "children_not_followed", as->children_dropped, 1);
	fn(ctx, "tool_calls_not_followed", as->calls_dropped, 1);
	fn(ctx, "file_changes_over_cap", agt_agent_file_stats(t->agent)->over_cap, 1);
	fn(ctx, "depth_exceeded", ns->depth_exceeded, 1);
	fn(ctx, "return_without_entry", ns->return_without_entry, 1);
	fn(ctx, "thread_table_full", ns->thread_table_full, 1);
}

const struct agt_stage_ops agt_trace_stage = {"trace", stage_gone, stage_forget, stage_flush,
					      stage_drops};
