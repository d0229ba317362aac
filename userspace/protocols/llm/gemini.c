/* Google Gemini API: models.generateContent and models.streamGenerateContent, as Google AI
 * Studio serves them (generativelanguage: /v1beta/models/MODEL:...) and as Vertex AI does
 * (/v1/projects/P/locations/L/publishers/google/models/MODEL:...), with the same bodies.
 *
 * The model is named by the path, not the body. A response is a GenerateContentResponse; when
 * streamed it comes as SSE events (alt=sse), one response each, or without alt=sse as a JSON
 * array of them, which the capture may cut: the complete elements still count.
 *
 * Ids of function calls. A functionCall may come without an id. Such a call gets the synthetic
 * id "gemini-call-T-I": T is the number of model turns the request's history holds (so the
 * model's answer is turn T, counted from 0) and I the call's place among the answer's
 * functionCall parts; stable, since it depends only on the exchange. Agents send the answer
 * back in their next request's history, so each functionResponse is tied to the call it
 * answers there: in the model turn just before it, the first call not yet answered with the
 * same id, else the same name. The result then carries the call's id when it has none of its
 * own, and always the synthetic id that call has or would have had
 * (agt_tool_result.synthetic_id). The agent model pairs a result with a pending call by id,
 * then by that synthetic id when the call's id was synthetic (adopting an id the agent
 * assigned), then by name (trace/agent.c). A result replayed from older turns carries an older
 * turn's synthetic id and so closes nothing again. */
#include "protocols/llm/llm.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GET cJSON_GetObjectItemCaseSensitive
#define CALL_ID_FMT "gemini-call-%d-%d"

/* What a path says: the model, streamed or not, and which of Google's two services. */
struct gem_path {
	char model[128];
	int stream, vertex;
};

/* The usage counts the last response (or stream chunk) reported; -1 when none did. Stream
 * chunks repeat the running totals, so the last value of each is the exchange's. */
struct gem_usage {
	int64_t prompt, candidates, thoughts, cached;
};

static int starts(const char *s, size_t n, const char *prefix)
{
	size_t pl = strlen(prefix);

	return n >= pl && !memcmp(s, prefix, pl);
}

/* Whether needle occurs in the n bytes at s. */
static int has(const char *s, size_t n, const char *needle)
{
	size_t nl = strlen(needle);

	for (size_t i = 0; i + nl <= n; i++)
		if (!memcmp(s + i, needle, nl))
			return 1;
	return 0;
}

/* A path whose last segment is MODEL:generateContent or MODEL:streamGenerateContent under
 * models/ (or tunedModels/), with or without a version prefix (/v1, /v1beta, /v1beta1), and
 * Vertex AI's projects/P/locations/L/ and publishers/google/ before models/. */
static int parse_path(const char *url, struct gem_path *p)
{
	size_t n = strcspn(url, "?"), seg, prev;
	const char *colon = NULL, *method;

	memset(p, 0, sizeof(*p));
	for (size_t i = n; i > 0; i--) {
		if (url[i - 1] == '/')
			break;
		if (url[i - 1] == ':') {
			colon = url + i - 1;
			break;
		}
	}
	if (!colon)
		return 0;
	method = colon + 1;
	if ((size_t)(url + n - method) == strlen("generateContent") &&
	    !memcmp(method, "generateContent", strlen("generateContent")))
		p->stream = 0;
	else if ((size_t)(url + n - method) == strlen("streamGenerateContent") &&
		 !memcmp(method, "streamGenerateContent", strlen("streamGenerateContent")))
		p->stream = 1;
	else
		return 0;
	seg = (size_t)(colon - url);
	while (seg > 0 && url[seg - 1] != '/')
		seg--;
	if (seg == 0 || colon == url + seg) /* no segment, or an empty model name */
		return 0;
	prev = seg - 1;
	while (prev > 0 && url[prev - 1] != '/')
		prev--;
	if (!((seg - 1 - prev == 6 && !memcmp(url + prev, "models", 6)) ||
	      (seg - 1 - prev == 11 && !memcmp(url + prev, "tunedModels", 11))))
		return 0;
	snprintf(p->model, sizeof(p->model), "%.*s", (int)(colon - url - seg), url + seg);
	/* Vertex AI: a project's resource path, or Google's publisher path (Vertex express mode).
	 */
	p->vertex = has(url, seg, "/publishers/google/models/") ||
		    (has(url, seg, "projects/") && has(url, seg, "/locations/"));
	return 1;
}

int agt_gemini_path(const char *url)
{
	struct gem_path p;

	return parse_path(url, &p);
}

/* Conversation identity from the text a content carries: its parts' text (and the data or
 * URI of media parts), nothing else, so fields an agent or SDK adds to a part or a content
 * from one turn to the next (thought signatures, roles, metadata) do not change it. */
