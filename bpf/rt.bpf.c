// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Runtime metrics of traced processes: CPython's garbage collections (USDT gc__start/gc__done),
 * Go's GC cycles, stop-the-world pauses, live heap and goroutines (uprobes on the runtime's own
 * functions, found in .symtab or .gopclntab), V8's GC pauses by kind (Node: the GC prologue and
 * epilogue callbacks it calls around every collection) and libuv's time in its poll (the main
 * thread's epoll_wait). Counted here, per process, in rt_stats: nothing goes through the ring
 * buffer, and the loader reads the map when Prometheus scrapes. The attach cookie is the event
 * (enum agt_rt_event); probes are attached per process (targets and their followed
 * descendants), so only they pay, and only processes the loader marked in rt_stats count. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>
#include "agtrace.h"
#include "common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tgid */
	__type(value, struct agt_rt_stats);
} rt_stats SEC(".maps");

/* A collection or poll in progress on a thread: when it began, and its kind. */
struct rt_open {
	__u64 ts;
	__u64 arg;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct rt_open);
} rt_open SEC(".maps");

/* The counters of a process the loader marked (it writes the entry, with the process's
 * runtime, before attaching its probes, and deletes it once the process is retired); NULL for
 * any other process, which is never counted: no entry is made here, so none is left behind. */
static __always_inline struct agt_rt_stats *stats(__u32 tgid)
{
	return bpf_map_lookup_elem(&rt_stats, &tgid);
}

static __always_inline void observe(struct agt_rt_hist *h, __u64 ns)
{
	static const __u64 bounds[AGT_RT_BUCKETS - 1] = AGT_RT_BOUNDS_NS;
	__u32 b = AGT_RT_BUCKETS - 1;

	for (int i = 0; i < AGT_RT_BUCKETS - 1; i++)
		if (ns <= bounds[i]) {
			b = i;
			break;
		}
	__sync_fetch_and_add(&h->bucket[b & (AGT_RT_BUCKETS - 1)], 1);
	__sync_fetch_and_add(&h->sum_ns, ns);
}

static __always_inline void open_now(__u64 id, __u64 arg)
{
	struct rt_open o = {.ts = bpf_ktime_get_ns(), .arg = arg};

	bpf_map_update_elem(&rt_open, &id, &o, BPF_ANY);
}

/* The collection (or poll) this thread began: its duration and arg; 0 when none. */
static __always_inline __u64 close_now(__u64 id, __u64 *arg)
{
	struct rt_open *o = bpf_map_lookup_elem(&rt_open, &id);
	__u64 d;

	if (!o)
		return 0;
	d = bpf_ktime_get_ns() - o->ts;
	*arg = o->arg;
	bpf_map_delete_elem(&rt_open, &id);
	return d ? d : 1;
}

/* V8's GCType bit -> our kind index. */
static __always_inline int node_kind(__u64 type)
{
	for (int i = 0; i < AGT_RT_NODE_KINDS; i++)
		if (type == (1ull << i))
			return i;
	return -1;
}

static __always_inline int on_event(struct pt_regs *ctx, __u64 ev)
{
	__u64 id = bpf_get_current_pid_tgid(), arg = 0, d;
	__u32 tgid = id >> 32;
	struct agt_rt_stats *s;
	int k;

	if (!(s = stats(tgid)))
		return 0;
	switch (ev) {
	case AGT_RT_GO_GC_CYCLE:
		__sync_fetch_and_add(&s->gc[0], 1);
		break;
	case AGT_RT_GO_STW_STOP: /* the world stops for the whole process: one at a time */
		s->stw_start_ns = bpf_ktime_get_ns();
		break;
	case AGT_RT_GO_STW_START:
		if (s->stw_start_ns) {
			observe(&s->pause[0], bpf_ktime_get_ns() - s->stw_start_ns);
			s->stw_start_ns = 0;
		}
		break;
	case AGT_RT_GO_HEAP_LIVE: /* Go's register ABI: the receiver in rax, bytesMarked in rbx */
		s->go_controller = AGT_REG(ctx, ax);
		s->go_heap_live = AGT_REG(ctx, bx);
		break;
	case AGT_RT_GO_G_START:
		__sync_fetch_and_add(&s->go_g_started, 1);
		break;
	case AGT_RT_GO_G_EXIT:
		__sync_fetch_and_add(&s->go_g_exited, 1);
		break;
	case AGT_RT_NODE_GC_START: /* (Heap *this, GCType type, ...) */
		open_now(id, AGT_REG(ctx, si));
		break;
	case AGT_RT_NODE_GC_END:
		d = close_now(id, &arg);
		k = node_kind(arg);
		if (d && k >= 0 && arg == (__u64)AGT_REG(ctx, si)) {
			if (k < AGT_RT_SERIES) {
				__sync_fetch_and_add(&s->gc[k], 1);
				observe(&s->pause[k], d);
			}
		}
		break;
	case AGT_RT_NODE_POLL: /* libuv polls on the main thread */
		if ((__u32)id == tgid)
			open_now(id, 0);
		break;
	case AGT_RT_NODE_POLL_RET:
		if ((__u32)id == tgid && (d = close_now(id, &arg))) {
			__sync_fetch_and_add(&s->loop_idle_ns, d);
			__sync_fetch_and_add(&s->loop_polls, 1);
		}
		break;
	}
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(rt_uprobe)
{
	return on_event(ctx, bpf_get_attach_cookie(ctx));
}

SEC("uretprobe")
int BPF_KPROBE(rt_uretprobe)
{
	return on_event(ctx, bpf_get_attach_cookie(ctx));
}

/* python:gc__start(int generation) */
SEC("usdt")
int BPF_USDT(rt_py_gc_start)
{
	__u64 id = bpf_get_current_pid_tgid();
	long gen = 0;

	if (!stats(id >> 32))
		return 0;
	bpf_usdt_arg(ctx, 0, &gen);
	open_now(id, (__u64)gen);
	return 0;
}

/* python:gc__done(Py_ssize_t collected) */
SEC("usdt")
int BPF_USDT(rt_py_gc_done)
{
	__u64 id = bpf_get_current_pid_tgid(), gen = 0, d = close_now(id, &gen);
	struct agt_rt_stats *s;
	long collected = 0;

	if (!d || gen > 2 || !(s = stats(id >> 32)))
		return 0;
	bpf_usdt_arg(ctx, 0, &collected);
	__sync_fetch_and_add(&s->gc[gen], 1);
	if (collected > 0)
		__sync_fetch_and_add(&s->collected[gen], collected);
	observe(&s->pause[gen], d);
	return 0;
}
