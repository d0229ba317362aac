/* The built-in redaction rules for free text (see redact.h for the list): one forward pass over
 * the text that looks at the start of each word, so its cost grows with the length of the text
 * and not with the number of rules. Each rule that finds a secret appends the span to replace
 * and says where the pass resumes; nothing is copied here (base/redact.c applies the spans).
 *
 * Text often holds JSON that was escaped inside another JSON string (tool-call arguments,
 * truncated bodies): a quote there is \" and a quote inside that is \\\". The rules read the
 * number of backslashes before a quote to know which string it opens or closes (its escape
 * level), so "a\"TAIL" is one value and a value never ends at an escaped quote inside it. */
#include "base/redact_int.h"
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEY 128	 /* longer words are not taken for names */
#define MAX_BACKSLASH 64 /* escape levels are read from at most this many backslashes */

struct scan {
	const char *s;
	size_t n;
	struct agt_rspans *o;
	size_t cmd_at; /* commands: read up to here, */
	int cmd_progs; /* and the PROG_* of the current one so far */
};

static inline bool is_digit(unsigned char c)
{
	return (unsigned char)(c - '0') < 10;
}

static inline bool is_alpha(unsigned char c)
{
	return (unsigned char)((c | 0x20) - 'a') < 26;
}

static inline bool is_upper(unsigned char c)
{
	return (unsigned char)(c - 'A') < 26;
}

static inline bool is_alnum(unsigned char c)
{
	return is_digit(c) || is_alpha(c);
}

static inline bool is_xdigit(unsigned char c)
{
	return is_digit(c) || (unsigned char)((c | 0x20) - 'a') < 6;
}

/* Characters of a word that can be a name (api_key, x-api-key, config.password). */
static inline bool is_keych(unsigned char c)
{
	return is_alnum(c) || c == '_' || c == '-' || c == '.';
}

static inline bool is_b64url(unsigned char c)
{
	return is_alnum(c) || c == '_' || c == '-';
}

static inline bool is_blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* White space, and NUL, which separates the arguments of a command line. */
static inline bool is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || c == 0;
}

static inline unsigned char lower(unsigned char c)
{
	return is_upper(c) ? c | 0x20 : c;
}

static bool eq_nocase(const char *a, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; i < n && lit[i]; i++)
		if (lower((unsigned char)a[i]) != (unsigned char)lit[i])
			return false;
	return i == n && !lit[i];
}

static bool starts_n(const struct scan *c, size_t i, const char *lit, size_t l)
{
	return c->n - i >= l && !memcmp(c->s + i, lit, l);
}

#define starts(c, i, lit) starts_n(c, i, lit, sizeof(lit) - 1)

/* Spans ------------------------------------------------------------- */

static void add(struct agt_rspans *o, size_t start, size_t end, int quote, bool force)
{
	struct agt_rspan *last = o->n ? &o->v[o->n - 1] : NULL;

	if (end < start || (end == start && !force))
		return;
	if (last && start < last->end) {
		/* Overlapping rules: one mark covers both. */
		if (end > last->end)
			last->end = end;
		return;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 16;
		struct agt_rspan *v = realloc(o->v, cap * sizeof(*v));

		if (!v) {
			o->oom = true;
			return;
		}
		o->v = v;
		o->cap = cap;
	}
	o->v[o->n++] = (struct agt_rspan){start, end, quote};
}

