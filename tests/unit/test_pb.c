/* The protobuf wire-format writer (export/pb.c) and the OTLP encodings of the schema: canonical
 * varints and lengths (one byte, two, three: the content moved along), negative int64s, UTF-8
 * repaired as proto3 strings require, and one walk giving the same attributes in OTLP/JSON and
 * protobuf. The strict receiver (tests/servers/otlp_pb.c) checks agtrace's real requests with
 * the official definitions; this checks the writer's edges exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "export/pb.h"
#include "export/schema.h"

static void varints(void **state)
{
	struct agt_pb p;
	static const uint8_t want300[] = {0x08, 0xac, 0x02};
	static const uint8_t wantneg[] = {0x18, 0xff, 0xff, 0xff, 0xff, 0xff,
					  0xff, 0xff, 0xff, 0xff, 0x01};

	(void)state;
	agt_pb_init(&p);
	agt_pb_varint(&p, 1, 300);
	assert_int_equal(p.len, 3);
	assert_memory_equal(p.buf, want300, 3);
	agt_pb_reset(&p);
	agt_pb_varint(&p, 3, (uint64_t)(int64_t)-1); /* int64 -1: ten bytes */
	assert_int_equal(p.len, sizeof(wantneg));
	assert_memory_equal(p.buf, wantneg, sizeof(wantneg));
	agt_pb_reset(&p);
	agt_pb_fixed32(&p, 16, 0x101); /* field 16: a two-byte tag */
	assert_int_equal(p.len, 6);
	assert_int_equal(p.buf[0], 0x85);
	assert_int_equal(p.buf[1], 0x01);
	agt_pb_free(&p);
}

/* begin/end around n bytes: the length's varint is as long as it must be, no longer. */
static void nested_lengths(void **state)
{
	static const size_t sizes[] = {0, 127, 128, 16383, 16384, 300000};
	char *blob = malloc(300000);
	struct agt_pb p;

	(void)state;
	memset(blob, 'x', 300000);
	agt_pb_init(&p);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i], off = 0, off2 = 0, inner = n + 1 + (n < 128 ? 1 : n < 16384 ? 2 : 3);
		uint32_t field;
		int wire;
		uint64_t v;
		const uint8_t *data, *d2;
		size_t len, l2;

		agt_pb_reset(&p);
		agt_pb_begin(&p, 1);
		agt_pb_bytes(&p, 2, blob, n);
		agt_pb_end(&p);
		agt_pb_varint(&p, 3, 7); /* what follows the message is where it belongs */
		assert_false(p.failed);
		assert_int_equal(agt_pb_next(p.buf, p.len, &off, &field, &wire, &v, &data, &len), 1);
		assert_int_equal(field, 1);
		assert_int_equal(wire, 2);
		assert_int_equal(len, inner);
		assert_int_equal(off, 1 + (inner < 128 ? 1 : inner < 16384 ? 2 : 3) + inner);
		assert_int_equal(agt_pb_next(data, len, &off2, &field, &wire, &v, &d2, &l2), 1);
		assert_int_equal(field, 2);
		assert_int_equal(l2, n);
		assert_int_equal(agt_pb_next(p.buf, p.len, &off, &field, &wire, &v, &data, &len), 1);
		assert_int_equal(field, 3);
		assert_int_equal(v, 7);
		assert_int_equal(agt_pb_next(p.buf, p.len, &off, &field, &wire, &v, &data, &len), 0);
	}
	agt_pb_free(&p);
	free(blob);
}

static void strings_are_utf8(void **state)
{
	struct agt_pb p;
	static const uint8_t want[] = {0x0a, 0x05, 'a', 0xef, 0xbf, 0xbd, 'b'};

	(void)state;
	agt_pb_init(&p);
	agt_pb_strn(&p, 1, "a\xff" "b", 3);
	assert_int_equal(p.len, sizeof(want));
	assert_memory_equal(p.buf, want, sizeof(want));
	assert_int_equal(p.replaced, 1);
	agt_pb_free(&p);
}

/* The attribute keys of a protobuf Span, in order, as one string "k1,k2,...". */
static void pb_keys(const uint8_t *b, size_t n, char *out, size_t cap)
{
	size_t off = 0, o = 0;
	uint32_t field;
	int wire;
	uint64_t v;
	const uint8_t *data;
	size_t len;

	out[0] = 0;
	while (agt_pb_next(b, n, &off, &field, &wire, &v, &data, &len) == 1) {
		size_t off2 = 0, l2;
		const uint8_t *d2;

		if (field != 9)
			continue;
		if (agt_pb_next(data, len, &off2, &field, &wire, &v, &d2, &l2) == 1 && field == 1)
			o += snprintf(out + o, cap - o, "%s%.*s", o ? "," : "", (int)l2, d2);
	}
}

