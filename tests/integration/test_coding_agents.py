"""Agents as they really behave, traced end to end: a scripted coding agent (moving cache markers,
an HTTP client thread, parallel tools, a relaunch into a child process, a HEAD warm-up, bash exec
chains, death mid-stream, a sub-agent, parallel calls of one MCP tool over stdio, the Responses
API as Codex uses it), the official @openai/agents SDK (an agent as a tool and a handoff) and the
official MCP SDK over streamable HTTP. Each test asserts the exact tree: steps, tokens,
decisions, tool ids, the commands under the right tool, one trace per conversation."""
import os
import signal
import subprocess
import time

import pytest
from harness import ROOT, Target, Tracer
from test_llm import cert, server  # noqa: F401  (module fixtures: TLS material, HTTPS server)

CODING = os.path.join(ROOT, "tests", "targets", "coding_agent.py")
NODE_ENV = "NODE_EXTRA_CA_CERTS"


@pytest.fixture
def agent(server, cert):  # noqa: F811
    t = Target(["/usr/bin/python3", CODING, str(server), str(cert / "cert.pem")])
    yield t
    t.kill()


def traced(target, cmd, timeout=30):
    tr = Tracer(["-p", target.pid, "-o", "jsonl"])
    reply = target.call(cmd, timeout=timeout)
    target.quit()
    assert tr.finish() == 0
    return tr, reply


def recs_of(tr):
    """Everything but attach/exit/detach events of the targets themselves."""
    return [r for r in tr.records if not r["name"].startswith(("attach ", "exit ", "detach "))]


def kids(recs, span):
    return [r for r in recs if r.get("parent_span_id") == span["span_id"]]


def one_conversation(recs):
    """The conversation's root; every span is in its trace and workflow."""
    roots = [r for r in recs if "parent_span_id" not in r and r["trace_type"] == "cot_process"]
    assert len(roots) == 1, [r["name"] for r in roots]
    (cot,) = roots
    mine = [r for r in recs if r["trace_id"] == cot["trace_id"]]
    assert {r["workflow_id"] for r in mine} == {cot["workflow_id"]}
    return cot, mine


def shape(recs, span):
    """(trace_type, name) of span's children, in order."""
    return [(r["trace_type"], r["name"]) for r in kids(recs, span)]


def test_moving_cache_markers_one_conversation(agent):
    tr, reply = traced(agent, "cache")
    assert reply == "cache Build fixed."
    recs = recs_of(tr)
    cot, mine = one_conversation(recs)
    assert len(mine) == len(recs)
    assert cot["name"] == "conversation claude-sonnet-4-5"
    assert cot["status"] == "ok"
    assert cot["cot"] == {"steps": 3, "depth": 5, "tool_calls": 2, "final_answer": "Build fixed.",
                          "sequence": ["chat claude-sonnet-4-5", "execute_tool Bash",
                                       "chat claude-sonnet-4-5", "execute_tool Bash",
                                       "chat claude-sonnet-4-5"]}
    assert cot["gen_ai"]["usage"] == {"input_tokens": 303, "output_tokens": 30}
    assert shape(recs, cot) == [
        ("reasoning_step", "chat claude-sonnet-4-5"), ("tool_call", "execute_tool Bash"),
        ("reasoning_step", "chat claude-sonnet-4-5"), ("tool_call", "execute_tool Bash"),
        ("reasoning_step", "chat claude-sonnet-4-5")]
    s1, t1, s2, t2, s3 = kids(recs, cot)
    assert [s["gen_ai"]["usage"]["input_tokens"] for s in (s1, s2, s3)] == [100, 101, 102]
    assert [k["decision"]["selected"][0]["id"] for k in kids(recs, s1) + kids(recs, s2)] == [
        "toolu_1", "toolu_2"]
    for tool, cid, word in ((t1, "toolu_1", "one"), (t2, "toolu_2", "two")):
        assert tool["gen_ai"]["tool"] == {"name": "Bash", "call": {"id": cid}}
        assert tool["tool"]["input"] == f'{{"command":"echo {word}"}}'
        assert tool["tool"]["output"] == word
        assert tool["status"] == "ok" and tool["tool"]["success"] is True
        assert shape(recs, tool) == [("state_change", f"exec sh -c echo {word}")]
    assert s1["end_time"] <= t1["@timestamp"] <= t1["end_time"] <= s2["@timestamp"]


