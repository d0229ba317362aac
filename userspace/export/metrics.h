/* Prometheus metrics: the agentic_* and gen_ai_* series computed from finished spans, and
 * agtrace's own figures, served at /metrics (libmicrohttpd). */
#ifndef AGT_METRICS_H
#define AGT_METRICS_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "export/sink.h"

#define AGT_METRICS_MAX_SERIES 200 /* per metric; more label sets count under "other" */

struct agt_metrics;
struct sockaddr_in;
/* Parse "PORT" or "IPV4:PORT"; 0, or -EINVAL with one sentence in err. */
int agt_metrics_listen_addr(const char *listen, struct sockaddr_in *sa, char *err, size_t errlen);
/* listen: "PORT" or "ADDR:PORT". NULL with one sentence in err. */
struct agt_metrics *agt_metrics_start(const char *listen, char *err, size_t errlen);
/* A sink that passes spans on to next and counts them into m. */
struct agt_sink *agt_metrics_tee(struct agt_sink *next, struct agt_metrics *m);
/* Set a gauge, or a counter agtrace keeps itself, to an absolute value. labels: "" or
 * `name="value",...` (values escaped by the caller with agt_metrics_label). */
void agt_metrics_set(struct agt_metrics *m, const char *name, const char *labels, double v);
/* Families read at scrape time by someone else (the traced processes' runtime metrics): fn
 * writes them, as exposition text, into out while /metrics is rendered (on the server's
 * thread: fn does its own locking). One collector; NULL removes it. */
typedef void (*agt_metrics_collect_fn)(void *ctx, FILE *out);
void agt_metrics_collector(struct agt_metrics *m, agt_metrics_collect_fn fn, void *ctx);
/* Render the exposition text (what /metrics serves); caller frees. */
char *agt_metrics_render(struct agt_metrics *m);
void agt_metrics_stop(struct agt_metrics *m);
#endif
