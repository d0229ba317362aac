"""The OTLP exporter against a strict collector stand-in (tests/servers/otlp_server.py, whose
protobuf side is code generated from the official opentelemetry-proto files): protobuf by
default and JSON, the OpenTelemetry SDK environment variables, one resource per workload, the
GenAI semantic conventions, and what the collector rejects counted and dead-lettered."""
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest
from harness import FIXTURES, NESTED, ROOT, Target, Tracer, run_agtrace
from test_agent import AGENT
from test_llm import cert, server  # noqa: F401  (module fixtures: TLS material, HTTPS server)

OTLP_SERVER = os.path.join(ROOT, "tests", "servers", "otlp_server.py")
OTLP_PB = os.path.join(ROOT, "build", "tests", "otlp_pb")
SPEC = os.path.join(FIXTURES, "nested.json")
VERSION = "0.1.0"


class Collector:
    """The stand-in; with pki, over HTTPS with its certificate from the test CA, and with
    client_ca also asking for a client certificate."""
    def __init__(self, pki=None, client_ca=False):
        argv = ["/usr/bin/python3", OTLP_SERVER]
        self.ctx = None
        if pki:
            argv += ["--tls", pki / "server.crt", pki / "server.key"]
            if client_ca:
                argv += ["--client-ca", pki / "ca.crt"]
            self.ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
            self.ctx.load_cert_chain(pki / "client.crt", pki / "client.key")
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.port = int(self.p.stdout.readline().split()[1])
        self.url = f"https://localhost:{self.port}" if pki else f"http://127.0.0.1:{self.port}"

    def get(self):
        with urllib.request.urlopen(self.url + "/_test/spans", timeout=5,
                                    context=self.ctx) as r:
            return json.load(r)

    def fault(self, mode, **kw):
        req = urllib.request.Request(self.url + "/_test/fault", method="POST",
                                     data=json.dumps(dict(kw, mode=mode)).encode())
        urllib.request.urlopen(req, timeout=5, context=self.ctx).read()

    def stop(self):
        self.p.kill()
        self.p.wait()

    def post(self, body, ctype="application/x-protobuf"):
        req = urllib.request.Request(self.url + "/v1/traces", data=body, method="POST",
                                     headers={"Content-Type": ctype})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


@pytest.fixture
def collector():
    c = Collector()
    yield c
    c.p.kill()
    c.p.wait()


def attrs(kvs):
    """OTLP/JSON attributes as plain values."""
    def val(v):
        (k, x), = v.items()
        if k == "intValue":
            return int(x)
        if k == "arrayValue":
            return [val(e) for e in x["values"]]
        return x
    return {a["key"]: val(a["value"]) for a in kvs}


