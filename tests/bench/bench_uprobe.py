"""Probe overhead, measured side by side in one run on the same binary: the same loop of N
calls to work(), untraced, under bpftrace `uprobe { count() }` (the floor: a uprobe hit that
does the least possible), and under agtrace in each mode, including 1% sampling. Rounds are
interleaved and the median kept, so a noisy neighbour hits every mode alike. Then the TLS agent
workload: HTTPS requests of a Python client, untraced and traced; and the exporters end to end
into test servers (`bench_uprobe.py exporters` runs that section alone)."""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import ROOT, Target, Tracer  # noqa: E402

BENCH = os.path.join(ROOT, "build", "tests", "bench_target")
N = int(os.environ.get("BENCH_CALLS", "20000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
REQS = int(os.environ.get("BENCH_REQUESTS", "200"))


def spec(mode):
    probe = {"symbols": "work", "args": [{"name": "i", "type": "int"}]}
    if mode in ("entry", "entry@1%"):
        probe["return"] = "none"
    else:
        probe["return"] = mode
        probe["return_value"] = {"type": "int"}
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"name": f"bench-{mode}", "target": "$exe", "probes": [probe]}, f)
    f.close()
    return f.name


def with_bpftrace(t):
    p = subprocess.Popen(["bpftrace", "-p", str(t.pid), "-e",
                          f"uprobe:{BENCH}:work {{ @c = count(); }}"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout:
        if line.startswith("Attaching"):
            break
    time.sleep(0.3)
    ns = int(t.call(f"run {N}").split()[1])
    p.send_signal(signal.SIGINT)
    out = p.communicate(timeout=30)[0]
    count = int(out.split("@c:")[1].split()[0])
    return ns, count


def measure(mode):
    t = Target([BENCH])
    try:
        if mode == "untraced":
            return int(t.call(f"run {N}").split()[1]) / N, None
        if mode == "bpftrace":
            ns, count = with_bpftrace(t)
            return ns / N, count
        extra = ["--sample", "func=0.01"] if mode == "entry@1%" else []
        tr = Tracer(["-p", t.pid, "--probes", spec(mode), "-o", "jsonl"] + extra)
        ns = int(t.call(f"run {N}").split()[1])
        tr.interrupt(timeout=120)
        return ns / N, len(tr.spans())
    finally:
        t.quit()


def tls_workload():
    """Python http.client over libssl against the local HTTPS LLM server: ms per request."""
    d = tempfile.mkdtemp()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", f"{d}/k.pem", "-out", f"{d}/c.pem", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    srv = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "tests/servers/llm_server.py"),
                            f"{d}/c.pem", f"{d}/k.pem"], stdout=subprocess.PIPE, text=True)
    port = int(srv.stdout.readline().split()[1])
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 2000}],
                       "tools": [{"type": "function", "function": {"name": "f"}}]})
    res = {}
    try:
        for mode in ("untraced", "agtrace", "untraced", "agtrace"):
            t = Target(["/usr/bin/python3", os.path.join(ROOT, "tests/targets/llm_client.py"),
                        str(port), f"{d}/c.pem"])
            tr = Tracer(["-p", t.pid, "-o", "jsonl"]) if mode == "agtrace" else None
            t0 = time.perf_counter()
            for _ in range(REQS):
                t.call(f"call a POST /v1/chat/completions {body}")
            res.setdefault(mode, []).append((time.perf_counter() - t0) / REQS * 1e3)
            t.quit()
            if tr:
                tr.finish()
                steps = len([r for r in tr.records if r["trace_type"] == "reasoning_step"])
                assert steps == REQS, (steps, tr.summary())
    finally:
        srv.kill()
    return {m: statistics.median(v) for m, v in res.items()}