static int by_start(const void *a, const void *b)
{
	const struct agt_rspan *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Rules add spans in text order; should one ever not, sort and merge them. */
static void finish(struct agt_rspans *o, size_t first)
{
	size_t k, w;

	for (k = first + 1; k < o->n; k++)
		if (o->v[k].start < o->v[k - 1].end)
			break;
	if (k >= o->n)
		return;
	qsort(o->v + first, o->n - first, sizeof(o->v[0]), by_start);
	for (w = first, k = first + 1; k < o->n; k++) {
		if (o->v[k].start < o->v[w].end) {
			if (o->v[k].end > o->v[w].end)
				o->v[w].end = o->v[k].end;
		} else {
			o->v[++w] = o->v[k];
		}
	}
	o->n = w + 1;
}

/* Quotes and escape levels ------------------------------------------ */

/* Backslashes right before s[k], not looking before lo. */
static size_t backslashes(const char *s, size_t lo, size_t k)
{
	size_t b = 0;

	while (k > lo && s[k - 1] == '\\' && b < MAX_BACKSLASH) {
		k--;
		b++;
	}
	return b;
}

/* The escape level of a quote after b backslashes: 0 for ", 1 for \", 2 for \\\"; an even
 * count means literal backslashes before a real quote. */
static int qlevel(size_t b)
{
	int l = 0;

	while (b & 1) {
		b >>= 1;
		l++;
	}
	return l;
}

/* Backslashes that belong to a quote of level l (its escape, not the value's text). */
static size_t qescape(int l)
{
	return ((size_t)1 << l) - 1;
}

/* The end of a value quoted by q (at escape level lvl) whose text starts at i: returns the
 * index of the closing quote, or where the line or the text ends (a truncated value runs to
 * there), and sets *vend to the end of the value's own text. A quote of a lower level also
 * closes it: the string around it has ended. */
static size_t quoted_end(const struct scan *c, size_t i, char q, int lvl, size_t *vend)
{
	for (size_t k = i; k < c->n; k++) {
		unsigned char ch = c->s[k];
		size_t b;
		int l;

		if (ch == '\n' || ch == '\r' || ch == 0) {
			*vend = k;
			return k;
		}
		if (ch != (unsigned char)q)
			continue;
		b = backslashes(c->s, i, k);
		if (q == '\'') {
			if (b % 2 == 0) {
				*vend = k;
				return k;
			}
			continue;
		}
		l = qlevel(b);
		if (l <= lvl) {
			*vend = k - qescape(l);
			return k;
		}
	}
	*vend = c->n;
	return c->n;
}

/* The end of a JSON array or object at i inside text where its strings are quoted at level lvl
 * (loose JSON: it may be truncated, or end with the string around it). */
static size_t skip_loose(const struct scan *c, size_t i, int lvl)
{
	int depth = 0;
	bool str = false;

	for (size_t k = i; k < c->n; k++) {
		unsigned char ch = c->s[k];

		if (ch == 0)
			return k;
		if (ch == '"') {
			int l = qlevel(backslashes(c->s, i, k));

			if (l < lvl)
				return k - qescape(l);
			if (l == lvl)
				str = !str;
		} else if (!str) {
			if (ch == '{' || ch == '[')
				depth++;
			else if ((ch == '}' || ch == ']') && --depth == 0)
				return k + 1;
		}
	}
	return c->n;
}

/* The end of an unquoted value at i. It ends at white space, a quote or angle bracket, an
 * escape that stands for a line end or a quote (\n, \", \u0026: the value sits in escaped
 * text), and also at & and # in a query, and at , } ] in loose JSON. */
static size_t unquoted_end(const struct scan *c, size_t i, enum agt_keyctx ctx)
{
	size_t k;

	for (k = i; k < c->n; k++) {
		unsigned char ch = c->s[k];

		if (is_space(ch) || ch == '"' || ch == '\'' || ch == '`' || ch == '<' || ch == '>')
			break;
		if (ch == '\\') {
			unsigned char nx = k + 1 < c->n ? c->s[k + 1] : 0;

			if (ctx == AGT_KEY_QUERY || nx == 'n' || nx == 'r' || nx == 't' ||
			    nx == 'u' || nx == '"' || nx == '\'' || nx == '/')
				break;
		}
		if (ctx == AGT_KEY_QUERY && (ch == '&' || ch == '#'))
			break;
		if (ctx == AGT_KEY_JSON && (ch == ',' || ch == '}' || ch == ']'))
			break;
	}
	return k;
}

/* Names ------------------------------------------------------------- */

/* A word with its length, for lists compared many times a text. */
struct word {
	const char *s;
	size_t n;
};

#define W(lit)                       \
	{                            \
		lit, sizeof(lit) - 1 \
	}

static bool in_words(const char *k, size_t n, const struct word *list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (list[i].n == n && k[0] == list[i].s[0] && !memcmp(k, list[i].s, n))
			return true;
	return false;
}

static bool ends_with_word(const char *k, size_t n, const struct word *list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (n >= list[i].n && k[n - 1] == list[i].s[list[i].n - 1] &&
		    !memcmp(k + n - list[i].n, list[i].s, list[i].n))
			return true;
	return false;
}

#define COUNT(list) (sizeof(list) / sizeof(list[0]))
#define IN(k, n, list) in_words(k, n, list, COUNT(list))

/* Whether the normalised name k holds password, passwd or passphrase. */
static bool has_pass(const char *k, size_t n)
{
	for (const char *p = k; (p = memchr(p, 'p', n - (size_t)(p - k))) != NULL; p++) {
		size_t left = n - (size_t)(p - k);

		if (left >= 6 && !memcmp(p, "pass", 4) &&
		    ((left >= 8 && !memcmp(p + 4, "word", 4)) || !memcmp(p + 4, "wd", 2) ||
		     (left >= 10 && !memcmp(p + 4, "phrase", 6))))
			return true;
	}
	return false;
}

bool agt_redact_key_is_secret(const char *key, size_t n, enum agt_keyctx ctx)
{
	/* Normalised names (lower case letters and digits only). */
	static const struct word exact[] = {W("pwd"), W("auth"), W("session"), W("jwt"),
					    W("privkey")};
	static const struct word suffix[] = {
	    W("secret"),     W("secrets"),     W("token"),	   W("apikey"),
	    W("accesskey"),  W("privatekey"),  W("secretkey"),	   W("signingkey"),
	    W("sessionkey"), W("authkey"),     W("masterkey"),	   W("encryptionkey"),
	    W("credential"), W("credentials"), W("authorization"), W("cookie"),
	    W("cookies"),
	};
	/* Names ending like a credential that are not one: tokenizer settings, pagination. */
	static const struct word not_secret[] = {
	    W("eostoken"),	    W("bostoken"),
	    W("padtoken"),	    W("unktoken"),
	    W("septoken"),	    W("clstoken"),
	    W("masktoken"),	    W("nexttoken"),
	    W("pagetoken"),	    W("nextpagetoken"),
	    W("continuationtoken"), W("cancellationtoken"),
	    W("synctoken"),	    W("nextcontinuationtoken"),
	};
	static const struct word query[] = {W("key"), W("code"), W("sig"), W("signature"),
					    W("pass")};
	static const struct word query_suffix[] = {W("signature")};
	char k[257];
	size_t m = 0;
	bool has_lower = false;

	if (n > 256) {
		key += n - 256;
		n = 256;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = key[i];

		if (!is_alnum(ch))
			continue;
		has_lower |= ch >= 'a' && ch <= 'z';
		k[m++] = (char)lower(ch);
	}
	if (!m)
		return false;
	if (ctx == AGT_KEY_QUERY && (IN(k, m, query) || ends_with_word(k, m, query_suffix, 1)))
		return true;
	if (has_pass(k, m))
		return true;
	if (IN(k, m, not_secret))
		return false;
	if (IN(k, m, exact))
		/* PWD (upper case) is the shell's working directory. */
		return !(m == 3 && !memcmp(k, "pwd", 3) && !has_lower);
	if (ends_with_word(k, m, suffix, COUNT(suffix)))
		return true;
	/* NAME_KEY=value, and SOME_KEY as a JSON name in environment style. */
	return (ctx == AGT_KEY_ENV || (ctx == AGT_KEY_JSON && !has_lower)) && n > 4 &&
	       (key[n - 4] == '_' || key[n - 4] == '-') && eq_nocase(key + n - 3, 3, "key");
}

/* Values that are a type or a literal, not a secret: password: str, token=None. */
static bool placeholder(const char *v, size_t n, const char *key, size_t kn)
{
	static const struct word words[] = {
	    W("str"),	W("string"),	W("String"),	    W("int"),	    W("bool"),	W("bytes"),
	    W("None"),	W("null"),	W("nil"),	    W("true"),	    W("false"), W("True"),
	    W("False"), W("undefined"), W("Optional[str]"), W("SecretStr"), W("&str"),
	};
	const char *dot;

	while (n && (v[n - 1] == ',' || v[n - 1] == ';' || v[n - 1] == ')'))
		n--;
	if (!n || IN(v, n, words))
		return true;
	/* password=password (a variable passed on), self.token = token */
	dot = memchr(key, '.', kn);
	while (dot) {
		kn -= (size_t)(dot + 1 - key);
		key = dot + 1;
		dot = memchr(key, '.', kn);
	}
	return kn == n && !memcmp(v, key, n);
}

/* Rules ------------------------------------------------------------- */

/* Token shapes, by prefix. The body after the prefix is made of one class of characters and
 * has at least min of them (exactly max when max is set). */
enum { CL_ALNUM, CL_B64URL, CL_WORD, CL_DASH, CL_UPNUM };

struct shape {
	const char *prefix;
	unsigned char plen, cls, min, max;
};

static const struct shape shapes[] = {
    {"sk-", 3, CL_B64URL, 20, 0},     /* OpenAI (sk-, sk-proj-), Anthropic (sk-ant-api03-) */
    {"sk_live_", 8, CL_ALNUM, 10, 0}, /* Stripe secret and restricted keys */
    {"sk_test_", 8, CL_ALNUM, 10, 0},
    {"rk_live_", 8, CL_ALNUM, 10, 0},
    {"rk_test_", 8, CL_ALNUM, 10, 0},
    {"whsec_", 6, CL_ALNUM, 20, 0},	 /* Stripe webhook signing secret */
    {"github_pat_", 11, CL_WORD, 20, 0}, /* GitHub fine-grained token */
    {"ghp_", 4, CL_ALNUM, 20, 0},	 /* GitHub classic, OAuth, user, server, refresh */
    {"gho_", 4, CL_ALNUM, 20, 0},
    {"ghu_", 4, CL_ALNUM, 20, 0},
    {"ghs_", 4, CL_ALNUM, 20, 0},
    {"ghr_", 4, CL_ALNUM, 20, 0},
    {"glpat-", 6, CL_B64URL, 20, 0}, /* GitLab personal access token */
    {"xoxa-", 5, CL_DASH, 10, 0},    /* Slack */
    {"xoxb-", 5, CL_DASH, 10, 0},
    {"xoxp-", 5, CL_DASH, 10, 0},
    {"xoxo-", 5, CL_DASH, 10, 0},
    {"xoxs-", 5, CL_DASH, 10, 0},
    {"xoxr-", 5, CL_DASH, 10, 0},
    {"xapp-", 5, CL_DASH, 10, 0},
    {"AIza", 4, CL_B64URL, 30, 0}, /* Google API key */
    {"AKIA", 4, CL_UPNUM, 16, 16}, /* AWS access key id, long-term and temporary */
    {"ASIA", 4, CL_UPNUM, 16, 16},
    {"hf_", 3, CL_ALNUM, 30, 0},   /* Hugging Face */
    {"npm_", 4, CL_ALNUM, 36, 36}, /* npm */
};

static bool in_class(unsigned char c, int cls)
{
	switch (cls) {
	case CL_ALNUM: return is_alnum(c);
	case CL_B64URL: return is_b64url(c);
	case CL_WORD: return is_alnum(c) || c == '_';
	case CL_DASH: return is_alnum(c) || c == '-';
	default: return is_upper(c) || is_digit(c);
	}
}

static size_t shape(struct scan *c, size_t i)
{
	const char *s = c->s;
	unsigned char f = s[i];

	if (f != 's' && f != 'r' && f != 'w' && f != 'g' && f != 'x' && f != 'A' && f != 'h' &&
	    f != 'n')
		return 0;
	for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
		const struct shape *sh = &shapes[t];
		size_t k, body;
		bool digit = false;

		if (sh->prefix[0] != (char)f || !starts_n(c, i, sh->prefix, sh->plen))
			continue;
		for (k = i + sh->plen; k < c->n && in_class(s[k], sh->cls); k++)
			digit |= is_digit(s[k]);
		body = k - i - sh->plen;
		if (body < sh->min || (sh->max && body != sh->max))
			continue;
		if (sh->max && k < c->n && is_alnum(s[k]))
			continue;
		/* sk- words from prose (sk-learn-...) are short or have no digit. */
		if (f == 's' && sh->plen == 3 && body < 32 && !digit)
			continue;
		add(c->o, i, k, -1, false);
		return k;
	}
	return 0;
}

