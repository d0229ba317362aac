"""Discovery: `attach --select` / `run` with selectors find agent processes with no PID given,
already running or started later, inside new mount and PID namespaces too, and stop tracing
them when they exit. Container and pod identity come from the cgroup path and a stand-in
Kubernetes API answering PodLists."""
import json
import os
import subprocess
import sys
import time

import pytest
from harness import GC_LOOP, PYTHON, ROOT, Target, Tracer
from test_llm import cert, server  # noqa: F401  (module fixtures: TLS material, HTTPS server)

AGENT = os.path.join(ROOT, "tests", "targets", "agent_loop.py")
K8S = os.path.join(ROOT, "tests", "servers", "k8s_api.py")
# In every agent's command line and every selector: agents other test runs on this machine start
# (the same program) are not this run's.
TOKEN = f"run{os.getpid()}"
SELECT = f"comm=python3*,cmdline=*agent_loop.py*{TOKEN}*"
POD_UID = "1a2b3c4d-0000-4e5f-8a9b-0123456789ab"
CONTAINER = "c0ffee" + "ab" * 29
CGROUP = ("/sys/fs/cgroup/unified/kubepods.slice/kubepods-besteffort.slice/"
          f"kubepods-besteffort-pod{POD_UID.replace('-', '_')}.slice/"
          f"cri-containerd-{CONTAINER}.scope")


def discovered_pid(tr):
    line = tr.wait_for("discovered PID ")
    return int(line.split("discovered PID ")[1].split()[0])


def agent_argv(server, cert, container=False):  # noqa: F811
    argv = [PYTHON, AGENT, str(server), str(cert / "cert.pem"), TOKEN]
    return ["unshare", "-m", "-p", "-f", "--mount-proc"] + argv if container else argv


def tool_tree(tr, pid):
    """The agent's own records, and its conversation as (type, name) pairs; checks the command
    the tool ran hangs below the tool call."""
    own = [r for r in tr.records if r["process"]["pid"] == pid]
    (cot,) = [r for r in own if r["trace_type"] == "cot_process"]
    conv = [r for r in tr.records if r.get("trace_id") == cot["trace_id"]]
    (tool,) = [r for r in conv if r["trace_type"] == "tool_call"]
    (sh,) = [r for r in conv if r.get("parent_span_id") == tool["span_id"]]
    assert sh["process"]["parent"]["pid"] == pid
    return own, sorted((r["trace_type"], r["name"]) for r in conv)


EXPECTED = sorted([("cot_process", "conversation gpt-4o"), ("reasoning_step", "chat gpt-4o"),
                   ("reasoning_step", "chat gpt-4o"), ("tool_call", "execute_tool get_weather"),
                   ("decision", "decision get_weather"),
                   ("state_change", "exec sh -c date +%s >/dev/null"),
                   ("state_change", "exec date +%s")])


def python_attached(recs, why):
    """A python agent caught at exec: its attach event, then (if python had not imported ssl by
    the time it was looked at) the probe links libssl brought when it was loaded. 6 links on
    what it maps in all: python:audit (its own USDT link) and libssl's five: ssl_write_internal
    at its entry and ssl_read_internal at entry and return (the funnel every SSL_write(_ex) and
    SSL_read(_ex) goes through, found by the locator in place of those four), SSL_free,
    SSL_shutdown."""
    att, *later = [r for r in recs if r["name"] == "attach python3.11"]
    assert f"; discovered ({why}) by selector " in att["message"], att
    links = int(att["message"].split()[0])
    for r in later:
        assert r["message"].endswith(" more probe links: /usr/lib/x86_64-linux-gnu/libssl.so.3 "
                                     "loaded"), r
        links += int(r["message"].split()[0])
    assert links == 6, [att] + later
    if not later:
        assert "; TLS: OpenSSL in /usr/lib/x86_64-linux-gnu/libssl.so.3 (library)" in \
            att["message"], att
    return att


def converse_and_stop(tr, agent, pid):
    """One tool-calling conversation through the agent, then the agent and agtrace stop; its
    records must be the expected tree."""
    assert agent.call("openai Paris date +%s >/dev/null") == "steps 2"
    agent.quit()
    time.sleep(0.5)  # its exit reaches agtrace
    assert tr.interrupt() == 0
    _, names = tool_tree(tr, pid)
    assert names == EXPECTED