static void content_prefix(struct agt_llm *l, const cJSON *content)
{
	const cJSON *part;

	if (cJSON_IsString(content)) {
		agt_llm_prefix(l, content);
		return;
	}
	cJSON_ArrayForEach(part, GET(content, "parts"))
	{
		if (cJSON_IsString(GET(part, "text")))
			agt_llm_prefix(l, GET(part, "text"));
		else if (cJSON_IsString(GET(GET(part, "inlineData"), "data")))
			agt_llm_prefix(l, GET(GET(part, "inlineData"), "data"));
		else if (cJSON_IsString(GET(GET(part, "fileData"), "fileUri")))
			agt_llm_prefix(l, GET(GET(part, "fileData"), "fileUri"));
	}
}

/* A functionCall part that names a function (streamed partial arguments come without one and
 * do not make a call of their own). */
static const cJSON *named_call(const cJSON *part)
{
	const cJSON *fc = GET(part, "functionCall");

	return cJSON_IsString(GET(fc, "name")) ? fc : NULL;
}

/* The functionResponse's call in the model turn before it: the first not yet answered with
 * the same id (when the response has one and a call does), else with the same name. Sets *idx
 * to its place among the turn's calls; NULL when the turn has no such call. */
static const cJSON *answered_call(const cJSON *model, const cJSON *fr, uint64_t *used, int *idx)
{
	const char *id = cJSON_GetStringValue(GET(fr, "id"));
	const char *name = cJSON_GetStringValue(GET(fr, "name"));

	for (int pass = id && *id ? 0 : 1; pass < 2; pass++) {
		const cJSON *part, *fc;
		int i = 0;

		cJSON_ArrayForEach(part, GET(model, "parts"))
		{
			const char *cid, *cname;

			if (!(fc = named_call(part)))
				continue;
			cid = cJSON_GetStringValue(GET(fc, "id"));
			cname = cJSON_GetStringValue(GET(fc, "name"));
			if (i < 64 && !(*used & (1ull << i)) &&
			    (pass == 0 ? cid && !strcmp(cid, id) : name && !strcmp(cname, name))) {
				*used |= 1ull << i;
				*idx = i;
				return fc;
			}
			i++;
		}
	}
	return NULL;
}

/* A FunctionResponse: its "response" object holds the output under "output", or the failure
 * under "error"; with neither, the whole object is the output. */
static void function_response(struct agt_llm *l, const cJSON *fr, const cJSON *call, int turn,
			      int idx)
{
	const cJSON *resp = GET(fr, "response");
	const cJSON *out = GET(resp, "output"), *err = GET(resp, "error");
	const char *id = cJSON_GetStringValue(GET(fr, "id"));
	const char *call_id = cJSON_GetStringValue(GET(call, "id"));
	int failed = !out && err && !cJSON_IsNull(err) && !cJSON_IsFalse(err), n = l->nresults;
	const cJSON *content = out ? out : failed ? err : resp;

	if (!id || !*id)
		id = call_id;
	agt_llm_result(l, id, cJSON_GetStringValue(GET(fr, "name")), content, failed);
	if (call && l->nresults > n)
		snprintf(l->results[n].synthetic_id, sizeof(l->results[n].synthetic_id),
			 CALL_ID_FMT, turn, idx);
}

/* The request: system instruction, history (first user content, tool results), tools. Returns
 * the number of model turns in the history. */
static int request(const cJSON *req, struct agt_llm *l)
{
	const cJSON *c, *t, *model = NULL;
	int turns = 0, model_turn = -1, user_seen = 0;
	uint64_t used = 0;

	content_prefix(l, GET(req, "systemInstruction"));
	l->system_hash = l->prefix_hash; /* nothing else went in yet */
	cJSON_ArrayForEach(c, GET(req, "contents"))
	{
		const char *role = cJSON_GetStringValue(GET(c, "role"));
		const cJSON *part;

		if (role && !strcmp(role, "model")) {
			model = c;
			model_turn = turns++;
			used = 0;
			continue;
		}
		if (!user_seen && (!role || !strcmp(role, "user"))) {
			content_prefix(l, c);
			user_seen = 1;
			cJSON_ArrayForEach(part, GET(c, "parts"))
			{
				if (cJSON_IsString(GET(part, "text")))
					agt_llm_append(&l->opening, GET(part, "text")->valuestring);
			}
		}
		/* Results come in user contents (the "function" role of older clients too). */
		cJSON_ArrayForEach(part, GET(c, "parts"))
		{
			const cJSON *fr = GET(part, "functionResponse"), *call = NULL;
			int idx = -1;

			if (!cJSON_IsObject(fr))
				continue;
			if (model)
				call = answered_call(model, fr, &used, &idx);
			function_response(l, fr, call, model_turn, idx);
		}
	}
	cJSON_ArrayForEach(t, GET(req, "tools"))
	{
		const cJSON *fd;

		cJSON_ArrayForEach(fd, GET(t, "functionDeclarations"))
		    agt_llm_offered(l, cJSON_GetStringValue(GET(fd, "name")));
	}
	return turns;
}

