// Integration-test target: an agent in Node using the official openai, @anthropic-ai/sdk,
// @google/genai and ollama packages (TLS through the OpenSSL linked into the node binary). One command per
// stdin line:
//   openai plain|stream   a chat completion offering two tools
//   anthropic plain|stream   a message offering two tools
//   openai error / anthropic error   a request for a model the server does not have (its error)
//   openai responses plain|stream    a Responses API call offering a tool
//   openai loop           a tool-calling loop: the tool runs a shell command, its result goes back
//   anthropic loop        the same with streamed tool use (input_json_delta) and tool_result
//   gemini loop MODEL [stream|plain] [studio|vertex] [v1beta] [assign]
//                         the same through Gemini's generateContent (plain) or
//                         streamGenerateContent (stream, the default), on AI Studio's paths (v1,
//                         or v1beta) or Vertex AI's; with assign, calls that come without an id
//                         get one from the agent (in its history and in the functionResponse), as
//                         agent frameworks do
//   ollama plain|stream   an Ollama /api/chat (the official ollama package) offering get_weather
//   mcp loop URL          a chat loop (scripted answers: X-Reply) whose model asks, at once, for
//                         mcp__math__add (run as an MCP tools/call over streamable HTTP, with the
//                         official SDK's client, to the server at URL) and shell (its command run
//                         by /bin/sh); both results go back, then the model answers
//   quit
// Usage: node node_agent.mjs PORT  (NODE_EXTRA_CA_CERTS must trust the test server)
import { createInterface } from "node:readline";
import { execSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "node", "package.json"));
const OpenAI = require("openai");
const Anthropic = require("@anthropic-ai/sdk");
const { GoogleGenAI } = require("@google/genai");
const { OAuth2Client } = require("google-auth-library");

const base = `https://localhost:${process.argv[2]}`;
const openai = new OpenAI({ apiKey: "sk-node-SECRET-0123456789abcdef", baseURL: `${base}/v1`, maxRetries: 0 });
const anthropic = new Anthropic({ apiKey: "sk-ant-node-SECRET-0123456789", baseURL: base, maxRetries: 0 });
const weather = { name: "get_weather", description: "weather", parameters: { type: "object", properties: {} } };
// Gemini: the API key goes in x-goog-api-key (the SDK's default API version is v1; v1beta is
// asked for by the command). Vertex AI takes an OAuth access token: a fixed one here (no Google
// credentials or network involved), through google-auth-library's client.
const geminiKey = "AIzaSy-node-SECRET-0123456789abcdefghijklmno";
const gemini = new GoogleGenAI({ apiKey: geminiKey, httpOptions: { baseUrl: base } });
const geminiBeta = new GoogleGenAI({ apiKey: geminiKey, apiVersion: "v1beta", httpOptions: { baseUrl: base } });
const vertex = new GoogleGenAI({
  vertexai: true,
  project: "agtrace-test",
  location: "us-central1",
  httpOptions: { baseUrl: base },
  googleAuthOptions: {
    authClient: new OAuth2Client({ credentials: { access_token: "ya29.node-SECRET-0123456789", expiry_date: Date.now() + 3600e3 } }),
  },
});
const geminiFlags = ["stream", "plain", "studio", "vertex", "assign", "v1beta"];

async function geminiLoop(words) {
  const model = words.find((w) => !geminiFlags.includes(w)) ?? "gemini-2.5-flash";
  const stream = !words.includes("plain");
  const ai = words.includes("vertex") ? vertex : words.includes("v1beta") ? geminiBeta : gemini;
  const assign = words.includes("assign");
  const contents = [{ role: "user", parts: [{ text: "Weather in Paris?" }] }];
  const config = {
    systemInstruction: "Be brief.",
    tools: [{ functionDeclarations: [{ name: "get_weather", description: "weather", parametersJsonSchema: { type: "object", properties: { city: { type: "string" } } } }] }],
  };
  for (let steps = 1; ; steps++) {
    let parts = [];
    if (stream) {
      for await (const chunk of await ai.models.generateContentStream({ model, contents, config }))
        parts.push(...(chunk.candidates?.[0]?.content?.parts ?? []));
    } else {
      const r = await ai.models.generateContent({ model, contents, config });
      parts = r.candidates[0].content.parts;
    }
    contents.push({ role: "model", parts });
    const calls = parts.filter((p) => p.functionCall).map((p) => p.functionCall);
    if (!calls.length) return `gemini loop ${steps} ${parts.filter((p) => p.text && !p.thought).map((p) => p.text).join("")}`;
    calls.forEach((c, i) => {
      if (!c.id && assign) c.id = `agent-call-${steps}-${i}`;
    });
    contents.push({
      role: "user",
      parts: calls.map((c) => ({
        functionResponse: { ...(c.id ? { id: c.id } : {}), name: c.name, response: { output: execSync("echo node-tool-gemini").toString().trim() } },
      })),
    });
  }
}

async function openaiLoop() {
  const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Weather in Paris?" }];
  const tools = [{ type: "function", function: weather }];
  for (let steps = 1; ; steps++) {
    const r = await openai.chat.completions.create({ model: "gpt-4o", messages, tools });
    const msg = r.choices[0].message;
    messages.push(msg);
    if (!msg.tool_calls) return `openai loop ${steps} ${msg.content}`;
    for (const call of msg.tool_calls) {
      const out = execSync("echo node-tool-openai").toString().trim();
      messages.push({ role: "tool", tool_call_id: call.id, content: out });
    }
  }
}

