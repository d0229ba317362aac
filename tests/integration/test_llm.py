"""LLM API calls captured at the TLS boundary of a real client (Python's http.client over
libssl.so.3) talking to a local HTTPS server that speaks each provider's wire format. No probe
spec is given: the built-in TLS probes are chosen from what the client maps."""
import json
import os
import subprocess

import pytest
from harness import ROOT, Target, Tracer

SERVER = os.path.join(ROOT, "tests", "servers", "llm_server.py")
CLIENT = os.path.join(ROOT, "tests", "targets", "llm_client.py")
PY = "/usr/bin/python3"
TOOLS_OPENAI = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}},
                {"type": "function", "function": {"name": "search", "parameters": {}}}]
TOOLS_ANTHROPIC = [{"name": "get_weather", "input_schema": {"type": "object"}},
                   {"name": "get_time", "input_schema": {"type": "object"}}]
SECRETS = ["sk-test-SECRET0123456789", "sk-ant-api03-SECRETSECRET", "hunter2-password",
           "sk-live-INBODY-abcdef0123456789"]


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", d / "key.pem", "-out", d / "cert.pem", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    return d


@pytest.fixture(scope="module")
def server(cert):
    p = subprocess.Popen([PY, SERVER, cert / "cert.pem", cert / "key.pem"],
                         stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().split()[1])
    yield port
    p.kill()
    p.wait()


@pytest.fixture
def client(server, cert):
    t = Target([PY, CLIENT, str(server), str(cert / "cert.pem")])
    yield t
    t.kill()


def call(client, conn, path, body, *headers):
    line = f"call {conn} POST {path} {json.dumps(body)}"
    for h in headers:
        line += " ||| " + h
    return client.call(line)


def traced(client, *calls, extra=()):
    tr = Tracer(["-p", client.pid, "-o", "jsonl", *extra])
    replies = [call(client, *c) for c in calls]
    client.quit()
    assert tr.finish() == 0
    return tr, replies


def steps(tr):
    return [s for s in tr.spans() if s["trace_type"] == "reasoning_step"]


def children(tr, span, trace_type):
    return [s for s in tr.records if s.get("parent_span_id") == span["span_id"]
            and s["trace_type"] == trace_type]