def test_command_spawned_off_the_http_thread(agent):
    tr, reply = traced(agent, "threads")
    assert reply == "threads Done."
    recs = recs_of(tr)
    cot, mine = one_conversation(recs)
    assert len(mine) == len(recs)
    assert cot["cot"]["steps"] == 2 and cot["cot"]["tool_calls"] == 1
    s1, tool, s2 = kids(recs, cot)
    assert tool["name"] == "execute_tool shell"
    assert tool["gen_ai"]["tool"]["call"]["id"] == "call_1"
    (sh,) = kids(recs, tool)
    assert sh["name"] == "exec sh -c date +%Y"
    # The LLM calls came from the HTTP client thread, the command from the main thread.
    assert s1["process"]["thread"]["id"] != agent.pid
    assert s1["process"]["thread"]["id"] == s2["process"]["thread"]["id"]
    assert shape(recs, sh) == [("state_change", "exec date +%Y")]


def test_parallel_tools_get_their_own_commands(agent):
    tr, reply = traced(agent, "parallel")
    assert reply == "parallel A failed, B passed."
    recs = recs_of(tr)
    cot, mine = one_conversation(recs)
    assert len(mine) == len(recs)
    assert cot["status"] == "ok"
    assert cot["cot"]["steps"] == 2 and cot["cot"]["tool_calls"] == 2
    assert cot["gen_ai"]["usage"] == {"input_tokens": 110, "output_tokens": 17}
    step1 = kids(recs, cot)[0]
    (dec,) = kids(recs, step1)
    assert [s["id"] for s in dec["decision"]["selected"]] == ["call_a", "call_b"]
    tools = {t["gen_ai"]["tool"]["call"]["id"]: t for t in kids(recs, cot)
             if t["trace_type"] == "tool_call"}
    a, b = tools["call_a"], tools["call_b"]
    # A: its command exited 2: the tool failed, an error span says why.
    assert a["status"] == "error" and a["tool"]["success"] is False
    assert a["tool"]["output"] == "exit 2: A"
    assert sorted(shape(recs, a)) == [
        ("error", "error command failed"), ("state_change", "exec sh -c sleep 0.2; echo A; exit 2")]
    (err,) = [k for k in kids(recs, a) if k["trace_type"] == "error"]
    assert err["message"] == "exit 2: sh -c sleep 0.2; echo A; exit 2"
    (sha,) = [k for k in kids(recs, a) if k["trace_type"] == "state_change"]
    assert sha["process"]["exit_code"] == 2 and sha["status"] == "error"
    assert shape(recs, sha) == [("state_change", "exec sleep 0.2")]
    # B: a subshell exited 1 inside it; the tool succeeded, and no error span anywhere below.
    assert b["status"] == "ok" and b["tool"]["success"] is True
    (shb,) = kids(recs, b)
    assert shb["name"] == "exec sh -c echo B; (exit 1); true"
    assert shb["process"]["exit_code"] == 0 and shb["status"] == "ok"
    (sub,) = kids(recs, shb)
    assert sub["process"]["exit_code"] == 1 and sub["status"] == "error"
    assert kids(recs, sub) == []
    assert [r["name"] for r in recs if r["trace_type"] == "error"] == ["error command failed"]


