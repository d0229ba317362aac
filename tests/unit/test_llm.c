/* Provider parsers on exact wire bodies. A plain exchange is a captured fixture
 * (tests/fixtures/llm, shared with test_fixtures.c, the fuzz seeds and the test server); the
 * bodies written out here are shapes no fixture has: parallel tool calls streamed interleaved,
 * several tool_use blocks, malformed, cut and foreign bodies, an opening resent without its
 * context blocks, streams cut between events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "protocols/llm/llm.h"

static struct agt_http_msg *msg(const char *url, const char *ctype, const char *body)
{
	struct agt_http_msg *m = calloc(1, sizeof(*m));

	strcpy(m->method, "POST");
	m->url = strdup(url);
	m->status = 200;
	if (ctype) {
		m->hdrs = calloc(1, sizeof(*m->hdrs));
		m->hdrs[0].name = strdup("Content-Type");
		m->hdrs[0].value = strdup(ctype);
		m->nhdrs = 1;
	}
	m->body = (uint8_t *)strdup(body);
	m->body_len = strlen(body);
	return m;
}

/* The request body of the captured exchange tests/fixtures/llm/NAME, on its path. */
static struct agt_http_msg *fixture_request(const char *name, const char *path)
{
	char file[256];
	size_t len;
	char *body;
	struct agt_http_msg *m;

	snprintf(file, sizeof(file), "tests/fixtures/llm/%s.request.json", name);
	body = agt_read_file(file, 1 << 20, &len);
	if (!body)
		fail_msg("cannot read %s", file);
	m = msg(path, NULL, body);
	free(body);
	return m;
}

/* Written out: two calls whose argument deltas interleave (the fixtures have one call). */
static void openai_parallel_streamed_tool_calls(void **state)
{
	(void)state;
	struct agt_http_msg *req =
	    msg("/v1/chat/completions", NULL,
		"{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[],"
		"\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\"}},"
		"{\"type\":\"function\",\"function\":{\"name\":\"b\"}}]}");
	struct agt_http_msg *resp = msg(
	    "", "text/event-stream; charset=utf-8",
	    "data: "
	    "{\"id\":\"c1\",\"model\":\"gpt-4o-x\",\"choices\":[{\"index\":0,\"delta\":{\"tool_"
	    "calls\":"
	    "[{\"index\":0,\"id\":\"call_A\",\"function\":{\"name\":\"a\",\"arguments\":\"\"}}]}}]}"
	    "\n\n"
	    "data: "
	    "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_B\","
	    "\"function\":{\"name\":\"b\",\"arguments\":\"{\\\"y\\\":\"}}]}}]}\n\n"
	    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
	    "{\"arguments\":\"{\\\"x\\\":1}\"}}]}}]}\n\n"
	    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":"
	    "{\"arguments\":\"2}\"}}]}}]}\n\n"
	    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
	    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":22}}\n\n"
	    "data: [DONE]\n\n");
	struct agt_llm l;

	assert_int_equal(agt_llm_parse(req, resp, &l), 0);
	assert_string_equal(l.provider, "openai");
	assert_string_equal(l.resp_model, "gpt-4o-x");
	assert_int_equal(l.stream, 1);
	assert_int_equal(l.noffered, 2);
	assert_int_equal(l.ncalls, 2);
	assert_string_equal(l.calls[0].id, "call_A");
	assert_string_equal(l.calls[0].arguments, "{\"x\":1}");
	assert_string_equal(l.calls[1].id, "call_B");
	assert_string_equal(l.calls[1].name, "b");
	assert_string_equal(l.calls[1].arguments, "{\"y\":2}");
	assert_int_equal(l.input_tokens, 11);
	assert_int_equal(l.output_tokens, 22);
	assert_int_equal(l.cached_tokens, -1);
	assert_int_equal(l.nfinish, 1);
	assert_string_equal(l.finish[0], "tool_calls");
	assert_int_equal(l.has_confidence, 0);
	assert_int_equal(l.parse_failed, 0);
	agt_llm_free(&l);
	agt_http_msg_free(req);
	agt_http_msg_free(resp);
}

