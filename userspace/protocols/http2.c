/* HTTP/2 connections of a client, frame by frame. Frames are read here by hand as bytes arrive
 * (a feed may end anywhere, or hold many frames); header blocks go through libnghttp2's HPACK
 * inflater, one per direction, a piece at a time, so no block is ever buffered whole. Each
 * stream pairs the request the process wrote with the response it read, and is handed over
 * when the response ends or the stream is reset. nghttp2's session API is not used: it
 * enforces protocol state (flow control, stream states) a capture cannot always know.
 *
 * What a capture gap costs: inside a DATA payload (or a frame whose payload is not needed)
 * the frame's length says exactly where the next frame starts, so only body bytes are lost.
 * Anywhere else the next frame boundary, or the HPACK dynamic table, is unknown: the direction
 * is counted as lost and ignored until the connection closes. */
#include "protocols/http2.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <nghttp2/nghttp2.h>
#include "agtrace.h"

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24
#define H2_FRAME_HDR 9
#define H2_MAX_STREAMS 256	     /* open streams followed per connection */
#define H2_MAX_BLOCK (256 * 1024)    /* encoded bytes of one header block */
#define H2_MAX_HDRS 256		     /* header fields kept per message */
#define H2_MAX_HDR_BYTES (64 * 1024) /* name and value bytes kept per message */
#define H2_MAX_TABLE (64 * 1024)     /* largest HPACK dynamic table followed */
#define H2_MAX_PENDING 8	     /* SETTINGS frames awaiting acknowledgement, per direction */
#define H2_DEFAULT_FRAME 16384	     /* SETTINGS_MAX_FRAME_SIZE until one is announced */
#define H2_LARGEST_FRAME 16777215    /* what a 24-bit length can say */

enum {
	H2_DATA = 0x0,
	H2_HEADERS = 0x1,
	H2_PRIORITY = 0x2,
	H2_RST_STREAM = 0x3,
	H2_SETTINGS = 0x4,
	H2_PUSH_PROMISE = 0x5,
	H2_PING = 0x6,
	H2_GOAWAY = 0x7,
	H2_WINDOW_UPDATE = 0x8,
	H2_CONTINUATION = 0x9,
};

enum {
	H2_F_END_STREAM = 0x1, /* DATA, HEADERS */
	H2_F_ACK = 0x1,	       /* SETTINGS, PING */
	H2_F_END_HEADERS = 0x4,
	H2_F_PADDED = 0x8,
	H2_F_PRIORITY = 0x20,
};

enum { H2_SET_HEADER_TABLE_SIZE = 0x1, H2_SET_MAX_FRAME_SIZE = 0x5 };

const char *const agt_h2drop_names[AGT_H2DROP_MAX] = {
    "http2_framing_error",	 "http2_hpack_error",	"http2_gap_state_lost",
    "http2_gap_in_body",	 "http2_ignored_bytes", "http2_streams_full",
    "http2_grpc_streams",	 "http2_push_promises", "http2_headers_dropped",
    "http2_unmatched_responses", "http2_nomem",
};

/* One side of a stream: the request (egress) or the response (ingress). */
struct h2_half {
	struct agt_http_msg *m; /* NULL: none yet (or none kept: gRPC, 1xx answers) */
	size_t body_alloc;	/* bytes allocated at m->body */
	size_t hdr_bytes;	/* header name and value bytes kept in m */
	int headers_done;	/* its first header block is complete: a later one is trailers */
	int ended;		/* END_STREAM seen, or the message was cut short */
};

struct h2_stream {
	uint32_t id;
	int grpc;		/* counted once, then only followed to its end */
	struct h2_half half[2]; /* by enum agt_dir */
};

enum h2_state { H2_ST_PREFACE, H2_ST_HEADER, H2_ST_PAYLOAD, H2_ST_LOST };

/* One direction of a connection: where its bytes are in the framing, and its HPACK decoder. */
struct h2_dir {
	enum h2_state st;
	nghttp2_hd_inflater *hd;
	uint64_t ts; /* of the bytes being fed */
	uint32_t tid;
	int broke; /* the bytes being fed broke the framing (feed returns -1) */
	size_t npreface;
	uint8_t hdr[H2_FRAME_HDR];
	size_t nhdr;
	uint32_t max_frame; /* largest frame length accepted (what the receiver announced) */
	/* The frame being read, and when its first byte moved. */
	uint64_t frame_ts;
	uint32_t frame_tid;
	uint32_t len, sid, left, pad; /* left: payload bytes still to come; pad: trailing padding */
	uint8_t type, flags;
	uint8_t pfx[8]; /* fixed fields before the content: pad length, priority, promised id */
	uint8_t npfx, need;
	int skip;	/* a gap took fields the rest of this payload needs: skip it */
	uint8_t ent[6]; /* SETTINGS entry being read */
	uint8_t nent;
	int64_t table_size;	  /* HEADER_TABLE_SIZE in the SETTINGS being read, or -1 */
	struct h2_stream *data_s; /* stream of the DATA frame being read; NULL: not followed */
	/* The header block being read (HEADERS or PUSH_PROMISE, then CONTINUATION). */
	int in_block, blk_push, blk_end_stream, blk_trailers;
	uint32_t blk_sid;
	size_t blk_bytes;
	struct h2_stream *blk_s; /* whose message gets the fields; NULL: decoded and dropped */
	/* HEADER_TABLE_SIZE (-1: none) of this direction's SETTINGS frames the other side has not
	 * acknowledged yet: the other side's encoder follows each from its acknowledgement on. */
	int64_t pending[H2_MAX_PENDING];
	int npending;
};

