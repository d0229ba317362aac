"""The agent model on real agent loops: conversations, tool calls from the model's request to
the returned result, and the commands each tool ran, as one tree per conversation."""
import os
import subprocess

import pytest
from harness import ROOT, Target, Tracer
from test_llm import cert, server  # noqa: F401  (module fixtures: TLS material, HTTPS server)

AGENT = os.path.join(ROOT, "tests", "targets", "agent_loop.py")


@pytest.fixture
def agent(server, cert):  # noqa: F811
    t = Target(["/usr/bin/python3", AGENT, str(server), str(cert / "cert.pem")])
    yield t
    t.kill()


def run(agent, *cmds):
    tr = Tracer(["-p", agent.pid, "-o", "jsonl"])
    replies = [agent.call(c) for c in cmds]
    agent.quit()
    assert tr.finish() == 0
    return tr, replies


def conv_records(tr):
    """Everything but the attach/exit events of the agent itself."""
    return [r for r in tr.records if not r["name"].startswith(("attach ", "exit ", "detach "))]


def by_parent(recs, span):
    return [r for r in recs if r.get("parent_span_id") == span["span_id"]]


def test_tool_runs_a_shell_command(agent):
    tr, replies = run(agent, "openai Paris date +%s >/dev/null; sleep 0.05; exit 3")
    assert replies == ["steps 2"]
    recs = conv_records(tr)
    (cot,) = [r for r in recs if r["trace_type"] == "cot_process"]
    assert cot["name"] == "conversation gpt-4o"
    assert "parent_span_id" not in cot
    assert cot["status"] == "ok"
    assert cot["cot"] == {"steps": 2, "depth": 3, "tool_calls": 1,
                          "final_answer": "It is sunny in Paris.",
                          "sequence": ["chat gpt-4o", "execute_tool get_weather", "chat gpt-4o"]}
    assert cot["gen_ai"]["usage"] == {"input_tokens": 84, "output_tokens": 14}
    assert all(r["trace_id"] == cot["trace_id"] for r in recs)
    assert {r["workflow_id"] for r in recs} == {cot["workflow_id"]}
    top = by_parent(recs, cot)
    assert [(r["trace_type"], r["name"]) for r in top] == [
        ("reasoning_step", "chat gpt-4o"), ("tool_call", "execute_tool get_weather"),
        ("reasoning_step", "chat gpt-4o")]
    step1, tool, step2 = top
    assert step1["gen_ai"]["response"]["finish_reasons"] == ["tool_calls"]
    assert step2["gen_ai"]["response"]["finish_reasons"] == ["stop"]
    (dec,) = by_parent(recs, step1)
    assert dec["decision"]["selected"][0]["id"] == "call_weather_1"
    assert tool["gen_ai"]["tool"] == {"name": "get_weather", "call": {"id": "call_weather_1"}}
    assert tool["tool"]["input"] == '{"city":"Paris","unit":"celsius"}'
    assert tool["tool"]["output"] == '{"for": "Paris", "exit": 3, "out": ""}'
    assert tool["tool"]["success"] is True  # OpenAI results carry no error flag
    # python:audit, seen while the tool ran: the command it started (as span events).
    # (The window ends at the next request's first byte, so the connect that request opens
    # first is in it too: socket.getaddrinfo/connect may follow.)
    names = [e["name"] for e in tool["events"]]
    assert names.count("subprocess.Popen") == 1
    assert names.index("subprocess.Popen") < names.index("socket.connect")
    assert all(tool["@timestamp"] <= e["@timestamp"] <= tool["end_time"] for e in tool["events"])
    assert step1["end_time"] <= tool["@timestamp"] <= tool["end_time"] <= step2["@timestamp"]
    # What the tool did: sh -c ..., with date below it; sh exited 3.
    (sh,) = by_parent(recs, tool)
    assert sh["trace_type"] == "state_change"
    assert sh["name"] == "exec sh -c date +%s >/dev/null; sleep 0.05; exit 3"
    assert sh["process"]["name"] == "sh"
    assert sh["process"]["exit_code"] == 3
    assert sh["process"]["parent"]["pid"] == agent.pid
    assert sh["status"] == "error"
    kids = by_parent(recs, sh)
    # Changed with the agents branch: sh's exit 3 stays on its span, with no error child (the
    # tool's result carries no error, and its arguments name no command it was asked to run).
    assert sorted((k["trace_type"], k["name"]) for k in kids) == [
        ("state_change", "exec date +%s"), ("state_change", "exec sleep 0.05")]
    assert not [r for r in recs if r["trace_type"] == "error"]
    date = [k for k in kids if k["name"] == "exec date +%s"][0]
    assert date["process"]["exit_code"] == 0 and date["status"] == "ok"
    assert date["process"]["parent"]["pid"] == sh["process"]["pid"]
    assert sh["@timestamp"] <= date["@timestamp"] <= date["end_time"] <= sh["end_time"]


