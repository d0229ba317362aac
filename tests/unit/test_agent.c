/* The conversation model (trace/agent.c through the trace stage): LLM exchanges with real
 * OpenAI and Anthropic bodies, process events and MCP calls go in; the spans a capturing sink
 * receives are checked exactly: conversations, tool windows, the commands and calls that hang
 * below tool calls, concurrent conversations, idle close and exits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "protocols/jsonrpc.h"
#include "trace/agent.h"
#include "trace/trace.h"

#define MAXOUT 2048

/* What the sink saw: copies of the spans, with the strings they point to kept. */
struct got {
	struct agt_span s;
	char tool_name[128], tool_id[128], tool_in[512], tool_out[512], cmd[300], final[256];
	char seq[8][160];
	int nseq;
	char ev0[64]; /* the first runtime event */
};
static struct got out[MAXOUT];
static int nout;

static void keep(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "(null)");
}

static void collect(struct agt_sink *sk, const struct agt_span *s)
{
	struct got *g;

	(void)sk;
	if (nout >= MAXOUT)
		return;
	g = &out[nout++];
	memset(g, 0, sizeof(*g));
	g->s = *s;
	g->s.http = NULL; /* not kept past the call */
	g->s.llm = NULL;
	keep(g->tool_name, sizeof(g->tool_name), s->tool.name);
	keep(g->tool_id, sizeof(g->tool_id), s->tool.id);
	keep(g->tool_in, sizeof(g->tool_in), s->tool.input);
	keep(g->tool_out, sizeof(g->tool_out), s->tool.output);
	keep(g->cmd, sizeof(g->cmd), s->exec.command_line);
	keep(g->final, sizeof(g->final), s->cot.final_answer);
	for (int i = 0; i < s->cot.nsequence && i < 8; i++)
		keep(g->seq[i], sizeof(g->seq[i]), s->cot.sequence[i]);
	g->nseq = s->cot.nsequence;
	if (s->tool.nevents)
		keep(g->ev0, sizeof(g->ev0), s->tool.events[0].name);
	g->s.tool.events = NULL;
}

static struct agt_sink sink = {.span = collect};
static struct agt_proc_info procA = {.pid = 100, .comm = "agent"};
static struct agt_proc_info procB = {.pid = 200, .comm = "other"};

static const struct agt_proc_info *facts(void *ctx, uint32_t pid)
{
	(void)ctx;
	return pid == 100 ? &procA : pid == 200 ? &procB : NULL;
}

static struct agt_trace T;

static int setup(void **state)
{
	(void)state;
	nout = 0;
	return agt_trace_init(&T, &sink, NULL, NULL, (struct agt_proc_facts){facts, NULL}, 16, 16,
			      1 << 20);
}

static int teardown(void **state)
{
	(void)state;
	agt_trace_fini(&T);
	return 0;
}

static struct agt_http_msg *msg(int req, const char *url, const char *body, uint64_t start,
				uint64_t end, uint32_t tid, int status)
{
	struct agt_http_msg *m = calloc(1, sizeof(*m));

	m->is_request = req;
	snprintf(m->method, sizeof(m->method), "%s", req ? "POST" : "");
	m->url = strdup(url ? url : "");
	m->status = status;
	m->body = (uint8_t *)strdup(body);
	m->body_len = m->body_seen = strlen(body);
	m->start_ns = start;
	m->first_body_ns = req ? 0 : start;
	m->end_ns = end;
	m->tid = tid;
	m->hdrs = calloc(1, sizeof(*m->hdrs));
	m->hdrs[0].name = strdup("Host");
	m->hdrs[0].value = strdup("api.example");
	m->nhdrs = 1;
	return m;
}

/* One OpenAI chat exchange from t0 to t1 on thread tid; resp NULL: never answered. */
static void chat(const struct agt_proc_info *p, uint32_t tid, uint64_t t0, uint64_t t1,
		 const char *req, const char *resp)
{
	agt_trace_exchange(&T, p, msg(1, "/v1/chat/completions", req, t0, t0 + 1, tid, 0),
			   resp ? msg(0, NULL, resp, t1 - 1, t1, tid, 200) : NULL);
}