struct h2_conn {
	struct h2_dir dir[2];			   /* by enum agt_dir */
	struct h2_stream *streams[H2_MAX_STREAMS]; /* open streams, by increasing id */
	int nstreams;
	struct h2_stream *last; /* the one found last (frames come in runs per stream) */
	uint32_t last_sid;	/* highest stream id the client opened */
	size_t cap;
	uint64_t *drops;
	uint64_t own_drops[AGT_H2DROP_MAX]; /* when open() is given none */
	struct agt_proto_out out;
	int closed;
};

/* A server's first frame: SETTINGS (not an acknowledgement) on stream 0, whose length is a
 * whole number of 6-byte settings, at most one of each of the few that exist. */
#define H2_MAX_FIRST_SETTINGS (6 * 16)

static enum agt_detect h2_detect(const uint8_t *data, size_t len, int dir)
{
	size_t n = len < H2_PREFACE_LEN ? len : H2_PREFACE_LEN;
	uint8_t hdr[H2_FRAME_HDR] = {0};
	uint32_t flen;

	/* A client's first bytes are the preface. */
	if (dir == AGT_DIR_EGRESS) {
		if (n && memcmp(data, H2_PREFACE, n))
			return AGT_DETECT_NO;
		return len < H2_PREFACE_LEN ? AGT_DETECT_MORE : AGT_DETECT_YES;
	}
	/* The first bytes captured can be the server's (its SETTINGS frame went out as soon as
	 * the preface came in, and the client's thread that read it ran before the one that wrote
	 * the preface had returned): a SETTINGS frame exactly as a server opens with it. Byte by
	 * byte, so a few bytes that could still be one say "more". */
	memcpy(hdr, data, len < H2_FRAME_HDR ? len : H2_FRAME_HDR);
	flen = (uint32_t)hdr[0] << 16 | (uint32_t)hdr[1] << 8 | hdr[2];
	if ((len > 0 && hdr[0]) || (len > 1 && hdr[1]) ||
	    (len > 2 && (flen % 6 || flen > H2_MAX_FIRST_SETTINGS)) ||
	    (len > 3 && hdr[3] != H2_SETTINGS) || (len > 4 && hdr[4]) ||
	    (len > 5 && (hdr[5] & 0x7f)) || (len > 6 && hdr[6]) || (len > 7 && hdr[7]) ||
	    (len > 8 && hdr[8]))
		return AGT_DETECT_NO;
	return len < H2_FRAME_HDR ? AGT_DETECT_MORE : AGT_DETECT_YES;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static struct h2_stream *find(struct h2_conn *c, uint32_t id)
{
	int lo = 0, hi = c->nstreams;

	if (c->last && c->last->id == id)
		return c->last;
	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (c->streams[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < c->nstreams && c->streams[lo]->id == id)
		return c->last = c->streams[lo];
	return NULL;
}

/* Take s out of the open streams, and out of every frame or header block being read. */
static void forget(struct h2_conn *c, struct h2_stream *s)
{
	for (int i = 0; i < c->nstreams; i++) {
		if (c->streams[i] != s)
			continue;
		memmove(&c->streams[i], &c->streams[i + 1],
			(c->nstreams - i - 1) * sizeof(c->streams[0]));
		c->nstreams--;
		break;
	}
	for (int d = 0; d < 2; d++) {
		if (c->dir[d].data_s == s)
			c->dir[d].data_s = NULL;
		if (c->dir[d].blk_s == s)
			c->dir[d].blk_s = NULL;
	}
	if (c->last == s)
		c->last = NULL;
}

static char *memdup0(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, p, n);
		s[n] = 0;
	}
	return s;
}

static void stream_free(struct h2_stream *s)
{
	agt_http_msg_free(s->half[0].m);
	agt_http_msg_free(s->half[1].m);
	free(s);
}

/* Hand the stream's exchange over and forget the stream. A message not ended yet is cut short
 * at ts: marked truncated; at the connection's end (closing), a response cut short is what
 * arrived of it (incomplete, ending at its last byte). gRPC streams are only forgotten. */