def test_anthropic_tool_result_marked_as_error(agent):
    tr, replies = run(agent, "anthropic Oslo echo broken >&2; exit 1")
    assert replies == ["answer Let me look that up."]
    recs = conv_records(tr)
    (cot,) = [r for r in recs if r["trace_type"] == "cot_process"]
    (tool,) = [r for r in recs if r["trace_type"] == "tool_call"]
    assert tool["parent_span_id"] == cot["span_id"]
    assert tool["gen_ai"]["tool"]["call"]["id"] == "toolu_01A"
    assert tool["status"] == "error"
    assert tool["tool"]["success"] is False
    assert tool["tool"]["output"] == "exit 1: "
    errs = [r for r in by_parent(recs, tool) if r["trace_type"] == "error"]
    assert [e["name"] for e in errs] == ["error tool_result"]
    assert cot["cot"]["steps"] == 2 and cot["cot"]["tool_calls"] == 1
    assert "sk-ant-loop-SECRET" not in "".join(tr.out)


def test_two_interleaved_conversations_stay_apart(agent):
    tr, replies = run(agent, "interleave")
    assert replies == ["interleaved"]
    recs = conv_records(tr)
    cots = [r for r in recs if r["trace_type"] == "cot_process"]
    assert len(cots) == 2
    assert cots[0]["trace_id"] != cots[1]["trace_id"]
    assert cots[0]["workflow_id"] != cots[1]["workflow_id"]
    for cot in cots:
        mine = [r for r in recs if r["trace_id"] == cot["trace_id"]]
        tools = [r for r in mine if r["trace_type"] == "tool_call"]
        assert cot["cot"]["steps"] == 2
        assert len(tools) == 1
        who = tools[0]["tool"]["output"].split('"for": "')[1][0]
        (ex,) = by_parent(recs, tools[0])
        assert ex["name"] == f"exec sh -c echo {who}"
        assert len([r for r in mine if r["trace_type"] == "reasoning_step"]) == 2
    outs = sorted(r["tool"]["output"][:12] for r in recs if r["trace_type"] == "tool_call")
    assert outs == ['{"for": "A",', '{"for": "B",']


def test_http_calls_made_by_a_tool_hang_below_it(agent):
    tr, replies = run(agent, "lookup Rome")
    assert replies == ["steps 2"]
    recs = conv_records(tr)
    (cot,) = [r for r in recs if r["trace_type"] == "cot_process"]
    (tool,) = [r for r in recs if r["name"] == "execute_tool get_weather"]
    (http,) = by_parent(recs, tool)
    assert http["name"].startswith("POST localhost:") and http["name"].endswith("/internal/lookup")
    assert http["trace_id"] == cot["trace_id"]
    assert http["workflow_id"] == cot["workflow_id"]
    assert http["url"]["query"] == "city=Rome"
    assert http["http"]["response"]["status_code"] == 200
    assert tool["@timestamp"] <= http["@timestamp"] <= http["end_time"] <= tool["end_time"]
    assert tool["tool"]["output"] == '{"ok": true, "path": "/internal/lookup"}'
    names = [e["name"] for e in tool["events"]]
    assert "socket.getaddrinfo" in names and "socket.connect" in names


def test_idle_conversation_closed_as_unfinished(agent):
    import time

    tr = Tracer(["-p", agent.pid, "-o", "jsonl", "--idle-timeout", "1"])
    assert agent.call("abandon Lima") == "abandoned"
    time.sleep(2.5)
    agent.quit()
    assert tr.finish() == 0
    recs = conv_records(tr)
    (cot,) = [r for r in recs if r["trace_type"] == "cot_process"]
    (tool,) = [r for r in recs if r["trace_type"] == "tool_call"]
    assert cot["status"] == "unfinished" and tool["status"] == "unfinished"
    assert tool["parent_span_id"] == cot["span_id"]
    assert "success" not in tool["tool"]
    assert "conversations_idle_closed=1" in tr.summary()
    # Closed by the timeout, well before the agent exited.
    assert cot["end_time"] < tr.events("exit")[0]["@timestamp"]


