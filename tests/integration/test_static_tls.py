"""TLS inside stripped, statically linked executables, captured end to end with real BPF on real
processes: Bun releases a year apart (BoringSSL, located from the binary's structure), an
executable made with `bun build --compile`, Deno (rustls over aws-lc-rs: records at the AEAD
layer, joined to their sockets; over HTTP/2, as its fetch speaks to a server offering h2 by
ALPN, and over HTTP/1.1) and a static, stripped C program on Debian's libssl.a; gdb checks, outside
agtrace, that Bun's located entries take and return what SSL_write and SSL_peek do. No probe
spec is given: the shipped "auto" specs choose the locator from what each binary holds. The
runtimes are pinned by tests/bun and tests/deno's package-lock.json (`make deps`)."""
import ast
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
from harness import ROOT, Target, Tracer, run_agtrace
from test_capture import exec_stops

SERVER = os.path.join(ROOT, "tests", "servers", "llm_server.py")
GOH2 = os.path.join(ROOT, "build", "tests", "goh2")  # h2 by ALPN (then http/1.1)
AGENT = os.path.join(ROOT, "tests", "targets", "fetch_agent.js")
BUN = os.path.join(ROOT, "tests", "bun", "node_modules", "bun-{}", "bin", "bun")
DENO = os.path.join(ROOT, "tests", "deno", "node_modules", "deno-a", "deno")
# The system's TLS libraries, probed ahead for what an agent's children may load.
READY = "libgnutls.so.30.34.3, libssl.so.3"
TLS_STATIC = os.path.join(ROOT, "build", "tests", "tls_static_stripped")
PY = "/usr/bin/python3"
COMMANDS = ["openai plain", "openai stream", "anthropic plain"]
REPLIES = ["openai 200 get_weather", "openai 200 chunks 9", "anthropic 200 get_weather"]
# what the test server answers each command with: the step's name, provider, stream, tokens
STEPS = [("chat gpt-4o", "openai", False, 42, 7), ("chat gpt-4o", "openai", True, 42, 7),
         ("chat claude-sonnet-4-5", "anthropic", False, 30, 12)]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and a leaf it signs (rustls's webpki refuses a self-signed CA:TRUE leaf)."""
    d = tmp_path_factory.mktemp("pki")

    def ossl(*a):
        subprocess.run(["openssl", *[str(x) for x in a]], check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", d / "ca.key",
         "-out", d / "ca.pem", "-subj", "/CN=agtrace test CA")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", d / "key.pem", "-out", d / "leaf.csr",
         "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                               "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", d / "leaf.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca.key",
         "-CAcreateserial", "-days", "1", "-out", d / "cert.pem", "-extfile", d / "ext.cnf")
    return d


@pytest.fixture(scope="module")
def server(pki):
    p = subprocess.Popen([PY, SERVER, pki / "cert.pem", pki / "key.pem"],
                         stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().split()[1])
    yield port
    p.kill()
    p.wait()


@pytest.fixture(scope="module")
def h2server(pki):
    p = subprocess.Popen([GOH2, pki / "cert.pem", pki / "key.pem"], stdout=subprocess.PIPE,
                         text=True)
    port = int(p.stdout.readline().split()[1])
    yield port
    p.kill()
    p.wait()


@pytest.fixture
def cache(tmp_path):
    """The locator's cache of this test alone (the machine's is shared with other runs)."""
    return tmp_path / "locate-cache"


def env_with(pki, cache, **kw):
    return dict(os.environ, NODE_EXTRA_CA_CERTS=str(pki / "ca.pem"), DENO_CERT=str(pki / "ca.pem"),
                DENO_NO_UPDATE_CHECK="1", AGTRACE_LOCATE_CACHE=str(cache), **kw)


