/* What an LLM request says besides its model: its parameters (OTel gen_ai.request.*) and, when
 * asked for, its chat history and system instructions in the OTel GenAI JSON shapes
 * (gen_ai.input.messages: [{"role", "parts": [{"type": "text", "content"} | {"type":
 * "tool_call", "id", "name", "arguments"} | {"type": "tool_call_response", "id", "result"}]}];
 * gen_ai.system_instructions: [{"type": "text", "content"}]), whatever the provider's own shape:
 * OpenAI Chat Completions (and Ollama), OpenAI Responses, Anthropic Messages, Gemini. */
#include "protocols/llm/llm.h"
#include "base/jsonw.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameters ---- */

static const cJSON *get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static void num(const cJSON *v, double *out)
{
	if (cJSON_IsNumber(v) && isfinite(v->valuedouble))
		*out = v->valuedouble;
}

static void whole(const cJSON *v, int64_t *out)
{
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15 &&
	    v->valuedouble == (double)(int64_t)v->valuedouble)
		*out = (int64_t)v->valuedouble;
}

static void stops(const cJSON *v, struct agt_llm *l)
{
	const cJSON *it;
	int n = cJSON_IsString(v) ? 1 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;

	if (!n || l->stop || n > 64 || !(l->stop = calloc((size_t)n, sizeof(char *))))
		return;
	if (cJSON_IsString(v)) {
		if ((l->stop[0] = strdup(v->valuestring)))
			l->nstop = 1;
		return;
	}
	cJSON_ArrayForEach(it, v) if (cJSON_IsString(it) && (l->stop[l->nstop] = strdup(it->valuestring)))
	    l->nstop++;
}

void agt_llm_params(const cJSON *req, struct agt_llm *l)
{
	const cJSON *o = req;

	if (!strcmp(l->api, "generate_content")) {
		o = get(req, "generationConfig");
		whole(get(o, "maxOutputTokens"), &l->max_tokens);
		num(get(o, "topP"), &l->top_p);
		num(get(o, "topK"), &l->top_k);
		whole(get(o, "candidateCount"), &l->choice_count);
		num(get(o, "frequencyPenalty"), &l->frequency_penalty);
		num(get(o, "presencePenalty"), &l->presence_penalty);
		stops(get(o, "stopSequences"), l);
	} else if (!strcmp(l->api, "ollama.chat")) {
		o = get(req, "options");
		whole(get(o, "num_predict"), &l->max_tokens);
	} else if (!strcmp(l->api, "responses")) {
		whole(get(o, "max_output_tokens"), &l->max_tokens);
	} else { /* chat.completions, messages */
		whole(get(o, "max_tokens"), &l->max_tokens);
		whole(get(o, "max_completion_tokens"), &l->max_tokens);
		whole(get(o, "n"), &l->choice_count);
		stops(get(o, "stop"), l);
		stops(get(o, "stop_sequences"), l);
	}
	num(get(o, "temperature"), &l->temperature);
	whole(get(o, "seed"), &l->seed);
	if (strcmp(l->api, "generate_content")) {
		num(get(o, "top_p"), &l->top_p);
		num(get(o, "top_k"), &l->top_k);
		num(get(o, "frequency_penalty"), &l->frequency_penalty);
		num(get(o, "presence_penalty"), &l->presence_penalty);
		if (!strcmp(l->api, "ollama.chat"))
			stops(get(o, "stop"), l);
	}
}

/* ---- content ---- */

/* Messages being built: each one's JSON text apart, so the oldest can be left out. */
struct msgs {
	struct agt_jw w; /* the message being written */
	char **m;
	size_t n, cap;
	size_t text_cap;
	const struct agt_llm_content_cfg *cc; /* its redaction */
	int open; /* a message is open in w */
	int parts; /* it has parts */
};

