/* The Gemini parser on the exact bodies the official @google/genai SDK exchanged with the test
 * server (tests/fixtures/llm/gemini, captured by capture.py there), on cut streams and hand-made
 * requests; and the agent model pairing Gemini's function responses with their calls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/redact.h"
#include "base/util.h"
#include "protocols/llm/llm.h"
#include "trace/trace.h"

#define DIR "tests/fixtures/llm/gemini/"

static char *slurp(const char *path, size_t *len)
{
	char *buf = agt_read_file(path, 64u << 20, len);

	if (!buf)
		fail_msg("cannot read %s", path);
	return buf;
}

static struct agt_http_msg *msg(const char *url, const char *ctype, char *body, size_t len)
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
	m->body = (uint8_t *)body;
	m->body_len = len;
	return m;
}

/* One captured exchange: NAME.request.json, NAME.response, NAME.meta.json. */
struct exchange {
	struct agt_http_msg *req, *resp;
};

static struct exchange load(const char *name)
{
	char path[256];
	size_t len;
	char *meta, *body;
	cJSON *m;
	struct exchange x;

	snprintf(path, sizeof(path), DIR "%s.meta.json", name);
	meta = slurp(path, NULL);
	m = cJSON_Parse(meta);
	free(meta);
	assert_non_null(m);
	snprintf(path, sizeof(path), DIR "%s.request.json", name);
	body = slurp(path, &len);
	x.req = msg(cJSON_GetObjectItem(m, "path")->valuestring, "application/json", body, len);
	snprintf(path, sizeof(path), DIR "%s.response", name);
	body = slurp(path, &len);
	x.resp = msg("", cJSON_GetObjectItem(m, "content_type")->valuestring, body, len);
	x.resp->status = cJSON_GetObjectItem(m, "status")->valueint;
	cJSON_Delete(m);
	return x;
}

static void unload(struct exchange *x)
{
	agt_http_msg_free(x->req);
	agt_http_msg_free(x->resp);
}

static void parse(const char *name, struct agt_llm *l)
{
	struct exchange x = load(name);

	assert_int_equal(agt_llm_parse(x.req, x.resp, l), 0);
	unload(&x);
}

/* What the first step of the loop says, whichever way the response came. */
static void check_call_step(const struct agt_llm *l)
{
	assert_string_equal(l->api, "generate_content");
	assert_string_equal(l->operation, "generate_content");
	assert_string_equal(l->resp_id, "gemini-resp-1");
	assert_int_equal(l->input_tokens, 58);
	assert_int_equal(l->output_tokens, 21 + 45); /* candidates + thoughts */
	assert_int_equal(l->cached_tokens, 32);
	assert_int_equal(l->nfinish, 1);
	assert_string_equal(l->finish[0], "STOP");
	assert_int_equal(l->noffered, 1);
	assert_string_equal(l->offered[0], "get_weather");
	assert_int_equal(l->ncalls, 1);
	assert_string_equal(l->calls[0].name, "get_weather");
	assert_string_equal(l->calls[0].arguments, "{\"city\":\"Paris\",\"unit\":\"celsius\"}");
	assert_string_equal(l->text, "Let me check the weather."); /* not the thought part */
	assert_int_equal(l->nresults, 0);
	assert_int_equal(l->parse_failed, 0);
	assert_string_equal(l->error_type, "");
	assert_int_not_equal(l->prefix_hash, 0);
}

static void check_answer_step(const struct agt_llm *l)
{
	assert_string_equal(l->resp_id, "gemini-resp-2");
	assert_int_equal(l->input_tokens, 96);
	assert_int_equal(l->output_tokens, 7 + 12);
	assert_int_equal(l->cached_tokens, 64);
	assert_int_equal(l->nfinish, 1);
	assert_string_equal(l->finish[0], "STOP");
	assert_int_equal(l->ncalls, 0);
	assert_string_equal(l->text, "It is sunny in Paris.");
	assert_int_equal(l->nresults, 1);
	assert_string_equal(l->results[0].name, "get_weather");
	assert_string_equal(l->results[0].content, "node-tool-gemini");
	assert_int_equal(l->results[0].is_error, 0);
	/* The call it answers is the history's first model turn's first call. */
	assert_string_equal(l->results[0].synthetic_id, "gemini-call-0-0");
	assert_int_equal(l->parse_failed, 0);
}