def traced_agent(argv, env, cache, commands=COMMANDS):
    """Run the agent, attach agtrace to it by PID (auto specs only), run the commands, quit."""
    t = Target(argv, env=env)
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"], env=dict(os.environ,
                                                           AGTRACE_LOCATE_CACHE=str(cache)))
        replies = [t.call(c, timeout=30) for c in commands]
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    return tr, replies


def check_steps(tr, steps=STEPS):
    s = [x for x in tr.spans() if x["trace_type"] == "reasoning_step"]
    assert [(x["name"], x["gen_ai"]["provider"]["name"], x["llm"]["stream"],
             x["gen_ai"]["usage"]["input_tokens"], x["gen_ai"]["usage"]["output_tokens"])
            for x in s] == steps
    everything = "".join(tr.out)
    assert "sk-fetch-SECRET" not in everything and "sk-ant-fetch-SECRET" not in everything
    return s


def located_line(tr):
    (line,) = [l for l in tr.err_lines if " located in " in l]
    return line


@pytest.mark.parametrize("release", ["a", "c"])  # Bun 1.1.38 (Nov 2024) and 1.4.5 (2026)
def test_bun_fetch_agent(server, pki, cache, release):
    bun = BUN.format(release)
    tr, replies = traced_agent([bun, AGENT, str(server)], env_with(pki, cache), cache)
    assert replies == REPLIES
    check_steps(tr)
    (attach,) = tr.events("attach")
    # SSL_write and SSL_peek, entry and return; the system's libraries wait for its children
    assert attach["message"] == (f"4 probe links; TLS: BoringSSL in {os.path.realpath(bun)} (in "
                                 f"the executable); ready in {READY}")
    line = located_line(tr)
    assert re.search(r"\(bun\): boringssl located in .*/bun \(scanned, \d+ ms\): SSL_write at "
                     r"0x[0-9a-f]+, SSL_peek at 0x[0-9a-f]+$", line), line
    # the second attach to the same binary costs no scan: the cache answers
    tr2, replies = traced_agent([bun, AGENT, str(server)], env_with(pki, cache), cache,
                                commands=["openai plain"])
    assert replies == REPLIES[:1]
    check_steps(tr2, STEPS[:1])
    assert "(from the cache, " in located_line(tr2)


# gdb, attached to a Bun agent, stops at the entries the locator names and reads what the
# functions take and give by their calling convention alone: the request's first bytes and its
# length at SSL_write; at SSL_peek, the return (found at [rsp] on entry) and the bytes it put in
# the buffer. Bun publishes no unstripped build in its npm packages, so this is the check made
# outside agtrace (no BPF, no handler row) that the addresses are the functions named.
GDB_SCRIPT = """
import os
import gdb

W, R = int(os.environ["AGT_W"], 16), int(os.environ["AGT_R"], 16)
inf = gdb.selected_inferior()
for sig in ("SIGPWR", "SIGXCPU", "SIGUSR1", "SIGUSR2"):  # JavaScriptCore's, not ours
    gdb.execute(f"handle {sig} nostop noprint pass")
gdb.execute(f"break *{W:#x}")
gdb.execute(f"break *{R:#x}")
print("armed", flush=True)
wrote = peeked = None
while wrote is None or peeked is None:
    gdb.execute("continue")
    pc = int(gdb.parse_and_eval("$pc"))
    if pc == W and wrote is None:
        n = int(gdb.parse_and_eval("$rdx")) & 0xffffffff
        wrote = (n, bytes(inf.read_memory(int(gdb.parse_and_eval("$rsi")), min(n, 4096))))
    elif pc == R and peeked is None:
        buf = int(gdb.parse_and_eval("$rsi"))
        ret = int.from_bytes(bytes(inf.read_memory(int(gdb.parse_and_eval("$rsp")), 8)),
                             "little")
        gdb.execute(f"tbreak *{ret:#x} thread {gdb.selected_thread().num}")
        gdb.execute("continue")
        n = int(gdb.parse_and_eval("$eax"))
        if n > 0:
            peeked = (n, bytes(inf.read_memory(buf, min(n, 15))))
print("seen", repr(wrote), repr(peeked), flush=True)
gdb.execute("delete")
gdb.execute("detach")
"""


