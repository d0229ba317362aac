#include "export/pb.h"
#include "base/utf8.h"
#include <stdlib.h>
#include <string.h>

void agt_pb_init(struct agt_pb *p)
{
	memset(p, 0, sizeof(*p));
}

void agt_pb_free(struct agt_pb *p)
{
	free(p->buf);
	memset(p, 0, sizeof(*p));
}

void agt_pb_reset(struct agt_pb *p)
{
	p->len = 0;
	p->depth = 0;
	p->failed = 0;
}

static int reserve(struct agt_pb *p, size_t n)
{
	size_t cap = p->cap ? p->cap : 1024;
	uint8_t *b;

	if (p->len + n <= p->cap)
		return 0;
	while (cap < p->len + n)
		cap *= 2;
	if (!(b = realloc(p->buf, cap))) {
		p->failed = 1;
		return -1;
	}
	p->buf = b;
	p->cap = cap;
	return 0;
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static void put_varint_at(uint8_t *d, uint64_t v)
{
	while (v >= 0x80) {
		*d++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*d = (uint8_t)v;
}

static void put_varint(struct agt_pb *p, uint64_t v)
{
	if (reserve(p, 10))
		return;
	put_varint_at(p->buf + p->len, v);
	p->len += varint_len(v);
}

static void tag(struct agt_pb *p, uint32_t field, int wire)
{
	put_varint(p, ((uint64_t)field << 3) | (uint64_t)wire);
}

void agt_pb_varint(struct agt_pb *p, uint32_t field, uint64_t v)
{
	tag(p, field, 0);
	put_varint(p, v);
}

static void put_le(struct agt_pb *p, uint64_t v, int n)
{
	if (reserve(p, (size_t)n))
		return;
	for (int i = 0; i < n; i++)
		p->buf[p->len++] = (uint8_t)(v >> (8 * i));
}

void agt_pb_fixed64(struct agt_pb *p, uint32_t field, uint64_t v)
{
	tag(p, field, 1);
	put_le(p, v, 8);
}

void agt_pb_fixed32(struct agt_pb *p, uint32_t field, uint32_t v)
{
	tag(p, field, 5);
	put_le(p, v, 4);
}

void agt_pb_double(struct agt_pb *p, uint32_t field, double v)
{
	uint64_t u;

	memcpy(&u, &v, 8);
	agt_pb_fixed64(p, field, u);
}

void agt_pb_raw(struct agt_pb *p, const void *b, size_t n)
{
	if (!n || reserve(p, n))
		return;
	memcpy(p->buf + p->len, b, n);
	p->len += n;
}

void agt_pb_bytes(struct agt_pb *p, uint32_t field, const void *b, size_t n)
{
	tag(p, field, 2);
	put_varint(p, n);
	agt_pb_raw(p, b, n);
}

void agt_pb_strn(struct agt_pb *p, uint32_t field, const char *s, size_t n)
{
	size_t out;

	if (agt_utf8_valid(s, n)) {
		agt_pb_bytes(p, field, s, n);
		return;
	}
	/* Repaired in place at the end of the buffer: the length comes first, so write the
	 * repaired text after a maximal length field and move it back. */
	tag(p, field, 2);
	if (reserve(p, 10 + AGT_UTF8_SANITIZED_MAX(n)))
		return;
	p->replaced += agt_utf8_sanitize(s, n, (char *)p->buf + p->len + 10, &out);
	put_varint_at(p->buf + p->len, out);
	memmove(p->buf + p->len + varint_len(out), p->buf + p->len + 10, out);
	p->len += varint_len(out) + out;
}

void agt_pb_str(struct agt_pb *p, uint32_t field, const char *s)
{
	agt_pb_strn(p, field, s ? s : "", s ? strlen(s) : 0);
}

void agt_pb_begin(struct agt_pb *p, uint32_t field)
{
	tag(p, field, 2);
	if (p->depth >= AGT_PB_MAX_DEPTH || reserve(p, 1)) {
		p->failed = 1;
		return;
	}
	p->buf[p->len++] = 0; /* the length, one byte until end says otherwise */
	p->open[p->depth++] = p->len;
}

void agt_pb_end(struct agt_pb *p)
{
	size_t start, n, k;

	if (p->depth <= 0) {
		p->failed = 1;
		return;
	}
	start = p->open[--p->depth];
	n = p->len - start;
	k = varint_len(n);
	if (k > 1) {
		if (reserve(p, k - 1))
			return;
		memmove(p->buf + start + k - 1, p->buf + start, n);
		p->len += k - 1;
	}
	put_varint_at(p->buf + start - 1, n);
}

static int get_varint(const uint8_t *b, size_t n, size_t *off, uint64_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 64 && *off < n; shift += 7) {
		uint8_t c = b[(*off)++];

		x |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

int agt_pb_next(const uint8_t *buf, size_t n, size_t *off, uint32_t *field, int *wire,
		uint64_t *v, const uint8_t **data, size_t *len)
{
	uint64_t t, l;

	if (*off >= n)
		return 0;
	if (get_varint(buf, n, off, &t) || (t >> 3) == 0 || (t >> 3) > 0x1fffffff)
		return -1;
	*field = (uint32_t)(t >> 3);
	*wire = (int)(t & 7);
	*data = NULL;
	*len = 0;
	switch (*wire) {
	case 0: return get_varint(buf, n, off, v) ? -1 : 1;
	case 1:
	case 5: {
		size_t w = *wire == 1 ? 8 : 4;

		if (n - *off < w)
			return -1;
		*v = 0;
		for (size_t i = 0; i < w; i++)
			*v |= (uint64_t)buf[*off + i] << (8 * i);
		*off += w;
		return 1;
	}
	case 2:
		if (get_varint(buf, n, off, &l) || l > n - *off)
			return -1;
		*data = buf + *off;
		*len = (size_t)l;
		*off += (size_t)l;
		return 1;
	default: return -1;
	}
}
