"""Integration-test target: an agent loop over HTTPS (Python's stdlib), whose tool runs a shell
command. Usage: agent_loop.py PORT CAFILE; then one command per stdin line:
    openai NAME SHELL-COMMAND     one conversation (user message mentions NAME), tool runs the command
    anthropic NAME SHELL-COMMAND  the same over the Messages API; a failing command is reported
                                  back as a tool_result with is_error
    interleave                    two conversations (A, B) on two threads, steps interleaved
    lookup NAME                   one conversation whose tool makes its own HTTPS call
    abandon NAME                  asks the model, gets a tool call, and never answers it
    quit"""
import http.client
import json
import os
import ssl
import subprocess
import sys
import threading

port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def post(path, body):
    c = http.client.HTTPSConnection("localhost", port, context=ctx)
    c.request("POST", path, body=json.dumps(body),
              headers={"Content-Type": "application/json", "x-api-key": "sk-ant-loop-SECRET-000"})
    r = json.loads(c.getresponse().read())
    c.close()
    return r


def lookup_tool(name):
    return json.dumps(post(f"/internal/lookup?city={name}", {"city": name}))


def run_tool(cmd):
    p = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True)
    return p.returncode, p.stdout.strip()


def openai_conv(name, cmd, gate=None):
    msgs = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": f"Weather for {name}?"}]
    steps = 0
    while True:
        msg = post("/v1/chat/completions", {"model": "gpt-4o", "messages": msgs, "tools": TOOLS,
                                            "temperature": 0.2})["choices"][0]["message"]
        steps += 1
        msgs.append(msg)
        if gate:
            gate.wait()
        if not msg.get("tool_calls"):
            return steps
        for call in msg["tool_calls"]:
            if cmd is None:
                msgs.append({"role": "tool", "tool_call_id": call["id"], "content": lookup_tool(name)})
                continue
            code, out = run_tool(cmd)
            msgs.append({"role": "tool", "tool_call_id": call["id"],
                         "content": json.dumps({"for": name, "exit": code, "out": out})})


def anthropic_conv(name, cmd):
    msgs = [{"role": "user", "content": f"Weather for {name}?"}]
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    while True:
        m = post("/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 200,
                                  "system": "You are terse.", "messages": msgs, "tools": tools})
        msgs.append({"role": "assistant", "content": m["content"]})
        uses = [b for b in m["content"] if b["type"] == "tool_use"]
        if not uses:
            return m["content"][0]["text"]
        results = []
        for u in uses:
            code, out = run_tool(cmd)
            results.append({"type": "tool_result", "tool_use_id": u["id"],
                            "content": f"exit {code}: {out}", "is_error": code != 0})
        msgs.append({"role": "user", "content": results})


print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    parts = line.rstrip("\n").split(" ", 2)
    if parts[0] == "quit":
        break
    if parts[0] == "openai":
        print("steps", openai_conv(parts[1], parts[2]), flush=True)
    elif parts[0] == "anthropic":
        print("answer", anthropic_conv(parts[1], parts[2]), flush=True)
    elif parts[0] == "lookup":
        print("steps", openai_conv(parts[1], None), flush=True)
    elif parts[0] == "abandon":
        post("/v1/chat/completions", {"model": "gpt-4o", "tools": TOOLS, "messages": [
            {"role": "user", "content": f"Weather for {parts[1]}?"}]})
        print("abandoned", flush=True)
    elif parts[0] == "interleave":
        gate = threading.Barrier(2)
        ts = [threading.Thread(target=openai_conv, args=(n, f"echo {n}", gate)) for n in "AB"]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        print("interleaved", flush=True)