#define SYS "{\"role\":\"system\",\"content\":\"You are terse.\"}"
#define USER(q) "{\"role\":\"user\",\"content\":\"" q "\"}"
#define TOOLS ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}]"
#define REQ(msgs) "{\"model\":\"gpt-4o\",\"messages\":[" msgs "]" TOOLS "}"
#define ASKS(id, args)                                                                           \
	"{\"id\":\"r1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"finish_reason\":"        \
	"\"tool_calls\",\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{"    \
	"\"id\":\"" id "\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","          \
	"\"arguments\":\"" args "\"}}]}}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3}}"
#define ASKS2                                                                                    \
	"{\"id\":\"r1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"finish_reason\":"        \
	"\"tool_calls\",\"message\":{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\","       \
	"\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}},"     \
	"{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":"  \
	"\"{}\"}}]}}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3}}"
#define ANSWER(text)                                                                             \
	"{\"id\":\"r2\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"finish_reason\":\"stop\"," \
	"\"message\":{\"role\":\"assistant\",\"content\":\"" text "\"}}],\"usage\":{"            \
	"\"prompt_tokens\":20,\"completion_tokens\":5}}"
#define CALLMSG(id)                                                                              \
	"{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"" id "\",\"type\":\"function\","       \
	"\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]}"
#define RESULT(id, text) "{\"role\":\"tool\",\"tool_call_id\":\"" id "\",\"content\":\"" text "\"}"

static struct got *find(const char *name, int nth)
{
	for (int i = 0; i < nout; i++)
		if (!strcmp(out[i].s.name, name) && nth-- == 0)
			return &out[i];
	return NULL;
}

static int count(const char *trace_type)
{
	int n = 0;

	for (int i = 0; i < nout; i++)
		n += !strcmp(out[i].s.trace_type, trace_type);
	return n;
}

static int same_trace(const struct got *a, const struct got *b)
{
	return !memcmp(a->s.trace_id, b->s.trace_id, 16);
}

/* The common two-step loop: ask (tool call c1), answer with the result. */
static void loop(const struct agt_proc_info *p, uint32_t tid, const char *user, uint64_t t)
{
	char r1[512], r2[1024];

	snprintf(r1, sizeof(r1), REQ(SYS ",%s"), user);
	snprintf(r2, sizeof(r2), REQ(SYS ",%s," CALLMSG("c1") "," RESULT("c1", "18C")), user);
	chat(p, tid, t, t + 10, r1, ASKS("c1", "{\\\"city\\\":\\\"Oslo\\\"}"));
	chat(p, tid, t + 50, t + 60, r2, ANSWER("It is 18C."));
}

static void final_answer_ends_conversation(void **state)
{
	(void)state;
	chat(&procA, 1, 1000, 2000, REQ(SYS "," USER("hi")), ANSWER("Hello."));
	assert_int_equal(nout, 2);
	struct got *step = find("chat gpt-4o", 0), *cot = find("conversation gpt-4o", 0);

	assert_non_null(step);
	assert_non_null(cot);
	assert_string_equal(cot->s.trace_type, "cot_process");
	assert_int_equal(cot->s.status, AGT_STATUS_OK);
	assert_int_equal(cot->s.parent_id, 0);
	assert_int_equal(step->s.parent_id, cot->s.span_id);
	assert_true(same_trace(step, cot));
	assert_int_equal(cot->s.cot.steps, 1);
	assert_int_equal(cot->s.cot.tool_calls, 0);
	assert_int_equal(cot->s.cot.input_tokens, 20);
	assert_int_equal(cot->s.cot.output_tokens, 5);
	assert_string_equal(cot->final, "Hello.");
	assert_int_equal(cot->nseq, 1);
	assert_string_equal(cot->seq[0], "chat gpt-4o");
	assert_int_equal(cot->s.start_ns, 1000);
	assert_int_equal(cot->s.end_ns, 2000);
}

