/* bulk_server: a strict and fast stand-in for an Elasticsearch _bulk endpoint and an OTLP/HTTP
 * JSON collector, for the exporter benchmarks. es_server.py and otlp_server.py do more (fault
 * modes, stored documents, templates) and the integration tests use them, but they are slower
 * than the exporter, so a benchmark against them measures Python. This one runs on one
 * libmicrohttpd thread and spends a few microseconds of CPU per document, so what a benchmark
 * shows is the exporter's own ceiling.
 *
 * POST|PUT /_bulk  Content-Type application/x-ndjson (else 406, as Elasticsearch answers),
 *     Content-Encoding gzip, deflate or none. The body must end with a newline and is read as
 *     action/document line pairs: the action a JSON object with one member, "index" or
 *     "create", whose object names a non-empty _index and a non-empty _id of at most 512 bytes
 *     and no parameter Elasticsearch does not know; the document a JSON object. JSON is checked
 *     to RFC 8259 (UTF-8, escapes and surrogate pairs, number grammar, no duplicate keys, depth
 *     at most 128). Any violation answers 400 with Elasticsearch's error shape and a reason
 *     naming the line (stricter than Elasticsearch for a malformed document, which it answers
 *     per item: here a malformed document is loud). Otherwise 200 with one item per action, in
 *     order: index -> 201 "created", or 200 "updated" (_version counts) when the _index/_id was
 *     seen before; create -> 201, or 409 version_conflict_engine_exception when it was; an
 *     invalid index name -> 400 invalid_index_name_exception for that item.
 * POST /v1/traces  Content-Type application/json: an ExportTraceServiceRequest checked as
 *     otlp_server.py checks it (resource attributes, hex ids of the right length, times as
 *     decimal strings with end >= start, kind 0-5, status code 0-2, AnyValue with exactly one
 *     typed field, intValue a decimal string), plus value types and event shapes; 400 with the
 *     reason, else 200 {}. Spans are counted; their ids kept to count duplicates.
 * GET  /_test/stats  {"requests", "items", "items_<status>", "unique_ids", "duplicates",
 *     "bytes_received" (bodies as sent), "bytes_decoded", "errors" (requests refused),
 *     "last_error", "spans", "span_duplicates", "cpu_seconds" (this process), ...}
 * POST /_test/fault  {"mode": "ok"|"429"|"503"|"partial"} as es_server.py; POST /_test/reset
 * GET / a cluster banner; PUT /_index_template/NAME and /_ilm/policy/NAME: acknowledged.
 *
 * Run: bulk_server [--port N] [--threads N]  -> prints "listening PORT", serves 127.0.0.1
 *      bulk_server --self-bench [DOCS [bulk|otlp]] -> its own ceiling, measured with a
 *                                     synthetic client in a child process */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define MAX_BODY (100u << 20) /* Elasticsearch's http.max_content_length default */
#define MAX_DEPTH 128
#define MAX_ID 512
#define MAX_INDEX 255

/* ---- growing byte buffer ---------------------------------------------------------------- */

struct buf {
	char *p;
	size_t n, cap;
	int failed;
};

static int buf_reserve(struct buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *p;

	if (b->n + more <= b->cap)
		return 0;
	while (cap < b->n + more)
		cap *= 2;
	if (!(p = realloc(b->p, cap))) {
		b->failed = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

static void buf_add(struct buf *b, const void *s, size_t n)
{
	if (buf_reserve(b, n + 1))
		return;
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

#define buf_lit(b, s) buf_add(b, s, sizeof(s) - 1)

static void buf_u64(struct buf *b, uint64_t v)
{
	char t[20];
	int i = 20;

	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	buf_add(b, t + i, 20 - i);
}

static void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n + 1))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s[0..n) (lead byte >= 0x80), 0 if invalid: overlong
 * forms, surrogates and code points past U+10FFFF are invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;

	if (c < 0xC2)
		return 0;
	len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
	if (!len || n < len)
		return 0;
	for (size_t k = 1; k < len; k++)
		if ((s[k] & 0xC0) != 0x80)
			return 0;
	if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0) ||
	    (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))
		return 0;
	return len;
}

/* s as a JSON string literal; bytes that are not UTF-8 become U+FFFD. */
static void buf_json_str(struct buf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0;

	buf_lit(b, "\"");
	while (i < n) {
		unsigned char c = s[i];
		size_t l;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			continue;
		}
		buf_add(b, s + run, i - run);
		if (c >= 0x80) {
			if ((l = utf8_len(s + i, n - i))) {
				buf_add(b, s + i, l);
				i += l;
			} else {
				buf_lit(b, "\\ufffd");
				i++;
			}
		} else if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};

			buf_add(b, e, 2);
			i++;
		} else {
			buf_printf(b, "\\u%04x", c);
			i++;
		}
		run = i;
	}
	buf_add(b, s + run, n - run);
	buf_lit(b, "\"");
}

/* ---- hashing and the id set ------------------------------------------------------------- */

static uint64_t fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* One multiply per word, then a finalizer: ids and index names are short. */
static uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *s = p;
	uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull), v;

	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&v, s, 8);
		h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
	}
	if (n) {
		v = 0;
		memcpy(&v, s, n);
		h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
	}
	return fmix64(h);
}

/* Keys are a "\0" b (the index and the id), kept in one arena; version 0 marks a free slot. */
struct slot {
	uint64_t h, off;
	uint32_t len, version;
};

struct idset {
	struct slot *s;
	size_t cap, n;
	struct buf arena;
};

static int idset_grow(struct idset *t)
{
	size_t cap = t->cap ? t->cap * 2 : 1024;
	struct slot *s = calloc(cap, sizeof(*s));

	if (!s)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		size_t j;

		if (!t->s[i].version)
			continue;
		for (j = t->s[i].h & (cap - 1); s[j].version; j = (j + 1) & (cap - 1))
			;
		s[j] = t->s[i];
	}
	free(t->s);
	t->s = s;
	t->cap = cap;
	return 0;
}

static uint64_t idset_hash(const char *a, size_t an, const char *b, size_t bn)
{
	return hash_bytes(b, bn, hash_bytes(a, an, 7));
}

/* Ask for the slot where key hash h starts probing (a batch prefetches its keys' slots before
 * inserting them: the table is larger than the caches). */
static void idset_prefetch(const struct idset *t, uint64_t h)
{
	if (t->cap)
		__builtin_prefetch(&t->s[h & (t->cap - 1)]);
}

/* The slot of key a\0b (hash h), added with version 1 when new (*added set); NULL out of
 * memory. */
static struct slot *idset_get(struct idset *t, uint64_t h, const char *a, size_t an, const char *b,
			      size_t bn, int *added)
{
	uint32_t len = (uint32_t)(an + 1 + bn);
	size_t j;

	if ((t->n + 1) * 2 > t->cap && idset_grow(t))
		return NULL;
	for (j = h & (t->cap - 1); t->s[j].version; j = (j + 1) & (t->cap - 1)) {
		const char *k = t->arena.p + t->s[j].off;

		if (t->s[j].h == h && t->s[j].len == len && !memcmp(k, a, an) && !k[an] &&
		    !memcmp(k + an + 1, b, bn)) {
			*added = 0;
			return &t->s[j];
		}
	}
	if (buf_reserve(&t->arena, len))
		return NULL;
	t->s[j] = (struct slot){.h = h, .off = t->arena.n, .len = len, .version = 1};
	buf_add(&t->arena, a, an);
	buf_add(&t->arena, "", 1);
	buf_add(&t->arena, b, bn);
	t->n++;
	*added = 1;
	return &t->s[j];
}

static void idset_free(struct idset *t)
{
	free(t->s);
	free(t->arena.p);
	memset(t, 0, sizeof(*t));
}

/* ---- a strict JSON tokenizer ------------------------------------------------------------ */

enum { J_OBJ = 1, J_ARR, J_STR, J_NUM, J_TRUE, J_FALSE, J_NULL };
#define JF_ESC 1 /* string: has escapes */
#define JF_INT 2 /* number: an integer (no fraction, no exponent) */

/* One value. Containers are followed by their members (an object's as key, value, key, ...);
 * next is the index of the token after the whole value. Strings: start/len between quotes. */
struct jtok {
	uint8_t type, flags;
	uint32_t start, len, next, n;
};

struct jp {
	const unsigned char *s;
	size_t n, i;
	struct jtok *t;
	uint32_t nt, cap;
	int depth;
	const char *err; /* what is wrong (static text) */
	size_t err_at;	 /* its byte offset */
	struct keyref {
		uint32_t hash, tok;
	} * keys; /* scratch for the duplicate key check of large objects */
	size_t keys_cap;
};

static int jp_fail(struct jp *p, const char *what)
{
	if (!p->err) {
		p->err = what;
		p->err_at = p->i;
	}
	return -1;
}

static int jp_grow(struct jp *p)
{
	uint32_t cap = p->cap ? p->cap * 2 : 256;
	struct jtok *t = realloc(p->t, cap * sizeof(*t));

	if (!t)
		return jp_fail(p, "out of memory");
	p->t = t;
	p->cap = cap;
	return 0;
}

static inline int jp_tok(struct jp *p, int type, uint32_t *out)
{
	if (p->nt == p->cap && jp_grow(p))
		return -1;
	*out = p->nt;
	p->t[p->nt++] = (struct jtok){.type = (uint8_t)type, .start = (uint32_t)p->i};
	return 0;
}

static inline void jp_ws(struct jp *p)
{
	while (p->i < p->n && p->s[p->i] <= ' ') {
		unsigned char c = p->s[p->i];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return;
		p->i++;
	}
}

