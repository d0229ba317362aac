"""A local HTTPS server that speaks the LLM providers' wire formats exactly (OpenAI Chat
Completions and Responses, Anthropic Messages, Ollama /api/chat, Google Gemini generateContent
on AI Studio and Vertex AI paths), streamed (SSE over chunked encoding, NDJSON, or Gemini's JSON
array) and not, optionally gzip-compressed, with keep-alive. Its answers are fixed so that tests
can assert exact values: they are the captured fixtures of tests/fixtures/llm (see fixture()). Run: llm_server.py CERT KEY (or --plain) -> prints "listening PORT".
With LLM_SERVER_RECORD=DIR set, each exchange's bodies are written to DIR exactly as they went
over the wire (how tests/fixtures/llm/ was captured from the official SDKs). A request with an
X-Reply header gets a scripted answer (scripted()); one with X-Replay: PROVIDER/NAME gets the
captured fixture tests/fixtures/llm/PROVIDER/NAME.response again, byte for byte."""
import gzip
import json
import os
import re
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "llm")
# X-Invalid-Utf8: the first text becomes the second bytes (3 invalid sequences: \xc3 cut short,
# \xff, \xfe; the \xc3\xa9 of "café" is valid).
INVALID_UTF8_FROM = "Let me check the weather."
INVALID_UTF8_TO = b"Let me check the w\xc3eather \xff\xfe caf\xc3\xa9."


# The fixed answers are the captured fixtures (tests/fixtures/llm), the same bytes the unit
# tests and the fuzz seeds read: the server picks the fixture of the case (a tool call, or the
# answer once the result came back; plain or streamed) and puts in it what the request decides
# (the model asked for, usage chunks asked for). Answers without a fixture of their own (Chat
# Completions' streamed final answer, Anthropic's plain final answer) are derived from the
# fixture of the same answer in the other form.
def fixture(name):
    """(status, Content-Type, body) of the captured response PROVIDER/NAME."""
    base = os.path.join(FIXTURES, *name.split("/"))
    with open(base + ".meta.json") as f:
        meta = json.load(f)
    with open(base + ".response", "rb") as f:
        return meta["status"], meta["content_type"], f.read()


def fixture_json(name):
    return json.loads(fixture(name)[2])


def fixture_events(name):
    """A captured event stream: [(event name or None, data parsed as JSON)], [DONE] left out."""
    out = []
    for block in fixture(name)[2].decode().replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if "data" in fields and fields["data"] != "[DONE]":
            out.append((fields.get("event"), json.loads(fields["data"])))
    return out


def openai_chat(req):
    model = req["model"]
    if model == "bad-model":
        status, _, body = fixture("openai/chat-error")
        return status, json.loads(body)
    tools = req.get("tools")
    msgs = req.get("messages") or [{}]
    if msgs[-1].get("role") == "tool":  # the tool's result came back: answer, no more tools
        tools = None
    full = fixture_json("openai/chat-plain-call" if tools else "openai/chat-loop-answer")
    full["model"] = model + "-2024-08-06"  # captured for gpt-4o: the model asked, dated
    if req.get("logprobs"):
        full["choices"][0]["logprobs"] = {"content": [{"token": "Let", "logprob": -0.1},
                                                      {"token": " me", "logprob": -0.3}]}
    return 200, full


def openai_chat_stream(req):
    status, full = openai_chat(req)
    usage = req.get("stream_options", {}).get("include_usage")
    if "tool_calls" in full["choices"][0]["message"]:
        events = [dict(e, model=full["model"]) for _, e in
                  fixture_events("openai/chat-stream-call") if usage or e["choices"]]
        return ["data: " + json.dumps(e) + "\n\n" for e in events] + ["data: [DONE]\n\n"]
    # The final answer streamed: the chunks the SDKs get, from the plain answer's fixture.
    base = {"id": full["id"], "object": "chat.completion.chunk", "created": full["created"],
            "model": full["model"]}
    text = full["choices"][0]["message"]["content"]
    deltas = [{"role": "assistant", "content": ""}, {"content": text[:9]}, {"content": text[9:]}]
    events = [dict(base, choices=[{"index": 0, "delta": d, "finish_reason": None}])
              for d in deltas]
    events.append(dict(base, choices=[{"index": 0, "delta": {},
                                       "finish_reason": full["choices"][0]["finish_reason"]}]))
    if usage:
        events.append(dict(base, choices=[], usage=full["usage"]))
    return ["data: " + json.dumps(e) + "\n\n" for e in events] + ["data: [DONE]\n\n"]


