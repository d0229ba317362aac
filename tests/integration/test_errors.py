"""Every failure a user can cause: one clear sentence on stderr, exit code 2, no libbpf noise."""
import os
import subprocess

import pytest
from harness import FIXTURES, NESTED, ROOT, Target, run_agtrace

SPEC = os.path.join(FIXTURES, "nested.json")



def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def assert_one_sentence(r, sentence):
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr == f"agtrace: error: {sentence}\n"
    assert r.stdout == ""


def test_missing_pid():
    pid = dead_pid()
    r = run_agtrace("attach", "-p", pid, "--uprobe", f"{NESTED}:leaf")
    assert_one_sentence(r, f"no process with PID {pid}; check it with `ps -p {pid}` or find it "
                           f"with `pidof NAME`")


def test_pid_without_the_symbol(nested):
    r = run_agtrace("attach", "-p", nested.pid, "--uprobe", f"{NESTED}:no_such_function")
    assert_one_sentence(
        r, f"PID {nested.pid} (nested): no function named like \"no_such_function\" in "
           f"/proc/{nested.pid}/root{NESTED}; list its functions with `nm -D --defined-only "
           f"/proc/{nested.pid}/root{NESTED}` (or `nm` when it is not stripped)")


def test_pid_without_the_library(nested):
    r = run_agtrace("attach", "-p", nested.pid, "--uprobe", "libssl.so*:SSL_write")
    assert_one_sentence(r, f"--uprobe: PID {nested.pid} (nested) maps no file named like "
                           f"\"libssl.so*\"; see what it maps with `cat /proc/{nested.pid}/maps`")


def test_unreadable_spec(nested, tmp_path):
    missing = tmp_path / "nope.json"
    r = run_agtrace("attach", "-p", nested.pid, "--probes", missing)
    assert_one_sentence(r, f"cannot read probe spec {missing}: No such file or directory; check "
                           f"the path and its permissions")


def test_malformed_spec(nested, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "target": "$exe",\n "probes": [{"symbols": "leaf", '
                   '"args": [{"name": "n", "type": "double"}]}]}\n')
    r = run_agtrace("attach", "-p", nested.pid, "--probes", bad)
    assert_one_sentence(r, f"{bad}: $.probes[0].args[0]: unknown type \"double\" (expected int, "
                           f"uint, ptr or str)")
    bad.write_text('{"name": "x",\n "target": "$exe"\n "probes": []}')
    r = run_agtrace("attach", "-p", nested.pid, "--probes", bad)
    assert_one_sentence(r, f"{bad}: line 3, column 2: not valid JSON; fix the syntax there")


def test_not_root(nested):
    r = run_agtrace("attach", "-p", nested.pid, "--uprobe", f"{NESTED}:leaf", user="nobody")
    assert_one_sentence(r, "agtrace must run as root (or with CAP_BPF, CAP_PERFMON and "
                           "CAP_SYS_ADMIN) to load BPF programs; run it with sudo")
    r = run_agtrace("check", user="nobody")
    assert r.returncode == 2
    assert r.stderr == ("agtrace: error: agtrace lacks the privileges to load BPF; run it as "
                        "root\n")
    assert "BLOCKER  privileges" in r.stdout


@pytest.mark.parametrize("args,sentence", [
    ([], "no target: give the process to trace with -p PID, or --select KEY=PATTERN to find "
         "processes by name, command line, container or pod; see `agtrace attach --help`"),
    (["--select", "name=python3"], "selector \"name=python3\": unknown key \"name\"; keys are "
                                   "exe, comm, cmdline, cgroup, container, namespace, pod and "
                                   "label.NAME"),
    (["--select", "comm=x", "--max-targets", "0"],
     "--max-targets needs a number from 1 to 16384, got \"0\"; see `agtrace attach --help`"),
    (["--select", "namespace=ai", "--k8s-pods-url", "kubelet:10250/pods"],
     "--k8s-pods-url kubelet:10250/pods is not an http:// or https:// URL; give the kubelet's "
     "https://NODE:10250/pods or the API server's /api/v1/pods?fieldSelector=spec.nodeName=NODE"),
    (["-p", "12x"], "-p needs a process id (a positive number), got \"12x\"; see `agtrace "
                    "attach --help`"),
    (["-p", "1", "--uprobe", "leaf"], "--uprobe leaf: expected PATH:SYMBOL, e.g. "
                                      "/usr/bin/myapp:handle_request or libc.so.6:malloc"),
    (["-p", "1", "--uprobe", "a:b", "-o", "xml"], "-o must be tree or jsonl, got \"xml\"; see "
                                                  "`agtrace attach --help`"),
    (["-p", "1", "--uprobe", "a:b", "--duration", "1.5"],
     "--duration needs a whole number of seconds, got \"1.5\"; see `agtrace attach --help`"),
    (["-p", "1", "--bogus"], "unknown option \"--bogus\"; see `agtrace attach --help`"),
    (["-p"], "option -p needs a value; see `agtrace attach --help`"),
])
def test_bad_command_lines(args, sentence):
    assert_one_sentence(run_agtrace("attach", *args), sentence)


def test_no_probes_and_nothing_known_mapped(nested):
    r = run_agtrace("attach", "-p", nested.pid, "--no-tcp")
    assert_one_sentence(r, f"PID {nested.pid} (nested) maps nothing agtrace's built-in probes "
                           f"know (a TLS library such as libssl.so*, or SSL_write in its "
                           f"executable); give --probes FILE or --uprobe PATH:SYMBOL, or drop "
                           f"--no-tcp")


def test_duplicate_pid(nested):
    r = run_agtrace("attach", "-p", nested.pid, "-p", nested.pid, "--uprobe", f"{NESTED}:leaf")
    assert_one_sentence(r, f"PID {nested.pid} is given twice; give each -p once")


def test_verbose_shows_libbpf_log(nested):
    r = run_agtrace("-v", "attach", "-p", nested.pid, "--uprobe", f"{NESTED}:no_such_function")
    assert r.returncode == 2
    assert "libbpf: " in r.stderr


def test_unknown_command():
    assert_one_sentence(run_agtrace("trace"), "unknown command \"trace\"; the commands are "
                                              "check, attach, run, probes, sample, audit and version")


def test_check_passes_here():
    r = run_agtrace("check")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    for name in ("kernel", "btf", "privileges", "uprobe pmu", "ring buffer", "attach cookies"):
        assert any(l.startswith("ok ") and f"  {name} " in l for l in lines), (name, lines)
    assert lines[-1] == "agtrace can run here."


def test_probes_list_and_check(tmp_path):
    r = run_agtrace("probes", "list")
    assert r.returncode == 0
    assert r.stdout.splitlines()[0] == f"probe specs in {ROOT}/probes:"
    assert ("python-gc            CPython garbage collections (USDT gc__start .. gc__done): "
            "generation and objects collected") in r.stdout
    assert "usdt python:gc__start .. python:gc__done -> metric \"python gc\"" in r.stdout
    r = run_agtrace("probes", "check", SPEC)
    assert r.returncode == 0
    assert r.stdout == f"{SPEC}: ok: spec \"nested-test\", 4 probes\n"
    bad = tmp_path / "b.json"
    bad.write_text('{"name":"b","target":"$exe","probes":[{"usdt":"x"}]}')
    r = run_agtrace("probes", "check", bad)
    assert_one_sentence(r, f"{bad}: $.probes[0].usdt: \"x\" is not of the form provider:name "
                           f"(e.g. python:gc__start)")
