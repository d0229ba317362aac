"""An OpenTelemetry collector stand-in for OTLP/HTTP JSON: POST /v1/traces parsed strictly
(ExportTraceServiceRequest shape, hex ids of the right length, times as decimal strings,
attribute values typed as OTLP/JSON wants); 400 with the reason on any violation. Faults:
POST /_test/fault {"mode": "ok"|"503"}; GET /_test/spans returns every span stored and every
Authorization header any request carried (a credential it was never given must not arrive).
Run: otlp_server.py -> prints "listening PORT"."""
import json
import re
import threading
from http.server import ThreadingHTTPServer

from jsonhttp import JsonHandler

SPANS, LOCK, MODE = {}, threading.Lock(), {"mode": "ok", "requests": 0}
AUTH = []
HEX = re.compile(r"^[0-9a-f]+$")
VALUE_KEYS = {"stringValue", "intValue", "doubleValue", "boolValue", "arrayValue"}


def check_value(v, where):
    keys = set(v) & VALUE_KEYS
    if len(keys) != 1 or len(v) != 1:
        raise ValueError(f"{where}: an AnyValue needs exactly one typed field, got {sorted(v)}")
    (k,) = keys
    if k == "intValue" and not re.match(r"^-?\d+$", v[k]):
        raise ValueError(f"{where}: intValue must be a decimal string")
    if k == "arrayValue":
        for i, e in enumerate(v[k]["values"]):
            check_value(e, f"{where}[{i}]")


def check_span(s):
    if not (len(s["traceId"]) == 32 and HEX.match(s["traceId"])):
        raise ValueError("traceId must be 32 hex digits")
    if not (len(s["spanId"]) == 16 and HEX.match(s["spanId"])):
        raise ValueError("spanId must be 16 hex digits")
    if "parentSpanId" in s and not (len(s["parentSpanId"]) == 16 and HEX.match(s["parentSpanId"])):
        raise ValueError("parentSpanId must be 16 hex digits")
    if not s["name"] or s["kind"] not in range(6):
        raise ValueError("name and kind are required")
    st, en = s["startTimeUnixNano"], s["endTimeUnixNano"]
    if not (st.isdigit() and en.isdigit() and int(en) >= int(st)):
        raise ValueError("times must be decimal strings, end >= start")
    for a in s["attributes"]:
        check_value(a["value"], a["key"])
    if s["status"]["code"] not in (0, 1, 2):
        raise ValueError("status.code must be 0, 1 or 2")


class Handler(JsonHandler):
    def do_GET(self):
        with LOCK:
            self.reply(200, {"spans": list(SPANS.values()), "requests": MODE["requests"],
                             "authorization": AUTH})

    def do_POST(self):
        raw = self.body()
        if self.headers.get("Authorization") is not None:
            with LOCK:
                AUTH.append(self.headers.get("Authorization"))
        if self.path == "/_test/fault":
            MODE["mode"] = json.loads(raw)["mode"]
            return self.reply(200, MODE)
        if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/json":
            return self.reply(404, {"message": "POST application/json to /v1/traces"})
        MODE["requests"] += 1
        if MODE["mode"] == "503":
            return self.reply(503, {"message": "unavailable"})
        try:
            req = json.loads(raw)
            spans = []
            for rs in req["resourceSpans"]:
                for a in rs["resource"]["attributes"]:
                    check_value(a["value"], a["key"])
                for ss in rs["scopeSpans"]:
                    for s in ss["spans"]:
                        check_span(s)
                        spans.append(s)
        except (KeyError, ValueError, TypeError) as e:
            return self.reply(400, {"message": f"invalid ExportTraceServiceRequest: {e}"})
        with LOCK:
            for s in spans:
                SPANS[s["spanId"]] = s
        self.reply(200, {})


if __name__ == "__main__":
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("listening", srv.server_address[1], flush=True)
    srv.serve_forever()
