/* HTTP/2 through the protocol interface (proto.h) alone, on real HTTP/2 bytes: an in-memory
 * nghttp2 client and server talking to each other, or frames laid out by hand with nghttp2's
 * HPACK encoder (tests/fuzz/h2_wire.h). The bytes go through agt_proto_http2 whole, a byte at a
 * time, or cut anywhere, with capture gaps, resets and garbage; the exchanges it hands over
 * are checked field by field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agtrace.h"
#include "base/util.h"
#include "protocols/http1.h"
#include "protocols/http2.h"
#include "protocols/llm/llm.h"
#include "streams/conn.h"
#include "../fuzz/h2_wire.h"

#define EG AGT_DIR_EGRESS
#define IN AGT_DIR_INGRESS
#define F_END_STREAM 0x1
#define F_END_HEADERS 0x4
#define F_PADDED 0x8
#define F_PRIORITY 0x20

static const struct agt_proto *const P = &agt_proto_http2;

/* The exchanges the protocol handed over, in order. */
struct xch {
	struct agt_http_msg *req, *resp;
};
static struct xch *got;
static int ngot, gotcap;

static void on_exchange(void *ctx, struct agt_http_msg *req, struct agt_http_msg *resp)
{
	(void)ctx;
	assert_non_null(req);
	if (ngot == gotcap) {
		gotcap = gotcap ? gotcap * 2 : 16;
		got = realloc(got, gotcap * sizeof(*got));
	}
	got[ngot++] = (struct xch){req, resp};
}

static void got_reset(void)
{
	for (int i = 0; i < ngot; i++) {
		agt_http_msg_free(got[i].req);
		agt_http_msg_free(got[i].resp);
	}
	ngot = 0;
}

static const struct agt_proto_out out = {.exchange = on_exchange};

struct run {
	void *conn;
	uint64_t drops[AGT_H2DROP_MAX];
	int errors; /* feeds that returned -1 */
};

static void run_open(struct run *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->conn = P->open(NULL, 10, cap, r->drops, &out);
	assert_non_null(r->conn);
}

/* Feed chunks [from, to) of t, each whole (step 0) or step bytes at a time. */
static void play_range(struct run *r, const struct h2w_trace *t, int from, int to, size_t step)
{
	for (int i = from; i < to; i++) {
		const struct h2w_chunk *k = &t->c[i];
		size_t s = step ? step : k->len;

		if (k->dir & H2W_GAP) {
			P->gap(r->conn, k->dir & 1, k->len, k->ts);
			continue;
		}
		for (size_t off = 0; off < k->len; off += s) {
			size_t n = k->len - off < s ? k->len - off : s;

			if (P->feed(r->conn, k->dir, k->b + off, n, k->ts, k->tid))
				r->errors++;
		}
	}
}

static void play(struct run *r, const struct h2w_trace *t, size_t step)
{
	play_range(r, t, 0, t->n, step);
}

static void run_end(struct run *r, uint64_t ts)
{
	P->close(r->conn, ts);
	P->free(r->conn);
}

static uint64_t total_drops(const struct run *r)
{
	uint64_t n = 0;

	for (int i = 0; i < AGT_H2DROP_MAX; i++)
		n += r->drops[i];
	return n;
}

/* Frames of one direction of a trace, read here independently of the module: where each
 * starts and ends in time (the chunks holding its first and last bytes). */
struct fr {
	uint8_t type, flags;
	uint32_t sid, len;
	uint64_t ts_start, ts_end;
};

static int frames(const struct h2w_trace *t, int dir, struct fr *f, int max)
{
	uint8_t h[9];
	size_t nh = 0, left = 0, pre = dir == EG ? 24 : 0;
	int n = 0, inpay = 0;

	for (int i = 0; i < t->n && n < max; i++) {
		const struct h2w_chunk *k = &t->c[i];

		if (k->dir != dir)
			continue;
		for (size_t j = 0; j < k->len && n < max; j++) {
			if (pre) {
				pre--;
				continue;
			}
			if (inpay) {
				if (!--left) {
					f[n++].ts_end = k->ts;
					inpay = 0;
				}
				continue;
			}
			if (!nh)
				f[n].ts_start = k->ts;
			h[nh++] = k->b[j];
			if (nh < 9)
				continue;
			nh = 0;
			f[n].len = (uint32_t)h[0] << 16 | h[1] << 8 | h[2];
			f[n].type = h[3];
			f[n].flags = h[4];
			f[n].sid = (uint32_t)(h[5] & 0x7f) << 24 | h[6] << 16 | h[7] << 8 | h[8];
			left = f[n].len;
			if (left)
				inpay = 1;
			else
				f[n++].ts_end = k->ts;
		}
	}
	return n;
}

/* The nth (0-based; -1: last) frame of a type on a stream. */
static const struct fr *frame_of(const struct fr *f, int n, uint8_t type, uint32_t sid, int nth)
{
	const struct fr *last = NULL;

	for (int i = 0; i < n; i++) {
		if (f[i].type != type || f[i].sid != sid)
			continue;
		if (nth-- == 0)
			return &f[i];
		last = &f[i];
	}
	assert_true(nth < -1 && last); /* asked for the last one, and there is one */
	return last;
}

static void assert_msg_same(const struct agt_http_msg *a, const struct agt_http_msg *b)
{
	if (!a || !b) {
		assert_ptr_equal(a, b);
		return;
	}
	assert_int_equal(a->is_request, b->is_request);
	assert_string_equal(a->method, b->method);
	assert_string_equal(a->url, b->url);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->nhdrs, b->nhdrs);
	for (int i = 0; i < a->nhdrs; i++) {
		assert_string_equal(a->hdrs[i].name, b->hdrs[i].name);
		assert_string_equal(a->hdrs[i].value, b->hdrs[i].value);
	}
	assert_int_equal(a->body_len, b->body_len);
	if (a->body_len)
		assert_memory_equal(a->body, b->body, a->body_len);
	assert_int_equal(a->body_seen, b->body_seen);
	assert_int_equal(a->truncated, b->truncated);
	assert_int_equal(a->start_ns, b->start_ns);
	assert_int_equal(a->first_body_ns, b->first_body_ns);
	assert_int_equal(a->end_ns, b->end_ns);
	assert_int_equal(a->tid, b->tid);
}

/* Play t whole, then a byte at a time (and in steps of 3 and 1000): the same exchanges. */
static void assert_any_split_same(const struct h2w_trace *t, size_t cap)
{
	static const size_t steps[] = {1, 3, 1000};
	struct run r;
	struct xch *ref;
	int nref;

	got_reset();
	run_open(&r, cap);
	play(&r, t, 0);
	run_end(&r, 1 << 30);
	nref = ngot;
	ref = malloc(nref * sizeof(*ref));
	memcpy(ref, got, nref * sizeof(*ref));
	ngot = 0;
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		struct run r2;

		run_open(&r2, cap);
		play(&r2, t, steps[s]);
		run_end(&r2, 1 << 30);
		assert_int_equal(ngot, nref);
		assert_int_equal(r2.errors, r.errors);
		assert_memory_equal(r2.drops, r.drops, sizeof(r.drops));
		for (int i = 0; i < ngot; i++) {
			assert_msg_same(got[i].req, ref[i].req);
			assert_msg_same(got[i].resp, ref[i].resp);
		}
		got_reset();
	}
	for (int i = 0; i < nref; i++)
		got[ngot++] = ref[i];
	got_reset();
	free(ref);
}

/* An nghttp2 client and server in memory: what they write to each other is the trace (each
 * write a chunk of its own), and what they received is the reference to compare with. */
#define SESS_STREAMS 8
struct blob {
	const char *p;
	size_t len, off;
};

struct sess {
	nghttp2_session *cli, *srv;
	struct h2w_trace *t;
	int nreq;
	struct blob req[SESS_STREAMS], resp[SESS_STREAMS];
	char path[SESS_STREAMS][64];
	int events[SESS_STREAMS], sent[SESS_STREAMS]; /* SSE events to send, sent */
	char srv_body[SESS_STREAMS][4096];	      /* request bodies the server got */
	size_t srv_len[SESS_STREAMS];
	char cli_body[SESS_STREAMS][8192]; /* response bodies the client got */
	size_t cli_len[SESS_STREAMS];
};

static int sidx(int32_t id)
{
	assert_true(id >= 1 && (id - 1) / 2 < SESS_STREAMS);
	return (id - 1) / 2;
}

static ssize_t blob_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *fl,
			 nghttp2_data_source *src, void *ud)
{
	struct blob *b = src->ptr;
	size_t n = b->len - b->off < len ? b->len - b->off : len;

	(void)s, (void)id, (void)ud;
	memcpy(buf, b->p + b->off, n);
	b->off += n;
	if (b->off == b->len)
		*fl |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* The i-th event of the SSE answers. */
static int sse_event(char *buf, size_t len, int i)
{
	return snprintf(
	    buf, len,
	    "event: content_block_delta\ndata: {\"index\":0,\"delta\":{\"text\":\"tok%d "
	    "\"}}\n\n",
	    i);
}

/* One SSE event per call: nghttp2 makes each a DATA frame of its own. */
static ssize_t sse_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *fl,
			nghttp2_data_source *src, void *ud)
{
	struct sess *x = ud;
	int i = sidx(id);
	int n = sse_event((char *)buf, len, x->sent[i]);

	(void)s, (void)src;
	if (++x->sent[i] == x->events[i])
		*fl |= NGHTTP2_DATA_FLAG_EOF;
	return n;
}

#define NV(n, v)                                                                \
	{                                                                       \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0 \
	}

static int srv_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		      const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct sess *x = ud;

	(void)s, (void)flags;
	if (nlen == 5 && !memcmp(name, ":path", 5) && vlen < 64)
		memcpy(x->path[sidx(f->hd.stream_id)], value, vlen);
	return 0;
}

static int srv_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		    void *ud)
{
	struct sess *x = ud;
	int i = sidx(id);

	(void)s, (void)flags;
	assert_true(x->srv_len[i] + len <= sizeof(x->srv_body[i]));
	memcpy(x->srv_body[i] + x->srv_len[i], data, len);
	x->srv_len[i] += len;
	return 0;
}

static const char answer_json[] =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o\",\"choices\":[{"
    "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello!\"},\"finish_reason\":"
    "\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2}}";

/* A request complete: answer it, with 50 SSE events for /v1/messages, JSON otherwise. */
static int srv_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct sess *x = ud;
	int32_t id = f->hd.stream_id;
	int i;

	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	i = sidx(id);
	if (!strcmp(x->path[i], "/v1/messages")) {
		nghttp2_nv nva[] = {NV(":status", "200"), NV("content-type", "text/event-stream"),
				    NV("cache-control", "no-cache")};
		nghttp2_data_provider prd = {.read_callback = sse_read};

		x->events[i] = 50;
		assert_int_equal(nghttp2_submit_response(s, id, nva, 3, &prd), 0);
	} else {
		nghttp2_nv nva[] = {NV(":status", "200"), NV("content-type", "application/json"),
				    NV("x-request-id", "req_abc")};
		nghttp2_data_provider prd = {.source.ptr = &x->resp[i], .read_callback = blob_read};

		x->resp[i] = (struct blob){answer_json, strlen(answer_json), 0};
		assert_int_equal(nghttp2_submit_response(s, id, nva, 3, &prd), 0);
	}
	return 0;
}

