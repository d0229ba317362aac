/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Copying captured bytes into the ring buffer in chunks, shared by tls.bpf.c and sock.bpf.c.
 * Records are built in a per-CPU scratch buffer and output with their real length (reserve
 * needs a constant size, and most calls are far shorter than a chunk). */
#ifndef AGT_DATA_BPF_H
#define AGT_DATA_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct agt_data);
} data_scratch SEC(".maps");

struct copy_ctx {
	struct agt_data *e;
	__u64 buf, n, base;
	__u32 read_fail_reason;
};

static long agt_copy_chunk(__u32 i, void *arg)
{
	struct copy_ctx *c = arg;
	struct agt_data *e = c->e;
	__u64 off = (__u64)i * AGT_DATA_CHUNK;
	__u32 len;

	if (off >= c->n)
		return 1;
	len = c->n - off > AGT_DATA_CHUNK ? AGT_DATA_CHUNK : c->n - off;
	e->offset = c->base + off;
	e->len = len;
	if (bpf_probe_read_user(e->data, len, (const void *)(c->buf + off))) {
		agt_count_drop(c->read_fail_reason);
		return 1;
	}
	if (bpf_ringbuf_output(&events, e, offsetof(struct agt_data, data) + len, agt_wake_flags()))
		agt_count_drop(AGT_KDROP_RINGBUF_FULL);
	return 0;
}

/* Emit n bytes at user address buf as the chunks at base, base + CHUNK, ... of e's call. */
static __always_inline void agt_emit_bytes(struct agt_data *e, __u64 buf, __u64 n, __u64 base,
					   __u32 read_fail_reason)
{
	struct copy_ctx cc = {
	    .e = e, .buf = buf, .n = n, .base = base, .read_fail_reason = read_fail_reason};

	bpf_loop((n + AGT_DATA_CHUNK - 1) / AGT_DATA_CHUNK, agt_copy_chunk, &cc, 0);
}

static __always_inline struct agt_data *agt_data_init(__u32 probe_id, __u64 id, __u64 start_ns,
						      __u64 conn, __u64 call_len, __u8 dir,
						      __u8 source)
{
	__u32 zero = 0;
	struct agt_data *e = bpf_map_lookup_elem(&data_scratch, &zero);

	if (!e)
		return 0;
	e->h.kind = AGT_EV_DATA;
	e->h.probe_id = probe_id;
	e->h.pid = id >> 32;
	e->h.tid = (__u32)id;
	e->h.ts_ns = bpf_ktime_get_ns();
	e->call_start_ns = start_ns;
	e->conn = conn;
	e->call_len = call_len;
	e->captured = call_len;
	e->dir = dir;
	e->source = source;
	e->family = 0;
	e->peer_port = 0;
	e->flags = 0;
	return e;
}

/* Send e (from agt_data_init) as its connection's end: AGT_DATA_CLOSE, no bytes. */
static __always_inline void agt_send_close(struct agt_data *e)
{
	e->flags = AGT_DATA_CLOSE;
	e->captured = 0;
	e->offset = 0;
	e->len = 0;
	if (bpf_ringbuf_output(&events, e, offsetof(struct agt_data, data), agt_wake_flags()))
		agt_count_drop(AGT_KDROP_RINGBUF_FULL);
}

/* Called for a call of an unsampled session: if it reads an HTTP error status line, send that
 * line alone (metadata only), so errors of unsampled traces still arrive. */
static __always_inline void agt_error_metadata(struct agt_data *e, __u64 buf, __u64 n)
{
	char b[16] = {};

	if (e->dir != AGT_DIR_INGRESS || n < 12 || bpf_probe_read_user(b, 12, (const void *)buf))
		return;
	if (b[0] != 'H' || b[1] != 'T' || b[2] != 'T' || b[3] != 'P' || b[4] != '/' ||
	    (b[9] != '4' && b[9] != '5'))
		return;
	e->flags = AGT_DATA_META_ONLY;
	e->offset = 0;
	e->len = 12;
	__builtin_memcpy(e->data, b, 12);
	if (bpf_ringbuf_output(&events, e, offsetof(struct agt_data, data) + 12, agt_wake_flags()))
		agt_count_drop(AGT_KDROP_RINGBUF_FULL);
}
#endif