static void finish_as(struct h2_conn *c, struct h2_stream *s, uint64_t ts, int closing)
{
	struct agt_http_msg *req = s->half[AGT_DIR_EGRESS].m, *resp = s->half[AGT_DIR_INGRESS].m;

	forget(c, s);
	for (int d = 0; d < 2; d++) {
		struct agt_http_msg *m = s->half[d].m;

		if (!m)
			continue;
		if (!s->half[d].ended) {
			m->truncated = 1;
			m->end_ns = ts;
			if (closing && d == AGT_DIR_INGRESS && m->status) {
				m->incomplete = 1;
				m->end_ns = m->last_byte_ns > m->start_ns ? m->last_byte_ns
									  : m->start_ns;
			}
		}
		if (!m->url && !(m->url = memdup0((const uint8_t *)"", 0))) {
			c->drops[AGT_H2DROP_NOMEM]++;
			req = NULL; /* hand over nothing half-made */
		}
	}
	if (!s->grpc && req && c->out.exchange) {
		s->half[AGT_DIR_EGRESS].m = s->half[AGT_DIR_INGRESS].m = NULL;
		c->out.exchange(c->out.ctx, req, resp);
	}
	stream_free(s);
}

static void finish(struct h2_conn *c, struct h2_stream *s, uint64_t ts)
{
	finish_as(c, s, ts, 0);
}

/* The message of one side of s ended (END_STREAM) at ts. The stream is handed over when its
 * response ends, or when its request ends and responses can no longer be followed. */
static void msg_end(struct h2_conn *c, struct h2_stream *s, int dir, uint64_t ts)
{
	struct h2_half *h = &s->half[dir];

	if (!h->ended) {
		h->ended = 1;
		if (h->m)
			h->m->end_ns = ts;
	}
	if (dir == AGT_DIR_INGRESS || c->dir[AGT_DIR_INGRESS].st == H2_ST_LOST)
		finish(c, s, ts);
}

/* The direction's framing or HPACK state is gone: count why and ignore it from now on. Its
 * messages are cut short where they are (marked truncated). Requests so cut still wait for
 * their responses, which the other direction carries intact; with responses cut, exchanges are
 * handed over as soon as their requests end (at once for those already ended). */
static void lose(struct h2_conn *c, int dir, enum agt_h2drop why, uint64_t ts)
{
	struct h2_dir *d = &c->dir[dir];

	if (d->st == H2_ST_LOST)
		return;
	d->st = H2_ST_LOST;
	d->in_block = 0;
	d->blk_s = d->data_s = NULL;
	c->drops[why]++;
	for (int i = 0; i < c->nstreams; i++) {
		struct h2_half *h = &c->streams[i]->half[dir];

		if (!h->ended && h->m) {
			h->m->truncated = 1;
			h->m->end_ns = ts;
		}
		h->ended = 1;
	}
	if (c->dir[AGT_DIR_INGRESS].st != H2_ST_LOST)
		return;
	for (int i = 0; i < c->nstreams;) {
		if (c->streams[i]->half[AGT_DIR_EGRESS].ended)
			finish(c, c->streams[i], ts);
		else
			i++;
	}
}

/* The bytes being fed break the framing (or the HPACK state) of dir. */
static void fail(struct h2_conn *c, int dir, enum agt_h2drop why)
{
	c->dir[dir].broke = 1;
	lose(c, dir, why, c->dir[dir].ts);
}

static struct agt_http_msg *msg_new(struct h2_conn *c, const struct h2_dir *d, int is_request)
{
	struct agt_http_msg *m = calloc(1, sizeof(*m));

	if (!m) {
		c->drops[AGT_H2DROP_NOMEM]++;
		return NULL;
	}
	m->is_request = is_request;
	m->start_ns = d->frame_ts;
	m->tid = d->frame_tid;
	return m;
}

static void add_header(struct h2_conn *c, struct h2_half *h, const uint8_t *name, size_t nlen,
		       const uint8_t *value, size_t vlen)
{
	struct agt_http_msg *m = h->m;
	struct agt_http_header *hs;
	char *n, *v;

	if (m->nhdrs >= H2_MAX_HDRS || nlen + vlen > H2_MAX_HDR_BYTES - h->hdr_bytes) {
		c->drops[AGT_H2DROP_HEADERS]++;
		return;
	}
	hs = realloc(m->hdrs, (m->nhdrs + 1) * sizeof(*hs));
	if (hs)
		m->hdrs = hs;
	n = memdup0(name, nlen);
	v = memdup0(value, vlen);
	if (!hs || !n || !v) {
		free(n);
		free(v);
		c->drops[AGT_H2DROP_NOMEM]++;
		return;
	}
	m->hdrs[m->nhdrs++] = (struct agt_http_header){n, v};
	h->hdr_bytes += nlen + vlen;
}

static int is_name(const nghttp2_nv *nv, const char *name)
{
	size_t n = strlen(name);

	return nv->namelen == n && !memcmp(nv->name, name, n);
}