def test_agents_started_later_are_found_and_exits_noticed(server, cert):  # noqa: F811
    tr = Tracer(["--select", SELECT, "-o", "jsonl"], wait=False)
    tr.wait_for("discovery: 1 selector; 0 running processes matched")
    bystander = Target([PYTHON, GC_LOOP])  # python3 too, but not the agent's command line
    plain = Target(agent_argv(server, cert))
    plain_pid = discovered_pid(tr)
    assert plain_pid == plain.pid
    boxed = Target(agent_argv(server, cert, container=True))
    boxed_pid = discovered_pid(tr)
    assert boxed_pid != boxed.pid  # the host PID of python inside the new PID namespace
    for t in (plain, boxed):
        assert t.call("openai Paris date +%s >/dev/null") == "steps 2"
    plain.quit()
    boxed.quit()
    time.sleep(0.5)
    bystander.kill()
    assert tr.interrupt() == 0
    for pid in (plain_pid, boxed_pid):
        recs, names = tool_tree(tr, pid)
        assert names == EXPECTED, names
        python_attached(recs, "exec")
        (ex,) = [r for r in recs if r["name"] == "exit python3.11"]
        assert ex["process"]["exit_code"] == 0
        assert not [r for r in recs if r["name"] == "detach python3.11"]  # exit came first
    assert not [r for r in tr.records if r["process"]["pid"] == bystander.pid]
    # unshare itself runs no agent: its comm is not python3.
    assert not [r for r in tr.records if r["process"]["pid"] == boxed.pid]


def test_running_agent_found_at_start(server, cert):  # noqa: F811
    agent = Target(agent_argv(server, cert))
    try:
        tr = Tracer(["--select", f"cmdline=*agent_loop.py*{TOKEN}*,comm=python3*", "-o", "jsonl"],
                    wait=False)
        assert discovered_pid(tr) == agent.pid
        tr.wait_for("discovery: 1 selector; 1 running process matched")
        assert agent.call("openai Paris date +%s >/dev/null") == "steps 2"
        agent.quit()
        time.sleep(0.5)
        assert tr.interrupt() == 0
    finally:
        agent.kill()
    recs, names = tool_tree(tr, agent.pid)
    assert names == EXPECTED
    (att,) = [r for r in recs if r["name"] == "attach python3.11"]
    assert "discovered (running)" in att["message"]


@pytest.fixture
def k8s(tmp_path):
    pods = [{"metadata": {"name": "weather-bot-7d9f", "namespace": "agents", "uid": POD_UID,
                          "labels": {"app": "weather-bot", "tier": "agent"}}},
            {"metadata": {"name": "other", "namespace": "default",
                          "uid": "99999999-0000-4000-8000-000000000000", "labels": {}}}]
    (tmp_path / "pods.json").write_text(json.dumps(pods))
    (tmp_path / "token").write_text("test-sa-token-0123\n")
    state = tmp_path / "k8s.json"
    p = subprocess.Popen([sys.executable, K8S, str(state), str(tmp_path / "pods.json"),
                          "test-sa-token-0123", "node-a"])
    for _ in range(100):
        if state.exists():
            break
        time.sleep(0.05)
    yield p, state, tmp_path
    p.kill()
    p.wait()


def in_pod(argv):
    """Run argv in a kubepods cgroup the way containerd with the systemd driver names it."""
    os.makedirs(CGROUP, exist_ok=True)
    return ["sh", "-c", f'echo $$ > {CGROUP}/cgroup.procs && exec "$@"', "sh"] + argv


@pytest.fixture
def pod_cgroup():
    yield
    for _ in range(50):
        try:
            path = CGROUP
            while path != "/sys/fs/cgroup/unified":
                os.rmdir(path)
                path = os.path.dirname(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)  # the last process is still leaving


