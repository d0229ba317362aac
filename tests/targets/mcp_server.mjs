// Integration-test MCP server over stdio, with the official @modelcontextprotocol/sdk:
// tool "add" (a + b) and tool "explode" (a result marked isError).
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "node", "package.json"));
const { McpServer } = require("@modelcontextprotocol/sdk/server/mcp.js");
const { StdioServerTransport } = require("@modelcontextprotocol/sdk/server/stdio.js");
const { z } = require("zod");

const server = new McpServer({ name: "agtrace-test", version: "1.0.0" });
server.tool("add", { a: z.number(), b: z.number() }, async ({ a, b }) => ({
  content: [{ type: "text", text: String(a + b) }],
}));
server.tool("explode", { why: z.string() }, async ({ why }) => ({
  content: [{ type: "text", text: `failed: ${why}` }],
  isError: true,
}));
await server.connect(new StdioServerTransport());
