/* TLS records sealed at the AEAD layer (rustls over aws-lc) before their socket is known: held
 * per thread in order until that thread's join record names the socket (events/tls_join.c),
 * then handed on as the connection's bytes; dropped and counted when their process ends, at
 * the end of the run, or past the bound. Checked on the queue itself and through the decoder
 * into exact LLM spans. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "events/tls_join.h"
#include "one_target.h"

/* A record as aead.bpf.c sends it: one call per TLS record, all of it captured. */
static struct agt_data *record(uint32_t pid, uint32_t tid, uint64_t ts, uint64_t conn, int dir,
			       const void *bytes, size_t n)
{
	static struct agt_data e;

	assert_true(n <= AGT_DATA_CHUNK);
	memset(&e, 0, offsetof(struct agt_data, data));
	e.h = (struct agt_event_hdr){AGT_EV_DATA, 0, pid, tid, ts};
	e.conn = conn;
	e.call_len = e.captured = e.len = n;
	e.call_start_ns = ts;
	e.dir = dir;
	e.source = AGT_SRC_TLS;
	e.flags = dir == AGT_DIR_EGRESS ? AGT_DATA_UNJOINED : 0;
	memcpy(e.data, bytes, n);
	return &e;
}

static struct agt_data *sealed(uint32_t pid, uint32_t tid, uint64_t ts, const char *s)
{
	return record(pid, tid, ts, 0, AGT_DIR_EGRESS, s, strlen(s));
}

/* What a release handed on, in order (the first 16 of them kept). */
static struct {
	uint32_t tid;
	uint64_t conn, ts;
	uint16_t flags;
	char text[32];
} out[16];
static int nout;

static void collect(void *ctx, const struct agt_data *e)
{
	(void)ctx;
	if (nout++ >= 16)
		return;
	out[nout - 1].tid = e->h.tid;
	out[nout - 1].conn = e->conn;
	out[nout - 1].ts = e->h.ts_ns;
	out[nout - 1].flags = e->flags;
	snprintf(out[nout - 1].text, sizeof(out[0].text), "%.*s",
		 (int)strnlen((char *)e->data, e->len < 31 ? e->len : 31), e->data);
}

static uint64_t size_of(size_t n)
{
	return offsetof(struct agt_data, data) + n;
}

/* Two threads' records interleaved: each thread's join hands on its own records, in the order
 * they were sealed, with the socket set and the unjoined flag cleared; the other thread's stay
 * held, in their order, until its own join. */
static void held_per_thread_in_order(void **state)
{
	(void)state;
	struct agt_join_queue q = {0};

	agt_join_hold(&q, sealed(10, 11, 1, "a1"));
	agt_join_hold(&q, sealed(10, 12, 2, "b1"));
	agt_join_hold(&q, sealed(10, 11, 3, "a2"));
	agt_join_hold(&q, sealed(10, 12, 4, "b2"));
	agt_join_hold(&q, sealed(10, 11, 5, "a3"));
	assert_int_equal(q.n, 5);
	assert_int_equal(q.bytes, 5 * size_of(2));

	nout = 0;
	/* a thread with nothing held, and the same thread number in another process */
	assert_int_equal(agt_join_release(&q, 10, 13, 0x77, collect, NULL), 0);
	assert_int_equal(agt_join_release(&q, 20, 11, 0x77, collect, NULL), 0);
	assert_int_equal(nout, 0);

	assert_int_equal(agt_join_release(&q, 10, 12, 0xb0b, collect, NULL), 2);
	assert_int_equal(nout, 2);
	assert_string_equal(out[0].text, "b1");
	assert_string_equal(out[1].text, "b2");
	for (int i = 0; i < 2; i++) {
		assert_int_equal(out[i].tid, 12);
		assert_int_equal(out[i].conn, 0xb0b);
		assert_int_equal(out[i].flags & AGT_DATA_UNJOINED, 0);
	}
	assert_int_equal(q.n, 3);
	assert_int_equal(q.bytes, 3 * size_of(2));

	/* thread 11 seals one more before its socket write: it goes with the others */
	agt_join_hold(&q, sealed(10, 11, 6, "a4"));
	nout = 0;
	assert_int_equal(agt_join_release(&q, 10, 11, 0xa0a, collect, NULL), 4);
	assert_int_equal(nout, 4);
	for (int i = 0; i < 4; i++) {
		char want[3] = {'a', (char)('1' + i), 0};

		assert_string_equal(out[i].text, want);
		assert_int_equal(out[i].tid, 11);
		assert_int_equal(out[i].conn, 0xa0a);
		assert_int_equal(out[i].ts, i < 3 ? 1 + 2 * i : 6);
	}
	assert_int_equal(q.n, 0);
	assert_int_equal(q.bytes, 0);
	assert_int_equal(q.dropped, 0);
	/* a second join of the same thread: nothing more to hand on */
	assert_int_equal(agt_join_release(&q, 10, 11, 0xa0a, collect, NULL), 0);
	agt_join_free(&q);
}

