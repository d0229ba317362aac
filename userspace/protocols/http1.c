#include "protocols/http1.h"
#include "agtrace.h"
#include "protocols/proto.h"
#include <ctype.h>
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct agt_http_dir {
	http_parser p;
	http_parser_settings s;
	struct agt_http_msg *m;
	size_t body_cap;
	agt_http_msg_cb cb;
	void *ctx;
	uint64_t ts;
	uint32_t tid;
	int last_was_value; /* header callbacks: field and value come in pieces */
	int broken;	    /* after a parse error: wait for a message start */
	int filling;	    /* feeding filler for a capture gap: not body bytes */
	int headers_done;   /* the open message's headers are complete: it knows what it is */
	unsigned breaks;    /* framing lost so far (bad bytes, or a gap it cannot skip) */
	size_t used;	    /* bytes of the last feed the parser took (less after an upgrade) */
	int cut_handed;	    /* the message the last break cut was handed over, incomplete */
};

static int append(char **dst, const char *at, size_t len)
{
	size_t old = *dst ? strlen(*dst) : 0;
	char *n = realloc(*dst, old + len + 1);

	if (!n)
		return -1;
	memcpy(n + old, at, len);
	n[old + len] = 0;
	*dst = n;
	return 0;
}

static int on_begin(http_parser *p)
{
	struct agt_http_dir *d = p->data;

	agt_http_msg_free(d->m);
	d->m = calloc(1, sizeof(*d->m));
	if (!d->m)
		return -1;
	d->m->start_ns = d->ts;
	d->m->tid = d->tid;
	d->last_was_value = 1;
	d->headers_done = 0;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct agt_http_dir *d = p->data;

	if (!d->m) /* callbacks out of order after a framing error: resynchronise */
		return -1;
	return append(&d->m->url, at, len);
}

static int on_field(http_parser *p, const char *at, size_t len)
{
	struct agt_http_dir *d = p->data;
	struct agt_http_msg *m = d->m;

	if (!d->m) /* callbacks out of order after a framing error: resynchronise */
		return -1;

	if (d->last_was_value) {
		struct agt_http_header *h = realloc(m->hdrs, (m->nhdrs + 1) * sizeof(*h));

		if (!h || m->nhdrs >= 256)
			return -1;
		m->hdrs = h;
		m->hdrs[m->nhdrs++] = (struct agt_http_header){NULL, NULL};
		d->last_was_value = 0;
	}
	return append(&m->hdrs[m->nhdrs - 1].name, at, len);
}

static int on_value(http_parser *p, const char *at, size_t len)
{
	struct agt_http_dir *d = p->data;
	struct agt_http_msg *m = d->m;

	if (!d->m) /* callbacks out of order after a framing error: resynchronise */
		return -1;

	if (!m->nhdrs)
		return -1;
	d->last_was_value = 1;
	return append(&m->hdrs[m->nhdrs - 1].value, at, len);
}

static int on_headers(http_parser *p)
{
	struct agt_http_dir *d = p->data;
	struct agt_http_msg *m = d->m;

	if (!d->m) /* callbacks out of order after a framing error: resynchronise */
		return -1;

	d->headers_done = 1;
	m->end_ns = d->ts; /* the last byte so far: what a message cut short ends at */
	m->is_request = p->type == HTTP_REQUEST;
	if (m->is_request)
		snprintf(m->method, sizeof(m->method), "%s", http_method_str(p->method));
	else
		m->status = p->status_code;
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct agt_http_dir *d = p->data;
	struct agt_http_msg *m = d->m;
	size_t keep = len;

	if (!d->m) /* callbacks out of order after a framing error: resynchronise */
		return -1;

	if (!m->first_body_ns)
		m->first_body_ns = d->ts;
	m->end_ns = d->ts;
	m->body_seen += len;
	if (d->filling)
		return 0;
	if (m->body_len + keep > d->body_cap) {
		keep = d->body_cap - m->body_len;
		m->truncated = 1;
	}
	if (keep) {
		uint8_t *nb = realloc(m->body, m->body_len + keep + 1);

		if (!nb)
			return -1;
		memcpy(nb + m->body_len, at, keep);
		m->body = nb;
		m->body_len += keep;
		m->body[m->body_len] = 0;
	}
	return 0;
}

