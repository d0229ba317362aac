// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* TLS plaintext at the library boundary: SSL_write/SSL_read and their _ex forms (OpenSSL 1.1
 * and 3, shared or linked into a binary such as node). The entry saves the buffer per thread;
 * the return copies what was really moved, in chunks, up to a per-call cap. Uprobes are
 * attached per target PID, so only target processes pay for a copy. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "agtrace.h"
#include "common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Bytes copied per call at most (a whole HTTP message is usually one or a few calls). */
const volatile __u64 tls_call_cap = 1 << 20;

struct tls_call {
	__u64 conn, buf, len_ptr, start_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

/* Records are built here and output with their real length (ring buffer reserve needs a
 * constant size, and most TLS calls are far shorter than a chunk). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct agt_tls_data);
} tls_scratch SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(tls_entry, void *ssl, void *buf, __u64 num, void *len_ptr)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call c = {
	    .conn = (__u64)ssl,
	    .buf = (__u64)buf,
	    .len_ptr = (cookie & AGT_TLS_COOKIE_EX) ? (__u64)len_ptr : 0,
	    .start_ns = bpf_ktime_get_ns(),
	};

	bpf_map_update_elem(&tls_calls, &id, &c, BPF_ANY);
	return 0;
}

struct copy_ctx {
	struct agt_tls_data *e;
	__u64 buf, n;
};

static long copy_chunk(__u32 i, void *arg)
{
	struct copy_ctx *c = arg;
	struct agt_tls_data *e = c->e;
	__u64 off = (__u64)i * AGT_TLS_CHUNK;
	__u32 len;

	if (off >= c->n)
		return 1;
	len = c->n - off > AGT_TLS_CHUNK ? AGT_TLS_CHUNK : c->n - off;
	e->offset = off;
	e->len = len;
	if (bpf_probe_read_user(e->data, len, (const void *)(c->buf + off))) {
		agt_count_drop(AGT_KDROP_TLS_READ);
		return 1;
	}
	if (bpf_ringbuf_output(&events, e, offsetof(struct agt_tls_data, data) + len, 0))
		agt_count_drop(AGT_KDROP_RINGBUF_FULL);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_return)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call *c = bpf_map_lookup_elem(&tls_calls, &id);
	/* SSL_read/SSL_write return int: only eax is defined, the upper half of rax is not. */
	long ret = (int)PT_REGS_RC_CORE(ctx);
	struct agt_tls_data *e;
	struct copy_ctx cc;
	__u32 zero = 0;
	__u64 n;

	if (!c) {
		agt_count_drop(AGT_KDROP_TLS_NO_ENTRY);
		return 0;
	}
	cc.buf = c->buf;
	if (c->len_ptr) {
		/* SSL_write_ex/SSL_read_ex: 1 on success, the length through the 4th argument. */
		n = 0;
		if (ret == 1 && bpf_probe_read_user(&n, sizeof(n), (const void *)c->len_ptr))
			n = 0;
	} else {
		n = ret > 0 ? ret : 0;
	}
	e = bpf_map_lookup_elem(&tls_scratch, &zero);
	if (!n || !e) {
		bpf_map_delete_elem(&tls_calls, &id);
		return 0;
	}
	e->h.kind = AGT_EV_TLS_DATA;
	e->h.probe_id = cookie & 0xffff;
	e->h.pid = id >> 32;
	e->h.tid = (__u32)id;
	e->h.ts_ns = bpf_ktime_get_ns();
	e->call_start_ns = c->start_ns;
	e->conn = c->conn;
	e->call_len = n;
	e->dir = (cookie & AGT_TLS_COOKIE_READ) ? AGT_DIR_INGRESS : AGT_DIR_EGRESS;
	bpf_map_delete_elem(&tls_calls, &id);
	if (n > tls_call_cap) {
		agt_count_drop(AGT_KDROP_TLS_TRUNCATED);
		n = tls_call_cap;
	}
	cc.e = e;
	cc.n = n;
	bpf_loop((n + AGT_TLS_CHUNK - 1) / AGT_TLS_CHUNK, copy_chunk, &cc, 0);
	return 0;
}
