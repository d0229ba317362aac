// Integration-test target: a multi-agent workflow with the official @openai/agents SDK over the
// Responses API (the OpenAI client from tests/node, TLS through node's OpenSSL). An orchestrator
// agent asks a weather expert agent used as a tool (asTool: a nested run), whose function tool
// runs a shell command; then it hands off to a reporter agent, whose answer is the final one.
// Commands (one per stdin line):
//   run [stream]   the workflow (streamed Responses when "stream"); prints "final OUTPUT"
//   quit
// Usage: node agents_sdk.mjs PORT  (NODE_EXTRA_CA_CERTS must trust the test server)
import { createInterface } from "node:readline";
import { execSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "node", "package.json"));
const OpenAI = require("openai");
const agents = await import(require.resolve("@openai/agents"));
const { Agent, run, tool, setDefaultOpenAIClient, setOpenAIAPI, setTracingDisabled } = agents;

const client = new OpenAI({ apiKey: "sk-agents-SECRET-0123456789abcdef", baseURL: `https://localhost:${process.argv[2]}/v1`, maxRetries: 0 });
setDefaultOpenAIClient(client);
setOpenAIAPI("responses");
setTracingDisabled(true);

const getWeather = tool({
  name: "get_weather",
  description: "The weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
  strict: true,
  execute: async ({ city }) => execSync(`echo sunny-in-${city}`).toString().trim(),
});
const expert = new Agent({ name: "Weather expert", instructions: "You are the weather expert.", model: "gpt-4.1", tools: [getWeather] });
const reporter = new Agent({ name: "Reporter", instructions: "You write the report.", model: "gpt-4.1" });
const orchestrator = new Agent({
  name: "Orchestrator",
  instructions: "You orchestrate: ask the expert, then hand off to the reporter.",
  model: "gpt-4.1",
  tools: [expert.asTool({ toolName: "ask_weather_expert", toolDescription: "Ask the weather expert" })],
  handoffs: [reporter],
});

async function runCmd(line) {
  const [cmd, mode] = line.split(" ");
  if (cmd !== "run") return `unknown ${cmd}`;
  if (mode === "stream") {
    const r = await run(orchestrator, "Weather in Paris, reported?", { stream: true });
    for await (const _ of r.toStream());
    await r.completed;
    return `final ${r.finalOutput}`;
  }
  const r = await run(orchestrator, "Weather in Paris, reported?");
  return `final ${r.finalOutput}`;
}

console.log(`ready ${process.pid}`);
const rl = createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on("line", (line) => {
  const l = line.trim();
  if (l === "quit") {
    chain.then(() => process.exit(0));
    return;
  }
  chain = chain.then(() => runCmd(l)).then((o) => console.log(o), (e) => console.log(`error ${e.constructor.name} ${e.message}`));
});
rl.on("close", () => chain.then(() => process.exit(0)));
