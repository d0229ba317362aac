"""agtrace attach against real processes, as root, on the real kernel: the exact trees."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
from harness import (AGTRACE, FIXTURES, GC_LOOP, NESTED, NESTED_CET, PYTHON, Target, Tracer,
                     children_of, run_agtrace)

SPEC = os.path.join(FIXTURES, "nested.json")
INSN_SPEC = os.path.join(FIXTURES, "nested-insn.json")



def assert_within(child, parent):
    assert parent["@timestamp"] <= child["@timestamp"] <= child["end_time"] <= parent["end_time"]


@pytest.mark.parametrize("binary", [NESTED, NESTED_CET], ids=["plain", "cet"])
def test_nested_tree_exact(binary):
    """The exact tree of nested calls. cet: the program built with -fcf-protection, as CET
    distributions build everything: each function starts with endbr64, which the kernel would
    single-step out of line at every hit; the entry probe and the uretprobe go on the
    instruction after it (agt_elf_probe_site), and the tree is the same."""
    nested = Target([binary])
    try:
        tr = Tracer(["-p", nested.pid, "--probes", SPEC, "-o", "jsonl", "-v"])
        assert nested.call("outer 3") == "outer 15"
        assert nested.call("outer 10") == "outer 43"
        assert nested.quit() == 0
        assert tr.finish() == 0
    finally:
        nested.kill()
    past = sorted(l.split(": entry probe")[0].split()[-1] for l in tr.err_lines
                  if ": entry probe at +0x4, past the endbr64" in l)
    assert past == ([] if binary == NESTED else
                    ["catcher", "leaf", "middle", "napper", "outer", "recurse", "thread_body",
                     "thrower"])

    spans = tr.spans()
    assert len(spans) == 8
    roots = [s for s in spans if "parent_span_id" not in s]
    assert [r["name"] for r in roots] == ["outer", "outer"]
    for root, n in zip(roots, (3, 10)):
        assert root["probe"]["args"] == {"n": n}
        assert root["probe"]["return_value"] == 4 * n + 3
        assert root["status"] == "ok"
        assert root["trace_type"] == "tool_call"
        assert root["process"]["pid"] == nested.pid
        assert root["process"]["thread"]["id"] == nested.pid
        assert root["process"]["name"] == os.path.basename(binary)
        assert root["process"]["executable"] == binary
        assert 0 < root["duration_ms"] < 5000
        (mid,) = children_of(spans, root)
        assert mid["name"] == "middle"
        assert mid["probe"]["args"] == {"n": n}
        assert mid["probe"]["return_value"] == 4 * n + 2
        assert mid["trace_id"] == root["trace_id"]
        assert_within(mid, root)
        leaves = children_of(spans, mid)
        assert [l["name"] for l in leaves] == ["leaf leaf", "leaf leaf"]
        assert [l["probe"]["args"] for l in leaves] == [{"n": n, "label": "a"},
                                                         {"n": n + 1, "label": "b"}]
        assert [l["probe"]["return_value"] for l in leaves] == [2 * n, 2 * n + 2]
        assert [l["probe"]["depth"] for l in leaves] == [2, 2]
        for l in leaves:
            assert_within(l, mid)
            assert l["trace_id"] == root["trace_id"]
            assert children_of(spans, l) == []
    assert roots[0]["trace_id"] != roots[1]["trace_id"]
    assert len({s["span_id"] for s in spans}) == 8
    assert {s["session_id"] for s in spans} == {roots[0]["session_id"]}
    assert re.fullmatch(r"[0-9a-f]{32}", roots[0]["trace_id"])
    assert re.fullmatch(r"[0-9a-f]{16}", roots[0]["span_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", roots[0]["@timestamp"])

    (attach,) = tr.events("attach")
    (exit_ev,) = tr.events("exit")
    assert attach["message"] == "16 probe links"  # 8 functions x (entry + uretprobe)
    assert exit_ev["message"] == "exited with code 0"
    assert exit_ev["process"]["exit_code"] == 0
    assert tr.records[0] is attach and tr.records[-1] is exit_ev
    assert "8 spans and events emitted" not in tr.summary()
    assert "10 spans and events emitted (0 unfinished), 0 dropped" in tr.summary()


def test_uprobe_one_off_by_path_and_by_mapped_name(nested):
    tr = Tracer(["-p", nested.pid, "--uprobe", f"{NESTED}:middle", "--uprobe", "nest*:leaf",
                 "-o", "jsonl"])
    assert nested.call("outer 2") == "outer 11"
    nested.quit()
    assert tr.finish() == 0
    spans = tr.spans()
    assert [s["name"] for s in spans] == ["leaf", "leaf", "middle"]
    mid = spans[2]
    assert "parent_span_id" not in mid
    assert mid["probe"]["return_value"] == 10
    assert [s["parent_span_id"] for s in spans[:2]] == [mid["span_id"]] * 2
    assert [s["probe"]["return_value"] for s in spans[:2]] == [4, 6]
    assert "args" not in mid["probe"]
    assert all(s["probe"]["object"] == NESTED for s in spans)


def ret_instructions(path, func):
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], capture_output=True,
                         text=True, check=True).stdout
    body = dis.split(f"<{func}>:\n", 1)[1].split("\n\n", 1)[0]
    return sum(1 for l in body.splitlines() if re.search(r"\tret\s*$", l))


def test_return_instruction_attach_go_style(nested):
    nret = ret_instructions(NESTED, "multi_ret")
    assert nret >= 2, "the target must have several return paths for this test to mean anything"
    tr = Tracer(["-p", nested.pid, "--probes", INSN_SPEC, "-o", "jsonl"])
    assert nested.call("multi 0") == "multi 100"   # early return path
    assert nested.call("multi 5") == "multi 50"    # path through the call to leaf
    assert nested.call("multi -1") == "multi -1"
    nested.quit()
    assert tr.finish() == 0
    (attach,) = tr.events("attach")
    assert attach["message"] == f"{1 + nret} probe links"  # entry + one per ret, no uretprobe
    spans = tr.spans()
    assert [(s["name"], s["probe"]["args"]["n"], s["probe"]["return_value"], s["status"])
            for s in spans] == [("multi_ret", 0, 100, "ok"), ("multi_ret", 5, 50, "ok"),
                                ("multi_ret", -1, -1, "ok")]
    assert "0 unfinished" in tr.summary()


def test_longjmp_leaves_callee_unfinished(nested):
    tr = Tracer(["-p", nested.pid, "--probes", SPEC, "-o", "jsonl"])
    assert nested.call("jump") == "jump 7"
    nested.quit()
    assert tr.finish() == 0
    spans = tr.spans()
    assert [(s["name"], s["status"]) for s in spans] == [("thrower", "unfinished"),
                                                        ("catcher", "ok")]
    assert spans[0]["parent_span_id"] == spans[1]["span_id"]
    assert spans[1]["probe"]["return_value"] == 7
    assert "return_value" not in spans[0]["probe"]
    assert spans[1]["trace_type"] == "reasoning_step"
    assert "(1 unfinished)" in tr.summary()


def test_thread_exit_closes_its_calls(nested):
    tr = Tracer(["-p", nested.pid, "--probes", SPEC, "-o", "jsonl"])
    assert nested.call("thread 9") == "thread done"
    nested.quit()
    assert tr.finish() == 0
    (span,) = tr.spans()
    assert span["name"] == "thread_body"
    assert span["status"] == "unfinished"
    assert span["probe"]["args"] == {"n": 9}
    assert span["process"]["thread"]["id"] != nested.pid
    assert span["process"]["pid"] == nested.pid


def test_deep_recursion_is_bounded(nested):
    tr = Tracer(["-p", nested.pid, "--probes", SPEC, "--max-depth", "10", "-o", "jsonl"])
    assert nested.call("recurse 100") == "recurse 100"
    nested.quit()
    assert tr.finish() == 0
    spans = tr.spans()
    assert len(spans) == 10
    assert sorted(s["probe"]["depth"] for s in spans) == list(range(10))
    by_depth = {s["probe"]["depth"]: s for s in spans}
    for d in range(1, 10):
        assert by_depth[d]["parent_span_id"] == by_depth[d - 1]["span_id"]
        assert by_depth[d]["probe"]["args"] == {"n": 100 - d}
        assert by_depth[d]["probe"]["return_value"] == 100 - d
    assert "depth_exceeded=91" in tr.summary()
    assert "91 dropped" in tr.summary()


def test_sigint_flushes_open_calls_and_detaches(nested):
    tr = Tracer(["-p", nested.pid, "--probes", SPEC, "-o", "jsonl"])
    nested.send("sleep 3000")
    time.sleep(0.5)
    assert tr.interrupt() == 0
    (span,) = tr.spans()
    assert span["name"] == "napper"
    assert span["status"] == "unfinished"
    assert span["probe"]["args"] == {"n": 3000}
    (detach,) = tr.events("detach")
    assert detach["process"]["pid"] == nested.pid
    assert tr.events("exit") == []
    assert "(1 unfinished), 0 dropped" in tr.summary()
    # Detached for real: the target runs on untraced and is unharmed.
    assert nested.read() == "slept 3000"
    assert nested.call("outer 1") == "outer 7"


def test_duration_ends_the_run(nested):
    t0 = time.time()
    tr = Tracer(["-p", nested.pid, "--uprobe", f"{NESTED}:leaf", "--duration", "2", "-o", "jsonl"])
    nested.call("outer 1")
    assert tr.finish(timeout=15) == 0
    assert 1.5 < time.time() - t0 < 12
    assert [s["name"] for s in tr.spans()] == ["leaf", "leaf"]
    assert len(tr.events("detach")) == 1


def test_target_exit_code_and_all_targets_gone(nested):
    other = Target([NESTED])
    try:
        tr = Tracer(["-p", nested.pid, "-p", other.pid, "--uprobe", f"{NESTED}:leaf",
                     "-o", "jsonl"])
        nested.call("outer 1")
        other.call("outer 2")
        other.call("outer 3")
        nested.send("exit 3")
        assert nested.p.wait(timeout=10) == 3
        other.quit()
        assert tr.finish() == 0  # exits on its own once every target is gone
    finally:
        other.kill()
    exits = {e["process"]["pid"]: e for e in tr.events("exit")}
    assert exits[nested.pid]["process"]["exit_code"] == 3
    assert exits[nested.pid]["status"] == "error"
    assert exits[nested.pid]["message"] == "exited with code 3"
    assert exits[other.pid]["status"] == "ok"
    per_pid = {}
    for s in tr.spans():
        per_pid.setdefault(s["process"]["pid"], []).append(s["probe"]["args"] if "args" in s["probe"] else s["probe"]["return_value"])
    assert per_pid == {nested.pid: [2, 4], other.pid: [4, 6, 6, 8]}
    sessions = {s["process"]["pid"]: s["session_id"] for s in tr.spans()}
    assert sessions[nested.pid] != sessions[other.pid]


def test_python_usdt_gc_markers():
    py = Target([PYTHON, GC_LOOP])
    try:
        tr = Tracer(["-p", py.pid, "--probes", "python-gc", "-o", "jsonl"])
        assert py.call("gc 2 5") == "collected 5"
        assert py.call("gc 0 3") == "collected 3"
        assert py.call("gc 1 0") == "collected 0"
        assert tr.interrupt() == 0
    finally:
        py.quit()
    spans = tr.spans()
    assert [(s["name"], s["probe"]["args"]["generation"], s["probe"]["return_value"])
            for s in spans] == [("python gc", 2, 5), ("python gc", 0, 3), ("python gc", 1, 0)]
    for s in spans:
        assert s["trace_type"] == "metric"
        assert s["status"] == "ok"
        assert s["probe"]["symbol"] == "python:gc__start"
        assert s["probe"]["object"] == os.path.realpath(PYTHON)
        assert s["process"]["pid"] == py.pid
    (attach,) = tr.events("attach")
    assert attach["message"] == "2 probe links"


def test_tree_output(nested):
    tr = Tracer(["-p", nested.pid, "--probes", SPEC, "-o", "tree"])
    nested.call("outer 3")
    nested.call("jump")
    nested.quit()
    assert tr.finish() == 0
    lines = [re.sub(r"^\d\d:\d\d:\d\d\.\d{6}Z  ", "", l.rstrip("\n")) for l in tr.out]
    lines = [re.sub(r"  \d+\.\d{3} ms", "  X ms", l) for l in lines]
    assert lines == [
        f"attach nested  16 probe links  [state_change pid {nested.pid} nested]",
        f"outer(n=3) = 15  X ms  [tool_call pid {nested.pid} tid {nested.pid} nested]",
        "  └─ middle(n=3) = 14  X ms",
        "    └─ leaf leaf(n=3, label=\"a\") = 6  X ms",
        "    └─ leaf leaf(n=4, label=\"b\") = 8  X ms",
        f"catcher() = 7  X ms  [reasoning_step pid {nested.pid} tid {nested.pid} nested]",
        "  └─ thrower(n=1)  X ms  unfinished",
        f"exit nested  exited with code 0  [state_change pid {nested.pid} nested]",
    ]


def test_container_paths_resolve_through_proc_root():
    """A target in its own mount and PID namespace, running a binary at a path that exists
    only inside that namespace: resolved through /proc/PID/root."""
    inner = "/mnt/agtrace-ct-only/nested"
    assert not os.path.exists(os.path.dirname(inner))
    script = (f"mount -t tmpfs none /mnt && mkdir /mnt/agtrace-ct-only && "
              f"cp {NESTED} {inner} && exec {inner}")
    ct = Target(["unshare", "-m", "-p", "-f", "--mount-proc", "sh", "-c", script])
    try:
        pid = int(subprocess.run(["pgrep", "-f", "-x", inner], capture_output=True, text=True,
                                 check=True).stdout.split()[0])
        tr = Tracer(["-p", pid, "--uprobe", f"{inner}:leaf", "-o", "jsonl"])
        assert ct.call("outer 2") == "outer 11"
        ct.quit()
        assert tr.finish() == 0
    finally:
        ct.kill()
    spans = tr.spans()
    assert [s["probe"]["return_value"] for s in spans] == [4, 6]
    assert {s["probe"]["object"] for s in spans} == {inner}
    assert {s["process"]["pid"] for s in spans} == {pid}


def test_go_binary_at_return_instructions():
    gosum = os.path.join(os.path.dirname(NESTED), "gosum")
    nret = ret_instructions(gosum, "main.Sum")
    assert nret == 2
    go = Target([gosum])
    try:
        tr = Tracer(["-p", go.pid, "--probes", os.path.join(FIXTURES, "gosum.json"),
                     "-o", "jsonl"])
        assert go.call("sum 4") == "sum 30"
        assert go.call("sum 0") == "sum -1"
        go.quit()
        assert tr.finish() == 0
    finally:
        go.kill()
    (attach,) = tr.events("attach")
    assert attach["message"] == f"{2 + nret + ret_instructions(gosum, 'main.Mul')} probe links"
    spans = tr.spans()
    roots = [s for s in spans if "parent_span_id" not in s]
    assert [(r["name"], r["probe"]["args"], r["probe"]["return_value"]) for r in roots] == [
        ("main.Sum", {"a": 4, "b": 3}, 30), ("main.Sum", {"a": 0, "b": 3}, -1)]
    muls = children_of(spans, roots[0])
    assert [(m["name"], m["probe"]["args"], m["probe"]["return_value"]) for m in muls] == [
        ("main.Mul", {"a": i, "b": 3}, 3 * i) for i in range(1, 5)]
    assert children_of(spans, roots[1]) == []
    assert all(s["status"] == "ok" for s in spans)
    assert "0 unfinished), 0 dropped" in tr.summary()
