"""Secrets never leave the node, end to end. Every secret format of the corpus
(tests/fixtures/secrets/corpus.json) goes through a real traced agent: in the model's answers,
its tool calls' arguments, the tools' results, the command lines the tools run, the URLs they
fetch, and agtrace's own configuration (an Elasticsearch URL with a password, --redact
patterns). Not one secret value, raw, JSON-escaped once or twice, or URL-encoded, may appear in
any output: the JSONL file, the tree, Elasticsearch, OTLP, Fluentd, the audit trail, /metrics,
agtrace's stderr, the spool and the dead-letter file; and every output is valid UTF-8 JSON."""
import base64
import collections
import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
from harness import FIXTURES, ROOT, Target, Tracer
from test_export import EsServer, free_port
from test_llm import cert, server  # noqa: F401  (module fixtures: TLS material, HTTPS server)
from test_metrics import scrape

AGENT = os.path.join(ROOT, "tests", "targets", "secret_agent.py")
CORPUS = json.load(open(os.path.join(FIXTURES, "secrets", "corpus.json")))
CHUNK = 2500  # bytes of text, arguments or result per tool call (tool fields keep 4 KiB)
ES_PASSWORD = "Es-Passw0rd-Zq81xW"  # in agtrace's own --es URL
STRIPE, AWS_ID = "sk_live_" + "Zx9" * 10, "AKIAQWERTYUIOPASDFGH"
GH_TOKEN = "ghp_" + "Kq7Wm2" * 6
SHORT = 8  # secrets shorter than this are looked for as whole tokens in span text fields only


