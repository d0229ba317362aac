/* Processes the kernel stopped at exec (bpf/proc.bpf.c, known_exes): a traced or pending process
 * that runs an executable agtrace has not looked at yet gets SIGSTOP before its first
 * instruction; here the file is looked at (its per-file probes attached: Go crypto/tls, the
 * symbol specs naming "$exe"; for a followed descendant, its own located TLS probes), marked
 * known in the kernel (not a file with located TLS: probed per process), and the process resumed
 * with SIGCONT. Every stopped process is resumed, whatever happened: errors, a full map, the end
 * of the run. Later execs of a known file are not stopped. */
#include "tracer/run.h"
#include "base/log.h"
#include "base/util.h"
#include "proc.skel.h"
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void agt_exestop_enable(struct attach_run *r, int on)
{
	if (!r->cap.proc || !r->cap.proc->bss)
		return;
	r->cap.proc->bss->stop_unknown_exes = on ? 1 : 0;
	r->exestop = on;
	r->exestop_ever |= on;
	if (!on)
		r->stopping = 1;
}

static void mark_known(struct attach_run *r, const struct stat *st, const struct agt_exe_key *k)
{
	uint32_t one = 1;

	for (int i = 0; i < r->nknown; i++)
		if (!memcmp(&r->known[i].k, k, sizeof(*k)))
			return;
	if (r->nknown == r->known_cap) {
		int cap = r->known_cap ? 2 * r->known_cap : 64;
		struct agt_known_exe *v = realloc(r->known, cap * sizeof(*v));

		if (!v) {
			r->known_full++;
			return;
		}
		r->known = v;
		r->known_cap = cap;
	}
	if (bpf_map__update_elem(r->cap.proc->maps.known_exes, k, sizeof(*k), &one, sizeof(one),
				 BPF_ANY)) {
		r->known_full++; /* the map is full: this file is stopped at each exec */
		return;
	}
	r->known[r->nknown].dev = st->st_dev;
	r->known[r->nknown].ino = st->st_ino;
	r->known[r->nknown++].k = *k;
}

void agt_exe_forget(struct attach_run *r, uint64_t dev, uint64_t ino)
{
	for (int i = 0; i < r->nknown;) {
		if (r->known[i].dev != dev || r->known[i].ino != ino) {
			i++;
			continue;
		}
		if (r->cap.proc)
			bpf_map__delete_elem(r->cap.proc->maps.known_exes, &r->known[i].k,
					     sizeof(r->known[i].k), 0);
		r->known[i] = r->known[--r->nknown];
	}
}

void agt_exe_stopped(void *ctx, uint32_t pid, const struct agt_exe_key *exe)
{
	struct attach_run *r = ctx;
	uint64_t t0 = agt_mono_ns();
	struct stat st;
	int rc = 0;

	r->exec_stops++;
	if (!r->stopping && (rc = agt_exe_examine(r, pid, &st)) > 0)
		mark_known(r, &st, exe);
	else if (rc < 0 && rc != -ENOENT && rc != -ESRCH)
		agt_dbg("PID %u: its executable could not be looked at (%s); resumed", pid,
			strerror(-rc));
	/* Always: a process agtrace stopped is never left stopped. */
	if (kill((pid_t)pid, SIGCONT) == 0)
		r->exec_resumed++;
	else
		r->exec_resume_gone++; /* killed while stopped: nothing to resume */
	agt_dbg("PID %u: resumed after %.1f ms at exec", pid, (agt_mono_ns() - t0) / 1e6);
}