static void studio_sse_loop(void **state)
{
	struct agt_llm a, b;

	(void)state;
	parse("studio-sse-call", &a);
	check_call_step(&a);
	assert_string_equal(a.provider, "gcp.gemini");
	assert_string_equal(a.req_model, "gemini-2.5-flash");
	assert_string_equal(a.resp_model, "gemini-2.5-flash");
	assert_int_equal(a.stream, 1);
	/* No id from the API: the synthetic one, turn 0 (no model turn before), call 0. */
	assert_string_equal(a.calls[0].id, "gemini-call-0-0");
	assert_int_equal(a.calls[0].synthetic_id, 1);
	parse("studio-sse-answer", &b);
	check_answer_step(&b);
	assert_string_equal(b.results[0].id, ""); /* neither the call nor the response has one */
	assert_true(a.prefix_hash == b.prefix_hash);
	agt_llm_free(&a);
	agt_llm_free(&b);
}

static void studio_plain_loop_with_ids(void **state)
{
	struct agt_llm a, b;

	(void)state;
	parse("studio-plain-call", &a);
	check_call_step(&a);
	assert_string_equal(a.provider, "gcp.gemini");
	assert_string_equal(a.req_model, "gemini-2.5-pro");
	assert_int_equal(a.stream, 0);
	assert_string_equal(a.calls[0].id, "fc-weather-1");
	assert_int_equal(a.calls[0].synthetic_id, 0);
	parse("studio-plain-answer", &b);
	check_answer_step(&b);
	assert_string_equal(b.results[0].id, "fc-weather-1");
	assert_true(a.prefix_hash == b.prefix_hash);
	agt_llm_free(&a);
	agt_llm_free(&b);
}

static void vertex_sse_loop_agent_assigned_id(void **state)
{
	struct agt_llm a, b;

	(void)state;
	parse("vertex-sse-call", &a);
	check_call_step(&a);
	assert_string_equal(a.provider, "gcp.vertex_ai");
	assert_string_equal(a.req_model, "gemini-2.5-flash");
	assert_string_equal(a.calls[0].id, "gemini-call-0-0");
	parse("vertex-sse-answer", &b);
	check_answer_step(&b);
	assert_string_equal(b.provider, "gcp.vertex_ai");
	assert_string_equal(b.results[0].id, "agent-call-1-0"); /* what the agent assigned */
	agt_llm_free(&a);
	agt_llm_free(&b);
}

/* The JSON-array stream (no alt=sse) and the SSE stream of the same request say the same;
 * the non-streamed body (another model, whose call has an id) says the same but for those. */
static void array_sse_and_plain_agree(void **state)
{
	struct agt_llm arr, sse, plain;

	(void)state;
	parse("studio-array-call", &arr);
	parse("studio-sse-call", &sse);
	parse("studio-plain-call", &plain);
	check_call_step(&arr);
	check_call_step(&sse);
	check_call_step(&plain);
	assert_int_equal(arr.stream, 1);
	assert_string_equal(arr.calls[0].id, sse.calls[0].id);
	assert_true(arr.prefix_hash == sse.prefix_hash);
	assert_true(plain.prefix_hash == sse.prefix_hash);
	agt_llm_free(&arr);
	agt_llm_free(&sse);
	agt_llm_free(&plain);
	parse("studio-array-answer", &arr);
	check_answer_step(&arr);
	agt_llm_free(&arr);
}

