/* Which LLM API an exchange speaks, and the helpers its parsers share. */
#include "protocols/llm/llm.h"
#include "base/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void agt_llm_init(struct agt_llm *l, const char *provider, const char *api)
{
	memset(l, 0, sizeof(*l));
	l->provider = provider;
	l->api = api;
	l->operation = "chat";
	l->input_tokens = l->output_tokens = l->cached_tokens = -1;
	l->max_tokens = l->seed = l->choice_count = -1;
	l->temperature = l->top_p = l->top_k = l->frequency_penalty = l->presence_penalty = NAN;
}

void agt_llm_copy(char *dst, size_t n, const cJSON *v)
{
	snprintf(dst, n, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

int64_t agt_llm_int(const cJSON *v)
{
	/* Token counts: whole, non-negative, and within range before the cast (else absent). */
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 9.0e15))
		return -1;
	return (int64_t)v->valuedouble;
}

void agt_llm_add_finish(struct agt_llm *l, const char *reason)
{
	if (!reason || !*reason || l->nfinish == 4)
		return;
	for (int i = 0; i < l->nfinish; i++)
		if (!strcmp(l->finish[i], reason))
			return;
	snprintf(l->finish[l->nfinish++], sizeof(l->finish[0]), "%s", reason);
}

struct agt_tool_call *agt_llm_call_at(struct agt_llm *l, int index)
{
	struct agt_tool_call *c;

	for (int i = 0; i < l->ncalls; i++)
		if (l->calls[i].index == index)
			return &l->calls[i];
	if (l->ncalls >= 256)
		return NULL;
	c = realloc(l->calls, (l->ncalls + 1) * sizeof(*c));
	if (!c)
		return NULL;
	l->calls = c;
	c = &l->calls[l->ncalls++];
	memset(c, 0, sizeof(*c));
	c->index = index;
	return c;
}

void agt_llm_append(char **dst, const char *s)
{
	size_t a = *dst ? strlen(*dst) : 0, b = s ? strlen(s) : 0;
	char *n;

	if (!b && *dst)
		return;
	n = realloc(*dst, a + b + 1);
	if (!n)
		return;
	memcpy(n + a, s ? s : "", b);
	n[a + b] = 0;
	*dst = n;
}

void agt_llm_offered(struct agt_llm *l, const char *name)
{
	char **n;

	if (!name || !*name || l->noffered >= 256)
		return;
	n = realloc(l->offered, (l->noffered + 1) * sizeof(*n));
	if (!n)
		return;
	l->offered = n;
	l->offered[l->noffered++] = strdup(name);
}

/* Logprobs accumulate in confidence (sum) and has_confidence (count) until agt_llm_done. */
void agt_llm_logprob(struct agt_llm *l, double lp)
{
	l->confidence += lp;
	l->has_confidence++;
}

void agt_llm_done(struct agt_llm *l)
{
	if (l->has_confidence) {
		l->confidence = exp(l->confidence / l->has_confidence);
		l->has_confidence = 1;
	}
}

void agt_llm_prefix(struct agt_llm *l, const cJSON *v)
{
	char *txt;

	if (!v)
		return;
	txt = cJSON_PrintUnformatted(v);
	if (txt)
		l->prefix_hash = agt_fnv1a(txt, strlen(txt), l->prefix_hash);
	free(txt);
}

