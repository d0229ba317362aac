/* Logging: one place decides what reaches stderr, and how. Text (the default) is
 * "agtrace: warning: SENTENCE"; JSON is one object a line for log collectors:
 * {"time":"2025-01-02T03:04:05.678901Z","level":"warn","msg":"SENTENCE"}. */
#ifndef AGT_LOG_H
#define AGT_LOG_H
#include <stdarg.h>
#include <stddef.h>
#include <bpf/libbpf.h>

enum agt_log_level { AGT_LOG_ERROR, AGT_LOG_WARN, AGT_LOG_INFO, AGT_LOG_DEBUG };
enum agt_log_format { AGT_LOG_TEXT, AGT_LOG_JSON };

/* Exit code for every failure a user can cause (bad PID, spec, privilege, ...). */
#define AGT_EXIT_USAGE 2

void agt_log_set_level(enum agt_log_level level);
enum agt_log_level agt_log_get_level(void);
void agt_log_set_format(enum agt_log_format format);
enum agt_log_format agt_log_get_format(void);
/* Whether the level (the format) was set already: an option that sets it again conflicts. */
int agt_log_level_given(void);
int agt_log_format_given(void);
/* "error", "warn", "info", "debug" -> level; "text", "json" -> format. 0, or -EINVAL. */
int agt_log_parse_level(const char *s, enum agt_log_level *level);
int agt_log_parse_format(const char *s, enum agt_log_format *format);
void agt_log(enum agt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* libbpf's print callback: its messages only at debug level. */
int agt_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap);

#define agt_err(...) agt_log(AGT_LOG_ERROR, __VA_ARGS__)
#define agt_warn(...) agt_log(AGT_LOG_WARN, __VA_ARGS__)
#define agt_info(...) agt_log(AGT_LOG_INFO, __VA_ARGS__)
#define agt_dbg(...) agt_log(AGT_LOG_DEBUG, __VA_ARGS__)

/* Fill err (size n) with a formatted sentence; returns -EINVAL-style code passed in. */
int agt_seterr(char *err, size_t n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
