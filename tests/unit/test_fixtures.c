/* The LLM parsers and the agent model on the exact exchanges the official SDKs had with the test
 * server (tests/fixtures/llm/PROVIDER/NAME, captured by tests/fixtures/llm/capture.py): every
 * OpenAI (Chat Completions, Responses through @openai/agents and as Codex uses it), Anthropic
 * and Ollama fixture parses to what the server said; the agent loops they come from rebuild as
 * the integration tests see them (a tool call per loop; an agent as a tool and a handoff as
 * invoke_agent; Codex's turns as one conversation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "protocols/llm/llm.h"
#include "trace/trace.h"

#define DIR "tests/fixtures/llm/"

static char *slurp(const char *path, size_t *len)
{
	char *buf = agt_read_file(path, 64u << 20, len);

	if (!buf)
		fail_msg("cannot read %s", path);
	return buf;
}

static struct agt_http_msg *msg(const char *url, const char *ctype, char *body, size_t len)
{
	struct agt_http_msg *m = calloc(1, sizeof(*m));

	strcpy(m->method, "POST");
	m->url = strdup(url);
	m->status = 200;
	m->hdrs = calloc(2, sizeof(*m->hdrs));
	m->hdrs[0].name = strdup("Content-Type");
	m->hdrs[0].value = strdup(ctype);
	m->hdrs[1].name = strdup("Host");
	m->hdrs[1].value = strdup("localhost");
	m->nhdrs = 2;
	m->body = (uint8_t *)body;
	m->body_len = m->body_seen = len;
	return m;
}

/* One captured exchange: NAME.request.json, NAME.response, NAME.meta.json. */
static void load(const char *name, struct agt_http_msg **req, struct agt_http_msg **resp)
{
	char path[256];
	size_t len;
	char *meta, *body;
	cJSON *m;

	snprintf(path, sizeof(path), DIR "%s.meta.json", name);
	meta = slurp(path, &len);
	m = cJSON_Parse(meta);
	free(meta);
	assert_non_null(m);
	snprintf(path, sizeof(path), DIR "%s.request.json", name);
	body = slurp(path, &len);
	*req = msg(cJSON_GetObjectItem(m, "path")->valuestring, "application/json", body, len);
	snprintf(path, sizeof(path), DIR "%s.response", name);
	body = slurp(path, &len);
	*resp = msg("", cJSON_GetObjectItem(m, "content_type")->valuestring, body, len);
	(*resp)->status = cJSON_GetObjectItem(m, "status")->valueint;
	cJSON_Delete(m);
}

/* What each fixture says, as the server scripted it. */
struct expect {
	const char *name, *provider, *api;
	int stream;
	const char *resp_model, *resp_id;
	int64_t in, out, cached;
	int ncalls;
	const char *call, *call_id, *finish, *text;
	int nresults;
};