int agt_llm_is_context(const char *text)
{
	const char *p = text, *e;
	size_t n;

	while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
		p++;
	if (*p != '<')
		return 0;
	n = strspn(p + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-:.");
	if (!n || (p[1 + n] != '>' && p[1 + n] != ' '))
		return 0;
	e = p + strlen(p);
	while (e > p && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r' || e[-1] == '\t'))
		e--;
	/* ends with </tag> */
	return (size_t)(e - p) > 2 * n + 4 && e[-1] == '>' && !memcmp(e - n - 1, p + 1, n) &&
	       *(e - n - 2) == '/' && *(e - n - 3) == '<';
}

/* The text of one block ("text", or a bare string), or NULL when it carries none. */
static const char *block_text(const cJSON *b)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "text");

	if (cJSON_IsString(b))
		return b->valuestring;
	return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* Fold content's text into the prefix (and append it to *keep when given); with skip_context,
 * blocks that are context alone are left out. Returns how many blocks went in. */
static int fold_text(struct agt_llm *l, const cJSON *content, int skip_context, char **keep)
{
	const cJSON *b;
	int n = 0;

	if (cJSON_IsString(content) || (cJSON_IsObject(content) && block_text(content))) {
		const char *t = block_text(content);

		if (skip_context && agt_llm_is_context(t))
			return 0;
		l->prefix_hash = agt_fnv1a(t, strlen(t), l->prefix_hash);
		if (keep)
			agt_llm_append(keep, t);
		return 1;
	}
	cJSON_ArrayForEach(b, content)
	{
		const char *t = block_text(b);

		if (!t || (skip_context && agt_llm_is_context(t)))
			continue;
		l->prefix_hash = agt_fnv1a(t, strlen(t), l->prefix_hash);
		if (keep) {
			if (n)
				agt_llm_append(keep, "\n");
			agt_llm_append(keep, t);
		}
		n++;
	}
	return n;
}

/* Whether content has a text that is not context. */
static int has_own_text(const cJSON *content)
{
	const cJSON *b;

	if (cJSON_IsString(content) || cJSON_IsObject(content))
		return block_text(content) && !agt_llm_is_context(block_text(content));
	cJSON_ArrayForEach(b, content)
	{
		if (block_text(b) && !agt_llm_is_context(block_text(b)))
			return 1;
	}
	return 0;
}

void agt_llm_prefix_text(struct agt_llm *l, const cJSON *content)
{
	if (!fold_text(l, content, 1, NULL))
		fold_text(l, content, 0, NULL);
}

void agt_llm_system(struct agt_llm *l, const cJSON *content)
{
	uint64_t before = l->prefix_hash;

	if (!content)
		return;
	/* system_hash: the same fold, started from its own seed */
	l->prefix_hash = l->system_hash;
	agt_llm_prefix_text(l, content);
	l->system_hash = l->prefix_hash;
	l->prefix_hash = before;
	agt_llm_prefix_text(l, content);
}

void agt_llm_system_message(struct agt_llm *l, const cJSON *content)
{
	if (has_own_text(content))
		agt_llm_system(l, content);
}

int agt_llm_user(struct agt_llm *l, const cJSON *content)
{
	if (l->opening || !has_own_text(content))
		return 0;
	fold_text(l, content, 1, &l->opening);
	if (!l->opening)
		agt_llm_append(&l->opening, "");
	return 1;
}

void agt_llm_result(struct agt_llm *l, const char *id, const char *name, const cJSON *content,
		    int is_error)
{
	struct agt_tool_result *r;
	const cJSON *b;

	if (l->nresults >= 256)
		return;
	r = realloc(l->results, (l->nresults + 1) * sizeof(*r));
	if (!r)
		return;
	l->results = r;
	r = &l->results[l->nresults++];
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", id ? id : "");
	snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
	r->is_error = is_error;
	if (cJSON_IsString(content)) {
		agt_llm_append(&r->content, content->valuestring);
	} else if (cJSON_IsArray(content)) {
		cJSON_ArrayForEach(b, content)
		{
			const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "text");

			agt_llm_append(&r->content, cJSON_IsString(t)	? t->valuestring
						    : cJSON_IsString(b) ? b->valuestring
									: "");
		}
	} else if (content) {
		char *txt = cJSON_PrintUnformatted(content);

		agt_llm_append(&r->content, txt ? txt : "");
		free(txt);
	}
	if (!r->content)
		agt_llm_append(&r->content, "");
}

void agt_llm_chat_messages(const cJSON *msgs, struct agt_llm *l)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, msgs)
	{
		const char *role =
		    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "role"));
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");

		if (!role)
			continue;
		if (!l->opening && (!strcmp(role, "system") || !strcmp(role, "developer"))) {
			agt_llm_system_message(l, content);
		} else if (!strcmp(role, "user")) {
			agt_llm_user(l, content);
		} else if (!strcmp(role, "tool")) {
			const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "tool_name");

			if (!name)
				name = cJSON_GetObjectItemCaseSensitive(m, "name");
			agt_llm_result(l,
				       cJSON_GetStringValue(
					   cJSON_GetObjectItemCaseSensitive(m, "tool_call_id")),
				       cJSON_GetStringValue(name), content, 0);
		}
	}
}

