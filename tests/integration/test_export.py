"""The Elasticsearch exporter against a strict _bulk test server with injected faults: every
span emitted ends up in the store exactly once (or counted as lost), through outages, 429
storms, partial failures, mapping errors and a stop while the store is down."""
import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest
from harness import FIXTURES, NESTED, ROOT, Target, Tracer

ES = os.path.join(ROOT, "tests", "servers", "es_server.py")
SPEC = os.path.join(FIXTURES, "nested.json")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EsServer:
    def __init__(self, port, state):
        self.port = port
        self.state = state
        self.start()

    def start(self):
        self.p = subprocess.Popen(["/usr/bin/python3", ES, str(self.port), str(self.state)],
                                  stdout=subprocess.PIPE, text=True)
        assert self.p.stdout.readline().startswith("listening")

    def stop(self):
        self.p.kill()
        self.p.wait()

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
            return json.load(r)

    def fault(self, mode):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/_test/fault",
                                     data=json.dumps({"mode": mode}).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def docs(self):
        return {i: d for idx in self.get("/_test/docs").values() for i, d in idx.items()}


@pytest.fixture
def es(tmp_path):
    s = EsServer(free_port(), tmp_path / "es-state.json")
    yield s
    s.stop()


def run_nested(tmp_path, exporter_args, n_outer, during=None, during_at=None):
    """The nested target making n_outer calls (4 spans each) traced with exporter_args;
    during() runs after call during_at (default: after the last)."""
    t = Target([NESTED])
    try:
        tr = Tracer(["-p", t.pid, "--probes", SPEC, "-o", "jsonl", "--spool-dir",
                     tmp_path / "spool", *exporter_args])
        for i in range(n_outer):
            t.call(f"outer {i}")
            if during and i == (n_outer - 1 if during_at is None else during_at):
                during()
        t.quit()
        assert tr.finish(timeout=120) == 0
    finally:
        t.kill()
    return tr


