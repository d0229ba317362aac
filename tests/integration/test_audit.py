"""The audit trail: what was attached, configured, sampled and decided, chained record to record,
and `agtrace audit verify` naming the first record changed, removed or reordered. With
--audit-key the chain is HMAC-SHA256, so forged and re-hashed records are found too;
checkpoints and the seal at a clean end find a cut tail; a torn last line is recovered at the
next start as a gap record; a trail that cannot be written (a full disk) is counted, warned
about once, fails the run and never verifies as intact."""
import hashlib
import hmac
import json
import os
import subprocess
import time

import pytest
from harness import AGTRACE, NESTED, Target, Tracer, run_agtrace
from test_agent import AGENT  # noqa: F401
from test_llm import PY, cert, server  # noqa: F401
from test_export import es  # noqa: F401  (the Elasticsearch stand-in)
from test_metrics import free_port, scrape, value
from test_otlp import attrs, collector  # noqa: F401  (the strict OTLP collector stand-in)

UNKEYED_NOTE = ("unkeyed: a SHA-256 chain detects accidental damage, not forgery (anyone can "
                "recompute it); write trails with --audit-key")
NOT_SEALED = "not sealed (the run did not end cleanly, or the tail was cut)"


def verify(path, *opts):
    return subprocess.run([AGTRACE, "audit", "verify", *map(str, opts), str(path)],
                          capture_output=True, text=True)


def records(path):
    return [json.loads(l) for l in path.read_text().splitlines()]


def dump(rec):
    return json.dumps(rec, separators=(",", ":")) + "\n"


def forge(rec, prev, key=None, field="hash"):
    """One record as someone who knows the scheme writes it: linked to prev, its digest
    SHA-256 (or HMAC with key) of prev and the record without its digest."""
    r = {k: v for k, v in rec.items() if k not in ("hash", "mac")}
    r["prev"] = prev
    msg = (prev + json.dumps(r, separators=(",", ":"))).encode()
    r[field] = hmac.new(key, msg, hashlib.sha256).hexdigest() if key else \
        hashlib.sha256(msg).hexdigest()
    return r


def rechain(recs, key=None, field="hash"):
    """The whole chain recomputed, checkpoints' and seals' counts and heads included."""
    prev, out = "", []
    for i, rec in enumerate(recs):
        rec = dict(rec, seq=i)
        if rec["type"] in ("checkpoint", "seal"):
            rec["data"] = dict(rec["data"], records=i, head=prev)
        rec = forge(rec, prev, key, field)
        prev = rec[field]
        out.append(dump(rec))
    return out


@pytest.fixture
def trail(tmp_path, server, cert):  # noqa: F811
    path = tmp_path / "audit.jsonl"
    t = Target([PY, AGENT, str(server), str(cert / "cert.pem")])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--audit", path])
        assert t.call("openai Paris true") == "steps 2"
        subprocess.run([AGTRACE, "sample", "set", "--pid", str(tr.p.pid), "func=0.5"], check=True, capture_output=True)
        tr.wait_for("sampling changed")
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    return path, t.pid, tr


def test_trail_records_what_happened(trail):
    path, pid, tr = trail
    recs = records(path)
    assert [r["type"] for r in recs] == ["config", "attach", "decision", "tool_call", "sampling",
                                         "exit", "seal"]
    assert [r["seq"] for r in recs] == list(range(7))
    assert recs[0]["data"]["argv"][:3] == ["attach", "-p", str(pid)]
    assert recs[1]["data"] == {"pid": pid, "name": "attach python3", "message": (
        "6 probe links; TLS: OpenSSL in /usr/lib/x86_64-linux-gnu/libssl.so.3 (library); ready "
        "in libgnutls.so.30.34.3")}
    assert recs[2]["data"]["name"] == "decision get_weather"
    assert recs[3]["data"]["name"] == "execute_tool get_weather"
    decision = [r for r in tr.records if r["trace_type"] == "decision"][0]
    assert recs[2]["data"]["span_id"] == decision["span_id"]
    assert len(recs[2]["data"]["sha256"]) == 64
    assert recs[4]["data"]["message"] == "func   ratio 0.5  rate unlimited  payload bytes default"
    assert recs[0]["prev"] == "" and all(recs[i]["prev"] == recs[i - 1]["hash"] for i in range(1, 7))
    # The seal: the count of records before it and the head of the chain.
    assert recs[6]["data"] == {"records": 6, "head": recs[5]["hash"], "write_failures": 0}
    r = verify(path)
    assert r.returncode == 0
    assert r.stdout == f"{path}: 7 records, chain intact, sealed\n{path}: {UNKEYED_NOTE}\n"


