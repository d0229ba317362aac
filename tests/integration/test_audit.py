"""The audit trail: what was attached, configured, sampled and decided, hash-chained, and
`agtrace audit verify` naming the first record changed, removed or reordered."""
import json
import os
import subprocess

import pytest
from harness import AGTRACE, Tracer, run_agtrace
from test_agent import AGENT  # noqa: F401
from test_llm import PY, cert, server  # noqa: F401


def verify(path):
    return subprocess.run([AGTRACE, "audit", "verify", str(path)], capture_output=True, text=True)


@pytest.fixture
def trail(tmp_path, server, cert):  # noqa: F811
    from harness import Target
    path = tmp_path / "audit.jsonl"
    t = Target([PY, AGENT, str(server), str(cert / "cert.pem")])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl", "--audit", path])
        assert t.call("openai Paris true") == "steps 2"
        subprocess.run([AGTRACE, "sample", "set", "func=0.5"], check=True, capture_output=True)
        tr.wait_for("sampling changed")
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    return path, t.pid, tr


def test_trail_records_what_happened(trail):
    path, pid, tr = trail
    recs = [json.loads(l) for l in path.read_text().splitlines()]
    assert [r["type"] for r in recs] == ["config", "attach", "decision", "tool_call", "sampling",
                                         "exit"]
    assert [r["seq"] for r in recs] == list(range(6))
    assert recs[0]["data"]["argv"][:3] == ["attach", "-p", str(pid)]
    assert recs[1]["data"] == {"pid": pid, "name": "attach python3", "message": "9 probe links"}
    assert recs[2]["data"]["name"] == "decision get_weather"
    assert recs[3]["data"]["name"] == "execute_tool get_weather"
    decision = [r for r in tr.records if r["trace_type"] == "decision"][0]
    assert recs[2]["data"]["span_id"] == decision["span_id"]
    assert len(recs[2]["data"]["sha256"]) == 64
    assert recs[4]["data"]["message"] == "func   ratio 0.5  rate unlimited  payload bytes default"
    assert recs[0]["prev"] == "" and all(recs[i]["prev"] == recs[i - 1]["hash"] for i in range(1, 6))
    r = verify(path)
    assert r.returncode == 0 and r.stdout == f"{path}: 6 records, chain intact\n"


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


def test_audit_usage_errors(tmp_path):
    r = run_agtrace("audit", "verify", tmp_path / "none.jsonl")
    assert r.returncode == 2
    assert r.stderr.startswith(f"agtrace: error: cannot read audit trail {tmp_path}/none.jsonl")
