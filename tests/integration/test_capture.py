"""What agents really send, captured end to end (root, real BPF, real processes): curl and
libcurl with their defaults (HTTP/2 by ALPN), Go's crypto/tls in normal and stripped builds over
HTTP/2 and HTTP/1.1, a shell agent whose curl children make the calls, an agent that relaunches
itself before its calls, and a process found by --select that calls right after its exec. The
servers answer in OpenAI's wire format: tests/servers/goh2 (h2 and http/1.1) and
tests/servers/llm_server.py (HTTP/1.1)."""
import json
import os
import signal
import subprocess
import time

import pytest
from harness import ROOT, Target, Tracer
from test_llm import cert, server  # noqa: F401  (module fixtures: TLS material, HTTPS server)

BUILD = os.path.join(ROOT, "build", "tests")
GOH2 = os.path.join(BUILD, "goh2")
TOKEN = f"cap{os.getpid()}"  # in selectors: other test runs' processes are not this run's
USAGE = {"input_tokens": 42, "output_tokens": 7, "cache_read": {"input_tokens": 10}}


@pytest.fixture(scope="module")
def h2server(cert):  # noqa: F811
    p = subprocess.Popen([GOH2, cert / "cert.pem", cert / "key.pem"], stdout=subprocess.PIPE,
                         text=True)
    port = int(p.stdout.readline().split()[1])
    yield f"https://localhost:{port}/v1/chat/completions"
    p.kill()
    p.wait()


def env_with_ca(cert):  # noqa: F811
    return dict(os.environ, SSL_CERT_FILE=str(cert / "cert.pem"), SSL_CERT_DIR="/nonexistent")


def body(model, stream=False):
    b = {"model": model, "messages": [{"role": "user", "content": "Weather in Paris?"}]}
    if stream:
        b.update(stream=True, stream_options={"include_usage": True})
    return json.dumps(b, separators=(",", ":"))


def steps(tr):
    return [s for s in tr.spans() if s["trace_type"] == "reasoning_step"]


def assert_exact(tr, pid, models, streams, proto="tls"):
    """Exactly these reasoning steps, in order, each with its model and exact token counts."""
    s = steps(tr)
    assert [x["gen_ai"]["request"]["model"] for x in s] == models, tr.summary()
    for x, model, stream in zip(s, models, streams):
        assert x["name"] == f"chat {model}"
        assert x["status"] == "ok"
        assert x["gen_ai"]["provider"]["name"] == "openai"
        assert x["gen_ai"]["response"]["model"] == model + "-2024-08-06"
        assert x["gen_ai"]["response"]["finish_reasons"] == ["stop"]
        assert x["gen_ai"]["usage"] == USAGE
        assert x["llm"]["stream"] is stream
        assert x["http"]["response"]["status_code"] == 200
        assert x["network"]["capture"] == proto
        assert x["process"]["pid"] == pid
        assert "incomplete" not in x["llm"]
    summary = tr.summary()
    assert " 0 dropped " in summary, summary
    for counter in ("http2_framing_error", "http2_hpack_error", "unknown_protocol",
                    "response_without_request", "http1_resync"):
        assert f" {counter}=0 " in summary, summary


# ---- curl and libcurl with their defaults: HTTP/2 ----

LIBGNUTLS = "/usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3"
LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3"


# Debian's libcurl with OpenSSL maps GnuTLS too (through librtmp): both stacks are found.
@pytest.mark.parametrize("agent,tls", [
    ("curl_agent", f"TLS: GnuTLS in {LIBGNUTLS} (library), OpenSSL in {LIBSSL} (library)"),
    ("curl_agent_gnutls", f"TLS: GnuTLS in {LIBGNUTLS} (library); ready in libssl.so.3"),
])
def test_libcurl_defaults_speak_h2(h2server, cert, agent, tls):  # noqa: F811
    t = Target([os.path.join(BUILD, agent)], env=env_with_ca(cert))
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"])
        replies = [t.call(f"call {h2server} {body('gpt-4o')}"),
                   t.call(f"call {h2server} {body('gpt-4o-mini', True)}"),
                   t.call(f"call {h2server} {body('o3')}")]
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    assert [r.split()[:3] for r in replies] == [["status", "200", "HTTP/2"]] * 3
    (attach,) = tr.events("attach")
    assert attach["message"].split("; ", 1)[1] == tls, attach
    assert_exact(tr, t.pid, ["gpt-4o", "gpt-4o-mini", "o3"], [False, True, False])