static void one_walk_both_encodings(void **state)
{
	struct agt_export_ctx c = {.mono_to_real = 1764061200000000000ll, .host = "node-1"};
	struct agt_proc_info proc = {.pid = 7, .comm = "python3", .exe = "/usr/bin/python3.11",
				     .session_id = "00112233445566ff"};
	struct agt_span_http h = {.method = "POST", .path = "/v1/chat/completions",
				  .host = "api.openai.com", .peer = "", .answered = 1,
				  .status = 200, .ttfc_us = 250000};
	const char *finish[1] = {"stop"};
	struct agt_span_llm l = {.operation = "chat", .provider = "openai",
				 .api = "chat.completions", .req_model = "gpt-4o",
				 .resp_model = "gpt-4o", .resp_id = "r1", .input_tokens = 3,
				 .output_tokens = 4, .cached_tokens = -1, .max_tokens = 100,
				 .seed = -1, .choice_count = -1, .temperature = 0.5, .top_p = NAN,
				 .top_k = NAN, .frequency_penalty = NAN, .presence_penalty = NAN,
				 .error_type = "", .stream = 1};
	struct agt_span s;
	struct agt_jw w;
	struct agt_pb p;
	cJSON *o;
	const cJSON *a;
	char jkeys[2048] = "", pkeys[2048];
	size_t n = 0;

	(void)state;
	l.finish[0] = finish[0];
	l.nfinish = 1;
	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_LLM;
	s.trace_type = "reasoning_step";
	strcpy(s.name, "chat gpt-4o");
	strcpy(s.workflow_id, "0123456789abcdef");
	s.span_id = 1;
	s.start_ns = 10;
	s.end_ns = 20;
	s.pid = s.tid = 7;
	s.proc = &proc;
	s.http = &h;
	s.llm = &l;
	agt_jw_init(&w);
	agt_schema_otlp(&s, &c, &w);
	o = cJSON_Parse(agt_jw_text(&w));
	assert_non_null(o);
	cJSON_ArrayForEach(a, cJSON_GetObjectItem(o, "attributes"))
	    n += snprintf(jkeys + n, sizeof(jkeys) - n, "%s%s", n ? "," : "",
			  cJSON_GetObjectItem(a, "key")->valuestring);
	assert_string_equal(
	    jkeys, "trace_type,session.id,thread.id,gen_ai.conversation.id,http.request.method,"
		   "http.request.body.size,http.request.body.truncated,http.response.status_code,"
		   "http.response.body.size,http.response.body.truncated,url.path,server.address,"
		   "server.port,network.transport,network.capture,gen_ai.operation.name,"
		   "gen_ai.provider.name,gen_ai.request.model,gen_ai.request.stream,"
		   "gen_ai.request.max_tokens,gen_ai.request.temperature,gen_ai.response.model,"
		   "gen_ai.response.id,gen_ai.response.finish_reasons,"
		   "gen_ai.response.time_to_first_chunk,gen_ai.usage.input_tokens,"
		   "gen_ai.usage.output_tokens,llm.api,llm.stream,llm.tools_offered,llm.tool_calls,"
		   "llm.time_to_first_chunk_ms");
	/* Status unset: an empty object; no status message. */
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "status")), 0);
	cJSON_Delete(o);
	agt_pb_init(&p);
	agt_schema_otlp_pb(&s, &c, &p);
	pb_keys(p.buf, p.len, pkeys, sizeof(pkeys));
	assert_string_equal(pkeys, jkeys); /* the same walk, the same attributes */
	/* Its resource: who, not the span. */
	agt_jw_reset(&w);
	agt_schema_otlp_resource(&s, &c, NULL, &w);
	assert_string_equal(
	    agt_jw_text(&w),
	    "{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"python3.11\"}},"
	    "{\"key\":\"process.pid\",\"value\":{\"intValue\":\"7\"}},{\"key\":\"process.executable."
	    "name\",\"value\":{\"stringValue\":\"python3.11\"}},{\"key\":\"process.executable.path\","
	    "\"value\":{\"stringValue\":\"/usr/bin/python3.11\"}},{\"key\":\"host.name\",\"value\":{"
	    "\"stringValue\":\"node-1\"}}]}");
	agt_pb_free(&p);
	agt_jw_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(varints),
	    cmocka_unit_test(nested_lengths),
	    cmocka_unit_test(strings_are_utf8),
	    cmocka_unit_test(one_walk_both_encodings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
