"""The exporters' write-ahead spool against the Elasticsearch stand-in: SIGKILLs at random
moments during an outage and during the recovery lose no span that was handed over more than
an fsync window before the kill; a backend slower than the spans for a minute neither slows the
tracer nor grows its memory, and the backlog drains at the backend's speed once it is fast; a
small spool sheds exactly what its overflow policy says, counted; a torn tail is replayed up to
the tear and reported once; a full disk (a tiny tmpfs) loses only what it counts, and leaves
no .tmp file."""
import json
import os
import random
import re
import subprocess
import threading
import time
import urllib.request

import pytest
from harness import FIXTURES, NESTED, Target, Tracer
from test_export import ES, EsServer, free_port

SPEC = os.path.join(FIXTURES, "nested.json")
SYNC_MS = 100
# A span handed over this long before a SIGKILL must survive it: the fsync interval, plus the
# write and fsync in progress and its own, on a disk shared with builds (600 ms seen).
MARGIN = 2.0


class FastEs(EsServer):
    """The stand-in without a state file (no restart needed: outages are injected faults),
    so that it keeps up with tens of thousands of documents."""

    def __init__(self, port):
        super().__init__(port, None)

    def start(self):
        self.p = subprocess.Popen(["/usr/bin/python3", ES, str(self.port)],
                                  stdout=subprocess.PIPE, text=True)
        assert self.p.stdout.readline().startswith("listening")

    def set(self, **fault):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/_test/fault",
                                     data=json.dumps(fault).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def get(self, path):  # every document of a long run takes a while to serialize
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=120) as r:
            return json.load(r)

    def count(self):
        return self.get("/_test/count")

    def ids(self):
        return set(self.docs())


@pytest.fixture
def es():
    s = FastEs(free_port())
    yield s
    s.stop()


class TimedTracer(Tracer):
    """agtrace whose JSONL lines are stamped with the time the test received them."""

    def _read_out(self):
        self.timed = []
        for line in iter(self.p.stdout.readline, ""):
            self.out.append(line)
            self.timed.append((time.monotonic(), line))


def es_line(tr):
    return [l for l in tr.err_lines if l.startswith("agtrace: elasticsearch:")][0]


def field(line, name):
    """The number before name in the summary line (or after it, for "lost by reason")."""
    m = re.search(r"(\d+) " + re.escape(name), line) or re.search(re.escape(name) + r" (\d+)",
                                                                     line)
    return int(m.group(1))


def tracer(es, spool, pid, *extra, probes=True):
    args = ["-p", pid, "-o", "jsonl", "--es", f"http://127.0.0.1:{es.port}", "--spool-dir",
            spool, "--spool-sync-ms", str(SYNC_MS), *extra]
    args += ["--probes", SPEC] if probes else ["--uprobe", f"{NESTED}:leaf"]
    return TimedTracer(args)


class Load(threading.Thread):
    """Calls `recurse depth` (depth + 1 spans each) on the target, rate calls a second, until
    stopped; records each call's latency."""

    def __init__(self, t, depth, rate):
        super().__init__(daemon=True)
        self.t, self.depth, self.rate = t, depth, rate
        self.stop = threading.Event()
        self.calls = 0
        self.lat = []

    def run(self):
        start = time.monotonic()
        while not self.stop.is_set():
            a = time.monotonic()
            try:
                self.t.call(f"recurse {self.depth}")
            except (AssertionError, BrokenPipeError, OSError):
                return
            self.lat.append((a, time.monotonic() - a))
            self.calls += 1
            pause = start + self.calls / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)


def spool_bytes(spool):
    """Bytes of the spool's segment files now; a segment deleted (delivered) while they are
    listed counts as gone."""
    total = 0
    for f in os.listdir(spool):
        if f.startswith("spool-"):
            try:
                total += os.path.getsize(spool / f)
            except FileNotFoundError:
                pass
    return total


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def killed_run(es, spool, rng, stop_first):
    """A run traced under load, SIGKILLed at a random moment. Returns the span ids that must
    survive (received more than MARGIN before the kill) and every span id it emitted."""
    t = Target([NESTED])
    try:
        tr = tracer(es, spool, t.pid)
        load = Load(t, 20, 100)  # 2,100 spans a second
        load.start()
        time.sleep(rng.uniform(2.5, 5.0))
        if stop_first:  # the spans handed over, then some fsync intervals pass
            load.stop.set()
            load.join()
            # The JSONL output (how the test learns what was handed over) is written at least
            # once a second: the last lines reach the test up to a second after their spans.
            time.sleep(1.0 + MARGIN + rng.uniform(0.0, 0.5))
        killed_at = time.monotonic()
        tr.p.kill()
        tr.p.wait()
        load.stop.set()
        load.join()
        tr._out_thread.join(timeout=5)
    finally:
        t.kill()
    ids = [json.loads(l)["span_id"] for _, l in tr.timed if l.startswith("{")]
    must = [json.loads(l)["span_id"] for at, l in tr.timed
            if l.startswith("{") and at < killed_at - MARGIN]
    return set(must), set(ids)


