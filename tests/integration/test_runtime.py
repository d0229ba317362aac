"""Runtime metrics of traced processes, read at scrape time: /proc figures for every process, and
what a Python, a Go (with and without .symtab) and a Node program were made to do to their
garbage collectors, goroutines and event loop, counted exactly where the runtime makes it exact
(collections asked for, goroutines started and ended, objects collected), within bounds
otherwise (heap sizes, pauses, event-loop idle time). Also: a Go version agtrace does not cover
is refused in one sentence, and the runtime dashboards and alert rules use what is scraped."""
import glob
import json
import os
import re
import subprocess
import time

import yaml
from harness import GC_LOOP, PYTHON, ROOT, Target, Tracer
from test_metrics import free_port, scrape, value

RTGO = os.path.join(ROOT, "build", "tests", "rtgo")
RTNODE = os.path.join(ROOT, "tests", "targets", "rt_node.mjs")
DEPLOY = os.path.join(ROOT, "deploy")


def series(text, prefix):
    """name{labels} -> value for every sample of the families starting with prefix."""
    out = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def traced(argv, tcp=False):
    t = Target(argv)
    port = free_port()
    tr = Tracer(["-p", t.pid, "-o", "jsonl", "--metrics", f"127.0.0.1:{port}"] +
                ([] if tcp else ["--no-tcp"]))
    return t, tr, port


def test_python_collections_and_process_figures():
    t, tr, port = traced([PYTHON, GC_LOOP])
    try:
        w = 'workload="python3.11"'
        before = scrape(port)
        got = {}
        for gen, cycles in ((0, 5), (1, 3), (2, 7), (2, 2)):
            reply = t.call(f"gc {gen} {cycles}")
            got.setdefault(gen, []).append(int(reply.split()[1]))
        text = scrape(port)
        fds = len(os.listdir(f"/proc/{t.pid}/fd"))
        with open(f"/proc/{t.pid}/stat") as f:
            stat = f.read().rsplit(")", 1)[1].split()
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    # Exactly the collections asked for, and the objects each returned as collected.
    for gen, n in ((0, 1), (1, 1), (2, 2)):
        sel = f'{{{w},generation="{gen}"}}'
        assert value(text, "agentic_python_gc_collections_total" + sel) - \
            value(before, "agentic_python_gc_collections_total" + sel) == n
        assert value(text, "agentic_python_gc_collected_objects_total" + sel) - \
            value(before, "agentic_python_gc_collected_objects_total" + sel) == sum(got[gen])
        assert value(text, "agentic_python_gc_pause_seconds_count" + sel) - \
            value(before, "agentic_python_gc_pause_seconds_count" + sel) == n
        assert 0 < value(text, "agentic_python_gc_pause_seconds_sum" + sel) < 1
        assert value(text, f'agentic_python_gc_pause_seconds_bucket{{{w},generation="{gen}",'
                     'le="+Inf"}') == value(text, "agentic_python_gc_pause_seconds_count" + sel)
    assert got == {0: [5], 1: [3], 2: [7, 2]}
    # /proc, read at scrape time.
    tick = os.sysconf("SC_CLK_TCK")
    btime = next(float(l.split()[1]) for l in open("/proc/stat") if l.startswith("btime "))
    assert value(text, f"agentic_processes{{{w}}}") == 1
    assert value(text, f"agentic_process_threads{{{w}}}") == 1
    assert value(text, f"agentic_python_threads{{{w}}}") == 1
    assert value(text, f"agentic_process_open_fds{{{w}}}") == fds
    assert value(text, f"agentic_process_start_time_seconds{{{w}}}") == \
        btime + int(stat[19]) / tick
    rss = int(stat[21]) * os.sysconf("SC_PAGESIZE")
    assert 0.8 * rss < value(text, f"agentic_process_resident_memory_bytes{{{w}}}") < 1.25 * rss
    cpu = (int(stat[11]) + int(stat[12])) / tick
    assert 0 < value(text, f"agentic_process_cpu_seconds_total{{{w}}}") <= cpu
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                          text=True)
    assert lint.returncode == 0 and lint.stdout == "" and lint.stderr == "", lint


