/* Targets: processes given by PID at start or discovered by a selector at any time, attached,
 * watched through their pidfds, re-examined when they load a library, detached and freed when
 * they exit. */
#include "tracer/run.h"
#include "base/log.h"
#include "base/util.h"
#include "capture/reaper.h"
#include "func.skel.h"
#include "proc.skel.h"
#include "trace/agent.h"
#include <bpf/libbpf.h>
#include <ctype.h>
#include <errno.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* ---- Targets: given by PID at start, or discovered by a selector at any time ---- */

/* A new target slot (pointers stay valid: spans keep them). */
struct agt_proc *agt_target_push(struct attach_run *r)
{
	struct agt_targets *tg = &r->tg;
	struct agt_proc *proc;

	if (tg->n == tg->cap) {
		int cap = tg->cap ? 2 * tg->cap : 16;
		struct agt_proc **np = realloc(tg->v, cap * sizeof(*np));

		if (!np)
			return NULL;
		tg->v = np;
		tg->cap = cap;
	}
	if (!(proc = calloc(1, sizeof(*proc))))
		return NULL;
	proc->pidfd = -1;
	tg->v[tg->n] = proc;
	return proc;
}

struct agt_proc *agt_targets_find(struct agt_targets *tg, uint32_t pid)
{
	struct agt_proc **slot = &tg->cache[pid & 255];

	if (*slot && (uint32_t)(*slot)->info.pid == pid)
		return *slot;
	/* Newest first: a PID reused by a newly discovered target finds the new one. */
	for (int i = tg->n - 1; i >= 0; i--)
		if ((uint32_t)tg->v[i]->info.pid == pid)
			return *slot = tg->v[i];
	return NULL;
}

/* A target is gone (once): every stage ends what it holds for it, and its exit is an event. */
void agt_target_gone(struct attach_run *r, struct agt_proc *proc, uint64_t ts, int has_status,
		     uint32_t wait_status)
{
	char msg[128] = "exit status unknown";

	if (proc->gone)
		return;
	proc->gone = 1;
	proc->gone_ns = ts;
	r->tg.live--;
	agt_pipeline_proc_gone(&r->pl, proc->info.pid, ts);
	if (has_status && (wait_status & 0x7f))
		snprintf(msg, sizeof(msg), "killed by signal %u", wait_status & 0x7f);
	else if (has_status)
		snprintf(msg, sizeof(msg), "exited with code %u", (wait_status >> 8) & 0xff);
	agt_trace_state(&r->pl.trace, &proc->info, ts, "exit", msg, has_status, wait_status);
}

/* ---- What the decoder asks of the run ---- */

static const struct agt_probe_info *env_probe(void *ctx, uint32_t id)
{
	struct attach_run *r = ctx;

	return id < r->nprobes ? r->probes[id] : NULL;
}

static const struct agt_proc_info *env_target(void *ctx, uint32_t pid)
{
	struct agt_proc *p = agt_targets_find(&((struct attach_run *)ctx)->tg, pid);

	return p ? &p->info : NULL;
}

static void env_target_exit(void *ctx, uint32_t pid, uint64_t ts, uint32_t wait_status)
{
	struct attach_run *r = ctx;
	struct agt_proc *p = agt_targets_find(&r->tg, pid);

	if (p)
		agt_target_gone(r, p, ts, 1, wait_status);
}

/* A traced process loaded libraries, or a followed descendant ran exec: look for probe spec
 * objects it maps now (a target's own, or a descendant's on behalf of its target). */
static void env_mapped(void *ctx, uint32_t pid)
{
	struct attach_run *r = ctx;
	struct agt_proc *p = agt_targets_find(&r->tg, pid);

	if (p && !p->gone) {
		p->rescan = 1;
		r->rescan_pending = 1;
		return;
	}
	if (p)
		return;
	for (int i = 0; i < r->ndesc_rescan; i++)
		if (r->desc_rescan[i] == pid)
			return;
	if (r->ndesc_rescan < (int)AGT_ARRAY_SIZE(r->desc_rescan)) {
		r->desc_rescan[r->ndesc_rescan++] = pid;
		r->rescan_pending = 1;
	}
}