cJSON *agt_llm_sse_json(struct agt_llm *l, const char *event, const char *data, const char **type)
{
	cJSON *o = cJSON_Parse(data);

	if (!o) {
		l->parse_failed = 1;
		return NULL;
	}
	*type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "type"));
	if (!*type)
		*type = event;
	return o;
}

void agt_llm_api_error(struct agt_llm *l, const cJSON *err)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(err, "type");
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(err, "code");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(err, "message");

	if (cJSON_IsString(err)) {
		snprintf(l->error_type, sizeof(l->error_type), "error");
		free(l->error_message);
		l->error_message = strdup(err->valuestring);
		return;
	}
	agt_llm_copy(l->error_type, sizeof(l->error_type), cJSON_IsString(t) ? t : c);
	if (!l->error_type[0])
		snprintf(l->error_type, sizeof(l->error_type), "error");
	if (cJSON_IsString(m)) {
		free(l->error_message);
		l->error_message = strdup(m->valuestring);
	}
}

static int path_ends(const char *url, const char *suffix)
{
	size_t ul = strcspn(url, "?"), sl = strlen(suffix);

	return ul >= sl && !memcmp(url + ul - sl, suffix, sl);
}

int agt_llm_parse(const struct agt_http_msg *req, const struct agt_http_msg *resp,
		  struct agt_llm *out)
{
	return agt_llm_parse_content(req, resp, out, NULL);
}

int agt_llm_parse_content(const struct agt_http_msg *req, const struct agt_http_msg *resp,
			  struct agt_llm *out, const struct agt_llm_content_cfg *cc)
{
	cJSON *body;
	int rc = -1;

	if (!req->body_len || strcmp(req->method, "POST"))
		return -1;
	body = cJSON_ParseWithLength((const char *)req->body, req->body_len);
	if (!body && req->truncated) /* cut by the capture cap: the path and response still tell */
		body = cJSON_CreateObject();
	if (!body)
		return -1;
	if (agt_gemini_path(req->url))
		rc = agt_gemini_generate(req->url, body, resp, out);
	else if (path_ends(req->url, "/chat/completions"))
		rc = agt_openai_chat(body, resp, out);
	else if (path_ends(req->url, "/responses"))
		rc = agt_openai_responses(body, resp, out);
	else if (path_ends(req->url, "/messages") && cJSON_GetObjectItem(body, "max_tokens"))
		rc = agt_anthropic_messages(body, resp, out);
	else if (path_ends(req->url, "/api/chat"))
		rc = agt_ollama_chat(body, resp, out);
	else if (cJSON_IsArray(cJSON_GetObjectItem(body, "messages")) &&
		 cJSON_IsString(cJSON_GetObjectItem(body, "model")))
		rc = agt_openai_chat(body, resp, out); /* an OpenAI-compatible server elsewhere */
	if (!rc) {
		agt_llm_params(body, out);
		if (cc && cc->cap)
			agt_llm_content(body, out, cc);
	}
	cJSON_Delete(body);
	if (!rc) {
		agt_llm_done(out);
		out->incomplete = resp->incomplete;
	}
	return rc;
}

void agt_llm_free(struct agt_llm *l)
{
	for (int i = 0; i < l->noffered; i++)
		free(l->offered[i]);
	free(l->offered);
	for (int i = 0; i < l->ncalls; i++)
		free(l->calls[i].arguments);
	free(l->calls);
	for (int i = 0; i < l->nresults; i++)
		free(l->results[i].content);
	free(l->results);
	free(l->text);
	free(l->error_message);
	free(l->opening);
	for (int i = 0; i < l->nstop; i++)
		free(l->stop[i]);
	free(l->stop);
	free(l->input_messages);
	free(l->system_instructions);
	memset(l, 0, sizeof(*l));
}