static void tool_call_spans_its_window(void **state)
{
	(void)state;
	loop(&procA, 1, USER("weather?"), 1000);
	struct got *s1 = find("chat gpt-4o", 0), *s2 = find("chat gpt-4o", 1);
	struct got *tool = find("execute_tool get_weather", 0), *dec = find("decision get_weather", 0);
	struct got *cot = find("conversation gpt-4o", 0);

	assert_non_null(tool);
	assert_non_null(dec);
	assert_int_equal(tool->s.start_ns, s1->s.end_ns);
	assert_int_equal(tool->s.end_ns, s2->s.start_ns);
	assert_string_equal(tool->tool_id, "c1");
	assert_string_equal(tool->tool_in, "{\"city\":\"Oslo\"}");
	assert_string_equal(tool->tool_out, "18C");
	assert_int_equal(tool->s.tool.success, 1);
	assert_int_equal(tool->s.status, AGT_STATUS_OK);
	assert_int_equal(tool->s.parent_id, cot->s.span_id);
	assert_int_equal(dec->s.parent_id, s1->s.span_id);
	assert_int_equal(cot->s.cot.steps, 2);
	assert_int_equal(cot->s.cot.tool_calls, 1);
	assert_int_equal(cot->s.cot.input_tokens, 30);
	assert_int_equal(cot->s.cot.output_tokens, 8);
	assert_int_equal(cot->nseq, 3);
	assert_string_equal(cot->seq[1], "execute_tool get_weather");
	for (int i = 0; i < nout; i++) {
		assert_true(same_trace(&out[i], cot));
		assert_string_equal(out[i].s.workflow_id, cot->s.workflow_id);
	}
	assert_int_equal(strlen(cot->s.workflow_id), 16);
}

static void parallel_tool_calls_each_end_with_their_result(void **state)
{
	(void)state;
	chat(&procA, 1, 1000, 1010, REQ(SYS "," USER("two")), ASKS2);
	chat(&procA, 1, 1100, 1110,
	     REQ(SYS "," USER("two") "," RESULT("c2", "noon") "," RESULT("c1", "sun")),
	     ANSWER("done"));
	struct got *a = find("execute_tool get_weather", 0), *b = find("execute_tool get_time", 0);

	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a->tool_out, "sun");
	assert_string_equal(b->tool_out, "noon");
	assert_int_equal(a->s.end_ns, 1100);
	assert_int_equal(b->s.end_ns, 1100);
	assert_int_equal(find("conversation gpt-4o", 0)->s.cot.tool_calls, 2);
}

static void replayed_results_are_not_tool_calls_again(void **state)
{
	(void)state;
	chat(&procA, 1, 1000, 1010, REQ(SYS "," USER("q")), ASKS("c1", "{}"));
	chat(&procA, 1, 1100, 1110, REQ(SYS "," USER("q") "," CALLMSG("c1") "," RESULT("c1", "x")),
	     ASKS("c9", "{}"));
	chat(&procA, 1, 1200, 1210,
	     REQ(SYS "," USER("q") "," CALLMSG("c1") "," RESULT("c1", "x") "," CALLMSG("c9") "," RESULT(
		 "c9", "y")),
	     ANSWER("ok"));
	assert_int_equal(count("tool_call"), 2);
	assert_string_equal(find("execute_tool get_weather", 0)->tool_id, "c1");
	assert_string_equal(find("execute_tool get_weather", 1)->tool_id, "c9");
	assert_int_equal(find("conversation gpt-4o", 0)->s.cot.steps, 3);
}