def trace_calls(es, tmp_path, n_outer, during=None, extra=()):
    return run_nested(tmp_path, ["--es", f"http://127.0.0.1:{es.port}", "--es-install-template",
                                 *extra], n_outer, during, n_outer // 2)


def es_line(tr):
    return [l for l in tr.err_lines if l.startswith("agtrace: elasticsearch:")][0]


def test_every_span_exactly_once(es, tmp_path):
    tr = trace_calls(es, tmp_path, 50)
    docs = es.docs()
    assert len(tr.records) == 50 * 4 + 2  # 4 spans per outer call, attach and exit
    assert set(docs) == {r["span_id"] for r in tr.records}
    for r in tr.records:
        assert docs[r["span_id"]] == r
    assert list(es.get("/_test/docs")) == ["agentic-traces"]  # the data stream
    stats = es.get("/_test/stats")
    assert stats["templates"] == ["agentic-traces"] and stats["ilm"] == ["agentic-traces"]
    leaf = [r for r in tr.records if r["name"] == "leaf leaf"][0]
    start_ns = leaf["event"]["duration"]
    assert leaf["trace"] == {"id": leaf["trace_id"]} and leaf["span"] == {"id": leaf["span_id"]}
    assert leaf["parent"] == {"id": leaf["parent_span_id"]}
    assert leaf["event"]["outcome"] == "success"
    assert leaf["event"]["start"] == leaf["@timestamp"] and leaf["event"]["end"] == leaf["end_time"]
    assert abs(start_ns / 1e6 - leaf["duration_ms"]) < 0.001  # nanoseconds
    assert leaf["service"] == {"name": "nested"} and leaf["ecs"] == {"version": "8.11.0"}
    assert leaf["agent"] == {"type": "agtrace", "version": "0.1.0"}
    # What was installed is deploy/elasticsearch's files, byte for byte as JSON.
    assets = es.get("/_test/assets")
    with open(os.path.join(ROOT, "deploy", "elasticsearch", "index-template.json")) as f:
        assert assets["templates"]["agentic-traces"] == json.load(f)
    with open(os.path.join(ROOT, "deploy", "elasticsearch", "ilm-policy.json")) as f:
        assert assets["ilm"]["agentic-traces"] == json.load(f)
    assert "202 queued, 202 delivered, 0 retried, 0 dead-lettered" in es_line(tr)


def test_outage_spools_and_replays_in_order(es, tmp_path):
    def outage():
        es.stop()
        time.sleep(3)

    def back():
        es.start()

    t = Target([NESTED])
    try:
        tr = Tracer(["-p", t.pid, "--probes", SPEC, "-o", "jsonl", "--es",
                     f"http://127.0.0.1:{es.port}", "--spool-dir", tmp_path / "spool",
                     "--spool-max-bytes", str(64 << 20)])
        for i in range(100):
            t.call(f"outer {i}")
        outage()
        for i in range(100, 700):  # 2,400 spans while Elasticsearch is down
            t.call(f"outer {i}")
        time.sleep(1)
        assert any(f.startswith("spool-") for f in os.listdir(tmp_path / "spool"))
        back()
        for i in range(700, 750):
            t.call(f"outer {i}")
        t.quit()
        assert tr.finish(timeout=120) == 0
    finally:
        t.kill()
    docs = es.docs()
    assert len(tr.records) == 750 * 4 + 2
    assert set(docs) == {r["span_id"] for r in tr.records}  # every span, once (ids are keys)
    line = es_line(tr)
    assert "3002 queued, 3002 delivered" in line and "0 lost (spool full)" in line
    assert "0 bytes waiting" in line
    assert not [f for f in os.listdir(tmp_path / "spool") if f.startswith("spool-")]


def test_429_storm_and_partial_failures(es, tmp_path):
    es.fault("partial")  # 30% of items 429, 10% 503
    tr = trace_calls(es, tmp_path, 100)
    docs = es.docs()
    assert set(docs) == {r["span_id"] for r in tr.records}
    stats = es.get("/_test/stats")
    assert stats["items_429"] > 0 and stats["items_503"] > 0
    line = es_line(tr)
    assert "402 delivered" in line
    retried = int(line.split(" retried")[0].split()[-1])
    assert retried == stats["items_429"] + stats["items_503"]


def test_backlog_in_parallel_requests_with_item_failures(es, tmp_path):
    """A backlog (2,400 spans spooled while Elasticsearch was down) goes out in windows of
    several bulk requests in flight at once; items answered 429/503 in any of them are retried
    and each span still arrives exactly once."""
    t = Target([NESTED])
    try:
        tr = Tracer(["-p", t.pid, "--probes", SPEC, "-o", "jsonl", "--es",
                     f"http://127.0.0.1:{es.port}", "--spool-dir", tmp_path / "spool"])
        es.stop()
        for i in range(600):
            t.call(f"outer {i}")
        time.sleep(1)
        es.start()
        es.fault("partial")  # 30% of items 429, 10% 503
        t.quit()
        assert tr.finish(timeout=180) == 0
    finally:
        t.kill()
    docs = es.docs()
    assert len(tr.records) == 600 * 4 + 2
    assert set(docs) == {r["span_id"] for r in tr.records}
    for r in tr.records:
        assert docs[r["span_id"]] == r
    stats = es.get("/_test/stats")
    assert stats["items_429"] > 0 and stats["items_503"] > 0
    line = es_line(tr)
    assert "2402 queued, 2402 delivered" in line and "0 dead-lettered" in line
    retried = int(line.split(" retried")[0].split()[-1])
    assert retried >= stats["items_429"] + stats["items_503"]  # and the outage's attempts


def test_mapping_errors_go_to_the_dead_letter_file(es, tmp_path, nested):
    es.fault("mapping")  # rejects documents whose status is "error", as a mapping error would
    dead = tmp_path / "dead.ndjson"
    tr = Tracer(["-p", nested.pid, "--probes", SPEC, "-o", "jsonl", "--es",
                 f"http://127.0.0.1:{es.port}", "--spool-dir", tmp_path / "spool",
                 "--dead-letter", dead])
    nested.call("outer 1")
    nested.send("exit 3")  # the exit event has status "error"
    nested.p.wait(timeout=10)
    assert tr.finish() == 0
    (exit_ev,) = tr.events("exit")
    assert exit_ev["status"] == "error"
    docs = es.docs()
    assert set(docs) == {r["span_id"] for r in tr.records} - {exit_ev["span_id"]}
    (line,) = dead.read_text().splitlines()
    d = json.loads(line)
    assert d["reason"] == {"type": "mapper_parsing_exception",
                           "reason": "injected mapper_parsing_exception"}
    assert d["action"] == {"create": {"_index": "agentic-traces", "_id": exit_ev["span_id"]}}
    assert d["document"] == exit_ev
    assert "1 dead-lettered" in es_line(tr)


def test_stop_while_down_persists_then_next_run_delivers(es, tmp_path):
    spool = tmp_path / "spool"
    es.stop()
    t = Target([NESTED])
    try:
        tr = Tracer(["-p", t.pid, "--probes", SPEC, "-o", "jsonl", "--es",
                     f"http://127.0.0.1:{es.port}", "--spool-dir", spool, "--es-drain-seconds", "2"])
        for i in range(30):
            t.call(f"outer {i}")
        assert tr.interrupt(timeout=60) == 0
    finally:
        t.kill()
    ids = {r["span_id"] for r in tr.records}
    assert "0 delivered" in es_line(tr) and f"{len(ids)} spooled" in es_line(tr)
    spooled = [f for f in os.listdir(spool) if f.startswith("spool-")]
    assert spooled
    es.start()
    t2 = Target([NESTED])
    try:
        tr2 = Tracer(["-p", t2.pid, "--uprobe", f"{NESTED}:leaf", "-o", "jsonl", "--es",
                      f"http://127.0.0.1:{es.port}", "--spool-dir", spool])
        t2.quit()
        assert tr2.finish(timeout=60) == 0
    finally:
        t2.kill()
    docs = es.docs()
    assert ids <= set(docs)
    assert set(docs) == ids | {r["span_id"] for r in tr2.records}


def test_spool_stays_within_its_bound_and_counts_what_it_drops(es, tmp_path):
    spool = tmp_path / "spool"
    es.stop()  # down for the whole run
    t = Target([NESTED])
    try:
        tr = Tracer(["-p", t.pid, "--probes", SPEC, "-o", "jsonl", "--es",
                     f"http://127.0.0.1:{es.port}", "--spool-dir", spool,
                     "--spool-max-bytes", "65536", "--es-drain-seconds", "1"])
        for i in range(500):  # 2,000 spans of ~700 bytes: far more than 64 KiB
            t.call(f"outer {i}")
        t.quit()
        assert tr.finish(timeout=60) == 0
    finally:
        t.kill()
    size = sum(os.path.getsize(spool / f) for f in os.listdir(spool) if f.startswith("spool-"))
    assert 0 < size <= 65536
    line = es_line(tr)
    spooled = int(line.split(" spooled")[0].split()[-1])
    lost = int(line.split(" lost (spool full)")[0].split()[-1])
    assert lost > 0
    assert spooled + lost == len(tr.records)  # every span is in the spool or counted as lost


def test_api_key_from_the_environment(es, tmp_path, nested):
    env = dict(os.environ, AGTRACE_ES_API_KEY="a2V5OnNlY3JldA==")
    tr = Tracer(["-p", nested.pid, "--uprobe", f"{NESTED}:leaf", "-o", "jsonl", "--es",
                 f"http://127.0.0.1:{es.port}", "--spool-dir", tmp_path / "spool"], env=env)
    nested.call("outer 1")
    nested.quit()
    assert tr.finish() == 0
    assert es.get("/_test/stats")["authorization"] == "ApiKey a2V5OnNlY3JldA=="
    assert "a2V5OnNlY3JldA==" not in "".join(tr.out) + "".join(tr.err_lines)


def test_credentials_stay_with_their_exporter(es, tmp_path, nested):
    """Elasticsearch's API key, user and password (from the environment and the command line)
    go to Elasticsearch only: the OTLP collector traced alongside sees no credential at all,
    in a run with both exporters and in one with OTLP alone."""
    col = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "tests/servers/otlp_server.py")],
                           stdout=subprocess.PIPE, text=True)
    cport = int(col.stdout.readline().split()[1])
    env = dict(os.environ, AGTRACE_ES_API_KEY="a2V5OnNlY3JldA==", AGTRACE_ES_PASSWORD="pw-es-0")
    try:
        for both in (True, False):
            args = ["-p", nested.pid, "--uprobe", f"{NESTED}:leaf", "-o", "jsonl",
                    "--otlp", f"http://127.0.0.1:{cport}", "--es-user", "elastic",
                    "--spool-dir", tmp_path / f"spool-{both}"]
            if both:
                args += ["--es", f"http://127.0.0.1:{es.port}"]
            tr = Tracer(args, env=env)
            nested.call("outer 1")
            tr.interrupt()
            with urllib.request.urlopen(f"http://127.0.0.1:{cport}/_test/spans", timeout=5) as r:
                got = json.load(r)
            assert got["requests"] >= 1
            assert got["authorization"] == []
        assert es.get("/_test/stats")["authorization"] == "ApiKey a2V5OnNlY3JldA=="
    finally:
        col.kill()