def test_sigkill_during_outage_and_recovery_loses_nothing(es, tmp_path):
    seed = int(os.environ.get("AGTRACE_TEST_SEED", random.randrange(1 << 30)))
    print(f"seed {seed} (AGTRACE_TEST_SEED={seed} repeats this run)")
    rng = random.Random(seed)
    spool = tmp_path / "spool"
    es.set(mode="reset")  # the outage: every connection closed without an answer
    must, emitted = set(), set()
    for k in range(3):
        m, ids = killed_run(es, spool, rng, stop_first=(k == 1))
        print(f"outage run {k}: {len(ids)} spans emitted, {len(m)} handed over more than "
              f"{MARGIN} s before the SIGKILL")
        if k == 1:
            assert m == ids  # stopped, then killed after the window: every span must survive
        must |= m
        emitted |= ids
    assert len(must) > 10000
    assert es.count()["docs"] == 0
    # The recovery: Elasticsearch back but slow, so that the replay takes seconds; killed in the
    # middle of it, twice.
    es.set(mode="rate", docs_per_s=4000)
    for k in range(2):
        t = Target([NESTED])
        try:
            before = es.count()["docs"]
            tr = tracer(es, spool, t.pid, probes=False)
            deadline = time.monotonic() + 30
            while es.count()["docs"] == before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.3, 1.5))
            tr.p.kill()
            tr.p.wait()
            tr._out_thread.join(timeout=5)
            emitted |= {json.loads(l)["span_id"] for _, l in tr.timed if l.startswith("{")}
        finally:
            t.kill()
        got = es.count()["docs"]
        print(f"recovery run {k}: SIGKILL with {got} of {len(emitted)} spans in Elasticsearch")
        assert before < got < len(emitted)  # killed in the middle of the replay
    es.set(mode="ok")
    t = Target([NESTED])
    try:
        tr = tracer(es, spool, t.pid, probes=False)
        t.quit()
        assert tr.finish(timeout=120) == 0
    finally:
        t.kill()
    ids = es.ids()
    assert must <= ids, f"{len(must - ids)} spans lost"
    # Delivered but never seen on the JSONL output: spans handed to the spool in the last second
    # before a SIGKILL, whose lines were still in the output's buffer (written once a second):
    # at most a second of the load in each of the three outage runs.
    unseen = ids - emitted - {r["span_id"] for r in tr.records}
    assert len(unseen) <= 3 * 2100, len(unseen)
    line = es_line(tr)
    assert "0 lost (spool full)" in line and "0 bytes waiting" in line
    assert field(line, "torn") <= 3  # at most each killed outage run's last write
    dups = es.count()["duplicates"]
    print(f"{len(ids)} spans delivered, {len(emitted - ids)} of the last {MARGIN} s before "
          f"the kills lost, {dups} delivered twice; {line}")
    assert dups <= 2 * 500  # a SIGKILL sends again at most the batch it interrupted
    assert not [f for f in os.listdir(spool) if f.startswith("spool-")]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return {k: int(v.split()[0]) for k, v in
                (l.split(":", 1) for l in f if l.startswith(("VmRSS", "VmHWM")))}


