#include "core/redact.h"
#include "base/log.h"
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATTERNS 64
#define MARK "[REDACTED]"

/* Built in: API keys and tokens by their shape, and the value of any JSON member or query
 * parameter whose name says it is a credential (group 2 is the value). */
static const char *const builtin[] = {
    "(sk-[A-Za-z0-9_-]{8,})",
    "([Bb]earer[ \t]+[A-Za-z0-9._~+/=-]{8,})",
    "(AKIA[0-9A-Z]{16})",
    "(gh[pousr]_[A-Za-z0-9]{20,})",
    "(xox[abposr]-[A-Za-z0-9-]{10,})",
    "(AIza[0-9A-Za-z_-]{30,})",
    "(\"(api[_-]?key|apikey|x-api-key|authorization|password|passwd|secret|client_secret|"
    "access_token|refresh_token|token|cookie|set-cookie)\"[ \t]*:[ \t]*\"[^\"]*\")",
    "((^|[?&])(api[_-]?key|key|token|access_token|sig|signature|password)=[^&# ]*)",
};

static struct {
	regex_t re[MAX_PATTERNS];
	int n, keyed[MAX_PATTERNS]; /* keyed: keep the name, redact the value */
	int ready;
} R;

static void init(void)
{
	if (R.ready)
		return;
	R.ready = 1;
	for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
		if (regcomp(&R.re[R.n], builtin[i], REG_EXTENDED | REG_ICASE) == 0) {
			R.keyed[R.n] = strstr(builtin[i], "\"(api") || strstr(builtin[i], "[?&]");
			R.n++;
		}
	}
}

int agt_redact_add(const char *regex, char *err, size_t errlen)
{
	init();
	if (R.n == MAX_PATTERNS)
		return agt_seterr(err, errlen, -EINVAL, "too many --redact patterns (at most %d)",
				  MAX_PATTERNS - 8);
	if (regcomp(&R.re[R.n], regex, REG_EXTENDED)) {
		return agt_seterr(
		    err, errlen, -EINVAL,
		    "--redact \"%s\" is not a valid POSIX extended regular expression", regex);
	}
	R.keyed[R.n++] = 0;
	return 0;
}

/* Replace matches of one pattern; returns a new string (frees in). */
static char *apply(char *in, int i)
{
	size_t cap = strlen(in) + 64, len = 0;
	char *out = malloc(cap);
	const char *p = in;
	regmatch_t m[3];

	if (!out)
		return in;
	while (*p && regexec(&R.re[i], p, 3, m, p == in ? 0 : REG_NOTBOL) == 0 && m[0].rm_eo > 0) {
		size_t keep = (size_t)m[0].rm_so, mlen = (size_t)(m[0].rm_eo - m[0].rm_so);
		const char *mt = p + m[0].rm_so;
		char repl[256];

		if (R.keyed[i]) {
			/* name":"value" -> name":"[REDACTED]"; ?key=value -> ?key=[REDACTED] */
			const char *eq = memchr(mt, '=', mlen);
			const char *colon = memchr(mt + 1, ':', mlen - 1);

			if (eq && *mt != '"')
				snprintf(repl, sizeof(repl), "%.*s" MARK, (int)(eq - mt + 1), mt);
			else if (colon)
				snprintf(repl, sizeof(repl), "%.*s\"" MARK "\"",
					 (int)(strchr(colon, '"') ? strchr(colon, '"') - mt
								  : colon - mt + 1),
					 mt);
			else
				snprintf(repl, sizeof(repl), MARK);
		} else {
			snprintf(repl, sizeof(repl), MARK);
		}
		while (len + keep + strlen(repl) + 1 > cap) {
			char *n = realloc(out, cap *= 2);

			if (!n) {
				free(out);
				return in;
			}
			out = n;
		}
		memcpy(out + len, p, keep);
		len += keep;
		memcpy(out + len, repl, strlen(repl));
		len += strlen(repl);
		p = mt + mlen;
	}
	while (len + strlen(p) + 1 > cap) {
		char *n = realloc(out, cap *= 2);

		if (!n) {
			free(out);
			return in;
		}
		out = n;
	}
	strcpy(out + len, p);
	free(in);
	return out;
}

char *agt_redact(const char *s)
{
	char *r;

	if (!s)
		return NULL;
	init();
	r = strdup(s);
	for (int i = 0; r && i < R.n; i++)
		r = apply(r, i);
	return r;
}

void agt_redact_reset(void)
{
	for (int i = 0; R.ready && i < R.n; i++)
		regfree(&R.re[i]);
	memset(&R, 0, sizeof(R));
}
