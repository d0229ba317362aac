/* MCP tool calls from JSON-RPC messages (see mcp.h). */
#include "protocols/mcp.h"
#include "protocols/http.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GET cJSON_GetObjectItemCaseSensitive

void agt_jsonrpc_id(const cJSON *id, char *out, size_t n)
{
	if (cJSON_IsString(id))
		snprintf(out, n, "%s", id->valuestring);
	else if (cJSON_IsNumber(id))
		snprintf(out, n, "%.17g", id->valuedouble);
	else
		out[0] = 0;
}

int agt_mcp_request(const cJSON *o, struct agt_mcp_call *c)
{
	const char *method = cJSON_GetStringValue(GET(o, "method"));
	const cJSON *params = GET(o, "params");
	const char *name;

	if (!method || strcmp(method, "tools/call"))
		return 0;
	memset(c, 0, sizeof(*c));
	agt_jsonrpc_id(GET(o, "id"), c->id, sizeof(c->id));
	name = cJSON_GetStringValue(GET(params, "name"));
	snprintf(c->name, sizeof(c->name), "%s", name ? name : "");
	c->arguments = cJSON_PrintUnformatted(GET(params, "arguments"));
	if (!c->arguments)
		c->arguments = strdup("{}");
	return 1;
}

void agt_mcp_answer(const cJSON *msg, struct agt_mcp_call *c)
{
	const cJSON *res = GET(msg, "result"), *err = GET(msg, "error"), *b;
	size_t used = 0;

	c->answered = 1;
	if (err) {
		const char *m = cJSON_GetStringValue(GET(err, "message"));

		c->is_error = 1;
		c->result = strdup(m ? m : "error");
		return;
	}
	c->is_error = cJSON_IsTrue(GET(res, "isError"));
	cJSON_ArrayForEach(b, GET(res, "content"))
	{
		const char *t = cJSON_GetStringValue(GET(b, "text"));
		size_t tl = t ? strlen(t) : 0;
		char *nr = t ? realloc(c->result, used + tl + 1) : NULL;

		if (!nr)
			continue;
		memcpy(nr + used, t, tl + 1);
		used += tl;
		c->result = nr;
	}
	if (!c->result)
		c->result = strdup("");
}

/* The JSON-RPC response to id in o (an object, or a batch array). */
static const cJSON *answer_to(const cJSON *o, const char *id)
{
	const cJSON *it;
	char idt[64];

	if (cJSON_IsArray(o)) {
		cJSON_ArrayForEach(it, o)
		{
			const cJSON *r = answer_to(it, id);

			if (r)
				return r;
		}
		return NULL;
	}
	agt_jsonrpc_id(GET(o, "id"), idt, sizeof(idt));
	if (strcmp(idt, id))
		return NULL;
	return GET(o, "result") || GET(o, "error") ? o : NULL;
}

struct sse_find {
	const char *id;
	cJSON *found; /* the whole message */
};

static void sse_event(void *ctx, const char *event, const char *data)
{
	struct sse_find *f = ctx;
	cJSON *o;

	(void)event;
	if (f->found || !(o = cJSON_Parse(data)))
		return;
	if (answer_to(o, f->id))
		f->found = o;
	else
		cJSON_Delete(o);
}

int agt_mcp_from_http(const struct agt_http_msg *req, const struct agt_http_msg *resp,
		      struct agt_mcp_call *c)
{
	const char *ct = resp ? agt_http_header(resp, "Content-Type") : NULL;
	const cJSON *msg;
	cJSON *rq, *answer = NULL;
	int is_call;

	if (!req->body_len || strcmp(req->method, "POST") || req->body[0] != '{')
		return 0;
	rq = cJSON_ParseWithLength((const char *)req->body, req->body_len);
	is_call = rq && cJSON_IsString(GET(rq, "jsonrpc")) && agt_mcp_request(rq, c);
	cJSON_Delete(rq);
	if (!is_call)
		return 0;
	c->start_ns = req->start_ns;
	c->end_ns = resp ? resp->end_ns : req->end_ns;
	c->pid = req->pid;
	c->tid = req->tid;
	c->session = agt_http_header(req, "Mcp-Session-Id");
	if (!c->session && resp)
		c->session = agt_http_header(resp, "Mcp-Session-Id");
	if (resp && resp->body_len && ct && strstr(ct, "text/event-stream")) {
		struct sse_find f = {c->id, NULL};

		agt_sse_parse((const char *)resp->body, resp->body_len, sse_event, &f);
		answer = f.found;
	} else if (resp && resp->body_len) {
		answer = cJSON_ParseWithLength((const char *)resp->body, resp->body_len);
	}
	if ((msg = answer ? answer_to(answer, c->id) : NULL)) {
		agt_mcp_answer(msg, c);
	} else if (resp && !resp->incomplete && resp->status >= 400) {
		char m[64];

		snprintf(m, sizeof(m), "HTTP status %d", resp->status);
		c->answered = 1;
		c->is_error = 1;
		c->result = strdup(m);
	}
	cJSON_Delete(answer);
	return 1;
}

void agt_mcp_call_free(struct agt_mcp_call *c)
{
	free(c->arguments);
	free(c->result);
	c->arguments = c->result = NULL;
}
