/* The conversation model (trace/agent.c through the trace stage): LLM exchanges with real
 * OpenAI and Anthropic bodies, process events and MCP calls go in; the spans a capturing sink
 * receives are checked exactly: conversations, tool windows, the commands and calls that hang
 * below tool calls, concurrent conversations, idle close and exits. A plain loop is the captured
 * fixture (tests/fixtures/llm, fixture_xchg); the bodies written out here are the shapes each
 * test needs and no fixture has: openings, call ids and arguments chosen per test (two
 * conversations apart, a command matched by its arguments), parallel calls, results replayed,
 * moving cache markers, cut streams, handoffs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
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
	char ev0[64]; /* the first runtime event (of a tool call) or later exec (of a command) */
	char ev0_detail[192]; /* ... and its detail (a later exec's command line) */
	char agent[128], session[128], partial[256], comm[17];
	int64_t in_tokens, ttfc_us;
	int http_status, incomplete, ndecided;
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
	if (s->kind == AGT_SPAN_EXEC && s->exec.nevents) {
		keep(g->ev0, sizeof(g->ev0), s->exec.events[0].name);
		keep(g->ev0_detail, sizeof(g->ev0_detail), s->exec.events[0].detail);
	}
	g->s.tool.events = NULL;
	g->s.exec.events = NULL;
	keep(g->agent, sizeof(g->agent), s->cot.agent_name);
	keep(g->comm, sizeof(g->comm), s->proc ? s->proc->comm : NULL);
	g->s.proc = NULL; /* a command's record is gone after the call */
	keep(g->session, sizeof(g->session), s->tool.mcp_session);
	if (s->llm) {
		g->in_tokens = s->llm->input_tokens;
		g->incomplete = s->llm->incomplete;
		g->ndecided = s->llm->ncalls;
		keep(g->partial, sizeof(g->partial), s->llm->text);
	}
	if (s->http) {
		g->http_status = s->http->answered ? s->http->status : -1;
		g->ttfc_us = s->http->ttfc_us;
	}
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

