/* The redaction engine (see redact.h): the redactor object and its PCRE2 user patterns, the
 * JSON rewriter that redacts a document by its structure, and the free-text path, which
 * applies the spans found by the built-in rules (redact_scan.c) and then the user patterns.
 *
 * The JSON rewriter is a small strict parser (RFC 8259) that writes compact JSON as it reads:
 * numbers are copied as written, strings are decoded, redacted as free text and encoded again.
 * Anything it rejects (truncated, invalid, nested deeper than MAX_DEPTH) is redacted as free
 * text instead. All state of one call lives in a struct call on the caller's stack, so one
 * redactor serves many threads. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "base/redact.h"
#include "base/redact_int.h"
#include <errno.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARK AGT_REDACTED
#define MARK_LEN (sizeof(MARK) - 1)
#define MAX_DEPTH 128 /* arrays and objects inside one another in one document */
#define MAX_NEST 3    /* JSON documents in strings of JSON documents, below the top one */

struct agt_redactor {
	pcre2_code **pat;
	size_t n, cap;
};

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

/* Scratch of one document level: a decoded string, its redacted text, the rewritten document
 * (level 0's is the result). */
struct level {
	struct buf dec, red, out;
};

/* Everything one call needs. */
struct call {
	const struct agt_redactor *r;
	pcre2_match_data *md;  /* only when there are user patterns */
	unsigned long changes; /* replacements so far (tells whether a nested document changed) */
	struct agt_rspans spans;
	size_t span_at;	   /* apply: spans before this one are behind the text applied */
	struct buf t1, t2; /* the free-text path's scratch (it never recurses) */
	struct level lv[MAX_NEST + 1];
};

/* Buffers ----------------------------------------------------------- */

static bool grow(struct buf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->oom)
		return false;
	if (b->len + more + 1 <= b->cap && b->p)
		return true;
	cap = b->cap ? b->cap : 64;
	while (cap < b->len + more + 1) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void put(struct buf *b, const void *d, size_t n)
{
	if (n && grow(b, n)) {
		memcpy(b->p + b->len, d, n);
		b->len += n;
	}
}

static void put_char(struct buf *b, char c)
{
	if (grow(b, 1))
		b->p[b->len++] = c;
}

/* The mark, as a JSON string at escape level quote when quote >= 0. */
static void put_mark(struct buf *b, int quote)
{
	size_t esc = quote > 0 ? ((size_t)1 << quote) - 1 : 0;

	if (quote >= 0) {
		for (size_t i = 0; i < esc; i++)
			put_char(b, '\\');
		put_char(b, '"');
	}
	put(b, MARK, MARK_LEN);
	if (quote >= 0) {
		for (size_t i = 0; i < esc; i++)
			put_char(b, '\\');
		put_char(b, '"');
	}
}

static void put_utf8(struct buf *b, unsigned cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	put(b, u, n);
}

/* s[0..n) as a JSON string: quote, backslash and control characters escaped (the short forms
 * where JSON has them, else \u00xx), everything else as is. */
static void put_json_string(struct buf *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t at = 0;

	put_char(o, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = s[i];
		char e[6] = {'\\', 0, 0, 0, 0, 0};
		size_t el = 2;

		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		put(o, s + at, i - at);
		at = i + 1;
		switch (ch) {
		case '"': e[1] = '"'; break;
		case '\\': e[1] = '\\'; break;
		case '\b': e[1] = 'b'; break;
		case '\f': e[1] = 'f'; break;
		case '\n': e[1] = 'n'; break;
		case '\r': e[1] = 'r'; break;
		case '\t': e[1] = 't'; break;
		default:
			memcpy(e + 1, "u00", 3);
			e[4] = hex[ch >> 4];
			e[5] = hex[ch & 15];
			el = 6;
		}
		put(o, e, el);
	}
	put(o, s + at, n - at);
	put_char(o, '"');
}

/* User patterns ----------------------------------------------------- */

/* One pattern over s[0..n) into out. */
static void one_pattern(struct call *c, const pcre2_code *code, const char *s, size_t n,
			struct buf *out)
{
	size_t pos = 0, copied = 0;

