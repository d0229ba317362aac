/* One run of agtrace (`attach` or `run`): its state, shared by the files that make it up:
 * run.c (BPF units, sampling, self-metrics, exporters, the event loop), probes.c (probe specs
 * onto a target's objects) and targets.c (targets given by PID or discovered, their life
 * cycle). Its settings are a struct agt_config (tracer/config.h), filled by the command line or
 * a configuration file (cli/options.c). */
#ifndef AGT_ATTACH_RUN_H
#define AGT_ATTACH_RUN_H
#include "capture/container.h"
#include "capture/target.h"
#include "capture/units.h"
#include "pipeline/pipeline.h"
#include "capture/sampling.h"
#include "capture/select.h"
#include "export/audit.h"
#include "export/exporters.h"
#include "tracer/config.h"
#include <stdio.h>

struct stat;

#define MAX_LINKS 20000

struct bpf_link;

/* A probed object: one spec's probes on one file (by device and inode), attached once for every
 * process that maps the file (uprobes; the BPF programs decide from the target table whether a
 * hit counts), or for one process (USDT markers, whose semaphores must not be raised in every
 * process). Targets hold references; once none does, the links go after --forget-after (a
 * short-lived process of the same program, or a child, may come back to it meanwhile). */
struct agt_obj {
	const struct agt_spec *spec; /* NULL: the dynamic loader (internal: library loads) */
	uint64_t dev, ino;
	int pid;		 /* 0: every process mapping the file; else that one (USDT) */
	char object[4096];	 /* the file as the first process mapping it names it */
	struct bpf_link **links; /* none: nothing of the spec is in the file */
	int nlinks;
	int refs;	     /* targets holding it */
	uint64_t idle_since; /* when the last reference went (CLOCK_MONOTONIC); 0 while held */
};
/* A followed descendant of a target (not a target itself) that has objects of its own (its
 * runtime probes: a Python or Node subprocess of a traced agent; its located TLS: a Bun child)
 * or whose runtime is measured: its /proc figures, counted under the workload of the target it
 * descends from. */
struct agt_desc {
	int pid;
	uint64_t start_ticks;
	char workload[160];
	struct agt_proc *own; /* holds its per-process objects (runtime, located); NULL: none */
	int gone;	      /* seen gone: retired at this sync, then forgotten */
};
/* How many runtime-metrics probe sets were not attached, by reason. */
enum { AGT_RT_REFUSED_ATTACH, AGT_RT_REFUSED_LIMIT, AGT_RT_REFUSED_N };

struct ring_buffer;
struct agt_audit;
struct agt_metrics;
struct agt_reaper;
struct agt_redactor;


/* The targets: given by PID or discovered. */
struct agt_targets {
	struct agt_proc **v; /* each allocated apart: spans point at their info */
	int n, cap;
	struct agt_proc *cache[256]; /* pid & 255 -> the target last found for it */
	int live;		     /* targets still running */
};