static const struct expect fixtures[] = {
    {"openai/chat-plain-call", "openai", "chat.completions", 0, "gpt-4o-2024-08-06",
     "chatcmpl-abc123", 42, 7, 10, 1, "get_weather", "call_weather_1", "tool_calls",
     "Let me check the weather.", 0},
    {"openai/chat-stream-call", "openai", "chat.completions", 1, "gpt-4o-2024-08-06",
     "chatcmpl-abc123", 42, 7, 10, 1, "get_weather", "call_weather_1", "tool_calls",
     "Let me check the weather.", 0},
    {"openai/chat-loop-call", "openai", "chat.completions", 0, "gpt-4o-2024-08-06",
     "chatcmpl-abc123", 42, 7, 10, 1, "get_weather", "call_weather_1", "tool_calls",
     "Let me check the weather.", 0},
    {"openai/chat-loop-answer", "openai", "chat.completions", 0, "gpt-4o-2024-08-06",
     "chatcmpl-abc123", 42, 7, 10, 0, NULL, NULL, "stop", "It is sunny in Paris.", 1},
    {"anthropic/messages-plain-call", "anthropic", "messages", 0, "claude-sonnet-4-5", "msg_01XYZ",
     30, 12, 5, 1, "get_weather", "toolu_01A", "tool_use", "Let me look that up.", 0},
    {"anthropic/messages-stream-call", "anthropic", "messages", 1, "claude-sonnet-4-5", "msg_01XYZ",
     30, 12, 5, 1, "get_weather", "toolu_01A", "tool_use", "Let me look that up.", 0},
    {"anthropic/messages-loop-call", "anthropic", "messages", 1, "claude-sonnet-4-5", "msg_01XYZ",
     30, 12, 5, 1, "get_weather", "toolu_01A", "tool_use", "Let me look that up.", 0},
    {"anthropic/messages-loop-answer", "anthropic", "messages", 1, "claude-sonnet-4-5", "msg_01XYZ",
     30, 12, 5, 0, NULL, NULL, "end_turn", "Let me look that up.", 1},
    {"ollama/chat-plain-call", "ollama", "ollama.chat", 0, "llama3.2", "", 26, 9, -1, 1,
     "get_weather", "ollama-call-0", "stop", "Hello", 0},
    {"ollama/chat-stream-call", "ollama", "ollama.chat", 1, "llama3.2", "", 26, 9, -1, 1,
     "get_weather", "ollama-call-0", "stop", "Hello", 0},
    {"openai/responses-orchestrator-call", "openai", "responses", 0, "gpt-4.1", "resp_orch_1", 40,
     9, 0, 1, "ask_weather_expert", "call_ask", "tool_calls", NULL, 0},
    {"openai/responses-expert-call", "openai", "responses", 0, "gpt-4.1", "resp_exp_1", 30, 6, 0, 1,
     "get_weather", "call_weather", "tool_calls", NULL, 0},
    {"openai/responses-expert-answer", "openai", "responses", 0, "gpt-4.1", "resp_exp_2", 45, 5, 0,
     0, NULL, NULL, "completed", "Sunny in Paris.", 1},
    {"openai/responses-orchestrator-transfer", "openai", "responses", 0, "gpt-4.1", "resp_orch_2",
     60, 7, 0, 1, "transfer_to_Reporter", "call_transfer", "tool_calls", NULL, 1},
    {"openai/responses-reporter-answer", "openai", "responses", 0, "gpt-4.1", "resp_rep_1", 70, 8,
     0, 0, NULL, NULL, "completed", "Report: sunny in Paris.", 2},
    {"openai/responses-stream-orchestrator-call", "openai", "responses", 1, "gpt-4.1",
     "resp_orch_1", 40, 9, 0, 1, "ask_weather_expert", "call_ask", "tool_calls", NULL, 0},
    {"openai/responses-stream-expert-call", "openai", "responses", 0, "gpt-4.1", "resp_exp_1", 30,
     6, 0, 1, "get_weather", "call_weather", "tool_calls", NULL, 0},
    {"openai/responses-stream-expert-answer", "openai", "responses", 0, "gpt-4.1", "resp_exp_2", 45,
     5, 0, 0, NULL, NULL, "completed", "Sunny in Paris.", 1},
    {"openai/responses-stream-orchestrator-transfer", "openai", "responses", 1, "gpt-4.1",
     "resp_orch_2", 60, 7, 0, 1, "transfer_to_Reporter", "call_transfer", "tool_calls", NULL, 1},
    {"openai/responses-stream-reporter-answer", "openai", "responses", 1, "gpt-4.1", "resp_rep_1",
     70, 8, 0, 0, NULL, NULL, "completed", "Report: sunny in Paris.", 2},
    {"openai/responses-plain-call", "openai", "responses", 0, "gpt-4.1", "resp_123", 20, 5, 0, 1,
     "search", "call_r1", "tool_calls", NULL, 0},
    {"openai/responses-stream-call", "openai", "responses", 1, "gpt-4.1", "resp_123", 20, 5, 0, 1,
     "search", "call_r1", "tool_calls", NULL, 0},
    {"openai/responses-codex-call", "openai", "responses", 0, "gpt-5-codex", "resp_cx_1", 200, 30,
     0, 2, "shell", "call_sh", "tool_calls", NULL, 0},
    {"openai/responses-codex-pr", "openai", "responses", 0, "gpt-5-codex", "resp_cx_2", 260, 20,
     192, 1, "github.open_pr", "call_pr", "tool_calls", NULL, 2},
    {"openai/responses-codex-answer", "openai", "responses", 0, "gpt-5-codex", "resp_cx_3", 300, 6,
     256, 0, NULL, NULL, "completed", "Opened PR 17.", 1},
    {"openai/responses-codex-stateless-call", "openai", "responses", 1, "gpt-5-codex", "resp_cx_1",
     200, 30, 0, 2, "shell", "call_sh", "tool_calls", NULL, 0},
    {"openai/responses-codex-stateless-pr", "openai", "responses", 1, "gpt-5-codex", "resp_cx_2",
     260, 20, 192, 1, "github.open_pr", "call_pr", "tool_calls", NULL, 2},
    {"openai/responses-codex-stateless-answer", "openai", "responses", 1, "gpt-5-codex",
     "resp_cx_3", 300, 6, 256, 0, NULL, NULL, "completed", "Opened PR 17.", 3},
};

