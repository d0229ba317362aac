/* Prometheus metrics: the agentic_* and gen_ai_* series computed from finished spans, and
 * agtrace's own figures, served over HTTP (libmicrohttpd): /metrics, /healthz, /readyz, each to
 * GET and HEAD. */
#ifndef AGT_METRICS_H
#define AGT_METRICS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <stdio.h>
#include "export/sink.h"

#define AGT_METRICS_MAX_SERIES 200 /* per metric; more label sets count under "other" */

struct agt_metrics;
/* Parse "PORT", "IPV4:PORT" or "[IPV6]:PORT" into sa (PORT alone: every IPv4 address). 0, or
 * -EINVAL with one sentence in err. */
int agt_metrics_listen_addr(const char *listen, struct sockaddr_storage *sa, char *err,
			    size_t errlen);
/* Serve on listen (as above). NULL with one sentence in err. agtrace_build_info is set. */
struct agt_metrics *agt_metrics_start(const char *listen, char *err, size_t errlen);
/* A sink that passes spans on to next and counts them into m. */
struct agt_sink *agt_metrics_tee(struct agt_sink *next, struct agt_metrics *m);
/* Set a gauge, or a counter agtrace keeps itself (a name ending in _total), to an absolute
 * value. labels: "" or `name="value",...` (values escaped by the caller). The HELP line is the
 * one agtrace's table has for name, or what agt_metrics_describe gave. */
void agt_metrics_set(struct agt_metrics *m, const char *name, const char *labels, double v);
/* The same, and every other series of name is removed: a family of one series whose labels
 * change (an info metric). */
void agt_metrics_set_only(struct agt_metrics *m, const char *name, const char *labels, double v);
/* The HELP text of a series agtrace sets with agt_metrics_set and the table in metrics.c does
 * not know (copied). Call it before or after the first set. */
void agt_metrics_describe(struct agt_metrics *m, const char *name, const char *help);
/* /readyz answers 200 once the run is attached (ready 1), 503 before and while stopping. */
void agt_metrics_set_ready(struct agt_metrics *m, int ready);
/* Families read at scrape time by someone else (the traced processes' runtime metrics): fn
 * writes them, as exposition text, into out while /metrics is rendered (on the server's
 * thread: fn does its own locking). One collector; NULL removes it. */
typedef void (*agt_metrics_collect_fn)(void *ctx, FILE *out);
void agt_metrics_collector(struct agt_metrics *m, agt_metrics_collect_fn fn, void *ctx);
/* Render the exposition text (what /metrics serves); caller frees. */
char *agt_metrics_render(struct agt_metrics *m);
/* Format a sample value or bucket bound as the exposition wants it: integers in full
 * (1048576, never 1.04858e+06), others in the fewest digits that read back the same. */
void agt_metrics_fmt(double v, char *out, size_t n);
void agt_metrics_stop(struct agt_metrics *m);
#endif
