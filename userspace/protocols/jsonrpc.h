/* Newline-delimited JSON-RPC 2.0 over local IPC (pipes, UNIX sockets): MCP over stdio, as a
 * protocol of the stream layer. tools/call requests the process writes, paired with the
 * responses it reads, become MCP tool calls. */
#ifndef AGT_JSONRPC_H
#define AGT_JSONRPC_H
#include <stddef.h>
#include <stdint.h>
#include "agtrace.h"
#include "protocols/mcp.h"


struct agt_proto;
extern const struct agt_proto agt_proto_jsonrpc;
#endif