	while (pos <= n) {
		int rc = pcre2_match(code, (PCRE2_SPTR)s, n, pos, 0, c->md, NULL);
		PCRE2_SIZE *ov;
		size_t ms, me;

		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0) {
			/* Match limit or another failure: the rest may hold what the user wants
			 * hidden, so it is hidden. */
			put(out, s + copied, pos - copied);
			put(out, MARK, MARK_LEN);
			c->changes++;
			copied = n;
			break;
		}
		ov = pcre2_get_ovector_pointer(c->md);
		ms = ov[0] < copied ? copied : ov[0];
		me = ov[1];
		if (me <= ms) {
			/* An empty match replaces nothing: go on after the next character. */
			pos = (me > pos ? me : pos) + 1;
			while (pos < n && ((unsigned char)s[pos] & 0xC0) == 0x80)
				pos++;
			continue;
		}
		put(out, s + copied, ms - copied);
		put(out, MARK, MARK_LEN);
		c->changes++;
		copied = pos = me;
	}
	put(out, s + copied, n - copied);
}

/* The user patterns, in order, over c->t1 into out. */
static void patterns(struct call *c, struct buf *out)
{
	struct buf *src = &c->t1, *other = &c->t2;

	for (size_t k = 0; k < c->r->n; k++) {
		bool last = k + 1 == c->r->n;
		struct buf *dst = last ? out : other;

		if (!last)
			dst->len = 0;
		one_pattern(c, c->r->pat[k], src->p ? src->p : "", src->len, dst);
		if (!last) {
			other = src;
			src = dst;
		}
	}
}

/* Free text --------------------------------------------------------- */

/* s[lo..hi) into out with the spans of c->spans (found over all of s) replaced. Successive
 * calls go forward through s (the arguments of a command line, in order). */
static void apply(struct call *c, const char *s, size_t lo, size_t hi, struct buf *out)
{
	size_t at = lo;

	for (size_t k = c->span_at; k < c->spans.n; k++) {
		const struct agt_rspan *sp = &c->spans.v[k];
		size_t a = sp->start > lo ? sp->start : lo, b = sp->end < hi ? sp->end : hi;

		if (sp->start > hi)
			break;
		if (!(a < b || (sp->start == sp->end && sp->start >= lo && sp->start < hi)))
			continue;
		put(out, s + at, a - at);
		put_mark(out, sp->quote);
		at = b;
		c->changes++;
	}
	put(out, s + at, hi - at);
	while (c->span_at < c->spans.n && c->spans.v[c->span_at].end <= hi)
		c->span_at++;
}

static void free_text(struct call *c, const char *s, size_t n, struct buf *out)
{
	c->spans.n = 0;
	c->span_at = 0;
	if (agt_redact_scan(s, n, &c->spans))
		return; /* spans.oom fails the call */
	if (!c->md) {
		apply(c, s, 0, n, out);
		return;
	}
	c->t1.len = 0;
	apply(c, s, 0, n, &c->t1);
	patterns(c, out);
}

/* JSON documents ---------------------------------------------------- */

struct jp {
	struct call *c;
	const char *p, *end;
	struct buf *out; /* NULL while reading a value that is redacted whole */
	int depth, nest;
};

static int j_value(struct jp *j, bool props);
static int json_doc(struct call *c, const char *s, size_t n, struct buf *out, int nest);

static bool ws_char(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static void j_ws(struct jp *j)
{
	while (j->p < j->end && ws_char(*j->p))
		j->p++;
}

/* Whether s[0..n) may be a JSON object or array (the parser decides). */
static bool looks_json(const char *s, size_t n)
{
	size_t a = 0, b = n;

	while (a < b && ws_char(s[a]))
		a++;
	while (b > a && ws_char(s[b - 1]))
		b--;
	return b - a >= 2 && ((s[a] == '{' && s[b - 1] == '}') || (s[a] == '[' && s[b - 1] == ']'));
}

static int hex4(const char *p, const char *end, unsigned *v)
{
	*v = 0;
	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char ch = p[i];

		*v <<= 4;
		if (ch >= '0' && ch <= '9')
			*v |= (unsigned)(ch - '0');
		else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
			*v |= (unsigned)((ch | 0x20) - 'a' + 10);
		else
			return -1;
	}
	return 0;
}

/* Decode the string at j->p (its opening quote) into d. A lone surrogate escape becomes
 * U+FFFD; raw bytes are kept as they are, valid UTF-8 or not. */
