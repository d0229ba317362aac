/* Newline-delimited JSON-RPC 2.0 over local IPC (pipes, UNIX sockets): MCP over stdio. Requests
 * the process writes are paired with the responses it reads, by id; tools/call pairs become
 * MCP tool calls. */
#ifndef AGT_JSONRPC_H
#define AGT_JSONRPC_H
#include <stddef.h>
#include <stdint.h>
#include "agtrace.h"
#include "record/proc.h"

struct agt_mcp_call {
	char id[64];	 /* the JSON-RPC id, as text */
	char name[128];	 /* params.name */
	char *arguments; /* params.arguments as JSON text */
	char *result;	 /* result.content text blocks, or error.message */
	int is_error;	 /* result.isError, or a JSON-RPC error */
	int answered;
	uint64_t start_ns, end_ns;
	uint32_t tid;
};

enum agt_jdrop {
	AGT_JDROP_NOT_JSON = 0,	    /* lines on a JSON connection that did not parse */
	AGT_JDROP_LONG_LINE = 1,    /* lines over the cap: dropped */
	AGT_JDROP_UNMATCHED = 2,    /* responses to requests not seen (attached mid-call) */
	AGT_JDROP_PENDING_FULL = 3, /* requests dropped: too many waiting */
	AGT_JDROP_MAX = 4,
};
extern const char *const agt_jdrop_names[AGT_JDROP_MAX];

typedef void (*agt_mcp_cb)(void *ctx, const struct agt_proc_info *proc, const struct agt_mcp_call *c);

struct agt_jsonrpc;
struct agt_jsonrpc *agt_jsonrpc_new(size_t line_cap, agt_mcp_cb cb, void *ctx);
void agt_jsonrpc_feed(struct agt_jsonrpc *j, const struct agt_proc_info *proc, const struct agt_data *e);
/* A process (or all: 0) is gone: its unanswered calls are handed over unanswered. */
void agt_jsonrpc_close(struct agt_jsonrpc *j, uint32_t pid, uint64_t ts);
/* End everything attributed to proc (before proc is freed). */
void agt_jsonrpc_close_proc(struct agt_jsonrpc *j, const struct agt_proc_info *proc, uint64_t ts);
const uint64_t *agt_jsonrpc_drops(const struct agt_jsonrpc *j);
void agt_jsonrpc_free(struct agt_jsonrpc *j);
#endif
