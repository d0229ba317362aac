/* A JSON writer: values appended straight into one growing buffer that is reused from record to
 * record (no tree is built). Strings are escaped as RFC 8259 requires and the output is always
 * valid UTF-8: an invalid byte sequence in a string becomes U+FFFD and is counted. Numbers are
 * written the way cJSON writes them (integers as integers, others with the shortest of %.15g
 * and %.17g that reads back exactly), so documents stay byte-identical to what readers of
 * agtrace's output already parse. */
#ifndef AGT_JSONW_H
#define AGT_JSONW_H
#include <stddef.h>
#include <stdint.h>

#define AGT_JW_MAX_DEPTH 32

struct agt_jw {
	char *buf;
	size_t len, cap;
	int depth;
	uint8_t first[AGT_JW_MAX_DEPTH]; /* the next member at this depth is the first one */
	char closer[AGT_JW_MAX_DEPTH];	 /* what ends the container at this depth: '}' or ']' */
	uint64_t replaced;		 /* invalid UTF-8 sequences replaced, over the writer's life */
	int failed;			 /* out of memory, or nesting too deep: the text is cut */
};

void agt_jw_init(struct agt_jw *w);
void agt_jw_free(struct agt_jw *w);
/* Start a new document in the same buffer. */
void agt_jw_reset(struct agt_jw *w);
/* Members take a key inside an object; inside an array (or at the top) key is NULL. */
void agt_jw_obj(struct agt_jw *w, const char *key);
void agt_jw_arr(struct agt_jw *w, const char *key);
void agt_jw_end_obj(struct agt_jw *w);
void agt_jw_end_arr(struct agt_jw *w);
/* End the innermost open object or array, whichever it is. */
void agt_jw_end(struct agt_jw *w);
void agt_jw_str(struct agt_jw *w, const char *key, const char *s);
void agt_jw_strn(struct agt_jw *w, const char *key, const char *s, size_t n);
/* A string of n bytes that JSON takes as they are (printable ASCII but '"' and '\\'), such as
 * hex digits and times its caller made: copied without being checked. */
void agt_jw_plain(struct agt_jw *w, const char *key, const char *s, size_t n);
void agt_jw_i64(struct agt_jw *w, const char *key, int64_t v);
void agt_jw_u64(struct agt_jw *w, const char *key, uint64_t v);
void agt_jw_f64(struct agt_jw *w, const char *key, double v);
void agt_jw_bool(struct agt_jw *w, const char *key, int v);
void agt_jw_null(struct agt_jw *w, const char *key);
/* Bytes as they are (a newline between documents, text that is JSON already). */
void agt_jw_raw(struct agt_jw *w, const char *s, size_t n);
/* Members already written as JSON text (s: "key":value,... without a leading comma; n 0: none),
 * appended to the object open at w's depth, with the comma before them when they are not its
 * first. */
void agt_jw_members(struct agt_jw *w, const char *s, size_t n);
/* s escaped as the inside of a JSON string (no quotes), appended. */
void agt_jw_escaped(struct agt_jw *w, const char *s, size_t n);
/* The document, NUL-terminated (valid until the next write). */
const char *agt_jw_text(struct agt_jw *w);
#endif
