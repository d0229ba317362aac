"""The Prometheus endpoint: exact series from a real agent conversation, the exposition format
clean under promtool, and a real Prometheus server scraping it."""
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from harness import AGTRACE, Target, Tracer
from test_agent import AGENT
from test_llm import PY, cert, plain_server, server  # noqa: F401


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port, host="127.0.0.1"):
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def start_prometheus(tmp_path, targets, rules=None):
    """A real Prometheus (Debian's) scraping targets every second; its port."""
    port = free_port()
    cfg = tmp_path / "prometheus.yml"
    text = "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
    if rules:
        text += f"rule_files:\n  - {rules}\n"
    text += ("scrape_configs:\n  - job_name: agtrace\n    static_configs:\n"
             f"      - targets: {json.dumps(targets)}\n")
    cfg.write_text(text)
    r = subprocess.run(["promtool", "check", "config", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    p = subprocess.Popen(["prometheus", f"--config.file={cfg}",
                          f"--storage.tsdb.path={tmp_path}/data",
                          f"--web.listen-address=127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p, port


def prom_query(port, q, want=lambda res: bool(res), tries=60):
    """Query Prometheus' HTTP API until want(result) holds (or give up); the result."""
    res = None
    for _ in range(tries):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?"
                                        + urllib.parse.urlencode({"query": q}), timeout=2) as r:
                res = json.load(r)["data"]["result"]
            if want(res):
                return res
        except OSError:
            pass
        time.sleep(0.5)
    return res


def version():
    return subprocess.check_output([AGTRACE, "version"], text=True).split("\n")[0].split()[1]


def revision():
    return subprocess.check_output([AGTRACE, "version"], text=True).split("\n")[1].split()[1]


def libbpf():
    return subprocess.check_output([AGTRACE, "version"], text=True).split("\n")[2].split()[1]


def value(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{series} not in scrape:\n{text}")


def test_metrics_endpoint_with_prometheus(tmp_path, server, cert):  # noqa: F811
    port = free_port()
    t = Target([PY, AGENT, str(server), str(cert / "cert.pem")])
    prom = None
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--metrics", f"127.0.0.1:{port}"])
        assert t.call("openai Paris exit 0") == "steps 2"
        time.sleep(1.2)  # self metrics refresh once a second
        text = scrape(port)
        comp = 'component="python3"'
        wl = 'k8s_namespace_name="",k8s_workload_name=""'  # not in a pod here
        assert value(text, f'agentic_reasoning_steps_total{{model="gpt-4o",provider="openai",{comp},{wl}}}') == 2
        assert value(text, f'agentic_tool_calls_total{{tool_name="get_weather",success="true",{comp},{wl}}}') == 1
        assert value(text, f'agentic_tool_call_duration_seconds_count{{tool_name="get_weather",{wl}}}') == 1
        assert value(text, f'agentic_cot_chains_completed_total{{model="gpt-4o",provider="openai",{comp},{wl}}}') == 1
        assert value(text, f'agentic_decision_latency_seconds_count{{model="gpt-4o",provider="openai",{wl}}}') == 1
        gl = 'gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o"'
        assert value(text, f'gen_ai_client_token_usage_sum{{{gl},gen_ai_token_type="input",{wl}}}') == 84
        assert value(text, f'gen_ai_client_token_usage_sum{{{gl},gen_ai_token_type="output",{wl}}}') == 14
        assert value(text, f'gen_ai_client_token_usage_bucket{{{gl},gen_ai_token_type="input",{wl},le="64"}}') == 2
        # bounds as written: le="1048576", never %g's le="1.04858e+06"
        assert value(text, f'gen_ai_client_token_usage_bucket{{{gl},gen_ai_token_type="input",{wl},le="1048576"}}') == 2
        assert value(text, f'gen_ai_client_token_usage_bucket{{{gl},gen_ai_token_type="input",{wl},le="67108864"}}') == 2
        assert "e+0" not in text
        assert value(text, f'gen_ai_client_operation_duration_seconds_count{{{gl},error_type="",{wl}}}') == 2
        # every family has its own HELP, no generic text
        helps = re.findall(r"^# HELP (\S+) (.*)$", text, re.M)
        types = re.findall(r"^# TYPE (\S+) ", text, re.M)
        assert [h[0] for h in helps] == types and len(helps) >= 15
        assert not [h for h in helps if "not described" in h[1] or len(h[1].split()) < 3], helps
        assert value(text, f'agtrace_build_info{{version="{version()}",revision="{revision()}",'
                           f'libbpf_version="{libbpf()}"}}') == 1
        assert value(text, "agentic_active_workflows") == 0
        assert value(text, "agentic_trace_buffer_size") == 0
        assert value(text, "agtrace_attached_processes") == 1
        assert value(text, 'agtrace_dropped_events_total{reason="ringbuf_full"}') == 0
        assert value(text, 'agtrace_events_total{source="tls"}') > 0
        assert value(text, "agtrace_ringbuf_size_bytes") == 8 << 20
        assert 0 <= value(text, "agtrace_ringbuf_used_bytes") < 8 << 20
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                              text=True)
        assert lint.returncode == 0 and lint.stdout == "" and lint.stderr == "", lint

        # A real Prometheus server scrapes it; its HTTP API returns the same values.
        prom, prom_port = start_prometheus(tmp_path, [f"127.0.0.1:{port}"])
        got = prom_query(prom_port, "agentic_tool_calls_total")
        assert got, "Prometheus never scraped agtrace"
        (series,) = got
        assert series["metric"]["tool_name"] == "get_weather"
        assert series["metric"]["success"] == "true"
        assert series["metric"]["job"] == "agtrace"
        assert series["value"][1] == "1"
        (info,) = prom_query(prom_port, "agtrace_build_info")
        assert info["metric"]["version"] == version() and info["value"][1] == "1"
        # the exact le label is what a query matches
        (b,) = prom_query(prom_port, 'gen_ai_client_token_usage_bucket{gen_ai_token_type="output",'
                                     'le="1048576"}')
        assert b["value"][1] == "2"
        assert prom_query(prom_port, 'histogram_quantile(0.5, sum by (le) '
                                     '(gen_ai_client_token_usage_bucket{gen_ai_token_type="input"}))'
                          )[0]["value"][1] == "40"  # 2 of 42 tokens: mid (16, 64] as Prometheus has it
        t.quit()
        assert tr.finish() == 0
    finally:
        if prom:
            prom.terminate()
            prom.wait(timeout=20)
        t.kill()


def test_metrics_bad_listen_address():
    from harness import run_agtrace
    r = run_agtrace("attach", "-p", "1", "--metrics", "localhost:99999")
    assert r.returncode == 2
    assert r.stderr == ('agtrace: error: --metrics "localhost:99999" is not [ADDRESS:]PORT, '
                        'e.g. 9464, 127.0.0.1:9464 or [::1]:9464\n')


def test_promtool_checks_config_and_rules():
    """promtool checks the shipped config and rules and runs their unit tests (that every metric
    they query is one agtrace exports: tests/integration/test_deploy.py)."""
    d = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "prometheus")
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "rules.yml"],
                 ["test", "rules", "rules_test.yml"]):
        r = subprocess.run(["promtool", *args], cwd=d, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def http(method, url):
    """(status, headers, body) of one request; errors are answers too."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def test_paths_answer_get_and_head_health_and_readiness_ipv6(tmp_path):
    """Every path to GET and HEAD (HEAD: the same status and headers, no body); /readyz is 200
    once the run is attached and 503 again while it stops (here: draining an exporter whose
    backend is away); other methods 405 with Allow; unknown paths 404; and all of it over IPv6
    ([::1]:PORT)."""
    import socket
    with socket.socket(socket.AF_INET6) as s6:
        s6.bind(("::1", 0))
        port = s6.getsockname()[1]
    t = Target([PY, "-c", "import sys; print('ready 1', flush=True); sys.stdin.readline()"])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--no-tcp", "--metrics", f"[::1]:{port}",
                     "--otlp", f"http://127.0.0.1:{free_port()}", "--spool-dir",
                     tmp_path / "spool", "--es-drain-seconds", "4"], wait=False)
        base = f"http://[::1]:{port}"
        seen_unready = False
        for _ in range(200):  # until attached: not ready (when the scrape comes early enough)
            try:
                code, _, body = http("GET", base + "/readyz")
            except OSError:
                time.sleep(0.02)
                continue
            if code == 200:
                break
            assert (code, body) == (503, "not ready: not attached yet, or stopping\n")
            seen_unready = True
            time.sleep(0.02)
        tr.wait_for("attached ")
        del seen_unready  # attaching may be faster than the first request: not asserted
        for path, want, text in (("/metrics", 200, "# HELP "), ("/healthz", 200, "ok\n"),
                                 ("/readyz", 200, "ready\n"), ("/", 200, "agtrace "),
                                 ("/nope", 404, "not found; agtrace serves /metrics, /healthz "
                                                "and /readyz\n")):
            code, hdr, body = http("GET", base + path)
            assert code == want and body.startswith(text), (path, code, body)
            hcode, hhdr, hbody = http("HEAD", base + path)
            assert (hcode, hbody) == (want, ""), path
            assert hhdr["Content-Type"] == hdr["Content-Type"], path
            assert int(hhdr["Content-Length"]) == len(body.encode()) or path == "/metrics"
        code, hdr, body = http("POST", base + "/metrics")
        assert (code, hdr["Allow"], body) == (405, "GET, HEAD", "agtrace answers GET and HEAD only\n")
        assert value(scrape(f"{port}", "[::1]"), "agtrace_attached_processes") == 1
        tr.p.send_signal(signal.SIGINT)  # stopping: the exporter drains for up to 4 s
        for _ in range(100):
            code, _, body = http("GET", base + "/readyz")
            if code != 200:
                break
            time.sleep(0.02)
        assert (code, body) == (503, "not ready: not attached yet, or stopping\n")
        assert http("GET", base + "/healthz")[0] == 200  # alive all the same
        assert tr.finish() == 0
        t.quit()
    finally:
        t.kill()


def test_sampling_is_not_dropping(tmp_path, plain_server):  # noqa: F811
    """Sessions left out by sampling are counted in agtrace_sampled_events_total, not in
    agtrace_dropped_events_total: a real Prometheus evaluating the shipped rules finds the
    AgtraceDroppingEvents expression empty while sampling works."""
    from test_sampling import FORKER
    port = free_port()
    t = Target([PY, FORKER])
    prom = None
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--sample", "sock=0", "--metrics",
                     f"127.0.0.1:{port}"])
        assert t.call(f"fork 10 {plain_server}", timeout=120).startswith("done")
        time.sleep(1.2)
        text = scrape(port)
        assert value(text, 'agtrace_sampled_events_total{source="sock",reason="sampled_out"}') >= 40
        assert value(text, 'agtrace_sampled_events_total{source="sock",reason="rate_limited"}') == 0
        dropped = re.findall(r'^agtrace_dropped_events_total\{reason="(\w+)"\} (\S+)$', text, re.M)
        assert len(dropped) >= 10 and all(v == "0" for _, v in dropped), dropped
        assert not [r for r, _ in dropped if r.startswith(("sampled_out", "rate_limited"))]
        rules = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "prometheus",
                             "rules.yml")
        prom, prom_port = start_prometheus(tmp_path, [f"127.0.0.1:{port}"], os.path.abspath(rules))
        got = prom_query(prom_port, 'sum(agtrace_sampled_events_total{reason="sampled_out"})')
        assert got and float(got[0]["value"][1]) >= 40
        with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/api/v1/rules", timeout=5) as r:
            rules_api = json.load(r)["data"]["groups"]
        (alert,) = [a for g in rules_api for a in g["rules"] if a["name"] == "AgtraceDroppingEvents"]
        assert prom_query(prom_port, alert["query"], want=lambda res: res == [], tries=6) == []
        time.sleep(3)  # a few evaluations with rate() over real samples
        assert prom_query(prom_port, alert["query"], want=lambda res: res == [], tries=2) == []
        assert prom_query(prom_port, 'ALERTS{alertname="AgtraceDroppingEvents"}',
                          want=lambda res: res == [], tries=2) == []
        t.quit()
        assert tr.finish(timeout=60) == 0
    finally:
        if prom:
            prom.terminate()
            prom.wait(timeout=20)
        t.kill()
