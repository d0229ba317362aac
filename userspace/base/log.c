#include "base/log.h"
#include <stdio.h>

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
	va_list ap;

	if (level > cur_level)
		return;
	fprintf(stderr, "agtrace: %s", prefix[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
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