def test_a_slow_backend_for_a_minute_then_the_backlog_drains_at_full_speed(es, tmp_path):
    span_rate, slow = 1500, 500  # the backend keeps up with a third of the spans
    spool = tmp_path / "spool"
    t = Target([NESTED])
    try:
        tr = tracer(es, spool, t.pid)
        load = Load(t, 29, span_rate / 30)
        load.start()
        time.sleep(5)  # the backend keeps up: the target's own pace, as a baseline
        base = [l for a, l in load.lat]
        es.set(mode="rate", docs_per_s=slow)
        t_slow = time.monotonic()
        mem = []
        while time.monotonic() - t_slow < 60:
            time.sleep(5)
            mem.append(rss_kib(tr.p.pid)["VmRSS"])
        load.stop.set()
        load.join()
        slow_lat = [l for a, l in load.lat if a > t_slow]
        emitted = load.calls * 30
        time.sleep(1)
        backlog = emitted - es.count()["docs"]
        es.set(mode="ok")
        t_fast = time.monotonic()
        while es.count()["docs"] < emitted and time.monotonic() - t_fast < 120:
            time.sleep(0.2)
        drained = time.monotonic() - t_fast
        hwm = rss_kib(tr.p.pid)["VmHWM"]
        t.quit()
        assert tr.finish(timeout=120) == 0
    finally:
        t.kill()
    rate = backlog / drained
    print(f"{emitted} spans at {span_rate}/s; the backend at {slow}/s for 60 s left {backlog} "
          f"behind, drained in {drained:.1f} s: {rate:.0f}/s; call median {median(base) * 1e3:.2f}"
          f" ms before, {median(slow_lat) * 1e3:.2f} ms while slow; RSS {mem} KiB, peak {hwm}")
    assert backlog > 20000
    assert rate >= 4 * slow  # full speed: the backend's, not the spool's
    # The tracer is not slowed: every span emitted, none dropped, the target's calls as fast.
    assert len(tr.records) == emitted + 2
    assert re.search(r" 0 dropped", tr.summary())
    assert median(slow_lat) <= 1.5 * median(base) + 0.002
    # Memory stays bounded while the backlog grows on disk.
    assert max(mem) - mem[0] < 32 * 1024 and hwm < 256 * 1024
    assert es.ids() == {r["span_id"] for r in tr.records}
    line = es_line(tr)
    assert f"{emitted + 2} delivered" in line and "0 lost (spool full)" in line


@pytest.mark.parametrize("policy", ["newest", "oldest"])
def test_a_small_spool_sheds_by_policy_and_counts_exactly(es, tmp_path, policy):
    spool, limit = tmp_path / "spool", 1 << 20
    es.set(mode="rate", docs_per_s=500)
    t = Target([NESTED])
    try:
        tr = tracer(es, spool, t.pid, "--spool-max-bytes", str(limit), "--spool-overflow",
                    policy)
        load = Load(t, 29, 50)  # 1,500 spans a second
        load.start()
        used, start = [], time.monotonic()
        while time.monotonic() - start < 20:
            used.append(spool_bytes(spool))
            time.sleep(0.1)
        load.stop.set()
        load.join()
        es.set(mode="ok")
        t.quit()
        assert tr.finish(timeout=120) == 0
    finally:
        t.kill()
    line = es_line(tr)
    reason = {"newest": "spool_full", "oldest": "evicted"}[policy]
    shed, emitted = field(line, reason), len(tr.records)
    ids = es.ids()
    print(f"policy {policy}: {emitted} emitted, {len(ids)} delivered, {shed} shed; most spool "
          f"bytes {max(used)}; {line}")
    assert shed > 1000
    assert len(ids) + shed == emitted  # exact: every span delivered or counted
    assert field(line, "lost (spool full)") == shed  # and no other reason
    assert max(used) <= limit
    order = [r["span_id"] for r in tr.records]
    if policy == "newest":  # the oldest are kept: the first spans all arrived
        assert set(order[:500]) <= ids
    else:  # the newest are kept: the last spans all arrived
        assert set(order[-500:]) <= ids


def write_segment(path, docs, cut):
    """A log segment as delivery.c writes it, its last record cut short by cut bytes."""
    import struct
    import zlib
    out = bytearray(b"AGTSPOOL" + struct.pack("<II", 1, 0))
    for d in docs:
        body = struct.pack("<IQ", len(d), time.time_ns()) + d
        out += struct.pack("<I", zlib.crc32(body)) + body
    with open(path, "wb") as f:
        f.write(out[:len(out) - cut])


