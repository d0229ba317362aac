#include "tracer/runtime.h"
#include "agtrace.h"
#include "base/util.h"
#include "capture/procstat.h"
#include "export/metrics.h"
#include <bpf/bpf.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKLOADS AGT_METRICS_MAX_SERIES /* and one more: "other" */

static const char *const node_kinds[AGT_RT_NODE_KINDS] = {
    "scavenge", "minor_mark_sweep", "mark_sweep_compact", "incremental_marking",
    "weak_callbacks"};

/* What processes of a workload that ended had counted, and how many are alive. */
struct workload {
	char name[160];
	double cpu;
	struct agt_rt_stats rt[4]; /* by enum agt_rt_kind */
	double loop_seconds;	   /* Node: time observed */
	/* filled per scrape */
	int live;
	struct agt_procstat now;
	double start_newest;
	struct agt_rt_stats rt_now[4];
	double loop_now;
	uint64_t py_threads;
	int kinds; /* 1 << enum agt_rt_kind of every process it had */
};

struct rt_proc {
	int pid;
	uint64_t start_ticks;
	int wl;
	double cpu_last;
	struct agt_rt_stats rt_last;
	uint64_t seen_ns; /* since when it is observed */
};

struct agt_rt_collector {
	pthread_mutex_t lock;
	int stats_fd, open_fd;
	struct rt_proc *procs;
	int n, cap;
	struct workload wl[MAX_WORKLOADS + 1];
	int nwl;
};

struct agt_rt_collector *agt_rt_new(int stats_fd, int open_fd)
{
	struct agt_rt_collector *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	c->stats_fd = stats_fd;
	c->open_fd = open_fd;
	return c;
}

static int workload_of(struct agt_rt_collector *c, const char *name)
{
	for (int i = 0; i < c->nwl; i++)
		if (!strcmp(c->wl[i].name, name))
			return i;
	if (c->nwl == MAX_WORKLOADS) { /* the cap: the rest count as "other" */
		for (int i = 0; i < c->nwl; i++)
			if (!strcmp(c->wl[i].name, "other"))
				return i;
		snprintf(c->wl[c->nwl].name, sizeof(c->wl[0].name), "other");
		return c->nwl++;
	}
	snprintf(c->wl[c->nwl].name, sizeof(c->wl[0].name), "%s", name);
	return c->nwl++;
}

/* The counters of b added to a (not the gauges). */
static void add_counters(struct agt_rt_stats *a, const struct agt_rt_stats *b)
{
	for (int i = 0; i < AGT_RT_SERIES; i++) {
		a->gc[i] += b->gc[i];
		for (int k = 0; k < AGT_RT_BUCKETS; k++)
			a->pause[i].bucket[k] += b->pause[i].bucket[k];
		a->pause[i].sum_ns += b->pause[i].sum_ns;
	}
	for (int i = 0; i < 3; i++)
		a->collected[i] += b->collected[i];
	a->go_g_started += b->go_g_started;
	a->go_g_exited += b->go_g_exited;
	a->loop_idle_ns += b->loop_idle_ns;
	a->loop_polls += b->loop_polls;
}

static int read_rt(struct agt_rt_collector *c, int pid, struct agt_rt_stats *st)
{
	uint32_t key = (uint32_t)pid;

	return c->stats_fd >= 0 && !bpf_map_lookup_elem(c->stats_fd, &key, st);
}

/* A process that ended: what it counted stays with its workload; its kernel entry goes. */
static void retire(struct agt_rt_collector *c, struct rt_proc *p)
{
	struct workload *w = &c->wl[p->wl];
	struct agt_rt_stats st;
	uint32_t key = (uint32_t)p->pid;

	w->cpu += p->cpu_last;
	if (read_rt(c, p->pid, &st))
		p->rt_last = st;
	if (p->rt_last.kind < 4) {
		add_counters(&w->rt[p->rt_last.kind], &p->rt_last);
		if (p->rt_last.kind == AGT_RT_NODE)
			w->loop_seconds += (double)(agt_mono_ns() - p->seen_ns) / 1e9;
	}
	if (c->stats_fd >= 0)
		bpf_map_delete_elem(c->stats_fd, &key);
}