def test_agent_tree_as_trace_backends_show_it(server, cert, collector, tmp_path):  # noqa: F811
    """One conversation of a real agent loop, sent as protobuf to the full traces URL: one
    resource (the agent's process), the conversation as the invoke_agent root, chat children
    with their messages (--capture-content), tool children with arguments and results, the
    command the tool ran below it; what Phoenix and Langfuse draw as one agent tree."""
    agent = Target(["/usr/bin/python3", AGENT, str(server), str(cert / "cert.pem")])
    try:
        tr = Tracer(["-p", agent.pid, "-o", "jsonl", "--otlp", collector.url + "/v1/traces",
                     "--capture-content", "--spool-dir", tmp_path / "spool"])
        assert agent.call("openai Paris echo 18C") == "steps 2"
        agent.quit()
        assert tr.finish(timeout=60) == 0, tr.err_lines
    finally:
        agent.kill()
    got = collector.get()
    assert {s["path"] for s in got["seen"]} == {"/v1/traces"}  # not /v1/traces/v1/traces
    assert {s["content_type"] for s in got["seen"]} == {"application/x-protobuf"}
    assert {s["user_agent"] for s in got["seen"]} == {f"agtrace/{VERSION}"}
    spans = {s["spanId"]: s for s in got["spans"]}
    assert set(spans) == {r["span_id"] for r in tr.records}
    resources = {json.dumps(s["resource"], sort_keys=True) for s in spans.values()}
    assert len(resources) == 1  # the agent, its commands included: one workload
    res = next(iter(spans.values()))["resource"]
    assert res["service.name"] == {"stringValue": "python3.11"}
    assert res["process.pid"] == {"intValue": str(agent.pid)}
    assert res["process.executable.path"] == {"stringValue": "/usr/bin/python3.11"}
    assert res["process.executable.name"] == {"stringValue": "python3.11"}
    assert res["host.name"] == {"stringValue": socket.gethostname()}
    assert {json.dumps(s["scope"]) for s in spans.values()} == {
        json.dumps({"name": "agtrace", "version": VERSION})}

    (cot,) = [r for r in tr.records if r["trace_type"] == "cot_process"]
    root = spans[cot["span_id"]]
    assert "parentSpanId" not in root and root["kind"] == 1
    ra = attrs(root["attributes"])
    assert ra["gen_ai.operation.name"] == "invoke_agent"
    assert ra["gen_ai.agent.name"] == "python3.11"
    assert ra["gen_ai.conversation.id"] == cot["workflow_id"]
    assert root["status"] == {"code": 0, "message": ""}
    kids = sorted([s for s in spans.values() if s.get("parentSpanId") == root["spanId"]],
                  key=lambda s: int(s["startTimeUnixNano"]))
    assert [s["name"] for s in kids] == ["chat gpt-4o", "execute_tool get_weather",
                                         "chat gpt-4o"]
    chat1, tool, chat2 = kids
    c1, t, c2 = (attrs(s["attributes"]) for s in kids)
    assert chat1["kind"] == 3 and tool["kind"] == 1
    assert c1["gen_ai.operation.name"] == "chat" and c1["gen_ai.provider.name"] == "openai"
    assert c1["gen_ai.request.model"] == "gpt-4o"
    assert c1["gen_ai.request.temperature"] == 0.2
    assert c1["gen_ai.request.stream"] is False
    assert c1["server.address"] == "localhost" and c1["server.port"] == server
    assert c1["gen_ai.conversation.id"] == cot["workflow_id"]
    assert json.loads(c1["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Weather for Paris?"}]}]
    assert json.loads(c1["gen_ai.output.messages"]) == [
        {"role": "assistant", "finish_reason": "tool_calls",
         "parts": [{"type": "text", "content": "Let me check the weather."},
                   {"type": "tool_call", "id": "call_weather_1", "name": "get_weather",
                    "arguments": {"city": "Paris", "unit": "celsius"}}]}]
    result = json.dumps({"for": "Paris", "exit": 0, "out": "18C"})
    assert json.loads(c2["gen_ai.input.messages"])[-1] == {
        "role": "tool", "parts": [{"type": "tool_call_response", "id": "call_weather_1",
                                   "result": {"for": "Paris", "exit": 0, "out": "18C"}}]}
    assert json.loads(c2["gen_ai.output.messages"]) == [
        {"role": "assistant", "finish_reason": "stop",
         "parts": [{"type": "text", "content": "It is sunny in Paris."}]}]
    assert t["gen_ai.operation.name"] == "execute_tool"
    assert t["gen_ai.tool.name"] == "get_weather"
    assert t["gen_ai.tool.call.id"] == "call_weather_1"
    assert t["gen_ai.tool.call.arguments"] == '{"city":"Paris","unit":"celsius"}'
    assert t["gen_ai.tool.call.result"] == result
    assert t["gen_ai.tool.type"] == "function"
    assert "tool.input" not in t  # ECS's names stay in ECS documents
    (cmd,) = [s for s in spans.values() if s.get("parentSpanId") == tool["spanId"]]
    ca = attrs(cmd["attributes"])
    assert cmd["name"] == "exec sh -c echo 18C"
    assert ca["process.command_line"] == "sh -c echo 18C"
    assert ca["process.exit.code"] == 0 and ca["process.pid"] != agent.pid
    # the decision below the first chat is not another chat operation
    (dec,) = [s for s in spans.values() if s.get("parentSpanId") == chat1["spanId"]]
    assert "gen_ai.operation.name" not in attrs(dec["attributes"])
    for s in spans.values():
        assert s["status"]["code"] == 0, s["name"]
        assert "unfinished" not in attrs(s["attributes"])
    # ECS documents keep their Kibana fields, and say who too
    step = [r for r in tr.records if r["trace_type"] == "reasoning_step"][0]
    assert step["service"] == {"name": "python3.11"}
    assert json.loads(step["gen_ai"]["input"]["messages"])[1]["parts"][0]["content"] == \
        "Weather for Paris?"


