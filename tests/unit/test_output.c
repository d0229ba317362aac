/* JSON output (the trace-model fields, exact values) and the record decoder (malformed
 * records are counted, never crash). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <time.h>
#include "base/util.h"
#include "export/schema.h"
#include "one_target.h"

static struct agt_spec spec = {.name = "demo"};
static struct agt_probe_spec ps = {
    .trace_type = "tool_call",
    .nargs = 2,
    .args = {{"n", AGT_VAL_INT}, {"label", AGT_VAL_STR}},
    .ret = {"return_value", AGT_VAL_INT},
};
static struct agt_probe_info probe = {.id = 0,
				      .spec = &spec,
				      .ps = &ps,
				      .symbol = "leaf",
				      .span_name = "leaf",
				      .object = "/usr/bin/demo"};
static struct agt_proc proc = {
    .info = {
	.pid = 4242, .comm = "demo", .exe = "/usr/bin/demo", .session_id = "00112233445566ff"}};

/* The ECS JSON of a span, as the schema writes it, parsed back. */
static char *ecs_text(const struct agt_span *s, const struct agt_export_ctx *c)
{
	struct agt_jw w;
	char *text;

	agt_jw_init(&w);
	agt_schema_ecs(s, c, &w);
	text = strdup(agt_jw_text(&w));
	agt_jw_free(&w);
	return text;
}

static void span_json_fields(void **state)
{
	(void)state;
	struct agt_export_ctx c = {.mono_to_real = 1764061200000000000ll, .host = "node-1"};
	struct agt_span s;
	cJSON *o;
	char *text;

	memset(&s, 0, sizeof(s));
	for (int i = 0; i < 16; i++)
		s.trace_id[i] = (uint8_t)i;
	s.span_id = 0x0102030405060708ull;
	s.parent_id = 0xa0a1a2a3a4a5a6a7ull;
	s.start_ns = 1500;
	s.end_ns = 1500 + 2345678;
	s.pid = 4242;
	s.tid = 4243;
	s.depth = 1;
	s.trace_type = "tool_call";
	strcpy(s.name, "leaf");
	s.kind = AGT_SPAN_FUNC;
	s.probe.id = probe.id;
	s.probe.spec = spec.name;
	s.probe.symbol = probe.symbol;
	s.probe.object = probe.object;
	s.proc = &proc.info;
	s.probe.nargs = 2;
	s.probe.arg_names[0] = ps.args[0].name;
	s.probe.arg_names[1] = ps.args[1].name;
	s.probe.args[0] = (struct agt_value){.kind = AGT_VAL_INT, .u = (uint64_t)-3};
	s.probe.args[1] = (struct agt_value){.kind = AGT_VAL_STR, .str = "a\"b"};
	s.probe.ret = (struct agt_value){.kind = AGT_VAL_INT, .u = 6};
	text = ecs_text(&s, &c);
	assert_string_equal(
	    text,
	    "{\"@timestamp\":\"2025-11-25T09:00:00.000001Z\",\"end_time\":\"2025-11-25T09:00:00."
	    "002347Z\","
	    "\"trace_id\":\"000102030405060708090a0b0c0d0e0f\",\"span_id\":\"0102030405060708\","
	    "\"parent_span_id\":\"a0a1a2a3a4a5a6a7\",\"trace_type\":\"tool_call\",\"name\":"
	    "\"leaf\","
	    "\"duration_ms\":2.345,\"status\":\"ok\",\"session_id\":\"00112233445566ff\","
	    "\"process\":{\"pid\":4242,\"name\":\"demo\",\"executable\":\"/usr/bin/"
	    "demo\",\"thread\":{\"id\":4243}},"
	    "\"host\":{\"name\":\"node-1\"},\"probe\":{\"spec\":\"demo\",\"symbol\":\"leaf\","
	    "\"object\":\"/usr/bin/"
	    "demo\",\"depth\":1,\"args\":{\"n\":-3,\"label\":\"a\\\"b\"},\"return_value\":6},"
	    /* ECS's own names beside the trace model's, and who wrote the document */
	    "\"trace\":{\"id\":\"000102030405060708090a0b0c0d0e0f\"},\"span\":{\"id\":"
	    "\"0102030405060708\"},\"parent\":{\"id\":\"a0a1a2a3a4a5a6a7\"},\"event\":{"
	    "\"duration\":2345678,\"outcome\":\"success\",\"start\":\"2025-11-25T09:00:00.000001Z\","
	    "\"end\":\"2025-11-25T09:00:00.002347Z\"},\"service\":{\"name\":\"demo\"},\"ecs\":{"
	    "\"version\":\"8.11.0\"},\"agent\":{\"type\":\"agtrace\",\"version\":\"0.1.0\"}}");
	free(text);

	/* Unfinished spans carry no return value; roots no parent. */
	s.status = AGT_STATUS_UNFINISHED;
	s.parent_id = 0;
	text = ecs_text(&s, &c);
	o = cJSON_Parse(text);
	free(text);
	assert_null(cJSON_GetObjectItem(o, "parent_span_id"));
	assert_string_equal(cJSON_GetObjectItem(o, "status")->valuestring, "unfinished");
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "probe"), "return_value"));
	cJSON_Delete(o);
}

