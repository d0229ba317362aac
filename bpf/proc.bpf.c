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
	__u32 *kind = bpf_map_lookup_elem(&targets, &tgid);
	int group_dead = BPF_CORE_READ(task, signal, live.counter) == 0;

	if (!kind)
		return 0;
	if (group_dead)
		agt_session_forget(tgid);
	/* Gone: stop following the tgid, so a later process given the same PID is not traced
	 * by mistake (the loader re-adds a PID it attaches again). */
	if (group_dead)
		bpf_map_delete_elem(&targets, &tgid);
	e = agt_reserve(sizeof(*e), AGT_EV_PROC_EXIT, 0, tgid, BPF_CORE_READ(task, pid));
	if (!e)
		return 0;
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->group_dead = group_dead;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid), ctgid = BPF_CORE_READ(child, tgid), two = 2;
	struct agt_proc_fork *e;

	/* A new thread of a target is followed already; a new process joins the table. */
	if (ctgid == ptgid || !bpf_map_lookup_elem(&targets, &ptgid))
		return 0;
	bpf_map_update_elem(&targets, &ctgid, &two, BPF_ANY);
	if (!agt_sample(AGT_SS_PROC, ptgid))
		return 0; /* still followed (its payloads obey their own sampling), not reported */
	e = agt_reserve(sizeof(*e), AGT_EV_PROC_FORK, 0, ctgid, BPF_CORE_READ(child, pid));
	if (!e)
		return 0;
	e->ppid = ptgid;
	e->ptid = BPF_CORE_READ(parent, pid);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* Set by the loader when selectors are given: report execs of processes that are not targets,
 * so new agent processes are found as they start. Not sampled (discovery must not miss one);
 * the reader is woken at once to attach before the process gets far. */
const volatile __u32 discover = 0;

static __always_inline void discover_exec(struct task_struct *p, struct linux_binprm *bprm)
{
	struct agt_proc_discover *e;

	e = agt_reserve(sizeof(*e), AGT_EV_PROC_DISCOVER, 0, BPF_CORE_READ(p, tgid),
			BPF_CORE_READ(p, pid));
	if (!e)
		return;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	struct agt_proc_exec *e;
	unsigned long start, end;
	__u32 n;

	if (!bpf_map_lookup_elem(&targets, &tgid)) {
		if (discover)
			discover_exec(p, bprm);
		return 0;
	}
	if (!agt_session_sampled(AGT_SS_PROC, tgid))
		return 0;
	e = agt_reserve(sizeof(*e), AGT_EV_PROC_EXEC, 0, tgid, BPF_CORE_READ(p, pid));
	if (!e)
		return 0;
	e->pad = 0;
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
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* Libraries loaded after attach (agt_map_exec in common.bpf.h). With TCP capture on, the
 * socket program's sys_exit does this too, and the loader leaves this one detached: one program
 * per system call instead of two. */
SEC("tp_btf/sys_exit")
int BPF_PROG(proc_sys_exit, struct pt_regs *regs, long ret)
{
	/* Every system call on the node passes here: a direct load and a compare for most. */
	if (AGT_SYSCALL_NR(regs) == AGT_NR_MMAP)
		agt_map_exec(regs, ret);
	return 0;
}