def test_json_protocol_from_the_sdk_environment(collector, tmp_path, nested):
    """OTEL_EXPORTER_OTLP_ENDPOINT (a base URL), _PROTOCOL, _HEADERS, OTEL_SERVICE_NAME and
    OTEL_RESOURCE_ATTRIBUTES as the SDKs read them; --otlp-header adds to them."""
    env = dict(os.environ, OTEL_EXPORTER_OTLP_ENDPOINT=collector.url + "/otlp/",
               OTEL_EXPORTER_OTLP_PROTOCOL="http/json",
               OTEL_EXPORTER_OTLP_HEADERS="x-tenant=acme, Authorization=Bearer%20tok-123",
               OTEL_SERVICE_NAME="weather-svc",
               OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test,service.name=other")
    tr = Tracer(["-p", nested.pid, "--probes", SPEC, "-o", "jsonl", "--otlp-header",
                 "x-extra=1", "--spool-dir", tmp_path / "spool"], env=env)
    nested.call("outer 1")
    nested.quit()
    assert tr.finish() == 0
    got = collector.get()
    assert {s["path"] for s in got["seen"]} == {"/otlp/v1/traces"}
    assert {s["content_type"] for s in got["seen"]} == {"application/json"}
    for s in got["seen"]:
        assert s["headers"]["x-tenant"] == "acme" and s["headers"]["x-extra"] == "1"
    assert set(got["authorization"]) == {"Bearer tok-123"}
    spans = {s["spanId"]: s for s in got["spans"]}
    assert set(spans) == {r["span_id"] for r in tr.records}
    for s in spans.values():
        assert s["resource"]["service.name"] == {"stringValue": "weather-svc"}
        assert s["resource"]["deployment.environment"] == {"stringValue": "test"}
        assert s["resource"]["process.pid"] == {"intValue": str(nested.pid)}
    assert {r["service"]["name"] for r in tr.records} == {"weather-svc"}
    leaf = [r for r in tr.records if r["name"] == "leaf leaf"][0]
    la = attrs(spans[leaf["span_id"]]["attributes"])
    assert la["probe.symbol"] == "leaf" and la["thread.id"] == leaf["process"]["thread"]["id"]
    assert "tok-123" not in "\n".join(tr.err_lines)


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_partial_success_is_counted_and_dead_lettered(collector, tmp_path, nested, protocol):
    """partialSuccess.rejectedSpans (an int64: a string in OTLP/JSON, a varint in protobuf):
    the spans it names by number are counted as dead-lettered and the collector's word is
    written to the dead-letter file; a request refused whole dead-letters every span."""
    collector.fault("503")  # the spans wait in the spool, then go in one request
    tr = Tracer(["-p", nested.pid, "--probes", SPEC, "-o", "jsonl", "--otlp", collector.url,
                 "--otlp-protocol", protocol, "--spool-dir", tmp_path / "spool"])
    for i in range(5):
        nested.call(f"outer {i}")
    import time
    time.sleep(0.5)
    collector.fault("partial", rejected=3)
    nested.quit()
    assert tr.finish(timeout=60) == 0
    n = len(tr.records)
    (line,) = [l for l in tr.err_lines if l.startswith("agtrace: otlp:") and " queued," in l]
    assert f"{n} queued, {n - 3} delivered" in line and "3 dead-lettered" in line, line
    dead = (tmp_path / "spool" / "otlp" / "dead-letter.ndjson").read_text().splitlines()
    assert [json.loads(d) for d in dead] == [
        {"reason": {"rejected_spans": "3", "error_message": "some spans were refused"},
         "documents": 3}]


def test_refused_request_dead_letters_every_span(collector, tmp_path, nested):
    collector.fault("400")
    tr = Tracer(["-p", nested.pid, "--probes", SPEC, "-o", "jsonl", "--otlp", collector.url,
                 "--otlp-protocol", "http/json", "--spool-dir", tmp_path / "spool"])
    nested.call("outer 1")
    nested.quit()
    assert tr.finish(timeout=60) == 0
    dead = [json.loads(d) for d in
            (tmp_path / "spool" / "otlp" / "dead-letter.ndjson").read_text().splitlines()]
    assert {d["span"]["spanId"] for d in dead} == {r["span_id"] for r in tr.records}
    assert {json.dumps(d["reason"]) for d in dead} == {
        json.dumps({"http_status": 400, "message": "refused by the test"})}
    assert dead[0]["resource"]["attributes"][0] == {
        "key": "service.name", "value": {"stringValue": "nested"}}


def test_bad_otlp_settings_are_refused():
    url = "http://127.0.0.1:1/v1/traces"
    r = run_agtrace("attach", "-p", "1", "--otlp", url, "--otlp-protocol", "grpc")
    assert r.returncode == 2
    assert r.stderr == ('agtrace: error: --otlp-protocol needs http/protobuf or http/json, got '
                        '"grpc"; see `agtrace attach --help`\n')
    r = subprocess.run([os.path.join(ROOT, "agtrace"), "attach", "-p", "1", "--otlp", url],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc"))
    assert r.returncode == 2
    assert r.stderr == ('agtrace: error: the OTLP protocol "grpc" (--otlp-protocol or '
                        '$OTEL_EXPORTER_OTLP_PROTOCOL) is not one agtrace speaks: give '
                        'http/protobuf or http/json; see `agtrace attach --help`\n')
    r = run_agtrace("attach", "-p", "1", "--otlp", url, "--otlp-header", "no-value")
    assert r.returncode == 2
    assert r.stderr == ('agtrace: error: --otlp-header needs NAME=VALUE (an HTTP header), got '
                        '"no-value"; see `agtrace attach --help`\n')


def pb_field(num, wire, payload):
    """One protobuf field: tag, then the payload (already encoded for its wire type)."""
    def varint(v):
        out = b""
        while v >= 0x80:
            out += bytes([v & 0x7f | 0x80])
            v >>= 7
        return out + bytes([v])
    if wire == 2:
        return varint(num << 3 | 2) + varint(len(payload)) + payload
    return varint(num << 3 | wire) + payload


def test_strict_receiver_refuses_what_is_not_otlp(collector):
    """The receiver is as strict as its definitions: a broken wire format, a field the .proto
    files do not have, and a string that is not UTF-8 are refused; a minimal valid request is
    taken."""
    name = pb_field(1, 2, pb_field(1, 2, b"service.name") + pb_field(2, 2, pb_field(1, 2, b"x")))
    span = (pb_field(1, 2, bytes(16)) + pb_field(2, 2, bytes(8)) + pb_field(5, 2, b"s") +
            pb_field(6, 0, b"\x01") + pb_field(7, 1, bytes(8)) + pb_field(8, 1, bytes(8)))
    good = pb_field(1, 2, pb_field(1, 2, name) + pb_field(2, 2, pb_field(2, 2, span)))
    assert collector.post(good)[0] == 200
    assert collector.post(good[:-3])[0] == 400
    unknown = pb_field(1, 2, pb_field(1, 2, name) + pb_field(2, 2, pb_field(2, 2, span + pb_field(
        99, 0, b"\x01"))))
    status, body = collector.post(unknown)
    assert status == 400
    bad_utf8 = pb_field(1, 2, pb_field(1, 2, name) + pb_field(2, 2, pb_field(2, 2, span.replace(
        pb_field(5, 2, b"s"), pb_field(5, 2, b"\xff")))))
    assert collector.post(bad_utf8)[0] == 400
    assert collector.post(b"{}", "text/plain")[0] == 415


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, and leaves it signed: the collector's (localhost, 127.0.0.1) and a client's."""
    d = tmp_path_factory.mktemp("pki")

    def ssl_(*args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    ssl_("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", d / "ca.key",
         "-out", d / "ca.crt", "-subj", "/CN=agtrace test CA", "-addext",
         "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, cn, ext in (("server", "localhost",
                           "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                           "extendedKeyUsage=serverAuth\n"),
                          ("client", "agtrace-client", "extendedKeyUsage=clientAuth\n")):
        (d / f"{name}.ext").write_text(ext)
        ssl_("req", "-newkey", "rsa:2048", "-nodes", "-keyout", d / f"{name}.key", "-out",
             d / f"{name}.csr", "-subj", f"/CN={cn}")
        ssl_("x509", "-req", "-in", d / f"{name}.csr", "-CA", d / "ca.crt", "-CAkey",
             d / "ca.key", "-CAcreateserial", "-days", "1", "-out", d / f"{name}.crt",
             "-extfile", d / f"{name}.ext")
    # a CA that signed none of them
    ssl_("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout",
         d / "other-ca.key", "-out", d / "other-ca.crt", "-subj", "/CN=another CA")
    return d


def no_otel_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


def test_tls_with_a_client_certificate_from_options(pki, nested, tmp_path):
    """--otlp-ca, --otlp-client-cert and --otlp-client-key: the collector (which asks for a
    client certificate signed by the test CA) takes every span over HTTPS from the client the
    certificate names; --otlp-compression none sends plain bodies."""
    collector = Collector(pki, client_ca=True)
    try:
        tr = Tracer(["-p", nested.pid, "--probes", SPEC, "-o", "jsonl", "--otlp", collector.url,
                     "--otlp-ca", pki / "ca.crt", "--otlp-client-cert", pki / "client.crt",
                     "--otlp-client-key", pki / "client.key", "--otlp-compression", "none",
                     "--spool-dir", tmp_path / "spool"], env=no_otel_env())
        nested.call("outer 1")
        nested.quit()
        assert tr.finish(timeout=60) == 0, tr.err_lines
        got = collector.get()
    finally:
        collector.stop()
    assert got["tls_refused"] == []
    assert len(got["seen"]) >= 1
    for s in got["seen"]:
        assert s["path"] == "/v1/traces" and s["client_cn"] == "agtrace-client"
        assert "content-encoding" not in s["headers"]
    assert {s["spanId"] for s in got["spans"]} == {r["span_id"] for r in tr.records}
    assert sorted(r["name"] for r in tr.records) == [
        "attach nested", "exit nested", "leaf leaf", "leaf leaf", "middle", "outer"]
    n = len(tr.records)
    (line,) = [l for l in tr.err_lines if l.startswith("agtrace: otlp:") and " queued," in l]
    assert f"{n} queued, {n} delivered" in line, line


def test_tls_timeout_and_compression_from_the_sdk_environment(pki, nested, tmp_path):
    """The same from OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_CERTIFICATE and _CLIENT_KEY;
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as given (Langfuse's path, nothing appended);
    _TIMEOUT cuts a request the collector answers too late (it is sent again and delivered);
    _COMPRESSION gzip."""
    collector = Collector(pki, client_ca=True)
    try:
        collector.fault("slow", seconds=3)
        env = dict(no_otel_env(),
                   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=collector.url + "/api/public/otel/v1/traces",
                   OTEL_EXPORTER_OTLP_CERTIFICATE=str(pki / "ca.crt"),
                   OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=str(pki / "client.crt"),
                   OTEL_EXPORTER_OTLP_CLIENT_KEY=str(pki / "client.key"),
                   OTEL_EXPORTER_OTLP_TIMEOUT="1000", OTEL_EXPORTER_OTLP_COMPRESSION="gzip")
        tr = Tracer(["-p", nested.pid, "--probes", SPEC, "-o", "jsonl", "--spool-dir",
                     tmp_path / "spool"], env=env)
        nested.call("outer 1")
        nested.quit()
        assert tr.finish(timeout=60) == 0, tr.err_lines
        got = collector.get()
    finally:
        collector.stop()
    assert got["tls_refused"] == []
    # the first request was cut after 1 s (the collector took 3; the default would have
    # waited 10), then sent again
    assert got["requests"] >= 2
    url = collector.url + "/api/public/otel/v1/traces"
    said = [l for l in tr.err_lines if "otlp: " in l and " queued," not in l]
    assert len(said) == 2, tr.err_lines
    assert re.fullmatch(rf"agtrace: warning: otlp: no answer from {re.escape(url)}: Operation "
                        r"timed out after 10\d\d milliseconds with 0 bytes received; the spans "
                        r"wait in the spool and are sent again", said[0]), said[0]
    assert said[1] == f"agtrace: otlp: {url} answers again"
    assert len(got["seen"]) == got["requests"]
    for s in got["seen"]:
        assert s["path"] == "/api/public/otel/v1/traces"
        assert s["client_cn"] == "agtrace-client"
        assert s["headers"]["content-encoding"] == "gzip"
        assert s["content_type"] == "application/x-protobuf"
    assert {s["spanId"] for s in got["spans"]} == {r["span_id"] for r in tr.records}
    n = len(tr.records)
    (line,) = [l for l in tr.err_lines if l.startswith("agtrace: otlp:") and " queued," in l]
    assert f"{n} queued, {n} delivered" in line, line


def test_traces_endpoint_is_used_as_given(collector, nested, tmp_path):
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT without a path posts to / (the specification: the
    signal's own endpoint is used as it is; here the collector refuses it, so every span is
    dead-lettered with its 404), while --otlp without a path gets /v1/traces."""
    env = dict(no_otel_env(), OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=collector.url)
    tr = Tracer(["-p", nested.pid, "--probes", SPEC, "-o", "jsonl", "--otlp-protocol",
                 "http/json", "--spool-dir", tmp_path / "spool"], env=env)
    nested.call("outer 1")
    assert tr.interrupt(timeout=60) == 0, tr.err_lines
    got = collector.get()
    assert {s["path"] for s in got["seen"]} == {"/"} and got["spans"] == []
    dead = [json.loads(d) for d in
            (tmp_path / "spool" / "otlp" / "dead-letter.ndjson").read_text().splitlines()]
    assert {d["span"]["spanId"] for d in dead} == {r["span_id"] for r in tr.records}
    assert {d["reason"]["http_status"] for d in dead} == {404}
    tr = Tracer(["-p", nested.pid, "--probes", SPEC, "-o", "jsonl", "--otlp", collector.url,
                 "--spool-dir", tmp_path / "spool2"], env=env)
    nested.call("outer 2")
    nested.quit()
    assert tr.finish(timeout=60) == 0, tr.err_lines
    got = collector.get()
    assert [s["path"] for s in got["seen"]][-1] == "/v1/traces"
    assert {s["spanId"] for s in got["spans"]} == {r["span_id"] for r in tr.records}


@pytest.mark.parametrize("case", ["no client certificate", "collector not trusted"])
def test_tls_is_verified_both_ways(pki, nested, tmp_path, case):
    """Without a client certificate the collector refuses the handshake; with a CA that did
    not sign the collector's certificate agtrace refuses it. Nothing is delivered either way:
    the spans stay in the spool for a later run, and the summary says so."""
    collector = Collector(pki, client_ca=True)
    args = ["--otlp-ca", pki / "ca.crt"] if case == "no client certificate" else [
        "--otlp-ca", pki / "other-ca.crt", "--otlp-client-cert", pki / "client.crt",
        "--otlp-client-key", pki / "client.key"]
    try:
        tr = Tracer(["-p", nested.pid, "--probes", SPEC, "-o", "jsonl", "--otlp", collector.url,
                     *args, "--es-drain-seconds", "1", "--spool-dir", tmp_path / "spool"],
                    env=no_otel_env())
        nested.call("outer 1")
        nested.quit()
        tr.finish(timeout=60)
        got = collector.get()
    finally:
        collector.stop()
    assert got["spans"] == [] and got["requests"] == 0
    assert got["tls_refused"], got
    # and agtrace says why, once, with libcurl's words (which, when the collector hangs up
    # on it, depend on when agtrace notices)
    (said,) = [l for l in tr.err_lines if "no answer from" in l]
    assert said.startswith(f"agtrace: warning: otlp: no answer from {collector.url}/v1/traces: ")
    assert said.endswith("; the spans wait in the spool and are sent again")
    if case == "no client certificate":
        assert any("CERTIFICATE" in r for r in got["tls_refused"]), got["tls_refused"]
    else:
        assert any("UNKNOWN_CA" in r for r in got["tls_refused"]), got["tls_refused"]
        assert ": SSL certificate problem: " in said, said
    n = len(tr.records)
    (line,) = [l for l in tr.err_lines if l.startswith("agtrace: otlp:") and " queued," in l]
    assert f"{n} queued, 0 delivered" in line, line


LLM_CLIENT = os.path.join(ROOT, "tests", "targets", "llm_client.py")
CODING = os.path.join(ROOT, "tests", "targets", "coding_agent.py")


def test_failed_call_and_captured_content(server, cert, collector, tmp_path):  # noqa: F811
    """An LLM call the API refuses is an ERROR span with the API's error type and message;
    --capture-content with --capture-content-bytes 256 keeps the newest messages that fit
    (each text cut to half of it), Anthropic's system prompt as gen_ai.system_instructions,
    and a secret said in a message reaches the collector as [REDACTED], also one the cut
    would have split."""
    secret = "sk-live-INBODY-abcdef0123456789"
    t = Target(["/usr/bin/python3", LLM_CLIENT, str(server), str(cert / "cert.pem")])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--otlp", collector.url, "--capture-content",
                     "--capture-content-bytes", "256", "--spool-dir", tmp_path / "spool"])
        body = {"model": "claude-sonnet-4-5", "max_tokens": 50, "system": "You are terse.",
                "messages": [{"role": "user", "content": "A" * 200},
                             {"role": "assistant", "content": "ok"},
                             {"role": "user",
                              "content": f"My key is {secret}, keep it. " + "B" * 200}]}
        assert t.call("call a POST /v1/messages " + json.dumps(body)) == "status 200 284"
        # a secret across the cut: redacted whole before the text is cut, no prefix of it left
        straddle = {"model": "claude-sonnet-4-5", "max_tokens": 50,
                    "messages": [{"role": "user", "content": "C" * 110 + " " + secret}]}
        assert t.call("call a POST /v1/messages " + json.dumps(straddle)) == "status 200 284"
        bad = {"model": "bad-model", "messages": [{"role": "user", "content": "hi"}]}
        assert t.call("call b POST /v1/chat/completions " + json.dumps(bad)) == \
            "status 404 122"
        t.quit()
        assert tr.finish(timeout=60) == 0, tr.err_lines
    finally:
        t.kill()
    got = collector.get()
    raw = json.dumps(got)
    assert secret not in raw and "sk-live-INBODY" not in raw
    spans = {s["spanId"]: s for s in got["spans"]}
    assert set(spans) == {r["span_id"] for r in tr.records}
    by_name = {}
    for s in spans.values():
        by_name.setdefault(s["name"], []).append(s)
    chat, cut = sorted(by_name["chat claude-sonnet-4-5"],
                       key=lambda s: int(s["startTimeUnixNano"]))
    assert json.loads(attrs(cut["attributes"])["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "C" * 110 + " [REDACTED]"}]}]
    assert "gen_ai.system_instructions" not in attrs(cut["attributes"])
    ca = attrs(chat["attributes"])
    assert chat["status"] == {"code": 0, "message": ""} and "error.type" not in ca
    # the last message's text redacted, then cut at 128 bytes (half of 256); the first message
    # (200 As, cut to 128) no longer fits beside the two newer ones and is left out
    kept = "My key is [REDACTED], keep it. "
    assert json.loads(ca["gen_ai.input.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "ok"}]},
        {"role": "user", "parts": [{"type": "text", "content": kept + "B" * (128 - len(kept))}]}]
    assert json.loads(ca["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "You are terse."}]
    assert json.loads(ca["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Let me look that up."}],
         "finish_reason": "end_turn"}]
    # the refused call: ERROR with the API's words, and its error span below it
    (failed,) = by_name["chat bad-model"]
    fa = attrs(failed["attributes"])
    assert failed["kind"] == 3
    assert failed["status"] == {"code": 2, "message": "The model `bad-model` does not exist"}
    assert fa["error.type"] == "invalid_request_error"
    assert fa["http.response.status_code"] == 404
    assert json.loads(fa["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert "gen_ai.output.messages" not in fa
    (err,) = by_name["error invalid_request_error"]
    assert err["parentSpanId"] == failed["spanId"]
    assert err["status"] == {"code": 2, "message": "The model `bad-model` does not exist"}
    ea = attrs(err["attributes"])
    assert ea["error.type"] == "invalid_request_error"
    assert ea["error.message"] == "The model `bad-model` does not exist"
    # the conversation it opened was never answered: unfinished, not an error
    (conv,) = by_name["conversation bad-model"]
    assert conv["status"] == {"code": 0, "message": ""}
    assert attrs(conv["attributes"])["unfinished"] is True


def test_cut_short_and_span_events(server, cert, collector, tmp_path):  # noqa: F811
    """A streamed answer cut by the agent's death is a CLIENT span with status UNSET and
    unfinished: true, as is its conversation; a command that replaced itself (bash running
    the last command of a list in its own process) has span events whose attributes say the
    command line, and a tool call's runtime events are span events too."""
    agent = Target(["/usr/bin/python3", CODING, str(server), str(cert / "cert.pem")])
    try:
        tr = Tracer(["-p", agent.pid, "-o", "jsonl", "--otlp", collector.url,
                     "--otlp-protocol", "http/json", "--spool-dir", tmp_path / "spool"])
        assert agent.call("chain", timeout=60) == "chain Listed."
        assert agent.call("killme") == "streaming"
        time.sleep(1.0)
        agent.p.send_signal(signal.SIGKILL)
        agent.p.wait()
        assert tr.finish(timeout=60) == 0, tr.err_lines
    finally:
        agent.kill()
    spans = {s["spanId"]: s for s in collector.get()["spans"]}
    assert set(spans) == {r["span_id"] for r in tr.records}
    (bash,) = [s for s in spans.values() if s["name"] == "exec bash -lc echo start; ls /"]
    ev = bash["events"][-1]
    assert ev["name"] == "exec"
    assert attrs(ev["attributes"]) == {"process.command_line": "ls /"}
    assert int(bash["startTimeUnixNano"]) <= int(ev["timeUnixNano"]) <= \
        int(bash["endTimeUnixNano"])
    (tool,) = [s for s in spans.values() if s["name"] == "execute_tool shell"]
    assert bash["parentSpanId"] == tool["spanId"]
    names = [e["name"] for e in tool["events"]]
    assert names.count("subprocess.Popen") == 1
    assert all(e["attributes"] == [] for e in tool["events"])
    convs = [s for s in spans.values() if s["name"] == "conversation gpt-4o"]
    (cut,) = [s for s in convs if attrs(s["attributes"]).get("unfinished")]
    (step,) = [s for s in spans.values() if s.get("parentSpanId") == cut["spanId"]]
    sa = attrs(step["attributes"])
    assert step["name"] == "chat gpt-4o" and step["kind"] == 3
    # (OTLP/JSON leaves out what is the default: an unset status is {})
    assert step["status"] == {} and cut["status"] == {}
    assert sa["unfinished"] is True and "error.type" not in sa
    assert sa["gen_ai.request.stream"] is True
    assert sa["llm.incomplete"] is True
    # the finished conversation says nothing of the sort
    (done,) = [s for s in convs if s is not cut]
    assert "unfinished" not in attrs(done["attributes"])
