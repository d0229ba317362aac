#define _GNU_SOURCE /* vasprintf */
#include "base/log.h"
#include <stdio.h>
#include <stdlib.h>

static enum agt_log_level cur_level = AGT_LOG_INFO;

void agt_log_set_level(enum agt_log_level level)
{
	cur_level = level;
}
enum agt_log_level agt_log_get_level(void)
{
	return cur_level;
}

void agt_log(enum agt_log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = {"error: ", "warning: ", "", "debug: "};
	char *msg = NULL, *line;
	size_t n = 0;
	FILE *f;
	va_list ap;

	if (level > cur_level)
		return;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	/* One line each: a control character from a path or a peer (a newline, an escape
	 * sequence) is shown escaped, never as such. */
	if (!msg || !(f = open_memstream(&line, &n))) {
		fprintf(stderr, "agtrace: %s%s\n", prefix[level], msg ? msg : fmt);
		free(msg);
		return;
	}
	fprintf(f, "agtrace: %s", prefix[level]);
	for (const unsigned char *c = (const unsigned char *)msg; *c; c++) {
		if (*c == '\n')
			fputs("\\n", f);
		else if (*c == '\r')
			fputs("\\r", f);
		else if (*c == '\t')
			fputs("\\t", f);
		else if (*c < 0x20 || *c == 0x7f)
			fprintf(f, "\\x%02x", *c);
		else
			fputc(*c, f);
	}
	fputc('\n', f);
	fclose(f);
	fputs(line, stderr);
	free(line);
	free(msg);
}

int agt_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	if (cur_level < AGT_LOG_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

int agt_seterr(char *err, size_t n, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && n) {
		va_start(ap, fmt);
		vsnprintf(err, n, fmt, ap);
		va_end(ap);
	}
	return code;
}