def node_wide():
    """What agtrace's tracepoints cost the processes it does not trace: getppid() system calls
    (the raw sys_enter/sys_exit programs run for every system call on the node and return at
    the target-table lookup) and fork+exec (the process tracepoints, and with --select the exec
    report discovery needs), with no agtrace, agtrace on another process, and agtrace with a
    selector that matches nothing. Interleaved rounds, medians."""
    calls, execs = N * 10, max(N // 40, 100)
    res = {}
    idle = Target([BENCH])
    try:
        for _ in range(ROUNDS):
            for mode in ("none", "attach -p", "--select"):
                t = Target([BENCH])
                tr = None
                if mode == "attach -p":
                    tr = Tracer(["-p", idle.pid, "-o", "jsonl"])
                elif mode == "--select":
                    tr = Tracer(["--select", "comm=no-such-agent", "-o", "jsonl"], wait=False)
                    tr.wait_for("discovery: ")
                sys_ns = int(t.call(f"sys {calls}").split()[1]) / calls
                exec_us = int(t.call(f"exec {execs}", timeout=120).split()[1]) / execs / 1e3
                t.quit()
                if tr:
                    tr.interrupt(timeout=60)
                res.setdefault(mode, []).append((sys_ns, exec_us))
    finally:
        idle.quit()
    return {m: (statistics.median(v[0] for v in r), statistics.median(v[1] for v in r))
            for m, r in res.items()}


def tls_call_costs():
    """Section 8: what a TLS call costs, in memory (no system calls in the loop), ns per call:
    OpenSSL's SSL_write/SSL_read (build/tests/ssl_loop) untraced with no agtrace, untraced while
    agtrace traces another process that maps the same libssl (its uprobes are attached once per
    file: every process using the file traps into them and is turned away in the kernel), and
    traced itself; Go's crypto/tls (build/tests/gotls_loop) untraced and traced. Interleaved
    rounds, medians."""
    d = tempfile.mkdtemp()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-keyout",
                    f"{d}/k.pem", "-out", f"{d}/c.pem", "-subj", "/CN=bench"], check=True,
                   capture_output=True)
    ssl_loop = [os.path.join(ROOT, "build", "tests", "ssl_loop"), f"{d}/c.pem", f"{d}/k.pem"]
    go_loop = [os.path.join(ROOT, "build", "tests", "gotls_loop")]
    n = max(N // 4, 1000)
    calls = 4 * n  # four TLS calls per round trip
    modes = [("openssl", "untraced", ssl_loop), ("openssl", "another traced", ssl_loop),
             ("openssl", "traced", ssl_loop), ("go", "untraced", go_loop),
             ("go", "traced", go_loop)]
    res = {}
    for _ in range(ROUNDS):
        for lib, mode, argv in modes:
            other = tr = None
            t = Target(argv)
            try:
                if mode == "another traced":  # maps libssl too: the same file is probed
                    other = subprocess.Popen([os.path.join(ROOT, "build", "tests",
                                                           "quick_call"), "--idle", "bench"],
                                             stdin=subprocess.PIPE)
                    tr = Tracer(["-p", other.pid, "-o", "jsonl"])
                elif mode == "traced":
                    tr = Tracer(["-p", t.pid, "-o", "jsonl"])
                ns = int(t.call(f"run {n}", timeout=300).split()[1])
            finally:
                t.quit()
                if other:
                    other.stdin.close()
                    other.wait(timeout=10)
                if tr:
                    tr.interrupt(timeout=60)
            res.setdefault((lib, mode), []).append(ns / calls)
    return {k: statistics.median(v) for k, v in res.items()}


def discovery_latency(n=20):
    """From starting a matching process (a Python agent, libssl and all) to agtrace saying it is
    attached: milliseconds, median and worst of n."""
    tr = Tracer(["--select", "comm=python3*,cmdline=*bench-discovery*", "-o", "jsonl"],
                wait=False)
    tr.wait_for("discovery: ")
    ms = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            p = subprocess.Popen(["/usr/bin/python3", "-c",
                                  "import ssl, sys; sys.stdin.read()", "bench-discovery"],
                                 stdin=subprocess.PIPE)
            tr.wait_for(f"discovered PID {p.pid} ")
            ms.append((time.perf_counter() - t0) * 1e3)
            p.stdin.close()
            p.wait()
    finally:
        tr.interrupt(timeout=60)
    return statistics.median(ms), max(ms)


BULK_SERVER = os.path.join(ROOT, "build", "tests", "bulk_server")
BENCH_ES = os.path.join(ROOT, "build", "bench", "bench_es")
GOAL = 100_000  # spans/s end to end: the goal for the Elasticsearch exporter


def proc_cpu(pid):
    """CPU seconds (user + system) process pid has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_stats(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_test/stats", timeout=10) as r:
        return json.load(r)


def exporter_row(exporter, server, n):
    """bench_es with one exporter into one test server: its result, plus the server's CPU per
    span. The C server is also asked what arrived: every span exactly once, nothing refused."""
    c_server = server == "c"
    argv = {"c": [BULK_SERVER],
            "py-es": ["/usr/bin/python3", os.path.join(ROOT, "tests/servers/es_server.py")],
            "py-otlp": ["/usr/bin/python3", os.path.join(ROOT, "tests/servers/otlp_server.py")]}
    srv = subprocess.Popen(argv[server], stdout=subprocess.PIPE, text=True)
    try:
        port = int(srv.stdout.readline().split()[1])
        cpu0 = server_stats(port)["cpu_seconds"] if c_server else proc_cpu(srv.pid)
        out = subprocess.run([BENCH_ES, f"http://127.0.0.1:{port}", str(n), tempfile.mkdtemp(),
                              exporter], capture_output=True, text=True, timeout=900)
        if out.returncode or "result " not in out.stdout:
            raise RuntimeError(f"bench_es {exporter} failed: {out.stdout}{out.stderr}")
        res = json.loads(out.stdout.split("result ", 1)[1])
        if c_server:
            st = server_stats(port)
            cpu1 = st["cpu_seconds"]
            got = st["unique_ids"] if exporter == "elasticsearch" else st["unique_spans"]
            assert got == n and st["errors"] == 0, (exporter, st)
        else:
            cpu1 = proc_cpu(srv.pid)
    finally:
        srv.kill()
        srv.wait()
    res["server_us"] = (cpu1 - cpu0) / n * 1e6
    res["server_busy"] = (cpu1 - cpu0) / res["seconds"]
    return res


def exporters():
    """Section 5: the Elasticsearch and OTLP exporters end to end into the Python stand-ins and
    into the C server, with the C server's own ceiling first."""
    n = int(os.environ.get("BENCH_SPANS", "50000"))
    print(f"\n5. Exporters end to end into test servers (goal: >= {GOAL // 1000} K spans/s)")
    print("the C test server's own ceiling, with a synthetic client (bulk_server --self-bench):")
    sys.stdout.flush()
    out = subprocess.run([BULK_SERVER, "--self-bench", os.environ.get("BENCH_SELF_DOCS", "200000")],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    for line in out.splitlines()[1:]:
        print("  " + line)
    rows = [("elasticsearch", "py-es", "es_server.py (Python)"),
            ("elasticsearch", "c", "bulk_server (C)"),
            ("otlp", "py-otlp", "otlp_server.py (Python)"),
            ("otlp", "c", "bulk_server (C)")]
    print(f"{n} spans per row")
    print(f"{'exporter':<14}{'server':<24}{'spans/s':>8}{'x goal':>7}{'B/span':>7}{'mem KiB':>8}"
          f"{'pipe us':>8}{'deliv us':>9}{'srv us':>7}{'srv busy':>9}{'bound/s':>8}{'own/s':>8}")
    for exporter, server, label in rows:
        r = exporter_row(exporter, server, n)
        bound = 1e6 / (r["delivery_us"] + r["server_us"])
        print(f"{exporter:<14}{label:<24}{r['spans_per_s']:>8.0f}{r['spans_per_s'] / GOAL:>7.2f}"
              f"{r['bytes_per_span']:>7.1f}{r['memory_kib']:>8}{r['pipeline_us']:>8.2f}"
              f"{r['delivery_us']:>9.2f}{r['server_us']:>7.2f}{r['server_busy']:>9.0%}"
              f"{bound:>8.0f}{1e6 / r['delivery_us']:>8.0f}")
        sys.stdout.flush()
    print("(spans/s: delivered end to end, the server's answers read; x goal: that over the goal;")
    print(" B/span: gzip'd request bytes per span; mem: exporter memory at the peak of its queue.")
    print(" CPU per span: pipe: the pipeline thread (encoding, queueing); deliv: the exporter's")
    print(" delivery thread (batching, gzip, HTTP, reading the answer); srv: the server; srv busy:")
    print(" server CPU over the run's wall time. The exporter sends one batch at a time and waits")
    print(" for the answer, so delivery and server are one serial path: bound/s = 1e6 / (deliv +")
    print(" srv) is what end to end reaches when each has a core; own/s = 1e6 / deliv is the")
    print(" exporter's own ceiling, against a server that answered at once. A busy machine shows")
    print(" less than bound/s end to end; the CPU columns hold up better.)")


def main():
    if sys.argv[1:] == ["exporters"]:  # section 5 alone: make bench-export
        return exporters()
    modes = ["untraced", "bpftrace", "entry", "entry@1%", "uretprobe", "insn"]
    results = {m: [] for m in modes}
    counts = {}
    for _ in range(ROUNDS):
        for m in modes:
            per_call, n = measure(m)
            results[m].append(per_call)
            counts[m] = n
    base = statistics.median(results["untraced"])
    floor = statistics.median(results["bpftrace"]) - base
    print(f"1-2. cost per probed call: {N} calls of work(), median of {ROUNDS} interleaved rounds")
    print(f"{'mode':<10} {'ns/call':>10} {'probe ns':>10} {'x bpftrace':>11} {'events':>8}")
    for m in modes:
        med = statistics.median(results[m])
        ratio = "" if m == "untraced" else f"{(med - base) / floor:>11.2f}"
        print(f"{m:<10} {med:>10.1f} {med - base:>10.0f} {ratio:>11} "
              f"{'-' if counts[m] is None else counts[m]:>8}")
    print("(bpftrace: uprobe { @c = count(); } on the same function: the floor of a uprobe hit)")
    print("(entry@1%: --sample func=0.01; the session is this one process, so its events are all")
    print(" kept or all dropped: the cost shown is the trap plus the sampling decision)")
    w = tls_workload()
    print(f"\n3. TLS agent workload: {REQS} HTTPS chat completions (2 kB request) per run")
    print(f"untraced {w['untraced']:.3f} ms/request, traced {w['agtrace']:.3f} ms/request, "
          f"x{w['agtrace'] / w['untraced']:.3f}")
    print("\n4. userspace pipeline:")
    sys.stdout.flush()
    subprocess.run([os.path.join(ROOT, "build", "bench", "bench_pipeline")], check=True)
    exporters()
    med, worst = discovery_latency()
    print(f"\n6. discovery: a matching python process started -> attached: median {med:.1f} ms, "
          f"worst {worst:.1f} ms (of 20; its execution is not held meanwhile)")
    nw = node_wide()
    base_sys, base_exec = nw["none"]
    print("\n7. cost to processes agtrace does not trace (system calls and execs node-wide)")
    print(f"{'agtrace':<10} {'ns/getppid':>11} {'x none':>7} {'us/fork+exec':>13} {'x none':>7}")
    for m, (sy, ex) in nw.items():
        print(f"{m:<10} {sy:>11.1f} {sy / base_sys:>7.2f} {ex:>13.1f} {ex / base_exec:>7.2f}")
    print("(no system call tracepoint is attached: sockets are read at sock:sock_send_length and")
    print(" sock_recv_length, library loads at the dynamic loader's _dl_debug_state, processes at")
    print(" sched_process_fork/exec/exit; --select adds a ring buffer report of every exec,")
    print(" matched against the selectors, and marks the process pending until it is)")
    tc = tls_call_costs()
    print("\n8. cost of a TLS call (in memory, no system calls): probed, and to untraced processes")
    print("   that use a probed library")
    print(f"{'library':<9} {'process':<16} {'ns/call':>9} {'+ns':>7} {'x untraced':>11}")
    for (lib, mode), ns in tc.items():
        base_ns = tc[(lib, "untraced")]
        print(f"{lib:<9} {mode:<16} {ns:>9.0f} {ns - base_ns:>7.0f} {ns / base_ns:>11.2f}")
    print("(another traced: agtrace traces a different process mapping the same libssl; the")
    print(" uprobes are on the file, so this process traps into them too and is turned away by")
    print(" the target-table lookup: entry and return probe, no copy. traced: the process itself,")
    print(" each call copied to the ring buffer. Go's Write is copied at its entry, Read at its")
    print(" return instructions)")


if __name__ == "__main__":
    main()
