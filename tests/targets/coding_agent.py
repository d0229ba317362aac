"""Integration-test target: a scripted coding agent that behaves as real ones do (Claude Code,
Codex, Bun- and tokio-based agents), over HTTPS to tests/servers/llm_server.py. The agent
decides what "the model" answers (the X-Reply header, see scripted() there); what agtrace sees is
only the wire and the processes. Usage: coding_agent.py PORT CAFILE; one command per stdin line:
    cache        Messages API, two Bash tool calls: the cache marker moves to the newest message
                 each turn, thinking blocks come back with their signatures, and a per-turn
                 <system-reminder> block precedes the user's text
    threads      all LLM calls on an "HTTP client" thread, the tool's command spawned from the
                 main thread (as Bun and tokio agents do)
    parallel     two shell calls at once, each run on its own thread: "sleep 0.2; echo A; exit 2"
                 (fails) and "echo B; (exit 1); true" (succeeds, a subshell inside fails)
    relaunch     relaunches itself as a child process, which makes the calls and runs the tool
    warmup       HEAD / first (a client's warm-up), then a one-step conversation
    chain        the tool runs bash -lc 'echo start; ls /' (bash runs ls in its own process)
    killme       a streamed call answered slowly; prints "streaming" at the first chunk and then
                 waits to be killed
    subagent     a Task tool call whose sub-agent has its own conversation and runs a command
    subproc      a shell tool runs an agent CLI (this script, --child) that has a conversation of
                 its own and runs a command
    twins        two conversations at once, on two threads, with the same opening and the same
                 call ids, steps interleaved; each tool runs its own command
    files DIR    tools that change files in DIR in the agent's own process, as Claude Code's Write
                 and Edit do: three writes at once (a.txt, b.txt, c.txt), an edit in place of a.txt,
                 b.txt replaced by a temporary file renamed over it, c.txt deleted, then a shell
                 tool's `sed -i` on a.txt (a child process renames its temporary file over it)
    lineage DIR  file tools at lineage's limits: a file over --files-hash-max, a secret written
                 to a file, a diff over 4 KiB, a file cut by truncate(2), another by ftruncate(2)
    scribble DIR no conversation: writes DIR/log.txt (then appends to it) and DIR/cache/x.bin,
                 reads DIR/notes.md
    mcp HOW      the official SDK's MCP server (tests/targets/mcp_server.mjs) over stdio, HOW a
                 UNIX socket pair or pipes (see McpStdio), started before the conversation as
                 Claude Code starts its servers; the model calls its tool twice at once
                 (mcp__math__add, different arguments), the agent sends both tools/call requests
                 before reading either answer (the second call's first), then stops the server
    codex MODE   the Responses API as Codex uses it: instructions, a developer message and an
                 environment-context block before the user's text; function, custom (apply_patch),
                 built-in (web_search) and namespaced (github.open_pr) tools; reasoning items;
                 three turns: shell and apply_patch at once, then github.open_pr (which runs a
                 command), then the answer. MODE "chain": store on, each turn names the previous
                 response (previous_response_id) and sends only the new items; "chain-stream":
                 the same streamed; "stateless": store: false, streamed, the whole history each
                 turn with the reasoning items' encrypted_content
    quit"""
import http.client
import json
import os
import queue
import socket
import ssl
import subprocess
import sys
import threading
import time

port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
SHELL = [{"type": "function", "function": {"name": "shell", "parameters": {"type": "object"}}}]


def post(path, body, reply):
    c = http.client.HTTPSConnection("localhost", port, context=ctx)
    c.request("POST", path, body=json.dumps(body),
              headers={"Content-Type": "application/json", "X-Reply": json.dumps(reply),
                       "Authorization": "Bearer sk-coding-SECRET-0123456789"})
    r = json.loads(c.getresponse().read())
    c.close()
    return r


def chat(msgs, reply, tools=SHELL):
    return post("/v1/chat/completions", {"model": "gpt-4o", "messages": msgs, "tools": tools},
                reply)["choices"][0]["message"]


def sh(cmd):
    p = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True)
    return p.returncode, p.stdout.strip()


def call(cid, cmd):
    return {"id": cid, "name": "shell", "args": {"command": cmd}}