@pytest.mark.parametrize("kind", ["apiserver", "kubelet"])
def test_pod_selector_and_identity(server, cert, k8s, pod_cgroup, kind):  # noqa: F811
    _, state, tmp = k8s
    port = json.loads(state.read_text())["port"]
    url = (f"http://127.0.0.1:{port}/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a"
           if kind == "apiserver" else f"http://127.0.0.1:{port}/pods")
    tr = Tracer(["--select", "namespace=agents,label.app=weather-*,comm=python3*",
                 "--k8s-pods-url", url, "--k8s-token-file", tmp / "token", "-o", "jsonl"],
                wait=False)
    tr.wait_for("discovery: 1 selector")
    outside = Target(agent_argv(server, cert))  # same program, not in the pod: not traced
    agent = Target(in_pod(agent_argv(server, cert, container=True)))
    pid = discovered_pid(tr)
    assert agent.call("openai Paris date +%s >/dev/null") == "steps 2"
    assert outside.call("openai Paris true") == "steps 2"
    agent.quit()
    outside.quit()
    time.sleep(0.5)
    assert tr.interrupt() == 0
    recs, names = tool_tree(tr, pid)
    assert names == EXPECTED
    for r in recs:
        assert r["container"] == {"id": CONTAINER, "runtime": "containerd"}, r
        assert r["k8s"] == {"pod": {"uid": POD_UID, "name": "weather-bot-7d9f"},
                            "namespace": {"name": "agents"}}, r
    assert not [r for r in tr.records if r["process"]["pid"] == outside.pid]
    reqs = json.loads(state.read_text())["requests"]
    assert reqs and all(r["authorised"] for r in reqs)
    # The pod list is fetched when an unknown pod appears, not for every process.
    assert len(reqs) <= 3, reqs
    assert "test-sa-token" not in "\n".join(tr.err_lines)


def test_run_config_selectors(server, cert, tmp_path):  # noqa: F811
    """The DaemonSet's way: `agtrace run --config` with selectors and no PID; a comma inside a
    pattern survives the translation into --select."""
    cfg = tmp_path / "agtrace.json"
    cfg.write_text(json.dumps({
        "targets": {"select": [{"comm": "python3*", "cmdline": f"*agent_loop.py*{TOKEN}*,*"},
                               {"exe": "/nonexistent/*"}]},
        "output": {"format": "jsonl"},
    }))
    tr = Tracer(["--config", cfg], cmd="run", wait=False)
    tr.wait_for("discovery: 2 selectors")
    argv = agent_argv(server, cert)
    agent = Target(["sh", "-c", 'exec "$@" ,extra', "sh"] + argv)
    pid = discovered_pid(tr)
    assert pid == agent.pid
    converse_and_stop(tr, agent, pid)
    att = python_attached(tr.records, "exec")
    assert att["message"].endswith(
        f'; discovered (exec) by selector "comm=python3*,cmdline=*agent_loop.py*{TOKEN}*\\,*"')
    # Not loaded yet at exec, libssl and libgnutls wait in its library folders.
    if att["message"].startswith("1 probe links; "):
        assert att["message"].startswith(
            "1 probe links; no TLS stack loaded: plaintext HTTP over TCP only; probes ready in "
            "libgnutls.so.30.34.3, libssl.so.3; "), att


CHROOT = os.path.join(ROOT, "tests", "targets", "chroot_run.sh")
# agent_loop.py, started only on a first line: until then the interpreter has not imported ssl,
# so its libssl is not mapped yet.
LATE = ("import sys; print('ready', 0, flush=True); sys.stdin.readline(); "
        "sys.argv = sys.argv[1:]; exec(compile(open(sys.argv[0]).read(), sys.argv[0], 'exec'))")


def chrooted_agent(server, tmp_path, cert, late=False):  # noqa: F811
    py = [PYTHON, "-c", LATE] if late else [PYTHON]
    return ["unshare", "-m", "-p", "-f", CHROOT, str(tmp_path / "rootfs"),
            str(cert / "cert.pem"), *py, AGENT, str(server), "/opt/cert.pem", TOKEN]


def test_container_with_its_own_libssl_by_selector(server, cert, tmp_path):  # noqa: F811
    """A process in its own mount namespace and root, using a libssl that exists only there
    (LD_LIBRARY_PATH): found at exec and probed on the file it really maps (reached through
    /proc/PID/map_files: the path /proc/PID/maps shows is the host's view, and the host has no
    such file). The conversation is only visible through that libssl."""
    tr = Tracer(["--select", SELECT, "-o", "jsonl"], wait=False)
    tr.wait_for("discovery: 1 selector")
    agent = Target(chrooted_agent(server, tmp_path, cert))
    pid = discovered_pid(tr)
    converse_and_stop(tr, agent, pid)


