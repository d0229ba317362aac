"""Integration-test target for sampling: each child process is a session. Commands:
    fork N PORT   N children one after another; child i has a two-step conversation (model
                  "m-i") with the plain-HTTP server on PORT, then exits
    burst N PORT  one child making N requests as fast as it can
    quit"""
import http.client
import json
import os
import sys


def ask(c, model, step):
    msgs = [{"role": "user", "content": f"q {model}"}]
    if step:
        msgs.append({"role": "assistant", "content": "a"})
    c.request("POST", "/v1/chat/completions", body=json.dumps({"model": model, "messages": msgs}),
              headers={"Content-Type": "application/json"})
    c.getresponse().read()


def child(port, fn):
    pid = os.fork()
    if pid == 0:
        try:
            fn(http.client.HTTPConnection("127.0.0.1", port))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    parts = line.split()
    if parts[0] == "quit":
        break
    n, port = int(parts[1]), int(parts[2])
    if parts[0] == "fork":
        for i in range(n):
            child(port, lambda c, i=i: (ask(c, f"m-{i}", 0), ask(c, f"m-{i}", 1)))
    elif parts[0] == "burst":
        child(port, lambda c: [ask(c, f"b-{i}", 0) for i in range(n)])
    print("done", flush=True)