struct attach_run {
	struct agt_config o; /* the run's settings (a copy: strings are the caller's) */
	struct agt_spec specs[2 * MAX_SPECS];
	int nspecs;
	int auto_mode; /* no probes given: shipped "auto" specs, skipped where they do not apply */
	struct agt_targets tg;
	struct agt_probe_info **probes; /* indexed by probe id (the attach cookie) */
	uint32_t nprobes;
	int rescan_pending; /* some target mapped a new executable file: look for spec objects */
	struct agt_pipeline pl;
	struct agt_sink *sink; /* the output, with the exporters teed in front of it */
	struct agt_export_ctx ectx;
	struct agt_capture cap; /* the BPF units: func, proc, tls, sock (NULL without TCP) */
	struct agt_sample_cfg sample_seen[AGT_SS_MAX]; /* the sampling last reported */
	uint32_t sample_max[AGT_SS_MAX];	       /* ratios as configured: the ceiling */
	uint64_t last_records, last_ringbuf_full;
	uint64_t sample_rejected; /* out-of-range values found in the sampling map */
	struct agt_obj **objs; /* the probed objects (files with probes), in attach order */
	int nobjs;
	int nlinks; /* links of all of them */
	struct agt_spec loader; /* internal: the dynamic loader's _dl_debug_state (library loads) */
	int loader_ok;
	int ahead_done; /* the auto specs' libraries in the host's library folders are attached
			 * for discovery (selectors: a process found at exec is traced from its
			 * first instruction) */
	/* Followed descendants (not targets) that exec'd or loaded libraries since the last look:
	 * their objects are probed too, on behalf of the target they descend from. */
	uint32_t desc_rescan[64];
	int ndesc_rescan;
	struct agt_selector sel[MAX_SPECS];
	int nsel;
	struct agt_k8s *k8s;
	int ep;		     /* the event loop's epoll: targets' pidfds join it as they come */
	int live_seen;	     /* pl.live when gone targets were last detached */
	uint64_t discovered; /* targets found by a selector */
	uint64_t discover_failed, discover_limited;
	uint64_t forgotten;	   /* targets freed after they exited */
	uint64_t exec_gone;	   /* execs whose process was gone before it could be looked at */
	struct agt_reaper *reaper; /* destroys the links of targets that exited */
	/* Processes in pods the pod list did not have yet, which a namespace/label selector may
	 * match once it does: looked at again each second. */
	struct {
		int pid;
		uint64_t start_ticks;
	} pod_wait[256];
	int npod_wait;
	uint64_t pod_wait_full; /* processes not remembered: the list was full */
	struct ring_buffer *rb;
	struct agt_outfile *out; /* the output: --output-file (rotated, dated) or standard output */
	struct agt_sink *jsonl;	 /* the JSONL sink in the chain, when the output is JSONL */
	struct agt_audit *audit;
	/* An audit anchor made before the pipeline could emit it (a checkpoint right after the
	 * config record): emitted once it can. */
	struct agt_audit_anchor anchor_held;
	int anchor_pending;
	struct agt_metrics *metrics;
	struct agt_delivery *exp[AGT_EXP_COUNT]; /* the exporters started, by agt_exporters row */
	const volatile unsigned long *rb_cons, *rb_prod; /* ring buffer positions, read-only */
	uint64_t rb_size;
	struct agt_rt_collector *rt; /* the traced processes' runtime metrics (with --metrics) */
	struct agt_desc *desc;	     /* followed descendants alive (runtime metrics on), by pid */
	int ndesc, desc_cap;
	uint64_t rt_refused[AGT_RT_REFUSED_N]; /* runtime probe sets not attached, by reason */
	struct agt_located_memo *located; /* TLS located per file this run (located.c) */
	int nlocated;
	char refused[4][700]; /* TLS libraries found but refused: said in the summary */
	int nrefused;
	/* Executables marked known in the kernel (exestop.c): the file as stat sees it, and the
	 * kernel's key for it. A process that execs one not known is stopped until looked at. */
	struct agt_known_exe {
		uint64_t dev, ino;
		struct agt_exe_key k;
	} *known;
	int nknown, known_cap;
	int exestop;   /* stopping at exec is on in the kernel */
	int exestop_ever;
	int guard_fd; /* the write end of the guard's pipe (exestop.c), 0: none */
	int stopping;  /* the run ends: stopped processes are resumed, not looked at */
	uint64_t exec_stops, exec_resumed, exec_resume_gone, known_full;
};

/* Event loop sources: these three, or a target's pidfd (data.ptr: the target). */
enum { EV_SIGNAL = 1, EV_RING = 2, EV_TIMER = 3 };


/* probes.c: the specs given (or the shipped auto ones); a spec onto target t (soft: skip what
 * does not apply, AGT_SPEC_SKIPPED when nothing did, AGT_SPEC_AHEAD when only libraries it may
 * load did); one spec onto one object of t. 0, or -errno after one sentence. */
#define AGT_SPEC_SKIPPED 1
#define AGT_SPEC_AHEAD 2 /* only attached ahead, on libraries it does not map (yet) */
#define AGT_OBJ_AHEAD 1 /* agt_attach_object: a library in its folder, not mapped (yet) */
int agt_attach_load_specs(struct attach_run *r);
int agt_attach_spec(struct attach_run *r, int t, const struct agt_spec *spec, int soft);
int agt_attach_object(struct attach_run *r, struct agt_proc *holder, struct agt_proc *proc,
		      const struct agt_spec *spec, int soft, const char *host, const char *mapped,
		      int flags);
/* The dynamic loader target t (or a descendant, on its behalf) maps: library loads reported. */
void agt_attach_loader(struct attach_run *r, struct agt_proc *holder, struct agt_proc *proc);
/* Every spec onto what a followed descendant maps now, held by the target it descends from. */
void agt_attach_descendant(struct attach_run *r, uint32_t pid);
/* Runtime metrics of followed descendants: the record of pid (found, or made for a followed
 * descendant of a live target; NULL otherwise, and with runtime metrics off), with its own
 * runtime probes attached when attach is set. agt_desc_sweep: once a second, records whose
 * process is gone are marked gone and let go of their probes (dropped by agt_desc_drop_gone
 * once the collector has retired them, or at once without one), and, with runtime metrics on,
 * descendants the kernel follows are recorded. */
struct agt_desc *agt_desc_track(struct attach_run *r, uint32_t pid, int attach);
/* The located specs (static TLS) onto what followed descendant pid maps now (its executable),
 * per process, held by its own record (made when needed, whatever runtime metrics say) and
 * released when it exits (agt_desc_sweep). Nothing for a target or an unrelated process. */