def test_library_loaded_after_attach(server, cert, tmp_path):  # noqa: F811
    """Attached by PID before the process loads its libssl: the kernel reports the new
    executable mapping, and the probes follow onto the library it loaded."""
    agent = Target(chrooted_agent(server, tmp_path, cert, late=True))
    try:
        pid = int(subprocess.check_output(["pgrep", "-P", str(agent.pid)]).split()[0])
        tr = Tracer(["-p", pid, "-o", "jsonl"])
        agent.send("go")
        assert agent.read().startswith("ready ")  # agent_loop.py: imported ssl, running
        line = tr.wait_for("more probe links: ")
        assert line.rstrip().endswith("/opt/ssl/lib/libssl.so.3 loaded"), line
        assert f"PID {pid} (python3.11): 5 more probe links: " in line
        assert agent.call("openai Paris date +%s >/dev/null") == "steps 2"
        agent.quit()
        assert tr.finish() == 0
    finally:
        agent.kill()
    _, names = tool_tree(tr, pid)
    assert names == EXPECTED
    (att,) = [r for r in tr.records if r["process"]["pid"] == pid
              and r.get("message", "").startswith("5 more probe links")]
    assert att["name"] == "attach python3.11" and att["trace_type"] == "state_change"


def test_exited_targets_are_forgotten():
    """A long discovery run does not grow with every process it ever traced: targets that
    exited are freed after --forget-after (their attach and exit events all emitted first)."""
    tr = Tracer(["--select", "cmdline=sleep 0.321", "--forget-after", "1", "-o", "jsonl"],
                wait=False)
    tr.wait_for("discovery: 1 selector")
    ps = [subprocess.Popen(["sleep", "0.321"]) for _ in range(10)]
    pids = sorted(p.pid for p in ps)
    for p in ps:
        p.wait()
    time.sleep(3)
    assert tr.interrupt() == 0
    assert sorted(r["process"]["pid"] for r in tr.events("attach sleep")) == pids
    exits = tr.events("exit sleep")
    assert sorted(r["process"]["pid"] for r in exits) == pids
    assert all(r["process"]["exit_code"] == 0 for r in exits)
    (line,) = [l for l in tr.err_lines if "processes discovered" in l]
    # (execs of other processes on the machine may be counted as gone before inspection)
    assert "10 processes discovered, 0 not traced (--max-targets), 0 with probes that failed " \
           "to attach, " in line and line.endswith(" 10 forgotten after exit"), line


def test_pod_listed_late_gets_its_name(server, cert, k8s, pod_cgroup):  # noqa: F811
    """The API server does not list the pod yet when its process is discovered (by cgroup, a
    selector that needs no pod metadata): spans carry the pod UID from the cgroup at once, and
    the pod's name once the API server lists it."""
    _, state, tmp = k8s
    pods = json.loads((tmp / "pods.json").read_text())
    (tmp / "pods.json").write_text(json.dumps(pods[1:]))  # only the other pod
    port = json.loads(state.read_text())["port"]
    tr = Tracer(["--select", "cgroup=*kubepods*,comm=python3*", "--k8s-pods-url",
                 f"http://127.0.0.1:{port}/pods", "--k8s-token-file", tmp / "token",
                 "-o", "jsonl"], wait=False)
    tr.wait_for("discovery: 1 selector")
    agent = Target(in_pod(agent_argv(server, cert, container=True)))
    pid = discovered_pid(tr)
    assert agent.call("openai Paris true") == "steps 2"
    (tmp / "pods.json").write_text(json.dumps(pods))
    assert tr.wait_for("is in pod ", timeout=15).endswith(
        f"PID {pid} (python3.11) is in pod agents/weather-bot-7d9f\n")
    assert agent.call("openai Paris true") == "steps 2"
    agent.quit()
    time.sleep(0.5)
    assert tr.interrupt() == 0
    first, second = [r for r in tr.records if r["process"]["pid"] == pid
                     and r["trace_type"] == "cot_process"]
    assert first["k8s"] == {"pod": {"uid": POD_UID}}
    assert second["k8s"] == {"pod": {"uid": POD_UID, "name": "weather-bot-7d9f"},
                             "namespace": {"name": "agents"}}
    assert first["container"]["id"] == second["container"]["id"] == CONTAINER