static int cli_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		    void *ud)
{
	struct sess *x = ud;
	int i = sidx(id);

	(void)s, (void)flags;
	assert_true(x->cli_len[i] + len <= sizeof(x->cli_body[i]));
	memcpy(x->cli_body[i] + x->cli_len[i], data, len);
	x->cli_len[i] += len;
	return 0;
}

static void sess_init(struct sess *x, struct h2w_trace *t)
{
	nghttp2_session_callbacks *cb;
	nghttp2_settings_entry cs[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
				       {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
	nghttp2_settings_entry ss[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 128}};

	memset(x, 0, sizeof(*x));
	x->t = t;
	assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_header_callback(cb, srv_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, srv_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, srv_frame);
	assert_int_equal(nghttp2_session_server_new(&x->srv, cb, x), 0);
	nghttp2_session_callbacks_del(cb);
	assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, cli_data);
	assert_int_equal(nghttp2_session_client_new(&x->cli, cb, x), 0);
	nghttp2_session_callbacks_del(cb);
	assert_int_equal(nghttp2_submit_settings(x->cli, NGHTTP2_FLAG_NONE, cs, 2), 0);
	assert_int_equal(nghttp2_submit_settings(x->srv, NGHTTP2_FLAG_NONE, ss, 1), 0);
}

static void sess_fini(struct sess *x)
{
	nghttp2_session_del(x->cli);
	nghttp2_session_del(x->srv);
}

/* What both write, until neither has anything more to say. */
static void pump(struct sess *x)
{
	for (int moved = 1; moved;) {
		const uint8_t *p;
		ssize_t n;

		moved = 0;
		while ((n = nghttp2_session_mem_send(x->cli, &p)) > 0) {
			h2w_chunk(x->t, EG);
			h2w_put(x->t, EG, p, (size_t)n);
			assert_int_equal(nghttp2_session_mem_recv(x->srv, p, (size_t)n), n);
			moved = 1;
		}
		assert_int_equal(n, 0);
		while ((n = nghttp2_session_mem_send(x->srv, &p)) > 0) {
			h2w_chunk(x->t, IN);
			h2w_put(x->t, IN, p, (size_t)n);
			assert_int_equal(nghttp2_session_mem_recv(x->cli, p, (size_t)n), n);
			moved = 1;
		}
		assert_int_equal(n, 0);
	}
}