def test_otlp_traces_to_a_collector(tmp_path):
    from test_agent import AGENT
    from test_llm import PY

    col = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "tests/servers/otlp_server.py")],
                           stdout=subprocess.PIPE, text=True)
    cport = int(col.stdout.readline().split()[1])
    llm = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "tests/servers/llm_server.py"),
                            "--plain"], stdout=subprocess.PIPE, text=True)
    lport = int(llm.stdout.readline().split()[1])

    def collector(path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{cport}{path}",
                                     data=json.dumps(body).encode() if body else None,
                                     method="POST" if body else "GET")
        return json.load(urllib.request.urlopen(req, timeout=5))

    t = Target([PY, os.path.join(ROOT, "tests/targets/llm_client.py"), str(lport), "--plain"])
    try:
        collector("/_test/fault", {"mode": "503"})  # the collector starts out unavailable
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--otlp", f"http://127.0.0.1:{cport}",
                     "--spool-dir", tmp_path / "spool"])
        t.call("call a POST /v1/chat/completions " + json.dumps(
            {"model": "qwen", "messages": [{"role": "user", "content": "hi"}],
             "tools": [{"type": "function", "function": {"name": "get_weather"}}]}))
        time.sleep(1)
        collector("/_test/fault", {"mode": "ok"})
        t.call("call a POST /v1/chat/completions " + json.dumps(
            {"model": "qwen", "messages": [{"role": "user", "content": "hi"},
                                           {"role": "tool", "tool_call_id": "call_weather_1",
                                            "content": "18C"}]}))
        t.quit()
        assert tr.finish(timeout=60) == 0
        got = collector("/_test/spans")
    finally:
        t.kill()
        col.kill()
        llm.kill()
    spans = {s["spanId"]: s for s in got["spans"]}
    assert set(spans) == {r["span_id"] for r in tr.records}  # every span, once
    assert got["requests"] >= 2  # the 503 was retried
    line = [l for l in tr.err_lines if l.startswith("agtrace: otlp:")][0]
    assert "0 dead-lettered" in line and "0 lost" in line
    steps = [r for r in tr.records if r["trace_type"] == "reasoning_step"]
    s0 = spans[steps[0]["span_id"]]
    attrs = {a["key"]: a["value"] for a in s0["attributes"]}
    assert s0["kind"] == 3 and s0["name"] == "chat qwen"
    assert attrs["gen_ai.request.model"] == {"stringValue": "qwen"}
    assert attrs["gen_ai.usage.input_tokens"] == {"intValue": "42"}
    assert attrs["gen_ai.response.finish_reasons"] == {"arrayValue": {"values": [
        {"stringValue": "tool_calls"}]}}
    assert attrs["trace_type"] == {"stringValue": "reasoning_step"}
    assert s0["traceId"] == steps[0]["trace_id"]
    assert s0["parentSpanId"] == steps[0]["parent_span_id"]
    tool = [r for r in tr.records if r["trace_type"] == "tool_call"][0]
    tattrs = {a["key"]: a["value"] for a in spans[tool["span_id"]]["attributes"]}
    assert tattrs["gen_ai.tool.name"] == {"stringValue": "get_weather"}
    assert tattrs["gen_ai.tool.call.result"] == {"stringValue": "18C"}