static void api_error(void **state)
{
	struct agt_llm l;

	(void)state;
	parse("studio-error", &l);
	assert_string_equal(l.provider, "gcp.gemini");
	assert_string_equal(l.req_model, "bad-model");
	assert_string_equal(l.error_type, "NOT_FOUND");
	assert_string_equal(l.error_message,
			    "models/bad-model is not found for API version v1beta, "
			    "or is not supported for generateContent.");
	assert_int_equal(l.ncalls, 0);
	assert_int_equal(l.nfinish, 0);
	assert_int_equal(l.input_tokens, -1);
	assert_int_equal(l.output_tokens, -1);
	assert_int_equal(l.parse_failed, 0);
	agt_llm_free(&l);
}

/* A stream cut by the capture inside its third response: the first two count. */
static void cut_streams(void **state)
{
	const char *names[] = {"studio-sse-call", "studio-array-call"};

	(void)state;
	for (int i = 0; i < 2; i++) {
		struct exchange x = load(names[i]);
		const char *third = strstr((const char *)x.resp->body, "functionCall");
		struct agt_llm l;

		assert_non_null(third);
		x.resp->body_len = (size_t)(third - (const char *)x.resp->body);
		assert_int_equal(agt_llm_parse(x.req, x.resp, &l), 0);
		assert_int_equal(l.parse_failed, 1);
		assert_int_equal(l.ncalls, 0);
		assert_int_equal(l.nfinish, 0);
		assert_string_equal(l.text, "Let me check the weather.");
		assert_int_equal(l.input_tokens, 58);
		assert_int_equal(l.output_tokens, 6 + 45); /* the totals so far */
		assert_int_equal(l.cached_tokens, -1);
		agt_llm_free(&l);
		unload(&x);
	}
	/* The array complete but for its closing bracket: everything, and marked cut. */
	struct exchange x = load("studio-array-call");
	struct agt_llm l;

	x.resp->body_len =
	    (size_t)(strrchr((const char *)x.resp->body, ']') - (const char *)x.resp->body);
	assert_int_equal(agt_llm_parse(x.req, x.resp, &l), 0);
	assert_int_equal(l.parse_failed, 1);
	assert_int_equal(l.ncalls, 1);
	assert_int_equal(l.output_tokens, 66);
	agt_llm_free(&l);
	/* A non-streamed body cut: nothing from it. */
	unload(&x);
	x = load("studio-plain-call");
	x.resp->body_len /= 2;
	assert_int_equal(agt_llm_parse(x.req, x.resp, &l), 0);
	assert_int_equal(l.parse_failed, 1);
	assert_int_equal(l.ncalls, 0);
	assert_string_equal(l.req_model, "gemini-2.5-pro");
	agt_llm_free(&l);
	unload(&x);
}

static int is_gemini(const char *url)
{
	return agt_gemini_path(url);
}

