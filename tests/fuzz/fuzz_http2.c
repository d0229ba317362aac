/* libFuzzer target: arbitrary bytes through the HTTP/2 protocol by its proto.h interface alone
 * (detect, open, feed in both directions, capture gaps, close, free). Malformed traffic must be
 * counted, never crash, read out of bounds or leak, and every exchange handed over must be well
 * formed (a request, strings terminated, bodies within the cap).
 * Input: an options byte, then chunks [ctl][len (2 bytes LE)][len bytes]:
 *   options bit 0: egress starts with the client preface (so mutations reach the frames)
 *   options bits 1-2: body cap 0, 16, 256 or 65536 bytes
 *   ctl bit 0: direction (enum agt_dir); bit 1: a capture gap of len bytes (no bytes follow);
 *   bit 2: close the connection after this chunk; bits 4-7: the thread id */
#include <stdint.h>
#include <string.h>
#include "agtrace.h"
#include "protocols/http2.h"

static const size_t caps[4] = {0, 16, 256, 65536};

struct fuzz_ctx {
	size_t cap;
};

static void check_msg(const struct agt_http_msg *m, size_t cap)
{
	if (!m->url || !memchr(m->method, 0, sizeof(m->method)))
		__builtin_trap();
	if (m->body_len > cap || m->body_len > m->body_seen || (m->body_len && !m->body) ||
	    (m->body && m->body[m->body_len]))
		__builtin_trap();
	if (m->nhdrs < 0 || m->nhdrs > 256 || (m->nhdrs && !m->hdrs))
		__builtin_trap();
	/* Every string terminated: ASan sees a read past the end. */
	volatile size_t n = strlen(m->url);

	for (int i = 0; i < m->nhdrs; i++) {
		if (!m->hdrs[i].name || !m->hdrs[i].value)
			__builtin_trap();
		n += strlen(m->hdrs[i].name) + strlen(m->hdrs[i].value);
	}
	(void)n;
}

static void on_exchange(void *ctx, struct agt_http_msg *req, struct agt_http_msg *resp)
{
	const struct fuzz_ctx *f = ctx;

	if (!req || !req->is_request || (resp && resp->is_request))
		__builtin_trap();
	check_msg(req, f->cap);
	if (resp)
		check_msg(resp, f->cap);
	agt_http_msg_free(req);
	agt_http_msg_free(resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct agt_proto *p = &agt_proto_http2;
	uint64_t drops[AGT_H2DROP_MAX] = {0};
	struct fuzz_ctx f;
	struct agt_proto_out out = {.exchange = on_exchange, .ctx = &f};
	size_t pos = 1;
	uint64_t ts = 1000;
	int detected = 0;
	void *conn;

	if (!size)
		return 0;
	f.cap = caps[(data[0] >> 1) & 3];
	conn = p->open(NULL, 10, f.cap, drops, &out);
	if (!conn)
		return 0;
	if (data[0] & 1) {
		static const char pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

		detected = 1;
		if (p->detect((const uint8_t *)pre, 24, AGT_DIR_EGRESS) != AGT_DETECT_YES)
			__builtin_trap();
		p->feed(conn, AGT_DIR_EGRESS, (const uint8_t *)pre, 24, ts, 1);
	}
	while (pos + 3 <= size) {
		unsigned ctl = data[pos];
		size_t len = data[pos + 1] | (size_t)data[pos + 2] << 8;
		int dir = ctl & 1;

		pos += 3;
		ts += 1000;
		if (ctl & 2) {
			p->gap(conn, dir, len, ts);
		} else {
			if (len > size - pos)
				len = size - pos;
			if (!detected && dir == AGT_DIR_EGRESS) {
				detected = 1;
				(void)p->detect(data + pos, len, dir);
			}
			p->feed(conn, dir, data + pos, len, ts, ctl >> 4);
			pos += len;
		}
		if (ctl & 4)
			p->close(conn, ts);
	}
	p->close(conn, ts + 1);
	p->free(conn);
	return 0;
}
