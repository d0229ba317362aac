"""File lineage (--files): the files a scripted coding agent's tools create, edit in place,
replace by renaming a temporary file over them, delete, and change through a `sed -i` a shell
tool runs (a child process renaming its temporary file over the target), each under the tool call
that did it, with exact paths, operations, bytes and SHA-256 before and after; the same lineage
in the audit trail and the metrics; diffs (redacted); what a process writes outside any tool call,
and --files-ignore."""
import hashlib
import json
import os
import re
import time

from harness import PYTHON, ROOT, Target, Tracer
from test_llm import cert, server  # noqa: F401  (module fixtures: TLS material, HTTPS server)
from test_metrics import free_port, scrape, value

CODING = os.path.join(ROOT, "tests", "targets", "coding_agent.py")


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def kids(recs, span):
    return [r for r in recs if r.get("parent_span_id") == span["span_id"]]


def test_file_changes_hang_under_the_tool_calls_that_made_them(tmp_path, server, cert):  # noqa: F811
    d = tmp_path / "work"
    d.mkdir()
    port = free_port()
    audit = tmp_path / "audit.jsonl"
    t = Target([PYTHON, CODING, str(server), str(cert / "cert.pem")])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--files", "--capture-diffs", "--audit", audit,
                     "--metrics", f"127.0.0.1:{port}"])
        assert t.call(f"files {d}", timeout=30) == "files Tidied."
        time.sleep(1.2)  # self metrics refresh once a second
        text = scrape(port)
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    recs = tr.records
    tools = {r["gen_ai"]["tool"]["call"]["id"]: r for r in recs if r["trace_type"] == "tool_call"}
    assert sorted(tools) == ["call_d", "call_e", "call_r", "call_s", "call_wa", "call_wb",
                             "call_wc"]
    files = {cid: [k for k in kids(recs, tool) if k["name"].startswith("file ")]
             for cid, tool in tools.items()}
    a1, a2, a3 = "alpha\nbeta\n", "alpha\ngamma\n", "omega\ngamma\n"
    b1, b2, c1 = "bee\n", "new bee\n", "sea\n"
    A, B, C = f"{d}/a.txt", f"{d}/b.txt", f"{d}/c.txt"

    def only(cid):
        assert len(files[cid]) == 1, [f["name"] for f in files[cid]]
        f = files[cid][0]
        assert f["trace_type"] == "state_change" and f["status"] == "ok"
        assert f["trace_id"] == tools[cid]["trace_id"]
        return f

    # Three writes at once, each under its own call (the path among its arguments decides).
    for cid, path, content in (("call_wa", A, a1), ("call_wb", B, b1), ("call_wc", C, c1)):
        f = only(cid)
        assert f["name"] == f"file create {path}"
        assert f["process"]["pid"] == t.pid
        lines = content.splitlines(True)
        assert f["file"] == {"path": path, "operation": "create", "operations": ["create"],
                             "bytes": len(content), "size": len(content),
                             "hash": {"sha256": sha(content)},
                             "diff": f"--- /dev/null\n+++ b{path}\n@@ -0,0 +1,{len(lines)} @@\n"
                                     + "".join("+" + l for l in lines)}
    # An edit in place (O_TRUNC): from the content the first write left to the new one.
    f = only("call_e")
    assert f["name"] == f"file write {A}"
    assert f["file"] == {"path": A, "operation": "write", "operations": ["write"],
                         "bytes": len(a2), "size": len(a2), "hash": {"sha256": sha(a2)},
                         "before": {"hash": {"sha256": sha(a1)}},
                         "diff": f"--- a{A}\n+++ b{A}\n@@ -1,2 +1,2 @@\n alpha\n-beta\n+gamma\n"}
    # A temporary file renamed over b.txt: b.txt's record, from the content it replaced.
    f = only("call_r")
    assert f["name"] == f"file rename .tmp-b.txt -> {B}"
    assert f["file"] == {"path": B, "operation": "rename", "operations": ["create", "rename"],
                         "previous_path": f"{d}/.tmp-b.txt", "bytes": len(b2), "size": len(b2),
                         "hash": {"sha256": sha(b2)}, "before": {"hash": {"sha256": sha(b1)}},
                         "diff": f"--- a{B}\n+++ b{B}\n@@ -1,1 +1,1 @@\n-bee\n+new bee\n"}
    f = only("call_d")
    assert f["name"] == f"file delete {C}"
    assert f["file"] == {"path": C, "operation": "delete", "operations": ["delete"], "bytes": 0,
                         "before": {"hash": {"sha256": sha(c1)}}}
    # sed -i from a child of the shell tool: its temporary file renamed over a.txt, by sed.
    (sh,) = [k for k in kids(recs, tools["call_s"]) if k["name"].startswith("exec ")]
    assert sh["name"] == f"exec sh -c sed -i s/alpha/omega/ {A}"
    (sed,) = kids(recs, sh)
    f = only("call_s")
    tmp = f["file"]["previous_path"]
    assert re.fullmatch(re.escape(f"{d}/sed") + r"\w{6}", tmp), tmp
    assert f["name"] == f"file rename {os.path.basename(tmp)} -> {A}"
    assert f["process"]["pid"] == sed["process"]["pid"] and f["process"]["name"] == "sed"
    assert f["file"] == {"path": A, "operation": "rename", "operations": ["create", "rename"],
                         "previous_path": tmp, "bytes": len(a3), "size": len(a3),
                         "hash": {"sha256": sha(a3)}, "before": {"hash": {"sha256": sha(a2)}},
                         "diff": f"--- a{A}\n+++ b{A}\n@@ -1,2 +1,2 @@\n-alpha\n+omega\n gamma\n"}
    # Nothing else: no file span outside the tool calls.
    assert sum(len(v) for v in files.values()) == 7
    assert len([r for r in recs if r["name"].startswith("file ")]) == 7

    # The audit trail: which tool call changed which file, from which content to which.
    lineage = [json.loads(l)["data"] for l in open(audit)
               if json.loads(l)["type"] == "file_change"]
    got = [(x["tool_call_id"], x["operation"], x["path"], x.get("sha256_before"),
            x.get("sha256")) for x in lineage]
    assert got == [("call_wa", "create", A, None, sha(a1)), ("call_wb", "create", B, None, sha(b1)),
                   ("call_wc", "create", C, None, sha(c1)), ("call_e", "write", A, sha(a1), sha(a2)),
                   ("call_r", "rename", B, sha(b1), sha(b2)), ("call_d", "delete", C, sha(c1), None),
                   ("call_s", "rename", A, sha(a2), sha(a3))]
    assert {x["tool_name"] for x in lineage} == {"write", "edit", "replace", "delete", "shell"}
    assert all(x["tool_span_id"] == tools[x["tool_call_id"]]["span_id"] for x in lineage)

    # Metrics by operation (the sed rename is sed's).
    m = 'agentic_file_operations_total{operation="%s",component="%s"}'
    assert value(text, m % ("create", "python3.11")) == 3
    assert value(text, m % ("write", "python3.11")) == 1
    assert value(text, m % ("rename", "python3.11")) == 1
    assert value(text, m % ("rename", "sed")) == 1
    assert value(text, m % ("delete", "python3.11")) == 1
    assert value(text, 'agtrace_events_total{source="file"}') > 0


