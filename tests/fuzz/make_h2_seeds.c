/* Seed corpus for fuzz_http2: real HTTP/2 conversations (frames laid out by tests/fuzz/h2_wire.h,
 * header blocks by nghttp2's HPACK encoder) written in the fuzz target's input format, one file
 * each. Usage: make_h2_seeds DIR */
#include <stdio.h>
#include <sys/stat.h>
#include "h2_wire.h"

#define EG 0
#define IN 1

static const char *const req[] = {":method",
				  "POST",
				  ":scheme",
				  "https",
				  ":authority",
				  "api.openai.com",
				  ":path",
				  "/v1/chat/completions",
				  "content-type",
				  "application/json",
				  "authorization",
				  "Bearer sk-x",
				  NULL};
static const char *const resp[] = {":status", "200", "content-type", "application/json", NULL};
static const char *const sse_resp[] = {":status", "200", "content-type", "text/event-stream", NULL};

/* The trace in the target's format: options byte (cap 65536, preface already in the bytes). */
static void save(const char *dir, const char *name, const struct h2w_trace *t)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "wb"))) {
		perror(path);
		exit(1);
	}
	fputc(3 << 1, f);
	for (int i = 0; i < t->n; i++) {
		const struct h2w_chunk *k = &t->c[i];
		size_t off = 0;

		do {
			size_t n = k->len - off > 0xffff ? 0xffff : k->len - off;

			fputc(k->dir | (int)(k->tid & 0xf) << 4, f);
			fputc((int)(n & 0xff), f);
			fputc((int)(n >> 8), f);
			if (!(k->dir & H2W_GAP))
				fwrite(k->b + off, 1, n, f);
			off += n;
		} while (off < k->len);
	}
	fclose(f);
}

static void json_exchange(struct h2w_trace *t, uint32_t sid)
{
	h2w_headers(t, EG, sid, 0, req);
	h2w_data(t, EG, sid, 0x1, "{\"model\":\"gpt-4o\",\"messages\":[]}");
	h2w_headers(t, IN, sid, 0, resp);
	h2w_data(t, IN, sid, 0x1, "{\"id\":\"c\",\"choices\":[]}");
}

