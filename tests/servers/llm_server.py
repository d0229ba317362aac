"""A local HTTPS server that speaks the LLM providers' wire formats exactly (OpenAI Chat
Completions and Responses, Anthropic Messages, Ollama /api/chat), streamed (SSE over chunked
encoding, or NDJSON) and not, optionally gzip-compressed, with keep-alive. Its answers are fixed
so that tests can assert exact values. Run: llm_server.py CERT KEY (or --plain) -> prints
"listening PORT"."""
import gzip
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WEATHER_ARGS = '{"city":"Paris","unit":"celsius"}'


def openai_chat(req):
    model = req["model"]
    if model == "bad-model":
        return 404, {"error": {"message": "The model `bad-model` does not exist",
                               "type": "invalid_request_error", "code": "model_not_found"}}
    tools = req.get("tools")
    msgs = req.get("messages") or [{}]
    if msgs[-1].get("role") == "tool":  # the tool's result came back: answer, no more tools
        tools = None
    msg = {"role": "assistant", "content": "Let me check the weather." if tools else
           "It is sunny in Paris."}
    if tools:
        msg["tool_calls"] = [{"id": "call_weather_1", "type": "function",
                              "function": {"name": "get_weather", "arguments": WEATHER_ARGS}}]
    choice = {"index": 0, "message": msg, "finish_reason": "tool_calls" if tools else "stop"}
    if req.get("logprobs"):
        choice["logprobs"] = {"content": [{"token": "Let", "logprob": -0.1},
                                          {"token": " me", "logprob": -0.3}]}
    return 200, {"id": "chatcmpl-abc123", "object": "chat.completion", "created": 1764000000,
                 "model": model + "-2024-08-06", "choices": [choice],
                 "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49,
                           "prompt_tokens_details": {"cached_tokens": 10}}}


def openai_chat_stream(req):
    status, full = openai_chat(req)
    base = {"id": full["id"], "object": "chat.completion.chunk", "created": 1764000000,
            "model": full["model"]}
    msg = full["choices"][0]["message"]
    deltas = [{"role": "assistant", "content": ""}]
    text = msg["content"]
    deltas += [{"content": text[:9]}, {"content": text[9:]}]
    if "tool_calls" in msg:
        tc = msg["tool_calls"][0]
        deltas.append({"tool_calls": [{"index": 0, "id": tc["id"], "type": "function",
                                       "function": {"name": "get_weather", "arguments": ""}}]})
        deltas.append({"tool_calls": [{"index": 0, "function": {"arguments": WEATHER_ARGS[:12]}}]})
        deltas.append({"tool_calls": [{"index": 0, "function": {"arguments": WEATHER_ARGS[12:]}}]})
    events = [dict(base, choices=[{"index": 0, "delta": d, "finish_reason": None}])
              for d in deltas]
    events.append(dict(base, choices=[{"index": 0, "delta": {},
                                       "finish_reason": full["choices"][0]["finish_reason"]}]))
    if req.get("stream_options", {}).get("include_usage"):
        events.append(dict(base, choices=[], usage=full["usage"]))
    return ["data: " + json.dumps(e) + "\n\n" for e in events] + ["data: [DONE]\n\n"]


def anthropic(req):
    if req["model"] == "bad-model":
        return 400, {"type": "error", "error": {"type": "invalid_request_error",
                                                "message": "model: bad-model not found"}}
    tools = req.get("tools")
    last = (req.get("messages") or [{}])[-1].get("content")
    if isinstance(last, list) and any(b.get("type") == "tool_result" for b in last):
        tools = None  # the tool's result came back: a final answer
    content = [{"type": "text", "text": "Let me look that up."}]
    if tools:
        content.append({"type": "tool_use", "id": "toolu_01A", "name": "get_weather",
                        "input": json.loads(WEATHER_ARGS)})
    return 200, {"id": "msg_01XYZ", "type": "message", "role": "assistant",
                 "model": req["model"], "content": content,
                 "stop_reason": "tool_use" if tools else "end_turn", "stop_sequence": None,
                 "usage": {"input_tokens": 30, "output_tokens": 12,
                           "cache_read_input_tokens": 5}}


