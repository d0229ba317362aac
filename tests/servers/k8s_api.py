"""A stand-in for the two Kubernetes endpoints agtrace lists pods from: the API server's
GET /api/v1/pods?fieldSelector=spec.nodeName=NODE and the kubelet's GET /pods. Both answer a
v1 PodList, and only to the bearer token given (401 otherwise, as Kubernetes does).
Usage: k8s_api.py STATE_FILE PODS_JSON TOKEN NODE. Writes {"port": N} to STATE_FILE, then
appends every request it saw under "requests" (path and whether it was authorised)."""
import json
import sys
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, __import__("os").path.dirname(__file__))
from jsonhttp import JsonHandler  # noqa: E402

state_file, pods_file, token, node = sys.argv[1:5]
seen = []


def save(port):
    with open(state_file + ".tmp", "w") as f:
        json.dump({"port": port, "requests": seen}, f)
    __import__("os").replace(state_file + ".tmp", state_file)


class Handler(JsonHandler):
    def do_GET(self):
        url = urlparse(self.path)
        ok = self.headers.get("Authorization") == "Bearer " + token
        seen.append({"path": self.path, "authorised": ok})
        save(self.server.server_address[1])
        if not ok:
            return self.reply(401, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                    "reason": "Unauthorized", "code": 401})
        if url.path == "/api/v1/pods":
            sel = parse_qs(url.query).get("fieldSelector", [""])[0]
            if sel != "spec.nodeName=" + node:
                return self.reply(400, {"kind": "Status", "code": 400,
                                        "message": "a DaemonSet lists its own node's pods"})
        elif url.path != "/pods":
            return self.reply(404, {"kind": "Status", "code": 404})
        with open(pods_file) as f:
            pods = json.load(f)
        self.reply(200, {"kind": "PodList", "apiVersion": "v1",
                         "metadata": {"resourceVersion": "1"}, "items": pods})


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
save(srv.server_address[1])
srv.serve_forever()
