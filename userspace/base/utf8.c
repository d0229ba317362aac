/* UTF-8 validation and repair (see utf8.h): one decoder of Unicode's table of well-formed byte
 * sequences, used both to validate and to copy with replacements. */
#include "base/utf8.h"
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

/* The well-formed sequence at s[0..n): its length (1 to 4), or 0 when it is ill-formed, with
 * *bad set to the length of its maximal subpart (at least 1), which becomes one U+FFFD. The
 * ranges are those of the Unicode Standard, table 3-7: the second byte's range depends on the
 * lead byte (E0, ED, F0 and F4 exclude overlongs, surrogates and code points over U+10FFFF). */
static size_t sequence(const unsigned char *s, size_t n, size_t *bad)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t need;

	if (c < 0x80)
		return 1;
	if (c < 0xC2 || c > 0xF4) {
		*bad = 1;
		return 0;
	}
	if (c < 0xE0) {
		need = 1;
	} else if (c < 0xF0) {
		need = 2;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else {
		need = 3;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	}
	for (size_t k = 1; k <= need; k++) {
		if (k >= n || s[k] < lo || s[k] > hi) {
			*bad = k;
			return 0;
		}
		lo = 0x80;
		hi = 0xBF;
	}
	return need + 1;
}

/* Length of the all-ASCII prefix of s[0..n), found eight bytes at a time. */
static size_t ascii_prefix(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i + 8 <= n) {
		uint64_t w;

		memcpy(&w, s + i, 8);
		if (w & 0x8080808080808080ull)
			break;
		i += 8;
	}
	while (i < n && s[i] < 0x80)
		i++;
	return i;
}

int agt_utf8_valid(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, bad, len;

	while (i < n) {
		i += ascii_prefix(u + i, n - i);
		if (i == n)
			break;
		len = sequence(u + i, n - i, &bad);
		if (!len)
			return 0;
		i += len;
	}
	return 1;
}

size_t agt_utf8_sanitize(const char *src, size_t n, char *dst, size_t *out_len)
{
	const unsigned char *u = (const unsigned char *)src;
	size_t i = 0, o = 0, replaced = 0, bad, len;

	while (i < n) {
		size_t a = ascii_prefix(u + i, n - i);

		memcpy(dst + o, src + i, a);
		i += a;
		o += a;
		if (i == n)
			break;
		len = sequence(u + i, n - i, &bad);
		if (len) {
			memcpy(dst + o, src + i, len);
			i += len;
			o += len;
		} else {
			memcpy(dst + o, replacement, sizeof(replacement));
			o += sizeof(replacement);
			i += bad;
			replaced++;
		}
	}
	dst[o] = 0;
	if (out_len)
		*out_len = o;
	return replaced;
}

char *agt_utf8_sanitize_dup(const char *src, size_t n, size_t *out_len, size_t *replaced)
{
	size_t r = 0, len = n;
	char *out;

	if (agt_utf8_valid(src, n)) {
		out = malloc(n + 1);
		if (!out) {
			errno = ENOMEM;
			return NULL;
		}
		if (n)
			memcpy(out, src, n);
		out[n] = 0;
	} else {
		char *big = n < (SIZE_MAX - 1) / 3 ? malloc(AGT_UTF8_SANITIZED_MAX(n)) : NULL;

		if (!big) {
			errno = ENOMEM;
			return NULL;
		}
		r = agt_utf8_sanitize(src, n, big, &len);
		out = realloc(big, len + 1);
		if (!out)
			out = big; /* shrinking failed: the larger buffer is still good */
	}
	if (out_len)
		*out_len = len;
	if (replaced)
		*replaced = r;
	return out;
}