static void anthropic_error_result_marks_the_tool(void **state)
{
	(void)state;
	const char *req1 = "{\"model\":\"claude-x\",\"max_tokens\":100,\"system\":\"s\","
			   "\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}";
	const char *resp1 = "{\"id\":\"m1\",\"model\":\"claude-x\",\"stop_reason\":\"tool_use\","
			    "\"content\":[{\"type\":\"tool_use\",\"id\":\"tu1\",\"name\":\"sh\","
			    "\"input\":{\"cmd\":\"false\"}}],\"usage\":{\"input_tokens\":7,"
			    "\"output_tokens\":2}}";
	const char *req2 = "{\"model\":\"claude-x\",\"max_tokens\":100,\"system\":\"s\","
			   "\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":"
			   "\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"tu1\","
			   "\"name\":\"sh\",\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":"
			   "\"tool_result\",\"tool_use_id\":\"tu1\",\"content\":\"exit 1\","
			   "\"is_error\":true}]}]}";
	const char *resp2 = "{\"id\":\"m2\",\"model\":\"claude-x\",\"stop_reason\":\"end_turn\","
			    "\"content\":[{\"type\":\"text\",\"text\":\"failed\"}],\"usage\":{"
			    "\"input_tokens\":9,\"output_tokens\":1}}";

	agt_trace_exchange(&T, &procA, msg(1, "/v1/messages", req1, 1000, 1001, 1, 0),
			   msg(0, NULL, resp1, 1009, 1010, 1, 200));
	agt_trace_exchange(&T, &procA, msg(1, "/v1/messages", req2, 1100, 1101, 1, 0),
			   msg(0, NULL, resp2, 1109, 1110, 1, 200));
	struct got *tool = find("execute_tool sh", 0), *err = find("error tool_result", 0);

	assert_non_null(tool);
	assert_int_equal(tool->s.status, AGT_STATUS_ERROR);
	assert_int_equal(tool->s.tool.success, 0);
	assert_string_equal(tool->tool_out, "exit 1");
	assert_non_null(err);
	assert_int_equal(err->s.parent_id, tool->s.span_id);
	assert_int_equal(find("conversation claude-x", 0)->s.status, AGT_STATUS_OK);
}

static void concurrent_conversations_stay_apart(void **state)
{
	(void)state;
	chat(&procA, 1, 1000, 1010, REQ(SYS "," USER("A")), ASKS("ca", "{}"));
	chat(&procA, 2, 1005, 1015, REQ(SYS "," USER("B")), ASKS("cb", "{}"));
	chat(&procA, 2, 1100, 1110, REQ(SYS "," USER("B") "," CALLMSG("cb") "," RESULT("cb", "b")),
	     ANSWER("B done"));
	chat(&procA, 1, 1105, 1115, REQ(SYS "," USER("A") "," CALLMSG("ca") "," RESULT("ca", "a")),
	     ANSWER("A done"));
	struct got *c0 = find("conversation gpt-4o", 0), *c1 = find("conversation gpt-4o", 1);

	assert_non_null(c0);
	assert_non_null(c1);
	assert_false(same_trace(c0, c1));
	assert_string_not_equal(c0->s.workflow_id, c1->s.workflow_id);
	assert_string_equal(c0->final, "B done"); /* B finished first */
	for (int i = 0; i < nout; i++) {
		struct got *g = &out[i];

		if (!strcmp(g->s.trace_type, "tool_call"))
			assert_true(same_trace(g, !strcmp(g->tool_out, "b") ? c0 : c1));
	}
}

static void same_opening_in_two_processes_is_two_conversations(void **state)
{
	(void)state;
	loop(&procA, 1, USER("same"), 1000);
	loop(&procB, 1, USER("same"), 1000);
	assert_int_equal(count("cot_process"), 2);
	assert_false(same_trace(find("conversation gpt-4o", 0), find("conversation gpt-4o", 1)));
	assert_int_equal(find("conversation gpt-4o", 0)->s.pid, 100);
	assert_int_equal(find("conversation gpt-4o", 1)->s.pid, 200);
}

static void idle_conversation_closes_unfinished(void **state)
{
	(void)state;
	unsigned convs, pending;

	chat(&procA, 1, 1000, 1010, REQ(SYS "," USER("idle")), ASKS("c1", "{}"));
	agt_agent_open(T.agent, &convs, &pending);
	assert_int_equal(convs, 1);
	assert_int_equal(pending, 1);
	agt_agent_expire(T.agent, 5000, 1000000); /* not idle long enough */
	assert_null(find("conversation gpt-4o", 0));
	agt_agent_expire(T.agent, 2000000, 1000000);
	struct got *cot = find("conversation gpt-4o", 0), *tool = find("execute_tool get_weather", 0);

	assert_non_null(cot);
	assert_int_equal(cot->s.status, AGT_STATUS_UNFINISHED);
	assert_int_equal(tool->s.status, AGT_STATUS_UNFINISHED);
	assert_string_equal(tool->tool_out, "(null)");
	assert_int_equal(agt_agent_stats(T.agent)->convs_idle, 1);
	agt_agent_open(T.agent, &convs, &pending);
	assert_int_equal(convs + pending, 0);
}

