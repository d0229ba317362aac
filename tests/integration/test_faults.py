"""Small but real (issue 12, item 9): the spool's age is a live gauge, the exit summary counts
every unfinished span it emitted, and no message prints a control character a path (or
anything else from outside) brought in."""
import json
import os
import re
import signal
import time
import urllib.request

from harness import AGTRACE, FIXTURES, NESTED, Target, Tracer, run_agtrace
from test_coding_agents import agent  # noqa: F401  (the scripted coding agent)
from test_durability import FastEs, es_line, field  # noqa: F401
from test_export import fluent  # noqa: F401  (the Fluentd stand-in)
from test_llm import cert, server  # noqa: F401
from test_metrics import free_port, scrape

SPEC = os.path.join(FIXTURES, "nested.json")


def series(text, name):
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", text, re.M)
    assert m, f"{name} not in the scrape"
    return float(m.group(1))


def test_spool_oldest_age_is_updated_while_running(tmp_path):
    es = FastEs(free_port())
    port = free_port()
    age = 'agtrace_spool_oldest_age_seconds{exporter="elasticsearch"}'
    waiting = 'agtrace_spool_bytes{exporter="elasticsearch"}'
    t = Target([NESTED])
    try:
        es.set(mode="reset")  # down: what is handed over waits in the spool
        tr = Tracer(["-p", t.pid, "--probes", SPEC, "-o", "jsonl", "--es",
                     f"http://127.0.0.1:{es.port}", "--spool-dir", tmp_path / "spool",
                     "--metrics", f"127.0.0.1:{port}"])
        t.call("outer 1")
        handed = time.monotonic()
        ages = []
        for _ in range(3):
            time.sleep(1.5)
            ages.append((time.monotonic() - handed, series(scrape(port), age)))
        # The oldest span waiting was handed over right after the attach: its age follows the
        # clock, scrape after scrape (the gauge is refreshed once a second).
        for elapsed, a in ages:
            assert elapsed - 2.5 <= a <= elapsed + 1.5, ages
        assert ages[0][1] < ages[1][1] < ages[2][1]
        es.set(mode="ok")  # back: everything is delivered, nothing waits, no age
        deadline = time.time() + 30
        while time.time() < deadline:
            text = scrape(port)
            if series(text, waiting) == 0 and series(text, age) == 0:
                break
            time.sleep(0.5)
        assert series(text, waiting) == 0 and series(text, age) == 0
        t.quit()
        assert tr.finish(timeout=60) == 0
    finally:
        t.kill()
        es.stop()
    assert field(es_line(tr), "delivered") == len(tr.records)


def unfinished_in_summary(tr):
    return int(re.search(r"emitted \((\d+) unfinished\)", tr.summary()).group(1))


def test_summary_counts_every_unfinished_span(agent, tmp_path):  # noqa: F811
    # A response cut by the agent's death, its conversation; an open function call at SIGINT.
    tr = Tracer(["-p", agent.pid, "-o", "jsonl"])
    assert agent.call("killme") == "streaming"
    time.sleep(1.0)
    agent.p.send_signal(signal.SIGKILL)
    agent.p.wait()
    assert tr.finish() == 0
    unfinished = [r["name"] for r in tr.records if r["status"] == "unfinished"]
    assert sorted(unfinished) == ["chat gpt-4o", "conversation gpt-4o"]
    assert unfinished_in_summary(tr) == 2
    t = Target([NESTED])
    try:
        tr = Tracer(["-p", t.pid, "--probes", SPEC, "-o", "jsonl"])
        assert t.call("jump") == "jump 7"  # thrower never returns
        assert t.call("thread 4") == "thread done"  # thread_body ends in pthread_exit
        t.send("sleep 5000")  # napper is still open at SIGINT
        time.sleep(1.5)
        assert tr.interrupt() == 0
    finally:
        t.kill()
    unfinished = sorted(r["name"] for r in tr.records if r["status"] == "unfinished")
    assert unfinished == ["napper", "thread_body", "thrower"]
    assert unfinished_in_summary(tr) == 3


def test_messages_escape_control_characters(nested, tmp_path):
    bad = tmp_path / "no\nsuch\x1b[31m"
    shown = str(bad).replace("\n", "\\n").replace("\x1b", "\\x1b")
    r = run_agtrace("attach", "-p", nested.pid, "--uprobe", f"{NESTED}:leaf", "--output-file",
                    bad / "x.jsonl", "--duration", "1")
    assert r.returncode == 2
    assert r.stderr == (f"agtrace: error: cannot write {shown}/x.jsonl: No such file or "
                        f"directory; check the folder exists and is writable\n")
    r = run_agtrace("attach", "-p", nested.pid, "--probes", bad / "spec.json")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "\x1b" not in r.stderr
    assert shown in r.stderr
    r = run_agtrace("audit", "verify", bad / "trail.jsonl")
    assert r.returncode == 2
    assert r.stderr == (f"agtrace: error: cannot read audit trail {shown}/trail.jsonl: No such "
                        f"file or directory\n")
    # A file whose name ends in a line break, and a torn line in it: one line said.
    odd = tmp_path / "spans\r\n.jsonl"
    odd.write_text('{"a":1}\n{"b"')
    t = Target([NESTED])
    try:
        tr = Tracer(["-p", t.pid, "--uprobe", f"{NESTED}:leaf", "-o", "jsonl",
                     "--output-file", odd])
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    assert (f"agtrace: warning: {tmp_path}/spans\\r\\n.jsonl ended in a torn line of 4 bytes (a "
            f"write cut short: the run before was killed, or its disk was full); it was cut "
            f"off") in tr.err_lines


