#include "protocols/http1.h"
#include <ctype.h>
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <brotli/decode.h>
#include <zlib.h>

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
	if (HTTP_PARSER_ERRNO(&d->p) != HPE_OK || (done != len && !d->p.upgrade)) {
		agt_http_msg_free(d->m);
		d->m = NULL;
		d->broken = 1;
		return -1;
	}
	return 0;
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
	if (d->m && d->headers_done)
		deliver(d, ts);
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

void agt_http_dir_free(struct agt_http_dir *d)
{
	if (!d)
		return;
	agt_http_msg_free(d->m);
	free(d);
}

const char *agt_http_header(const struct agt_http_msg *m, const char *name)
{
	for (int i = 0; i < m->nhdrs; i++)
		if (m->hdrs[i].name && !strcasecmp(m->hdrs[i].name, name))
			return m->hdrs[i].value ? m->hdrs[i].value : "";
	return NULL;
}

/* Brotli (what APIs send when the client accepts it, as Node's fetch does). */
static int decode_brotli(struct agt_http_msg *m, size_t cap)
{
	BrotliDecoderState *st = BrotliDecoderCreateInstance(NULL, NULL, NULL);
	size_t ocap = m->body_len * 4 + 1024, olen = 0, in_left = m->body_len;
	const uint8_t *in = m->body;
	uint8_t *out = malloc(ocap + 1);
	BrotliDecoderResult r = BROTLI_DECODER_RESULT_ERROR;

	while (st && out) {
		size_t out_left = ocap - olen;
		uint8_t *next = out + olen;

		r = BrotliDecoderDecompressStream(st, &in_left, &in, &out_left, &next, NULL);
		olen = ocap - out_left;
		if (r != BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT)
			break;
		if (ocap >= cap) {
			m->truncated = 1;
			break;
		}
		ocap = ocap * 2 > cap ? cap : ocap * 2;
		uint8_t *n = realloc(out, ocap + 1);

		if (!n)
			break;
		out = n;
	}
	if (st)
		BrotliDecoderDestroyInstance(st);
	if (!out || (r == BROTLI_DECODER_RESULT_ERROR && !olen)) {
		free(out);
		return -1;
	}
	if (r != BROTLI_DECODER_RESULT_SUCCESS)
		m->truncated = 1; /* cut by the capture or the cap: what decoded is kept */
	free(m->body);
	m->body = out;
	m->body_len = olen;
	m->body[olen] = 0;
	return 0;
}

int agt_http_decode_body(struct agt_http_msg *m, size_t cap)
{
	const char *enc = agt_http_header(m, "Content-Encoding");
	z_stream z;
	uint8_t *out;
	size_t olen = 0, ocap;
	int wbits, rc = Z_DATA_ERROR;

	if (!enc || !m->body_len || !strcasecmp(enc, "identity"))
		return 0;
	if (!strcasecmp(enc, "br"))
		return decode_brotli(m, cap);
	if (!strcasecmp(enc, "gzip") || !strcasecmp(enc, "x-gzip"))
		wbits = 15 + 16;
	else if (!strcasecmp(enc, "deflate"))
		wbits = 15 + 32; /* zlib-wrapped, as the RFC says; raw deflate below */
	else
		return -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		memset(&z, 0, sizeof(z));
		if (inflateInit2(&z, attempt ? -15 : wbits) != Z_OK)
			return -1;
		ocap = m->body_len * 4 + 1024;
		out = malloc(ocap + 1);
		z.next_in = m->body;
		z.avail_in = (uInt)m->body_len;
		olen = 0;
		do {
			if (olen == ocap) {
				uint8_t *n;

				if (ocap >= cap) {
					m->truncated = 1;
					break;
				}
				ocap = ocap * 2 > cap ? cap : ocap * 2;
				n = out ? realloc(out, ocap + 1) : NULL;
				if (!n)
					break;
				out = n;
			}
			if (!out)
				break;
			z.next_out = out + olen;
			z.avail_out = (uInt)(ocap - olen);
			rc = inflate(&z, Z_NO_FLUSH);
			olen = ocap - z.avail_out;
		} while (rc == Z_OK);
		inflateEnd(&z);
		if (out && (rc == Z_STREAM_END || (rc == Z_BUF_ERROR && m->truncated) || olen)) {
			if (rc != Z_STREAM_END)
				m->truncated = 1;
			free(m->body);
			m->body = out;
			m->body_len = olen;
			m->body[olen] = 0;
			return 0;
		}
		free(out);
		if (wbits != 15 + 32)
			break;
	}
	return -1;
}

void agt_http_msg_free(struct agt_http_msg *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nhdrs; i++) {
		free(m->hdrs[i].name);
		free(m->hdrs[i].value);
	}
	free(m->hdrs);
	free(m->url);
	free(m->body);
	free(m);
}

int agt_sse_parse(const char *body, size_t len, agt_sse_cb fn, void *ctx)
{
	char event[64] = "";
	char *data = NULL;
	size_t dlen = 0;
	int n = 0;

	if (!body || !len)
		return 0;
	for (size_t pos = 0; pos <= len;) {
		size_t e = pos;
		const char *line = body + pos;
		size_t ll;

		while (e < len && body[e] != '\n' && body[e] != '\r')
			e++;
		ll = e - pos;
		if (e < len && body[e] == '\r' && e + 1 < len && body[e + 1] == '\n')
			e++;
		pos = e + 1;
		if (ll == 0) { /* blank line: dispatch */
			if (data) {
				fn(ctx, event[0] ? event : "message", data);
				n++;
			}
			free(data);
			data = NULL;
			dlen = 0;
			event[0] = 0;
			if (e >= len)
				break;
			continue;
		}
		if (line[0] == ':')
			continue;
		const char *colon = memchr(line, ':', ll);
		size_t flen = colon ? (size_t)(colon - line) : ll;
		const char *val = colon ? colon + 1 : line + ll;
		size_t vlen = colon ? ll - flen - 1 : 0;

		if (vlen && *val == ' ')
			val++, vlen--;
		if (flen == 5 && !memcmp(line, "event", 5)) {
			snprintf(event, sizeof(event), "%.*s", (int)vlen, val);
		} else if (flen == 4 && !memcmp(line, "data", 4)) {
			char *nd = realloc(data, dlen + vlen + 2);

			if (!nd)
				break;
			data = nd;
			if (dlen)
				data[dlen++] = '\n';
			memcpy(data + dlen, val, vlen);
			dlen += vlen;
			data[dlen] = 0;
		}
	}
	if (data) { /* a stream cut before its final blank line */
		fn(ctx, event[0] ? event : "message", data);
		n++;
	}
	free(data);
	return n;
}