def test_relaunched_cli_continues_in_the_child(agent):
    tr, reply = traced(agent, "relaunch")
    assert reply == "relaunch It is Linux."
    recs = recs_of(tr)
    cot, mine = one_conversation(recs)
    assert cot["process"]["pid"] == agent.pid  # the child's calls are the target's
    assert cot["cot"]["steps"] == 2 and cot["cot"]["tool_calls"] == 1
    assert cot["cot"]["final_answer"] == "It is Linux."
    s1, tool, s2 = kids(recs, cot)
    assert tool["gen_ai"]["tool"]["call"]["id"] == "call_1"
    (sh,) = kids(recs, tool)
    assert sh["name"] == "exec sh -c uname -s"
    child = sh["process"]["parent"]["pid"]
    assert child != agent.pid
    (relaunch,) = [r for r in recs if r["name"].startswith("exec /usr/bin/python3 ")]
    assert relaunch["process"]["pid"] == child
    assert relaunch["name"].endswith("--child")
    assert "parent_span_id" not in relaunch  # the agent itself, not a tool's command
    # Probed at its exec as a relaunch; if it had not imported ssl by then, the links libssl
    # brought are an event of their own.
    first, *later = [e for e in tr.events("attach ") if e["process"]["pid"] == child]
    assert first["name"] == "attach python3"
    assert first["message"].endswith("; a relaunch of its target's program"), first
    for e in later:
        assert e["message"].endswith("/libssl.so.3 loaded"), e


def test_head_warm_up_is_http_call(agent):
    tr, reply = traced(agent, "warmup")
    assert reply == "warmup Hi."
    recs = recs_of(tr)
    cot, mine = one_conversation(recs)
    (head,) = [r for r in recs if r["name"].startswith("HEAD ")]
    assert head["trace_type"] == "http_call"
    assert "parent_span_id" not in head and head["trace_id"] != cot["trace_id"]
    assert head["url"]["path"] == "/" and head["http"]["response"]["status_code"] == 200
    assert not [r for r in recs if r["trace_type"] == "tool_call"]
    assert cot["cot"]["steps"] == 1 and cot["cot"]["final_answer"] == "Hi."
    assert len(mine) == 2


def test_bash_exec_chain_keeps_the_first_command_line(agent):
    tr, reply = traced(agent, "chain", timeout=60)
    assert reply == "chain Listed."
    recs = recs_of(tr)
    cot, mine = one_conversation(recs)
    (tool,) = [r for r in recs if r["trace_type"] == "tool_call"]
    (bash,) = kids(recs, tool)  # a login shell may start more below it
    assert bash["name"] == "exec bash -lc echo start; ls /"
    assert bash["process"]["command_line"] == "bash -lc echo start; ls /"
    assert bash["process"]["name"] == "bash"
    assert [e["name"] for e in bash["events"]][-1] == "exec ls /"
    assert not [r for r in recs if r["name"].startswith("exec ls")]
    assert tool["status"] == "ok"


def test_agent_killed_mid_stream_keeps_what_arrived(agent):
    tr = Tracer(["-p", agent.pid, "-o", "jsonl"])
    assert agent.call("killme") == "streaming"
    time.sleep(1.0)
    t_kill = time.time()
    agent.p.send_signal(signal.SIGKILL)
    agent.p.wait()
    assert tr.finish() == 0
    recs = recs_of(tr)
    cot, mine = one_conversation(recs)
    assert cot["status"] == "unfinished"
    (step,) = kids(recs, cot)
    assert step["name"] == "chat gpt-4o"
    assert step["status"] == "unfinished"
    assert step["http"]["response"]["status_code"] == 200
    assert step["llm"]["stream"] is True and step["llm"]["incomplete"] is True
    assert 0 < step["llm"]["time_to_first_chunk_ms"] < 400
    # Events arrive every 0.4 s; the agent lived about 1 s after the first: 2 or 3 of the text
    # chunks of "Once upon a time there was a tracer that saw everything." came.
    assert step["llm"]["partial_output"] in ("Once upo", "Once upon a time",
                                             "Once upon a time there ")
    assert 700 < step["duration_ms"] < 1500
    assert "usage" not in step["gen_ai"] or "output_tokens" not in step["gen_ai"]["usage"]
    assert not [r for r in recs if r["trace_type"] in ("decision", "error")]
    assert t_kill > 0


