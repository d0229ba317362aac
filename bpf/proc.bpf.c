// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Process life cycle of target processes and their descendants: fork (children are followed
 * from then on), exec (what command ran) and exit (thread or whole process). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "agtrace.h"
#include "common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct agt_proc_exit *e;
	__u32 kind = agt_target_kind(tgid);
	int group_dead = BPF_CORE_READ(task, signal, live.counter) == 0;

	if (!kind)
		return 0;
	if (group_dead)
		agt_session_forget(tgid);
	/* Gone: stop following the tgid, so a later process given the same PID is not traced
	 * by mistake (the loader re-adds a PID it attaches again). */
	if (group_dead)
		bpf_map_delete_elem(&targets, &tgid);
	/* A process discovery was still deciding on, or had turned away: nobody's business. */
	if (kind == AGT_TK_PENDING)
		return 0;
	e = agt_reserve(sizeof(*e), AGT_EV_PROC_EXIT, 0, tgid, BPF_CORE_READ(task, pid));
	if (!e)
		return 0;
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->group_dead = group_dead;
	agt_submit(e);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid), ctgid = BPF_CORE_READ(child, tgid);
	__u32 kind, ckind = AGT_TK_FOLLOWED;
	struct agt_proc_fork *e;

	/* A new thread of a traced process is traced already; a new process joins the table. */
	if (ctgid == ptgid || !(kind = agt_target_kind(ptgid)))
		return 0;
	/* The child of a process discovery is still deciding on waits with it: always reported,
	 * so the loader can follow or forget it once it has decided. */
	if (kind == AGT_TK_PENDING)
		ckind = AGT_TK_PENDING;
	bpf_map_update_elem(&targets, &ctgid, &ckind, BPF_ANY);
	if (kind != AGT_TK_PENDING && !agt_sample(AGT_SS_PROC, ptgid))
		return 0; /* still followed (its payloads obey their own sampling), not reported */
	e = agt_reserve(sizeof(*e), AGT_EV_PROC_FORK, 0, ctgid, BPF_CORE_READ(child, pid));
	if (!e)
		return 0;
	e->ppid = ptgid;
	e->ptid = BPF_CORE_READ(parent, pid);
	e->flags = kind == AGT_TK_PENDING ? AGT_FORK_PENDING : 0;
	e->pad = 0;
	agt_submit(e);
	return 0;
}

/* Set by the loader when selectors are given: report execs of processes that are not targets,
 * so new agent processes are found as they start. Not sampled (discovery must not miss one);
 * the reader is woken at once. Until it has matched the process against the selectors, the
 * process is pending: traced from its first instruction (its TLS calls on files already probed
 * are captured), and forgotten if no selector takes it. */
const volatile __u32 discover = 0;

/* Executables userspace has looked at: probed (probes on the file exist, for every process) or
 * known to need nothing. Written by userspace only. A traced or pending process that execs a file
 * not in it is stopped before its first instruction (SIGSTOP, sent to it from here) until
 * userspace has probed the file: TLS that lives in the executable itself (Go crypto/tls,
 * statically linked OpenSSL or BoringSSL) is captured from the first call. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct agt_exe_key);
	__type(value, __u32);
} known_exes SEC(".maps");

/* Set by userspace once its event loop runs (it resumes what is stopped), cleared before it
 * stops: 0, never stop. Some specs are per executable ("$exe" or located TLS) or nothing. */
__u32 stop_unknown_exes = 0;

#define AGT_SIGSTOP 19

/* The new executable of an exec; 1 when it is not known yet (the process is to be stopped). */
static __always_inline int exe_unknown(struct linux_binprm *bprm, struct agt_exe_key *k)
{
	struct inode *ino = BPF_CORE_READ(bprm, file, f_inode);

	k->dev = BPF_CORE_READ(ino, i_sb, s_dev);
	k->ino = BPF_CORE_READ(ino, i_ino);
	return stop_unknown_exes && !bpf_map_lookup_elem(&known_exes, k);
}

/* Processes stopped at exec and not resumed yet (tgid -> 1): the loader deletes each as it
 * resumes it; should the loader die first (SIGKILL), its guard resumes what is left here. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} exec_stopped SEC(".maps");

/* Stop the current process at exec (its record is reserved, so userspace will hear of it and
 * resume it): the flags to report. */
static __always_inline __u32 exec_stop(int unknown, __u32 tgid)
{
	__u32 one = 1;

	if (!unknown || bpf_send_signal(AGT_SIGSTOP))
		return 0;
	bpf_map_update_elem(&exec_stopped, &tgid, &one, BPF_ANY);
	return AGT_EXEC_STOPPED;
}