def one_tool(first, cmd, answer, run_tool=None, post_chat=chat):
    """A two-step loop: the model asks for `shell` with cmd, then answers."""
    msgs = [{"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": first}]
    m = post_chat(msgs, {"calls": [call("call_1", cmd)], "usage": [40, 6]})
    msgs.append(m)
    code, out = (run_tool or sh)(cmd)
    msgs.append({"role": "tool", "tool_call_id": "call_1", "content": f"exit {code}: {out}"})
    m = post_chat(msgs, {"text": answer, "usage": [60, 4]})
    return m["content"]


def cache():
    system = [{"type": "text", "text": "You are a coding agent.",
               "cache_control": {"type": "ephemeral"}}]
    msgs = [{"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>cwd is /tmp</system-reminder>"},
        {"type": "text", "text": "Fix the build.", "cache_control": {"type": "ephemeral"}}]}]
    tools = [{"name": "Bash", "input_schema": {"type": "object"}}]
    script = [{"calls": [{"id": "toolu_1", "name": "Bash", "args": {"command": "echo one"}}]},
              {"calls": [{"id": "toolu_2", "name": "Bash", "args": {"command": "echo two"}}]},
              {"text": "Build fixed."}]
    for turn, reply in enumerate(script):
        reply["usage"] = [100 + turn, 10]
        m = post("/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 1000,
                                  "system": system, "messages": msgs, "tools": tools}, reply)
        uses = [b for b in m["content"] if b["type"] == "tool_use"]
        if not uses:
            return m["content"][0]["text"]
        # The history as Claude Code sends it back: thinking with its signature, the cache
        # marker only on the newest block, a fresh reminder in the first message.
        msgs.append({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Let me run it.", "signature": f"sig{turn}=="}] +
            m["content"]})
        for old in msgs:
            for b in old["content"] if isinstance(old["content"], list) else []:
                b.pop("cache_control", None)
        msgs[0]["content"][0]["text"] = f"<system-reminder>turn {turn}</system-reminder>"
        system = [{"type": "text", "text": "You are a coding agent."}]
        results = []
        for u in uses:
            code, out = sh(u["input"]["command"])
            results.append({"type": "tool_result", "tool_use_id": u["id"], "content": out,
                            "cache_control": {"type": "ephemeral"}})
        msgs.append({"role": "user", "content": results})


def threads():
    """LLM calls go through one HTTP client thread; tools run on the main thread."""
    jobs = queue.Queue()

    def client():
        while True:
            msgs, reply, back = jobs.get()
            back.put(chat(msgs, reply))

    threading.Thread(target=client, daemon=True, name="HTTP Client").start()

    def via_thread(msgs, reply):
        back = queue.Queue()
        jobs.put((msgs, reply, back))
        return back.get()
    return one_tool("Show the date.", "date +%Y", "Done.", post_chat=via_thread)


def parallel():
    msgs = [{"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": "Run both."}]
    cmds = {"call_a": "sleep 0.2; echo A; exit 2", "call_b": "echo B; (exit 1); true"}
    m = chat(msgs, {"calls": [call(k, v) for k, v in cmds.items()], "usage": [40, 12]})
    msgs.append(m)
    outs = {}

    def run(cid):
        outs[cid] = sh(cmds[cid])
    ts = [threading.Thread(target=run, args=(cid,)) for cid in cmds]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for cid in cmds:
        msgs.append({"role": "tool", "tool_call_id": cid,
                     "content": f"exit {outs[cid][0]}: {outs[cid][1]}"})
    return chat(msgs, {"text": "A failed, B passed.", "usage": [70, 5]})["content"]


def relaunch():
    """What CLIs do to get other runtime flags: the work happens in a child process."""
    p = subprocess.run([sys.executable, __file__, str(port), cafile, "--child"],
                       capture_output=True, text=True)
    return p.stdout.strip()


def warmup():
    c = http.client.HTTPSConnection("localhost", port, context=ctx)
    c.request("HEAD", "/")
    c.getresponse().read()
    c.close()
    return chat([{"role": "user", "content": "Say hi."}], {"text": "Hi.", "usage": [5, 1]},
                tools=None)["content"]


def chain():
    def run(cmd):
        p = subprocess.run(["bash", "-lc", cmd], capture_output=True, text=True)
        return p.returncode, p.stdout.strip()[:20]
    return one_tool("List the root.", "echo start; ls /", "Listed.", run_tool=run)


