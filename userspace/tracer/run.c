/* A run (`agtrace attach` or `run`): resolve probe specs against target processes, load and
 * attach the BPF programs, run the pipeline until the targets exit, a signal, or --duration. */
#include "tracer/run.h"
#include "base/log.h"
#include "pipeline/pipeline.h"
#include "capture/reaper.h"
#include "base/redact.h"
#include "capture/sampling.h"
#include "capture/select.h"
#include "export/audit.h"
#include "export/metrics.h"
#include "export/outfile.h"
#include "trace/agent.h"
#include "trace/nest.h"
#include "capture/preflight.h"
#include "capture/filestate.h"
#include "trace/files.h"
#include "tracer/runtime.h"
#include "rt.skel.h"
#include "base/util.h"
#include "file.skel.h"
#include "func.skel.h"
#include "proc.skel.h"
#include "sock.skel.h"
#include "tls.skel.h"
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* Sampling starts as the options set it (each source "keep everything" unless --sample said
 * otherwise); the map is pinned in this run's folder so `agtrace sample set` can change it. */
static int init_sampling(struct attach_run *r)
{
	for (uint32_t k = 0; k < AGT_SS_MAX; k++) {
		r->sample_seen[k] = r->o.sample_cfg[k];
		r->sample_max[k] = r->sample_seen[k].ratio_ppm;
		if (bpf_map__update_elem(r->cap.func->maps.sampling, &k, sizeof(k),
					 &r->sample_seen[k], sizeof(r->sample_seen[k]), 0)) {
			agt_err("cannot write the sampling map: %s", strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/* Any root process can write the pinned map, with or without bumping its generation: every
 * value is checked each time it is read, and one out of range is said, counted, and written
 * back clamped (a ratio over 1 kept at 1; a rate, burst or byte cap over what `sample set`
 * accepts kept at that bound). 1 when c was changed. */
static int check_sampling(struct attach_run *r, uint32_t k, struct agt_sample_cfg *c)
{
	static const uint32_t lim = AGT_SAMPLE_LIMIT_MAX;
	struct {
		const char *what;
		__u32 *v;
	} lims[] = {{"rate", &c->rate}, {"burst", &c->burst}, {"byte cap", &c->byte_cap}};
	int changed = 0;

	if (c->ratio_ppm > AGT_SAMPLE_ONE) {
		agt_warn("the sampling map of %s says ratio %.6g, which is no ratio (0 to 1): "
			 "kept at 1",
			 agt_sample_source_names[k], (double)c->ratio_ppm / AGT_SAMPLE_ONE);
		r->sample_rejected++;
		c->ratio_ppm = AGT_SAMPLE_ONE;
		changed = 1;
	}
	for (size_t i = 0; i < AGT_ARRAY_SIZE(lims); i++) {
		if (*lims[i].v <= lim)
			continue;
		agt_warn("the sampling map of %s says %s %u, over the most agtrace accepts (%u): "
			 "kept at %u",
			 agt_sample_source_names[k], lims[i].what, *lims[i].v, lim, lim);
		r->sample_rejected++;
		*lims[i].v = lim;
		changed = 1;
	}
	if (changed)
		bpf_map__update_elem(r->cap.func->maps.sampling, &k, sizeof(k), c, sizeof(*c), 0);
	return changed;
}

/* Report sampling changed from outside (agtrace sample set, or any writer of the pinned map,
 * whether it bumps the generation or not) as state_change events. */
static void watch_sampling(struct attach_run *r)
{
	for (uint32_t k = 0; k < AGT_SS_MAX; k++) {
		struct agt_sample_cfg c;
		const struct agt_sample_cfg *seen = &r->sample_seen[k];
		char msg[160];

		if (bpf_map__lookup_elem(r->cap.func->maps.sampling, &k, sizeof(k), &c, sizeof(c),
					 0))
			continue;
		check_sampling(r, k, &c);
		if (c.generation == seen->generation && c.ratio_ppm == seen->ratio_ppm &&
		    c.rate == seen->rate && c.burst == seen->burst && c.byte_cap == seen->byte_cap)
			continue;
		r->sample_seen[k] = c;
		agt_sample_describe((int)k, &c, msg, sizeof(msg));
		for (int t = 0; t < r->tg.n; t++)
			if (!r->tg.v[t]->gone)
				agt_trace_state(&r->pl.trace, &r->tg.v[t]->info, agt_mono_ns(),
						   "sampling", msg, 0, 0);
		agt_info("sampling changed: %s", msg);
	}
}

static void percpu_sums(const struct bpf_map *map, uint32_t n, uint64_t *out);

/* The adaptive controller, once a second: over the event budget, or the ring buffer dropped
 * events, halves the payload sources' ratios (down to 0.1%); well under it, doubles them back
 * up to what was configured. Each change is a state_change saying why. */
static void adapt_sampling(struct attach_run *r)
{
	static const int payload[] = {AGT_SS_FUNC, AGT_SS_TLS, AGT_SS_SOCK, AGT_SS_PYTHON};
	uint64_t kd[AGT_KDROP_MAX], rate = r->pl.dec.records - r->last_records;
	int over, under;

	percpu_sums(r->cap.func->maps.drops, AGT_KDROP_MAX, kd);
	over =
	    rate > (uint64_t)r->o.event_budget || kd[AGT_KDROP_RINGBUF_FULL] > r->last_ringbuf_full;
	under = rate < (uint64_t)r->o.event_budget / 4;
	r->last_records = r->pl.dec.records;
	r->last_ringbuf_full = kd[AGT_KDROP_RINGBUF_FULL];
	for (size_t i = 0; i < AGT_ARRAY_SIZE(payload); i++) {
		uint32_t k = payload[i];
		struct agt_sample_cfg c = r->sample_seen[k];
		uint32_t want = c.ratio_ppm;
		char msg[256], desc[160];

		if (over && c.ratio_ppm > 1000)
			want = c.ratio_ppm / 2 > 1000 ? c.ratio_ppm / 2 : 1000;
		else if (under && c.ratio_ppm < r->sample_max[k])
			want =
			    c.ratio_ppm * 2 < r->sample_max[k] ? c.ratio_ppm * 2 : r->sample_max[k];
		if (want == c.ratio_ppm)
			continue;
		c.ratio_ppm = want;
		c.generation++;
		if (bpf_map__update_elem(r->cap.func->maps.sampling, &k, sizeof(k), &c, sizeof(c), 0))
			continue;
		r->sample_seen[k] = c; /* reported here, not again by watch_sampling */
		agt_sample_describe((int)k, &c, desc, sizeof(desc));
		snprintf(msg, sizeof(msg), "%s (adaptive: %llu events/s, budget %ld%s)", desc,
			 (unsigned long long)rate, r->o.event_budget,
			 kd[AGT_KDROP_RINGBUF_FULL] > r->last_ringbuf_full ? ", ring buffer full"
									   : "");
		for (int t = 0; t < r->tg.n; t++)
			if (!r->tg.v[t]->gone)
				agt_trace_state(&r->pl.trace, &r->tg.v[t]->info, agt_mono_ns(),
						   "sampling", msg, 0, 0);
		agt_info("sampling changed: %s", msg);
	}
}

static int load_bpf(struct attach_run *r)
{
	struct agt_unit_params up = {.ncpus = (uint32_t)libbpf_num_possible_cpus(),
				     .call_cap = (uint64_t)r->o.max_message,
				     .discover = r->o.nselects > 0,
				     .tcp = r->o.tcp,
				     .files = r->o.files,
				     .files_read = r->o.files_read,
				     .runtime = r->o.runtime_metrics > 0,

				     .pipes = r->o.tcp && r->o.pipes};
	char err[512];
	int rc;

	{ /* the salt of the session-sampling hash */
		struct agt_rng rng;

		agt_rng_init(&rng);
		up.salt = agt_rng_next(&rng);
	}
	if ((rc = agt_capture_load(&r->cap, &up, err, sizeof(err)))) {
		agt_err("%s", err);
		return rc;
	}
	if ((rc = init_sampling(r)))
		return rc;
	for (int i = 0; i < r->tg.n; i++) {
		uint32_t pid = r->tg.v[i]->info.pid, one = 1;

		bpf_map__update_elem(r->cap.func->maps.targets, &pid, sizeof(pid), &one,
				     sizeof(one), 0);
	}
	if ((rc = agt_capture_attach(&r->cap, err, sizeof(err)))) {
		agt_err("%s", err);
		return rc;
	}
	return 0;
}

/* Sums of the first n entries of a per-CPU u64 array map (counters). */
static void percpu_sums(const struct bpf_map *map, uint32_t n, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals = calloc(ncpu > 0 ? ncpu : 1, sizeof(uint64_t));

	for (uint32_t k = 0; k < n; k++) {
		out[k] = 0;
		if (!vals || !map ||
		    bpf_map__lookup_elem(map, &k, sizeof(k), vals, ncpu * sizeof(uint64_t), 0))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[k] += vals[c];
	}
	free(vals);
}

/* Every drop counter, by reason: fn(ctx, reason, value, is_events) where is_events says it
 * counts lost events (not bytes, degraded values, or notes). One list for the summary line and
 * the metrics. */
typedef agt_drop_fn drop_fn;
/* is_events of the sampling counters: events the kernel did not keep on purpose (sampling,
 * rate limiting), reported apart from losses. */
#define SAMPLED 2

/* The kernel side's drop reasons (enum agt_kdrop, indexes of the drops map). */
static const char *const kdrop_names[AGT_KDROP_MAX] = {
    "ringbuf_full",    "no_probe_config",	   "arg_read_failed",	 "tls_truncated_calls",
    "tls_read_failed", "tls_return_without_entry", "tcp_truncated_calls",
    "tls_record_without_socket", "tls_record_padding"};

static void for_each_drop(struct attach_run *r, drop_fn fn, void *ctx)
{
	uint64_t kd[AGT_KDROP_MAX], sd[AGT_SS_MAX * AGT_SAMPLE_REASONS];
	char name[48];

	percpu_sums(r->cap.func ? r->cap.func->maps.drops : NULL, AGT_KDROP_MAX, kd);
	percpu_sums(r->cap.func ? r->cap.func->maps.sample_drops : NULL, AGT_SS_MAX * AGT_SAMPLE_REASONS,
		    sd);
	for (int i = 0; i < AGT_KDROP_MAX; i++)
		fn(ctx, kdrop_names[i], kd[i], i != AGT_KDROP_ARG_READ);
	for (int s = 0; s < AGT_SS_MAX; s++) { /* on purpose: not losses */
		snprintf(name, sizeof(name), "sampled_out_%s", agt_sample_source_names[s]);
		fn(ctx, name, sd[s * AGT_SAMPLE_REASONS + AGT_SAMPLE_UNSAMPLED], SAMPLED);
		snprintf(name, sizeof(name), "rate_limited_%s", agt_sample_source_names[s]);
		fn(ctx, name, sd[s * AGT_SAMPLE_REASONS + AGT_SAMPLE_RATE], SAMPLED);
	}
	if (r->pl.nstages)
		agt_pipeline_drops(&r->pl, fn, ctx);
	fn(ctx, "tree_early_flush", r->sink ? r->sink->early_flushes : 0, 0);
	fn(ctx, "output_utf8_replaced", agt_jsonl_replaced(r->jsonl), 0);
	fn(ctx, "sampling_map_rejected", r->sample_rejected, 0);
}

struct summary {
	char list[4096], sampled[1024];
	size_t used, sused;
	uint64_t total, stotal;
};

static void summary_reason(void *ctx, const char *reason, uint64_t v, int is_events)
{
	struct summary *s = ctx;

	if (is_events == SAMPLED) {
		s->stotal += v;
		if (s->sused < sizeof(s->sampled))
			s->sused += snprintf(s->sampled + s->sused, sizeof(s->sampled) - s->sused,
					     "%s%s=%llu", s->sused ? " " : "", reason,
					     (unsigned long long)v);
		return;
	}
	if (is_events)
		s->total += v;
	if (s->used < sizeof(s->list))
		s->used += snprintf(s->list + s->used, sizeof(s->list) - s->used, "%s%s=%llu",
				    s->used ? " " : "", reason, (unsigned long long)v);
}

/* What the output wrote and lost: written + lost = the spans handed to it. */
static void print_output_summary(struct attach_run *r)
{
	struct agt_outfile_stats os;
	uint64_t lost = 0;
	char why[160];
	size_t n = 0;

	if (!r->out)
		return;
	agt_outfile_stats(r->out, &os);
	for (int c = 0; c < AGT_OUT_LOST_REASONS; c++) {
		lost += os.lost[c];
		n += snprintf(why + n, sizeof(why) - n, "%s%s %llu", c ? ", " : "",
			      agt_out_lost_names[c], (unsigned long long)os.lost[c]);
	}
	agt_info("output %s: %llu spans written, %llu lost (%s), %llu failed writes; %llu "
		 "rotations, %llu old files removed, %llu torn lines cut at start",
		 agt_outfile_name(r->out), (unsigned long long)os.written, (unsigned long long)lost,
		 why, (unsigned long long)os.write_failures, (unsigned long long)os.rotations,
		 (unsigned long long)os.removed, (unsigned long long)os.torn);
}

static void print_summary(struct attach_run *r)
{
	struct summary s = {.used = 0};

	print_output_summary(r);
	for_each_drop(r, summary_reason, &s);
	agt_info("summary: %llu events seen, %llu spans and events emitted (%llu unfinished), %llu "
		 "dropped (%s), %llu not kept by sampling (%s)",
		 (unsigned long long)r->pl.dec.records, (unsigned long long)r->pl.trace.em.emitted,
		 (unsigned long long)r->pl.trace.em.unfinished,
		 (unsigned long long)s.total, s.list, (unsigned long long)s.stotal, s.sampled);
	if (r->exec_stops || r->exestop_ever)
		agt_info("exec stops: %llu processes stopped at exec of an executable not looked at "
			 "yet, %llu resumed, %llu gone before resuming; %d executables known%s",
			 (unsigned long long)r->exec_stops, (unsigned long long)r->exec_resumed,
			 (unsigned long long)r->exec_resume_gone, r->nknown,
			 r->known_full ? " (the known_exes map was full: some stop at each exec)"
				       : "");
	for (int i = 0; i < r->nrefused; i++)
		agt_info("TLS not probed (the locator refused): %s", r->refused[i]);
	if (r->nsel)
		agt_info(
		    "discovery: %llu execs seen, %llu processes discovered, %llu not traced "
		    "(--max-targets), %llu with probes that failed to attach, %llu gone before "
		    "they could be looked at, %llu forgotten after exit",
		    (unsigned long long)r->pl.dec.execs_seen, (unsigned long long)r->discovered,
		    (unsigned long long)r->discover_limited, (unsigned long long)r->discover_failed,
		    (unsigned long long)r->exec_gone, (unsigned long long)r->forgotten);
}

static void metrics_reason(void *ctx, const char *reason, uint64_t v, int is_events)
{
	char l[96];

	if (is_events == SAMPLED) { /* sampled_out_tls -> source="tls",reason="sampled_out" */
		const char *src = strrchr(reason, '_');

		snprintf(l, sizeof(l), "source=\"%s\",reason=\"%.*s\"", src + 1,
			 (int)(src - reason), reason);
		agt_metrics_set(ctx, "agtrace_sampled_events_total", l, (double)v);
		return;
	}
	snprintf(l, sizeof(l), "reason=\"%s\"", reason);
	agt_metrics_set(ctx, is_events ? "agtrace_dropped_events_total" : "agtrace_noted_total", l,
			(double)v);
}

/* agtrace's own figures for /metrics: refreshed once a second and at the end. */
static void update_self_metrics(struct attach_run *r)
{
	unsigned convs = 0, pending = 0;

	if (!r->metrics)
		return;
	for_each_drop(r, metrics_reason, r->metrics);
	for (int i = 0; i < AGT_SRC_COUNTS; i++) {
		char l[32];

		snprintf(l, sizeof(l), "source=\"%s\"", agt_source_count_names[i]);
		agt_metrics_set(r->metrics, "agtrace_events_total", l, (double)r->pl.dec.by_source[i]);
	}
	agt_agent_open(r->pl.trace.agent, &convs, &pending);
	agt_metrics_set(r->metrics, "agentic_active_workflows", "", convs);
	agt_metrics_set(r->metrics, "agentic_trace_buffer_size", "",
			(double)(agt_nest_stats(r->pl.trace.nest)->open + convs + pending));
	agt_metrics_set(r->metrics, "agtrace_attached_processes", "", r->tg.live);
	if (r->o.runtime_metrics > 0 && r->cap.rt) {
		static const char *const why[AGT_RT_REFUSED_N] = {"reason=\"attach_failed\"",
								  "reason=\"limit\""};

		agt_metrics_set(r->metrics, "agtrace_runtime_probe_links", "",
				agt_probes_runtime_links(r));
		agt_metrics_set(r->metrics, "agtrace_runtime_descendants", "", r->ndesc);
		for (int k = 0; k < AGT_RT_REFUSED_N; k++)
			agt_metrics_set(r->metrics, "agtrace_runtime_probes_refused_total", why[k],
					(double)r->rt_refused[k]);
	}
	if (r->nsel) {
		agt_metrics_set(r->metrics, "agtrace_discovered_processes_total", "",
				(double)r->discovered);
		agt_metrics_set(r->metrics, "agtrace_discovery_skipped_total",
				"reason=\"max_targets\"", (double)r->discover_limited);
		agt_metrics_set(r->metrics, "agtrace_discovery_skipped_total",
				"reason=\"attach_failed\"", (double)r->discover_failed);
		agt_metrics_set(r->metrics, "agtrace_discovery_skipped_total",
				"reason=\"exited_first\"", (double)r->exec_gone);
		agt_metrics_set(r->metrics, "agtrace_discovery_skipped_total",
				"reason=\"pod_wait_full\"", (double)r->pod_wait_full);
	}
	agt_metrics_set(r->metrics, "agtrace_exec_stops_total", "", (double)r->exec_stops);
	agt_metrics_set(r->metrics, "agtrace_exec_resumes_total", "result=\"resumed\"",
			(double)r->exec_resumed);
	agt_metrics_set(r->metrics, "agtrace_exec_resumes_total", "result=\"gone\"",
			(double)r->exec_resume_gone);
	if (r->k8s) {
		uint64_t req, fail;
		unsigned pods;

		agt_k8s_stats(r->k8s, &req, &fail, &pods);
		agt_metrics_set(r->metrics, "agtrace_k8s_pod_list_requests_total", "", (double)req);
		agt_metrics_set(r->metrics, "agtrace_k8s_pod_list_failures_total", "",
				(double)fail);
		agt_metrics_set(r->metrics, "agtrace_k8s_pods_known", "", pods);
	}
	if (r->audit) {
		struct agt_audit_stats as;

		agt_audit_stats(r->audit, &as);
		agt_metrics_set(r->metrics, "agtrace_audit_records_total", "", (double)as.records);
		agt_metrics_set(r->metrics, "agtrace_audit_write_failures_total", "",
				(double)as.write_failures);
		agt_metrics_set(r->metrics, "agtrace_output_write_failures_total",
				"output=\"audit\"", (double)as.write_failures);
		agt_metrics_set(r->metrics, "agtrace_output_rotations_total", "output=\"audit\"",
				(double)as.rotations);
		agt_metrics_set(r->metrics, "agtrace_output_files_removed_total",
				"output=\"audit\"", (double)as.removed);
		agt_metrics_set(r->metrics, "agtrace_audit_checkpoints_total", "",
				(double)as.checkpoints);
		agt_metrics_set(r->metrics, "agtrace_audit_last_checkpoint_seq", "",
				(double)as.last_checkpoint_seq);
		agt_metrics_set(r->metrics, "agtrace_audit_last_checkpoint_timestamp_seconds", "",
				(double)as.last_checkpoint_real_ns / 1e9);
	}
	if (r->out) {
		struct agt_outfile_stats os;
		char l[32], lr[96];

		agt_outfile_stats(r->out, &os);
		snprintf(l, sizeof(l), "output=\"%s\"", agt_outfile_label(r->out));
		agt_metrics_set(r->metrics, "agtrace_output_spans_total", l, (double)os.written);
		for (int c = 0; c < AGT_OUT_LOST_REASONS; c++) {
			snprintf(lr, sizeof(lr), "%s,reason=\"%s\"", l, agt_out_lost_names[c]);
			agt_metrics_set(r->metrics, "agtrace_output_lost_spans_total", lr,
					(double)os.lost[c]);
		}
		agt_metrics_set(r->metrics, "agtrace_output_write_failures_total", l,
				(double)os.write_failures);
		agt_metrics_set(r->metrics, "agtrace_output_rotations_total", l,
				(double)os.rotations);
		agt_metrics_set(r->metrics, "agtrace_output_files_removed_total", l,
				(double)os.removed);
		agt_metrics_set(r->metrics, "agtrace_output_torn_total", l, (double)os.torn);
	}
	if (r->rb_cons && r->rb_prod) {
		agt_metrics_set(r->metrics, "agtrace_ringbuf_used_bytes", "",
				(double)(*r->rb_prod - *r->rb_cons));
		agt_metrics_set(r->metrics, "agtrace_ringbuf_size_bytes", "", (double)r->rb_size);
	}
	for (int k = 0; k < AGT_EXP_COUNT; k++) {
		struct agt_delivery_stats es;
		char l[64];

		if (!r->exp[k])
			continue;
		snprintf(l, sizeof(l), "exporter=\"%s\"", agt_exporters[k].name);
		agt_delivery_stats(r->exp[k], &es);
		agt_metrics_set(r->metrics, "agtrace_export_delivered_total", l,
				(double)es.delivered);
		agt_metrics_set(r->metrics, "agtrace_export_retried_total", l, (double)es.retried);
		agt_metrics_set(r->metrics, "agtrace_export_failures_total", l,
				(double)es.send_failures);
		agt_metrics_set(r->metrics, "agtrace_export_dead_lettered_total", l,
				(double)es.dead_lettered);
		for (int c = 0; c < AGT_LOST_REASONS; c++) {
			char lr[128];

			snprintf(lr, sizeof(lr), "%s,reason=\"%s\"", l, agt_lost_reason_names[c]);
			agt_metrics_set(r->metrics, "agtrace_export_lost_total", lr,
					(double)es.lost[c]);
		}
		agt_metrics_set(r->metrics, "agtrace_export_replayed_total", l,
				(double)es.replayed);
		agt_metrics_set(r->metrics, "agtrace_spool_torn_total", l, (double)es.torn);
		agt_metrics_set(r->metrics, "agtrace_spool_disk_bytes", l, (double)es.disk_bytes);
		agt_metrics_set(r->metrics, "agtrace_spool_unsynced_documents", l,
				(double)es.unsynced);
		agt_metrics_set(r->metrics, "agtrace_spool_sync_lag_max_seconds", l,
				(double)es.sync_lag_max_ms / 1000.0);
		agt_metrics_set(r->metrics, "agtrace_spool_bytes", l, (double)es.spool_bytes);
		agt_metrics_set(r->metrics, "agtrace_spool_oldest_age_seconds", l,
				(double)es.spool_oldest_age_s);
		agt_metrics_set(r->metrics, "agtrace_export_latency_seconds", l,
				(double)es.last_latency_ms / 1000.0);
		agt_metrics_set(r->metrics, "agtrace_export_utf8_replaced_total", l,
				(double)es.utf8_replaced);
		{
			char lw[96];

			snprintf(lw, sizeof(lw), "output=\"spool\",%s", l);
			agt_metrics_set(r->metrics, "agtrace_output_write_failures_total", lw,
					(double)es.write_failures);
		}
	}
}

/* The audit trail's anchors leave the host three ways: as a state_change event named "audit
 * checkpoint" ("audit seal", "audit rotate") through the sink chain below the trail (the output
 * and every exporter), whose message starts with "anchor RECORDS:HEAD", as the one series of
 * agtrace_audit_anchor_info, and in the log (journald), as `agtrace audit verify --anchor`
 * takes them. */
static void emit_audit_anchor(struct attach_run *r, const struct agt_audit_anchor *an)
{
	char name[32], msg[256];

	snprintf(name, sizeof(name), "audit %s", an->type);
	snprintf(msg, sizeof(msg), "anchor %s (%s at record %llu of %s)", an->text, an->type,
		 (unsigned long long)an->seq, an->path);
	agt_trace_state(&r->pl.trace, NULL, agt_mono_ns(), name, msg, 0, 0);
}

static void audit_anchor(void *ctx, const struct agt_audit_anchor *an)
{
	struct attach_run *r = ctx;

	agt_log(strcmp(an->type, "seal") ? AGT_LOG_DEBUG : AGT_LOG_INFO,
		"audit trail %s: %s at record %llu; anchor %s", an->path, an->type,
		(unsigned long long)an->seq, an->text);
	if (r->metrics) {
		char l[160];

		snprintf(l, sizeof(l), "type=\"%s\",records=\"%llu\",head=\"%s\"", an->type,
			 (unsigned long long)an->records, an->head);
		agt_metrics_set_only(r->metrics, "agtrace_audit_anchor_info", l, 1);
	}
	if (!r->pl.nstages) { /* no pipeline yet: emitted once there is one */
		r->anchor_held = *an;
		r->anchor_pending = 1;
		return;
	}
	emit_audit_anchor(r, an);
}

void agt_workload_name(const struct agt_proc_info *in, char *buf, size_t n)
{
	const char *base = strrchr(in->exe, '/');

	if (in->id.pod_name[0])
		snprintf(buf, n, "%.63s/%.90s", in->id.pod_namespace, in->id.pod_name);
	else
		snprintf(buf, n, "%s", base && base[1] ? base + 1 : in->comm);
}

/* The processes traced now, for the runtime metrics read at scrape time: the targets, and the
 * descendants they started (each under its target's workload); descendants gone since the
 * last look are handed over once more, to be retired. */
static void sync_runtime(struct attach_run *r)
{
	struct agt_rt_target *live;
	char (*names)[160];
	int n = 0;

	agt_desc_sweep(r, agt_mono_ns()); /* descendants gone let go of their own probes */
	if (!r->rt) {
		agt_desc_drop_gone(r); /* no collector to retire them first */
		return;
	}
	live = calloc(r->tg.n + r->ndesc + 1, sizeof(*live));
	names = calloc(r->tg.n + 1, sizeof(*names));
	for (int t = 0; live && names && t < r->tg.n; t++) {
		const struct agt_proc_info *in = &r->tg.v[t]->info;

		if (r->tg.v[t]->gone)
			continue;
		agt_workload_name(in, names[n], sizeof(names[n]));
		live[n].pid = in->pid;
		live[n].start_ticks = in->start_ticks;
		live[n].workload = names[n];
		n++;
	}
	for (int i = 0; live && names && i < r->ndesc; i++) {
		live[n].pid = r->desc[i].pid;
		live[n].start_ticks = r->desc[i].start_ticks;
		live[n].workload = r->desc[i].workload;
		live[n++].gone = r->desc[i].gone;
	}
	if (live && names) {
		agt_rt_sync(r->rt, live, n);
		agt_desc_drop_gone(r);
	}
	free(live);
	free(names);
}

static int event_loop(struct attach_run *r)
{
	struct epoll_event ev, evs[16];
	sigset_t mask;
	int ep = r->ep, sfd, tfd = -1;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = EV_SIGNAL};
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = EV_RING};
	epoll_ctl(ep, EPOLL_CTL_ADD, ring_buffer__epoll_fd(r->rb), &ev);
	if (r->o.duration) {
		struct itimerspec its = {.it_value.tv_sec = r->o.duration};

		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		timerfd_settime(tfd, 0, &its, NULL);
		ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = EV_TIMER};
		epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	}
	uint64_t next_expire = 0;

	/* With selectors, run until stopped: targets come and go. */
	/* While records flow, the next poll comes soon (programs that want the reader at once then
	 * need not wake it again: see file.bpf.c). */
	for (int stop = 0, busy = 0; !stop && (r->tg.live > 0 || r->nsel);) {
		int n;

		if (!busy && r->cap.file && r->cap.file->bss)
			r->cap.file->bss->reader_idle = 1; /* a last close may wake it (file.bpf.c) */
		n = epoll_wait(ep, evs, AGT_ARRAY_SIZE(evs),
			       busy ? AGT_POLL_BUSY_MS : r->nsel ? AGT_POLL_DISCOVER_MS : AGT_POLL_MS);
		if (r->cap.file && r->cap.file->bss)
			r->cap.file->bss->reader_idle = 0;

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			uint64_t src = evs[i].data.u64;

			if (src == EV_SIGNAL || src == EV_TIMER)
				stop = 1;
			if (src > EV_TIMER) {
				struct agt_proc *p = evs[i].data.ptr;

				/* Everything the process did is in the ring buffer before it is
				 * gone. */
				ring_buffer__consume(r->rb);
				epoll_ctl(ep, EPOLL_CTL_DEL, p->pidfd, NULL);
				agt_target_gone(r, p, agt_mono_ns(), 0, 0);
			}
		}
		if ((busy = ring_buffer__consume(r->rb)) < 0 && errno != EINTR)
			break;
		agt_trace_settle(&r->pl.trace);
		if (r->rescan_pending)
			agt_targets_rescan(r);
		if (r->tg.live != r->live_seen)
			agt_targets_detach_gone(r);
		if (agt_mono_ns() >= next_expire) {
			next_expire = agt_mono_ns() + 1000000000ull;
			watch_sampling(r);
			update_self_metrics(r);
			sync_runtime(r);
			if (r->o.event_budget)
				adapt_sampling(r);
			agt_agent_expire(r->pl.trace.agent, agt_mono_ns(),
					 r->o.idle_timeout * 1000000000ull);
			agt_targets_forget(r, agt_mono_ns());
			agt_probes_reap(r, agt_mono_ns(), r->o.forget_after * 1000000000ull);
			agt_targets_refresh_pods(r);
			agt_audit_tick(r->audit, agt_mono_ns());
			agt_outfile_tick(r->out, agt_mono_ns() + r->ectx.mono_to_real);
		}
	}
	ring_buffer__consume(r->rb);
	if (tfd >= 0)
		close(tfd);
	close(sfd);
	return 0;
}