def test_curl_cli_defaults_speak_h2(h2server, cert):  # noqa: F811
    """The curl command line, found by --select as it starts, twice."""
    tr = Tracer(["--select", f"comm=curl,cmdline=*{TOKEN}*", "-o", "jsonl"], wait=False)
    tr.wait_for("discovery: 1 selector")
    pids = []
    for model in ("gpt-4o", "gpt-4.1"):
        p = subprocess.run(["curl", "-s", "--cacert", cert / "cert.pem", "-o", "/dev/null",
                            "-w", "%{http_code} %{http_version}", "-H",
                            "Content-Type: application/json", "-d", body(model),
                            f"{h2server}?{TOKEN}"], capture_output=True, text=True, timeout=30)
        assert p.stdout == "200 2"
        pids.append(int(tr.wait_for("discovered PID ").split("discovered PID ")[1].split()[0]))
    time.sleep(0.5)
    assert tr.interrupt() == 0
    s = steps(tr)
    assert [(x["gen_ai"]["request"]["model"], x["process"]["pid"]) for x in s] == [
        ("gpt-4o", pids[0]), ("gpt-4.1", pids[1])]
    for x in s:
        assert x["gen_ai"]["usage"] == USAGE
        assert x["gen_ai"]["response"]["model"] == x["gen_ai"]["request"]["model"] + \
            "-2024-08-06"


# ---- Go's crypto/tls ----

@pytest.mark.parametrize("build", ["gotls", "gotls-stripped"])
@pytest.mark.parametrize("http1", [False, True])
def test_go_crypto_tls(h2server, cert, build, http1):  # noqa: F811
    exe = os.path.join(BUILD, build)
    t = Target([exe] + (["-http1"] if http1 else []), env=env_with_ca(cert))
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"])
        replies = [t.call(f"call {h2server} {body('gpt-4o')}"),
                   t.call(f"call {h2server} {body('gpt-4o-mini', True)}"),
                   t.call(f"call {h2server} {body('o3')}")]
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    proto = "HTTP/1.1" if http1 else "HTTP/2.0"
    assert [r.split()[:3] for r in replies] == [["status", "200", proto]] * 3
    (attach,) = tr.events("attach")
    assert f"; TLS: Go crypto/tls in {exe} (Go binary)" in attach["message"], attach
    assert_exact(tr, t.pid, ["gpt-4o", "gpt-4o-mini", "o3"], [False, True, False])


# ---- children, relaunches, processes found at exec ----

def test_shell_agent_spawning_curl(h2server, cert):  # noqa: F811
    """Attached by PID to a shell that runs one curl per call, in a subshell: the calls are made
    by its grandchildren, through a TLS library the shell itself never maps (probed ahead, in
    its library folders), and belong to the shell."""
    t = Target(["/bin/sh", os.path.join(ROOT, "tests", "targets", "shell_agent.sh")],
               env=env_with_ca(cert))
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"])
        replies = [t.call(f"call {h2server} {body(m)}", timeout=30) for m in ("gpt-4o", "o1")]
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    assert replies == ["status 200 2"] * 2
    (attach,) = tr.events("attach")
    assert attach["message"].startswith("0 probe links; no TLS stack loaded: plaintext HTTP over "
                                        "TCP only; probes ready in "), attach
    assert "libssl.so.3" in attach["message"]
    assert_exact(tr, t.pid, ["gpt-4o", "o1"], [False, False])
    curls = [r for r in tr.records if r["name"].startswith("exec curl ")]
    assert len(curls) == 2
    for c, x in zip(curls, steps(tr)):
        assert c["process"]["pid"] != t.pid and x["process"]["thread"]["id"] == \
            c["process"]["pid"]


def exec_stops(tr):
    """(stopped, resumed, gone) from the summary's exec stop line."""
    (line,) = [l for l in tr.err_lines if "exec stops: " in l]
    w = line.split("exec stops: ")[1].split()
    return int(w[0]), int(w[w.index("resumed,") - 1]), int(w[w.index("gone") - 1])