/* A JWT (or JWE): base64url parts joined by dots, the first one a JSON header (eyJ). */
static size_t jwt(struct scan *c, size_t i)
{
	const char *s = c->s;
	size_t k = i, p2;
	int parts = 2;

	if (!starts(c, i, "eyJ"))
		return 0;
	while (k < c->n && is_b64url(s[k]))
		k++;
	if (k - i < 10 || k >= c->n || s[k] != '.')
		return 0;
	p2 = ++k;
	while (k < c->n && is_b64url(s[k]))
		k++;
	if (k - p2 < 4)
		return 0;
	while (parts < 5 && k + 1 < c->n && s[k] == '.' && is_b64url(s[k + 1])) {
		for (k++; k < c->n && is_b64url(s[k]); k++)
			;
		parts++;
	}
	if (parts == 2 && k < c->n && s[k] == '.')
		k++; /* alg "none": the signature is empty */
	add(c->o, i, k, -1, false);
	return k;
}

/* "Bearer <token>" outside a header. Prose (Bearer tokens, Bearer authentication) is kept: the
 * token must be 16 characters long, or 8 with a digit. */
static size_t bearer(struct scan *c, size_t i)
{
	const char *s = c->s;
	size_t j = i + 6, t;
	bool digit = false;

	if (c->n - i < 8 || !eq_nocase(s + i, 6, "bearer") || !is_blank(s[j]))
		return 0;
	while (j < c->n && is_blank(s[j]))
		j++;
	for (t = j; t < c->n; t++) {
		unsigned char ch = s[t];

		if (!is_b64url(ch) && ch != '.' && ch != '~' && ch != '+' && ch != '/' && ch != '=')
			break;
		digit |= is_digit(ch);
	}
	if (t - j >= 16 || (t - j >= 8 && digit)) {
		add(c->o, j, t, -1, false);
		return t;
	}
	return 0;
}