static void paths(void **state)
{
	struct agt_llm l;
	struct agt_http_msg *req, *resp;

	(void)state;
	assert_true(is_gemini("/v1beta/models/gemini-2.5-flash:generateContent"));
	assert_true(
	    is_gemini("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=k"));
	assert_true(is_gemini("/v1/models/gemini-2.5-flash:generateContent"));
	assert_true(is_gemini("/models/gemini-2.5-flash:generateContent"));
	assert_true(is_gemini("/v1beta/tunedModels/my-model:generateContent"));
	assert_true(is_gemini("/v1/projects/p/locations/us-central1/publishers/google/models/"
			      "gemini-2.5-pro:streamGenerateContent"));
	assert_false(is_gemini("/v1beta/models/gemini-2.5-flash:countTokens"));
	assert_false(is_gemini("/v1beta/models/gemini-2.5-flash:generateContentX"));
	assert_false(is_gemini("/v1beta/models/:generateContent"));
	assert_false(is_gemini("/v1beta/files/abc:generateContent"));
	assert_false(is_gemini("/v1/chat/completions"));
	assert_false(is_gemini("/v1beta/models/gemini-2.5-flash"));
	/* Provider and model by path; a body with no JSON of Gemini's still parses (empty). */
	const struct {
		const char *url, *provider, *model;
		int stream;
	} cases[] = {
	    {"/v1beta/models/gemini-2.5-flash:generateContent?key=AIzaX", "gcp.gemini",
	     "gemini-2.5-flash", 0},
	    {"/v1/projects/p/locations/l/publishers/google/models/gemini-2.0-flash-001:"
	     "streamGenerateContent",
	     "gcp.vertex_ai", "gemini-2.0-flash-001", 1},
	    {"/v1beta1/publishers/google/models/gemini-2.5-pro:generateContent", "gcp.vertex_ai",
	     "gemini-2.5-pro", 0},
	    {"/v1/projects/p/locations/l/models/123:generateContent", "gcp.vertex_ai", "123", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		req = msg(cases[i].url, NULL, strdup("{}"), 2);
		resp = msg("", "application/json", strdup(""), 0);
		assert_int_equal(agt_llm_parse(req, resp, &l), 0);
		assert_string_equal(l.provider, cases[i].provider);
		assert_string_equal(l.req_model, cases[i].model);
		assert_int_equal(l.stream, cases[i].stream);
		agt_llm_free(&l);
		agt_http_msg_free(req);
		agt_http_msg_free(resp);
	}
}

static struct agt_llm parse_body(const char *req_body, const char *resp_body)
{
	struct agt_http_msg *req =
	    msg("/v1beta/models/m:generateContent", NULL, strdup(req_body), strlen(req_body));
	struct agt_http_msg *resp =
	    msg("", "application/json", strdup(resp_body), strlen(resp_body));
	struct agt_llm l;

	assert_int_equal(agt_llm_parse(req, resp, &l), 0);
	agt_http_msg_free(req);
	agt_http_msg_free(resp);
	return l;
}

/* Hand-made requests: what the SDK in the fixtures does not send. */
static void requests(void **state)
{
	(void)state;
	/* The conversation key: the text of the system instruction and the first user content,
	 * whether the instruction is a Content or a string and whatever fields come along. */
	struct agt_llm a = parse_body(
	    "{\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief.\"}],\"role\":\"user\"},"
	    "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"}]}]}",
	    "{}");
	struct agt_llm b =
	    parse_body("{\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief.\"}]},"
		       "\"contents\":[{\"parts\":[{\"text\":\"Hi\",\"thoughtSignature\":\"x\"}]},"
		       "{\"role\":\"model\",\"parts\":[{\"text\":\"Hello\"}]},"
		       "{\"role\":\"user\",\"parts\":[{\"text\":\"More\"}]}]}",
		       "{}");
	struct agt_llm c =
	    parse_body("{\"systemInstruction\":{\"parts\":[{\"text\":\"Be long.\"}]},"
		       "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"}]}]}",
		       "{}");

	assert_true(a.prefix_hash == b.prefix_hash);
	assert_true(a.prefix_hash != c.prefix_hash);
	agt_llm_free(&a);
	agt_llm_free(&b);
	agt_llm_free(&c);

	/* Two calls of one name without ids, answered in order without ids (the second as an
	 * error, in the "function" role of older clients); a third turn's call in the response.
	 * Tools declared with parameters and with parametersJsonSchema. */
	a = parse_body(
	    "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"ls twice\"}]},"
	    "{\"role\":\"model\",\"parts\":[{\"text\":\"first\"}]},"
	    "{\"role\":\"user\",\"parts\":[{\"text\":\"go\"}]},"
	    "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"sh\",\"args\":{\"c\":1}}}"
	    ","
	    "{\"functionCall\":{\"name\":\"sh\",\"args\":{\"c\":2}}},"
	    "{\"functionCall\":{\"name\":\"ask\",\"args\":{},\"id\":\"q1\"}}]},"
	    "{\"role\":\"function\",\"parts\":[{\"functionResponse\":{\"name\":\"sh\",\"response\":"
	    "{\"output\":\"one\"}}},{\"functionResponse\":{\"name\":\"sh\",\"response\":{\"error\":"
	    "\"denied\"}}},{\"functionResponse\":{\"name\":\"ask\",\"response\":{\"answer\":42}}},"
	    "{\"functionResponse\":{\"name\":\"gone\",\"id\":\"g1\",\"response\":{}}}]}],"
	    "\"tools\":[{\"functionDeclarations\":[{\"name\":\"sh\",\"parameters\":{\"type\":"
	    "\"OBJECT\"}},{\"name\":\"ask\",\"parametersJsonSchema\":{\"type\":\"object\"}}]},"
	    "{\"googleSearch\":{}}]}",
	    "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":["
	    "{\"functionCall\":{\"name\":\"sh\",\"args\":{\"c\":3}}},"
	    "{\"functionCall\":{\"name\":\"sh\"}}]},\"finishReason\":\"STOP\","
	    "\"logprobsResult\":{\"chosenCandidates\":[{\"token\":\"a\",\"logProbability\":-0.1},"
	    "{\"token\":\"b\",\"logProbability\":-0.3}]}}],"
	    "\"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":2}}");
	assert_int_equal(a.noffered, 2);
	assert_string_equal(a.offered[0], "sh");
	assert_string_equal(a.offered[1], "ask");
	assert_int_equal(a.nresults, 4);
	assert_string_equal(a.results[0].content, "one");
	assert_string_equal(a.results[0].id, "");
	assert_string_equal(a.results[0].synthetic_id, "gemini-call-1-0");
	assert_int_equal(a.results[0].is_error, 0);
	assert_string_equal(a.results[1].content, "denied");
	assert_string_equal(a.results[1].synthetic_id, "gemini-call-1-1");
	assert_int_equal(a.results[1].is_error, 1);
	assert_string_equal(a.results[2].content, "{\"answer\":42}"); /* the whole response */
	assert_string_equal(a.results[2].id, "q1");		      /* the call's id */
	assert_string_equal(a.results[3].id, "g1"); /* answers no call of the turn */
	assert_string_equal(a.results[3].synthetic_id, "");
	assert_int_equal(a.ncalls, 2);
	assert_string_equal(a.calls[0].id, "gemini-call-2-0");
	assert_string_equal(a.calls[1].id, "gemini-call-2-1");
	assert_string_equal(a.calls[1].arguments, "{}");
	assert_int_equal(a.input_tokens, 10);
	assert_int_equal(a.output_tokens, 2); /* no thoughts reported */
	assert_int_equal(a.has_confidence, 1);
	assert_true(a.confidence > 0.8187 && a.confidence < 0.8188); /* exp(mean(-0.1, -0.3)) */
	assert_int_equal(a.cached_tokens, -1);
	agt_llm_free(&a);

	/* A prompt blocked by the filters: no candidates, an error. */
	a = parse_body("{\"contents\":[]}", "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},"
					    "\"usageMetadata\":{\"promptTokenCount\":4}}");
	assert_string_equal(a.error_type, "blocked");
	assert_string_equal(a.error_message, "SAFETY");
	assert_int_equal(a.input_tokens, 4);
	assert_int_equal(a.output_tokens, -1);
	agt_llm_free(&a);
}

