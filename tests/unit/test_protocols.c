/* HTTP/1.1 framing, SSE, the connection layer (gaps, HTTP/2) and redaction, on synthetic bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <brotli/encode.h>
#include <zlib.h>
#include "base/redact.h"
#include "protocols/http1.h"
#include "streams/conn.h"

static struct agt_http_msg *msgs[16];
static int nmsgs;

static void collect(void *ctx, struct agt_http_msg *m)
{
	(void)ctx;
	if (nmsgs < 16)
		msgs[nmsgs++] = m;
	else
		agt_http_msg_free(m);
}

static void reset_msgs(void)
{
	for (int i = 0; i < nmsgs; i++)
		agt_http_msg_free(msgs[i]);
	nmsgs = 0;
}

static void feed_str(struct agt_http_dir *d, const char *s, uint64_t ts)
{
	assert_int_equal(agt_http_dir_feed(d, (const uint8_t *)s, strlen(s), ts, 7), 0);
}

static void pipelined_requests_split_anywhere(void **state)
{
	(void)state;
	const char *wire =
	    "POST /v1/chat/completions HTTP/1.1\r\nHost: api\r\nContent-Length: 5\r\n"
	    "Authorization: Bearer sk-xyz\r\n\r\nhello"
	    "GET /health HTTP/1.1\r\nHost: api\r\n\r\n";
	size_t n = strlen(wire);

	/* Every split point gives the same two messages. */
	for (size_t cut = 1; cut < n; cut += 7) {
		struct agt_http_dir *d = agt_http_dir_new(1 << 20, collect, NULL);

		assert_int_equal(agt_http_dir_feed(d, (const uint8_t *)wire, cut, 1, 7), 0);
		assert_int_equal(agt_http_dir_feed(d, (const uint8_t *)wire + cut, n - cut, 2, 7),
				 0);
		assert_int_equal(nmsgs, 2);
		assert_string_equal(msgs[0]->method, "POST");
		assert_string_equal(msgs[0]->url, "/v1/chat/completions");
		assert_int_equal(msgs[0]->body_len, 5);
		assert_memory_equal(msgs[0]->body, "hello", 5);
		assert_string_equal(agt_http_header(msgs[0], "authorization"), "Bearer sk-xyz");
		assert_string_equal(msgs[1]->method, "GET");
		assert_int_equal(msgs[1]->body_len, 0);
		reset_msgs();
		agt_http_dir_free(d);
	}
}

static void chunked_gzip_response(void **state)
{
	(void)state;
	const char *json = "{\"id\":\"x\",\"choices\":[]}";
	uint8_t gz[256];
	char wire[1024];
	size_t used;
	z_stream z = {0};
	struct agt_http_dir *d = agt_http_dir_new(1 << 20, collect, NULL);

	deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (uint8_t *)json;
	z.avail_in = strlen(json);
	z.next_out = gz;
	z.avail_out = sizeof(gz);
	deflate(&z, Z_FINISH);
	deflateEnd(&z);
	used = snprintf(wire, sizeof(wire),
			"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: "
			"chunked\r\n\r\n%zx\r\n",
			(size_t)z.total_out);
	memcpy(wire + used, gz, z.total_out);
	used += z.total_out;
	used += snprintf(wire + used, sizeof(wire) - used, "\r\n0\r\n\r\n");
	assert_int_equal(agt_http_dir_feed(d, (uint8_t *)wire, used, 5, 7), 0);
	assert_int_equal(nmsgs, 1);
	assert_int_equal(msgs[0]->status, 200);
	assert_int_equal(agt_http_decode_body(msgs[0], 1 << 20), 0);
	assert_int_equal(msgs[0]->body_len, strlen(json));
	assert_string_equal((char *)msgs[0]->body, json);
	assert_int_equal(msgs[0]->truncated, 0);
	reset_msgs();
	agt_http_dir_free(d);
}