def killme():
    c = http.client.HTTPSConnection("localhost", port, context=ctx)
    c.request("POST", "/v1/chat/completions", body=json.dumps({
        "model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Write a long story."}]}),
        headers={"Content-Type": "application/json", "X-Reply": json.dumps({
            "text": "Once upon a time there was a tracer that saw everything.",
            "slow": 0.4, "usage": [12, 30]})})
    r = c.getresponse()
    r.read1(1)
    print("streaming", flush=True)
    while r.read1(4096):
        pass
    return "finished"


def subagent():
    prompt = "Find the weather in Oslo"
    outer = [{"role": "system", "content": "You plan."},
             {"role": "user", "content": "Should I take an umbrella?"}]
    task = {"id": "call_task", "name": "Task",
            "args": {"subagent_type": "researcher", "description": "weather", "prompt": prompt}}
    m = chat(outer, {"calls": [task], "usage": [30, 8]})
    outer.append(m)
    # The sub-agent: its own system prompt, the task's prompt as its first message.
    inner = [{"role": "system", "content": "You research."}, {"role": "user", "content": prompt}]
    m = chat(inner, {"calls": [call("call_sub", "echo rain")], "usage": [20, 5]})
    inner.append(m)
    code, out = sh("echo rain")
    inner.append({"role": "tool", "tool_call_id": "call_sub", "content": out})
    found = chat(inner, {"text": "Rain in Oslo.", "usage": [25, 3]})["content"]
    outer.append({"role": "tool", "tool_call_id": "call_task", "content": found})
    return chat(outer, {"text": "Take an umbrella.", "usage": [50, 4]})["content"]


def subproc():
    cmd = f"{sys.executable} {__file__} {port} {cafile} --child"
    return one_tool("Ask the other agent.", cmd, "It says Linux.")


def twins():
    gate = threading.Barrier(2)
    answers = {}

    def conv(side):
        msgs = [{"role": "system", "content": "You are a coding agent."},
                {"role": "user", "content": "Check the disk."}]
        m = chat(msgs, {"calls": [call("call_1", f"echo {side}")], "usage": [40, 6]})
        msgs.append(m)
        gate.wait()  # both asked before either answers
        code, out = sh(f"echo {side}")
        msgs.append({"role": "tool", "tool_call_id": "call_1", "content": out})
        gate.wait()
        answers[side] = chat(msgs, {"text": f"Disk {side} ok.", "usage": [60, 4]})["content"]
    ts = [threading.Thread(target=conv, args=(side,)) for side in ("left", "right")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return " ".join(answers[s] for s in ("left", "right"))


def run_script(ask, script, tools, offered, usage, answer):
    """A coding agent's conversation: per turn, the scripted tool calls (turn N's usage
    (usage[0] + N, usage[1])) run here in order, their results sent back; then the answer."""
    msgs = [{"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": ask}]
    for turn, calls in enumerate(script):
        m = chat(msgs, {"calls": [{"id": i, "name": n, "args": a} for i, n, a in calls],
                        "usage": [usage[0] + turn, usage[1]]}, tools=offered)
        msgs.append(m)
        for cid, name, args in calls:
            msgs.append({"role": "tool", "tool_call_id": cid, "content": tools[name](args)})
    return chat(msgs, {"text": answer[0], "usage": [answer[1], 2]}, tools=offered)["content"]


def files(d):
    """File tools run in-process (no exec), one shell tool whose sed -i renames over a.txt."""
    def write(a):
        with open(a["path"], "w") as f:
            f.write(a["content"])
        return "written"

    def edit(a):
        with open(a["path"]) as f:
            text = f.read()
        with open(a["path"], "w") as f:  # in place: O_TRUNC, as editors' write does
            f.write(text.replace(a["old"], a["new"]))
        return "edited"

    def replace(a):  # an atomic writer: a temporary file renamed over the target
        tmp = os.path.join(os.path.dirname(a["path"]), ".tmp-" + os.path.basename(a["path"]))
        with open(tmp, "w") as f:
            f.write(a["content"])
        os.replace(tmp, a["path"])
        return "replaced"

    def delete(a):
        os.remove(a["path"])
        return "deleted"

    def shell(a):
        return "exit %d: %s" % sh(a["command"])

    tools = {"write": write, "edit": edit, "replace": replace, "delete": delete, "shell": shell}
    offered = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
               for n in tools]
    script = [
        [("call_wa", "write", {"path": f"{d}/a.txt", "content": "alpha\nbeta\n"}),
         ("call_wb", "write", {"path": f"{d}/b.txt", "content": "bee\n"}),
         ("call_wc", "write", {"path": f"{d}/c.txt", "content": "sea\n"})],
        [("call_e", "edit", {"path": f"{d}/a.txt", "old": "beta", "new": "gamma"})],
        [("call_r", "replace", {"path": f"{d}/b.txt", "content": "new bee\n"})],
        [("call_d", "delete", {"path": f"{d}/c.txt"})],
        [("call_s", "shell", {"command": f"sed -i s/alpha/omega/ {d}/a.txt"})],
    ]
    return run_script("Tidy the files.", script, tools, offered, (40, 8), ("Tidied.", 90))