/* The agent model over the parser: tool spans paired with their results. */
struct seen {
	char type[32], name[160], id[128], output[4096], query[256];
	int status;
};
static struct seen seen[64];
static int nseen;

static void sink_span(struct agt_sink *s, const struct agt_span *sp)
{
	struct seen *x = &seen[nseen++];

	(void)s;
	snprintf(x->type, sizeof(x->type), "%s", sp->trace_type);
	snprintf(x->name, sizeof(x->name), "%s", sp->name);
	snprintf(x->id, sizeof(x->id), "%s",
		 sp->kind == AGT_SPAN_TOOL && sp->tool.id ? sp->tool.id : "");
	snprintf(x->output, sizeof(x->output), "%s",
		 sp->kind == AGT_SPAN_TOOL && sp->tool.output ? sp->tool.output : "");
	snprintf(x->query, sizeof(x->query), "%s",
		 sp->http && sp->http->query ? sp->http->query : "");
	x->status = sp->status;
}

static const struct agt_proc_info agent_proc = {.pid = 77, .comm = "agent"};

static const struct agt_proc_info *target(void *ctx, uint32_t pid)
{
	(void)ctx;
	return pid == 77 ? &agent_proc : NULL;
}

static void feed(struct agt_trace *t, const char *url, const char *req, const char *resp,
		 uint64_t ts)
{
	struct agt_http_msg *q = msg(url, "application/json", strdup(req), strlen(req));
	struct agt_http_msg *r = msg("", "application/json", strdup(resp), strlen(resp));

	q->start_ns = ts;
	q->end_ns = ts + 1;
	r->end_ns = ts + 2;
	agt_trace_exchange(t, &agent_proc, q, r);
}

