// Integration-test target for runtimes whose TLS is linked in and stripped (Bun: BoringSSL;
// Deno: rustls over aws-lc-rs; `bun build --compile` executables): an agent that calls the
// test server with the runtime's own fetch. It prints "ready PID", then answers one line per
// command on stdin:
//   openai plain|stream   a chat completion offering two tools (streamed: SSE)
//   openai long           the plain one with a user message of 40,000 bytes (a body sealed
//                         into several TLS records)
//   anthropic plain       a message offering two tools
//   close COMMAND         COMMAND, asking the server to close the connection after its answer
//                         (X-Close: tests/servers/llm_server.py)
//   quit
// A server that says which protocol a request came over and how many body bytes it got
// (tests/servers/goh2: X-Proto, X-Request-Bytes) has them added to the answer:
// "... proto HTTP/2.0 bytes 40321".
// Usage: bun fetch_agent.js PORT [TOKEN] | deno run -A fetch_agent.js PORT [TOKEN] (the runtime must trust the
// test server's CA: NODE_EXTRA_CA_CERTS for Bun, DENO_CERT for Deno).
import process from "node:process";
import { createInterface } from "node:readline";

const base = `https://localhost:${process.argv[2]}`; // argv[3] and on: ignored (a test token)
const tools = [
  { type: "function", function: { name: "get_weather", parameters: {} } },
  { type: "function", function: { name: "search", parameters: {} } },
];

let extra = {}; // the headers of a "close" command

async function post(path, body, headers) {
  const res = await fetch(base + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers, ...extra },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const proto = res.headers.get("x-proto");
  return [res.status, text, proto ? ` proto ${proto} bytes ${res.headers.get("x-request-bytes")}` : ""];
}

async function run(cmd) {
  extra = cmd.startsWith("close ") ? { "x-close": "1" } : {};
  cmd = cmd.replace(/^close /, "");
  if (cmd === "openai plain" || cmd === "openai stream" || cmd === "openai long") {
    const stream = cmd === "openai stream";
    const content = cmd === "openai long" ? "x".repeat(40000) : "weather in Paris?";
    const [status, text, seen] = await post(
      "/v1/chat/completions",
      { model: "gpt-4o", stream, ...(stream ? { stream_options: { include_usage: true } } : {}), tools,
        messages: [{ role: "user", content }] },
      { authorization: "Bearer sk-fetch-SECRET-0123456789abcdef" },
    );
    if (stream) return `openai ${status} chunks ${text.split("\n").filter((l) => l.startsWith("data:")).length}${seen}`;
    return `openai ${status} ${JSON.parse(text).choices[0].message.tool_calls[0].function.name}${seen}`;
  }
  if (cmd === "anthropic plain") {
    const [status, text, seen] = await post(
      "/v1/messages",
      {
        model: "claude-sonnet-4-5", max_tokens: 100,
        tools: [{ name: "get_weather", input_schema: { type: "object" } },
                { name: "get_time", input_schema: { type: "object" } }],
        messages: [{ role: "user", content: "weather in Paris?" }],
      },
      { "x-api-key": "sk-ant-fetch-SECRET-0123456789", "anthropic-version": "2023-06-01" },
    );
    return `anthropic ${status} ${JSON.parse(text).content.find((b) => b.type === "tool_use").name}${seen}`;
  }
  return `unknown command ${cmd}`;
}

const rl = createInterface({ input: process.stdin });
console.log(`ready ${process.pid}`);
for await (const line of rl) {
  if (line === "quit") break;
  try {
    console.log(await run(line.trim()));
  } catch (e) {
    console.log(`error ${e}`);
  }
}
process.exit(0);