/* Hand the open message over, ended at ts. */
static void deliver(struct agt_http_dir *d, uint64_t ts)
{
	struct agt_http_msg *m = d->m;

	d->m = NULL;
	m->end_ns = ts;
	if (!m->url)
		m->url = strdup("");
	d->cb(d->ctx, m);
}

static int on_complete(http_parser *p)
{
	struct agt_http_dir *d = p->data;

	if (!d->m) /* callbacks out of order after a framing error: resynchronise */
		return -1;
	deliver(d, d->ts);
	return 0;
}

static void reset(struct agt_http_dir *d)
{
	http_parser_init(&d->p, HTTP_BOTH);
	d->p.data = d;
}

struct agt_http_dir *agt_http_dir_new(size_t body_cap, agt_http_msg_cb cb, void *ctx)
{
	struct agt_http_dir *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->body_cap = body_cap;
	d->cb = cb;
	d->ctx = ctx;
	http_parser_settings_init(&d->s);
	d->s.on_message_begin = on_begin;
	d->s.on_url = on_url;
	d->s.on_header_field = on_field;
	d->s.on_header_value = on_value;
	d->s.on_headers_complete = on_headers;
	d->s.on_body = on_body;
	d->s.on_message_complete = on_complete;
	reset(d);
	return d;
}

/* A plausible start of an HTTP/1.x message: a status line or METHOD SP. */
static int looks_like_start(const uint8_t *b, size_t n)
{
	size_t i = 0;

	if (n >= 7 && !memcmp(b, "HTTP/1.", 7))
		return 1;
	while (i < n && i < 10 && isupper(b[i]))
		i++;
	return i >= 3 && i < n && b[i] == ' ';
}

int agt_http_dir_feed(struct agt_http_dir *d, const uint8_t *data, size_t len, uint64_t ts,
		      uint32_t tid)
{
	size_t done;

	d->ts = ts;
	d->tid = tid;
	if (d->broken) {
		if (!looks_like_start(data, len))
			return -1;
		d->broken = 0;
		reset(d);
	}
	done = http_parser_execute(&d->p, &d->s, (const char *)data, len);
	d->used = done;
	if (HTTP_PARSER_ERRNO(&d->p) != HPE_OK || (done != len && !d->p.upgrade)) {
		/* What arrived of a message whose headers were complete is handed over, cut: its
		 * counterpart (a request's response) is not left waiting for the next one's. */
		d->breaks++;
		d->cut_handed = 0;
		if (d->m && d->headers_done) {
			d->m->incomplete = 1;
			d->m->truncated = 1;
			d->cut_handed = 1;
			deliver(d, d->ts);
		}
		agt_http_msg_free(d->m);
		d->m = NULL;
		d->broken = 1;
		return -1;
	}
	return 0;
}

size_t agt_http_dir_used(const struct agt_http_dir *d)
{
	return d->used;
}

unsigned agt_http_dir_breaks(const struct agt_http_dir *d, int *cut_handed)
{
	*cut_handed = d->cut_handed;
	return d->breaks;
}

void agt_http_dir_gap(struct agt_http_dir *d, size_t n, uint64_t ts)
{
	static const uint8_t filler[4096];

	d->ts = ts;
	if (d->m)
		d->m->truncated = 1;
	/* Inside a body of known length the parser can skip the gap; anywhere else the framing
	 * is lost: finish what we have and wait for the next message. */
	if (d->m && !d->broken && !(d->p.flags & F_CHUNKED) && d->p.content_length != ULLONG_MAX &&
	    d->p.content_length >= n && d->m->body_seen) {
		d->filling = 1;
		while (n && !d->broken) {
			size_t k = n < sizeof(filler) ? n : sizeof(filler);

			if (http_parser_execute(&d->p, &d->s, (const char *)filler, k) != k)
				d->broken = 1;
			n -= k;
		}
		d->filling = 0;
		return;
	}
	d->breaks += !d->broken;
	d->cut_handed = 0;
	if (d->m && d->headers_done) {
		d->cut_handed = 1;
		deliver(d, ts);
	}
	/* A message cut inside its headers is not even known to be a request or a response: its
	 * bytes are already counted as the gap, and it is dropped. */
	agt_http_msg_free(d->m);
	d->m = NULL;
	d->broken = 1;
}