void agt_desc_located(struct attach_run *r, uint32_t pid);
void agt_desc_sweep(struct attach_run *r, uint64_t now);
void agt_desc_drop_gone(struct attach_run *r);
void agt_desc_free_all(struct attach_run *r);
/* The workload a target counts under: "namespace/pod", or its executable's name. */
void agt_workload_name(const struct agt_proc_info *in, char *buf, size_t n);
/* Links of runtime-metrics objects now. */
int agt_probes_runtime_links(struct attach_run *r);
/* Discovery: the auto specs' libraries in the host's library folders, attached once, so a
 * process found at exec is traced from its first TLS call. */
void agt_attach_ahead_for_discovery(struct attach_run *r);
/* A process stopped at exec: every spec's per-file probes for its executable (found or
 * attached; st: the file). 1 when the file may be marked known (nothing more to attach there
 * for the next process that runs it), 0 when not, -errno when it could not be looked at. */
int agt_exe_examine(struct attach_run *r, uint32_t pid, struct stat *st);
/* exestop.c: processes stopped by the kernel at exec of an executable it did not know. Turn
 * stopping on or off (off resumes nothing by itself: drain the ring buffer after). */
void agt_exestop_enable(struct attach_run *r, int on);
/* `agtrace __guard RFD MFD` (run by agtrace itself): resume what is still stopped at exec once
 * agtrace is gone. Its exit code. */
int agt_guard_main(int rfd, int mfd);
/* The decoder's callback: look at the file (not when the run ends), mark it known, resume. */
void agt_exe_stopped(void *ctx, uint32_t pid, const struct agt_exe_key *exe);
/* Probes on the file (dev, ino) went: it is no longer known. */
void agt_exe_forget(struct attach_run *r, uint64_t dev, uint64_t ino);
/* A target is gone: its references go; objects nobody holds go after linger_ns. */
void agt_probes_release(struct attach_run *r, struct agt_proc *proc, uint64_t now);
void agt_probes_reap(struct attach_run *r, uint64_t now, uint64_t linger_ns);
/* Links on the objects live targets map (each once), and on all objects. */
int agt_probes_mapped_links(struct attach_run *r, int *all);
/* "TLS: OpenSSL in /usr/lib/.../libssl.so.3 (library)", or that there is none and what that
 * means: the attach report of a target ("" with the user's own specs only). brief: for an
 * event's message, without the list of what agtrace knows. */
void agt_probes_describe(struct attach_run *r, const struct agt_proc *proc, char *buf, size_t n,
			 int brief);
/* The end of the run: every link destroyed (in parallel: each waits for an RCU grace period). */
void agt_probes_detach_all(struct attach_run *r);
/* What the located specs need from probes.c: the probe id of (spec probe, name, object), and
 * a link kept on object o of proc (NULL l: the attach failed, said in one sentence). */
struct agt_probe_info *agt_probe_id_for(struct attach_run *r, const struct agt_spec *spec,
					const struct agt_probe_spec *ps, const char *symbol,
					const char *object);
int agt_obj_link(struct agt_obj *o, struct agt_proc *proc, struct bpf_link *l, const char *what,
		 const char *mapped);

/* located.c: a spec with "locate" onto one object proc maps (its links on o, per process): the
 * TLS locator (through its cache) finds the functions; a library found but refused is warned
 * about and kept in r->refused, never probed. 0, or -errno after one sentence (a spec the user
 * named that finds nothing). */
int agt_attach_located(struct attach_run *r, struct agt_proc *proc, struct agt_obj *o,
		       const struct agt_spec *spec, int soft, const char *host, const char *mapped);
void agt_located_free(struct attach_run *r);
/* Whether the locator finds spec's library in the file at host (asked once per file and run). */
int agt_located_found(struct attach_run *r, const struct agt_spec *spec, const char *host);

/* targets.c */
struct agt_proc *agt_target_push(struct attach_run *r);
struct agt_proc *agt_targets_find(struct agt_targets *tg, uint32_t pid);
void agt_target_gone(struct attach_run *r, struct agt_proc *proc, uint64_t ts, int has_status,
		     uint32_t wait_status);
/* What the decoder asks of this run (probes, targets) and tells it (exits, loads, execs). */
struct agt_decoder_env agt_targets_env(struct attach_run *r);
int agt_target_attach(struct attach_run *r, int t);
void agt_target_watch(struct attach_run *r, int t);
void agt_targets_detach_gone(struct attach_run *r);
void agt_targets_forget(struct attach_run *r, uint64_t now);
void agt_targets_rescan(struct attach_run *r);
void agt_targets_on_exec(void *ctx, uint32_t pid, const char *filename);
void agt_targets_scan_running(struct attach_run *r);
void agt_targets_refresh_pods(struct attach_run *r);
/* With selectors that all name a comm the kernel can test, only execs some of them may take are
 * reported (bpf/proc.bpf.c, comm_pats). */
void agt_discovery_prefilter(struct attach_run *r);
#endif