/* {"error": {"code": 404, "message": "...", "status": "NOT_FOUND"}}: the status names it. */
static void api_error(struct agt_llm *l, const cJSON *e)
{
	const cJSON *status = GET(e, "status"), *code = GET(e, "code"), *m = GET(e, "message");

	if (cJSON_IsString(status) && status->valuestring[0])
		agt_llm_copy(l->error_type, sizeof(l->error_type), status);
	else if (cJSON_IsNumber(code))
		snprintf(l->error_type, sizeof(l->error_type), "%d", code->valueint);
	else
		snprintf(l->error_type, sizeof(l->error_type), "error");
	free(l->error_message);
	l->error_message = cJSON_IsString(m) ? strdup(m->valuestring) : NULL;
}

static void usage(const cJSON *u, struct gem_usage *g)
{
	if (!cJSON_IsObject(u))
		return;
	if (cJSON_IsNumber(GET(u, "promptTokenCount")))
		g->prompt = agt_llm_int(GET(u, "promptTokenCount"));
	if (cJSON_IsNumber(GET(u, "candidatesTokenCount")))
		g->candidates = agt_llm_int(GET(u, "candidatesTokenCount"));
	if (cJSON_IsNumber(GET(u, "thoughtsTokenCount")))
		g->thoughts = agt_llm_int(GET(u, "thoughtsTokenCount"));
	if (cJSON_IsNumber(GET(u, "cachedContentTokenCount")))
		g->cached = agt_llm_int(GET(u, "cachedContentTokenCount"));
}

/* One GenerateContentResponse (all of it, or one stream chunk). The first candidate is what
 * the agent acts on; thought parts (thought: true) are the model's reasoning summary, not its
 * answer, so their text is left out. */
static void response(const cJSON *o, struct agt_llm *l, struct gem_usage *g)
{
	const cJSON *cand = NULL, *c, *part, *block;

	if (!cJSON_IsObject(o)) {
		l->parse_failed = 1;
		return;
	}
	if (GET(o, "error")) {
		api_error(l, GET(o, "error"));
		return;
	}
	if (cJSON_IsString(GET(o, "modelVersion")))
		agt_llm_copy(l->resp_model, sizeof(l->resp_model), GET(o, "modelVersion"));
	if (cJSON_IsString(GET(o, "responseId")))
		agt_llm_copy(l->resp_id, sizeof(l->resp_id), GET(o, "responseId"));
	cJSON_ArrayForEach(c, GET(o, "candidates"))
	{
		if (!cJSON_IsNumber(GET(c, "index")) || GET(c, "index")->valueint == 0) {
			cand = c;
			break;
		}
	}
	cJSON_ArrayForEach(part, GET(GET(cand, "content"), "parts"))
	{
		const cJSON *fc = named_call(part);

		if (cJSON_IsTrue(GET(part, "thought")))
			continue;
		if (cJSON_IsString(GET(part, "text")))
			agt_llm_append(&l->text, GET(part, "text")->valuestring);
		if (fc) {
			struct agt_tool_call *tc = agt_llm_call_at(l, l->ncalls);
			char *args;

			if (!tc)
				continue;
			agt_llm_copy(tc->id, sizeof(tc->id), GET(fc, "id"));
			agt_llm_copy(tc->name, sizeof(tc->name), GET(fc, "name"));
			args = cJSON_IsObject(GET(fc, "args"))
				   ? cJSON_PrintUnformatted(GET(fc, "args"))
				   : NULL;
			agt_llm_append(&tc->arguments, args ? args : "{}");
			free(args);
		}
	}
	agt_llm_add_finish(l, cJSON_GetStringValue(GET(cand, "finishReason")));
	/* With responseLogprobs: the chosen tokens' log probabilities (confidence, as for OpenAI).
	 */
	cJSON_ArrayForEach(c, GET(GET(cand, "logprobsResult"), "chosenCandidates"))
	{
		if (cJSON_IsNumber(GET(c, "logProbability")))
			agt_llm_logprob(l, GET(c, "logProbability")->valuedouble);
	}
	/* A prompt blocked by Google's filters has no candidates, only the reason. */
	block = GET(GET(o, "promptFeedback"), "blockReason");
	if (cJSON_IsString(block) && strcmp(block->valuestring, "BLOCK_REASON_UNSPECIFIED")) {
		snprintf(l->error_type, sizeof(l->error_type), "blocked");
		free(l->error_message);
		l->error_message = strdup(block->valuestring);
	}
	usage(GET(o, "usageMetadata"), g);
}