def test_a_torn_tail_is_replayed_up_to_the_tear_and_reported_once(es, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    docs = []
    for i in range(50):
        sid = f"{0xfeed0000 + i:016x}"
        docs.append(json.dumps({"index": {"_index": "agentic-traces-torn", "_id": sid}}).encode()
                    + b"\n" + json.dumps({"span_id": sid, "n": i}).encode() + b"\n")
    write_segment(spool / "spool-00000000000000000007.log", docs, cut=20)
    es.set(mode="reset")  # down: the first run finds the tear and keeps the rest
    runs = []
    for mode in ("reset", "ok"):
        es.set(mode=mode)
        t = Target([NESTED])
        try:
            tr = tracer(es, spool, t.pid, "--es-drain-seconds", "1", probes=False)
            t.quit()
            assert tr.finish(timeout=60) == 0
        finally:
            t.kill()
        runs.append(tr)
    tears = [[l for l in tr.err_lines if "torn or corrupt record" in l] for tr in runs]
    assert len(tears[0]) == 1 and "the 49 records before it are sent" in tears[0][0]
    assert tears[1] == []  # reported once: the tear was cut off
    assert field(es_line(runs[0]), "torn") == 1 and field(es_line(runs[1]), "torn") == 0
    got = es.get("/_test/docs").get("agentic-traces-torn", {})
    assert set(got) == {f"{0xfeed0000 + i:016x}" for i in range(49)}
    # Replayed: the 49, and what the first run (down) kept of its own.
    assert field(es_line(runs[1]), "replayed from the spool") == 49 + len(runs[0].records)
    assert "0 lost (spool full)" in es_line(runs[1])


@pytest.fixture
def tiny_fs(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


@pytest.mark.parametrize("policy", ["newest", "oldest"])
def test_a_full_disk_loses_only_what_it_counts(es, tiny_fs, policy):
    spool = tiny_fs / "spool"
    spool.mkdir()
    (spool / "spool-000000000003.ndjson.tmp").write_text('{"partial": ')  # an older crash's
    es.set(mode="reset")
    t = Target([NESTED])
    try:
        tr = tracer(es, spool, t.pid, "--es-drain-seconds", "1", "--spool-max-bytes",
                    str(1 << 20), "--spool-overflow", policy)
        for _ in range(40):  # 1,240 spans of ~800 bytes: far more than 256 KiB
            t.call("recurse 30")
        t.quit()
        assert tr.finish(timeout=60) == 1  # a spool write failed: the run says so
    finally:
        t.kill()
    first = {r["span_id"] for r in tr.records}
    line = es_line(tr)
    spooled, full, evicted = field(line, "spooled"), field(line, "disk_full"), field(line, "evicted")
    print(f"policy {policy}: {len(first)} emitted, {spooled} spooled, {full} lost to the full "
          f"disk, {evicted} evicted; {line}")
    if policy == "newest":  # the full disk refuses the newest
        assert full > 0 and evicted == 0
    else:  # the full disk makes the oldest go, and refuses nothing
        assert evicted > 0 and full == 0
    assert field(line, "stale .tmp removed") == 1
    # Whatever the policy, the disk refused writes: counted (once per failed write), exit 1.
    assert field(line, "failed spool writes") >= 1
    assert spooled + full == len(first) == field(line, "queued")
    assert field(line, "lost (spool full)") == full + evicted
    assert not [f for f in os.listdir(spool) if f.endswith(".tmp")]
    es.set(mode="ok")  # the next run delivers exactly what the first one did not count lost
    t = Target([NESTED])
    try:
        tr2 = tracer(es, spool, t.pid, probes=False)
        t.quit()
        rc2 = tr2.finish(timeout=60)
    finally:
        t.kill()
    ids, line2 = es.ids(), es_line(tr2)
    assert rc2 == (1 if field(line2, "failed spool writes") else 0)
    assert len(ids & first) == spooled - evicted
    # The second run starts on a disk still full of the first one's spool: its own first
    # spans may not fit until the replay frees space; those are counted too.
    assert ids - first <= {r["span_id"] for r in tr2.records}
    assert len(ids - first) + field(line2, "disk_full") == len(tr2.records)
    assert field(line2, "lost (spool full)") == field(line2, "disk_full")
    assert not [f for f in os.listdir(spool) if f.endswith(".tmp") or f.startswith("spool-")]


def test_a_disk_full_from_the_start_fails_every_write_and_the_run(es, tmp_path):
    """A spool on a disk already full: every document's write fails, once each; each is
    counted as a failed spool write and lost to disk_full, in the summary and /metrics
    (agtrace_output_write_failures_total{output="spool"}), and the run exits 1."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    port = free_port()
    t = Target([NESTED])
    try:
        (mnt / "spool").mkdir()
        subprocess.run(["dd", "if=/dev/zero", f"of={mnt / 'fill'}", "bs=4k"],
                       capture_output=True)
        assert os.statvfs(mnt).f_bavail == 0
        tr = tracer(es, mnt / "spool", t.pid, "--es-drain-seconds", "1", "--metrics",
                    f"127.0.0.1:{port}")
        for _ in range(3):
            assert t.call("outer 3") == "outer 15"
        time.sleep(2.5)  # written (or not) within sync_ms; metrics refreshed every second
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as m:
            text = m.read().decode()

        def metric(series):
            (v,) = [float(l.split()[-1]) for l in text.splitlines()
                    if l.startswith(series + " ")]
            return int(v)
        spans = metric('agtrace_output_spans_total{output="stdout"}')
        assert spans == 13  # the attach event and 3 x 4 function spans
        assert metric('agtrace_output_write_failures_total{output="spool",'
                      'exporter="elasticsearch"}') == spans
        assert metric('agtrace_export_lost_total{exporter="elasticsearch",'
                      'reason="disk_full"}') == spans
        t.quit()
        assert tr.finish(timeout=60) == 1
    finally:
        t.kill()
        subprocess.run(["umount", "-l", str(mnt)], check=True)
    line = es_line(tr)
    assert len(tr.records) == 14  # and the exit event
    assert field(line, "queued") == field(line, "failed spool writes") == \
        field(line, "disk_full") == 14
    assert field(line, "spooled") == 0 and field(line, "delivered") == 0
    warned = [l for l in tr.err_lines if "spool" in l and "is full" in l]
    assert warned == [f"agtrace: warning: the disk of the elasticsearch spool {mnt / 'spool'} is "
                      f"full (No space left on device): documents that do not fit are counted "
                      f"as lost"]


def test_metrics_show_the_spool_age_and_losses_by_reason(es, tmp_path):
    es.set(mode="reset")  # down: spans wait, and the small spool refuses the newest
    port = free_port()
    t = Target([NESTED])
    try:
        tr = tracer(es, tmp_path / "spool", t.pid, "--spool-max-bytes", "65536", "--metrics",
                    f"127.0.0.1:{port}", "--es-drain-seconds", "1")
        for _ in range(20):
            t.call("recurse 30")
        time.sleep(3.5)  # the metrics are refreshed every second
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as m:
            text = m.read().decode()
        t.quit()
        assert tr.finish(timeout=60) == 0
    finally:
        t.kill()
    series = dict(re.findall(r"^(agtrace_(?:spool|export)_\S+) (\S+)$", text, re.M))
    exp = 'exporter="elasticsearch"'
    assert float(series[f"agtrace_spool_oldest_age_seconds{{{exp}}}"]) >= 2  # current
    assert float(series[f"agtrace_spool_bytes{{{exp}}}"]) > 0
    line = es_line(tr)
    after = len(tr.records) - (20 * 31 + 1)  # emitted after the scrape: the exit, the detach
    for reason in ("spool_full", "evicted", "disk_full", "io_error", "queue_full", "encode"):
        got = float(series[f'agtrace_export_lost_total{{{exp},reason="{reason}"}}'])
        assert field(line, reason) - after <= got <= field(line, reason)
    assert field(line, "spool_full") > 0


def test_spool_options_and_their_errors(tmp_path, nested):
    from harness import run_agtrace
    for args, sentence in [
        (["--spool-overflow", "sideways"],
         '--spool-overflow needs oldest or newest, got "sideways"'),
        (["--spool-sync-ms", "0"], '--spool-sync-ms needs milliseconds from 1 to 60000, got "0"'),
    ]:
        r = run_agtrace("attach", "-p", "1", "--uprobe", "a:b", *args)
        assert r.returncode == 2
        assert r.stderr == f"agtrace: error: {sentence}; see `agtrace attach --help`\n"
    # The configuration file's keys are the same options.
    cfg = tmp_path / "agtrace.json"
    cfg.write_text(json.dumps({"targets": {"pids": [nested.pid]}, "uprobes": [f"{NESTED}:leaf"],
                               "spool": {"dir": str(tmp_path / "spool"), "overflow": "oldest",
                                         "sync_ms": 50}}))
    r = run_agtrace("run", "--config", cfg, "--dry-run")
    assert r.returncode == 0, r.stderr
    cfg.write_text(json.dumps({"targets": {"pids": [nested.pid]},
                               "spool": {"overflow": "middle"}}))
    r = run_agtrace("run", "--config", cfg, "--dry-run")
    assert r.returncode == 2 and '--spool-overflow needs oldest or newest, got "middle"' in r.stderr