static int32_t sess_post(struct sess *x, const char *authority, const char *path, const char *body)
{
	nghttp2_nv nva[] = {
	    NV(":method", "POST"),
	    NV(":scheme", "https"),
	    {(uint8_t *)":authority", (uint8_t *)authority, 10, strlen(authority), 0},
	    {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
	    NV("content-type", "application/json"),
	    NV("authorization", "Bearer sk-test-123"),
	    NV("user-agent", "agent/1.0"),
	};
	nghttp2_data_provider prd = {.source.ptr = &x->req[x->nreq], .read_callback = blob_read};
	int32_t id;

	x->req[x->nreq++] = (struct blob){body, strlen(body), 0};
	id = nghttp2_submit_request(x->cli, NULL, nva, sizeof(nva) / sizeof(nva[0]), &prd, NULL);
	assert_true(id > 0);
	return id;
}

static const char chat_req[] = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":"
			       "\"Say hello\"}],\"temperature\":0}";
static const char msg_req[] =
    "{\"model\":\"claude-sonnet\",\"max_tokens\":64,\"stream\":true,\"messages\":[{\"role\":"
    "\"user\",\"content\":\"Count\"}]}";

/* The POST with a JSON body and its JSON answer, then a POST answered by SSE in 50 DATA
 * frames, on one connection between a real nghttp2 client and server. */
static void session_trace(struct h2w_trace *t, struct sess *x)
{
	h2w_init(t);
	sess_init(x, t);
	sess_post(x, "api.openai.com", "/v1/chat/completions", chat_req);
	pump(x);
	sess_post(x, "api.anthropic.com", "/v1/messages", msg_req);
	pump(x);
}

static void detect_preface(void **state)
{
	static const char pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	static const uint8_t more[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04";

	(void)state;
	assert_string_equal(P->name, "http2");
	assert_int_equal(P->sources, 1u << AGT_SRC_TLS | 1u << AGT_SRC_TCP);
	assert_int_equal(P->ndrops, AGT_H2DROP_MAX);
	assert_string_equal(P->drop_names[AGT_H2DROP_GRPC], "http2_grpc_streams");
	assert_int_equal(P->detect((const uint8_t *)pre, 0, EG), AGT_DETECT_MORE);
	assert_int_equal(P->detect((const uint8_t *)pre, 8, EG), AGT_DETECT_MORE);
	assert_int_equal(P->detect((const uint8_t *)pre, 23, EG), AGT_DETECT_MORE);
	assert_int_equal(P->detect((const uint8_t *)pre, 24, EG), AGT_DETECT_YES);
	assert_int_equal(P->detect(more, sizeof(more) - 1, EG), AGT_DETECT_YES);
	assert_int_equal(P->detect((const uint8_t *)pre, 24, IN), AGT_DETECT_NO);
	assert_int_equal(P->detect((const uint8_t *)"PRI * HTTP/1.1", 14, EG), AGT_DETECT_NO);
	assert_int_equal(P->detect((const uint8_t *)"GET / HTTP/1.1\r\n", 16, EG), AGT_DETECT_NO);
	assert_int_equal(P->detect((const uint8_t *)"P", 1, EG), AGT_DETECT_MORE);
	assert_int_equal(P->detect((const uint8_t *)"\x16\x03\x01", 3, EG), AGT_DETECT_NO);
}

static void post_json_and_sse(void **state)
{
	struct h2w_trace t;
	struct sess x;
	struct fr ef[64], inf[128];
	int ne, ni, ndata = 0;
	struct run r;
	char sse[8192];
	size_t sse_len = 0;
	const struct agt_http_msg *q, *a;

	(void)state;
	session_trace(&t, &x);
	ne = frames(&t, EG, ef, 64);
	ni = frames(&t, IN, inf, 128);
	for (int i = 0; i < ni; i++)
		ndata += inf[i].type == NGHTTP2_DATA && inf[i].sid == 3;
	assert_int_equal(ndata, 50); /* the SSE answer really is 50 DATA frames */
	for (int i = 0; i < 50; i++)
		sse_len += sse_event(sse + sse_len, sizeof(sse) - sse_len, i);

	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(r.errors, 0);
	assert_int_equal(total_drops(&r), 0);
	assert_int_equal(ngot, 2);

	q = got[0].req;
	a = got[0].resp;
	assert_int_equal(q->is_request, 1);
	assert_string_equal(q->method, "POST");
	assert_string_equal(q->url, "/v1/chat/completions");
	assert_string_equal(agt_http_header(q, "Host"), "api.openai.com");
	assert_string_equal(agt_http_header(q, "content-type"), "application/json");
	assert_string_equal(agt_http_header(q, "authorization"), "Bearer sk-test-123");
	assert_string_equal(agt_http_header(q, "user-agent"), "agent/1.0");
	assert_null(agt_http_header(q, ":scheme"));
	assert_int_equal(q->nhdrs, 4); /* Host and the three regular fields */
	for (int i = 0; i < q->nhdrs; i++)
		assert_true(q->hdrs[i].name[0] != ':');
	assert_int_equal(q->body_len, strlen(chat_req));
	assert_string_equal((char *)q->body, chat_req);
	assert_memory_equal(q->body, x.srv_body[0], x.srv_len[0]); /* what nghttp2's server got */
	assert_int_equal(q->body_seen, strlen(chat_req));
	assert_int_equal(q->truncated, 0);
	assert_int_equal(q->tid, 7);
	assert_int_equal(q->start_ns, frame_of(ef, ne, NGHTTP2_HEADERS, 1, 0)->ts_start);
	assert_int_equal(q->first_body_ns, frame_of(ef, ne, NGHTTP2_DATA, 1, 0)->ts_start);
	assert_int_equal(q->end_ns, frame_of(ef, ne, NGHTTP2_DATA, 1, -1)->ts_end);
	assert_true(q->start_ns < q->end_ns);

	assert_int_equal(a->is_request, 0);
	assert_int_equal(a->status, 200);
	assert_string_equal(agt_http_header(a, "content-type"), "application/json");
	assert_string_equal(agt_http_header(a, "x-request-id"), "req_abc");
	assert_int_equal(a->body_len, strlen(answer_json));
	assert_string_equal((char *)a->body, answer_json);
	assert_memory_equal(a->body, x.cli_body[0], x.cli_len[0]); /* what nghttp2's client got */
	assert_int_equal(a->body_seen, strlen(answer_json));
	assert_int_equal(a->truncated, 0);
	assert_int_equal(a->tid, 8);
	assert_int_equal(a->start_ns, frame_of(inf, ni, NGHTTP2_HEADERS, 1, 0)->ts_start);
	assert_int_equal(a->first_body_ns, frame_of(inf, ni, NGHTTP2_DATA, 1, 0)->ts_start);
	assert_int_equal(a->end_ns, frame_of(inf, ni, NGHTTP2_DATA, 1, -1)->ts_end);
	assert_true(q->end_ns < a->start_ns);

	q = got[1].req;
	a = got[1].resp;
	assert_string_equal(q->url, "/v1/messages");
	assert_string_equal(agt_http_header(q, "Host"), "api.anthropic.com");
	assert_string_equal((char *)q->body, msg_req);
	assert_int_equal(a->status, 200);
	assert_string_equal(agt_http_header(a, "content-type"), "text/event-stream");
	assert_int_equal(a->body_len, sse_len);
	assert_memory_equal(a->body, sse, sse_len);
	assert_memory_equal(a->body, x.cli_body[1], x.cli_len[1]);
	assert_int_equal(a->body_seen, sse_len);
	assert_int_equal(a->truncated, 0);
	assert_int_equal(a->first_body_ns, frame_of(inf, ni, NGHTTP2_DATA, 3, 0)->ts_start);
	assert_int_equal(a->end_ns, frame_of(inf, ni, NGHTTP2_DATA, 3, -1)->ts_end);
	assert_true(a->first_body_ns < a->end_ns);
	got_reset();
	run_end(&r, 1 << 30);
	assert_int_equal(ngot, 0);
	sess_fini(&x);
	h2w_fini(&t);
}

static int nevents;
static void count_event(void *ctx, const char *event, const char *data)
{
	(void)ctx;
	assert_string_equal(event, "content_block_delta");
	assert_non_null(strstr(data, "\"text\":\"tok"));
	nevents++;
}

static void sse_50_frames_events(void **state)
{
	struct h2w_trace t;
	struct sess x;
	struct run r;

	(void)state;
	session_trace(&t, &x);
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(ngot, 2);
	nevents = 0;
	assert_int_equal(
	    agt_sse_parse((char *)got[1].resp->body, got[1].resp->body_len, count_event, NULL), 50);
	assert_int_equal(nevents, 50);
	got_reset();
	run_end(&r, 1 << 30);
	sess_fini(&x);
	h2w_fini(&t);
}

static void session_split_anywhere(void **state)
{
	struct h2w_trace t;
	struct sess x;

	(void)state;
	session_trace(&t, &x);
	assert_any_split_same(&t, 1 << 20);
	assert_any_split_same(&t, 100); /* and with bodies over the cap */
	sess_fini(&x);
	h2w_fini(&t);
}

static const char *const anth_req[] = {
    ":method",		 "POST",       ":scheme",	    "https",	    ":authority",
    "api.anthropic.com", ":path",      "/v1/messages",	    "content-type", "application/json",
    "x-api-key",	 "sk-ant-xyz", "anthropic-version", "2023-06-01",   "user-agent",
    "agent/1.0",	 NULL};

static void hpack_dynamic_table_reuse(void **state)
{
	struct h2w_trace t;
	struct run r;
	size_t qsz[5], asz[5];

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	for (uint32_t i = 0; i < 5; i++) {
		char id[16];
		const char *resp[] = {
		    ":status", "200", "content-type", "application/json", "x-request-id", id, NULL};

		snprintf(id, sizeof(id), "req_%u", i);
		qsz[i] = h2w_headers(&t, EG, 2 * i + 1, 0, anth_req);
		h2w_data(&t, EG, 2 * i + 1, F_END_STREAM, "{\"q\":1}");
		asz[i] = h2w_headers(&t, IN, 2 * i + 1, 0, resp);
		h2w_data(&t, IN, 2 * i + 1, F_END_STREAM, "{\"a\":2}");
	}
	/* The later blocks are mostly references into the dynamic table. */
	for (int i = 1; i < 5; i++) {
		assert_true(qsz[i] * 4 < qsz[0]);
		assert_true(asz[i] < asz[0]);
	}
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(r.errors, 0);
	assert_int_equal(total_drops(&r), 0);
	assert_int_equal(ngot, 5);
	for (int i = 0; i < 5; i++) {
		char id[16];

		snprintf(id, sizeof(id), "req_%d", i);
		assert_string_equal(got[i].req->method, "POST");
		assert_string_equal(got[i].req->url, "/v1/messages");
		assert_int_equal(got[i].req->nhdrs, 5);
		assert_string_equal(got[i].req->hdrs[0].name, "Host");
		assert_string_equal(got[i].req->hdrs[0].value, "api.anthropic.com");
		assert_string_equal(agt_http_header(got[i].req, "x-api-key"), "sk-ant-xyz");
		assert_string_equal(agt_http_header(got[i].req, "anthropic-version"), "2023-06-01");
		assert_string_equal(agt_http_header(got[i].req, "user-agent"), "agent/1.0");
		assert_string_equal((char *)got[i].req->body, "{\"q\":1}");
		assert_int_equal(got[i].resp->status, 200);
		assert_string_equal(agt_http_header(got[i].resp, "x-request-id"), id);
		assert_string_equal((char *)got[i].resp->body, "{\"a\":2}");
	}
	got_reset();
	run_end(&r, 1 << 30);
	assert_any_split_same(&t, 1 << 20);
	h2w_fini(&t);
}

/* HEADERS with PADDED and PRIORITY, DATA with padding (and one with zero padding), a header
 * block over three frames (HEADERS, CONTINUATION, CONTINUATION), and a response block in
 * CONTINUATION frames of 7 bytes. */
static void padded_and_continued(struct h2w_trace *t)
{
	uint8_t blk[4096], pay[4096];
	size_t n, p;
	char longv[301];
	const char *req2[] = {":method", "POST",   ":scheme", "https",	 ":authority", "h", ":path",
			      "/cont",	 "x-long", longv,     "x-after", "end",	       NULL};
	const char *resp[] = {":status", "201", "content-type", "application/json", "x-long",
			      longv,	 NULL};

	memset(longv, '~', 300); /* longer in Huffman than raw: sent raw */
	longv[300] = 0;
	h2w_init(t);
	h2w_open(t);
	/* Stream 1: padded and prioritised HEADERS, padded DATA. */
	n = h2w_block(t, EG, anth_req, blk, sizeof(blk));
	p = 0;
	pay[p++] = 10;				    /* pad length */
	memcpy(pay + p, "\x80\x00\x00\x00\x0f", 5); /* exclusive, depends on 0, weight 16 */
	p += 5;
	memcpy(pay + p, blk, n);
	p += n;
	memset(pay + p, 0, 10);
	p += 10;
	h2w_frame(t, EG, 0x1, F_END_HEADERS | F_PADDED | F_PRIORITY, 1, pay, p);
	pay[0] = 200;
	memcpy(pay + 1, "{\"padded\":true}", 15);
	memset(pay + 16, 0, 200);
	h2w_frame(t, EG, 0x0, F_PADDED, 1, pay, 216);
	pay[0] = 0;
	memcpy(pay + 1, "{}", 2);
	h2w_frame(t, EG, 0x0, F_PADDED | F_END_STREAM, 1, pay, 3);
	{
		const char *r200[] = {":status", "200", "content-type", "application/json", NULL};

		n = h2w_block(t, IN, r200, blk, sizeof(blk));
	}
	pay[0] = 3;
	memcpy(pay + 1, blk, n);
	memset(pay + 1 + n, 0, 3);
	h2w_frame(t, IN, 0x1, F_END_HEADERS | F_PADDED, 1, pay, n + 4);
	pay[0] = 7;
	memcpy(pay + 1, "{\"ok\":1}", 8);
	memset(pay + 9, 0, 7);
	h2w_frame(t, IN, 0x0, F_PADDED | F_END_STREAM, 1, pay, 16);
	/* Stream 3: a request block over three frames, END_STREAM on the HEADERS. */
	n = h2w_block(t, EG, req2, blk, sizeof(blk));
	assert_true(n > 300);
	h2w_frame(t, EG, 0x1, F_END_STREAM, 3, blk, 100);
	h2w_frame(t, EG, 0x9, 0, 3, blk + 100, 150);
	h2w_frame(t, EG, 0x9, F_END_HEADERS, 3, blk + 250, n - 250);
	/* Its answer: CONTINUATION frames of 7 bytes. */
	n = h2w_block(t, IN, resp, blk, sizeof(blk));
	h2w_frame(t, IN, 0x1, 0, 3, blk, 7);
	for (p = 7; p < n; p += 7)
		h2w_frame(t, IN, 0x9, p + 7 >= n ? F_END_HEADERS : 0, 3, blk + p,
			  n - p < 7 ? n - p : 7);
	h2w_data(t, IN, 3, F_END_STREAM, "{\"created\":true}");
}

static void padding_and_priority(void **state)
{
	struct h2w_trace t;
	struct run r;
	const struct agt_http_msg *q, *a;

	(void)state;
	padded_and_continued(&t);
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(r.errors, 0);
	assert_int_equal(total_drops(&r), 0);
	assert_int_equal(ngot, 2);
	q = got[0].req;
	a = got[0].resp;
	assert_string_equal(q->url, "/v1/messages");
	assert_string_equal(agt_http_header(q, "Host"), "api.anthropic.com");
	assert_string_equal(agt_http_header(q, "x-api-key"), "sk-ant-xyz");
	assert_int_equal(q->body_len, 17);
	assert_string_equal((char *)q->body, "{\"padded\":true}{}");
	assert_int_equal(q->body_seen, 17); /* padding is not body */
	assert_int_equal(a->status, 200);
	assert_string_equal((char *)a->body, "{\"ok\":1}");
	assert_int_equal(a->body_seen, 8);
	assert_int_equal(a->truncated, 0);
	got_reset();
	run_end(&r, 1 << 30);
	h2w_fini(&t);
}

static void continuation_frames(void **state)
{
	struct h2w_trace t;
	struct run r;
	struct fr ef[64], inf[64];
	int ne, ni;
	const struct agt_http_msg *q, *a;

	(void)state;
	padded_and_continued(&t);
	ne = frames(&t, EG, ef, 64);
	ni = frames(&t, IN, inf, 64);
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(ngot, 2);
	q = got[1].req;
	a = got[1].resp;
	assert_string_equal(q->url, "/cont");
	assert_string_equal(agt_http_header(q, "Host"), "h");
	assert_int_equal(strlen(agt_http_header(q, "x-long")), 300);
	assert_string_equal(agt_http_header(q, "x-after"), "end");
	assert_int_equal(q->body_len, 0);
	assert_int_equal(q->first_body_ns, 0);
	assert_int_equal(q->truncated, 0);
	/* END_STREAM on the HEADERS ends the request when its block ends. */
	assert_int_equal(q->start_ns, frame_of(ef, ne, NGHTTP2_HEADERS, 3, 0)->ts_start);
	assert_int_equal(q->end_ns, frame_of(ef, ne, NGHTTP2_CONTINUATION, 3, -1)->ts_end);
	assert_int_equal(a->status, 201);
	assert_int_equal(strlen(agt_http_header(a, "x-long")), 300);
	assert_string_equal((char *)a->body, "{\"created\":true}");
	assert_int_equal(a->start_ns, frame_of(inf, ni, NGHTTP2_HEADERS, 3, 0)->ts_start);
	got_reset();
	run_end(&r, 1 << 30);
	/* The same bytes cut at every byte boundary: the same exchanges. */
	assert_any_split_same(&t, 1 << 20);
	h2w_fini(&t);
}

static const char *const req_hdrs[] = {":method", "POST",  ":scheme", "https", ":authority",
				       "api",	  ":path", "/v1/x",   NULL};

static void req_path(struct h2w_trace *t, uint32_t sid, const char *path, uint8_t flags)
{
	const char *h[] = {":method", "POST",  ":scheme", "https", ":authority",
			   "api",     ":path", path,	  NULL};

	h2w_headers(t, EG, sid, flags, h);
}

static void resp_status(struct h2w_trace *t, uint32_t sid, const char *status, uint8_t flags)
{
	const char *h[] = {":status", status, "content-type", "application/json", NULL};

	h2w_headers(t, IN, sid, flags, h);
}

/* Three requests in flight at once, bodies interleaved, answered 5, 3, 1 with the answers'
 * frames interleaved too. */
static void interleaved_trace(struct h2w_trace *t)
{
	h2w_init(t);
	h2w_open(t);
	req_path(t, 1, "/one", 0);
	req_path(t, 3, "/three", 0);
	req_path(t, 5, "/five", 0);
	h2w_data(t, EG, 3, 0, "b3");
	h2w_data(t, EG, 1, 0, "a1");
	h2w_data(t, EG, 5, F_END_STREAM, "c5");
	resp_status(t, 5, "200", 0);
	resp_status(t, 3, "201", 0);
	h2w_data(t, EG, 1, F_END_STREAM, "a1b");
	h2w_data(t, IN, 3, 0, "r3");
	h2w_data(t, EG, 3, F_END_STREAM, "b3b");
	h2w_data(t, IN, 5, F_END_STREAM, "r5");
	resp_status(t, 1, "202", 0);
	h2w_data(t, IN, 1, 0, "r1");
	h2w_data(t, IN, 3, F_END_STREAM, "r3b");
	h2w_data(t, IN, 1, F_END_STREAM, "r1b");
}

static void interleaved_out_of_order(void **state)
{
	struct h2w_trace t;
	struct run r;
	static const char *const urls[] = {"/five", "/three", "/one"};
	static const char *const qb[] = {"c5", "b3b3b", "a1a1b"};
	static const char *const ab[] = {"r5", "r3r3b", "r1r1b"};
	static const int st[] = {200, 201, 202};

	(void)state;
	interleaved_trace(&t);
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(r.errors, 0);
	assert_int_equal(total_drops(&r), 0);
	assert_int_equal(ngot, 3);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(got[i].req->url, urls[i]);
		assert_string_equal((char *)got[i].req->body, qb[i]);
		assert_int_equal(got[i].req->truncated, 0);
		assert_int_equal(got[i].resp->status, st[i]);
		assert_string_equal((char *)got[i].resp->body, ab[i]);
		assert_int_equal(got[i].resp->truncated, 0);
		assert_true(got[i].resp->end_ns >= got[i].req->end_ns);
	}
	got_reset();
	run_end(&r, 1 << 30);
	assert_any_split_same(&t, 1 << 20);
	h2w_fini(&t);
}

static void trailers_appended(void **state)
{
	struct h2w_trace t;
	struct run r;
	const struct agt_http_msg *a;
	static const char *const tr[] = {"x-usage-tokens", "42",  "x-final", "yes",
					 ":status",	   "500", NULL};

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/t", F_END_STREAM);
	resp_status(&t, 1, "200", 0);
	h2w_data(&t, IN, 1, 0, "body");
	h2w_chunk(&t, IN);
	h2w_headers(&t, IN, 1, F_END_STREAM, tr);
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(ngot, 1);
	a = got[0].resp;
	assert_int_equal(a->status, 200); /* a pseudo-header in trailers changes nothing */
	assert_int_equal(a->nhdrs, 3);
	assert_string_equal(a->hdrs[0].name, "content-type");
	assert_string_equal(a->hdrs[1].name, "x-usage-tokens");
	assert_string_equal(a->hdrs[1].value, "42");
	assert_string_equal(a->hdrs[2].name, "x-final");
	assert_string_equal(a->hdrs[2].value, "yes");
	assert_string_equal((char *)a->body, "body");
	assert_int_equal(a->end_ns, t.c[t.n - 1].ts); /* ended by the trailers' END_STREAM */
	assert_int_equal(a->truncated, 0);
	got_reset();
	run_end(&r, 1 << 30);
	h2w_fini(&t);
}

static void rst_by_client_mid_response(void **state)
{
	struct h2w_trace t;
	struct run r;
	int rst;

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/stream", F_END_STREAM);
	resp_status(&t, 1, "200", 0);
	h2w_data(&t, IN, 1, 0, "partial");
	h2w_rst(&t, EG, 1, 0x8); /* CANCEL */
	rst = t.n - 1;
	h2w_data(&t, IN, 1, 0, "in flight"); /* sent before the server saw the reset */
	req_path(&t, 3, "/next", F_END_STREAM);
	resp_status(&t, 3, "200", F_END_STREAM);
	got_reset();
	run_open(&r, 1 << 20);
	play_range(&r, &t, 0, rst + 1, 0);
	assert_int_equal(ngot, 1); /* handed over at the reset */
	assert_string_equal(got[0].req->url, "/stream");
	assert_int_equal(got[0].req->truncated, 0);
	assert_int_equal(got[0].resp->status, 200);
	assert_string_equal((char *)got[0].resp->body, "partial");
	assert_int_equal(got[0].resp->truncated, 1);
	assert_int_equal(got[0].resp->end_ns, t.c[rst].ts);
	play_range(&r, &t, rst + 1, t.n, 0);
	assert_int_equal(ngot, 2);
	assert_string_equal(got[1].req->url, "/next");
	assert_int_equal(got[1].resp->truncated, 0);
	assert_int_equal(r.errors, 0);
	assert_int_equal(total_drops(&r), 0);
	got_reset();
	run_end(&r, 1 << 30);
	h2w_fini(&t);
}

/* The connection ends inside a streamed response (the client died): what arrived is handed
 * over, marked incomplete, ending at its last DATA frame, not at the close. */
static void close_mid_response_keeps_what_arrived(void **state)
{
	struct h2w_trace t;
	struct run r;
	int last;

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/v1/messages", F_END_STREAM);
	resp_status(&t, 1, "200", 0);
	h2w_data(&t, IN, 1, 0, "event: a\n\n");
	h2w_data(&t, IN, 1, 0, "event: b\n\n");
	last = t.n - 1;
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(ngot, 0);
	P->close(r.conn, t.c[last].ts + 5000000);
	assert_int_equal(ngot, 1);
	assert_int_equal(got[0].resp->status, 200);
	assert_int_equal(got[0].resp->incomplete, 1);
	assert_int_equal(got[0].resp->end_ns, t.c[last].ts);
	assert_string_equal((char *)got[0].resp->body, "event: a\n\nevent: b\n\n");
	assert_int_equal(got[0].req->incomplete, 0);
	got_reset();
	P->free(r.conn);
	h2w_fini(&t);
}

static void rst_by_server_before_response(void **state)
{
	struct h2w_trace t;
	struct run r;

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/refused", 0);
	h2w_data(&t, EG, 1, F_END_STREAM, "{\"x\":1}");
	h2w_rst(&t, IN, 1, 0x7); /* REFUSED_STREAM */
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(ngot, 1);
	assert_string_equal(got[0].req->url, "/refused");
	assert_string_equal((char *)got[0].req->body, "{\"x\":1}");
	assert_int_equal(got[0].req->truncated, 0);
	assert_null(got[0].resp);
	assert_int_equal(total_drops(&r), 0);
	got_reset();
	run_end(&r, 1 << 30);
	assert_int_equal(ngot, 0);
	h2w_fini(&t);
}

static void gap_inside_data(void **state)
{
	struct h2w_trace t;
	struct run r;
	char body[101];

	(void)state;
	for (int i = 0; i < 100; i++)
		body[i] = (char)('a' + i % 26);
	body[100] = 0;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/gap", F_END_STREAM);
	resp_status(&t, 1, "200", 0);
	h2w_frame_hdr(&t, IN, 0x0, F_END_STREAM, 1, 100);
	h2w_put(&t, IN, body, 30);
	h2w_gap(&t, IN, 40);
	h2w_put(&t, IN, body + 70, 30);
	req_path(&t, 3, "/after", F_END_STREAM);
	resp_status(&t, 3, "200", 0);
	h2w_data(&t, IN, 3, F_END_STREAM, "whole");
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(r.errors, 0);
	assert_int_equal(ngot, 2);
	assert_int_equal(got[0].resp->body_len, 60);
	assert_memory_equal(got[0].resp->body, body, 30);
	assert_memory_equal(got[0].resp->body + 30, body + 70, 30);
	assert_int_equal(got[0].resp->body_seen, 100);
	assert_int_equal(got[0].resp->truncated, 1);
	assert_int_equal(got[0].req->truncated, 0);
	assert_string_equal(got[1].req->url, "/after");
	assert_string_equal((char *)got[1].resp->body, "whole");
	assert_int_equal(got[1].resp->truncated, 0);
	assert_int_equal(r.drops[AGT_H2DROP_GAP_BODY], 1);
	assert_int_equal(total_drops(&r), 1);
	got_reset();
	run_end(&r, 1 << 30);
	assert_any_split_same(&t, 1 << 20);
	h2w_fini(&t);
}

static void gap_inside_header_block(void **state)
{
	struct h2w_trace t;
	struct run r;
	uint8_t blk[256];
	size_t n, after = 0;
	int gap;
	static const char *const resp[] = {
	    ":status", "200", "content-type", "application/json", "x-request-id", "abc", NULL};

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/lost", F_END_STREAM);
	n = h2w_block(&t, IN, resp, blk, sizeof(blk));
	assert_true(n > 20);
	h2w_frame_hdr(&t, IN, 0x1, F_END_HEADERS, 1, n);
	h2w_put(&t, IN, blk, 5);
	h2w_gap(&t, IN, 10);
	gap = t.n - 1;
	h2w_put(&t, IN, blk + 15, n - 15);
	h2w_data(&t, IN, 1, F_END_STREAM, "never seen");
	req_path(&t, 3, "/later", F_END_STREAM);
	resp_status(&t, 3, "200", F_END_STREAM);
	for (int i = gap + 1; i < t.n; i++)
		if (t.c[i].dir == IN)
			after += t.c[i].len;
	got_reset();
	run_open(&r, 1 << 20);
	play_range(&r, &t, 0, gap + 1, 0);
	/* The response open when the state was lost is handed over as it was. */
	assert_int_equal(r.drops[AGT_H2DROP_GAP_LOST], 1);
	assert_int_equal(ngot, 1);
	assert_string_equal(got[0].req->url, "/lost");
	assert_non_null(got[0].resp);
	assert_int_equal(got[0].resp->status, 200); /* decoded before the gap */
	assert_int_equal(got[0].resp->truncated, 1);
	assert_int_equal(got[0].resp->end_ns, t.c[gap].ts);
	play_range(&r, &t, gap + 1, t.n, 0);
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.drops[AGT_H2DROP_IGNORED_BYTES], after); /* the rest of ingress */
	/* Requests still go on; their answers are not followed, so each is handed over as soon as
	 * it ends. */
	assert_int_equal(ngot, 2);
	assert_string_equal(got[1].req->url, "/later");
	assert_int_equal(got[1].req->truncated, 0);
	assert_null(got[1].resp);
	run_end(&r, 99999);
	assert_int_equal(ngot, 2);
	assert_int_equal(r.drops[AGT_H2DROP_GAP_LOST] + r.drops[AGT_H2DROP_IGNORED_BYTES],
			 total_drops(&r));
	got_reset();
	h2w_fini(&t);
}