/* The longest prefix of s (n bytes) of at most cap bytes that ends on a character. */
static size_t cut(const char *s, size_t n, size_t cap)
{
	if (n <= cap)
		return n;
	while (cap && ((unsigned char)s[cap] & 0xc0) == 0x80)
		cap--;
	return cap;
}

/* A text, redacted whole and then cut: a secret is never cut before redaction sees it. */
static void text_field(struct msgs *b, const char *key, const char *s)
{
	char *r = b->cc && b->cc->redact ? b->cc->redact(b->cc->redact_ctx, s) : NULL;
	const char *t = r ? r : s;
	size_t n = strlen(t);

	if (b->cc && b->cc->redact && !r) /* no memory for the redacted copy: nothing of it */
		t = "", n = 0;
	agt_jw_strn(&b->w, key, t, cut(t, n, b->text_cap));
	free(r);
}

static void end_msg(struct msgs *b)
{
	char **m;

	if (!b->open)
		return;
	b->open = 0;
	agt_jw_end_arr(&b->w);
	agt_jw_end_obj(&b->w);
	if (!b->parts || b->w.failed)
		return;
	if (b->n == b->cap) {
		if (!(m = realloc(b->m, (b->cap = b->cap ? 2 * b->cap : 16) * sizeof(*m))))
			return;
		b->m = m;
	}
	/* the writer's text starts with a separator when it is not its first document */
	if ((b->m[b->n] = strdup(agt_jw_text(&b->w) + (agt_jw_text(&b->w)[0] == ',' ? 1 : 0))))
		b->n++;
}

static void begin_msg(struct msgs *b, const char *role)
{
	end_msg(b);
	agt_jw_reset(&b->w);
	agt_jw_obj(&b->w, NULL);
	agt_jw_str(&b->w, "role", role);
	agt_jw_arr(&b->w, "parts");
	b->open = 1;
	b->parts = 0;
}

static void text_part(struct msgs *b, const char *text)
{
	if (!text || !text[0])
		return;
	agt_jw_obj(&b->w, NULL);
	agt_jw_str(&b->w, "type", "text");
	text_field(b, "content", text);
	agt_jw_end_obj(&b->w);
	b->parts++;
}

/* A JSON value (arguments, a result) as it is when it is small enough, else as cut text. */
static void json_field(struct msgs *b, const char *key, const cJSON *v)
{
	char *t;

	if (cJSON_IsString(v)) {
		cJSON *parsed = strlen(v->valuestring) <= b->text_cap
				    ? cJSON_Parse(v->valuestring)
				    : NULL;

		if (parsed && (cJSON_IsObject(parsed) || cJSON_IsArray(parsed))) {
			t = cJSON_PrintUnformatted(parsed);
			if (t) {
				agt_jw_str(&b->w, key, ""); /* the key, then the value in place */
				b->w.len -= 2;		     /* of "" */
				agt_jw_raw(&b->w, t, strlen(t));
				free(t);
			}
		} else {
			text_field(b, key, v->valuestring);
		}
		cJSON_Delete(parsed);
		return;
	}
	t = v ? cJSON_PrintUnformatted(v) : NULL;
	if (t && strlen(t) <= b->text_cap) {
		agt_jw_str(&b->w, key, "");
		b->w.len -= 2;
		agt_jw_raw(&b->w, t, strlen(t));
	} else if (t) {
		text_field(b, key, t);
	} else {
		agt_jw_null(&b->w, key);
	}
	free(t);
}

static void call_part(struct msgs *b, const char *id, const char *name, const cJSON *args)
{
	agt_jw_obj(&b->w, NULL);
	agt_jw_str(&b->w, "type", "tool_call");
	if (id && id[0])
		agt_jw_str(&b->w, "id", id);
	agt_jw_str(&b->w, "name", name ? name : "");
	json_field(b, "arguments", args);
	agt_jw_end_obj(&b->w);
	b->parts++;
}