/* The captured exchange tests/fixtures/llm/NAME, on thread 1 of procA, from t0 to t1. */
static void fixture_xchg(const char *name, uint64_t t0, uint64_t t1)
{
	char file[256], *meta, *req, *resp;
	size_t len;
	cJSON *m;
	struct agt_http_msg *q, *r;

	snprintf(file, sizeof(file), "tests/fixtures/llm/%s.meta.json", name);
	meta = agt_read_file(file, 1 << 20, &len);
	snprintf(file, sizeof(file), "tests/fixtures/llm/%s.request.json", name);
	req = agt_read_file(file, 1 << 20, &len);
	snprintf(file, sizeof(file), "tests/fixtures/llm/%s.response", name);
	resp = agt_read_file(file, 1 << 20, &len);
	if (!meta || !req || !resp)
		fail_msg("cannot read the fixture %s", name);
	m = cJSON_Parse(meta);
	assert_non_null(m);
	q = msg(1, cJSON_GetObjectItem(m, "path")->valuestring, req, t0, t0 + 1, 1, 0);
	r = msg(0, NULL, resp, t1 - 1, t1, 1, cJSON_GetObjectItem(m, "status")->valueint);
	r->hdrs = realloc(r->hdrs, 2 * sizeof(*r->hdrs));
	r->hdrs[1].name = strdup("Content-Type");
	r->hdrs[1].value = strdup(cJSON_GetObjectItem(m, "content_type")->valuestring);
	r->nhdrs = 2;
	agt_trace_exchange(&T, &procA, q, r);
	cJSON_Delete(m);
	free(meta);
	free(req);
	free(resp);
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

/* The OpenAI SDK's loop as captured: a tool call, then the answer with its result. */
static void tool_call_spans_its_window(void **state)
{
	(void)state;
	fixture_xchg("openai/chat-loop-call", 1000, 1010);
	fixture_xchg("openai/chat-loop-answer", 1050, 1060);
	struct got *s1 = find("chat gpt-4o", 0), *s2 = find("chat gpt-4o", 1);
	struct got *tool = find("execute_tool get_weather", 0), *dec = find("decision get_weather", 0);
	struct got *cot = find("conversation gpt-4o", 0);

	assert_non_null(tool);
	assert_non_null(dec);
	assert_int_equal(tool->s.start_ns, s1->s.end_ns);
	assert_int_equal(tool->s.end_ns, s2->s.start_ns);
	assert_string_equal(tool->tool_id, "call_weather_1");
	assert_string_equal(tool->tool_in, "{\"city\":\"Paris\",\"unit\":\"celsius\"}");
	assert_string_equal(tool->tool_out, "node-tool-openai");
	assert_int_equal(tool->s.tool.success, 1);
	assert_int_equal(tool->s.status, AGT_STATUS_OK);
	assert_int_equal(tool->s.parent_id, cot->s.span_id);
	assert_int_equal(dec->s.parent_id, s1->s.span_id);
	assert_int_equal(cot->s.cot.steps, 2);
	assert_int_equal(cot->s.cot.tool_calls, 1);
	assert_int_equal(cot->s.cot.input_tokens, 84);
	assert_int_equal(cot->s.cot.output_tokens, 14);
	assert_int_equal(cot->nseq, 3);
	assert_string_equal(cot->seq[1], "execute_tool get_weather");
	assert_string_equal(cot->final, "It is sunny in Paris.");
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

/* A response asking for more tool calls than a conversation keeps open (64): the first 64 are
 * followed, the rest counted as not followed; the array of open calls grows as they come. */
static void tool_calls_past_the_cap_are_counted(void **state)
{
	char resp[16384], id[16];
	size_t o;

	(void)state;
	o = (size_t)snprintf(resp, sizeof(resp),
			     "{\"id\":\"r1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,"
			     "\"finish_reason\":\"tool_calls\",\"message\":{\"role\":"
			     "\"assistant\",\"tool_calls\":[");
	for (int i = 0; i < 70; i++) {
		snprintf(id, sizeof(id), "c%d", i);
		o += (size_t)snprintf(resp + o, sizeof(resp) - o,
				      "%s{\"id\":\"%s\",\"type\":\"function\",\"function\":{"
				      "\"name\":\"get_weather\",\"arguments\":\"{}\"}}",
				      i ? "," : "", id);
	}
	snprintf(resp + o, sizeof(resp) - o, "]}}]}");
	chat(&procA, 1, 1000, 1010, REQ(SYS "," USER("many")), resp);
	chat(&procA, 1, 1100, 1110,
	     REQ(SYS "," USER("many") "," RESULT("c0", "sun") "," RESULT("c63", "rain") ","
		 RESULT("c64", "snow")),
	     ANSWER("done"));
	assert_int_equal(agt_agent_stats(T.agent)->calls_dropped, 6);
	assert_string_equal(find("execute_tool get_weather", 0)->tool_out, "sun");
	assert_int_equal(find("conversation gpt-4o", 0)->s.cot.tool_calls, 64);
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
	assert_string_equal(http->s.trace_type, "tool_call");
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
	assert_string_equal(http->s.trace_type, "http_call"); /* was tool_call: never a tool's */
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

/* ---- agents as they really behave ---- */

static void add_header(struct agt_http_msg *m, const char *name, const char *value)
{
	m->hdrs = realloc(m->hdrs, (m->nhdrs + 1) * sizeof(*m->hdrs));
	m->hdrs[m->nhdrs].name = strdup(name);
	m->hdrs[m->nhdrs].value = strdup(value);
	m->nhdrs++;
}

/* One exchange of any API: url, bodies, content type of the response, the process that made it
 * (a target, or a followed descendant) and its thread. */
static void xchg(uint32_t pid, uint32_t tid, const char *url, uint64_t t0, uint64_t t1,
		 const char *req, const char *resp, const char *ctype)
{
	struct agt_http_msg *q = msg(1, url, req, t0, t0 + 1, tid, 0), *r = NULL;

	q->pid = pid;
	if (resp) {
		r = msg(0, NULL, resp, t1 - 1, t1, tid, 200);
		r->pid = pid;
		if (ctype)
			add_header(r, "Content-Type", ctype);
	}
	agt_trace_exchange(&T, &procA, q, r);
}

#define ANT_REQ(sys, msgs)                                                                       \
	"{\"model\":\"claude-x\",\"max_tokens\":100,\"system\":" sys ",\"messages\":[" msgs "]," \
	"\"tools\":[{\"name\":\"Bash\"}]}"
#define ANT_SYS                                                                                 \
	"[{\"type\":\"text\",\"text\":\"You are a coding agent.\",\"cache_control\":{\"type\":" \
	"\"ephemeral\"}}]"
#define ANT_SYS_MOVED "[{\"type\":\"text\",\"text\":\"You are a coding agent.\"}]"
#define ANT_USER_MARKED                                                                  \
	"{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"fix the build\"," \
	"\"cache_control\":{\"type\":\"ephemeral\"}}]}"
#define ANT_USER_PLAIN                                                                             \
	"{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"<system-reminder>today is " \
	"Thursday</system-reminder>\"},{\"type\":\"text\",\"text\":\"fix the build\"}]}"
#define ANT_USE(id, cmd)                                                                          \
	"{\"id\":\"m\",\"model\":\"claude-x\",\"stop_reason\":\"tool_use\",\"content\":[{"        \
	"\"type\":"                                                                               \
	"\"tool_use\",\"id\":\"" id "\",\"name\":\"Bash\",\"input\":{\"command\":\"" cmd "\"}}]," \
	"\"usage\":{\"input_tokens\":7,\"output_tokens\":2}}"
#define ANT_ASSISTANT(id)                                                                    \
	"{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\","   \
	"\"signature\":\"c2lnbmF0dXJl\"},{\"type\":\"tool_use\",\"id\":\"" id "\",\"name\":" \
	"\"Bash\",\"input\":{}}]}"
#define ANT_RESULT(id, marked)                                                                  \
	"{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"" id "\"," \
	"\"content\":\"ok\"" marked "}]}"
#define MARK ",\"cache_control\":{\"type\":\"ephemeral\"}"
#define ANT_DONE                                                                            \
	"{\"id\":\"m2\",\"model\":\"claude-x\",\"stop_reason\":\"end_turn\",\"content\":[{" \
	"\"type\":"                                                                         \
	"\"text\",\"text\":\"fixed\"}],\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}"

/* Claude Code moves its cache marker to the newest message, re-sends thinking blocks with their
 * signatures and adds per-turn <system-reminder> blocks: one conversation all the same. */
static void moving_cache_markers_keep_one_conversation(void **state)
{
	(void)state;
	xchg(100, 1, "/v1/messages", 1000, 1010, ANT_REQ(ANT_SYS, ANT_USER_MARKED),
	     ANT_USE("tu1", "make"), NULL);
	xchg(100, 1, "/v1/messages", 1100, 1110,
	     ANT_REQ(ANT_SYS_MOVED,
		     ANT_USER_PLAIN "," ANT_ASSISTANT("tu1") "," ANT_RESULT("tu1", MARK)),
	     ANT_USE("tu2", "make test"), NULL);
	xchg(100, 1, "/v1/messages", 1200, 1210,
	     ANT_REQ(ANT_SYS_MOVED,
		     ANT_USER_PLAIN "," ANT_ASSISTANT("tu1") "," ANT_RESULT(
			 "tu1", "") "," ANT_ASSISTANT("tu2") "," ANT_RESULT("tu2", MARK)),
	     ANT_DONE, NULL);
	assert_int_equal(count("cot_process"), 1);
	struct got *cot = find("conversation claude-x", 0);

	assert_int_equal(cot->s.status, AGT_STATUS_OK);
	assert_int_equal(cot->s.cot.steps, 3);
	assert_int_equal(cot->s.cot.tool_calls, 2);
	assert_string_equal(cot->final, "fixed");
	for (int i = 0; i < nout; i++)
		assert_true(same_trace(&out[i], cot));
	assert_string_equal(find("execute_tool Bash", 0)->tool_id, "tu1");
	assert_string_equal(find("execute_tool Bash", 1)->tool_id, "tu2");
	assert_int_equal(find("execute_tool Bash", 0)->s.status, AGT_STATUS_OK);
	assert_int_equal(find("execute_tool Bash", 0)->s.end_ns, 1100);
}

/* Two conversations with the same opening at once (same call ids too, on two threads): results
 * continue the one that asked, the thread breaks the tie. */
static void identical_openings_stay_apart(void **state)
{
	(void)state;
	chat(&procA, 1, 1000, 1010, REQ(SYS "," USER("same")), ASKS("c1", "{}"));
	chat(&procA, 2, 1020, 1030, REQ(SYS "," USER("same")), ASKS("c1", "{}"));
	chat(&procA, 2, 1100, 1110,
	     REQ(SYS "," USER("same") "," CALLMSG("c1") "," RESULT("c1", "two")), ANSWER("second"));
	chat(&procA, 1, 1200, 1210,
	     REQ(SYS "," USER("same") "," CALLMSG("c1") "," RESULT("c1", "one")), ANSWER("first"));
	struct got *c0 = find("conversation gpt-4o", 0), *c1 = find("conversation gpt-4o", 1);

	assert_int_equal(count("cot_process"), 2);
	assert_false(same_trace(c0, c1));
	assert_string_equal(c0->final, "second");
	assert_string_equal(c1->final, "first");
	assert_int_equal(c0->s.cot.steps, 2);
	assert_int_equal(c1->s.cot.steps, 2);
	assert_int_equal(c0->s.start_ns, 1020);
	assert_int_equal(c1->s.start_ns, 1000);
	for (int i = 0; i < nout; i++)
		if (!strcmp(out[i].s.trace_type, "tool_call"))
			assert_true(same_trace(&out[i], !strcmp(out[i].tool_out, "two") ? c0 : c1));
}

/* Bun and tokio agents: the LLM call on one thread, the command forked from another. */
static void command_from_another_thread_lands_under_the_tool(void **state)
{
	(void)state;
	chat(&procA, 9, 1000, 1010, REQ(SYS "," USER("x")), ASKS("c1", "{}"));
	spawn(300, 100, 1, "sh -c date", 1020, 1040, 0);
	chat(&procA, 9, 1100, 1110, REQ(SYS "," USER("x") "," CALLMSG("c1") "," RESULT("c1", "t")),
	     ANSWER("ok"));
	struct got *sh = find("exec sh -c date", 0);

	assert_non_null(sh);
	assert_int_equal(sh->s.parent_id, find("execute_tool get_weather", 0)->s.span_id);
	assert_true(same_trace(sh, find("conversation gpt-4o", 0)));
}

#define ASKS_SH2                                                                                   \
	"{\"id\":\"r1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"finish_reason\":"         \
	"\"tool_calls\",\"message\":{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"ca\","       \
	"\"type\":\"function\",\"function\":{\"name\":\"shell\",\"arguments\":\"{\\\"command\\\":" \
	"\\\"make test\\\"}\"}},{\"id\":\"cb\",\"type\":\"function\",\"function\":{\"name\":"      \
	"\"shell\",\"arguments\":\"{\\\"command\\\":[\\\"bash\\\",\\\"-lc\\\",\\\"./"              \
	"run.sh\\\"]}\"}"                                                                          \
	"}]}}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3}}"

/* Tools run in parallel from one thread: each command under the call that asked for it, by its
 * argv; the tool whose command exited non-zero failed; a failed grep inside the other does not
 * make it fail, and gets no error span. */
static void parallel_tools_get_their_own_commands(void **state)
{
	(void)state;
	chat(&procA, 9, 1000, 1010, REQ(SYS "," USER("p")), ASKS_SH2);
	spawn(301, 100, 1, "bash -lc ./run.sh", 1020, 1090, 0); /* cb's, started first */
	spawn(302, 301, 301, "grep -q x", 1030, 1035, 1);
	spawn(300, 100, 1, "sh -c make test", 1025, 1080, 2); /* ca's */
	chat(&procA, 9, 1100, 1110,
	     REQ(SYS "," USER("p") "," RESULT("ca", "FAIL") "," RESULT("cb", "done")),
	     ANSWER("ok"));
	struct got *ta = NULL, *tb = NULL;

	for (int i = 0; i < nout; i++)
		if (!strcmp(out[i].s.name, "execute_tool shell"))
			*(!strcmp(out[i].tool_id, "ca") ? &ta : &tb) = &out[i];
	struct got *make = find("exec sh -c make test", 0),
		   *run = find("exec bash -lc ./run.sh", 0);
	struct got *grep = find("exec grep -q x", 0);

	assert_non_null(ta);
	assert_non_null(tb);
	assert_int_equal(make->s.parent_id, ta->s.span_id);
	assert_int_equal(run->s.parent_id, tb->s.span_id);
	assert_int_equal(grep->s.parent_id, run->s.span_id);
	assert_int_equal(ta->s.status, AGT_STATUS_ERROR);
	assert_int_equal(ta->s.tool.success, 0);
	assert_int_equal(tb->s.status, AGT_STATUS_OK);
	assert_int_equal(grep->s.status, AGT_STATUS_ERROR); /* its own exit code, on its own span */
	assert_int_equal(grep->s.exit_code, 1);
	assert_int_equal(count("error"), 1);
	struct got *err = find("error command failed", 0);

	assert_int_equal(err->s.parent_id, ta->s.span_id);
	assert_string_equal(err->s.message, "exit 2: sh -c make test");
}

/* bash -lc 'a; b' runs b in its own process: the span keeps bash's command line, b is an
 * event on it. */
static void exec_chain_keeps_the_first_command_line(void **state)
{
	(void)state;
	chat(&procA, 7, 1000, 1010, REQ(SYS "," USER("e")), ASKS("c1", "{}"));
	agt_agent_fork(T.agent, 300, 100, 7, 1020);
	agt_agent_exec(T.agent, 300, "/bin/bash", "bash\0-lc\0true; ls", 18, 1021);
	agt_agent_exec(T.agent, 300, "/bin/ls", "ls", 2, 1025);
	agt_agent_exit(T.agent, 300, 0, 1030);
	chat(&procA, 7, 1100, 1110, REQ(SYS "," USER("e") "," CALLMSG("c1") "," RESULT("c1", "t")),
	     ANSWER("ok"));
	struct got *b = find("exec bash -lc true; ls", 0);

	assert_non_null(b);
	assert_null(find("exec ls", 0));
	assert_string_equal(b->cmd, "bash -lc true; ls");
	assert_int_equal(b->s.exec.nevents, 1);
	assert_string_equal(b->ev0, "exec"); /* an event named exec, with its command line */
	assert_string_equal(b->ev0_detail, "ls");
	assert_string_equal(b->comm, "bash");
}

/* A client's warm-up HEAD / before any tool: HTTP of its own, never a tool call. */
static void warm_up_head_is_http_call(void **state)
{
	(void)state;
	struct agt_http_msg *q = msg(1, "/", "", 10, 11, 7, 0),
			    *r = msg(0, NULL, "", 19, 20, 7, 200);

	snprintf(q->method, sizeof(q->method), "HEAD");
	agt_trace_exchange(&T, &procA, q, r);
	chat(&procA, 7, 1000, 1010, REQ(SYS "," USER("w")), ANSWER("ok"));
	struct got *h = find("HEAD api.example/", 0);

	assert_non_null(h);
	assert_string_equal(h->s.trace_type, "http_call");
	assert_int_equal(h->s.parent_id, 0);
	assert_false(same_trace(h, find("conversation gpt-4o", 0)));
	assert_int_equal(count("tool_call"), 0);
}

/* A CLI that relaunches itself as a child: the child's calls are the target's conversation,
 * and the commands the child forks are its tool calls'. */
static void relaunched_child_is_the_agent(void **state)
{
	(void)state;
	agt_agent_fork(T.agent, 150, 100, 100, 500);
	agt_agent_exec(T.agent, 150, "/usr/bin/node", "node\0cli.js", 11, 501);
	xchg(150, 150, "/v1/chat/completions", 1000, 1010, REQ(SYS "," USER("r")), ASKS("c1", "{}"),
	     NULL);
	spawn(300, 150, 155, "sh -c uptime", 1020, 1040, 0);
	xchg(150, 150, "/v1/chat/completions", 1100, 1110,
	     REQ(SYS "," USER("r") "," CALLMSG("c1") "," RESULT("c1", "up")), ANSWER("ok"), NULL);
	struct got *tool = find("execute_tool get_weather", 0), *sh = find("exec sh -c uptime", 0);
	struct got *cot = find("conversation gpt-4o", 0);

	assert_non_null(cot);
	assert_int_equal(cot->s.cot.steps, 2);
	assert_int_equal(cot->s.pid, 100);
	assert_int_equal(sh->s.parent_id, tool->s.span_id);
	assert_null(find("exec node cli.js", 0)); /* still running: the agent itself */
	agt_agent_exit(T.agent, 150, 0, 2000);
	agt_trace_proc_gone(&T, 100, 2100);
	struct got *node = find("exec node cli.js", 0);

	assert_non_null(node);
	assert_false(same_trace(node, cot));
}

#define TASK_ARGS                                                                           \
	"{\\\"subagent_type\\\":\\\"researcher\\\",\\\"prompt\\\":\\\"Find the weather in " \
	"Oslo\\\"}"
#define ASKS_TASK                                                                            \
	"{\"id\":\"r1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"finish_reason\":"   \
	"\"tool_calls\",\"message\":{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t1\"," \
	"\"type\":\"function\",\"function\":{\"name\":\"Task\",\"arguments\":\"" TASK_ARGS   \
	"\"}}]}}"                                                                            \
	"],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3}}"
#define SUB_SYS "{\"role\":\"system\",\"content\":\"You research.\"}"
#define SUB_USER "{\"role\":\"user\",\"content\":\"Find the weather in Oslo\"}"

/* A task tool starts a sub-agent: its conversation hangs under the tool call as invoke_agent,
 * with its own steps and tool calls, in the caller's trace. */
static void sub_agent_hangs_under_its_tool_call(void **state)
{
	(void)state;
	chat(&procA, 1, 1000, 1010, REQ(SYS "," USER("plan")), ASKS_TASK);
	chat(&procA, 1, 1020, 1030, REQ(SUB_SYS "," SUB_USER), ASKS("s1", "{}"));
	spawn(300, 100, 1, "curl wttr.in", 1035, 1040, 0);
	chat(&procA, 1, 1050, 1060,
	     REQ(SUB_SYS "," SUB_USER "," CALLMSG("s1") "," RESULT("s1", "rain")),
	     ANSWER("Rain in Oslo."));
	chat(&procA, 1, 1100, 1110, REQ(SYS "," USER("plan") "," RESULT("t1", "Rain in Oslo.")),
	     ANSWER("Take an umbrella."));
	struct got *cot = find("conversation gpt-4o", 0), *task = find("execute_tool Task", 0);
	struct got *sub = find("invoke_agent researcher", 0),
		   *inner = find("execute_tool get_weather", 0);
	struct got *curl = find("exec curl wttr.in", 0);

	assert_int_equal(count("cot_process"), 2);
	assert_non_null(sub);
	assert_string_equal(sub->s.trace_type, "cot_process");
	assert_string_equal(sub->agent, "researcher");
	assert_int_equal(sub->s.parent_id, task->s.span_id);
	assert_int_equal(task->s.parent_id, cot->s.span_id);
	assert_int_equal(inner->s.parent_id, sub->s.span_id);
	assert_int_equal(curl->s.parent_id, inner->s.span_id);
	assert_int_equal(sub->s.cot.steps, 2);
	assert_int_equal(sub->s.cot.tool_calls, 1);
	assert_string_equal(sub->final, "Rain in Oslo.");
	assert_int_equal(cot->s.cot.steps, 2);
	assert_int_equal(cot->s.cot.tool_calls, 1);
	assert_string_equal(cot->agent, "(null)");
	for (int i = 0; i < nout; i++) {
		assert_true(same_trace(&out[i], cot));
		assert_string_equal(out[i].s.workflow_id, cot->s.workflow_id);
	}
	int substeps = 0;

	for (int i = 0; i < nout; i++)
		substeps += !strcmp(out[i].s.trace_type, "reasoning_step") &&
			    out[i].s.parent_id == sub->s.span_id;
	assert_int_equal(substeps, 2);
	assert_int_equal(agt_agent_stats(T.agent)->subagents, 1);
}

#define R_REQ(instr, input)                                                                     \
	"{\"model\":\"gpt-5\",\"instructions\":\"" instr "\",\"store\":false,\"input\":[" input \
	"],\"tools\":[{\"type\":\"function\",\"name\":\"transfer_to_billing\"}]}"
#define R_USER "{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"refund me\"}]}"
#define R_CALL                                                                                 \
	"{\"type\":\"function_call\",\"call_id\":\"call_h\",\"name\":\"transfer_to_billing\"," \
	"\"arguments\":\"{}\"}"
#define R_OUT                                                                      \
	"{\"type\":\"function_call_output\",\"call_id\":\"call_h\",\"output\":\"{" \
	"\\\"assistant\\\":\\\"billing\\\"}\"}"
#define R_ASKS                                                                                   \
	"{\"id\":\"resp_1\",\"model\":\"gpt-5\",\"status\":\"completed\",\"output\":[{\"type\":" \
	"\"reasoning\",\"id\":\"rs_1\",\"encrypted_content\":\"gAAA\"}," R_CALL "],\"usage\":{"  \
	"\"input_tokens\":11,\"output_tokens\":4}}"
#define R_ANSWER                                                                                 \
	"{\"id\":\"resp_2\",\"model\":\"gpt-5\",\"status\":\"completed\",\"output\":[{\"type\":" \
	"\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":"    \
	"\"Refunded.\"}]}],\"usage\":{\"input_tokens\":20,\"output_tokens\":2}}"

/* A handoff: the same conversation goes on in another agent's voice (new instructions) right
 * after the transfer tool call: an invoke_agent span under it, its steps below that. */
static void handoff_continues_under_the_transfer_call(void **state)
{
	(void)state;
	xchg(100, 1, "/v1/responses", 1000, 1010, R_REQ("You triage.", R_USER), R_ASKS, NULL);
	xchg(100, 1, "/v1/responses", 1100, 1110,
	     R_REQ("You handle billing.",
		   R_USER ",{\"type\":\"reasoning\",\"id\":\"rs_1\","
			  "\"encrypted_content\":\"gAAA\"}," R_CALL "," R_OUT),
	     R_ANSWER, NULL);
	struct got *cot = find("conversation gpt-5", 0),
		   *tr = find("execute_tool transfer_to_billing", 0);
	struct got *b = find("invoke_agent billing", 0), *s2 = find("chat gpt-5", 1);

	assert_int_equal(count("cot_process"), 2);
	assert_non_null(b);
	assert_int_equal(tr->s.parent_id, cot->s.span_id);
	assert_int_equal(b->s.parent_id, tr->s.span_id);
	assert_int_equal(s2->s.parent_id, b->s.span_id);
	assert_int_equal(find("chat gpt-5", 0)->s.parent_id, cot->s.span_id);
	assert_string_equal(b->agent, "billing");
	assert_int_equal(b->s.cot.steps, 1);
	assert_string_equal(b->final, "Refunded.");
	assert_int_equal(b->s.start_ns, 1100);
	assert_int_equal(b->s.end_ns, 1110);
	assert_string_equal(cot->final, "Refunded.");
	assert_int_equal(cot->s.cot.steps, 2);
	assert_int_equal(cot->s.cot.input_tokens, 31);
	assert_int_equal(agt_agent_stats(T.agent)->handoffs, 1);
}

/* store: true, previous_response_id: the next request carries only the new items. */
static void previous_response_id_continues(void **state)
{
	(void)state;
	xchg(100, 1, "/v1/responses", 1000, 1010, R_REQ("You triage.", R_USER), R_ASKS, NULL);
	xchg(100, 1, "/v1/responses", 1100, 1110,
	     "{\"model\":\"gpt-5\",\"instructions\":\"You triage.\",\"previous_response_id\":"
	     "\"resp_1\",\"input\":[{\"type\":\"function_call_output\",\"call_id\":\"other\","
	     "\"output\":\"x\"}]}",
	     R_ANSWER, NULL);
	assert_int_equal(count("cot_process"), 1);
	struct got *cot = find("conversation gpt-5", 0);

	assert_int_equal(cot->s.cot.steps, 2);
	assert_string_equal(cot->final, "Refunded.");
	assert_true(same_trace(cot, find("chat gpt-5", 1)));
}

/* The agent died mid-stream: the step keeps its status, time to first chunk, what text and
 * tokens arrived, and ends at the last byte, unfinished; no decision. */
static void cut_stream_keeps_what_arrived(void **state)
{
	(void)state;
	const char *sse =
	    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\","
	    "\"model\":\"claude-x\",\"usage\":{\"input_tokens\":30,\"output_tokens\":1}}}\n\n"
	    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
	    "\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me \"}}\n\n"
	    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
	    "\"delta\":{\"type\":\"text_delta\",\"text\":\"look\"}}\n\n"
	    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
	    "\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu9\",\"name\":\"Bash\",\"input\":"
	    "{}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_";
	struct agt_http_msg *q = msg(1, "/v1/messages",
				     "{\"model\":\"claude-x\",\"max_tokens\":9,\"stream\":true,"
				     "\"messages\":[{\"role\":\"user\",\"content\":\"go\"}]}",
				     1000, 1001, 3, 0);
	struct agt_http_msg *r = msg(0, NULL, sse, 1500, 4500, 3, 200);

	add_header(r, "Content-Type", "text/event-stream");
	r->incomplete = 1;
	agt_trace_exchange(&T, &procA, q, r);
	struct got *step = find("chat claude-x", 0);

	assert_non_null(step);
	assert_int_equal(step->s.status, AGT_STATUS_UNFINISHED);
	assert_int_equal(step->s.start_ns, 1000);
	assert_int_equal(step->s.end_ns, 4500);
	assert_int_equal(step->http_status, 200);
	assert_int_equal(step->ttfc_us, 0); /* (1500 - 1001) ns, in whole microseconds */
	assert_int_equal(step->incomplete, 1);
	assert_int_equal(step->in_tokens, 30);
	assert_string_equal(step->partial, "Let me look");
	assert_null(find("decision Bash", 0));
	assert_int_equal(count("error"), 0);
	agt_trace_proc_gone(&T, 100, 5000);
	assert_int_equal(find("conversation claude-x", 0)->s.status, AGT_STATUS_UNFINISHED);
}

#define ASKS_MCP                                                                                  \
	"{\"id\":\"r1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"finish_reason\":"        \
	"\"tool_calls\",\"message\":{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"ca\","      \
	"\"type\":\"function\",\"function\":{\"name\":\"math.add\",\"arguments\":\"{\\\"a\\\":2," \
	"\\\"b\\\":3}\"}},{\"id\":\"cb\",\"type\":\"function\",\"function\":{\"name\":"           \
	"\"get_weather\",\"arguments\":\"{}\"}}]}}],\"usage\":{\"prompt_tokens\":10,"             \
	"\"completion_tokens\":3}}"

/* MCP over streamable HTTP: a JSON-RPC POST answered by SSE, with its session; it hangs under
 * the tool call that asked for that MCP tool, though another was opened later on the thread. */
static void mcp_over_http_hangs_under_the_asking_tool(void **state)
{
	(void)state;
	chat(&procA, 7, 1000, 1010, REQ(SYS "," USER("m")), ASKS_MCP);
	struct agt_http_msg *q =
	    msg(1, "/mcp",
		"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":"
		"\"add\",\"arguments\":{\"a\":2,\"b\":3}}}",
		1020, 1021, 8, 0);
	struct agt_http_msg *r = msg(
	    0, NULL,
	    "event: message\ndata: {\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"5\"}]},"
	    "\"jsonrpc\":\"2.0\",\"id\":4}\n\n",
	    1029, 1030, 8, 200);

	add_header(q, "Mcp-Session-Id", "sess-42");
	add_header(r, "Content-Type", "text/event-stream");
	agt_trace_exchange(&T, &procA, q, r);
	chat(&procA, 7, 1100, 1110,
	     REQ(SYS "," USER("m") "," RESULT("ca", "5") "," RESULT("cb", "sun")), ANSWER("ok"));
	struct got *m = find("tools/call add", 0), *add = find("execute_tool math.add", 0);

	assert_non_null(m);
	assert_int_equal(m->s.tool.mcp, 1);
	assert_string_equal(m->tool_out, "5");
	assert_string_equal(m->tool_in, "{\"a\":2,\"b\":3}");
	assert_string_equal(m->tool_id, "4");
	assert_string_equal(m->session, "sess-42");
	assert_int_equal(m->http_status, 200);
	assert_int_equal(m->s.status, AGT_STATUS_OK);
	assert_int_equal(m->s.parent_id, add->s.span_id);
	assert_null(find("POST api.example/mcp", 0));
}

#define ASKS_SEARCH2                                                                          \
	"{\"id\":\"r1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"finish_reason\":"    \
	"\"tool_calls\",\"message\":{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"sa\","  \
	"\"type\":\"function\",\"function\":{\"name\":\"mcp__docs__search\",\"arguments\":"   \
	"\"{\\\"q\\\":\\\"alpha\\\"}\"}},{\"id\":\"sb\",\"type\":\"function\",\"function\":{" \
	"\"name\":\"mcp__docs__search\",\"arguments\":\"{\\\"q\\\":\\\"beta\\\"}\"}}]}}],"    \
	"\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3}}"

static void mcp_search(const char *id, const char *args, uint64_t t, uint32_t tid)
{
	struct agt_mcp_call c = {.name = "search",
				 .arguments = (char *)args,
				 .result = "hit",
				 .answered = 1,
				 .start_ns = t,
				 .end_ns = t + 5,
				 .tid = tid};

	snprintf(c.id, sizeof(c.id), "%s", id);
	agt_trace_mcp(&T, &procA, &c);
}

/* Two parallel calls of one MCP tool with different arguments: each MCP call hangs under the
 * tool call that asked for its arguments, whatever the order and the thread. */
static void parallel_calls_of_one_mcp_tool_match_by_arguments(void **state)
{
	(void)state;
	chat(&procA, 7, 1000, 1010, REQ(SYS "," USER("m")), ASKS_SEARCH2);
	mcp_search("1", "{\"q\":\"beta\"}", 1020, 8);
	mcp_search("2", "{\"q\": \"alpha\"}", 1030, 9);
	chat(&procA, 7, 1100, 1110,
	     REQ(SYS "," USER("m") "," RESULT("sa", "a") "," RESULT("sb", "b")), ANSWER("ok"));
	struct got *ta = find("execute_tool mcp__docs__search", 0);
	struct got *tb = find("execute_tool mcp__docs__search", 1);
	struct got *m1 = find("tools/call search", 0), *m2 = find("tools/call search", 1);

	assert_non_null(ta);
	assert_non_null(tb);
	assert_non_null(m1);
	assert_non_null(m2);
	if (strcmp(ta->tool_id, "sa"))
		ta = tb, tb = find("execute_tool mcp__docs__search", 0);
	assert_string_equal(ta->tool_id, "sa");
	assert_string_equal(tb->tool_id, "sb");
	if (strcmp(m1->tool_id, "1"))
		m1 = m2, m2 = find("tools/call search", 0);
	assert_string_equal(m1->tool_in, "{\"q\":\"beta\"}");
	assert_int_equal(m1->s.parent_id, tb->s.span_id);
	assert_string_equal(m2->tool_in, "{\"q\": \"alpha\"}");
	assert_int_equal(m2->s.parent_id, ta->s.span_id);
	assert_true(same_trace(m1, ta));
	assert_true(same_trace(m2, ta));
}

#define ASKS_FETCH                                                                                \
	"{\"id\":\"r1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"finish_reason\":"        \
	"\"tool_calls\",\"message\":{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"cf\","      \
	"\"type\":\"function\",\"function\":{\"name\":\"fetch\",\"arguments\":\"{\\\"url\\\":"    \
	"\\\"https://api.example/lookup?city=Oslo\\\"}\"}},{\"id\":\"cw\",\"type\":\"function\"," \
	"\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]}}],\"usage\":{"           \
	"\"prompt_tokens\":10,\"completion_tokens\":3}}"

/* HTTP while two tool calls are open: the one whose arguments name the URL owns it. */
static void http_goes_to_the_tool_that_names_its_url(void **state)
{
	(void)state;
	chat(&procA, 7, 1000, 1010, REQ(SYS "," USER("u")), ASKS_FETCH);
	agt_trace_exchange(&T, &procA, msg(1, "/lookup?city=Oslo", "{}", 1020, 1021, 8, 0),
			   msg(0, NULL, "{}", 1029, 1030, 8, 200));
	chat(&procA, 7, 1100, 1110,
	     REQ(SYS "," USER("u") "," RESULT("cf", "x") "," RESULT("cw", "y")), ANSWER("ok"));
	struct got *http = find("POST api.example/lookup", 0);
	struct got *fetch = find("execute_tool fetch", 0);

	assert_non_null(http);
	assert_string_equal(http->s.trace_type, "tool_call");
	assert_int_equal(http->s.parent_id, fetch->s.span_id);
}

#define REQ_NOTOOLS(msgs) "{\"model\":\"gpt-4o\",\"messages\":[" msgs "]}"
#define ASKS_TASK_BARE                                                                           \
	"{\"id\":\"r1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"finish_reason\":"        \
	"\"tool_calls\",\"message\":{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t1\","       \
	"\"type\":\"function\",\"function\":{\"name\":\"Task\",\"arguments\":\"{}\"}}]}}],"         \
	"\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3}}"

/* While a task tool runs: an agent's side request (no tools offered, its opening not the
 * task's) is a conversation of its own; one that offers tools is the task's sub-agent. */
static void side_request_during_a_task_is_not_a_sub_agent(void **state)
{
	(void)state;
	chat(&procA, 1, 1000, 1010, REQ(SYS "," USER("plan")), ASKS_TASK_BARE);
	chat(&procA, 1, 1020, 1030, REQ_NOTOOLS(USER("Write a title for: plan")), ANSWER("Plan"));
	chat(&procA, 1, 1040, 1050, REQ(SUB_SYS "," USER("look around")), ANSWER("Looked."));
	chat(&procA, 1, 1100, 1110, REQ(SYS "," USER("plan") "," RESULT("t1", "Looked.")),
	     ANSWER("Done."));
	struct got *title = NULL, *sub = find("invoke_agent Task", 0);
	struct got *task = find("execute_tool Task", 0), *cot = NULL;

	for (int i = 0; i < nout; i++)
		if (!strcmp(out[i].s.name, "conversation gpt-4o"))
			*(!strcmp(out[i].final, "Plan") ? &title : &cot) = &out[i];
	assert_non_null(title);
	assert_non_null(cot);
	assert_non_null(sub);
	assert_int_equal(title->s.parent_id, 0);
	assert_false(same_trace(title, cot));
	assert_int_equal(sub->s.parent_id, task->s.span_id);
	assert_true(same_trace(sub, cot));
	assert_string_equal(sub->final, "Looked.");
}

/* A tool runs an agent CLI of its own (a sub-agent process making LLM calls): its conversation
 * hangs under the tool call as invoke_agent, its commands under its own tool call, and the
 * process itself under the outer tool call once it ended. */
static void sub_agent_process_run_by_a_tool(void **state)
{
	(void)state;
	chat(&procA, 1, 1000, 1010, REQ(SYS "," USER("plan")), ASKS_TASK);
	spawn(400, 100, 1, "claude -p", 1015, 0, 0);
	xchg(400, 401, "/v1/chat/completions", 1020, 1030, REQ(SUB_SYS "," SUB_USER),
	     ASKS("s1", "{}"), NULL);
	spawn(410, 400, 402, "curl wttr.in", 1035, 1040, 0);
	xchg(400, 401, "/v1/chat/completions", 1050, 1060,
	     REQ(SUB_SYS "," SUB_USER "," CALLMSG("s1") "," RESULT("s1", "rain")),
	     ANSWER("Rain in Oslo."), NULL);
	agt_agent_exit(T.agent, 400, 0, 1070);
	chat(&procA, 1, 1100, 1110, REQ(SYS "," USER("plan") "," RESULT("t1", "Rain in Oslo.")),
	     ANSWER("Take an umbrella."));
	struct got *task = find("execute_tool Task", 0), *sub = find("invoke_agent researcher", 0);
	struct got *inner = find("execute_tool get_weather", 0), *curl = find("exec curl wttr.in", 0);
	struct got *cli = find("exec claude -p", 0), *cot = find("conversation gpt-4o", 0);

	assert_non_null(cli);
	assert_int_equal(sub->s.parent_id, task->s.span_id);
	assert_int_equal(inner->s.parent_id, sub->s.span_id);
	assert_int_equal(curl->s.parent_id, inner->s.span_id);
	assert_int_equal(cli->s.parent_id, task->s.span_id);
	for (int i = 0; i < nout; i++)
		assert_true(same_trace(&out[i], cot));
}

#define ASKS_CLI                                                                                 \
	"{\"id\":\"r1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"finish_reason\":"        \
	"\"tool_calls\",\"message\":{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c9\","       \
	"\"type\":\"function\",\"function\":{\"name\":\"shell\",\"arguments\":\"{\\\"command\\\":"  \
	"\\\"claude -p review\\\"}\"}}]}}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3}}"

/* A shell tool runs an agent CLI whose conversation names nothing of the tool's arguments: the
 * process the tool ran ties it to the tool call (invoke_agent, named after the program). */
static void agent_cli_run_by_a_shell_tool_is_a_sub_agent(void **state)
{
	(void)state;
	chat(&procA, 1, 1000, 1010, REQ(SYS "," USER("go")), ASKS_CLI);
	spawn(399, 100, 1, "sh -c claude", 1012, 0, 0);
	spawn(400, 399, 399, "/usr/local/bin/claude -p review", 1015, 0, 0);
	xchg(400, 401, "/v1/chat/completions", 1020, 1030,
	     REQ(SUB_SYS "," USER("Review the diff.")), ANSWER("Looks good."), NULL);
	agt_agent_exit(T.agent, 400, 0, 1040);
	agt_agent_exit(T.agent, 399, 0, 1041);
	chat(&procA, 1, 1100, 1110, REQ(SYS "," USER("go") "," RESULT("c9", "Looks good.")),
	     ANSWER("Reviewed."));
	struct got *shell = find("execute_tool shell", 0), *sub = find("invoke_agent claude", 0);
	struct got *cli = find("exec /usr/local/bin/claude -p review", 0);

	assert_non_null(sub);
	assert_string_equal(sub->agent, "claude");
	assert_int_equal(sub->s.parent_id, shell->s.span_id);
	assert_int_equal(cli->s.parent_id, find("exec sh -c claude", 0)->s.span_id);
	assert_int_equal(find("exec sh -c claude", 0)->s.parent_id, shell->s.span_id);
	assert_int_equal(count("cot_process"), 2);
	assert_true(same_trace(sub, find("conversation gpt-4o", 0)));
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T_(final_answer_ends_conversation),
	    T_(tool_call_spans_its_window),
	    T_(parallel_tool_calls_each_end_with_their_result),
	    T_(tool_calls_past_the_cap_are_counted),
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
	    T_(moving_cache_markers_keep_one_conversation),
	    T_(identical_openings_stay_apart),
	    T_(command_from_another_thread_lands_under_the_tool),
	    T_(parallel_tools_get_their_own_commands),
	    T_(exec_chain_keeps_the_first_command_line),
	    T_(warm_up_head_is_http_call),
	    T_(relaunched_child_is_the_agent),
	    T_(sub_agent_hangs_under_its_tool_call),
	    T_(handoff_continues_under_the_transfer_call),
	    T_(previous_response_id_continues),
	    T_(cut_stream_keeps_what_arrived),
	    T_(mcp_over_http_hangs_under_the_asking_tool),
	    T_(parallel_calls_of_one_mcp_tool_match_by_arguments),
	    T_(http_goes_to_the_tool_that_names_its_url),
	    T_(side_request_during_a_task_is_not_a_sub_agent),
	    T_(sub_agent_process_run_by_a_tool),
	    T_(agent_cli_run_by_a_shell_tool_is_a_sub_agent),
	};
	return cmocka_run_group_tests_name("agent", tests, NULL, NULL);
}
