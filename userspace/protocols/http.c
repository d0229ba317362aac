/* HTTP messages whatever carried them: header lookup, body decoding, SSE. */
#include "protocols/http.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <brotli/decode.h>
#include <zlib.h>

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