static const struct seen *tool(int n)
{
	for (int i = 0; i < nseen; i++)
		if (!strcmp(seen[i].type, "tool_call") && n-- == 0)
			return &seen[i];
	return NULL;
}

static void agent_pairs_captured_loops(void **state)
{
	const char *loops[][3] = {{"studio-sse-call", "studio-sse-answer", "gemini-call-0-0"},
				  {"studio-plain-call", "studio-plain-answer", "fc-weather-1"},
				  {"vertex-sse-call", "vertex-sse-answer", "agent-call-1-0"}};
	struct agt_sink sink = {.span = sink_span};

	(void)state;
	for (int i = 0; i < 3; i++) {
		struct agt_trace t;
		struct exchange x;

		nseen = 0;
		assert_int_equal(agt_trace_init(&t, &sink, NULL, NULL,
						(struct agt_proc_facts){target, NULL}, 8, 8,
						1 << 20),
				 0);
		for (int k = 0; k < 2; k++) {
			x = load(loops[i][k]);
			x.req->start_ns = 1000 * (k + 1);
			x.req->end_ns = x.req->start_ns + 1;
			x.resp->end_ns = x.req->start_ns + 2;
			agt_trace_exchange(&t, &agent_proc, x.req, x.resp);
		}
		assert_non_null(tool(0));
		assert_null(tool(1));
		assert_string_equal(tool(0)->name, "execute_tool get_weather");
		assert_string_equal(tool(0)->id, loops[i][2]);
		assert_string_equal(tool(0)->output, "node-tool-gemini");
		assert_int_equal(tool(0)->status, AGT_STATUS_OK);
		assert_string_equal(seen[nseen - 1].type, "cot_process"); /* the answer ended it */
		agt_trace_fini(&t);
	}
}

/* Calls without ids over three turns: each result closes its own call (not the replayed older
 * result of the same name); an id the agent assigns only in its functionResponse is adopted;
 * and a history the agent rewrote (the call's turn no longer where it was) still pairs, by
 * name. */