/* Written out: two tool_use blocks in one message (the fixtures have one). */
static void anthropic_two_tool_uses_non_streamed(void **state)
{
	(void)state;
	struct agt_http_msg *req =
	    msg("/v1/messages", NULL, "{\"model\":\"claude\",\"max_tokens\":9,\"messages\":[]}");
	struct agt_http_msg *resp =
	    msg("", "application/json",
		"{\"id\":\"m1\",\"type\":\"message\",\"model\":\"claude-x\",\"content\":["
		"{\"type\":\"text\",\"text\":\"Two things.\"},"
		"{\"type\":\"tool_use\",\"id\":\"tu_1\",\"name\":\"f\",\"input\":{\"k\":\"v\"}},"
		"{\"type\":\"tool_use\",\"id\":\"tu_2\",\"name\":\"g\",\"input\":{}}],"
		"\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}");
	struct agt_llm l;

	assert_int_equal(agt_llm_parse(req, resp, &l), 0);
	assert_int_equal(l.ncalls, 2);
	assert_string_equal(l.calls[0].id, "tu_1");
	assert_string_equal(l.calls[0].arguments, "{\"k\":\"v\"}");
	assert_string_equal(l.calls[1].id, "tu_2");
	assert_string_equal(l.calls[1].arguments, "{}");
	assert_string_equal(l.text, "Two things.");
	assert_int_equal(l.cached_tokens, -1);
	agt_llm_free(&l);
	agt_http_msg_free(req);
	agt_http_msg_free(resp);
}

/* Written out: a cut body, a GET, a path that is no model API. */
static void cut_and_foreign_bodies(void **state)
{
	(void)state;
	struct agt_http_msg *req =
	    msg("/v1/chat/completions", NULL, "{\"model\":\"m\",\"messages\":[]}");
	struct agt_http_msg *cut = msg("", "application/json", "{\"id\":\"x\",\"choices\":[{\"ind");
	struct agt_http_msg *get = msg("/v1/chat/completions", NULL, "{}");
	struct agt_http_msg *other = msg("/upload", NULL, "{\"file\":1}");
	struct agt_llm l;

	assert_int_equal(agt_llm_parse(req, cut, &l), 0);
	assert_int_equal(l.parse_failed, 1);
	assert_string_equal(l.req_model, "m");
	assert_int_equal(l.ncalls, 0);
	agt_llm_free(&l);
	strcpy(get->method, "GET");
	assert_int_equal(agt_llm_parse(get, cut, &l), -1);
	assert_int_equal(agt_llm_parse(other, cut, &l), -1);
	agt_http_msg_free(req);
	agt_http_msg_free(cut);
	agt_http_msg_free(get);
	agt_http_msg_free(other);
}

/* Written out: a self-hosted server's own path and a minimal body. */
static void openai_compatible_elsewhere(void **state)
{
	(void)state;
	/* A self-hosted OpenAI-compatible server on its own path: recognised by the body. */
	struct agt_http_msg *req =
	    msg("/generate", NULL, "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\"}]}");
	struct agt_http_msg *resp =
	    msg("", "application/json",
		"{\"id\":\"r\",\"model\":\"qwen\",\"choices\":[{\"index\":0,"
		"\"message\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}],"
		"\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}");
	struct agt_llm l;

	assert_int_equal(agt_llm_parse(req, resp, &l), 0);
	assert_string_equal(l.api, "chat.completions");
	assert_string_equal(l.req_model, "qwen");
	assert_int_equal(l.input_tokens, 5);
	assert_string_equal(l.finish[0], "stop");
	agt_llm_free(&l);
	agt_http_msg_free(req);
	agt_http_msg_free(resp);
}

/* Responses API as coding agents send it (the captured Codex exchange, store: false): developer
 * and context messages before the user's, reasoning items with encrypted content, function_call
 * and its output, a custom tool's call and output, a namespace of tools. Then, written out, the
 * same opening resent without its context blocks and with an id added. */
