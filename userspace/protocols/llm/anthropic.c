/* Anthropic Messages API, streamed (SSE with typed events) and not. */
#include "protocols/llm/llm.h"
#include <stdlib.h>
#include <string.h>

#define GET cJSON_GetObjectItemCaseSensitive

static void usage(const cJSON *u, struct agt_llm *l)
{
	if (!cJSON_IsObject(u))
		return;
	if (cJSON_IsNumber(GET(u, "input_tokens")))
		l->input_tokens = agt_llm_int(GET(u, "input_tokens"));
	if (cJSON_IsNumber(GET(u, "output_tokens")))
		l->output_tokens = agt_llm_int(GET(u, "output_tokens"));
	if (cJSON_IsNumber(GET(u, "cache_read_input_tokens")))
		l->cached_tokens = agt_llm_int(GET(u, "cache_read_input_tokens"));
}

static void block(const cJSON *b, int index, struct agt_llm *l)
{
	const char *type = cJSON_GetStringValue(GET(b, "type"));

	if (!type)
		return;
	if (!strcmp(type, "text") && cJSON_IsString(GET(b, "text"))) {
		agt_llm_append(&l->text, GET(b, "text")->valuestring);
	} else if (!strcmp(type, "tool_use")) {
		struct agt_tool_call *c = agt_llm_call_at(l, index);
		const cJSON *in = GET(b, "input");

		if (!c)
			return;
		agt_llm_copy(c->id, sizeof(c->id), GET(b, "id"));
		agt_llm_copy(c->name, sizeof(c->name), GET(b, "name"));
		/* Streamed tool_use starts with input {} and fills it through deltas. */
		if (cJSON_IsObject(in) && cJSON_GetArraySize(in) > 0) {
			char *txt = cJSON_PrintUnformatted(in);

			agt_llm_append(&c->arguments, txt);
			free(txt);
		}
	}
}

static void message(const cJSON *m, struct agt_llm *l)
{
	const cJSON *b;
	int i = 0;

	agt_llm_copy(l->resp_model, sizeof(l->resp_model), GET(m, "model"));
	agt_llm_copy(l->resp_id, sizeof(l->resp_id), GET(m, "id"));
	cJSON_ArrayForEach(b, GET(m, "content")) block(b, i++, l);
	agt_llm_add_finish(l, cJSON_GetStringValue(GET(m, "stop_reason")));
	usage(GET(m, "usage"), l);
}

static void sse(void *ctx, const char *event, const char *data)
{
	struct agt_llm *l = ctx;
	const char *type;
	cJSON *o = agt_llm_sse_json(l, event, data, &type);
	int idx;

	if (!o)
		return;
	idx = cJSON_IsNumber(GET(o, "index")) ? GET(o, "index")->valueint : 0;
	if (!strcmp(type, "message_start")) {
		message(GET(o, "message"), l);
	} else if (!strcmp(type, "content_block_start")) {
		block(GET(o, "content_block"), idx, l);
	} else if (!strcmp(type, "content_block_delta")) {
		const cJSON *d = GET(o, "delta");
		const char *dt = cJSON_GetStringValue(GET(d, "type"));

		if (dt && !strcmp(dt, "text_delta"))
			agt_llm_append(&l->text, cJSON_GetStringValue(GET(d, "text")));
		else if (dt && !strcmp(dt, "input_json_delta")) {
			struct agt_tool_call *c = agt_llm_call_at(l, idx);

			if (c)
				agt_llm_append(&c->arguments,
					       cJSON_GetStringValue(GET(d, "partial_json")));
		}
	} else if (!strcmp(type, "message_delta")) {
		agt_llm_add_finish(l, cJSON_GetStringValue(GET(GET(o, "delta"), "stop_reason")));
		usage(GET(o, "usage"), l);
	} else if (!strcmp(type, "error")) {
		agt_llm_api_error(l, GET(o, "error"));
	}
	cJSON_Delete(o);
}

int agt_anthropic_messages(const cJSON *req, const struct agt_http_msg *resp, struct agt_llm *l)
{
	const char *ct = agt_http_header(resp, "Content-Type");
	const cJSON *t;

	agt_llm_init(l, "anthropic", "messages");
	agt_llm_copy(l->req_model, sizeof(l->req_model), GET(req, "model"));
	agt_llm_system(l, GET(req, "system"));
	const cJSON *m;

	cJSON_ArrayForEach(m, GET(req, "messages"))
	{
		const char *role = cJSON_GetStringValue(GET(m, "role"));
		const cJSON *b;

		if (!role || strcmp(role, "user"))
			continue;
		agt_llm_user(l, GET(m, "content"));
		cJSON_ArrayForEach(b, GET(m, "content"))
		{
			const char *bt = cJSON_GetStringValue(GET(b, "type"));

			if (bt && !strcmp(bt, "tool_result"))
				agt_llm_result(l, cJSON_GetStringValue(GET(b, "tool_use_id")), NULL,
					       GET(b, "content"), cJSON_IsTrue(GET(b, "is_error")));
		}
	}
	l->stream = cJSON_IsTrue(GET(req, "stream"));
	cJSON_ArrayForEach(t, GET(req, "tools"))
	    agt_llm_offered(l, cJSON_GetStringValue(GET(t, "name")));
	if (ct && strstr(ct, "text/event-stream")) {
		l->stream = 1;
		agt_sse_parse((const char *)resp->body, resp->body_len, sse, l);
	} else if (resp->body_len) {
		cJSON *o = cJSON_ParseWithLength((const char *)resp->body, resp->body_len);
		const char *type = cJSON_GetStringValue(GET(o, "type"));

		if (type && !strcmp(type, "error"))
			agt_llm_api_error(l, GET(o, "error"));
		else if (o)
			message(o, l);
		else
			l->parse_failed = 1;
		cJSON_Delete(o);
	}
	/* Streamed tool input arrives as JSON text in pieces; an empty one means {}. */
	for (int i = 0; i < l->ncalls; i++)
		if (!l->calls[i].arguments)
			agt_llm_append(&l->calls[i].arguments, "{}");
	return 0;
}
