/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Maps and helpers every agtrace BPF object shares. A map marked LIBBPF_PIN_BY_NAME here is
 * one map for all the objects of a run: the first object loaded creates it and pins it under
 * the run's own folder (/sys/fs/bpf/agtrace/<pid>_<start>), the others find it there by name
 * (capture/units.c). Nothing else lists which maps are shared. */
#ifndef AGT_COMMON_BPF_H
#define AGT_COMMON_BPF_H
#include "arch.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AGT_KDROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} drops SEC(".maps");

/* tgid -> enum agt_target_kind for every process being traced: targets (written by the loader),
 * their descendants and processes discovery has not decided on yet (written by the process
 * programs, at fork and exec). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} targets SEC(".maps");

/* A thread {pid_tgid, 0} (C) or a goroutine {tgid, its g} (Go: the write's system call may
 * come from another thread than the Write's entry, after the goroutine parked in a handshake)
 * -> the TLS connection (SSL *, gnutls session, *tls.Conn) it is writing plaintext to, and how
 * many bytes: set at a TLS write's entry (tls.bpf.c), taken by its next TCP send that is a TLS
 * application data record no longer than that write can make (sock.bpf.c), which ties the
 * connection to its socket, so the socket's end ends the TLS connection too. */
struct agt_tls_writer {
	__u64 a, b;
};

struct agt_tls_writing {
	__u64 conn, len;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct agt_tls_writer);
	__type(value, struct agt_tls_writing);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tls_writing SEC(".maps");

/* Register r of a uprobe's context (struct pt_regs): a plain load at a fixed offset, which the
 * verifier checks, rather than a helper call per register. The empty asm keeps the compiler from
 * merging two such loads into one from a chosen address (the verifier refuses a load through a
 * modified context pointer). */
#define AGT_REG(ctx, r)                                                                           \
	({                                                                                        \
		__u64 v_ = (ctx)->r;                                                              \
		asm volatile("" : "+r"(v_));                                                      \
		v_;                                                                               \
	})

/* What tgid is to agtrace: an enum agt_target_kind, 0 when it is not traced. */
static __always_inline __u32 agt_target_kind(__u32 tgid)
{
	__u32 *k = bpf_map_lookup_elem(&targets, &tgid);

	return k ? *k : 0;
}

/* Is tgid traced (a target, a followed descendant, or a process discovery is deciding on)? The
 * one test every program makes first: uprobes are attached once per file, so every process that
 * maps the file hits them, and this lookup decides in the kernel whether the hit counts. */
static __always_inline int agt_traced(__u32 tgid)
{
	return agt_target_kind(tgid) != 0;
}

/* Wake the reader only once this much is pending; it also polls every AGT_POLL_MS (and within
 * AGT_POLL_BUSY_MS while records keep coming), so an event waits at most that long. A wakeup
 * costs the traced thread tens of microseconds on a VM (an interrupt to another CPU); the
 * kernel's default (wake when the reader has caught up) would pay it at the first record of
 * every burst: a TLS request, an exec. Every record goes through agt_wake_flags, except those
 * a process waits on (stopped at exec) and the few file lineage wants read at once. */
const volatile __u64 agt_wake_bytes = 64 << 10;

static __always_inline __u64 agt_wake_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= agt_wake_bytes ? BPF_RB_FORCE_WAKEUP
										: BPF_RB_NO_WAKEUP;
}

static __always_inline void agt_submit(void *e)
{
	bpf_ringbuf_submit(e, agt_wake_flags());
}

/* Sampling configuration per source; pinned by the loader (/sys/fs/bpf/agtrace/sampling). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AGT_SS_MAX);
	__type(key, __u32);
	__type(value, struct agt_sample_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sampling SEC(".maps");

struct agt_bucket {
	__u64 tokens_milli; /* thousandths of a token */
	__u64 last_ns;
};

/* Token buckets, per source and per CPU: each CPU gets rate / ncpus. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AGT_SS_MAX);
	__type(key, __u32);
	__type(value, struct agt_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} buckets SEC(".maps");

/* Sampling drops: source * AGT_SAMPLE_REASONS + reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AGT_SS_MAX *AGT_SAMPLE_REASONS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sample_drops SEC(".maps");

const volatile __u32 agt_ncpus = 1;
const volatile __u64 agt_sample_salt = 0;

static __always_inline void agt_count_sample_drop(__u32 source, __u32 reason)
{
	__u32 k = source * AGT_SAMPLE_REASONS + reason;
	__u64 *n = bpf_map_lookup_elem(&sample_drops, &k);

	if (n)
		*n += 1;
}

/* (source << 32 | tgid) -> the session's decision (1 kept, 2 not), made at its first event
 * and kept when the ratio changes later, so a trace is never cut in two. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} session_decisions SEC(".maps");

/* Is this session (tgid) sampled for source? Decided once, from a hash of the tgid against the
 * ratio, and remembered: later changes of the ratio apply to new sessions. Ratios 0 and 1 are
 * absolute (nothing / everything from now on). */