@pytest.mark.parametrize("api,expect", [
    ("openai", ("openai loop 2 It is sunny in Paris.", "call_weather_1", "node-tool-openai", "gpt-4o")),
    ("anthropic", ("anthropic loop 2 end_turn", "toolu_01A", "node-tool-anthropic", "claude-sonnet-4-5")),
])
def test_node_sdk_tool_loops(server, cert, api, expect):  # noqa: F811
    reply, call_id, out, model = expect
    t = Target(["node", os.path.join(ROOT, "tests", "targets", "node_agent.mjs"), str(server)],
               env=dict(os.environ, NODE_EXTRA_CA_CERTS=str(cert / "cert.pem")))
    try:
        tr, replies = run(t, f"{api} loop")
    finally:
        t.kill()
    assert replies == [reply]
    recs = conv_records(tr)
    (cot,) = [r for r in recs if r["trace_type"] == "cot_process"]
    assert cot["name"] == f"conversation {model}"
    assert cot["status"] == "ok"
    assert cot["cot"]["steps"] == 2 and cot["cot"]["tool_calls"] == 1
    top = by_parent(recs, cot)
    assert [r["trace_type"] for r in top] == ["reasoning_step", "tool_call", "reasoning_step"]
    tool = top[1]
    assert tool["gen_ai"]["tool"] == {"name": "get_weather", "call": {"id": call_id}}
    assert tool["tool"]["output"] == out
    (sh,) = by_parent(recs, tool)
    assert sh["name"] == f"exec /bin/sh -c echo {out}"
    assert sh["process"]["exit_code"] == 0
    assert top[0]["llm"]["stream"] is (api == "anthropic")


def test_mcp_tool_calls_over_stdio():
    """Official @modelcontextprotocol/sdk client and stdio server (the server a child of the
    client, started after attach so both ends are followed): tools/call spans, once each."""
    t = Target(["node", os.path.join(ROOT, "tests", "targets", "mcp_client.mjs")])
    try:
        tr = Tracer(["-p", t.pid, "-o", "jsonl"])
        assert t.call("start") == "started add,explode"
        assert t.call('call add {"a": 2, "b": 3}') == "result ok 5"
        assert t.call('call explode {"why": "boom sk-mcp-SECRET-0123456789"}') == \
            "result error failed: boom sk-mcp-SECRET-0123456789"
        t.quit()
        assert tr.finish() == 0
    finally:
        t.kill()
    recs = conv_records(tr)
    calls = [r for r in recs if r["name"].startswith("tools/call")]
    assert [(c["name"], c["status"], c["tool"]["success"]) for c in calls] == [
        ("tools/call add", "ok", True), ("tools/call explode", "error", False)]
    add, explode = calls
    assert add["tool"]["input"] == '{"a":2,"b":3}'
    assert add["tool"]["output"] == "5"
    assert add["mcp"] == {"method": {"name": "tools/call"}}
    assert add["gen_ai"]["tool"]["name"] == "add"
    assert add["jsonrpc"]["request"]["id"] != explode["jsonrpc"]["request"]["id"]
    assert add["process"]["pid"] == t.pid
    assert explode["tool"]["output"] == "failed: boom [REDACTED]"
    (err,) = by_parent(recs, explode)
    assert err["trace_type"] == "error" and err["name"] == "error tools/call"
    # The server (node, a child of the client) was followed: its run is an exec span.
    servers = [r for r in recs if r["trace_type"] == "state_change" and "mcp_server.mjs" in r["name"]]
    assert len(servers) == 1 and servers[0]["process"]["parent"]["pid"] == t.pid
    assert "sk-mcp-SECRET" not in "".join(tr.out)
    assert "jsonrpc_not_json=0" in tr.summary()