def test_files_outside_tool_calls_are_the_processes_own(tmp_path, server, cert):  # noqa: F811
    """With no tool call open, what the agent writes is its own: one span per path once it is
    quiet, each a trace of its own; --files-ignore keeps paths out."""
    d = tmp_path / "own"
    d.mkdir()
    (d / "notes.md").write_text("notes\n")
    t = Target([PYTHON, CODING, str(server), str(cert / "cert.pem")])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--files", "--files-ignore", f"{d}/cache/*",
                     "--files-read"])
        assert t.call(f"scribble {d}") == "scribble done"
        time.sleep(2.5)  # quiet for a second: flushed by the loop
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    fs = [r for r in tr.records if r["name"].startswith("file ")]
    log = "one\ntwo\n"
    assert [f["name"] for f in fs] == [f"file create {d}/log.txt", f"file read {d}/notes.md"]
    f, r = fs
    assert "parent_span_id" not in f and f["trace_id"] != r["trace_id"]
    assert f["process"]["pid"] == t.pid
    assert f["file"] == {"path": f"{d}/log.txt", "operation": "create",
                         "operations": ["create", "write"], "bytes": len(log), "size": len(log),
                         "hash": {"sha256": sha(log)}}
    assert r["file"] == {"path": f"{d}/notes.md", "operation": "read", "operations": ["read"],
                         "bytes": 6}


def test_lineage_limits_redaction_and_truncation(tmp_path, server, cert):  # noqa: F811
    """A file over --files-hash-max says so instead of a hash; a secret written to a file is
    [REDACTED] in its diff; a diff over 4 KiB is cut there and says so; truncate(2) by path and
    ftruncate(2) by descriptor are truncations, with the content before and after."""
    d = tmp_path / "work"
    d.mkdir()
    port = free_port()
    t = Target([PYTHON, CODING, str(server), str(cert / "cert.pem")])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--capture-diffs", "--files-hash-max", 8192,
                     "--metrics", f"127.0.0.1:{port}"])
        assert t.call(f"lineage {d}", timeout=30) == "lineage Cut."
        time.sleep(1.2)  # self metrics refresh once a second
        text = scrape(port)
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    recs = tr.records
    tools = {r["gen_ai"]["tool"]["call"]["id"]: r for r in recs if r["trace_type"] == "tool_call"}
    files = {cid: [k for k in kids(recs, tool) if k["name"].startswith("file ")]
             for cid, tool in tools.items()}
    assert sorted(tools) == ["call_big", "call_f", "call_f0", "call_long", "call_sec", "call_t",
                             "call_t0"]
    assert all(len(v) == 1 for v in files.values()), files
    got = {cid: v[0]["file"] for cid, v in files.items()}
    assert all(v[0]["trace_id"] == tools[cid]["trace_id"] for cid, v in files.items())

    def created(path, content):
        lines = content.splitlines(True)
        return f"--- /dev/null\n+++ b{path}\n@@ -0,0 +1,{len(lines)} @@\n" + \
            "".join("+" + l for l in lines)
    # Over --files-hash-max: its size, and why there is no hash (and so no diff).
    big = f"{d}/big.txt"
    assert got["call_big"] == {"path": big, "operation": "create", "operations": ["create"],
                               "bytes": 10000, "size": 10000,
                               "hash_note": "over 8192 bytes: not hashed"}
    # A secret written to a file: hashed as it is, [REDACTED] in the diff, nowhere in the output.
    conf, secret = f"{d}/conf.txt", "sk-file-SECRET-0123456789"
    text_c = f"url = https://example.com\ntoken = {secret}\n"
    assert got["call_sec"] == {"path": conf, "operation": "create", "operations": ["create"],
                               "bytes": len(text_c), "size": len(text_c),
                               "hash": {"sha256": sha(text_c)},
                               "diff": created(conf, text_c).replace(secret, "[REDACTED]")}
    assert not any(secret in line for line in tr.out)
    # A diff over 4 KiB: its first 4096 bytes, and that it was cut.
    long_p = f"{d}/long.txt"
    long_t = "".join(f"line {i:03d} " + "x" * 90 + "\n" for i in range(60))
    assert len(created(long_p, long_t)) > 4096
    assert got["call_long"] == {"path": long_p, "operation": "create", "operations": ["create"],
                                "bytes": 6000, "size": 6000, "hash": {"sha256": sha(long_t)},
                                "diff": created(long_p, long_t)[:4096], "diff_truncated": True}
    # truncate(2) by path, then ftruncate(2) through a descriptor opened for writing that
    # wrote nothing: each a truncation, from the content the earlier tool call left.
    tp, fp = f"{d}/t.txt", f"{d}/f.txt"
    assert got["call_t0"]["hash"] == {"sha256": sha("0123456789\n")}
    assert got["call_f0"]["hash"] == {"sha256": sha("one\ntwo\n")}
    assert got["call_t"] == {"path": tp, "operation": "truncate", "operations": ["truncate"],
                             "bytes": 0, "size": 5, "hash": {"sha256": sha("01234")},
                             "before": {"hash": {"sha256": sha("0123456789\n")}},
                             "diff": f"--- a{tp}\n+++ b{tp}\n@@ -1,1 +1,1 @@\n-0123456789\n"
                                     "+01234\n\\ No newline at end of file\n"}
    assert got["call_f"] == {"path": fp, "operation": "truncate", "operations": ["truncate"],
                             "bytes": 0, "size": 4, "hash": {"sha256": sha("one\n")},
                             "before": {"hash": {"sha256": sha("one\ntwo\n")}},
                             "diff": f"--- a{fp}\n+++ b{fp}\n@@ -1,2 +1,1 @@\n one\n-two\n"}
    m = 'agentic_file_operations_total{operation="%s",component="python3.11"}'
    assert value(text, m % "create") == 5 and value(text, m % "truncate") == 2
    assert 'operation="write"' not in text


def test_bytes_are_counted_by_the_file_position(tmp_path, server, cert):  # noqa: F811
    """No program runs on write(2): the bytes of an open file are how far its position moved,
    settled at each seek, plus what pwrite wrote where the position stays. A seek back and an
    overwrite count both writes; appends count from the size the file had; a descriptor a
    forked child inherits is one open file, written by both. Descriptors closed with no
    close(2) are closed too: by dup2 (bash's builtin with its stdout redirected) and by the
    exit of a process whose stdout and stderr are the file."""
    d = tmp_path / "bytes"
    d.mkdir()
    t = Target([PYTHON, CODING, str(server), str(cert / "cert.pem")])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--files"])
        assert t.call(f"bytecount {d}", timeout=30) == "bytecount Counted."
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    recs = tr.records
    tools = {r["gen_ai"]["tool"]["call"]["id"]: r for r in recs if r["trace_type"] == "tool_call"}
    assert sorted(tools) == ["call_app", "call_base", "call_fork", "call_pw", "call_redir",
                             "call_seek"]
    files = {cid: [k for k in kids(recs, tool) if k["name"].startswith("file ")]
             for cid, tool in tools.items()}
    redir = sorted((f["file"] for f in files.pop("call_redir")), key=lambda f: f["path"])
    assert redir == [{"path": f"{d}/one.txt", "operation": "create", "operations": ["create"],
                      "bytes": 1, "size": 1, "hash": {"sha256": sha("x")}},
                     {"path": f"{d}/two.txt", "operation": "create", "operations": ["create"],
                      "bytes": 6, "size": 6, "hash": {"sha256": sha("12345\n")}}]
    assert all(len(v) == 1 for v in files.values()), files
    got = {cid: v[0]["file"] for cid, v in files.items()}

    def bsha(b):
        return hashlib.sha256(b).hexdigest()
    assert got["call_seek"] == {"path": f"{d}/seek.bin", "operation": "create",
                                "operations": ["create"], "bytes": 13, "size": 11,
                                "hash": {"sha256": sha("ab23456789!")}}
    assert got["call_pw"] == {"path": f"{d}/pw.bin", "operation": "create",
                              "operations": ["create"], "bytes": 5, "size": 7,
                              "hash": {"sha256": bsha(b"12\0\0xyz")}}
    assert got["call_base"] == {"path": f"{d}/log.txt", "operation": "create",
                                "operations": ["create"], "bytes": 5, "size": 5,
                                "hash": {"sha256": sha("base\n")}}
    assert got["call_fork"] == {"path": f"{d}/shared.txt", "operation": "create",
                                "operations": ["create"], "bytes": 13, "size": 13,
                                "hash": {"sha256": sha("child\nparent\n")}}
    assert got["call_app"] == {"path": f"{d}/log.txt", "operation": "write",
                               "operations": ["write"], "bytes": 10, "size": 15,
                               "hash": {"sha256": sha("base\nmore\nmost\n")},
                               "before": {"hash": {"sha256": sha("base\n")}}}