int main(int argc, char **argv)
{
	struct h2w_trace t;
	uint8_t blk[1024], pay[1200];
	size_t n;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	mkdir(argv[1], 0755);

	h2w_init(&t);
	h2w_open(&t);
	for (uint32_t s = 1; s <= 5; s += 2)
		json_exchange(&t, s);
	save(argv[1], "json3", &t);
	h2w_fini(&t);

	h2w_init(&t);
	h2w_open(&t);
	h2w_headers(&t, EG, 1, 0x1, req);
	h2w_headers(&t, IN, 1, 0, sse_resp);
	for (int i = 0; i < 20; i++) {
		char ev[64];

		snprintf(ev, sizeof(ev), "data: {\"delta\":\"t%d\"}\n\n", i);
		h2w_chunk(&t, IN);
		h2w_data(&t, IN, 1, i == 19 ? 0x1 : 0, ev);
	}
	save(argv[1], "sse", &t);
	h2w_fini(&t);

	/* Padding, priority, CONTINUATION, trailers, resets, a push, GOAWAY. */
	h2w_init(&t);
	h2w_open(&t);
	n = h2w_block(&t, EG, req, blk, sizeof(blk));
	pay[0] = 4;
	memcpy(pay + 1, "\x00\x00\x00\x00\x10", 5);
	memcpy(pay + 6, blk, n);
	memset(pay + 6 + n, 0, 4);
	h2w_frame(&t, EG, 0x1, 0x4 | 0x8 | 0x20, 1, pay, n + 10);
	pay[0] = 2;
	memcpy(pay + 1, "{}", 2);
	memset(pay + 3, 0, 2);
	h2w_frame(&t, EG, 0x0, 0x8 | 0x1, 1, pay, 5);
	n = h2w_block(&t, IN, resp, blk, sizeof(blk));
	h2w_frame(&t, IN, 0x1, 0, 1, blk, n / 2);
	h2w_frame(&t, IN, 0x9, 0x4, 1, blk + n / 2, n - n / 2);
	h2w_data(&t, IN, 1, 0, "body");
	{
		static const char *const tr[] = {"x-usage", "42", NULL};

		h2w_headers(&t, IN, 1, 0x1, tr);
	}
	h2w_headers(&t, EG, 3, 0x1, req);
	h2w_rst(&t, EG, 3, 8);
	h2w_headers(&t, EG, 5, 0x1, req);
	h2w_rst(&t, IN, 5, 7);
	h2w_headers(&t, EG, 7, 0x1, req);
	n = h2w_block(&t, IN, req, blk, sizeof(blk));
	memcpy(pay, "\x00\x00\x00\x02", 4);
	memcpy(pay + 4, blk, n);
	h2w_frame(&t, IN, 0x5, 0x4, 7, pay, n + 4);
	h2w_headers(&t, IN, 2, 0x1, resp);
	h2w_frame(&t, IN, 0x6, 0, 0, "pingpong", 8);
	h2w_frame(&t, IN, 0x7, 0, 0, "\x00\x00\x00\x05\x00\x00\x00\x00", 8);
	save(argv[1], "frames", &t);
	h2w_fini(&t);

	/* Gaps: one inside a DATA payload, one inside a header block. */
	h2w_init(&t);
	h2w_open(&t);
	h2w_headers(&t, EG, 1, 0x1, req);
	h2w_headers(&t, IN, 1, 0, resp);
	h2w_frame_hdr(&t, IN, 0x0, 0x1, 1, 50);
	h2w_put(&t, IN, "0123456789", 10);
	h2w_gap(&t, IN, 30);
	h2w_put(&t, IN, "0123456789", 10);
	h2w_headers(&t, EG, 3, 0x1, req);
	{
		static const char *const r2[] = {":status", "404", "x-trace", "0123456789abcdef",
						 NULL};

		n = h2w_block(&t, IN, r2, blk, sizeof(blk));
	}
	h2w_frame_hdr(&t, IN, 0x1, 0x4, 3, n);
	h2w_put(&t, IN, blk, 2);
	h2w_gap(&t, IN, n - 2);
	save(argv[1], "gaps", &t);
	h2w_fini(&t);

	/* Interleaved concurrent streams: four requests open at once, their HEADERS, DATA and
	 * responses (one streamed as SSE) mixed frame by frame in both directions, bodies split
	 * across DATA frames, answers in another order than the requests. */
	h2w_init(&t);
	h2w_open(&t);
	for (uint32_t s = 1; s <= 7; s += 2)
		h2w_headers(&t, EG, s, 0, req);
	for (uint32_t s = 7; s >= 1 && s <= 7; s -= 2) {
		h2w_data(&t, EG, s, 0, "{\"model\":\"gpt-4o\",");
		h2w_headers(&t, IN, 8 - s, 0, s == 3 ? sse_resp : resp);
	}
	for (uint32_t s = 1; s <= 7; s += 2)
		h2w_data(&t, EG, s, 0x1, "\"messages\":[]}");
	for (int i = 0; i < 3; i++)
		for (uint32_t s = 1; s <= 7; s += 2) {
			char part[96];

			if (s == 5) /* the SSE stream */
				snprintf(part, sizeof(part), "data: {\"delta\":\"t%d\"}\n\n%s", i,
					 i == 2 ? "data: [DONE]\n\n" : "");
			else
				snprintf(part, sizeof(part), "%s", i == 0 ? "{\"id\":\"c\","
								 : i == 1 ? "\"choices\":"
									  : "[]}");
			h2w_chunk(&t, IN);
			h2w_data(&t, IN, s, i == 2 ? 0x1 : 0, part);
		}
	save(argv[1], "interleaved", &t);
	h2w_fini(&t);

	/* gRPC, then a plain exchange. */
	h2w_init(&t);
	h2w_open(&t);
	{
		static const char *const g[] = {
		    ":method", "POST", ":path", "/a.B/C", "content-type", "application/grpc", NULL};

		h2w_headers(&t, EG, 1, 0, g);
		h2w_frame(&t, EG, 0x0, 0x1, 1, "\x00\x00\x00\x00\x01\x08", 6);
		h2w_headers(&t, IN, 1, 0x1, g + 4);
	}
	json_exchange(&t, 3);
	save(argv[1], "grpc", &t);
	h2w_fini(&t);
	return 0;
}