/* A process ends: its records are dropped and counted, another process's stay in order; at
 * the end of the run (pid 0) everything left is dropped and counted. */
static void dropped_and_counted(void **state)
{
	(void)state;
	struct agt_join_queue q = {0};

	agt_join_hold(&q, sealed(10, 10, 1, "x1"));
	agt_join_hold(&q, sealed(20, 20, 2, "y1"));
	agt_join_hold(&q, sealed(10, 11, 3, "x2"));
	agt_join_hold(&q, sealed(20, 21, 4, "y2"));
	agt_join_drop(&q, 10);
	assert_int_equal(q.dropped, 2);
	assert_int_equal(q.n, 2);
	assert_int_equal(q.bytes, 2 * size_of(2));
	agt_join_drop(&q, 30); /* no records of it: nothing */
	assert_int_equal(q.dropped, 2);
	nout = 0;
	assert_int_equal(agt_join_release(&q, 20, 20, 5, collect, NULL), 1);
	assert_string_equal(out[0].text, "y1");
	agt_join_hold(&q, sealed(20, 20, 6, "y3"));
	agt_join_drop(&q, 0);
	assert_int_equal(q.dropped, 4);
	assert_int_equal(q.n, 0);
	assert_int_equal(q.bytes, 0);
	agt_join_free(&q);
}

/* Past AGT_JOIN_MAX_BYTES held, the oldest records go first (counted); the newest are kept, in
 * order, and the bytes held never pass the bound. */
static void bounded_oldest_first(void **state)
{
	(void)state;
	static char big[AGT_DATA_CHUNK];
	struct agt_join_queue q = {0};
	uint64_t per = size_of(sizeof(big));
	int fit = (int)(AGT_JOIN_MAX_BYTES / per), total = fit + 3;

	for (int i = 0; i < total; i++) {
		snprintf(big, sizeof(big), "r%d", i);
		agt_join_hold(&q, record(10, 11, (uint64_t)i, 0, AGT_DIR_EGRESS, big, sizeof(big)));
		assert_true(q.bytes <= AGT_JOIN_MAX_BYTES);
	}
	assert_int_equal(q.n, fit);
	assert_int_equal(q.dropped, 3);
	nout = 0;
	assert_int_equal(agt_join_release(&q, 10, 11, 9, collect, NULL), fit);
	assert_int_equal(nout, fit);
	assert_string_equal(out[0].text, "r3");
	assert_int_equal(out[0].ts, 3);
	assert_int_equal(out[15].ts, 18);
	assert_int_equal(q.bytes, 0);
	agt_join_free(&q);
}

/* ---- through the decoder, into spans ---- */

static struct agt_spec spec = {.name = "rustls-aws-lc"};
static struct agt_probe_spec ps = {.trace_type = "tool_call"};
static struct agt_probe_info probe = {.id = 0, .spec = &spec, .ps = &ps, .symbol = "seal"};
static struct agt_proc proc = {.info = {.pid = 4242, .comm = "deno", .exe = "/usr/bin/deno"}};

static struct {
	uint32_t tid;
	char model[32];
	int64_t in, out;
	uint64_t req_size;
	int truncated;
} steps[8];
static int nsteps;

static void sink_span(struct agt_sink *s, const struct agt_span *sp)
{
	(void)s;
	if (!sp->llm || strcmp(sp->trace_type, "reasoning_step"))
		return;
	assert_true(nsteps < 8);
	steps[nsteps].tid = sp->tid;
	snprintf(steps[nsteps].model, sizeof(steps[nsteps].model), "%s", sp->llm->req_model);
	steps[nsteps].in = sp->llm->input_tokens;
	steps[nsteps].out = sp->llm->output_tokens;
	steps[nsteps].req_size = sp->http->req_body_size;
	steps[nsteps].truncated = sp->http->req_truncated;
	nsteps++;
}

static uint64_t unjoined;
static void find_unjoined(void *ctx, const char *reason, uint64_t v, int is_events)
{
	(void)ctx;
	if (!strcmp(reason, "tls_record_unjoined")) {
		assert_int_equal(is_events, 1);
		unjoined = v;
	}
}

static void join(struct agt_pipeline *pl, uint32_t tid, uint64_t ts, uint64_t conn)
{
	struct agt_tls_join j = {{AGT_EV_TLS_JOIN, 0, 4242, tid, ts}, conn};

	agt_decode_record(&pl->dec, &j, sizeof(j));
}

static void feed(struct agt_pipeline *pl, struct agt_data *e)
{
	agt_decode_record(&pl->dec, e, offsetof(struct agt_data, data) + e->len);
}

