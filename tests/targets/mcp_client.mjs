// Integration-test MCP client with the official @modelcontextprotocol/sdk: it starts
// mcp_server.mjs as a child process over stdio when told to, then calls tools. Commands:
//   start            spawn the server and initialise the session
//   call NAME JSON   tools/call NAME with JSON arguments; prints the result text
//   quit
import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "node", "package.json"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");

let client;
async function run(line) {
  const [cmd, name, ...rest] = line.split(" ");
  if (cmd === "start") {
    client = new Client({ name: "agtrace-test-client", version: "1.0.0" });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [path.join(here, "mcp_server.mjs")] }));
    const tools = await client.listTools();
    return `started ${tools.tools.map((t) => t.name).join(",")}`;
  }
  if (cmd === "call") {
    const r = await client.callTool({ name, arguments: JSON.parse(rest.join(" ")) });
    return `result ${r.isError ? "error" : "ok"} ${r.content[0].text}`;
  }
  if (cmd === "quit") {
    await client?.close();
    process.exit(0);
  }
  return `unknown ${cmd}`;
}

console.log(`ready ${process.pid}`);
const rl = createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on("line", (line) => {
  chain = chain.then(() => run(line.trim())).then((out) => console.log(out), (e) => console.log(`error ${e.message}`));
});
rl.on("close", () => { chain = chain.then(() => run("quit")); });