/* A PEM private key: the body between BEGIN and END is redacted, the two lines are kept. The
 * body's first and last line breaks (real, or \n escapes in escaped text) are kept too. */
static size_t pem(struct scan *c, size_t i)
{
	const char *s = c->s;
	size_t k = i + 11, bs, be, e;
	bool priv = false;

	if (!starts(c, i, "-----BEGIN "))
		return 0;
	while (k < c->n && k - i < 80 && (is_upper(s[k]) || is_digit(s[k]) || s[k] == ' ')) {
		if (starts(c, k, "PRIVATE KEY"))
			priv = true;
		k++;
	}
	if (!priv || !starts(c, k, "-----"))
		return 0;
	bs = k + 5;
	for (be = bs; be < c->n; be++)
		if (s[be] == '-' && starts(c, be, "-----END"))
			break;
	e = be;
	for (;;) {
		if (bs < be && is_space(s[bs]))
			bs++;
		else if (be - bs >= 2 && s[bs] == '\\' && (s[bs + 1] == 'n' || s[bs + 1] == 'r'))
			bs += 2;
		else
			break;
	}
	for (;;) {
		if (be > bs && is_space(s[be - 1]))
			be--;
		else if (be - bs >= 2 && s[be - 2] == '\\' &&
			 (s[be - 1] == 'n' || s[be - 1] == 'r'))
			be -= 2;
		else
			break;
	}
	add(c->o, bs, be, -1, false);
	return e > i ? e : i + 1;
}

/* The word at j, quoted or not: its text [*vs, *ve); returns where the scan resumes. */
static size_t word_at(const struct scan *c, size_t j, size_t *vs, size_t *ve)
{
	size_t m = 0, e;

	while (j + m < c->n && c->s[j + m] == '\\' && m < MAX_BACKSLASH)
		m++;
	if (j + m < c->n && (c->s[j + m] == '"' || (!m && c->s[j] == '\''))) {
		char q = c->s[j + m];

		*vs = j + m + 1;
		e = quoted_end(c, *vs, q, q == '"' ? qlevel(m) : 0, ve);
		return e < c->n ? e + 1 : c->n;
	}
	*vs = j;
	*ve = unquoted_end(c, j, AGT_KEY_ASSIGN);
	return *ve;
}

/* The value of a credential name at j (after name and separator). lvl >= 0 when the name was
 * quoted in loose JSON at that escape level. */
