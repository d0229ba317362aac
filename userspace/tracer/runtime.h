/* Runtime metrics of the traced processes, read when Prometheus scrapes: CPU, memory, threads,
 * descriptors and start time from /proc (capture/procstat.c), and what bpf/rt.bpf.c counted of
 * their garbage collectors and event loops (Python, Go, Node), summed by workload (the pod, or
 * the executable) under the metrics' cap on label sets. Counters stay monotonic when processes
 * come and go: what a process had counted when it ended stays with its workload. */
#ifndef AGT_TRACER_RUNTIME_H
#define AGT_TRACER_RUNTIME_H
#include <stdint.h>
#include <stdio.h>

struct agt_rt_collector;

/* A traced process, as the run knows it. */
struct agt_rt_target {
	int pid;
	uint64_t start_ticks;
	const char *workload; /* "namespace/pod", or the executable's name */
	int gone;	      /* ended since the last sync (maybe before any): retire it now */
};

/* stats_fd, open_fd: the rt_stats and rt_open maps (bpf/rt.bpf.c), -1 when the runtime
 * programs are not loaded. */
struct agt_rt_collector *agt_rt_new(int stats_fd, int open_fd);
/* The processes traced now (from the event loop, once a second and after attaching): new ones
 * are followed, those gone are retired into their workload's totals. */
void agt_rt_sync(struct agt_rt_collector *c, const struct agt_rt_target *live, int n);
/* agt_metrics_collect_fn: the families, as exposition text. */
void agt_rt_collect(void *ctx, FILE *out);
void agt_rt_free(struct agt_rt_collector *c);
#endif