static void process_exit_closes_its_conversations_only(void **state)
{
	(void)state;
	chat(&procA, 1, 1000, 1010, REQ(SYS "," USER("a")), ASKS("c1", "{}"));
	chat(&procB, 1, 1000, 1010, REQ(SYS "," USER("b")), ASKS("c1", "{}"));
	agt_trace_proc_gone(&T, 100, 3000);
	assert_int_equal(count("cot_process"), 1);
	struct got *cot = find("conversation gpt-4o", 0);

	assert_int_equal(cot->s.pid, 100);
	assert_int_equal(cot->s.end_ns, 3000);
	assert_int_equal(cot->s.status, AGT_STATUS_UNFINISHED);
	agt_trace_proc_forget(&T, &procB, 4000);
	assert_int_equal(count("cot_process"), 2);
	assert_int_equal(find("conversation gpt-4o", 1)->s.pid, 200);
}

static void failed_step_keeps_the_conversation_going(void **state)
{
	(void)state;
	agt_trace_exchange(&T, &procA,
			   msg(1, "/v1/chat/completions", REQ(SYS "," USER("retry")), 1000, 1001, 1,
			       0),
			   msg(0, NULL,
			       "{\"error\":{\"type\":\"rate_limit\",\"message\":\"slow down\"}}",
			       1009, 1010, 1, 429));
	assert_null(find("conversation gpt-4o", 0));
	assert_non_null(find("error rate_limit", 0));
	chat(&procA, 1, 1100, 1110, REQ(SYS "," USER("retry")), ANSWER("ok"));
	struct got *cot = find("conversation gpt-4o", 0);

	assert_non_null(cot);
	assert_int_equal(cot->s.cot.steps, 2);
	assert_true(same_trace(cot, find("chat gpt-4o", 0)));
	assert_int_equal(find("chat gpt-4o", 0)->s.status, AGT_STATUS_ERROR);
}

static void unanswered_step_is_unfinished(void **state)
{
	(void)state;
	chat(&procA, 1, 1000, 0, REQ(SYS "," USER("q")), NULL);
	struct got *step = find("chat gpt-4o", 0);

	assert_non_null(step);
	assert_int_equal(step->s.status, AGT_STATUS_UNFINISHED);
	assert_null(find("conversation gpt-4o", 0)); /* the conversation is still open */
}

/* A command the tool's thread started while the tool ran. */
static void spawn(uint32_t pid, uint32_t ppid, uint32_t ptid, const char *argv, uint64_t t0,
		  uint64_t t1, int code)
{
	char buf[256];
	size_t n = strlen(argv);

	memcpy(buf, argv, n + 1);
	for (size_t i = 0; i < n; i++) /* NUL-separated, as the kernel reports argv */
		if (buf[i] == ' ')
			buf[i] = 0;
	agt_agent_fork(T.agent, pid, ppid, ptid, t0);
	agt_agent_exec(T.agent, pid, "/bin/x", buf, (uint32_t)n, t0 + 1);
	if (t1)
		agt_agent_exit(T.agent, pid, (uint32_t)code << 8, t1);
}

static void commands_hang_below_their_tool_call(void **state)
{
	(void)state;
	chat(&procA, 7, 1000, 1010, REQ(SYS "," USER("cmd")), ASKS("c1", "{}"));
	spawn(300, 100, 7, "sh -c date", 1020, 1040, 0);
	spawn(301, 300, 300, "date +%s", 1025, 1030, 0);
	chat(&procA, 7, 1100, 1110, REQ(SYS "," USER("cmd") "," CALLMSG("c1") "," RESULT("c1", "t")),
	     ANSWER("ok"));
	struct got *tool = find("execute_tool get_weather", 0), *sh = find("exec sh -c date", 0);
	struct got *date = find("exec date +%s", 0);

	assert_non_null(sh);
	assert_non_null(date);
	assert_int_equal(sh->s.parent_id, tool->s.span_id);
	assert_int_equal(date->s.parent_id, sh->s.span_id);
	assert_true(same_trace(sh, tool));
	assert_string_equal(sh->cmd, "sh -c date");
	assert_int_equal(sh->s.exec.ppid, 100);
	assert_int_equal(date->s.exec.ppid, 300);
	assert_int_equal(sh->s.start_ns, 1020);
	assert_int_equal(sh->s.end_ns, 1040);
	assert_int_equal(sh->s.exit_code, 0);
	assert_int_equal(sh->s.status, AGT_STATUS_OK);
	assert_int_equal(agt_agent_stats(T.agent)->commands, 2);
}