static size_t value(struct scan *c, size_t j, enum agt_keyctx ctx, int lvl, const char *key,
		    size_t klen)
{
	const char *s = c->s;
	size_t m = 0, e, vend;

	if (j >= c->n)
		return j;
	while (j + m < c->n && s[j + m] == '\\' && m < MAX_BACKSLASH)
		m++;
	if (j + m < c->n && (s[j + m] == '"' || (!m && s[j] == '\''))) {
		char q = s[j + m];
		size_t vs = j + m + 1;

		e = quoted_end(c, vs, q, q == '"' ? qlevel(m) : 0, &vend);
		add(c->o, vs, vend, -1, true);
		return e < c->n ? e + 1 : c->n;
	}
	if (lvl >= 0 && (s[j] == '{' || s[j] == '[')) {
		e = skip_loose(c, j, lvl);
		add(c->o, j, e, lvl, false);
		return e > j ? e : j + 1;
	}
	e = unquoted_end(c, j, ctx);
	if (e == j)
		return j;
	if (lvl >= 0) {
		/* Loose JSON: null, true and false hold no secret; a number becomes a string. */
		if (eq_nocase(s + j, e - j, "null") || eq_nocase(s + j, e - j, "true") ||
		    eq_nocase(s + j, e - j, "false"))
			return e;
		add(c->o, j, e, lvl, false);
		return e;
	}
	if (placeholder(s + j, e - j, key, klen))
		return e;
	add(c->o, j, e, -1, false);
	return e;
}

/* Authorization schemes: 1 when the credentials are one token (RFC 7235 token68), 2 when they
 * are a list of parameters (redacted to the end of the line), 0 when not a scheme. */
static int scheme(const char *w, size_t n)
{
	static const struct word one[] = {W("basic"),	  W("bearer"), W("token"),  W("bot"),
					  W("negotiate"), W("ntlm"),   W("apikey"), W("dpop")};
	static const struct word params[] = {
	    W("digest"),      W("aws4-hmac-sha256"), W("oauth"), W("hoba"),	 W("mutual"),
	    W("scram-sha-1"), W("scram-sha-256"),    W("vapid"), W("signature"), W("hmac")};
	char l[24];

	if (n >= sizeof(l))
		return 0;
	for (size_t i = 0; i < n; i++)
		l[i] = (char)lower((unsigned char)w[i]);
	if (IN(l, n, one))
		return 1;
	if (IN(l, n, params))
		return 2;
	return 0;
}

/* The value of an Authorization, Proxy-Authorization, Cookie or Set-Cookie header at j. encl
 * is the quote the header text sits in, if any (-H 'Authorization: ...'). */
static size_t header_value(struct scan *c, size_t j, bool auth, char encl)
{
	const char *s = c->s;
	size_t start = j, e;
	bool quote_ends = true;

	if (auth) {
		size_t w = j;
		int kind;

		while (w < c->n && (is_alnum(s[w]) || s[w] == '-'))
			w++;
		kind = w > j && w < c->n && is_blank(s[w]) ? scheme(s + j, w - j) : 0;
		if (kind) {
			for (start = w; start < c->n && is_blank(s[start]); start++)
				;
		}
		if (kind == 1) {
			e = unquoted_end(c, start, AGT_KEY_ASSIGN);
			add(c->o, start, e, -1, false);
			return e > j ? e : j;
		}
		/* Digest, OAuth and the like quote their parameters: the line is the value. */
		quote_ends = kind != 2;
	}
	for (e = start; e < c->n; e++) {
		unsigned char ch = s[e];

		if (ch == '\n' || ch == '\r' || ch == 0)
			break;
		if (ch == '\\' && e + 1 < c->n && (s[e + 1] == 'n' || s[e + 1] == 'r'))
			break;
		if (encl == '\'' && ch == '\'')
			break;
		if (quote_ends && ch == '"') {
			e -= backslashes(s, start, e);
			break;
		}
	}
	while (e > start && is_blank(s[e - 1]))
		e--;
	add(c->o, start, e, -1, false);
	return e > j ? e : j;
}

/* Where the next argument starts after blanks or NULs at j, or j when there are none (then
 * there is no separate value). */
static size_t next_arg(const struct scan *c, size_t j)
{
	size_t k = j;

	while (k < c->n && (is_blank(c->s[k]) || c->s[k] == 0))
		k++;
	return k < c->n ? k : j;
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_digit(s[i]))
			return false;
	return n > 0;
}

/* user:password at j (curl -u): the password is redacted; uid:gid (docker -u 1000:1000) and a
 * user without a password are kept. */
static size_t userpass(struct scan *c, size_t j)
{
	size_t vs, ve, next;
	const char *colon;

	if (j >= c->n)
		return j;
	next = word_at(c, j, &vs, &ve);
	colon = memchr(c->s + vs, ':', ve - vs);
	if (colon) {
		size_t cp = (size_t)(colon - c->s);

		if (!(all_digits(c->s + vs, cp - vs) && all_digits(colon + 1, ve - cp - 1)))
			add(c->o, cp + 1, ve, -1, false);
	}
	return next > j ? next : j + 1;
}

/* Programs whose options take passwords, by the name of their executable. */
enum { PROG_MYSQL = 1, PROG_SSHPASS = 2, PROG_LOGIN = 4, PROG_REDIS = 8 };

