"""The C test server (tests/servers/bulk_server.c) is strict: malformed _bulk and OTLP bodies are
refused with 400 and a reason that names what and where, and well-formed ones get exactly the
per-item results Elasticsearch gives, in order. A benchmark against it then proves delivery as
well as speed."""
import gzip
import http.client
import json
import os
import subprocess
import zlib

import pytest
from harness import ROOT

SERVER = os.path.join(ROOT, "build", "tests", "bulk_server")
NDJSON = "application/x-ndjson"


@pytest.fixture
def srv():
    p = subprocess.Popen([SERVER], stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().split()[1])
    yield port
    p.kill()
    p.wait()


def call(port, method, path, body=b"", ctype="application/json", encoding=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": ctype}
    if encoding:
        headers["Content-Encoding"] = encoding
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    out = r.status, json.loads(r.read())
    c.close()
    return out


def bulk(port, text, encoding="gzip", ctype=NDJSON):
    raw = text.encode() if isinstance(text, str) else text
    body = gzip.compress(raw) if encoding == "gzip" else raw
    return call(port, "POST", "/_bulk", body, ctype, encoding)


def stats(port):
    return call(port, "GET", "/_test/stats")[1]


def action(op="index", index="agentic-traces-2024.05.01", _id="a1", **extra):
    return json.dumps({op: dict({"_index": index, "_id": _id}, **extra)})


DOC = json.dumps({"@timestamp": "2024-05-01T12:00:00Z", "name": "chat", "process": {"pid": 1}})


def created(index, _id, seq, op="index", version=1):
    return {op: {"_index": index, "_id": _id, "_version": version,
                 "result": "created" if version == 1 else "updated",
                 "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": seq,
                 "_primary_term": 1, "status": 201 if version == 1 else 200}}


def test_bulk_items_exact_and_in_order(srv):
    ix = "agentic-traces-2024.05.01"
    text = "".join(f"{a}\n{DOC}\n" for a in (action(_id="a1"), action(_id="a2"),
                                              action("create", _id="a3")))
    st, r = bulk(srv, text)
    assert st == 200
    assert r["errors"] is False and isinstance(r["took"], int)
    assert r["items"] == [created(ix, "a1", 0), created(ix, "a2", 1),
                          created(ix, "a3", 2, op="create")]
    # Again, uncompressed: index overwrites (200 updated, version 2), create conflicts (409).
    st, r = bulk(srv, text, encoding=None)
    assert st == 200 and r["errors"] is True
    assert r["items"][:2] == [created(ix, "a1", 3, version=2), created(ix, "a2", 4, version=2)]
    conflict = r["items"][2]["create"]
    assert conflict["status"] == 409 and conflict["_id"] == "a3"
    assert conflict["error"]["type"] == "version_conflict_engine_exception"
    assert "document already exists (current version [1])" in conflict["error"]["reason"]
    s = stats(srv)
    assert (s["bulk_requests"], s["items"], s["unique_ids"], s["duplicates"]) == (2, 6, 3, 3)
    assert (s["items_201"], s["items_200"], s["items_409"], s["errors"]) == (3, 2, 1, 0)
    assert s["bytes_decoded"] == 2 * len(text)


def test_ids_compare_decoded_and_per_index(srv):
    """_id "a\\u0062c" is "abc"; the same id in another index is another document; the answer
    carries the decoded id."""
    text = ('{"index":{"_index":"i1","_id":"a\\u0062c"}}\n{}\n'
            '{"index":{"_index":"i1","_id":"abc"}}\n{}\n'
            '{"index":{"_index":"i2","_id":"abc"}}\n{}\n')
    st, r = bulk(srv, text)
    assert st == 200
    assert [(i["index"]["_index"], i["index"]["_id"], i["index"]["status"]) for i in r["items"]] \
        == [("i1", "abc", 201), ("i1", "abc", 200), ("i2", "abc", 201)]


def test_invalid_index_name_is_an_item_error(srv):
    text = f"{action(index='Bad-Upper')}\n{DOC}\n{action(_id='ok')}\n{DOC}\n"
    st, r = bulk(srv, text)
    assert st == 200 and r["errors"] is True
    bad, good = r["items"][0]["index"], r["items"][1]["index"]
    assert bad["status"] == 400 and bad["error"]["type"] == "invalid_index_name_exception"
    assert "must be lowercase" in bad["error"]["reason"]
    assert good["status"] == 201


LONG_ID = "x" * 513
MALFORMED = [
    # (name, body text, status, reason fragment)
    ("empty", "", 400, "request body is required"),
    ("no final newline", f"{action()}\n{DOC}", 400, "must be terminated by a newline"),
    ("action not JSON", '{"index":\n{}\n', 400, "Malformed action/metadata line [1], column 10"),
    ("blank line", f"\n{action()}\n{DOC}\n", 400, "line [1], column 1: no JSON value"),
    ("delete", f'{{"delete":{{"_index":"i","_id":"1"}}}}\n{DOC}\n', 400,
     "expected index or create (what the exporter sends) but found [delete]"),
    ("two ops", '{"index":{"_index":"i","_id":"1"},"create":{}}\n{}\n', 400,
     "an object with several members"),
    ("action an array", '[]\n{}\n', 400, "expected an object with one member"),
    ("no _id", '{"index":{"_index":"i"}}\n{}\n', 400, "line [1]: an action without _id"),
    ("no _index", '{"index":{"_id":"1"}}\n{}\n', 400, "index is missing"),
    ("empty _id", '{"index":{"_index":"i","_id":""}}\n{}\n', 400, "must not be empty"),
    ("_id a number", '{"index":{"_index":"i","_id":7}}\n{}\n', 400,
     "expected a string for field [_id] but found a number"),
    ("_id too long", f"{action(_id=LONG_ID)}\n{DOC}\n", 400,
     "no longer than 512 bytes but was: 513"),
    ("unknown parameter", f"{action(colour='red')}\n{DOC}\n", 400,
     "Action/metadata line [1] contains an unknown parameter [colour]"),
    ("routing an object", f"{action(routing={'a': 1})}\n{DOC}\n", 400,
     "field [routing] cannot be an object"),
    ("document missing", f"{action()}\n{DOC}\n{action(_id='b')}\n", 400,
     "ends after the action on line [3]: its document is missing"),
    ("document an array", f"{action()}\n[1]\n", 400, "The document on line [2] is an array"),
    ("document a string", f'{action()}\n"x"\n', 400, "The document on line [2] is a string"),
    ("trailing comma", f'{action()}\n{{"a":1,}}\n', 400,
     "Malformed document on line [2], column 8: expected a string key"),
    ("duplicate key", f'{action()}\n{{"a":1,"b":{{"c":1,"c":2}}}}\n', 400,
     "line [2], column 12: duplicate key in an object"),
    ("duplicate key through an escape", f'{action()}\n{{"a":1,"\\u0061":2}}\n', 400,
     "duplicate key in an object"),
    ("leading zero", f'{action()}\n{{"a":01}}\n', 400, "expected ',' or '}'"),
    ("bare fraction", f'{action()}\n{{"a":1.}}\n', 400, "no digit after '.'"),
    ("bad literal", f'{action()}\n{{"a":tru}}\n', 400, "invalid literal"),
    ("content after", f'{action()}\n{{}} {{}}\n', 400, "content after the JSON value"),
    ("control character", f'{action()}\n{{"a":"x\ty"}}\n', 400, "a control character in a string"),
    ("bad escape", f'{action()}\n{{"a":"\\q"}}\n', 400, "invalid escape"),
    ("lone low surrogate", f'{action()}\n{{"a":"\\udc00"}}\n', 400, "a low surrogate"),
    ("lone high surrogate", f'{action()}\n{{"a":"\\ud800x"}}\n', 400, "a high surrogate"),
    ("unterminated string", f'{action()}\n{{"a":"xyz}}\n', 400, "unterminated string"),
    ("too deep", f'{action()}\n{{"a":{"[" * 200}{"]" * 200}}}\n', 400, "nested too deep"),
]


@pytest.mark.parametrize("name,text,status,reason", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_bulk_is_refused_with_the_reason(srv, name, text, status, reason):
    st, r = bulk(srv, text)
    assert st == status, r
    assert r["status"] == status
    assert reason in r["error"]["reason"], r
    assert r["error"]["root_cause"][0]["reason"] == r["error"]["reason"]
    s = stats(srv)
    assert s["errors"] == 1 and s["items"] == 0 and reason in s["last_error"]


def test_invalid_utf8_is_refused(srv):
    body = f'{action()}\n{{"a":"'.encode() + b"\xc3\x28" + b'"}\n'
    st, r = bulk(srv, body)
    assert st == 400 and "line [2], column 7: invalid UTF-8" in r["error"]["reason"], r
    body = f'{action()}\n{{"a":"'.encode() + b"\xed\xa0\x80" + b'"}\n'  # a UTF-8 surrogate
    assert bulk(srv, body)[0] == 400


def test_transport_level_refusals(srv):
    text = f"{action()}\n{DOC}\n"
    st, r = bulk(srv, text, ctype="application/json")
    assert st == 406 and "Content-Type header [application/json] is not supported" in \
        r["error"]["reason"]
    assert bulk(srv, text, ctype="application/x-ndjson; charset=UTF-8")[0] == 200
    st, r = bulk(srv, text.encode(), encoding="br")
    assert st == 415 and "unsupported Content-Encoding [br]" in r["error"]["reason"]
    gz = gzip.compress(text.encode())
    st, r = call(srv, "POST", "/_bulk", gz[:-12], NDJSON, "gzip")
    assert st == 400 and "the gzip body is truncated" in r["error"]["reason"]
    st, r = call(srv, "POST", "/_bulk", b"not gzip at all", NDJSON, "gzip")
    assert st == 400 and "does not decompress" in r["error"]["reason"]
    st, r = call(srv, "POST", "/_bulk", gz + b"junk", NDJSON, "gzip")
    assert st == 400 and "does not decompress" in r["error"]["reason"]
    st, r = call(srv, "POST", "/_bulk", gzip.compress(b"a") + gz, NDJSON, "gzip")
    assert st == 400 and "column 1: unexpected character" in r["error"]["reason"]  # 2 members
    st, r = call(srv, "POST", "/_bulk", zlib.compress(text.encode()), NDJSON, "deflate")
    assert st == 200 and r["items"][0]["index"]["status"] == 200  # the same id again
    st, r = call(srv, "POST", "/_bulk?refresh=false&colour=red", gz, NDJSON, "gzip")
    assert st == 400 and "contains unrecognized parameter: [colour]" in r["error"]["reason"]
    st, r = call(srv, "POST", "/_bulk?filter_path=items.*.error", gz, NDJSON, "gzip")
    assert st == 400 and "does not filter" in r["error"]["reason"]
    assert call(srv, "POST", "/_bulk?refresh=wait_for", gz, NDJSON, "gzip")[0] == 200
    st, r = call(srv, "POST", "/other", b"", NDJSON)
    assert st == 404 and r["error"]["type"] == "no_handler_found_exception"


def test_faults_and_reset(srv):
    text = f"{action()}\n{DOC}\n"
    assert call(srv, "POST", "/_test/fault", b'{"mode":"429"}')[0] == 200
    st, r = bulk(srv, text)
    assert st == 200 and r["errors"] is True
    assert r["items"][0]["index"]["status"] == 429
    assert r["items"][0]["index"]["error"]["type"] == "es_rejected_execution_exception"
    assert call(srv, "POST", "/_test/fault", b'{"mode":"slow"}')[0] == 400
    assert call(srv, "POST", "/_test/reset")[0] == 200
    assert bulk(srv, text)[1]["items"][0]["index"]["status"] == 201
    s = stats(srv)
    assert (s["items"], s["items_201"], s["items_429"]) == (1, 1, 0)


# ---- OTLP/HTTP JSON ----------------------------------------------------------------------

def span(i=1, **over):
    s = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": f"{i:016x}",
         "parentSpanId": "00f067aa0ba902b7", "name": "chat gpt-4o", "kind": 3,
         "startTimeUnixNano": "1714564800000000000", "endTimeUnixNano": "1714564800500000000",
         "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                        {"key": "process.pid", "value": {"intValue": "42"}},
                        {"key": "cost", "value": {"doubleValue": 0.5}},
                        {"key": "stream", "value": {"boolValue": False}},
                        {"key": "tools", "value": {"arrayValue": {"values": [
                            {"stringValue": "search"}, {"intValue": "-3"}]}}}],
         "status": {"code": 1},
         "events": [{"timeUnixNano": "1714564800100000000", "name": "first token"}]}
    s.update(over)
    return {k: v for k, v in s.items() if v is not None}