static void every_fixture_parses(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		const struct expect *e = &fixtures[i];
		struct agt_http_msg *req, *resp;
		struct agt_llm l;

		print_message("%s\n", e->name);
		load(e->name, &req, &resp);
		assert_int_equal(agt_llm_parse(req, resp, &l), 0);
		assert_string_equal(l.provider, e->provider);
		assert_string_equal(l.api, e->api);
		assert_int_equal(l.stream, e->stream);
		assert_string_equal(l.resp_model, e->resp_model);
		assert_string_equal(l.resp_id, e->resp_id);
		assert_int_equal(l.input_tokens, e->in);
		assert_int_equal(l.output_tokens, e->out);
		assert_int_equal(l.cached_tokens, e->cached);
		assert_int_equal(l.ncalls, e->ncalls);
		if (e->ncalls) {
			assert_string_equal(l.calls[0].name, e->call);
			assert_string_equal(l.calls[0].id, e->call_id);
			assert_non_null(l.calls[0].arguments);
		}
		assert_int_equal(l.nfinish, 1);
		assert_string_equal(l.finish[0], e->finish);
		if (e->text)
			assert_string_equal(l.text, e->text);
		else
			assert_true(!l.text || !l.text[0]);
		assert_int_equal(l.nresults, e->nresults);
		assert_int_equal(l.parse_failed, 0);
		assert_string_equal(l.error_type, "");
		assert_int_not_equal(l.prefix_hash, 0);
		agt_llm_free(&l);
		agt_http_msg_free(req);
		agt_http_msg_free(resp);
	}
}

/* The APIs' errors for a model they do not have, as the SDKs got them. */
static void errors_parse(void **state)
{
	static const struct {
		const char *name, *type, *message;
		int status;
	} errs[] = {
	    {"openai/chat-error", "invalid_request_error", "The model `bad-model` does not exist",
	     404},
	    {"anthropic/messages-error", "invalid_request_error", "model: bad-model not found",
	     400},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		struct agt_http_msg *req, *resp;
		struct agt_llm l;

		load(errs[i].name, &req, &resp);
		assert_int_equal(resp->status, errs[i].status);
		assert_int_equal(agt_llm_parse(req, resp, &l), 0);
		assert_string_equal(l.req_model, "bad-model");
		assert_string_equal(l.error_type, errs[i].type);
		assert_string_equal(l.error_message, errs[i].message);
		assert_int_equal(l.ncalls, 0);
		agt_llm_free(&l);
		agt_http_msg_free(req);
		agt_http_msg_free(resp);
	}
}

/* ---- the agent model on the captured loops ---- */

struct seen {
	char name[160], type[32];
	uint64_t span, parent;
	uint8_t trace[16];
	char agent[64];
	int steps, tools;
};
static struct seen seen[64];
static int nseen;