/* A decoded header field of the block being read in direction dir. */
static void on_field(struct h2_conn *c, struct h2_dir *d, int dir, const nghttp2_nv *nv)
{
	struct h2_stream *s = d->blk_s;
	struct h2_half *h = s ? &s->half[dir] : NULL;
	struct agt_http_msg *m = h ? h->m : NULL;

	if (!m || s->grpc)
		return;
	if (!nv->namelen || nv->name[0] != ':') {
		add_header(c, h, nv->name, nv->namelen, nv->value, nv->valuelen);
		return;
	}
	if (d->blk_trailers) /* pseudo-header fields have no place in trailers */
		return;
	if (is_name(nv, ":method")) {
		size_t n = nv->valuelen < sizeof(m->method) ? nv->valuelen : sizeof(m->method) - 1;

		memcpy(m->method, nv->value, n);
		m->method[n] = 0;
	} else if (is_name(nv, ":path")) {
		char *u = memdup0(nv->value, nv->valuelen);

		if (!u) {
			c->drops[AGT_H2DROP_NOMEM]++;
			return;
		}
		free(m->url);
		m->url = u;
	} else if (is_name(nv, ":authority")) {
		add_header(c, h, (const uint8_t *)"Host", 4, nv->value, nv->valuelen);
	} else if (is_name(nv, ":status")) {
		int st = 0;

		for (size_t i = 0; i < nv->valuelen && i < 3; i++)
			st = nv->value[i] >= '0' && nv->value[i] <= '9'
				 ? st * 10 + nv->value[i] - '0'
				 : 0;
		m->status = nv->valuelen == 3 ? st : 0;
	}
	/* :scheme, :protocol and unknown pseudo-header fields are dropped. */
}

/* Decode a piece of direction dir's header block; final: the block ends with it. 0, or -1 when
 * the decoder rejected it. */
static int hpack_feed(struct h2_conn *c, int dir, const uint8_t *in, size_t n, int final)
{
	static const uint8_t none;
	struct h2_dir *d = &c->dir[dir];

	if (!in)
		in = &none;
	for (;;) {
		nghttp2_nv nv;
		int flags = 0;
		ssize_t rv = nghttp2_hd_inflate_hd2(d->hd, &nv, &flags, in, n, final);

		if (rv < 0 || (size_t)rv > n)
			return -1;
		in += rv;
		n -= (size_t)rv;
		if (flags & NGHTTP2_HD_INFLATE_EMIT)
			on_field(c, d, dir, &nv);
		if (flags & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(d->hd);
			return n ? -1 : 0;
		}
		if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && (!n || !rv))
			return final || n ? -1 : 0;
	}
}

static int is_grpc(const struct agt_http_msg *m)
{
	const char *ct = m ? agt_http_header(m, "content-type") : NULL;

	return ct && !strncasecmp(ct, "application/grpc", 16);
}

/* A HEADERS or PUSH_PROMISE frame starts a header block: find whose message its fields make. */
static void block_begin(struct h2_conn *c, int dir, int push)
{
	struct h2_dir *d = &c->dir[dir];
	struct h2_stream *s;
	struct h2_half *h;

	d->in_block = 1;
	d->blk_push = push;
	d->blk_sid = d->sid;
	d->blk_bytes = 0;
	d->blk_end_stream = !push && (d->flags & H2_F_END_STREAM);
	d->blk_trailers = 0;
	d->blk_s = NULL;
	if (push) /* decoded to keep the HPACK table right, the pushed response ignored */
		return;
	s = find(c, d->sid);
	if (!s && dir == AGT_DIR_EGRESS) {
		/* A new request. A stream id not above the last is a stream already handed over
		 * (reset, answered early) or not followed: its fields are dropped. */
		if (!(d->sid & 1) || d->sid <= c->last_sid)
			return;
		c->last_sid = d->sid;
		if (c->nstreams >= H2_MAX_STREAMS) {
			c->drops[AGT_H2DROP_STREAMS_FULL]++;
			return;
		}
		if (!(s = calloc(1, sizeof(*s))) || !(s->half[dir].m = msg_new(c, d, 1))) {
			if (!s)
				c->drops[AGT_H2DROP_NOMEM]++;
			free(s);
			return;
		}
		s->id = d->sid;
		c->streams[c->nstreams++] = s;
		d->blk_s = s;
		return;
	}
	if (!s) {
		/* A response to a request never seen: not one handed over or refused (ids up to
		 * last_sid), nor a pushed stream (even ids, counted as pushes). */
		if ((d->sid & 1) && d->sid > c->last_sid)
			c->drops[AGT_H2DROP_UNMATCHED]++;
		return;
	}
	h = &s->half[dir];
	if (s->grpc || h->ended)
		return;
	if (!h->m) {
		if (!(h->m = msg_new(c, d, dir == AGT_DIR_EGRESS)))
			return;
	} else if (h->headers_done) {
		d->blk_trailers = 1;
	}
	d->blk_s = s;
}