def export(spans, resource=None):
    rs = {"resource": resource if resource is not None else
          {"attributes": [{"key": "service.name", "value": {"stringValue": "agtrace"}}]},
          "scopeSpans": [{"scope": {"name": "agtrace"}, "spans": spans}]}
    return {"resourceSpans": [rs]}


def otlp(port, req, raw=None, ctype="application/json"):
    body = raw if raw is not None else json.dumps(req).encode()
    return call(port, "POST", "/v1/traces", gzip.compress(body), ctype, "gzip")


def test_otlp_well_formed_counts_spans(srv):
    st, r = otlp(srv, export([span(1), span(2, parentSpanId=None, events=None)]))
    assert (st, r) == (200, {})
    assert otlp(srv, export([span(2)]))[0] == 200
    s = stats(srv)
    assert (s["otlp_requests"], s["spans"], s["unique_spans"], s["span_duplicates"]) == \
        (2, 3, 2, 1)


P = "resourceSpans[0].scopeSpans[0].spans[0]: "
BAD_OTLP = [
    ("traceId short", export([span(traceId="0af7")]), P + "traceId must be 32 lowercase hex"),
    ("traceId upper", export([span(traceId="0AF7651916CD43DD8448EB211C80319C")]),
     P + "traceId must be 32 lowercase hex"),
    ("spanId missing", export([span(spanId=None)]), P + "spanId is required"),
    ("parentSpanId bad", export([span(parentSpanId="xyz")]), P + "parentSpanId must be 16"),
    ("name empty", export([span(name="")]), P + "name must not be empty"),
    ("kind 7", export([span(kind=7)]), P + "kind must be an integer 0-5"),
    ("kind a string", export([span(kind="1")]), P + "kind must be a number, not a string"),
    ("time a number", export([span(startTimeUnixNano=1)]),
     P + "startTimeUnixNano must be a string"),
    ("time not decimal", export([span(startTimeUnixNano="1e9")]),
     P + "times must be decimal strings"),
    ("time past uint64", export([span(endTimeUnixNano="99999999999999999999")]),
     P + "times must be decimal strings"),
    ("end before start", export([span(endTimeUnixNano="1")]), P + "endTimeUnixNano is before"),
    ("attributes missing", export([span(attributes=None)]), P + "attributes is required"),
    ("two typed fields", export([span(attributes=[{"key": "k", "value": {
        "stringValue": "a", "intValue": "1"}}])]),
     P + "attribute k: an AnyValue needs exactly one"),
    ("intValue a number", export([span(attributes=[{"key": "k", "value": {"intValue": 1}}])]),
     P + "attribute k: intValue must be a string, not a number"),
    ("intValue not decimal", export([span(attributes=[{"key": "k", "value": {
        "intValue": "0x10"}}])]), P + "attribute k: intValue must be a decimal string"),
    ("kvlistValue", export([span(attributes=[{"key": "k", "value": {"kvlistValue": {}}}])]),
     P + "attribute k: an AnyValue needs exactly one typed field"),
    ("array element bad", export([span(attributes=[{"key": "k", "value": {"arrayValue": {
        "values": [{"stringValue": "a"}, {"boolValue": "yes"}]}}}])]),
     P + "attribute k[1]: boolValue must be true or false, not a string"),
    ("duplicate attribute", export([span(attributes=[
        {"key": "k", "value": {"stringValue": "a"}},
        {"key": "k", "value": {"stringValue": "b"}}])]),
     P + "attribute k appears twice"),
    ("status code 3", export([span(status={"code": 3})]), P + "status.code must be 0, 1 or 2"),
    # (no status at all is code 0, UNSET: proto3's JSON mapping leaves defaults out)
    ("status an array", export([span(status=[])]), P + "status must be an object, not an array"),
    ("event time bad", export([span(events=[{"timeUnixNano": "soon", "name": "x"}])]),
     P + "events[0].timeUnixNano must be a decimal string"),
    ("resource missing", {"resourceSpans": [{"scopeSpans": []}]},
     "resourceSpans[0]: resource is required"),
    ("resource attribute bad", export([span()], resource={"attributes": [
        {"key": "service.name", "value": {}}]}),
     "resourceSpans[0]: attribute service.name: an AnyValue needs exactly one"),
    ("no resourceSpans", {}, "resourceSpans is required"),
    ("second span bad", export([span(1), span(2, kind=-1)]),
     "resourceSpans[0].scopeSpans[0].spans[1]: kind must be an integer 0-5"),
]


@pytest.mark.parametrize("name,req,reason", BAD_OTLP, ids=[b[0] for b in BAD_OTLP])
def test_malformed_otlp_is_refused_with_the_reason(srv, name, req, reason):
    st, r = otlp(srv, req)
    assert st == 400, r
    assert r["code"] == 3
    assert r["message"].startswith("invalid ExportTraceServiceRequest: " + reason), r
    assert stats(srv)["spans"] == 0


def test_otlp_transport_refusals(srv):
    st, r = otlp(srv, None, raw=b'{"resourceSpans": [}')
    assert st == 400
    assert r["message"] == \
        "invalid ExportTraceServiceRequest: not JSON: byte 20: unexpected character"
    st, r = otlp(srv, export([span()]), ctype="application/x-protobuf")
    assert st == 415 and "Content-Type header [application/x-protobuf]" in r["message"]