/* msgpack -> cJSON, to compare a Fluentd record with the ECS document. */
static cJSON *from_msgpack(const msgpack_object *o)
{
	cJSON *j;

	switch (o->type) {
	case MSGPACK_OBJECT_MAP:
		j = cJSON_CreateObject();
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			char key[256];
			const msgpack_object_kv *kv = &o->via.map.ptr[i];

			assert_int_equal(kv->key.type, MSGPACK_OBJECT_STR);
			snprintf(key, sizeof(key), "%.*s", (int)kv->key.via.str.size,
				 kv->key.via.str.ptr);
			cJSON_AddItemToObject(j, key, from_msgpack(&kv->val));
		}
		return j;
	case MSGPACK_OBJECT_ARRAY:
		j = cJSON_CreateArray();
		for (uint32_t i = 0; i < o->via.array.size; i++)
			cJSON_AddItemToArray(j, from_msgpack(&o->via.array.ptr[i]));
		return j;
	case MSGPACK_OBJECT_STR: {
		char *t = strndup(o->via.str.ptr, o->via.str.size);

		j = cJSON_CreateString(t);
		free(t);
		return j;
	}
	case MSGPACK_OBJECT_POSITIVE_INTEGER: return cJSON_CreateNumber((double)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return cJSON_CreateNumber((double)o->via.i64);
	case MSGPACK_OBJECT_FLOAT64:
	case MSGPACK_OBJECT_FLOAT32: return cJSON_CreateNumber(o->via.f64);
	case MSGPACK_OBJECT_BOOLEAN: return cJSON_CreateBool(o->via.boolean);
	default: return cJSON_CreateNull();
	}
}

/* Fluentd's record (the schema's msgpack, written when the span is handed over) is the ECS
 * document field for field, and valid UTF-8 where the span's text is not. */
static void msgpack_record_is_the_ecs_document(void **state)
{
	(void)state;
	struct agt_export_ctx c = {.mono_to_real = 1764061200000000000ll, .host = "node-1"};
	struct agt_span s;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked u;
	cJSON *ecs, *mp;
	char *text;
	size_t off = 0;

	memset(&s, 0, sizeof(s));
	memset(s.trace_id, 0x5a, sizeof(s.trace_id));
	s.span_id = 77;
	s.start_ns = 1000;
	s.end_ns = 1000 + 1500000;
	s.pid = 4242;
	s.tid = 4243;
	s.trace_type = "tool_call";
	s.kind = AGT_SPAN_FUNC;
	s.status = AGT_STATUS_ERROR;
	strcpy(s.name, "leaf \"quoted\" caf\xc3\xa9 bad\xff\xfe");
	strcpy(s.message, "line\nnext\x01");
	s.proc = &proc.info;
	s.probe.spec = spec.name;
	s.probe.symbol = probe.symbol;
	s.probe.object = probe.object;
	s.probe.nargs = 2;
	s.probe.arg_names[0] = ps.args[0].name;
	s.probe.arg_names[1] = ps.args[1].name;
	s.probe.args[0] = (struct agt_value){.kind = AGT_VAL_INT, .u = (uint64_t)-3};
	s.probe.args[1] = (struct agt_value){.kind = AGT_VAL_STR, .str = "x\xc0\xafy"};
	text = ecs_text(&s, &c);
	ecs = cJSON_Parse(text);
	assert_non_null(ecs);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	agt_schema_msgpack(&s, &c, &pk);
	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, sb.size);
	mp = from_msgpack(&u.data);
	if (!cJSON_Compare(ecs, mp, 1)) {
		char *a = cJSON_PrintUnformatted(mp);

		fail_msg("msgpack %s\n    ecs %s", a, text);
	}
	assert_string_equal(cJSON_GetObjectItem(mp, "name")->valuestring,
			    "leaf \"quoted\" caf\xc3\xa9 bad\xef\xbf\xbd\xef\xbf\xbd");
	cJSON_Delete(ecs);
	cJSON_Delete(mp);
	free(text);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
}

