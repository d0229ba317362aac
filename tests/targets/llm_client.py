"""Integration-test target: an 'agent' that calls LLM APIs over HTTPS with Python's standard
library (http.client over ssl, so libssl.so.3). One command per stdin line:
    call CONN METHOD PATH JSON-BODY [HEADER=VALUE ...]
CONN names a keep-alive connection (new names open new connections). Prints "status N BYTES",
or "error EXCEPTION" when the response was malformed (the connection is closed then, and the
next call under the same name opens a new one).
    par N PATH JSON-BODY     N requests at once, each on its own new connection and thread.
With --relaunch after the CA file it waits for one line ("go"), then relaunches itself as a
child process (the same program) that does all of the above."""
import http.client
import json
import os
import ssl
import sys
import threading

port, cafile = int(sys.argv[1]), sys.argv[2]  # cafile "--plain": plain HTTP, no TLS
if sys.argv[3:] == ["--relaunch"]:
    # An agent CLI that relaunches itself: this process waits for "go", then runs the same
    # program again as a child process, which prints its own "ready" and does the calls.
    import subprocess
    print("ready", os.getpid(), flush=True)
    sys.stdin.readline()
    sys.exit(subprocess.run([sys.executable, __file__, sys.argv[1], cafile]).returncode)
ctx = None if cafile == "--plain" else ssl.create_default_context(cafile=cafile)


def connect():
    if ctx is None:
        return http.client.HTTPConnection("127.0.0.1", port)
    return http.client.HTTPSConnection("localhost", port, context=ctx)


conns = {}
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    parts = line.rstrip("\n").split(" ", 4)
    if parts[0] == "quit":
        break
    if parts[0] == "par":
        n, path, body = int(parts[1]), parts[2], " ".join(parts[3:])
        results = []

        def one(i):
            c = connect()
            c.request("POST", path, body=body.replace("#I", str(i)).encode(),
                      headers={"Content-Type": "application/json"})
            results.append(c.getresponse().read())
            c.close()

        ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        print("par", len(results), flush=True)
        continue
    if parts[0] != "call":
        print("unknown", flush=True)
        continue
    name, method, path = parts[1], parts[2], parts[3]
    rest = parts[4] if len(parts) > 4 else "{}"
    body, _, hdrs = rest.partition(" ||| ")
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-test-SECRET0123456789",
               "x-api-key": "sk-ant-api03-SECRETSECRET"}
    for h in filter(None, hdrs.split(" ||| ")):
        k, _, v = h.partition("=")
        headers[k] = v
    if name not in conns:
        conns[name] = connect()
    c = conns[name]
    try:
        c.request(method, path, body=body.encode(), headers=headers)
        r = c.getresponse()
        data = r.read()
    except Exception as e:  # a malformed response: this connection is done, the next call
        c.close()           # under the same name opens a new one
        del conns[name]
        print("error", type(e).__name__, flush=True)
        continue
    print("status", r.status, len(data), flush=True)