static void brotli_response(void **state)
{
	(void)state;
	const char *json = "{\"id\":\"resp_1\",\"output\":[],\"pad\":\"aaaaaaaaaaaaaaaaaaaaaaaa\"}";
	uint8_t br[256];
	size_t brlen = sizeof(br);
	char wire[512];
	size_t used;
	struct agt_http_dir *d = agt_http_dir_new(1 << 20, collect, NULL);

	assert_true(BrotliEncoderCompress(9, 22, BROTLI_MODE_TEXT, strlen(json),
					  (const uint8_t *)json, &brlen, br));
	used = snprintf(wire, sizeof(wire),
			"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: %zu\r\n\r\n",
			brlen);
	memcpy(wire + used, br, brlen);
	assert_int_equal(agt_http_dir_feed(d, (uint8_t *)wire, used + brlen, 5, 7), 0);
	assert_int_equal(nmsgs, 1);
	assert_int_equal(agt_http_decode_body(msgs[0], 1 << 20), 0);
	assert_string_equal((char *)msgs[0]->body, json);
	assert_int_equal(msgs[0]->truncated, 0);
	/* Cut in the middle: what decodes is kept, and the message says it was cut. */
	msgs[0]->body_len = brlen;
	memcpy(msgs[0]->body, br, brlen);
	msgs[0]->body_len = brlen / 2;
	agt_http_decode_body(msgs[0], 1 << 20);
	assert_int_equal(msgs[0]->truncated, 1);
	reset_msgs();
	agt_http_dir_free(d);
}

static void body_cap_and_gap(void **state)
{
	(void)state;
	struct agt_http_dir *d = agt_http_dir_new(8, collect, NULL);

	/* Over the cap: 8 bytes kept, all 20 counted, marked truncated. */
	feed_str(d, "POST /a HTTP/1.1\r\nContent-Length: 20\r\n\r\n0123456789abcdefghij", 1);
	assert_int_equal(nmsgs, 1);
	assert_int_equal(msgs[0]->body_len, 8);
	assert_int_equal(msgs[0]->body_seen, 20);
	assert_int_equal(msgs[0]->truncated, 1);
	reset_msgs();
	/* A gap inside a body of known length: skipped, and the next message parses. */
	feed_str(d, "POST /b HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123", 2);
	agt_http_dir_gap(d, 6, 3);
	feed_str(d, "GET /c HTTP/1.1\r\n\r\n", 4);
	assert_int_equal(nmsgs, 2);
	assert_string_equal(msgs[0]->url, "/b");
	assert_int_equal(msgs[0]->truncated, 1);
	assert_int_equal(msgs[0]->body_seen, 10);
	assert_string_equal(msgs[1]->url, "/c");
	assert_int_equal(msgs[1]->truncated, 0);
	reset_msgs();
	/* A gap in the headers: what there is ends, and parsing resumes at the next message. */
	feed_str(d, "POST /d HTTP/1.1\r\nConte", 5);
	agt_http_dir_gap(d, 100, 6);
	assert_int_equal(agt_http_dir_feed(d, (const uint8_t *)"garbage", 7, 7, 7), -1);
	feed_str(d, "GET /e HTTP/1.1\r\n\r\n", 8);
	assert_int_equal(nmsgs, 1);
	assert_string_equal(msgs[0]->url, "/e");
	reset_msgs();
	agt_http_dir_free(d);
}

struct sse_seen {
	char ev[8][32], data[8][64];
	int n;
};

static void sse_cb(void *ctx, const char *event, const char *data)
{
	struct sse_seen *s = ctx;

	snprintf(s->ev[s->n], 32, "%s", event);
	snprintf(s->data[s->n++], 64, "%s", data);
}

static void sse_events(void **state)
{
	(void)state;
	const char *body = ": comment\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\n"
			   "data: line1\ndata: line2\n\nevent: x\ndata:nospace\n\ndata: cut";
	struct sse_seen s = {0};

	assert_int_equal(agt_sse_parse(body, strlen(body), sse_cb, &s), 4);
	assert_string_equal(s.ev[0], "message_start");
	assert_string_equal(s.data[0], "{\"a\":1}");
	assert_string_equal(s.ev[1], "message");
	assert_string_equal(s.data[1], "line1\nline2");
	assert_string_equal(s.data[2], "nospace");
	assert_string_equal(s.data[3], "cut");
}

static int nexch;
static void on_exchange(void *ctx, const struct agt_proc_info *p, struct agt_http_msg *req,
			struct agt_http_msg *resp)
{
	(void)ctx;
	(void)p;
	nexch++;
	assert_non_null(req);
	agt_http_msg_free(req);
	agt_http_msg_free(resp);
}