static int j_string(struct jp *j, struct buf *d)
{
	const char *p = j->p + 1, *end = j->end;

	d->len = 0;
	for (;;) {
		const char *q = p;
		unsigned v, w;

		while (q < end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
			q++;
		put(d, p, (size_t)(q - p));
		if (q >= end || (unsigned char)*q < 0x20)
			return -1;
		if (*q == '"') {
			j->p = q + 1;
			return 0;
		}
		if (q + 1 >= end)
			return -1;
		p = q + 2;
		switch (q[1]) {
		case '"':
		case '\\':
		case '/': put_char(d, q[1]); break;
		case 'b': put_char(d, '\b'); break;
		case 'f': put_char(d, '\f'); break;
		case 'n': put_char(d, '\n'); break;
		case 'r': put_char(d, '\r'); break;
		case 't': put_char(d, '\t'); break;
		case 'u':
			if (hex4(p, end, &v))
				return -1;
			p += 4;
			if (v >= 0xD800 && v < 0xDC00) {
				if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
				    !hex4(p + 2, end, &w) && w >= 0xDC00 && w < 0xE000) {
					v = 0x10000 + ((v - 0xD800) << 10) + (w - 0xDC00);
					p += 6;
				} else {
					v = 0xFFFD;
				}
			} else if (v >= 0xDC00 && v < 0xE000) {
				v = 0xFFFD;
			}
			put_utf8(d, v);
			break;
		default: return -1;
		}
	}
}

/* Redact a string's text s[0..n) at document level nest into out: as a JSON document when it
 * is one (kept as written when nothing in it was redacted), else as free text. */
static void value_text(struct call *c, const char *s, size_t n, struct buf *out, int nest)
{
	if (nest < MAX_NEST && looks_json(s, n)) {
		struct buf *jo = &c->lv[nest + 1].out;
		unsigned long before = c->changes;

		jo->len = 0;
		if (!json_doc(c, s, n, jo, nest + 1)) {
			if (c->changes != before)
				put(out, jo->p, jo->len);
			else
				put(out, s, n);
			return;
		}
		c->changes = before;
	}
	free_text(c, s, n, out);
}

static int j_strval(struct jp *j)
{
	struct level *L = &j->c->lv[j->nest];

	if (j_string(j, &L->dec))
		return -1;
	if (!j->out)
		return 0;
	L->red.len = 0;
	value_text(j->c, L->dec.p ? L->dec.p : "", L->dec.len, &L->red, j->nest);
	put_json_string(j->out, L->red.p ? L->red.p : "", L->red.len);
	return 0;
}

static bool digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* A number is copied as written; when a user pattern matches its text, the redacted text is
 * written as a string instead. */
static int j_number(struct jp *j)
{
	const char *s = j->p, *p = s, *e = j->end;
	struct call *c = j->c;

	if (p < e && *p == '-')
		p++;
	if (p >= e)
		return -1;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (p < e && digit(*p))
			p++;
	else
		return -1;
	if (p < e && *p == '.') {
		if (++p >= e || !digit(*p))
			return -1;
		while (p < e && digit(*p))
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		if (++p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || !digit(*p))
			return -1;
		while (p < e && digit(*p))
			p++;
	}
	j->p = p;
	if (!j->out)
		return 0;
	if (c->md) {
		struct buf *red = &c->lv[j->nest].red;
		unsigned long before = c->changes;

		c->t1.len = 0;
		put(&c->t1, s, (size_t)(p - s));
		red->len = 0;
		patterns(c, red);
		if (c->changes != before) {
			put_json_string(j->out, red->p ? red->p : "", red->len);
			return 0;
		}
	}
	put(j->out, s, (size_t)(p - s));
	return 0;
}

static int j_literal(struct jp *j)
{
	static const char *const lits[] = {"true", "false", "null"};

	for (size_t i = 0; i < 3; i++) {
		size_t l = strlen(lits[i]);

		if ((size_t)(j->end - j->p) >= l && !memcmp(j->p, lits[i], l)) {
			if (j->out)
				put(j->out, lits[i], l);
			j->p += l;
			return 0;
		}
	}
	return -1;
}

static bool name_is(const struct buf *k, const char *lit)
{
	size_t l = strlen(lit);

	if (k->len != l)
		return false;
	for (size_t i = 0; i < l; i++)
		if ((k->p[i] | 0x20) != lit[i])
			return false;
	return true;
}

enum role { R_OTHER, R_NAME, R_VALUE, R_PROPS };

/* An object. props: its members are JSON Schema property definitions (the value of a
 * "properties" member), so an object under a credential name is descended into. */