/* The child of a process discovery was deciding on (AGT_FORK_PENDING): followed when its parent
 * was taken, forgotten otherwise. 1: followed. */
static int env_pending_fork(void *ctx, uint32_t child, uint32_t parent)
{
	struct attach_run *r = ctx;
	struct agt_proc *p = agt_targets_find(&r->tg, parent);
	uint32_t key = child, kind = AGT_TK_FOLLOWED, now;
	int followed = (p && !p->gone) || agt_agent_root_proc(r->pl.trace.agent, parent);

	if (bpf_map__lookup_elem(r->cap.func->maps.targets, &key, sizeof(key), &now, sizeof(now),
				 0) ||
	    now != AGT_TK_PENDING)
		return followed; /* decided since (it exec'd and was matched), or gone */
	if (followed)
		bpf_map__update_elem(r->cap.func->maps.targets, &key, sizeof(key), &kind,
				     sizeof(kind), 0);
	else
		bpf_map__delete_elem(r->cap.func->maps.targets, &key, sizeof(key), 0);
	return followed;
}

static void env_discover(void *ctx, uint32_t pid, const char *filename)
{
	agt_targets_on_exec(ctx, pid, filename);
}

/* A followed descendant that execs its target's program again (an agent CLI relaunching itself
 * with other runtime flags): probed as a target of its own, caught at exec (its libraries are
 * attached as it maps them), while what it does stays its target's (decode.c). */
static void env_relaunch(void *ctx, uint32_t pid)
{
	struct attach_run *r = ctx;
	struct agt_proc *proc;
	char err[512], msg[1600], tls[1200];
	uint32_t key = pid, one = 1;
	int t;

	if (r->tg.live >= r->o.max_targets || !(proc = agt_target_push(r)))
		return;
	if (agt_proc_open((int)pid, proc, err, sizeof(err))) {
		agt_dbg("relaunch PID %u: %s", pid, err);
		free(proc);
		return;
	}
	proc->discovered = 1;
	t = r->tg.n++;
	r->tg.cache[pid & 255] = proc;
	r->tg.live++;
	bpf_map__update_elem(r->cap.func->maps.targets, &key, sizeof(key), &one, sizeof(one), 0);
	agt_target_attach(r, t);
	agt_target_watch(r, t);
	agt_probes_describe(r, proc, tls, sizeof(tls), 1);
	snprintf(msg, sizeof(msg), "%d probe links; %s%sa relaunch of its target's program",
		 proc->nlinks, tls, tls[0] ? "; " : "");
	agt_trace_state(&r->pl.trace, &proc->info, agt_mono_ns(), "attach", msg, 0, 0);
	agt_probes_describe(r, proc, tls, sizeof(tls), 0);
	agt_info("PID %u (%s) relaunches its target: %d probe links%s%s", pid, proc->info.comm,
		 proc->nlinks, tls[0] ? "; " : "", tls);
}

/* A traced process forked: a child of a process with TLS located in its executable (probed
 * per process, for that PID) gets the same probes, as a descendant; its other probes are on
 * files, shared already. The child runs meanwhile: its first calls may come before. */
static void env_forked(void *ctx, uint32_t child, uint32_t parent)
{
	struct attach_run *r = ctx;

	for (int i = 0; i < r->nobjs; i++)
		if (r->objs[i]->pid == (int)parent && r->objs[i]->nlinks && r->objs[i]->spec &&
		    r->objs[i]->spec->locate) {
			env_mapped(ctx, child);
			return;
		}
}

struct agt_decoder_env agt_targets_env(struct attach_run *r)
{
	return (struct agt_decoder_env){
	    env_probe, env_target,   env_target_exit,  env_mapped, r->nsel ? env_discover : NULL,
	    r,	       env_relaunch, env_pending_fork, agt_exe_stopped, env_forked};
}