static void data_event(struct agt_data *e, uint64_t conn, int dir, const char *s, uint64_t call_len,
		       uint64_t off)
{
	memset(e, 0, offsetof(struct agt_data, data));
	e->h.kind = AGT_EV_DATA;
	e->h.pid = 10;
	e->h.tid = 10;
	e->h.ts_ns = 100;
	e->conn = conn;
	e->dir = dir;
	e->len = strlen(s);
	e->call_len = call_len ? call_len : e->len;
	e->offset = off;
	memcpy(e->data, s, e->len);
}

/* One drop counter of the stream layer or a protocol, by its name. */
struct named {
	const char *name;
	uint64_t v;
};
static void find_drop(void *ctx, const char *reason, uint64_t v, int is_events)
{
	struct named *n = ctx;

	(void)is_events;
	if (!strcmp(reason, n->name))
		n->v = v;
}
static uint64_t drop(const struct agt_streams *s, const char *name)
{
	struct named n = {name, (uint64_t)-1};

	agt_streams_drops(s, find_drop, &n);
	return n.v;
}

static void streams_pair_and_count(void **state)
{
	(void)state;
	static struct agt_data e;
	struct agt_proc_info proc = {.pid = 10};
	struct agt_streams_out out = {on_exchange, NULL, NULL};
	struct agt_streams *s = agt_streams_new(1 << 20, 4, &out);

	nexch = 0;
	data_event(&e, 1, AGT_DIR_EGRESS, "GET /a HTTP/1.1\r\n\r\n", 0, 0);
	agt_streams_feed(s, &proc, &e);
	data_event(&e, 1, AGT_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0);
	agt_streams_feed(s, &proc, &e);
	assert_int_equal(nexch, 1);
	/* HTTP/2 prior knowledge: recognised as HTTP/2 (its own tests cover the framing). */
	data_event(&e, 2, AGT_DIR_EGRESS, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, 0);
	agt_streams_feed(s, &proc, &e);
	assert_int_equal(drop(s, "unknown_protocol"), 0);
	assert_int_equal(drop(s, "http2_framing_error"), 0);
	/* A response nobody asked for (attached mid-exchange). */
	data_event(&e, 3, AGT_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0);
	agt_streams_feed(s, &proc, &e);
	assert_int_equal(drop(s, "response_without_request"), 1);
	/* A chunk at offset 100 of a call whose start was lost: 100 gap bytes. */
	data_event(&e, 1, AGT_DIR_EGRESS, "xyz", 200, 100);
	agt_streams_feed(s, &proc, &e);
	assert_int_equal(drop(s, "capture_gap_bytes"), 100);
	/* Not HTTP at all: no protocol claims the connection. */
	data_event(&e, 4, AGT_DIR_EGRESS, "\x16\x03\x01 binary", 0, 0);
	agt_streams_feed(s, &proc, &e);
	assert_int_equal(drop(s, "unknown_protocol"), 1);
	/* A request left unanswered is handed over when the process goes. */
	data_event(&e, 5, AGT_DIR_EGRESS, "GET /b HTTP/1.1\r\n\r\n", 0, 0);
	agt_streams_feed(s, &proc, &e);
	assert_int_equal(nexch, 1);
	agt_streams_close(s, 10, 200);
	assert_int_equal(nexch, 2);
	agt_streams_free(s);
}

/* A process dies inside a chunked SSE response: the stream layer hands over what arrived of it
 * (incomplete, from the process that moved it, ending at its last byte), not an unanswered
 * request. */
static struct agt_http_msg *cut_req, *cut_resp;
static void keep_exchange(void *ctx, const struct agt_proc_info *p, struct agt_http_msg *req,
			  struct agt_http_msg *resp)
{
	(void)ctx;
	(void)p;
	cut_req = req;
	cut_resp = resp;
}

/* HTTP/1.1 upgraded to cleartext HTTP/2 (Upgrade: h2c, 101, then the response as stream 1),
 * the server's bytes split at every offset: one exchange, the HTTP/1.1 request with HTTP/2's
 * response, nothing dropped. */
static int nup;
static void upgraded_exchange(void *ctx, const struct agt_proc_info *p, struct agt_http_msg *req,
			      struct agt_http_msg *resp)
{
	(void)ctx;
	(void)p;
	nup++;
	assert_non_null(req);
	assert_non_null(resp);
	assert_string_equal(req->method, "POST");
	assert_string_equal(req->url, "/v1/chat/completions");
	assert_int_equal(req->body_len, 2);
	assert_int_equal(resp->status, 200);
	assert_int_equal(resp->body_len, 7);
	assert_memory_equal(resp->body, "{\"a\":1}", 7);
	assert_int_equal(resp->truncated, 0);
	assert_int_equal(resp->incomplete, 0);
	agt_http_msg_free(req);
	agt_http_msg_free(resp);
}