/* The header block of direction dir is complete. */
static void block_end(struct h2_conn *c, int dir)
{
	struct h2_dir *d = &c->dir[dir];
	struct h2_stream *s = d->blk_s;

	d->in_block = 0;
	d->blk_s = NULL;
	if (d->blk_push)
		return;
	if (s && !s->grpc && !d->blk_trailers) {
		struct h2_half *h = &s->half[dir];

		h->headers_done = 1;
		if (is_grpc(h->m)) {
			s->grpc = 1;
			c->drops[AGT_H2DROP_GRPC]++;
			for (int i = 0; i < 2; i++) {
				agt_http_msg_free(s->half[i].m);
				s->half[i].m = NULL;
			}
		} else if (dir == AGT_DIR_INGRESS && h->m && h->m->status >= 100 &&
			   h->m->status < 200 && !d->blk_end_stream) {
			/* An interim answer (100 Continue, 103 Early Hints): the final follows. */
			agt_http_msg_free(h->m);
			h->m = NULL;
			h->headers_done = 0;
		}
	}
	if (d->blk_end_stream && (s = find(c, d->blk_sid)))
		msg_end(c, s, dir, d->ts);
}

/* A frame header was read: check it against what its type allows and get ready for its payload.
 * 0, or -1 when it breaks the framing. */
static int frame_begin(struct h2_conn *c, int dir)
{
	struct h2_dir *d = &c->dir[dir];
	const uint8_t *b = d->hdr;
	int padded;

	d->len = (uint32_t)b[0] << 16 | (uint32_t)b[1] << 8 | b[2];
	d->type = b[3];
	d->flags = b[4];
	d->sid = be32(b + 5) & 0x7fffffff;
	d->left = d->len;
	d->pad = 0;
	d->npfx = d->need = 0;
	d->nent = 0;
	d->skip = 0;
	d->table_size = -1;
	d->data_s = NULL;
	padded = (d->flags & H2_F_PADDED) ? 1 : 0;
	if (d->len > d->max_frame)
		return -1;
	if (d->in_block && (d->type != H2_CONTINUATION || d->sid != d->blk_sid))
		return -1; /* a header block is one run of frames */
	switch (d->type) {
	case H2_DATA:
		if (!d->sid)
			return -1;
		d->need = padded;
		d->data_s = find(c, d->sid);
		break;
	case H2_HEADERS:
		if (!d->sid)
			return -1;
		d->need = padded + ((d->flags & H2_F_PRIORITY) ? 5 : 0);
		block_begin(c, dir, 0);
		break;
	case H2_PRIORITY:
		if (!d->sid || d->len != 5)
			return -1;
		break;
	case H2_RST_STREAM:
		if (!d->sid || d->len != 4)
			return -1;
		break;
	case H2_SETTINGS:
		if (d->sid || ((d->flags & H2_F_ACK) ? d->len != 0 : d->len % 6 != 0))
			return -1;
		break;
	case H2_PUSH_PROMISE:
		if (!d->sid)
			return -1;
		d->need = padded + 4;
		c->drops[AGT_H2DROP_PUSH]++;
		block_begin(c, dir, 1);
		break;
	case H2_PING:
		if (d->sid || d->len != 8)
			return -1;
		break;
	case H2_GOAWAY:
		if (d->sid || d->len < 8)
			return -1;
		d->need = 8;
		break;
	case H2_WINDOW_UPDATE:
		if (d->len != 4)
			return -1;
		break;
	case H2_CONTINUATION:
		if (!d->in_block)
			return -1;
		break;
	default: /* frames of unknown types are ignored (RFC 9113 section 5.5) */ break;
	}
	return d->need > d->len ? -1 : 0;
}

/* The fixed fields before a frame's content are in: the padding length, if any. */
static int prefix_done(struct h2_dir *d)
{
	if ((d->type == H2_DATA || d->type == H2_HEADERS || d->type == H2_PUSH_PROMISE) &&
	    (d->flags & H2_F_PADDED)) {
		d->pad = d->pfx[0];
		if (d->pad > d->left)
			return -1;
	}
	return 0;
}