def test_max_targets_turns_away_and_counts():
    """Over --max-targets, a matching process is not traced, and that is said, counted in the
    summary and on /metrics."""
    from test_metrics import free_port, scrape, value
    port = free_port()
    tr = Tracer(["--select", "cmdline=sleep 0.654", "--max-targets", "1", "--metrics",
                 f"127.0.0.1:{port}", "-o", "jsonl"], wait=False)
    tr.wait_for("discovery: 1 selector")
    first = subprocess.Popen(["sleep", "0.654"])
    tr.wait_for("discovered PID")
    second = subprocess.Popen(["sleep", "0.654"])
    line = tr.wait_for("--max-targets); not traced")
    assert line.startswith(f"agtrace: warning: PID {second.pid} (sleep) matches \"cmdline=sleep "
                           f"0.654\" but 1 targets are traced already")
    first.wait()
    second.wait()
    time.sleep(1.5)  # the metrics are refreshed once a second
    text = scrape(port)
    assert value(text, "agtrace_discovered_processes_total") == 1
    assert value(text, 'agtrace_discovery_skipped_total{reason="max_targets"}') == 1
    assert value(text, "agtrace_attached_processes") == 0
    assert tr.interrupt() == 0
    assert [r["process"]["pid"] for r in tr.events("attach sleep")] == [first.pid]
    (line,) = [l for l in tr.err_lines if "processes discovered" in l]
    assert "1 processes discovered, 1 not traced (--max-targets), " in line


def test_label_selector_matches_once_the_pod_is_listed(server, cert, k8s, pod_cgroup):  # noqa: F811
    """A process whose pod is not listed yet cannot be matched by namespace or labels: it waits,
    and is attached as soon as the pod list has its pod."""
    _, state, tmp = k8s
    pods = json.loads((tmp / "pods.json").read_text())
    (tmp / "pods.json").write_text(json.dumps(pods[1:]))  # only the other pod
    port = json.loads(state.read_text())["port"]
    tr = Tracer(["--select", "namespace=agents,label.app=weather-bot,comm=python3*",
                 "--k8s-pods-url",
                 f"http://127.0.0.1:{port}/pods", "--k8s-token-file", tmp / "token",
                 "-o", "jsonl"], wait=False)
    tr.wait_for("discovery: 1 selector")
    agent = Target(in_pod(agent_argv(server, cert, container=True)))
    time.sleep(1.5)
    assert not [l for l in tr.err_lines if "discovered PID" in l]
    (tmp / "pods.json").write_text(json.dumps(pods))
    line = tr.wait_for("discovered PID", timeout=15)
    pid = int(line.split("discovered PID ")[1].split()[0])
    assert "(python3.11 in pod weather-bot-7d9f)" in line
    converse_and_stop(tr, agent, pid)
    (att,) = [r for r in tr.records if r["name"] == "attach python3.11"]
    assert "discovered (pod listed) by selector" in att["message"]


def test_pid_and_selector_together(server, cert):  # noqa: F811
    """-p keeps working alongside selectors: an agent given by PID (which the selector also
    matches: attached once) and one discovered later, both traced in one run."""
    given = Target(agent_argv(server, cert))
    try:
        tr = Tracer(["-p", given.pid, "--select", SELECT, "-o", "jsonl"])
        tr.wait_for("discovery: 1 selector; 0 running processes matched")
        found = Target(agent_argv(server, cert))
        pid = discovered_pid(tr)
        assert pid == found.pid
        assert given.call("openai Paris date +%s >/dev/null") == "steps 2"
        given.quit()
        converse_and_stop(tr, found, pid)
    finally:
        given.kill()
    _, names = tool_tree(tr, given.pid)
    assert names == EXPECTED
    assert sorted(r["process"]["pid"] for r in tr.events("attach ")
                  if "more probe links" not in r["message"]) == sorted([given.pid, pid])