/* Any byte in v that a string cannot hold as is: < 0x20, '"', '\\', or >= 0x80. */
static inline uint64_t special8(uint64_t v)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');

	return (((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((b - ones) & ~b) | v) & high;
}

/* The first byte at or after i that a string cannot hold as is, or where less than a word is
 * left: 16 bytes a step with SSE2 (bytes >= 0x80 are negative, so "< 0x20" catches them), else
 * 8. The lowest flagged byte of special8 is always a real one (borrows only carry upwards). */
static inline size_t plain_run(const unsigned char *s, size_t i, size_t n)
{
#ifdef __SSE2__
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
		      space = _mm_set1_epi8(0x20);

	while (i + 16 <= n) {
		__m128i v = _mm_loadu_si128((const __m128i *)(s + i));
		unsigned m = (unsigned)_mm_movemask_epi8(
		    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
				 _mm_cmplt_epi8(v, space)));

		if (m)
			return i + (size_t)__builtin_ctz(m);
		i += 16;
	}
#endif
	while (i + 8 <= n) {
		uint64_t v, m;

		memcpy(&v, s + i, 8);
		if ((m = special8(v)))
			return i + (size_t)(__builtin_ctzll(m) >> 3);
		i += 8;
	}
	return i;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int hex4(const unsigned char *s, size_t avail, unsigned *out)
{
	unsigned v = 0;

	if (avail < 4)
		return -1;
	for (int k = 0; k < 4; k++) {
		int h = hexval(s[k]);

		if (h < 0)
			return -1;
		v = v << 4 | (unsigned)h;
	}
	*out = v;
	return 0;
}

/* Decode the JSON string body s[0..n) (already checked) into out (n bytes are enough). */
static size_t json_unescape(const unsigned char *s, size_t n, char *out)
{
	size_t i = 0, o = 0;

	while (i < n) {
		unsigned cp, lo;

		if (s[i] != '\\') {
			out[o++] = (char)s[i++];
			continue;
		}
		switch (s[i + 1]) {
		case 'b': out[o++] = '\b'; break;
		case 'f': out[o++] = '\f'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'u':
			hex4(s + i + 2, 4, &cp);
			if (cp >= 0xD800 && cp < 0xDC00) {
				hex4(s + i + 8, 4, &lo);
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				i += 6;
			}
			if (cp < 0x80) {
				out[o++] = (char)cp;
			} else if (cp < 0x800) {
				out[o++] = (char)(0xC0 | cp >> 6);
				out[o++] = (char)(0x80 | (cp & 0x3F));
			} else if (cp < 0x10000) {
				out[o++] = (char)(0xE0 | cp >> 12);
				out[o++] = (char)(0x80 | (cp >> 6 & 0x3F));
				out[o++] = (char)(0x80 | (cp & 0x3F));
			} else {
				out[o++] = (char)(0xF0 | cp >> 18);
				out[o++] = (char)(0x80 | (cp >> 12 & 0x3F));
				out[o++] = (char)(0x80 | (cp >> 6 & 0x3F));
				out[o++] = (char)(0x80 | (cp & 0x3F));
			}
			i += 4;
			break;
		default: out[o++] = (char)s[i + 1]; break; /* " \ / */
		}
		i += 2;
	}
	return o;
}

static int jp_string(struct jp *p, uint32_t *out)
{
	const unsigned char *s = p->s;
	size_t i = p->i + 1, n = p->n;
	uint8_t flags = 0;
	uint32_t k;

	if (jp_tok(p, J_STR, &k))
		return -1;
	for (;;) {
		unsigned char c;

		i = plain_run(s, i, n);
		if (i >= n) {
			p->i = i;
			return jp_fail(p, "unterminated string");
		}
		c = s[i];
		if (c == '"')
			break;
		if (c == '\\') {
			unsigned cp, lo;

			flags |= JF_ESC;
			if (i + 1 >= n) {
				p->i = i;
				return jp_fail(p, "unterminated string");
			}
			c = s[i + 1];
			if (c == 'u') {
				if (hex4(s + i + 2, n - i - 2, &cp)) {
					p->i = i;
					return jp_fail(p, "\\u needs four hex digits");
				}
				if (cp >= 0xDC00 && cp < 0xE000) {
					p->i = i;
					return jp_fail(p, "a low surrogate without a high one");
				}
				if (cp >= 0xD800 && cp < 0xDC00) {
					if (i + 12 > n || s[i + 6] != '\\' || s[i + 7] != 'u' ||
					    hex4(s + i + 8, n - i - 8, &lo) || lo < 0xDC00 ||
					    lo >= 0xE000) {
						p->i = i;
						return jp_fail(
						    p, "a high surrogate without a low one");
					}
					i += 6;
				}
				i += 6;
			} else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' ||
				   c == 'n' || c == 'r' || c == 't') {
				i += 2;
			} else {
				p->i = i;
				return jp_fail(p, "invalid escape");
			}
		} else if (c < 0x20) {
			p->i = i;
			return jp_fail(p, "a control character in a string");
		} else if (c >= 0x80) {
			size_t l = utf8_len(s + i, n - i);

			if (!l) {
				p->i = i;
				return jp_fail(p, "invalid UTF-8");
			}
			i += l;
		} else {
			i++;
		}
	}
	p->t[k].start = (uint32_t)(p->i + 1);
	p->t[k].len = (uint32_t)(i - p->i - 1);
	p->t[k].flags = flags;
	p->t[k].next = k + 1;
	p->i = i + 1;
	*out = k;
	return 0;
}

/* Whether string tokens a and b decode to the same text. */
static int jstr_same(const struct jp *p, uint32_t a, uint32_t b)
{
	const struct jtok *x = &p->t[a], *y = &p->t[b];
	char *da, *db;
	size_t na, nb;
	int same;

	if (!((x->flags | y->flags) & JF_ESC))
		return x->len == y->len && !memcmp(p->s + x->start, p->s + y->start, x->len);
	da = malloc(x->len + 1);
	db = malloc(y->len + 1);
	na = da ? json_unescape(p->s + x->start, x->len, da) : 0;
	nb = db ? json_unescape(p->s + y->start, y->len, db) : 0;
	same = da && db && na == nb && !memcmp(da, db, na);
	free(da);
	free(db);
	return same;
}

static int keyref_cmp(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;

	return x->hash < y->hash ? -1 : x->hash > y->hash;
}

/* A key's hash, of its decoded text. */
static uint32_t key_hash(const struct jp *p, uint32_t k)
{
	const struct jtok *t = &p->t[k];
	char small[256], *d;
	size_t n;
	uint32_t h;

	if (!(t->flags & JF_ESC))
		return (uint32_t)hash_bytes(p->s + t->start, t->len, 1);
	if (!(d = t->len <= sizeof(small) ? small : malloc(t->len)))
		return 0; /* all such keys compare in one bucket */
	n = json_unescape(p->s + t->start, t->len, d);
	h = (uint32_t)hash_bytes(d, n, 1);
	if (d != small)
		free(d);
	return h;
}

/* Whether keys a and b may be equal: raw lengths differ only through escapes. */
static int key_maybe_same(const struct jp *p, uint32_t a, uint32_t b)
{
	const struct jtok *x = &p->t[a], *y = &p->t[b];

	return ((x->flags | y->flags) & JF_ESC) ||
	       (x->len == y->len && x->len && p->s[x->start] == p->s[y->start]) ||
	       (!x->len && !y->len);
}

/* Duplicate keys in object o: pairwise for small objects, sorted by hash for large ones. */
static int jp_dupkeys(struct jp *p, uint32_t o)
{
	uint32_t n = p->t[o].n, k = o + 1;

	if (n < 2)
		return 0;
	if (n > p->keys_cap) {
		struct keyref *r = realloc(p->keys, n * 2 * sizeof(*r));

		if (!r)
			return jp_fail(p, "out of memory");
		p->keys = r;
		p->keys_cap = n * 2;
	}
	for (uint32_t m = 0; m < n; m++) {
		p->keys[m] = (struct keyref){0, k};
		k = p->t[k + 1].next;
	}
	if (n <= 16) {
		for (uint32_t a = 0; a < n; a++)
			for (uint32_t b = a + 1; b < n; b++)
				if (key_maybe_same(p, p->keys[a].tok, p->keys[b].tok) &&
				    jstr_same(p, p->keys[a].tok, p->keys[b].tok))
					goto dup;
		return 0;
	}
	for (uint32_t m = 0; m < n; m++)
		p->keys[m].hash = key_hash(p, p->keys[m].tok);
	qsort(p->keys, n, sizeof(*p->keys), keyref_cmp);
	for (uint32_t a = 0; a < n; a++)
		for (uint32_t b = a + 1; b < n && p->keys[b].hash == p->keys[a].hash; b++)
			if (jstr_same(p, p->keys[a].tok, p->keys[b].tok))
				goto dup;
	return 0;
dup:
	p->i = p->t[o].start;
	return jp_fail(p, "duplicate key in an object");
}

static int jp_value(struct jp *p);

static int jp_container(struct jp *p, int obj)
{
	uint32_t c, count = 0, k;
	unsigned char close = obj ? '}' : ']';

	if (++p->depth > MAX_DEPTH)
		return jp_fail(p, "nested too deep");
	if (jp_tok(p, obj ? J_OBJ : J_ARR, &c))
		return -1;
	p->i++;
	jp_ws(p);
	if (p->i < p->n && p->s[p->i] == close) {
		p->i++;
	} else {
		for (;;) {
			jp_ws(p);
			if (obj) {
				if (p->i >= p->n || p->s[p->i] != '"')
					return jp_fail(p, "expected a string key");
				if (jp_string(p, &k))
					return -1;
				jp_ws(p);
				if (p->i >= p->n || p->s[p->i] != ':')
					return jp_fail(p, "expected ':' after a key");
				p->i++;
				jp_ws(p);
			}
			if (jp_value(p))
				return -1;
			count++;
			jp_ws(p);
			if (p->i < p->n && p->s[p->i] == ',') {
				p->i++;
				continue;
			}
			if (p->i < p->n && p->s[p->i] == close) {
				p->i++;
				break;
			}
			return jp_fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
		}
	}
	p->t[c].n = count;
	p->t[c].next = p->nt;
	p->t[c].len = (uint32_t)(p->i - p->t[c].start);
	p->depth--;
	return obj ? jp_dupkeys(p, c) : 0;
}

static int digit(const struct jp *p)
{
	return p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9';
}

static int jp_number(struct jp *p)
{
	uint32_t k;
	uint8_t flags = JF_INT;

	if (jp_tok(p, J_NUM, &k))
		return -1;
	if (p->s[p->i] == '-')
		p->i++;
	if (!digit(p))
		return jp_fail(p, "invalid number");
	if (p->s[p->i++] != '0')
		while (digit(p))
			p->i++;
	if (p->i < p->n && p->s[p->i] == '.') {
		p->i++;
		flags = 0;
		if (!digit(p))
			return jp_fail(p, "invalid number: no digit after '.'");
		while (digit(p))
			p->i++;
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		p->i++;
		flags = 0;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		if (!digit(p))
			return jp_fail(p, "invalid number: no digit in the exponent");
		while (digit(p))
			p->i++;
	}
	p->t[k].flags = flags;
	p->t[k].len = (uint32_t)(p->i - p->t[k].start);
	p->t[k].next = k + 1;
	return 0;
}