static int j_object(struct jp *j, bool props)
{
	struct call *c = j->c;
	struct level *L = &c->lv[j->nest];
	struct buf *o = j->out;
	size_t vstart = 0, vend = 0;
	bool have_value = false, name_secret = false;

	if (++j->depth > MAX_DEPTH)
		return -1;
	j->p++;
	if (o)
		put_char(o, '{');
	j_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		if (o)
			put_char(o, '}');
		j->depth--;
		return 0;
	}
	for (;;) {
		bool secret;
		enum role role = R_OTHER;
		char first;

		if (j->p >= j->end || *j->p != '"' || j_string(j, &L->dec))
			return -1;
		secret = agt_redact_key_is_secret(L->dec.p, L->dec.len, AGT_KEY_JSON);
		if (name_is(&L->dec, "name") || name_is(&L->dec, "key"))
			role = R_NAME;
		else if (name_is(&L->dec, "value"))
			role = R_VALUE;
		else if (L->dec.len == 10 && !memcmp(L->dec.p, "properties", 10))
			role = R_PROPS;
		if (o) {
			/* A name is text too: a token used as a name is still a token. */
			L->red.len = 0;
			free_text(c, L->dec.p ? L->dec.p : "", L->dec.len, &L->red);
			put_json_string(o, L->red.p ? L->red.p : "", L->red.len);
			put_char(o, ':');
		}
		j_ws(j);
		if (j->p >= j->end || *j->p != ':')
			return -1;
		j->p++;
		j_ws(j);
		if (j->p >= j->end)
			return -1;
		first = *j->p;
		if (secret &&
		    (first == 'n' || first == 't' || first == 'f' || (props && first == '{')))
			secret = false;
		if (secret) {
			j->out = NULL;
			if (j_value(j, false))
				return -1;
			j->out = o;
			if (o) {
				put_mark(o, 0);
				c->changes++;
			}
		} else {
			size_t before = o ? o->len : 0;

			if (role == R_NAME && first == '"') {
				const char *save = j->p;

				if (j_string(j, &L->dec))
					return -1;
				name_secret =
				    agt_redact_key_is_secret(L->dec.p, L->dec.len, AGT_KEY_ENV);
				j->p = save;
			}
			if (j_value(j, role == R_PROPS))
				return -1;
			if (role == R_VALUE && o && first != 'n' && first != 't' && first != 'f') {
				vstart = before;
				vend = o->len;
				have_value = true;
			}
		}
		j_ws(j);
		if (j->p < j->end && *j->p == '}')
			break;
		if (j->p >= j->end || *j->p != ',')
			return -1;
		j->p++;
		if (o)
			put_char(o, ',');
		j_ws(j);
	}
	j->p++;
	if (o && name_secret && have_value && grow(o, MARK_LEN + 2)) {
		/* {"name": "DB_PASSWORD", "value": ...}: the value written above is replaced. */
		size_t tail = o->len - vend, rl = MARK_LEN + 2;

		memmove(o->p + vstart + rl, o->p + vend, tail);
		o->p[vstart] = '"';
		memcpy(o->p + vstart + 1, MARK, MARK_LEN);
		o->p[vstart + rl - 1] = '"';
		o->len = vstart + rl + tail;
		c->changes++;
	}
	if (o)
		put_char(o, '}');
	j->depth--;
	return 0;
}

static int j_array(struct jp *j)
{
	if (++j->depth > MAX_DEPTH)
		return -1;
	j->p++;
	if (j->out)
		put_char(j->out, '[');
	j_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		if (j->out)
			put_char(j->out, ']');
		j->depth--;
		return 0;
	}
	for (;;) {
		if (j_value(j, false))
			return -1;
		j_ws(j);
		if (j->p < j->end && *j->p == ']')
			break;
		if (j->p >= j->end || *j->p != ',')
			return -1;
		j->p++;
		if (j->out)
			put_char(j->out, ',');
		j_ws(j);
	}
	j->p++;
	if (j->out)
		put_char(j->out, ']');
	j->depth--;
	return 0;
}

static int j_value(struct jp *j, bool props)
{
	if (j->p >= j->end)
		return -1;
	switch (*j->p) {
	case '{': return j_object(j, props);
	case '[': return j_array(j);
	case '"': return j_strval(j);
	case 't':
	case 'f':
	case 'n': return j_literal(j);
	default: return j_number(j);
	}
}