static void responses_coding_agent_request(void **state)
{
	(void)state;
	struct agt_http_msg *req =
	    fixture_request("openai/responses-codex-stateless-pr", "/v1/responses");
	struct agt_http_msg *again =
	    msg("/v1/responses", NULL,
		"{\"model\":\"gpt-5-codex\",\"instructions\":\"You are Codex, a coding agent.\","
		"\"input\":[{\"type\":\"message\",\"role\":\"user\",\"id\":\"msg_9\",\"content\":[{"
		"\"type\":\"input_text\",\"text\":\"Fix the README and open a PR.\"}]}]}");
	struct agt_http_msg *none = msg("", "application/json", "");
	struct agt_llm l, m;

	assert_int_equal(agt_llm_parse(req, none, &l), 0);
	assert_string_equal(l.api, "responses");
	assert_int_equal(l.stream, 1);
	assert_string_equal(l.opening, "Fix the README and open a PR.");
	assert_int_equal(l.nresults, 2);
	assert_string_equal(l.results[0].id, "call_sh");
	assert_string_equal(l.results[0].content, "tree-ok");
	assert_string_equal(l.results[1].id, "call_patch");
	assert_string_equal(l.results[1].content, "Done: README updated");
	assert_int_equal(l.noffered, 4);
	assert_string_equal(l.offered[0], "shell");
	assert_string_equal(l.offered[1], "apply_patch");
	assert_string_equal(l.offered[2], "web_search");
	assert_string_equal(l.offered[3], "github.open_pr");
	/* The same opening without the context blocks, with an id added: the same conversation;
	 * the developer message is context alone, and so leaves the agent's identity alone. */
	assert_int_equal(agt_llm_parse(again, none, &m), 0);
	assert_true(l.prefix_hash == m.prefix_hash);
	assert_true(l.system_hash == m.system_hash);
	assert_true(l.system_hash != 0);
	agt_llm_free(&l);
	agt_llm_free(&m);
	agt_http_msg_free(req);
	agt_http_msg_free(again);
	agt_http_msg_free(none);
}

#define EV(name, json) "event: " name "\ndata: " json "\n\n"

/* Streamed Responses: calls built from output items and argument deltas (a namespaced and a
 * custom tool), text from deltas; completed replaces them with the whole response. Written
 * out: the stream is cut between events, then completed. */