@pytest.mark.parametrize("release", ["a", "b", "c"])
def test_bun_located_entries_seen_by_gdb(server, pki, cache, tmp_path, release):
    bun = BUN.format(release)
    r = subprocess.run([os.path.join(ROOT, "agtrace"), "probes", "locate", bun],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, AGTRACE_LOCATE_CACHE=str(cache)))
    assert r.returncode == 0, r.stderr
    # Bun's executable is not position-independent: the address is the one in the process
    w = re.search(r"  write SSL_write +offset 0x[0-9a-f]+  vaddr (0x[0-9a-f]+)", r.stdout)
    rd = re.search(r"  read  SSL_peek +offset 0x[0-9a-f]+  vaddr (0x[0-9a-f]+)", r.stdout)
    assert w and rd, r.stdout
    script = tmp_path / "entries.py"
    script.write_text(GDB_SCRIPT)
    t = Target([bun, AGENT, str(server)], env=env_with(pki, cache))
    try:
        g = subprocess.Popen(["gdb", "-p", str(t.pid), "-batch", "-nx", "-x", str(script)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=dict(os.environ, AGT_W=w.group(1), AGT_R=rd.group(1)))
        out = []
        for line in g.stdout:
            out.append(line)
            if line.startswith("armed"):
                break
        assert out and out[-1].startswith("armed"), "".join(out)
        assert t.call("openai plain", timeout=60) == REPLIES[0]
        rest, _ = g.communicate(timeout=60)
        t.quit()
    finally:
        t.kill()
    (seen,) = [l for l in rest.splitlines() if l.startswith("seen ")]
    m = re.fullmatch(r"seen \((\d+), (b'.*')\) \(\d+, b'HTTP/1.1 200 OK'\)", seen)
    assert m, seen
    n, wire = int(m.group(1)), ast.literal_eval(m.group(2))
    # the whole request, headers and body, in one call: num is its exact length
    head, body = wire.split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    (length,) = [int(h.split(b":")[1]) for h in head.split(b"\r\n")
                 if h.lower().startswith(b"content-length:")]
    assert n == len(wire) == len(head) + 4 + length
    assert json.loads(body)["model"] == "gpt-4o"


@pytest.fixture(scope="module")
def compiled_app(tmp_path_factory):
    """fetch_agent.js made into an executable of its own by `bun build --compile`."""
    app = tmp_path_factory.mktemp("compiled") / "agent_app"
    subprocess.run([BUN.format("c"), "build", "--compile", AGENT, "--outfile", app], check=True,
                   capture_output=True, timeout=120)
    return app


def test_bun_compiled_executable(server, pki, cache, compiled_app):
    app = compiled_app
    tr, replies = traced_agent([str(app), str(server)], env_with(pki, cache), cache)
    assert replies == REPLIES
    check_steps(tr)
    assert re.search(r"boringssl located in .*/agent_app \(scanned", located_line(tr))


SHELL_AGENT = os.path.join(ROOT, "tests", "targets", "shell_agent.sh")


def probe_fds(pid):
    """agtrace's open probe links: perf events and the BPF links made on them."""
    n = 0
    for f in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{f}") in ("anon_inode:[perf_event]",
                                                        "anon_inode:bpf_link")
        except FileNotFoundError:
            pass  # closed meanwhile
    return n


def span_by_id(tr, span_id):
    (s,) = [r for r in tr.records if r["span_id"] == span_id]
    return s


# A child agent of each kind: its executable, its command line, the library located in it, the
# probe links a process of it gets (Bun: SSL_write and SSL_peek, entry and return; Deno: seal
# at entry, open at entry and return) and the links kept for the run once it had them (the
# AEAD capture's two system call tracepoints, attached with the first AEAD probes).
CHILDREN = {
    "bun": (os.path.realpath(BUN.format("c")), "{exe} " + AGENT + " {port}", "boringssl", 4, 0),
    "compiled": (None, "{exe} {port}", "boringssl", 4, 0),
    "deno": (os.path.realpath(DENO), "{exe} run -A " + AGENT + " {port}", "aws-lc", 3, 2),
}