static void grpc_counted_not_delivered(void **state)
{
	struct h2w_trace t;
	struct run r;
	static const char *const greq[] = {":method",
					   "POST",
					   ":scheme",
					   "http",
					   ":authority",
					   "svc:50051",
					   ":path",
					   "/pkg.Svc/Call",
					   "content-type",
					   "application/grpc",
					   "te",
					   "trailers",
					   NULL};
	static const char *const gresp[] = {":status", "200", "content-type",
					    "application/grpc+proto", NULL};
	static const char *const gtr[] = {"grpc-status", "0", "grpc-message", "", NULL};
	static const char *const req3[] = {
	    ":method",	 "POST",  ":scheme", "http",	     ":authority",
	    "svc:50051", ":path", "/v1/x",   "content-type", "application/json",
	    NULL};
	static const char *const resp3[] = {":status", "200", "grpc-status", "0", NULL};
	static const char msg[] = "\x00\x00\x00\x00\x03\x08\x96\x01";

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	h2w_headers(&t, EG, 1, 0, greq);
	h2w_frame(&t, EG, 0x0, F_END_STREAM, 1, msg, 8);
	h2w_headers(&t, IN, 1, 0, gresp);
	h2w_frame(&t, IN, 0x0, 0, 1, msg, 8);
	h2w_headers(&t, IN, 1, F_END_STREAM, gtr);
	/* A plain request after it: the HPACK tables stayed right through the gRPC blocks. */
	h2w_headers(&t, EG, 3, F_END_STREAM, req3);
	h2w_headers(&t, IN, 3, 0, resp3);
	h2w_data(&t, IN, 3, F_END_STREAM, "plain");
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(r.drops[AGT_H2DROP_GRPC], 1);
	assert_int_equal(total_drops(&r), 1);
	assert_int_equal(ngot, 1);
	assert_string_equal(got[0].req->url, "/v1/x");
	assert_string_equal(agt_http_header(got[0].req, "Host"), "svc:50051");
	assert_int_equal(got[0].resp->status, 200);
	assert_string_equal(agt_http_header(got[0].resp, "grpc-status"), "0");
	assert_string_equal((char *)got[0].resp->body, "plain");
	got_reset();
	run_end(&r, 1 << 30);
	assert_int_equal(ngot, 0); /* nor at close */
	h2w_fini(&t);
}