def test_workload_identity_from_a_watched_pod_list(server, cert, pod_cgroup, tmp_path):  # noqa: F811
    """From the API server, pods are listed once and then watched: a pod that appears later is
    known as soon as the watch says so, with no list polled again. Each pod's workload is its
    owner (a ReplicaSet's Deployment, read from the ReplicaSet), and spans carry it: service.name
    is the Deployment, k8s.* names the pod, its ReplicaSet, Deployment, container and node; in
    OTLP as the resource of the agent's spans, in ECS documents as fields."""
    from test_otlp import Collector
    pods = [{"metadata": {"name": "weather-bot-6d8f9c7b5-x2k4q", "namespace": "agents",
                          "uid": POD_UID, "labels": {"app": "weather-bot",
                                                     "pod-template-hash": "6d8f9c7b5"},
                          "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                               "name": "weather-bot-6d8f9c7b5",
                                               "uid": "0" * 8 + "-0000-4000-8000-" + "0" * 12,
                                               "controller": True}]},
             "spec": {"nodeName": "node-a"},
             "status": {"containerStatuses": [{"name": "agent",
                                               "containerID": f"containerd://{CONTAINER}"}]}}]
    (tmp_path / "pods.json").write_text("[]")  # the pod is not there yet
    (tmp_path / "rs.json").write_text(json.dumps([{"metadata": {
        "name": "weather-bot-6d8f9c7b5", "namespace": "agents",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                             "name": "weather-bot", "controller": True}]}}]))
    (tmp_path / "token").write_text("test-sa-token-0123\n")
    state = tmp_path / "k8s.json"
    api = subprocess.Popen([sys.executable, K8S, str(state), str(tmp_path / "pods.json"),
                            "test-sa-token-0123", "node-a", str(tmp_path / "rs.json")])
    col = Collector()
    try:
        for _ in range(100):
            if state.exists():
                break
            time.sleep(0.05)
        port = json.loads(state.read_text())["port"]
        tr = Tracer(["--select", f"cgroup=*kubepods*,{SELECT}", "--k8s-pods-url",
                     f"http://127.0.0.1:{port}/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a",
                     "--k8s-token-file", tmp_path / "token", "-o", "jsonl",
                     "--otlp", col.url, "--spool-dir", tmp_path / "spool"], wait=False)
        tr.wait_for("discovery: 1 selector")
        agent = Target(in_pod(agent_argv(server, cert, container=True)))
        pid = discovered_pid(tr)
        (tmp_path / "pods.json").write_text(json.dumps(pods))  # the watch brings it
        assert tr.wait_for("is in pod ", timeout=15).endswith(
            f"PID {pid} (python3.11) is in pod agents/weather-bot-6d8f9c7b5-x2k4q\n")
        assert agent.call("openai Paris true") == "steps 2"
        agent.quit()
        time.sleep(0.5)
        assert tr.interrupt() == 0
        got = col.get()
    finally:
        col.p.kill()
        api.kill()
        api.wait()
    reqs = [r["path"] for r in json.loads(state.read_text())["requests"]]
    lists = [p for p in reqs if p.startswith("/api/v1/pods") and "watch=1" not in p]
    watches = [p for p in reqs if "watch=1" in p]
    assert len(lists) == 1, reqs  # listed once, then watched
    assert watches and all("allowWatchBookmarks=true" in w for w in watches)
    assert reqs.count("/apis/apps/v1/namespaces/agents/replicasets/weather-bot-6d8f9c7b5") == 1
    (cot,) = [r for r in tr.records if r["trace_type"] == "cot_process"
              and r["process"]["pid"] == pid]
    assert cot["service"] == {"name": "weather-bot"}
    assert cot["k8s"] == {"pod": {"uid": POD_UID, "name": "weather-bot-6d8f9c7b5-x2k4q"},
                          "namespace": {"name": "agents"},
                          "deployment": {"name": "weather-bot"},
                          "replicaset": {"name": "weather-bot-6d8f9c7b5"},
                          "container": {"name": "agent"}, "node": {"name": "node-a"}}
    assert cot["container"] == {"id": CONTAINER, "runtime": "containerd", "name": "agent"}
    res = {json.dumps(s["resource"], sort_keys=True) for s in got["spans"]
           if s["spanId"] == cot["span_id"]}
    (res,) = [json.loads(r) for r in res]
    assert {k: v["stringValue"] for k, v in res.items() if "stringValue" in v} == {
        "service.name": "weather-bot", "process.executable.name": "python3.11",
        "process.executable.path": PYTHON, "host.name": os.uname().nodename,
        "container.id": CONTAINER, "container.runtime.name": "containerd",
        "k8s.pod.uid": POD_UID, "k8s.pod.name": "weather-bot-6d8f9c7b5-x2k4q",
        "k8s.namespace.name": "agents", "k8s.deployment.name": "weather-bot",
        "k8s.replicaset.name": "weather-bot-6d8f9c7b5", "k8s.container.name": "agent",
        "k8s.node.name": "node-a"}
    assert res["process.pid"] == {"intValue": str(pid)}