@pytest.mark.parametrize("kind", list(CHILDREN))
def test_shell_agent_running_static_tls_children(server, pki, cache, compiled_app, tmp_path,
                                                 kind):
    """Attached by PID to a shell that runs a fresh agent per call: Bun, a `bun build --compile`
    executable, Deno. Each child's TLS is in its own stripped executable, probed per process.
    The kernel stops each child at its exec until its located probes are attached; agtrace is
    itself stopped while the shell runs the child, long enough for the call to be over were
    the child not held. The binary is scanned once (the second child's probes come from the
    run's memo of the file); each child's probes go when it exits."""
    exe, argv, library, nlinks, kept = CHILDREN[kind]
    exe = exe or str(compiled_app)
    env = env_with(pki, cache, AGENT=argv.format(exe=exe, port=server),
                   DENO_DIR=str(tmp_path / "deno"))
    t = Target(["/bin/sh", SHELL_AGENT], env=env)
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"], env=dict(os.environ,
                                                           AGTRACE_LOCATE_CACHE=str(cache)))
        fds = probe_fds(tr.p.pid)
        replies, peaks, after = [], [], []
        for cmd in ("openai plain", "anthropic plain"):
            tr.p.send_signal(signal.SIGSTOP)
            try:
                t.send(f"agent {cmd}")
                time.sleep(1.5)  # a Bun child makes its call within ~0.3 s of its exec
            finally:
                tr.p.send_signal(signal.SIGCONT)
            peak, deadline = fds, time.time() + 60
            while t.q.empty() and time.time() < deadline:  # the child lives until it answers
                peak = max(peak, probe_fds(tr.p.pid))
                time.sleep(0.005)
            peaks.append(peak - fds)
            replies.append(t.read(timeout=60))
            # the child is gone: its own probe links go within a few seconds
            deadline = time.time() + 10
            while probe_fds(tr.p.pid) != fds + kept and time.time() < deadline:
                time.sleep(0.1)
            after.append(probe_fds(tr.p.pid) - fds)
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    assert replies == [REPLIES[0], REPLIES[2]]
    s = check_steps(tr, [STEPS[0], STEPS[2]])
    children = [r["process"]["pid"] for r in tr.records if r["name"].startswith(f"exec {exe} ")]
    assert len(children) == 2 and t.pid not in children
    # the calls are the shell's, each made by a thread of its own child
    assert [x["process"]["pid"] for x in s] == [t.pid, t.pid]
    tids = [x["process"]["thread"]["id"] for x in s]
    with open("/proc/sys/kernel/pid_max") as f:  # PIDs wrap: a thread's comes soon after its
        pid_max = int(f.read())                   # process's, modulo this
    assert len(set(tids)) == 2 and all((tid - child) % pid_max < 2000
                                       for tid, child in zip(tids, children)), (children, tids)
    # the first child's call opens the shell's conversation; the second child's, run while
    # its tool call is open, hangs below it as a sub-agent
    conv = span_by_id(tr, s[0]["parent_span_id"])
    assert (conv["trace_type"], conv["name"], conv["process"]["pid"]) == (
        "cot_process", "conversation gpt-4o", t.pid)
    sub = span_by_id(tr, s[1]["parent_span_id"])
    assert sub["name"] == f"invoke_agent {os.path.basename(exe)}"
    tool = span_by_id(tr, sub["parent_span_id"])
    assert (tool["trace_type"], tool["name"], tool["parent_span_id"]) == (
        "tool_call", "execute_tool get_weather", conv["span_id"])
    # scanned once, said once; both children held at exec (a file with located TLS is never
    # known: each process that runs it gets probes of its own)
    assert re.search(rf"PID {children[0]} \({os.path.basename(exe)[:15]}\): {library} located "
                     rf"in {re.escape(exe)} \(scanned, \d+ ms\)", located_line(tr))
    assert exec_stops(tr) == (2, 2, 0), tr.err_lines
    # each child had links of its own while it ran (a perf event and its BPF link each), and
    # none is left once it exited
    assert (peaks, after) == ([2 * nlinks + kept] * 2, [kept] * 2), tr.err_lines