@pytest.mark.parametrize("build", ["gotls", "gotls-stripped"])
def test_shell_agent_spawning_go(h2server, cert, build):  # noqa: F811
    """Attached by PID to a shell that runs a Go program per call, which calls at once: its
    crypto/tls lives in its own executable, which nothing has probed when it is exec'd. The
    kernel stops it at exec until agtrace has probed the file; agtrace is itself stopped while
    the shell runs the first one, so without that stop the call would be long over, unseen. The
    second run of the same binary is not stopped (the file is known)."""
    exe = os.path.join(BUILD, build)
    t = Target(["/bin/sh", os.path.join(ROOT, "tests", "targets", "shell_agent.sh")],
               env=dict(env_with_ca(cert), GOTLS=exe))
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"])
        tr.p.send_signal(signal.SIGSTOP)
        try:
            t.send(f"gocall {h2server} {body('gpt-4o')}")
            time.sleep(0.5)  # a Go call takes a few ms: it would be over by now
        finally:
            tr.p.send_signal(signal.SIGCONT)
        replies = [t.read(timeout=30), t.call(f"gocall {h2server} {body('o1')}", timeout=30)]
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    assert [r.split()[:3] for r in replies] == [["status", "200", "HTTP/2.0"]] * 2
    assert_exact(tr, t.pid, ["gpt-4o", "o1"], [False, False])
    gos = [r for r in tr.records if r["name"].startswith(f"exec {exe} -call ")]
    assert len(gos) == 2
    for g, x in zip(gos, steps(tr)):  # the call of that Go process (one of its threads)
        assert g["process"]["pid"] != t.pid and x["process"]["thread"]["id"] != t.pid
    # The shell's own execs (the Go program, nothing else: the subshells do not exec) stop once
    # per file: the first Go run only.
    assert exec_stops(tr) == (1, 1, 0), tr.err_lines


def children(pid):
    kids = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            kids += [int(k) for k in f.read().split()]
    return kids


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def test_exec_stop_survives_a_killed_agtrace():
    """The kernel stops a traced process at exec of a file agtrace has not looked at, and
    agtrace resumes it. Killed meanwhile (SIGKILL: none of its own cleanup runs), agtrace cannot;
    its guard, a child that holds only the kernel's list of stopped processes, then resumes it,
    and is gone."""
    script = "echo ready $$; while read c; do [ $c = run ] || exit; /bin/sleep 0; echo ran; done"
    t = Target(["/bin/sh", "-c", script])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"])
        deadline = time.time() + 5
        while not (guards := [k for k in children(tr.p.pid) if comm(k) == "agtrace-guard"]):
            assert time.time() < deadline, "agtrace started no guard"
            time.sleep(0.05)
        (guard,) = guards
        tr.p.send_signal(signal.SIGSTOP)  # it cannot resume what the kernel stops now
        t.send("run")
        deadline = time.time() + 10
        while not [k for k in children(t.pid) if proc_state(k) == "T"]:
            assert time.time() < deadline, "the shell's child was never stopped at exec"
            time.sleep(0.05)
        tr.p.kill()
        tr.p.wait(timeout=10)
        assert t.read(timeout=10) == "ran"
        deadline = time.time() + 10
        while proc_state(guard) not in (None, "Z"):
            assert time.time() < deadline, "the guard outlived agtrace"
            time.sleep(0.05)
        t.quit()
    finally:
        t.kill()


def test_agent_relaunching_itself(server, cert):  # noqa: F811
    """An agent CLI that relaunches itself as a child process, which makes the calls."""
    t = Target(["/usr/bin/python3", os.path.join(ROOT, "tests", "targets", "llm_client.py"),
                str(server), str(cert / "cert.pem"), "--relaunch"])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"])
        t.send("go")
        child = int(t.read().split()[1])
        assert child != t.pid
        replies = [t.call(f"call a POST /v1/chat/completions {body(m, m == 'gpt-4o-mini')}")
                   for m in ("gpt-4o", "gpt-4o-mini")]
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    assert [r.split()[:2] for r in replies] == [["status", "200"]] * 2
    attaches = [(e["process"]["pid"], e["message"].split(";")[-1].strip())
                for e in tr.events("attach ")]
    # The child is caught at its exec (it is followed from its fork, and the files the parent
    # maps are probed already), then loads libssl.
    assert attaches == [(t.pid, "ready in libgnutls.so.30.34.3"),
                        (child, "a relaunch of its target's program"),
                        (child, f"5 more probe links: {LIBSSL} loaded")], attaches
    # The child's calls are its target's.
    assert_exact(tr, t.pid, ["gpt-4o", "gpt-4o-mini"], [False, True])
    assert {x["process"]["thread"]["id"] for x in steps(tr)} == {child}


