"""The Prometheus endpoint: exact series from a real agent conversation, the exposition format
clean under promtool, and a real Prometheus server scraping it."""
import json
import os
import socket
import subprocess
import time
import urllib.request

from harness import Target, Tracer
from test_agent import AGENT
from test_llm import PY, cert, server  # noqa: F401


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def value(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{series} not in scrape:\n{text}")


def test_metrics_endpoint_with_prometheus(tmp_path, server, cert):  # noqa: F811
    port, prom_port = free_port(), free_port()
    t = Target([PY, AGENT, str(server), str(cert / "cert.pem")])
    prom = None
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--metrics", f"127.0.0.1:{port}"])
        assert t.call("openai Paris exit 0") == "steps 2"
        time.sleep(1.2)  # self metrics refresh once a second
        text = scrape(port)
        comp = 'component="python3"'
        assert value(text, f'agentic_reasoning_steps_total{{model="gpt-4o",provider="openai",{comp}}}') == 2
        assert value(text, f'agentic_tool_calls_total{{tool_name="get_weather",success="true",{comp}}}') == 1
        assert value(text, 'agentic_tool_call_duration_seconds_count{tool_name="get_weather"}') == 1
        assert value(text, f'agentic_cot_chains_completed_total{{model="gpt-4o",provider="openai",{comp}}}') == 1
        assert value(text, 'agentic_decision_latency_seconds_count{model="gpt-4o",provider="openai"}') == 1
        gl = 'gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o"'
        assert value(text, f'gen_ai_client_token_usage_sum{{{gl},gen_ai_token_type="input"}}') == 84
        assert value(text, f'gen_ai_client_token_usage_sum{{{gl},gen_ai_token_type="output"}}') == 14
        assert value(text, f'gen_ai_client_token_usage_bucket{{{gl},gen_ai_token_type="input",le="64"}}') == 2
        assert value(text, f'gen_ai_client_operation_duration_seconds_count{{{gl}}}') == 2
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
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: agtrace\n"
                       f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
        assert subprocess.run(["promtool", "check", "config", str(cfg)],
                              capture_output=True).returncode == 0
        prom = subprocess.Popen(["prometheus", f"--config.file={cfg}",
                                 f"--storage.tsdb.path={tmp_path}/data",
                                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        got = None
        for _ in range(60):
            time.sleep(0.5)
            try:
                q = urllib.request.urlopen(
                    f"http://127.0.0.1:{prom_port}/api/v1/query?query=agentic_tool_calls_total",
                    timeout=2)
                res = json.load(q)["data"]["result"]
                if res:
                    got = res
                    break
            except OSError:
                continue
        assert got, "Prometheus never scraped agtrace"
        (series,) = got
        assert series["metric"]["tool_name"] == "get_weather"
        assert series["metric"]["success"] == "true"
        assert series["metric"]["job"] == "agtrace"
        assert series["value"][1] == "1"
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
    assert r.stderr == ('agtrace: error: --metrics "localhost:99999" is not [IPv4-ADDRESS:]PORT, '
                        'e.g. 9464 or 127.0.0.1:9464\n')


def test_promtool_checks_config_and_rules():
    """promtool checks the shipped config and rules and runs their unit tests (that every metric
    they query is one agtrace exports: tests/integration/test_deploy.py)."""
    d = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "prometheus")
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "rules.yml"],
                 ["test", "rules", "rules_test.yml"]):
        r = subprocess.run(["promtool", *args], cwd=d, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
