"""A Fluentd in_forward stand-in: the forward protocol over TCP read strictly with msgpack
(Forward mode [tag, [[time, record], ...], option]), an {"ack": chunk} answer for every message
that asks (require_ack_response), unless the mode file says "noack". Records are kept by span
id in STATE (JSON, rewritten after each message) with the tags and message count.
Run: fluent_server.py STATE MODEFILE [PORT] -> prints "listening PORT"."""
import json
import os
import socketserver
import sys
import threading

import msgpack

STATE, MODEFILE = sys.argv[1], sys.argv[2]
PORT = int(sys.argv[3]) if len(sys.argv) > 3 else 0
LOCK = threading.Lock()
DB = {"records": {}, "tags": [], "messages": 0, "acked": 0}


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        up = msgpack.Unpacker(raw=False)
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            up.feed(data)
            for msg in up:
                if not (isinstance(msg, list) and len(msg) == 3 and isinstance(msg[0], str)
                        and isinstance(msg[1], list) and isinstance(msg[2], dict)):
                    raise ValueError(f"not a Forward-mode message: {msg!r:.200}")
                tag, entries, option = msg
                for e in entries:
                    assert isinstance(e, list) and len(e) == 2 and isinstance(e[0], int)
                    assert isinstance(e[1], dict) and "span_id" in e[1], e
                assert option.get("size") == len(entries), option
                with LOCK:
                    DB["messages"] += 1
                    if tag not in DB["tags"]:
                        DB["tags"].append(tag)
                    for _, rec in entries:
                        DB["records"][rec["span_id"]] = rec
                    mode = open(MODEFILE).read().strip() if os.path.exists(MODEFILE) else "ok"
                    ack = "chunk" in option and mode != "noack"
                    DB["acked"] += ack
                    # Committed before it is acknowledged, as Fluentd's buffer does: a kill
                    # between the two can only cost a duplicate, never an acknowledged record.
                    with open(STATE + ".tmp", "w") as f:
                        json.dump(DB, f)
                    os.replace(STATE + ".tmp", STATE)
                    if ack:
                        self.request.sendall(msgpack.packb({"ack": option["chunk"]}))


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    if os.path.exists(STATE):  # a restart keeps what was stored, as Fluentd's buffer would
        with open(STATE) as f:
            DB.update(json.load(f))
    srv = Server(("127.0.0.1", PORT), Handler)
    print("listening", srv.server_address[1], flush=True)
    srv.serve_forever()