def test_failed_command_seen_even_when_process_sampling_is_off(agent):
    tr = Tracer(["-p", agent.pid, "-o", "jsonl", "--sample", "proc=0"])
    assert agent.call("openai Oslo exit 7") == "steps 2"
    agent.quit()
    assert tr.finish() == 0
    recs = conv_records(tr)
    assert not [r for r in recs if r["name"].startswith("exec ")]
    errs = [r for r in recs if r["name"] == "error exit 7"]
    assert len(errs) == 1
    assert errs[0]["process"]["exit_code"] == 7
    assert errs[0]["message"].endswith("in a session sampling left out: metadata only")


# A tool whose command is a deep and a wide tree of short-lived processes (what a login shell
# sourcing a large .bashrc does): 300 /bin/true started by one bash, and a chain of 40 nested
# subshells, each running one /bin/true (41 in all, the outermost level being bash itself).
TREE = ("bash -c 'deep() { /bin/true; if [ $1 -gt 0 ]; then ( deep $(($1-1)) ); fi; }; "
        "for i in $(seq 300); do /bin/true; done; deep 40'")


def check_tree(recs):
    (tool,) = [r for r in recs if r["trace_type"] == "tool_call"]
    mine = [r for r in recs if r["trace_id"] == tool["trace_id"]]
    trues = [r for r in mine if r["name"] == "exec /bin/true"]
    assert len(trues) == 341
    by_id = {r["span_id"]: r for r in mine}
    assert all(r["parent_span_id"] in by_id for r in trues)
    (bash,) = [r for r in mine if r["name"].startswith("exec bash -c deep()")]

    def depth(r):  # exec spans between r and the tool call
        n = 0
        while r["parent_span_id"] != tool["span_id"]:
            r = by_id[r["parent_span_id"]]
            n += 1
        return n
    base = depth(bash)
    # 300 + 1 directly below bash, then one below each of the 40 nested subshells.
    assert sorted(depth(r) - base for r in trues) == [1] * 301 + list(range(2, 42))
    assert all(r["process"]["exit_code"] == 0 and r["status"] == "ok" for r in trues)


def test_deep_process_tree_then_sigterm(agent):
    """Every command of a large, deep tree lands under its tool call, and SIGTERM ends agtrace
    at once (it once looped forever closing such a tree)."""
    import signal
    import time

    tr = Tracer(["-p", agent.pid, "-o", "jsonl"])
    assert agent.call(f"openai Paris {TREE}", timeout=60) == "steps 2"
    time.sleep(0.5)
    t0 = time.monotonic()
    tr.p.send_signal(signal.SIGTERM)
    assert tr.finish(timeout=10) == 0
    assert time.monotonic() - t0 < 2.0
    check_tree(conv_records(tr))
    assert "children_not_followed=0" in tr.summary()


def test_deep_process_tree_then_target_exits(agent):
    """The target exits right after such a tree: agtrace closes it and ends by itself."""
    import time

    tr = Tracer(["-p", agent.pid, "-o", "jsonl"])
    assert agent.call(f"openai Paris {TREE}", timeout=60) == "steps 2"
    agent.quit()
    t0 = time.monotonic()
    assert tr.finish(timeout=10) == 0
    assert time.monotonic() - t0 < 2.0
    check_tree(conv_records(tr))


# The official @google/genai SDK in an agent loop (node_agent.mjs "gemini loop"), on AI Studio's
# paths (v1beta streamed with alt=sse; v1 not streamed) and on Vertex AI's (through the SDK's
# Vertex mode). The server's functionCall has an id for gemini-2.5-pro only; otherwise the call
# gets the synthetic id gemini-call-0-0 (turn 0, call 0), or the id the agent assigns ("assign").
# The operation is generate_content, OTel's name for Gemini's Generate Content, so the steps
# are "generate_content MODEL" (the span name is "{gen_ai.operation.name} {gen_ai.request.model}").
GEMINI_PATH = "/v1beta1/projects/agtrace-test/locations/us-central1/publishers/google/models/"