static void agent_pairs_without_ids(void **state)
{
	const char *url = "/v1beta/models/m:generateContent";
	const char *call = "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":["
			   "{\"functionCall\":{\"name\":\"sh\",\"args\":{}}}]},"
			   "\"finishReason\":\"STOP\"}]}";
	const char *answer = "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":["
			     "{\"text\":\"done\"}]},\"finishReason\":\"STOP\"}]}";
#define USER "{\"role\":\"user\",\"parts\":[{\"text\":\"go\"}]}"
#define MODEL "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"sh\",\"args\":{}}}]}"
#define RESULT(x) "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"sh\"," x "}}]}"
	struct agt_sink sink = {.span = sink_span};
	struct agt_trace t;

	(void)state;
	nseen = 0;
	assert_int_equal(agt_trace_init(&t, &sink, NULL, NULL,
					(struct agt_proc_facts){target, NULL}, 8, 8, 1 << 20),
			 0);
	feed(&t, url, "{\"contents\":[" USER "]}", call, 1000);
	feed(&t, url,
	     "{\"contents\":[" USER "," MODEL "," RESULT("\"response\":{\"output\":\"r1\"}") "]}",
	     call, 2000);
	feed(&t, url,
	     "{\"contents\":[" USER "," MODEL
	     "," RESULT("\"response\":{\"output\":\"r1\"}") "," MODEL "," RESULT(
		 "\"id\":\"mine-2\",\"response\":{\"output\":\"r2\"}") "]}",
	     call, 3000);
	/* The agent dropped its first exchange from the history: the call is turn 1 now, not 2. */
	feed(&t, url,
	     "{\"contents\":[" USER "," MODEL
	     "," RESULT("\"id\":\"mine-2\",\"response\":{\"output\":"
			"\"r2\"}") "," MODEL "," RESULT("\"response\":{\"output\":\"r3\"}") "]}",
	     answer, 4000);
	assert_string_equal(tool(0)->id, "gemini-call-0-0");
	assert_string_equal(tool(0)->output, "r1");
	assert_string_equal(tool(1)->id, "mine-2"); /* adopted */
	assert_string_equal(tool(1)->output, "r2");
	assert_string_equal(tool(2)->id, "gemini-call-2-0");
	assert_string_equal(tool(2)->output, "r3");
	assert_null(tool(3));
	assert_string_equal(seen[nseen - 1].type, "cot_process");
	agt_trace_fini(&t);
#undef USER
#undef MODEL
#undef RESULT
}

static char *redact(void *ctx, const char *text)
{
	return agt_redact_str(ctx, text);
}

/* AI Studio takes the API key in the query too (?key=): exported as url.query, redacted. */
static void api_key_in_query_redacted(void **state)
{
	const char *urls[][2] = {
	    {"/v1beta/models/m:generateContent?key=plain-secret-123", "key=[REDACTED]"},
	    {"/v1beta/models/m:streamGenerateContent?alt=sse&key=plain-secret-123",
	     "alt=sse&key=[REDACTED]"},
	    {"/v1beta/models/m:streamGenerateContent?key=plain-secret-123&alt=sse",
	     "key=[REDACTED]&alt=sse"},
	};
	struct agt_sink sink = {.span = sink_span};
	struct agt_trace t;

	(void)state;
	nseen = 0;
	assert_int_equal(agt_trace_init(&t, &sink, redact, NULL,
					(struct agt_proc_facts){target, NULL}, 8, 8, 1 << 20),
			 0);
	for (int i = 0; i < 3; i++)
		feed(&t, urls[i][0], "{\"contents\":[]}",
		     "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hi\"}]}}]}",
		     1000 * (i + 1));
	agt_trace_flush(&t, 10000);
	int n = 0;

	for (int i = 0; i < nseen; i++) {
		if (strcmp(seen[i].type, "reasoning_step"))
			continue;
		assert_string_equal(seen[i].name, "generate_content m");
		assert_string_equal(seen[i].query, urls[n++][1]);
	}
	assert_int_equal(n, 3);
	agt_trace_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(studio_sse_loop),
	    cmocka_unit_test(studio_plain_loop_with_ids),
	    cmocka_unit_test(vertex_sse_loop_agent_assigned_id),
	    cmocka_unit_test(array_sse_and_plain_agree),
	    cmocka_unit_test(api_error),
	    cmocka_unit_test(cut_streams),
	    cmocka_unit_test(paths),
	    cmocka_unit_test(requests),
	    cmocka_unit_test(agent_pairs_captured_loops),
	    cmocka_unit_test(agent_pairs_without_ids),
	    cmocka_unit_test(api_key_in_query_redacted),
	};
	return cmocka_run_group_tests_name("gemini", tests, NULL, NULL);
}