def test_changed_removed_reordered_records_are_found(trail):
    path, _, _ = trail
    lines = path.read_text().splitlines(keepends=True)

    path.write_text("".join(lines[:3] + [lines[3].replace("execute_tool", "execute_toot")] +
                            lines[4:]))
    r = verify(path)
    assert r.returncode == 2
    assert r.stderr == (f"agtrace: error: {path}: line 4 (record 3) was changed: its hash does "
                        f"not match its content\n")

    path.write_text("".join(lines[:2] + lines[3:]))
    r = verify(path)
    assert r.returncode == 2
    assert r.stderr == (f"agtrace: error: {path}: line 3 (record 2) follows a gap: a record "
                        f"before it was removed\n")

    path.write_text("".join(lines[:2] + [lines[3], lines[2]] + lines[4:]))
    r = verify(path)
    assert r.returncode == 2
    assert r.stderr.startswith(f"agtrace: error: {path}: line 3 (record 2) follows a gap")

    # A record recomputed by someone who knows the scheme still breaks the chain after it.
    rec = json.loads(lines[3])
    rec["data"]["name"] = "execute_tool forged"
    path.write_text("".join(lines[:3] + [json.dumps(rec, separators=(",", ":")) + "\n"] +
                            lines[4:]))
    assert verify(path).returncode == 2

    path.write_text("".join(lines))  # restored: intact again, and appending continues the chain
    assert verify(path).returncode == 0


def test_unkeyed_forgery_only_the_seal_and_anchors_can_find(trail):
    """Without a key anyone can recompute the chain: what is true of each forgery."""
    path, _, _ = trail
    lines = path.read_text().splitlines(keepends=True)
    recs = records(path)
    seal_anchor = f"7:{recs[6]['hash']}"

    # A record appended after the seal with a recomputed hash: found only because the trail
    # no longer ends in a seal.
    forged = {"seq": 7, "@timestamp": recs[6]["@timestamp"], "host": recs[6]["host"],
              "type": "tool_call", "data": {"name": "execute_tool forged"}}
    path.write_text("".join(rechain(recs + [forged])))
    r = verify(path)
    assert r.returncode == 2
    assert r.stdout.startswith(f"{path}: 8 records, chain unbroken, not sealed\n")
    assert r.stderr == f"agtrace: error: {path}: {NOT_SEALED}\n"

    # ... followed by a recomputed seal: not found, not even with the seal's anchor (an anchor
    # proves what existed, not that nothing came after).
    path.write_text("".join(rechain(recs + [forged, recs[6]])))
    r = verify(path, "--anchor", seal_anchor)
    assert r.returncode == 0
    assert r.stdout.startswith(f"{path}: 9 records, chain intact, sealed\n{path}: {UNKEYED_NOTE}\n")

    # A record changed and the whole chain re-hashed: not found without an anchor, found with
    # one (the anchored record is no longer the one the collector saw).
    recs[3]["data"]["name"] = "execute_tool forged"
    path.write_text("".join(rechain(recs)))
    assert verify(path).returncode == 0
    r = verify(path, "--anchor", seal_anchor)
    assert r.returncode == 2
    assert r.stderr == (f"agtrace: error: {path}: record 6 is not the anchored one: the trail "
                        f"was rewritten since the anchor\n")
    path.write_text("".join(lines))


@pytest.fixture
def key(tmp_path):
    k = tmp_path / "audit.key"
    k.write_bytes(os.urandom(32))
    k.chmod(0o600)
    return k


def nested_targets(n):
    return [Target([NESTED]) for _ in range(n)]


def target_args(ts):
    return [a for t in ts for a in ("-p", t.pid)] + ["--uprobe", f"{NESTED}:outer", "-o", "jsonl"]


def keyed_run(path, key):
    """A real run on three tests/targets/nested.c, keyed, a checkpoint every 2 records. Function
    spans are not audited; each target's attach and exit are."""
    ts = nested_targets(3)
    try:
        tr = Tracer(target_args(ts) + ["--audit", path, "--audit-key", key,
                                       "--audit-checkpoint-records", "2"])
        for t in ts:
            assert t.call("outer 3") == "outer 15"
        for t in ts:
            t.quit()
        assert tr.finish() == 0
    finally:
        for t in ts:
            t.kill()
    return tr


