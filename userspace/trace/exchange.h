/* HTTP exchanges become spans: an LLM API call is a reasoning_step, with a decision child
 * when the model chose tools and an error child when the API said no; anything else is a
 * plain HTTP span. */
#ifndef AGT_EXCHANGE_H
#define AGT_EXCHANGE_H
#include "tracer/pipeline.h"

/* Takes ownership of req and resp (resp may be NULL: the response never came). */
void agt_exchange_emit(struct agt_pipeline *p, const struct agt_proc *proc,
		       struct agt_http_msg *req, struct agt_http_msg *resp);
/* An MCP tools/call (JSON-RPC over stdio) becomes a tool_call span, below the tool call that
 * was running when it was made, if any. */
/* An HTTP error status line from an unsampled session: an error span, metadata only. */
void agt_meta_error_emit(struct agt_pipeline *p, const struct agt_proc *proc,
			 const struct agt_data *e);
/* A followed process whose start sampling left out exited with a failure: an error span. */
void agt_exit_error_emit(struct agt_pipeline *p, uint32_t pid, uint32_t tid, uint64_t ts,
			 uint32_t wait_status);
struct agt_mcp_call;
void agt_mcp_emit(struct agt_pipeline *p, const struct agt_proc *proc,
		  const struct agt_mcp_call *c);
#endif