def test_selected_process_calling_right_after_exec(server, cert):  # noqa: F811
    """A process found by --select is traced from its first instruction: it makes its call right
    after its exec while agtrace is stopped (SIGSTOP), so before agtrace has looked at it or
    attached anything for it; once agtrace goes on and matches it, the call is there, whole.
    Three such processes, each exact."""
    quick = os.path.join(BUILD, "quick_call")
    tr = Tracer(["--select", f"comm=quick_call,cmdline=*{TOKEN}*", "-o", "jsonl"], wait=False)
    tr.wait_for("discovery: 1 selector")
    # Its first exec makes its file known (it is stopped at that exec while agtrace looks at
    # it): the runs below, made while agtrace is stopped, are not held up.
    subprocess.run([quick], capture_output=True, timeout=30)
    pids, after = [], []
    for i in range(3):
        tr.p.send_signal(signal.SIGSTOP)
        try:
            env = dict(os.environ, AGT_T0_NS=str(time.monotonic_ns()))
            p = subprocess.Popen([quick, str(server), cert / "cert.pem", f"m-{i}-{TOKEN}"],
                                 env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True)
            out = p.stdout.readline().split()  # its call is over
            assert out[:3] == ["status", "200", "after"], out
            after.append(int(out[3]))
        finally:
            tr.p.send_signal(signal.SIGCONT)
        pids.append(int(tr.wait_for("discovered PID ").split("discovered PID ")[1].split()[0]))
        assert pids[-1] == p.pid
        p.stdin.close()
        assert p.wait(timeout=10) == 0
    time.sleep(0.5)
    assert tr.interrupt() == 0
    s = steps(tr)
    assert [(x["gen_ai"]["request"]["model"], x["process"]["pid"]) for x in s] == [
        (f"m-{i}-{TOKEN}", pids[i]) for i in range(3)]
    for x in s:
        assert x["gen_ai"]["usage"] == USAGE
        assert x["gen_ai"]["response"]["model"] == x["gen_ai"]["request"]["model"] + \
            "-2024-08-06"
        assert x["status"] == "ok"
    assert " 0 dropped " in tr.summary()
    print(f"call began {after} us after exec (their launcher's clock, on this machine)")


@pytest.mark.parametrize("build", ["gotls", "gotls-stripped"])
def test_selected_go_process_calling_right_after_exec(h2server, cert, build):  # noqa: F811
    """A Go process found by --select whose call comes a few ms after its exec, made while
    agtrace is stopped: its executable (its TLS stack) is probed by nobody yet, so the kernel
    stops it at exec until agtrace, going on, has matched it and probed the file. Then a second
    one, of the file now known: not stopped, and exact too."""
    exe = os.path.join(BUILD, build)
    tr = Tracer(["--select", f"exe={exe},cmdline=*{TOKEN}*", "-o", "jsonl"], wait=False)
    tr.wait_for("discovery: 1 selector")
    pids, outs = [], []
    for i in range(2):
        tr.p.send_signal(signal.SIGSTOP)
        try:
            p = subprocess.Popen([exe, "-call", f"{h2server}?{TOKEN}", "-body",
                                  body(f"g-{i}-{TOKEN}")], env=env_with_ca(cert),
                                 stdout=subprocess.PIPE, text=True)
            time.sleep(0.5)  # long enough for its call, were it running
        finally:
            tr.p.send_signal(signal.SIGCONT)
        outs.append(p.stdout.readline().split()[:3])
        assert p.wait(timeout=10) == 0
        pids.append(int(tr.wait_for("discovered PID ").split("discovered PID ")[1].split()[0]))
        assert pids[-1] == p.pid
    time.sleep(0.5)
    assert tr.interrupt() == 0
    assert outs == [["status", "200", "HTTP/2.0"]] * 2
    s = steps(tr)
    assert [(x["gen_ai"]["request"]["model"], x["process"]["pid"]) for x in s] == [
        (f"g-{i}-{TOKEN}", pids[i]) for i in range(2)]
    for x in s:
        assert x["gen_ai"]["usage"] == USAGE
        assert x["gen_ai"]["response"]["model"] == x["gen_ai"]["request"]["model"] + \
            "-2024-08-06"
        assert x["status"] == "ok"
        assert "incomplete" not in x["llm"]
    assert " 0 dropped " in tr.summary()
    stopped, resumed, gone = exec_stops(tr)
    # Other processes of the machine exec'd meanwhile may have been stopped once too (their
    # files unknown): every one was resumed.
    assert stopped >= 1 and resumed == stopped and gone == 0, tr.err_lines