KEYED_TYPES = ["config", "attach", "checkpoint", "attach", "attach", "checkpoint", "exit", "exit",
               "checkpoint", "exit", "seal"]


@pytest.fixture
def keyed(tmp_path, key):
    path = tmp_path / "keyed.jsonl"
    tr = keyed_run(path, key)
    return path, key, tr


def intact_keyed(path, n):
    return (f"{path}: {n} records, chain intact, sealed\n"
            f"{path}: keyed: every record's HMAC-SHA256 verifies with the key\n")


def test_keyed_trail_from_a_real_run_verifies(keyed):
    path, key, tr = keyed
    recs = records(path)
    assert [r["type"] for r in recs] == KEYED_TYPES
    assert all("mac" in r and "hash" not in r for r in recs)
    assert recs[0]["data"]["argv"][-4:] == ["--audit-key", str(key), "--audit-checkpoint-records",
                                            "2"]
    # Checkpoints and the seal: the count of records before them and the head of the chain.
    for i in (2, 5, 8, 10):
        assert recs[i]["data"] == {"records": i, "head": recs[i - 1]["mac"], "write_failures": 0}
    # Each mac is HMAC-SHA256(key, prev || the record without its mac).
    k = key.read_bytes()
    for i, line in enumerate(path.read_text().splitlines()):
        body, mac = line.rsplit(',"mac":"', 1)
        prev = recs[i - 1]["mac"] if i else ""
        assert recs[i]["prev"] == prev
        assert mac == hmac.new(k, (prev + body + "}").encode(), hashlib.sha256).hexdigest() + '"}'
    r = verify(path, "--key", key)
    assert r.returncode == 0 and r.stdout == intact_keyed(path, 11) and r.stderr == ""
    # The seal's anchor, as the run logs it (the log leaves the host): its count and its mac.
    anchors = [l for l in tr.err_lines if l.startswith("agtrace: audit trail")]
    assert anchors == [f"agtrace: audit trail {path}: seal at record 10; anchor "
                       f"11:{recs[10]['mac']}"]
    r = verify(path, "--key", key, "--anchor", anchors[0].rsplit(" ", 1)[1])
    assert r.returncode == 0 and "anchor found: record 10 is the anchored one, 0 records" in r.stdout
    # The anchor a collector keeps from the last checkpoint: the count up to it, its mac.
    r = verify(path, "--key", key, "--anchor", f"9:{recs[8]['mac']}")
    assert r.returncode == 0
    assert r.stdout == intact_keyed(path, 11) + (f"{path}: anchor found: record 8 is the "
                                                 f"anchored one, 2 records after it\n")
    # Without the key a keyed trail is not checked at all.
    r = verify(path)
    assert r.returncode == 2
    assert r.stderr == (f"agtrace: error: {path}: the trail is keyed (HMAC-SHA256): give its key "
                        f"with --key FILE to verify it\n")