/* Body bytes of the DATA frame being read: n of them seen, p (NULL: missed) kept up to the cap. */
static void body(struct h2_conn *c, int dir, const uint8_t *p, size_t n)
{
	struct h2_dir *d = &c->dir[dir];
	struct h2_stream *s = d->data_s;
	struct h2_half *h = s ? &s->half[dir] : NULL;
	struct agt_http_msg *m = h ? h->m : NULL;
	size_t keep;

	if (!m || s->grpc || h->ended || !n)
		return;
	if (!m->first_body_ns)
		m->first_body_ns = d->frame_ts;
	m->last_byte_ns = d->frame_ts;
	m->body_seen += n;
	if (!p) {
		m->truncated = 1;
		return;
	}
	keep = m->body_len < c->cap ? c->cap - m->body_len : 0;
	if (keep < n)
		m->truncated = 1;
	else
		keep = n;
	if (!keep)
		return;
	if (m->body_len + keep + 1 > h->body_alloc) {
		size_t want = h->body_alloc ? h->body_alloc * 2 : 256;
		uint8_t *nb;

		if (want < m->body_len + keep + 1)
			want = m->body_len + keep + 1;
		if (want > c->cap && want - c->cap > 1) /* never over cap (+1 for the NUL) */
			want = c->cap + 1;
		if (!(nb = realloc(m->body, want))) {
			c->drops[AGT_H2DROP_NOMEM]++;
			m->truncated = 1;
			return;
		}
		m->body = nb;
		h->body_alloc = want;
	}
	memcpy(m->body + m->body_len, p, keep);
	m->body_len += keep;
	m->body[m->body_len] = 0;
}

/* A SETTINGS parameter sent in direction dir. */
static void setting(struct h2_conn *c, int dir, const uint8_t *e)
{
	uint16_t id = (uint16_t)(e[0] << 8 | e[1]);
	uint32_t v = be32(e + 2);

	if (id == H2_SET_HEADER_TABLE_SIZE) {
		c->dir[dir].table_size = v;
	} else if (id == H2_SET_MAX_FRAME_SIZE) {
		/* The frames this side receives (the other direction's) may be this long: only a
		 * sanity bound for us, so it never shrinks. */
		struct h2_dir *o = &c->dir[!dir];

		if (v > H2_LARGEST_FRAME)
			v = H2_LARGEST_FRAME;
		if (v > o->max_frame)
			o->max_frame = v;
	}
}

/* Content bytes of the frame being read in dir. 0, or -1 when the direction was lost. */
static int content(struct h2_conn *c, int dir, const uint8_t *p, size_t n)
{
	struct h2_dir *d = &c->dir[dir];

	switch (d->type) {
	case H2_DATA: body(c, dir, p, n); return 0;
	case H2_HEADERS:
	case H2_PUSH_PROMISE:
	case H2_CONTINUATION:
		d->blk_bytes += n;
		if (d->blk_bytes > H2_MAX_BLOCK) {
			fail(c, dir, AGT_H2DROP_FRAMING);
			return -1;
		}
		if (hpack_feed(c, dir, p, n, 0)) {
			fail(c, dir, AGT_H2DROP_HPACK);
			return -1;
		}
		return 0;
	case H2_SETTINGS:
		while (n) {
			size_t k = sizeof(d->ent) - d->nent;

			k = k < n ? k : n;
			memcpy(d->ent + d->nent, p, k);
			d->nent += k;
			p += k;
			n -= k;
			if (d->nent == sizeof(d->ent)) {
				setting(c, dir, d->ent);
				d->nent = 0;
			}
		}
		return 0;
	default: /* GOAWAY debug data, PING, WINDOW_UPDATE, PRIORITY, RST_STREAM, unknown */
		return 0;
	}
}

/* A SETTINGS frame in direction dir is complete. */
static void settings_end(struct h2_conn *c, int dir)
{
	struct h2_dir *d = &c->dir[dir], *o = &c->dir[!dir];
	int64_t v;

	if (!(d->flags & H2_F_ACK)) {
		if (d->npending == H2_MAX_PENDING) {
			/* The other side's table size can no longer be followed. */
			lose(c, !dir, AGT_H2DROP_HPACK, d->ts);
			return;
		}
		d->pending[d->npending++] = d->table_size;
		return;
	}
	/* The side that sends dir acknowledged the other side's oldest SETTINGS: its encoder (the
	 * one this direction's blocks come from) follows that table size from here on. */
	if (!o->npending)
		return;
	v = o->pending[0];
	memmove(o->pending, o->pending + 1, --o->npending * sizeof(o->pending[0]));
	if (v < 0)
		return;
	if (v > H2_MAX_TABLE)
		v = H2_MAX_TABLE;
	if (nghttp2_hd_inflate_change_table_size(d->hd, (size_t)v))
		fail(c, dir, AGT_H2DROP_HPACK);
}