/* s[0..n) as a JSON document (an object or array) rewritten into out. 0, or -1 when it is not
 * one (out then holds garbage). */
static int json_doc(struct call *c, const char *s, size_t n, struct buf *out, int nest)
{
	struct jp j = {c, s, s + n, out, 0, nest};

	j_ws(&j);
	if (j.p >= j.end || (*j.p != '{' && *j.p != '['))
		return -1;
	if (j_value(&j, false))
		return -1;
	j_ws(&j);
	return j.p == j.end ? 0 : -1;
}

/* Calls ------------------------------------------------------------- */

static int call_init(struct call *c, const struct agt_redactor *r)
{
	memset(c, 0, sizeof(*c));
	c->r = r;
	if (r && r->n) {
		c->md = pcre2_match_data_create(1, NULL);
		if (!c->md) {
			errno = ENOMEM;
			return -1;
		}
	}
	return 0;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
}

/* End a call: the result is keep's text (NUL-terminated, now the caller's), or NULL with errno
 * ENOMEM when any buffer ran out of memory on the way, since output could then be missing a
 * redaction. */
static char *call_finish(struct call *c, struct buf *keep, size_t *out_len)
{
	bool failed = c->spans.oom || c->t1.oom || c->t2.oom;
	char *res = NULL;

	for (int i = 0; i <= MAX_NEST; i++)
		failed |= c->lv[i].dec.oom || c->lv[i].red.oom || c->lv[i].out.oom;
	failed |= keep->oom;
	if (!failed && grow(keep, 0)) {
		keep->p[keep->len] = 0;
		res = keep->p;
		if (out_len)
			*out_len = keep->len;
		keep->p = NULL;
	}
	buf_free(keep);
	buf_free(&c->t1);
	buf_free(&c->t2);
	for (int i = 0; i <= MAX_NEST; i++) {
		buf_free(&c->lv[i].dec);
		buf_free(&c->lv[i].red);
		buf_free(&c->lv[i].out);
	}
	free(c->spans.v);
	if (c->md)
		pcre2_match_data_free(c->md);
	if (!res)
		errno = ENOMEM;
	return res;
}

/* API --------------------------------------------------------------- */

struct agt_redactor *agt_redactor_new(void)
{
	struct agt_redactor *r = calloc(1, sizeof(*r));

	if (!r)
		errno = ENOMEM;
	return r;
}

