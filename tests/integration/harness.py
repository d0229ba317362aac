"""Helpers for integration tests: real target processes driven over stdin, and agtrace attached
to them by PID. Everything here runs as root against the real kernel."""
import json
import os
import queue
import signal
import subprocess
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
AGTRACE = os.path.join(ROOT, "agtrace")
NESTED = os.path.join(ROOT, "build", "tests", "nested")
NESTED_CET = os.path.join(ROOT, "build", "tests", "nested_cet")  # endbr64 starts each function
GC_LOOP = os.path.join(ROOT, "tests", "targets", "gc_loop.py")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
PYTHON = "/usr/bin/python3.11"  # Debian's build: it has the USDT markers


def _pump(stream, q):
    for line in iter(stream.readline, ""):
        q.put(line)
    q.put(None)


class Target:
    """A process that prints 'ready PID', then answers one line per command line."""

    def __init__(self, argv, **kw):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  bufsize=1, **kw)
        self.q = queue.Queue()
        threading.Thread(target=_pump, args=(self.p.stdout, self.q), daemon=True).start()
        first = self.read()
        assert first.startswith("ready "), first
        self.pid = self.p.pid

    def read(self, timeout=10):
        line = self.q.get(timeout=timeout)
        assert line is not None, "target exited"
        return line.rstrip("\n")

    def call(self, cmd, timeout=10):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return self.read(timeout)

    def send(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()

    def quit(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        return self.p.wait(timeout=10)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


# Every Tracer started by the current test; conftest stops the ones a failed test left running,
# so that a selector run cannot outlive its test and attach to (or answer for) the next ones.
LIVE_TRACERS = []


def stop_leftover_tracers():
    while LIVE_TRACERS:
        tr = LIVE_TRACERS.pop()
        if tr.p.poll() is None:
            tr.p.kill()
            tr.p.wait(timeout=30)


class Tracer:
    """agtrace attach with JSONL on stdout; stderr collected line by line."""

    def __init__(self, args, wait=True, cmd="attach", **kw):
        self.argv = [AGTRACE, cmd] + [str(a) for a in args]
        self.p = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, **kw)
        LIVE_TRACERS.append(self)
        self.errq = queue.Queue()
        self.err_lines = []
        self.out = []
        self._out_thread = threading.Thread(target=self._read_out, daemon=True)
        self._out_thread.start()
        threading.Thread(target=_pump, args=(self.p.stderr, self.errq), daemon=True).start()
        if wait:
            self.wait_for("attached ")

    def _read_out(self):
        for line in iter(self.p.stdout.readline, ""):
            self.out.append(line)

    def wait_for(self, text, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.errq.get(timeout=0.2)
            except queue.Empty:
                if self.p.poll() is not None and self.errq.empty():
                    break
                continue
            if line is None:
                break
            self.err_lines.append(line.rstrip("\n"))
            if text in line:
                return line
        raise AssertionError(f"agtrace never said {text!r}; stderr: {self.err_lines}")

    def finish(self, timeout=20):
        rc = self.p.wait(timeout=timeout)
        self._out_thread.join(timeout=5)
        while True:
            try:
                line = self.errq.get(timeout=1)
            except queue.Empty:
                break
            if line is None:
                break
            self.err_lines.append(line.rstrip("\n"))
        self.records = [json.loads(l) for l in self.out if l.startswith("{")]
        return rc

    def interrupt(self, timeout=20):
        self.p.send_signal(signal.SIGINT)
        return self.finish(timeout)

    def spans(self, trace_type=None):
        return [r for r in self.records if r["trace_type"] != "state_change"
                and (trace_type is None or r["trace_type"] == trace_type)]

    def events(self, name_prefix):
        return [r for r in self.records if r["trace_type"] == "state_change"
                and r["name"].startswith(name_prefix)]

    def summary(self):
        lines = [l for l in self.err_lines if "summary:" in l]
        assert len(lines) == 1, self.err_lines
        return lines[0]


def run_agtrace(*args, user=None):
    argv = [AGTRACE] + [str(a) for a in args]
    if user:
        argv = ["setpriv", "--reuid", user, "--regid", "nogroup", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all"] + argv
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def children_of(records, span):
    return [r for r in records if r.get("parent_span_id") == span["span_id"]]