def test_sub_agent_hangs_under_its_task_call(agent):
    tr, reply = traced(agent, "subagent")
    assert reply == "subagent Take an umbrella."
    recs = recs_of(tr)
    cot, mine = one_conversation(recs)
    assert len(mine) == len(recs)
    assert cot["name"] == "conversation gpt-4o"
    assert cot["cot"]["steps"] == 2 and cot["cot"]["tool_calls"] == 1
    assert cot["cot"]["final_answer"] == "Take an umbrella."
    assert cot["gen_ai"]["usage"] == {"input_tokens": 80, "output_tokens": 12}
    assert shape(recs, cot) == [("reasoning_step", "chat gpt-4o"),
                                ("tool_call", "execute_tool Task"),
                                ("reasoning_step", "chat gpt-4o")]
    task = kids(recs, cot)[1]
    assert task["gen_ai"]["tool"]["call"]["id"] == "call_task"
    assert task["tool"]["output"] == "Rain in Oslo."
    (sub,) = kids(recs, task)
    assert sub["name"] == "invoke_agent researcher"
    assert sub["trace_type"] == "cot_process"
    assert sub["gen_ai"]["operation"] == {"name": "invoke_agent"}
    assert sub["gen_ai"]["agent"] == {"name": "researcher"}
    assert sub["cot"]["steps"] == 2 and sub["cot"]["tool_calls"] == 1
    assert sub["cot"]["final_answer"] == "Rain in Oslo."
    assert sub["gen_ai"]["usage"] == {"input_tokens": 45, "output_tokens": 8}
    assert shape(recs, sub) == [("reasoning_step", "chat gpt-4o"),
                                ("tool_call", "execute_tool shell"),
                                ("reasoning_step", "chat gpt-4o")]
    inner = kids(recs, sub)[1]
    assert inner["gen_ai"]["tool"]["call"]["id"] == "call_sub"
    assert shape(recs, inner) == [("state_change", "exec sh -c echo rain")]
    assert task["@timestamp"] <= sub["@timestamp"] <= sub["end_time"] <= task["end_time"]


