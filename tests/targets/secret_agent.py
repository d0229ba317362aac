"""Integration-test target: an agent whose conversation is full of secrets (the test picks them
from tests/fixtures/secrets/corpus.json). "The model" (tests/servers/llm_server.py, scripted
with X-Reply) answers with them in its text and its tool calls' arguments; each tool runs the
commands of its step (argv as given, through a folder of stand-in programs, and shell command
lines), fetches its URLs over plain HTTP, and returns a result full of them.
Usage: secret_agent.py PORT CAFILE PLAN PLAIN_PORT; one command per stdin line:
    run     the conversation of PLAN (JSON):
            {"bin": DIR, "cwd": DIR, "steps": [{"text", "args", "result", "argv": [[...]],
             "shell": [...], "urls": [...]}, ...], "final": TEXT}
    quit"""
import http.client
import json
import os
import ssl
import subprocess
import sys
import urllib.parse

port, cafile, plan_path, plain = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=cafile)
TOOLS = [{"type": "function", "function": {"name": "work", "parameters": {"type": "object"}}}]


def chat(msgs, reply):
    c = http.client.HTTPSConnection("localhost", port, context=ctx)
    c.request("POST", "/v1/chat/completions",
              body=json.dumps({"model": "gpt-4o", "messages": msgs, "tools": TOOLS}),
              headers={"Content-Type": "application/json", "X-Reply": json.dumps(reply),
                       "Authorization": "Bearer sk-agent-SECRET-0123456789abcdef"})
    r = json.loads(c.getresponse().read())
    c.close()
    return r["choices"][0]["message"]


def fetch(url):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection("127.0.0.1", plain)
    c.request("POST", u.path + ("?" + u.query if u.query else ""), body="{}",
              headers={"Content-Type": "application/json"})
    c.getresponse().read()
    c.close()


def tool(plan, step):
    env = {"PATH": plan["bin"] + ":/usr/bin:/bin"}
    for argv in step.get("argv", []):
        subprocess.run(argv, env=env, cwd=plan["cwd"], capture_output=True)
    for line in step.get("shell", []):
        subprocess.run(["sh", "-c", line], env=env, cwd=plan["cwd"], capture_output=True)
    for url in step.get("urls", []):
        fetch(url)
    return step["result"]


def run(plan):
    msgs = [{"role": "system", "content": "You are an operator's assistant."},
            {"role": "user", "content": "Check the configuration, here it is:\n" +
             plan["steps"][0]["text"]}]
    for i, step in enumerate(plan["steps"]):
        cid = f"call_secret_{i}"
        m = chat(msgs, {"text": step["text"], "usage": [100, 20],
                        "calls": [{"id": cid, "name": "work", "args": step["args"]}]})
        msgs.append(m)
        msgs.append({"role": "tool", "tool_call_id": cid, "content": tool(plan, step)})
    return chat(msgs, {"text": plan["final"], "usage": [200, 30]})["content"]


print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "quit":
        break
    if cmd == "run":
        with open(plan_path) as f:
            plan = json.load(f)
        run(plan)
        print("done", len(plan["steps"]), flush=True)