def test_selected_bun_after_an_unselected_run(server, pki, cache):
    """`attach --select`: a Bun process the selector turns away runs first (stopped at its exec,
    its file looked at, nothing probed); then one it takes, of the same binary, makes its call
    right after its exec while agtrace is stopped. Its file is not "known" for having been
    looked at: it is held at exec until its own located probes are attached, and its call is
    there, exact."""
    token = f"sel{os.getpid()}"
    bun = BUN.format("c")
    tr = Tracer(["--select", f"comm=bun,cmdline=*fetch_agent.js*{token}*", "-o", "jsonl"],
                wait=False, env=dict(os.environ, AGTRACE_LOCATE_CACHE=str(cache)))
    tr.wait_for("discovery: 1 selector")
    env = env_with(pki, cache)
    other = subprocess.run([bun, AGENT, str(server)], input="openai plain\nquit\n",
                           capture_output=True, text=True, env=env, timeout=60)
    assert other.stdout.splitlines()[1:] == [REPLIES[0]]
    tr.p.send_signal(signal.SIGSTOP)
    try:
        p = subprocess.Popen([bun, AGENT, str(server), token], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
        p.stdin.write("openai plain\nquit\n")
        p.stdin.flush()
        time.sleep(1.5)  # long enough for its call, were it running
    finally:
        tr.p.send_signal(signal.SIGCONT)
    out, _ = p.communicate(timeout=60)
    assert out.splitlines()[1:] == [REPLIES[0]]
    assert f"discovered PID {p.pid} (bun) by " in tr.wait_for("discovered PID")
    time.sleep(0.5)
    assert tr.interrupt() == 0
    (step,) = check_steps(tr, [STEPS[0]])
    assert step["process"]["pid"] == p.pid
    assert " 0 dropped " in tr.summary()
    stopped, resumed, gone = exec_stops(tr)
    # both Bun runs, and whatever else the machine exec'd meanwhile: every one resumed (or
    # killed while stopped, by whoever ran it)
    assert stopped >= 2 and resumed + gone == stopped, tr.err_lines


def check_deno_attach(tr):
    (attach,) = tr.events("attach")
    # seal at entry, open at entry and return
    assert attach["message"] == (f"3 probe links; TLS: aws-lc in {os.path.realpath(DENO)} (in the "
                                 f"executable); ready in {READY}")
    assert re.search(r"\(deno\): aws-lc located in .*/deno \(scanned, \d+ ms\): "
                     r"EVP_AEAD_CTX_seal at 0x[0-9a-f]+, EVP_AEAD_CTX_open at 0x[0-9a-f]+$",
                     located_line(tr))


def test_deno_fetch_agent_http1(server, pki, cache, tmp_path):
    """Deno's fetch against a server with no ALPN: HTTP/1.1."""
    env = env_with(pki, cache, DENO_DIR=str(tmp_path / "deno"))
    tr, replies = traced_agent([DENO, "run", "-A", AGENT, str(server)], env, cache)
    assert replies == REPLIES
    check_steps(tr)
    check_deno_attach(tr)


def test_deno_connections_end_with_their_sockets(server, pki, cache, tmp_path):
    """Deno (rustls, captured at the AEAD layer, where a connection is keyed by its socket)
    with the server closing each connection after its answer: each of the three connections
    ends when Deno closes its socket (a new one may get the same kernel address), and the
    steps are exact."""
    env = env_with(pki, cache, DENO_DIR=str(tmp_path / "deno"))
    tr, replies = traced_agent([DENO, "run", "-A", AGENT, str(server)], env, cache,
                               commands=["close " + c for c in COMMANDS])
    assert replies == REPLIES
    check_steps(tr)
    summary = tr.summary()
    assert " 0 dropped " in summary, summary
    assert " conns_closed=3 " in summary, summary
    assert " tls_record_unjoined=0 " in summary, summary


# The h2 server's answers: (step, reply). It says which protocol each request came over and how
# many body bytes it received; "openai long" is 40,000 bytes of user message, sealed into three
# TLS records of at most 16 KiB (and sent as several h2 DATA frames).
H2_CALLS = {
    "openai plain": (STEPS[0], "openai 200 get_weather proto HTTP/2.0 bytes 237"),
    "openai stream": (STEPS[1], "openai 200 chunks 6 proto HTTP/2.0 bytes 276"),
    "openai long": (STEPS[0], "openai 200 get_weather proto HTTP/2.0 bytes 40220"),
    "anthropic plain": (STEPS[2], "anthropic 200 get_weather proto HTTP/2.0 bytes 224"),
}


def test_deno_fetch_agent_h2(h2server, pki, cache, tmp_path):
    """Deno's fetch over HTTP/2 (h2 by ALPN, one connection for every call): each record at
    the AEAD layer joined to the socket, the h2 frames parsed into exactly these steps; a
    request body of several TLS records whole, its size the server's."""
    env = env_with(pki, cache, DENO_DIR=str(tmp_path / "deno"))
    commands = list(H2_CALLS)
    tr, replies = traced_agent([DENO, "run", "-A", AGENT, str(h2server)], env, cache,
                               commands=commands)
    # the server saw each request over h2, with these many body bytes
    assert replies == [H2_CALLS[c][1] for c in commands]
    s = check_steps(tr, [H2_CALLS[c][0] for c in commands])
    sizes = [int(H2_CALLS[c][1].split()[-1]) for c in commands]
    assert [x["http"]["request"]["body"]["size"] for x in s] == sizes
    assert [x["http"]["request"]["body"]["truncated"] for x in s] == [False] * 4
    assert [x["http"]["response"]["status_code"] for x in s] == [200] * 4
    assert [x["gen_ai"]["response"]["finish_reasons"] for x in s] == [
        ["tool_calls"], ["stop"], ["tool_calls"], ["tool_use"]]
    assert [x["gen_ai"]["response"]["model"] for x in s] == [
        "gpt-4o-2024-08-06"] * 3 + ["claude-sonnet-4-5"]
    assert [x["url"]["path"] for x in s] == ["/v1/chat/completions"] * 3 + ["/v1/messages"]
    assert {x["network"]["capture"] for x in s} == {"tls"}
    # h2 has no Host header: the server is named by :authority, from the HPACK-coded headers
    assert {(x["server"]["address"], x["server"]["port"]) for x in s} == {("localhost", h2server)}
    summary = tr.summary()
    assert " 0 dropped " in summary, summary
    for counter in ("http2_framing_error", "http2_hpack_error", "unknown_protocol",
                    "tls_record_unjoined"):
        assert f" {counter}=0 " in summary, summary
    check_deno_attach(tr)


def static_agent(server, pki, cache, commands):  # noqa: F811
    """The stripped static OpenSSL program as a traced agent, one call per command: the
    target, its finished tracer, and its replies."""
    t = Target([TLS_STATIC, str(server), str(pki / "ca.pem"), "--agent"])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"], env=dict(os.environ,
                                                           AGTRACE_LOCATE_CACHE=str(cache)))
        replies = [t.call(c, timeout=30) for c in commands]
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    return t, tr, replies