def pod_of(name, owner=None, annotations=None):
    """A pod of node-a in namespace agents, in the container CONTAINER, owned by owner
    (kind, name) as its controller."""
    md = {"name": name, "namespace": "agents", "uid": POD_UID, "labels": {"app": "agent"}}
    if owner:
        md["ownerReferences"] = [{"apiVersion": "batch/v1" if owner[0] == "Job" else "apps/v1",
                                  "kind": owner[0], "name": owner[1],
                                  "uid": "2" * 8 + "-0000-4000-8000-" + "0" * 12,
                                  "controller": True}]
    if annotations:
        md["annotations"] = annotations
    return {"metadata": md, "spec": {"nodeName": "node-a"},
            "status": {"containerStatuses": [{"name": "agent",
                                              "containerID": f"containerd://{CONTAINER}"}]}}


WORKLOADS = {
    # case: (pod, ReplicaSets, extra options) -> (service.name, k8s.* names beside the pod's)
    "statefulset": (pod_of("weather-db-0", ("StatefulSet", "weather-db")), [], [],
                    "weather-db", {"k8s.statefulset.name": "weather-db"}),
    "daemonset": (pod_of("node-agent-5xk2p", ("DaemonSet", "node-agent")), [], [],
                  "node-agent", {"k8s.daemonset.name": "node-agent"}),
    "job": (pod_of("nightly-eval-7q2mx", ("Job", "nightly-eval")), [], [],
            "nightly-eval", {"k8s.job.name": "nightly-eval"}),
    # the pod's annotation names the service, its Deployment is still said
    "annotation": (pod_of("weather-bot-6d8f9c7b5-x2k4q", ("ReplicaSet", "weather-bot-6d8f9c7b5"),
                          {"resource.opentelemetry.io/service.name": "weather-assistant"}),
                   [{"metadata": {"name": "weather-bot-6d8f9c7b5", "namespace": "agents",
                                  "ownerReferences": [{"apiVersion": "apps/v1",
                                                       "kind": "Deployment",
                                                       "name": "weather-bot",
                                                       "controller": True}]}}], [],
                   "weather-assistant", {"k8s.deployment.name": "weather-bot",
                                         "k8s.replicaset.name": "weather-bot-6d8f9c7b5"}),
    # --service-name wins over all of that
    "service-name option": (pod_of("weather-db-0", ("StatefulSet", "weather-db"),
                                   {"resource.opentelemetry.io/service.name": "x"}), [],
                            ["--service-name", "agents-prod"], "agents-prod",
                            {"k8s.statefulset.name": "weather-db"}),
}


