/* Inside the redaction engine: what base/redact.c (the API, JSON documents, user patterns)
 * asks of base/redact_scan.c (the built-in rules for free text, and the test of names that
 * say "credential"). Only for those two files and their unit test. */
#ifndef AGT_BASE_REDACT_INT_H
#define AGT_BASE_REDACT_INT_H
#include <stdbool.h>
#include <stddef.h>

/* One stretch [start, end) of the text to replace by [REDACTED]. With quote >= 0 the mark is
 * written as a JSON string at that escape level (0: "[REDACTED]", 1: \"[REDACTED]\"), which is
 * how a number, array or object under a credential name in loose JSON is replaced. A span may
 * be empty (an empty quoted value still gets the mark). */
struct agt_rspan {
	size_t start, end;
	int quote;
};

/* Spans in text order, not overlapping. oom is set when memory ran out. */
struct agt_rspans {
	struct agt_rspan *v;
	size_t n, cap;
	bool oom;
};

/* Where a name is found, which decides what counts as a credential name. */
enum agt_keyctx {
	AGT_KEY_JSON,	/* a JSON member name ("password": ...) */
	AGT_KEY_QUERY,	/* a URL query or fragment parameter (?key=...): also key, code, sig */
	AGT_KEY_ASSIGN, /* free text name: value, and command-line options */
	AGT_KEY_ENV,	/* free text NAME=value: also anything ending in _KEY or -KEY */
};

/* Whether key[0..n) names a credential where it was found. Case and every character other
 * than letters and digits are ignored (API_KEY, api-key and apiKey are one name). */
bool agt_redact_key_is_secret(const char *key, size_t n, enum agt_keyctx ctx);

/* Append to out the spans of s[0..n) that the built-in rules redact (out->n is not reset).
 * 0, or -ENOMEM (out->oom is then set). */
int agt_redact_scan(const char *s, size_t n, struct agt_rspans *out);
#endif