void agt_rt_sync(struct agt_rt_collector *c, const struct agt_rt_target *live, int n)
{
	pthread_mutex_lock(&c->lock);
	for (int k = 0; k < n; k++) { /* ended: retired now, looked at before or not */
		int known = 0, alive = 0;

		if (!live[k].gone)
			continue;
		for (int j = 0; j < n && !alive; j++) /* alive as another entry (a relaunch) */
			alive = !live[j].gone && live[j].pid == live[k].pid &&
				live[j].start_ticks == live[k].start_ticks;
		for (int i = 0; i < c->n && !known && !alive; i++) {
			if (c->procs[i].pid != live[k].pid ||
			    c->procs[i].start_ticks != live[k].start_ticks)
				continue;
			known = 1;
			retire(c, &c->procs[i]);
			c->procs[i] = c->procs[--c->n];
		}
		if (!known && !alive) { /* ended before it was ever looked at: what it counted */
			struct rt_proc p = {.pid = live[k].pid,
					    .start_ticks = live[k].start_ticks,
					    .wl = workload_of(c, live[k].workload),
					    .seen_ns = agt_mono_ns()};

			retire(c, &p);
		}
	}
	for (int i = 0; i < c->n;) { /* gone (or its PID reused): retired */
		struct rt_proc *p = &c->procs[i];
		struct agt_procstat ps;
		int found = 0;

		for (int k = 0; k < n && !found; k++)
			found = live[k].pid == p->pid && live[k].start_ticks == p->start_ticks &&
				!live[k].gone;
		if (found) {
			if (!agt_procstat_read(p->pid, &ps) && ps.start_ticks == p->start_ticks)
				p->cpu_last = ps.cpu_seconds; /* what it will have counted, near enough */
			i++;
			continue;
		}
		retire(c, p);
		c->procs[i] = c->procs[--c->n];
	}
	for (int k = 0; k < n; k++) {
		int known = 0;

		for (int i = 0; i < c->n && !known; i++)
			known = c->procs[i].pid == live[k].pid &&
				c->procs[i].start_ticks == live[k].start_ticks;
		if (known || live[k].gone)
			continue;
		if (c->n == c->cap) {
			int cap = c->cap ? 2 * c->cap : 64;
			struct rt_proc *np = realloc(c->procs, cap * sizeof(*np));

			if (!np)
				break;
			c->procs = np;
			c->cap = cap;
		}
		memset(&c->procs[c->n], 0, sizeof(c->procs[0]));
		c->procs[c->n].pid = live[k].pid;
		c->procs[c->n].start_ticks = live[k].start_ticks;
		c->procs[c->n].wl = workload_of(c, live[k].workload);
		c->procs[c->n].seen_ns = agt_mono_ns();
		c->n++;
	}
	pthread_mutex_unlock(&c->lock);
}

/* ---- the exposition ---- */

static void label_value(FILE *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(out, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", out);
		else
			fputc(*v, out);
	}
}

struct fam {
	FILE *out;
	const char *name, *help, *type;
	int started;
};