def test_keyed_forgeries_are_found(keyed, tmp_path):
    path, key, _ = keyed
    lines = path.read_text().splitlines(keepends=True)
    recs = records(path)
    k = key.read_bytes()

    def check(new_lines, *opts):
        path.write_text("".join(new_lines))
        return verify(path, "--key", key, *opts)

    changed = "agtrace: error: {p}: line {l} (record {n}) was changed or forged: its mac does not " \
              "match its content with this key\n"
    # edited
    r = check(lines[:3] + [lines[3].replace("2 probe links", "0 probe links")] + lines[4:])
    assert r.returncode == 2 and r.stderr == changed.format(p=path, l=4, n=3)
    # deleted inside
    r = check(lines[:3] + lines[4:])
    assert r.returncode == 2
    assert r.stderr == (f"agtrace: error: {path}: line 4 (record 3) follows a gap: a record "
                        f"before it was removed\n")
    # swapped
    r = check(lines[:3] + [lines[4], lines[3]] + lines[5:])
    assert r.returncode == 2
    assert r.stderr.startswith(f"agtrace: error: {path}: line 4 (record 3) follows a gap")
    # the last 3 records dropped (the last checkpoint, an exit, the seal): found by the missing
    # seal, and against the anchor of that checkpoint
    r = check(lines[:8])
    assert r.returncode == 2
    assert r.stdout.startswith(f"{path}: 8 records, chain unbroken, not sealed\n")
    assert r.stderr == f"agtrace: error: {path}: {NOT_SEALED}\n"
    r = check(lines[:8], "--anchor", f"9:{recs[8]['mac']}")
    assert r.returncode == 2
    assert r.stderr == (f"agtrace: error: {path}: {NOT_SEALED}\n"
                        f"agtrace: error: {path}: truncated: the anchor names 9 records but the "
                        f"trail has 8, so at least 1 record was cut\n")
    # an empty file
    r = check([])
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr == (f"agtrace: error: {path}: the trail is empty: it has no record, not even "
                        f"the run's configuration, so it cannot be intact (it was emptied, or "
                        f"never written)\n")
    # a record (and a seal) appended with recomputed hashes, or macs under a guessed key
    forged = {"seq": 11, "@timestamp": recs[10]["@timestamp"], "host": recs[10]["host"],
              "type": "tool_call", "data": {"name": "execute_tool forged"}}
    for mac_key in (None, os.urandom(32)):
        r = check(lines + [dump(forge(forged, recs[10]["mac"], mac_key, "mac"))])
        assert r.returncode == 2 and r.stderr == changed.format(p=path, l=12, n=11)
    # the whole chain re-hashed without the key: undetectable without it, found with it
    recs[3]["data"]["message"] = "0 probe links"
    path.write_text("".join(rechain(recs)))
    r = verify(path)
    assert r.returncode == 0 and UNKEYED_NOTE in r.stdout
    r = verify(path, "--key", key)
    assert r.returncode == 2
    assert r.stderr == (f"agtrace: error: {path}: line 1 (record 0) has no mac: the trail was "
                        f"written without a key, or rewritten without it\n")
    r = check(rechain(recs, os.urandom(32), "mac"))
    assert r.returncode == 2 and r.stderr == changed.format(p=path, l=1, n=0)
    # another key
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    other.chmod(0o600)
    path.write_text("".join(lines))
    r = verify(path, "--key", other)
    assert r.returncode == 2 and r.stderr == changed.format(p=path, l=1, n=0)
    assert verify(path, "--key", key).returncode == 0


def test_torn_last_line_is_reported_then_recovered(keyed):
    path, key, _ = keyed
    whole = path.read_text()
    torn = whole.splitlines(keepends=True)[6][:40]  # a record cut short, no newline
    path.write_text(whole + torn)
    r = verify(path, "--key", key)
    assert r.returncode == 2
    assert r.stdout.startswith(f"{path}: 11 records, chain unbroken, not sealed\n")
    assert r.stderr == (f"agtrace: error: {path}: line 12 is torn: its 40 bytes end without a "
                        f"newline (a write cut short); the next `agtrace attach --audit` on this "
                        f"trail cuts it and records a gap\n"
                        f"agtrace: error: {path}: {NOT_SEALED}\n")

    # The next start cuts it, says so in a gap record, and the chain goes on.
    tr = keyed_run(path, key)
    assert not any(l.startswith("agtrace: error") for l in tr.err_lines), tr.err_lines
    assert path.read_text().startswith(whole)
    recs = records(path)
    assert [r["type"] for r in recs[11:]] == ["gap"] + KEYED_TYPES
    gap = recs[11]
    assert gap["prev"] == recs[10]["mac"] and recs[12]["prev"] == gap["mac"]
    assert gap["data"] == {
        "reason": "torn_tail", "bytes": 40, "offset": len(whole.encode()),
        "sha256": hashlib.sha256(torn.encode()).hexdigest(),
        "message": "a torn last line of 40 bytes (a write cut short: the run before did not end "
                   "cleanly) was cut at restart; the record it held is lost"}
    r = verify(path, "--key", key)
    # Every mac verifies and the trail is sealed, but a record was lost: not intact.
    assert r.returncode == 2
    assert r.stdout == (f"{path}: 23 records, chain unbroken, sealed, gaps recorded\n"
                        f"{path}: keyed: every record's HMAC-SHA256 verifies with the key\n")
    assert r.stderr == (f"agtrace: error: {path}: 1 gap recorded, the first at record 11: "
                        f"{gap['data']['message']}\n")