def go_run(binary):
    t, tr, port = traced([binary])
    name = os.path.basename(binary)
    w = f'workload="{name}"'
    try:
        assert t.call("alloc 32") == "allocated 32"
        assert t.call("gc 1") == "collected 1"  # the first cycle starts the GC's own workers
        a = scrape(port)
        assert t.call("go 10") == "goroutines 11"
        assert t.call("gc 3") == "collected 3"
        b = scrape(port)
        threads = len(os.listdir(f"/proc/{t.pid}/task"))
        assert t.call("release") == "goroutines 1"
        assert t.call("gc 2") == "collected 2"
        c = scrape(port)
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    d = lambda x, y, m: value(y, f"{m}{{{w}}}") - value(x, f"{m}{{{w}}}")  # noqa: E731
    # Exact: the cycles asked for, two stop-the-world pauses each, the goroutines started and
    # ended.
    assert d(a, b, "agentic_go_gc_cycles_total") == 3
    assert d(b, c, "agentic_go_gc_cycles_total") == 2
    assert d(a, b, "agentic_go_gc_pause_seconds_count") == 6
    assert d(b, c, "agentic_go_gc_pause_seconds_count") == 4
    assert d(a, b, "agentic_go_goroutines_started_total") == 10
    assert d(b, c, "agentic_go_goroutines_exited_total") == 10
    assert d(a, b, "agentic_go_goroutines") == 10 and d(b, c, "agentic_go_goroutines") == -10
    # Bounds: 32 MiB kept live (and the runtime's own few hundred KiB); pauses under a second.
    for x in (a, b, c):
        assert 32 << 20 <= value(x, f"agentic_go_heap_live_bytes{{{w}}}") < 34 << 20
    assert 0 < d(a, b, "agentic_go_gc_pause_seconds_sum") < 6
    assert value(b, f'agentic_go_gc_pause_seconds_bucket{{{w},le="1"}}') == \
        value(b, f"agentic_go_gc_pause_seconds_count{{{w}}}")
    assert value(b, f"agentic_process_threads{{{w}}}") == threads
    return tr


def test_go_runtime_with_symbols():
    go_run(RTGO)


def test_go_runtime_stripped():
    """-s -w: no .symtab; the runtime's functions are found in .gopclntab."""
    tr = go_run(RTGO + "-stripped")
    assert any("6 probe links" in l for l in tr.err_lines), tr.err_lines


def test_go_version_not_covered_is_refused(tmp_path):
    """A Go binary built by a version outside 1.18-1.22: one sentence, no Go series."""
    data = open(RTGO, "rb").read()
    (ver,) = set(re.findall(rb"go1\.19\.\d+", data))
    other = tmp_path / "rtgo-other"
    other.write_bytes(data.replace(ver, b"go1.99" + ver[6:]))
    other.chmod(0o755)
    t, tr, port = traced([str(other)], tcp=True)  # nothing but TCP capture left to do
    try:
        assert t.call("gc 2") == "collected 2"
        text = scrape(port)
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    v = (b"go1.99" + ver[6:]).decode()
    assert (f"agtrace: warning: PID {t.pid} (rtgo-other): built by Go {v}; agtrace's Go runtime "
            "metrics cover Go 1.18 to 1.22 (the runtime functions they probe), so its GC and "
            "goroutines are not measured") in tr.err_lines
    assert "agentic_go_" not in text
    assert value(text, 'agentic_processes{workload="rtgo-other"}') == 1


