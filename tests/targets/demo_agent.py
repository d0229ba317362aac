"""A tiny agent for the demo: it asks a model (an OpenAI-compatible API over HTTPS) what to
do, runs the tool the model picks, sends the result back, and prints the answer. It knows
nothing of tracing. Usage: demo_agent.py BASE_URL CAFILE; starts on a line on stdin."""
import json
import os
import ssl
import subprocess
import sys
import urllib.request

base, cafile = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                           "parameters": {"type": "object"}}},
         {"type": "function", "function": {"name": "web_search", "description": "Search",
                                           "parameters": {"type": "object"}}}]


def chat(messages):
    req = urllib.request.Request(
        base + "/v1/chat/completions",
        data=json.dumps({"model": "gpt-4o", "messages": messages, "tools": TOOLS}).encode(),
        headers={"Content-Type": "application/json",
                 "Authorization": "Bearer sk-demo-NOT-A-REAL-KEY-0123456789"})
    with urllib.request.urlopen(req, context=ctx) as r:
        return json.load(r)["choices"][0]["message"]


def get_weather(city, unit="celsius"):
    # A real tool would call a weather API; this one runs a command, as tools often do.
    out = subprocess.run(["date", "+%H:%M"], capture_output=True, text=True).stdout.strip()
    return {"city": city, "unit": unit, "temperature": 18, "at": out}


print("ready", os.getpid(), flush=True)
sys.stdin.readline()
messages = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the weather in Paris?"}]
while True:
    msg = chat(messages)
    messages.append(msg)
    if not msg.get("tool_calls"):
        print("answer:", msg["content"], flush=True)
        break
    for call in msg["tool_calls"]:
        result = get_weather(**json.loads(call["function"]["arguments"]))
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)})
