"""Kernel-side sampling: ratios decided once per session (process) so traces are kept or
dropped whole, token buckets, run-time changes through the pinned map, and errors of
unsampled sessions still seen."""
import collections
import json
import os
import re
import subprocess
import time

import pytest
from harness import AGTRACE, ROOT, Target, Tracer
from test_llm import PY, SERVER, plain_server  # noqa: F401  (module fixture)

FORKER = os.path.join(ROOT, "tests", "targets", "forker.py")


def steps_by_model(tr):
    return collections.Counter(r["gen_ai"]["request"]["model"] for r in tr.records
                               if r["trace_type"] == "reasoning_step")


def run_forker(port, sample, cmd, timeout=120):
    t = Target([PY, FORKER])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"] + [a for s in sample for a in ("--sample", s)])
        assert t.call(f"{cmd} {port}", timeout=timeout).startswith("done")
        t.quit()
        assert tr.finish(timeout=timeout) == 0
    finally:
        t.kill()
    return tr


def drops(tr, name):
    """A counter of the summary line, by its whole name."""
    return int(re.search(rf"[ (]{name}=(\d+)", tr.summary()).group(1))


def test_ratio_one_keeps_every_session(plain_server):  # noqa: F811
    tr = run_forker(plain_server, [], "fork 20")
    assert steps_by_model(tr) == {f"m-{i}": 2 for i in range(20)}
    assert drops(tr, "sampled_out_sock") == 0


def test_ratio_zero_keeps_no_payload(plain_server):  # noqa: F811
    tr = run_forker(plain_server, ["sock=0"], "fork 10")
    assert steps_by_model(tr) == {}
    assert drops(tr, "sampled_out_sock") >= 10 * 4  # two requests and two responses each, at least


def test_quarter_ratio_keeps_whole_sessions_within_bounds(plain_server):  # noqa: F811
    n = 400
    tr = run_forker(plain_server, ["sock=0.25"], f"fork {n}", timeout=300)
    kept = steps_by_model(tr)
    # Whole traces: a session's two steps are kept together or not at all.
    assert set(kept.values()) <= {2}
    # Binomial(400, 0.25): mean 100, sd 8.7; 4.5 sd either side.
    assert 61 <= len(kept) <= 139, len(kept)
    assert drops(tr, "sampled_out_sock") > 0


def test_token_bucket_caps_events_per_second(plain_server):  # noqa: F811
    t0 = time.time()
    tr = run_forker(plain_server, ["sock=1,rate=10,burst=10"], "burst 200")
    elapsed = time.time() - t0
    limited = drops(tr, "rate_limited_sock")
    assert limited > 0
    # Each kept exchange needs at least two events (request, response); the buckets allow the
    # burst plus the rate over the run.
    assert len(steps_by_model(tr)) <= (10 + 10 * elapsed) / 2 + 1


def test_sample_set_on_a_running_tracer_and_errors_still_seen(plain_server):  # noqa: F811
    t = Target([PY, os.path.join(ROOT, "tests", "targets", "llm_client.py"), str(plain_server),
                "--plain"])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"])
        show = subprocess.run([AGTRACE, "sample", "show", "--pid", str(tr.p.pid)],
                              capture_output=True, text=True)
        assert show.returncode == 0
        assert "sock   ratio 1  rate unlimited  payload bytes default" in show.stdout
        body = json.dumps({"model": "before", "messages": []})
        t.call(f"call a POST /v1/chat/completions {body}")
        r = subprocess.run([AGTRACE, "sample", "set", "--pid", str(tr.p.pid), "sock", "0"],
                           capture_output=True, text=True)
        assert r.stdout == "set: sock   ratio 0  rate unlimited  payload bytes default\n"
        tr.wait_for("sampling changed")
        t.call("call a POST /v1/chat/completions " + json.dumps({"model": "after", "messages": []}))
        t.call("call a POST /v1/chat/completions " + json.dumps({"model": "bad-model", "messages": []}))
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    assert list(steps_by_model(tr)) == ["before"]
    (change,) = tr.events("sampling")
    assert change["message"] == "sock   ratio 0  rate unlimited  payload bytes default"
    (err,) = [r for r in tr.records if r["trace_type"] == "error"]
    assert err["name"] == "error http 404"
    assert err["status"] == "error"
    # Pinned in its own folder while it ran, gone after.
    assert not [d for d in os.listdir("/sys/fs/bpf/agtrace") if d.startswith(f"{tr.p.pid}_")]


