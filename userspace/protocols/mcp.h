/* MCP tool calls, whatever carries them: JSON-RPC lines over stdio (jsonrpc.c) or streamable
 * HTTP (a POST answered with JSON or SSE). What a tools/call request and its answer say is read
 * here, once, for both. */
#ifndef AGT_MCP_H
#define AGT_MCP_H
#include <stddef.h>
#include <stdint.h>

struct agt_http_msg;
struct cJSON;

struct agt_mcp_call {
	char id[64];	 /* the JSON-RPC id, as text */
	char name[128];	 /* params.name */
	char *arguments; /* params.arguments as JSON text */
	char *result;	 /* result.content text blocks, or error.message */
	int is_error;	 /* result.isError, or a JSON-RPC error */
	int answered;
	uint64_t start_ns, end_ns;
	uint32_t pid; /* the process that made the call (a target or a followed descendant) */
	uint32_t tid;
	const char *session; /* MCP over HTTP: the Mcp-Session-Id; NULL otherwise */
};

/* A JSON-RPC id as text ("" when absent or neither string nor number). */
void agt_jsonrpc_id(const struct cJSON *id, char *out, size_t n);
/* A tools/call request: fills c's id, name and arguments (c zeroed first) and returns 1; 0 when
 * o is something else. */
int agt_mcp_request(const struct cJSON *o, struct agt_mcp_call *c);
/* The answer msg (a JSON-RPC response object) into c: answered, is_error, result. */
void agt_mcp_answer(const struct cJSON *msg, struct agt_mcp_call *c);
/* An exchange over streamable HTTP that is a tools/call: 1 with c filled (free with
 * agt_mcp_call_free), 0 otherwise. An HTTP error without a JSON-RPC answer is an error answer. */
int agt_mcp_from_http(const struct agt_http_msg *req, const struct agt_http_msg *resp,
		      struct agt_mcp_call *c);
void agt_mcp_call_free(struct agt_mcp_call *c);
#endif