/* Attach every spec to target t; 0, or -errno (after one sentence) for a target given by PID
 * that nothing applies to (a discovered one is kept for its process and TCP events). */
int agt_target_attach(struct attach_run *r, int t)
{
	struct agt_proc *proc = r->tg.v[t];
	int rc = 0, applied = 0, soft = r->auto_mode || proc->discovered;

	agt_maps_hold(proc->info.pid); /* one read of its maps for every spec's targets */
	for (int s = 0; s < r->nspecs && rc >= 0; s++) {
		/* runtime metrics apply where they can (and then something is traced) */
		rc = agt_attach_spec(r, t, &r->specs[s], soft || r->specs[s].runtime);
		applied += rc == 0;
	}
	if (rc == AGT_SPEC_SKIPPED || rc == AGT_SPEC_AHEAD)
		rc = 0;
	agt_attach_loader(r, proc, proc); /* libraries it loads later */
	agt_maps_release(proc->info.pid);
	if (rc || applied)
		return rc;
	if (proc->discovered)
		agt_info("PID %d (%s) matched a selector but maps nothing the probe specs name%s",
			 proc->info.pid, proc->info.comm,
			 r->o.tcp ? ": capturing its plaintext HTTP over TCP and its processes only"
				  : ": following its processes only");
	else if (r->auto_mode && !r->o.tcp && !r->o.files) {
		agt_err(
		    "PID %d (%s) maps nothing agtrace's built-in probes know (a TLS library "
		    "such as libssl.so*, or SSL_write in its executable); give --probes FILE or "
		    "--uprobe PATH:SYMBOL, or drop --no-tcp",
		    proc->info.pid, proc->info.comm);
		return -ENOENT;
	} else if (r->auto_mode) {
		agt_info("PID %d (%s) maps no TLS library agtrace knows: capturing %s only",
			 proc->info.pid, proc->info.comm,
			 r->o.tcp && r->o.files ? "plaintext HTTP over TCP and file lineage"
			 : r->o.tcp		? "plaintext HTTP over TCP"
						: "file lineage");
	}
	return 0;
}

void agt_target_watch(struct attach_run *r, int t)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = r->tg.v[t]};

	if (r->ep >= 0 && r->tg.v[t]->pidfd >= 0)
		epoll_ctl(r->ep, EPOLL_CTL_ADD, r->tg.v[t]->pidfd, &ev);
}

/* Targets that are gone let go of their probed objects (whose links go once nobody holds them
 * for --forget-after: agt_probes_reap) and of their pidfds. */
void agt_targets_detach_gone(struct attach_run *r)
{
	uint64_t now = agt_mono_ns();

	for (int t = 0; t < r->tg.n; t++) {
		struct agt_proc *p = r->tg.v[t];

		if (!p->gone)
			continue;
		if (p->nuses)
			agt_probes_release(r, p, now);
		if (p->pidfd >= 0) {
			if (r->ep >= 0)
				epoll_ctl(r->ep, EPOLL_CTL_DEL, p->pidfd, NULL);
			agt_proc_close(p);
		}
	}
	r->live_seen = r->tg.live;
}

/* Free targets gone for longer than --forget-after, once nothing can refer to them: their
 * connections, MCP calls and conversations are ended first (a followed child may have kept one
 * open after the target exited). Bounds the memory of a long discovery run. */
void agt_targets_forget(struct attach_run *r, uint64_t now)
{
	uint64_t grace = (uint64_t)r->o.forget_after * 1000000000ull;
	int w = 0, freed = 0;

	for (int t = 0; t < r->tg.n; t++) {
		struct agt_proc *p = r->tg.v[t];

		if (!p->gone || p->nuses || p->pidfd >= 0 || now - p->gone_ns < grace) {
			r->tg.v[w++] = p;
			continue;
		}
		freed++; /* exporters keep no pointer to it: the tree holds rendered lines */
		agt_pipeline_proc_forget(&r->pl, &p->info, now);
		free(p);
	}
	r->tg.n = w;
	r->forgotten += freed;
	if (freed)
		memset(r->tg.cache, 0, sizeof(r->tg.cache));
}