def test_openai_chat_plain_and_streamed_on_one_keepalive_connection(client, server):  # noqa: F811
    req = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Weather in Paris?"}],
           "tools": TOOLS_OPENAI, "logprobs": True}
    tr, replies = traced(client,
                         ("a", "/v1/chat/completions", req),
                         ("a", "/v1/chat/completions",
                          dict(req, stream=True, stream_options={"include_usage": True})),
                         ("a", "/v1/chat/completions",
                          {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
    assert [r.split()[:2] for r in replies] == [["status", "200"]] * 3
    s = steps(tr)
    assert [x["name"] for x in s] == ["chat gpt-4o", "chat gpt-4o", "chat gpt-4o-mini"]
    for x, stream in zip(s, (False, True, False)):
        g = x["gen_ai"]
        assert g["operation"]["name"] == "chat"
        assert g["provider"]["name"] == "openai"
        assert g["response"]["id"] == "chatcmpl-abc123"
        assert g["usage"]["input_tokens"] == 42
        assert g["usage"]["output_tokens"] == 7
        assert g["usage"]["cache_read"]["input_tokens"] == 10
        assert x["llm"]["stream"] is stream
        assert x["llm"]["api"] == "chat.completions"
        assert x["status"] == "ok"
        assert x["http"]["response"]["status_code"] == 200
        assert x["http"]["request"]["body"]["truncated"] is False
        assert x["http"]["response"]["body"]["truncated"] is False
        assert x["url"]["path"] == "/v1/chat/completions"
        assert x["server"] == {"address": "localhost", "port": server}  # apart
        assert x["process"]["pid"] == client.pid
        assert 0 < x["duration_ms"] < 10000
    assert s[0]["gen_ai"]["request"]["model"] == "gpt-4o"
    assert s[0]["gen_ai"]["response"]["model"] == "gpt-4o-2024-08-06"
    assert [x["gen_ai"]["response"]["finish_reasons"] for x in s] == [
        ["tool_calls"], ["tool_calls"], ["stop"]]
    assert [x["llm"]["tool_calls"] for x in s] == [1, 1, 0]
    assert [x["llm"]["tools_offered"] for x in s] == [2, 2, 0]
    assert "time_to_first_chunk_ms" in s[1]["llm"]
    for x in s[:2]:
        (d,) = children(tr, x, "decision")
        assert d["name"] == "decision get_weather"
        assert d["trace_id"] == x["trace_id"]
        assert d["decision"]["options"] == ["get_weather", "search"]
        assert d["decision"]["selected"] == [{"name": "get_weather", "id": "call_weather_1",
                                              "arguments": '{"city":"Paris","unit":"celsius"}'}]
        assert d["decision"]["reasoning"] == "Let me check the weather."
        assert d["gen_ai"]["tool"]["name"] == "get_weather"
        assert d["gen_ai"]["tool"]["call"]["id"] == "call_weather_1"
    # Confidence only from logprobs: the plain response had them (exp(mean(-0.1, -0.3))).
    (d0,) = children(tr, s[0], "decision")
    assert d0["confidence_score"] == pytest.approx(0.818730753, abs=1e-6)
    (d1,) = children(tr, s[1], "decision")
    assert "confidence_score" not in d1
    assert children(tr, s[2], "decision") == []
    assert "0 dropped" in tr.summary()


def test_anthropic_streamed_and_plain_gzip(client):
    req = {"model": "claude-sonnet-4-5", "max_tokens": 256, "tools": TOOLS_ANTHROPIC,
           "messages": [{"role": "user", "content": "Weather?"}]}
    tr, replies = traced(client,
                         ("b", "/v1/messages", dict(req, stream=True)),
                         ("b", "/v1/messages?gzip=1", req, "Accept-Encoding=gzip"))
    s = steps(tr)
    assert [x["name"] for x in s] == ["chat claude-sonnet-4-5"] * 2
    for x, stream in zip(s, (True, False)):
        g = x["gen_ai"]
        assert g["provider"]["name"] == "anthropic"
        assert g["response"]["id"] == "msg_01XYZ"
        assert g["response"]["finish_reasons"] == ["tool_use"]
        assert g["usage"]["input_tokens"] == 30
        assert g["usage"]["output_tokens"] == 12
        assert g["usage"]["cache_read"]["input_tokens"] == 5
        assert x["llm"]["stream"] is stream
        (d,) = children(tr, x, "decision")
        assert d["decision"]["options"] == ["get_weather", "get_time"]
        assert d["decision"]["selected"] == [{"name": "get_weather", "id": "toolu_01A",
                                              "arguments": '{"city":"Paris","unit":"celsius"}'}]
        assert d["decision"]["reasoning"] == "Let me look that up."
        assert "confidence_score" not in d
    assert s[1]["url"]["query"] == "gzip=1"


def test_api_errors_become_error_spans(client):
    tr, replies = traced(client,
                         ("c", "/v1/messages", {"model": "bad-model", "max_tokens": 5,
                                                "messages": []}),
                         ("c", "/v1/chat/completions?gzip=1",
                          {"model": "bad-model", "messages": []}, "Accept-Encoding=gzip"))
    assert [r.split()[1] for r in replies] == ["400", "404"]
    s = steps(tr)
    assert [x["status"] for x in s] == ["error", "error"]
    errs = [children(tr, x, "error")[0] for x in s]
    assert [e["error"] for e in errs] == [
        {"type": "invalid_request_error", "message": "model: bad-model not found"},
        {"type": "invalid_request_error", "message": "The model `bad-model` does not exist"}]
    assert [e["name"] for e in errs] == ["error invalid_request_error"] * 2
    assert [x["http"]["response"]["status_code"] for x in s] == [400, 404]


def test_responses_api_and_ollama(client):
    tr, _ = traced(client,
                   ("d", "/v1/responses", {"model": "gpt-4.1", "input": "find agtrace",
                                           "tools": [{"type": "function", "name": "search"}]}),
                   ("d", "/v1/responses", {"model": "gpt-4.1", "input": "find agtrace",
                                           "stream": True,
                                           "tools": [{"type": "function", "name": "search"}]}),
                   ("d", "/api/chat", {"model": "llama3.2", "messages": [],
                                       "tools": TOOLS_OPENAI[:1]}))
    s = steps(tr)
    assert [(x["name"], x["llm"]["api"], x["llm"]["stream"]) for x in s] == [
        ("chat gpt-4.1", "responses", False), ("chat gpt-4.1", "responses", True),
        ("chat llama3.2", "ollama.chat", True)]
    for x in s[:2]:
        assert x["gen_ai"]["response"]["id"] == "resp_123"
        assert x["gen_ai"]["usage"] == {"input_tokens": 20, "output_tokens": 5,
                                        "cache_read": {"input_tokens": 0}}
        (d,) = children(tr, x, "decision")
        assert d["decision"]["selected"] == [{"name": "search", "id": "call_r1",
                                              "arguments": '{"q":"agtrace"}'}]
    o = s[2]
    assert o["gen_ai"]["provider"]["name"] == "ollama"
    assert o["gen_ai"]["usage"] == {"input_tokens": 26, "output_tokens": 9}
    assert o["gen_ai"]["response"]["finish_reasons"] == ["stop"]
    (d,) = children(tr, o, "decision")
    assert d["decision"]["selected"] == [{"name": "get_weather", "id": "ollama-call-0",
                                          "arguments": '{"city":"Paris"}'}]
    assert d["decision"]["reasoning"] == "Hello"


GEMINI_REQ = os.path.join(ROOT, "tests", "fixtures", "llm", "gemini", "studio-sse-call.request.json")
GEMINI_VERTEX = "/v1/projects/p1/locations/europe-west4/publishers/google/models/gemini-2.5-flash"


def test_gemini_streams_errors_and_key_in_query(client):
    """Gemini by a plain client: the JSON-array stream (no alt=sse) with the API key in the
    query, SSE on a Vertex AI v1 path, and an error; the SDK's own request body."""
    with open(GEMINI_REQ) as f:
        body = json.load(f)
    key = "x-goog-api-key=gm-header-SECRET-0123456789"
    tr, replies = traced(
        client,
        ("k", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?key=gm-query-SECRET-0123",
         body),
        ("k", GEMINI_VERTEX + ":streamGenerateContent?alt=sse", body, key),
        ("k", "/v1beta/models/bad-model:generateContent", body, key))
    assert [r.split()[1] for r in replies] == ["200", "200", "404"]
    s = steps(tr)
    assert [(x["name"], x["gen_ai"]["provider"]["name"], x["llm"]["stream"]) for x in s] == [
        ("generate_content gemini-2.5-flash", "gcp.gemini", True),
        ("generate_content gemini-2.5-flash", "gcp.vertex_ai", True),
        ("generate_content bad-model", "gcp.gemini", False)]
    assert s[0]["url"] == {"path": "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                           "query": "key=[REDACTED]"}
    for x in s[:2]:
        assert x["status"] == "ok"
        assert x["gen_ai"]["usage"] == {"input_tokens": 58, "output_tokens": 66,
                                        "cache_read": {"input_tokens": 32}}
        ttfc = x["gen_ai"]["response"].pop("time_to_first_chunk", None)  # streams only
        assert (0 < ttfc < 5) if x["llm"]["stream"] else ttfc is None, ttfc
        assert x["gen_ai"]["response"] == {"model": "gemini-2.5-flash", "id": "gemini-resp-1",
                                           "finish_reasons": ["STOP"]}
        (d,) = children(tr, x, "decision")
        assert d["decision"]["selected"] == [{"name": "get_weather", "id": "gemini-call-0-0",
                                              "arguments": '{"city":"Paris","unit":"celsius"}'}]
        assert d["decision"]["reasoning"] == "Let me check the weather."
        assert d["gen_ai"]["provider"]["name"] == x["gen_ai"]["provider"]["name"]
    err = s[2]
    assert err["status"] == "error"
    assert err["http"]["response"]["status_code"] == 404
    (e,) = children(tr, err, "error")
    assert e["name"] == "error NOT_FOUND"
    assert e["error"] == {"type": "NOT_FOUND", "message": "models/bad-model is not found for API "
                          "version v1beta, or is not supported for generateContent."}
    everything = "".join(tr.out)
    assert "gm-query-SECRET" not in everything and "gm-header-SECRET" not in everything


def test_unknown_json_is_a_plain_http_span(client):
    tr, _ = traced(client, ("e", "/internal/metrics?token=abc", {"x": 1}))
    (s,) = tr.spans()
    assert s["name"].startswith("POST localhost:")
    assert s["name"].endswith("/internal/metrics")
    # Changed with the agents branch (was tool_call): HTTP outside any tool call is http_call.
    assert s["trace_type"] == "http_call"
    assert "parent_span_id" not in s
    assert s["url"] == {"path": "/internal/metrics", "query": "token=[REDACTED]"}
    assert s["http"]["response"]["status_code"] == 200
    assert "gen_ai" not in s


def test_concurrent_connections(client):
    tr = Tracer(["-p", client.pid, "-o", "jsonl"])
    body = json.dumps({"model": "m-#I", "messages": [{"role": "user", "content": "x"}]})
    assert client.call(f"par 6 /v1/chat/completions {body}") == "par 6"
    client.quit()
    assert tr.finish() == 0
    s = steps(tr)
    assert sorted(x["gen_ai"]["request"]["model"] for x in s) == [f"m-{i}" for i in range(6)]
    for x in s:  # each response paired with its own request
        assert x["gen_ai"]["response"]["model"] == x["gen_ai"]["request"]["model"] + "-2024-08-06"
    assert len({x["process"]["thread"]["id"] for x in s}) == 6


def test_request_over_the_cap_is_marked_truncated(client):
    big = {"model": "gpt-4o", "messages": [{"role": "user", "content": "y" * 20000}]}
    tr, _ = traced(client, ("f", "/v1/chat/completions", big),
                   ("f", "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": []}),
                   extra=["--max-message", "8192"])
    s = steps(tr)
    # The request body was cut, so its model is unknown: the name falls back to the response's.
    assert [x["name"] for x in s] == ["chat gpt-4o-2024-08-06", "chat gpt-4o-mini"]
    assert s[0]["http"]["request"]["body"]["truncated"] is True
    assert s[0]["http"]["request"]["body"]["size"] == len(json.dumps(big))
    assert s[0]["gen_ai"]["response"]["model"] == "gpt-4o-2024-08-06"
    assert s[0]["gen_ai"]["usage"]["input_tokens"] == 42
    assert s[1]["http"]["request"]["body"]["truncated"] is False
    assert "tls_truncated_calls=1" in tr.summary()
    gap = int(tr.summary().split("capture_gap_bytes=")[1].split()[0])
    assert gap > 0


def test_no_secret_leaves_the_node(client):
    body = {"model": "gpt-4o", "tools": TOOLS_OPENAI, "api_key": "sk-live-INBODY-abcdef0123456789",
            "messages": [{"role": "user", "content": "password is hunter2-password"}]}
    for mode in ("jsonl", "tree"):
        t = Target(client.p.args)
        try:
            tr = Tracer(["-p", t.pid, "-o", mode, "--redact", "hunter2-[a-z]+"])
            call(t, "g", "/v1/chat/completions", body)
            call(t, "g", "/internal/x?api_key=sk-live-INBODY-abcdef0123456789", body)
            t.quit()
            assert tr.finish() == 0
        finally:
            t.kill()
        everything = "".join(tr.out) + "\n".join(tr.err_lines)
        assert "chat gpt-4o" in everything
        for secret in SECRETS:
            assert secret not in everything, (mode, secret)


def test_node_official_sdks_through_static_openssl(server, cert):
    node_agent = os.path.join(ROOT, "tests", "targets", "node_agent.mjs")
    t = Target(["node", node_agent, str(server)],
               env=dict(os.environ, NODE_EXTRA_CA_CERTS=str(cert / "cert.pem")))
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"])
        assert t.call("openai plain") == "openai get_weather"
        assert t.call("openai stream") == "openai chunks 8"
        assert t.call("anthropic plain") == "anthropic tool_use"
        assert t.call("anthropic stream") == "anthropic events 11"
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    (attach,) = tr.events("attach")
    # SSL_write(_ex) at entry, SSL_read(_ex) entry + return, SSL_free and SSL_shutdown in the
    # node binary; the system's TLS
    # libraries are probed ahead, for what node's children may run.
    node = os.path.realpath(subprocess.check_output(["which", "node"], text=True).strip())
    assert attach["message"] == (f"8 probe links; TLS: OpenSSL in {node} (in the executable); "
                                 "ready in libgnutls.so.30.34.3, libssl.so.3")
    s = steps(tr)
    assert [(x["name"], x["gen_ai"]["provider"]["name"], x["llm"]["stream"]) for x in s] == [
        ("chat gpt-4o", "openai", False), ("chat gpt-4o", "openai", True),
        ("chat claude-sonnet-4-5", "anthropic", False),
        ("chat claude-sonnet-4-5", "anthropic", True)]
    assert [(x["gen_ai"]["usage"]["input_tokens"], x["gen_ai"]["usage"]["output_tokens"])
            for x in s] == [(42, 7), (42, 7), (30, 12), (30, 12)]
    assert [children(tr, x, "decision")[0]["decision"]["selected"][0]["id"] for x in s] == [
        "call_weather_1", "call_weather_1", "toolu_01A", "toolu_01A"]
    assert [children(tr, x, "decision")[0]["decision"]["options"] for x in s] == [
        ["get_weather", "search"]] * 2 + [["get_weather", "get_time"]] * 2
    everything = "".join(tr.out)
    assert "sk-node-SECRET" not in everything and "sk-ant-node-SECRET" not in everything


@pytest.fixture(scope="module")
def plain_server():
    p = subprocess.Popen([PY, SERVER, "--plain"], stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().split()[1])
    yield port
    p.kill()
    p.wait()


def test_plaintext_http_to_a_local_model_server(plain_server):
    """Ollama/vLLM style: plain HTTP over loopback TCP, captured at the syscalls."""
    t = Target([PY, CLIENT, str(plain_server), "--plain"])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"])
        call(t, "o", "/api/chat", {"model": "llama3.2", "messages": [],
                                   "tools": TOOLS_OPENAI[:1]})
        big = {"model": "qwen2.5", "messages": [{"role": "user", "content": "z" * 40000}],
               "stream": True}
        call(t, "o", "/v1/chat/completions", big)  # a 40 kB request: several chunks
        call(t, "p", "/v1/chat/completions", {"model": "qwen2.5", "messages": []})
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    assert any("and TCP capture" in l for l in tr.err_lines)
    s = steps(tr)
    assert [(x["name"], x["llm"]["api"], x["llm"]["stream"]) for x in s] == [
        ("chat llama3.2", "ollama.chat", True), ("chat qwen2.5", "chat.completions", True),
        ("chat qwen2.5", "chat.completions", False)]
    for x in s:
        assert x["network"]["capture"] == "tcp"
        assert x["network"]["peer"]["address"] == f"127.0.0.1:{plain_server}"
        assert x["http"]["request"]["body"]["truncated"] is False
    assert s[1]["http"]["request"]["body"]["size"] == len(json.dumps(big))
    # Streamed without stream_options.include_usage: the API reports no usage, so none is shown.
    assert s[1]["gen_ai"]["usage"] == {}
    assert s[2]["gen_ai"]["usage"] == {"input_tokens": 42, "output_tokens": 7,
                                       "cache_read": {"input_tokens": 10}}
    (d,) = children(tr, s[0], "decision")
    assert d["decision"]["selected"][0]["name"] == "get_weather"
    assert "0 dropped" in tr.summary()


def test_tls_traffic_is_not_captured_twice(client):
    """With TCP capture on, an HTTPS connection's socket carries ciphertext: the kernel
    classifies it on its first bytes and copies nothing; the spans come from TLS alone."""
    tr, _ = traced(client, ("h", "/v1/chat/completions", {"model": "gpt-4o", "messages": []}),
                   extra=["--tcp"])
    (s,) = steps(tr)
    assert s["network"]["capture"] == "tls"
    assert "not_http=0" in tr.summary()


def test_gnutls_client(server, cert):
    """gnutls-cli (libgnutls.so.30): gnutls_record_send/recv return ssize_t."""
    p = subprocess.Popen(["gnutls-cli", "--x509cafile", str(cert / "cert.pem"), "-p",
                          str(server), "localhost"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        for line in p.stdout:
            if b"Handshake was completed" in line:
                break
        tr = Tracer(["-p", p.pid, "-o", "jsonl", "--no-tcp"])
        body = json.dumps({"model": "gpt-4o", "messages": [], "tools": TOOLS_OPENAI})
        p.stdin.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body.encode()))
        p.stdin.flush()
        got = b""
        while b"chatcmpl-abc123" not in got:  # the body ends without a newline
            chunk = p.stdout.read1(65536)
            assert chunk, got
            got += chunk
        p.stdin.close()
        p.wait(timeout=10)
        assert tr.finish() == 0
    finally:
        if p.poll() is None:
            p.kill()
    (attach,) = tr.events("attach")
    assert attach["message"] == ("6 probe links; TLS: GnuTLS in "
                                 "/usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3 (library); "
                                 "ready in libssl.so.3")
    (s,) = steps(tr)
    assert s["name"] == "chat gpt-4o"
    assert s["gen_ai"]["usage"]["input_tokens"] == 42
    (d,) = children(tr, s, "decision")
    assert d["decision"]["selected"][0]["id"] == "call_weather_1"


# The fixtures the official SDKs captured (tests/fixtures/llm, shared with the unit tests and
# the fuzz seeds), served again byte for byte by the test server (X-Replay) to a traced client
# sending the same request bodies: the same spans as the SDKs' own runs.
@pytest.mark.parametrize("name,step,tokens,calls", [
    ("openai/responses-stream-orchestrator-call", "chat gpt-4.1", (40, 9),
     [("ask_weather_expert", "call_ask")]),
    ("openai/chat-stream-call", "chat gpt-4o", (42, 7), [("get_weather", "call_weather_1")]),
    ("anthropic/messages-stream-call", "chat claude-sonnet-4-5", (30, 12),
     [("get_weather", "toolu_01A")]),
    ("ollama/chat-stream-call", "chat llama3.2", (26, 9), [("get_weather", "ollama-call-0")]),
])
def test_captured_sdk_exchanges_replayed(client, name, step, tokens, calls):
    fixtures = os.path.join(ROOT, "tests", "fixtures", "llm")
    with open(os.path.join(fixtures, name + ".meta.json")) as f:
        meta = json.load(f)
    with open(os.path.join(fixtures, name + ".request.json")) as f:
        body = json.loads(f.read())
    tr, replies = traced(client, ("r", meta["path"], body, "X-Replay=" + name))
    assert replies[0].startswith("status 200 ")
    (s,) = [r for r in tr.spans() if r["trace_type"] == "reasoning_step"]
    assert s["name"] == step
    assert s["llm"]["stream"] is True
    assert (s["gen_ai"]["usage"]["input_tokens"], s["gen_ai"]["usage"]["output_tokens"]) == tokens
    (dec,) = [r for r in tr.spans() if r["trace_type"] == "decision"]
    assert [(c["name"], c["id"]) for c in dec["decision"]["selected"]] == calls
    assert dec["parent_span_id"] == s["span_id"]


SLOW_CLIENT = r'''
import os, socket, ssl, sys
port, cafile, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
print("ready", os.getpid(), flush=True)
sys.stdin.readline()
ctx = ssl.create_default_context(cafile=cafile)
raw = socket.create_connection(("localhost", port))
raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
s = ctx.wrap_socket(raw, server_hostname="localhost")
s.settimeout(20)  # non-blocking underneath: SSL_write_ex meets WANT_WRITE and is called again
body = ('{"model":"gpt-4o","messages":[{"role":"user","content":"' + "x" * size + '"}]}').encode()
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
          b"application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
resp = b""
while b"\r\n\r\n" not in resp or len(resp.split(b"\r\n\r\n", 1)[1]) < int(
        resp.split(b"Content-Length: ")[1].split(b"\r\n")[0]):
    resp += s.recv(65536)
print("done", len(body), resp.split(b" ")[1].decode(), flush=True)
sys.stdin.readline()
'''


@pytest.mark.parametrize("probes", ["funnel", "exported"])
def test_write_copied_at_entry_once_across_want_write_retries(cert, tmp_path, probes):
    """A write on a non-blocking socket that the peer does not drain fails with WANT_WRITE and
    is called again with the same arguments, many times: the request is still captured exactly
    once, byte for byte. Writes are copied at their entry (no return probe: OpenSSL writes all
    of it or fails), the retries recognised in the kernel. funnel: the shipped openssl spec on
    Debian's libssl.so.3, which probes ssl_write_internal, the function SSL_write_ex runs.
    exported: the same spec without its funnel, so SSL_write_ex itself is probed (what node's
    own OpenSSL and an OpenSSL 1.1 libssl get)."""
    import socket
    import ssl
    import threading
    import time

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert / "cert.pem", cert / "key.pem")
    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]
    answer = json.dumps({"id": "chatcmpl-slow", "object": "chat.completion", "model": "gpt-4o",
                         "choices": [{"index": 0, "finish_reason": "stop", "message": {
                             "role": "assistant", "content": "ok"}}],
                         "usage": {"prompt_tokens": 5, "completion_tokens": 1}}).encode()

    def serve():
        c, _ = lsock.accept()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        t = ctx.wrap_socket(c, server_side=True)
        time.sleep(1.5)  # the client's writes back up meanwhile
        data = b""
        while b"\r\n\r\n" not in data:
            data += t.recv(65536)
        head, rest = data.split(b"\r\n\r\n", 1)
        n = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        while len(rest) < n:
            rest += t.recv(65536)
            time.sleep(0.001)  # a slow reader all along
        t.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d"
                  b"\r\n\r\n%s" % (len(answer), answer))
        t.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    size = 3 << 20
    client = Target([PY, "-c", SLOW_CLIENT, str(port), str(cert / "cert.pem"), str(size)])
    try:
        extra = []
        if probes == "exported":
            spec = json.load(open(os.path.join(ROOT, "probes", "openssl.json")))
            del spec["funnel"]
            spec["probes"] = [p for p in spec["probes"] if "role" not in p]
            (tmp_path / "openssl-exported.json").write_text(json.dumps(spec))
            extra = ["--probes", str(tmp_path / "openssl-exported.json")]
        tr = Tracer(["-p", client.pid, "-o", "jsonl", "--max-message", str(8 << 20)] + extra)
        reply = client.call("go", timeout=60)
        client.quit()
        assert tr.finish() == 0
    finally:
        client.kill()
        lsock.close()
    body_len = len('{"model":"gpt-4o","messages":[{"role":"user","content":""}]}') + size
    assert reply == f"done {body_len} 200"
    # funnel: python:audit, ssl_write_internal at entry, ssl_read_internal at entry and return,
    # SSL_free, SSL_shutdown;
    # exported: SSL_write and SSL_write_ex at entry, SSL_read and SSL_read_ex at entry and
    # return, SSL_free, SSL_shutdown
    (attach,) = tr.events("attach")
    assert attach["message"].startswith("6 probe links; " if probes == "funnel" else
                                        "8 probe links; "), attach
    (s,) = steps(tr)
    assert s["name"] == "chat gpt-4o"
    assert s["gen_ai"]["response"]["id"] == "chatcmpl-slow"
    assert s["http"]["request"]["body"] == {"size": body_len, "truncated": False}
    assert "capture_gap_bytes=0 " in tr.summary()
