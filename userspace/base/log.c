#define _GNU_SOURCE /* vasprintf */
#include "base/log.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum agt_log_level cur_level = AGT_LOG_INFO;
static enum agt_log_format cur_format = AGT_LOG_TEXT;
static int level_given, format_given; /* set explicitly (-v, --log-level, --log-format) */
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void agt_log_set_level(enum agt_log_level level)
{
	cur_level = level;
	level_given = 1;
}
enum agt_log_level agt_log_get_level(void)
{
	return cur_level;
}
void agt_log_set_format(enum agt_log_format format)
{
	cur_format = format;
	format_given = 1;
}

enum agt_log_format agt_log_get_format(void)
{
	return cur_format;
}

int agt_log_level_given(void)
{
	return level_given;
}

int agt_log_format_given(void)
{
	return format_given;
}

int agt_log_parse_level(const char *s, enum agt_log_level *level)
{
	for (int i = 0; i <= AGT_LOG_DEBUG; i++)
		if (!strcmp(s, level_names[i])) {
			*level = (enum agt_log_level)i;
			return 0;
		}
	return -EINVAL;
}

int agt_log_parse_format(const char *s, enum agt_log_format *format)
{
	if (!strcmp(s, "text") || !strcmp(s, "json")) {
		*format = !strcmp(s, "json") ? AGT_LOG_JSON : AGT_LOG_TEXT;
		return 0;
	}
	return -EINVAL;
}

/* One JSON line: time (RFC 3339 UTC, microseconds), level, msg (escaped, control characters as
 * \uXXXX, a trailing newline dropped). Written with one fputs, so lines of threads never mix. */
static void json_line(const char *level, const char *msg)
{
	char line[8192], ts[32];
	struct timespec now;
	struct tm tm;
	size_t o, len = strlen(msg);

	while (len && msg[len - 1] == '\n')
		len--;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	o = (size_t)snprintf(line, sizeof(line), "{\"time\":\"%s.%06ldZ\",\"level\":\"%s\",\"msg\":\"",
			     ts, now.tv_nsec / 1000, level);
	for (size_t i = 0; i < len && o + 8 < sizeof(line); i++) {
		unsigned char c = (unsigned char)msg[i];

		if (c == '"' || c == '\\') {
			line[o++] = '\\';
			line[o++] = (char)c;
		} else if (c == '\n') {
			line[o++] = '\\';
			line[o++] = 'n';
		} else if (c == '\t') {
			line[o++] = '\\';
			line[o++] = 't';
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(line + o, sizeof(line) - o, "\\u%04x", c);
		} else {
			line[o++] = (char)c;
		}
	}
	snprintf(line + o, sizeof(line) - o, "\"}\n");
	fputs(line, stderr);
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
	if (cur_format == AGT_LOG_JSON) { /* control characters are escaped as JSON escapes them */
		json_line(level_names[level], msg ? msg : fmt);
		free(msg);
		return;
	}
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
	char msg[4096];

	(void)level;
	if (cur_level < AGT_LOG_DEBUG)
		return 0;
	if (cur_format == AGT_LOG_TEXT)
		return vfprintf(stderr, fmt, ap);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	json_line("debug", msg);
	return 0;
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
