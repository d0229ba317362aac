// A tiny agent-like script: one HTTPS POST with fetch, the response printed. The TLS locator's
// test compiles it with `bun build --compile` (what agents ship) and probes the result.
const url = process.argv[2] || "https://127.0.0.1:8443/v1/messages";
const res = await fetch(url, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ model: "test", messages: [{ role: "user", content: "hello" }] }),
});
console.log(res.status, await res.text());