/* Numbers and times are written without printf on the hot path: the text must stay what
 * printf wrote (cJSON's rules for numbers; RFC 3339 with microseconds for times). */
static void numbers_and_times_as_printf(void **state)
{
	(void)state;
	uint64_t x = 88172645463325252ull;
	struct agt_jw w;

	agt_jw_init(&w);
	for (int i = 0; i < 200000; i++) {
		double v;
		char want[40];
		uint64_t r;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		r = x;
		switch (i % 5) {
		case 0: v = (double)(r % 100000000) / 1e6; break; /* durations in ms */
		case 1: v = (double)(r % 1000000) / 1e3; break;
		case 2: v = (double)(int64_t)r / 3.0; break;	    /* anything */
		case 3: v = (double)(r % 1000) * 1e-7; break;	    /* tiny */
		default: v = -(double)(r % 1000000000000ull) / 1e6; /* negative */
		}
		if (v == floor(v) && fabs(v) < 1e15) {
			snprintf(want, sizeof(want), "%lld", (long long)v);
		} else {
			snprintf(want, sizeof(want), "%1.15g", v);
			if (strtod(want, NULL) != v)
				snprintf(want, sizeof(want), "%1.17g", v);
		}
		agt_jw_reset(&w);
		agt_jw_f64(&w, NULL, v);
		assert_string_equal(agt_jw_text(&w), want);
		agt_jw_reset(&w);
		agt_jw_i64(&w, NULL, (int64_t)r);
		snprintf(want, sizeof(want), "%lld", (long long)(int64_t)r);
		assert_string_equal(agt_jw_text(&w), want);
		agt_jw_reset(&w);
		agt_jw_u64(&w, NULL, r);
		snprintf(want, sizeof(want), "%llu", (unsigned long long)r);
		assert_string_equal(agt_jw_text(&w), want);
		if (i % 7 == 0) { /* times: seconds change, microseconds vary */
			uint64_t ns = 1764061200000000000ull + r % 4000000000000000ull;
			time_t secs = (time_t)(ns / 1000000000ull);
			char got[40], base[24];
			struct tm tm;

			gmtime_r(&secs, &tm);
			strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
			snprintf(want, sizeof(want), "%s.%06uZ", base,
				 (unsigned)((ns % 1000000000ull) / 1000));
			agt_format_time(ns, got, sizeof(got));
			assert_string_equal(got, want);
		}
	}
	agt_jw_free(&w);
}

static struct agt_span got[64];
static int ngot;
static void sink_span(struct agt_sink *s, const struct agt_span *sp)
{
	(void)s;
	got[ngot++] = *sp;
}

