/* HTTP/2 bytes for the tests and the fuzz seeds: frames laid out by hand (so padding, CONTINUATION
 * splits and interleaving are exactly what a test asks for), header blocks encoded by nghttp2's
 * own HPACK deflater. A trace is the capture a test replays: chunks of one direction each, in
 * the order they moved, with when and by which thread. Header-only, static functions. */
#ifndef AGT_H2_WIRE_H
#define AGT_H2_WIRE_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <nghttp2/nghttp2.h>

#define H2W_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

enum { H2W_GAP = 2 }; /* a chunk that is a capture gap of len bytes, not bytes */

struct h2w_chunk {
	int dir; /* enum agt_dir, or with H2W_GAP */
	uint8_t *b;
	size_t len, cap;
	uint64_t ts;
	uint32_t tid;
};

struct h2w_trace {
	struct h2w_chunk *c;
	int n, cap;
	uint64_t ts;		     /* of the next chunk started */
	uint32_t tid[2];	     /* per direction */
	nghttp2_hd_deflater *def[2]; /* the client's (egress) and the server's (ingress) encoder */
};

static void h2w_init(struct h2w_trace *t)
{
	memset(t, 0, sizeof(*t));
	t->ts = 1000;
	t->tid[0] = 7;
	t->tid[1] = 8;
	nghttp2_hd_deflate_new(&t->def[0], 4096);
	nghttp2_hd_deflate_new(&t->def[1], 4096);
}

static void h2w_fini(struct h2w_trace *t)
{
	for (int i = 0; i < t->n; i++)
		free(t->c[i].b);
	free(t->c);
	nghttp2_hd_deflate_del(t->def[0]);
	nghttp2_hd_deflate_del(t->def[1]);
}

/* Start a new chunk of direction dir (a new call of the traced process), 1000 ns after the
 * previous one. */
static struct h2w_chunk *h2w_chunk(struct h2w_trace *t, int dir)
{
	struct h2w_chunk *k;

	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->c = realloc(t->c, t->cap * sizeof(*t->c));
	}
	k = &t->c[t->n++];
	memset(k, 0, sizeof(*k));
	k->dir = dir;
	k->ts = t->ts;
	k->tid = t->tid[dir & 1];
	t->ts += 1000;
	return k;
}

/* The chunk bytes of direction dir go to: the last one if it is of dir, else a new one. */
static struct h2w_chunk *h2w_cur(struct h2w_trace *t, int dir)
{
	if (t->n && t->c[t->n - 1].dir == dir)
		return &t->c[t->n - 1];
	return h2w_chunk(t, dir);
}

static void h2w_put(struct h2w_trace *t, int dir, const void *p, size_t n)
{
	struct h2w_chunk *k = h2w_cur(t, dir);

	if (k->len + n > k->cap) {
		k->cap = (k->len + n) * 2;
		k->b = realloc(k->b, k->cap);
	}
	memcpy(k->b + k->len, p, n);
	k->len += n;
}

/* A capture gap of n bytes in direction dir. */
static void h2w_gap(struct h2w_trace *t, int dir, size_t n)
{
	h2w_chunk(t, dir | H2W_GAP)->len = n;
}

/* A frame header saying a payload of n bytes follows (the caller puts it, or gaps in it). */
static void h2w_frame_hdr(struct h2w_trace *t, int dir, uint8_t type, uint8_t flags, uint32_t sid,
			  size_t n)
{
	uint8_t h[9] = {
	    (uint8_t)(n >> 16),	  (uint8_t)(n >> 8),	(uint8_t)n,	     type,	  flags,
	    (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid};

	h2w_put(t, dir, h, 9);
}

static void h2w_frame(struct h2w_trace *t, int dir, uint8_t type, uint8_t flags, uint32_t sid,
		      const void *payload, size_t n)
{
	h2w_frame_hdr(t, dir, type, flags, sid, n);
	if (n)
		h2w_put(t, dir, payload, n);
}

/* Encode name/value pairs (a NULL-terminated list: name, value, name, value, ..., NULL) with
 * direction dir's encoder into out; the encoded length. */
static size_t h2w_block(struct h2w_trace *t, int dir, const char *const *nv, uint8_t *out,
			size_t cap)
{
	nghttp2_nv v[512];
	size_t n = 0;

	for (; nv[0] && n < 512; nv += 2, n++)
		v[n] = (nghttp2_nv){(uint8_t *)nv[0], (uint8_t *)nv[1], strlen(nv[0]),
				    strlen(nv[1]), NGHTTP2_NV_FLAG_NONE};
	return (size_t)nghttp2_hd_deflate_hd(t->def[dir], out, cap, v, n);
}

/* A HEADERS frame with the whole block (END_HEADERS), plus flags (END_STREAM). */
static size_t h2w_headers(struct h2w_trace *t, int dir, uint32_t sid, uint8_t flags,
			  const char *const *nv)
{
	uint8_t blk[16384];
	size_t n = h2w_block(t, dir, nv, blk, sizeof(blk));

	h2w_frame(t, dir, 0x1, flags | 0x4, sid, blk, n);
	return n;
}

static void h2w_data(struct h2w_trace *t, int dir, uint32_t sid, uint8_t flags, const char *s)
{
	h2w_frame(t, dir, 0x0, flags, sid, s, strlen(s));
}

/* The client preface and SETTINGS, the server's SETTINGS, and both acknowledgements. */
static void h2w_open(struct h2w_trace *t)
{
	static const uint8_t cs[] = {0, 3, 0, 0, 0, 100, 0, 4, 0, 0x60, 0, 0};
	static const uint8_t ss[] = {0, 3, 0, 0, 0, 128};
	static const uint8_t wu[] = {0, 0x3e, 0, 1};

	h2w_put(t, 0, H2W_PREFACE, 24);
	h2w_frame(t, 0, 0x4, 0, 0, cs, sizeof(cs));
	h2w_frame(t, 0, 0x8, 0, 0, wu, sizeof(wu));
	h2w_frame(t, 1, 0x4, 0, 0, ss, sizeof(ss));
	h2w_frame(t, 1, 0x4, 0x1, 0, NULL, 0);
	h2w_frame(t, 0, 0x4, 0x1, 0, NULL, 0);
}

static void h2w_rst(struct h2w_trace *t, int dir, uint32_t sid, uint32_t code)
{
	uint8_t p[4] = {(uint8_t)(code >> 24), (uint8_t)(code >> 16), (uint8_t)(code >> 8),
			(uint8_t)code};

	h2w_frame(t, dir, 0x3, 0, sid, p, 4);
}
#endif