def lineage(d):
    """Tools whose files test lineage's limits and truncation: a file over --files-hash-max, a
    secret written to a file (its diff redacted), a text file whose diff is over 4 KiB, and a
    file cut by truncate(2) (by path) and another by ftruncate(2) (by descriptor)."""
    def write(a):
        with open(a["path"], "w") as f:
            f.write(a["content"])
        return "written"

    def cut(a):  # truncate(2)
        os.truncate(a["path"], a["size"])
        return "cut"

    def fcut(a):  # ftruncate(2) on a descriptor opened for writing, nothing written
        fd = os.open(a["path"], os.O_RDWR)
        os.ftruncate(fd, a["size"])
        os.close(fd)
        return "cut"

    tools = {"write": write, "cut": cut, "fcut": fcut}
    offered = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
               for n in tools]
    long = "".join(f"line {i:03d} " + "x" * 90 + "\n" for i in range(60))
    script = [
        [("call_big", "write", {"path": f"{d}/big.txt", "content": "b" * 9999 + "\n"}),
         ("call_sec", "write", {"path": f"{d}/conf.txt",
                                "content": "url = https://example.com\n"
                                           "token = sk-file-SECRET-0123456789\n"}),
         ("call_long", "write", {"path": f"{d}/long.txt", "content": long}),
         ("call_t0", "write", {"path": f"{d}/t.txt", "content": "0123456789\n"}),
         ("call_f0", "write", {"path": f"{d}/f.txt", "content": "one\ntwo\n"})],
        [("call_t", "cut", {"path": f"{d}/t.txt", "size": 5})],
        [("call_f", "fcut", {"path": f"{d}/f.txt", "size": 4})],
    ]
    msgs = [{"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": "Cut the files."}]
    for turn, calls in enumerate(script):
        m = chat(msgs, {"calls": [{"id": i, "name": n, "args": a} for i, n, a in calls],
                        "usage": [30 + turn, 6]}, tools=offered)
        msgs.append(m)
        for cid, name, args in calls:
            msgs.append({"role": "tool", "tool_call_id": cid, "content": tools[name](args)})
        # A model's answer takes a while: agtrace reads a file's content when it sees its last
        # close, and the local server answers faster than it could see it.
        time.sleep(0.3)
    return chat(msgs, {"text": "Cut.", "usage": [70, 2]}, tools=offered)["content"]


class McpStdio:
    """A minimal MCP client over stdio (newline-delimited JSON-RPC), as agents embed one. The
    server's stdin and stdout are a UNIX socket pair ("socket": what Node's libuv gives a
    child, so Claude Code's servers) or two pipes ("pipe": what Python's subprocess gives)."""

    def __init__(self, how):
        server = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mcp_server.mjs")
        if how == "socket":
            mine, theirs = socket.socketpair()
            self.p = subprocess.Popen(["node", server], stdin=theirs, stdout=theirs)
            theirs.close()
            self.sock = mine
            self.w = self.r = mine.makefile("rw", encoding="utf-8")
        else:
            self.p = subprocess.Popen(["node", server], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
            self.sock = None
            self.w, self.r = self.p.stdin, self.p.stdout
        self.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-03-26", "capabilities": {},
            "clientInfo": {"name": "coding-agent", "version": "1.0.0"}}})
        self.read()
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, msg):
        self.w.write(json.dumps(msg, separators=(",", ":")) + "\n")
        self.w.flush()

    def read(self):
        return json.loads(self.r.readline())

    def close(self):
        if self.sock:
            self.sock.shutdown(socket.SHUT_WR)
        else:
            self.w.close()
        self.p.wait()