@pytest.fixture
def fluent(tmp_path):
    state, mode = tmp_path / "fluent.json", tmp_path / "fluent.mode"
    p = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "tests/servers/fluent_server.py"),
                          str(state), str(mode)], stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().split()[1])
    yield port, state, mode
    p.kill()
    p.wait()


def fluent_run(port, tmp_path, n, during=None):
    return run_nested(tmp_path, ["--fluentd", f"127.0.0.1:{port}", "--fluentd-tag",
                                 "agent.spans"], n, during)


def test_fluentd_forward_with_acks(fluent, tmp_path):
    port, state, _ = fluent
    tr = fluent_run(port, tmp_path, 25)
    db = json.loads(state.read_text())
    assert db["tags"] == ["agent.spans"]
    assert set(db["records"]) == {r["span_id"] for r in tr.records}
    for r in tr.records:
        assert db["records"][r["span_id"]] == r
    assert db["acked"] == db["messages"]
    line = [l for l in tr.err_lines if l.startswith("agtrace: fluentd:")][0]
    assert "102 queued, 102 delivered, 0 retried" in line


def test_fluentd_without_acks_is_retried_until_acked(fluent, tmp_path):
    port, state, mode = fluent
    mode.write_text("noack")  # Fluentd takes the messages but never acknowledges them

    def ack_again():
        time.sleep(4)
        mode.write_text("ok")

    tr = fluent_run(port, tmp_path, 10, during=ack_again)
    db = json.loads(state.read_text())
    assert set(db["records"]) == {r["span_id"] for r in tr.records}  # at least once: all there
    assert db["messages"] > db["acked"] >= 1  # unacknowledged sends were sent again
    line = [l for l in tr.err_lines if l.startswith("agtrace: fluentd:")][0]
    assert "42 delivered" in line and "0 lost" in line
    assert int(line.split(" retried")[0].split()[-1]) > 0