def test_static_stripped_openssl_program(server, pki, cache):
    """A C program linked with -static against Debian's libssl.a and stripped: OpenSSL 3's
    ssl_write_internal and ssl_read_internal, located; a request over 16 KiB is whole."""
    t, tr, replies = static_agent(server, pki, cache, ["openai plain", "openai long",
                                                       "anthropic plain"])
    assert replies == ["openai 200 get_weather", "openai 200 get_weather",
                       "anthropic 200 get_weather"]
    s = check_steps(tr, [STEPS[0], STEPS[0], STEPS[2]])
    assert [x["http"]["request"]["body"]["size"] for x in s][1] > 16384
    assert not any(x["http"]["request"]["body"]["truncated"] for x in s)
    (attach,) = tr.events("attach")
    assert attach["message"] == (
        f"4 probe links; TLS: OpenSSL 3 in {os.path.join(ROOT, 'build', 'tests', 'tls_static_stripped')}"
        f" (in the executable); ready in {READY}")
    assert re.search(r"openssl3 located in .*/tls_static_stripped \(scanned, \d+ ms\): "
                     r"ssl_write_internal at 0x[0-9a-f]+, ssl_read_internal at 0x[0-9a-f]+$",
                     located_line(tr))


def test_static_openssl_worker_forked_without_exec(server, pki, cache):
    """A program with OpenSSL linked in forks a worker (no exec: the same executable, probed
    per process) that makes the call: the worker gets the parent's located probes as a
    descendant, and its call is the parent's agent's, exact."""
    t, tr, replies = static_agent(server, pki, cache, ["forked openai plain", "anthropic plain",
                                                       "forked anthropic plain"])
    assert replies == ["openai 200 get_weather", "anthropic 200 get_weather",
                       "anthropic 200 get_weather"]
    s = check_steps(tr, [STEPS[0], STEPS[2], STEPS[2]])
    assert [x["process"]["pid"] for x in s] == [t.pid] * 3
    assert s[1]["process"]["thread"]["id"] == t.pid
    assert s[0]["process"]["thread"]["id"] != t.pid and s[2]["process"]["thread"]["id"] != t.pid