@pytest.mark.parametrize("case", list(WORKLOADS))
def test_workload_kinds_and_service_name(server, cert, pod_cgroup, tmp_path, case):  # noqa: F811
    """Each workload kind a pod can belong to names its service and is said as k8s.<kind>.name
    (a StatefulSet, DaemonSet or Job as the pod's owner says, with no request of its own);
    the pod's resource.opentelemetry.io/service.name annotation comes before the workload,
    and --service-name before both; the same name in OTLP resources and ECS documents."""
    from test_otlp import Collector
    pod, replicasets, extra, service, names = WORKLOADS[case]
    (tmp_path / "pods.json").write_text(json.dumps([pod]))
    (tmp_path / "rs.json").write_text(json.dumps(replicasets))
    (tmp_path / "token").write_text("test-sa-token-0123\n")
    state = tmp_path / "k8s.json"
    api = subprocess.Popen([sys.executable, K8S, str(state), str(tmp_path / "pods.json"),
                            "test-sa-token-0123", "node-a", str(tmp_path / "rs.json")])
    col = Collector()
    try:
        for _ in range(100):
            if state.exists():
                break
            time.sleep(0.05)
        port = json.loads(state.read_text())["port"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        tr = Tracer(["--select", f"cgroup=*kubepods*,{SELECT}", "--k8s-pods-url",
                     f"http://127.0.0.1:{port}/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a",
                     "--k8s-token-file", tmp_path / "token", "-o", "jsonl",
                     "--otlp", col.url, "--spool-dir", tmp_path / "spool", *extra],
                    wait=False, env=env)
        tr.wait_for("discovery: 1 selector")
        agent = Target(in_pod(agent_argv(server, cert, container=True)))
        line = tr.wait_for("discovered PID ")
        pid = int(line.split("discovered PID ")[1].split()[0])
        assert f"(python3.11 in pod {pod['metadata']['name']})" in line, line
        assert agent.call("openai Paris true") == "steps 2"
        agent.quit()
        time.sleep(0.5)
        assert tr.interrupt() == 0
        got = col.get()
    finally:
        if "agent" in locals():
            agent.kill()
        col.p.kill()
        api.kill()
        api.wait()
    reqs = [r["path"] for r in json.loads(state.read_text())["requests"]]
    rs_gets = [p for p in reqs if "/replicasets/" in p]
    assert rs_gets == (["/apis/apps/v1/namespaces/agents/replicasets/weather-bot-6d8f9c7b5"]
                       if replicasets else [])
    recs = [r for r in tr.records if r["process"]["pid"] == pid]
    (cot,) = [r for r in recs if r["trace_type"] == "cot_process"]
    assert {r["service"]["name"] for r in recs} == {service}
    k8s = {"pod": {"uid": POD_UID, "name": pod["metadata"]["name"]},
           "namespace": {"name": "agents"}, "container": {"name": "agent"},
           "node": {"name": "node-a"}}
    for key, value in names.items():
        k8s[key.split(".")[1]] = {"name": value}
    assert cot["k8s"] == k8s
    mine = [s for s in got["spans"] if s["spanId"] in {r["span_id"] for r in recs}]
    assert len(mine) == len(recs)
    resources = {json.dumps(s["resource"], sort_keys=True) for s in mine}
    (res,) = [json.loads(r) for r in resources]  # one workload, one resource
    assert {k: v["stringValue"] for k, v in res.items() if k.startswith("k8s.")} == dict(
        names, **{"k8s.pod.uid": POD_UID, "k8s.pod.name": pod["metadata"]["name"],
                  "k8s.namespace.name": "agents", "k8s.container.name": "agent",
                  "k8s.node.name": "node-a"})
    assert res["service.name"] == {"stringValue": service}


def execs_seen(tr):
    (line,) = [l for l in tr.err_lines if "execs seen" in l]
    return int(line.split("discovery: ")[1].split()[0])


def test_the_kernel_reports_only_execs_a_comm_selector_can_take(tmp_path):
    """With every selector naming its comm as a literal or as a prefix and '*', the kernel
    compares each exec's new comm itself: an exec no selector can take is not reported at all
    (the summary's execs seen), so an untraced process's exec costs one comparison. A comm with
    any other wildcard turns that off: every exec on the node is reported and matched here."""
    name = f"agtp{os.getpid() % 100000}"
    exe = tmp_path / name
    subprocess.run(["cp", "/bin/sleep", exe], check=True)
    for select, prefiltered in ((f"comm={name[:6]}*", True), (f"comm={name}", True),
                                (f"comm=*{name[2:]}", False)):
        tr = Tracer(["--select", select, "-o", "jsonl"], wait=False)
        tr.wait_for("discovery: ")
        for _ in range(20):
            subprocess.run(["/bin/true"], check=True)
        p = subprocess.Popen([exe, "0.3"])
        assert discovered_pid(tr) == p.pid
        p.wait()
        assert tr.interrupt() == 0
        if prefiltered:
            assert execs_seen(tr) == 1, (select, tr.err_lines)
        else:
            assert execs_seen(tr) >= 21, (select, tr.err_lines)