def test_node_gc_kinds_and_event_loop():
    t, tr, port = traced(["node", "--expose-gc", RTNODE])
    w = 'workload="node"'
    try:
        a = scrape(port)
        assert t.call("gc 4") == "collected 4"
        b = scrape(port)
        assert t.call("minor 5") == "scavenged 5"
        c = scrape(port)
        assert t.call("busy 800") == "busy 800"
        d = scrape(port)
        assert t.call("idle 800") == "idle 800"
        e = scrape(port)
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()

    def delta(x, y, m, kind=None):
        sel = f"{{{w},kind=\"{kind}\"}}" if kind else f"{{{w}}}"
        return value(y, m + sel) - value(x, m + sel)
    # Full collections (global.gc()): exactly those asked for, each a pause of its kind.
    assert delta(a, b, "agentic_node_gc_collections_total", "mark_sweep_compact") == 4
    assert delta(a, b, "agentic_node_gc_pause_seconds_count", "mark_sweep_compact") == 4
    assert 0 < delta(a, b, "agentic_node_gc_pause_seconds_sum", "mark_sweep_compact") < 4
    # Scavenges: the five asked for, and what allocation between scrapes caused.
    assert 5 <= delta(b, c, "agentic_node_gc_collections_total", "scavenge") <= 8
    assert delta(b, c, "agentic_node_gc_collections_total", "mark_sweep_compact") == 0
    # The event loop: busy for 0.8 s (no poll), then waiting in its poll for 0.8 s.
    busy_idle = delta(c, d, "agentic_node_eventloop_idle_seconds_total")
    busy_seen = delta(c, d, "agentic_node_eventloop_seconds_total")
    idle_idle = delta(d, e, "agentic_node_eventloop_idle_seconds_total")
    idle_seen = delta(d, e, "agentic_node_eventloop_seconds_total")
    assert busy_seen >= 0.8 and busy_idle <= busy_seen - 0.75, (busy_idle, busy_seen)
    assert idle_seen >= 0.8 and 0.78 <= idle_idle <= idle_seen, (idle_idle, idle_seen)


def promql(doc):
    for p in doc["panels"]:
        for t in p.get("targets", []):
            yield t["expr"]
    for v in doc["templating"]["list"]:
        q = v.get("query")
        if isinstance(q, dict):
            yield re.sub(r"label_values\((\w+), *(\w+)\)", r"\1{\2!=''}", q["query"])


def test_runtime_dashboards_and_rules_use_what_agtrace_emits():
    """Every metric the runtime dashboards and alert rules query is on a real scrape of a
    Python, a Go and a Node process, with the labels they filter and group by; promtool checks
    the rules and runs their unit tests."""
    boards = sorted(glob.glob(os.path.join(DEPLOY, "grafana", "dashboards", "runtime", "*.json")))
    docs = [json.load(open(b)) for b in boards]
    assert sorted(d["title"] for d in docs) == ["Agent Runtime: Go", "Agent Runtime: Node",
                                                 "Agent Runtime: Python"]
    for d in docs:  # datasource variables only: no datasource named or uid'd by hand
        assert [v["name"] for v in d["templating"]["list"] if v["type"] == "datasource"] == [
            "DS_PROMETHEUS"]
        for p in d["panels"]:
            assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    exprs = [e for d in docs for e in promql(d)]
    rules_file = os.path.join(DEPLOY, "prometheus", "runtime-rules.yml")
    rules = yaml.safe_load(open(rules_file))
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    for args in (["check", "rules", "runtime-rules.yml"],
                 ["test", "rules", "runtime-rules_test.yml"]):
        r = subprocess.run(["promtool", *args], cwd=os.path.join(DEPLOY, "prometheus"),
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    assert "runtime-rules.yml" in yaml.safe_load(
        open(os.path.join(DEPLOY, "prometheus", "prometheus.yml")))["rule_files"]

    # A real scrape with all three runtimes traced at once.
    procs = [Target([PYTHON, GC_LOOP]), Target([RTGO]),
             Target(["node", "--expose-gc", RTNODE])]
    port = free_port()
    try:
        args = ["-o", "jsonl", "--metrics", f"127.0.0.1:{port}", "--no-tcp"]
        for p in procs:
            args += ["-p", p.pid]
        tr = Tracer(args)
        procs[0].call("gc 0 1")
        procs[1].call("gc 1")
        procs[2].call("gc 1")
        text = scrape(port)
        for p in procs:
            p.quit()
        tr.finish()
    finally:
        for p in procs:
            p.kill()
    labels = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_:]+)(?:\{(.*)\})? ", line)
        if m:
            fam = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
            names = set(re.findall(r'(\w+)="', m.group(2) or ""))
            labels.setdefault(fam, set()).update(names)
            labels.setdefault(m.group(1), set()).update(names)
    every = set().union(*labels.values()) | {"le", "instance", "job"}
    used = set()
    for e in exprs:
        bare = re.sub(r"\b(by|without)\s*\([^)]*\)", "", e)
        for name, sel in re.findall(r"(?<![:\w])(agentic_[a-z_]+)(\{[^}]*\})?", bare):
            used.add(re.sub(r"_(bucket|sum|count)$", "", name))
            assert name in labels, f"{name} (in {e!r}) is not on agtrace's /metrics"
            for lab in re.findall(r"(\w+)\s*(?:=~|!=|!~|=)", sel):
                assert lab in labels[name], f"{name} has no label {lab} (in {e!r})"
        for grp in re.findall(r"\bby\s*\(([^)]*)\)", e):
            for lab in filter(None, (x.strip() for x in grp.split(","))):
                assert lab in every, f"no series has the label {lab} (in {e!r})"
    assert {"agentic_process_cpu_seconds_total", "agentic_process_resident_memory_bytes",
            "agentic_process_threads", "agentic_process_open_fds",
            "agentic_python_gc_collections_total", "agentic_python_gc_pause_seconds",
            "agentic_go_gc_pause_seconds", "agentic_go_goroutines", "agentic_go_heap_live_bytes",
            "agentic_node_gc_pause_seconds", "agentic_node_eventloop_idle_seconds_total"} <= used