static int jp_literal(struct jp *p, const char *word, int type)
{
	size_t n = strlen(word);
	uint32_t k;

	if (p->n - p->i < n || memcmp(p->s + p->i, word, n))
		return jp_fail(p, "invalid literal");
	if (jp_tok(p, type, &k))
		return -1;
	p->i += n;
	p->t[k].len = (uint32_t)n;
	p->t[k].next = k + 1;
	return 0;
}

static int jp_value(struct jp *p)
{
	uint32_t k;

	if (p->i >= p->n)
		return jp_fail(p, "a value is missing");
	switch (p->s[p->i]) {
	case '{': return jp_container(p, 1);
	case '[': return jp_container(p, 0);
	case '"': return jp_string(p, &k);
	case 't': return jp_literal(p, "true", J_TRUE);
	case 'f': return jp_literal(p, "false", J_FALSE);
	case 'n': return jp_literal(p, "null", J_NULL);
	default:
		if (p->s[p->i] == '-' || (p->s[p->i] >= '0' && p->s[p->i] <= '9'))
			return jp_number(p);
		return jp_fail(p, "unexpected character");
	}
}

/* Parse text[0..n) as exactly one JSON value; tokens from p->t[0]. */
static int jp_parse(struct jp *p, const char *text, size_t n)
{
	p->s = (const unsigned char *)text;
	p->n = n;
	p->i = 0;
	p->nt = 0;
	p->depth = 0;
	p->err = NULL;
	jp_ws(p);
	if (p->i == p->n)
		return jp_fail(p, "no JSON value");
	if (jp_value(p))
		return -1;
	jp_ws(p);
	if (p->i != p->n)
		return jp_fail(p, "content after the JSON value");
	return 0;
}

static void jp_free(struct jp *p)
{
	free(p->t);
	free(p->keys);
}

/* Whether string token k decodes to lit (of n bytes). */
static inline int jt_is_n(const struct jp *p, uint32_t k, const char *lit, size_t n)
{
	const struct jtok *t = &p->t[k];
	char small[64];

	if (t->type != J_STR)
		return 0;
	if (!(t->flags & JF_ESC))
		return t->len == n && (!n || (p->s[t->start] == (unsigned char)lit[0] &&
					      !memcmp(p->s + t->start, lit, n)));
	if (t->len > sizeof(small))
		return 0; /* escapes only lengthen: its decoded text is longer than lit */
	return json_unescape(p->s + t->start, t->len, small) == n && !memcmp(small, lit, n);
}

#define JT_IS(p, k, lit) jt_is_n(p, k, lit, sizeof(lit) - 1)
static int jt_is(const struct jp *p, uint32_t k, const char *lit)
{
	return jt_is_n(p, k, lit, strlen(lit));
}

/* The value of member key of object o, or -1. */
static long jt_get(const struct jp *p, uint32_t o, const char *key)
{
	uint32_t k = o + 1;

	if (p->t[o].type != J_OBJ)
		return -1;
	for (uint32_t m = 0; m < p->t[o].n; m++, k = p->t[k + 1].next)
		if (jt_is(p, k, key))
			return k + 1;
	return -1;
}

/* String token k decoded in place (the text is ours and decoding only shortens it). */
static void jt_decode(struct jp *p, uint32_t k)
{
	struct jtok *t = &p->t[k];

	if (t->flags & JF_ESC) {
		char *s = (char *)p->s + t->start;

		t->len = (uint32_t)json_unescape((const unsigned char *)s, t->len, s);
		t->flags &= (uint8_t)~JF_ESC;
	}
}

static const char *jt_typename(int type)
{
	static const char *const names[] = {"?",	"an object", "an array", "a string",
					    "a number", "true",	     "false",	 "null"};

	return names[type];
}

/* ---- server state ----------------------------------------------------------------------- */

enum { MODE_OK, MODE_429, MODE_503, MODE_PARTIAL };

struct server {
	pthread_mutex_t lock;
	struct idset docs, spans;
	uint64_t requests, bulk_requests, otlp_requests, items, items_200, items_201, items_400,
	    items_409, items_429, items_503, duplicates, spans_n, span_duplicates, bytes_received,
	    bytes_decoded, errors, seq_no, templates;
	char last_error[600], authorization[256];
	int mode;
	uint64_t rng;
};

/* One request being received. */
struct req {
	struct buf body;
	int too_big;
	struct timespec t0;
};

struct reply {
	unsigned status;
	struct buf b;
};

static void server_error(struct server *S, const char *what)
{
	size_t n = strlen(what);

	if (n >= sizeof(S->last_error))
		n = sizeof(S->last_error) - 1;
	pthread_mutex_lock(&S->lock);
	S->errors++;
	memcpy(S->last_error, what, n);
	S->last_error[n] = 0;
	pthread_mutex_unlock(&S->lock);
}

/* An error in Elasticsearch's shape. */
static void es_error(struct server *S, struct reply *out, unsigned status, const char *type,
		     const char *reason)
{
	struct buf *b = &out->b;

	server_error(S, reason);
	out->status = status;
	b->n = 0;
	buf_lit(b, "{\"error\":{\"root_cause\":[{\"type\":\"");
	buf_add(b, type, strlen(type));
	buf_lit(b, "\",\"reason\":");
	buf_json_str(b, reason, strlen(reason));
	buf_lit(b, "}],\"type\":\"");
	buf_add(b, type, strlen(type));
	buf_lit(b, "\",\"reason\":");
	buf_json_str(b, reason, strlen(reason));
	buf_lit(b, "},\"status\":");
	buf_u64(b, status);
	buf_lit(b, "}");
}

/* Line number and column of a parse error, for reasons. */
static void where(char *out, size_t n, const struct jp *p, size_t line)
{
	snprintf(out, n, "line [%zu], column %zu: %s", line, p->err_at + 1, p->err);
}

/* ---- Elasticsearch _bulk ---------------------------------------------------------------- */

enum { E_NONE, E_INDEX_NAME, E_CONFLICT, E_429, E_503 };

struct item {
	const char *index, *id;
	uint32_t index_len, id_len;
	uint8_t create, err;
	uint16_t status;
	uint32_t version;
	uint64_t seq_no, hash;
	const char *why; /* E_INDEX_NAME: what is wrong with the name */
};

/* Elasticsearch's index name rules; NULL when valid. */
static const char *index_name_problem(const char *s, size_t n)
{
	if (n > MAX_INDEX)
		return "index name is too long, (> 255)";
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return "must not be '.' or '..'";
	if (s[0] == '_' || s[0] == '-' || s[0] == '+')
		return "must not start with '_', '-', or '+'";
	for (size_t i = 0; i < n; i++) {
		if (s[i] >= 'A' && s[i] <= 'Z')
			return "must be lowercase";
		if (!s[i] || strchr("\\/*?\"<>| ,#:", s[i]))
			return "must not contain the following characters [ , \", *, \\, <, |, ,, "
			       ">, /, ?, #, :]";
	}
	return NULL;
}

/* Metadata parameters Elasticsearch accepts on an index/create action besides _index, _id. */
static int known_param(const struct jp *p, uint32_t k, int *object_ok)
{
	static const char *const scalar[] = {
	    "routing",	       "pipeline", "require_alias", "require_data_stream",     "if_seq_no",
	    "if_primary_term", "version",  "version_type",  "list_executed_pipelines", NULL};

	*object_ok = JT_IS(p, k, "dynamic_templates");
	if (*object_ok)
		return 1;
	for (int i = 0; scalar[i]; i++)
		if (jt_is(p, k, scalar[i]))
			return 1;
	return 0;
}

/* Check one action line (tokens in p) into it; the reason in why on failure. */
static int es_action(struct jp *p, size_t line, struct item *it, char *why, size_t wn)
{
	uint32_t meta, k;
	long ix = -1, id = -1;

	if (p->t[0].type != J_OBJ || p->t[0].n != 1) {
		snprintf(why, wn,
			 "Malformed action/metadata line [%zu], expected an object with one "
			 "member (index or create) but found %s%s",
			 line, jt_typename(p->t[0].type),
			 p->t[0].type == J_OBJ
			     ? (p->t[0].n ? " with several members" : " with no member")
			     : "");
		return -1;
	}
	if (JT_IS(p, 1, "index")) {
		it->create = 0;
	} else if (JT_IS(p, 1, "create")) {
		it->create = 1;
	} else {
		snprintf(why, wn,
			 "Malformed action/metadata line [%zu], expected index or create (what the "
			 "exporter sends) but found [%.*s]",
			 line, (int)(p->t[1].len > 64 ? 64 : p->t[1].len),
			 (const char *)p->s + p->t[1].start);
		return -1;
	}
	meta = 2;
	if (p->t[meta].type != J_OBJ) {
		snprintf(why, wn,
			 "Malformed action/metadata line [%zu], expected an object after [%s] but "
			 "found %s",
			 line, it->create ? "create" : "index", jt_typename(p->t[meta].type));
		return -1;
	}
	k = meta + 1;
	for (uint32_t m = 0; m < p->t[meta].n; m++, k = p->t[k + 1].next) {
		int object_ok;

		if (JT_IS(p, k, "_index")) {
			ix = k + 1;
		} else if (JT_IS(p, k, "_id")) {
			id = k + 1;
		} else if (!known_param(p, k, &object_ok)) {
			jt_decode(p, k);
			snprintf(why, wn,
				 "Action/metadata line [%zu] contains an unknown parameter [%.*s]",
				 line, (int)(p->t[k].len > 64 ? 64 : p->t[k].len),
				 (const char *)p->s + p->t[k].start);
			return -1;
		} else if (p->t[k + 1].type == J_ARR || (p->t[k + 1].type == J_OBJ) != object_ok) {
			snprintf(why, wn,
				 "Malformed action/metadata line [%zu], field [%.*s] cannot be %s",
				 line, (int)p->t[k].len, (const char *)p->s + p->t[k].start,
				 jt_typename(p->t[k + 1].type));
			return -1;
		}
	}
	if (ix < 0 || id < 0) {
		snprintf(why, wn,
			 ix < 0 ? "Validation Failed: 1: index is missing (line [%zu]);"
				: "line [%zu]: an action without _id (the exporter names every "
				  "document, so a retry overwrites it)",
			 line);
		return -1;
	}
	if (p->t[ix].type != J_STR || p->t[id].type != J_STR) {
		snprintf(why, wn,
			 "Malformed action/metadata line [%zu], expected a string for field [%s] "
			 "but found %s",
			 line, p->t[ix].type != J_STR ? "_index" : "_id",
			 jt_typename(p->t[p->t[ix].type != J_STR ? ix : id].type));
		return -1;
	}
	jt_decode(p, (uint32_t)ix);
	jt_decode(p, (uint32_t)id);
	if (!p->t[ix].len) {
		snprintf(why, wn, "Validation Failed: 1: index is missing (line [%zu]);", line);
		return -1;
	}
	if (!p->t[id].len || p->t[id].len > MAX_ID) {
		snprintf(why, wn,
			 p->t[id].len ? "Validation Failed: 1: id is too long, must be no longer "
					"than 512 bytes but was: %u (line [%zu]);"
				      : "Validation Failed: 1: if _id is specified it must not be "
					"empty (%u, line [%zu]);",
			 p->t[id].len, line);
		return -1;
	}
	it->index = (const char *)p->s + p->t[ix].start;
	it->index_len = p->t[ix].len;
	it->id = (const char *)p->s + p->t[id].start;
	it->id_len = p->t[id].len;
	it->why = index_name_problem(it->index, it->index_len);
	it->err = it->why ? E_INDEX_NAME : E_NONE;
	return 0;
}