void agt_http_dir_close(struct agt_http_dir *d, uint64_t ts)
{
	d->ts = ts;
	if (!d->broken && d->m)
		http_parser_execute(&d->p, &d->s, NULL, 0); /* EOF ends a read-until-close body */
}

struct agt_http_msg *agt_http_dir_take(struct agt_http_dir *d)
{
	struct agt_http_msg *m = d->m;

	if (!m || d->broken || !d->headers_done)
		return NULL;
	d->m = NULL;
	m->incomplete = 1;
	if (!m->url)
		m->url = strdup("");
	reset(d);
	return m;
}

void agt_http_dir_free(struct agt_http_dir *d)
{
	if (!d)
		return;
	agt_http_msg_free(d->m);
	free(d);
}


/* ---- HTTP/1.1 as a protocol of the stream layer: requests the process writes are paired with
 * the responses it reads, first in first out (so pipelining works). ---- */

enum { H1_NOT_HTTP, H1_ORPHAN_RESP, H1_PENDING_FULL, H1_RESYNC, H1_DROPS };
static const char *const h1_drop_names[H1_DROPS] = {"not_http", "response_without_request",
						    "pending_requests_full", "http1_resync"};

#define H1_MAX_PENDING 64

struct h1 {
	struct agt_http_dir *d[2]; /* egress: requests; ingress: responses */
	struct agt_http_msg **pending; /* requests waiting for their response, oldest first */
	int npending;
	int feeding;		      /* the direction being fed */
	int h2c;		      /* a 101 read answered "Upgrade: h2c": HTTP/2 from here on */
	struct agt_http_msg *h2c_req; /* the request it answered: HTTP/2's stream 1 */
	uint64_t *drops;
	const struct agt_proto_out *out;
};

/* An Upgrade header's value naming cleartext HTTP/2 ("h2c", alone or first in a list). */
static int is_h2c(const char *v)
{
	if (!v)
		return 0;
	v += strspn(v, " \t");
	return !strncasecmp(v, "h2c", 3) && (!v[3] || strchr(" \t,", v[3]));
}

static void h1_msg(void *ctx, struct agt_http_msg *m)
{
	struct h1 *h = ctx;

	if (m->is_request) {
		struct agt_http_msg **n = NULL;

		if (h->npending >= H1_MAX_PENDING ||
		    !(n = realloc(h->pending, (h->npending + 1) * sizeof(*n)))) {
			h->drops[H1_PENDING_FULL]++;
			agt_http_msg_free(m);
			return;
		}
		h->pending = n;
		h->pending[h->npending++] = m;
		return;
	}
	if (h->feeding == AGT_DIR_INGRESS && m->status == 101 &&
	    is_h2c(agt_http_header(m, "upgrade"))) {
		/* Switching to HTTP/2 (RFC 7540 3.2): the request's answer is stream 1's. */
		h->h2c = 1;
		if (h->npending) {
			h->h2c_req = h->pending[0];
			memmove(h->pending, h->pending + 1, --h->npending * sizeof(*h->pending));
		}
		agt_http_msg_free(m);
		return;
	}
	if (!h->npending) {
		h->drops[H1_ORPHAN_RESP]++;
		agt_http_msg_free(m);
		return;
	}
	struct agt_http_msg *req = h->pending[0];

	memmove(h->pending, h->pending + 1, --h->npending * sizeof(*h->pending));
	h->out->exchange(h->out->ctx, req, m);
}

/* HTTP/1.x from its first bytes: a status line, or METHOD SP (not HTTP/2's preface, whose
 * PRI method is HTTP/2's). */
static enum agt_detect h1_detect(const uint8_t *b, size_t n, int dir)
{
	static const char h2[] = "PRI * HTTP/2.0";
	size_t i = 0;

	(void)dir;
	if (!memcmp(b, h2, n < sizeof(h2) - 1 ? n : sizeof(h2) - 1))
		return n < sizeof(h2) - 1 ? AGT_DETECT_MORE : AGT_DETECT_NO;
	if (!memcmp(b, "HTTP/1.", n < 7 ? n : 7))
		return n < 7 ? AGT_DETECT_MORE : AGT_DETECT_YES;
	while (i < n && i < 10 && isupper(b[i]))
		i++;
	if (i == n && i < 10)
		return AGT_DETECT_MORE;
	return i >= 3 && i < n && b[i] == ' ' ? AGT_DETECT_YES : AGT_DETECT_NO;
}