static void body_over_cap(void **state)
{
	struct h2w_trace t;
	struct run r;
	char chunk[101], expect[101];

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/big", 0);
	h2w_data(&t, EG, 1, F_END_STREAM, "{\"small\":true}");
	resp_status(&t, 1, "200", 0);
	for (int f = 0; f < 10; f++) {
		for (int i = 0; i < 100; i++)
			chunk[i] = (char)('0' + (f + i) % 10);
		chunk[100] = 0;
		if (!f)
			memcpy(expect, chunk, 101);
		h2w_chunk(&t, IN);
		h2w_data(&t, IN, 1, f == 9 ? F_END_STREAM : 0, chunk);
	}
	got_reset();
	run_open(&r, 100);
	play(&r, &t, 0);
	assert_int_equal(ngot, 1);
	assert_int_equal(got[0].req->body_len, 14);
	assert_int_equal(got[0].req->truncated, 0);
	assert_int_equal(got[0].resp->body_len, 100);
	assert_memory_equal(got[0].resp->body, expect, 100);
	assert_int_equal(got[0].resp->body_seen, 1000);
	assert_int_equal(got[0].resp->truncated, 1);
	assert_int_equal(got[0].resp->end_ns, t.c[t.n - 1].ts);
	assert_int_equal(total_drops(&r), 0); /* the cap is no loss of framing */
	got_reset();
	run_end(&r, 1 << 30);
	assert_any_split_same(&t, 100);
	h2w_fini(&t);
}

static void close_with_open_streams(void **state)
{
	struct h2w_trace t;
	struct run r;

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/a", F_END_STREAM);
	req_path(&t, 3, "/b", 0);
	h2w_data(&t, EG, 3, F_END_STREAM, "q");
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(ngot, 0);
	P->close(r.conn, 99999);
	assert_int_equal(ngot, 2);
	assert_string_equal(got[0].req->url, "/a");
	assert_null(got[0].resp);
	assert_int_equal(got[0].req->truncated, 0);
	assert_int_equal(got[0].req->end_ns, t.c[t.n - 1].ts); /* the request did end */
	assert_string_equal(got[1].req->url, "/b");
	assert_string_equal((char *)got[1].req->body, "q");
	assert_null(got[1].resp);
	P->close(r.conn, 100000); /* twice: nothing more */
	assert_int_equal(ngot, 2);
	assert_int_equal(P->feed(r.conn, IN, (const uint8_t *)"x", 1, 1, 1), 0);
	P->free(r.conn);
	got_reset();
	/* free() without close() hands nothing over and frees everything (ASan checks). */
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	P->free(r.conn);
	assert_int_equal(ngot, 0);
	h2w_fini(&t);
}