static int is_target(struct attach_run *r, int pid)
{
	struct agt_proc *p = agt_targets_find(&r->tg, (uint32_t)pid);
	uint32_t key = (uint32_t)pid, v;

	if (p && !p->gone)
		return 1;
	/* A followed descendant of a target is traced as part of it already; a pending process
	 * (caught at exec, not decided on) is what is being decided. */
	return bpf_map__lookup_elem(r->cap.func->maps.targets, &key, sizeof(key), &v, sizeof(v),
				    0) == 0 &&
	       v != AGT_TK_PENDING;
}

/* Discovery turned pid away (or could not look at it): it is no longer pending. */
static void not_pending(struct attach_run *r, int pid)
{
	uint32_t key = (uint32_t)pid, v;

	if (!bpf_map__lookup_elem(r->cap.func->maps.targets, &key, sizeof(key), &v, sizeof(v), 0) &&
	    v == AGT_TK_PENDING)
		bpf_map__delete_elem(r->cap.func->maps.targets, &key, sizeof(key), 0);
}

/* A process in a pod not listed yet: remembered (once) to be matched again when it is; 1 when
 * it is (it stays pending in the kernel meanwhile: captured from its first instruction). */
static int pod_wait(struct attach_run *r, const struct agt_proc *proc)
{
	for (int i = 0; i < r->npod_wait; i++)
		if (r->pod_wait[i].pid == proc->info.pid &&
		    r->pod_wait[i].start_ticks == proc->info.start_ticks)
			return 1;
	if (r->npod_wait == (int)AGT_ARRAY_SIZE(r->pod_wait)) {
		r->pod_wait_full++;
		return 0;
	}
	r->pod_wait[r->npod_wait].pid = proc->info.pid;
	r->pod_wait[r->npod_wait++].start_ticks = proc->info.start_ticks;
	return 1;
}

/* Match a process against the selectors and, when one holds, make it a target: probes, the
 * kernel's target table, its pidfd in the event loop, and an attach state_change span. */
