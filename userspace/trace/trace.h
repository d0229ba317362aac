/* The trace stage: what the protocols and the process events become. HTTP exchanges become
 * reasoning steps, decisions, errors or plain HTTP spans (exchange.c); function entries and
 * returns become nested spans (nest.c); conversations, tool calls and the commands tools run
 * become one tree per conversation (agent.c). Everything leaves through one emitter. The stage
 * learns about processes only through the facts it is given: it never calls back into the
 * stages before it. */
#ifndef AGT_TRACE_H
#define AGT_TRACE_H
#include <stddef.h>
#include <stdint.h>
#include "protocols/http.h"
#include "record/span.h"
#include "record/stage.h"
#include "trace/emit.h"

struct agt_mcp_call;
struct agt_nest;
struct agt_agent;

/* What the trace stage may ask about processes. */
struct agt_proc_facts {
	/* The target with this PID, or NULL when it is none (a followed descendant is not). */
	const struct agt_proc_info *(*target)(void *ctx, uint32_t pid);
	void *ctx;
};

struct agt_trace {
	struct agt_emitter em;
	struct agt_nest *nest;	 /* probed function calls, nested by thread */
	struct agt_agent *agent; /* conversations, tool calls, commands */
	struct agt_proc_facts facts;
	size_t msg_cap; /* bytes of one HTTP message kept (bodies decode to 8x that at most) */
	size_t content_cap; /* --capture-content: what LLM calls said, each capped; 0: off */
};

int agt_trace_init(struct agt_trace *t, struct agt_sink *sink, agt_redact_fn redact,
		   void *redact_ctx, struct agt_proc_facts facts, unsigned max_depth,
		   unsigned max_threads, size_t msg_cap);
void agt_trace_fini(struct agt_trace *t);

/* An HTTP exchange of proc: takes ownership of req and resp (resp NULL: never answered). */
void agt_trace_exchange(struct agt_trace *t, const struct agt_proc_info *proc,
			struct agt_http_msg *req, struct agt_http_msg *resp);
/* An MCP tools/call over local IPC: a tool_call span, below the agent's tool call running then. */
void agt_trace_mcp(struct agt_trace *t, const struct agt_proc_info *proc,
		   const struct agt_mcp_call *c);
/* An HTTP error status line from a session sampling left out: an error span, metadata only. */
void agt_trace_meta_error(struct agt_trace *t, const struct agt_proc_info *proc, uint32_t pid,
			  uint32_t tid, uint64_t ts, const char *status);
/* A followed process whose start sampling left out exited with a failure: an error span. */
void agt_trace_exit_error(struct agt_trace *t, uint32_t pid, uint32_t tid, uint64_t ts,
			  uint32_t wait_status);
/* A state_change event of a target (attach, detach, exit, sampling); proc NULL: of agtrace
 * itself (an audit anchor), named what alone, pid 0. */
void agt_trace_state(struct agt_trace *t, const struct agt_proc_info *proc, uint64_t ts,
		     const char *what, const char *message, int has_exit, uint32_t wait_status);
/* A target is gone: its conversations, tool calls and open function calls end (unfinished). */
void agt_trace_proc_gone(struct agt_trace *t, uint32_t pid, uint64_t ts);
/* Before a target's record is freed: nothing may point at it afterwards. */
void agt_trace_proc_forget(struct agt_trace *t, const struct agt_proc_info *proc, uint64_t ts);
/* File lineage (trace/files.h) on, with these settings; 0 or -ENOMEM. */
struct agt_files_cfg;
struct agt_file_call;
int agt_trace_files(struct agt_trace *t, const struct agt_files_cfg *cfg);
/* What process pid (a target or a followed descendant) did to a file. */
void agt_trace_file(struct agt_trace *t, uint32_t pid, uint32_t tid, uint64_t ts,
		    const struct agt_file_call *fc);
/* A batch of ring buffer records is handled (what must be read of files now is). */
void agt_trace_settle(struct agt_trace *t);
/* End of run: everything still open ends, unfinished. */
void agt_trace_flush(struct agt_trace *t, uint64_t ts);
/* The trace stage as a stage (self: struct agt_trace *). */
extern const struct agt_stage_ops agt_trace_stage;
#endif