def anthropic_answers(req):
    """Whether the request asks for tools (no tool_result came back yet)."""
    last = (req.get("messages") or [{}])[-1].get("content")
    return bool(req.get("tools")) and not (
        isinstance(last, list) and any(b.get("type") == "tool_result" for b in last))


def anthropic(req):
    if req["model"] == "bad-model":
        status, _, body = fixture("anthropic/messages-error")
        return status, json.loads(body)
    m = fixture_json("anthropic/messages-plain-call")
    if not anthropic_answers(req):  # the final answer: the call's text without the call
        m["content"] = [b for b in m["content"] if b["type"] == "text"]
        m["stop_reason"] = "end_turn"
    m["model"] = req["model"]
    return 200, m


def anthropic_stream(req):
    out = []
    name = "messages-stream-call" if anthropic_answers(req) else "messages-loop-answer"
    for ev, data in fixture_events("anthropic/" + name):
        if ev == "message_start":
            data["message"]["model"] = req["model"]
        out.append(f"event: {ev}\ndata: {json.dumps(data)}\n\n")
    return out


def responses(req):
    return 200, dict(fixture_json("openai/responses-plain-call"), model=req["model"])


def responses_stream(req):
    out = []
    for ev, data in fixture_events("openai/responses-stream-call"):
        if "response" in data:
            data["response"]["model"] = req["model"]
        out.append(f"event: {ev}\ndata: {json.dumps(data)}\n\n")
    return out


def ollama(req):
    """The NDJSON lines of the streamed answer, and the plain answer."""
    _, _, body = fixture("ollama/chat-stream-call")
    lines = [dict(json.loads(l), model=req["model"]) for l in body.decode().splitlines()]
    return lines, dict(fixture_json("ollama/chat-plain-call"), model=req["model"])


# Google Gemini (REST v1beta / Vertex AI v1): GenerateContentResponse bodies. A two-step tool
# loop: while the request offers tools and its last content carries no functionResponse, the
# model thinks (a thought part), says a sentence and calls get_weather; once the result comes
# back it answers. Which functionCalls carry an id is the script's choice, by model:
# GEMINI_CALL_IDS names the models whose calls have one (the API may leave it out).
GEMINI_PATH = re.compile(r"(?:/v1(?:beta1?)?)?(?:/projects/[^/]+/locations/[^/]+)?"
                         r"(?:/publishers/google)?/models/([^/:]+):(generateContent|"
                         r"streamGenerateContent)")
GEMINI_CALL_IDS = {"gemini-2.5-pro": "fc-weather-1"}


def gemini(req, model):
    """(status, body, chunks): the whole response, and the pieces a stream sends it in, from the
    fixtures of the AI Studio loop (plain and SSE), with the model and the call's id put in."""
    if model == "bad-model":
        status, _, body = fixture("gemini/studio-error")
        return status, json.loads(body), None
    last = (req.get("contents") or [{}])[-1]
    answered = any("functionResponse" in p for p in last.get("parts", []))
    step = "answer" if answered or not req.get("tools") else "call"
    full = fixture_json(f"gemini/studio-plain-{step}")
    chunks = [c for _, c in fixture_events(f"gemini/studio-sse-{step}")]
    for c in [full] + chunks:
        c["modelVersion"] = model
        for part in c["candidates"][0]["content"]["parts"]:
            if "functionCall" in part:
                part["functionCall"].pop("id", None)
                if model in GEMINI_CALL_IDS:
                    part["functionCall"]["id"] = GEMINI_CALL_IDS[model]
    return 200, full, chunks