struct sse_ctx {
	struct agt_llm *l;
	struct gem_usage *g;
};

static void sse_event(void *ctx, const char *event, const char *data)
{
	struct sse_ctx *s = ctx;
	cJSON *o = cJSON_Parse(data);

	(void)event;
	if (!o)
		s->l->parse_failed = 1;
	else
		response(o, s->l, s->g);
	cJSON_Delete(o);
}

/* The end of the JSON value starting at p (an object or array; strings may hold brackets), or
 * NULL when the text ends first. */
static const char *value_end(const char *p, const char *end)
{
	int depth = 0, in_str = 0;

	for (; p < end; p++) {
		if (in_str) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				in_str = 0;
		} else if (*p == '"') {
			in_str = 1;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			if (--depth == 0)
				return p + 1;
		}
	}
	return NULL;
}

/* A streamed body without alt=sse: "[" response ("," response)* "]", parsed element by element
 * so that a body cut by the capture still gives what it completed. */
static void json_array(const char *p, const char *end, struct agt_llm *l, struct gem_usage *g)
{
	p++; /* '[' */
	for (;;) {
		const char *e;
		cJSON *o;

		while (p < end &&
		       (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == ','))
			p++;
		if (p == end) { /* cut before the closing bracket */
			l->parse_failed = 1;
			return;
		}
		if (*p == ']')
			return;
		if (!(e = value_end(p, end))) {
			l->parse_failed = 1;
			return;
		}
		o = cJSON_ParseWithLength(p, (size_t)(e - p));
		if (o)
			response(o, l, g);
		else
			l->parse_failed = 1;
		cJSON_Delete(o);
		p = e;
	}
}

static void response_body(const struct agt_http_msg *resp, struct agt_llm *l, struct gem_usage *g)
{
	const char *ct = agt_http_header(resp, "Content-Type");
	const char *p = (const char *)resp->body, *end = p ? p + resp->body_len : NULL;

	if (!resp->body_len)
		return;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	if ((ct && strstr(ct, "text/event-stream")) || starts(p, (size_t)(end - p), "data:")) {
		struct sse_ctx s = {l, g};

		l->stream = 1;
		agt_sse_parse((const char *)resp->body, resp->body_len, sse_event, &s);
	} else if (p < end && *p == '[') {
		json_array(p, end, l, g);
	} else {
		cJSON *o = cJSON_ParseWithLength(p, (size_t)(end - p));

		if (o)
			response(o, l, g);
		else
			l->parse_failed = 1;
		cJSON_Delete(o);
	}
}

int agt_gemini_generate(const char *url, const cJSON *req, const struct agt_http_msg *resp,
			struct agt_llm *l)
{
	struct gem_path p;
	struct gem_usage g = {-1, -1, -1, -1};
	int turn;

	if (!parse_path(url, &p))
		return -1;
	/* OTel GenAI: gcp.gemini is the Gemini API of AI Studio, gcp.vertex_ai Vertex AI's; the
	 * operation is generate_content, the convention's name for Gemini's Generate Content. */
	agt_llm_init(l, p.vertex ? "gcp.vertex_ai" : "gcp.gemini", "generate_content");
	l->operation = "generate_content";
	snprintf(l->req_model, sizeof(l->req_model), "%s", p.model);
	l->stream = p.stream;
	turn = request(req, l);
	response_body(resp, l, &g);
	/* Tokens as OTel GenAI counts them: gen_ai.usage.input_tokens is promptTokenCount (it
	 * includes the cached part, cachedContentTokenCount, which is gen_ai.usage.cache_read);
	 * gen_ai.usage.output_tokens includes the reasoning tokens, and Gemini counts those apart
	 * from the answer's: candidatesTokenCount + thoughtsTokenCount. (toolUsePromptTokenCount,
	 * the results of Google's own tools such as search, is left out.) */
	l->input_tokens = g.prompt;
	if (g.candidates >= 0 || g.thoughts >= 0)
		l->output_tokens =
		    (g.candidates > 0 ? g.candidates : 0) + (g.thoughts > 0 ? g.thoughts : 0);
	l->cached_tokens = g.cached;
	for (int i = 0; i < l->ncalls; i++) {
		if (l->calls[i].id[0])
			continue;
		snprintf(l->calls[i].id, sizeof(l->calls[i].id), CALL_ID_FMT, turn, i);
		l->calls[i].synthetic_id = 1;
	}
	return 0;
}
