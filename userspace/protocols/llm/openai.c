/* OpenAI Chat Completions and Responses API, streamed (SSE) and not; also what
 * OpenAI-compatible servers (vLLM, llama.cpp, LiteLLM, ...) speak. */
#include "protocols/llm/llm.h"
#include <stdlib.h>
#include <string.h>

#define GET cJSON_GetObjectItemCaseSensitive

static void chat_request(const cJSON *req, struct agt_llm *l)
{
	const cJSON *t;

	agt_llm_copy(l->req_model, sizeof(l->req_model), GET(req, "model"));
	l->stream = cJSON_IsTrue(GET(req, "stream"));
	agt_llm_chat_messages(GET(req, "messages"), l);
	cJSON_ArrayForEach(t, GET(req, "tools"))
	{
		const cJSON *fn = GET(t, "function");

		agt_llm_offered(l, cJSON_GetStringValue(GET(fn ? fn : t, "name")));
	}
}

static void chat_usage(const cJSON *u, struct agt_llm *l)
{
	if (!cJSON_IsObject(u))
		return;
	l->input_tokens = agt_llm_int(GET(u, "prompt_tokens"));
	l->output_tokens = agt_llm_int(GET(u, "completion_tokens"));
	l->cached_tokens = agt_llm_int(GET(GET(u, "prompt_tokens_details"), "cached_tokens"));
}

static void chat_logprobs(const cJSON *lp, struct agt_llm *l)
{
	const cJSON *t;

	cJSON_ArrayForEach(t, GET(lp, "content"))
	{
		const cJSON *v = GET(t, "logprob");

		if (cJSON_IsNumber(v))
			agt_llm_logprob(l, v->valuedouble);
	}
}

/* One choice object: a full message, or a stream delta (fields arrive in pieces). */
static void chat_choice(const cJSON *ch, struct agt_llm *l, int delta)
{
	const cJSON *msg = GET(ch, delta ? "delta" : "message"), *tc;

	if (cJSON_GetNumberValue(GET(ch, "index")) > 0)
		return; /* n > 1: the first choice is what the agent acts on */
	agt_llm_add_finish(l, cJSON_GetStringValue(GET(ch, "finish_reason")));
	chat_logprobs(GET(ch, "logprobs"), l);
	if (cJSON_IsString(GET(msg, "content")))
		agt_llm_append(&l->text, GET(msg, "content")->valuestring);
	cJSON_ArrayForEach(tc, GET(msg, "tool_calls"))
	{
		const cJSON *idx = GET(tc, "index"), *fn = GET(tc, "function");
		struct agt_tool_call *c =
		    agt_llm_call_at(l, cJSON_IsNumber(idx) ? idx->valueint : l->ncalls);

		if (!c)
			continue;
		if (cJSON_IsString(GET(tc, "id")) && GET(tc, "id")->valuestring[0])
			agt_llm_copy(c->id, sizeof(c->id), GET(tc, "id"));
		if (cJSON_IsString(GET(fn, "name")) && GET(fn, "name")->valuestring[0])
			agt_llm_copy(c->name, sizeof(c->name), GET(fn, "name"));
		if (cJSON_IsString(GET(fn, "arguments")))
			agt_llm_append(&c->arguments, GET(fn, "arguments")->valuestring);
	}
}

static void chat_object(const cJSON *o, struct agt_llm *l, int delta)
{
	const cJSON *ch;

	if (GET(o, "error")) {
		agt_llm_api_error(l, GET(o, "error"));
		return;
	}
	if (cJSON_IsString(GET(o, "model")))
		agt_llm_copy(l->resp_model, sizeof(l->resp_model), GET(o, "model"));
	if (cJSON_IsString(GET(o, "id")))
		agt_llm_copy(l->resp_id, sizeof(l->resp_id), GET(o, "id"));
	cJSON_ArrayForEach(ch, GET(o, "choices")) chat_choice(ch, l, delta);
	chat_usage(GET(o, "usage"), l);
}

static void chat_sse(void *ctx, const char *event, const char *data)
{
	struct agt_llm *l = ctx;
	cJSON *o;

	(void)event;
	if (!strcmp(data, "[DONE]"))
		return;
	o = cJSON_Parse(data);
	if (!o) {
		l->parse_failed = 1;
		return;
	}
	chat_object(o, l, 1);
	cJSON_Delete(o);
}

static int is_sse(const struct agt_http_msg *resp)
{
	const char *ct = agt_http_header(resp, "Content-Type");

	return ct && strstr(ct, "text/event-stream");
}

int agt_openai_chat(const cJSON *req, const struct agt_http_msg *resp, struct agt_llm *l)
{
	agt_llm_init(l, "openai", "chat.completions");
	chat_request(req, l);
	if (is_sse(resp)) {
		l->stream = 1;
		agt_sse_parse((const char *)resp->body, resp->body_len, chat_sse, l);
	} else if (resp->body_len) {
		cJSON *o = cJSON_ParseWithLength((const char *)resp->body, resp->body_len);

		if (o)
			chat_object(o, l, 0);
		else
			l->parse_failed = 1;
		cJSON_Delete(o);
	}
	return 0;
}