# Scripted replies: a request with an X-Reply header (JSON: {"calls": [{"id", "name", "args"}],
# "text": "...", "slow": SECONDS, "usage": [IN, OUT]}; for Responses also "id", "reasoning",
# "thinking" and "cached" token counts, calls with a "namespace" or a custom tool's "input") is
# answered in its API's format (Chat Completions, Messages, Responses), streamed when the request
# asks, with exactly those calls and text: the scripted agents of tests/targets/coding_agent.py
# decide what "the model" says. "slow" sleeps between stream events (a stream an agent dies in
# the middle of).
def scripted(path, req, reply):
    calls, text = reply.get("calls", []), reply.get("text", "")
    tin, tout = reply.get("usage", [50, 10])
    model = req.get("model", "m")
    if path.endswith("/chat/completions"):
        msg = {"role": "assistant", "content": text or None}
        if calls:
            msg["tool_calls"] = [{"id": c["id"], "type": "function", "function": {
                "name": c["name"], "arguments": json.dumps(c["args"], separators=(",", ":"))}}
                for c in calls]
        full = {"id": "chatcmpl-s", "object": "chat.completion", "created": 1764000000,
                "model": model, "choices": [{"index": 0, "message": msg,
                                             "finish_reason": "tool_calls" if calls else "stop"}],
                "usage": {"prompt_tokens": tin, "completion_tokens": tout,
                          "total_tokens": tin + tout}}
        if not req.get("stream"):
            return full, None
        base = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1764000000,
                "model": model}
        evs = [dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}}])]
        for i in range(0, len(text), 8):
            evs.append(dict(base, choices=[{"index": 0, "delta": {"content": text[i:i + 8]}}]))
        for i, c in enumerate(calls):
            evs.append(dict(base, choices=[{"index": 0, "delta": {"tool_calls": [{
                "index": i, "id": c["id"], "type": "function", "function": {
                    "name": c["name"], "arguments": json.dumps(c["args"], separators=(",", ":"))}}]}}]))
        evs.append(dict(base, choices=[{"index": 0, "delta": {},
                                        "finish_reason": "tool_calls" if calls else "stop"}]))
        evs.append(dict(base, choices=[], usage=full["usage"]))
        return full, ["data: " + json.dumps(e) + "\n\n" for e in evs] + ["data: [DONE]\n\n"]
    if path.endswith("/messages"):
        content = ([{"type": "text", "text": text}] if text else []) + [
            {"type": "tool_use", "id": c["id"], "name": c["name"], "input": c["args"]}
            for c in calls]
        full = {"id": "msg_s", "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": "tool_use" if calls else "end_turn",
                "stop_sequence": None, "usage": {"input_tokens": tin, "output_tokens": tout}}
        if not req.get("stream"):
            return full, None
        out = []

        def ev(name, data):
            out.append(f"event: {name}\ndata: {json.dumps(data)}\n\n")
        ev("message_start", {"type": "message_start", "message": dict(
            full, content=[], stop_reason=None, usage={"input_tokens": tin, "output_tokens": 1})})
        for i, b in enumerate(content):
            if b["type"] == "text":
                ev("content_block_start", {"type": "content_block_start", "index": i,
                                           "content_block": {"type": "text", "text": ""}})
                for k in range(0, len(text), 8):
                    ev("content_block_delta", {"type": "content_block_delta", "index": i,
                                               "delta": {"type": "text_delta",
                                                         "text": text[k:k + 8]}})
            else:
                ev("content_block_start", {"type": "content_block_start", "index": i,
                                           "content_block": dict(b, input={})})
                ev("content_block_delta", {"type": "content_block_delta", "index": i,
                                           "delta": {"type": "input_json_delta",
                                                     "partial_json": json.dumps(b["input"])}})
            ev("content_block_stop", {"type": "content_block_stop", "index": i})
        ev("message_delta", {"type": "message_delta", "delta": {
            "stop_reason": full["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": tout}})
        ev("message_stop", {"type": "message_stop"})
        return full, out
    # Responses API, as coding agents (Codex) get it: a reasoning item first when the reply has
    # "reasoning" (its summary; with encrypted_content when the request says store: false, the
    # agent then sends it back in its history), the text, then the calls: function calls, a
    # namespaced tool's ("namespace": "github" names the tool open_pr of the namespace github),
    # a custom tool's (free text "input" instead of JSON arguments).
    output = []
    if reply.get("reasoning"):
        item = {"type": "reasoning", "id": "rs_" + reply.get("id", "s"),
                "summary": [{"type": "summary_text", "text": reply["reasoning"]}]}
        if req.get("store") is False:
            item["encrypted_content"] = "gAAAAB" + reply.get("id", "s") + "=="
        output.append(item)
    if text:
        output.append({"type": "message", "id": "msg_s", "role": "assistant", "status":
                       "completed", "content": [{"type": "output_text", "text": text,
                                                 "annotations": []}]})
    for c in calls:
        if "input" in c:
            output.append({"type": "custom_tool_call", "id": "ctc_" + c["id"], "call_id": c["id"],
                           "name": c["name"], "input": c["input"], "status": "completed"})
            continue
        item = {"type": "function_call", "id": "fc_" + c["id"], "call_id": c["id"],
                "name": c["name"], "arguments": json.dumps(c["args"], separators=(",", ":")),
                "status": "completed"}
        if c.get("namespace"):
            item["namespace"] = c["namespace"]
        output.append(item)
    rid = reply.get("id", "resp_s")
    full = {"id": rid, "object": "response", "created_at": 1764000000, "status": "completed",
            "model": model, "output": output,
            "previous_response_id": req.get("previous_response_id"),
            "store": req.get("store", True),
            "usage": {"input_tokens": tin, "output_tokens": tout, "total_tokens": tin + tout,
                      "input_tokens_details": {"cached_tokens": reply.get("cached", 0)},
                      "output_tokens_details": {"reasoning_tokens": reply.get("thinking", 0)}}}
    if not req.get("stream"):
        return full, None
    evs = [{"type": "response.created", "response": dict(full, status="in_progress", output=[])}]
    for i, item in enumerate(output):
        if item["type"] == "message":
            evs.append({"type": "response.output_item.added", "output_index": i,
                        "item": dict(item, content=[], status="in_progress")})
            for k in range(0, len(text), 8):
                evs.append({"type": "response.output_text.delta", "output_index": i,
                            "content_index": 0, "delta": text[k:k + 8]})
        elif item["type"] == "reasoning":
            evs.append({"type": "response.output_item.added", "output_index": i,
                        "item": dict(item, summary=[])})
            evs.append({"type": "response.reasoning_summary_text.delta", "output_index": i,
                        "summary_index": 0, "delta": item["summary"][0]["text"]})
        elif item["type"] == "custom_tool_call":
            evs.append({"type": "response.output_item.added", "output_index": i,
                        "item": dict(item, input="", status="in_progress")})
            for k in range(0, len(item["input"]), 16):
                evs.append({"type": "response.custom_tool_call_input.delta", "output_index": i,
                            "item_id": item["id"], "delta": item["input"][k:k + 16]})
            evs.append({"type": "response.custom_tool_call_input.done", "output_index": i,
                        "item_id": item["id"], "input": item["input"]})
        else:
            evs.append({"type": "response.output_item.added", "output_index": i,
                        "item": dict(item, arguments="", status="in_progress")})
            evs.append({"type": "response.function_call_arguments.delta", "output_index": i,
                        "delta": item["arguments"]})
        evs.append({"type": "response.output_item.done", "output_index": i, "item": item})
    evs.append({"type": "response.completed", "response": full})
    return full, [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in evs]


# The agents of tests/targets/agents_sdk.mjs (@openai/agents over the Responses API), by their
# instructions: an orchestrator that asks a weather expert (an agent as a tool), then hands off
# to a reporter; the expert calls get_weather once, then answers. None: not one of them.
def agents_reply(req):
    instr = req.get("instructions") or ""
    items = req.get("input") if isinstance(req.get("input"), list) else []
    outputs = {i.get("call_id") for i in items if i.get("type") == "function_call_output"}
    if "You orchestrate" in instr:
        if "call_ask" not in outputs:
            return {"id": "resp_orch_1", "usage": [40, 9], "calls": [{
                "id": "call_ask", "name": "ask_weather_expert",
                "args": {"input": "Weather in Paris?"}}]}
        return {"id": "resp_orch_2", "usage": [60, 7], "calls": [{
            "id": "call_transfer", "name": "transfer_to_Reporter", "args": {}}]}
    if "weather expert" in instr:
        if "call_weather" not in outputs:
            return {"id": "resp_exp_1", "usage": [30, 6], "calls": [{
                "id": "call_weather", "name": "get_weather", "args": {"city": "Paris"}}]}
        return {"id": "resp_exp_2", "usage": [45, 5], "text": "Sunny in Paris."}
    if "write the report" in instr:
        return {"id": "resp_rep_1", "usage": [70, 8], "text": "Report: sunny in Paris."}
    return None


RECORD_LOCK = threading.Lock()


def record(path, headers, req_raw, status, ctype, resp_raw):
    """Keep one exchange's exact bodies (LLM_SERVER_RECORD=DIR), numbered in arrival order."""
    d = os.environ.get("LLM_SERVER_RECORD")
    if not d:
        return
    with RECORD_LOCK:
        os.makedirs(d, exist_ok=True)
        n = len([f for f in os.listdir(d) if f.endswith(".meta.json")]) + 1
        with open(os.path.join(d, f"{n:02d}.request.json"), "wb") as f:
            f.write(req_raw)
        with open(os.path.join(d, f"{n:02d}.response"), "wb") as f:
            f.write(resp_raw)
        with open(os.path.join(d, f"{n:02d}.meta.json"), "w") as f:
            json.dump({"path": path, "status": status, "content_type": ctype,
                       "request_headers": {k: v for k, v in headers.items()
                                           if k.lower() not in ("x-goog-api-key",
                                                                "authorization")}},
                      f, indent=1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out apart: no 40 ms delayed-ACK stall

    def log_message(self, *a):
        pass

    def send_json(self, status, obj, gz, ctype="application/json"):
        body = json.dumps(obj).encode()
        self.sent, self.sent_status, self.sent_ctype = body, status, ctype
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if gz:
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_invalid_utf8(self, status, obj):
        """X-Invalid-Utf8: the model's text with bytes that are not UTF-8, raw in the JSON
        string (a truncated sequence, two stray bytes; the rest valid), as a buggy or
        Latin-1 backend sends them."""
        body = json.dumps(obj, ensure_ascii=False).encode().replace(
            INVALID_UTF8_FROM.encode(), INVALID_UTF8_TO)
        self.sent, self.sent_status, self.sent_ctype = body, status, "application/json"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_stream(self, parts, ctype, slow=0):
        import time
        self.sent, self.sent_status, self.sent_ctype = "".join(parts).encode(), 200, ctype
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, p in enumerate(parts):
            data = p.encode()
            if i == 1 and self.headers.get("X-Bad-Chunked"):
                # A malformed response: a chunk size that is no hex number; the connection
                # cannot go on after it.
                self.wfile.write(b"zz\r\n%s\r\n" % data)
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            if slow:
                time.sleep(slow)
        self.wfile.write(b"0\r\n\r\n")

    def end_headers(self):
        if getattr(self, "headers", None) and self.headers.get("X-Close"):  # the last answer
            self.send_header("Connection", "close")
        super().end_headers()

    def do_HEAD(self):  # a client's warm-up
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def gemini(self, req, model, raw):
        """SSE with alt=sse (Google's events end in CRLF CRLF), else a JSON array when
        streamed, else one object."""
        status, body, chunks = gemini(req, model)
        sse = "alt=sse" in self.path
        if chunks is None:
            self.send_json(status, body, False, "application/json; charset=UTF-8")
            ctype = "application/json; charset=UTF-8"
        elif self.path.split("?")[0].endswith(":streamGenerateContent") and sse:
            ctype = "text/event-stream"
            self.send_stream(["data: " + json.dumps(c) + "\r\n\r\n" for c in chunks], ctype)
        elif self.path.split("?")[0].endswith(":streamGenerateContent"):
            ctype = "application/json; charset=UTF-8"
            parts = ["[" + json.dumps(chunks[0], indent=2)]
            parts += ["\n,\r\n" + json.dumps(c, indent=2) for c in chunks[1:]]
            self.send_stream(parts + ["\n]"], ctype)
        else:
            ctype = "application/json; charset=UTF-8"
            self.send_json(status, body, False, ctype)

    def replay(self, name):
        """X-Replay: PROVIDER/NAME answers with that fixture's response exactly as captured
        (tests/fixtures/llm): the bytes the SDKs got, served again."""
        status, ctype, body = fixture(name)
        if ctype.startswith(("text/event-stream", "application/x-ndjson")):
            parts = body.decode().split("\n\n")
            return self.send_stream([p + "\n\n" for p in parts[:-1]] + [parts[-1]] * bool(
                parts[-1]), ctype)
        self.sent, self.sent_status, self.sent_ctype = body, status, ctype
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        self.sent = None
        self.post(raw)
        if self.sent is not None:
            record(self.path, self.headers, raw, self.sent_status, self.sent_ctype, self.sent)

    def post(self, raw):
        if self.headers.get("X-Replay"):
            return self.replay(self.headers["X-Replay"])
        req = json.loads(raw)
        gz = "gzip" in self.path and "gzip" in self.headers.get("Accept-Encoding", "")
        path = self.path.split("?")[0]
        g = GEMINI_PATH.fullmatch(path)
        if g:
            return self.gemini(req, g.group(1), raw)
        if self.headers.get("X-Reply") or path.endswith("/responses"):
            reply = json.loads(self.headers.get("X-Reply") or "null") or agents_reply(req)
            if reply is not None:
                full, parts = scripted(path, req, reply)
                if parts is None:
                    return self.send_json(200, full, False)
                return self.send_stream(parts, "text/event-stream", reply.get("slow", 0))
        stream = req.get("stream", path == "/api/chat")
        if path.endswith("/chat/completions"):
            if stream and req["model"] != "bad-model":
                return self.send_stream(openai_chat_stream(req), "text/event-stream")
            if self.headers.get("X-Invalid-Utf8"):
                return self.send_invalid_utf8(*openai_chat(req))
            return self.send_json(*openai_chat(req), gz)
        if path.endswith("/responses"):
            if stream:
                return self.send_stream(responses_stream(req), "text/event-stream")
            return self.send_json(*responses(req), gz)
        if path.endswith("/messages"):
            if stream and req["model"] != "bad-model":
                return self.send_stream(anthropic_stream(req), "text/event-stream")
            return self.send_json(*anthropic(req), gz)
        if path == "/api/chat":
            lines, whole = ollama(req)
            if stream:
                return self.send_stream([json.dumps(l) + "\n" for l in lines],
                                        "application/x-ndjson")
            return self.send_json(200, whole, gz)
        self.send_json(200, {"ok": True, "path": path}, gz)


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if sys.argv[1] != "--plain":  # plain HTTP, as local model servers (Ollama, vLLM) speak
        cert, key = sys.argv[1], sys.argv[2]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("listening", srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