int agt_run(const struct agt_config *c, int argc, char **argv)
{
	struct attach_run *r = calloc(1, sizeof(*r));
	int rc, nprobes_total = 0, nlinks_all = 0;
	char err[512] = "";

	if (!r)
		return -ENOMEM;
	r->ep = -1;
	r->o = *c;
	/* SIGINT/SIGTERM are read from a signalfd by the event loop: block them before any thread
	 * (exporter, metrics server) exists, so none of those can be killed by them. */
	{
		sigset_t mask;

		sigemptyset(&mask);
		sigaddset(&mask, SIGINT);
		sigaddset(&mask, SIGTERM);
		sigprocmask(SIG_BLOCK, &mask, NULL);
	}
	/* Runtime metrics: with the metrics endpoint, unless turned off. */
	if (r->o.runtime_metrics < 0)
		r->o.runtime_metrics = r->o.metrics_listen != NULL;
	if ((rc = agt_attach_load_specs(r)))
		goto cleanup;
	if (r->o.tcp < 0)
		r->o.tcp = r->auto_mode;
	for (int i = 0; i < r->o.nselects; i++) {
		if (agt_selector_parse(r->o.selects[i], &r->sel[i], err, sizeof(err))) {
			agt_err("%s", err);
			rc = -EINVAL;
			goto cleanup;
		}
		r->nsel++;
	}
	/* Pod names for spans (and for namespace/label selectors): in a pod, or with
	 * --k8s-pods-url; NULL otherwise. */
	r->k8s = agt_k8s_new(&r->o.k8s, err, sizeof(err));
	if (!r->k8s && err[0]) {
		agt_err("%s", err);
		rc = -EINVAL;
		goto cleanup;
	}
	{
		for (int i = 0; i < r->nsel && !r->k8s; i++)
			if (agt_selector_needs_k8s(&r->sel[i]))
				agt_warn("selector \"%s\" needs pod metadata, but there is no "
					 "Kubernetes API to ask (not in a pod, and no "
					 "--k8s-pods-url): it matches nothing",
					 r->sel[i].text);
	}
	/* Exporter settings a run would refuse: refused here, before anything is attached (and
	 * by --dry-run). */
	for (int k = 0; k < AGT_EXP_COUNT; k++) {
		struct agt_export_ctx x;

		if (!r->o.exp[k].url)
			continue;
		agt_export_ctx_init(&x);
		if (agt_exporter_check(k, &r->o.exp[k], &x, err, sizeof(err))) {
			agt_err("%s", err);
			rc = -EINVAL;
			goto cleanup;
		}
	}
	if (r->o.dry_run) {
		printf("configuration OK: %d PID%s, %d selector%s, %d probe spec%s%s%s\n",
		       r->o.npids, r->o.npids == 1 ? "" : "s", r->nsel, r->nsel == 1 ? "" : "s",
		       r->nspecs, r->nspecs == 1 ? "" : "s",
		       r->auto_mode ? " (built-in, auto)" : "", r->o.tcp ? ", TCP capture" : "");
		for (int i = 0; i < r->nsel; i++)
			printf("  select %s\n", r->sel[i].text);
		rc = 0;
		goto cleanup;
	}
	if ((rc = agt_require_bpf_privileges()))
		goto cleanup;
	r->ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < r->o.npids; i++) {
		for (int j = 0; j < i; j++)
			if (r->o.pids[j] == r->o.pids[i]) {
				agt_err("PID %d is given twice; give each -p once", r->o.pids[i]);
				rc = -EINVAL;
				goto cleanup;
			}
		if (!agt_target_push(r)) {
			rc = -ENOMEM;
			goto cleanup;
		}
		if (agt_proc_open(r->o.pids[i], r->tg.v[i], err, sizeof(err))) {
			free(r->tg.v[i]);
			agt_err("%s", err);
			rc = -EINVAL;
			goto cleanup;
		}
		r->tg.n++;
	}
	r->tg.live = r->tg.n;
	libbpf_set_print(agt_libbpf_print);
	if ((rc = load_bpf(r)))
		goto cleanup;
	agt_discovery_prefilter(r);
	for (int t = 0; t < r->tg.n && !rc; t++) {
		agt_k8s_lookup(r->k8s, &r->tg.v[t]->info.id);
		rc = agt_target_attach(r, t);
	}
	if (rc)
		goto cleanup;

	/* Output: appended (a run never erases an earlier one), rotated, every failure counted. */
	{
		struct agt_outfile_config oc = {.path = r->o.output_file,
						.max_bytes = (uint64_t)r->o.output_max_bytes,
						.max_age_s = (uint64_t)r->o.output_max_age,
						.keep_bytes = (uint64_t)r->o.output_keep_bytes};

		if (!(r->out = agt_outfile_open(&oc, err, sizeof(err)))) {
			agt_err("%s", err);
			rc = -EINVAL;
			goto cleanup;
		}
	}
	signal(SIGPIPE, SIG_IGN); /* a reader of stdout that went away: counted as "closed" */
	agt_export_ctx_init(&r->ectx);
	snprintf(r->ectx.service_name, sizeof(r->ectx.service_name), "%s",
		 r->o.service_name		 ? r->o.service_name
		 : getenv("OTEL_SERVICE_NAME") ? getenv("OTEL_SERVICE_NAME")
						 : "");
	if (r->o.output ? !strcmp(r->o.output, "tree") : agt_outfile_isatty(r->out))
		r->sink = agt_tree_new_out(r->out, &r->ectx, 100000);
	else
		r->sink = r->jsonl = agt_jsonl_new_out(r->out, &r->ectx);
	if (r->sink && r->o.metrics_listen) {
		char err[512];

		if (!(r->metrics = agt_metrics_start(r->o.metrics_listen, err, sizeof(err)))) {
			agt_err("%s", err);
			rc = -EINVAL;
			goto cleanup;
		}
		r->sink = agt_metrics_tee(r->sink, r->metrics);
	}
	for (int k = 0; k < AGT_EXP_COUNT && r->sink; k++) {
		char err[512];

		if (!r->o.exp[k].url)
			continue;
		if (!(r->exp[k] = agt_exporter_start(k, &r->o.exp[k], &r->o.delivery,
						     &r->ectx, err, sizeof(err)))) {
			agt_err("%s", err);
			rc = -EINVAL;
			goto cleanup;
		}
		r->sink = agt_delivery_tee(r->sink, r->exp[k]);
	}
	if (r->sink && r->o.audit_file) {
		char err[512];
		cJSON *cfg = cJSON_CreateObject(), *args = cJSON_AddArrayToObject(cfg, "argv");

		struct agt_audit_config ac = {
		    .path = r->o.audit_file,
		    .key_file = r->o.audit_key_file,
		    .checkpoint_records = (uint64_t)r->o.audit_ckpt_records,
		    .checkpoint_seconds = (uint64_t)r->o.audit_ckpt_seconds,
		    .max_bytes = (uint64_t)r->o.audit_max_bytes,
		    .max_age_s = (uint64_t)r->o.audit_max_age,
		    .keep_bytes = (uint64_t)r->o.audit_keep_bytes,
		};

		if (!(r->audit = agt_audit_open(&ac, &r->ectx, err, sizeof(err)))) {
			agt_err("%s", err);
			cJSON_Delete(cfg);
			rc = -EINVAL;
			goto cleanup;
		}
		agt_audit_set_anchor(r->audit, audit_anchor, r);
		char **red = agt_redact_argv(r->o.redactor, argc, (const char *const *)argv);

		for (int i = 0; red && i < argc; i++)
			cJSON_AddItemToArray(args, cJSON_CreateString(red[i]));
		free(red);
		agt_audit_record(r->audit, "config", cfg);
		r->sink = agt_audit_tee(r->sink, r->audit);
	}
	{
		struct agt_files_cfg fc = {.read = r->o.files_read,
					   .diffs = r->o.capture_diffs,
					   .hash_max = (uint64_t)r->o.files_hash_max,
					   .ignore = r->o.files_ignore,
					   .nignore = r->o.nfiles_ignore,
					   .state = agt_file_state_read};
		struct agt_pipeline_config pc = {.max_depth = r->o.max_depth,
						 .max_threads = r->o.max_threads,
						 .msg_cap = r->o.max_message,
						 .redact = agt_redact_str,
						 .redact_ctx = r->o.redactor,
						 .content_cap = !r->o.capture_content ? 0
								: r->o.capture_content_bytes
								    ? (size_t)r->o.capture_content_bytes
								    : 32768,
						 .files = r->o.files ? &fc : NULL};
		struct agt_decoder_env env = agt_targets_env(r);

		if (!r->sink || agt_pipeline_init(&r->pl, &pc, &env, r->sink)) {
			rc = -ENOMEM;
			goto cleanup;
		}
	}
	if (r->anchor_pending) {
		emit_audit_anchor(r, &r->anchor_held);
		r->anchor_pending = 0;
	}
	r->rb = ring_buffer__new(bpf_map__fd(r->cap.func->maps.events), agt_decode_record, &r->pl.dec,
				 NULL);
	if (!r->rb) {
		agt_err("cannot open the ring buffer: %s", strerror(errno));
		rc = -EINVAL;
		goto cleanup;
	}
	/* TLS in an executable itself is per file: a traced (or pending) process that execs a file
	 * not looked at yet is stopped by the kernel until its probes are attached (the loop
	 * resumes it; so does the cleanup, whatever ends the run). */
	for (int s = 0; s < r->nspecs && !r->exestop && !r->o.no_exec_stop; s++)
		for (int ti = 0; ti < r->specs[s].ntargets; ti++)
			if (r->specs[s].locate || !strcmp(r->specs[s].targets[ti], "$exe"))
				agt_exestop_enable(r, 1);
	for (int t = 0; t < r->tg.n; t++) {
		char msg[1600], tls[1200];

		agt_target_watch(r, t);
		agt_probes_describe(r, r->tg.v[t], tls, sizeof(tls), 1);
		snprintf(msg, sizeof(msg), "%d probe links%s%s", r->tg.v[t]->nlinks,
			 tls[0] ? "; " : "", tls);
		agt_trace_state(&r->pl.trace, &r->tg.v[t]->info, agt_mono_ns(), "attach", msg, 0, 0);
		agt_probes_describe(r, r->tg.v[t], tls, sizeof(tls), 0);
		agt_info("PID %d (%s): %d probe links%s%s", r->tg.v[t]->info.pid,
			 r->tg.v[t]->info.comm, r->tg.v[t]->nlinks, tls[0] ? "; " : "", tls);
	}
	nprobes_total = agt_probes_mapped_links(r, &nlinks_all);
	if (r->metrics) {
		/* Ring buffer fill: the consumer and producer positions are the map's first two
		 * pages (libbpf 1.1 has no call for it); mapped read-only, next to libbpf's own. */
		long pg = sysconf(_SC_PAGESIZE);
		int fd = bpf_map__fd(r->cap.func->maps.events);
		void *cons = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 0);
		void *prod = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, pg);

		r->rb_cons = cons == MAP_FAILED ? NULL : cons;
		r->rb_prod = prod == MAP_FAILED ? NULL : prod;
		r->rb_size = bpf_map__max_entries(r->cap.func->maps.events);
	}
	if (r->metrics && r->o.runtime_metrics > 0 &&
	    (r->rt = agt_rt_new(r->cap.rt ? bpf_map__fd(r->cap.rt->maps.rt_stats) : -1,
				r->cap.rt ? bpf_map__fd(r->cap.rt->maps.rt_open) : -1))) {
		sync_runtime(r);
		agt_metrics_collector(r->metrics, agt_rt_collect, r->rt);
	}
	update_self_metrics(r); /* a scrape after "attached" already sees them */
	agt_metrics_set_ready(r->metrics, 1); /* /readyz */
	r->sink->flush(r->sink);
	r->reaper = agt_reaper_start(); /* links nobody holds any more go off the loop */
	if (r->tg.n)
		agt_info("attached %d probe links (%u probes)%s%s to %d process%s (links on what "
			 "they map; %d more ready in libraries not loaded yet)%s%s; Ctrl-C to stop",
			 nprobes_total, r->nprobes, r->cap.sock ? " and TCP capture" : "",
			 r->cap.file ? " and file lineage" : "", r->tg.n, r->tg.n == 1 ? "" : "es",
			 nlinks_all - nprobes_total,
			 r->nrefused ? "; TLS not probed (the locator refused): " : "",
			 r->nrefused ? r->refused[0] : "");
	if (r->nsel) {
		/* Execs are reported from now on; then the processes already running. */
		agt_attach_ahead_for_discovery(r);
		agt_targets_scan_running(r);
		r->sink->flush(r->sink);
		agt_info("discovery: %d selector%s; %llu running process%s matched; watching "
			 "new ones as they start; Ctrl-C to stop",
			 r->nsel, r->nsel == 1 ? "" : "s", (unsigned long long)r->discovered,
			 r->discovered == 1 ? "" : "es");
	}

	event_loop(r);
	agt_metrics_set_ready(r->metrics, 0); /* stopping */
	/* No more stops; then every process stopped meanwhile is resumed (the ring buffer's
	 * reports, including those reserved a moment ago). */
	agt_exestop_enable(r, 0);
	usleep(2000);
	ring_buffer__consume(r->rb);

	agt_reaper_stop(r->reaper); /* the links of targets that exited: destroyed by now */
	r->reaper = NULL;
	/* Detach first so nothing new arrives, then close what is still open. */
	agt_probes_detach_all(r);
	ring_buffer__consume(r->rb);
	agt_pipeline_flush(&r->pl, agt_mono_ns());
	
	for (int t = 0; t < r->tg.n; t++)
		if (!r->tg.v[t]->gone)
			agt_trace_state(&r->pl.trace, &r->tg.v[t]->info, agt_mono_ns(), "detach", "", 0,
					   0);
	/* A clean end: the trail says so, and its seal goes out to the exporters too. */
	agt_audit_seal(r->audit);
	r->sink->flush(r->sink);
	for (int k = 0; k < AGT_EXP_COUNT; k++) {
		struct agt_delivery_stats es;

		if (!r->exp[k])
			continue;
		agt_delivery_stop(r->exp[k]); /* deliver what it can, spool the rest */
		agt_delivery_stats(r->exp[k], &es);
		char why[256];
		size_t n = 0;

		for (int c = 0; c < AGT_LOST_REASONS; c++) /* what "lost" is made of */
			n += snprintf(why + n, sizeof(why) - n, "%s%s %llu", c ? ", " : "",
				      agt_lost_reason_names[c], (unsigned long long)es.lost[c]);
		agt_info(
		    "%s: %llu queued, %llu delivered, %llu retried, %llu dead-lettered, %llu "
		    "spooled (%llu bytes waiting), %llu lost (spool full); lost by reason: %s; "
		    "%llu replayed from the spool, %llu torn (%llu bytes), %llu stale .tmp "
		    "removed, %llu fsyncs, %llu ms longest wait for fsync, %llu failed spool "
		    "writes, %llu invalid UTF-8 sequences replaced",
		    agt_exporters[k].name, (unsigned long long)es.queued,
		    (unsigned long long)es.delivered, (unsigned long long)es.retried,
		    (unsigned long long)es.dead_lettered, (unsigned long long)es.spooled,
		    (unsigned long long)es.spool_bytes, (unsigned long long)es.spool_dropped, why,
		    (unsigned long long)es.replayed, (unsigned long long)es.torn,
		    (unsigned long long)es.torn_bytes, (unsigned long long)es.tmp_removed,
		    (unsigned long long)es.fsyncs, (unsigned long long)es.sync_lag_max_ms,
		    (unsigned long long)es.write_failures, (unsigned long long)es.utf8_replaced);
	}
	agt_outfile_flush(r->out);
	update_self_metrics(r);
	print_summary(r);
	/* Spans or audit records were lost, or a spool write failed (warned once each): exit 1. */
	rc = agt_audit_failed(r->audit) || agt_outfile_failed(r->out) ? -EIO : 0;
	for (int k = 0; k < AGT_EXP_COUNT; k++) {
		struct agt_delivery_stats es;

		if (!r->exp[k])
			continue;
		agt_delivery_stats(r->exp[k], &es);
		if (es.write_failures || es.lost[AGT_LOST_DISK_FULL] || es.lost[AGT_LOST_IO_ERROR])
			rc = -EIO;
	}