static void garbage_after_preface(void **state)
{
	static const char http1[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct h2w_trace t;
	struct run r;

	(void)state;
	/* HTTP/1.1 where frames should be: its first 9 bytes say a 4.6 MB frame. */
	run_open(&r, 1 << 20);
	assert_int_equal(P->feed(r.conn, EG, (const uint8_t *)H2W_PREFACE, 24, 1, 1), 0);
	assert_int_equal(P->feed(r.conn, EG, (const uint8_t *)http1, strlen(http1), 2, 1), -1);
	assert_int_equal(r.drops[AGT_H2DROP_FRAMING], 1);
	assert_int_equal(P->feed(r.conn, EG, (const uint8_t *)"more", 4, 3, 1), 0);
	/* Ignored: what came after the 9 bytes that were read as a frame header. */
	assert_int_equal(r.drops[AGT_H2DROP_IGNORED_BYTES], strlen(http1) - 9 + 4);
	assert_int_equal(P->feed(r.conn, IN, (const uint8_t *)http1, 9, 4, 1), -1);
	assert_int_equal(r.drops[AGT_H2DROP_FRAMING], 2);
	run_end(&r, 5);
	/* A wrong preface. */
	run_open(&r, 1 << 20);
	assert_int_equal(P->feed(r.conn, EG, (const uint8_t *)"PRI * HTTP/2.0\r\n\r\nXX", 20, 1, 1),
			 -1);
	assert_int_equal(r.drops[AGT_H2DROP_FRAMING], 1);
	run_end(&r, 5);
	/* Garbage in the requests while a request waits: its answer still comes through. */
	got_reset();
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/waiting", 0);
	h2w_data(&t, EG, 1, 0, "half a bo");
	h2w_put(&t, EG, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 10);
	resp_status(&t, 1, "200", 0);
	h2w_data(&t, IN, 1, F_END_STREAM, "answer");
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(r.errors, 1);
	assert_int_equal(r.drops[AGT_H2DROP_FRAMING], 1);
	assert_int_equal(ngot, 1);
	assert_string_equal((char *)got[0].req->body, "half a bo");
	assert_int_equal(got[0].req->truncated, 1);
	assert_string_equal((char *)got[0].resp->body, "answer");
	assert_int_equal(got[0].resp->truncated, 0);
	got_reset();
	run_end(&r, 99);
	assert_int_equal(ngot, 0);
	h2w_fini(&t);
}

/* Responses lost while a request is still being sent: the request is followed to its end and
 * handed over then, unanswered. */
static void ingress_lost_mid_upload(void **state)
{
	struct h2w_trace t;
	struct run r;
	int bad;

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/upload", 0);
	h2w_data(&t, EG, 1, 0, "first half, ");
	h2w_put(&t, IN, "HTTP/1.1 200 OK\r\n\r\n", 19); /* not HTTP/2 */
	bad = t.n - 1;
	h2w_data(&t, EG, 1, F_END_STREAM, "second half");
	got_reset();
	run_open(&r, 1 << 20);
	play_range(&r, &t, 0, bad + 1, 0);
	assert_int_equal(r.errors, 1);
	assert_int_equal(r.drops[AGT_H2DROP_FRAMING], 1);
	assert_int_equal(ngot, 0);
	play_range(&r, &t, bad + 1, t.n, 0);
	assert_int_equal(ngot, 1);
	assert_string_equal((char *)got[0].req->body, "first half, second half");
	assert_int_equal(got[0].req->truncated, 0);
	assert_int_equal(got[0].req->end_ns, t.c[t.n - 1].ts);
	assert_null(got[0].resp);
	got_reset();
	run_end(&r, 1 << 30);
	assert_int_equal(ngot, 0);
	h2w_fini(&t);
}

/* A header block interrupted by another frame is a framing error. */
static void frame_inside_header_block(void **state)
{
	struct h2w_trace t;
	struct run r;
	uint8_t blk[256];
	size_t n;

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	n = h2w_block(&t, EG, req_hdrs, blk, sizeof(blk));
	h2w_frame(&t, EG, 0x1, F_END_STREAM, 1, blk, n / 2);
	h2w_frame(&t, EG, 0x6, 0, 0, "12345678", 8); /* PING */
	run_open(&r, 1 << 20);
	got_reset();
	play(&r, &t, 0);
	assert_int_equal(r.errors, 1);
	assert_int_equal(r.drops[AGT_H2DROP_FRAMING], 1);
	run_end(&r, 9);
	assert_int_equal(ngot, 1); /* the request, as far as it got */
	assert_int_equal(got[0].req->truncated, 1);
	assert_null(got[0].resp);
	got_reset();
	h2w_fini(&t);
}

/* SETTINGS_HEADER_TABLE_SIZE from the client sizes the table of the server's encoder, from the
 * server's acknowledgement on. */
static void table_size_trace(struct h2w_trace *t, int announce)
{
	uint8_t cs[6] = {0, 1, 0, 0, 0x40, 0}; /* HEADER_TABLE_SIZE 16384 */
	char vals[10][601];
	const char *h[24];
	int k = 0;

	h2w_init(t);
	nghttp2_hd_deflate_del(t->def[IN]);
	nghttp2_hd_deflate_new(&t->def[IN], 65536);
	h2w_put(t, EG, H2W_PREFACE, 24);
	h2w_frame(t, EG, 0x4, 0, 0, cs, announce ? 6 : 0);
	h2w_frame(t, IN, 0x4, 0, 0, NULL, 0);
	h2w_frame(t, IN, 0x4, 0x1, 0, NULL, 0);
	h2w_frame(t, EG, 0x4, 0x1, 0, NULL, 0);
	nghttp2_hd_deflate_change_table_size(t->def[IN], 16384);
	h[k++] = ":status";
	h[k++] = "200";
	for (int i = 0; i < 10; i++) {
		static const char *const names[] = {"x-h0", "x-h1", "x-h2", "x-h3", "x-h4",
						    "x-h5", "x-h6", "x-h7", "x-h8", "x-h9"};

		memset(vals[i], 'a' + i, 600);
		vals[i][600] = 0;
		h[k++] = names[i];
		h[k++] = vals[i];
	}
	h[k] = NULL;
	for (uint32_t s = 1; s <= 3; s += 2) {
		req_path(t, s, "/t", F_END_STREAM);
		h2w_headers(t, IN, s, F_END_STREAM, h);
	}
}

static void settings_header_table_size(void **state)
{
	struct h2w_trace t;
	struct run r;

	(void)state;
	table_size_trace(&t, 1);
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(r.errors, 0);
	assert_int_equal(total_drops(&r), 0);
	assert_int_equal(ngot, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(got[i].resp->nhdrs, 10);
		for (int j = 0; j < 10; j++) {
			assert_int_equal(strlen(got[i].resp->hdrs[j].value), 600);
			assert_int_equal(got[i].resp->hdrs[j].value[599], 'a' + j);
		}
	}
	got_reset();
	run_end(&r, 1 << 30);
	h2w_fini(&t);
	/* Without the client's announcement the server's table size update is out of bounds:
	 * counted, never decoded wrong. */
	table_size_trace(&t, 0);
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(r.errors, 1);
	assert_int_equal(r.drops[AGT_H2DROP_HPACK], 1);
	run_end(&r, 1 << 30);
	assert_int_equal(ngot, 2); /* both requests, unanswered */
	assert_int_equal(got[0].resp->truncated, 1);
	assert_null(got[1].resp);
	got_reset();
	h2w_fini(&t);
}

static void interim_response(void **state)
{
	struct h2w_trace t;
	struct run r;
	int final;

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/upload", 0);
	resp_status(&t, 1, "100", 0);
	h2w_data(&t, EG, 1, F_END_STREAM, "data");
	final = t.n;
	resp_status(&t, 1, "200", 0);
	h2w_data(&t, IN, 1, F_END_STREAM, "done");
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(ngot, 1);
	assert_int_equal(got[0].resp->status, 200);
	assert_int_equal(got[0].resp->start_ns, t.c[final].ts);
	assert_string_equal((char *)got[0].resp->body, "done");
	got_reset();
	run_end(&r, 1 << 30);
	h2w_fini(&t);
}

static void goaway_hands_over_unprocessed(void **state)
{
	struct h2w_trace t;
	struct run r;
	static const uint8_t ga[8] = {0, 0, 0, 1, 0, 0, 0, 0}; /* last stream 1, NO_ERROR */
	int g;

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/first", F_END_STREAM);
	req_path(&t, 3, "/second", F_END_STREAM);
	h2w_frame(&t, IN, 0x7, 0, 0, ga, 8);
	g = t.n;
	h2w_chunk(&t, IN);
	resp_status(&t, 1, "200", F_END_STREAM);
	got_reset();
	run_open(&r, 1 << 20);
	play_range(&r, &t, 0, g, 0);
	assert_int_equal(ngot, 1);
	assert_string_equal(got[0].req->url, "/second");
	assert_null(got[0].resp);
	play_range(&r, &t, g, t.n, 0);
	assert_int_equal(ngot, 2);
	assert_string_equal(got[1].req->url, "/first");
	assert_int_equal(got[1].resp->status, 200);
	got_reset();
	run_end(&r, 1 << 30);
	h2w_fini(&t);
}

static void stream_cap(void **state)
{
	struct h2w_trace t;
	struct run r;

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	for (uint32_t s = 1; s < 600; s += 2)
		req_path(&t, s, "/many", F_END_STREAM);
	resp_status(&t, 599, "200", F_END_STREAM); /* not followed: ignored quietly */
	resp_status(&t, 1, "200", F_END_STREAM);
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(r.drops[AGT_H2DROP_STREAMS_FULL], 300 - 256);
	assert_int_equal(r.drops[AGT_H2DROP_UNMATCHED], 0);
	assert_int_equal(ngot, 1);
	assert_int_equal(got[0].resp->status, 200);
	run_end(&r, 1 << 30);
	assert_int_equal(ngot, 256);
	got_reset();
	h2w_fini(&t);
}

static void push_promise_ignored(void **state)
{
	struct h2w_trace t;
	struct run r;
	uint8_t blk[512], pay[600];
	size_t n;
	static const char *const promised[] = {":method",     "GET",	  ":scheme", "https",
					       ":authority",  "api",	  ":path",   "/style.css",
					       "x-pushed-by", "server-1", NULL};
	static const char *const presp[] = {":status", "200", "x-pushed-by", "server-1", NULL};

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/page", F_END_STREAM);
	n = h2w_block(&t, IN, promised, blk, sizeof(blk));
	memcpy(pay, "\x00\x00\x00\x02", 4);
	memcpy(pay + 4, blk, n);
	h2w_frame(&t, IN, 0x5, F_END_HEADERS, 1, pay, n + 4);
	h2w_headers(&t, IN, 2, 0, presp);
	h2w_data(&t, IN, 2, F_END_STREAM, "body{}");
	/* Uses the table entries the pushed blocks added. */
	h2w_headers(&t, IN, 1, 0, presp);
	h2w_data(&t, IN, 1, F_END_STREAM, "<html>");
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(r.drops[AGT_H2DROP_PUSH], 1);
	assert_int_equal(total_drops(&r), 1);
	assert_int_equal(ngot, 1);
	assert_string_equal(got[0].req->url, "/page");
	assert_string_equal(agt_http_header(got[0].resp, "x-pushed-by"), "server-1");
	assert_string_equal((char *)got[0].resp->body, "<html>");
	got_reset();
	run_end(&r, 1 << 30);
	h2w_fini(&t);
}

/* A header block of any size, in a HEADERS frame and CONTINUATION frames of 16 KiB. */
static void big_block(struct h2w_trace *t, int dir, uint32_t sid, uint8_t flags,
		      const char *const *nv)
{
	size_t cap = 1 << 20, n, off = 0;
	uint8_t *blk = malloc(cap);

	n = h2w_block(t, dir, nv, blk, cap);
	assert_true(n > 0 && n < cap);
	do {
		size_t k = n - off > 16384 ? 16384 : n - off;
		uint8_t f = off + k == n ? F_END_HEADERS : 0;

		h2w_frame(t, dir, off ? 0x9 : 0x1, (uint8_t)(f | (off ? 0 : flags)), sid, blk + off,
			  k);
		off += k;
	} while (off < n);
	free(blk);
}

static void header_limits(void **state)
{
	struct h2w_trace t;
	struct run r;
	static char names[300][8], big[10][8001];
	const char *nv[2 * 300 + 3];
	int k = 0;

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/many-fields", F_END_STREAM);
	nv[k++] = ":status";
	nv[k++] = "200";
	for (int i = 0; i < 300; i++) {
		snprintf(names[i], sizeof(names[i]), "x-%03d", i);
		nv[k++] = names[i];
		nv[k++] = "v";
	}
	nv[k] = NULL;
	big_block(&t, IN, 1, F_END_STREAM, nv);
	/* 10 fields of 8000 bytes: the 64 KiB of one message hold 8. */
	req_path(&t, 3, "/big-fields", F_END_STREAM);
	k = 0;
	nv[k++] = ":status";
	nv[k++] = "200";
	for (int i = 0; i < 10; i++) {
		memset(big[i], '~', 8000);
		nv[k++] = names[i];
		nv[k++] = big[i];
	}
	nv[k] = NULL;
	big_block(&t, IN, 3, F_END_STREAM, nv);
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(r.errors, 0);
	assert_int_equal(ngot, 2);
	assert_int_equal(got[0].resp->nhdrs, 256);
	assert_string_equal(got[0].resp->hdrs[255].name, "x-255");
	assert_int_equal(got[1].resp->nhdrs, 8);
	assert_int_equal(strlen(got[1].resp->hdrs[7].value), 8000);
	assert_int_equal(r.drops[AGT_H2DROP_HEADERS], 44 + 2);
	assert_int_equal(total_drops(&r), 46);
	got_reset();
	run_end(&r, 1 << 30);
	h2w_fini(&t);
	/* A header block over 256 KiB is not followed. */
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/huge", F_END_STREAM);
	k = 0;
	nv[k++] = ":status";
	nv[k++] = "200";
	for (int i = 0; i < 40; i++) {
		nv[k++] = names[i];
		nv[k++] = big[i % 10];
	}
	nv[k] = NULL;
	big_block(&t, IN, 1, F_END_STREAM, nv);
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(r.errors, 1);
	assert_int_equal(r.drops[AGT_H2DROP_FRAMING], 1);
	assert_int_equal(ngot, 1);
	assert_int_equal(got[0].resp->truncated, 1);
	got_reset();
	run_end(&r, 1 << 30);
	h2w_fini(&t);
}

/* PING, PRIORITY, WINDOW_UPDATE and a frame of an unknown type between the frames of an
 * exchange change nothing; a frame over SETTINGS_MAX_FRAME_SIZE breaks the framing unless the
 * receiver announced a larger one. */
static void control_frames_and_frame_size(void **state)
{
	static const uint8_t mfs[6] = {0, 5, 0, 0, 0x80, 0}; /* MAX_FRAME_SIZE 32768 */
	static char body[20001];
	struct h2w_trace t;
	struct run r;

	(void)state;
	memset(body, 'b', 20000);
	for (int announce = 0; announce < 2; announce++) {
		h2w_init(&t);
		h2w_put(&t, EG, H2W_PREFACE, 24);
		h2w_frame(&t, EG, 0x4, 0, 0, NULL, 0);
		h2w_frame(&t, IN, 0x4, 0, 0, mfs, announce ? 6 : 0);
		h2w_frame(&t, IN, 0x4, 0x1, 0, NULL, 0);
		h2w_frame(&t, EG, 0x4, 0x1, 0, NULL, 0);
		req_path(&t, 1, "/ctl", 0);
		h2w_frame(&t, EG, 0x6, 0, 0, "pingping", 8);
		h2w_frame(&t, EG, 0x2, 0, 1, "\x00\x00\x00\x00\x20", 5);
		h2w_frame(&t, EG, 0xfa, 0x3, 1, "what is this", 12);
		h2w_data(&t, EG, 1, F_END_STREAM, "{}");
		h2w_frame(&t, IN, 0x6, 0x1, 0, "pingping", 8);
		h2w_frame(&t, IN, 0x8, 0, 1, "\x00\x01\x00\x00", 4);
		h2w_frame(&t, IN, 0x8, 0, 0, "\x00\x01\x00\x00", 4);
		resp_status(&t, 1, "200", 0);
		h2w_frame(&t, IN, 0xfa, 0, 0, NULL, 0);
		h2w_data(&t, IN, 1, F_END_STREAM, "ok");
		req_path(&t, 3, "/big", 0);
		h2w_data(&t, EG, 3, F_END_STREAM, body);
		got_reset();
		run_open(&r, 1 << 20);
		play(&r, &t, 0);
		assert_int_equal(ngot, 1);
		assert_string_equal((char *)got[0].req->body, "{}");
		assert_string_equal((char *)got[0].resp->body, "ok");
		assert_int_equal(r.errors, !announce);
		assert_int_equal(r.drops[AGT_H2DROP_FRAMING], !announce);
		got_reset();
		run_end(&r, 1 << 30);
		assert_int_equal(ngot, 1);
		assert_int_equal(got[0].req->body_len, announce ? 20000 : 0);
		assert_int_equal(got[0].req->truncated, !announce);
		got_reset();
		h2w_fini(&t);
	}
}

/* Gaps in frames whose payload is not needed are skipped exactly; a gap over a DATA frame's
 * padding length skips the frame; one in SETTINGS loses the direction. */
static void gaps_in_other_frames(void **state)
{
	struct h2w_trace t;
	struct run r;
	static const uint8_t padded[] = {5, 'a', 'b', 'c', 0, 0, 0, 0, 0};

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/g", F_END_STREAM);
	h2w_frame_hdr(&t, IN, 0x6, 0, 0, 8); /* PING */
	h2w_put(&t, IN, "pi", 2);
	h2w_gap(&t, IN, 4);
	h2w_put(&t, IN, "ng", 2);
	h2w_frame_hdr(&t, IN, 0x7, 0, 0, 20); /* GOAWAY: its last stream id missed */
	h2w_gap(&t, IN, 10);
	h2w_put(&t, IN, "0123456789", 10);
	resp_status(&t, 1, "200", 0);
	h2w_frame_hdr(&t, IN, 0x0, F_PADDED, 1, sizeof(padded));
	h2w_gap(&t, IN, 2); /* the padding length and 'a' */
	h2w_put(&t, IN, padded + 2, sizeof(padded) - 2);
	h2w_data(&t, IN, 1, F_END_STREAM, "end");
	h2w_frame_hdr(&t, EG, 0x4, 0, 0, 6); /* SETTINGS */
	h2w_gap(&t, EG, 6);
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(ngot, 1);
	assert_int_equal(got[0].resp->status, 200);
	assert_string_equal((char *)got[0].resp->body, "end");
	/* The padded frame's 8 bytes after the padding length count as body: which are padding
	 * is not known. */
	assert_int_equal(got[0].resp->body_seen, 8 + 3);
	assert_int_equal(got[0].resp->truncated, 1);
	/* Only the DATA gap lost anything of ours (the caller counts every gap's bytes). */
	assert_int_equal(r.drops[AGT_H2DROP_GAP_BODY], 1);
	assert_int_equal(r.drops[AGT_H2DROP_GAP_LOST], 1);
	assert_int_equal(total_drops(&r), 2);
	got_reset();
	run_end(&r, 1 << 30);
	h2w_fini(&t);
}

/* A response on a stream no request opened (a capture that lost the request side). */
static void unmatched_response(void **state)
{
	struct h2w_trace t;
	struct run r;

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/one", F_END_STREAM);
	resp_status(&t, 7, "200", 0);
	h2w_data(&t, IN, 7, F_END_STREAM, "whose?");
	resp_status(&t, 1, "200", F_END_STREAM);
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(r.drops[AGT_H2DROP_UNMATCHED], 1);
	assert_int_equal(total_drops(&r), 1);
	assert_int_equal(ngot, 1);
	assert_string_equal(got[0].req->url, "/one");
	got_reset();
	run_end(&r, 1 << 30);
	h2w_fini(&t);
}

/* More SETTINGS than are followed waiting for acknowledgement: the table size of the other
 * side's encoder is no longer known. */
static void settings_never_acknowledged(void **state)
{
	struct h2w_trace t;
	struct run r;

	(void)state;
	h2w_init(&t);
	h2w_open(&t);
	req_path(&t, 1, "/s", F_END_STREAM);
	for (int i = 0; i < 9; i++)
		h2w_frame(&t, EG, 0x4, 0, 0, NULL, 0);
	got_reset();
	run_open(&r, 1 << 20);
	play(&r, &t, 0);
	assert_int_equal(r.drops[AGT_H2DROP_HPACK], 1);
	assert_int_equal(ngot, 1);
	assert_null(got[0].resp);
	got_reset();
	run_end(&r, 1 << 30);
	h2w_fini(&t);
}

/* The first bytes captured can be the server's: its SETTINGS frame came in on a thread that
 * returned before the one that wrote the preface (Go's reader goroutine), or the capture began
 * after the preface. Such a connection is told apart by the server's first frame, and every
 * exchange on it is exact. */
static int nsx;
static char sx_url[8][16];
static void on_streams_exchange(void *ctx, const struct agt_proc_info *p, struct agt_http_msg *req,
				struct agt_http_msg *resp)
{
	(void)ctx;
	(void)p;
	if (nsx < 8)
		snprintf(sx_url[nsx], sizeof(sx_url[nsx]), "%s %d", req->url, resp ? resp->status : 0);
	nsx++;
	agt_http_msg_free(req);
	agt_http_msg_free(resp);
}

static void stream_drop(void *ctx, const char *reason, uint64_t v, int is_events)
{
	(void)is_events;
	if (v && strcmp(reason, "capture_gap_bytes"))
		*(uint64_t *)ctx += v;
}

static void ingress_first(void **state)
{
	static const uint8_t settings[] = {0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100};
	static const uint8_t empty[] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
	static const uint8_t ack[] = {0, 0, 0, 4, 1, 0, 0, 0, 0};
	static const uint8_t odd[] = {0, 0, 7, 4, 0, 0, 0, 0, 0};
	static const uint8_t stream1[] = {0, 0, 6, 4, 0, 0, 0, 0, 1};
	static const uint8_t headers[] = {0, 0, 6, 1, 4, 0, 0, 0, 1};
	static const char *const want[] = {"/five 200", "/three 201", "/one 202"};
	static struct agt_data e;
	struct agt_proc_info proc = {.pid = 10};
	struct agt_streams_out sout = {on_streams_exchange, NULL, NULL};
	struct agt_streams *st;
	struct h2w_trace t;
	struct run r;
	uint64_t lost = 0;

	(void)state;
	assert_int_equal(P->detect(settings, 9, IN), AGT_DETECT_YES);
	assert_int_equal(P->detect(settings, sizeof(settings), IN), AGT_DETECT_YES);
	assert_int_equal(P->detect(empty, 9, IN), AGT_DETECT_YES);
	for (size_t n = 0; n < 9; n++)
		assert_int_equal(P->detect(settings, n, IN), AGT_DETECT_MORE);
	assert_int_equal(P->detect(ack, 9, IN), AGT_DETECT_NO);
	assert_int_equal(P->detect(odd, 9, IN), AGT_DETECT_NO);
	assert_int_equal(P->detect(stream1, 9, IN), AGT_DETECT_NO);
	assert_int_equal(P->detect(headers, 9, IN), AGT_DETECT_NO);
	assert_int_equal(P->detect((const uint8_t *)"HTTP/1.1 200 OK\r\n", 17, IN), AGT_DETECT_NO);
	assert_int_equal(P->detect((const uint8_t *)"\x17\x03\x03\x00\x20", 5, IN), AGT_DETECT_NO);

	interleaved_trace(&t);
	assert_int_equal(t.c[1].dir, IN);
	assert_memory_equal(t.c[1].b, settings, 4);
	/* The server's SETTINGS before the preface, through the protocol. */
	got_reset();
	run_open(&r, 1 << 20);
	play_range(&r, &t, 1, 2, 0);
	play_range(&r, &t, 0, 1, 0);
	play_range(&r, &t, 2, t.n, 0);
	assert_int_equal(r.errors, 0);
	assert_int_equal(total_drops(&r), 0);
	assert_int_equal(ngot, 3);
	got_reset();
	run_end(&r, 1 << 30);
	/* No preface at all: the capture began after it. */
	run_open(&r, 1 << 20);
	play_range(&r, &t, 1, 2, 0);
	assert_int_equal(P->feed(r.conn, EG, t.c[0].b + 24, t.c[0].len - 24, t.c[0].ts, 7), 0);
	play_range(&r, &t, 2, t.n, 0);
	assert_int_equal(r.errors, 0);
	assert_int_equal(total_drops(&r), 0);
	assert_int_equal(ngot, 3);
	assert_string_equal(got[0].req->url, "/five");
	got_reset();
	run_end(&r, 1 << 30);
	/* Through the stream layer, which asks the protocols on the first bytes it gets (the
	 * server's), byte by byte. */
	st = agt_streams_new(1 << 20, 4, &sout);
	nsx = 0;
	for (int k = 0; k < t.n; k++) {
		const struct h2w_chunk *c = &t.c[k == 0 ? 1 : k == 1 ? 0 : k];

		for (size_t off = 0; off < c->len; off++) {
			memset(&e, 0, offsetof(struct agt_data, data));
			e.h.kind = AGT_EV_DATA;
			e.h.pid = 10;
			e.h.tid = c->tid;
			e.h.ts_ns = c->ts;
			e.conn = 0x5551;
			e.dir = (uint8_t)c->dir;
			e.call_len = c->len;
			e.captured = c->len;
			e.offset = off;
			e.len = 1;
			e.data[0] = c->b[off];
			agt_streams_feed(st, &proc, &e);
		}
	}
	assert_int_equal(nsx, 3);
	for (int i = 0; i < 3; i++)
		assert_string_equal(sx_url[i], want[i]);
	agt_streams_drops(st, stream_drop, &lost);
	assert_int_equal(lost, 0);
	agt_streams_free(st);
	h2w_fini(&t);
}

/* ---- every provider parser works the same over HTTP/2 as over HTTP/1.1 ---- */

/* The exchanges the official SDKs had with the test server (tests/fixtures/llm/PROVIDER/NAME):
 * Chat Completions, Responses, Anthropic Messages, Ollama, Gemini (AI Studio and Vertex), plain,
 * SSE and NDJSON. */
static const char *const llm_fixtures[] = {
    "openai/chat-plain-call",	    "openai/chat-stream-call",
    "openai/chat-loop-answer",	    "openai/responses-orchestrator-call",
    "openai/responses-expert-answer", "openai/responses-stream-orchestrator-transfer",
    "openai/responses-stream-reporter-answer",
    "anthropic/messages-plain-call", "anthropic/messages-stream-call",
    "anthropic/messages-loop-answer", "ollama/chat-plain-call",
    "ollama/chat-stream-call",	    "gemini/studio-plain-call",
    "gemini/studio-sse-call",	    "gemini/studio-array-answer",
    "gemini/vertex-sse-call",	    "gemini/studio-error",
};

struct fixture {
	char path[256], ctype[64];
	int status;
	char *req, *resp;
	size_t req_len, resp_len;
};

static void meta_str(const char *meta, const char *key, char *out, size_t n)
{
	const char *p = strstr(meta, key), *e;

	assert_non_null(p);
	p = strchr(p + strlen(key), '"');
	assert_non_null(p);
	e = strchr(++p, '"');
	snprintf(out, n, "%.*s", (int)(e - p), p);
}

static void fixture_load(const char *name, struct fixture *f)
{
	char path[256];
	size_t len;
	char *meta;

	snprintf(path, sizeof(path), "tests/fixtures/llm/%s.meta.json", name);
	assert_non_null(meta = agt_read_file(path, 1 << 20, &len));
	meta_str(meta, "\"path\":", f->path, sizeof(f->path));
	meta_str(meta, "\"content_type\":", f->ctype, sizeof(f->ctype));
	f->status = atoi(strstr(meta, "\"status\":") + 9);
	free(meta);
	snprintf(path, sizeof(path), "tests/fixtures/llm/%s.request.json", name);
	assert_non_null(f->req = agt_read_file(path, 64u << 20, &f->req_len));
	snprintf(path, sizeof(path), "tests/fixtures/llm/%s.response", name);
	assert_non_null(f->resp = agt_read_file(path, 64u << 20, &f->resp_len));
}

/* A body as DATA frames of awkward sizes (a byte, then primes: SSE events and JSON tokens cut
 * anywhere), END_STREAM on the last. */
static void data_frames(struct h2w_trace *t, int dir, uint32_t sid, const char *b, size_t n)
{
	static const size_t sizes[] = {1, 7, 509, 2039, 97, 4093};
	size_t off = 0;

	for (int i = 0; off < n; i++) {
		size_t k = sizes[i % 6] < n - off ? sizes[i % 6] : n - off;

		if (i % 3 == 2)
			h2w_chunk(t, dir); /* a new read or write now and then */
		h2w_frame(t, dir, 0x0, off + k == n ? F_END_STREAM : 0, sid, b + off, k);
		off += k;
	}
}

/* The exchange over HTTP/2 (stream sid of a connection that may carry others) and over
 * HTTP/1.1, each through its protocol module; the exchanges it handed over. */
static void h2_of(const struct fixture *f, struct h2w_trace *t, uint32_t sid)
{
	char status[8], clen[24];
	const char *const req[] = {":method", "POST", ":scheme", "https", ":authority",
				   "api.example.com", ":path", f->path, "content-type",
				   "application/json", "user-agent", "sdk/1.0", NULL};
	const char *const resp[] = {":status", status, "content-type", f->ctype,
				    "content-length", clen, NULL};

	snprintf(status, sizeof(status), "%d", f->status);
	snprintf(clen, sizeof(clen), "%zu", f->resp_len);
	h2w_headers(t, EG, sid, 0, req);
	data_frames(t, EG, sid, f->req, f->req_len);
	h2w_headers(t, IN, sid, 0, resp);
	data_frames(t, IN, sid, f->resp, f->resp_len);
}

static void h1_exchange(const struct fixture *f, struct xch *x)
{
	uint64_t drops[64] = {0};
	void *c = agt_proto_http1.open(NULL, 10, 64u << 20, drops, &out);
	char head[1024];
	int n;

	assert_non_null(c);
	n = snprintf(head, sizeof(head),
		     "POST %s HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: "
		     "application/json\r\nUser-Agent: sdk/1.0\r\nContent-Length: %zu\r\n\r\n",
		     f->path, f->req_len);
	assert_int_equal(agt_proto_http1.feed(c, EG, (uint8_t *)head, n, 1000, 10), 0);
	assert_int_equal(agt_proto_http1.feed(c, EG, (uint8_t *)f->req, f->req_len, 1001, 10), 0);
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
		     f->status, f->ctype, f->resp_len);
	assert_int_equal(agt_proto_http1.feed(c, IN, (uint8_t *)head, n, 2000, 10), 0);
	assert_int_equal(agt_proto_http1.feed(c, IN, (uint8_t *)f->resp, f->resp_len, 2001, 10),
			 0);
	agt_proto_http1.close(c, 3000);
	agt_proto_http1.free(c);
	assert_int_equal(ngot, 1);
	*x = got[0];
	ngot = 0;
}