# ---- probe limits, shutdown, open files ----

def test_spec_over_the_limits_is_refused_before_any_link(server, cert):  # noqa: F811
    """Every function of libcrypto (over 5,000: more probes than agtrace allows) is refused with
    one sentence before a single link is made, so the refusal is quick and leaves nothing
    behind."""
    t = Target(["/usr/bin/python3", os.path.join(ROOT, "tests", "targets", "llm_client.py"),
                str(server), str(cert / "cert.pem")])
    try:
        t0 = time.monotonic()
        r = subprocess.run([os.path.join(ROOT, "agtrace"), "attach", "-p", str(t.pid),
                            "--uprobe", "libcrypto.so*:*"], capture_output=True, text=True,
                           timeout=60)
        took = time.monotonic() - t0
    finally:
        t.kill()
    nfuncs = len([l for l in subprocess.check_output(
        ["nm", "-D", "--defined-only", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"],
        text=True).splitlines() if " T " in l or " i " in l])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("agtrace: error: --uprobe libcrypto.so*:* on "
                               "/usr/lib/x86_64-linux-gnu/libcrypto.so.3 (PID "), lines
    assert f" would need {2 * nfuncs} probe links for {nfuncs} functions ({nfuncs} new probes), "\
           "over agtrace's limits: 4096 probes (0 in use), 20000 links (" in lines[0], lines
    assert lines[0].endswith("; nothing of it was attached: narrow its symbol globs"), lines
    assert took < 15, took


def fds_of(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_two_hundred_targets_cost_links_once_and_stop_quickly():
    """200 processes found by --select, all mapping libssl: the links on libssl are made once
    (not per process), open files follow the live targets (a pidfd each) and fall when they
    exit, and SIGINT ends the run in a few seconds."""
    quick = os.path.join(BUILD, "quick_call")
    tag = f"idle-{TOKEN}"
    tr = Tracer(["--select", f"comm=quick_call,cmdline=*{tag}*", "--forget-after", "1",
                 "-o", "jsonl"], wait=False)
    tr.wait_for("discovery: 1 selector")
    before = fds_of(tr.p.pid)
    procs = []
    try:
        for _ in range(200):
            procs.append(subprocess.Popen([quick, "--idle", tag], stdin=subprocess.PIPE))
        seen = 0
        while seen < 200:
            tr.wait_for("discovered PID ", timeout=60)
            seen += 1
        time.sleep(1)
        live = fds_of(tr.p.pid)
        # A pidfd per target, and the links of libssl, libgnutls (ahead) and the dynamic
        # loader once: 10 + 6 + 1.
        assert live - before <= 200 + 17 + 10, (before, live)
        for p in procs[:100]:
            p.stdin.close()
            p.wait(timeout=10)
        time.sleep(3)  # gone, then forgotten (--forget-after 1)
        half = fds_of(tr.p.pid)
        assert half - before <= 100 + 17 + 10, (before, live, half)
        t0 = time.monotonic()
        assert tr.interrupt(timeout=30) == 0
        took = time.monotonic() - t0
    finally:
        for p in procs:
            if p.poll() is None:
                p.stdin.close()
                p.wait(timeout=10)
    assert took < 5, took
    assert len([e for e in tr.events("attach quick_call") if "discovered" in e["message"]]) == 200