static int seterr(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int seterr(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

int agt_redactor_add(struct agt_redactor *r, const char *pattern, char *err, size_t errlen)
{
	pcre2_code *code;
	PCRE2_SIZE off;
	int ec;

	if (!r || !pattern)
		return seterr(err, errlen, -EINVAL, "no redact pattern was given");
	if (!*pattern)
		return seterr(err, errlen, -EINVAL,
			      "a redact pattern must not be empty (it would match nothing)");
	code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
			     PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C, &ec,
			     &off, NULL);
	if (!code) {
		PCRE2_UCHAR msg[256];

		if (ec == PCRE2_ERROR_HEAP_FAILED)
			return seterr(err, errlen, -ENOMEM,
				      "out of memory compiling redact pattern \"%s\"", pattern);
		if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
			snprintf((char *)msg, sizeof(msg), "error %d", ec);
		return seterr(err, errlen, -EINVAL,
			      "redact pattern \"%s\" is not a valid PCRE2 regular expression: %s "
			      "(at offset %zu)",
			      pattern, (const char *)msg, (size_t)off);
	}
	/* JIT where the machine has it; without it PCRE2's interpreter matches the same. */
	(void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 4;
		pcre2_code **v = realloc(r->pat, cap * sizeof(*v));

		if (!v) {
			pcre2_code_free(code);
			return seterr(err, errlen, -ENOMEM,
				      "out of memory adding redact pattern \"%s\"", pattern);
		}
		r->pat = v;
		r->cap = cap;
	}
	r->pat[r->n++] = code;
	return 0;
}

void agt_redactor_free(struct agt_redactor *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		pcre2_code_free(r->pat[i]);
	free(r->pat);
	free(r);
}

char *agt_redact_text(const struct agt_redactor *r, const char *text, size_t len, size_t *out_len)
{
	struct call c;
	struct buf *out;

	if (!text) {
		errno = EINVAL;
		return NULL;
	}
	if (call_init(&c, r))
		return NULL;
	out = &c.lv[0].out;
	if (!looks_json(text, len) || json_doc(&c, text, len, out, 0)) {
		out->len = 0;
		free_text(&c, text, len, out);
	} else if (!c.changes) {
		/* Nothing redacted: the document as it was written (what users see of a tool's
		 * input or output stays theirs), as nested documents already are. */
		out->len = 0;
		if (grow(out, len)) {
			memcpy(out->p, text, len);
			out->len = len;
		}
	}
	return call_finish(&c, out, out_len);
}

/* The spans of a NUL-separated argument list args[0..len), found over all of it. */
static void scan_args(struct call *c, const char *args, size_t len)
{
	c->spans.n = 0;
	c->span_at = 0;
	(void)agt_redact_scan(args, len, &c->spans);
}

char **agt_redact_argv(const struct agt_redactor *r, int argc, const char *const *argv)
{
	struct call c;
	struct buf joined = {0}, all = {0};
	size_t *offs;
	char **v = NULL, *strings, *rest;
	size_t lo = 0;

	if (argc < 0 || (argc && !argv)) {
		errno = EINVAL;
		return NULL;
	}
	offs = calloc((size_t)argc + 1, sizeof(*offs));
	if (!offs || call_init(&c, r)) {
		free(offs);
		errno = ENOMEM;
		return NULL;
	}
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i] ? argv[i] : "";

		put(&joined, a, strlen(a));
		put_char(&joined, 0);
	}
	scan_args(&c, joined.p ? joined.p : "", joined.len);
	for (int i = 0; i < argc; i++) {
		size_t hi = lo + strlen(argv[i] ? argv[i] : "");

		offs[i] = all.len;
		if (c.md) {
			c.t1.len = 0;
			apply(&c, joined.p, lo, hi, &c.t1);
			patterns(&c, &all);
		} else {
			apply(&c, joined.p, lo, hi, &all);
		}
		put_char(&all, 0);
		lo = hi + 1;
	}
	offs[argc] = all.len;
	if (!joined.oom && !all.oom) {
		v = malloc(((size_t)argc + 1) * sizeof(char *) + all.len + 1);
		if (v) {
			strings = (char *)(v + argc + 1);
			if (all.len)
				memcpy(strings, all.p, all.len);
			for (int i = 0; i < argc; i++)
				v[i] = strings + offs[i];
			v[argc] = NULL;
		}
	}
	buf_free(&joined);
	/* The strings were copied into v; call_finish hands back all's text to free, or NULL
	 * when memory ran out anywhere on the way. */
	rest = call_finish(&c, &all, NULL);
	if (!rest || !v) {
		free(v);
		v = NULL;
		errno = ENOMEM;
	}
	free(rest);
	free(offs);
	return v;
}

char *agt_redact_cmdline(const struct agt_redactor *r, const char *args, size_t len)
{
	struct call c;
	struct buf *out, *joined;

	if (!args) {
		errno = EINVAL;
		return NULL;
	}
	if (call_init(&c, r))
		return NULL;
	out = &c.lv[0].out;
	joined = c.md ? &c.t1 : out;
	scan_args(&c, args, len);
	apply(&c, args, 0, len, joined);
	if (!joined->oom) {
		for (size_t i = 0; i < joined->len; i++)
			if (!joined->p[i])
				joined->p[i] = ' ';
		while (joined->len && joined->p[joined->len - 1] == ' ')
			joined->len--;
	}
	if (c.md)
		patterns(&c, out);
	return call_finish(&c, out, NULL);
}

char *agt_redact_str(void *redactor, const char *text)
{
	return text ? agt_redact_text(redactor, text, strlen(text), NULL) : NULL;
}

char *agt_redact_url(const char *url)
{
	const char *auth, *end, *at, *colon;
	char *masked, *r;
	size_t n;

	if (!url)
		return NULL;
	auth = strstr(url, "://");
	auth = auth ? auth + 3 : url;
	end = auth + strcspn(auth, "/?#");
	at = memchr(auth, '@', (size_t)(end - auth));
	colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (!colon) /* no password: the built-in rules see the rest (query parameters) */
		return agt_redact_text(NULL, url, strlen(url), NULL);
	n = strlen(url) + MARK_LEN + 1;
	if (!(masked = malloc(n)))
		return NULL;
	snprintf(masked, n, "%.*s" MARK "%s", (int)(colon + 1 - url), url, at);
	r = agt_redact_text(NULL, masked, strlen(masked), NULL);
	free(masked);
	return r;
}