static void series_start(struct fam *f, const char *suffix, const struct workload *w,
			 const char *lname, const char *lval)
{
	if (!f->started) {
		fprintf(f->out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
		f->started = 1;
	}
	fprintf(f->out, "%s%s{workload=\"", f->name, suffix);
	label_value(f->out, w->name);
	fputc('"', f->out);
	if (lname) {
		fprintf(f->out, ",%s=\"", lname);
		label_value(f->out, lval);
		fputc('"', f->out);
	}
}

static void value(struct fam *f, const struct workload *w, const char *lname, const char *lval,
		  double v)
{
	series_start(f, "", w, lname, lval);
	fprintf(f->out, "} %.17g\n", v);
}

static void histogram(struct fam *f, const struct workload *w, const char *lname,
		      const char *lval, const struct agt_rt_hist *h)
{
	static const uint64_t bounds[AGT_RT_BUCKETS - 1] = AGT_RT_BOUNDS_NS;
	uint64_t cum = 0;

	for (int b = 0; b < AGT_RT_BUCKETS; b++) {
		cum += h->bucket[b];
		series_start(f, "_bucket", w, lname, lval);
		if (b < AGT_RT_BUCKETS - 1)
			fprintf(f->out, ",le=\"%g\"} %llu\n", (double)bounds[b] / 1e9,
				(unsigned long long)cum);
		else
			fprintf(f->out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	}
	series_start(f, "_sum", w, lname, lval);
	fprintf(f->out, "} %.17g\n", (double)h->sum_ns / 1e9);
	series_start(f, "_count", w, lname, lval);
	fprintf(f->out, "} %llu\n", (unsigned long long)cum);
}

#define FAM(n, h, t) {out, n, h, t, 0}

void agt_rt_collect(void *ctx, FILE *out)
{
	struct agt_rt_collector *c = ctx;
	uint64_t now = agt_mono_ns();
	char gen[4];

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < c->nwl; i++) {
		struct workload *w = &c->wl[i];

		w->live = 0;
		memset(&w->now, 0, sizeof(w->now));
		w->now.cpu_seconds = w->cpu;
		w->start_newest = 0;
		memcpy(w->rt_now, w->rt, sizeof(w->rt));
		w->loop_now = w->loop_seconds;
		w->py_threads = 0;
	}
	for (int i = 0; i < c->n; i++) { /* read now: /proc and the kernel's counters */
		struct rt_proc *p = &c->procs[i];
		struct workload *w = &c->wl[p->wl];
		struct agt_procstat ps;
		struct agt_rt_stats st;

		if (agt_procstat_read(p->pid, &ps) || ps.start_ticks != p->start_ticks) {
			w->now.cpu_seconds += p->cpu_last; /* gone since the last look */
			continue;
		}
		p->cpu_last = ps.cpu_seconds;
		w->live++;
		w->now.cpu_seconds += ps.cpu_seconds;
		w->now.rss_bytes += ps.rss_bytes;
		w->now.threads += ps.threads;
		w->now.fds += ps.fds;
		if (ps.start_seconds > w->start_newest)
			w->start_newest = ps.start_seconds;
		if (!read_rt(c, p->pid, &st) || st.kind >= 4)
			continue;
		p->rt_last = st;
		w->kinds |= 1 << st.kind;
		add_counters(&w->rt_now[st.kind], &st);
		w->rt_now[st.kind].go_heap_live += st.go_heap_live;
		if (st.kind == AGT_RT_PYTHON)
			w->py_threads += ps.threads;
		if (st.kind == AGT_RT_NODE) {
			/* a poll going on now: idle until now */
			uint64_t key = (uint64_t)p->pid << 32 | (uint32_t)p->pid, open[2];

			w->loop_now += (double)(now - p->seen_ns) / 1e9;
			if (c->open_fd >= 0 && !bpf_map_lookup_elem(c->open_fd, &key, open) &&
			    open[0] < now)
				w->rt_now[AGT_RT_NODE].loop_idle_ns += now - open[0];
		}
	}

	{ /* every traced process */
		struct fam procs = FAM("agentic_processes", "traced processes alive", "gauge");
		struct fam cpu = FAM("agentic_process_cpu_seconds_total",
				     "CPU time of the traced processes (user and system)", "counter");
		struct fam rss = FAM("agentic_process_resident_memory_bytes",
				     "resident memory of the traced processes", "gauge");
		struct fam thr = FAM("agentic_process_threads", "threads of the traced processes",
				     "gauge");
		struct fam fds = FAM("agentic_process_open_fds",
				     "open file descriptors of the traced processes", "gauge");
		struct fam start = FAM("agentic_process_start_time_seconds",
				       "start time of the workload's newest traced process, since "
				       "the epoch",
				       "gauge");

		for (int i = 0; i < c->nwl; i++)
			value(&procs, &c->wl[i], NULL, NULL, c->wl[i].live);
		for (int i = 0; i < c->nwl; i++)
			value(&cpu, &c->wl[i], NULL, NULL, c->wl[i].now.cpu_seconds);
		for (int i = 0; i < c->nwl; i++)
			if (c->wl[i].live)
				value(&rss, &c->wl[i], NULL, NULL, (double)c->wl[i].now.rss_bytes);
		for (int i = 0; i < c->nwl; i++)
			if (c->wl[i].live)
				value(&thr, &c->wl[i], NULL, NULL, (double)c->wl[i].now.threads);
		for (int i = 0; i < c->nwl; i++)
			if (c->wl[i].live)
				value(&fds, &c->wl[i], NULL, NULL, (double)c->wl[i].now.fds);
		for (int i = 0; i < c->nwl; i++)
			if (c->wl[i].live)
				value(&start, &c->wl[i], NULL, NULL, c->wl[i].start_newest);
	}
	{ /* Python */
		struct fam gcs = FAM("agentic_python_gc_collections_total",
				     "CPython garbage collections, by generation", "counter");
		struct fam objs = FAM("agentic_python_gc_collected_objects_total",
				      "objects CPython's collections freed, by generation", "counter");
		struct fam pause = FAM("agentic_python_gc_pause_seconds",
				       "CPython garbage collection pauses (gc__start to gc__done)",
				       "histogram");
		struct fam thr = FAM("agentic_python_threads", "threads of traced Python processes",
				     "gauge");

		for (int i = 0; i < c->nwl; i++)
			for (int g = 0; g < 3 && (c->wl[i].kinds & 1 << AGT_RT_PYTHON); g++) {
				snprintf(gen, sizeof(gen), "%d", g);
				value(&gcs, &c->wl[i], "generation", gen,
				      (double)c->wl[i].rt_now[AGT_RT_PYTHON].gc[g]);
			}
		for (int i = 0; i < c->nwl; i++)
			for (int g = 0; g < 3 && (c->wl[i].kinds & 1 << AGT_RT_PYTHON); g++) {
				snprintf(gen, sizeof(gen), "%d", g);
				value(&objs, &c->wl[i], "generation", gen,
				      (double)c->wl[i].rt_now[AGT_RT_PYTHON].collected[g]);
			}
		for (int i = 0; i < c->nwl; i++)
			for (int g = 0; g < 3 && (c->wl[i].kinds & 1 << AGT_RT_PYTHON); g++) {
				snprintf(gen, sizeof(gen), "%d", g);
				histogram(&pause, &c->wl[i], "generation", gen,
					  &c->wl[i].rt_now[AGT_RT_PYTHON].pause[g]);
			}
		for (int i = 0; i < c->nwl; i++)
			if (c->wl[i].py_threads)
				value(&thr, &c->wl[i], NULL, NULL, (double)c->wl[i].py_threads);
	}
	{ /* Go */
		struct fam cyc = FAM("agentic_go_gc_cycles_total", "Go garbage collection cycles",
				     "counter");
		struct fam pause = FAM("agentic_go_gc_pause_seconds",
				       "Go stop-the-world pauses (GC sweep and mark termination, "
				       "and any other stop of the world)",
				       "histogram");
		struct fam heap = FAM("agentic_go_heap_live_bytes",
				      "Go heap in use after the last GC: the bytes it marked live",
				      "gauge");
		struct fam gs = FAM("agentic_go_goroutines_started_total",
				    "goroutines created since agtrace attached", "counter");
		struct fam ge = FAM("agentic_go_goroutines_exited_total",
				    "goroutines that ended since agtrace attached", "counter");
		struct fam gn = FAM("agentic_go_goroutines",
				    "goroutines created minus ended since agtrace attached (of live "
				    "processes)",
				    "gauge");
		int go[MAX_WORKLOADS + 1] = {0};

		for (int i = 0; i < c->nwl; i++)
			go[i] = !!(c->wl[i].kinds & 1 << AGT_RT_GO);
		for (int i = 0; i < c->nwl; i++)
			if (go[i])
				value(&cyc, &c->wl[i], NULL, NULL,
				      (double)c->wl[i].rt_now[AGT_RT_GO].gc[0]);
		for (int i = 0; i < c->nwl; i++)
			if (go[i])
				histogram(&pause, &c->wl[i], NULL, NULL,
					  &c->wl[i].rt_now[AGT_RT_GO].pause[0]);
		for (int i = 0; i < c->nwl; i++)
			if (go[i] && c->wl[i].live)
				value(&heap, &c->wl[i], NULL, NULL,
				      (double)c->wl[i].rt_now[AGT_RT_GO].go_heap_live);
		for (int i = 0; i < c->nwl; i++)
			if (go[i])
				value(&gs, &c->wl[i], NULL, NULL,
				      (double)c->wl[i].rt_now[AGT_RT_GO].go_g_started);
		for (int i = 0; i < c->nwl; i++)
			if (go[i])
				value(&ge, &c->wl[i], NULL, NULL,
				      (double)c->wl[i].rt_now[AGT_RT_GO].go_g_exited);
		for (int i = 0; i < c->nwl; i++) {
			const struct agt_rt_stats *now = &c->wl[i].rt_now[AGT_RT_GO],
						  *gone = &c->wl[i].rt[AGT_RT_GO];

			if (go[i] && c->wl[i].live)
				value(&gn, &c->wl[i], NULL, NULL,
				      (double)(now->go_g_started - gone->go_g_started) -
					  (double)(now->go_g_exited - gone->go_g_exited));
		}
	}
	{ /* Node */
		struct fam gcs = FAM("agentic_node_gc_collections_total",
				     "V8 garbage collections, by kind", "counter");
		struct fam pause = FAM("agentic_node_gc_pause_seconds",
				       "V8 garbage collection pauses by kind (GC prologue to "
				       "epilogue callbacks)",
				       "histogram");
		struct fam idle = FAM("agentic_node_eventloop_idle_seconds_total",
				      "time the main thread's event loop waited in its poll",
				      "counter");
		struct fam seen = FAM("agentic_node_eventloop_seconds_total",
				      "time the event loop was observed (utilization: 1 - idle / "
				      "this)",
				      "counter");

		for (int i = 0; i < c->nwl; i++)
			for (int k = 0; k < AGT_RT_NODE_KINDS && (c->wl[i].kinds & 1 << AGT_RT_NODE); k++)
				value(&gcs, &c->wl[i], "kind", node_kinds[k],
				      (double)c->wl[i].rt_now[AGT_RT_NODE].gc[k]);
		for (int i = 0; i < c->nwl; i++)
			for (int k = 0; k < AGT_RT_NODE_KINDS && (c->wl[i].kinds & 1 << AGT_RT_NODE); k++)
				histogram(&pause, &c->wl[i], "kind", node_kinds[k],
					  &c->wl[i].rt_now[AGT_RT_NODE].pause[k]);
		for (int i = 0; i < c->nwl; i++)
			if (c->wl[i].kinds & 1 << AGT_RT_NODE)
				value(&idle, &c->wl[i], NULL, NULL,
				      (double)c->wl[i].rt_now[AGT_RT_NODE].loop_idle_ns / 1e9);
		for (int i = 0; i < c->nwl; i++)
			if (c->wl[i].kinds & 1 << AGT_RT_NODE)
				value(&seen, &c->wl[i], NULL, NULL, c->wl[i].loop_now);
	}
	pthread_mutex_unlock(&c->lock);
}

void agt_rt_free(struct agt_rt_collector *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->procs);
	free(c);
}
