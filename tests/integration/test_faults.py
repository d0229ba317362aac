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