def test_one_malformed_response_among_six(client):
    """One response breaks its chunked encoding (the client gives up on the connection and opens
    a new one for the next call, whose SSL object may well get the same address): the framing
    error is counted, that exchange is handed over cut, and the five others are exact."""
    calls = []
    for i in range(1, 7):
        req = {"model": f"m-{i}", "messages": [{"role": "user", "content": "x"}], "stream": True,
               "stream_options": {"include_usage": True}}
        calls.append(("z", "/v1/chat/completions", req) + (("X-Bad-Chunked=1",) if i == 3 else ()))
    tr, replies = traced(client, *calls)
    assert [r.split()[0] for r in replies] == ["status"] * 2 + ["error"] + ["status"] * 3
    s = steps(tr)
    assert [x["gen_ai"]["request"]["model"] for x in s] == [f"m-{i}" for i in range(1, 7)]
    for x in s[:2] + s[3:]:
        assert x["status"] == "ok"
        assert x["gen_ai"]["response"]["model"] == x["gen_ai"]["request"]["model"] + "-2024-08-06"
        assert x["gen_ai"]["usage"] == {"input_tokens": 42, "output_tokens": 7,
                                        "cache_read": {"input_tokens": 10}}
        assert "incomplete" not in x["llm"]
    bad = s[2]
    assert bad["http"]["response"]["status_code"] == 200
    assert bad["llm"]["incomplete"] is True
    assert "usage" not in bad["gen_ai"] or bad["gen_ai"]["usage"] == {}
    summary = tr.summary()
    assert "http1_resync=1 " in summary
    assert "response_without_request=0 " in summary
    # The broken connection was freed by the client (SSL_free), the other ended with its process.
    assert int(summary.split("conns_closed=")[1].split()[0]) >= 1