static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void es_item_json(struct buf *b, const struct item *it)
{
	buf_lit(b, "{\"");
	if (it->create)
		buf_lit(b, "create");
	else
		buf_lit(b, "index");
	buf_lit(b, "\":{\"_index\":");
	buf_json_str(b, it->index, it->index_len);
	buf_lit(b, ",\"_id\":");
	buf_json_str(b, it->id, it->id_len);
	if (it->err == E_NONE) {
		buf_lit(b, ",\"_version\":");
		buf_u64(b, it->version);
		if (it->version == 1)
			buf_lit(b, ",\"result\":\"created\"");
		else
			buf_lit(b, ",\"result\":\"updated\"");
		buf_lit(b, ",\"_shards\":{\"total\":1,\"successful\":1,\"failed\":0},\"_seq_no\":");
		buf_u64(b, it->seq_no);
		buf_lit(b, ",\"_primary_term\":1,\"status\":");
		buf_u64(b, it->status);
		buf_lit(b, "}}");
		return;
	}
	buf_lit(b, ",\"status\":");
	buf_u64(b, it->status);
	buf_lit(b, ",\"error\":{\"type\":");
	switch (it->err) {
	case E_INDEX_NAME:
		buf_lit(b, "\"invalid_index_name_exception\",\"reason\":");
		{
			struct buf r = {0};

			buf_lit(&r, "Invalid index name [");
			buf_add(&r, it->index, it->index_len);
			buf_lit(&r, "], ");
			buf_add(&r, it->why, strlen(it->why));
			buf_json_str(b, r.p ? r.p : "", r.n);
			free(r.p);
		}
		buf_lit(b, ",\"index\":");
		buf_json_str(b, it->index, it->index_len);
		break;
	case E_CONFLICT:
		buf_lit(b, "\"version_conflict_engine_exception\",\"reason\":");
		{
			struct buf r = {0};

			buf_lit(&r, "[");
			buf_add(&r, it->id, it->id_len);
			buf_printf(&r,
				   "]: version conflict, document already exists (current "
				   "version [%u])",
				   it->version);
			buf_json_str(b, r.p ? r.p : "", r.n);
			free(r.p);
		}
		buf_lit(b, ",\"index\":");
		buf_json_str(b, it->index, it->index_len);
		break;
	case E_429:
		buf_lit(b, "\"es_rejected_execution_exception\",\"reason\":\"injected "
			   "es_rejected_execution_exception\"");
		break;
	default:
		buf_lit(b, "\"unavailable_shards_exception\",\"reason\":\"injected "
			   "unavailable_shards_exception\"");
		break;
	}
	buf_lit(b, "}}}");
}

static void es_bulk(struct server *S, char *body, size_t len, struct req *r, struct reply *out)
{
	struct jp p = {0};
	struct item *items = NULL;
	size_t nitems = 0, cap = 0, pos = 0, line = 1;
	char why[700], at[300];
	int errors = 0;
	struct timespec t1;

	if (!len) {
		es_error(S, out, 400, "parse_exception", "request body is required");
		return;
	}
	if (body[len - 1] != '\n') {
		es_error(S, out, 400, "illegal_argument_exception",
			 "The bulk request must be terminated by a newline [\\n]");
		return;
	}
	while (pos < len) {
		char *nl = memchr(body + pos, '\n', len - pos), *nl2;
		struct item it = {0};

		if (jp_parse(&p, body + pos, (size_t)(nl - body - pos))) {
			where(at, sizeof(at), &p, line);
			snprintf(why, sizeof(why), "Malformed action/metadata %s", at);
			es_error(S, out, 400, "x_content_parse_exception", why);
			goto done;
		}
		if (es_action(&p, line, &it, why, sizeof(why))) {
			es_error(S, out, 400, "illegal_argument_exception", why);
			goto done;
		}
		pos = (size_t)(nl - body) + 1;
		line++;
		if (pos >= len) {
			snprintf(why, sizeof(why),
				 "The bulk request ends after the action on line [%zu]: its "
				 "document is missing",
				 line - 1);
			es_error(S, out, 400, "illegal_argument_exception", why);
			goto done;
		}
		nl2 = memchr(body + pos, '\n', len - pos);
		if (jp_parse(&p, body + pos, (size_t)(nl2 - body - pos))) {
			where(at, sizeof(at), &p, line);
			snprintf(why, sizeof(why), "Malformed document on %s", at);
			es_error(S, out, 400, "x_content_parse_exception", why);
			goto done;
		}
		if (p.t[0].type != J_OBJ) {
			snprintf(why, sizeof(why),
				 "The document on line [%zu] is %s, not an object", line,
				 jt_typename(p.t[0].type));
			es_error(S, out, 400, "x_content_parse_exception", why);
			goto done;
		}
		pos = (size_t)(nl2 - body) + 1;
		line++;
		if (nitems == cap) {
			struct item *v = realloc(items, (cap = cap ? cap * 2 : 512) * sizeof(*v));

			if (!v) {
				es_error(S, out, 500, "out_of_memory", "out of memory");
				goto done;
			}
			items = v;
		}
		items[nitems++] = it;
	}

	for (size_t i = 0; i < nitems; i++)
		items[i].hash =
		    idset_hash(items[i].index, items[i].index_len, items[i].id, items[i].id_len);
	pthread_mutex_lock(&S->lock);
	for (size_t i = 0; i < nitems; i++)
		idset_prefetch(&S->docs, items[i].hash);
	S->bulk_requests++;
	S->items += nitems;
	for (size_t i = 0; i < nitems; i++) {
		struct item *it = &items[i];
		uint64_t x = S->mode == MODE_PARTIAL ? rng_next(&S->rng) % 10 : 9;
		struct slot *sl;
		int added;

		if (it->err == E_INDEX_NAME) {
			it->status = 400;
		} else if (S->mode == MODE_429 || x < 3) {
			it->err = E_429;
			it->status = 429;
		} else if (x < 4) {
			it->err = E_503;
			it->status = 503;
		} else if (!(sl = idset_get(&S->docs, it->hash, it->index, it->index_len, it->id,
					    it->id_len, &added))) {
			it->err = E_503; /* out of memory: "later" */
			it->status = 503;
		} else if (!added && it->create) {
			it->err = E_CONFLICT;
			it->status = 409;
			it->version = sl->version;
			S->duplicates++;
		} else {
			if (!added) {
				sl->version++;
				S->duplicates++;
			}
			it->version = sl->version;
			it->status = added ? 201 : 200;
			it->seq_no = S->seq_no++;
		}
		errors |= it->err != E_NONE;
		switch (it->status) {
		case 200: S->items_200++; break;
		case 201: S->items_201++; break;
		case 400: S->items_400++; break;
		case 409: S->items_409++; break;
		case 429: S->items_429++; break;
		default: S->items_503++; break;
		}
	}
	pthread_mutex_unlock(&S->lock);

	clock_gettime(CLOCK_MONOTONIC, &t1);
	out->status = 200;
	out->b.n = 0;
	buf_reserve(&out->b, nitems * 200 + 64);
	buf_lit(&out->b, "{\"took\":");
	buf_u64(&out->b, (uint64_t)((t1.tv_sec - r->t0.tv_sec) * 1000 +
				    (t1.tv_nsec - r->t0.tv_nsec) / 1000000));
	if (errors)
		buf_lit(&out->b, ",\"errors\":true,\"items\":[");
	else
		buf_lit(&out->b, ",\"errors\":false,\"items\":[");
	for (size_t i = 0; i < nitems; i++) {
		if (i)
			buf_lit(&out->b, ",");
		es_item_json(&out->b, &items[i]);
	}
	buf_lit(&out->b, "]}");
done:
	free(items);
	jp_free(&p);
}

/* ---- OTLP/HTTP JSON --------------------------------------------------------------------- */

struct otlp_check {
	struct jp *p;
	char *why;
	size_t wn;
	char path[160];
	uint32_t *span_ids, *keys; /* the spans' spanId tokens; scratch for attribute keys */
	uint64_t *span_hash;
	size_t nspans, cap, keys_cap;
};

