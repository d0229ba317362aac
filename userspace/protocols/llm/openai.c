/* OpenAI Chat Completions and Responses API, streamed (SSE) and not; also what
 * OpenAI-compatible servers (vLLM, llama.cpp, LiteLLM, ...) speak. */
#include "protocols/llm/llm.h"
#include <stdio.h>
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

/* ---- Responses API ----
 * Input items: messages (role system/developer/user/assistant, content a string or input_text
 * blocks), function_call and function_call_output (custom_tool_call and its output the same for
 * custom tools), reasoning items (with encrypted_content when store is false: the agent sends
 * its whole history each turn), and previous_response_id when the server keeps it (store). Tools
 * are function and custom tools, built-in ones (named by their type), and namespaces: a tool
 * {"type":"namespace","name":N,"tools":[...]} whose calls name N in "namespace"; such a tool is
 * N.NAME here. Output items: function_call, custom_tool_call (its input is the arguments),
 * message (output_text), reasoning (not the answer). Streamed, the events build the same output
 * item by item (output_item.added/done, argument and text deltas), and response.completed
 * replaces it with the whole response: a stream cut short still gives what arrived. */

/* NAMESPACE.NAME, or NAME when the item has no namespace. */
static void call_name(char *dst, size_t n, const cJSON *item)
{
	const char *ns = cJSON_GetStringValue(GET(item, "namespace"));
	const char *name = cJSON_GetStringValue(GET(item, "name"));

	if (ns && *ns)
		snprintf(dst, n, "%s.%s", ns, name ? name : "");
	else
		snprintf(dst, n, "%s", name ? name : "");
}