@pytest.mark.parametrize("lang", ["c", "go"])
def test_tls_connection_ends_with_its_socket(cert, lang):
    """Clients that end every connection by closing the socket alone: an OpenSSL one that reuses
    its SSL object (SSL_clear, no SSL_shutdown, SSL_free only at the end: every connection has
    the same address), and a Go one that closes the net.Conn under its *tls.Conn (whose Close,
    the only end Go's TLS probes see, is never called). Five requests, each on a new TCP
    connection; two answers run until the server closes (no length), one request is never
    answered. The socket's end ends the TLS connection, so each request gets its own answer or
    none, and a body read until the close ends at it, before the next request."""
    import socket
    import ssl
    import threading

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert / "cert.pem", cert / "key.pem")
    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]

    def answer(model, i):
        return json.dumps({"id": f"chatcmpl-{i}", "object": "chat.completion",
                           "model": model + "-resp",
                           "choices": [{"index": 0, "finish_reason": "stop", "message": {
                               "role": "assistant", "content": f"answer {i}"}}],
                           "usage": {"prompt_tokens": 10 + i, "completion_tokens": i}}).encode()

    def serve():
        for i in range(1, 6):
            c, _ = lsock.accept()
            t = ctx.wrap_socket(c, server_side=True)
            data = b""
            while b"\r\n\r\n" not in data:
                data += t.recv(65536)
            head, rest = data.split(b"\r\n\r\n", 1)
            n = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            while len(rest) < n:
                rest += t.recv(65536)
            model = json.loads(rest)["model"]
            body = answer(model, i)
            if i in (1, 4):  # read until the connection closes
                t.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Connection: close\r\n\r\n" + body)
            elif i != 2:  # 2: closed without an answer
                t.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            t.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    if lang == "c":
        client = Target([os.path.join(ROOT, "build", "tests", "tls_reuse"), str(port)])
        cmd = "call {}"
    else:
        client = Target([os.path.join(ROOT, "build", "tests", "gotls")],
                        env=dict(os.environ, SSL_CERT_FILE=str(cert / "cert.pem"),
                                 SSL_CERT_DIR="/nonexistent"))
        cmd = f"raw 127.0.0.1:{port} {{}}"
    try:
        tr = Tracer(["-p", client.pid, "-o", "jsonl"])
        replies = [client.call(cmd.format(f"m-{i}")) for i in range(1, 6)]
        client.quit()
        assert tr.finish() == 0
    finally:
        client.kill()
        lsock.close()
    assert [r.split()[1] != "0" for r in replies] == [True, False, True, True, True]
    s = steps(tr)
    assert [x["gen_ai"]["request"]["model"] for x in s] == [f"m-{i}" for i in range(1, 6)]
    for i, x in enumerate(s, 1):
        assert x["name"] == f"chat m-{i}"
        if i == 2:
            assert x["status"] == "unfinished"
            assert "response" not in x["http"]
            continue
        assert x["status"] == "ok"
        assert x["http"]["response"]["status_code"] == 200
        assert x["gen_ai"]["response"]["id"] == f"chatcmpl-{i}"
        assert x["gen_ai"]["response"]["model"] == f"m-{i}-resp"
        assert x["gen_ai"]["usage"] == {"input_tokens": 10 + i, "output_tokens": i}
        assert x["http"]["response"]["body"]["size"] == len(answer(f"m-{i}", i))
    # Each exchange ended with its connection, before the next request began.
    for a, b in zip(s, s[1:]):
        assert a["end_time"] <= b["@timestamp"]
    summary = tr.summary()
    assert "conns_closed=5 " in summary
    assert "http1_resync=0 " in summary
    assert "response_without_request=0 " in summary


