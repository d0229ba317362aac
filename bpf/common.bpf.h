/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Maps and helpers every agtrace BPF object shares. The loader makes all objects use the
 * events ring buffer and drops array of the first one loaded (bpf_map__reuse_fd). */
#ifndef AGT_COMMON_BPF_H
#define AGT_COMMON_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AGT_KDROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* tgid -> 1 for every process being traced; filled by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} targets SEC(".maps");

/* Wake the reader only once this much is pending; it also polls every AGT_POLL_MS, so an event
 * waits at most that long. A wakeup per event costs several microseconds in the traced thread. */
const volatile __u64 agt_wake_bytes = 64 << 10;

static __always_inline void agt_submit(void *e)
{
	__u64 pending = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	bpf_ringbuf_submit(e, pending >= agt_wake_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline void agt_count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &reason);

	if (n)
		*n += 1;
}

#endif