static void response_part(struct msgs *b, const char *id, const cJSON *result)
{
	agt_jw_obj(&b->w, NULL);
	agt_jw_str(&b->w, "type", "tool_call_response");
	if (id && id[0])
		agt_jw_str(&b->w, "id", id);
	json_field(b, "result", result);
	agt_jw_end_obj(&b->w);
	b->parts++;
}

/* A content: a string, or an array of text blocks ({"type": "text"|"input_text"|...,
 * "text"}); other blocks (images, files) are left out. */
static void content_parts(struct msgs *b, const cJSON *c)
{
	const cJSON *it;

	if (cJSON_IsString(c)) {
		text_part(b, c->valuestring);
		return;
	}
	cJSON_ArrayForEach(it, c)
	{
		const cJSON *t = get(it, "text");

		if (cJSON_IsString(it))
			text_part(b, it->valuestring);
		else if (cJSON_IsString(t))
			text_part(b, t->valuestring);
	}
}

static const char *str(const cJSON *o, const char *k)
{
	const char *s = cJSON_GetStringValue(get(o, k));

	return s ? s : "";
}

/* OpenAI Chat Completions and Ollama: messages[]. */
static void chat_messages(struct msgs *b, const cJSON *msgs)
{
	const cJSON *m, *tc;

	cJSON_ArrayForEach(m, msgs)
	{
		const char *role = str(m, "role");

		begin_msg(b, role[0] ? role : "user");
		if (!strcmp(role, "tool")) {
			const cJSON *c = get(m, "content");
			char *joined = NULL;

			if (cJSON_IsArray(c)) { /* text blocks: their text */
				const cJSON *it;

				cJSON_ArrayForEach(it, c) if (cJSON_IsString(get(it, "text")))
				    agt_llm_append(&joined, get(it, "text")->valuestring);
			}
			if (joined) {
				cJSON *s = cJSON_CreateString(joined);

				response_part(b, str(m, "tool_call_id"), s);
				cJSON_Delete(s);
				free(joined);
			} else {
				response_part(b, str(m, "tool_call_id"), c);
			}
			continue;
		}
		content_parts(b, get(m, "content"));
		cJSON_ArrayForEach(tc, get(m, "tool_calls"))
		{
			const cJSON *fn = get(tc, "function");

			call_part(b, str(tc, "id"), str(fn, "name"), get(fn, "arguments"));
		}
	}
}

/* OpenAI Responses: input (a string or items). */
static void responses_input(struct msgs *b, const cJSON *input)
{
	const cJSON *it;

	if (cJSON_IsString(input)) {
		begin_msg(b, "user");
		text_part(b, input->valuestring);
		return;
	}
	cJSON_ArrayForEach(it, input)
	{
		const char *type = str(it, "type");

		if (!strcmp(type, "function_call") || !strcmp(type, "custom_tool_call")) {
			begin_msg(b, "assistant");
			call_part(b, str(it, "call_id"), str(it, "name"),
				  get(it, !strcmp(type, "function_call") ? "arguments" : "input"));
		} else if (!strcmp(type, "function_call_output") ||
			   !strcmp(type, "custom_tool_call_output")) {
			begin_msg(b, "tool");
			response_part(b, str(it, "call_id"), get(it, "output"));
		} else if (cJSON_IsString(get(it, "role"))) { /* a message (type "message" or none) */
			begin_msg(b, str(it, "role"));
			content_parts(b, get(it, "content"));
		}
	}
}

/* Anthropic Messages: messages[] of blocks. */
static void anthropic_messages(struct msgs *b, const cJSON *msgs)
{
	const cJSON *m, *blk;

	cJSON_ArrayForEach(m, msgs)
	{
		const cJSON *c = get(m, "content");

		begin_msg(b, str(m, "role"));
		if (cJSON_IsString(c)) {
			text_part(b, c->valuestring);
			continue;
		}
		cJSON_ArrayForEach(blk, c)
		{
			const char *type = str(blk, "type");

			if (!strcmp(type, "text"))
				text_part(b, str(blk, "text"));
			else if (!strcmp(type, "tool_use"))
				call_part(b, str(blk, "id"), str(blk, "name"), get(blk, "input"));
			else if (!strcmp(type, "tool_result"))
				response_part(b, str(blk, "tool_use_id"), get(blk, "content"));
		}
	}
}