static void discover_pid(struct attach_run *r, int pid, const char *why)
{
	struct agt_proc *proc;
	char cmdline[4096], err[512], msg[1600], tls[1200];
	int t, hit = -1, waiting = 0;

	if (pid == getpid() || is_target(r, pid)) {
		agt_dbg("exec of PID %d (%s): a target already", pid, why);
		return;
	}
	if (!(proc = agt_target_push(r))) {
		not_pending(r, pid);
		return;
	}
	if (agt_proc_open(pid, proc, err, sizeof(err)) ||
	    agt_read_cmdline(pid, cmdline, sizeof(cmdline))) {
		agt_dbg("exec of PID %d (%s): %s", pid, why, err);
		r->exec_gone += !strcmp(why, "exec");
		agt_proc_close(proc);
		free(proc); /* gone already, or a kernel thread: nothing to trace */
		not_pending(r, pid);
		return;
	}
	for (int i = 0; i < r->nsel; i++)
		if (agt_selector_needs_k8s(&r->sel[i])) { /* pod metadata, asked for once */
			if (!agt_k8s_lookup(r->k8s, &proc->info.id) && proc->info.id.pod_uid[0] && r->k8s)
				waiting = pod_wait(r, proc);
			break;
		}
	for (int i = 0; i < r->nsel && hit < 0; i++)
		if (agt_selector_match(&r->sel[i], &proc->info, cmdline, r->k8s))
			hit = i;
	if (hit >= 0 && agt_selector_is_own_lineage(pid)) {
		agt_dbg("PID %d (%s) matches \"%s\" but is agtrace or its ancestor: not traced", pid,
			proc->info.comm, r->sel[hit].text);
		hit = -1;
	}
	if (hit < 0) {
		agt_proc_close(proc);
		free(proc);
		if (!waiting) /* a process waiting for its pod's listing stays pending */
			not_pending(r, pid);
		return;
	}
	if (r->tg.live >= r->o.max_targets) {
		r->discover_limited++;
		agt_warn("PID %d (%s) matches \"%s\" but %ld targets are traced already "
			 "(--max-targets); not traced",
			 pid, proc->info.comm, r->sel[hit].text, r->o.max_targets);
		agt_proc_close(proc);
		free(proc);
		not_pending(r, pid);
		return;
	}
	agt_k8s_lookup(r->k8s, &proc->info.id);
	proc->discovered = 1;
	t = r->tg.n++;
	r->tg.cache[pid & 255] = proc; /* the newest target with this PID */
	r->tg.live++;
	{
		uint32_t key = (uint32_t)pid, one = AGT_TK_TARGET;

		bpf_map__update_elem(r->cap.func->maps.targets, &key, sizeof(key), &one, sizeof(one),
				     0);
	}
	if (agt_target_attach(r, t)) {
		r->discover_failed++;
		agt_warn("PID %d (%s): attaching its probes failed; its process and TCP events "
			 "are still traced",
			 pid, proc->info.comm);
	}
	agt_target_watch(r, t);
	r->discovered++;
	agt_probes_describe(r, proc, tls, sizeof(tls), 1);
	snprintf(msg, sizeof(msg), "%d probe links; %s%sdiscovered (%s) by selector \"%s\"",
		 proc->nlinks, tls, tls[0] ? "; " : "", why, r->sel[hit].text);
	agt_trace_state(&r->pl.trace, &proc->info, agt_mono_ns(), "attach", msg, 0, 0);
	agt_probes_describe(r, proc, tls, sizeof(tls), 0);
	agt_info("discovered PID %d (%s%s%s) by \"%s\": %d probe links%s%s", pid, proc->info.comm,
		 proc->info.id.pod_name[0] ? " in pod " : "", proc->info.id.pod_name, r->sel[hit].text,
		 proc->nlinks, tls[0] ? "; " : "", tls);
	/* A process that exited while being attached: its pidfd is readable already, and the
	 * event loop notices it at the next wait. */
}

/* Targets that loaded libraries (the dynamic loader of a process caught at exec, or dlopen and
 * import later): attach the specs to every spec object they map now; then the followed
 * descendants that exec'd or loaded libraries, on behalf of their targets. */
void agt_targets_rescan(struct attach_run *r)
{
	r->rescan_pending = 0;
	for (int t = 0; t < r->tg.n; t++) {
		struct agt_proc *proc = r->tg.v[t];
		int before = proc->nlinks;
		char host[4096 + 64], mapped[4096], err[768], what[4096] = "";

		if (!proc->rescan || proc->gone)
			continue;
		proc->rescan = 0;
		for (int s = 0; s < r->nspecs; s++)
			for (int ti = 0; ti < r->specs[s].ntargets; ti++) {
				int was = proc->nlinks;

				if (agt_proc_resolve(proc, r->specs[s].targets[ti], host,
						     sizeof(host), mapped, sizeof(mapped), err,
						     sizeof(err)))
					continue;
				if (agt_attach_object(r, proc, proc, &r->specs[s], 1, host, mapped,
						      0) < 0)
					agt_warn("PID %d (%s): probes of %s on %s: some failed to "
						 "attach",
						 proc->info.pid, proc->info.comm, r->specs[s].name, mapped);
				else if (proc->nlinks > was && !what[0])
					snprintf(what, sizeof(what), "%s", mapped);
			}
		if (proc->nlinks > before) {
			char msg[4200];

			snprintf(msg, sizeof(msg), "%d more probe links: %s loaded",
				 proc->nlinks - before, what);
			agt_trace_state(&r->pl.trace, &proc->info, agt_mono_ns(), "attach", msg, 0, 0);
			agt_info("PID %d (%s): %s", proc->info.pid, proc->info.comm, msg);
		}
	}
	for (int i = 0; i < r->ndesc_rescan; i++)
		agt_attach_descendant(r, r->desc_rescan[i]);
	r->ndesc_rescan = 0;
}