/* Responses API: a response object (whole, or in response.completed when streamed). */
static void responses_object(const cJSON *r, struct agt_llm *l)
{
	const cJSON *it, *u = GET(r, "usage");
	int idx = 0;

	agt_llm_copy(l->resp_model, sizeof(l->resp_model), GET(r, "model"));
	agt_llm_copy(l->resp_id, sizeof(l->resp_id), GET(r, "id"));
	if (cJSON_IsObject(GET(r, "error")))
		agt_llm_api_error(l, GET(r, "error"));
	cJSON_ArrayForEach(it, GET(r, "output"))
	{
		const char *type = cJSON_GetStringValue(GET(it, "type"));
		const cJSON *c;

		if (type && !strcmp(type, "function_call")) {
			struct agt_tool_call *tc = agt_llm_call_at(l, idx++);

			if (!tc)
				continue;
			agt_llm_copy(tc->id, sizeof(tc->id), GET(it, "call_id"));
			agt_llm_copy(tc->name, sizeof(tc->name), GET(it, "name"));
			agt_llm_append(&tc->arguments, cJSON_GetStringValue(GET(it, "arguments")));
		} else if (type && !strcmp(type, "message")) {
			cJSON_ArrayForEach(c, GET(it, "content"))
			{
				const cJSON *lp;

				if (cJSON_IsString(GET(c, "text")))
					agt_llm_append(&l->text, GET(c, "text")->valuestring);
				cJSON_ArrayForEach(lp, GET(c, "logprobs"))
				{
					if (cJSON_IsNumber(GET(lp, "logprob")))
						agt_llm_logprob(l, GET(lp, "logprob")->valuedouble);
				}
			}
		}
	}
	/* Responses has no finish_reason: the status, and tool_calls when it called tools. */
	if (l->ncalls)
		agt_llm_add_finish(l, "tool_calls");
	else
		agt_llm_add_finish(l, cJSON_GetStringValue(GET(r, "status")));
	if (cJSON_IsObject(u)) {
		l->input_tokens = agt_llm_int(GET(u, "input_tokens"));
		l->output_tokens = agt_llm_int(GET(u, "output_tokens"));
		l->cached_tokens =
		    agt_llm_int(GET(GET(u, "input_tokens_details"), "cached_tokens"));
	}
}

static void responses_sse(void *ctx, const char *event, const char *data)
{
	struct agt_llm *l = ctx;
	const char *type;
	cJSON *o = agt_llm_sse_json(l, event, data, &type);

	if (!o)
		return;
	if (!strcmp(type, "response.completed") || !strcmp(type, "response.failed") ||
	    !strcmp(type, "response.incomplete"))
		responses_object(GET(o, "response"), l);
	else if (!strcmp(type, "error"))
		agt_llm_api_error(l, GET(o, "error") ? GET(o, "error") : o);
	cJSON_Delete(o);
}

int agt_openai_responses(const cJSON *req, const struct agt_http_msg *resp, struct agt_llm *l)
{
	const cJSON *t;

	agt_llm_init(l, "openai", "responses");
	agt_llm_copy(l->req_model, sizeof(l->req_model), GET(req, "model"));
	agt_llm_prefix(l, GET(req, "instructions"));
	if (cJSON_IsString(GET(req, "input"))) {
		agt_llm_prefix(l, GET(req, "input"));
	} else {
		const cJSON *it;
		int user_seen = 0;

		cJSON_ArrayForEach(it, GET(req, "input"))
		{
			const char *type = cJSON_GetStringValue(GET(it, "type"));
			const char *role = cJSON_GetStringValue(GET(it, "role"));

			if (!user_seen && role && !strcmp(role, "user")) {
				agt_llm_prefix(l, GET(it, "content"));
				user_seen = 1;
			} else if (type && !strcmp(type, "function_call_output")) {
				agt_llm_result(l, cJSON_GetStringValue(GET(it, "call_id")), NULL,
					       GET(it, "output"), 0);
			}
		}
	}
	cJSON_ArrayForEach(t, GET(req, "tools"))
	    agt_llm_offered(l, cJSON_GetStringValue(GET(t, "name")));
	if (is_sse(resp)) {
		l->stream = 1;
		agt_sse_parse((const char *)resp->body, resp->body_len, responses_sse, l);
	} else if (resp->body_len) {
		cJSON *o = cJSON_ParseWithLength((const char *)resp->body, resp->body_len);

		if (o && cJSON_IsObject(GET(o, "error")) && !GET(o, "output"))
			agt_llm_api_error(l, GET(o, "error"));
		else if (o)
			responses_object(o, l);
		else
			l->parse_failed = 1;
		cJSON_Delete(o);
	}
	return 0;
}
