"""A stand-in for the Kubernetes endpoints agtrace reads pods from: the API server's
GET /api/v1/pods?fieldSelector=spec.nodeName=NODE (a v1 PodList with its resourceVersion, or with
watch=1 a stream of watch events: ADDED, MODIFIED, DELETED as the pods file changes, BOOKMARK
when asked for, from the resourceVersion given; 410 Gone as an ERROR event for a version older
than the server keeps), GET /apis/apps/v1/namespaces/NS/replicasets/NAME, and the kubelet's
GET /pods (a PodList, no watch). Only to the bearer token given (401 otherwise, as Kubernetes
does).
Usage: k8s_api.py STATE_FILE PODS_JSON TOKEN NODE [REPLICASETS_JSON]. Writes {"port": N} to
STATE_FILE, then appends every request it saw under "requests" (path, whether it was
authorised). The pods file is read again every 0.1 s; a change of it is a watch event."""
import json
import os
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, os.path.dirname(__file__))
from jsonhttp import JsonHandler  # noqa: E402

state_file, pods_file, token, node = sys.argv[1:5]
rs_file = sys.argv[5] if len(sys.argv) > 5 else None
seen, lock, changed = [], threading.Lock(), threading.Condition()
# The event log: (resourceVersion, type, pod); the pods now, by uid; versions before OLDEST are
# no longer kept (a watch from one gets 410).
LOG, NOW, RV = [], {}, [0]
OLDEST = [0]


def save(port):
    with open(state_file + ".tmp", "w") as f:
        json.dump({"port": port, "requests": seen}, f)
    os.replace(state_file + ".tmp", state_file)


def read_pods():
    try:
        with open(pods_file) as f:
            return {p["metadata"]["uid"]: p for p in json.load(f)}
    except (OSError, ValueError):
        return None


def follow():
    """Turn changes of the pods file into watch events."""
    while True:
        pods = read_pods()
        if pods is not None:
            with changed:
                for uid, p in pods.items():
                    kind = "ADDED" if uid not in NOW else "MODIFIED" if NOW[uid] != p else None
                    if kind:
                        RV[0] += 1
                        LOG.append((RV[0], kind, p))
                for uid in set(NOW) - set(pods):
                    RV[0] += 1
                    LOG.append((RV[0], "DELETED", NOW[uid]))
                if pods != NOW:
                    NOW.clear()
                    NOW.update(pods)
                    changed.notify_all()
        time.sleep(0.1)


def versioned(pod, rv):
    pod = json.loads(json.dumps(pod))
    pod.setdefault("metadata", {})["resourceVersion"] = str(rv)
    return pod


class Handler(JsonHandler):
    def chunk(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, q):
        since = int(q.get("resourceVersion", ["0"])[0] or 0)
        timeout = float(q.get("timeoutSeconds", ["300"])[0])
        bookmarks = q.get("allowWatchBookmarks", ["false"])[0] == "true"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if since < OLDEST[0]:
            self.chunk({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
                "reason": "Expired", "message": f"too old resource version: {since}"}})
        else:
            end, last_bookmark = time.time() + timeout, time.time()
            try:
                while time.time() < end:
                    with changed:
                        events = [e for e in LOG if e[0] > since]
                        if not events:
                            changed.wait(0.2)
                    for rv, kind, pod in events:
                        self.chunk({"type": kind, "object": versioned(pod, rv)})
                        since = rv
                    if bookmarks and time.time() - last_bookmark > 1:
                        self.chunk({"type": "BOOKMARK", "object": {
                            "kind": "Pod", "apiVersion": "v1",
                            "metadata": {"resourceVersion": str(RV[0])}}})
                        since = max(since, RV[0])
                        last_bookmark = time.time()
            except (BrokenPipeError, ConnectionResetError):
                return
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self):
        url = urlparse(self.path)
        q = parse_qs(url.query)
        ok = self.headers.get("Authorization") == "Bearer " + token
        with lock:
            seen.append({"path": self.path, "authorised": ok})
            save(self.server.server_address[1])
        if not ok:
            return self.reply(401, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                    "reason": "Unauthorized", "code": 401})
        if url.path.startswith("/apis/apps/v1/namespaces/"):
            parts = url.path.split("/")  # '', apis, apps, v1, namespaces, NS, replicasets, NAME
            rs = {}
            if rs_file:
                with open(rs_file) as f:
                    rs = {(r["metadata"]["namespace"], r["metadata"]["name"]): r
                          for r in json.load(f)}
            if len(parts) == 8 and parts[6] == "replicasets" and (parts[5], parts[7]) in rs:
                return self.reply(200, rs[(parts[5], parts[7])])
            return self.reply(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
        if url.path == "/api/v1/pods":
            sel = q.get("fieldSelector", [""])[0]
            if sel != "spec.nodeName=" + node:
                return self.reply(400, {"kind": "Status", "code": 400,
                                        "message": "a DaemonSet lists its own node's pods"})
            if q.get("watch", ["0"])[0] in ("1", "true"):
                return self.watch(q)
        elif url.path != "/pods":
            return self.reply(404, {"kind": "Status", "code": 404})
        with changed:
            items = [versioned(p, RV[0]) for p in NOW.values()]
            rv = RV[0]
        self.reply(200, {"kind": "PodList", "apiVersion": "v1",
                         "metadata": {"resourceVersion": str(rv)}, "items": items})


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
threading.Thread(target=follow, daemon=True).start()
time.sleep(0.15)  # the pods as they are at start: ADDED events of version 1..n
save(srv.server_address[1])
srv.serve_forever()