/* Changed with the agents branch: a command inside a tool call that succeeded used to get an
 * "error command failed" child; a tool's failure now comes from its result (or from the command
 * it was asked to run), and what a command's exit code says stays on its own span. */
static void failed_command_keeps_its_exit_code_without_error_span(void **state)
{
	(void)state;
	chat(&procA, 7, 1000, 1010, REQ(SYS "," USER("f")), ASKS("c1", "{}"));
	spawn(300, 100, 7, "false", 1020, 1030, 3);
	chat(&procA, 7, 1100, 1110, REQ(SYS "," USER("f") "," CALLMSG("c1") "," RESULT("c1", "3")),
	     ANSWER("ok"));
	struct got *cmd = find("exec false", 0);

	assert_non_null(cmd);
	assert_int_equal(cmd->s.status, AGT_STATUS_ERROR);
	assert_int_equal(cmd->s.exit_code, 3);
	assert_string_equal(cmd->s.message, "exit 3");
	assert_null(find("error command failed", 0));
	assert_int_equal(count("error"), 0);
	/* The tool call itself succeeded: OpenAI results carry no error flag, and its arguments
	 * name no command. */
	assert_int_equal(find("execute_tool get_weather", 0)->s.status, AGT_STATUS_OK);
}

static void command_outside_any_tool_call_is_a_trace_of_its_own(void **state)
{
	(void)state;
	spawn(300, 100, 1, "ls", 500, 600, 0);
	chat(&procA, 1, 1000, 1010, REQ(SYS "," USER("x")), ANSWER("ok"));
	struct got *ls = find("exec ls", 0), *cot = find("conversation gpt-4o", 0);

	assert_non_null(ls);
	assert_int_equal(ls->s.parent_id, 0);
	assert_false(same_trace(ls, cot));
	assert_string_equal(ls->s.workflow_id, "");
}

static void command_still_running_at_exit_is_unfinished(void **state)
{
	(void)state;
	spawn(300, 100, 1, "sleep 100", 500, 0, 0);
	agt_trace_proc_gone(&T, 100, 9000);
	struct got *sl = find("exec sleep 100", 0);

	assert_non_null(sl);
	assert_int_equal(sl->s.status, AGT_STATUS_UNFINISHED);
	assert_int_equal(sl->s.end_ns, 9000);
	assert_int_equal(sl->s.parent_id, 0);
}

static void deep_and_wide_command_trees_are_emitted_whole(void **state)
{
	(void)state;
	unsigned pid = 1000;

	chat(&procA, 7, 1000, 1010, REQ(SYS "," USER("tree")), ASKS("c1", "{}"));
	spawn(pid, 100, 7, "bash -c tree", 1020, 5000, 0);
	for (int i = 0; i < 400; i++) /* wide: 400 children of bash */
		spawn(pid + 1 + i, pid, pid, "true", 1030 + i, 1031 + i, 0);
	unsigned parent = pid;
	for (int i = 0; i < 300; i++) { /* deep: a chain of 300 */
		spawn(2000 + i, parent, parent, "sub", 1100 + i, 4000 - i, 0);
		parent = 2000 + i;
	}
	agt_trace_proc_gone(&T, 100, 9000);
	int trues = 0, subs = 0;
	struct got *tool = find("execute_tool get_weather", 0), *bash = find("exec bash -c tree", 0);

	assert_non_null(tool);
	assert_int_equal(bash->s.parent_id, tool->s.span_id);
	for (int i = 0; i < nout; i++) {
		trues += !strcmp(out[i].s.name, "exec true");
		subs += !strcmp(out[i].s.name, "exec sub");
		if (!strcmp(out[i].s.name, "exec true"))
			assert_int_equal(out[i].s.parent_id, bash->s.span_id);
	}
	assert_int_equal(trues, 400);
	assert_int_equal(subs, 300);
	/* Each link of the chain hangs below the one before it. */
	for (int i = 1; i < 300; i++) {
		char want[16];
		struct got *me = NULL, *up = NULL;

		snprintf(want, sizeof(want), "%u", 2000 + i);
		for (int k = 0; k < nout; k++) {
			if (out[k].s.pid == (uint32_t)(2000 + i))
				me = &out[k];
			if (out[k].s.pid == (uint32_t)(2000 + i - 1))
				up = &out[k];
		}
		assert_non_null(me);
		assert_int_equal(me->s.parent_id, up->s.span_id);
	}
	assert_int_equal(agt_agent_stats(T.agent)->children_dropped, 0);
}

