/* UTF-8 validation and repair for everything agtrace exports. Captured text (tool output, HTTP
 * bodies, command lines) is arbitrary bytes; exporters must write valid UTF-8, so they check
 * with agt_utf8_valid (fast when the text is valid, the common case) and otherwise copy it with
 * agt_utf8_sanitize*, which replaces each ill-formed sequence by U+FFFD and counts replacements.
 *
 * Valid means RFC 3629 / Unicode "well-formed UTF-8": no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequences, no stray continuation
 * bytes. NUL bytes are valid UTF-8 and are kept.
 *
 * Replacement follows the Unicode "maximal subpart" practice (the W3C/WHATWG decoder, and
 * Python's errors="replace"): each maximal prefix of a would-be sequence that is not valid
 * becomes one U+FFFD, so E2 82 (truncated) is one replacement, C0 80 (overlong) two, and
 * ED A0 80 (a surrogate) three. */
#ifndef AGT_BASE_UTF8_H
#define AGT_BASE_UTF8_H
#include <stddef.h>

/* Bytes agt_utf8_sanitize may write for n input bytes, NUL included: every byte can become a
 * three-byte U+FFFD. */
#define AGT_UTF8_SANITIZED_MAX(n) (3 * (n) + 1)

/* 1 if s[0..n) is valid UTF-8, else 0. Checks eight ASCII bytes at a time. */
int agt_utf8_valid(const char *s, size_t n);

/* Copy src[0..n) to dst, replacing every ill-formed sequence by U+FFFD (EF BF BD), and
 * NUL-terminate it. dst must hold AGT_UTF8_SANITIZED_MAX(n) bytes. *out_len (if not NULL) gets
 * the bytes written without the NUL. Returns the number of replacements (0 when src is valid,
 * and dst is then an exact copy). */
size_t agt_utf8_sanitize(const char *src, size_t n, char *dst, size_t *out_len);

/* The same into a new string (caller frees), exactly as long as needed. NULL with errno ENOMEM
 * when memory runs out. *replaced and *out_len may be NULL. */
char *agt_utf8_sanitize_dup(const char *src, size_t n, size_t *out_len, size_t *replaced);
#endif