static __always_inline int agt_session_sampled(__u32 source, __u32 tgid)
{
	struct agt_sample_cfg *c = bpf_map_lookup_elem(&sampling, &source);
	__u64 key = (__u64)source << 32 | tgid, h;
	__u8 *d, v;

	if (c && c->ratio_ppm == 0)
		return 0;
	d = bpf_map_lookup_elem(&session_decisions, &key);
	if (!c || c->ratio_ppm >= AGT_SAMPLE_ONE) {
		if (!d) {
			v = 1;
			bpf_map_update_elem(&session_decisions, &key, &v, BPF_ANY);
		}
		return 1;
	}
	if (d)
		return *d == 1;
	h = (tgid ^ agt_sample_salt) * 0x9e3779b97f4a7c15ull;
	h ^= h >> 29;
	v = (h % AGT_SAMPLE_ONE) < c->ratio_ppm ? 1 : 2;
	bpf_map_update_elem(&session_decisions, &key, &v, BPF_ANY);
	return v == 1;
}

/* A session is over: forget its decisions (a reused pid is a new session). */
static __always_inline void agt_session_forget(__u32 tgid)
{
	for (__u32 s = 0; s < AGT_SS_MAX; s++) {
		__u64 key = (__u64)s << 32 | tgid;

		bpf_map_delete_elem(&session_decisions, &key);
	}
}

/* Take one token from source's bucket (on this CPU); 0 when empty. */
static __always_inline int agt_take_token(__u32 source)
{
	struct agt_sample_cfg *c = bpf_map_lookup_elem(&sampling, &source);
	struct agt_bucket *b;
	__u64 now, rate, cap;

	if (!c || !c->rate)
		return 1;
	b = bpf_map_lookup_elem(&buckets, &source);
	if (!b)
		return 1;
	now = bpf_ktime_get_ns();
	rate = c->rate * 1000ull / (agt_ncpus ? agt_ncpus : 1); /* milli-tokens per second */
	cap = (c->burst ? c->burst : c->rate) * 1000ull / (agt_ncpus ? agt_ncpus : 1);
	if (cap < 1000)
		cap = 1000;
	if (!b->last_ns) {
		b->tokens_milli = cap;
	} else if (now > b->last_ns) {
		b->tokens_milli += (now - b->last_ns) / 1000 * rate / 1000000;
		if (b->tokens_milli > cap)
			b->tokens_milli = cap;
	}
	b->last_ns = now;
	if (b->tokens_milli < 1000)
		return 0;
	b->tokens_milli -= 1000;
	return 1;
}

/* The whole decision for one event of source from tgid; drops are counted by reason. */
static __always_inline int agt_sample(__u32 source, __u32 tgid)
{
	if (!agt_session_sampled(source, tgid)) {
		agt_count_sample_drop(source, AGT_SAMPLE_UNSAMPLED);
		return 0;
	}
	if (!agt_take_token(source)) {
		agt_count_sample_drop(source, AGT_SAMPLE_RATE);
		return 0;
	}
	return 1;
}

/* The payload cap of source, within the loader's cap. */
static __always_inline __u64 agt_byte_cap(__u32 source, __u64 dflt)
{
	struct agt_sample_cfg *c = bpf_map_lookup_elem(&sampling, &source);

	return c && c->byte_cap && c->byte_cap < dflt ? c->byte_cap : dflt;
}

static __always_inline void agt_count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &reason);

	if (n)
		*n += 1;
}

/* Reserve a ring buffer record of size (a constant) and fill its header; NULL, counted as
 * ringbuf_full, when there is no room. */
static __always_inline void *agt_reserve(__u64 size, __u32 kind, __u32 probe_id, __u32 pid,
					 __u32 tid)
{
	struct agt_event_hdr *h = bpf_ringbuf_reserve(&events, size, 0);

	if (!h) {
		agt_count_drop(AGT_KDROP_RINGBUF_FULL);
		return 0;
	}
	h->kind = kind;
	h->probe_id = probe_id;
	h->pid = pid;
	h->tid = tid;
	h->ts_ns = bpf_ktime_get_ns();
	return h;
}

#endif
