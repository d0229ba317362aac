"""An OpenTelemetry collector stand-in for OTLP/HTTP, strict about both encodings:
POST /v1/traces (or /otlp/v1/traces, a collector behind a path prefix) with Content-Type
application/x-protobuf (decoded by build/tests/otlp_pb: code protoc-c generated from the
official opentelemetry-proto definitions; a broken wire format, an unknown field or invalid
UTF-8 is refused) or application/json, then the same checks for both: the
ExportTraceServiceRequest shape, every resource with a service.name, attribute keys unique and
non-empty, hex ids of the right length, times as decimal strings with end >= start, AnyValue
with exactly one typed field (intValue a decimal string), kind 0-5, status code 0-2 and a
status message only on an error; 400 with the reason on any violation, in the request's
encoding (google.rpc.Status). Answers in the request's encoding too.
Faults: POST /_test/fault {"mode": "ok"|"503"|"400"|"partial"|"slow", "rejected": N,
"seconds": S} (partial: the next request is answered 200 with partialSuccess rejecting N spans:
an int64, a decimal string in JSON; slow: the next request is answered after S seconds; then
ok again).
GET /_test/spans returns every span stored (each with its "resource" attributes and "scope"),
the requests seen (path, content type, user agent, headers, and over TLS the client
certificate's common name), every Authorization header any request carried (a credential it
was never given must not arrive) and the TLS handshakes it refused, with OpenSSL's reason.
Also taken: a collector behind a path prefix (/otlp/v1/traces) and Langfuse's
/api/public/otel/v1/traces.
Run: otlp_server.py [PORT] [--tls CERT KEY [--client-ca CA]] -> prints "listening PORT".
With --tls it speaks HTTPS only; with --client-ca it also asks for a client certificate
signed by CA and refuses the handshake without one."""
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer

from jsonhttp import JsonHandler

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OTLP_PB = os.path.join(ROOT, "build", "tests", "otlp_pb")
PATHS = ("/v1/traces", "/otlp/v1/traces", "/api/public/otel/v1/traces")
SPANS, LOCK = {}, threading.Lock()
MODE = {"mode": "ok", "requests": 0, "rejected": 0, "seconds": 0}
AUTH, SEEN, TLS_REFUSED = [], [], []
HEX = re.compile(r"^[0-9a-f]+$")
VALUE_KEYS = {"stringValue", "intValue", "doubleValue", "boolValue", "arrayValue", "kvlistValue",
              "bytesValue"}


def check_value(v, where):
    keys = set(v) & VALUE_KEYS
    if len(keys) != 1 or len(v) != 1:
        raise ValueError(f"{where}: an AnyValue needs exactly one typed field, got {sorted(v)}")
    (k,) = keys
    if k == "intValue" and not (isinstance(v[k], str) and re.match(r"^-?\d+$", v[k])):
        raise ValueError(f"{where}: intValue must be a decimal string")
    if k == "doubleValue" and not isinstance(v[k], (int, float)):
        raise ValueError(f"{where}: doubleValue must be a number")
    if k == "stringValue" and not isinstance(v[k], str):
        raise ValueError(f"{where}: stringValue must be a string")
    if k == "arrayValue":
        for i, e in enumerate(v[k]["values"]):
            check_value(e, f"{where}[{i}]")


def check_attributes(attrs, where):
    keys = [a["key"] for a in attrs]
    if any(not k for k in keys):
        raise ValueError(f"{where}: an attribute with an empty key")
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise ValueError(f"{where}: attribute keys must be unique, repeated: {sorted(dup)}")
    for a in attrs:
        check_value(a["value"], a["key"])


def check_span(s):
    if not (len(s["traceId"]) == 32 and HEX.match(s["traceId"])):
        raise ValueError("traceId must be 32 hex digits")
    if not (len(s["spanId"]) == 16 and HEX.match(s["spanId"])):
        raise ValueError("spanId must be 16 hex digits")
    if s.get("parentSpanId") and not (len(s["parentSpanId"]) == 16 and HEX.match(s["parentSpanId"])):
        raise ValueError("parentSpanId must be 16 hex digits")
    if not s["name"] or s["kind"] not in range(6):
        raise ValueError("name and kind are required")
    st, en = s["startTimeUnixNano"], s["endTimeUnixNano"]
    if not (st.isdigit() and en.isdigit() and int(en) >= int(st)):
        raise ValueError("times must be decimal strings, end >= start")
    check_attributes(s["attributes"], "span " + s["name"])
    for e in s.get("events", []):
        if not (e["name"] and e["timeUnixNano"].isdigit()):
            raise ValueError("an event needs a name and a time")
        check_attributes(e.get("attributes", []), "event " + e["name"])
    status = s.get("status", {})
    if status.get("code", 0) not in (0, 1, 2):
        raise ValueError("status.code must be 0, 1 or 2")
    if status.get("message") and status.get("code", 0) != 2:
        raise ValueError("a status message goes with STATUS_CODE_ERROR only")