@pytest.mark.parametrize("mode", ["run", "run stream"])
def test_openai_agents_sdk_agent_as_tool_and_handoff(server, cert, mode):  # noqa: F811
    """@openai/agents 0.20.0: the orchestrator asks the weather expert (an agent as a tool: a
    nested run), then hands off to the reporter, whose answer ends the workflow."""
    t = Target(["node", os.path.join(ROOT, "tests", "targets", "agents_sdk.mjs"), str(server)],
               env=dict(os.environ, **{NODE_ENV: str(cert / "cert.pem")}))
    try:
        tr, reply = traced(t, mode)
    finally:
        t.kill()
    assert reply == "final Report: sunny in Paris."
    recs = recs_of(tr)
    cot, mine = one_conversation(recs)
    assert len(mine) == len(recs)
    assert cot["name"] == "conversation gpt-4.1"
    assert cot["status"] == "ok"
    assert cot["cot"]["final_answer"] == "Report: sunny in Paris."
    assert cot["cot"]["steps"] == 3 and cot["cot"]["tool_calls"] == 2
    assert cot["gen_ai"]["usage"] == {"input_tokens": 170, "output_tokens": 24}
    assert shape(recs, cot) == [
        ("reasoning_step", "chat gpt-4.1"), ("tool_call", "execute_tool ask_weather_expert"),
        ("reasoning_step", "chat gpt-4.1"), ("tool_call", "execute_tool transfer_to_Reporter")]
    s1, ask, s2, transfer = kids(recs, cot)
    for step, sel, rid in ((s1, "ask_weather_expert", "resp_orch_1"),
                           (s2, "transfer_to_Reporter", "resp_orch_2")):
        assert step["llm"]["api"] == "responses" and step["llm"]["stream"] is (mode != "run")
        assert step["gen_ai"]["response"]["id"] == rid
        (dec,) = kids(recs, step)
        assert [s["name"] for s in dec["decision"]["selected"]] == [sel]
        assert dec["decision"]["options"] == ["ask_weather_expert", "transfer_to_Reporter"]
    assert ask["gen_ai"]["tool"]["call"]["id"] == "call_ask"
    assert ask["tool"]["input"] == '{"input":"Weather in Paris?"}'
    assert ask["tool"]["output"] == "Sunny in Paris."
    # The expert: a nested run, an agent invoked from the tool call.
    (expert,) = kids(recs, ask)
    assert expert["name"] == "invoke_agent ask_weather_expert"
    assert expert["gen_ai"]["operation"] == {"name": "invoke_agent"}
    assert expert["cot"]["steps"] == 2 and expert["cot"]["tool_calls"] == 1
    assert expert["cot"]["final_answer"] == "Sunny in Paris."
    assert shape(recs, expert) == [("reasoning_step", "chat gpt-4.1"),
                                   ("tool_call", "execute_tool get_weather"),
                                   ("reasoning_step", "chat gpt-4.1")]
    weather = kids(recs, expert)[1]
    assert weather["gen_ai"]["tool"]["call"]["id"] == "call_weather"
    assert weather["tool"]["input"] == '{"city":"Paris"}'
    assert weather["tool"]["output"] == "sunny-in-Paris"
    assert shape(recs, weather) == [("state_change", "exec /bin/sh -c echo sunny-in-Paris")]
    # The reporter: a handoff, under the transfer call, with the last step below it.
    assert transfer["gen_ai"]["tool"]["call"]["id"] == "call_transfer"
    assert transfer["tool"]["output"] == '{"assistant":"Reporter"}'
    (rep,) = kids(recs, transfer)
    assert rep["name"] == "invoke_agent Reporter"
    assert rep["gen_ai"]["agent"] == {"name": "Reporter"}
    assert rep["cot"]["steps"] == 1 and rep["cot"]["final_answer"] == "Report: sunny in Paris."
    assert shape(recs, rep) == [("reasoning_step", "chat gpt-4.1")]
    assert "sk-agents-SECRET" not in "".join(tr.out)


@pytest.mark.parametrize("mode", ["sse", "json"])
def test_mcp_streamable_http_under_the_asking_tool(server, cert, mode):  # noqa: F811
    """The official MCP SDK over streamable HTTP (HTTPS): tools/call answered as SSE or JSON,
    under the agent's tool call that asked for that MCP tool, while a shell tool runs at once."""
    srv = subprocess.Popen(["node", os.path.join(ROOT, "tests", "targets", "mcp_http_server.mjs"),
                            str(cert / "cert.pem"), str(cert / "key.pem"), mode],
                           stdout=subprocess.PIPE, text=True)
    mport = srv.stdout.readline().split()[1]
    t = Target(["node", os.path.join(ROOT, "tests", "targets", "node_agent.mjs"), str(server)],
               env=dict(os.environ, **{NODE_ENV: str(cert / "cert.pem")}))
    try:
        tr, reply = traced(t, f"mcp loop https://localhost:{mport}/mcp")
    finally:
        t.kill()
        srv.kill()
        srv.wait()
    assert reply == "mcp loop 2 5, and node-tool-shell."
    recs = recs_of(tr)
    cot, mine = one_conversation(recs)
    assert cot["cot"]["steps"] == 2 and cot["cot"]["tool_calls"] == 2
    tools = {r["gen_ai"]["tool"]["call"]["id"]: r for r in kids(recs, cot)
             if r["trace_type"] == "tool_call"}
    add, sh = tools["call_add"], tools["call_shell"]
    assert add["name"] == "execute_tool mcp__math__add"
    (call,) = kids(recs, add)
    assert call["name"] == "tools/call add"
    assert call["trace_type"] == "tool_call"
    assert call["tool"] == {"input": '{"a":2,"b":3}', "output": "5", "success": True}
    assert call["gen_ai"]["tool"]["name"] == "add"
    assert call["mcp"]["method"] == {"name": "tools/call"}
    assert len(call["mcp"]["session"]["id"]) == 36  # the server's Mcp-Session-Id (a UUID)
    assert call["url"]["path"] == "/mcp"
    assert call["http"]["response"]["status_code"] == 200
    assert add["@timestamp"] <= call["@timestamp"] <= call["end_time"] <= add["end_time"]
    assert shape(recs, sh) == [("state_change", "exec /bin/sh -c echo node-tool-shell")]
    # The session's set-up (initialize, initialized, the GET stream) is HTTP of its own.
    others = [r for r in recs if r["trace_id"] != cot["trace_id"]]
    assert others and all(r["trace_type"] == "http_call" for r in others)
    assert {r["url"]["path"] for r in others} == {"/mcp"}


