// Integration-test MCP server over streamable HTTP (HTTPS), with the official
// @modelcontextprotocol/sdk: one stateful session (Mcp-Session-Id), tools "add" (a + b) and
// "explode" (a result marked isError). Answers come as SSE streams ("sse", the SDK's default) or
// as JSON bodies ("json": enableJsonResponse).
// Usage: node mcp_http_server.mjs CERT KEY sse|json  -> prints "listening PORT"
import https from "node:https";
import fs from "node:fs";
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "node", "package.json"));
const { McpServer } = require("@modelcontextprotocol/sdk/server/mcp.js");
const { StreamableHTTPServerTransport } = require("@modelcontextprotocol/sdk/server/streamableHttp.js");
const { z } = require("zod");

const [cert, key, mode] = process.argv.slice(2);
const server = new McpServer({ name: "agtrace-http-test", version: "1.0.0" });
server.tool("add", { a: z.number(), b: z.number() }, async ({ a, b }) => ({
  content: [{ type: "text", text: String(a + b) }],
}));
server.tool("explode", { why: z.string() }, async ({ why }) => ({
  content: [{ type: "text", text: `failed: ${why}` }],
  isError: true,
}));
const transport = new StreamableHTTPServerTransport({
  sessionIdGenerator: () => randomUUID(),
  enableJsonResponse: mode === "json",
});
await server.connect(transport);
const httpd = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, async (req, res) => {
  let body = "";
  for await (const chunk of req) body += chunk;
  await transport.handleRequest(req, res, body ? JSON.parse(body) : undefined);
});
httpd.listen(0, "127.0.0.1", () => console.log(`listening ${httpd.address().port}`));
