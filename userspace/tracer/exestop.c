/* Processes the kernel stopped at exec (bpf/proc.bpf.c, known_exes): a traced or pending process
 * that runs an executable agtrace has not looked at yet gets SIGSTOP before its first
 * instruction; here the file is looked at (its per-file probes attached: Go crypto/tls, the
 * symbol specs naming "$exe"; for a followed descendant, its own located TLS probes), marked
 * known in the kernel (not a file with located TLS: probed per process), and the process resumed
 * with SIGCONT. Every stopped process is resumed, whatever happened: errors, a full map, the end
 * of the run (and, should agtrace be killed, its guard). Later execs of a known file are not
 * stopped. */
#define _GNU_SOURCE
#include "tracer/run.h"
#include "base/log.h"
#include "base/util.h"
#include "capture/procstat.h"
#include "proc.skel.h"
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Is pid stopped (by a signal)? */
static int is_stopped(uint32_t pid)
{
	int ppid;
	char state;

	return !agt_proc_state((int)pid, &state, &ppid) && state == 'T';
}

/* The guard: a process of its own (agtrace run again as `agtrace __guard RFD MFD`, so it
 * shares none of agtrace's memory: a forked copy would make every page agtrace writes later a
 * copy-on-write fault and a TLB shootdown) that holds the map of stopped processes and the read
 * end of a pipe only agtrace writes to. When agtrace is gone however it went (SIGKILL, a crash:
 * its own loop and cleanup never ran), the pipe ends; every process still listed and still
 * stopped is resumed. */
int agt_guard_main(int rfd, int mfd)
{
	uint32_t key, next;
	int more;
	char c;

	prctl(PR_SET_NAME, "agtrace-guard");
	if (rfd < 3 || mfd < 3 || rfd == mfd)
		return 2;
	close_range(0, 2, 0); /* whoever reads agtrace's output sees its end when agtrace ends */
	signal(SIGINT, SIG_IGN); /* a terminal's ^C reaches agtrace, which then resumes all */
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	while (read(rfd, &c, 1) != 0 && errno == EINTR)
		;
	for (more = !bpf_map_get_next_key(mfd, NULL, &next); more;) {
		key = next;
		more = !bpf_map_get_next_key(mfd, &key, &next);
		if (is_stopped(key))
			kill((pid_t)key, SIGCONT);
	}
	return 0;
}

/* Start the guard once, when stopping at exec is first turned on. */
static void guard_start(struct attach_run *r)
{
	int p[2], mfd = bpf_map__fd(r->cap.proc->maps.exec_stopped);
	char rs[16], ms[16];
	char *argv[] = {"agtrace-guard", "__guard", rs, ms, NULL};
	pid_t pid;

	if (r->guard_fd > 0 || mfd < 0 || pipe2(p, O_CLOEXEC))
		return;
	snprintf(rs, sizeof(rs), "%d", p[0]);
	snprintf(ms, sizeof(ms), "%d", mfd);
	if ((pid = vfork()) == 0) { /* its own descriptor table: only these two go along */
		if (fcntl(p[0], F_SETFD, 0) == 0 && fcntl(mfd, F_SETFD, 0) == 0)
			execve("/proc/self/exe", argv, environ);
		_exit(127);
	}
	close(p[0]);
	if (pid < 0) {
		agt_warn("cannot start the guard that resumes processes stopped at exec should "
			 "agtrace be killed (%s)",
			 strerror(errno));
		close(p[1]);
		return;
	}
	r->guard_fd = p[1]; /* closed by agtrace's exit, whatever it is */
}

void agt_exestop_enable(struct attach_run *r, int on)
{
	if (!r->cap.proc || !r->cap.proc->bss)
		return;
	if (on)
		guard_start(r);
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
	bpf_map__delete_elem(r->cap.proc->maps.exec_stopped, &pid, sizeof(pid), 0);
	if (kill((pid_t)pid, SIGCONT) == 0)
		r->exec_resumed++;
	else
		r->exec_resume_gone++; /* killed while stopped: nothing to resume */
	agt_dbg("PID %u: resumed after %.1f ms at exec", pid, (agt_mono_ns() - t0) / 1e6);
}