def mcp(how):
    server = McpStdio(how)
    tools = [{"type": "function", "function": {"name": "mcp__math__add",
                                               "parameters": {"type": "object"}}}]
    msgs = [{"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": "Add both pairs."}]
    asked = {"call_add_1": {"a": 2, "b": 3}, "call_add_2": {"a": 40, "b": 2}}
    m = chat(msgs, {"calls": [{"id": k, "name": "mcp__math__add", "args": v}
                              for k, v in asked.items()], "usage": [40, 12]}, tools=tools)
    msgs.append(m)
    # Both calls at once, the second tool call's first: JSON-RPC ids 7 and 8.
    order = ["call_add_2", "call_add_1"]
    for n, cid in enumerate(order):
        server.send({"jsonrpc": "2.0", "id": 7 + n, "method": "tools/call",
                     "params": {"name": "add", "arguments": asked[cid]}})
    got = {}
    for _ in order:
        r = server.read()
        got[order[r["id"] - 7]] = r["result"]["content"][0]["text"]
    for cid in asked:
        msgs.append({"role": "tool", "tool_call_id": cid, "content": got[cid]})
    answer = chat(msgs, {"text": f"{got['call_add_1']} and {got['call_add_2']}.",
                         "usage": [70, 5]}, tools=tools)["content"]
    server.close()
    return answer


def responses_post(body, reply):
    """A Responses API call; streamed, the response of its response.completed event."""
    c = http.client.HTTPSConnection("localhost", port, context=ctx)
    c.request("POST", "/v1/responses", body=json.dumps(body),
              headers={"Content-Type": "application/json", "X-Reply": json.dumps(reply),
                       "Authorization": "Bearer sk-coding-SECRET-0123456789"})
    raw = c.getresponse().read().decode()
    c.close()
    if not body.get("stream"):
        return json.loads(raw)
    for ev in raw.split("\n\n"):
        data = [l[6:] for l in ev.split("\n") if l.startswith("data: ")]
        if data and json.loads(data[0])["type"] == "response.completed":
            return json.loads(data[0])["response"]
    raise RuntimeError("no response.completed")


PATCH = "*** Begin Patch\n*** Update File: README\n@@\n-old\n+new\n*** End Patch"


def codex(mode):
    tools = [{"type": "function", "name": "shell", "parameters": {"type": "object"}},
             {"type": "custom", "name": "apply_patch", "description": "Edit files."},
             {"type": "web_search"},
             {"type": "namespace", "name": "github", "tools": [
                 {"type": "function", "name": "open_pr", "parameters": {"type": "object"}}]}]
    history = [
        {"type": "message", "role": "developer",
         "content": [{"type": "input_text", "text": "<permissions>workspace-write</permissions>"}]},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "<environment_context><cwd>/src</cwd>"
                                           "</environment_context>"}]},
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "Fix the README and open a PR."}]}]
    script = [
        {"id": "resp_cx_1", "reasoning": "Check the tree, then patch.", "usage": [200, 30],
         "thinking": 12, "calls": [{"id": "call_sh", "name": "shell",
                                    "args": {"command": ["bash", "-c", "echo tree-ok"]}},
                                   {"id": "call_patch", "name": "apply_patch", "input": PATCH}]},
        {"id": "resp_cx_2", "reasoning": "Now the PR.", "usage": [260, 20], "thinking": 8,
         "cached": 192, "calls": [{"id": "call_pr", "name": "open_pr", "namespace": "github",
                                   "args": {"title": "Fix README"}}]},
        {"id": "resp_cx_3", "text": "Opened PR 17.", "usage": [300, 6], "cached": 256}]
    stream, store = mode != "chain", mode != "stateless"
    new, prev = list(history), None
    for reply in script:
        body = {"model": "gpt-5-codex", "instructions": "You are Codex, a coding agent.",
                "input": new if store else history, "tools": tools, "store": store,
                "stream": stream, "parallel_tool_calls": True}
        if store:
            body["include"] = []
            if prev:
                body["previous_response_id"] = prev
        else:
            body["include"] = ["reasoning.encrypted_content"]
        r = responses_post(body, reply)
        prev = r["id"]
        history += r["output"]
        new = []
        calls = [o for o in r["output"] if o["type"] in ("function_call", "custom_tool_call")]
        if not calls:
            return r["output"][-1]["content"][0]["text"]
        for o in calls:
            if o["type"] == "custom_tool_call":
                out = {"type": "custom_tool_call_output", "call_id": o["call_id"],
                       "output": "Done: README updated"}
            elif o.get("namespace") == "github":
                code, text = sh("echo pr-17")
                out = {"type": "function_call_output", "call_id": o["call_id"], "output": text}
            else:
                argv = json.loads(o["arguments"])["command"]
                p = subprocess.run(argv, capture_output=True, text=True)
                out = {"type": "function_call_output", "call_id": o["call_id"],
                       "output": p.stdout.strip()}
            new.append(out)
            history.append(out)


