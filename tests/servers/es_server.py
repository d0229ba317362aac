"""An Elasticsearch stand-in for the exporter tests: the _bulk API parsed strictly (NDJSON
action/document pairs, gzip bodies, per-item results shaped as Elasticsearch documents them),
index templates and ILM policies stored, and faults injected on demand:
    POST /_test/fault {"mode": "ok"|"429"|"partial"|"503"|"slow"|"reset"|"mapping"|"rate", ...}
         (mapping: documents with status "error" are rejected as a mapping error would be;
         rate: {"mode": "rate", "docs_per_s": N} indexes at most N documents a second, as a
         cluster that keeps up with only part of the load)
    GET  /_test/docs   every stored document, as {index: {id: doc}}
    GET  /_test/count  how many, and how many were indexed again (duplicates)
    GET  /_test/stats  requests and items seen by status
Writes follow the index templates stored, as Elasticsearch does: a target whose name matches a
template with "data_stream" is a data stream, which takes op_type create only (else 400
illegal_argument_exception, per item) and documents with an @timestamp; create of an _id
already there answers 409 version_conflict_engine_exception. A target matched by a template whose
ILM policy rolls over, but neither a data stream nor given a rollover alias, is refused (400):
Elasticsearch would take those writes and then never roll the index over, so warm, cold and
delete would never happen (the check the ILM explain API would fail at).
Run: es_server.py [PORT [STATE-FILE]] -> prints "listening PORT". With a state file the store
survives a restart, as a real cluster's does (tests kill the server to make an outage)."""
import fnmatch
import json
import random
import socket
import sys
import threading
import time
from http.server import ThreadingHTTPServer

from jsonhttp import JsonHandler

STATE = {"mode": "ok", "docs": {}, "templates": {}, "ilm": {}, "stats": {}, "lock": threading.Lock(),
         "rng": random.Random(7), "docs_per_s": 0, "rate_lock": threading.Lock(), "busy_until": 0.0}


STATE_FILE = None


def save():
    if STATE_FILE:
        with open(STATE_FILE + ".tmp", "w") as f:
            json.dump(STATE["docs"], f)
        import os
        os.replace(STATE_FILE + ".tmp", STATE_FILE)


def governing_template(index):
    """The stored template with the highest priority whose index_patterns match index."""
    best = None
    for name, t in STATE["templates"].items():
        if any(fnmatch.fnmatchcase(index, pat) for pat in t.get("index_patterns", [])):
            if best is None or t.get("priority", 0) > best.get("priority", 0):
                best = t
    return best


def write_refusal(op, index, doc):
    """Why Elasticsearch's rules refuse this write into index (None: they do not)."""
    t = governing_template(index)
    if t is None:
        return None
    settings = t.get("template", {}).get("settings", {})
    if "data_stream" in t:
        if op != "create":
            return (f"only write ops with an op_type of create are allowed in data streams "
                    f"[{index}]")
        if "@timestamp" not in doc:
            return f"data stream timestamp field [@timestamp] is missing [{index}]"
        return None
    policy = STATE["ilm"].get(settings.get("index.lifecycle.name", ""))
    rolls = policy and any("rollover" in ph.get("actions", {})
                           for ph in policy.get("policy", {}).get("phases", {}).values())
    if rolls and not settings.get("index.lifecycle.rollover_alias"):
        return (f"setting [index.lifecycle.rollover_alias] for index [{index}] is empty or not "
                f"defined: the ILM policy rolls over, and the index is no data stream")
    return None


def bump(key):
    STATE["stats"][key] = STATE["stats"].get(key, 0) + 1