void agt_targets_on_exec(void *ctx, uint32_t pid, const char *filename)
{
	(void)filename;
	discover_pid(ctx, (int)pid, "exec");
}

/* Targets in a pod whose name was not known yet (the API server did not answer, or listed the
 * pod late): asked again, at most as often as the pod list cache allows. */
void agt_targets_refresh_pods(struct attach_run *r)
{
	/* Processes waiting for their pod to be listed: matched again (discover_pid asks the pod
	 * list, at most every few seconds). One still unlisted is kept waiting; one gone, reused,
	 * traced or decided is dropped. */
	int n = r->npod_wait;

	r->npod_wait = 0;
	for (int i = 0; i < n; i++) /* one gone meanwhile fails to open there, and is dropped */
		discover_pid(r, r->pod_wait[i].pid, "pod listed");
	/* (a waiting process was re-added by discover_pid if its pod is still unknown) */

	for (int t = 0; t < r->tg.n && r->k8s; t++) {
		struct agt_proc *p = r->tg.v[t];

		if (!p->gone && p->info.id.pod_uid[0] && !p->info.id.pod_name[0] &&
		    agt_k8s_lookup(r->k8s, &p->info.id))
			agt_info("PID %d (%s) is in pod %s/%s", p->info.pid, p->info.comm,
				 p->info.id.pod_namespace, p->info.id.pod_name);
	}
}

/* The processes running when agtrace starts. */
void agt_targets_scan_running(struct attach_run *r)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (isdigit((unsigned char)de->d_name[0]))
			discover_pid(r, atoi(de->d_name), "running");
	closedir(d);
}

/* A selector's comm condition as the kernel can test it: a literal, or a prefix followed by one
 * '*' at the end. 1 with *pat filled, 0 for a literal that no comm can be (over 15 bytes: the
 * kernel's comm is no longer), -1 when the kernel cannot test it (other wildcards). */
static int comm_pattern(const char *glob, struct agt_comm_pat *pat)
{
	size_t n = strlen(glob);
	int prefix = n && glob[n - 1] == '*';

	if (prefix)
		n--;
	if (strcspn(glob, "*?[]\\") < n)
		return -1;
	if (n > 15)
		return 0;
	memset(pat, 0, sizeof(*pat));
	memcpy(pat->s, glob, n);
	pat->len = (uint8_t)n;
	pat->prefix = (uint8_t)prefix;
	return 1;
}

void agt_discovery_prefilter(struct attach_run *r)
{
	struct agt_comm_pat pats[AGT_COMM_PATS];
	uint32_t n = 0;

	if (!r->nsel || !r->cap.proc || !r->cap.proc->bss)
		return;
	for (int i = 0; i < r->nsel; i++) {
		int rc;

		if (!r->sel[i].comm || n == AGT_COMM_PATS ||
		    (rc = comm_pattern(r->sel[i].comm, &pats[n])) < 0)
			return; /* some selector may take any comm: every exec is reported */
		n += (uint32_t)rc;
	}
	for (uint32_t i = 0; i < n; i++)
		if (bpf_map__update_elem(r->cap.proc->maps.comm_pats, &i, sizeof(i), &pats[i],
					 sizeof(pats[i]), BPF_ANY))
			return;
	/* Every selector names a comm no process can have: one pattern no comm matches. */
	r->cap.proc->bss->ncomm_pats = n ? n : 1;
	if (!n) {
		struct agt_comm_pat none = {.len = 16};
		uint32_t zero = 0;

		bpf_map__update_elem(r->cap.proc->maps.comm_pats, &zero, sizeof(zero), &none,
				     sizeof(none), BPF_ANY);
	}
	agt_dbg("discovery: the kernel reports only execs whose comm %d pattern%s can match", n,
		n == 1 ? "" : "s");
}