CURL_AGENT = r'''
import subprocess, sys
import os
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    if line.strip() == "quit":
        break
    flag, url, model = line.split()
    out = subprocess.run(["curl", "-s", flag, "-H", "Content-Type: application/json",
                          "-H", "Authorization: Bearer sk-test-SECRET0123456789",
                          "-d", '{"model":"%s","messages":[{"role":"user","content":"hi"}]}'
                          % model, "-w", "\n%{http_code} %{http_version}", url],
                         capture_output=True, text=True).stdout
    print("reply " + " ".join(out.split("\n")[-1:] + [out.split('"proto":"')[1].split('"')[0]
                                                       if '"proto"' in out else "-"]),
          flush=True)
'''


@pytest.fixture(scope="module")
def h2c_server():
    p = subprocess.Popen([os.path.join(ROOT, "build", "tests", "h2c_server")],
                         stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().split()[1])
    yield port
    p.kill()
    p.wait()


@pytest.mark.parametrize("flag,proto", [("--http2-prior-knowledge", "h2c"),
                                        ("--http2", "h2c-upgrade")])
def test_cleartext_http2(h2c_server, flag, proto):
    """HTTP/2 over plain TCP to a local model server: with prior knowledge (the connection opens
    with HTTP/2's preface), and by HTTP/1.1's Upgrade: h2c (the request goes as HTTP/1.1, the
    server answers 101 and then the response as HTTP/2's stream 1). Each call is one curl of
    the traced agent, a connection of its own: the exchanges are exact, nothing dropped."""
    url = f"http://127.0.0.1:{h2c_server}/v1/chat/completions"
    t = Target([PY, "-c", CURL_AGENT])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"])
        replies = [t.call(f"{flag} {url} {m}") for m in ("gpt-4o", "llama3.2")]
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    assert replies == [f"reply 200 2 {proto}"] * 2
    s = steps(tr)
    assert [x["name"] for x in s] == ["chat gpt-4o", "chat llama3.2"]
    for x, m in zip(s, ("gpt-4o", "llama3.2")):
        assert x["status"] == "ok"
        assert x["network"]["capture"] == "tcp"
        assert x["network"]["peer"]["address"] == f"127.0.0.1:{h2c_server}"
        assert x["url"]["path"] == "/v1/chat/completions"
        assert x["http"]["request"]["method"] == "POST"
        assert x["http"]["response"]["status_code"] == 200
        assert x["gen_ai"]["request"]["model"] == m
        assert x["gen_ai"]["response"]["model"] == m + "-2024-08-06"
        assert x["gen_ai"]["response"]["id"] == "chatcmpl-h2c-1"
        assert x["gen_ai"]["usage"] == {"input_tokens": 42, "output_tokens": 7}
        assert x["http"]["request"]["body"] == {
            "size": len('{"model":"%s","messages":[{"role":"user","content":"hi"}]}' % m),
            "truncated": False}
        assert x["process"]["pid"] == t.pid
    summary = tr.summary()
    assert "0 dropped" in summary
    for name in ("http2_framing_error", "http2_unmatched_responses", "http2_ignored_bytes",
                 "http1_resync", "not_http", "unknown_protocol"):
        assert f"{name}=0 " in summary, name


def test_h2c_upgrade_declined(plain_server):
    """curl --http2 asks an HTTP/1.1-only server to upgrade (Upgrade: h2c); the server answers
    as HTTP/1.1, and the exchange is an HTTP/1.1 one, exact, nothing dropped."""
    url = f"http://127.0.0.1:{plain_server}/v1/chat/completions"
    t = Target([PY, "-c", CURL_AGENT])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"])
        replies = [t.call(f"--http2 {url} {m}") for m in ("gpt-4o", "qwen2.5")]
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    assert [r.split()[:2] for r in replies] == [["reply", "200"]] * 2
    s = steps(tr)
    assert [x["name"] for x in s] == ["chat gpt-4o", "chat qwen2.5"]
    for x in s:
        assert x["status"] == "ok"
        assert x["http"]["response"]["status_code"] == 200
        assert x["gen_ai"]["response"]["model"] == x["gen_ai"]["request"]["model"] + "-2024-08-06"
        assert x["gen_ai"]["usage"] == {"input_tokens": 42, "output_tokens": 7,
                                        "cache_read": {"input_tokens": 10}}
    summary = tr.summary()
    assert "0 dropped" in summary
    assert "http1_resync=0 " in summary