static void sink_span(struct agt_sink *s, const struct agt_span *sp)
{
	(void)s;
	if (nseen == 64)
		return;
	snprintf(seen[nseen].name, sizeof(seen[0].name), "%s", sp->name);
	snprintf(seen[nseen].type, sizeof(seen[0].type), "%s", sp->trace_type);
	seen[nseen].span = sp->span_id;
	seen[nseen].parent = sp->parent_id;
	memcpy(seen[nseen].trace, sp->trace_id, 16);
	snprintf(seen[nseen].agent, sizeof(seen[0].agent), "%s",
		 sp->cot.agent_name ? sp->cot.agent_name : "");
	seen[nseen].steps = sp->cot.steps;
	seen[nseen].tools = sp->cot.tool_calls;
	nseen++;
}

static struct agt_proc_info agent = {.pid = 7, .comm = "node"};

static const struct agt_proc_info *target(void *ctx, uint32_t pid)
{
	(void)ctx;
	return pid == 7 ? &agent : NULL;
}

static const struct seen *named(const char *name)
{
	for (int i = 0; i < nseen; i++)
		if (!strcmp(seen[i].name, name))
			return &seen[i];
	return NULL;
}

/* Feed the named exchanges in order, 100 ns apart, into a fresh trace stage. */
static void replay(struct agt_trace *t, const char *const *names, int n)
{
	struct agt_sink sink = {.span = sink_span};
	static struct agt_sink keep;

	keep = sink;
	nseen = 0;
	assert_int_equal(agt_trace_init(t, &keep, NULL, NULL, (struct agt_proc_facts){target, NULL},
					8, 8, 1 << 20),
			 0);
	for (int i = 0; i < n; i++) {
		struct agt_http_msg *req, *resp;

		load(names[i], &req, &resp);
		req->start_ns = req->end_ns = 1000 + 100 * (uint64_t)i;
		resp->start_ns = resp->first_body_ns = req->start_ns + 10;
		resp->end_ns = req->start_ns + 20;
		req->pid = resp->pid = 7;
		req->tid = resp->tid = 7;
		agt_trace_exchange(t, &agent, req, resp);
	}
}

static void loops_rebuild_one_tool_call_each(void **state)
{
	static const char *const loops[][2] = {
	    {"openai/chat-loop-call", "openai/chat-loop-answer"},
	    {"anthropic/messages-loop-call", "anthropic/messages-loop-answer"},
	};
	(void)state;
	for (int i = 0; i < 2; i++) {
		struct agt_trace t;
		const struct seen *cot, *tool;

		replay(&t, loops[i], 2);
		cot = NULL;
		for (int k = 0; k < nseen; k++)
			if (!strcmp(seen[k].type, "cot_process"))
				cot = &seen[k];
		tool = named("execute_tool get_weather");
		assert_non_null(cot);
		assert_non_null(tool);
		assert_int_equal(cot->steps, 2);
		assert_int_equal(cot->tools, 1);
		assert_int_equal(tool->parent, cot->span);
		for (int k = 0; k < nseen; k++)
			assert_memory_equal(seen[k].trace, cot->trace, 16);
		agt_trace_fini(&t);
	}
}