static int program(const char *w, size_t n)
{
	static const struct {
		const char *name;
		bool prefix;
		int prog;
	} progs[] = {
	    {"mysql", true, PROG_MYSQL},   /* mysql, mysqldump, mysqladmin, ... */
	    {"mariadb", true, PROG_MYSQL}, /* mariadb, mariadb-dump, ... */
	    {"sshpass", false, PROG_SSHPASS},
	    {"login", false, PROG_LOGIN}, /* docker, podman, helm, oc ... login; netrc */
	    {"redis-cli", false, PROG_REDIS},
	};

	for (size_t p = 0; p < sizeof(progs) / sizeof(progs[0]); p++) {
		size_t l = strlen(progs[p].name);

		if (n >= l && !memcmp(w, progs[p].name, l) && (progs[p].prefix || n == l))
			return progs[p].prog;
	}
	return 0;
}

/* The PROG_* named by the words of the command that i is in, before i. A command ends at a
 * line break (real, or a \n escape in escaped text), ;, | and &. The words are read once, as
 * the scan moves forward (callers ask with i never decreasing), so the cost stays linear. */
static int programs_before(struct scan *c, size_t i)
{
	const char *s = c->s;
	size_t k = c->cmd_at;

	while (k < i) {
		unsigned char ch = s[k];
		size_t base;

		if (ch == '\n' || ch == ';' || ch == '|' || ch == '&' ||
		    (ch == '\\' && k + 1 < i && s[k + 1] == 'n')) {
			c->cmd_progs = 0;
			k += ch == '\\' ? 2 : 1;
			continue;
		}
		if (is_space(ch) || ch == '"' || ch == '\'' || ch == '\\') {
			k++;
			continue;
		}
		for (base = k; k < i && !is_space(s[k]) && s[k] != '"' && s[k] != '\'' &&
			       s[k] != '\\' && s[k] != ';' && s[k] != '|' && s[k] != '&';
		     k++)
			if (s[k] == '/')
				base = k + 1;
		c->cmd_progs |= program(s + base, k - base);
	}
	c->cmd_at = k;
	return c->cmd_progs;
}

enum { OPT_ATTACHED = 1, OPT_SEPARATE = 2 };

/* Whether -opt of the command around i takes a password: mysql -pPW (attached only: a separate
 * word is a database), sshpass -p PW, redis-cli -a PW, docker/podman/helm ... login -p PW.
 * Returns OPT_* bits, 0 for other programs (mkdir -p, cp -pr, ssh -p 22 keep theirs). */
static int program_option(struct scan *c, size_t i, char opt)
{
	int progs = programs_before(c, i), how = 0;

	if (opt == 'p' && (progs & PROG_MYSQL))
		how |= OPT_ATTACHED;
	if (opt == 'p' && (progs & (PROG_SSHPASS | PROG_LOGIN)))
		how |= OPT_ATTACHED | OPT_SEPARATE;
	if (opt == 'a' && (progs & PROG_REDIS))
		how |= OPT_ATTACHED | OPT_SEPARATE;
	return how;
}

/* A command-line option at i (dashes: how many). */
static size_t option(struct scan *c, size_t i, size_t dashes)
{
	const char *s = c->s, *k;
	size_t ks = i + dashes, ke = ks, klen, j;

	while (ke < c->n && is_keych(s[ke]))
		ke++;
	klen = ke - ks;
	if (!klen || klen > MAX_KEY)
		return 0;
	k = s + ks;
	/* curl and wget: -u user:password, -uuser:password, --user[=]user:password, -U and
	 * --proxy-user likewise. */
	if ((klen == 4 && !memcmp(k, "user", 4)) || (klen == 10 && !memcmp(k, "proxy-user", 10))) {
		j = ke < c->n && s[ke] == '=' ? ke + 1 : next_arg(c, ke);
		return j > ke ? userpass(c, j) : 0;
	}
	if (dashes == 1 && (k[0] == 'u' || k[0] == 'U')) {
		if (klen > 1)
			return userpass(c, ks + 1);
		j = next_arg(c, ke);
		return j > ke ? userpass(c, j) : 0;
	}
	/* -pPASSWORD, -p PASSWORD, -aPASSWORD: for the programs that mean a password by it. */
	if (dashes == 1 && (k[0] == 'p' || k[0] == 'a')) {
		int how = program_option(c, i, k[0]);
		size_t vs, ve;

		if (klen > 1 && (how & OPT_ATTACHED)) {
			j = word_at(c, ks + 1, &vs, &ve);
			add(c->o, vs, ve, -1, false);
			return j > i ? j : i + 1;
		}
		if (klen == 1 && (how & OPT_SEPARATE)) {
			j = next_arg(c, ke);
			if (j == ke || s[j] == '-')
				return 0;
			j = word_at(c, j, &vs, &ve);
			add(c->o, vs, ve, -1, false);
			return j;
		}
	}
	/* openssl -passin pass:SECRET (env:VAR and file:PATH are kept). */
	if (dashes == 1 &&
	    ((klen == 6 && !memcmp(k, "passin", 6)) || (klen == 7 && !memcmp(k, "passout", 7)) ||
	     (klen == 4 && !memcmp(k, "pass", 4)))) {
		j = next_arg(c, ke);
		if (j > ke && starts(c, j, "pass:")) {
			size_t e = unquoted_end(c, j + 5, AGT_KEY_ASSIGN);

			add(c->o, j + 5, e, -1, false);
			return e;
		}
		return 0;
	}
	/* --password=X, --password X, --token X, -api-key X */
	if (!agt_redact_key_is_secret(k, klen, AGT_KEY_ASSIGN))
		return 0;
	if (ke < c->n && s[ke] == '=')
		return value(c, ke + 1, AGT_KEY_ASSIGN, -1, k, klen);
	j = next_arg(c, ke);
	if (j == ke || s[j] == '-')
		return 0;
	return value(c, j, AGT_KEY_ASSIGN, -1, k, klen);
}

