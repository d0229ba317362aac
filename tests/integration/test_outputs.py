"""The local outputs (JSONL or tree, to a file or standard output) and the audit trail under
faults: a full disk, /dev/full, a reader that went away, a run killed in the middle of a
write. Every span is written or counted as lost by reason (written + lost = emitted, exactly),
the failure is warned about once and makes the exit code 1, /metrics shows it, the file is
flushed at least once a second and never keeps a torn line unnoticed. Output files and audit
trails rotate by size and age within a cap on the bytes kept, and a dated file name picks the
file of each span by its start."""
import glob
import json
import os
import queue
import random
import re
import signal
import subprocess
import threading
import time

import pytest
from harness import AGTRACE, FIXTURES, NESTED, Target, Tracer, _pump, run_agtrace
from test_metrics import free_port, scrape, value

SPEC = os.path.join(FIXTURES, "nested.json")
LOST = ("spans are lost until a write succeeds again (counted in agtrace_output_lost_spans_total"
        "{{output=\"{o}\"}}), and agtrace will exit non-zero")


def emitted(tr):
    return int(re.search(r"(\d+) spans and events emitted", tr.summary()).group(1))


def output_counts(tr):
    """The output's summary line: written, lost by reason, failed writes, rotations, removed,
    torn."""
    (line,) = [l for l in tr.err_lines if l.startswith("agtrace: output ")]
    m = re.search(r": (\d+) spans written, (\d+) lost \(disk_full (\d+), io_error (\d+), closed "
                  r"(\d+)\), (\d+) failed writes; (\d+) rotations, (\d+) old files removed, (\d+) "
                  r"torn lines cut at start$", line)
    assert m, line
    keys = ("written", "lost", "disk_full", "io_error", "closed", "failures", "rotations",
            "removed", "torn")
    return dict(zip(keys, map(int, m.groups())))


def lines_of(path):
    with open(path, "rb") as f:
        data = f.read()
    assert not data or data.endswith(b"\n"), f"{path} ends in a torn line"
    return [json.loads(l.decode("utf-8")) for l in data.splitlines()]