async function anthropicLoop() {
  const messages = [{ role: "user", content: "Weather?" }];
  const tools = [{ name: "get_weather", input_schema: { type: "object" } }];
  for (let steps = 1; ; steps++) {
    const stream = anthropic.messages.stream({ model: "claude-sonnet-4-5", max_tokens: 256, system: "Be brief.", messages, tools });
    const m = await stream.finalMessage();
    messages.push({ role: "assistant", content: m.content });
    const uses = m.content.filter((b) => b.type === "tool_use");
    if (!uses.length) return `anthropic loop ${steps} ${m.stop_reason}`;
    messages.push({
      role: "user",
      content: uses.map((u) => ({ type: "tool_result", tool_use_id: u.id, content: execSync("echo node-tool-anthropic").toString().trim() })),
    });
  }
}

let mcp;
async function mcpLoop(url) {
  const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
  const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");
  if (!mcp) {
    mcp = new Client({ name: "agtrace-node-agent", version: "1.0.0" });
    await mcp.connect(new StreamableHTTPClientTransport(new URL(url)));
  }
  const messages = [{ role: "system", content: "You add." }, { role: "user", content: "2 + 3, and a shell command?" }];
  const tools = [{ type: "function", function: { name: "mcp__math__add", parameters: { type: "object" } } }, { type: "function", function: { name: "shell", parameters: { type: "object" } } }];
  const replies = [
    { calls: [{ id: "call_add", name: "mcp__math__add", args: { a: 2, b: 3 } }, { id: "call_shell", name: "shell", args: { command: "echo node-tool-shell" } }], usage: [30, 9] },
    { text: "5, and node-tool-shell.", usage: [50, 4] },
  ];
  for (let steps = 1; ; steps++) {
    const r = await openai.chat.completions.create({ model: "gpt-4o", messages, tools }, { headers: { "X-Reply": JSON.stringify(replies[steps - 1]) } });
    const msg = r.choices[0].message;
    messages.push(msg);
    if (!msg.tool_calls) return `mcp loop ${steps} ${msg.content}`;
    const outs = await Promise.all(msg.tool_calls.map(async (call) => {
      if (call.function.name.startsWith("mcp__math__")) {
        const res = await mcp.callTool({ name: "add", arguments: JSON.parse(call.function.arguments) });
        return res.content[0].text;
      }
      return execSync(JSON.parse(call.function.arguments).command).toString().trim();
    }));
    msg.tool_calls.forEach((call, i) => messages.push({ role: "tool", tool_call_id: call.id, content: outs[i] }));
  }
}

async function run(cmd) {
  const [api, mode, ...rest] = cmd.split(" ");
  const stream = mode === "stream";
  if (api === "mcp" && mode === "loop") return mcpLoop(rest[0]);
  if (api === "ollama") {
    const { Ollama } = require("ollama");
    const ollama = new Ollama({ host: base });
    const req = { model: "llama3.2", messages: [{ role: "user", content: "Weather in Paris?" }], tools: [{ type: "function", function: weather }] };
    if (!stream) {
      const r = await ollama.chat({ ...req, stream: false });
      return `ollama ${r.message.tool_calls[0].function.name}`;
    }
    let n = 0;
    for await (const _ of await ollama.chat({ ...req, stream: true })) n++;
    return `ollama chunks ${n}`;
  }
  if (mode === "error") {
    // The server answers bad-model with its API's error: the SDK throws it.
    if (api === "openai")
      await openai.chat.completions.create({ model: "bad-model", messages: [{ role: "user", content: "hi" }] });
    else
      await anthropic.messages.create({ model: "bad-model", max_tokens: 5, messages: [{ role: "user", content: "hi" }] });
    return `${api} no error`;
  }
  if (api === "openai" && mode === "responses") {
    const req = { model: "gpt-4.1", input: "find agtrace", tools: [{ type: "function", name: "search", parameters: { type: "object" } }] };
    if (rest[0] !== "stream") {
      const r = await openai.responses.create(req);
      return `responses ${r.output[0].name}`;
    }
    let n = 0;
    for await (const _ of await openai.responses.create({ ...req, stream: true })) n++;
    return `responses events ${n}`;
  }
  if (mode === "loop" && api === "gemini") return geminiLoop(rest);
  if (mode === "loop") return api === "openai" ? openaiLoop() : anthropicLoop();
  if (api === "openai") {
    const req = {
      model: "gpt-4o",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [{ type: "function", function: weather }, { type: "function", function: { name: "search", parameters: { type: "object" } } }],
    };
    if (!stream) {
      const r = await openai.chat.completions.create(req);
      return `openai ${r.choices[0].message.tool_calls[0].function.name}`;
    }
    const s = await openai.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
    let n = 0;
    for await (const _ of s) n++;
    return `openai chunks ${n}`;
  }
  if (api === "anthropic") {
    const req = {
      model: "claude-sonnet-4-5",
      max_tokens: 256,
      messages: [{ role: "user", content: "Weather?" }],
      tools: [{ name: "get_weather", input_schema: { type: "object" } }, { name: "get_time", input_schema: { type: "object" } }],
    };
    if (!stream) {
      const r = await anthropic.messages.create(req);
      return `anthropic ${r.stop_reason}`;
    }
    const s = await anthropic.messages.create({ ...req, stream: true });
    let n = 0;
    for await (const _ of s) n++;
    return `anthropic events ${n}`;
  }
  return `unknown ${cmd}`;
}

console.log(`ready ${process.pid}`);
const rl = createInterface({ input: process.stdin });
const queue = [];
let busy = false;
rl.on("line", (line) => {
  queue.push(line.trim());
  pump();
});
rl.on("close", () => queue.push("quit") && pump());
async function pump() {
  if (busy) return;
  busy = true;
  while (queue.length) {
    const cmd = queue.shift();
    if (cmd === "quit") process.exit(0);
    try {
      console.log(await run(cmd));
    } catch (e) {
      console.log(`error ${e.constructor.name} ${e.message}`);
    }
  }
  busy = false;
}