def test_identical_openings_at_once_stay_apart(agent):
    """Two conversations with the same system prompt, first message and call ids, on two
    threads, steps interleaved: two traces, each with its own tool call and command."""
    tr, reply = traced(agent, "twins")
    assert reply == "twins Disk left ok. Disk right ok."
    recs = recs_of(tr)
    cots = [r for r in recs if r["trace_type"] == "cot_process"]
    assert len(cots) == 2
    assert cots[0]["trace_id"] != cots[1]["trace_id"]
    assert cots[0]["workflow_id"] != cots[1]["workflow_id"]
    assert len({r["trace_id"] for r in recs}) == 2
    for cot in cots:
        side = cot["cot"]["final_answer"].split()[1]
        assert cot["cot"]["final_answer"] == f"Disk {side} ok."
        assert cot["cot"]["steps"] == 2 and cot["cot"]["tool_calls"] == 1
        s1, tool, s2 = kids(recs, cot)
        assert tool["gen_ai"]["tool"]["call"]["id"] == "call_1"
        assert tool["tool"]["input"] == f'{{"command":"echo {side}"}}'
        assert tool["tool"]["output"] == side
        assert shape(recs, tool) == [("state_change", f"exec sh -c echo {side}")]
        assert s1["process"]["thread"]["id"] == s2["process"]["thread"]["id"]


def test_agent_cli_run_by_a_tool_is_a_sub_agent(agent):
    """A shell tool runs another agent CLI (this same script, --child: the program of the target,
    probed as it starts): its conversation hangs under the tool call as invoke_agent, its own
    tool call and command below that, its process under the tool's shell."""
    tr, reply = traced(agent, "subproc")
    assert reply == "subproc It says Linux."
    recs = recs_of(tr)
    cot, mine = one_conversation(recs)
    assert len(mine) == len(recs)
    assert cot["cot"]["steps"] == 2 and cot["cot"]["tool_calls"] == 1
    assert cot["cot"]["final_answer"] == "It says Linux."
    s1, tool, s2 = kids(recs, cot)
    assert tool["gen_ai"]["tool"]["call"]["id"] == "call_1"
    below = {r["trace_type"]: r for r in kids(recs, tool)}
    assert sorted(below) == ["cot_process", "state_change"]
    sub, sh = below["cot_process"], below["state_change"]
    assert sub["name"] == "invoke_agent python3"
    assert sub["gen_ai"]["agent"] == {"name": "python3"}
    assert sub["cot"]["steps"] == 2 and sub["cot"]["tool_calls"] == 1
    assert sub["cot"]["final_answer"] == "It is Linux."
    assert shape(recs, sub) == [("reasoning_step", "chat gpt-4o"),
                                ("tool_call", "execute_tool shell"),
                                ("reasoning_step", "chat gpt-4o")]
    inner = kids(recs, sub)[1]
    assert shape(recs, inner) == [("state_change", "exec sh -c uname -s")]
    assert sh["name"].startswith("exec sh -c /usr/bin/python3 ") and sh["name"].endswith("--child")
    (cli,) = kids(recs, sh)
    assert cli["name"].startswith("exec /usr/bin/python3 ") and cli["name"].endswith("--child")
    assert kids(recs, cli) == []  # its command went to its own tool call