def test_run_with_a_config_file(es, tmp_path, nested):
    out = tmp_path / "spans.jsonl"
    cfg = tmp_path / "agtrace.json"
    cfg.write_text(json.dumps({
        "targets": {"pids": [nested.pid]},
        "uprobes": [f"{NESTED}:leaf"],
        "output": {"format": "jsonl", "file": str(out)},
        "elasticsearch": {"url": f"http://127.0.0.1:{es.port}", "drain_seconds": 5},
        "spool": {"dir": str(tmp_path / "spool"), "max_bytes": 1048576},
        "sample": ["func=1"],
    }))
    from harness import AGTRACE
    p = subprocess.Popen([AGTRACE, "run", "--config", str(cfg)], stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        if "attached " in line:
            break
    nested.call("outer 2")
    nested.quit()
    assert p.wait(timeout=30) == 0
    recs = [json.loads(l) for l in out.read_text().splitlines()]
    assert [r["name"] for r in recs if r["trace_type"] == "tool_call"] == ["leaf", "leaf"]
    assert set(es.docs()) == {r["span_id"] for r in recs}


def test_run_config_errors(tmp_path):
    from harness import run_agtrace
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"targets": {"pids": [1]}, "elasticsearch": {"urll": "x"}}))
    r = run_agtrace("run", "--config", cfg)
    assert r.returncode == 2
    at = cfg.read_text().index('"urll"') + 1  # the line and column of the culprit key
    assert r.stderr == (f"agtrace: error: {cfg}:1:{at}: $.elasticsearch.urll: unknown key; see the "
                        f"configuration section of the README\n")
    cfg.write_text(json.dumps({"output": {"format": "jsonl"}}))
    r = run_agtrace("run", "--config", cfg)
    assert r.returncode == 2
    assert r.stderr == (f"agtrace: error: {cfg}:1:1: $.targets: must name processes: \"pids\": "
                        f"[N...] and/or \"select\": [{{\"comm\": \"python3*\", \"cmdline\": "
                        f"\"*agent*\"}}]; see the configuration section of the README\n")
    cfg.write_text(json.dumps({"targets": {"select": [{"comm": "x", "lables": {}}]}}))
    r = run_agtrace("run", "--config", cfg)
    assert r.returncode == 2
    at = cfg.read_text().index('"lables"') + 1
    assert r.stderr == (f"agtrace: error: {cfg}:1:{at}: $.targets.select[].lables: unknown key (exe, "
                        f"comm, cmdline, cgroup, container, namespace, pod, labels); see the "
                        f"configuration section of the README\n")


