// Integration-test target for Node runtime metrics (run with --expose-gc): collections and
// event-loop work it is told to do, over stdin.
//   gc N       N full collections (global.gc(): V8's mark-sweep-compact)
//   minor N    N young-generation collections (gc({type: "minor"}): scavenges)
//   busy MS    keep the event loop busy for MS milliseconds (no poll meanwhile)
//   idle MS    let it wait MS milliseconds in its poll
import readline from "node:readline";

console.log(`ready ${process.pid}`);
const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const [cmd, arg] = line.trim().split(/\s+/);
  const n = Number(arg || 0);
  if (cmd === "gc") {
    for (let i = 0; i < n; i++) globalThis.gc();
    console.log("collected", n);
  } else if (cmd === "minor") {
    for (let i = 0; i < n; i++) globalThis.gc({ type: "minor" });
    console.log("scavenged", n);
  } else if (cmd === "busy") {
    const end = Date.now() + n;
    while (Date.now() < end);
    console.log("busy", n);
  } else if (cmd === "idle") {
    await new Promise((r) => setTimeout(r, n));
    console.log("idle", n);
  } else if (cmd === "quit") {
    break;
  }
}
process.exit(0);