/* A credential name and its value with only blanks between: aws configure set
 * aws_secret_access_key KEY, or netrc's "login u password p". The value must look like a key
 * (16 characters or more, letters and digits) unless it follows netrc's login; prose (the
 * password is ...) is kept. Only names written as identifiers (with _ or -) or password and
 * passwd are looked at, which keeps this cheap for ordinary words. */
static size_t spaced(struct scan *c, size_t i, size_t ke, bool ident)
{
	const char *s = c->s;
	size_t e, j, klen = ke - i;
	bool digit = false, alpha = false, netrc, pw;

	if (klen < 6 || ke >= c->n || (!is_blank(s[ke]) && s[ke] != 0))
		return 0; /* most words: too short for a credential name, or no blank after */
	pw = (s[i] | 0x20) == 'p' &&
	     (eq_nocase(s + i, klen, "password") || eq_nocase(s + i, klen, "passwd"));
	if (!(ident || pw))
		return 0;
	j = next_arg(c, ke); /* blanks, or the NULs between arguments */
	if (j == ke || j >= c->n || !agt_redact_key_is_secret(s + i, klen, AGT_KEY_ASSIGN))
		return 0;
	e = unquoted_end(c, j, AGT_KEY_ASSIGN);
	for (size_t k = j; k < e; k++) {
		unsigned char ch = s[k];

		digit |= is_digit(ch);
		alpha |= is_alpha(ch);
		if (!is_b64url(ch) && ch != '/' && ch != '+' && ch != '=' && ch != '.')
			return 0;
	}
	netrc = pw && (programs_before(c, i) & PROG_LOGIN);
	if (e == j || !(netrc || (e - j >= 16 && digit && alpha)))
		return 0;
	add(c->o, j, e, -1, false);
	return e;
}

/* <Password>value</Password>, <SecretAccessKey>...</SecretAccessKey> (AWS STS), with any
 * namespace prefix: the element's text when its name is a credential and the element closes
 * right after its text (a placeholder in prose, "Bearer <token>", is not an element). */
static size_t xml(struct scan *c, size_t i)
{
	const char *s = c->s, *name;
	size_t k = i + 1, e, tag;

	while (k < c->n && k - i <= 64 && (is_keych(s[k]) || s[k] == ':'))
		k++;
	if (k == i + 1 || k >= c->n || s[k] != '>')
		return 0;
	tag = k - i - 1;
	name = memchr(s + i + 1, ':', tag);
	name = name ? name + 1 : s + i + 1;
	if (!agt_redact_key_is_secret(name, (size_t)(s + k - name), AGT_KEY_JSON))
		return 0;
	for (e = k + 1; e < c->n && s[e] != '<'; e++)
		;
	if (c->n - e < tag + 3 || s[e + 1] != '/' || memcmp(s + e + 2, s + i + 1, tag) ||
	    s[e + 2 + tag] != '>')
		return 0;
	add(c->o, k + 1, e, -1, false);
	return e;
}