static void http_made_during_a_tool_hangs_below_it(void **state)
{
	(void)state;
	chat(&procA, 7, 1000, 1010, REQ(SYS "," USER("h")), ASKS("c1", "{}"));
	agt_trace_exchange(&T, &procA, msg(1, "/lookup?city=Oslo", "{\"q\":1}", 1020, 1021, 7, 0),
			   msg(0, NULL, "{}", 1029, 1030, 7, 200));
	chat(&procA, 7, 1100, 1110, REQ(SYS "," USER("h") "," CALLMSG("c1") "," RESULT("c1", "t")),
	     ANSWER("ok"));
	struct got *http = find("POST api.example/lookup", 0);

	assert_non_null(http);
	assert_int_equal(http->s.parent_id, find("execute_tool get_weather", 0)->s.span_id);
	assert_true(same_trace(http, find("conversation gpt-4o", 0)));
}

static void http_outside_a_tool_is_a_root(void **state)
{
	(void)state;
	agt_trace_exchange(&T, &procA, msg(1, "/ping", "{}", 10, 11, 7, 0),
			   msg(0, NULL, "{}", 19, 20, 7, 200));
	struct got *http = find("POST api.example/ping", 0);

	assert_non_null(http);
	assert_int_equal(http->s.parent_id, 0);
	assert_string_equal(http->s.workflow_id, "");
}

static void mcp_call_during_a_tool_hangs_below_it(void **state)
{
	(void)state;
	struct agt_mcp_call c = {.id = "5",
				 .name = "search",
				 .arguments = "{\"q\":\"x\"}",
				 .result = "found",
				 .answered = 1,
				 .start_ns = 1020,
				 .end_ns = 1030,
				 .tid = 7};

	chat(&procA, 7, 1000, 1010, REQ(SYS "," USER("m")), ASKS("c1", "{}"));
	agt_trace_mcp(&T, &procA, &c);
	struct got *m = find("tools/call search", 0);

	assert_non_null(m);
	assert_int_equal(m->s.tool.mcp, 1);
	assert_string_equal(m->tool_out, "found");
	assert_int_equal(m->s.status, AGT_STATUS_OK);
	chat(&procA, 7, 1100, 1110, REQ(SYS "," USER("m") "," CALLMSG("c1") "," RESULT("c1", "t")),
	     ANSWER("ok"));
	assert_int_equal(m->s.parent_id, find("execute_tool get_weather", 0)->s.span_id);
}

static void runtime_events_are_kept_on_the_tool_call(void **state)
{
	(void)state;
	chat(&procA, 7, 1000, 1010, REQ(SYS "," USER("a")), ASKS("c1", "{}"));
	agt_agent_audit(T.agent, 100, 7, 1020, "subprocess.Popen");
	agt_agent_audit(T.agent, 100, 7, 1021, "import");	   /* chatter: ignored */
	agt_agent_audit(T.agent, 100, 7, 1022, "socket.connect");
	for (int i = 0; i < 40; i++) /* 32 at most per tool call */
		agt_agent_audit(T.agent, 100, 7, 1030 + i, "open");
	chat(&procA, 7, 1100, 1110, REQ(SYS "," USER("a") "," CALLMSG("c1") "," RESULT("c1", "t")),
	     ANSWER("ok"));
	struct got *tool = find("execute_tool get_weather", 0);

	assert_int_equal(tool->s.tool.nevents, 32);
	assert_string_equal(tool->ev0, "subprocess.Popen");
	assert_int_equal(agt_agent_stats(T.agent)->events_over_cap, 10);
}