/* The frame being read in dir is complete (all its payload read or skipped). */
static void frame_end(struct h2_conn *c, int dir)
{
	struct h2_dir *d = &c->dir[dir];
	struct h2_stream *s;

	d->st = H2_ST_HEADER;
	switch (d->type) {
	case H2_DATA:
		d->data_s = NULL;
		if ((d->flags & H2_F_END_STREAM) && (s = find(c, d->sid)))
			msg_end(c, s, dir, d->ts);
		break;
	case H2_HEADERS:
	case H2_PUSH_PROMISE:
	case H2_CONTINUATION:
		if (!(d->flags & H2_F_END_HEADERS))
			break;
		if (hpack_feed(c, dir, NULL, 0, 1)) {
			fail(c, dir, AGT_H2DROP_HPACK);
			break;
		}
		block_end(c, dir);
		break;
	case H2_SETTINGS: settings_end(c, dir); break;
	case H2_RST_STREAM: /* either side gave up: hand over what there is */
		if ((s = find(c, d->sid)))
			finish(c, s, d->ts);
		break;
	case H2_GOAWAY: /* the server will not answer the streams above the last it names */
		if (dir == AGT_DIR_INGRESS && !d->skip) {
			uint32_t last = be32(d->pfx) & 0x7fffffff;

			while (c->nstreams && c->streams[c->nstreams - 1]->id > last)
				finish(c, c->streams[c->nstreams - 1], d->ts);
		}
		break;
	default: break;
	}
}

/* Payload bytes of the frame being read in dir; how many were used (the rest is another
 * frame's, or the direction was lost). */
static size_t payload(struct h2_conn *c, int dir, const uint8_t *p, size_t n)
{
	struct h2_dir *d = &c->dir[dir];
	size_t done = 0;

	while (done < n && d->left && d->st == H2_ST_PAYLOAD) {
		size_t k = n - done < d->left ? n - done : d->left;

		if (d->skip) {
			/* skipped whole */
		} else if (d->npfx < d->need) {
			if (k > (size_t)(d->need - d->npfx))
				k = d->need - d->npfx;
			memcpy(d->pfx + d->npfx, p + done, k);
			d->npfx += k;
			d->left -= k;
			done += k;
			if (d->npfx == d->need && prefix_done(d)) {
				fail(c, dir, AGT_H2DROP_FRAMING);
				return done;
			}
			continue;
		} else if (d->left > d->pad) {
			if (k > d->left - d->pad)
				k = d->left - d->pad;
			d->left -= k;
			done += k;
			if (content(c, dir, p + done - k, k))
				return done;
			continue;
		}
		d->left -= k; /* skipped, or padding */
		done += k;
	}
	if (d->st == H2_ST_PAYLOAD && !d->left)
		frame_end(c, dir);
	return done;
}

static int h2_feed(void *conn, int dir, const uint8_t *data, size_t len, uint64_t ts, uint32_t tid)
{
	struct h2_conn *c = conn;
	struct h2_dir *d;

	if (!c || (dir != AGT_DIR_EGRESS && dir != AGT_DIR_INGRESS))
		return -1;
	if (c->closed)
		return 0;
	d = &c->dir[dir];
	d->ts = ts;
	d->tid = tid;
	d->broke = 0;
	while (len && d->st != H2_ST_LOST) {
		size_t k;

		switch (d->st) {
		case H2_ST_PREFACE:
			/* No preface where the client's bytes begin: the capture began after it
			 * (the connection was told apart by the server's first frame). A frame
			 * cannot begin with 'P': its length would pass any frame size allowed. */
			if (!d->npreface && data[0] != H2_PREFACE[0]) {
				d->st = H2_ST_HEADER;
				k = 0;
				break;
			}
			k = H2_PREFACE_LEN - d->npreface;
			k = k < len ? k : len;
			if (memcmp(data, &H2_PREFACE[d->npreface], k)) {
				fail(c, dir, AGT_H2DROP_FRAMING);
				k = 0;
				break;
			}
			d->npreface += k;
			if (d->npreface == H2_PREFACE_LEN)
				d->st = H2_ST_HEADER;
			break;
		case H2_ST_HEADER:
			if (!d->nhdr) {
				d->frame_ts = ts;
				d->frame_tid = tid;
			}
			k = H2_FRAME_HDR - d->nhdr;
			k = k < len ? k : len;
			memcpy(d->hdr + d->nhdr, data, k);
			d->nhdr += k;
			if (d->nhdr < H2_FRAME_HDR)
				break;
			d->nhdr = 0;
			d->st = H2_ST_PAYLOAD;
			if (frame_begin(c, dir)) {
				fail(c, dir, AGT_H2DROP_FRAMING);
				break;
			}
			if (!d->left)
				frame_end(c, dir);
			break;
		default: k = payload(c, dir, data, len); break;
		}
		data += k;
		len -= k;
	}
	c->drops[AGT_H2DROP_IGNORED_BYTES] += len;
	return d->broke ? -1 : 0;
}

/* Frames whose payload can be missed without harm to what follows: the length says where the
 * next frame starts, and nothing in the payload is needed to read on. */
static int skippable(const struct h2_dir *d)
{
	switch (d->type) {
	case H2_HEADERS:
	case H2_PUSH_PROMISE:
	case H2_CONTINUATION:
	case H2_SETTINGS: return 0;
	default: return 1;
	}
}