static void responses_stream_items_and_cut(void **state)
{
	(void)state;
	struct agt_http_msg *req =
	    msg("/v1/responses", NULL,
		"{\"model\":\"gpt-5\",\"stream\":true,\"previous_response_id\":"
		"\"resp_0\",\"input\":\"hi\"}");
	const char *head = EV("response.created",
			      "{\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\","
			      "\"model\":\"gpt-5-2025\",\"status\":\"in_progress\",\"output\":[]}}")
	    EV("response.output_item.added",
	       "{\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"type\":"
	       "\"reasoning\",\"id\":\"rs_1\"}}") EV("response.output_text.delta",
						     "{\"type\":\"response.output_text.delta\","
						     "\"output_index\":1,\"delta\":\"Checking\"}")
		EV("response.output_item.added",
		   "{\"type\":\"response.output_item.added\",\"output_index\":2,\"item\":{\"type\":"
		   "\"function_call\",\"id\":\"fc_1\",\"call_id\":\"call_a\",\"namespace\":"
		   "\"github\","
		   "\"name\":\"open_pr\",\"arguments\":\"\"}}")
		    EV("response.function_call_arguments.delta",
		       "{\"type\":\"response.function_call_arguments.delta\",\"output_index\":2,"
		       "\"delta\":"
		       "\"{\\\"title\\\":\"}") EV("response.function_call_arguments.delta",
						  "{\"type\":\"response.function_call_arguments."
						  "delta\",\"output_index\":2,\"delta\":"
						  "\"\\\"x\\\"}\"}")
			EV("response.output_item.added",
			   "{\"type\":\"response.output_item.added\",\"output_index\":3,\"item\":{"
			   "\"type\":"
			   "\"custom_tool_call\",\"call_id\":\"call_b\",\"name\":\"apply_patch\","
			   "\"input\":\"\"}}") EV("response.custom_tool_call_input.delta",
						  "{\"type\":\"response.custom_tool_call_input."
						  "delta\",\"output_index\":3,\"delta\":"
						  "\"*** Begin\"}");
	char whole[4096];
	struct agt_http_msg *cut = msg("", "text/event-stream", head);
	struct agt_llm l;

	assert_int_equal(agt_llm_parse(req, cut, &l), 0);
	assert_string_equal(l.prev_resp_id, "resp_0");
	assert_string_equal(l.resp_id, "resp_1");
	assert_string_equal(l.resp_model, "gpt-5-2025");
	assert_string_equal(l.text, "Checking");
	assert_int_equal(l.ncalls, 2);
	assert_string_equal(l.calls[0].name, "github.open_pr");
	assert_string_equal(l.calls[0].id, "call_a");
	assert_string_equal(l.calls[0].arguments, "{\"title\":\"x\"}");
	assert_string_equal(l.calls[1].name, "apply_patch");
	assert_string_equal(l.calls[1].arguments, "*** Begin");
	assert_int_equal(l.nfinish, 0);
	assert_int_equal(l.input_tokens, -1);
	agt_llm_free(&l);
	snprintf(
	    whole, sizeof(whole), "%s%s", head,
	    EV("response.completed",
	       "{\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"model\":"
	       "\"gpt-5-2025\",\"status\":\"completed\",\"output\":[{\"type\":\"reasoning\"},"
	       "{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":"
	       "\"Checking.\"}]},{\"type\":\"function_call\",\"call_id\":\"call_a\","
	       "\"namespace\":\"github\",\"name\":\"open_pr\",\"arguments\":\"{}\"},{\"type\":"
	       "\"custom_tool_call\",\"call_id\":\"call_b\",\"name\":\"apply_patch\",\"input\":"
	       "\"*** Begin Patch\"}],\"usage\":{\"input_tokens\":9,\"output_tokens\":8,"
	       "\"output_tokens_details\":{\"reasoning_tokens\":5}}}}"));
	struct agt_http_msg *full = msg("", "text/event-stream", whole);

	assert_int_equal(agt_llm_parse(req, full, &l), 0);
	assert_string_equal(l.text, "Checking.");
	assert_int_equal(l.ncalls, 2);
	assert_string_equal(l.calls[0].arguments, "{}");
	assert_string_equal(l.calls[1].arguments, "*** Begin Patch");
	assert_string_equal(l.finish[0], "tool_calls");
	assert_int_equal(l.input_tokens, 9);
	assert_int_equal(l.output_tokens, 8);
	agt_llm_free(&l);
	agt_http_msg_free(req);
	agt_http_msg_free(cut);
	agt_http_msg_free(full);
}

/* Context blocks: a text that is one XML-like element. */
static void context_blocks(void **state)
{
	(void)state;
	assert_true(agt_llm_is_context("<system-reminder>x</system-reminder>"));
	assert_true(agt_llm_is_context(" <env a=\"1\">\n<cwd>/</cwd>\n</env>\n"));
	assert_false(agt_llm_is_context("<b>bold</b> and more"));
	assert_false(agt_llm_is_context("fix <b>this</b>"));
	assert_false(agt_llm_is_context("<a></b>"));
	assert_false(agt_llm_is_context(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(openai_parallel_streamed_tool_calls),
	    cmocka_unit_test(anthropic_two_tool_uses_non_streamed),
	    cmocka_unit_test(cut_and_foreign_bodies),
	    cmocka_unit_test(openai_compatible_elsewhere),
	    cmocka_unit_test(responses_coding_agent_request),
	    cmocka_unit_test(responses_stream_items_and_cut),
	    cmocka_unit_test(context_blocks),
	};
	return cmocka_run_group_tests_name("llm", tests, NULL, NULL);
}