def test_run_embedded_default_is_files_and_metrics(tmp_path, nested):
    import datetime
    from harness import AGTRACE
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    path = f"/var/lib/agtrace/traces/spans-{day}.jsonl"
    before = os.path.getsize(path) if os.path.exists(path) else 0
    cfg = tmp_path / "min.json"
    cfg.write_text(json.dumps({"targets": {"pids": [nested.pid]}, "uprobes": [f"{NESTED}:leaf"]}))
    p = subprocess.Popen([AGTRACE, "run", "--config", str(cfg)], stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        if "attached " in line:
            break
    nested.call("outer 1")
    with urllib.request.urlopen("http://127.0.0.1:9464/metrics", timeout=5) as m:
        assert "agtrace_attached_processes 1" in m.read().decode()
    nested.quit()
    assert p.wait(timeout=30) == 0
    with open(path) as f:
        f.seek(before)
        names = [json.loads(l)["name"] for l in f.read().splitlines()]
    assert names.count("leaf") == 2


def test_connection_resets_are_retried(es, tmp_path):
    es.fault("reset")  # the connection is closed without an answer

    def heal():
        time.sleep(2)
        es.fault("ok")

    tr = trace_calls(es, tmp_path, 20, during=heal)
    assert set(es.docs()) == {r["span_id"] for r in tr.records}
    line = es_line(tr)
    assert "82 delivered" in line and "0 lost" in line
    assert int(line.split(" retried")[0].split()[-1]) > 0


def test_fluentd_outage_spools_and_replays(tmp_path):
    state, mode, port = tmp_path / "fluent.json", tmp_path / "fluent.mode", free_port()
    server = os.path.join(ROOT, "tests/servers/fluent_server.py")

    def start():
        p = subprocess.Popen(["/usr/bin/python3", server, str(state), str(mode), str(port)],
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().startswith("listening")
        return p

    srv = start()
    t = Target([NESTED])
    try:
        tr = Tracer(["-p", t.pid, "--probes", SPEC, "-o", "jsonl", "--fluentd",
                     f"127.0.0.1:{port}", "--spool-dir", tmp_path / "spool"])
        for i in range(20):
            t.call(f"outer {i}")
        srv.kill()
        srv.wait()
        for i in range(20, 320):  # 1,200 spans while Fluentd is down
            t.call(f"outer {i}")
        time.sleep(1)
        srv = start()
        t.quit()
        assert tr.finish(timeout=120) == 0
    finally:
        t.kill()
        srv.kill()
    db = json.loads(state.read_text())
    assert set(db["records"]) == {r["span_id"] for r in tr.records}
    line = [l for l in tr.err_lines if l.startswith("agtrace: fluentd:")][0]
    assert "1282 delivered" in line and "0 lost" in line and "0 bytes waiting" in line


def bulk(es, lines):
    req = urllib.request.Request(f"http://127.0.0.1:{es.port}/_bulk", method="POST",
                                 data=("\n".join(json.dumps(x) for x in lines) + "\n").encode(),
                                 headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return [next(iter(i.values())) for i in json.load(r)["items"]]


def put(es, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{es.port}{path}", method="PUT",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()


def test_the_stand_in_keeps_elasticsearch_rules_for_rollover(es):
    """What made ILM stop at its rollover check before: date-named concrete indices under a
    policy that rolls over. The stand-in refuses such writes as Elasticsearch's ILM would fail
    on them; the data stream the shipped template declares takes create, and only create."""
    with open(os.path.join(ROOT, "deploy", "elasticsearch", "ilm-policy.json")) as f:
        put(es, "/_ilm/policy/agentic-traces", json.load(f))
    with open(os.path.join(ROOT, "deploy", "elasticsearch", "index-template.json")) as f:
        template = json.load(f)
    assert template["data_stream"] == {} and template["version"] >= 2
    assert template["_meta"]["managed_by"] == "agtrace"
    put(es, "/_index_template/agentic-traces", template)
    doc = {"@timestamp": "2025-01-01T00:00:00.000000Z", "name": "x"}
    (item,) = bulk(es, [{"index": {"_index": "agentic-traces", "_id": "1"}}, doc])
    assert item["status"] == 400 and item["error"]["reason"] == (
        "only write ops with an op_type of create are allowed in data streams [agentic-traces]")
    (item,) = bulk(es, [{"create": {"_index": "agentic-traces", "_id": "1"}}, {"name": "x"}])
    assert item["error"]["reason"] == (
        "data stream timestamp field [@timestamp] is missing [agentic-traces]")
    (a, b) = bulk(es, [{"create": {"_index": "agentic-traces", "_id": "1"}}, doc,
                       {"create": {"_index": "agentic-traces", "_id": "1"}}, doc])
    assert (a["status"], b["status"]) == (201, 409)  # a create sent again finds it there
    # The template as it was: date-named indices, no data stream, a policy that rolls over.
    del template["data_stream"]
    put(es, "/_index_template/agentic-traces", template)
    (item,) = bulk(es, [{"index": {"_index": "agentic-traces-2025.01.01", "_id": "2"}}, doc])
    assert item["status"] == 400 and item["error"]["reason"].startswith(
        "setting [index.lifecycle.rollover_alias] for index [agentic-traces-2025.01.01] is empty")


def leaf_types(doc, prefix=""):
    """Every leaf field of an ECS document: dotted name -> JSON types seen (arrays: elements)."""
    out = {}
    for k, v in doc.items():
        name = prefix + k
        if isinstance(v, dict):
            out.update(leaf_types(v, name + "."))
        else:
            vals = v if isinstance(v, list) else [v]
            for x in vals:
                if isinstance(x, dict):
                    for kk, tt in leaf_types(x, name + ".").items():
                        out.setdefault(kk, set()).update(tt)
                else:
                    out.setdefault(name, set()).add(type(x).__name__)
    return out


def mapping_of(template, name):
    props = template["template"]["mappings"]["properties"]
    node = None
    parts = name.split(".")
    for i, p in enumerate(parts):
        node = props.get(p)
        if node is None:
            return None
        if node.get("type") == "flattened":
            return "flattened"
        props = node.get("properties", {})
    return node.get("type")


ACCEPTS = {"keyword": {"str", "int", "float", "bool"}, "wildcard": {"str"}, "text": {"str"},
           "long": {"int"}, "double": {"int", "float"}, "boolean": {"bool"}, "date": {"str"},
           "flattened": {"str", "int", "float", "bool"}}


def test_mapping_types_hold_for_every_field_spans_carry(tmp_path, nested):
    """Every field of real spans (probed functions with int, string and pointer values, attach
    and exit events) is mapped to a type that takes each value it carries, and a field whose
    JSON type varies (probe.return_value: a number or a string) has a mapping of its own, never
    Elasticsearch's guess from the first document."""
    with open(os.path.join(ROOT, "deploy", "elasticsearch", "index-template.json")) as f:
        template = json.load(f)
    spec = tmp_path / "mixed.json"
    spec.write_text(json.dumps({"name": "mixed", "target": "$exe", "probes": [
        {"symbols": ["leaf"], "args": [{"name": "n", "type": "int"},
                                       {"name": "label", "type": "str"}],
         "return_value": {"type": "int"}},
        {"symbols": ["middle"], "args": [{"name": "n", "type": "ptr"}],
         "return_value": {"type": "ptr"}}]}))
    tr = Tracer(["-p", nested.pid, "--probes", spec, "-o", "jsonl"])
    nested.call("outer 1")
    nested.quit()
    assert tr.finish() == 0
    seen = {}
    for r in tr.records:
        for k, t in leaf_types(r).items():
            seen.setdefault(k, set()).update(t)
    assert seen["probe.return_value"] == {"int", "str"}  # the case that needs a mapping
    assert mapping_of(template, "probe.return_value") == "keyword"
    for name, types in sorted(seen.items()):
        m = mapping_of(template, name)
        if m is None:
            assert len(types) == 1, f"{name} carries {types} and has no mapping"
            continue
        assert types <= ACCEPTS[m], f"{name} is mapped {m} but carries {types}"
