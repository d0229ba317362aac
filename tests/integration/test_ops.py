"""Operating agtrace: its version, logs a collector can read, configuration mistakes with line
and column, conflicting options refused, --dry-run refusing what a run would, `make install`
and the installed binary, and selectors that never pick agtrace's own lineage."""
import datetime
import json
import os
import re
import subprocess
import time

from harness import AGTRACE, NESTED, PYTHON, ROOT, Target, Tracer, run_agtrace

TOKEN = f"ops{os.getpid()}"


def expected_version():
    """What the Makefile puts in: `git describe` of a release tag, else the VERSION file."""
    r = subprocess.run(["git", "describe", "--tags", "--match", "v[0-9]*", "--dirty"], cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode == 0 and r.stdout.strip():
        return r.stdout.strip().removeprefix("v")
    return open(os.path.join(ROOT, "VERSION")).read().strip()


def test_version_command_and_option():
    r = run_agtrace("version")
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0] == f"agtrace {expected_version()}"
    assert re.fullmatch(r"revision [0-9a-f]{12}", lines[1]), lines
    assert re.fullmatch(r"libbpf v\d+\.\d+", lines[2]), lines
    assert len(lines) == 3
    assert run_agtrace("--version").stdout == r.stdout
    r = run_agtrace("version", "extra")
    assert (r.returncode, r.stderr) == (
        2, 'agtrace: error: `agtrace version` takes no arguments, got "extra"\n')
    # The version is also in the image's build: the Dockerfile copies the VERSION file.
    assert "COPY Makefile VERSION ./" in open(os.path.join(ROOT, "deploy", "Dockerfile")).read()