def bytecount(d):
    """Tools whose bytes are counted by where the file position went, not by hooking writes:
    a write, a seek back and an overwrite, a seek to the end and one more byte; a pwrite (the
    position stays) and a write; appends to a file that already has content (O_APPEND, no seek);
    and a descriptor shared with a forked child, written by both (one open file)."""
    def seekw(a):
        fd = os.open(a["path"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"0123456789")
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"ab")
        os.lseek(fd, 0, os.SEEK_END)
        os.write(fd, b"!")
        os.close(fd)
        return "written"

    def pw(a):
        fd = os.open(a["path"], os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(fd, b"xyz", 4)
        os.write(fd, b"12")
        os.close(fd)
        return "written"

    def base(a):
        with open(a["path"], "w") as f:
            f.write("base\n")
        return "written"

    def append(a):
        fd = os.open(a["path"], os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"more\n")
        os.write(fd, b"most\n")
        os.close(fd)
        return "appended"

    def shared(a):
        fd = os.open(a["path"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        child = os.fork()
        if child == 0:
            os.write(fd, b"child\n")
            os._exit(0)
        os.waitpid(child, 0)
        os.write(fd, b"parent\n")
        os.close(fd)
        return "written"

    def redirect(a):  # no close(2): bash's builtin puts its saved stdout back with dup2, and
        # python leaves the file on 1 and 2 for its exit to close
        subprocess.run(["bash", "-c", f"printf x > {a['one']}; {sys.executable} -c "
                        f"'print(12345)' > {a['two']} 2>&1"], check=True)
        return "redirected"

    tools = {"seekw": seekw, "pw": pw, "base": base, "append": append, "shared": shared,
             "redirect": redirect}
    offered = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
               for n in tools]
    script = [
        [("call_seek", "seekw", {"path": f"{d}/seek.bin"}),
         ("call_pw", "pw", {"path": f"{d}/pw.bin"}),
         ("call_base", "base", {"path": f"{d}/log.txt"}),
         ("call_fork", "shared", {"path": f"{d}/shared.txt"}),
         ("call_redir", "redirect", {"one": f"{d}/one.txt", "two": f"{d}/two.txt"})],
        [("call_app", "append", {"path": f"{d}/log.txt"})],
    ]
    return run_script("Count the bytes.", script, tools, offered, (40, 6), ("Counted.", 50))


def scribble(d):
    with open(f"{d}/log.txt", "w") as f:
        f.write("one\n")
    with open(f"{d}/log.txt", "a") as f:
        f.write("two\n")
    os.makedirs(f"{d}/cache", exist_ok=True)
    with open(f"{d}/cache/x.bin", "wb") as f:
        f.write(b"\0" * 10)
    with open(f"{d}/notes.md") as f:
        f.read()
    return "done"


if len(sys.argv) > 3 and sys.argv[3] == "--child":
    print(one_tool("What system is this?", "uname -s", "It is Linux."))
    sys.exit(0)

COMMANDS = {"cache": cache, "threads": threads, "parallel": parallel, "relaunch": relaunch,
            "warmup": warmup, "chain": chain, "killme": killme, "subagent": subagent,
            "twins": twins, "subproc": subproc, "files": files, "lineage": lineage,
            "scribble": scribble, "bytecount": bytecount, "mcp": mcp, "codex": codex}
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    cmd, *arg = line.split()
    if cmd == "quit":
        break
    print(f"{cmd} {COMMANDS[cmd](*arg)}", flush=True)
