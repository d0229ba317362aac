/* Ollama /api/chat: NDJSON lines when streamed (the default), one object otherwise. */
#include "protocols/llm/llm.h"
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define GET cJSON_GetObjectItemCaseSensitive

static void line(const cJSON *o, struct agt_llm *l)
{
	const cJSON *msg = GET(o, "message"), *tc;

	if (GET(o, "error")) {
		agt_llm_api_error(l, GET(o, "error"));
		return;
	}
	if (cJSON_IsString(GET(o, "model")))
		agt_llm_copy(l->resp_model, sizeof(l->resp_model), GET(o, "model"));
	if (cJSON_IsString(GET(msg, "content")))
		agt_llm_append(&l->text, GET(msg, "content")->valuestring);
	cJSON_ArrayForEach(tc, GET(msg, "tool_calls"))
	{
		const cJSON *fn = GET(tc, "function");
		struct agt_tool_call *c = agt_llm_call_at(l, l->ncalls);
		char *args;

		if (!c)
			continue;
		agt_llm_copy(c->name, sizeof(c->name), GET(fn, "name"));
		agt_llm_copy(c->id, sizeof(c->id), GET(tc, "id"));
		args = cJSON_PrintUnformatted(GET(fn, "arguments"));
		agt_llm_append(&c->arguments, args ? args : "{}");
		free(args);
	}
	if (cJSON_IsTrue(GET(o, "done"))) {
		agt_llm_add_finish(l, cJSON_GetStringValue(GET(o, "done_reason")));
		l->input_tokens = agt_llm_int(GET(o, "prompt_eval_count"));
		l->output_tokens = agt_llm_int(GET(o, "eval_count"));
	}
}

int agt_ollama_chat(const cJSON *req, const struct agt_http_msg *resp, struct agt_llm *l)
{
	const cJSON *t, *s = GET(req, "stream");
	const char *p = (const char *)resp->body, *end = p ? p + resp->body_len : NULL;

	agt_llm_init(l, "ollama", "ollama.chat");
	agt_llm_copy(l->req_model, sizeof(l->req_model), GET(req, "model"));
	l->stream = !cJSON_IsFalse(s);
	agt_llm_chat_messages(GET(req, "messages"), l);
	cJSON_ArrayForEach(t, GET(req, "tools"))
	{
		agt_llm_offered(l, cJSON_GetStringValue(GET(GET(t, "function"), "name")));
	}
	while (p && p < end) {
		const char *nl = memchr(p, '\n', end - p);
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (n) {
			cJSON *o = cJSON_ParseWithLength(p, n);

			if (o)
				line(o, l);
			else
				l->parse_failed = 1;
			cJSON_Delete(o);
		}
		p += n + 1;
	}
	for (int i = 0; i < l->ncalls; i++) /* Ollama gives no call ids: make stable ones */
		if (!l->calls[i].id[0])
			snprintf(l->calls[i].id, sizeof(l->calls[i].id), "ollama-call-%d", i);
	return 0;
}