def test_audit_key_must_be_private(nested, key, tmp_path):
    key.chmod(0o640)
    r = run_agtrace("attach", "-p", nested.pid, "--uprobe", f"{NESTED}:outer", "--audit",
                    tmp_path / "t.jsonl", "--audit-key", key, "--duration", "1")
    assert r.returncode == 2
    assert r.stderr.endswith(
        f"agtrace: error: the audit key {key} can be read by group or others (mode 0640): the "
        f"traced workload must not be able to read it; chmod 600 {key}\n")
    r = run_agtrace("attach", "-p", nested.pid, "--audit-key", key)
    assert r.returncode == 2
    assert r.stderr == ("agtrace: error: --audit-key and --audit-checkpoint-* need --audit FILE; "
                        "see `agtrace attach --help`\n")


@pytest.fixture
def tiny_fs(tmp_path):
    """A 64 KiB tmpfs, filled up: no audit record fits."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt], check=True)
    try:
        with open(mnt / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"x" * 4096)
                    f.flush()
            except OSError:
                pass
        yield mnt
    finally:
        subprocess.run(["umount", "-l", mnt], check=False)


def full_disk_run(trail, port, before_exit=None):
    """Two nested targets: config and two attach records while the disk is full, then
    before_exit(), then their two exits and the seal."""
    ts = nested_targets(2)
    try:
        tr = Tracer(target_args(ts) + ["--audit", trail, "--metrics", f"127.0.0.1:{port}"])
        time.sleep(1.2)  # self metrics refresh once a second
        text = scrape(port)
        if before_exit:
            before_exit()
        for t in ts:
            t.quit()
        rc = tr.finish()
    finally:
        for t in ts:
            t.kill()
    return rc, tr, text


def warnings_about(tr, trail):
    return [l for l in tr.err_lines if f"cannot write the audit trail {trail}" in l]


def test_full_disk_stays_full(tiny_fs):
    trail, port = tiny_fs / "audit.jsonl", free_port()
    rc, tr, text = full_disk_run(trail, port)
    assert rc == 1
    assert warnings_about(tr, trail) == [
        f"agtrace: warning: cannot write the audit trail {trail}: No space left on device; audit "
        f"records are lost until a write succeeds again (counted in "
        f"agtrace_audit_write_failures_total, and then disclosed in the trail by a gap record), "
        f"and agtrace will exit non-zero"]
    # config and two attach records
    assert value(text, "agtrace_audit_write_failures_total") == 3
    assert value(text, "agtrace_audit_records_total") == 0
    r = verify(trail)
    assert r.returncode == 2 and "intact," not in r.stdout
    assert r.stderr.startswith(f"agtrace: error: {trail}: the trail is empty")


def test_full_disk_freed_midway_is_disclosed(tiny_fs):
    trail, port = tiny_fs / "audit.jsonl", free_port()
    rc, tr, text = full_disk_run(trail, port, before_exit=lambda: os.unlink(tiny_fs / "filler"))
    assert rc == 1
    assert len(warnings_about(tr, trail)) == 1
    assert value(text, "agtrace_audit_write_failures_total") == 3
    recs = records(trail)
    assert [r["type"] for r in recs] == ["gap", "exit", "exit", "seal"]
    assert recs[0]["data"] == {"reason": "write_failed", "lost": 3,
                               "error": "No space left on device",
                               "message": "3 records could not be written (No space left on "
                                          "device)"}
    assert recs[3]["data"]["write_failures"] == 3
    r = verify(trail)
    assert r.returncode == 2
    assert r.stdout.startswith(f"{trail}: 4 records, chain unbroken, sealed, gaps recorded\n")
    assert r.stderr == (f"agtrace: error: {trail}: 1 gap recorded, the first at record 0: 3 "
                        f"records could not be written (No space left on device)\n")


def test_dev_full(nested):
    port = free_port()
    tr = Tracer(["-p", nested.pid, "--uprobe", f"{NESTED}:outer", "-o", "jsonl", "--audit",
                 "/dev/full", "--metrics", f"127.0.0.1:{port}"])
    time.sleep(1.2)
    text = scrape(port)
    assert value(text, "agtrace_audit_write_failures_total") == 2  # config, attach
    nested.quit()
    assert tr.finish() == 1
    assert len(warnings_about(tr, "/dev/full")) == 1
    r = verify("/dev/full")
    assert r.returncode == 2
    assert r.stderr == "agtrace: error: cannot read audit trail /dev/full: it is not a regular file\n"


def test_audit_usage_errors(tmp_path):
    r = run_agtrace("audit", "verify", tmp_path / "none.jsonl")
    assert r.returncode == 2
    assert r.stderr.startswith(f"agtrace: error: cannot read audit trail {tmp_path}/none.jsonl")
    r = run_agtrace("audit", "verify", "--anchor", "7:abc", tmp_path / "none.jsonl")
    assert r.returncode == 2
    assert r.stderr == ("agtrace: error: --anchor needs RECORDS:HEAD as a checkpoint gives it (a "
                        "count from 1, a colon, 64 hex digits), got \"7:abc\"\n")


def test_anchors_leave_the_host_and_find_a_cut_tail(tmp_path, key, es, collector):  # noqa: F811
    """Every checkpoint and the seal go out as a state_change event ("audit checkpoint", "audit
    seal", message "anchor RECORDS:HEAD (...)") to the output and every exporter, and the latest
    is the one series of agtrace_audit_anchor_info: anchors kept off the host, against which a
    trail cut afterwards is found truncated."""
    path, port = tmp_path / "keyed.jsonl", free_port()
    ts = nested_targets(3)
    try:
        tr = Tracer(target_args(ts) + [
            "--audit", path, "--audit-key", key, "--audit-checkpoint-records", "2",
            "--es", f"http://127.0.0.1:{es.port}", "--otlp", collector.url + "/v1/traces",
            "--spool-dir", tmp_path / "spool", "--metrics", f"127.0.0.1:{port}"])
        for t in ts:
            assert t.call("outer 3") == "outer 15"
        time.sleep(1.5)  # the metrics are refreshed once a second
        mid = scrape(port)
        for t in ts:
            t.quit()
        assert tr.finish(timeout=60) == 0
    finally:
        for t in ts:
            t.kill()
    recs = records(path)
    assert [r["type"] for r in recs] == KEYED_TYPES  # the events sent are not audited again
    want = [("audit checkpoint", 3, 2), ("audit checkpoint", 6, 5), ("audit checkpoint", 9, 8),
            ("audit seal", 11, 10)]
    want = [(name, f"anchor {n}:{recs[i]['mac']} ({name.split()[1]} at record {i} of {path})")
            for name, n, i in want]
    # the local output
    got = [(r["name"], r["message"]) for r in tr.records if r["name"].startswith("audit ")]
    assert got == want
    assert {r["trace_type"] for r in tr.records if r["name"].startswith("audit ")} == \
        {"state_change"}
    # Elasticsearch
    docs = sorted((d for d in es.docs().values() if d["name"].startswith("audit ")),
                  key=lambda d: d["@timestamp"])
    assert [(d["name"], d["message"]) for d in docs] == want
    # OTLP
    spans = sorted((s for s in collector.get()["spans"] if s["name"].startswith("audit ")),
                   key=lambda s: int(s["startTimeUnixNano"]))
    assert [(s["name"], attrs(s["attributes"])["message"]) for s in spans] == want
    # /metrics: the latest anchor then, and only it
    info = [l for l in mid.splitlines() if l.startswith("agtrace_audit_anchor_info")]
    assert info == [f'agtrace_audit_anchor_info{{type="checkpoint",records="6",'
                    f'head="{recs[5]["mac"]}"}} 1']
    # The trail cut after the checkpoint ES has as record 8: verify, with the anchor taken from
    # the exporter, reports the truncation; so does the metric's anchor for a deeper cut.
    es_anchor = docs[2]["message"].split()[1]
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:8]))
    r = verify(path, "--key", key, "--anchor", es_anchor)
    assert r.returncode == 2
    assert r.stderr == (f"agtrace: error: {path}: {NOT_SEALED}\n"
                        f"agtrace: error: {path}: truncated: the anchor names 9 records but the "
                        f"trail has 8, so at least 1 record was cut\n")
    metric_anchor = "6:" + recs[5]["mac"]
    r = verify(path, "--key", key, "--anchor", metric_anchor)
    assert r.returncode == 2 and "truncated" not in r.stderr  # cut after it: not sealed only
    path.write_text("".join(lines[:4]))
    r = verify(path, "--key", key, "--anchor", metric_anchor)
    assert r.returncode == 2
    assert r.stderr == (f"agtrace: error: {path}: {NOT_SEALED}\n"
                        f"agtrace: error: {path}: truncated: the anchor names 6 records but the "
                        f"trail has 4, so at least 2 records were cut\n")
    path.write_text("".join(lines))
    assert verify(path, "--key", key, "--anchor", es_anchor).returncode == 0
