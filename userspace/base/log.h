/* Logging: one place decides what reaches stderr. */
#ifndef AGT_LOG_H
#define AGT_LOG_H
#include <stdarg.h>
#include <stddef.h>
#include <bpf/libbpf.h>

enum agt_log_level { AGT_LOG_ERROR, AGT_LOG_WARN, AGT_LOG_INFO, AGT_LOG_DEBUG };

/* Exit code for every failure a user can cause (bad PID, spec, privilege, ...). */
#define AGT_EXIT_USAGE 2

void agt_log_set_level(enum agt_log_level level);
enum agt_log_level agt_log_get_level(void);
void agt_log(enum agt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* libbpf's print callback: its messages only with -v (debug level). */
int agt_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap);

#define agt_err(...) agt_log(AGT_LOG_ERROR, __VA_ARGS__)
#define agt_warn(...) agt_log(AGT_LOG_WARN, __VA_ARGS__)
#define agt_info(...) agt_log(AGT_LOG_INFO, __VA_ARGS__)
#define agt_dbg(...) agt_log(AGT_LOG_DEBUG, __VA_ARGS__)

/* Fill err (size n) with a formatted sentence; returns -EINVAL-style code passed in. */
int agt_seterr(char *err, size_t n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
