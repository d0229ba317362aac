"""Seed corpus for fuzz_decode: real exchanges in the harness's chunk format."""
import json
import os
import struct
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def chunks(*parts):
    b = b"\x00"
    for d, data in parts:
        b += bytes([d]) + struct.pack("<H", len(data)) + data
    return b


def req(path, body):
    body = json.dumps(body).encode()
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body)


def resp(body, ctype="application/json"):
    return b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (ctype.encode(), len(body), body)


# Wire formats come from the captured fixtures below; these are what they do not cover.
seeds = {
    "chunked": chunks((0, req("/api/chat", {"model": "l", "messages": []})), (1, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1c\r\n{\"done\":true,\"eval_count\":1}\r\n0\r\n\r\n")),
    "mcp": chunks((0x40, b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":1}}}\n'), (0x41, b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"2"}],"isError":false}}\n')),
    "records": b"\x01" + struct.pack("<H", 8) + b"\x01\x00\x00\x00\x00\x00\x00\x00",
    # MCP over streamable HTTP: a JSON-RPC tools/call POST with its session, answered by SSE.
    "mcp-http": chunks((0, b"POST /mcp HTTP/1.1\r\nHost: x\r\nMcp-Session-Id: s-1\r\n"
                           b"Content-Length: 84\r\n\r\n" + json.dumps(
                               {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                "params": {"name": "add", "arguments": {"a": 1}}},
                               separators=(",", ":")).encode().ljust(84)),
                       (1, resp(b'event: message\ndata: {"jsonrpc":"2.0","id":3,"result":'
                                b'{"content":[{"type":"text","text":"2"}]}}\n\n',
                                "text/event-stream"))),
    # A stream cut short: the connection ends inside a chunked SSE body.
    "cut-sse": chunks((0, req("/v1/responses", {"model": "m", "stream": True, "input": "hi"})),
                      (1, b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n40\r\nevent: response.output_text"
                          b".delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\"")),
    # HTTP/1.1 upgraded to cleartext HTTP/2 over TCP: 101, the server's SETTINGS, then the
    # answer on stream 1 (HEADERS ":status 200", DATA), the 101 split from the frames.
    "h2c-upgrade": chunks(
        (0x20, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, "
               b"HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
               b"Content-Length: 31\r\n\r\n{\"model\":\"gpt-4o\",\"messages\":[]}"),
        (0x21, b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
               b"\0\0\0\x04\0\0\0\0\0"),
        (0x21, b"\0\0\x01\x01\x04\0\0\0\x01\x88\0\0\x3e\0\x01\0\0\0\x01"
               b'{"id":"x","model":"gpt-4o-1","usage":{"prompt_tokens":42}}    '),
        (0x20, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0\0\0\0\x04\x01\0\0\0\0")),
}
# Every provider's wire format as the official SDKs exchanged it with the test server
# (tests/fixtures/llm/PROVIDER/NAME, shared with the unit tests and the test server): OpenAI Chat
# Completions and Responses, Anthropic, Ollama, Gemini; streamed (SSE, NDJSON, JSON arrays) or not.
LLM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "llm")
for provider in sorted(os.listdir(LLM)):
    folder = os.path.join(LLM, provider)
    if not os.path.isdir(folder):
        continue
    for meta_file in sorted(f for f in os.listdir(folder) if f.endswith(".meta.json")):
        name = meta_file[:-len(".meta.json")]
        with open(os.path.join(folder, meta_file)) as f:
            meta = json.load(f)
        with open(os.path.join(folder, name + ".request.json"), "rb") as f:
            body = f.read()
        with open(os.path.join(folder, name + ".response"), "rb") as f:
            answer = f.read()
        head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (
            meta["path"].encode(), len(body))
        seeds[provider + "-" + name] = chunks((0, head + body),
                                              (1, resp(answer, meta["content_type"])))
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
