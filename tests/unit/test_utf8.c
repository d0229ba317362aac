/* UTF-8 validation and repair (base/utf8.h): valid text of every length comes through
 * untouched; every class of ill-formed input (overlong forms, surrogates, code points over
 * U+10FFFF, truncated sequences, stray continuation bytes, bytes that never occur) is replaced
 * by U+FFFD with the exact count the Unicode "maximal subpart" practice gives (the expected
 * values were checked against Python's bytes.decode("utf-8", "replace")). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "base/utf8.h"
#include "base/util.h"

#define R "\xef\xbf\xbd" /* U+FFFD */

struct fix {
	const char *in;
	size_t len;
	const char *out;
	size_t replaced;
};

#define FIX(in, out, n)                    \
	{                                  \
		in, sizeof(in) - 1, out, n \
	}

/* Runs one case through all three functions. */
static void check(const struct fix *f)
{
	char *dst = malloc(AGT_UTF8_SANITIZED_MAX(f->len));
	size_t len = 12345, rep = 12345, dlen = 0;
	char *dup;

	assert_int_equal(agt_utf8_valid(f->in, f->len), f->replaced == 0);
	assert_int_equal(agt_utf8_sanitize(f->in, f->len, dst, &len), f->replaced);
	assert_int_equal(len, strlen(f->out));
	assert_memory_equal(dst, f->out, len + 1);
	assert_int_equal(agt_utf8_valid(dst, len), 1);
	dup = agt_utf8_sanitize_dup(f->in, f->len, &dlen, &rep);
	assert_non_null(dup);
	assert_int_equal(rep, f->replaced);
	assert_int_equal(dlen, len);
	assert_memory_equal(dup, f->out, len + 1);
	free(dup);
	free(dst);
}

static void valid_text_untouched(void **state)
{
	static const struct fix cases[] = {
	    FIX("", "", 0),
	    FIX("plain ASCII, long enough for the eight-byte path",
		"plain ASCII, long enough for "
		"the eight-byte path",
		0),
	    FIX("caf\xc3\xa9 \xe2\x82\xac \xe4\xb8\xad \xf0\x9f\x98\x80",
		"caf\xc3\xa9 \xe2\x82\xac \xe4\xb8\xad \xf0\x9f\x98\x80", 0),
	    /* Boundaries: U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+FFFD, U+FFFF, U+10000,
	     * U+10FFFF. */
	    FIX("\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbd\xef\xbf\xbf"
		"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
		"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbd\xef\xbf\xbf"
		"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
		0),
	};

	(void)state;
	for (size_t i = 0; i < AGT_ARRAY_SIZE(cases); i++)
		check(&cases[i]);
	/* NUL is valid UTF-8 and is kept. */
	assert_int_equal(agt_utf8_valid("a\0b", 3), 1);
}

static void overlong_forms(void **state)
{
	static const struct fix cases[] = {
	    FIX("\xc0\x80", R R, 2),
	    FIX("\xc1\xbf", R R, 2),
	    FIX("\xe0\x80\x80", R R R, 3),
	    FIX("\xe0\x9f\xbf", R R R, 3),
	    FIX("\xf0\x80\x80\x80", R R R R, 4),
	    FIX("\xf0\x8f\xbf\xbf", R R R R, 4),
	    FIX("a\xc0\xafz", "a" R R "z", 2),
	};

	(void)state;
	for (size_t i = 0; i < AGT_ARRAY_SIZE(cases); i++)
		check(&cases[i]);
}

static void surrogates(void **state)
{
	static const struct fix cases[] = {
	    FIX("\xed\xa0\x80", R R R, 3), FIX("\xed\xbf\xbf", R R R, 3),
	    FIX("\xed\xa0\xbd\xed\xb8\x80", R R R R R R, 6), /* a CESU-8 pair */
	};

	(void)state;
	for (size_t i = 0; i < AGT_ARRAY_SIZE(cases); i++)
		check(&cases[i]);
}

static void beyond_unicode(void **state)
{
	static const struct fix cases[] = {
	    FIX("\xf4\x90\x80\x80", R R R R, 4),
	    FIX("\xf5\x80\x80\x80", R R R R, 4),
	    FIX("\xf8\x88\x80\x80\x80", R R R R R, 5),
	    FIX("\xfe\xff", R R, 2),
	};

	(void)state;
	for (size_t i = 0; i < AGT_ARRAY_SIZE(cases); i++)
		check(&cases[i]);
}

static void truncated_sequences(void **state)
{
	static const struct fix cases[] = {
	    FIX("\xc3", R, 1),
	    FIX("\xe2\x82", R, 1),
	    FIX("\xe0\xa0", R, 1),
	    FIX("\xf0\x9f\x98", R, 1),
	    FIX("\xe2\x82"
		"A",
		R "A", 1),
	    FIX("ok \xf0\x9f\x98 then \xe2\x82", "ok " R " then " R, 2),
	};

	(void)state;
	for (size_t i = 0; i < AGT_ARRAY_SIZE(cases); i++)
		check(&cases[i]);
}

static void stray_continuations(void **state)
{
	static const struct fix cases[] = {
	    FIX("\x80", R, 1),
	    FIX("\xbf\xbf", R R, 2),
	    FIX("a\x80"
		"b",
		"a" R "b", 1),
	    FIX("\xf0\x9f\x98\x80\x80", "\xf0\x9f\x98\x80" R, 1),
	};

	(void)state;
	for (size_t i = 0; i < AGT_ARRAY_SIZE(cases); i++)
		check(&cases[i]);
}

/* One bad byte at every offset of a long ASCII text: the eight-byte path must find it. */
static void long_text_every_alignment(void **state)
{
	enum { N = 4099 };
	char *s = malloc(N), *d = malloc(AGT_UTF8_SANITIZED_MAX(N));
	size_t len;

	(void)state;
	memset(s, 'a', N);
	assert_int_equal(agt_utf8_valid(s, N), 1);
	for (size_t at = 0; at < 64; at++) {
		size_t pos = N - 1 - at;

		s[pos] = (char)0xff;
		assert_int_equal(agt_utf8_valid(s, N), 0);
		assert_int_equal(agt_utf8_sanitize(s, N, d, &len), 1);
		assert_int_equal(len, N + 2);
		assert_memory_equal(d + pos, R, 3);
		s[pos] = 'a';
	}
	free(s);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(valid_text_untouched),
	    cmocka_unit_test(overlong_forms),
	    cmocka_unit_test(surrogates),
	    cmocka_unit_test(beyond_unicode),
	    cmocka_unit_test(truncated_sequences),
	    cmocka_unit_test(stray_continuations),
	    cmocka_unit_test(long_text_every_alignment),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