class Handler(JsonHandler):
    def do_GET(self):
        if self.path == "/_test/docs":
            with STATE["lock"]:
                return self.reply(200, STATE["docs"])
        if self.path == "/_test/count":
            with STATE["lock"]:
                return self.reply(200, {"docs": sum(len(v) for v in STATE["docs"].values()),
                                        "duplicates": STATE["stats"].get("duplicates", 0)})
        if self.path == "/_test/assets":
            with STATE["lock"]:
                return self.reply(200, {"templates": STATE["templates"], "ilm": STATE["ilm"]})
        if self.path == "/_test/stats":
            with STATE["lock"]:
                return self.reply(200, dict(STATE["stats"], templates=list(STATE["templates"]),
                                            ilm=list(STATE["ilm"])))
        self.reply(200, {"name": "es-test", "version": {"number": "8.15.0"}})

    def do_PUT(self):
        body = json.loads(self.body() or b"{}")
        with STATE["lock"]:
            if self.path.startswith("/_index_template/"):
                STATE["templates"][self.path.split("/")[2]] = body
            elif self.path.startswith("/_ilm/policy/"):
                STATE["ilm"][self.path.split("/")[3]] = body
        self.reply(200, {"acknowledged": True})

    def do_POST(self):
        if self.path == "/_test/fault":
            req = json.loads(self.body())
            STATE["mode"] = req["mode"]
            STATE["docs_per_s"] = req.get("docs_per_s", 0)
            return self.reply(200, {"mode": STATE["mode"]})
        if self.path.split("?")[0] != "/_bulk":
            return self.reply(404, {"error": "no such endpoint"})
        mode = STATE["mode"]
        with STATE["lock"]:
            bump("requests")
            STATE["stats"]["authorization"] = self.headers.get("Authorization", "")
        if mode == "reset":
            # close() alone leaves the socket open behind the handler's buffered files, and the
            # keep-alive loop then reads the unread body as the next request: shut it down.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        body = self.body()
        if mode == "503":
            return self.reply(503, {"error": {"type": "unavailable_shards_exception"}, "status": 503})
        if mode == "slow":
            time.sleep(2)
        if self.headers.get("Content-Type", "").split(";")[0] != "application/x-ndjson":
            return self.reply(400, {"error": "bulk needs Content-Type application/x-ndjson"})
        if not body.endswith(b"\n"):
            return self.reply(400, {"error": {"type": "illegal_argument_exception",
                                              "reason": "The bulk request must be terminated by a newline"}})
        lines = body.decode().split("\n")[:-1]
        if len(lines) % 2:
            return self.reply(400, {"error": {"type": "illegal_argument_exception",
                                              "reason": "odd number of lines"}})
        if mode == "rate" and STATE["docs_per_s"]:
            # One request at a time, each taking its share of the rate.
            with STATE["rate_lock"]:
                start = max(time.monotonic(), STATE["busy_until"])
                STATE["busy_until"] = start + len(lines) / 2 / STATE["docs_per_s"]
                time.sleep(max(0.0, STATE["busy_until"] - time.monotonic()))
        items, errors = [], False
        for i in range(0, len(lines), 2):
            action = json.loads(lines[i])
            (op, meta), = action.items()
            assert op in ("index", "create"), op
            doc = json.loads(lines[i + 1])
            idx, _id = meta["_index"], meta["_id"]
            status, refusal = 201, None
            r = STATE["rng"].random()
            with STATE["lock"]:
                refusal = write_refusal(op, idx, doc)
            if refusal:
                status = 400
            elif mode == "429" or (mode == "partial" and r < 0.3):
                status = 429
            elif mode == "partial" and r < 0.4:
                status = 503
            elif mode == "mapping" and doc.get("status") == "error":
                status = 400
            with STATE["lock"]:
                if status in (200, 201):
                    prev = STATE["docs"].setdefault(idx, {}).get(_id)
                    if prev is not None and op == "create":
                        status = 409
                        bump("conflicts")  # sent again: it is there already, kept once
                    else:
                        status = 200 if prev is not None else 201
                        if prev is not None:
                            bump("duplicates")  # indexed again: at-least-once delivery
                        STATE["docs"][idx][_id] = doc
                bump(f"items_{status}")
            item = {"_index": idx, "_id": _id, "status": status}
            if status in (200, 201):
                item.update({"_version": 1, "result": "updated" if status == 200 else "created",
                             "_shards": {"total": 1, "successful": 1, "failed": 0}})
            else:
                errors = True
                kind = {429: "es_rejected_execution_exception", 503: "unavailable_shards_exception",
                        400: "mapper_parsing_exception",
                        409: "version_conflict_engine_exception"}[status]
                item["error"] = {"type": kind, "reason": f"injected {kind}"}
                if refusal:
                    item["error"] = {"type": "illegal_argument_exception", "reason": refusal}
                elif status == 409:
                    item["error"]["reason"] = f"[{_id}]: version conflict, document already exists"
            items.append({op: item})
        with STATE["lock"]:
            save()  # acknowledged means stored, also across a restart
        self.reply(200, {"took": 3, "errors": errors, "items": items})


def main():
    global STATE_FILE
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if len(sys.argv) > 2:
        import os
        STATE_FILE = sys.argv[2]
        if os.path.exists(STATE_FILE):
            with open(STATE_FILE) as f:
                STATE["docs"] = json.load(f)
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("listening", srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
