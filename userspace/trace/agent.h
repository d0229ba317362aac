/* The agent model: LLM exchanges become conversations (one trace each, recognised by continuity
 * (results of the calls it asked for, previous_response_id) and else by the opening of their
 * message history), tool calls become spans from the model's request for them to the request
 * that returns their result, and what the agent's processes did in that window (commands run,
 * HTTP and MCP calls, sub-agents) hangs below them. A conversation ends with a cot_process
 * span; a sub-agent or an agent handed over to with an invoke_agent one (agent.c). */
#ifndef AGT_AGENT_H
#define AGT_AGENT_H
#include "protocols/llm/llm.h"
#include "trace/trace.h"

struct agt_agent_stats {
	uint64_t conversations, tool_calls, commands;
	uint64_t convs_evicted, children_dropped; /* limits reached: closed early / not followed */
	uint64_t convs_idle;	  /* closed as unfinished after --idle-timeout without activity */
	uint64_t events_over_cap; /* runtime events past the per-tool-call cap: not recorded */
	uint64_t calls_dropped;	  /* tool calls past a conversation's open-call cap: not followed */
	uint64_t subagents, handoffs; /* conversations started from a tool call; agents handed to */
};

struct agt_agent;
struct agt_agent *agt_agent_new(struct agt_emitter *em, struct agt_proc_facts facts);
void agt_agent_free(struct agt_agent *a);
/* Before a reasoning step is emitted: give it its conversation (trace, parent, workflow id), and
 * emit the tool calls whose results its request carries. from_pid: the process that made the
 * call (proc's, or a followed descendant's: then that descendant is an agent process). */
void agt_agent_step(struct agt_agent *a, const struct agt_proc_info *proc, struct agt_span *step,
		    const struct agt_llm *l, uint32_t from_pid);
/* After the step and its children: remember the calls it asked for; a final answer ends the
 * conversation. */
void agt_agent_step_done(struct agt_agent *a, const struct agt_span *step, const struct agt_llm *l);
/* If a tool call of pid is open at ts, make s its child: what the agent did while the tool ran
 * (an HTTP or MCP call). With several open: the one whose call matches what it was asked (name:
 * an MCP tool's name, detail its arguments; name NULL: detail is an HTTP URL), then the one asked
 * for on thread tid, then the latest. 1 when it did. */
int agt_agent_tool_at(struct agt_agent *a, uint32_t pid, uint32_t tid, uint64_t ts,
		      struct agt_span *s, const char *name, const char *detail);
/* A python:audit event: recorded on the tool call open on that thread, if any. */
void agt_agent_audit(struct agt_agent *a, uint32_t pid, uint32_t tid, uint64_t ts, const char *ev);
/* Close conversations (and their tool calls) idle for longer than idle_ns, as unfinished. */
void agt_agent_expire(struct agt_agent *a, uint64_t now, uint64_t idle_ns);
/* Emit an error span (name, message) as a child of parent, at its end. */
void agt_agent_failure(struct agt_agent *a, const struct agt_span *parent, const char *name,
		       const char *msg);
/* Process activity of followed descendants. exit returns 1 when pid was one of them. */
void agt_agent_fork(struct agt_agent *a, uint32_t pid, uint32_t ppid, uint32_t ptid, uint64_t ts);
void agt_agent_exec(struct agt_agent *a, uint32_t pid, const char *filename, const char *argv,
		    uint32_t argv_len, uint64_t ts);
int agt_agent_exit(struct agt_agent *a, uint32_t pid, uint32_t wait_status, uint64_t ts);
/* A target (pid) or everything (0) ends: open conversations and tool calls are unfinished. */
/* The target a followed descendant belongs to (NULL when pid is none of them). */
const struct agt_proc_info *agt_agent_root_proc(struct agt_agent *a, uint32_t pid);
void agt_agent_close(struct agt_agent *a, uint32_t pid, uint64_t ts);
/* End the conversations attributed to proc (before proc is freed). */
void agt_agent_close_proc(struct agt_agent *a, const struct agt_proc_info *proc, uint64_t ts);
/* Conversations and tool calls open right now. */
void agt_agent_open(const struct agt_agent *a, unsigned *convs, unsigned *pending);
const struct agt_agent_stats *agt_agent_stats(const struct agt_agent *a);
/* File lineage (trace/files.h): on from now, with these settings; 0 or -1 (no memory). */
struct agt_files_cfg;
struct agt_file_call;
struct agt_files_stats;
int agt_agent_set_files(struct agt_agent *a, const struct agt_files_cfg *cfg);
/* A file operation of pid: under the tool call it belongs to, else the process's own. */
void agt_agent_file(struct agt_agent *a, uint32_t pid, uint32_t tid, uint64_t ts,
		    const struct agt_file_call *fc);
const struct agt_files_stats *agt_agent_file_stats(const struct agt_agent *a);
/* A batch of records is handled: the files it closed are read now. */
void agt_agent_settle(struct agt_agent *a);
#endif