/* One output item: a call (at index idx) or a message. */
static void responses_item(const cJSON *it, int idx, struct agt_llm *l)
{
	const char *type = cJSON_GetStringValue(GET(it, "type"));
	const cJSON *c;

	if (!type)
		return;
	if (!strcmp(type, "function_call") || !strcmp(type, "custom_tool_call") ||
	    !strcmp(type, "local_shell_call")) {
		struct agt_tool_call *tc = agt_llm_call_at(l, idx);
		const cJSON *args =
		    GET(it, !strcmp(type, "custom_tool_call") ? "input" : "arguments");

		if (!tc)
			return;
		agt_llm_copy(tc->id, sizeof(tc->id), GET(it, "call_id"));
		if (!strcmp(type, "local_shell_call")) {
			char *a = cJSON_PrintUnformatted(GET(it, "action"));

			snprintf(tc->name, sizeof(tc->name), "local_shell");
			free(tc->arguments);
			tc->arguments = a;
			return;
		}
		call_name(tc->name, sizeof(tc->name), it);
		if (cJSON_IsString(args)) {
			free(tc->arguments);
			tc->arguments = strdup(args->valuestring);
		}
	} else if (!strcmp(type, "message")) {
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

/* What the stream built item by item gives way to the whole response. */
static void responses_reset(struct agt_llm *l)
{
	for (int i = 0; i < l->ncalls; i++)
		free(l->calls[i].arguments);
	l->ncalls = 0;
	free(l->text);
	l->text = NULL;
	l->confidence = 0;
	l->has_confidence = 0;
}

/* A response object's header (model, id), from response.created as well as at the end. */
static void responses_head(const cJSON *r, struct agt_llm *l)
{
	if (cJSON_IsString(GET(r, "model")))
		agt_llm_copy(l->resp_model, sizeof(l->resp_model), GET(r, "model"));
	if (cJSON_IsString(GET(r, "id")))
		agt_llm_copy(l->resp_id, sizeof(l->resp_id), GET(r, "id"));
}

/* Responses API: a response object (whole, or in response.completed when streamed). */
static void responses_object(const cJSON *r, struct agt_llm *l)
{
	const cJSON *it, *u = GET(r, "usage");
	int idx = 0;

	responses_reset(l);
	responses_head(r, l);
	if (cJSON_IsObject(GET(r, "error")))
		agt_llm_api_error(l, GET(r, "error"));
	cJSON_ArrayForEach(it, GET(r, "output")) responses_item(it, idx++, l);
	/* Output indices may skip (reasoning, messages): calls keep their order, ids, names. */
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

static int output_index(const cJSON *o)
{
	const cJSON *i = GET(o, "output_index");

	return cJSON_IsNumber(i) ? i->valueint : 0;
}

static void responses_sse(void *ctx, const char *event, const char *data)
{
	struct agt_llm *l = ctx;
	const char *type;
	cJSON *o;

	if (!strcmp(data, "[DONE]"))
		return;
	o = agt_llm_sse_json(l, event, data, &type);
	if (!o)
		return;
	if (!type) {
		cJSON_Delete(o);
		return;
	}
	if (!strcmp(type, "response.completed") || !strcmp(type, "response.failed") ||
	    !strcmp(type, "response.incomplete")) {
		responses_object(GET(o, "response"), l);
	} else if (!strcmp(type, "response.created") || !strcmp(type, "response.in_progress")) {
		responses_head(GET(o, "response"), l);
	} else if (!strcmp(type, "response.output_item.added") ||
		   !strcmp(type, "response.output_item.done")) {
		const cJSON *it = GET(o, "item");
		const char *it_type = cJSON_GetStringValue(GET(it, "type"));

		/* a message's text comes by deltas: only calls are taken from the item */
		if (it_type && strcmp(it_type, "message"))
			responses_item(it, output_index(o), l);
	} else if (!strcmp(type, "response.function_call_arguments.delta") ||
		   !strcmp(type, "response.custom_tool_call_input.delta")) {
		struct agt_tool_call *tc = agt_llm_call_at(l, output_index(o));

		if (tc)
			agt_llm_append(&tc->arguments, cJSON_GetStringValue(GET(o, "delta")));
	} else if (!strcmp(type, "response.function_call_arguments.done") ||
		   !strcmp(type, "response.custom_tool_call_input.done")) {
		struct agt_tool_call *tc = agt_llm_call_at(l, output_index(o));
		const cJSON *v = GET(o, strstr(type, "custom") ? "input" : "arguments");

		if (tc && cJSON_IsString(v)) {
			free(tc->arguments);
			tc->arguments = strdup(v->valuestring);
		}
	} else if (!strcmp(type, "response.output_text.delta")) {
		agt_llm_append(&l->text, cJSON_GetStringValue(GET(o, "delta")));
	} else if (!strcmp(type, "error")) {
		agt_llm_api_error(l, GET(o, "error") ? GET(o, "error") : o);
	}
	cJSON_Delete(o);
}

/* Offered tools, namespaces opened (their tools are NAMESPACE.NAME). */
static void responses_tools(const cJSON *tools, const char *ns, struct agt_llm *l)
{
	const cJSON *t;

	cJSON_ArrayForEach(t, tools)
	{
		const char *type = cJSON_GetStringValue(GET(t, "type"));
		const char *name = cJSON_GetStringValue(GET(t, "name"));
		char full[256];

		if (type && !strcmp(type, "namespace") && name) {
			responses_tools(GET(t, "tools"), name, l);
			continue;
		}
		if (!name)
			name = cJSON_GetStringValue(GET(t, "server_label"));
		if (!name)
			name = type; /* built-in tools: web_search, file_search, ... */
		if (!name)
			continue;
		snprintf(full, sizeof(full), "%s%s%s", ns ? ns : "", ns ? "." : "", name);
		agt_llm_offered(l, full);
	}
}

static void responses_input(const cJSON *input, struct agt_llm *l)
{
	const cJSON *it;

	if (cJSON_IsString(input)) {
		agt_llm_user(l, input);
		return;
	}
	cJSON_ArrayForEach(it, input)
	{
		const char *type = cJSON_GetStringValue(GET(it, "type"));
		const char *role = cJSON_GetStringValue(GET(it, "role"));

		if (role && (!type || !strcmp(type, "message"))) {
			if (!l->opening && (!strcmp(role, "system") || !strcmp(role, "developer")))
				agt_llm_system_message(l, GET(it, "content"));
			else if (!strcmp(role, "user"))
				agt_llm_user(l, GET(it, "content"));
		} else if (type && (!strcmp(type, "function_call_output") ||
				    !strcmp(type, "custom_tool_call_output") ||
				    !strcmp(type, "local_shell_call_output"))) {
			agt_llm_result(l, cJSON_GetStringValue(GET(it, "call_id")), NULL,
				       GET(it, "output"), 0);
		}
	}
}

int agt_openai_responses(const cJSON *req, const struct agt_http_msg *resp, struct agt_llm *l)
{
	agt_llm_init(l, "openai", "responses");
	agt_llm_copy(l->req_model, sizeof(l->req_model), GET(req, "model"));
	agt_llm_copy(l->prev_resp_id, sizeof(l->prev_resp_id), GET(req, "previous_response_id"));
	l->stream = cJSON_IsTrue(GET(req, "stream"));
	agt_llm_system(l, GET(req, "instructions"));
	responses_input(GET(req, "input"), l);
	responses_tools(GET(req, "tools"), NULL, l);
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
	/* Streamed calls are kept by output index: number them in order. */
	for (int i = 0; i < l->ncalls; i++)
		l->calls[i].index = i;
	return 0;
}