def attrs(kvs):
    return {a["key"]: a["value"] for a in kvs}


class Handler(JsonHandler):
    def do_GET(self):
        with LOCK:
            self.reply(200, {"spans": list(SPANS.values()), "requests": MODE["requests"],
                             "authorization": AUTH, "seen": SEEN, "tls_refused": TLS_REFUSED})

    def answer(self, status, proto, rejected=0, message=""):
        if not proto:
            if status == 200:
                body = {}
                if rejected or message:
                    body = {"partialSuccess": {"rejectedSpans": str(rejected),
                                               "errorMessage": message}}
            else:
                body = {"code": 3, "message": message}
            return self.reply(status, body)
        if status == 200:
            raw = subprocess.run([OTLP_PB, "response", str(rejected), message],
                                 capture_output=True, check=True).stdout
        else:  # google.rpc.Status {code: 3 (INVALID_ARGUMENT), message}
            m = message.encode()
            raw = b"\x08\x03\x12" + bytes([len(m)]) + m if len(m) < 128 else b"\x08\x03"
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self):
        raw = self.body()
        ctype = self.headers.get("Content-Type")
        with LOCK:
            if self.headers.get("Authorization") is not None:
                AUTH.append(self.headers.get("Authorization"))
            if self.path != "/_test/fault":
                seen = {"path": self.path, "content_type": ctype,
                        "user_agent": self.headers.get("User-Agent"),
                        "headers": {k.lower(): v for k, v in self.headers.items()}}
                if isinstance(self.connection, ssl.SSLSocket):
                    peer = self.connection.getpeercert() or {}
                    seen["client_cn"] = next((v for rdn in peer.get("subject", ())
                                              for k, v in rdn if k == "commonName"), None)
                SEEN.append(seen)
        if self.path == "/_test/fault":
            req = json.loads(raw)
            MODE["mode"] = req["mode"]
            MODE["rejected"] = req.get("rejected", 0)
            MODE["seconds"] = req.get("seconds", 0)
            return self.reply(200, MODE)
        proto = ctype == "application/x-protobuf"
        if self.path not in PATHS or ctype not in ("application/json", "application/x-protobuf"):
            return self.reply(404 if self.path not in PATHS else 415,
                              {"message": "POST application/x-protobuf or application/json "
                                          "to /v1/traces"})
        MODE["requests"] += 1
        if MODE["mode"] == "slow":  # once: the client's timeout decides what happens
            MODE["mode"] = "ok"
            time.sleep(MODE["seconds"])
        if MODE["mode"] == "503":
            return self.answer(503, proto, message="unavailable")
        try:
            if proto:
                out = subprocess.run([OTLP_PB, "decode"], input=raw, capture_output=True)
                if out.returncode:
                    raise ValueError(out.stderr.decode().strip())
                req = json.loads(out.stdout.decode("utf-8"))  # strict: valid UTF-8
            else:
                req = json.loads(raw.decode("utf-8"))
            spans = []
            for rs in req["resourceSpans"]:
                check_attributes(rs["resource"]["attributes"], "resource")
                res = attrs(rs["resource"]["attributes"])
                if "service.name" not in res:
                    raise ValueError("a resource without service.name")
                for ss in rs["scopeSpans"]:
                    scope = ss.get("scope", {})
                    for s in ss["spans"]:
                        check_span(s)
                        spans.append(dict(s, resource=res, scope=scope))
        except (KeyError, ValueError, TypeError, UnicodeDecodeError) as e:
            return self.answer(400, proto, message=f"invalid ExportTraceServiceRequest: {e}")
        if MODE["mode"] == "400":
            return self.answer(400, proto, message="refused by the test")
        with LOCK:
            for s in spans:
                SPANS[s["spanId"]] = s
        if MODE["mode"] == "partial":  # once: the next requests are taken whole
            MODE["mode"] = "ok"
            return self.answer(200, proto, MODE["rejected"], "some spans were refused")
        self.answer(200, proto)


class TLSServer(ThreadingHTTPServer):
    """HTTPS only: each connection's handshake is done (or refused, and noted) as it is
    accepted."""
    context = None

    def get_request(self):
        sock, addr = self.socket.accept()
        try:
            return self.context.wrap_socket(sock, server_side=True), addr
        except (ssl.SSLError, OSError) as e:
            with LOCK:
                TLS_REFUSED.append(getattr(e, "reason", None) or str(e))
            sock.close()
            raise OSError("TLS handshake refused") from e


def main(argv):
    port = int(argv[0]) if argv and argv[0].isdigit() else 0
    if "--tls" in argv:
        i = argv.index("--tls")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(argv[i + 1], argv[i + 2])
        if "--client-ca" in argv:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(argv[argv.index("--client-ca") + 1])
        srv = TLSServer(("127.0.0.1", port), Handler)
        srv.context = ctx
    else:
        srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("listening", srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