def anthropic_stream(req):
    status, m = anthropic(req)
    out = []

    def ev(name, data):
        out.append(f"event: {name}\ndata: {json.dumps(data)}\n\n")

    start = dict(m, content=[], stop_reason=None, usage={"input_tokens": 30, "output_tokens": 1,
                                                          "cache_read_input_tokens": 5})
    ev("message_start", {"type": "message_start", "message": start})
    ev("ping", {"type": "ping"})
    ev("content_block_start", {"type": "content_block_start", "index": 0,
                               "content_block": {"type": "text", "text": ""}})
    for piece in ("Let me look ", "that up."):
        ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "text_delta", "text": piece}})
    ev("content_block_stop", {"type": "content_block_stop", "index": 0})
    if len(m["content"]) > 1:
        ev("content_block_start", {"type": "content_block_start", "index": 1,
                                   "content_block": {"type": "tool_use", "id": "toolu_01A",
                                                     "name": "get_weather", "input": {}}})
        for piece in (WEATHER_ARGS[:10], WEATHER_ARGS[10:]):
            ev("content_block_delta", {"type": "content_block_delta", "index": 1,
                                       "delta": {"type": "input_json_delta",
                                                 "partial_json": piece}})
        ev("content_block_stop", {"type": "content_block_stop", "index": 1})
    ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": m["stop_reason"],
                                                            "stop_sequence": None},
                         "usage": {"output_tokens": 12}})
    ev("message_stop", {"type": "message_stop"})
    return out


def responses(req):
    out = [{"type": "function_call", "id": "fc_1", "call_id": "call_r1", "name": "search",
            "arguments": '{"q":"agtrace"}', "status": "completed"}]
    return 200, {"id": "resp_123", "object": "response", "status": "completed",
                 "model": req["model"], "output": out,
                 "usage": {"input_tokens": 20, "output_tokens": 5, "total_tokens": 25,
                           "input_tokens_details": {"cached_tokens": 0}}}


def responses_stream(req):
    _, r = responses(req)
    evs = [("response.created", {"type": "response.created",
                                  "response": dict(r, status="in_progress", output=[])}),
           ("response.function_call_arguments.delta",
            {"type": "response.function_call_arguments.delta", "delta": '{"q":'}),
           ("response.completed", {"type": "response.completed", "response": r})]
    return [f"event: {n}\ndata: {json.dumps(d)}\n\n" for n, d in evs]


def ollama(req):
    lines = [{"model": req["model"], "created_at": "2026-11-25T00:00:00Z",
              "message": {"role": "assistant", "content": "Hel"}, "done": False},
             {"model": req["model"], "created_at": "2026-11-25T00:00:00Z",
              "message": {"role": "assistant", "content": "lo",
                          "tool_calls": [{"function": {"name": "get_weather",
                                                       "arguments": {"city": "Paris"}}}]},
              "done": False},
             {"model": req["model"], "created_at": "2026-11-25T00:00:01Z",
              "message": {"role": "assistant", "content": ""}, "done": True,
              "done_reason": "stop", "prompt_eval_count": 26, "eval_count": 9}]
    return lines


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out apart: no 40 ms delayed-ACK stall

    def log_message(self, *a):
        pass

    def send_json(self, status, obj, gz):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if gz:
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_stream(self, parts, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for p in parts:
            data = p.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        req = json.loads(raw)
        gz = "gzip" in self.path and "gzip" in self.headers.get("Accept-Encoding", "")
        path = self.path.split("?")[0]
        stream = req.get("stream", path == "/api/chat")
        if path.endswith("/chat/completions"):
            if stream and req["model"] != "bad-model":
                return self.send_stream(openai_chat_stream(req), "text/event-stream")
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
            lines = ollama(req)
            if stream:
                return self.send_stream([json.dumps(l) + "\n" for l in lines],
                                        "application/x-ndjson")
            return self.send_json(200, dict(lines[-1], message={
                "role": "assistant", "content": "Hello",
                "tool_calls": lines[1]["message"]["tool_calls"]}), gz)
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