static void bin_event(struct agt_data *e, int dir, const uint8_t *p, size_t n)
{
	memset(e, 0, offsetof(struct agt_data, data));
	e->h.kind = AGT_EV_DATA;
	e->h.pid = e->h.tid = 10;
	e->h.ts_ns = 100;
	e->conn = 7;
	e->dir = dir;
	e->len = e->call_len = n;
	memcpy(e->data, p, n);
}

static void h2c_upgrade_split_anywhere(void **state)
{
	(void)state;
	static struct agt_data e;
	static const char req[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
				  "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
				  "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
				  "Content-Length: 2\r\n\r\n{}";
	static const uint8_t in[] =
	    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
	    "\0\0\0\x04\0\0\0\0\0"		 /* SETTINGS */
	    "\0\0\x01\x01\x04\0\0\0\x01\x88"	 /* HEADERS, stream 1: :status 200 */
	    "\0\0\x07\0\x01\0\0\0\x01{\"a\":1}"; /* DATA, stream 1, END_STREAM */
	static const uint8_t eg[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
				    "\0\0\0\x04\0\0\0\0\0"    /* SETTINGS */
				    "\0\0\0\x04\x01\0\0\0\0"; /* its acknowledgement */
	struct agt_proc_info proc = {.pid = 10};
	struct agt_streams_out out = {upgraded_exchange, NULL, NULL};

	for (size_t k = 1; k < sizeof(in) - 1; k++) {
		struct agt_streams *s = agt_streams_new(1 << 20, 4, &out);

		nup = 0;
		bin_event(&e, AGT_DIR_EGRESS, (const uint8_t *)req, sizeof(req) - 1);
		agt_streams_feed(s, &proc, &e);
		bin_event(&e, AGT_DIR_INGRESS, in, k);
		agt_streams_feed(s, &proc, &e);
		bin_event(&e, AGT_DIR_INGRESS, in + k, sizeof(in) - 1 - k);
		agt_streams_feed(s, &proc, &e);
		bin_event(&e, AGT_DIR_EGRESS, eg, sizeof(eg) - 1);
		agt_streams_feed(s, &proc, &e);
		assert_int_equal(nup, 1);
		agt_streams_close(s, 10, 200);
		assert_int_equal(nup, 1);
		for (const char *const *n =
			 (const char *const[]){"http2_framing_error", "http2_unmatched_responses",
					       "http2_ignored_bytes", "http1_resync", "not_http",
					       "unknown_protocol", NULL};
		     *n; n++)
			assert_int_equal(drop(s, *n), 0);
		agt_streams_free(s);
	}
}

static void response_cut_by_death_is_handed_over(void **state)
{
	(void)state;
	static struct agt_data e;
	struct agt_proc_info proc = {.pid = 10};
	struct agt_streams_out out = {keep_exchange, NULL, NULL};
	struct agt_streams *s = agt_streams_new(1 << 20, 4, &out);

	cut_req = cut_resp = NULL;
	data_event(&e, 1, AGT_DIR_EGRESS, "POST /v1/chat/completions HTTP/1.1\r\n"
					  "Content-Length: 2\r\n\r\n{}", 0, 0);
	agt_streams_feed(s, &proc, &e);
	data_event(&e, 1, AGT_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
					   "Transfer-Encoding: chunked\r\n\r\n", 0, 0);
	e.h.ts_ns = 200;
	agt_streams_feed(s, &proc, &e);
	data_event(&e, 1, AGT_DIR_INGRESS, "f\r\ndata: {\"a\":1}\n\n\r\n", 0, 0);
	e.h.ts_ns = 300;
	agt_streams_feed(s, &proc, &e);
	assert_null(cut_req);
	agt_streams_close(s, 10, 5000);
	assert_non_null(cut_req);
	assert_non_null(cut_resp);
	assert_int_equal(cut_resp->incomplete, 1);
	assert_int_equal(cut_resp->status, 200);
	assert_int_equal(cut_resp->end_ns, 300);
	assert_int_equal(cut_resp->first_body_ns, 300);
	assert_int_equal(cut_resp->pid, 10);
	assert_string_equal((char *)cut_resp->body, "data: {\"a\":1}\n\n");
	agt_http_msg_free(cut_req);
	agt_http_msg_free(cut_resp);
	agt_streams_free(s);
}

/* The exchanges of a stream layer, kept in order: request URL and response status (0: none)
 * and whether the response was cut. */
static struct {
	char url[32];
	int status, incomplete;
} xs[16];
static int nxs;
static void list_exchange(void *ctx, const struct agt_proc_info *p, struct agt_http_msg *req,
			  struct agt_http_msg *resp)
{
	(void)ctx;
	(void)p;
	if (nxs < 16) {
		snprintf(xs[nxs].url, sizeof(xs[nxs].url), "%s", req->url);
		xs[nxs].status = resp ? resp->status : 0;
		xs[nxs].incomplete = resp ? resp->incomplete : 0;
		nxs++;
	}
	agt_http_msg_free(req);
	agt_http_msg_free(resp);
}

static void feed_call(struct agt_streams *s, const struct agt_proc_info *proc, uint64_t conn,
		      int dir, const char *str)
{
	static struct agt_data e;

	data_event(&e, conn, dir, str, 0, 0);
	agt_streams_feed(s, proc, &e);
}

/* The library frees a connection (SSL_free) and the next one gets the same address: what the
 * old one left open ends with it, and the new one starts clean, however the old one ended. */
static void closed_connection_is_not_continued(void **state)
{
	(void)state;
	struct agt_proc_info proc = {.pid = 10};
	struct agt_streams_out out = {list_exchange, NULL, NULL};
	struct agt_streams *s = agt_streams_new(1 << 20, 4, &out);

	nxs = 0;
	feed_call(s, &proc, 7, AGT_DIR_EGRESS, "GET /a HTTP/1.1\r\n\r\n");
	feed_call(s, &proc, 7, AGT_DIR_INGRESS,
		  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
	assert_int_equal(nxs, 0);
	agt_streams_close_conn(s, 10, 7, 500);
	assert_int_equal(nxs, 1); /* the cut response answers its own request */
	assert_string_equal(xs[0].url, "/a");
	assert_int_equal(xs[0].status, 200);
	assert_int_equal(xs[0].incomplete, 1);
	agt_streams_close_conn(s, 10, 7, 600); /* SSL_shutdown then SSL_free: nothing left */
	agt_streams_close_conn(s, 11, 9, 600); /* never seen: nothing made */
	feed_call(s, &proc, 7, AGT_DIR_EGRESS, "GET /b HTTP/1.1\r\n\r\n");
	feed_call(s, &proc, 7, AGT_DIR_INGRESS, "HTTP/1.1 201 OK\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(nxs, 2);
	assert_string_equal(xs[1].url, "/b");
	assert_int_equal(xs[1].status, 201);
	assert_int_equal(drop(s, "conns_closed"), 1);
	assert_int_equal(drop(s, "response_without_request"), 0);
	agt_streams_free(s);
}

/* One response breaks its framing on a keep-alive connection (a chunk size that is no number):
 * counted once, handed over cut with its own request, and the next exchanges pair exactly;
 * a response broken inside its headers leaves its request unanswered, not paired with the
 * next one's. */
static void framing_error_resynchronises(void **state)
{
	(void)state;
	struct agt_proc_info proc = {.pid = 10};
	struct agt_streams_out out = {list_exchange, NULL, NULL};
	struct agt_streams *s = agt_streams_new(1 << 20, 4, &out);
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

	nxs = 0;
	feed_call(s, &proc, 1, AGT_DIR_EGRESS, "GET /1 HTTP/1.1\r\n\r\n");
	feed_call(s, &proc, 1, AGT_DIR_INGRESS, ok);
	feed_call(s, &proc, 1, AGT_DIR_EGRESS, "GET /2 HTTP/1.1\r\n\r\n");
	feed_call(s, &proc, 1, AGT_DIR_INGRESS,
		  "HTTP/1.1 202 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n");
	feed_call(s, &proc, 1, AGT_DIR_INGRESS, "zz\r\nxyzzy\r\n");
	feed_call(s, &proc, 1, AGT_DIR_INGRESS, "more of the broken body\r\n");
	feed_call(s, &proc, 1, AGT_DIR_EGRESS, "GET /3 HTTP/1.1\r\n\r\n");
	feed_call(s, &proc, 1, AGT_DIR_INGRESS, ok);
	feed_call(s, &proc, 1, AGT_DIR_EGRESS, "GET /4 HTTP/1.1\r\n\r\n");
	feed_call(s, &proc, 1, AGT_DIR_INGRESS, "HTTP/1.1 203 OK\r\nContent-Le\x01ngth: 2\r\n\r\nok");
	feed_call(s, &proc, 1, AGT_DIR_EGRESS, "GET /5 HTTP/1.1\r\n\r\n");
	feed_call(s, &proc, 1, AGT_DIR_INGRESS, ok);
	assert_int_equal(nxs, 5);
	for (int i = 0; i < 5; i++) {
		char url[8];

		snprintf(url, sizeof(url), "/%d", i + 1);
		assert_string_equal(xs[i].url, url);
	}
	assert_int_equal(xs[0].status, 200);
	assert_int_equal(xs[1].status, 202);
	assert_int_equal(xs[1].incomplete, 1);
	assert_int_equal(xs[2].status, 200);
	assert_int_equal(xs[2].incomplete, 0);
	assert_int_equal(xs[3].status, 0); /* broken in its headers: unanswered */
	assert_int_equal(xs[4].status, 200);
	assert_int_equal(drop(s, "http1_resync"), 2);
	assert_int_equal(drop(s, "response_without_request"), 0);
	agt_streams_free(s);
}

static void redaction_corpus(void **state)
{
	(void)state;
	static const char *const secrets[] = {
	    "sk-proj-AbCdEf0123456789xyz",
	    "sk-ant-api03-abcdefghijklmnop",
	    "AKIAIOSFODNN7EXAMPLE",
	    "ghp_abcdefghijklmnopqrstuvwxyz0123",
	    "xoxb-1234567890-abcdef",
	    "AIzaSyA1234567890abcdefghijklmnopqrstu",
	    "hunter2",
	    "s3cr3t-token-value",
	    "tok_live_9f8e7d",
	};
	const char *text =
	    "{\"messages\":[{\"content\":\"use key sk-proj-AbCdEf0123456789xyz please\"}],"
	    "\"api_key\":\"sk-ant-api03-abcdefghijklmnop\",\"aws\":\"AKIAIOSFODNN7EXAMPLE\","
	    "\"gh\":\"ghp_abcdefghijklmnopqrstuvwxyz0123\",\"slack\":\"xoxb-1234567890-abcdef\","
	    "\"g\":\"AIzaSyA1234567890abcdefghijklmnopqrstu\",\"password\": \"hunter2\","
	    "\"Authorization\":\"Bearer "
	    "s3cr3t-token-value\",\"url\":\"/x?token=tok_live_9f8e7d&a=1\"}";
	struct agt_redactor *red = agt_redactor_new();
	char *r = agt_redact_str(red, text);

	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (strstr(r, secrets[i]))
			fail_msg("secret %s survived: %s", secrets[i], r);
	assert_non_null(strstr(r, "\"password\":\"[REDACTED]\"")); /* rewritten compact */
	assert_non_null(strstr(r, "?token=[REDACTED]&a=1"));
	assert_non_null(strstr(r, "use key [REDACTED] please"));
	free(r);
	r = agt_redact_str(red, "nothing secret here: sk- alone, key=value");
	assert_string_equal(r, "nothing secret here: sk- alone, key=value");
	free(r);
	assert_int_equal(agt_redactor_add(red, "internal-[0-9]+", NULL, 0), 0);
	r = agt_redact_str(red, "id internal-4242 done");
	assert_string_equal(r, "id [REDACTED] done");
	free(r);
	assert_int_equal(agt_redactor_add(red, "(unclosed", NULL, 0), -22);
	agt_redactor_free(red);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pipelined_requests_split_anywhere),
	    cmocka_unit_test(chunked_gzip_response),
	    cmocka_unit_test(brotli_response),
	    cmocka_unit_test(body_cap_and_gap),
	    cmocka_unit_test(sse_events),
	    cmocka_unit_test(streams_pair_and_count),
	    cmocka_unit_test(response_cut_by_death_is_handed_over),
	    cmocka_unit_test(h2c_upgrade_split_anywhere),
	    cmocka_unit_test(closed_connection_is_not_continued),
	    cmocka_unit_test(framing_error_resynchronises),
	    cmocka_unit_test(redaction_corpus),
	};
	return cmocka_run_group_tests_name("protocols", tests, NULL, NULL);
}