static int oc_fail(struct otlp_check *c, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(c->why, c->wn, "%s%s", c->path, c->path[0] ? ": " : "");

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < c->wn)
		vsnprintf(c->why + n, c->wn - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* v (a member's value token, -1 when missing) if of the given type (J_NUM for numbers, J_TRUE
 * also for false), else -1 with the reason when missing (unless optional) or of another type. */
static long oc_check(struct otlp_check *c, long v, const char *key, int type, int optional,
		     int *bad)
{
	int t;

	if (v < 0) {
		if (!optional)
			*bad = oc_fail(c, "%s is required", key);
		return -1;
	}
	t = c->p->t[v].type;
	if (t == J_FALSE)
		t = J_TRUE;
	if (t != type) {
		*bad = oc_fail(c, "%s must be %s, not %s", key,
			       type == J_TRUE ? "true or false" : jt_typename(type),
			       jt_typename(c->p->t[v].type));
		return -1;
	}
	return v;
}

/* Member key of object o, checked as oc_check does. */
static long oc_get(struct otlp_check *c, uint32_t o, const char *key, int type, int optional,
		   int *bad)
{
	return oc_check(c, jt_get(c->p, o, key), key, type, optional, bad);
}

struct keyname {
	const char *s;
	size_t n;
};
#define KN(s)                    \
	{                        \
		s, sizeof(s) - 1 \
	}

/* One pass over object o's members: out[i] = the value token of member names[i], or -1. */
static void jt_pick(const struct jp *p, uint32_t o, const struct keyname *names, int n, long *out)
{
	uint32_t k = o + 1;

	for (int i = 0; i < n; i++)
		out[i] = -1;
	for (uint32_t m = 0; m < p->t[o].n; m++, k = p->t[k + 1].next)
		for (int i = 0; i < n; i++)
			if (out[i] < 0 && jt_is_n(p, k, names[i].s, names[i].n)) {
				out[i] = k + 1;
				break;
			}
}

static int is_hex(const struct jp *p, long k, uint32_t len)
{
	const struct jtok *t = &p->t[k];

	if (t->len != len || (t->flags & JF_ESC))
		return 0;
	for (uint32_t i = 0; i < len; i++) {
		unsigned char ch = p->s[t->start + i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return 0;
	}
	return 1;
}

/* A decimal string that fits an unsigned 64-bit integer (a fixed64 in OTLP/JSON). */
static int ns_value(const struct jp *p, long k, uint64_t *out)
{
	const struct jtok *t = &p->t[k];
	uint64_t v = 0;

	if (!t->len || t->len > 20 || (t->flags & JF_ESC))
		return -1;
	for (uint32_t i = 0; i < t->len; i++) {
		unsigned d = (unsigned)p->s[t->start + i] - '0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* An int64 as OTLP/JSON writes it: a decimal string, optionally negative. */
static int is_int_string(const struct jp *p, long k)
{
	const struct jtok *t = &p->t[k];
	uint32_t i = 0;

	if (t->flags & JF_ESC)
		return 0;
	if (t->len && p->s[t->start] == '-')
		i = 1;
	if (i == t->len || t->len - i > 19)
		return 0;
	for (; i < t->len; i++)
		if (p->s[t->start + i] < '0' || p->s[t->start + i] > '9')
			return 0;
	return 1;
}

/* Where an AnyValue is, for a reason: "attribute KEY", or where (inside an array). */
static const char *oc_where(const struct otlp_check *c, uint32_t key, const char *where, char *buf,
			    size_t n)
{
	const struct jtok *t = &c->p->t[key];

	if (where)
		return where;
	snprintf(buf, n, "attribute %.*s", (int)(t->len > 80 ? 80 : t->len),
		 (const char *)c->p->s + t->start);
	return buf;
}

/* The AnyValue v of the attribute named by token key (where: inside an array, else NULL). */
static int oc_anyvalue(struct otlp_check *c, long v, uint32_t key, const char *where)
{
	const struct jp *p = c->p;
	static const char *const keys[] = {"stringValue", "intValue", "doubleValue", "boolValue",
					   "arrayValue"};
	static const int types[] = {J_STR, J_STR, J_NUM, J_TRUE, J_OBJ};
	int which = -1, t;
	char wb[120];
	long x;

	if (p->t[v].type != J_OBJ)
		return oc_fail(c, "%s: an AnyValue must be an object, not %s",
			       oc_where(c, key, where, wb, sizeof(wb)), jt_typename(p->t[v].type));
	for (int i = 0; i < 5 && p->t[v].n == 1 && which < 0; i++)
		if (jt_is(p, (uint32_t)v + 1, keys[i]))
			which = i;
	if (which < 0)
		return oc_fail(c, "%s: an AnyValue needs exactly one typed field",
			       oc_where(c, key, where, wb, sizeof(wb)));
	x = v + 2;
	t = p->t[x].type == J_FALSE ? J_TRUE : p->t[x].type;
	if (t != types[which])
		return oc_fail(c, "%s: %s must be %s, not %s",
			       oc_where(c, key, where, wb, sizeof(wb)), keys[which],
			       which == 3 ? "true or false" : jt_typename(types[which]),
			       jt_typename(p->t[x].type));
	if (which == 1 && !is_int_string(p, x))
		return oc_fail(c, "%s: intValue must be a decimal string",
			       oc_where(c, key, where, wb, sizeof(wb)));
	if (which == 4) {
		long vals = jt_get(p, (uint32_t)x, "values");
		uint32_t e;

		if (vals < 0 || p->t[vals].type != J_ARR)
			return oc_fail(c, "%s: arrayValue needs a values array",
				       oc_where(c, key, where, wb, sizeof(wb)));
		e = (uint32_t)vals + 1;
		for (uint32_t i = 0; i < p->t[vals].n; i++, e = p->t[e].next) {
			char w[200];

			snprintf(w, sizeof(w), "%s[%u]", oc_where(c, key, where, wb, sizeof(wb)),
				 i);
			if (oc_anyvalue(c, e, key, w))
				return -1;
		}
	}
	return 0;
}

/* attributes: [{"key": "...", "value": AnyValue}, ...], keys unique. */
static int oc_attributes(struct otlp_check *c, long arr)
{
	const struct jp *p = c->p;
	uint32_t a = (uint32_t)arr + 1, n = p->t[arr].n;

	if (n > c->keys_cap) {
		uint32_t *k = realloc(c->keys, n * 2 * sizeof(*k));

		if (!k)
			return oc_fail(c, "out of memory");
		c->keys = k;
		c->keys_cap = n * 2;
	}
	for (uint32_t i = 0; i < n; i++, a = p->t[a].next) {
		int bad = 0;
		long key, val;

		if (p->t[a].type != J_OBJ)
			return oc_fail(c, "attributes[%u] must be an object", i);
		key = oc_get(c, a, "key", J_STR, 0, &bad);
		val = key < 0 ? -1 : oc_get(c, a, "value", J_OBJ, 0, &bad);
		if (val < 0 || oc_anyvalue(c, val, (uint32_t)key, NULL))
			return -1;
		for (uint32_t j = 0; j < i; j++)
			if (key_maybe_same(p, c->keys[j], (uint32_t)key) &&
			    jstr_same(p, c->keys[j], (uint32_t)key))
				return oc_fail(c, "attribute %.*s appears twice",
					       (int)(p->t[key].len > 80 ? 80 : p->t[key].len),
					       (const char *)p->s + p->t[key].start);
		c->keys[i] = (uint32_t)key;
	}
	return 0;
}

enum {
	S_TRACE,
	S_SPAN,
	S_PARENT,
	S_NAME,
	S_KIND,
	S_START,
	S_END,
	S_ATTRS,
	S_STATUS,
	S_EVENTS,
	S_N
};
static const struct keyname span_keys[S_N] = {
    KN("traceId"),	     KN("spanId"),	    KN("parentSpanId"), KN("name"),   KN("kind"),
    KN("startTimeUnixNano"), KN("endTimeUnixNano"), KN("attributes"),	KN("status"), KN("events")};

static int oc_span(struct otlp_check *c, uint32_t s)
{
	const struct jp *p = c->p;
	int bad = 0;
	long m[S_N], v, st, en, ev;
	uint64_t t0, t1;

	if (p->t[s].type != J_OBJ)
		return oc_fail(c, "a span must be an object");
	jt_pick(p, s, span_keys, S_N, m);
	if ((v = oc_check(c, m[S_TRACE], "traceId", J_STR, 0, &bad)) < 0)
		return -1;
	if (!is_hex(p, v, 32))
		return oc_fail(c, "traceId must be 32 lowercase hex digits");
	if ((v = oc_check(c, m[S_SPAN], "spanId", J_STR, 0, &bad)) < 0)
		return -1;
	if (!is_hex(p, v, 16))
		return oc_fail(c, "spanId must be 16 lowercase hex digits");
	if (c->nspans == c->cap) {
		uint32_t *n = realloc(c->span_ids, (c->cap = c->cap ? c->cap * 2 : 512) * 4);

		if (!n)
			return oc_fail(c, "out of memory");
		c->span_ids = n;
	}
	c->span_ids[c->nspans++] = (uint32_t)v;
	if ((v = oc_check(c, m[S_PARENT], "parentSpanId", J_STR, 1, &bad)) < 0 && bad)
		return -1;
	if (v >= 0 && !is_hex(p, v, 16))
		return oc_fail(c, "parentSpanId must be 16 lowercase hex digits");
	if ((v = oc_check(c, m[S_NAME], "name", J_STR, 0, &bad)) < 0)
		return -1;
	if (!p->t[v].len)
		return oc_fail(c, "name must not be empty");
	if ((v = oc_check(c, m[S_KIND], "kind", J_NUM, 0, &bad)) < 0)
		return -1;
	if (!(p->t[v].flags & JF_INT) || p->t[v].len != 1 || p->s[p->t[v].start] > '5')
		return oc_fail(c, "kind must be an integer 0-5");
	if ((st = oc_check(c, m[S_START], "startTimeUnixNano", J_STR, 0, &bad)) < 0 ||
	    (en = oc_check(c, m[S_END], "endTimeUnixNano", J_STR, 0, &bad)) < 0)
		return -1;
	if (ns_value(p, st, &t0) || ns_value(p, en, &t1))
		return oc_fail(c, "times must be decimal strings (uint64 nanoseconds)");
	if (t1 < t0)
		return oc_fail(c, "endTimeUnixNano is before startTimeUnixNano");
	if ((v = oc_check(c, m[S_ATTRS], "attributes", J_ARR, 0, &bad)) < 0 || oc_attributes(c, v))
		return -1;
	/* proto3's JSON mapping leaves default values out: no status, or a status with no code,
	 * is code 0 (UNSET). */
	if ((v = oc_check(c, m[S_STATUS], "status", J_OBJ, 1, &bad)) < 0 && bad)
		return -1;
	if (v >= 0) {
		if ((st = oc_get(c, (uint32_t)v, "code", J_NUM, 1, &bad)) < 0 && bad)
			return -1;
		if (st >= 0 && (!(p->t[st].flags & JF_INT) || p->t[st].len != 1 ||
				p->s[p->t[st].start] > '2'))
			return oc_fail(c, "status.code must be 0, 1 or 2");
		if (oc_get(c, (uint32_t)v, "message", J_STR, 1, &bad) < 0 && bad)
			return -1;
	}
	if ((ev = oc_check(c, m[S_EVENTS], "events", J_ARR, 1, &bad)) < 0 && bad)
		return -1;
	if (ev >= 0) {
		uint32_t e = (uint32_t)ev + 1;

		for (uint32_t i = 0; i < p->t[ev].n; i++, e = p->t[e].next) {
			if (p->t[e].type != J_OBJ)
				return oc_fail(c, "events[%u] must be an object", i);
			if ((v = oc_get(c, e, "timeUnixNano", J_STR, 0, &bad)) < 0)
				return -1;
			if (ns_value(p, v, &t0))
				return oc_fail(c,
					       "events[%u].timeUnixNano must be a decimal "
					       "string",
					       i);
			if (oc_get(c, e, "name", J_STR, 0, &bad) < 0)
				return -1;
			if ((v = oc_get(c, e, "attributes", J_ARR, 1, &bad)) < 0 && bad)
				return -1;
			if (v >= 0 && oc_attributes(c, v))
				return -1;
		}
	}
	return 0;
}

static int oc_request(struct otlp_check *c)
{
	const struct jp *p = c->p;
	int bad = 0;
	long rss, v;
	uint32_t rs;

	if (p->t[0].type != J_OBJ)
		return oc_fail(c, "the request must be an object, not %s",
			       jt_typename(p->t[0].type));
	if ((rss = oc_get(c, 0, "resourceSpans", J_ARR, 0, &bad)) < 0)
		return -1;
	rs = (uint32_t)rss + 1;
	for (uint32_t i = 0; i < p->t[rss].n; i++, rs = p->t[rs].next) {
		long res, sss;
		uint32_t ss;

		snprintf(c->path, sizeof(c->path), "resourceSpans[%u]", i);
		if (p->t[rs].type != J_OBJ)
			return oc_fail(c, "must be an object");
		if ((res = oc_get(c, rs, "resource", J_OBJ, 0, &bad)) < 0 ||
		    (v = oc_get(c, (uint32_t)res, "attributes", J_ARR, 0, &bad)) < 0 ||
		    oc_attributes(c, v))
			return -1;
		if ((sss = oc_get(c, rs, "scopeSpans", J_ARR, 0, &bad)) < 0)
			return -1;
		ss = (uint32_t)sss + 1;
		for (uint32_t j = 0; j < p->t[sss].n; j++, ss = p->t[ss].next) {
			long spans;
			uint32_t s;

			snprintf(c->path, sizeof(c->path), "resourceSpans[%u].scopeSpans[%u]", i,
				 j);
			if (p->t[ss].type != J_OBJ)
				return oc_fail(c, "must be an object");
			if ((v = oc_get(c, ss, "scope", J_OBJ, 1, &bad)) < 0 && bad)
				return -1;
			if ((spans = oc_get(c, ss, "spans", J_ARR, 0, &bad)) < 0)
				return -1;
			s = (uint32_t)spans + 1;
			for (uint32_t k = 0; k < p->t[spans].n; k++, s = p->t[s].next) {
				snprintf(c->path, sizeof(c->path),
					 "resourceSpans[%u].scopeSpans[%u].spans[%u]", i, j, k);
				if (oc_span(c, s))
					return -1;
			}
		}
	}
	return 0;
}

static void otlp_error(struct server *S, struct reply *out, const char *why)
{
	char msg[800];

	snprintf(msg, sizeof(msg), "invalid ExportTraceServiceRequest: %s", why);
	server_error(S, msg);
	out->status = 400;
	out->b.n = 0;
	buf_lit(&out->b, "{\"code\":3,\"message\":");
	buf_json_str(&out->b, msg, strlen(msg));
	buf_lit(&out->b, "}");
}

static void otlp_traces(struct server *S, const char *body, size_t len, struct reply *out)
{
	struct jp p = {0};
	char why[600];
	struct otlp_check c = {.p = &p, .why = why, .wn = sizeof(why)};
	int mode;

	if (jp_parse(&p, body, len)) {
		snprintf(why, sizeof(why), "not JSON: byte %zu: %s", p.err_at + 1, p.err);
		otlp_error(S, out, why);
	} else if (oc_request(&c)) {
		otlp_error(S, out, why);
	} else if (!(c.span_hash = malloc((c.nspans + 1) * sizeof(*c.span_hash)))) {
		otlp_error(S, out, "out of memory");
	} else {
		for (size_t i = 0; i < c.nspans; i++) {
			const struct jtok *t = &p.t[c.span_ids[i]];

			c.span_hash[i] = idset_hash("", 0, (const char *)p.s + t->start, t->len);
		}
		pthread_mutex_lock(&S->lock);
		S->otlp_requests++;
		mode = S->mode;
		if (mode != MODE_429 && mode != MODE_503) {
			for (size_t i = 0; i < c.nspans; i++)
				idset_prefetch(&S->spans, c.span_hash[i]);
			for (size_t i = 0; i < c.nspans; i++) {
				int added;
				const struct jtok *t = &p.t[c.span_ids[i]];
				const char *id = (const char *)p.s + t->start;
				struct slot *sl =
				    idset_get(&S->spans, c.span_hash[i], "", 0, id, t->len, &added);

				if (sl && !added) {
					sl->version++;
					S->span_duplicates++;
				}
			}
			S->spans_n += c.nspans;
		}
		pthread_mutex_unlock(&S->lock);
		out->b.n = 0;
		if (mode == MODE_429 || mode == MODE_503) {
			out->status = mode == MODE_429 ? 429 : 503;
			buf_lit(&out->b, "{\"code\":14,\"message\":\"injected\"}");
		} else {
			out->status = 200;
			buf_lit(&out->b, "{}");
		}
	}
	free(c.span_ids);
	free(c.span_hash);
	free(c.keys);
	jp_free(&p);
}

/* ---- HTTP ------------------------------------------------------------------------------- */

/* Decompress a gzip (one member or several) or zlib body into out. */
static int inflate_body(const char *in, size_t n, int gzip, struct buf *out, char *why, size_t wn)
{
	z_stream z = {0};
	size_t hint = n * 4 + 1024;
	int rc;

	if (gzip && n >= 18) { /* the trailer has the (last member's) size: one allocation */
		const unsigned char *t = (const unsigned char *)in + n - 4;
		size_t isize =
		    (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;

		if (isize >= hint && isize <= MAX_BODY)
			hint = isize + 1;
	}
	if (buf_reserve(out, hint) || inflateInit2(&z, gzip ? 16 + 15 : 15) != Z_OK) {
		snprintf(why, wn, "out of memory");
		return -1;
	}
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)n;
	for (;;) {
		if (out->cap - out->n < 2 && buf_reserve(out, out->cap)) {
			snprintf(why, wn, "out of memory");
			break;
		}
		z.next_out = (unsigned char *)out->p + out->n;
		z.avail_out = (uInt)(out->cap - out->n - 1);
		rc = inflate(&z, Z_NO_FLUSH);
		out->n = (size_t)((char *)z.next_out - out->p);
		if (out->n > MAX_BODY) {
			snprintf(why, wn, "the decompressed body is over %u bytes", MAX_BODY);
			break;
		}
		if (rc == Z_STREAM_END) {
			if (!z.avail_in) {
				inflateEnd(&z);
				return 0;
			}
			if (!gzip) {
				snprintf(why, wn, "content after the end of the deflate stream");
				break;
			}
			inflateReset(&z); /* another gzip member */
			continue;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			snprintf(why, wn, "the %s body does not decompress: %s",
				 gzip ? "gzip" : "deflate", z.msg ? z.msg : "corrupt");
			break;
		}
		if (!z.avail_in && z.avail_out) {
			snprintf(why, wn, "the %s body is truncated", gzip ? "gzip" : "deflate");
			break;
		}
	}
	inflateEnd(&z);
	return -1;
}

static const char *header(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* The media type of a Content-Type value (before any parameter) equals want. */
static int media_type_is(const char *v, const char *want)
{
	size_t n = strlen(want);

	if (!v || strncasecmp(v, want, n))
		return 0;
	v += n;
	while (*v == ' ' || *v == '\t')
		v++;
	return !*v || *v == ';';
}

static void stats_json(struct server *S, struct buf *b)
{
	struct rusage ru;
	double cpu;

	getrusage(RUSAGE_SELF, &ru);
	cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	pthread_mutex_lock(&S->lock);
	buf_printf(b,
		   "{\"requests\":%llu,\"bulk_requests\":%llu,\"otlp_requests\":%llu,"
		   "\"items\":%llu,\"items_200\":%llu,\"items_201\":%llu,\"items_400\":%llu,"
		   "\"items_409\":%llu,\"items_429\":%llu,\"items_503\":%llu,"
		   "\"unique_ids\":%zu,\"duplicates\":%llu,\"spans\":%llu,\"unique_spans\":%zu,"
		   "\"span_duplicates\":%llu,\"bytes_received\":%llu,\"bytes_decoded\":%llu,"
		   "\"errors\":%llu,\"templates\":%llu,\"cpu_seconds\":%.6f,\"last_error\":",
		   (unsigned long long)S->requests, (unsigned long long)S->bulk_requests,
		   (unsigned long long)S->otlp_requests, (unsigned long long)S->items,
		   (unsigned long long)S->items_200, (unsigned long long)S->items_201,
		   (unsigned long long)S->items_400, (unsigned long long)S->items_409,
		   (unsigned long long)S->items_429, (unsigned long long)S->items_503, S->docs.n,
		   (unsigned long long)S->duplicates, (unsigned long long)S->spans_n, S->spans.n,
		   (unsigned long long)S->span_duplicates, (unsigned long long)S->bytes_received,
		   (unsigned long long)S->bytes_decoded, (unsigned long long)S->errors,
		   (unsigned long long)S->templates, cpu);
	buf_json_str(b, S->last_error, strlen(S->last_error));
	buf_lit(b, ",\"authorization\":");
	buf_json_str(b, S->authorization, strlen(S->authorization));
	buf_lit(b, "}");
	pthread_mutex_unlock(&S->lock);
}

static void reset_state(struct server *S)
{
	pthread_mutex_lock(&S->lock);
	idset_free(&S->docs);
	idset_free(&S->spans);
	S->requests = S->bulk_requests = S->otlp_requests = S->items = S->items_200 = S->items_201 =
	    S->items_400 = S->items_409 = S->items_429 = S->items_503 = S->duplicates = S->spans_n =
		S->span_duplicates = S->bytes_received = S->bytes_decoded = S->errors = S->seq_no =
		    S->templates = 0;
	S->last_error[0] = S->authorization[0] = 0;
	S->mode = MODE_OK;
	pthread_mutex_unlock(&S->lock);
}

static void set_fault(struct server *S, const char *body, size_t len, struct reply *out)
{
	static const char *const modes[] = {"ok", "429", "503", "partial"};
	struct jp p = {0};
	long m = jp_parse(&p, body, len) ? -1 : jt_get(&p, 0, "mode");

	out->status = 400;
	for (int i = 0; m >= 0 && i < 4; i++) {
		if (jt_is(&p, (uint32_t)m, modes[i])) {
			pthread_mutex_lock(&S->lock);
			S->mode = i;
			pthread_mutex_unlock(&S->lock);
			out->status = 200;
			buf_printf(&out->b, "{\"mode\":\"%s\"}", modes[i]);
		}
	}
	if (out->status != 200)
		buf_lit(&out->b, "{\"error\":\"body must be {\\\"mode\\\": \\\"ok\\\"|\\\"429\\\"|"
				 "\\\"503\\\"|\\\"partial\\\"} (the C server's modes)\"}");
	jp_free(&p);
}

/* URL parameters of _bulk: Elasticsearch refuses one it does not know. filter_path would make
 * it answer less than every item in full, which this server does not do: refused too. */
static enum MHD_Result bulk_param(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	static const char *const known[] = {"refresh",
					    "pipeline",
					    "routing",
					    "timeout",
					    "wait_for_active_shards",
					    "require_alias",
					    "require_data_stream",
					    "_source",
					    "_source_excludes",
					    "_source_includes",
					    "list_executed_pipelines",
					    "include_source_on_error",
					    "pretty",
					    "human",
					    "error_trace",
					    NULL};
	const char **bad = cls;

	(void)kind;
	(void)value;
	for (int i = 0; known[i]; i++)
		if (!strcmp(key, known[i]))
			return MHD_YES;
	*bad = key;
	return MHD_NO;
}

/* A request whose body is all here. */
static void dispatch(struct server *S, struct MHD_Connection *c, const char *url,
		     const char *method, struct req *r, struct reply *out)
{
	int post = !strcmp(method, "POST"), put = !strcmp(method, "PUT");
	int bulk = (post || put) && !strcmp(url, "/_bulk");
	int otlp = post && !strcmp(url, "/v1/traces");
	const char *enc = header(c, MHD_HTTP_HEADER_CONTENT_ENCODING);
	const char *ctype = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *auth = header(c, MHD_HTTP_HEADER_AUTHORIZATION);
	struct buf dec = {0};
	char *body = r->body.p ? r->body.p : "";
	size_t len = r->body.n;
	char why[300];

	pthread_mutex_lock(&S->lock);
	S->requests++;
	S->bytes_received += r->body.n;
	if (auth)
		snprintf(S->authorization, sizeof(S->authorization), "%s", auth);
	pthread_mutex_unlock(&S->lock);
	if (r->too_big) {
		snprintf(why, sizeof(why), "the body is over %u bytes", MAX_BODY);
		es_error(S, out, 413, "content_too_long_exception", why);
		return;
	}
	if (!strcmp(method, "GET")) {
		out->status = 200;
		if (!strcmp(url, "/_test/stats"))
			stats_json(S, &out->b);
		else if (!strcmp(url, "/"))
			buf_lit(&out->b,
				"{\"name\":\"bulk-server\",\"cluster_name\":\"agtrace-test\","
				"\"version\":{\"number\":\"8.15.0\"},\"tagline\":\"You "
				"Know, for Search\"}");
		else
			out->status = 0;
		if (out->status)
			return;
	}
	if (post && !strcmp(url, "/_test/fault")) {
		set_fault(S, body, len, out);
		return;
	}
	if (post && !strcmp(url, "/_test/reset")) {
		reset_state(S);
		out->status = 200;
		buf_lit(&out->b, "{}");
		return;
	}
	if (!bulk && !otlp &&
	    !(put &&
	      (!strncmp(url, "/_index_template/", 17) || !strncmp(url, "/_ilm/policy/", 13)))) {
		snprintf(why, sizeof(why), "no handler for [%s %.200s]", method, url);
		es_error(S, out, 404, "no_handler_found_exception", why);
		return;
	}
	if (bulk) {
		const char *bad = NULL;

		MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, bulk_param, &bad);
		if (bad) {
			snprintf(
			    why, sizeof(why),
			    !strcmp(bad, "filter_path")
				? "request [/_bulk] has [%s]: this test server answers every item "
				  "in full and does not filter"
				: "request [/_bulk] contains unrecognized parameter: [%.100s]",
			    bad);
			es_error(S, out, 400, "illegal_argument_exception", why);
			return;
		}
	}
	if (bulk ? !media_type_is(ctype, "application/x-ndjson")
		 : !media_type_is(ctype, "application/json")) {
		snprintf(why, sizeof(why), "Content-Type header [%.100s] is not supported%s",
			 ctype ? ctype : "",
			 bulk ? ": _bulk takes application/x-ndjson"
			      : ": this takes application/json");
		if (otlp) {
			server_error(S, why);
			out->status = 415;
			buf_lit(&out->b, "{\"code\":3,\"message\":");
			buf_json_str(&out->b, why, strlen(why));
			buf_lit(&out->b, "}");
		} else {
			es_error(S, out, 406, "media_type_header_exception", why);
		}
		return;
	}
	if (enc && strcasecmp(enc, "identity")) {
		int gzip = !strcasecmp(enc, "gzip");

		if (!gzip && strcasecmp(enc, "deflate")) {
			snprintf(why, sizeof(why), "unsupported Content-Encoding [%.100s]", enc);
			es_error(S, out, 415, "illegal_argument_exception", why);
			return;
		}
		if (inflate_body(body, len, gzip, &dec, why, sizeof(why))) {
			es_error(S, out, 400, "illegal_argument_exception", why);
			free(dec.p);
			return;
		}
		body = dec.p;
		len = dec.n;
	}
	pthread_mutex_lock(&S->lock);
	S->bytes_decoded += len;
	pthread_mutex_unlock(&S->lock);
	if (bulk) {
		es_bulk(S, body, len, r, out);
	} else if (otlp) {
		otlp_traces(S, body, len, out);
	} else { /* an index template or ILM policy: a JSON object, acknowledged */
		struct jp p = {0};

		if (jp_parse(&p, body, len) || p.t[0].type != J_OBJ) {
			snprintf(why, sizeof(why), "the body must be a JSON object%s%s",
				 p.err ? ": " : "", p.err ? p.err : "");
			es_error(S, out, 400, "parse_exception", why);
		} else {
			pthread_mutex_lock(&S->lock);
			S->templates++;
			pthread_mutex_unlock(&S->lock);
			out->status = 200;
			buf_lit(&out->b, "{\"acknowledged\":true}");
		}
		jp_free(&p);
	}
	free(dec.p);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **req_cls)
{
	struct server *S = cls;
	struct req *r = *req_cls;
	struct reply out = {0};
	struct MHD_Response *resp;
	enum MHD_Result rc;

	(void)version;
	if (!r) {
		const char *cl = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
		unsigned long long want = cl ? strtoull(cl, NULL, 10) : 0;

		if (!(r = calloc(1, sizeof(*r))))
			return MHD_NO;
		clock_gettime(CLOCK_MONOTONIC, &r->t0);
		if (want > MAX_BODY)
			r->too_big = 1;
		else if (want)
			buf_reserve(&r->body, (size_t)want + 1);
		*req_cls = r;
		return MHD_YES;
	}
	if (*data_size) {
		if (r->body.n + *data_size > MAX_BODY)
			r->too_big = 1;
		if (!r->too_big)
			buf_add(&r->body, data, *data_size);
		*data_size = 0;
		return MHD_YES;
	}
	if (r->body.failed) {
		out.status = 500;
		buf_lit(&out.b, "{\"error\":\"out of memory\"}");
	} else {
		dispatch(S, c, url, method, r, &out);
	}
	if (out.b.failed || !out.status) {
		out.status = 500;
		free(out.b.p);
		out.b = (struct buf){0};
		buf_lit(&out.b, "{\"error\":\"out of memory\"}");
	}
	resp = MHD_create_response_from_buffer(out.b.n, out.b.p, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(out.b.p);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	rc = MHD_queue_response(c, out.status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req *r = *req_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (r) {
		free(r->body.p);
		free(r);
		*req_cls = NULL;
	}
}

static struct MHD_Daemon *serve(struct server *S, int port, int threads)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO,
				(uint16_t)port, NULL, NULL, on_request, S, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
				S, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(1u << 20),
				MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_LISTEN_BACKLOG_SIZE,
				256u, MHD_OPTION_THREAD_POOL_SIZE,
				(unsigned)(threads > 1 ? threads : 0), MHD_OPTION_END);
}

static int bound_port(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);

	return i ? i->port : -1;
}

/* ---- self-bench: a synthetic client in a child process ---------------------------------- */

#define BATCH 500

struct client {
	int fd;
	char *resp;
	size_t cap;
};

static int client_connect(struct client *cl, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cl->fd < 0 || connect(cl->fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	setsockopt(cl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	cl->cap = 8u << 20;
	cl->resp = malloc(cl->cap);
	return cl->resp ? 0 : -1;
}

/* One request on the kept-alive connection; the status, the response body at *body. */
static int client_call(struct client *cl, const char *method, const char *path, const char *ctype,
		       const char *enc, const void *body, size_t len, char **rbody, size_t *rlen)
{
	char head[512];
	int hn = snprintf(head, sizeof(head),
			  "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n%s%s%s"
			  "Content-Length: %zu\r\n\r\n",
			  method, path, ctype, enc ? "Content-Encoding: " : "", enc ? enc : "",
			  enc ? "\r\n" : "", len);
	struct iovec iov[2] = {{head, (size_t)hn}, {(void *)body, len}};
	size_t got = 0, want = 0, hend = 0;
	int idx = 0;

	while (idx < 2) {
		ssize_t w = writev(cl->fd, iov + idx, 2 - idx);

		if (w < 0)
			return -1;
		while (idx < 2 && (size_t)w >= iov[idx].iov_len)
			w -= (ssize_t)iov[idx++].iov_len;
		if (idx < 2) {
			iov[idx].iov_base = (char *)iov[idx].iov_base + w;
			iov[idx].iov_len -= (size_t)w;
		}
	}
	for (;;) {
		ssize_t n = read(cl->fd, cl->resp + got, cl->cap - got - 1);
		char *e;

		if (n <= 0)
			return -1;
		got += (size_t)n;
		cl->resp[got] = 0;
		if (!hend && (e = strstr(cl->resp, "\r\n\r\n"))) {
			char *h = strcasestr(cl->resp, "\r\ncontent-length:");

			hend = (size_t)(e - cl->resp) + 4;
			if (!h)
				return -1;
			want = hend + strtoull(h + 17, NULL, 10);
			if (want >= cl->cap)
				return -1;
		}
		if (hend && got >= want)
			break;
	}
	*rbody = cl->resp + hend;
	*rlen = want - hend;
	return atoi(cl->resp + 9);
}

static int gzip_buf(const char *in, size_t n, struct buf *out)
{
	z_stream z = {0};

	out->n = 0;
	if (buf_reserve(out, compressBound(n) + 64) ||
	    deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)n;
	z.next_out = (unsigned char *)out->p;
	z.avail_out = (uInt)out->cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		return -1;
	}
	out->n = z.total_out;
	deflateEnd(&z);
	return 0;
}

/* A batch as the exporter would write it: ES documents (bench_es's span) or OTLP spans. */
static void make_batch(struct buf *b, int otlp, uint64_t first, uint64_t *x)
{
	b->n = 0;
	if (otlp)
		buf_lit(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service."
			   "name\",\"value\":{\"stringValue\":\"agtrace\"}},{\"key\":\"host.name\","
			   "\"value\":{\"stringValue\":\"bench\"}}]},\"scopeSpans\":[{\"scope\":{"
			   "\"name\":\"agtrace\"},\"spans\":[");
	for (uint64_t i = first; i < first + BATCH; i++) {
		char hex[65];

		for (int k = 0; k < 4; k++) {
			rng_next(x);
			snprintf(hex + 16 * k, 17, "%016llx", (unsigned long long)*x);
		}
		if (otlp) {
			buf_printf(
			    b,
			    "%s{\"traceId\":\"%032llx\",\"spanId\":\"%016llx\",\"name\":\"chat "
			    "gpt-4o\",\"kind\":1,\"startTimeUnixNano\":\"1714564800%09llu\","
			    "\"endTimeUnixNano\":\"1714564800%09llu\",\"attributes\":[{\"key\":"
			    "\"agentic.trace_type\",\"value\":{\"stringValue\":\"reasoning_step\"}}"
			    ","
			    "{\"key\":\"agentic.session_id\",\"value\":{\"stringValue\":"
			    "\"00112233445566ff\"}},{\"key\":\"process.pid\",\"value\":{"
			    "\"intValue\":\"42\"}},{\"key\":\"process.executable.name\",\"value\":{"
			    "\"stringValue\":\"agent\"}},{\"key\":\"process.executable.path\","
			    "\"value\":{\"stringValue\":\"/usr/bin/python3\"}},{\"key\":\"thread."
			    "id\",\"value\":{\"intValue\":\"42\"}},{\"key\":\"agentic.message\","
			    "\"value\":{\"stringValue\":\"the model asked for the weather in Paris "
			    "(request %s); the tool answered eighteen degrees\"}}],\"status\":{"
			    "\"code\":1}}",
			    i == first ? "" : ",", (unsigned long long)i, (unsigned long long)i,
			    (unsigned long long)(i % 1000000000),
			    (unsigned long long)(i % 1000000000), hex);
		} else {
			buf_printf(
			    b,
			    "{\"index\":{\"_index\":\"agentic-traces-2024.05.01\",\"_id\":"
			    "\"%016llx\"}}\n{\"@timestamp\":\"2024-05-01T12:00:00.000001Z\","
			    "\"end_time\":\"2024-05-01T12:00:00.000001Z\",\"trace_id\":\"%032llx\","
			    "\"span_id\":\"%016llx\",\"trace_type\":\"reasoning_step\",\"name\":"
			    "\"chat gpt-4o\",\"duration_ms\":0,\"status\":\"ok\",\"session_id\":"
			    "\"00112233445566ff\",\"process\":{\"pid\":42,\"name\":\"agent\","
			    "\"executable\":\"/usr/bin/python3\",\"thread\":{\"id\":42}},\"host\":{"
			    "\"name\":\"bench\"},\"message\":\"the model asked for the weather in "
			    "Paris (request %s); the tool answered eighteen degrees\"}\n",
			    (unsigned long long)i, (unsigned long long)i, (unsigned long long)i,
			    hex);
		}
	}
	if (otlp)
		buf_lit(b, "]}]}]}");
}

static double stats_number(struct client *cl, const char *key)
{
	char *body, *at, pat[64];
	size_t len;

	if (client_call(cl, "GET", "/_test/stats", "application/json", NULL, "", 0, &body, &len) !=
	    200)
		return -1;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	return (at = strstr(body, pat)) ? strtod(at + strlen(pat), NULL) : -1;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Send ndocs documents (or spans) in batches of BATCH, cycling through at most 200 distinct
 * batches (so the ids beyond 100,000 are repeats: updates); print the rates. */
static int bench_one(int port, int otlp, long ndocs)
{
	long nreq = (ndocs + BATCH - 1) / BATCH, distinct = nreq < 200 ? nreq : 200;
	struct buf *gz = calloc((size_t)distinct, sizeof(*gz)), raw = {0};
	uint64_t x = 88172645463325252ull, raw_total = 0, gz_total = 0;
	struct client cl = {0};
	double t0, t1, cpu0, cpu1;
	int bad = 0;

	if (!gz || client_connect(&cl, port))
		return -1;
	for (long i = 0; i < distinct; i++) {
		make_batch(&raw, otlp, (uint64_t)i * BATCH + 1, &x);
		if (raw.failed || gzip_buf(raw.p, raw.n, &gz[i]))
			return -1;
		raw_total += raw.n;
		gz_total += gz[i].n;
	}
	cpu0 = stats_number(&cl, "cpu_seconds");
	t0 = now_s();
	for (long i = 0; i < nreq; i++) {
		const struct buf *g = &gz[i % distinct];
		char *body;
		size_t len;
		int st = otlp ? client_call(&cl, "POST", "/v1/traces", "application/json", "gzip",
					    g->p, g->n, &body, &len)
			      : client_call(&cl, "POST", "/_bulk", "application/x-ndjson", "gzip",
					    g->p, g->n, &body, &len);

		if (st != 200 ||
		    (!otlp && !memmem(body, len < 64 ? len : 64, "\"errors\":false", 14))) {
			fprintf(stderr, "self-bench: request %ld answered %d: %.300s\n", i, st,
				st > 0 ? body : "");
			bad = 1;
			break;
		}
	}
	t1 = now_s();
	cpu1 = stats_number(&cl, "cpu_seconds");
	if (!bad) {
		double docs = (double)nreq * BATCH, cpu = cpu1 - cpu0;

		printf("%-10s %8.0f docs  %5.0f B/doc raw %4.0f B/doc gzip  %9.0f docs/s wall  "
		       "%5.2f us server CPU/doc  ceiling %9.0f docs/s per core\n",
		       otlp ? "otlp" : "_bulk", docs,
		       (double)raw_total / ((double)distinct * BATCH),
		       (double)gz_total / ((double)distinct * BATCH), docs / (t1 - t0),
		       cpu / docs * 1e6, cpu > 0 ? docs / cpu : 0.0);
	}
	for (long i = 0; i < distinct; i++)
		free(gz[i].p);
	free(gz);
	free(raw.p);
	free(cl.resp);
	close(cl.fd);
	return bad ? -1 : 0;
}

static int self_bench(struct server *S, long ndocs, const char *only)
{
	int pfd[2], port, status = 1;
	struct MHD_Daemon *d;
	pid_t pid;

	if (pipe(pfd))
		return 1;
	fflush(stdout);
	if ((pid = fork()) < 0)
		return 1;
	if (!pid) { /* the client: forked before the server has threads */
		int rc = 0;

		close(pfd[1]);
		if (read(pfd[0], &port, sizeof(port)) != sizeof(port))
			_exit(2);
		printf("bulk_server self-bench: one server thread, a client process sending "
		       "batches of %d gzip'd as the exporter does, one connection; server CPU "
		       "from its getrusage\n",
		       BATCH);
		if (!only || !strcmp(only, "bulk"))
			rc |= bench_one(port, 0, ndocs);
		if (!only || !strcmp(only, "otlp"))
			rc |= bench_one(port, 1, ndocs);
		fflush(stdout);
		_exit(rc ? 1 : 0);
	}
	close(pfd[0]);
	if (!(d = serve(S, 0, 1)) || (port = bound_port(d)) <= 0) {
		fprintf(stderr, "bulk_server: cannot listen on 127.0.0.1\n");
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return 1;
	}
	if (write(pfd[1], &port, sizeof(port)) != sizeof(port))
		kill(pid, SIGKILL);
	close(pfd[1]);
	waitpid(pid, &status, 0);
	MHD_stop_daemon(d);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
	struct server S = {.lock = PTHREAD_MUTEX_INITIALIZER, .rng = 7};
	int port = 0, threads = 1, sig, rc;
	long self = 0;
	const char *only = NULL;
	struct MHD_Daemon *d;
	sigset_t set;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc) {
			port = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
			threads = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--self-bench")) {
			self = i + 1 < argc && argv[i + 1][0] != '-' ? atol(argv[++i]) : 300000;
			if (i + 1 < argc && argv[i + 1][0] != '-')
				only = argv[++i];
		} else {
			fprintf(stderr,
				"usage: bulk_server [--port N] [--threads N] | --self-bench "
				"[DOCS]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (self > 0) {
		rc = self_bench(&S, self, only);
		idset_free(&S.docs);
		idset_free(&S.spans);
		return rc;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* the server's threads inherit this */
	if (!(d = serve(&S, port, threads))) {
		fprintf(stderr, "bulk_server: cannot listen on 127.0.0.1:%d\n", port);
		return 1;
	}
	printf("listening %d\n", bound_port(d));
	fflush(stdout);
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	idset_free(&S.docs);
	idset_free(&S.spans);
	return 0;
}