/* What the new comm of an exec can be for some selector to take it: set by the loader when
 * every selector names the comm as a literal or as a prefix followed by '*' (ncomm_pats of
 * them); 0 patterns, every exec is reported. An exec no pattern matches is nobody's business:
 * neither reported nor pending, so an untraced process's exec costs only this comparison. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AGT_COMM_PATS);
	__type(key, __u32);
	__type(value, struct agt_comm_pat);
} comm_pats SEC(".maps");

__u32 ncomm_pats = 0;

static __always_inline int comm_wanted(struct task_struct *p)
{
	char comm[16];

	if (!ncomm_pats)
		return 1;
	BPF_CORE_READ_INTO(&comm, p, comm);
	for (__u32 i = 0; i < AGT_COMM_PATS && i < ncomm_pats; i++) {
		struct agt_comm_pat *c = bpf_map_lookup_elem(&comm_pats, &i);
		int same = 1;

		if (!c)
			break;
#pragma unroll
		for (int k = 0; k < 16; k++)
			if (k < c->len && comm[k] != c->s[k])
				same = 0;
		if (same && (c->prefix || (c->len < 16 && comm[c->len & 15] == 0)))
			return 1;
	}
	return 0;
}

static __always_inline void discover_exec(struct task_struct *p, struct linux_binprm *bprm)
{
	struct agt_proc_discover *e;
	struct agt_exe_key k;
	int unknown = exe_unknown(bprm, &k);

	e = agt_reserve(sizeof(*e), AGT_EV_PROC_DISCOVER, 0, BPF_CORE_READ(p, tgid),
			BPF_CORE_READ(p, pid));
	if (!e)
		return;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	e->exe = k;
	e->pad = 0;
	e->flags = exec_stop(unknown, BPF_CORE_READ(p, tgid));
	/* A wakeup from here costs the exec'ing process tens of microseconds on a VM (an
	 * interrupt to another CPU): paid at once only when the process waits for the reader
	 * (stopped) or its comm passed the selectors' patterns (a likely agent). Otherwise the
	 * reader's next poll (AGT_POLL_DISCOVER_MS with selectors) finds the record: the process is
	 * pending meanwhile, traced from its first instruction. */
	bpf_ringbuf_submit(e, (e->flags & AGT_EXEC_STOPPED) || ncomm_pats ? BPF_RB_FORCE_WAKEUP
									 : BPF_RB_NO_WAKEUP);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(p, tgid), kind = agt_target_kind(tgid);
	struct agt_proc_exec *e;
	struct agt_exe_key k;
	unsigned long start, end;
	__u32 n, flags = 0;
	int unknown;

	if (!kind || kind == AGT_TK_PENDING) {
		if (discover && (kind || comm_wanted(p))) {
			__u32 pending = AGT_TK_PENDING;

			if (!kind)
				bpf_map_update_elem(&targets, &tgid, &pending, BPF_NOEXIST);
			discover_exec(p, bprm);
		}
		return 0;
	}
	unknown = exe_unknown(bprm, &k);
	/* A process to stop is reported whatever sampling says: it must be resumed. */
	if (!agt_session_sampled(AGT_SS_PROC, tgid)) {
		if (!unknown)
			return 0;
		flags = AGT_EXEC_UNSAMPLED;
	}
	e = agt_reserve(sizeof(*e), AGT_EV_PROC_EXEC, 0, tgid, BPF_CORE_READ(p, pid));
	if (!e)
		return 0;
	e->exe = k;
	e->flags = flags | exec_stop(unknown, tgid);
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	/* The new image's arguments are in place at this point: mm->arg_start .. arg_end. */
	start = BPF_CORE_READ(p, mm, arg_start);
	end = BPF_CORE_READ(p, mm, arg_end);
	n = end > start ? end - start : 0;
	if (n > AGT_ARGV_LEN - 1)
		n = AGT_ARGV_LEN - 1;
	n &= AGT_ARGV_LEN - 1; /* a bound the verifier keeps through register copies */
	e->argv_len = 0;
	if (n && bpf_probe_read_user(e->argv, n, (void *)start) == 0)
		e->argv_len = n;
	bpf_ringbuf_submit(e, e->flags & AGT_EXEC_STOPPED ? BPF_RB_FORCE_WAKEUP : agt_wake_flags());
	return 0;
}

/* Libraries loaded: a uprobe on the dynamic loader's _dl_debug_state, the function it calls for
 * debuggers whenever its list of objects changes (at start-up, once the program's libraries are
 * mapped, and before and after each dlopen). Attached once per loader file by the loader, so
 * every process using that dynamic loader passes here, a few times in its life; a traced one is
 * reported and the loader looks for probe spec objects it maps now. No system call tracepoint is
 * needed for it: those would cost every system call on the node. */
SEC("uprobe")
int BPF_KPROBE(ld_debug_state)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct agt_map_exec *e;

	if (!agt_traced(tgid))
		return 0;
	e = agt_reserve(sizeof(*e), AGT_EV_MAP_EXEC, 0, tgid, (__u32)id);
	if (e)
		bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return 0;
}