@pytest.mark.parametrize("cmd,provider,path,stream,call_id,tool_id", [
    ("gemini-2.5-flash stream v1beta", "gcp.gemini",
     "/v1beta/models/gemini-2.5-flash:streamGenerateContent", True,
     "gemini-call-0-0", "gemini-call-0-0"),
    ("gemini-2.5-pro plain", "gcp.gemini", "/v1/models/gemini-2.5-pro:generateContent", False,
     "fc-weather-1", "fc-weather-1"),
    ("gemini-2.5-flash stream vertex", "gcp.vertex_ai",
     GEMINI_PATH + "gemini-2.5-flash:streamGenerateContent", True,
     "gemini-call-0-0", "gemini-call-0-0"),
    ("gemini-2.5-flash plain vertex assign", "gcp.vertex_ai",
     GEMINI_PATH + "gemini-2.5-flash:generateContent", False, "gemini-call-0-0", "agent-call-1-0"),
])
def test_gemini_sdk_tool_loop(server, cert, cmd, provider, path, stream, call_id,  # noqa: F811
                              tool_id):
    model = cmd.split()[0]
    t = Target(["node", os.path.join(ROOT, "tests", "targets", "node_agent.mjs"), str(server)],
               env=dict(os.environ, NODE_EXTRA_CA_CERTS=str(cert / "cert.pem")))
    try:
        tr, replies = run(t, f"gemini loop {cmd}")
    finally:
        t.kill()
    assert replies == ["gemini loop 2 It is sunny in Paris."]
    recs = conv_records(tr)
    (cot,) = [r for r in recs if r["trace_type"] == "cot_process"]
    step_name = f"generate_content {model}"
    assert cot["name"] == f"conversation {model}"
    assert cot["status"] == "ok"
    assert cot["cot"] == {"steps": 2, "depth": 3, "tool_calls": 1,
                          "final_answer": "It is sunny in Paris.",
                          "sequence": [step_name, "execute_tool get_weather", step_name]}
    # 58 + 96 in; (21 answer + 45 thinking) + (7 + 12) out.
    assert cot["gen_ai"] == {"provider": {"name": provider}, "request": {"model": model},
                             "usage": {"input_tokens": 154, "output_tokens": 85}}
    assert all(r["trace_id"] == cot["trace_id"] for r in recs)
    top = by_parent(recs, cot)
    assert [(r["trace_type"], r["name"]) for r in top] == [
        ("reasoning_step", step_name), ("tool_call", "execute_tool get_weather"),
        ("reasoning_step", step_name)]
    step1, tool, step2 = top
    for step, n, usage in ((step1, 1, (58, 66, 32)), (step2, 2, (96, 19, 64))):
        g = step["gen_ai"]
        assert g["operation"]["name"] == "generate_content"
        assert g["provider"]["name"] == provider
        assert g["request"]["model"] == model
        ttfc = g["response"].pop("time_to_first_chunk", None)  # streams only (OTel GenAI)
        assert (ttfc is not None and 0 < ttfc < 5) if stream else ttfc is None, ttfc
        assert g["response"] == {"model": model, "id": f"gemini-resp-{n}",
                                 "finish_reasons": ["STOP"]}
        assert g["usage"] == {"input_tokens": usage[0], "output_tokens": usage[1],
                              "cache_read": {"input_tokens": usage[2]}}
        assert step["llm"]["api"] == "generate_content"
        assert step["llm"]["stream"] is stream
        assert step["url"]["path"] == path
        assert step["url"].get("query") == ("alt=sse" if stream else None)
        assert step["status"] == "ok"
    (dec,) = by_parent(recs, step1)
    assert dec["name"] == "decision get_weather"
    assert dec["decision"]["options"] == ["get_weather"]
    assert dec["decision"]["selected"] == [{"name": "get_weather", "id": call_id,
                                            "arguments": '{"city":"Paris","unit":"celsius"}'}]
    assert dec["decision"]["reasoning"] == "Let me check the weather."  # not the thought
    assert by_parent(recs, step2) == []
    assert tool["gen_ai"]["tool"] == {"name": "get_weather", "call": {"id": tool_id}}
    assert tool["tool"]["input"] == '{"city":"Paris","unit":"celsius"}'
    assert tool["tool"]["output"] == "node-tool-gemini"
    assert tool["tool"]["success"] is True
    assert tool["status"] == "ok"
    assert step1["end_time"] <= tool["@timestamp"] <= tool["end_time"] <= step2["@timestamp"]
    (sh,) = by_parent(recs, tool)
    assert sh["name"] == "exec /bin/sh -c echo node-tool-gemini"
    assert sh["process"]["exit_code"] == 0
    everything = "".join(tr.out)
    assert "node-SECRET" not in everything  # the API key (x-goog-api-key), the OAuth token
