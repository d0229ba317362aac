#include "base/jsonw.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void agt_jw_init(struct agt_jw *w)
{
	memset(w, 0, sizeof(*w));
	w->first[0] = 1;
}

void agt_jw_free(struct agt_jw *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

void agt_jw_reset(struct agt_jw *w)
{
	w->len = 0;
	w->depth = 0;
	w->first[0] = 1;
	w->failed = 0;
	if (w->buf)
		w->buf[0] = 0;
}

static int grow_to(struct agt_jw *w, size_t n)
{
	size_t cap = w->cap ? w->cap : 1024;
	char *b;

	while (cap < w->len + n + 1)
		cap *= 2;
	if (!(b = realloc(w->buf, cap))) {
		w->failed = 1;
		return -1;
	}
	w->buf = b;
	w->cap = cap;
	return 0;
}

/* Room for n more bytes and the NUL after them. */
static inline int reserve(struct agt_jw *w, size_t n)
{
	if (__builtin_expect(w->len + n + 1 <= w->cap, 1))
		return 0;
	return grow_to(w, n);
}

static inline void put(struct agt_jw *w, const char *s, size_t n)
{
	if (reserve(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = 0;
}

static inline void putc1(struct agt_jw *w, char c)
{
	if (reserve(w, 1))
		return;
	w->buf[w->len++] = c;
	w->buf[w->len] = 0;
}

/* Bytes JSON takes as they are inside a string: printable ASCII but '"' and '\\' (not NUL, so a
 * scan of a NUL-terminated string stops at its end too). */
#define P16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
static const uint8_t plain_byte[256] = {
    P16(0), P16(0), /* controls */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* ' ', '!', '"' ... */
    P16(1), P16(1),
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* ... '\\' ... */
    P16(1), P16(1),
    P16(0), P16(0), P16(0), P16(0), P16(0), P16(0), P16(0), P16(0), /* from 0x80 */
};
#undef P16

/* Bytes at the start of s[0..n) that JSON takes as they are: most text is all of it. */
static inline size_t plain_run(const unsigned char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	size_t i = 0;

	/* Eight bytes at a time: none below 0x20, none from 0x80, no '"' and no '\\'. */
	for (; i + 8 <= n; i += 8) {
		uint64_t v, q, b;

		memcpy(&v, s + i, 8);
		q = v ^ (ones * '"');
		b = v ^ (ones * '\\');
		if ((((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((b - ones) & ~b) | v) & high)
			break;
	}
	while (i < n && plain_byte[s[i]])
		i++;
	return i;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when it is not one: overlong forms,
 * surrogates and code points past U+10FFFF are invalid (RFC 3629). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
			return 0; /* overlong, or a surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
			return 0; /* overlong, or past U+10FFFF */
		return 4;
	}
	return 0;
}

void agt_jw_escaped(struct agt_jw *w, const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		/* Copy runs of plain ASCII at once: most text is. */
		size_t run = i + plain_run(s + i, n - i);

		if (run > i) {
			put(w, (const char *)s + i, run - i);
			i = run;
			continue;
		}
		unsigned char c = s[i];

		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};

			put(w, e, 2);
			i++;
		} else if (c < 0x20) {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

			switch (c) {
			case '\n': put(w, "\\n", 2); break;
			case '\r': put(w, "\\r", 2); break;
			case '\t': put(w, "\\t", 2); break;
			case '\b': put(w, "\\b", 2); break;
			case '\f': put(w, "\\f", 2); break;
			default: put(w, e, 6);
			}
			i++;
		} else {
			size_t k = utf8_seq(s + i, n - i);

			if (k) {
				put(w, (const char *)s + i, k);
				i += k;
			} else { /* one invalid byte: U+FFFD, and go on at the next one */
				put(w, "\xef\xbf\xbd", 3);
				w->replaced++;
				i++;
			}
		}
	}
}

/* Room kept for a key or a value's plain run copied in one pass. */
#define CHUNK 64 /* a multiple of 4 (copy_plain) */

/* Where the next n bytes (and the NUL after them) go: w's end, grown when needed; NULL when out
 * of memory. Writers fill it through a local pointer and set the length once (end_at): a store
 * through a char pointer may alias *w, so w->len kept up to date at every byte would be stored
 * and loaded again at every byte. */
static inline char *room(struct agt_jw *w, size_t n)
{
	if (__builtin_expect(w->len + n + 1 <= w->cap, 1) || !grow_to(w, n))
		return w->buf + w->len;
	return NULL;
}

/* The text ends at p (w's buffer). */
static inline void end_at(struct agt_jw *w, char *p)
{
	*p = 0;
	w->len = (size_t)(p - w->buf);
}

/* Copy the plain bytes at the start of the NUL-terminated s to o, at most max of them: one pass
 * that measures, checks and copies. How many. */
static inline size_t copy_plain(char *restrict o, const unsigned char *restrict s, size_t max)
{
	size_t i = 0;

	/* Four bytes a round, each read only once the one before it is known not to be the NUL:
	 * one bound check a round instead of one a byte (max is a multiple of 4). */
	while (i < max) {
		if (!plain_byte[s[i]])
			return i;
		o[i] = (char)s[i];
		if (!plain_byte[s[i + 1]])
			return i + 1;
		o[i + 1] = (char)s[i + 1];
		if (!plain_byte[s[i + 2]])
			return i + 2;
		o[i + 2] = (char)s[i + 2];
		if (!plain_byte[s[i + 3]])
			return i + 3;
		o[i + 3] = (char)s[i + 3];
		i += 4;
	}
	return i;
}

/* The separator and key before a member, and room for n more bytes after them: where the value
 * goes (NULL: out of memory). A plain key of up to CHUNK bytes (they all are) is copied and
 * checked in one pass; others are measured and escaped. */
static inline __attribute__((always_inline)) char *member(struct agt_jw *w, const char *key,
							  size_t n)
{
	int comma = !w->first[w->depth];
	char *p;

	w->first[w->depth] = 0;
	if (!key) {
		if ((p = room(w, n + 1)) && comma)
			*p++ = ',';
		return p;
	}
	if ((p = room(w, CHUNK + 4 + n))) { /* ,"key": */
		size_t k;

		if (comma)
			*p++ = ',';
		*p++ = '"';
		k = copy_plain(p, (const unsigned char *)key, CHUNK);
		if (!key[k]) {
			p += k;
			*p++ = '"';
			*p++ = ':';
			return p;
		}
	}
	if (comma) /* not plain, or long: written again */
		putc1(w, ',');
	putc1(w, '"');
	agt_jw_escaped(w, key, strlen(key));
	put(w, "\":", 2);
	return room(w, n);
}

/* A member whose value is the n bytes at s as they are. */
static void member_raw(struct agt_jw *w, const char *key, const char *s, size_t n)
{
	char *p = member(w, key, n);

	if (!p)
		return;
	memcpy(p, s, n);
	end_at(w, p + n);
}

static void open_(struct agt_jw *w, const char *key, char c)
{
	char *p = member(w, key, 1);

	if (p) {
		*p++ = c;
		end_at(w, p);
	}
	if (w->depth + 1 >= AGT_JW_MAX_DEPTH) {
		w->failed = 1;
		return;
	}
	w->first[++w->depth] = 1;
	w->closer[w->depth] = (char)(c + 2); /* '{' + 2 is '}', '[' + 2 is ']' */
}

void agt_jw_obj(struct agt_jw *w, const char *key)
{
	open_(w, key, '{');
}
void agt_jw_arr(struct agt_jw *w, const char *key)
{
	open_(w, key, '[');
}

static void close_(struct agt_jw *w, char c)
{
	putc1(w, c);
	if (w->depth > 0)
		w->depth--;
}

void agt_jw_end_obj(struct agt_jw *w)
{
	close_(w, '}');
}
void agt_jw_end_arr(struct agt_jw *w)
{
	close_(w, ']');
}

void agt_jw_end(struct agt_jw *w)
{
	close_(w, w->depth ? w->closer[w->depth] : '}');
}

void agt_jw_strn(struct agt_jw *w, const char *key, const char *s, size_t n)
{
	char *p;

	if (plain_run((const unsigned char *)s, n) == n) { /* plain text: one copy */
		if (!(p = member(w, key, n + 2)))
			return;
		*p++ = '"';
		memcpy(p, s, n);
		p += n;
		*p++ = '"';
		end_at(w, p);
		return;
	}
	if (!(p = member(w, key, 1)))
		return;
	*p++ = '"';
	end_at(w, p);
	agt_jw_escaped(w, s, n);
	putc1(w, '"');
}

void agt_jw_plain(struct agt_jw *w, const char *key, const char *s, size_t n)
{
	char *p = member(w, key, n + 2);

	if (!p)
		return;
	*p++ = '"';
	memcpy(p, s, n);
	p += n;
	*p++ = '"';
	end_at(w, p);
}

void agt_jw_str(struct agt_jw *w, const char *key, const char *s)
{
	const unsigned char *q = (const unsigned char *)(s ? s : "");
	char *p = member(w, key, CHUNK + 2);

	if (!p)
		return;
	*p++ = '"';
	/* Plain bytes copied as they are found, CHUNK at a time; the rest (if any) escaped. */
	for (;;) {
		size_t k = copy_plain(p, q, CHUNK);

		p += k;
		q += k;
		if (!*q) {
			*p++ = '"';
			end_at(w, p);
			return;
		}
		end_at(w, p);
		if (!plain_byte[*q])
			break;
		if (!(p = room(w, CHUNK + 1)))
			return;
	}
	agt_jw_escaped(w, (const char *)q, strlen((const char *)q));
	putc1(w, '"');
}

/* Decimal digits of v, right-aligned ending at end; the first one. */
static char *digits(uint64_t v, char *end)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return end;
}