static void h2_gap(void *conn, int dir, uint64_t n, uint64_t ts)
{
	struct h2_conn *c = conn;
	struct h2_dir *d;

	if (!c || c->closed || (dir != AGT_DIR_EGRESS && dir != AGT_DIR_INGRESS) || !n)
		return;
	d = &c->dir[dir];
	d->ts = ts;
	if (d->st == H2_ST_LOST)
		return;
	if (d->st != H2_ST_PAYLOAD || n > d->left || !skippable(d)) {
		lose(c, dir, AGT_H2DROP_GAP_LOST, ts);
		return;
	}
	if (d->type == H2_DATA) {
		struct h2_stream *s = d->data_s;
		size_t body_left = d->left > d->pad ? d->left - d->pad : 0;

		c->drops[AGT_H2DROP_GAP_BODY]++;
		if (d->skip) {
			/* Already skipping this frame (and counted its bytes as body). */
		} else if (d->npfx < d->need) {
			/* The padding length is among the missed bytes: the rest of the frame
			 * cannot be told from its padding, so it is skipped, and all of it counts
			 * as body. */
			d->skip = 1;
			body(c, dir, NULL, d->left - (d->need - d->npfx));
			if (s && s->half[dir].m)
				s->half[dir].m->truncated = 1;
		} else {
			body(c, dir, NULL, n < body_left ? n : body_left);
		}
	} else if (d->npfx < d->need) {
		d->skip = 1; /* GOAWAY without its last stream id: nothing to act on */
	}
	d->left -= (uint32_t)n;
	if (!d->left)
		frame_end(c, dir);
}

static void *h2_open(void *shared, uint32_t pid, size_t cap, uint64_t *drops,
		     const struct agt_proto_out *out)
{
	struct h2_conn *c = calloc(1, sizeof(*c));

	(void)shared;
	(void)pid;
	if (!c)
		return NULL;
	if (nghttp2_hd_inflate_new(&c->dir[0].hd) || nghttp2_hd_inflate_new(&c->dir[1].hd)) {
		nghttp2_hd_inflate_del(c->dir[0].hd);
		free(c);
		return NULL;
	}
	c->cap = cap;
	c->drops = drops ? drops : c->own_drops;
	if (out)
		c->out = *out;
	c->dir[AGT_DIR_EGRESS].st = H2_ST_PREFACE;
	c->dir[AGT_DIR_INGRESS].st = H2_ST_HEADER; /* a server starts with a SETTINGS frame */
	for (int d = 0; d < 2; d++)
		c->dir[d].max_frame = H2_DEFAULT_FRAME;
	return c;
}

/* A connection HTTP/1.1 upgraded (Upgrade: h2c answered 101, RFC 7540 3.2): the request that
 * asked is stream 1's, ended, and its response comes as HTTP/2; the client's preface comes
 * next, the server's SETTINGS first. (Settings in the request's HTTP2-Settings header are not
 * read: a HEADER_TABLE_SIZE there would not be followed.) */
static void *h2_adopt(void *shared, uint32_t pid, size_t cap, uint64_t *drops,
		      const struct agt_proto_out *out, struct agt_http_msg *req)
{
	struct h2_conn *c = h2_open(shared, pid, cap, drops, out);
	struct h2_stream *s;

	if (!c || !req) {
		agt_http_msg_free(req);
		return c;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		c->drops[AGT_H2DROP_NOMEM]++;
		if (c->out.exchange)
			c->out.exchange(c->out.ctx, req, NULL);
		else
			agt_http_msg_free(req);
		return c;
	}
	s->id = 1;
	s->half[AGT_DIR_EGRESS].m = req;
	s->half[AGT_DIR_EGRESS].headers_done = 1;
	s->half[AGT_DIR_EGRESS].ended = 1;
	c->streams[c->nstreams++] = s;
	c->last_sid = 1;
	return c;
}

static void h2_close(void *conn, uint64_t ts)
{
	struct h2_conn *c = conn;

	if (!c || c->closed)
		return;
	c->closed = 1;
	while (c->nstreams)
		finish_as(c, c->streams[0], ts, 1);
}

static void h2_free(void *conn)
{
	struct h2_conn *c = conn;

	if (!c)
		return;
	for (int i = 0; i < c->nstreams; i++)
		stream_free(c->streams[i]);
	nghttp2_hd_inflate_del(c->dir[0].hd);
	nghttp2_hd_inflate_del(c->dir[1].hd);
	free(c);
}

const struct agt_proto agt_proto_http2 = {
    .name = "http2",
    .sources = 1u << AGT_SRC_TLS | 1u << AGT_SRC_TCP,
    .drop_names = agt_h2drop_names,
    .ndrops = AGT_H2DROP_MAX,
    .detect = h2_detect,
    .open = h2_open,
    .feed = h2_feed,
    .adopt = h2_adopt,
    .gap = h2_gap,
    .close = h2_close,
    .free = h2_free,
};