static void assert_llm_same(const struct agt_llm *a, const struct agt_llm *b)
{
	assert_string_equal(a->provider, b->provider);
	assert_string_equal(a->api, b->api);
	assert_string_equal(a->req_model, b->req_model);
	assert_string_equal(a->resp_model, b->resp_model);
	assert_string_equal(a->resp_id, b->resp_id);
	assert_int_equal(a->input_tokens, b->input_tokens);
	assert_int_equal(a->output_tokens, b->output_tokens);
	assert_int_equal(a->cached_tokens, b->cached_tokens);
	assert_int_equal(a->stream, b->stream);
	assert_int_equal(a->nfinish, b->nfinish);
	for (int i = 0; i < a->nfinish; i++)
		assert_string_equal(a->finish[i], b->finish[i]);
	assert_int_equal(a->ncalls, b->ncalls);
	for (int i = 0; i < a->ncalls; i++) {
		assert_string_equal(a->calls[i].id, b->calls[i].id);
		assert_string_equal(a->calls[i].name, b->calls[i].name);
		assert_string_equal(a->calls[i].arguments ? a->calls[i].arguments : "",
				    b->calls[i].arguments ? b->calls[i].arguments : "");
	}
	assert_string_equal(a->text ? a->text : "", b->text ? b->text : "");
	assert_string_equal(a->error_type, b->error_type);
	assert_string_equal(a->error_message ? a->error_message : "",
			    b->error_message ? b->error_message : "");
	assert_int_equal(a->parse_failed, b->parse_failed);
	assert_int_equal(a->incomplete, b->incomplete);
	assert_int_equal(a->prefix_hash, b->prefix_hash);
	assert_int_equal(a->system_hash, b->system_hash);
	assert_int_equal(a->nresults, b->nresults);
	assert_int_equal(a->noffered, b->noffered);
}