static void *h1_open(void *shared, uint32_t pid, size_t cap, uint64_t *drops,
		     const struct agt_proto_out *out)
{
	struct h1 *h = calloc(1, sizeof(*h));

	(void)shared;
	(void)pid;
	if (!h)
		return NULL;
	h->drops = drops;
	h->out = out;
	for (int d = 0; d < 2; d++)
		if (!(h->d[d] = agt_http_dir_new(cap, h1_msg, h))) {
			agt_http_dir_free(h->d[0]);
			free(h);
			return NULL;
		}
	return h;
}

/* The framing of a direction was lost since breaks0: counted once per loss. A response cut
 * before it could be handed over leaves its request unanswered (handed over so): the next
 * response answers the next request, not this one, and parsing resumes at the next message. */
static void h1_after(struct h1 *h, int dir, unsigned breaks0)
{
	int cut_handed;
	unsigned breaks = agt_http_dir_breaks(h->d[dir], &cut_handed);

	if (breaks == breaks0)
		return;
	h->drops[H1_RESYNC] += breaks - breaks0;
	if (dir == AGT_DIR_INGRESS && !cut_handed && h->npending) {
		struct agt_http_msg *req = h->pending[0];

		memmove(h->pending, h->pending + 1, --h->npending * sizeof(*h->pending));
		h->out->exchange(h->out->ctx, req, NULL);
	}
}

static int h1_feed(void *conn, int dir, const uint8_t *data, size_t len, uint64_t ts,
		   uint32_t tid)
{
	struct h1 *h = conn;
	int cut;
	unsigned b0 = agt_http_dir_breaks(h->d[dir & 1], &cut);

	h->feeding = dir & 1;
	if (agt_http_dir_feed(h->d[dir & 1], data, len, ts, tid)) {
		h->drops[H1_NOT_HTTP]++;
		h1_after(h, dir & 1, b0);
		return -1;
	}
	return h->h2c ? AGT_FEED_SWITCH : 0;
}

static void h1_switched(void *conn, struct agt_proto_switch *sw)
{
	struct h1 *h = conn;

	sw->to = "http2";
	sw->req = h->h2c_req;
	sw->used = agt_http_dir_used(h->d[AGT_DIR_INGRESS]);
	h->h2c_req = NULL;
}

static void h1_gap(void *conn, int dir, uint64_t n, uint64_t ts)
{
	struct h1 *h = conn;
	int cut;
	unsigned b0 = agt_http_dir_breaks(h->d[dir & 1], &cut);

	agt_http_dir_gap(h->d[dir & 1], n, ts);
	h1_after(h, dir & 1, b0);
}

static void h1_close(void *conn, uint64_t ts)
{
	struct h1 *h = conn;

	struct agt_http_msg *cut;

	for (int d = 0; d < 2; d++) /* a response read until the connection closed ends here */
		agt_http_dir_close(h->d[d], ts);
	/* A response cut short (the process died mid-stream): what arrived answers the oldest
	 * request, marked incomplete, ending at its last byte. */
	cut = agt_http_dir_take(h->d[AGT_DIR_INGRESS]);
	if (cut && h->npending) {
		struct agt_http_msg *req = h->pending[0];

		memmove(h->pending, h->pending + 1, --h->npending * sizeof(*h->pending));
		h->out->exchange(h->out->ctx, req, cut);
	} else {
		agt_http_msg_free(cut);
	}
	for (int i = 0; i < h->npending; i++)
		h->out->exchange(h->out->ctx, h->pending[i], NULL);
	h->npending = 0;
}

static void h1_free(void *conn)
{
	struct h1 *h = conn;

	for (int d = 0; d < 2; d++)
		agt_http_dir_free(h->d[d]);
	for (int i = 0; i < h->npending; i++)
		agt_http_msg_free(h->pending[i]);
	free(h->pending);
	agt_http_msg_free(h->h2c_req);
	free(h);
}

const struct agt_proto agt_proto_http1 = {
    .name = "http1",
    .sources = 1u << AGT_SRC_TLS | 1u << AGT_SRC_TCP,
    .drop_names = h1_drop_names,
    .ndrops = H1_DROPS,
    .detect = h1_detect,
    .open = h1_open,
    .feed = h1_feed,
    .switched = h1_switched,
    .gap = h1_gap,
    .close = h1_close,
    .free = h1_free,
};