@pytest.mark.parametrize("how", ["socket", "pipe"])
def test_parallel_calls_of_one_mcp_tool_over_stdio(agent, how):
    """An MCP server over stdio (the official SDK's) started before the conversation; the model
    calls its tool twice at once with different arguments, the agent sends both tools/call
    requests on the one channel before reading either answer: each MCP call hangs under the tool
    call that asked for its arguments, not under the first or the latest one opened."""
    tr = Tracer(["-p", agent.pid, "-o", "jsonl"] + (["--pipes"] if how == "pipe" else []))
    reply = agent.call(f"mcp {how}")
    agent.quit()
    assert tr.finish() == 0
    assert reply == "mcp 5 and 42."
    recs = recs_of(tr)
    cot, mine = one_conversation(recs)
    assert cot["status"] == "ok"
    assert cot["cot"]["steps"] == 2 and cot["cot"]["tool_calls"] == 2
    assert cot["cot"]["final_answer"] == "5 and 42."
    assert cot["gen_ai"]["usage"] == {"input_tokens": 110, "output_tokens": 17}
    assert shape(recs, cot) == [
        ("reasoning_step", "chat gpt-4o"), ("tool_call", "execute_tool mcp__math__add"),
        ("tool_call", "execute_tool mcp__math__add"), ("reasoning_step", "chat gpt-4o")]
    (dec,) = kids(recs, kids(recs, cot)[0])
    assert [(s["name"], s["id"]) for s in dec["decision"]["selected"]] == [
        ("mcp__math__add", "call_add_1"), ("mcp__math__add", "call_add_2")]
    tools = {t["gen_ai"]["tool"]["call"]["id"]: t for t in kids(recs, cot)
             if t["trace_type"] == "tool_call"}
    for cid, args, total, rpc in (("call_add_1", '{"a":2,"b":3}', "5", "8"),
                                  ("call_add_2", '{"a":40,"b":2}', "42", "7")):
        tool = tools[cid]
        assert tool["tool"] == {"input": args, "output": total, "success": True}
        (call,) = kids(recs, tool)
        assert call["name"] == "tools/call add"
        assert call["trace_type"] == "tool_call"
        assert call["tool"] == {"input": args, "output": total, "success": True}
        assert call["gen_ai"]["tool"] == {"name": "add", "call": {"id": rpc}}
        assert call["mcp"] == {"method": {"name": "tools/call"}}
        assert call["process"]["pid"] == agent.pid
        assert tool["@timestamp"] <= call["@timestamp"] <= call["end_time"] <= tool["end_time"]
    # initialize is no tool call; the server, started outside any tool call, is a trace of its
    # own.
    assert len([r for r in recs if r["name"].startswith("tools/call")]) == 2
    (srv,) = [r for r in recs if r["trace_id"] != cot["trace_id"]]
    assert srv["name"] == "exec node " + os.path.join(ROOT, "tests", "targets", "mcp_server.mjs")
    assert srv["process"]["parent"]["pid"] == agent.pid and "parent_span_id" not in srv