void agt_jw_i64(struct agt_jw *w, const char *key, int64_t v)
{
	char b[24], *p = digits(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, b + sizeof(b));

	if (v < 0)
		*--p = '-';
	member_raw(w, key, p, (size_t)(b + sizeof(b) - p));
}

void agt_jw_u64(struct agt_jw *w, const char *key, uint64_t v)
{
	char b[24], *p = digits(v, b + sizeof(b));

	member_raw(w, key, p, (size_t)(b + sizeof(b) - p));
}

/* v as %1.15g writes it, when v is a decimal of at most 6 places between 1e-4 and 1e9
 * (durations in milliseconds, ratios): such a decimal has at most 15 significant digits, so
 * the double nearest to it prints back as exactly it, in fixed notation. 0 when v is not. */
static size_t short_decimal(double v, char out[32])
{
	double a = fabs(v), m;
	char *p, *end = out + 32;
	uint64_t q, ip, frac;
	int places = 6;

	if (!(a >= 1e-4 && a < 1e9))
		return 0;
	m = nearbyint(a * 1e6);
	q = (uint64_t)m;
	if ((double)q / 1e6 != a)
		return 0;
	ip = q / 1000000;
	frac = q % 1000000;
	while (places && frac % 10 == 0) {
		frac /= 10;
		places--;
	}
	p = end;
	for (int i = 0; i < places; i++, frac /= 10)
		*--p = (char)('0' + frac % 10);
	if (places)
		*--p = '.';
	p = digits(ip, p);
	if (v < 0)
		*--p = '-';
	memmove(out, p, (size_t)(end - p));
	return (size_t)(end - p);
}