static void parse(struct xch *x, struct agt_llm *l)
{
	assert_int_equal(agt_http_decode_body(x->req, 64u << 20), 0);
	assert_int_equal(agt_http_decode_body(x->resp, 64u << 20), 0);
	assert_int_equal(agt_llm_parse(x->req, x->resp, l), 0);
}

/* Each fixture alone on a connection (whole and fed 3 bytes at a time), then all of them on one
 * connection as concurrent streams whose frames interleave: every parse equals HTTP/1.1's. */
static void provider_fixtures_same_over_h2(void **state)
{
	enum { N = sizeof(llm_fixtures) / sizeof(llm_fixtures[0]) };
	struct fixture fx[N];
	struct agt_llm h1[N];
	struct h2w_trace all;

	(void)state;
	got_reset();
	for (int i = 0; i < N; i++) {
		struct xch x;

		print_message("%s\n", llm_fixtures[i]);
		fixture_load(llm_fixtures[i], &fx[i]);
		h1_exchange(&fx[i], &x);
		parse(&x, &h1[i]);
		if (!strcmp(llm_fixtures[i], "gemini/studio-error"))
			assert_string_not_equal(h1[i].error_type, "");
		else
			assert_true(h1[i].input_tokens > 0);
		agt_http_msg_free(x.req);
		agt_http_msg_free(x.resp);
		for (size_t step = 0; step <= 3; step += 3) {
			struct h2w_trace t;
			struct run r;
			struct agt_llm l;

			h2w_init(&t);
			h2w_open(&t);
			h2_of(&fx[i], &t, 1);
			run_open(&r, 64u << 20);
			play(&r, &t, step);
			run_end(&r, 9000);
			h2w_fini(&t);
			assert_int_equal(r.errors, 0);
			assert_int_equal(total_drops(&r), 0);
			assert_int_equal(ngot, 1);
			assert_non_null(got[0].resp);
			assert_string_equal(got[0].req->url, fx[i].path);
			assert_int_equal(got[0].resp->status, fx[i].status);
			parse(&got[0], &l);
			assert_llm_same(&l, &h1[i]);
			agt_llm_free(&l);
			got_reset();
		}
	}

	/* All at once on one connection (one HPACK context per direction), stream 2i+1 each:
	 * every request's HEADERS, then their DATA frames dealt out round-robin a frame each; the
	 * responses' HEADERS in the reverse order, then their DATA frames likewise. */
	{
		struct run r;

		h2w_init(&all);
		h2w_open(&all);
		for (int i = 0; i < N; i++) {
			const char *const req[] = {":method", "POST", ":scheme", "https",
						   ":authority", "api.example.com", ":path",
						   fx[i].path, "content-type", "application/json",
						   "user-agent", "sdk/1.0", NULL};

			h2w_headers(&all, EG, 2 * i + 1, 0, req);
		}
		for (size_t round = 0, busy = 1; busy; round++) {
			busy = 0;
			for (int i = 0; i < N; i++) {
				size_t a = round * 1021;

				if (a >= fx[i].req_len)
					continue;
				busy = 1;
				size_t k = fx[i].req_len - a < 1021 ? fx[i].req_len - a : 1021;

				h2w_chunk(&all, EG);
				h2w_frame(&all, EG, 0x0, a + k == fx[i].req_len ? F_END_STREAM : 0,
					  2 * i + 1, fx[i].req + a, k);
			}
		}
		for (int k = 0; k < N; k++) {
			int i = N - 1 - k;
			char status[8], clen[24];
			const char *const resp[] = {":status", status, "content-type", fx[i].ctype,
						    "content-length", clen, NULL};

			snprintf(status, sizeof(status), "%d", fx[i].status);
			snprintf(clen, sizeof(clen), "%zu", fx[i].resp_len);
			h2w_headers(&all, IN, 2 * i + 1, 0, resp);
		}
		for (size_t round = 0, busy = 1; busy; round++) {
			busy = 0;
			for (int k = 0; k < N; k++) {
				int i = N - 1 - k;
				size_t a = round * 389;

				if (a >= fx[i].resp_len)
					continue;
				busy = 1;
				size_t n = fx[i].resp_len - a < 389 ? fx[i].resp_len - a : 389;

				h2w_chunk(&all, IN);
				h2w_frame(&all, IN, 0x0, a + n == fx[i].resp_len ? F_END_STREAM : 0,
					  2 * i + 1, fx[i].resp + a, n);
			}
		}
		run_open(&r, 64u << 20);
		play(&r, &all, 5);
		run_end(&r, 9000);
		h2w_fini(&all);
		assert_int_equal(r.errors, 0);
		assert_int_equal(total_drops(&r), 0);
		assert_int_equal(ngot, N);
		for (int g = 0; g < ngot; g++) {
			struct agt_llm l;
			int i;

			/* several fixtures share a path: find the one with this request body */
			for (i = 0; i < N; i++)
				if (!strcmp(got[g].req->url, fx[i].path) &&
				    got[g].req->body_len == fx[i].req_len &&
				    !memcmp(got[g].req->body, fx[i].req, fx[i].req_len))
					break;
			assert_true(i < N);
			parse(&got[g], &l);
			assert_llm_same(&l, &h1[i]);
			agt_llm_free(&l);
		}
		got_reset();
	}
	for (int i = 0; i < N; i++) {
		agt_llm_free(&h1[i]);
		free(fx[i].req);
		free(fx[i].resp);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(detect_preface),
	    cmocka_unit_test(post_json_and_sse),
	    cmocka_unit_test(sse_50_frames_events),
	    cmocka_unit_test(session_split_anywhere),
	    cmocka_unit_test(hpack_dynamic_table_reuse),
	    cmocka_unit_test(padding_and_priority),
	    cmocka_unit_test(continuation_frames),
	    cmocka_unit_test(interleaved_out_of_order),
	    cmocka_unit_test(trailers_appended),
	    cmocka_unit_test(rst_by_client_mid_response),
	    cmocka_unit_test(close_mid_response_keeps_what_arrived),
	    cmocka_unit_test(rst_by_server_before_response),
	    cmocka_unit_test(gap_inside_data),
	    cmocka_unit_test(gap_inside_header_block),
	    cmocka_unit_test(grpc_counted_not_delivered),
	    cmocka_unit_test(body_over_cap),
	    cmocka_unit_test(close_with_open_streams),
	    cmocka_unit_test(garbage_after_preface),
	    cmocka_unit_test(ingress_lost_mid_upload),
	    cmocka_unit_test(frame_inside_header_block),
	    cmocka_unit_test(settings_header_table_size),
	    cmocka_unit_test(interim_response),
	    cmocka_unit_test(goaway_hands_over_unprocessed),
	    cmocka_unit_test(stream_cap),
	    cmocka_unit_test(push_promise_ignored),
	    cmocka_unit_test(header_limits),
	    cmocka_unit_test(control_frames_and_frame_size),
	    cmocka_unit_test(gaps_in_other_frames),
	    cmocka_unit_test(unmatched_response),
	    cmocka_unit_test(settings_never_acknowledged),
	    cmocka_unit_test(ingress_first),
	    cmocka_unit_test(provider_fixtures_same_over_h2),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	got_reset();
	free(got);
	return rc;
}