@pytest.mark.parametrize("mode", ["chain", "chain-stream", "stateless"])
def test_responses_api_as_codex_uses_it(agent, mode):
    """The Responses API as Codex uses it: reasoning items, a custom tool (apply_patch: free text
    in, no JSON), a built-in one offered (web_search), a namespaced one (github.open_pr), and
    either previous_response_id chains that send only the new items (store on) or the whole
    history with encrypted reasoning (store: false). One trace for the three turns, each tool
    under its conversation with its own command."""
    tr, reply = traced(agent, f"codex {mode}")
    assert reply == "codex Opened PR 17."
    recs = recs_of(tr)
    cot, mine = one_conversation(recs)
    assert len(mine) == len(recs)
    assert cot["name"] == "conversation gpt-5-codex"
    assert cot["status"] == "ok"
    assert cot["cot"] == {"steps": 3, "depth": 6, "tool_calls": 3, "final_answer": "Opened PR 17.",
                          "sequence": ["chat gpt-5-codex", "execute_tool shell",
                                       "execute_tool apply_patch", "chat gpt-5-codex",
                                       "execute_tool github.open_pr", "chat gpt-5-codex"]}
    assert cot["gen_ai"]["usage"] == {"input_tokens": 760, "output_tokens": 56}
    assert shape(recs, cot) == [
        ("reasoning_step", "chat gpt-5-codex"), ("tool_call", "execute_tool shell"),
        ("tool_call", "execute_tool apply_patch"), ("reasoning_step", "chat gpt-5-codex"),
        ("tool_call", "execute_tool github.open_pr"), ("reasoning_step", "chat gpt-5-codex")]
    s1, shell, patch, s2, pr, s3 = kids(recs, cot)
    for step, rid, usage, finish in (
            (s1, "resp_cx_1", (200, 30, 0), "tool_calls"),
            (s2, "resp_cx_2", (260, 20, 192), "tool_calls"),
            (s3, "resp_cx_3", (300, 6, 256), "completed")):
        assert step["llm"]["api"] == "responses"
        assert step["llm"]["stream"] is (mode != "chain")
        assert step["llm"]["tools_offered"] == 4
        assert step["gen_ai"]["response"]["id"] == rid
        assert step["gen_ai"]["response"]["finish_reasons"] == [finish]
        assert step["gen_ai"]["usage"] == {"input_tokens": usage[0], "output_tokens": usage[1],
                                           "cache_read": {"input_tokens": usage[2]}}
    options = ["shell", "apply_patch", "web_search", "github.open_pr"]
    (d1,) = kids(recs, s1)
    assert d1["name"] == "decision shell, apply_patch"
    assert d1["decision"]["options"] == options
    assert d1["decision"]["selected"] == [
        {"name": "shell", "id": "call_sh", "arguments": '{"command":["bash","-c","echo tree-ok"]}'},
        {"name": "apply_patch", "id": "call_patch",
         "arguments": "*** Begin Patch\n*** Update File: README\n@@\n-old\n+new\n*** End Patch"}]
    (d2,) = kids(recs, s2)
    assert d2["name"] == "decision github.open_pr"
    assert d2["decision"]["options"] == options
    assert d2["decision"]["selected"] == [
        {"name": "github.open_pr", "id": "call_pr", "arguments": '{"title":"Fix README"}'}]
    assert kids(recs, s3) == []
    assert shell["gen_ai"]["tool"] == {"name": "shell", "call": {"id": "call_sh"}}
    assert shell["tool"] == {"input": '{"command":["bash","-c","echo tree-ok"]}',
                             "output": "tree-ok", "success": True}
    assert shape(recs, shell) == [("state_change", "exec bash -c echo tree-ok")]
    assert patch["gen_ai"]["tool"] == {"name": "apply_patch", "call": {"id": "call_patch"}}
    assert patch["tool"]["input"].startswith("*** Begin Patch\n")
    assert patch["tool"]["output"] == "Done: README updated"
    assert kids(recs, patch) == []  # applied in the agent's own process
    assert pr["gen_ai"]["tool"] == {"name": "github.open_pr", "call": {"id": "call_pr"}}
    assert pr["tool"] == {"input": '{"title":"Fix README"}', "output": "pr-17", "success": True}
    assert shape(recs, pr) == [("state_change", "exec sh -c echo pr-17")]
    assert s1["end_time"] <= shell["@timestamp"] <= shell["end_time"] <= s2["@timestamp"]
    assert s2["end_time"] <= pr["@timestamp"] <= pr["end_time"] <= s3["@timestamp"]
    assert "sk-coding-SECRET" not in "".join(tr.out)