def tool_call_arguments(doc):
    return json.loads(doc)["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]


def tool_result_content(doc):
    return json.loads(doc)["content"][0]["content"]


def build_plan(bindir, cwd):
    """Steps of at most CHUNK bytes per field, every format in them; each special case (a
    document of its own: escaped quotes, numbers, nesting, invalid JSON) a step of its own.
    Returns the plan, the secrets it holds and the --redact patterns it needs."""
    forms = collections.OrderedDict()
    for e in CORPUS["entries"]:
        if e["context"] in ("special", "clean"):
            continue
        forms.setdefault(e["format"], collections.defaultdict(list))[e["context"]].append(e)
    items, secrets, patterns = [], set(), []
    for fmt, ctxs in forms.items():
        for k in range(max(len(v) for v in ctxs.values())):
            def get(c):
                v = ctxs.get(c, [])
                return v[k] if k < len(v) else (v[0] if v else None)
            ft = get("free_text")
            text = ft["input"]
            if get("json_tool_arguments"):
                args = json.loads(tool_call_arguments(get("json_tool_arguments")["input"]))
            elif get("tool_call_arguments"):
                args = json.loads(tool_call_arguments(get("tool_call_arguments")["input"]))
            else:
                args = {"note": text}
            result = (tool_result_content(get("json_tool_result")["input"])
                      if get("json_tool_result")
                      else tool_result_content(get("tool_result_json")["input"])
                      if get("tool_result_json") else text)
            if get("config_file"):
                result += "\n" + get("config_file")["input"]
            item = {"text": text, "args": args, "result": result, "argv": [], "shell": [],
                    "urls": []}
            if get("argv"):  # run through a stand-in of the program of that name
                argv = get("argv")["argv"]
                item["argv"].append([os.path.basename(argv[0])] + argv[1:])
            if get("command_line"):
                item["shell"].append(get("command_line")["input"])
            if get("url") and get("url")["input"].startswith(("http://", "https://")):
                item["urls"].append(get("url")["input"])
            for c in ctxs.values():
                for e in c:
                    secrets.update(e["secrets"])
            items.append(item)
    steps, cur = [], None
    for it in items:
        if cur and (len(cur["text"]) + len(it["text"]) > CHUNK or
                    len(json.dumps(cur["args"])) + len(json.dumps(it["args"])) > CHUNK or
                    len(cur["result"]) + len(it["result"]) > CHUNK):
            steps.append(cur)
            cur = None
        if not cur:
            cur = {"text": "", "args": {}, "result": "", "argv": [], "shell": [], "urls": []}
        cur["text"] += it["text"] + "\n"
        cur["args"][f"item{len(cur['args'])}"] = it["args"]
        cur["result"] += it["result"] + "\n"
        for k in ("argv", "shell", "urls"):
            cur[k] += it[k]
    steps.append(cur)
    for e in CORPUS["entries"]:
        if e["context"] != "special" or not e["secrets"]:
            continue
        steps.append({"text": "Next item.", "args": {"item": e["id"]}, "result": e["input"],
                      "argv": [], "shell": [], "urls": []})
        secrets.update(e["secrets"])
        patterns += [p for p in e.get("patterns", []) if p not in patterns]
    # Secrets across the 4 KiB a tool's input and output keep: redacted before the cut, so not
    # even their first part is left.
    # ... and across the 256 bytes of a command line the kernel side captures: the argument
    # cut there is left out.
    steps.append({"text": "A long one.", "args": {"blob": "z" * 4070 + " " + STRIPE + " end"},
                  "result": "y" * 4085 + " " + AWS_ID + " tail",
                  "argv": [["app", "x" * 230, GH_TOKEN, "--verbose"]], "shell": [], "urls": []})
    secrets.update({STRIPE, STRIPE[:12], AWS_ID, AWS_ID[:10], GH_TOKEN, GH_TOKEN[:12]})
    names = {a[0] for s in steps for a in s["argv"]}
    for line in (l for s in steps for l in s["shell"]):
        names.update(w for w in re.findall(r"(?:^|[;|&]\s*)([A-Za-z][\w.-]*)", line))
    for n in names:
        if re.fullmatch(r"[A-Za-z][\w.-]*", n) and not os.path.exists(bindir / n):
            os.symlink("/bin/true", bindir / n)
    plan = {"bin": str(bindir), "cwd": str(cwd), "steps": steps, "final": steps[0]["text"]}
    return plan, secrets, patterns


def forms_of(s):
    once = json.dumps(s, ensure_ascii=False)[1:-1]
    return {s, once, json.dumps(s)[1:-1], json.dumps(once, ensure_ascii=False)[1:-1],
            urllib.parse.quote(s, safe=""), urllib.parse.quote_plus(s)}


def text_fields(doc, out):
    """Every string in a decoded document."""
    if isinstance(doc, dict):
        for v in doc.values():
            text_fields(v, out)
    elif isinstance(doc, list):
        for v in doc:
            text_fields(v, out)
    elif isinstance(doc, str):
        out.append(doc)
    return out


def leaks(name, text, secrets, docs=()):
    """(output, secret, form) for every hit: long secrets anywhere in the output's bytes, short
    ones as whole tokens in the strings of its documents."""
    found = []
    strings = "\n".join(s for d in docs for s in text_fields(d, []))
    for s in secrets:
        for f in forms_of(s):
            if len(s) >= SHORT:
                if f in text:
                    found.append((name, s, f))
            elif re.search(r"(?<![A-Za-z0-9])" + re.escape(f) + r"(?![A-Za-z0-9])", strings):
                found.append((name, s, f))
    return found


def strict_jsonl(data):
    """Every line of bytes is one JSON document in valid UTF-8."""
    assert data.endswith(b"\n")
    return [json.loads(l.decode("utf-8", errors="strict")) for l in data.splitlines()]


@pytest.fixture
def backends(tmp_path):
    es = EsServer(free_port(), tmp_path / "es-state.json")
    col = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "tests/servers/otlp_server.py")],
                           stdout=subprocess.PIPE, text=True)
    cport = int(col.stdout.readline().split()[1])
    fstate, fmode = tmp_path / "fluent.json", tmp_path / "fluent.mode"
    flu = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "tests/servers/fluent_server.py"),
                            str(fstate), str(fmode)], stdout=subprocess.PIPE, text=True)
    fport = int(flu.stdout.readline().split()[1])
    plain = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "tests/servers/llm_server.py"),
                              "--plain"], stdout=subprocess.PIPE, text=True)
    pport = int(plain.stdout.readline().split()[1])
    yield {"es": es, "otlp": cport, "fluentd": (fport, fstate), "plain": pport}
    for p in (col, flu, plain):
        p.kill()
        p.wait()
    es.stop()