cleanup:
	if (r->exestop && r->rb) { /* ended early: whatever it stopped is resumed */
		agt_exestop_enable(r, 0);
		usleep(2000);
		ring_buffer__consume(r->rb);
	}
	if (r->rb_cons)
		munmap((void *)r->rb_cons, sysconf(_SC_PAGESIZE));
	if (r->rb_prod)
		munmap((void *)r->rb_prod, sysconf(_SC_PAGESIZE));
	ring_buffer__free(r->rb);
	agt_reaper_stop(r->reaper);
	agt_probes_detach_all(r);
	agt_desc_free_all(r);
	free(r->known);
	agt_capture_destroy(&r->cap);
	agt_located_free(r);
	if (r->sink)
		r->sink->destroy(r->sink);
	agt_audit_close(r->audit);
	agt_metrics_stop(r->metrics); /* no scrape reads the collector after this */
	agt_rt_free(r->rt);
	for (int k = 0; k < AGT_EXP_COUNT; k++)
		agt_delivery_free(r->exp[k]);
	agt_pipeline_fini(&r->pl);
	agt_outfile_close(r->out); /* after the sink: the tree's stream writes into it */
	for (uint32_t i = 0; i < r->nprobes; i++)
		free(r->probes[i]);
	free(r->probes);
	for (int i = 0; i < r->tg.n; i++) {
		agt_proc_close(r->tg.v[i]);
		free(r->tg.v[i]);
	}
	free(r->tg.v);
	for (int i = 0; i < r->nsel; i++)
		agt_selector_free(&r->sel[i]);
	agt_k8s_free(r->k8s);
	if (r->ep >= 0)
		close(r->ep);
	for (int i = 0; i < r->nspecs; i++)
		agt_spec_free(&r->specs[i]);
	free(r); /* the config, its redactor included, is the caller's */
	return rc;
}