# A shell-like agent: on a first line (once agtrace is attached) it starts the Python child,
# which reads the test's commands; the shell stays its parent (the trailing echo keeps dash
# from exec'ing python in its own process).
SHELL_PARENT = ["sh", "-c",
                f'echo ready $$; read go; "{PYTHON}" "{GC_LOOP}"; echo child-done; read x']


def test_descendant_runtime_metrics():
    """A Python child of a traced shell is traced as part of it: its /proc figures and its
    garbage collections count under the shell's workload, through runtime probes of its own,
    which go when it exits (the counts stay with the workload)."""
    t, tr, port = traced(SHELL_PARENT, tcp=True)  # the shell maps nothing else agtrace probes
    shell = os.path.basename(os.path.realpath("/bin/sh"))  # its executable: dash
    w = f'workload="{shell}"'
    try:
        child = int(t.call("go").split()[1])  # the Python child's "ready PID"
        line = tr.wait_for(f"PID {child} (python3.11), a descendant counted under workload {shell}")
        assert line.rstrip().endswith(": 2 runtime metrics probe links"), line
        time.sleep(1.2)  # the once-a-second sync hands the descendant to the collector
        before = scrape(port)
        got = [int(t.call(f"gc {gen} {n}").split()[1]) for gen, n in ((0, 4), (2, 6), (2, 1))]
        during = scrape(port)
        t.send("quit")
        assert t.read() == "child-done"
        time.sleep(2.5)  # gone: retired at the next sync, its links reaped
        after = scrape(port)
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    assert got == [4, 6, 1]

    def d(x, y, m, gen):
        sel = f'{{{w},generation="{gen}"}}'
        return value(y, m + sel) - value(x, m + sel)
    for gen, n, objs in ((0, 1, 4), (1, 0, 0), (2, 2, 7)):
        assert d(before, during, "agentic_python_gc_collections_total", gen) == n
        assert d(before, during, "agentic_python_gc_pause_seconds_count", gen) == n
        assert d(before, during, "agentic_python_gc_collected_objects_total", gen) == objs
        # What the child counted stays with the workload after it exited, with the
        # collections of its interpreter's finalization (generation 2 only).
        fin = d(during, after, "agentic_python_gc_collections_total", gen)
        assert fin == d(during, after, "agentic_python_gc_pause_seconds_count", gen)
        assert (fin == 0) if gen < 2 else (1 <= fin <= 4), (gen, fin)
    assert value(during, f"agentic_processes{{{w}}}") == 2  # the shell and its child
    assert value(during, f"agentic_python_threads{{{w}}}") == 1
    assert value(during, "agtrace_runtime_descendants") == 1
    assert value(during, "agtrace_runtime_probe_links") == 2
    assert value(after, f"agentic_processes{{{w}}}") == 1
    assert value(after, "agtrace_runtime_descendants") == 0
    assert value(after, "agtrace_runtime_probe_links") == 0  # released with the child
    assert value(after, 'agtrace_runtime_probes_refused_total{reason="attach_failed"}') == 0