static void decoder_counts_malformed(void **state)
{
	(void)state;
	struct agt_sink sink = {.span = sink_span};
	struct agt_pipeline_config pc = {.max_depth = 8, .max_threads = 8, .msg_cap = 1 << 20};
	struct agt_pipeline pl;
	struct one_target p;
	struct agt_func_entry e;
	struct agt_func_return r;
	struct agt_proc_exit x;

	ngot = 0;
	proc.gone = 0;
	assert_int_equal(one_target_init(&p, &pl, &probe, &proc, &pc, &sink), 0);
	memset(&e, 0, sizeof(e));
	e.h = (struct agt_event_hdr){AGT_EV_FUNC_ENTRY, 0, 4242, 4243, 100};
	e.args[0] = 5;
	strcpy(e.str[1], "hi");
	agt_decode_record(&pl.dec, &e, sizeof(e));
	agt_decode_record(&pl.dec, &e, 10);		 /* short header */
	agt_decode_record(&pl.dec, &e, sizeof(e.h) + 8); /* short entry */
	e.h.probe_id = 9;
	agt_decode_record(&pl.dec, &e, sizeof(e)); /* unknown probe */
	e.h.probe_id = 0;
	e.h.pid = 1;
	agt_decode_record(&pl.dec, &e, sizeof(e)); /* not a target */
	e.h.kind = 77;
	agt_decode_record(&pl.dec, &e, sizeof(e)); /* unknown kind */
	memset(&r, 0, sizeof(r));
	r.h = (struct agt_event_hdr){AGT_EV_FUNC_RETURN, 0, 4242, 4243, 300};
	r.ret = 10;
	agt_decode_record(&pl.dec, &r, sizeof(r));
	assert_int_equal(ngot, 1);
	assert_string_equal(got[0].name, "leaf");
	assert_int_equal((int64_t)got[0].probe.args[0].u, 5);
	assert_string_equal(got[0].probe.args[1].str, "hi");
	assert_int_equal(got[0].probe.ret.u, 10);
	assert_int_equal(got[0].end_ns - got[0].start_ns, 200);
	assert_int_equal(pl.dec.udrops[AGT_UDROP_MALFORMED], 3);
	assert_int_equal(pl.dec.udrops[AGT_UDROP_UNKNOWN_PROBE], 1);
	assert_int_equal(pl.dec.udrops[AGT_UDROP_UNKNOWN_PID], 1);
	assert_int_equal(pl.dec.records, 7);

	/* Process exit: a state_change with the exit code, once. */
	memset(&x, 0, sizeof(x));
	x.h = (struct agt_event_hdr){AGT_EV_PROC_EXIT, 0, 4242, 4242, 400};
	x.exit_code = 3 << 8;
	x.group_dead = 1;
	agt_decode_record(&pl.dec, &x, sizeof(x));
	agt_decode_record(&pl.dec, &x, sizeof(x));
	assert_int_equal(ngot, 2);
	assert_string_equal(got[1].trace_type, "state_change");
	assert_string_equal(got[1].name, "exit demo");
	assert_string_equal(got[1].message, "exited with code 3");
	assert_int_equal(got[1].exit_code, 3);
	assert_int_equal(got[1].status, AGT_STATUS_ERROR);
	assert_int_equal(p.live, 0);
	assert_int_equal(p.exits, 1);
	agt_pipeline_fini(&pl);
}

/* The document through the cache is the document without it, byte for byte, with the same count
 * of replaced UTF-8 sequences: returns how many it replaced. */
static uint64_t same_through_cache(const struct agt_span *s, const struct agt_export_ctx *c,
				   struct agt_ecs_cache *k, const char *expect_in)
{
	struct agt_jw a, b;

	agt_jw_init(&a);
	agt_jw_init(&b);
	agt_schema_ecs(s, c, &a);
	agt_schema_ecs_cached(s, c, k, &b);
	assert_false(a.failed);
	if (strcmp(agt_jw_text(&a), agt_jw_text(&b)))
		fail_msg("cached %s\n  written %s", agt_jw_text(&b), agt_jw_text(&a));
	assert_int_equal(a.replaced, b.replaced);
	if (expect_in && !strstr(agt_jw_text(&b), expect_in))
		fail_msg("no %s in %s", expect_in, agt_jw_text(&b));
	uint64_t r = b.replaced;

	agt_jw_free(&a);
	agt_jw_free(&b);
	return r;
}

/* The blocks an ECS document takes from the cache (process, container, pod, host, service,
 * probe) say what is true now: a process's exe, comm or pod changed in place, another owner,
 * another host or service name, a probe's names changed where they are. */
