"""deploy/: every manifest lints and validates against the Kubernetes API schemas, the least-
privilege DaemonSet's capabilities really are enough, the shipped configurations pass
`agtrace run --dry-run`, and what Grafana, Prometheus rules and Kibana searches query is what
agtrace really emits (checked against a real /metrics scrape and real spans)."""
import glob
import json
import os
import re
import subprocess
import time

import yaml
from harness import AGTRACE, NESTED, ROOT, Target, Tracer
from test_agent import AGENT
from test_llm import PY, cert, server  # noqa: F401
from test_metrics import free_port, scrape

DEPLOY = os.path.join(ROOT, "deploy")
K8S = sorted(glob.glob(os.path.join(DEPLOY, "kubernetes", "*.yaml")))
DASHBOARDS = sorted(glob.glob(os.path.join(DEPLOY, "grafana", "dashboards", "*.json")))


HELM = os.path.join(DEPLOY, "helm", "agtrace")
RENDER = os.path.join(ROOT, "build", "tests", "helm_render")
RBAC_RULES = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
              {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get"]}]


def test_yaml_lint_every_file():
    # The chart's templates are Go templates, not YAML: their rendered output is linted below.
    files = sorted(f for f in glob.glob(os.path.join(DEPLOY, "**", "*.y*ml"), recursive=True)
                   if os.sep + "templates" + os.sep not in f)
    assert len(files) >= 12, files
    r = subprocess.run(["yamllint", "-s", "-c", os.path.join(DEPLOY, ".yamllint"), *files],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_kubernetes_objects_validate_against_the_api_schemas():
    r = subprocess.run(["node", os.path.join(ROOT, "tests", "node", "validate_k8s.mjs"), *K8S],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    objs = sorted(l.split(": ", 1)[1] for l in r.stdout.splitlines())
    assert objs == sorted([
        "v1 ConfigMap agtrace-config: valid", "apps/v1 DaemonSet agtrace: valid",
        "apps/v1 DaemonSet agtrace: valid", "v1 Namespace agtrace: valid",
        "v1 ServiceAccount agtrace: valid", "rbac.authorization.k8s.io/v1 ClusterRole agtrace: valid",
        "rbac.authorization.k8s.io/v1 ClusterRoleBinding agtrace: valid",
        "v1 Service agtrace-metrics: valid"])
    # The validator does reject a broken object (a port that is not a number).
    bad = os.path.join(ROOT, "build", "bad-daemonset.yaml")
    with open(os.path.join(DEPLOY, "kubernetes", "daemonset.yaml")) as f:
        text = f.read().replace("containerPort: 9464", 'containerPort: "metrics"')
    with open(bad, "w") as f:
        f.write(text)
    r = subprocess.run(["node", os.path.join(ROOT, "tests", "node", "validate_k8s.mjs"), bad],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1
    assert "containerPort must be integer" in r.stdout


def daemonset(name):
    with open(os.path.join(DEPLOY, "kubernetes", name)) as f:
        return yaml.safe_load(f)


def check_daemonset(ds):
    """What every agtrace DaemonSet (the manifests and the chart's) must have."""
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostPID"] is True
    (c,) = spec["containers"]
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/sys/kernel/btf", "/sys/fs/bpf", "/sys/kernel/tracing", "/host/proc",
            "/var/lib/agtrace/spool", "/var/lib/agtrace/audit", "/etc/agtrace"} <= mounts
    assert c["args"] == ["run", "--config", "/etc/agtrace/agtrace.json"]
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} \
        in c["env"]
    # probes on what agtrace answers: ready once attached, alive while it answers
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    # one architecture: the image's BPF objects and vmlinux.h are built for it
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
    return spec, c


def test_daemonsets_mount_what_agtrace_needs():
    for name in ("daemonset.yaml", "daemonset-least-privilege.yaml"):
        check_daemonset(daemonset(name))
        spec = daemonset(name)["spec"]["template"]["spec"]
        assert spec["hostPID"] is True
        (c,) = spec["containers"]
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert {"/sys/kernel/btf", "/sys/fs/bpf", "/sys/kernel/tracing", "/host/proc",
                "/var/lib/agtrace/spool", "/var/lib/agtrace/audit", "/etc/agtrace"} <= mounts
        assert c["args"] == ["run", "--config", "/etc/agtrace/agtrace.json"]
        assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} \
            in c["env"]
        assert spec["serviceAccountName"] == "agtrace"
    assert daemonset("daemonset.yaml")["spec"]["template"]["spec"]["containers"][0][
        "securityContext"]["privileged"] is True


def test_least_privilege_capabilities_are_enough(nested):
    """agtrace as root with only the capabilities the least-privilege DaemonSet adds (the
    bounding set holds nothing else) attaches and traces."""
    sc = daemonset("daemonset-least-privilege.yaml")["spec"]["template"]["spec"]["containers"][0][
        "securityContext"]
    assert sc["privileged"] is False and sc["capabilities"]["drop"] == ["ALL"]
    caps = ",".join("+" + c.lower() for c in sc["capabilities"]["add"])
    argv = ["setpriv", "--bounding-set", "-all," + caps, AGTRACE, "attach", "-p", str(nested.pid),
            "--uprobe", f"{NESTED}:leaf", "-o", "jsonl", "--duration", "3"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        if "attached " in line:
            break
    nested.call("outer 2")
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    names = [json.loads(l)["name"] for l in out.splitlines()]
    assert names.count("leaf") == 2, names
    # And one capability fewer is not: without SYS_ADMIN this kernel refuses the uprobe.
    fewer = ",".join("+" + c.lower() for c in sc["capabilities"]["add"] if c != "SYS_ADMIN")
    r = subprocess.run(["setpriv", "--bounding-set", "-all," + fewer, AGTRACE, "attach", "-p",
                        str(nested.pid), "--uprobe", f"{NESTED}:leaf", "--duration", "1"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "Permission denied" in r.stderr, r.stderr


def test_shipped_configurations_pass_dry_run(tmp_path):
    with open(os.path.join(DEPLOY, "kubernetes", "configmap.yaml")) as f:
        cm = yaml.safe_load(f)
    (tmp_path / "cm.json").write_text(cm["data"]["agtrace.json"])
    for cfg, selectors in ((tmp_path / "cm.json", 4),
                           (os.path.join(DEPLOY, "compose", "agtrace.json"), 2)):
        r = subprocess.run([AGTRACE, "run", "--config", str(cfg), "--dry-run"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"configuration OK: 0 PIDs, {selectors} selectors, ")
    assert "  select label.agtrace.io/trace=true,comm=python3*\n" in subprocess.run(
        [AGTRACE, "run", "--config", str(tmp_path / "cm.json"), "--dry-run"],
        capture_output=True, text=True).stdout


def promql_of(doc):
    """Every PromQL expression in a dashboard."""
    for p in doc["panels"]:
        for t in p.get("targets", []):
            if "expr" in t:
                yield t["expr"]
    for v in doc["templating"]["list"]:
        q = v.get("query")
        if isinstance(q, dict):
            yield re.sub(r"label_values\((\w+), *(\w+)\)", r"\1{\2!=''}", q["query"])


def test_dashboards_rules_and_searches_use_what_agtrace_emits(tmp_path, server, cert):  # noqa: F811
    """Every metric a dashboard or rule uses is on a real scrape, with every label it filters or
    groups by; every field a Kibana search queries is in real spans or the index template."""
    titles = sorted(json.load(open(d))["title"] for d in DASHBOARDS)
    assert titles == ["Agentic Overview", "Audit Trail", "Reasoning Analytics", "Tool Performance"]
    exprs = [e for d in DASHBOARDS for e in promql_of(json.load(open(d)))]
    with open(os.path.join(DEPLOY, "prometheus", "rules.yml")) as f:
        rules = yaml.safe_load(f)
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]

    port = free_port()
    t = Target([PY, AGENT, str(server), str(cert / "cert.pem")])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--metrics", f"127.0.0.1:{port}", "--es",
                     "http://127.0.0.1:9", "--spool-dir", tmp_path / "spool", "--select",
                     "comm=no-such-agent"])
        assert t.call("openai Paris exit 1") == "steps 2"
        time.sleep(1.2)
        text = scrape(port)
        t.quit()
        time.sleep(0.5)
        assert tr.interrupt() == 0
    finally:
        t.kill()
    labels = {}  # metric family -> label names seen on its series
    for line in text.splitlines():
        m = re.match(r"^([a-z_:]+)(?:\{(.*)\})? ", line)
        if m:
            fam = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
            names = set(re.findall(r'(\w+)="', m.group(2) or ""))
            labels.setdefault(fam, set()).update(names)
            labels.setdefault(m.group(1), set()).update(names)
    # ... and the labels the scrape adds: instance, job, and node (the chart's ServiceMonitor
    # relabels the pod's node name into it; AgtraceMissingOnNode joins kube_node_info on it)
    every_label = set().union(*labels.values()) | {"le", "instance", "job", "node"}
    used = set()
    for e in exprs:
        bare = re.sub(r"\b(by|without)\s*\([^)]*\)", "", e)  # label lists are not metrics
        for name, sel in re.findall(r"(?<![:\w])((?:agentic|agtrace|gen_ai)_[a-z_]+)(\{[^}]*\})?",
                                    bare):
            used.add(re.sub(r"_(bucket|sum|count)$", "", name))
            assert name in labels, f"{name} (in {e!r}) is not on agtrace's /metrics"
            for lab in re.findall(r"(\w+)\s*(?:=~|!=|!~|=)", sel):
                assert lab in labels[name], f"{name} has no label {lab} (in {e!r})"
        for grp in re.findall(r"\bby\s*\(([^)]*)\)", e):
            for lab in filter(None, (x.strip() for x in grp.split(","))):
                assert lab in every_label, f"no series has the label {lab} (in {e!r})"
        for rec in re.findall(r"(agentic:[a-z_:0-9]+)", e):
            assert rec in recorded, f"{rec} is not a recording rule"
    assert {"agentic_reasoning_steps_total", "agentic_tool_calls_total",
            "agentic_tool_call_duration_seconds", "agentic_cot_chains_completed_total",
            "agentic_decision_latency_seconds", "agentic_active_workflows",
            "agentic_trace_buffer_size"} <= used

    # Kibana: the fields the saved searches query and show.
    fields = set()

    def walk(o, prefix=""):
        for k, v in o.items():
            fields.add(prefix + k)
            if isinstance(v, dict):
                walk(v, prefix + k + ".")
            if isinstance(v, list) and v and isinstance(v[0], dict):
                for x in v:
                    walk(x, prefix + k + ".")

    for r in tr.records:
        walk(r)
    with open(os.path.join(DEPLOY, "elasticsearch", "index-template.json")) as f:
        props = json.load(f)["template"]["mappings"]["properties"]

    def mapped(props, prefix=""):
        for k, v in props.items():
            fields.add(prefix + k)
            mapped(v.get("properties", {}), prefix + k + ".")

    mapped(props)
    searches = [json.loads(l) for l in open(os.path.join(DEPLOY, "kibana",
                                                         "saved-searches.ndjson"))]
    assert searches[0]["type"] == "index-pattern"
    assert searches[0]["attributes"]["title"] == "agentic-traces*"  # the data stream
    titles = []
    for s in searches[1:]:
        a = s["attributes"]
        titles.append(a["title"])
        q = json.loads(a["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"]
        for f in re.findall(r"([\w@.]+)\s*(?::|>=|<=|<|>)", q) + a["columns"]:
            assert f in fields, f"{a['title']}: {f} is not a field agtrace writes"
        for tt in re.findall(r'trace_type:"(\w+)"', q):
            assert tt in {"reasoning_step", "tool_call", "cot_process", "decision",
                          "state_change", "error", "metric"}
    assert titles == ["CoT processes of a session", "Errors in the last hour",
                      "Tool calls over 1 s", "Decisions with confidence below 0.7"]


def test_compose_stack_references_files_that_exist():
    d = os.path.join(DEPLOY, "compose")
    with open(os.path.join(d, "compose.yaml")) as f:
        c = yaml.safe_load(f)
    assert set(c["services"]) == {"elasticsearch", "es-setup", "kibana", "fluentd",
                                  "prometheus", "grafana", "agtrace"}
    for svc in c["services"].values():
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                assert os.path.exists(os.path.join(d, src)), src
    ag = c["services"]["agtrace"]
    assert ag["privileged"] is True and ag["pid"] == "host"
    assert os.path.exists(os.path.join(d, ag["build"]["context"], ag["build"]["dockerfile"]))
    # Fluentd listens where agtrace's configuration sends, for the tag it uses.
    conf = open(os.path.join(d, "fluentd", "fluent.conf")).read()
    cfg = json.load(open(os.path.join(d, "agtrace.json")))
    assert cfg["fluentd"]["address"] == "fluentd:24224" and "port 24224" in conf
    assert "<match agentic.**>" in conf and cfg["fluentd"]["tag"].startswith("agentic.")
    # ... into the data stream the template declares: create only, ids from the spans
    assert "index_name agentic-traces\n" in conf and "write_operation create" in conf
    assert "logstash_format false" in conf and "id_key span_id" in conf
    # Prometheus in Compose scrapes the agtrace service on its metrics port.
    with open(os.path.join(DEPLOY, "prometheus", "prometheus.yml")) as f:
        prom = yaml.safe_load(f)
    assert prom["scrape_configs"][0]["static_configs"][0]["targets"] == ["agtrace:9464"]
    assert cfg["metrics"]["listen"].endswith(":9464")


def dockerfile_packages(stage):
    """The Debian packages one stage of deploy/Dockerfile installs (0: build, 1: run)."""
    text = open(os.path.join(DEPLOY, "Dockerfile")).read()
    runs = re.findall(r"apt-get install -y --no-install-recommends \\\n(.*?)&& rm -rf", text, re.S)
    assert len(runs) == 2, runs
    return set(runs[stage].replace("\\", " ").split())


def owner(path):
    r = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
    return r.stdout.split(":")[0] if r.returncode == 0 else None


def test_image_installs_what_the_binary_links_and_the_build_needs():
    """No container runtime here to build the image: instead, every shared library the agtrace
    binary needs comes from a package the runtime stage installs (or the base image's libc),
    and every library the Makefile builds against has its -dev package in the build stage."""
    run, build = dockerfile_packages(1), dockerfile_packages(0)
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]",
                        subprocess.check_output(["readelf", "-d", AGTRACE], text=True))
    assert len(needed) >= 12, needed
    cache = subprocess.check_output(["ldconfig", "-p"], text=True)
    for so in needed:
        (path,) = re.findall(rf"^\s+{re.escape(so)} \(libc6,x86-64\) => (\S+)$", cache, re.M)[:1]
        pkg = owner(path) or owner(os.path.realpath(path))
        assert pkg, so
        assert pkg in run | {"libc6"}, f"{so} is in {pkg}, which the image does not install"
    pcs = re.search(r"^PKGS := (.*)$", open(os.path.join(ROOT, "Makefile")).read(), re.M)
    for pc in pcs.group(1).split():
        d = subprocess.check_output(["pkg-config", "--variable=pcfiledir", pc], text=True).strip()
        pkg = owner(os.path.join(d, pc + ".pc"))
        assert pkg in build, f"{pc}.pc is in {pkg}, which the build stage does not install"
    assert owner("/usr/include/http_parser.h") in build
    assert {"clang", "llvm", "bpftool", "make", "gcc"} <= build


def test_rbac_is_what_agtrace_uses():
    """Pods (listed, watched) and the ReplicaSets that own them (each read with one GET, as
    userspace/capture/container.c does: never listed or watched); no nodes/proxy."""
    docs = list(yaml.safe_load_all(open(os.path.join(DEPLOY, "kubernetes", "rbac.yaml"))))
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert role["rules"] == RBAC_RULES


def test_dashboards_use_datasource_variables_only():
    """No dashboard names a data source by uid: each one is a variable of type datasource of
    the dashboard, of the data source's type, so any Grafana's Prometheus and Elasticsearch
    fit."""
    def datasources(o):
        if isinstance(o, dict):
            if isinstance(o.get("datasource"), dict):
                yield o["datasource"]
            for v in o.values():
                yield from datasources(v)
        elif isinstance(o, list):
            for v in o:
                yield from datasources(v)

    kinds = set()
    for d in DASHBOARDS:
        doc = json.load(open(d))
        variables = {v["name"]: v["query"] for v in doc["templating"]["list"]
                     if v["type"] == "datasource"}
        for ds in datasources(doc):
            m = re.fullmatch(r"\$\{(\w+)\}", ds["uid"])
            assert m, f"{d}: data source uid {ds['uid']!r} is not a variable"
            assert variables.get(m.group(1)) == ds["type"], (d, ds)
            kinds.add(ds["type"])
    assert kinds == {"prometheus", "elasticsearch"}


def render_chart(tmp_path, values=None, release="agtrace", namespace="agtrace"):
    """The chart rendered as `helm template` would, with values merged over values.yaml."""
    def merge(a, b):
        for k, v in b.items():
            a[k] = merge(a.get(k, {}), v) if isinstance(v, dict) and isinstance(a.get(k), dict) \
                else v
        return a

    chart = yaml.safe_load(open(os.path.join(HELM, "Chart.yaml")))
    ctx = {"Values": merge(yaml.safe_load(open(os.path.join(HELM, "values.yaml"))), values or {}),
           "Chart": {"Name": chart["name"], "Version": chart["version"],
                     "AppVersion": chart["appVersion"]},
           "Release": {"Name": release, "Namespace": namespace, "Service": "Helm"}}
    (tmp_path / "ctx.json").write_text(json.dumps(ctx))
    r = subprocess.run([RENDER, HELM, str(tmp_path / "ctx.json")], capture_output=True, text=True)
    return r


def rendered(tmp_path, values=None, name="chart.yaml"):
    r = render_chart(tmp_path, values)
    assert r.returncode == 0, r.stderr
    out = tmp_path / name
    out.write_text(r.stdout)
    return out, [d for d in yaml.safe_load_all(r.stdout) if d]


def test_helm_chart_renders_objects_that_pass_the_manifests_checks(tmp_path):
    """The chart's output goes through the checks the manifests do: yamllint, the Kubernetes
    API schemas (and the prometheus-operator ones for the ServiceMonitor), what a DaemonSet of
    agtrace must have, the reduced RBAC, and the least-privilege capabilities the test above
    measured."""
    out, docs = rendered(tmp_path, {"serviceMonitor": {"enabled": True}})
    r = subprocess.run(["yamllint", "-s", "-c", os.path.join(DEPLOY, ".yamllint"), str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["node", os.path.join(ROOT, "tests", "node", "validate_k8s.mjs"), str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(l.split(": ", 1)[1] for l in r.stdout.splitlines()) == sorted([
        "v1 ConfigMap agtrace-config: valid", "apps/v1 DaemonSet agtrace: valid",
        "v1 ServiceAccount agtrace: valid", "rbac.authorization.k8s.io/v1 ClusterRole agtrace: valid",
        "rbac.authorization.k8s.io/v1 ClusterRoleBinding agtrace: valid",
        "v1 Service agtrace-metrics: valid",
        "monitoring.coreos.com/v1 ServiceMonitor agtrace: valid"])
    by_kind = {d["kind"]: d for d in docs}
    spec, c = check_daemonset(by_kind["DaemonSet"])
    assert c["securityContext"]["privileged"] is True
    assert by_kind["ClusterRole"]["rules"] == RBAC_RULES
    sm = by_kind["ServiceMonitor"]["spec"]
    assert sm["jobLabel"] == "app.kubernetes.io/name"  # job="agtrace", as the alerts expect
    assert by_kind["Service"]["metadata"]["labels"]["app.kubernetes.io/name"] == "agtrace"
    assert sm["endpoints"][0]["relabelings"] == [
        {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}]
    assert sm["selector"]["matchLabels"] == by_kind["Service"]["spec"]["selector"]
    # Without the toggle there is no ServiceMonitor (a cluster without the operator's CRDs).
    _, docs = rendered(tmp_path, {}, "default.yaml")
    assert "ServiceMonitor" not in {d["kind"] for d in docs}

    # The least-privilege variant: the capabilities of the manifest the test above measured.
    out, docs = rendered(tmp_path, {"securityMode": "leastPrivilege"}, "least.yaml")
    r = subprocess.run(["node", os.path.join(ROOT, "tests", "node", "validate_k8s.mjs"), str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    _, c = check_daemonset(ds)
    want = daemonset("daemonset-least-privilege.yaml")["spec"]["template"]["spec"]["containers"][0]
    for k in ("privileged", "capabilities", "allowPrivilegeEscalation", "seccompProfile"):
        assert c["securityContext"][k] == want["securityContext"][k], k
    assert [m for m in c["volumeMounts"] if m["name"] == "bpffs"] == \
        [m for m in want["volumeMounts"] if m["name"] == "bpffs"]
    r = render_chart(tmp_path, {"securityMode": "root"})
    assert r.returncode == 1 and "securityMode must be privileged or leastPrivilege" in r.stderr


def chart_config(docs):
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    return json.loads(cm["data"]["agtrace.json"])


def test_helm_values_reach_agtrace_and_pass_dry_run(tmp_path):
    """Selectors, sampling and exporters given as values are in the configuration the
    DaemonSet runs, which `agtrace run --dry-run` accepts; a bad exporter value is refused by
    the same dry-run."""
    _, docs = rendered(tmp_path, {})
    cfg = chart_config(docs)
    (tmp_path / "default.json").write_text(json.dumps(cfg))
    r = subprocess.run([AGTRACE, "run", "--config", str(tmp_path / "default.json"), "--dry-run"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("configuration OK: 0 PIDs, 4 selectors, ")
    # the chart's defaults are the manifests' configuration, plus the same JSON logs
    with open(os.path.join(DEPLOY, "kubernetes", "configmap.yaml")) as f:
        assert cfg == json.loads(yaml.safe_load(f)["data"]["agtrace.json"])

    values = {"selectors": [{"comm": "my-agent", "labels": {"team": "ml"}}],
              "sampling": {"rules": ["tls=0.25,rate=100", "sock=0"], "eventBudget": 5000},
              "exporters": {"otlp": {"url": "http://otel-collector.observability:4318"},
                            "elasticsearch": {"url": "https://es.logging:9200",
                                              "index": "agents-%Y.%m"},
                            "fluentd": {"address": ""}},
              "metrics": {"port": 9500}, "logging": {"level": "debug", "format": "text"}}
    _, docs = rendered(tmp_path, values, "values.yaml")
    cfg = chart_config(docs)
    assert cfg["targets"] == {"select": [{"comm": "my-agent", "labels": {"team": "ml"}}]}
    assert cfg["sample"] == ["tls=0.25,rate=100", "sock=0"] and cfg["event_budget"] == 5000
    assert cfg["otlp"] == {"url": "http://otel-collector.observability:4318"}
    assert cfg["elasticsearch"] == {"url": "https://es.logging:9200", "index": "agents-%Y.%m",
                                    "install_template": False}
    assert "fluentd" not in cfg
    assert cfg["metrics"] == {"listen": "0.0.0.0:9500"}
    assert cfg["log"] == {"level": "debug", "format": "text"}
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    assert ds["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 9500
    (tmp_path / "values.json").write_text(json.dumps(cfg))
    r = subprocess.run([AGTRACE, "run", "--config", str(tmp_path / "values.json"), "--dry-run"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("configuration OK: 0 PIDs, 1 selector, ")

    # Credentials come from Secrets, mounted where the configuration says.
    _, docs = rendered(tmp_path, {"exporters": {"elasticsearch": {
        "url": "https://es:9200", "apiKeySecret": "es-key", "caSecret": "es-ca"}}}, "sec.yaml")
    cfg = chart_config(docs)
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    pod = ds["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"es-api-key": "es-key", "es-ca": "es-ca"}
    assert cfg["elasticsearch"]["api_key_file"] == mounts["es-api-key"] + "/api-key"
    assert cfg["elasticsearch"]["ca"] == mounts["es-ca"] + "/ca.crt"

    # A value a run would refuse is refused by the dry-run of the rendered configuration.
    _, docs = rendered(tmp_path, {"exporters": {"otlp": {"url": "otel-collector:4318"}}},
                       "bad.yaml")
    (tmp_path / "bad.json").write_text(json.dumps(chart_config(docs)))
    r = subprocess.run([AGTRACE, "run", "--config", str(tmp_path / "bad.json"), "--dry-run"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    logs = [json.loads(l) for l in r.stderr.splitlines()]  # the chart's JSON logs, every line
    assert [l["level"] for l in logs] == ["warn"] * (len(logs) - 1) + ["error"]
    assert logs[-1]["msg"] == (
        '--otlp "otel-collector:4318" is not an http:// or https:// URL with a host (for '
        'example http://127.0.0.1:4318)')


def test_helm_otlp_values_with_secrets(tmp_path):
    """The OTLP exporter's protocol and plain headers as values; its credential headers from a
    Secret, given to agtrace as OTEL_EXPORTER_OTLP_HEADERS (never in the ConfigMap); its CA
    and client certificate mounted from Secrets where the configuration says. The rendered
    objects pass the manifests' checks, and the configuration with those files and that
    variable passes agtrace's own dry-run (which refuses a Secret that is not a header list)."""
    values = {"exporters": {"otlp": {
        "url": "https://otel-collector.observability:4318", "protocol": "http/json",
        "headers": ["x-scope-orgid=agents"], "headersSecret": "otlp-auth",
        "caSecret": "otlp-ca", "clientCertSecret": "agtrace-client-tls"}}}
    out, docs = rendered(tmp_path, values, "otlp.yaml")
    r = subprocess.run(["yamllint", "-s", "-c", os.path.join(DEPLOY, ".yamllint"), str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["node", os.path.join(ROOT, "tests", "node", "validate_k8s.mjs"), str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    cfg = chart_config(docs)
    assert cfg["otlp"] == {"url": "https://otel-collector.observability:4318",
                           "protocol": "http/json", "headers": ["x-scope-orgid=agents"],
                           "ca": "/etc/agtrace/secrets/otlp-ca/ca.crt",
                           "client_cert": "/etc/agtrace/secrets/otlp-client/tls.crt",
                           "client_key": "/etc/agtrace/secrets/otlp-client/tls.key"}
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    pod = ds["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e.get("valueFrom") for e in c["env"]}
    assert env["OTEL_EXPORTER_OTLP_HEADERS"] == {
        "secretKeyRef": {"name": "otlp-auth", "key": "headers"}}
    mounts = {m["name"]: (m["mountPath"], m.get("readOnly")) for m in c["volumeMounts"]}
    assert mounts["otlp-ca"] == ("/etc/agtrace/secrets/otlp-ca", True)
    assert mounts["otlp-client"] == ("/etc/agtrace/secrets/otlp-client", True)
    secrets = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"otlp-ca": {"secretName": "otlp-ca"},
                       "otlp-client": {"secretName": "agtrace-client-tls", "defaultMode": 0o400}}
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert "Authorization" not in json.dumps(cm)

    # The Secrets' files where the mounts put them (here under tmp_path), then the dry-run.
    sec = tmp_path / "secrets"
    for d in ("otlp-ca", "otlp-client"):
        (sec / d).mkdir(parents=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", sec / "otlp-client" / "tls.key", "-out",
                    sec / "otlp-client" / "tls.crt", "-subj", "/CN=agtrace"],
                   check=True, capture_output=True)
    (sec / "otlp-ca" / "ca.crt").write_text((sec / "otlp-client" / "tls.crt").read_text())
    conf = tmp_path / "otlp.json"
    conf.write_text(json.dumps(cfg).replace("/etc/agtrace/secrets", str(sec)))
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    r = subprocess.run([AGTRACE, "run", "--config", str(conf), "--dry-run"],
                       capture_output=True, text=True, env=dict(
                           base, OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer%20tok-9"))
    assert r.returncode == 0, r.stderr
    assert "tok-9" not in r.stdout + r.stderr
    r = subprocess.run([AGTRACE, "run", "--config", str(conf), "--dry-run"],
                       capture_output=True, text=True,
                       env=dict(base, OTEL_EXPORTER_OTLP_HEADERS="Bearer tok-9"))
    assert (r.returncode, r.stderr) == (2, (
        "agtrace: error: $OTEL_EXPORTER_OTLP_HEADERS is not a list of name=value headers "
        "(values percent-encoded, joined by commas)\n"))
    # Without a URL nothing of it is rendered.
    values["exporters"]["otlp"]["url"] = ""
    _, docs = rendered(tmp_path, values, "off.yaml")
    assert "otlp" not in chart_config(docs)
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    pod = ds["spec"]["template"]["spec"]
    assert [e["name"] for e in pod["containers"][0]["env"]] == ["NODE_NAME"]
    assert not [v for v in pod["volumes"] if v["name"].startswith("otlp")]


def test_readme_prometheus_and_grafana_setup_is_what_it_says(tmp_path):
    """The README's copy-paste setup: its prometheus.yml passes promtool with the shipped rules,
    and its Grafana provisioning files are valid YAML naming the shipped dashboards' folder."""
    text = open(os.path.join(ROOT, "README.md")).read()
    blocks = dict(re.findall(r"cat > (\S+) <<'YAML'\n(.*?)\nYAML\n", text, re.S))
    prom = blocks["/etc/prometheus/prometheus.yml"]
    rules = os.path.join(DEPLOY, "prometheus", "rules.yml")
    (tmp_path / "prometheus.yml").write_text(prom.replace("/etc/prometheus/agtrace-rules.yml",
                                                          rules))
    r = subprocess.run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert yaml.safe_load(prom)["scrape_configs"][0]["job_name"] == "agtrace"
    dash = yaml.safe_load(blocks["/etc/grafana/provisioning/dashboards/agtrace.yaml"])
    assert dash["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/agtrace"
    ds = yaml.safe_load(blocks["/etc/grafana/provisioning/datasources/agtrace.yaml"])
    assert {d["type"] for d in ds["datasources"]} == {"prometheus", "elasticsearch"}
    # The PrometheusRule recipe: the rules indented under spec, valid for the operator's schema.
    assert "$(sed 's/^/  /' deploy/prometheus/rules.yml)" in text
    pr = tmp_path / "rule.yaml"
    pr.write_text("apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\n"
                  "metadata: {name: agtrace}\nspec:\n"
                  + "".join("  " + l for l in open(rules).readlines()))
    r = subprocess.run(["node", os.path.join(ROOT, "tests", "node", "validate_k8s.mjs"), str(pr)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.endswith("PrometheusRule agtrace: valid\n"), r.stdout