/* Gemini: contents[] of parts. */
static void gemini_contents(struct msgs *b, const cJSON *contents)
{
	const cJSON *m, *p;

	cJSON_ArrayForEach(m, contents)
	{
		const char *role = str(m, "role");

		begin_msg(b, !strcmp(role, "model") ? "assistant" : role[0] ? role : "user");
		cJSON_ArrayForEach(p, get(m, "parts"))
		{
			const cJSON *fc = get(p, "functionCall"), *fr = get(p, "functionResponse");

			if (cJSON_IsString(get(p, "text")))
				text_part(b, str(p, "text"));
			else if (fc)
				call_part(b, str(fc, "id"), str(fc, "name"), get(fc, "args"));
			else if (fr)
				response_part(b, str(fr, "id"), get(fr, "response"));
		}
	}
}

/* The newest messages that fit in cap bytes, as one JSON array (NULL when none). */
static char *join(struct msgs *b, size_t cap)
{
	size_t total = 2, first;
	char *out, *p;

	end_msg(b);
	first = b->n;
	while (first > 0 && total + strlen(b->m[first - 1]) + 1 <= cap)
		total += strlen(b->m[--first]) + 1;
	if (first == b->n || !(out = malloc(total + 1)))
		return NULL;
	p = out;
	*p++ = '[';
	for (size_t i = first; i < b->n; i++) {
		if (i > first)
			*p++ = ',';
		memcpy(p, b->m[i], strlen(b->m[i]));
		p += strlen(b->m[i]);
	}
	*p++ = ']';
	*p = 0;
	return out;
}

static void msgs_free(struct msgs *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->m[i]);
	free(b->m);
	agt_jw_free(&b->w);
	memset(b, 0, sizeof(*b));
}

/* System instructions: a string, text blocks, or Gemini's {"parts": [{"text"}]}. */
static char *instructions(const cJSON *v, const struct agt_llm_content_cfg *cc)
{
	size_t cap = cc->cap;
	struct msgs b = {.text_cap = cap / 2, .cc = cc};
	const cJSON *parts = cJSON_IsObject(v) ? get(v, "parts") : v;
	char *out = NULL;

	if (!parts || (!cJSON_IsString(parts) && !cJSON_IsArray(parts)))
		return NULL;
	agt_jw_init(&b.w);
	agt_jw_arr(&b.w, NULL);
	b.open = 1;
	content_parts(&b, parts);
	agt_jw_end_arr(&b.w);
	if (b.parts && !b.w.failed && b.w.len <= cap)
		out = strdup(agt_jw_text(&b.w));
	agt_jw_free(&b.w);
	return out;
}

void agt_llm_content(const cJSON *req, struct agt_llm *l, const struct agt_llm_content_cfg *cc)
{
	size_t cap = cc->cap;
	struct msgs b = {.text_cap = cap / 2, .cc = cc};

	agt_jw_init(&b.w);
	if (!strcmp(l->api, "responses")) {
		l->system_instructions = instructions(get(req, "instructions"), cc);
		responses_input(&b, get(req, "input"));
	} else if (!strcmp(l->api, "messages")) {
		l->system_instructions = instructions(get(req, "system"), cc);
		anthropic_messages(&b, get(req, "messages"));
	} else if (!strcmp(l->api, "generate_content")) {
		l->system_instructions = instructions(get(req, "systemInstruction"), cc);
		gemini_contents(&b, get(req, "contents"));
	} else { /* chat.completions, ollama.chat: system messages are part of the history */
		chat_messages(&b, get(req, "messages"));
	}
	l->input_messages = join(&b, cap);
	msgs_free(&b);
}