/* An OpenAI request whose body is `pad` bytes of user message, as wire text. */
static char *request(const char *model, size_t pad, size_t *body_len)
{
	char *body = malloc(pad + 256), *wire = malloc(pad + 512);
	int n;

	n = sprintf(body, "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"",
		    model);
	memset(body + n, 'x', pad);
	n += (int)pad;
	n += sprintf(body + n, "\"}]}");
	*body_len = (size_t)n;
	sprintf(wire,
		"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		n, body);
	free(body);
	return wire;
}

static const char *response(const char *model, int in, int out_tokens)
{
	static char wire[1024];
	char body[512];
	int n = snprintf(body, sizeof(body),
			 "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"%s\","
			 "\"choices\":[{\"index\":0,\"finish_reason\":\"stop\",\"message\":"
			 "{\"role\":\"assistant\",\"content\":\"Sunny.\"}}],\"usage\":"
			 "{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}}",
			 model, in, out_tokens, in + out_tokens);

	snprintf(
	    wire, sizeof(wire),
	    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", n,
	    body);
	return wire;
}

/* Seal s in TLS records of at most 16 KiB (the record size limit), as rustls does. */
static void seal_all(struct agt_pipeline *pl, uint32_t tid, uint64_t *ts, const char *s,
		     size_t from, size_t to)
{
	for (size_t at = from; at < to;) {
		size_t n = to - at < AGT_DATA_CHUNK ? to - at : AGT_DATA_CHUNK;

		feed(pl, record(4242, tid, (*ts)++, 0, AGT_DIR_EGRESS, s + at, n));
		at += n;
	}
}

/* Two threads of one process each send a request sealed into several records, interleaved:
 * thread 12's socket write comes first. Each request reaches its own connection whole and in
 * order (exact body sizes, not truncated), and each exchange is one step with its model and
 * tokens. Records held for a process that ends, and those left at the end of the run, are
 * dropped and counted as tls_record_unjoined. */
static void decoder_joins_records_to_sockets(void **state)
{
	(void)state;
	struct agt_sink sink = {.span = sink_span};
	struct agt_pipeline_config pc = {.max_depth = 8, .max_threads = 8, .msg_cap = 1 << 20};
	struct agt_pipeline pl;
	struct one_target o;
	size_t len_a, len_b, body_a, body_b;
	char *a = request("gpt-4o", 40000, &body_a), *b = request("o3", 20000, &body_b);
	uint64_t ts = 100;
	const char *r;

	len_a = strlen(a);
	len_b = strlen(b);
	nsteps = 0;
	proc.gone = 0;
	assert_int_equal(one_target_init(&o, &pl, &probe, &proc, &pc, &sink), 0);
	/* interleaved: a's first record, b's first, a's next two, b's last */
	seal_all(&pl, 11, &ts, a, 0, 16384);
	seal_all(&pl, 12, &ts, b, 0, 16384);
	seal_all(&pl, 11, &ts, a, 16384, len_a);
	seal_all(&pl, 12, &ts, b, 16384, len_b);
	assert_int_equal(pl.dec.join.n, 5);
	join(&pl, 12, ts++, 0xb0b);
	assert_int_equal(pl.dec.join.n, 3);
	r = response("o3-2025-04-16", 50, 9);
	feed(&pl, record(4242, 12, ts++, 0xb0b, AGT_DIR_INGRESS, r, strlen(r)));
	join(&pl, 11, ts++, 0xa0a);
	assert_int_equal(pl.dec.join.n, 0);
	r = response("gpt-4o-2024-08-06", 42, 7);
	feed(&pl, record(4242, 11, ts++, 0xa0a, AGT_DIR_INGRESS, r, strlen(r)));

	assert_int_equal(nsteps, 2);
	assert_int_equal(steps[0].tid, 12);
	assert_string_equal(steps[0].model, "o3");
	assert_int_equal(steps[0].in, 50);
	assert_int_equal(steps[0].out, 9);
	assert_int_equal(steps[0].req_size, body_b);
	assert_int_equal(steps[0].truncated, 0);
	assert_int_equal(steps[1].tid, 11);
	assert_string_equal(steps[1].model, "gpt-4o");
	assert_int_equal(steps[1].in, 42);
	assert_int_equal(steps[1].out, 7);
	assert_int_equal(steps[1].req_size, body_a);
	assert_int_equal(steps[1].truncated, 0);
	assert_true(body_a > 40000 && body_b > 20000);

	/* a record never joined: the process ends; another at the end of the run */
	feed(&pl, sealed(4242, 11, ts++, "POST /v1/chat/completions HTTP/1.1\r\n"));
	agt_pipeline_proc_gone(&pl, 4242, ts++);
	unjoined = (uint64_t)-1;
	agt_pipeline_drops(&pl, find_unjoined, NULL);
	assert_int_equal(unjoined, 1);
	feed(&pl, sealed(4242, 13, ts++, "POST /v1/chat/completions HTTP/1.1\r\n"));
	assert_int_equal(pl.dec.join.n, 1);
	agt_pipeline_flush(&pl, ts++);
	agt_pipeline_drops(&pl, find_unjoined, NULL);
	assert_int_equal(unjoined, 2);
	assert_int_equal(pl.dec.join.n, 0);
	assert_int_equal(nsteps, 2);
	agt_pipeline_fini(&pl);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(held_per_thread_in_order),
	    cmocka_unit_test(dropped_and_counted),
	    cmocka_unit_test(bounded_oldest_first),
	    cmocka_unit_test(decoder_joins_records_to_sockets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