@pytest.fixture
def tiny(tmp_path):
    """An empty 64 KiB tmpfs."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt], check=True)
    yield mnt
    subprocess.run(["umount", "-l", mnt], check=False)


def test_audit_on_a_full_disk_is_an_output_failure_too(tiny):
    with open(tiny / "filler", "wb", buffering=0) as f:  # the disk is full
        try:
            while True:
                f.write(b"x" * 4096)
        except OSError:
            pass
    trail, port = tiny / "audit.jsonl", free_port()
    seen = {}

    def scrape_now(tr):
        time.sleep(1.2)
        seen["text"] = scrape(port)

    rc, tr = traced(["--audit", trail, "--metrics", f"127.0.0.1:{port}"], 1,
                    before_quit=scrape_now)
    assert rc == 1
    assert len([l for l in tr.err_lines if "cannot write the audit trail" in l]) == 1
    # config and attach so far: by the audit trail's own counter and as an output
    assert value(seen["text"], 'agtrace_output_write_failures_total{output="audit"}') == 2
    assert value(seen["text"], "agtrace_audit_write_failures_total") == 2
    assert output_counts(tr)["lost"] == 0  # the JSONL output on stdout lost nothing


def traced(args, calls, pause=0.0, before_quit=None):
    """The nested target traced with args; calls `outer i` calls (4 spans each) with a pause
    after each; before_quit(tracer) last."""
    t = Target([NESTED])
    try:
        tr = Tracer(["-p", t.pid, "--probes", SPEC, "-o", "jsonl", *args])
        for i in range(calls):
            t.call(f"outer {i}")
            if pause:
                time.sleep(pause)
        if before_quit:
            before_quit(tr)
        t.quit()
        rc = tr.finish(timeout=60)
    finally:
        t.kill()
    return rc, tr


def test_output_file_on_a_full_disk_counts_every_lost_span(tiny):
    path, port = tiny / "spans.jsonl", free_port()
    seen = {}

    def scrape_now(tr):
        time.sleep(2.2)  # written, then the metrics refreshed (once a second each)
        seen["text"] = scrape(port)

    rc, tr = traced(["--output-file", path, "--metrics", f"127.0.0.1:{port}"], 120,
                    before_quit=scrape_now)
    assert rc == 1
    assert [l for l in tr.err_lines if "cannot write" in l] == [
        f"agtrace: warning: cannot write {path}: No space left on device; " + LOST.format(o="file")]
    c = output_counts(tr)
    assert c["written"] + c["lost"] == emitted(tr) == 1 + 120 * 4 + 1  # attach, calls, exit
    assert c["lost"] == c["disk_full"] > 0 and c["written"] > 0
    assert c["io_error"] == c["closed"] == 0 and c["failures"] >= 1
    recs = lines_of(path)  # whole lines only: what was cut short was cut back out
    assert len(recs) == c["written"]
    assert recs[0]["name"].startswith("attach ")
    # While running: what was written and lost so far is every span emitted so far.
    text = seen["text"]
    w = value(text, 'agtrace_output_spans_total{output="file"}')
    lost = value(text, 'agtrace_output_lost_spans_total{output="file",reason="disk_full"}')
    assert w + lost == 1 + 120 * 4
    assert value(text, 'agtrace_output_lost_spans_total{output="file",reason="io_error"}') == 0
    assert value(text, 'agtrace_output_write_failures_total{output="file"}') >= 1


class RawTracer(Tracer):
    """agtrace with its standard output wherever the test says."""

    def __init__(self, args, stdout):
        self.argv = [AGTRACE, "attach"] + [str(a) for a in args]
        self.p = subprocess.Popen(self.argv, stdout=stdout, stderr=subprocess.PIPE, text=True)
        self.errq = queue.Queue()
        self.err_lines, self.out = [], []
        self._out_thread = threading.Thread(target=lambda: None)
        self._out_thread.start()
        threading.Thread(target=_pump, args=(self.p.stderr, self.errq), daemon=True).start()
        self.wait_for("attached ")


def raw_run(stdout, calls=5, output="jsonl"):
    t = Target([NESTED])
    try:
        tr = RawTracer(["-p", t.pid, "--probes", SPEC, "-o", output], stdout)
        for i in range(calls):
            t.call(f"outer {i}")
        t.quit()
        rc = tr.finish()
    finally:
        t.kill()
    return rc, tr


def test_stdout_to_dev_full():
    with open("/dev/full", "w") as full:
        rc, tr = raw_run(full)
    assert rc == 1
    assert [l for l in tr.err_lines if "cannot write" in l] == [
        "agtrace: warning: cannot write standard output: No space left on device; " +
        LOST.format(o="stdout")]
    c = output_counts(tr)
    assert c["written"] == 0 and c["lost"] == c["disk_full"] == emitted(tr) == 1 + 5 * 4 + 1
    (line,) = [l for l in tr.err_lines if l.startswith("agtrace: output ")]
    assert line.startswith("agtrace: output standard output: 0 spans written, 22 lost")


def test_tree_to_dev_full():
    """The tree output fails as the JSONL one does: every line counted lost, warned once,
    exit 1."""
    with open("/dev/full", "w") as full:
        rc, tr = raw_run(full, output="tree")
    assert rc == 1
    assert [l for l in tr.err_lines if "cannot write" in l] == [
        "agtrace: warning: cannot write standard output: No space left on device; " +
        LOST.format(o="stdout")]
    c = output_counts(tr)
    assert c["written"] == 0 and c["lost"] == c["disk_full"] == emitted(tr) == 1 + 5 * 4 + 1
    assert c["io_error"] == c["closed"] == 0 and c["failures"] >= 1


TREE_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{6}Z  ")


def test_tree_file_on_a_full_disk_counts_every_lost_span(tiny):
    path, port = tiny / "tree.txt", free_port()
    seen = {}

    def scrape_now(tr):
        time.sleep(2.2)  # written, then the metrics refreshed (once a second each)
        seen["text"] = scrape(port)

    t = Target([NESTED])
    try:
        tr = Tracer(["-p", t.pid, "--probes", SPEC, "-o", "tree", "--output-file", path,
                     "--metrics", f"127.0.0.1:{port}"])
        for i in range(400):  # ~70 bytes a line: far more than 64 KiB
            t.call(f"outer {i}")
        scrape_now(tr)
        t.quit()
        rc = tr.finish(timeout=60)
    finally:
        t.kill()
    assert rc == 1
    assert [l for l in tr.err_lines if "cannot write" in l] == [
        f"agtrace: warning: cannot write {path}: No space left on device; " + LOST.format(o="file")]
    c = output_counts(tr)
    assert c["written"] + c["lost"] == emitted(tr) == 1 + 400 * 4 + 1  # attach, calls, exit
    assert c["lost"] == c["disk_full"] > 0 and c["written"] > 0
    assert c["io_error"] == c["closed"] == 0 and c["failures"] >= 1
    data = path.read_bytes()
    assert data.endswith(b"\n")  # what was cut short was cut back out
    lines = data.decode().splitlines()
    assert len(lines) == c["written"] and all(TREE_LINE.match(l) for l in lines)
    assert lines[0].split("  ")[1] == "attach nested"
    text = seen["text"]
    w = value(text, 'agtrace_output_spans_total{output="file"}')
    lost = value(text, 'agtrace_output_lost_spans_total{output="file",reason="disk_full"}')
    assert w + lost == 1 + 400 * 4
    assert value(text, 'agtrace_output_write_failures_total{output="file"}') >= 1


def test_stdout_reader_gone_is_counted_not_fatal():
    r, w = os.pipe()
    os.close(r)  # nobody reads: writes fail with EPIPE (no SIGPIPE kills agtrace)
    try:
        rc, tr = raw_run(w)
    finally:
        os.close(w)
    assert rc == 1
    c = output_counts(tr)
    assert c["lost"] == c["closed"] == emitted(tr) == 22 and c["written"] == 0
    assert [l for l in tr.err_lines if "cannot write" in l] == [
        "agtrace: warning: cannot write standard output: Broken pipe; " + LOST.format(o="stdout")]


def test_output_file_is_flushed_every_second(tmp_path):
    path = tmp_path / "spans.jsonl"
    counts = []

    def watch(tr):
        pass

    t = Target([NESTED])
    try:
        tr = Tracer(["-p", t.pid, "--probes", SPEC, "--output-file", path])
        for i in range(4):
            t.call(f"outer {i}")
            time.sleep(1.3)
            counts.append(len(lines_of(path)))  # every span so far, whole lines only
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    assert counts == [1 + 4, 1 + 8, 1 + 12, 1 + 16]
    assert output_counts(tr)["written"] == len(lines_of(path)) == emitted(tr)


def test_a_torn_last_line_is_cut_and_reported_at_start(tmp_path):
    path = tmp_path / "spans.jsonl"
    path.write_text('{"a":1}\n{"b":2}\n{"trace_id":"torn')
    rc, tr = traced(["--output-file", path], 2)
    assert rc == 0
    assert (f"agtrace: warning: {path} ended in a torn line of 17 bytes (a write cut short: the "
            f"run before was killed, or its disk was full); it was cut off") in tr.err_lines
    recs = lines_of(path)
    assert recs[:2] == [{"a": 1}, {"b": 2}]
    c = output_counts(tr)
    assert c["torn"] == 1 and c["written"] == len(recs) - 2 == emitted(tr)


def test_a_kill_never_leaves_a_torn_line_unnoticed(tmp_path):
    path = tmp_path / "spans.jsonl"
    rng = random.Random(int(os.environ.get("AGTRACE_TEST_SEED", random.randrange(1 << 30))))
    for _ in range(3):
        t = Target([NESTED])
        try:
            tr = Tracer(["-p", t.pid, "--probes", SPEC, "--output-file", path])
            stop = time.time() + rng.uniform(1.0, 2.5)
            while time.time() < stop:
                t.call("recurse 40")
            tr.p.kill()
            tr.p.wait()
        finally:
            t.kill()
        with open(path, "rb") as f:
            torn = not f.read().endswith(b"\n")
        rc, tr2 = traced(["--output-file", path], 1)
        assert rc == 0
        said = [l for l in tr2.err_lines if "ended in a torn line" in l]
        assert len(said) == int(torn)
        lines_of(path)  # whole JSON lines only


def test_rotation_by_size_keeps_whole_lines_in_order(tmp_path):
    path = tmp_path / "spans.jsonl"
    rc, tr = traced(["--output-file", path, "--output-max-bytes", 8192], 40)
    assert rc == 0
    c = output_counts(tr)
    rotated = sorted(glob.glob(f"{path}.*"), key=lambda p: int(p.rsplit(".", 1)[1]))
    assert c["rotations"] == len(rotated) >= 4
    files = rotated + [str(path)]
    recs = []
    for f in files:
        assert os.path.getsize(f) <= 8192
        recs += lines_of(f)
    assert len(recs) == c["written"] == emitted(tr) == 1 + 40 * 4 + 1
    assert recs[0]["name"].startswith("attach ") and recs[-1]["name"].startswith("exit ")
    ends = [r["end_time"] for r in recs if r["trace_type"] != "state_change"]
    assert ends == sorted(ends)  # spans are written as they end, and files follow in order


def test_rotation_keeps_at_most_keep_bytes(tmp_path):
    path = tmp_path / "spans.jsonl"
    rc, tr = traced(["--output-file", path, "--output-max-bytes", 8192, "--output-keep-bytes",
                     20000], 60)
    assert rc == 0
    c = output_counts(tr)
    nums = sorted(int(p.rsplit(".", 1)[1]) for p in glob.glob(f"{path}.*"))
    assert c["rotations"] == nums[-1] and c["removed"] == nums[0] - 1 > 0
    assert nums == list(range(nums[0], nums[-1] + 1))  # the newest are kept
    assert sum(os.path.getsize(f"{path}.{n}") for n in nums) <= 20000


def test_rotation_by_age(tmp_path):
    path = tmp_path / "spans.jsonl"
    rc, tr = traced(["--output-file", path, "--output-max-age", 1], 4, pause=1.3)
    assert rc == 0
    c = output_counts(tr)
    files = sorted(glob.glob(f"{path}.*"), key=lambda p: int(p.rsplit(".", 1)[1])) + [str(path)]
    assert c["rotations"] == len(files) - 1 >= 2
    assert sum(len(lines_of(f)) for f in files) == c["written"] == emitted(tr)


def test_a_dated_file_name_is_chosen_for_each_span(tmp_path):
    # One file per second here, as the embedded default has one per day: each span goes into
    # the file of its own start, whenever it is written.
    pattern = tmp_path / "spans-%H%M%S.jsonl"
    rc, tr = traced(["--output-file", pattern], 6, pause=0.5)
    assert rc == 0
    files = glob.glob(str(tmp_path / "spans-*.jsonl"))
    assert len(files) >= 3
    total = 0
    for f in files:
        stamp = os.path.basename(f)[6:12]
        recs = lines_of(f)
        total += len(recs)
        assert all(r["@timestamp"][11:19].replace(":", "") == stamp for r in recs), f
    assert total == output_counts(tr)["written"] == emitted(tr)


def test_output_option_errors(tmp_path, nested):
    for args, sentence in [
        (["--output-max-bytes", "100000"],
         "--output-max-bytes, --output-max-age and --output-keep-bytes need --output-file FILE "
         "(standard output cannot be rotated)"),
        (["--output-file", "/tmp/%Y/x.jsonl"],
         "/tmp/%Y/x.jsonl: strftime conversions (%Y, %m, %d, ...) may only be in the file "
         "name, not in its folder"),
        (["--output-file", "x.jsonl", "--output-max-bytes", "10"],
         '--output-max-bytes needs a byte count from 4096, got "10"'),
        (["--audit-max-age", "60"],
         "--audit-max-bytes, --audit-max-age and --audit-keep-bytes need --audit FILE"),
    ]:
        r = run_agtrace("attach", "-p", nested.pid, "--uprobe", f"{NESTED}:leaf", *args)
        assert r.returncode == 2, r.stderr
        assert r.stderr == f"agtrace: error: {sentence}; see `agtrace attach --help`\n"
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"targets": {"pids": [nested.pid]},
                               "output": {"file": "/tmp/%D.jsonl"}}))
    r = run_agtrace("run", "--config", cfg)
    assert r.returncode == 2
    assert r.stderr == (f"agtrace: error: {cfg}:1:1: $: /tmp/%D.jsonl: its strftime conversions make "
                        f"no file name (empty, or with a '/' such as %D gives); use %Y-%m-%d; "
                        f"see the configuration section of the README\n")


def audit_files(path):
    rotated = sorted(glob.glob(f"{path}.*"), key=lambda p: int(p.rsplit(".", 1)[1]))
    return rotated + [str(path)]


def verify(*args):
    return subprocess.run([AGTRACE, "audit", "verify", *map(str, args)], capture_output=True,
                          text=True)


def test_audit_trail_rotates_and_verifies_as_one(tmp_path):
    path, key = tmp_path / "audit.jsonl", tmp_path / "audit.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    ts = [Target([NESTED]) for _ in range(8)]
    try:
        tr = Tracer([a for t in ts for a in ("-p", t.pid)] + [
            "--uprobe", f"{NESTED}:outer", "-o", "jsonl", "--audit", path, "--audit-key", key,
            "--audit-checkpoint-records", "1", "--audit-max-bytes", "4096"])
        for t in ts:
            t.call("outer 1")
            t.quit()
        assert tr.finish() == 0
    finally:
        for t in ts:
            t.kill()
    files = audit_files(path)
    assert len(files) >= 3
    recs = [json.loads(l) for f in files for l in open(f)]
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    assert [r["type"] for r in recs].count("rotate") == len(files) - 1
    for f in files:
        assert os.path.getsize(f) <= 4096
    for f in files[1:]:
        assert json.loads(open(f).readline())["type"] == "continue"
    keyed = f"{path}: keyed: every record's HMAC-SHA256 verifies with the key\n"
    r = verify("--key", key, *files)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{path}: {len(files)} files, {len(recs)} records, chain intact, sealed\n" \
        + keyed
    # The current file alone: checked from its continue record.
    first = json.loads(open(path).readline())
    r = verify("--key", key, path)
    assert r.returncode == 0
    assert r.stdout == (f"{path}: {len(recs)} records, chain intact, sealed\n"
                        f"{path}: starts at record {first['seq']}, continuing "
                        f"{os.path.basename(files[-2])} (not given): the records before it are "
                        f"not checked\n" + keyed)
    # A file left out in the middle is found.
    r = verify("--key", key, files[0], *files[2:])
    assert r.returncode == 2
    assert r.stderr == (f"agtrace: error: {files[2]}: line 1 (record "
                        f"{len(open(files[0]).readlines())}) follows a gap: a record before it "
                        f"was removed\n")
    # A later run goes on in the same trail; rotated by age while it runs, still one chain.
    t = Target([NESTED])
    try:
        tr = Tracer(["-p", t.pid, "--uprobe", f"{NESTED}:outer", "-o", "jsonl", "--audit", path,
                     "--audit-key", key, "--audit-checkpoint-records", "1", "--audit-max-age",
                     "1"])
        for i in range(3):
            t.call(f"outer {i}")
            time.sleep(1.3)
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    more = audit_files(path)
    # At least one rotation by age while it ran (how many depends on when its few records and
    # the once-a-second tick fall: the file must hold a record besides its continue record).
    assert len(more) >= len(files) + 1
    r = verify("--key", key, *more)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{path}: {len(more)} files, ")