def test_no_secret_reaches_any_output(tmp_path, server, cert, backends):  # noqa: F811
    bindir, cwd = tmp_path / "bin", tmp_path / "cwd"
    bindir.mkdir()
    cwd.mkdir()
    plan, secrets, patterns = build_plan(bindir, cwd)
    secrets.add(ES_PASSWORD)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    formats = {e["format"] for e in CORPUS["entries"] if e["context"] not in ("special", "clean")}
    assert len(formats) == 131 and len(secrets) >= 180
    es, out, trail = backends["es"], tmp_path / "spans.jsonl", tmp_path / "audit.jsonl"
    spool, dead, mport = tmp_path / "spool", tmp_path / "dead.ndjson", free_port()
    fport, fstate = backends["fluentd"]
    redact = [a for p in patterns for a in ("--redact", p)]
    t = Target(["/usr/bin/python3", AGENT, str(server), str(cert / "cert.pem"),
                str(tmp_path / "plan.json"), str(backends["plain"])])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--output-file", out,
                     "--es", f"http://elastic:{ES_PASSWORD}@127.0.0.1:{es.port}",
                     "--otlp", f"http://127.0.0.1:{backends['otlp']}",
                     "--fluentd", f"127.0.0.1:{fport}", "--spool-dir", spool,
                     "--dead-letter", dead, "--audit", trail,
                     "--metrics", f"127.0.0.1:{mport}", *redact])
        assert t.call("run", timeout=120) == f"done {len(plan['steps'])}"
        time.sleep(1.5)  # metrics refreshed
        metrics = scrape(mport)
        # The same conversation again, as a tree on the terminal's stead.
        assert tr.interrupt(timeout=60) == 0
        tree = Tracer(["-p", t.pid, "-o", "tree", *redact])
        assert t.call("run", timeout=120) == f"done {len(plan['steps'])}"
        t.quit()
        assert tree.finish(timeout=60) == 0
    finally:
        t.kill()

    recs = strict_jsonl(out.read_bytes())
    audit = strict_jsonl(trail.read_bytes())
    with urllib.request.urlopen(f"http://127.0.0.1:{backends['otlp']}/_test/spans",
                                timeout=10) as r:
        otlp = json.loads(r.read().decode("utf-8", errors="strict"))
    es_docs = es.get("/_test/docs")
    fluent = json.loads(fstate.read_bytes().decode("utf-8", errors="strict"))
    leftovers = b"".join(open(os.path.join(d, f), "rb").read() for d, _, fs in os.walk(spool)
                         for f in fs)
    outputs = [
        ("jsonl", out.read_text(), recs),
        ("tree", "".join(tree.out) + "\n".join(tree.err_lines), []),
        ("elasticsearch", json.dumps(es_docs, ensure_ascii=False), [es_docs]),
        ("otlp", json.dumps(otlp, ensure_ascii=False), [otlp]),
        ("fluentd", json.dumps(fluent, ensure_ascii=False), [fluent]),
        ("audit", trail.read_text(), audit),
        ("metrics", metrics, []),
        ("stderr", "\n".join(tr.err_lines), []),
        ("spool", leftovers.decode("utf-8", errors="replace") +
         (dead.read_text() if dead.exists() else ""), []),
    ]
    found = [hit for name, text, docs in outputs for hit in leaks(name, text, secrets, docs)]
    assert not found, f"{len(found)} secrets leaked, the first: {found[:10]}"
    # Short secrets are looked for in the tree's lines as tokens too, its own numbers apart
    # (times, durations, process ids, token counts, exit codes).
    tree_text = re.sub(r"^\S+|\d+\.\d+ ms|\[[^]]*\]|tokens \d+ in / \d+ out|exit \d+", "",
                       "".join(tree.out), flags=re.M)
    assert not [s for s in secrets if len(s) < SHORT and re.search(
        r"(?<![A-Za-z0-9])" + re.escape(s) + r"(?![A-Za-z0-9])", tree_text)]

    # It really went through every place: each step a tool call with its arguments and result
    # (redacted), the commands each ran, the URLs each fetched, all of it exported.
    n = len(plan["steps"])
    tools = [r for r in recs if r["trace_type"] == "tool_call" and r["name"] == "execute_tool work"]
    assert len(tools) == n
    chunks = [(t, s) for t, s in zip(tools, plan["steps"]) if s["text"] not in (
        "Next item.", "A long one.")]
    assert len(chunks) >= 8 and all(
        "[REDACTED]" in t["tool"]["input"] and "[REDACTED]" in t["tool"]["output"]
        for t, _ in chunks)
    long = tools[-1]
    assert len(long["tool"]["input"]) == len(long["tool"]["output"]) == 4096
    assert long["tool"]["output"] == "y" * 4085 + " [REDACTED]"
    assert long["tool"]["input"] == '{"blob":"' + "z" * 4070 + ' [REDACTED] end"}'[:4096 - 4079]
    decisions = [r for r in recs if r["trace_type"] == "decision"]
    assert len(decisions) == n and all("[REDACTED]" in d["decision"]["reasoning"]
                                       for d, s in zip(decisions, plan["steps"]) if s["text"]
                                       not in ("Next item.", "A long one."))
    (cot,) = [r for r in recs if r["trace_type"] == "cot_process"]
    assert "[REDACTED]" in cot["cot"]["final_answer"]
    execs = [r for r in recs if r["name"].startswith("exec ")]
    (cut,) = [r for r in execs if r["name"].startswith("exec app xxx")]
    assert cut["process"]["command_line"] == "app " + "x" * 230 + " [...]"
    argvs = sum(len(s["argv"]) + 2 * len(s["shell"]) for s in plan["steps"])
    assert len(execs) >= argvs - sum(len(s["shell"]) for s in plan["steps"])
    assert sum("[REDACTED]" in r["name"] for r in execs) >= len([a for s in plan["steps"]
                                                                  for a in s["argv"]]) // 2
    fetched = [r for r in recs if r.get("url", {}).get("path", "").startswith("/v1/")
               or "/v1/" in r["name"]]
    assert len(fetched) >= sum(len(s["urls"]) for s in plan["steps"])
    ids = {r["span_id"] for r in recs}
    es_ids = {i for idx in es_docs.values() for i in idx}
    assert es_ids == ids and set(fluent["records"]) == ids
    assert {s["spanId"] for s in otlp["spans"]} == ids
    assert es.get("/_test/stats")["authorization"] == "Basic " + base64.b64encode(
        f"elastic:{ES_PASSWORD}".encode()).decode()  # the password was used, never shown
    (config,) = [a for a in audit if a["type"] == "config"]
    es_arg = config["data"]["argv"][config["data"]["argv"].index("--es") + 1]
    assert es_arg == f"http://elastic:[REDACTED]@127.0.0.1:{es.port}"
    assert "0 lost" in [l for l in tr.err_lines if l.startswith("agtrace: elasticsearch:")][0]