void agt_jw_f64(struct agt_jw *w, const char *key, double v)
{
	char b[32];
	int n;

	if (isnan(v) || isinf(v)) {
		agt_jw_null(w, key);
		return;
	}
	if (v == floor(v) && fabs(v) < 1e15) {
		agt_jw_i64(w, key, (int64_t)v);
		return;
	}
	if ((n = (int)short_decimal(v, b))) {
		member_raw(w, key, b, (size_t)n);
		return;
	}
	n = snprintf(b, sizeof(b), "%1.15g", v);
	if (strtod(b, NULL) != v)
		n = snprintf(b, sizeof(b), "%1.17g", v);
	member_raw(w, key, b, (size_t)n);
}

void agt_jw_bool(struct agt_jw *w, const char *key, int v)
{
	if (v)
		member_raw(w, key, "true", 4);
	else
		member_raw(w, key, "false", 5);
}

void agt_jw_null(struct agt_jw *w, const char *key)
{
	member_raw(w, key, "null", 4);
}

void agt_jw_raw(struct agt_jw *w, const char *s, size_t n)
{
	put(w, s, n);
}

void agt_jw_members(struct agt_jw *w, const char *s, size_t n)
{
	int comma = !w->first[w->depth];
	char *p;

	if (!n || !(p = room(w, n + 1)))
		return;
	w->first[w->depth] = 0;
	if (comma)
		*p++ = ',';
	memcpy(p, s, n);
	end_at(w, p + n);
}

const char *agt_jw_text(struct agt_jw *w)
{
	return w->buf ? w->buf : "";
}