CHROOT = os.path.join(ROOT, "tests", "targets", "chroot_run.sh")


def test_runtime_probe_that_fails_is_soft(tmp_path):
    """A runtime probe the kernel side cannot attach (USDT in a process chrooted in another
    mount namespace: libbpf cannot match the file it is given to the process's mappings) is
    warned about and counted; the process stays traced, with its /proc figures."""
    cert = tmp_path / "any.pem"
    cert.write_text("not used\n")
    outer = Target(["unshare", "-m", "-p", "-f", CHROOT, str(tmp_path / "rootfs"), str(cert),
                    PYTHON, GC_LOOP])
    try:
        pid = int(subprocess.check_output(["pgrep", "-P", str(outer.pid)]).split()[0])
        port = free_port()
        tr = Tracer(["-p", pid, "-o", "jsonl", "--metrics", f"127.0.0.1:{port}"], wait=False)
        tr.wait_for("Ctrl-C to stop")  # (the warnings say "not attached" first)
        assert outer.call("gc 0 3") == "collected 3"
        text = scrape(port)
        outer.quit()
        assert tr.finish() == 0
    finally:
        outer.kill()
    warn = [l for l in tr.err_lines if "runtime-python" in l]
    assert warn == [f"agtrace: warning: PID {pid} (python3.11): cannot attach the runtime-python "
                    f"probe USDT python:gc__start in {tmp_path}/rootfs/usr/bin/python3.11 (No such "
                    "file or directory); not attached: its runtime is not measured"], tr.err_lines
    assert value(text, 'agtrace_runtime_probes_refused_total{reason="attach_failed"}') == 1
    assert value(text, 'agtrace_runtime_probes_refused_total{reason="limit"}') == 0
    assert value(text, "agtrace_runtime_probe_links") == 0
    assert value(text, 'agentic_processes{workload="python3.11"}') == 1
    assert "agentic_python_gc_collections_total" not in text


# A Python agent that forks a worker without exec (as multiprocessing's fork start method does):
# on a first line the worker starts and reads the test's commands.
FORKER = """
import gc, os, sys
gc.disable()
print("ready", os.getpid(), flush=True)
sys.stdin.readline()
pid = os.fork()
if pid == 0:
    print("worker", os.getpid(), flush=True)
    for line in sys.stdin:
        if line.split()[0] == "quit":
            os._exit(0)
        gen, count = map(int, line.split()[1:])
        for _ in range(count):
            a = []
            a.append(a)
            del a
        print("collected", gc.collect(gen), flush=True)
os.waitpid(pid, 0)
print("worker-done", flush=True)
sys.stdin.readline()
"""


def test_forked_worker_runtime_metrics():
    """A worker forked without exec is found by the once-a-second look at the kernel's table
    of followed processes and gets runtime probes of its own: its collections count exactly."""
    t, tr, port = traced([PYTHON, "-c", FORKER])
    w = 'workload="python3.11"'
    try:
        worker = int(t.call("go").split()[1])
        line = tr.wait_for(f"PID {worker} (python3.11), a descendant counted under workload "
                           "python3.11")
        assert line.rstrip().endswith(": 2 runtime metrics probe links"), line
        time.sleep(1.2)  # handed to the collector at the next sync
        before = scrape(port)
        assert t.call("gc 1 5") == "collected 5" and t.call("gc 0 2") == "collected 2"
        during = scrape(port)
        t.send("quit")
        assert t.read() == "worker-done"
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()

    def d(m, gen):
        sel = f'{{{w},generation="{gen}"}}'
        return value(during, m + sel) - value(before, m + sel)
    assert [d("agentic_python_gc_collections_total", g) for g in range(3)] == [1, 1, 0]
    assert [d("agentic_python_gc_collected_objects_total", g) for g in range(3)] == [2, 5, 0]
    assert value(during, f"agentic_processes{{{w}}}") == 2
    assert value(during, "agtrace_runtime_descendants") == 1
    assert value(during, "agtrace_runtime_probe_links") == 4  # the agent's two, the worker's two