static void followed_descendants_data_belongs_to_the_target(void **state)
{
	(void)state;
	agt_agent_fork(T.agent, 300, 100, 100, 10);
	agt_agent_fork(T.agent, 301, 300, 300, 11);
	assert_ptr_equal(agt_agent_root_proc(T.agent, 301), &procA);
	assert_ptr_equal(agt_agent_root_proc(T.agent, 300), &procA);
	assert_null(agt_agent_root_proc(T.agent, 999));
	/* A fork by a process that is neither a target nor followed is not followed. */
	agt_agent_fork(T.agent, 400, 999, 999, 12);
	assert_null(agt_agent_root_proc(T.agent, 400));
}

static void reused_child_pid_starts_a_new_command(void **state)
{
	(void)state;
	chat(&procA, 7, 1000, 1010, REQ(SYS "," USER("r")), ASKS("c1", "{}"));
	spawn(300, 100, 7, "first", 1020, 1030, 0);
	spawn(300, 100, 7, "second", 1040, 1050, 1); /* the PID came back */
	chat(&procA, 7, 1100, 1110, REQ(SYS "," USER("r") "," CALLMSG("c1") "," RESULT("c1", "t")),
	     ANSWER("ok"));
	assert_non_null(find("exec first", 0));
	assert_non_null(find("exec second", 0));
	assert_int_equal(find("exec first", 0)->s.exit_code, 0);
	assert_int_equal(find("exec second", 0)->s.exit_code, 1);
}

static void flush_ends_everything_open(void **state)
{
	(void)state;
	chat(&procA, 1, 1000, 1010, REQ(SYS "," USER("a")), ASKS("c1", "{}"));
	chat(&procB, 1, 1000, 1010, REQ(SYS "," USER("b")), ASKS("c1", "{}"));
	spawn(300, 100, 9, "orphan", 1020, 0, 0);
	agt_trace_flush(&T, 7000);
	assert_int_equal(count("cot_process"), 2);
	assert_int_equal(count("tool_call"), 2);
	assert_non_null(find("exec orphan", 0));
	for (int i = 0; i < nout; i++)
		if (strcmp(out[i].s.trace_type, "reasoning_step") &&
		    strcmp(out[i].s.trace_type, "decision"))
			assert_int_equal(out[i].s.status, AGT_STATUS_UNFINISHED);
	assert_int_equal(T.em.unfinished, 5);
}

static void state_events_name_the_process(void **state)
{
	(void)state;
	agt_trace_state(&T, &procA, 42, "exit", "exited with code 3", 1, 3 << 8);
	assert_int_equal(nout, 1);
	assert_string_equal(out[0].s.name, "exit agent");
	assert_string_equal(out[0].s.trace_type, "state_change");
	assert_int_equal(out[0].s.exit_code, 3);
	assert_int_equal(out[0].s.status, AGT_STATUS_ERROR);
	assert_int_equal(out[0].s.parent_id, 0);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T_(final_answer_ends_conversation),
	    T_(tool_call_spans_its_window),
	    T_(parallel_tool_calls_each_end_with_their_result),
	    T_(replayed_results_are_not_tool_calls_again),
	    T_(anthropic_error_result_marks_the_tool),
	    T_(concurrent_conversations_stay_apart),
	    T_(same_opening_in_two_processes_is_two_conversations),
	    T_(idle_conversation_closes_unfinished),
	    T_(process_exit_closes_its_conversations_only),
	    T_(failed_step_keeps_the_conversation_going),
	    T_(unanswered_step_is_unfinished),
	    T_(commands_hang_below_their_tool_call),
	    T_(failed_command_keeps_its_exit_code_without_error_span),
	    T_(command_outside_any_tool_call_is_a_trace_of_its_own),
	    T_(command_still_running_at_exit_is_unfinished),
	    T_(deep_and_wide_command_trees_are_emitted_whole),
	    T_(http_made_during_a_tool_hangs_below_it),
	    T_(http_outside_a_tool_is_a_root),
	    T_(mcp_call_during_a_tool_hangs_below_it),
	    T_(runtime_events_are_kept_on_the_tool_call),
	    T_(followed_descendants_data_belongs_to_the_target),
	    T_(reused_child_pid_starts_a_new_command),
	    T_(flush_ends_everything_open),
	    T_(state_events_name_the_process),
	};
	return cmocka_run_group_tests_name("agent", tests, NULL, NULL);
}