def test_settings_are_never_echoed_with_their_password(nested):
    from harness import NESTED, run_agtrace
    pw = "Cfg-Passw0rd-77xq"
    for args, sentence in [
        (["--es", f"elastic:{pw}@127.0.0.1:9200"],
         '--es "elastic:[REDACTED]@127.0.0.1:9200" is not an http:// or https:// URL with a host '
         '(for example http://127.0.0.1:4318)'),
        (["--otlp", f"ftp://otel:{pw}@127.0.0.1:4318"],
         '--otlp "ftp://otel:[REDACTED]@127.0.0.1:4318" is not an http:// or https:// URL with a '
         'host (for example http://127.0.0.1:4318)'),
        (["--fluentd", f"fd:{pw}@127.0.0.1"],
         '--fluentd "fd:[REDACTED]@127.0.0.1" is not HOST:PORT (for example 127.0.0.1:24224)'),
        (["--k8s-pods-url", f"ftp://k:{pw}@node:10250/pods"],
         "--k8s-pods-url ftp://k:[REDACTED]@node:10250/pods is not an http:// or https:// URL; "
         "give the kubelet's https://NODE:10250/pods or the API server's "
         "/api/v1/pods?fieldSelector=spec.nodeName=NODE"),
    ]:
        r = run_agtrace("attach", "-p", nested.pid, "--uprobe", f"{NESTED}:leaf", "--duration",
                        "1", *args)
        assert r.returncode == 2, r.stderr
        assert r.stderr.splitlines()[-1] == f"agtrace: error: {sentence}"
        assert pw not in r.stderr + r.stdout