def json_logs(stderr):
    """Every stderr line as a JSON log record: time (RFC 3339 UTC, microseconds), level, msg."""
    out = []
    for line in stderr.splitlines():
        rec = json.loads(line)
        assert list(rec) == ["time", "level", "msg"], rec
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", rec["time"]), rec
        t = datetime.datetime.strptime(rec["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert abs((datetime.datetime.utcnow() - t).total_seconds()) < 120
        out.append(rec)
    return out


def test_json_logs_with_timestamps_and_levels():
    t = Target([NESTED])
    try:
        r = subprocess.run([AGTRACE, "--log-format", "json", "attach", "-p", str(t.pid),
                            "--uprobe", f"{NESTED}:leaf", "--duration", "1", "-o", "jsonl"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        logs = json_logs(r.stderr)
        assert {l["level"] for l in logs} == {"info"}
        assert logs[0]["msg"] == f"PID {t.pid} (nested): 2 probe links"
        assert re.match(r"attached \d+ probe links \(1 probes\) to 1 process", logs[1]["msg"])
        assert logs[-1]["msg"].startswith("summary: ")
        # the same, as attach options; warn hides info
        r = subprocess.run([AGTRACE, "attach", "-p", str(t.pid), "--uprobe", f"{NESTED}:leaf",
                            "--duration", "1", "-o", "jsonl", "--log-format", "json",
                            "--log-level", "warn"], capture_output=True, text=True, timeout=30)
        assert (r.returncode, r.stderr) == (0, "")
        # an error is one JSON line, exit 2
        r = subprocess.run([AGTRACE, "--log-format=json", "attach", "-p", str(t.pid), "--uprobe",
                            f"{NESTED}:no_such_function_x"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 2
        (rec,) = json_logs(r.stderr)
        assert rec["level"] == "error" and "no_such_function_x" in rec["msg"]
    finally:
        t.kill()


def test_log_options_refused_when_wrong_or_twice():
    for argv, sentence in (
            (["--log-level", "loud", "version"],
             '--log-level needs error, warn, info or debug, got "loud"'),
            (["--log-format", "xml", "version"], '--log-format needs text or json, got "xml"'),
            (["-v", "--log-level", "info", "version"],
             "the log level is given twice (-v is --log-level debug); give it once"),
            (["--log-format", "text", "--log-format", "json", "version"],
             "--log-format is given twice; give it once"),
            (["--log-level"], "option --log-level needs a value; see `agtrace --help`"),
            (["--log-level", "debug", "attach", "-p", "1", "--log-level", "info"],
             "the log level is given twice, before the command and after it, differently; "
             "give it once"),
            (["attach", "-p", "1", "--duration", "5", "--duration", "6"],
             "--duration is given twice; give it once; see `agtrace attach --help`"),
            (["attach", "-p", "1", "--tcp", "--no-tcp"],
             "--tcp and --no-tcp contradict each other; give one; see `agtrace attach --help`"),
            (["attach", "-p", "1", "-o", "tree", "--log-format", "json"],
             "-o tree is a view for a person at a terminal and --log-format json is for a log "
             "collector; use -o jsonl with JSON logs; see `agtrace attach --help`")):
        r = run_agtrace(*argv)
        assert (r.returncode, r.stdout, r.stderr) == (2, "", f"agtrace: error: {sentence}\n"), argv


def test_config_errors_name_line_and_column(tmp_path):
    cases = (
        ('{\n  "targets": {"pids": [1]},\n  "spool": {"overflow": "middle"}\n}\n',
         ':3:25: $.spool.overflow: --spool-overflow needs oldest or newest, got "middle"; see '
         'the configuration section of the README'),
        ('{\n  "targets": {"pids": [1]},\n  "otlp": {"url": "http://o:4318"},\n'
         '  "otlp": {"url": "http://p:4318"}\n}\n',
         ':4:3: $.otlp: is given twice in this object; give it once; see the configuration '
         'section of the README'),
        ('{\n  "targets": {"pids": [1]}\n  "duration": 5\n}\n',
         ':3:3: not valid JSON here (at `"duration": 5`); fix the syntax'),
        ('{\n  "targets": {\n    "pids": [1],\n    "selec": []\n  }\n}\n',
         ':4:5: $.targets.selec: unknown key; see the configuration section of the README'),
    )
    for i, (text, where) in enumerate(cases):
        cfg = tmp_path / f"c{i}.json"
        cfg.write_text(text)
        r = run_agtrace("run", "--config", cfg, "--dry-run")
        assert (r.returncode, r.stdout, r.stderr) == (2, "", f"agtrace: error: {cfg}{where}\n")


def test_dry_run_refuses_what_a_run_would(tmp_path):
    """--dry-run checks every exporter setting a run would refuse, with the run's sentence,
    and a real run refuses them before attaching anything."""
    ca = tmp_path / "not-a-ca.pem"
    ca.write_text("hello\n")
    key = tmp_path / "es.key"
    key.write_text("a2V5OnNlY3JldA==\n")
    cases = (
        (["--otlp", "otel-collector:4318"],
         '--otlp "otel-collector:4318" is not an http:// or https:// URL with a host (for '
         'example http://127.0.0.1:4318)'),
        (["--otlp", "http://:4318/v1/traces"],
         '--otlp "http://:4318/v1/traces" is not an http:// or https:// URL with a host (for '
         'example http://127.0.0.1:4318)'),
        (["--es", "ftp://es:9200"],
         '--es "ftp://es:9200" is not an http:// or https:// URL with a host (for example '
         'http://127.0.0.1:4318)'),
        (["--fluentd", "fluentd"],
         '--fluentd "fluentd" is not HOST:PORT (for example 127.0.0.1:24224)'),
        (["--fluentd", "fluentd:70000"],
         '--fluentd "fluentd:70000" is not HOST:PORT (for example 127.0.0.1:24224)'),
        (["--es", "https://es:9200", "--es-api-key-file", tmp_path / "missing.key"],
         f"--es-api-key-file {tmp_path}/missing.key cannot be read: No such file or directory"),
        (["--es", "https://es:9200", "--es-ca", ca],
         f"--es-ca {ca} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        (["--es", "https://es:9200", "--es-user", "elastic"],
         "--es-user elastic needs its password: --es-password-file FILE or $AGTRACE_ES_PASSWORD"),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGTRACE_ES_")}
    for args, sentence in cases:
        for extra in (["--dry-run"], ["--duration", "1"]):
            r = subprocess.run([AGTRACE, "attach", "-p", str(os.getpid()), "--no-tcp",
                                *map(str, args), *extra], capture_output=True, text=True,
                               env=env, timeout=30)
            assert (r.returncode, r.stdout, r.stderr) == (2, "", f"agtrace: error: {sentence}\n"), \
                (args, extra)
    # and what is right passes
    r = subprocess.run([AGTRACE, "attach", "-p", str(os.getpid()), "--dry-run", "--otlp",
                        "http://[::1]:4318", "--es", "https://es.logging.svc:9200",
                        "--es-api-key-file", str(key), "--fluentd", "tcp://fluentd:24224"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("configuration OK: 1 PID, 0 selectors")


def make_pair(d, name):
    """A self-signed certificate and its unencrypted key, as openssl makes them."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", d / f"{name}.key", "-out", d / f"{name}.crt", "-subj",
                    f"/CN={name}"], check=True, capture_output=True)
    return d / f"{name}.crt", d / f"{name}.key"


def test_otlp_tls_files_are_checked_under_their_own_names(tmp_path):
    """The OTLP exporter's CA, client certificate and key are checked before anything is
    attached, by --dry-run and by a run alike, and a mistake names the option or the variable
    it came from (never Elasticsearch's --es-ca)."""
    bad = tmp_path / "not-pem.txt"
    bad.write_text("hello\n")
    crt, key = make_pair(tmp_path, "client")
    other_crt, other_key = make_pair(tmp_path, "other")
    enc = tmp_path / "enc.key"
    subprocess.run(["openssl", "pkey", "-in", key, "-aes256", "-passout", "pass:x", "-out", enc],
                   check=True)
    url = ["--otlp", "https://collector.example:4318"]
    cases = (
        (["--otlp-ca", bad], {},
         f"--otlp-ca {bad} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        ([], {"OTEL_EXPORTER_OTLP_CERTIFICATE": bad},
         f"$OTEL_EXPORTER_OTLP_CERTIFICATE {bad} holds no PEM certificate "
         "(-----BEGIN CERTIFICATE-----)"),
        ([], {"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": tmp_path / "missing.pem"},
         f"$OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE {tmp_path}/missing.pem cannot be read: "
         "No such file or directory"),
        (["--otlp-client-cert", key, "--otlp-client-key", key], {},
         f"--otlp-client-cert {key} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        ([], {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": crt,
              "OTEL_EXPORTER_OTLP_CLIENT_KEY": other_crt},
         f"$OTEL_EXPORTER_OTLP_CLIENT_KEY {other_crt} holds no PEM private key "
         "(-----BEGIN PRIVATE KEY-----)"),
        (["--otlp-client-cert", crt, "--otlp-client-key", other_key], {},
         f"--otlp-client-key {other_key} is not the key of the certificate "
         f"--otlp-client-cert {crt}"),
        (["--otlp-client-cert", crt], {},
         f"--otlp-client-cert {crt} has no private key in it: give its key with "
         "--otlp-client-key"),
        (["--otlp-client-key", key], {},
         f"--otlp-client-key {key} needs its certificate: --otlp-client-cert FILE or "
         "$OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
        (["--otlp-client-cert", crt, "--otlp-client-key", enc], {},
         f"--otlp-client-key {enc} is encrypted; give the key unencrypted (openssl pkey -in "
         "KEY -out PLAIN), kept in a file only agtrace can read"),
        # the option wins over the variable, and is the one named
        (["--otlp-ca", bad], {"OTEL_EXPORTER_OTLP_CERTIFICATE": crt},
         f"--otlp-ca {bad} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    for args, env, sentence in cases:
        for extra in (["--dry-run"], ["--duration", "1"]):
            r = subprocess.run([AGTRACE, "attach", "-p", str(os.getpid()), "--no-tcp", *url,
                                *map(str, args), *extra], capture_output=True, text=True,
                               env=dict(base, **{k: str(v) for k, v in env.items()}),
                               timeout=30)
            assert (r.returncode, r.stdout, r.stderr) == (2, "", f"agtrace: error: {sentence}\n"), \
                (args, env, extra)
    # an endpoint from the environment is named by its variable
    for var in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        r = subprocess.run([AGTRACE, "attach", "-p", str(os.getpid()), "--dry-run"],
                           capture_output=True, text=True, env=dict(base, **{var: "otel:4318"}),
                           timeout=30)
        assert (r.returncode, r.stderr) == (
            2, f'agtrace: error: ${var} "otel:4318" is not an http:// or https:// URL with a host '
               '(for example http://127.0.0.1:4318)\n')
    # a right pair and CA pass, the key also inside the certificate's file
    both = tmp_path / "both.pem"
    both.write_text(crt.read_text() + key.read_text())
    for args, env in ((["--otlp-ca", other_crt, "--otlp-client-cert", crt, "--otlp-client-key",
                        key], {}),
                      ([], {"OTEL_EXPORTER_OTLP_CERTIFICATE": other_crt,
                            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": both})):
        r = subprocess.run([AGTRACE, "attach", "-p", str(os.getpid()), "--dry-run", *url,
                            *map(str, args)], capture_output=True, text=True,
                           env=dict(base, **{k: str(v) for k, v in env.items()}), timeout=30)
        assert r.returncode == 0 and r.stdout.startswith("configuration OK"), r.stderr


def test_make_install_and_the_installed_binary(tmp_path):
    """`make install` puts the binary, the probe specs, a man page and bash completion under
    PREFIX; the installed binary finds its specs there (no AGTRACE_PROBES_DIR, run from
    elsewhere)."""
    prefix = tmp_path / "usr"
    r = subprocess.run(["make", "-s", "-o", "agtrace", "install", f"PREFIX={prefix}"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    shipped = sorted(os.listdir(os.path.join(ROOT, "probes")))
    assert sorted(os.listdir(prefix / "share" / "agtrace" / "probes")) == shipped
    env = {k: v for k, v in os.environ.items() if k != "AGTRACE_PROBES_DIR"}
    r = subprocess.run([str(prefix / "bin" / "agtrace"), "probes", "list"], capture_output=True,
                       text=True, cwd="/", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"probe specs in {prefix}/share/agtrace/probes:"
    names = [l.split()[0] for l in r.stdout.splitlines()[1:] if not l.startswith(" ")]
    assert names == [s[:-5] for s in shipped if s.endswith(".json")]
    r = subprocess.run([str(prefix / "bin" / "agtrace"), "attach", "-p", str(os.getpid()),
                        "--probes", "python-gc", "--dry-run"], capture_output=True, text=True,
                       cwd="/", env=env)
    assert r.returncode == 0 and r.stdout.startswith("configuration OK: 1 PID, 0 selectors, "
                                                     "1 probe spec"), r.stdout + r.stderr
    # The man page renders without a warning and documents what the binary has.
    man = prefix / "share" / "man" / "man1" / "agtrace.1"
    r = subprocess.run(["man", "--warnings", "-l", str(man)], capture_output=True, text=True,
                       env=dict(env, MANWIDTH="100", MAN_KEEP_FORMATTING="0"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    page = re.sub(r".\x08", "", r.stdout)
    for word in ("--log-format", "--log-level", "/readyz", "agtrace_sampled_events_total",
                 "EXIT STATUS", "AGTRACE_PROBES_DIR", "../share/agtrace/probes"):
        assert word in page, word
    # Bash completion: commands, attach's options (read from the installed binary's --help),
    # values, shipped spec names.
    comp = prefix / "share" / "bash-completion" / "completions" / "agtrace"

    def complete(*words):
        script = (f"source {comp}; COMP_WORDS=({' '.join(words)}); "
                  f"COMP_CWORD={len(words) - 1}; _agtrace; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              env=dict(env, PATH=f"{prefix}/bin:" + env["PATH"])).stdout.split()

    assert complete("agtrace", "ver") == ["version"]
    assert complete("agtrace", "attach", "--log-f") == ["--log-format"]
    assert complete("agtrace", "attach", "--log-level", "d") == ["debug"]
    assert complete("agtrace", "probes", "") == ["list", "check"]
    assert complete("agtrace", "attach", "--probes", "python-") == ["python-audit", "python-gc"]
    assert "--es-drain-seconds" in complete("agtrace", "attach", "--es-")
    # (attach --help is attach's own page, not the command list: what the completion reads)
    r = subprocess.run([str(prefix / "bin" / "agtrace"), "attach", "--help"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout.startswith("Usage: agtrace attach ")


def test_selector_never_matches_agtrace_or_its_ancestors():
    """A shell that runs agtrace has the selector's words in its command line: it is not
    traced, nor is agtrace; a process started apart with the same words is."""
    other = Target([PYTHON, "-c", "import sys; print('ready 1', flush=True); sys.stdin.readline()",
                    TOKEN])
    try:
        script = (f"{AGTRACE} attach --select 'cmdline=*{TOKEN}*' --no-tcp -o jsonl "
                  f"--duration 2 # {TOKEN}")
        r = subprocess.run(["sh", "-c", script + "; true"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        attached = [json.loads(l) for l in r.stdout.splitlines()
                    if l.startswith("{") and json.loads(l)["name"].startswith("attach")]
        assert [a["process"]["pid"] for a in attached] == [other.pid], r.stdout
        assert "discovery: 1 selector; 1 running process matched" in r.stderr
    finally:
        other.kill()