def test_refused_library_is_said_and_not_probed(server, pki, cache):
    """A static OpenSSL program with a second function raising errors as SSL_write: the locator
    refuses; the attach says so, in its summary, and nothing of it is probed."""
    t = Target([os.path.join(ROOT, "build", "tests", "tls_ambig_stripped"), str(server),
                str(pki / "ca.pem"), "--agent"])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--duration", "1"],
                    env=dict(os.environ, AGTRACE_LOCATE_CACHE=str(cache)))
        assert t.call("openai plain", timeout=30) == "openai 200 get_weather"
        assert tr.finish() == 0
    finally:
        t.kill()
    why = ("openssl3 in {}: write: 2 functions raise errors as \"SSL_write\" and 1 as "
           "\"ssl_write_internal\" where exactly one each must.").format(
               os.path.join(ROOT, "build", "tests", "tls_ambig_stripped"))
    attached = [l for l in tr.err_lines if "attached " in l][0]
    assert attached.endswith(f"; TLS not probed (the locator refused): {why} ; Ctrl-C to stop")
    assert f"TLS not probed (the locator refused): {why} " in tr.err_lines[-1]
    assert tr.spans("reasoning_step") == []
    (attach,) = tr.events("attach")
    assert attach["message"] == ("0 probe links; no TLS stack loaded: plaintext HTTP over TCP only; "
                                 f"probes ready in {READY}")


def nm_address(path, name):
    out = subprocess.run(["nm", path], capture_output=True, text=True, check=True).stdout
    (addr,) = [l.split()[0] for l in out.splitlines() if l.endswith(" " + name)]
    return int(addr, 16)