static void ecs_cache_follows_every_change(void **state)
{
	(void)state;
	struct agt_export_ctx c = {.mono_to_real = 1764061200000000000ll, .host = "node-1"};
	struct agt_proc_info p = {.pid = 7, .comm = "agent", .exe = "/usr/bin/agent",
				  .session_id = "00112233445566ff"};
	struct agt_proc_info owner = {.pid = 6, .comm = "python3", .exe = "/usr/bin/python3"};
	char sym[32] = "work", obj[32] = "/usr/bin/agent", spc[32] = "demo";
	struct agt_ecs_cache *k = agt_ecs_cache_new();
	struct agt_span s;

	assert_non_null(k);
	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_FUNC;
	s.trace_type = "tool_call";
	strcpy(s.name, "work");
	s.pid = 7;
	s.tid = 8;
	s.span_id = 1;
	s.start_ns = 1000;
	s.end_ns = 5000;
	s.proc = &p;
	s.probe.spec = spc;
	s.probe.symbol = sym;
	s.probe.object = obj;
	same_through_cache(&s, &c, k, "\"name\":\"agent\",\"executable\":\"/usr/bin/agent\"");
	s.span_id = 2; /* taken from the cache */
	same_through_cache(&s, &c, k, "\"service\":{\"name\":\"agent\"}");
	strcpy(p.comm, "agent2"); /* an exec: comm and exe change in place */
	strcpy(p.exe, "/opt/x/\"agent\"");
	same_through_cache(&s, &c, k, "\"name\":\"agent2\",\"executable\":\"/opt/x/\\\"agent\\\"\"");
	strcpy(p.id.container_id, "abcdef");
	strcpy(p.id.runtime, "containerd");
	same_through_cache(&s, &c, k, "\"container\":{\"id\":\"abcdef\",\"runtime\":\"containerd\"}");
	strcpy(p.id.pod_uid, "11111111-2222-3333-4444-555555555555");
	same_through_cache(&s, &c, k, "\"k8s\":{\"pod\":{\"uid\":");
	strcpy(p.id.pod_name, "web-1"); /* the pod list answered later */
	strcpy(p.id.pod_namespace, "prod");
	strcpy(p.id.owner_kind, "Deployment");
	strcpy(p.id.owner_name, "web");
	strcpy(p.id.replicaset, "web-5d8");
	strcpy(p.id.container_name, "main");
	strcpy(p.id.node_name, "n1");
	same_through_cache(&s, &c, k, "\"service\":{\"name\":\"web\"}");
	strcpy(p.id.service_name, "annotated");
	same_through_cache(&s, &c, k, "\"service\":{\"name\":\"annotated\"}");
	strcpy(c.service_name, "given"); /* another context: the same object, changed */
	strcpy(c.host, "node-2");
	same_through_cache(&s, &c, k, "\"host\":{\"name\":\"node-2\"}");
	same_through_cache(&s, &c, k, "\"service\":{\"name\":\"given\"}");
	c.service_name[0] = 0;
	s.owner = &owner; /* a command the target ran: the target's service */
	same_through_cache(&s, &c, k, "\"service\":{\"name\":\"python3\"}");
	strcpy(owner.exe, "/usr/bin/node");
	same_through_cache(&s, &c, k, "\"service\":{\"name\":\"node\"}");
	strcpy(sym, "other"); /* a probe's names, where they were */
	strcpy(obj, "/lib/libx.so");
	same_through_cache(&s, &c, k, "\"symbol\":\"other\",\"object\":\"/lib/libx.so\"");
	s.probe.symbol = "third"; /* elsewhere */
	same_through_cache(&s, &c, k, "\"symbol\":\"third\"");
	/* Invalid UTF-8 in a process's name: replaced in every document, and counted in each. */
	strcpy(p.comm, "a\xff");
	assert_int_equal(same_through_cache(&s, &c, k, "\"name\":\"a\xef\xbf\xbd\""), 1);
	assert_int_equal(same_through_cache(&s, &c, k, NULL), 1);
	s.proc = NULL; /* who is unknown */
	s.owner = NULL;
	same_through_cache(&s, &c, k, "\"service\":{\"name\":\"unknown_service\"}");
	s.kind = AGT_SPAN_STATE; /* no probe block */
	s.proc = &p;
	strcpy(s.message, "attached");
	same_through_cache(&s, &c, k, "\"message\":\"attached\"");
	/* Many processes at once: more than the cache holds, each still its own. */
	for (int i = 0; i < 100; i++) {
		static struct agt_proc_info many[100];
		char want[48];

		many[i].pid = 100 + i;
		snprintf(many[i].comm, sizeof(many[i].comm), "p%d", i);
		snprintf(many[i].exe, sizeof(many[i].exe), "/bin/p%d", i);
		s.proc = &many[i];
		snprintf(want, sizeof(want), "\"executable\":\"/bin/p%d\"", i);
		same_through_cache(&s, &c, k, want);
		s.proc = &many[i / 2];
		snprintf(want, sizeof(want), "\"executable\":\"/bin/p%d\"", i / 2);
		same_through_cache(&s, &c, k, want);
	}
	agt_ecs_cache_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(span_json_fields),
	    cmocka_unit_test(ecs_cache_follows_every_change),
	    cmocka_unit_test(msgpack_record_is_the_ecs_document),
	    cmocka_unit_test(numbers_and_times_as_printf),
	    cmocka_unit_test(decoder_counts_malformed),
	};
	return cmocka_run_group_tests_name("output", tests, NULL, NULL);
}
