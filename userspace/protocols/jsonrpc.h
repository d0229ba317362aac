/* Newline-delimited JSON-RPC 2.0 over local IPC (pipes, UNIX sockets): MCP over stdio, as a
 * protocol of the stream layer. tools/call requests the process writes, paired with the
 * responses it reads, become MCP tool calls. */
#ifndef AGT_JSONRPC_H
#define AGT_JSONRPC_H
#include <stddef.h>
#include <stdint.h>
#include "agtrace.h"

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

struct agt_proto;
extern const struct agt_proto agt_proto_jsonrpc;
#endif