/* name=value, name: value, "name": value, 'name': value, ?name=value, --name value. */
static size_t keyval(struct scan *c, size_t i)
{
	const char *s = c->s;
	size_t j = i, ke, klen;
	enum agt_keyctx ctx = AGT_KEY_ASSIGN;
	bool quoted = false, ident = false, header, auth;
	int lvl = -1;
	char encl = 0, sep;

	while (j < c->n && s[j] == '-')
		j++;
	if (j - i > 2)
		return 0;
	if (j > i)
		return option(c, i, j - i);
	for (; j < c->n && is_keych(s[j]); j++)
		ident |= s[j] == '_' || s[j] == '-';
	ke = j;
	klen = ke - i;
	if (klen > MAX_KEY)
		return 0;
	if (i > 0) {
		unsigned char p = s[i - 1];

		if (p == '"') {
			int l = qlevel(backslashes(s, 0, i - 1));
			size_t m = 0;

			while (ke + m < c->n && s[ke + m] == '\\' && m < MAX_BACKSLASH)
				m++;
			if (ke + m < c->n && s[ke + m] == '"' && qlevel(m) == l) {
				quoted = true;
				lvl = l;
				j = ke + m + 1;
			} else {
				encl = '"';
			}
		} else if (p == '\'') {
			if (ke < c->n && s[ke] == '\'') {
				quoted = true;
				lvl = 0;
				j = ke + 1;
			} else {
				encl = '\'';
			}
		} else if (p == '?' || p == '&' || p == '#' ||
			   (p == ';' && i >= 5 && !memcmp(s + i - 5, "&amp;", 5)) ||
			   (i >= 6 && !memcmp(s + i - 6, "\\u0026", 6))) {
			ctx = AGT_KEY_QUERY;
		}
	}
	while (j < c->n && is_blank(s[j]))
		j++;
	if (j >= c->n)
		return 0;
	sep = s[j];
	if (sep == '=') {
		if (j + 1 < c->n && s[j + 1] == '=')
			return 0;
		j++;
		if (j < c->n && s[j] == '>')
			j++;
	} else if (sep == ':') {
		if (j + 1 < c->n && (s[j + 1] == ':' || s[j + 1] == '/'))
			return 0;
		j++;
		if (j < c->n && s[j] == '=')
			j++;
	} else {
		return quoted ? 0 : spaced(c, i, ke, ident);
	}
	if (quoted)
		ctx = AGT_KEY_JSON;
	else if (ctx == AGT_KEY_ASSIGN && sep == '=')
		ctx = AGT_KEY_ENV;
	if (!agt_redact_key_is_secret(s + i, klen, ctx))
		return 0;
	while (j < c->n && is_blank(s[j]))
		j++;
	auth = eq_nocase(s + i, klen, "authorization") ||
	       eq_nocase(s + i, klen, "proxy-authorization");
	header = auth || eq_nocase(s + i, klen, "cookie") || eq_nocase(s + i, klen, "set-cookie");
	if (!quoted && header && sep == ':')
		return header_value(c, j, auth, encl);
	if (!quoted && auth && sep == '=') {
		/* authorization=Bearer X: the scheme stays, the token goes. */
		size_t w = j;

		while (w < c->n && is_alnum(s[w]))
			w++;
		if (w > j && w < c->n && is_blank(s[w]) && scheme(s + j, w - j) == 1) {
			while (w < c->n && is_blank(s[w]))
				w++;
			j = w;
		}
	}
	return value(c, j, ctx, quoted ? lvl : -1, s + i, klen);
}

/* The password in scheme://user:password@host, the authority starting at a. */
static size_t userinfo(struct scan *c, size_t a)
{
	const char *s = c->s;
	size_t k, at = 0;
	const char *colon;

	for (k = a; k < c->n; k++) {
		unsigned char ch = s[k];

		if (is_space(ch) || ch == '/' || ch == '?' || ch == '#' || ch == '"' ||
		    ch == '\'' || ch == '<' || ch == '>' || ch == '\\' || ch == '`')
			break;
		if (ch == '@')
			at = k;
	}
	if (!at)
		return a;
	colon = memchr(s + a, ':', at - a);
	if (colon && (size_t)(colon - s) + 1 < at)
		add(c->o, (size_t)(colon - s) + 1, at, -1, false);
	return at;
}

/* Where a word starts: after a character that cannot be in a name (but not at the letter of
 * an escape such as \n), and also after a %XX escape and after \n, \r, \t and \uXXXX
 * escapes, which end words in encoded text. */
static bool word_start(const char *s, size_t i)
{
	unsigned char p;

	if (i == 0)
		return true;
	p = s[i - 1];
	if (p == '\\' && (s[i] == 'n' || s[i] == 'r' || s[i] == 't' || s[i] == 'b' || s[i] == 'f' ||
			  s[i] == 'u'))
		return false; /* the letter of an escape */
	if (!is_keych(p))
		return true;
	if (i >= 3 && s[i - 3] == '%' && is_xdigit(s[i - 2]) && is_xdigit(p))
		return true;
	if (i >= 2 && s[i - 2] == '\\' && (p == 'n' || p == 'r' || p == 't'))
		return true;
	return i >= 6 && s[i - 6] == '\\' && s[i - 5] == 'u' && is_xdigit(s[i - 4]) &&
	       is_xdigit(s[i - 3]) && is_xdigit(s[i - 2]) && is_xdigit(p);
}

static size_t on_word(struct scan *c, size_t i)
{
	unsigned char ch = c->s[i];
	size_t e;

	if (ch == '-' && (e = pem(c, i)))
		return e;
	if ((e = shape(c, i)))
		return e;
	if (ch == 'e' && (e = jwt(c, i)))
		return e;
	if ((ch | 0x20) == 'b' && (e = bearer(c, i)))
		return e;
	return keyval(c, i);
}

int agt_redact_scan(const char *s, size_t n, struct agt_rspans *out)
{
	struct scan c = {s, n, out, 0, 0};
	size_t i = 0, first = out->n;

	while (i < n) {
		unsigned char ch = s[i];

		if (is_keych(ch)) {
			if (word_start(s, i)) {
				size_t e = on_word(&c, i);

				if (e > i) {
					i = e;
					continue;
				}
			}
		} else if (ch == '<') {
			size_t e = xml(&c, i);

			if (e > i) {
				i = e;
				continue;
			}
		} else if (ch == ':') {
			size_t a = 0;

			if (n - i > 2 && s[i + 1] == '/' && s[i + 2] == '/')
				a = i + 3;
			else if (n - i > 4 && s[i + 1] == '\\' && s[i + 2] == '/' &&
				 s[i + 3] == '\\' && s[i + 4] == '/')
				a = i + 5;
			if (a) {
				i = userinfo(&c, a);
				continue;
			}
		}
		i++;
	}
	finish(out, first);
	return out->oom ? -ENOMEM : 0;
}