def test_probes_locate_command(cache):
    """`agtrace probes locate`: what was found, where (the unstripped build's symbols say the
    same address), and why; a binary with no TLS is answered, an unreadable path is exit 2."""
    env = dict(os.environ, AGTRACE_LOCATE_CACHE=str(cache))
    r = subprocess.run([os.path.join(ROOT, "agtrace"), "probes", "locate", TLS_STATIC, DENO,
                        "/bin/true"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    full = os.path.join(ROOT, "build", "tests", "tls_static")
    w, rd = nm_address(full, "ssl_write_internal"), nm_address(full, "ssl_read_internal")
    assert out[0] == f"{TLS_STATIC}: openssl3 (function bounds from eh_frame)"
    assert re.fullmatch(rf"  write ssl_write_internal offset 0x[0-9a-f]+  vaddr {w:#x}  size \d+",
                        out[1]), out[1]
    assert out[2] == ("        ssl=rdi buf=rsi num=rdx (size_t); size_t *written in rcx; returns "
                      "> 0 on success, bytes in *written")
    assert out[3].startswith("        evidence: raises errors as \"ssl_write_internal\" (0x")
    assert "; called by SSL_write (0x" in out[3]
    assert re.fullmatch(rf"  read  ssl_read_internal  offset 0x[0-9a-f]+  vaddr {rd:#x}  size \d+",
                        out[4]), out[4]
    assert out[7] == f"{DENO}: aws-lc (function bounds from callgraph)"
    assert re.fullmatch(r"  seal  EVP_AEAD_CTX_seal  offset 0x[0-9a-f]+  vaddr 0x[0-9a-f]+  "
                        r"size \d+", out[8]), out[8]
    assert re.match(r"        evidence: aead.c \(0x[0-9a-f]+\) error sites: reasons 117@\d+, "
                    r"103@\d+, 115 \(OUTPUT_ALIASES_INPUT\); \d+ direct calls", out[10]), out[10]
    assert re.fullmatch(r"  open  EVP_AEAD_CTX_open  offset 0x[0-9a-f]+  vaddr 0x[0-9a-f]+  "
                        r"size \d+", out[11]), out[11]
    assert out[14] == ("/bin/true: no TLS library located: /bin/true has no TLS library's "
                       "error-site strings (ssl/ssl_lib.cc, ssl/ssl_lib.c, SSL_write, SSL_read, "
                       "cipher/aead.c)")
    assert len(out) == 15
    r = run_agtrace("probes", "locate", "/nonexistent")
    assert r.returncode == 2
    assert r.stderr == ("agtrace: error: cannot read /nonexistent: No such file or directory; "
                        "give the path of an executable\n")


def test_deno_found_by_selector(server, pki, cache, tmp_path):
    """`attach --select`: a Deno agent started later is discovered at exec and its TLS located
    (the shipped auto specs), with no PID given."""
    token = f"run{os.getpid()}"
    tr = Tracer(["--select", f"comm=deno,cmdline=*fetch_agent.js*{token}*", "-o", "jsonl"],
                wait=False, env=dict(os.environ, AGTRACE_LOCATE_CACHE=str(cache)))
    tr.wait_for("discovery: 1 selector; 0 running processes matched")
    env = env_with(pki, cache, DENO_DIR=str(tmp_path / "deno"))
    t = Target([DENO, "run", "-A", AGENT, str(server), token], env=env)
    try:
        line = tr.wait_for("discovered PID")
        assert f"discovered PID {t.pid} (deno) by " in line
        assert [t.call(c, timeout=30) for c in COMMANDS] == REPLIES
        t.quit()
    finally:
        t.kill()
    assert tr.interrupt() == 0
    check_steps(tr)
    (att,) = tr.events("attach")
    # (a process caught at exec also gets the library specs' probes on the libssl/libgnutls it
    # might load later: more links than the three located ones)
    assert re.match(r"\d+ probe links; TLS: aws-lc in .*/deno \(in the executable\); .*; "
                    r"discovered \(exec\) by selector ", att["message"]), att["message"]
    assert re.search(rf"PID {att['process']['pid']} \(deno\): aws-lc located in .*/deno ",
                     located_line(tr))