static void agents_sdk_workflow_rebuilds(void **state)
{
	static const char *const plain[] = {
	    "openai/responses-orchestrator-call", "openai/responses-expert-call",
	    "openai/responses-expert-answer", "openai/responses-orchestrator-transfer",
	    "openai/responses-reporter-answer"};
	static const char *const streamed[] = {"openai/responses-stream-orchestrator-call",
					       "openai/responses-stream-expert-call",
					       "openai/responses-stream-expert-answer",
					       "openai/responses-stream-orchestrator-transfer",
					       "openai/responses-stream-reporter-answer"};
	const char *const *runs[] = {plain, streamed};

	(void)state;
	for (int r = 0; r < 2; r++) {
		struct agt_trace t;
		const struct seen *cot, *ask, *expert, *weather, *transfer, *reporter;

		replay(&t, runs[r], 5);
		cot = named("conversation gpt-4.1");
		ask = named("execute_tool ask_weather_expert");
		expert = named("invoke_agent ask_weather_expert");
		weather = named("execute_tool get_weather");
		transfer = named("execute_tool transfer_to_Reporter");
		reporter = named("invoke_agent Reporter");
		assert_non_null(cot);
		assert_non_null(reporter);
		assert_int_equal(cot->parent, 0);
		assert_int_equal(ask->parent, cot->span);
		assert_int_equal(expert->parent, ask->span);
		assert_string_equal(expert->agent, "ask_weather_expert");
		assert_int_equal(expert->steps, 2);
		assert_int_equal(weather->parent, expert->span);
		assert_int_equal(transfer->parent, cot->span);
		assert_int_equal(reporter->parent, transfer->span);
		assert_string_equal(reporter->agent, "Reporter");
		assert_int_equal(reporter->steps, 1);
		assert_int_equal(cot->steps, 3);
		assert_int_equal(cot->tools, 2);
		for (int k = 0; k < nseen; k++)
			assert_memory_equal(seen[k].trace, cot->trace, 16);
		agt_trace_fini(&t);
	}
}

/* The Responses API as Codex uses it (tests/targets/coding_agent.py codex): a custom tool's
 * free-text input, a namespaced tool; three turns linked by previous_response_id (only the new
 * items sent) or sent whole with encrypted reasoning (store: false): one conversation. */
static void codex_turns_rebuild_one_conversation(void **state)
{
	static const char *const chain[] = {"openai/responses-codex-call",
					    "openai/responses-codex-pr",
					    "openai/responses-codex-answer"};
	static const char *const whole[] = {"openai/responses-codex-stateless-call",
					    "openai/responses-codex-stateless-pr",
					    "openai/responses-codex-stateless-answer"};
	const char *const *runs[] = {chain, whole};
	struct agt_http_msg *req, *resp;
	struct agt_llm l;

	(void)state;
	load("openai/responses-codex-call", &req, &resp);
	assert_int_equal(agt_llm_parse(req, resp, &l), 0);
	assert_int_equal(l.noffered, 4);
	assert_string_equal(l.offered[2], "web_search");
	assert_string_equal(l.offered[3], "github.open_pr");
	assert_string_equal(l.opening, "Fix the README and open a PR.");
	assert_string_equal(l.calls[1].name, "apply_patch");
	assert_string_equal(l.calls[1].id, "call_patch");
	assert_string_equal(
	    l.calls[1].arguments,
	    "*** Begin Patch\n*** Update File: README\n@@\n-old\n+new\n*** End Patch");
	agt_llm_free(&l);
	agt_http_msg_free(req);
	agt_http_msg_free(resp);
	for (int r = 0; r < 2; r++) {
		struct agt_trace t;
		const struct seen *cot, *sh, *patch, *pr;

		replay(&t, runs[r], 3);
		cot = named("conversation gpt-5-codex");
		sh = named("execute_tool shell");
		patch = named("execute_tool apply_patch");
		pr = named("execute_tool github.open_pr");
		assert_non_null(cot);
		assert_non_null(sh);
		assert_non_null(patch);
		assert_non_null(pr);
		assert_int_equal(cot->parent, 0);
		assert_int_equal(cot->steps, 3);
		assert_int_equal(cot->tools, 3);
		assert_int_equal(sh->parent, cot->span);
		assert_int_equal(patch->parent, cot->span);
		assert_int_equal(pr->parent, cot->span);
		for (int k = 0; k < nseen; k++)
			assert_memory_equal(seen[k].trace, cot->trace, 16);
		agt_trace_fini(&t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_fixture_parses),
	    cmocka_unit_test(errors_parse),
	    cmocka_unit_test(loops_rebuild_one_tool_call_each),
	    cmocka_unit_test(agents_sdk_workflow_rebuilds),
	    cmocka_unit_test(codex_turns_rebuild_one_conversation),
	};
	return cmocka_run_group_tests_name("fixtures", tests, NULL, NULL);
}
