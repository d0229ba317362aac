/* Provider parsers on exact wire bodies: what the integration tests' server cannot easily
 * produce (parallel tool calls, several tool_use blocks, malformed and cut bodies). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(openai_parallel_streamed_tool_calls),
	    cmocka_unit_test(anthropic_two_tool_uses_non_streamed),
	    cmocka_unit_test(cut_and_foreign_bodies),
	    cmocka_unit_test(openai_compatible_elsewhere),
	};
	return cmocka_run_group_tests_name("llm", tests, NULL, NULL);
}