UTF8_AGENT = r'''
import os, subprocess, sys
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    if line.strip() == "quit":
        break
    subprocess.run([b"/bin/true", b"caf\xc3", b"\xff\xfeabc", "na\u00efve".encode()])
    print("ran", flush=True)
'''


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    from test_export import EsServer
    es = EsServer(free_port(), tmp_path / "es.json")
    out = tmp_path / "spans.jsonl"
    t = Target(["/usr/bin/python3", "-c", UTF8_AGENT])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--output-file", out, "--es",
                     f"http://127.0.0.1:{es.port}", "--spool-dir", tmp_path / "spool"])
        assert t.call("go") == "ran"
        t.quit()
        assert tr.finish() == 0
        docs = {i: d for idx in es.get("/_test/docs").values() for i, d in idx.items()}
    finally:
        t.kill()
        es.stop()
    data = out.read_bytes()
    text = data.decode("utf-8", errors="strict")  # valid UTF-8, or this raises
    recs = [json.loads(l) for l in text.splitlines()]
    (ex,) = [r for r in recs if r["name"].startswith("exec ")]
    # Each invalid byte (a truncated sequence, two stray bytes) is one U+FFFD; valid text stays.
    assert ex["name"] == "exec /bin/true caf\ufffd \ufffd\ufffdabc na\u00efve"
    replaced = int(re.search(r"output_utf8_replaced=(\d+)", tr.summary()).group(1))
    assert replaced == text.count("\ufffd") > 0
    assert docs[ex["span_id"]] == ex  # Elasticsearch got the same repaired document


def test_invalid_utf8_from_a_model_is_repaired_and_counted_by_every_exporter(
        tmp_path, server, cert, fluent):  # noqa: F811
    """The model's text, read at the TLS boundary, with bytes that are not UTF-8 (a truncated
    sequence, two stray bytes): JSONL, Elasticsearch, the strict OTLP collector (protobuf, which
    refuses a string that is not UTF-8) and Fluentd (msgpack) each get U+FFFD for each, and
    each exporter counts its own replacements, in its summary line and in
    agtrace_export_utf8_replaced_total."""
    from test_export import EsServer
    from test_llm import CLIENT, TOOLS_OPENAI, call
    from test_otlp import Collector, attrs

    port, state, _ = fluent
    es, col, mport = EsServer(free_port(), tmp_path / "es.json"), Collector(), free_port()
    t = Target(["/usr/bin/python3", CLIENT, str(server), str(cert / "cert.pem")])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--es", f"http://127.0.0.1:{es.port}",
                     "--otlp", col.url + "/v1/traces", "--fluentd", f"127.0.0.1:{port}",
                     "--spool-dir", tmp_path / "spool", "--metrics", f"127.0.0.1:{mport}"])
        req = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Weather?"}],
               "tools": TOOLS_OPENAI}
        assert call(t, "a", "/v1/chat/completions", req, "X-Invalid-Utf8=1").startswith(
            "status 200 ")
        time.sleep(2.5)  # the spans delivered, the metrics refreshed
        text = scrape(mport)
        t.quit()
        assert tr.finish(timeout=60) == 0
        docs = {i: d for idx in es.get("/_test/docs").values() for i, d in idx.items()}
        got = col.get()
    finally:
        t.kill()
        es.stop()
        col.p.kill()
        col.p.wait()
    fixed = "Let me check the w\ufffdeather \ufffd\ufffd caf\u00e9."
    (dec,) = [r for r in tr.records if r["trace_type"] == "decision"]
    assert dec["decision"]["reasoning"] == fixed
    jsonl_n = sum(json.dumps(r, ensure_ascii=False).count("\ufffd") for r in tr.records)
    assert jsonl_n == 3  # the text is in the decision only
    assert int(re.search(r"output_utf8_replaced=(\d+)", tr.summary()).group(1)) == 3
    # Elasticsearch: the same repaired document
    assert docs[dec["span_id"]] == dec
    assert sum(json.dumps(d, ensure_ascii=False).count("\ufffd") for d in docs.values()) == 3
    # OTLP: the collector accepted every batch (it answers 400 to a string that is not UTF-8)
    spans = {s["spanId"]: s for s in got["spans"]}
    assert set(spans) == {r["span_id"] for r in tr.records}
    assert attrs(spans[dec["span_id"]]["attributes"])["decision.reasoning"] == fixed
    assert json.dumps(got["spans"], ensure_ascii=False).count("\ufffd") == 3
    # Fluentd
    db = json.loads(state.read_text())
    assert db["records"][dec["span_id"]]["decision"]["reasoning"] == fixed
    # Each exporter's own count, exactly
    for name in ("elasticsearch", "otlp", "fluentd"):
        (line,) = [l for l in tr.err_lines if l.startswith(f"agtrace: {name}:")]
        assert line.endswith(", 0 failed spool writes, 3 invalid UTF-8 sequences replaced"), line
        assert series(text, f'agtrace_export_utf8_replaced_total{{exporter="{name}"}}') == 3
