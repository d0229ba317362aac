// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Process life cycle of target processes: task exit (thread or whole process). */
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

	if (!bpf_map_lookup_elem(&targets, &tgid))
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		agt_count_drop(AGT_KDROP_RINGBUF_FULL);
		return 0;
	}
	e->h.kind = AGT_EV_PROC_EXIT;
	e->h.probe_id = 0;
	e->h.pid = tgid;
	e->h.tid = BPF_CORE_READ(task, pid);
	e->h.ts_ns = bpf_ktime_get_ns();
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->group_dead = BPF_CORE_READ(task, signal, live.counter) == 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