def start_ticks(pid):
    """/proc/PID/stat field 22, as agtrace names its pin folder; 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except FileNotFoundError:
        return 0


def running_agtraces():
    return [int(d.split("_")[0]) for d in os.listdir("/sys/fs/bpf/agtrace")
            if "_" in d and start_ticks(int(d.split("_")[0])) == int(d.split("_")[1])] \
        if os.path.isdir("/sys/fs/bpf/agtrace") else []


def test_sample_errors():
    if not running_agtraces():  # (another agtrace on this machine would be found instead)
        r = subprocess.run([AGTRACE, "sample", "show"], capture_output=True, text=True)
        assert r.returncode == 2
        assert r.stderr == ("agtrace: error: no running agtrace to sample (none has a folder "
                            "in /sys/fs/bpf/agtrace); start `agtrace attach` first\n")
    r = subprocess.run([AGTRACE, "sample", "show", "--pid", "1"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("agtrace: error: no agtrace with PID 1 is running")
    r = subprocess.run([AGTRACE, "attach", "-p", "1", "--sample", "tls=2"], capture_output=True,
                       text=True)
    assert r.returncode == 2
    assert r.stderr == ("agtrace: error: sampling ratio for tls must be a number from 0 to 1, got "
                        "\"2\"; see `agtrace sample --help`\n")


def test_adaptive_controller_lowers_ratios_over_budget(plain_server):  # noqa: F811
    tr = run_forker(plain_server, ["sock=1"], "fork 150", timeout=300)  # no budget: all kept
    full = len(steps_by_model(tr))
    assert full == 150
    t = Target([PY, FORKER])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--event-budget", "20"])
        assert t.call(f"fork 150 {plain_server}", timeout=300) == "done"
        t.quit()
        assert tr.finish(timeout=60) == 0
    finally:
        t.kill()
    changes = tr.events("sampling")
    assert changes, tr.err_lines
    first = changes[0]["message"]
    assert first.startswith("func   ratio 0.5 ") or first.startswith("tls    ratio 0.5 ") or \
        first.startswith("sock   ratio 0.5 ")
    assert "(adaptive: " in first and "budget 20" in first
    sock = [c["message"] for c in changes if c["message"].startswith("sock ")]
    assert sock[0].startswith("sock   ratio 0.5 ")
    kept = steps_by_model(tr)
    assert set(kept.values()) <= {2}  # still whole sessions
    assert len(kept) < 150
    assert drops(tr, "sampled_out_sock") > 0


def test_drop_counters_account_for_every_call(nested):
    """50 calls through a token bucket of 5/s: each call is either a span or counted as
    rate-limited, exactly; the returns of dropped calls are counted as such too (50 stays under
    the kernel's 64 nested uretprobes, so every return fires)."""
    from harness import FIXTURES
    tr = Tracer(["-p", nested.pid, "--probes", os.path.join(FIXTURES, "nested.json"),
                 "--max-depth", "256", "--sample", "func=1,rate=5,burst=5", "-o", "jsonl"])
    assert nested.call("recurse 49") == "recurse 49"  # 50 nested calls
    nested.quit()
    assert tr.finish() == 0
    spans = [s for s in tr.spans() if s["name"] == "recurse"]
    limited = drops(tr, "rate_limited_func")
    assert limited > 0
    assert len(spans) + limited == 50
    assert drops(tr, "return_without_entry") == limited


def test_payload_byte_cap(plain_server):  # noqa: F811
    t = Target([PY, os.path.join(ROOT, "tests", "targets", "llm_client.py"), str(plain_server),
                "--plain"])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--sample", "sock=1,bytes=4096"])
        big = {"model": "capped", "messages": [{"role": "user", "content": "w" * 20000}]}
        t.call(f"call a POST /v1/chat/completions {json.dumps(big)}")
        t.call("call a POST /v1/chat/completions " + json.dumps({"model": "small", "messages": []}))
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    steps = [r for r in tr.records if r["trace_type"] == "reasoning_step"]
    assert [s["http"]["request"]["body"]["truncated"] for s in steps] == [True, False]
    assert steps[0]["http"]["request"]["body"]["size"] == len(json.dumps(big))
    assert steps[0]["gen_ai"]["response"]["model"] == "capped-2024-08-06"  # response intact
    assert drops(tr, "tcp_truncated_calls") >= 1


def test_two_runs_keep_their_own_sampling(plain_server):  # noqa: F811
    """Two agtrace runs on one node (a DaemonSet and a `kubectl exec` beside it): each pins its
    sampling map in its own folder; `sample` asks which one when both run, --pid chooses, a
    change reaches that run only, and one run ending leaves the other's pin alone."""
    a, b = Target([PY, FORKER]), Target([PY, FORKER])
    try:
        ta = Tracer(["-p", a.pid, "-o", "jsonl"])
        tb = Tracer(["-p", b.pid, "-o", "jsonl"])
        mine = {ta.p.pid, tb.p.pid}
        assert mine <= set(running_agtraces())
        if set(running_agtraces()) == mine:  # (other agtrace runs on this machine change this)
            r = subprocess.run([AGTRACE, "sample", "show"], capture_output=True, text=True)
            assert r.returncode == 2
            lo, hi = sorted(mine)
            assert r.stderr in (f"agtrace: error: 2 agtrace runs are running (PIDs {lo}, {hi}); "
                                "choose one with --pid PID\n",
                                f"agtrace: error: 2 agtrace runs are running (PIDs {hi}, {lo}); "
                                "choose one with --pid PID\n")
        r = subprocess.run([AGTRACE, "sample", "set", "--pid", str(ta.p.pid), "sock", "0.25"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "set: sock   ratio 0.25  rate unlimited  payload bytes default\n"
        ta.wait_for("sampling changed")
        show = {p: subprocess.run([AGTRACE, "sample", "show", "--pid", str(p)],
                                  capture_output=True, text=True).stdout for p in mine}
        assert "sock   ratio 0.25 " in show[ta.p.pid]
        assert "sock   ratio 1 " in show[tb.p.pid]
        assert tb.interrupt() == 0
        assert tb.p.pid not in running_agtraces()
        assert ta.p.pid in running_agtraces()
        r = subprocess.run([AGTRACE, "sample", "show", "--pid", str(ta.p.pid)],
                           capture_output=True, text=True)
        assert r.returncode == 0 and "sock   ratio 0.25 " in r.stdout
        assert ta.interrupt() == 0
        assert ta.p.pid not in running_agtraces()
    finally:
        a.kill()
        b.kill()


def test_out_of_range_values_in_the_map_are_refused(plain_server):  # noqa: F811
    """Any root process can write the pinned map, bumping its generation or not: a ratio over 1
    is reported and kept at 1, a rate, burst or byte cap over what `sample set` accepts is
    reported and kept at that bound, each counted; a change that keeps the generation is still
    seen and reported."""
    import struct

    a = Target([PY, FORKER])
    try:
        tr = Tracer(["-p", a.pid, "-o", "jsonl"])
        d = [x for x in os.listdir("/sys/fs/bpf/agtrace") if x.startswith(f"{tr.p.pid}_")][0]
        path = f"/sys/fs/bpf/agtrace/{d}/sampling"

        def write(ratio, rate, burst, byte_cap, generation):
            # struct agt_sample_cfg {u32 ratio_ppm, rate, burst, byte_cap; u64 generation},
            # of tls (key 1)
            value = struct.pack("<IIIIQ", ratio, rate, burst, byte_cap, generation)
            subprocess.run(["bpftool", "map", "update", "pinned", path, "key", "hex", "01",
                            "00", "00", "00", "value", "hex", *[f"{b:02x}" for b in value]],
                           check=True)

        def show():
            out = subprocess.run([AGTRACE, "sample", "show", "--pid", str(tr.p.pid)],
                                 capture_output=True, text=True).stdout
            (line,) = [l for l in out.splitlines() if l.startswith("tls ")]
            return line

        write(4294967295, 0, 0, 0, 99)  # a new generation
        tr.wait_for("which is no ratio")
        assert show().startswith("tls    ratio 1 ")
        tr.wait_for("sampling changed")
        # The same generation (99) again, every value out of range.
        write(2000000, 0xffffffff, 0x80000000, 0xfffffff0, 99)
        tr.wait_for("sampling changed")
        big = 0x7fffffff
        assert show() == (f"tls    ratio 1  rate {big}/s burst {big}  payload bytes {big}")
        # The same generation, values in range: a change, reported, nothing refused.
        write(500000, 10, 0, 4096, 99)
        tr.wait_for("sampling changed")
        assert show() == "tls    ratio 0.5  rate 10/s burst 10  payload bytes 4096"
        assert tr.interrupt() == 0
        warned = [l for l in tr.err_lines if "the sampling map of" in l]
        assert warned == [
            "agtrace: warning: the sampling map of tls says ratio 4294.97, which is no ratio "
            "(0 to 1): kept at 1",
            "agtrace: warning: the sampling map of tls says ratio 2, which is no ratio (0 to 1): "
            "kept at 1",
            f"agtrace: warning: the sampling map of tls says rate 4294967295, over the most "
            f"agtrace accepts ({big}): kept at {big}",
            f"agtrace: warning: the sampling map of tls says burst 2147483648, over the most "
            f"agtrace accepts ({big}): kept at {big}",
            f"agtrace: warning: the sampling map of tls says byte cap 4294967280, over the most "
            f"agtrace accepts ({big}): kept at {big}"]
        assert "sampling_map_rejected=5" in tr.summary()  # counted, as well as said
        changes = [c["message"] for c in tr.events("sampling")]
        assert changes == ["tls    ratio 1  rate unlimited  payload bytes default",
                           f"tls    ratio 1  rate {big}/s burst {big}  payload bytes {big}",
                           "tls    ratio 0.5  rate 10/s burst 10  payload bytes 4096"]
    finally:
        a.kill()
